//! Transport tests over loopback (127.0.0.0/8 and ::1): TCP MD5 (RFC 2385) with right,
//! wrong and missing keys, listen-range prefix keys, keys changed at run time, GTSM
//! (RFC 5082) and multihop TTL read back with getsockopt, source binding, IPv6 and
//! dual-stack. A mismatch makes the kernel drop the SYN silently, so failures show up as a
//! connect timeout; the tests wait at most `FAIL_DEADLINE` for that.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wren_bgp::transport::{
    connect, sockopt, Accepted, ConnectOptions, Listener, Md5Key, PeerSecurity, TransportError,
    TtlPolicy,
};

const FAIL_DEADLINE: Duration = Duration::from_secs(3);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn key(s: &str) -> Option<Md5Key> {
    Some(Md5Key::new(s).unwrap())
}

/// The listener's port on the given family.
fn port_of(l: &Listener) -> u16 {
    l.local_addrs()[0].port()
}

/// Connects and accepts concurrently; checks that bytes flow both ways.
async fn must_connect(l: &Listener, opts: &ConnectOptions) -> (tokio::net::TcpStream, Accepted) {
    let (c, a) = tokio::join!(connect(opts), async {
        tokio::time::timeout(Duration::from_secs(10), l.accept()).await
    });
    let mut c = c.unwrap_or_else(|e| panic!("connect to {} failed: {e}", opts.remote));
    let mut a = a.expect("accept timed out").expect("accept failed");
    c.write_all(b"open").await.unwrap();
    let mut buf = [0u8; 4];
    a.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"open");
    a.stream.write_all(b"ack!").await.unwrap();
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ack!");
    (c, a)
}

/// Expects the connection attempt to time out and the listener to accept nothing.
async fn must_not_connect(l: &Listener, opts: &ConnectOptions) {
    let mut opts = opts.clone();
    opts.connect_timeout = FAIL_DEADLINE;
    tokio::select! {
        r = connect(&opts) => match r {
            Err(TransportError::ConnectTimeout { .. }) => {}
            Err(e) => panic!("expected a connect timeout, got {e}"),
            Ok(s) => panic!("connection to {} succeeded: {:?}", opts.remote, s.local_addr()),
        },
        a = l.accept() => panic!("listener accepted a connection it should have dropped: {a:?}"),
    }
}

fn opts(remote: SocketAddr, md5: Option<Md5Key>) -> ConnectOptions {
    let mut o = ConnectOptions::new(remote);
    o.md5 = md5;
    o
}

#[tokio::test]
async fn md5_v4_right_password_connects() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&l));
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: key("s3cret"),
            ..Default::default()
        },
    )
    .unwrap();
    let (_c, a) = must_connect(&l, &opts(remote, key("s3cret"))).await;
    assert_eq!(a.peer.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(a.matched, Some(net("127.0.0.1/32")));
    assert_eq!(a.local, remote);
}

#[tokio::test]
async fn md5_v4_wrong_password_does_not_connect() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&l));
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: key("s3cret"),
            ..Default::default()
        },
    )
    .unwrap();
    must_not_connect(&l, &opts(remote, key("wrong"))).await;
}

#[tokio::test]
async fn md5_v4_missing_client_password_does_not_connect() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&l));
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: key("s3cret"),
            ..Default::default()
        },
    )
    .unwrap();
    must_not_connect(&l, &opts(remote, None)).await;
}

#[tokio::test]
async fn md5_v4_unexpected_client_password_does_not_connect() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&l));
    l.set_peer(net("127.0.0.1/32"), PeerSecurity::default())
        .unwrap();
    must_not_connect(&l, &opts(remote, key("s3cret"))).await;
}

#[tokio::test]
async fn md5_listen_range_prefix_key() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&l));
    l.set_peer(
        net("127.0.0.0/8"),
        PeerSecurity {
            md5: key("range-key"),
            ..Default::default()
        },
    )
    .unwrap();
    let mut o = opts(remote, key("range-key"));
    o.local = Some(sa("127.0.0.2:0"));
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(a.peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(a.matched, Some(net("127.0.0.0/8")));

    // A more specific host key wins over the range for that host only.
    l.set_peer(
        net("127.0.0.3/32"),
        PeerSecurity {
            md5: key("host-key"),
            ..Default::default()
        },
    )
    .unwrap();
    let mut o = opts(remote, key("host-key"));
    o.local = Some(sa("127.0.0.3:0"));
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(a.matched, Some(net("127.0.0.3/32")));
    o.md5 = key("range-key");
    must_not_connect(&l, &o).await;

    // Wrong key from inside the range.
    let mut o = opts(remote, key("nope"));
    o.local = Some(sa("127.0.0.4:0"));
    must_not_connect(&l, &o).await;
}

#[tokio::test]
async fn md5_keys_change_at_run_time() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&l));
    let mut o = opts(remote, key("first"));
    o.local = Some(sa("127.0.0.9:0"));
    l.set_peer(
        net("127.0.0.9/32"),
        PeerSecurity {
            md5: key("first"),
            ..Default::default()
        },
    )
    .unwrap();
    must_connect(&l, &o).await;

    // Replace the key: the old one no longer works, the new one does.
    l.set_peer(
        net("127.0.0.9/32"),
        PeerSecurity {
            md5: key("second"),
            ..Default::default()
        },
    )
    .unwrap();
    must_not_connect(&l, &o).await;
    o.md5 = key("second");
    must_connect(&l, &o).await;

    // Remove the peer: the key is deleted, so an unsigned SYN is accepted (unknown peer)
    // and a signed one is dropped.
    let old = l.remove_peer(net("127.0.0.9/32")).unwrap();
    assert_eq!(old.and_then(|s| s.md5), key("second"));
    must_not_connect(&l, &o).await;
    o.md5 = None;
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(a.matched, None);
    // Removing twice is harmless.
    assert!(l.remove_peer(net("127.0.0.9/32")).unwrap().is_none());
}

#[tokio::test]
async fn md5_v6_right_and_wrong_password() {
    let l = Listener::bind(&[sa("[::1]:0")]).unwrap();
    let remote = SocketAddr::new("::1".parse().unwrap(), port_of(&l));
    l.set_peer(
        net("::1/128"),
        PeerSecurity {
            md5: key("v6-key"),
            ..Default::default()
        },
    )
    .unwrap();
    let (_c, a) = must_connect(&l, &opts(remote, key("v6-key"))).await;
    assert_eq!(a.peer.ip(), "::1".parse::<IpAddr>().unwrap());
    must_not_connect(&l, &opts(remote, key("v6-wrong"))).await;
    must_not_connect(&l, &opts(remote, None)).await;
}

#[tokio::test]
async fn md5_v6_listen_range() {
    let l = Listener::bind(&[sa("[::1]:0")]).unwrap();
    let remote = SocketAddr::new("::1".parse().unwrap(), port_of(&l));
    l.set_peer(
        net("::/64"),
        PeerSecurity {
            md5: key("v6-range"),
            ..Default::default()
        },
    )
    .unwrap();
    let (_c, a) = must_connect(&l, &opts(remote, key("v6-range"))).await;
    assert_eq!(a.matched, Some(net("::/64")));
    must_not_connect(&l, &opts(remote, key("v6-other"))).await;
}

#[tokio::test]
async fn md5_dual_stack_listener_ipv4_peer() {
    let l = Listener::bind(&[sa("[::]:0")]).unwrap();
    let port = port_of(&l);
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: key("dual"),
            ..Default::default()
        },
    )
    .unwrap();
    l.set_peer(
        net("::1/128"),
        PeerSecurity {
            md5: key("dual6"),
            ..Default::default()
        },
    )
    .unwrap();
    let v4 = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    let (_c, a) = must_connect(&l, &opts(v4, key("dual"))).await;
    assert_eq!(
        a.peer.ip(),
        "127.0.0.1".parse::<IpAddr>().unwrap(),
        "canonical IPv4 peer"
    );
    assert_eq!(a.local.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(a.matched, Some(net("127.0.0.1/32")));
    must_not_connect(&l, &opts(v4, key("dual6"))).await;
    let v6 = SocketAddr::new("::1".parse().unwrap(), port);
    must_connect(&l, &opts(v6, key("dual6"))).await;
    // A v4-mapped prefix is the same entry as its IPv4 form.
    l.remove_peer(net("::ffff:127.0.0.1/128"))
        .unwrap()
        .expect("mapped form removes v4 entry");
    must_connect(&l, &opts(v4, None)).await;
}

#[tokio::test]
async fn md5_dual_stack_listener_ipv4_range() {
    let l = Listener::bind(&[sa("[::]:0")]).unwrap();
    let port = port_of(&l);
    l.set_peer(
        net("127.0.0.0/8"),
        PeerSecurity {
            md5: key("dual-range"),
            ..Default::default()
        },
    )
    .unwrap();
    let mut o = opts(
        SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        key("dual-range"),
    );
    o.local = Some(sa("127.0.0.7:0"));
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(a.matched, Some(net("127.0.0.0/8")));
    o.md5 = key("bad");
    must_not_connect(&l, &o).await;
}

#[tokio::test]
async fn gtsm_v4_sets_and_enforces_min_ttl() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let local = l.local_addrs()[0];
    let gtsm = TtlPolicy::Security { hops: 1 };
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: None,
            ttl: gtsm,
        },
    )
    .unwrap();
    let lsock = l.socket(local).unwrap();
    assert_eq!(
        sockopt::min_ttl_v4(lsock.as_fd()).unwrap(),
        255,
        "listener IP_MINTTL"
    );

    let mut o = opts(local, None);
    o.ttl = gtsm;
    let (c, a) = must_connect(&l, &o).await;
    for (who, fd) in [("client", c.as_fd()), ("accepted", a.stream.as_fd())] {
        assert_eq!(sockopt::ttl_v4(fd).unwrap(), 255, "{who} IP_TTL");
        assert_eq!(sockopt::min_ttl_v4(fd).unwrap(), 255, "{who} IP_MINTTL");
    }

    // A peer that sends with the default TTL (64) is below the minimum: SYN dropped.
    o.ttl = TtlPolicy::Default;
    must_not_connect(&l, &o).await;
    o.ttl = TtlPolicy::Ttl(254);
    must_not_connect(&l, &o).await;
}

#[tokio::test]
async fn gtsm_v4_multiple_hops_and_mixed_peers() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let local = l.local_addrs()[0];
    let lsock = l.socket(local).unwrap();
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: None,
            ttl: TtlPolicy::Security { hops: 3 },
        },
    )
    .unwrap();
    assert_eq!(sockopt::min_ttl_v4(lsock.as_fd()).unwrap(), 253);
    // 3 hops allowed: TTL 253 on arrival passes.
    let mut o = opts(local, None);
    o.ttl = TtlPolicy::Ttl(253);
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(sockopt::min_ttl_v4(a.stream.as_fd()).unwrap(), 253);
    assert_eq!(sockopt::ttl_v4(a.stream.as_fd()).unwrap(), 255);
    o.ttl = TtlPolicy::Ttl(252);
    must_not_connect(&l, &o).await;

    // Add a non-GTSM peer: the listener can no longer filter SYNs by TTL ...
    l.set_peer(net("127.0.0.2/32"), PeerSecurity::default())
        .unwrap();
    assert_eq!(sockopt::min_ttl_v4(lsock.as_fd()).unwrap(), 0);
    // ... but the GTSM peer's accepted socket still gets its minimum.
    o.ttl = TtlPolicy::Security { hops: 1 };
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(sockopt::min_ttl_v4(a.stream.as_fd()).unwrap(), 253);
    // And the non-GTSM peer gets none.
    let mut o2 = opts(local, None);
    o2.local = Some(sa("127.0.0.2:0"));
    let (_c, a) = must_connect(&l, &o2).await;
    assert_eq!(sockopt::min_ttl_v4(a.stream.as_fd()).unwrap(), 0);
    // Removing it restores listener filtering.
    l.remove_peer(net("127.0.0.2/32")).unwrap();
    assert_eq!(sockopt::min_ttl_v4(lsock.as_fd()).unwrap(), 253);
}

#[tokio::test]
async fn gtsm_v6_sets_and_enforces_min_hops() {
    let l = Listener::bind(&[sa("[::1]:0")]).unwrap();
    let local = l.local_addrs()[0];
    let gtsm = TtlPolicy::Security { hops: 1 };
    l.set_peer(
        net("::1/128"),
        PeerSecurity {
            md5: None,
            ttl: gtsm,
        },
    )
    .unwrap();
    assert_eq!(
        sockopt::min_hops_v6(l.socket(local).unwrap().as_fd()).unwrap(),
        255
    );
    let mut o = opts(local, None);
    o.ttl = gtsm;
    let (c, a) = must_connect(&l, &o).await;
    for (who, fd) in [("client", c.as_fd()), ("accepted", a.stream.as_fd())] {
        assert_eq!(
            sockopt::hops_v6(fd).unwrap(),
            255,
            "{who} IPV6_UNICAST_HOPS"
        );
        assert_eq!(
            sockopt::min_hops_v6(fd).unwrap(),
            255,
            "{who} IPV6_MINHOPCOUNT"
        );
    }
    o.ttl = TtlPolicy::Default;
    must_not_connect(&l, &o).await;
}

#[tokio::test]
async fn gtsm_dual_stack_ipv4_peer() {
    let l = Listener::bind(&[sa("[::]:0")]).unwrap();
    let local = l.local_addrs()[0];
    let gtsm = TtlPolicy::Security { hops: 1 };
    l.set_peer(
        net("127.0.0.1/32"),
        PeerSecurity {
            md5: None,
            ttl: gtsm,
        },
    )
    .unwrap();
    let lfd = l.socket(local).unwrap();
    assert_eq!(sockopt::min_ttl_v4(lfd.as_fd()).unwrap(), 255);
    assert_eq!(sockopt::min_hops_v6(lfd.as_fd()).unwrap(), 255);
    let mut o = opts(
        SocketAddr::new("127.0.0.1".parse().unwrap(), local.port()),
        None,
    );
    o.ttl = gtsm;
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(sockopt::ttl_v4(a.stream.as_fd()).unwrap(), 255);
    assert_eq!(sockopt::min_ttl_v4(a.stream.as_fd()).unwrap(), 255);
    o.ttl = TtlPolicy::Default;
    must_not_connect(&l, &o).await;
}

#[tokio::test]
async fn multihop_ttl_v4_and_v6() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let l = Listener::bind(&[sa(addr)]).unwrap();
        let local = l.local_addrs()[0];
        let peer = IpNet::from(local.ip());
        l.set_peer(
            peer,
            PeerSecurity {
                md5: None,
                ttl: TtlPolicy::Ttl(5),
            },
        )
        .unwrap();
        let mut o = opts(local, None);
        o.ttl = TtlPolicy::Ttl(5);
        let (c, a) = must_connect(&l, &o).await;
        for (who, fd) in [("client", c.as_fd()), ("accepted", a.stream.as_fd())] {
            if local.is_ipv4() {
                assert_eq!(sockopt::ttl_v4(fd).unwrap(), 5, "{who} IP_TTL");
                assert_eq!(sockopt::min_ttl_v4(fd).unwrap(), 0, "{who} IP_MINTTL");
            } else {
                assert_eq!(sockopt::hops_v6(fd).unwrap(), 5, "{who} IPV6_UNICAST_HOPS");
                assert_eq!(
                    sockopt::min_hops_v6(fd).unwrap(),
                    0,
                    "{who} IPV6_MINHOPCOUNT"
                );
            }
        }
        assert!(
            c.nodelay().unwrap() && a.stream.nodelay().unwrap(),
            "TCP_NODELAY"
        );
    }
}

#[tokio::test]
async fn source_binding_with_and_without_port() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let local = l.local_addrs()[0];
    let mut o = opts(local, None);
    o.local = Some(sa("127.0.0.5:0"));
    let (c, a) = must_connect(&l, &o).await;
    assert_eq!(a.peer.ip(), "127.0.0.5".parse::<IpAddr>().unwrap());
    assert_eq!(c.local_addr().unwrap(), a.peer);
    assert_eq!(a.matched, None, "unknown peer is reported as such");

    // A fixed source port: find a free one first.
    let port = std::net::TcpListener::bind("127.0.0.6:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    o.local = Some(SocketAddr::new("127.0.0.6".parse().unwrap(), port));
    let (_c, a) = must_connect(&l, &o).await;
    assert_eq!(a.peer, SocketAddr::new("127.0.0.6".parse().unwrap(), port));
}

#[tokio::test]
async fn listener_on_several_addresses() {
    let l = Listener::bind(&[sa("127.0.0.1:0"), sa("[::1]:0")]).unwrap();
    let addrs = l.local_addrs();
    assert_eq!(addrs.len(), 2);
    for remote in addrs {
        let (_c, a) = must_connect(&l, &opts(remote, None)).await;
        assert_eq!(a.local, remote);
    }
}

#[tokio::test]
async fn connect_errors() {
    // Family mismatch between source and destination.
    let mut o = opts(sa("127.0.0.1:179"), None);
    o.local = Some(sa("[::1]:0"));
    assert!(matches!(
        connect(&o).await,
        Err(TransportError::FamilyMismatch { .. })
    ));
    // Refused: a port with nothing listening (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = opts(SocketAddr::new("127.0.0.1".parse().unwrap(), port), None);
    let e = connect(&o).await.unwrap_err();
    assert!(matches!(e, TransportError::Connect { .. }), "{e}");
    assert!(e.to_string().contains("127.0.0.1"), "{e}");
    // Invalid TTL values.
    let mut o = opts(sa("127.0.0.1:179"), None);
    o.ttl = TtlPolicy::Ttl(0);
    assert!(matches!(
        connect(&o).await,
        Err(TransportError::InvalidTtl { .. })
    ));
    o.ttl = TtlPolicy::Security { hops: 0 };
    assert!(matches!(
        connect(&o).await,
        Err(TransportError::InvalidGtsmHops { .. })
    ));
    // No listen address.
    assert!(matches!(
        Listener::bind(&[]),
        Err(TransportError::NoListenAddress)
    ));
}

#[test]
fn listener_outside_runtime_is_an_error_not_a_panic() {
    assert!(matches!(
        Listener::bind(&[sa("127.0.0.1:0")]),
        Err(TransportError::NoRuntime)
    ));
}

#[test]
fn passwords_never_in_debug_output() {
    let o = opts(sa("127.0.0.1:179"), key("topsecret"));
    assert!(!format!("{o:?}").contains("topsecret"));
}

#[tokio::test]
async fn sync_peers_applies_a_new_peer_table() {
    let l = Listener::bind(&[sa("127.0.0.1:0")]).unwrap();
    let remote = l.local_addrs()[0];
    let sec = |k: &str| PeerSecurity {
        md5: key(k),
        ..Default::default()
    };
    l.sync_peers([
        (net("127.0.0.11/32"), sec("one")),
        (net("127.0.0.12/32"), sec("two")),
    ])
    .unwrap();
    assert_eq!(l.peer_count(), 2);
    let mut o11 = opts(remote, key("one"));
    o11.local = Some(sa("127.0.0.11:0"));
    must_connect(&l, &o11).await;

    // Reload: .11 removed (its key deleted), .12 keeps its key, .13 added as a range.
    l.sync_peers([
        (net("127.0.0.12/32"), sec("two")),
        (net("127.0.0.13/32"), sec("three")),
    ])
    .unwrap();
    assert_eq!(l.peer_count(), 2);
    assert!(l.peer_security("127.0.0.11".parse().unwrap()).is_none());
    must_not_connect(&l, &o11).await;
    let mut o12 = opts(remote, key("two"));
    o12.local = Some(sa("127.0.0.12:0"));
    must_connect(&l, &o12).await;
    let mut o13 = opts(remote, key("three"));
    o13.local = Some(sa("127.0.0.13:0"));
    must_connect(&l, &o13).await;
    l.sync_peers([]).unwrap();
    assert_eq!(l.peer_count(), 0);
}
