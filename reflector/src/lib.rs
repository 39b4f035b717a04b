//! `wren-reflector`: runs the Wren BGP speaker from a TOML file (route reflector when the
//! file sets `route_reflector` or `cluster_id`, else a plain speaker).
//!
//! * `--check`: validate the file (including policies) and exit 0, or 1 with the error
//!   naming the field and the fix.
//! * SIGTERM / SIGINT: Cease / Administrative Shutdown with the RFC 9003 message
//!   "wren-reflector shutting down" to every peer, then exit 0.
//! * SIGHUP: reload the file: neighbours added, removed or changed, originated prefixes
//!   added or withdrawn. Changes to global settings (AS, router id, cluster id, listener,
//!   graceful restart, templates of running dynamic peers) need a restart and are logged.
//! * `--status-file PATH`: the status snapshot as JSON, rewritten every
//!   `--status-interval-ms` (written to a temporary file and renamed into place).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use wren_bgp::config::{NeighborConfig, SpeakerConfig};
use wren_bgp::speaker::{self, CoreOptions, Speaker, SpeakerError, SpeakerOptions};

/// The RFC 9003 message sent to every peer on SIGTERM / SIGINT.
pub const SHUTDOWN_MESSAGE: &str = "wren-reflector shutting down";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What `main` parsed.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    /// We restarted with forwarding state preserved: advertise the GR R/F bits and defer
    /// best-path selection until End-of-RIB (bounded by `deferral_secs`).
    pub graceful_restart: bool,
    pub status_file: Option<PathBuf>,
    pub status_interval: Duration,
}

/// Set up tracing: `RUST_LOG` filter (default `info`), text or JSON lines on stderr.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: log files and journald get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Load and fully validate a configuration file (what `--check` does).
pub fn load(path: &Path) -> Result<SpeakerConfig> {
    let cfg = SpeakerConfig::from_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    speaker::validate(&cfg).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for o in &cfg.originate {
        speaker::originate_attrs(o).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(cfg)
}

/// A one-line summary for `--check`.
pub fn summary(cfg: &SpeakerConfig) -> String {
    format!(
        "config OK: AS {}, router id {}, {}, {} neighbour(s), {} listen range(s), {} prefix(es) to originate, {} polic(ies)",
        cfg.asn,
        cfg.router_id,
        match cfg.cluster_id {
            Some(c) => format!("route reflector (cluster id {c})"),
            None => "plain speaker".to_owned(),
        },
        cfg.neighbors.len(),
        cfg.listen_ranges.len(),
        cfg.originate.len(),
        cfg.policy.len(),
    )
}

/// Write the status snapshot atomically (temporary file + rename).
pub fn write_status(path: &Path, status: &speaker::SpeakerStatus) -> Result<()> {
    let json = serde_json::to_vec_pretty(status)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "status.json".to_owned());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Run until SIGTERM / SIGINT.
pub async fn run(opts: RunOptions) -> Result<()> {
    let mut cfg = load(&opts.config)?;
    tracing::info!(config = %opts.config.display(), "{}", summary(&cfg));
    let sopts = SpeakerOptions {
        core: CoreOptions {
            restarted: opts.graceful_restart,
            ..CoreOptions::default()
        },
        ..SpeakerOptions::default()
    };
    let (speaker, mut task) =
        Speaker::start(cfg.clone(), sopts).context("starting the BGP speaker")?;
    for a in speaker.listen_addrs() {
        tracing::info!(address = %a, "listening");
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut status_tick =
        tokio::time::interval(opts.status_interval.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match reload(&speaker, &cfg, &opts.config).await {
                    Ok(new) => cfg = new,
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "reload failed, keeping the running configuration"),
                }
            }
            _ = status_tick.tick(), if opts.status_file.is_some() => {
                if let (Some(path), Ok(st)) = (&opts.status_file, speaker.status().await) {
                    if let Err(e) = write_status(path, &st) {
                        tracing::warn!(error = %format!("{e:#}"), "cannot write the status file");
                    }
                }
            }
            r = &mut task => {
                r.context("speaker task")?;
                anyhow::bail!("the speaker stopped unexpectedly");
            }
        }
    }
    tracing::info!("signal received, shutting down");
    if let Some(path) = &opts.status_file {
        if let Ok(st) = speaker.status().await {
            let _ = write_status(path, &st);
        }
    }
    speaker.shutdown(SHUTDOWN_MESSAGE).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    Ok(())
}

/// SIGHUP: apply the neighbour and originate differences of the new file.
///
/// Settings that need a restart (global ones, policies, templates, listen ranges) keep
/// their running values in the returned configuration, so the warning repeats until the
/// restart and neighbours are checked against the policies the speaker runs with. A file
/// whose neighbours name a policy that is not running is refused before anything is
/// applied. Each change is applied on its own (removing a peer that is already gone or
/// adding one that exists is not an error), so after a failure the next reload, which
/// compares with the last configuration applied in full, converges.
async fn reload(speaker: &Speaker, old: &SpeakerConfig, path: &Path) -> Result<SpeakerConfig> {
    let mut new = load(path)?;
    if new.asn != old.asn
        || new.router_id != old.router_id
        || new.cluster_id != old.cluster_id
        || new.listen != old.listen
        || new.rfc8212_default_deny != old.rfc8212_default_deny
        || new.max_dynamic_peers != old.max_dynamic_peers
        || new.graceful_restart != old.graceful_restart
        || new.policy != old.policy
        || new.listen_ranges != old.listen_ranges
        || new.templates != old.templates
    {
        tracing::warn!("global settings, policies, templates or listen ranges changed: restart wren-reflector to apply them");
    }
    new.asn = old.asn;
    new.router_id = old.router_id;
    new.cluster_id = old.cluster_id;
    new.listen = old.listen.clone();
    new.rfc8212_default_deny = old.rfc8212_default_deny;
    new.max_dynamic_peers = old.max_dynamic_peers;
    new.graceful_restart = old.graceful_restart;
    new.policy = old.policy.clone();
    new.listen_ranges = old.listen_ranges.clone();
    new.templates = old.templates.clone();
    for n in &new.neighbors {
        let o = &n.options;
        for name in o.import_policy.iter().chain(&o.export_policy) {
            if !old.policy.contains_key(name) {
                anyhow::bail!(
                    "{}: neighbour {} uses policy \"{name}\", which the running speaker does not have (policies change only at a restart); nothing was applied: restart wren-reflector, or use a running policy",
                    path.display(),
                    n.address
                );
            }
        }
    }
    let olds: BTreeMap<IpAddr, &NeighborConfig> =
        old.neighbors.iter().map(|n| (n.address, n)).collect();
    let news: BTreeMap<IpAddr, &NeighborConfig> =
        new.neighbors.iter().map(|n| (n.address, n)).collect();
    let mut failed: Vec<String> = Vec::new();
    for a in olds.keys().filter(|a| !news.contains_key(a)) {
        tracing::info!(peer = %a, "reload: removing neighbour");
        match speaker.remove_peer(*a).await {
            Ok(()) | Err(SpeakerError::UnknownPeer(_)) => {}
            Err(e) => failed.push(format!("removing {a}: {e}")),
        }
    }
    for (a, n) in &news {
        let r = match olds.get(a) {
            None => {
                tracing::info!(peer = %a, "reload: adding neighbour");
                match speaker.add_peer((*n).clone()).await {
                    Err(SpeakerError::PeerExists(_)) => speaker.update_peer((*n).clone()).await,
                    r => r,
                }
            }
            Some(o) if o != n => {
                tracing::info!(peer = %a, "reload: updating neighbour");
                match speaker.update_peer((*n).clone()).await {
                    Err(SpeakerError::UnknownPeer(_)) => speaker.add_peer((*n).clone()).await,
                    r => r,
                }
            }
            Some(_) => Ok(()),
        };
        if let Err(e) = r {
            failed.push(format!("neighbour {a}: {e}"));
        }
    }
    for o in &old.originate {
        if !new.originate.iter().any(|x| x.prefix == o.prefix) {
            if let Err(e) = speaker.withdraw(o.prefix).await {
                failed.push(format!("withdrawing {}: {e}", o.prefix));
            }
        }
    }
    for o in &new.originate {
        if !old.originate.contains(o) {
            let (prefix, attrs) = speaker::originate_attrs(o)?;
            if let Err(e) = speaker.originate(prefix, attrs).await {
                failed.push(format!("originating {prefix}: {e}"));
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "reload applied in part; the next SIGHUP retries: {}",
            failed.join("; ")
        );
    }
    tracing::info!("configuration reloaded");
    Ok(new)
}
