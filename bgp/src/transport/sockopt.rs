//! Raw socket options that neither std nor socket2 expose: TCP MD5 signatures (RFC 2385),
//! minimum TTL / hop count (RFC 5082 GTSM), plus the TTL getters and setters used with them.
//!
//! Every function takes a borrowed descriptor, so the socket outlives the call. The three
//! `unsafe` blocks in this file are the only ones in the transport layer; each passes the
//! kernel a pointer to a live, correctly sized value.

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;
use libc::{c_int, c_void, socklen_t};

use super::Md5Key;

/// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `TCP_MD5SIG_FLAG_PREFIX` from `<linux/tcp.h>` (libc only has it for Hurd).
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;

/// `struct __kernel_sockaddr_storage`: 128 octets, 8-aligned.
#[repr(C, align(8))]
struct KernelSockaddrStorage([u8; 128]);

/// `struct tcp_md5sig` from `<linux/tcp.h>` (not in the libc crate for Linux).
#[repr(C)]
struct TcpMd5Sig {
    addr: KernelSockaddrStorage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

const _: () = assert!(size_of::<TcpMd5Sig>() == 216);

/// Writes `addr` as a `sockaddr_in` (IPv4 socket) or `sockaddr_in6` (IPv6 socket; IPv4
/// addresses become v4-mapped, which is how the kernel keys IPv4 peers of a dual-stack
/// socket). Port 0: MD5 keys match on address only.
fn sockaddr_bytes(addr: IpAddr, socket_v6: bool) -> io::Result<KernelSockaddrStorage> {
    let mut out = [0u8; 128];
    match (addr, socket_v6) {
        (IpAddr::V4(v4), false) => {
            let family = (libc::AF_INET as u16).to_ne_bytes();
            out[..2].copy_from_slice(&family);
            out[4..8].copy_from_slice(&v4.octets());
        }
        (IpAddr::V4(v4), true) => {
            let family = (libc::AF_INET6 as u16).to_ne_bytes();
            out[..2].copy_from_slice(&family);
            out[8..24].copy_from_slice(&v4.to_ipv6_mapped().octets());
        }
        (IpAddr::V6(v6), true) => {
            let family = (libc::AF_INET6 as u16).to_ne_bytes();
            out[..2].copy_from_slice(&family);
            out[8..24].copy_from_slice(&v6.octets());
        }
        (IpAddr::V6(v6), false) => {
            // A v4-mapped IPv6 prefix can be keyed on an IPv4 socket as its IPv4 address.
            match v6.to_ipv4_mapped() {
                Some(v4) => return sockaddr_bytes(IpAddr::V4(v4), false),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("IPv6 peer {v6} cannot have an MD5 key on an IPv4 socket"),
                    ))
                }
            }
        }
    }
    Ok(KernelSockaddrStorage(out))
}

/// Installs (`key = Some`) or deletes (`key = None`) the TCP MD5 key for `peer` on a socket.
///
/// A host prefix (/32, /128) uses `TCP_MD5SIG`; a shorter one uses `TCP_MD5SIG_EXT` with
/// `TCP_MD5SIG_FLAG_PREFIX` (listen ranges). On an IPv6 socket (`socket_v6`), IPv4 peers are
/// keyed by their v4-mapped address. On a connecting socket this must run before `connect`;
/// on a listener, accepted sockets inherit the matching key.
pub fn set_md5_key(
    fd: BorrowedFd<'_>,
    socket_v6: bool,
    peer: IpNet,
    key: Option<&Md5Key>,
) -> io::Result<()> {
    let peer = peer.trunc();
    let host = peer.prefix_len() == peer.max_prefix_len();
    let mut sig = TcpMd5Sig {
        addr: sockaddr_bytes(peer.addr(), socket_v6)?,
        flags: 0,
        prefixlen: 0,
        keylen: 0,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    let optname = if host {
        libc::TCP_MD5SIG
    } else {
        sig.flags = TCP_MD5SIG_FLAG_PREFIX;
        sig.prefixlen = peer.prefix_len();
        libc::TCP_MD5SIG_EXT
    };
    if let Some(key) = key {
        let bytes = key.as_bytes();
        let dst = sig.key.get_mut(..bytes.len()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "TCP MD5 key longer than 80 octets",
            )
        })?;
        dst.copy_from_slice(bytes);
        // bytes.len() <= 80 here.
        sig.keylen = bytes.len() as u16;
    }
    let result = setsockopt_md5(fd, optname, &sig);
    // Scrub the copy of the key on the stack.
    sig.key = [0; MD5_MAX_KEY_LEN];
    std::hint::black_box(&sig.key);
    match result {
        // Deleting a key that is not there is not an error for our callers.
        Err(e) if key.is_none() && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

#[allow(unsafe_code)]
fn setsockopt_md5(fd: BorrowedFd<'_>, optname: c_int, sig: &TcpMd5Sig) -> io::Result<()> {
    // SAFETY: `fd` is an open socket for the duration of the borrow; `sig` is a live,
    // `#[repr(C)]` `struct tcp_md5sig` whose exact size is passed as optlen, and the kernel
    // only reads from it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            optname,
            (sig as *const TcpMd5Sig).cast::<c_void>(),
            size_of::<TcpMd5Sig>() as socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn setsockopt_int(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: `fd` is an open socket for the duration of the borrow; optval points to a
    // live `c_int` and optlen is its exact size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const c_int).cast::<c_void>(),
            size_of::<c_int>() as socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn getsockopt_int(fd: BorrowedFd<'_>, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: `fd` is an open socket for the duration of the borrow; optval points to a
    // live, writable `c_int` and `len` holds its size, so the kernel writes at most that.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut c_int).cast::<c_void>(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn to_u8(v: c_int) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

/// `IP_TTL`: TTL of outgoing IPv4 packets (also for IPv4 peers of a dual-stack socket).
pub fn set_ttl_v4(fd: BorrowedFd<'_>, ttl: u8) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, c_int::from(ttl))
}

/// Resets `IP_TTL` to the system default (`net.ipv4.ip_default_ttl`).
pub fn set_default_ttl_v4(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, -1)
}

/// Reads `IP_TTL`.
pub fn ttl_v4(fd: BorrowedFd<'_>) -> io::Result<u8> {
    getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL).map(to_u8)
}

/// `IP_MINTTL`: drop received IPv4 packets with a smaller TTL (0 disables).
pub fn set_min_ttl_v4(fd: BorrowedFd<'_>, ttl: u8) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL, c_int::from(ttl))
}

/// Reads `IP_MINTTL`.
pub fn min_ttl_v4(fd: BorrowedFd<'_>) -> io::Result<u8> {
    getsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL).map(to_u8)
}

/// `IPV6_UNICAST_HOPS`: hop limit of outgoing IPv6 packets.
pub fn set_hops_v6(fd: BorrowedFd<'_>, hops: u8) -> io::Result<()> {
    setsockopt_int(
        fd,
        libc::IPPROTO_IPV6,
        libc::IPV6_UNICAST_HOPS,
        c_int::from(hops),
    )
}

/// Resets `IPV6_UNICAST_HOPS` to the route's / system default.
pub fn set_default_hops_v6(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, -1)
}

/// Reads `IPV6_UNICAST_HOPS`.
pub fn hops_v6(fd: BorrowedFd<'_>) -> io::Result<u8> {
    getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS).map(to_u8)
}

/// `IPV6_MINHOPCOUNT`: drop received IPv6 packets with a smaller hop limit (0 disables).
pub fn set_min_hops_v6(fd: BorrowedFd<'_>, hops: u8) -> io::Result<()> {
    setsockopt_int(
        fd,
        libc::IPPROTO_IPV6,
        libc::IPV6_MINHOPCOUNT,
        c_int::from(hops),
    )
}

/// Reads `IPV6_MINHOPCOUNT`.
pub fn min_hops_v6(fd: BorrowedFd<'_>) -> io::Result<u8> {
    getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT).map(to_u8)
}

/// `IP_BIND_ADDRESS_NO_PORT`: bind a source address without reserving an ephemeral port
/// until `connect`, so many outbound sessions from one address do not exhaust ports.
pub fn set_bind_address_no_port(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(
        fd,
        libc::IPPROTO_IP,
        libc::IP_BIND_ADDRESS_NO_PORT,
        c_int::from(on),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn sockaddr_layouts() {
        let s = sockaddr_bytes(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), false).unwrap();
        assert_eq!(u16::from_ne_bytes([s.0[0], s.0[1]]), libc::AF_INET as u16);
        assert_eq!(&s.0[4..8], &[10, 0, 0, 2]);
        let s = sockaddr_bytes(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), true).unwrap();
        assert_eq!(u16::from_ne_bytes([s.0[0], s.0[1]]), libc::AF_INET6 as u16);
        assert_eq!(
            &s.0[8..24],
            &Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped().octets()
        );
        let v6: Ipv6Addr = "fd00::1".parse().unwrap();
        assert!(sockaddr_bytes(IpAddr::V6(v6), false).is_err());
    }
}
