//! containerlab topology files (`*.clab.yml`) and Wren's per-node labels.
//!
//! The subset read here is the one a lab of Linux hosts needs: `name`, `topology.defaults`,
//! `topology.kinds`, `topology.nodes` (kinds `linux` and `bridge`) and `topology.links` in the
//! brief (`endpoints: ["a:eth1", "b:eth1"]`) and extended (`type: veth`, endpoint objects,
//! `mtu`) forms. Every key outside that subset is an error naming the key, so a typo never
//! silently changes a lab. Wren's own per-node settings are node `labels` whose keys start
//! with `wren.` (containerlab accepts any label), see [`WrenNode`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::cmd::split_words;
use crate::error::{Error, Result};

/// A scalar YAML value (string, number or bool) as containerlab accepts for env and labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    S(String),
    I(i64),
    F(f64),
    B(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    mgmt: Option<serde_yaml::Value>,
    topology: RawTopology,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    defaults: Option<RawNode>,
    #[serde(default)]
    kinds: BTreeMap<String, RawNode>,
    nodes: BTreeMap<String, Option<RawNode>>,
    #[serde(default)]
    links: Vec<RawLink>,
}

// Some keys are accepted only so that real containerlab files load; the local backend has
// no use for them (images, management addresses, ...).
#[allow(dead_code)]
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    kind: Option<String>,
    image: Option<String>,
    image_pull_policy: Option<String>,
    group: Option<String>,
    exec: Option<Vec<String>>,
    env: Option<BTreeMap<String, Scalar>>,
    binds: Option<Vec<String>>,
    labels: Option<BTreeMap<String, Scalar>>,
    cmd: Option<String>,
    entrypoint: Option<String>,
    startup_delay: Option<u32>,
    sysctls: Option<BTreeMap<String, Scalar>>,
    user: Option<Scalar>,
    mgmt_ipv4: Option<String>,
    mgmt_ipv6: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    endpoints: Vec<serde_yaml::Value>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    vars: Option<serde_yaml::Value>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Scalar>>,
}

/// Node kinds the local backend builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A Linux host: one network namespace.
    Linux,
    /// A LAN segment: a Linux bridge in its own namespace; every endpoint on it is a port.
    Bridge,
}

/// What runs in a node when a lab is brought up with roles (`wren-testbed up`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Nothing (the node is only addressed and routed by its `exec` commands).
    None,
    /// BIRD 2 with the config bound at `/etc/bird/bird.conf`.
    Bird,
    /// FRR bgpd with the config bound at `/etc/frr/frr.conf`; `zebra` also runs zebra.
    Frr {
        /// Run zebra too (kernel routes).
        zebra: bool,
    },
    /// GoBGP with the config bound at `/etc/gobgp/gobgpd.toml`.
    Gobgp,
    /// ExaBGP with the config bound at `/etc/exabgp/exabgp.conf`.
    Exabgp,
    /// The node's `cmd`, run as a plain process with log capture.
    Process,
}

/// Wren's per-node settings, taken from node labels with the `wren.` prefix.
///
/// | label | values | default |
/// |---|---|---|
/// | `wren.role` | `none`, `bird`, `frr`, `frr-zebra`, `gobgp`, `exabgp`, `process` | `none` |
/// | `wren.forwarding` | `true`, `false` (IPv4/IPv6 forwarding in the namespace) | `true` |
/// | `wren.pods` | comma-separated pod names created through CNI on `up` | none |
/// | `wren.cni-conflist` | CNI network config list (path relative to the topology file) | — |
/// | `wren.modules` | comma-separated kernel modules the node needs (e.g. `ipip`) | none |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrenNode {
    /// Role started by `up`.
    pub role: Role,
    /// Forwarding on in the namespace.
    pub forwarding: bool,
    /// Pods to create on `up`.
    pub pods: Vec<String>,
    /// Conflist for those pods.
    pub cni_conflist: Option<PathBuf>,
    /// Kernel modules this node needs.
    pub modules: Vec<String>,
}

/// A bind `src:dst[:opts]`; `src` is resolved against the topology file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path.
    pub src: PathBuf,
    /// Path inside the container.
    pub dst: String,
}

/// One validated node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// Kind.
    pub kind: NodeKind,
    /// Container image (used by containerlab only).
    pub image: Option<String>,
    /// `exec` commands, already split into words (run in the namespace after links are up).
    pub exec: Vec<Vec<String>>,
    /// Environment for `exec`, `cmd` and roles.
    pub env: BTreeMap<String, String>,
    /// Binds (locally only used to find a role's config file).
    pub binds: Vec<Bind>,
    /// Labels other than `wren.*`.
    pub labels: BTreeMap<String, String>,
    /// `cmd`, split into words.
    pub cmd: Option<Vec<String>>,
    /// sysctls applied in the namespace.
    pub sysctls: BTreeMap<String, String>,
    /// Wren settings.
    pub wren: WrenNode,
}

impl Node {
    /// The host path bound at `dst`, if any.
    pub fn bind_for(&self, dst: &str) -> Option<&Path> {
        self.binds
            .iter()
            .find(|b| b.dst == dst)
            .map(|b| b.src.as_path())
    }
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Node name.
    pub node: String,
    /// Interface name inside the node (at most 15 bytes).
    pub iface: String,
    /// MAC address, if given.
    pub mac: Option<String>,
    /// Addresses from the extended endpoint form (`ipv4`, `ipv6`).
    pub addrs: Vec<IpNet>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

/// A point-to-point veth link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// First end.
    pub a: Endpoint,
    /// Second end.
    pub b: Endpoint,
    /// MTU of both ends.
    pub mtu: Option<u32>,
}

/// A validated topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Lab name.
    pub name: String,
    /// File it came from (`None` for inline text).
    pub file: Option<PathBuf>,
    /// Directory relative paths resolve against.
    pub dir: PathBuf,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Links in file order.
    pub links: Vec<Link>,
}

const NODE_KEYS: &str = "kind, image, image-pull-policy, group, exec, env, binds, labels, cmd, \
entrypoint, startup-delay, sysctls, user, mgmt-ipv4, mgmt-ipv6";

impl Topology {
    /// Reads and validates a topology file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        let mut t = Self::parse(&text, &path.display().to_string(), &dir)?;
        t.file = Some(path.to_path_buf());
        Ok(t)
    }

    /// Parses topology text; `origin` names it in errors, `dir` resolves relative paths.
    pub fn parse(text: &str, origin: &str, dir: &Path) -> Result<Self> {
        let raw: RawFile = serde_yaml::from_str(text).map_err(|e| {
            let mut msg = e.to_string();
            if msg.contains("unknown field") && msg.contains("expected one of `kind`") {
                msg.push_str(&format!(" (node keys read by wren-testbed: {NODE_KEYS})"));
            }
            Error::topo(origin, msg)
        })?;
        let _ = (&raw.prefix, &raw.mgmt);
        let file = origin;
        check_name(file, "lab name", &raw.name)?;
        let defaults = raw.topology.defaults.unwrap_or_default();
        for k in raw.topology.kinds.keys() {
            if k != "linux" && k != "bridge" {
                return Err(Error::topo(
                    file,
                    format!("topology.kinds.{k}: kind `{k}` is not supported by the local backend (use linux or bridge)"),
                ));
            }
        }
        let mut nodes = BTreeMap::new();
        for (name, raw_node) in raw.topology.nodes {
            check_name(file, "node name", &name)?;
            let raw_node = raw_node.unwrap_or_default();
            let kind_name = raw_node
                .kind
                .clone()
                .or_else(|| defaults.kind.clone())
                .ok_or_else(|| {
                    Error::topo(
                        file,
                        format!("topology.nodes.{name}: missing `kind` (linux or bridge)"),
                    )
                })?;
            let kind = match kind_name.as_str() {
                "linux" => NodeKind::Linux,
                "bridge" => NodeKind::Bridge,
                other => {
                    return Err(Error::topo(
                        file,
                        format!("topology.nodes.{name}.kind: `{other}` is not supported by the local backend (use linux or bridge)"),
                    ))
                }
            };
            let kind_defaults = raw
                .topology
                .kinds
                .get(&kind_name)
                .cloned()
                .unwrap_or_default();
            let merged = merge(&defaults, &kind_defaults, raw_node);
            nodes.insert(name.clone(), build_node(file, dir, &name, kind, merged)?);
        }
        let mut links = Vec::new();
        let mut used: BTreeSet<(String, String)> = BTreeSet::new();
        for (i, l) in raw.topology.links.into_iter().enumerate() {
            let at = format!("topology.links[{i}]");
            let _ = (&l.vars, &l.labels);
            if let Some(k) = &l.kind {
                if k != "veth" {
                    return Err(Error::topo(
                        file,
                        format!("{at}.type: link type `{k}` is not supported by the local backend (use veth)"),
                    ));
                }
            }
            if l.endpoints.len() != 2 {
                return Err(Error::topo(
                    file,
                    format!("{at}.endpoints: a veth link has exactly 2 endpoints, found {}; use a `kind: bridge` node for a LAN", l.endpoints.len()),
                ));
            }
            let mut eps = Vec::new();
            for (j, v) in l.endpoints.iter().enumerate() {
                let ep = parse_endpoint(file, &format!("{at}.endpoints[{j}]"), v)?;
                if !nodes.contains_key(&ep.node) {
                    return Err(Error::topo(
                        file,
                        format!(
                            "{at}.endpoints[{j}]: node `{}` is not defined in topology.nodes",
                            ep.node
                        ),
                    ));
                }
                if !used.insert((ep.node.clone(), ep.iface.clone())) {
                    return Err(Error::topo(
                        file,
                        format!("{at}.endpoints[{j}]: interface `{ep}` is used by two links"),
                    ));
                }
                eps.push(ep);
            }
            let b = eps.pop();
            let a = eps.pop();
            if let (Some(a), Some(b)) = (a, b) {
                if a.node == b.node {
                    return Err(Error::topo(
                        file,
                        format!("{at}: both ends are on node `{}`", a.node),
                    ));
                }
                if let Some(m) = l.mtu {
                    if !(68..=65535).contains(&m) {
                        return Err(Error::topo(
                            file,
                            format!("{at}.mtu: {m} is out of range 68..65535"),
                        ));
                    }
                }
                links.push(Link { a, b, mtu: l.mtu });
            }
        }
        Ok(Topology {
            name: raw.name,
            file: None,
            dir: dir.to_path_buf(),
            nodes,
            links,
        })
    }

    /// Kernel modules any node needs (`wren.modules` labels), sorted and deduplicated.
    pub fn required_modules(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .nodes
            .values()
            .flat_map(|n| n.wren.modules.iter().cloned())
            .collect();
        set.into_iter().collect()
    }

    /// The node, or an error naming it.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("node `{name}` is not in lab `{}`", self.name)))
    }
}

fn check_name(file: &str, what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::topo(
            file,
            format!("{what} `{name}`: use 1-40 characters from a-z, A-Z, 0-9, '-', '_'"),
        ))
    }
}

fn check_iface(file: &str, at: &str, iface: &str) -> Result<()> {
    let ok = !iface.is_empty()
        && iface.len() <= 15
        && iface != "lo"
        && iface
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::topo(
            file,
            format!("{at}: interface name `{iface}` is invalid: 1-15 characters from a-z, A-Z, 0-9, '-', '_', '.', not `lo`"),
        ))
    }
}

fn merge(defaults: &RawNode, kind: &RawNode, node: RawNode) -> RawNode {
    fn pick<T: Clone>(n: Option<T>, k: &Option<T>, d: &Option<T>) -> Option<T> {
        n.or_else(|| k.clone()).or_else(|| d.clone())
    }
    fn maps(
        d: &Option<BTreeMap<String, Scalar>>,
        k: &Option<BTreeMap<String, Scalar>>,
        n: Option<BTreeMap<String, Scalar>>,
    ) -> Option<BTreeMap<String, Scalar>> {
        if d.is_none() && k.is_none() && n.is_none() {
            return None;
        }
        let mut out = d.clone().unwrap_or_default();
        out.extend(k.clone().unwrap_or_default());
        out.extend(n.unwrap_or_default());
        Some(out)
    }
    let mut binds: Vec<String> = Vec::new();
    for b in [&defaults.binds, &kind.binds, &node.binds]
        .into_iter()
        .flatten()
    {
        binds.extend(b.iter().cloned());
    }
    RawNode {
        kind: node.kind,
        image: pick(node.image, &kind.image, &defaults.image),
        image_pull_policy: None,
        group: None,
        exec: pick(node.exec, &kind.exec, &defaults.exec),
        env: maps(&defaults.env, &kind.env, node.env),
        binds: Some(binds),
        labels: maps(&defaults.labels, &kind.labels, node.labels),
        cmd: pick(node.cmd, &kind.cmd, &defaults.cmd),
        entrypoint: None,
        startup_delay: None,
        sysctls: maps(&defaults.sysctls, &kind.sysctls, node.sysctls),
        user: None,
        mgmt_ipv4: None,
        mgmt_ipv6: None,
    }
}

fn build_node(file: &str, dir: &Path, name: &str, kind: NodeKind, raw: RawNode) -> Result<Node> {
    let at = format!("topology.nodes.{name}");
    let mut exec = Vec::new();
    for (i, line) in raw.exec.unwrap_or_default().iter().enumerate() {
        let words =
            split_words(line).map_err(|e| Error::topo(file, format!("{at}.exec[{i}]: {e}")))?;
        if words.is_empty() {
            return Err(Error::topo(file, format!("{at}.exec[{i}]: empty command")));
        }
        exec.push(words);
    }
    let cmd = match raw.cmd {
        Some(c) => {
            let w = split_words(&c).map_err(|e| Error::topo(file, format!("{at}.cmd: {e}")))?;
            if w.is_empty() {
                return Err(Error::topo(file, format!("{at}.cmd: empty command")));
            }
            Some(w)
        }
        None => None,
    };
    let env: BTreeMap<String, String> = raw
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
    let sysctls: BTreeMap<String, String> = raw
        .sysctls
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_string()))
        .collect();
    let mut binds = Vec::new();
    for (i, b) in raw.binds.unwrap_or_default().iter().enumerate() {
        let mut parts = b.splitn(3, ':');
        let (src, dst) = match (parts.next(), parts.next()) {
            (Some(s), Some(d)) if !s.is_empty() && !d.is_empty() => (s, d),
            _ => {
                return Err(Error::topo(
                    file,
                    format!("{at}.binds[{i}]: `{b}` is not `host-path:container-path[:ro]`"),
                ))
            }
        };
        binds.push(Bind {
            src: dir.join(src),
            dst: dst.to_string(),
        });
    }
    let mut labels = BTreeMap::new();
    let mut wren = WrenNode {
        role: Role::None,
        forwarding: true,
        pods: Vec::new(),
        cni_conflist: None,
        modules: Vec::new(),
    };
    for (k, v) in raw.labels.unwrap_or_default() {
        let v = v.into_string();
        let Some(key) = k.strip_prefix("wren.") else {
            labels.insert(k, v);
            continue;
        };
        let lat = format!("{at}.labels.{k}");
        match key {
            "role" => {
                wren.role = match v.as_str() {
                    "none" => Role::None,
                    "bird" => Role::Bird,
                    "frr" => Role::Frr { zebra: false },
                    "frr-zebra" => Role::Frr { zebra: true },
                    "gobgp" => Role::Gobgp,
                    "exabgp" => Role::Exabgp,
                    "process" => Role::Process,
                    other => {
                        return Err(Error::topo(
                            file,
                            format!("{lat}: unknown role `{other}` (none, bird, frr, frr-zebra, gobgp, exabgp, process)"),
                        ))
                    }
                }
            }
            "forwarding" => {
                wren.forwarding = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(Error::topo(file, format!("{lat}: `{other}` is not true or false")))
                    }
                }
            }
            "pods" => {
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    check_name(file, &format!("{lat}: pod name"), p)?;
                    wren.pods.push(p.to_string());
                }
            }
            "cni-conflist" => wren.cni_conflist = Some(dir.join(v)),
            "modules" => {
                for m in v.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                    if !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        return Err(Error::topo(file, format!("{lat}: `{m}` is not a module name")));
                    }
                    wren.modules.push(m.to_string());
                }
            }
            _ => {
                return Err(Error::topo(
                    file,
                    format!("{lat}: unknown Wren label `{k}` (known: wren.role, wren.forwarding, wren.pods, wren.cni-conflist, wren.modules)"),
                ))
            }
        }
    }
    if kind == NodeKind::Bridge && (wren.role != Role::None || !wren.pods.is_empty()) {
        return Err(Error::topo(
            file,
            format!("{at}: a bridge node cannot have a role or pods"),
        ));
    }
    if !wren.pods.is_empty() && wren.cni_conflist.is_none() {
        return Err(Error::topo(
            file,
            format!(
                "{at}.labels: `wren.pods` needs `wren.cni-conflist` (the CNI network config list)"
            ),
        ));
    }
    let node = Node {
        name: name.to_string(),
        kind,
        image: raw.image,
        exec,
        env,
        binds,
        labels,
        cmd,
        sysctls,
        wren,
    };
    // A role needs its config; name the missing bind now rather than at `up`.
    let need = match node.wren.role {
        Role::Bird => Some(crate::daemons::bird::CONFIG_BIND),
        Role::Frr { .. } => Some(crate::daemons::frr::CONFIG_BIND),
        Role::Gobgp => Some(crate::daemons::gobgp::CONFIG_BIND),
        Role::Exabgp => Some(crate::daemons::exabgp::CONFIG_BIND),
        Role::Process | Role::None => None,
    };
    if let Some(dst) = need {
        if node.bind_for(dst).is_none() {
            return Err(Error::topo(
                file,
                format!("{at}: role needs its config bound at `{dst}` (binds: [\"<file>:{dst}\"])"),
            ));
        }
    }
    if node.wren.role == Role::Process && node.cmd.is_none() {
        return Err(Error::topo(
            file,
            format!("{at}: `wren.role: process` needs `cmd`"),
        ));
    }
    Ok(node)
}

fn parse_endpoint(file: &str, at: &str, v: &serde_yaml::Value) -> Result<Endpoint> {
    match v {
        serde_yaml::Value::String(s) => {
            let (node, iface) = s
                .split_once(':')
                .ok_or_else(|| Error::topo(file, format!("{at}: `{s}` is not `node:interface`")))?;
            check_iface(file, at, iface)?;
            Ok(Endpoint {
                node: node.to_string(),
                iface: iface.to_string(),
                mac: None,
                addrs: Vec::new(),
            })
        }
        serde_yaml::Value::Mapping(m) => {
            let mut ep = Endpoint {
                node: String::new(),
                iface: String::new(),
                mac: None,
                addrs: Vec::new(),
            };
            for (k, val) in m {
                let key = k
                    .as_str()
                    .ok_or_else(|| Error::topo(file, format!("{at}: keys must be strings")))?;
                let sval = val
                    .as_str()
                    .ok_or_else(|| Error::topo(file, format!("{at}.{key}: must be a string")))?;
                match key {
                    "node" => ep.node = sval.to_string(),
                    "interface" => ep.iface = sval.to_string(),
                    "mac" => {
                        let ok = sval.split(':').count() == 6
                            && sval.split(':').all(|o| o.len() == 2 && u8::from_str_radix(o, 16).is_ok());
                        if !ok {
                            return Err(Error::topo(file, format!("{at}.mac: `{sval}` is not a MAC address")));
                        }
                        ep.mac = Some(sval.to_string())
                    }
                    "ipv4" | "ipv6" => {
                        let net: IpNet = sval.parse().map_err(|_| {
                            Error::topo(file, format!("{at}.{key}: `{sval}` is not an address with prefix length (e.g. 10.0.0.1/24)"))
                        })?;
                        if (key == "ipv4") != net.addr().is_ipv4() {
                            return Err(Error::topo(file, format!("{at}.{key}: `{sval}` is the wrong address family")));
                        }
                        ep.addrs.push(net)
                    }
                    other => {
                        return Err(Error::topo(
                            file,
                            format!("{at}: unknown field `{other}`, expected one of `node`, `interface`, `mac`, `ipv4`, `ipv6`"),
                        ))
                    }
                }
            }
            if ep.node.is_empty() || ep.iface.is_empty() {
                return Err(Error::topo(
                    file,
                    format!("{at}: `node` and `interface` are required"),
                ));
            }
            check_iface(file, at, &ep.iface)?;
            Ok(ep)
        }
        _ => Err(Error::topo(
            file,
            format!(
                "{at}: an endpoint is \"node:interface\" or {{node, interface, mac, ipv4, ipv6}}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Topology> {
        Topology::parse(text, "test.clab.yml", Path::new("/nonexistent"))
    }

    #[test]
    fn brief_and_extended_links() {
        let t = parse(
            r#"
name: lab1
topology:
  kinds:
    linux:
      image: wren:dev
      env: { A: 1 }
  nodes:
    n1:
      kind: linux
      exec: ["ip addr add 10.0.0.1/24 dev eth1"]
      labels: { wren.forwarding: "false", other: x }
    n2: { kind: linux, env: { B: two } }
    lan: { kind: bridge }
  links:
    - endpoints: ["n1:eth1", "n2:eth1"]
    - type: veth
      mtu: 9000
      endpoints:
        - { node: n1, interface: eth2, mac: "02:00:00:00:00:01", ipv4: 10.1.0.1/24 }
        - { node: lan, interface: p1 }
"#,
        )
        .unwrap();
        assert_eq!(t.name, "lab1");
        assert_eq!(t.nodes.len(), 3);
        let n1 = t.node("n1").unwrap();
        assert_eq!(n1.image.as_deref(), Some("wren:dev"));
        assert_eq!(
            n1.exec[0],
            vec!["ip", "addr", "add", "10.0.0.1/24", "dev", "eth1"]
        );
        assert!(!n1.wren.forwarding);
        assert_eq!(n1.labels.get("other").map(String::as_str), Some("x"));
        assert_eq!(n1.env.get("A").map(String::as_str), Some("1"));
        let n2 = t.node("n2").unwrap();
        assert_eq!(n2.env.get("B").map(String::as_str), Some("two"));
        assert!(n2.wren.forwarding);
        assert_eq!(t.node("lan").unwrap().kind, NodeKind::Bridge);
        assert_eq!(t.links.len(), 2);
        assert_eq!(t.links[1].mtu, Some(9000));
        assert_eq!(
            t.links[1].a.addrs,
            vec!["10.1.0.1/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(t.links[1].a.mac.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(t.links[1].b.to_string(), "lan:p1");
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err("name: x\ntopology:\n  nodes: {}\nbogus: 1\n");
        assert!(e.contains("bogus"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    n1: { kind: linux, imagee: foo }\n");
        assert!(e.contains("imagee"), "{e}");
        let e = err("name: x\ntopology:\n  nodes: {}\n  linkz: []\n");
        assert!(e.contains("linkz"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:e1, b:e1]\n      speed: 10\n");
        assert!(e.contains("speed"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [{node: a, interface: e1, colour: red}, b:e1]\n");
        assert!(e.contains("colour"), "{e}");
        let e =
            err("name: x\ntopology:\n  nodes:\n    a: {kind: linux, labels: {wren.rol: bird}}\n");
        assert!(e.contains("wren.rol"), "{e}");
    }

    #[test]
    fn semantic_errors() {
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: srl}\n");
        assert!(e.contains("srl") && e.contains("not supported"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n  links:\n    - endpoints: [a:e1, zz:e1]\n");
        assert!(e.contains("`zz`"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:averyveryverylongname, b:e1]\n");
        assert!(e.contains("averyveryverylongname"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:e1, b:e1]\n    - endpoints: [a:e1, b:e2]\n");
        assert!(e.contains("a:e1") && e.contains("two links"), "{e}");
        let e =
            err("name: x\ntopology:\n  nodes:\n    a: {kind: linux, labels: {wren.role: bird}}\n");
        assert!(e.contains("/etc/bird/bird.conf"), "{e}");
        let e =
            err("name: x\ntopology:\n  nodes:\n    a: {kind: linux, labels: {wren.pods: p1}}\n");
        assert!(e.contains("wren.cni-conflist"), "{e}");
        let e = err("name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n    c: {kind: linux}\n  links:\n    - endpoints: [a:e1, b:e1, c:e1]\n");
        assert!(e.contains("exactly 2"), "{e}");
    }

    #[test]
    fn shipped_topologies_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.to_string_lossy().ends_with(".clab.yml") {
                let t = Topology::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(!t.nodes.is_empty());
                n += 1;
            }
        }
        assert!(
            n >= 3,
            "expected the shipped topologies in {}",
            dir.display()
        );
    }
}
