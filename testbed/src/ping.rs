//! Pod-to-pod reachability: a table of loss and round-trip time.

use std::fmt;

use crate::cmd::run_unchecked;
use crate::error::{Error, Result};
use crate::state::LabState;

/// One ping run.
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    /// Source pod (`node.pod`).
    pub from: String,
    /// Destination pod (`node.pod`).
    pub to: String,
    /// Destination address.
    pub to_ip: String,
    /// Echo requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// Average RTT in ms (none if nothing came back).
    pub rtt_avg_ms: Option<f64>,
}

impl PingResult {
    /// Loss in percent.
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            100.0
        } else {
            100.0 * f64::from(self.sent.saturating_sub(self.received)) / f64::from(self.sent)
        }
    }
}

/// Parses iputils `ping -q` output into (sent, received, avg rtt).
pub fn parse_ping(text: &str) -> Option<(u32, u32, Option<f64>)> {
    let stats = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut sent = None;
    let mut recv = None;
    for part in stats.split(',') {
        let mut w = part.split_whitespace();
        let n = w.next().and_then(|x| x.parse::<u32>().ok());
        match w.next() {
            Some("packets") => sent = n,
            Some("received") => recv = n,
            _ => {}
        }
    }
    let avg = text
        .lines()
        .find(|l| l.starts_with("rtt ") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|a| a.parse::<f64>().ok());
    Some((sent?, recv?, avg))
}

/// Pings `ip` from namespace `ns` `count` times (0.2 s apart, 1 s timeout each).
pub fn ping(ns: &str, ip: &str, count: u32) -> Result<(u32, u32, Option<f64>)> {
    let out = run_unchecked(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "ping",
            "-q",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            ip,
        ],
        &[],
        None,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| Error::Parse {
        what: format!("ping {ip} in {ns}"),
        msg: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
    })
}

/// Every pod to every other pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PingMatrix {
    /// Results, row-major by source pod.
    pub results: Vec<PingResult>,
}

impl PingMatrix {
    /// True when every pair answered every echo.
    pub fn all_ok(&self) -> bool {
        self.results
            .iter()
            .all(|r| r.sent > 0 && r.received == r.sent)
    }
}

impl fmt::Display for PingMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {:<24} {:<18} {:>6} {:>10}",
            "FROM", "TO", "ADDRESS", "LOSS", "RTT(ms)"
        )?;
        for r in &self.results {
            writeln!(
                f,
                "{:<24} {:<24} {:<18} {:>5.0}% {:>10}",
                r.from,
                r.to,
                r.to_ip,
                r.loss_pct(),
                r.rtt_avg_ms
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "-".into())
            )?;
        }
        Ok(())
    }
}

/// Pings every pod of a lab from every other pod.
pub fn matrix(st: &LabState, count: u32) -> Result<PingMatrix> {
    let mut results = Vec::new();
    for a in &st.pods {
        for b in &st.pods {
            if a.netns == b.netns {
                continue;
            }
            let Some(ip) = crate::cni::pod_ip(b) else {
                continue;
            };
            let ip = ip.to_string();
            let (sent, received, rtt) = ping(&a.netns, &ip, count)?;
            results.push(PingResult {
                from: format!("{}.{}", a.node, a.name),
                to: format!("{}.{}", b.node, b.name),
                to_ip: ip,
                sent,
                received,
                rtt_avg_ms: rtt,
            });
        }
    }
    Ok(PingMatrix { results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iputils() {
        let t = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\n--- 10.0.0.2 ping statistics ---\n3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\nrtt min/avg/max/mdev = 0.041/0.052/0.063/0.011 ms\n";
        assert_eq!(parse_ping(t), Some((3, 2, Some(0.052))));
        let t = "--- x ping statistics ---\n2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1ms\n";
        assert_eq!(parse_ping(t), Some((2, 0, None)));
        assert_eq!(parse_ping("garbage"), None);
    }
}
