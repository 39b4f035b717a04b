//! Raw TOML structs → validated [`SpeakerConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::raw::{RawConfig, RawOriginate, RawPeer};
use super::{
    defaults, ConfigError, GlobalGracefulRestart, ListenConfig, ListenRange, MaxPrefix,
    NeighborConfig, NextHopMode, OriginateConfig, PeerGracefulRestart, PeerOptions, SpeakerConfig,
};
use crate::transport::{Md5Key, TtlPolicy, BGP_PORT, MD5_MAX_KEY_LEN};
use crate::wire::{Community, Family, LargeCommunity};

/// AS_TRANS (RFC 6793).
const AS_TRANS: u32 = 23456;
/// Longest RFC 9003 shutdown communication.
const MAX_SHUTDOWN_MESSAGE: usize = 255;
/// A zero stale time would drop a restarting peer's routes the moment it reconnects.
const STALE_TIME_ZERO: &str = "stale time 0 s is invalid: the restarting peer's routes would be dropped as soon as it reconnects, before its End-of-RIB; use >= 1 (default 360)";
/// The graceful restart capability's restart time is 12 bits.
const MAX_GR_RESTART_TIME: u16 = 4095;

fn invalid(
    subject: impl Into<String>,
    field: impl Into<String>,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        subject: subject.into(),
        field: field.into(),
        message: message.into(),
    }
}

fn secs(s: impl Into<u64>) -> Duration {
    Duration::from_secs(s.into())
}

pub(super) fn load(
    text: &str,
    file: &str,
    base: Option<&Path>,
) -> Result<SpeakerConfig, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        file: file.to_owned(),
        message: parse_message(text, &e),
    })?;
    validate(raw, base)
}

/// Words in a key that may hold a secret.
const SENSITIVE: [&str; 4] = ["pass", "secret", "md5", "key"];

/// An error converting a parsed TOML value: toml names the key path (`in `a.b``); when
/// the path may hold a secret, the message (which can quote the value) is replaced.
fn value_message(e: &toml::de::Error) -> String {
    let text = e.to_string();
    let path = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("in `")?.strip_suffix('`'))
        .map(str::to_owned);
    match path {
        Some(p)
            if SENSITIVE.iter().any(|w| p.to_ascii_lowercase().contains(w))
                && !e.message().starts_with("unknown field") =>
        {
            format!("invalid value for `{p}` (value not shown), use password = \"...\" (a string of 1 to 80 octets) or password_file = \"PATH\"")
        }
        _ => text.trim_end().replace('\n', " "),
    }
}

/// A TOML error as "line L, column C (`LINE`): MESSAGE". An error on a line that may hold a
/// secret (it mentions pass, secret, md5 or key, typos included) never shows the line, and
/// shows toml's message only for an unknown key: toml's own rendering (its excerpt of the
/// line and, for a value of the wrong type, the message) would print the password.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let Some(start) = e.span().map(|s| s.start) else {
        return e.message().to_owned();
    };
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count().saturating_add(1);
    let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
    let column = before
        .get(line_start..)
        .map_or(1, |l| l.chars().count().saturating_add(1));
    let line_text = text
        .get(line_start..)
        .and_then(|t| t.lines().next())
        .unwrap_or("");
    let lower = line_text.to_ascii_lowercase();
    let sensitive = SENSITIVE.iter().any(|w| lower.contains(w));
    if sensitive && e.message().starts_with("unknown field") {
        // The message names the key only.
        return format!("line {line}, column {column}: {}", e.message());
    }
    if sensitive {
        return format!(
            "line {line}, column {column}: invalid password entry (value not shown), use password = \"...\" (a string of 1 to 80 octets) or password_file = \"PATH\""
        );
    }
    let shown: String = line_text.trim().chars().take(120).collect();
    format!("line {line}, column {column} (`{shown}`): {}", e.message())
}

pub(super) fn load_value(
    value: toml::Value,
    source: &str,
    base: Option<&Path>,
) -> Result<SpeakerConfig, ConfigError> {
    let raw: RawConfig = value
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            file: source.to_owned(),
            message: value_message(&e),
        })?;
    validate(raw, base)
}

/// Global defaults that peers inherit.
struct Globals {
    next_hop_v4: Option<Ipv4Addr>,
    next_hop_v6: Option<Ipv6Addr>,
    hold_time: Option<u16>,
    keepalive: Option<u16>,
    connect_retry: Option<u32>,
    gr: GlobalGracefulRestart,
}

fn check_local_asn(asn: u32) -> Result<(), ConfigError> {
    let msg = match asn {
        0 => "AS 0 is reserved (RFC 7607), use your AS number",
        AS_TRANS => {
            "AS 23456 is AS_TRANS (RFC 6793) and cannot be a local AS, use your real AS number"
        }
        65535 | 4_294_967_295 => "this AS number is reserved (RFC 7300), use your AS number",
        _ => return Ok(()),
    };
    Err(invalid("asn", "asn", msg))
}

fn check_hold_time(subject: &str, field: &str, hold: u16) -> Result<(), ConfigError> {
    if hold == 1 || hold == 2 {
        return Err(invalid(
            subject,
            field,
            format!("hold time {hold} s is invalid, use 0 or >= 3"),
        ));
    }
    Ok(())
}

fn validate(raw: RawConfig, base: Option<&Path>) -> Result<SpeakerConfig, ConfigError> {
    check_local_asn(raw.asn)?;
    if raw.router_id.is_unspecified() {
        return Err(invalid(
            "router_id",
            "router_id",
            "router id 0.0.0.0 is invalid (RFC 6286), use a non-zero IPv4 address, usually a loopback address of this node",
        ));
    }
    let cluster_id = match (raw.cluster_id, raw.route_reflector) {
        (Some(_), Some(false)) => {
            return Err(invalid(
                "cluster_id",
                "cluster_id",
                "cluster_id is set but route_reflector = false; remove cluster_id for a plain speaker, or route_reflector for a reflector",
            ))
        }
        (Some(c), _) if c.is_unspecified() => {
            return Err(invalid(
                "cluster_id",
                "cluster_id",
                "cluster id 0.0.0.0 is invalid, use a non-zero IPv4 address or omit it to use the router id",
            ))
        }
        (Some(c), _) => Some(c),
        (None, Some(true)) => Some(raw.router_id),
        (None, _) => None,
    };

    if let Some(h) = raw.hold_time_secs {
        check_hold_time("hold_time_secs", "hold_time_secs", h)?;
    }
    if let (Some(k), Some(h)) = (raw.keepalive_secs, raw.hold_time_secs) {
        if h > 0 && k >= h {
            return Err(invalid(
                "keepalive_secs",
                "keepalive_secs",
                format!("keepalive {k} s must be less than the hold time {h} s, use about a third of it"),
            ));
        }
    }
    if raw.connect_retry_secs == Some(0) {
        return Err(invalid(
            "connect_retry_secs",
            "connect_retry_secs",
            "connect retry 0 s is invalid, use >= 1",
        ));
    }

    let listen = listen_config(&raw)?;

    let rgr = raw.graceful_restart.unwrap_or_default();
    let gr = GlobalGracefulRestart {
        enabled: rgr.enabled.unwrap_or(true),
        restart_time: match rgr.restart_time_secs {
            Some(t) if t > MAX_GR_RESTART_TIME => {
                return Err(invalid(
                    "graceful_restart",
                    "graceful_restart.restart_time_secs",
                    format!("restart time {t} s is too long, use at most {MAX_GR_RESTART_TIME} (12-bit field)"),
                ))
            }
            Some(t) => secs(t),
            None => defaults::GR_RESTART_TIME,
        },
        stale_time: match rgr.stale_time_secs {
            Some(0) => {
                return Err(invalid(
                    "graceful_restart",
                    "graceful_restart.stale_time_secs",
                    STALE_TIME_ZERO,
                ))
            }
            Some(t) => secs(t),
            None => defaults::GR_STALE_TIME,
        },
        deferral: match rgr.deferral_secs {
            Some(0) => {
                return Err(invalid(
                    "graceful_restart",
                    "graceful_restart.deferral_secs",
                    "deferral bound 0 s is invalid, use >= 1 (best path waits at most this long for End-of-RIB after a restart)",
                ))
            }
            Some(d) => secs(d),
            None => defaults::GR_DEFERRAL,
        },
    };
    if let Some(a) = raw.next_hop_v4 {
        check_next_hop_v4("next_hop_v4", "next_hop_v4", a)?;
    }
    if let Some(a) = raw.next_hop_v6 {
        check_next_hop_v6("next_hop_v6", "next_hop_v6", a)?;
    }
    let globals = Globals {
        next_hop_v4: raw.next_hop_v4,
        next_hop_v6: raw.next_hop_v6,
        hold_time: raw.hold_time_secs,
        keepalive: raw.keepalive_secs,
        connect_retry: raw.connect_retry_secs,
        gr,
    };
    let v = Validator {
        globals: &globals,
        local_asn: raw.asn,
        base,
    };

    // Templates.
    let mut templates = BTreeMap::new();
    for (name, t) in &raw.template {
        let subject = format!("template {name}");
        let path = format!("template.{name}");
        if t.address.is_some() {
            return Err(invalid(
                &subject,
                format!("{path}.address"),
                "a template cannot have an address; use a [[neighbor]] with template = \"NAME\", or a [[listen_range]]",
            ));
        }
        if t.template.is_some() {
            return Err(invalid(
                &subject,
                format!("{path}.template"),
                "templates cannot inherit from templates; copy the options",
            ));
        }
        templates.insert(name.clone(), v.peer(&subject, &path, t, None, None)?);
    }

    // Static neighbours.
    let mut neighbors: Vec<NeighborConfig> = Vec::with_capacity(raw.neighbor.len());
    for (i, n) in raw.neighbor.iter().enumerate() {
        let path = format!("neighbor[{i}]");
        let Some(address) = n.address.map(|a| a.to_canonical()) else {
            return Err(invalid(
                &path,
                format!("{path}.address"),
                "address is missing; set the peer's IP address",
            ));
        };
        let subject = format!("peer {address}");
        if address.is_unspecified() || address.is_multicast() {
            return Err(invalid(
                &subject,
                format!("{path}.address"),
                "use the peer's unicast IP address",
            ));
        }
        if let Some(j) = neighbors.iter().position(|o| o.address == address) {
            return Err(invalid(
                &subject,
                format!("{path}.address"),
                format!("duplicate neighbour, already defined as neighbor[{j}]; remove one"),
            ));
        }
        let tmpl = match &n.template {
            Some(name) => match raw.template.get(name) {
                Some(t) => Some((name.as_str(), t)),
                None => {
                    return Err(invalid(
                        &subject,
                        format!("{path}.template"),
                        format!("template \"{name}\" is not defined; add a [template.{name}] section or remove template"),
                    ))
                }
            },
            None => None,
        };
        let options = v.peer(&subject, &path, n, tmpl, Some(address))?;
        if options.passive && listen.is_none() {
            return Err(invalid(
                &subject,
                format!("{path}.passive"),
                "a passive neighbour needs a listener; set listen = true and a non-zero listen_port, or passive = false",
            ));
        }
        neighbors.push(NeighborConfig {
            address,
            template: n.template.clone(),
            options,
        });
    }

    // Listen ranges.
    let mut listen_ranges: Vec<ListenRange> = Vec::with_capacity(raw.listen_range.len());
    for (i, r) in raw.listen_range.iter().enumerate() {
        let path = format!("listen_range[{i}]");
        let subject = format!("listen_range {}", r.prefix);
        let prefix = canonical_prefix(&subject, &format!("{path}.prefix"), r.prefix)?;
        if listen.is_none() {
            return Err(invalid(
                &subject,
                &path,
                "dynamic neighbours need a listener; set listen = true and a non-zero listen_port, or remove the listen range",
            ));
        }
        if !templates.contains_key(&r.template) {
            return Err(invalid(
                &subject,
                format!("{path}.template"),
                format!(
                    "template \"{}\" is not defined; add a [template.{}] section",
                    r.template, r.template
                ),
            ));
        }
        if let Some(j) = listen_ranges.iter().position(|o| o.prefix == prefix) {
            return Err(invalid(
                &subject,
                format!("{path}.prefix"),
                format!("duplicate listen range, already listen_range[{j}]; remove one"),
            ));
        }
        listen_ranges.push(ListenRange {
            prefix,
            template: r.template.clone(),
        });
    }
    let max_dynamic_peers = raw.max_dynamic_peers.unwrap_or(defaults::MAX_DYNAMIC_PEERS);

    let policy = policies(raw.policy)?;

    // Route reflection and policies.
    let peers = neighbors
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                format!("peer {}", n.address),
                format!("neighbor[{i}]"),
                &n.options,
            )
        })
        .chain(
            templates
                .iter()
                .map(|(name, t)| (format!("template {name}"), format!("template.{name}"), t)),
        );
    for (subject, path, o) in peers {
        if o.route_reflector_client && cluster_id.is_none() {
            return Err(invalid(
                &subject,
                format!("{path}.route_reflector_client"),
                "route_reflector_client = true needs a route reflector; set route_reflector = true (or cluster_id) at the top level",
            ));
        }
        for (kind, names) in [
            ("import_policy", &o.import_policy),
            ("export_policy", &o.export_policy),
        ] {
            for name in names {
                if !policy.contains_key(name) {
                    return Err(invalid(
                        &subject,
                        format!("{path}.{kind}"),
                        format!("policy \"{name}\" is not defined; add a [[policy]] with name = \"{name}\" or remove it from {kind}"),
                    ));
                }
            }
        }
    }

    // Originated prefixes.
    let mut originate: Vec<OriginateConfig> = Vec::with_capacity(raw.originate.len());
    for (i, o) in raw.originate.iter().enumerate() {
        let o = originate_config(i, o)?;
        if let Some(j) = originate.iter().position(|x| x.prefix == o.prefix) {
            return Err(invalid(
                format!("originate {}", o.prefix),
                format!("originate[{i}].prefix"),
                format!("duplicate prefix, already originate[{j}]; merge them"),
            ));
        }
        originate.push(o);
    }

    Ok(SpeakerConfig {
        asn: raw.asn,
        router_id: raw.router_id,
        cluster_id,
        listen,
        rfc8212_default_deny: raw.rfc8212_default_deny.unwrap_or(false),
        graceful_restart: gr,
        neighbors,
        listen_ranges,
        templates,
        max_dynamic_peers,
        originate,
        policy,
    })
}

/// Collects the policies by name from either form: an array `[[policy]]` of tables with a
/// `name`, or tables `[policy.NAME]` (the name is then added to the table).
fn policies(v: Option<toml::Value>) -> Result<BTreeMap<String, toml::Value>, ConfigError> {
    let mut out = BTreeMap::new();
    match v {
        None => {}
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let field = format!("policy[{i}].name");
                let name = match item.get("name") {
                    Some(toml::Value::String(n)) if !n.is_empty() => n.clone(),
                    _ => {
                        return Err(invalid(
                            format!("policy[{i}]"),
                            field,
                            "a policy needs a non-empty string name = \"NAME\"",
                        ))
                    }
                };
                if out.contains_key(&name) {
                    return Err(invalid(
                        format!("policy {name}"),
                        field,
                        "duplicate policy name; rename or merge one",
                    ));
                }
                out.insert(name, item);
            }
        }
        Some(toml::Value::Table(tables)) => {
            for (name, item) in tables {
                let toml::Value::Table(mut t) = item else {
                    return Err(invalid(
                        format!("policy {name}"),
                        format!("policy.{name}"),
                        "a policy must be a table: write [policy.NAME] or [[policy]] with name = \"NAME\"",
                    ));
                };
                match t.get("name") {
                    None => {
                        t.insert("name".to_owned(), toml::Value::String(name.clone()));
                    }
                    Some(toml::Value::String(n)) if *n == name => {}
                    Some(_) => {
                        return Err(invalid(
                            format!("policy {name}"),
                            format!("policy.{name}.name"),
                            format!(
                            "name differs from the table name; remove name or set it to \"{name}\""
                        ),
                        ))
                    }
                }
                out.insert(name, toml::Value::Table(t));
            }
        }
        Some(_) => {
            return Err(invalid(
                "policy",
                "policy",
                "policy must be [[policy]] tables with a name (or [policy.NAME] tables)",
            ))
        }
    }
    Ok(out)
}

fn check_next_hop_v4(subject: &str, field: &str, a: Ipv4Addr) -> Result<(), ConfigError> {
    if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
        return Err(invalid(
            subject,
            field,
            format!("next hop {a} is invalid, use a unicast IPv4 address of this node that peers can reach"),
        ));
    }
    Ok(())
}

fn check_next_hop_v6(subject: &str, field: &str, a: Ipv6Addr) -> Result<(), ConfigError> {
    if a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.is_unicast_link_local() {
        return Err(invalid(
            subject,
            field,
            format!("next hop {a} is invalid, use a global (or unique local) unicast IPv6 address of this node that peers can reach, not link-local"),
        ));
    }
    Ok(())
}

fn listen_config(raw: &RawConfig) -> Result<Option<ListenConfig>, ConfigError> {
    let port = raw.listen_port.unwrap_or(defaults::LISTEN_PORT);
    if raw.listen == Some(false) || port == 0 {
        return Ok(None);
    }
    let addresses = raw
        .listen_addresses
        .clone()
        .unwrap_or_else(|| vec![IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)]);
    if addresses.is_empty() {
        return Err(invalid(
            "listen_addresses",
            "listen_addresses",
            "no listen address; list at least one (\"::\" listens on IPv4 and IPv6), or set listen = false",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, a) in addresses.iter().enumerate() {
        if !seen.insert(*a) {
            return Err(invalid(
                "listen_addresses",
                format!("listen_addresses[{i}]"),
                format!("{a} is listed twice; remove one"),
            ));
        }
        if a.is_multicast() {
            return Err(invalid(
                "listen_addresses",
                format!("listen_addresses[{i}]"),
                format!("{a} is a multicast address; use a local unicast or unspecified address"),
            ));
        }
    }
    Ok(Some(ListenConfig { addresses, port }))
}

fn canonical_prefix(subject: &str, field: &str, prefix: IpNet) -> Result<IpNet, ConfigError> {
    if prefix.trunc() != prefix {
        return Err(invalid(
            subject,
            field,
            format!("{prefix} has host bits set, use {}", prefix.trunc()),
        ));
    }
    Ok(prefix)
}

fn parse_community(s: &str) -> Option<Community> {
    match s.to_ascii_lowercase().as_str() {
        "no-export" => return Some(Community::NO_EXPORT),
        "no-advertise" => return Some(Community::NO_ADVERTISE),
        "no-export-subconfed" => return Some(Community::NO_EXPORT_SUBCONFED),
        _ => {}
    }
    let (a, b) = s.split_once(':')?;
    Some(Community::new(
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
    ))
}

fn parse_large_community(s: &str) -> Option<LargeCommunity> {
    let mut it = s.split(':').map(|p| p.trim().parse::<u32>());
    let c = LargeCommunity {
        global_admin: it.next()?.ok()?,
        local_data1: it.next()?.ok()?,
        local_data2: it.next()?.ok()?,
    };
    it.next().is_none().then_some(c)
}

fn originate_config(i: usize, o: &RawOriginate) -> Result<OriginateConfig, ConfigError> {
    let path = format!("originate[{i}]");
    let subject = format!("originate {}", o.prefix);
    let prefix = canonical_prefix(&subject, &format!("{path}.prefix"), o.prefix)?;
    let mut communities = Vec::with_capacity(o.communities.len());
    for (j, c) in o.communities.iter().enumerate() {
        let c = parse_community(c).ok_or_else(|| {
            invalid(
                &subject,
                format!("{path}.communities[{j}]"),
                format!("community \"{c}\" is invalid, use \"ASN:VALUE\" (each 0-65535) or no-export, no-advertise, no-export-subconfed"),
            )
        })?;
        communities.push(c);
    }
    let mut large_communities = Vec::with_capacity(o.large_communities.len());
    for (j, c) in o.large_communities.iter().enumerate() {
        let c = parse_large_community(c).ok_or_else(|| {
            invalid(
                &subject,
                format!("{path}.large_communities[{j}]"),
                format!("large community \"{c}\" is invalid, use \"GLOBAL:LOCAL1:LOCAL2\" (each 0-4294967295)"),
            )
        })?;
        large_communities.push(c);
    }
    if let Some(nh) = o.next_hop {
        if nh.is_ipv4() != matches!(prefix, IpNet::V4(_))
            || nh.is_unspecified()
            || nh.is_multicast()
        {
            return Err(invalid(
                &subject,
                format!("{path}.next_hop"),
                format!("next hop {nh} is invalid for {prefix}, use a unicast address of the prefix's family, or omit it"),
            ));
        }
    }
    Ok(OriginateConfig {
        prefix,
        communities,
        large_communities,
        med: o.med,
        local_pref: o.local_pref,
        next_hop: o.next_hop,
    })
}

struct Validator<'a> {
    globals: &'a Globals,
    local_asn: u32,
    base: Option<&'a Path>,
}

impl Validator<'_> {
    /// Resolves one peer's options: its own value, else the template's, else the global
    /// default, else the built-in one.
    fn peer(
        &self,
        subject: &str,
        path: &str,
        p: &RawPeer,
        tmpl: Option<(&str, &RawPeer)>,
        address: Option<IpAddr>,
    ) -> Result<PeerOptions, ConfigError> {
        let t = tmpl.map(|(_, t)| t);
        let f = |name: &str| format!("{path}.{name}");
        macro_rules! pick {
            ($field:ident) => {
                p.$field
                    .clone()
                    .or_else(|| t.and_then(|t| t.$field.clone()))
            };
        }
        let in_template = tmpl
            .map(|(n, _)| format!(" or in template {n}"))
            .unwrap_or_default();

        let remote_asn = pick!(remote_asn).ok_or_else(|| {
            invalid(
                subject,
                f("remote_asn"),
                format!("remote_asn is missing; set the peer's AS number here{in_template}"),
            )
        })?;
        if remote_asn == 0 || remote_asn == AS_TRANS {
            return Err(invalid(
                subject,
                f("remote_asn"),
                format!("remote AS {remote_asn} is reserved and cannot be a peer's AS, use the peer's real AS number"),
            ));
        }

        let local_address = pick!(local_address);
        if let (Some(l), Some(a)) = (local_address, address) {
            if l.is_ipv4() != a.is_ipv4() {
                return Err(invalid(
                    subject,
                    f("local_address"),
                    format!("local address {l} and peer address {a} are of different IP families, use a local address of the peer's family"),
                ));
            }
        }
        let port = pick!(port).unwrap_or(BGP_PORT);
        if port == 0 {
            return Err(invalid(
                subject,
                f("port"),
                "port 0 is invalid, use the peer's BGP port (179)",
            ));
        }

        let md5 = self.md5(subject, path, p, tmpl)?;

        let hold = pick!(hold_time_secs).or(self.globals.hold_time);
        let hold_secs = hold.map(u64::from).unwrap_or(defaults::HOLD_TIME.as_secs());
        if let Some(h) = hold {
            check_hold_time(subject, &f("hold_time_secs"), h)?;
        }
        let own_keepalive = pick!(keepalive_secs);
        let keepalive_secs = match (own_keepalive, hold_secs) {
            (Some(k), 0) if k > 0 => {
                return Err(invalid(
                    subject,
                    f("keepalive_secs"),
                    format!("keepalive {k} s with hold time 0 is invalid: no keepalives are sent then; set keepalive_secs = 0 or a hold time >= 3"),
                ))
            }
            (_, 0) => 0,
            (Some(k), h) => {
                if k == 0 || u64::from(k) >= h {
                    return Err(invalid(
                        subject,
                        f("keepalive_secs"),
                        format!("keepalive {k} s is invalid with hold time {h} s, use 1 to {} (about a third of the hold time)", h.saturating_sub(1)),
                    ));
                }
                u64::from(k)
            }
            (None, h) => match self.globals.keepalive {
                Some(k) if k > 0 && u64::from(k) < h => u64::from(k),
                _ => h / 3,
            },
        };
        let connect_retry = pick!(connect_retry_secs).or(self.globals.connect_retry);
        if connect_retry == Some(0) {
            return Err(invalid(
                subject,
                f("connect_retry_secs"),
                "connect retry 0 s is invalid, use >= 1",
            ));
        }
        let connect_retry = connect_retry.map(secs).unwrap_or(defaults::CONNECT_RETRY);
        let delay_open = pick!(delay_open_secs).filter(|d| *d > 0).map(secs);

        // TTL: the peer's own pair overrides the template's as a whole.
        let (multihop, security) = if p.multihop_ttl.is_some() || p.ttl_security_hops.is_some() {
            (p.multihop_ttl, p.ttl_security_hops)
        } else {
            (
                t.and_then(|t| t.multihop_ttl),
                t.and_then(|t| t.ttl_security_hops),
            )
        };
        let ebgp = remote_asn != self.local_asn;
        let ttl = match (multihop, security) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    subject,
                    f("ttl_security_hops"),
                    "multihop_ttl and ttl_security_hops are both set; use one: ttl_security_hops (GTSM, RFC 5082) already allows that many hops",
                ))
            }
            (Some(0), None) => {
                return Err(invalid(subject, f("multihop_ttl"), "multihop TTL 0 is invalid, use 1 to 255"))
            }
            (None, Some(0)) => {
                return Err(invalid(subject, f("ttl_security_hops"), "TTL security hops 0 is invalid, use 1 (directly connected) to 254"))
            }
            (Some(n), None) => TtlPolicy::Ttl(n),
            (None, Some(h)) => TtlPolicy::Security { hops: h },
            (None, None) if ebgp => TtlPolicy::Ttl(1),
            (None, None) => TtlPolicy::Default,
        };

        let (nh_self, nh_keep) = if p.next_hop_self.is_some() || p.next_hop_keep.is_some() {
            (p.next_hop_self, p.next_hop_keep)
        } else {
            (
                t.and_then(|t| t.next_hop_self),
                t.and_then(|t| t.next_hop_keep),
            )
        };
        let next_hop = match (nh_self.unwrap_or(false), nh_keep.unwrap_or(false)) {
            (true, true) => {
                return Err(invalid(
                    subject,
                    f("next_hop_keep"),
                    "next_hop_self and next_hop_keep are both true; set one",
                ))
            }
            (true, false) => NextHopMode::SelfAddress,
            (false, true) => NextHopMode::Keep,
            (false, false) => NextHopMode::Default,
        };

        let next_hop_v4 = pick!(next_hop_v4).or(self.globals.next_hop_v4);
        if let Some(a) = next_hop_v4 {
            check_next_hop_v4(subject, &f("next_hop_v4"), a)?;
        }
        let next_hop_v6 = pick!(next_hop_v6).or(self.globals.next_hop_v6);
        if let Some(a) = next_hop_v6 {
            check_next_hop_v6(subject, &f("next_hop_v6"), a)?;
        }

        let g = &self.globals.gr;
        let pgr = p.graceful_restart.as_ref();
        let tgr = t.and_then(|t| t.graceful_restart.as_ref());
        macro_rules! gr_pick {
            ($field:ident) => {
                pgr.and_then(|x| x.$field)
                    .or_else(|| tgr.and_then(|x| x.$field))
            };
        }
        let restart_time = match gr_pick!(restart_time_secs) {
            Some(r) if r > MAX_GR_RESTART_TIME => {
                return Err(invalid(
                    subject,
                    f("graceful_restart.restart_time_secs"),
                    format!("restart time {r} s is too long, use at most {MAX_GR_RESTART_TIME} (12-bit field)"),
                ))
            }
            Some(r) => secs(r),
            None => g.restart_time,
        };
        let stale_time = match gr_pick!(stale_time_secs) {
            Some(0) => {
                return Err(invalid(
                    subject,
                    f("graceful_restart.stale_time_secs"),
                    STALE_TIME_ZERO,
                ))
            }
            Some(t) => secs(t),
            None => g.stale_time,
        };
        let graceful_restart = PeerGracefulRestart {
            enabled: gr_pick!(enabled).unwrap_or(g.enabled),
            restart_time,
            stale_time,
        };

        let families = match pick!(families) {
            Some(names) => {
                if names.is_empty() {
                    return Err(invalid(
                        subject,
                        f("families"),
                        "no address family; list ipv4-unicast and/or ipv6-unicast",
                    ));
                }
                let mut out = Vec::with_capacity(names.len());
                for (i, n) in names.iter().enumerate() {
                    let fam = match n.as_str() {
                        "ipv4-unicast" => Family::IPV4_UNICAST,
                        "ipv6-unicast" => Family::IPV6_UNICAST,
                        other => {
                            return Err(invalid(
                                subject,
                                format!("{path}.families[{i}]"),
                                format!(
                                    "unknown family \"{other}\", use ipv4-unicast or ipv6-unicast"
                                ),
                            ))
                        }
                    };
                    if out.contains(&fam) {
                        return Err(invalid(
                            subject,
                            format!("{path}.families[{i}]"),
                            format!("{fam} is listed twice; remove one"),
                        ));
                    }
                    out.push(fam);
                }
                out
            }
            None => match address {
                Some(IpAddr::V4(_)) => vec![Family::IPV4_UNICAST],
                Some(IpAddr::V6(_)) => vec![Family::IPV6_UNICAST],
                None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            },
        };

        let max_prefix = match pick!(max_prefix) {
            Some(m) => {
                if m.limit == 0 {
                    return Err(invalid(
                        subject,
                        f("max_prefix.limit"),
                        "limit 0 is invalid, use >= 1 or remove max_prefix",
                    ));
                }
                if m.restart_after_secs == Some(0) {
                    return Err(invalid(
                        subject,
                        f("max_prefix.restart_after_secs"),
                        "0 s is invalid, use >= 1, or omit it to keep the session down until the config changes",
                    ));
                }
                Some(MaxPrefix {
                    limit: m.limit,
                    restart_after: m.restart_after_secs.map(secs),
                })
            }
            None => None,
        };

        let shutdown_message = pick!(shutdown_message);
        if let Some(m) = &shutdown_message {
            if m.len() > MAX_SHUTDOWN_MESSAGE {
                return Err(invalid(
                    subject,
                    f("shutdown_message"),
                    format!("shutdown message is {} octets, use at most {MAX_SHUTDOWN_MESSAGE} (RFC 9003)", m.len()),
                ));
            }
        }

        Ok(PeerOptions {
            remote_asn,
            description: pick!(description),
            passive: pick!(passive).unwrap_or(false),
            local_address,
            port,
            md5,
            hold_time: secs(hold_secs),
            keepalive: secs(keepalive_secs),
            connect_retry,
            delay_open,
            ttl,
            route_reflector_client: pick!(route_reflector_client).unwrap_or(false),
            next_hop,
            next_hop_v4,
            next_hop_v6,
            graceful_restart,
            families,
            max_prefix,
            import_policy: pick!(import_policy).unwrap_or_default(),
            export_policy: pick!(export_policy).unwrap_or_default(),
            shutdown_message,
        })
    }

    /// `password` or `password_file`: the peer's own pair overrides the template's.
    fn md5(
        &self,
        subject: &str,
        path: &str,
        p: &RawPeer,
        tmpl: Option<(&str, &RawPeer)>,
    ) -> Result<Option<Md5Key>, ConfigError> {
        let (src, src_path) = if p.password.is_some() || p.password_file.is_some() {
            (p, path.to_owned())
        } else if let Some((name, t)) = tmpl {
            (t, format!("template.{name}"))
        } else {
            return Ok(None);
        };
        let (key, field) = match (&src.password, &src.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    subject,
                    format!("{src_path}.password_file"),
                    "password and password_file are both set; use one (password_file keeps the secret out of the config)",
                ))
            }
            (Some(pw), None) => (pw.clone().into_bytes(), format!("{src_path}.password")),
            (None, Some(file)) => {
                let field = format!("{src_path}.password_file");
                let full = match self.base {
                    Some(base) if file.is_relative() => base.join(file),
                    _ => file.clone(),
                };
                let text = std::fs::read(&full).map_err(|source| ConfigError::PasswordFile {
                    subject: subject.to_owned(),
                    field: field.clone(),
                    path: full.clone(),
                    source,
                })?;
                // The key is the file's first line, without its line ending.
                let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                if line.is_empty() {
                    return Err(invalid(
                        subject,
                        field,
                        format!("password file {} is empty, put the TCP MD5 password on its first line", full.display()),
                    ));
                }
                (line, field)
            }
            (None, None) => return Ok(None),
        };
        let len = key.len();
        Md5Key::new(key).map(Some).map_err(|_| {
            invalid(subject, field, format!("TCP MD5 password of {len} octets is invalid, use 1 to {MD5_MAX_KEY_LEN} octets"))
        })
    }
}
