//! `Message::decode` on arbitrary input; every message that decodes must re-encode and decode
//! to itself, and every rejection must yield a NOTIFICATION that fits the session.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = wren_bgp_fuzz::check_decode_message(data) {
        panic!("{violation}");
    }
});
