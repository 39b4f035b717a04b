//! NLRI prefix lists: `<length, prefix>` tuples (RFC 4271 section 4.3, RFC 4760 section 5),
//! each optionally preceded by a 4-octet RFC 7911 path identifier.
//!
//! This is the per-prefix hot path, so it is hand-written over slices instead of nom
//! combinators: one pass, into a `Vec` whose capacity is computed from the field length
//! (see [`decode`]). Decoding never allocates per prefix ([`Nlri`] is `Copy`).
//!
//! Prefixes keep every octet received: bits past the prefix length in the last octet survive
//! a decode/encode round trip.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::wire::error::EncodeError;
use crate::wire::types::{Afi, Nlri};

/// Address length of the prefixes in one NLRI field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrefixKind {
    /// 32-bit prefixes (AFI 1).
    V4,
    /// 128-bit prefixes (AFI 2).
    V6,
}

impl PrefixKind {
    /// The prefix kind of an AFI this codec interprets.
    pub fn from_afi(afi: Afi) -> Option<PrefixKind> {
        match afi {
            Afi::IPV4 => Some(PrefixKind::V4),
            Afi::IPV6 => Some(PrefixKind::V6),
            _ => None,
        }
    }

    const fn max_len(self) -> u8 {
        match self {
            PrefixKind::V4 => 32,
            PrefixKind::V6 => 128,
        }
    }
}

/// A syntactically invalid NLRI field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NlriError {
    #[error("NLRI prefix length {0} exceeds the address length")]
    PrefixTooLong(u8),
    #[error("NLRI field ends in the middle of a prefix or path identifier")]
    Truncated,
}

/// Octets a prefix of `bits` bits occupies on the wire.
#[inline]
const fn prefix_octets(bits: u8) -> usize {
    (bits as usize).div_ceil(8)
}

/// Decode an NLRI (or withdrawn routes) field into a new `Vec`.
///
/// One pass, one allocation in the common case: the capacity is computed from the field
/// length assuming the usual prefix sizes (IPv4 up to /24, IPv6 up to /64, so 4 or 9 octets
/// per prefix, plus 4 with add-path). Fields dominated by shorter prefixes grow the `Vec`
/// (amortised doubling, never per prefix); longer ones over-reserve by at most a quarter.
pub fn decode(buf: &[u8], kind: PrefixKind, add_path: bool) -> Result<Vec<Nlri>, NlriError> {
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let per = match kind {
        PrefixKind::V4 => 4,
        PrefixKind::V6 => 9,
    } + if add_path { 4 } else { 0 };
    let mut out = Vec::with_capacity(buf.len().div_ceil(per));
    decode_into(buf, kind, add_path, &mut out)?;
    Ok(out)
}

/// Decode an NLRI field, appending to `out` (no capacity planning).
pub fn decode_into(
    mut buf: &[u8],
    kind: PrefixKind,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), NlriError> {
    while !buf.is_empty() {
        let path_id = if add_path {
            let (id, rest) = buf.split_first_chunk::<4>().ok_or(NlriError::Truncated)?;
            buf = rest;
            Some(u32::from_be_bytes(*id))
        } else {
            None
        };
        let (&bits, rest) = buf.split_first().ok_or(NlriError::Truncated)?;
        if bits > kind.max_len() {
            return Err(NlriError::PrefixTooLong(bits));
        }
        let (octets, rest) = rest
            .split_at_checked(prefix_octets(bits))
            .ok_or(NlriError::Truncated)?;
        buf = rest;
        let prefix = match kind {
            PrefixKind::V4 => {
                // A match on the length instead of a variable-length copy: this loop is
                // the per-prefix cost of decoding an UPDATE.
                let a = match *octets {
                    [] => [0, 0, 0, 0],
                    [a] => [a, 0, 0, 0],
                    [a, b] => [a, b, 0, 0],
                    [a, b, c] => [a, b, c, 0],
                    [a, b, c, d] => [a, b, c, d],
                    _ => return Err(NlriError::PrefixTooLong(bits)),
                };
                IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(a), bits)
                        .map_err(|_| NlriError::PrefixTooLong(bits))?,
                )
            }
            PrefixKind::V6 => {
                let mut a = [0u8; 16];
                a.get_mut(..octets.len())
                    .ok_or(NlriError::PrefixTooLong(bits))?
                    .copy_from_slice(octets);
                IpNet::V6(
                    Ipv6Net::new(Ipv6Addr::from(a), bits)
                        .map_err(|_| NlriError::PrefixTooLong(bits))?,
                )
            }
        };
        out.push(Nlri { prefix, path_id });
    }
    Ok(())
}

/// Octets `nlri` occupies on the wire.
pub fn encoded_len(nlri: &[Nlri], add_path: bool) -> usize {
    let per = if add_path { 5 } else { 1 };
    nlri.iter()
        .map(|n| per + prefix_octets(n.prefix.prefix_len()))
        .sum()
}

/// Encode `nlri`, all of which must be of `kind`.
///
/// With add-path in effect an entry without a path identifier is sent with identifier 0;
/// without add-path, path identifiers are not sent.
pub fn encode(
    nlri: &[Nlri],
    kind: PrefixKind,
    add_path: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    for n in nlri {
        if add_path {
            out.put_u32(n.path_id.unwrap_or(0));
        }
        let bits = n.prefix.prefix_len();
        let len = prefix_octets(bits);
        out.put_u8(bits);
        match (kind, n.prefix) {
            (PrefixKind::V4, IpNet::V4(p)) => {
                out.put_slice(p.addr().octets().get(..len).unwrap_or_default())
            }
            (PrefixKind::V6, IpNet::V6(p)) => {
                out.put_slice(p.addr().octets().get(..len).unwrap_or_default())
            }
            (PrefixKind::V4, IpNet::V6(_)) => {
                return Err(EncodeError::Invalid(
                    "an IPv6 prefix cannot be sent in an IPv4 NLRI field",
                ))
            }
            (PrefixKind::V6, IpNet::V4(_)) => {
                return Err(EncodeError::Invalid(
                    "an IPv4 prefix cannot be sent in an IPv6 NLRI field",
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Nlri {
        Nlri::new(s.parse().unwrap())
    }

    #[test]
    fn decodes_ipv4_prefixes() {
        let buf = [24, 10, 1, 2, 0, 32, 1, 2, 3, 4, 8, 10];
        let got = decode(&buf, PrefixKind::V4, false).unwrap();
        assert_eq!(
            got,
            vec![
                v4("10.1.2.0/24"),
                v4("0.0.0.0/0"),
                v4("1.2.3.4/32"),
                v4("10.0.0.0/8")
            ]
        );
        let mut out = BytesMut::new();
        encode(&got, PrefixKind::V4, false, &mut out).unwrap();
        assert_eq!(&out[..], &buf[..]);
    }

    #[test]
    fn keeps_host_bits_in_last_octet() {
        let buf = [23, 10, 1, 3];
        let got = decode(&buf, PrefixKind::V4, false).unwrap();
        assert_eq!(got[0].prefix.to_string(), "10.1.3.0/23");
        let mut out = BytesMut::new();
        encode(&got, PrefixKind::V4, false, &mut out).unwrap();
        assert_eq!(&out[..], &buf[..]);
    }

    #[test]
    fn add_path_ids() {
        let buf = [0, 0, 0, 7, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 1];
        let got = decode(&buf, PrefixKind::V6, true).unwrap();
        assert_eq!(
            got,
            vec![Nlri::with_path_id("2001:db8:0:1::/64".parse().unwrap(), 7)]
        );
        let mut out = BytesMut::new();
        encode(&got, PrefixKind::V6, true, &mut out).unwrap();
        assert_eq!(&out[..], &buf[..]);
        assert_eq!(encoded_len(&got, true), buf.len());
    }

    #[test]
    fn rejects_bad_fields() {
        assert_eq!(
            decode(&[33, 1, 2, 3, 4, 5], PrefixKind::V4, false),
            Err(NlriError::PrefixTooLong(33))
        );
        assert_eq!(
            decode(&[129], PrefixKind::V6, false),
            Err(NlriError::PrefixTooLong(129))
        );
        assert_eq!(
            decode(&[24, 10, 1], PrefixKind::V4, false),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            decode(&[0, 0, 1], PrefixKind::V4, true),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            decode(&[0, 0, 0, 1], PrefixKind::V4, true),
            Err(NlriError::Truncated)
        );
    }

    #[test]
    fn encode_rejects_wrong_family() {
        let mut out = BytesMut::new();
        assert!(encode(
            &[Nlri::new("::/0".parse().unwrap())],
            PrefixKind::V4,
            false,
            &mut out
        )
        .is_err());
    }
}
