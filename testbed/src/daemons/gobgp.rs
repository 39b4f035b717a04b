//! GoBGP: TOML config generator and `gobgp -j` queries. GoBGP installs no kernel routes
//! (that would go through FRR's zebra), so [`BgpSpeaker::kernel_export`] is refused.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::Value;

use super::{log_tail, BgpDaemon, BgpPeer, BgpSpeaker, RibRoute, READY_TIMEOUT};
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
    let _ = writeln!(c, "  local-address-list = [\"{}\"]", s.local_address);
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
        let _ = writeln!(c, "    local-address = \"{}\"", s.local_address);
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
        }
        let _ = writeln!(c, "  [[neighbors.afi-safis]]");
        let _ = writeln!(c, "    [neighbors.afi-safis.config]");
        let _ = writeln!(c, "      afi-safi-name = \"ipv4-unicast\"");
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
        for p in &s.originate {
            g.add_prefix(IpNet::V4(*p))?;
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

    /// Withdraws a prefix (`global rib del`).
    pub fn del_prefix(&self, p: IpNet) -> Result<()> {
        self.gobgp(&["global", "rib", "del", &p.to_string()])
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
            out.push(RibRoute {
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

impl BgpDaemon for Gobgp {
    fn kind(&self) -> &'static str {
        "gobgp"
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool> {
        self.session_established(IpAddr::V4(peer.address))
    }
    fn rib(&self) -> Result<Vec<RibRoute>> {
        Ok(parse_rib(&self.json(&["global", "rib"])?))
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
            BgpPeer::new("rr", "10.0.0.1".parse().unwrap(), 65000)
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
