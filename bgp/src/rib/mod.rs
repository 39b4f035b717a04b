//! The RIB: Adj-RIB-In per peer, Loc-RIB with the decision process, Adj-RIB-Out per update
//! group, graceful restart and route refresh. Sans-IO: no tokio, no clock reads; time is an
//! argument and timers are deadlines ([`Rib::next_deadline`], [`Rib::handle_timeout`]).
//!
//! # Use
//!
//! The driver registers peers ([`Rib::add_peer`]), reports sessions going up and down
//! ([`Rib::peer_up`], [`Rib::peer_down`]), feeds decoded UPDATEs and ROUTE-REFRESH messages
//! ([`Rib::handle_update`], [`Rib::handle_route_refresh`]) and drains two queues:
//!
//! * [`Rib::poll_output`]: [`OutBatch`]es, each a list of messages and the peers to send all
//!   of them to. The driver encodes every message once with the batch's `ctx` and writes the
//!   same bytes to every listed peer (update groups: fan-out to N peers encodes once).
//!   Batches must be sent in queue order (a peer's End-of-RIB comes in a batch after its
//!   table).
//! * [`Rib::poll_event`]: [`RibEvent::BestChanged`] for the kernel programmer (agent).
//!
//! Both polls first run the pending work ([`Rib::process`]): best-path selection for the
//! prefixes touched since the last call, then export to every update group.
//!
//! # Tables
//!
//! * Adj-RIB-In per peer holds the routes **after** import policy. Routes a policy rejects
//!   are not kept (no soft-reconfiguration inbound): after an import policy change the
//!   driver sends the peer a ROUTE-REFRESH when it negotiated route refresh (with enhanced
//!   route refresh, routes not re-sent are swept at EoRR), and resets the session otherwise.
//!
//! # Next hops
//!
//! Next hop self needs our address per family: [`PeerInfo::local_v4`] and
//! [`PeerInfo::local_v6`] (for IPv6 routes over an IPv4 session, the node's IPv6 address;
//! the speaker fills them by the rule documented at [`crate::config::PeerOptions::next_hop_v6`]).
//! A route that needs next hop self for a family without one is not advertised to that
//! peer.
//! * Loc-RIB: per prefix, every accepted path (peers' and local) and the selection.
//! * Adj-RIB-Out per update group: peers with equal export parameters (iBGP/eBGP, RR client,
//!   local AS, next-hop mode and our addresses, families, send session context, and the same
//!   export policy `Arc`) share one export computation and one list of UPDATEs. Split
//!   horizon stays exact: a prefix whose best path came from a member is sent to the other
//!   members in separate UPDATEs that exclude that member.

pub mod decision;
mod export;
pub mod intern;
pub mod pack;
mod peer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

pub use decision::{Candidate, DecisionOptions, Selection, DEFAULT_LOCAL_PREF};
pub use export::RejectReason;
pub use intern::Interner;
pub use peer::{NextHopMode, PeerId, PeerInfo, RibConfig, Source};

use crate::policy::{route_next_hop, PolicyResult};
use crate::wire::{
    AsPath, Family, Message, Origin, PathAttributes, RouteRefresh, RouteRefreshSubtype,
    SessionContext, Update,
};
use export::{GroupKey, GroupParams, SourceMeta};

type Key = (Family, IpNet);

/// Identifies an update group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

/// A route as seen by consumers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    pub prefix: IpNet,
    pub source: Source,
    /// The advertising peer's address (`None` for local routes).
    pub peer_address: Option<IpAddr>,
    /// Received add-path identifier, 0 without add-path.
    pub path_id: u32,
    /// NEXT_HOP or the MP_REACH next hop (global address for IPv6).
    pub next_hop: Option<IpAddr>,
    pub attrs: Arc<PathAttributes>,
    /// Kept from a peer that is restarting (graceful restart) or being refreshed.
    pub stale: bool,
}

/// What the consumer (the agent's kernel programmer) sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RibEvent {
    /// The best path (or the multipath set) of a prefix changed. `best: None`: the prefix is
    /// gone. `multipath` lists the distinct next hops of the equal-cost paths, best first
    /// (just the best's next hop without multipath; empty when `best` is `None` or has no
    /// next hop). Local routes are reported too (`source: Source::Local`); the agent does not
    /// program those.
    BestChanged {
        family: Family,
        prefix: IpNet,
        best: Option<Route>,
        multipath: Vec<IpAddr>,
    },
    /// Restarting-speaker mode: best-path selection deferral ended (End-of-RIB from every
    /// peer, or the bound); the following `BestChanged` events are the full table, and any
    /// forwarding state kept over the restart and not re-announced can be removed after them.
    SelectionDeferralDone,
}

/// Messages to send, all of them, in order, to every peer in `peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutBatch {
    pub group: GroupId,
    pub peers: Vec<PeerId>,
    /// The sending context shared by the group: encode each message once with it.
    pub ctx: SessionContext,
    /// UPDATEs (announcements, withdrawals, End-of-RIB) and, around an enhanced route
    /// refresh, ROUTE-REFRESH BoRR / EoRR.
    pub messages: Vec<Message>,
}

/// What one received UPDATE did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// The UPDATE was an End-of-RIB marker for this family.
    pub end_of_rib: Option<Family>,
    /// Prefixes accepted into the Adj-RIB-In.
    pub accepted: usize,
    /// Prefixes withdrawn (explicitly).
    pub withdrawn: usize,
    /// Announced prefixes not accepted (treated as withdrawn), with the first reason.
    pub rejected: usize,
    pub reject_reason: Option<RejectReason>,
}

/// RIB API misuse by the driver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RibError {
    #[error("{0} is not known to the RIB, call add_peer first")]
    UnknownPeer(PeerId),
    #[error("{0} is not established, call peer_up before feeding it messages")]
    PeerNotUp(PeerId),
}

/// Counters for tests and status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RibStats {
    /// Export computations (one per update group and prefix).
    pub export_computations: u64,
    /// Best-path selections run (one per prefix and `process` call).
    pub decisions: u64,
    /// Distinct interned attribute sets.
    pub interned: usize,
    pub groups: usize,
    pub prefixes: usize,
}

/// Per-peer status numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    pub up: bool,
    /// Routes in the Adj-RIB-In (accepted, including stale).
    pub accepted: usize,
    pub stale: usize,
    /// Prefixes currently advertised to the peer.
    pub advertised: usize,
    pub group: Option<GroupId>,
}

/// Next-hop resolvability hook (RFC 4271 9.1.2.1).
pub type NextHopResolver = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

#[derive(Clone, Debug)]
struct PathEntry {
    source: Source,
    path_id: u32,
    attrs: Arc<PathAttributes>,
}

impl PathEntry {
    fn same(&self, o: &PathEntry) -> bool {
        self.source == o.source && self.path_id == o.path_id && Arc::ptr_eq(&self.attrs, &o.attrs)
    }
}

#[derive(Debug, Default)]
struct Dest {
    paths: Vec<PathEntry>,
    best: Option<PathEntry>,
    multipath: Vec<IpAddr>,
}

#[derive(Debug)]
struct AdjIn {
    attrs: Arc<PathAttributes>,
    stale: bool,
    refresh_stale: bool,
}

#[derive(Debug)]
struct PeerState {
    info: PeerInfo,
    up: bool,
    adj_in: HashMap<(Family, IpNet, u32), AdjIn>,
    group: Option<GroupId>,
    /// GR helper: the peer is down and its routes are stale until this deadline.
    restart_deadline: Option<Instant>,
    /// GR helper: the peer is back; stale routes not refreshed by End-of-RIB go then.
    stale_deadline: Option<Instant>,
    /// Enhanced route refresh: BoRR seen, EoRR expected before the deadline.
    refresh_deadlines: BTreeMap<Family, Instant>,
    eor_received: BTreeSet<Family>,
}

#[derive(Debug)]
struct OutEntry {
    attrs: Arc<PathAttributes>,
    /// Split horizon: the peer the route came from gets no copy.
    except: Option<PeerId>,
}

#[derive(Debug)]
struct Group {
    params: GroupParams,
    key: GroupKey,
    members: BTreeSet<PeerId>,
    out: HashMap<Key, OutEntry>,
    /// Created since the last `process`: its Adj-RIB-Out must be computed in full.
    fresh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    AllExcept(Option<PeerId>),
    Only(PeerId),
}

impl Target {
    fn includes(self, p: PeerId) -> bool {
        match self {
            Target::AllExcept(e) => e != Some(p),
            Target::Only(o) => o == p,
        }
    }
}

type AnnounceBucket = (Arc<PathAttributes>, Vec<IpNet>);

/// UPDATE contents being collected for one group, by target.
#[derive(Default)]
struct Buckets {
    withdraw: BTreeMap<(Target, Family), Vec<IpNet>>,
    announce: BTreeMap<(Target, Family, usize), AnnounceBucket>,
}

impl Buckets {
    fn add_withdraw(&mut self, t: Target, key: Key) {
        self.withdraw.entry((t, key.0)).or_default().push(key.1);
    }

    fn add_announce(&mut self, t: Target, key: Key, attrs: &Arc<PathAttributes>) {
        self.announce
            .entry((t, key.0, Arc::as_ptr(attrs) as usize))
            .or_insert_with(|| (Arc::clone(attrs), Vec::new()))
            .1
            .push(key.1);
    }

    /// Pack into messages per target.
    fn into_messages(self, ctx: &SessionContext) -> BTreeMap<Target, Vec<Message>> {
        let mut out: BTreeMap<Target, Vec<Message>> = BTreeMap::new();
        for ((t, fam), mut prefixes) in self.withdraw {
            prefixes.sort();
            out.entry(t).or_default().extend(
                pack::withdraw(fam, &prefixes, ctx)
                    .into_iter()
                    .map(Message::Update),
            );
        }
        for ((t, fam, _), (attrs, mut prefixes)) in self.announce {
            prefixes.sort();
            out.entry(t).or_default().extend(
                pack::announce(fam, &attrs, &prefixes, ctx)
                    .into_iter()
                    .map(Message::Update),
            );
        }
        out
    }
}

/// The RIB.
pub struct Rib {
    config: RibConfig,
    interner: Interner,
    peers: BTreeMap<PeerId, PeerState>,
    next_peer: u32,
    loc: HashMap<Key, Dest>,
    local: BTreeMap<Key, Arc<PathAttributes>>,
    /// Prefixes whose paths changed since the last decision run.
    dirty: BTreeSet<Key>,
    /// Prefixes to re-export even if their best path did not change.
    reexport: BTreeSet<Key>,
    groups: BTreeMap<GroupId, Group>,
    group_index: HashMap<GroupKey, GroupId>,
    next_group: u32,
    /// Peers that came up and wait for their initial advertisement and End-of-RIB.
    joins: BTreeSet<PeerId>,
    /// Peers that moved to another update group: what they had been sent.
    resync: BTreeMap<PeerId, HashMap<Key, Arc<PathAttributes>>>,
    /// Route refresh requests to serve.
    refreshes: Vec<(PeerId, Family)>,
    /// Restarting speaker: selection is deferred until then (or all End-of-RIBs).
    deferral_deadline: Option<Instant>,
    events: VecDeque<RibEvent>,
    outputs: VecDeque<OutBatch>,
    resolver: Option<NextHopResolver>,
    stats: RibStats,
}

impl std::fmt::Debug for Rib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rib")
            .field("config", &self.config)
            .field("peers", &self.peers.len())
            .field("prefixes", &self.loc.len())
            .field("groups", &self.groups.len())
            .field("deferring", &self.deferral_deadline.is_some())
            .finish_non_exhaustive()
    }
}

fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}

impl Rib {
    /// A RIB. With `config.selection_deferral = Some(bound)` it starts in restarting-speaker
    /// mode: nothing is selected or exported until End-of-RIB from all peers or `now + bound`.
    pub fn new(config: RibConfig, now: Instant) -> Self {
        let deferral_deadline = config.selection_deferral.map(|d| now + d);
        Rib {
            config,
            interner: Interner::new(),
            peers: BTreeMap::new(),
            next_peer: 1,
            loc: HashMap::new(),
            local: BTreeMap::new(),
            dirty: BTreeSet::new(),
            reexport: BTreeSet::new(),
            groups: BTreeMap::new(),
            group_index: HashMap::new(),
            next_group: 1,
            joins: BTreeSet::new(),
            resync: BTreeMap::new(),
            refreshes: Vec::new(),
            deferral_deadline,
            events: VecDeque::new(),
            outputs: VecDeque::new(),
            resolver: None,
            stats: RibStats::default(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.config
    }

    /// Whether best-path selection is deferred (restarting speaker).
    pub fn is_deferring(&self) -> bool {
        self.deferral_deadline.is_some()
    }

    // ------------------------------------------------------------------------------------
    // Peers.

    /// Register a peer (session not established). `info` carries the configuration; the
    /// negotiated fields are replaced at [`Rib::peer_up`].
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        let id = PeerId(self.next_peer);
        self.next_peer = self.next_peer.wrapping_add(1);
        self.peers.insert(
            id,
            PeerState {
                info,
                up: false,
                adj_in: HashMap::new(),
                group: None,
                restart_deadline: None,
                stale_deadline: None,
                refresh_deadlines: BTreeMap::new(),
                eor_received: BTreeSet::new(),
            },
        );
        id
    }

    /// Deregister a peer: its routes are withdrawn at once (no graceful restart).
    pub fn remove_peer(&mut self, id: PeerId, now: Instant) -> Result<(), RibError> {
        self.peer_down(id, now, false)?;
        self.remove_paths(id, |_, _| true);
        self.peers.remove(&id);
        Ok(())
    }

    pub fn peer_info(&self, id: PeerId) -> Option<&PeerInfo> {
        self.peers.get(&id).map(|p| &p.info)
    }

    pub fn peer_ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Change a peer's configuration (policies, RR client, next-hop mode...). An established
    /// peer whose export parameters changed moves to its new update group and receives the
    /// difference. Routes learned from it are re-exported to everybody. A changed import
    /// policy applies to routes received from now on: send the peer a ROUTE-REFRESH.
    pub fn update_peer(&mut self, id: PeerId, info: PeerInfo) -> Result<(), RibError> {
        let st = self.peers.get_mut(&id).ok_or(RibError::UnknownPeer(id))?;
        st.info = info;
        let up = st.up;
        let keys: Vec<Key> = st.adj_in.keys().map(|(f, p, _)| (*f, *p)).collect();
        self.reexport.extend(keys);
        if up {
            let new_key =
                GroupParams::of(&self.peers.get(&id).ok_or(RibError::UnknownPeer(id))?.info).key();
            let old = self.peers.get(&id).and_then(|p| p.group);
            let same = old
                .and_then(|g| self.groups.get(&g))
                .is_some_and(|g| g.key == new_key);
            if !same {
                let joining = self.joins.contains(&id);
                let view = if joining {
                    HashMap::new()
                } else {
                    self.advertised_view(id)
                };
                self.leave_group(id);
                self.assign_group(id);
                if !joining {
                    self.joins.remove(&id);
                    self.resync.insert(id, view);
                }
            }
        }
        Ok(())
    }

    /// The session with `id` is established with the negotiated `info` (router id,
    /// families, send context, GR capability, enhanced route refresh). The peer joins its
    /// update group and gets the group's table and End-of-RIB at the next `process`.
    /// For a GR helper whose peer comes back, stale routes of families the peer did not
    /// keep forwarding state for (F bit) are removed now; the others wait for End-of-RIB
    /// or the stale time ([`PeerInfo::stale_time`], else [`RibConfig::stale_time`]).
    pub fn peer_up(&mut self, id: PeerId, info: PeerInfo, now: Instant) -> Result<(), RibError> {
        let stale_time = info.stale_time.unwrap_or(self.config.stale_time);
        let st = self.peers.get_mut(&id).ok_or(RibError::UnknownPeer(id))?;
        if st.up {
            self.peer_down(id, now, false)?;
        }
        let st = self.peers.get_mut(&id).ok_or(RibError::UnknownPeer(id))?;
        if (st.info.router_id, st.info.address) != (info.router_id, info.address) {
            // Kept (stale) routes compete with the new identity.
            self.dirty
                .extend(st.adj_in.keys().map(|(f, p, _)| (*f, *p)));
        }
        st.info = info;
        st.up = true;
        st.eor_received.clear();
        st.refresh_deadlines.clear();
        st.restart_deadline = None;
        let kept: Vec<Family> = st
            .info
            .graceful_restart
            .as_ref()
            .map(|gr| {
                gr.families
                    .iter()
                    .filter(|(_, f)| *f)
                    .map(|(fam, _)| *fam)
                    .collect()
            })
            .unwrap_or_default();
        let has_stale = st.adj_in.values().any(|a| a.stale);
        if has_stale {
            tracing::debug!(peer = %id, ?kept, "graceful restart: peer is back, keeping stale routes of these families until End-of-RIB");
            self.remove_paths(id, |k, a| a.stale && !kept.contains(&k.0));
            if let Some(st) = self.peers.get_mut(&id) {
                if st.adj_in.values().any(|a| a.stale) {
                    st.stale_deadline = Some(now + stale_time);
                }
            }
        }
        self.assign_group(id);
        Ok(())
    }

    /// The session with `id` went down. `graceful`: the driver decided the RFC 4724 /
    /// RFC 8538 conditions hold (TCP failure, hold timer, or a NOTIFICATION other than Hard
    /// Reset with the N bit negotiated). Then, if the peer negotiated GR with a non-zero
    /// restart time, its routes of the GR families stay in the Loc-RIB marked stale until it
    /// comes back and sends End-of-RIB, or the restart time passes. Otherwise they are
    /// withdrawn.
    pub fn peer_down(&mut self, id: PeerId, now: Instant, graceful: bool) -> Result<(), RibError> {
        let st = self.peers.get_mut(&id).ok_or(RibError::UnknownPeer(id))?;
        let was_up = st.up;
        st.up = false;
        st.refresh_deadlines.clear();
        st.stale_deadline = None;
        let gr_families: Option<(Vec<Family>, std::time::Duration)> =
            match (graceful, st.info.restart_time()) {
                (true, Some(t)) => st
                    .info
                    .graceful_restart
                    .as_ref()
                    .map(|gr| (gr.families.iter().map(|(f, _)| *f).collect(), t)),
                _ => None,
            };
        self.leave_group(id);
        self.joins.remove(&id);
        self.resync.remove(&id);
        self.refreshes.retain(|(p, _)| *p != id);
        match gr_families {
            Some((fams, restart)) if was_up || st_has_stale(self.peers.get(&id)) => {
                self.remove_paths(id, |k, _| !fams.contains(&k.0));
                if let Some(st) = self.peers.get_mut(&id) {
                    for a in st.adj_in.values_mut() {
                        a.stale = true;
                        a.refresh_stale = false;
                    }
                    st.restart_deadline = if st.adj_in.is_empty() {
                        None
                    } else {
                        Some(now + restart)
                    };
                    tracing::debug!(peer = %id, stale = st.adj_in.len(), ?restart, "graceful restart: peer down, routes kept as stale");
                }
            }
            _ => {
                tracing::debug!(peer = %id, "peer down: withdrawing its routes");
                self.remove_paths(id, |_, _| true);
                if let Some(st) = self.peers.get_mut(&id) {
                    st.restart_deadline = None;
                }
            }
        }
        Ok(())
    }

    fn assign_group(&mut self, id: PeerId) {
        let Some(st) = self.peers.get_mut(&id) else {
            return;
        };
        let params = GroupParams::of(&st.info);
        let key = params.key();
        let gid = match self.group_index.get(&key) {
            Some(g) => *g,
            None => {
                let g = GroupId(self.next_group);
                self.next_group = self.next_group.wrapping_add(1);
                self.group_index.insert(key.clone(), g);
                self.groups.insert(
                    g,
                    Group {
                        params,
                        key,
                        members: BTreeSet::new(),
                        out: HashMap::new(),
                        fresh: true,
                    },
                );
                g
            }
        };
        st.group = Some(gid);
        self.joins.insert(id);
    }

    fn leave_group(&mut self, id: PeerId) {
        let Some(gid) = self.peers.get_mut(&id).and_then(|p| p.group.take()) else {
            return;
        };
        let still_assigned = self.peers.values().any(|p| p.group == Some(gid));
        if let Some(g) = self.groups.get_mut(&gid) {
            g.members.remove(&id);
            if g.members.is_empty() && !still_assigned {
                self.group_index.remove(&g.key);
                self.groups.remove(&gid);
            }
        }
    }

    /// What `id` has been sent: its group's Adj-RIB-Out minus its split-horizon exceptions.
    fn advertised_view(&self, id: PeerId) -> HashMap<Key, Arc<PathAttributes>> {
        let Some(g) = self
            .peers
            .get(&id)
            .and_then(|p| p.group)
            .and_then(|g| self.groups.get(&g))
        else {
            return HashMap::new();
        };
        g.out
            .iter()
            .filter(|(_, e)| e.except != Some(id))
            .map(|(k, e)| (*k, Arc::clone(&e.attrs)))
            .collect()
    }

    // ------------------------------------------------------------------------------------
    // Input.

    /// Import one decoded UPDATE from an established peer: End-of-RIB, withdrawals,
    /// RFC 7606 treat-as-withdraw, loop checks, LOCAL_PREF handling, import policy.
    pub fn handle_update(
        &mut self,
        id: PeerId,
        update: &Update,
        now: Instant,
    ) -> Result<ImportSummary, RibError> {
        let st = self.peers.get(&id).ok_or(RibError::UnknownPeer(id))?;
        if !st.up {
            return Err(RibError::PeerNotUp(id));
        }
        let mut summary = ImportSummary::default();
        if let Some(fam) = pack::is_end_of_rib(update) {
            summary.end_of_rib = Some(fam);
            self.end_of_rib(id, fam, now);
            return Ok(summary);
        }
        let info = st.info.clone();
        let ebgp = !info.is_ibgp();
        // Withdrawals.
        let mut withdrawals: Vec<(Family, &crate::wire::Nlri)> = update
            .withdrawn
            .iter()
            .map(|n| (Family::IPV4_UNICAST, n))
            .collect();
        if let Some(mu) = &update.attributes.mp_unreach {
            withdrawals.extend(mu.withdrawn.iter().map(|n| (mu.family, n)));
        }
        for (fam, n) in withdrawals {
            summary.withdrawn += 1;
            self.withdraw_path(id, (fam, n.prefix.trunc()), n.path_id.unwrap_or(0));
        }
        // Announcements, per family.
        let mut announced: Vec<(Family, &[crate::wire::Nlri])> = Vec::new();
        if !update.nlri.is_empty() {
            announced.push((Family::IPV4_UNICAST, &update.nlri));
        }
        if let Some(mr) = &update.attributes.mp_reach {
            if !mr.nlri.is_empty() {
                announced.push((mr.family, &mr.nlri));
            }
        }
        for (fam, nlri) in announced {
            // RFC 7606 7.5: a LOCAL_PREF from an eBGP peer is ignored, malformed or not.
            let withdraw = update.issues.iter().any(|i| {
                i.action == crate::wire::Rfc7606Action::TreatAsWithdraw
                    && !(ebgp && i.type_code == crate::wire::attr::type_code::LOCAL_PREF)
            });
            let verdict = if withdraw {
                Err(RejectReason::TreatAsWithdraw)
            } else {
                match export::family_attrs(fam, &update.attributes, ebgp) {
                    None => Err(RejectReason::NoNextHop),
                    Some(base) => export::check_loops(&self.config, &info, &base).and_then(|()| {
                        if ebgp && self.config.rfc8212_default_deny && info.import_policy.is_none()
                        {
                            Err(RejectReason::Rfc8212)
                        } else {
                            Ok(base)
                        }
                    }),
                }
            };
            match verdict {
                Err(reason) => {
                    summary.rejected += nlri.len();
                    summary.reject_reason.get_or_insert(reason);
                    for n in nlri {
                        self.withdraw_path(id, (fam, n.prefix.trunc()), n.path_id.unwrap_or(0));
                    }
                }
                Ok(base) => {
                    let shared = self.interner.intern(base);
                    for n in nlri {
                        let key = (fam, n.prefix.trunc());
                        let path_id = n.path_id.unwrap_or(0);
                        let attrs = match &info.import_policy {
                            None => Some(Arc::clone(&shared)),
                            Some(p) => match p.evaluate(fam, &key.1, &shared) {
                                PolicyResult::Reject => None,
                                PolicyResult::Accept(None) => Some(Arc::clone(&shared)),
                                PolicyResult::Accept(Some(m)) => Some(self.interner.intern(*m)),
                            },
                        };
                        match attrs {
                            Some(a) => {
                                summary.accepted += 1;
                                self.insert_path(id, key, path_id, a);
                            }
                            None => {
                                summary.rejected += 1;
                                summary.reject_reason.get_or_insert(RejectReason::Policy);
                                self.withdraw_path(id, key, path_id);
                            }
                        }
                    }
                }
            }
        }
        Ok(summary)
    }

    /// A ROUTE-REFRESH from the peer: a request (re-send our routes of that family; with
    /// enhanced route refresh, between BoRR and EoRR), or the peer's own BoRR / EoRR around
    /// its re-advertisement (routes not re-sent by EoRR are swept).
    pub fn handle_route_refresh(
        &mut self,
        id: PeerId,
        rr: &RouteRefresh,
        now: Instant,
    ) -> Result<(), RibError> {
        let refresh_stale_time = self.config.refresh_stale_time;
        let st = self.peers.get_mut(&id).ok_or(RibError::UnknownPeer(id))?;
        if !st.up {
            return Err(RibError::PeerNotUp(id));
        }
        let fam = Family::new(rr.afi, rr.safi);
        match rr.subtype {
            RouteRefreshSubtype::Request => {
                if !self.refreshes.contains(&(id, fam)) {
                    self.refreshes.push((id, fam));
                }
            }
            RouteRefreshSubtype::BoRR => {
                for ((f, _, _), a) in st.adj_in.iter_mut() {
                    if *f == fam {
                        a.refresh_stale = true;
                    }
                }
                st.refresh_deadlines.insert(fam, now + refresh_stale_time);
            }
            RouteRefreshSubtype::EoRR => {
                st.refresh_deadlines.remove(&fam);
                self.remove_paths(id, |k, a| k.0 == fam && a.refresh_stale);
            }
            RouteRefreshSubtype::Other(_) => {}
        }
        Ok(())
    }

    fn end_of_rib(&mut self, id: PeerId, fam: Family, _now: Instant) {
        if let Some(st) = self.peers.get_mut(&id) {
            st.eor_received.insert(fam);
        }
        self.remove_paths(id, |k, a| k.0 == fam && a.stale);
        if let Some(st) = self.peers.get_mut(&id) {
            if !st.adj_in.values().any(|a| a.stale) {
                st.stale_deadline = None;
            }
        }
    }

    /// Originate `prefix` locally (IPv4 or IPv6 unicast by the prefix). Missing ORIGIN
    /// becomes IGP and a missing AS_PATH empty; without a next hop, exports use ours.
    pub fn originate(&mut self, prefix: IpNet, mut attrs: PathAttributes) {
        let key = (family_of(&prefix), prefix.trunc());
        attrs.origin.get_or_insert(Origin::Igp);
        attrs.as_path.get_or_insert_with(AsPath::default);
        attrs.mp_unreach = None;
        if let Some(m) = &mut attrs.mp_reach {
            m.nlri.clear();
            m.family = key.0;
        }
        let attrs = self.interner.intern(attrs);
        self.local.insert(key, Arc::clone(&attrs));
        self.insert_entry(
            key,
            PathEntry {
                source: Source::Local,
                path_id: 0,
                attrs,
            },
        );
    }

    /// Withdraw a locally originated prefix.
    pub fn withdraw_local(&mut self, prefix: IpNet) {
        let key = (family_of(&prefix), prefix.trunc());
        if self.local.remove(&key).is_some() {
            self.remove_entry(key, Source::Local, 0);
        }
    }

    /// Locally originated prefixes.
    pub fn local_routes(&self) -> impl Iterator<Item = (IpNet, &Arc<PathAttributes>)> {
        self.local.iter().map(|(k, a)| (k.1, a))
    }

    /// Install the next-hop resolvability hook (RFC 4271 9.1.2.1): routes whose next hop it
    /// rejects do not take part in the decision. Default: every next hop is reachable.
    /// Call [`Rib::next_hops_changed`] when its answers change.
    pub fn set_next_hop_resolver(&mut self, resolver: Option<NextHopResolver>) {
        self.resolver = resolver;
        self.next_hops_changed();
    }

    /// Re-run the decision for every prefix (the resolver's answers changed).
    pub fn next_hops_changed(&mut self) {
        self.dirty.extend(self.loc.keys().copied());
    }

    // ------------------------------------------------------------------------------------
    // Timers.

    /// The earliest deadline at which [`Rib::handle_timeout`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let peers = self.peers.values().flat_map(|p| {
            p.restart_deadline
                .into_iter()
                .chain(p.stale_deadline)
                .chain(p.refresh_deadlines.values().copied())
        });
        peers.chain(self.deferral_deadline).min()
    }

    /// Run the timers due at `now`: GR restart time (peer did not come back: its stale
    /// routes go), GR stale time (no End-of-RIB: remaining stale routes go), enhanced route
    /// refresh (no EoRR), selection deferral bound.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(st) = self.peers.get_mut(&id) else {
                continue;
            };
            let restart = st.restart_deadline.is_some_and(|d| d <= now) && !st.up;
            let stale = st.stale_deadline.is_some_and(|d| d <= now);
            let expired: Vec<Family> = st
                .refresh_deadlines
                .iter()
                .filter(|(_, d)| **d <= now)
                .map(|(f, _)| *f)
                .collect();
            if restart {
                st.restart_deadline = None;
            }
            if stale {
                st.stale_deadline = None;
            }
            for f in &expired {
                st.refresh_deadlines.remove(f);
            }
            if restart || stale {
                self.remove_paths(id, |_, a| a.stale);
            }
            for f in expired {
                self.remove_paths(id, |k, a| k.0 == f && a.refresh_stale);
            }
        }
        if self.deferral_deadline.is_some_and(|d| d <= now) {
            self.end_deferral();
        }
    }

    fn deferral_complete(&self) -> bool {
        self.peers.values().all(|p| {
            if !p.up {
                return false;
            }
            match &p.info.graceful_restart {
                Some(gr) if !gr.restart_state => {
                    p.info.families.iter().all(|f| p.eor_received.contains(f))
                }
                _ => true,
            }
        })
    }

    fn end_deferral(&mut self) {
        if self.deferral_deadline.take().is_some() {
            tracing::info!("graceful restart: best-path selection deferral is over");
            self.events.push_back(RibEvent::SelectionDeferralDone);
        }
    }

    // ------------------------------------------------------------------------------------
    // Table edits.

    fn insert_path(&mut self, id: PeerId, key: Key, path_id: u32, attrs: Arc<PathAttributes>) {
        if let Some(st) = self.peers.get_mut(&id) {
            st.adj_in.insert(
                (key.0, key.1, path_id),
                AdjIn {
                    attrs: Arc::clone(&attrs),
                    stale: false,
                    refresh_stale: false,
                },
            );
        }
        self.insert_entry(
            key,
            PathEntry {
                source: Source::Peer(id),
                path_id,
                attrs,
            },
        );
    }

    fn insert_entry(&mut self, key: Key, entry: PathEntry) {
        let dest = self.loc.entry(key).or_default();
        match dest
            .paths
            .iter_mut()
            .find(|p| p.source == entry.source && p.path_id == entry.path_id)
        {
            Some(p) => {
                if Arc::ptr_eq(&p.attrs, &entry.attrs) {
                    return;
                }
                *p = entry;
            }
            None => dest.paths.push(entry),
        }
        self.dirty.insert(key);
    }

    fn withdraw_path(&mut self, id: PeerId, key: Key, path_id: u32) {
        let removed = self
            .peers
            .get_mut(&id)
            .and_then(|st| st.adj_in.remove(&(key.0, key.1, path_id)));
        if removed.is_some() {
            self.remove_entry(key, Source::Peer(id), path_id);
        }
    }

    fn remove_entry(&mut self, key: Key, source: Source, path_id: u32) {
        if let Some(dest) = self.loc.get_mut(&key) {
            let before = dest.paths.len();
            dest.paths
                .retain(|p| !(p.source == source && p.path_id == path_id));
            if dest.paths.len() != before {
                self.dirty.insert(key);
            }
        }
    }

    /// Remove the peer's Adj-RIB-In entries selected by `pred` (and their Loc-RIB paths).
    fn remove_paths(&mut self, id: PeerId, pred: impl Fn(&Key, &AdjIn) -> bool) {
        let Some(st) = self.peers.get_mut(&id) else {
            return;
        };
        let mut gone = Vec::new();
        st.adj_in.retain(|(f, p, pid), a| {
            if pred(&(*f, *p), a) {
                gone.push(((*f, *p), *pid));
                false
            } else {
                true
            }
        });
        for (key, pid) in gone {
            self.remove_entry(key, Source::Peer(id), pid);
        }
    }

    // ------------------------------------------------------------------------------------
    // Decision and export.

    /// Run pending work: selection for changed prefixes, export to update groups, initial
    /// advertisements for new members, route refresh answers. The polls call it; calling it
    /// directly is only needed to batch work at a chosen moment.
    pub fn process(&mut self) {
        if self.deferral_deadline.is_some() {
            if self.deferral_complete() {
                self.end_deferral();
            } else {
                return;
            }
        }
        // 1. Decision.
        let dirty = std::mem::take(&mut self.dirty);
        let mut changed: BTreeSet<Key> = std::mem::take(&mut self.reexport);
        for key in dirty {
            if self.decide(key) {
                changed.insert(key);
            }
        }
        // 2. Export: full computation for new groups, diffs for the others.
        let gids: Vec<GroupId> = self.groups.keys().copied().collect();
        for gid in gids {
            self.export_group(gid, &changed);
        }
        // 3. Peers that moved groups: the difference between what they had and the new view.
        let moved = std::mem::take(&mut self.resync);
        for (id, old) in moved {
            self.send_resync(id, old);
        }
        // 4. New members: the group's table and End-of-RIB.
        let joins = std::mem::take(&mut self.joins);
        let mut by_group: BTreeMap<GroupId, Vec<PeerId>> = BTreeMap::new();
        for id in joins {
            if let Some((Some(gid), true)) = self.peers.get(&id).map(|p| (p.group, p.up)) {
                by_group.entry(gid).or_default().push(id);
            }
        }
        for (gid, joiners) in by_group {
            self.send_initial(gid, joiners);
        }
        // 5. Route refresh requests.
        let refreshes = std::mem::take(&mut self.refreshes);
        for (id, fam) in refreshes {
            self.send_refresh(id, fam);
        }
        self.interner.maybe_gc();
    }

    fn meta(&self, source: Source) -> Option<SourceMeta> {
        match source {
            Source::Local => Some(SourceMeta {
                local: true,
                ibgp: false,
                rr_client: false,
                router_id: self.config.router_id,
            }),
            Source::Peer(p) => self.peers.get(&p).map(|st| SourceMeta {
                local: false,
                ibgp: st.info.is_ibgp(),
                rr_client: st.info.rr_client,
                router_id: st.info.router_id,
            }),
        }
    }

    fn route_of(&self, key: Key, e: &PathEntry) -> Route {
        let (peer_address, stale) = match e.source {
            Source::Local => (None, false),
            Source::Peer(p) => {
                let st = self.peers.get(&p);
                (
                    st.map(|s| s.info.address),
                    st.and_then(|s| s.adj_in.get(&(key.0, key.1, e.path_id)))
                        .is_some_and(|a| a.stale || a.refresh_stale),
                )
            }
        };
        Route {
            family: key.0,
            prefix: key.1,
            source: e.source,
            peer_address,
            path_id: e.path_id,
            next_hop: route_next_hop(&e.attrs),
            attrs: Arc::clone(&e.attrs),
            stale,
        }
    }

    /// Select the best path of `key`; returns whether it changed (for export).
    fn decide(&mut self, key: Key) -> bool {
        self.stats.decisions += 1;
        let Some(dest) = self.loc.get(&key) else {
            return false;
        };
        let opts = DecisionOptions {
            always_compare_med: self.config.always_compare_med,
            max_paths: self.config.max_paths,
        };
        let mut cands = Vec::with_capacity(dest.paths.len());
        let mut index = Vec::with_capacity(dest.paths.len());
        for (i, p) in dest.paths.iter().enumerate() {
            let c = match p.source {
                Source::Local => Candidate {
                    attrs: &p.attrs,
                    local: true,
                    ebgp: false,
                    router_id: self.config.router_id,
                    peer_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    path_id: 0,
                },
                Source::Peer(id) => {
                    let Some(st) = self.peers.get(&id) else {
                        continue;
                    };
                    let reachable = match route_next_hop(&p.attrs) {
                        Some(nh) => self.resolver.as_ref().is_none_or(|r| r(nh)),
                        None => false,
                    };
                    if !reachable {
                        continue;
                    }
                    Candidate {
                        attrs: &p.attrs,
                        local: false,
                        ebgp: !st.info.is_ibgp(),
                        router_id: st.info.router_id,
                        peer_address: st.info.address,
                        path_id: p.path_id,
                    }
                }
            };
            cands.push(c);
            index.push(i);
        }
        let sel = decision::select(&cands, &opts);
        let (best, multipath) = match sel {
            None => (None, Vec::new()),
            Some(s) => {
                let best = index.get(s.best).and_then(|i| dest.paths.get(*i)).cloned();
                let mut nhs: Vec<IpAddr> = Vec::new();
                for m in &s.multipath {
                    if let Some(nh) = index
                        .get(*m)
                        .and_then(|i| dest.paths.get(*i))
                        .and_then(|p| route_next_hop(&p.attrs))
                    {
                        if !nhs.contains(&nh) {
                            nhs.push(nh);
                        }
                    }
                }
                (best, nhs)
            }
        };
        let best_changed = match (&dest.best, &best) {
            (None, None) => false,
            (Some(a), Some(b)) => !a.same(b),
            _ => true,
        };
        let mp_changed = dest.multipath != multipath;
        if best_changed || mp_changed {
            let route = best.as_ref().map(|b| self.route_of(key, b));
            self.events.push_back(RibEvent::BestChanged {
                family: key.0,
                prefix: key.1,
                best: route,
                multipath: multipath.clone(),
            });
        }
        if let Some(dest) = self.loc.get_mut(&key) {
            dest.best = best;
            dest.multipath = multipath;
            if dest.paths.is_empty() {
                self.loc.remove(&key);
            }
        }
        best_changed
    }

    /// The group's Adj-RIB-Out entry for `key` given the current best path.
    fn compute_out(&mut self, gid: GroupId, key: Key) -> Option<OutEntry> {
        let best = self.loc.get(&key)?.best.clone()?;
        let meta = self.meta(best.source)?;
        let g = self.groups.get(&gid)?;
        self.stats.export_computations += 1;
        let attrs =
            export::export_route(&self.config, &g.params, key.0, &key.1, &best.attrs, &meta)?;
        let except = match best.source {
            Source::Peer(p) => Some(p),
            Source::Local => None,
        };
        Some(OutEntry {
            attrs: self.interner.intern(attrs),
            except,
        })
    }

    fn export_group(&mut self, gid: GroupId, changed: &BTreeSet<Key>) {
        let fresh = self.groups.get(&gid).is_some_and(|g| g.fresh);
        if fresh {
            let keys: Vec<Key> = self
                .loc
                .iter()
                .filter(|(_, d)| d.best.is_some())
                .map(|(k, _)| *k)
                .collect();
            let mut out = HashMap::with_capacity(keys.len());
            for key in keys {
                if let Some(e) = self.compute_out(gid, key) {
                    out.insert(key, e);
                }
            }
            if let Some(g) = self.groups.get_mut(&gid) {
                g.out = out;
                g.fresh = false;
            }
            return;
        }
        let mut buckets = Buckets::default();
        for key in changed {
            let new = self.compute_out(gid, *key);
            let Some(g) = self.groups.get_mut(&gid) else {
                return;
            };
            let old = g.out.get(key);
            match (old, new) {
                (None, None) => {}
                (Some(o), None) => {
                    buckets.add_withdraw(Target::AllExcept(o.except), *key);
                    g.out.remove(key);
                }
                (old, Some(n)) => {
                    let unchanged = old
                        .is_some_and(|o| Arc::ptr_eq(&o.attrs, &n.attrs) && o.except == n.except);
                    if unchanged {
                        continue;
                    }
                    if let (Some(q), Some(o)) = (n.except, old) {
                        if o.except != Some(q) {
                            buckets.add_withdraw(Target::Only(q), *key);
                        }
                    }
                    buckets.add_announce(Target::AllExcept(n.except), *key, &n.attrs);
                    g.out.insert(*key, n);
                }
            }
        }
        self.emit(gid, buckets, None);
    }

    /// Turn buckets into batches for the group's members (plus `extra` for a joining peer).
    fn emit(&mut self, gid: GroupId, buckets: Buckets, extra: Option<PeerId>) {
        let Some(g) = self.groups.get(&gid) else {
            return;
        };
        let ctx = g.params.send_ctx.clone();
        for (target, messages) in buckets.into_messages(&ctx) {
            let peers: Vec<PeerId> = g
                .members
                .iter()
                .copied()
                .chain(extra)
                .filter(|p| target.includes(*p))
                .collect();
            if peers.is_empty() || messages.is_empty() {
                continue;
            }
            self.outputs.push_back(OutBatch {
                group: gid,
                peers,
                ctx: ctx.clone(),
                messages,
            });
        }
    }

    /// The group's table for one peer, optionally one family, as packed UPDATEs.
    fn dump(&self, gid: GroupId, id: PeerId, fam: Option<Family>) -> Vec<Message> {
        let Some(g) = self.groups.get(&gid) else {
            return Vec::new();
        };
        let mut buckets = Buckets::default();
        for (key, e) in &g.out {
            if e.except != Some(id) && fam.is_none_or(|f| f == key.0) {
                buckets.add_announce(Target::Only(id), *key, &e.attrs);
            }
        }
        buckets
            .into_messages(&g.params.send_ctx)
            .into_values()
            .flatten()
            .collect()
    }

    /// The initial advertisement for peers joining group `gid` together: the table is
    /// packed once and shared (split horizon as for updates), then one End-of-RIB batch.
    fn send_initial(&mut self, gid: GroupId, joiners: Vec<PeerId>) {
        let Some(g) = self.groups.get(&gid) else {
            return;
        };
        let mut buckets = Buckets::default();
        for (key, e) in &g.out {
            buckets.add_announce(Target::AllExcept(e.except), *key, &e.attrs);
        }
        let ctx = g.params.send_ctx.clone();
        let eor: Vec<Message> = g
            .params
            .families
            .iter()
            .map(|f| Message::Update(pack::end_of_rib(*f)))
            .collect();
        for (target, messages) in buckets.into_messages(&ctx) {
            let peers: Vec<PeerId> = joiners
                .iter()
                .copied()
                .filter(|p| target.includes(*p))
                .collect();
            if !peers.is_empty() && !messages.is_empty() {
                self.outputs.push_back(OutBatch {
                    group: gid,
                    peers,
                    ctx: ctx.clone(),
                    messages,
                });
            }
        }
        if !eor.is_empty() {
            self.outputs.push_back(OutBatch {
                group: gid,
                peers: joiners.clone(),
                ctx,
                messages: eor,
            });
        }
        if let Some(g) = self.groups.get_mut(&gid) {
            g.members.extend(joiners);
        }
    }

    fn send_resync(&mut self, id: PeerId, old: HashMap<Key, Arc<PathAttributes>>) {
        let Some(gid) = self.peers.get(&id).filter(|p| p.up).and_then(|p| p.group) else {
            return;
        };
        let new = self.advertised_view(id);
        let mut buckets = Buckets::default();
        for (k, a) in &new {
            if old.get(k).is_none_or(|o| !Arc::ptr_eq(o, a)) {
                buckets.add_announce(Target::Only(id), *k, a);
            }
        }
        for k in old.keys() {
            if !new.contains_key(k) {
                buckets.add_withdraw(Target::Only(id), *k);
            }
        }
        if let Some(g) = self.groups.get_mut(&gid) {
            g.members.insert(id);
        }
        self.emit(gid, buckets, None);
    }

    fn send_refresh(&mut self, id: PeerId, fam: Family) {
        let Some(st) = self.peers.get(&id).filter(|p| p.up) else {
            return;
        };
        let Some(gid) = st.group else {
            return;
        };
        let enhanced = st.info.enhanced_route_refresh;
        let rr = |subtype| {
            Message::RouteRefresh(RouteRefresh {
                afi: fam.afi,
                subtype,
                safi: fam.safi,
            })
        };
        let mut messages = Vec::new();
        if enhanced {
            messages.push(rr(RouteRefreshSubtype::BoRR));
        }
        messages.extend(self.dump(gid, id, Some(fam)));
        if enhanced {
            messages.push(rr(RouteRefreshSubtype::EoRR));
        }
        let ctx = self
            .groups
            .get(&gid)
            .map(|g| g.params.send_ctx.clone())
            .unwrap_or_default();
        if !messages.is_empty() {
            self.outputs.push_back(OutBatch {
                group: gid,
                peers: vec![id],
                ctx,
                messages,
            });
        }
    }

    // ------------------------------------------------------------------------------------
    // Output.

    /// The next batch of messages to send (runs [`Rib::process`] first).
    pub fn poll_output(&mut self) -> Option<OutBatch> {
        self.process();
        self.outputs.pop_front()
    }

    /// The next consumer event (runs [`Rib::process`] first).
    pub fn poll_event(&mut self) -> Option<RibEvent> {
        self.process();
        self.events.pop_front()
    }

    /// All pending batches.
    pub fn drain_output(&mut self) -> Vec<OutBatch> {
        self.process();
        self.outputs.drain(..).collect()
    }

    /// All pending events.
    pub fn drain_events(&mut self) -> Vec<RibEvent> {
        self.process();
        self.events.drain(..).collect()
    }

    // ------------------------------------------------------------------------------------
    // Status. Selection results (`best`, `paths` order, `loc_rib`, `adj_rib_out`) are as of
    // the last `process` (every poll runs it); `adj_rib_in` is always current.

    pub fn stats(&self) -> RibStats {
        RibStats {
            interned: self.interner.len(),
            groups: self.groups.len(),
            prefixes: self.loc.len(),
            ..self.stats
        }
    }

    /// Collect unreferenced interned attribute sets now; returns the live count.
    pub fn gc(&mut self) -> usize {
        self.interner.gc();
        self.interner.len()
    }

    /// The best route of a prefix.
    pub fn best(&self, prefix: &IpNet) -> Option<Route> {
        let key = (family_of(prefix), prefix.trunc());
        let d = self.loc.get(&key)?;
        d.best.as_ref().map(|b| self.route_of(key, b))
    }

    /// Every path of a prefix, best first (then in storage order).
    pub fn paths(&self, prefix: &IpNet) -> Vec<Route> {
        let key = (family_of(prefix), prefix.trunc());
        let Some(d) = self.loc.get(&key) else {
            return Vec::new();
        };
        let mut v: Vec<Route> = Vec::new();
        if let Some(b) = &d.best {
            v.push(self.route_of(key, b));
        }
        v.extend(
            d.paths
                .iter()
                .filter(|p| d.best.as_ref().is_none_or(|b| !b.same(p)))
                .map(|p| self.route_of(key, p)),
        );
        v
    }

    /// The Loc-RIB: best route of every prefix, sorted by family and prefix.
    pub fn loc_rib(&self) -> Vec<Route> {
        let mut v: Vec<Route> = self
            .loc
            .iter()
            .filter_map(|(k, d)| d.best.as_ref().map(|b| self.route_of(*k, b)))
            .collect();
        v.sort_by_key(|a| (a.family, a.prefix));
        v
    }

    /// A peer's Adj-RIB-In (post-policy), sorted.
    pub fn adj_rib_in(&self, id: PeerId) -> Vec<Route> {
        let Some(st) = self.peers.get(&id) else {
            return Vec::new();
        };
        let mut v: Vec<Route> = st
            .adj_in
            .iter()
            .map(|((f, p, pid), a)| Route {
                family: *f,
                prefix: *p,
                source: Source::Peer(id),
                peer_address: Some(st.info.address),
                path_id: *pid,
                next_hop: route_next_hop(&a.attrs),
                attrs: Arc::clone(&a.attrs),
                stale: a.stale || a.refresh_stale,
            })
            .collect();
        v.sort_by_key(|a| (a.family, a.prefix, a.path_id));
        v
    }

    /// What is advertised to a peer: (family, prefix, attributes as sent, minus NLRI).
    pub fn adj_rib_out(&self, id: PeerId) -> Vec<(Family, IpNet, Arc<PathAttributes>)> {
        if self.joins.contains(&id) {
            return Vec::new();
        }
        let mut v: Vec<_> = self
            .advertised_view(id)
            .into_iter()
            .map(|(k, a)| (k.0, k.1, a))
            .collect();
        v.sort_by_key(|a| (a.0, a.1));
        v
    }

    pub fn peer_counts(&self, id: PeerId) -> Option<PeerCounts> {
        let st = self.peers.get(&id)?;
        let advertised = if self.joins.contains(&id) {
            0
        } else {
            st.group.and_then(|g| self.groups.get(&g)).map_or(0, |g| {
                g.out.values().filter(|e| e.except != Some(id)).count()
            })
        };
        Some(PeerCounts {
            up: st.up,
            accepted: st.adj_in.len(),
            stale: st.adj_in.values().filter(|a| a.stale).count(),
            advertised,
            group: st.group,
        })
    }

    /// Members of an update group (peers that received its initial table).
    pub fn group_members(&self, gid: GroupId) -> Vec<PeerId> {
        self.groups
            .get(&gid)
            .map(|g| g.members.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn st_has_stale(st: Option<&PeerState>) -> bool {
    st.is_some_and(|s| s.adj_in.values().any(|a| a.stale))
}
