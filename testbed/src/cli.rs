//! The `wren-testbed` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};

use crate::lab::{Lab, UpOptions};
use crate::state::{self, LabState};
use crate::topology::Topology;

/// Multi-node labs in network namespaces from containerlab topology files.
#[derive(Debug, Parser)]
#[command(name = "wren-testbed", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab from a topology file and keep it until Ctrl-C (or leave it with --detach).
    Up {
        /// containerlab topology file (*.clab.yml).
        file: PathBuf,
        /// Return once the lab is up; remove it later with `wren-testbed down`.
        #[arg(long)]
        detach: bool,
        /// Do not start the nodes' `wren.role` daemons/processes.
        #[arg(long)]
        no_roles: bool,
        /// Do not create the `wren.pods` pods.
        #[arg(long)]
        no_pods: bool,
        /// CNI plugin directory (repeatable; default /usr/lib/cni and /opt/cni/bin).
        #[arg(long = "cni-path")]
        cni_path: Vec<PathBuf>,
    },
    /// Remove a lab (detached, or any with --stale whose owner process is dead).
    Down {
        /// Lab name or prefix (default: the only lab).
        #[arg(long)]
        lab: Option<String>,
        /// Remove every lab whose owning process is dead (crashed runs).
        #[arg(long)]
        stale: bool,
    },
    /// Run a command in a node's namespace.
    Exec {
        /// Lab name or prefix (default: the only lab).
        #[arg(long)]
        lab: Option<String>,
        /// Node name.
        node: String,
        /// Command and arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Ping every pod from every pod; print loss and RTT.
    PingMatrix {
        /// Lab name or prefix (default: the only lab).
        #[arg(long)]
        lab: Option<String>,
        /// Echo requests per pair.
        #[arg(long, default_value_t = 3)]
        count: u32,
    },
    /// Show labs: nodes, links, processes, pods.
    Status {
        /// Lab name or prefix (default: all labs).
        #[arg(long)]
        lab: Option<String>,
        /// Print the raw JSON records.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Run a command under user-mode Linux with kernel modules loaded.
    UmlRun {
        /// Kernel module to load (repeatable), e.g. ipip.
        #[arg(long = "module")]
        modules: Vec<String>,
        /// Seconds before the UML kernel is killed.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Command and arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Parse and validate a topology file.
    Validate {
        /// containerlab topology file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// List the benchmarks.
    List,
    /// Run a benchmark by name.
    Run {
        /// Benchmark name.
        name: String,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wren-testbed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Up {
            file,
            detach,
            no_roles,
            no_pods,
            cni_path,
        } => {
            let topo = Topology::from_file(&file)?;
            let missing = crate::kernel::missing_modules(&topo.required_modules());
            if !missing.is_empty() {
                bail!(
                    "this kernel lacks module(s) {} that the topology needs (wren.modules); \
                     run the scenario under user-mode Linux: wren-testbed uml-run --module {} -- <test command>",
                    missing.join(", "),
                    missing.join(" --module ")
                );
            }
            let lab = Lab::up_with(
                &topo,
                &UpOptions {
                    start_roles: !no_roles,
                    start_pods: !no_pods,
                    cni_path,
                },
            )?;
            print_status(&lab.state());
            if detach {
                let st = lab.detach()?;
                println!(
                    "detached; remove with: wren-testbed down --lab {}",
                    st.prefix
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("lab {} is up; Ctrl-C tears it down", lab.prefix());
            let mut set = SigSet::empty();
            for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                set.add(s);
            }
            set.thread_block().context("blocking signals")?;
            let sig = set.wait().context("waiting for a signal")?;
            let _ = set.thread_unblock();
            eprintln!("{sig}: tearing down lab {}", lab.prefix());
            lab.down()?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Down { lab, stale } => {
            if stale {
                let removed = state::down_stale();
                if removed.is_empty() {
                    println!("no stale labs");
                }
                let mut ok = true;
                for (p, errs) in removed {
                    println!("removed stale lab {p}");
                    for e in errs {
                        ok = false;
                        eprintln!("  {e}");
                    }
                }
                return Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let st = state::find_lab(lab.as_deref())?;
            if !st.detached && st.owner_alive() {
                bail!(
                    "lab {} is owned by running process {} (a foreground `up` or a test); stop that \
                     process (Ctrl-C) and it tears the lab down",
                    st.prefix,
                    st.owner_pid
                );
            }
            let errs = state::teardown(&st);
            for e in &errs {
                eprintln!("{e}");
            }
            println!("removed lab {} ({})", st.prefix, st.name);
            Ok(if errs.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Exec { lab, node, cmd } => {
            let st = state::find_lab(lab.as_deref())?;
            let ns = st.netns_of(&node)?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", ns])
                .args(&cmd)
                .status()
                .context("running ip netns exec")?;
            Ok(ExitCode::from(
                u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
            ))
        }
        Cmd::PingMatrix { lab, count } => {
            let st = state::find_lab(lab.as_deref())?;
            if st.pods.len() < 2 {
                println!(
                    "lab {} has {} pod(s); nothing to ping",
                    st.prefix,
                    st.pods.len()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let m = crate::ping::matrix(&st, count)?;
            print!("{m}");
            Ok(if m.all_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Status { lab, json } => {
            let labs: Vec<LabState> = match lab {
                Some(l) => vec![state::find_lab(Some(&l))?],
                None => state::list_labs(),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&labs)?);
            } else if labs.is_empty() {
                println!("no labs");
            } else {
                for l in &labs {
                    print_status(l);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(BenchCmd::List) => {
            println!("no benchmarks yet");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(BenchCmd::Run { name }) => {
            bail!("no benchmark named `{name}`: no benchmarks yet (see `wren-testbed bench list`)")
        }
        Cmd::UmlRun {
            modules,
            timeout,
            cmd,
        } => {
            let r = crate::uml::run(&cmd, &modules, &[], Duration::from_secs(timeout))?;
            print!("{}", r.output);
            eprintln!(
                "uml-run: exit {} after {:.1} s",
                r.exit_code,
                r.elapsed.as_secs_f64()
            );
            Ok(ExitCode::from(u8::try_from(r.exit_code).unwrap_or(1)))
        }
        Cmd::Validate { file } => {
            let t = Topology::from_file(&file)?;
            println!(
                "{}: lab {} with {} nodes and {} links is valid",
                file.display(),
                t.name,
                t.nodes.len(),
                t.links.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_status(st: &LabState) {
    let owner = if st.detached {
        "detached".to_string()
    } else if st.owner_alive() {
        format!("owner pid {}", st.owner_pid)
    } else {
        format!(
            "STALE (owner pid {} is gone; `wren-testbed down --stale`)",
            st.owner_pid
        )
    };
    println!("lab {} ({}), {owner}", st.name, st.prefix);
    println!("  nodes:");
    for n in &st.namespaces {
        println!("    {:<20} {:<7} netns {}", n.node, n.kind, n.netns);
    }
    if !st.links.is_empty() {
        println!("  links:");
        for l in &st.links {
            println!("    {} <-> {}", l.a, l.b);
        }
    }
    if !st.processes.is_empty() {
        println!("  processes:");
        for p in &st.processes {
            let alive = if state::process_alive(p.pid) {
                "running"
            } else {
                "exited"
            };
            println!(
                "    {:<12} {:<10} pid {:<8} {:<8} log {}",
                p.node,
                p.name,
                p.pid,
                alive,
                p.log.display()
            );
        }
    }
    if !st.pods.is_empty() {
        println!("  pods:");
        for p in &st.pods {
            let ips: Vec<String> = p.ips.iter().map(|i| i.to_string()).collect();
            println!(
                "    {}.{:<16} netns {} ips {}",
                p.node,
                p.name,
                p.netns,
                ips.join(",")
            );
        }
    }
}
