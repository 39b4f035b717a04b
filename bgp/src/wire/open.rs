//! OPEN (RFC 4271 section 4.2), optional parameters (with the RFC 9072 extended length) and
//! capabilities (RFC 5492).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |  (RFC 9072: 255, then Non-Ext OP Type 255 and a 2-octet length)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Optional parameter: Parm. Type (1) | Parm. Length (1, or 2 in the RFC 9072 format) | value
//! Capability (parameter type 2, RFC 5492): Code (1) | Length (1) | value; one parameter may
//! carry several capabilities.
//! ```
//!
//! # Error handling (RFC 4271 section 6.2)
//!
//! [`Open::decode_body`] performs every check that needs no configuration:
//!
//! * version other than 4: Unsupported Version Number, data = 2-octet 4 ("the largest,
//!   locally-supported version number less than the version the remote BGP peer bid").
//! * AS 0 in My Autonomous System or in the 4-octet AS capability: Bad Peer AS (RFC 7607
//!   section 2: a speaker receiving zero as the peer AS in an OPEN "MUST abort the connection
//!   and send a NOTIFICATION" with "Bad Peer AS").
//! * hold time 1 or 2: Unacceptable Hold Time ("An implementation MUST reject Hold Time
//!   values of one or two seconds").
//! * BGP identifier 0: Bad BGP Identifier. RFC 6286 section 2.1 redefines the identifier as
//!   "a 4-octet, unsigned, non-zero integer", so any non-zero value (including multicast or
//!   class E addresses) is accepted.
//! * an optional parameter type other than 2: Unsupported Optional Parameters ("If one of
//!   the Optional Parameters in the OPEN message is not recognized").
//! * malformed optional parameters or capabilities (a length that overruns its container, a
//!   total that disagrees with the message, a fixed-size capability of the wrong size):
//!   subcode 0, Unspecific ("If one of the Optional Parameters in the OPEN message is
//!   recognized, but is malformed, then the Error Subcode MUST be set to 0 (Unspecific)").
//!   RFC 5492 defines no subcode for a malformed capability and the capability RFCs
//!   (4760, 4724, 6793, 7911, 8654, 7313) give none either, so subcode 0 it is, with an
//!   empty data field. The one exception is the FQDN capability, which is only a draft: a
//!   malformed one is kept as [`Capability::Unknown`] rather than resetting the session.
//!
//! Reserved bits (the reserved octet of the multiprotocol capability, unassigned graceful
//! restart flags) are ignored on receipt and sent as zero, as their RFCs say.

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};
use nom::combinator::all_consuming;
use nom::multi::many0;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::{IResult, Parser};

use crate::wire::attr::AS_TRANS;
use crate::wire::error::EncodeError;
use crate::wire::message::HEADER_LEN;
use crate::wire::notification::Notification;
use crate::wire::types::{Afi, Family, Safi};

/// The only BGP version this speaker supports.
pub const BGP_VERSION: u8 = 4;

/// Optional parameter types.
pub mod param_type {
    /// RFC 5492.
    pub const CAPABILITIES: u8 = 2;
    /// RFC 9072: the Non-Ext OP Type that announces the extended format.
    pub const EXTENDED_LENGTH: u8 = 255;
}

/// Capability codes (IANA "Capability Codes").
pub mod capability_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const FQDN: u8 = 73;
    /// The pre-standard Cisco route refresh capability. It announces ROUTE-REFRESH messages
    /// of type 128, which this speaker does not implement, so it stays
    /// [`super::Capability::Unknown`].
    pub const ROUTE_REFRESH_CISCO: u8 = 128;
}

/// An OPEN message. `my_as` is the 2-octet field on the wire (AS_TRANS, 23456, when the real
/// AS does not fit); the real AS is in [`Capability::FourOctetAs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Optional parameters in wire order, so re-encoding gives the same bytes (BIRD packs all
    /// capabilities into one parameter, FRR sends one parameter per capability).
    pub params: Vec<OptParam>,
    /// The optional parameters were encoded in the RFC 9072 extended format.
    pub extended_params: bool,
}

/// One optional parameter of an OPEN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptParam {
    /// Parameter type 2 (RFC 5492), holding one or more capabilities.
    Capabilities(Vec<Capability>),
    /// Any other parameter type, kept byte for byte. [`Open::decode_body`] (and therefore
    /// `Message::decode`) rejects one with "Unsupported Optional Parameters" as RFC 4271
    /// section 6.2 requires; [`Open::parse_body`] keeps it, and the encoder can send one
    /// (to test a peer's error handling).
    Unknown { param_type: u8, value: Bytes },
}

/// Graceful restart capability (RFC 4724, with the RFC 8538 N bit).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartCap {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538): the sender supports graceful restart on NOTIFICATION.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Per family: the F bit (forwarding state preserved).
    pub families: Vec<(Family, bool)>,
}

/// Add-path send/receive mode (RFC 7911 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddPathDirection {
    Receive,
    Send,
    Both,
    /// A value outside 1..=3, kept for round trips; it negotiates nothing.
    Other(u8),
}

impl AddPathDirection {
    pub fn from_u8(value: u8) -> AddPathDirection {
        match value {
            1 => AddPathDirection::Receive,
            2 => AddPathDirection::Send,
            3 => AddPathDirection::Both,
            other => AddPathDirection::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            AddPathDirection::Receive => 1,
            AddPathDirection::Send => 2,
            AddPathDirection::Both => 3,
            AddPathDirection::Other(v) => v,
        }
    }

    /// The sender of this value is able to receive path identifiers.
    pub fn receives(self) -> bool {
        matches!(self, AddPathDirection::Receive | AddPathDirection::Both)
    }

    /// The sender of this value wants to send path identifiers.
    pub fn sends(self) -> bool {
        matches!(self, AddPathDirection::Send | AddPathDirection::Both)
    }
}

/// One family entry of the add-path capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddPathEntry {
    pub family: Family,
    pub direction: AddPathDirection,
}

/// A capability (RFC 5492). Unknown ones are kept byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Code 1 (RFC 4760).
    Multiprotocol(Family),
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 6 (RFC 8654).
    ExtendedMessage,
    /// Code 64 (RFC 4724, RFC 8538).
    GracefulRestart(GracefulRestartCap),
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Code 69 (RFC 7911).
    AddPath(Vec<AddPathEntry>),
    /// Code 70 (RFC 7313).
    EnhancedRouteRefresh,
    /// Code 73 (draft-walton-bgp-hostname-capability), as FRR sends it.
    Fqdn { hostname: Bytes, domain: Bytes },
    /// Any other code, kept byte for byte. (A known code in `Unknown` encodes fine but
    /// decodes as the known capability.)
    Unknown { code: u8, value: Bytes },
}

impl Capability {
    /// The capability code on the wire.
    pub fn code(&self) -> u8 {
        use capability_code as c;
        match self {
            Capability::Multiprotocol(_) => c::MULTIPROTOCOL,
            Capability::RouteRefresh => c::ROUTE_REFRESH,
            Capability::ExtendedMessage => c::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => c::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => c::FOUR_OCTET_AS,
            Capability::AddPath(_) => c::ADD_PATH,
            Capability::EnhancedRouteRefresh => c::ENHANCED_ROUTE_REFRESH,
            Capability::Fqdn { .. } => c::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Append code, length and value (RFC 5492 section 4).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.code());
        let len_at = out.len();
        out.put_u8(0);
        match self {
            Capability::Multiprotocol(family) => {
                out.put_u16(family.afi.0);
                out.put_u8(0);
                out.put_u8(family.safi.0);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::GracefulRestart(gr) => {
                if gr.restart_time > 0x0fff {
                    return Err(EncodeError::FieldTooLong {
                        what: "graceful restart time",
                        length: usize::from(gr.restart_time),
                        max: 0x0fff,
                    });
                }
                let mut flags_time = gr.restart_time;
                if gr.restart_state {
                    flags_time |= 0x8000;
                }
                if gr.notification {
                    flags_time |= 0x4000;
                }
                out.put_u16(flags_time);
                for (family, forwarding) in &gr.families {
                    out.put_u16(family.afi.0);
                    out.put_u8(family.safi.0);
                    out.put_u8(if *forwarding { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(entries) => {
                for entry in entries {
                    out.put_u16(entry.family.afi.0);
                    out.put_u8(entry.family.safi.0);
                    out.put_u8(entry.direction.to_u8());
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for (what, part) in [("FQDN hostname", hostname), ("FQDN domain", domain)] {
                    let len = u8::try_from(part.len()).map_err(|_| EncodeError::FieldTooLong {
                        what,
                        length: part.len(),
                        max: 255,
                    })?;
                    out.put_u8(len);
                    out.put_slice(part);
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        patch_u8(out, len_at, "capability value")
    }
}

/// Shorthand for the complete-input nom parsers of this module.
type PResult<'a, O> = IResult<&'a [u8], O, ()>;

fn family(input: &[u8]) -> PResult<'_, Family> {
    (be_u16, be_u8)
        .map(|(afi, safi)| Family::new(Afi(afi), Safi(safi)))
        .parse_complete(input)
}

/// Decode one capability's value given its code.
fn decode_capability(code: u8, value: &[u8]) -> Result<Capability, OpenError> {
    use capability_code as c;
    let malformed = |reason| move |_: nom::Err<()>| OpenError::Malformed { reason };
    let empty = |cap: Capability, reason| {
        if value.is_empty() {
            Ok(cap)
        } else {
            Err(OpenError::Malformed { reason })
        }
    };
    match code {
        c::MULTIPROTOCOL => {
            // AFI (2), Reserved (1, "ignored by the receiver"), SAFI (1).
            let (_, (afi, _reserved, safi)) = all_consuming((be_u16, be_u8, be_u8))
                .parse_complete(value)
                .map_err(malformed("multiprotocol capability length is not 4"))?;
            Ok(Capability::Multiprotocol(Family::new(Afi(afi), Safi(safi))))
        }
        c::ROUTE_REFRESH => empty(
            Capability::RouteRefresh,
            "route refresh capability has a value",
        ),
        c::EXTENDED_MESSAGE => empty(
            Capability::ExtendedMessage,
            "extended message capability has a value",
        ),
        c::ENHANCED_ROUTE_REFRESH => empty(
            Capability::EnhancedRouteRefresh,
            "enhanced route refresh capability has a value",
        ),
        c::FOUR_OCTET_AS => {
            let (_, asn) = all_consuming(be_u32)
                .parse_complete(value)
                .map_err(malformed("4-octet AS capability length is not 4"))?;
            Ok(Capability::FourOctetAs(asn))
        }
        c::GRACEFUL_RESTART => {
            let entry = (family, be_u8).map(|(f, flags)| (f, flags & 0x80 != 0));
            let (_, (flags_time, families)) = all_consuming((be_u16, many0(entry)))
                .parse_complete(value)
                .map_err(malformed(
                    "graceful restart capability length is not 2 + 4n",
                ))?;
            Ok(Capability::GracefulRestart(GracefulRestartCap {
                restart_state: flags_time & 0x8000 != 0,
                notification: flags_time & 0x4000 != 0,
                restart_time: flags_time & 0x0fff,
                families,
            }))
        }
        c::ADD_PATH => {
            let entry = (family, be_u8).map(|(family, dir)| AddPathEntry {
                family,
                direction: AddPathDirection::from_u8(dir),
            });
            let (_, entries) =
                all_consuming(many0(entry))
                    .parse_complete(value)
                    .map_err(malformed(
                        "add-path capability length is not a multiple of 4",
                    ))?;
            Ok(Capability::AddPath(entries))
        }
        c::FQDN => {
            let lv = |i| -> PResult<'_, &[u8]> { nom::multi::length_data(be_u8).parse_complete(i) };
            let parsed: PResult<'_, _> = all_consuming((lv, lv)).parse_complete(value);
            match parsed {
                Ok((_, (hostname, domain))) => Ok(Capability::Fqdn {
                    hostname: Bytes::copy_from_slice(hostname),
                    domain: Bytes::copy_from_slice(domain),
                }),
                // A draft capability: keep a malformed one rather than reset the session.
                Err(_) => Ok(Capability::Unknown {
                    code,
                    value: Bytes::copy_from_slice(value),
                }),
            }
        }
        _ => Ok(Capability::Unknown {
            code,
            value: Bytes::copy_from_slice(value),
        }),
    }
}

/// Decode the capabilities of one type-2 optional parameter.
fn decode_capabilities(mut input: &[u8]) -> Result<Vec<Capability>, OpenError> {
    let mut caps = Vec::new();
    while !input.is_empty() {
        let (rest, (code, value)) = (be_u8, nom::multi::length_data(be_u8))
            .parse_complete(input)
            .map_err(|_: nom::Err<()>| OpenError::Malformed {
                reason: "capability length overruns its optional parameter",
            })?;
        caps.push(decode_capability(code, value)?);
        input = rest;
    }
    Ok(caps)
}

/// Decode the optional parameters, `extended` selecting the RFC 9072 2-octet lengths.
fn decode_params(mut input: &[u8], extended: bool) -> Result<Vec<OptParam>, OpenError> {
    let mut params = Vec::new();
    while !input.is_empty() {
        let parsed: PResult<'_, (u8, &[u8])> = if extended {
            (be_u8, nom::multi::length_data(be_u16)).parse_complete(input)
        } else {
            (be_u8, nom::multi::length_data(be_u8)).parse_complete(input)
        };
        let (rest, (ptype, value)) = parsed.map_err(|_| OpenError::Malformed {
            reason: "optional parameter length overruns the optional parameters",
        })?;
        params.push(if ptype == param_type::CAPABILITIES {
            OptParam::Capabilities(decode_capabilities(value)?)
        } else {
            OptParam::Unknown {
                param_type: ptype,
                value: Bytes::copy_from_slice(value),
            }
        });
        input = rest;
    }
    Ok(params)
}

/// Write `out.len() - at - 1` into the length octet at `at`.
fn patch_u8(out: &mut BytesMut, at: usize, what: &'static str) -> Result<(), EncodeError> {
    let length = out.len().saturating_sub(at).saturating_sub(1);
    let value = u8::try_from(length).map_err(|_| EncodeError::FieldTooLong {
        what,
        length,
        max: 255,
    })?;
    if let Some(b) = out.get_mut(at) {
        *b = value;
    }
    Ok(())
}

/// Write `out.len() - at - 2` into the 2-octet length at `at`.
fn patch_u16(out: &mut BytesMut, at: usize, what: &'static str) -> Result<(), EncodeError> {
    let length = out.len().saturating_sub(at).saturating_sub(2);
    let value = u16::try_from(length).map_err(|_| EncodeError::FieldTooLong {
        what,
        length,
        max: 65535,
    })?;
    if let Some(b) = out.get_mut(at..at.saturating_add(2)) {
        b.copy_from_slice(&value.to_be_bytes());
    }
    Ok(())
}

impl Open {
    /// An OPEN for `asn` with all `capabilities` in one optional parameter (as BIRD sends
    /// them). `my_as` is AS_TRANS when `asn` does not fit 2 octets; add
    /// [`Capability::FourOctetAs`] to `capabilities` to announce the real one.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Open {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS as u16);
        let params = if capabilities.is_empty() {
            Vec::new()
        } else {
            vec![OptParam::Capabilities(capabilities)]
        };
        Open {
            version: BGP_VERSION,
            my_as,
            hold_time,
            bgp_id,
            params,
            extended_params: false,
        }
    }

    /// Decode an OPEN body (the octets after the header) and apply every codec-level
    /// RFC 4271 section 6.2 check (see the module documentation).
    pub fn decode_body(body: &[u8]) -> Result<Open, OpenError> {
        let open = Open::parse_body(body)?;
        open.validate()?;
        Ok(open)
    }

    /// Decode an OPEN body structurally: the version must be 4 (the layout depends on it)
    /// and every length must be consistent, but field values are not judged and unknown
    /// optional parameters are kept. [`Open::decode_body`] is this plus [`Open::validate`].
    pub fn parse_body(body: &[u8]) -> Result<Open, OpenError> {
        let length = u16::try_from(body.len().saturating_add(HEADER_LEN)).unwrap_or(u16::MAX);
        let Some(&version) = body.first() else {
            return Err(OpenError::BadLength { length });
        };
        if version != BGP_VERSION {
            return Err(OpenError::UnsupportedVersion { version });
        }
        let fixed: PResult<'_, _> = (be_u8, be_u16, be_u16, be_u32, be_u8).parse_complete(body);
        let (rest, (_, my_as, hold_time, bgp_id, opt_len)) =
            fixed.map_err(|_| OpenError::BadLength { length })?;
        // RFC 9072 section 2: Non-Ext OP Len 255 followed by Non-Ext OP Type 255 announces
        // the extended format with a 2-octet Extended Opt. Parm. Length.
        let extended = opt_len == 255 && rest.first() == Some(&param_type::EXTENDED_LENGTH);
        let (params, declared) = if extended {
            let ext: PResult<'_, _> = (be_u8, be_u16).parse_complete(rest);
            let (params, (_, ext_len)) = ext.map_err(|_| OpenError::Malformed {
                reason: "extended optional parameters length is truncated",
            })?;
            (params, usize::from(ext_len))
        } else {
            (rest, usize::from(opt_len))
        };
        if params.len() != declared {
            return Err(OpenError::Malformed {
                reason: "optional parameters length disagrees with the message length",
            });
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(bgp_id),
            params: decode_params(params, extended)?,
            extended_params: extended,
        })
    }

    /// The codec-level RFC 4271 section 6.2 checks, in the order the RFC lists them.
    pub fn validate(&self) -> Result<(), OpenError> {
        if self.version != BGP_VERSION {
            return Err(OpenError::UnsupportedVersion {
                version: self.version,
            });
        }
        // RFC 7607 section 2.
        if self.my_as == 0 || self.four_octet_as() == Some(0) {
            return Err(OpenError::BadPeerAs { asn: 0 });
        }
        if matches!(self.hold_time, 1 | 2) {
            return Err(OpenError::UnacceptableHoldTime {
                hold_time: self.hold_time,
            });
        }
        // RFC 6286 section 2.1: only zero is invalid.
        if self.bgp_id.is_unspecified() {
            return Err(OpenError::BadBgpIdentifier { id: self.bgp_id });
        }
        if let Some(param_type) = self.params.iter().find_map(|p| match p {
            OptParam::Unknown { param_type, .. } => Some(*param_type),
            OptParam::Capabilities(_) => None,
        }) {
            return Err(OpenError::UnsupportedOptionalParameter { param_type });
        }
        Ok(())
    }

    /// Append the OPEN body (without the header) to `out`.
    ///
    /// The optional parameters use the RFC 9072 format when `extended_params` is set; without
    /// it, parameters longer than 255 octets in total are an error (set `extended_params`).
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let len_at = if self.extended_params {
            out.put_u8(255);
            out.put_u8(param_type::EXTENDED_LENGTH);
            let at = out.len();
            out.put_u16(0);
            at
        } else {
            let at = out.len();
            out.put_u8(0);
            at
        };
        for param in &self.params {
            self.encode_param(param, out)?;
        }
        if self.extended_params {
            patch_u16(out, len_at, "extended optional parameters")
        } else {
            patch_u8(
                out,
                len_at,
                "optional parameters (set extended_params for the RFC 9072 format)",
            )
        }
    }

    fn encode_param(&self, param: &OptParam, out: &mut BytesMut) -> Result<(), EncodeError> {
        let ptype = match param {
            OptParam::Capabilities(_) => param_type::CAPABILITIES,
            OptParam::Unknown { param_type, .. } => *param_type,
        };
        if ptype == param_type::EXTENDED_LENGTH {
            return Err(EncodeError::Invalid(
                "optional parameter type 255 is reserved for the RFC 9072 extended length",
            ));
        }
        out.put_u8(ptype);
        let len_at = out.len();
        if self.extended_params {
            out.put_u16(0);
        } else {
            out.put_u8(0);
        }
        match param {
            OptParam::Capabilities(caps) => {
                for cap in caps {
                    cap.encode(out)?;
                }
            }
            OptParam::Unknown { value, .. } => out.put_slice(value),
        }
        if self.extended_params {
            patch_u16(out, len_at, "optional parameter")
        } else {
            patch_u8(out, len_at, "optional parameter")
        }
    }

    /// All capabilities across all capability parameters, in wire order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flat_map(|p| match p {
            OptParam::Capabilities(caps) => caps.as_slice(),
            OptParam::Unknown { .. } => &[],
        })
    }

    /// The sender's AS: the 4-octet AS capability if present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The AS in the 4-octet AS capability (RFC 6793), if the sender advertised it.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// Families of the multiprotocol capabilities, in order, without duplicates. Empty means
    /// the sender did not use RFC 4760, which implies IPv4 unicast only.
    pub fn families(&self) -> Vec<Family> {
        let mut families = Vec::new();
        for cap in self.capabilities() {
            if let Capability::Multiprotocol(f) = cap {
                if !families.contains(f) {
                    families.push(*f);
                }
            }
        }
        families
    }

    /// Add-path entries across all add-path capabilities, one per family. When a family
    /// appears more than once the last occurrence wins (the rule RFC 4724 gives for repeated
    /// graceful restart capabilities; RFC 7911 gives none).
    pub fn add_path(&self) -> Vec<AddPathEntry> {
        let mut entries: Vec<AddPathEntry> = Vec::new();
        for cap in self.capabilities() {
            if let Capability::AddPath(list) = cap {
                for entry in list {
                    if let Some(e) = entries.iter_mut().find(|e| e.family == entry.family) {
                        e.direction = entry.direction;
                    } else {
                        entries.push(*entry);
                    }
                }
            }
        }
        entries
    }

    /// The add-path direction the sender gave for `family`, if any.
    pub fn add_path_direction(&self, family: Family) -> Option<AddPathDirection> {
        self.add_path()
            .into_iter()
            .find(|e| e.family == family)
            .map(|e| e.direction)
    }

    /// The graceful restart capability; the last one if there are several (RFC 4724
    /// section 3: "the one that occurs last takes precedence").
    pub fn graceful_restart(&self) -> Option<&GracefulRestartCap> {
        self.capabilities()
            .filter_map(|c| match c {
                Capability::GracefulRestart(gr) => Some(gr),
                _ => None,
            })
            .last()
    }

    /// The sender advertised the extended message capability (RFC 8654).
    pub fn extended_message(&self) -> bool {
        self.capabilities()
            .any(|c| matches!(c, Capability::ExtendedMessage))
    }

    /// The sender advertised route refresh (RFC 2918, code 2; the Cisco code 128 does not
    /// count, its messages use type 128).
    pub fn route_refresh(&self) -> bool {
        self.capabilities()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }

    /// The sender advertised enhanced route refresh (RFC 7313).
    pub fn enhanced_route_refresh(&self) -> bool {
        self.capabilities()
            .any(|c| matches!(c, Capability::EnhancedRouteRefresh))
    }

    /// Hostname and domain of the FQDN capability, if present.
    pub fn fqdn(&self) -> Option<(&Bytes, &Bytes)> {
        self.capabilities().find_map(|c| match c {
            Capability::Fqdn { hostname, domain } => Some((hostname, domain)),
            _ => None,
        })
    }
}

/// An OPEN message that violates RFC 4271 section 6.2 at the codec level. Checks that need
/// configuration (peer AS, hold time policy, BGP identifier collision, required
/// capabilities) belong to the FSM, which builds the same NOTIFICATIONs through
/// [`OpenError::notification`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("OPEN: BGP version {version} is not supported, use version 4")]
    UnsupportedVersion { version: u8 },
    #[error(
        "OPEN: peer AS {asn} is not acceptable (AS 0 is never valid, RFC 7607; any other \
         must match the configured remote AS)"
    )]
    BadPeerAs { asn: u32 },
    #[error("OPEN: BGP identifier {id} is not valid (it must be non-zero)")]
    BadBgpIdentifier { id: Ipv4Addr },
    #[error("OPEN: optional parameter type {param_type} is not supported")]
    UnsupportedOptionalParameter { param_type: u8 },
    #[error("OPEN: hold time {hold_time} s is invalid, use 0 or >= 3")]
    UnacceptableHoldTime { hold_time: u16 },
    #[error("OPEN: malformed ({reason})")]
    Malformed { reason: &'static str },
    #[error("OPEN: message length {length} is invalid")]
    BadLength { length: u16 },
    /// RFC 5492 section 3: the peer lacks a capability this speaker requires. `data` is the
    /// list of those capabilities (code, length, value), see
    /// [`OpenError::unsupported_capabilities`].
    #[error("OPEN: the peer lacks a required capability")]
    UnsupportedCapability { data: Bytes },
}

impl OpenError {
    /// "Unsupported Capability" listing `caps` in the data field (RFC 5492 section 3).
    pub fn unsupported_capabilities(caps: &[Capability]) -> OpenError {
        let mut out = BytesMut::new();
        for cap in caps {
            let start = out.len();
            if cap.encode(&mut out).is_err() {
                out.truncate(start);
            }
        }
        OpenError::UnsupportedCapability { data: out.freeze() }
    }

    /// The NOTIFICATION for this error (RFC 4271 section 6.2).
    pub fn notification(&self) -> Notification {
        use crate::wire::error::{code, header_subcode, open_subcode as sub};
        match self {
            OpenError::UnsupportedVersion { .. } => {
                // Data: the largest locally supported version number, in 2 octets.
                Notification::new(
                    code::OPEN_MESSAGE,
                    sub::UNSUPPORTED_VERSION_NUMBER,
                    &u16::from(BGP_VERSION).to_be_bytes(),
                )
            }
            OpenError::BadPeerAs { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::BAD_PEER_AS, &[])
            }
            OpenError::BadBgpIdentifier { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::BAD_BGP_IDENTIFIER, &[])
            }
            OpenError::UnsupportedOptionalParameter { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::UNSUPPORTED_OPTIONAL_PARAMETER, &[])
            }
            OpenError::UnacceptableHoldTime { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::UNACCEPTABLE_HOLD_TIME, &[])
            }
            OpenError::Malformed { .. } => {
                Notification::new(code::OPEN_MESSAGE, sub::UNSPECIFIC, &[])
            }
            OpenError::BadLength { length } => Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                &length.to_be_bytes(),
            ),
            OpenError::UnsupportedCapability { data } => Notification {
                code: code::OPEN_MESSAGE,
                subcode: sub::UNSUPPORTED_CAPABILITY,
                data: data.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(open: &Open) -> Vec<u8> {
        let mut out = BytesMut::new();
        open.encode_body(&mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn new_uses_as_trans_for_large_asn() {
        let open = Open::new(4_200_000_000, 90, Ipv4Addr::new(1, 2, 3, 4), vec![]);
        assert_eq!(open.my_as, 23456);
        let open = Open::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), vec![]);
        assert_eq!(open.my_as, 65001);
    }

    #[test]
    fn bird_style_single_parameter() {
        let open = Open::new(
            65001,
            240,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(65001),
            ],
        );
        let b = body(&open);
        assert_eq!(
            b,
            [
                4, 0xfd, 0xe9, 0, 240, 10, 0, 0, 1, 16, // fixed part, opt len 16
                2, 14, // one capabilities parameter
                1, 4, 0, 1, 0, 1, // MP ipv4 unicast
                2, 0, // route refresh
                65, 4, 0, 0, 0xfd, 0xe9, // 4-octet AS
            ]
        );
        assert_eq!(Open::decode_body(&b).unwrap(), open);
    }

    #[test]
    fn extended_params_layout() {
        let mut open = Open::new(
            65001,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![Capability::RouteRefresh],
        );
        open.extended_params = true;
        let b = body(&open);
        assert_eq!(b[9..], [255, 255, 0, 5, 2, 0, 2, 2, 0]);
        assert_eq!(Open::decode_body(&b).unwrap(), open);
    }

    #[test]
    fn non_extended_overflow_is_an_error() {
        let caps = (0..100).map(|_| Capability::FourOctetAs(1)).collect();
        let open = Open::new(65001, 90, Ipv4Addr::new(10, 0, 0, 1), caps);
        let mut out = BytesMut::new();
        assert!(matches!(
            open.encode_body(&mut out),
            Err(EncodeError::FieldTooLong { .. })
        ));
    }

    #[test]
    fn malformed_fqdn_is_kept_as_unknown() {
        let v: &'static [u8] = &[5, b'a'];
        assert_eq!(
            decode_capability(capability_code::FQDN, v).unwrap(),
            Capability::Unknown {
                code: 73,
                value: Bytes::from_static(v)
            }
        );
    }

    #[test]
    fn reserved_bits_are_ignored() {
        assert_eq!(
            decode_capability(1, &[0, 2, 7, 1]).unwrap(),
            Capability::Multiprotocol(Family::IPV6_UNICAST)
        );
        let gr = decode_capability(64, &[0x30 | 0x0f, 0xff, 0, 1, 1, 0x7f]).unwrap();
        assert_eq!(
            gr,
            Capability::GracefulRestart(GracefulRestartCap {
                restart_state: false,
                notification: false,
                restart_time: 0xfff,
                families: vec![(Family::IPV4_UNICAST, false)],
            })
        );
    }
}
