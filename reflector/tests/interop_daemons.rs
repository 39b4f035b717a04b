//! Interop of `wren-reflector` with real BIRD 2, FRR, GoBGP and ExaBGP in the testbed
//! (topologies/wren-interop.clab.yml: every node on one dual-stack LAN, 10.0.0.N/24 and
//! fd00::N/64; Wren is node `wren`, 10.0.0.1 / fd00::1). Each test brings up its own lab
//! (unique namespace names, so tests run in parallel), runs the `wren-reflector` binary in the
//! `wren` namespace with a generated TOML file and `--status-file`, and polls both the status
//! snapshot and the daemons' CLIs with deadlines.
//!
//! Needs root and the daemons (bird2 frr gobgpd exabgp python3); otherwise every test prints
//! `skipping: ...` and passes.
//!
//! The issue's interop list, test by test: IPv4 and IPv6 sessions with 4-octet ASNs and
//! routes both ways with communities, large communities and MED (`ebgp_*_with_{bird,frr,
//! gobgp}`); unknown transitive attribute passed through with the Partial bit
//! (`unknown_transitive_attribute_*`); Wren as reflector for BIRD and FRR clients and as
//! client of a BIRD reflector (`wren_reflects_*`, `wren_as_client_*`); MD5 right and wrong
//! (`md5_*`); graceful restart in both roles with BIRD and FRR (`graceful_restart_*`); route
//! refresh in both directions (`route_refresh_*`); RFC 7606 treat-as-withdraw from ExaBGP
//! (`rfc7606_*`); IPv6 unicast over an IPv4 session with BIRD, next hop from the interface
//! (`ipv6_over_ipv4_session_with_bird`); header errors from a raw client (`malformed_header_*`, client in
//! `interop_daemons/bgp_raw.py`). `interop.rs` and `wire_errors.rs` hold the speaker
//! author's own interop tests (other topologies and combinations).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::Value;
use wren_testbed::daemons::bird::{self, Bird};
use wren_testbed::daemons::exabgp::Exabgp;
use wren_testbed::daemons::frr::Frr;
use wren_testbed::daemons::gobgp::Gobgp;
use wren_testbed::daemons::{BgpDaemon, BgpPeer, BgpSpeaker, Originate, RibRoute};
use wren_testbed::{skip_reason, wait_until, Lab, Process, Topology};

const BIN: &str = env!("CARGO_BIN_EXE_wren-reflector");
/// Deadline for a session or a route to appear (sessions here come up in 1-3 s).
const T: Duration = Duration::from_secs(20);

const WREN4: &str = "10.0.0.1";
const WREN6: &str = "fd00::1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
fn v4(s: &str) -> std::net::Ipv4Addr {
    s.parse().unwrap()
}

fn missing_tools() -> Option<String> {
    for bin in [
        "/usr/sbin/bird",
        "/usr/sbin/birdc",
        "/usr/lib/frr/bgpd",
        "/usr/bin/vtysh",
        "/usr/bin/gobgpd",
        "/usr/bin/gobgp",
        "/usr/sbin/exabgp",
        "/usr/bin/python3",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is not installed (apt-get install bird2 frr gobgpd exabgp python3)"
            ));
        }
    }
    None
}

/// The lab, or `None` (with the reason printed) when this machine cannot run it.
fn lab() -> Option<Lab> {
    if let Some(r) = skip_reason().or_else(missing_tools) {
        eprintln!("skipping: {r}");
        return None;
    }
    let topo = Topology::from_file(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/topologies/wren-interop.clab.yml"),
    )
    .unwrap();
    Some(Lab::up(&topo).unwrap())
}

// ---------------------------------------------------------------------------------------
// Wren: config text, the process, and its status file.

/// A `[[neighbor]]` block.
#[derive(Clone)]
struct Nbr {
    address: IpAddr,
    remote_asn: u32,
    extra: Vec<String>,
}

fn nbr(address: &str, remote_asn: u32) -> Nbr {
    Nbr {
        address: ip(address),
        remote_asn,
        extra: Vec::new(),
    }
}

impl Nbr {
    fn with(mut self, line: &str) -> Self {
        self.extra.push(line.to_string());
        self
    }
}

/// A `[[originate]]` block.
struct Orig {
    prefix: &'static str,
    communities: &'static [&'static str],
    large: &'static [&'static str],
    med: Option<u32>,
}

fn orig(prefix: &'static str) -> Orig {
    Orig {
        prefix,
        communities: &[],
        large: &[],
        med: None,
    }
}

fn wren_config(asn: u32, global: &[&str], nbrs: &[Nbr], origs: &[Orig]) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "asn = {asn}");
    let _ = writeln!(c, "router_id = \"{WREN4}\"");
    let _ = writeln!(c, "listen_addresses = [\"0.0.0.0\", \"::\"]");
    let _ = writeln!(c, "connect_retry_secs = 1");
    for g in global {
        let _ = writeln!(c, "{g}");
    }
    for n in nbrs {
        let _ = writeln!(c, "[[neighbor]]");
        let _ = writeln!(c, "address = \"{}\"", n.address);
        let _ = writeln!(c, "remote_asn = {}", n.remote_asn);
        let local = if n.address.is_ipv6() { WREN6 } else { WREN4 };
        let _ = writeln!(c, "local_address = \"{local}\"");
        for e in &n.extra {
            let _ = writeln!(c, "{e}");
        }
    }
    for o in origs {
        let _ = writeln!(c, "[[originate]]");
        let _ = writeln!(c, "prefix = \"{}\"", o.prefix);
        let q = |l: &[&str]| {
            l.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !o.communities.is_empty() {
            let _ = writeln!(c, "communities = [{}]", q(o.communities));
        }
        if !o.large.is_empty() {
            let _ = writeln!(c, "large_communities = [{}]", q(o.large));
        }
        if let Some(m) = o.med {
            let _ = writeln!(c, "med = {m}");
        }
    }
    c
}

/// `wren-reflector` running in the `wren` namespace.
struct Wren {
    proc: Option<Process>,
    dir: PathBuf,
    status: PathBuf,
    config: PathBuf,
    starts: u32,
}

impl Wren {
    fn start(lab: &Lab, config: &str) -> Wren {
        let dir = lab.work_dir("wren", "wren").unwrap();
        let config_path = dir.join("reflector.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut w = Wren {
            proc: None,
            status: dir.join("status.json"),
            dir,
            config: config_path,
            starts: 0,
        };
        w.spawn(lab, &[]);
        w
    }

    fn spawn(&mut self, lab: &Lab, extra: &[&str]) {
        let _ = std::fs::remove_file(&self.status);
        self.starts += 1;
        let mut argv: Vec<String> = vec![
            BIN.into(),
            "--config".into(),
            self.config.display().to_string(),
            "--status-file".into(),
            self.status.display().to_string(),
            "--status-interval-ms".into(),
            "100".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let env = vec![("RUST_LOG".to_string(), "info,wren_bgp=debug".to_string())];
        let name = format!("wren{}", self.starts);
        let log = self.dir.join(format!("{name}.log"));
        let p = lab.spawn_logged("wren", &name, &argv, &env, &log).unwrap();
        self.proc = Some(p);
        let st = &self.status;
        let proc = self.proc.as_mut().unwrap();
        let r = wait_until("wren-reflector status file", T, || {
            if !proc.is_running() {
                return Err(wren_testbed::Error::Usage(format!(
                    "wren-reflector exited: {}",
                    proc.log()
                )));
            }
            Ok(st.exists())
        });
        if let Err(e) = r {
            panic!("{e}");
        }
    }

    /// Rewrites the config file and sends SIGHUP (reload).
    fn reload(&mut self, config: &str) {
        std::fs::write(&self.config, config).unwrap();
        self.proc
            .as_mut()
            .unwrap()
            .signal(nix::sys::signal::Signal::SIGHUP)
            .unwrap();
    }

    /// SIGKILL: no NOTIFICATION, the kernel closes the TCP connections (a crash).
    fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
            p.stop(Duration::from_secs(5));
        }
    }

    fn log(&self) -> String {
        self.proc.as_ref().map(Process::log).unwrap_or_default()
    }

    fn status(&self) -> Value {
        let t = std::fs::read_to_string(&self.status).unwrap_or_default();
        serde_json::from_str(&t).unwrap_or(Value::Null)
    }

    fn peer(&self, addr: &str) -> Option<Value> {
        let a = ip(addr);
        self.status()
            .get("peers")?
            .as_array()?
            .iter()
            .find(|p| {
                p.get("address")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    == Some(a)
            })
            .cloned()
    }

    fn state(&self, addr: &str) -> String {
        self.peer(addr)
            .and_then(|p| p.get("state").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    }

    fn established(&self, addr: &str) -> bool {
        self.state(addr) == "Established"
    }

    fn wait_established(&self, addr: &str) {
        if let Err(e) = wait_until(format!("wren ~ {addr} Established"), T, || {
            Ok(self.established(addr))
        }) {
            panic!(
                "{e}\npeer: {:#?}\nwren log:\n{}",
                self.peer(addr),
                tail(&self.log())
            );
        }
    }

    /// A counter of a peer, e.g. `("messages_in", "route_refresh")`.
    fn counter(&self, addr: &str, group: &str, name: &str) -> u64 {
        self.peer(addr)
            .and_then(|p| p.get(group)?.get(name)?.as_u64())
            .unwrap_or(0)
    }

    /// Loc-RIB paths of `prefix`.
    fn paths(&self, prefix: &str) -> Vec<Value> {
        let p = net(prefix);
        self.status()
            .get("routes")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter(|x| {
                        x.get("prefix")
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<IpNet>().ok())
                            == Some(p)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The path of `prefix` learned from `source`, once it is there.
    fn wait_path(&self, prefix: &str, source: &str) -> Value {
        let src = ip(source);
        let mut found = None;
        let r = wait_until(format!("wren has {prefix} from {source}"), T, || {
            found = self.paths(prefix).into_iter().find(|p| {
                p.get("source")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    == Some(src)
            });
            Ok(found.is_some())
        });
        if let Err(e) = r {
            panic!(
                "{e}\nroutes: {:#}\nwren log:\n{}",
                self.status().get("routes").cloned().unwrap_or(Value::Null),
                tail(&self.log())
            );
        }
        found.unwrap()
    }
}

impl Drop for Wren {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(5));
        }
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.get("attributes")
        .and_then(|a| a.get(key))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn attr<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get("attributes").and_then(|a| a.get(key))
}

fn next_hop_of(v: &Value) -> Option<IpAddr> {
    v.get("next_hop")
        .and_then(Value::as_str)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
}

/// Waits for `d`'s best path of `prefix` and returns it.
fn wait_best(d: &dyn BgpDaemon, prefix: &str) -> RibRoute {
    let p = net(prefix);
    let mut found = None;
    let r = wait_until(format!("{} has {prefix}", d.kind()), T, || {
        found = d.best(p)?;
        Ok(found.is_some())
    });
    if let Err(e) = r {
        panic!("{e}\n{} RIB: {:#?}", d.kind(), d.rib());
    }
    found.unwrap()
}

fn wait_peer(d: &dyn BgpDaemon, p: &BgpPeer) {
    if let Err(e) = wait_until(
        format!("{} ~ {} Established", d.kind(), p.address),
        T,
        || d.peer_established(p),
    ) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// eBGP over IPv4 and IPv6 with 4-octet ASNs, routes with attributes both ways.

const WREN_AS: u32 = 4_200_000_001;

/// Wren (AS 4200000001) and one daemon (AS 4200000002..4) with an IPv4 session for IPv4
/// unicast and an IPv6 session for IPv6 unicast. Both originate one prefix per family with
/// communities, large communities and a MED; each side must receive the other's with every
/// attribute intact, the 4-octet AS in the AS_PATH and the next hop of the session.
fn ebgp_both_families(kind: &str) {
    let Some(lab) = lab() else { return };
    let (node, n) = match kind {
        "bird" => ("bird", 2u32),
        "frr" => ("frr", 3),
        _ => ("gobgp", 4),
    };
    let their_as = 4_200_000_000 + n;
    let (a4, a6) = (format!("10.0.0.{n}"), format!("fd00::{n}"));
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[],
            &[
                nbr(&a4, their_as).with("families = [\"ipv4-unicast\"]"),
                nbr(&a6, their_as).with("families = [\"ipv6-unicast\"]"),
            ],
            &[
                Orig {
                    prefix: "10.20.1.0/24",
                    communities: &["65000:1"],
                    large: &["4200000001:1:1"],
                    med: Some(11),
                },
                Orig {
                    prefix: "2001:db8:1::/48",
                    communities: &["65000:6"],
                    large: &["4200000001:6:6"],
                    med: Some(66),
                },
            ],
        ),
    );
    let p4 = BgpPeer::new("wren4", ip(WREN4), WREN_AS);
    let p6 = BgpPeer::new("wren6", ip(WREN6), WREN_AS);
    let cfg = BgpSpeaker::new(their_as, v4(&a4))
        .local6(format!("fd00::{n}").parse().unwrap())
        .peer(p4.clone())
        .peer(p6.clone())
        .originate_with(
            Originate::new(net("10.20.2.0/24"))
                .community(65000, 2)
                .large_community(their_as, 2, 2)
                .med(22),
        )
        .originate_with(
            Originate::new(net("2001:db8:2::/48"))
                .community(65000, 7)
                .large_community(their_as, 7, 7)
                .med(77),
        );
    let d: Box<dyn BgpDaemon> = match kind {
        "bird" => Box::new(Bird::start(&lab, node, &cfg).unwrap()),
        "frr" => Box::new(Frr::start(&lab, node, &cfg).unwrap()),
        _ => Box::new(Gobgp::start(&lab, node, &cfg).unwrap()),
    };
    wren.wait_established(&a4);
    wren.wait_established(&a6);
    wait_peer(d.as_ref(), &p4);
    wait_peer(d.as_ref(), &p6);

    // Negotiated: 4-octet AS, the session's family.
    for (a, fam) in [(&a4, "ipv4-unicast"), (&a6, "ipv6-unicast")] {
        let neg = wren.peer(a).unwrap()["negotiated"].clone();
        assert_eq!(neg["four_octet_as"], Value::Bool(true), "{neg:#}");
        assert_eq!(neg["remote_asn"].as_u64(), Some(u64::from(their_as)));
        let fams: Vec<&str> = neg["families"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(fams, vec![fam], "{neg:#}");
    }

    // Daemon -> Wren.
    for (prefix, nh, comm, large, med) in [
        (
            "10.20.2.0/24",
            a4.as_str(),
            "65000:2",
            format!("{their_as}:2:2"),
            22,
        ),
        (
            "2001:db8:2::/48",
            a6.as_str(),
            "65000:7",
            format!("{their_as}:7:7"),
            77,
        ),
    ] {
        let r = wren.wait_path(prefix, if prefix.contains(':') { &a6 } else { &a4 });
        assert_eq!(next_hop_of(&r), Some(ip(nh)), "{prefix}: {r:#}");
        assert_eq!(
            attr(&r, "as_path").and_then(Value::as_str),
            Some(their_as.to_string().as_str()),
            "{r:#}"
        );
        assert_eq!(strs(&r, "communities"), vec![comm.to_string()], "{r:#}");
        assert_eq!(strs(&r, "large_communities"), vec![large], "{r:#}");
        assert_eq!(attr(&r, "med").and_then(Value::as_u64), Some(med), "{r:#}");
        assert_eq!(r["best"], Value::Bool(true), "{r:#}");
    }

    // Wren -> daemon.
    for (prefix, nh, comm, large, med) in [
        ("10.20.1.0/24", WREN4, "65000:1", "4200000001:1:1", 11),
        ("2001:db8:1::/48", WREN6, "65000:6", "4200000001:6:6", 66),
    ] {
        let r = wait_best(d.as_ref(), prefix);
        assert_eq!(r.next_hop, Some(ip(nh)), "{kind} {prefix}: {r:?}");
        assert_eq!(r.as_path, vec![WREN_AS], "{kind} {prefix}: {r:?}");
        assert_eq!(r.communities, vec![comm.to_string()], "{kind}: {r:?}");
        assert_eq!(
            r.large_communities,
            vec![large.to_string()],
            "{kind}: {r:?}"
        );
        assert_eq!(r.med, Some(med), "{kind}: {r:?}");
    }
    drop(d);
    drop(wren);
    lab.down().unwrap();
}

#[test]
fn ebgp_ipv4_ipv6_4octet_as_attributes_with_bird() {
    ebgp_both_families("bird");
}

#[test]
fn ebgp_ipv4_ipv6_4octet_as_attributes_with_frr() {
    ebgp_both_families("frr");
}

#[test]
fn ebgp_ipv4_ipv6_4octet_as_attributes_with_gobgp() {
    ebgp_both_families("gobgp");
}

/// IPv6 unicast over an IPv4 session (dual-stack as Calico runs it): one session
/// 10.0.0.1 - 10.0.0.2 carries both families. Wren's IPv6 next hop has no configuration:
/// it is the global IPv6 address of the interface holding 10.0.0.1 (fd00::1); BIRD's is its
/// `next hop address fd00::2`.
#[test]
fn ipv6_over_ipv4_session_with_bird() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            65001,
            &[],
            &[nbr("10.0.0.2", 65002).with("families = [\"ipv4-unicast\", \"ipv6-unicast\"]")],
            &[orig("10.20.1.0/24"), orig("2001:db8:1::/48")],
        ),
    );
    let bird = Bird::start_with_config(
        &lab,
        "bird",
        r#"log stderr all;
router id 10.0.0.2;
protocol device { }
protocol static s4 { ipv4; route 10.20.2.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:2::/48 blackhole; }
protocol bgp peer_wren {
  local 10.0.0.2 as 65002;
  neighbor 10.0.0.1 as 65001;
  direct;
  connect delay time 1; connect retry time 1; error wait time 1,5;
  ipv4 { import all; export where source = RTS_STATIC; };
  ipv6 { import all; export where source = RTS_STATIC; next hop address fd00::2; };
}
"#,
    )
    .unwrap();
    wren.wait_established("10.0.0.2");
    let neg = wren.peer("10.0.0.2").unwrap()["negotiated"].clone();
    let fams: Vec<&str> = neg["families"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(fams, vec!["ipv4-unicast", "ipv6-unicast"], "{neg:#}");
    // BIRD -> Wren: the IPv6 route with BIRD's IPv6 next hop.
    let r = wren.wait_path("2001:db8:2::/48", "10.0.0.2");
    assert_eq!(next_hop_of(&r), Some(ip("fd00::2")), "{r:#}");
    let r = wren.wait_path("10.20.2.0/24", "10.0.0.2");
    assert_eq!(next_hop_of(&r), Some(ip("10.0.0.2")), "{r:#}");
    // Wren -> BIRD: the IPv6 route with Wren's interface address as next hop.
    let b = wait_best(&bird, "2001:db8:1::/48");
    assert_eq!(b.next_hop, Some(ip(WREN6)), "{b:?}");
    assert_eq!(b.as_path, vec![65001], "{b:?}");
    let b = wait_best(&bird, "10.20.1.0/24");
    assert_eq!(b.next_hop, Some(ip(WREN4)), "{b:?}");
    drop((bird, wren));
    lab.down().unwrap();
}

// ---------------------------------------------------------------------------------------
// Unknown optional transitive attribute: ExaBGP -> Wren -> GoBGP and BIRD.

#[test]
fn unknown_transitive_attribute_passes_through() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[],
            &[
                nbr("10.0.0.5", 65005).with("passive = true"),
                nbr("10.0.0.4", 65004),
                nbr("10.0.0.2", 65002),
            ],
            &[],
        ),
    );
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let gob = Gobgp::start(
        &lab,
        "gobgp",
        &BgpSpeaker::new(65004, v4("10.0.0.4")).peer(p.clone()),
    )
    .unwrap();
    let bird = Bird::start(
        &lab,
        "bird",
        &BgpSpeaker::new(65002, v4("10.0.0.2")).peer(p.clone()),
    )
    .unwrap();
    let exa = Exabgp::start(
        &lab,
        "exabgp",
        &BgpSpeaker::new(65005, v4("10.0.0.5")).peer(p.clone()),
    )
    .unwrap();
    wren.wait_established("10.0.0.5");
    wren.wait_established("10.0.0.4");
    wren.wait_established("10.0.0.2");
    // Type 99, optional transitive (0xc0), value de ad be ef.
    exa.command("announce route 10.30.0.0/24 next-hop self community [ 65005:99 ] attribute [ 0x63 0xc0 0xdeadbeef ]")
        .unwrap();
    let r = wren.wait_path("10.30.0.0/24", "10.0.0.5");
    let unknown = strs(&r, "unknown");
    assert_eq!(unknown.len(), 1, "{r:#}");
    assert!(
        unknown[0].contains("type=99") && unknown[0].contains("deadbeef"),
        "{unknown:?}"
    );
    // GoBGP shows the value: passed through unchanged (Partial bit aside).
    let g = wait_best(&gob, "10.30.0.0/24");
    assert_eq!(g.unknown, vec![(99u8, "deadbeef".to_string())], "{g:?}");
    assert_eq!(g.as_path, vec![WREN_AS, 65005], "{g:?}");
    assert_eq!(g.communities, vec!["65005:99".to_string()], "{g:?}");
    // BIRD shows it too (`BGP.63 [t]: de ad be ef`).
    let b = wait_best(&bird, "10.30.0.0/24");
    assert_eq!(b.unknown, vec![(99u8, "deadbeef".to_string())], "{b:?}");
    drop((gob, bird, exa, wren));
    lab.down().unwrap();
}

/// RFC 4271 section 5: an unrecognized optional transitive attribute passed on to another
/// peer carries the Partial bit (flags 0xc0 from ExaBGP must leave Wren as 0xe0).
#[test]
fn unknown_transitive_attribute_gets_the_partial_bit() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[],
            &[
                nbr("10.0.0.5", 65005).with("passive = true"),
                nbr("10.0.0.4", 65004),
            ],
            &[],
        ),
    );
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let gob = Gobgp::start(
        &lab,
        "gobgp",
        &BgpSpeaker::new(65004, v4("10.0.0.4")).peer(p.clone()),
    )
    .unwrap();
    let exa = Exabgp::start(
        &lab,
        "exabgp",
        &BgpSpeaker::new(65005, v4("10.0.0.5")).peer(p.clone()),
    )
    .unwrap();
    wren.wait_established("10.0.0.5");
    wren.wait_established("10.0.0.4");
    exa.command("announce route 10.31.0.0/24 next-hop self attribute [ 0x63 0xc0 0xdeadbeef ]")
        .unwrap();
    wait_best(&gob, "10.31.0.0/24");
    let raw = gob.gobgp(&["-j", "global", "rib", "-a", "ipv4"]).unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap();
    let flags = v["10.31.0.0/24"][0]["attrs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"].as_u64() == Some(99))
        .and_then(|a| a["flags"].as_u64());
    assert_eq!(flags, Some(0xe0), "{raw}");
    drop((gob, exa, wren));
    lab.down().unwrap();
}

// ---------------------------------------------------------------------------------------
// Route reflection.

#[test]
fn wren_reflects_between_bird_and_frr_clients() {
    let Some(lab) = lab() else { return };
    let asn = 65000;
    let wren = Wren::start(
        &lab,
        &wren_config(
            asn,
            &["cluster_id = \"10.0.0.100\""],
            &[
                nbr("10.0.0.2", asn).with("route_reflector_client = true"),
                nbr("10.0.0.3", asn).with("route_reflector_client = true"),
                nbr("fd00::2", asn).with("route_reflector_client = true"),
                nbr("fd00::3", asn).with("route_reflector_client = true"),
            ],
            &[],
        ),
    );
    let (w4, w6) = (
        BgpPeer::new("wren", ip(WREN4), asn),
        BgpPeer::new("wren6", ip(WREN6), asn),
    );
    let bird = Bird::start(
        &lab,
        "bird",
        &BgpSpeaker::new(asn, v4("10.0.0.2"))
            .local6("fd00::2".parse().unwrap())
            .peer(w4.clone())
            .peer(w6.clone())
            .originate_with(
                Originate::new(net("10.40.2.0/24"))
                    .community(65000, 2)
                    .med(5),
            )
            .originate_prefix(net("2001:db8:42::/48")),
    )
    .unwrap();
    let frr = Frr::start(
        &lab,
        "frr",
        &BgpSpeaker::new(asn, v4("10.0.0.3"))
            .local6("fd00::3".parse().unwrap())
            .peer(w4.clone())
            .peer(w6.clone())
            .originate_with(Originate::new(net("10.40.3.0/24")).large_community(65000, 3, 3))
            .originate_prefix(net("2001:db8:43::/48")),
    )
    .unwrap();
    for a in ["10.0.0.2", "10.0.0.3", "fd00::2", "fd00::3"] {
        wren.wait_established(a);
    }
    // BIRD's route at FRR: next hop unchanged, ORIGINATOR_ID = BIRD, CLUSTER_LIST = Wren's.
    let r = wait_best(&frr, "10.40.2.0/24");
    assert_eq!(r.next_hop, Some(ip("10.0.0.2")), "{r:?}");
    assert_eq!(r.originator_id.as_deref(), Some("10.0.0.2"), "{r:?}");
    assert_eq!(r.cluster_list, vec!["10.0.0.100".to_string()], "{r:?}");
    assert_eq!(r.communities, vec!["65000:2".to_string()], "{r:?}");
    assert_eq!(r.med, Some(5), "{r:?}");
    assert!(r.as_path.is_empty(), "{r:?}");
    let r6 = wait_best(&frr, "2001:db8:42::/48");
    assert_eq!(r6.next_hop, Some(ip("fd00::2")), "{r6:?}");
    assert_eq!(r6.originator_id.as_deref(), Some("10.0.0.2"), "{r6:?}");
    // FRR's route at BIRD.
    let r = wait_best(&bird, "10.40.3.0/24");
    assert_eq!(r.next_hop, Some(ip("10.0.0.3")), "{r:?}");
    assert_eq!(r.originator_id.as_deref(), Some("10.0.0.3"), "{r:?}");
    assert_eq!(r.cluster_list, vec!["10.0.0.100".to_string()], "{r:?}");
    assert_eq!(r.large_communities, vec!["65000:3:3".to_string()], "{r:?}");
    let r6 = wait_best(&bird, "2001:db8:43::/48");
    assert_eq!(r6.next_hop, Some(ip("fd00::3")), "{r6:?}");
    // Wren itself keeps the clients' next hops in its Loc-RIB.
    let w = wren.wait_path("10.40.3.0/24", "10.0.0.3");
    assert_eq!(next_hop_of(&w), Some(ip("10.0.0.3")), "{w:#}");
    drop((bird, frr, wren));
    lab.down().unwrap();
}

#[test]
fn wren_as_client_of_a_bird_reflector() {
    let Some(lab) = lab() else { return };
    let asn = 65000;
    // BIRD on node `bird` reflects between Wren and FRR.
    let rr = Bird::start(
        &lab,
        "bird",
        &BgpSpeaker::new(asn, v4("10.0.0.2"))
            .peer(BgpPeer::new("wren", ip(WREN4), asn).rr_client())
            .peer(BgpPeer::new("frr", ip("10.0.0.3"), asn).rr_client()),
    )
    .unwrap();
    let wren = Wren::start(
        &lab,
        &wren_config(
            asn,
            &[],
            &[nbr("10.0.0.2", asn)],
            &[Orig {
                prefix: "10.50.1.0/24",
                communities: &["65000:51"],
                large: &[],
                med: None,
            }],
        ),
    );
    let frr = Frr::start(
        &lab,
        "frr",
        &BgpSpeaker::new(asn, v4("10.0.0.3"))
            .peer(BgpPeer::new("rr", ip("10.0.0.2"), asn))
            .originate_prefix(net("10.50.3.0/24")),
    )
    .unwrap();
    wren.wait_established("10.0.0.2");
    // Wren's route reaches FRR through the reflector.
    let r = wait_best(&frr, "10.50.1.0/24");
    assert_eq!(r.next_hop, Some(ip(WREN4)), "{r:?}");
    assert_eq!(r.originator_id.as_deref(), Some(WREN4), "{r:?}");
    assert_eq!(r.cluster_list, vec!["10.0.0.2".to_string()], "{r:?}");
    assert_eq!(r.communities, vec!["65000:51".to_string()], "{r:?}");
    // FRR's route reaches Wren with the reflector's attributes.
    let w = wren.wait_path("10.50.3.0/24", "10.0.0.2");
    assert_eq!(next_hop_of(&w), Some(ip("10.0.0.3")), "{w:#}");
    assert_eq!(
        attr(&w, "originator_id").and_then(Value::as_str),
        Some("10.0.0.3"),
        "{w:#}"
    );
    assert_eq!(
        strs(&w, "cluster_list"),
        vec!["10.0.0.2".to_string()],
        "{w:#}"
    );
    assert_eq!(w["best"], Value::Bool(true), "{w:#}");
    drop((rr, frr, wren));
    lab.down().unwrap();
}

// ---------------------------------------------------------------------------------------
// TCP MD5.

/// `TcpExt` counter of a node's namespace (`/proc/net/netstat`).
fn tcpext(lab: &Lab, node: &str, name: &str) -> u64 {
    let t = lab
        .exec_text(node, &["cat", "/proc/net/netstat"])
        .unwrap_or_default();
    let lines: Vec<&str> = t.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let (Some(h), Some(v)) = (lines.first(), lines.get(1)) else {
        return 0;
    };
    h.split_whitespace()
        .zip(v.split_whitespace())
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn md5_right_password_establishes_wrong_one_is_dropped() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[],
            &[
                nbr("10.0.0.3", 65003).with("password = \"wren-frr-secret\""),
                nbr("10.0.0.2", 65002).with("password = \"wren-bird-secret\""),
            ],
            &[orig("10.80.1.0/24")],
        ),
    );
    let p = |pw: &str| BgpPeer::new("wren", ip(WREN4), WREN_AS).password(pw);
    let frr = Frr::start(
        &lab,
        "frr",
        &BgpSpeaker::new(65003, v4("10.0.0.3")).peer(p("wren-frr-secret")),
    )
    .unwrap();
    let bird_cfg = |pw: &str| BgpSpeaker::new(65002, v4("10.0.0.2")).peer(p(pw));
    let bird = Bird::start(&lab, "bird", &bird_cfg("not-the-secret")).unwrap();
    // Right password: up, and routes flow.
    wren.wait_established("10.0.0.3");
    wait_best(&frr, "10.80.1.0/24");
    // Wrong password: Wren's kernel drops BIRD's segments as MD5 failures.
    let before = tcpext(&lab, "wren", "TCPMD5Failure");
    wait_until("MD5 failures counted in wren's namespace", T, || {
        Ok(tcpext(&lab, "wren", "TCPMD5Failure") > before)
    })
    .unwrap();
    assert!(
        !wren.established("10.0.0.2"),
        "{:#?}",
        wren.peer("10.0.0.2")
    );
    assert!(!bird.peer_established(&p("x")).unwrap());
    // The password was the only problem: with the right one BIRD comes up.
    bird.reconfigure(&bird::render(&bird_cfg("wren-bird-secret")))
        .unwrap();
    wren.wait_established("10.0.0.2");
    wait_best(&bird, "10.80.1.0/24");
    drop((frr, bird, wren));
    lab.down().unwrap();
}

// ---------------------------------------------------------------------------------------
// Graceful restart.

/// Wren restarts (killed, then started again with `--graceful-restart`): BIRD and FRR, as
/// helpers, keep Wren's route the whole time.
#[test]
fn graceful_restart_bird_and_frr_keep_routes_while_wren_restarts() {
    let Some(lab) = lab() else { return };
    let conf = wren_config(
        WREN_AS,
        &["[graceful_restart]", "restart_time_secs = 30"],
        &[nbr("10.0.0.2", 65002), nbr("10.0.0.3", 65003)],
        &[orig("10.60.1.0/24")],
    );
    // [graceful_restart] is a table: neighbours must come after it in TOML, which
    // wren_config does (globals first, then [[neighbor]]).
    let mut wren = Wren::start(&lab, &conf);
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let bird = Bird::start(
        &lab,
        "bird",
        &BgpSpeaker::new(65002, v4("10.0.0.2"))
            .peer(p.clone())
            .restart_time(30),
    )
    .unwrap();
    let frr = Frr::start(
        &lab,
        "frr",
        &BgpSpeaker::new(65003, v4("10.0.0.3"))
            .peer(p.clone())
            .restart_time(30),
    )
    .unwrap();
    wren.wait_established("10.0.0.2");
    wren.wait_established("10.0.0.3");
    let pfx = net("10.60.1.0/24");
    wait_best(&bird, "10.60.1.0/24");
    wait_best(&frr, "10.60.1.0/24");
    for a in ["10.0.0.2", "10.0.0.3"] {
        let neg = wren.peer(a).unwrap()["negotiated"].clone();
        assert_eq!(neg["graceful_restart"], Value::Bool(true), "{a}: {neg:#}");
    }

    let r_bit = |frr: &Frr| {
        frr.neighbor(ip(WREN4)).ok().and_then(|v| {
            v.get(WREN4)?
                .get("gracefulRestartInfo")?
                .get("rBit")?
                .as_bool()
        })
    };
    assert_eq!(r_bit(&frr), Some(false));
    wren.kill();
    // Both notice (the kernel closed the connections) ...
    wait_until("BIRD and FRR see Wren go down", T, || {
        Ok(!bird.peer_established(&p)? && !frr.peer_established(&p)?)
    })
    .unwrap();
    // ... and keep the route while Wren is away.
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(2) {
        assert!(bird.best(pfx).unwrap().is_some(), "BIRD dropped the route");
        assert!(frr.best(pfx).unwrap().is_some(), "FRR dropped the route");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Both hold it as stale: GR helper mode, not just slow to notice.
    let details = bird.protocol_details(&bird::protocol_name("wren")).unwrap();
    assert!(
        details.contains("Neighbor graceful restart active"),
        "BIRD is not helping Wren's graceful restart:\n{details}"
    );
    let detail = frr
        .vtysh_bgpd(&["show bgp ipv4 unicast 10.60.1.0/24 json"])
        .unwrap();
    assert!(
        detail.replace(' ', "").contains("\"stale\":true"),
        "FRR does not hold the route as stale:\n{detail}"
    );
    wren.spawn(&lab, &["--graceful-restart"]);
    // Through the restart the route never goes away, and the sessions come back.
    wait_until("sessions back after Wren's restart", T, || {
        assert!(
            bird.best(pfx)?.is_some(),
            "BIRD dropped the route during the restart"
        );
        assert!(
            frr.best(pfx)?.is_some(),
            "FRR dropped the route during the restart"
        );
        Ok(bird.peer_established(&p)? && frr.peer_established(&p)?)
    })
    .unwrap();
    wren.wait_established("10.0.0.2");
    wren.wait_established("10.0.0.3");
    // Restarted with `--graceful-restart`, Wren's OPEN carried the Restart State bit.
    assert_eq!(
        r_bit(&frr),
        Some(true),
        "{:#}",
        frr.neighbor(ip(WREN4)).unwrap()
    );
    let details = bird.protocol_details(&bird::protocol_name("wren")).unwrap();
    assert!(details.contains("Restart recovery"), "{details}");
    // After End-of-RIB the route is fresh (not stale) at FRR.
    wait_until("FRR's path is no longer stale", T, || {
        let t = frr.vtysh_bgpd(&["show bgp ipv4 unicast 10.60.1.0/24 json"])?;
        Ok(t.contains("10.60.1.0/24") && !t.contains("\"stale\":true"))
    })
    .unwrap();
    drop((bird, frr, wren));
    lab.down().unwrap();
}

/// BIRD and FRR restart (killed, started again): Wren, as helper, keeps their routes as
/// stale meanwhile, and takes the fresh ones when they are back.
#[test]
fn graceful_restart_wren_keeps_routes_while_bird_and_frr_restart() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[
                "[graceful_restart]",
                "restart_time_secs = 30",
                "stale_time_secs = 60",
            ],
            &[nbr("10.0.0.2", 65002), nbr("10.0.0.3", 65003)],
            &[],
        ),
    );
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let bcfg = BgpSpeaker::new(65002, v4("10.0.0.2"))
        .peer(p.clone())
        .restart_time(30)
        .originate_prefix(net("10.61.2.0/24"));
    let fcfg = BgpSpeaker::new(65003, v4("10.0.0.3"))
        .peer(p.clone())
        .restart_time(30)
        .originate_prefix(net("10.61.3.0/24"));
    let mut bird = Bird::start(&lab, "bird", &bcfg).unwrap();
    let mut frr = Frr::start(&lab, "frr", &fcfg).unwrap();
    for (a, pfx) in [("10.0.0.2", "10.61.2.0/24"), ("10.0.0.3", "10.61.3.0/24")] {
        wren.wait_established(a);
        let r = wren.wait_path(pfx, a);
        assert_eq!(r["stale"], Value::Bool(false));
        let neg = wren.peer(a).unwrap()["negotiated"].clone();
        assert_eq!(neg["graceful_restart"], Value::Bool(true), "{a}: {neg:#}");
    }
    bird.kill();
    frr.kill();
    for (a, pfx) in [("10.0.0.2", "10.61.2.0/24"), ("10.0.0.3", "10.61.3.0/24")] {
        wait_until(format!("wren keeps {pfx} from {a} as stale"), T, || {
            Ok(!wren.established(a)
                && wren
                    .paths(pfx)
                    .iter()
                    .any(|r| r["stale"] == Value::Bool(true)))
        })
        .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", wren.paths(pfx), tail(&wren.log())));
    }
    // Still there a moment later (not swept before the restart time).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(wren.paths("10.61.2.0/24").len(), 1);
    assert_eq!(wren.paths("10.61.3.0/24").len(), 1);
    drop(bird);
    drop(frr);
    let bird = Bird::start(&lab, "bird", &bcfg).unwrap();
    let frr = Frr::start(&lab, "frr", &fcfg).unwrap();
    for (a, pfx) in [("10.0.0.2", "10.61.2.0/24"), ("10.0.0.3", "10.61.3.0/24")] {
        wren.wait_established(a);
        wait_until(format!("{pfx} fresh again"), T, || {
            let p = wren.paths(pfx);
            Ok(p.len() == 1 && p[0]["stale"] == Value::Bool(false))
        })
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.paths(pfx)));
    }
    drop((bird, frr, wren));
    lab.down().unwrap();
}

// ---------------------------------------------------------------------------------------
// Route refresh.

/// BIRD (`birdc reload in`) and FRR (`clear bgp ... soft in`) send ROUTE-REFRESH; Wren
/// answers by sending its Adj-RIB-Out again, and the sessions stay up. (GoBGP keeps an
/// Adj-RIB-In and its `softresetin` sends no ROUTE-REFRESH, so it is not part of this.)
#[test]
fn route_refresh_from_bird_and_frr() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[],
            &[nbr("10.0.0.2", 65002), nbr("10.0.0.3", 65003)],
            &[orig("10.90.1.0/24")],
        ),
    );
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let bird = Bird::start(
        &lab,
        "bird",
        &BgpSpeaker::new(65002, v4("10.0.0.2")).peer(p.clone()),
    )
    .unwrap();
    let frr = Frr::start(
        &lab,
        "frr",
        &BgpSpeaker::new(65003, v4("10.0.0.3")).peer(p.clone()),
    )
    .unwrap();
    for a in ["10.0.0.2", "10.0.0.3"] {
        wren.wait_established(a);
        let neg = wren.peer(a).unwrap()["negotiated"].clone();
        assert_eq!(neg["route_refresh"], Value::Bool(true), "{a}: {neg:#}");
    }
    wait_best(&bird, "10.90.1.0/24");
    wait_best(&frr, "10.90.1.0/24");
    type Trigger<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let trigger: [Trigger; 2] = [
        (
            "10.0.0.2",
            Box::new(|| bird.reload_in(&bird::protocol_name("wren")).unwrap()),
        ),
        ("10.0.0.3", Box::new(|| frr.soft_in(ip(WREN4)).unwrap())),
    ];
    for (a, go) in trigger {
        let rr0 = wren.counter(a, "messages_in", "route_refresh");
        let up0 = wren.counter(a, "messages_out", "update");
        go();
        wait_until(format!("ROUTE-REFRESH from {a} answered"), T, || {
            Ok(wren.counter(a, "messages_in", "route_refresh") > rr0
                && wren.counter(a, "messages_out", "update") > up0)
        })
        .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", wren.peer(a), tail(&wren.log())));
        assert!(wren.established(a));
        assert_eq!(wren.counter(a, "messages_out", "notification"), 0);
    }
    assert!(bird.best(net("10.90.1.0/24")).unwrap().is_some());
    assert!(frr.best(net("10.90.1.0/24")).unwrap().is_some());
    drop((bird, frr, wren));
    lab.down().unwrap();
}

/// Wren sends ROUTE-REFRESH itself when a neighbour's import policy changes on reload
/// (SIGHUP): BIRD and FRR, whose routes the old policy rejected, send them again and Wren
/// now accepts them.
#[test]
fn route_refresh_from_wren_on_import_policy_change() {
    let Some(lab) = lab() else { return };
    let conf = |policy: &str| {
        let mut c = wren_config(
            WREN_AS,
            &[],
            &[
                nbr("10.0.0.2", 65002).with(&format!("import_policy = [\"{policy}\"]")),
                nbr("10.0.0.3", 65003).with(&format!("import_policy = [\"{policy}\"]")),
            ],
            &[],
        );
        c.push_str("[[policy]]\nname = \"none\"\ndefault = \"reject\"\n");
        c.push_str("[[policy]]\nname = \"all\"\ndefault = \"accept\"\n");
        c
    };
    let mut wren = Wren::start(&lab, &conf("none"));
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let bird = Bird::start(
        &lab,
        "bird",
        &BgpSpeaker::new(65002, v4("10.0.0.2"))
            .peer(p.clone())
            .originate_prefix(net("10.91.2.0/24")),
    )
    .unwrap();
    let frr = Frr::start(
        &lab,
        "frr",
        &BgpSpeaker::new(65003, v4("10.0.0.3"))
            .peer(p.clone())
            .originate_prefix(net("10.91.3.0/24")),
    )
    .unwrap();
    for a in ["10.0.0.2", "10.0.0.3"] {
        wren.wait_established(a);
        // The routes arrived (counted) but the policy rejected them.
        wait_until(format!("wren received a prefix from {a}"), T, || {
            Ok(wren
                .peer(a)
                .and_then(|p| p.get("prefixes_received")?.as_u64())
                .unwrap_or(0)
                >= 1)
        })
        .unwrap();
    }
    assert!(wren.paths("10.91.2.0/24").is_empty());
    assert!(wren.paths("10.91.3.0/24").is_empty());
    let sent0 = wren.counter("10.0.0.2", "messages_out", "route_refresh")
        + wren.counter("10.0.0.3", "messages_out", "route_refresh");
    wren.reload(&conf("all"));
    wren.wait_path("10.91.2.0/24", "10.0.0.2");
    wren.wait_path("10.91.3.0/24", "10.0.0.3");
    for a in ["10.0.0.2", "10.0.0.3"] {
        assert!(
            wren.counter(a, "messages_out", "route_refresh") >= 1,
            "{:#?}",
            wren.peer(a)
        );
        assert!(wren.established(a));
        assert_eq!(wren.counter(a, "messages_out", "notification"), 0);
    }
    assert_eq!(sent0, 0);
    // FRR counted the ROUTE-REFRESH it received.
    let n = frr.neighbor(ip(WREN4)).unwrap().to_string();
    assert!(n.contains("routeRefresh"), "{n}");
    drop((bird, frr, wren));
    lab.down().unwrap();
}

// ---------------------------------------------------------------------------------------
// Error handling: RFC 7606 and message header errors.

/// ExaBGP sends an UPDATE whose COMMUNITIES attribute has length 3 (not a multiple of 4):
/// RFC 7606 treat-as-withdraw. Wren drops the prefix it had, keeps the session, and still
/// takes the next valid UPDATE.
#[test]
fn rfc7606_malformed_attribute_from_exabgp_is_treat_as_withdraw() {
    let Some(lab) = lab() else { return };
    let wren = Wren::start(
        &lab,
        &wren_config(
            WREN_AS,
            &[],
            &[nbr("10.0.0.5", 65005).with("passive = true")],
            &[],
        ),
    );
    let p = BgpPeer::new("wren", ip(WREN4), WREN_AS);
    let exa = Exabgp::start(
        &lab,
        "exabgp",
        &BgpSpeaker::new(65005, v4("10.0.0.5"))
            .peer(p.clone())
            .originate_prefix(net("10.70.0.0/24")),
    )
    .unwrap();
    wren.wait_established("10.0.0.5");
    wren.wait_path("10.70.0.0/24", "10.0.0.5");
    let updates0 = wren.counter("10.0.0.5", "messages_in", "update");
    exa.command("announce route 10.70.0.0/24 next-hop self attribute [ 0x08 0xc0 0x000001 ]")
        .unwrap();
    wait_until("treat-as-withdraw of 10.70.0.0/24", T, || {
        Ok(wren.counter("10.0.0.5", "messages_in", "update") > updates0
            && wren.paths("10.70.0.0/24").is_empty())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{:#?}\n{:#?}\n{}\nexabgp: {}",
            wren.paths("10.70.0.0/24"),
            wren.peer("10.0.0.5"),
            tail(&wren.log()),
            tail(&exa.processes()[0].log())
        )
    });
    assert!(wren.established("10.0.0.5"), "{:#?}", wren.peer("10.0.0.5"));
    assert_eq!(wren.counter("10.0.0.5", "messages_out", "notification"), 0);
    let log = wren.log();
    assert!(
        log.contains("UPDATE with RFC 7606 errors")
            && log.contains("TreatAsWithdraw")
            && log.contains("type_code: 8"),
        "no treat-as-withdraw of COMMUNITIES in wren's log:\n{}",
        tail(&log)
    );
    // The session keeps working.
    exa.command("announce route 10.70.1.0/24 next-hop self")
        .unwrap();
    wren.wait_path("10.70.1.0/24", "10.0.0.5");
    assert!(exa.peer_established(&p).unwrap());
    assert_eq!(wren.counter("10.0.0.5", "messages_out", "notification"), 0);
    drop((exa, wren));
    lab.down().unwrap();
}

/// A raw client opens a session and then sends a broken message header; Wren answers with
/// the RFC 4271 6.1 NOTIFICATION: bad marker -> 1/1, length 18 -> 1/2 with the length,
/// KEEPALIVE of length 20 -> 1/2, type 9 -> 1/3 with the type.
#[test]
fn malformed_header_gets_the_right_notification() {
    let Some(lab) = lab() else { return };
    let cases = [
        ("10.0.0.21", "bad-marker", 1u64, 1u64, ""),
        ("10.0.0.22", "short-length", 1, 2, "0012"),
        ("10.0.0.23", "long-keepalive", 1, 2, "0014"),
        ("10.0.0.24", "bad-type", 1, 3, "09"),
    ];
    let nbrs: Vec<Nbr> = cases
        .iter()
        .map(|(a, ..)| nbr(a, 65005).with("passive = true"))
        .collect();
    let wren = Wren::start(&lab, &wren_config(WREN_AS, &[], &nbrs, &[]));
    let dir = lab.work_dir("exabgp", "raw").unwrap();
    let script = dir.join("bgp_raw.py");
    std::fs::write(&script, include_str!("interop_daemons/bgp_raw.py")).unwrap();
    for (a, case, code, subcode, data) in cases {
        lab.exec(
            "exabgp",
            &["ip", "addr", "add", &format!("{a}/24"), "dev", "eth1"],
        )
        .unwrap();
        let out = lab
            .exec_text(
                "exabgp",
                &[
                    "python3",
                    &script.display().to_string(),
                    a,
                    WREN4,
                    "65005",
                    case,
                ],
            )
            .unwrap();
        let v: Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{case}: {e}: {out}\n{}", tail(&wren.log())));
        assert_eq!(v["established"], Value::Bool(true), "{case}: {v}");
        assert_eq!(
            v["code"].as_u64(),
            Some(code),
            "{case}: {v}\n{}",
            tail(&wren.log())
        );
        assert_eq!(v["subcode"].as_u64(), Some(subcode), "{case}: {v}");
        if !data.is_empty() {
            assert_eq!(v["data"].as_str(), Some(data), "{case}: {v}");
        }
        // Wren's status names what it sent.
        wait_until(format!("{case}: last_error in wren's status"), T, || {
            Ok(wren
                .peer(a)
                .and_then(|p| p.get("last_error")?.get("sent")?.get("subcode")?.as_u64())
                == Some(subcode))
        })
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.peer(a)));
    }
    drop(wren);
    lab.down().unwrap();
}
