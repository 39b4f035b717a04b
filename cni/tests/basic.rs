//! ADD/CHECK/DEL through the real host-local IPAM in real network namespaces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use serde_json::{json, Value};

fn pod_ips(res: &Value) -> Vec<String> {
    res["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .map(|i| {
            i["address"]
                .as_str()
                .expect("address")
                .split('/')
                .next()
                .expect("ip")
                .to_string()
        })
        .collect()
}

#[test]
fn add_check_del_dual_stack_every_version() {
    skip_unless_root!();
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let host = host_ns();
        let dirs = Dirs::new(&["10.244.1.0/24", "fd00:10:244:1::/64"], 1400);
        let net = "wrentest";
        let conf = dirs.conf(net, version);
        let p1 = Netns::new("wrp");
        let p2 = Netns::new("wrp");
        let r1 = Call::new(&host, "ADD", "pod-a", &p1.path())
            .run(&conf)
            .expect_ok()
            .json();
        let r2 = Call::new(&host, "ADD", "pod-b", &p2.path())
            .run(&conf)
            .expect_ok()
            .json();
        for r in [&r1, &r2] {
            let problems = validate_result(r, version);
            assert!(problems.is_empty(), "{version}: {problems:?} in {r}");
            assert_eq!(r["interfaces"].as_array().map(Vec::len), Some(2));
            assert!(
                r["interfaces"][0].get("sandbox").is_none(),
                "host veth has no sandbox"
            );
            assert_eq!(r["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
            assert_eq!(r["interfaces"][1]["name"], "eth0");
            for ip in r["ips"].as_array().unwrap() {
                assert_eq!(ip["interface"], 1);
            }
            assert_eq!(pod_ips(r).len(), 2, "dual stack: {r}");
        }
        assert_eq!(r1["interfaces"][1]["sandbox"], p1.path());
        let host_veth = r1["interfaces"][0]["name"].as_str().unwrap().to_string();
        // Calico's naming: cali + sha1("test.pod-a")[:11].
        assert_eq!(
            host_veth,
            wren_cni::conf::host_veth_name_for_pod("test", "pod-a")
        );
        let ips1 = pod_ips(&r1);
        let ips2 = pod_ips(&r2);

        // Host side.
        let link = host.ip(&["-d", "link", "show", &host_veth]);
        assert!(
            link.contains("ee:ee:ee:ee:ee:ee") && link.contains("mtu 1400"),
            "{link}"
        );
        let routes = host.ip(&["route", "show", "dev", &host_veth]);
        assert!(
            routes.contains(&format!("{} scope link", ips1[0])),
            "{routes}"
        );
        let routes6 = host.ip(&["-6", "route", "show", "dev", &host_veth]);
        assert!(routes6.contains(&ips1[1]), "{routes6}");
        for (k, v) in [
            (format!("net.ipv4.conf.{host_veth}.proxy_arp"), "1"),
            (format!("net.ipv4.neigh.{host_veth}.proxy_delay"), "0"),
            (format!("net.ipv4.conf.{host_veth}.forwarding"), "1"),
            (format!("net.ipv6.conf.{host_veth}.proxy_ndp"), "1"),
            (format!("net.ipv6.conf.{host_veth}.accept_ra"), "0"),
        ] {
            let (_, out) = host.exec(&["sysctl", "-n", &k]);
            assert_eq!(out.trim(), v, "{k}");
        }
        // Pod side.
        let addrs = p1.ip(&["addr", "show", "eth0"]);
        assert!(
            addrs.contains(&format!("{}/32", ips1[0]))
                && addrs.contains(&format!("{}/128", ips1[1])),
            "{addrs}"
        );
        assert!(addrs.contains("mtu 1400"), "{addrs}");
        let proutes = p1.ip(&["route"]);
        assert!(
            proutes.contains("default via 169.254.1.1 dev eth0"),
            "{proutes}"
        );
        assert!(
            proutes.contains("169.254.1.1 dev eth0 scope link"),
            "{proutes}"
        );
        let proutes6 = p1.ip(&["-6", "route"]);
        assert!(
            proutes6.contains("default via fe80::ecee:eeff:feee:eeee dev eth0"),
            "{proutes6}"
        );
        let (_, dad) = p1.exec(&["sysctl", "-n", "net.ipv6.conf.eth0.accept_dad"]);
        assert_eq!(dad.trim(), "0");

        // Connectivity: pod to pod (both families), pod to host, host to pod.
        for (ns, dst) in [
            (&p1, &ips2[0]),
            (&p1, &ips2[1]),
            (&p2, &ips1[0]),
            (&p1, &HOST_IP.to_string()),
        ] {
            let (ok, out) = ns.exec(&["ping", "-c1", "-W2", dst]);
            assert!(ok, "{version}: ping {dst} from {}: {out}", ns.name);
        }
        let (ok, out) = host.exec(&["ping", "-c1", "-W2", &ips1[0]]);
        assert!(ok, "host to pod: {out}");

        // CHECK (0.4.0+): clean, then tampered.
        if version != "0.3.0" && version != "0.3.1" {
            Call::new(&host, "CHECK", "pod-a", &p1.path())
                .run(&with_prev(&conf, &r1))
                .expect_ok();
            host.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{host_veth}.proxy_arp=0"),
            ]);
            let bad = Call::new(&host, "CHECK", "pod-a", &p1.path()).run(&with_prev(&conf, &r1));
            assert_eq!(bad.err_code(), 104, "{}", bad.stdout);
            host.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{host_veth}.proxy_arp=1"),
            ]);
            p1.ip(&["route", "del", "default"]);
            let bad = Call::new(&host, "CHECK", "pod-a", &p1.path()).run(&with_prev(&conf, &r1));
            assert_eq!(bad.err_code(), 104, "{}", bad.stdout);
            assert!(bad.stdout.contains("0.0.0.0/0"), "{}", bad.stdout);
        } else {
            let r = Call::new(&host, "CHECK", "pod-a", &p1.path()).run(&with_prev(&conf, &r1));
            assert_eq!(r.err_code(), 1, "CHECK before 0.4.0 is incompatible");
        }

        // DEL both (with prevResult), twice.
        for (id, ns, r) in [("pod-a", &p1, &r1), ("pod-b", &p2, &r2)] {
            for _ in 0..2 {
                Call::new(&host, "DEL", id, &ns.path())
                    .run(&with_prev(&conf, r))
                    .expect_ok();
            }
        }
        assert!(
            links_with_prefix(&host, "cali").is_empty(),
            "veths left: {:?}",
            links_with_prefix(&host, "cali")
        );
        assert!(
            !host.ip(&["route"]).contains("10.244.1."),
            "host routes left"
        );
        assert!(
            !host.ip(&["-6", "route"]).contains("fd00:10:244:1:"),
            "IPv6 host routes left"
        );
        assert!(
            dirs.allocations(net).is_empty(),
            "IPAM files left: {:?}",
            dirs.allocations(net)
        );
        assert!(
            p1.ip(&["link"]).lines().all(|l| !l.contains("eth0")),
            "pod interface left"
        );
    }
}

#[test]
fn del_tolerates_missing_netns_and_prev_result() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.2.0/24"], 0);
    let conf = dirs.conf("wrendel", "1.0.0");
    let pod = Netns::new("wrp");
    let path = pod.path();
    Call::new(&host, "ADD", "pod-del", &path)
        .run(&conf)
        .expect_ok();
    assert_eq!(dirs.allocations("wrendel").len(), 1);
    drop(pod); // the runtime tore the sandbox down first
               // DEL without prevResult, with the netns path gone, and with no netns at all.
    Call::new(&host, "DEL", "pod-del", &path)
        .run(&conf)
        .expect_ok();
    Call::new(&host, "DEL", "pod-del", "")
        .run(&conf)
        .expect_ok();
    assert!(dirs.allocations("wrendel").is_empty());
    assert!(links_with_prefix(&host, "cali").is_empty());
    // DEL without node.json (agent gone): the allocation is still released.
    let pod = Netns::new("wrp");
    Call::new(&host, "ADD", "pod-del2", &pod.path())
        .run(&conf)
        .expect_ok();
    std::fs::remove_file(dirs.wren_dir().join("node.json")).unwrap();
    Call::new(&host, "DEL", "pod-del2", &pod.path())
        .run(&conf)
        .expect_ok();
    assert!(dirs.allocations("wrendel").is_empty());
    assert!(links_with_prefix(&host, "cali").is_empty());
    // ADD without node.json fails and names the file.
    let r = Call::new(&host, "ADD", "pod-del3", &pod.path()).run(&conf);
    assert_eq!(r.err_code(), 103);
    assert!(r.stdout.contains("node.json"), "{}", r.stdout);
}

#[test]
fn version_status_gc() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.3.0/24"], 0);
    let net = "wrengc";
    let conf = dirs.conf(net, "1.1.0");
    let v = Call::new(&host, "VERSION", "", "")
        .run(&json!({"cniVersion": "1.1.0"}))
        .expect_ok()
        .json();
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // STATUS: 50 until the agent's ready file is there.
    let st = Call::new(&host, "STATUS", "", "").run(&conf);
    assert_eq!(st.err_code(), 50);
    std::fs::write(
        dirs.wren_dir().join("ready"),
        r#"{"pid": 1, "since": "2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    Call::new(&host, "STATUS", "", "").run(&conf).expect_ok();
    // 1.1.0 config with Debian's host-local (speaks <= 1.0.0): retried as 1.0.0.
    let pods: Vec<Netns> = (0..3).map(|_| Netns::new("wrp")).collect();
    let mut ids = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        let id = format!("gc-{i}");
        let r = Call::new(&host, "ADD", &id, &p.path())
            .run(&conf)
            .expect_ok()
            .json();
        assert!(validate_result(&r, "1.1.0").is_empty());
        assert!(
            r["interfaces"][1]["mtu"].is_u64(),
            "1.1.0 results carry mtu"
        );
        ids.push(id);
    }
    assert_eq!(links_with_prefix(&host, "cali").len(), 3);
    // GC keeping only gc-1 (given under the old key name, which is accepted too).
    let mut gc = conf.clone();
    gc["cni.dev/attachments"] = json!([{"containerID": "gc-1", "ifname": "eth0"}]);
    Call::new(&host, "GC", "", "").run(&gc).expect_ok();
    let left = links_with_prefix(&host, "cali");
    assert_eq!(
        left,
        vec![wren_cni::conf::host_veth_name_for_pod("test", "gc-1")]
    );
    assert_eq!(dirs.allocations(net).len(), 1);
    // GC with an empty valid list removes everything.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    Call::new(&host, "GC", "", "").run(&gc).expect_ok();
    assert!(links_with_prefix(&host, "cali").is_empty());
    assert!(dirs.allocations(net).is_empty());
    // GC needs 1.1.0.
    let r = Call::new(&host, "GC", "", "").run(&dirs.conf(net, "1.0.0"));
    assert_eq!(r.err_code(), 1);
}

#[test]
fn config_errors_are_reported_as_cni_json() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.4.0/24"], 0);
    let pod = Netns::new("wrp");
    let mut conf = dirs.conf("wrenerr", "1.0.0");
    conf["wrenDir"] = json!("/tmp");
    let r = Call::new(&host, "ADD", "e1", &pod.path()).run(&conf);
    assert_eq!(r.err_code(), 7);
    assert!(r.stdout.contains("wren_dir"), "{}", r.stdout);
    let mut conf = dirs.conf("wrenerr", "1.0.0");
    conf["ipam"]["type"] = json!("no-such-ipam");
    assert_eq!(
        Call::new(&host, "ADD", "e1", &pod.path())
            .run(&conf)
            .err_code(),
        7
    );
    // The plugin's own namespace is refused (like libcni's skel).
    let conf = dirs.conf("wrenerr", "1.0.0");
    let r = Call::new(&host, "ADD", "e1", &host.path()).run(&conf);
    assert_eq!(r.err_code(), 4, "{}", r.stdout);
    // Unknown keys from runtimes and other plugins are accepted.
    let mut conf = dirs.conf("wrenerr", "1.0.0");
    conf["runtimeConfig"] = json!({"portMappings": []});
    conf["args"] = json!({"cni": {}});
    conf["policy"] = json!({"type": "k8s"});
    let r = Call::new(&host, "ADD", "e2", &pod.path())
        .run(&conf)
        .expect_ok();
    assert!(r.stderr.is_empty() || !r.stdout.is_empty());
    Call::new(&host, "DEL", "e2", &pod.path())
        .run(&conf)
        .expect_ok();
}

#[test]
fn synchronous_teardown_is_the_default() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.12.0/24"], 0);
    let net = "wrensync";
    let conf = dirs.conf(net, "1.0.0");
    let pod = Netns::new("wrp");
    for _ in 0..3 {
        let r = Call::new(&host, "ADD", "sy1", &pod.path())
            .run(&conf)
            .expect_ok()
            .json();
        let host_veth = r["interfaces"][0]["name"].as_str().unwrap().to_string();
        // Whatever DEL leaves running dies with it (a runtime killing the plugin's
        // cgroup): nothing may depend on it.
        Call::new(&host, "DEL", "sy1", &pod.path())
            .run_killing_leftovers(&conf)
            .expect_ok();
        // Everything is gone when DEL returns (checked at once, before a deferred
        // helper could have deleted anything).
        assert!(!has_link(&pod, "eth0"), "eth0 survived DEL");
        assert!(!has_link(&host, &host_veth), "{host_veth} survived DEL");
        assert!(!host.ip(&["route"]).contains("10.244.12."));
        assert!(dirs.allocations(net).is_empty());
    }
}

#[test]
fn del_leaves_other_attachments_alone() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.13.0/24"], 0);
    let net = "wrenown";
    let conf = dirs.conf(net, "1.0.0");
    // A pod whose eth0 was made by someone else: ADD fails (105) and the runtime's
    // DEL that follows must not delete that eth0.
    let pod = Netns::new("wrp");
    pod.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "x0"]);
    let r = Call::new(&host, "ADD", "own1", &pod.path()).run(&conf);
    assert_eq!(r.err_code(), 105, "{}", r.stdout);
    Call::new(&host, "DEL", "own1", &pod.path())
        .run(&conf)
        .expect_ok();
    assert!(
        pod.ip(&["link"]).contains("eth0"),
        "DEL deleted an eth0 it did not create"
    );
    // A host interface with the attachment's veth name but no alias that is not the
    // peer of CNI_IFNAME in CNI_NETNS (here: not a veth at all, and no netns given).
    let name = wren_cni::conf::host_veth_name_for_pod("test", "own2");
    host.ip(&["link", "add", &name, "type", "bridge"]);
    Call::new(&host, "DEL", "own2", "").run(&conf).expect_ok();
    assert!(
        has_link(&host, &name),
        "DEL deleted {name}, which is not its veth"
    );
    host.ip(&["link", "del", &name]);
    // Two sandboxes of the same pod (same host veth name): the old sandbox's DEL,
    // arriving after the new sandbox's ADD, leaves the new pair alone.
    let old = Netns::new("wrp");
    let new = Netns::new("wrp");
    let mut add_old = Call::new(&host, "ADD", "sandbox-old", &old.path());
    add_old.args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME=web-0".into();
    add_old.run(&conf).expect_ok();
    let mut add_new = Call::new(&host, "ADD", "sandbox-new", &new.path());
    add_new.args = add_old.args.clone();
    let r = add_new.run(&conf).expect_ok().json();
    let mut del_old = add_old.clone();
    del_old.cmd = "DEL";
    del_old.run(&conf).expect_ok();
    assert!(
        new.ip(&["link"]).contains("eth0"),
        "the old sandbox's DEL deleted the new sandbox's eth0"
    );
    let (ok, out) = new.exec(&["ping", "-c1", "-W2", HOST_IP]);
    assert!(ok, "new sandbox lost connectivity: {out}");
    let mut del_new = add_new.clone();
    del_new.cmd = "DEL";
    del_new.run(&with_prev(&conf, &r)).expect_ok();
    assert!(links_with_prefix(&host, "cali").is_empty());
    assert!(dirs.allocations(net).is_empty());
}

/// The host veth name depends on the pod only, so a second wren attachment of the
/// same pod (another network, another CNI_IFNAME) must fail, not replace the first.
#[test]
fn second_wren_attachment_of_a_pod_is_refused_not_clobbered() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.14.0/24"], 0);
    let conf_a = dirs.conf("wrenna", "1.0.0");
    let conf_b = dirs.conf("wrennb", "1.0.0");
    let pod = Netns::new("wrp");
    let ra = Call::new(&host, "ADD", "mn1", &pod.path())
        .run(&conf_a)
        .expect_ok()
        .json();
    let mut b = Call::new(&host, "ADD", "mn1", &pod.path());
    b.ifname = "net1".into();
    let r = b.run(&conf_b);
    assert_eq!(r.err_code(), 105, "{}", r.stdout);
    assert!(r.stdout.contains("wrenna"), "{}", r.stdout);
    assert!(dirs.allocations("wrennb").is_empty());
    // The runtime's DEL after the failed ADD leaves the first attachment alone.
    b.cmd = "DEL";
    b.run(&conf_b).expect_ok();
    assert!(has_link(&pod, "eth0"), "the first attachment was replaced");
    let (ok, out) = pod.exec(&["ping", "-c1", "-W2", HOST_IP]);
    assert!(ok, "{out}");
    Call::new(&host, "DEL", "mn1", &pod.path())
        .run(&with_prev(&conf_a, &ra))
        .expect_ok();
    assert!(links_with_prefix(&host, "cali").is_empty());
    assert!(dirs.allocations("wrenna").is_empty());
}

/// Without K8S_POD_* the host veth name comes from the container id; ids that share
/// their first characters (ctr's `<namespace>-<id>`) must not share a veth.
#[test]
fn containers_without_pod_args_get_distinct_veths() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.17.0/24"], 0);
    let conf = dirs.conf("wrenids", "1.0.0");
    let (p1, p2) = (Netns::new("wrp"), Netns::new("wrp"));
    let mut a = Call::new(&host, "ADD", "default-app1", &p1.path());
    a.args = String::new();
    let mut b = Call::new(&host, "ADD", "default-app2", &p2.path());
    b.args = String::new();
    let ra = a.run(&conf).expect_ok().json();
    let rb = b.run(&conf).expect_ok().json();
    assert_ne!(ra["interfaces"][0]["name"], rb["interfaces"][0]["name"]);
    assert_eq!(links_with_prefix(&host, "cali").len(), 2);
    for p in [&p1, &p2] {
        let (ok, out) = p.exec(&["ping", "-c1", "-W2", HOST_IP]);
        assert!(ok, "{}: {out}", p.name);
    }
    for mut c in [a, b] {
        c.cmd = "DEL";
        c.run(&conf).expect_ok();
    }
    assert!(links_with_prefix(&host, "cali").is_empty());
    assert!(dirs.allocations("wrenids").is_empty());
}

#[test]
fn deferred_teardown_opt_in_and_sweep() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["10.244.11.0/24"], 0);
    let net = "wrentd";
    let mut conf = dirs.conf(net, "1.0.0");
    conf["deferred_teardown"] = json!(true);
    let pod = Netns::new("wrp");
    // Host routes and the allocation are gone when DEL returns; a re-ADD into the
    // same namespace right away works (the marked leftover is removed), and the old
    // pair disappears.
    for _ in 0..3 {
        let r = Call::new(&host, "ADD", "td1", &pod.path())
            .run(&conf)
            .expect_ok()
            .json();
        let ip = r["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        Call::new(&host, "DEL", "td1", &pod.path())
            .run(&conf)
            .expect_ok();
        assert!(
            !host.ip(&["route"]).contains(&ip),
            "host route survived DEL"
        );
        assert!(dirs.allocations(net).is_empty());
    }
    let r = Call::new(&host, "ADD", "td1", &pod.path())
        .run(&conf)
        .expect_ok()
        .json();
    let (ok, out) = pod.exec(&["ping", "-c1", "-W2", HOST_IP]);
    assert!(ok, "{out}");
    Call::new(&host, "DEL", "td1", &pod.path())
        .run(&with_prev(&conf, &r))
        .expect_ok();
    assert!(wait_until(10, || links_with_prefix(&host, "cali").is_empty()));
    assert!(wait_until(10, || !pod.ip(&["link"]).contains("eth0")));

    // A helper that never ran (killed with the runtime's cgroup before it reached
    // the kernel) leaves the marked pair while the namespace lives: the reason this
    // mode is opt-in. A repeated DEL for the attachment deletes it...
    let again_pod = Netns::new("wrp");
    let again = wren_cni::conf::host_veth_name_for_pod("test", "td-again");
    host.ip(&[
        "link",
        "add",
        &again,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &again_pod.name,
    ]);
    let m = wren_cni::plugin::teardown_mark(1, net, "td-again", "eth0");
    host.ip(&["link", "set", &again, "alias", &m]);
    Call::new(&host, "DEL", "td-again", &again_pod.path())
        .run(&conf)
        .expect_ok();
    assert!(
        !has_link(&host, &again),
        "repeated DEL left the marked veth"
    );
    assert!(!has_link(&again_pod, "eth0"));

    // ... and so do the next ADD of the network (for a mark older than SWEEP_AFTER)
    // and GC.
    let stale_pod = Netns::new("wrp");
    let stale = wren_cni::conf::host_veth_name_for_pod("test", "td-stale");
    host.ip(&[
        "link",
        "add",
        &stale,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &stale_pod.name,
    ]);
    let old = wren_cni::plugin::teardown_mark(1, net, "td-stale", "eth0");
    host.ip(&["link", "set", &stale, "alias", &old]);
    // A fresh mark (helper presumably still running) is not swept by ADD...
    let fresh_pod = Netns::new("wrp");
    let fresh = wren_cni::conf::host_veth_name_for_pod("test", "td-fresh");
    host.ip(&[
        "link",
        "add",
        &fresh,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &fresh_pod.name,
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let young = wren_cni::plugin::teardown_mark(now, net, "td-fresh", "eth0");
    host.ip(&["link", "set", &fresh, "alias", &young]);
    // ... a mark of another network neither.
    let other = wren_cni::conf::host_veth_name_for_pod("test", "td-other");
    host.ip(&["link", "add", &other, "type", "veth", "peer", "name", "x1"]);
    let other_mark = wren_cni::plugin::teardown_mark(1, "othernet", "td-other", "eth0");
    host.ip(&["link", "set", &other, "alias", &other_mark]);
    // The next ADD of any pod of the network sweeps the stale one.
    let p2 = Netns::new("wrp");
    Call::new(&host, "ADD", "td2", &p2.path())
        .run(&conf)
        .expect_ok();
    let left = links_with_prefix(&host, "cali");
    assert!(!left.contains(&stale), "stale leftover not swept: {left:?}");
    assert!(left.contains(&fresh), "a fresh mark was swept: {left:?}");
    assert!(left.contains(&other), "another network's mark was swept");
    assert!(
        !stale_pod.ip(&["link"]).contains("eth0"),
        "the pod end went with it"
    );
    // GC sweeps every mark of the network, whatever its age, and keeps valid ones.
    let mut gc = conf.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "td2", "ifname": "eth0"}]);
    Call::new(&host, "GC", "", "").run(&gc).expect_ok();
    let left = links_with_prefix(&host, "cali");
    assert!(!left.contains(&fresh), "GC left a marked veth: {left:?}");
    assert!(left.contains(&other));
    assert_eq!(left.len(), 2, "{left:?}");
    host.ip(&["link", "del", &other]);
    Call::new(&host, "DEL", "td2", &p2.path())
        .run(&conf)
        .expect_ok();
    // Deferred: the helper deletes the pair shortly after DEL returned.
    assert!(wait_until(10, || links_with_prefix(&host, "cali").is_empty()));
    assert!(dirs.allocations(net).is_empty());
}

/// The teardown helper mode needs its own environment: a runtime's call that happens
/// to carry WREN_TEARDOWN_* is still a CNI call.
#[test]
fn teardown_variables_do_not_hijack_a_cni_call() {
    use std::io::Write;
    let mut child = std::process::Command::new(wren_bin())
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .env("WREN_TEARDOWN_IFINDEX", "1")
        .env("WREN_TEARDOWN_IFNAME", "lo")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"cniVersion":"1.0.0"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cniVersion"], "1.0.0");
}

/// The result checker used above must be able to fail.
#[test]
fn result_checker_rejects_bad_results() {
    let good = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "cali1", "mac": "ee:ee:ee:ee:ee:ee"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [{"address": "10.0.0.2/32", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}], "dns": {}});
    assert!(validate_result(&good, "1.0.0").is_empty());
    let mut old = good.clone();
    old["cniVersion"] = json!("0.4.0");
    assert!(
        !validate_result(&old, "0.4.0").is_empty(),
        "0.4.0 needs ips[].version"
    );
    old["ips"][0]["version"] = json!("4");
    assert!(validate_result(&old, "0.4.0").is_empty());
    old["ips"][0]["version"] = json!("6");
    assert!(!validate_result(&old, "0.4.0").is_empty(), "wrong family");
    for (path, bad) in [
        ("/ips/0/address", json!("10.0.0.2")),
        ("/ips/0/interface", json!(2)),
        ("/interfaces/0/mac", json!("ee:ee")),
        ("/routes/0/dst", json!(7)),
        ("/routes/0/gw", json!("not-an-ip")),
        ("/dns", json!([])),
        ("/cniVersion", json!("0.3.1")),
    ] {
        let mut v = good.clone();
        *v.pointer_mut(path).unwrap() = bad;
        assert!(
            !validate_result(&v, "1.0.0").is_empty(),
            "{path} not caught"
        );
    }
    let mut v = good.clone();
    v["interfaces"][0]["mtu"] = json!(1500);
    assert!(
        !validate_result(&v, "1.0.0").is_empty(),
        "mtu is a 1.1.0 field"
    );
    assert!(validate_result(
        &{
            let mut x = v.clone();
            x["cniVersion"] = json!("1.1.0");
            x
        },
        "1.1.0"
    )
    .is_empty());
}

#[test]
fn ipv6_only_pod() {
    skip_unless_root!();
    let host = host_ns();
    let dirs = Dirs::new(&["fd00:30::/64"], 0);
    let conf = dirs.conf("wren6", "1.0.0");
    let p1 = Netns::new("wrp");
    let p2 = Netns::new("wrp");
    let r1 = Call::new(&host, "ADD", "six-a", &p1.path())
        .run(&conf)
        .expect_ok()
        .json();
    let r2 = Call::new(&host, "ADD", "six-b", &p2.path())
        .run(&conf)
        .expect_ok()
        .json();
    assert!(validate_result(&r1, "1.0.0").is_empty(), "{r1}");
    assert_eq!(
        r1["routes"],
        json!([{"dst": "::/0", "gw": "fe80::ecee:eeff:feee:eeee"}])
    );
    assert!(
        !p1.ip(&["route"]).contains("169.254.1.1"),
        "no IPv4 routes for an IPv6-only pod"
    );
    let ip2 = pod_ips(&r2)[0].clone();
    for dst in [ip2.as_str(), "fd99::1"] {
        let (ok, out) = p1.exec(&["ping", "-6", "-c1", "-W2", dst]);
        assert!(ok, "ping {dst}: {out}");
    }
    Call::new(&host, "CHECK", "six-a", &p1.path())
        .run(&with_prev(&conf, &r1))
        .expect_ok();
    for (id, p) in [("six-a", &p1), ("six-b", &p2)] {
        Call::new(&host, "DEL", id, &p.path())
            .run(&conf)
            .expect_ok();
    }
    assert!(
        !host.ip(&["-6", "route"]).contains("fd00:30:"),
        "IPv6 host routes left"
    );
    assert!(dirs.allocations("wren6").is_empty());
    assert!(links_with_prefix(&host, "cali").is_empty());
}
