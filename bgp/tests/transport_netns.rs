//! Transport tests across network namespaces (root only; skipped with a reason otherwise):
//!
//! * hop counting through a real router namespace: GTSM (RFC 5082) rejects a peer one hop
//!   too far on either side, multihop TTL 1 dies at the router and TTL 2 arrives;
//! * TCP MD5 (RFC 2385) interop with BIRD 2: BIRD connects to our listener and we connect
//!   to BIRD, with the right password (BGP OPEN bytes arrive) and a wrong one (nothing).
//!
//! Every test makes its own namespaces with unique names and removes them (and stops
//! BIRD) in `Drop`, even on failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::io::AsyncReadExt;
use wren_bgp::transport::{
    connect, sockopt, ConnectOptions, Listener, Md5Key, PeerSecurity, TransportError, TtlPolicy,
};

const FAIL_DEADLINE: Duration = Duration::from_secs(3);

fn skip_reason() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: network namespaces need CAP_SYS_ADMIN");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 `ip` not found");
    }
    None
}

macro_rules! require_root {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A set of namespaces removed on drop.
struct Lab {
    prefix: String,
    names: Vec<String>,
}

impl Lab {
    fn new() -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Lab {
            prefix: format!("wnet{}x{n}", std::process::id()),
            names: Vec::new(),
        }
    }

    fn ns(&mut self, role: &str) -> String {
        let name = format!("{}{role}", self.prefix);
        sh(&["ip", "netns", "add", &name]);
        self.names.push(name.clone());
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A veth pair between two namespaces with an address on each end.
    fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let (ea, eb) = (format!("wa{n}"), format!("wb{n}"));
        sh(&[
            "ip", "link", "add", &ea, "netns", a, "type", "veth", "peer", "name", &eb, "netns", b,
        ]);
        for (ns, dev, addr) in [(a, &ea, a_addr), (b, &eb, b_addr)] {
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `f` on a new thread inside namespace `ns` (sockets it creates stay there).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Binds a listener inside `ns`, registered with the calling runtime.
fn listener_in(ns: &str, addr: &str) -> Listener {
    let handle = tokio::runtime::Handle::current();
    let addr: SocketAddr = addr.parse().unwrap();
    in_netns(ns, move || {
        let _guard = handle.enter();
        Listener::bind(&[addr]).unwrap()
    })
}

/// Connects from inside `ns`; on success returns the first `want` bytes received (0: none).
async fn connect_from(
    ns: &str,
    opts: ConnectOptions,
    want: usize,
) -> Result<Vec<u8>, TransportError> {
    let ns = ns.to_owned();
    tokio::task::spawn_blocking(move || {
        in_netns(&ns, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut s = connect(&opts).await?;
                let mut buf = vec![0u8; want];
                tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
                    .await
                    .expect("no data from peer")
                    .unwrap();
                Ok(buf)
            })
        })
    })
    .await
    .unwrap()
}

fn opts(remote: &str, ttl: TtlPolicy, md5: Option<&str>) -> ConnectOptions {
    let mut o = ConnectOptions::new(remote.parse().unwrap());
    o.ttl = ttl;
    o.md5 = md5.map(|k| Md5Key::new(k).unwrap());
    o.connect_timeout = FAIL_DEADLINE;
    o
}

async fn expect_connect(l: &Listener, ns: &str, o: ConnectOptions) {
    let (c, a) = tokio::join!(connect_from(ns, o, 0), async {
        tokio::time::timeout(Duration::from_secs(10), l.accept()).await
    });
    c.unwrap();
    a.expect("accept timed out").unwrap();
}

async fn expect_no_connect(l: &Listener, ns: &str, o: ConnectOptions) {
    tokio::select! {
        r = connect_from(ns, o, 0) => match r {
            Err(TransportError::ConnectTimeout { .. }) => {}
            // The router's ICMP time exceeded (TTL ran out) fails the connect at once.
            Err(TransportError::Connect { source, .. })
                if source.kind() == std::io::ErrorKind::HostUnreachable => {}
            other => panic!("expected a connect timeout or host unreachable, got {other:?}"),
        },
        a = l.accept() => panic!("listener accepted a connection it should have dropped: {a:?}"),
    }
}

/// A (10.31.1.1) -- R (forwards) -- B (10.31.2.1): B sees A's packets one hop away.
fn routed_lab() -> (Lab, String, String) {
    let mut lab = Lab::new();
    let a = lab.ns("a");
    let r = lab.ns("r");
    let b = lab.ns("b");
    lab.link(&a, "10.31.1.1/24", &r, "10.31.1.2/24");
    lab.link(&r, "10.31.2.2/24", &b, "10.31.2.1/24");
    sh(&[
        "ip",
        "netns",
        "exec",
        &r,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    sh(&[
        "ip",
        "-n",
        &a,
        "route",
        "add",
        "default",
        "via",
        "10.31.1.2",
    ]);
    sh(&[
        "ip",
        "-n",
        &b,
        "route",
        "add",
        "default",
        "via",
        "10.31.2.2",
    ]);
    (lab, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtsm_counts_router_hops() {
    require_root!();
    let (_lab, a, b) = routed_lab();
    let l = listener_in(&b, "10.31.2.1:179");
    let peer: IpNet = "10.31.1.1/32".parse().unwrap();
    let remote = "10.31.2.1:179";

    // Both sides allow only directly connected peers: A's SYN arrives with TTL 254.
    l.set_peer(
        peer,
        PeerSecurity {
            md5: None,
            ttl: TtlPolicy::Security { hops: 1 },
        },
    )
    .unwrap();
    expect_no_connect(&l, &a, opts(remote, TtlPolicy::Security { hops: 1 }, None)).await;

    // B allows 2 hops but A still 1: B's SYN-ACK arrives at A with 254 and A drops it.
    l.set_peer(
        peer,
        PeerSecurity {
            md5: None,
            ttl: TtlPolicy::Security { hops: 2 },
        },
    )
    .unwrap();
    expect_no_connect(&l, &a, opts(remote, TtlPolicy::Security { hops: 1 }, None)).await;

    // Both allow 2 hops.
    expect_connect(&l, &a, opts(remote, TtlPolicy::Security { hops: 2 }, None)).await;

    // An attacker-ish sender with TTL 254 arrives with 253 < 254.
    expect_no_connect(&l, &a, opts(remote, TtlPolicy::Ttl(254), None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtsm_v6_counts_router_hops() {
    require_root!();
    let mut lab = Lab::new();
    let a = lab.ns("a");
    let r = lab.ns("r");
    let b = lab.ns("b");
    lab.link(&a, "fd31:1::1/64", &r, "fd31:1::2/64");
    lab.link(&r, "fd31:2::2/64", &b, "fd31:2::1/64");
    sh(&[
        "ip",
        "netns",
        "exec",
        &r,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.forwarding=1",
    ]);
    sh(&[
        "ip",
        "-n",
        &a,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fd31:1::2",
    ]);
    sh(&[
        "ip",
        "-n",
        &b,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fd31:2::2",
    ]);
    // Wait for duplicate address detection to finish on every address.
    let deadline = Instant::now() + Duration::from_secs(10);
    for ns in [&a, &r, &b] {
        loop {
            let out = Command::new("ip")
                .args(["-n", ns, "-6", "addr"])
                .output()
                .unwrap();
            if !String::from_utf8_lossy(&out.stdout).contains("tentative") {
                break;
            }
            assert!(Instant::now() < deadline, "DAD did not finish in {ns}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let l = listener_in(&b, "[fd31:2::1]:179");
    let peer: IpNet = "fd31:1::1/128".parse().unwrap();
    let remote = "[fd31:2::1]:179";
    l.set_peer(
        peer,
        PeerSecurity {
            md5: None,
            ttl: TtlPolicy::Security { hops: 1 },
        },
    )
    .unwrap();
    expect_no_connect(&l, &a, opts(remote, TtlPolicy::Security { hops: 1 }, None)).await;
    l.set_peer(
        peer,
        PeerSecurity {
            md5: None,
            ttl: TtlPolicy::Security { hops: 2 },
        },
    )
    .unwrap();
    expect_connect(&l, &a, opts(remote, TtlPolicy::Security { hops: 2 }, None)).await;
    expect_no_connect(&l, &a, opts(remote, TtlPolicy::Ttl(200), None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multihop_ttl_counts_router_hops() {
    require_root!();
    let (_lab, a, b) = routed_lab();
    let l = listener_in(&b, "10.31.2.1:179");
    let peer: IpNet = "10.31.1.1/32".parse().unwrap();
    l.set_peer(
        peer,
        PeerSecurity {
            md5: None,
            ttl: TtlPolicy::Ttl(2),
        },
    )
    .unwrap();
    let remote = "10.31.2.1:179";
    // TTL 1 (eBGP direct) expires at the router.
    expect_no_connect(&l, &a, opts(remote, TtlPolicy::Ttl(1), None)).await;
    // TTL 2 (multihop 2) arrives.
    expect_connect(&l, &a, opts(remote, TtlPolicy::Ttl(2), None)).await;
    let lsock = l.socket(l.local_addrs()[0]).unwrap();
    assert_eq!(sockopt::min_ttl_v4(lsock.as_fd()).unwrap(), 0);
}

/// BIRD in its own namespace, stopped on drop.
struct Bird {
    child: Child,
    dir: tempfile::TempDir,
}

impl Bird {
    fn start(ns: &str, conf: &str) -> Bird {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("bird.conf");
        std::fs::write(&cfg, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("bird.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "bird", "-f", "-c"])
            .arg(&cfg)
            .arg("-s")
            .arg(dir.path().join("bird.ctl"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let bird = Bird { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = Command::new("birdc")
                .arg("-s")
                .arg(bird.dir.path().join("bird.ctl"))
                .args(["show", "status"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "BIRD did not start: {}",
                bird.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bird
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bird_available() -> bool {
    Command::new("bird").arg("--version").output().is_ok()
}

fn bird_conf(password: &str) -> String {
    format!(
        r#"log stderr all;
router id 10.32.0.2;
protocol device {{ }}
protocol bgp wren {{
  local 10.32.0.2 as 65002;
  neighbor 10.32.0.1 as 65001;
  password "{password}";
  connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 {{ import all; export all; }};
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_interop_with_bird() {
    require_root!();
    if !bird_available() {
        eprintln!("skipping: bird (Debian package bird2) is not installed");
        return;
    }
    let mut lab = Lab::new();
    let us = lab.ns("u");
    let them = lab.ns("t");
    lab.link(&us, "10.32.0.1/24", &them, "10.32.0.2/24");
    let bird = Bird::start(&them, &bird_conf("interop-secret"));
    let bird_peer: IpNet = "10.32.0.2/32".parse().unwrap();

    // 1. BIRD connects to our listener. A wrong key first: nothing is accepted while BIRD
    //    retries every second.
    let l = listener_in(&us, "10.32.0.1:179");
    l.set_peer(
        bird_peer,
        PeerSecurity {
            md5: Some(Md5Key::new("wrong").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    if let Ok(a) = tokio::time::timeout(FAIL_DEADLINE, l.accept()).await {
        panic!(
            "accepted BIRD with the wrong MD5 key: {a:?}\n{}",
            bird.log()
        );
    }
    // The right key: BIRD's connection is accepted and its OPEN (marker of 16 x 0xff) arrives.
    l.set_peer(
        bird_peer,
        PeerSecurity {
            md5: Some(Md5Key::new("interop-secret").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut a = tokio::time::timeout(Duration::from_secs(15), l.accept())
        .await
        .unwrap_or_else(|_| panic!("BIRD never connected with the right key\n{}", bird.log()))
        .unwrap();
    assert_eq!(a.peer.ip().to_string(), "10.32.0.2");
    let mut hdr = [0u8; 19];
    tokio::time::timeout(Duration::from_secs(10), a.stream.read_exact(&mut hdr))
        .await
        .expect("no OPEN from BIRD")
        .unwrap();
    assert_eq!(&hdr[..16], &[0xff; 16], "BGP marker");
    assert_eq!(hdr[18], 1, "OPEN");
    drop(a);
    drop(l);

    // 2. We connect to BIRD: the wrong key times out, the right one gets BIRD's OPEN.
    let remote = "10.32.0.2:179";
    let r = connect_from(&us, opts(remote, TtlPolicy::Ttl(1), Some("nope")), 0).await;
    assert!(
        matches!(r, Err(TransportError::ConnectTimeout { .. })),
        "{r:?}"
    );
    let mut o = opts(remote, TtlPolicy::Ttl(1), Some("interop-secret"));
    o.local = Some("10.32.0.1:0".parse().unwrap());
    o.connect_timeout = Duration::from_secs(5);
    let hdr = connect_from(&us, o, 19)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", bird.log()));
    assert_eq!(&hdr[..16], &[0xff; 16]);
    assert_eq!(hdr[18], 1, "OPEN");

    // 3. A listen-range key (TCP_MD5SIG_EXT with a prefix) also matches BIRD's signature.
    let l = listener_in(&us, "10.32.0.1:179");
    let range: IpNet = "10.32.0.0/24".parse().unwrap();
    l.set_peer(
        range,
        PeerSecurity {
            md5: Some(Md5Key::new("interop-secret").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let a = tokio::time::timeout(Duration::from_secs(15), l.accept())
        .await
        .unwrap_or_else(|_| panic!("BIRD never connected to the range key\n{}", bird.log()))
        .unwrap();
    assert_eq!(a.matched, Some(range));
}
