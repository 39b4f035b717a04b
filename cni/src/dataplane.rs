//! Netlink operations (rtnetlink) for the host and the pod side.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteVia,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{code, netlink_errno, CniError, CniResult};

/// The host-side MAC of every pod veth (Calico's).
pub const HOST_MAC: [u8; 6] = [0xee; 6];
/// The IPv4 next hop the pod uses; answered by proxy ARP, assigned nowhere.
pub const GW_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The host veth's EUI-64 link-local address derived from [`HOST_MAC`].
pub const GW_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// Open a netlink connection in the calling thread's current namespace and drive it
/// on the current tokio runtime.
pub fn connect() -> CniResult<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| CniError::new(code::NETLINK, "cannot open a netlink socket", e.to_string()))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Format a MAC address.
pub fn mac_string(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A link's MAC.
pub fn link_mac(l: &LinkMessage) -> String {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(b) => Some(mac_string(b)),
            _ => None,
        })
        .unwrap_or_default()
}

/// A link's name.
pub fn link_name(l: &LinkMessage) -> String {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A link's alias (`ip link set ... alias`).
pub fn link_alias(l: &LinkMessage) -> Option<String> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(n) => Some(n.clone()),
        _ => None,
    })
}

/// A veth's peer index (`IFLA_LINK`, an index in the peer's namespace).
pub fn link_peer(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(i) => Some(*i),
        _ => None,
    })
}

/// A link's MTU.
pub fn link_mtu(l: &LinkMessage) -> u32 {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .unwrap_or(0)
}

/// Look a link up by name; `None` when it does not exist.
pub async fn link_by_name(h: &Handle, name: &str) -> CniResult<Option<LinkMessage>> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.try_next().await {
        Ok(m) => Ok(m),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(CniError::new(
            code::NETLINK,
            format!("cannot look up link {name}"),
            e.to_string(),
        )),
    }
}

/// Every link of the namespace.
pub async fn all_links(h: &Handle) -> CniResult<Vec<LinkMessage>> {
    h.link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| CniError::new(code::NETLINK, "cannot list links", e.to_string()))
}

/// Create the veth pair: `host` in the current namespace with [`HOST_MAC`], its peer `pod` created directly in the namespace `pod_ns` (one netlink
/// request, so no half pair is ever visible). Both ends down.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    pod: &str,
    pod_ns: RawFd,
    mtu: Option<u32>,
) -> Result<(), rtnetlink::Error> {
    let mut peer = LinkUnspec::new_with_name(pod).setns_by_fd(pod_ns);
    let mut b = LinkVeth::new(host, pod).address(HOST_MAC.to_vec());
    if let Some(m) = mtu {
        peer = peer.mtu(m);
        b = b.mtu(m);
    }
    let msg = b
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
    h.link().add(msg).execute().await
}

/// Bring a link up, setting its alias if given (the kernel ignores IFLA_IFALIAS when
/// a link is created, so the alias is set here).
pub async fn set_up(h: &Handle, index: u32, what: &str, alias: Option<&str>) -> CniResult<()> {
    let mut b = LinkUnspec::new_with_index(index).up();
    if let Some(a) = alias {
        b = b.alias(a);
    }
    h.link().set(b.build()).execute().await.map_err(|e| {
        CniError::new(
            code::NETLINK,
            format!("cannot bring {what} up"),
            e.to_string(),
        )
    })
}

/// Set a link's alias.
pub async fn set_alias(h: &Handle, index: u32, alias: &str) -> CniResult<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).alias(alias).build())
        .execute()
        .await
        .map_err(|e| {
            CniError::new(
                code::NETLINK,
                format!("cannot set alias {alias} on link {index}"),
                e.to_string(),
            )
        })
}

/// Delete a link by index; a missing link is success.
pub async fn delete_link(h: &Handle, index: u32) -> CniResult<()> {
    match h.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(CniError::new(
            code::NETLINK,
            "cannot delete link",
            e.to_string(),
        )),
    }
}

/// Add a host-length address (/32 or /128) without DAD.
pub async fn add_address(h: &Handle, index: u32, ip: IpAddr, ifname: &str) -> CniResult<()> {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    let mut req = h.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await.map_err(|e| {
        CniError::new(
            code::NETLINK,
            format!("cannot add {ip}/{prefix} to {ifname}"),
            e.to_string(),
        )
    })
}

/// Addresses of a link.
pub async fn addresses(h: &Handle, index: u32) -> CniResult<Vec<(IpAddr, u8)>> {
    let msgs: Vec<AddressMessage> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| CniError::new(code::NETLINK, "cannot list addresses", e.to_string()))?;
    Ok(msgs
        .iter()
        .filter(|m| m.header.index == index)
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some((*ip, m.header.prefix_len)),
                _ => None,
            })
        })
        .collect())
}

/// `dst dev <index> scope link` (host route to a pod, or the pod's route to 169.254.1.1).
pub fn link_route(dst: IpAddr, index: u32) -> RouteMessage {
    match dst {
        IpAddr::V4(a) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(a, 32)
            .output_interface(index)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Boot)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(a, 128)
            .output_interface(index)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Boot)
            .build(),
    }
}

/// `dst via gw dev <index>`.
pub fn gw_route(dst: ipnet::IpNet, gw: IpAddr, index: u32) -> CniResult<RouteMessage> {
    match (dst, gw) {
        (ipnet::IpNet::V4(d), IpAddr::V4(g)) => Ok(RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(d.network(), d.prefix_len())
            .gateway(g)
            .output_interface(index)
            .protocol(RouteProtocol::Boot)
            .build()),
        (ipnet::IpNet::V6(d), IpAddr::V6(g)) => Ok(RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(d.network(), d.prefix_len())
            .gateway(g)
            .output_interface(index)
            .protocol(RouteProtocol::Boot)
            .build()),
        _ => Err(CniError::msg(
            code::INVALID_CONFIG,
            format!("route {dst}: gateway {gw} is of another address family"),
        )),
    }
}

/// Add a route (exclusive: an existing identical route is an error the caller sees).
pub async fn add_route(h: &Handle, msg: RouteMessage) -> Result<(), rtnetlink::Error> {
    h.route().add(msg).execute().await
}

/// A route as read back, reduced to what CHECK compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    /// Destination.
    pub dst: ipnet::IpNet,
    /// Gateway.
    pub gw: Option<IpAddr>,
    /// Output interface.
    pub oif: Option<u32>,
    /// Scope.
    pub scope: RouteScope,
}

/// Delete one route; a missing route is success.
pub async fn delete_route(h: &Handle, msg: RouteMessage) -> CniResult<()> {
    match h.route().del(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(CniError::new(
            code::NETLINK,
            "cannot delete a host route",
            e.to_string(),
        )),
    }
}

/// Whether a link with this index exists.
pub async fn link_index_exists(h: &Handle, index: u32) -> CniResult<bool> {
    let mut s = h.link().get().match_index(index).execute();
    match s.try_next().await {
        Ok(l) => Ok(l.is_some()),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(CniError::new(
            code::NETLINK,
            format!("cannot look up link {index}"),
            e.to_string(),
        )),
    }
}

/// Delete link `index` if it is still named `name` (the deferred teardown helper).
pub async fn delete_link_named(h: &Handle, index: u32, name: &str) -> CniResult<()> {
    let mut s = h.link().get().match_index(index).execute();
    match s.try_next().await {
        Ok(Some(l)) if link_name(&l) == name => delete_link(h, index).await,
        Ok(_) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(CniError::new(
            code::NETLINK,
            format!("cannot look up link {index}"),
            e.to_string(),
        )),
    }
}

/// Every main-table route of one family.
pub async fn routes(h: &Handle, v6: bool) -> CniResult<Vec<RouteView>> {
    let q = if v6 {
        RouteMessageBuilder::<Ipv6Addr>::new().build()
    } else {
        RouteMessageBuilder::<Ipv4Addr>::new().build()
    };
    let msgs: Vec<RouteMessage> = h
        .route()
        .get(q)
        .execute()
        .try_collect()
        .await
        .map_err(|e| CniError::new(code::NETLINK, "cannot list routes", e.to_string()))?;
    let mut out = Vec::new();
    for m in msgs {
        let len = m.header.destination_prefix_length;
        let mut dst: Option<IpAddr> = None;
        let mut gw = None;
        let mut oif = None;
        let mut table = u32::from(m.header.table);
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(x)) => dst = Some((*x).into()),
                RouteAttribute::Destination(RouteAddress::Inet6(x)) => dst = Some((*x).into()),
                RouteAttribute::Gateway(RouteAddress::Inet(x)) => gw = Some((*x).into()),
                RouteAttribute::Gateway(RouteAddress::Inet6(x)) => gw = Some((*x).into()),
                RouteAttribute::Via(RouteVia::Inet6(x)) => gw = Some((*x).into()),
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Table(t) => table = *t,
                _ => {}
            }
        }
        if table != 254 {
            continue;
        }
        let dst = dst.unwrap_or(if m.header.address_family == AddressFamily::Inet6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
        if let Ok(net) = ipnet::IpNet::new(dst, len) {
            out.push(RouteView {
                dst: net,
                gw,
                oif,
                scope: m.header.scope,
            });
        }
    }
    Ok(out)
}
