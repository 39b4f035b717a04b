//! Per-peer session configuration for the FSM, validated into typed values.

use std::net::Ipv4Addr;
use std::time::Duration;

use thiserror::Error;

use crate::wire::{AddPathEntry, Capability, Family, GracefulRestartCap};

/// Which AS numbers the peer may present in its OPEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerAs {
    /// Exactly this AS (static neighbours).
    Exact(u32),
    /// Our own AS (iBGP from a dynamic range).
    Internal,
    /// Any AS other than ours (eBGP from a dynamic range).
    External,
    /// Any AS at all (dynamic neighbours without an AS restriction).
    Any,
}

impl PeerAs {
    /// Whether `asn` is acceptable given our own AS `local_as`.
    pub fn accepts(self, asn: u32, local_as: u32) -> bool {
        match self {
            PeerAs::Exact(a) => a == asn,
            PeerAs::Internal => asn == local_as,
            PeerAs::External => asn != local_as,
            PeerAs::Any => true,
        }
    }
}

/// An exponential backoff: the first interval is `initial`, each next one doubles, capped at
/// `max`. Every interval is multiplied by a jitter factor in [0.75, 1.0) as RFC 4271
/// section 10 prescribes for ConnectRetryTimer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// A backoff that never grows (`initial == max`).
    pub const fn fixed(interval: Duration) -> Self {
        Backoff {
            initial: interval,
            max: interval,
        }
    }
}

/// The RFC 9687 send hold timer setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SendHold {
    /// The RFC 9687 suggested value: the greater of 8 minutes and twice the hold time
    /// (negotiated hold time once known, else the configured one).
    #[default]
    Default,
    /// A fixed send hold time.
    Fixed(Duration),
    /// No send hold timer.
    Disabled,
}

/// Why we stop a session; selects the Cease subcode and data (RFC 4486, RFC 9003) and
/// whether the NOTIFICATION is wrapped in a Hard Reset when the RFC 8538 N bit was
/// negotiated (RFC 8538 section 5 table: Hard Reset for subcodes 1, 2, 3, 9).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// Cease / Administrative Shutdown (2) with an RFC 9003 shutdown communication (may be
    /// empty). Hard Reset when N was negotiated.
    AdminShutdown { message: String },
    /// Cease / Peer De-configured (3). Hard Reset when N was negotiated.
    Deconfigured,
    /// Cease / Administrative Reset (4) with an RFC 9003 shutdown communication. With
    /// `graceful` and the N bit negotiated the peer keeps our routes as stale (RFC 8538);
    /// otherwise a Hard Reset is sent.
    AdminReset { message: String, graceful: bool },
    /// Cease / Other Configuration Change (6); graceful restart applies when negotiated.
    ConfigChange,
    /// Cease / Out of Resources (8); graceful restart applies when negotiated.
    OutOfResources,
    /// Cease / Maximum Number of Prefixes Reached (1) with the RFC 4486 data (AFI, SAFI,
    /// upper bound). Hard Reset when N was negotiated.
    MaxPrefix { family: Family, limit: u32 },
}

/// Configuration of one peer's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Our AS (4 octets; the OPEN carries AS_TRANS when it does not fit in 2).
    pub local_as: u32,
    /// Our BGP identifier.
    pub local_id: Ipv4Addr,
    /// Which AS the peer may have.
    pub peer_as: PeerAs,
    /// Never initiate TCP connections; wait for the peer (RFC 4271 8.1.1
    /// PassiveTcpEstablishment: events 4, 5 and 7 instead of 1, 3 and 6).
    pub passive: bool,
    /// Hold time we propose, in seconds: 0 or >= 3.
    pub hold_time: u16,
    /// Keepalive interval in seconds; the effective interval is the smaller of this and a
    /// third of the negotiated hold time. `None`: a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// The large hold timer used in OpenSent (RFC 4271 suggests 4 minutes).
    pub open_hold_time: Duration,
    /// Connect retry timer with exponential backoff and jitter.
    pub connect_retry: Backoff,
    /// Idle hold timer before an automatic restart after a failure
    /// (DampPeerOscillations, RFC 4271 8.1.1: events 6, 7 and 13). `None`: restart at once.
    pub idle_hold: Option<Backoff>,
    /// DelayOpen (RFC 4271 8.1.1): wait this long after the TCP connection is up before
    /// sending our OPEN, unless the peer's OPEN arrives first.
    pub delay_open: Option<Duration>,
    /// Send hold timer (RFC 9687).
    pub send_hold: SendHold,
    /// After a max-prefix teardown, restart automatically after this long; `None`: stay
    /// down until ManualStart.
    pub max_prefix_restart: Option<Duration>,
    /// Families we advertise with the multiprotocol capability.
    pub families: Vec<Family>,
    /// Advertise route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Advertise enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// Advertise extended messages (RFC 8654).
    pub extended_message: bool,
    /// Our graceful restart capability (RFC 4724 / RFC 8538), if we do graceful restart.
    pub graceful_restart: Option<GracefulRestartCap>,
    /// Our add-path capability entries (RFC 7911).
    pub add_path: Vec<AddPathEntry>,
    /// Further capabilities to advertise verbatim (e.g. FQDN).
    pub extra_capabilities: Vec<Capability>,
    /// Capabilities the peer must advertise, compared by code (multiprotocol and
    /// add-path by family too). A peer lacking one gets OPEN error Unsupported Capability
    /// (2/7) listing them (RFC 5492 section 3).
    pub required_capabilities: Vec<Capability>,
}

impl PeerConfig {
    /// A configuration with the usual defaults: hold time 90 s, keepalive a third of it,
    /// connect retry 5 s doubling to 120 s, idle hold 2 s doubling to 120 s, no DelayOpen,
    /// RFC 9687 default send hold, IPv4 and IPv6 unicast, route refresh, enhanced route
    /// refresh and extended messages, no graceful restart, no add-path.
    pub fn new(local_as: u32, local_id: Ipv4Addr, peer_as: PeerAs) -> Self {
        PeerConfig {
            local_as,
            local_id,
            peer_as,
            passive: false,
            hold_time: 90,
            keepalive: None,
            open_hold_time: Duration::from_secs(240),
            connect_retry: Backoff::new(Duration::from_secs(5), Duration::from_secs(120)),
            idle_hold: Some(Backoff::new(
                Duration::from_secs(2),
                Duration::from_secs(120),
            )),
            delay_open: None,
            send_hold: SendHold::Default,
            max_prefix_restart: None,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            route_refresh: true,
            enhanced_route_refresh: true,
            extended_message: true,
            graceful_restart: None,
            add_path: Vec::new(),
            extra_capabilities: Vec::new(),
            required_capabilities: Vec::new(),
        }
    }

    /// Check the values that the FSM relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == 0 || self.local_as == u32::from(crate::fsm::AS_TRANS) {
            return Err(ConfigError::LocalAs(self.local_as));
        }
        if self.local_id.is_unspecified() {
            return Err(ConfigError::LocalId);
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if self.keepalive == Some(0) && self.hold_time != 0 {
            return Err(ConfigError::Keepalive);
        }
        if self.connect_retry.initial.is_zero()
            || self.connect_retry.max < self.connect_retry.initial
        {
            return Err(ConfigError::Backoff("connect_retry"));
        }
        if let Some(b) = self.idle_hold {
            if b.max < b.initial {
                return Err(ConfigError::Backoff("idle_hold"));
            }
        }
        if self.open_hold_time.is_zero() {
            return Err(ConfigError::OpenHoldTime);
        }
        Ok(())
    }
}

/// An invalid [`PeerConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("local AS {0} is invalid, use a non-zero AS other than AS_TRANS (23456)")]
    LocalAs(u32),
    #[error("router id 0.0.0.0 is invalid, set a non-zero BGP identifier")]
    LocalId,
    #[error("hold time {0} s is invalid, use 0 or >= 3")]
    HoldTime(u16),
    #[error("keepalive 0 s is invalid with a non-zero hold time, use >= 1 or leave it unset")]
    Keepalive,
    #[error("{0}: backoff is invalid, initial must be > 0 and max >= initial")]
    Backoff(&'static str),
    #[error("open hold time must be > 0 (RFC 4271 suggests 240 s)")]
    OpenHoldTime,
}
