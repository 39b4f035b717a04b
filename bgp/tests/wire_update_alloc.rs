//! Heap allocations of UPDATE decoding do not depend on the number of prefixes, and encoding
//! into a buffer with room allocates nothing. A counting global allocator (per thread, so the
//! test harness's own threads do not disturb the count) measures it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv4Addr;

use bytes::BytesMut;
use wren_bgp::wire::{AsPath, Community, Nlri, Origin, PathAttributes, SessionContext, Update};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every method delegates to `System` with the caller's arguments unchanged; the only
// addition is bumping a const-initialised thread-local counter, which itself never allocates
// (and `try_with` tolerates thread teardown).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

fn update(prefixes: u32) -> Update {
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
            communities: vec![Community::new(65001, 1), Community::new(65001, 2)],
            ..Default::default()
        },
        (0..prefixes)
            .map(|i| {
                let addr = Ipv4Addr::from(0x0a00_0000 | (i << 8));
                Nlri::new(ipnet::Ipv4Net::new(addr, 24).unwrap().into())
            })
            .collect(),
    )
}

#[test]
fn decode_allocations_do_not_grow_with_prefixes() {
    let ctx = SessionContext::modern();
    let mut counts = Vec::new();
    for n in [1, 16, 500] {
        let u = update(n);
        let mut wire = BytesMut::with_capacity(4096);
        u.encode_body(&ctx, &mut wire).unwrap();
        let (allocs, decoded) = allocations(|| Update::decode_body(&wire, &ctx).unwrap());
        assert_eq!(decoded, u);
        counts.push(allocs);

        let mut out = BytesMut::with_capacity(8192);
        let (enc_allocs, r) = allocations(|| u.encode_body(&ctx, &mut out));
        r.unwrap();
        assert_eq!(
            enc_allocs, 0,
            "encoding {n} prefixes into a roomy buffer allocated"
        );
    }
    eprintln!("decode allocations for 1/16/500 prefixes: {counts:?}");
    // nlri Vec, AS_PATH segments + ASNs, communities: a constant handful.
    assert!(counts[0] <= 4, "{counts:?}");
    assert_eq!(counts[0], counts[1], "{counts:?}");
    assert_eq!(counts[1], counts[2], "{counts:?}");
}
