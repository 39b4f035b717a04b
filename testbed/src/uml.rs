//! Running a command under user-mode Linux when the host kernel lacks a module.
//!
//! Debian's `user-mode-linux` kernel runs as an ordinary process with the host's root file
//! system mounted through hostfs, so the project's binaries (and test binaries) run inside it
//! unchanged. The init script generated here mounts /proc, /sys and a tmpfs on /run, loads the
//! requested modules (dependencies resolved from the UML tree's `modules.dep`), runs the
//! command in the caller's working directory with the given environment, writes its output
//! and exit code to files on hostfs, and powers off. The whole run has a timeout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Environment variable set inside UML runs, so a test knows it is the inner run.
pub const IN_UML_ENV: &str = "WREN_TESTBED_IN_UML";

/// Where Debian's user-mode-linux package puts its modules.
pub const UML_MODULES: &str = "/usr/lib/uml/modules";

/// Outcome of a UML run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmlRun {
    /// Exit code of the command inside UML.
    pub exit_code: i32,
    /// Its stdout and stderr.
    pub output: String,
    /// The UML kernel's console (boot messages), for diagnosis.
    pub console: String,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl UmlRun {
    /// Did the command exit 0?
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// Is user-mode Linux installed?
pub fn available() -> bool {
    Path::new("/usr/bin/linux.uml").exists() && uml_module_dir().is_some()
}

/// The UML module tree (`/usr/lib/uml/modules/<version>`).
pub fn uml_module_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(UML_MODULES)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("modules.dep").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Module files (relative to the module tree) to insmod for `modules`, dependencies first.
pub fn resolve_modules(tree: &Path, modules: &[String]) -> Result<Vec<String>> {
    let dep_path = tree.join("modules.dep");
    let deps_text = std::fs::read_to_string(&dep_path).map_err(|e| Error::io(&dep_path, e))?;
    let builtin = std::fs::read_to_string(tree.join("modules.builtin")).unwrap_or_default();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for line in deps_text.lines() {
        let Some((m, d)) = line.split_once(':') else {
            continue;
        };
        let name = module_name(m);
        by_name.insert(name, m.to_string());
        deps.insert(
            m.to_string(),
            d.split_whitespace().map(str::to_string).collect(),
        );
    }
    let mut order: Vec<String> = Vec::new();
    fn visit(m: &str, deps: &BTreeMap<String, Vec<String>>, order: &mut Vec<String>, depth: u32) {
        if depth > 64 || order.iter().any(|o| o == m) {
            return;
        }
        for d in deps.get(m).into_iter().flatten() {
            visit(d, deps, order, depth + 1);
        }
        order.push(m.to_string());
    }
    for want in modules {
        let key = want.replace('-', "_");
        match by_name.get(&key) {
            Some(path) => visit(path, &deps, &mut order, 0),
            None if builtin.lines().any(|l| module_name(l) == key) => {}
            None => {
                return Err(Error::Usage(format!(
                "kernel module `{want}` is neither a module nor built into the UML kernel in {}",
                tree.display()
            )))
            }
        }
    }
    Ok(order)
}

fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file).replace('-', "_")
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `argv` inside user-mode Linux with `modules` loaded and `env` set, in the current
/// working directory, killing the UML kernel after `timeout`.
pub fn run(
    argv: &[String],
    modules: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<UmlRun> {
    if argv.is_empty() {
        return Err(Error::Usage("uml-run: no command given".into()));
    }
    let tree = uml_module_dir().ok_or_else(|| {
        Error::Usage(format!(
            "user-mode Linux is not installed (no {UML_MODULES}/*/modules.dep): apt-get install user-mode-linux"
        ))
    })?;
    let insmods = resolve_modules(&tree, modules)?;
    let work = tempfile::Builder::new()
        .prefix("wren-uml-")
        .tempdir_in("/tmp")
        .map_err(|e| Error::io("/tmp", e))?;
    let dir = work.path();
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# PID 1 inside the UML kernel (generated by wren-testbed)"
    );
    let _ = writeln!(s, "mount -t proc proc /proc");
    let _ = writeln!(s, "mount -t sysfs sys /sys");
    let _ = writeln!(s, "mount -t tmpfs tmp /run && mkdir -p /run/netns");
    let _ = writeln!(s, "mount -t tmpfs tmp /dev/shm 2>/dev/null");
    let _ = writeln!(
        s,
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    let _ = writeln!(s, "export HOME=/root {IN_UML_ENV}=1");
    for m in &insmods {
        let p = tree.join(m);
        let _ = writeln!(
            s,
            "/usr/sbin/insmod {} >>{}/output 2>&1 || echo 'insmod {m} failed' >>{}/output",
            sh_quote(&p.display().to_string()),
            dir.display(),
            dir.display()
        );
    }
    for (k, v) in env {
        let _ = writeln!(s, "export {k}={}", sh_quote(v));
    }
    let _ = writeln!(s, "cd {} || exit 1", sh_quote(&cwd.display().to_string()));
    let cmdline: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
    let _ = writeln!(s, "{} >>{}/output 2>&1", cmdline.join(" "), dir.display());
    let _ = writeln!(
        s,
        "echo $? >{}/exit.tmp && mv {}/exit.tmp {}/exit",
        dir.display(),
        dir.display(),
        dir.display()
    );
    let _ = writeln!(s, "sync");
    let _ = writeln!(s, "/usr/sbin/poweroff -f");
    let init = dir.join("init.sh");
    std::fs::write(&init, s).map_err(|e| Error::io(&init, e))?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&init, e))?;
    let console_path = dir.join("console");
    let console = std::fs::File::create(&console_path).map_err(|e| Error::io(&console_path, e))?;
    let console2 = console
        .try_clone()
        .map_err(|e| Error::io(&console_path, e))?;
    let start = Instant::now();
    let mut child = Command::new("linux.uml")
        .args([
            "mem=512M",
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "rw",
            &format!("init={}", init.display()),
            "con=null",
            "con0=fd:0,fd:1",
        ])
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(console))
        .stderr(Stdio::from(console2))
        // Own process group: UML forks helper processes; a timeout kills them all.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Spawn {
            cmd: "linux.uml".into(),
            source: e,
        })?;
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::Spawn {
                    cmd: "linux.uml".into(),
                    source: e,
                })
            }
        }
        if start.elapsed() > timeout {
            timed_out = true;
            if pgid > 0 {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Helper processes of the UML kernel share its group; make sure none is left.
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let output = std::fs::read_to_string(dir.join("output")).unwrap_or_default();
    let console = std::fs::read_to_string(&console_path).unwrap_or_default();
    if timed_out {
        return Err(Error::Timeout {
            what: format!("`{}` under user-mode Linux", argv.join(" ")),
            secs: start.elapsed().as_secs_f64(),
            last: Some(format!("output so far: {output}")),
        });
    }
    let exit_code = std::fs::read_to_string(dir.join("exit"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "user-mode Linux stopped before the command finished; console:\n{}",
                console
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        })?;
    Ok(UmlRun {
        exit_code,
        output,
        console,
        elapsed: start.elapsed(),
    })
}

/// Where a scenario runs.
#[derive(Debug)]
pub enum Placement {
    /// Here: the kernel has every module (or this already is the inner UML run).
    Here,
    /// The scenario was re-run inside UML; this is its outcome.
    Uml(UmlRun),
}

/// For tests that need kernel modules: returns [`Placement::Here`] when the running kernel
/// has all of `modules` (then run the scenario), otherwise re-runs the current test binary
/// inside user-mode Linux with `test_args` (e.g. `["--exact", "ipip_ping", "--nocapture"]`)
/// and returns its outcome, which the caller reports as if it had run locally.
pub fn here_or_in_uml(
    modules: &[&str],
    test_args: &[&str],
    timeout: Duration,
) -> Result<Placement> {
    let missing = crate::kernel::missing_modules(modules);
    if missing.is_empty() {
        return Ok(Placement::Here);
    }
    if std::env::var_os(IN_UML_ENV).is_some() {
        return Err(Error::Usage(format!(
            "inside user-mode Linux and still missing kernel modules: {}",
            missing.join(", ")
        )));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let mut argv = vec![exe.display().to_string()];
    argv.extend(test_args.iter().map(|s| s.to_string()));
    let mods: Vec<String> = modules.iter().map(|s| s.to_string()).collect();
    // The inner run needs veth and bridge too (modules in the UML kernel).
    let mut all = vec!["veth".to_string(), "bridge".to_string()];
    all.extend(mods);
    let env: Vec<(String, String)> = ["RUST_BACKTRACE", "RUST_LOG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    run(&argv, &all, &env, timeout).map(Placement::Uml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dependencies_first() {
        let Some(tree) = uml_module_dir() else {
            eprintln!("skipping: user-mode-linux is not installed");
            return;
        };
        let r = resolve_modules(&tree, &["ipip".to_string()]).unwrap();
        let pos = |n: &str| {
            r.iter()
                .position(|m| m.ends_with(&format!("/{n}.ko")))
                .unwrap()
        };
        assert!(pos("tunnel4") < pos("ipip"));
        assert!(pos("ip_tunnel") < pos("ipip"));
        assert!(resolve_modules(&tree, &["no_such_module_x".to_string()]).is_err());
    }

    #[test]
    fn quotes() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
    }
}
