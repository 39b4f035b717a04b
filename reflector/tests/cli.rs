//! The `wren-reflector` binary: `--check` on the example and on broken files, and a run
//! with a status file, SIGHUP reload and SIGTERM shutdown (RFC 9003 message) against an
//! in-process speaker on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wren_bgp::config::SpeakerConfig;
use wren_bgp::speaker::{Speaker, SpeakerOptions, SpeakerStatus};

const BIN: &str = env!("CARGO_BIN_EXE_wren-reflector");

fn check(path: &Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(path)
        .arg("--check")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_example() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/reflector.toml");
    let (ok, stdout, stderr) = check(&example);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("config OK"), "{stdout}");
    assert!(stdout.contains("route reflector"), "{stdout}");
}

#[test]
fn check_rejects_broken_files_naming_the_field() {
    let base = "asn = 65000\nrouter_id = \"10.0.0.1\"\n";
    let peer = "[[neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65000\n";
    let cases: Vec<(String, &[&str])> = vec![
        (
            format!("{base}{peer}hold_time_secs = 2\n"),
            &["neighbor[0].hold_time_secs", "use 0 or >= 3"],
        ),
        (format!("{base}bogus = 1\n"), &["unknown field `bogus`"]),
        ("router_id = \"10.0.0.1\"\n".to_owned(), &["missing field `asn`"]),
        (
            format!(
                "{base}{peer}import_policy = [\"p\"]\n[[policy]]\nname = \"p\"\n\
                 [[policy.rule]]\nmatch.prefix = [{{ prefix = \"10.0.0.0/33\" }}]\naction = \"accept\"\n"
            ),
            &["policy.p.rule[0].match.prefix[0].prefix", "ADDRESS/LENGTH"],
        ),
        (
            format!("{base}{peer}import_policy = [\"p\"]\n[[policy]]\nname = \"p\"\nfoo = 1\n"),
            &["field policy.p", "unknown field `foo`"],
        ),
        (
            format!("{base}{peer}import_policy = [\"missing\"]\n"),
            &["missing"],
        ),
        (
            format!("{base}[[originate]]\nprefix = \"10.9.0.0/24\"\nnext_hop = \"2001:db8::1\"\n"),
            &["originate", "next_hop"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, wanted)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("broken{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let (ok, _, stderr) = check(&path);
        assert!(!ok, "case {i} must fail:\n{text}");
        for w in *wanted {
            assert!(stderr.contains(w), "case {i}: {w:?} not in {stderr:?}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (ok, _, stderr) = check(&dir.path().join("absent.toml"));
    assert!(!ok);
    assert!(stderr.contains("absent.toml"), "{stderr}");
}

struct Reflector(Child);

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read_status(path: &Path) -> Option<SpeakerStatus> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_reloads_and_shuts_down_with_rfc9003_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg_path = dir.path().join("rr.toml");
    let status_path = dir.path().join("status.json");
    let base = format!(
        "asn = 65000\nrouter_id = \"10.0.0.1\"\nroute_reflector = true\n\
         listen_addresses = [\"127.0.0.1\"]\nlisten_port = {port}\nhold_time_secs = 30\n\
         [[neighbor]]\naddress = \"127.0.0.3\"\nremote_asn = 65000\npassive = true\n\
         route_reflector_client = true\n\
         [[originate]]\nprefix = \"10.100.0.0/24\"\n"
    );
    std::fs::write(&cfg_path, &base).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg_path)
        .arg("--status-file")
        .arg(&status_path)
        .arg("--status-interval-ms")
        .arg("100")
        .arg("--log-format")
        .arg("json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rr = Reflector(child);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(rr.0.id()).unwrap());

    // The client: an in-process speaker on 127.0.0.3.
    let client_cfg = SpeakerConfig::from_toml_str(&format!(
        "asn = 65000\nrouter_id = \"10.0.0.3\"\nlisten = false\nhold_time_secs = 30\n\
         connect_retry_secs = 1\n\
         [[neighbor]]\naddress = \"127.0.0.1\"\nremote_asn = 65000\nport = {port}\n\
         local_address = \"127.0.0.3\"\n"
    ))
    .unwrap();
    let (client, client_task) = Speaker::start(client_cfg, SpeakerOptions::default()).unwrap();

    let st = poll("Established in the status file", || {
        read_status(&status_path)
            .filter(|s| s.peers.first().is_some_and(|p| p.state == "Established"))
    })
    .await;
    assert_eq!(st.asn, 65000);
    assert_eq!(st.cluster_id.as_deref(), Some("10.0.0.1"));
    let routes_at_client = |prefix: &'static str| {
        let c = client.clone();
        async move {
            c.status()
                .await
                .unwrap()
                .routes
                .iter()
                .any(|r| r.prefix == prefix)
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !routes_at_client("10.100.0.0/24").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "originated route at the client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGHUP: a new prefix to originate.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&cfg_path)
        .unwrap();
    writeln!(f, "[[originate]]\nprefix = \"10.101.0.0/24\"").unwrap();
    drop(f);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !routes_at_client("10.101.0.0/24").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reloaded route at the client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SIGTERM: RFC 9003 message to the client, exit 0.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let s = rr.0.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = rr.0.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (s, err)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}", status.0);
    assert!(status.1.contains("shutting down"), "{}", status.1);
    assert!(!status.1.contains("password"), "no secrets in logs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st = client.status().await.unwrap();
        let p = &st.peers[0];
        if let Some(m) = p
            .last_error
            .as_ref()
            .and_then(|e| e.received.as_ref())
            .and_then(|n| n.message.clone())
        {
            assert_eq!(m, "wren-reflector shutting down");
            assert_eq!(
                p.last_error
                    .as_ref()
                    .unwrap()
                    .received
                    .as_ref()
                    .unwrap()
                    .code,
                6
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "client records the shutdown: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.shutdown("test over").await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), client_task).await;
}

/// A reload whose neighbour names a policy the running speaker lacks is refused whole (the
/// old neighbour stays); a later reload still applies (it used to remove the neighbour, fail
/// on the new one, and then fail every later reload on the already removed neighbour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reload_applies_nothing_and_the_next_one_converges() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg_path = dir.path().join("rr.toml");
    let status_path = dir.path().join("status.json");
    let log_path = dir.path().join("rr.log");
    let head = format!(
        "asn = 65000\nrouter_id = \"10.0.0.1\"\nlisten_addresses = [\"127.0.0.1\"]\n\
         listen_port = {port}\n"
    );
    let nbr = |a: &str, extra: &str| {
        format!("[[neighbor]]\naddress = \"{a}\"\nremote_asn = 65000\npassive = true\n{extra}")
    };
    std::fs::write(&cfg_path, format!("{head}{}", nbr("127.0.0.3", ""))).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg_path)
        .arg("--status-file")
        .arg(&status_path)
        .arg("--status-interval-ms")
        .arg("50")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let rr = Reflector(child);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(rr.0.id()).unwrap());
    let peers = || -> Option<Vec<String>> {
        Some(
            read_status(&status_path)?
                .peers
                .iter()
                .map(|p| p.address.clone())
                .collect(),
        )
    };
    poll("the status file", peers).await;

    // Reload 1: 127.0.0.3 replaced by 127.0.0.5 with a policy that is not running.
    std::fs::write(
        &cfg_path,
        format!(
            "{head}{}[[policy]]\nname = \"p2\"\ndefault = \"accept\"\n",
            nbr("127.0.0.5", "import_policy = [\"p2\"]\n")
        ),
    )
    .unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let log = poll("the refused reload in the log", || {
        let l = std::fs::read_to_string(&log_path).ok()?;
        l.contains("reload failed").then_some(l)
    })
    .await;
    assert!(log.contains("p2") && log.contains("restart"), "{log}");
    assert_eq!(peers().unwrap(), vec!["127.0.0.3".to_owned()]);

    // Reload 2: 127.0.0.3 replaced by 127.0.0.6.
    std::fs::write(&cfg_path, format!("{head}{}", nbr("127.0.0.6", ""))).unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    poll("127.0.0.6 alone", || {
        (peers()? == vec!["127.0.0.6".to_owned()]).then_some(())
    })
    .await;
    drop(rr);
}
