//! `wren`: the CNI plugin binary. Reads `CNI_*` from the environment and the network
//! configuration from stdin; prints a result or a CNI error (JSON) on stdout. Logs go
//! to stderr or to `log_file`, never to stdout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use wren_cni::conf::parse_level;
use wren_cni::plugin;

fn init_logging(stdin: &[u8]) {
    let conf: serde_json::Value = serde_json::from_slice(stdin).unwrap_or_default();
    let level = conf
        .get("log_level")
        .and_then(|v| v.as_str())
        .and_then(parse_level)
        .unwrap_or(tracing::Level::WARN);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    let file = conf.get("log_file").and_then(|v| v.as_str()).and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    match file {
        Some(f) => {
            let _ = builder.with_writer(std::sync::Mutex::new(f)).try_init();
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    }
}

fn main() -> ExitCode {
    let vars: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("CNI_"))
        .collect();
    if !vars.contains_key("CNI_COMMAND") {
        eprintln!(
            "wren CNI plugin {}: CNI protocol versions supported: {}",
            env!("CARGO_PKG_VERSION"),
            wren_cni::types::SUPPORTED_VERSIONS.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        eprintln!("wren: cannot read stdin: {e}");
    }
    init_logging(&stdin);
    let out = plugin::run(&vars, &stdin);
    if let Some(v) = out.stdout {
        let mut so = std::io::stdout().lock();
        let _ = writeln!(so, "{v}");
        let _ = so.flush();
    }
    if out.exit == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(u8::try_from(out.exit).unwrap_or(1))
    }
}
