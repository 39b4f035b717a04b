//! `wren-reflector` against a hand-driven peer on loopback: a malformed header gets the right
//! NOTIFICATION (RFC 4271 6.1), and an UPDATE with a malformed optional attribute is
//! treated as withdraw (RFC 7606) while the session stays up.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wren_bgp::speaker::SpeakerStatus;
use wren_bgp::wire::{Capability, Family, Message, Notification, Open, SessionContext};

const BIN: &str = env!("CARGO_BIN_EXE_wren-reflector");
const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

struct Reflector {
    child: Child,
    port: u16,
    status: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_reflector() -> Reflector {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rr.toml");
    std::fs::write(
        &cfg,
        format!(
            "asn = 65000\nrouter_id = \"10.0.0.1\"\nlisten_addresses = [\"127.0.0.1\"]\n\
             listen_port = {port}\n[graceful_restart]\nenabled = false\n\
             [[neighbor]]\naddress = \"{PEER}\"\nremote_asn = 65005\npassive = true\n"
        ),
    )
    .unwrap();
    let status = dir.path().join("status.json");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--status-file")
        .arg(&status)
        .arg("--status-interval-ms")
        .arg("50")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Reflector {
        child,
        port,
        status,
        _dir: dir,
    }
}

async fn connect(port: u16) -> TcpStream {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::new(IpAddr::V4(PEER), 0)).unwrap();
        match s
            .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .await
        {
            Ok(c) => return c,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "cannot connect to wren-reflector: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Read messages until one satisfies `pred` (decoded with `ctx`).
async fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    ctx: &SessionContext,
    mut pred: impl FnMut(&Message) -> bool,
) -> Message {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        while buf.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            if buf.len() < len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..len).collect();
            let m = Message::decode(&frame, ctx).unwrap();
            if pred(&m) {
                return m;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("timed out reading from wren-reflector")
            .unwrap();
        assert!(n > 0, "wren-reflector closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn notification(m: &Message) -> Option<&Notification> {
    match m {
        Message::Notification(n) => Some(n),
        _ => None,
    }
}

#[tokio::test]
async fn malformed_headers_get_the_right_notification() {
    let rr = start_reflector();
    // Bad marker: Message Header Error / Connection Not Synchronized.
    let mut s = connect(rr.port).await;
    let mut bad = vec![0xffu8; 16];
    bad[3] = 0;
    bad.extend_from_slice(&[0, 19, 4]);
    s.write_all(&bad).await.unwrap();
    let mut buf = Vec::new();
    let m = read_until(&mut s, &mut buf, &SessionContext::default(), |m| {
        matches!(m, Message::Notification(_))
    })
    .await;
    let n = notification(&m).unwrap();
    assert_eq!((n.code, n.subcode), (1, 1), "{n:?}");
    drop(s);
    // Bad length (5000 > 4096 before extended messages): Bad Message Length with the
    // length field as data. The peer is in its idle hold time after the first error and
    // refuses connections for a moment: retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = connect(rr.port).await;
        let mut bad = vec![0xffu8; 16];
        bad.extend_from_slice(&5000u16.to_be_bytes());
        bad.push(2);
        let got = tokio::time::timeout(Duration::from_secs(3), async {
            s.write_all(&bad).await.ok()?;
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= 19 {
                    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
                    if buf.len() < len {
                        break;
                    }
                    let frame: Vec<u8> = buf.drain(..len).collect();
                    if let Ok(Message::Notification(n)) =
                        Message::decode(&frame, &SessionContext::default())
                    {
                        return Some(n);
                    }
                }
            }
        })
        .await;
        if let Ok(Some(n)) = got {
            assert_eq!((n.code, n.subcode), (1, 2), "{n:?}");
            assert_eq!(n.data.as_ref(), &5000u16.to_be_bytes());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no second NOTIFICATION"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn read_status(path: &Path) -> Option<SpeakerStatus> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

async fn wait_status(path: &Path, what: &str, pred: impl Fn(&SpeakerStatus) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if read_status(path).is_some_and(|s| pred(&s)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            read_status(path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An UPDATE for 10.40.`third`.0/24 from AS 65005, optionally with a 2-octet MED (a
/// malformed optional attribute: RFC 7606 treat-as-withdraw).
fn update(third: u8, malformed_med: bool) -> Vec<u8> {
    let mut attrs = vec![
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xed, // AS_PATH [65005], 4-octet
        0x40, 3, 4, 127, 0, 0, 5, // NEXT_HOP
    ];
    if malformed_med {
        attrs.extend_from_slice(&[0x80, 4, 2, 0, 1]);
    }
    let nlri = [24u8, 10, 40, third];
    let mut body = vec![0u8, 0];
    body.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&nlri);
    let mut m = vec![0xffu8; 16];
    m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    m.push(2);
    m.extend_from_slice(&body);
    m
}

#[tokio::test]
async fn malformed_attribute_is_treat_as_withdraw_and_session_stays_up() {
    let rr = start_reflector();
    let mut s = connect(rr.port).await;
    let open = Open::new(
        65005,
        90,
        Ipv4Addr::new(10, 0, 0, 5),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65005),
        ],
    );
    s.write_all(
        &Message::Open(open)
            .to_bytes(&SessionContext::default())
            .unwrap(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let ctx = SessionContext::default();
    read_until(&mut s, &mut buf, &ctx, |m| matches!(m, Message::Open(_))).await;
    s.write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
        .await
        .unwrap();
    read_until(&mut s, &mut buf, &ctx, |m| matches!(m, Message::Keepalive)).await;
    wait_status(&rr.status, "Established", |st| {
        st.peers[0].state == "Established"
    })
    .await;
    // Two good routes, then one of them again with a malformed MED.
    s.write_all(&update(1, false)).await.unwrap();
    s.write_all(&update(2, false)).await.unwrap();
    wait_status(&rr.status, "both routes", |st| {
        st.routes
            .iter()
            .filter(|r| r.prefix.starts_with("10.40."))
            .count()
            == 2
    })
    .await;
    s.write_all(&update(2, true)).await.unwrap();
    wait_status(&rr.status, "10.40.2.0/24 treated as withdrawn", |st| {
        st.routes.iter().any(|r| r.prefix == "10.40.1.0/24")
            && !st.routes.iter().any(|r| r.prefix == "10.40.2.0/24")
            && st.peers[0].messages_in.update >= 3
    })
    .await;
    // The session is still up and no NOTIFICATION came: send a KEEPALIVE and get one back
    // within the keepalive interval (30 s at hold time 90: instead, check the state).
    let st = read_status(&rr.status).unwrap();
    assert_eq!(st.peers[0].state, "Established");
    assert_eq!(st.peers[0].messages_out.notification, 0);
    s.write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = read_status(&rr.status).unwrap();
    assert_eq!(st.peers[0].state, "Established");
}
