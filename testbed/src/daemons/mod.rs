//! Real BGP daemons from Debian as lab roles: config generators for the common cases and
//! typed query helpers over their CLIs.
//!
//! Every daemon runs in the foreground in its node's namespace with its config, control
//! socket, PID file and log under `<lab dir>/<node>/<daemon>/`, so many instances run side
//! by side. Starting returns once the control socket answers.

use std::net::{IpAddr, Ipv4Addr};
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
    /// Neighbor address.
    pub address: Ipv4Addr,
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
    pub fn new(name: &str, address: Ipv4Addr, asn: u32) -> Self {
        BgpPeer {
            name: name.to_string(),
            address,
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
}

/// A BGP speaker's config, rendered by each daemon's generator. Peers are directly connected
/// (single hop); timers are short (connect retry 1 s) so labs converge in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSpeaker {
    /// Local AS.
    pub asn: u32,
    /// Router ID.
    pub router_id: Ipv4Addr,
    /// Local address for sessions.
    pub local_address: Ipv4Addr,
    /// Neighbors.
    pub peers: Vec<BgpPeer>,
    /// Prefixes to originate.
    pub originate: Vec<Ipv4Net>,
    /// Graceful restart (RFC 4724) on.
    pub graceful_restart: bool,
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
            peers: Vec::new(),
            originate: Vec::new(),
            graceful_restart: false,
            kernel_export: false,
            cluster_id: None,
        }
    }
    /// Adds a neighbor.
    pub fn peer(mut self, p: BgpPeer) -> Self {
        self.peers.push(p);
        self
    }
    /// Originates a prefix.
    pub fn originate(mut self, p: Ipv4Net) -> Self {
        self.originate.push(p);
        self
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

/// One path in a daemon's RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// The queries every daemon answers, so a test can treat them alike.
pub trait BgpDaemon {
    /// Daemon name (`bird`, `frr`, `gobgp`, `exabgp`).
    fn kind(&self) -> &'static str;
    /// Node it runs on.
    fn node(&self) -> &str;
    /// Is the session with `peer` Established?
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool>;
    /// All paths in the daemon's IPv4 unicast RIB.
    fn rib(&self) -> Result<Vec<RibRoute>>;
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
