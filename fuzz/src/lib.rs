//! The invariants the fuzz targets check, shared with the stable corpus replay test
//! (`bgp/tests/fuzz_corpus.rs` includes this file with `#[path]`, so it may only use
//! `wren_bgp`, `bytes` and `tokio_util`).
//!
//! Input layout, both targets: octet 0 selects the session context
//! ([`SessionContext::from_flags`]: bit 0 4-octet AS, bit 1 extended message, bits 2..=5
//! add-path families). `decode_message`: the rest is one message. `codec_stream`: octet 1 is
//! the chunk size (0 means 1), the rest is a byte stream.

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use wren_bgp::wire::{frame_len, BgpCodec, DecodeError, Message, Notification, SessionContext};

/// Decode `data[1..]` as one message in the context chosen by `data[0]`, and check:
///
/// * a decoded message re-encodes, and decoding that gives the same message
///   (`decode(encode(decode(x))) == decode(x)`, ignoring the RFC 7606 `issues` of an UPDATE,
///   which describe attributes that are not re-encoded; the octets may differ from `x`, e.g.
///   for a normalised AS4_PATH or ignored reserved bits), and from there on encoding and
///   decoding are a fixed point (`encode(decode(encode(m))) == encode(m)`, issues included);
/// * `frame_len` agrees with the decoder about where the message ends;
/// * a rejected message yields a NOTIFICATION that can itself be sent in this session.
pub fn check_decode_message(data: &[u8]) -> Result<(), String> {
    let Some((&flags, input)) = data.split_first() else {
        return Ok(());
    };
    let ctx = SessionContext::from_flags(flags);
    match Message::decode(input, &ctx) {
        Ok(message) => {
            match frame_len(input, ctx.max_message_len()) {
                Ok(Some(len)) if len == input.len() => {}
                other => {
                    return Err(format!(
                        "frame_len says {other:?} for a {}-octet message that decodes",
                        input.len()
                    ))
                }
            }
            check_round_trip(&message, &ctx)
        }
        Err(err) => check_notification(&err, &ctx),
    }
}

/// Feed `data[2..]` to a [`BgpCodec`] in chunks of `data[1]` octets and check that the
/// messages and the final error are the same as when the whole stream is decoded at once,
/// and that every message round-trips as in [`check_decode_message`].
pub fn check_codec_stream(data: &[u8]) -> Result<(), String> {
    let [flags, chunk, stream @ ..] = data else {
        return Ok(());
    };
    let ctx = SessionContext::from_flags(*flags);
    let whole = run_codec(&ctx, stream, stream.len().max(1));
    let chunked = run_codec(&ctx, stream, usize::from(*chunk).max(1));
    if whole != chunked {
        return Err(format!(
            "chunk size {chunk} changes the outcome:\n whole:   {whole:?}\n chunked: {chunked:?}"
        ));
    }
    let (messages, _) = whole;
    for message in &messages {
        check_round_trip(message, &ctx)?;
    }
    Ok(())
}

type CodecOutcome = (Vec<Message>, Option<Notification>);

fn run_codec(ctx: &SessionContext, stream: &[u8], chunk: usize) -> CodecOutcome {
    let mut codec = BgpCodec::with_contexts(ctx.clone(), ctx.clone());
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => messages.push(m),
                Ok(None) => break,
                Err(e) => return (messages, e.notification()),
            }
        }
    }
    (messages, None)
}

fn check_round_trip(message: &Message, ctx: &SessionContext) -> Result<(), String> {
    let encoded = message
        .to_bytes(ctx)
        .map_err(|e| format!("decoded message does not re-encode ({e}): {message:?}"))?;
    let again = Message::decode(&encoded, ctx).map_err(|e| {
        format!("re-encoded message does not decode ({e}): {message:?}\n bytes {encoded:02x?}")
    })?;
    // RFC 7606 issues describe the octets received: an attribute that was discarded is not
    // re-encoded, so the second decode cannot see the same issue. Compare without them; from
    // the second decode on, everything (issues included) must be a fixed point.
    if without_issues(&again) != without_issues(message) {
        return Err(format!(
            "round trip changed the message:\n first:  {message:?}\n second: {again:?}"
        ));
    }
    let encoded_again = again
        .to_bytes(ctx)
        .map_err(|e| format!("second encode failed ({e}): {again:?}"))?;
    if encoded_again != encoded {
        return Err(format!(
            "encoding is not stable:\n first:  {encoded:02x?}\n second: {encoded_again:02x?}"
        ));
    }
    let third = Message::decode(&encoded_again, ctx)
        .map_err(|e| format!("third decode failed ({e}): {again:?}"))?;
    if third != again {
        return Err(format!(
            "decode is not a fixed point after one round trip:\n second: {again:?}\n third:  {third:?}"
        ));
    }
    Ok(())
}

fn without_issues(message: &Message) -> Message {
    let mut message = message.clone();
    if let Message::Update(update) = &mut message {
        update.issues.clear();
    }
    message
}

fn check_notification(err: &DecodeError, ctx: &SessionContext) -> Result<(), String> {
    let notification = err.notification();
    Message::Notification(notification)
        .to_bytes(ctx)
        .map(|_| ())
        .map_err(|e| format!("the NOTIFICATION for \"{err}\" cannot be sent: {e}"))
}
