//! The CNI commands.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use ipnet::IpNet;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::Handle;
use serde_json::{json, Value};

use crate::conf::{check_ready, Attachment, Command, Env, NetConf, NodeFile};
use crate::dataplane::{self as dp, GW_V4, GW_V6};
use crate::error::{code, netlink_errno, CniError, CniResult};
use crate::ipam::{self, Pending, PodCidrs};
use crate::ns::{self, InNetns};
use crate::types::{CniOutput, Interface, IpConfig, Route, LATEST, SUPPORTED_VERSIONS};

/// What the process prints and how it exits.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// JSON for stdout (a result or an error), if any.
    pub stdout: Option<Value>,
    /// Exit status.
    pub exit: i32,
}

/// Run one invocation: `vars` are the `CNI_*` environment variables, `stdin` the
/// network configuration.
pub fn run(vars: &BTreeMap<String, String>, stdin: &[u8]) -> Outcome {
    let cmd_str = vars.get("CNI_COMMAND").cloned().unwrap_or_default();
    // The version to print errors in: the config's when it is supported.
    let parsed = NetConf::parse(stdin);
    let err_version = parsed
        .as_ref()
        .ok()
        .and_then(|(c, _)| c.cni_version.clone())
        .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| LATEST.to_string());
    let fail = |e: CniError| {
        tracing::error!("{cmd_str}: {e}");
        Outcome {
            stdout: Some(e.to_json(&err_version)),
            exit: 1,
        }
    };
    let cmd = match Command::parse(&cmd_str) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if cmd == Command::Version {
        return Outcome {
            stdout: Some(
                json!({"cniVersion": err_version, "supportedVersions": SUPPORTED_VERSIONS}),
            ),
            exit: 0,
        };
    }
    let (conf, raw) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if let Err(e) = conf.validate(cmd) {
        return fail(e);
    }
    let env = match Env::from_vars(cmd, vars) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let override_ns = vars.get("CNI_NETNS_OVERRIDE").is_some_and(|v| v == "1");
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(CniError::new(
                code::IO,
                "cannot start the tokio runtime",
                e.to_string(),
            ))
        }
    };
    let inv = Invocation {
        cmd,
        env,
        conf,
        raw,
        version: err_version.clone(),
        override_ns,
    };
    let started = Instant::now();
    let res = rt.block_on(inv.dispatch());
    tracing::info!(
        "{cmd_str} container={} ifname={} took {:?}",
        inv.env.container_id,
        inv.env.ifname,
        started.elapsed()
    );
    match res {
        Ok(out) => Outcome {
            stdout: out,
            exit: 0,
        },
        Err(e) => fail(e),
    }
}

/// One parsed invocation.
#[derive(Debug)]
struct Invocation {
    cmd: Command,
    env: Env,
    conf: NetConf,
    raw: Value,
    version: String,
    override_ns: bool,
}

/// The host veth alias that marks an attachment as Wren's (GC finds veths by it).
pub fn veth_alias(network: &str, container_id: &str, ifname: &str) -> String {
    format!("wren:{network}:{container_id}:{ifname}")
}

/// Parse [`veth_alias`].
pub fn parse_alias(alias: &str) -> Option<(String, Attachment)> {
    let mut it = alias.splitn(4, ':');
    if it.next()? != "wren" {
        return None;
    }
    let net = it.next()?.to_string();
    let container_id = it.next()?.to_string();
    let ifname = it.next()?.to_string();
    Some((
        net,
        Attachment {
            container_id,
            ifname,
        },
    ))
}

fn warn_on_err(r: CniResult<()>) {
    if let Err(e) = r {
        tracing::warn!("{e}");
    }
}

impl Invocation {
    async fn dispatch(&self) -> CniResult<Option<Value>> {
        match self.cmd {
            Command::Add => self.add().await.map(Some),
            Command::Del => self.del().await.map(|()| None),
            Command::Check => self.check().await.map(|()| None),
            Command::Gc => self.gc().await.map(|()| None),
            Command::Status => self.status().map(|()| None),
            Command::Version => Ok(None),
        }
    }

    fn ipam_section(&self) -> CniResult<Value> {
        self.conf.ipam.clone().ok_or_else(|| {
            CniError::msg(
                code::INVALID_CONFIG,
                "network configuration has no \"ipam\" section",
            )
        })
    }

    fn ipam_plugin(&self) -> CniResult<std::path::PathBuf> {
        let t = self
            .conf
            .ipam_type()
            .ok_or_else(|| CniError::msg(code::INVALID_CONFIG, "\"ipam\" has no \"type\""))?;
        ipam::find_plugin(t, &self.env.path)
    }

    /// The configuration for the IPAM plugin: ours with `ipam` replaced.
    fn ipam_conf(&self, ipam: Value) -> Value {
        let mut c = self.raw.clone();
        if let Some(o) = c.as_object_mut() {
            o.insert("ipam".into(), ipam);
        }
        c
    }

    /// Open CNI_NETNS, refusing the plugin's own namespace (libcni skel does the same
    /// unless CNI_NETNS_OVERRIDE=1).
    fn open_pod_ns(&self, host_ns: &File) -> Result<File, ns::OpenError> {
        let f = ns::open(&self.env.netns)?;
        if !self.override_ns && ns::identity(&f).ok() == ns::identity(host_ns).ok() {
            return Err(ns::OpenError::Other(CniError::msg(
                code::INVALID_ENV,
                format!(
                    "CNI_NETNS {} is the plugin's own network namespace; refusing to configure it",
                    self.env.netns
                ),
            )));
        }
        Ok(f)
    }

    /// The host and pod namespaces with a netlink connection opened in each (ADD, CHECK).
    /// A missing CNI_NETNS is error 6 naming it.
    fn netlink_pair(&self) -> CniResult<(File, File, Handle, Handle)> {
        let host_ns = ns::current()?;
        let pod_ns = match self.open_pod_ns(&host_ns) {
            Ok(f) => f,
            Err(ns::OpenError::Gone) => {
                return Err(CniError::msg(
                    code::NETNS,
                    format!("network namespace {} does not exist", self.env.netns),
                ))
            }
            Err(ns::OpenError::Other(e)) => return Err(e),
        };
        let host = dp::connect()?;
        let pod = {
            let _in = InNetns::enter(&pod_ns, &host_ns)?;
            dp::connect()?
        };
        Ok((host_ns, pod_ns, host, pod))
    }

    // ---------------------------------------------------------------- ADD

    async fn add(&self) -> CniResult<Value> {
        // The kernel keeps at most 255 bytes of an interface alias (IFALIASZ).
        let longest = teardown_mark(
            u64::from(u32::MAX),
            &self.conf.name,
            &self.env.container_id,
            &self.env.ifname,
        );
        if longest.len() > 255 {
            return Err(CniError::msg(
                code::INVALID_CONFIG,
                format!(
                    "network name ({} bytes) and container id ({} bytes) are too long for the host veth's alias; use a network name under {} bytes",
                    self.conf.name.len(),
                    self.env.container_id.len(),
                    255usize.saturating_sub(longest.len() - self.conf.name.len())
                ),
            ));
        }
        let wren_dir = self.conf.wren_dir();
        let mut ipam_sec = self.ipam_section()?;
        let uses = ipam::uses_pod_cidr(&ipam_sec);
        let cfg_mtu = self.conf.mtu.filter(|m| *m != 0);
        let node = if uses || cfg_mtu.is_none() {
            Some(NodeFile::require(&wren_dir)?)
        } else {
            None
        };
        let mtu = cfg_mtu.or(node.as_ref().map(|n| n.mtu).filter(|m| *m != 0));
        if uses {
            if let Some(n) = &node {
                ipam::resolve_pod_cidr(
                    &mut ipam_sec,
                    PodCidrs::Node(&n.pod_cidrs),
                    &wren_dir.join("node.json"),
                )?;
            }
        }
        let ipam_conf = self.ipam_conf(ipam_sec);
        let plugin = self.ipam_plugin()?;

        tracing::debug!("ADD: config resolved");
        let (host_ns, pod_ns, host, pod) = self.netlink_pair()?;
        tracing::debug!("ADD: netlink connections open");
        // IPAM runs while the interfaces are being built.
        let mut pending = Some(Pending::start(&plugin, Command::Add, ipam_conf.clone())?);
        if self.conf.deferred_teardown == Some(true) {
            if let Err(e) = sweep_teardown_leftovers(&host, &self.conf.name, SWEEP_AFTER).await {
                tracing::warn!("ADD: sweeping deferred-teardown leftovers: {e}");
            }
        }
        let mut created = false;
        let host_name = self.env.host_veth_name();
        let alias = veth_alias(&self.conf.name, &self.env.container_id, &self.env.ifname);
        let res = self
            .add_inner(
                &host,
                &pod,
                (&host_ns, &pod_ns),
                &mut pending,
                &mut created,
                (&host_name, &alias),
                mtu,
            )
            .await;
        match res {
            Ok(out) => Ok(out.to_json(&self.version)),
            Err(e) => {
                tracing::warn!("ADD failed, rolling back: {e}");
                // Undo in reverse: the veth (its routes and addresses go with it), then
                // the IP allocation, after the ADD call has finished.
                if created {
                    if let Ok(Some(l)) = dp::link_by_name(&host, &host_name).await {
                        warn_on_err(dp::delete_link(&host, l.header.index).await);
                    }
                }
                if let Some(p) = pending.take() {
                    let _ = p.finish();
                }
                if let Err(de) = ipam::exec(&plugin, Command::Del, &ipam_conf) {
                    tracing::warn!("rollback: IPAM DEL failed: {de}");
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn add_inner(
        &self,
        host: &Handle,
        pod: &Handle,
        (host_ns, pod_ns): (&File, &File),
        pending: &mut Option<Pending>,
        created: &mut bool,
        (host_name, alias): (&str, &str),
        mtu: Option<u32>,
    ) -> CniResult<CniOutput> {
        let ifname = self.env.ifname.as_str();
        let exists = || {
            CniError::msg(
                code::EXISTS,
                format!(
                    "interface {ifname} already exists in network namespace {}",
                    self.env.netns
                ),
            )
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match dp::create_veth(host, host_name, ifname, pod_ns.as_raw_fd(), mtu).await {
                Ok(()) => break,
                Err(e) => e,
            };
            if netlink_errno(&e) != Some(libc::EEXIST) {
                return Err(CniError::new(
                    code::NETLINK,
                    format!("cannot create veth {host_name} / {ifname}"),
                    e.to_string(),
                ));
            }
            if attempt >= 3 {
                return Err(exists());
            }
            // EEXIST: a leftover host veth of an earlier sandbox of the same pod
            // (Calico deletes it too), a pod interface whose deferred teardown has not
            // run yet (marked by DEL), or a foreign pod interface (an error per spec).
            let mut cleared = false;
            if let Some(old) = dp::link_by_name(host, host_name).await? {
                // The name depends on the pod only: the same pod attached to another
                // wren network, or with another interface name, is a live attachment.
                // Without a pod identity (K8S_POD_*), another container id is another
                // container, not an earlier sandbox of the same pod.
                let same_pod = self.env.pod().is_some();
                if let Some((net, att)) = dp::link_alias(&old)
                    .as_deref()
                    .and_then(parse_alias)
                    .filter(|(net, att)| {
                        *net != self.conf.name
                            || att.ifname != ifname
                            || (!same_pod && att.container_id != self.env.container_id)
                    })
                {
                    return Err(CniError::msg(
                        code::EXISTS,
                        format!(
                            "host interface {host_name} is in use by network {net}, container {}, interface {}: a pod can have one wren attachment",
                            att.container_id, att.ifname
                        ),
                    ));
                }
                tracing::warn!("deleting leftover host interface {host_name}");
                dp::delete_link(host, old.header.index).await?;
                cleared = true;
            }
            if let Some(old) = dp::link_by_name(pod, ifname).await? {
                if dp::link_alias(&old).as_deref() == Some(TEARDOWN_ALIAS) {
                    tracing::info!("deleting {ifname} left by a previous DEL");
                    dp::delete_link(pod, old.header.index).await?;
                    cleared = true;
                }
            }
            if !cleared {
                return Err(exists());
            }
        }
        *created = true;
        tracing::debug!("ADD: veth created");
        let hl = dp::link_by_name(host, host_name).await?.ok_or_else(|| {
            CniError::msg(
                code::NETLINK,
                format!("{host_name} vanished right after creation"),
            )
        })?;
        let hidx = hl.header.index;
        // The alias at once (the kernel ignores IFLA_IFALIAS on creation): an ADD killed
        // from here on leaves a veth that DEL and GC recognise.
        dp::set_alias(host, hidx, alias).await?;
        // Host side: proxy ARP answers the pod's ARP for 169.254.1.1 with ee:ee:...
        ns::sysctl_set(&format!("ipv4/conf/{host_name}/proxy_arp"), "1")?;
        ns::sysctl_set(&format!("ipv4/conf/{host_name}/forwarding"), "1")?;
        warn_on_err(ns::sysctl_set(
            &format!("ipv4/neigh/{host_name}/proxy_delay"),
            "0",
        ));
        if ns::has_ipv6_conf(host_name) {
            warn_on_err(ns::sysctl_set(
                &format!("ipv6/conf/{host_name}/accept_ra"),
                "0",
            ));
            // The pod's IPv6 next hop is our EUI-64 link-local address (from the MAC).
            warn_on_err(ns::sysctl_set(
                &format!("ipv6/conf/{host_name}/addr_gen_mode"),
                "0",
            ));
        }
        let pl = dp::link_by_name(pod, ifname).await?.ok_or_else(|| {
            CniError::msg(
                code::NETLINK,
                format!("{ifname} missing in the pod right after creation"),
            )
        })?;
        let pidx = pl.header.index;
        let pod_v6 = {
            let _in = InNetns::enter(pod_ns, host_ns)?;
            let v6 = ns::has_ipv6_conf(ifname);
            if v6 {
                ns::sysctl_set(&format!("ipv6/conf/{ifname}/accept_dad"), "0")?;
            }
            v6
        };
        dp::set_up(pod, pidx, ifname, None).await?;
        tracing::debug!("ADD: sysctls set, pod side up");

        tracing::debug!("ADD: interfaces ready, waiting for IPAM");
        // The IPAM result.
        let raw = pending
            .take()
            .ok_or_else(|| CniError::msg(code::IPAM, "IPAM call missing"))?
            .finish()?
            .ok_or_else(|| CniError::msg(code::IPAM, "IPAM plugin printed no result"))?;
        tracing::debug!("ADD: IPAM result received");
        let ipam_res = CniOutput::parse(&raw, "IPAM result")?;
        if ipam_res.ips.is_empty() {
            return Err(CniError::msg(
                code::IPAM,
                "IPAM plugin returned no IP address",
            ));
        }
        let has_v4 = ipam_res.ips.iter().any(|i| i.address.addr().is_ipv4());
        let has_v6 = ipam_res.ips.iter().any(|i| i.address.addr().is_ipv6());
        if has_v6 {
            if !pod_v6 {
                // IPv6 disabled in the pod: enable it as Calico does.
                let _in = InNetns::enter(pod_ns, host_ns)?;
                for dev in ["all", "default", ifname] {
                    warn_on_err(ns::sysctl_set(
                        &format!("ipv6/conf/{dev}/disable_ipv6"),
                        "0",
                    ));
                }
                ns::sysctl_set(&format!("ipv6/conf/{ifname}/accept_dad"), "0")?;
            }
            if !ns::has_ipv6_conf(host_name) {
                return Err(CniError::msg(
                    code::INVALID_CONFIG,
                    "IPAM assigned an IPv6 address but IPv6 is disabled on this host",
                ));
            }
            // Only for IPv6 pods: with accept_dad=0 and forwarding=1 the kernel takes
            // ~15 ms longer to delete the veth (measured), a cost v4-only pods need not
            // pay. The link is still down, so the link-local address generated when it
            // comes up skips DAD and is usable at once.
            ns::sysctl_set(&format!("ipv6/conf/{host_name}/accept_dad"), "0")?;
            ns::sysctl_set(&format!("ipv6/conf/{host_name}/proxy_ndp"), "1")?;
            ns::sysctl_set(&format!("ipv6/conf/{host_name}/forwarding"), "1")?;
        }
        dp::set_up(host, hidx, host_name, None).await?;

        // Pod addresses (/32, /128) and routes.
        for ip in &ipam_res.ips {
            dp::add_address(pod, pidx, ip.address.addr(), ifname).await?;
        }
        if has_v4 {
            dp::add_route(pod, dp::link_route(IpAddr::V4(GW_V4), pidx))
                .await
                .map_err(|e| {
                    CniError::new(
                        code::NETLINK,
                        "cannot add 169.254.1.1 dev route in the pod",
                        e.to_string(),
                    )
                })?;
        }
        let mut routes: Vec<Route> = Vec::new();
        let dsts: Vec<IpNet> = if ipam_res.routes.is_empty() {
            let mut d = Vec::new();
            if has_v4 {
                d.push(IpNet::V4(ipnet::Ipv4Net::default()));
            }
            if has_v6 {
                d.push(IpNet::V6(ipnet::Ipv6Net::default()));
            }
            d
        } else {
            // IPAM routes (host-local `routes`) replace the defaults; their gateways are
            // replaced by ours, as Calico does.
            ipam_res.routes.iter().map(|r| r.dst).collect()
        };
        for dst in dsts {
            let gw = match dst {
                IpNet::V4(_) if has_v4 => IpAddr::V4(GW_V4),
                IpNet::V6(_) if has_v6 => IpAddr::V6(GW_V6),
                _ => {
                    tracing::warn!("skipping route {dst}: the pod has no address of that family");
                    continue;
                }
            };
            match dp::add_route(pod, dp::gw_route(dst, gw, pidx)?).await {
                Ok(()) => {}
                Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => {
                    return Err(CniError::new(
                        code::NETLINK,
                        format!("cannot add route {dst} via {gw} in the pod"),
                        e.to_string(),
                    ))
                }
            }
            routes.push(Route { dst, gw: Some(gw) });
        }

        // Host routes to the pod.
        for ip in &ipam_res.ips {
            let a = ip.address.addr();
            match dp::add_route(host, dp::link_route(a, hidx)).await {
                Ok(()) => {}
                Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {
                    return Err(CniError::msg(
                        code::NETLINK,
                        format!("a host route to {a} already exists on another interface (another pod with this address? see `ip route show {a}`)"),
                    ))
                }
                Err(e) => {
                    return Err(CniError::new(code::NETLINK, format!("cannot add host route {a} dev {host_name}"), e.to_string()))
                }
            }
        }

        tracing::debug!("ADD: addresses and routes done");
        // The runtime may have torn the sandbox down while we worked (a netns path
        // that now names nothing or another namespace): fail and roll back.
        if !ns::still_same(&self.env.netns, pod_ns) {
            return Err(CniError::msg(
                code::NETNS,
                format!("network namespace {} vanished during ADD", self.env.netns),
            ));
        }

        let dns = match self.raw.get("dns") {
            Some(d) if d.as_object().is_some_and(|o| !o.is_empty()) => d.clone(),
            _ => ipam_res.dns.clone(),
        };
        Ok(CniOutput {
            interfaces: vec![
                Interface {
                    name: host_name.to_string(),
                    mac: dp::mac_string(&dp::HOST_MAC),
                    mtu: dp::link_mtu(&hl),
                    sandbox: String::new(),
                },
                Interface {
                    name: ifname.to_string(),
                    mac: dp::link_mac(&pl),
                    mtu: dp::link_mtu(&pl),
                    sandbox: self.env.netns.clone(),
                },
            ],
            ips: ipam_res
                .ips
                .iter()
                .map(|ip| IpConfig {
                    address: host_net(ip.address.addr()),
                    gateway: None,
                    interface: Some(1),
                })
                .collect(),
            routes,
            dns,
        })
    }

    // ---------------------------------------------------------------- DEL

    fn del_ipam_conf(&self) -> CniResult<Value> {
        let mut ipam_sec = self.ipam_section()?;
        if ipam::uses_pod_cidr(&ipam_sec) {
            let dir = self.conf.wren_dir();
            let node_path = dir.join("node.json");
            let node = NodeFile::read(&dir).unwrap_or_else(|e| {
                tracing::warn!("DEL: {e}");
                None
            });
            let mut resolved = ipam_sec.clone();
            let ok = match &node {
                Some(n) => {
                    ipam::resolve_pod_cidr(&mut resolved, PodCidrs::Node(&n.pod_cidrs), &node_path)
                        .is_ok()
                }
                None => false,
            };
            if ok {
                ipam_sec = resolved;
            } else {
                tracing::info!(
                    "DEL: no usable node.json; releasing by container id with a placeholder range"
                );
                ipam::resolve_pod_cidr(&mut ipam_sec, PodCidrs::DelPlaceholder, &node_path)?;
            }
        }
        Ok(self.ipam_conf(ipam_sec))
    }

    async fn del(&self) -> CniResult<()> {
        let ipam_conf = self.del_ipam_conf()?;
        let plugin = self.ipam_plugin()?;
        let t0 = Instant::now();
        let pending = Pending::start(&plugin, Command::Del, ipam_conf)?;
        let iface = self.del_interface().await;
        let t1 = t0.elapsed();
        // IPAM is always released, whatever happened to the interface.
        let ipam_res = pending.finish();
        tracing::debug!(
            "DEL: interface done after {t1:?}, IPAM after {:?}",
            t0.elapsed()
        );
        iface?;
        ipam_res.map(|_| ())
    }

    /// Remove the veth pair of this attachment. The host end is found by name and
    /// owned when its alias names this attachment (or DEL's own teardown mark for it,
    /// a repeated DEL); deleting it removes the pair and the host routes. Nothing in
    /// the pod namespace is deleted by name: an `eth0` made by another plugin, or the
    /// pair of another sandbox of the same pod, is never touched.
    async fn del_interface(&self) -> CniResult<()> {
        let host_ns = ns::current()?;
        let host = dp::connect()?;
        let name = self.env.host_veth_name();
        let alias = veth_alias(&self.conf.name, &self.env.container_id, &self.env.ifname);
        let Some(hl) = dp::link_by_name(&host, &name).await? else {
            // The two ends of a veth die together: no host end, no pair.
            tracing::info!("DEL: no host interface {name}; nothing to delete");
            return Ok(());
        };
        // Marked by an earlier deferred DEL of this attachment whose helper has not
        // (yet) deleted it: delete it now, whatever the mode.
        let marked = dp::link_alias(&hl)
            .as_deref()
            .and_then(parse_teardown_mark)
            .is_some_and(|(_, net, att)| {
                net == self.conf.name
                    && att.container_id == self.env.container_id
                    && att.ifname == self.env.ifname
            });
        let owned = match dp::link_alias(&hl) {
            Some(a) => a == alias || marked,
            // An ADD killed before it set the alias: ours if its peer is CNI_IFNAME
            // in CNI_NETNS.
            None => matches!(
                (self.pod_end_index(&host_ns).await, dp::link_peer(&hl)),
                (Some(pod), Some(peer)) if pod == peer
            ),
        };
        if !owned {
            tracing::info!(
                "DEL: {name} has alias {:?}, not {alias}: another attachment's; left alone",
                dp::link_alias(&hl)
            );
            return Ok(());
        }
        if self.conf.deferred_teardown == Some(true) && !marked {
            match self.defer_teardown(&host, &host_ns, &hl).await {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!("DEL: deferred teardown not possible ({e}); deleting now"),
            }
        }
        let hidx = hl.header.index;
        match self.delete_in_helper(&host, &host_ns, hidx, &name).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!("DEL: {e}; deleting {name} here");
                dp::delete_link(&host, hidx).await
            }
        }
    }

    /// Synchronous DEL without waiting out the kernel's `rcu_barrier()`: a copy of this
    /// binary (the teardown helper, in the host namespace) issues the delete, and DEL
    /// returns once the kernel has unregistered the pair: the `RTM_DELLINK`
    /// notification for the host end is sent after both ends are unlisted (names free
    /// in both namespaces), closed, and their addresses, routes and sysctls gone. What is
    /// left is the kernel's final barrier and freeing, which run inside the helper's
    /// `RTM_DELLINK` request; a process in that system call cannot be stopped by any
    /// signal before it returns, so killing the helper (or its cgroup) changes nothing.
    /// If the helper fails, exits or stalls before that, DEL deletes the pair itself.
    async fn delete_in_helper(
        &self,
        host: &Handle,
        host_ns: &File,
        hidx: u32,
        name: &str,
    ) -> CniResult<()> {
        use futures::StreamExt;
        use rtnetlink::packet_core::NetlinkPayload;
        use rtnetlink::packet_route::RouteNetlinkMessage;
        use rtnetlink::sys::AsyncSocket;
        let io = |what: &str, e: std::io::Error| {
            CniError::new(code::IO, what.to_string(), e.to_string())
        };
        // Subscribe before the helper starts, so its notification cannot be missed.
        let (mut conn, _, mut events) =
            rtnetlink::new_connection().map_err(|e| io("cannot open a netlink socket", e))?;
        conn.socket_mut()
            .socket_mut()
            .bind(&rtnetlink::sys::SocketAddr::new(
                0,
                rtnetlink::constants::RTMGRP_LINK,
            ))
            .map_err(|e| io("cannot subscribe to link notifications", e))?;
        tokio::spawn(conn);
        let exe = std::env::current_exe()
            .map_err(|e| io("cannot find the plugin's own executable", e))?;
        let ns_file = host_ns
            .try_clone()
            .map_err(|e| io("cannot duplicate the netns descriptor", e))?;
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new(exe)
            .env_clear()
            .env(TEARDOWN_IFINDEX, hidx.to_string())
            .env(TEARDOWN_IFNAME, name)
            .stdin(std::process::Stdio::from(ns_file))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| io("cannot start the teardown helper", e))?;
        let deadline = Instant::now() + HELPER_DEADLINE;
        let tick = std::time::Duration::from_millis(2);
        let mut notifications = true;
        loop {
            // A timeout: not there yet, poll as well. The stream ending (socket error,
            // overrun): poll every tick.
            if notifications {
                match tokio::time::timeout(tick, events.next()).await {
                    Ok(Some((msg, _))) => {
                        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) =
                            msg.payload
                        {
                            if l.header.index == hidx {
                                return Ok(());
                            }
                        }
                    }
                    Ok(None) => notifications = false,
                    Err(_) => {}
                }
            } else {
                tokio::time::sleep(tick).await;
            }
            if !dp::link_index_exists(host, hidx).await? {
                return Ok(());
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(CniError::msg(
                    code::NETLINK,
                    format!("the teardown helper exited ({st}) without deleting {name}"),
                ));
            }
            if Instant::now() > deadline {
                return Err(CniError::msg(
                    code::NETLINK,
                    format!("the teardown helper has not deleted {name} after {HELPER_DEADLINE:?}"),
                ));
            }
        }
    }

    /// Index of CNI_IFNAME in CNI_NETNS, if both exist.
    async fn pod_end_index(&self, host_ns: &File) -> Option<u32> {
        if self.env.netns.is_empty() {
            return None;
        }
        let pod_ns = self.open_pod_ns(host_ns).ok()?;
        let pod = {
            let _in = InNetns::enter(&pod_ns, host_ns).ok()?;
            dp::connect().ok()?
        };
        let l = dp::link_by_name(&pod, &self.env.ifname).await.ok()??;
        Some(l.header.index)
    }

    /// Opt-in `deferred_teardown`: what must be gone when DEL returns is done here
    /// (the host routes, so the released addresses can be routed again at once); the
    /// pair is marked and deleted by a detached copy of this binary holding the pod
    /// namespace open (`WREN_TEARDOWN_*`, see [`teardown_main`]), because the kernel
    /// spends an RCU barrier (20-40 ms) unregistering a veth. If the helper never
    /// runs (killed with the runtime's cgroup, say) the marked host end is swept by
    /// the next ADD of the network after [`SWEEP_AFTER`], by GC, or by a repeated DEL.
    async fn defer_teardown(
        &self,
        host: &Handle,
        host_ns: &File,
        hl: &LinkMessage,
    ) -> CniResult<()> {
        let pod_ns = match self.open_pod_ns(host_ns) {
            Ok(f) => f,
            Err(ns::OpenError::Gone) => {
                return Err(CniError::msg(code::NETNS, "the pod namespace is gone"))
            }
            Err(ns::OpenError::Other(e)) => return Err(e),
        };
        let pod = {
            let _in = InNetns::enter(&pod_ns, host_ns)?;
            dp::connect()?
        };
        let pl = dp::link_by_name(&pod, &self.env.ifname)
            .await?
            .filter(|l| Some(l.header.index) == dp::link_peer(hl))
            .ok_or_else(|| {
                CniError::msg(
                    code::NETLINK,
                    format!(
                        "{} in the pod is not the peer of the host veth",
                        self.env.ifname
                    ),
                )
            })?;
        let pod_index = pl.header.index;
        let exe = std::env::current_exe().map_err(|e| {
            CniError::new(
                code::IO,
                "cannot find the plugin's own executable",
                e.to_string(),
            )
        })?;
        let ns_file = pod_ns.try_clone().map_err(|e| {
            CniError::new(
                code::IO,
                "cannot duplicate the netns descriptor",
                e.to_string(),
            )
        })?;
        // Routes first: once they are gone nothing reaches the old pod any more. The
        // pod's own addresses name them (no dump of a host table that may hold many
        // BGP routes).
        for (ip, _) in dp::addresses(&pod, pod_index).await? {
            if matches!(ip, IpAddr::V6(a) if a.segments().first() == Some(&0xfe80)) {
                continue;
            }
            dp::delete_route(host, dp::link_route(ip, hl.header.index)).await?;
        }
        // Mark both ends: the host end for the sweep, the pod end so that an ADD into
        // the same namespace before the helper ran knows it may delete it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mark = teardown_mark(
            now,
            &self.conf.name,
            &self.env.container_id,
            &self.env.ifname,
        );
        for (h, index, a) in [
            (host, hl.header.index, mark.as_str()),
            (&pod, pod_index, TEARDOWN_ALIAS),
        ] {
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(index)
                        .alias(a)
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| {
                    CniError::new(
                        code::NETLINK,
                        "cannot mark the veth for teardown",
                        e.to_string(),
                    )
                })?;
        }
        use std::os::unix::process::CommandExt;
        std::process::Command::new(exe)
            .env_clear()
            .env(TEARDOWN_IFINDEX, pod_index.to_string())
            .env(TEARDOWN_IFNAME, &self.env.ifname)
            .stdin(std::process::Stdio::from(ns_file))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                CniError::new(code::IO, "cannot start the teardown helper", e.to_string())
            })?;
        Ok(())
    }

    // ---------------------------------------------------------------- CHECK

    async fn check(&self) -> CniResult<()> {
        let prev_raw = self.conf.prev_result.as_ref().ok_or_else(|| {
            CniError::msg(
                code::INVALID_CONFIG,
                "CHECK needs \"prevResult\" in the network configuration",
            )
        })?;
        let prev = CniOutput::parse(prev_raw, "prevResult")?;
        let mut ipam_sec = self.ipam_section()?;
        if ipam::uses_pod_cidr(&ipam_sec) {
            let dir = self.conf.wren_dir();
            let n = NodeFile::require(&dir)?;
            ipam::resolve_pod_cidr(
                &mut ipam_sec,
                PodCidrs::Node(&n.pod_cidrs),
                &dir.join("node.json"),
            )?;
        }
        let plugin = self.ipam_plugin()?;
        let pending = Pending::start(&plugin, Command::Check, self.ipam_conf(ipam_sec))?;
        let local = self.check_local(&prev).await;
        let ipam_res = pending.finish();
        local?;
        ipam_res.map(|_| ())
    }

    async fn check_local(&self, prev: &CniOutput) -> CniResult<()> {
        let bad = |m: String| CniError::msg(code::CHECK_FAILED, m);
        let ifname = self.env.ifname.as_str();
        let host_name = self.env.host_veth_name();
        let cidx = prev
            .interfaces
            .iter()
            .position(|i| i.name == ifname && !i.sandbox.is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "prevResult has no interface {ifname} with a sandbox"
                ))
            })?;
        let prev_c = prev
            .interfaces
            .get(cidx)
            .ok_or_else(|| bad("prevResult interface index".into()))?;
        if prev_c.sandbox != self.env.netns {
            return Err(bad(format!(
                "prevResult says {ifname} is in {}, CNI_NETNS is {}",
                prev_c.sandbox, self.env.netns
            )));
        }
        if !prev
            .interfaces
            .iter()
            .any(|i| i.name == host_name && i.sandbox.is_empty())
        {
            return Err(bad(format!("prevResult has no host interface {host_name}")));
        }
        let (_host_ns, _pod_ns, host, pod) = self.netlink_pair()?;
        let pl = dp::link_by_name(&pod, ifname).await?.ok_or_else(|| {
            bad(format!(
                "interface {ifname} is missing in {}",
                self.env.netns
            ))
        })?;
        if !prev_c.mac.is_empty() && !dp::link_mac(&pl).eq_ignore_ascii_case(&prev_c.mac) {
            return Err(bad(format!(
                "{ifname} has MAC {}, prevResult says {}",
                dp::link_mac(&pl),
                prev_c.mac
            )));
        }
        let hl = dp::link_by_name(&host, &host_name)
            .await?
            .ok_or_else(|| bad(format!("host interface {host_name} is missing")))?;
        if dp::link_mac(&hl) != dp::mac_string(&dp::HOST_MAC) {
            return Err(bad(format!(
                "host interface {host_name} has MAC {}, want ee:ee:ee:ee:ee:ee",
                dp::link_mac(&hl)
            )));
        }
        let pidx = pl.header.index;
        let hidx = hl.header.index;
        let ips: Vec<IpAddr> = prev
            .ips
            .iter()
            .filter(|i| i.interface.is_none_or(|x| x == cidx))
            .map(|i| i.address.addr())
            .collect();
        let have = dp::addresses(&pod, pidx).await?;
        for ip in &ips {
            if !have.iter().any(|(a, _)| a == ip) {
                return Err(bad(format!("address {ip} is missing on {ifname}")));
            }
        }
        let has_v4 = ips.iter().any(IpAddr::is_ipv4);
        let has_v6 = ips.iter().any(IpAddr::is_ipv6);
        let pod_v4 = if has_v4 {
            dp::routes(&pod, false).await?
        } else {
            Vec::new()
        };
        let pod_v6 = if has_v6 {
            dp::routes(&pod, true).await?
        } else {
            Vec::new()
        };
        if has_v4 {
            let gw_net = host_net(IpAddr::V4(GW_V4));
            if !pod_v4
                .iter()
                .any(|r| r.dst == gw_net && r.oif == Some(pidx))
            {
                return Err(bad(format!(
                    "route 169.254.1.1 dev {ifname} is missing in the pod"
                )));
            }
        }
        for r in &prev.routes {
            let table = if r.dst.addr().is_ipv4() {
                &pod_v4
            } else {
                &pod_v6
            };
            if !table
                .iter()
                .any(|x| x.dst == r.dst && x.oif == Some(pidx) && (r.gw.is_none() || x.gw == r.gw))
            {
                return Err(bad(format!(
                    "route {} in the pod is missing or differs from prevResult",
                    r.dst
                )));
            }
        }
        let host_v4 = if has_v4 {
            dp::routes(&host, false).await?
        } else {
            Vec::new()
        };
        let host_v6 = if has_v6 {
            dp::routes(&host, true).await?
        } else {
            Vec::new()
        };
        for ip in &ips {
            let table = if ip.is_ipv4() { &host_v4 } else { &host_v6 };
            let want = host_net(*ip);
            if !table.iter().any(|x| x.dst == want && x.oif == Some(hidx)) {
                return Err(bad(format!("host route {want} dev {host_name} is missing")));
            }
        }
        let mut want = vec![
            (format!("ipv4/conf/{host_name}/proxy_arp"), "1"),
            (format!("ipv4/conf/{host_name}/forwarding"), "1"),
            (format!("ipv4/neigh/{host_name}/proxy_delay"), "0"),
        ];
        if has_v6 {
            want.push((format!("ipv6/conf/{host_name}/proxy_ndp"), "1"));
            want.push((format!("ipv6/conf/{host_name}/accept_ra"), "0"));
            want.push((format!("ipv6/conf/{host_name}/forwarding"), "1"));
        }
        for (k, v) in want {
            let got = ns::sysctl_get(&k)?;
            if got != v {
                return Err(bad(format!("sysctl net/{k} is {got}, want {v}")));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- GC

    async fn gc(&self) -> CniResult<()> {
        let Some(valid) = self.conf.gc_attachments() else {
            tracing::warn!("GC without cni.dev/valid-attachments: nothing removed");
            return Ok(());
        };
        let valid: BTreeSet<Attachment> = valid.into_iter().collect();
        let mut first_err: Option<CniError> = None;
        let mut keep = |r: CniResult<()>| {
            if let Err(e) = r {
                tracing::warn!("GC: {e}");
                first_err.get_or_insert(e);
            }
        };
        // Host veths, recognised by their alias.
        match dp::connect() {
            Ok(host) => match dp::all_links(&host).await {
                Ok(links) => {
                    for l in links {
                        let Some((net, att)) = dp::link_alias(&l).as_deref().and_then(parse_alias)
                        else {
                            continue;
                        };
                        if net == self.conf.name && !valid.contains(&att) {
                            tracing::info!(
                                "GC: deleting {} ({}/{})",
                                dp::link_name(&l),
                                att.container_id,
                                att.ifname
                            );
                            keep(dp::delete_link(&host, l.header.index).await);
                        }
                    }
                }
                Err(e) => keep(Err(e)),
            },
            Err(e) => keep(Err(e)),
        }
        // Host veths left by a deferred teardown whose helper never ran.
        match dp::connect() {
            Ok(host) => keep(
                sweep_teardown_leftovers(&host, &self.conf.name, std::time::Duration::ZERO)
                    .await
                    .map(|_| ()),
            ),
            Err(e) => keep(Err(e)),
        }
        // IPAM: delegate GC if the plugin speaks 1.1.0; host-local 1.1.x does not, so
        // its store is cleaned here, under its own lock.
        let ipam_sec = self.ipam_section()?;
        match self.ipam_plugin() {
            Ok(plugin) => {
                let versions = ipam::plugin_versions(&plugin).unwrap_or_default();
                if versions.iter().any(|v| v == "1.1.0") {
                    keep(ipam::exec(&plugin, Command::Gc, &self.raw).map(|_| ()));
                } else if self.conf.ipam_type() == Some("host-local") {
                    let dir = ipam::host_local_dir(&ipam_sec, &self.conf.name);
                    keep(crate::gc::host_local(&dir, &valid).map(|_| ()));
                } else {
                    tracing::warn!(
                        "GC: IPAM plugin {} does not support GC; allocations are left",
                        plugin.display()
                    );
                }
            }
            Err(e) => keep(Err(e)),
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    // ---------------------------------------------------------------- STATUS

    fn status(&self) -> CniResult<()> {
        check_ready(&self.conf.wren_dir(), std::time::SystemTime::now())?;
        if let Ok(plugin) = self.ipam_plugin() {
            let versions = ipam::plugin_versions(&plugin).unwrap_or_default();
            if versions.iter().any(|v| v == "1.1.0") {
                ipam::exec(&plugin, Command::Status, &self.raw)?;
            }
        }
        Ok(())
    }
}

/// How long synchronous DEL waits for its helper to unregister the pair before it
/// deletes it itself.
pub const HELPER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// Alias DEL puts on a pod interface it leaves to the teardown helper.
pub const TEARDOWN_ALIAS: &str = "wren:teardown";

/// Prefix of the alias DEL puts on a host veth it leaves to the teardown helper:
/// `wren-teardown:<unix seconds>:<network>:<container id>:<ifname>`.
pub const TEARDOWN_MARK: &str = "wren-teardown";

/// A marked host veth older than this is a leftover (its helper never ran): the
/// next ADD of the network deletes it. The helper normally finishes within 100 ms.
pub const SWEEP_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The host veth alias of a deferred teardown (see [`TEARDOWN_MARK`]).
pub fn teardown_mark(unix_secs: u64, network: &str, container_id: &str, ifname: &str) -> String {
    format!("{TEARDOWN_MARK}:{unix_secs}:{network}:{container_id}:{ifname}")
}

/// Parse [`teardown_mark`]: (time, network, attachment).
pub fn parse_teardown_mark(alias: &str) -> Option<(u64, String, Attachment)> {
    let rest = alias.strip_prefix(TEARDOWN_MARK)?.strip_prefix(':')?;
    let (secs, rest) = rest.split_once(':')?;
    let (net, att) = parse_alias(&format!("wren:{rest}"))?;
    Some((secs.parse().ok()?, net, att))
}

/// Delete the host veths of `network` marked for teardown at least `min_age` ago
/// (their helper never ran). Returns how many were deleted.
pub async fn sweep_teardown_leftovers(
    host: &Handle,
    network: &str,
    min_age: std::time::Duration,
) -> CniResult<usize> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut n = 0;
    for l in dp::all_links(host).await? {
        let Some((t, net, att)) = dp::link_alias(&l).as_deref().and_then(parse_teardown_mark)
        else {
            continue;
        };
        if net == network && now.saturating_sub(t) >= min_age.as_secs() {
            tracing::warn!(
                "deleting {} left by the deferred teardown of {}/{} ({} s ago)",
                dp::link_name(&l),
                att.container_id,
                att.ifname,
                now.saturating_sub(t)
            );
            dp::delete_link(host, l.header.index).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Environment variable naming the pod interface index for the teardown helper.
pub const TEARDOWN_IFINDEX: &str = "WREN_TEARDOWN_IFINDEX";
/// Environment variable naming the pod interface for the teardown helper.
pub const TEARDOWN_IFNAME: &str = "WREN_TEARDOWN_IFNAME";

/// The deferred-teardown helper: stdin is the pod's network namespace; delete the
/// interface `index` there if it is still called `ifname`. Returns the exit status.
pub fn teardown_main(index: &str, ifname: &str) -> i32 {
    let run = || -> CniResult<()> {
        let index: u32 = index.parse().map_err(|_| {
            CniError::msg(
                code::INVALID_ENV,
                format!("{TEARDOWN_IFINDEX} {index:?} is not an index"),
            )
        })?;
        let stdin = std::io::stdin();
        nix::sched::setns(stdin.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| CniError::new(code::NETNS, "teardown: setns", e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CniError::new(code::IO, "teardown: runtime", e.to_string()))?;
        rt.block_on(async {
            let h = dp::connect()?;
            dp::delete_link_named(&h, index, ifname).await
        })
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!("teardown of {ifname}: {e}");
            1
        }
    }
}

/// An address as a host-length prefix.
pub fn host_net(a: IpAddr) -> IpNet {
    match a {
        IpAddr::V4(v) => IpNet::V4(ipnet::Ipv4Net::from(v)),
        IpAddr::V6(v) => IpNet::V6(ipnet::Ipv6Net::from(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(cmd: &str) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        v.insert("CNI_COMMAND".to_string(), cmd.to_string());
        v
    }

    #[test]
    fn version_command() {
        let o = run(&vars("VERSION"), br#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(o.exit, 0);
        let v = o.stdout.unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert!(v["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "1.1.0"));
        let o = run(&vars("VERSION"), b"");
        assert_eq!(o.stdout.unwrap()["cniVersion"], LATEST);
    }

    #[test]
    fn errors_are_spec_json() {
        let o = run(&vars("FROB"), br#"{"cniVersion":"1.0.0"}"#);
        assert_eq!(o.exit, 1);
        let v = o.stdout.unwrap();
        assert_eq!(v["code"], 4);
        assert_eq!(v["cniVersion"], "1.0.0");
        let o = run(&vars("ADD"), b"not json");
        assert_eq!(o.stdout.unwrap()["code"], 6);
        let o = run(
            &vars("ADD"),
            br#"{"cniVersion":"9.9.9","name":"n","type":"wren","ipam":{"type":"x"}}"#,
        );
        assert_eq!(o.stdout.unwrap()["code"], 1);
        let o = run(
            &vars("ADD"),
            br#"{"cniVersion":"1.0.0","name":"n","type":"wren","ipam":{"type":"x"}}"#,
        );
        assert_eq!(o.stdout.unwrap()["code"], 4);
    }

    #[test]
    fn status_without_agent_is_50() {
        let dir = tempfile::tempdir().unwrap();
        let conf = json!({"cniVersion":"1.1.0","name":"n","type":"wren","wren_dir": dir.path(), "ipam":{"type":"host-local"}});
        let o = run(&vars("STATUS"), conf.to_string().as_bytes());
        assert_eq!(o.exit, 1);
        assert_eq!(o.stdout.unwrap()["code"], 50);
        std::fs::write(dir.path().join("ready"), "{}").unwrap();
        let o = run(&vars("STATUS"), conf.to_string().as_bytes());
        assert_eq!(
            o,
            Outcome {
                stdout: None,
                exit: 0
            }
        );
    }

    #[test]
    fn alias_roundtrip() {
        let a = veth_alias("k8s-pod-network", "abc123", "eth0");
        let (n, att) = parse_alias(&a).unwrap();
        assert_eq!(n, "k8s-pod-network");
        assert_eq!(
            att,
            Attachment {
                container_id: "abc123".into(),
                ifname: "eth0".into()
            }
        );
        assert!(parse_alias("something else").is_none());
        assert!(parse_alias(TEARDOWN_ALIAS).is_none());
    }

    #[test]
    fn teardown_mark_roundtrip() {
        let m = teardown_mark(1_700_000_000, "k8s-pod-network", "abc123", "eth0");
        let (t, n, att) = parse_teardown_mark(&m).unwrap();
        assert_eq!((t, n.as_str()), (1_700_000_000, "k8s-pod-network"));
        assert_eq!(att.container_id, "abc123");
        assert_eq!(att.ifname, "eth0");
        // GC's alias parser never takes a mark for a live attachment, nor the reverse.
        assert!(parse_alias(&m).is_none());
        assert!(parse_teardown_mark(&veth_alias("n", "c", "eth0")).is_none());
        assert!(parse_teardown_mark("wren-teardown:x:n:c:eth0").is_none());
        assert!(parse_teardown_mark(TEARDOWN_ALIAS).is_none());
    }
}
