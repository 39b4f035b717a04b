//! UPDATE codec: round trips in every session context, byte-exact re-encoding, RFC 6793 AS4
//! handling, and every RFC 4271 section 6.3 error as revised by RFC 7606.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cloned_ref_to_slice_refs
)]

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use wren_bgp::wire::attr::{flags, type_code as tc, AS_TRANS};
use wren_bgp::wire::error::update_subcode as sub;
use wren_bgp::wire::update::{LayoutEntry, UpdateError, WireLayout};
use wren_bgp::wire::{
    Aggregator, AsPath, AsSegment, AsSegmentType, Community, EncodeError, Family, LargeCommunity,
    Message, MpNextHop, MpReach, MpUnreach, Nlri, Origin, PathAttributes, RawAttribute,
    Rfc7606Action, SessionContext, Update,
};

use Rfc7606Action::{AttributeDiscard, TreatAsWithdraw};

// ---------------------------------------------------------------------------------------
// helpers

fn ctx4() -> SessionContext {
    SessionContext::modern()
}

fn ctx2() -> SessionContext {
    SessionContext::default()
}

/// One attribute: flags, type, length (2 octets when flags has Extended Length), value.
fn attr(flags_octet: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags_octet, code];
    if flags_octet & flags::EXTENDED_LENGTH != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

fn body(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = (withdrawn.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(withdrawn);
    v.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    v.extend_from_slice(attrs);
    v.extend_from_slice(nlri);
    v
}

const NLRI: [u8; 4] = [24, 10, 1, 2];

fn origin() -> Vec<u8> {
    attr(0x40, tc::ORIGIN, &[0])
}
fn as_path4() -> Vec<u8> {
    attr(0x40, tc::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9])
}
fn as_path2() -> Vec<u8> {
    attr(0x40, tc::AS_PATH, &[2, 1, 0xfd, 0xe9])
}
fn next_hop() -> Vec<u8> {
    attr(0x40, tc::NEXT_HOP, &[10, 0, 0, 1])
}

/// ORIGIN, AS_PATH (4-octet), NEXT_HOP plus `extra`, in that order.
fn base_plus(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut v = [origin(), as_path4(), next_hop()].concat();
    for e in extra {
        v.extend_from_slice(e);
    }
    v
}

fn decode4(attrs: &[u8]) -> Result<Update, UpdateError> {
    Update::decode_body(&body(&[], attrs, &NLRI), &ctx4())
}

fn encode(u: &Update, ctx: &SessionContext) -> Vec<u8> {
    let mut out = BytesMut::new();
    u.encode_body(ctx, &mut out).unwrap();
    out.to_vec()
}

/// The single issue of `u`, as (action, type code, subcode, data).
fn only_issue(u: &Update) -> (Rfc7606Action, u8, u8, Vec<u8>) {
    assert_eq!(u.issues.len(), 1, "issues: {:?}", u.issues);
    let i = &u.issues[0];
    (
        i.action,
        i.type_code,
        i.error.subcode,
        i.error.data.to_vec(),
    )
}

fn assert_reset(r: Result<Update, UpdateError>, subcode: u8, data: &[u8]) {
    let e = r.expect_err("expected a session reset");
    let n = e.notification();
    assert_eq!((n.code, n.subcode, &n.data[..]), (3, subcode, data), "{e}");
}

fn p(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap())
}

// ---------------------------------------------------------------------------------------
// round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// decode(encode(u)) == u, and re-encoding the decoded UPDATE gives the same octets,
    /// in every context (2/4-octet AS, add-path per family, extended message).
    #[test]
    fn round_trip_every_context((ctx, u) in common::arb_context_and_update()) {
        let mut out = BytesMut::new();
        match u.encode_body(&ctx, &mut out) {
            Err(EncodeError::TooLong { .. }) => {
                prop_assume!(false);
            }
            r => r.unwrap(),
        }
        let d = Update::decode_body(&out, &ctx).unwrap();
        prop_assert_eq!(&d, &u);
        prop_assert!(d.layout.is_canonical());
        prop_assert_eq!(encode(&d, &ctx), out.to_vec());
    }

    /// Whole messages through the dispatcher.
    #[test]
    fn message_round_trip((ctx, u) in common::arb_context_and_update()) {
        let m = Message::Update(u);
        let Ok(bytes) = m.to_bytes(&ctx) else { return Ok(()) };
        prop_assert_eq!(Message::decode(&bytes, &ctx).unwrap(), m);
    }

    /// Attributes in any order, with the Extended Length bit on any of them, decode to the
    /// same UPDATE, and re-encode to exactly the received octets (recorded layout).
    #[test]
    fn any_layout_reencodes_exactly(
        (ctx, u) in common::arb_context_and_update(),
        seed in any::<u64>(),
        ext_mask in any::<u32>(),
    ) {
        let Ok(canon) = u.to_body(&ctx) else { return Ok(()) };
        let (wd, attrs, nlri) = split_body(&canon);
        let mut list = split_attrs(attrs);
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..list.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            list.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut attrs2 = Vec::new();
        for (i, (fl, code, value)) in list.iter().enumerate() {
            let ext = ext_mask & (1 << (i % 32)) != 0 || value.len() > 255;
            let f = if ext { fl | flags::EXTENDED_LENGTH } else { fl & !flags::EXTENDED_LENGTH };
            attrs2.extend(attr(f, *code, value));
        }
        let wire = body(wd, &attrs2, nlri);
        let d = Update::decode_body(&wire, &ctx).unwrap();
        prop_assert_eq!(&d, &u);
        prop_assert_eq!(encode(&d, &ctx), wire);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Arbitrary attribute soup (random flags, type codes from the interpreted set and a few
    /// others, random values) never panics; whatever decodes without a session reset and
    /// without issues re-encodes, and decoding that again gives the same UPDATE.
    #[test]
    fn arbitrary_attributes_never_panic(
        ctx in common::arb_context(),
        attrs in proptest::collection::vec(
            (
                prop_oneof![
                    3 => proptest::sample::select(vec![0x40u8, 0x80, 0xc0, 0xe0, 0x50, 0x90, 0xd0, 0xf0]),
                    1 => any::<u8>()
                ],
                prop_oneof![
                    proptest::sample::select(common::INTERPRETED.to_vec()),
                    any::<u8>()
                ],
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
            0..8,
        ),
        withdrawn in proptest::collection::vec(any::<u8>(), 0..12),
        nlri in proptest::collection::vec(any::<u8>(), 0..12),
        tail in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut a = Vec::new();
        for (fl, code, value) in &attrs {
            a.extend(attr(*fl, *code, value));
        }
        a.extend(&tail);
        let wire = body(&withdrawn, &a, &nlri);
        if let Ok(u) = Update::decode_body(&wire, &ctx) {
            if u.issues.is_empty() {
                if let Ok(again) = u.to_body(&ctx) {
                    prop_assert_eq!(Update::decode_body(&again, &ctx).unwrap(), u);
                }
            }
        }
        // Raw random bytes too.
        let _ = Update::decode_body(&a, &ctx);
    }
}

/// Body split into withdrawn, attributes and NLRI fields.
fn split_body(b: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let wl = u16::from_be_bytes([b[0], b[1]]) as usize;
    let wd = &b[2..2 + wl];
    let al = u16::from_be_bytes([b[2 + wl], b[3 + wl]]) as usize;
    let attrs = &b[4 + wl..4 + wl + al];
    (wd, attrs, &b[4 + wl + al..])
}

fn split_attrs(mut a: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut v = Vec::new();
    while !a.is_empty() {
        let (fl, code) = (a[0], a[1]);
        let (hl, len) = if fl & flags::EXTENDED_LENGTH != 0 {
            (4, u16::from_be_bytes([a[2], a[3]]) as usize)
        } else {
            (3, a[2] as usize)
        };
        v.push((fl, code, a[hl..hl + len].to_vec()));
        a = &a[hl + len..];
    }
    v
}

trait ToBody {
    fn to_body(&self, ctx: &SessionContext) -> Result<Vec<u8>, EncodeError>;
}

impl ToBody for Update {
    fn to_body(&self, ctx: &SessionContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = BytesMut::new();
        self.encode_body(ctx, &mut out)?;
        Ok(out.to_vec())
    }
}

#[test]
fn canonical_encoding_exact_bytes() {
    let u = Update::new(
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(vec![65001, 4_200_000_000])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            med: Some(100),
            communities: vec![Community::new(65001, 7)],
            ..Default::default()
        },
        vec![p("10.1.2.0/24")],
    );
    let expect = body(
        &[],
        &[
            attr(0x40, 1, &[0]),
            attr(0x40, 2, &[2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x00]),
            attr(0x40, 3, &[10, 0, 0, 1]),
            attr(0x80, 4, &[0, 0, 0, 100]),
            attr(0xc0, 8, &[0xfd, 0xe9, 0, 7]),
        ]
        .concat(),
        &NLRI,
    );
    assert_eq!(encode(&u, &ctx4()), expect);
    assert_eq!(Update::decode_body(&expect, &ctx4()).unwrap(), u);
}

/// FRR sends MP_REACH_NLRI first and sets the Extended Length bit on AS_PATH and
/// MP_REACH_NLRI even when short; the recorded layout reproduces that.
#[test]
fn frr_style_layout_is_reproduced() {
    let mp = [
        &[0, 2, 1, 16][..],
        &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets(),
        &[0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0],
    ]
    .concat();
    let attrs = [
        attr(0x90, tc::MP_REACH_NLRI, &mp),
        origin(),
        attr(0x50, tc::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9]),
    ]
    .concat();
    let wire = body(&[], &attrs, &[]);
    let u = Update::decode_body(&wire, &ctx4()).unwrap();
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    assert_eq!(
        u.layout.entries(),
        &[
            LayoutEntry {
                type_code: 14,
                extended_length: true
            },
            LayoutEntry {
                type_code: 1,
                extended_length: false
            },
            LayoutEntry {
                type_code: 2,
                extended_length: true
            },
        ]
    );
    assert_eq!(encode(&u, &ctx4()), wire);
    // Without the layout the encoder is canonical; semantic equality ignores layout.
    let mut c = u.clone();
    c.layout = WireLayout::default();
    assert_eq!(c, u);
    let canon = encode(&c, &ctx4());
    assert_ne!(canon, wire);
    assert_eq!(Update::decode_body(&canon, &ctx4()).unwrap(), u);
}

// ---------------------------------------------------------------------------------------
// RFC 6793: 2-octet sessions

#[test]
fn two_octet_encoding_uses_as_trans_and_as4_path() {
    let u = Update::new(
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![
                    AsSegment {
                        kind: AsSegmentType::ConfedSequence,
                        asns: vec![64512],
                    },
                    AsSegment {
                        kind: AsSegmentType::Sequence,
                        asns: vec![65001, 200000],
                    },
                ],
            }),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            aggregator: Some(Aggregator {
                asn: 300000,
                address: Ipv4Addr::new(1, 2, 3, 4),
            }),
            ..Default::default()
        },
        vec![p("10.1.2.0/24")],
    );
    let wire = encode(&u, &ctx2());
    let expect = body(
        &[],
        &[
            origin(),
            attr(0x40, 2, &[3, 1, 0xfc, 0x00, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0]),
            next_hop(),
            attr(0xc0, 7, &[0x5b, 0xa0, 1, 2, 3, 4]),
            // AS4_PATH without the confederation segment.
            attr(0xc0, 17, &[2, 2, 0, 0, 0xfd, 0xe9, 0, 3, 0x0d, 0x40]),
            attr(0xc0, 18, &[0, 4, 0x93, 0xe0, 1, 2, 3, 4]),
        ]
        .concat(),
        &NLRI,
    );
    assert_eq!(wire, expect);
    assert_eq!(Update::decode_body(&wire, &ctx2()).unwrap(), u);
    // No AS4 attributes when every AS fits 2 octets.
    let mut small = u.clone();
    small.attributes.as_path = Some(AsPath::from_sequence(vec![65001, 65002]));
    small.attributes.aggregator = None;
    let wire = encode(&small, &ctx2());
    assert!(split_attrs(split_body(&wire).1)
        .iter()
        .all(|(_, c, _)| *c != 17 && *c != 18));
}

#[test]
fn as4_path_merge_with_old_speaker_prepends() {
    // An OLD speaker (AS 100) prepended itself to a path that carried AS4_PATH [200000].
    let attrs = [
        origin(),
        attr(0x40, 2, &[2, 3, 0, 100, 0, 50, 0x5b, 0xa0]),
        next_hop(),
        attr(0xc0, 17, &[2, 1, 0, 3, 0x0d, 0x40]),
    ]
    .concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert!(u.issues.is_empty());
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![100, 50, 200000]))
    );
}

#[test]
fn as4_path_ignored_when_longer_than_as_path() {
    let attrs = [
        origin(),
        attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
        next_hop(),
        attr(0xc0, 17, &[2, 2, 0, 3, 0x0d, 0x40, 0, 3, 0x0d, 0x41]),
    ]
    .concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![AS_TRANS]))
    );
}

#[test]
fn as4_attributes_ignored_when_aggregator_is_not_as_trans() {
    let attrs = [
        origin(),
        attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
        next_hop(),
        attr(0xc0, 7, &[0, 100, 1, 2, 3, 4]),
        attr(0xc0, 17, &[2, 1, 0, 3, 0x0d, 0x40]),
        attr(0xc0, 18, &[0, 4, 0x93, 0xe0, 1, 2, 3, 4]),
    ]
    .concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![AS_TRANS]))
    );
    assert_eq!(u.attributes.aggregator.unwrap().asn, 100);
}

#[test]
fn as4_path_confed_segments_are_dropped() {
    let attrs = [
        origin(),
        attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
        next_hop(),
        attr(0xc0, 17, &[3, 1, 0, 0, 0xfc, 0, 2, 1, 0, 3, 0x0d, 0x40]),
    ]
    .concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![200000]))
    );
}

#[test]
fn as4_attributes_discarded_on_four_octet_session() {
    let u = decode4(&base_plus(&[
        attr(0xc0, 17, &[2, 1, 0, 3, 0x0d, 0x40]),
        attr(0xc0, 18, &[0, 4, 0x93, 0xe0, 1, 2, 3, 4]),
    ]))
    .unwrap();
    assert!(u.issues.is_empty());
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![65001]))
    );
    assert!(u.attributes.aggregator.is_none() && u.attributes.unknown.is_empty());
}

#[test]
fn malformed_as4_path_is_discarded() {
    // Segment length 2 with one AS: inconsistent with the attribute length.
    let attrs = [
        origin(),
        as_path2(),
        next_hop(),
        attr(0xc0, 17, &[2, 2, 0, 3, 0x0d, 0x40]),
    ]
    .concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    let (action, code, subcode, data) = only_issue(&u);
    assert_eq!(
        (action, code, subcode),
        (AttributeDiscard, 17, sub::OPTIONAL_ATTRIBUTE_ERROR)
    );
    assert_eq!(data, attr(0xc0, 17, &[2, 2, 0, 3, 0x0d, 0x40]));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![65001]))
    );
    assert!(!u.treat_as_withdraw());
    // Shorter than 6 octets.
    let attrs = [
        origin(),
        as_path2(),
        next_hop(),
        attr(0xc0, 17, &[2, 1, 0, 3]),
    ]
    .concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert_eq!(only_issue(&u).0, AttributeDiscard);
}

#[test]
fn malformed_as4_aggregator_is_discarded() {
    let bad = attr(0xc0, 18, &[0, 4, 0x93, 0xe0, 1, 2, 3]);
    let attrs = [origin(), as_path2(), next_hop(), bad.clone()].concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert_eq!(
        only_issue(&u),
        (AttributeDiscard, 18, sub::ATTRIBUTE_LENGTH_ERROR, bad)
    );
}

// ---------------------------------------------------------------------------------------
// RFC 4271 6.3 subcode 1: Malformed Attribute List (session reset cases of RFC 7606)

#[test]
fn withdrawn_length_overrun_resets() {
    assert_reset(
        Update::decode_body(&[0, 5, 24, 10, 1], &ctx4()),
        sub::MALFORMED_ATTRIBUTE_LIST,
        &[],
    );
    assert_reset(
        Update::decode_body(&[0], &ctx4()),
        sub::MALFORMED_ATTRIBUTE_LIST,
        &[],
    );
}

#[test]
fn total_attribute_length_overrun_resets() {
    assert_reset(
        Update::decode_body(&[0, 0, 0, 9, 0x40, 1, 1, 0], &ctx4()),
        sub::MALFORMED_ATTRIBUTE_LIST,
        &[],
    );
}

#[test]
fn duplicate_mp_reach_or_unreach_resets() {
    let un = attr(0x80, tc::MP_UNREACH_NLRI, &[0, 2, 1]);
    assert_reset(
        decode4(&base_plus(&[un.clone(), un])),
        sub::MALFORMED_ATTRIBUTE_LIST,
        &[],
    );
    let reach = attr(0x80, tc::MP_REACH_NLRI, &[0, 1, 1, 4, 10, 0, 0, 1, 0]);
    assert_reset(
        decode4(&base_plus(&[reach.clone(), reach])),
        sub::MALFORMED_ATTRIBUTE_LIST,
        &[],
    );
}

#[test]
fn duplicate_attribute_keeps_first() {
    let u = decode4(&base_plus(&[attr(0x40, tc::ORIGIN, &[2])])).unwrap();
    assert_eq!(
        only_issue(&u),
        (
            AttributeDiscard,
            tc::ORIGIN,
            sub::MALFORMED_ATTRIBUTE_LIST,
            vec![]
        )
    );
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    assert!(!u.treat_as_withdraw());
    // Unknown attributes too.
    let x = attr(0xc0, 99, &[1]);
    let u = decode4(&base_plus(&[x.clone(), attr(0xc0, 99, &[2])])).unwrap();
    assert_eq!(u.attributes.unknown.len(), 1);
    assert_eq!(&u.attributes.unknown[0].value[..], &[1]);
}

// subcode 2: Unrecognized Well-known Attribute
#[test]
fn unrecognized_well_known_resets_with_attribute() {
    let bad = attr(0x40, 99, &[1, 2, 3]);
    assert_reset(
        decode4(&base_plus(&[bad.clone()])),
        sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
        &bad,
    );
}

// subcode 3: Missing Well-known Attribute -> treat-as-withdraw (RFC 7606 3 d)
#[test]
fn missing_well_known_is_treat_as_withdraw() {
    for (attrs, missing) in [
        ([as_path4(), next_hop()].concat(), tc::ORIGIN),
        ([origin(), next_hop()].concat(), tc::AS_PATH),
        ([origin(), as_path4()].concat(), tc::NEXT_HOP),
    ] {
        let u = decode4(&attrs).unwrap();
        assert_eq!(
            only_issue(&u),
            (
                TreatAsWithdraw,
                missing,
                sub::MISSING_WELL_KNOWN_ATTRIBUTE,
                vec![missing]
            )
        );
        assert!(u.treat_as_withdraw());
        assert_eq!(u.nlri, vec![p("10.1.2.0/24")]);
    }
    // NLRI but no attributes at all: all three.
    let u = decode4(&[]).unwrap();
    let codes: Vec<u8> = u.issues.iter().map(|i| i.type_code).collect();
    assert_eq!(codes, vec![1, 2, 3]);
    // MP_REACH only: NEXT_HOP not required; LOCAL_PREF never required.
    let reach = attr(
        0x80,
        tc::MP_REACH_NLRI,
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 10],
    );
    let u = Update::decode_body(
        &body(&[], &[origin(), as_path4(), reach].concat(), &[]),
        &ctx4(),
    )
    .unwrap();
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    // A pure withdrawal needs nothing.
    let u = Update::decode_body(&body(&NLRI, &[], &[]), &ctx4()).unwrap();
    assert!(u.issues.is_empty());
}

// subcode 4: Attribute Flags Error -> each attribute's own RFC 7606 rule (section 3 c)
#[test]
fn flags_errors_follow_attribute_rules() {
    let cases: Vec<(Vec<u8>, Rfc7606Action)> = vec![
        (
            attr(0xc0, tc::MULTI_EXIT_DISC, &[0, 0, 0, 1]),
            TreatAsWithdraw,
        ),
        (attr(0x80, tc::LOCAL_PREF, &[0, 0, 0, 1]), TreatAsWithdraw),
        (attr(0x80, tc::ATOMIC_AGGREGATE, &[]), AttributeDiscard),
        (
            attr(0x40, tc::AGGREGATOR, &[0, 0, 0, 1, 1, 2, 3, 4]),
            AttributeDiscard,
        ),
        (attr(0x80, tc::COMMUNITIES, &[0, 1, 0, 1]), TreatAsWithdraw),
        (
            attr(0xc0, tc::ORIGINATOR_ID, &[1, 2, 3, 4]),
            TreatAsWithdraw,
        ),
        (attr(0x40, tc::CLUSTER_LIST, &[1, 2, 3, 4]), TreatAsWithdraw),
        (
            attr(0x80, tc::EXTENDED_COMMUNITIES, &[0; 8]),
            TreatAsWithdraw,
        ),
        (attr(0x40, tc::LARGE_COMMUNITIES, &[0; 12]), TreatAsWithdraw),
    ];
    for (bad, action) in cases {
        let u = decode4(&base_plus(&[bad.clone()])).unwrap();
        assert_eq!(
            only_issue(&u),
            (action, bad[1], sub::ATTRIBUTE_FLAGS_ERROR, bad.clone())
        );
    }
    // Well-known ones (replacing the good copy).
    for bad in [
        attr(0xc0, tc::ORIGIN, &[0]),
        attr(0x80, tc::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9]),
        attr(0x00, tc::NEXT_HOP, &[10, 0, 0, 1]),
    ] {
        let mut list = [origin(), as_path4(), next_hop()];
        list[usize::from(bad[1]) - 1] = bad.clone();
        let u = decode4(&list.concat()).unwrap();
        assert_eq!(
            only_issue(&u),
            (TreatAsWithdraw, bad[1], sub::ATTRIBUTE_FLAGS_ERROR, bad)
        );
    }
    // MP_REACH / MP_UNREACH: session reset with the attribute.
    let bad = attr(0xc0, tc::MP_UNREACH_NLRI, &[0, 2, 1]);
    assert_reset(
        decode4(&base_plus(&[bad.clone()])),
        sub::ATTRIBUTE_FLAGS_ERROR,
        &bad,
    );
    let bad = attr(0x40, tc::MP_REACH_NLRI, &[0, 1, 1, 4, 10, 0, 0, 1, 0]);
    assert_reset(
        decode4(&base_plus(&[bad.clone()])),
        sub::ATTRIBUTE_FLAGS_ERROR,
        &bad,
    );
}

#[test]
fn partial_and_extended_length_bits_are_not_flag_errors() {
    let u = decode4(&base_plus(&[
        attr(0x90, tc::MULTI_EXIT_DISC, &[0, 0, 0, 7]),
        attr(0xe0, tc::COMMUNITIES, &[0, 1, 0, 1]),
    ]))
    .unwrap();
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    assert_eq!(u.attributes.med, Some(7));
    // The Partial bit of a recognized optional transitive attribute is kept (RFC 4271 5).
    assert!(u.attributes.partial.contains(tc::COMMUNITIES));
    let list = split_attrs(split_body(&encode(&u, &ctx4())).1);
    assert!(list.contains(&(0xe0, tc::COMMUNITIES, vec![0, 1, 0, 1])));
    assert!(list.contains(&(0x90, tc::MULTI_EXIT_DISC, vec![0, 0, 0, 7])));
}

// subcode 5: Attribute Length Error
#[test]
fn length_errors_follow_attribute_rules() {
    let cases: Vec<(Vec<u8>, Rfc7606Action)> = vec![
        (attr(0x80, tc::MULTI_EXIT_DISC, &[0, 0, 1]), TreatAsWithdraw),
        (
            attr(0x40, tc::LOCAL_PREF, &[0, 0, 0, 0, 1]),
            TreatAsWithdraw,
        ),
        (attr(0x40, tc::ATOMIC_AGGREGATE, &[1]), AttributeDiscard),
        (
            attr(0xc0, tc::AGGREGATOR, &[0, 1, 1, 2, 3, 4]),
            AttributeDiscard,
        ),
        (
            attr(0xc0, tc::COMMUNITIES, &[0, 1, 0, 1, 0]),
            TreatAsWithdraw,
        ),
        (attr(0xc0, tc::COMMUNITIES, &[]), TreatAsWithdraw),
        (attr(0x80, tc::ORIGINATOR_ID, &[1, 2, 3]), TreatAsWithdraw),
        (
            attr(0x80, tc::CLUSTER_LIST, &[1, 2, 3, 4, 5, 6]),
            TreatAsWithdraw,
        ),
        (attr(0x80, tc::CLUSTER_LIST, &[]), TreatAsWithdraw),
        (
            attr(0xc0, tc::EXTENDED_COMMUNITIES, &[0; 7]),
            TreatAsWithdraw,
        ),
        (attr(0xc0, tc::LARGE_COMMUNITIES, &[0; 13]), TreatAsWithdraw),
        (attr(0xc0, tc::LARGE_COMMUNITIES, &[]), TreatAsWithdraw),
    ];
    for (bad, action) in cases {
        let u = decode4(&base_plus(&[bad.clone()])).unwrap();
        assert_eq!(
            only_issue(&u),
            (action, bad[1], sub::ATTRIBUTE_LENGTH_ERROR, bad.clone())
        );
    }
    for bad in [
        attr(0x40, tc::ORIGIN, &[0, 0]),
        attr(0x40, tc::NEXT_HOP, &[10, 0, 0, 1, 0]),
    ] {
        let mut list = [origin(), as_path4(), next_hop()];
        list[usize::from(bad[1]) - 1] = bad.clone();
        let u = decode4(&list.concat()).unwrap();
        assert_eq!(
            only_issue(&u),
            (TreatAsWithdraw, bad[1], sub::ATTRIBUTE_LENGTH_ERROR, bad)
        );
    }
    // AGGREGATOR is 6 octets on a 2-octet session.
    let bad = attr(0xc0, tc::AGGREGATOR, &[0, 0, 0, 1, 1, 2, 3, 4]);
    let u = Update::decode_body(
        &body(
            &[],
            &[origin(), as_path2(), next_hop(), bad.clone()].concat(),
            &NLRI,
        ),
        &ctx2(),
    )
    .unwrap();
    assert_eq!(
        only_issue(&u),
        (AttributeDiscard, 7, sub::ATTRIBUTE_LENGTH_ERROR, bad)
    );
    assert!(u.attributes.aggregator.is_none());
}

// subcode 6: Invalid ORIGIN Attribute
#[test]
fn invalid_origin_is_treat_as_withdraw() {
    let bad = attr(0x40, tc::ORIGIN, &[3]);
    let u = decode4(&[bad.clone(), as_path4(), next_hop()].concat()).unwrap();
    assert_eq!(
        only_issue(&u),
        (TreatAsWithdraw, 1, sub::INVALID_ORIGIN_ATTRIBUTE, bad)
    );
}

// subcode 8: Invalid NEXT_HOP Attribute
#[test]
fn invalid_next_hop_is_treat_as_withdraw() {
    for nh in [[0, 0, 0, 0], [224, 0, 0, 5], [255, 255, 255, 255]] {
        let bad = attr(0x40, tc::NEXT_HOP, &nh);
        let u = decode4(&[origin(), as_path4(), bad.clone()].concat()).unwrap();
        assert_eq!(
            only_issue(&u),
            (TreatAsWithdraw, 3, sub::INVALID_NEXT_HOP_ATTRIBUTE, bad)
        );
    }
}

// subcode 9: Optional Attribute Error
#[test]
fn optional_attribute_errors() {
    // AGGREGATOR with AS 0 (RFC 7607): attribute discard.
    let bad = attr(0xc0, tc::AGGREGATOR, &[0, 0, 0, 0, 1, 2, 3, 4]);
    let u = decode4(&base_plus(&[bad.clone()])).unwrap();
    assert_eq!(
        only_issue(&u),
        (AttributeDiscard, 7, sub::OPTIONAL_ATTRIBUTE_ERROR, bad)
    );
    // MP_REACH_NLRI: bad next hop length, bad NLRI, too short -> reset (RFC 7606 7.11).
    for v in [
        &[0, 2, 1, 4, 10, 0, 0, 1, 0][..],
        &[0, 1, 1, 5, 10, 0, 0, 1, 1, 0][..],
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 33, 1, 2, 3, 4, 5][..],
        &[0, 1, 1, 4, 10, 0, 0, 1, 0, 24, 10][..],
        &[0, 1, 1, 4, 10, 0, 0][..],
        &[0, 1][..],
    ] {
        let bad = attr(0x80, tc::MP_REACH_NLRI, v);
        assert_reset(
            decode4(&base_plus(&[bad.clone()])),
            sub::OPTIONAL_ATTRIBUTE_ERROR,
            &bad,
        );
    }
    for v in [&[0, 2][..], &[0, 2, 1, 129][..], &[0, 1, 1, 24, 10][..]] {
        let bad = attr(0x80, tc::MP_UNREACH_NLRI, v);
        assert_reset(
            decode4(&base_plus(&[bad.clone()])),
            sub::OPTIONAL_ATTRIBUTE_ERROR,
            &bad,
        );
    }
}

// subcode 10: Invalid Network Field
#[test]
fn invalid_network_field_resets() {
    let attrs = base_plus(&[]);
    for nlri in [&[33, 1, 2, 3, 4, 5][..], &[24, 10, 1][..]] {
        assert_reset(
            Update::decode_body(&body(&[], &attrs, nlri), &ctx4()),
            sub::INVALID_NETWORK_FIELD,
            &[],
        );
        assert_reset(
            Update::decode_body(&body(nlri, &[], &[]), &ctx4()),
            sub::INVALID_NETWORK_FIELD,
            &[],
        );
    }
    // With add-path, a truncated path identifier.
    let ctx = SessionContext {
        add_path: vec![Family::IPV4_UNICAST],
        ..ctx4()
    };
    assert_reset(
        Update::decode_body(&body(&[], &attrs, &[0, 0, 1]), &ctx),
        sub::INVALID_NETWORK_FIELD,
        &[],
    );
}

// subcode 11: Malformed AS_PATH
#[test]
fn malformed_as_path_is_treat_as_withdraw() {
    for v in [
        &[5, 1, 0, 0, 0, 1][..],             // unknown segment type
        &[2, 0][..],                         // zero segment length
        &[2, 2, 0, 0, 0, 1][..],             // segment overruns the attribute
        &[2, 1, 0, 0, 0, 1, 2][..],          // trailing octet
        &[2, 2, 0, 0, 0, 1, 0, 0, 0, 0][..], // AS 0 (RFC 7607)
    ] {
        let bad = attr(0x40, tc::AS_PATH, v);
        let u = decode4(&[origin(), bad, next_hop()].concat()).unwrap();
        assert_eq!(
            only_issue(&u),
            (TreatAsWithdraw, 2, sub::MALFORMED_AS_PATH, vec![])
        );
        assert!(u.attributes.as_path.is_none());
    }
    // A 2-octet path read on a 4-octet session is malformed.
    let u = decode4(&[origin(), as_path2(), next_hop()].concat()).unwrap();
    assert_eq!(only_issue(&u).2, sub::MALFORMED_AS_PATH);
    // Empty AS_PATH is fine (iBGP-originated).
    let u = decode4(&[origin(), attr(0x40, 2, &[]), next_hop()].concat()).unwrap();
    assert!(u.issues.is_empty());
}

// RFC 7606 section 4: attribute length fields
#[test]
fn attribute_overrun_is_treat_as_withdraw_and_nlri_still_found() {
    // COMMUNITIES claims 8 octets, 4 remain before the total attribute length ends.
    let mut attrs = base_plus(&[]);
    attrs.extend_from_slice(&[0xc0, 8, 8, 0, 1, 0, 1]);
    let u = decode4(&attrs).unwrap();
    assert_eq!(
        only_issue(&u),
        (
            TreatAsWithdraw,
            8,
            sub::ATTRIBUTE_LENGTH_ERROR,
            vec![0xc0, 8, 8, 0, 1, 0, 1]
        )
    );
    assert_eq!(u.nlri, vec![p("10.1.2.0/24")]);
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    // Fewer octets than an attribute header.
    let mut attrs = base_plus(&[]);
    attrs.extend_from_slice(&[0xc0, 8]);
    let u = decode4(&attrs).unwrap();
    assert_eq!(
        only_issue(&u),
        (TreatAsWithdraw, 8, sub::MALFORMED_ATTRIBUTE_LIST, vec![])
    );
    let mut attrs = base_plus(&[]);
    attrs.extend_from_slice(&[0xd0, 8, 0]);
    assert_eq!(only_issue(&decode4(&attrs).unwrap()).0, TreatAsWithdraw);
    // A truncated MP_REACH header: session reset too.
    let mut attrs = base_plus(&[]);
    attrs.extend_from_slice(&[0x90, 14, 0]);
    assert_reset(decode4(&attrs), sub::MALFORMED_ATTRIBUTE_LIST, &[]);
    // MP_REACH overrunning: its NLRI cannot be found, session reset.
    let mut attrs = base_plus(&[]);
    attrs.extend_from_slice(&[0x80, 14, 20, 0, 1, 1]);
    assert_reset(
        decode4(&attrs),
        sub::ATTRIBUTE_LENGTH_ERROR,
        &[0x80, 14, 20, 0, 1, 1],
    );
}

// RFC 7606 7.5: LOCAL_PREF from eBGP
#[test]
fn ebgp_local_pref_is_ignored() {
    let bad = attr(0x40, tc::LOCAL_PREF, &[0, 0, 1]);
    let mut u = decode4(&base_plus(&[bad])).unwrap();
    assert!(u.treat_as_withdraw());
    u.strip_ebgp_local_pref();
    assert!(!u.treat_as_withdraw() && u.issues.is_empty());
    let mut u = decode4(&base_plus(&[attr(0x40, tc::LOCAL_PREF, &[0, 0, 0, 200])])).unwrap();
    assert_eq!(u.attributes.local_pref, Some(200));
    u.strip_ebgp_local_pref();
    assert_eq!(u.attributes.local_pref, None);
}

// Unknown attributes
#[test]
fn unknown_optional_attributes() {
    let value: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let u = decode4(&base_plus(&[
        attr(0x80, 40, &[9, 9]), // optional non-transitive: dropped
        attr(0xd0, 41, &value),  // optional transitive, extended length: kept
    ]))
    .unwrap();
    assert!(u.issues.is_empty());
    assert_eq!(
        u.attributes.unknown,
        vec![RawAttribute {
            flags: 0xc0,
            type_code: 41,
            value: Bytes::from(value.clone())
        }]
    );
    // Re-encoded as received, value octets exact.
    let wire = encode(&u, &ctx4());
    let list = split_attrs(split_body(&wire).1);
    assert_eq!(list.last().unwrap(), &(0xd0, 41, value.clone()));
    assert!(list.iter().all(|(_, c, _)| *c != 40));
    // Passed on to another peer: Partial set (RFC 4271 section 5).
    let mut fwd = u.clone();
    fwd.attributes.mark_unknown_partial();
    let list = split_attrs(split_body(&encode(&fwd, &ctx4())).1);
    assert_eq!(list.last().unwrap(), &(0xf0, 41, value));
}

#[test]
fn large_community_duplicates_removed() {
    let one = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    let u = decode4(&base_plus(&[attr(0xc0, 32, &[one, one].concat())])).unwrap();
    assert!(u.issues.is_empty());
    assert_eq!(
        u.attributes.large_communities,
        vec![LargeCommunity {
            global_admin: 1,
            local_data1: 2,
            local_data2: 3
        }]
    );
}

// ---------------------------------------------------------------------------------------
// MP_REACH / MP_UNREACH

#[test]
fn mp_reach_ipv6_with_link_local_and_add_path() {
    let ctx = SessionContext {
        add_path: vec![Family::IPV6_UNICAST],
        ..ctx4()
    };
    let global = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let v = [
        &[0, 2, 1, 32][..],
        &global.octets(),
        &ll.octets(),
        &[0, 0, 0, 0, 9, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 5],
    ]
    .concat();
    let wire = body(
        &[],
        &[origin(), as_path4(), attr(0x80, 14, &v)].concat(),
        &[],
    );
    let u = Update::decode_body(&wire, &ctx).unwrap();
    assert_eq!(
        u.attributes.mp_reach,
        Some(MpReach::new(
            Family::IPV6_UNICAST,
            MpNextHop::Ipv6 {
                global,
                link_local: Some(ll)
            },
            vec![Nlri::with_path_id("2001:db8:5::/48".parse().unwrap(), 9)],
        ))
    );
    assert_eq!(encode(&u, &ctx), wire);
}

#[test]
fn unknown_family_is_kept_raw() {
    let reach = [&[0, 25, 70, 4, 1, 2, 3, 4, 0][..], &[0xaa; 10]].concat();
    let unreach = [&[0, 25, 70][..], &[0xbb; 5]].concat();
    let wire = body(
        &[],
        &[
            origin(),
            as_path4(),
            attr(0x80, 14, &reach),
            attr(0x80, 15, &unreach),
        ]
        .concat(),
        &[],
    );
    let u = Update::decode_body(&wire, &ctx4()).unwrap();
    let r = u.attributes.mp_reach.as_ref().unwrap();
    assert_eq!(
        r.next_hop,
        MpNextHop::Other(Bytes::from_static(&[1, 2, 3, 4]))
    );
    assert_eq!(&r.raw_nlri[..], &[0xaa; 10]);
    assert!(r.nlri.is_empty());
    assert_eq!(
        &u.attributes.mp_unreach.as_ref().unwrap().raw_withdrawn[..],
        &[0xbb; 5]
    );
    assert_eq!(encode(&u, &ctx4()), wire);
}

// ---------------------------------------------------------------------------------------
// End-of-RIB

#[test]
fn end_of_rib() {
    assert_eq!(
        Update::decode_body(&[0, 0, 0, 0], &ctx4())
            .unwrap()
            .end_of_rib(),
        Some(Family::IPV4_UNICAST)
    );
    let v6 = Update::end_of_rib_marker(Family::IPV6_UNICAST);
    let wire = encode(&v6, &ctx4());
    assert_eq!(wire, body(&[], &attr(0x80, 15, &[0, 2, 1]), &[]));
    assert_eq!(
        Update::decode_body(&wire, &ctx4()).unwrap().end_of_rib(),
        Some(Family::IPV6_UNICAST)
    );
    assert_eq!(
        encode(&Update::end_of_rib_marker(Family::IPV4_UNICAST), &ctx4()),
        vec![0, 0, 0, 0]
    );
    // Not EoR: a withdrawal, or MP_UNREACH with routes, or other attributes.
    assert_eq!(
        Update::decode_body(&body(&NLRI, &[], &[]), &ctx4())
            .unwrap()
            .end_of_rib(),
        None
    );
    let mut u = v6.clone();
    u.attributes.mp_unreach = Some(MpUnreach::new(
        Family::IPV6_UNICAST,
        vec![Nlri::new("::/0".parse().unwrap())],
    ));
    assert_eq!(u.end_of_rib(), None);
    let mut u = v6;
    u.attributes.origin = Some(Origin::Igp);
    assert_eq!(u.end_of_rib(), None);
}

// ---------------------------------------------------------------------------------------
// Encoder errors

#[test]
fn encode_too_long_leaves_buffer_untouched() {
    let nlri: Vec<Nlri> = (0..1200u32)
        .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
        .collect();
    let u = Update {
        withdrawn: nlri,
        ..Default::default()
    };
    let mut out = BytesMut::from(&b"keep"[..]);
    let e = u.encode_body(&ctx2(), &mut out).unwrap_err();
    assert!(matches!(e, EncodeError::TooLong { max: 4096, .. }), "{e}");
    assert_eq!(&out[..], b"keep");
    // Fits with the extended message capability.
    u.encode_body(
        &SessionContext {
            extended_message: true,
            ..ctx2()
        },
        &mut out,
    )
    .unwrap();
}

#[test]
fn encode_rejects_inconsistent_values() {
    let bad = [
        PathAttributes {
            unknown: vec![RawAttribute {
                flags: 0xc0,
                type_code: tc::ORIGIN,
                value: Bytes::new(),
            }],
            ..Default::default()
        },
        PathAttributes {
            mp_reach: Some(MpReach::new(
                Family::IPV6_UNICAST,
                MpNextHop::Ipv4(Ipv4Addr::LOCALHOST),
                vec![],
            )),
            ..Default::default()
        },
        PathAttributes {
            mp_unreach: Some(MpUnreach::new(Family::IPV6_UNICAST, vec![p("10.0.0.0/8")])),
            ..Default::default()
        },
    ];
    for attributes in bad {
        let u = Update {
            attributes,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        assert!(matches!(
            u.encode_body(&ctx4(), &mut out),
            Err(EncodeError::Invalid(_))
        ));
        assert!(out.is_empty());
    }
    let u = Update {
        nlri: vec![Nlri::new("::/0".parse().unwrap())],
        ..Default::default()
    };
    assert!(u.encode_body(&ctx4(), &mut BytesMut::new()).is_err());
}

#[test]
fn long_sequences_are_split_into_segments() {
    let asns: Vec<u32> = (1..=300).collect();
    let u = Update::new(
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(asns.clone())),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Default::default()
        },
        vec![p("10.1.2.0/24")],
    );
    let d = Update::decode_body(&encode(&u, &ctx4()), &ctx4()).unwrap();
    let segs = &d.attributes.as_path.unwrap().segments;
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].asns.len(), 255);
    assert_eq!(
        segs.iter().flat_map(|s| s.asns.clone()).collect::<Vec<_>>(),
        asns
    );
}

#[test]
fn as4_path_with_as_zero_is_discarded() {
    let bad = attr(0xc0, 17, &[2, 1, 0, 0, 0, 0]);
    let attrs = [origin(), as_path2(), next_hop(), bad.clone()].concat();
    let u = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
    assert_eq!(
        only_issue(&u),
        (AttributeDiscard, 17, sub::OPTIONAL_ATTRIBUTE_ERROR, bad)
    );
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![65001]))
    );
}

/// Treat-as-withdraw affects the announced routes only: withdrawals (body and
/// MP_UNREACH_NLRI) in the same UPDATE stay valid and are decoded.
#[test]
fn treat_as_withdraw_keeps_withdrawals() {
    let unreach = attr(0x80, 15, &[0, 2, 1, 64, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 1]);
    let attrs = [attr(0x40, 1, &[7]), as_path4(), next_hop(), unreach].concat();
    let u = Update::decode_body(&body(&[16, 10, 9], &attrs, &NLRI), &ctx4()).unwrap();
    assert!(u.treat_as_withdraw());
    assert_eq!(u.withdrawn, vec![p("10.9.0.0/16")]);
    assert_eq!(u.nlri, vec![p("10.1.2.0/24")]);
    assert_eq!(
        u.attributes.mp_unreach.unwrap().withdrawn,
        vec![p("2001:db8:0:1::/64")]
    );
}

#[test]
fn encode_rejects_duplicate_raw_attributes() {
    let raw = RawAttribute {
        flags: 0xc0,
        type_code: 99,
        value: Bytes::new(),
    };
    let u = Update {
        attributes: PathAttributes {
            unknown: vec![raw.clone(), raw],
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        u.encode_body(&ctx4(), &mut BytesMut::new()),
        Err(EncodeError::Invalid(_))
    ));
}

/// Decoding is idempotent through the encoder on 2-octet sessions, also for odd inputs:
/// AS4 attributes that RFC 6793 says to ignore (their Partial bit is not kept) and a
/// confederation segment in the middle of AS_PATH (dropped by the merge).
#[test]
fn two_octet_merge_is_idempotent() {
    let cases = [
        // AS4_PATH with Partial, longer than AS_PATH: ignored.
        [
            origin(),
            attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
            next_hop(),
            attr(0xe0, 17, &[2, 2, 0, 3, 0x0d, 0x40, 0, 3, 0x0d, 0x41]),
        ]
        .concat(),
        // AS4_AGGREGATOR with Partial, AGGREGATOR not AS_TRANS: ignored.
        [
            origin(),
            as_path2(),
            next_hop(),
            attr(0xc0, 7, &[0xfd, 0xe9, 1, 2, 3, 4]),
            attr(0xe0, 18, &[0, 4, 0x93, 0xe0, 1, 2, 3, 4]),
        ]
        .concat(),
        // Used, with Partial: kept and re-emitted.
        [
            origin(),
            attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
            next_hop(),
            attr(0xc0, 7, &[0x5b, 0xa0, 1, 2, 3, 4]),
            attr(0xe0, 17, &[2, 1, 0, 3, 0x0d, 0x40]),
            attr(0xe0, 18, &[0, 4, 0x93, 0xe0, 1, 2, 3, 4]),
        ]
        .concat(),
        // [seq(100), confed_seq(5), seq(AS_TRANS)] + AS4_PATH [seq(200000)].
        [
            origin(),
            attr(0x40, 2, &[2, 1, 0, 100, 3, 1, 0, 5, 2, 1, 0x5b, 0xa0]),
            next_hop(),
            attr(0xc0, 17, &[2, 1, 0, 3, 0x0d, 0x40]),
        ]
        .concat(),
    ];
    for attrs in cases {
        let first = Update::decode_body(&body(&[], &attrs, &NLRI), &ctx2()).unwrap();
        assert!(first.issues.is_empty(), "{:?}", first.issues);
        let again = Update::decode_body(&encode(&first, &ctx2()), &ctx2()).unwrap();
        assert_eq!(again, first);
    }
    let used = Update::decode_body(
        &body(
            &[],
            &[
                origin(),
                attr(0x40, 2, &[2, 1, 0x5b, 0xa0]),
                next_hop(),
                attr(0xe0, 17, &[2, 1, 0, 3, 0x0d, 0x40]),
            ]
            .concat(),
            &NLRI,
        ),
        &ctx2(),
    )
    .unwrap();
    assert!(used.attributes.partial.contains(tc::AS4_PATH));
    assert_eq!(
        used.attributes.as_path,
        Some(AsPath::from_sequence(vec![200000]))
    );
}
