//! tokio-util framing: [`BgpCodec`] implements `Decoder` and `Encoder<Message>`.
