//! Path attributes (RFC 4271 section 5 and the RFCs named per type).
//!
//! The decoded form is normalised: AS_PATH is always held with 4-octet AS numbers, with
//! AS4_PATH / AS4_AGGREGATOR merged in per RFC 6793 section 4.2.3 when the session is
//! 2-octet; the encoder splits them again for 2-octet sessions (AS_TRANS in AS_PATH, the
//! real path in AS4_PATH). `PathAttributes` is `Hash + Eq` so the RIB can intern it.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use crate::wire::types::{Family, Nlri};

/// Attribute type codes.
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;

    /// The type codes this codec decodes into typed fields, in encoding order.
    pub const INTERPRETED: [u8; 16] = [
        ORIGIN,
        AS_PATH,
        NEXT_HOP,
        MULTI_EXIT_DISC,
        LOCAL_PREF,
        ATOMIC_AGGREGATE,
        AGGREGATOR,
        COMMUNITIES,
        ORIGINATOR_ID,
        CLUSTER_LIST,
        MP_REACH_NLRI,
        MP_UNREACH_NLRI,
        EXTENDED_COMMUNITIES,
        AS4_PATH,
        AS4_AGGREGATOR,
        LARGE_COMMUNITIES,
    ];

    /// Whether the codec decodes `code` into a typed field (never into a `RawAttribute`).
    pub const fn is_interpreted(code: u8) -> bool {
        matches!(code, 1..=10 | 14..=18 | 32)
    }
}

/// Attribute flag bits.
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// AS_TRANS (RFC 6793).
pub const AS_TRANS: u32 = 23456;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AsSegmentType {
    Set = 1,
    Sequence = 2,
    /// RFC 5065.
    ConfedSequence = 3,
    /// RFC 5065.
    ConfedSet = 4,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: AsSegmentType,
    pub asns: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// An AS_PATH of one AS_SEQUENCE.
    pub fn from_sequence(asns: impl Into<Vec<u32>>) -> Self {
        let asns = asns.into();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: AsSegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for the decision process (RFC 4271 9.1.2.2 a): an AS_SET counts 1,
    /// confederation segments count 0 (RFC 5065 5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                AsSegmentType::Sequence => s.asns.len(),
                AsSegmentType::Set => 1,
                AsSegmentType::ConfedSequence | AsSegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// Whether `asn` appears anywhere in the path (loop detection).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// The neighbouring AS (first AS of a leading AS_SEQUENCE), for MED comparison.
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment {
                kind: AsSegmentType::Sequence,
                asns,
            }) => asns.first().copied(),
            _ => None,
        }
    }

    /// Prepend `asn` `count` times (eBGP export, RFC 4271 5.1.2).
    pub fn prepend(&mut self, asn: u32, count: usize) {
        if count == 0 {
            return;
        }
        match self.segments.first_mut() {
            Some(seg) if seg.kind == AsSegmentType::Sequence && seg.asns.len() + count <= 255 => {
                seg.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: AsSegmentType::Sequence,
                    asns: vec![asn; count],
                },
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// RFC 1997 community, as one 32-bit value (high 16 bits: AS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);

    pub const fn new(asn: u16, value: u16) -> Self {
        Community(((asn as u32) << 16) | value as u32)
    }
}

/// RFC 4360 extended community, 8 octets kept as-is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

/// RFC 8092 large community.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data1: u32,
    pub local_data2: u32,
}

/// The next hop of MP_REACH_NLRI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    Ipv4(Ipv4Addr),
    /// IPv6 global, plus the link-local address when the next hop field is 32 octets.
    Ipv6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
    /// A family this codec does not interpret: the next hop octets as received.
    Other(Bytes),
}

impl MpNextHop {
    /// Octets of the encoded next hop field (without its length octet).
    pub fn encoded_len(&self) -> usize {
        match self {
            MpNextHop::Ipv4(_) => 4,
            MpNextHop::Ipv6 {
                link_local: None, ..
            } => 16,
            MpNextHop::Ipv6 {
                link_local: Some(_),
                ..
            } => 32,
            MpNextHop::Other(b) => b.len(),
        }
    }
}

/// MP_REACH_NLRI (RFC 4760).
///
/// Families this codec interprets (AFI 1 or 2 with SAFI 1 or 2, see
/// [`Family::is_ip_unicast_or_multicast`]) have their prefixes in `nlri` and an empty
/// `raw_nlri`. For any other family the next hop is [`MpNextHop::Other`] and the NLRI field is
/// kept as received in `raw_nlri` (its syntax depends on the SAFI: labels, route
/// distinguishers, ...), with `nlri` empty; the encoder writes `nlri` then `raw_nlri`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: Vec<Nlri>,
    /// NLRI octets of a family the codec does not interpret (empty otherwise).
    pub raw_nlri: Bytes,
}

impl MpReach {
    pub fn new(family: Family, next_hop: MpNextHop, nlri: Vec<Nlri>) -> Self {
        MpReach {
            family,
            next_hop,
            nlri,
            raw_nlri: Bytes::new(),
        }
    }
}

/// MP_UNREACH_NLRI (RFC 4760). An empty `withdrawn` list for a family is its End-of-RIB
/// marker (RFC 4724 section 2). As in [`MpReach`], families the codec does not interpret keep
/// their withdrawn routes field in `raw_withdrawn`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
    /// Withdrawn-routes octets of a family the codec does not interpret (empty otherwise).
    pub raw_withdrawn: Bytes,
}

impl MpUnreach {
    pub fn new(family: Family, withdrawn: Vec<Nlri>) -> Self {
        MpUnreach {
            family,
            withdrawn,
            raw_withdrawn: Bytes::new(),
        }
    }
}

/// An attribute this codec does not interpret, kept byte for byte. Only optional transitive
/// ones are kept; optional non-transitive unknowns are dropped on decode (RFC 4271 section 5).
///
/// On decode, `flags` is the received flags octet with the Extended Length bit cleared (the
/// encoder chooses it from the length, or from [`crate::wire::update::WireLayout`]). The
/// encoder writes `flags` as stored, so re-encoding a received UPDATE reproduces it. A
/// speaker passing such an attribute on to another peer must set the Partial bit (RFC 4271
/// section 5): call [`PathAttributes::mark_unknown_partial`] on routes learned from a peer.
/// `type_code` must not be one the codec interprets itself ([`type_code::is_interpreted`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Bytes,
}

/// All path attributes of one UPDATE, normalised (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub ext_communities: Vec<ExtCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    /// Recognized optional transitive attributes that arrived with the Partial bit set: it
    /// must stay set when they are passed on (RFC 4271 section 5), so the encoder sets it.
    pub partial: PartialBits,
    /// Unknown optional transitive attributes, sorted by type code on decode (the wire order
    /// is recorded in [`crate::wire::update::WireLayout`]).
    pub unknown: Vec<RawAttribute>,
}

/// A set of attribute type codes below 64: the recognized optional transitive attributes
/// (AGGREGATOR, COMMUNITIES, EXTENDED_COMMUNITIES, AS4_PATH, AS4_AGGREGATOR,
/// LARGE_COMMUNITIES) that carried the Partial bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PartialBits(pub u64);

impl PartialBits {
    pub const fn contains(self, type_code: u8) -> bool {
        type_code < 64 && self.0 & (1u64 << type_code) != 0
    }

    /// Add `type_code`; codes of 64 and above are ignored (no such attribute is recognized).
    pub fn insert(&mut self, type_code: u8) {
        if type_code < 64 {
            self.0 |= 1u64 << type_code;
        }
    }

    pub fn remove(&mut self, type_code: u8) {
        if type_code < 64 {
            self.0 &= !(1u64 << type_code);
        }
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl PathAttributes {
    /// Set the Partial bit on every unknown optional transitive attribute, as RFC 4271
    /// section 5 requires of a speaker that passes them on. Call on routes learned from a
    /// peer before advertising them to another (not needed for locally originated routes).
    pub fn mark_unknown_partial(&mut self) {
        for r in &mut self.unknown {
            if r.flags & flags::OPTIONAL != 0 && r.flags & flags::TRANSITIVE != 0 {
                r.flags |= flags::PARTIAL;
            }
        }
    }
}
