//! Listening sockets with per-peer TCP MD5 keys and TTL policies.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;

use ipnet::IpNet;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

use super::{apply_ttl, sockopt, PeerSecurity, TransportError};

/// Backlog of each listening socket.
const BACKLOG: i32 = 128;

#[derive(Debug)]
struct ListenSocket {
    listener: TcpListener,
    local: SocketAddr,
    /// AF_INET6 socket.
    v6: bool,
    /// Accepts IPv4 peers (an AF_INET socket, or a dual-stack AF_INET6 one).
    accepts_v4: bool,
}

/// A BGP listener: one socket per listen address, plus a table of peers and listen ranges
/// with their MD5 keys and TTL policies. All methods take `&self`: share it in an `Arc`, keep
/// one task in [`Listener::accept`] and change peers from elsewhere at any time.
///
/// * MD5 keys are installed on every socket that can accept the peer's family; the kernel
///   copies the matching key to each accepted socket, and drops SYNs whose signature is
///   missing or wrong.
/// * GTSM: when every configured peer and range uses TTL security, the listening sockets
///   get the smallest of their minimum TTLs, so a SYN from too far away never gets a
///   SYN-ACK. When any peer uses it, the listening sockets send with TTL 255 (the SYN-ACK
///   carries the listener's TTL). Accepted sockets always get their own peer's TTL policy.
#[derive(Debug)]
pub struct Listener {
    sockets: Vec<ListenSocket>,
    peers: Mutex<BTreeMap<IpNet, PeerSecurity>>,
    next: AtomicUsize,
}

/// One accepted connection.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    /// The peer's address (IPv4 peers of a dual-stack socket are given as IPv4).
    pub peer: SocketAddr,
    /// Our address of the connection (likewise canonical).
    pub local: SocketAddr,
    /// The configured peer or listen range the peer matched (longest prefix), whose TTL
    /// policy was applied. `None`: an unknown peer; the caller should close the stream.
    pub matched: Option<IpNet>,
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl Listener {
    /// Binds and listens on every address. An unspecified IPv6 address (`[::]`) is
    /// dual-stack unless an IPv4 address is also listed. Must be called inside a tokio
    /// runtime.
    pub fn bind(addrs: &[SocketAddr]) -> Result<Listener, TransportError> {
        if addrs.is_empty() {
            return Err(TransportError::NoListenAddress);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TransportError::NoRuntime);
        }
        let any_v4 = addrs.iter().any(SocketAddr::is_ipv4);
        let mut sockets = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let err = |op: &'static str| move |source| TransportError::Socket { addr, op, source };
            let v6 = addr.is_ipv6();
            let dual = v6 && addr.ip().is_unspecified() && !any_v4;
            let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
            let socket = Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))
                .map_err(err("socket"))?;
            socket
                .set_reuse_address(true)
                .map_err(err("SO_REUSEADDR"))?;
            if v6 {
                socket.set_only_v6(!dual).map_err(err("IPV6_V6ONLY"))?;
            }
            socket
                .bind(&addr.into())
                .map_err(|source| TransportError::Bind { addr, source })?;
            socket.listen(BACKLOG).map_err(err("listen"))?;
            let std_listener: std::net::TcpListener = socket.into();
            let listener = TcpListener::from_std(std_listener).map_err(err("register"))?;
            let local = listener.local_addr().map_err(err("getsockname"))?;
            tracing::info!(%local, dual_stack = dual, "BGP listener bound");
            sockets.push(ListenSocket {
                listener,
                local,
                v6,
                accepts_v4: !v6 || dual,
            });
        }
        Ok(Listener {
            sockets,
            peers: Mutex::new(BTreeMap::new()),
            next: AtomicUsize::new(0),
        })
    }

    /// The bound addresses (with the real port when bound to port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|s| s.local).collect()
    }

    fn peers(&self) -> MutexGuard<'_, BTreeMap<IpNet, PeerSecurity>> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds or replaces a peer (host prefix: /32, /128) or a listen range (shorter prefix)
    /// with its MD5 key and TTL policy. Takes effect for the next SYN.
    pub fn set_peer(&self, peer: IpNet, security: PeerSecurity) -> Result<(), TransportError> {
        security.ttl.validate()?;
        let peer = canonical_net(peer);
        let mut peers = self.peers();
        let old_md5 = peers.get(&peer).and_then(|s| s.md5.clone());
        match (&security.md5, old_md5) {
            (Some(key), _) => self.install_md5(peer, Some(key))?,
            (None, Some(_)) => self.install_md5(peer, None)?,
            (None, None) => {}
        }
        peers.insert(peer, security);
        self.apply_listener_min_ttl(&peers)
    }

    /// Removes a peer or listen range (and its MD5 key). Returns what it had.
    pub fn remove_peer(&self, peer: IpNet) -> Result<Option<PeerSecurity>, TransportError> {
        let peer = canonical_net(peer);
        let mut peers = self.peers();
        let old = peers.remove(&peer);
        if old.as_ref().is_some_and(|s| s.md5.is_some()) {
            self.install_md5(peer, None)?;
        }
        self.apply_listener_min_ttl(&peers)?;
        Ok(old)
    }

    /// Makes the peer table equal to `desired` (e.g. after a config reload): removes the
    /// entries not in it, adds new ones, and re-installs those whose key or TTL changed.
    /// Unchanged entries are not touched.
    pub fn sync_peers(
        &self,
        desired: impl IntoIterator<Item = (IpNet, PeerSecurity)>,
    ) -> Result<(), TransportError> {
        let desired: BTreeMap<IpNet, PeerSecurity> = desired
            .into_iter()
            .map(|(n, s)| (canonical_net(n), s))
            .collect();
        let current: Vec<(IpNet, PeerSecurity)> =
            self.peers().iter().map(|(n, s)| (*n, s.clone())).collect();
        for (net, _) in current.iter().filter(|(n, _)| !desired.contains_key(n)) {
            self.remove_peer(*net)?;
        }
        for (net, sec) in desired {
            if current.iter().any(|(n, s)| *n == net && *s == sec) {
                continue;
            }
            self.set_peer(net, sec)?;
        }
        Ok(())
    }

    /// The number of configured peers and listen ranges.
    pub fn peer_count(&self) -> usize {
        self.peers().len()
    }

    /// The configured entry that covers `addr` (longest prefix).
    pub fn peer_security(&self, addr: IpAddr) -> Option<(IpNet, PeerSecurity)> {
        let addr = addr.to_canonical();
        self.peers()
            .iter()
            .filter(|(net, _)| net.contains(&addr))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(net, sec)| (*net, sec.clone()))
    }

    fn install_md5(&self, peer: IpNet, key: Option<&super::Md5Key>) -> Result<(), TransportError> {
        let peer_v4 = matches!(peer, IpNet::V4(_));
        for s in &self.sockets {
            let fits = if peer_v4 { s.accepts_v4 } else { s.v6 };
            if !fits {
                continue;
            }
            sockopt::set_md5_key(s.listener.as_fd(), s.v6, peer, key).map_err(|source| {
                TransportError::Socket {
                    addr: s.local,
                    op: if key.is_some() {
                        "TCP_MD5SIG (add key)"
                    } else {
                        "TCP_MD5SIG (delete key)"
                    },
                    source,
                }
            })?;
        }
        Ok(())
    }

    fn apply_listener_min_ttl(
        &self,
        peers: &BTreeMap<IpNet, PeerSecurity>,
    ) -> Result<(), TransportError> {
        let all_gtsm = !peers.is_empty() && peers.values().all(|s| s.ttl.min_ttl().is_some());
        let min = if all_gtsm {
            peers.values().filter_map(|s| s.ttl.min_ttl()).min()
        } else {
            None
        };
        let min = min.unwrap_or(0);
        // The SYN-ACK leaves with the listener's TTL: a GTSM peer drops it unless it is 255.
        let any_gtsm = peers.values().any(|s| s.ttl.min_ttl().is_some());
        for s in &self.sockets {
            let fd = s.listener.as_fd();
            let err = |source| TransportError::Socket {
                addr: s.local,
                op: "TTL options",
                source,
            };
            if s.accepts_v4 {
                sockopt::set_min_ttl_v4(fd, min).map_err(err)?;
                if any_gtsm {
                    sockopt::set_ttl_v4(fd, 255).map_err(err)?;
                } else {
                    sockopt::set_default_ttl_v4(fd).map_err(err)?;
                }
            }
            if s.v6 {
                sockopt::set_min_hops_v6(fd, min).map_err(err)?;
                if any_gtsm {
                    sockopt::set_hops_v6(fd, 255).map_err(err)?;
                } else {
                    sockopt::set_default_hops_v6(fd).map_err(err)?;
                }
            }
        }
        Ok(())
    }

    /// The listening socket bound to `local` (for inspection, e.g. reading its minimum TTL).
    pub fn socket(&self, local: SocketAddr) -> Option<&TcpListener> {
        self.sockets
            .iter()
            .find(|s| s.local == local)
            .map(|s| &s.listener)
    }

    /// Waits for the next connection on any listening socket, then applies the matching
    /// peer's TTL policy and `TCP_NODELAY`. A connection whose setup fails is closed and
    /// reported as an error; the listener stays usable.
    pub async fn accept(&self) -> Result<Accepted, TransportError> {
        let (stream, peer, idx) = std::future::poll_fn(|cx| {
            let n = self.sockets.len();
            let start = self
                .next
                .fetch_add(1, Ordering::Relaxed)
                .checked_rem(n)
                .unwrap_or(0);
            for k in 0..n {
                let i = (start + k).checked_rem(n).unwrap_or(0);
                if let Some(s) = self.sockets.get(i) {
                    match s.listener.poll_accept(cx) {
                        Poll::Ready(Ok((stream, peer))) => {
                            return Poll::Ready(Ok((stream, peer, i)))
                        }
                        Poll::Ready(Err(source)) => {
                            return Poll::Ready(Err(TransportError::Accept { source }))
                        }
                        Poll::Pending => {}
                    }
                }
            }
            Poll::Pending
        })
        .await?;
        let peer = canonical(peer);
        let err = |op: &'static str| {
            move |source| TransportError::Socket {
                addr: peer,
                op,
                source,
            }
        };
        let local = canonical(stream.local_addr().map_err(err("getsockname"))?);
        stream.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
        let socket_v6 = self.sockets.get(idx).is_some_and(|s| s.v6);
        let matched = self.peer_security(peer.ip());
        if let Some((_, sec)) = &matched {
            apply_ttl(stream.as_fd(), socket_v6, peer.is_ipv4(), sec.ttl)
                .map_err(err("TTL options"))?;
        }
        tracing::debug!(%peer, %local, matched = ?matched.as_ref().map(|m| m.0), "accepted");
        Ok(Accepted {
            stream,
            peer,
            local,
            matched: matched.map(|m| m.0),
        })
    }
}

/// Truncates host bits and turns v4-mapped IPv6 prefixes into IPv4 ones.
fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96))
        {
            if let Ok(n) = ipnet::Ipv4Net::new(v4, len) {
                return IpNet::V4(n);
            }
        }
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_net_maps_v4_mapped() {
        let n: IpNet = "::ffff:10.0.0.0/120".parse().unwrap();
        assert_eq!(canonical_net(n), "10.0.0.0/24".parse::<IpNet>().unwrap());
        let n: IpNet = "10.0.0.7/24".parse().unwrap();
        assert_eq!(canonical_net(n), "10.0.0.0/24".parse::<IpNet>().unwrap());
        let n: IpNet = "fd00::1/64".parse().unwrap();
        assert_eq!(canonical_net(n), "fd00::/64".parse::<IpNet>().unwrap());
    }
}
