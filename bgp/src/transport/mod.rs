//! TCP transport for BGP sessions (driver side, tokio).
//!
//! * [`connect`]: outbound connection with source address binding, port, timeout, TCP MD5
//!   (RFC 2385), GTSM (RFC 5082) or a fixed TTL (eBGP direct = 1, multihop = n), `TCP_NODELAY`.
//! * [`Listener`]: one or more listening sockets (IPv4, IPv6, dual-stack) with per-peer or
//!   per-range MD5 keys and TTL policies that can change at run time; `accept` applies the
//!   peer's TTL policy to the new socket.
//!
//! Linux only (the socket options are Linux's). Passwords never reach a log: [`Md5Key`]'s
//! `Debug` is redacted.

mod connect;
mod ifaddr;
mod listener;
pub mod sockopt;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

pub use connect::{connect, ConnectOptions, DEFAULT_CONNECT_TIMEOUT};
pub use ifaddr::{interface_addresses, select_interface_addresses, InterfaceAddresses};
pub use listener::{Accepted, Listener};
pub use sockopt::MD5_MAX_KEY_LEN;

/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;

/// A TCP MD5 signature key (RFC 2385): 1 to 80 octets. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Key(Vec<u8>);

impl Md5Key {
    /// Checks the length (1..=80 octets, the kernel's limit).
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, TransportError> {
        let key = key.into();
        if key.is_empty() || key.len() > MD5_MAX_KEY_LEN {
            return Err(TransportError::Md5KeyLength { len: key.len() });
        }
        Ok(Md5Key(key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5Key(<redacted>)")
    }
}

impl Drop for Md5Key {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

/// How a session's sockets set and check the IP TTL (IPv6: hop limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TtlPolicy {
    /// The kernel's default TTL, no check on received packets.
    #[default]
    Default,
    /// Send with this TTL (eBGP direct: 1; eBGP multihop: n), no check on received packets.
    Ttl(u8),
    /// GTSM (RFC 5082): send with TTL 255 and drop received packets whose TTL is below
    /// `255 - hops + 1` (`hops` = 1 for a directly connected peer).
    Security { hops: u8 },
}

impl TtlPolicy {
    /// The TTL to send with, if not the kernel default.
    pub fn send_ttl(self) -> Option<u8> {
        match self {
            TtlPolicy::Default => None,
            TtlPolicy::Ttl(t) => Some(t),
            TtlPolicy::Security { .. } => Some(255),
        }
    }

    /// The minimum TTL accepted on received packets (GTSM only).
    pub fn min_ttl(self) -> Option<u8> {
        match self {
            TtlPolicy::Security { hops } => Some(255u8.saturating_sub(hops).saturating_add(1)),
            _ => None,
        }
    }

    fn validate(self) -> Result<(), TransportError> {
        match self {
            TtlPolicy::Ttl(0) => Err(TransportError::InvalidTtl { ttl: 0 }),
            TtlPolicy::Security { hops: 0 } => Err(TransportError::InvalidGtsmHops { hops: 0 }),
            _ => Ok(()),
        }
    }
}

/// What the transport enforces for one peer (or one listen range).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeerSecurity {
    pub md5: Option<Md5Key>,
    pub ttl: TtlPolicy,
}

/// Transport errors. Each names the address involved.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TCP MD5 key of {len} octets is invalid, use 1 to 80 octets")]
    Md5KeyLength { len: usize },
    #[error("TTL {ttl} is invalid, use 1 to 255")]
    InvalidTtl { ttl: u8 },
    #[error("TTL security hops {hops} is invalid, use 1 to 255")]
    InvalidGtsmHops { hops: u8 },
    #[error("local address {local} and remote address {remote} are of different IP families")]
    FamilyMismatch { local: IpAddr, remote: SocketAddr },
    #[error("{addr}: {op} failed: {source}")]
    Socket {
        addr: SocketAddr,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{addr}: bind failed: {source} (the address must be one of this host's and the port free: check listen_addresses / listen_port, or the neighbour's local_address)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("connect to {remote} failed: {source}")]
    Connect {
        remote: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("connect to {remote} timed out after {timeout:?} (peer down, filtered, or TCP MD5 / TTL security mismatch)")]
    ConnectTimeout {
        remote: SocketAddr,
        timeout: Duration,
    },
    #[error("accept failed: {source}")]
    Accept {
        #[source]
        source: io::Error,
    },
    #[error("listener has no sockets (no listen address)")]
    NoListenAddress,
    #[error("the listener must be created inside a tokio runtime")]
    NoRuntime,
}

/// Applies `ttl` to a socket. `socket_v6`: the socket is AF_INET6; `peer_v4`: the peer is
/// IPv4 (on an AF_INET6 socket, a v4-mapped peer; IPv4 options then apply).
pub(crate) fn apply_ttl(
    fd: BorrowedFd<'_>,
    socket_v6: bool,
    peer_v4: bool,
    ttl: TtlPolicy,
) -> io::Result<()> {
    match ttl.send_ttl() {
        Some(t) => {
            if peer_v4 {
                sockopt::set_ttl_v4(fd, t)?;
            }
            if socket_v6 {
                sockopt::set_hops_v6(fd, t)?;
            }
        }
        // An accepted socket may have inherited the listener's TTL 255.
        None => {
            if peer_v4 {
                sockopt::set_default_ttl_v4(fd)?;
            }
            if socket_v6 {
                sockopt::set_default_hops_v6(fd)?;
            }
        }
    }
    let min = ttl.min_ttl().unwrap_or(0);
    if peer_v4 {
        sockopt::set_min_ttl_v4(fd, min)?;
    }
    if socket_v6 {
        sockopt::set_min_hops_v6(fd, min)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_key_debug_is_redacted_and_length_checked() {
        let k = Md5Key::new("hunter2").unwrap();
        assert_eq!(format!("{k:?}"), "Md5Key(<redacted>)");
        let sec = PeerSecurity {
            md5: Some(k),
            ttl: TtlPolicy::Default,
        };
        assert!(!format!("{sec:?}").contains("hunter2"));
        assert!(matches!(
            Md5Key::new(""),
            Err(TransportError::Md5KeyLength { len: 0 })
        ));
        assert!(Md5Key::new(vec![b'a'; 80]).is_ok());
        assert!(matches!(
            Md5Key::new(vec![b'a'; 81]),
            Err(TransportError::Md5KeyLength { len: 81 })
        ));
    }

    #[test]
    fn ttl_policy_values() {
        assert_eq!(TtlPolicy::Security { hops: 1 }.min_ttl(), Some(255));
        assert_eq!(TtlPolicy::Security { hops: 3 }.min_ttl(), Some(253));
        assert_eq!(TtlPolicy::Security { hops: 255 }.min_ttl(), Some(1));
        assert_eq!(TtlPolicy::Security { hops: 3 }.send_ttl(), Some(255));
        assert_eq!(TtlPolicy::Ttl(5).send_ttl(), Some(5));
        assert_eq!(TtlPolicy::Ttl(5).min_ttl(), None);
        assert_eq!(TtlPolicy::Default.send_ttl(), None);
        assert!(TtlPolicy::Ttl(0).validate().is_err());
        assert!(TtlPolicy::Security { hops: 0 }.validate().is_err());
    }
}
