use super::*;
use std::io::Write;

const BASE: &str = "asn = 64512\nrouter_id = \"192.0.2.1\"\n";

fn ok(extra: &str) -> SpeakerConfig {
    let text = format!("{BASE}{extra}");
    SpeakerConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// Expects a validation error on `field` whose message contains every `needle`.
fn bad(extra: &str, field: &str, needles: &[&str]) -> ConfigError {
    bad_doc(&format!("{BASE}{extra}"), field, needles)
}

fn bad_doc(text: &str, field: &str, needles: &[&str]) -> ConfigError {
    let e = match SpeakerConfig::from_toml_str(text) {
        Ok(c) => panic!("accepted invalid config:\n{text}\n=> {c:?}"),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert_eq!(e.field(), Some(field), "wrong field in: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{msg:?} does not contain {n:?}");
    }
    e
}

fn parse_err(text: &str, needles: &[&str]) {
    let e = SpeakerConfig::from_toml_str(text).expect_err("accepted invalid TOML");
    assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "{msg:?} does not contain {n:?}");
    }
}

#[test]
fn minimal_config_defaults() {
    let c = ok("");
    assert_eq!(c.asn, 64512);
    assert_eq!(c.router_id, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(c.cluster_id, None);
    assert!(!c.is_route_reflector());
    let l = c.listen.as_ref().unwrap();
    assert_eq!(l.port, 179);
    assert_eq!(
        l.socket_addrs(),
        vec!["[::]:179".parse::<SocketAddr>().unwrap()]
    );
    assert!(!c.rfc8212_default_deny);
    assert_eq!(c.max_dynamic_peers, 100);
    assert_eq!(
        c.graceful_restart,
        GlobalGracefulRestart {
            enabled: true,
            restart_time: Duration::from_secs(120),
            stale_time: Duration::from_secs(360),
            deferral: Duration::from_secs(360),
        }
    );
    assert!(c.neighbors.is_empty() && c.listen_ranges.is_empty() && c.originate.is_empty());
}

#[test]
fn neighbor_defaults_ibgp_and_ebgp() {
    let c = ok(r#"
[[neighbor]]
address = "10.0.0.2"
remote_asn = 64512
[[neighbor]]
address = "fd00::2"
remote_asn = 65001
"#);
    let n = &c.neighbors[0];
    assert_eq!(n.address, "10.0.0.2".parse::<IpAddr>().unwrap());
    let o = &n.options;
    assert_eq!(o.hold_time, Duration::from_secs(90));
    assert_eq!(o.keepalive, Duration::from_secs(30));
    assert_eq!(o.connect_retry, Duration::from_secs(30));
    assert_eq!(o.port, 179);
    assert_eq!(o.ttl, TtlPolicy::Default, "iBGP keeps the system TTL");
    assert_eq!(o.families, vec![Family::IPV4_UNICAST]);
    assert_eq!(o.next_hop, NextHopMode::Default);
    assert!(!o.passive && !o.route_reflector_client && o.md5.is_none());
    assert_eq!(o.delay_open, None);
    assert!(o.graceful_restart.enabled);
    assert!(!o.is_ebgp(c.asn));
    let o6 = &c.neighbors[1].options;
    assert_eq!(
        o6.ttl,
        TtlPolicy::Ttl(1),
        "eBGP is directly connected by default"
    );
    assert_eq!(o6.families, vec![Family::IPV6_UNICAST]);
    assert!(o6.is_ebgp(c.asn));
    assert!(c.neighbor("fd00::2".parse().unwrap()).is_some());
    assert!(c.neighbor("10.0.0.3".parse().unwrap()).is_none());
}

#[test]
fn global_timers_inherit_and_keepalive_follows_hold_time() {
    let c = ok(r#"
hold_time_secs = 30
connect_retry_secs = 5
[[neighbor]]
address = "10.0.0.2"
remote_asn = 64512
[[neighbor]]
address = "10.0.0.3"
remote_asn = 64512
hold_time_secs = 9
[[neighbor]]
address = "10.0.0.4"
remote_asn = 64512
hold_time_secs = 0
"#);
    assert_eq!(c.neighbors[0].options.hold_time, Duration::from_secs(30));
    assert_eq!(c.neighbors[0].options.keepalive, Duration::from_secs(10));
    assert_eq!(c.neighbors[0].options.connect_retry, Duration::from_secs(5));
    assert_eq!(c.neighbors[1].options.keepalive, Duration::from_secs(3));
    assert_eq!(c.neighbors[2].options.hold_time, Duration::ZERO);
    assert_eq!(c.neighbors[2].options.keepalive, Duration::ZERO);
}

#[test]
fn hold_time_invalid_names_peer_and_fix() {
    let e = bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nhold_time_secs = 2\n",
        "neighbor[0].hold_time_secs",
        &[],
    );
    assert_eq!(
        e.to_string(),
        "peer 10.0.0.2: hold time 2 s is invalid, use 0 or >= 3 (field neighbor[0].hold_time_secs)"
    );
    bad(
        "hold_time_secs = 1\n",
        "hold_time_secs",
        &["hold time 1 s is invalid, use 0 or >= 3"],
    );
}

#[test]
fn keepalive_errors() {
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nhold_time_secs = 9\nkeepalive_secs = 9\n",
        "neighbor[0].keepalive_secs",
        &["keepalive 9 s is invalid with hold time 9 s", "use 1 to 8"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nhold_time_secs = 0\nkeepalive_secs = 5\n",
        "neighbor[0].keepalive_secs",
        &["hold time 0", "keepalive_secs = 0"],
    );
    bad(
        "hold_time_secs = 9\nkeepalive_secs = 10\n",
        "keepalive_secs",
        &["less than the hold time"],
    );
}

#[test]
fn local_asn_reserved_values_rejected() {
    for (asn, needle) in [
        (0, "AS 0 is reserved"),
        (23456, "AS_TRANS"),
        (65535, "reserved"),
    ] {
        bad_doc(
            &format!("asn = {asn}\nrouter_id = \"192.0.2.1\"\n"),
            "asn",
            &[needle, "use your"],
        );
    }
    // 4-octet ASNs are fine.
    let c = SpeakerConfig::from_toml_str("asn = 4200000000\nrouter_id = \"192.0.2.1\"\n").unwrap();
    assert_eq!(c.asn, 4_200_000_000);
}

#[test]
fn remote_asn_missing_or_reserved() {
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\n",
        "neighbor[0].remote_asn",
        &["remote_asn is missing"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 23456\n",
        "neighbor[0].remote_asn",
        &["reserved", "real AS number"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 0\n",
        "neighbor[0].remote_asn",
        &["reserved"],
    );
}

#[test]
fn router_id_and_cluster_id() {
    bad_doc(
        "asn = 1\nrouter_id = \"0.0.0.0\"\n",
        "router_id",
        &["non-zero"],
    );
    assert_eq!(
        ok("route_reflector = true\n").cluster_id,
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
    assert_eq!(
        ok("cluster_id = \"10.1.1.1\"\n").cluster_id,
        Some(Ipv4Addr::new(10, 1, 1, 1))
    );
    assert_eq!(
        ok("cluster_id = \"10.1.1.1\"\nroute_reflector = true\n").cluster_id,
        Some(Ipv4Addr::new(10, 1, 1, 1))
    );
    assert_eq!(ok("route_reflector = false\n").cluster_id, None);
    bad(
        "cluster_id = \"10.1.1.1\"\nroute_reflector = false\n",
        "cluster_id",
        &["remove"],
    );
    bad("cluster_id = \"0.0.0.0\"\n", "cluster_id", &["non-zero"]);
}

#[test]
fn rr_client_needs_reflector() {
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 64512\nroute_reflector_client = true\n",
        "neighbor[0].route_reflector_client",
        &["route_reflector = true"],
    );
    let c = ok("route_reflector = true\n[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 64512\nroute_reflector_client = true\n");
    assert!(c.neighbors[0].options.route_reflector_client);
}

#[test]
fn duplicate_and_missing_neighbor_address() {
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 2\n",
        "neighbor[1].address",
        &["peer 10.0.0.2", "already defined as neighbor[0]"],
    );
    // A v4-mapped IPv6 spelling is the same peer.
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\n[[neighbor]]\naddress = \"::ffff:10.0.0.2\"\nremote_asn = 2\n",
        "neighbor[1].address",
        &["duplicate"],
    );
    bad(
        "[[neighbor]]\nremote_asn = 1\n",
        "neighbor[0].address",
        &["address is missing"],
    );
    bad(
        "[[neighbor]]\naddress = \"0.0.0.0\"\nremote_asn = 1\n",
        "neighbor[0].address",
        &["unicast"],
    );
}

#[test]
fn multihop_and_ttl_security() {
    let c = ok(r#"
[[neighbor]]
address = "10.0.0.2"
remote_asn = 65001
multihop_ttl = 3
[[neighbor]]
address = "10.0.0.3"
remote_asn = 65001
ttl_security_hops = 1
"#);
    assert_eq!(c.neighbors[0].options.ttl, TtlPolicy::Ttl(3));
    assert_eq!(c.neighbors[1].options.ttl, TtlPolicy::Security { hops: 1 });
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nmultihop_ttl = 2\nttl_security_hops = 1\n",
        "neighbor[0].ttl_security_hops",
        &["both set", "use one"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nmultihop_ttl = 0\n",
        "neighbor[0].multihop_ttl",
        &["1 to 255"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nttl_security_hops = 0\n",
        "neighbor[0].ttl_security_hops",
        &["use 1"],
    );
}

#[test]
fn next_hop_modes() {
    let c = ok("[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nnext_hop_self = true\n[[neighbor]]\naddress = \"10.0.0.3\"\nremote_asn = 1\nnext_hop_keep = true\n");
    assert_eq!(c.neighbors[0].options.next_hop, NextHopMode::SelfAddress);
    assert_eq!(c.neighbors[1].options.next_hop, NextHopMode::Keep);
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nnext_hop_self = true\nnext_hop_keep = true\n",
        "neighbor[0].next_hop_keep",
        &["both true"],
    );
}

#[test]
fn next_hop_addresses_resolve_and_errors() {
    let c = ok(r#"
next_hop_v6 = "2001:db8::1"
[[neighbor]]
address = "10.0.0.2"
remote_asn = 1
[[neighbor]]
address = "10.0.0.3"
template = "t"
[[neighbor]]
address = "10.0.0.4"
template = "t"
next_hop_v6 = "2001:db8::4"
next_hop_v4 = "192.0.2.4"
[template.t]
remote_asn = 1
next_hop_v6 = "2001:db8::3"
"#);
    let nh = |i: usize| {
        let o = &c.neighbors[i].options;
        (o.next_hop_v4, o.next_hop_v6)
    };
    assert_eq!(nh(0), (None, Some("2001:db8::1".parse().unwrap())));
    assert_eq!(nh(1), (None, Some("2001:db8::3".parse().unwrap())));
    assert_eq!(
        nh(2),
        (
            Some("192.0.2.4".parse().unwrap()),
            Some("2001:db8::4".parse().unwrap())
        )
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nnext_hop_v6 = \"fe80::1\"\n",
        "neighbor[0].next_hop_v6",
        &["fe80::1", "not link-local"],
    );
    bad(
        "next_hop_v4 = \"0.0.0.0\"\n",
        "next_hop_v4",
        &["0.0.0.0", "unicast IPv4"],
    );
    parse_err(
        &format!("{BASE}[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nnext_hop_v6 = \"10.0.0.1\"\n"),
        &["next_hop_v6"],
    );
}

#[test]
fn value_parse_errors_do_not_print_passwords() {
    let text = format!(
        "{BASE}[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword = 918273645\n"
    );
    let v: toml::Value = toml::from_str(&text).unwrap();
    let e = SpeakerConfig::from_toml_value(v, "agent.toml [bgp]", None).expect_err("invalid");
    let msg = e.to_string();
    assert!(!msg.contains("918273645"), "{msg}");
    assert!(msg.contains("agent.toml [bgp]"), "{msg}");
    assert!(msg.contains("neighbor.password"), "{msg}");
    // Other errors keep toml's message and the key path.
    let v: toml::Value = toml::from_str(&format!("{BASE}hold_time_secs = \"x\"\n")).unwrap();
    let msg = SpeakerConfig::from_toml_value(v, "agent.toml [bgp]", None)
        .expect_err("invalid")
        .to_string();
    assert!(
        msg.contains("invalid type") && msg.contains("hold_time_secs"),
        "{msg}"
    );
}

#[test]
fn stale_time_zero_rejected() {
    bad(
        "[graceful_restart]\nstale_time_secs = 0\n",
        "graceful_restart.stale_time_secs",
        &["stale time 0 s", "use >= 1"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\ngraceful_restart = { stale_time_secs = 0 }\n",
        "neighbor[0].graceful_restart.stale_time_secs",
        &["peer 10.0.0.2", "use >= 1"],
    );
}

/// TOML errors name the line and column but never echo a password (toml's excerpt of the
/// line, or a wrong-typed value in the message).
#[test]
fn parse_errors_do_not_print_passwords() {
    for (doc, needles) in [
        (
            "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npasword = \"s3cret-md5\"\n",
            &["line 6, column 1", "unknown field `pasword`"][..],
        ),
        (
            "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword = 918273645\n",
            &[
                "line 6, column 12",
                "invalid password entry",
                "password_file",
            ][..],
        ),
        (
            "[template.t]\nremote_asn = 1\npassword = [\"s3cret-md5\"]\n",
            &["line 5", "value not shown"][..],
        ),
        (
            "hold_time_secs = \"x\"\n",
            &["line 3, column 18", "invalid type"][..],
        ),
    ] {
        let text = format!("{BASE}{doc}");
        let e = SpeakerConfig::from_toml_str(&text).expect_err("invalid");
        let msg = e.to_string();
        assert!(
            !msg.contains("s3cret") && !msg.contains("918273645"),
            "{msg}"
        );
        for n in needles {
            assert!(msg.contains(n), "{msg:?} does not contain {n:?}");
        }
    }
}

#[test]
fn password_inline_and_file() {
    let c = ok("[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword = \"s3cret\"\n");
    assert_eq!(
        c.neighbors[0].options.md5.as_ref().unwrap().as_bytes(),
        b"s3cret"
    );
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "Debug leaks the password"
    );

    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("peer.md5");
    std::fs::File::create(&pw)
        .unwrap()
        .write_all(b"from-file\r\nignored\n")
        .unwrap();
    let c = ok(&format!(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword_file = \"{}\"\n",
        pw.display()
    ));
    assert_eq!(
        c.neighbors[0].options.md5.as_ref().unwrap().as_bytes(),
        b"from-file"
    );

    // Relative to the config file when loaded with from_file.
    let cfg = dir.path().join("speaker.toml");
    std::fs::write(&cfg, format!("{BASE}[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword_file = \"peer.md5\"\n")).unwrap();
    let c = SpeakerConfig::from_file(&cfg).unwrap();
    assert_eq!(
        c.neighbors[0].options.md5.as_ref().unwrap().as_bytes(),
        b"from-file"
    );

    let missing = dir.path().join("nope.md5");
    let e = bad(
        &format!(
            "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword_file = \"{}\"\n",
            missing.display()
        ),
        "neighbor[0].password_file",
        &["peer 10.0.0.2", "cannot read password_file", "nope.md5"],
    );
    assert!(matches!(e, ConfigError::PasswordFile { .. }));

    let empty = dir.path().join("empty.md5");
    std::fs::write(&empty, "\n").unwrap();
    bad(
        &format!(
            "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword_file = \"{}\"\n",
            empty.display()
        ),
        "neighbor[0].password_file",
        &["empty.md5", "is empty"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword = \"a\"\npassword_file = \"/x\"\n",
        "neighbor[0].password_file",
        &["both set"],
    );
    bad(
        &format!(
            "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword = \"{}\"\n",
            "x".repeat(81)
        ),
        "neighbor[0].password",
        &["81 octets", "1 to 80"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassword = \"\"\n",
        "neighbor[0].password",
        &["0 octets"],
    );
}

#[test]
fn templates_and_listen_ranges() {
    let c = ok(r#"
route_reflector = true
max_dynamic_peers = 7
[template.nodes]
remote_asn = 64512
route_reflector_client = true
password = "range"
ttl_security_hops = 1
hold_time_secs = 30
[[listen_range]]
prefix = "10.1.0.0/16"
template = "nodes"
[[listen_range]]
prefix = "10.1.2.0/24"
template = "nodes"
[[neighbor]]
address = "10.1.2.3"
template = "nodes"
multihop_ttl = 4
password = "own"
"#);
    assert_eq!(c.max_dynamic_peers, 7);
    let t = &c.templates["nodes"];
    assert_eq!(t.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert_eq!(t.keepalive, Duration::from_secs(10));
    let (r, opts) = c.listen_range_for("10.1.2.9".parse().unwrap()).unwrap();
    assert_eq!(
        r.prefix,
        "10.1.2.0/24".parse::<IpNet>().unwrap(),
        "longest prefix wins"
    );
    assert_eq!(opts, t);
    assert!(c.listen_range_for("10.2.0.1".parse().unwrap()).is_none());
    let n = &c.neighbors[0];
    assert_eq!(n.template.as_deref(), Some("nodes"));
    assert!(n.options.route_reflector_client, "inherited");
    assert_eq!(n.options.hold_time, Duration::from_secs(30), "inherited");
    assert_eq!(
        n.options.ttl,
        TtlPolicy::Ttl(4),
        "own TTL pair overrides the template's"
    );
    assert_eq!(n.options.md5.as_ref().unwrap().as_bytes(), b"own");
    assert_eq!(
        n.options.families,
        vec![Family::IPV4_UNICAST],
        "static default: own family"
    );

    let lp = c.listener_peers();
    assert_eq!(lp.len(), 3);
    assert_eq!(lp[0].0, "10.1.2.3/32".parse::<IpNet>().unwrap());
    assert_eq!(lp[1].1.ttl, TtlPolicy::Security { hops: 1 });

    let co = n.connect_options();
    assert_eq!(co.remote, "10.1.2.3:179".parse::<SocketAddr>().unwrap());
    assert_eq!(co.ttl, TtlPolicy::Ttl(4));
    assert!(co.md5.is_some());
}

#[test]
fn template_errors() {
    bad(
        "[template.t]\nremote_asn = 1\naddress = \"10.0.0.1\"\n",
        "template.t.address",
        &["template t", "cannot have an address"],
    );
    bad(
        "[template.t]\nremote_asn = 1\ntemplate = \"u\"\n",
        "template.t.template",
        &["cannot inherit"],
    );
    bad(
        "[template.t]\nhold_time_secs = 90\n",
        "template.t.remote_asn",
        &["remote_asn is missing"],
    );
    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\ntemplate = \"ghost\"\n",
        "neighbor[0].template",
        &["template \"ghost\" is not defined", "[template.ghost]"],
    );
    bad(
        "[[listen_range]]\nprefix = \"10.0.0.0/8\"\ntemplate = \"ghost\"\n",
        "listen_range[0].template",
        &["not defined"],
    );
    bad(
        "[template.t]\nremote_asn = 1\n[[listen_range]]\nprefix = \"10.0.0.1/8\"\ntemplate = \"t\"\n",
        "listen_range[0].prefix",
        &["host bits", "use 10.0.0.0/8"],
    );
    bad(
        "[template.t]\nremote_asn = 1\n[[listen_range]]\nprefix = \"10.0.0.0/8\"\ntemplate = \"t\"\n[[listen_range]]\nprefix = \"10.0.0.0/8\"\ntemplate = \"t\"\n",
        "listen_range[1].prefix",
        &["duplicate"],
    );
    // Missing remote_asn on a neighbour with a template mentions the template.
    bad(
        "[template.t]\nremote_asn = 1\n[[neighbor]]\naddress = \"10.0.0.2\"\ntemplate = \"t\"\nremote_asn = 0\n",
        "neighbor[0].remote_asn",
        &["reserved"],
    );
}

#[test]
fn listener_off_and_its_consequences() {
    assert!(ok("listen = false\n").listen.is_none());
    assert!(ok("listen_port = 0\n").listen.is_none());
    let c = ok("listen_addresses = [\"127.0.0.1\", \"::1\"]\nlisten_port = 1179\n");
    assert_eq!(
        c.listen.unwrap().socket_addrs(),
        vec![
            "127.0.0.1:1179".parse::<SocketAddr>().unwrap(),
            "[::1]:1179".parse().unwrap()
        ]
    );
    bad(
        "listen = false\n[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\npassive = true\n",
        "neighbor[0].passive",
        &["needs a listener"],
    );
    bad(
        "listen_port = 0\n[template.t]\nremote_asn = 1\n[[listen_range]]\nprefix = \"10.0.0.0/8\"\ntemplate = \"t\"\n",
        "listen_range[0]",
        &["need a listener"],
    );
    bad(
        "listen_addresses = []\n",
        "listen_addresses",
        &["no listen address"],
    );
    bad(
        "listen_addresses = [\"::\", \"::\"]\n",
        "listen_addresses[1]",
        &["twice"],
    );
}

#[test]
fn peer_field_errors() {
    let n = "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\n";
    bad(
        &format!("{n}local_address = \"fd00::1\"\n"),
        "neighbor[0].local_address",
        &["different IP families"],
    );
    bad(&format!("{n}port = 0\n"), "neighbor[0].port", &["port 0"]);
    bad(
        &format!("{n}connect_retry_secs = 0\n"),
        "neighbor[0].connect_retry_secs",
        &["use >= 1"],
    );
    bad(
        "connect_retry_secs = 0\n",
        "connect_retry_secs",
        &["use >= 1"],
    );
    bad(
        &format!("{n}families = []\n"),
        "neighbor[0].families",
        &["no address family"],
    );
    bad(
        &format!("{n}families = [\"l2vpn-evpn\"]\n"),
        "neighbor[0].families[0]",
        &["unknown family", "ipv4-unicast"],
    );
    bad(
        &format!("{n}families = [\"ipv4-unicast\", \"ipv4-unicast\"]\n"),
        "neighbor[0].families[1]",
        &["twice"],
    );
    bad(
        &format!("{n}max_prefix = {{ limit = 0 }}\n"),
        "neighbor[0].max_prefix.limit",
        &["limit 0"],
    );
    bad(
        &format!("{n}max_prefix = {{ limit = 10, restart_after_secs = 0 }}\n"),
        "neighbor[0].max_prefix.restart_after_secs",
        &["omit it"],
    );
    bad(
        &format!("{n}shutdown_message = \"{}\"\n", "m".repeat(256)),
        "neighbor[0].shutdown_message",
        &["256 octets", "at most 255"],
    );
    bad(
        &format!("{n}graceful_restart = {{ restart_time_secs = 5000 }}\n"),
        "neighbor[0].graceful_restart.restart_time_secs",
        &["at most 4095"],
    );
    bad(
        "[graceful_restart]\nrestart_time_secs = 4096\n",
        "graceful_restart.restart_time_secs",
        &["4095"],
    );
    bad(
        "[graceful_restart]\ndeferral_secs = 0\n",
        "graceful_restart.deferral_secs",
        &["use >= 1"],
    );
}

#[test]
fn peer_options_resolved() {
    let c = ok(r#"
[graceful_restart]
enabled = false
stale_time_secs = 100
[[neighbor]]
address = "10.0.0.2"
remote_asn = 65001
description = "tor"
passive = true
local_address = "10.0.0.1"
port = 1179
delay_open_secs = 5
families = ["ipv6-unicast", "ipv4-unicast"]
max_prefix = { limit = 100 }
shutdown_message = "bye"
graceful_restart = { enabled = true, restart_time_secs = 60 }
"#);
    let o = &c.neighbors[0].options;
    assert_eq!(o.description.as_deref(), Some("tor"));
    assert!(o.passive);
    assert_eq!(o.local_address, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(o.port, 1179);
    assert_eq!(o.delay_open, Some(Duration::from_secs(5)));
    assert_eq!(o.families, vec![Family::IPV6_UNICAST, Family::IPV4_UNICAST]);
    assert_eq!(
        o.max_prefix,
        Some(MaxPrefix {
            limit: 100,
            restart_after: None
        })
    );
    assert_eq!(o.shutdown_message.as_deref(), Some("bye"));
    assert_eq!(
        o.graceful_restart,
        PeerGracefulRestart {
            enabled: true,
            restart_time: Duration::from_secs(60),
            stale_time: Duration::from_secs(100),
        }
    );
    let co = c.neighbors[0].connect_options();
    assert_eq!(co.local, Some("10.0.0.1:0".parse().unwrap()));
    assert_eq!(co.remote, "10.0.0.2:1179".parse().unwrap());
}

#[test]
fn originate_parsing_and_errors() {
    let c = ok(r#"
[[originate]]
prefix = "10.244.0.0/16"
communities = ["65000:100", "no-export", "NO-ADVERTISE"]
large_communities = ["65000:1:2"]
med = 5
local_pref = 200
next_hop = "10.0.0.1"
[[originate]]
prefix = "fd00:244::/48"
"#);
    let o = &c.originate[0];
    assert_eq!(
        o.communities,
        vec![
            Community::new(65000, 100),
            Community::NO_EXPORT,
            Community::NO_ADVERTISE
        ]
    );
    assert_eq!(
        o.large_communities,
        vec![LargeCommunity {
            global_admin: 65000,
            local_data1: 1,
            local_data2: 2
        }]
    );
    assert_eq!((o.med, o.local_pref), (Some(5), Some(200)));
    assert_eq!(c.originate[1].next_hop, None);

    let p = "[[originate]]\nprefix = \"10.0.0.0/8\"\n";
    bad(
        "[[originate]]\nprefix = \"10.1.0.0/8\"\n",
        "originate[0].prefix",
        &["host bits", "10.0.0.0/8"],
    );
    bad(&format!("{p}{p}"), "originate[1].prefix", &["duplicate"]);
    bad(
        &format!("{p}communities = [\"65536:1\"]\n"),
        "originate[0].communities[0]",
        &["ASN:VALUE"],
    );
    bad(
        &format!("{p}communities = [\"x\"]\n"),
        "originate[0].communities[0]",
        &["invalid"],
    );
    bad(
        &format!("{p}large_communities = [\"1:2\"]\n"),
        "originate[0].large_communities[0]",
        &["GLOBAL:LOCAL1:LOCAL2"],
    );
    bad(
        &format!("{p}large_communities = [\"1:2:3:4\"]\n"),
        "originate[0].large_communities[0]",
        &["invalid"],
    );
    bad(
        &format!("{p}next_hop = \"fd00::1\"\n"),
        "originate[0].next_hop",
        &["family"],
    );
}

#[test]
fn policies_both_forms_and_references() {
    let c = ok(r#"
[[neighbor]]
address = "10.0.0.2"
remote_asn = 1
import_policy = ["a"]
export_policy = ["a", "b"]
[[policy]]
name = "a"
default = "accept"
[[policy]]
name = "b"
"#);
    assert_eq!(c.policy.keys().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(
        c.neighbors[0].options.export_policy,
        vec!["a".to_owned(), "b".to_owned()]
    );

    let c = ok("[policy.x]\ndefault = \"accept\"\n");
    assert_eq!(
        c.policy["x"].get("name").and_then(|v| v.as_str()),
        Some("x"),
        "name added"
    );

    bad(
        "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nimport_policy = [\"nope\"]\n",
        "neighbor[0].import_policy",
        &["policy \"nope\" is not defined"],
    );
    bad(
        "[template.t]\nremote_asn = 1\nexport_policy = [\"nope\"]\n",
        "template.t.export_policy",
        &["not defined"],
    );
    bad(
        "[[policy]]\nname = \"a\"\n[[policy]]\nname = \"a\"\n",
        "policy[1].name",
        &["duplicate"],
    );
    bad(
        "[[policy]]\ndefault = \"accept\"\n",
        "policy[0].name",
        &["name"],
    );
    bad("[policy.x]\nname = \"y\"\n", "policy.x.name", &["differs"]);
    bad("policy = 3\n", "policy", &["[[policy]]"]);
}

#[test]
fn parse_errors_name_the_field() {
    parse_err(&format!("{BASE}bogus = 1\n"), &["unknown field", "bogus"]);
    parse_err(
        &format!("{BASE}[[neighbor]]\naddress = \"10.0.0.2\"\nremote_as = 1\n"),
        &["remote_as"],
    );
    parse_err(
        &format!("{BASE}[graceful_restart]\nrestart = 1\n"),
        &["restart"],
    );
    parse_err(
        &format!("{BASE}[[originate]]\nprefix = \"10.0.0.0/8\"\nmedd = 1\n"),
        &["medd"],
    );
    parse_err("router_id = \"192.0.2.1\"\n", &["missing field", "asn"]);
    parse_err("asn = 1\nrouter_id = \"not-an-ip\"\n", &["router_id"]);
    parse_err(
        &format!("{BASE}hold_time_secs = 70000\n"),
        &["hold_time_secs"],
    );
    parse_err(&format!("{BASE}[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nmax_prefix = {{ limit = 1, x = 2 }}\n"), &["x"]);
}

#[test]
fn from_file_errors_name_the_file() {
    let e = SpeakerConfig::from_file("/nonexistent/wren.toml").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/wren.toml"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "asn = \n").unwrap();
    let e = SpeakerConfig::from_file(&p).unwrap_err();
    assert!(e.to_string().contains("bad.toml"), "{e}");
}

#[test]
fn embedded_table_from_another_file() {
    let doc: toml::Table = toml::from_str(
        "node = \"n1\"\n[bgp]\nasn = 64512\nrouter_id = \"192.0.2.9\"\n[[bgp.neighbor]]\naddress = \"10.0.0.1\"\nremote_asn = 64512\n",
    )
    .unwrap();
    let bgp = doc.get("bgp").cloned().unwrap();
    let c = SpeakerConfig::from_toml_value(bgp, "agent.toml [bgp]", None).unwrap();
    assert_eq!(c.router_id, Ipv4Addr::new(192, 0, 2, 9));
    assert_eq!(c.neighbors.len(), 1);
    let bad: toml::Value =
        toml::from_str::<toml::Table>("asn = 1\nrouter_id = \"192.0.2.9\"\nx = 1\n")
            .map(toml::Value::Table)
            .unwrap();
    let e = SpeakerConfig::from_toml_value(bad, "agent.toml [bgp]", None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("agent.toml [bgp]: ") && msg.contains("unknown field `x`"),
        "{msg}"
    );
}
