//! The BGP message header (RFC 4271 section 4.1) and the message enum.

use crate::wire::notification::Notification;
use crate::wire::open::Open;
use crate::wire::route_refresh::RouteRefresh;
use crate::wire::update::Update;

/// The 16-octet all-ones marker.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Marker (16) + length (2) + type (1).
pub const HEADER_LEN: usize = 19;

/// BGP message type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

/// A decoded BGP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Errors in the message header (RFC 4271 section 6.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("message header: marker is not all ones (connection not synchronized)")]
    ConnectionNotSynchronized,
    #[error("message header: length {length} is invalid for this message type and session")]
    BadMessageLength { length: u16 },
    #[error("message header: unknown message type {0}")]
    BadMessageType(u8),
}

impl HeaderError {
    /// The NOTIFICATION for this error (RFC 4271 section 6.1).
    pub fn notification(&self) -> Notification {
        use crate::wire::error::{code, header_subcode as sub};
        match *self {
            HeaderError::ConnectionNotSynchronized => {
                Notification::new(code::MESSAGE_HEADER, sub::CONNECTION_NOT_SYNCHRONIZED, &[])
            }
            HeaderError::BadMessageLength { length } => Notification::new(
                code::MESSAGE_HEADER,
                sub::BAD_MESSAGE_LENGTH,
                &length.to_be_bytes(),
            ),
            HeaderError::BadMessageType(t) => {
                Notification::new(code::MESSAGE_HEADER, sub::BAD_MESSAGE_TYPE, &[t])
            }
        }
    }
}
