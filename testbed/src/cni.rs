//! The pod role: calling CNI plugins exactly as a container runtime does.
//!
//! For each plugin of the network config list, in order, the runtime runs the binary named by
//! `type` (searched in `CNI_PATH`) with `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH` in the environment and the plugin's config on stdin,
//! with `cniVersion` and `name` injected from the list and, after the first plugin,
//! `prevResult` set to the previous plugin's result. DEL runs the plugins in reverse order with
//! the final ADD result as `prevResult`. Plugins run in the node's namespace (the node is the
//! "host" of the pod), so host-side veths land there.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd::run_unchecked;
use crate::error::{Error, Result};
use crate::state::{LabState, PodState};

fn find_plugin(kind: &str, path: &[PathBuf]) -> Option<PathBuf> {
    if kind.contains('/') {
        return None;
    }
    path.iter().map(|d| d.join(kind)).find(|p| p.is_file())
}

fn invoke(
    command: &str,
    node_ns: &str,
    pod: &PodState,
    net_conf: &Value,
    plugin: &Value,
    prev: Option<&Value>,
) -> Result<Value> {
    let kind = plugin
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Cni {
            command: command.into(),
            pod: pod.name.clone(),
            plugin: "?".into(),
            msg: "a plugin in the conflist has no `type`".into(),
        })?;
    let cni_err = |msg: String| Error::Cni {
        command: command.into(),
        pod: pod.name.clone(),
        plugin: kind.into(),
        msg,
    };
    let bin = find_plugin(kind, &pod.cni_path).ok_or_else(|| {
        cni_err(format!(
            "plugin binary `{kind}` not found in CNI_PATH {}",
            pod.cni_path
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        ))
    })?;
    let mut conf = plugin.clone();
    if let Some(obj) = conf.as_object_mut() {
        for k in ["cniVersion", "name"] {
            if let Some(v) = net_conf.get(k) {
                obj.insert(k.into(), v.clone());
            }
        }
        obj.remove("capabilities");
        if let Some(p) = prev {
            if !p.is_null() {
                obj.insert("prevResult".into(), p.clone());
            }
        }
    }
    let stdin = serde_json::to_vec(&conf).map_err(|e| cni_err(e.to_string()))?;
    let cni_path = pod
        .cni_path
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let env = vec![
        ("CNI_COMMAND".to_string(), command.to_string()),
        ("CNI_CONTAINERID".to_string(), pod.container_id.clone()),
        ("CNI_NETNS".to_string(), format!("/run/netns/{}", pod.netns)),
        ("CNI_IFNAME".to_string(), pod.ifname.clone()),
        (
            "CNI_ARGS".to_string(),
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={}",
                pod.name, pod.container_id
            ),
        ),
        ("CNI_PATH".to_string(), cni_path),
    ];
    let bin_s = bin.display().to_string();
    let out = run_unchecked(
        "ip",
        &["netns", "exec", node_ns, bin_s.as_str()],
        &env,
        Some(&stdin),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // libcni: the error JSON is on stdout; stderr only if stdout is empty.
        let msg = match serde_json::from_str::<Value>(&stdout) {
            Ok(v) => format!(
                "code {}: {}{}",
                v.get("code").map(|c| c.to_string()).unwrap_or_default(),
                v.get("msg").and_then(Value::as_str).unwrap_or(""),
                v.get("details")
                    .and_then(Value::as_str)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Err(_) => {
                let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if e.is_empty() {
                    format!("{} with no output", out.status)
                } else {
                    e
                }
            }
        };
        return Err(cni_err(msg));
    }
    if command == "ADD" {
        serde_json::from_str(&stdout).map_err(|e| cni_err(format!("result is not JSON: {e}")))
    } else {
        Ok(Value::Null)
    }
}

fn plugins<'a>(conflist: &'a Value, pod: &str, command: &str) -> Result<&'a Vec<Value>> {
    conflist
        .get("plugins")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Cni {
            command: command.into(),
            pod: pod.into(),
            plugin: "-".into(),
            msg: "the network config list has no `plugins` array".into(),
        })
}

/// CNI ADD through the whole chain; returns the final result.
pub fn add(node_ns: &str, pod: &PodState) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for p in plugins(&pod.conflist, &pod.name, "ADD")? {
        let r = invoke("ADD", node_ns, pod, &pod.conflist, p, prev.as_ref())?;
        prev = Some(r);
    }
    Ok(prev.unwrap_or(Value::Null))
}

/// CNI DEL through the chain in reverse order (best effort: every plugin is called; the first
/// error is returned).
pub fn del_pod(st: &LabState, pod: &PodState) -> Result<()> {
    let node_ns = st.netns_of(&pod.node)?;
    let mut first = None;
    for p in plugins(&pod.conflist, &pod.name, "DEL")?.iter().rev() {
        if let Err(e) = invoke("DEL", node_ns, pod, &pod.conflist, p, Some(&pod.result)) {
            first.get_or_insert(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Addresses in a CNI result's `ips` list.
pub fn result_ips(result: &Value) -> Vec<IpNet> {
    result
        .get("ips")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.get("address").and_then(Value::as_str))
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The first address of a pod (what ping-matrix pings).
pub fn pod_ip(pod: &PodState) -> Option<IpAddr> {
    pod.ips.first().map(IpNet::addr)
}
