//! RIB scenario tests: decision inputs through the public API, RR rules, loops, eBGP
//! export, GR, deferral, packing, update groups, route refresh.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipnet::IpNet;

use super::*;
use crate::policy::{Modifications, Policy, PrefixRange, Rule, RuleAction, Verdict};
use crate::wire::update::UpdateError;
use crate::wire::{
    AttrIssue, Community, GracefulRestartCap, MpNextHop, MpReach, Nlri, Origin, Rfc7606Action,
};

const AS: u32 = 65000;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn new_rib(f: impl FnOnce(&mut RibConfig)) -> Rib {
    let mut c = RibConfig::new(AS, v4("10.0.0.1"));
    f(&mut c);
    Rib::new(c, Instant::now())
}

fn info(addr: &str, remote_as: u32) -> PeerInfo {
    let mut i = PeerInfo::new(addr.parse().unwrap(), remote_as, AS);
    i.router_id = match i.address {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => Ipv4Addr::new(10, 255, 0, a.octets()[15]),
    };
    i.local_v4 = Some(v4("10.0.0.1"));
    i.local_v6 = Some("fd00::1".parse().unwrap());
    i
}

/// Add a peer and bring it up; its initial End-of-RIB batch is left in the queue.
fn up(r: &mut Rib, addr: &str, remote_as: u32, f: impl FnOnce(&mut PeerInfo)) -> PeerId {
    let mut i = info(addr, remote_as);
    f(&mut i);
    let id = r.add_peer(i.clone());
    r.peer_up(id, i, Instant::now()).unwrap();
    id
}

fn attrs(path: &[u32], nh: &str) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(path.to_vec())),
        next_hop: Some(v4(nh)),
        ..Default::default()
    }
}

fn announce(prefixes: &[&str], a: PathAttributes) -> Update {
    Update::new(a, prefixes.iter().map(|p| Nlri::new(net(p))).collect())
}

fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|p| Nlri::new(net(p))).collect(),
        ..Default::default()
    }
}

fn eor(f: Family) -> Update {
    Update::end_of_rib_marker(f)
}

/// What one peer received across batches.
#[derive(Debug, Default)]
struct Sent {
    announced: BTreeMap<IpNet, PathAttributes>,
    withdrawn: BTreeSet<IpNet>,
    eor: Vec<Family>,
    refresh: Vec<RouteRefreshSubtype>,
    updates: usize,
}

fn sent(batches: &[OutBatch], peer: PeerId) -> Sent {
    let mut s = Sent::default();
    for b in batches.iter().filter(|b| b.peers.contains(&peer)) {
        for m in &b.messages {
            match m {
                Message::Update(u) => {
                    s.updates += 1;
                    if let Some(f) = u.end_of_rib() {
                        s.eor.push(f);
                        continue;
                    }
                    for n in &u.withdrawn {
                        s.withdrawn.insert(n.prefix);
                    }
                    if let Some(mu) = &u.attributes.mp_unreach {
                        s.withdrawn.extend(mu.withdrawn.iter().map(|n| n.prefix));
                    }
                    let mut a = u.attributes.clone();
                    a.mp_unreach = None;
                    let mut nlri: Vec<Nlri> = u.nlri.clone();
                    if let Some(m) = &mut a.mp_reach {
                        nlri.append(&mut m.nlri);
                    }
                    for n in nlri {
                        s.announced.insert(n.prefix, a.clone());
                    }
                }
                Message::RouteRefresh(rr) => s.refresh.push(rr.subtype),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    s
}

fn has(batches: &[OutBatch], peer: PeerId, prefix: &str) -> bool {
    sent(batches, peer).announced.contains_key(&net(prefix))
}

fn gr_cap(restart_time: u16, forwarding: bool) -> Option<GracefulRestartCap> {
    Some(GracefulRestartCap {
        restart_state: false,
        notification: true,
        restart_time,
        families: vec![(Family::IPV4_UNICAST, forwarding)],
    })
}

// ---------------------------------------------------------------------------------------

#[test]
fn interning_100k_routes_10_attribute_sets() {
    let mut r = new_rib(|_| {});
    let peers: Vec<PeerId> = (0..10)
        .map(|i| up(&mut r, &format!("192.0.2.{}", i + 1), AS, |_| {}))
        .collect();
    let now = Instant::now();
    for (pi, p) in peers.iter().enumerate() {
        for k in 0..10u32 {
            let mut a = attrs(&[65100], "192.0.2.200");
            a.med = Some(k);
            let nlri: Vec<Nlri> = (0..1000u32)
                .map(|j| {
                    let n = (pi as u32) * 10_000 + k * 1000 + j;
                    Nlri::new(
                        IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (n << 8))), 24).unwrap(),
                    )
                })
                .collect();
            let s = r.handle_update(*p, &Update::new(a, nlri), now).unwrap();
            assert_eq!(s.accepted, 1000);
        }
    }
    assert_eq!(r.stats().interned, 10);
    r.process();
    assert_eq!(r.stats().prefixes, 100_000);
    assert_eq!(r.loc_rib().len(), 100_000);
    // Non-reflector iBGP: nothing is exported, so no further sets were created.
    assert_eq!(r.gc(), 10);
}

#[test]
fn best_path_through_the_rib_and_multipath_and_resolver() {
    let mut r = new_rib(|c| c.max_paths = 4);
    let p1 = up(&mut r, "192.0.2.1", AS, |_| {});
    let p2 = up(&mut r, "192.0.2.2", AS, |_| {});
    let p3 = up(&mut r, "192.0.2.3", AS, |_| {});
    let now = Instant::now();
    r.handle_update(
        p1,
        &announce(&["10.1.0.0/24"], attrs(&[65100], "192.0.2.101")),
        now,
    )
    .unwrap();
    r.handle_update(
        p2,
        &announce(&["10.1.0.0/24"], attrs(&[65100], "192.0.2.102")),
        now,
    )
    .unwrap();
    let mut worse = attrs(&[65100, 65101], "192.0.2.103");
    worse.local_pref = Some(100);
    r.handle_update(p3, &announce(&["10.1.0.0/24"], worse), now)
        .unwrap();
    let ev = r.drain_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    match &ev[0] {
        RibEvent::BestChanged {
            best: Some(b),
            multipath,
            ..
        } => {
            assert_eq!(b.source, Source::Peer(p1), "lowest router id");
            assert_eq!(
                multipath,
                &vec![IpAddr::V4(v4("192.0.2.101")), IpAddr::V4(v4("192.0.2.102"))]
            );
        }
        other => panic!("{other:?}"),
    }
    // Next hop 192.0.2.101 becomes unreachable: p2 wins alone.
    r.set_next_hop_resolver(Some(Arc::new(|nh: IpAddr| {
        nh != IpAddr::V4(v4("192.0.2.101"))
    })));
    let ev = r.drain_events();
    match &ev[..] {
        [RibEvent::BestChanged {
            best: Some(b),
            multipath,
            ..
        }] => {
            assert_eq!(b.source, Source::Peer(p2));
            assert_eq!(multipath, &vec![IpAddr::V4(v4("192.0.2.102"))]);
        }
        other => panic!("{other:?}"),
    }
    // Withdraw everything: best None.
    r.set_next_hop_resolver(None);
    for p in [p1, p2, p3] {
        r.handle_update(p, &withdraw(&["10.1.0.0/24"]), now)
            .unwrap();
    }
    let ev = r.drain_events();
    assert!(
        matches!(ev.last(), Some(RibEvent::BestChanged { best: None, .. })),
        "{ev:?}"
    );
    assert!(r.best(&net("10.1.0.0/24")).is_none());
    assert_eq!(r.stats().prefixes, 0);
}

#[test]
fn local_pref_from_ebgp_is_ignored_and_ebgp_beats_ibgp() {
    let mut r = new_rib(|_| {});
    let i = up(&mut r, "192.0.2.1", AS, |_| {});
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    let now = Instant::now();
    let mut a = attrs(&[65100], "192.0.2.9");
    a.local_pref = Some(500);
    a.originator_id = Some(v4("1.1.1.1"));
    r.handle_update(e, &announce(&["10.1.0.0/24"], a), now)
        .unwrap();
    r.process();
    let stored = r.best(&net("10.1.0.0/24")).unwrap();
    assert_eq!(stored.attrs.local_pref, None);
    assert_eq!(stored.attrs.originator_id, None);
    // Equal iBGP route (LOCAL_PREF 100 = default): eBGP wins at step d.
    let mut b = attrs(&[65100], "192.0.2.1");
    b.local_pref = Some(100);
    r.handle_update(i, &announce(&["10.1.0.0/24"], b), now)
        .unwrap();
    r.process();
    assert_eq!(r.best(&net("10.1.0.0/24")).unwrap().source, Source::Peer(e));
    assert_eq!(r.paths(&net("10.1.0.0/24")).len(), 2);
}

#[test]
fn route_reflection_matrix() {
    let mut r = new_rib(|c| c.cluster_id = Some(v4("10.0.0.100")));
    let c1 = up(&mut r, "10.0.1.1", AS, |p| p.rr_client = true);
    let c2 = up(&mut r, "10.0.1.2", AS, |p| p.rr_client = true);
    let n1 = up(&mut r, "10.0.2.1", AS, |_| {});
    let n2 = up(&mut r, "10.0.2.2", AS, |_| {});
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    let initial = r.drain_output();
    for p in [c1, c2, n1, n2, e] {
        assert_eq!(sent(&initial, p).eor, vec![Family::IPV4_UNICAST]);
    }
    assert_eq!(r.stats().groups, 3, "clients, non-clients, eBGP");
    let now = Instant::now();
    r.handle_update(c1, &announce(&["10.1.0.0/24"], attrs(&[], "10.1.1.1")), now)
        .unwrap();
    r.handle_update(n1, &announce(&["10.2.0.0/24"], attrs(&[], "10.2.2.2")), now)
        .unwrap();
    r.handle_update(
        e,
        &announce(&["10.3.0.0/24"], attrs(&[65100], "192.0.2.9")),
        now,
    )
    .unwrap();
    let out = r.drain_output();
    // (peer, from client, from non-client, from eBGP)
    for (p, a, b, c) in [
        (c1, false, true, true),
        (c2, true, true, true),
        (n1, true, false, true),
        (n2, true, false, true),
        (e, true, true, false),
    ] {
        assert_eq!(has(&out, p, "10.1.0.0/24"), a, "{p} client route");
        assert_eq!(has(&out, p, "10.2.0.0/24"), b, "{p} non-client route");
        assert_eq!(has(&out, p, "10.3.0.0/24"), c, "{p} eBGP route");
    }
    let to_c2 = sent(&out, c2);
    let refl = &to_c2.announced[&net("10.1.0.0/24")];
    assert_eq!(refl.originator_id, Some(v4("10.0.1.1")));
    assert_eq!(refl.cluster_list, vec![v4("10.0.0.100")]);
    assert_eq!(
        refl.next_hop,
        Some(v4("10.1.1.1")),
        "reflection keeps the next hop"
    );
    assert_eq!(refl.local_pref, Some(100));
    let ext = &to_c2.announced[&net("10.3.0.0/24")];
    assert_eq!(
        ext.originator_id, None,
        "eBGP-learned routes are not reflected"
    );
    assert_eq!(ext.next_hop, Some(v4("192.0.2.9")));
    let to_e = &sent(&out, e).announced[&net("10.1.0.0/24")];
    assert_eq!(to_e.as_path, Some(AsPath::from_sequence(vec![AS])));
    assert_eq!(to_e.next_hop, Some(v4("10.0.0.1")));
    assert_eq!((to_e.local_pref, to_e.originator_id), (None, None));
    assert!(to_e.cluster_list.is_empty());
    // Received back with our cluster id: rejected.
    let mut looped = attrs(&[], "10.1.1.1");
    looped.originator_id = Some(v4("10.0.1.1"));
    looped.cluster_list = vec![v4("10.0.0.100")];
    let s = r
        .handle_update(n2, &announce(&["10.4.0.0/24"], looped), now)
        .unwrap();
    assert_eq!(s.reject_reason, Some(RejectReason::ClusterLoop));
    assert!(r.best(&net("10.4.0.0/24")).is_none());
}

#[test]
fn reflected_ipv6_next_hop_keeps_global_and_drops_link_local() {
    let mut r = new_rib(|c| c.cluster_id = Some(v4("10.0.0.100")));
    let c1 = up(&mut r, "fd00::1:1", AS, |p| p.rr_client = true);
    let c2 = up(&mut r, "fd00::1:2", AS, |p| p.rr_client = true);
    r.drain_output();
    let a = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        mp_reach: Some(MpReach::new(
            Family::IPV6_UNICAST,
            MpNextHop::Ipv6 {
                global: "fd00::a".parse().unwrap(),
                link_local: Some("fe80::a".parse().unwrap()),
            },
            vec![Nlri::new(net("fd10::/64"))],
        )),
        ..Default::default()
    };
    r.handle_update(c1, &Update::new(a, vec![]), Instant::now())
        .unwrap();
    let out = r.drain_output();
    let to_c2 = &sent(&out, c2).announced[&net("fd10::/64")];
    assert_eq!(
        to_c2.mp_reach.as_ref().map(|m| m.next_hop.clone()),
        Some(MpNextHop::Ipv6 {
            global: "fd00::a".parse().unwrap(),
            link_local: None
        }),
        "global next hop kept, link-local dropped"
    );
}

#[test]
fn no_reflection_without_cluster_id() {
    let mut r = new_rib(|_| {});
    let a = up(&mut r, "10.0.1.1", AS, |p| p.rr_client = true);
    let b = up(&mut r, "10.0.1.2", AS, |p| p.rr_client = true);
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    r.drain_output();
    let now = Instant::now();
    r.handle_update(a, &announce(&["10.1.0.0/24"], attrs(&[], "10.1.1.1")), now)
        .unwrap();
    let out = r.drain_output();
    assert!(!has(&out, b, "10.1.0.0/24"));
    assert!(has(&out, e, "10.1.0.0/24"));
}

#[test]
fn loop_prevention_and_treat_as_withdraw() {
    let mut r = new_rib(|_| {});
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    let i = up(&mut r, "10.0.1.1", AS, |_| {});
    let now = Instant::now();
    let s = r
        .handle_update(
            e,
            &announce(&["10.1.0.0/24"], attrs(&[65100, AS, 65200], "192.0.2.9")),
            now,
        )
        .unwrap();
    assert_eq!(
        (s.accepted, s.rejected, s.reject_reason),
        (0, 1, Some(RejectReason::AsLoop))
    );
    let mut a = attrs(&[], "10.0.1.1");
    a.originator_id = Some(v4("10.0.0.1"));
    let s = r
        .handle_update(i, &announce(&["10.2.0.0/24"], a), now)
        .unwrap();
    assert_eq!(s.reject_reason, Some(RejectReason::OriginatorId));
    // A valid route, then the same prefix in an UPDATE with a treat-as-withdraw issue.
    r.handle_update(
        e,
        &announce(&["10.3.0.0/24"], attrs(&[65100], "192.0.2.9")),
        now,
    )
    .unwrap();
    r.process();
    assert!(r.best(&net("10.3.0.0/24")).is_some());
    let mut bad = announce(&["10.3.0.0/24"], attrs(&[65100], "192.0.2.9"));
    bad.issues.push(AttrIssue {
        action: Rfc7606Action::TreatAsWithdraw,
        type_code: crate::wire::attr::type_code::ORIGIN,
        error: UpdateError::new(6, "bad origin", Bytes::new()),
    });
    let s = r.handle_update(e, &bad, now).unwrap();
    assert_eq!(s.reject_reason, Some(RejectReason::TreatAsWithdraw));
    r.process();
    assert!(r.best(&net("10.3.0.0/24")).is_none());
    // A malformed LOCAL_PREF from eBGP is ignored, not a withdraw (RFC 7606 7.5).
    let mut lp = announce(&["10.3.0.0/24"], attrs(&[65100], "192.0.2.9"));
    lp.issues.push(AttrIssue {
        action: Rfc7606Action::TreatAsWithdraw,
        type_code: crate::wire::attr::type_code::LOCAL_PREF,
        error: UpdateError::new(5, "bad length", Bytes::new()),
    });
    assert_eq!(r.handle_update(e, &lp, now).unwrap().accepted, 1);
    // Missing next hop: rejected.
    let mut nonh = attrs(&[65100], "192.0.2.9");
    nonh.next_hop = None;
    let s = r
        .handle_update(e, &announce(&["10.5.0.0/24"], nonh), now)
        .unwrap();
    assert_eq!(s.reject_reason, Some(RejectReason::NoNextHop));
    // Unknown / down peers are errors, not panics.
    assert_eq!(
        r.handle_update(PeerId(999), &withdraw(&[]), now),
        Err(RibError::UnknownPeer(PeerId(999)))
    );
}

/// A route whose attributes no longer fit one UPDATE to a peer (4096 octets; our prepend
/// makes them grow) is not sent to it; a version it had is withdrawn. Peers where it fits
/// still get it.
#[test]
fn route_too_big_for_one_update_is_withdrawn_not_sent() {
    let mut r = new_rib(|_| {});
    let e1 = up(&mut r, "192.0.2.9", 65100, |_| {});
    let e2 = up(&mut r, "198.51.100.9", 65200, |p| {
        p.local_v4 = Some(v4("198.51.100.1"))
    });
    let big = up(&mut r, "198.51.100.10", 65300, |p| {
        p.local_v4 = Some(v4("198.51.100.1"));
        p.send_ctx.extended_message = true;
    });
    r.drain_output();
    let now = Instant::now();
    let small = attrs(&[65100], "192.0.2.9");
    r.handle_update(e1, &announce(&["10.8.0.0/24"], small), now)
        .unwrap();
    let out = r.drain_output();
    assert!(has(&out, e2, "10.8.0.0/24"));
    // 1015 communities: 4060 octets, the received UPDATE fits 4096; with our AS prepended
    // and the NEXT_HOP ours, the one to e2 would not.
    let mut a = attrs(&[65100], "192.0.2.9");
    a.communities = (0..1015u16).map(|v| Community::new(65100, v)).collect();
    r.handle_update(e1, &announce(&["10.8.0.0/24"], a), now)
        .unwrap();
    let out = r.drain_output();
    let s = sent(&out, e2);
    assert!(!s.announced.contains_key(&net("10.8.0.0/24")));
    assert!(s.withdrawn.contains(&net("10.8.0.0/24")));
    for b in &out {
        for m in &b.messages {
            assert!(
                m.to_bytes(&b.ctx).is_ok(),
                "every message encodes within the limit"
            );
        }
    }
    // The extended-message peer (65535 octets) gets it.
    let s = sent(&out, big);
    assert_eq!(s.announced[&net("10.8.0.0/24")].communities.len(), 1015);
}

#[test]
fn ebgp_export_rules_med_communities_next_hop() {
    let mut r = new_rib(|_| {});
    let i = up(&mut r, "10.0.1.1", AS, |_| {});
    let e1 = up(&mut r, "192.0.2.9", 65100, |_| {});
    let e2 = up(&mut r, "198.51.100.9", 65200, |p| {
        p.local_v4 = Some(v4("198.51.100.1"))
    });
    let keep = up(&mut r, "203.0.113.9", 65300, |p| {
        p.next_hop = NextHopMode::Keep
    });
    r.drain_output();
    let now = Instant::now();
    // Local route with MED: MED kept towards eBGP (it is ours), next hop self.
    r.originate(
        net("10.9.0.0/24"),
        PathAttributes {
            med: Some(5),
            ..Default::default()
        },
    );
    // eBGP route from AS 65100 with MED: MED not passed to AS 65200.
    let mut a = attrs(&[65100], "192.0.2.9");
    a.med = Some(7);
    r.handle_update(e1, &announce(&["10.8.0.0/24"], a), now)
        .unwrap();
    // NO_EXPORT / NO_ADVERTISE local routes.
    r.originate(
        net("10.7.0.0/24"),
        PathAttributes {
            communities: vec![Community::NO_EXPORT],
            ..Default::default()
        },
    );
    r.originate(
        net("10.6.0.0/24"),
        PathAttributes {
            communities: vec![Community::NO_ADVERTISE],
            ..Default::default()
        },
    );
    let out = r.drain_output();
    let s2 = sent(&out, e2);
    let local = &s2.announced[&net("10.9.0.0/24")];
    assert_eq!(local.med, Some(5));
    assert_eq!(local.next_hop, Some(v4("198.51.100.1")));
    assert_eq!(local.as_path, Some(AsPath::from_sequence(vec![AS])));
    assert_eq!(local.origin, Some(Origin::Igp));
    let learned = &s2.announced[&net("10.8.0.0/24")];
    assert_eq!(learned.med, None);
    assert_eq!(
        learned.as_path,
        Some(AsPath::from_sequence(vec![AS, 65100]))
    );
    assert!(!s2.announced.contains_key(&net("10.7.0.0/24")), "NO_EXPORT");
    assert!(
        !s2.announced.contains_key(&net("10.6.0.0/24")),
        "NO_ADVERTISE"
    );
    let si = sent(&out, i);
    assert!(
        si.announced.contains_key(&net("10.7.0.0/24")),
        "NO_EXPORT goes to iBGP"
    );
    assert!(!si.announced.contains_key(&net("10.6.0.0/24")));
    assert_eq!(
        si.announced[&net("10.8.0.0/24")].next_hop,
        Some(v4("192.0.2.9"))
    );
    assert_eq!(
        si.announced[&net("10.8.0.0/24")].med,
        Some(7),
        "MED kept inside the AS"
    );
    assert_eq!(
        si.announced[&net("10.9.0.0/24")].next_hop,
        Some(v4("10.0.0.1"))
    );
    // Split horizon: e1 does not get its own route back.
    assert!(!sent(&out, e1).announced.contains_key(&net("10.8.0.0/24")));
    // keep-next-hop towards eBGP.
    assert_eq!(
        sent(&out, keep).announced[&net("10.8.0.0/24")].next_hop,
        Some(v4("192.0.2.9"))
    );
    // propagate_med.
    let mut r = new_rib(|c| c.propagate_med = true);
    let e1 = up(&mut r, "192.0.2.9", 65100, |_| {});
    let e2 = up(&mut r, "198.51.100.9", 65200, |_| {});
    let mut a = attrs(&[65100], "192.0.2.9");
    a.med = Some(7);
    r.handle_update(e1, &announce(&["10.8.0.0/24"], a), now)
        .unwrap();
    let out = r.drain_output();
    assert_eq!(sent(&out, e2).announced[&net("10.8.0.0/24")].med, Some(7));
}

#[test]
fn rfc8212_default_deny_for_ebgp() {
    let mut r = new_rib(|c| c.rfc8212_default_deny = true);
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    let i = up(&mut r, "10.0.1.1", AS, |_| {});
    let accept = Arc::new(Policy::with_default("all", Verdict::Accept));
    let ok = up(&mut r, "198.51.100.9", 65200, |p| {
        p.import_policy = Some(accept.clone());
        p.export_policy = Some(accept.clone());
    });
    r.drain_output();
    let now = Instant::now();
    let s = r
        .handle_update(
            e,
            &announce(&["10.1.0.0/24"], attrs(&[65100], "192.0.2.9")),
            now,
        )
        .unwrap();
    assert_eq!(s.reject_reason, Some(RejectReason::Rfc8212));
    let s = r
        .handle_update(
            ok,
            &announce(&["10.2.0.0/24"], attrs(&[65200], "198.51.100.9")),
            now,
        )
        .unwrap();
    assert_eq!(s.accepted, 1);
    r.handle_update(i, &announce(&["10.3.0.0/24"], attrs(&[], "10.0.1.1")), now)
        .unwrap();
    let out = r.drain_output();
    assert!(
        sent(&out, e).announced.is_empty(),
        "no export policy: nothing to eBGP"
    );
    assert!(has(&out, ok, "10.3.0.0/24"));
    assert!(
        has(&out, i, "10.2.0.0/24"),
        "iBGP is not subject to RFC 8212"
    );
}

#[test]
fn import_and_export_policy() {
    let mut r = new_rib(|_| {});
    let import = Arc::new(Policy {
        name: "in".into(),
        default: Verdict::Accept,
        rules: vec![
            Rule {
                conditions: crate::policy::Match {
                    prefixes: vec![PrefixRange {
                        prefix: net("10.99.0.0/16"),
                        ge: 16,
                        le: 32,
                    }],
                    ..Default::default()
                },
                action: RuleAction::Reject,
                set: Modifications::default(),
            },
            Rule {
                conditions: Default::default(),
                action: RuleAction::Accept,
                set: Modifications {
                    local_pref: Some(300),
                    ..Default::default()
                },
            },
        ],
    });
    let export = Arc::new(Policy {
        name: "out".into(),
        default: Verdict::Accept,
        rules: vec![Rule {
            conditions: Default::default(),
            action: RuleAction::Accept,
            set: Modifications {
                med: Some(42),
                prepend: Some((AS, 2)),
                add_communities: vec![Community::new(65000, 1)],
                ..Default::default()
            },
        }],
    });
    let e = up(&mut r, "192.0.2.9", 65100, |p| {
        p.import_policy = Some(import)
    });
    let e2 = up(&mut r, "198.51.100.9", 65200, |p| {
        p.export_policy = Some(export)
    });
    r.drain_output();
    let now = Instant::now();
    let s = r
        .handle_update(
            e,
            &announce(
                &["10.1.0.0/24", "10.99.1.0/24"],
                attrs(&[65100], "192.0.2.9"),
            ),
            now,
        )
        .unwrap();
    assert_eq!(
        (s.accepted, s.rejected, s.reject_reason),
        (1, 1, Some(RejectReason::Policy))
    );
    r.process();
    assert_eq!(
        r.best(&net("10.1.0.0/24")).unwrap().attrs.local_pref,
        Some(300)
    );
    let out = r.drain_output();
    let a = &sent(&out, e2).announced[&net("10.1.0.0/24")];
    assert_eq!(a.med, Some(42));
    assert_eq!(a.local_pref, None);
    assert_eq!(a.communities, vec![Community::new(65000, 1)]);
    assert_eq!(
        a.as_path,
        Some(AsPath::from_sequence(vec![AS, AS, AS, 65100]))
    );
    // Changing the export policy moves the peer to another group and sends the difference.
    let mut i2 = r.peer_info(e2).unwrap().clone();
    i2.export_policy = Some(Arc::new(Policy {
        name: "deny-10.1".into(),
        default: Verdict::Accept,
        rules: vec![Rule {
            conditions: crate::policy::Match {
                prefixes: vec![PrefixRange {
                    prefix: net("10.1.0.0/24"),
                    ge: 24,
                    le: 24,
                }],
                ..Default::default()
            },
            action: RuleAction::Reject,
            set: Modifications::default(),
        }],
    }));
    r.originate(net("10.50.0.0/24"), PathAttributes::default());
    r.update_peer(e2, i2).unwrap();
    let out = r.drain_output();
    let s = sent(&out, e2);
    assert!(s.withdrawn.contains(&net("10.1.0.0/24")), "{s:?}");
    assert!(s.announced.contains_key(&net("10.50.0.0/24")));
    assert!(s.eor.is_empty(), "a resync is not a new session");
    assert_eq!(r.adj_rib_out(e2).len(), 1);
}

#[test]
fn graceful_restart_helper_sweeps_at_end_of_rib() {
    let mut r = new_rib(|_| {});
    let p = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    let other = up(&mut r, "192.0.2.9", 65100, |_| {});
    let t0 = Instant::now();
    r.handle_update(
        p,
        &announce(&["10.1.0.0/24", "10.2.0.0/24"], attrs(&[], "10.0.1.1")),
        t0,
    )
    .unwrap();
    r.drain_output();
    r.drain_events();
    r.peer_down(p, t0, true).unwrap();
    assert!(
        r.drain_events().is_empty(),
        "stale routes stay in the Loc-RIB"
    );
    assert!(
        sent(&r.drain_output(), other).withdrawn.is_empty(),
        "and stay advertised"
    );
    assert!(r.best(&net("10.1.0.0/24")).unwrap().stale);
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(120)));
    let t1 = t0 + Duration::from_secs(10);
    let i = r.peer_info(p).unwrap().clone();
    r.peer_up(p, i, t1).unwrap();
    assert_eq!(
        r.next_deadline(),
        Some(t1 + Duration::from_secs(360)),
        "stale timer"
    );
    r.handle_update(p, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t1)
        .unwrap();
    assert_eq!(r.peer_counts(p).unwrap().stale, 1);
    r.handle_update(p, &eor(Family::IPV4_UNICAST), t1).unwrap();
    let ev = r.drain_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(
        matches!(&ev[0], RibEvent::BestChanged { best: None, prefix, .. } if *prefix == net("10.2.0.0/24"))
    );
    assert!(!r.best(&net("10.1.0.0/24")).unwrap().stale);
    assert!(sent(&r.drain_output(), other)
        .withdrawn
        .contains(&net("10.2.0.0/24")));
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn graceful_restart_helper_timeouts_and_non_graceful_down() {
    let t0 = Instant::now();
    // Restart time passes while the peer is down.
    let mut r = new_rib(|_| {});
    let p = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    r.handle_update(p, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t0)
        .unwrap();
    r.peer_down(p, t0, true).unwrap();
    r.handle_timeout(t0 + Duration::from_secs(119));
    r.process();
    assert!(r.best(&net("10.1.0.0/24")).is_some());
    r.handle_timeout(t0 + Duration::from_secs(120));
    r.process();
    assert!(r.best(&net("10.1.0.0/24")).is_none());
    // Back up but no End-of-RIB: stale time sweeps.
    let mut r = new_rib(|c| c.stale_time = Duration::from_secs(30));
    let p = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    r.handle_update(p, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t0)
        .unwrap();
    r.peer_down(p, t0, true).unwrap();
    let i = r.peer_info(p).unwrap().clone();
    r.peer_up(p, i, t0).unwrap();
    r.handle_timeout(t0 + Duration::from_secs(30));
    r.process();
    assert!(r.best(&net("10.1.0.0/24")).is_none());
    // Forwarding state not preserved (F bit clear) on reconnect: flushed at once.
    let mut r = new_rib(|_| {});
    let p = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    r.handle_update(p, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t0)
        .unwrap();
    r.peer_down(p, t0, true).unwrap();
    let mut i = r.peer_info(p).unwrap().clone();
    i.graceful_restart = gr_cap(120, false);
    r.peer_up(p, i, t0).unwrap();
    r.process();
    assert!(r.best(&net("10.1.0.0/24")).is_none());
    // Not graceful (or no GR negotiated): withdrawn at once.
    let mut r = new_rib(|_| {});
    let p = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    let q = up(&mut r, "10.0.1.2", AS, |_| {});
    r.handle_update(p, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t0)
        .unwrap();
    r.handle_update(q, &announce(&["10.2.0.0/24"], attrs(&[], "10.0.1.2")), t0)
        .unwrap();
    r.peer_down(p, t0, false).unwrap();
    r.peer_down(q, t0, true).unwrap();
    r.process();
    assert!(r.best(&net("10.1.0.0/24")).is_none());
    assert!(
        r.best(&net("10.2.0.0/24")).is_none(),
        "q has no GR capability"
    );
    assert_eq!(r.next_deadline(), None);
}

/// The per-peer stale time wins over the global one; a peer without one uses the global.
#[test]
fn graceful_restart_helper_per_peer_stale_time() {
    let t0 = Instant::now();
    let mut r = new_rib(|c| c.stale_time = Duration::from_secs(300));
    let p = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true);
        i.stale_time = Some(Duration::from_secs(20));
    });
    let q = up(&mut r, "10.0.1.2", AS, |i| {
        i.graceful_restart = gr_cap(120, true);
    });
    r.handle_update(p, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t0)
        .unwrap();
    r.handle_update(q, &announce(&["10.2.0.0/24"], attrs(&[], "10.0.1.2")), t0)
        .unwrap();
    for id in [p, q] {
        r.peer_down(id, t0, true).unwrap();
        let i = r.peer_info(id).unwrap().clone();
        r.peer_up(id, i, t0).unwrap();
    }
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(20)));
    r.handle_timeout(t0 + Duration::from_secs(20));
    r.process();
    assert!(r.best(&net("10.1.0.0/24")).is_none(), "p's 20 s stale time");
    assert!(
        r.best(&net("10.2.0.0/24")).is_some(),
        "q keeps the global 300 s"
    );
    r.handle_timeout(t0 + Duration::from_secs(299));
    r.process();
    assert!(r.best(&net("10.2.0.0/24")).is_some());
    r.handle_timeout(t0 + Duration::from_secs(300));
    r.process();
    assert!(r.best(&net("10.2.0.0/24")).is_none());
}

#[test]
fn restarting_speaker_defers_until_end_of_rib_from_all() {
    let t0 = Instant::now();
    let mut c = RibConfig::new(AS, v4("10.0.0.1"));
    c.selection_deferral = Some(Duration::from_secs(60));
    let mut r = Rib::new(c.clone(), t0);
    let p1 = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    let p2 = up(&mut r, "10.0.1.2", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    let e = up(&mut r, "192.0.2.9", 65100, |_| {}); // no GR: does not hold selection
    r.originate(net("10.9.0.0/24"), PathAttributes::default());
    r.handle_update(p1, &announce(&["10.1.0.0/24"], attrs(&[], "10.0.1.1")), t0)
        .unwrap();
    r.handle_update(p1, &eor(Family::IPV4_UNICAST), t0).unwrap();
    assert!(r.drain_output().is_empty());
    assert!(r.drain_events().is_empty());
    assert!(r.is_deferring());
    assert_eq!(r.next_deadline(), Some(t0 + Duration::from_secs(60)));
    r.handle_update(p2, &announce(&["10.2.0.0/24"], attrs(&[], "10.0.1.2")), t0)
        .unwrap();
    r.handle_update(p2, &eor(Family::IPV4_UNICAST), t0).unwrap();
    let ev = r.drain_events();
    assert_eq!(ev.first(), Some(&RibEvent::SelectionDeferralDone));
    assert_eq!(ev.len(), 4, "{ev:?}");
    let out = r.drain_output();
    let to_e = sent(&out, e);
    assert_eq!(to_e.announced.len(), 3);
    assert_eq!(to_e.eor, vec![Family::IPV4_UNICAST]);
    assert_eq!(sent(&out, p1).eor, vec![Family::IPV4_UNICAST]);
    // The bound: a configured peer never comes up.
    let mut r = Rib::new(c, t0);
    let p1 = up(&mut r, "10.0.1.1", AS, |i| {
        i.graceful_restart = gr_cap(120, true)
    });
    let _never = r.add_peer(info("10.0.1.2", AS));
    r.handle_update(p1, &eor(Family::IPV4_UNICAST), t0).unwrap();
    assert!(r.drain_output().is_empty());
    r.handle_timeout(t0 + Duration::from_secs(59));
    assert!(r.is_deferring());
    r.handle_timeout(t0 + Duration::from_secs(60));
    assert!(!r.is_deferring());
    assert_eq!(sent(&r.drain_output(), p1).eor, vec![Family::IPV4_UNICAST]);
}

/// The largest encoded message of each batch.
fn encode_all(batches: &[OutBatch]) -> Vec<usize> {
    batches
        .iter()
        .map(|b| {
            b.messages
                .iter()
                .map(|m| m.to_bytes(&b.ctx).unwrap().len())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

#[test]
fn update_packing_and_split_on_size() {
    let mut r = new_rib(|_| {});
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    let x = up(&mut r, "192.0.2.10", 65100, |i| {
        i.send_ctx.extended_message = true
    });
    let v6 = up(&mut r, "fd00::9", 65100, |_| {});
    r.drain_output();
    for n in 0..2000u32 {
        let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (n << 8))), 24).unwrap();
        r.originate(p, PathAttributes::default());
        let p6 = IpNet::new(
            IpAddr::V6(Ipv6Addr::from((0xfd00_u128 << 112) | (u128::from(n) << 64))),
            64,
        )
        .unwrap();
        r.originate(p6, PathAttributes::default());
    }
    let out = r.drain_output();
    let s = sent(&out, e);
    assert_eq!(s.announced.len(), 2000);
    assert_eq!(
        s.updates, 2,
        "2000 /24 = 8000 octets of NLRI: two 4096-octet UPDATEs"
    );
    let s = sent(&out, x);
    assert_eq!(
        (s.announced.len(), s.updates),
        (2000, 1),
        "extended message: one UPDATE"
    );
    let s = sent(&out, v6);
    assert_eq!(s.announced.len(), 2000);
    assert_eq!(s.updates, 5, "2000 * 9 octets in MP_REACH: 18000 / ~4050");
    assert!(matches!(
        &s.announced[&net("fd00:0:0:5::/64")].mp_reach,
        Some(MpReach {
            next_hop: MpNextHop::Ipv6 { .. },
            ..
        })
    ));
    // Every message encodes within the limit and decodes back to what was sent.
    for b in &out {
        for m in &b.messages {
            let bytes = m.to_bytes(&b.ctx).unwrap();
            assert!(bytes.len() <= b.ctx.max_message_len());
            assert_eq!(&Message::decode(&bytes, &b.ctx).unwrap(), m);
        }
    }
    // Withdrawals pack too.
    for n in 0..2000u32 {
        let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (n << 8))), 24).unwrap();
        r.withdraw_local(p);
    }
    let out = r.drain_output();
    let s = sent(&out, e);
    assert_eq!((s.withdrawn.len(), s.updates), (2000, 2));
    for (b, len) in out.iter().zip(encode_all(&out)) {
        assert!(len <= b.ctx.max_message_len());
    }
    // Different attributes: different UPDATEs.
    r.originate(
        net("10.200.0.0/24"),
        PathAttributes {
            med: Some(1),
            ..Default::default()
        },
    );
    r.originate(
        net("10.200.1.0/24"),
        PathAttributes {
            med: Some(1),
            ..Default::default()
        },
    );
    r.originate(
        net("10.200.2.0/24"),
        PathAttributes {
            med: Some(2),
            ..Default::default()
        },
    );
    let s = sent(&r.drain_output(), e);
    assert_eq!((s.announced.len(), s.updates), (3, 2));
}

#[test]
fn update_group_of_1000_peers_computes_once() {
    let mut r = new_rib(|c| c.cluster_id = Some(v4("10.0.0.1")));
    let peers: Vec<PeerId> = (0..1000u32)
        .map(|n| {
            let addr = Ipv4Addr::from(0x0A01_0000 + n + 1).to_string();
            up(&mut r, &addr, AS, |p| p.rr_client = true)
        })
        .collect();
    let initial = r.drain_output();
    assert_eq!(
        initial.len(),
        1,
        "one shared End-of-RIB batch for the joiners"
    );
    assert_eq!(initial[0].peers.len(), 1000);
    assert_eq!(r.stats().groups, 1);
    let before = r.stats().export_computations;
    for n in 0..100u32 {
        let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A64_0000 + (n << 8))), 24).unwrap();
        r.originate(p, PathAttributes::default());
    }
    let out = r.drain_output();
    assert_eq!(
        r.stats().export_computations - before,
        100,
        "once per prefix, not per peer"
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peers.len(), 1000);
    assert_eq!(
        out[0].messages.len(),
        1,
        "100 prefixes, one attribute set: one UPDATE"
    );
    // A client's route: reflected to the 999 others in one shared batch.
    let src = peers[7];
    let now = Instant::now();
    r.handle_update(
        src,
        &announce(&["10.200.0.0/24"], attrs(&[], "10.1.0.8")),
        now,
    )
    .unwrap();
    let out = r.drain_output();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peers.len(), 999);
    assert!(!out[0].peers.contains(&src));
    assert_eq!(r.stats().export_computations - before, 101);
    // Another client announces it better (lower router id): the original source now gets
    // it, the new source gets a withdraw.
    let better = peers[0];
    r.handle_update(
        better,
        &announce(&["10.200.0.0/24"], attrs(&[], "10.1.0.1")),
        now,
    )
    .unwrap();
    let out = r.drain_output();
    assert!(sent(&out, better).withdrawn.contains(&net("10.200.0.0/24")));
    assert!(has(&out, src, "10.200.0.0/24"));
    assert!(has(&out, peers[500], "10.200.0.0/24"));
    assert_eq!(r.peer_counts(better).unwrap().advertised, 100);
    assert_eq!(r.peer_counts(src).unwrap().advertised, 101);
    // Peer down: it leaves the group; its route is withdrawn from the others.
    r.peer_down(better, now, false).unwrap();
    let out = r.drain_output();
    assert!(!out.iter().any(|b| b.peers.contains(&better)));
    assert_eq!(
        sent(&out, peers[500]).announced[&net("10.200.0.0/24")].next_hop,
        Some(v4("10.1.0.8"))
    );
}

#[test]
fn route_refresh_regenerates_and_enhanced_sweeps() {
    let mut r = new_rib(|_| {});
    let e = up(&mut r, "192.0.2.9", 65100, |_| {});
    let enh = up(&mut r, "198.51.100.9", 65200, |i| {
        i.enhanced_route_refresh = true
    });
    r.originate(net("10.9.0.0/24"), PathAttributes::default());
    r.drain_output();
    let now = Instant::now();
    let req = RouteRefresh {
        afi: crate::wire::Afi::IPV4,
        subtype: RouteRefreshSubtype::Request,
        safi: crate::wire::Safi::UNICAST,
    };
    r.handle_route_refresh(e, &req, now).unwrap();
    r.handle_route_refresh(enh, &req, now).unwrap();
    let out = r.drain_output();
    assert_eq!(out.len(), 2);
    let s = sent(&out, e);
    assert!(s.announced.contains_key(&net("10.9.0.0/24")) && s.refresh.is_empty());
    let s = sent(&out, enh);
    assert!(s.announced.contains_key(&net("10.9.0.0/24")));
    assert_eq!(
        s.refresh,
        vec![RouteRefreshSubtype::BoRR, RouteRefreshSubtype::EoRR]
    );
    assert!(matches!(
        out.iter()
            .find(|b| b.peers == vec![enh])
            .unwrap()
            .messages
            .first(),
        Some(Message::RouteRefresh(_))
    ));
    // Receiving side: BoRR, re-announce a subset, EoRR: the rest is swept.
    r.handle_update(
        e,
        &announce(
            &["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"],
            attrs(&[65100], "192.0.2.9"),
        ),
        now,
    )
    .unwrap();
    let rr = |subtype| RouteRefresh {
        afi: crate::wire::Afi::IPV4,
        subtype,
        safi: crate::wire::Safi::UNICAST,
    };
    r.handle_route_refresh(e, &rr(RouteRefreshSubtype::BoRR), now)
        .unwrap();
    assert!(r.next_deadline().is_some());
    r.handle_update(
        e,
        &announce(&["10.2.0.0/24"], attrs(&[65100], "192.0.2.9")),
        now,
    )
    .unwrap();
    r.handle_route_refresh(e, &rr(RouteRefreshSubtype::EoRR), now)
        .unwrap();
    r.process();
    assert_eq!(r.adj_rib_in(e).len(), 1);
    assert!(r.best(&net("10.2.0.0/24")).is_some());
    assert!(r.best(&net("10.1.0.0/24")).is_none());
    assert_eq!(r.next_deadline(), None);
    // No EoRR: swept at the refresh stale deadline.
    r.handle_route_refresh(e, &rr(RouteRefreshSubtype::BoRR), now)
        .unwrap();
    r.handle_timeout(now + Duration::from_secs(360));
    r.process();
    assert!(r.adj_rib_in(e).is_empty());
}

#[test]
fn add_path_receive_keeps_paths_apart_and_ipv6() {
    let mut r = new_rib(|c| c.max_paths = 2);
    let p = up(&mut r, "fd00::2", AS, |_| {});
    let now = Instant::now();
    let mp = |nh: &str, id: u32| PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        mp_reach: Some(MpReach::new(
            Family::IPV6_UNICAST,
            MpNextHop::Ipv6 {
                global: nh.parse().unwrap(),
                link_local: None,
            },
            vec![Nlri::with_path_id(net("fd10::/64"), id)],
        )),
        ..Default::default()
    };
    r.handle_update(p, &Update::new(mp("fd00::a", 1), vec![]), now)
        .unwrap();
    r.handle_update(p, &Update::new(mp("fd00::b", 2), vec![]), now)
        .unwrap();
    let ev = r.drain_events();
    match ev.last() {
        Some(RibEvent::BestChanged {
            family,
            best: Some(b),
            multipath,
            ..
        }) => {
            assert_eq!(*family, Family::IPV6_UNICAST);
            assert_eq!(b.path_id, 1);
            assert_eq!(multipath.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.paths(&net("fd10::/64")).len(), 2);
    // Withdraw path 1 via MP_UNREACH.
    let w = Update {
        attributes: PathAttributes {
            mp_unreach: Some(crate::wire::MpUnreach::new(
                Family::IPV6_UNICAST,
                vec![Nlri::with_path_id(net("fd10::/64"), 1)],
            )),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(r.handle_update(p, &w, now).unwrap().withdrawn, 1);
    r.process();
    assert_eq!(r.best(&net("fd10::/64")).unwrap().path_id, 2);
}

/// Not an assertion of speed: prints the time to import 100k routes from 10 peers (10k
/// each) and to run best-path selection over them, and checks the result.
#[test]
fn micro_measure_import_and_best_path() {
    let mut r = new_rib(|_| {});
    let peers: Vec<PeerId> = (0..10)
        .map(|i| up(&mut r, &format!("192.0.2.{}", i + 1), 65100 + i, |_| {}))
        .collect();
    let now = Instant::now();
    let started = Instant::now();
    // Every peer sends the same 10k prefixes: 100k paths, 10 candidates per prefix.
    for (i, p) in peers.iter().enumerate() {
        let a = attrs(&[65100 + i as u32], &format!("192.0.2.{}", i + 1));
        for chunk in 0..10u32 {
            let nlri: Vec<Nlri> = (0..1000u32)
                .map(|j| {
                    let n = chunk * 1000 + j;
                    Nlri::new(
                        IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (n << 8))), 24).unwrap(),
                    )
                })
                .collect();
            r.handle_update(*p, &Update::new(a.clone(), nlri), now)
                .unwrap();
        }
    }
    let imported = started.elapsed();
    let started = Instant::now();
    r.process();
    let decided = started.elapsed();
    eprintln!(
        "micro-measure (debug build unless --release): import 100k paths {imported:?}, \
         best path + export for 10k prefixes x 10 paths {decided:?}"
    );
    assert_eq!(r.stats().prefixes, 10_000);
    assert_eq!(
        r.best(&net("10.0.5.0/24")).unwrap().source,
        Source::Peer(peers[0])
    );
}

mod prop {
    //! Incremental updates equal a from-scratch computation: after any sequence of
    //! announcements, withdrawals, session resets and local originations, what every peer
    //! has received (replaying the batches in order) equals what a fresh RIB loaded with
    //! the final state sends in its initial advertisement, and equals `adj_rib_out`.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Announce {
            peer: usize,
            prefix: usize,
            variant: u8,
        },
        Withdraw {
            peer: usize,
            prefix: usize,
        },
        Reset {
            peer: usize,
        },
        GracefulDown {
            peer: usize,
        },
        Up {
            peer: usize,
        },
        EndOfRib {
            peer: usize,
        },
        Originate {
            prefix: usize,
            variant: u8,
        },
        WithdrawLocal {
            prefix: usize,
        },
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..4usize, 0..6usize, 0..4u8).prop_map(|(peer, prefix, variant)| Op::Announce { peer, prefix, variant }),
            2 => (0..4usize, 0..6usize).prop_map(|(peer, prefix)| Op::Withdraw { peer, prefix }),
            1 => (0..4usize).prop_map(|peer| Op::Reset { peer }),
            1 => (0..4usize).prop_map(|peer| Op::GracefulDown { peer }),
            1 => (0..4usize).prop_map(|peer| Op::Up { peer }),
            1 => (0..4usize).prop_map(|peer| Op::EndOfRib { peer }),
            1 => (0..6usize, 0..4u8).prop_map(|(prefix, variant)| Op::Originate { prefix, variant }),
            1 => (0..6usize).prop_map(|prefix| Op::WithdrawLocal { prefix }),
            2 => Just(Op::Drain),
        ]
    }

    const PEERS: [(&str, u32, bool); 4] = [
        ("10.0.1.1", AS, true),
        ("10.0.1.2", AS, true),
        ("10.0.2.1", AS, false),
        ("192.0.2.9", 65100, false),
    ];

    fn setup() -> (Rib, Vec<PeerId>, Vec<PeerInfo>) {
        let mut r = new_rib(|c| c.cluster_id = Some(v4("10.0.0.100")));
        let mut ids = Vec::new();
        let mut infos = Vec::new();
        for (addr, asn, client) in PEERS {
            let mut i = info(addr, asn);
            i.rr_client = client;
            i.graceful_restart = gr_cap(120, true);
            ids.push(r.add_peer(i.clone()));
            infos.push(i);
        }
        (r, ids, infos)
    }

    fn prefix(n: usize) -> IpNet {
        net(&format!("10.{}.0.0/24", 100 + n))
    }

    fn variant_attrs(peer: usize, variant: u8) -> PathAttributes {
        let (addr, asn, _) = PEERS[peer];
        let path: Vec<u32> = if asn == AS { vec![] } else { vec![asn] };
        let mut a = attrs(&path, addr);
        a.med = Some(u32::from(variant));
        if variant == 2 {
            a.communities.push(Community::new(65000, 7));
        }
        if variant == 3 {
            a.communities.push(Community::NO_EXPORT);
        }
        a
    }

    type Views = BTreeMap<PeerId, BTreeMap<IpNet, PathAttributes>>;

    fn replay(views: &mut Views, batches: &[OutBatch]) {
        for b in batches {
            for p in &b.peers {
                let v = views.entry(*p).or_default();
                let s = sent(std::slice::from_ref(b), *p);
                for w in s.withdrawn {
                    v.remove(&w);
                }
                v.extend(s.announced);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn incremental_equals_from_scratch(ops in proptest::collection::vec(op(), 1..60)) {
            let now = Instant::now();
            let (mut r, ids, infos) = setup();
            let mut views: Views = BTreeMap::new();
            for (id, i) in ids.iter().zip(&infos) {
                r.peer_up(*id, i.clone(), now).unwrap();
            }
            for op in ops {
                match op {
                    Op::Announce { peer, prefix: p, variant } => {
                        let u = Update::new(variant_attrs(peer, variant), vec![Nlri::new(prefix(p))]);
                        let _ = r.handle_update(ids[peer], &u, now);
                    }
                    Op::Withdraw { peer, prefix: p } => {
                        let u = Update { withdrawn: vec![Nlri::new(prefix(p))], ..Default::default() };
                        let _ = r.handle_update(ids[peer], &u, now);
                    }
                    Op::Reset { peer } => {
                        // Flush what the session had before it goes down.
                        replay(&mut views, &r.drain_output());
                        r.peer_down(ids[peer], now, false).unwrap();
                        views.remove(&ids[peer]);
                        r.peer_up(ids[peer], infos[peer].clone(), now).unwrap();
                    }
                    Op::GracefulDown { peer } => {
                        replay(&mut views, &r.drain_output());
                        r.peer_down(ids[peer], now, true).unwrap();
                        views.remove(&ids[peer]);
                    }
                    Op::Up { peer } => {
                        if !r.peer_counts(ids[peer]).unwrap().up {
                            r.peer_up(ids[peer], infos[peer].clone(), now).unwrap();
                        }
                    }
                    Op::EndOfRib { peer } => {
                        let _ = r.handle_update(ids[peer], &eor(Family::IPV4_UNICAST), now);
                    }
                    Op::Originate { prefix: p, variant } => {
                        let communities = if variant == 3 { vec![Community::NO_EXPORT] } else { vec![] };
                        r.originate(prefix(p), PathAttributes { med: Some(u32::from(variant)), communities, ..Default::default() });
                    }
                    Op::WithdrawLocal { prefix: p } => r.withdraw_local(prefix(p)),
                    Op::Drain => replay(&mut views, &r.drain_output()),
                }
            }
            replay(&mut views, &r.drain_output());
            // From scratch.
            let (mut fresh, fids, _) = setup();
            for (n, id) in fids.iter().enumerate() {
                if !r.peer_counts(ids[n]).unwrap().up {
                    // A peer that is down: its stale routes, if any, come from a session
                    // that then goes down gracefully.
                    fresh.peer_up(*id, infos[n].clone(), now).unwrap();
                    for route in r.adj_rib_in(ids[n]) {
                        let u = Update::new((*route.attrs).clone(), vec![Nlri::new(route.prefix)]);
                        fresh.handle_update(*id, &u, now).unwrap();
                    }
                    fresh.peer_down(*id, now, true).unwrap();
                    continue;
                }
                fresh.peer_up(*id, infos[n].clone(), now).unwrap();
                for route in r.adj_rib_in(ids[n]) {
                    let u = Update::new((*route.attrs).clone(), vec![Nlri::new(route.prefix)]);
                    fresh.handle_update(*id, &u, now).unwrap();
                }
            }
            for (p, a) in r.local_routes() {
                fresh.originate(p, (**a).clone());
            }
            let mut fresh_views: Views = BTreeMap::new();
            replay(&mut fresh_views, &fresh.drain_output());
            for (n, id) in ids.iter().enumerate() {
                let got = views.get(id).cloned().unwrap_or_default();
                let want = fresh_views.get(&fids[n]).cloned().unwrap_or_default();
                prop_assert_eq!(&got, &want, "peer {}", n);
                let out: BTreeMap<IpNet, PathAttributes> = r
                    .adj_rib_out(*id)
                    .into_iter()
                    .map(|(_, p, a)| (p, (*a).clone()))
                    .collect();
                prop_assert_eq!(&got, &out, "adj_rib_out of peer {}", n);
            }
            prop_assert_eq!(
                r.loc_rib().into_iter().map(|x| (x.prefix, x.source, x.attrs)).collect::<Vec<_>>(),
                fresh.loc_rib().into_iter().map(|x| (x.prefix, x.source, x.attrs)).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn peer_info_from_open_exchange() {
    use crate::wire::{AddPathDirection, AddPathEntry, Capability, Open};
    let gr = GracefulRestartCap {
        restart_state: false,
        notification: true,
        restart_time: 90,
        families: vec![(Family::IPV4_UNICAST, true)],
    };
    let local = Open::new(
        AS,
        90,
        v4("10.0.0.1"),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::FourOctetAs(AS),
            Capability::GracefulRestart(gr.clone()),
            Capability::EnhancedRouteRefresh,
            Capability::AddPath(vec![AddPathEntry {
                family: Family::IPV4_UNICAST,
                direction: AddPathDirection::Send,
            }]),
        ],
    );
    let remote = Open::new(
        AS,
        90,
        v4("10.0.0.2"),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(AS),
            Capability::GracefulRestart(gr.clone()),
            Capability::AddPath(vec![AddPathEntry {
                family: Family::IPV4_UNICAST,
                direction: AddPathDirection::Receive,
            }]),
        ],
    );
    let i = info("10.0.0.2", AS).negotiated(&local, &remote);
    assert_eq!(i.router_id, v4("10.0.0.2"));
    assert_eq!(i.families, vec![Family::IPV4_UNICAST]);
    assert!(i.send_ctx.four_octet_as && i.send_ctx.add_path(Family::IPV4_UNICAST));
    assert_eq!(i.graceful_restart, Some(gr));
    assert!(!i.enhanced_route_refresh);
    assert_eq!(i.restart_time(), Some(Duration::from_secs(90)));
    // A peer without multiprotocol capabilities speaks IPv4 unicast; no GR from us: none.
    let plain_local = Open::new(AS, 90, v4("10.0.0.1"), vec![Capability::FourOctetAs(AS)]);
    let i = info("10.0.0.2", AS).negotiated(&plain_local, &remote);
    assert_eq!(i.families, vec![Family::IPV4_UNICAST]);
    assert_eq!(i.graceful_restart, None);
    // Add-path send: our NLRI carry path id 1 and the peer's encoder accepts them.
    let mut r = new_rib(|c| c.cluster_id = Some(v4("10.0.0.1")));
    let p = r.add_peer(info("10.0.0.2", AS));
    let negotiated = r.peer_info(p).unwrap().negotiated(&local, &remote);
    r.peer_up(p, negotiated, Instant::now()).unwrap();
    r.originate(net("10.9.0.0/24"), PathAttributes::default());
    let out = r.drain_output();
    let u = out
        .iter()
        .flat_map(|b| b.messages.iter())
        .find_map(|m| match m {
            Message::Update(u) if !u.nlri.is_empty() => Some(u),
            _ => None,
        })
        .unwrap();
    assert_eq!(u.nlri, vec![Nlri::with_path_id(net("10.9.0.0/24"), 1)]);
    for b in &out {
        for m in &b.messages {
            let bytes = m.to_bytes(&b.ctx).unwrap();
            assert_eq!(&Message::decode(&bytes, &b.ctx).unwrap(), m);
        }
    }
}
