//! A real runtime: a private containerd (own root, state, socket; killed by PID)
//! runs a busybox image built and imported by the test with `ctr run --cni`, which
//! calls wren through libcni (go-cni) exactly as a node would.
//!
//! Isolation: containerd and ctr run in the test's "host" network namespace
//! (`nsenter --net`) and in private mount namespaces (`unshare -m`): containerd gets a
//! tmpfs on /run (its shim sockets and runc state) and ctr gets overlays on /etc and
//! /opt, where go-cni's fixed paths /etc/cni/net.d and /opt/cni/bin are filled. Nothing
//! is written to the machine's /etc, /opt or /run. (`ip netns exec` is not used: it
//! remounts /sys and hides the cgroup mounts runc needs.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn sha256(path: &Path) -> String {
    sh(&["sha256sum", path.to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Write `data` as a blob of the OCI layout in `dir`; returns (digest hex, size).
fn blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let tmp = dir.join("blob.tmp");
    std::fs::write(&tmp, data).unwrap();
    let d = sha256(&tmp);
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&d)).unwrap();
    (d, data.len())
}

/// A one-layer OCI image archive holding /bin/busybox, named docker.io/library/wrentest:1.
fn build_image(t: &Path) -> PathBuf {
    let rootfs = t.join("rootfs/bin");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("busybox")).unwrap();
    let layout = t.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer_tar = t.join("layer.tar");
    sh(&[
        "tar",
        "--numeric-owner",
        "--owner=0",
        "--group=0",
        "-C",
        t.join("rootfs").to_str().unwrap(),
        "-cf",
        layer_tar.to_str().unwrap(),
        ".",
    ]);
    let (ld, ls) = blob(&layout, &std::fs::read(&layer_tar).unwrap());
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{ld}")]}});
    let (cd, cs) = blob(&layout, config.to_string().as_bytes());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{ld}"), "size": ls}]});
    let (md, ms) = blob(&layout, manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{md}"), "size": ms, "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": "docker.io/library/wrentest:1", "org.opencontainers.image.ref.name": "1"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let image = t.join("image.tar");
    sh(&[
        "tar",
        "-C",
        layout.to_str().unwrap(),
        "-cf",
        image.to_str().unwrap(),
        ".",
    ]);
    image
}

/// The private containerd; on drop it and every process naming its socket (shims)
/// are killed by PID.
struct Containerd {
    child: Child,
    sock: PathBuf,
    /// containerd namespace; runc leaves an empty cgroup of that name behind.
    namespace: String,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let needle = self.sock.to_string_lossy().into_owned();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shims started by this instance carry its socket path on their command line.
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&needle) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        // The per-namespace parent cgroups runc leaves (empty once the task is gone).
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join(&self.namespace));
            }
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.namespace));
    }
}

fn run_with_deadline(mut cmd: Command, secs: u64) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn ctr_run_with_cni() {
    skip_unless_root!();
    for bin in [
        "containerd",
        "ctr",
        "runc",
        "nsenter",
        "unshare",
        "tar",
        "sha256sum",
    ] {
        if !have(bin) {
            eprintln!("skipping: {bin} missing (install containerd, runc, util-linux)");
            return;
        }
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping: /bin/busybox missing (install busybox-static)");
        return;
    }
    let host = host_ns();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let image = build_image(t);
    let sock = t.join("c.sock");
    std::fs::write(
        t.join("config.toml"),
        format!(
            "version = 2\nroot = \"{r}\"\nstate = \"{s}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\"]\n\
             [grpc]\n  address = \"{a}\"\n[ttrpc]\n  address = \"{a}.ttrpc\"\n",
            r = t.join("root").display(),
            s = t.join("state").display(),
            a = sock.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(t.join("containerd.log")).unwrap();
    let child = Command::new("nsenter")
        .arg(format!("--net={}", host.path()))
        .args(["unshare", "-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /run && exec containerd --config {}",
            t.join("config.toml").display()
        ))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start containerd");
    let ns = unique("wrenctr");
    let _cd = Containerd {
        child,
        sock: sock.clone(),
        namespace: ns.clone(),
    };
    let a = sock.to_str().unwrap().to_string();
    assert!(
        wait_until(20, || try_sh(&["ctr", "-a", &a, "version"]).0),
        "containerd did not come up: {}",
        std::fs::read_to_string(t.join("containerd.log")).unwrap_or_default()
    );
    sh(&[
        "ctr",
        "-a",
        &a,
        "-n",
        &ns,
        "images",
        "import",
        "--snapshotter",
        "native",
        "--base-name",
        "docker.io/library/wrentest",
        image.to_str().unwrap(),
    ]);

    // CNI: the wren binary under test plus the reference host-local, and a conflist.
    let bin = t.join("cnibin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(wren_bin(), bin.join("wren")).unwrap();
    std::os::unix::fs::symlink(HOST_LOCAL, bin.join("host-local")).unwrap();
    let dirs = Dirs::new(&["10.244.21.0/24"], 1400);
    let conflist = json!({"cniVersion": "1.0.0", "name": "wrenctr", "plugins": [
        {"type": "wren", "wren_dir": dirs.wren_dir(), "log_level": "info", "log_file": t.join("wren.log"),
         "ipam": {"type": "host-local", "subnet": "usePodCidr", "dataDir": dirs.ipam_dir()}}]});
    std::fs::write(t.join("10-wren.conflist"), conflist.to_string()).unwrap();
    for d in ["etcup", "etcwork", "optup", "optwork", "fifo"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    let td = t.display();
    let script = format!(
        "set -e; mount -t overlay overlay -o lowerdir=/etc,upperdir={td}/etcup,workdir={td}/etcwork /etc; \
         mount -t overlay overlay -o lowerdir=/opt,upperdir={td}/optup,workdir={td}/optwork /opt; \
         mkdir -p /etc/cni/net.d /opt/cni/bin; cp {td}/10-wren.conflist /etc/cni/net.d/; cp -P {td}/cnibin/* /opt/cni/bin/; \
         exec ctr -a {a} -n {ns} run --rm --cni --fifo-dir {td}/fifo --snapshotter native docker.io/library/wrentest:1 wrenctr1 \
         /bin/busybox sh -c 'ip addr show eth0; ip route; ping -c1 -W2 {HOST_IP}'"
    );
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", host.path())).args([
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]);
    let (ok, out) = run_with_deadline(cmd, 90);
    let wren_log = std::fs::read_to_string(t.join("wren.log")).unwrap_or_default();
    assert!(ok, "ctr run failed: {out}\nwren log:\n{wren_log}");
    assert!(
        out.contains("inet 10.244.21.") && out.contains("/32"),
        "{out}"
    );
    assert!(out.contains("mtu 1400"), "{out}");
    assert!(out.contains("default via 169.254.1.1 dev eth0"), "{out}");
    assert!(
        out.contains("1 packets received"),
        "pod could not reach the host: {out}"
    );
    assert!(
        wren_log.contains(&format!("ADD container={ns}-wrenctr1")),
        "{wren_log}"
    );
    assert!(
        wren_log.contains(&format!("DEL container={ns}-wrenctr1")),
        "{wren_log}"
    );
    // ctr's --rm path ran DEL: nothing is left.
    assert!(wait_until(10, || links_with_prefix(&host, "cali").is_empty()));
    assert!(
        dirs.allocations("wrenctr").is_empty(),
        "{:?}",
        dirs.allocations("wrenctr")
    );
    assert!(!Path::new("/etc/cni/net.d/10-wren.conflist").exists());
}
