//! Outbound connections.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use ipnet::IpNet;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};

use super::{apply_ttl, sockopt, Md5Key, TransportError, TtlPolicy};

/// Connect timeout when none is configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything about one outbound connection attempt.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Peer address and port (normally 179).
    pub remote: SocketAddr,
    /// Source address to bind (port 0: any port). `None`: the kernel picks.
    pub local: Option<SocketAddr>,
    /// Give up after this long. An MD5 or GTSM mismatch shows up as a timeout: the peer's
    /// kernel silently drops the SYN.
    pub connect_timeout: Duration,
    /// TCP MD5 key for the peer, installed before `connect`.
    pub md5: Option<Md5Key>,
    pub ttl: TtlPolicy,
    /// `TCP_NODELAY` (default on: BGP writes whole messages).
    pub nodelay: bool,
}

impl ConnectOptions {
    /// Defaults: no source binding, 5 s timeout, no MD5, kernel TTL, `TCP_NODELAY` on.
    pub fn new(remote: SocketAddr) -> Self {
        ConnectOptions {
            remote,
            local: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            md5: None,
            ttl: TtlPolicy::Default,
            nodelay: true,
        }
    }
}

/// Opens a TCP connection to `opts.remote` with every option applied before the SYN.
pub async fn connect(opts: &ConnectOptions) -> Result<TcpStream, TransportError> {
    let socket = prepare(opts)?;
    let remote = opts.remote;
    let std_stream: std::net::TcpStream = socket.into();
    let tcp = TcpSocket::from_std_stream(std_stream);
    match tokio::time::timeout(opts.connect_timeout, tcp.connect(remote)).await {
        Ok(Ok(stream)) => {
            tracing::debug!(%remote, local = ?stream.local_addr().ok(), "connected");
            Ok(stream)
        }
        Ok(Err(source)) => Err(TransportError::Connect { remote, source }),
        Err(_) => Err(TransportError::ConnectTimeout {
            remote,
            timeout: opts.connect_timeout,
        }),
    }
}

/// Creates the non-blocking socket with all options set and the source bound.
fn prepare(opts: &ConnectOptions) -> Result<Socket, TransportError> {
    opts.ttl.validate()?;
    let remote = opts.remote;
    let v6 = remote.is_ipv6();
    if let Some(local) = opts.local {
        if local.is_ipv6() != v6 {
            return Err(TransportError::FamilyMismatch {
                local: local.ip(),
                remote,
            });
        }
    }
    let err = |op: &'static str| {
        move |source| TransportError::Socket {
            addr: remote,
            op,
            source,
        }
    };
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))
        .map_err(err("socket"))?;
    socket
        .set_tcp_nodelay(opts.nodelay)
        .map_err(err("TCP_NODELAY"))?;
    apply_ttl(socket.as_fd(), v6, !v6, opts.ttl).map_err(err("TTL options"))?;
    if let Some(key) = &opts.md5 {
        sockopt::set_md5_key(socket.as_fd(), v6, IpNet::from(remote.ip()), Some(key))
            .map_err(err("TCP_MD5SIG"))?;
    }
    if let Some(local) = opts.local {
        if local.port() == 0 {
            // Best effort: only delays the port choice to connect time.
            let _ = sockopt::set_bind_address_no_port(socket.as_fd(), true);
        }
        socket
            .bind(&local.into())
            .map_err(|source| TransportError::Bind {
                addr: local,
                source,
            })?;
    }
    Ok(socket)
}
