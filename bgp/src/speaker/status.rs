//! Status snapshot types ([`SpeakerStatus`]), serialisable to JSON.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::rib::Route;
use crate::wire::{AsSegmentType, Message, MpNextHop, Notification, PathAttributes};

/// The whole speaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeakerStatus {
    pub asn: u32,
    pub router_id: String,
    /// Set when this speaker is a route reflector.
    pub cluster_id: Option<String>,
    /// Restarting speaker: best-path selection is deferred (RFC 4724 4.1).
    pub selection_deferred: bool,
    pub shutting_down: bool,
    /// Seconds since the Unix epoch when the snapshot was taken (filled by the driver).
    pub unix_time: Option<f64>,
    pub peers: Vec<PeerStatus>,
    /// The Loc-RIB: every path of every prefix, the best one marked.
    pub routes: Vec<RouteStatus>,
    pub rib: RibStatus,
}

/// RIB totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibStatus {
    pub prefixes: usize,
    pub interned_attribute_sets: usize,
    pub update_groups: usize,
    pub decisions: u64,
    pub export_computations: u64,
}

/// One peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub address: String,
    pub remote_asn: u32,
    pub description: Option<String>,
    /// Accepted from a listen range.
    pub dynamic: bool,
    /// RFC 4271 state: Idle, Active, Connect, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Seconds in the current state.
    pub state_secs: f64,
    /// Seconds since the Unix epoch of the last state change (filled by the driver).
    pub since_unix: Option<f64>,
    /// Started and not administratively stopped.
    pub admin_up: bool,
    pub connections: Vec<ConnectionStatus>,
    pub last_error: Option<LastError>,
    /// What the established session negotiated.
    pub negotiated: Option<NegotiatedStatus>,
    /// NLRI announced by the peer (counted per UPDATE, including rejected ones).
    pub prefixes_received: u64,
    /// Routes in the Adj-RIB-In (after import policy), stale ones included.
    pub prefixes_accepted: usize,
    pub prefixes_stale: usize,
    pub prefixes_advertised: usize,
    pub messages_in: MessageCounters,
    pub messages_out: MessageCounters,
}

/// One TCP connection of a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub id: u64,
    pub direction: String,
    pub state: String,
}

/// How the last connection ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    pub reason: String,
    pub secs_ago: f64,
    pub detail: Option<String>,
    pub sent: Option<NotificationStatus>,
    pub received: Option<NotificationStatus>,
}

/// A NOTIFICATION, readable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationStatus {
    pub code: u8,
    pub subcode: u8,
    /// "Cease / Administrative Shutdown".
    pub text: String,
    /// RFC 9003 shutdown communication, when present.
    pub message: Option<String>,
    pub data_hex: String,
}

impl NotificationStatus {
    /// A Hard Reset (RFC 8538) is shown with the NOTIFICATION it wraps, e.g. "Cease / Hard
    /// Reset (Cease / Administrative Shutdown)", and `message` is the wrapped one's.
    pub fn from_notification(n: &Notification) -> Self {
        let mut text = Self::name(n);
        let mut message = n.shutdown_message().and_then(Result::ok);
        if crate::fsm::is_hard_reset(n) {
            if let (Some(&code), Some(&subcode), Some(rest)) =
                (n.data.first(), n.data.get(1), n.data.get(2..))
            {
                let inner = Notification::new(code, subcode, rest);
                text = format!("{text} ({})", Self::name(&inner));
                message = inner.shutdown_message().and_then(Result::ok);
            }
        }
        NotificationStatus {
            code: n.code,
            subcode: n.subcode,
            text,
            message,
            data_hex: hex_string(&n.data),
        }
    }

    fn name(n: &Notification) -> String {
        let code = n
            .code_name()
            .map_or_else(|| format!("code {}", n.code), str::to_owned);
        let sub = n
            .subcode_name()
            .map_or_else(|| format!("subcode {}", n.subcode), str::to_owned);
        format!("{code} / {sub}")
    }
}

/// Negotiated session parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiatedStatus {
    pub remote_id: String,
    pub remote_asn: u32,
    pub hold_time: u16,
    pub keepalive_time: u16,
    pub families: Vec<String>,
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub graceful_restart: bool,
    /// The peer's restart state bit (R) in its OPEN.
    pub peer_restarted: bool,
    pub add_path_rx: Vec<String>,
    pub add_path_tx: Vec<String>,
}

/// Message counters per type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCounters {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
    pub total: u64,
}

impl MessageCounters {
    pub(crate) fn count(&mut self, m: &Message) {
        let c = match m {
            Message::Open(_) => &mut self.open,
            Message::Update(_) => &mut self.update,
            Message::Notification(_) => &mut self.notification,
            Message::Keepalive => &mut self.keepalive,
            Message::RouteRefresh(_) => &mut self.route_refresh,
        };
        *c = c.saturating_add(1);
        self.total = self.total.saturating_add(1);
    }
}

/// One path in the Loc-RIB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub prefix: String,
    pub family: String,
    /// "local" or the peer's address.
    pub source: String,
    pub best: bool,
    pub stale: bool,
    pub path_id: u32,
    pub next_hop: Option<String>,
    pub attributes: AttributesStatus,
}

impl RouteStatus {
    pub fn from_route(r: &Route, best: bool) -> Self {
        RouteStatus {
            prefix: r.prefix.to_string(),
            family: r.family.to_string(),
            source: r
                .peer_address
                .map_or_else(|| "local".to_owned(), |a| a.to_string()),
            best,
            stale: r.stale,
            path_id: r.path_id,
            next_hop: r.next_hop.map(|a: IpAddr| a.to_string()),
            attributes: AttributesStatus::from_attrs(&r.attrs),
        }
    }
}

/// Every path attribute, readable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributesStatus {
    pub origin: Option<String>,
    /// "65001 65002 {65003,65004}".
    pub as_path: Option<String>,
    pub next_hop: Option<String>,
    pub mp_next_hop: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<String>,
    pub communities: Vec<String>,
    pub large_communities: Vec<String>,
    pub ext_communities: Vec<String>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    /// Unknown optional transitive attributes: "type=99 flags=0xe0 value=0102".
    pub unknown: Vec<String>,
}

impl AttributesStatus {
    pub fn from_attrs(a: &PathAttributes) -> Self {
        AttributesStatus {
            origin: a.origin.map(|o| format!("{o:?}").to_lowercase()),
            as_path: a.as_path.as_ref().map(|p| {
                p.segments
                    .iter()
                    .map(|s| {
                        let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
                        match s.kind {
                            AsSegmentType::Sequence => asns.join(" "),
                            AsSegmentType::Set => format!("{{{}}}", asns.join(",")),
                            AsSegmentType::ConfedSequence => format!("({})", asns.join(" ")),
                            AsSegmentType::ConfedSet => format!("[{}]", asns.join(",")),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            next_hop: a.next_hop.map(|n| n.to_string()),
            mp_next_hop: a.mp_reach.as_ref().map(|m| match &m.next_hop {
                MpNextHop::Ipv4(v) => v.to_string(),
                MpNextHop::Ipv6 { global, link_local } => match link_local {
                    Some(ll) => format!("{global} {ll}"),
                    None => global.to_string(),
                },
                MpNextHop::Other(b) => hex_string(b),
            }),
            med: a.med,
            local_pref: a.local_pref,
            atomic_aggregate: a.atomic_aggregate,
            aggregator: a.aggregator.map(|g| format!("{} {}", g.asn, g.address)),
            communities: a
                .communities
                .iter()
                .map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff))
                .collect(),
            large_communities: a
                .large_communities
                .iter()
                .map(|c| format!("{}:{}:{}", c.global_admin, c.local_data1, c.local_data2))
                .collect(),
            ext_communities: a.ext_communities.iter().map(|c| hex_string(&c.0)).collect(),
            originator_id: a.originator_id.map(|o| o.to_string()),
            cluster_list: a.cluster_list.iter().map(|c| c.to_string()).collect(),
            unknown: a
                .unknown
                .iter()
                .map(|u| {
                    format!(
                        "type={} flags={:#04x} value={}",
                        u.type_code,
                        u.flags,
                        hex_string(&u.value)
                    )
                })
                .collect(),
        }
    }
}

pub(crate) fn hex_string(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len().saturating_mul(2));
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}
