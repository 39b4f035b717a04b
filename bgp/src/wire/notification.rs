//! NOTIFICATION (RFC 4271 section 4.5) with the RFC 9003 shutdown communication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! RFC 9003 data for Cease / Administrative Shutdown and Administrative Reset:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Length        | Shutdown Communication (UTF-8, 0..=255 octets)...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::error::{cease_subcode, code, fsm_subcode};
use crate::wire::types::Family;

/// Longest RFC 9003 shutdown communication, in octets.
pub const MAX_SHUTDOWN_MESSAGE_LEN: usize = 255;

/// A NOTIFICATION message: error code, subcode and data, kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Bytes,
}

/// An RFC 9003 shutdown communication that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShutdownMessageError {
    #[error("shutdown communication length {length} overruns the {available} octets of data")]
    Truncated { length: usize, available: usize },
    #[error("shutdown communication is not valid UTF-8")]
    InvalidUtf8,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: &[u8]) -> Self {
        Notification {
            code,
            subcode,
            data: Bytes::copy_from_slice(data),
        }
    }

    /// Hold Timer Expired (RFC 4271 section 6.5).
    pub fn hold_timer_expired() -> Self {
        Notification::new(code::HOLD_TIMER_EXPIRED, 0, &[])
    }

    /// Send Hold Timer Expired (RFC 9687).
    pub fn send_hold_timer_expired() -> Self {
        Notification::new(code::SEND_HOLD_TIMER_EXPIRED, 0, &[])
    }

    /// Finite State Machine Error with an RFC 6608 subcode ([`fsm_subcode`]).
    pub fn fsm_error(subcode: u8) -> Self {
        Notification::new(code::FSM, subcode, &[])
    }

    /// Cease with `subcode` ([`cease_subcode`]) and no data.
    pub fn cease(subcode: u8) -> Self {
        Notification::new(code::CEASE, subcode, &[])
    }

    /// Cease / Maximum Number of Prefixes Reached with the RFC 4486 section 4 data: AFI (2),
    /// SAFI (1), upper bound (4).
    pub fn max_prefixes(family: Family, limit: u32) -> Self {
        let mut data = [0u8; 7];
        data[..2].copy_from_slice(&family.afi.0.to_be_bytes());
        data[2] = family.safi.0;
        data[3..].copy_from_slice(&limit.to_be_bytes());
        Notification::new(code::CEASE, cease_subcode::MAX_PREFIXES_REACHED, &data)
    }

    /// Cease / Administrative Shutdown (subcode 2) or Administrative Reset (subcode 4) with
    /// an RFC 9003 shutdown communication. `message` is cut to 255 octets at a UTF-8
    /// character boundary. Any other subcode gets the same data layout, for tests.
    pub fn cease_shutdown(subcode: u8, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE_LEN);
        while !message.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        let text = message.as_bytes().get(..end).unwrap_or_default();
        let mut data = BytesMut::with_capacity(text.len().saturating_add(1));
        // end <= 255 by construction.
        data.put_u8(u8::try_from(text.len()).unwrap_or(u8::MAX));
        data.put_slice(text);
        Notification {
            code: code::CEASE,
            subcode,
            data: data.freeze(),
        }
    }

    /// The RFC 9003 shutdown communication: `None` unless this is Cease / Administrative
    /// Shutdown or Administrative Reset with a non-empty data field. Octets after the
    /// communication are ignored.
    pub fn shutdown_message(&self) -> Option<Result<String, ShutdownMessageError>> {
        if self.code != code::CEASE
            || !matches!(
                self.subcode,
                cease_subcode::ADMINISTRATIVE_SHUTDOWN | cease_subcode::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (&length, rest) = self.data.split_first()?;
        let length = usize::from(length);
        let Some(text) = rest.get(..length) else {
            return Some(Err(ShutdownMessageError::Truncated {
                length,
                available: rest.len(),
            }));
        };
        Some(
            std::str::from_utf8(text)
                .map(str::to_owned)
                .map_err(|_| ShutdownMessageError::InvalidUtf8),
        )
    }

    /// The RFC 4486 data of Cease / Maximum Number of Prefixes Reached, when present.
    pub fn max_prefixes_data(&self) -> Option<(Family, u32)> {
        if self.code != code::CEASE || self.subcode != cease_subcode::MAX_PREFIXES_REACHED {
            return None;
        }
        match *self.data {
            [a0, a1, safi, l0, l1, l2, l3] => Some((
                Family::new(
                    crate::wire::types::Afi(u16::from_be_bytes([a0, a1])),
                    crate::wire::types::Safi(safi),
                ),
                u32::from_be_bytes([l0, l1, l2, l3]),
            )),
            _ => None,
        }
    }

    /// Decode a NOTIFICATION body (the octets after the header).
    pub fn decode_body(body: &[u8]) -> Result<Notification, NotificationDecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification::new(*code, *subcode, data)),
            _ => Err(NotificationDecodeError::TooShort {
                length: u16::try_from(body.len().saturating_add(crate::wire::HEADER_LEN))
                    .unwrap_or(u16::MAX),
            }),
        }
    }

    /// Append the NOTIFICATION body (without the header) to `out`.
    pub fn encode_body(&self, out: &mut BytesMut) {
        out.reserve(self.data.len().saturating_add(2));
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }

    /// Name of the error code, e.g. "Cease".
    pub fn code_name(&self) -> Option<&'static str> {
        Some(match self.code {
            code::MESSAGE_HEADER => "Message Header Error",
            code::OPEN_MESSAGE => "OPEN Message Error",
            code::UPDATE_MESSAGE => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            code::SEND_HOLD_TIMER_EXPIRED => "Send Hold Timer Expired",
            _ => return None,
        })
    }

    /// Name of the subcode for this code, e.g. "Administrative Shutdown".
    pub fn subcode_name(&self) -> Option<&'static str> {
        use crate::wire::error::{
            header_subcode as h, open_subcode as o, route_refresh_subcode as r, update_subcode as u,
        };
        Some(match (self.code, self.subcode) {
            (code::MESSAGE_HEADER, h::CONNECTION_NOT_SYNCHRONIZED) => "Connection Not Synchronized",
            (code::MESSAGE_HEADER, h::BAD_MESSAGE_LENGTH) => "Bad Message Length",
            (code::MESSAGE_HEADER, h::BAD_MESSAGE_TYPE) => "Bad Message Type",
            (code::OPEN_MESSAGE, o::UNSPECIFIC) => "Unspecific",
            (code::OPEN_MESSAGE, o::UNSUPPORTED_VERSION_NUMBER) => "Unsupported Version Number",
            (code::OPEN_MESSAGE, o::BAD_PEER_AS) => "Bad Peer AS",
            (code::OPEN_MESSAGE, o::BAD_BGP_IDENTIFIER) => "Bad BGP Identifier",
            (code::OPEN_MESSAGE, o::UNSUPPORTED_OPTIONAL_PARAMETER) => {
                "Unsupported Optional Parameter"
            }
            (code::OPEN_MESSAGE, o::UNACCEPTABLE_HOLD_TIME) => "Unacceptable Hold Time",
            (code::OPEN_MESSAGE, o::UNSUPPORTED_CAPABILITY) => "Unsupported Capability",
            (code::OPEN_MESSAGE, 8) => "Role Mismatch",
            (code::UPDATE_MESSAGE, u::MALFORMED_ATTRIBUTE_LIST) => "Malformed Attribute List",
            (code::UPDATE_MESSAGE, u::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE) => {
                "Unrecognized Well-known Attribute"
            }
            (code::UPDATE_MESSAGE, u::MISSING_WELL_KNOWN_ATTRIBUTE) => {
                "Missing Well-known Attribute"
            }
            (code::UPDATE_MESSAGE, u::ATTRIBUTE_FLAGS_ERROR) => "Attribute Flags Error",
            (code::UPDATE_MESSAGE, u::ATTRIBUTE_LENGTH_ERROR) => "Attribute Length Error",
            (code::UPDATE_MESSAGE, u::INVALID_ORIGIN_ATTRIBUTE) => "Invalid ORIGIN Attribute",
            (code::UPDATE_MESSAGE, u::INVALID_NEXT_HOP_ATTRIBUTE) => "Invalid NEXT_HOP Attribute",
            (code::UPDATE_MESSAGE, u::OPTIONAL_ATTRIBUTE_ERROR) => "Optional Attribute Error",
            (code::UPDATE_MESSAGE, u::INVALID_NETWORK_FIELD) => "Invalid Network Field",
            (code::UPDATE_MESSAGE, u::MALFORMED_AS_PATH) => "Malformed AS_PATH",
            (code::FSM, fsm_subcode::UNSPECIFIED) => "Unspecified Error",
            (code::FSM, fsm_subcode::OPEN_SENT) => "Receive Unexpected Message in OpenSent State",
            (code::FSM, fsm_subcode::OPEN_CONFIRM) => {
                "Receive Unexpected Message in OpenConfirm State"
            }
            (code::FSM, fsm_subcode::ESTABLISHED) => {
                "Receive Unexpected Message in Established State"
            }
            (code::CEASE, cease_subcode::MAX_PREFIXES_REACHED) => {
                "Maximum Number of Prefixes Reached"
            }
            (code::CEASE, cease_subcode::ADMINISTRATIVE_SHUTDOWN) => "Administrative Shutdown",
            (code::CEASE, cease_subcode::PEER_DECONFIGURED) => "Peer De-configured",
            (code::CEASE, cease_subcode::ADMINISTRATIVE_RESET) => "Administrative Reset",
            (code::CEASE, cease_subcode::CONNECTION_REJECTED) => "Connection Rejected",
            (code::CEASE, cease_subcode::OTHER_CONFIGURATION_CHANGE) => {
                "Other Configuration Change"
            }
            (code::CEASE, cease_subcode::CONNECTION_COLLISION_RESOLUTION) => {
                "Connection Collision Resolution"
            }
            (code::CEASE, cease_subcode::OUT_OF_RESOURCES) => "Out of Resources",
            (code::CEASE, cease_subcode::HARD_RESET) => "Hard Reset",
            (code::CEASE, cease_subcode::BFD_DOWN) => "BFD Down",
            (code::ROUTE_REFRESH, r::INVALID_MESSAGE_LENGTH) => "Invalid Message Length",
            _ => return None,
        })
    }
}

impl fmt::Display for Notification {
    /// `Cease / Administrative Shutdown: "maintenance"`, `Message Header Error / Bad Message
    /// Length (data 00 0f)`, `code 42 / subcode 7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code_name() {
            Some(name) => f.write_str(name)?,
            None => write!(f, "code {}", self.code)?,
        }
        match self.subcode_name() {
            Some(name) => write!(f, " / {name}")?,
            // Codes 4 and 8 have no subcodes: only show a non-zero one.
            None if self.subcode == 0 && self.code_name().is_some() => {}
            None => write!(f, " / subcode {}", self.subcode)?,
        }
        match self.shutdown_message() {
            Some(Ok(text)) => return write!(f, ": {text:?}"),
            Some(Err(e)) => write!(f, " ({e})")?,
            None => {}
        }
        if let Some((family, limit)) = self.max_prefixes_data() {
            return write!(f, ": {family}, limit {limit}");
        }
        if !self.data.is_empty() {
            f.write_str(" (data")?;
            for b in self.data.iter().take(32) {
                write!(f, " {b:02x}")?;
            }
            if self.data.len() > 32 {
                write!(f, " ... {} octets", self.data.len())?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A NOTIFICATION message whose own framing is wrong (shorter than code + subcode).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotificationDecodeError {
    #[error("NOTIFICATION of {length} octets is too short for code and subcode")]
    TooShort { length: u16 },
}

impl NotificationDecodeError {
    /// RFC 4271 section 6.1: a length too small for the message type is a header error.
    pub fn notification(&self) -> Notification {
        use crate::wire::error::header_subcode as sub;
        match *self {
            NotificationDecodeError::TooShort { length } => Notification::new(
                code::MESSAGE_HEADER,
                sub::BAD_MESSAGE_LENGTH,
                &length.to_be_bytes(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_display() {
        let n = Notification::cease_shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "maintenance");
        assert_eq!(
            n.to_string(),
            "Cease / Administrative Shutdown: \"maintenance\""
        );
        assert_eq!(&n.data[..], b"\x0bmaintenance");
        assert_eq!(n.shutdown_message(), Some(Ok("maintenance".to_owned())));
    }

    #[test]
    fn shutdown_truncates_on_char_boundary() {
        // 127 two-octet characters = 254 octets, then one more: 256 octets.
        let text: String = "é".repeat(128);
        let n = Notification::cease_shutdown(cease_subcode::ADMINISTRATIVE_RESET, &text);
        assert_eq!(n.data[0], 254);
        assert_eq!(n.data.len(), 255);
        assert_eq!(n.shutdown_message().unwrap().unwrap(), "é".repeat(127));
        let ascii = "x".repeat(300);
        let n = Notification::cease_shutdown(cease_subcode::ADMINISTRATIVE_RESET, &ascii);
        assert_eq!(n.data[0], 255);
        assert_eq!(n.data.len(), 256);
    }

    #[test]
    fn shutdown_message_errors() {
        let n = Notification::new(code::CEASE, 2, &[5, b'a']);
        assert_eq!(
            n.shutdown_message(),
            Some(Err(ShutdownMessageError::Truncated {
                length: 5,
                available: 1
            }))
        );
        let n = Notification::new(code::CEASE, 4, &[2, 0xc3, 0x28]);
        assert_eq!(
            n.shutdown_message(),
            Some(Err(ShutdownMessageError::InvalidUtf8))
        );
        assert_eq!(Notification::cease(2).shutdown_message(), None);
        assert_eq!(Notification::cease(3).shutdown_message(), None);
        assert_eq!(
            Notification::new(code::CEASE, 2, &[0]).shutdown_message(),
            Some(Ok(String::new()))
        );
    }

    #[test]
    fn display_names() {
        assert_eq!(
            Notification::hold_timer_expired().to_string(),
            "Hold Timer Expired"
        );
        assert_eq!(
            Notification::new(1, 2, &[0, 15]).to_string(),
            "Message Header Error / Bad Message Length (data 00 0f)"
        );
        assert_eq!(
            Notification::new(42, 7, &[]).to_string(),
            "code 42 / subcode 7"
        );
        assert_eq!(
            Notification::fsm_error(fsm_subcode::OPEN_CONFIRM).to_string(),
            "Finite State Machine Error / Receive Unexpected Message in OpenConfirm State"
        );
    }

    #[test]
    fn max_prefixes_data() {
        let n = Notification::max_prefixes(Family::IPV6_UNICAST, 1000);
        assert_eq!((n.code, n.subcode), (6, 1));
        assert_eq!(&n.data[..], &[0, 2, 1, 0, 0, 0x03, 0xe8]);
        assert_eq!(n.max_prefixes_data(), Some((Family::IPV6_UNICAST, 1000)));
        assert_eq!(
            n.to_string(),
            "Cease / Maximum Number of Prefixes Reached: ipv6-unicast, limit 1000"
        );
        // Without RFC 4486 data (older speakers), the plain form.
        assert_eq!(
            Notification::cease(cease_subcode::MAX_PREFIXES_REACHED).to_string(),
            "Cease / Maximum Number of Prefixes Reached"
        );
    }
}
