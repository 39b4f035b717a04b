//! Runtime environment (`CNI_*` variables), the network configuration on stdin and the
//! agent's node files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::error::{code, CniError, CniResult};
use crate::types::{check_supported, Version};

/// Default node directory shared with `wren-agent` (ARCHITECTURE.md, "Node files").
pub const DEFAULT_WREN_DIR: &str = "/var/lib/wren";

/// STATUS: the agent's `ready` file must be at most this old.
pub const READY_MAX_AGE: Duration = Duration::from_secs(30);

/// The CNI operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// ADD
    Add,
    /// DEL
    Del,
    /// CHECK
    Check,
    /// GC (1.1.0)
    Gc,
    /// STATUS (1.1.0)
    Status,
    /// VERSION
    Version,
}

impl Command {
    /// Parse `CNI_COMMAND`.
    pub fn parse(s: &str) -> CniResult<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            other => {
                return Err(CniError::msg(
                    code::INVALID_ENV,
                    format!(
                    "CNI_COMMAND \"{other}\" is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"
                ),
                ))
            }
        })
    }
}

/// The `CNI_*` environment of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// CNI_CONTAINERID
    pub container_id: String,
    /// CNI_NETNS (may be empty for DEL)
    pub netns: String,
    /// CNI_IFNAME
    pub ifname: String,
    /// CNI_ARGS, parsed `K=V;K=V`
    pub args: BTreeMap<String, String>,
    /// CNI_PATH, split on ':'
    pub path: Vec<PathBuf>,
}

fn get_env(vars: &BTreeMap<String, String>, key: &str) -> String {
    vars.get(key).cloned().unwrap_or_default()
}

impl Env {
    /// Read and validate the variables `cmd` needs (as libcni's skel does: CNI_PATH is
    /// required for every command but VERSION and STATUS).
    pub fn from_vars(cmd: Command, vars: &BTreeMap<String, String>) -> CniResult<Env> {
        let env = Env {
            container_id: get_env(vars, "CNI_CONTAINERID"),
            netns: get_env(vars, "CNI_NETNS"),
            ifname: get_env(vars, "CNI_IFNAME"),
            args: parse_cni_args(&get_env(vars, "CNI_ARGS"))?,
            path: get_env(vars, "CNI_PATH")
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        };
        let need = |name: &str, val: &str| -> CniResult<()> {
            if val.is_empty() {
                Err(CniError::msg(
                    code::INVALID_ENV,
                    format!("required environment variable {name} is missing"),
                ))
            } else {
                Ok(())
            }
        };
        match cmd {
            Command::Add | Command::Check => {
                need("CNI_CONTAINERID", &env.container_id)?;
                need("CNI_NETNS", &env.netns)?;
                need("CNI_IFNAME", &env.ifname)?;
            }
            Command::Del => {
                need("CNI_CONTAINERID", &env.container_id)?;
                need("CNI_IFNAME", &env.ifname)?;
            }
            Command::Gc | Command::Status | Command::Version => {}
        }
        if matches!(
            cmd,
            Command::Add | Command::Del | Command::Check | Command::Gc
        ) && env.path.is_empty()
        {
            need("CNI_PATH", "")?;
        }
        if !env.ifname.is_empty() {
            validate_ifname(&env.ifname)?;
        }
        if !env.container_id.is_empty() && !is_cni_name(&env.container_id) {
            // libcni's skel (utils.ValidateContainerID) rejects these with the same code.
            return Err(CniError::new(
                code::INVALID_ENV,
                "CNI_CONTAINERID has invalid characters (allowed: letters, digits, '_', '.', '-', starting with a letter or digit)",
                env.container_id.clone(),
            ));
        }
        Ok(env)
    }

    /// `K8S_POD_NAMESPACE`/`K8S_POD_NAME` from CNI_ARGS, when both are present.
    pub fn pod(&self) -> Option<(&str, &str)> {
        let ns = self.args.get("K8S_POD_NAMESPACE")?;
        let name = self.args.get("K8S_POD_NAME")?;
        if ns.is_empty() || name.is_empty() {
            return None;
        }
        Some((ns.as_str(), name.as_str()))
    }

    /// The host-side veth name for this attachment: Calico's name for the pod, or,
    /// without `K8S_POD_*` (ctr, nerdctl, podman), "cali" + the first 11 hex characters
    /// of SHA-1 of the container id. Not the id's own first characters: runtimes such
    /// as `ctr` use ids like `default-app1`, `default-app2` that share them.
    pub fn host_veth_name(&self) -> String {
        match self.pod() {
            Some((ns, name)) => host_veth_name_for_pod(ns, name),
            None => {
                let hexed = hex::encode(Sha1::digest(self.container_id.as_bytes()));
                format!("cali{}", hexed.get(..11).unwrap_or(&hexed))
            }
        }
    }
}

/// Calico's `VethNameForWorkload`: "cali" + first 11 hex chars of SHA-1("<ns>.<pod>").
pub fn host_veth_name_for_pod(namespace: &str, pod: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    let hexed = hex::encode(digest);
    format!("cali{}", hexed.get(..11).unwrap_or(&hexed))
}

/// The spec's rule for container ids and network names (libcni's `cniValidNameChars`):
/// an ASCII letter or digit, then letters, digits, `_`, `.` or `-`.
pub fn is_cni_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Interface names: 1..=15 bytes, not "." or "..", no '/', ':' or whitespace (what
/// the kernel's `dev_valid_name` accepts, plus ':' which iproute2 rejects).
pub fn validate_ifname(name: &str) -> CniResult<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(CniError::msg(
            code::INVALID_ENV,
            format!("CNI_IFNAME \"{name}\" is not a valid interface name (1-15 characters, no '/', ':' or spaces)"),
        ));
    }
    Ok(())
}

/// Parse CNI_ARGS (`K=V;K=V`).
pub fn parse_cni_args(s: &str) -> CniResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            CniError::msg(
                code::INVALID_ENV,
                format!("CNI_ARGS: \"{part}\" is not of the form KEY=VALUE"),
            )
        })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// A `{containerID, ifname}` pair of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct Attachment {
    /// Container id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
}

/// The network configuration on stdin.
///
/// Not `deny_unknown_fields`, deliberately: the CNI spec lets runtimes inject keys
/// (`runtimeConfig`, `prevResult`, `args`, `cni.dev/*`) and says plugins must ignore
/// unknown ones, since a conflist's keys are shared by the whole chain. Instead, every
/// key is collected and [`NetConf::validate`] rejects those that look like a misspelt
/// Wren key (`wrenDir`, `log_levl`, `wren_mtu`...), naming the right spelling.
#[derive(Debug, Clone, Deserialize)]
pub struct NetConf {
    /// Spec version (absent = 0.1.0 in old runtimes, which we do not support).
    #[serde(rename = "cniVersion", default)]
    pub cni_version: Option<String>,
    /// Network name.
    #[serde(default)]
    pub name: String,
    /// Plugin type (the binary name).
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// IPAM section, passed to the IPAM plugin.
    #[serde(default)]
    pub ipam: Option<Value>,
    /// Pod interface MTU; 0 or absent = node.json's, else the kernel default.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Node directory (default /var/lib/wren).
    #[serde(default)]
    pub wren_dir: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace).
    #[serde(default)]
    pub log_level: Option<String>,
    /// Log file (default: stderr).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// DEL: `true` removes the host routes at once and leaves the veth to a detached
    /// helper process; default `false`: the pair is deleted before DEL returns.
    #[serde(default)]
    pub deferred_teardown: Option<bool>,
    /// Previous result of the chain.
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    /// GC: attachments to keep.
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<Attachment>>,
    /// GC: the spec-v1.1.0 tag's name for the same list.
    #[serde(rename = "cni.dev/attachments", default)]
    pub attachments: Option<Vec<Attachment>>,
    /// Every other key (kept for typo detection only).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Wren's own keys, for typo detection.
const WREN_KEYS: &[&str] = &[
    "mtu",
    "wren_dir",
    "log_level",
    "log_file",
    "deferred_teardown",
];

/// Keys defined by the spec or its conventions, never typos.
const STANDARD_KEYS: &[&str] = &[
    "runtimeConfig",
    "capabilities",
    "args",
    "dns",
    "ipMasq",
    "cniVersions",
    "disableCheck",
    "disableGC",
    "plugins",
];

fn normalise(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// If `key` looks like a misspelling of a Wren key, that key.
pub fn wren_typo(key: &str) -> Option<&'static str> {
    if STANDARD_KEYS.contains(&key) || key.starts_with("cni.dev/") {
        return None;
    }
    let n = normalise(key);
    for w in WREN_KEYS {
        let wn = normalise(w);
        if n == wn || (w.len() >= 6 && edit_distance(&n, &wn) <= 2) {
            return Some(w);
        }
    }
    if n.starts_with("wren") {
        return Some("wren_dir");
    }
    None
}

impl NetConf {
    /// Parse stdin.
    pub fn parse(stdin: &[u8]) -> CniResult<(NetConf, Value)> {
        let raw: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODE,
                "network configuration on stdin is not valid JSON",
                e.to_string(),
            )
        })?;
        let conf: NetConf = serde_json::from_value(raw.clone()).map_err(|e| {
            CniError::new(
                code::DECODE,
                "network configuration has a field of the wrong type",
                e.to_string(),
            )
        })?;
        Ok((conf, raw))
    }

    /// The version string (defaults to the latest when absent, only for VERSION).
    pub fn version_str(&self) -> &str {
        self.cni_version.as_deref().unwrap_or(crate::types::LATEST)
    }

    /// Validate for a command other than VERSION; returns the parsed version.
    pub fn validate(&self, cmd: Command) -> CniResult<Version> {
        let vs = self.cni_version.as_deref().ok_or_else(|| {
            CniError::msg(
                code::INCOMPATIBLE_VERSION,
                "network configuration has no \"cniVersion\"; wren supports 0.3.0 and later",
            )
        })?;
        let v = check_supported(vs)?;
        for key in self.other.keys() {
            if let Some(w) = wren_typo(key) {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    format!("network configuration key \"{key}\" is not a wren setting; did you mean \"{w}\"?"),
                ));
            }
        }
        if let Some(m) = self.mtu.filter(|m| *m != 0) {
            if !(68..=65535).contains(&m) {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    format!("mtu {m} is invalid, use 0 (node.json's) or 68..65535"),
                ));
            }
        }
        if let Some(l) = &self.log_level {
            if parse_level(l).is_none() {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    format!("log_level \"{l}\" is invalid, use error, warn, info, debug or trace"),
                ));
            }
        }
        match cmd {
            Command::Check if !v.supports_check() => {
                return Err(CniError::msg(
                    code::INCOMPATIBLE_VERSION,
                    format!("CHECK is not supported for cniVersion {vs}; it needs 0.4.0 or later"),
                ))
            }
            Command::Gc | Command::Status if !v.supports_gc_status() => {
                return Err(CniError::msg(
                    code::INCOMPATIBLE_VERSION,
                    format!("GC and STATUS need cniVersion 1.1.0, the config says {vs}"),
                ))
            }
            _ => {}
        }
        if matches!(
            cmd,
            Command::Add | Command::Del | Command::Check | Command::Gc
        ) {
            if self.name.is_empty() {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    "network configuration has no \"name\"",
                ));
            }
            // The name becomes a directory of the IPAM store (GC removes files there)
            // and a field of the host veth's alias: no '/', ':' or "..".
            if !is_cni_name(&self.name) {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    format!("network name \"{}\" has invalid characters (allowed: letters, digits, '_', '.', '-', starting with a letter or digit)", self.name),
                ));
            }
            if self.ipam_type().is_none() {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    "network configuration has no \"ipam\" section with a \"type\" (for example {\"type\": \"host-local\", \"subnet\": \"usePodCidr\"})",
                ));
            }
        }
        Ok(v)
    }

    /// The IPAM plugin name.
    pub fn ipam_type(&self) -> Option<&str> {
        self.ipam
            .as_ref()?
            .get("type")?
            .as_str()
            .filter(|t| !t.is_empty() && !t.contains('/'))
    }

    /// The node directory.
    pub fn wren_dir(&self) -> PathBuf {
        self.wren_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_WREN_DIR))
    }

    /// GC's valid attachments (either key; both are merged).
    pub fn gc_attachments(&self) -> Option<Vec<Attachment>> {
        if self.valid_attachments.is_none() && self.attachments.is_none() {
            return None;
        }
        let mut all: Vec<Attachment> = self
            .valid_attachments
            .iter()
            .chain(self.attachments.iter())
            .flatten()
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        Some(all)
    }
}

/// Parse a log level name.
pub fn parse_level(s: &str) -> Option<tracing::Level> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Some(tracing::Level::ERROR),
        "warn" | "warning" => Some(tracing::Level::WARN),
        "info" => Some(tracing::Level::INFO),
        "debug" => Some(tracing::Level::DEBUG),
        "trace" => Some(tracing::Level::TRACE),
        _ => None,
    }
}

/// `node.json`, written by the agent. Unknown fields are ignored (not
/// `deny_unknown_fields`): the agent may add fields in a newer version, and an older
/// plugin on the node must keep working.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct NodeFile {
    /// Node name.
    #[serde(rename = "nodeName")]
    pub node_name: String,
    /// Pod CIDRs of the node.
    #[serde(rename = "podCIDRs")]
    pub pod_cidrs: Vec<IpNet>,
    /// Pod interface MTU (0 = kernel default).
    #[serde(default)]
    pub mtu: u32,
    /// "none" or "ipip" (informational).
    #[serde(default)]
    pub encapsulation: Option<String>,
}

impl NodeFile {
    /// Read `<dir>/node.json`. `Ok(None)` when it does not exist.
    pub fn read(dir: &Path) -> CniResult<Option<NodeFile>> {
        let path = dir.join("node.json");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CniError::new(
                    code::NODE_FILE,
                    format!("cannot read {}", path.display()),
                    e.to_string(),
                ))
            }
        };
        let node: NodeFile = serde_json::from_slice(&data).map_err(|e| {
            CniError::new(
                code::NODE_FILE,
                format!("{} is malformed", path.display()),
                e.to_string(),
            )
        })?;
        Ok(Some(node))
    }

    /// Read `<dir>/node.json`, an error naming the file when it is missing.
    pub fn require(dir: &Path) -> CniResult<NodeFile> {
        Self::read(dir)?.ok_or_else(|| missing_node_file(dir))
    }
}

/// The error for a missing node.json.
pub fn missing_node_file(dir: &Path) -> CniError {
    CniError::msg(
        code::NODE_FILE,
        format!(
            "{} does not exist: wren-agent must be running with {} mounted",
            dir.join("node.json").display(),
            dir.display()
        ),
    )
}

/// STATUS: whether `<dir>/ready` exists and is fresh.
pub fn check_ready(dir: &Path, now: SystemTime) -> CniResult<()> {
    let path = dir.join("ready");
    let meta = std::fs::metadata(&path).map_err(|e| {
        CniError::new(
            code::NOT_AVAILABLE,
            format!("wren-agent is not ready: {} is missing", path.display()),
            e.to_string(),
        )
    })?;
    let mtime = meta.modified().map_err(|e| {
        CniError::new(
            code::NOT_AVAILABLE,
            format!("cannot read the mtime of {}", path.display()),
            e.to_string(),
        )
    })?;
    let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
    if age > READY_MAX_AGE {
        return Err(CniError::msg(
            code::NOT_AVAILABLE,
            format!(
                "wren-agent is not ready: {} is {} s old (stale after {} s); is wren-agent running?",
                path.display(),
                age.as_secs(),
                READY_MAX_AGE.as_secs()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_match_calico() {
        // Calico's unit test uses prefix "eni": sha1("namespace.podname")[:11] = 82111e10a96.
        assert_eq!(
            host_veth_name_for_pod("namespace", "podname"),
            "cali82111e10a96"
        );
        assert_eq!(
            host_veth_name_for_pod("default", "nginx"),
            "calic440f455693"
        );
    }

    #[test]
    fn fallback_name_uses_container_id() {
        let env = Env {
            container_id: "0123456789abcdef".into(),
            ..Env::default()
        };
        // sha1("0123456789abcdef") = 2c6b9b7b...: ids sharing a prefix get distinct names.
        let name = env.host_veth_name();
        assert_eq!(name.len(), 15);
        assert!(name.starts_with("cali"));
        let other = Env {
            container_id: "0123456789abcdeX".into(),
            ..Env::default()
        };
        assert_ne!(other.host_veth_name(), name);
        let hexed = hex::encode(Sha1::digest(b"0123456789abcdef"));
        assert_eq!(name, format!("cali{}", &hexed[..11]));
    }

    #[test]
    fn cni_args() {
        let a = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p").unwrap();
        assert_eq!(a.get("K8S_POD_NAME").map(String::as_str), Some("p"));
        assert!(parse_cni_args("garbage").is_err());
        assert!(parse_cni_args("").unwrap().is_empty());
    }

    #[test]
    fn env_requirements() {
        let mut vars = BTreeMap::new();
        vars.insert("CNI_CONTAINERID".to_string(), "c".to_string());
        vars.insert("CNI_IFNAME".to_string(), "eth0".to_string());
        vars.insert("CNI_PATH".to_string(), "/opt/cni/bin".to_string());
        assert!(Env::from_vars(Command::Del, &vars).is_ok());
        assert_eq!(
            Env::from_vars(Command::Add, &vars)
                .map_err(|e| e.code)
                .err(),
            Some(4)
        );
        vars.insert("CNI_IFNAME".to_string(), "a/b".to_string());
        assert_eq!(
            Env::from_vars(Command::Del, &vars)
                .map_err(|e| e.code)
                .err(),
            Some(4)
        );
    }

    #[test]
    fn container_ids_and_network_names_follow_the_spec() {
        let mut vars = BTreeMap::new();
        vars.insert("CNI_IFNAME".to_string(), "eth0".to_string());
        vars.insert("CNI_PATH".to_string(), "/opt/cni/bin".to_string());
        for bad in ["a/b", "../x", "a:b", "-a", "a b", "é"] {
            vars.insert("CNI_CONTAINERID".to_string(), bad.to_string());
            assert_eq!(
                Env::from_vars(Command::Del, &vars)
                    .map_err(|e| e.code)
                    .err(),
                Some(4),
                "{bad}"
            );
        }
        vars.insert("CNI_CONTAINERID".to_string(), "0a_b.c-D".to_string());
        assert!(Env::from_vars(Command::Del, &vars).is_ok());
        for (name, ok) in [
            ("k8s-pod-network", true),
            ("a.b_c", true),
            ("../../etc", false),
            ("net:x", false),
            ("a/b", false),
            (".hidden", false),
        ] {
            let c = format!(
                r#"{{"cniVersion":"1.0.0","name":"{name}","type":"wren","ipam":{{"type":"host-local"}}}}"#
            );
            let (c, _) = NetConf::parse(c.as_bytes()).unwrap();
            assert_eq!(
                c.validate(Command::Add).map_err(|e| e.code).err(),
                if ok { None } else { Some(7) },
                "{name}"
            );
        }
    }

    #[test]
    fn mtu_range() {
        for (mtu, ok) in [
            (0, true),
            (68, true),
            (1500, true),
            (9000, true),
            (10, false),
            (70000, false),
        ] {
            let c = format!(
                r#"{{"cniVersion":"1.0.0","name":"n","type":"wren","mtu":{mtu},"ipam":{{"type":"host-local"}}}}"#
            );
            let (c, _) = NetConf::parse(c.as_bytes()).unwrap();
            assert_eq!(c.validate(Command::Add).is_ok(), ok, "mtu {mtu}");
        }
    }

    #[test]
    fn typos_are_caught_but_standard_keys_pass() {
        assert_eq!(wren_typo("wrenDir"), Some("wren_dir"));
        assert_eq!(wren_typo("log_levl"), Some("log_level"));
        assert_eq!(wren_typo("logFile"), Some("log_file"));
        assert_eq!(wren_typo("MTU"), Some("mtu"));
        assert_eq!(wren_typo("wren_mtu"), Some("wren_dir"));
        assert_eq!(wren_typo("runtimeConfig"), None);
        assert_eq!(wren_typo("capabilities"), None);
        assert_eq!(wren_typo("cni.dev/valid-attachments"), None);
        assert_eq!(wren_typo("nodename"), None);
        assert_eq!(wren_typo("policy"), None);
    }

    #[test]
    fn conf_accepts_runtime_keys_and_rejects_typos() {
        let ok = br#"{"cniVersion":"1.0.0","name":"n","type":"wren","ipam":{"type":"host-local"},
            "runtimeConfig":{"portMappings":[]},"prevResult":{},"args":{"cni":{}},"somePluginKey":1}"#;
        let (c, _) = NetConf::parse(ok).unwrap();
        assert!(c.validate(Command::Add).is_ok());
        let bad = br#"{"cniVersion":"1.0.0","name":"n","type":"wren","ipam":{"type":"host-local"},"wrenDir":"/x"}"#;
        let (c, _) = NetConf::parse(bad).unwrap();
        assert_eq!(c.validate(Command::Add).map_err(|e| e.code).err(), Some(7));
        let wrong_type = br#"{"cniVersion":"1.0.0","name":"n","type":"wren","mtu":"big"}"#;
        assert_eq!(
            NetConf::parse(wrong_type).map_err(|e| e.code).err(),
            Some(6)
        );
    }

    #[test]
    fn version_gates() {
        let (c, _) = NetConf::parse(
            br#"{"cniVersion":"0.3.1","name":"n","type":"wren","ipam":{"type":"x"}}"#,
        )
        .unwrap();
        assert!(c.validate(Command::Add).is_ok());
        assert_eq!(
            c.validate(Command::Check).map_err(|e| e.code).err(),
            Some(1)
        );
        let (c, _) = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"wren"}"#).unwrap();
        assert_eq!(c.validate(Command::Gc).map_err(|e| e.code).err(), Some(1));
        assert_eq!(c.validate(Command::Add).map_err(|e| e.code).err(), Some(7));
    }

    #[test]
    fn node_file_and_ready() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(NodeFile::read(dir.path()).unwrap(), None);
        assert_eq!(
            NodeFile::require(dir.path()).map_err(|e| e.code).err(),
            Some(103)
        );
        std::fs::write(
            dir.path().join("node.json"),
            r#"{"nodeName":"n1","podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"],"mtu":1480,"encapsulation":"none"}"#,
        )
        .unwrap();
        let n = NodeFile::require(dir.path()).unwrap();
        assert_eq!(n.mtu, 1480);
        assert_eq!(n.pod_cidrs.len(), 2);
        std::fs::write(
            dir.path().join("node.json"),
            r#"{"nodeName":"n1","podCIDRs":["bogus"]}"#,
        )
        .unwrap();
        let e = NodeFile::read(dir.path()).unwrap_err();
        assert!(e.msg.contains("node.json"), "{e}");

        let now = SystemTime::now();
        assert_eq!(
            check_ready(dir.path(), now).map_err(|e| e.code).err(),
            Some(50)
        );
        std::fs::write(
            dir.path().join("ready"),
            r#"{"pid":1,"since":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(check_ready(dir.path(), now).is_ok());
        let later = now + Duration::from_secs(120);
        assert_eq!(
            check_ready(dir.path(), later).map_err(|e| e.code).err(),
            Some(50)
        );
    }
}
