//! Wren's BGP speaker library.
//!
//! Layering (dependencies point one way only):
//! `wire` (codec, no I/O) <- `fsm` / `rib` (sans-IO state machines) <- `speaker` (tokio driver)
//! <- the binaries (`wren-agent`, `wren-reflector`).

pub mod config;
pub mod fsm;
pub mod policy;
pub mod rib;
pub mod speaker;
pub mod transport;
pub mod wire;
