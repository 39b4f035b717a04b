//! [`SpeakerCore`]: the sans-IO speaker.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ipnet::IpNet;
use tokio_util::codec::Decoder;

use crate::config::{
    NeighborConfig, NextHopMode as CfgNextHop, OriginateConfig, PeerOptions, SpeakerConfig,
};
use crate::fsm::{
    self, Action, Backoff, ConnId, Direction, Event, PeerAs, PeerConfig, State, StopReason,
};
use crate::policy::Policy;
use crate::rib::{NextHopMode, PeerId, PeerInfo, Rib, RibConfig, RibEvent, Route};
use crate::speaker::policy::{compile_policies, peer_policy};
use crate::speaker::status::{
    ConnectionStatus, LastError, MessageCounters, NegotiatedStatus, NotificationStatus, PeerStatus,
    RibStatus, RouteStatus, SpeakerStatus,
};
use crate::transport::{ConnectOptions, InterfaceAddresses};
use crate::wire::{
    BgpCodec, CodecError, Family, GracefulRestartCap, Message, MpNextHop, MpReach, PathAttributes,
    RouteRefresh, SessionContext,
};

/// Identifies one TCP connection across the whole speaker (the driver's handle for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey(pub u64);

impl std::fmt::Display for ConnKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A best-path change, what the agent programs into the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestPathChange {
    pub family: Family,
    pub prefix: IpNet,
    /// `None`: the prefix is gone.
    pub best: Option<Route>,
    /// Distinct next hops of the equal-cost paths, best first (ECMP).
    pub multipath: Vec<IpAddr>,
}

/// What the core asks the driver to do.
#[derive(Clone, Debug)]
pub enum Output {
    /// Open a TCP connection with these options; report [`SpeakerCore::connected`] or
    /// [`SpeakerCore::connect_failed`].
    Connect {
        conn: ConnKey,
        peer: IpAddr,
        options: ConnectOptions,
    },
    /// Write these bytes (one or more whole messages) on `conn`, in order.
    Send { conn: ConnKey, data: Bytes },
    /// Flush what was queued on `conn`, then close it.
    Close { conn: ConnKey },
    /// A prefix's best path (or multipath set) changed.
    BestPath(BestPathChange),
    /// A peer's RFC 4271 state changed.
    PeerState {
        peer: IpAddr,
        from: State,
        to: State,
    },
    /// Restarting speaker: selection deferral ended; the best paths sent since start are the
    /// full table.
    SelectionDeferralDone,
}

/// Speaker errors (configuration and API misuse). Each names the thing and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("{message} (field {field})")]
    Policy { field: String, message: String },
    #[error("peer {peer}: {source}")]
    PeerConfig {
        peer: IpAddr,
        #[source]
        source: fsm::ConfigError,
    },
    #[error("peer {0} is already configured, use update_peer to change it")]
    PeerExists(IpAddr),
    #[error("peer {0} is not configured, add it first")]
    UnknownPeer(IpAddr),
    #[error("peer {0} is not established, wait for the session before a route refresh")]
    NotEstablished(IpAddr),
    #[error("peer {0} did not advertise route refresh (RFC 2918); change its import policy through update_peer instead, which resets the session")]
    NoRouteRefresh(IpAddr),
    #[error("prefix {prefix}: next hop {next_hop} is of the other address family, use one of the prefix's family")]
    NextHopFamily { prefix: IpNet, next_hop: IpAddr },
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    #[error("the speaker has stopped")]
    Stopped,
    #[error("Speaker::start must be called inside a tokio runtime")]
    NoRuntime,
}

/// Finds this node's addresses on the interface that holds a session's local address (the
/// next hop of the other address family). [`crate::speaker::Speaker::start`] uses
/// [`crate::transport::interface_addresses`] when none is given.
pub type InterfaceLookup = Arc<dyn Fn(IpAddr) -> InterfaceAddresses + Send + Sync>;

/// Core options that do not come from the configuration file.
#[derive(Clone)]
pub struct CoreOptions {
    /// We restarted with forwarding state preserved (`--graceful-restart`): advertise the
    /// R and F bits and defer best-path selection until End-of-RIB from every peer or
    /// the configured deferral bound.
    pub restarted: bool,
    /// Most equal-cost paths exposed in [`BestPathChange::multipath`].
    pub max_paths: usize,
    /// Seed for timer jitter.
    pub seed: u64,
    /// The last resort for our next hop of a family the session's local address is not of
    /// (see [`PeerOptions::next_hop_v6`]); `None`: no lookup.
    pub interface_lookup: Option<InterfaceLookup>,
}

impl std::fmt::Debug for CoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreOptions")
            .field("restarted", &self.restarted)
            .field("max_paths", &self.max_paths)
            .field("seed", &self.seed)
            .field("interface_lookup", &self.interface_lookup.is_some())
            .finish()
    }
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions {
            restarted: false,
            max_paths: 1,
            seed: 0x5eed,
            interface_lookup: None,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    msgs_in: MessageCounters,
    msgs_out: MessageCounters,
    prefixes_received: u64,
}

struct PeerSlot {
    neighbor: NeighborConfig,
    dynamic: bool,
    fsm: fsm::Peer,
    rib_id: PeerId,
    /// The RIB's view of the peer (static parts from config, negotiated parts when up).
    info: PeerInfo,
    conns: BTreeMap<ConnId, ConnKey>,
    state_since: Instant,
    counters: Counters,
    /// Our address on the established session, and the addresses of its interface when
    /// they were looked up (next hop of the other family).
    session_local: Option<IpAddr>,
    iface: InterfaceAddresses,
}

impl std::fmt::Debug for PeerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSlot")
            .field("address", &self.neighbor.address)
            .field("dynamic", &self.dynamic)
            .field("state", &self.fsm.state())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct ConnEntry {
    peer: IpAddr,
    id: ConnId,
    local: Option<SocketAddr>,
    buf: BytesMut,
    codec: BgpCodec,
    /// A decode error happened: ignore further input.
    dead: bool,
}

/// The sans-IO speaker. See the module documentation of [`crate::speaker`].
pub struct SpeakerCore {
    config: SpeakerConfig,
    options: CoreOptions,
    policies: BTreeMap<String, Arc<Policy>>,
    rib: Rib,
    peers: BTreeMap<IpAddr, PeerSlot>,
    by_rib: HashMap<PeerId, IpAddr>,
    conns: HashMap<ConnKey, ConnEntry>,
    next_conn: u64,
    out: VecDeque<Output>,
    /// The last multipath set reported per prefix (for new subscribers' snapshots).
    multipath: HashMap<IpNet, Vec<IpAddr>>,
    shutting_down: bool,
    started: bool,
    /// The latest `now` seen by any entry point: the time of UPDATEs sent from
    /// [`SpeakerCore::originate`] / [`SpeakerCore::withdraw`], which take no clock (an
    /// earlier time only makes the next KEEPALIVE come earlier).
    clock: Instant,
}

impl std::fmt::Debug for SpeakerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerCore")
            .field("asn", &self.config.asn)
            .field("router_id", &self.config.router_id)
            .field("peers", &self.peers.len())
            .field("conns", &self.conns.len())
            .finish_non_exhaustive()
    }
}

fn secs_u16(d: Duration) -> u16 {
    u16::try_from(d.as_secs()).unwrap_or(u16::MAX)
}

impl SpeakerCore {
    /// A core for `config`. Policies are compiled and every static neighbour is created
    /// (not started: call [`SpeakerCore::start`]).
    pub fn new(
        config: SpeakerConfig,
        options: CoreOptions,
        now: Instant,
    ) -> Result<SpeakerCore, SpeakerError> {
        crate::speaker::policy::validate(&config)?;
        let policies = compile_policies(&config)?;
        let mut rc = RibConfig::new(config.asn, config.router_id);
        rc.cluster_id = config.cluster_id;
        rc.rfc8212_default_deny = config.rfc8212_default_deny;
        rc.max_paths = options.max_paths.max(1);
        rc.stale_time = config.graceful_restart.stale_time;
        if options.restarted {
            rc.selection_deferral = Some(config.graceful_restart.deferral);
        }
        let rib = Rib::new(rc, now);
        let neighbors = config.neighbors.clone();
        let mut core = SpeakerCore {
            config,
            options,
            policies,
            rib,
            peers: BTreeMap::new(),
            by_rib: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            out: VecDeque::new(),
            multipath: HashMap::new(),
            shutting_down: false,
            started: false,
            clock: now,
        };
        for n in neighbors {
            core.insert_peer(n, false, now)?;
        }
        let originate = core.config.originate.clone();
        for o in &originate {
            let (prefix, attrs) = originate_attrs(o)?;
            core.rib.originate(prefix, attrs);
        }
        Ok(core)
    }

    /// The configuration the core was created with (peers added, removed or updated since
    /// are not reflected here; see [`SpeakerCore::status`]).
    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// Start every static peer (ManualStart).
    pub fn start(&mut self, now: Instant) {
        self.started = true;
        let addrs: Vec<IpAddr> = self.peers.keys().copied().collect();
        for a in addrs {
            self.peer_event(a, Event::ManualStart, now);
        }
        self.flush();
    }

    // ----- peers ----------------------------------------------------------------------

    fn fsm_config(&self, n: &NeighborConfig) -> PeerConfig {
        let o = &n.options;
        let mut c = PeerConfig::new(
            self.config.asn,
            self.config.router_id,
            PeerAs::Exact(o.remote_asn),
        );
        c.passive = o.passive;
        c.hold_time = secs_u16(o.hold_time);
        let ka = secs_u16(o.keepalive);
        c.keepalive = (ka != 0 && c.hold_time != 0).then_some(ka);
        let retry = o.connect_retry.max(Duration::from_secs(1));
        c.connect_retry = Backoff::new(retry, retry.max(Duration::from_secs(120)));
        c.delay_open = o.delay_open.filter(|d| !d.is_zero());
        c.max_prefix_restart = o.max_prefix.and_then(|m| m.restart_after);
        c.families = o.families.clone();
        if o.graceful_restart.enabled {
            // The R and F bits only while we are still a restarting speaker (peers added
            // after the selection deferral ended did not see us restart).
            let restarted = self.options.restarted && self.rib.is_deferring();
            c.graceful_restart = Some(GracefulRestartCap {
                restart_state: restarted,
                notification: true,
                restart_time: secs_u16(o.graceful_restart.restart_time).min(4095),
                families: o.families.iter().map(|f| (*f, restarted)).collect(),
            });
        }
        c
    }

    fn rib_static_info(&self, n: &NeighborConfig) -> Result<PeerInfo, SpeakerError> {
        let o = &n.options;
        let mut info = PeerInfo::new(n.address, o.remote_asn, self.config.asn);
        info.rr_client = o.route_reflector_client;
        info.next_hop = match o.next_hop {
            CfgNextHop::Default => NextHopMode::Auto,
            CfgNextHop::SelfAddress => NextHopMode::SelfAddr,
            CfgNextHop::Keep => NextHopMode::Keep,
        };
        (info.local_v4, info.local_v6) = self.next_hops(o, None, InterfaceAddresses::default());
        info.families = o.families.clone();
        info.stale_time = Some(o.graceful_restart.stale_time);
        let subject = format!("peer {}", n.address);
        info.import_policy = peer_policy(
            &self.policies,
            &o.import_policy,
            &format!("{subject} import_policy"),
        )?;
        info.export_policy = peer_policy(
            &self.policies,
            &o.export_policy,
            &format!("{subject} export_policy"),
        )?;
        Ok(info)
    }

    /// Our next hop per family for a peer (when we set it): the configured `next_hop_v4` /
    /// `next_hop_v6`, else the session's local address of that family, else
    /// `local_address`, else the only specific listen address of that family, else the
    /// address of that family on the session's interface (`iface`). IPv6 link-local
    /// addresses are never used as the (global) next hop.
    fn next_hops(
        &self,
        o: &PeerOptions,
        session_local: Option<IpAddr>,
        iface: InterfaceAddresses,
    ) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        let v4 = |a: IpAddr| match a.to_canonical() {
            IpAddr::V4(v) if !v.is_unspecified() => Some(v),
            _ => None,
        };
        let v6 = |a: IpAddr| match a.to_canonical() {
            IpAddr::V6(v) if !v.is_unspecified() && !v.is_unicast_link_local() => Some(v),
            _ => None,
        };
        let listen: &[IpAddr] = self
            .config
            .listen
            .as_ref()
            .map_or(&[], |l| l.addresses.as_slice());
        let only = |f: &dyn Fn(IpAddr) -> bool| -> Option<IpAddr> {
            let mut it = listen.iter().copied().filter(|a| f(*a) && !a.is_loopback());
            match (it.next(), it.next()) {
                (Some(a), None) => Some(a),
                _ => None,
            }
        };
        let listen_v4 = only(&|a| v4(a).is_some()).and_then(v4);
        let listen_v6 = only(&|a| v6(a).is_some()).and_then(v6);
        let nh4 = o
            .next_hop_v4
            .or_else(|| session_local.and_then(v4))
            .or_else(|| o.local_address.and_then(v4))
            .or(listen_v4)
            .or(iface.v4);
        let nh6 = o
            .next_hop_v6
            .or_else(|| session_local.and_then(v6))
            .or_else(|| o.local_address.and_then(v6))
            .or(listen_v6)
            .or(iface.v6);
        (nh4, nh6)
    }

    fn insert_peer(
        &mut self,
        n: NeighborConfig,
        dynamic: bool,
        now: Instant,
    ) -> Result<(), SpeakerError> {
        let addr = n.address;
        if self.peers.contains_key(&addr) {
            return Err(SpeakerError::PeerExists(addr));
        }
        let fc = self.fsm_config(&n);
        let seed = self.options.seed ^ addr_hash(addr);
        let peer = fsm::Peer::new(fc, seed)
            .map_err(|source| SpeakerError::PeerConfig { peer: addr, source })?;
        let info = self.rib_static_info(&n)?;
        let rib_id = self.rib.add_peer(info.clone());
        self.by_rib.insert(rib_id, addr);
        self.peers.insert(
            addr,
            PeerSlot {
                neighbor: n,
                dynamic,
                fsm: peer,
                rib_id,
                info,
                conns: BTreeMap::new(),
                state_since: now,
                counters: Counters::default(),
                session_local: None,
                iface: InterfaceAddresses::default(),
            },
        );
        Ok(())
    }

    /// Add a static neighbour while running; it starts at once.
    pub fn add_peer(&mut self, n: NeighborConfig, now: Instant) -> Result<(), SpeakerError> {
        if self.shutting_down {
            return Err(SpeakerError::Stopped);
        }
        let addr = n.address;
        self.insert_peer(n, false, now)?;
        if self.started {
            self.peer_event(addr, Event::ManualStart, now);
        }
        self.flush();
        Ok(())
    }

    /// Remove a neighbour: Cease / Peer De-configured, its routes are withdrawn.
    pub fn remove_peer(&mut self, addr: IpAddr, now: Instant) -> Result<(), SpeakerError> {
        if !self.peers.contains_key(&addr) {
            return Err(SpeakerError::UnknownPeer(addr));
        }
        self.peer_event(addr, Event::ManualStop(StopReason::Deconfigured), now);
        self.drop_peer(addr, now);
        self.flush();
        Ok(())
    }

    fn drop_peer(&mut self, addr: IpAddr, now: Instant) {
        let Some(slot) = self.peers.remove(&addr) else {
            return;
        };
        let _ = self.rib.remove_peer(slot.rib_id, now);
        self.by_rib.remove(&slot.rib_id);
        for key in slot.conns.values() {
            if self.conns.remove(key).is_some() {
                self.out.push_back(Output::Close { conn: *key });
            }
        }
    }

    /// Change a neighbour's options. Policy, route reflector client and next-hop changes
    /// apply at once (a changed import policy sends the peer a ROUTE-REFRESH, or resets the
    /// session with Cease / Other Configuration Change when it has no route refresh); session
    /// parameters (AS, timers, families, GR, passive) reset an established session with
    /// Cease / Other Configuration Change.
    pub fn update_peer(&mut self, n: NeighborConfig, now: Instant) -> Result<(), SpeakerError> {
        self.tick(now);
        let addr = n.address;
        let mut new_fc = self.fsm_config(&n);
        let new_static = self.rib_static_info(&n)?;
        let Some(slot) = self.peers.get_mut(&addr) else {
            return Err(SpeakerError::UnknownPeer(addr));
        };
        // The restart (R) and forwarding (F) bits are the FSM's business (it clears R once
        // the session is back): keep its current ones, they are no configuration change.
        if let (Some(new_gr), Some(cur_gr)) = (
            new_fc.graceful_restart.as_mut(),
            slot.fsm.config().graceful_restart.as_ref(),
        ) {
            new_gr.restart_state = cur_gr.restart_state;
            for (f, bit) in &mut new_gr.families {
                if let Some((_, cur)) = cur_gr.families.iter().find(|(cf, _)| cf == f) {
                    *bit = *cur;
                }
            }
        }
        let session_change = *slot.fsm.config() != new_fc;
        let import_changed = !same_policy(&slot.info.import_policy, &new_static.import_policy);
        slot.fsm
            .set_config(new_fc, now)
            .map_err(|source| SpeakerError::PeerConfig { peer: addr, source })?;
        let mut info = new_static;
        if slot.fsm.established_conn().is_some() {
            info.router_id = slot.info.router_id;
            info.families = slot.info.families.clone();
            info.send_ctx = slot.info.send_ctx.clone();
            info.graceful_restart = slot.info.graceful_restart.clone();
            info.enhanced_route_refresh = slot.info.enhanced_route_refresh;
        }
        let (session_local, iface) = (slot.session_local, slot.iface);
        if slot.fsm.established_conn().is_some() {
            (info.local_v4, info.local_v6) = self.next_hops(&n.options, session_local, iface);
        }
        let Some(slot) = self.peers.get_mut(&addr) else {
            return Err(SpeakerError::UnknownPeer(addr));
        };
        slot.info = info.clone();
        slot.neighbor = n;
        let rib_id = slot.rib_id;
        let established = slot.fsm.established_conn().is_some();
        let can_refresh = slot
            .fsm
            .negotiated()
            .is_some_and(|n| n.route_refresh || n.enhanced_route_refresh);
        let _ = self.rib.update_peer(rib_id, info);
        // The Adj-RIB-In holds routes after import policy: a new policy needs the peer's
        // routes again, by ROUTE-REFRESH or, without it, by a new session.
        let reset_for_import = import_changed && !can_refresh;
        if established && (session_change || reset_for_import) {
            if reset_for_import && !session_change {
                tracing::info!(peer = %addr, "import policy changed and the peer does not support route refresh: resetting the session to learn its routes again");
            }
            self.peer_event(addr, Event::ManualStop(StopReason::ConfigChange), now);
            self.peer_event(addr, Event::ManualStart, now);
        } else if import_changed && established {
            let _ = self.refresh(addr, now);
        }
        self.flush();
        Ok(())
    }

    /// Administratively stop a peer with an RFC 9003 shutdown communication (empty: the
    /// peer's configured `shutdown_message`); it stays down until
    /// [`SpeakerCore::start_peer`].
    pub fn stop_peer(
        &mut self,
        addr: IpAddr,
        message: &str,
        now: Instant,
    ) -> Result<(), SpeakerError> {
        if !self.peers.contains_key(&addr) {
            return Err(SpeakerError::UnknownPeer(addr));
        }
        let configured = self
            .peers
            .get(&addr)
            .and_then(|p| p.neighbor.options.shutdown_message.clone());
        let message = match configured {
            Some(m) if message.is_empty() => m,
            _ => message.to_owned(),
        };
        let reason = StopReason::AdminShutdown { message };
        self.peer_event(addr, Event::ManualStop(reason), now);
        self.flush();
        Ok(())
    }

    /// Start a stopped peer.
    pub fn start_peer(&mut self, addr: IpAddr, now: Instant) -> Result<(), SpeakerError> {
        if !self.peers.contains_key(&addr) {
            return Err(SpeakerError::UnknownPeer(addr));
        }
        self.peer_event(addr, Event::ManualStart, now);
        self.flush();
        Ok(())
    }

    /// Send ROUTE-REFRESH (RFC 2918) for every negotiated family to an established peer;
    /// an error when the peer did not advertise route refresh.
    pub fn refresh(&mut self, addr: IpAddr, _now: Instant) -> Result<(), SpeakerError> {
        let slot = self
            .peers
            .get_mut(&addr)
            .ok_or(SpeakerError::UnknownPeer(addr))?;
        let (Some(conn), Some(neg)) = (slot.fsm.established_conn(), slot.fsm.negotiated()) else {
            return Err(SpeakerError::NotEstablished(addr));
        };
        if !(neg.route_refresh || neg.enhanced_route_refresh) {
            return Err(SpeakerError::NoRouteRefresh(addr));
        }
        let families = neg.families.clone();
        let tx = neg.tx.clone();
        let Some(key) = slot.conns.get(&conn).copied() else {
            return Err(SpeakerError::NotEstablished(addr));
        };
        for f in families {
            let m = Message::RouteRefresh(RouteRefresh::request(f));
            if let Ok(data) = m.to_bytes(&tx) {
                slot.counters.msgs_out.count(&m);
                self.out.push_back(Output::Send { conn: key, data });
            }
        }
        Ok(())
    }

    /// Originate `prefix` with `attrs` (next hop: the session's address when unset).
    pub fn originate(&mut self, prefix: IpNet, attrs: PathAttributes) {
        self.rib.originate(prefix, attrs);
        self.flush();
    }

    /// Withdraw a prefix originated with [`SpeakerCore::originate`].
    pub fn withdraw(&mut self, prefix: IpNet) {
        self.rib.withdraw_local(prefix);
        self.flush();
    }

    /// Stop every peer with Cease / Administrative Shutdown and `message` (RFC 9003). New
    /// connections are refused from now on; [`SpeakerCore::is_stopped`] tells when every
    /// connection is closed.
    pub fn shutdown(&mut self, message: &str, now: Instant) {
        self.shutting_down = true;
        let addrs: Vec<IpAddr> = self.peers.keys().copied().collect();
        for a in addrs {
            let reason = StopReason::AdminShutdown {
                message: message.to_owned(),
            };
            self.peer_event(a, Event::ManualStop(reason), now);
        }
        let left: Vec<ConnKey> = self.conns.keys().copied().collect();
        for k in left {
            self.conns.remove(&k);
            self.out.push_back(Output::Close { conn: k });
        }
        self.flush();
    }

    /// Shutting down and no connection left.
    pub fn is_stopped(&self) -> bool {
        self.shutting_down && self.conns.is_empty()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    // ----- connections ----------------------------------------------------------------

    fn alloc_conn(&mut self, peer: IpAddr, id: ConnId, local: Option<SocketAddr>) -> ConnKey {
        let key = ConnKey(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        self.conns.insert(
            key,
            ConnEntry {
                peer,
                id,
                local,
                buf: BytesMut::new(),
                codec: BgpCodec::new(),
                dead: false,
            },
        );
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.conns.insert(id, key);
        }
        key
    }

    fn dynamic_count(&self) -> usize {
        self.peers.values().filter(|p| p.dynamic).count()
    }

    /// A connection was accepted from `remote` on our address `local`. Returns its key, or
    /// `None`: close the socket (unknown peer, peer refuses, dynamic limit, shutting down).
    pub fn accept(
        &mut self,
        remote: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Option<ConnKey> {
        if self.shutting_down {
            return None;
        }
        let addr = remote.ip().to_canonical();
        let mut created = false;
        if !self.peers.contains_key(&addr) {
            let (range, template) = self.config.listen_range_for(addr)?;
            let (range, template) = (range.clone(), template.clone());
            let max = usize::try_from(self.config.max_dynamic_peers).unwrap_or(usize::MAX);
            if self.dynamic_count() >= max {
                tracing::warn!(peer = %addr, max, "refusing dynamic neighbour: max_dynamic_peers reached");
                return None;
            }
            let mut options = template;
            options.passive = true;
            let n = NeighborConfig {
                address: addr,
                template: Some(range.template.clone()),
                options,
            };
            if let Err(e) = self.insert_peer(n, true, now) {
                tracing::warn!(peer = %addr, error = %e, "refusing dynamic neighbour");
                return None;
            }
            tracing::info!(peer = %addr, range = %range.prefix, "dynamic neighbour");
            // Not through peer_event: a dynamic peer without connections would be reaped.
            if let Some(slot) = self.peers.get_mut(&addr) {
                slot.fsm.handle(Event::ManualStart, now);
            }
            created = true;
        }
        let id = self.peers.get_mut(&addr)?.fsm.accept(now);
        let Some(id) = id else {
            if created {
                self.drop_peer(addr, now);
            }
            self.flush();
            return None;
        };
        let key = self.alloc_conn(addr, id, Some(local));
        self.drain_peer(addr, now);
        self.flush();
        Some(key)
    }

    /// Our outbound connection `conn` is up, from our address `local`.
    pub fn connected(&mut self, conn: ConnKey, local: SocketAddr, now: Instant) {
        let Some(e) = self.conns.get_mut(&conn) else {
            return;
        };
        e.local = Some(local);
        let (peer, id) = (e.peer, e.id);
        self.peer_event(peer, Event::TcpConnected { conn: id }, now);
        self.flush();
    }

    /// The connect attempt for `conn` failed.
    pub fn connect_failed(&mut self, conn: ConnKey, now: Instant) {
        self.closed(conn, now);
    }

    /// `conn` was closed by the peer or failed (EOF, reset, write error).
    pub fn closed(&mut self, conn: ConnKey, now: Instant) {
        let Some(e) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(slot) = self.peers.get_mut(&e.peer) {
            slot.conns.remove(&e.id);
        }
        self.peer_event(e.peer, Event::TcpConnectionFails { conn: e.id }, now);
        self.flush();
    }

    /// RFC 9687: the driver has had unsent data on `conn` since `since`.
    pub fn send_blocked(&mut self, conn: ConnKey, since: Instant, now: Instant) {
        if let Some(e) = self.conns.get(&conn) {
            let (peer, id) = (e.peer, e.id);
            self.peer_event(peer, Event::SendBlocked { conn: id, since }, now);
            self.flush();
        }
    }

    /// RFC 9687: data was written on `conn` after a [`SpeakerCore::send_blocked`].
    pub fn send_progress(&mut self, conn: ConnKey, now: Instant) {
        if let Some(e) = self.conns.get(&conn) {
            let (peer, id) = (e.peer, e.id);
            self.peer_event(peer, Event::SendProgress { conn: id }, now);
            self.flush();
        }
    }

    /// Bytes read from `conn`. Whole messages are decoded (with the negotiated receive
    /// context once established) and handled one by one.
    pub fn received(&mut self, conn: ConnKey, data: &[u8], now: Instant) {
        match self.conns.get_mut(&conn) {
            Some(e) if !e.dead => e.buf.extend_from_slice(data),
            _ => return,
        }
        while let Some(e) = self.conns.get_mut(&conn) {
            if e.dead {
                break;
            }
            let (peer, id) = (e.peer, e.id);
            match e.codec.decode(&mut e.buf) {
                Ok(Some(msg)) => {
                    if let Some(slot) = self.peers.get_mut(&peer) {
                        slot.counters.msgs_in.count(&msg);
                    }
                    self.peer_event(peer, Event::from_message(id, msg), now);
                }
                Ok(None) => break,
                Err(CodecError::Decode(err)) => {
                    e.dead = true;
                    e.buf.clear();
                    let span = tracing::info_span!("peer", peer = %peer);
                    span.in_scope(
                        || tracing::warn!(error = %err, "malformed message, sending NOTIFICATION"),
                    );
                    self.peer_event(peer, Event::from_decode_error(id, &err), now);
                    break;
                }
                Err(_) => {
                    e.dead = true;
                    break;
                }
            }
        }
        self.flush();
    }

    // ----- timers ---------------------------------------------------------------------

    /// The earliest deadline of any peer or the RIB.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.fsm.poll_timeout())
            .chain(self.rib.next_deadline())
            .min()
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let due: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.fsm.poll_timeout().is_some_and(|t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        for a in due {
            if let Some(slot) = self.peers.get_mut(&a) {
                slot.fsm.handle_timeout(now);
            }
            self.drain_peer(a, now);
        }
        if self.rib.next_deadline().is_some_and(|t| t <= now) {
            self.rib.handle_timeout(now);
            // Dynamic peers kept for their stale routes can go now.
            let dynamic: Vec<IpAddr> = self
                .peers
                .iter()
                .filter(|(_, p)| p.dynamic)
                .map(|(a, _)| *a)
                .collect();
            for a in dynamic {
                self.maybe_reap(a, now);
            }
        }
        self.flush();
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    // ----- internals ------------------------------------------------------------------

    fn peer_event(&mut self, addr: IpAddr, ev: Event, now: Instant) {
        self.tick(now);
        let Some(slot) = self.peers.get_mut(&addr) else {
            return;
        };
        slot.fsm.handle(ev, now);
        self.drain_peer(addr, now);
    }

    fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
    }

    fn drain_peer(&mut self, addr: IpAddr, now: Instant) {
        self.tick(now);
        let span = tracing::info_span!("peer", peer = %addr);
        let _enter = span.enter();
        while let Some(action) = self.peers.get_mut(&addr).and_then(|p| p.fsm.poll_action()) {
            self.on_action(addr, action, now);
        }
        self.maybe_reap(addr, now);
    }

    fn maybe_reap(&mut self, addr: IpAddr, now: Instant) {
        let Some(slot) = self.peers.get(&addr) else {
            return;
        };
        if !slot.dynamic || !slot.conns.is_empty() || slot.fsm.state() == State::Established {
            return;
        }
        let stale = self
            .rib
            .peer_counts(slot.rib_id)
            .is_some_and(|c| c.stale > 0);
        if !stale {
            tracing::info!("dynamic neighbour gone");
            self.drop_peer(addr, now);
        }
    }

    fn on_action(&mut self, addr: IpAddr, action: Action, now: Instant) {
        match action {
            Action::Connect { conn } => {
                let Some(slot) = self.peers.get(&addr) else {
                    return;
                };
                let options = slot.neighbor.connect_options();
                let key = self.alloc_conn(addr, conn, None);
                self.out.push_back(Output::Connect {
                    conn: key,
                    peer: addr,
                    options,
                });
            }
            Action::Send { conn, message } => {
                let Some(slot) = self.peers.get_mut(&addr) else {
                    return;
                };
                let Some(key) = slot.conns.get(&conn).copied() else {
                    return;
                };
                let ctx = slot
                    .fsm
                    .session_contexts(conn)
                    .map(|(_, tx)| tx.clone())
                    .unwrap_or_default();
                if let Message::Notification(n) = &message {
                    let ns = NotificationStatus::from_notification(n);
                    tracing::warn!(notification = %ns.text, message = ?ns.message, "sending NOTIFICATION");
                }
                match message.to_bytes(&ctx) {
                    Ok(data) => {
                        slot.counters.msgs_out.count(&message);
                        self.out.push_back(Output::Send { conn: key, data });
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot encode message"),
                }
            }
            Action::Close { conn } => {
                let key = self
                    .peers
                    .get_mut(&addr)
                    .and_then(|p| p.conns.remove(&conn));
                if let Some(key) = key {
                    if self.conns.remove(&key).is_some() {
                        self.out.push_back(Output::Close { conn: key });
                    }
                }
            }
            Action::StateChanged { from, to } => {
                if let Some(slot) = self.peers.get_mut(&addr) {
                    slot.state_since = now;
                }
                tracing::info!(%from, %to, "state changed");
                self.out.push_back(Output::PeerState {
                    peer: addr,
                    from,
                    to,
                });
            }
            Action::SessionEstablished { conn, negotiated } => {
                let Some(slot) = self.peers.get_mut(&addr) else {
                    return;
                };
                let key = slot.conns.get(&conn).copied();
                let mut local = None;
                if let Some(e) = key.and_then(|k| self.conns.get_mut(&k)) {
                    e.codec
                        .set_contexts(negotiated.rx.clone(), negotiated.tx.clone());
                    local = e.local;
                }
                let mut info = slot.info.clone();
                info.router_id = negotiated.remote_id;
                info.families = negotiated.families.clone();
                info.send_ctx = negotiated.tx.clone();
                info.graceful_restart = if negotiated.graceful_restart() {
                    negotiated.remote_gr.clone()
                } else {
                    None
                };
                info.enhanced_route_refresh = negotiated.enhanced_route_refresh;
                let session_local = local.map(|l| l.ip().to_canonical());
                let options = slot.neighbor.options.clone();
                let mut iface = InterfaceAddresses::default();
                let (mut nh4, mut nh6) = self.next_hops(&options, session_local, iface);
                let need = |afi: crate::wire::Afi| info.families.iter().any(|f| f.afi == afi);
                if (nh4.is_none() && need(crate::wire::Afi::IPV4))
                    || (nh6.is_none() && need(crate::wire::Afi::IPV6))
                {
                    if let (Some(l), Some(lookup)) = (session_local, &self.options.interface_lookup)
                    {
                        iface = lookup(l);
                        (nh4, nh6) = self.next_hops(&options, session_local, iface);
                    }
                }
                (info.local_v4, info.local_v6) = (nh4, nh6);
                for f in &info.families {
                    let (missing, field) = match f.afi {
                        crate::wire::Afi::IPV4 => (nh4.is_none(), "next_hop_v4"),
                        crate::wire::Afi::IPV6 => (nh6.is_none(), "next_hop_v6"),
                        _ => (false, ""),
                    };
                    if missing {
                        // Info, not warn: templates negotiate both families by default, and
                        // a single-stack node has no routes of the other family to send.
                        tracing::info!(
                            family = %f,
                            local = ?session_local,
                            "no next hop address of this family for the session: routes that need our next hop are not sent to this peer; set {field} for the neighbour (or globally)"
                        );
                    }
                }
                let Some(slot) = self.peers.get_mut(&addr) else {
                    return;
                };
                slot.session_local = session_local;
                slot.iface = iface;
                slot.info = info.clone();
                let rib_id = slot.rib_id;
                tracing::info!(
                    remote_id = %negotiated.remote_id,
                    remote_as = negotiated.remote_asn,
                    hold_time = negotiated.hold_time,
                    families = ?negotiated.families,
                    gr = negotiated.graceful_restart(),
                    "session established"
                );
                if let Err(e) = self.rib.peer_up(rib_id, info, now) {
                    tracing::warn!(error = %e, "RIB refused peer_up");
                }
            }
            Action::SessionDown(info) => {
                let Some(slot) = self.peers.get(&addr) else {
                    return;
                };
                let rib_id = slot.rib_id;
                let sent = info
                    .sent
                    .as_ref()
                    .map(NotificationStatus::from_notification);
                let received = info
                    .received
                    .as_ref()
                    .map(NotificationStatus::from_notification);
                tracing::warn!(
                    reason = %info.reason,
                    sent = ?sent.as_ref().map(|n| &n.text),
                    received = ?received.as_ref().map(|n| &n.text),
                    shutdown_message = ?received.as_ref().and_then(|n| n.message.as_ref()),
                    graceful_restart = info.gr_eligible,
                    "session down"
                );
                if let Err(e) = self.rib.peer_down(rib_id, now, info.gr_eligible) {
                    tracing::warn!(error = %e, "RIB refused peer_down");
                }
            }
            Action::DeliverUpdate {
                conn: _,
                mut update,
            } => {
                let Some(slot) = self.peers.get_mut(&addr) else {
                    return;
                };
                // RFC 4271 5: unknown optional transitive attributes are passed on with the
                // Partial bit set (the codec keeps the received flags).
                update.attributes.mark_unknown_partial();
                let announced_v4 = update.nlri.len();
                let mp = update
                    .attributes
                    .mp_reach
                    .as_ref()
                    .map(|m| (m.family, m.nlri.len()));
                let n = announced_v4.saturating_add(mp.map_or(0, |m| m.1));
                slot.counters.prefixes_received = slot
                    .counters
                    .prefixes_received
                    .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                if !update.issues.is_empty() {
                    tracing::warn!(issues = ?update.issues, "UPDATE with RFC 7606 errors");
                }
                let rib_id = slot.rib_id;
                let max_prefix = slot.neighbor.options.max_prefix;
                let family = match mp {
                    Some((f, c)) if c > 0 && announced_v4 == 0 => f,
                    _ => Family::IPV4_UNICAST,
                };
                match self.rib.handle_update(rib_id, &update, now) {
                    Ok(summary) => {
                        if let Some(f) = summary.end_of_rib {
                            tracing::info!(family = %f, "End-of-RIB received");
                        }
                        if let Some(r) = summary.reject_reason {
                            tracing::debug!(reason = ?r, rejected = summary.rejected, "routes rejected");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "RIB refused UPDATE"),
                }
                if let Some(mp) = max_prefix {
                    let accepted = self.rib.peer_counts(rib_id).map_or(0, |c| c.accepted);
                    if accepted > usize::try_from(mp.limit).unwrap_or(usize::MAX) {
                        tracing::warn!(
                            accepted,
                            limit = mp.limit,
                            "maximum number of prefixes exceeded"
                        );
                        if let Some(slot) = self.peers.get_mut(&addr) {
                            slot.fsm.handle(
                                Event::MaxPrefixExceeded {
                                    family,
                                    limit: mp.limit,
                                },
                                now,
                            );
                        }
                    }
                }
            }
            Action::DeliverRouteRefresh { conn: _, refresh } => {
                let Some(slot) = self.peers.get(&addr) else {
                    return;
                };
                tracing::info!(family = %refresh.family(), subtype = ?refresh.subtype, "ROUTE-REFRESH received");
                if let Err(e) = self.rib.handle_route_refresh(slot.rib_id, &refresh, now) {
                    tracing::warn!(error = %e, "RIB refused ROUTE-REFRESH");
                }
            }
        }
    }

    /// Move the RIB's outputs (encoded once per batch) and events to the output queue.
    /// Every UPDATE sent restarts the receiving peer's KeepaliveTimer (RFC 4271 8.2.2).
    fn flush(&mut self) {
        while let Some(batch) = self.rib.poll_output() {
            let targets: Vec<(IpAddr, ConnId, ConnKey)> = batch
                .peers
                .iter()
                .filter_map(|id| {
                    let addr = self.by_rib.get(id)?;
                    let slot = self.peers.get(addr)?;
                    let conn = slot.fsm.established_conn()?;
                    Some((*addr, conn, *slot.conns.get(&conn)?))
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            for m in &batch.messages {
                let data = match m.to_bytes(&batch.ctx) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, group = batch.group.0, "cannot encode UPDATE, skipped");
                        continue;
                    }
                };
                for (addr, _, key) in &targets {
                    if let Some(slot) = self.peers.get_mut(addr) {
                        slot.counters.msgs_out.count(m);
                    }
                    self.out.push_back(Output::Send {
                        conn: *key,
                        data: data.clone(),
                    });
                }
            }
            if batch
                .messages
                .iter()
                .any(|m| matches!(m, Message::Update(_)))
            {
                let now = self.clock;
                for (addr, conn, _) in &targets {
                    if let Some(slot) = self.peers.get_mut(addr) {
                        slot.fsm.handle(Event::UpdateSent { conn: *conn }, now);
                    }
                }
            }
        }
        while let Some(ev) = self.rib.poll_event() {
            match ev {
                RibEvent::BestChanged {
                    family,
                    prefix,
                    best,
                    multipath,
                } => {
                    if best.is_some() {
                        self.multipath.insert(prefix, multipath.clone());
                    } else {
                        self.multipath.remove(&prefix);
                    }
                    self.out.push_back(Output::BestPath(BestPathChange {
                        family,
                        prefix,
                        best,
                        multipath,
                    }));
                }
                RibEvent::SelectionDeferralDone => {
                    tracing::info!("selection deferral done");
                    self.out.push_back(Output::SelectionDeferralDone);
                }
            }
        }
    }

    // ----- status ---------------------------------------------------------------------

    /// The current best paths, as a list of changes from an empty table (for a new
    /// subscriber).
    pub fn best_paths(&self) -> Vec<BestPathChange> {
        let mut by_prefix: BTreeMap<IpNet, ()> = BTreeMap::new();
        for r in self.rib.loc_rib() {
            by_prefix.insert(r.prefix, ());
        }
        by_prefix
            .keys()
            .filter_map(|p| {
                let best = self.rib.best(p)?;
                let multipath = self.multipath_of(p, &best);
                Some(BestPathChange {
                    family: best.family,
                    prefix: *p,
                    best: Some(best),
                    multipath,
                })
            })
            .collect()
    }

    fn multipath_of(&self, prefix: &IpNet, best: &Route) -> Vec<IpAddr> {
        self.multipath
            .get(prefix)
            .cloned()
            .unwrap_or_else(|| best.next_hop.into_iter().collect())
    }

    /// A status snapshot at `now`.
    pub fn status(&self, now: Instant) -> SpeakerStatus {
        let stats = self.rib.stats();
        let mut routes = Vec::new();
        for r in self.rib.loc_rib() {
            let best = self.rib.best(&r.prefix).is_some_and(|b| {
                b.source == r.source && b.path_id == r.path_id && Arc::ptr_eq(&b.attrs, &r.attrs)
            });
            routes.push(RouteStatus::from_route(&r, best));
        }
        SpeakerStatus {
            asn: self.config.asn,
            router_id: self.config.router_id.to_string(),
            cluster_id: self.config.cluster_id.map(|c| c.to_string()),
            selection_deferred: self.rib.is_deferring(),
            shutting_down: self.shutting_down,
            unix_time: None,
            peers: self
                .peers
                .iter()
                .map(|(a, p)| self.peer_status(*a, p, now))
                .collect(),
            routes,
            rib: RibStatus {
                prefixes: stats.prefixes,
                interned_attribute_sets: stats.interned,
                update_groups: stats.groups,
                decisions: stats.decisions,
                export_computations: stats.export_computations,
            },
        }
    }

    fn peer_status(&self, addr: IpAddr, p: &PeerSlot, now: Instant) -> PeerStatus {
        let counts = self.rib.peer_counts(p.rib_id).unwrap_or_default();
        let last_error = p.fsm.last_down().map(|d| LastError {
            reason: d.reason.to_string(),
            secs_ago: now.saturating_duration_since(d.at).as_secs_f64(),
            detail: d.detail.clone(),
            sent: d.sent.as_ref().map(NotificationStatus::from_notification),
            received: d
                .received
                .as_ref()
                .map(NotificationStatus::from_notification),
        });
        let negotiated = p.fsm.negotiated().map(|n| NegotiatedStatus {
            remote_id: n.remote_id.to_string(),
            remote_asn: n.remote_asn,
            hold_time: n.hold_time,
            keepalive_time: n.keepalive_time,
            families: n.families.iter().map(ToString::to_string).collect(),
            four_octet_as: n.four_octet_as,
            extended_message: n.extended_message,
            route_refresh: n.route_refresh,
            enhanced_route_refresh: n.enhanced_route_refresh,
            graceful_restart: n.graceful_restart(),
            peer_restarted: n.remote_gr.as_ref().is_some_and(|g| g.restart_state),
            add_path_rx: n.add_path_rx.iter().map(ToString::to_string).collect(),
            add_path_tx: n.add_path_tx.iter().map(ToString::to_string).collect(),
        });
        PeerStatus {
            address: addr.to_string(),
            remote_asn: p.neighbor.options.remote_asn,
            description: p.neighbor.options.description.clone(),
            dynamic: p.dynamic,
            state: p.fsm.state().to_string(),
            state_secs: now.saturating_duration_since(p.state_since).as_secs_f64(),
            since_unix: None,
            admin_up: p.fsm.is_admin_up(),
            connections: p
                .fsm
                .connections()
                .iter()
                .map(|c| ConnectionStatus {
                    id: c.id.0,
                    direction: match c.direction {
                        Direction::Inbound => "inbound".to_owned(),
                        Direction::Outbound => "outbound".to_owned(),
                    },
                    state: c.state.to_string(),
                })
                .collect(),
            last_error,
            negotiated,
            prefixes_received: p.counters.prefixes_received,
            prefixes_accepted: counts.accepted,
            prefixes_stale: counts.stale,
            prefixes_advertised: counts.advertised,
            messages_in: p.counters.msgs_in,
            messages_out: p.counters.msgs_out,
        }
    }

    /// The RFC 4271 state of a peer.
    pub fn peer_state(&self, addr: IpAddr) -> Option<State> {
        self.peers.get(&addr).map(|p| p.fsm.state())
    }

    /// The RIB (read-only), for tests and status.
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// Addresses of the configured and dynamic peers.
    pub fn peer_addresses(&self) -> Vec<IpAddr> {
        self.peers.keys().copied().collect()
    }

    /// The send context of an established connection, for tests.
    pub fn send_context(&self, conn: ConnKey) -> Option<SessionContext> {
        let e = self.conns.get(&conn)?;
        Some(e.codec.tx().clone())
    }
}

fn same_policy(a: &Option<Arc<Policy>>, b: &Option<Arc<Policy>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

fn addr_hash(a: IpAddr) -> u64 {
    let bytes: Vec<u8> = match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    // FNV-1a.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The prefix and attributes of an `[[originate]]` entry.
pub fn originate_attrs(o: &OriginateConfig) -> Result<(IpNet, PathAttributes), SpeakerError> {
    let mut a = PathAttributes {
        communities: o.communities.clone(),
        large_communities: o.large_communities.clone(),
        med: o.med,
        local_pref: o.local_pref,
        ..PathAttributes::default()
    };
    match (o.prefix, o.next_hop) {
        (_, None) => {}
        (IpNet::V4(_), Some(IpAddr::V4(nh))) => a.next_hop = Some(nh),
        (IpNet::V6(_), Some(IpAddr::V6(nh))) => {
            a.mp_reach = Some(MpReach::new(
                Family::IPV6_UNICAST,
                MpNextHop::Ipv6 {
                    global: nh,
                    link_local: None,
                },
                Vec::new(),
            ));
        }
        (prefix, Some(next_hop)) => return Err(SpeakerError::NextHopFamily { prefix, next_hop }),
    }
    Ok((o.prefix, a))
}
