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
    AddPathDirection, Capability, Family, GracefulRestartCap, Notification, Open, OptParam,
    SessionContext,
};

/// AS_TRANS (RFC 6793): the 2-octet `my_as` of a speaker whose AS does not fit.
pub const AS_TRANS: u16 = 23456;
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
    let my_as = u16::try_from(config.local_as).unwrap_or(AS_TRANS);
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
    Open {
        version: BGP_VERSION,
        my_as,
        hold_time: config.hold_time,
        bgp_id: config.local_id,
        params: vec![OptParam::Capabilities(caps)],
        extended_params: false,
    }
}

fn families_of(open: &Open) -> Vec<Family> {
    let mut fams: Vec<Family> = Vec::new();
    for c in open.capabilities() {
        if let Capability::Multiprotocol(f) = c {
            if !fams.contains(f) {
                fams.push(*f);
            }
        }
    }
    if fams.is_empty() {
        fams.push(Family::IPV4_UNICAST);
    }
    fams
}

fn has_cap(open: &Open, pred: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities().any(pred)
}

fn gr_of(open: &Open) -> Option<GracefulRestartCap> {
    open.capabilities().find_map(|c| match c {
        Capability::GracefulRestart(g) => Some(g.clone()),
        _ => None,
    })
}

fn add_path_of(open: &Open, family: Family) -> Option<AddPathDirection> {
    open.capabilities().find_map(|c| match c {
        Capability::AddPath(entries) => entries
            .iter()
            .find(|e| e.family == family)
            .map(|e| e.direction),
        _ => None,
    })
}

fn can_send(d: Option<AddPathDirection>) -> bool {
    matches!(d, Some(AddPathDirection::Send | AddPathDirection::Both))
}

fn can_receive(d: Option<AddPathDirection>) -> bool {
    matches!(d, Some(AddPathDirection::Receive | AddPathDirection::Both))
}

/// Negotiate a session from our OPEN and the peer's (assumed valid, see [`validate_open`]).
/// The keepalive time is a third of the negotiated hold time; [`crate::fsm::Peer`] lowers
/// it further when a smaller keepalive is configured.
pub fn negotiate(local: &Open, remote: &Open) -> Negotiated {
    let hold_time = local.hold_time.min(remote.hold_time);
    let local_fams = families_of(local);
    let remote_fams = families_of(remote);
    let families: Vec<Family> = local_fams
        .iter()
        .copied()
        .filter(|f| remote_fams.contains(f))
        .collect();
    let four = |o: &Open| has_cap(o, |c| matches!(c, Capability::FourOctetAs(_)));
    let ext = |o: &Open| has_cap(o, |c| matches!(c, Capability::ExtendedMessage));
    // The pre-standard Cisco code 128 does not count: its messages use type 128.
    let rr = |o: &Open| has_cap(o, |c| matches!(c, Capability::RouteRefresh));
    let err = |o: &Open| has_cap(o, |c| matches!(c, Capability::EnhancedRouteRefresh));
    let four_octet_as = four(local) && four(remote);
    let extended_message = ext(local) && ext(remote);
    let mut add_path_rx = Vec::new();
    let mut add_path_tx = Vec::new();
    for f in &families {
        let l = add_path_of(local, *f);
        let r = add_path_of(remote, *f);
        if can_receive(l) && can_send(r) {
            add_path_rx.push(*f);
        }
        if can_send(l) && can_receive(r) {
            add_path_tx.push(*f);
        }
    }
    let rx = SessionContext {
        four_octet_as,
        extended_message,
        add_path: add_path_rx.clone(),
    };
    let tx = SessionContext {
        four_octet_as,
        extended_message,
        add_path: add_path_tx.clone(),
    };
    Negotiated {
        local_asn: local.asn(),
        remote_asn: remote.asn(),
        local_id: local.bgp_id,
        remote_id: remote.bgp_id,
        hold_time,
        keepalive_time: hold_time / 3,
        families,
        four_octet_as,
        extended_message,
        route_refresh: rr(local) && rr(remote),
        enhanced_route_refresh: err(local) && err(remote),
        local_gr: gr_of(local),
        remote_gr: gr_of(remote),
        add_path_rx,
        add_path_tx,
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
    Ok(())
}

/// The RFC 9003 shutdown communication data: a length octet and up to 255 octets of UTF-8,
/// cut at a character boundary.
pub fn shutdown_communication(message: &str) -> Vec<u8> {
    let mut end = message.len().min(255);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let text = message.get(..end).unwrap_or("");
    let mut data = Vec::with_capacity(text.len() + 1);
    data.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
    data.extend_from_slice(text.as_bytes());
    data
}

/// The shutdown communication of a received Cease / Administrative Shutdown or Reset
/// (RFC 9003), also inside a Hard Reset; `None` when absent or malformed.
pub fn shutdown_message(n: &Notification) -> Option<String> {
    let (sub, data) = if n.code == code::CEASE && n.subcode == cease_subcode::HARD_RESET {
        // RFC 8538 section 3: the data is the inner code, subcode and data.
        match n.data.get(..2) {
            Some([c, s]) if *c == code::CEASE => (*s, n.data.get(2..)?),
            _ => return None,
        }
    } else if n.code == code::CEASE {
        (n.subcode, n.data.as_ref())
    } else {
        return None;
    };
    if sub != cease_subcode::ADMINISTRATIVE_SHUTDOWN && sub != cease_subcode::ADMINISTRATIVE_RESET {
        return None;
    }
    let (&len, rest) = data.split_first()?;
    let text = rest.get(..usize::from(len))?;
    String::from_utf8(text.to_vec()).ok()
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
    let (sub, data, hard) = match reason {
        StopReason::AdminShutdown { message } => (
            cease_subcode::ADMINISTRATIVE_SHUTDOWN,
            shutdown_communication(message),
            true,
        ),
        StopReason::Deconfigured => (cease_subcode::PEER_DECONFIGURED, Vec::new(), true),
        StopReason::AdminReset { message, graceful } => (
            cease_subcode::ADMINISTRATIVE_RESET,
            shutdown_communication(message),
            !graceful,
        ),
        StopReason::ConfigChange => (cease_subcode::OTHER_CONFIGURATION_CHANGE, Vec::new(), false),
        StopReason::OutOfResources => (cease_subcode::OUT_OF_RESOURCES, Vec::new(), false),
        StopReason::MaxPrefix { family, limit } => {
            // RFC 4486 section 4: AFI (2), SAFI (1), prefix upper bound (4).
            let mut d = Vec::with_capacity(7);
            d.extend_from_slice(&family.afi.0.to_be_bytes());
            d.push(family.safi.0);
            d.extend_from_slice(&limit.to_be_bytes());
            (cease_subcode::MAX_PREFIXES_REACHED, d, true)
        }
    };
    let n = Notification::new(code::CEASE, sub, &data);
    if hard && n_bit {
        hard_reset(&n)
    } else {
        n
    }
}
