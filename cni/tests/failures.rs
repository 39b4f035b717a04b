//! Failure injection: every failed ADD leaves no veth, route, address or allocation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use serde_json::{json, Value};

fn assert_clean(host: &Netns, dirs: &Dirs, net: &str) {
    assert!(
        links_with_prefix(host, "cali").is_empty(),
        "veth left: {:?}",
        links_with_prefix(host, "cali")
    );
    let routes = host.ip(&["route"]);
    assert!(!routes.contains("10.244."), "host route left: {routes}");
    assert!(
        dirs.allocations(net).is_empty(),
        "allocation left: {:?}",
        dirs.allocations(net)
    );
}

fn conf_with_ipam(dirs: &Dirs, net: &str, ipam_type: &str) -> Value {
    let mut c = dirs.conf(net, "1.0.0");
    c["ipam"]["type"] = json!(ipam_type);
    c
}

#[test]
fn ipam_failure_rolls_back() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.5.0/24"], 0);
    let plugins = plugin_dir();
    write_script(
        plugins.path(),
        "fail-ipam",
        "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"pool exhausted, try later\"}'\nexit 1\n",
    );
    let path = format!("{}:{REF_PLUGINS}", plugins.path().display());
    let pod = Netns::new("wrp");
    let mut call = Call::new(&host, "ADD", "f1", &pod.path());
    call.path = path.clone();
    let r = call.run(&conf_with_ipam(&dirs, "wrenf1", "fail-ipam"));
    assert_eq!(r.err_code(), 11, "the IPAM plugin's code is passed through");
    assert!(r.stdout.contains("pool exhausted"), "{}", r.stdout);
    assert_clean(&host, &dirs, "wrenf1");
    assert!(!pod.ip(&["link"]).contains("eth0"), "pod interface left");

    // An IPAM plugin that dies without CNI JSON.
    write_script(
        plugins.path(),
        "crash-ipam",
        "#!/bin/sh\necho boom >&2\nexit 3\n",
    );
    let r = call.run(&conf_with_ipam(&dirs, "wrenf1", "crash-ipam"));
    assert_eq!(r.err_code(), 102);
    assert!(
        r.stdout.contains("boom"),
        "stderr of the IPAM plugin is reported: {}",
        r.stdout
    );
    assert_clean(&host, &dirs, "wrenf1");

    // An IPAM plugin that prints garbage: the allocation it may have made is released.
    write_script(
        plugins.path(),
        "junk-ipam",
        &format!("#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then {HOST_LOCAL} >/dev/null; echo '{{\"ips\":[{{\"address\":\"nonsense\"}}]}}'; else exec {HOST_LOCAL}; fi\n"),
    );
    let r = call.run(&conf_with_ipam(&dirs, "wrenf1", "junk-ipam"));
    assert_eq!(r.err_code(), 6);
    assert_clean(&host, &dirs, "wrenf1");
}

#[test]
fn late_failure_releases_the_allocation() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.6.0/24"], 0);
    // Another interface already routes the address host-local will hand out (.2).
    host.ip(&["route", "add", "10.244.6.2", "dev", "up0"]);
    let pod = Netns::new("wrp");
    let conf = dirs.conf("wrenf2", "1.0.0");
    let r = Call::new(&host, "ADD", "f2", &pod.path()).run(&conf);
    assert_eq!(r.err_code(), 101);
    assert!(r.stdout.contains("10.244.6.2"), "{}", r.stdout);
    assert!(links_with_prefix(&host, "cali").is_empty());
    assert!(
        dirs.allocations("wrenf2").is_empty(),
        "rollback released the IP"
    );
    assert!(!pod.ip(&["addr"]).contains("10.244.6.2"));
    host.ip(&["route", "del", "10.244.6.2", "dev", "up0"]);
    Call::new(&host, "ADD", "f2", &pod.path())
        .run(&conf)
        .expect_ok();
    Call::new(&host, "DEL", "f2", &pod.path())
        .run(&conf)
        .expect_ok();
    assert_clean(&host, &dirs, "wrenf2");
}

#[test]
fn netns_vanishing_mid_add() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.7.0/24"], 0);
    let plugins = plugin_dir();
    // Deletes the pod's netns while wren is wiring it, then allocates normally.
    write_script(
        plugins.path(),
        "vanish-ipam",
        &format!("#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then ip netns del \"$(basename \"$CNI_NETNS\")\"; fi\nexec {HOST_LOCAL}\n"),
    );
    let pod = Netns::new("wrp");
    let mut call = Call::new(&host, "ADD", "f3", &pod.path());
    call.path = format!("{}:{REF_PLUGINS}", plugins.path().display());
    let conf = conf_with_ipam(&dirs, "wrenf3", "vanish-ipam");
    let r = call.run(&conf);
    assert_eq!(r.err_code(), 100, "{}", r.stdout);
    assert!(r.stdout.contains("vanished"), "{}", r.stdout);
    assert_clean(&host, &dirs, "wrenf3");
    // The runtime's DEL afterwards succeeds.
    call.cmd = "DEL";
    call.run(&conf).expect_ok();

    // A netns that is already gone: error, nothing allocated.
    let gone = Netns::new("wrp");
    let path = gone.path();
    drop(gone);
    let r = Call::new(&host, "ADD", "f4", &path).run(&dirs.conf("wrenf3", "1.0.0"));
    assert_eq!(r.err_code(), 100);
    assert_clean(&host, &dirs, "wrenf3");
}

#[test]
fn existing_interfaces() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.8.0/24"], 0);
    let conf = dirs.conf("wrenf5", "1.0.0");
    // eth0 already exists in the pod: the spec says ADD must fail.
    let pod = Netns::new("wrp");
    pod.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "x0"]);
    let r = Call::new(&host, "ADD", "f5", &pod.path()).run(&conf);
    assert_eq!(r.err_code(), 105, "{}", r.stdout);
    assert_clean(&host, &dirs, "wrenf5");
    // A leftover host veth of an earlier sandbox of the same pod is replaced.
    let pod2 = Netns::new("wrp");
    let name = wren_cni::conf::host_veth_name_for_pod("test", "f6");
    host.ip(&[
        "link", "add", &name, "type", "veth", "peer", "name", "stale0",
    ]);
    let r = Call::new(&host, "ADD", "f6", &pod2.path())
        .run(&conf)
        .expect_ok()
        .json();
    assert_eq!(r["interfaces"][0]["name"], name.as_str());
    assert!(!host.ip(&["link"]).contains("stale0"));
    let (ok, out) = pod2.exec(&["ping", "-c1", "-W2", HOST_IP]);
    assert!(ok, "{out}");
    Call::new(&host, "DEL", "f6", &pod2.path())
        .run(&conf)
        .expect_ok();
    // DEL for an attachment that never existed succeeds.
    Call::new(&host, "DEL", "never", &pod2.path())
        .run(&conf)
        .expect_ok();
    assert_clean(&host, &dirs, "wrenf5");
}

/// CNI_NETNS naming a FIFO: refused at once (error 100), not a hang on open(2).
#[test]
fn netns_path_that_is_a_fifo() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.15.0/24"], 0);
    let fifo = dirs.tmp.path().join("netns-fifo");
    sh(&["mkfifo", fifo.to_str().unwrap()]);
    let conf = dirs.conf("wrenfifo", "1.0.0");
    let call = Call::new(&host, "ADD", "fifo1", fifo.to_str().unwrap());
    let (r, hung) = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let (call, conf) = (&call, &conf);
        s.spawn(move || {
            let _ = tx.send(call.run(conf));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(r) => (Some(r), false),
            Err(_) => {
                // Unblock the plugin (waiting for a writer) so the thread can end.
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
                (rx.recv().ok(), true)
            }
        }
    });
    assert!(!hung, "ADD hung on a FIFO given as CNI_NETNS");
    let r = r.expect("plugin result");
    assert_eq!(r.err_code(), 100, "{}", r.stdout);
    assert!(dirs.allocations("wrenfifo").is_empty());
}
