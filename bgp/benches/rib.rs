//! RIB micro-benchmarks: importing 100k routes from 10 peers, and best-path selection
//! (plus export to one update group) over them.
//!
//! `cargo bench -p wren-bgp --bench rib`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ipnet::IpNet;
use wren_bgp::rib::{PeerId, PeerInfo, Rib, RibConfig};
use wren_bgp::wire::{AsPath, Nlri, Origin, PathAttributes, Update};

const AS: u32 = 65000;

fn prefix(n: u32) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (n << 8))), 24).unwrap_or_default()
}

fn rib_with_peers(now: Instant) -> (Rib, Vec<PeerId>) {
    let mut r = Rib::new(RibConfig::new(AS, Ipv4Addr::new(10, 0, 0, 1)), now);
    let mut ids = Vec::new();
    for i in 0..10u8 {
        let addr = Ipv4Addr::new(192, 0, 2, i + 1);
        let mut info = PeerInfo::new(IpAddr::V4(addr), 65100 + u32::from(i), AS);
        info.router_id = addr;
        info.local_v4 = Some(Ipv4Addr::new(10, 0, 0, 1));
        let id = r.add_peer(info.clone());
        let _ = r.peer_up(id, info, now);
        ids.push(id);
    }
    r.drain_output();
    (r, ids)
}

/// 10 peers x 1000-prefix UPDATEs. `same`: every peer announces the same prefixes (10
/// paths per prefix); otherwise disjoint prefixes.
fn updates(same: bool, per_peer: u32) -> Vec<Vec<Update>> {
    (0..10u32)
        .map(|p| {
            let attrs = PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::from_sequence(vec![65100 + p, 64512 + (p % 3)])),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, p as u8 + 1)),
                ..Default::default()
            };
            (0..per_peer / 1000)
                .map(|c| {
                    let base = if same { 0 } else { p * per_peer };
                    let nlri = (0..1000)
                        .map(|j| Nlri::new(prefix(base + c * 1000 + j)))
                        .collect();
                    Update::new(attrs.clone(), nlri)
                })
                .collect()
        })
        .collect()
}

fn import(r: &mut Rib, ids: &[PeerId], ups: &[Vec<Update>], now: Instant) {
    for (id, us) in ids.iter().zip(ups) {
        for u in us {
            let _ = black_box(r.handle_update(*id, u, now));
        }
    }
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let disjoint = updates(false, 10_000);
    let same = updates(true, 100_000);
    let mut g = c.benchmark_group("rib");
    g.sample_size(10);
    g.bench_function(
        "import 100k routes from 10 peers (disjoint prefixes)",
        |b| {
            b.iter_batched(
                || rib_with_peers(now),
                |(mut r, ids)| {
                    import(&mut r, &ids, &disjoint, now);
                    r
                },
                BatchSize::LargeInput,
            )
        },
    );
    g.bench_function(
        "best path + export for 100k prefixes (1 path each, 10 peers)",
        |b| {
            b.iter_batched(
                || {
                    let (mut r, ids) = rib_with_peers(now);
                    import(&mut r, &ids, &disjoint, now);
                    r
                },
                |mut r| {
                    r.process();
                    r
                },
                BatchSize::LargeInput,
            )
        },
    );
    g.bench_function("import 1M paths: 10 peers x the same 100k prefixes", |b| {
        b.iter_batched(
            || rib_with_peers(now),
            |(mut r, ids)| {
                import(&mut r, &ids, &same, now);
                r
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("best path + export for 100k prefixes x 10 paths", |b| {
        b.iter_batched(
            || {
                let (mut r, ids) = rib_with_peers(now);
                import(&mut r, &ids, &same, now);
                r
            },
            |mut r| {
                r.process();
                r
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
