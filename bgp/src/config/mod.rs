//! Speaker configuration: the TOML file `wren-reflector --config FILE` reads (the agent
//! reuses it for its BGP part), validated into typed values at load.
//!
//! `reflector/examples/reflector.toml` documents every field. Parsing rejects unknown
//! fields; every validation error names the field path and says how to fix it, e.g.
//! `peer 10.0.0.2: hold time 2 s is invalid, use 0 or >= 3 (field neighbor[0].hold_time_secs)`.
//!
//! Resolution of per-peer options: the neighbour's own value, else its template's
//! (`template = "NAME"`), else the global default (`hold_time_secs`, `keepalive_secs`,
//! `connect_retry_secs`, `[graceful_restart]`), else the built-in default.

mod raw;
mod validate;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::transport::{ConnectOptions, Md5Key, PeerSecurity, TtlPolicy, BGP_PORT};
use crate::wire::{Community, Family, LargeCommunity};

/// Built-in defaults.
pub mod defaults {
    use std::time::Duration;

    pub const HOLD_TIME: Duration = Duration::from_secs(90);
    pub const CONNECT_RETRY: Duration = Duration::from_secs(30);
    pub const GR_RESTART_TIME: Duration = Duration::from_secs(120);
    pub const GR_STALE_TIME: Duration = Duration::from_secs(360);
    pub const GR_DEFERRAL: Duration = Duration::from_secs(360);
    pub const MAX_DYNAMIC_PEERS: u32 = 100;
    pub const LISTEN_PORT: u16 = super::BGP_PORT;
}

/// A validated speaker configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeakerConfig {
    /// Local AS (4-octet; never 0 or AS_TRANS 23456).
    pub asn: u32,
    /// BGP identifier (non-zero).
    pub router_id: Ipv4Addr,
    /// `Some`: route reflector (RFC 4456) with this CLUSTER_ID. `None`: plain speaker.
    pub cluster_id: Option<Ipv4Addr>,
    /// `None`: no listener (active sessions only).
    pub listen: Option<ListenConfig>,
    /// RFC 8212: eBGP peers without an import (export) policy accept (send) nothing.
    pub rfc8212_default_deny: bool,
    pub graceful_restart: GlobalGracefulRestart,
    pub neighbors: Vec<NeighborConfig>,
    pub listen_ranges: Vec<ListenRange>,
    /// Peer templates by name, fully resolved (used by listen ranges and neighbours).
    pub templates: BTreeMap<String, PeerOptions>,
    /// At most this many dynamic (listen-range) sessions at once.
    pub max_dynamic_peers: u32,
    pub originate: Vec<OriginateConfig>,
    /// Policies by name, passed through untyped for now (each value is a table that
    /// includes `name`, ready for `PolicyConfig`). Accepted forms: `[[policy]]` with
    /// `name = "NAME"`, or `[policy.NAME]`. Every policy name a peer references exists here.
    pub policy: BTreeMap<String, toml::Value>,
}

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    pub addresses: Vec<IpAddr>,
    pub port: u16,
}

impl ListenConfig {
    /// The socket addresses to give to [`crate::transport::Listener::bind`].
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addresses
            .iter()
            .map(|a| SocketAddr::new(*a, self.port))
            .collect()
    }
}

/// Global graceful restart settings (RFC 4724, RFC 8538).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalGracefulRestart {
    /// Default for peers: advertise the capability and act as helper.
    pub enabled: bool,
    /// Restart time advertised in our capability (at most 4095 s).
    pub restart_time: Duration,
    /// Default for peers: how long to keep a restarting peer's routes as stale.
    pub stale_time: Duration,
    /// After our own restart, longest wait for End-of-RIB from peers before best path
    /// selection runs anyway (the selection deferral bound).
    pub deferral: Duration,
}

/// Per-peer graceful restart settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerGracefulRestart {
    pub enabled: bool,
    pub restart_time: Duration,
    pub stale_time: Duration,
}

/// Next hop handling when sending to this peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NextHopMode {
    /// RFC 4271 rules: eBGP sets our address, iBGP keeps the received next hop.
    #[default]
    Default,
    /// Always set our own address (`next_hop_self = true`).
    SelfAddress,
    /// Never change the next hop, even on eBGP (`next_hop_keep = true`).
    Keep,
}

/// Per-peer prefix limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefix {
    /// More accepted prefixes than this: Cease / Maximum Number of Prefixes Reached.
    pub limit: u32,
    /// Re-establish automatically after this long; `None`: stay down until changed.
    pub restart_after: Option<Duration>,
}

/// Every per-peer option (a neighbour's, or a template's).
#[derive(Clone, Debug, PartialEq)]
pub struct PeerOptions {
    pub remote_asn: u32,
    pub description: Option<String>,
    /// Never connect; only accept.
    pub passive: bool,
    /// Source address for outgoing connections (same family as the peer).
    pub local_address: Option<IpAddr>,
    /// Peer's TCP port for outgoing connections.
    pub port: u16,
    /// TCP MD5 key (from `password` or the first line of `password_file`).
    pub md5: Option<Md5Key>,
    /// Proposed hold time (0 or >= 3 s).
    pub hold_time: Duration,
    /// Keepalive interval (default: a third of the hold time; 0 when hold time is 0).
    pub keepalive: Duration,
    pub connect_retry: Duration,
    /// RFC 4271 DelayOpen; `None`: off.
    pub delay_open: Option<Duration>,
    /// `multihop_ttl` → `Ttl(n)`, `ttl_security_hops` → `Security`, neither: eBGP `Ttl(1)`
    /// (directly connected), iBGP `Default`.
    pub ttl: TtlPolicy,
    pub route_reflector_client: bool,
    pub next_hop: NextHopMode,
    /// Our address advertised as the next hop of IPv4 routes to this peer whenever we set
    /// the next hop (next hop self, eBGP, local routes). `None`: the session's local
    /// address when it is IPv4, else `local_address`, else a specific IPv4 listen
    /// address, else an IPv4 address of the interface holding the session's local address.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The same for IPv6 routes (the MP_REACH global next hop), e.g. for IPv6 unicast over
    /// an IPv4 session. `None`: the session's local address when it is a global IPv6
    /// address, else `local_address`, else a specific IPv6 listen address, else a global
    /// IPv6 address of the interface holding the session's local address.
    pub next_hop_v6: Option<Ipv6Addr>,
    pub graceful_restart: PeerGracefulRestart,
    /// Negotiated address families (default: the family of the peer's address).
    pub families: Vec<Family>,
    pub max_prefix: Option<MaxPrefix>,
    /// Policy names applied in order (all exist in [`SpeakerConfig::policy`]).
    pub import_policy: Vec<String>,
    pub export_policy: Vec<String>,
    /// RFC 9003 message sent with an administrative shutdown (at most 255 octets).
    pub shutdown_message: Option<String>,
}

impl PeerOptions {
    /// What the transport enforces for this peer.
    pub fn security(&self) -> PeerSecurity {
        PeerSecurity {
            md5: self.md5.clone(),
            ttl: self.ttl,
        }
    }

    /// eBGP when the peer's AS differs from `local_asn`.
    pub fn is_ebgp(&self, local_asn: u32) -> bool {
        self.remote_asn != local_asn
    }
}

/// A static neighbour.
#[derive(Clone, Debug, PartialEq)]
pub struct NeighborConfig {
    pub address: IpAddr,
    /// The template it inherited from, if any.
    pub template: Option<String>,
    pub options: PeerOptions,
}

impl NeighborConfig {
    /// Transport options for connecting to this neighbour (connect timeout: the default).
    pub fn connect_options(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new(SocketAddr::new(self.address, self.options.port));
        o.local = self.options.local_address.map(|a| SocketAddr::new(a, 0));
        o.md5 = self.options.md5.clone();
        o.ttl = self.options.ttl;
        o
    }
}

/// A listen range for dynamic neighbours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenRange {
    pub prefix: IpNet,
    /// Name of the template (a key of [`SpeakerConfig::templates`]).
    pub template: String,
}

/// A prefix to originate, with its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginateConfig {
    pub prefix: IpNet,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// `None`: the session's local address (or the peer's rules).
    pub next_hop: Option<IpAddr>,
}

/// Configuration errors. Each names the file or the field and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type, a missing required field or an unknown field; the message
    /// carries toml's line and column.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{subject}: {message} (field {field})")]
    Invalid {
        subject: String,
        field: String,
        message: String,
    },
    #[error("{subject}: cannot read password_file {path}: {source} (field {field})")]
    PasswordFile {
        subject: String,
        field: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The field path (e.g. `neighbor[0].hold_time_secs`) for validation errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::PasswordFile { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

impl SpeakerConfig {
    /// Parses and validates a TOML document. A relative `password_file` is relative to the
    /// current directory.
    pub fn from_toml_str(s: &str) -> Result<SpeakerConfig, ConfigError> {
        validate::load(s, "config", None)
    }

    /// Reads, parses and validates a file. A relative `password_file` is relative to the
    /// config file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<SpeakerConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        validate::load(&text, &path.display().to_string(), path.parent())
    }

    /// Validates an already parsed TOML value, e.g. the `[bgp]` table of the agent's own
    /// config file. `source` names it in parse errors (`"agent.toml [bgp]"`); a relative
    /// `password_file` is relative to `base_dir` (or the current directory).
    pub fn from_toml_value(
        value: toml::Value,
        source: &str,
        base_dir: Option<&Path>,
    ) -> Result<SpeakerConfig, ConfigError> {
        validate::load_value(value, source, base_dir)
    }

    /// A route reflector (a cluster id is set).
    pub fn is_route_reflector(&self) -> bool {
        self.cluster_id.is_some()
    }

    /// The static neighbour with this address.
    pub fn neighbor(&self, address: IpAddr) -> Option<&NeighborConfig> {
        let address = address.to_canonical();
        self.neighbors.iter().find(|n| n.address == address)
    }

    /// The listen range (longest prefix) covering `address`, with its template's options.
    pub fn listen_range_for(&self, address: IpAddr) -> Option<(&ListenRange, &PeerOptions)> {
        let address = address.to_canonical();
        self.listen_ranges
            .iter()
            .filter(|r| r.prefix.contains(&address))
            .max_by_key(|r| r.prefix.prefix_len())
            .and_then(|r| self.templates.get(&r.template).map(|t| (r, t)))
    }

    /// Every entry the listener needs: static neighbours (host prefixes) and listen ranges,
    /// with their MD5 keys and TTL policies.
    pub fn listener_peers(&self) -> Vec<(IpNet, PeerSecurity)> {
        let statics = self
            .neighbors
            .iter()
            .map(|n| (IpNet::from(n.address), n.options.security()));
        let ranges = self.listen_ranges.iter().filter_map(|r| {
            self.templates
                .get(&r.template)
                .map(|t| (r.prefix, t.security()))
        });
        statics.chain(ranges).collect()
    }
}

#[cfg(test)]
mod tests;
