//! The demo lab, testbed/topologies/three-node.clab.yml, as shipped: `Lab::up_with` (roles
//! on, as `wren-testbed up`) starts the ToR's BIRD and `wren-reflector` on rr1 and rr2
//! (`wren.role: process`, configs in testbed/topologies/three-node/). Checks that the ToR
//! has both reflector sessions Established, that the reflectors peer with each other, and
//! that they accept a node (from the listen range) as a route-reflector client: a stand-in BIRD on n1 (n1 runs no
//! BGP in the topology until the agent exists) originates n1's pod CIDR and the ToR learns
//! it from both reflectors, reflected (cluster 10.0.0.10, originator n1), into its kernel.
//! Then tears down and asserts nothing is left.
//!
//! Needs root and BIRD 2; otherwise it prints `skipping: ...` and passes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use wren_testbed::daemons::bird::{self, Bird};
use wren_testbed::daemons::{BgpPeer, BgpSpeaker};
use wren_testbed::state::leftovers;
use wren_testbed::{skip_reason, wait_until, Lab, Topology, UpOptions};

const BIN: &str = env!("CARGO_BIN_EXE_wren-reflector");
/// Deadline for sessions and routes (they come up in about 1 s here).
const T: Duration = Duration::from_secs(30);

fn topology_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/topologies/three-node.clab.yml")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn birdc(ctl: &Path, args: &[&str]) -> String {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(ctl)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "birdc {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `show protocols` Info column of each of the ToR's BGP sessions.
fn tor_sessions(ctl: &Path) -> Vec<(String, String)> {
    bird::parse_protocols(&birdc(ctl, &["show", "protocols"]))
        .into_iter()
        .filter(|p| p.proto == "BGP")
        .map(|p| (p.name, p.info))
        .collect()
}

#[test]
fn three_node_reflectors_peer_with_tor_each_other_and_nodes() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    for bin in ["/usr/sbin/bird", "/usr/sbin/birdc"] {
        if !Path::new(bin).exists() {
            eprintln!("skipping: {bin} is not installed (apt-get install bird2)");
            return;
        }
    }
    // The shipped reflector configs pass the binary's own check.
    let dir = topology_file().parent().unwrap().join("three-node");
    for f in ["rr1.toml", "rr2.toml"] {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(dir.join(f))
            .arg("--check")
            .output()
            .unwrap();
        assert!(out.status.success(), "{f}: {out:?}");
    }

    // Roles as `wren-testbed up` starts them (`Lab::up` alone builds only the network).
    let opts = UpOptions {
        start_roles: true,
        ..UpOptions::default()
    };
    let lab = Lab::up_with(&Topology::from_file(topology_file()).unwrap(), &opts).unwrap();
    let st = lab.state();

    // rr1 and rr2 run this build's wren-reflector (the process role finds it beside the
    // test binary, in target/<profile>/).
    for rr in ["rr1", "rr2"] {
        let p = st
            .processes
            .iter()
            .find(|p| p.node == rr && p.name == "cmd")
            .unwrap_or_else(|| panic!("no cmd process on {rr}: {:?}", st.processes));
        let exe = std::fs::read_link(format!("/proc/{}/exe", p.pid)).unwrap();
        assert_eq!(
            exe.canonicalize().unwrap(),
            Path::new(BIN).canonicalize().unwrap(),
            "{rr}"
        );
    }

    // The ToR's BIRD has both reflector sessions Established.
    let ctl = lab.dir().join("tor/bird/bird.ctl");
    wait_until("ToR sessions to rr1 and rr2 Established", T, || {
        let s = tor_sessions(&ctl);
        Ok(["rr1", "rr2"]
            .iter()
            .all(|n| s.iter().any(|(p, i)| p == n && i == "Established")))
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", tor_sessions(&ctl), lab.log_tails()));

    // The reflectors peer with each other (one TCP session on port 179 between them, and
    // BGP Established in rr1's log).
    let rr1_log = lab.dir().join("rr1/cmd/cmd.log");
    wait_until("rr1 and rr2 Established", T, || {
        let ss = lab.exec_text(
            "rr1",
            &["ss", "-Htn", "state", "established", "dst", "10.0.0.12"],
        )?;
        let tcp = ss.contains(":179");
        let log = std::fs::read_to_string(&rr1_log).unwrap_or_default();
        let bgp = log
            .lines()
            .any(|l| l.contains("session established") && l.contains("10.0.0.12"));
        Ok(tcp && bgp)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.log_tails()));

    // A stand-in node speaker on n1 (the agent's part) is accepted through the listen range
    // by both reflectors, and the ToR learns n1's pod CIDR from both, reflected.
    let pod_cidr: IpNet = "10.244.1.0/24".parse().unwrap();
    let n1 = ip("10.0.0.1");
    let node = BgpSpeaker::new(64512, "10.0.0.1".parse().unwrap())
        .peer(BgpPeer::new(
            "rr1",
            "10.0.0.11".parse::<IpAddr>().unwrap(),
            64512,
        ))
        .peer(BgpPeer::new(
            "rr2",
            "10.0.0.12".parse::<IpAddr>().unwrap(),
            64512,
        ))
        .originate("10.244.1.0/24".parse().unwrap());
    let n1_bird = Bird::start(&lab, "n1", &node).unwrap();
    wait_until("the ToR to learn n1's pod CIDR from rr1 and rr2", T, || {
        let routes = bird::parse_routes(&birdc(&ctl, &["show", "route", "all"]));
        let ok = ["rr1", "rr2"].iter().all(|rr| {
            routes.iter().any(|r| {
                r.prefix == pod_cidr
                    && r.from == *rr
                    && r.next_hop == Some(n1)
                    && r.originator_id.as_deref() == Some("10.0.0.1")
                    && r.cluster_list == ["10.0.0.10"]
            })
        });
        Ok(ok)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            birdc(&ctl, &["show", "route", "all"]),
            lab.log_tails()
        )
    });
    wait_until("the pod route in the ToR's kernel", T, || {
        lab.has_kernel_route("tor", pod_cidr, n1, Some("bird"))
    })
    .unwrap();

    drop(n1_bird);
    lab.down().unwrap();
    let left = leftovers(&st);
    assert!(left.is_empty(), "{left:#?}");
}
