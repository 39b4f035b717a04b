//! Address families and NLRI.

use ipnet::IpNet;

/// Address Family Identifier (IANA). Unknown values are kept as-is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier (IANA). Unknown values are kept as-is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
    pub const MULTICAST: Safi = Safi(2);
}

/// An AFI/SAFI pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::IPV6,
        safi: Safi::UNICAST,
    };

    pub const fn new(afi: Afi, safi: Safi) -> Self {
        Family { afi, safi }
    }

    /// IPv4 or IPv6 with SAFI unicast or multicast: the families whose NLRI are plain
    /// prefixes, which the codec decodes into [`Nlri`] values.
    pub const fn is_ip_unicast_or_multicast(&self) -> bool {
        matches!(self.afi.0, 1 | 2) && matches!(self.safi.0, 1 | 2)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi{}-safi{}", afi.0, safi.0),
        }
    }
}

/// One NLRI entry: a prefix, plus the RFC 7911 path identifier when add-path is in effect
/// for this family and direction.
///
/// The prefix is kept exactly as received (bits beyond the prefix length in the last octet
/// survive a round trip); consumers that key tables by prefix use `prefix.trunc()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub prefix: IpNet,
    pub path_id: Option<u32>,
}

impl Nlri {
    pub const fn new(prefix: IpNet) -> Self {
        Nlri {
            prefix,
            path_id: None,
        }
    }

    pub const fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Nlri {
            prefix,
            path_id: Some(path_id),
        }
    }
}
