//! A deterministic harness: two [`Peer`]s back to back through an in-memory TCP model with
//! virtual time (in the spirit of quinn-proto's test `Pair`). Messages are encoded and
//! decoded by the wire codec with the negotiated contexts and travel with a fixed one-way
//! latency (1 ms, `pair.net.latency`); SYN / SYN-ACK / FIN / RST are modelled so that
//! connection collisions, refusals and half-closed sessions happen as on a wire.
//!
//! Reusable by higher layers (speaker simulation): drive with [`Pair::handle`],
//! [`Pair::run_for`] and [`Pair::run_until`]; inspect [`Pair::log`]. The network model
//! itself is [`net::Net`], generic over node and connection names, for simulations with
//! more nodes.

pub mod net;

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::fsm::config::PeerConfig;
use crate::fsm::peer::{Action, ConnId, DownInfo, Event, Peer};
use crate::wire::{Message, Notification};
use net::{Delivery, Net};

/// One end of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// A value per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerSide<T> {
    pub a: T,
    pub b: T,
}

impl<T> PerSide<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
}

/// One action a peer produced, with when and who.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub side: Side,
    pub action: Action,
}

/// Two peers wired back to back with virtual time.
#[derive(Debug)]
pub struct Pair {
    pub peers: PerSide<Peer>,
    /// The virtual clock.
    pub now: Instant,
    /// The instant the pair was created.
    pub epoch: Instant,
    /// Drop every message this side sends (it goes silent; TCP stays up).
    pub mute: PerSide<bool>,
    /// Refuse TCP connections to this side (RST), like a port without a listener.
    pub refuse: PerSide<bool>,
    /// Messages the codec refused to encode (a bug in whoever built them).
    pub encode_errors: Vec<(Side, String)>,
    /// Every action both peers produced, in order.
    pub log: Vec<Logged>,
    /// The network; every message crosses it encoded with the sender's send context and is
    /// decoded with the receiver's receive context, as on a real connection.
    pub net: Net<Side, ConnId>,
}

impl Pair {
    /// Two peers from their configs (jitter seeds 1 and 2), 1 ms latency. Neither is
    /// started.
    pub fn new(a: PeerConfig, b: PeerConfig) -> Result<Pair, crate::fsm::ConfigError> {
        let epoch = Instant::now();
        Ok(Pair {
            peers: PerSide {
                a: Peer::new(a, 1)?,
                b: Peer::new(b, 2)?,
            },
            now: epoch,
            epoch,
            mute: PerSide::default(),
            refuse: PerSide::default(),
            encode_errors: Vec::new(),
            log: Vec::new(),
            net: Net::new(Duration::from_millis(1)),
        })
    }

    pub fn peer(&self, side: Side) -> &Peer {
        self.peers.get(side)
    }

    pub fn peer_mut(&mut self, side: Side) -> &mut Peer {
        self.peers.get_mut(side)
    }

    /// Virtual time since creation.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.epoch)
    }

    /// Feed `event` to one side at the current time and settle.
    pub fn handle(&mut self, side: Side, event: Event) {
        let now = self.now;
        self.peers.get_mut(side).handle(event, now);
        self.settle();
    }

    /// ManualStart on both sides.
    pub fn start_both(&mut self) {
        self.handle(Side::A, Event::ManualStart);
        self.handle(Side::B, Event::ManualStart);
    }

    /// Advance virtual time by `d`, processing everything on the way.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.run_to(deadline, |_| false);
    }

    /// Advance until `pred` holds (checked after every step) or `limit` elapsed. Returns
    /// whether `pred` held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Pair) -> bool) -> bool {
        let deadline = self.now + limit;
        self.run_to(deadline, &mut pred)
    }

    fn run_to(&mut self, deadline: Instant, mut pred: impl FnMut(&Pair) -> bool) -> bool {
        loop {
            self.settle();
            if pred(self) {
                return true;
            }
            let next = [
                self.net.next_at(),
                self.peers.a.poll_timeout(),
                self.peers.b.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= deadline => self.now = self.now.max(t),
                _ => {
                    self.now = deadline;
                    self.settle();
                    return pred(self);
                }
            }
        }
    }

    /// Process everything due at the current time.
    pub fn settle(&mut self) {
        loop {
            let mut progressed = false;
            for side in [Side::A, Side::B] {
                let now = self.now;
                self.peers.get_mut(side).handle_timeout(now);
                while let Some(a) = self.peers.get_mut(side).poll_action() {
                    progressed = true;
                    self.on_action(side, a);
                }
            }
            if let Some(d) = self.net.pop_due(self.now) {
                self.deliver(d);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_action(&mut self, side: Side, action: Action) {
        let now = self.now;
        self.log.push(Logged {
            at: now,
            side,
            action: action.clone(),
        });
        match action {
            Action::Connect { conn } => {
                self.net.connect(side, conn, side.other(), now);
            }
            Action::Send { conn, message } => {
                if *self.mute.get(side) {
                    return;
                }
                let ctx = self
                    .peers
                    .get(side)
                    .session_contexts(conn)
                    .map(|(_, tx)| tx.clone())
                    .unwrap_or_default();
                match message.to_bytes(&ctx) {
                    Ok(bytes) => {
                        self.net.send(side, conn, bytes, now);
                    }
                    Err(e) => self.encode_errors.push((side, e.to_string())),
                }
            }
            Action::Close { conn } => self.net.close(side, conn, now),
            _ => {}
        }
    }

    fn deliver(&mut self, d: Delivery<Side, ConnId>) {
        let now = self.now;
        match d {
            Delivery::Syn { link, to, .. } => {
                let accepted = if *self.refuse.get(to) {
                    None
                } else {
                    self.peers.get_mut(to).accept(now)
                };
                match accepted {
                    Some(c) => self.net.accept(link, c, now),
                    None => self.net.refuse(link, now),
                }
            }
            Delivery::Connected { to, conn } => {
                self.peers
                    .get_mut(to)
                    .handle(Event::TcpConnected { conn }, now);
            }
            Delivery::Data { to, conn, bytes } => {
                let peer = self.peers.get_mut(to);
                let ctx = peer
                    .session_contexts(conn)
                    .map(|(rx, _)| rx.clone())
                    .unwrap_or_default();
                let event = match Message::decode(&bytes, &ctx) {
                    Ok(m) => Event::from_message(conn, m),
                    Err(e) => Event::from_decode_error(conn, &e),
                };
                peer.handle(event, now);
            }
            Delivery::Closed { to, conn } => {
                self.peers
                    .get_mut(to)
                    .handle(Event::TcpConnectionFails { conn }, now);
            }
        }
    }

    /// Replace `side`'s peer with a fresh one from `config` (a restarted speaker) and
    /// start it. With `reset` the other side sees the old connections close (a process
    /// exit); without, they stay half-open until its hold timer or a new OPEN notices (a
    /// frozen host).
    pub fn restart(
        &mut self,
        side: Side,
        config: PeerConfig,
        seed: u64,
        reset: bool,
    ) -> Result<(), crate::fsm::ConfigError> {
        let now = self.now;
        *self.peers.get_mut(side) = Peer::new(config, seed)?;
        self.net.drop_node(side, reset, now);
        self.handle(side, Event::ManualStart);
        Ok(())
    }

    /// Send `message` on `from`'s Established connection as the speaker would (UPDATEs and
    /// ROUTE-REFRESHes do not go through the FSM). Returns false when not Established.
    pub fn send(&mut self, from: Side, message: Message) -> bool {
        let Some(conn) = self.peers.get(from).established_conn() else {
            return false;
        };
        self.on_action(from, Action::Send { conn, message });
        true
    }

    /// Put raw octets on the wire from `from`'s Established connection to the other side
    /// (to test malformed input end to end). Returns false when `from` is not Established.
    pub fn inject_raw(&mut self, from: Side, bytes: Bytes) -> bool {
        let Some(conn) = self.peers.get(from).established_conn() else {
            return false;
        };
        self.net.send(from, conn, bytes, self.now)
    }

    // ----- queries --------------------------------------------------------------------

    /// Both sides are Established.
    pub fn established(&self) -> bool {
        self.peers.a.established_conn().is_some() && self.peers.b.established_conn().is_some()
    }

    /// Every message `side` sent (including those dropped by `mute`).
    pub fn sent(&self, side: Side) -> impl Iterator<Item = &Message> + '_ {
        self.log.iter().filter_map(move |l| match &l.action {
            Action::Send { message, .. } if l.side == side => Some(message),
            _ => None,
        })
    }

    /// The NOTIFICATIONs `side` sent.
    pub fn notifications_sent(&self, side: Side) -> Vec<Notification> {
        self.sent(side)
            .filter_map(|m| match m {
                Message::Notification(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// KEEPALIVEs `side` sent.
    pub fn keepalives_sent(&self, side: Side) -> usize {
        self.sent(side)
            .filter(|m| matches!(m, Message::Keepalive))
            .count()
    }

    /// SessionDown reports of `side`.
    pub fn session_downs(&self, side: Side) -> Vec<DownInfo> {
        self.log
            .iter()
            .filter_map(|l| match &l.action {
                Action::SessionDown(info) if l.side == side => Some((**info).clone()),
                _ => None,
            })
            .collect()
    }

    /// How many times `side` reached Established.
    pub fn sessions_established(&self, side: Side) -> usize {
        self.log
            .iter()
            .filter(|l| l.side == side && matches!(l.action, Action::SessionEstablished { .. }))
            .count()
    }
}
