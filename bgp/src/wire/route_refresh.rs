//! ROUTE-REFRESH (RFC 2918) with the RFC 7313 BoRR / EoRR subtypes.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtype| SAFI |
//! +-------+-------+-------+-------+
//! ```
//!
//! Outbound Route Filtering (RFC 5291) is not supported, so the message is always 23 octets;
//! any other length is the RFC 7313 section 5 "Invalid Message Length" error, whose data is
//! the complete message (see [`crate::wire::Message::decode`]).

use bytes::{BufMut, BytesMut};

use crate::wire::message::{MessageType, HEADER_LEN, MARKER};
use crate::wire::notification::Notification;
use crate::wire::types::{Afi, Family, Safi};

/// The message subtype carried in the former "Reserved" octet (RFC 7313 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteRefreshSubtype {
    /// 0: a normal route refresh request.
    Request,
    /// 1: Beginning of Route Refresh.
    BoRR,
    /// 2: End of Route Refresh.
    EoRR,
    /// Anything else: RFC 7313 says ignore the message; it is kept for round trips.
    Other(u8),
}

/// A ROUTE-REFRESH message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub afi: Afi,
    pub subtype: RouteRefreshSubtype,
    pub safi: Safi,
}

impl RouteRefreshSubtype {
    pub fn from_u8(value: u8) -> RouteRefreshSubtype {
        match value {
            0 => RouteRefreshSubtype::Request,
            1 => RouteRefreshSubtype::BoRR,
            2 => RouteRefreshSubtype::EoRR,
            other => RouteRefreshSubtype::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            RouteRefreshSubtype::Request => 0,
            RouteRefreshSubtype::BoRR => 1,
            RouteRefreshSubtype::EoRR => 2,
            RouteRefreshSubtype::Other(v) => v,
        }
    }
}

impl RouteRefresh {
    /// A plain route refresh request for `family`.
    pub fn request(family: Family) -> Self {
        RouteRefresh::with_subtype(family, RouteRefreshSubtype::Request)
    }

    pub fn with_subtype(family: Family, subtype: RouteRefreshSubtype) -> Self {
        RouteRefresh {
            afi: family.afi,
            subtype,
            safi: family.safi,
        }
    }

    pub fn family(&self) -> Family {
        Family::new(self.afi, self.safi)
    }

    /// Decode a ROUTE-REFRESH body (the 4 octets after the header).
    pub fn decode_body(body: &[u8]) -> Result<RouteRefresh, RouteRefreshError> {
        match *body {
            [afi_hi, afi_lo, subtype, safi] => Ok(RouteRefresh {
                afi: Afi(u16::from_be_bytes([afi_hi, afi_lo])),
                subtype: RouteRefreshSubtype::from_u8(subtype),
                safi: Safi(safi),
            }),
            _ => {
                // Rebuild the complete message for the NOTIFICATION data.
                let len = body.len().saturating_add(HEADER_LEN);
                let length = u16::try_from(len).unwrap_or(u16::MAX);
                let mut message = BytesMut::with_capacity(len);
                message.put_slice(&MARKER);
                message.put_u16(length);
                message.put_u8(MessageType::RouteRefresh as u8);
                message.put_slice(body);
                Err(RouteRefreshError::InvalidLength {
                    length,
                    message: message.freeze(),
                })
            }
        }
    }

    /// Append the ROUTE-REFRESH body (without the header) to `out`.
    pub fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.afi.0);
        out.put_u8(self.subtype.to_u8());
        out.put_u8(self.safi.0);
    }
}

/// A ROUTE-REFRESH message of the wrong length (RFC 7313 section 5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteRefreshError {
    #[error("ROUTE-REFRESH message length {length} is invalid, it must be 23")]
    InvalidLength {
        length: u16,
        /// The complete message, header included, as RFC 7313 asks for in the data field.
        message: bytes::Bytes,
    },
}

impl RouteRefreshError {
    pub fn notification(&self) -> Notification {
        use crate::wire::error::{code, route_refresh_subcode as sub};
        match self {
            RouteRefreshError::InvalidLength { message, .. } => Notification {
                code: code::ROUTE_REFRESH,
                subcode: sub::INVALID_MESSAGE_LENGTH,
                data: message.clone(),
            },
        }
    }
}
