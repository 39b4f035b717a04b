//! `wren-testbed`: multi-node labs in network namespaces, described by containerlab topology
//! files, with real BGP daemons, CNI pods and user-mode Linux for missing kernel modules.
//!
//! A test brings a topology up, starts daemons, and waits on state:
//!
//! ```no_run
//! use std::time::Duration;
//! use wren_testbed::{daemons::{bird::Bird, BgpDaemon, BgpPeer, BgpSpeaker}, wait_until, Lab, Topology};
//! # fn main() -> wren_testbed::Result<()> {
//! let topo = Topology::from_file("testbed/topologies/rr-interop.clab.yml")?;
//! let lab = Lab::up(&topo)?;                      // namespaces, veths, bridge, exec commands
//! let rr = Bird::start(&lab, "rr", &BgpSpeaker::new(65000, "10.0.0.1".parse().unwrap()))?;
//! let peer = BgpPeer::new("c1", "10.0.0.2".parse::<std::net::IpAddr>().unwrap(), 65000);
//! wait_until("rr ~ c1 Established", Duration::from_secs(30), || rr.peer_established(&peer))?;
//! drop(rr);
//! lab.down()?;                                    // or just drop it
//! # Ok(()) }
//! ```

pub mod cli;
pub mod cmd;
pub mod cni;
pub mod daemons;
pub mod error;
pub mod kernel;
pub mod lab;
pub mod ping;
pub mod process;
pub mod state;
pub mod topology;
pub mod uml;
pub mod wait;

pub use error::{Error, Result};
pub use lab::{skip_reason, Lab, UpOptions};
pub use process::Process;
pub use topology::Topology;
pub use wait::wait_until;
