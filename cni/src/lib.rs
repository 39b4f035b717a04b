//! Wren's CNI plugin: wires a pod with a cali-style veth, proxy ARP and /32 (/128)
//! routes, delegating address management to a standard IPAM plugin.
//!
//! The binary `wren` is a thin wrapper around [`plugin::run`].

pub mod conf;
pub mod dataplane;
pub mod error;
pub mod gc;
pub mod ipam;
pub mod ns;
pub mod plugin;
pub mod types;
