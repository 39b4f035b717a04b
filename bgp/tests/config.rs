//! The documented example configuration parses and means what its comments say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use wren_bgp::config::{NextHopMode, SpeakerConfig};
use wren_bgp::transport::TtlPolicy;
use wren_bgp::wire::Family;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reflector/examples/reflector.toml")
}

#[test]
fn reflector_example_parses() {
    let c = SpeakerConfig::from_file(example()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.asn, 64512);
    assert_eq!(c.router_id, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        c.cluster_id,
        Some(c.router_id),
        "route_reflector = true uses the router id"
    );
    let listen = c.listen.as_ref().unwrap();
    assert_eq!(listen.port, 179);
    assert_eq!(listen.addresses.len(), 2);
    assert_eq!(c.max_dynamic_peers, 500);
    assert_eq!(c.neighbors.len(), 3);

    let a = &c.neighbors[0].options;
    assert_eq!(a.md5.as_ref().unwrap().as_bytes(), b"example-md5-secret");
    assert_eq!(a.ttl, TtlPolicy::Security { hops: 1 });
    assert!(a.route_reflector_client);
    assert_eq!(a.next_hop, NextHopMode::Default);
    assert_eq!(a.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert_eq!(
        a.max_prefix.unwrap().restart_after,
        Some(Duration::from_secs(60))
    );
    assert_eq!(a.import_policy, vec!["pods-only".to_owned()]);

    let tor = &c.neighbors[1];
    assert_eq!(tor.address, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(tor.options.ttl, TtlPolicy::Ttl(2));
    assert!(tor.options.is_ebgp(c.asn));

    let b = &c.neighbors[2].options;
    assert_eq!(c.neighbors[2].template.as_deref(), Some("nodes"));
    assert!(b.passive && b.route_reflector_client);
    assert_eq!(b.hold_time, Duration::from_secs(30));
    assert_eq!(b.description.as_deref(), Some("node-b"));

    assert_eq!(c.listen_ranges.len(), 2);
    let (_, t) = c.listen_range_for("198.51.100.7".parse().unwrap()).unwrap();
    assert_eq!(t.md5.as_ref().unwrap().as_bytes(), b"nodes-md5-secret");
    assert!(c
        .listen_range_for("2001:db8:100::42".parse().unwrap())
        .is_some());

    assert_eq!(c.originate.len(), 2);
    assert_eq!(c.originate[0].communities.len(), 2);
    assert!(c.policy.contains_key("pods-only"));
}

#[test]
fn reflector_example_documents_every_field() {
    // Every key the parser knows appears in the example (commented out or set), so the
    // example stays the reference.
    let text = std::fs::read_to_string(example()).unwrap();
    for key in [
        "asn",
        "router_id",
        "cluster_id",
        "route_reflector",
        "listen",
        "listen_addresses",
        "listen_port",
        "hold_time_secs",
        "keepalive_secs",
        "connect_retry_secs",
        "rfc8212_default_deny",
        "max_dynamic_peers",
        "[graceful_restart]",
        "enabled",
        "restart_time_secs",
        "stale_time_secs",
        "deferral_secs",
        "[[neighbor]]",
        "address",
        "remote_asn",
        "description",
        "passive",
        "local_address",
        "port",
        "password",
        "password_file",
        "delay_open_secs",
        "multihop_ttl",
        "ttl_security_hops",
        "route_reflector_client",
        "next_hop_self",
        "next_hop_keep",
        "families",
        "import_policy",
        "export_policy",
        "shutdown_message",
        "max_prefix",
        "limit",
        "restart_after_secs",
        "template",
        "[template.",
        "[[listen_range]]",
        "prefix",
        "[[originate]]",
        "communities",
        "large_communities",
        "med",
        "local_pref",
        "next_hop",
        "[[policy]]",
    ] {
        assert!(text.contains(key), "example does not document {key}");
    }
}
