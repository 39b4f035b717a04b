//! tokio-util framing: [`BgpCodec`] implements `Decoder` and `Encoder<Message>`.
//!
//! The decoder looks at the 19-octet header before it waits for a body: a bad marker, a
//! length outside what the receive context admits, an unknown type or a length wrong for
//! the type is reported as soon as the octets that show it have arrived, and the buffer is
//! never grown beyond one message of the negotiated maximum. After any error the connection
//! is dead: send [`CodecError::notification`] and close.

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::wire::context::SessionContext;
use crate::wire::error::{DecodeError, EncodeError};
use crate::wire::message::{frame_len, Message, HEADER_LEN};
use crate::wire::notification::Notification;

/// A framing or I/O failure of a BGP byte stream.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent a malformed message; reply with [`DecodeError::notification`].
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A message of ours does not fit the send context.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("BGP transport: {0}")]
    Io(#[from] io::Error),
}

impl CodecError {
    /// The NOTIFICATION to send before closing, for decode errors.
    pub fn notification(&self) -> Option<Notification> {
        match self {
            CodecError::Decode(e) => Some(e.notification()),
            CodecError::Encode(_) | CodecError::Io(_) => None,
        }
    }
}

/// BGP message framing for one session.
///
/// Starts with the pre-OPEN contexts (2-octet AS, no add-path, 4096 octets); call
/// [`BgpCodec::set_contexts`] with the result of [`SessionContext::negotiate`] once both
/// OPENs are known (with `tokio_util::codec::Framed`, through `codec_mut()`).
#[derive(Clone, Debug, Default)]
pub struct BgpCodec {
    rx: SessionContext,
    tx: SessionContext,
}

impl BgpCodec {
    pub fn new() -> Self {
        BgpCodec::default()
    }

    /// A codec with the given receive and send contexts.
    pub fn with_contexts(rx: SessionContext, tx: SessionContext) -> Self {
        BgpCodec { rx, tx }
    }

    /// Switch to the negotiated contexts (after the OPEN exchange).
    pub fn set_contexts(&mut self, rx: SessionContext, tx: SessionContext) {
        self.rx = rx;
        self.tx = tx;
    }

    /// The context used to decode what the peer sends.
    pub fn rx(&self) -> &SessionContext {
        &self.rx
    }

    /// The context used to encode what we send.
    pub fn tx(&self) -> &SessionContext {
        &self.tx
    }
}

impl Decoder for BgpCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        let max = self.rx.max_message_len();
        let Some(len) = frame_len(src, max).map_err(DecodeError::from)? else {
            // At most a header: ask for the rest of it, nothing more.
            src.reserve(HEADER_LEN.saturating_sub(src.len()));
            return Ok(None);
        };
        if src.len() < len {
            // len <= max (checked by frame_len), so this never exceeds one message.
            src.reserve(len.saturating_sub(src.len()));
            return Ok(None);
        }
        let frame = src.split_to(len);
        let message = Message::decode(&frame, &self.rx)?;
        Ok(Some(message))
    }
}

impl Encoder<Message> for BgpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(&self.tx, dst)?;
        Ok(())
    }
}

impl Encoder<&Message> for BgpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(&self.tx, dst)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::HeaderError;

    #[test]
    fn keepalive_in_pieces() {
        let mut codec = BgpCodec::new();
        let mut wire = BytesMut::new();
        codec.encode(Message::Keepalive, &mut wire).unwrap();
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = codec.decode(&mut buf).unwrap();
            if i + 1 < wire.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(Message::Keepalive));
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_length_rejected_from_header() {
        let mut codec = BgpCodec::new();
        let mut buf = BytesMut::from(&[0xffu8; 16][..]);
        buf.extend_from_slice(&[0x10, 0x01]); // 4097
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Decode(DecodeError::Header(HeaderError::BadMessageLength {
                length: 4097
            }))
        ));
        assert!(buf.capacity() < 4097);
    }
}
