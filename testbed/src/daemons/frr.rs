//! FRR bgpd (optionally with zebra for kernel routes): config generator and vtysh JSON queries.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::Value;

use super::{log_tail, BgpDaemon, BgpPeer, BgpSpeaker, RibRoute, READY_TIMEOUT};
use crate::cmd::run;
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::process::Process;
use crate::wait::wait_until;

/// Where a containerlab node binds its FRR config; the local backend reads it from there.
pub const CONFIG_BIND: &str = "/etc/frr/frr.conf";

/// Renders a bgpd config for `s` on host `hostname`. Each neighbor is activated in the
/// address family of its address only (`no bgp default ipv4-unicast`); originated prefixes
/// with attributes get a route map on their `network` statement.
pub fn render(s: &BgpSpeaker, hostname: &str) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "frr defaults traditional");
    let _ = writeln!(c, "hostname {hostname}");
    let _ = writeln!(c, "log stdout informational");
    let _ = writeln!(c, "!");
    let _ = writeln!(c, "router bgp {}", s.asn);
    let _ = writeln!(c, " bgp router-id {}", s.router_id);
    let _ = writeln!(c, " no bgp ebgp-requires-policy");
    let _ = writeln!(c, " no bgp default ipv4-unicast");
    // Required with zebra, harmless without: announce `network` prefixes that are not in
    // the RIB.
    let _ = writeln!(c, " no bgp network import-check");
    if s.peers.iter().any(|p| p.rr_client) {
        let _ = writeln!(c, " bgp cluster-id {}", s.cluster_id.unwrap_or(s.router_id));
    }
    if s.graceful_restart {
        let _ = writeln!(c, " bgp graceful-restart");
        if let Some(t) = s.restart_time {
            let _ = writeln!(c, " bgp graceful-restart restart-time {t}");
        }
    }
    for p in &s.peers {
        let a = p.address;
        let _ = writeln!(c, " neighbor {a} remote-as {}", p.asn);
        let _ = writeln!(c, " neighbor {a} update-source {}", s.local_for(p));
        let _ = writeln!(c, " neighbor {a} timers connect 1");
        if let Some(pw) = &p.password {
            let _ = writeln!(c, " neighbor {a} password {pw}");
        }
        if p.passive {
            let _ = writeln!(c, " neighbor {a} passive");
        }
    }
    for (v6, fam) in [(false, "ipv4"), (true, "ipv6")] {
        let _ = writeln!(c, " !");
        let _ = writeln!(c, " address-family {fam} unicast");
        for (i, o) in s.originate.iter().enumerate() {
            if matches!(o.prefix, IpNet::V6(_)) != v6 {
                continue;
            }
            if o.has_attrs() {
                let _ = writeln!(c, "  network {} route-map {}", o.prefix, route_map_name(i));
            } else {
                let _ = writeln!(c, "  network {}", o.prefix);
            }
        }
        for p in s.peers.iter().filter(|p| p.is_v6() == v6) {
            let _ = writeln!(c, "  neighbor {} activate", p.address);
            if p.rr_client {
                let _ = writeln!(c, "  neighbor {} route-reflector-client", p.address);
            }
        }
        let _ = writeln!(c, " exit-address-family");
    }
    let _ = writeln!(c, "!");
    for (i, o) in s
        .originate
        .iter()
        .enumerate()
        .filter(|(_, o)| o.has_attrs())
    {
        let _ = writeln!(c, "route-map {} permit 10", route_map_name(i));
        if let Some(m) = o.med {
            let _ = writeln!(c, " set metric {m}");
        }
        if !o.communities.is_empty() {
            let list: Vec<String> = o
                .communities
                .iter()
                .map(|(a, v)| format!("{a}:{v}"))
                .collect();
            let _ = writeln!(c, " set community {}", list.join(" "));
        }
        if !o.large_communities.is_empty() {
            let list: Vec<String> = o
                .large_communities
                .iter()
                .map(|(g, a, b)| format!("{g}:{a}:{b}"))
                .collect();
            let _ = writeln!(c, " set large-community {}", list.join(" "));
        }
        let _ = writeln!(c, "!");
    }
    c
}

fn route_map_name(i: usize) -> String {
    format!("WREN-ORIGINATE-{i}")
}

/// A running FRR (bgpd, and zebra when kernel routes are wanted).
#[derive(Debug)]
pub struct Frr {
    node: String,
    dir: PathBuf,
    procs: Vec<Process>,
}

fn chown_frr(path: &std::path::Path) -> Result<()> {
    let user = nix::unistd::User::from_name("frr")
        .ok()
        .flatten()
        .ok_or_else(|| Error::Usage("user `frr` does not exist: apt-get install frr".into()))?;
    nix::unistd::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|e| Error::Usage(format!("chown frr {}: {e}", path.display())))
}

/// Checks a bgpd config file with `bgpd -C` (dry run). bgpd exits 0 even when lines fail,
/// so its output is searched for FRR error codes. The file and its directory must be
/// readable by user `frr`. Removes the crash-log directory the dry run leaves behind.
pub fn check_config(conf: &std::path::Path) -> Result<()> {
    let c = conf.display().to_string();
    let child = std::process::Command::new("/usr/lib/frr/bgpd")
        .args(["-C", "-f", &c, "-u", "frr", "-g", "frr", "-Z", "-P", "0"])
        .args(["-i", "/dev/null", "--vty_socket", "/nonexistent"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Spawn {
            cmd: "/usr/lib/frr/bgpd -C".into(),
            source: e,
        })?;
    let pid = child.id();
    let out = child.wait_with_output().map_err(|e| Error::Spawn {
        cmd: "/usr/lib/frr/bgpd -C".into(),
        source: e,
    })?;
    let _ = std::fs::remove_dir(format!("/var/tmp/frr/bgpd.{pid}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[EC ") || l.contains("Permission denied") || l.contains("% "))
        .collect();
    if !out.status.success() || !bad.is_empty() {
        return Err(Error::Usage(format!(
            "FRR config {c} is invalid: {}",
            if bad.is_empty() { text.trim() } else { "" }.to_string() + &bad.join("; ")
        )));
    }
    Ok(())
}

impl Frr {
    /// Renders `s`, starts zebra (if `s.kernel_export`) and bgpd on `node`, and waits until
    /// vtysh answers.
    pub fn start(lab: &Lab, node: &str, s: &BgpSpeaker) -> Result<Frr> {
        Self::start_with_config(lab, node, &render(s, node), s.kernel_export)
    }

    /// Starts bgpd with a config text; with `zebra`, zebra first so routes reach the kernel.
    pub fn start_with_config(lab: &Lab, node: &str, config: &str, zebra: bool) -> Result<Frr> {
        let dir = lab.work_dir(node, "frr")?;
        // bgpd drops to user frr before it reads its config and creates its sockets.
        chown_frr(&dir)?;
        let conf = dir.join("bgpd.conf");
        std::fs::write(&conf, config).map_err(|e| Error::io(&conf, e))?;
        chown_frr(&conf)?;
        check_config(&conf).map_err(|e| Error::Usage(format!("node {node}: {e}")))?;
        let d = dir.display().to_string();
        let mut procs = Vec::new();
        let zsock = dir.join("zserv.api").display().to_string();
        if zebra {
            let zconf = dir.join("zebra.conf");
            std::fs::write(&zconf, "hostname zebra\n").map_err(|e| Error::io(&zconf, e))?;
            chown_frr(&zconf)?;
            let argv: Vec<String> = [
                "/usr/lib/frr/zebra",
                "-f",
                &zconf.display().to_string(),
                "--vty_socket",
                &d,
                "-z",
                &zsock,
                "-i",
                &format!("{d}/zebra.pid"),
                "-u",
                "frr",
                "-g",
                "frr",
                "-P",
                "0",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut z = lab.spawn_logged(node, "zebra", &argv, &[], &dir.join("zebra.log"))?;
            wait_until(format!("zebra on {node} to answer"), READY_TIMEOUT, || {
                if !z.is_running() {
                    return Err(Error::Usage(format!("zebra exited: {}", log_tail(&z))));
                }
                Ok(std::path::Path::new(&zsock).exists()
                    && run(
                        "vtysh",
                        &["--vty_socket", &d, "-d", "zebra", "-c", "show version"],
                    )
                    .is_ok())
            })?;
            procs.push(z);
        }
        let mut argv: Vec<String> = [
            "/usr/lib/frr/bgpd",
            "-f",
            &conf.display().to_string(),
            "--vty_socket",
            &d,
            "-i",
            &format!("{d}/bgpd.pid"),
            "-u",
            "frr",
            "-g",
            "frr",
            "-P",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if zebra {
            argv.extend(["-z".to_string(), zsock]);
        } else {
            argv.push("-Z".into());
        }
        let p = lab.spawn_logged(node, "bgpd", &argv, &[], &dir.join("bgpd.log"))?;
        procs.push(p);
        let mut f = Frr {
            node: node.to_string(),
            dir,
            procs,
        };
        wait_until(
            format!("FRR bgpd on {node} to answer"),
            READY_TIMEOUT,
            || {
                if let Some(p) = f.procs.last_mut() {
                    if !p.is_running() {
                        return Err(Error::Usage(format!("bgpd exited: {}", log_tail(p))));
                    }
                }
                Ok(f.vtysh_bgpd(&["show bgp summary"]).is_ok())
            },
        )?;
        Ok(f)
    }

    /// Runs vtysh commands against bgpd (`-d bgpd`).
    pub fn vtysh_bgpd(&self, cmds: &[&str]) -> Result<String> {
        self.vtysh(Some("bgpd"), cmds)
    }

    /// Runs vtysh commands against one daemon, or all (`None`; needs zebra for `show ip route`).
    pub fn vtysh(&self, daemon: Option<&str>, cmds: &[&str]) -> Result<String> {
        let mut a: Vec<String> = vec!["--vty_socket".into(), self.dir.display().to_string()];
        if let Some(d) = daemon {
            a.extend(["-d".into(), d.into()]);
        }
        for c in cmds {
            a.extend(["-c".into(), c.to_string()]);
        }
        let out = run("vtysh", &a)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn json(&self, cmd: &str) -> Result<Value> {
        let t = self.vtysh_bgpd(&[cmd])?;
        serde_json::from_str(&t).map_err(|e| Error::Parse {
            what: format!("vtysh `{cmd}` on {}", self.node),
            msg: e.to_string(),
        })
    }

    /// `show bgp summary json` → peer address → (state, prefixes received).
    pub fn peers(&self) -> Result<Vec<(String, String, u64)>> {
        let v = self.json("show bgp summary json")?;
        Ok(parse_summary(&v))
    }

    /// Is the session with neighbor `addr` Established?
    pub fn session_established(&self, addr: IpAddr) -> Result<bool> {
        let a = addr.to_string();
        Ok(self
            .peers()?
            .iter()
            .any(|(p, st, _)| *p == a && st == "Established"))
    }

    /// Zebra's view (`show ip route json`): prefix → selected protocol.
    pub fn zebra_routes(&self) -> Result<Value> {
        let t = self.vtysh(None, &["show ip route json"])?;
        serde_json::from_str(&t).map_err(|e| Error::Parse {
            what: format!("vtysh show ip route json on {}", self.node),
            msg: e.to_string(),
        })
    }

    /// The daemon directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Asks neighbor `addr` for its routes again (`clear bgp ipv4|ipv6 unicast ADDR soft in`:
    /// a ROUTE-REFRESH).
    pub fn soft_in(&self, addr: IpAddr) -> Result<()> {
        let afi = if addr.is_ipv6() { "ipv6" } else { "ipv4" };
        self.vtysh_bgpd(&[&format!("clear bgp {afi} unicast {addr} soft in")])
            .map(|_| ())
    }

    /// Stops bgpd (and zebra) at once with SIGKILL: no NOTIFICATION, as a crash.
    pub fn kill(&mut self) {
        for p in self.procs.iter_mut().rev() {
            let _ = p.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = p.stop(std::time::Duration::from_secs(5));
        }
    }

    /// `show bgp neighbors ADDR json` (capabilities, GR state, message counters).
    pub fn neighbor(&self, addr: IpAddr) -> Result<Value> {
        self.json(&format!("show bgp neighbors {addr} json"))
    }

    /// Gives up ownership of the processes (zebra first, then bgpd).
    pub fn into_processes(mut self) -> Vec<Process> {
        std::mem::take(&mut self.procs)
    }
}

/// Parses `show bgp summary json` (every address family; a neighbor active in two
/// families appears twice).
pub fn parse_summary(v: &Value) -> Vec<(String, String, u64)> {
    v.as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|u| u.get("peers").and_then(Value::as_object))
        .flat_map(|peers| {
            peers
                .iter()
                .map(|(addr, p)| {
                    (
                        addr.clone(),
                        p.get("state")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Parses `show bgp ipv4 unicast json`.
pub fn parse_routes(v: &Value) -> Vec<RibRoute> {
    let mut out = Vec::new();
    let Some(routes) = v.get("routes").and_then(Value::as_object) else {
        return out;
    };
    for (pfx, paths) in routes {
        let Ok(prefix) = pfx.parse::<IpNet>() else {
            continue;
        };
        for p in paths.as_array().into_iter().flatten() {
            let nh = p
                .get("nexthops")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|n| n.get("ip"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
                .filter(|a| !a.is_unspecified());
            let as_path = p
                .get("path")
                .and_then(Value::as_str)
                .map(|s| {
                    s.split_whitespace()
                        .filter_map(|a| a.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            let from = p
                .get("peerId")
                .and_then(Value::as_str)
                .filter(|s| *s != "(unspec)")
                .unwrap_or("local")
                .to_string();
            out.push(RibRoute {
                prefix,
                next_hop: nh,
                best: p.get("bestpath").and_then(Value::as_bool).unwrap_or(false),
                as_path,
                from,
                ..RibRoute::default()
            });
        }
    }
    out
}

/// Parses `show bgp ipv4|ipv6 unicast PREFIX json` (one prefix, every attribute).
pub fn parse_prefix_detail(v: &Value) -> Vec<RibRoute> {
    let Some(prefix) = v
        .get("prefix")
        .and_then(Value::as_str)
        .and_then(|p| p.parse::<IpNet>().ok())
    else {
        return Vec::new();
    };
    let strings = |x: Option<&Value>| -> Vec<String> {
        x.and_then(|c| c.get("string"))
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    v.get("paths")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| RibRoute {
            prefix,
            next_hop: p
                .get("nexthops")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|n| n.get("ip"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
                .filter(|a| !a.is_unspecified()),
            best: p
                .get("bestpath")
                .and_then(|b| b.get("overall"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            as_path: p
                .get("aspath")
                .and_then(|a| a.get("string"))
                .and_then(Value::as_str)
                .map(|s| {
                    s.split_whitespace()
                        .filter_map(|a| a.parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
            from: p
                .get("peer")
                .and_then(|x| x.get("peerId"))
                .and_then(Value::as_str)
                .filter(|s| *s != "(unspec)")
                .unwrap_or("local")
                .to_string(),
            med: p
                .get("metric")
                .and_then(Value::as_u64)
                .and_then(|m| u32::try_from(m).ok()),
            communities: strings(p.get("community")),
            large_communities: strings(p.get("largeCommunity")),
            originator_id: p
                .get("originatorId")
                .and_then(Value::as_str)
                .map(str::to_string),
            cluster_list: p
                .get("clusterList")
                .and_then(|c| c.get("list"))
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            unknown: Vec::new(),
        })
        .collect()
}

impl BgpDaemon for Frr {
    fn kind(&self) -> &'static str {
        "frr"
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool> {
        self.session_established(peer.address)
    }
    fn rib(&self) -> Result<Vec<RibRoute>> {
        let mut r = parse_routes(&self.json("show bgp ipv4 unicast json")?);
        r.extend(parse_routes(&self.json("show bgp ipv6 unicast json")?));
        Ok(r)
    }
    /// With every attribute (`show bgp ... PREFIX json`).
    fn paths(&self, prefix: IpNet) -> Result<Vec<RibRoute>> {
        let afi = if matches!(prefix, IpNet::V6(_)) {
            "ipv6"
        } else {
            "ipv4"
        };
        Ok(parse_prefix_detail(
            &self.json(&format!("show bgp {afi} unicast {prefix} json"))?,
        ))
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
            r#"{"ipv4Unicast":{"peers":{"10.0.0.1":{"state":"Established","pfxRcd":3},"10.0.0.3":{"state":"Active"}}}}"#,
        )
        .unwrap();
        let s = parse_summary(&v);
        assert_eq!(s.len(), 2);
        assert!(s.contains(&("10.0.0.1".into(), "Established".into(), 3)));
        let v: Value = serde_json::from_str(
            r#"{"routes":{"10.10.1.0/24":[{"valid":true,"bestpath":true,"path":"","peerId":"10.0.0.1","nexthops":[{"ip":"10.0.0.2"}]}],
                "10.10.2.0/24":[{"valid":true,"bestpath":true,"path":"","peerId":"(unspec)","nexthops":[{"ip":"0.0.0.0"}]}]}}"#,
        )
        .unwrap();
        let r = parse_routes(&v);
        assert_eq!(r.len(), 2);
        let a = r
            .iter()
            .find(|x| x.prefix.to_string() == "10.10.1.0/24")
            .unwrap();
        assert_eq!(a.next_hop, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(a.from, "10.0.0.1");
        let b = r
            .iter()
            .find(|x| x.prefix.to_string() == "10.10.2.0/24")
            .unwrap();
        assert_eq!(b.next_hop, None);
        assert_eq!(b.from, "local");
    }

    #[test]
    fn renders() {
        let s = BgpSpeaker::new(65000, "10.0.0.2".parse().unwrap())
            .peer(
                BgpPeer::new("rr", "10.0.0.1".parse::<std::net::IpAddr>().unwrap(), 65000)
                    .password("pw"),
            )
            .originate("10.10.2.0/24".parse::<ipnet::Ipv4Net>().unwrap());
        let c = render(&s, "n2");
        assert!(c.contains(" neighbor 10.0.0.1 remote-as 65000\n"));
        assert!(c.contains(" neighbor 10.0.0.1 password pw\n"));
        assert!(c.contains("  network 10.10.2.0/24\n"));
        assert!(!c.contains("cluster-id"));
    }
}
