//! Shared helpers for the netns integration tests: namespaces with Drop guards, a
//! "host" namespace standing in for the node, the plugin runner and a result checker.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

pub const HOST_LOCAL: &str = "/usr/lib/cni/host-local";
pub const REF_PLUGINS: &str = "/usr/lib/cni";
/// The address of the test "host" (node) namespace.
pub const HOST_IP: &str = "10.99.0.1";

/// Why netns tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    if !Path::new(HOST_LOCAL).exists() {
        return Some(format!(
            "{HOST_LOCAL} missing (install containernetworking-plugins)"
        ));
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 `ip` missing".into());
    }
    None
}

/// Skip the calling test with a printed reason.
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if let Some(r) = common::skip_reason() {
            eprintln!("skipping: {r}");
            return;
        }
    };
}

/// Run a command, panicking with its output on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command, returning success and combined output.
pub fn try_sh(args: &[&str]) -> (bool, String) {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name (pid + counter) with `prefix`.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}x{n}", std::process::id())
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        Netns { name }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip netns exec <ns> args...`
    pub fn exec(&self, args: &[&str]) -> (bool, String) {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        try_sh(&v)
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The test's stand-in for a node: lo up, an uplink veth with 10.99.0.1/24 and a
/// default route (proxy ARP only answers for destinations routed elsewhere), IPv6
/// forwarding on (the agent's job on a real node).
pub fn host_ns() -> Netns {
    let h = Netns::new("wrh");
    h.ip(&["link", "set", "lo", "up"]);
    h.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    h.ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", "up0"]);
    h.ip(&["-6", "addr", "add", "fd99::1/64", "dev", "up0", "nodad"]);
    h.ip(&["link", "set", "up0", "up"]);
    h.ip(&["link", "set", "up1", "up"]);
    h.ip(&["route", "add", "default", "via", "10.99.0.2", "dev", "up0"]);
    h.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    h
}

/// A temporary wren dir (with node.json) and IPAM data dir.
#[derive(Debug)]
pub struct Dirs {
    pub tmp: tempfile::TempDir,
}

impl Dirs {
    pub fn new(pod_cidrs: &[&str], mtu: u32) -> Dirs {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("wren")).expect("mkdir");
        std::fs::write(
            tmp.path().join("wren/node.json"),
            json!({"nodeName": "n1", "podCIDRs": pod_cidrs, "mtu": mtu, "encapsulation": "none"})
                .to_string(),
        )
        .expect("node.json");
        Dirs { tmp }
    }
    pub fn wren_dir(&self) -> PathBuf {
        self.tmp.path().join("wren")
    }
    pub fn ipam_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }
    /// host-local's store for network `net`.
    pub fn store(&self, net: &str) -> PathBuf {
        self.ipam_dir().join(net)
    }
    /// IP files in host-local's store.
    pub fn allocations(&self, net: &str) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.store(net)) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect()
    }
    /// A wren network config for `version` using host-local with usePodCidr.
    pub fn conf(&self, net: &str, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": net,
            "type": "wren",
            "wren_dir": self.wren_dir(),
            "log_level": "debug",
            "ipam": {"type": "host-local", "subnet": "usePodCidr", "dataDir": self.ipam_dir()},
        })
    }
}

/// The `wren` binary under test.
pub fn wren_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wren"))
}

/// A directory with `wren` (symlinked) for CNI_PATH, plus extra fake plugins.
pub fn plugin_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(wren_bin(), d.path().join("wren")).expect("symlink");
    d
}

/// Write an executable script into `dir`.
pub fn write_script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The result of one plugin run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?} / stderr {}",
                self.stdout, self.stderr
            )
        })
    }
    pub fn expect_ok(self) -> Run {
        assert!(
            self.ok,
            "plugin failed: stdout {} stderr {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn err_code(&self) -> u64 {
        assert!(!self.ok, "plugin unexpectedly succeeded: {}", self.stdout);
        self.json()["code"].as_u64().expect("error code")
    }
}

/// One invocation of a CNI plugin `bin` inside network namespace `host` (the node).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub host: &'a str,
    pub bin: PathBuf,
    pub cmd: &'a str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
}

impl<'a> Call<'a> {
    pub fn new(host: &'a Netns, cmd: &'a str, container_id: &str, netns: &str) -> Call<'a> {
        Call {
            host: &host.name,
            bin: wren_bin(),
            cmd,
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: "eth0".into(),
            args: format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME={container_id}"),
            path: REF_PLUGINS.into(),
        }
    }

    pub fn run(&self, conf: &Value) -> Run {
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.host])
            .arg(&self.bin)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", self.cmd)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_ARGS", &self.args)
            .env("CNI_PATH", &self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plugin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(conf.to_string().as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait plugin");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `conf` with `prevResult` set.
pub fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

fn is_cidr(s: &str) -> bool {
    s.parse::<ipnet::IpNet>().is_ok()
}

fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

fn is_mac(s: &str) -> bool {
    s.split(':').count() == 6
        && s.split(':')
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

/// Check a result object against the CNI spec's result schema for `version`:
/// required fields, types, index bounds, per-version fields. Returns every problem.
pub fn validate_result(v: &Value, version: &str) -> Vec<String> {
    let mut p = Vec::new();
    let Some(o) = v.as_object() else {
        return vec!["result is not an object".into()];
    };
    let pre1 = version.starts_with("0.");
    if o.get("cniVersion").and_then(Value::as_str) != Some(version) {
        p.push(format!("cniVersion {:?} != {version}", o.get("cniVersion")));
    }
    let allowed = ["cniVersion", "interfaces", "ips", "routes", "dns"];
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            p.push(format!("unexpected top-level key {k}"));
        }
    }
    let ifaces = o.get("interfaces").map(|x| x.as_array().cloned());
    let n_if = match &ifaces {
        Some(Some(a)) => a.len(),
        Some(None) => {
            p.push("interfaces is not an array".into());
            0
        }
        None => 0,
    };
    for (i, it) in ifaces.flatten().unwrap_or_default().iter().enumerate() {
        match it.as_object() {
            None => p.push(format!("interfaces[{i}] is not an object")),
            Some(io) => {
                if !io.get("name").is_some_and(Value::is_string) {
                    p.push(format!("interfaces[{i}].name missing or not a string"));
                }
                if let Some(m) = io.get("mac") {
                    if !m.as_str().is_some_and(is_mac) {
                        p.push(format!("interfaces[{i}].mac {m} is not a MAC"));
                    }
                }
                if let Some(s) = io.get("sandbox") {
                    if !s.is_string() {
                        p.push(format!("interfaces[{i}].sandbox not a string"));
                    }
                }
                if let Some(m) = io.get("mtu") {
                    if version != "1.1.0" || !m.is_u64() {
                        p.push(format!(
                            "interfaces[{i}].mtu not allowed/valid for {version}"
                        ));
                    }
                }
                for k in io.keys() {
                    if !["name", "mac", "sandbox", "mtu", "socketPath", "pciID"]
                        .contains(&k.as_str())
                    {
                        p.push(format!("interfaces[{i}] unexpected key {k}"));
                    }
                }
            }
        }
    }
    match o.get("ips").map(Value::as_array) {
        Some(None) => p.push("ips is not an array".into()),
        None => {}
        Some(Some(ips)) => {
            for (i, it) in ips.iter().enumerate() {
                let Some(io) = it.as_object() else {
                    p.push(format!("ips[{i}] is not an object"));
                    continue;
                };
                let addr = io.get("address").and_then(Value::as_str);
                if !addr.is_some_and(is_cidr) {
                    p.push(format!("ips[{i}].address missing or not CIDR"));
                }
                if let Some(g) = io.get("gateway") {
                    if !g.as_str().is_some_and(is_ip) {
                        p.push(format!("ips[{i}].gateway not an IP"));
                    }
                }
                if let Some(ix) = io.get("interface") {
                    if ix.as_u64().is_none_or(|x| (x as usize) >= n_if) {
                        p.push(format!(
                            "ips[{i}].interface {ix} out of range ({n_if} interfaces)"
                        ));
                    }
                }
                match (pre1, io.get("version").and_then(Value::as_str)) {
                    (true, Some(fam)) => {
                        let want = if addr.is_some_and(|a| a.contains(':')) {
                            "6"
                        } else {
                            "4"
                        };
                        if fam != want {
                            p.push(format!("ips[{i}].version {fam} != {want}"));
                        }
                    }
                    (true, None) => p.push(format!("ips[{i}].version required for {version}")),
                    (false, Some(_)) => {
                        p.push(format!("ips[{i}].version not allowed for {version}"))
                    }
                    (false, None) => {}
                }
            }
        }
    }
    match o.get("routes").map(Value::as_array) {
        Some(None) => p.push("routes is not an array".into()),
        None => {}
        Some(Some(rs)) => {
            for (i, r) in rs.iter().enumerate() {
                if !r.get("dst").and_then(Value::as_str).is_some_and(is_cidr) {
                    p.push(format!("routes[{i}].dst missing or not CIDR"));
                }
                if let Some(g) = r.get("gw") {
                    if !g.as_str().is_some_and(is_ip) {
                        p.push(format!("routes[{i}].gw not an IP"));
                    }
                }
            }
        }
    }
    if let Some(d) = o.get("dns") {
        if !d.is_object() {
            p.push("dns is not an object".into());
        }
    }
    p
}

/// Links of a namespace whose name starts with `prefix`.
pub fn links_with_prefix(ns: &Netns, prefix: &str) -> Vec<String> {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Poll `f` until it returns true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    f()
}
