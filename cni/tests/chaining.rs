//! wren chained with the reference `portmap` and `bandwidth` plugins.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use nix::sched::{setns, CloneFlags};
use serde_json::{json, Value};

fn enter(ns: &str) {
    let f = std::fs::File::open(ns).expect("open netns");
    setns(&f, CloneFlags::CLONE_NEWNET).expect("setns");
}

fn plugin_conf(t: &str, extra: Value, prev: &Value) -> Value {
    let mut c = json!({"cniVersion": "1.0.0", "name": "wrenchain", "type": t});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c["prevResult"] = prev.clone();
    c
}

#[test]
fn portmap_and_bandwidth_chain() {
    skip_unless_root!();
    if !std::path::Path::new("/usr/lib/cni/portmap").exists()
        || !try_sh(&["iptables", "--version"]).0
    {
        eprintln!("skipping: portmap or iptables missing");
        return;
    }
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.9.0/24"], 0);
    let wren_conf = dirs.conf("wrenchain", "1.0.0");
    let pod = Netns::new("wrp");
    let id = "chain1";

    let r1 = Call::new(&host, "ADD", id, &pod.path())
        .run(&wren_conf)
        .expect_ok()
        .json();
    let mut pm = Call::new(&host, "ADD", id, &pod.path());
    pm.bin = PathBuf::from("/usr/lib/cni/portmap");
    let pm_extra = json!({
        "snat": true,
        "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]},
    });
    let r2 = pm
        .run(&plugin_conf("portmap", pm_extra.clone(), &r1))
        .expect_ok()
        .json();
    let mut bw = Call::new(&host, "ADD", id, &pod.path());
    bw.bin = PathBuf::from("/usr/lib/cni/bandwidth");
    let bw_extra = json!({
        "runtimeConfig": {"bandwidth": {"ingressRate": 8_000_000, "ingressBurst": 1_000_000, "egressRate": 8_000_000, "egressBurst": 1_000_000}},
    });
    let r3 = bw
        .run(&plugin_conf("bandwidth", bw_extra.clone(), &r2))
        .expect_ok()
        .json();
    assert!(validate_result(&r3, "1.0.0").is_empty(), "{r3}");
    let host_veth = r1["interfaces"][0]["name"].as_str().unwrap().to_string();

    // bandwidth: a tbf on the host veth and an IFB for egress.
    let qd = host.exec(&["tc", "qdisc", "show", "dev", &host_veth]).1;
    assert!(qd.contains("tbf"), "no tbf on {host_veth}: {qd}");
    assert!(
        !links_with_prefix(&host, "bwp").is_empty(),
        "no bandwidth IFB device"
    );

    // portmap: the host's own address:18080 reaches a listener in the pod on 8080.
    let (tx, rx) = std::sync::mpsc::channel();
    let pod_path = pod.path();
    let server = std::thread::spawn(move || {
        enter(&pod_path);
        let l = TcpListener::bind("0.0.0.0:8080").expect("bind in pod");
        tx.send(()).unwrap();
        let (mut s, peer) = l.accept().expect("accept");
        s.write_all(format!("hello from the pod to {peer}").as_bytes())
            .unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("listener ready");
    let host_path = host.path();
    let client = std::thread::spawn(move || {
        enter(&host_path);
        let addr: SocketAddr = format!("{HOST_IP}:18080").parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .expect("connect to the host port");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("read");
        buf
    });
    let got = client.join().expect("client");
    server.join().expect("server");
    assert!(got.starts_with("hello from the pod"), "{got}");

    // CHECK of the whole chain's final result against wren.
    Call::new(&host, "CHECK", id, &pod.path())
        .run(&with_prev(&wren_conf, &r3))
        .expect_ok();

    // DEL in reverse order.
    bw.cmd = "DEL";
    bw.run(&plugin_conf("bandwidth", bw_extra, &r3)).expect_ok();
    pm.cmd = "DEL";
    pm.run(&plugin_conf("portmap", pm_extra, &r3)).expect_ok();
    Call::new(&host, "DEL", id, &pod.path())
        .run(&with_prev(&wren_conf, &r3))
        .expect_ok();
    assert!(links_with_prefix(&host, "cali").is_empty());
    assert!(links_with_prefix(&host, "bwp").is_empty(), "IFB left");
    assert!(dirs.allocations("wrenchain").is_empty());
    let nat = host.exec(&["iptables", "-t", "nat", "-S"]).1;
    assert!(!nat.contains("18080"), "portmap rules left: {nat}");
}

#[test]
fn tuning_chain() {
    skip_unless_root!();
    if !std::path::Path::new("/usr/lib/cni/tuning").exists() {
        eprintln!("skipping: tuning plugin missing");
        return;
    }
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.10.0/24"], 0);
    let wren_conf = dirs.conf("wrenchain", "1.0.0");
    let pod = Netns::new("wrp");
    let r1 = Call::new(&host, "ADD", "tun1", &pod.path())
        .run(&wren_conf)
        .expect_ok()
        .json();
    let mut tu = Call::new(&host, "ADD", "tun1", &pod.path());
    tu.bin = PathBuf::from("/usr/lib/cni/tuning");
    let extra = json!({"sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}});
    let r2 = tu
        .run(&plugin_conf("tuning", extra.clone(), &r1))
        .expect_ok()
        .json();
    assert_eq!(r2["interfaces"], r1["interfaces"]);
    assert_eq!(
        pod.exec(&["sysctl", "-n", "net.ipv4.conf.eth0.rp_filter"])
            .1
            .trim(),
        "2"
    );
    tu.cmd = "DEL";
    tu.run(&plugin_conf("tuning", extra, &r2)).expect_ok();
    Call::new(&host, "DEL", "tun1", &pod.path())
        .run(&with_prev(&wren_conf, &r2))
        .expect_ok();
    assert!(links_with_prefix(&host, "cali").is_empty());
}
