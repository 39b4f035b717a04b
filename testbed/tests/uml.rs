//! The user-mode Linux runner: modules are loaded, exit code and output come back, a hung
//! command is cut off by the timeout.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use wren_testbed::uml;

/// One UML kernel at a time (each maps up to 512 MiB).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return true;
    }
    if !uml::available() {
        eprintln!("skipping: user-mode-linux is not installed");
        return true;
    }
    false
}

#[test]
fn uml_run_loads_modules_and_returns_exit_code_and_output() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let argv: Vec<String> = ["sh", "-c", "ip -o link show tunl0; uname -r; exit 7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = uml::run(
        &argv,
        &["ipip".to_string()],
        &[("X".into(), "y".into())],
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(r.exit_code, 7, "{}\n{}", r.output, r.console);
    assert!(r.output.contains("tunl0"), "{}", r.output);
    let uml_release = uml::uml_module_dir().unwrap();
    let rel = uml_release.file_name().unwrap().to_str().unwrap();
    assert!(
        r.output.contains(rel),
        "inside UML uname -r is {rel}: {}",
        r.output
    );
}

#[test]
fn uml_run_times_out() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let t0 = Instant::now();
    let e = uml::run(
        &["sleep".to_string(), "600".to_string()],
        &[],
        &[],
        Duration::from_secs(8),
    )
    .unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn cli_uml_run_passes_the_exit_code() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wren-testbed"))
        .args([
            "uml-run",
            "--module",
            "ipip",
            "--",
            "sh",
            "-c",
            "echo inside; exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("inside"));
}
