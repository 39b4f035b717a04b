//! Path attribute decoding and encoding for [`Update`](crate::wire::Update).
//!
//! Decoding applies RFC 4271 section 6.3 as revised by RFC 7606 (and RFC 6793 section 6,
//! RFC 7607, RFC 8092 section 6): an error either becomes an [`AttrIssue`] (attribute
//! discard or treat-as-withdraw, see [`rfc7606_action`]) or, where RFC 7606 keeps a session
//! reset, an `Err(UpdateError)`.
//!
//! Encoding writes attributes in type-code order with the Extended Length bit only when the
//! value exceeds 255 octets, unless a [`WireLayout`] recorded on decode says otherwise.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u8};
use nom::Parser;

use crate::wire::attr::{
    flags, type_code as tc, Aggregator, AsPath, AsSegment, AsSegmentType, Community, ExtCommunity,
    LargeCommunity, MpNextHop, MpReach, MpUnreach, Origin, PathAttributes, RawAttribute, AS_TRANS,
};
use crate::wire::context::SessionContext;
use crate::wire::error::{update_subcode as sub, EncodeError};
use crate::wire::nlri::{self, PrefixKind};
use crate::wire::types::{Afi, Family, Safi};
use crate::wire::update::{rfc7606_action, AttrIssue, LayoutEntry, UpdateError, WireLayout};

/// Flags of a well-known attribute (Optional 0, Transitive 1).
const WELL_KNOWN: u8 = flags::TRANSITIVE;
/// Flags of an optional transitive attribute.
const OPT_TRANS: u8 = flags::OPTIONAL | flags::TRANSITIVE;
/// Flags of an optional non-transitive attribute.
const OPT_NON_TRANS: u8 = flags::OPTIONAL;

/// The Optional and Transitive bits each interpreted attribute must carry.
const fn expected_flags(code: u8) -> Option<u8> {
    match code {
        tc::ORIGIN | tc::AS_PATH | tc::NEXT_HOP | tc::LOCAL_PREF | tc::ATOMIC_AGGREGATE => {
            Some(WELL_KNOWN)
        }
        tc::MULTI_EXIT_DISC
        | tc::ORIGINATOR_ID
        | tc::CLUSTER_LIST
        | tc::MP_REACH_NLRI
        | tc::MP_UNREACH_NLRI => Some(OPT_NON_TRANS),
        tc::AGGREGATOR
        | tc::COMMUNITIES
        | tc::EXTENDED_COMMUNITIES
        | tc::AS4_PATH
        | tc::AS4_AGGREGATOR
        | tc::LARGE_COMMUNITIES => Some(OPT_TRANS),
        _ => None,
    }
}

/// The RFC 4271 error found in one attribute's value.
#[derive(Clone, Copy, Debug)]
struct Fail {
    subcode: u8,
    reason: &'static str,
    /// Whether the NOTIFICATION data is the erroneous attribute (flags, type, length, value).
    with_attribute: bool,
}

const fn fail(subcode: u8, reason: &'static str) -> Fail {
    Fail {
        subcode,
        reason,
        with_attribute: true,
    }
}

const MALFORMED_AS_PATH: Fail = Fail {
    subcode: sub::MALFORMED_AS_PATH,
    reason: "AS_PATH is malformed (bad segment type, zero or overrunning segment length, or AS 0)",
    with_attribute: false,
};

/// A tiny 256-bit set of attribute type codes.
#[derive(Default)]
struct CodeSet([u64; 4]);

impl CodeSet {
    /// Insert `code`; false when it was already present.
    fn insert(&mut self, code: u8) -> bool {
        let (word, bit) = (usize::from(code >> 6), 1u64 << (code & 63));
        match self.0.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }

    fn contains(&self, code: u8) -> bool {
        let (word, bit) = (usize::from(code >> 6), 1u64 << (code & 63));
        self.0.get(word).is_some_and(|w| w & bit != 0)
    }
}

/// One attribute header as read from the wire.
struct Header<'a> {
    flags: u8,
    code: u8,
    /// The whole attribute as received (flags, type, length, value).
    raw: &'a [u8],
    value: &'a [u8],
}

/// Outcome of reading one attribute header.
enum Next<'a> {
    Attr(Header<'a>, &'a [u8]),
    /// Fewer octets than a minimal attribute header (RFC 7606 section 4, second case).
    ShortHeader {
        code: u8,
    },
    /// The attribute length runs past the end of the path attributes (RFC 7606 4, first case).
    Overrun {
        code: u8,
        rest: &'a [u8],
    },
}

fn next_attribute(input: &[u8]) -> Next<'_> {
    let r: nom::IResult<&[u8], (u8, u8), ()> = (be_u8, be_u8).parse(input);
    let Ok((rest, (flags, code))) = r else {
        return Next::ShortHeader {
            code: input.get(1).copied().unwrap_or(0),
        };
    };
    let len: Result<(&[u8], usize), nom::Err<()>> = if flags & flags::EXTENDED_LENGTH != 0 {
        be_u16.map(usize::from).parse(rest)
    } else {
        be_u8.map(usize::from).parse(rest)
    };
    let Ok((after_len, len)) = len else {
        return Next::ShortHeader { code };
    };
    let hdr = input.len() - after_len.len();
    match after_len.split_at_checked(len) {
        Some((value, rest)) => Next::Attr(
            Header {
                flags,
                code,
                raw: input.get(..hdr + len).unwrap_or(input),
                value,
            },
            rest,
        ),
        None => Next::Overrun { code, rest: input },
    }
}

struct Decoder<'c> {
    ctx: &'c SessionContext,
    attrs: &'c mut PathAttributes,
    issues: &'c mut Vec<AttrIssue>,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<Aggregator>,
}

/// Decode the path attributes field of an UPDATE into `attrs` (expected default) and
/// `issues`; returns the wire layout.
pub(crate) fn decode_attributes(
    buf: &[u8],
    ctx: &SessionContext,
    attrs: &mut PathAttributes,
    issues: &mut Vec<AttrIssue>,
) -> Result<WireLayout, UpdateError> {
    let mut d = Decoder {
        ctx,
        attrs,
        issues,
        as4_path: None,
        as4_aggregator: None,
    };
    let mut seen = CodeSet::default();
    let mut canonical = true;
    let mut prev_code: Option<u8> = None;
    let mut input = buf;
    while !input.is_empty() {
        let (h, rest) = match next_attribute(input) {
            Next::Attr(h, rest) => (h, rest),
            Next::ShortHeader { code } => {
                // RFC 7606 section 4: too few octets left for an attribute header.
                let err = UpdateError::new(
                    sub::MALFORMED_ATTRIBUTE_LIST,
                    "path attributes end with a truncated attribute header",
                    Bytes::new(),
                );
                if input.len() >= 2 && matches!(code, tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI) {
                    return Err(err);
                }
                d.issues.push(AttrIssue {
                    action: crate::wire::Rfc7606Action::TreatAsWithdraw,
                    type_code: code,
                    error: err,
                });
                canonical = false;
                break;
            }
            Next::Overrun { code, rest } => {
                let err = UpdateError::new(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "attribute length runs past the total path attribute length",
                    Bytes::copy_from_slice(rest),
                );
                // The NLRI of MP_REACH/MP_UNREACH cannot be located: session reset
                // (RFC 7606 sections 4 and 7.11). Otherwise treat-as-withdraw.
                if matches!(code, tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI) {
                    return Err(err);
                }
                d.issues.push(AttrIssue {
                    action: crate::wire::Rfc7606Action::TreatAsWithdraw,
                    type_code: code,
                    error: err,
                });
                canonical = false;
                break;
            }
        };
        input = rest;
        let ext = h.flags & flags::EXTENDED_LENGTH != 0;
        if canonical && (prev_code.is_some_and(|p| p >= h.code) || ext != (h.value.len() > 255)) {
            canonical = false;
        }
        prev_code = Some(h.code);
        if !seen.insert(h.code) {
            // RFC 7606 section 3 g.
            let err = UpdateError::new(
                sub::MALFORMED_ATTRIBUTE_LIST,
                "attribute appears more than once in the UPDATE",
                Bytes::new(),
            );
            if matches!(h.code, tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI) {
                return Err(err);
            }
            d.issues.push(AttrIssue {
                action: crate::wire::Rfc7606Action::AttributeDiscard,
                type_code: h.code,
                error: err,
            });
            continue;
        }
        d.attribute(&h)?;
    }
    d.merge_as4();
    // Unknown attributes are kept in type-code order (equal sets compare and intern equal);
    // the wire order, when it differs, is in the layout.
    d.attrs.unknown.sort_by_key(|r| r.type_code);
    Ok(if canonical {
        WireLayout::default()
    } else {
        WireLayout::from_entries(scan_layout(buf))
    })
}

/// The order and Extended Length bits of the attributes in `buf` (first occurrences).
fn scan_layout(mut buf: &[u8]) -> Vec<LayoutEntry> {
    let mut out = Vec::new();
    let mut seen = CodeSet::default();
    while let Next::Attr(h, rest) = next_attribute(buf) {
        if seen.insert(h.code) {
            out.push(LayoutEntry {
                type_code: h.code,
                extended_length: h.flags & flags::EXTENDED_LENGTH != 0,
            });
        }
        buf = rest;
    }
    out
}

impl Decoder<'_> {
    fn attribute(&mut self, h: &Header<'_>) -> Result<(), UpdateError> {
        let code = h.code;
        if self.ctx.four_octet_as && matches!(code, tc::AS4_PATH | tc::AS4_AGGREGATOR) {
            // RFC 6793 section 6: discarded between NEW speakers.
            tracing::debug!(
                type_code = code,
                "discarding AS4 attribute on a 4-octet AS session"
            );
            return Ok(());
        }
        let Some(expected) = expected_flags(code) else {
            return self.unknown(h);
        };
        if h.flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
            return self.fail(
                h,
                fail(
                    sub::ATTRIBUTE_FLAGS_ERROR,
                    "attribute flags conflict with the attribute type",
                ),
            );
        }
        match self.value(code, h.value) {
            Ok(()) => {
                if expected == OPT_TRANS && h.flags & flags::PARTIAL != 0 {
                    self.attrs.partial.insert(code);
                }
                Ok(())
            }
            Err(f) => self.fail(h, f),
        }
    }

    /// Record a value error per RFC 7606, or return it when it resets the session.
    fn fail(&mut self, h: &Header<'_>, f: Fail) -> Result<(), UpdateError> {
        let data = if f.with_attribute {
            Bytes::copy_from_slice(h.raw)
        } else {
            Bytes::new()
        };
        let error = UpdateError::new(f.subcode, f.reason, data);
        match rfc7606_action(h.code) {
            Some(action) => {
                self.issues.push(AttrIssue {
                    action,
                    type_code: h.code,
                    error,
                });
                Ok(())
            }
            None => Err(error),
        }
    }

    fn unknown(&mut self, h: &Header<'_>) -> Result<(), UpdateError> {
        if h.flags & flags::OPTIONAL == 0 {
            return Err(UpdateError::new(
                sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                "unrecognized well-known attribute",
                Bytes::copy_from_slice(h.raw),
            ));
        }
        if h.flags & flags::TRANSITIVE != 0 {
            self.attrs.unknown.push(RawAttribute {
                flags: h.flags & !flags::EXTENDED_LENGTH,
                type_code: h.code,
                value: Bytes::copy_from_slice(h.value),
            });
        }
        Ok(())
    }

    fn value(&mut self, code: u8, v: &[u8]) -> Result<(), Fail> {
        let a = &mut self.attrs;
        match code {
            tc::ORIGIN => {
                let [o] = v else {
                    return Err(fail(sub::ATTRIBUTE_LENGTH_ERROR, "ORIGIN length is not 1"));
                };
                a.origin = Some(match o {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => {
                        return Err(fail(
                            sub::INVALID_ORIGIN_ATTRIBUTE,
                            "ORIGIN value is not IGP, EGP or INCOMPLETE",
                        ))
                    }
                });
            }
            tc::AS_PATH => {
                let path = parse_as_path(v, self.ctx.four_octet_as).ok_or(MALFORMED_AS_PATH)?;
                a.as_path = Some(path);
            }
            tc::NEXT_HOP => {
                let ip = Ipv4Addr::from(u32_of(v).ok_or(fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "NEXT_HOP length is not 4",
                ))?);
                if ip.is_unspecified() || ip.octets()[0] >= 224 {
                    return Err(fail(
                        sub::INVALID_NEXT_HOP_ATTRIBUTE,
                        "NEXT_HOP is 0.0.0.0, multicast or class E",
                    ));
                }
                a.next_hop = Some(ip);
            }
            tc::MULTI_EXIT_DISC => {
                a.med = Some(
                    u32_of(v).ok_or(fail(sub::ATTRIBUTE_LENGTH_ERROR, "MED length is not 4"))?,
                );
            }
            tc::LOCAL_PREF => {
                a.local_pref = Some(u32_of(v).ok_or(fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "LOCAL_PREF length is not 4",
                ))?);
            }
            tc::ATOMIC_AGGREGATE => {
                if !v.is_empty() {
                    return Err(fail(
                        sub::ATTRIBUTE_LENGTH_ERROR,
                        "ATOMIC_AGGREGATE length is not 0",
                    ));
                }
                a.atomic_aggregate = true;
            }
            tc::AGGREGATOR => {
                let agg = parse_aggregator(v, self.ctx.four_octet_as).ok_or(fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "AGGREGATOR length is not 6 (2-octet AS session) or 8 (4-octet AS session)",
                ))?;
                if agg.asn == 0 {
                    return Err(fail(sub::OPTIONAL_ATTRIBUTE_ERROR, "AGGREGATOR AS is 0"));
                }
                a.aggregator = Some(agg);
            }
            tc::COMMUNITIES => {
                let (chunks, []) = v.as_chunks::<4>() else {
                    return Err(COMMUNITIES_LEN);
                };
                if chunks.is_empty() {
                    return Err(COMMUNITIES_LEN);
                }
                a.communities = chunks
                    .iter()
                    .map(|c| Community(u32::from_be_bytes(*c)))
                    .collect();
            }
            tc::ORIGINATOR_ID => {
                a.originator_id = Some(Ipv4Addr::from(u32_of(v).ok_or(fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "ORIGINATOR_ID length is not 4",
                ))?));
            }
            tc::CLUSTER_LIST => {
                let cl_len = fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "CLUSTER_LIST length is not a non-zero multiple of 4",
                );
                let (chunks, []) = v.as_chunks::<4>() else {
                    return Err(cl_len);
                };
                if chunks.is_empty() {
                    return Err(cl_len);
                }
                a.cluster_list = chunks.iter().map(|c| Ipv4Addr::from(*c)).collect();
            }
            tc::MP_REACH_NLRI => a.mp_reach = Some(parse_mp_reach(v, self.ctx)?),
            tc::MP_UNREACH_NLRI => a.mp_unreach = Some(parse_mp_unreach(v, self.ctx)?),
            tc::EXTENDED_COMMUNITIES => {
                let ec_len = fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "EXTENDED_COMMUNITIES length is not a non-zero multiple of 8",
                );
                let (chunks, []) = v.as_chunks::<8>() else {
                    return Err(ec_len);
                };
                if chunks.is_empty() {
                    return Err(ec_len);
                }
                a.ext_communities = chunks.iter().map(|c| ExtCommunity(*c)).collect();
            }
            tc::AS4_PATH => {
                let as4_bad = fail(
                    sub::OPTIONAL_ATTRIBUTE_ERROR,
                    "AS4_PATH is malformed (RFC 6793 section 6)",
                );
                if v.len() < 6 {
                    return Err(as4_bad);
                }
                let mut path = parse_as_path(v, true).ok_or(as4_bad)?;
                // RFC 6793 section 6: confederation segments in AS4_PATH are discarded.
                path.segments
                    .retain(|s| matches!(s.kind, AsSegmentType::Sequence | AsSegmentType::Set));
                self.as4_path = Some(path);
            }
            tc::AS4_AGGREGATOR => {
                let agg = parse_aggregator(v, true).ok_or(fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "AS4_AGGREGATOR length is not 8",
                ))?;
                if agg.asn == 0 {
                    return Err(fail(
                        sub::OPTIONAL_ATTRIBUTE_ERROR,
                        "AS4_AGGREGATOR AS is 0",
                    ));
                }
                self.as4_aggregator = Some(agg);
            }
            tc::LARGE_COMMUNITIES => {
                let lc_len = fail(
                    sub::ATTRIBUTE_LENGTH_ERROR,
                    "LARGE_COMMUNITIES length is not a non-zero multiple of 12",
                );
                let (chunks, []) = v.as_chunks::<12>() else {
                    return Err(lc_len);
                };
                if chunks.is_empty() {
                    return Err(lc_len);
                }
                let mut list: Vec<LargeCommunity> = Vec::with_capacity(chunks.len());
                for c in chunks {
                    let [g0, g1, g2, g3, a0, a1, a2, a3, b0, b1, b2, b3] = *c;
                    let lc = LargeCommunity {
                        global_admin: u32::from_be_bytes([g0, g1, g2, g3]),
                        local_data1: u32::from_be_bytes([a0, a1, a2, a3]),
                        local_data2: u32::from_be_bytes([b0, b1, b2, b3]),
                    };
                    // RFC 8092 section 5: silently remove duplicates.
                    if !list.contains(&lc) {
                        list.push(lc);
                    }
                }
                a.large_communities = list;
            }
            _ => {}
        }
        Ok(())
    }

    /// RFC 6793 section 4.2.3: rebuild the 4-octet AS_PATH and AGGREGATOR of a 2-octet
    /// session from AS4_PATH and AS4_AGGREGATOR.
    ///
    /// The Partial bit of AS4_PATH / AS4_AGGREGATOR is kept only when the attribute was used
    /// and the encoder will emit it again (an AS above 65535 remains), so that decoding what
    /// the encoder writes gives the same value.
    fn merge_as4(&mut self) {
        if self.ctx.four_octet_as {
            return;
        }
        let mut as4_path = self.as4_path.take();
        let mut aggregator_bit = false;
        if let Some(a4) = self.as4_aggregator.take() {
            match &mut self.attrs.aggregator {
                Some(agg) if agg.asn == AS_TRANS => {
                    *agg = a4;
                    aggregator_bit = a4.asn > 0xffff;
                }
                // AGGREGATOR names a real 2-octet AS: the AS4 attributes came through a
                // speaker that did not understand them; ignore both.
                Some(_) => as4_path = None,
                None => {}
            }
        }
        if !aggregator_bit {
            self.attrs.partial.remove(tc::AS4_AGGREGATOR);
        }
        let path_bit = match (as4_path, self.attrs.as_path.as_mut()) {
            (Some(as4), Some(path)) => merge_as4_path(path, as4) && needs_as4_path(path),
            _ => false,
        };
        if !path_bit {
            self.attrs.partial.remove(tc::AS4_PATH);
        }
    }
}

/// Merge AS4_PATH into a 2-octet AS_PATH (RFC 6793 section 4.2.3); false when AS4_PATH is
/// longer than AS_PATH and so ignored.
///
/// Leading confederation segments of AS_PATH are kept; confederation segments after an
/// AS_SEQUENCE or AS_SET (which RFC 5065 speakers never produce) are dropped, because
/// AS4_PATH cannot carry them and keeping them would make decode(encode(x)) differ from x.
fn merge_as4_path(path: &mut AsPath, as4: AsPath) -> bool {
    let hops = path.path_len();
    let hops4 = as4.path_len();
    if hops < hops4 {
        return false;
    }
    let mut need = hops - hops4;
    let mut split_sequence = false;
    let mut leading = true;
    let mut merged: Vec<AsSegment> = Vec::with_capacity(path.segments.len() + as4.segments.len());
    for seg in &path.segments {
        match seg.kind {
            AsSegmentType::ConfedSequence | AsSegmentType::ConfedSet => {
                if leading {
                    merged.push(seg.clone());
                }
            }
            _ if need == 0 => break,
            AsSegmentType::Set => {
                leading = false;
                merged.push(seg.clone());
                need -= 1;
            }
            AsSegmentType::Sequence => {
                leading = false;
                let take = need.min(seg.asns.len());
                split_sequence = take < seg.asns.len();
                merged.push(AsSegment {
                    kind: AsSegmentType::Sequence,
                    asns: seg.asns.get(..take).unwrap_or_default().to_vec(),
                });
                need -= take;
            }
        }
    }
    for seg in as4.segments {
        match merged.last_mut() {
            // The AS_PATH sequence we cut short continues in AS4_PATH: join them.
            Some(last)
                if split_sequence
                    && seg.kind == AsSegmentType::Sequence
                    && last.asns.len() + seg.asns.len() <= 255 =>
            {
                last.asns.extend_from_slice(&seg.asns)
            }
            _ => merged.push(seg),
        }
        split_sequence = false;
    }
    path.segments = merged;
    true
}

const COMMUNITIES_LEN: Fail = Fail {
    subcode: sub::ATTRIBUTE_LENGTH_ERROR,
    reason: "COMMUNITIES length is not a non-zero multiple of 4",
    with_attribute: true,
};

fn u32_of(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

fn segment_type(t: u8) -> Option<AsSegmentType> {
    Some(match t {
        1 => AsSegmentType::Set,
        2 => AsSegmentType::Sequence,
        3 => AsSegmentType::ConfedSequence,
        4 => AsSegmentType::ConfedSet,
        _ => return None,
    })
}

/// Parse AS_PATH / AS4_PATH segments (RFC 4271 4.3, RFC 6793, RFC 5065); `None` when
/// malformed per RFC 7606 section 7.2 or when it contains AS 0 (RFC 7607).
fn parse_as_path(mut v: &[u8], four: bool) -> Option<AsPath> {
    let asz = if four { 4 } else { 2 };
    let mut segments = Vec::with_capacity(1);
    let mut zero = false;
    while !v.is_empty() {
        let r: nom::IResult<&[u8], (u8, u8), ()> = (be_u8, be_u8).parse(v);
        let (rest, (t, n)) = r.ok()?;
        let kind = segment_type(t)?;
        if n == 0 {
            return None;
        }
        let r: nom::IResult<&[u8], &[u8], ()> = take(usize::from(n) * asz).parse(rest);
        let (rest, raw) = r.ok()?;
        let mut asns = Vec::with_capacity(usize::from(n));
        if four {
            for c in raw.as_chunks::<4>().0 {
                let asn = u32::from_be_bytes(*c);
                zero |= asn == 0;
                asns.push(asn);
            }
        } else {
            for c in raw.as_chunks::<2>().0 {
                let asn = u32::from(u16::from_be_bytes(*c));
                zero |= asn == 0;
                asns.push(asn);
            }
        }
        segments.push(AsSegment { kind, asns });
        v = rest;
    }
    (!zero).then_some(AsPath { segments })
}

fn parse_aggregator(v: &[u8], four: bool) -> Option<Aggregator> {
    match (four, v) {
        (false, [a0, a1, ip @ ..]) if ip.len() == 4 => Some(Aggregator {
            asn: u32::from(u16::from_be_bytes([*a0, *a1])),
            address: Ipv4Addr::from(u32_of(ip)?),
        }),
        (true, [a0, a1, a2, a3, ip @ ..]) if ip.len() == 4 => Some(Aggregator {
            asn: u32::from_be_bytes([*a0, *a1, *a2, *a3]),
            address: Ipv4Addr::from(u32_of(ip)?),
        }),
        _ => None,
    }
}

const MP_REACH_BAD: Fail = Fail {
    subcode: sub::OPTIONAL_ATTRIBUTE_ERROR,
    reason: "MP_REACH_NLRI is malformed (length, next hop length or NLRI)",
    with_attribute: true,
};
const MP_UNREACH_BAD: Fail = Fail {
    subcode: sub::OPTIONAL_ATTRIBUTE_ERROR,
    reason: "MP_UNREACH_NLRI is malformed (length or withdrawn routes)",
    with_attribute: true,
};

fn family_of(v: &[u8]) -> nom::IResult<&[u8], Family, ()> {
    (be_u16, be_u8)
        .map(|(afi, safi)| Family::new(Afi(afi), Safi(safi)))
        .parse(v)
}

/// RFC 4760 section 3 (and RFC 2545 / RFC 8950 for the IPv6 next hop forms).
fn parse_mp_reach(v: &[u8], ctx: &SessionContext) -> Result<MpReach, Fail> {
    let r: nom::IResult<&[u8], (Family, u8), ()> = (family_of, be_u8).parse(v);
    let (rest, (family, nh_len)) = r.map_err(|_| MP_REACH_BAD)?;
    let r: nom::IResult<&[u8], (&[u8], u8), ()> = (take(nh_len), be_u8).parse(rest);
    // The reserved octet (formerly the SNPA count) is ignored on receipt.
    let (nlri_bytes, (nh, _reserved)) = r.map_err(|_| MP_REACH_BAD)?;
    let Some(kind) = family
        .is_ip_unicast_or_multicast()
        .then(|| PrefixKind::from_afi(family.afi))
        .flatten()
    else {
        return Ok(MpReach {
            family,
            next_hop: MpNextHop::Other(Bytes::copy_from_slice(nh)),
            nlri: Vec::new(),
            raw_nlri: Bytes::copy_from_slice(nlri_bytes),
        });
    };
    let next_hop = match (kind, nh.len()) {
        (PrefixKind::V4, 4) => MpNextHop::Ipv4(Ipv4Addr::from(u32_of(nh).ok_or(MP_REACH_BAD)?)),
        (_, 16) => MpNextHop::Ipv6 {
            global: ipv6_of(nh).ok_or(MP_REACH_BAD)?,
            link_local: None,
        },
        (_, 32) => MpNextHop::Ipv6 {
            global: ipv6_of(nh.get(..16).ok_or(MP_REACH_BAD)?).ok_or(MP_REACH_BAD)?,
            link_local: Some(ipv6_of(nh.get(16..).ok_or(MP_REACH_BAD)?).ok_or(MP_REACH_BAD)?),
        },
        _ => return Err(MP_REACH_BAD),
    };
    let nlri = nlri::decode(nlri_bytes, kind, ctx.add_path(family)).map_err(|_| MP_REACH_BAD)?;
    Ok(MpReach {
        family,
        next_hop,
        nlri,
        raw_nlri: Bytes::new(),
    })
}

fn ipv6_of(v: &[u8]) -> Option<Ipv6Addr> {
    <[u8; 16]>::try_from(v).ok().map(Ipv6Addr::from)
}

/// RFC 4760 section 4.
fn parse_mp_unreach(v: &[u8], ctx: &SessionContext) -> Result<MpUnreach, Fail> {
    let (rest, family) = family_of(v).map_err(|_| MP_UNREACH_BAD)?;
    let Some(kind) = family
        .is_ip_unicast_or_multicast()
        .then(|| PrefixKind::from_afi(family.afi))
        .flatten()
    else {
        return Ok(MpUnreach {
            family,
            withdrawn: Vec::new(),
            raw_withdrawn: Bytes::copy_from_slice(rest),
        });
    };
    let withdrawn = nlri::decode(rest, kind, ctx.add_path(family)).map_err(|_| MP_UNREACH_BAD)?;
    Ok(MpUnreach {
        family,
        withdrawn,
        raw_withdrawn: Bytes::new(),
    })
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Encode all attributes of `a` (the path attributes field, without its length).
pub(crate) fn encode_attributes(
    a: &PathAttributes,
    layout: &WireLayout,
    ctx: &SessionContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let e = Encoder { a, ctx };
    if layout.is_canonical() && a.unknown.is_empty() {
        // The common case: interpreted attributes only, in type-code order.
        for code in crate::wire::attr::type_code::INTERPRETED {
            e.one(code, false, out)?;
        }
        return Ok(());
    }
    let mut raw_codes = CodeSet::default();
    for r in &a.unknown {
        if crate::wire::attr::type_code::is_interpreted(r.type_code) {
            return Err(EncodeError::Invalid(
                "a RawAttribute carries a type code the codec encodes from typed fields",
            ));
        }
        if !raw_codes.insert(r.type_code) {
            return Err(EncodeError::Invalid(
                "two RawAttributes carry the same type code; an attribute appears at most once",
            ));
        }
    }
    // First the attributes the layout lists, in its order and with its Extended Length bits.
    let mut done = CodeSet::default();
    for entry in layout.entries() {
        if !done.contains(entry.type_code) && e.one(entry.type_code, entry.extended_length, out)? {
            done.insert(entry.type_code);
        }
    }
    // Then the rest in type-code order.
    for code in 0..=u8::MAX {
        let candidate =
            crate::wire::attr::type_code::is_interpreted(code) || raw_codes.contains(code);
        if candidate && !done.contains(code) {
            e.one(code, false, out)?;
        }
    }
    Ok(())
}

fn attr_name(code: u8) -> &'static str {
    match code {
        tc::ORIGIN => "ORIGIN attribute",
        tc::AS_PATH => "AS_PATH attribute",
        tc::COMMUNITIES => "COMMUNITIES attribute",
        tc::CLUSTER_LIST => "CLUSTER_LIST attribute",
        tc::MP_REACH_NLRI => "MP_REACH_NLRI attribute",
        tc::MP_UNREACH_NLRI => "MP_UNREACH_NLRI attribute",
        tc::EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES attribute",
        tc::AS4_PATH => "AS4_PATH attribute",
        tc::LARGE_COMMUNITIES => "LARGE_COMMUNITIES attribute",
        _ => "path attribute",
    }
}

fn header(
    out: &mut BytesMut,
    flags_octet: u8,
    code: u8,
    len: usize,
    force_ext: bool,
) -> Result<(), EncodeError> {
    let flags_octet = flags_octet & !flags::EXTENDED_LENGTH;
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong {
            what: attr_name(code),
            length: len,
            max: usize::from(u16::MAX),
        });
    }
    if len > 255 || force_ext {
        out.put_u8(flags_octet | flags::EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u16(len as u16);
    } else {
        out.put_u8(flags_octet);
        out.put_u8(code);
        out.put_u8(len as u8);
    }
    Ok(())
}

/// Segments as written: sequences longer than 255 ASes split, empty segments skipped.
fn wire_segments<'p>(
    path: &'p AsPath,
    skip_confed: bool,
) -> Result<impl Iterator<Item = (AsSegmentType, &'p [u32])> + 'p, EncodeError> {
    for s in &path.segments {
        if matches!(s.kind, AsSegmentType::Set | AsSegmentType::ConfedSet) && s.asns.len() > 255 {
            return Err(EncodeError::FieldTooLong {
                what: "AS_SET segment",
                length: s.asns.len(),
                max: 255,
            });
        }
    }
    Ok(path
        .segments
        .iter()
        .filter(move |s| {
            !(skip_confed
                && matches!(
                    s.kind,
                    AsSegmentType::ConfedSequence | AsSegmentType::ConfedSet
                ))
        })
        .flat_map(|s| s.asns.chunks(255).map(move |c| (s.kind, c))))
}

fn put_path(
    out: &mut BytesMut,
    flags_octet: u8,
    code: u8,
    path: &AsPath,
    four: bool,
    skip_confed: bool,
    force_ext: bool,
) -> Result<(), EncodeError> {
    let asz = if four { 4 } else { 2 };
    let len: usize = wire_segments(path, skip_confed)?
        .map(|(_, c)| 2 + c.len() * asz)
        .sum();
    header(out, flags_octet, code, len, force_ext)?;
    for (kind, asns) in wire_segments(path, skip_confed)? {
        out.put_u8(kind as u8);
        out.put_u8(asns.len() as u8);
        for &asn in asns {
            if four {
                out.put_u32(asn);
            } else {
                out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS as u16));
            }
        }
    }
    Ok(())
}

/// Whether a 2-octet session needs AS4_PATH to carry `path` (RFC 6793 section 4.2.2).
fn needs_as4_path(path: &AsPath) -> bool {
    path.segments.iter().any(|s| {
        matches!(s.kind, AsSegmentType::Sequence | AsSegmentType::Set)
            && s.asns.iter().any(|&a| a > 0xffff)
    })
}

struct Encoder<'a> {
    a: &'a PathAttributes,
    ctx: &'a SessionContext,
}

impl Encoder<'_> {
    /// Flags of the recognized optional transitive attribute `code`, with the Partial bit
    /// it arrived with.
    fn opt_trans(&self, code: u8) -> u8 {
        if self.a.partial.contains(code) {
            OPT_TRANS | flags::PARTIAL
        } else {
            OPT_TRANS
        }
    }

    /// Encode the attribute with type `code` if present; returns whether it was written.
    fn one(&self, code: u8, force_ext: bool, out: &mut BytesMut) -> Result<bool, EncodeError> {
        let a = self.a;
        let four = self.ctx.four_octet_as;
        match code {
            tc::ORIGIN => {
                let Some(o) = a.origin else { return Ok(false) };
                header(out, WELL_KNOWN, code, 1, force_ext)?;
                out.put_u8(o as u8);
            }
            tc::AS_PATH => {
                let Some(p) = &a.as_path else {
                    return Ok(false);
                };
                put_path(out, WELL_KNOWN, code, p, four, false, force_ext)?;
            }
            tc::NEXT_HOP => {
                let Some(nh) = a.next_hop else {
                    return Ok(false);
                };
                header(out, WELL_KNOWN, code, 4, force_ext)?;
                out.put_slice(&nh.octets());
            }
            tc::MULTI_EXIT_DISC => {
                let Some(med) = a.med else { return Ok(false) };
                header(out, OPT_NON_TRANS, code, 4, force_ext)?;
                out.put_u32(med);
            }
            tc::LOCAL_PREF => {
                let Some(lp) = a.local_pref else {
                    return Ok(false);
                };
                header(out, WELL_KNOWN, code, 4, force_ext)?;
                out.put_u32(lp);
            }
            tc::ATOMIC_AGGREGATE => {
                if !a.atomic_aggregate {
                    return Ok(false);
                }
                header(out, WELL_KNOWN, code, 0, force_ext)?;
            }
            tc::AGGREGATOR => {
                let Some(agg) = a.aggregator else {
                    return Ok(false);
                };
                if four {
                    header(out, self.opt_trans(code), code, 8, force_ext)?;
                    out.put_u32(agg.asn);
                } else {
                    header(out, self.opt_trans(code), code, 6, force_ext)?;
                    out.put_u16(u16::try_from(agg.asn).unwrap_or(AS_TRANS as u16));
                }
                out.put_slice(&agg.address.octets());
            }
            tc::COMMUNITIES => {
                if a.communities.is_empty() {
                    return Ok(false);
                }
                header(
                    out,
                    self.opt_trans(code),
                    code,
                    a.communities.len() * 4,
                    force_ext,
                )?;
                for c in &a.communities {
                    out.put_u32(c.0);
                }
            }
            tc::ORIGINATOR_ID => {
                let Some(id) = a.originator_id else {
                    return Ok(false);
                };
                header(out, OPT_NON_TRANS, code, 4, force_ext)?;
                out.put_slice(&id.octets());
            }
            tc::CLUSTER_LIST => {
                if a.cluster_list.is_empty() {
                    return Ok(false);
                }
                header(
                    out,
                    OPT_NON_TRANS,
                    code,
                    a.cluster_list.len() * 4,
                    force_ext,
                )?;
                for id in &a.cluster_list {
                    out.put_slice(&id.octets());
                }
            }
            tc::MP_REACH_NLRI => {
                let Some(m) = &a.mp_reach else {
                    return Ok(false);
                };
                self.mp_reach(m, force_ext, out)?;
            }
            tc::MP_UNREACH_NLRI => {
                let Some(m) = &a.mp_unreach else {
                    return Ok(false);
                };
                let kind = interpreted_kind(m.family);
                if kind.is_none() && !m.withdrawn.is_empty() {
                    return Err(EncodeError::Invalid(
                        "MP_UNREACH_NLRI of a family the codec does not interpret carries its \
                         withdrawn routes in raw_withdrawn",
                    ));
                }
                let ap = self.ctx.add_path(m.family);
                let len = 3 + nlri::encoded_len(&m.withdrawn, ap) + m.raw_withdrawn.len();
                header(out, OPT_NON_TRANS, code, len, force_ext)?;
                out.put_u16(m.family.afi.0);
                out.put_u8(m.family.safi.0);
                if let Some(kind) = kind {
                    nlri::encode(&m.withdrawn, kind, ap, out)?;
                }
                out.put_slice(&m.raw_withdrawn);
            }
            tc::EXTENDED_COMMUNITIES => {
                if a.ext_communities.is_empty() {
                    return Ok(false);
                }
                header(
                    out,
                    self.opt_trans(code),
                    code,
                    a.ext_communities.len() * 8,
                    force_ext,
                )?;
                for c in &a.ext_communities {
                    out.put_slice(&c.0);
                }
            }
            tc::AS4_PATH => {
                let Some(p) = a.as_path.as_ref().filter(|p| !four && needs_as4_path(p)) else {
                    return Ok(false);
                };
                put_path(out, self.opt_trans(code), code, p, true, true, force_ext)?;
            }
            tc::AS4_AGGREGATOR => {
                let Some(agg) = a.aggregator.filter(|g| !four && g.asn > 0xffff) else {
                    return Ok(false);
                };
                header(out, self.opt_trans(code), code, 8, force_ext)?;
                out.put_u32(agg.asn);
                out.put_slice(&agg.address.octets());
            }
            tc::LARGE_COMMUNITIES => {
                if a.large_communities.is_empty() {
                    return Ok(false);
                }
                header(
                    out,
                    self.opt_trans(code),
                    code,
                    a.large_communities.len() * 12,
                    force_ext,
                )?;
                for c in &a.large_communities {
                    out.put_u32(c.global_admin);
                    out.put_u32(c.local_data1);
                    out.put_u32(c.local_data2);
                }
            }
            _ => {
                let Some(r) = a.unknown.iter().find(|r| r.type_code == code) else {
                    return Ok(false);
                };
                header(out, r.flags, code, r.value.len(), force_ext)?;
                out.put_slice(&r.value);
            }
        }
        Ok(true)
    }

    fn mp_reach(
        &self,
        m: &MpReach,
        force_ext: bool,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let kind = interpreted_kind(m.family);
        match (kind, &m.next_hop) {
            (None, _) if !m.nlri.is_empty() => {
                return Err(EncodeError::Invalid(
                    "MP_REACH_NLRI of a family the codec does not interpret carries its NLRI \
                     in raw_nlri",
                ))
            }
            (Some(_), MpNextHop::Other(_)) => {
                return Err(EncodeError::Invalid(
                    "MP_REACH_NLRI of an IP family needs an IPv4 or IPv6 next hop",
                ))
            }
            (Some(PrefixKind::V6), MpNextHop::Ipv4(_)) => {
                return Err(EncodeError::Invalid(
                    "MP_REACH_NLRI for IPv6 needs an IPv6 next hop (RFC 2545)",
                ))
            }
            _ => {}
        }
        let nh_len = m.next_hop.encoded_len();
        if nh_len > 255 {
            return Err(EncodeError::FieldTooLong {
                what: "MP_REACH_NLRI next hop",
                length: nh_len,
                max: 255,
            });
        }
        let ap = self.ctx.add_path(m.family);
        let len = 5 + nh_len + nlri::encoded_len(&m.nlri, ap) + m.raw_nlri.len();
        header(out, OPT_NON_TRANS, tc::MP_REACH_NLRI, len, force_ext)?;
        out.put_u16(m.family.afi.0);
        out.put_u8(m.family.safi.0);
        out.put_u8(nh_len as u8);
        match &m.next_hop {
            MpNextHop::Ipv4(a) => out.put_slice(&a.octets()),
            MpNextHop::Ipv6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.put_slice(&ll.octets());
                }
            }
            MpNextHop::Other(b) => out.put_slice(b),
        }
        out.put_u8(0);
        if let Some(kind) = kind {
            nlri::encode(&m.nlri, kind, ap, out)?;
        }
        out.put_slice(&m.raw_nlri);
        Ok(())
    }
}

fn interpreted_kind(family: Family) -> Option<PrefixKind> {
    if family.is_ip_unicast_or_multicast() {
        PrefixKind::from_afi(family.afi)
    } else {
        None
    }
}
