//! The TOML file as written: serde structs with `deny_unknown_fields`, every field optional
//! where a default or an inheritance applies. `validate.rs` turns them into the typed
//! `SpeakerConfig`.
//!
//! `#[serde(flatten)]` is not used anywhere: it silently disables `deny_unknown_fields`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub cluster_id: Option<Ipv4Addr>,
    pub route_reflector: Option<bool>,
    pub listen: Option<bool>,
    pub listen_addresses: Option<Vec<IpAddr>>,
    pub listen_port: Option<u16>,
    pub hold_time_secs: Option<u16>,
    pub keepalive_secs: Option<u16>,
    pub connect_retry_secs: Option<u32>,
    pub rfc8212_default_deny: Option<bool>,
    pub max_dynamic_peers: Option<u32>,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub graceful_restart: Option<RawGlobalGr>,
    #[serde(default)]
    pub neighbor: Vec<RawPeer>,
    #[serde(default)]
    pub listen_range: Vec<RawListenRange>,
    #[serde(default)]
    pub template: BTreeMap<String, RawPeer>,
    #[serde(default)]
    pub originate: Vec<RawOriginate>,
    /// `[[policy]]` entries with a `name`, or `[policy.NAME]` tables.
    pub policy: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobalGr {
    pub enabled: Option<bool>,
    pub restart_time_secs: Option<u16>,
    pub stale_time_secs: Option<u32>,
    pub deferral_secs: Option<u32>,
}

/// One `[[neighbor]]` or one `[template.NAME]` (the same options; a template may not set
/// `address` or `template`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub address: Option<IpAddr>,
    pub template: Option<String>,
    pub remote_asn: Option<u32>,
    pub description: Option<String>,
    pub passive: Option<bool>,
    pub local_address: Option<IpAddr>,
    pub port: Option<u16>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub hold_time_secs: Option<u16>,
    pub keepalive_secs: Option<u16>,
    pub connect_retry_secs: Option<u32>,
    pub delay_open_secs: Option<u16>,
    pub multihop_ttl: Option<u8>,
    pub ttl_security_hops: Option<u8>,
    pub route_reflector_client: Option<bool>,
    pub next_hop_self: Option<bool>,
    pub next_hop_keep: Option<bool>,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
    pub graceful_restart: Option<RawPeerGr>,
    pub families: Option<Vec<String>>,
    pub max_prefix: Option<RawMaxPrefix>,
    pub import_policy: Option<Vec<String>>,
    pub export_policy: Option<Vec<String>>,
    pub shutdown_message: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeerGr {
    pub enabled: Option<bool>,
    pub restart_time_secs: Option<u16>,
    pub stale_time_secs: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaxPrefix {
    pub limit: u32,
    pub restart_after_secs: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListenRange {
    pub prefix: IpNet,
    pub template: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOriginate {
    pub prefix: IpNet,
    #[serde(default)]
    pub communities: Vec<String>,
    #[serde(default)]
    pub large_communities: Vec<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub next_hop: Option<IpAddr>,
}
