//! The local backend: addressing and forwarding across a router, teardown that leaves
//! nothing, cleanup of a crashed run with `down --stale`, and pods through a CNI plugin.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wren_testbed::state::{self, leftovers, list_labs};
use wren_testbed::{skip_reason, wait_until, Lab, Topology};

fn topo(name: &str) -> Topology {
    Topology::from_file(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("topologies")
            .join(name),
    )
    .unwrap()
}

#[test]
fn two_subnets_forward_through_router_without_pod_routes() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    let lab = Lab::up(&topo("two-subnets.clab.yml")).unwrap();
    // n1 (subnet A) reaches n3 and n4 (subnet B) through the router.
    for dst in ["10.0.2.3", "10.0.2.4", "10.0.1.2"] {
        let out = lab
            .exec_text("n1", &["ping", "-c", "1", "-W", "2", dst])
            .unwrap();
        assert!(out.contains("1 received"), "{dst}: {out}");
    }
    // The router knows no pod routes: pod CIDRs are unreachable there.
    let r = lab.kernel_routes("router").unwrap();
    assert!(r.iter().any(|r| r.dst == "10.244.0.0/16"), "{r:?}");
    let out = lab.exec_text("router", &["ip", "route", "get", "10.244.3.5"]);
    assert!(out.is_err(), "router must not route pod addresses: {out:?}");
    // wren.forwarding: "false" on the reflector, on elsewhere.
    let f = |n: &str| {
        lab.exec_text(n, &["sysctl", "-n", "net.ipv4.ip_forward"])
            .unwrap()
    };
    assert_eq!(f("rr1").trim(), "0");
    assert_eq!(f("router").trim(), "1");
    let st = lab.state();
    assert_eq!(st.namespaces.len(), 8);
    assert_eq!(st.links.len(), 7);
    lab.down().unwrap();
    assert_eq!(leftovers(&st), Vec::<String>::new());
}

#[test]
fn leftovers_sees_an_escaped_process_and_teardown_removes_it() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    let t = Topology::parse(
        "name: esc\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n",
        "inline",
        Path::new("."),
    )
    .unwrap();
    let lab = Lab::up(&t).unwrap();
    let p = lab
        .spawn(
            "a",
            "sleeper",
            &["sleep".to_string(), "300".to_string()],
            &[],
        )
        .unwrap();
    let pid = p.detach(); // as if a test forgot it
    let st = lab.state();
    let before = leftovers(&st);
    assert!(
        before.iter().any(|l| l.contains(&format!("process {pid}"))),
        "{before:#?}"
    );
    assert!(
        before.iter().any(|l| l.starts_with("namespace ")),
        "{before:#?}"
    );
    lab.down().unwrap();
    // The sleeper was our child: it is a zombie until reaped, which `leftovers` ignores.
    let after = leftovers(&st);
    assert!(after.is_empty(), "{after:#?}");
}

#[test]
fn down_stale_removes_a_crashed_run() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_wren-testbed");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/rr-interop.clab.yml");
    let mut child = Command::new(bin)
        .args(["up", "--no-roles", "--no-pods"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let owner = child.id();
    let mut found = None;
    let r = wait_until("the child's lab to be up", Duration::from_secs(60), || {
        found = list_labs()
            .into_iter()
            .find(|l| l.owner_pid == owner && l.links.len() == 5);
        if let Ok(Some(s)) = child.try_wait() {
            return Err(wren_testbed::Error::Usage(format!("up exited early: {s}")));
        }
        Ok(found.is_some())
    });
    if let Err(e) = r {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{e}");
    }
    let st = found.unwrap();
    assert!(st.owner_alive());
    // Crash it: SIGKILL leaves namespaces and the state record behind.
    child.kill().unwrap();
    child.wait().unwrap();
    let st_now = list_labs()
        .into_iter()
        .find(|l| l.prefix == st.prefix)
        .unwrap();
    assert!(!st_now.owner_alive());
    assert!(!leftovers(&st_now).is_empty());
    let out = Command::new(bin)
        .args(["down", "--stale"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&st.prefix), "{text}");
    assert_eq!(leftovers(&st_now), Vec::<String>::new());
}

fn cni_dir() -> Option<PathBuf> {
    let d = PathBuf::from("/usr/lib/cni");
    (d.join("ptp").exists() && d.join("host-local").exists()).then_some(d)
}

#[test]
fn pods_through_the_ptp_plugin_reach_each_other() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    let Some(cni) = cni_dir() else {
        eprintln!("skipping: /usr/lib/cni/ptp not installed (containernetworking-plugins)");
        return;
    };
    let t = Topology::parse(
        r#"
name: pods
topology:
  nodes:
    n1: {kind: linux, exec: ["ip addr add 10.1.0.1/24 dev eth1", "ip route add 10.244.2.0/24 via 10.1.0.2"]}
    n2: {kind: linux, exec: ["ip addr add 10.1.0.2/24 dev eth1", "ip route add 10.244.1.0/24 via 10.1.0.1"]}
  links:
    - endpoints: [n1:eth1, n2:eth1]
"#,
        "inline",
        Path::new("."),
    )
    .unwrap();
    let lab = Lab::up(&t).unwrap();
    let conf = |subnet: &str| {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "wren-test-ptp",
            "plugins": [{
                "type": "ptp",
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "dataDir": lab.dir().join("ipam").display().to_string(),
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            }]
        })
    };
    let p1 = lab
        .add_pod(
            "n1",
            "a",
            &conf("10.244.1.0/24"),
            std::slice::from_ref(&cni),
        )
        .unwrap();
    let p2 = lab
        .add_pod(
            "n1",
            "b",
            &conf("10.244.1.0/24"),
            std::slice::from_ref(&cni),
        )
        .unwrap();
    let p3 = lab
        .add_pod(
            "n2",
            "c",
            &conf("10.244.2.0/24"),
            std::slice::from_ref(&cni),
        )
        .unwrap();
    for p in [&p1, &p2, &p3] {
        assert_eq!(p.ips.len(), 1, "{:?}", p.result);
    }
    assert_ne!(p1.ips, p2.ips);
    assert!(
        p3.ips[0].to_string().starts_with("10.244.2."),
        "{:?}",
        p3.ips
    );
    let m = lab.ping_matrix(2).unwrap();
    println!("{m}");
    assert_eq!(m.results.len(), 6);
    assert!(m.all_ok(), "{m}");
    // DEL through the plugin removes the pod's veth from the node.
    let veths_before = lab
        .exec_text("n1", &["ip", "-o", "link", "show", "type", "veth"])
        .unwrap();
    lab.del_pod("n1", "b").unwrap();
    let veths_after = lab
        .exec_text("n1", &["ip", "-o", "link", "show", "type", "veth"])
        .unwrap();
    assert_eq!(
        veths_after.lines().count() + 1,
        veths_before.lines().count(),
        "{veths_after}"
    );
    assert_eq!(lab.pods().len(), 2);
    let st = lab.state();
    lab.down().unwrap();
    assert_eq!(leftovers(&st), Vec::<String>::new());
    assert!(state::netns_with_prefix(&st.prefix).is_empty());
}

#[test]
fn cli_up_detach_pods_ping_matrix_down() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    if cni_dir().is_none() {
        eprintln!("skipping: /usr/lib/cni/ptp not installed (containernetworking-plugins)");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_wren-testbed");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/pods-ptp.clab.yml");
    let out = Command::new(bin)
        .args(["up", "--detach"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = text
        .lines()
        .find_map(|l| l.strip_prefix("detached; remove with: wren-testbed down --lab "))
        .unwrap()
        .trim()
        .to_string();
    let st = list_labs()
        .into_iter()
        .find(|l| l.prefix == prefix)
        .unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(bin).args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, m) = run(&["ping-matrix", "--lab", &prefix, "--count", "2"]);
    let (ok_exec, e) = run(&[
        "exec", "--lab", &prefix, "n1", "--", "ip", "-o", "addr", "show", "eth1",
    ]);
    let (_, status) = run(&["status", "--lab", &prefix]);
    let (down_ok, d) = run(&["down", "--lab", &prefix]);
    println!("{m}\n{status}");
    assert!(ok, "{m}");
    assert_eq!(m.lines().filter(|l| l.contains(" 0%")).count(), 6, "{m}");
    assert!(ok_exec && e.contains("10.1.0.1/24"), "{e}");
    assert!(
        status.contains("n1.a") && status.contains("10.244.1."),
        "{status}"
    );
    assert!(down_ok, "{d}");
    assert_eq!(leftovers(&st), Vec::<String>::new());
}

#[test]
fn process_role_runs_in_the_node_and_captures_output() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return;
    }
    let t = Topology::parse(
        "name: proc\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - endpoints: [a:eth7, b:eth1]\n",
        "inline",
        Path::new("."),
    )
    .unwrap();
    let lab = Lab::up(&t).unwrap();
    let argv: Vec<String> = [
        "sh",
        "-c",
        "echo hello $GREETING; ip -o link show eth7; exec sleep 300",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut p = lab
        .spawn("a", "probe", &argv, &[("GREETING".into(), "world".into())])
        .unwrap();
    wait_until("probe output", Duration::from_secs(10), || {
        Ok(p.log().contains("hello world") && p.log().contains("eth7"))
    })
    .unwrap();
    assert!(p.is_running());
    assert!(p.log_path().starts_with(lab.dir()));
    let status = p.stop(Duration::from_secs(5)).unwrap();
    assert!(!status.success(), "killed by SIGTERM: {status:?}");
    assert!(!p.is_running());
    let st = lab.state();
    assert!(st
        .processes
        .iter()
        .any(|x| x.name == "probe" && x.node == "a"));
    lab.down().unwrap();
    assert_eq!(leftovers(&st), Vec::<String>::new());
}
