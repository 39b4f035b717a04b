//! GC of host-local allocations. Debian's host-local (containernetworking-plugins
//! 1.1.1) speaks CNI up to 1.0.0 and has no GC, so Wren removes the allocation files
//! of attachments that are not valid any more itself, holding host-local's own lock.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::net::IpAddr;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::conf::Attachment;
use crate::error::{code, CniError, CniResult};

/// Remove host-local allocation files in `dir` (`<dataDir>/<network>`) whose
/// `containerID\r\nifname` is not in `valid`; returns the released addresses.
///
/// The store layout (containernetworking/plugins `backend/disk`): one file per IP
/// named by the address, holding the container id and, since 0.7, `\r\n` and the
/// interface name; `last_reserved_ip.<n>` files; a `lock` file that host-local
/// `flock(2)`s exclusively around every operation. We take the same lock.
pub fn host_local(dir: &Path, valid: &BTreeSet<Attachment>) -> CniResult<Vec<IpAddr>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let io = |what: String, e: std::io::Error| CniError::new(code::IO, what, e.to_string());
    let lock_path = dir.join("lock");
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| io(format!("cannot open {}", lock_path.display()), e))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| {
        CniError::new(
            code::IO,
            format!("cannot lock {}", lock_path.display()),
            e.to_string(),
        )
    })?;
    let mut released = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ip) = name.parse::<IpAddr>() else {
            continue;
        };
        let Ok(content) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let mut lines = content.split(['\r', '\n']).filter(|l| !l.is_empty());
        let id = lines.next().unwrap_or("").trim().to_string();
        let ifname = lines.next().map(|s| s.trim().to_string());
        let still_valid = valid
            .iter()
            .any(|a| a.container_id == id && ifname.as_ref().is_none_or(|i| *i == a.ifname));
        if !still_valid {
            tracing::info!(
                "GC: releasing {ip} of {id}/{}",
                ifname.as_deref().unwrap_or("?")
            );
            std::fs::remove_file(entry.path())
                .map_err(|e| io(format!("cannot remove {}", entry.path().display()), e))?;
            released.push(ip);
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_invalid() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("10.0.0.2"), "keep\r\neth0").unwrap();
        std::fs::write(d.path().join("10.0.0.3"), "gone\r\neth0").unwrap();
        std::fs::write(d.path().join("10.0.0.4"), "keep\r\neth1").unwrap();
        std::fs::write(d.path().join("fd00::2"), "legacy").unwrap();
        std::fs::write(d.path().join("last_reserved_ip.0"), "10.0.0.4").unwrap();
        let valid: BTreeSet<Attachment> = [Attachment {
            container_id: "keep".into(),
            ifname: "eth0".into(),
        }]
        .into();
        let mut r = host_local(d.path(), &valid).unwrap();
        r.sort();
        assert_eq!(
            r,
            vec![
                "10.0.0.3".parse::<IpAddr>().unwrap(),
                "10.0.0.4".parse().unwrap(),
                "fd00::2".parse().unwrap()
            ]
        );
        assert!(d.path().join("10.0.0.2").exists());
        assert!(d.path().join("last_reserved_ip.0").exists());
        assert!(host_local(&d.path().join("missing"), &valid)
            .unwrap()
            .is_empty());
    }
}
