//! IPAM delegation: exec the plugin named in `ipam.type` (found in CNI_PATH) with the
//! same environment and the network configuration on stdin, as libcni's
//! `ipam.ExecAdd/ExecDel` do. `"subnet": "usePodCidr"` is resolved from node.json first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::conf::Command;
use crate::error::{code, CniError, CniResult};

/// The magic subnet value replaced by the node's pod CIDRs (all families).
pub const USE_POD_CIDR: &str = "usePodCidr";
/// In a `ranges` entry: replaced by the node's IPv6 pod CIDRs (Calico's spelling).
pub const USE_POD_CIDR_V6: &str = "usePodCidrIPv6";

/// Find an executable named `name` in `dirs` (CNI_PATH order).
pub fn find_plugin(name: &str, dirs: &[PathBuf]) -> CniResult<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for d in dirs {
        let p = d.join(name);
        if let Ok(m) = std::fs::metadata(&p) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(p);
            }
        }
    }
    Err(CniError::msg(
        code::INVALID_CONFIG,
        format!(
            "IPAM plugin \"{name}\" not found in CNI_PATH ({}); install it or fix ipam.type",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        ),
    ))
}

/// Does the IPAM section use `usePodCidr` anywhere?
pub fn uses_pod_cidr(ipam: &Value) -> bool {
    let is_magic = |v: Option<&Value>| {
        matches!(
            v.and_then(Value::as_str),
            Some(USE_POD_CIDR) | Some(USE_POD_CIDR_V6)
        )
    };
    if is_magic(ipam.get("subnet")) {
        return true;
    }
    ipam.get("ranges")
        .and_then(Value::as_array)
        .is_some_and(|sets| {
            sets.iter()
                .filter_map(Value::as_array)
                .flatten()
                .any(|r| is_magic(r.get("subnet")))
        })
}

/// How to resolve `usePodCidr`.
#[derive(Debug, Clone, Copy)]
pub enum PodCidrs<'a> {
    /// The node's pod CIDRs from node.json.
    Node(&'a [IpNet]),
    /// DEL without node.json: host-local releases by (container id, ifname) whatever
    /// ranges it is given, so catch-all placeholders are safe (Calico uses 0.0.0.0/0
    /// the same way). Nothing is ever allocated from them.
    DelPlaceholder,
}

/// Rewrite `usePodCidr` in an IPAM section. A top-level `"subnet": "usePodCidr"`
/// becomes `ranges` with one range set per family holding every pod CIDR of that
/// family (dual stack); a `ranges` entry `usePodCidr`/`usePodCidrIPv6` becomes one
/// entry per IPv4/IPv6 pod CIDR.
pub fn resolve_pod_cidr(ipam: &mut Value, cidrs: PodCidrs<'_>, node_file: &Path) -> CniResult<()> {
    let (v4, v6): (Vec<String>, Vec<String>) = match cidrs {
        PodCidrs::Node(list) => {
            let v4 = list
                .iter()
                .filter(|c| matches!(c, IpNet::V4(_)))
                .map(ToString::to_string)
                .collect();
            let v6 = list
                .iter()
                .filter(|c| matches!(c, IpNet::V6(_)))
                .map(ToString::to_string)
                .collect();
            (v4, v6)
        }
        PodCidrs::DelPlaceholder => (vec!["0.0.0.0/0".into()], vec!["::/0".into()]),
    };
    let no_cidrs = |fam: &str| {
        CniError::msg(
            code::NODE_FILE,
            format!(
                "{}: field \"podCIDRs\" has no {fam} CIDR but the IPAM config asks for usePodCidr",
                node_file.display()
            ),
        )
    };
    let obj = ipam
        .as_object_mut()
        .ok_or_else(|| CniError::msg(code::INVALID_CONFIG, "\"ipam\" must be an object"))?;
    if obj.get("subnet").and_then(Value::as_str) == Some(USE_POD_CIDR) {
        obj.remove("subnet");
        let mut sets = Vec::new();
        if matches!(cidrs, PodCidrs::DelPlaceholder) {
            sets.push(json!([{ "subnet": "0.0.0.0/0" }]));
        } else {
            for fam in [&v4, &v6] {
                if !fam.is_empty() {
                    sets.push(Value::Array(
                        fam.iter().map(|c| json!({ "subnet": c })).collect(),
                    ));
                }
            }
            if sets.is_empty() {
                return Err(no_cidrs("IPv4 or IPv6"));
            }
        }
        obj.insert("ranges".into(), Value::Array(sets));
        return Ok(());
    }
    if let Some(Value::Array(sets)) = obj.get_mut("ranges") {
        for set in sets.iter_mut() {
            let Some(entries) = set.as_array_mut() else {
                continue;
            };
            let mut out = Vec::with_capacity(entries.len());
            for e in entries.drain(..) {
                let magic = e.get("subnet").and_then(Value::as_str).map(str::to_owned);
                let fam = match magic.as_deref() {
                    Some(USE_POD_CIDR) => Some((&v4, "IPv4")),
                    Some(USE_POD_CIDR_V6) => Some((&v6, "IPv6")),
                    _ => None,
                };
                match fam {
                    None => out.push(e),
                    Some((cidrs, name)) => {
                        if cidrs.is_empty() {
                            return Err(no_cidrs(name));
                        }
                        for c in cidrs {
                            let mut r = e.clone();
                            if let Some(o) = r.as_object_mut() {
                                o.insert("subnet".into(), c.clone().into());
                            }
                            out.push(r);
                        }
                    }
                }
            }
            *entries = out;
        }
    }
    Ok(())
}

/// A running IPAM plugin process.
#[derive(Debug)]
pub struct IpamCall {
    child: Child,
    plugin: String,
}

/// Start the IPAM plugin for `cmd` with `stdin` (the whole network configuration).
/// The child inherits our environment (CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
/// CNI_ARGS, CNI_PATH) and our network namespace; only CNI_COMMAND is forced.
pub fn spawn(plugin: &Path, cmd: Command, stdin: &[u8]) -> CniResult<IpamCall> {
    let cmd_name = match cmd {
        Command::Add => "ADD",
        Command::Del => "DEL",
        Command::Check => "CHECK",
        Command::Gc => "GC",
        Command::Status => "STATUS",
        Command::Version => "VERSION",
    };
    let name = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut child = Proc::new(plugin)
        .env("CNI_COMMAND", cmd_name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CniError::new(
                code::IPAM,
                format!("cannot execute IPAM plugin {}", plugin.display()),
                e.to_string(),
            )
        })?;
    // A network configuration is far below the pipe buffer size, so this write does
    // not block on the child reading it.
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits without reading its input (a failing one) closes the
        // pipe: its exit status and output tell what happened, not EPIPE.
        if let Err(e) = input.write_all(stdin).or_else(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        }) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CniError::new(
                code::IO,
                format!("cannot write to IPAM plugin {name}"),
                e.to_string(),
            ));
        }
    }
    Ok(IpamCall {
        child,
        plugin: name,
    })
}

impl IpamCall {
    /// Wait for the plugin; its result JSON (None when stdout is empty) or its error.
    pub fn wait(self) -> CniResult<Option<Value>> {
        let name = self.plugin;
        let out = self.child.wait_with_output().map_err(|e| {
            CniError::new(
                code::IO,
                format!("waiting for IPAM plugin {name} failed"),
                e.to_string(),
            )
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // libcni's RawExec: the error JSON is on stdout; stderr only if stdout is empty.
            if let Ok(v) = serde_json::from_str::<Value>(&stdout) {
                if let Some(c) = v.get("code").and_then(Value::as_u64) {
                    let msg = v.get("msg").and_then(Value::as_str).unwrap_or_default();
                    let details = v.get("details").and_then(Value::as_str).unwrap_or_default();
                    return Err(CniError::new(
                        u32::try_from(c).unwrap_or(code::IPAM),
                        format!("IPAM plugin {name}: {msg}"),
                        details,
                    ));
                }
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            let text = if stdout.trim().is_empty() {
                stderr.trim()
            } else {
                stdout.trim()
            };
            return Err(CniError::new(
                code::IPAM,
                format!("IPAM plugin {name} failed ({})", out.status),
                text.to_string(),
            ));
        }
        if stdout.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&stdout).map(Some).map_err(|e| {
            CniError::new(
                code::DECODE,
                format!("IPAM plugin {name} printed invalid JSON"),
                e.to_string(),
            )
        })
    }
}

/// Rewrite `cniVersion` of a configuration (to retry a 1.1.0 config with an IPAM plugin
/// that only speaks 1.0.0, like Debian's host-local 1.1.1; the result formats of
/// 1.0.0 and 1.1.0 are the same).
pub fn with_version(conf: &Value, version: &str) -> Value {
    let mut c = conf.clone();
    if let Some(o) = c.as_object_mut() {
        o.insert("cniVersion".into(), version.into());
    }
    c
}

/// An IPAM call in flight; [`Pending::finish`] waits for it. A 1.1.0 config rejected
/// with "incompatible version" is retried once as 1.0.0.
#[derive(Debug)]
pub struct Pending {
    call: IpamCall,
    plugin: PathBuf,
    cmd: Command,
    conf: Value,
}

fn encode(conf: &Value) -> CniResult<Vec<u8>> {
    serde_json::to_vec(conf)
        .map_err(|e| CniError::new(code::IO, "cannot encode IPAM config", e.to_string()))
}

impl Pending {
    /// Start the IPAM plugin.
    pub fn start(plugin: &Path, cmd: Command, conf: Value) -> CniResult<Pending> {
        let call = spawn(plugin, cmd, &encode(&conf)?)?;
        Ok(Pending {
            call,
            plugin: plugin.to_path_buf(),
            cmd,
            conf,
        })
    }

    /// Wait for the result.
    pub fn finish(self) -> CniResult<Option<Value>> {
        match self.call.wait() {
            Err(e)
                if e.code == code::INCOMPATIBLE_VERSION
                    && self.conf.get("cniVersion").and_then(Value::as_str) == Some("1.1.0") =>
            {
                tracing::debug!("IPAM plugin does not speak 1.1.0, retrying with 1.0.0");
                let c = with_version(&self.conf, "1.0.0");
                spawn(&self.plugin, self.cmd, &encode(&c)?)?.wait()
            }
            other => other,
        }
    }
}

/// Run the IPAM plugin to completion (see [`Pending`]).
pub fn exec(plugin: &Path, cmd: Command, conf: &Value) -> CniResult<Option<Value>> {
    Pending::start(plugin, cmd, conf.clone())?.finish()
}

/// Versions the plugin reports (VERSION command).
pub fn plugin_versions(plugin: &Path) -> CniResult<Vec<String>> {
    let out = spawn(plugin, Command::Version, br#"{"cniVersion":"1.0.0"}"#)?.wait()?;
    Ok(out
        .as_ref()
        .and_then(|v| v.get("supportedVersions"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// Where host-local keeps its allocations for network `name` (`dataDir`, default
/// `/var/lib/cni/networks`, then the network name).
pub fn host_local_dir(ipam: &Value, name: &str) -> PathBuf {
    let base = ipam
        .get("dataDir")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("/var/lib/cni/networks");
    Path::new(base).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_pod_cidr_dual_stack() {
        let cidrs: Vec<IpNet> = vec![
            "10.244.1.0/24".parse().unwrap(),
            "fd00:10:244:1::/64".parse().unwrap(),
            "10.245.0.0/24".parse().unwrap(),
        ];
        let mut ipam = json!({"type": "host-local", "subnet": "usePodCidr", "dataDir": "/x"});
        assert!(uses_pod_cidr(&ipam));
        resolve_pod_cidr(&mut ipam, PodCidrs::Node(&cidrs), Path::new("node.json")).unwrap();
        assert_eq!(
            ipam,
            json!({"type": "host-local", "dataDir": "/x", "ranges": [
                [{"subnet": "10.244.1.0/24"}, {"subnet": "10.245.0.0/24"}],
                [{"subnet": "fd00:10:244:1::/64"}]]})
        );
        assert!(!uses_pod_cidr(&ipam));
    }

    #[test]
    fn ranges_pod_cidr_per_family() {
        let cidrs: Vec<IpNet> = vec![
            "10.244.1.0/24".parse().unwrap(),
            "fd00::/64".parse().unwrap(),
        ];
        let mut ipam = json!({"type": "host-local", "ranges": [[{"subnet": "usePodCidr", "gateway": "10.244.1.1"}], [{"subnet": "usePodCidrIPv6"}], [{"subnet": "192.0.2.0/24"}]]});
        resolve_pod_cidr(&mut ipam, PodCidrs::Node(&cidrs), Path::new("node.json")).unwrap();
        assert_eq!(
            ipam["ranges"],
            json!([[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}], [{"subnet": "fd00::/64"}], [{"subnet": "192.0.2.0/24"}]])
        );
    }

    #[test]
    fn missing_family_is_an_error_naming_the_file() {
        let cidrs: Vec<IpNet> = vec!["10.244.1.0/24".parse().unwrap()];
        let mut ipam = json!({"type": "host-local", "ranges": [[{"subnet": "usePodCidrIPv6"}]]});
        let e = resolve_pod_cidr(
            &mut ipam,
            PodCidrs::Node(&cidrs),
            Path::new("/var/lib/wren/node.json"),
        )
        .unwrap_err();
        assert!(
            e.msg.contains("/var/lib/wren/node.json") && e.msg.contains("podCIDRs"),
            "{e}"
        );
        let mut ipam = json!({"type": "host-local", "subnet": "usePodCidr"});
        assert!(resolve_pod_cidr(&mut ipam, PodCidrs::Node(&[]), Path::new("n")).is_err());
    }

    #[test]
    fn del_placeholder() {
        let mut ipam = json!({"type": "host-local", "subnet": "usePodCidr"});
        resolve_pod_cidr(&mut ipam, PodCidrs::DelPlaceholder, Path::new("n")).unwrap();
        assert_eq!(ipam["ranges"], json!([[{"subnet": "0.0.0.0/0"}]]));
    }

    #[test]
    fn plugin_lookup() {
        let e = find_plugin("no-such-ipam", &[PathBuf::from("/nonexistent")]).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(e.msg.contains("no-such-ipam"));
    }
}
