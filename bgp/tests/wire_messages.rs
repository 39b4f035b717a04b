//! Wire format of the messages other than UPDATE: round trips in every session context, every
//! RFC 4271 section 6.1 / 6.2 error (and the RFC 7313 ROUTE-REFRESH length error) with its
//! exact NOTIFICATION, and the tokio-util framing.

// Helpers outside #[test] functions are test code too.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use wren_bgp::wire::context::MAX_EXTENDED_MESSAGE_LEN;
use wren_bgp::wire::open::param_type;
use wren_bgp::wire::{
    AddPathDirection, AddPathEntry, Afi, BgpCodec, Capability, CodecError, DecodeError,
    EncodeError, Family, GracefulRestartCap, HeaderError, Message, Notification, Open, OptParam,
    RouteRefresh, RouteRefreshSubtype, Safi, SessionContext, MARKER,
};

// ===== helpers =====

/// A message with the given header length field and type, and `body`.
fn raw(length: u16, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = MARKER.to_vec();
    v.extend_from_slice(&length.to_be_bytes());
    v.push(kind);
    v.extend_from_slice(body);
    v
}

/// A message whose length field is right for `body`.
fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    raw((19 + body.len()) as u16, kind, body)
}

/// An OPEN body with the given fixed fields and raw optional parameter bytes (non-extended).
fn open_body(version: u8, my_as: u16, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let mut v = vec![version];
    v.extend_from_slice(&my_as.to_be_bytes());
    v.extend_from_slice(&hold.to_be_bytes());
    v.extend_from_slice(&id);
    v.push(params.len() as u8);
    v.extend_from_slice(params);
    v
}

fn valid_open_body(params: &[u8]) -> Vec<u8> {
    open_body(4, 65001, 90, [10, 0, 0, 1], params)
}

/// Decode and return the NOTIFICATION the error asks for, as (code, subcode, data).
fn notification_for(bytes: &[u8], ctx: &SessionContext) -> (u8, u8, Vec<u8>) {
    let err = Message::decode(bytes, ctx).expect_err("message must be rejected");
    let n = err.notification();
    (n.code, n.subcode, n.data.to_vec())
}

fn all_contexts() -> Vec<SessionContext> {
    (0u8..64).map(SessionContext::from_flags).collect()
}

fn encode(m: &Message, ctx: &SessionContext) -> Vec<u8> {
    m.to_bytes(ctx).expect("encodes").to_vec()
}

// ===== strategies =====

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![
        Just(Family::IPV4_UNICAST),
        Just(Family::IPV6_UNICAST),
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(Afi(a), Safi(s))),
    ]
}

fn direction() -> impl Strategy<Value = AddPathDirection> {
    prop_oneof![
        Just(AddPathDirection::Receive),
        Just(AddPathDirection::Send),
        Just(AddPathDirection::Both),
        any::<u8>()
            .prop_filter("not 1..=3", |v| !(1..=3).contains(v))
            .prop_map(AddPathDirection::Other),
    ]
}

const KNOWN_CODES: [u8; 8] = [1, 2, 6, 64, 65, 69, 70, 73];

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        Just(Capability::EnhancedRouteRefresh),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..=4095,
            proptest::collection::vec((family(), any::<bool>()), 0..8)
        )
            .prop_map(|(r, n, t, families)| {
                Capability::GracefulRestart(GracefulRestartCap {
                    restart_state: r,
                    notification: n,
                    restart_time: t,
                    families,
                })
            }),
        (1u32..).prop_map(Capability::FourOctetAs),
        proptest::collection::vec(
            (family(), direction())
                .prop_map(|(family, direction)| AddPathEntry { family, direction }),
            0..8
        )
        .prop_map(Capability::AddPath),
        (bytes(40), bytes(40)).prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (
            any::<u8>().prop_filter("unknown code", |c| !KNOWN_CODES.contains(c)),
            bytes(60)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

/// A valid OPEN (accepted by `Message::decode`): capability parameters only.
fn open() -> impl Strategy<Value = Open> {
    (
        1u16..,
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        proptest::collection::vec(
            proptest::collection::vec(capability(), 0..6).prop_map(OptParam::Capabilities),
            0..6,
        ),
        any::<bool>(),
    )
        .prop_map(|(my_as, hold_time, id, params, extended_params)| {
            let mut open = Open {
                version: 4,
                my_as,
                hold_time,
                bgp_id: Ipv4Addr::from(id),
                params,
                extended_params,
            };
            // Parameters that do not fit the classic 1-octet lengths need RFC 9072.
            if open.encode_body(&mut BytesMut::new()).is_err() {
                open.extended_params = true;
            }
            open
        })
}

fn notification() -> impl Strategy<Value = Notification> {
    (any::<u8>(), any::<u8>(), bytes(300)).prop_map(|(code, subcode, data)| Notification {
        code,
        subcode,
        data,
    })
}

fn route_refresh() -> impl Strategy<Value = RouteRefresh> {
    (
        any::<u16>(),
        prop_oneof![
            Just(RouteRefreshSubtype::Request),
            Just(RouteRefreshSubtype::BoRR),
            Just(RouteRefreshSubtype::EoRR),
            (3u8..).prop_map(RouteRefreshSubtype::Other),
        ],
        any::<u8>(),
    )
        .prop_map(|(afi, subtype, safi)| RouteRefresh {
            afi: Afi(afi),
            subtype,
            safi: Safi(safi),
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        notification().prop_map(Message::Notification),
        Just(Message::Keepalive),
        route_refresh().prop_map(Message::RouteRefresh),
    ]
}

fn context() -> impl Strategy<Value = SessionContext> {
    (0u8..64).prop_map(SessionContext::from_flags)
}

// ===== round trips =====

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_round_trip(m in message(), ctx in context()) {
        let bytes = encode(&m, &ctx);
        let decoded = Message::decode(&bytes, &ctx).expect("decodes");
        prop_assert_eq!(&decoded, &m);
        // Byte-exact: re-encoding what was decoded gives the same octets.
        prop_assert_eq!(encode(&decoded, &ctx), bytes);
    }

    #[test]
    fn open_with_unknown_params_round_trips_structurally(
        open in open(),
        unknown in proptest::collection::vec(
            ((0u8..=254).prop_filter("not capabilities", |t| *t != param_type::CAPABILITIES),
             bytes(40)),
            1..4,
        ),
        at in any::<prop::sample::Index>(),
    ) {
        let mut open = open;
        for (param_type, value) in unknown {
            let i = at.index(open.params.len() + 1);
            open.params.insert(i, OptParam::Unknown { param_type, value });
        }
        if open.encode_body(&mut BytesMut::new()).is_err() {
            open.extended_params = true;
        }
        let mut body = BytesMut::new();
        open.encode_body(&mut body).unwrap();
        prop_assert_eq!(Open::parse_body(&body).unwrap(), open.clone());
        // ... while the full decode rejects it (RFC 4271 section 6.2).
        let bytes = msg(1, &body);
        let n = Message::decode(&bytes, &SessionContext::default()).unwrap_err().notification();
        prop_assert_eq!((n.code, n.subcode, n.data.len()), (2, 4, 0));
    }

    #[test]
    fn decode_never_panics(ctx in context(), kind in 0u8..8, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Message::decode(&msg(kind, &body), &ctx);
    }

    #[test]
    fn codec_framing_is_independent_of_chunking(
        msgs in proptest::collection::vec(message(), 1..6),
        chunk in 1usize..64,
        ctx in context(),
    ) {
        let mut codec = BgpCodec::with_contexts(ctx.clone(), ctx.clone());
        let mut wire = BytesMut::new();
        for m in &msgs {
            codec.encode(m, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }
}

#[test]
fn keepalive_in_every_context() {
    for ctx in all_contexts() {
        let bytes = encode(&Message::Keepalive, &ctx);
        assert_eq!(bytes, raw(19, 4, &[]));
        assert_eq!(Message::decode(&bytes, &ctx).unwrap(), Message::Keepalive);
    }
}

#[test]
fn route_refresh_bytes() {
    let rr = RouteRefresh::with_subtype(Family::IPV6_UNICAST, RouteRefreshSubtype::EoRR);
    let bytes = encode(&Message::RouteRefresh(rr), &SessionContext::default());
    assert_eq!(bytes, raw(23, 5, &[0, 2, 2, 1]));
}

/// An OPEN laid out as FRR sends it: one optional parameter per capability, including the
/// pre-standard Cisco route refresh code 128, FQDN and graceful restart with the N bit.
#[test]
fn frr_style_open_is_byte_exact() {
    let params: Vec<u8> = [
        &[2, 6, 1, 4, 0, 1, 0, 1][..],                      // MP ipv4 unicast
        &[2, 2, 128, 0],                                    // old Cisco route refresh
        &[2, 2, 2, 0],                                      // route refresh
        &[2, 2, 70, 0],                                     // enhanced route refresh
        &[2, 6, 65, 4, 0, 0, 0xfd, 0xe9],                   // 4-octet AS 65001
        &[2, 6, 69, 4, 0, 1, 1, 3],                         // add-path ipv4 unicast both
        &[2, 9, 73, 7, 2, b'r', b'1', 3, b'l', b'a', b'b'], // FQDN r1.lab
        &[2, 8, 64, 6, 0x40, 120, 0, 1, 1, 0x80],           // GR: N bit, 120 s, ipv4u F
        &[2, 2, 6, 0],                                      // extended message
    ]
    .concat();
    let bytes = msg(1, &open_body(4, 65001, 180, [192, 0, 2, 1], &params));
    let ctx = SessionContext::default();
    let Message::Open(open) = Message::decode(&bytes, &ctx).unwrap() else {
        panic!("not an OPEN");
    };
    assert_eq!(open.params.len(), 9);
    assert_eq!(open.asn(), 65001);
    assert_eq!(open.families(), vec![Family::IPV4_UNICAST]);
    assert!(open.route_refresh() && open.enhanced_route_refresh() && open.extended_message());
    assert_eq!(
        open.add_path_direction(Family::IPV4_UNICAST),
        Some(AddPathDirection::Both)
    );
    let gr = open.graceful_restart().unwrap();
    assert!(gr.notification && !gr.restart_state);
    assert_eq!(gr.restart_time, 120);
    assert_eq!(gr.families, vec![(Family::IPV4_UNICAST, true)]);
    assert_eq!(
        open.fqdn(),
        Some((&Bytes::from_static(b"r1"), &Bytes::from_static(b"lab")))
    );
    assert!(open.capabilities().any(|c| *c
        == Capability::Unknown {
            code: 128,
            value: Bytes::new()
        }));
    assert_eq!(encode(&Message::Open(open), &ctx), bytes);
}

/// RFC 9072: Non-Ext OP Len 255, Non-Ext OP Type 255, 2-octet Extended Opt. Parm. Length and
/// 2-octet parameter lengths; capabilities keep 1-octet lengths.
#[test]
fn extended_optional_parameters() {
    // 40 unknown capabilities of 8 octets: 400 octets in one parameter.
    let mut caps = Vec::new();
    for i in 0..40u8 {
        caps.extend_from_slice(&[200, 6, i, i, i, i, i, i]);
    }
    let mut body = vec![4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 1, 255, 255];
    body.extend_from_slice(&((caps.len() + 3) as u16).to_be_bytes());
    body.push(2);
    body.extend_from_slice(&(caps.len() as u16).to_be_bytes());
    body.extend_from_slice(&caps);
    let bytes = msg(1, &body);
    let ctx = SessionContext::default();
    let m = Message::decode(&bytes, &ctx).unwrap();
    let Message::Open(open) = &m else { panic!() };
    assert!(open.extended_params);
    assert_eq!(open.capabilities().count(), 40);
    assert_eq!(encode(&m, &ctx), bytes);
    // Without the flag the same OPEN does not fit.
    let mut classic = open.clone();
    classic.extended_params = false;
    assert!(matches!(
        Message::Open(classic).to_bytes(&ctx),
        Err(EncodeError::FieldTooLong { .. })
    ));
}

/// A classic OPEN whose parameters are exactly 255 octets and do not start with type 255 is
/// not mistaken for the RFC 9072 format.
#[test]
fn classic_255_octet_params_are_not_extended() {
    let mut params = vec![2, 253];
    for _ in 0..125 {
        params.extend_from_slice(&[2, 0]);
    }
    params.extend_from_slice(&[200, 1, 0]);
    assert_eq!(params.len(), 255);
    let bytes = msg(1, &valid_open_body(&params));
    let Message::Open(open) = Message::decode(&bytes, &SessionContext::default()).unwrap() else {
        panic!()
    };
    assert!(!open.extended_params);
    assert_eq!(open.capabilities().count(), 126);
}

#[test]
fn notification_round_trip_in_every_context() {
    let n = Notification::cease_shutdown(2, "maintenance window");
    for ctx in all_contexts() {
        let m = Message::Notification(n.clone());
        assert_eq!(Message::decode(&encode(&m, &ctx), &ctx).unwrap(), m);
    }
    assert_eq!(
        encode(&Message::Notification(n), &SessionContext::default()),
        msg(3, b"\x06\x02\x12maintenance window")
    );
}

#[test]
fn encode_limits() {
    let plain = SessionContext::default();
    let ext = SessionContext::modern();
    // NOTIFICATION: 4096 fits, 4097 only with extended messages.
    let fits = Message::Notification(Notification::new(6, 0, &[0; 4096 - 21]));
    assert_eq!(encode(&fits, &plain).len(), 4096);
    let big = Message::Notification(Notification::new(6, 0, &[0; 4097 - 21]));
    assert_eq!(
        big.to_bytes(&plain),
        Err(EncodeError::TooLong {
            kind: "NOTIFICATION",
            length: 4097,
            max: 4096
        })
    );
    assert_eq!(Message::decode(&encode(&big, &ext), &ext).unwrap(), big);
    let huge = Message::Notification(Notification::new(6, 0, &[0; MAX_EXTENDED_MESSAGE_LEN]));
    assert!(matches!(
        huge.to_bytes(&ext),
        Err(EncodeError::TooLong { .. })
    ));
    // OPEN stays limited to 4096 with extended messages (RFC 8654).
    let mut caps = Vec::new();
    for _ in 0..20 {
        caps.push(Capability::Unknown {
            code: 200,
            value: Bytes::from(vec![0; 250]),
        });
    }
    let mut open = Open::new(65001, 90, Ipv4Addr::new(10, 0, 0, 1), caps);
    open.extended_params = true;
    assert!(matches!(
        Message::Open(open).to_bytes(&ext),
        Err(EncodeError::TooLong { kind: "OPEN", .. })
    ));
    // A failed encode leaves the buffer as it was.
    let mut out = BytesMut::from(&b"abc"[..]);
    assert!(big.encode(&plain, &mut out).is_err());
    assert_eq!(&out[..], b"abc");
}

// ===== RFC 4271 section 6.1: message header errors =====

#[test]
fn header_connection_not_synchronized() {
    let mut bytes = raw(19, 4, &[]);
    bytes[7] = 0xfe;
    assert_eq!(
        notification_for(&bytes, &SessionContext::default()),
        (1, 1, vec![])
    );
}

#[test]
fn header_bad_message_length_general() {
    let plain = SessionContext::default();
    // Below the header size.
    assert_eq!(
        notification_for(&raw(18, 4, &[]), &plain),
        (1, 2, vec![0, 18])
    );
    assert_eq!(
        notification_for(&raw(0, 4, &[]), &plain),
        (1, 2, vec![0, 0])
    );
    // Above 4096 without extended messages.
    let body = vec![0u8; 4097 - 19];
    assert_eq!(
        notification_for(&raw(4097, 2, &body), &plain),
        (1, 2, vec![0x10, 0x01])
    );
    // A length field that disagrees with the buffer.
    assert_eq!(
        notification_for(&raw(30, 3, &[6, 0]), &plain),
        (1, 2, vec![0, 30])
    );
}

#[test]
fn header_bad_message_length_per_type() {
    for ctx in [SessionContext::default(), SessionContext::modern()] {
        // OPEN shorter than 29.
        let short_open = &valid_open_body(&[])[..9];
        assert_eq!(
            notification_for(&msg(1, short_open), &ctx),
            (1, 2, vec![0, 28])
        );
        // UPDATE shorter than 23.
        assert_eq!(
            notification_for(&msg(2, &[0, 0, 0]), &ctx),
            (1, 2, vec![0, 22])
        );
        // KEEPALIVE not 19.
        assert_eq!(notification_for(&msg(4, &[0]), &ctx), (1, 2, vec![0, 20]));
        // NOTIFICATION shorter than 21.
        assert_eq!(notification_for(&msg(3, &[6]), &ctx), (1, 2, vec![0, 20]));
    }
    // OPEN longer than 4096 even with extended messages.
    let mut body = valid_open_body(&[]);
    body.resize(4097 - 19, 0);
    assert_eq!(
        notification_for(&msg(1, &body), &SessionContext::modern()),
        (1, 2, vec![0x10, 0x01])
    );
}

#[test]
fn header_bad_message_type() {
    for kind in [0u8, 6, 128, 255] {
        assert_eq!(
            notification_for(&msg(kind, &[0, 0, 0, 0]), &SessionContext::default()),
            (1, 3, vec![kind])
        );
    }
}

/// RFC 7313 section 5: code 7 (ROUTE-REFRESH Message Error), subcode 1 (Invalid Message
/// Length), data the complete message.
#[test]
fn route_refresh_invalid_length() {
    for body in [&[][..], &[0, 1, 0], &[0, 1, 0, 1, 0]] {
        let bytes = msg(5, body);
        assert_eq!(
            notification_for(&bytes, &SessionContext::default()),
            (7, 1, bytes.clone())
        );
    }
    // A huge one in an extended session: the data is cut so our NOTIFICATION fits.
    let ext = SessionContext::modern();
    let bytes = msg(5, &vec![0u8; 65535 - 19]);
    let (code, sub, data) = notification_for(&bytes, &ext);
    assert_eq!((code, sub), (7, 1));
    assert_eq!(data.len(), 65535 - 21);
    assert_eq!(data[..], bytes[..65535 - 21]);
    let n = Message::decode(&bytes, &ext).unwrap_err().notification();
    assert!(Message::Notification(n).to_bytes(&ext).is_ok());
}

// ===== RFC 4271 section 6.2: OPEN message errors =====

fn open_error(body: &[u8]) -> (u8, u8, Vec<u8>) {
    notification_for(&msg(1, body), &SessionContext::default())
}

#[test]
fn open_unsupported_version() {
    for version in [0u8, 3, 5, 255] {
        let body = open_body(version, 65001, 90, [10, 0, 0, 1], &[]);
        assert_eq!(open_error(&body), (2, 1, vec![0, 4]));
    }
}

/// RFC 7607: AS 0 in the OPEN is Bad Peer AS.
#[test]
fn open_bad_peer_as_zero() {
    assert_eq!(
        open_error(&open_body(4, 0, 90, [10, 0, 0, 1], &[])),
        (2, 2, vec![])
    );
    let four_octet_zero = [2, 6, 65, 4, 0, 0, 0, 0];
    assert_eq!(
        open_error(&valid_open_body(&four_octet_zero)),
        (2, 2, vec![])
    );
}

#[test]
fn open_bad_bgp_identifier() {
    assert_eq!(
        open_error(&open_body(4, 65001, 90, [0, 0, 0, 0], &[])),
        (2, 3, vec![])
    );
    // RFC 6286: any non-zero value is valid, multicast and 255.255.255.255 included.
    for id in [[224, 0, 0, 1], [255, 255, 255, 255], [0, 0, 0, 1]] {
        let body = open_body(4, 65001, 90, id, &[]);
        assert!(Message::decode(&msg(1, &body), &SessionContext::default()).is_ok());
    }
}

#[test]
fn open_unsupported_optional_parameter() {
    // Type 1 (deprecated authentication), an unassigned type, and type 255 where it does
    // not announce RFC 9072 (the classic length is not 255).
    for ptype in [1u8, 3, 254, 255] {
        let body = valid_open_body(&[ptype, 2, 0xaa, 0xbb]);
        assert_eq!(open_error(&body), (2, 4, vec![]));
    }
}

#[test]
fn open_unacceptable_hold_time() {
    for hold in [1u16, 2] {
        assert_eq!(
            open_error(&open_body(4, 65001, hold, [10, 0, 0, 1], &[])),
            (2, 6, vec![])
        );
    }
    for hold in [0u16, 3, 65535] {
        let body = open_body(4, 65001, hold, [10, 0, 0, 1], &[]);
        assert!(Message::decode(&msg(1, &body), &SessionContext::default()).is_ok());
    }
}

/// Malformed optional parameters and capabilities: OPEN Message Error, subcode 0 (RFC 4271
/// section 6.2: "recognized, but is malformed").
#[test]
fn open_malformed_parameters_and_capabilities() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("parameter overruns", valid_open_body(&[2, 9, 2, 0])),
        (
            "capability overruns parameter",
            valid_open_body(&[2, 2, 65, 4]),
        ),
        ("capability header cut", valid_open_body(&[2, 1, 65])),
        (
            "multiprotocol length 3",
            valid_open_body(&[2, 5, 1, 3, 0, 1, 0]),
        ),
        (
            "4-octet AS length 2",
            valid_open_body(&[2, 4, 65, 2, 0xfd, 0xe9]),
        ),
        (
            "route refresh with value",
            valid_open_body(&[2, 3, 2, 1, 0]),
        ),
        (
            "extended message with value",
            valid_open_body(&[2, 3, 6, 1, 0]),
        ),
        ("enhanced RR with value", valid_open_body(&[2, 3, 70, 1, 0])),
        (
            "graceful restart length 3",
            valid_open_body(&[2, 5, 64, 3, 0, 90, 0]),
        ),
        (
            "graceful restart length 5",
            valid_open_body(&[2, 7, 64, 5, 0, 90, 0, 1, 1]),
        ),
        (
            "add-path length 5",
            valid_open_body(&[2, 7, 69, 5, 0, 1, 1, 3, 0]),
        ),
        ("parameter header cut", valid_open_body(&[2])),
        // Opt Parm Len says 2, three octets follow.
        ("trailing octets", {
            let mut b = valid_open_body(&[2, 0]);
            b.push(0);
            b
        }),
        // Opt Parm Len says 4, two octets follow.
        ("opt len overruns message", {
            let mut b = valid_open_body(&[2, 0]);
            let at = b.len() - 3;
            b[at] = 4;
            b
        }),
        // RFC 9072 marker but the extended length is cut.
        ("extended length cut", {
            let mut b = valid_open_body(&[]);
            b.pop();
            b.extend_from_slice(&[255, 255, 0]);
            b
        }),
        // RFC 9072 extended length says 10, 4 octets follow.
        ("extended length overruns", {
            let mut b = valid_open_body(&[]);
            b.pop();
            b.extend_from_slice(&[255, 255, 0, 10, 2, 0, 1, 70]);
            b
        }),
        // RFC 9072 parameter length (2 octets) overruns.
        ("extended parameter overruns", {
            let mut b = valid_open_body(&[]);
            b.pop();
            b.extend_from_slice(&[255, 255, 0, 3, 2, 0, 9]);
            b
        }),
    ];
    for (what, body) in cases {
        assert_eq!(open_error(&body), (2, 0, vec![]), "{what}");
    }
}

#[test]
fn open_unsupported_capability_data() {
    let err = wren_bgp::wire::OpenError::unsupported_capabilities(&[
        Capability::FourOctetAs(65001),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
    ]);
    let n = err.notification();
    assert_eq!((n.code, n.subcode), (2, 7));
    assert_eq!(&n.data[..], &[65, 4, 0, 0, 0xfd, 0xe9, 1, 4, 0, 2, 0, 1]);
}

#[test]
fn notification_short_body_is_a_header_error() {
    // Not reachable through Message::decode (the header check comes first), but the body
    // decoder gives the same answer.
    let err = Notification::decode_body(&[6]).unwrap_err();
    let n = err.notification();
    assert_eq!((n.code, n.subcode, &n.data[..]), (1, 2, &[0u8, 20][..]));
}

// ===== codec =====

#[test]
fn codec_two_messages_in_one_buffer() {
    let mut codec = BgpCodec::new();
    let mut buf = BytesMut::new();
    codec.encode(Message::Keepalive, &mut buf).unwrap();
    let n = Notification::hold_timer_expired();
    codec
        .encode(Message::Notification(n.clone()), &mut buf)
        .unwrap();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Keepalive));
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Message::Notification(n))
    );
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.is_empty());
}

#[test]
fn codec_partial_frames() {
    let mut codec = BgpCodec::new();
    let open = Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::FourOctetAs(4_200_000_001),
            Capability::RouteRefresh,
        ],
    );
    let wire = encode(&Message::Open(open.clone()), &SessionContext::default());
    let mut buf = BytesMut::new();
    // Header in two pieces, then the body in two pieces.
    for (piece, expect_none) in [
        (&wire[..10], true),
        (&wire[10..19], true),
        (&wire[19..25], true),
    ] {
        buf.extend_from_slice(piece);
        assert_eq!(codec.decode(&mut buf).unwrap().is_none(), expect_none);
    }
    buf.extend_from_slice(&wire[25..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Message::Open(open)));
}

#[test]
fn codec_rejects_bad_marker_before_body() {
    let mut codec = BgpCodec::new();
    let mut buf = BytesMut::from(&[0xff, 0xff, 0x00][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        CodecError::Decode(DecodeError::Header(HeaderError::ConnectionNotSynchronized))
    ));
    let n = err.notification().unwrap();
    assert_eq!((n.code, n.subcode, n.data.len()), (1, 1, 0));
}

#[test]
fn codec_rejects_oversized_length_without_buffering() {
    let mut codec = BgpCodec::new();
    // Only the marker and the length have arrived: 65535 > 4096.
    let mut buf = BytesMut::with_capacity(18);
    buf.put_slice(&MARKER);
    buf.put_u16(65535);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        CodecError::Decode(DecodeError::Header(HeaderError::BadMessageLength {
            length: 65535
        }))
    ));
    assert_eq!(buf.len(), 18);
    assert!(buf.capacity() < 4096, "buffer grew to {}", buf.capacity());
    let n = err.notification().unwrap();
    assert_eq!(
        (n.code, n.subcode, &n.data[..]),
        (1, 2, &[0xffu8, 0xff][..])
    );
}

#[test]
fn codec_reserves_at_most_one_message() {
    let mut codec = BgpCodec::with_contexts(SessionContext::modern(), SessionContext::modern());
    let mut buf = BytesMut::new();
    buf.put_slice(&MARKER);
    buf.put_u16(5000);
    buf.put_u8(2);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(buf.capacity() >= 5000);
    assert!(
        buf.capacity() < 10_000,
        "reserved {} for a 5000-octet message",
        buf.capacity()
    );
    // An unknown type is rejected from the header, before any body.
    let mut buf = BytesMut::from(&raw(5000, 9, &[])[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::Decode(DecodeError::Header(
            HeaderError::BadMessageType(9)
        )))
    ));
    // KEEPALIVE of the wrong length is rejected from the header.
    let mut buf = BytesMut::from(&raw(5000, 4, &[])[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::Decode(DecodeError::Header(
            HeaderError::BadMessageLength { length: 5000 }
        )))
    ));
}

#[test]
fn codec_set_contexts_changes_limits() {
    let mut codec = BgpCodec::new();
    let big = Message::Notification(Notification::new(6, 0, &[0; 5000]));
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode(&big, &mut out),
        Err(CodecError::Encode(EncodeError::TooLong { .. }))
    ));
    codec.set_contexts(SessionContext::modern(), SessionContext::modern());
    codec.encode(&big, &mut out).unwrap();
    assert_eq!(codec.decode(&mut out).unwrap(), Some(big));
}

#[test]
fn negotiated_contexts_from_opens() {
    let v4 = Family::IPV4_UNICAST;
    let local = Open::new(
        65001,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::Multiprotocol(v4),
            Capability::FourOctetAs(65001),
            Capability::ExtendedMessage,
            Capability::AddPath(vec![AddPathEntry {
                family: v4,
                direction: AddPathDirection::Both,
            }]),
        ],
    );
    let remote = Open::new(
        65002,
        90,
        Ipv4Addr::new(10, 0, 0, 2),
        vec![
            Capability::Multiprotocol(v4),
            Capability::FourOctetAs(65002),
            Capability::AddPath(vec![AddPathEntry {
                family: v4,
                direction: AddPathDirection::Receive,
            }]),
        ],
    );
    let (rx, tx) = SessionContext::negotiate(&local, &remote);
    assert!(rx.four_octet_as && tx.four_octet_as);
    assert!(!rx.extended_message && !tx.extended_message);
    assert!(!rx.add_path(v4));
    assert!(tx.add_path(v4));
}
