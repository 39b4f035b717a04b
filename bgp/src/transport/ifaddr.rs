//! This node's addresses on the interface of a session's local address: the next hop of
//! the other address family (IPv6 routes over an IPv4 session and vice versa), as BIRD's
//! and FRR's "use the interface's global address" does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One IPv4 and one IPv6 address of an interface (either may be missing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceAddresses {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

/// A usable next hop: unicast, not loopback; IPv6 not link-local.
fn usable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !(v.is_unspecified() || v.is_loopback() || v.is_multicast()),
        IpAddr::V6(v) => {
            !(v.is_unspecified()
                || v.is_loopback()
                || v.is_multicast()
                || v.is_unicast_link_local())
        }
    }
}

/// From `(interface name, address)` pairs: the addresses of the interface that holds
/// `local`, the lowest usable one per family (deterministic across calls). `local` itself
/// is the answer for its own family when it is usable. Nothing when no interface holds
/// `local`.
pub fn select_interface_addresses<'a>(
    local: IpAddr,
    addrs: impl IntoIterator<Item = (&'a str, IpAddr)> + Clone,
) -> InterfaceAddresses {
    let local = local.to_canonical();
    let Some(ifname) = addrs
        .clone()
        .into_iter()
        .find(|(_, a)| *a == local)
        .map(|(n, _)| n)
    else {
        return InterfaceAddresses::default();
    };
    let mut out = InterfaceAddresses::default();
    for (n, a) in addrs {
        if n != ifname || !usable(a) {
            continue;
        }
        match a {
            IpAddr::V4(v) => out.v4 = Some(out.v4.map_or(v, |o| o.min(v))),
            IpAddr::V6(v) => out.v6 = Some(out.v6.map_or(v, |o| o.min(v))),
        }
    }
    match local {
        IpAddr::V4(v) if usable(local) => out.v4 = Some(v),
        IpAddr::V6(v) if usable(local) => out.v6 = Some(v),
        _ => {}
    }
    out
}

/// Reads the system's interfaces (`getifaddrs`) and selects with
/// [`select_interface_addresses`]. Empty when the interfaces cannot be read.
pub fn interface_addresses(local: IpAddr) -> InterfaceAddresses {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return InterfaceAddresses::default();
    };
    let pairs: Vec<(String, IpAddr)> = list
        .filter_map(|i| {
            let sa = i.address?;
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(sa.as_sockaddr_in6()?.ip())
            };
            Some((i.interface_name, ip))
        })
        .collect();
    select_interface_addresses(local, pairs.iter().map(|(n, a)| (n.as_str(), *a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn picks_the_other_family_on_the_same_interface() {
        let addrs = [
            ("lo", ip("127.0.0.1")),
            ("lo", ip("::1")),
            ("eth0", ip("10.0.0.5")),
            ("eth0", ip("fe80::1")),
            ("eth0", ip("2001:db8::9")),
            ("eth0", ip("2001:db8::5")),
            ("eth1", ip("10.1.0.5")),
            ("eth1", ip("2001:db8:1::5")),
        ];
        let got = select_interface_addresses(ip("10.0.0.5"), addrs);
        assert_eq!(got.v4, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(
            got.v6,
            Some("2001:db8::5".parse().unwrap()),
            "lowest global, not link-local"
        );
        let got = select_interface_addresses(ip("2001:db8:1::5"), addrs);
        assert_eq!(got.v4, Some("10.1.0.5".parse().unwrap()));
        // A link-local session address: the interface's global one for IPv6.
        let got = select_interface_addresses(ip("fe80::1"), addrs);
        assert_eq!(got.v6, Some("2001:db8::5".parse().unwrap()));
        // IPv4-mapped local addresses (dual-stack sockets) are canonicalised.
        let got = select_interface_addresses(ip("::ffff:10.0.0.5"), addrs);
        assert_eq!(got.v6, Some("2001:db8::5".parse().unwrap()));
        // Loopback only has loopback addresses: nothing usable; unknown address: nothing.
        assert_eq!(
            select_interface_addresses(ip("127.0.0.1"), addrs),
            InterfaceAddresses::default()
        );
        assert_eq!(
            select_interface_addresses(ip("192.0.2.1"), addrs),
            InterfaceAddresses::default()
        );
    }

    #[test]
    fn reads_the_loopback_interface() {
        // Every Linux system has lo with 127.0.0.1; it has no usable next hop.
        assert_eq!(interface_addresses(ip("127.0.0.1")).v4, None);
        assert_eq!(
            interface_addresses(ip("192.0.2.123")),
            InterfaceAddresses::default()
        );
    }
}
