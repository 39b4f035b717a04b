//! NOTIFICATION (RFC 4271 section 4.5) with the RFC 9003 shutdown communication.

use bytes::Bytes;

/// A NOTIFICATION message: error code, subcode and data, kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Bytes,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: &[u8]) -> Self {
        Notification {
            code,
            subcode,
            data: Bytes::copy_from_slice(data),
        }
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
        use crate::wire::error::{code, header_subcode as sub};
        match *self {
            NotificationDecodeError::TooShort { length } => Notification::new(
                code::MESSAGE_HEADER,
                sub::BAD_MESSAGE_LENGTH,
                &length.to_be_bytes(),
            ),
        }
    }
}
