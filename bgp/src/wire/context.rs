//! The negotiated session context that every decode and encode takes.

use crate::wire::open::Open;
use crate::wire::types::{Afi, Family, Safi};

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

    /// The receive and send contexts for a session after the OPEN exchange, from our OPEN
    /// (`local`) and the peer's (`remote`).
    ///
    /// * 4-octet AS (RFC 6793 section 4): both sides advertised the capability.
    /// * Extended message (RFC 8654 section 3): both sides advertised it ("A peer which does
    ///   not advertise this capability MUST NOT send BGP Extended Messages, and BGP Extended
    ///   Messages MUST NOT be sent to it"), in both directions.
    /// * Add-path (RFC 7911 section 4), per direction: we receive path identifiers for a
    ///   family when we advertised Receive or Both and the peer advertised Send or Both; we
    ///   send them when we advertised Send or Both and the peer Receive or Both. Families are
    ///   listed in the order of our OPEN.
    pub fn negotiate(local: &Open, remote: &Open) -> (SessionContext, SessionContext) {
        let four_octet_as = local.four_octet_as().is_some() && remote.four_octet_as().is_some();
        let extended_message = local.extended_message() && remote.extended_message();
        let remote_add_path = remote.add_path();
        let mut rx_add_path = Vec::new();
        let mut tx_add_path = Vec::new();
        for ours in local.add_path() {
            let Some(theirs) = remote_add_path.iter().find(|e| e.family == ours.family) else {
                continue;
            };
            if ours.direction.receives() && theirs.direction.sends() {
                rx_add_path.push(ours.family);
            }
            if ours.direction.sends() && theirs.direction.receives() {
                tx_add_path.push(ours.family);
            }
        }
        let rx = SessionContext {
            four_octet_as,
            extended_message,
            add_path: rx_add_path,
        };
        let tx = SessionContext {
            four_octet_as,
            extended_message,
            add_path: tx_add_path,
        };
        (rx, tx)
    }

    /// A context from one octet, as the fuzz targets and the corpus replay test build it:
    /// bit 0 4-octet AS, bit 1 extended message, bits 2..=5 add-path for IPv4 unicast, IPv6
    /// unicast, IPv4 multicast and IPv6 multicast.
    pub fn from_flags(flags: u8) -> SessionContext {
        let families = [
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::new(Afi::IPV4, Safi::MULTICAST),
            Family::new(Afi::IPV6, Safi::MULTICAST),
        ];
        SessionContext {
            four_octet_as: flags & 1 != 0,
            extended_message: flags & 2 != 0,
            add_path: families
                .iter()
                .enumerate()
                .filter(|(i, _)| flags & (4 << i) != 0)
                .map(|(_, f)| *f)
                .collect(),
        }
    }
}

/// Families both OPENs advertised with the multiprotocol capability (RFC 4760 section 8), in
/// the order of `local`. A side that sent no multiprotocol capability at all implicitly
/// supports IPv4 unicast only.
pub fn common_families(local: &Open, remote: &Open) -> Vec<Family> {
    let with_default = |open: &Open| {
        let families = open.families();
        if families.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            families
        }
    };
    let theirs = with_default(remote);
    with_default(local)
        .into_iter()
        .filter(|f| theirs.contains(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::open::{AddPathDirection as D, AddPathEntry, Capability};

    fn open(caps: Vec<Capability>) -> Open {
        Open::new(65001, 90, Ipv4Addr::new(10, 0, 0, 1), caps)
    }

    fn add_path(entries: &[(Family, D)]) -> Capability {
        Capability::AddPath(
            entries
                .iter()
                .map(|&(family, direction)| AddPathEntry { family, direction })
                .collect(),
        )
    }

    #[test]
    fn add_path_is_per_direction() {
        let v4 = Family::IPV4_UNICAST;
        let v6 = Family::IPV6_UNICAST;
        let local = open(vec![add_path(&[(v4, D::Receive), (v6, D::Both)])]);
        let remote = open(vec![add_path(&[(v4, D::Both), (v6, D::Send)])]);
        let (rx, tx) = SessionContext::negotiate(&local, &remote);
        assert_eq!(rx.add_path, vec![v4, v6]);
        assert_eq!(tx.add_path, Vec::<Family>::new());
        let (rx, tx) = SessionContext::negotiate(&remote, &local);
        assert_eq!(rx.add_path, Vec::<Family>::new());
        assert_eq!(tx.add_path, vec![v4, v6]);
        // Other(_) negotiates nothing; a family only one side lists negotiates nothing.
        let local = open(vec![add_path(&[(v4, D::Other(7)), (v6, D::Both)])]);
        let remote = open(vec![add_path(&[(v4, D::Both)])]);
        let (rx, tx) = SessionContext::negotiate(&local, &remote);
        assert!(rx.add_path.is_empty() && tx.add_path.is_empty());
    }

    #[test]
    fn four_octet_and_extended_need_both_sides() {
        let modern = open(vec![
            Capability::FourOctetAs(65001),
            Capability::ExtendedMessage,
        ]);
        let old = open(vec![]);
        let (rx, tx) = SessionContext::negotiate(&modern, &modern);
        assert!(rx.four_octet_as && rx.extended_message && tx.four_octet_as && tx.extended_message);
        assert_eq!(rx.max_message_len(), MAX_EXTENDED_MESSAGE_LEN);
        for (a, b) in [(&modern, &old), (&old, &modern)] {
            let (rx, tx) = SessionContext::negotiate(a, b);
            assert_eq!(rx, SessionContext::default());
            assert_eq!(tx, SessionContext::default());
        }
    }

    #[test]
    fn common_families_defaults_to_ipv4_unicast() {
        let v6 = Family::IPV6_UNICAST;
        let mp = open(vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(v6),
        ]);
        assert_eq!(
            common_families(&mp, &open(vec![])),
            vec![Family::IPV4_UNICAST]
        );
        assert_eq!(common_families(&mp, &mp), vec![Family::IPV4_UNICAST, v6]);
        let only_v6 = open(vec![Capability::Multiprotocol(v6)]);
        assert_eq!(
            common_families(&only_v6, &open(vec![])),
            Vec::<Family>::new()
        );
    }

    #[test]
    fn from_flags_bits() {
        assert_eq!(SessionContext::from_flags(0), SessionContext::default());
        let c = SessionContext::from_flags(0b11_1111);
        assert!(c.four_octet_as && c.extended_message);
        assert_eq!(c.add_path.len(), 4);
    }
}
