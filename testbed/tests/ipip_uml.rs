//! IP-in-IP between two namespaces (topologies/ipip-pair.clab.yml). The scenario needs the
//! `ipip` module; where the running kernel lacks it, the test binary re-runs this test inside
//! user-mode Linux and reports its result as its own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::time::Duration;

use wren_testbed::kernel::link_stats;
use wren_testbed::uml::{self, here_or_in_uml, Placement};
use wren_testbed::{skip_reason, state, Lab, Topology};

const PINGS: u64 = 3;

fn scenario() {
    let topo = Topology::from_file(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/ipip-pair.clab.yml"),
    )
    .unwrap();
    assert_eq!(topo.required_modules(), vec!["ipip".to_string()]);
    let lab = Lab::up(&topo).unwrap();
    let a = lab.netns("a").unwrap();
    let b = lab.netns("b").unwrap();
    let a0 = link_stats(&a, "tunl0").unwrap();
    let b0 = link_stats(&b, "tunl0").unwrap();
    let out = lab
        .exec_text(
            "a",
            &[
                "ping",
                "-c",
                &PINGS.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                "-I",
                "192.168.1.1",
                "192.168.2.1",
            ],
        )
        .unwrap();
    println!("{out}");
    let a1 = link_stats(&a, "tunl0").unwrap();
    let b1 = link_stats(&b, "tunl0").unwrap();
    // Requests leave a through tunl0 and arrive at b's tunl0; replies go the other way.
    assert!(
        a1.tx_packets - a0.tx_packets >= PINGS,
        "a tunl0 tx {a0:?} -> {a1:?}"
    );
    assert!(
        b1.rx_packets - b0.rx_packets >= PINGS,
        "b tunl0 rx {b0:?} -> {b1:?}"
    );
    assert!(
        b1.tx_packets - b0.tx_packets >= PINGS,
        "b tunl0 tx {b0:?} -> {b1:?}"
    );
    assert!(
        a1.rx_packets - a0.rx_packets >= PINGS,
        "a tunl0 rx {a0:?} -> {a1:?}"
    );
    println!(
        "IPIP-OK a.tunl0 tx {} rx {}, b.tunl0 tx {} rx {}",
        a1.tx_packets - a0.tx_packets,
        a1.rx_packets - a0.rx_packets,
        b1.tx_packets - b0.tx_packets,
        b1.rx_packets - b0.rx_packets
    );
    let st = lab.state();
    lab.down().unwrap();
    let left = state::leftovers(&st);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[test]
fn ipip_ping_crosses_tunl0() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    let missing = wren_testbed::kernel::missing_modules(&["ipip"]);
    if !missing.is_empty() && !uml::available() {
        eprintln!("skipping: kernel lacks ipip and user-mode-linux is not installed");
        return;
    }
    match here_or_in_uml(
        &["ipip"],
        &[
            "--exact",
            "ipip_ping_crosses_tunl0",
            "--nocapture",
            "--test-threads",
            "1",
        ],
        Duration::from_secs(300),
    )
    .unwrap()
    {
        Placement::Here => scenario(),
        Placement::Uml(run) => {
            println!(
                "ran under user-mode Linux in {:.1} s (kernel lacks ipip):\n{}",
                run.elapsed.as_secs_f64(),
                run.output
            );
            assert!(
                run.success(),
                "inner run failed (exit {}):\n{}",
                run.exit_code,
                run.output
            );
            assert!(
                run.output.contains("IPIP-OK"),
                "no IPIP-OK marker:\n{}",
                run.output
            );
            assert!(
                run.output.contains("1 passed"),
                "inner test did not pass:\n{}",
                run.output
            );
        }
    }
}
