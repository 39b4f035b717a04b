//! UPDATE (RFC 4271 section 4.3) with RFC 7606 revised error handling.
//!
//! Decoding outcomes (the `error` of each issue is the RFC 4271 section 6.3 code, subcode and
//! data that would have been sent; the data is the whole attribute, flags to value, where the
//! RFC asks for "the erroneous attribute"):
//!
//! | case | outcome |
//! |---|---|
//! | withdrawn routes length / total attribute length run past the body | reset, Malformed Attribute List |
//! | IPv4 withdrawn or NLRI field malformed (prefix length > 32, truncated) | reset, Invalid Network Field |
//! | MP_REACH_NLRI / MP_UNREACH_NLRI malformed (length, next hop length, NLRI) | reset, Optional Attribute Error + attribute (RFC 4760 7, RFC 7606 7.11) |
//! | MP_REACH_NLRI / MP_UNREACH_NLRI twice | reset, Malformed Attribute List (RFC 7606 3 g) |
//! | MP_REACH_NLRI / MP_UNREACH_NLRI flags wrong, or overrunning the attributes | reset, Attribute Flags / Length Error + attribute |
//! | unknown type without the Optional bit | reset, Unrecognized Well-known Attribute + attribute |
//! | other attribute twice | later copies discarded (issue: attribute-discard) |
//! | ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST, EXTENDED_COMMUNITIES, LARGE_COMMUNITIES malformed (flags, length, value) | treat-as-withdraw |
//! | ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR malformed | attribute-discard |
//! | last attribute overruns the total attribute length, or a truncated header (RFC 7606 4) | treat-as-withdraw; the NLRI is still found from the total length |
//! | ORIGIN / AS_PATH missing with any NLRI, NEXT_HOP missing with IPv4 body NLRI | treat-as-withdraw, Missing Well-known Attribute + type code |
//!
//! Local choices: a NEXT_HOP of 0.0.0.0, multicast or 240/4 is an Invalid NEXT_HOP (127/8 is
//! accepted for loopback labs); AS 0 in AS_PATH / AS4_PATH / AGGREGATOR is malformed
//! (RFC 7607); LOCAL_PREF from an eBGP peer is the session's job
//! ([`Update::strip_ebgp_local_pref`]); AS4_PATH / AS4_AGGREGATOR on a 4-octet session are
//! dropped silently (RFC 6793 6); a recognized attribute's Partial bit is kept
//! ([`crate::wire::attr::PartialBits`]); unknown optional transitive attributes keep their
//! flags as received (the speaker marks them Partial when passing them on,
//! [`PathAttributes::mark_unknown_partial`]); MP_REACH/MP_UNREACH of families other than
//! IPv4/IPv6 unicast/multicast keep their NLRI octets raw (`raw_nlri`, `raw_withdrawn`).

use bytes::{BufMut, Bytes, BytesMut};
use nom::multi::length_data;
use nom::number::complete::be_u16;
use nom::Parser;

use crate::wire::attr::{type_code as tc, MpUnreach, PathAttributes};
use crate::wire::attr_codec::{decode_attributes, encode_attributes};
use crate::wire::error::{update_subcode as sub, EncodeError};
use crate::wire::message::HEADER_LEN;
use crate::wire::nlri::{self, NlriError, PrefixKind};
use crate::wire::notification::Notification;
use crate::wire::types::{Family, Nlri};

/// What RFC 7606 says to do about an attribute error that does not reset the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rfc7606Action {
    /// Section 2: drop the attribute, keep the routes.
    AttributeDiscard,
    /// Section 2: treat every NLRI in the UPDATE (including MP_REACH) as withdrawn.
    TreatAsWithdraw,
}

/// One attribute error found while decoding an UPDATE, with its RFC 7606 outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttrIssue {
    pub action: Rfc7606Action,
    pub type_code: u8,
    /// The error RFC 4271 would have raised; logged, never sent.
    pub error: UpdateError,
}

/// A decoded UPDATE.
///
/// `withdrawn` and `nlri` are the IPv4 fields of the message body; other families travel in
/// `attributes.mp_reach` / `attributes.mp_unreach`. `issues` lists RFC 7606 outcomes: when any
/// is [`Rfc7606Action::TreatAsWithdraw`], [`Update::treat_as_withdraw`] is true and the
/// receiver must withdraw every prefix the UPDATE announces.
///
/// `layout` records how the attributes were laid out on the wire (only when that differs from
/// what the encoder would produce) so that re-encoding a decoded UPDATE reproduces the
/// received octets; it takes no part in equality or hashing. Build new UPDATEs with
/// `..Default::default()` (or [`Update::new`]) so the layout stays canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Nlri>,
    pub issues: Vec<AttrIssue>,
    pub layout: WireLayout,
}

/// One attribute's place in a received UPDATE: its type code and whether it came with the
/// Extended Length bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayoutEntry {
    pub type_code: u8,
    pub extended_length: bool,
}

/// The wire order and Extended Length bits of the attributes of a decoded UPDATE.
///
/// Empty (the default, no allocation) means canonical: attributes in type-code order, the
/// Extended Length bit exactly when the value exceeds 255 octets. The decoder records the
/// received layout only when it is not canonical (FRR, for instance, always sets the Extended
/// Length bit on AS_PATH and MP_REACH_NLRI and sends MP_REACH_NLRI first). The encoder writes
/// the listed attributes first, in the listed order, setting the Extended Length bit where
/// listed (or where the length needs it), then every attribute not listed, canonically.
///
/// Formatting metadata only: every `WireLayout` compares equal and hashes to nothing, so
/// `decode(encode(u)) == u` and semantic comparisons ignore it.
#[derive(Clone, Debug, Default)]
pub struct WireLayout {
    entries: Vec<LayoutEntry>,
}

impl WireLayout {
    pub fn from_entries(entries: Vec<LayoutEntry>) -> Self {
        WireLayout { entries }
    }

    pub fn entries(&self) -> &[LayoutEntry] {
        &self.entries
    }

    pub fn is_canonical(&self) -> bool {
        self.entries.is_empty()
    }
}

impl PartialEq for WireLayout {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for WireLayout {}

impl std::hash::Hash for WireLayout {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// The RFC 7606 outcome of an error in an attribute of type `type_code` (RFC 7606
/// sections 7.1 to 7.14, RFC 6793 section 6, RFC 8092 section 6). `None` means the error
/// resets the session (MP_REACH_NLRI / MP_UNREACH_NLRI, RFC 7606 section 7.11).
///
/// LOCAL_PREF errors are treat-as-withdraw here, which is right for iBGP; from an eBGP peer
/// the attribute is ignored altogether, see [`Update::strip_ebgp_local_pref`].
pub const fn rfc7606_action(type_code: u8) -> Option<Rfc7606Action> {
    use crate::wire::attr::type_code as tc;
    match type_code {
        tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI => None,
        tc::ATOMIC_AGGREGATE | tc::AGGREGATOR | tc::AS4_PATH | tc::AS4_AGGREGATOR => {
            Some(Rfc7606Action::AttributeDiscard)
        }
        _ => Some(Rfc7606Action::TreatAsWithdraw),
    }
}

impl Update {
    /// An UPDATE announcing `nlri` (IPv4, in the body) with `attributes`.
    pub fn new(attributes: PathAttributes, nlri: Vec<Nlri>) -> Self {
        Update {
            attributes,
            nlri,
            ..Default::default()
        }
    }

    pub fn treat_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == Rfc7606Action::TreatAsWithdraw)
    }

    /// The family whose End-of-RIB marker (RFC 4724 section 2) this UPDATE is: an empty
    /// body is IPv4 unicast; an UPDATE whose only content is an MP_UNREACH_NLRI with no
    /// withdrawn routes is that attribute's family.
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        let a = &self.attributes;
        match &a.mp_unreach {
            None if *a == PathAttributes::default() => Some(Family::IPV4_UNICAST),
            Some(u) if u.withdrawn.is_empty() && u.raw_withdrawn.is_empty() => {
                let only_unreach = PathAttributes {
                    mp_unreach: a.mp_unreach.clone(),
                    ..Default::default()
                };
                (*a == only_unreach).then_some(u.family)
            }
            _ => None,
        }
    }

    /// The End-of-RIB marker for `family`: an empty UPDATE for IPv4 unicast, otherwise an
    /// UPDATE carrying only an empty MP_UNREACH_NLRI.
    pub fn end_of_rib_marker(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            attributes: PathAttributes {
                mp_unreach: Some(MpUnreach::new(family, Vec::new())),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// RFC 4271 5.1.5 and RFC 7606 section 7.5: LOCAL_PREF from an external peer is
    /// ignored, malformed or not. The codec does not know whether the peer is internal, so
    /// the session calls this on every UPDATE from an eBGP peer: it drops the LOCAL_PREF
    /// value and any issue about LOCAL_PREF (so a malformed one no longer withdraws).
    pub fn strip_ebgp_local_pref(&mut self) {
        self.attributes.local_pref = None;
        self.issues
            .retain(|i| i.type_code != crate::wire::attr::type_code::LOCAL_PREF);
    }
}

/// An UPDATE error that resets the session (RFC 4271 section 6.3 as revised by RFC 7606).
/// `data` is what the RFC asks for in the NOTIFICATION data field (often the erroneous
/// attribute, type, length and value).
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("UPDATE error subcode {subcode}: {reason}")]
pub struct UpdateError {
    pub subcode: u8,
    pub reason: &'static str,
    pub data: bytes::Bytes,
}

impl UpdateError {
    pub fn new(subcode: u8, reason: &'static str, data: Bytes) -> Self {
        UpdateError {
            subcode,
            reason,
            data,
        }
    }

    pub fn notification(&self) -> Notification {
        Notification {
            code: crate::wire::error::code::UPDATE_MESSAGE,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

/// Split off a 2-octet length-prefixed field.
fn length_prefixed(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let r: nom::IResult<&[u8], &[u8], ()> = length_data(be_u16).parse(input);
    r.ok()
}

const fn malformed_list(reason: &'static str) -> UpdateError {
    UpdateError {
        subcode: sub::MALFORMED_ATTRIBUTE_LIST,
        reason,
        data: Bytes::new(),
    }
}

fn invalid_network(e: NlriError) -> UpdateError {
    UpdateError::new(
        sub::INVALID_NETWORK_FIELD,
        match e {
            NlriError::PrefixTooLong(_) => "IPv4 NLRI prefix length exceeds 32",
            NlriError::Truncated => "IPv4 NLRI field ends in the middle of a prefix",
        },
        Bytes::new(),
    )
}

impl Update {
    /// Decode an UPDATE body (the octets after the 19-octet header).
    ///
    /// Attribute errors that RFC 7606 handles by attribute-discard or treat-as-withdraw are
    /// returned in [`Update::issues`]; `Err` is for the cases that reset the session, and its
    /// [`UpdateError::notification`] is the NOTIFICATION to send.
    pub fn decode_body(
        body: &[u8],
        ctx: &crate::wire::SessionContext,
    ) -> Result<Update, UpdateError> {
        // RFC 4271 6.3: a withdrawn routes length or total attribute length running past the
        // message is a Malformed Attribute List (kept as a reset by RFC 7606 section 4).
        let (rest, withdrawn) = length_prefixed(body).ok_or(malformed_list(
            "withdrawn routes length runs past the UPDATE",
        ))?;
        let (nlri_bytes, attr_bytes) = length_prefixed(rest).ok_or(malformed_list(
            "total path attribute length runs past the UPDATE",
        ))?;
        let v4_ap = ctx.add_path(Family::IPV4_UNICAST);
        let withdrawn = nlri::decode(withdrawn, PrefixKind::V4, v4_ap).map_err(invalid_network)?;
        let nlri = nlri::decode(nlri_bytes, PrefixKind::V4, v4_ap).map_err(invalid_network)?;
        let mut u = Update {
            withdrawn,
            nlri,
            ..Default::default()
        };
        u.layout = decode_attributes(attr_bytes, ctx, &mut u.attributes, &mut u.issues)?;
        // RFC 7606 section 3 d: missing well-known mandatory attributes.
        let attrs = &u.attributes;
        let announces = !u.nlri.is_empty() || attrs.mp_reach.is_some();
        if announces {
            for (present, code) in [
                (attrs.origin.is_some(), tc::ORIGIN),
                (attrs.as_path.is_some(), tc::AS_PATH),
                // RFC 4760: NEXT_HOP is only needed for NLRI in the body.
                (attrs.next_hop.is_some() || u.nlri.is_empty(), tc::NEXT_HOP),
            ] {
                // An attribute already reported as malformed is not also "missing".
                if !present && !u.issues.iter().any(|i| i.type_code == code) {
                    u.issues.push(AttrIssue {
                        action: Rfc7606Action::TreatAsWithdraw,
                        type_code: code,
                        error: UpdateError::new(
                            sub::MISSING_WELL_KNOWN_ATTRIBUTE,
                            "well-known mandatory attribute missing",
                            Bytes::copy_from_slice(&[code]),
                        ),
                    });
                }
            }
        }
        Ok(u)
    }

    /// Encode an UPDATE body (without the header) into `out`.
    ///
    /// IPv4 `withdrawn` / `nlri` carry path identifiers when `ctx` has add-path for IPv4
    /// unicast (a missing one is sent as 0) and none otherwise. Fails, leaving `out` as it
    /// was, when a field does not fit its length or the message (header included) exceeds
    /// `ctx.max_message_len()`.
    pub fn encode_body(
        &self,
        ctx: &crate::wire::SessionContext,
        out: &mut bytes::BytesMut,
    ) -> Result<(), crate::wire::EncodeError> {
        let start = out.len();
        let r = self.encode_inner(ctx, out, start);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner(
        &self,
        ctx: &crate::wire::SessionContext,
        out: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        let v4_ap = ctx.add_path(Family::IPV4_UNICAST);
        let wd_len = nlri::encoded_len(&self.withdrawn, v4_ap);
        let nlri_len = nlri::encoded_len(&self.nlri, v4_ap);
        let max_body = ctx.max_message_len().saturating_sub(HEADER_LEN);
        let wd_len16 = u16::try_from(wd_len).map_err(|_| EncodeError::FieldTooLong {
            what: "withdrawn routes",
            length: wd_len,
            max: usize::from(u16::MAX),
        })?;
        out.reserve(4 + wd_len + nlri_len + 64);
        out.put_u16(wd_len16);
        nlri::encode(&self.withdrawn, PrefixKind::V4, v4_ap, out)?;
        let attr_pos = out.len();
        out.put_u16(0);
        encode_attributes(&self.attributes, &self.layout, ctx, out)?;
        let attr_len = out.len() - attr_pos - 2;
        let attr_len16 = u16::try_from(attr_len).map_err(|_| EncodeError::FieldTooLong {
            what: "path attributes",
            length: attr_len,
            max: usize::from(u16::MAX),
        })?;
        if let Some(slot) = out.get_mut(attr_pos..attr_pos + 2) {
            slot.copy_from_slice(&attr_len16.to_be_bytes());
        }
        nlri::encode(&self.nlri, PrefixKind::V4, v4_ap, out)?;
        let body = out.len() - start;
        if body > max_body {
            return Err(EncodeError::TooLong {
                kind: "UPDATE",
                length: body + HEADER_LEN,
                max: ctx.max_message_len(),
            });
        }
        Ok(())
    }
}
