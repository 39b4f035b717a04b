//! The `wren-testbed` binary: commands that need no root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wren-testbed"))
}

#[test]
fn bench_lists_none() {
    let out = bin().args(["bench", "list"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no benchmarks yet"
    );
    let out = bin().args(["bench", "run", "x"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn validate_accepts_shipped_and_names_unknown_keys() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies");
    for f in [
        "three-node.clab.yml",
        "two-subnets.clab.yml",
        "rr-interop.clab.yml",
        "ipip-pair.clab.yml",
    ] {
        let out = bin()
            .args(["validate", &format!("{dir}/{f}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.clab.yml");
    std::fs::write(
        &f,
        "name: x\ntopology:\n  nodes:\n    n1: {kind: linux, imag: foo}\n",
    )
    .unwrap();
    let out = bin().arg("validate").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imag"), "{err}");
}
