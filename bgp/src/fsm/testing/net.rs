//! An in-memory TCP model with virtual time, independent of what sits on the nodes.
//!
//! Nodes are named by `N` (e.g. a side of a pair, a simulated speaker's index); each end of
//! a connection is named by the node and a connection key `K` that the node chose (e.g.
//! the FSM's [`crate::fsm::ConnId`], or `(peer, ConnId)` in a speaker). Every packet takes
//! `latency`; packets on one connection arrive in order. The model has SYN (a
//! [`Delivery::Syn`] the receiving node answers with [`Net::accept`] or [`Net::refuse`]),
//! SYN-ACK ([`Delivery::Connected`]), data, and FIN/RST ([`Delivery::Closed`]).
//!
//! Drive it with [`Net::next_at`] (the earliest pending delivery) and [`Net::pop_due`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Index of a connection in a [`Net`].
pub type LinkId = usize;

/// Something that happened at a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery<N, K> {
    /// `from` asks `to` for a connection: answer with [`Net::accept`] or [`Net::refuse`].
    Syn { link: LinkId, from: N, to: N },
    /// The outbound connection `conn` of `to` is established.
    Connected { to: N, conn: K },
    /// Octets for `to` on `conn`.
    Data { to: N, conn: K, bytes: Bytes },
    /// `to`'s `conn` was closed by the other end, reset, or refused.
    Closed { to: N, conn: K },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Packet {
    Syn,
    SynAck,
    Data(Bytes),
    Fin,
}

#[derive(Clone, Debug)]
struct End<N, K> {
    node: N,
    conn: Option<K>,
    open: bool,
}

#[derive(Clone, Debug)]
struct Link<N, K> {
    /// 0: the initiator, 1: the acceptor.
    ends: [End<N, K>; 2],
}

#[derive(Clone, Debug)]
struct InFlight {
    link: LinkId,
    /// Index of the destination end.
    to: usize,
    packet: Packet,
}

/// The network.
#[derive(Debug)]
pub struct Net<N, K> {
    /// One-way latency of every packet.
    pub latency: Duration,
    links: Vec<Link<N, K>>,
    index: HashMap<(N, K), (LinkId, usize)>,
    queue: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
}

impl<N: Copy + Eq + Hash + Debug, K: Copy + Eq + Hash + Debug> Net<N, K> {
    pub fn new(latency: Duration) -> Self {
        Net {
            latency,
            links: Vec::new(),
            index: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
        }
    }

    fn schedule(&mut self, now: Instant, link: LinkId, to: usize, packet: Packet) {
        self.seq += 1;
        self.queue.insert(
            (now + self.latency, self.seq),
            InFlight { link, to, packet },
        );
    }

    fn end(&self, link: LinkId, i: usize) -> Option<&End<N, K>> {
        self.links.get(link).and_then(|l| l.ends.get(i))
    }

    fn end_mut(&mut self, link: LinkId, i: usize) -> Option<&mut End<N, K>> {
        self.links.get_mut(link).and_then(|l| l.ends.get_mut(i))
    }

    /// `from` opens connection `conn` to `to`.
    pub fn connect(&mut self, from: N, conn: K, to: N, now: Instant) -> LinkId {
        let link = self.links.len();
        self.links.push(Link {
            ends: [
                End {
                    node: from,
                    conn: Some(conn),
                    open: true,
                },
                End {
                    node: to,
                    conn: None,
                    open: false,
                },
            ],
        });
        self.index.insert((from, conn), (link, 0));
        self.schedule(now, link, 1, Packet::Syn);
        link
    }

    /// The acceptor of `link` accepts it as its connection `conn`.
    pub fn accept(&mut self, link: LinkId, conn: K, now: Instant) {
        let Some(end) = self.end_mut(link, 1) else {
            return;
        };
        end.conn = Some(conn);
        end.open = true;
        let node = end.node;
        self.index.insert((node, conn), (link, 1));
        self.schedule(now, link, 0, Packet::SynAck);
    }

    /// The acceptor of `link` refuses it (RST).
    pub fn refuse(&mut self, link: LinkId, now: Instant) {
        self.schedule(now, link, 0, Packet::Fin);
    }

    /// `node` sends `bytes` on `conn`. False when the connection is not open at `node`.
    pub fn send(&mut self, node: N, conn: K, bytes: Bytes, now: Instant) -> bool {
        let Some(&(link, i)) = self.index.get(&(node, conn)) else {
            return false;
        };
        if !self.end(link, i).is_some_and(|e| e.open) {
            return false;
        }
        self.schedule(now, link, 1 - i, Packet::Data(bytes));
        true
    }

    /// `node` closes `conn` (FIN after what was sent).
    pub fn close(&mut self, node: N, conn: K, now: Instant) {
        let Some(&(link, i)) = self.index.get(&(node, conn)) else {
            return;
        };
        let was_open = self
            .end_mut(link, i)
            .is_some_and(|e| std::mem::replace(&mut e.open, false));
        if was_open {
            self.schedule(now, link, 1 - i, Packet::Fin);
        }
    }

    /// `node` vanishes (crash, power loss): its ends are closed without a FIN, packets
    /// to them are dropped, and its connection keys may be reused. With `reset`, the other
    /// ends get a close as from the kernel of a crashed process (FIN/RST); without, they
    /// see nothing (a frozen host or a cut cable).
    pub fn drop_node(&mut self, node: N, reset: bool, now: Instant) {
        let ends: Vec<(LinkId, usize)> = self
            .index
            .iter()
            .filter(|((n, _), _)| *n == node)
            .map(|(_, v)| *v)
            .collect();
        self.index.retain(|(n, _), _| *n != node);
        for (link, i) in ends {
            let was_open = self
                .end_mut(link, i)
                .is_some_and(|e| std::mem::replace(&mut e.open, false));
            if let Some(e) = self.end_mut(link, i) {
                e.conn = None;
            }
            if was_open && reset {
                self.schedule(now, link, 1 - i, Packet::Fin);
            }
        }
        // Connections to the node still in the SYN phase are answered by nobody.
    }

    /// Whether `node`'s `conn` is open.
    pub fn is_open(&self, node: N, conn: K) -> bool {
        self.index
            .get(&(node, conn))
            .and_then(|&(link, i)| self.end(link, i))
            .is_some_and(|e| e.open)
    }

    /// The earliest pending delivery time.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// The next delivery due at `now`, if any. Packets for ends that are closed are dropped
    /// on the way.
    pub fn pop_due(&mut self, now: Instant) -> Option<Delivery<N, K>> {
        loop {
            let key = *self.queue.keys().next()?;
            if key.0 > now {
                return None;
            }
            let p = self.queue.remove(&key)?;
            let Some(dest) = self.end(p.link, p.to).cloned() else {
                continue;
            };
            match p.packet {
                Packet::Syn => {
                    let Some(from) = self.end(p.link, 0).map(|e| e.node) else {
                        continue;
                    };
                    return Some(Delivery::Syn {
                        link: p.link,
                        from,
                        to: dest.node,
                    });
                }
                Packet::SynAck => match (dest.open, dest.conn) {
                    (true, Some(conn)) => {
                        return Some(Delivery::Connected {
                            to: dest.node,
                            conn,
                        })
                    }
                    // The initiator gave up meanwhile: the acceptor sees a close.
                    _ => self.schedule(now, p.link, 1, Packet::Fin),
                },
                Packet::Data(bytes) => {
                    if let (true, Some(conn)) = (dest.open, dest.conn) {
                        return Some(Delivery::Data {
                            to: dest.node,
                            conn,
                            bytes,
                        });
                    }
                }
                Packet::Fin => {
                    if let (true, Some(conn)) = (dest.open, dest.conn) {
                        if let Some(e) = self.end_mut(p.link, p.to) {
                            e.open = false;
                        }
                        return Some(Delivery::Closed {
                            to: dest.node,
                            conn,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_send_close_in_order_with_latency() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut net: Net<u8, u32> = Net::new(ms(5));
        let link = net.connect(1, 10, 2, t);
        assert_eq!(net.pop_due(t + ms(4)), None);
        assert_eq!(
            net.pop_due(t + ms(5)),
            Some(Delivery::Syn {
                link,
                from: 1,
                to: 2
            })
        );
        net.accept(link, 20, t + ms(5));
        assert_eq!(
            net.pop_due(t + ms(10)),
            Some(Delivery::Connected { to: 1, conn: 10 })
        );
        assert!(net.send(1, 10, Bytes::from_static(b"a"), t + ms(10)));
        net.close(1, 10, t + ms(10));
        assert!(!net.send(1, 10, Bytes::from_static(b"b"), t + ms(10)));
        assert_eq!(
            net.pop_due(t + ms(15)),
            Some(Delivery::Data {
                to: 2,
                conn: 20,
                bytes: Bytes::from_static(b"a")
            })
        );
        assert_eq!(
            net.pop_due(t + ms(15)),
            Some(Delivery::Closed { to: 2, conn: 20 })
        );
        assert!(!net.is_open(2, 20));
        assert_eq!(net.pop_due(t + ms(100)), None);
    }

    #[test]
    fn refused_and_abandoned_connections_close() {
        let t = Instant::now();
        let mut net: Net<u8, u32> = Net::new(Duration::ZERO);
        let link = net.connect(1, 10, 2, t);
        assert!(matches!(net.pop_due(t), Some(Delivery::Syn { .. })));
        net.refuse(link, t);
        assert_eq!(net.pop_due(t), Some(Delivery::Closed { to: 1, conn: 10 }));
        // The initiator closes before the SYN-ACK: the acceptor gets a close.
        let link = net.connect(1, 11, 2, t);
        assert!(matches!(net.pop_due(t), Some(Delivery::Syn { .. })));
        net.accept(link, 21, t);
        net.close(1, 11, t);
        assert_eq!(net.pop_due(t), Some(Delivery::Closed { to: 2, conn: 21 }));
        assert_eq!(net.pop_due(t), None);
    }
}
