//! Decode and encode errors. A decode error *is* the NOTIFICATION to send: every variant
//! maps to the exact RFC 4271 section 6 code, subcode and data via
//! [`DecodeError::notification`].
//!
//! Each message kind owns its error enum (next to its decoder); this module joins them.

use crate::wire::notification::Notification;
use thiserror::Error;

/// NOTIFICATION error codes (RFC 4271 section 4.5, RFC 7313).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
    /// RFC 9687.
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;
}

/// Message Header error subcodes (RFC 4271 section 6.1).
pub mod header_subcode {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message error subcodes (RFC 4271 section 6.2, RFC 5492, RFC 9234).
pub mod open_subcode {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// UPDATE Message error subcodes (RFC 4271 section 6.3).
pub mod update_subcode {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// FSM error subcodes (RFC 6608).
pub mod fsm_subcode {
    pub const UNSPECIFIED: u8 = 0;
    pub const OPEN_SENT: u8 = 1;
    pub const OPEN_CONFIRM: u8 = 2;
    pub const ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486, RFC 9003).
pub mod cease_subcode {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// RFC 8538.
    pub const HARD_RESET: u8 = 9;
    /// RFC 9384.
    pub const BFD_DOWN: u8 = 10;
}

/// ROUTE-REFRESH message error subcodes (RFC 7313).
pub mod route_refresh_subcode {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// A message that could not be decoded. [`DecodeError::notification`] gives the NOTIFICATION
/// that RFC 4271 section 6 (or RFC 7606 for a session reset) requires in reply.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error(transparent)]
    Header(#[from] crate::wire::message::HeaderError),
    #[error(transparent)]
    Open(#[from] crate::wire::open::OpenError),
    #[error(transparent)]
    Update(#[from] crate::wire::update::UpdateError),
    #[error(transparent)]
    Notification(#[from] crate::wire::notification::NotificationDecodeError),
    #[error(transparent)]
    RouteRefresh(#[from] crate::wire::route_refresh::RouteRefreshError),
}

impl DecodeError {
    /// The NOTIFICATION to send in reply to this malformed message.
    pub fn notification(&self) -> Notification {
        match self {
            DecodeError::Header(e) => e.notification(),
            DecodeError::Open(e) => e.notification(),
            DecodeError::Update(e) => e.notification(),
            DecodeError::Notification(e) => e.notification(),
            DecodeError::RouteRefresh(e) => e.notification(),
        }
    }
}

/// A message that cannot be encoded in the given session context.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error(
        "{kind} message of {length} octets exceeds the session maximum of {max}; \
         split the NLRI over more UPDATEs or negotiate the extended message capability"
    )]
    TooLong {
        kind: &'static str,
        length: usize,
        max: usize,
    },
    #[error("{what} does not fit its length field ({length} octets, at most {max})")]
    FieldTooLong {
        what: &'static str,
        length: usize,
        max: usize,
    },
    #[error("{0}")]
    Invalid(&'static str),
}
