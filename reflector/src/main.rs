//! `wren-reflector --config FILE [--check]`: see the library documentation.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use wren_reflector::{LogFormat, RunOptions};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Wren's BGP route reflector (or plain speaker), run from a TOML file.
#[derive(Debug, Parser)]
#[command(name = "wren-reflector", version)]
struct Args {
    /// The configuration file (see reflector/examples/reflector.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration and exit (0: valid, 1: invalid, with the field and fix).
    #[arg(long)]
    check: bool,
    /// Log format on stderr (filter with RUST_LOG, default info).
    #[arg(long, value_enum, default_value = "text")]
    log_format: Format,
    /// We restarted with forwarding state preserved: advertise the graceful restart R and F
    /// bits and defer best-path selection until End-of-RIB from peers.
    #[arg(long)]
    graceful_restart: bool,
    /// Write the status snapshot as JSON to this file periodically.
    #[arg(long, value_name = "PATH")]
    status_file: Option<PathBuf>,
    /// Interval between status file writes.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    status_interval_ms: u64,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("wren-reflector: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    if args.check {
        let cfg = wren_reflector::load(&args.config)?;
        println!("{}", wren_reflector::summary(&cfg));
        return Ok(());
    }
    wren_reflector::init_logging(match args.log_format {
        Format::Text => LogFormat::Text,
        Format::Json => LogFormat::Json,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(wren_reflector::run(RunOptions {
        config: args.config,
        graceful_restart: args.graceful_restart,
        status_file: args.status_file,
        status_interval: Duration::from_millis(args.status_interval_ms),
    }))
}
