//! proptest strategies for wire types, shared by the integration tests
//! (`mod common;` from a test file).
//!
//! Generated UPDATEs are ones the codec must round-trip exactly in the given context:
//! prefixes of the right family, path identifiers exactly when add-path is on, AS numbers
//! that fit the session (confederation ASes <= 65535 on a 2-octet session, confederation
//! segments only at the front of the path, as RFC 5065 speakers produce them), no AS 0,
//! next hops that are not martian, unique large communities and raw-attribute type codes,
//! raw attributes flagged optional transitive partial (as the decoder stores them), and the
//! well-known mandatory attributes present whenever the UPDATE announces something.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;

use wren_bgp::wire::attr::{flags, type_code, PartialBits};
use wren_bgp::wire::{
    Afi, Aggregator, AsPath, AsSegment, AsSegmentType, Community, ExtCommunity, Family,
    LargeCommunity, MpNextHop, MpReach, MpUnreach, Nlri, Origin, PathAttributes, RawAttribute,
    Safi, SessionContext, Update,
};

/// A family the codec does not interpret (L2VPN EVPN).
pub const EVPN: Family = Family::new(Afi(25), Safi(70));

/// Every combination of 4-octet AS, extended message and add-path for IPv4/IPv6 unicast.
pub fn arb_context() -> impl Strategy<Value = SessionContext> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(four, ext, ap4, ap6)| {
            let mut add_path = Vec::new();
            if ap4 {
                add_path.push(Family::IPV4_UNICAST);
            }
            if ap6 {
                add_path.push(Family::IPV6_UNICAST);
            }
            SessionContext {
                four_octet_as: four,
                extended_message: ext,
                add_path,
            }
        },
    )
}

/// Keep the first `ceil(len / 8)` octets of `octets`, zero the rest (what the wire carries).
fn wire_octets<const N: usize>(mut octets: [u8; N], len: u8) -> [u8; N] {
    let keep = usize::from(len).div_ceil(8);
    for o in octets.iter_mut().skip(keep) {
        *o = 0;
    }
    octets
}

pub fn arb_v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<[u8; 4]>(), 0u8..=32).prop_map(|(o, len)| {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(wire_octets(o, len)), len).unwrap())
    })
}

pub fn arb_v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<[u8; 16]>(), 0u8..=128).prop_map(|(o, len)| {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(wire_octets(o, len)), len).unwrap())
    })
}

/// NLRI of `family` (IPv4 or IPv6), with path ids exactly when `add_path`.
pub fn arb_nlri_list(v6: bool, add_path: bool, max: usize) -> impl Strategy<Value = Vec<Nlri>> {
    let prefix = if v6 {
        arb_v6_prefix().boxed()
    } else {
        arb_v4_prefix().boxed()
    };
    vec((prefix, any::<u32>()), 0..=max).prop_map(move |v| {
        v.into_iter()
            .map(|(prefix, id)| Nlri {
                prefix,
                path_id: add_path.then_some(id),
            })
            .collect()
    })
}

fn arb_asn(four: bool) -> BoxedStrategy<u32> {
    if four {
        prop_oneof![1u32..=65535, 65536u32..=u32::MAX].boxed()
    } else {
        // Mostly 2-octet ASes, some 4-octet ones to exercise AS_TRANS / AS4_PATH.
        prop_oneof![3 => 1u32..=65535, 1 => 65536u32..=u32::MAX].boxed()
    }
}

/// An AS_PATH: optional leading confederation segments, then SEQUENCE/SET segments.
pub fn arb_as_path(four: bool) -> impl Strategy<Value = AsPath> {
    let confed_asn = if four {
        arb_asn(true)
    } else {
        (1u32..=65535).boxed()
    };
    let confed = vec(
        (
            prop_oneof![
                Just(AsSegmentType::ConfedSequence),
                Just(AsSegmentType::ConfedSet)
            ],
            vec(confed_asn, 1..4),
        ),
        0..2,
    );
    let main = vec(
        (
            prop_oneof![
                3 => Just(AsSegmentType::Sequence),
                1 => Just(AsSegmentType::Set)
            ],
            vec(arb_asn(four), 1..8),
        ),
        0..4,
    );
    (confed, main).prop_map(|(c, m)| AsPath {
        segments: c
            .into_iter()
            .chain(m)
            .map(|(kind, asns)| AsSegment { kind, asns })
            .collect(),
    })
}

/// A next hop that passes the decoder's martian check.
pub fn arb_next_hop() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..224, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
}

fn arb_raw_type_code() -> impl Strategy<Value = u8> {
    prop_oneof![11u8..=13, 19u8..=31, 33u8..=255]
}

pub fn arb_unknown() -> impl Strategy<Value = Vec<RawAttribute>> {
    let flags_octet = prop_oneof![
        Just(flags::OPTIONAL | flags::TRANSITIVE),
        Just(flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL)
    ];
    vec(
        (arb_raw_type_code(), vec(any::<u8>(), 0..300), flags_octet),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = BTreeSet::new();
        let mut v: Vec<_> = v
            .into_iter()
            .filter(|(code, _, _)| seen.insert(*code))
            .collect();
        v.sort_by_key(|(code, _, _)| *code);
        v.into_iter()
            .map(|(type_code, value, flags)| RawAttribute {
                flags,
                type_code,
                value: Bytes::from(value),
            })
            .collect()
    })
}

pub fn arb_mp_reach(ctx: &SessionContext) -> impl Strategy<Value = MpReach> {
    let ap4 = ctx.add_path(Family::IPV4_UNICAST);
    let ap6 = ctx.add_path(Family::IPV6_UNICAST);
    let v6_nh = (any::<[u8; 16]>(), proptest::option::of(any::<[u8; 16]>())).prop_map(|(g, ll)| {
        MpNextHop::Ipv6 {
            global: Ipv6Addr::from(g),
            link_local: ll.map(Ipv6Addr::from),
        }
    });
    prop_oneof![
        (arb_v4_prefix_nh(), arb_nlri_list(false, ap4, 10)).prop_map(|(nh, nlri)| MpReach::new(
            Family::IPV4_UNICAST,
            nh,
            nlri
        )),
        // RFC 8950: IPv4 NLRI with an IPv6 next hop.
        (v6_nh.clone(), arb_nlri_list(false, ap4, 10)).prop_map(|(nh, nlri)| MpReach::new(
            Family::IPV4_UNICAST,
            nh,
            nlri
        )),
        (v6_nh, arb_nlri_list(true, ap6, 10)).prop_map(|(nh, nlri)| MpReach::new(
            Family::IPV6_UNICAST,
            nh,
            nlri
        )),
        (vec(any::<u8>(), 0..24), vec(any::<u8>(), 0..40)).prop_map(|(nh, raw)| MpReach {
            family: EVPN,
            next_hop: MpNextHop::Other(Bytes::from(nh)),
            nlri: Vec::new(),
            raw_nlri: Bytes::from(raw),
        }),
    ]
}

fn arb_v4_prefix_nh() -> impl Strategy<Value = MpNextHop> {
    any::<[u8; 4]>().prop_map(|o| MpNextHop::Ipv4(Ipv4Addr::from(o)))
}

pub fn arb_mp_unreach(ctx: &SessionContext) -> impl Strategy<Value = MpUnreach> {
    let ap4 = ctx.add_path(Family::IPV4_UNICAST);
    let ap6 = ctx.add_path(Family::IPV6_UNICAST);
    prop_oneof![
        arb_nlri_list(false, ap4, 10).prop_map(|w| MpUnreach::new(Family::IPV4_UNICAST, w)),
        arb_nlri_list(true, ap6, 10).prop_map(|w| MpUnreach::new(Family::IPV6_UNICAST, w)),
        vec(any::<u8>(), 0..40).prop_map(|raw| MpUnreach {
            family: EVPN,
            withdrawn: Vec::new(),
            raw_withdrawn: Bytes::from(raw),
        }),
    ]
}

pub fn arb_attributes(ctx: &SessionContext) -> impl Strategy<Value = PathAttributes> {
    let four = ctx.four_octet_as;
    let origin = proptest::option::of(prop_oneof![
        Just(Origin::Igp),
        Just(Origin::Egp),
        Just(Origin::Incomplete)
    ]);
    let aggregator = proptest::option::of((arb_asn(four), any::<[u8; 4]>()).prop_map(
        |(asn, a)| Aggregator {
            asn,
            address: Ipv4Addr::from(a),
        },
    ));
    let first = (
        origin,
        proptest::option::of(arb_as_path(four)),
        proptest::option::of(arb_next_hop()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        aggregator,
        vec(any::<u32>().prop_map(Community), 0..5),
    );
    let second = (
        proptest::option::of(any::<[u8; 4]>().prop_map(Ipv4Addr::from)),
        vec(any::<[u8; 4]>().prop_map(Ipv4Addr::from), 0..3),
        proptest::option::of(arb_mp_reach(ctx)),
        proptest::option::of(arb_mp_unreach(ctx)),
        vec(any::<[u8; 8]>().prop_map(ExtCommunity), 0..3),
        proptest::collection::btree_set(any::<(u32, u32, u32)>(), 0..3),
        arb_unknown(),
        any::<u8>(),
    );
    (first, second).prop_map(
        |(
            (origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator, communities),
            (
                originator_id,
                cluster_list,
                mp_reach,
                mp_unreach,
                ext_communities,
                large,
                unknown,
                partial_mask,
            ),
        )| {
            // The Partial bit on recognized optional transitive attributes that are present.
            let mut partial = PartialBits::default();
            for (bit, code, present) in [
                (1, type_code::AGGREGATOR, aggregator.is_some()),
                (2, type_code::COMMUNITIES, !communities.is_empty()),
                (
                    4,
                    type_code::EXTENDED_COMMUNITIES,
                    !ext_communities.is_empty(),
                ),
                (8, type_code::LARGE_COMMUNITIES, !large.is_empty()),
            ] {
                if present && partial_mask & bit != 0 {
                    partial.insert(code);
                }
            }
            PathAttributes {
                origin,
                as_path,
                next_hop,
                med,
                local_pref,
                atomic_aggregate,
                aggregator,
                communities,
                originator_id,
                cluster_list,
                mp_reach,
                mp_unreach,
                ext_communities,
                large_communities: large
                    .into_iter()
                    .map(|(g, a, b)| LargeCommunity {
                        global_admin: g,
                        local_data1: a,
                        local_data2: b,
                    })
                    .collect(),
                partial,
                unknown,
            }
        },
    )
}

/// An UPDATE that must survive `decode(encode(u)) == u` in `ctx`.
pub fn arb_update(ctx: &SessionContext) -> impl Strategy<Value = Update> {
    let ap4 = ctx.add_path(Family::IPV4_UNICAST);
    let four = ctx.four_octet_as;
    (
        arb_nlri_list(false, ap4, 20),
        arb_attributes(ctx),
        arb_nlri_list(false, ap4, 20),
        arb_as_path(four),
        arb_next_hop(),
    )
        .prop_map(|(withdrawn, mut attributes, nlri, path, nh)| {
            // RFC 7606 3 d would report missing mandatory attributes: supply them.
            if !nlri.is_empty() || attributes.mp_reach.is_some() {
                attributes.origin.get_or_insert(Origin::Igp);
                attributes.as_path.get_or_insert(path);
            }
            if !nlri.is_empty() {
                attributes.next_hop.get_or_insert(nh);
            }
            Update {
                withdrawn,
                attributes,
                nlri,
                ..Default::default()
            }
        })
}

/// A context and an UPDATE generated for it.
pub fn arb_context_and_update() -> impl Strategy<Value = (SessionContext, Update)> {
    arb_context().prop_flat_map(|ctx| {
        let u = arb_update(&ctx);
        (Just(ctx), u)
    })
}

/// Attribute type codes known to the codec, for tests that iterate them.
pub const INTERPRETED: [u8; 16] = type_code::INTERPRETED;
