//! Unit tests, one group per RFC 4271 section 8 transition group, plus full sessions over
//! the [`Pair`] harness.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::testing::{Pair, Side};
use super::*;
use crate::wire::error::{cease_subcode, code, fsm_subcode, open_subcode};
use crate::wire::{
    AddPathDirection, AddPathEntry, Afi, Capability, Family, GracefulRestartCap, Message,
    Notification, Open, OptParam, RouteRefresh, RouteRefreshSubtype, Safi, Update,
};

const LOCAL_AS: u32 = 65001;
const PEER_AS: u32 = 65002;

fn id(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cfg() -> PeerConfig {
    PeerConfig::new(LOCAL_AS, id("10.0.0.1"), PeerAs::Exact(PEER_AS))
}

fn remote_open(asn: u32, bgp_id: &str, hold: u16) -> Open {
    Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
        hold_time: hold,
        bgp_id: id(bgp_id),
        params: vec![OptParam::Capabilities(vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ])],
        extended_params: false,
    }
}

fn gr_cap(n: bool, restarting: bool) -> GracefulRestartCap {
    GracefulRestartCap {
        restart_state: restarting,
        notification: n,
        restart_time: 120,
        families: vec![(Family::IPV4_UNICAST, true)],
    }
}

fn with_cap(mut open: Open, cap: Capability) -> Open {
    if let Some(OptParam::Capabilities(caps)) = open.params.first_mut() {
        caps.push(cap);
    }
    open
}

fn drain(p: &mut Peer) -> Vec<Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

fn sent(actions: &[Action]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn notifications(actions: &[Action]) -> Vec<Notification> {
    sent(actions)
        .into_iter()
        .filter_map(|m| match m {
            Message::Notification(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn states(actions: &[Action]) -> Vec<State> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

fn downs(actions: &[Action]) -> Vec<DownInfo> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SessionDown(i) => Some((**i).clone()),
            _ => None,
        })
        .collect()
}

fn connect_id(actions: &[Action]) -> ConnId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Connect { conn } => Some(*conn),
            _ => None,
        })
        .expect("a Connect action")
}

/// ManualStart and a completed outbound TCP connection: the peer is in OpenSent.
fn open_sent(config: PeerConfig, t: Instant) -> (Peer, ConnId) {
    let mut p = Peer::new(config, 7).unwrap();
    p.handle(Event::ManualStart, t);
    let conn = connect_id(&drain(&mut p));
    p.handle(Event::TcpConnected { conn }, t);
    (p, conn)
}

/// A peer Established with `open` from the remote.
fn established(config: PeerConfig, open: Open, t: Instant) -> (Peer, ConnId) {
    let (mut p, conn) = open_sent(config, t);
    p.handle(Event::BgpOpen { conn, open }, t);
    p.handle(Event::KeepAliveMsg { conn }, t);
    assert_eq!(p.state(), State::Established);
    drain(&mut p);
    (p, conn)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ----- OPEN exchange and negotiation ---------------------------------------------------------

#[test]
fn open_exchange_reaches_established_with_keepalive_a_third_of_min_hold() {
    let t = Instant::now();
    let mut p = Peer::new(cfg(), 7).unwrap();
    p.handle(Event::ManualStart, t);
    let a = drain(&mut p);
    let conn = connect_id(&a);
    assert_eq!(states(&a), vec![State::Connect]);
    p.handle(Event::TcpConnected { conn }, t);
    let a = drain(&mut p);
    assert_eq!(states(&a), vec![State::OpenSent]);
    let Message::Open(ours) = &sent(&a)[0] else {
        panic!("OPEN expected")
    };
    assert_eq!(ours.hold_time, 90);
    // OpenSent runs the large hold timer (4 minutes).
    assert_eq!(p.poll_timeout(), Some(t + secs(240)));

    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 30),
        },
        t,
    );
    let a = drain(&mut p);
    assert_eq!(states(&a), vec![State::OpenConfirm]);
    assert_eq!(sent(&a), vec![Message::Keepalive]);

    let t1 = t + secs(1);
    p.handle(Event::KeepAliveMsg { conn }, t1);
    let a = drain(&mut p);
    assert_eq!(states(&a), vec![State::Established]);
    let neg = a
        .iter()
        .find_map(|x| match x {
            Action::SessionEstablished { negotiated, .. } => Some(negotiated.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(neg.hold_time, 30);
    assert_eq!(neg.keepalive_time, 10);
    assert_eq!(neg.remote_asn, PEER_AS);
    assert!(neg.four_octet_as && neg.route_refresh);
    assert_eq!(p.negotiated().map(|n| n.hold_time), Some(30));
    // Keepalive timer from the OpenConfirm entry (t + 10), hold from the KEEPALIVE (t1 + 30).
    assert_eq!(p.next_timer(), Some((t + secs(10), Timer::Keepalive(conn))));
    p.handle_timeout(t + secs(10));
    assert_eq!(sent(&drain(&mut p)), vec![Message::Keepalive]);
    assert_eq!(p.next_timer(), Some((t + secs(20), Timer::Keepalive(conn))));
}

/// RFC 4271 8.2.2: each UPDATE sent restarts the KeepaliveTimer; nothing is sent for it.
#[test]
fn update_sent_restarts_the_keepalive_timer() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 30), t);
    assert_eq!(p.next_timer(), Some((t + secs(10), Timer::Keepalive(conn))));
    p.handle(Event::UpdateSent { conn }, t + secs(7));
    assert!(drain(&mut p).is_empty());
    assert_eq!(p.next_timer(), Some((t + secs(17), Timer::Keepalive(conn))));
    p.handle_timeout(t + secs(10));
    assert!(
        sent(&drain(&mut p)).is_empty(),
        "no KEEPALIVE 3 s after an UPDATE"
    );
    p.handle_timeout(t + secs(17));
    assert_eq!(sent(&drain(&mut p)), vec![Message::Keepalive]);
    // Unknown connection, or hold time 0 (no keepalive timer): nothing happens.
    p.handle(Event::UpdateSent { conn: ConnId(99) }, t + secs(18));
    assert_eq!(p.next_timer(), Some((t + secs(27), Timer::Keepalive(conn))));
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 0), t);
    p.handle(Event::UpdateSent { conn }, t + secs(1));
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn configured_keepalive_is_capped_at_a_third_of_the_hold_time() {
    let t = Instant::now();
    let mut c = cfg();
    c.keepalive = Some(20);
    let (p, _) = established(c.clone(), remote_open(PEER_AS, "10.0.0.2", 30), t);
    assert_eq!(p.negotiated().unwrap().keepalive_time, 10);
    c.keepalive = Some(5);
    let (p, _) = established(c, remote_open(PEER_AS, "10.0.0.2", 30), t);
    assert_eq!(p.negotiated().unwrap().keepalive_time, 5);
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let t = Instant::now();
    let mut p = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 0), t).0;
    assert_eq!(p.negotiated().unwrap().hold_time, 0);
    assert_eq!(p.poll_timeout(), None);
    p.handle_timeout(t + secs(100_000));
    assert!(drain(&mut p).is_empty());
    assert_eq!(p.state(), State::Established);
}

#[test]
fn our_open_uses_as_trans_for_a_four_octet_as() {
    let c = PeerConfig::new(4_200_000_001, id("10.0.0.1"), PeerAs::Any);
    let open = build_open(&c);
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_001);
    assert!(open
        .capabilities()
        .any(|c| *c == Capability::FourOctetAs(4_200_000_001)));
    let small = build_open(&cfg());
    assert_eq!(small.my_as, 65001);
}

#[test]
fn two_octet_peer_negotiates_without_four_octet_as_and_implies_ipv4_unicast() {
    let local = build_open(&cfg());
    let remote = Open {
        version: 4,
        my_as: 65002,
        hold_time: 180,
        bgp_id: id("10.0.0.2"),
        params: Vec::new(),
        extended_params: false,
    };
    let n = negotiate(&local, &remote);
    assert!(!n.four_octet_as && !n.rx.four_octet_as && !n.tx.four_octet_as);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
    assert_eq!(n.hold_time, 90);
    assert_eq!(n.keepalive_time, 30);
    assert!(!n.route_refresh && !n.extended_message);
    assert_eq!(n.remote_asn, 65002);
    // And a 4-octet local AS peering with it is accepted via AS_TRANS.
    let mut c = PeerConfig::new(4_200_000_001, id("10.0.0.1"), PeerAs::Exact(65002));
    c.hold_time = 90;
    assert!(validate_open(&c, &remote).is_ok());
}

#[test]
fn add_path_and_extended_message_negotiate_per_direction() {
    let mut c = cfg();
    c.add_path = vec![
        AddPathEntry {
            family: Family::IPV4_UNICAST,
            direction: AddPathDirection::Both,
        },
        AddPathEntry {
            family: Family::IPV6_UNICAST,
            direction: AddPathDirection::Receive,
        },
    ];
    let local = build_open(&c);
    let remote = with_cap(
        with_cap(
            remote_open(PEER_AS, "10.0.0.2", 90),
            Capability::ExtendedMessage,
        ),
        Capability::AddPath(vec![
            AddPathEntry {
                family: Family::IPV4_UNICAST,
                direction: AddPathDirection::Receive,
            },
            AddPathEntry {
                family: Family::IPV6_UNICAST,
                direction: AddPathDirection::Both,
            },
        ]),
    );
    let n = negotiate(&local, &remote);
    assert_eq!(n.add_path_tx, vec![Family::IPV4_UNICAST]);
    assert_eq!(n.add_path_rx, vec![Family::IPV6_UNICAST]);
    assert!(n.tx.add_path(Family::IPV4_UNICAST) && !n.rx.add_path(Family::IPV4_UNICAST));
    assert!(n.extended_message && n.rx.extended_message && n.tx.extended_message);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
}

// ----- OPEN validation -----------------------------------------------------------------------

fn rejected(open: Open) -> (Vec<Action>, Peer) {
    let t = Instant::now();
    let (mut p, conn) = open_sent(cfg(), t);
    drain(&mut p);
    p.handle(Event::BgpOpen { conn, open }, t);
    (drain(&mut p), p)
}

#[test]
fn bad_peer_as_is_open_error_2_2() {
    let (a, p) = rejected(remote_open(65099, "10.0.0.2", 90));
    assert_eq!(
        notifications(&a),
        vec![Notification::new(2, open_subcode::BAD_PEER_AS, &[])]
    );
    assert!(a.iter().any(|x| matches!(x, Action::Close { .. })));
    assert_eq!(p.state(), State::Idle);
    let last = p.last_down().unwrap();
    assert_eq!(last.reason, DownReason::OpenRejected);
    assert!(last.detail.as_deref().unwrap().contains("65099"));
    assert_eq!(p.connect_retry_counter(), 1);
}

#[test]
fn hold_time_2_is_open_error_2_6() {
    let (a, _) = rejected(remote_open(PEER_AS, "10.0.0.2", 2));
    assert_eq!(
        notifications(&a),
        vec![Notification::new(
            2,
            open_subcode::UNACCEPTABLE_HOLD_TIME,
            &[]
        )]
    );
    let (a, _) = rejected(remote_open(PEER_AS, "10.0.0.2", 1));
    assert_eq!(
        notifications(&a)[0].subcode,
        open_subcode::UNACCEPTABLE_HOLD_TIME
    );
    let (a, p) = rejected(remote_open(PEER_AS, "10.0.0.2", 3));
    assert!(notifications(&a).is_empty());
    assert_eq!(p.state(), State::OpenConfirm);
}

#[test]
fn ibgp_identifier_equal_to_ours_is_open_error_2_3_but_ebgp_may_share_it() {
    let t = Instant::now();
    let c = PeerConfig::new(LOCAL_AS, id("10.0.0.1"), PeerAs::Internal);
    let (mut p, conn) = open_sent(c, t);
    drain(&mut p);
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(LOCAL_AS, "10.0.0.1", 90),
        },
        t,
    );
    assert_eq!(
        notifications(&drain(&mut p)),
        vec![Notification::new(2, open_subcode::BAD_BGP_IDENTIFIER, &[])]
    );
    let (a, p) = rejected(remote_open(PEER_AS, "10.0.0.1", 90));
    assert!(
        notifications(&a).is_empty(),
        "RFC 6286: eBGP peers may share the identifier"
    );
    assert_eq!(p.state(), State::OpenConfirm);
    let (a, _) = rejected(remote_open(PEER_AS, "0.0.0.0", 90));
    assert_eq!(
        notifications(&a)[0].subcode,
        open_subcode::BAD_BGP_IDENTIFIER
    );
}

#[test]
fn unsupported_version_and_optional_parameter_are_rejected() {
    let mut o = remote_open(PEER_AS, "10.0.0.2", 90);
    o.version = 3;
    let (a, _) = rejected(o);
    assert_eq!(notifications(&a), vec![Notification::new(2, 1, &[0, 4])]);
    let mut o = remote_open(PEER_AS, "10.0.0.2", 90);
    o.params.push(OptParam::Unknown {
        param_type: 9,
        value: Default::default(),
    });
    let (a, _) = rejected(o);
    assert_eq!(
        notifications(&a)[0],
        Notification::new(2, open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER, &[])
    );
}

#[test]
fn my_as_disagreeing_with_the_four_octet_capability_is_bad_peer_as() {
    let mut o = remote_open(PEER_AS, "10.0.0.2", 90);
    o.my_as = 65003;
    let (a, _) = rejected(o);
    assert_eq!(notifications(&a)[0].subcode, open_subcode::BAD_PEER_AS);
}

#[test]
fn peer_as_policies() {
    assert!(PeerAs::Internal.accepts(1, 1) && !PeerAs::Internal.accepts(2, 1));
    assert!(PeerAs::External.accepts(2, 1) && !PeerAs::External.accepts(1, 1));
    assert!(PeerAs::Any.accepts(7, 1));
    assert!(PeerAs::Exact(5).accepts(5, 1) && !PeerAs::Exact(5).accepts(6, 1));
}

#[test]
fn invalid_configs_are_refused_with_the_fix() {
    let mut c = cfg();
    c.hold_time = 2;
    let e = Peer::new(c, 0).unwrap_err();
    assert_eq!(e, ConfigError::HoldTime(2));
    assert!(e.to_string().contains("use 0 or >= 3"));
    let c = PeerConfig::new(LOCAL_AS, Ipv4Addr::UNSPECIFIED, PeerAs::Any);
    assert_eq!(Peer::new(c, 0).unwrap_err(), ConfigError::LocalId);
    let mut c = cfg();
    c.connect_retry = Backoff::fixed(Duration::ZERO);
    assert!(matches!(
        Peer::new(c, 0).unwrap_err(),
        ConfigError::Backoff(_)
    ));
}

// ----- unexpected messages (RFC 6608 subcodes) ----------------------------------------------

#[test]
fn keepalive_in_open_sent_is_fsm_error_5_1() {
    let t = Instant::now();
    let (mut p, conn) = open_sent(cfg(), t);
    drain(&mut p);
    p.handle(Event::KeepAliveMsg { conn }, t);
    let a = drain(&mut p);
    assert_eq!(
        notifications(&a),
        vec![Notification::new(code::FSM, fsm_subcode::OPEN_SENT, &[])]
    );
    assert_eq!(p.state(), State::Idle);
}

#[test]
fn update_in_open_sent_is_5_1_and_in_open_confirm_is_5_2() {
    let t = Instant::now();
    let (mut p, conn) = open_sent(cfg(), t);
    drain(&mut p);
    p.handle(
        Event::UpdateMsg {
            conn,
            update: Update::default(),
        },
        t,
    );
    assert_eq!(
        notifications(&drain(&mut p))[0],
        Notification::new(5, 1, &[])
    );

    let (mut p, conn) = open_sent(cfg(), t);
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    drain(&mut p);
    p.handle(
        Event::UpdateMsg {
            conn,
            update: Update::default(),
        },
        t,
    );
    let a = drain(&mut p);
    assert_eq!(
        notifications(&a),
        vec![Notification::new(code::FSM, fsm_subcode::OPEN_CONFIRM, &[])]
    );
    assert!(downs(&a).is_empty(), "no session was up");
}

#[test]
fn open_in_established_is_5_3_and_route_refresh_in_open_confirm_is_5_2() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    let a = drain(&mut p);
    assert_eq!(
        notifications(&a),
        vec![Notification::new(5, fsm_subcode::ESTABLISHED, &[])]
    );
    assert_eq!(downs(&a)[0].reason, DownReason::ProtocolError);

    let (mut p, conn) = open_sent(cfg(), t);
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    drain(&mut p);
    let rr = RouteRefresh {
        afi: Afi::IPV4,
        subtype: RouteRefreshSubtype::Request,
        safi: Safi::UNICAST,
    };
    p.handle(Event::RouteRefreshMsg { conn, refresh: rr }, t);
    assert_eq!(
        notifications(&drain(&mut p)),
        vec![Notification::new(5, 2, &[])]
    );
}

#[test]
fn decode_errors_send_their_notification_and_reset() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    let n = Notification::new(code::UPDATE_MESSAGE, 1, &[]);
    p.handle(
        Event::UpdateMsgErr {
            conn,
            notification: n.clone(),
        },
        t,
    );
    let a = drain(&mut p);
    assert_eq!(notifications(&a), vec![n.clone()]);
    let d = &downs(&a)[0];
    assert_eq!(
        (d.reason, d.sent.clone()),
        (DownReason::ProtocolError, Some(n))
    );
    assert_eq!(p.state(), State::Idle);
}

// ----- timers ----------------------------------------------------------------------------------

#[test]
fn hold_timer_expiry_sends_notification_4_0() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 30), t);
    // KEEPALIVEs from the peer keep it up ...
    for i in 1..=10 {
        p.handle(Event::KeepAliveMsg { conn }, t + secs(20 * i));
        p.handle_timeout(t + secs(20 * i));
    }
    drain(&mut p);
    assert_eq!(p.state(), State::Established);
    // ... silence for 30 s does not.
    let last = t + secs(200);
    p.handle_timeout(last + secs(29));
    assert!(notifications(&drain(&mut p)).is_empty());
    p.handle_timeout(last + secs(30));
    let a = drain(&mut p);
    assert_eq!(
        notifications(&a),
        vec![Notification::new(code::HOLD_TIMER_EXPIRED, 0, &[])]
    );
    assert_eq!(downs(&a)[0].reason, DownReason::HoldTimerExpired);
    assert!(a.iter().any(|x| *x == Action::Close { conn }));
    assert!(states(&a).contains(&State::Idle));
}

#[test]
fn hold_timer_in_open_sent_is_the_large_value() {
    let t = Instant::now();
    let (mut p, _) = open_sent(cfg(), t);
    drain(&mut p);
    p.handle_timeout(t + secs(239));
    assert!(drain(&mut p).is_empty());
    p.handle_timeout(t + secs(240));
    assert_eq!(
        notifications(&drain(&mut p)),
        vec![Notification::new(4, 0, &[])]
    );
}

#[test]
fn delay_open_waits_then_sends_open() {
    let t = Instant::now();
    let mut c = cfg();
    c.delay_open = Some(secs(5));
    let (mut p, _) = open_sent(c, t);
    let a = drain(&mut p);
    assert!(sent(&a).is_empty(), "DelayOpen: no OPEN yet");
    assert_eq!(p.state(), State::Connect);
    p.handle_timeout(t + secs(5));
    let a = drain(&mut p);
    assert!(matches!(sent(&a).as_slice(), [Message::Open(_)]));
    assert_eq!(p.state(), State::OpenSent);
}

#[test]
fn open_received_while_delay_open_runs_sends_open_and_keepalive() {
    let t = Instant::now();
    let mut c = cfg();
    c.delay_open = Some(secs(5));
    let (mut p, conn) = open_sent(c, t);
    drain(&mut p);
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t + secs(1),
    );
    let a = drain(&mut p);
    let s = sent(&a);
    assert!(matches!(
        s.as_slice(),
        [Message::Open(_), Message::Keepalive]
    ));
    assert_eq!(p.state(), State::OpenConfirm);
    // The DelayOpenTimer is gone: nothing more at t + 5.
    p.handle_timeout(t + secs(5));
    assert!(sent(&drain(&mut p))
        .iter()
        .all(|m| !matches!(m, Message::Open(_))));
}

#[test]
fn keepalive_while_delay_open_runs_is_fsm_error_unspecified() {
    let t = Instant::now();
    let mut c = cfg();
    c.delay_open = Some(secs(5));
    let (mut p, conn) = open_sent(c, t);
    drain(&mut p);
    p.handle(Event::KeepAliveMsg { conn }, t);
    assert_eq!(
        notifications(&drain(&mut p)),
        vec![Notification::new(5, 0, &[])]
    );
}

#[test]
fn send_hold_timer_expires_after_max_8_minutes_2_hold() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    // The peer keeps sending KEEPALIVEs, but our writes are stuck.
    p.handle(Event::SendBlocked { conn, since: t }, t);
    for s in (10..480).step_by(10) {
        p.handle(Event::KeepAliveMsg { conn }, t + secs(s));
        p.handle(
            Event::SendBlocked {
                conn,
                since: t + secs(s),
            },
            t + secs(s),
        );
        p.handle_timeout(t + secs(s));
    }
    assert_eq!(p.state(), State::Established);
    drain(&mut p);
    p.handle_timeout(t + secs(480));
    let a = drain(&mut p);
    assert_eq!(
        notifications(&a),
        vec![Notification::new(code::SEND_HOLD_TIMER_EXPIRED, 0, &[])]
    );
    assert_eq!(downs(&a)[0].reason, DownReason::SendHoldTimerExpired);

    // With hold 300 the send hold time is 600 s; progress resets it.
    let mut c = cfg();
    c.hold_time = 300;
    let (mut p, conn) = established(c, remote_open(PEER_AS, "10.0.0.2", 300), t);
    p.handle(Event::SendBlocked { conn, since: t }, t);
    assert_eq!(
        p.next_timer(),
        Some((t + secs(100), Timer::Keepalive(conn)))
    );
    p.handle(Event::SendProgress { conn }, t + secs(50));
    p.handle(
        Event::SendBlocked {
            conn,
            since: t + secs(60),
        },
        t + secs(60),
    );
    for s in (100..660).step_by(100) {
        p.handle(Event::KeepAliveMsg { conn }, t + secs(s));
        p.handle_timeout(t + secs(s));
    }
    assert_eq!(p.state(), State::Established);
    p.handle_timeout(t + secs(660));
    assert_eq!(
        notifications(&drain(&mut p)).last(),
        Some(&Notification::new(8, 0, &[]))
    );
}

#[test]
fn connect_retry_backoff_is_exponential_with_bounded_jitter() {
    let t = Instant::now();
    let mut c = cfg();
    c.connect_retry = Backoff::new(secs(5), secs(60));
    let mut p = Peer::new(c, 42).unwrap();
    p.handle(Event::ManualStart, t);
    let mut conn = connect_id(&drain(&mut p));
    let mut now = t;
    let mut intervals = Vec::new();
    for _ in 0..7 {
        let (at, timer) = p.next_timer().unwrap();
        assert_eq!(timer, Timer::ConnectRetry);
        intervals.push(at - now);
        now = at;
        p.handle_timeout(now);
        let a = drain(&mut p);
        // The stuck attempt is abandoned and a new one made.
        assert!(a.contains(&Action::Close { conn }));
        conn = connect_id(&a);
        assert_eq!(p.state(), State::Connect);
    }
    let bases = [5, 10, 20, 40, 60, 60, 60];
    for (d, base) in intervals.iter().zip(bases) {
        let base = secs(base);
        assert!(
            *d >= base.mul_f64(0.75) && *d < base,
            "{d:?} not in [0.75, 1) x {base:?}"
        );
    }
    // Jitter actually varies.
    assert_ne!(intervals[4], intervals[5]);
    // Deterministic for a seed.
    let mut c2 = cfg();
    c2.connect_retry = Backoff::new(secs(5), secs(60));
    let mut q = Peer::new(c2, 42).unwrap();
    q.handle(Event::ManualStart, t);
    assert_eq!(q.poll_timeout(), Some(t + intervals[0]));
}

#[test]
fn failed_connect_goes_active_and_retries_after_the_timer() {
    let t = Instant::now();
    let mut p = Peer::new(cfg(), 3).unwrap();
    p.handle(Event::ManualStart, t);
    let conn = connect_id(&drain(&mut p));
    p.handle(Event::TcpConnectionFails { conn }, t + secs(1));
    let a = drain(&mut p);
    assert_eq!(states(&a), vec![State::Active]);
    let (at, timer) = p.next_timer().unwrap();
    assert_eq!(timer, Timer::ConnectRetry);
    // Second interval of the backoff: base 10 s from the failure.
    assert!(at >= t + secs(1) + secs(10).mul_f64(0.75) && at < t + secs(11));
    p.handle_timeout(at);
    let a = drain(&mut p);
    assert_eq!(states(&a), vec![State::Connect]);
    assert_ne!(connect_id(&a), conn);
    assert_eq!(p.last_down().unwrap().reason, DownReason::ConnectionLost);
}

#[test]
fn passive_peer_waits_in_active_and_accepts() {
    let t = Instant::now();
    let mut c = cfg();
    c.passive = true;
    let mut p = Peer::new(c, 3).unwrap();
    assert_eq!(p.accept(t), None, "Idle refuses connections");
    p.handle(Event::ManualStart, t);
    let a = drain(&mut p);
    assert_eq!(states(&a), vec![State::Active]);
    assert!(!a.iter().any(|x| matches!(x, Action::Connect { .. })));
    assert_eq!(p.poll_timeout(), None);
    let conn = p.accept(t).unwrap();
    let a = drain(&mut p);
    assert!(matches!(sent(&a).as_slice(), [Message::Open(_)]));
    assert_eq!(p.state(), State::OpenSent);
    // A TCP failure in OpenSent goes back to Active.
    p.handle(Event::TcpConnectionFails { conn }, t);
    assert_eq!(p.state(), State::Active);
    // No longer passive: it connects at once.
    let mut active = p.config().clone();
    active.passive = false;
    p.set_config(active, t).unwrap();
    drain(&mut p);
    assert_eq!(p.state(), State::Connect);
}

#[test]
fn idle_hold_damps_repeated_failures_exponentially() {
    let t = Instant::now();
    let mut c = cfg();
    c.idle_hold = Some(Backoff::new(secs(4), secs(64)));
    let mut p = Peer::new(c, 9).unwrap();
    p.handle(Event::ManualStart, t);
    let mut now = t;
    let mut holds = Vec::new();
    for _ in 0..4 {
        let conn = connect_id(&drain(&mut p));
        p.handle(Event::TcpConnected { conn }, now);
        p.handle(
            Event::BgpOpen {
                conn,
                open: remote_open(65099, "10.0.0.2", 90),
            },
            now,
        );
        assert_eq!(p.state(), State::Idle);
        assert_eq!(
            p.accept(now),
            None,
            "IdleHoldTimer running: connections refused"
        );
        let (at, timer) = p.next_timer().unwrap();
        assert_eq!(timer, Timer::IdleHold);
        holds.push(at - now);
        // AutomaticStart is ignored while damping.
        p.handle(Event::AutomaticStart, now);
        assert_eq!(p.state(), State::Idle);
        now = at;
        p.handle_timeout(now);
        assert_eq!(p.state(), State::Connect);
    }
    for (d, base) in holds.iter().zip([4, 8, 16, 32]) {
        assert!(
            *d >= secs(base).mul_f64(0.75) && *d < secs(base),
            "{d:?} vs {base}"
        );
    }
    assert_eq!(p.connect_retry_counter(), 4);
}

// ----- stop, notifications, graceful restart ---------------------------------------------------

#[test]
fn manual_stop_sends_cease_admin_shutdown_with_rfc9003_message() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    p.handle(
        Event::ManualStop(StopReason::AdminShutdown {
            message: "maintenance 42".into(),
        }),
        t,
    );
    let a = drain(&mut p);
    let mut data = vec![14u8];
    data.extend_from_slice(b"maintenance 42");
    let n = Notification::new(code::CEASE, cease_subcode::ADMINISTRATIVE_SHUTDOWN, &data);
    assert_eq!(notifications(&a), vec![n.clone()]);
    assert_eq!(shutdown_message(&n).as_deref(), Some("maintenance 42"));
    let d = &downs(&a)[0];
    assert_eq!(
        (d.conn, d.reason, d.gr_eligible),
        (conn, DownReason::ManualStop, false)
    );
    assert_eq!(p.state(), State::Idle);
    assert!(!p.is_admin_up());
    assert_eq!(
        p.poll_timeout(),
        None,
        "no automatic restart after ManualStop"
    );
    assert_eq!(p.accept(t), None);
}

#[test]
fn long_shutdown_communication_is_cut_and_read_back() {
    let long = "é".repeat(200); // 400 octets
    let n = stop_notification(&StopReason::AdminShutdown { message: long }, false);
    assert_eq!(n.data[0], 254);
    assert_eq!(shutdown_message(&n).unwrap().chars().count(), 127);
    let hard = stop_notification(
        &StopReason::AdminShutdown {
            message: "é".into(),
        },
        true,
    );
    assert!(is_hard_reset(&hard));
    assert_eq!(shutdown_message(&hard).as_deref(), Some("é"));
    assert_eq!(shutdown_message(&Notification::new(6, 2, &[9, b'x'])), None);
}

#[test]
fn notification_received_in_established_ends_the_session() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    let n = Notification::new(6, 2, &[3, b'b', b'y', b'e']);
    p.handle(
        Event::NotifMsg {
            conn,
            notification: n.clone(),
        },
        t,
    );
    let a = drain(&mut p);
    assert!(notifications(&a).is_empty(), "never answer a NOTIFICATION");
    let d = &downs(&a)[0];
    assert_eq!(
        (d.reason, d.received.clone()),
        (DownReason::NotificationReceived, Some(n.clone()))
    );
    assert_eq!(shutdown_message(&n).as_deref(), Some("bye"));
    // Automatic restart after the idle hold.
    assert_eq!(p.next_timer().map(|x| x.1), Some(Timer::IdleHold));
}

#[test]
fn max_prefix_sends_cease_1_with_rfc4486_data_and_stays_down() {
    let t = Instant::now();
    let (mut p, _) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    p.handle(
        Event::MaxPrefixExceeded {
            family: Family::IPV6_UNICAST,
            limit: 1000,
        },
        t,
    );
    let a = drain(&mut p);
    assert_eq!(
        notifications(&a),
        vec![Notification::new(
            6,
            cease_subcode::MAX_PREFIXES_REACHED,
            &[0, 2, 1, 0, 0, 0x03, 0xe8]
        )]
    );
    assert_eq!(downs(&a)[0].reason, DownReason::MaxPrefix);
    assert_eq!(p.poll_timeout(), None);
    assert!(!p.is_admin_up());
    p.handle(Event::ManualStart, t + secs(1));
    assert_eq!(p.state(), State::Connect);
}

#[test]
fn max_prefix_with_restart_timer_restarts() {
    let t = Instant::now();
    let mut c = cfg();
    c.max_prefix_restart = Some(secs(300));
    let (mut p, _) = established(c, remote_open(PEER_AS, "10.0.0.2", 90), t);
    p.handle(
        Event::MaxPrefixExceeded {
            family: Family::IPV4_UNICAST,
            limit: 10,
        },
        t,
    );
    drain(&mut p);
    assert_eq!(p.next_timer(), Some((t + secs(300), Timer::IdleHold)));
    p.handle(Event::AutomaticStart, t + secs(10));
    assert_eq!(p.state(), State::Idle);
    p.handle_timeout(t + secs(300));
    assert_eq!(p.state(), State::Connect);
}

fn gr_config(n: bool) -> PeerConfig {
    let mut c = cfg();
    c.graceful_restart = Some(gr_cap(n, false));
    c
}

#[test]
fn tcp_failure_with_graceful_restart_is_gr_eligible() {
    let t = Instant::now();
    let open = with_cap(
        remote_open(PEER_AS, "10.0.0.2", 90),
        Capability::GracefulRestart(gr_cap(false, false)),
    );
    let (mut p, conn) = established(gr_config(false), open.clone(), t);
    p.handle(Event::TcpConnectionFails { conn }, t);
    let d = &downs(&drain(&mut p))[0];
    assert_eq!(
        (d.reason, d.gr_eligible),
        (DownReason::ConnectionLost, true)
    );

    // Without the N bit a NOTIFICATION ends GR.
    let (mut p, conn) = established(gr_config(false), open, t);
    p.handle(
        Event::NotifMsg {
            conn,
            notification: Notification::new(6, 6, &[]),
        },
        t,
    );
    assert!(!downs(&drain(&mut p))[0].gr_eligible);

    // Without GR on the peer's side nothing is eligible.
    let (mut p, conn) = established(gr_config(true), remote_open(PEER_AS, "10.0.0.2", 90), t);
    p.handle(Event::TcpConnectionFails { conn }, t);
    assert!(!downs(&drain(&mut p))[0].gr_eligible);
}

#[test]
fn rfc8538_n_bit_makes_notifications_gr_eligible_except_hard_reset() {
    let t = Instant::now();
    let open = with_cap(
        remote_open(PEER_AS, "10.0.0.2", 90),
        Capability::GracefulRestart(gr_cap(true, false)),
    );
    let (mut p, conn) = established(gr_config(true), open.clone(), t);
    p.handle_timeout(t + secs(90));
    let a = drain(&mut p);
    let d = &downs(&a)[0];
    assert_eq!(
        (d.reason, d.gr_eligible),
        (DownReason::HoldTimerExpired, true)
    );

    let (mut p, conn2) = established(gr_config(true), open.clone(), t);
    let _ = conn;
    p.handle(
        Event::NotifMsg {
            conn: conn2,
            notification: hard_reset(&Notification::new(6, 3, &[])),
        },
        t,
    );
    assert!(!downs(&drain(&mut p))[0].gr_eligible);

    // Our admin shutdown becomes a Hard Reset; a graceful admin reset does not.
    let (mut p, _) = established(gr_config(true), open.clone(), t);
    p.handle(
        Event::ManualStop(StopReason::AdminShutdown {
            message: "x".into(),
        }),
        t,
    );
    let a = drain(&mut p);
    let n = &notifications(&a)[0];
    assert_eq!((n.code, n.subcode), (6, cease_subcode::HARD_RESET));
    assert_eq!(&n.data[..], &[6, 2, 1, b'x']);
    assert_eq!(shutdown_message(n).as_deref(), Some("x"));
    assert!(!downs(&a)[0].gr_eligible);

    let (mut p, _) = established(gr_config(true), open, t);
    p.handle(
        Event::ManualStop(StopReason::AdminReset {
            message: String::new(),
            graceful: true,
        }),
        t,
    );
    let a = drain(&mut p);
    assert_eq!(notifications(&a)[0], Notification::new(6, 4, &[0]));
    assert!(downs(&a)[0].gr_eligible);
}

#[test]
fn route_refresh_is_delivered_only_for_negotiated_families() {
    let t = Instant::now();
    let mut open = remote_open(PEER_AS, "10.0.0.2", 90);
    open.params = vec![OptParam::Capabilities(vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(PEER_AS),
    ])];
    let (mut p, conn) = established(cfg(), open, t);
    let v4 = RouteRefresh {
        afi: Afi::IPV4,
        subtype: RouteRefreshSubtype::Request,
        safi: Safi::UNICAST,
    };
    let v6 = RouteRefresh {
        afi: Afi::IPV6,
        ..v4
    };
    p.handle(Event::RouteRefreshMsg { conn, refresh: v4 }, t);
    p.handle(Event::RouteRefreshMsg { conn, refresh: v6 }, t);
    let a = drain(&mut p);
    assert_eq!(a, vec![Action::DeliverRouteRefresh { conn, refresh: v4 }]);
}

#[test]
fn updates_in_established_are_delivered_and_reset_the_hold_timer() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    p.handle(
        Event::UpdateMsg {
            conn,
            update: Update::default(),
        },
        t + secs(80),
    );
    assert_eq!(
        drain(&mut p),
        vec![Action::DeliverUpdate {
            conn,
            update: Update::default()
        }]
    );
    p.handle_timeout(t + secs(100));
    drain(&mut p);
    assert_eq!(p.state(), State::Established);
}

// ----- collisions (RFC 4271 6.8) ----------------------------------------------------------------

/// A peer with an outbound and an inbound connection, both in OpenSent.
fn two_connections(local_id: &str, t: Instant) -> (Peer, ConnId, ConnId) {
    let c = PeerConfig::new(LOCAL_AS, id(local_id), PeerAs::Exact(PEER_AS));
    let (mut p, out) = open_sent(c, t);
    let inb = p.accept(t).unwrap();
    drain(&mut p);
    (p, out, inb)
}

#[test]
fn collision_keeps_the_connection_of_the_higher_bgp_identifier() {
    let t = Instant::now();
    // We are higher: our outbound connection wins, whichever OPEN comes first.
    for first_out in [true, false] {
        let (mut p, out, inb) = two_connections("10.0.0.9", t);
        let order = if first_out { [out, inb] } else { [inb, out] };
        for conn in order {
            p.handle(
                Event::BgpOpen {
                    conn,
                    open: remote_open(PEER_AS, "10.0.0.2", 90),
                },
                t,
            );
        }
        let a = drain(&mut p);
        assert_eq!(
            notifications(&a),
            vec![Notification::new(
                6,
                cease_subcode::CONNECTION_COLLISION_RESOLUTION,
                &[]
            )]
        );
        assert!(a.contains(&Action::Close { conn: inb }));
        assert_eq!(p.connections().len(), 1);
        assert_eq!(p.connections()[0].id, out);
        assert_eq!(p.state(), State::OpenConfirm);
        assert!(p.last_down().is_none(), "collision losers are not errors");
    }
    // We are lower: the peer's (inbound) connection wins.
    let (mut p, out, inb) = two_connections("10.0.0.1", t);
    p.handle(
        Event::BgpOpen {
            conn: out,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    p.handle(
        Event::BgpOpen {
            conn: inb,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    let a = drain(&mut p);
    assert!(a.contains(&Action::Close { conn: out }));
    assert_eq!(p.connections()[0].id, inb);
    assert_eq!(p.connections()[0].direction, Direction::Inbound);
}

#[test]
fn collision_with_equal_identifiers_keeps_the_higher_as_connection() {
    let t = Instant::now();
    // eBGP, same identifier: the peer's AS 65002 > ours 65001, so its connection wins.
    let (mut p, out, inb) = two_connections("10.0.0.2", t);
    p.handle(
        Event::BgpOpen {
            conn: inb,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    p.handle(
        Event::BgpOpen {
            conn: out,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    drain(&mut p);
    assert_eq!(p.connections()[0].id, inb);
}

#[test]
fn new_connection_loses_against_an_established_one() {
    let t = Instant::now();
    let (mut p, est) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    let new = p.accept(t).unwrap();
    drain(&mut p);
    p.handle(
        Event::BgpOpen {
            conn: new,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    let a = drain(&mut p);
    assert_eq!(notifications(&a), vec![Notification::new(6, 7, &[])]);
    assert!(a.contains(&Action::Close { conn: new }));
    assert!(downs(&a).is_empty());
    assert_eq!(p.established_conn(), Some(est));
}

#[test]
fn restarted_gr_peer_replaces_the_established_session() {
    let t = Instant::now();
    let open = with_cap(
        remote_open(PEER_AS, "10.0.0.2", 90),
        Capability::GracefulRestart(gr_cap(false, false)),
    );
    let (mut p, old) = established(gr_config(false), open, t);
    let new = p.accept(t + secs(5)).unwrap();
    drain(&mut p);
    let reopen = with_cap(
        remote_open(PEER_AS, "10.0.0.2", 90),
        Capability::GracefulRestart(gr_cap(false, true)),
    );
    p.handle(
        Event::BgpOpen {
            conn: new,
            open: reopen,
        },
        t + secs(5),
    );
    let a = drain(&mut p);
    let d = &downs(&a)[0];
    assert_eq!(
        (d.conn, d.reason, d.gr_eligible),
        (old, DownReason::PeerRestarted, true)
    );
    assert!(notifications(&a).is_empty());
    assert_eq!(p.state(), State::OpenConfirm);
    p.handle(Event::KeepAliveMsg { conn: new }, t + secs(5));
    assert_eq!(p.established_conn(), Some(new));
}

#[test]
fn established_connection_dumps_the_other_pending_one() {
    let t = Instant::now();
    let (mut p, out, inb) = two_connections("10.0.0.9", t);
    p.handle(
        Event::BgpOpen {
            conn: out,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    p.handle(Event::KeepAliveMsg { conn: out }, t);
    let a = drain(&mut p);
    assert_eq!(notifications(&a), vec![Notification::new(6, 7, &[])]);
    assert!(a.contains(&Action::Close { conn: inb }));
    assert_eq!(p.connections().len(), 1);
}

#[test]
fn decode_error_events_map_to_rfc_events() {
    use crate::wire::message::HeaderError;
    use crate::wire::open::OpenError;
    let c = ConnId(1);
    let e = Event::from_decode_error(c, &HeaderError::BadMessageType(9).into());
    assert!(
        matches!(e, Event::BgpHeaderErr { notification, .. } if notification.code == 1 && notification.subcode == 3)
    );
    let e = Event::from_decode_error(c, &OpenError::UnacceptableHoldTime { hold_time: 1 }.into());
    assert!(matches!(e, Event::BgpOpenMsgErr { .. }));
    assert!(matches!(
        Event::from_message(c, Message::Keepalive),
        Event::KeepAliveMsg { .. }
    ));
}

// ----- full sessions over the pair harness --------------------------------------------------------

fn pair_configs() -> (PeerConfig, PeerConfig) {
    let a = PeerConfig::new(65001, id("10.0.0.1"), PeerAs::Exact(65002));
    let b = PeerConfig::new(65002, id("10.0.0.2"), PeerAs::Exact(65001));
    (a, b)
}

#[test]
fn pair_establishes_and_keeps_alive_for_hours() {
    let (a, mut b) = pair_configs();
    b.hold_time = 30;
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let n = pair.peer(Side::A).negotiated().unwrap();
    assert_eq!((n.hold_time, n.keepalive_time), (30, 10));
    let ka0 = pair.keepalives_sent(Side::A);
    pair.run_for(secs(10 * 3600));
    assert!(pair.established());
    assert!(pair.session_downs(Side::A).is_empty() && pair.session_downs(Side::B).is_empty());
    assert_eq!(pair.sessions_established(Side::A), 1);
    assert_eq!(pair.sessions_established(Side::B), 1);
    let kas = pair.keepalives_sent(Side::A) - ka0;
    assert!(
        (3599..=3601).contains(&kas),
        "{kas} keepalives in 10 h at 10 s"
    );
}

#[test]
fn pair_collision_resolves_to_one_session_on_the_higher_id_connection() {
    for (a_id, b_id) in [("10.0.0.1", "10.0.0.2"), ("10.0.0.9", "10.0.0.2")] {
        let a = PeerConfig::new(65001, id(a_id), PeerAs::Exact(65002));
        let b = PeerConfig::new(65002, id(b_id), PeerAs::Exact(65001));
        let mut pair = Pair::new(a, b).unwrap();
        // Both connect at the same instant: the SYNs cross.
        pair.start_both();
        assert!(
            pair.run_until(secs(10), Pair::established),
            "{a_id} vs {b_id}"
        );
        pair.run_for(secs(60));
        assert!(pair.established());
        let higher = if id(a_id) > id(b_id) {
            Side::A
        } else {
            Side::B
        };
        let conn = pair.peer(higher).established_conn().unwrap();
        let info = pair.peer(higher).connections();
        let dir = info.iter().find(|c| c.id == conn).unwrap().direction;
        assert_eq!(
            dir,
            Direction::Outbound,
            "the higher identifier's connection survives"
        );
        let cease7 = Notification::new(6, 7, &[]);
        let n_sent =
            pair.notifications_sent(Side::A).len() + pair.notifications_sent(Side::B).len();
        assert!(n_sent >= 1);
        assert!(pair
            .notifications_sent(Side::A)
            .iter()
            .chain(pair.notifications_sent(Side::B).iter())
            .all(|n| *n == cease7));
        assert_eq!(pair.sessions_established(Side::A), 1);
        assert_eq!(pair.sessions_established(Side::B), 1);
        assert_eq!(pair.peer(Side::A).connections().len(), 1);
        assert_eq!(pair.peer(Side::B).connections().len(), 1);
    }
}

#[test]
fn pair_stop_on_one_side_is_seen_as_cease_on_the_other() {
    let (a, b) = pair_configs();
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    pair.handle(
        Side::A,
        Event::ManualStop(StopReason::AdminShutdown {
            message: "bye".into(),
        }),
    );
    pair.run_for(secs(1));
    let downs = pair.session_downs(Side::B);
    assert_eq!(downs.len(), 1);
    assert_eq!(downs[0].reason, DownReason::NotificationReceived);
    let n = downs[0].received.clone().unwrap();
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(shutdown_message(&n).as_deref(), Some("bye"));
    // B retries and A refuses while stopped; B stays down, A stays Idle.
    pair.run_for(secs(600));
    assert_eq!(pair.peer(Side::A).state(), State::Idle);
    assert!(!pair.established());
    // A comes back: the session re-establishes.
    pair.handle(Side::A, Event::ManualStart);
    assert!(pair.run_until(secs(300), Pair::established));
}

#[test]
fn pair_hold_expiry_when_one_side_goes_silent() {
    let (mut a, b) = pair_configs();
    a.hold_time = 9;
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let t = pair.now;
    pair.mute.b = true;
    assert!(pair.run_until(secs(30), |p| !p.session_downs(Side::A).is_empty()));
    let d = &pair.session_downs(Side::A)[0];
    assert_eq!(d.reason, DownReason::HoldTimerExpired);
    let waited = d.at - t;
    assert!(
        waited >= secs(6) && waited <= secs(9) + Duration::from_millis(10),
        "{waited:?}"
    );
    // B sees A's 4/0 NOTIFICATION (A is not muted).
    assert!(pair.run_until(secs(1), |p| !p.session_downs(Side::B).is_empty()));
    assert_eq!(
        pair.session_downs(Side::B)[0].received,
        Some(Notification::new(4, 0, &[]))
    );
    // Unmuted, they come back.
    pair.mute.b = false;
    assert!(pair.run_until(secs(600), Pair::established));
}

#[test]
fn pair_passive_and_refused_connections() {
    let (a, mut b) = pair_configs();
    b.passive = true;
    let mut pair = Pair::new(a, b).unwrap();
    pair.refuse.b = true;
    pair.start_both();
    pair.run_for(secs(30));
    assert!(!pair.established());
    assert_eq!(pair.peer(Side::B).state(), State::Active);
    let attempts = pair
        .log
        .iter()
        .filter(|l| l.side == Side::A && matches!(l.action, Action::Connect { .. }))
        .count();
    assert!(
        (2..=4).contains(&attempts),
        "{attempts} attempts in 30 s with 5 s doubling"
    );
    pair.refuse.b = false;
    assert!(pair.run_until(secs(200), Pair::established));
    // Only A ever connected.
    assert!(!pair
        .log
        .iter()
        .any(|l| l.side == Side::B && matches!(l.action, Action::Connect { .. })));
}

#[test]
fn pair_delay_open_on_both_sides_establishes() {
    let (mut a, mut b) = pair_configs();
    a.delay_open = Some(secs(3));
    b.delay_open = Some(secs(5));
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(30), Pair::established));
    assert!(pair.elapsed() >= secs(3));
}

#[test]
fn pair_update_crosses_the_codec_and_is_delivered() {
    use crate::wire::{AsPath, Nlri, Origin};
    let (a, b) = pair_configs();
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let mut update = Update::default();
    update.attributes.origin = Some(Origin::Igp);
    update.attributes.as_path = Some(AsPath::from_sequence(vec![65001]));
    update.attributes.next_hop = Some(id("10.0.0.1"));
    update.nlri = vec![Nlri::new("10.1.0.0/24".parse().unwrap())];
    assert!(pair.send(Side::A, Message::Update(update.clone())));
    pair.run_for(secs(1));
    let delivered: Vec<Update> = pair
        .log
        .iter()
        .filter_map(|l| match &l.action {
            Action::DeliverUpdate { update, .. } if l.side == Side::B => Some(update.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec![update]);
    assert!(pair.encode_errors.is_empty(), "{:?}", pair.encode_errors);
}

#[test]
fn pair_malformed_header_gets_notification_1_1_and_resets() {
    let (a, b) = pair_configs();
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let mut junk = vec![0xffu8; 19];
    junk[3] = 0;
    junk[17] = 19;
    junk[18] = 4;
    assert!(pair.inject_raw(Side::A, junk.into()));
    pair.run_for(Duration::from_millis(10));
    // (An earlier Cease/7 may come from the start-up collision.)
    assert_eq!(
        pair.notifications_sent(Side::B).last(),
        Some(&Notification::new(1, 1, &[]))
    );
    assert_eq!(
        pair.session_downs(Side::B)[0].reason,
        DownReason::ProtocolError
    );
    assert_eq!(
        pair.session_downs(Side::A)[0].received,
        Some(Notification::new(1, 1, &[]))
    );
}

// ----- random event sequences: invariants the driver relies on -----------------------------------

mod random {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    #[derive(Clone, Debug)]
    enum Op {
        Start,
        Stop,
        AutoStart,
        AutoStop,
        Accept,
        TcpConnected(usize),
        TcpFails(usize),
        Open(usize, u8),
        Keepalive(usize),
        Update(usize),
        Notif(usize),
        RouteRefresh(usize),
        HeaderErr(usize),
        SendBlocked(usize),
        SendProgress(usize),
        MaxPrefix,
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        // `k` counts back from the newest connection, so sequences often hit a live one.
        let k = prop_oneof![3 => Just(0usize), 1 => 0usize..4];
        prop_oneof![
            3 => Just(Op::Start),
            1 => Just(Op::Stop),
            1 => Just(Op::AutoStart),
            1 => Just(Op::AutoStop),
            3 => Just(Op::Accept),
            4 => k.clone().prop_map(Op::TcpConnected),
            1 => k.clone().prop_map(Op::TcpFails),
            6 => (k.clone(), 0u8..6).prop_map(|(k, v)| Op::Open(k, v)),
            6 => k.clone().prop_map(Op::Keepalive),
            2 => k.clone().prop_map(Op::Update),
            1 => k.clone().prop_map(Op::Notif),
            1 => k.clone().prop_map(Op::RouteRefresh),
            1 => k.clone().prop_map(Op::HeaderErr),
            1 => k.clone().prop_map(Op::SendBlocked),
            1 => k.prop_map(Op::SendProgress),
            1 => Just(Op::MaxPrefix),
            4 => (0u16..400).prop_map(Op::Advance),
        ]
    }

    fn open_variant(v: u8) -> Open {
        match v {
            0 => remote_open(PEER_AS, "10.0.0.2", 90),
            1 => remote_open(PEER_AS, "10.0.0.0", 9),
            2 => remote_open(65099, "10.0.0.2", 90),
            3 => remote_open(PEER_AS, "10.0.0.2", 2),
            4 => with_cap(
                remote_open(PEER_AS, "10.0.0.2", 0),
                Capability::GracefulRestart(gr_cap(true, true)),
            ),
            _ => remote_open(PEER_AS, "10.0.0.200", 3),
        }
    }

    fn check_actions(
        actions: Vec<Action>,
        known: &mut Vec<ConnId>,
        closed: &mut HashSet<ConnId>,
        established: &mut HashMap<ConnId, bool>,
    ) -> Result<(), TestCaseError> {
        for a in actions {
            match a {
                Action::Connect { conn } => {
                    prop_assert!(!known.contains(&conn), "connection ids are never reused");
                    known.push(conn);
                }
                Action::Send { conn, .. } => {
                    prop_assert!(known.contains(&conn));
                    prop_assert!(!closed.contains(&conn), "send after close on {}", conn);
                }
                Action::Close { conn } => {
                    closed.insert(conn);
                }
                Action::SessionEstablished { conn, .. } => {
                    prop_assert!(!closed.contains(&conn));
                    prop_assert!(established.insert(conn, true).is_none());
                }
                Action::SessionDown(info) => {
                    prop_assert_eq!(
                        established.insert(info.conn, false),
                        Some(true),
                        "down without up"
                    );
                }
                Action::DeliverUpdate { conn, .. } | Action::DeliverRouteRefresh { conn, .. } => {
                    prop_assert_eq!(established.get(&conn), Some(&true));
                }
                Action::StateChanged { from, to } => prop_assert_ne!(from, to),
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn invariants_hold_for_any_event_sequence(ops in proptest::collection::vec(op(), 1..80), passive in any::<bool>(), delay in any::<bool>()) {
            let mut c = gr_config(true);
            c.passive = passive;
            c.delay_open = delay.then(|| secs(2));
            let mut p = Peer::new(c, 5).unwrap();
            let t0 = Instant::now();
            let mut now = t0;
            let mut known: Vec<ConnId> = Vec::new();
            let mut closed: HashSet<ConnId> = HashSet::new();
            let mut established: HashMap<ConnId, bool> = HashMap::new();
            for op in ops {
                let pick = |k: usize| known.len().checked_sub(1 + k).and_then(|i| known.get(i)).copied().unwrap_or(ConnId(999));
                match op {
                    Op::Start => p.handle(Event::ManualStart, now),
                    Op::Stop => p.handle(Event::ManualStop(StopReason::AdminShutdown { message: "m".into() }), now),
                    Op::AutoStart => p.handle(Event::AutomaticStart, now),
                    Op::AutoStop => p.handle(Event::AutomaticStop(StopReason::ConfigChange), now),
                    Op::Accept => {
                        if let Some(c) = p.accept(now) {
                            known.push(c);
                        }
                    }
                    Op::TcpConnected(k) => p.handle(Event::TcpConnected { conn: pick(k) }, now),
                    Op::TcpFails(k) => p.handle(Event::TcpConnectionFails { conn: pick(k) }, now),
                    Op::Open(k, v) => p.handle(Event::BgpOpen { conn: pick(k), open: open_variant(v) }, now),
                    Op::Keepalive(k) => p.handle(Event::KeepAliveMsg { conn: pick(k) }, now),
                    Op::Update(k) => p.handle(Event::UpdateMsg { conn: pick(k), update: Update::default() }, now),
                    Op::Notif(k) => p.handle(Event::NotifMsg { conn: pick(k), notification: Notification::new(6, 2, &[]) }, now),
                    Op::RouteRefresh(k) => p.handle(Event::RouteRefreshMsg { conn: pick(k), refresh: RouteRefresh { afi: Afi::IPV4, subtype: RouteRefreshSubtype::Request, safi: Safi::UNICAST } }, now),
                    Op::HeaderErr(k) => p.handle(Event::BgpHeaderErr { conn: pick(k), notification: Notification::new(1, 1, &[]) }, now),
                    Op::SendBlocked(k) => p.handle(Event::SendBlocked { conn: pick(k), since: now }, now),
                    Op::SendProgress(k) => p.handle(Event::SendProgress { conn: pick(k) }, now),
                    Op::MaxPrefix => p.handle(Event::MaxPrefixExceeded { family: Family::IPV4_UNICAST, limit: 1 }, now),
                    Op::Advance(s) => {
                        now += secs(u64::from(s));
                        p.handle_timeout(now);
                    }
                }
                check_actions(drain(&mut p), &mut known, &mut closed, &mut established)?;
                let conns = p.connections();
                prop_assert!(conns.iter().filter(|c| c.state == State::Established).count() <= 1);
                prop_assert!(conns.len() <= 3, "{:?}", conns);
                prop_assert!(conns.iter().all(|c| !closed.contains(&c.id)), "live connection was closed");
                prop_assert_eq!(established.values().filter(|v| **v).count(), usize::from(p.established_conn().is_some()));
                if p.state() == State::Idle {
                    prop_assert!(conns.is_empty());
                }
                p.handle_timeout(now);
                check_actions(drain(&mut p), &mut known, &mut closed, &mut established)?;
                if let Some(at) = p.poll_timeout() {
                    prop_assert!(at > now, "timer due after handle_timeout");
                }
            }
        }
    }
}

#[test]
fn set_config_applies_to_the_next_connection() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    assert_eq!(p.established_since(), Some(t));
    let mut c = cfg();
    c.hold_time = 30;
    p.set_config(c, t).unwrap();
    assert_eq!(
        p.negotiated().unwrap().hold_time,
        90,
        "the running session keeps its values"
    );
    let mut bad = cfg();
    bad.hold_time = 1;
    assert_eq!(p.set_config(bad, t), Err(ConfigError::HoldTime(1)));
    p.handle(Event::ManualStop(StopReason::ConfigChange), t);
    p.handle(Event::ManualStart, t);
    let a = drain(&mut p);
    let next = connect_id(&a);
    assert_ne!(next, conn);
    p.handle(Event::TcpConnected { conn: next }, t);
    let Message::Open(o) = &sent(&drain(&mut p))[0] else {
        panic!("OPEN expected")
    };
    assert_eq!(o.hold_time, 30);
}

/// Cost figures for the report: `cargo test --release -p wren-bgp --lib measure_fsm -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, run by hand in release mode"]
fn measure_fsm_costs() {
    let t = Instant::now();
    let (mut p, conn) = established(cfg(), remote_open(PEER_AS, "10.0.0.2", 90), t);
    println!(
        "size_of::<Peer>() = {} bytes, size_of::<Negotiated>() = {} bytes (one per live connection after OPEN)",
        std::mem::size_of::<Peer>(),
        std::mem::size_of::<Negotiated>()
    );
    let n = 1_000_000u32;
    let start = Instant::now();
    for i in 0..n {
        let now = t + Duration::from_millis(u64::from(i));
        p.handle(Event::KeepAliveMsg { conn }, now);
        p.handle_timeout(now);
        while p.poll_action().is_some() {}
    }
    let per = start.elapsed() / n;
    println!("KEEPALIVE receive + handle_timeout + drain: {per:?} per event");
    assert_eq!(p.state(), State::Established);

    let start = Instant::now();
    let pairs = 1000;
    for _ in 0..pairs {
        let (a, b) = pair_configs();
        let mut pair = Pair::new(a, b).unwrap();
        pair.start_both();
        assert!(pair.run_until(secs(10), Pair::established));
    }
    println!(
        "establish a session over the pair harness with the codec: {:?} per pair",
        start.elapsed() / pairs
    );
    let (a, b) = pair_configs();
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    let start = Instant::now();
    pair.run_for(secs(24 * 3600));
    println!(
        "24 virtual hours of keepalives (hold 90): {:?} wall",
        start.elapsed()
    );
}

#[test]
fn missing_required_capability_is_open_error_2_7_listing_it() {
    let t = Instant::now();
    let mut c = cfg();
    c.required_capabilities = vec![
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::GracefulRestart(gr_cap(false, false)),
        Capability::FourOctetAs(0),
    ];
    let (mut p, conn) = open_sent(c.clone(), t);
    drain(&mut p);
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    let a = drain(&mut p);
    let n = &notifications(&a)[0];
    assert_eq!(
        (n.code, n.subcode),
        (2, open_subcode::UNSUPPORTED_CAPABILITY)
    );
    // Only the graceful restart capability (code 64) is missing.
    assert_eq!(n.data.first(), Some(&64));
    assert!(p
        .last_down()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("[64]"));
    let open = with_cap(
        remote_open(PEER_AS, "10.0.0.2", 90),
        Capability::GracefulRestart(gr_cap(true, false)),
    );
    let (mut p, conn) = open_sent(c, t);
    p.handle(Event::BgpOpen { conn, open }, t);
    assert_eq!(p.state(), State::OpenConfirm);
}

#[test]
fn restart_bit_is_cleared_once_the_session_is_back() {
    let t = Instant::now();
    let mut c = cfg();
    c.graceful_restart = Some(gr_cap(true, true));
    let (mut p, conn) = open_sent(c, t);
    let r_bit = |o: &Open| o.graceful_restart().map(|g| g.restart_state);
    assert_eq!(r_bit(p.local_open()), Some(true));
    p.handle(
        Event::BgpOpen {
            conn,
            open: remote_open(PEER_AS, "10.0.0.2", 90),
        },
        t,
    );
    p.handle(Event::KeepAliveMsg { conn }, t);
    assert_eq!(p.state(), State::Established);
    assert_eq!(r_bit(p.local_open()), Some(false));
}

fn gr_pair_configs(restarting_b: bool) -> (PeerConfig, PeerConfig) {
    let (mut a, mut b) = pair_configs();
    a.graceful_restart = Some(gr_cap(true, false));
    b.graceful_restart = Some(gr_cap(true, restarting_b));
    (a, b)
}

#[test]
fn pair_graceful_restart_new_open_with_r_bit_replaces_the_half_open_session() {
    let (a, b) = gr_pair_configs(false);
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let old = pair.peer(Side::A).established_conn().unwrap();
    // B freezes and comes back with the R bit set; A never saw the old connection close.
    pair.run_for(secs(5));
    let (_, b) = gr_pair_configs(true);
    pair.restart(Side::B, b, 3, false).unwrap();
    assert!(pair.run_until(secs(30), |p| p.established()
        && p.peer(Side::A).established_conn() != Some(old)));
    let downs = pair.session_downs(Side::A);
    assert_eq!(downs.len(), 1);
    assert_eq!(
        (downs[0].conn, downs[0].reason, downs[0].gr_eligible),
        (old, DownReason::PeerRestarted, true)
    );
    assert_eq!(downs[0].restart_time, Some(secs(120)));
    assert!(
        pair.elapsed() < secs(20),
        "no hold timer wait: {:?}",
        pair.elapsed()
    );
}

#[test]
fn pair_process_exit_is_gr_eligible_and_the_session_comes_back() {
    let (a, b) = gr_pair_configs(false);
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let (_, b) = gr_pair_configs(true);
    pair.restart(Side::B, b, 3, true).unwrap();
    assert!(pair.run_until(secs(1), |p| !p.session_downs(Side::A).is_empty()));
    let d = &pair.session_downs(Side::A)[0];
    assert_eq!(
        (d.reason, d.gr_eligible),
        (DownReason::ConnectionLost, true)
    );
    assert!(pair.run_until(secs(60), Pair::established));
    assert_eq!(pair.sessions_established(Side::A), 2);
}

#[test]
fn pair_frozen_peer_without_gr_is_dropped_by_the_hold_timer() {
    let (mut a, b) = pair_configs();
    a.hold_time = 30;
    let mut pair = Pair::new(a, b).unwrap();
    pair.start_both();
    assert!(pair.run_until(secs(10), Pair::established));
    let t = pair.now;
    let (_, b) = pair_configs();
    pair.restart(Side::B, b, 3, false).unwrap();
    // The new B's OPEN (no R bit) loses against A's Established session (RFC 4271 6.8) ...
    pair.run_for(secs(5));
    assert!(pair
        .notifications_sent(Side::A)
        .contains(&Notification::new(6, 7, &[])));
    // ... until A's hold timer drops the dead one; then they establish again.
    assert!(pair.run_until(secs(120), |p| p.established()
        && p.sessions_established(Side::A) == 2));
    let d = &pair.session_downs(Side::A)[0];
    assert_eq!(
        (d.reason, d.gr_eligible),
        (DownReason::HoldTimerExpired, false)
    );
    assert!(d.at - t >= secs(29));
}
