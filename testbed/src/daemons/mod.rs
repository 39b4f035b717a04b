//! Real BGP daemons from Debian as lab roles: config generators for the common cases and
//! typed query helpers over their CLIs.
//!
//! Every daemon runs in the foreground in its node's namespace with its config, control
//! socket, PID file and log under `<lab dir>/<node>/<daemon>/`, so many instances run side
//! by side. Starting returns once the control socket answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};

use crate::error::Result;
use crate::process::Process;

pub mod bird;
pub mod exabgp;
pub mod frr;
pub mod gobgp;

/// How long `start` waits for a daemon's control socket.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One BGP neighbor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    /// Name (BIRD protocol `peer_<name>`, see [`bird::protocol_name`]).
    pub name: String,
    /// Neighbor address. Its family is the session's transport and its only address family
    /// (IPv4 unicast over IPv4, IPv6 unicast over IPv6).
    pub address: IpAddr,
    /// Neighbor AS.
    pub asn: u32,
    /// This speaker reflects routes to this neighbor (route-reflector client).
    pub rr_client: bool,
    /// TCP MD5 password.
    pub password: Option<String>,
    /// Never connect; only accept.
    pub passive: bool,
}

impl BgpPeer {
    /// A plain neighbor.
    pub fn new(name: &str, address: impl Into<IpAddr>, asn: u32) -> Self {
        BgpPeer {
            name: name.to_string(),
            address: address.into(),
            asn,
            rr_client: false,
            password: None,
            passive: false,
        }
    }
    /// Marks it a route-reflector client.
    pub fn rr_client(mut self) -> Self {
        self.rr_client = true;
        self
    }
    /// Sets a TCP MD5 password.
    pub fn password(mut self, p: &str) -> Self {
        self.password = Some(p.to_string());
        self
    }
    /// Makes it passive.
    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }
    /// Is this an IPv6 session?
    pub fn is_v6(&self) -> bool {
        self.address.is_ipv6()
    }
}

/// A prefix to originate, with the attributes to send it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// The prefix (IPv4 or IPv6; sent on the sessions of its family).
    pub prefix: IpNet,
    /// Standard communities (ASN, value).
    pub communities: Vec<(u16, u16)>,
    /// Large communities (global, local 1, local 2).
    pub large_communities: Vec<(u32, u32, u32)>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
}

impl Originate {
    /// A prefix with no extra attributes.
    pub fn new(prefix: impl Into<IpNet>) -> Self {
        Originate {
            prefix: prefix.into(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            med: None,
        }
    }
    /// Adds a standard community.
    pub fn community(mut self, asn: u16, value: u16) -> Self {
        self.communities.push((asn, value));
        self
    }
    /// Adds a large community.
    pub fn large_community(mut self, global: u32, l1: u32, l2: u32) -> Self {
        self.large_communities.push((global, l1, l2));
        self
    }
    /// Sets the MED.
    pub fn med(mut self, med: u32) -> Self {
        self.med = Some(med);
        self
    }
    /// Has any attribute to set?
    pub fn has_attrs(&self) -> bool {
        !self.communities.is_empty() || !self.large_communities.is_empty() || self.med.is_some()
    }
}

/// A BGP speaker's config, rendered by each daemon's generator. Peers are directly connected
/// (single hop); timers are short (connect retry 1 s) so labs converge in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSpeaker {
    /// Local AS.
    pub asn: u32,
    /// Router ID.
    pub router_id: Ipv4Addr,
    /// Local address for IPv4 sessions.
    pub local_address: Ipv4Addr,
    /// Local address for IPv6 sessions (required when a peer is IPv6).
    pub local_address6: Option<Ipv6Addr>,
    /// Neighbors.
    pub peers: Vec<BgpPeer>,
    /// Prefixes to originate.
    pub originate: Vec<Originate>,
    /// Graceful restart (RFC 4724) on.
    pub graceful_restart: bool,
    /// Graceful restart time advertised (seconds; `None`: the daemon's default).
    pub restart_time: Option<u16>,
    /// Install learned routes into the namespace's kernel table (BIRD: kernel protocol;
    /// FRR: run zebra; GoBGP and ExaBGP cannot and refuse).
    pub kernel_export: bool,
    /// Route-reflector cluster ID (defaults to the router ID when any peer is a client).
    pub cluster_id: Option<Ipv4Addr>,
}

impl BgpSpeaker {
    /// A speaker with no peers.
    pub fn new(asn: u32, router_id: Ipv4Addr) -> Self {
        BgpSpeaker {
            asn,
            router_id,
            local_address: router_id,
            local_address6: None,
            peers: Vec::new(),
            originate: Vec::new(),
            graceful_restart: false,
            restart_time: None,
            kernel_export: false,
            cluster_id: None,
        }
    }
    /// Adds a neighbor.
    pub fn peer(mut self, p: BgpPeer) -> Self {
        self.peers.push(p);
        self
    }
    /// Originates an IPv4 prefix.
    pub fn originate(mut self, p: Ipv4Net) -> Self {
        self.originate.push(Originate::new(p));
        self
    }
    /// Originates a prefix of either family.
    pub fn originate_prefix(mut self, p: IpNet) -> Self {
        self.originate.push(Originate::new(p));
        self
    }
    /// Originates a prefix with attributes.
    pub fn originate_with(mut self, o: Originate) -> Self {
        self.originate.push(o);
        self
    }
    /// Sets the local IPv6 address (for IPv6 peers).
    pub fn local6(mut self, a: Ipv6Addr) -> Self {
        self.local_address6 = Some(a);
        self
    }
    /// Turns graceful restart on with a restart time.
    pub fn restart_time(mut self, secs: u16) -> Self {
        self.graceful_restart = true;
        self.restart_time = Some(secs);
        self
    }
    /// The local address for a session with `peer` (IPv6 peers use `local_address6`, falling
    /// back to `::` so a missing one shows in the generated config).
    pub fn local_for(&self, peer: &BgpPeer) -> IpAddr {
        match peer.address {
            IpAddr::V4(_) => IpAddr::V4(self.local_address),
            IpAddr::V6(_) => IpAddr::V6(self.local_address6.unwrap_or(Ipv6Addr::UNSPECIFIED)),
        }
    }
    /// The originated prefixes of one family.
    pub fn originated(&self, v6: bool) -> impl Iterator<Item = &Originate> {
        self.originate
            .iter()
            .filter(move |o| matches!(o.prefix, IpNet::V6(_)) == v6)
    }
    /// Turns kernel route installation on.
    pub fn kernel_export(mut self) -> Self {
        self.kernel_export = true;
        self
    }
    /// Turns graceful restart on.
    pub fn graceful_restart(mut self) -> Self {
        self.graceful_restart = true;
        self
    }
}

/// One path in a daemon's RIB. The attribute fields are filled where the daemon's output
/// shows them (ExaBGP: from its parsed UPDATEs; FRR: [`frr::Frr::rib`] fills them from the
/// per-prefix detail).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RibRoute {
    /// Prefix.
    pub prefix: IpNet,
    /// BGP next hop (`None` for local routes such as BIRD's static blackhole).
    pub next_hop: Option<IpAddr>,
    /// Selected as best.
    pub best: bool,
    /// AS path (flattened).
    pub as_path: Vec<u32>,
    /// Where it came from (BIRD protocol, peer address, or `local`).
    pub from: String,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Standard communities as `ASN:VALUE`.
    pub communities: Vec<String>,
    /// Large communities as `G:L1:L2`.
    pub large_communities: Vec<String>,
    /// ORIGINATOR_ID.
    pub originator_id: Option<String>,
    /// CLUSTER_LIST.
    pub cluster_list: Vec<String>,
    /// Unknown (passed-through) attributes: type code and the value in lowercase hex
    /// (empty when the daemon shows only the type, as BIRD does).
    pub unknown: Vec<(u8, String)>,
}

/// The queries every daemon answers, so a test can treat them alike.
pub trait BgpDaemon {
    /// Daemon name (`bird`, `frr`, `gobgp`, `exabgp`).
    fn kind(&self) -> &'static str;
    /// Node it runs on.
    fn node(&self) -> &str;
    /// Is the session with `peer` Established?
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool>;
    /// All paths in the daemon's IPv4 and IPv6 unicast RIBs.
    fn rib(&self) -> Result<Vec<RibRoute>>;
    /// The paths of one prefix.
    fn paths(&self, prefix: IpNet) -> Result<Vec<RibRoute>> {
        Ok(self
            .rib()?
            .into_iter()
            .filter(|r| r.prefix == prefix)
            .collect())
    }
    /// The best path of `prefix`, if any.
    fn best(&self, prefix: IpNet) -> Result<Option<RibRoute>> {
        Ok(self.paths(prefix)?.into_iter().find(|r| r.best))
    }
    /// Is `prefix` present (as best path) with next hop `next_hop`?
    fn has_route(&self, prefix: IpNet, next_hop: IpAddr) -> Result<bool> {
        Ok(self
            .rib()?
            .iter()
            .any(|r| r.prefix == prefix && r.best && r.next_hop == Some(next_hop)))
    }
    /// Is there no path at all for `prefix`?
    fn lacks_route(&self, prefix: IpNet) -> Result<bool> {
        Ok(!self.rib()?.iter().any(|r| r.prefix == prefix))
    }
    /// The daemon processes (to stop them or read their logs).
    fn processes(&self) -> &[Process];
}

/// Reads a whole log for error messages (at most the last 4 KiB).
pub(crate) fn log_tail(p: &Process) -> String {
    let log = p.log();
    let start = log.len().saturating_sub(4096);
    let start = (start..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(log.len());
    log.get(start..).unwrap_or("").to_string()
}
