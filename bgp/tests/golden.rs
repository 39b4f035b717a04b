//! Golden vectors: real BGP messages captured from BIRD 2.0.12, FRR 8.4.4, GoBGP 3.10.0 and
//! ExaBGP 4.2.21 sessions (see `tests/golden/README.md` and `tests/golden/capture.sh`).
//!
//! Every vector listed in `tests/golden/manifest.json` must decode in its session context
//! without RFC 7606 issues and re-encode to exactly the captured octets. A subset also has
//! its expected decoded value written out by hand below, derived from what the daemons were
//! configured to send (the configs are in `capture.sh`) and cross-checked against the
//! daemons' own views (`tests/golden/views/`) and `tcpdump -v`; those values are not
//! produced by Wren's decoder.

// Helpers outside #[test] functions are test code too.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ipnet::IpNet;
use wren_bgp::wire::{
    Afi, Aggregator, AsPath, Capability, Community, ExtCommunity, Family, GracefulRestartCap,
    LargeCommunity, Message, MpNextHop, MpReach, MpUnreach, Nlri, Notification, Open, OptParam,
    Origin, PathAttributes, RawAttribute, RouteRefresh, RouteRefreshSubtype, Safi, SessionContext,
    Update,
};

// ------------------------------------------------------------------ manifest (tiny JSON)

/// A JSON value; just enough of JSON for the manifest (no floats with exponents needed, but
/// they parse).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(kv) => kv
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("manifest: missing key {key:?} in {self:?}")),
            _ => panic!("manifest: {key:?} looked up in a non-object {self:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("manifest: expected a string, got {self:?}"),
        }
    }
    fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            _ => panic!("manifest: expected a bool, got {self:?}"),
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("manifest: expected a number, got {self:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("manifest: expected an array, got {self:?}"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "manifest: expected {:?} at {}",
            c as char,
            self.i
        );
        self.i += 1;
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(kv);
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value() else {
                        panic!("manifest: object key")
                    };
                    self.eat(b':');
                    let v = self.value();
                    kv.push((k, v));
                    self.ws();
                    match self.s[self.i] {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Json::Obj(kv);
                        }
                        c => panic!("manifest: unexpected {:?} in object", c as char),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(a);
                }
                loop {
                    a.push(self.value());
                    self.ws();
                    match self.s[self.i] {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Json::Arr(a);
                        }
                        c => panic!("manifest: unexpected {:?} in array", c as char),
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let c = self.s[self.i];
                    self.i += 1;
                    match c {
                        b'"' => return Json::Str(out),
                        b'\\' => {
                            let e = self.s[self.i];
                            self.i += 1;
                            match e {
                                b'n' => out.push('\n'),
                                b't' => out.push('\t'),
                                b'r' => out.push('\r'),
                                b'b' => out.push('\u{8}'),
                                b'f' => out.push('\u{c}'),
                                b'u' => {
                                    let h =
                                        std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                                    self.i += 4;
                                    let cp = u32::from_str_radix(h, 16).unwrap();
                                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                }
                                other => out.push(other as char),
                            }
                        }
                        _ => {
                            // Copy one UTF-8 sequence.
                            let start = self.i - 1;
                            let mut end = self.i;
                            while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                                end += 1;
                            }
                            out.push_str(std::str::from_utf8(&self.s[start..end]).unwrap());
                            self.i = end;
                        }
                    }
                }
            }
            b't' => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(
                    t.parse()
                        .unwrap_or_else(|_| panic!("manifest: bad number {t:?}")),
                )
            }
        }
    }
}

fn parse_json(text: &str) -> Json {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(p.i, p.s.len(), "manifest: trailing data");
    v
}

// ------------------------------------------------------------------ vectors

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

struct Vector {
    file: String,
    kind: String,
    sender: String,
    receiver: String,
    ctx: SessionContext,
    description: String,
    bytes: Vec<u8>,
    /// The OPENs of the TCP connection this message travelled on: (sender's, receiver's).
    opens: Option<(Vec<u8>, Vec<u8>)>,
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).unwrap_or_else(|e| panic!("{}: not hex: {e}", path.display()))
}

fn vectors() -> Vec<Vector> {
    let dir = golden_dir();
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("read manifest.json");
    let manifest = parse_json(&text);
    let sessions = manifest.get("sessions").arr();
    manifest
        .get("vectors")
        .arr()
        .iter()
        .map(|v| {
            let c = v.get("context");
            let ctx = SessionContext {
                four_octet_as: c.get("four_octet_as").bool(),
                extended_message: c.get("extended_message").bool(),
                add_path: c
                    .get("add_path")
                    .arr()
                    .iter()
                    .map(|f| {
                        Family::new(
                            Afi(f.get("afi").num() as u16),
                            Safi(f.get("safi").num() as u8),
                        )
                    })
                    .collect(),
            };
            let file = v.get("file").str().to_string();
            let bytes = read_hex(&dir.join(&file));
            assert_eq!(
                bytes.len(),
                v.get("length").num() as usize,
                "{file}: length differs from the manifest"
            );
            Vector {
                file,
                kind: v.get("kind").str().to_string(),
                sender: v.get("sender").str().to_string(),
                receiver: v.get("receiver").str().to_string(),
                ctx,
                description: v.get("description").str().to_string(),
                bytes,
                opens: match v {
                    Json::Obj(kv) => kv.iter().find(|(k, _)| k == "session").map(|(_, id)| {
                        let s = sessions
                            .iter()
                            .find(|s| s.get("id").num() == id.num())
                            .expect("session id in manifest.json");
                        (
                            hex::decode(s.get("sender_open").str()).unwrap(),
                            hex::decode(s.get("receiver_open").str()).unwrap(),
                        )
                    }),
                    _ => None,
                },
            }
        })
        .collect()
}

fn vector(file: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.file == file)
        .unwrap_or_else(|| panic!("{file} is not in manifest.json"))
}

/// Decode a vector (panicking with the vector's description on error).
fn decode(v: &Vector) -> Message {
    Message::decode(&v.bytes, &v.ctx)
        .unwrap_or_else(|e| panic!("{} ({}): decode failed: {e}", v.file, v.description))
}

fn decode_update(file: &str) -> (Vector, Update) {
    let v = vector(file);
    match decode(&v) {
        Message::Update(u) => (v, u),
        other => panic!("{file}: expected an UPDATE, got {other:?}"),
    }
}

fn decode_open(file: &str) -> Open {
    let v = vector(file);
    match decode(&v) {
        Message::Open(o) => o,
        other => panic!("{file}: expected an OPEN, got {other:?}"),
    }
}

fn decode_notification(file: &str) -> Notification {
    let v = vector(file);
    match decode(&v) {
        Message::Notification(n) => n,
        other => panic!("{file}: expected a NOTIFICATION, got {other:?}"),
    }
}

fn decode_route_refresh(file: &str) -> RouteRefresh {
    let v = vector(file);
    match decode(&v) {
        Message::RouteRefresh(r) => r,
        other => panic!("{file}: expected a ROUTE-REFRESH, got {other:?}"),
    }
}

/// Why a vector does not round-trip, or `None` when it does.
fn round_trip_problem(v: &Vector) -> Option<String> {
    let msg = match Message::decode(&v.bytes, &v.ctx) {
        Ok(m) => m,
        Err(e) => {
            return Some(format!(
                "decode failed: {e} (NOTIFICATION {:?})",
                e.notification()
            ))
        }
    };
    let kind = match &msg {
        Message::Open(_) => "open",
        Message::Update(_) => "update",
        Message::Notification(_) => "notification",
        Message::Keepalive => "keepalive",
        Message::RouteRefresh(_) => "route-refresh",
    };
    if kind != v.kind {
        return Some(format!("decoded as {kind}, the manifest says {}", v.kind));
    }
    if let Message::Update(u) = &msg {
        if !u.issues.is_empty() {
            return Some(format!(
                "RFC 7606 issues on a valid message: {:?}",
                u.issues
            ));
        }
    }
    let encoded = match msg.to_bytes(&v.ctx) {
        Ok(b) => b,
        Err(e) => return Some(format!("re-encode failed: {e}")),
    };
    if encoded.as_ref() != v.bytes.as_slice() {
        let at = encoded
            .iter()
            .zip(v.bytes.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(encoded.len().min(v.bytes.len()));
        let window =
            |b: &[u8]| hex::encode(&b[at.saturating_sub(4).min(b.len())..(at + 12).min(b.len())]);
        return Some(format!(
            "re-encode differs at octet {at} (captured {} octets, re-encoded {}): captured ..{}.., re-encoded ..{}..",
            v.bytes.len(),
            encoded.len(),
            window(&v.bytes),
            window(&encoded)
        ));
    }
    // Decoding the re-encoded octets gives the same value again.
    match Message::decode(&encoded, &v.ctx) {
        Ok(again) if again == msg => None,
        Ok(_) => Some("decode(encode(decode(x))) != decode(x)".to_string()),
        Err(e) => Some(format!("re-decode failed: {e}")),
    }
}

// ------------------------------------------------------------------ every vector

#[test]
fn manifest_covers_every_vector_file_and_every_daemon() {
    let vs = vectors();
    assert!(vs.len() >= 40, "only {} vectors", vs.len());
    let listed: BTreeSet<String> = vs.iter().map(|v| v.file.clone()).collect();
    assert_eq!(listed.len(), vs.len(), "a file is listed twice");
    let mut on_disk = BTreeSet::new();
    for daemon in ["bird", "frr", "gobgp", "exabgp"] {
        let dir = golden_dir().join(daemon);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".hex") {
                on_disk.insert(format!("{daemon}/{name}"));
            }
        }
        for kind in ["open", "update", "notification", "keepalive"] {
            assert!(
                vs.iter()
                    .any(|v| v.file.starts_with(&format!("{daemon}/")) && v.kind == kind),
                "no {kind} vector from {daemon}"
            );
        }
    }
    assert_eq!(listed, on_disk, "manifest.json and the .hex files disagree");
    for v in &vs {
        assert!(!v.sender.is_empty() && !v.receiver.is_empty() && !v.description.is_empty());
    }
}

/// The context in the manifest (derived by extract.py from the two OPENs of the message's TCP
/// connection) is what Wren's own negotiation gives for the receiver's receive direction.
#[test]
fn manifest_contexts_match_wren_negotiation_of_the_captured_opens() {
    let mut checked = 0;
    for v in vectors() {
        let Some((sender_open, receiver_open)) = &v.opens else {
            assert_eq!(
                v.kind, "open",
                "{}: only OPENs come without a session",
                v.file
            );
            continue;
        };
        let open = |b: &[u8]| match Message::decode(b, &SessionContext::default()) {
            Ok(Message::Open(o)) => o,
            other => panic!("{}: session OPEN does not decode: {other:?}", v.file),
        };
        let (receive, _send) = SessionContext::negotiate(&open(receiver_open), &open(sender_open));
        let (_receive, send) = SessionContext::negotiate(&open(sender_open), &open(receiver_open));
        for (what, got) in [("receiver's receive", receive), ("sender's send", send)] {
            assert_eq!(got.four_octet_as, v.ctx.four_octet_as, "{}: {what}", v.file);
            assert_eq!(
                got.extended_message, v.ctx.extended_message,
                "{}: {what}",
                v.file
            );
            let a: BTreeSet<Family> = got.add_path.iter().copied().collect();
            let b: BTreeSet<Family> = v.ctx.add_path.iter().copied().collect();
            assert_eq!(a, b, "{}: {what} add-path families", v.file);
        }
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} vectors have session OPENs");
}

/// The core property, per message kind so that one codec gap does not hide the others.
fn assert_round_trips(kind: &str) {
    let vs: Vec<Vector> = vectors().into_iter().filter(|v| v.kind == kind).collect();
    assert!(!vs.is_empty(), "no {kind} vectors");
    let failures: Vec<String> = vs
        .iter()
        .filter_map(|v| {
            round_trip_problem(v).map(|p| {
                let d: String = v.description.chars().take(160).collect();
                format!("  {}: {p}\n    ({d}...)", v.file)
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {kind} vectors do not decode cleanly and re-encode exactly:\n{}",
        failures.len(),
        vs.len(),
        failures.join("\n")
    );
}

#[test]
fn every_open_vector_round_trips() {
    assert_round_trips("open");
}

#[test]
fn every_update_vector_round_trips() {
    assert_round_trips("update");
}

#[test]
fn every_notification_vector_round_trips() {
    assert_round_trips("notification");
}

#[test]
fn every_keepalive_vector_round_trips() {
    assert_round_trips("keepalive");
}

#[test]
fn every_route_refresh_vector_round_trips() {
    assert_round_trips("route-refresh");
}

// ------------------------------------------------------------------ hand-written values

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn n(s: &str) -> Nlri {
    Nlri::new(net(s))
}

fn n_id(s: &str, id: u32) -> Nlri {
    Nlri::with_path_id(net(s), id)
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn comm(asn: u16, value: u16) -> Community {
    Community::new(asn, value)
}

fn large(g: u32, l1: u32, l2: u32) -> LargeCommunity {
    LargeCommunity {
        global_admin: g,
        local_data1: l1,
        local_data2: l2,
    }
}

/// RFC 4360 two-octet-AS-specific extended community: route target (subtype 2) or route
/// origin (subtype 3).
fn ext_as2(subtype: u8, asn: u16, value: u32) -> ExtCommunity {
    let a = asn.to_be_bytes();
    let v = value.to_be_bytes();
    ExtCommunity([0x00, subtype, a[0], a[1], v[0], v[1], v[2], v[3]])
}

/// RFC 4360 IPv4-address-specific extended community.
fn ext_ip4(subtype: u8, addr: &str, value: u16) -> ExtCommunity {
    let a = ip4(addr).octets();
    let v = value.to_be_bytes();
    ExtCommunity([0x01, subtype, a[0], a[1], a[2], a[3], v[0], v[1]])
}

fn path(asns: &[u32]) -> Option<AsPath> {
    Some(AsPath::from_sequence(asns.to_vec()))
}

fn ipv4_update(attributes: PathAttributes, nlri: Vec<Nlri>) -> Update {
    Update {
        attributes,
        nlri,
        ..Default::default()
    }
}

fn assert_update(file: &str, expected: Update) {
    let (v, got) = decode_update(file);
    assert_eq!(got, expected, "{file} ({})", v.description);
}

fn gr(restart_state: bool, notification: bool, families: Vec<(Family, bool)>) -> Capability {
    Capability::GracefulRestart(GracefulRestartCap {
        restart_state,
        notification,
        restart_time: 120,
        families,
    })
}

fn add_path_both_ipv4() -> Capability {
    Capability::AddPath(vec![wren_bgp::wire::AddPathEntry {
        family: Family::IPV4_UNICAST,
        direction: wren_bgp::wire::AddPathDirection::Both,
    }])
}

fn unknown_cap(code: u8, value: &[u8]) -> Capability {
    Capability::Unknown {
        code,
        value: Bytes::copy_from_slice(value),
    }
}

fn fqdn(host: &str) -> Capability {
    Capability::Fqdn {
        hostname: Bytes::copy_from_slice(host.as_bytes()),
        domain: Bytes::new(),
    }
}

// OPEN ------------------------------------------------------------------------------------

/// bird1 (`local as 4200000001`, `graceful restart on`, `long lived graceful restart on`,
/// `enable extended messages on`, `advertise hostname on`, `local role customer`, ipv4
/// `add paths on`): BIRD packs every capability into one optional parameter. Cross-checked
/// with `views/bird1-protocol-frr1.txt` ("Local capabilities").
#[test]
fn bird_open_carries_every_configured_capability() {
    let open = decode_open("bird/09-open-as4200000001.hex");
    let expected = Open {
        version: 4,
        my_as: 23456, // AS_TRANS: the real AS does not fit 2 octets
        hold_time: 240,
        bgp_id: ip4("10.0.0.1"),
        params: vec![OptParam::Capabilities(vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
            unknown_cap(9, &[3]), // RFC 9234 role: 3 = customer
            gr(false, false, vec![(Family::IPV4_UNICAST, false)]),
            Capability::FourOctetAs(4_200_000_001),
            add_path_both_ipv4(),
            Capability::EnhancedRouteRefresh,
            // RFC 9494 LLGR: ipv4 unicast, flags 0, long-lived stale time 3600 s.
            unknown_cap(71, &[0, 1, 1, 0, 0x00, 0x0e, 0x10]),
            fqdn("bird1"),
        ])],
        extended_params: false,
    };
    assert_eq!(open, expected);
    assert_eq!(open.asn(), 4_200_000_001);
}

/// bird3 has `enable as4 off`: no 4-octet AS capability, AS 65010 in `my_as`. Its
/// graceful restart capability is the "aware" form (restart time, no families).
#[test]
fn bird_open_without_four_octet_as() {
    let open = decode_open("bird/06-open-as65010-2octet.hex");
    let expected = Open {
        version: 4,
        my_as: 65010,
        hold_time: 240,
        bgp_id: ip4("10.0.0.6"),
        params: vec![OptParam::Capabilities(vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            gr(false, false, vec![]),
            Capability::EnhancedRouteRefresh,
            unknown_cap(71, &[]),
        ])],
        extended_params: false,
    };
    assert_eq!(open, expected);
    assert_eq!(open.asn(), 65010);
    assert!(!open
        .capabilities()
        .any(|c| matches!(c, Capability::FourOctetAs(_))));
}

/// frr1 to bird1 (`bgp graceful-restart`, `local-role provider`, `addpath-tx-all-paths`):
/// FRR sends one optional parameter per capability, the old Cisco route refresh (128) next
/// to the standard one, its hostname, and GR with the R and N bits (cross-checked with
/// bird1's view: "Restart recovery").
#[test]
fn frr_open_has_one_parameter_per_capability() {
    let open = decode_open("frr/03-open-as65002.hex");
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        unknown_cap(128, &[]),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::FourOctetAs(65002),
        Capability::ExtendedMessage,
        unknown_cap(9, &[0]), // RFC 9234 role: 0 = provider
        add_path_both_ipv4(),
        fqdn("frr1"),
        gr(true, true, vec![(Family::IPV4_UNICAST, false)]),
        // LLGR: ipv4 unicast with the F bit, stale time 0.
        unknown_cap(71, &[0, 1, 1, 0x80, 0, 0, 0]),
    ];
    let expected = Open {
        version: 4,
        my_as: 65002,
        hold_time: 180,
        bgp_id: ip4("10.0.0.2"),
        params: caps
            .into_iter()
            .map(|c| OptParam::Capabilities(vec![c]))
            .collect(),
        extended_params: false,
    };
    assert_eq!(open, expected);
}

/// gobgp1 to bird1 (graceful restart, add-paths send-max 4 / receive): GoBGP sends its
/// host name (the capture machine's, "vm") and the RFC 8950 extended next hop capability.
#[test]
fn gobgp_open_capabilities() {
    let open = decode_open("gobgp/07-open-as65002.hex");
    let expected = Open {
        version: 4,
        my_as: 65002,
        hold_time: 90,
        bgp_id: ip4("10.0.0.3"),
        params: vec![OptParam::Capabilities(vec![
            Capability::RouteRefresh,
            fqdn("vm"),
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65002),
            gr(false, false, vec![(Family::IPV4_UNICAST, false)]),
            // Extended next hop: ipv4 unicast NLRI with an IPv6 next hop.
            unknown_cap(5, &[0, 1, 0, 1, 0, 2]),
            add_path_both_ipv4(),
        ])],
        extended_params: false,
    };
    assert_eq!(open, expected);
}

/// exabgp1 to bird1 (`hold-time 3`, `capability { route-refresh; graceful-restart 120;
/// add-path send/receive; }`).
#[test]
fn exabgp_open_capabilities() {
    let v = vector("exabgp/01-open-as65004.hex");
    assert_eq!(v.receiver, "bird1");
    let Message::Open(open) = decode(&v) else {
        panic!("not an OPEN")
    };
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::FourOctetAs(65004),
        add_path_both_ipv4(),
        gr(true, false, vec![(Family::IPV4_UNICAST, true)]),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::ExtendedMessage,
    ];
    let expected = Open {
        version: 4,
        my_as: 65004,
        hold_time: 3,
        bgp_id: ip4("10.0.0.4"),
        params: caps
            .into_iter()
            .map(|c| OptParam::Capabilities(vec![c]))
            .collect(),
        extended_params: false,
    };
    assert_eq!(open, expected);
}

// UPDATE ----------------------------------------------------------------------------------

/// bird1's export filter `ex4` for 10.1.1.0/24: MED 50, communities (65001,100) and
/// (65001,101), large community (4200000001,1,2), extended communities (rt,65001,7) and
/// (ro,10.0.0.1,8). Sent with add-path (path id chosen by BIRD).
#[test]
fn bird_update_with_communities_of_every_kind() {
    assert_update(
        "bird/03-update-ipv4-10.1.1.0_24-addpath.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[4_200_000_001]),
                next_hop: Some(ip4("10.0.0.1")),
                med: Some(50),
                communities: vec![comm(65001, 100), comm(65001, 101)],
                ext_communities: vec![ext_as2(2, 65001, 7), ext_ip4(3, "10.0.0.1", 8)],
                large_communities: vec![large(4_200_000_001, 1, 2)],
                ..Default::default()
            },
            vec![n_id("10.1.1.0/24", 2)],
        ),
    );
}

/// bird3 (2-octet session) re-advertising 10.4.3.0/24, which exabgp1 originated with
/// `aggregator ( 4200000004:10.0.0.4 )`, after prepending 4200000066 in its export filter:
/// AS_TRANS in AS_PATH and AGGREGATOR, the real values in AS4_PATH / AS4_AGGREGATOR, merged
/// on decode (RFC 6793 section 4.2.3).
#[test]
fn bird_two_octet_update_merges_as4_path_and_as4_aggregator() {
    assert_update(
        "bird/12-update-ipv4-10.4.3.0_24-2octet.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65010, 4_200_000_066, 65002, 65004]),
                next_hop: Some(ip4("10.0.0.3")),
                aggregator: Some(Aggregator {
                    asn: 4_200_000_004,
                    address: ip4("10.0.0.4"),
                }),
                communities: vec![comm(65010, 1)],
                // BIRD sends COMMUNITIES with the Partial bit (flags 0xe0); it must survive.
                partial: wren_bgp::wire::attr::PartialBits(1 << 8),
                ..Default::default()
            },
            vec![n("10.4.3.0/24")],
        ),
    );
}

/// bird1 to frr1 over the IPv6 session on the shared link: global and link-local next hop
/// (the link-local address is the EUI-64 of the fixed MAC 02:00:00:00:00:01).
#[test]
fn bird_ipv6_update_with_link_local_next_hop() {
    assert_update(
        "bird/14-update-ipv6-2001_db8_1___48.hex",
        Update {
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[4_200_000_001]),
                med: Some(60),
                communities: vec![comm(65001, 600)],
                mp_reach: Some(MpReach::new(
                    Family::IPV6_UNICAST,
                    MpNextHop::Ipv6 {
                        global: ip6("2001:db8:ff::1"),
                        link_local: Some(ip6("fe80::ff:fe00:1")),
                    },
                    vec![n("2001:db8:1::/48")],
                )),
                ..Default::default()
            },
            ..Default::default()
        },
    );
}

/// `birdc disable s6wd` withdraws 2001:db8:13::/48 (MP_UNREACH_NLRI).
#[test]
fn bird_ipv6_withdrawal() {
    assert_update(
        "bird/27-update-ipv6-withdraw-2001_db8_13___48.hex",
        Update {
            attributes: PathAttributes {
                mp_unreach: Some(MpUnreach::new(
                    Family::IPV6_UNICAST,
                    vec![n("2001:db8:13::/48")],
                )),
                ..Default::default()
            },
            ..Default::default()
        },
    );
}

/// Every End-of-RIB vector (file name `eor-ipv4` / `eor-ipv6`) is exactly the marker of
/// that family (RFC 4724 section 2).
#[test]
fn end_of_rib_markers_from_every_daemon() {
    let mut seen = BTreeSet::new();
    for v in vectors().iter().filter(|v| v.file.contains("-eor-")) {
        let family = if v.file.contains("-eor-ipv4") {
            Family::IPV4_UNICAST
        } else {
            Family::IPV6_UNICAST
        };
        let Message::Update(u) = decode(v) else {
            panic!("{}: not an UPDATE", v.file)
        };
        assert_eq!(u.end_of_rib(), Some(family), "{}", v.file);
        assert_eq!(u, Update::end_of_rib_marker(family), "{}", v.file);
        seen.insert((
            v.file.split('/').next().unwrap().to_string(),
            family == Family::IPV6_UNICAST,
        ));
    }
    for (daemon, v6) in [
        ("bird", false),
        ("bird", true),
        ("frr", false),
        ("frr", true),
        ("gobgp", false),
        ("gobgp", true),
        ("exabgp", false),
    ] {
        assert!(
            seen.contains(&(daemon.to_string(), v6)),
            "no End-of-RIB vector from {daemon} (ipv6: {v6})"
        );
    }
}

/// frr1 reflecting gobgp1's route (`gobgp global rib add 10.3.1.0/24 med 30 local-pref 300
/// community 65003:1,65003:2 large-community 4200000001:3:4`) to its RR client bird2:
/// ORIGINATOR_ID gobgp1, CLUSTER_LIST frr1's router id.
#[test]
fn frr_reflected_update_has_originator_id_and_cluster_list() {
    assert_update(
        "frr/08-update-ipv4-10.3.1.0_24.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                next_hop: Some(ip4("10.0.0.3")),
                med: Some(30),
                local_pref: Some(300),
                communities: vec![comm(65003, 1), comm(65003, 2)],
                large_communities: vec![large(4_200_000_001, 3, 4)],
                originator_id: Some(ip4("10.0.0.3")),
                cluster_list: vec![ip4("10.0.0.2")],
                ..Default::default()
            },
            vec![n("10.3.1.0/24")],
        ),
    );
}

/// frr1 to bird3 (2-octet session) with bird1's 10.1.1.0/24: AS_PATH [65002 23456] plus
/// AS4_PATH [65002 4200000001]; MED is not passed on to another AS.
#[test]
fn frr_two_octet_update_merges_as4_path() {
    assert_update(
        "frr/10-update-ipv4-10.1.1.0_24-2octet.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65002, 4_200_000_001]),
                next_hop: Some(ip4("10.0.0.1")),
                communities: vec![comm(65001, 100), comm(65001, 101)],
                ext_communities: vec![ext_as2(2, 65001, 7), ext_ip4(3, "10.0.0.1", 8)],
                large_communities: vec![large(4_200_000_001, 1, 2)],
                ..Default::default()
            },
            vec![n("10.1.1.0/24")],
        ),
    );
}

#[test]
fn frr_two_octet_update_merges_as4_aggregator() {
    assert_update(
        "frr/11-update-ipv4-10.4.3.0_24-2octet.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65002, 65004]),
                next_hop: Some(ip4("10.0.0.4")),
                aggregator: Some(Aggregator {
                    asn: 4_200_000_004,
                    address: ip4("10.0.0.4"),
                }),
                ..Default::default()
            },
            vec![n("10.4.3.0/24")],
        ),
    );
}

/// frr1's `network 2001:db8:2::/48 route-map RM_ATTRS` (community 65002:200 65002:201,
/// large-community 4200000001:2:3, extcommunity rt 65002:9, metric 20, origin egp) to bird1
/// over IPv6: MP_REACH_NLRI first, with global and link-local next hop (zebra knows the
/// interface), Extended Length on MP_REACH_NLRI and AS_PATH.
#[test]
fn frr_ipv6_update_with_route_map_attributes() {
    assert_update(
        "frr/17-update-ipv6-2001_db8_2___48.hex",
        Update {
            attributes: PathAttributes {
                origin: Some(Origin::Egp),
                as_path: path(&[65002]),
                med: Some(20),
                communities: vec![comm(65002, 200), comm(65002, 201)],
                ext_communities: vec![ext_as2(2, 65002, 9)],
                large_communities: vec![large(4_200_000_001, 2, 3)],
                mp_reach: Some(MpReach::new(
                    Family::IPV6_UNICAST,
                    MpNextHop::Ipv6 {
                        global: ip6("2001:db8:ff::2"),
                        link_local: Some(ip6("fe80::ff:fe00:2")),
                    },
                    vec![n("2001:db8:2::/48")],
                )),
                ..Default::default()
            },
            ..Default::default()
        },
    );
}

/// frr1 reflecting gobgp1's IPv6 route back to gobgp1 over iBGP: global next hop only.
#[test]
fn frr_reflected_ipv6_update() {
    assert_update(
        "frr/18-update-ipv6-2001_db8_3___48.hex",
        Update {
            attributes: PathAttributes {
                origin: Some(Origin::Incomplete),
                as_path: Some(AsPath::default()),
                med: Some(0),
                local_pref: Some(100),
                communities: vec![comm(65003, 6)],
                originator_id: Some(ip4("10.0.0.3")),
                cluster_list: vec![ip4("10.0.0.2")],
                mp_reach: Some(MpReach::new(
                    Family::IPV6_UNICAST,
                    MpNextHop::Ipv6 {
                        global: ip6("2001:db8:ff::3"),
                        link_local: None,
                    },
                    vec![n("2001:db8:3::/48")],
                )),
                ..Default::default()
            },
            ..Default::default()
        },
    );
}

/// frr1's 600 `network 10.200.x.y/32` routes (plus 10.2.2.0/24 and 10.2.3.0/24, same
/// attributes) to bird1 with add-path: one UPDATE of more than 4096 octets, legal only
/// because both sides sent the extended message capability (RFC 8654). The role
/// (`local-role provider`) makes FRR add OTC (RFC 9234, type 35), unknown to Wren.
#[test]
fn frr_extended_message_update_with_602_prefixes() {
    let (v, u) = decode_update("frr/15-update-ipv4-10.2.2.0_24-and-601-more-addpath.hex");
    assert!(v.bytes.len() > 4096 && v.ctx.extended_message);
    let expected_attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: path(&[65002]),
        next_hop: Some(ip4("10.0.0.2")),
        med: Some(0),
        unknown: vec![RawAttribute {
            flags: 0xc0,
            type_code: 35,
            value: Bytes::copy_from_slice(&65002u32.to_be_bytes()),
        }],
        ..Default::default()
    };
    assert_eq!(u.attributes, expected_attrs);
    let mut expected: BTreeSet<IpNet> = (0..600u32)
        .map(|i| net(&format!("10.200.{}.{}/32", i / 250, i % 250 + 1)))
        .collect();
    expected.insert(net("10.2.2.0/24"));
    expected.insert(net("10.2.3.0/24"));
    let got: BTreeSet<IpNet> = u.nlri.iter().map(|n| n.prefix).collect();
    assert_eq!(u.nlri.len(), 602);
    assert_eq!(got, expected);
    assert!(u.nlri.iter().all(|n| n.path_id.is_some()));
    // Without the extended message capability the same octets are a Bad Message Length.
    let plain = SessionContext {
        extended_message: false,
        ..v.ctx.clone()
    };
    let err = Message::decode(&v.bytes, &plain).expect_err("5474 octets without RFC 8654");
    let notif = err.notification();
    assert_eq!((notif.code, notif.subcode), (1, 2), "{err}");
}

/// gobgp1 with add-paths to bird1: its own route with path id 1.
#[test]
fn gobgp_add_path_update() {
    assert_update(
        "gobgp/09-update-ipv4-10.3.1.0_24-addpath.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65002]),
                next_hop: Some(ip4("10.0.0.3")),
                med: Some(30),
                communities: vec![comm(65003, 1), comm(65003, 2)],
                large_communities: vec![large(4_200_000_001, 3, 4)],
                ..Default::default()
            },
            vec![n_id("10.3.1.0/24", 1)],
        ),
    );
}

#[test]
fn gobgp_two_octet_update_merges_as4_aggregator() {
    assert_update(
        "gobgp/04-update-ipv4-10.4.3.0_24-2octet.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65002, 65004]),
                next_hop: Some(ip4("10.0.0.3")),
                aggregator: Some(Aggregator {
                    asn: 4_200_000_004,
                    address: ip4("10.0.0.4"),
                }),
                ..Default::default()
            },
            vec![n("10.4.3.0/24")],
        ),
    );
}

/// gobgp1 to bird3 (2-octet) with exabgp1's 10.4.1.0/24 learned through bird1: AS4_PATH
/// after the unknown attribute 0x63 (which bird1 had already marked Partial).
#[test]
fn gobgp_two_octet_update_with_as4_path_and_partial_unknown_attribute() {
    assert_update(
        "gobgp/20-update-ipv4-10.4.1.0_24-2octet.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Egp),
                as_path: path(&[65002, 4_200_000_001, 65004]),
                next_hop: Some(ip4("10.0.0.3")),
                atomic_aggregate: true,
                aggregator: Some(Aggregator {
                    asn: 65004,
                    address: ip4("10.0.0.4"),
                }),
                communities: vec![comm(65004, 1), comm(65004, 2)],
                ext_communities: vec![ext_as2(2, 65004, 1), ext_as2(3, 65004, 2)],
                large_communities: vec![large(65004, 1, 1)],
                unknown: vec![RawAttribute {
                    flags: 0xe0,
                    type_code: 0x63,
                    value: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
                }],
                ..Default::default()
            },
            vec![n("10.4.1.0/24")],
        ),
    );
}

/// `gobgp global rib -a ipv6 add 2001:db8:3::/48 community 65003:6` over the iBGP IPv6
/// session: origin incomplete (the CLI default), LOCAL_PREF 100, MP_REACH_NLRI after
/// COMMUNITIES.
#[test]
fn gobgp_ipv6_update() {
    assert_update(
        "gobgp/13-update-ipv6-2001_db8_3___48.hex",
        Update {
            attributes: PathAttributes {
                origin: Some(Origin::Incomplete),
                as_path: Some(AsPath::default()),
                local_pref: Some(100),
                communities: vec![comm(65003, 6)],
                mp_reach: Some(MpReach::new(
                    Family::IPV6_UNICAST,
                    MpNextHop::Ipv6 {
                        global: ip6("2001:db8:ff::3"),
                        link_local: None,
                    },
                    vec![n("2001:db8:3::/48")],
                )),
                ..Default::default()
            },
            ..Default::default()
        },
    );
}

#[test]
fn gobgp_withdrawals() {
    assert_update(
        "gobgp/17-update-ipv6-withdraw-2001_db8_33___48.hex",
        Update {
            attributes: PathAttributes {
                mp_unreach: Some(MpUnreach::new(
                    Family::IPV6_UNICAST,
                    vec![n("2001:db8:33::/48")],
                )),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_update(
        "gobgp/16-update-ipv4-withdraw-10.1.3.0_24.hex",
        Update {
            withdrawn: vec![n("10.1.3.0/24")],
            ..Default::default()
        },
    );
}

/// exabgp1's static route: `origin egp med 40 community [65004:1 65004:2]
/// extended-community [target:65004:1 origin:65004:2] large-community [65004:1:1]
/// atomic-aggregate aggregator (65004:10.0.0.4) attribute [0x63 0xc0 0xdeadbeef]`.
#[test]
fn exabgp_update_with_every_attribute_and_an_unknown_one() {
    assert_update(
        "exabgp/04-update-ipv4-10.4.1.0_24.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Egp),
                as_path: path(&[65004]),
                next_hop: Some(ip4("10.0.0.4")),
                med: Some(40),
                atomic_aggregate: true,
                aggregator: Some(Aggregator {
                    asn: 65004,
                    address: ip4("10.0.0.4"),
                }),
                communities: vec![comm(65004, 1), comm(65004, 2)],
                ext_communities: vec![ext_as2(2, 65004, 1), ext_as2(3, 65004, 2)],
                large_communities: vec![large(65004, 1, 1)],
                // As sent: optional transitive, Partial bit clear.
                unknown: vec![RawAttribute {
                    flags: 0xc0,
                    type_code: 0x63,
                    value: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
                }],
                ..Default::default()
            },
            vec![n("10.4.1.0/24")],
        ),
    );
}

/// `announce attributes next-hop self community [ 65004:99 ] nlri 10.4.100.0/24 ...
/// 10.4.139.0/24`: 40 prefixes in one UPDATE, in the order given.
#[test]
fn exabgp_update_with_40_prefixes() {
    assert_update(
        "exabgp/08-update-ipv4-10.4.100.0_24-and-39-more.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65004]),
                next_hop: Some(ip4("10.0.0.4")),
                communities: vec![comm(65004, 99)],
                ..Default::default()
            },
            (100..140).map(|i| n(&format!("10.4.{i}.0/24"))).collect(),
        ),
    );
}

#[test]
fn exabgp_update_with_four_octet_aggregator() {
    assert_update(
        "exabgp/07-update-ipv4-10.4.3.0_24.hex",
        ipv4_update(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: path(&[65004]),
                next_hop: Some(ip4("10.0.0.4")),
                aggregator: Some(Aggregator {
                    asn: 4_200_000_004,
                    address: ip4("10.0.0.4"),
                }),
                ..Default::default()
            },
            vec![n("10.4.3.0/24")],
        ),
    );
}

// NOTIFICATION ----------------------------------------------------------------------------

/// RFC 9003 shutdown communications as configured in capture.sh (`birdc disable p_g
/// "..."`, `neighbor 10.0.0.6 shutdown message ...`, `gobgp neighbor 10.0.0.6 shutdown
/// --reason ...`) and ExaBGP's `teardown 4` (Administrative Reset with its own text).
#[test]
fn shutdown_communications_from_every_daemon() {
    for (file, subcode, text) in [
        (
            "bird/28-notification-cease-admin-shutdown.hex",
            2,
            "golden vector: bird1 shuts down the session to gobgp1",
        ),
        (
            "bird/29-notification-cease-admin-shutdown.hex",
            2,
            "golden vector: bird2 shuts down the session to frr1",
        ),
        (
            "frr/25-notification-cease-admin-shutdown.hex",
            2,
            "golden vector: frr1 shuts down the session to bird3",
        ),
        (
            "gobgp/18-notification-cease-admin-shutdown.hex",
            2,
            "golden vector: gobgp1 shuts down the session to bird3",
        ),
        (
            "exabgp/10-notification-cease-admin-reset.hex",
            4,
            "Administrative Reset",
        ),
    ] {
        let notif = decode_notification(file);
        let mut data = vec![text.len() as u8];
        data.extend_from_slice(text.as_bytes());
        assert_eq!(notif, Notification::new(6, subcode, &data), "{file}");
        assert_eq!(
            notif.shutdown_message(),
            Some(Ok(text.to_string())),
            "{file}"
        );
    }
}

#[test]
fn notifications_without_data() {
    for (file, code, subcode) in [
        ("bird/30-notification-cease-admin-reset.hex", 6, 4), // birdc restart p_f
        ("bird/31-notification-hold-timer-expired.hex", 4, 0), // exabgp1 stopped, hold time 3
        ("frr/26-notification-cease-admin-reset.hex", 6, 4),  // clear bgp 10.0.0.5
        ("frr/28-notification-cease-peer-deconfigured.hex", 6, 3), // bgpd SIGTERM
        ("gobgp/19-notification-cease-admin-reset.hex", 6, 4), // gobgp neighbor reset
        ("gobgp/21-notification-cease-peer-deconfigured.hex", 6, 3), // gobgpd SIGTERM
    ] {
        assert_eq!(
            decode_notification(file),
            Notification::new(code, subcode, &[]),
            "{file}"
        );
    }
    assert_eq!(
        decode_notification("bird/31-notification-hold-timer-expired.hex"),
        Notification::hold_timer_expired()
    );
}

/// bird2 is configured with the wrong AS for gobgp1 (65003; gobgp1 is 65002): OPEN Message
/// Error / Bad Peer AS, with the received AS as 4 octets of data (BIRD's choice).
#[test]
fn bird_bad_peer_as_notification() {
    assert_eq!(
        decode_notification("bird/08-notification-open-error.hex"),
        Notification::new(2, 2, &65002u32.to_be_bytes())
    );
}

// ROUTE-REFRESH ---------------------------------------------------------------------------

/// `birdc reload in p_f` / `clear bgp 10.0.0.1 soft in` and the enhanced route refresh
/// (RFC 7313) BoRR / EoRR each side sends around its re-advertisement.
#[test]
fn route_refresh_requests_and_enhanced_markers() {
    use RouteRefreshSubtype::{BoRR, EoRR, Request};
    for (file, family, subtype) in [
        (
            "bird/21-route-refresh-ipv4-request.hex",
            Family::IPV4_UNICAST,
            Request,
        ),
        (
            "bird/22-route-refresh-ipv4-borr.hex",
            Family::IPV4_UNICAST,
            BoRR,
        ),
        (
            "bird/23-route-refresh-ipv4-eorr.hex",
            Family::IPV4_UNICAST,
            EoRR,
        ),
        (
            "bird/24-route-refresh-ipv6-borr.hex",
            Family::IPV6_UNICAST,
            BoRR,
        ),
        (
            "bird/25-route-refresh-ipv6-eorr.hex",
            Family::IPV6_UNICAST,
            EoRR,
        ),
        (
            "frr/19-route-refresh-ipv4-borr.hex",
            Family::IPV4_UNICAST,
            BoRR,
        ),
        (
            "frr/20-route-refresh-ipv4-request.hex",
            Family::IPV4_UNICAST,
            Request,
        ),
        (
            "frr/21-route-refresh-ipv6-request.hex",
            Family::IPV6_UNICAST,
            Request,
        ),
        (
            "frr/22-route-refresh-ipv4-eorr.hex",
            Family::IPV4_UNICAST,
            EoRR,
        ),
    ] {
        let rr = decode_route_refresh(file);
        assert_eq!(rr, RouteRefresh::with_subtype(family, subtype), "{file}");
        assert_eq!(rr.family(), family);
    }
}

// KEEPALIVE -------------------------------------------------------------------------------

#[test]
fn keepalives_from_every_daemon() {
    let mut daemons = BTreeSet::new();
    for v in vectors().iter().filter(|v| v.kind == "keepalive") {
        let mut expected = vec![0xff; 16];
        expected.extend_from_slice(&[0, 19, 4]);
        assert_eq!(v.bytes, expected, "{}", v.file);
        assert_eq!(decode(v), Message::Keepalive, "{}", v.file);
        daemons.insert(v.file.split('/').next().unwrap().to_string());
    }
    assert_eq!(daemons.len(), 4, "keepalive vectors from {daemons:?}");
}
