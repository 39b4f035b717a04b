//! UPDATE decode/encode throughput, reported per prefix (`Throughput::Elements`).
//!
//! Each UPDATE carries ORIGIN, a 5-hop 4-octet AS_PATH, NEXT_HOP, MED and 3 communities,
//! plus 1, 16 or 500 IPv4 /24 prefixes. With `--features bench-bgpkit` the same body is also
//! parsed by bgpkit-parser's `parse_bgp_update_message`, in the same group.
//!
//! `cargo bench -p wren-bgp --features bench-bgpkit --bench wire_update -- --warm-up-time 1 --measurement-time 3`
//!
//! After criterion's own report it prints one table (ns per prefix, side by side) and writes
//! it as CSV to `<target>/criterion/wire_update.csv`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::net::Ipv4Addr;

use bytes::BytesMut;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use wren_bgp::wire::{AsPath, Community, Nlri, Origin, PathAttributes, SessionContext, Update};

const SIZES: [usize; 3] = [1, 16, 500];

fn update(prefixes: usize) -> Update {
    let nlri = (0..prefixes)
        .map(|i| {
            let i = i as u32;
            let addr = Ipv4Addr::from(0x0a00_0000 | (i << 8));
            Nlri::new(ipnet::Ipv4Net::new(addr, 24).unwrap().into())
        })
        .collect();
    Update::new(
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(vec![
                65001,
                4_200_000_001,
                3356,
                174,
                13335,
            ])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(100),
            communities: vec![
                Community::new(65001, 100),
                Community::new(65001, 200),
                Community::new(3356, 2),
            ],
            ..Default::default()
        },
        nlri,
    )
}

fn body(u: &Update, ctx: &SessionContext) -> Vec<u8> {
    let mut out = BytesMut::new();
    u.encode_body(ctx, &mut out).unwrap();
    out.to_vec()
}

fn decode(c: &mut Criterion) {
    let ctx = SessionContext::modern();
    let mut g = c.benchmark_group("update_decode");
    for n in SIZES {
        let u = update(n);
        let wire = body(&u, &ctx);
        assert_eq!(Update::decode_body(&wire, &ctx).unwrap(), u);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("wren", n), &wire, |b, wire| {
            b.iter(|| Update::decode_body(black_box(wire), &ctx).unwrap())
        });
        #[cfg(feature = "bench-bgpkit")]
        {
            use bgpkit_parser::models::AsnLength;
            use bgpkit_parser::parser::bgp::messages::parse_bgp_update_message;
            let wire = bytes::Bytes::from(wire.clone());
            let parsed = parse_bgp_update_message(wire.clone(), false, &AsnLength::Bits32).unwrap();
            assert_eq!(parsed.announced_prefixes.len(), n);
            g.bench_with_input(BenchmarkId::new("bgpkit", n), &wire, |b, wire| {
                b.iter(|| {
                    parse_bgp_update_message(black_box(wire.clone()), false, &AsnLength::Bits32)
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let ctx = SessionContext::modern();
    let mut g = c.benchmark_group("update_encode");
    for n in SIZES {
        let u = update(n);
        let mut out = BytesMut::with_capacity(8192);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("wren", n), &u, |b, u| {
            b.iter(|| {
                out.clear();
                black_box(u).encode_body(&ctx, &mut out).unwrap();
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}

/// Criterion's output folder: `$CRITERION_HOME`, else `<target>/criterion` (the bench runs
/// from `<target>/release/deps/`).
fn criterion_dir() -> Option<std::path::PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// Mean time per iteration in ns from criterion's `estimates.json`, if that benchmark ran.
fn mean_ns(dir: &std::path::Path, group: &str, id: &str, n: usize) -> Option<f64> {
    let path = dir
        .join(group)
        .join(id)
        .join(n.to_string())
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Prints ns per prefix for every size side by side and writes the same rows as CSV.
fn summary() {
    let Some(dir) = criterion_dir() else { return };
    let cols = [
        ("update_decode", "wren", "wren decode"),
        ("update_decode", "bgpkit", "bgpkit-parser decode"),
        ("update_encode", "wren", "wren encode"),
    ];
    let mut csv =
        String::from("prefixes_per_update,implementation,operation,ns_per_update,ns_per_prefix\n");
    println!(
        "\nns per prefix (mean; '-' = not run, build with --features bench-bgpkit for bgpkit)"
    );
    println!(
        "{:>9} {:>14} {:>22} {:>14}",
        "prefixes", cols[0].2, cols[1].2, cols[2].2
    );
    for n in SIZES {
        let mut cells = Vec::new();
        for (group, id, _) in cols {
            match mean_ns(&dir, group, id, n) {
                Some(t) => {
                    let op = group.trim_start_matches("update_");
                    csv.push_str(&format!("{n},{id},{op},{t:.1},{:.2}\n", t / n as f64));
                    cells.push(format!("{:.2}", t / n as f64));
                }
                None => cells.push("-".into()),
            }
        }
        println!("{n:>9} {:>14} {:>22} {:>14}", cells[0], cells[1], cells[2]);
    }
    let out = dir.join("wire_update.csv");
    match std::fs::write(&out, csv) {
        Ok(()) => println!("CSV: {}", out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", out.display()),
    }
}
