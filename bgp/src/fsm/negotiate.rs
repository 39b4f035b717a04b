//! Building our OPEN, validating the peer's OPEN against the configuration (RFC 4271 6.2,
//! RFC 6286, RFC 6793), capability negotiation (RFC 5492) into the two [`SessionContext`]s,
//! and the NOTIFICATIONs the FSM sends (Cease with RFC 4486 / RFC 9003 data, RFC 8538 Hard
//! Reset).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::fsm::config::{PeerConfig, StopReason};
use crate::wire::error::{cease_subcode, code, open_subcode};
use crate::wire::open::OpenError;
use crate::wire::{
    common_families, Capability, Family, GracefulRestartCap, Notification, Open, OptParam,
    SessionContext,
};

/// AS_TRANS (RFC 6793): the 2-octet `my_as` of a speaker whose AS does not fit.
pub const AS_TRANS: u16 = crate::wire::attr::AS_TRANS as u16;
/// The BGP version we speak.
pub const BGP_VERSION: u8 = 4;

/// What both sides agreed on in the OPEN exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub local_asn: u32,
    pub remote_asn: u32,
    pub local_id: Ipv4Addr,
    pub remote_id: Ipv4Addr,
    /// min(local, remote) hold time in seconds; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    /// Keepalive interval in seconds (a third of the hold time, or less if configured).
    pub keepalive_time: u16,
    /// Families both sides advertised (a side without any multiprotocol capability
    /// implies IPv4 unicast, RFC 4760 section 8).
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// Our graceful restart capability as sent.
    pub local_gr: Option<GracefulRestartCap>,
    /// The peer's graceful restart capability as received.
    pub remote_gr: Option<GracefulRestartCap>,
    /// Families whose received NLRI carry path ids.
    pub add_path_rx: Vec<Family>,
    /// Families whose sent NLRI carry path ids.
    pub add_path_tx: Vec<Family>,
    /// Context for decoding what the peer sends.
    pub rx: SessionContext,
    /// Context for encoding what we send.
    pub tx: SessionContext,
    /// The peer's OPEN, for status display.
    pub remote_open: Open,
}

impl Negotiated {
    /// The negotiated hold time, `None` when 0.
    pub fn hold(&self) -> Option<Duration> {
        (self.hold_time != 0).then(|| Duration::from_secs(u64::from(self.hold_time)))
    }

    /// The keepalive interval, `None` when the hold time is 0.
    pub fn keepalive(&self) -> Option<Duration> {
        (self.hold_time != 0 && self.keepalive_time != 0)
            .then(|| Duration::from_secs(u64::from(self.keepalive_time)))
    }

    /// Both sides advertised graceful restart (RFC 4724).
    pub fn graceful_restart(&self) -> bool {
        self.local_gr.is_some() && self.remote_gr.is_some()
    }

    /// Both sides set the RFC 8538 N bit: graceful restart also applies to NOTIFICATIONs
    /// other than Hard Reset, and hard teardowns must be sent as Hard Reset.
    pub fn gr_notification(&self) -> bool {
        matches!((&self.local_gr, &self.remote_gr), (Some(l), Some(r)) if l.notification && r.notification)
    }

    pub fn is_ebgp(&self) -> bool {
        self.local_asn != self.remote_asn
    }
}

/// Our OPEN for this configuration: `my_as` is AS_TRANS when our AS needs 4 octets; all
/// capabilities go into one Capabilities parameter.
pub fn build_open(config: &PeerConfig) -> Open {
    let mut caps: Vec<Capability> = config
        .families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    if config.route_refresh {
        caps.push(Capability::RouteRefresh);
    }
    if config.enhanced_route_refresh {
        caps.push(Capability::EnhancedRouteRefresh);
    }
    if config.extended_message {
        caps.push(Capability::ExtendedMessage);
    }
    if let Some(gr) = &config.graceful_restart {
        caps.push(Capability::GracefulRestart(gr.clone()));
    }
    caps.push(Capability::FourOctetAs(config.local_as));
    if !config.add_path.is_empty() {
        caps.push(Capability::AddPath(config.add_path.clone()));
    }
    caps.extend(config.extra_capabilities.iter().cloned());
    // `Open::new` puts AS_TRANS in `my_as` when the AS needs 4 octets.
    Open::new(config.local_as, config.hold_time, config.local_id, caps)
}

/// Negotiate a session from our OPEN and the peer's (assumed valid, see [`validate_open`]).
/// The codec contexts come from [`SessionContext::negotiate`]. The keepalive time is a
/// third of the negotiated hold time; [`crate::fsm::Peer`] lowers it further when a smaller
/// keepalive is configured.
pub fn negotiate(local: &Open, remote: &Open) -> Negotiated {
    let hold_time = local.hold_time.min(remote.hold_time);
    let (rx, tx) = SessionContext::negotiate(local, remote);
    Negotiated {
        local_asn: local.asn(),
        remote_asn: remote.asn(),
        local_id: local.bgp_id,
        remote_id: remote.bgp_id,
        hold_time,
        keepalive_time: hold_time / 3,
        families: common_families(local, remote),
        four_octet_as: rx.four_octet_as,
        extended_message: rx.extended_message,
        // The pre-standard Cisco code 128 does not count: its messages use type 128.
        route_refresh: local.route_refresh() && remote.route_refresh(),
        enhanced_route_refresh: local.enhanced_route_refresh() && remote.enhanced_route_refresh(),
        local_gr: local.graceful_restart().cloned(),
        remote_gr: remote.graceful_restart().cloned(),
        add_path_rx: rx.add_path.clone(),
        add_path_tx: tx.add_path.clone(),
        rx,
        tx,
        remote_open: remote.clone(),
    }
}

/// An OPEN we refuse: the NOTIFICATION to send and a message naming the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReject {
    pub notification: Notification,
    pub reason: String,
}

/// Check the peer's OPEN against the configuration (RFC 4271 section 6.2, RFC 6286,
/// RFC 6793): version, peer AS, hold time, BGP identifier, optional parameters.
pub fn validate_open(config: &PeerConfig, open: &Open) -> Result<(), OpenReject> {
    let reject = |e: OpenError| OpenReject {
        notification: e.notification(),
        reason: e.to_string(),
    };
    if open.version != BGP_VERSION {
        return Err(reject(OpenError::UnsupportedVersion {
            version: open.version,
        }));
    }
    let asn = open.asn();
    if !config.peer_as.accepts(asn, config.local_as) {
        return Err(OpenReject {
            notification: OpenError::BadPeerAs { asn }.notification(),
            reason: format!(
                "OPEN: peer AS {asn} is not the configured one ({:?}); fix the neighbour's AS",
                config.peer_as
            ),
        });
    }
    // RFC 6793 section 4.2.1: a 4-octet speaker whose AS fits in 2 octets must send it in
    // my_as; one whose AS does not fit sends AS_TRANS. A mismatch is a Bad Peer AS.
    let cap_as = open.capabilities().find_map(|c| match c {
        Capability::FourOctetAs(a) => Some(*a),
        _ => None,
    });
    if let Some(a) = cap_as {
        let expected = u16::try_from(a).unwrap_or(AS_TRANS);
        if open.my_as != expected && open.my_as != AS_TRANS {
            return Err(OpenReject {
                notification: Notification::new(code::OPEN_MESSAGE, open_subcode::BAD_PEER_AS, &[]),
                reason: format!(
                    "OPEN: my_as {} disagrees with the 4-octet AS capability {a}",
                    open.my_as
                ),
            });
        }
    }
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(reject(OpenError::UnacceptableHoldTime {
            hold_time: open.hold_time,
        }));
    }
    // RFC 6286: the identifier is a non-zero 32-bit number; for an internal peer it must
    // differ from ours.
    if open.bgp_id.is_unspecified() || (asn == config.local_as && open.bgp_id == config.local_id) {
        return Err(OpenReject {
            notification: OpenError::BadBgpIdentifier { id: open.bgp_id }.notification(),
            reason: format!(
                "OPEN: BGP identifier {} is zero or equal to ours on an internal session",
                open.bgp_id
            ),
        });
    }
    for p in &open.params {
        if let OptParam::Unknown { param_type, .. } = p {
            return Err(reject(OpenError::UnsupportedOptionalParameter {
                param_type: *param_type,
            }));
        }
    }
    let missing: Vec<Capability> = config
        .required_capabilities
        .iter()
        .filter(|want| !open.capabilities().any(|have| satisfies(have, want)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let codes: Vec<u8> = missing.iter().map(Capability::code).collect();
        return Err(OpenReject {
            notification: OpenError::unsupported_capabilities(&missing).notification(),
            reason: format!(
                "OPEN: the peer lacks required capabilities (codes {codes:?}); enable them on \
                 the peer or drop them from required_capabilities"
            ),
        });
    }
    Ok(())
}

/// Whether the advertised capability `have` satisfies the required `want`.
fn satisfies(have: &Capability, want: &Capability) -> bool {
    match (have, want) {
        (Capability::Multiprotocol(a), Capability::Multiprotocol(b)) => a == b,
        (Capability::AddPath(have), Capability::AddPath(want)) => want
            .iter()
            .all(|w| have.iter().any(|h| h.family == w.family)),
        _ => have.code() == want.code(),
    }
}

/// The shutdown communication of a received Cease / Administrative Shutdown or Reset
/// (RFC 9003), also inside an RFC 8538 Hard Reset; `None` when absent or malformed.
pub fn shutdown_message(n: &Notification) -> Option<String> {
    if is_hard_reset(n) {
        // RFC 8538 section 3: the data is the inner code, subcode and data.
        let (&inner_code, rest) = n.data.split_first()?;
        let (&inner_sub, data) = rest.split_first()?;
        return Notification::new(inner_code, inner_sub, data)
            .shutdown_message()?
            .ok();
    }
    n.shutdown_message()?.ok()
}

/// Wrap a NOTIFICATION in an RFC 8538 Hard Reset (Cease subcode 9, data = inner code,
/// subcode and data).
pub fn hard_reset(inner: &Notification) -> Notification {
    let mut data = Vec::with_capacity(inner.data.len() + 2);
    data.push(inner.code);
    data.push(inner.subcode);
    data.extend_from_slice(&inner.data);
    Notification::new(code::CEASE, cease_subcode::HARD_RESET, &data)
}

/// Whether a NOTIFICATION is an RFC 8538 Hard Reset.
pub fn is_hard_reset(n: &Notification) -> bool {
    n.code == code::CEASE && n.subcode == cease_subcode::HARD_RESET
}

/// The Cease NOTIFICATION for a stop reason; wrapped in a Hard Reset when `n_bit` (both
/// sides set the RFC 8538 N bit) and the reason calls for it.
pub fn stop_notification(reason: &StopReason, n_bit: bool) -> Notification {
    let (n, hard) = match reason {
        StopReason::AdminShutdown { message } => (
            Notification::cease_shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, message),
            true,
        ),
        StopReason::Deconfigured => (Notification::cease(cease_subcode::PEER_DECONFIGURED), true),
        StopReason::AdminReset { message, graceful } => (
            Notification::cease_shutdown(cease_subcode::ADMINISTRATIVE_RESET, message),
            !graceful,
        ),
        StopReason::ConfigChange => (
            Notification::cease(cease_subcode::OTHER_CONFIGURATION_CHANGE),
            false,
        ),
        StopReason::OutOfResources => (Notification::cease(cease_subcode::OUT_OF_RESOURCES), false),
        StopReason::MaxPrefix { family, limit } => {
            (Notification::max_prefixes(*family, *limit), true)
        }
    };
    if hard && n_bit {
        hard_reset(&n)
    } else {
        n
    }
}
