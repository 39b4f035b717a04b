//! Sans-IO BGP session FSM (RFC 4271 section 8) with connection collision detection
//! (section 6.8), DelayOpen, the RFC 9687 send hold timer, connect retry with exponential
//! backoff and jitter, damping of peer oscillations (IdleHoldTimer), RFC 9003 shutdown
//! communication, max-prefix teardown (RFC 4486) and RFC 8538 graceful restart awareness.
//!
//! No I/O and no clock: every input carries `now`, timers are deadlines.
//!
//! # Driver contract
//!
//! One [`Peer`] per configured (or dynamically accepted) neighbour:
//!
//! 1. `Peer::new(config, seed)`, then `handle(Event::ManualStart, now)`.
//! 2. After **every** call that takes `now` (`handle`, `accept`, `handle_timeout`), drain
//!    `poll_action()` until `None`, and re-arm a single timer at `poll_timeout()`.
//! 3. [`Action::Connect`]: open a TCP connection (with a connect timeout of your own) and
//!    report [`Event::TcpConnected`] or [`Event::TcpConnectionFails`] with that `conn`.
//! 4. An accepted socket from the peer's address: `accept(now)`; `None` means close it.
//! 5. Decoded messages: `handle(Event::from_message(conn, msg), now)`; decode errors:
//!    `Event::from_decode_error(conn, &err)`. EOF or a socket error: `TcpConnectionFails`.
//! 6. [`Action::Send`] then [`Action::Close`]: flush, then close. When the socket has had
//!    unsent data for a while report [`Event::SendBlocked`]; after progress
//!    [`Event::SendProgress`] (RFC 9687).
//! 7. [`Action::SessionEstablished`] / [`Action::SessionDown`] / `Deliver*` go to the RIB.
//!
//! [`testing::Pair`] wires two peers back to back over an in-memory pipe with virtual
//! time; [`testing::net::Net`] is the underlying TCP model for bigger simulations.
//!
//! # Collisions (RFC 4271 6.8)
//!
//! A peer holds at most one outbound and one inbound connection being set up, plus the
//! Established one. When an OPEN arrives and another connection is in OpenConfirm, the
//! connection initiated by the speaker with the higher BGP identifier survives (RFC 6286:
//! the higher AS when identifiers are equal); the loser gets Cease / Connection Collision
//! Resolution (6/7). A connection that reaches Established closes the others with 6/7. A
//! new OPEN while Established loses with 6/7, except when graceful restart was negotiated
//! and the new OPEN has the R bit: then the peer restarted (RFC 4724 4.2) and the old
//! session goes down with `gr_eligible`.
//!
//! # Choices where RFC 4271 leaves room or is bypassed
//!
//! * A failed connect in Connect goes to Active and retries after the ConnectRetryTimer
//!   (exponential backoff with the section 10 jitter) instead of Idle.
//! * Passive peers never initiate: no ConnectRetryTimer in Active.
//! * With a negotiated hold time of 0, OpenConfirm is still bounded by `open_hold_time`.
//! * The KeepaliveTimer is not restarted by UPDATEs the speaker sends (extra KEEPALIVEs are
//!   harmless).
//! * After a failure the peer waits in Idle for the IdleHoldTimer (damping, doubling per
//!   consecutive failure, reset after a session stayed up for `idle_hold.max`) and refuses
//!   connections meanwhile; with `idle_hold: None` it restarts at once.

pub mod config;
pub mod jitter;
pub mod negotiate;
pub mod peer;
pub mod testing;

#[cfg(test)]
mod tests;

pub use config::{Backoff, ConfigError, PeerAs, PeerConfig, SendHold, StopReason};
pub use jitter::Jitter;
pub use negotiate::{
    build_open, hard_reset, is_hard_reset, negotiate, shutdown_message, stop_notification,
    validate_open, Negotiated, OpenReject, AS_TRANS, BGP_VERSION,
};
pub use peer::{
    Action, ConnId, ConnInfo, Direction, DownInfo, DownReason, Event, Peer, State, Timer,
};
