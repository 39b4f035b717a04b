//! The per-peer session FSM (RFC 4271 section 8) with connection collision detection
//! (section 6.8). See the module documentation of [`crate::fsm`] for the driver contract.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::fsm::config::{ConfigError, PeerConfig, SendHold, StopReason};
use crate::fsm::jitter::{BackoffState, Jitter};
use crate::fsm::negotiate::{
    build_open, is_hard_reset, negotiate, stop_notification, validate_open, Negotiated,
};
use crate::wire::error::{cease_subcode, code, fsm_subcode, open_subcode};
use crate::wire::{
    Capability, DecodeError, Family, Message, Notification, Open, RouteRefresh,
    RouteRefreshSubtype, SessionContext, Update,
};

/// Identifies one TCP connection of a peer. Allocated by the [`Peer`]: outbound ones in
/// [`Action::Connect`], inbound ones by [`Peer::accept`]. Never reused within a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We connected to the peer.
    Outbound,
    /// The peer connected to us.
    Inbound,
}

/// The RFC 4271 session states. A peer's state is that of its most advanced connection;
/// without connections it is Idle, or Active while waiting to (re)connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Idle,
    Active,
    Connect,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Idle => "Idle",
            State::Active => "Active",
            State::Connect => "Connect",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        })
    }
}

/// Inputs to [`Peer::handle`]. Timer events (RFC 4271 events 9-13 and the RFC 9687
/// SendHoldTimer_Expires) are not here: they fire in [`Peer::handle_timeout`], see
/// [`Timer`]. Event 17 TcpConnectionConfirmed (with event 14 TcpConnection_Valid) is
/// [`Peer::accept`]; event 15 TcpConnection_Invalid is the driver refusing a connection it
/// cannot map to a configured peer or listen range, so it never reaches a `Peer`. Event 23
/// OpenCollisionDump is generated inside the FSM by collision detection.
// UPDATE is moved from the decoder to the RIB by the million; boxing it would add an
// allocation per message to shrink the rare other variants (same choice as `Message`).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Event 1 ManualStart; Event 4 ManualStart_with_PassiveTcpEstablishment when the
    /// config is `passive`. Also overrides a running IdleHoldTimer.
    ManualStart,
    /// Event 2 ManualStop: Cease to every connection that has sent an OPEN; stay Idle.
    ManualStop(StopReason),
    /// Event 3 AutomaticStart; 5 with PassiveTcpEstablishment (`passive`); 6/7 with
    /// DampPeerOscillations (`idle_hold`): ignored while the IdleHoldTimer runs.
    AutomaticStart,
    /// Event 8 AutomaticStop: like ManualStop, but the peer restarts automatically after
    /// the IdleHoldTimer.
    AutomaticStop(StopReason),
    /// Event 16 Tcp_CR_Acked: our outbound connection `conn` (from [`Action::Connect`]) is
    /// established.
    TcpConnected { conn: ConnId },
    /// Event 18 TcpConnectionFails: the connect attempt failed, or the connection was
    /// closed or reset by the peer.
    TcpConnectionFails { conn: ConnId },
    /// Event 19 BGPOpen, or event 20 BGPOpen with DelayOpenTimer running (the FSM knows
    /// which).
    BgpOpen { conn: ConnId, open: Open },
    /// Event 21 BGPHeaderErr: the received header was invalid; `notification` is what to
    /// send ([`DecodeError::notification`]).
    BgpHeaderErr {
        conn: ConnId,
        notification: Notification,
    },
    /// Event 22 BGPOpenMsgErr: the received OPEN did not decode.
    BgpOpenMsgErr {
        conn: ConnId,
        notification: Notification,
    },
    /// Event 24 NotifMsgVerErr (code 2 subcode 1, told apart inside) or event 25
    /// NotifMsg: a NOTIFICATION was received.
    NotifMsg {
        conn: ConnId,
        notification: Notification,
    },
    /// Event 26 KeepAliveMsg.
    KeepAliveMsg { conn: ConnId },
    /// Event 27 UpdateMsg: a well-formed UPDATE (RFC 7606 issues ride along in it).
    UpdateMsg { conn: ConnId, update: Update },
    /// Event 28 UpdateMsgErr: an UPDATE error that resets the session.
    UpdateMsgErr {
        conn: ConnId,
        notification: Notification,
    },
    /// ROUTE-REFRESH received (RFC 2918, RFC 7313 BoRR / EoRR).
    RouteRefreshMsg { conn: ConnId, refresh: RouteRefresh },
    /// A malformed ROUTE-REFRESH (RFC 7313 section 5): NOTIFICATION 7/1 and reset.
    RouteRefreshMsgErr {
        conn: ConnId,
        notification: Notification,
    },
    /// RFC 9687 input: the driver has had unsent data for `conn` since `since` (the socket
    /// would block). Repeated reports keep the earliest `since`.
    SendBlocked { conn: ConnId, since: Instant },
    /// RFC 9687 input: the driver wrote data for `conn`; stops the SendHoldTimer.
    SendProgress { conn: ConnId },
    /// The driver sent an UPDATE (or an End-of-RIB) on the established `conn`: RFC 4271
    /// 8.2.2 (Established, UpdateMsg sent): the KeepaliveTimer restarts, since the UPDATE
    /// proves liveness as a KEEPALIVE would.
    UpdateSent { conn: ConnId },
    /// The RIB counted more than `limit` prefixes of `family` from this peer: Cease /
    /// Maximum Number of Prefixes Reached (RFC 4486 data). Restart after
    /// `max_prefix_restart`, or stay down until ManualStart.
    MaxPrefixExceeded { family: Family, limit: u32 },
}

impl Event {
    /// The event for a decoded message on `conn`.
    pub fn from_message(conn: ConnId, message: Message) -> Event {
        match message {
            Message::Open(open) => Event::BgpOpen { conn, open },
            Message::Update(update) => Event::UpdateMsg { conn, update },
            Message::Notification(notification) => Event::NotifMsg { conn, notification },
            Message::Keepalive => Event::KeepAliveMsg { conn },
            Message::RouteRefresh(refresh) => Event::RouteRefreshMsg { conn, refresh },
        }
    }

    /// The event for a message on `conn` that did not decode.
    pub fn from_decode_error(conn: ConnId, error: &DecodeError) -> Event {
        let notification = error.notification();
        match error {
            DecodeError::Header(_) | DecodeError::Notification(_) => {
                Event::BgpHeaderErr { conn, notification }
            }
            DecodeError::Open(_) => Event::BgpOpenMsgErr { conn, notification },
            DecodeError::Update(_) => Event::UpdateMsgErr { conn, notification },
            DecodeError::RouteRefresh(_) => Event::RouteRefreshMsgErr { conn, notification },
        }
    }
}

/// Timers, as deadlines. [`Peer::poll_timeout`] gives the earliest; [`Peer::handle_timeout`]
/// fires every one that is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Event 9 ConnectRetryTimer_Expires: abandon a pending connect and try again, with
    /// exponential backoff and jitter.
    ConnectRetry,
    /// Event 13 IdleHoldTimer_Expires: automatic restart after a failure (damping).
    IdleHold,
    /// Event 10 HoldTimer_Expires: NOTIFICATION 4/0.
    Hold(ConnId),
    /// Event 11 KeepaliveTimer_Expires: send a KEEPALIVE.
    Keepalive(ConnId),
    /// Event 12 DelayOpenTimer_Expires: send our OPEN.
    DelayOpen(ConnId),
    /// RFC 9687 SendHoldTimer_Expires: NOTIFICATION 8/0 and close.
    SendHold(ConnId),
}

/// Why a connection (and, if it was Established, the session) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DownReason {
    /// ManualStop.
    ManualStop,
    /// AutomaticStop.
    AutomaticStop,
    /// The RIB reported the max-prefix limit exceeded.
    MaxPrefix,
    /// Our hold timer expired (we sent 4/0).
    HoldTimerExpired,
    /// Our send hold timer expired (we sent 8/0, RFC 9687).
    SendHoldTimerExpired,
    /// The TCP connection failed or was closed without a NOTIFICATION.
    ConnectionLost,
    /// The peer sent a NOTIFICATION.
    NotificationReceived,
    /// We rejected the peer's OPEN (bad AS, hold time, identifier, ...).
    OpenRejected,
    /// A malformed message or a message unexpected in the state (we sent the error).
    ProtocolError,
    /// Connection collision resolution (RFC 4271 6.8), Cease subcode 7.
    CollisionResolution,
    /// A new OPEN with the graceful restart R bit arrived while Established (RFC 4724
    /// section 4.2): the peer restarted.
    PeerRestarted,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DownReason::ManualStop => "manual stop",
            DownReason::AutomaticStop => "automatic stop",
            DownReason::MaxPrefix => "maximum number of prefixes reached",
            DownReason::HoldTimerExpired => "hold timer expired",
            DownReason::SendHoldTimerExpired => "send hold timer expired",
            DownReason::ConnectionLost => "TCP connection lost",
            DownReason::NotificationReceived => "NOTIFICATION received",
            DownReason::OpenRejected => "OPEN rejected",
            DownReason::ProtocolError => "protocol error",
            DownReason::CollisionResolution => "connection collision resolution",
            DownReason::PeerRestarted => "peer restarted",
        })
    }
}

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownInfo {
    pub conn: ConnId,
    pub at: Instant,
    pub reason: DownReason,
    /// The NOTIFICATION we sent, if any.
    pub sent: Option<Notification>,
    /// The NOTIFICATION we received, if any.
    pub received: Option<Notification>,
    /// Graceful restart applies (RFC 4724, RFC 8538): both sides advertised GR, and the
    /// session ended without a NOTIFICATION, or with one other than Hard Reset while both
    /// set the N bit. The RIB keeps the peer's routes as stale.
    pub gr_eligible: bool,
    /// With `gr_eligible`: the peer's restart time (RFC 4724), how long to keep its routes
    /// as stale while waiting for the new session.
    pub restart_time: Option<Duration>,
    /// A human-readable detail (e.g. why the OPEN was rejected).
    pub detail: Option<String>,
}

/// Outputs, drained with [`Peer::poll_action`] after every call that takes `now`.
// `Send` carries a `Message` inline for the same reason as `Event`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; report [`Event::TcpConnected`] or
    /// [`Event::TcpConnectionFails`] for `conn`.
    Connect { conn: ConnId },
    /// Send a message on `conn` (encode with the context of [`Negotiated::tx`] once
    /// Established, [`crate::wire::SessionContext::default`] before).
    Send { conn: ConnId, message: Message },
    /// Close `conn` after flushing what was queued (a NOTIFICATION just before a Close must
    /// go out first). May name a connection that already failed: ignore it then.
    Close { conn: ConnId },
    /// The peer's reported state changed.
    StateChanged { from: State, to: State },
    /// `conn` reached Established.
    SessionEstablished {
        conn: ConnId,
        negotiated: Box<Negotiated>,
    },
    /// The Established session on `info.conn` ended.
    SessionDown(Box<DownInfo>),
    /// An UPDATE received in Established.
    DeliverUpdate { conn: ConnId, update: Update },
    /// A ROUTE-REFRESH (request, BoRR or EoRR) for a negotiated family, in Established.
    DeliverRouteRefresh { conn: ConnId, refresh: RouteRefresh },
}

/// One connection's state, for status output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub id: ConnId,
    pub direction: Direction,
    pub state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// Outbound TCP connect in progress.
    Connecting,
    /// TCP up, DelayOpenTimer running, our OPEN not sent yet.
    DelayOpen,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Debug)]
struct Conn {
    id: ConnId,
    dir: Direction,
    state: ConnState,
    delay_open: Option<Instant>,
    hold: Option<Instant>,
    keepalive: Option<Instant>,
    send_blocked_since: Option<Instant>,
    negotiated: Option<Negotiated>,
    established_at: Option<Instant>,
}

impl Conn {
    fn new(id: ConnId, dir: Direction) -> Self {
        Conn {
            id,
            dir,
            state: ConnState::Connecting,
            delay_open: None,
            hold: None,
            keepalive: None,
            send_blocked_since: None,
            negotiated: None,
            established_at: None,
        }
    }

    fn public_state(&self) -> State {
        match self.state {
            ConnState::Connecting => State::Connect,
            ConnState::DelayOpen => match self.dir {
                Direction::Outbound => State::Connect,
                Direction::Inbound => State::Active,
            },
            ConnState::OpenSent => State::OpenSent,
            ConnState::OpenConfirm => State::OpenConfirm,
            ConnState::Established => State::Established,
        }
    }

    /// Our OPEN went out on this connection.
    fn open_sent(&self) -> bool {
        matches!(
            self.state,
            ConnState::OpenSent | ConnState::OpenConfirm | ConnState::Established
        )
    }
}

/// What happens to the peer when its last connection goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Back to Active; retry after the ConnectRetryTimer (RFC: TcpConnectionFails in
    /// Connect, Active or OpenSent).
    Active,
    /// Idle, automatic restart after the IdleHoldTimer; `count` increments the
    /// ConnectRetryCounter.
    Idle { count: bool },
}

/// Minimum send hold time suggested by RFC 9687.
const SEND_HOLD_MIN: Duration = Duration::from_secs(8 * 60);
/// Safety bound on timers fired by one `handle_timeout` call.
const MAX_FIRES: usize = 10_000;

/// One peer's session: the RFC 4271 FSM over up to a few TCP connections (an outbound
/// one, an inbound one, and an Established one while a restarted peer reconnects).
#[derive(Debug)]
pub struct Peer {
    config: PeerConfig,
    local_open: Open,
    rng: Jitter,
    conns: Vec<Conn>,
    next_conn: u64,
    admin_up: bool,
    idle: bool,
    connect_retry: Option<Instant>,
    idle_hold: Option<Instant>,
    connect_backoff: BackoffState,
    idle_backoff: BackoffState,
    connect_retry_counter: u32,
    reported: State,
    actions: VecDeque<Action>,
    last_down: Option<DownInfo>,
}

impl Peer {
    /// A peer in Idle. `seed` drives the timer jitter (use a random seed in the driver, a
    /// constant in tests). Nothing happens until [`Event::ManualStart`] or
    /// [`Event::AutomaticStart`].
    pub fn new(config: PeerConfig, seed: u64) -> Result<Peer, ConfigError> {
        config.validate()?;
        let local_open = build_open(&config);
        Ok(Peer {
            config,
            local_open,
            rng: Jitter::new(seed),
            conns: Vec::new(),
            next_conn: 1,
            admin_up: false,
            idle: true,
            connect_retry: None,
            idle_hold: None,
            connect_backoff: BackoffState::default(),
            idle_backoff: BackoffState::default(),
            connect_retry_counter: 0,
            reported: State::Idle,
            actions: VecDeque::new(),
            last_down: None,
        })
    }

    // ----- accessors -------------------------------------------------------------------

    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The OPEN we send.
    pub fn local_open(&self) -> &Open {
        &self.local_open
    }

    /// The peer's state: that of its most advanced connection.
    pub fn state(&self) -> State {
        match self.conns.iter().map(Conn::public_state).max() {
            Some(s) => s,
            None if self.idle => State::Idle,
            None => State::Active,
        }
    }

    /// The Established connection, if any.
    pub fn established_conn(&self) -> Option<ConnId> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
            .map(|c| c.id)
    }

    /// What the Established session negotiated.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
            .and_then(|c| c.negotiated.as_ref())
    }

    /// When the current session reached Established.
    pub fn established_since(&self) -> Option<Instant> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
            .and_then(|c| c.established_at)
    }

    /// Replace the configuration. It applies to connections opened from now on (our OPEN
    /// is rebuilt); a running session keeps what it negotiated until it is reset (send
    /// `ManualStop(StopReason::ConfigChange)` then `ManualStart` to apply it at once).
    /// A peer waiting in Active that stops being passive connects at once.
    pub fn set_config(&mut self, config: PeerConfig, now: Instant) -> Result<(), ConfigError> {
        config.validate()?;
        self.local_open = build_open(&config);
        let was_passive = self.config.passive;
        self.config = config;
        if self.config.passive {
            self.connect_retry = None;
        } else if was_passive && self.admin_up && !self.idle && self.conns.is_empty() {
            self.connect(now);
        }
        self.sync_state();
        Ok(())
    }

    /// The (receive, send) codec contexts of `conn`: the negotiated ones once its OPEN
    /// exchange is done (OpenConfirm, Established), `None` before (use
    /// [`crate::wire::SessionContext::default`]). Switch the codec when
    /// [`Action::SessionEstablished`] is seen; only UPDATE and ROUTE-REFRESH, which are
    /// legal only in Established, depend on it.
    pub fn session_contexts(&self, conn: ConnId) -> Option<(&SessionContext, &SessionContext)> {
        let n = self.conn(conn)?.negotiated.as_ref()?;
        Some((&n.rx, &n.tx))
    }

    /// The connections and their states.
    pub fn connections(&self) -> Vec<ConnInfo> {
        self.conns
            .iter()
            .map(|c| ConnInfo {
                id: c.id,
                direction: c.dir,
                state: c.public_state(),
            })
            .collect()
    }

    /// RFC 4271 ConnectRetryCounter.
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// How the last connection ended (collision losers excluded).
    pub fn last_down(&self) -> Option<&DownInfo> {
        self.last_down.as_ref()
    }

    /// Started (ManualStart/AutomaticStart) and not stopped.
    pub fn is_admin_up(&self) -> bool {
        self.admin_up
    }

    // ----- driver API ------------------------------------------------------------------

    /// The next output, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest timer deadline; call [`Peer::handle_timeout`] when it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// The earliest timer and its deadline.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        let mut best: Option<(Instant, Timer)> = None;
        let mut consider = |at: Option<Instant>, t: Timer| {
            if let Some(at) = at {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, t));
                }
            }
        };
        consider(self.connect_retry, Timer::ConnectRetry);
        consider(self.idle_hold, Timer::IdleHold);
        for c in &self.conns {
            consider(c.hold, Timer::Hold(c.id));
            consider(c.keepalive, Timer::Keepalive(c.id));
            consider(c.delay_open, Timer::DelayOpen(c.id));
            consider(self.send_hold_deadline(c), Timer::SendHold(c.id));
        }
        best
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_FIRES {
            match self.next_timer() {
                Some((at, t)) if at <= now => {
                    self.fire(t, now);
                    self.sync_state();
                }
                _ => break,
            }
        }
        self.sync_state();
    }

    /// Event 17 TcpConnectionConfirmed (with event 14 TcpConnection_Valid): the driver
    /// accepted a TCP connection from this peer. Returns the connection's id, or `None`
    /// when the peer refuses connections (Idle, stopped, IdleHoldTimer running): close the
    /// socket then. An older inbound connection that is not Established is superseded.
    pub fn accept(&mut self, now: Instant) -> Option<ConnId> {
        if !self.admin_up || self.idle {
            return None;
        }
        let old: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.dir == Direction::Inbound && c.state != ConnState::Established)
            .map(|c| c.id)
            .collect();
        for o in old {
            let sent = self
                .conn(o)
                .filter(|c| c.open_sent())
                .map(|_| Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION));
            self.remove_conn(o, now, DownReason::CollisionResolution, sent, None, None);
        }
        let id = self.alloc_id();
        self.conns.push(Conn::new(id, Direction::Inbound));
        if self.established_conn().is_none() {
            self.connect_retry = None;
        }
        self.tcp_up(id, now);
        self.sync_state();
        Some(id)
    }

    /// Process one event.
    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::ManualStart => {
                if !self.admin_up {
                    self.connect_retry_counter = 0;
                    self.connect_backoff.reset();
                    self.idle_backoff.reset();
                }
                self.admin_up = true;
                if self.idle {
                    self.start(now);
                }
            }
            Event::AutomaticStart => {
                if self.idle && self.idle_hold.is_none() {
                    self.admin_up = true;
                    self.start(now);
                }
            }
            Event::ManualStop(reason) => {
                self.stop_all(now, &reason, DownReason::ManualStop);
                self.admin_up = false;
                self.go_idle();
                self.connect_retry_counter = 0;
                self.connect_backoff.reset();
                self.idle_backoff.reset();
            }
            Event::AutomaticStop(reason) => {
                self.stop_all(now, &reason, DownReason::AutomaticStop);
                self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
                self.go_idle();
                if self.admin_up {
                    self.schedule_restart(now, None);
                }
            }
            Event::MaxPrefixExceeded { family, limit } => {
                if self.established_conn().is_none() {
                    return;
                }
                let reason = StopReason::MaxPrefix { family, limit };
                self.stop_all(now, &reason, DownReason::MaxPrefix);
                self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
                self.go_idle();
                match self.config.max_prefix_restart {
                    Some(d) => self.idle_hold = Some(now + d),
                    None => self.admin_up = false,
                }
            }
            Event::TcpConnected { conn } => self.on_tcp_connected(conn, now),
            Event::TcpConnectionFails { conn } => self.on_tcp_fails(conn, now),
            Event::BgpOpen { conn, open } => self.on_open(conn, open, now),
            Event::BgpHeaderErr { conn, notification }
            | Event::BgpOpenMsgErr { conn, notification }
            | Event::UpdateMsgErr { conn, notification }
            | Event::RouteRefreshMsgErr { conn, notification } => {
                if self
                    .conn(conn)
                    .is_some_and(|c| c.state != ConnState::Connecting)
                {
                    self.conn_failed(
                        conn,
                        now,
                        DownReason::ProtocolError,
                        Some(notification),
                        None,
                        Next::Idle { count: true },
                    );
                }
            }
            Event::NotifMsg { conn, notification } => self.on_notification(conn, notification, now),
            Event::KeepAliveMsg { conn } => self.on_keepalive(conn, now),
            Event::UpdateMsg { conn, update } => self.on_update(conn, update, now),
            Event::RouteRefreshMsg { conn, refresh } => self.on_route_refresh(conn, refresh, now),
            Event::SendBlocked { conn, since } => {
                if let Some(c) = self.conn_mut(conn) {
                    if c.send_blocked_since.is_none() {
                        c.send_blocked_since = Some(since);
                    }
                }
            }
            Event::SendProgress { conn } => {
                if let Some(c) = self.conn_mut(conn) {
                    c.send_blocked_since = None;
                }
            }
            Event::UpdateSent { conn } => {
                if let Some(c) = self.conn_mut(conn) {
                    if c.state == ConnState::Established && c.keepalive.is_some() {
                        c.keepalive = c
                            .negotiated
                            .as_ref()
                            .and_then(Negotiated::keepalive)
                            .map(|k| now + k);
                    }
                }
            }
        }
        self.sync_state();
    }

    // ----- internals -------------------------------------------------------------------

    fn push(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    fn send(&mut self, conn: ConnId, message: Message) {
        self.push(Action::Send { conn, message });
    }

    fn sync_state(&mut self) {
        let s = self.state();
        if s != self.reported {
            tracing::debug!(from = %self.reported, to = %s, "bgp fsm state change");
            self.push(Action::StateChanged {
                from: self.reported,
                to: s,
            });
            self.reported = s;
        }
    }

    fn alloc_id(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.saturating_add(1);
        id
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.iter().find(|c| c.id == id)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn go_idle(&mut self) {
        self.idle = true;
        self.connect_retry = None;
        self.idle_hold = None;
    }

    fn send_hold_time(&self, c: &Conn) -> Option<Duration> {
        match self.config.send_hold {
            SendHold::Disabled => None,
            SendHold::Fixed(d) => Some(d),
            SendHold::Default => {
                let hold = c
                    .negotiated
                    .as_ref()
                    .map_or(self.config.hold_time, |n| n.hold_time);
                Some(SEND_HOLD_MIN.max(Duration::from_secs(2 * u64::from(hold))))
            }
        }
    }

    fn send_hold_deadline(&self, c: &Conn) -> Option<Instant> {
        let since = c.send_blocked_since?;
        Some(since + self.send_hold_time(c)?)
    }

    /// Leave Idle: connect (Connect) or wait (Active, passive).
    fn start(&mut self, now: Instant) {
        self.idle = false;
        self.idle_hold = None;
        if self.config.passive {
            self.connect_retry = None;
        } else {
            self.connect(now);
        }
    }

    fn connect(&mut self, now: Instant) {
        let id = self.alloc_id();
        self.conns.push(Conn::new(id, Direction::Outbound));
        self.push(Action::Connect { conn: id });
        let d = self
            .connect_backoff
            .next(&self.config.connect_retry, &mut self.rng);
        self.connect_retry = Some(now + d);
    }

    fn schedule_restart(&mut self, now: Instant, fixed: Option<Duration>) {
        let d = match (fixed, self.config.idle_hold) {
            (Some(d), _) => d,
            (None, Some(b)) => self.idle_backoff.next(&b, &mut self.rng),
            (None, None) => Duration::ZERO,
        };
        self.idle_hold = Some(now + d);
    }

    /// TCP is up on `id`: send our OPEN, or start the DelayOpenTimer.
    fn tcp_up(&mut self, id: ConnId, now: Instant) {
        match self.config.delay_open {
            Some(d) => {
                if let Some(c) = self.conn_mut(id) {
                    c.state = ConnState::DelayOpen;
                    c.delay_open = Some(now + d);
                }
            }
            None => self.send_open(id, now),
        }
    }

    fn send_open(&mut self, id: ConnId, now: Instant) {
        let open_hold = self.config.open_hold_time;
        let open = self.local_open.clone();
        if let Some(c) = self.conn_mut(id) {
            c.state = ConnState::OpenSent;
            c.delay_open = None;
            c.hold = Some(now + open_hold);
            self.send(id, Message::Open(open));
        }
    }

    /// Send every connection the stop NOTIFICATION (if our OPEN went out) and close it.
    fn stop_all(&mut self, now: Instant, reason: &StopReason, down: DownReason) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            let sent = self.conn(id).filter(|c| c.open_sent()).map(|c| {
                let n_bit = c
                    .negotiated
                    .as_ref()
                    .is_some_and(Negotiated::gr_notification);
                stop_notification(reason, n_bit)
            });
            self.remove_conn(id, now, down, sent, None, None);
        }
    }

    /// Remove a connection: send `sent` (if any), close, report SessionDown if it was
    /// Established. No change of the peer's base state.
    fn remove_conn(
        &mut self,
        id: ConnId,
        now: Instant,
        reason: DownReason,
        sent: Option<Notification>,
        received: Option<Notification>,
        detail: Option<String>,
    ) -> Option<Conn> {
        let pos = self.conns.iter().position(|c| c.id == id)?;
        let c = self.conns.remove(pos);
        if let Some(n) = &sent {
            self.send(id, Message::Notification(n.clone()));
        }
        self.push(Action::Close { conn: id });
        let was_established = c.state == ConnState::Established;
        let gr = was_established && gr_eligible(&c, sent.as_ref(), received.as_ref());
        let restart_time = c
            .negotiated
            .as_ref()
            .and_then(|n| n.remote_gr.as_ref())
            .filter(|_| gr)
            .map(|g| Duration::from_secs(u64::from(g.restart_time)));
        let info = DownInfo {
            conn: id,
            at: now,
            reason,
            gr_eligible: gr,
            restart_time,
            sent,
            received,
            detail,
        };
        tracing::debug!(conn = %id, reason = %reason, sent = ?info.sent, received = ?info.received, "bgp connection down");
        if was_established {
            if let (Some(at), Some(b)) = (c.established_at, self.config.idle_hold) {
                if now.saturating_duration_since(at) >= b.max {
                    self.idle_backoff.reset();
                }
            }
            self.push(Action::SessionDown(Box::new(info.clone())));
        }
        if reason != DownReason::CollisionResolution {
            self.last_down = Some(info);
        }
        Some(c)
    }

    /// A connection failed: remove it and, if it was the last one, move the peer on.
    fn conn_failed(
        &mut self,
        id: ConnId,
        now: Instant,
        reason: DownReason,
        sent: Option<Notification>,
        received: Option<Notification>,
        next: Next,
    ) {
        self.conn_failed_detail(id, now, reason, sent, received, None, next);
    }

    #[allow(clippy::too_many_arguments)]
    fn conn_failed_detail(
        &mut self,
        id: ConnId,
        now: Instant,
        reason: DownReason,
        sent: Option<Notification>,
        received: Option<Notification>,
        detail: Option<String>,
        next: Next,
    ) {
        if self
            .remove_conn(id, now, reason, sent, received, detail)
            .is_none()
        {
            return;
        }
        if let Next::Idle { count: true } = next {
            self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
        }
        if !self.conns.is_empty() {
            return;
        }
        if !self.admin_up {
            self.go_idle();
            return;
        }
        match next {
            Next::Active => {
                self.idle = false;
                self.idle_hold = None;
                if self.config.passive {
                    self.connect_retry = None;
                } else {
                    let d = self
                        .connect_backoff
                        .next(&self.config.connect_retry, &mut self.rng);
                    self.connect_retry = Some(now + d);
                }
            }
            Next::Idle { .. } => {
                self.go_idle();
                self.schedule_restart(now, None);
            }
        }
    }

    fn fsm_error(&mut self, id: ConnId, now: Instant, subcode: u8) {
        self.conn_failed(
            id,
            now,
            DownReason::ProtocolError,
            Some(Notification::fsm_error(subcode)),
            None,
            Next::Idle { count: true },
        );
    }

    /// The RFC 6608 subcode for an unexpected message in `state`.
    fn unexpected(&mut self, id: ConnId, now: Instant, state: ConnState) {
        let sub = match state {
            ConnState::OpenSent => fsm_subcode::OPEN_SENT,
            ConnState::OpenConfirm => fsm_subcode::OPEN_CONFIRM,
            ConnState::Established => fsm_subcode::ESTABLISHED,
            ConnState::Connecting | ConnState::DelayOpen => fsm_subcode::UNSPECIFIED,
        };
        if state != ConnState::Connecting {
            self.fsm_error(id, now, sub);
        }
    }

    fn on_tcp_connected(&mut self, id: ConnId, now: Instant) {
        if self
            .conn(id)
            .is_none_or(|c| c.state != ConnState::Connecting)
        {
            return;
        }
        if self.established_conn().is_some() {
            // RFC 4271 6.8: the Established connection stays; drop the new one.
            self.remove_conn(id, now, DownReason::CollisionResolution, None, None, None);
            return;
        }
        self.connect_retry = None;
        self.tcp_up(id, now);
    }

    fn on_tcp_fails(&mut self, id: ConnId, now: Instant) {
        let Some(state) = self.conn(id).map(|c| c.state) else {
            return;
        };
        let next = match state {
            ConnState::Connecting | ConnState::DelayOpen | ConnState::OpenSent => Next::Active,
            ConnState::OpenConfirm | ConnState::Established => Next::Idle { count: true },
        };
        self.conn_failed(id, now, DownReason::ConnectionLost, None, None, next);
    }

    fn on_notification(&mut self, id: ConnId, n: Notification, now: Instant) {
        let Some(state) = self.conn(id).map(|c| c.state) else {
            return;
        };
        if state == ConnState::Connecting {
            return;
        }
        // Event 24 NotifMsgVerErr: no ConnectRetryCounter increment.
        let ver_err = n.code == code::OPEN_MESSAGE
            && n.subcode == open_subcode::UNSUPPORTED_VERSION_NUMBER
            && matches!(state, ConnState::DelayOpen | ConnState::OpenSent);
        self.conn_failed(
            id,
            now,
            DownReason::NotificationReceived,
            None,
            Some(n),
            Next::Idle { count: !ver_err },
        );
    }

    fn touch_hold(&mut self, id: ConnId, now: Instant) {
        if let Some(c) = self.conn_mut(id) {
            c.hold = c
                .negotiated
                .as_ref()
                .and_then(Negotiated::hold)
                .map(|h| now + h);
        }
    }

    fn on_keepalive(&mut self, id: ConnId, now: Instant) {
        let Some(state) = self.conn(id).map(|c| c.state) else {
            return;
        };
        match state {
            ConnState::OpenConfirm => self.establish(id, now),
            ConnState::Established => self.touch_hold(id, now),
            s => self.unexpected(id, now, s),
        }
    }

    fn on_update(&mut self, id: ConnId, update: Update, now: Instant) {
        let Some(state) = self.conn(id).map(|c| c.state) else {
            return;
        };
        match state {
            ConnState::Established => {
                self.touch_hold(id, now);
                self.push(Action::DeliverUpdate { conn: id, update });
            }
            s => self.unexpected(id, now, s),
        }
    }

    fn on_route_refresh(&mut self, id: ConnId, refresh: RouteRefresh, now: Instant) {
        let Some(c) = self.conn(id) else {
            return;
        };
        match c.state {
            ConnState::Established => {
                let family = Family::new(refresh.afi, refresh.safi);
                // RFC 2918 section 4: ignore families not negotiated; RFC 7313 section 5:
                // ignore unknown subtypes. We must have advertised the capability.
                let wanted = (self.config.route_refresh || self.config.enhanced_route_refresh)
                    && c.negotiated
                        .as_ref()
                        .is_some_and(|n| n.families.contains(&family))
                    && !matches!(refresh.subtype, RouteRefreshSubtype::Other(_));
                self.touch_hold(id, now);
                if wanted {
                    self.push(Action::DeliverRouteRefresh { conn: id, refresh });
                } else {
                    tracing::debug!(conn = %id, ?refresh, "ignoring ROUTE-REFRESH");
                }
            }
            s => self.unexpected(id, now, s),
        }
    }

    fn on_open(&mut self, id: ConnId, open: Open, now: Instant) {
        let Some(state) = self.conn(id).map(|c| c.state) else {
            return;
        };
        match state {
            ConnState::Connecting => return,
            ConnState::OpenConfirm | ConnState::Established => {
                return self.unexpected(id, now, state);
            }
            ConnState::DelayOpen | ConnState::OpenSent => {}
        }
        if let Err(rej) = validate_open(&self.config, &open) {
            tracing::info!(conn = %id, reason = %rej.reason, "rejecting OPEN");
            self.conn_failed_detail(
                id,
                now,
                DownReason::OpenRejected,
                Some(rej.notification),
                None,
                Some(rej.reason),
                Next::Idle { count: true },
            );
            return;
        }
        let mut neg = negotiate(&self.local_open, &open);
        if let Some(k) = self.config.keepalive {
            neg.keepalive_time = neg.keepalive_time.min(k);
        }
        if !self.resolve_collision(id, &open, now) {
            return;
        }
        if state == ConnState::DelayOpen {
            // Event 20: BGPOpen with the DelayOpenTimer running.
            let ours = self.local_open.clone();
            self.send(id, Message::Open(ours));
        }
        self.send(id, Message::Keepalive);
        let open_hold = self.config.open_hold_time;
        if let Some(c) = self.conn_mut(id) {
            c.state = ConnState::OpenConfirm;
            c.delay_open = None;
            // With a hold time of 0 keep a bound on OpenConfirm anyway.
            c.hold = Some(now + neg.hold().unwrap_or(open_hold));
            c.keepalive = neg.keepalive().map(|k| now + k);
            c.negotiated = Some(neg);
        }
    }

    /// RFC 4271 section 6.8 on receipt of an OPEN on `x`. Returns whether `x` survives.
    fn resolve_collision(&mut self, x: ConnId, open: &Open, now: Instant) -> bool {
        let Some(x_dir) = self.conn(x).map(|c| c.dir) else {
            return false;
        };
        let others: Vec<(ConnId, ConnState, Direction, bool)> = self
            .conns
            .iter()
            .filter(|c| {
                c.id != x && matches!(c.state, ConnState::OpenConfirm | ConnState::Established)
            })
            .map(|c| {
                let gr = c
                    .negotiated
                    .as_ref()
                    .is_some_and(Negotiated::graceful_restart);
                (c.id, c.state, c.dir, gr)
            })
            .collect();
        let collision = || {
            Some(Notification::cease(
                cease_subcode::CONNECTION_COLLISION_RESOLUTION,
            ))
        };
        for (y, y_state, y_dir, y_gr) in others {
            if y_state == ConnState::Established {
                let restarting = open
                    .capabilities()
                    .any(|c| matches!(c, Capability::GracefulRestart(g) if g.restart_state));
                if y_gr && restarting {
                    // RFC 4724 section 4.2: the peer restarted; end the old session, keep
                    // its routes as stale (SessionDown with gr_eligible).
                    self.conn_failed(
                        y,
                        now,
                        DownReason::PeerRestarted,
                        None,
                        None,
                        Next::Idle { count: false },
                    );
                    continue;
                }
                self.conn_failed(
                    x,
                    now,
                    DownReason::CollisionResolution,
                    collision(),
                    None,
                    Next::Idle { count: false },
                );
                return false;
            }
            // Keep the connection initiated by the speaker with the higher BGP identifier
            // (RFC 6286 section 2.3: the higher AS when the identifiers are equal).
            let local = (u32::from(self.config.local_id), self.config.local_as);
            let remote = (u32::from(open.bgp_id), open.asn());
            let keep_inbound = local < remote;
            let loser = if x_dir == y_dir || (x_dir == Direction::Inbound) == keep_inbound {
                y
            } else {
                x
            };
            tracing::debug!(winner = %(if loser == x { y } else { x }), loser = %loser, "connection collision");
            self.conn_failed(
                loser,
                now,
                DownReason::CollisionResolution,
                collision(),
                None,
                Next::Idle { count: false },
            );
            if loser == x {
                return false;
            }
        }
        true
    }

    fn establish(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conn_mut(id) else {
            return;
        };
        let Some(neg) = c.negotiated.clone() else {
            return;
        };
        c.state = ConnState::Established;
        c.established_at = Some(now);
        c.hold = neg.hold().map(|h| now + h);
        self.connect_retry = None;
        self.idle_hold = None;
        self.connect_backoff.reset();
        // RFC 4724: the R bit says "I restarted"; once this peer's session is back, later
        // reconnections are not restarts.
        if let Some(gr) = self.config.graceful_restart.as_mut() {
            if gr.restart_state {
                gr.restart_state = false;
                self.local_open = build_open(&self.config);
            }
        }
        self.push(Action::SessionEstablished {
            conn: id,
            negotiated: Box::new(neg),
        });
        // RFC 4271 6.8: an Established connection wins over any other.
        let others: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter(|c| c.id != id)
            .map(|c| (c.id, c.open_sent()))
            .collect();
        for (o, open_sent) in others {
            let sent = open_sent
                .then(|| Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION));
            self.remove_conn(o, now, DownReason::CollisionResolution, sent, None, None);
        }
    }

    fn fire(&mut self, t: Timer, now: Instant) {
        match t {
            Timer::ConnectRetry => {
                self.connect_retry = None;
                self.on_connect_retry(now);
            }
            Timer::IdleHold => {
                self.idle_hold = None;
                if self.admin_up && self.idle {
                    self.start(now);
                }
            }
            Timer::Hold(id) => {
                let state = self.conn_mut(id).map(|c| {
                    c.hold = None;
                    c.state
                });
                if matches!(
                    state,
                    Some(ConnState::OpenSent | ConnState::OpenConfirm | ConnState::Established)
                ) {
                    self.conn_failed(
                        id,
                        now,
                        DownReason::HoldTimerExpired,
                        Some(Notification::new(code::HOLD_TIMER_EXPIRED, 0, &[])),
                        None,
                        Next::Idle { count: true },
                    );
                }
            }
            Timer::Keepalive(id) => {
                let mut send = false;
                if let Some(c) = self.conn_mut(id) {
                    c.keepalive = None;
                    if matches!(c.state, ConnState::OpenConfirm | ConnState::Established) {
                        c.keepalive = c
                            .negotiated
                            .as_ref()
                            .and_then(Negotiated::keepalive)
                            .map(|k| now + k);
                        send = true;
                    }
                }
                if send {
                    self.send(id, Message::Keepalive);
                }
            }
            Timer::DelayOpen(id) => {
                let state = self.conn_mut(id).map(|c| {
                    c.delay_open = None;
                    c.state
                });
                if state == Some(ConnState::DelayOpen) {
                    self.send_open(id, now);
                }
            }
            Timer::SendHold(id) => {
                let tcp_up = self.conn_mut(id).map(|c| {
                    c.send_blocked_since = None;
                    c.state != ConnState::Connecting
                });
                self.conn_failed(
                    id,
                    now,
                    DownReason::SendHoldTimerExpired,
                    tcp_up
                        .unwrap_or(false)
                        .then(Notification::send_hold_timer_expired),
                    None,
                    Next::Idle { count: true },
                );
            }
        }
    }

    fn on_connect_retry(&mut self, now: Instant) {
        if !self.admin_up || self.idle || self.config.passive {
            return;
        }
        if self.conns.iter().any(|c| c.state != ConnState::Connecting) {
            return;
        }
        // Abandon the pending attempt and try again.
        let pending: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for p in pending {
            self.conns.retain(|c| c.id != p);
            self.push(Action::Close { conn: p });
        }
        self.connect(now);
    }
}

/// RFC 4724 / RFC 8538: does graceful restart apply to this teardown?
fn gr_eligible(c: &Conn, sent: Option<&Notification>, received: Option<&Notification>) -> bool {
    let Some(neg) = &c.negotiated else {
        return false;
    };
    if !neg.graceful_restart() {
        return false;
    }
    match sent.or(received) {
        None => true,
        Some(n) => neg.gr_notification() && !is_hard_reset(n),
    }
}
