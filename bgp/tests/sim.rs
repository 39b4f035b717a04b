//! Deterministic in-memory simulation of several speakers with virtual time.
//!
//! N [`SpeakerCore`]s are wired by in-memory connections that carry the encoded bytes
//! (the real codec on both ends) with a fixed one-way latency; the clock jumps to the next
//! event or timer deadline. Scenarios: route reflection and loop prevention, connection
//! collision, graceful restart (helper and restarting speaker), hold timer expiry,
//! max-prefix.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipnet::IpNet;
use wren_bgp::config::SpeakerConfig;
use wren_bgp::fsm::State;
use wren_bgp::rib::Route;
use wren_bgp::speaker::{ConnKey, CoreOptions, InterfaceLookup, Output, SpeakerCore};
use wren_bgp::transport::InterfaceAddresses;
use wren_bgp::wire::{Message, Notification, PathAttributes, RawAttribute, SessionContext};

const LATENCY: Duration = Duration::from_millis(5);

#[derive(Debug)]
enum Ev {
    Syn {
        from: usize,
        conn: ConnKey,
        to: usize,
    },
    Connected {
        node: usize,
        conn: ConnKey,
        local: SocketAddr,
        gen: u64,
    },
    ConnectFailed {
        node: usize,
        conn: ConnKey,
        gen: u64,
    },
    Data {
        node: usize,
        conn: ConnKey,
        data: Bytes,
        gen: u64,
    },
    Closed {
        node: usize,
        conn: ConnKey,
        gen: u64,
    },
}

struct Node {
    addr: IpAddr,
    toml: String,
    /// Given to the core as its interface lookup (next hop of the other family).
    iface: Option<InterfaceAddresses>,
    core: Option<SpeakerCore>,
    /// Bumped at every crash so that events for the dead incarnation are dropped.
    gen: u64,
    best: BTreeMap<IpNet, Route>,
    /// Every best-path change seen (prefix, present).
    best_log: Vec<(Instant, IpNet, bool)>,
    deferral_done: Option<Instant>,
    established_count: u32,
}

struct Sim {
    nodes: Vec<Node>,
    start: Instant,
    now: Instant,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    links: HashMap<(usize, ConnKey), (usize, ConnKey)>,
    silent: HashSet<(usize, usize)>,
    next_port: u16,
    /// (from, to, notification) as seen on the wire.
    notifications: Vec<(usize, usize, Notification)>,
    /// UPDATEs on the wire: (from, to, buffer address, length).
    updates: Vec<(usize, usize, usize, usize)>,
    /// Every message sent: (time, from, to, message type).
    wire_log: Vec<(Instant, usize, usize, u8)>,
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

impl Sim {
    fn new() -> Sim {
        let start = Instant::now();
        Sim {
            nodes: Vec::new(),
            start,
            now: start,
            queue: BTreeMap::new(),
            seq: 0,
            links: HashMap::new(),
            silent: HashSet::new(),
            next_port: 40000,
            notifications: Vec::new(),
            updates: Vec::new(),
            wire_log: Vec::new(),
        }
    }

    /// Add a node with a TOML configuration; it starts at once.
    fn add(&mut self, n: u8, toml: &str) -> usize {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            addr: ip(n),
            toml: toml.to_owned(),
            iface: None,
            core: None,
            gen: 0,
            best: BTreeMap::new(),
            best_log: Vec::new(),
            deferral_done: None,
            established_count: 0,
        });
        self.boot(idx, false);
        idx
    }

    fn boot(&mut self, idx: usize, restarted: bool) {
        let cfg = SpeakerConfig::from_toml_str(&self.nodes[idx].toml).unwrap();
        let iface = self.nodes[idx].iface;
        let opts = CoreOptions {
            restarted,
            max_paths: 1,
            seed: 7 + idx as u64,
            interface_lookup: iface.map(|i| {
                let f: InterfaceLookup = Arc::new(move |_| i);
                f
            }),
        };
        let mut core = SpeakerCore::new(cfg, opts, self.now).unwrap();
        core.start(self.now);
        let node = &mut self.nodes[idx];
        node.core = Some(core);
        node.best.clear();
    }

    /// The process dies: the kernel closes its connections (the peers see a FIN).
    fn crash(&mut self, idx: usize) {
        self.nodes[idx].core = None;
        self.nodes[idx].gen += 1;
        let mine: Vec<(usize, ConnKey)> = self
            .links
            .keys()
            .filter(|(n, _)| *n == idx)
            .copied()
            .collect();
        for k in mine {
            if let Some(other) = self.links.remove(&k) {
                self.links.remove(&other);
                let gen = self.nodes[other.0].gen;
                self.push(
                    LATENCY,
                    Ev::Closed {
                        node: other.0,
                        conn: other.1,
                        gen,
                    },
                );
            }
        }
    }

    fn core(&mut self, idx: usize) -> &mut SpeakerCore {
        self.nodes[idx].core.as_mut().unwrap()
    }

    fn push(&mut self, delay: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), ev);
    }

    fn node_by_addr(&self, a: IpAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == a)
    }

    fn is_silent(&self, a: usize, b: usize) -> bool {
        self.silent.contains(&(a, b)) || self.silent.contains(&(b, a))
    }

    /// Carry out every node's outputs until none is left.
    fn pump(&mut self) {
        loop {
            let mut any = false;
            for idx in 0..self.nodes.len() {
                while let Some(o) = self.nodes[idx].core.as_mut().and_then(|c| c.poll_output()) {
                    any = true;
                    self.output(idx, o);
                }
            }
            if !any {
                break;
            }
        }
    }

    fn output(&mut self, idx: usize, o: Output) {
        let gen = self.nodes[idx].gen;
        match o {
            Output::Connect { conn, options, .. } => match self.node_by_addr(options.remote.ip()) {
                Some(to) if self.nodes[to].core.is_some() && !self.is_silent(idx, to) => self.push(
                    LATENCY,
                    Ev::Syn {
                        from: idx,
                        conn,
                        to,
                    },
                ),
                _ => self.push(
                    LATENCY * 2,
                    Ev::ConnectFailed {
                        node: idx,
                        conn,
                        gen,
                    },
                ),
            },
            Output::Send { conn, data } => {
                let Some(&(to, to_conn)) = self.links.get(&(idx, conn)) else {
                    return;
                };
                if data.get(18) == Some(&3) {
                    if let Ok(Message::Notification(n)) =
                        Message::decode(&data, &SessionContext::default())
                    {
                        self.notifications.push((idx, to, n));
                    }
                }
                if data.get(18) == Some(&2) {
                    self.updates
                        .push((idx, to, data.as_ptr() as usize, data.len()));
                }
                if let Some(t) = data.get(18) {
                    self.wire_log.push((self.now, idx, to, *t));
                }
                if self.is_silent(idx, to) {
                    return;
                }
                let gen = self.nodes[to].gen;
                self.push(
                    LATENCY,
                    Ev::Data {
                        node: to,
                        conn: to_conn,
                        data,
                        gen,
                    },
                );
            }
            Output::Close { conn } => {
                if let Some(other) = self.links.remove(&(idx, conn)) {
                    if self.is_silent(idx, other.0) {
                        // The FIN is lost; the other end keeps its (dead) connection.
                        return;
                    }
                    self.links.remove(&other);
                    let gen = self.nodes[other.0].gen;
                    self.push(
                        LATENCY,
                        Ev::Closed {
                            node: other.0,
                            conn: other.1,
                            gen,
                        },
                    );
                }
            }
            Output::BestPath(c) => {
                let now = self.now;
                let node = &mut self.nodes[idx];
                node.best_log.push((now, c.prefix, c.best.is_some()));
                match c.best {
                    Some(r) => {
                        node.best.insert(c.prefix, r);
                    }
                    None => {
                        node.best.remove(&c.prefix);
                    }
                }
            }
            Output::PeerState { to, .. } => {
                if to == State::Established {
                    self.nodes[idx].established_count += 1;
                }
            }
            Output::SelectionDeferralDone => self.nodes[idx].deferral_done = Some(self.now),
        }
    }

    fn deliver(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Syn { from, conn, to } => {
                let from_gen = self.nodes[from].gen;
                let port = self.next_port;
                self.next_port += 1;
                let remote = SocketAddr::new(self.nodes[from].addr, port);
                let local = SocketAddr::new(self.nodes[to].addr, 179);
                let accepted = self.nodes[to]
                    .core
                    .as_mut()
                    .and_then(|c| c.accept(remote, local, now));
                match accepted {
                    Some(k) => {
                        self.links.insert((from, conn), (to, k));
                        self.links.insert((to, k), (from, conn));
                        self.push(
                            LATENCY,
                            Ev::Connected {
                                node: from,
                                conn,
                                local: remote,
                                gen: from_gen,
                            },
                        );
                    }
                    None => self.push(
                        LATENCY,
                        Ev::ConnectFailed {
                            node: from,
                            conn,
                            gen: from_gen,
                        },
                    ),
                }
            }
            Ev::Connected {
                node,
                conn,
                local,
                gen,
            } => {
                if self.nodes[node].gen == gen {
                    if let Some(c) = self.nodes[node].core.as_mut() {
                        c.connected(conn, local, now);
                    }
                }
            }
            Ev::ConnectFailed { node, conn, gen } => {
                if self.nodes[node].gen == gen {
                    if let Some(c) = self.nodes[node].core.as_mut() {
                        c.connect_failed(conn, now);
                    }
                }
            }
            Ev::Data {
                node,
                conn,
                data,
                gen,
            } => {
                if self.nodes[node].gen == gen {
                    if let Some(c) = self.nodes[node].core.as_mut() {
                        c.received(conn, &data, now);
                    }
                }
            }
            Ev::Closed { node, conn, gen } => {
                if self.nodes[node].gen == gen {
                    if let Some(c) = self.nodes[node].core.as_mut() {
                        c.closed(conn, now);
                    }
                }
            }
        }
    }

    /// Run until `pred` holds (checked after every step) or `limit` of virtual time passes.
    fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&mut Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.pump();
            if pred(self) {
                return true;
            }
            let next_ev = self.queue.keys().next().map(|(t, _)| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.core.as_ref().and_then(|c| c.poll_timeout()))
                .min();
            let next = match (next_ev, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => {
                        self.now = end;
                        return pred(self);
                    }
                },
            };
            if next > end {
                self.now = end;
                self.pump();
                return pred(self);
            }
            self.now = self.now.max(next);
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let ev = entry.remove();
                self.deliver(ev);
                self.pump();
            }
            let now = self.now;
            for n in &mut self.nodes {
                if let Some(c) = n.core.as_mut() {
                    if c.poll_timeout().is_some_and(|t| t <= now) {
                        c.handle_timeout(now);
                    }
                }
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    fn state(&self, idx: usize, peer: u8) -> Option<State> {
        self.nodes[idx].core.as_ref()?.peer_state(ip(peer))
    }

    fn established(&self, idx: usize, peer: u8) -> bool {
        self.state(idx, peer) == Some(State::Established)
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

fn speaker_toml(asn: u32, n: u8, extra: &str, neighbors: &[(u8, u32, &str)]) -> String {
    let mut s = format!(
        "asn = {asn}\nrouter_id = \"10.0.0.{n}\"\nlisten_addresses = [\"10.0.0.{n}\"]\n\
         hold_time_secs = 9\nconnect_retry_secs = 2\n{extra}\n"
    );
    for (peer, pasn, opts) in neighbors {
        s.push_str(&format!(
            "[[neighbor]]\naddress = \"10.0.0.{peer}\"\nremote_asn = {pasn}\n{opts}\n"
        ));
    }
    s
}

fn originate(prefixes: &[&str]) -> String {
    prefixes
        .iter()
        .map(|p| format!("[[originate]]\nprefix = \"{p}\"\n"))
        .collect()
}

fn all_established(sim: &Sim, pairs: &[(usize, u8)]) -> bool {
    pairs.iter().all(|(i, p)| sim.established(*i, *p))
}

/// Route reflection with two RRs in one cluster: clients get each other's routes with
/// ORIGINATOR_ID and CLUSTER_LIST, the other RR drops the reflected copy (its cluster id is
/// in the CLUSTER_LIST), non-clients get client routes and vice versa, the unknown
/// transitive attribute passes through with the Partial bit.
#[test]
fn route_reflection_same_cluster() {
    rr_scenario(true);
}

/// Two RRs in different clusters: each accepts the other's reflection but prefers the
/// client's own path (shorter CLUSTER_LIST).
#[test]
fn route_reflection_different_clusters() {
    rr_scenario(false);
}

fn rr_scenario(same_cluster: bool) {
    let mut sim = Sim::new();
    let client = "route_reflector_client = true";
    let (c1, c2) = if same_cluster {
        ("cluster_id = \"10.255.0.1\"", "cluster_id = \"10.255.0.1\"")
    } else {
        ("cluster_id = \"10.255.0.1\"", "cluster_id = \"10.255.0.2\"")
    };
    // 1, 2: RRs. 11, 12: clients of both. 21: non-client of RR 1.
    let rr1 = sim.add(
        1,
        &speaker_toml(
            65000,
            1,
            c1,
            &[
                (2, 65000, ""),
                (11, 65000, client),
                (12, 65000, client),
                (21, 65000, ""),
            ],
        ),
    );
    let rr2 = sim.add(
        2,
        &speaker_toml(
            65000,
            2,
            c2,
            &[(1, 65000, ""), (11, 65000, client), (12, 65000, client)],
        ),
    );
    let cl1 = sim.add(
        11,
        &(speaker_toml(65000, 11, "", &[(1, 65000, ""), (2, 65000, "")])
            + &originate(&["10.11.0.0/24"])),
    );
    let cl2 = sim.add(
        12,
        &speaker_toml(65000, 12, "", &[(1, 65000, ""), (2, 65000, "")]),
    );
    let nc = sim.add(
        21,
        &(speaker_toml(65000, 21, "", &[(1, 65000, "")]) + &originate(&["10.21.0.0/24"])),
    );
    // An unknown optional transitive attribute on a client route.
    let unknown = RawAttribute {
        flags: 0xc0,
        type_code: 99,
        value: Bytes::from_static(&[1, 2, 3]),
    };
    let attrs = PathAttributes {
        unknown: vec![unknown],
        ..PathAttributes::default()
    };
    sim.core(cl1).originate(net("10.11.1.0/24"), attrs);
    let pairs = [
        (rr1, 2),
        (rr1, 11),
        (rr1, 12),
        (rr1, 21),
        (rr2, 11),
        (rr2, 12),
    ];
    assert!(sim.run_until(Duration::from_secs(30), |s| all_established(s, &pairs)));
    let p = net("10.11.0.0/24");
    let pn = net("10.21.0.0/24");
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.nodes[cl2].best.contains_key(&p)
            && s.nodes[nc].best.contains_key(&p)
            && s.nodes[cl1].best.contains_key(&pn)
            && s.nodes[cl2].best.contains_key(&pn)
    }));
    sim.run_for(Duration::from_secs(2));
    // Client 2 has the client 1 route, reflected: originator = client 1, one cluster id.
    let r = &sim.nodes[cl2].best[&p];
    assert_eq!(r.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 11)));
    assert_eq!(r.attrs.cluster_list.len(), 1);
    assert_eq!(r.next_hop, Some(ip(11)), "reflection keeps the next hop");
    // The non-client gets it through RR 1 only.
    let r = &sim.nodes[nc].best[&p];
    assert_eq!(r.peer_address, Some(ip(1)));
    assert_eq!(r.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 11)));
    // Non-client route reflected to clients by RR 1.
    let r = &sim.nodes[cl2].best[&pn];
    assert_eq!(r.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 21)));
    // Client 1 never takes its own route back (ORIGINATOR_ID / split horizon).
    let paths = sim.nodes[cl1].core.as_ref().unwrap().rib().paths(&p);
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].peer_address.is_none());
    // RR 2: the copy reflected by RR 1 carries RR 1's cluster id.
    let paths = sim.nodes[rr2].core.as_ref().unwrap().rib().paths(&p);
    let from_rr1 = paths
        .iter()
        .filter(|r| r.peer_address == Some(ip(1)))
        .count();
    if same_cluster {
        assert_eq!(
            from_rr1, 0,
            "same cluster: reflected copy rejected: {paths:?}"
        );
    } else {
        assert_eq!(from_rr1, 1, "other cluster: reflected copy kept: {paths:?}");
    }
    let best = sim.nodes[rr2]
        .core
        .as_ref()
        .unwrap()
        .rib()
        .best(&p)
        .unwrap();
    assert_eq!(best.peer_address, Some(ip(11)));
    // Unknown optional transitive attribute: passed on with the Partial bit.
    let r = &sim.nodes[cl2].best[&net("10.11.1.0/24")];
    assert_eq!(r.attrs.unknown.len(), 1);
    assert_eq!(r.attrs.unknown[0].type_code, 99);
    assert_eq!(r.attrs.unknown[0].flags & 0xe0, 0xe0, "Partial bit set");
    assert_eq!(r.attrs.unknown[0].value.as_ref(), &[1, 2, 3]);
    // Status counters line up.
    let st = sim.nodes[rr1].core.as_ref().unwrap().status(sim.now);
    let p11 = st.peers.iter().find(|p| p.address == "10.0.0.11").unwrap();
    assert_eq!(p11.state, "Established");
    assert!(p11.prefixes_accepted >= 2);
    assert!(p11.prefixes_advertised >= 1);
    assert!(p11.messages_in.update >= 1 && p11.messages_out.update >= 1);
    assert!(p11.messages_in.open >= 1);
    // Withdrawal propagates.
    sim.core(cl1).withdraw(p);
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        !s.nodes[cl2].best.contains_key(&p) && !s.nodes[nc].best.contains_key(&p)
    }));
}

/// Both sides connect at once: one session survives, the other connection gets Cease 7.
#[test]
fn connection_collision() {
    let mut sim = Sim::new();
    let a = sim.add(1, &speaker_toml(65000, 1, "", &[(2, 65001, "")]));
    let b = sim.add(2, &speaker_toml(65001, 2, "", &[(1, 65000, "")]));
    assert!(
        sim.run_until(Duration::from_secs(20), |s| s.established(a, 2)
            && s.established(b, 1))
    );
    sim.run_for(Duration::from_secs(30));
    assert!(sim.established(a, 2) && sim.established(b, 1));
    let collisions: Vec<_> = sim
        .notifications
        .iter()
        .filter(|(_, _, n)| n.code == 6 && n.subcode == 7)
        .collect();
    assert!(!collisions.is_empty(), "{:?}", sim.notifications);
    assert!(
        sim.notifications
            .iter()
            .all(|(_, _, n)| n.code == 6 && n.subcode == 7),
        "only collision NOTIFICATIONs: {:?}",
        sim.notifications
    );
    for (i, p) in [(a, 2u8), (b, 1u8)] {
        let st = sim.nodes[i].core.as_ref().unwrap().status(sim.now);
        let ps = st
            .peers
            .iter()
            .find(|x| x.address == ip(p).to_string())
            .unwrap();
        assert_eq!(ps.connections.len(), 1, "{ps:?}");
        assert_eq!(sim.nodes[i].established_count, 1, "no flap");
    }
}

const GR: &str = "graceful_restart = { enabled = true, restart_time_secs = 30 }";

/// GR helper: the peer restarts; its routes stay (stale) and never leave the best-path
/// table; after its End-of-RIB the route it did not re-announce is swept.
#[test]
fn graceful_restart_helper_eor() {
    let mut sim = Sim::new();
    let a = sim.add(1, &speaker_toml(65000, 1, "", &[(2, 65001, GR)]));
    let b_toml = speaker_toml(65001, 2, "", &[(1, 65000, GR)]);
    let b = sim.add(
        2,
        &(b_toml.clone() + &originate(&["10.2.1.0/24", "10.2.2.0/24"])),
    );
    let (p1, p2) = (net("10.2.1.0/24"), net("10.2.2.0/24"));
    assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[a]
        .best
        .contains_key(&p1)
        && s.nodes[a].best.contains_key(&p2)));
    let crash_at = sim.now;
    sim.crash(b);
    sim.run_for(Duration::from_secs(3));
    assert!(!sim.established(a, 2));
    let st = sim.nodes[a].core.as_ref().unwrap().status(sim.now);
    assert_eq!(st.peers[0].prefixes_stale, 2, "{:?}", st.peers[0]);
    assert!(st.routes.iter().all(|r| r.stale || r.source == "local"));
    // B comes back, restarted, announcing only p1.
    sim.nodes[b].toml = b_toml + &originate(&["10.2.1.0/24"]);
    sim.boot(b, true);
    assert!(sim.run_until(Duration::from_secs(25), |s| !s.nodes[a]
        .best
        .contains_key(&p2)));
    assert!(sim.nodes[a].best.contains_key(&p1));
    assert!(!sim.nodes[a].best[&p1].stale);
    assert!(
        sim.now - crash_at < Duration::from_secs(30),
        "swept at EoR, not at expiry"
    );
    // p1 never left A's table.
    assert!(sim.nodes[a]
        .best_log
        .iter()
        .all(|(_, p, present)| *p != p1 || *present));
    // The restarted B saw A's OPEN with GR, and A saw B's R bit.
    let st = sim.nodes[a].core.as_ref().unwrap().status(sim.now);
    assert!(st.peers[0].negotiated.as_ref().unwrap().peer_restarted);
}

/// GR helper: the peer never comes back; its stale routes go when the restart time ends.
#[test]
fn graceful_restart_helper_expiry() {
    let mut sim = Sim::new();
    let a = sim.add(1, &speaker_toml(65000, 1, "", &[(2, 65001, GR)]));
    let b = sim.add(
        2,
        &(speaker_toml(65001, 2, "", &[(1, 65000, GR)]) + &originate(&["10.2.1.0/24"])),
    );
    let p1 = net("10.2.1.0/24");
    assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[a]
        .best
        .contains_key(&p1)));
    let crash_at = sim.now;
    sim.crash(b);
    sim.run_for(Duration::from_secs(29));
    assert!(
        sim.nodes[a].best.contains_key(&p1),
        "kept during the restart time"
    );
    assert!(sim.run_until(Duration::from_secs(5), |s| !s.nodes[a]
        .best
        .contains_key(&p1)));
    let gone_after = sim.now - crash_at;
    assert!(
        gone_after >= Duration::from_secs(30) && gone_after < Duration::from_secs(32),
        "{gone_after:?}"
    );
}

/// GR helper with a per-peer stale time: the restarted peer is back but sends no
/// End-of-RIB (it defers for a neighbour that never comes up); its stale routes go after
/// the neighbour's `graceful_restart.stale_time_secs` (15 s), not the global 360 s.
#[test]
fn graceful_restart_helper_per_peer_stale_time() {
    let mut sim = Sim::new();
    let a = sim.add(
        1,
        &speaker_toml(
            65000,
            1,
            "[graceful_restart]\nstale_time_secs = 360",
            &[(
                2,
                65001,
                "graceful_restart = { enabled = true, restart_time_secs = 30, stale_time_secs = 15 }",
            )],
        ),
    );
    let b_toml = speaker_toml(
        65001,
        2,
        "[graceful_restart]\ndeferral_secs = 300",
        &[(1, 65000, GR), (3, 65003, GR)],
    ) + &originate(&["10.2.1.0/24"]);
    let b = sim.add(2, &b_toml);
    let p1 = net("10.2.1.0/24");
    assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[a]
        .best
        .contains_key(&p1)));
    sim.crash(b);
    sim.boot(b, true);
    assert!(sim.run_until(Duration::from_secs(10), |s| s.established(a, 2)));
    let back = sim.now;
    assert!(sim.run_until(Duration::from_secs(60), |s| !s.nodes[a]
        .best
        .contains_key(&p1)));
    let swept_after = sim.now - back;
    assert!(
        swept_after >= Duration::from_secs(14) && swept_after < Duration::from_secs(20),
        "{swept_after:?}"
    );
    assert!(sim.established(a, 2), "the session stays up");
}

/// Restarting speaker: best-path selection and advertisement wait for End-of-RIB from
/// every peer, or the deferral bound when a peer never comes up.
#[test]
fn restarting_speaker_deferral() {
    // Variant 1: every peer comes up: deferral ends at their End-of-RIB.
    let mut sim = Sim::new();
    let a = sim.add(
        1,
        &(speaker_toml(65000, 1, "", &[(2, 65001, GR)]) + &originate(&["10.1.0.0/24"])),
    );
    let b = sim.add(
        2,
        &(speaker_toml(
            65001,
            2,
            "[graceful_restart]\ndeferral_secs = 60",
            &[(1, 65000, GR)],
        ) + &originate(&["10.2.0.0/24"])),
    );
    // Restart b in restarting mode right away.
    sim.crash(b);
    sim.boot(b, true);
    let now = sim.now;
    assert!(sim.core(b).status(now).selection_deferred);
    assert!(sim.run_until(Duration::from_secs(30), |s| s.nodes[b]
        .deferral_done
        .is_some()));
    assert!(sim.elapsed() < Duration::from_secs(30));
    assert!(sim.run_until(Duration::from_secs(5), |s| s.nodes[b]
        .best
        .contains_key(&net("10.1.0.0/24"))
        && s.nodes[a].best.contains_key(&net("10.2.0.0/24"))));
    // Re-applying the unchanged neighbour config (a reload) does not reset the session,
    // although the FSM has cleared its R bit meanwhile.
    let before = sim.nodes[b].established_count;
    let n = sim.nodes[b]
        .core
        .as_ref()
        .unwrap()
        .config()
        .neighbor(ip(1))
        .unwrap()
        .clone();
    let now = sim.now;
    sim.core(b).update_peer(n, now).unwrap();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.nodes[b].established_count, before);
    assert!(sim.established(b, 1));

    // Variant 2: one peer never comes up: deferral ends at the bound (20 s).
    let mut sim = Sim::new();
    let a = sim.add(
        1,
        &(speaker_toml(65000, 1, "", &[(2, 65001, GR)]) + &originate(&["10.1.0.0/24"])),
    );
    let b = sim.add(
        2,
        &(speaker_toml(
            65001,
            2,
            "[graceful_restart]\ndeferral_secs = 20",
            &[(1, 65000, GR), (3, 65003, GR)],
        ) + &originate(&["10.2.0.0/24"])),
    );
    sim.crash(b);
    sim.boot(b, true);
    let booted = sim.now;
    assert!(sim.run_until(Duration::from_secs(10), |s| s.established(b, 1)));
    sim.run_for(Duration::from_secs(5));
    // A's routes arrived, but b selects nothing and advertises nothing yet.
    assert!(sim.nodes[b].best.is_empty(), "{:?}", sim.nodes[b].best);
    assert!(!sim.nodes[a].best.contains_key(&net("10.2.0.0/24")));
    assert!(sim.run_until(Duration::from_secs(30), |s| s.nodes[b]
        .deferral_done
        .is_some()));
    let waited = sim.now - booted;
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
    assert!(sim.run_until(Duration::from_secs(5), |s| s.nodes[b]
        .best
        .contains_key(&net("10.1.0.0/24"))
        && s.nodes[a].best.contains_key(&net("10.2.0.0/24"))));
}

/// RFC 4271 8.2.2: every UPDATE sent restarts the KeepaliveTimer. B announces a prefix
/// every second; A passes each on to C at once, so A sends C no KEEPALIVE while the
/// UPDATEs flow (keepalive 3 s), and the keepalives resume after them.
#[test]
fn updates_sent_restart_the_keepalive_timer() {
    let mut sim = Sim::new();
    let a = sim.add(
        1,
        &speaker_toml(65000, 1, "", &[(2, 65002, ""), (3, 65003, "")]),
    );
    let b = sim.add(2, &speaker_toml(65002, 2, "", &[(1, 65000, "")]));
    let c = sim.add(3, &speaker_toml(65003, 3, "", &[(1, 65000, "")]));
    assert!(sim.run_until(Duration::from_secs(20), |s| all_established(
        s,
        &[(a, 2), (a, 3), (b, 1), (c, 1)]
    )));
    sim.run_for(Duration::from_secs(5));
    let from = sim.now;
    for i in 0..10u8 {
        let attrs = PathAttributes::default();
        sim.core(b).originate(net(&format!("10.9.{i}.0/24")), attrs);
        sim.run_for(Duration::from_secs(1));
    }
    let until = sim.now;
    assert!(sim.nodes[c].best.contains_key(&net("10.9.9.0/24")));
    let a_to_c = |sim: &Sim, t0: Instant, t1: Instant, ty: u8| {
        sim.wire_log
            .iter()
            .filter(|(t, f, to, m)| *t > t0 && *t <= t1 && *f == a && *to == c && *m == ty)
            .count()
    };
    assert_eq!(
        a_to_c(&sim, from, until, 2),
        10,
        "one UPDATE per announcement"
    );
    // The last UPDATE went out during the last second; the first KEEPALIVE may follow 3 s
    // after it.
    assert_eq!(
        a_to_c(&sim, from + Duration::from_secs(1), until, 4),
        0,
        "no KEEPALIVE while UPDATEs flow"
    );
    sim.run_for(Duration::from_secs(7));
    assert!(a_to_c(&sim, until, sim.now, 4) >= 1, "keepalives resume");
    assert!(sim.established(c, 1));
}

/// IPv6 unicast over an IPv4 session: our IPv6 next hop comes from `next_hop_v6` (the
/// neighbour's, else the global one), else the only specific IPv6 listen address, else the
/// interface lookup; with none of them the IPv6 route is not sent (IPv4 still is).
#[test]
fn ipv6_over_ipv4_session_next_hop() {
    let fams = "families = [\"ipv4-unicast\", \"ipv6-unicast\"]";
    let v6p = net("2001:db8:1::/48");
    let v4p = net("10.1.0.0/24");
    let b_toml = speaker_toml(65002, 2, "", &[(1, 65001, fams)]);
    // (A's extra global settings, A's neighbour options, A's interface lookup, expected).
    let cases: [(&str, String, Option<InterfaceAddresses>, Option<&str>); 5] = [
        (
            "",
            format!("{fams}\nnext_hop_v6 = \"fd00::1\""),
            None,
            Some("fd00::1"),
        ),
        (
            "next_hop_v6 = \"fd00::2\"",
            fams.to_owned(),
            None,
            Some("fd00::2"),
        ),
        (
            "",
            fams.to_owned(),
            Some(InterfaceAddresses {
                v4: None,
                v6: Some("fd00::3".parse().unwrap()),
            }),
            Some("fd00::3"),
        ),
        ("", fams.to_owned(), None, None),
        // The neighbour's own value wins over the global one and the interface.
        (
            "next_hop_v6 = \"fd00::2\"",
            format!("{fams}\nnext_hop_v6 = \"fd00::4\""),
            Some(InterfaceAddresses {
                v4: None,
                v6: Some("fd00::3".parse().unwrap()),
            }),
            Some("fd00::4"),
        ),
    ];
    for (global, nbr, iface, expect) in cases {
        let mut sim = Sim::new();
        let a_toml = speaker_toml(65001, 1, global, &[(2, 65002, &nbr)])
            + &originate(&["2001:db8:1::/48", "10.1.0.0/24"]);
        sim.nodes.push(Node {
            addr: ip(1),
            toml: a_toml,
            iface,
            core: None,
            gen: 0,
            best: BTreeMap::new(),
            best_log: Vec::new(),
            deferral_done: None,
            established_count: 0,
        });
        sim.boot(0, false);
        let (a, b) = (0, sim.add(2, &b_toml));
        assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[b]
            .best
            .contains_key(&v4p)));
        sim.run_for(Duration::from_secs(2));
        assert!(sim.established(a, 2));
        let got = sim.nodes[b].best.get(&v6p).and_then(|r| r.next_hop);
        let expect: Option<IpAddr> = expect.map(|e| e.parse().unwrap());
        assert_eq!(got, expect, "case {global:?} / {nbr:?} / {iface:?}");
        // IPv4 routes keep the session's IPv4 address.
        assert_eq!(sim.nodes[b].best[&v4p].next_hop, Some(ip(1)));
    }
    // A specific IPv6 listen address is our IPv6 address too.
    let mut sim = Sim::new();
    let a_toml = format!(
        "asn = 65001\nrouter_id = \"10.0.0.1\"\nlisten_addresses = [\"10.0.0.1\", \"fd00::5\"]\n\
         hold_time_secs = 9\nconnect_retry_secs = 2\n\
         [[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65002\n{fams}\n"
    ) + &originate(&["2001:db8:1::/48"]);
    sim.add(1, &a_toml);
    let b = sim.add(2, &b_toml);
    assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[b]
        .best
        .contains_key(&v6p)));
    assert_eq!(
        sim.nodes[b].best[&v6p].next_hop,
        Some(IpAddr::V6("fd00::5".parse::<Ipv6Addr>().unwrap()))
    );
}

/// A link goes silent: the hold timer (9 s) expires, NOTIFICATION 4/0, session down.
#[test]
fn hold_timer_expiry() {
    let mut sim = Sim::new();
    let a = sim.add(1, &speaker_toml(65000, 1, "", &[(2, 65001, "")]));
    let b = sim.add(
        2,
        &(speaker_toml(65001, 2, "", &[(1, 65000, "")]) + &originate(&["10.2.0.0/24"])),
    );
    assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[a]
        .best
        .contains_key(&net("10.2.0.0/24"))));
    sim.silent.insert((a, b));
    let silent_at = sim.now;
    assert!(sim.run_until(Duration::from_secs(15), |s| !s.established(a, 2)));
    let took = sim.now - silent_at;
    assert!(
        took > Duration::from_secs(5) && took <= Duration::from_secs(10),
        "{took:?}"
    );
    assert!(sim
        .notifications
        .iter()
        .any(|(from, _, n)| *from == a && n.code == 4));
    let st = sim.nodes[a].core.as_ref().unwrap().status(sim.now);
    let err = st.peers[0].last_error.as_ref().unwrap();
    assert_eq!(err.reason, "hold timer expired");
    assert_eq!(err.sent.as_ref().unwrap().code, 4);
    // RFC 8538: GR applies to the hold timer expiry: the routes stay, stale.
    let rib = sim.nodes[a].core.as_ref().unwrap().rib();
    assert!(rib.best(&net("10.2.0.0/24")).unwrap().stale);
    // The link heals: the session comes back.
    sim.silent.clear();
    assert!(
        sim.run_until(Duration::from_secs(300), |s| s.established(a, 2)
            && s.established(b, 1))
    );
}

/// More accepted prefixes than the limit: Cease 1 with the RFC 4486 data (AFI, SAFI,
/// limit), session down, restarted after restart_after_secs.
#[test]
fn max_prefix() {
    let mut sim = Sim::new();
    let a = sim.add(
        1,
        &speaker_toml(
            65000,
            1,
            "",
            // Without GR: with the RFC 8538 N bit the Cease would be wrapped in a Hard Reset.
            &[(
                2,
                65001,
                "max_prefix = { limit = 2, restart_after_secs = 30 }\n\
                 graceful_restart = { enabled = false }",
            )],
        ),
    );
    let b = sim.add(
        2,
        &(speaker_toml(65001, 2, "", &[(1, 65000, "")])
            + &originate(&["10.2.1.0/24", "10.2.2.0/24", "10.2.3.0/24"])),
    );
    assert!(sim.run_until(Duration::from_secs(20), |s| s
        .notifications
        .iter()
        .any(|(f, _, n)| *f == a && n.code == 6 && n.subcode == 1)));
    let tripped = sim.now;
    let (_, to, n) = sim
        .notifications
        .iter()
        .find(|(f, _, n)| *f == a && n.code == 6)
        .unwrap()
        .clone();
    assert_eq!(to, b);
    assert_eq!(
        n.data.as_ref(),
        &[0, 1, 1, 0, 0, 0, 2],
        "AFI 1, SAFI 1, limit 2"
    );
    sim.run_for(Duration::from_secs(1));
    assert!(!sim.established(a, 2));
    // B recorded what it received.
    let st = sim.nodes[b].core.as_ref().unwrap().status(sim.now);
    let rec = st.peers[0]
        .last_error
        .as_ref()
        .unwrap()
        .received
        .as_ref()
        .unwrap();
    assert_eq!(rec.text, "Cease / Maximum Number of Prefixes Reached");
    assert!(sim.nodes[a].best.is_empty());
    // Restarted after 30 s (and trips again).
    assert_eq!(sim.nodes[a].established_count, 1);
    assert!(
        sim.run_until(Duration::from_secs(40), |s| s.nodes[a].established_count
            == 2)
    );
    assert!(
        sim.now - tripped >= Duration::from_secs(29),
        "{:?}",
        sim.now - tripped
    );
}

/// A dynamic neighbour from a listen range uses the template; a connection from outside
/// every range is refused; max_dynamic_peers is enforced.
#[test]
fn dynamic_neighbours() {
    let mut sim = Sim::new();
    let rr_toml = "asn = 65000\nrouter_id = \"10.0.0.1\"\nroute_reflector = true\n\
        listen_addresses = [\"10.0.0.1\"]\nmax_dynamic_peers = 2\n\
        [template.nodes]\nremote_asn = 65000\nroute_reflector_client = true\npassive = true\n\
        hold_time_secs = 9\n\
        [[listen_range]]\nprefix = \"10.0.0.0/28\"\ntemplate = \"nodes\"\n";
    let rr = sim.add(1, rr_toml);
    let mut clients = Vec::new();
    for n in [2u8, 3, 4] {
        clients.push(sim.add(
            n,
            &(speaker_toml(65000, n, "", &[(1, 65000, "")])
                + &originate(&[&format!("10.{n}.0.0/24")])),
        ));
    }
    let outsider = sim.add(20, &speaker_toml(65000, 20, "", &[(1, 65000, "")]));
    assert!(
        sim.run_until(Duration::from_secs(20), |s| s.established(clients[0], 1)
            && s.established(clients[1], 1))
    );
    sim.run_for(Duration::from_secs(20));
    let st = sim.nodes[rr].core.as_ref().unwrap().status(sim.now);
    assert_eq!(st.peers.len(), 2, "max 2 dynamic peers: {:?}", st.peers);
    assert!(st
        .peers
        .iter()
        .all(|p| p.dynamic && p.state == "Established"));
    assert!(!sim.established(clients[2], 1));
    assert!(!sim.established(outsider, 1));
    // Reflection between the dynamic clients.
    assert!(sim.nodes[clients[0]].best.contains_key(&net("10.3.0.0/24")));
    // One leaves: its dynamic peer is removed, a waiting one gets in.
    sim.crash(clients[0]);
    // The RR keeps the leaver's routes for its GR restart time (120 s), then frees the slot.
    assert!(sim.run_until(Duration::from_secs(400), |s| s.established(clients[2], 1)));
    let st = sim.nodes[rr].core.as_ref().unwrap().status(sim.now);
    assert!(st.peers.iter().all(|p| p.address != "10.0.0.2"));
}

/// Update groups: one UPDATE is encoded once and the same bytes go to every member.
#[test]
fn update_group_encodes_once() {
    let mut sim = Sim::new();
    let client = "route_reflector_client = true";
    let rr = sim.add(
        1,
        &speaker_toml(
            65000,
            1,
            "route_reflector = true",
            &[(2, 65000, client), (3, 65000, client), (4, 65000, client)],
        ),
    );
    for n in [2u8, 3, 4] {
        sim.add(n, &speaker_toml(65000, n, "", &[(1, 65000, "")]));
    }
    assert!(sim.run_until(Duration::from_secs(20), |s| [2u8, 3, 4]
        .iter()
        .all(|p| s.established(rr, *p))));
    sim.run_for(Duration::from_secs(2));
    sim.updates.clear();
    sim.core(rr)
        .originate(net("10.50.0.0/24"), PathAttributes::default());
    assert!(sim.run_until(Duration::from_secs(5), |s| (1..4)
        .all(|i| s.nodes[i].best.contains_key(&net("10.50.0.0/24")))));
    let from_rr: Vec<_> = sim.updates.iter().filter(|u| u.0 == rr).collect();
    assert_eq!(from_rr.len(), 3, "{from_rr:?}");
    assert!(
        from_rr
            .iter()
            .all(|u| u.2 == from_rr[0].2 && u.3 == from_rr[0].3),
        "one buffer for all members: {from_rr:?}"
    );
    let st = sim.nodes[rr].core.as_ref().unwrap().status(sim.now);
    assert_eq!(st.rib.update_groups, 1);
}

/// Administrative shutdown of one peer with an RFC 9003 message, restart, and an import
/// policy change applied through a ROUTE-REFRESH.
#[test]
fn admin_shutdown_and_import_policy_update() {
    let mut sim = Sim::new();
    let a_toml = speaker_toml(65000, 1, "", &[(2, 65001, "")])
        + "[[policy]]\nname = \"no-10-2-2\"\ndefault = \"accept\"\n\
           [[policy.rule]]\nmatch.prefix = [{ prefix = \"10.2.2.0/24\" }]\naction = \"reject\"\n";
    let a = sim.add(1, &a_toml);
    let b = sim.add(
        2,
        &(speaker_toml(65001, 2, "", &[(1, 65000, "")])
            + &originate(&["10.2.1.0/24", "10.2.2.0/24"])),
    );
    let (p1, p2) = (net("10.2.1.0/24"), net("10.2.2.0/24"));
    assert!(sim.run_until(Duration::from_secs(20), |s| s.nodes[a]
        .best
        .contains_key(&p1)
        && s.nodes[a].best.contains_key(&p2)));
    let now = sim.now;
    sim.core(a)
        .stop_peer(ip(2), "maintenance window", now)
        .unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| !s.established(b, 1)));
    let st = sim.nodes[b].core.as_ref().unwrap().status(sim.now);
    let rec = st.peers[0]
        .last_error
        .as_ref()
        .unwrap()
        .received
        .clone()
        .unwrap();
    assert_eq!(
        rec.message.as_deref(),
        Some("maintenance window"),
        "{rec:?}"
    );
    assert!(rec.text.contains("Administrative Shutdown"), "{rec:?}");
    // Stays down (B retries, A refuses) until started again.
    sim.run_for(Duration::from_secs(60));
    assert!(!sim.established(a, 2));
    assert!(
        sim.nodes[a].best.is_empty(),
        "routes flushed (Hard Reset, no GR)"
    );
    let now = sim.now;
    sim.core(a).start_peer(ip(2), now).unwrap();
    assert!(sim.run_until(Duration::from_secs(120), |s| s.nodes[a]
        .best
        .contains_key(&p2)));
    // New import policy: A asks B for its routes again and drops 10.2.2.0/24.
    let mut n = sim.nodes[a]
        .core
        .as_ref()
        .unwrap()
        .config()
        .neighbor(ip(2))
        .unwrap()
        .clone();
    n.options.import_policy = vec!["no-10-2-2".to_owned()];
    let now = sim.now;
    sim.core(a).update_peer(n, now).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| !s.nodes[a]
        .best
        .contains_key(&p2)));
    assert!(sim.nodes[a].best.contains_key(&p1));
    assert!(
        sim.established(a, 2),
        "no session reset for a policy change"
    );
    let st = sim.nodes[a].core.as_ref().unwrap().status(sim.now);
    assert_eq!(st.peers[0].messages_out.route_refresh, 1);
}

/// Measurement (run with `--ignored --nocapture`, preferably `--release`): a reflector
/// with 100 clients; one client originates 2000 prefixes; time until every client has
/// them, and how many UPDATE buffers the reflector encoded for how many sends.
#[test]
#[ignore]
fn measure_rr_fanout() {
    let clients = 100u8;
    let prefixes = 2000u32;
    let mut sim = Sim::new();
    let client = "route_reflector_client = true";
    let neighbors: Vec<(u8, u32, &str)> = (2..2 + clients).map(|n| (n, 65000, client)).collect();
    let rr = sim.add(
        1,
        &speaker_toml(65000, 1, "route_reflector = true", &neighbors),
    );
    for n in 3..2 + clients {
        sim.add(n, &speaker_toml(65000, n, "", &[(1, 65000, "")]));
    }
    assert!(sim.run_until(Duration::from_secs(60), |s| (3..2 + clients)
        .all(|p| s.established(rr, p))));
    sim.run_for(Duration::from_secs(2));
    sim.updates.clear();
    // The source client (10.0.0.2) comes up with its 2000 prefixes.
    let list: Vec<String> = (0..prefixes)
        .map(|i| format!("10.{}.{}.0/24", 100 + i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    let wall = std::time::Instant::now();
    let src = sim.add(
        2,
        &(speaker_toml(65000, 2, "", &[(1, 65000, "")]) + &originate(&refs)),
    );
    let last = net(list.last().unwrap());
    assert!(
        sim.run_until(Duration::from_secs(60), |s| (1..s.nodes.len())
            .all(|i| i == src || s.nodes[i].best.contains_key(&last)))
    );
    let took = wall.elapsed();
    let from_rr: Vec<_> = sim
        .updates
        .iter()
        .filter(|u| u.0 == rr && u.1 != src)
        .collect();
    let buffers: HashSet<usize> = from_rr.iter().map(|u| u.2).collect();
    let bytes: usize = from_rr.iter().map(|u| u.3).sum();
    eprintln!(
        "{} clients, {prefixes} prefixes: converged in {took:?} wall time; \
         RR sent {} UPDATEs ({bytes} octets) to the other clients from {} encoded buffers",
        clients,
        from_rr.len(),
        buffers.len()
    );
}
