//! The local backend: a topology built from network namespaces, veth pairs and bridges.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::cmd::{ip, ns_exec};
use crate::error::{Error, Result};
use crate::kernel::{self, netns_inode, KernelRoute};
use crate::process::Process;
use crate::state::{
    self, make_dir, process_start_time, LabState, LinkState, NsState, PodState, ProcState,
};
use crate::topology::{Node, NodeKind, Role, Topology};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Name of the bridge device inside a `kind: bridge` node's namespace.
pub const BRIDGE_DEV: &str = "br0";

/// Options for [`Lab::up_with`].
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Start each node's `wren.role` (daemons, `cmd`).
    pub start_roles: bool,
    /// Create the pods of `wren.pods` through CNI.
    pub start_pods: bool,
    /// CNI_PATH for pods (defaults to `/usr/lib/cni` and `/opt/cni/bin`).
    pub cni_path: Vec<PathBuf>,
}

/// A running lab. Dropping it tears everything down (roles, pods, processes in its
/// namespaces, namespaces, state directory), also during a panic's unwinding.
#[derive(Debug)]
pub struct Lab {
    topo: Topology,
    state: Mutex<LabState>,
    roles: Mutex<Vec<Process>>,
    done: bool,
}

/// A fresh per-run prefix `wt<pid-hex><counter-hex>` that no namespace or state dir uses.
pub fn new_prefix() -> String {
    let pid = std::process::id();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = format!("wt{pid:x}{n:x}");
        if state::netns_with_prefix(&p).is_empty() && !state::state_root().join(&p).exists() {
            return p;
        }
    }
}

/// Is this process root (needed for namespaces)?
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For tests: `None` if the lab can run here, or the reason to skip (not root, no `ip`).
pub fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root for network namespaces".into());
    }
    if crate::cmd::run("ip", &["-V"]).is_err() {
        return Some("needs iproute2 (`ip`)".into());
    }
    None
}

impl Lab {
    /// Builds the topology's network (namespaces, links, addresses, sysctls, `exec`); starts
    /// no roles or pods.
    pub fn up(topo: &Topology) -> Result<Lab> {
        Self::up_with(topo, &UpOptions::default())
    }

    /// Builds the network, then optionally starts roles and pods.
    pub fn up_with(topo: &Topology, opts: &UpOptions) -> Result<Lab> {
        if !is_root() {
            return Err(Error::Usage(
                "wren-testbed needs root (network namespaces); run it with sudo".into(),
            ));
        }
        let prefix = new_prefix();
        let st = LabState {
            prefix: prefix.clone(),
            name: topo.name.clone(),
            topology: topo.file.clone(),
            owner_pid: std::process::id(),
            owner_start: process_start_time(std::process::id()),
            detached: false,
            namespaces: Vec::new(),
            links: Vec::new(),
            processes: Vec::new(),
            pods: Vec::new(),
        };
        make_dir(&state::state_root())?;
        make_dir(&st.dir())?;
        st.save()?;
        let mut lab = Lab {
            topo: topo.clone(),
            state: Mutex::new(st),
            roles: Mutex::new(Vec::new()),
            done: false,
        };
        // On error, `lab` is dropped here and removes what was built so far.
        lab.build()?;
        if opts.start_roles {
            lab.start_roles()?;
        }
        if opts.start_pods {
            let cni_path = if opts.cni_path.is_empty() {
                vec![PathBuf::from("/usr/lib/cni"), PathBuf::from("/opt/cni/bin")]
            } else {
                opts.cni_path.clone()
            };
            let pods: Vec<(String, String, PathBuf)> = lab
                .topo
                .nodes
                .values()
                .flat_map(|n| {
                    n.wren.pods.iter().filter_map(move |p| {
                        n.wren
                            .cni_conflist
                            .clone()
                            .map(|c| (n.name.clone(), p.clone(), c))
                    })
                })
                .collect();
            for (node, pod, conf) in pods {
                let text = std::fs::read_to_string(&conf).map_err(|e| Error::io(&conf, e))?;
                // `{{lab_dir}}` lets a conflist keep per-run state (IPAM dataDir) in the lab.
                let text = text.replace("{{lab_dir}}", &lab.dir().display().to_string());
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| Error::Parse {
                        what: conf.display().to_string(),
                        msg: e.to_string(),
                    })?;
                lab.add_pod(&node, &pod, &v, &cni_path)?;
            }
        }
        Ok(lab)
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut LabState) -> T) -> Result<T> {
        let mut g = self
            .state
            .lock()
            .map_err(|_| Error::Usage("lab state lock poisoned".into()))?;
        let r = f(&mut g);
        g.save()?;
        Ok(r)
    }

    fn build(&mut self) -> Result<()> {
        let prefix = self.prefix();
        let nodes: Vec<Node> = self.topo.nodes.values().cloned().collect();
        for n in &nodes {
            let ns = format!("{prefix}-{}", n.name);
            // Record first: a crash between the two steps still leaves a cleanable record.
            self.with_state(|s| {
                s.namespaces.push(NsState {
                    node: n.name.clone(),
                    netns: ns.clone(),
                    kind: match n.kind {
                        NodeKind::Linux => "linux".into(),
                        NodeKind::Bridge => "bridge".into(),
                    },
                    inode: None,
                })
            })?;
            ip(&["netns", "add", &ns])?;
            let ino = netns_inode(&Path::new("/run/netns").join(&ns));
            self.with_state(|s| {
                if let Some(e) = s.namespaces.iter_mut().find(|e| e.netns == ns) {
                    e.inode = ino;
                }
            })?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            match n.kind {
                NodeKind::Bridge => {
                    ip(&["-n", &ns, "link", "add", BRIDGE_DEV, "type", "bridge"])?;
                    ip(&["-n", &ns, "link", "set", BRIDGE_DEV, "up"])?;
                }
                NodeKind::Linux => {
                    let fwd = if n.wren.forwarding { "1" } else { "0" };
                    sysctl(&ns, "net.ipv4.ip_forward", fwd)?;
                    sysctl(&ns, "net.ipv6.conf.all.forwarding", fwd)?;
                }
            }
            for (k, v) in &n.sysctls {
                sysctl(&ns, k, v)?;
            }
        }
        for l in self.topo.links.clone() {
            let ns_a = format!("{prefix}-{}", l.a.node);
            let ns_b = format!("{prefix}-{}", l.b.node);
            let mut args: Vec<String> = vec!["link".into(), "add".into(), l.a.iface.clone()];
            args.extend(["netns".into(), ns_a.clone()]);
            if let Some(m) = &l.a.mac {
                args.extend(["address".into(), m.clone()]);
            }
            if let Some(m) = l.mtu {
                args.extend(["mtu".into(), m.to_string()]);
            }
            args.extend(["type".into(), "veth".into(), "peer".into(), "name".into()]);
            args.extend([l.b.iface.clone(), "netns".into(), ns_b.clone()]);
            if let Some(m) = &l.b.mac {
                args.extend(["address".into(), m.clone()]);
            }
            if let Some(m) = l.mtu {
                args.extend(["mtu".into(), m.to_string()]);
            }
            ip(&args)?;
            self.with_state(|s| {
                s.links.push(LinkState {
                    a: l.a.to_string(),
                    b: l.b.to_string(),
                })
            })?;
            for (ep, ns) in [(&l.a, &ns_a), (&l.b, &ns_b)] {
                let node = self.topo.node(&ep.node)?;
                if node.kind == NodeKind::Bridge {
                    ip(&["-n", ns, "link", "set", &ep.iface, "master", BRIDGE_DEV])?;
                }
                for a in &ep.addrs {
                    ip(&["-n", ns, "addr", "add", &a.to_string(), "dev", &ep.iface])?;
                }
                ip(&["-n", ns, "link", "set", &ep.iface, "up"])?;
            }
        }
        for n in &nodes {
            let ns = format!("{prefix}-{}", n.name);
            let env: Vec<(String, String)> =
                n.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for argv in &n.exec {
                ns_exec(&ns, argv, &env).map_err(|e| {
                    Error::Usage(format!("node {}: exec `{}`: {e}", n.name, argv.join(" ")))
                })?;
            }
        }
        Ok(())
    }

    fn start_roles(&self) -> Result<()> {
        for n in self.topo.nodes.values() {
            let conf = |dst: &str| -> Result<String> {
                let p = n
                    .bind_for(dst)
                    .ok_or_else(|| Error::Usage(format!("node {}: no bind for {dst}", n.name)))?;
                std::fs::read_to_string(p).map_err(|e| Error::io(p, e))
            };
            match &n.wren.role {
                Role::None => {}
                Role::Bird => {
                    let b = crate::daemons::bird::Bird::start_with_config(
                        self,
                        &n.name,
                        &conf(crate::daemons::bird::CONFIG_BIND)?,
                    )?;
                    self.keep(b.into_processes());
                }
                Role::Frr { zebra } => {
                    let f = crate::daemons::frr::Frr::start_with_config(
                        self,
                        &n.name,
                        &conf(crate::daemons::frr::CONFIG_BIND)?,
                        *zebra,
                    )?;
                    self.keep(f.into_processes());
                }
                Role::Gobgp => {
                    let g = crate::daemons::gobgp::Gobgp::start_with_config(
                        self,
                        &n.name,
                        &conf(crate::daemons::gobgp::CONFIG_BIND)?,
                    )?;
                    self.keep(g.into_processes());
                }
                Role::Exabgp => {
                    let x = crate::daemons::exabgp::Exabgp::start_with_config(
                        self,
                        &n.name,
                        &conf(crate::daemons::exabgp::CONFIG_BIND)?,
                    )?;
                    self.keep(x.into_processes());
                }
                Role::Process => {
                    if let Some(cmd) = &n.cmd {
                        let env: Vec<(String, String)> =
                            n.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        let p = self.spawn(&n.name, "cmd", cmd, &env)?;
                        self.keep(vec![p]);
                    }
                }
            }
        }
        Ok(())
    }

    fn keep(&self, procs: Vec<Process>) {
        if let Ok(mut r) = self.roles.lock() {
            r.extend(procs);
        }
    }

    /// The topology this lab was built from.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The per-run prefix (namespaces are `<prefix>-<node>`).
    pub fn prefix(&self) -> String {
        self.state
            .lock()
            .map(|s| s.prefix.clone())
            .unwrap_or_default()
    }

    /// A copy of the lab's record.
    pub fn state(&self) -> LabState {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The lab's directory (`/run/wren-testbed/<prefix>`).
    pub fn dir(&self) -> PathBuf {
        self.state().dir()
    }

    /// The namespace of a node.
    pub fn netns(&self, node: &str) -> Result<String> {
        self.topo.node(node)?;
        Ok(format!("{}-{node}", self.prefix()))
    }

    /// A per-node working directory `<lab dir>/<node>/<sub>` (mode 0711), created on demand.
    pub fn work_dir(&self, node: &str, sub: &str) -> Result<PathBuf> {
        self.topo.node(node)?;
        let d = self.dir().join(node);
        make_dir(&d)?;
        let d = d.join(sub);
        make_dir(&d)?;
        Ok(d)
    }

    /// Runs a command in a node's namespace; a non-zero exit is an error.
    pub fn exec<S: AsRef<str>>(&self, node: &str, argv: &[S]) -> Result<Output> {
        ns_exec(&self.netns(node)?, argv, &[])
    }

    /// Runs a command in a node's namespace and returns its stdout as text.
    pub fn exec_text<S: AsRef<str>>(&self, node: &str, argv: &[S]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.exec(node, argv)?.stdout).into_owned())
    }

    /// Starts a long-running program in a node's namespace (the generic process role); its
    /// output goes to `<lab dir>/<node>/<name>/<name>.log`. The process is recorded in the
    /// lab's state and killed at teardown if the returned handle has not stopped it first.
    pub fn spawn(
        &self,
        node: &str,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
    ) -> Result<Process> {
        let dir = self.work_dir(node, name)?;
        self.spawn_logged(node, name, argv, env, &dir.join(format!("{name}.log")))
    }

    /// Like [`Lab::spawn`] with an explicit log path.
    pub fn spawn_logged(
        &self,
        node: &str,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Process> {
        let ns = self.netns(node)?;
        let p = Process::spawn(&ns, node, name, argv, env, log)?;
        self.with_state(|s| {
            s.processes.push(ProcState {
                node: node.to_string(),
                name: name.to_string(),
                pid: p.pid(),
                log: log.to_path_buf(),
            })
        })?;
        Ok(p)
    }

    /// IPv4 routes in a node's main table.
    pub fn kernel_routes(&self, node: &str) -> Result<Vec<KernelRoute>> {
        kernel::routes(&self.netns(node)?)
    }

    /// Creates a pod on `node` through the CNI plugins of `conflist`, exactly as a container
    /// runtime would (plugins run in the node's namespace with `CNI_*` env and the config on
    /// stdin). The pod's namespace is `<prefix>-<node>.<pod>`.
    pub fn add_pod(
        &self,
        node: &str,
        pod: &str,
        conflist: &serde_json::Value,
        cni_path: &[PathBuf],
    ) -> Result<PodState> {
        let node_ns = self.netns(node)?;
        let pod_ns = format!("{node_ns}.{pod}");
        self.with_state(|s| {
            s.namespaces.push(NsState {
                node: format!("{node}.{pod}"),
                netns: pod_ns.clone(),
                kind: "pod".into(),
                inode: None,
            })
        })?;
        ip(&["netns", "add", &pod_ns])?;
        let ino = netns_inode(&Path::new("/run/netns").join(&pod_ns));
        self.with_state(|s| {
            if let Some(e) = s.namespaces.iter_mut().find(|e| e.netns == pod_ns) {
                e.inode = ino;
            }
        })?;
        ip(&["-n", &pod_ns, "link", "set", "lo", "up"])?;
        let mut ps = PodState {
            node: node.to_string(),
            name: pod.to_string(),
            netns: pod_ns,
            container_id: format!("{}-{node}-{pod}", self.prefix()),
            ifname: "eth0".into(),
            ips: Vec::new(),
            conflist: conflist.clone(),
            cni_path: cni_path.to_vec(),
            result: serde_json::Value::Null,
        };
        // Record before ADD: the spec says a DEL always follows an ADD, even a failed one.
        self.with_state(|s| s.pods.push(ps.clone()))?;
        let result = crate::cni::add(&node_ns, &ps)?;
        ps.ips = crate::cni::result_ips(&result);
        ps.result = result;
        self.with_state(|s| {
            if let Some(p) = s.pods.iter_mut().find(|p| p.netns == ps.netns) {
                *p = ps.clone();
            }
        })?;
        Ok(ps)
    }

    /// Deletes a pod (CNI DEL, then its namespace).
    pub fn del_pod(&self, node: &str, pod: &str) -> Result<()> {
        let st = self.state();
        let p = st
            .pods
            .iter()
            .find(|p| p.node == node && p.name == pod)
            .ok_or_else(|| Error::NotFound(format!("pod {pod} on {node}")))?;
        crate::cni::del_pod(&st, p)?;
        state::kill_netns_processes(&p.netns, Duration::from_secs(2));
        ip(&["netns", "del", &p.netns])?;
        let ns = p.netns.clone();
        self.with_state(|s| {
            s.pods.retain(|x| x.netns != ns);
            s.namespaces.retain(|x| x.netns != ns);
        })
    }

    /// The lab's pods.
    pub fn pods(&self) -> Vec<PodState> {
        self.state().pods
    }

    /// Pings every pod from every pod.
    pub fn ping_matrix(&self, count: u32) -> Result<crate::ping::PingMatrix> {
        crate::ping::matrix(&self.state(), count)
    }

    /// Tears the lab down now and reports what could not be removed.
    pub fn down(mut self) -> Result<()> {
        let errs = self.teardown();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::Usage(format!("teardown: {}", errs.join("; "))))
        }
    }

    /// Leaves the lab running after this handle is gone (`up --detach`); `wren-testbed down`
    /// removes it. Returns the final record.
    pub fn detach(mut self) -> Result<LabState> {
        if let Ok(mut r) = self.roles.lock() {
            for p in r.drain(..) {
                p.detach();
            }
        }
        let st = self.with_state(|s| {
            s.detached = true;
            s.clone()
        })?;
        self.done = true;
        Ok(st)
    }

    fn teardown(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        if let Ok(mut r) = self.roles.lock() {
            // Stop in reverse start order (bgpd before zebra).
            while let Some(mut p) = r.pop() {
                p.stop(Duration::from_secs(5));
            }
        }
        state::teardown(&self.state())
    }
}

impl Lab {
    /// The last 3000 bytes of every `*.log` and `*.jsonl` under the lab directory (daemon and process
    /// logs), for failure reports. `Drop` prints this when the thread is panicking.
    pub fn log_tails(&self) -> String {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else if p.extension().is_some_and(|x| x == "log" || x == "jsonl") {
                        out.push(p);
                    }
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.dir(), &mut files);
        files.sort();
        let mut s = String::new();
        for f in files {
            let t = std::fs::read(&f)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let start = t.len().saturating_sub(3000);
            let start = (start..t.len())
                .find(|i| t.is_char_boundary(*i))
                .unwrap_or(t.len());
            s.push_str(&format!(
                "==== {}\n{}\n",
                f.display(),
                t.get(start..).unwrap_or("")
            ));
        }
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.done {
            eprintln!(
                "wren-testbed: lab {} logs at failure:\n{}",
                self.prefix(),
                self.log_tails()
            );
        }
        let errs = self.teardown();
        for e in errs {
            eprintln!("wren-testbed teardown: {e}");
        }
    }
}

fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    ns_exec(ns, &["sysctl", "-q", "-w", &format!("{key}={value}")], &[]).map(|_| ())
}
