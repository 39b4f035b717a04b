//! The negotiated session context that every decode and encode takes.

use crate::wire::types::Family;

/// Maximum BGP message size without the extended message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum BGP message size with the extended message capability (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// What was negotiated for one direction of a session.
///
/// A session keeps two of these: one for decoding what the peer sends and one for encoding
/// what we send, because add-path is negotiated per direction (RFC 7911 section 4). Before
/// the OPEN exchange completes, use [`SessionContext::default`] (2-octet AS, no add-path, 4096
/// octets), which is what RFC 4271 prescribes for OPEN messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionContext {
    /// Both sides advertised the 4-octet AS capability (RFC 6793): AS_PATH and AGGREGATOR
    /// carry 4-octet AS numbers and AS4_PATH / AS4_AGGREGATOR are not used.
    pub four_octet_as: bool,
    /// Both sides advertised the extended message capability (RFC 8654): messages other
    /// than OPEN and KEEPALIVE may be up to 65535 octets.
    pub extended_message: bool,
    /// Families whose NLRI carry a path identifier in this direction (RFC 7911).
    pub add_path: Vec<Family>,
}

impl SessionContext {
    /// The context with every capability negotiated, for tests and for speakers that know
    /// their peer is modern.
    pub fn modern() -> Self {
        SessionContext {
            four_octet_as: true,
            extended_message: true,
            add_path: Vec::new(),
        }
    }

    /// Largest message this context admits (header included).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Whether NLRI of `family` carry a path identifier in this direction.
    pub fn add_path(&self, family: Family) -> bool {
        self.add_path.contains(&family)
    }
}
