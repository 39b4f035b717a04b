//! GoBGP: TOML config generator and `gobgp -j` queries. GoBGP installs no kernel routes
//! (that would go through FRR's zebra), so [`BgpSpeaker::kernel_export`] is refused.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::Value;

use super::{log_tail, BgpDaemon, BgpPeer, BgpSpeaker, Originate, RibRoute, READY_TIMEOUT};
use crate::cmd::{run, run_unchecked};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::process::Process;
use crate::wait::wait_until;

/// Where a containerlab node binds its GoBGP config; the local backend reads it from there.
pub const CONFIG_BIND: &str = "/etc/gobgp/gobgpd.toml";

/// Renders a gobgpd TOML config for `s` (prefixes are added at run time: GoBGP's config file
/// has no static routes).
pub fn render(s: &BgpSpeaker) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "[global.config]");
    let _ = writeln!(c, "  as = {}", s.asn);
    let _ = writeln!(c, "  router-id = \"{}\"", s.router_id);
    match s.local_address6 {
        Some(a6) => {
            let _ = writeln!(
                c,
                "  local-address-list = [\"{}\", \"{a6}\"]",
                s.local_address
            );
        }
        None => {
            let _ = writeln!(c, "  local-address-list = [\"{}\"]", s.local_address);
        }
    }
    for p in &s.peers {
        let _ = writeln!(c, "[[neighbors]]");
        let _ = writeln!(c, "  [neighbors.config]");
        let _ = writeln!(c, "    neighbor-address = \"{}\"", p.address);
        let _ = writeln!(c, "    peer-as = {}", p.asn);
        if let Some(pw) = &p.password {
            let _ = writeln!(c, "    auth-password = \"{}\"", pw.replace('"', ""));
        }
        let _ = writeln!(c, "  [neighbors.timers.config]");
        let _ = writeln!(c, "    connect-retry = 1");
        let _ = writeln!(c, "  [neighbors.transport.config]");
        let _ = writeln!(c, "    local-address = \"{}\"", s.local_for(p));
        if p.passive {
            let _ = writeln!(c, "    passive-mode = true");
        }
        if p.rr_client {
            let _ = writeln!(c, "  [neighbors.route-reflector.config]");
            let _ = writeln!(c, "    route-reflector-client = true");
            let _ = writeln!(
                c,
                "    route-reflector-cluster-id = \"{}\"",
                s.cluster_id.unwrap_or(s.router_id)
            );
        }
        if s.graceful_restart {
            let _ = writeln!(c, "  [neighbors.graceful-restart.config]");
            let _ = writeln!(c, "    enabled = true");
            if let Some(t) = s.restart_time {
                let _ = writeln!(c, "    restart-time = {t}");
            }
        }
        let _ = writeln!(c, "  [[neighbors.afi-safis]]");
        let _ = writeln!(c, "    [neighbors.afi-safis.config]");
        let _ = writeln!(
            c,
            "      afi-safi-name = \"{}\"",
            if p.is_v6() {
                "ipv6-unicast"
            } else {
                "ipv4-unicast"
            }
        );
        if s.graceful_restart {
            let _ = writeln!(c, "    [neighbors.afi-safis.mp-graceful-restart.config]");
            let _ = writeln!(c, "      enabled = true");
        }
    }
    c
}

/// Checks a gobgpd TOML config (`gobgpd -d`: parse and exit).
pub fn check_config(conf: &std::path::Path) -> Result<()> {
    let c = conf.display().to_string();
    run("gobgpd", &["-d", "-f", c.as_str(), "-t", "toml"])
        .map(|_| ())
        .map_err(|e| Error::Usage(format!("GoBGP config {c} is invalid: {e}")))
}

/// A running gobgpd.
#[derive(Debug)]
pub struct Gobgp {
    node: String,
    dir: PathBuf,
    target: String,
    procs: Vec<Process>,
}

impl Gobgp {
    /// Renders `s`, starts gobgpd on `node`, waits until the API answers, then adds the
    /// prefixes of `s.originate` to the global RIB.
    pub fn start(lab: &Lab, node: &str, s: &BgpSpeaker) -> Result<Gobgp> {
        if s.kernel_export {
            return Err(Error::Usage(format!(
                "node {node}: GoBGP installs no kernel routes; turn kernel_export off (or use BIRD/FRR)"
            )));
        }
        let g = Self::start_with_config(lab, node, &render(s))?;
        for o in &s.originate {
            g.add_route(o)?;
        }
        Ok(g)
    }

    /// Starts gobgpd with a TOML config text.
    pub fn start_with_config(lab: &Lab, node: &str, config: &str) -> Result<Gobgp> {
        let dir = lab.work_dir(node, "gobgp")?;
        let conf = dir.join("gobgpd.toml");
        std::fs::write(&conf, config).map_err(|e| Error::io(&conf, e))?;
        check_config(&conf).map_err(|e| Error::Usage(format!("node {node}: {e}")))?;
        let target = format!("unix://{}", dir.join("api.sock").display());
        let argv: Vec<String> = [
            "gobgpd",
            "-f",
            &conf.display().to_string(),
            "-t",
            "toml",
            "--api-hosts",
            &target,
            "--pprof-disable",
            "-p",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = lab.spawn_logged(node, "gobgpd", &argv, &[], &dir.join("gobgpd.log"))?;
        let mut g = Gobgp {
            node: node.to_string(),
            dir,
            target,
            procs: vec![p],
        };
        wait_until(format!("gobgpd on {node} to answer"), READY_TIMEOUT, || {
            if let Some(p) = g.procs.first_mut() {
                if !p.is_running() {
                    return Err(Error::Usage(format!("gobgpd exited: {}", log_tail(p))));
                }
            }
            Ok(
                run_unchecked("gobgp", &["--target", &g.target, "global"], &[], None)?
                    .status
                    .success(),
            )
        })?;
        Ok(g)
    }

    /// Runs `gobgp --target ... ARGS`.
    pub fn gobgp(&self, args: &[&str]) -> Result<String> {
        let mut a: Vec<&str> = vec!["--target", &self.target];
        a.extend_from_slice(args);
        let out = run("gobgp", &a)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        let t = self.gobgp(&a)?;
        serde_json::from_str(&t).map_err(|e| Error::Parse {
            what: format!("gobgp -j {} on {}", args.join(" "), self.node),
            msg: e.to_string(),
        })
    }

    /// Originates a prefix (`global rib add`).
    pub fn add_prefix(&self, p: IpNet) -> Result<()> {
        self.gobgp(&["global", "rib", "add", &p.to_string()])
            .map(|_| ())
    }

    /// Originates a prefix with its communities, large communities and MED.
    pub fn add_route(&self, o: &Originate) -> Result<()> {
        let afi = if matches!(o.prefix, IpNet::V6(_)) {
            "ipv6"
        } else {
            "ipv4"
        };
        let mut a: Vec<String> = ["global", "rib", "-a", afi, "add", &o.prefix.to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(m) = o.med {
            a.extend(["med".into(), m.to_string()]);
        }
        if !o.communities.is_empty() {
            let l: Vec<String> = o
                .communities
                .iter()
                .map(|(x, y)| format!("{x}:{y}"))
                .collect();
            a.extend(["community".into(), l.join(",")]);
        }
        if !o.large_communities.is_empty() {
            let l: Vec<String> = o
                .large_communities
                .iter()
                .map(|(g, x, y)| format!("{g}:{x}:{y}"))
                .collect();
            a.extend(["large-community".into(), l.join(",")]);
        }
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        self.gobgp(&refs).map(|_| ())
    }

    /// Withdraws a prefix (`global rib del`).
    pub fn del_prefix(&self, p: IpNet) -> Result<()> {
        let afi = if matches!(p, IpNet::V6(_)) {
            "ipv6"
        } else {
            "ipv4"
        };
        self.gobgp(&["global", "rib", "-a", afi, "del", &p.to_string()])
            .map(|_| ())
    }

    /// Asks neighbor `addr` for its routes again (`neighbor ADDR softresetin`: a
    /// ROUTE-REFRESH).
    pub fn soft_in(&self, addr: IpAddr) -> Result<()> {
        let afi = if addr.is_ipv6() { "ipv6" } else { "ipv4" };
        self.gobgp(&["neighbor", &addr.to_string(), "softresetin", "-a", afi])
            .map(|_| ())
    }

    /// Neighbors: (address, session_state number; 6 = Established).
    pub fn neighbors(&self) -> Result<Vec<(String, u64)>> {
        Ok(parse_neighbors(&self.json(&["neighbor"])?))
    }

    /// Is the session with `addr` Established?
    pub fn session_established(&self, addr: IpAddr) -> Result<bool> {
        let a = addr.to_string();
        Ok(self.neighbors()?.iter().any(|(p, s)| *p == a && *s == 6))
    }

    /// The daemon directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Gives up ownership of the process.
    pub fn into_processes(mut self) -> Vec<Process> {
        std::mem::take(&mut self.procs)
    }
}

/// Parses `gobgp -j neighbor`.
pub fn parse_neighbors(v: &Value) -> Vec<(String, u64)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let addr = n
                .get("state")
                .and_then(|s| s.get("neighbor_address"))
                .or_else(|| n.get("conf").and_then(|c| c.get("neighbor_address")))
                .and_then(Value::as_str)?;
            let st = n
                .get("state")
                .and_then(|s| s.get("session_state"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            Some((addr.to_string(), st))
        })
        .collect()
}

/// Parses `gobgp -j global rib`.
pub fn parse_rib(v: &Value) -> Vec<RibRoute> {
    let mut out = Vec::new();
    let Some(m) = v.as_object() else { return out };
    for (pfx, paths) in m {
        let Ok(prefix) = pfx.parse::<IpNet>() else {
            continue;
        };
        for p in paths.as_array().into_iter().flatten() {
            let attrs = p.get("attrs").and_then(Value::as_array);
            let nh = attrs
                .into_iter()
                .flatten()
                .find_map(|a| a.get("nexthop").and_then(Value::as_str))
                .and_then(|s| s.parse::<IpAddr>().ok())
                .filter(|a| !a.is_unspecified());
            let as_path: Vec<u32> = attrs
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("as_paths").and_then(Value::as_array))
                .flatten()
                .filter_map(|seg| seg.get("asns").and_then(Value::as_array))
                .flatten()
                .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect();
            let mut attr_fields = RibRoute::default();
            for a in attrs.into_iter().flatten() {
                fill_attr(&mut attr_fields, a);
            }
            out.push(RibRoute {
                med: attr_fields.med,
                communities: attr_fields.communities,
                large_communities: attr_fields.large_communities,
                originator_id: attr_fields.originator_id,
                cluster_list: attr_fields.cluster_list,
                unknown: attr_fields.unknown,
                prefix,
                next_hop: nh,
                best: p.get("best").and_then(Value::as_bool).unwrap_or(false),
                as_path,
                from: p
                    .get("neighbor-ip")
                    .and_then(Value::as_str)
                    .unwrap_or("local")
                    .to_string(),
            });
        }
    }
    out
}

/// Reads one attribute of `gobgp -j` output into `r` (MED, communities, large communities,
/// ORIGINATOR_ID, CLUSTER_LIST, and unknown attributes, whose value GoBGP shows in base64).
fn fill_attr(r: &mut RibRoute, a: &Value) {
    let Some(t) = a.get("type").and_then(Value::as_u64) else {
        return;
    };
    match t {
        1 | 2 | 3 | 5 | 6 | 7 | 14 | 15 | 16 | 17 | 18 => {}
        4 => {
            r.med = a
                .get("metric")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok())
        }
        8 => {
            r.communities = a
                .get("communities")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .map(|c| format!("{}:{}", c >> 16, c & 0xffff))
                .collect()
        }
        9 => r.originator_id = a.get("value").and_then(Value::as_str).map(str::to_string),
        10 => {
            r.cluster_list = a
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        }
        32 => {
            r.large_communities = a
                .get("value")
                .or_else(|| a.get("values"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let o = c.as_object()?;
                    let get = |want: &str| {
                        o.iter()
                            .find(|(k, _)| k.to_lowercase().replace('_', "") == want)
                            .and_then(|(_, v)| v.as_u64())
                    };
                    Some(format!(
                        "{}:{}:{}",
                        get("asn").or_else(|| get("globaladmin"))?,
                        get("localdata1")?,
                        get("localdata2")?
                    ))
                })
                .collect()
        }
        other => {
            if let (Ok(code), Some(v)) =
                (u8::try_from(other), a.get("value").and_then(Value::as_str))
            {
                if let Some(bytes) = base64_decode(v) {
                    r.unknown
                        .push((code, bytes.iter().map(|b| format!("{b:02x}")).collect()));
                }
            }
        }
    }
}

/// Standard base64 (with padding), as Go's encoding/json writes `[]byte`.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = ((acc << 6) | u32::from(v)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

impl BgpDaemon for Gobgp {
    fn kind(&self) -> &'static str {
        "gobgp"
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool> {
        self.session_established(peer.address)
    }
    fn rib(&self) -> Result<Vec<RibRoute>> {
        let mut r = parse_rib(&self.json(&["global", "rib", "-a", "ipv4"])?);
        r.extend(parse_rib(&self.json(&["global", "rib", "-a", "ipv6"])?));
        Ok(r)
    }
    fn processes(&self) -> &[Process] {
        &self.procs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json() {
        let v: Value = serde_json::from_str(
            r#"{"10.10.1.0/24":[{"nlri":{"prefix":"10.10.1.0/24"},"best":true,"attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"type":2,"num":1,"asns":[65001]}]},{"type":3,"nexthop":"10.77.0.1"}],"neighbor-ip":"10.77.0.1"}],
                "10.10.3.0/24":[{"nlri":{"prefix":"10.10.3.0/24"},"best":true,"attrs":[{"type":3,"nexthop":"0.0.0.0"}]}]}"#,
        )
        .unwrap();
        let r = parse_rib(&v);
        let a = r
            .iter()
            .find(|x| x.prefix.to_string() == "10.10.1.0/24")
            .unwrap();
        assert_eq!(a.next_hop, Some("10.77.0.1".parse().unwrap()));
        assert_eq!(a.as_path, vec![65001]);
        assert_eq!(a.from, "10.77.0.1");
        let b = r
            .iter()
            .find(|x| x.prefix.to_string() == "10.10.3.0/24")
            .unwrap();
        assert_eq!(b.next_hop, None);
        let v: Value = serde_json::from_str(
            r#"[{"conf":{"neighbor_address":"10.77.0.1"},"state":{"neighbor_address":"10.77.0.1","session_state":6}}]"#,
        )
        .unwrap();
        assert_eq!(parse_neighbors(&v), vec![("10.77.0.1".to_string(), 6)]);
    }

    #[test]
    fn renders_and_refuses_kernel() {
        let s = BgpSpeaker::new(65000, "10.0.0.3".parse().unwrap()).peer(
            BgpPeer::new("rr", "10.0.0.1".parse::<std::net::IpAddr>().unwrap(), 65000)
                .password("pw")
                .rr_client(),
        );
        let c = render(&s);
        assert!(c.contains("auth-password = \"pw\""));
        assert!(c.contains("route-reflector-client = true"));
        let t: toml::Table = toml::from_str(&c).unwrap();
        assert!(t.contains_key("neighbors"));
    }
}
