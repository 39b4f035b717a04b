//! 50 concurrent ADDs, then 50 concurrent DELs, three rounds: unique addresses, and
//! nothing left behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

const PODS: usize = 50;
const ROUNDS: usize = 3;

#[test]
fn fifty_concurrent_adds_and_dels() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.16.0/22", "fd00:16::/64"], 1450);
    let net = "wrenconc";
    let conf = dirs.conf(net, "1.0.0");
    let pods: Vec<Netns> = (0..PODS).map(|_| Netns::new("wrc")).collect();
    for round in 0..ROUNDS {
        let results: Vec<Value> = std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (host, conf) = (&host, &conf);
                    s.spawn(move || {
                        Call::new(host, "ADD", &format!("r{round}p{i}"), &p.path()).run(conf)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect_ok().json())
                .collect()
        });
        let mut seen = BTreeSet::new();
        for r in &results {
            assert!(validate_result(r, "1.0.0").is_empty(), "{r}");
            for ip in r["ips"].as_array().expect("ips") {
                let a = ip["address"].as_str().expect("address").to_string();
                assert!(
                    seen.insert(a.clone()),
                    "round {round}: duplicate address {a}"
                );
            }
        }
        assert_eq!(seen.len(), 2 * PODS);
        assert_eq!(links_with_prefix(&host, "cali").len(), PODS);
        assert_eq!(dirs.allocations(net).len(), 2 * PODS);
        // Spot-check the data path between two of them.
        let dst = results[PODS - 1]["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let (ok, out) = pods[0].exec(&["ping", "-c1", "-W2", &dst]);
        assert!(ok, "round {round}: {out}");

        std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (host, conf) = (&host, &conf);
                    let prev = &results[i];
                    s.spawn(move || {
                        Call::new(host, "DEL", &format!("r{round}p{i}"), &p.path())
                            .run(&with_prev(conf, prev))
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("thread").expect_ok();
            }
        });
        assert!(
            links_with_prefix(&host, "cali").is_empty(),
            "round {round}: veths left"
        );
        let routes = host.ip(&["route"]) + &host.ip(&["-6", "route"]);
        assert!(
            !routes.contains("10.244.") && !routes.contains("fd00:16:"),
            "round {round}: routes left: {routes}"
        );
        assert!(
            dirs.allocations(net).is_empty(),
            "round {round}: IPAM files left: {:?}",
            dirs.allocations(net)
        );
        for p in &pods {
            assert!(
                !p.ip(&["link"]).contains("eth0"),
                "round {round}: pod interface left in {}",
                p.name
            );
        }
    }
}
