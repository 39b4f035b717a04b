//! Network namespaces and `/proc/sys` access.
//!
//! A netlink socket belongs to the network namespace of the thread that created it,
//! and `/proc/sys/net` shows the namespace of the thread that opens the file. The
//! plugin runs everything on the main thread (tokio current-thread runtime), so it
//! enters the pod namespace with `setns(2)` only for the short moments it creates the
//! pod's netlink socket or writes the pod's sysctls, and always returns (see
//! [`InNetns`]).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::sys::stat::{fstat, stat};

use crate::error::{code, CniError, CniResult};

/// Open the calling thread's current network namespace.
pub fn current() -> CniResult<File> {
    File::open("/proc/thread-self/ns/net").map_err(|e| {
        CniError::new(
            code::IO,
            "cannot open /proc/thread-self/ns/net",
            e.to_string(),
        )
    })
}

/// Why a netns path could not be used.
#[derive(Debug)]
pub enum OpenError {
    /// The path does not exist (or is no longer a namespace mount).
    Gone,
    /// Other failure.
    Other(CniError),
}

/// Open `path` and check that it is a network namespace.
pub fn open(path: &str) -> Result<File, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO (or a device) at that path must not block the plugin forever;
    // it is not a namespace and is refused below. No effect on nsfs files.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OpenError::Gone),
        Err(e) => {
            return Err(OpenError::Other(CniError::new(
                code::NETNS,
                format!("cannot open network namespace {path}"),
                e.to_string(),
            )))
        }
    };
    // An nsfs inode; a plain file left behind after the namespace was unmounted is not.
    let nsfs = nix::sys::statfs::fstatfs(f.as_fd())
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false);
    if !nsfs {
        return Err(OpenError::Gone);
    }
    Ok(f)
}

/// (device, inode) of an open namespace file, to compare namespaces.
pub fn identity(f: &File) -> CniResult<(u64, u64)> {
    let st = fstat(f.as_fd())
        .map_err(|e| CniError::new(code::NETNS, "cannot stat namespace", e.to_string()))?;
    #[allow(clippy::useless_conversion)]
    Ok((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Does `path` still name the namespace `f`?
pub fn still_same(path: &str, f: &File) -> bool {
    let Ok(want) = identity(f) else { return false };
    match stat(Path::new(path)) {
        #[allow(clippy::useless_conversion)]
        Ok(st) => (u64::from(st.st_dev), u64::from(st.st_ino)) == want,
        Err(_) => false,
    }
}

/// Inside this scope the calling thread is in the target namespace; dropping it
/// returns to the namespace it came from.
#[derive(Debug)]
pub struct InNetns<'a> {
    back: &'a File,
}

impl<'a> InNetns<'a> {
    /// Enter `target`; `back` is where to return.
    pub fn enter(target: &File, back: &'a File) -> CniResult<InNetns<'a>> {
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            CniError::new(
                code::NETNS,
                "cannot enter the container network namespace (setns)",
                e.to_string(),
            )
        })?;
        Ok(InNetns { back })
    }
}

impl Drop for InNetns<'_> {
    fn drop(&mut self) {
        if let Err(e) = setns(self.back.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Staying in the pod namespace would make every later host operation wrong;
            // there is no safe way to continue.
            tracing::error!("cannot return to the host network namespace: {e}");
            std::process::exit(1);
        }
    }
}

/// `/proc/sys/net/<rest>` of the calling thread's namespace.
fn sysctl_path(rest: &str) -> String {
    format!("/proc/sys/net/{rest}")
}

/// Write a sysctl below `/proc/sys/net`.
pub fn sysctl_set(rest: &str, value: &str) -> CniResult<()> {
    let p = sysctl_path(rest);
    std::fs::write(&p, value).map_err(|e| {
        CniError::new(
            code::IO,
            format!("cannot write {value} to {p}"),
            e.to_string(),
        )
    })
}

/// Read a sysctl below `/proc/sys/net` (trimmed).
pub fn sysctl_get(rest: &str) -> CniResult<String> {
    let p = sysctl_path(rest);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| CniError::new(code::IO, format!("cannot read {p}"), e.to_string()))
}

/// Whether the IPv6 per-interface sysctl directory exists (IPv6 enabled).
pub fn has_ipv6_conf(ifname: &str) -> bool {
    Path::new(&sysctl_path(&format!("ipv6/conf/{ifname}"))).exists()
}
