//! The on-disk record of a running lab: `/run/wren-testbed/<prefix>/state.json`.
//!
//! The record is written before the first namespace is created and updated as nodes, links,
//! processes and pods appear, so `wren-testbed down --stale` can remove what a crashed run left
//! (its owner PID is dead) and `status`, `exec` and `ping-matrix` can find a running lab.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::cmd::ip;
use crate::error::{Error, Result};
use crate::kernel::{netns_inode, pids_in_netns_inode};

/// Default state root; `WREN_TESTBED_STATE_DIR` overrides it.
pub const DEFAULT_STATE_ROOT: &str = "/run/wren-testbed";

/// The state root directory.
pub fn state_root() -> PathBuf {
    std::env::var_os("WREN_TESTBED_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT))
}

/// A namespace the lab created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NsState {
    /// Node (or `node.pod` for a pod).
    pub node: String,
    /// Namespace name under /run/netns.
    pub netns: String,
    /// `linux`, `bridge` or `pod`.
    pub kind: String,
    /// Inode of the namespace (identifies it after the name is gone).
    pub inode: Option<u64>,
}

/// A link the lab created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkState {
    /// `node:iface`.
    pub a: String,
    /// `node:iface`.
    pub b: String,
}

/// A process the lab (or a test through the lab) started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcState {
    /// Node.
    pub node: String,
    /// Role name (`bird`, `bgpd`, ...).
    pub name: String,
    /// PID.
    pub pid: u32,
    /// Log file.
    pub log: PathBuf,
}

/// A pod created through CNI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PodState {
    /// Node whose namespace ran the plugin.
    pub node: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace name.
    pub netns: String,
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_IFNAME.
    pub ifname: String,
    /// Addresses from the ADD result.
    pub ips: Vec<ipnet::IpNet>,
    /// The conflist used (for DEL).
    pub conflist: serde_json::Value,
    /// CNI_PATH directories.
    pub cni_path: Vec<PathBuf>,
    /// The final ADD result (prevResult for DEL).
    pub result: serde_json::Value,
}

/// The whole record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabState {
    /// Per-run prefix (also the directory name).
    pub prefix: String,
    /// Lab name from the topology.
    pub name: String,
    /// Topology file, if any.
    pub topology: Option<PathBuf>,
    /// PID of the process that owns the lab.
    pub owner_pid: u32,
    /// Start time of the owner (clock ticks since boot, /proc/PID/stat field 22), so a
    /// recycled PID is not mistaken for the owner.
    pub owner_start: Option<u64>,
    /// `up --detach`: nobody owns it; only `down` removes it.
    pub detached: bool,
    /// Namespaces.
    pub namespaces: Vec<NsState>,
    /// Links.
    pub links: Vec<LinkState>,
    /// Processes.
    pub processes: Vec<ProcState>,
    /// Pods.
    pub pods: Vec<PodState>,
}

impl LabState {
    /// Directory of this lab.
    pub fn dir(&self) -> PathBuf {
        state_root().join(&self.prefix)
    }

    /// Writes `state.json` atomically.
    pub fn save(&self) -> Result<()> {
        let dir = self.dir();
        let tmp = dir.join("state.json.tmp");
        let data = serde_json::to_vec_pretty(self).map_err(|e| Error::Parse {
            what: "lab state".into(),
            msg: e.to_string(),
        })?;
        std::fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
        let dst = dir.join("state.json");
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))
    }

    /// Is the owning process still alive (or the lab detached)?
    pub fn owner_alive(&self) -> bool {
        if self.detached {
            return true;
        }
        match process_start_time(self.owner_pid) {
            Some(t) => self.owner_start.is_none_or(|s| s == t),
            None => false,
        }
    }

    /// Namespace of a node.
    pub fn netns_of(&self, node: &str) -> Result<&str> {
        self.namespaces
            .iter()
            .find(|n| n.node == node)
            .map(|n| n.netns.as_str())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "node `{node}` is not in lab `{}` (nodes: {})",
                    self.name,
                    self.namespaces
                        .iter()
                        .map(|n| n.node.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// Start time of a process (field 22 of /proc/PID/stat), `None` if it does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    // After ')': field 3 is index 0, so field 22 is index 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Creates a directory with mode 0711 (FRR's user must traverse it).
pub fn make_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| Error::io(path, e))
}

/// All lab records under the state root (unreadable ones are skipped with a warning).
pub fn list_labs() -> Vec<LabState> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(state_root()) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path().join("state.json");
        match std::fs::read(&p) {
            Ok(b) => match serde_json::from_slice::<LabState>(&b) {
                Ok(s) => out.push(s),
                Err(err) => tracing::warn!("{}: {err}", p.display()),
            },
            Err(err) => tracing::warn!("{}: {err}", p.display()),
        }
    }
    out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    out
}

/// Finds one lab by lab name or prefix; with `None`, the only lab there is.
pub fn find_lab(which: Option<&str>) -> Result<LabState> {
    let labs = list_labs();
    let mut hits: Vec<LabState> = match which {
        Some(w) => labs
            .into_iter()
            .filter(|l| l.prefix == w || l.name == w)
            .collect(),
        None => labs,
    };
    match hits.len() {
        0 => Err(Error::NotFound(match which {
            Some(w) => format!(
                "no running lab named `{w}` under {}",
                state_root().display()
            ),
            None => format!(
                "no running lab under {} (start one with `wren-testbed up FILE`)",
                state_root().display()
            ),
        })),
        1 => Ok(hits.remove(0)),
        _ => Err(Error::Usage(format!(
            "several labs match: {}; pick one with --lab PREFIX",
            hits.iter()
                .map(|l| format!("{} ({})", l.prefix, l.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Namespace names under /run/netns that start with `<prefix>-`.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    let want = format!("{prefix}-");
    let mut out: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with(&want))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Stops every process in namespace `ns` (SIGTERM, then SIGKILL after `grace`).
pub fn kill_netns_processes(ns: &str, grace: Duration) {
    let Some(ino) = netns_inode(&Path::new("/run/netns").join(ns)) else {
        return;
    };
    let send = |sig: Signal| {
        let pids = pids_in_netns_inode(ino);
        for p in &pids {
            if let Ok(p) = i32::try_from(*p) {
                let _ = kill(Pid::from_raw(p), sig);
            }
        }
        !pids.is_empty()
    };
    if !send(Signal::SIGTERM) {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if pids_in_netns_inode(ino).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    send(Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !pids_in_netns_inode(ino).is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes everything a lab record describes: pods (CNI DEL, best effort), processes in its
/// namespaces, the namespaces (plus any `<prefix>-*` left over), and its state directory.
/// Returns the errors it met; it always goes on to the end.
pub fn teardown(st: &LabState) -> Vec<String> {
    let mut errors = Vec::new();
    for pod in st.pods.iter().rev() {
        if let Err(e) = crate::cni::del_pod(st, pod) {
            errors.push(e.to_string());
        }
    }
    let mut names: Vec<String> = st.namespaces.iter().map(|n| n.netns.clone()).collect();
    for n in netns_with_prefix(&st.prefix) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    // Pods first (their veth peers live in node namespaces), then nodes.
    names.sort_by_key(|n| !n.contains('.'));
    for ns in &names {
        kill_netns_processes(ns, Duration::from_secs(5));
    }
    for ns in &names {
        if Path::new("/run/netns").join(ns).exists() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                errors.push(e.to_string());
            }
        }
    }
    for p in &st.processes {
        // Processes are children of the owner; a dead owner's orphans were re-parented and
        // are gone with their namespace. Only warn about a live, non-zombie one.
        if process_alive(p.pid) && process_in_any(p.pid, &st.namespaces) {
            errors.push(format!(
                "process {} ({}) on {} is still running",
                p.pid, p.name, p.node
            ));
        }
    }
    let dir = st.dir();
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            errors.push(format!("{}: {e}", dir.display()));
        }
    }
    errors
}

/// Is `pid` a live (non-zombie) process?
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn process_in_any(pid: u32, nss: &[NsState]) -> bool {
    let Ok(l) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
        return false;
    };
    let l = l.to_string_lossy().to_string();
    nss.iter()
        .filter_map(|n| n.inode)
        .any(|ino| l == format!("net:[{ino}]"))
}

/// What a lab left behind after teardown (empty = clean). Checks namespace names with the
/// prefix, processes still inside any of the lab's namespaces (by inode, so a namespace kept
/// alive without a name is found too), recorded PIDs still alive, host links whose name
/// contains the prefix, and the state directory.
pub fn leftovers(st: &LabState) -> Vec<String> {
    let mut out = Vec::new();
    for n in netns_with_prefix(&st.prefix) {
        out.push(format!("namespace {n}"));
    }
    for ns in &st.namespaces {
        if let Some(ino) = ns.inode {
            for pid in pids_in_netns_inode(ino) {
                out.push(format!(
                    "process {pid} inside namespace {} (inode {ino})",
                    ns.netns
                ));
            }
        }
    }
    for p in &st.processes {
        if process_alive(p.pid) {
            out.push(format!("process {} ({}) on {}", p.pid, p.name, p.node));
        }
    }
    if let Ok(o) = ip(&["-o", "link", "show"]) {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if line.contains(&st.prefix) {
                out.push(format!("host link: {line}"));
            }
        }
    }
    if st.dir().exists() {
        out.push(format!("state dir {}", st.dir().display()));
    }
    out
}

/// Removes labs whose owner is dead; returns (prefix, errors) per lab removed.
pub fn down_stale() -> Vec<(String, Vec<String>)> {
    list_labs()
        .into_iter()
        .filter(|l| !l.owner_alive())
        .map(|l| {
            let errs = teardown(&l);
            (l.prefix, errs)
        })
        .collect()
}
