//! OPEN (RFC 4271 section 4.2), optional parameters (with the RFC 9072 extended length) and
//! capabilities (RFC 5492).

use std::net::Ipv4Addr;

use bytes::Bytes;

use crate::wire::notification::Notification;
use crate::wire::types::Family;

/// An OPEN message. `my_as` is the 2-octet field on the wire (AS_TRANS, 23456, when the real
/// AS does not fit); the real AS is in [`Capability::FourOctetAs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Optional parameters in wire order, so re-encoding gives the same bytes (BIRD packs all
    /// capabilities into one parameter, FRR sends one parameter per capability).
    pub params: Vec<OptParam>,
    /// The optional parameters were encoded in the RFC 9072 extended format.
    pub extended_params: bool,
}

/// One optional parameter of an OPEN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptParam {
    /// Parameter type 2 (RFC 5492), holding one or more capabilities.
    Capabilities(Vec<Capability>),
    /// Any other parameter type, kept byte for byte (decoding one is an "Unsupported
    /// Optional Parameter" error at session level, not in the codec).
    Unknown { param_type: u8, value: Bytes },
}

/// Graceful restart capability (RFC 4724, with the RFC 8538 N bit).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartCap {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538): the sender supports graceful restart on NOTIFICATION.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Per family: the F bit (forwarding state preserved).
    pub families: Vec<(Family, bool)>,
}

/// Add-path send/receive mode (RFC 7911 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddPathDirection {
    Receive,
    Send,
    Both,
    /// A value outside 1..=3, kept for round trips; it negotiates nothing.
    Other(u8),
}

/// One family entry of the add-path capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddPathEntry {
    pub family: Family,
    pub direction: AddPathDirection,
}

/// A capability (RFC 5492). Unknown ones are kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Code 1 (RFC 4760).
    Multiprotocol(Family),
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 6 (RFC 8654).
    ExtendedMessage,
    /// Code 64 (RFC 4724, RFC 8538).
    GracefulRestart(GracefulRestartCap),
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Code 69 (RFC 7911).
    AddPath(Vec<AddPathEntry>),
    /// Code 70 (RFC 7313).
    EnhancedRouteRefresh,
    /// Code 73 (draft-walton-bgp-hostname-capability), as FRR sends it.
    Fqdn { hostname: Bytes, domain: Bytes },
    /// Any other code, kept byte for byte.
    Unknown { code: u8, value: Bytes },
}

impl Open {
    /// All capabilities across all capability parameters, in wire order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flat_map(|p| match p {
            OptParam::Capabilities(caps) => caps.as_slice(),
            OptParam::Unknown { .. } => &[],
        })
    }

    /// The sender's AS: the 4-octet AS capability if present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }
}

/// An OPEN message that violates RFC 4271 section 6.2 at the codec level. Checks that need
/// configuration (peer AS, hold time policy, BGP identifier collision) belong to the FSM,
/// which builds the same NOTIFICATIONs through [`OpenError::notification`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("OPEN: BGP version {version} is not supported, use version 4")]
    UnsupportedVersion { version: u8 },
    #[error("OPEN: peer AS {asn} is not the configured one")]
    BadPeerAs { asn: u32 },
    #[error("OPEN: BGP identifier {id} is not a valid unicast address")]
    BadBgpIdentifier { id: Ipv4Addr },
    #[error("OPEN: optional parameter type {param_type} is not supported")]
    UnsupportedOptionalParameter { param_type: u8 },
    #[error("OPEN: hold time {hold_time} s is invalid, use 0 or >= 3")]
    UnacceptableHoldTime { hold_time: u16 },
    #[error("OPEN: malformed ({reason})")]
    Malformed { reason: &'static str },
    #[error("OPEN: message length {length} is invalid")]
    BadLength { length: u16 },
}

impl OpenError {
    /// The NOTIFICATION for this error (RFC 4271 section 6.2).
    pub fn notification(&self) -> Notification {
        use crate::wire::error::{code, header_subcode, open_subcode as sub};
        match *self {
            OpenError::UnsupportedVersion { .. } => {
                // Data: the largest locally supported version number, in 2 octets.
                Notification::new(code::OPEN_MESSAGE, sub::UNSUPPORTED_VERSION_NUMBER, &[0, 4])
            }
            OpenError::BadPeerAs { .. } => Notification::new(code::OPEN_MESSAGE, sub::BAD_PEER_AS, &[]),
            OpenError::BadBgpIdentifier { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::BAD_BGP_IDENTIFIER, &[])
            }
            OpenError::UnsupportedOptionalParameter { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::UNSUPPORTED_OPTIONAL_PARAMETER, &[])
            }
            OpenError::UnacceptableHoldTime { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::UNACCEPTABLE_HOLD_TIME, &[])
            }
            OpenError::Malformed { .. } => Notification::new(code::OPEN_MESSAGE, sub::UNSPECIFIC, &[]),
            OpenError::BadLength { length } => Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                &length.to_be_bytes(),
            ),
        }
    }
}
