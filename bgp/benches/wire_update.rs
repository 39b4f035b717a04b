//! UPDATE decode/encode throughput, reported per prefix (`Throughput::Elements`).
//!
//! Each UPDATE carries ORIGIN, a 5-hop 4-octet AS_PATH, NEXT_HOP, MED and 3 communities,
//! plus 1, 16 or 500 IPv4 /24 prefixes. With `--features bench-bgpkit` the same body is also
//! parsed by bgpkit-parser's `parse_bgp_update_message`, in the same group.
//!
//! `cargo bench -p wren-bgp --bench wire_update -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::Ipv4Addr;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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
criterion_main!(benches);
