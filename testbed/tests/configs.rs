//! The config generators' output, with every option on, is accepted by the daemons' own
//! checkers (bird -p, bgpd -C, gobgpd -d, exabgp --validate); a broken config is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use wren_testbed::daemons::{bird, exabgp, frr, gobgp, BgpPeer, BgpSpeaker, Originate};

fn speaker() -> BgpSpeaker {
    BgpSpeaker::new(4200000001, "10.0.0.1".parse().unwrap())
        .local6("fd00::1".parse().unwrap())
        .peer(
            BgpPeer::new(
                "c1",
                "10.0.0.2".parse::<std::net::IpAddr>().unwrap(),
                4200000001,
            )
            .rr_client()
            .password("s3cret"),
        )
        .peer(BgpPeer::new("c2", "10.0.0.3".parse::<std::net::IpAddr>().unwrap(), 65001).passive())
        .peer(BgpPeer::new(
            "c3",
            "fd00::3".parse::<std::net::IpAddr>().unwrap(),
            4200000003,
        ))
        .originate("10.10.1.0/24".parse().unwrap())
        .originate_with(
            Originate::new("10.10.9.0/24".parse::<ipnet::IpNet>().unwrap())
                .community(65000, 7)
                .large_community(4200000001, 1, 2)
                .med(10),
        )
        .originate_with(
            Originate::new("2001:db8:1::/48".parse::<ipnet::IpNet>().unwrap())
                .community(65000, 6)
                .large_community(4200000001, 6, 6)
                .med(60),
        )
        .restart_time(30)
}

fn installed(bins: &[&str]) -> bool {
    let missing: Vec<&&str> = bins.iter().filter(|b| !Path::new(b).exists()).collect();
    if !missing.is_empty() {
        eprintln!("skipping: not installed: {missing:?}");
    }
    missing.is_empty()
}

fn frr_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn generated_configs_pass_the_daemons_checkers() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root (bgpd -C drops to user frr)");
        return;
    }
    if !installed(&[
        "/usr/sbin/bird",
        "/usr/lib/frr/bgpd",
        "/usr/bin/gobgpd",
        "/usr/sbin/exabgp",
    ]) {
        return;
    }
    let s = speaker();
    let d = frr_dir();
    let p = d.path().join("bird.conf");
    std::fs::write(&p, bird::render(&s.clone().kernel_export())).unwrap();
    bird::check_config(&p).unwrap();

    let p = d.path().join("bgpd.conf");
    std::fs::write(&p, frr::render(&s, "n1")).unwrap();
    frr::check_config(&p).unwrap();
    // A broken line must be caught although bgpd -C exits 0.
    std::fs::write(
        &p,
        frr::render(&s, "n1") + "router bgp 65000\n bogus-command 1\n",
    )
    .unwrap();
    let e = frr::check_config(&p).unwrap_err().to_string();
    assert!(e.contains("bogus") || e.contains("EC "), "{e}");

    let p = d.path().join("gobgpd.toml");
    std::fs::write(&p, gobgp::render(&s)).unwrap();
    gobgp::check_config(&p).unwrap();
    std::fs::write(&p, "[global.config]\n  as = \"x\"\n").unwrap();
    assert!(gobgp::check_config(&p).is_err());

    let p = d.path().join("exabgp.conf");
    std::fs::write(d.path().join("relay.py"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        d.path().join("relay.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(&p, exabgp::render(&s, d.path())).unwrap();
    exabgp::check_config(&p).unwrap();
}
