//! ExaBGP 4: config generator with an API relay, and queries over the relay's
//! `received.jsonl` (one JSON event per line). ExaBGP never listens: it always connects, so
//! its peers must accept. It installs no kernel routes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;

use super::{log_tail, BgpDaemon, BgpPeer, BgpSpeaker, Originate, RibRoute, READY_TIMEOUT};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::process::Process;
use crate::wait::wait_until;

/// Where a containerlab node binds its ExaBGP config; the local backend reads it from there.
pub const CONFIG_BIND: &str = "/etc/exabgp/exabgp.conf";

const RELAY: &str = r#"#!/usr/bin/python3
# ExaBGP API relay: lines appended to argv[1] go to ExaBGP, ExaBGP's events go to argv[2].
# stdin is read with os.read, not sys.stdin.readline: a buffered readline can pull several
# events into Python's buffer while select() then sees an empty pipe, and those events
# would wait for the next message (possibly for ever).
import os, select, sys
cmds = open(sys.argv[1], 'a+'); cmds.seek(0)
out = open(sys.argv[2], 'a', buffering=1)
fd = sys.stdin.fileno()
buf = b''
while True:
    line = cmds.readline()
    if line:
        sys.stdout.write(line); sys.stdout.flush(); continue
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        data = os.read(fd, 65536)
        if not data: break
        buf += data
        while b'\n' in buf:
            msg, buf = buf.split(b'\n', 1)
            out.write(msg.decode('utf-8', 'replace') + '\n')
"#;

/// Renders an ExaBGP config for `s` whose API relay lives in `dir`.
pub fn render(s: &BgpSpeaker, dir: &Path) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "process relay {{");
    let _ = writeln!(c, "    run {d}/relay.py {d}/commands {d}/received.jsonl;");
    let _ = writeln!(c, "    encoder json;");
    let _ = writeln!(c, "}}");
    for p in &s.peers {
        let _ = writeln!(c, "neighbor {} {{", p.address);
        let _ = writeln!(c, "    router-id {};", s.router_id);
        let _ = writeln!(c, "    local-address {};", s.local_for(p));
        let _ = writeln!(c, "    local-as {};", s.asn);
        let _ = writeln!(c, "    peer-as {};", p.asn);
        if let Some(pw) = &p.password {
            let _ = writeln!(c, "    md5-password \"{}\";", pw.replace('"', ""));
        }
        if s.graceful_restart {
            let _ = writeln!(
                c,
                "    capability {{ graceful-restart {}; }}",
                s.restart_time.unwrap_or(120)
            );
        }
        let fam = if p.is_v6() { "ipv6" } else { "ipv4" };
        let _ = writeln!(c, "    family {{ {fam} unicast; }}");
        let _ = writeln!(
            c,
            "    api {{ processes [ relay ]; receive {{ parsed; update; }} neighbor-changes; }}"
        );
        let mine: Vec<&Originate> = s.originated(p.is_v6()).collect();
        if !mine.is_empty() {
            let _ = writeln!(c, "    static {{");
            for o in mine {
                let _ = writeln!(c, "        {};", route_spec(o));
            }
            let _ = writeln!(c, "    }}");
        }
        let _ = writeln!(c, "}}");
    }
    c
}

/// `route PREFIX next-hop self [med N] [community [..]] [large-community [..]]`: the
/// ExaBGP syntax for an originated prefix, in the config and in `announce` commands.
pub fn route_spec(o: &Originate) -> String {
    let mut r = format!("route {} next-hop self", o.prefix);
    if let Some(m) = o.med {
        let _ = write!(r, " med {m}");
    }
    if !o.communities.is_empty() {
        let l: Vec<String> = o
            .communities
            .iter()
            .map(|(a, v)| format!("{a}:{v}"))
            .collect();
        let _ = write!(r, " community [ {} ]", l.join(" "));
    }
    if !o.large_communities.is_empty() {
        let l: Vec<String> = o
            .large_communities
            .iter()
            .map(|(g, a, b)| format!("{g}:{a}:{b}"))
            .collect();
        let _ = write!(r, " large-community [ {} ]", l.join(" "));
    }
    r
}

/// Checks an ExaBGP config (`exabgp --validate`; takes about a second).
pub fn check_config(conf: &Path) -> Result<()> {
    let c = conf.display().to_string();
    crate::cmd::run_with(
        "env",
        &["exabgp.api.cli=false", "exabgp", "--validate", c.as_str()],
        &[],
        None,
    )
    .map(|_| ())
    .map_err(|e| Error::Usage(format!("ExaBGP config {c} is invalid: {e}")))
}

/// A running ExaBGP.
#[derive(Debug)]
pub struct Exabgp {
    node: String,
    dir: PathBuf,
    procs: Vec<Process>,
}

impl Exabgp {
    /// Renders `s` (with the relay), starts ExaBGP on `node` and waits for its PID file.
    pub fn start(lab: &Lab, node: &str, s: &BgpSpeaker) -> Result<Exabgp> {
        if s.kernel_export {
            return Err(Error::Usage(format!(
                "node {node}: ExaBGP installs no kernel routes; turn kernel_export off"
            )));
        }
        let dir = lab.work_dir(node, "exabgp")?;
        Self::start_in(lab, node, &render(s, &dir), dir)
    }

    /// Starts ExaBGP with a config text. The relay script, `commands` and `received.jsonl`
    /// are prepared in the daemon directory either way; a hand-written config uses them by
    /// naming `<dir>/relay.py` in a `process` block.
    pub fn start_with_config(lab: &Lab, node: &str, config: &str) -> Result<Exabgp> {
        let dir = lab.work_dir(node, "exabgp")?;
        Self::start_in(lab, node, config, dir)
    }

    fn start_in(lab: &Lab, node: &str, config: &str, dir: PathBuf) -> Result<Exabgp> {
        let relay = dir.join("relay.py");
        std::fs::write(&relay, RELAY).map_err(|e| Error::io(&relay, e))?;
        std::fs::set_permissions(&relay, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(&relay, e))?;
        for f in ["commands", "received.jsonl"] {
            let p = dir.join(f);
            std::fs::write(&p, "").map_err(|e| Error::io(&p, e))?;
        }
        let conf = dir.join("exabgp.conf");
        std::fs::write(&conf, config).map_err(|e| Error::io(&conf, e))?;
        let pid = dir.join("exabgp.pid");
        let argv: Vec<String> = vec![
            "env".into(),
            "exabgp.daemon.daemonize=false".into(),
            "exabgp.daemon.user=root".into(),
            format!("exabgp.daemon.pid={}", pid.display()),
            "exabgp.api.cli=false".into(),
            "exabgp.log.destination=stdout".into(),
            "exabgp".into(),
            conf.display().to_string(),
        ];
        let p = lab.spawn_logged(node, "exabgp", &argv, &[], &dir.join("exabgp.log"))?;
        let mut x = Exabgp {
            node: node.to_string(),
            dir,
            procs: vec![p],
        };
        wait_until(format!("ExaBGP on {node} to start"), READY_TIMEOUT, || {
            if let Some(p) = x.procs.first_mut() {
                if !p.is_running() {
                    return Err(Error::Usage(format!("exabgp exited: {}", log_tail(p))));
                }
            }
            Ok(std::fs::read_to_string(&pid).is_ok_and(|s| !s.trim().is_empty()))
        })?;
        Ok(x)
    }

    /// Sends an API command (`announce route ...`, `withdraw route ...`).
    pub fn command(&self, line: &str) -> Result<()> {
        let p = self.dir.join("commands");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        writeln!(f, "{}", line.trim_end()).map_err(|e| Error::io(&p, e))
    }

    /// Every event ExaBGP reported so far.
    pub fn events(&self) -> Result<Vec<Value>> {
        let p = self.dir.join("received.jsonl");
        let t = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        Ok(t.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect())
    }

    /// Is the session with `addr` up (last state event for that peer is `up`)?
    pub fn session_established(&self, addr: IpAddr) -> Result<bool> {
        Ok(last_states(&self.events()?)
            .get(&addr.to_string())
            .map(String::as_str)
            == Some("up"))
    }

    /// The daemon directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Gives up ownership of the process.
    pub fn into_processes(mut self) -> Vec<Process> {
        std::mem::take(&mut self.procs)
    }
}

fn peer_of(ev: &Value) -> Option<String> {
    ev.get("neighbor")?
        .get("address")?
        .get("peer")?
        .as_str()
        .map(str::to_string)
}

/// Last `state` per peer address.
pub fn last_states(events: &[Value]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for ev in events {
        if ev.get("type").and_then(Value::as_str) == Some("state") {
            if let (Some(p), Some(s)) = (
                peer_of(ev),
                ev.get("neighbor")
                    .and_then(|n| n.get("state"))
                    .and_then(Value::as_str),
            ) {
                m.insert(p, s.to_string());
            }
        }
    }
    m
}

/// Replays announce/withdraw events into the current Adj-RIB-In (every path counts as best).
pub fn replay_routes(events: &[Value]) -> Vec<RibRoute> {
    let mut rib: BTreeMap<(String, IpNet), RibRoute> = BTreeMap::new();
    for ev in events {
        if ev.get("type").and_then(Value::as_str) != Some("update") {
            continue;
        }
        let Some(peer) = peer_of(ev) else { continue };
        let Some(upd) = ev
            .get("neighbor")
            .and_then(|n| n.get("message"))
            .and_then(|m| m.get("update"))
        else {
            continue;
        };
        let attrs = upd.get("attribute");
        let as_path: Vec<u32> = attrs
            .and_then(|a| a.get("as-path"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect()
            })
            .unwrap_or_default();
        let mut template = RibRoute {
            best: true,
            as_path,
            from: peer.clone(),
            ..RibRoute::default()
        };
        if let Some(a) = attrs {
            fill_attrs(&mut template, a);
        }
        for fam in ["ipv4 unicast", "ipv6 unicast"] {
            if let Some(w) = upd
                .get("withdraw")
                .and_then(|w| w.get(fam))
                .and_then(Value::as_array)
            {
                for n in w {
                    if let Some(p) = n
                        .get("nlri")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                    {
                        rib.remove(&(peer.clone(), p));
                    }
                }
            }
            if let Some(a) = upd
                .get("announce")
                .and_then(|a| a.get(fam))
                .and_then(Value::as_object)
            {
                for (nh, nlris) in a {
                    for n in nlris.as_array().into_iter().flatten() {
                        if let Some(p) = n
                            .get("nlri")
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<IpNet>().ok())
                        {
                            rib.insert(
                                (peer.clone(), p),
                                RibRoute {
                                    prefix: p,
                                    next_hop: nh.parse().ok(),
                                    ..template.clone()
                                },
                            );
                        }
                    }
                }
            }
        }
    }
    rib.into_values().collect()
}

/// ExaBGP's parsed attributes: `med`, `community` `[[a, b]]`, `large-community`
/// `[[g, l1, l2]]`, `originator-id`, `cluster-list`, unknown ones as
/// `"attribute-0x63-0xC0": "0xDEADBEEF"`.
fn fill_attrs(r: &mut RibRoute, a: &Value) {
    let tuples = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .map(|t| {
                t.iter()
                    .map(|x| x.as_u64().map(|n| n.to_string()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .collect()
    };
    r.med = a
        .get("med")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok());
    r.communities = tuples(a.get("community"));
    r.large_communities = tuples(a.get("large-community"));
    r.originator_id = a
        .get("originator-id")
        .and_then(Value::as_str)
        .map(str::to_string);
    r.cluster_list = a
        .get("cluster-list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if let Some(m) = a.as_object() {
        for (k, v) in m {
            let Some(rest) = k.strip_prefix("attribute-0x") else {
                continue;
            };
            let code = rest.split('-').next().unwrap_or("");
            if let (Ok(code), Some(v)) = (u8::from_str_radix(code, 16), v.as_str()) {
                r.unknown
                    .push((code, v.trim_start_matches("0x").to_lowercase()));
            }
        }
    }
}

impl BgpDaemon for Exabgp {
    fn kind(&self) -> &'static str {
        "exabgp"
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn peer_established(&self, peer: &BgpPeer) -> Result<bool> {
        self.session_established(peer.address)
    }
    fn rib(&self) -> Result<Vec<RibRoute>> {
        Ok(replay_routes(&self.events()?))
    }
    fn processes(&self) -> &[Process] {
        &self.procs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_forwards_every_event_of_one_burst() {
        if !Path::new("/usr/bin/python3").exists() {
            eprintln!("skipping: python3 not installed");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let relay = d.path().join("relay.py");
        std::fs::write(&relay, RELAY).unwrap();
        let cmds = d.path().join("commands");
        let out = d.path().join("out.jsonl");
        std::fs::write(&cmds, "").unwrap();
        let mut child = std::process::Command::new("/usr/bin/python3")
            .arg(&relay)
            .arg(&cmds)
            .arg(&out)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Three events in one write, then silence: all three must come out.
        stdin
            .write_all(b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
            .unwrap();
        stdin.flush().unwrap();
        let r = crate::wait::wait_until(
            "3 relayed events",
            std::time::Duration::from_secs(5),
            || {
                Ok(std::fs::read_to_string(&out)
                    .unwrap_or_default()
                    .lines()
                    .count()
                    == 3)
            },
        );
        drop(stdin);
        let _ = child.wait();
        r.unwrap();
    }

    #[test]
    fn replays_events() {
        let lines = [
            r#"{"type":"state","neighbor":{"address":{"local":"10.0.0.4","peer":"10.0.0.1"},"state":"connected"}}"#,
            r#"{"type":"state","neighbor":{"address":{"local":"10.0.0.4","peer":"10.0.0.1"},"state":"up"}}"#,
            r#"{"type":"update","neighbor":{"address":{"peer":"10.0.0.1"},"message":{"update":{"attribute":{"origin":"igp","as-path":[65001]},"announce":{"ipv4 unicast":{"10.0.0.1":[{"nlri":"10.10.1.0/24"},{"nlri":"10.10.9.0/24"}]}}}}}}"#,
            r#"{"type":"update","neighbor":{"address":{"peer":"10.0.0.1"},"message":{"update":{"withdraw":{"ipv4 unicast":[{"nlri":"10.10.9.0/24"}]}}}}}"#,
            r#"{"type":"update","neighbor":{"address":{"peer":"10.0.0.1"},"message":{"eor":{"afi":"ipv4","safi":"unicast"}}}}"#,
        ];
        let ev: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(last_states(&ev).get("10.0.0.1").unwrap(), "up");
        let r = replay_routes(&ev);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].prefix.to_string(), "10.10.1.0/24");
        assert_eq!(r[0].next_hop, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r[0].as_path, vec![65001]);
    }
}
