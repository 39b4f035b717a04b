//! BIRD 2: config generator and `birdc` queries (BIRD has no JSON output; the text of
//! `show protocols all NAME` and `show route all` is parsed).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::{log_tail, BgpDaemon, BgpPeer, BgpSpeaker, Originate, RibRoute, READY_TIMEOUT};
use crate::cmd::{run, run_unchecked};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::process::Process;
use crate::wait::wait_until;

/// Where a containerlab node binds its BIRD config; the local backend reads it from there.
pub const CONFIG_BIND: &str = "/etc/bird/bird.conf";

/// Renders a BIRD 2 config for `s`. Each peer gets the channel of its address family;
/// originated prefixes come from static protocols (`wren_static4`, `wren_static6`) and their
/// attributes (communities, large communities, MED) are set by the export filter.
pub fn render(s: &BgpSpeaker) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "log stderr all;");
    let _ = writeln!(c, "router id {};", s.router_id);
    // Without a device protocol a directly connected BGP peer stays Idle.
    let _ = writeln!(c, "protocol device {{ }}");
    for (v6, fam) in [(false, "ipv4"), (true, "ipv6")] {
        let routes: Vec<&Originate> = s.originated(v6).collect();
        if routes.is_empty() {
            continue;
        }
        let _ = writeln!(
            c,
            "protocol static wren_static{} {{",
            if v6 { 6 } else { 4 }
        );
        let _ = writeln!(c, "  {fam};");
        for o in &routes {
            let _ = writeln!(c, "  route {} blackhole;", o.prefix);
        }
        let _ = writeln!(c, "}}");
    }
    let any_v6 = s.peers.iter().any(BgpPeer::is_v6);
    if s.kernel_export {
        let _ = writeln!(
            c,
            "protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}"
        );
        if any_v6 {
            let _ = writeln!(
                c,
                "protocol kernel {{ ipv6 {{ import none; export where source = RTS_BGP; }}; }}"
            );
        }
    }
    // One export filter per family that sets the originated prefixes' attributes.
    for (v6, name) in [(false, "wren_export4"), (true, "wren_export6")] {
        let _ = writeln!(c, "filter {name} {{");
        for o in s.originated(v6).filter(|o| o.has_attrs()) {
            let _ = writeln!(c, "  if net = {} then {{", o.prefix);
            if let Some(m) = o.med {
                let _ = writeln!(c, "    bgp_med = {m};");
            }
            for (a, v) in &o.communities {
                let _ = writeln!(c, "    bgp_community.add(({a},{v}));");
            }
            for (g, l1, l2) in &o.large_communities {
                let _ = writeln!(c, "    bgp_large_community.add(({g},{l1},{l2}));");
            }
            let _ = writeln!(c, "  }}");
        }
        let _ = writeln!(c, "  accept;");
        let _ = writeln!(c, "}}");
    }
    let any_client = s.peers.iter().any(|p| p.rr_client);
    for p in &s.peers {
        let _ = writeln!(c, "protocol bgp {} {{", protocol_name(&p.name));
        let _ = writeln!(c, "  local {} as {};", s.local_for(p), s.asn);
        let _ = writeln!(c, "  neighbor {} as {};", p.address, p.asn);
        // Directly connected: single hop, next hops used as they are (iBGP defaults to
        // multihop with recursive next hops, which needs an IGP table).
        let _ = writeln!(c, "  direct;");
        let _ = writeln!(
            c,
            "  connect delay time 1; connect retry time 1; error wait time 1,5;"
        );
        if let Some(pw) = &p.password {
            let _ = writeln!(c, "  password \"{}\";", pw.replace('"', ""));
        }
        if p.passive {
            let _ = writeln!(c, "  passive on;");
        }
        if p.rr_client {
            let _ = writeln!(c, "  rr client;");
        }
        if any_client {
            let _ = writeln!(
                c,
                "  rr cluster id {};",
                s.cluster_id.unwrap_or(s.router_id)
            );
        }
        if s.graceful_restart {
            let _ = writeln!(c, "  graceful restart on;");
            if let Some(t) = s.restart_time {
                let _ = writeln!(c, "  graceful restart time {t};");
            }
        }
        let (fam, filter) = if p.is_v6() {
            ("ipv6", "wren_export6")
        } else {
            ("ipv4", "wren_export4")
        };
        let _ = writeln!(c, "  {fam} {{ import all; export filter {filter}; }};");
        let _ = writeln!(c, "}}");
    }
    c
}

/// The BIRD protocol name generated for peer `name` (`peer_<name>`, because names such as
/// `rr` are BIRD keywords). Use it with [`Bird::session_established`].
pub fn protocol_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("peer_{clean}")
}

/// Checks a BIRD config (`bird -p`).
pub fn check_config(conf: &std::path::Path) -> Result<()> {
    let c = conf.display().to_string();
    run("bird", &["-p", "-c", c.as_str()])
        .map(|_| ())
        .map_err(|e| Error::Usage(format!("BIRD config {c} is invalid: {e}")))
}

/// A running BIRD.
#[derive(Debug)]
pub struct Bird {
    node: String,
    dir: PathBuf,
    ctl: PathBuf,
    procs: Vec<Process>,
}

impl Bird {
    /// Renders `s`, starts BIRD on `node` and waits until `birdc` answers.
    pub fn start(lab: &Lab, node: &str, s: &BgpSpeaker) -> Result<Bird> {
        Self::start_with_config(lab, node, &render(s))
    }

    /// Starts BIRD with a config text (checked with `bird -p` first).
    pub fn start_with_config(lab: &Lab, node: &str, config: &str) -> Result<Bird> {
        let dir = lab.work_dir(node, "bird")?;
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, config).map_err(|e| Error::io(&conf, e))?;
        let conf_s = conf.display().to_string();
        check_config(&conf).map_err(|e| Error::Usage(format!("node {node}: {e}")))?;
        let ctl = dir.join("bird.ctl");
        let argv: Vec<String> = vec![
            "bird".into(),
            "-f".into(),
            "-c".into(),
            conf_s,
            "-s".into(),
            ctl.display().to_string(),
            "-P".into(),
            dir.join("bird.pid").display().to_string(),
        ];
        let p = lab.spawn_logged(node, "bird", &argv, &[], &dir.join("bird.log"))?;
        let mut b = Bird {
            node: node.to_string(),
            dir,
            ctl,
            procs: vec![p],
        };
        let ready = wait_until(format!("BIRD on {node} to answer"), READY_TIMEOUT, || {
            if let Some(p) = b.procs.first_mut() {
                if !p.is_running() {
                    return Err(Error::Usage(format!("BIRD exited: {}", log_tail(p))));
                }
            }
            Ok(run_unchecked(
                "birdc",
                &["-s", &b.ctl.display().to_string(), "show", "status"],
                &[],
                None,
            )?
            .status
            .success())
        });
        ready.map(|_| b)
    }

    /// Runs `birdc` with arguments and returns its output (banner line removed).
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let mut a: Vec<String> = vec!["-s".into(), self.ctl.display().to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        let out = run("birdc", &a)?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter(|l| !(l.starts_with("BIRD ") && l.ends_with(" ready.")))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// The daemon's directory (config, socket, log).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// `show protocols`: (name, protocol, state, info).
    pub fn protocols(&self) -> Result<Vec<BirdProtocol>> {
        Ok(parse_protocols(&self.birdc(&["show", "protocols"])?))
    }

    /// The `BGP state:` of protocol `name` (`Established`, `Active`, `Connect`, `Idle`...).
    pub fn bgp_state(&self, name: &str) -> Result<Option<String>> {
        let t = self.birdc(&["show", "protocols", "all", name])?;
        Ok(t.lines()
            .find_map(|l| l.trim().strip_prefix("BGP state:"))
            .map(|s| s.trim().to_string()))
    }

    /// Is protocol `name` Established?
    pub fn session_established(&self, name: &str) -> Result<bool> {
        Ok(self.bgp_state(name)?.as_deref() == Some("Established"))
    }

    /// Reloads the config after `new_config` is written (`birdc configure`).
    pub fn reconfigure(&self, new_config: &str) -> Result<()> {
        let conf = self.dir.join("bird.conf");
        std::fs::write(&conf, new_config).map_err(|e| Error::io(&conf, e))?;
        self.birdc(&["configure"]).map(|_| ())
    }

    /// Asks peer `name` (a BGP protocol) to send its routes again: `birdc reload in NAME`
    /// (a ROUTE-REFRESH when the peer supports it).
    pub fn reload_in(&self, name: &str) -> Result<()> {
        self.birdc(&["reload", "in", name]).map(|_| ())
    }

    /// Sends every route to peer `name` again (`birdc reload out NAME`).
    pub fn reload_out(&self, name: &str) -> Result<()> {
        self.birdc(&["reload", "out", name]).map(|_| ())
    }

    /// Stops BIRD at once (SIGKILL: no NOTIFICATION, the TCP connections are reset), as a
    /// crash before a graceful restart.
    pub fn kill(&mut self) {
        for p in &mut self.procs {
            let _ = p.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = p.stop(std::time::Duration::from_secs(5));
        }
    }

    /// `show protocols all NAME` as text.
    pub fn protocol_details(&self, name: &str) -> Result<String> {
        self.birdc(&["show", "protocols", "all", name])
    }

    /// Gives up ownership of the processes (the lab keeps them for `up`).
    pub fn into_processes(mut self) -> Vec<Process> {
        std::mem::take(&mut self.procs)
    }
}

/// A row of `birdc show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdProtocol {
    /// Protocol name.
    pub name: String,
    /// Protocol type (`BGP`, `Static`, ...).
    pub proto: String,
    /// `up`, `start`, `down`.
    pub state: String,
    /// Info column (`Established`, `Active`, ...), possibly empty.
    pub info: String,
}

/// Parses `show protocols` (banner already removed).
pub fn parse_protocols(text: &str) -> Vec<BirdProtocol> {
    text.lines()
        .filter(|l| !l.starts_with("Name ") && !l.trim().is_empty())
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (name, proto, _table, state) = (w.first()?, w.get(1)?, w.get(2)?, w.get(3)?);
            // Since is one token (time) or two (date and time).
            let since_len = if w.get(4).is_some_and(|s| s.contains('-')) {
                2
            } else {
                1
            };
            let info = w
                .get(4 + since_len..)
                .map(|r| r.join(" "))
                .unwrap_or_default();
            Some(BirdProtocol {
                name: name.to_string(),
                proto: proto.to_string(),
                state: state.to_string(),
                info,
            })
        })
        .collect()
}

/// Parses `show route all` (banner removed) into paths.
pub fn parse_routes(text: &str) -> Vec<RibRoute> {
    let mut out: Vec<RibRoute> = Vec::new();
    let mut cur_prefix: Option<IpNet> = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with("Table ") {
            continue;
        }
        let starts_ws = line.starts_with(' ') || line.starts_with('\t');
        let trimmed = line.trim();
        // A route line: "<prefix> <type> [<proto> <time>] * (pref) ..." or, for further
        // paths of the same prefix, the same without the prefix, indented with spaces.
        let route_head = if !starts_ws {
            let mut w = trimmed.splitn(2, char::is_whitespace);
            let pfx = w.next().and_then(|p| p.parse::<IpNet>().ok());
            if pfx.is_some() {
                cur_prefix = pfx;
            }
            w.next().map(str::trim)
        } else if !line.starts_with('\t') && trimmed.contains('[') {
            Some(trimmed)
        } else {
            None
        };
        if let (Some(head), Some(prefix)) = (route_head, cur_prefix) {
            let from = head
                .split_once('[')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("")
                .trim_end_matches(']')
                .to_string();
            let best = head
                .split_once(']')
                .map(|(_, r)| r.trim_start().starts_with('*'))
                .unwrap_or(false);
            out.push(RibRoute {
                prefix,
                next_hop: None,
                best,
                as_path: Vec::new(),
                from,
                ..RibRoute::default()
            });
            continue;
        }
        let Some(r) = out.last_mut() else { continue };
        if let Some(v) = trimmed.strip_prefix("BGP.next_hop:") {
            r.next_hop = v.split_whitespace().next().and_then(|a| a.parse().ok());
        } else if let Some(v) = trimmed.strip_prefix("BGP.as_path:") {
            r.as_path = v
                .split_whitespace()
                .filter_map(|a| a.trim_matches(|c| c == '{' || c == '}').parse().ok())
                .collect();
        } else if let Some(v) = trimmed.strip_prefix("BGP.med:") {
            r.med = v.trim().parse().ok();
        } else if let Some(v) = trimmed.strip_prefix("BGP.community:") {
            r.communities = tuples(v).into_iter().map(|t| t.join(":")).collect();
        } else if let Some(v) = trimmed.strip_prefix("BGP.large_community:") {
            r.large_communities = tuples(v).into_iter().map(|t| t.join(":")).collect();
        } else if let Some(v) = trimmed.strip_prefix("BGP.originator_id:") {
            r.originator_id = Some(v.trim().to_string());
        } else if let Some(v) = trimmed.strip_prefix("BGP.cluster_list:") {
            r.cluster_list = v.split_whitespace().map(str::to_string).collect();
        } else if let Some(u) = unknown_attr(trimmed) {
            r.unknown.push(u);
        } else if let Some(v) = trimmed.strip_prefix("via ") {
            if r.next_hop.is_none() {
                r.next_hop = v.split_whitespace().next().and_then(|a| a.parse().ok());
            }
        }
    }
    out
}

/// `(65000,1) (65000,2)` or `(1, 2, 3)` → the numbers of each tuple.
fn tuples(v: &str) -> Vec<Vec<String>> {
    v.split('(')
        .filter_map(|t| t.split(')').next())
        .map(|t| {
            t.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// An attribute BIRD does not know, shown as `BGP.63 [t]: de ad be ef` (type code in hex,
/// `[t]` for transitive, the value as hex bytes).
fn unknown_attr(line: &str) -> Option<(u8, String)> {
    let rest = line.strip_prefix("BGP.")?;
    let (name, value) = match rest.split_once(':') {
        Some((n, v)) => (n, v),
        None => (rest, ""),
    };
    let code = name
        .trim()
        .trim_start_matches("unknown")
        .split_whitespace()
        .next()?
        .trim_matches(|c| c == '[' || c == ']');
    // BIRD prints the type code in hex (`%02x`).
    let code = u8::from_str_radix(code.trim_start_matches("0x"), 16).ok()?;
    let hex: String = value
        .split(|c: char| c.is_whitespace() || c == ':')
        .filter(|b| !b.is_empty() && b.chars().all(|c| c.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .concat()
        .to_lowercase();
    Some((code, hex))
}

impl BgpDaemon for Bird {
    fn kind(&self) -> &'static str {
        "bird"
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool> {
        self.session_established(&protocol_name(&peer.name))
    }
    fn rib(&self) -> Result<Vec<RibRoute>> {
        Ok(parse_routes(&self.birdc(&["show", "route", "all"])?))
    }
    fn processes(&self) -> &[Process] {
        &self.procs
    }
}

/// Used by tests that check a path's next hop by address only.
pub fn next_hop_of(routes: &[RibRoute], prefix: IpNet) -> Option<IpAddr> {
    routes
        .iter()
        .find(|r| r.prefix == prefix && r.best)
        .and_then(|r| r.next_hop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "Table master4:
10.10.3.0/24         unicast [gob 12:55:18.189] * (100) [?]
\tvia 10.77.0.2 on eth1
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 
\tBGP.next_hop: 10.77.0.2
\tBGP.local_pref: 100
\tBGP.med: 22
\tBGP.community: (65000,2) (65000,3)
\tBGP.large_community: (4200000002, 2, 2)
\tBGP.originator_id: 10.0.0.9
\tBGP.cluster_list: 10.0.0.100 10.0.0.101
\tBGP.63 [t]: de ad be ef
                     unicast [frr 12:55:19.000] (100) [AS65002i]
\tvia 10.77.0.3 on eth1
\tBGP.as_path: 65002 65001
\tBGP.next_hop: 10.77.0.3
10.10.1.0/24         blackhole [s1 12:55:17.423] * (200)
\tType: static univ
";

    #[test]
    fn parses_show_route_all() {
        let r = parse_routes(ROUTES);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].prefix, "10.10.3.0/24".parse::<IpNet>().unwrap());
        assert!(r[0].best);
        assert_eq!(r[0].from, "gob");
        assert_eq!(r[0].next_hop, Some("10.77.0.2".parse().unwrap()));
        assert!(r[0].as_path.is_empty());
        assert_eq!(r[0].med, Some(22));
        assert_eq!(r[0].communities, vec!["65000:2", "65000:3"]);
        assert_eq!(r[0].large_communities, vec!["4200000002:2:2"]);
        assert_eq!(r[0].originator_id.as_deref(), Some("10.0.0.9"));
        assert_eq!(r[0].cluster_list, vec!["10.0.0.100", "10.0.0.101"]);
        assert_eq!(r[0].unknown, vec![(0x63, "deadbeef".to_string())]);
        assert!(r[1].unknown.is_empty() && r[1].med.is_none());
        assert!(!r[1].best);
        assert_eq!(r[1].prefix, r[0].prefix);
        assert_eq!(r[1].as_path, vec![65002, 65001]);
        assert_eq!(r[1].next_hop, Some("10.77.0.3".parse().unwrap()));
        assert_eq!(r[2].from, "s1");
        assert_eq!(r[2].next_hop, None);
    }

    #[test]
    fn parses_show_protocols() {
        let t = "Name       Proto      Table      State  Since         Info
device1    Device     ---        up     12:55:17.423  
gob        BGP        ---        up     12:55:18.188  Established   
x          BGP        ---        start  2026-11-28 12:55:18  Active        Socket: Connection refused";
        let p = parse_protocols(t);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].info, "");
        assert_eq!(p[1].info, "Established");
        assert_eq!(p[2].state, "start");
        assert_eq!(p[2].info, "Active Socket: Connection refused");
    }

    #[test]
    fn renders_rr_and_checks_with_bird() {
        let s = BgpSpeaker::new(65000, "10.0.0.1".parse().unwrap())
            .peer(
                BgpPeer::new("c1", "10.0.0.2".parse::<std::net::IpAddr>().unwrap(), 65000)
                    .rr_client(),
            )
            .peer(
                BgpPeer::new("c2", "10.0.0.3".parse::<std::net::IpAddr>().unwrap(), 65000)
                    .password("s3cret"),
            )
            .originate("10.10.0.0/24".parse::<ipnet::Ipv4Net>().unwrap())
            .kernel_export()
            .graceful_restart();
        let c = render(&s);
        assert!(c.contains("rr client;"));
        assert!(c.contains("rr cluster id 10.0.0.1;"));
        assert!(c.contains("password \"s3cret\";"));
        assert!(c.contains("route 10.10.0.0/24 blackhole;"));
        assert!(c.contains("protocol kernel"));
        // Let BIRD itself check the syntax when it is installed.
        if run("bird", &["--version"]).is_ok() {
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("b.conf");
            std::fs::write(&f, &c).unwrap();
            run("bird", &["-p", "-c", f.to_str().unwrap()]).unwrap();
        } else {
            eprintln!("skipping bird -p check: bird not installed");
        }
    }
}
