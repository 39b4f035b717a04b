//! Kernel state inside a namespace (routes, link counters) and kernel-module checks.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

use crate::cmd::{ip, run_unchecked};
use crate::error::{Error, Result};

/// One route from `ip -j route show` in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination as printed (`10.10.2.0/24`, `10.0.0.5`, `default`).
    pub dst: String,
    /// Gateway (`via`).
    pub gateway: Option<IpAddr>,
    /// Output device.
    pub dev: Option<String>,
    /// Routing protocol name (`bird`, `bgp`, `kernel`, `static`, ...).
    pub protocol: Option<String>,
}

impl KernelRoute {
    /// Destination as a prefix (`default` is 0.0.0.0/0; a bare address is a host route).
    pub fn dst_net(&self) -> Option<IpNet> {
        if self.dst == "default" {
            return "0.0.0.0/0".parse().ok();
        }
        if self.dst.contains('/') {
            self.dst.parse().ok()
        } else {
            self.dst.parse::<IpAddr>().ok().map(IpNet::from)
        }
    }
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    gateway: Option<String>,
    dev: Option<String>,
    protocol: Option<String>,
}

/// IPv4 routes of the main table in namespace `ns`.
pub fn routes(ns: &str) -> Result<Vec<KernelRoute>> {
    let out = ip(&["-j", "-n", ns, "route", "show"])?;
    let raw: Vec<RawRoute> = serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse {
        what: format!("ip -j -n {ns} route show"),
        msg: e.to_string(),
    })?;
    Ok(raw
        .into_iter()
        .map(|r| KernelRoute {
            dst: r.dst,
            gateway: r.gateway.and_then(|g| g.parse().ok()),
            dev: r.dev,
            protocol: r.protocol,
        })
        .collect())
}

/// Packet and byte counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Received packets.
    pub rx_packets: u64,
    /// Sent packets.
    pub tx_packets: u64,
    /// Received bytes.
    pub rx_bytes: u64,
    /// Sent bytes.
    pub tx_bytes: u64,
}

/// Counters of interface `dev` in namespace `ns`.
pub fn link_stats(ns: &str, dev: &str) -> Result<LinkStats> {
    let out = ip(&["-j", "-s", "-n", ns, "link", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse {
        what: format!("ip -j -s -n {ns} link show {dev}"),
        msg: e.to_string(),
    })?;
    let s = v
        .get(0)
        .and_then(|l| l.get("stats64"))
        .ok_or_else(|| Error::Parse {
            what: format!("link stats of {dev} in {ns}"),
            msg: "no stats64".into(),
        })?;
    let n = |dir: &str, k: &str| {
        s.get(dir)
            .and_then(|d| d.get(k))
            .and_then(|x| x.as_u64())
            .unwrap_or(0)
    };
    Ok(LinkStats {
        rx_packets: n("rx", "packets"),
        tx_packets: n("tx", "packets"),
        rx_bytes: n("rx", "bytes"),
        tx_bytes: n("tx", "bytes"),
    })
}

/// Is kernel module `name` loaded or built in (loading it with modprobe if possible)?
pub fn module_available(name: &str) -> bool {
    let sys = Path::new("/sys/module").join(name.replace('-', "_"));
    if sys.exists() {
        return true;
    }
    let builtin = std::fs::read_to_string(format!(
        "/lib/modules/{}/modules.builtin",
        uname_release().unwrap_or_default()
    ))
    .unwrap_or_default();
    if builtin.lines().any(|l| l.ends_with(&format!("/{name}.ko"))) {
        return true;
    }
    matches!(run_unchecked("modprobe", &["-q", name], &[], None), Ok(o) if o.status.success())
        && sys.exists()
}

/// The modules of `names` that this kernel lacks.
pub fn missing_modules<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    names
        .iter()
        .map(|s| s.as_ref())
        .filter(|m| !module_available(m))
        .map(str::to_string)
        .collect()
}

/// `uname -r` of the running kernel.
pub fn uname_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Inode of a network namespace file (`/run/netns/NAME` or `/proc/PID/ns/net`), which
/// identifies the namespace itself.
pub fn netns_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// PIDs of processes whose network namespace has inode `ino`.
pub fn pids_in_netns_inode(ino: u64) -> Vec<u32> {
    let want = format!("net:[{ino}]");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(l) = std::fs::read_link(e.path().join("ns/net")) {
                if l.to_string_lossy() == want {
                    out.push(pid);
                }
            }
        }
    }
    out
}
