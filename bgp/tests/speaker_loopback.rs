//! Two tokio `Speaker`s on loopback (127.0.0.1 and 127.0.0.2, different ports) exchange
//! routes; the status snapshot shows the session and counters; route refresh; shutdown
//! sends an RFC 9003 message that the other side records. A peer that stops reading while
//! it asks for route refreshes loses its connection at the write queue bound.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wren_bgp::config::{ListenConfig, SpeakerConfig};
use wren_bgp::speaker::{Speaker, SpeakerOptions, SpeakerStatus};
use wren_bgp::wire::{
    AsPath, Capability, Community, Family, Message, Nlri, Open, Origin, PathAttributes,
    RouteRefresh, SessionContext, Update,
};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn wait_status(
    s: &Speaker,
    what: &str,
    mut pred: impl FnMut(&SpeakerStatus) -> bool,
) -> SpeakerStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let st = s.status().await.unwrap();
        if pred(&st) {
            return st;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}: {st:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_on_loopback() {
    // A: listens on 127.0.0.1 (port chosen by the kernel), B is a passive neighbour.
    let mut a_cfg = SpeakerConfig::from_toml_str(
        r#"
        asn = 65001
        router_id = "10.0.0.1"
        listen_addresses = ["127.0.0.1"]
        hold_time_secs = 30
        [[neighbor]]
        address = "127.0.0.2"
        remote_asn = 65002
        passive = true
        [[originate]]
        prefix = "10.1.0.0/24"
        communities = ["65001:7"]
        med = 5
        "#,
    )
    .unwrap();
    a_cfg.listen = Some(ListenConfig {
        addresses: vec![A],
        port: 0,
    });
    let (a, a_task) = Speaker::start(a_cfg, SpeakerOptions::default()).unwrap();
    let a_port = a.listen_addrs()[0].port();
    assert_ne!(a_port, 0);
    let mut a_best = a.subscribe_best_paths().await.unwrap();

    // B: no listener; connects from 127.0.0.2 to A's port.
    let b_cfg = SpeakerConfig::from_toml_str(&format!(
        r#"
        asn = 65002
        router_id = "10.0.0.2"
        listen = false
        hold_time_secs = 30
        [[neighbor]]
        address = "127.0.0.1"
        remote_asn = 65001
        port = {a_port}
        local_address = "127.0.0.2"
        "#
    ))
    .unwrap();
    let (b, b_task) = Speaker::start(b_cfg, SpeakerOptions::default()).unwrap();
    let attrs = PathAttributes {
        communities: vec![Community::new(65002, 9)],
        ..PathAttributes::default()
    };
    let p_b: IpNet = "10.2.0.0/24".parse().unwrap();
    b.originate(p_b, attrs).await.unwrap();

    // A learns B's route through the subscription.
    let change = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let c = a_best.recv().await.unwrap();
            if c.prefix == p_b {
                return c;
            }
        }
    })
    .await
    .expect("best path for 10.2.0.0/24 at A");
    let best = change.best.unwrap();
    assert_eq!(best.peer_address, Some(B));
    assert_eq!(
        best.next_hop,
        Some(B),
        "eBGP next hop is B's session address"
    );
    assert_eq!(change.multipath, vec![B]);
    assert!(best.attrs.communities.contains(&Community::new(65002, 9)));
    assert_eq!(
        best.attrs.as_path.as_ref().unwrap().first_asn(),
        Some(65002)
    );

    // B learns A's configured route, with its attributes.
    let st = wait_status(&b, "A's route at B", |s| {
        s.routes.iter().any(|r| r.prefix == "10.1.0.0/24")
    })
    .await;
    let r = st
        .routes
        .iter()
        .find(|r| r.prefix == "10.1.0.0/24")
        .unwrap();
    assert!(r.best);
    assert_eq!(r.source, "127.0.0.1");
    assert_eq!(r.attributes.communities, vec!["65001:7".to_owned()]);
    assert_eq!(r.attributes.as_path.as_deref(), Some("65001"));

    // Status at A: Established, negotiated, counters.
    let st = wait_status(&a, "counters at A", |s| {
        s.peers[0].prefixes_advertised >= 1 && s.peers[0].messages_out.update >= 2
    })
    .await;
    let p = &st.peers[0];
    assert_eq!(p.address, "127.0.0.2");
    assert_eq!(p.state, "Established");
    assert!(p.since_unix.is_some());
    let neg = p.negotiated.as_ref().unwrap();
    assert_eq!(neg.remote_asn, 65002);
    assert_eq!(neg.hold_time, 30);
    assert!(neg.four_octet_as && neg.route_refresh);
    assert_eq!(p.prefixes_received, 1);
    assert_eq!(p.prefixes_accepted, 1);
    assert_eq!(p.messages_in.open, 1);
    assert!(p.messages_in.keepalive >= 1);
    assert!(p.messages_in.update >= 2, "route + End-of-RIB");
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("\"state\":\"Established\""));

    // Route refresh from B: A answers with its routes again.
    let before = st.peers[0].messages_out.update;
    b.refresh(A).await.unwrap();
    wait_status(&a, "refresh answered", |s| {
        s.peers[0].messages_in.route_refresh == 1 && s.peers[0].messages_out.update > before
    })
    .await;

    // Withdraw at B reaches A.
    b.withdraw(p_b).await.unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let c = a_best.recv().await.unwrap();
            if c.prefix == p_b && c.best.is_none() {
                return;
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "withdrawal of 10.2.0.0/24 at A");

    // B shuts down with an RFC 9003 message; A records it.
    b.shutdown("wren-reflector shutting down").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), b_task)
        .await
        .expect("B stops")
        .unwrap();
    let st = wait_status(&a, "shutdown recorded at A", |s| {
        s.peers[0].state != "Established" && s.peers[0].last_error.is_some()
    })
    .await;
    let err = st.peers[0].last_error.as_ref().unwrap();
    let rec = err.received.as_ref().expect("received NOTIFICATION");
    assert_eq!(rec.code, 6);
    assert!(rec.text.contains("Administrative Shutdown"), "{rec:?}");
    assert_eq!(rec.message.as_deref(), Some("wren-reflector shutting down"));
    assert_eq!(st.peers[0].messages_in.notification, 1);
    assert!(b.status().await.is_err(), "B's handle reports it stopped");

    a.shutdown("test over").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), a_task)
        .await
        .expect("A stops")
        .unwrap();
}

/// A peer that never reads again after the OPEN exchange but keeps sending ROUTE-REFRESH
/// (each answered with the whole table): the speaker's write queue for it passes the bound
/// (256 KiB here) and the connection is dropped within seconds, not after the 8-minute send
/// hold timer; memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_does_not_read_is_dropped_at_the_write_queue_bound() {
    let mut cfg = SpeakerConfig::from_toml_str(
        r#"
        asn = 65001
        router_id = "10.0.0.1"
        listen_addresses = ["127.0.0.1"]
        [[neighbor]]
        address = "127.0.0.3"
        remote_asn = 65003
        passive = true
        "#,
    )
    .unwrap();
    cfg.listen = Some(ListenConfig {
        addresses: vec![A],
        port: 0,
    });
    let opts = SpeakerOptions {
        max_write_queue: 256 * 1024,
        ..SpeakerOptions::default()
    };
    let (a, a_task) = Speaker::start(cfg, opts).unwrap();
    let port = a.listen_addrs()[0].port();
    // 2000 prefixes with different MEDs: one UPDATE each, about 100 KB per table dump.
    for i in 0..2000u32 {
        let p: IpNet = format!("10.{}.{}.0/24", 100 + i / 256, i % 256)
            .parse()
            .unwrap();
        let attrs = PathAttributes {
            med: Some(i),
            ..PathAttributes::default()
        };
        a.originate(p, attrs).await.unwrap();
    }

    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock
        .connect(std::net::SocketAddr::new(A, port))
        .await
        .unwrap();
    let ctx = SessionContext::default();
    let open = Open::new(
        65003,
        90,
        Ipv4Addr::new(10, 0, 0, 3),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65003),
        ],
    );
    s.write_all(&Message::Open(open).to_bytes(&ctx).unwrap())
        .await
        .unwrap();
    // Read the OPEN and the KEEPALIVE (message types 1 and 4), then never read again.
    let mut buf = Vec::new();
    let mut types = Vec::new();
    while !(types.contains(&1u8) && types.contains(&4u8)) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut chunk))
            .await
            .expect("OPEN and KEEPALIVE from the speaker")
            .unwrap();
        assert!(n > 0, "speaker closed during the OPEN exchange");
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            if buf.len() < len {
                break;
            }
            types.push(buf[18]);
            buf.drain(..len);
        }
    }
    s.write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
        .await
        .unwrap();
    wait_status(&a, "Established", |st| st.peers[0].state == "Established").await;

    let mut burst = Message::Keepalive.to_bytes(&ctx).unwrap().to_vec();
    burst.extend_from_slice(
        &Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST))
            .to_bytes(&ctx)
            .unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = a.status().await.unwrap();
        if st.peers[0].state != "Established" {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection was not dropped: {:#?}",
            st.peers[0]
        );
        // A write error means the speaker closed the socket; the status will show it.
        let _ = s.write_all(&burst).await;
        // Pacing between requests (each read by the speaker is one table dump).
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let p = &st.peers[0];
    assert!(p.messages_in.route_refresh >= 1, "{p:#?}");
    let err = p.last_error.as_ref().expect("last error");
    assert!(err.sent.is_none(), "no NOTIFICATION could be sent: {err:?}");

    a.shutdown("test over").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), a_task)
        .await
        .expect("A stops")
        .unwrap();
}

/// Reads from `s` until a message of type `ty` arrives; returns its bytes.
async fn read_message(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, ty: u8) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        while buf.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            if buf.len() < len {
                break;
            }
            let m: Vec<u8> = buf.drain(..len).collect();
            if m[18] == ty {
                return m;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no message of type {ty} within 20 s"))
            .unwrap();
        assert!(
            n > 0,
            "connection closed while waiting for message type {ty}"
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A changed import policy for a peer without route refresh: the routes it sent under the
/// old policy are gone from the Adj-RIB-In (rejected), so the session is reset (Cease /
/// Other Configuration Change) to learn them again under the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_policy_change_resets_a_peer_without_route_refresh() {
    let toml = |policy: &str| {
        format!(
            r#"
            asn = 65001
            router_id = "10.0.0.1"
            listen_addresses = ["127.0.0.1"]
            [[neighbor]]
            address = "127.0.0.4"
            remote_asn = 65004
            passive = true
            import_policy = ["{policy}"]
            [[policy]]
            name = "none"
            default = "reject"
            [[policy]]
            name = "all"
            default = "accept"
            "#
        )
    };
    let mut cfg = SpeakerConfig::from_toml_str(&toml("none")).unwrap();
    cfg.listen = Some(ListenConfig {
        addresses: vec![A],
        port: 0,
    });
    let (a, a_task) = Speaker::start(cfg, SpeakerOptions::default()).unwrap();
    let port = a.listen_addrs()[0].port();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.4:0".parse().unwrap()).unwrap();
    let mut s = sock
        .connect(std::net::SocketAddr::new(A, port))
        .await
        .unwrap();
    let plain = SessionContext::default();
    // No route refresh capability.
    let open = Open::new(
        65004,
        90,
        Ipv4Addr::new(10, 0, 0, 4),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65004),
        ],
    );
    s.write_all(&Message::Open(open).to_bytes(&plain).unwrap())
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_message(&mut s, &mut buf, 1).await;
    s.write_all(&Message::Keepalive.to_bytes(&plain).unwrap())
        .await
        .unwrap();
    read_message(&mut s, &mut buf, 4).await;
    let ctx = SessionContext {
        four_octet_as: true,
        ..SessionContext::default()
    };
    let update = Update::new(
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(vec![65004])),
            next_hop: Some(Ipv4Addr::new(127, 0, 0, 4)),
            ..PathAttributes::default()
        },
        vec![Nlri::new("10.50.0.0/24".parse().unwrap())],
    );
    s.write_all(&Message::Update(update).to_bytes(&ctx).unwrap())
        .await
        .unwrap();
    wait_status(&a, "the UPDATE counted and rejected", |st| {
        st.peers[0].messages_in.update >= 1 && st.peers[0].prefixes_accepted == 0
    })
    .await;

    let e = a.refresh(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4))).await;
    assert!(
        e.as_ref()
            .is_err_and(|e| e.to_string().contains("did not advertise route refresh")),
        "{e:?}"
    );
    let new = SpeakerConfig::from_toml_str(&toml("all")).unwrap();
    a.update_peer(new.neighbors[0].clone()).await.unwrap();
    let n = read_message(&mut s, &mut buf, 3).await;
    assert_eq!((n[19], n[20]), (6, 6), "Cease / Other Configuration Change");

    a.shutdown("test over").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), a_task)
        .await
        .expect("A stops")
        .unwrap();
}
