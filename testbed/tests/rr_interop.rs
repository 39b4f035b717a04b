//! BIRD as an iBGP route reflector for BIRD, FRR (with zebra), GoBGP and ExaBGP clients, all in
//! AS 65000 on one LAN (topologies/rr-interop.clab.yml). Asserts every client's RIB through
//! the query helpers and the kernel routes BIRD (kernel protocol) and FRR (zebra) install;
//! GoBGP and ExaBGP install no kernel routes, so only their RIBs are asserted. Then tears
//! down and checks that no namespace, link or process of the run is left.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use wren_testbed::daemons::bird::{self, Bird};
use wren_testbed::daemons::exabgp::Exabgp;
use wren_testbed::daemons::frr::Frr;
use wren_testbed::daemons::gobgp::Gobgp;
use wren_testbed::daemons::{BgpDaemon, BgpPeer, BgpSpeaker};
use wren_testbed::{skip_reason, state, wait_until, Lab, Topology};

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
        "/usr/lib/frr/zebra",
        "/usr/bin/vtysh",
        "/usr/bin/gobgpd",
        "/usr/bin/gobgp",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is not installed (apt-get install bird2 frr gobgpd)"
            ));
        }
    }
    None
}

#[test]
fn bird_rr_reflects_between_bird_frr_gobgp_exabgp() {
    if let Some(r) = skip_reason().or_else(missing_tools) {
        eprintln!("skipping: {r}");
        return;
    }
    let topo = Topology::from_file(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/rr-interop.clab.yml"),
    )
    .unwrap();
    let lab = Lab::up(&topo).unwrap();

    // (node, address, prefix it originates, BIRD protocol name on the RR)
    let rr_addr = ip("10.0.0.1");
    let rr_prefix = net("10.10.1.0/24");
    let clients = [
        ("cbird", ip("10.0.0.2"), net("10.10.2.0/24")),
        ("cfrr", ip("10.0.0.3"), net("10.10.3.0/24")),
        ("cgobgp", ip("10.0.0.4"), net("10.10.4.0/24")),
        ("cexabgp", ip("10.0.0.5"), net("10.10.5.0/24")),
    ];
    let mut rr_cfg = BgpSpeaker::new(ASN, rr_addr).kernel_export();
    rr_cfg = rr_cfg.originate("10.10.1.0/24".parse().unwrap());
    for (node, addr, _) in &clients {
        let mut p = BgpPeer::new(node, *addr, ASN).rr_client();
        if *node == "cfrr" {
            p = p.password("wren-md5"); // TCP MD5 on the BIRD <-> FRR pair
        }
        if *node == "cexabgp" {
            p = p.passive(); // ExaBGP never listens; it always connects
        }
        rr_cfg = rr_cfg.peer(p);
    }
    let rr = Bird::start(&lab, "rr", &rr_cfg).unwrap();

    let up = |addr: Ipv4Addr, prefix: IpNet, pw: Option<&str>| {
        let mut p = BgpPeer::new("rr", rr_addr, ASN);
        if let Some(pw) = pw {
            p = p.password(pw);
        }
        let IpNet::V4(v4) = prefix else {
            unreachable!()
        };
        BgpSpeaker::new(ASN, addr).peer(p).originate(v4)
    };
    let cbird = Bird::start(
        &lab,
        "cbird",
        &up(clients[0].1, clients[0].2, None).kernel_export(),
    )
    .unwrap();
    let cfrr = Frr::start(
        &lab,
        "cfrr",
        &up(clients[1].1, clients[1].2, Some("wren-md5"))
            .kernel_export()
            .graceful_restart(),
    )
    .unwrap();
    let cgobgp = Gobgp::start(&lab, "cgobgp", &up(clients[2].1, clients[2].2, None)).unwrap();
    let cexabgp = Exabgp::start(&lab, "cexabgp", &up(clients[3].1, clients[3].2, None)).unwrap();

    // Sessions: the RR sees all three clients, each client sees the RR.
    for (node, addr, _) in &clients {
        let p = BgpPeer::new(node, *addr, ASN);
        wait_until(format!("rr ~ {node} Established"), T, || {
            rr.peer_established(&p)
        })
        .unwrap();
    }
    let rr_peer = BgpPeer::new("rr", rr_addr, ASN);
    let daemons: [(&str, &dyn BgpDaemon); 4] = [
        ("cbird", &cbird),
        ("cfrr", &cfrr),
        ("cgobgp", &cgobgp),
        ("cexabgp", &cexabgp),
    ];
    for (node, d) in daemons {
        wait_until(format!("{node} ~ rr Established"), T, || {
            d.peer_established(&rr_peer)
        })
        .unwrap();
    }

    // The generators' MD5 and graceful-restart options took effect on the RR <-> FRR session:
    // the socket carries an MD5 key, and FRR, configured as a restarting speaker, advertises
    // a restart time (in helper-only mode, FRR's default, the capability has none; the
    // GoBGP session, without GR, is the control).
    let ss = lab
        .exec_text("cfrr", &["ss", "-tni", "sport = :179 or dport = :179"])
        .unwrap();
    assert!(ss.contains("md5keys"), "no TCP MD5 on FRR's session: {ss}");
    let neighbor_caps = |proto: &str| {
        let t = rr.birdc(&["show", "protocols", "all", proto]).unwrap();
        let i = t.find("Neighbor capabilities").unwrap_or(t.len());
        let j = t[i..].find("Session:").map_or(t.len(), |j| i + j);
        t[i..j].to_string()
    };
    let frr_caps = neighbor_caps(&bird::protocol_name("cfrr"));
    assert!(frr_caps.contains("Restart time"), "{frr_caps}");
    let gobgp_caps = neighbor_caps(&bird::protocol_name("cgobgp"));
    assert!(!gobgp_caps.contains("Restart time"), "{gobgp_caps}");

    // RIBs: every client has every other client's prefix with the originator as next hop
    // (a reflector does not change the next hop) and the RR's prefix via the RR.
    let mut expected: Vec<(IpNet, IpAddr)> = clients
        .iter()
        .map(|(_, a, p)| (*p, IpAddr::V4(*a)))
        .collect();
    expected.push((rr_prefix, IpAddr::V4(rr_addr)));
    for (node, d) in daemons {
        let own = clients.iter().find(|c| c.0 == node).unwrap();
        for (p, nh) in &expected {
            if *p == own.2 {
                continue;
            }
            wait_until(
                format!("{node}: {p} via {nh} in the {} RIB", d.kind()),
                T,
                || d.has_route(*p, *nh),
            )
            .unwrap_or_else(|e| panic!("{e}\nRIB: {:#?}", d.rib()));
        }
    }
    // The RR's own RIB holds all client prefixes.
    for (_, a, p) in &clients {
        wait_until(format!("rr: {p} via {a}"), T, || {
            rr.has_route(*p, IpAddr::V4(*a))
        })
        .unwrap();
    }

    // Kernel routes: BIRD's kernel protocol (proto bird) and FRR's zebra (proto bgp).
    for (node, proto) in [("cbird", "bird"), ("cfrr", "bgp")] {
        let own = clients.iter().find(|c| c.0 == node).unwrap();
        for (p, nh) in &expected {
            if *p == own.2 {
                continue;
            }
            wait_until(
                format!("{node}: kernel route {p} via {nh} proto {proto}"),
                T,
                || lab.has_kernel_route(node, *p, *nh, Some(proto)),
            )
            .unwrap_or_else(|e| panic!("{e}\nroutes: {:#?}", lab.kernel_routes(node)));
        }
    }
    // GoBGP and ExaBGP install nothing in the kernel: only connected routes are there.
    for node in ["cgobgp", "cexabgp"] {
        let g = lab.kernel_routes(node).unwrap();
        assert!(
            g.iter().all(|r| r.protocol.as_deref() == Some("kernel")),
            "{node}: no BGP kernel routes expected: {g:#?}"
        );
    }
    // A withdrawal propagates: GoBGP withdraws its prefix, every other client loses it.
    cgobgp.del_prefix(clients[2].2).unwrap();
    for (node, d) in daemons {
        if node == "cgobgp" {
            continue;
        }
        wait_until(format!("{node}: {} withdrawn", clients[2].2), T, || {
            d.lacks_route(clients[2].2)
        })
        .unwrap();
    }

    // ExaBGP injects a route at run time through its API; the RR reflects it to BIRD.
    let injected = net("10.10.55.0/24");
    cexabgp
        .command("announce route 10.10.55.0/24 next-hop self")
        .unwrap();
    let exa = IpAddr::V4(clients[3].1);
    wait_until("rr: injected route", T, || rr.has_route(injected, exa)).unwrap();
    wait_until("cbird: injected route", T, || {
        cbird.has_route(injected, exa)
    })
    .unwrap();

    // Teardown: stop daemons, remove the lab, check nothing of this run is left.
    let st = lab.state();
    // BIRD (rr), BIRD (cbird), zebra + bgpd (cfrr), gobgpd (cgobgp), exabgp (cexabgp).
    assert_eq!(st.processes.len(), 6, "{:?}", st.processes);
    drop((rr, cbird, cfrr, cgobgp, cexabgp));
    lab.down().unwrap();
    let left = state::leftovers(&st);
    assert!(left.is_empty(), "left behind: {left:#?}");
}
