//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the regression vectors
//! (`bgp/tests/vectors/regressions/<target>/`) on stable Rust, through the same invariants the
//! fuzz targets check. The invariants live in `fuzz/src/lib.rs`, included here by path so
//! this test needs neither nightly nor the fuzz crate.

// Test code: the included invariants use only checked operations, the rest may panic.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod invariants;

type Check = fn(&[u8]) -> Result<(), String>;

const TARGETS: [(&str, Check); 2] = [
    ("decode_message", invariants::check_decode_message),
    ("codec_stream", invariants::check_codec_stream),
];

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some("README.md"))
        .collect();
    files.sort();
    files
}

fn replay(dir: &Path, check: Check) -> (usize, Vec<String>) {
    let files = files_in(dir);
    let failures = files
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).expect("readable corpus file");
            check(&data)
                .err()
                .map(|why| format!("{}: {why}", path.display()))
        })
        .collect();
    (files.len(), failures)
}

#[test]
fn fuzz_corpus_replays_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut total = 0;
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let (n, f) = replay(&root.join(target), check);
        assert!(n > 0, "no corpus for {target} under {}", root.display());
        total += n;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} of {total} corpus inputs violate an invariant:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn regression_vectors_replay_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/regressions");
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        failures.extend(replay(&root.join(target), check).1);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Edge cases of the invariants themselves: valid input passes, and the largest wrong-length
/// ROUTE-REFRESH still yields a NOTIFICATION that fits the session.
#[test]
fn invariants_accept_well_formed_input() {
    use wren_bgp::wire::{Message, SessionContext};
    // A well-formed message passes.
    let mut input = vec![0u8];
    input.extend_from_slice(
        &Message::Keepalive
            .to_bytes(&SessionContext::default())
            .unwrap(),
    );
    assert_eq!(invariants::check_decode_message(&input), Ok(()));
    // A ROUTE-REFRESH of 4096 octets: the reply carries the message as data, cut to fit.
    let mut rr = vec![0u8];
    rr.extend_from_slice(&[0xff; 16]);
    rr.extend_from_slice(&4096u16.to_be_bytes());
    rr.push(5);
    rr.resize(1 + 4096, 0);
    assert_eq!(invariants::check_decode_message(&rr), Ok(()));
    // Streams: same outcome whatever the chunk size.
    let mut stream = vec![0u8, 3];
    stream.extend_from_slice(&input[1..]);
    stream.extend_from_slice(&input[1..]);
    assert_eq!(invariants::check_codec_stream(&stream), Ok(()));
}

/// The corpus is worth replaying only if it reaches the round-trip check for every message
/// type, not just the error paths.
#[test]
fn corpus_decodes_every_message_type() {
    use std::collections::BTreeMap;
    use wren_bgp::wire::{Message, SessionContext};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_message");
    let mut decoded: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rejected = 0;
    for path in files_in(&dir) {
        let data = fs::read(&path).unwrap();
        let Some((&flags, input)) = data.split_first() else {
            continue;
        };
        match Message::decode(input, &SessionContext::from_flags(flags)) {
            Ok(m) => *decoded.entry(m.message_type().name()).or_default() += 1,
            Err(_) => rejected += 1,
        }
    }
    eprintln!("corpus: decoded {decoded:?}, rejected {rejected}");
    for kind in [
        "OPEN",
        "UPDATE",
        "NOTIFICATION",
        "KEEPALIVE",
        "ROUTE-REFRESH",
    ] {
        assert!(
            decoded.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in the corpus decodes"
        );
    }
    assert!(rejected > 0, "the corpus never reaches the error paths");
}
