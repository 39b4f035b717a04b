//! `wren-cni-bench`: ADD+DEL latency of `wren` and of the reference `ptp` plugin, both
//! with the same host-local IPAM, in the same run, pod by pod alternately.
//!
//! Runs as root. Creates a "host" network namespace standing in for the node and one
//! namespace per pod (all deleted at the end); the benchmark process moves into the
//! host namespace so the plugins it executes run there. Prints a table and writes a
//! CSV (`--csv`, default `wren-cni-bench.csv`).
//!
//! ```text
//! cargo build -p wren-cni --release
//! sudo target/release/wren-cni-bench --pods 200
//! sudo target/release/wren-cni-bench --pods 200 --wren-conf deferred_teardown=true
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use serde_json::json;

struct Opts {
    pods: usize,
    csv: PathBuf,
    wren: PathBuf,
    plugins: PathBuf,
    extra_wren: Vec<(String, serde_json::Value)>,
}

fn usage() -> ! {
    eprintln!(
        "usage: wren-cni-bench [--pods N] [--csv FILE] [--wren PATH] [--plugins DIR] [--wren-conf KEY=JSON]..."
    );
    std::process::exit(2);
}

fn parse_opts() -> Result<Opts> {
    let exe = std::env::current_exe()?;
    let mut o = Opts {
        pods: 200,
        csv: PathBuf::from("wren-cni-bench.csv"),
        wren: exe.with_file_name("wren"),
        plugins: PathBuf::from("/usr/lib/cni"),
        extra_wren: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--pods" => o.pods = val().parse().context("--pods")?,
            "--csv" => o.csv = PathBuf::from(val()),
            "--wren" => o.wren = PathBuf::from(val()),
            "--plugins" => o.plugins = PathBuf::from(val()),
            "--wren-conf" => {
                let kv = val();
                let (k, v) = kv.split_once('=').unwrap_or_else(|| usage());
                o.extra_wren.push((
                    k.to_string(),
                    serde_json::from_str(v).context("--wren-conf value")?,
                ));
            }
            _ => usage(),
        }
    }
    Ok(o)
}

fn sh(args: &[&str]) -> Result<()> {
    let (cmd, rest) = args.split_first().context("empty command")?;
    let st = Command::new(cmd)
        .args(rest)
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("{args:?} failed");
    }
    Ok(())
}

/// Namespaces created by the benchmark, deleted on drop.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn invoke(bin: &Path, cmd: &str, id: &str, netns: &str, path: &Path, conf: &[u8]) -> Result<f64> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={id}"),
        )
        .env("CNI_PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    child.stdin.take().context("stdin")?.write_all(conf)?;
    let out = child.wait_with_output()?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!(
            "{} {cmd} {id} failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(ms)
}

/// Is any process running the binary `exe`?
fn wren_running(exe: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p == exe))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() as f64)).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mean = s.iter().sum::<f64>() / (s.len().max(1) as f64);
    (percentile(&s, 50.0), percentile(&s, 99.0), mean)
}

fn main() -> Result<()> {
    let o = parse_opts()?;
    if !nix::unistd::Uid::effective().is_root() {
        bail!("wren-cni-bench must run as root (it creates network namespaces)");
    }
    let ptp = o.plugins.join("ptp");
    for p in [&o.wren, &ptp, &o.plugins.join("host-local")] {
        if !p.exists() {
            bail!("{} is missing (build wren with `cargo build -p wren-cni --release`; install containernetworking-plugins)", p.display());
        }
    }
    let tmp = tempfile::tempdir()?;
    let tag = std::process::id();
    let host = format!("wrbh{tag}");
    let mut nss = Namespaces(Vec::new());
    sh(&["ip", "netns", "add", &host])?;
    nss.0.push(host.clone());
    sh(&["ip", "-n", &host, "link", "set", "lo", "up"])?;
    // One namespace per pod and plugin.
    let pods: Vec<String> = (0..2 * o.pods).map(|i| format!("wrbp{tag}x{i}")).collect();
    for p in &pods {
        sh(&["ip", "netns", "add", p])?;
        nss.0.push(p.clone());
    }
    // Plugins inherit this thread's network namespace: run them "on the node".
    let back = File::open("/proc/thread-self/ns/net")?;
    setns(
        File::open(format!("/run/netns/{host}"))?,
        CloneFlags::CLONE_NEWNET,
    )
    .context("setns into the host namespace")?;

    let ipam = |subnet: &str| json!({"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": tmp.path().join("ipam")});
    let mut wren_conf = json!({"cniVersion": "1.0.0", "name": "bench-wren", "type": "wren", "mtu": 1500,
        "wren_dir": tmp.path(), "ipam": ipam("10.250.0.0/16")});
    if let Some(obj) = wren_conf.as_object_mut() {
        for (k, v) in &o.extra_wren {
            obj.insert(k.clone(), v.clone());
        }
    }
    let ptp_conf = json!({"cniVersion": "1.0.0", "name": "bench-ptp", "type": "ptp", "mtu": 1500, "ipMasq": false,
        "ipam": ipam("10.251.0.0/16")});
    let wren_bytes = serde_json::to_vec(&wren_conf)?;
    let ptp_bytes = serde_json::to_vec(&ptp_conf)?;
    let path = o.plugins.clone();

    // Warm-up (page cache, first exec), not measured.
    for (k, (bin, conf)) in [(&o.wren, &wren_bytes), (&ptp, &ptp_bytes)]
        .into_iter()
        .enumerate()
    {
        let ns = format!("/run/netns/{}", pods.get(k).context("--pods 0")?);
        invoke(bin, "ADD", "warmup", &ns, &path, conf)?;
        invoke(bin, "DEL", "warmup", &ns, &path, conf)?;
    }
    // Let any deferred teardown of the warm-up finish before measuring.
    std::thread::sleep(std::time::Duration::from_millis(200));

    let wren_exe = std::fs::canonicalize(&o.wren)?;
    // rows: plugin, pod, ADD ms, DEL ms, ms from DEL start until the teardown finished.
    let mut rows: Vec<(&str, usize, f64, f64, f64)> = Vec::new();
    for (i, pair) in pods.chunks(2).enumerate() {
        let [wren_ns, ptp_ns] = pair else { break };
        let id = format!("pod{i}");
        // Alternate which plugin goes first so neither always runs on a cold cache.
        let mut order = [
            ("wren", &o.wren, &wren_bytes, wren_ns),
            ("ptp", &ptp, &ptp_bytes, ptp_ns),
        ];
        if i % 2 == 1 {
            order.reverse();
        }
        for (name, bin, conf, pod) in order {
            let ns = format!("/run/netns/{pod}");
            let add = invoke(bin, "ADD", &id, &ns, &path, conf)?;
            let start = Instant::now();
            let del = invoke(bin, "DEL", &id, &ns, &path, conf)?;
            // wren leaves the veth to a detached teardown helper (a copy of the wren
            // binary): wait, not counted in DEL, until no wren process is left, so
            // the helper never overlaps the next measurement.
            if name == "wren" {
                let deadline = Instant::now() + std::time::Duration::from_secs(10);
                while wren_running(&wren_exe) {
                    if Instant::now() > deadline {
                        bail!("a wren teardown helper is still running 10 s after DEL of {id}");
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
            let gone = start.elapsed().as_secs_f64() * 1000.0;
            rows.push((name, i, add, del, gone));
        }
    }
    setns(&back, CloneFlags::CLONE_NEWNET)?;

    let mut csv = File::create(&o.csv).with_context(|| format!("create {}", o.csv.display()))?;
    writeln!(csv, "plugin,pod,add_ms,del_ms,total_ms,teardown_ms")?;
    for (n, i, a, d, g) in &rows {
        writeln!(csv, "{n},{i},{a:.3},{d:.3},{:.3},{g:.3}", a + d)?;
    }
    println!(
        "{} pods per plugin, ADD then DEL each, same host-local IPAM; ms, wall clock per exec",
        o.pods
    );
    let deferred = wren_conf.get("deferred_teardown") == Some(&json!(true));
    println!(
        "wren teardown: {}",
        if deferred {
            "deferred (opt-in): DEL returns before the veth is deleted"
        } else {
            "synchronous (default): the veth is gone when DEL returns"
        }
    );
    println!("(teardown: from the start of DEL until the kernel finished deleting the veth:");
    println!(" DEL itself, or until wren's deferred-teardown helper exited)");
    println!(
        "{:<6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>13}",
        "plugin",
        "ADD p50",
        "ADD p99",
        "DEL p50",
        "DEL p99",
        "sum p50",
        "sum p99",
        "sum mean",
        "teardown p50"
    );
    let mut p50 = Vec::new();
    for name in ["wren", "ptp"] {
        let sel: Vec<_> = rows.iter().filter(|r| r.0 == name).collect();
        let add: Vec<f64> = sel.iter().map(|r| r.2).collect();
        let del: Vec<f64> = sel.iter().map(|r| r.3).collect();
        let tot: Vec<f64> = sel.iter().map(|r| r.2 + r.3).collect();
        let gone: Vec<f64> = sel.iter().map(|r| r.4).collect();
        let (g50, _, _) = stats(&gone);
        let (a50, a99, _) = stats(&add);
        let (d50, d99, _) = stats(&del);
        let (t50, t99, tm) = stats(&tot);
        p50.push(t50);
        println!("{name:<6} {a50:>9.2} {a99:>9.2} {d50:>9.2} {d99:>9.2} {t50:>9.2} {t99:>9.2} {tm:>9.2} {g50:>13.2}");
    }
    if let [w, p] = p50[..] {
        println!("wren/ptp ADD+DEL p50 ratio: {:.2} (goal <= 0.50)", w / p);
    }
    println!("CSV: {}", o.csv.display());
    Ok(())
}
