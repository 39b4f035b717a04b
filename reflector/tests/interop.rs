//! `wren-reflector` with real BGP daemons in network namespaces (root only; skipped
//! otherwise): Wren as route reflector for BIRD, FRR (TCP MD5), GoBGP and ExaBGP clients,
//! a BIRD with the wrong MD5 password that never gets a session; Wren as client of a BIRD
//! route reflector with graceful restart (BIRD keeps Wren's routes while Wren restarts)
//! and route refresh.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use wren_bgp::speaker::SpeakerStatus;
use wren_testbed::daemons::bird::Bird;
use wren_testbed::daemons::exabgp::Exabgp;
use wren_testbed::daemons::frr::Frr;
use wren_testbed::daemons::gobgp::Gobgp;
use wren_testbed::daemons::{BgpDaemon, BgpPeer, BgpSpeaker};
use wren_testbed::{skip_reason, wait_until, Lab, Process, Topology};

const BIN: &str = env!("CARGO_BIN_EXE_wren-reflector");
const ASN: u32 = 65000;
const T: Duration = Duration::from_secs(60);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
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
    ] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is not installed (apt-get install bird2 frr gobgpd exabgp)"
            ));
        }
    }
    None
}

/// A LAN with one node per (name, address).
fn topology(name: &str, nodes: &[(&str, &str)]) -> Topology {
    let nodes: Vec<(&str, Vec<&str>)> = nodes.iter().map(|(n, a)| (*n, vec![*a])).collect();
    topology_multi(name, &nodes)
}

/// A LAN; each node gets its addresses (IPv6 ones without duplicate address detection).
fn topology_multi(name: &str, nodes: &[(&str, Vec<&str>)]) -> Topology {
    let mut t = format!("name: {name}\ntopology:\n  nodes:\n    lan:\n      kind: bridge\n");
    for (n, addrs) in nodes {
        t.push_str(&format!("    {n}:\n      kind: linux\n      exec:\n"));
        for a in addrs {
            if a.contains(':') {
                t.push_str(&format!("        - ip addr add {a}/64 dev eth1 nodad\n"));
            } else {
                t.push_str(&format!("        - ip addr add {a}/24 dev eth1\n"));
            }
        }
    }
    t.push_str("  links:\n");
    for (n, _) in nodes {
        t.push_str(&format!(
            "    - endpoints: [\"{n}:eth1\", \"lan:{}-{n}\"]\n",
            &name[..3]
        ));
    }
    Topology::parse(&t, name, Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct Wren {
    process: Process,
    status: PathBuf,
    config: PathBuf,
}

fn start_wren(lab: &Lab, node: &str, config: &str, extra: &[&str]) -> Wren {
    let dir = lab.work_dir(node, "wren").unwrap();
    let cfg = dir.join("wren.toml");
    std::fs::write(&cfg, config).unwrap();
    let status = dir.join("status.json");
    let _ = std::fs::remove_file(&status);
    let mut argv: Vec<String> = vec![
        BIN.to_owned(),
        "--config".to_owned(),
        cfg.display().to_string(),
        "--status-file".to_owned(),
        status.display().to_string(),
        "--status-interval-ms".to_owned(),
        "100".to_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    let env = vec![("RUST_LOG".to_owned(), "info".to_owned())];
    let process = lab.spawn(node, "wren", &argv, &env).unwrap();
    Wren {
        process,
        status,
        config: cfg,
    }
}

impl Wren {
    fn status(&self) -> Option<SpeakerStatus> {
        serde_json::from_str(&std::fs::read_to_string(&self.status).ok()?).ok()
    }

    fn peer_state(&self, addr: &str) -> Option<String> {
        self.status()?
            .peers
            .iter()
            .find(|p| p.address == addr)
            .map(|p| p.state.clone())
    }

    fn established(&self, addr: &str) -> bool {
        self.peer_state(addr).as_deref() == Some("Established")
    }

    fn has_route(&self, prefix: &str, next_hop: &str) -> bool {
        self.status().is_some_and(|s| {
            s.routes
                .iter()
                .any(|r| r.prefix == prefix && r.best && r.next_hop.as_deref() == Some(next_hop))
        })
    }
}

#[test]
fn wren_reflects_for_bird_frr_gobgp_exabgp_with_md5() {
    if let Some(r) = skip_reason().or_else(missing_tools) {
        eprintln!("skipping: {r}");
        return;
    }
    let topo = topology(
        "wrenrr",
        &[
            ("rr", "10.0.0.1"),
            ("cbird", "10.0.0.2"),
            ("cfrr", "10.0.0.3"),
            ("cgobgp", "10.0.0.4"),
            ("cexabgp", "10.0.0.5"),
            ("cbad", "10.0.0.6"),
        ],
    );
    let lab = Lab::up(&topo).unwrap();
    let wren = start_wren(
        &lab,
        "rr",
        r#"
asn = 65000
router_id = "10.0.0.1"
route_reflector = true
listen_addresses = ["10.0.0.1"]
connect_retry_secs = 1
[[neighbor]]
address = "10.0.0.2"
remote_asn = 65000
route_reflector_client = true
[[neighbor]]
address = "10.0.0.3"
remote_asn = 65000
route_reflector_client = true
password = "wren-md5"
[[neighbor]]
address = "10.0.0.4"
remote_asn = 65000
route_reflector_client = true
[[neighbor]]
address = "10.0.0.5"
remote_asn = 65000
route_reflector_client = true
passive = true
[[neighbor]]
address = "10.0.0.6"
remote_asn = 65000
route_reflector_client = true
password = "the-right-one"
[[originate]]
prefix = "10.10.1.0/24"
communities = ["65000:1"]
"#,
        &[],
    );
    let rr_addr = ip("10.0.0.1");
    let client = |addr: &str, prefix: &str, pw: Option<&str>| {
        let mut p = BgpPeer::new("rr", rr_addr, ASN);
        if let Some(pw) = pw {
            p = p.password(pw);
        }
        BgpSpeaker::new(ASN, ip(addr))
            .peer(p)
            .originate(prefix.parse().unwrap())
    };
    let cbird = Bird::start(&lab, "cbird", &client("10.0.0.2", "10.10.2.0/24", None)).unwrap();
    let cfrr = Frr::start(
        &lab,
        "cfrr",
        &client("10.0.0.3", "10.10.3.0/24", Some("wren-md5")),
    )
    .unwrap();
    let cgobgp = Gobgp::start(&lab, "cgobgp", &client("10.0.0.4", "10.10.4.0/24", None)).unwrap();
    let cexabgp =
        Exabgp::start(&lab, "cexabgp", &client("10.0.0.5", "10.10.5.0/24", None)).unwrap();
    let cbad = Bird::start(
        &lab,
        "cbad",
        &client("10.0.0.6", "10.10.6.0/24", Some("the-wrong-one")),
    )
    .unwrap();

    for a in ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"] {
        wait_until(format!("wren ~ {a} Established"), T, || {
            Ok(wren.established(a))
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nstatus: {:#?}\nlog: {}",
                wren.status(),
                wren.process.log()
            )
        });
    }
    let rr_peer = BgpPeer::new("rr", rr_addr, ASN);
    let daemons: [(&str, &dyn BgpDaemon); 4] = [
        ("cbird", &cbird),
        ("cfrr", &cfrr),
        ("cgobgp", &cgobgp),
        ("cexabgp", &cexabgp),
    ];
    for (node, d) in daemons {
        wait_until(format!("{node} ~ wren Established"), T, || {
            d.peer_established(&rr_peer)
        })
        .unwrap();
    }
    let expected: Vec<(IpNet, IpAddr, &str)> = vec![
        (net("10.10.1.0/24"), IpAddr::V4(rr_addr), "cwren"),
        (net("10.10.2.0/24"), "10.0.0.2".parse().unwrap(), "cbird"),
        (net("10.10.3.0/24"), "10.0.0.3".parse().unwrap(), "cfrr"),
        (net("10.10.4.0/24"), "10.0.0.4".parse().unwrap(), "cgobgp"),
        (net("10.10.5.0/24"), "10.0.0.5".parse().unwrap(), "cexabgp"),
    ];
    for (node, d) in daemons {
        for (p, nh, origin) in &expected {
            if *origin == node {
                continue;
            }
            wait_until(format!("{node}: {p} via {nh}"), T, || d.has_route(*p, *nh))
                .unwrap_or_else(|e| panic!("{e}\nRIB: {:#?}\nwren: {:#?}", d.rib(), wren.status()));
        }
    }
    // Reflected routes carry ORIGINATOR_ID and CLUSTER_LIST (BIRD shows them).
    let detail = cbird
        .birdc(&["show", "route", "10.10.3.0/24", "all"])
        .unwrap();
    assert!(detail.contains("BGP.originator_id: 10.0.0.3"), "{detail}");
    assert!(detail.contains("BGP.cluster_list: 10.0.0.1"), "{detail}");
    let detail = cbird
        .birdc(&["show", "route", "10.10.1.0/24", "all"])
        .unwrap();
    assert!(
        detail.contains("(65000,1)"),
        "community of Wren's route: {detail}"
    );

    // The wrong MD5 password never gets a session (the SYNs are dropped).
    std::thread::sleep(Duration::from_secs(5));
    assert!(!wren.established("10.0.0.6"), "{:#?}", wren.status());
    let bad_peer = BgpPeer::new("rr", rr_addr, ASN);
    assert!(!cbad.peer_established(&bad_peer).unwrap());

    // Status: FRR's session negotiated 4-octet AS and route refresh; counters move.
    let st = wren.status().unwrap();
    let frr = st.peers.iter().find(|p| p.address == "10.0.0.3").unwrap();
    let neg = frr.negotiated.as_ref().unwrap();
    assert!(neg.four_octet_as && neg.route_refresh, "{neg:?}");
    assert!(
        frr.prefixes_accepted >= 1 && frr.prefixes_advertised >= 4,
        "{frr:?}"
    );
    assert!(
        !wren.process.log().contains("wren-md5"),
        "no password in the log"
    );

    // A withdrawal propagates through Wren.
    cgobgp.del_prefix(net("10.10.4.0/24")).unwrap();
    for (node, d) in daemons {
        if node == "cgobgp" {
            continue;
        }
        wait_until(format!("{node}: 10.10.4.0/24 withdrawn"), T, || {
            d.lacks_route(net("10.10.4.0/24"))
        })
        .unwrap();
    }
    drop(wren);
    lab.down().unwrap();
}

#[test]
fn wren_as_client_of_bird_rr_with_graceful_restart_and_route_refresh() {
    if let Some(r) = skip_reason().or_else(missing_tools) {
        eprintln!("skipping: {r}");
        return;
    }
    let topo = topology(
        "wrengr",
        &[
            ("rr", "10.0.0.1"),
            ("cwren", "10.0.0.2"),
            ("cfrr", "10.0.0.3"),
        ],
    );
    let lab = Lab::up(&topo).unwrap();
    let mut rr_cfg = BgpSpeaker::new(ASN, ip("10.0.0.1"))
        .peer(BgpPeer::new("wren", ip("10.0.0.2"), ASN).rr_client())
        .peer(BgpPeer::new("frr", ip("10.0.0.3"), ASN).rr_client());
    rr_cfg.graceful_restart = true;
    let rr = Bird::start(&lab, "rr", &rr_cfg).unwrap();
    let frr = Frr::start(
        &lab,
        "cfrr",
        &BgpSpeaker::new(ASN, ip("10.0.0.3"))
            .peer(BgpPeer::new("rr", ip("10.0.0.1"), ASN))
            .originate("10.20.3.0/24".parse().unwrap()),
    )
    .unwrap();
    let config = r#"
asn = 65000
router_id = "10.0.0.2"
listen_addresses = ["10.0.0.2"]
connect_retry_secs = 1
[graceful_restart]
restart_time_secs = 120
deferral_secs = 30
[[neighbor]]
address = "10.0.0.1"
remote_asn = 65000
[[originate]]
prefix = "10.20.2.0/24"
large_communities = ["65000:1:2"]
"#;
    let mut wren = start_wren(&lab, "cwren", config, &[]);
    let wren_peer = BgpPeer::new("wren", ip("10.0.0.2"), ASN);
    wait_until("bird ~ wren Established", T, || {
        rr.peer_established(&wren_peer)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", wren.process.log()));
    let wren_route = net("10.20.2.0/24");
    let wren_nh: IpAddr = "10.0.0.2".parse().unwrap();
    wait_until("frr: Wren's route reflected by BIRD", T, || {
        frr.has_route(wren_route, wren_nh)
    })
    .unwrap();
    wait_until("wren: FRR's route reflected by BIRD", T, || {
        Ok(wren.has_route("10.20.3.0/24", "10.0.0.3"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.status()));
    let st = wren.status().unwrap();
    let r = st
        .routes
        .iter()
        .find(|r| r.prefix == "10.20.3.0/24")
        .unwrap();
    assert_eq!(r.attributes.originator_id.as_deref(), Some("10.0.0.3"));
    assert_eq!(r.attributes.cluster_list, vec!["10.0.0.1".to_owned()]);
    let detail = rr.birdc(&["show", "route", "10.20.2.0/24", "all"]).unwrap();
    assert!(
        detail.contains("(65000, 1, 2)"),
        "large community: {detail}"
    );
    assert!(
        st.peers[0].negotiated.as_ref().unwrap().graceful_restart,
        "{:?}",
        st.peers[0]
    );

    // Route refresh: BIRD asks Wren to re-send (birdc reload in).
    rr.birdc(&["reload", "in", "peer_wren"]).unwrap();
    wait_until("wren answered a ROUTE-REFRESH", T, || {
        Ok(wren
            .status()
            .is_some_and(|s| s.peers[0].messages_in.route_refresh >= 1))
    })
    .unwrap();

    // Wren dies (no NOTIFICATION): BIRD keeps its routes as stale for the restart time.
    wren.process
        .signal(nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let _ = wren.process.stop(Duration::from_secs(5));
    wait_until("bird sees wren down", T, || {
        rr.peer_established(&wren_peer).map(|e| !e)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        frr.has_route(wren_route, wren_nh).unwrap(),
        "FRR still has Wren's route while Wren restarts: {:#?}",
        frr.rib()
    );
    // Wren comes back as a restarting speaker.
    let config_path = wren.config.clone();
    drop(wren);
    let text = std::fs::read_to_string(&config_path).unwrap();
    let wren = start_wren(&lab, "cwren", &text, &["--graceful-restart"]);
    wait_until("bird ~ wren Established again", T, || {
        rr.peer_established(&wren_peer)
    })
    .unwrap();
    wait_until(
        "wren selection deferral done and FRR's route back",
        T,
        || Ok(wren.has_route("10.20.3.0/24", "10.0.0.3")),
    )
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.status()));
    assert!(frr.has_route(wren_route, wren_nh).unwrap());
    drop(wren);
    lab.down().unwrap();
}

const BIRD_EBGP: &str = r#"
log stderr all;
router id 10.0.0.2;
protocol device { }
protocol static s4 {
  ipv4 { import filter { bgp_community.add((65002,1)); bgp_large_community.add((4200000002,1,2)); bgp_med = 9; accept; }; };
  route 10.30.2.0/24 blackhole;
}
protocol static s6 {
  ipv6 { import filter { bgp_community.add((65002,6)); accept; }; };
  route fd00:30:2::/48 blackhole;
}
protocol bgp peer_wren4 {
  local 10.0.0.2 as 4200000002;
  neighbor 10.0.0.1 as 4200000001;
  connect delay time 1; connect retry time 1; error wait time 1,5;
  ipv4 { import all; export all; };
}
protocol bgp peer_wren6 {
  local fd00::2 as 4200000002;
  neighbor fd00::1 as 4200000001;
  connect delay time 1; connect retry time 1; error wait time 1,5;
  ipv6 { import all; export all; };
}
"#;

const EXABGP_CONF: &str = r#"
neighbor 10.0.0.1 {
    router-id 10.0.0.5;
    local-address 10.0.0.5;
    local-as 65005;
    peer-as 4200000001;
    family { ipv4 unicast; }
    static {
        route 10.30.5.0/24 next-hop 10.0.0.5 attribute [ 0x63 0xc0 0x010203 ];
        route 10.30.6.0/24 next-hop 10.0.0.5 attribute [ 0x04 0x80 0x0001 ];
    }
}
"#;

/// eBGP with 4-octet AS numbers over IPv4 and IPv6 sessions with BIRD, attributes intact
/// both ways (communities, large communities, MED towards BIRD; BIRD does not send the MED
/// its static routes carry to an eBGP peer); an unknown transitive attribute from ExaBGP passes through with the Partial
/// bit; a malformed MED from ExaBGP is treated as withdraw and the session stays up.
#[test]
fn wren_ebgp_four_octet_ipv4_ipv6_attributes_with_bird_and_exabgp() {
    if let Some(r) = skip_reason().or_else(missing_tools) {
        eprintln!("skipping: {r}");
        return;
    }
    let topo = topology_multi(
        "wrenas",
        &[
            ("wren", vec!["10.0.0.1", "fd00::1"]),
            ("bird", vec!["10.0.0.2", "fd00::2"]),
            ("exa", vec!["10.0.0.5"]),
        ],
    );
    let lab = Lab::up(&topo).unwrap();
    let wren = start_wren(
        &lab,
        "wren",
        r#"
asn = 4200000001
router_id = "10.0.0.1"
listen_addresses = ["10.0.0.1", "fd00::1"]
connect_retry_secs = 1
[[neighbor]]
address = "10.0.0.2"
remote_asn = 4200000002
families = ["ipv4-unicast"]
[[neighbor]]
address = "fd00::2"
remote_asn = 4200000002
families = ["ipv6-unicast"]
[[neighbor]]
address = "10.0.0.5"
remote_asn = 65005
passive = true
[[originate]]
prefix = "10.30.1.0/24"
communities = ["65001:1"]
large_communities = ["4200000001:1:1"]
med = 7
[[originate]]
prefix = "fd00:30:1::/48"
communities = ["65001:2"]
"#,
        &[],
    );
    let bird = Bird::start_with_config(&lab, "bird", BIRD_EBGP).unwrap();
    let exa = Exabgp::start_with_config(&lab, "exa", EXABGP_CONF).unwrap();
    for a in ["10.0.0.2", "fd00::2", "10.0.0.5"] {
        wait_until(format!("wren ~ {a} Established"), T, || {
            Ok(wren.established(a))
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nstatus: {:#?}\nlog: {}\nexabgp: {}",
                wren.status(),
                wren.process.log(),
                exa.processes()[0].log()
            )
        });
    }
    // BIRD's routes at Wren, with their attributes.
    wait_until("wren: BIRD's IPv4 and IPv6 routes", T, || {
        Ok(wren.has_route("10.30.2.0/24", "10.0.0.2")
            && wren.has_route("fd00:30:2::/48", "fd00::2"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.status()));
    let st = wren.status().unwrap();
    let r = st
        .routes
        .iter()
        .find(|r| r.prefix == "10.30.2.0/24")
        .unwrap();
    assert_eq!(r.attributes.as_path.as_deref(), Some("4200000002"));
    assert_eq!(r.attributes.communities, vec!["65002:1".to_owned()]);
    assert_eq!(
        r.attributes.large_communities,
        vec!["4200000002:1:2".to_owned()]
    );
    let r = st
        .routes
        .iter()
        .find(|r| r.prefix == "fd00:30:2::/48")
        .unwrap();
    assert_eq!(r.attributes.communities, vec!["65002:6".to_owned()]);
    for p in &st.peers {
        if p.address != "10.0.0.5" {
            assert!(p.negotiated.as_ref().unwrap().four_octet_as, "{p:?}");
        }
    }
    // Wren's routes at BIRD, with their attributes.
    wait_until("bird: Wren's IPv4 and IPv6 routes", T, || {
        let v4 = bird.birdc(&["show", "route", "10.30.1.0/24", "all"])?;
        let v6 = bird.birdc(&["show", "route", "fd00:30:1::/48", "all"])?;
        Ok(v4.contains("BGP.as_path: 4200000001") && v6.contains("BGP.as_path: 4200000001"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", bird.birdc(&["show", "route", "all"]).unwrap()));
    let v4 = bird
        .birdc(&["show", "route", "10.30.1.0/24", "all"])
        .unwrap();
    assert!(v4.contains("(65001,1)"), "{v4}");
    assert!(v4.contains("(4200000001, 1, 1)"), "{v4}");
    assert!(v4.contains("via 10.0.0.1"), "{v4}");
    assert!(v4.contains("BGP.med: 7"), "{v4}");
    let v6 = bird
        .birdc(&["show", "route", "fd00:30:1::/48", "all"])
        .unwrap();
    assert!(v6.contains("(65001,2)"), "{v6}");
    assert!(v6.contains("via fd00::1"), "{v6}");
    // ExaBGP's unknown optional transitive attribute: kept, Partial bit set, passed to BIRD.
    wait_until("wren: ExaBGP's route", T, || {
        Ok(wren.has_route("10.30.5.0/24", "10.0.0.5"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.status()));
    let st = wren.status().unwrap();
    let r = st
        .routes
        .iter()
        .find(|r| r.prefix == "10.30.5.0/24")
        .unwrap();
    assert_eq!(
        r.attributes.unknown,
        vec!["type=99 flags=0xe0 value=010203".to_owned()]
    );
    wait_until("bird: ExaBGP's route through Wren", T, || {
        Ok(bird
            .birdc(&["show", "route", "10.30.5.0/24", "all"])?
            .contains("BGP.as_path: 4200000001 65005"))
    })
    .unwrap();
    let b5 = bird
        .birdc(&["show", "route", "10.30.5.0/24", "all"])
        .unwrap();
    assert!(b5.contains("BGP.63") && b5.contains("01 02 03"), "{b5}");
    // The malformed MED: treat-as-withdraw, session up, no NOTIFICATION.
    wait_until("wren: both ExaBGP NLRI received", T, || {
        Ok(wren.status().is_some_and(|s| {
            s.peers
                .iter()
                .any(|p| p.address == "10.0.0.5" && p.prefixes_received >= 2)
        }))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", wren.status(), exa.processes()[0].log()));
    let st = wren.status().unwrap();
    let exa_peer = st.peers.iter().find(|p| p.address == "10.0.0.5").unwrap();
    assert!(
        !st.routes.iter().any(|r| r.prefix == "10.30.6.0/24"),
        "{st:#?}"
    );
    assert_eq!(exa_peer.state, "Established");
    assert_eq!(exa_peer.messages_out.notification, 0);
    assert!(exa_peer.prefixes_received >= 2, "{exa_peer:?}");
    drop(wren);
    lab.down().unwrap();
}

/// Graceful restart with FRR in both roles: FRR keeps Wren's route while Wren restarts
/// (Wren comes back with the R bit and defers selection until FRR's End-of-RIB), and Wren
/// keeps FRR's route as stale while FRR is down.
#[test]
fn graceful_restart_with_frr_both_roles() {
    if let Some(r) = skip_reason().or_else(missing_tools) {
        eprintln!("skipping: {r}");
        return;
    }
    let topo = topology("wrenfgr", &[("wren", "10.0.0.1"), ("frr", "10.0.0.2")]);
    let lab = Lab::up(&topo).unwrap();
    let mut frr_cfg = BgpSpeaker::new(ASN, ip("10.0.0.2"))
        .peer(BgpPeer::new("wren", ip("10.0.0.1"), ASN))
        .originate("10.50.2.0/24".parse().unwrap());
    frr_cfg.graceful_restart = true;
    let frr = Frr::start(&lab, "frr", &frr_cfg).unwrap();
    let config = r#"
asn = 65000
router_id = "10.0.0.1"
listen_addresses = ["10.0.0.1"]
connect_retry_secs = 1
[graceful_restart]
restart_time_secs = 120
deferral_secs = 30
[[neighbor]]
address = "10.0.0.2"
remote_asn = 65000
[[originate]]
prefix = "10.50.1.0/24"
"#;
    let mut wren = start_wren(&lab, "wren", config, &[]);
    let wren_route = net("10.50.1.0/24");
    let wren_nh: IpAddr = "10.0.0.1".parse().unwrap();
    let wren_peer = BgpPeer::new("wren", ip("10.0.0.1"), ASN);
    wait_until("frr has Wren's route", T, || {
        frr.has_route(wren_route, wren_nh)
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", wren.status(), wren.process.log()));
    wait_until("wren has FRR's route", T, || {
        Ok(wren.has_route("10.50.2.0/24", "10.0.0.2"))
    })
    .unwrap();
    let st = wren.status().unwrap();
    assert!(st.peers[0].negotiated.as_ref().unwrap().graceful_restart);

    // Wren dies: FRR (helper) keeps its route.
    wren.process
        .signal(nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let _ = wren.process.stop(Duration::from_secs(5));
    wait_until("frr sees wren down", T, || {
        frr.peer_established(&wren_peer).map(|e| !e)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        frr.rib().unwrap().iter().any(|r| r.prefix == wren_route),
        "FRR keeps Wren's route during the restart: {:#?}",
        frr.rib()
    );
    let text = std::fs::read_to_string(&wren.config).unwrap();
    drop(wren);
    let wren = start_wren(&lab, "wren", &text, &["--graceful-restart"]);
    wait_until("frr ~ wren Established again", T, || {
        frr.peer_established(&wren_peer)
    })
    .unwrap();
    wait_until("wren: deferral done, FRR's route selected", T, || {
        Ok(wren.has_route("10.50.2.0/24", "10.0.0.2")
            && wren.status().is_some_and(|s| !s.selection_deferred))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.status()));
    wait_until("frr: Wren's route after the restart", T, || {
        frr.has_route(wren_route, wren_nh)
    })
    .unwrap();

    // FRR dies: Wren (helper) keeps its route as stale.
    for mut p in frr.into_processes() {
        let _ = p.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = p.stop(Duration::from_secs(5));
    }
    wait_until("wren sees frr down", T, || {
        Ok(wren
            .peer_state("10.0.0.2")
            .is_some_and(|s| s != "Established"))
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let st = wren.status().unwrap();
    let r = st
        .routes
        .iter()
        .find(|r| r.prefix == "10.50.2.0/24")
        .unwrap_or_else(|| panic!("Wren keeps FRR's route: {st:#?}"));
    assert!(r.stale, "{r:?}");
    // FRR comes back: the route is refreshed (not stale any more).
    let frr = Frr::start(&lab, "frr", &frr_cfg).unwrap();
    wait_until("wren: FRR's route fresh again", T, || {
        Ok(wren.status().is_some_and(|s| {
            s.routes
                .iter()
                .any(|r| r.prefix == "10.50.2.0/24" && !r.stale)
        }))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", wren.status()));
    drop(frr);
    drop(wren);
    lab.down().unwrap();
}
