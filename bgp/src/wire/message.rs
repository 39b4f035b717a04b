//! The BGP message header (RFC 4271 section 4.1) and the message enum.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                           Marker                              |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::context::{SessionContext, MAX_MESSAGE_LEN};
use crate::wire::error::{DecodeError, EncodeError};
use crate::wire::notification::Notification;
use crate::wire::open::Open;
use crate::wire::route_refresh::{RouteRefresh, RouteRefreshError};
use crate::wire::update::Update;

/// The 16-octet all-ones marker.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Marker (16) + length (2) + type (1).
pub const HEADER_LEN: usize = 19;

/// Smallest OPEN: header + version, my AS, hold time, BGP identifier, opt. param. length.
pub const MIN_OPEN_LEN: usize = 29;
/// Smallest UPDATE: header + withdrawn routes length + total path attribute length.
pub const MIN_UPDATE_LEN: usize = 23;
/// Smallest NOTIFICATION: header + error code + error subcode.
pub const MIN_NOTIFICATION_LEN: usize = 21;
/// The only valid KEEPALIVE length.
pub const KEEPALIVE_LEN: usize = 19;
/// The only valid ROUTE-REFRESH length (no ORF support, RFC 2918 / RFC 7313).
pub const ROUTE_REFRESH_LEN: usize = 23;

/// BGP message type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    /// The type for a type octet, `None` for a type this speaker does not know.
    pub fn from_u8(value: u8) -> Option<MessageType> {
        match value {
            1 => Some(MessageType::Open),
            2 => Some(MessageType::Update),
            3 => Some(MessageType::Notification),
            4 => Some(MessageType::Keepalive),
            5 => Some(MessageType::RouteRefresh),
            _ => None,
        }
    }

    /// Upper-case name as the RFCs write it.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Open => "OPEN",
            MessageType::Update => "UPDATE",
            MessageType::Notification => "NOTIFICATION",
            MessageType::Keepalive => "KEEPALIVE",
            MessageType::RouteRefresh => "ROUTE-REFRESH",
        }
    }

    /// Whether `length` (header included) is acceptable for this type in a session whose
    /// maximum message size is `max` (RFC 4271 section 6.1, RFC 8654 section 4).
    ///
    /// ROUTE-REFRESH only gets the general bounds here: a wrong ROUTE-REFRESH length is not a
    /// header error but the RFC 7313 "Invalid Message Length" error, which needs the whole
    /// message as data, so [`Message::decode`] reports it once the body has arrived.
    fn length_ok(self, length: usize, max: usize) -> bool {
        match self {
            // RFC 8654 section 4: OPEN and KEEPALIVE stay limited to 4096 octets.
            MessageType::Open => (MIN_OPEN_LEN..=max.min(MAX_MESSAGE_LEN)).contains(&length),
            MessageType::Update => (MIN_UPDATE_LEN..=max).contains(&length),
            MessageType::Notification => (MIN_NOTIFICATION_LEN..=max).contains(&length),
            MessageType::Keepalive => length == KEEPALIVE_LEN,
            MessageType::RouteRefresh => (HEADER_LEN..=max).contains(&length),
        }
    }
}

/// A decoded BGP message.
// UPDATE is the message a session carries by the million and is moved once from the decoder
// to the RIB; boxing it would add an allocation to every one to shrink the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Errors in the message header (RFC 4271 section 6.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("message header: marker is not all ones (connection not synchronized)")]
    ConnectionNotSynchronized,
    #[error("message header: length {length} is invalid for this message type and session")]
    BadMessageLength { length: u16 },
    #[error("message header: unknown message type {0}")]
    BadMessageType(u8),
}

impl HeaderError {
    /// The NOTIFICATION for this error (RFC 4271 section 6.1).
    pub fn notification(&self) -> Notification {
        use crate::wire::error::{code, header_subcode as sub};
        match *self {
            HeaderError::ConnectionNotSynchronized => {
                Notification::new(code::MESSAGE_HEADER, sub::CONNECTION_NOT_SYNCHRONIZED, &[])
            }
            // "the Data field contains the erroneous Length field".
            HeaderError::BadMessageLength { length } => Notification::new(
                code::MESSAGE_HEADER,
                sub::BAD_MESSAGE_LENGTH,
                &length.to_be_bytes(),
            ),
            // "the Data field contains the erroneous Type field".
            HeaderError::BadMessageType(t) => {
                Notification::new(code::MESSAGE_HEADER, sub::BAD_MESSAGE_TYPE, &[t])
            }
        }
    }
}

/// Frame a message from the start of `buf` without looking at its body.
///
/// Returns `Ok(Some(length))` when the header is complete and valid (the message occupies
/// `buf[..length]` once that many octets have arrived), `Ok(None)` when fewer than 19 octets
/// are available and nothing seen so far is wrong, and the header error otherwise. The
/// checks follow RFC 4271 section 6.1 in its order: marker (checked on every octet already
/// present, so garbage is rejected before the header is complete), then length (below 19
/// or above `max`), then type, then the length for the type (OPEN and KEEPALIVE are
/// limited to 4096 octets whatever `max` is, RFC 8654 section 4).
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, HeaderError> {
    let marker_seen = buf.len().min(MARKER.len());
    if buf.iter().take(marker_seen).any(|&b| b != 0xff) {
        return Err(HeaderError::ConnectionNotSynchronized);
    }
    let (Some(&hi), Some(&lo)) = (buf.get(16), buf.get(17)) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    let len = usize::from(length);
    if !(HEADER_LEN..=max).contains(&len) {
        return Err(HeaderError::BadMessageLength { length });
    }
    let Some(&type_octet) = buf.get(18) else {
        return Ok(None);
    };
    let Some(kind) = MessageType::from_u8(type_octet) else {
        return Err(HeaderError::BadMessageType(type_octet));
    };
    if !kind.length_ok(len, max) {
        return Err(HeaderError::BadMessageLength { length });
    }
    Ok(Some(len))
}

impl Message {
    /// The message's type code.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Decode one complete message, header included.
    ///
    /// `buf` must hold exactly one message: a buffer whose size differs from the header's
    /// length field is a Bad Message Length error carrying that length field (or the buffer
    /// size when the header itself is incomplete). Use [`frame_len`] or
    /// [`crate::wire::BgpCodec`] to cut a byte stream into messages.
    pub fn decode(buf: &[u8], ctx: &SessionContext) -> Result<Message, DecodeError> {
        let max = ctx.max_message_len();
        let len = match frame_len(buf, max)? {
            Some(len) => len,
            None => {
                // Incomplete header: report the length field if it is there, else the size.
                let length = match (buf.get(16), buf.get(17)) {
                    (Some(&hi), Some(&lo)) => u16::from_be_bytes([hi, lo]),
                    _ => u16::try_from(buf.len()).unwrap_or(u16::MAX),
                };
                return Err(HeaderError::BadMessageLength { length }.into());
            }
        };
        let length = u16::try_from(len).unwrap_or(u16::MAX);
        if buf.len() != len {
            return Err(HeaderError::BadMessageLength { length }.into());
        }
        let (Some(&type_octet), Some(body)) = (buf.get(18), buf.get(HEADER_LEN..)) else {
            return Err(HeaderError::BadMessageLength { length }.into());
        };
        // frame_len has validated the type octet.
        let Some(kind) = MessageType::from_u8(type_octet) else {
            return Err(HeaderError::BadMessageType(type_octet).into());
        };
        match kind {
            MessageType::Open => Ok(Message::Open(Open::decode_body(body)?)),
            MessageType::Update => Ok(Message::Update(Update::decode_body(body, ctx)?)),
            MessageType::Notification => {
                Ok(Message::Notification(Notification::decode_body(body)?))
            }
            MessageType::Keepalive => Ok(Message::Keepalive),
            MessageType::RouteRefresh => {
                if len != ROUTE_REFRESH_LEN {
                    // RFC 7313 section 5: the data is the complete ROUTE-REFRESH message. Our
                    // NOTIFICATION must itself fit the session maximum, so the copy of a longer
                    // message is cut to what fits (a local choice: no RFC covers this case).
                    let keep = len.min(max.saturating_sub(MIN_NOTIFICATION_LEN));
                    let message = Bytes::copy_from_slice(buf.get(..keep).unwrap_or_default());
                    return Err(RouteRefreshError::InvalidLength { length, message }.into());
                }
                Ok(Message::RouteRefresh(RouteRefresh::decode_body(body)?))
            }
        }
    }

    /// Append this message, header included, to `out`.
    ///
    /// The header length is patched once the body is written. A message longer than
    /// `ctx.max_message_len()` (4096 for OPEN and KEEPALIVE whatever the context says,
    /// RFC 8654 section 4) is an error, and `out` is left as it was.
    pub fn encode(&self, ctx: &SessionContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_inner(ctx, out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_inner(
        &self,
        ctx: &SessionContext,
        out: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        let kind = self.message_type();
        out.reserve(HEADER_LEN);
        out.put_slice(&MARKER);
        out.put_u16(0);
        out.put_u8(kind as u8);
        match self {
            Message::Open(open) => open.encode_body(out)?,
            Message::Update(update) => update.encode_body(ctx, out)?,
            Message::Notification(n) => n.encode_body(out),
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => rr.encode_body(out),
        }
        let length = out.len().saturating_sub(start);
        let max = match kind {
            MessageType::Open | MessageType::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len(),
        };
        if length > max {
            return Err(EncodeError::TooLong {
                kind: kind.name(),
                length,
                max,
            });
        }
        let length16 = u16::try_from(length).map_err(|_| EncodeError::TooLong {
            kind: kind.name(),
            length,
            max,
        })?;
        let len_at = start.saturating_add(MARKER.len());
        if let Some(field) = out.get_mut(len_at..len_at.saturating_add(2)) {
            field.copy_from_slice(&length16.to_be_bytes());
        }
        Ok(())
    }

    /// Encode into a fresh buffer.
    pub fn to_bytes(&self, ctx: &SessionContext) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(ctx, &mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: u16, kind: u8) -> Vec<u8> {
        let mut v = MARKER.to_vec();
        v.extend_from_slice(&length.to_be_bytes());
        v.push(kind);
        v
    }

    #[test]
    fn frame_len_needs_header() {
        assert_eq!(frame_len(&[], 4096), Ok(None));
        assert_eq!(frame_len(&[0xff; 10], 4096), Ok(None));
        assert_eq!(frame_len(&header(19, 4)[..18], 4096), Ok(None));
        assert_eq!(frame_len(&header(19, 4), 4096), Ok(Some(19)));
    }

    #[test]
    fn frame_len_rejects_marker_early() {
        assert_eq!(
            frame_len(&[0xff, 0xfe], 4096),
            Err(HeaderError::ConnectionNotSynchronized)
        );
    }

    #[test]
    fn frame_len_rejects_length_before_type() {
        let h = header(4097, 2);
        assert_eq!(
            frame_len(&h[..18], 4096),
            Err(HeaderError::BadMessageLength { length: 4097 })
        );
        assert_eq!(frame_len(&h, 65535), Ok(Some(4097)));
        // OPEN stays limited to 4096 with extended messages.
        assert_eq!(
            frame_len(&header(4097, 1), 65535),
            Err(HeaderError::BadMessageLength { length: 4097 })
        );
    }

    #[test]
    fn keepalive_round_trip() {
        let ctx = SessionContext::default();
        let bytes = Message::Keepalive.to_bytes(&ctx).unwrap();
        assert_eq!(&bytes[..], &header(19, 4)[..]);
        assert_eq!(Message::decode(&bytes, &ctx), Ok(Message::Keepalive));
    }

    #[test]
    fn decode_rejects_buffer_not_matching_length() {
        let ctx = SessionContext::default();
        let mut v = header(19, 4);
        v.push(0);
        assert_eq!(
            Message::decode(&v, &ctx),
            Err(HeaderError::BadMessageLength { length: 19 }.into())
        );
        assert_eq!(
            Message::decode(&v[..5], &ctx),
            Err(HeaderError::BadMessageLength { length: 5 }.into())
        );
        // Marker and length present, type missing: the length field is reported.
        assert_eq!(
            Message::decode(&v[..18], &ctx),
            Err(HeaderError::BadMessageLength { length: 19 }.into())
        );
    }
}
