//! ROUTE-REFRESH (RFC 2918) with the RFC 7313 BoRR / EoRR subtypes.

use crate::wire::notification::Notification;
use crate::wire::types::{Afi, Safi};

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
