//! The peer model the RIB needs, and the local speaker configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::policy::Policy;
use crate::wire::{Family, GracefulRestartCap, Open, SessionContext};

/// A small copyable handle for a peer, allocated by [`crate::rib::Rib::add_peer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// Where a path in the Loc-RIB came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Originated by this speaker ([`crate::rib::Rib::originate`]).
    Local,
    /// Learned from a peer.
    Peer(PeerId),
}

/// How the NEXT_HOP is set on routes exported to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NextHopMode {
    /// RFC 4271 default: eBGP peers get our address; iBGP peers get the next hop unchanged.
    #[default]
    Auto,
    /// Always our address (`next-hop-self`), except for reflected routes: route reflection
    /// never changes the next hop (RFC 4456).
    SelfAddr,
    /// Never change the next hop, even towards eBGP peers (`keep-next-hop`, as route servers
    /// and Calico's `keepOriginalNextHop` do). Routes without a next hop get ours.
    Keep,
}

/// Everything the RIB needs to know about one peer. Static fields come from configuration;
/// `router_id`, `families`, `send_ctx`, `graceful_restart` and `enhanced_route_refresh` are the
/// negotiated session values that the driver passes to [`crate::rib::Rib::peer_up`].
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The peer's transport address (decision step: lowest peer address).
    pub address: IpAddr,
    pub remote_as: u32,
    /// Our AS on this session (usually [`RibConfig::local_as`]).
    pub local_as: u32,
    /// The peer's BGP identifier from its OPEN.
    pub router_id: Ipv4Addr,
    /// The peer is a route reflector client (meaningful only when we are a reflector, i.e.
    /// [`RibConfig::cluster_id`] is set, and the peer is iBGP).
    pub rr_client: bool,
    pub next_hop: NextHopMode,
    /// Our IPv4 address on this session: the next hop we advertise for IPv4 routes when we
    /// set next hop self.
    pub local_v4: Option<Ipv4Addr>,
    /// Our IPv6 (global) address for this session, the next hop for IPv6 routes.
    pub local_v6: Option<Ipv6Addr>,
    /// Negotiated AFI/SAFIs (multiprotocol capability intersection).
    pub families: Vec<Family>,
    /// The sending-direction session context: the driver encodes this peer's UPDATEs with
    /// it (4-octet AS, extended message, add-path send families). Peers with different
    /// contexts are in different update groups.
    pub send_ctx: SessionContext,
    /// The graceful restart capability the peer sent, when GR was negotiated (we advertised
    /// it too). `None`: no GR, routes are flushed when the session goes down.
    pub graceful_restart: Option<GracefulRestartCap>,
    /// Enhanced route refresh (RFC 7313) was negotiated.
    pub enhanced_route_refresh: bool,
    /// Helper mode: how long this peer's stale routes survive after it re-established
    /// without sending End-of-RIB. `None`: [`RibConfig::stale_time`].
    pub stale_time: Option<Duration>,
    /// Import policy; `None` accepts everything (except eBGP under RFC 8212 default deny).
    pub import_policy: Option<Arc<Policy>>,
    /// Export policy. Peers sharing one `Arc<Policy>` (pointer identity) can share an update
    /// group; equal policies in different `Arc`s cannot.
    pub export_policy: Option<Arc<Policy>>,
}

impl PeerInfo {
    /// A peer with defaults: IPv4 or IPv6 unicast by transport family, a modern 4-octet AS
    /// session context, no GR, no policies, router id unset (0.0.0.0 until `peer_up`).
    pub fn new(address: IpAddr, remote_as: u32, local_as: u32) -> Self {
        let family = match address {
            IpAddr::V4(_) => Family::IPV4_UNICAST,
            IpAddr::V6(_) => Family::IPV6_UNICAST,
        };
        PeerInfo {
            address,
            remote_as,
            local_as,
            router_id: Ipv4Addr::UNSPECIFIED,
            rr_client: false,
            next_hop: NextHopMode::Auto,
            local_v4: None,
            local_v6: None,
            families: vec![family],
            send_ctx: SessionContext {
                four_octet_as: true,
                extended_message: false,
                add_path: Vec::new(),
            },
            graceful_restart: None,
            enhanced_route_refresh: false,
            stale_time: None,
            import_policy: None,
            export_policy: None,
        }
    }

    /// This configuration with the values negotiated by the OPEN exchange (`local`: the OPEN
    /// we sent, `remote`: the peer's): router id, families (the intersection of the
    /// multiprotocol capabilities; a side without any means IPv4 unicast, RFC 4760), the
    /// sending context, the peer's GR capability when both sides advertised GR, enhanced
    /// route refresh when both advertised it. Pass the result to
    /// [`crate::rib::Rib::peer_up`].
    pub fn negotiated(&self, local: &Open, remote: &Open) -> PeerInfo {
        let fams = |o: &Open| {
            let f = o.families();
            if f.is_empty() {
                vec![Family::IPV4_UNICAST]
            } else {
                f
            }
        };
        let theirs = fams(remote);
        let families = fams(local)
            .into_iter()
            .filter(|f| theirs.contains(f))
            .collect();
        let (_, send_ctx) = SessionContext::negotiate(local, remote);
        PeerInfo {
            router_id: remote.bgp_id,
            families,
            send_ctx,
            graceful_restart: local
                .graceful_restart()
                .and(remote.graceful_restart())
                .cloned(),
            enhanced_route_refresh: local.enhanced_route_refresh()
                && remote.enhanced_route_refresh(),
            ..self.clone()
        }
    }

    /// Internal BGP (same AS on both ends).
    pub fn is_ibgp(&self) -> bool {
        self.remote_as == self.local_as
    }

    /// The restart time the peer advertised, when GR was negotiated and it is non-zero.
    pub fn restart_time(&self) -> Option<Duration> {
        self.graceful_restart
            .as_ref()
            .map(|gr| Duration::from_secs(u64::from(gr.restart_time)))
            .filter(|d| !d.is_zero())
    }
}

/// The local speaker's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibConfig {
    pub local_as: u32,
    /// Our BGP identifier (loop detection against ORIGINATOR_ID, local routes' tie breaker).
    pub router_id: Ipv4Addr,
    /// `Some`: we are a route reflector with this CLUSTER_ID (RFC 4456). Reflector configs
    /// usually set it to the router id.
    pub cluster_id: Option<Ipv4Addr>,
    /// RFC 8212: reject all routes from and to an eBGP peer that has no import
    /// (respectively export) policy configured.
    pub rfc8212_default_deny: bool,
    /// Most paths exposed for ECMP (1: no multipath). See [`crate::rib::decision`].
    pub max_paths: usize,
    /// Compare MED between routes from different neighbouring ASes too.
    pub always_compare_med: bool,
    /// Pass a MED received from another AS on to eBGP peers (RFC 4271 5.1.4 says MUST NOT;
    /// off by default).
    pub propagate_med: bool,
    /// `Some(bound)`: we are a restarting speaker (RFC 4724 4.1): defer best-path selection
    /// and all exports until End-of-RIB from every configured peer or `bound` (the
    /// Selection_Deferral_Timer) after [`crate::rib::Rib::new`].
    pub selection_deferral: Option<Duration>,
    /// Helper mode: how long stale routes survive after the restarting peer re-established
    /// before they are swept without an End-of-RIB (RFC 4724 stale timer). The default for
    /// peers whose [`PeerInfo::stale_time`] is `None`.
    pub stale_time: Duration,
    /// Enhanced route refresh: how long routes marked at BoRR wait for EoRR (RFC 7313 4).
    pub refresh_stale_time: Duration,
}

impl RibConfig {
    /// Defaults: not a reflector, no RFC 8212, no multipath, no deferral, stale time 360 s,
    /// refresh stale time 360 s.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        RibConfig {
            local_as,
            router_id,
            cluster_id: None,
            rfc8212_default_deny: false,
            max_paths: 1,
            always_compare_med: false,
            propagate_med: false,
            selection_deferral: None,
            stale_time: Duration::from_secs(360),
            refresh_stale_time: Duration::from_secs(360),
        }
    }
}
