//! `BgpCodec` framing on an arbitrary byte stream fed in arbitrary chunk sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = wren_bgp_fuzz::check_codec_stream(data) {
        panic!("{violation}");
    }
});
