//! Long-running processes inside a node's namespace, with their output in a log file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd::render;
use crate::error::{Error, Result};

/// A child process running in a network namespace (`ip netns exec` execs in place, so the
/// child's PID is the program's PID). Dropping it stops it: SIGTERM, then SIGKILL after a grace
/// period, then `wait`. Holding the unreaped `Child` guarantees the PID is never recycled
/// under us.
#[derive(Debug)]
pub struct Process {
    name: String,
    node: String,
    pid: u32,
    child: Option<Child>,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `argv` in namespace `ns`; stdout and stderr go to `log`.
    pub fn spawn(
        ns: &str,
        node: &str,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Process> {
        let out = File::create(log).map_err(|e| Error::io(log, e))?;
        let err = out.try_clone().map_err(|e| Error::io(log, e))?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(argv);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = c.spawn().map_err(|e| Error::Spawn {
            cmd: render(
                "ip netns exec",
                &[ns.to_string()].iter().chain(argv).collect::<Vec<_>>(),
            ),
            source: e,
        })?;
        tracing::debug!(node, name, pid = child.id(), "started {}", argv.join(" "));
        Ok(Process {
            name: name.to_string(),
            node: node.to_string(),
            pid: child.id(),
            child: Some(child),
            log: log.to_path_buf(),
            status: None,
        })
    }

    /// The program's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// Role name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Node it runs on.
    pub fn node(&self) -> &str {
        &self.node
    }
    /// Path of its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    /// Its log so far (lossy UTF-8; empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Some(status)` once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    self.status = Some(s);
                }
            }
        }
        self.status
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exit_status().is_none()
    }

    /// Sends a signal (no-op once it has exited).
    pub fn signal(&mut self, sig: Signal) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid)
            .map_err(|_| Error::Usage(format!("pid {} out of range", self.pid)))?;
        kill(Pid::from_raw(pid), sig).map_err(|e| Error::Usage(format!("kill {pid}: {e}")))
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps the child. Returns its exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.is_running() {
            let _ = self.signal(Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && self.is_running() {
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.is_running() {
                let _ = self.signal(Signal::SIGKILL);
            }
        }
        if let Some(mut c) = self.child.take() {
            if let Ok(s) = c.wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Lets the process outlive this handle (used by `up --detach`); returns its PID.
    pub fn detach(mut self) -> u32 {
        // Dropping a `Child` neither kills nor waits.
        self.child = None;
        self.pid
    }
}

/// Path of a workspace binary built by the same cargo invocation as the running test or
/// binary (`target/<profile>/<name>`), e.g. `workspace_binary("wren-agent")`. `None` if it
/// has not been built.
pub fn workspace_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let p = dir.join(name);
    p.is_file().then_some(p)
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop(Duration::from_secs(5));
        }
    }
}
