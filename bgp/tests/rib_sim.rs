//! Three RIBs (two agents and a route reflector) exchanging encoded messages through the
//! wire codec: reflection end to end, and graceful restart in both roles (the reflector as
//! helper, the restarting agent deferring selection) without the third node ever losing
//! the route.

// Helpers outside #[test] functions are test code too.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use wren_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig, RibEvent};
use wren_bgp::wire::{Family, GracefulRestartCap, Message, PathAttributes};

const AS: u32 = 65000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn gr() -> Option<GracefulRestartCap> {
    Some(GracefulRestartCap {
        restart_state: false,
        notification: true,
        restart_time: 120,
        families: vec![(Family::IPV4_UNICAST, true)],
    })
}

/// `local` is the node's own address (next hop self), `remote` the peer's.
fn peer_info(local: &str, remote: &str, rr_client: bool) -> PeerInfo {
    let mut i = PeerInfo::new(IpAddr::V4(ip(remote)), AS, AS);
    i.router_id = ip(remote);
    i.local_v4 = Some(ip(local));
    i.rr_client = rr_client;
    i.graceful_restart = gr();
    i
}

struct Net {
    nodes: Vec<Rib>,
    /// (node, peer id on that node) -> (other node, peer id there)
    links: BTreeMap<(usize, PeerId), (usize, PeerId)>,
    events: Vec<Vec<RibEvent>>,
    now: Instant,
}

impl Net {
    /// Deliver every pending message until nothing moves; returns messages delivered.
    fn run(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let mut moved = false;
            for n in 0..self.nodes.len() {
                let batches = self.nodes[n].drain_output();
                self.events[n].extend(self.nodes[n].drain_events());
                for b in batches {
                    for m in &b.messages {
                        // Encode once per batch message, deliver to every recipient.
                        let bytes = m.to_bytes(&b.ctx).unwrap();
                        assert!(bytes.len() <= b.ctx.max_message_len());
                        for p in &b.peers {
                            let (to, as_peer) = self.links[&(n, *p)];
                            let msg = Message::decode(&bytes, &b.ctx).unwrap();
                            delivered += 1;
                            moved = true;
                            match msg {
                                Message::Update(u) => {
                                    self.nodes[to].handle_update(as_peer, &u, self.now).unwrap();
                                }
                                Message::RouteRefresh(rr) => {
                                    self.nodes[to]
                                        .handle_route_refresh(as_peer, &rr, self.now)
                                        .unwrap();
                                }
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                }
            }
            for n in 0..self.nodes.len() {
                self.events[n].extend(self.nodes[n].drain_events());
            }
            if !moved {
                return delivered;
            }
        }
    }

    fn up(&mut self, a: usize, pa: PeerId, b: usize, pb: PeerId) {
        let ia = self.nodes[a].peer_info(pa).unwrap().clone();
        let ib = self.nodes[b].peer_info(pb).unwrap().clone();
        self.nodes[a].peer_up(pa, ia, self.now).unwrap();
        self.nodes[b].peer_up(pb, ib, self.now).unwrap();
    }
}

fn agent(rid: &str, now: Instant, restarting: bool) -> (Rib, PeerId) {
    let mut c = RibConfig::new(AS, ip(rid));
    if restarting {
        c.selection_deferral = Some(Duration::from_secs(120));
    }
    let mut r = Rib::new(c, now);
    let p = r.add_peer(peer_info(rid, "10.0.0.100", false));
    (r, p)
}

#[test]
fn reflection_and_graceful_restart_across_the_codec() {
    let now = Instant::now();
    let mut rr_cfg = RibConfig::new(AS, ip("10.0.0.100"));
    rr_cfg.cluster_id = Some(ip("10.0.0.100"));
    let mut rr = Rib::new(rr_cfg, now);
    let rr_a1 = rr.add_peer(peer_info("10.0.0.100", "10.0.0.1", true));
    let rr_a2 = rr.add_peer(peer_info("10.0.0.100", "10.0.0.2", true));
    let (mut a1, a1_rr) = agent("10.0.0.1", now, false);
    let (mut a2, a2_rr) = agent("10.0.0.2", now, false);
    a1.originate(net("10.244.1.0/24"), PathAttributes::default());
    a2.originate(net("10.244.2.0/24"), PathAttributes::default());
    let mut links = BTreeMap::new();
    links.insert((0, rr_a1), (1, a1_rr));
    links.insert((1, a1_rr), (0, rr_a1));
    links.insert((0, rr_a2), (2, a2_rr));
    links.insert((2, a2_rr), (0, rr_a2));
    let mut net_ = Net {
        nodes: vec![rr, a1, a2],
        links,
        events: vec![Vec::new(); 3],
        now,
    };
    net_.up(0, rr_a1, 1, a1_rr);
    net_.up(0, rr_a2, 2, a2_rr);
    assert!(net_.run() > 0);

    // agent 2 learned agent 1's CIDR through the reflector, next hop agent 1.
    let r = net_.nodes[2]
        .best(&net("10.244.1.0/24"))
        .expect("reflected route");
    assert_eq!(r.next_hop, Some(IpAddr::V4(ip("10.0.0.1"))));
    assert_eq!(r.attrs.originator_id, Some(ip("10.0.0.1")));
    assert_eq!(r.attrs.cluster_list, vec![ip("10.0.0.100")]);
    assert_eq!(r.attrs.local_pref, Some(100));
    // agent 1 did not get its own route back: only its local path.
    assert_eq!(net_.nodes[1].paths(&net("10.244.1.0/24")).len(), 1);
    assert!(net_.nodes[1].best(&net("10.244.2.0/24")).is_some());

    // agent 1 restarts: the reflector keeps its routes as stale (helper) ...
    net_.events[2].clear();
    net_.nodes[0].peer_down(rr_a1, now, true).unwrap();
    net_.run();
    assert!(net_.nodes[0].best(&net("10.244.1.0/24")).unwrap().stale);
    // ... and agent 1 comes back as a restarting speaker, deferring selection.
    let (mut a1, a1_rr) = agent("10.0.0.1", now, true);
    a1.originate(net("10.244.1.0/24"), PathAttributes::default());
    net_.nodes[1] = a1;
    net_.up(0, rr_a1, 1, a1_rr);
    net_.run();
    assert!(
        !net_.nodes[1].is_deferring(),
        "End-of-RIB from the reflector ended deferral"
    );
    assert!(net_.events[1].contains(&RibEvent::SelectionDeferralDone));
    assert!(!net_.nodes[0].best(&net("10.244.1.0/24")).unwrap().stale);
    assert_eq!(net_.nodes[0].peer_counts(rr_a1).unwrap().stale, 0);
    // agent 2 never saw the route go away.
    assert!(
        !net_.events[2].iter().any(|e| matches!(
            e,
            RibEvent::BestChanged { prefix, best: None, .. } if *prefix == net("10.244.1.0/24")
        )),
        "{:?}",
        net_.events[2]
    );
    assert!(net_.nodes[2].best(&net("10.244.1.0/24")).is_some());
    assert!(net_.nodes[1].best(&net("10.244.2.0/24")).is_some());
}
