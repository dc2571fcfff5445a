//! Socket values: `struct sockaddr` as people write addresses, and the domain, type, protocol and
//! `MSG_*` flags of socket calls.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::paths::{escape, not_copied};
use super::{flags, ptr, Ctx};
use crate::bpf::raw::DataSpec;

pub(super) const AF_UNIX: u16 = 1;
pub(super) const AF_INET: u16 = 2;
pub(super) const AF_INET6: u16 = 10;

pub(super) fn fmt_sockaddr_arg(ctx: &Ctx, i: usize) -> String {
    let v = ctx.raw.args[i];
    let copied =
        matches!(ctx.spec, DataSpec::Sockaddr { ptr_arg, .. } if usize::from(ptr_arg) == i);
    if v == 0 {
        return "NULL".to_string();
    }
    if copied && !ctx.spec.copied_for(ctx.raw.ret) {
        return not_copied(v);
    }
    if !copied || ctx.raw.data.is_empty() {
        return ptr(v);
    }
    let mut out = sockaddr(&ctx.raw.data);
    if ctx.raw.data_truncated {
        out.push_str("...");
    }
    out
}

/// A `struct sockaddr` as people write addresses: `0.0.0.0:9443`, `[::1]:8080`, a unix socket's
/// path or `@abstract` name, else the family. The family is read little-endian (x86_64 and
/// arm64 Linux both are), the port in network order.
pub fn sockaddr(data: &[u8]) -> String {
    let Some(family) = data.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
        return "{sa_family=?}".to_string();
    };
    let port = || data.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match family {
        AF_INET => match (port(), data.get(4..8)) {
            (Some(port), Some(a)) => format!("{}:{port}", Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            _ => "AF_INET{?}".to_string(),
        },
        AF_INET6 => {
            let addr = data
                .get(8..24)
                .and_then(|a| <[u8; 16]>::try_from(a).ok())
                .map(Ipv6Addr::from);
            match (port(), addr) {
                (Some(port), Some(ip)) => {
                    let scope = data
                        .get(24..28)
                        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                        .unwrap_or(0);
                    if scope != 0 {
                        format!("[{ip}%{scope}]:{port}")
                    } else {
                        format!("[{ip}]:{port}")
                    }
                }
                _ => "AF_INET6{?}".to_string(),
            }
        }
        AF_UNIX => {
            let path = &data[2..];
            match path.first() {
                // Only the family: an unnamed socket (autobind on bind).
                None => "AF_UNIX".to_string(),
                Some(0) => {
                    let name = &path[1..];
                    let end = name.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    format!("@{}", escape(&name[..end]))
                }
                Some(_) => {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    escape(&path[..end])
                }
            }
        }
        f => domain_name(i32::from(f)).map_or_else(|| format!("{{sa_family={f}}}"), str::to_string),
    }
}

pub(super) fn domain_name(d: i32) -> Option<&'static str> {
    const NAMES: [&str; 46] = [
        "AF_UNSPEC",
        "AF_UNIX",
        "AF_INET",
        "AF_AX25",
        "AF_IPX",
        "AF_APPLETALK",
        "AF_NETROM",
        "AF_BRIDGE",
        "AF_ATMPVC",
        "AF_X25",
        "AF_INET6",
        "AF_ROSE",
        "AF_DECnet",
        "AF_NETBEUI",
        "AF_SECURITY",
        "AF_KEY",
        "AF_NETLINK",
        "AF_PACKET",
        "AF_ASH",
        "AF_ECONET",
        "AF_ATMSVC",
        "AF_RDS",
        "AF_SNA",
        "AF_IRDA",
        "AF_PPPOX",
        "AF_WANPIPE",
        "AF_LLC",
        "AF_IB",
        "AF_MPLS",
        "AF_CAN",
        "AF_TIPC",
        "AF_BLUETOOTH",
        "AF_IUCV",
        "AF_RXRPC",
        "AF_ISDN",
        "AF_PHONET",
        "AF_IEEE802154",
        "AF_CAIF",
        "AF_ALG",
        "AF_NFC",
        "AF_VSOCK",
        "AF_KCM",
        "AF_QIPCRTR",
        "AF_SMC",
        "AF_XDP",
        "AF_MCTP",
    ];
    usize::try_from(d).ok().and_then(|i| NAMES.get(i)).copied()
}

pub(super) fn sock_type(v: u32) -> String {
    let base = v & 0xf;
    let name = match base {
        1 => "SOCK_STREAM".to_string(),
        2 => "SOCK_DGRAM".to_string(),
        3 => "SOCK_RAW".to_string(),
        4 => "SOCK_RDM".to_string(),
        5 => "SOCK_SEQPACKET".to_string(),
        6 => "SOCK_DCCP".to_string(),
        10 => "SOCK_PACKET".to_string(),
        b => b.to_string(),
    };
    let rest = u64::from(v & !0xf);
    if rest == 0 {
        name
    } else {
        format!("{name}|{}", flags(rest, SOCK_FLAGS, "0"))
    }
}

pub(super) fn protocol(domain: i32, p: i32) -> String {
    let name = match (domain, p) {
        (2 | 10, 0) => "IPPROTO_IP",
        (2 | 10, 1) => "IPPROTO_ICMP",
        (2 | 10, 6) => "IPPROTO_TCP",
        (2 | 10, 17) => "IPPROTO_UDP",
        (2 | 10, 58) => "IPPROTO_ICMPV6",
        (2 | 10, 132) => "IPPROTO_SCTP",
        (2 | 10, 136) => "IPPROTO_UDPLITE",
        (2 | 10, 255) => "IPPROTO_RAW",
        (2 | 10, 262) => "IPPROTO_MPTCP",
        (16, 0) => "NETLINK_ROUTE",
        (16, 4) => "NETLINK_SOCK_DIAG",
        (16, 9) => "NETLINK_AUDIT",
        (16, 15) => "NETLINK_KOBJECT_UEVENT",
        (16, 16) => "NETLINK_GENERIC",
        _ => return p.to_string(),
    };
    name.to_string()
}

pub(super) const SOCK_FLAGS: &[(u64, &str)] =
    &[(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")];

pub(super) const MSG_FLAGS: &[(u64, &str)] = &[
    (0x1, "MSG_OOB"),
    (0x2, "MSG_PEEK"),
    (0x4, "MSG_DONTROUTE"),
    (0x8, "MSG_CTRUNC"),
    (0x10, "MSG_PROXY"),
    (0x20, "MSG_TRUNC"),
    (0x40, "MSG_DONTWAIT"),
    (0x80, "MSG_EOR"),
    (0x100, "MSG_WAITALL"),
    (0x200, "MSG_FIN"),
    (0x400, "MSG_SYN"),
    (0x800, "MSG_CONFIRM"),
    (0x1000, "MSG_RST"),
    (0x2000, "MSG_ERRQUEUE"),
    (0x4000, "MSG_NOSIGNAL"),
    (0x8000, "MSG_MORE"),
    (0x10000, "MSG_WAITFORONE"),
    (0x40000, "MSG_BATCH"),
    (0x4000000, "MSG_ZEROCOPY"),
    (0x20000000, "MSG_FASTOPEN"),
    (0x40000000, "MSG_CMSG_CLOEXEC"),
];
#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::decode::test_support::*;

    // --- Sockets -------------------------------------------------------------------------------------

    #[test]
    fn bind_eaddrinuse_decodes_ipv4_address() {
        for arch in [X86, ARM] {
            let data = sockaddr_in([0, 0, 0, 0], 9443);
            let r = rec(
                arch,
                "bind",
                &[3, 0x1000, 16],
                errno_ret("EADDRINUSE"),
                &data,
            );
            let ev = decode(arch, &r);
            assert_eq!(ev.args, ["3", "0.0.0.0:9443", "16"], "{arch:?}");
            assert_eq!(ev.errno.as_deref(), Some("EADDRINUSE"));
        }
    }

    #[test]
    fn connect_ipv6_decodes_with_brackets_and_scope() {
        let data = sockaddr_in6(std::net::Ipv6Addr::LOCALHOST, 8080, 0);
        let r = rec(
            X86,
            "connect",
            &[5, 0x1000, 28],
            errno_ret("ECONNREFUSED"),
            &data,
        );
        assert_eq!(decode(X86, &r).args[1], "[::1]:8080");
        let data = sockaddr_in6("fe80::1".parse().unwrap(), 53, 2);
        let r = rec(ARM, "connect", &[5, 0x1000, 28], 0, &data);
        assert_eq!(decode(ARM, &r).args[1], "[fe80::1%2]:53");
    }

    #[test]
    fn unix_socket_path_and_abstract_name_decode() {
        let mut path = 1u16.to_le_bytes().to_vec();
        path.extend(b"/run/containerd/containerd.sock\0\0\0");
        let r = rec(
            X86,
            "connect",
            &[3, 0x1000, path.len() as u64],
            errno_ret("ENOENT"),
            &path,
        );
        assert_eq!(decode(X86, &r).args[1], "/run/containerd/containerd.sock");

        let mut abs = 1u16.to_le_bytes().to_vec();
        abs.extend(b"\0beam-epmd\0\0");
        let r = rec(
            X86,
            "bind",
            &[3, 0x1000, abs.len() as u64],
            errno_ret("EADDRINUSE"),
            &abs,
        );
        assert_eq!(decode(X86, &r).args[1], "@beam-epmd");

        let unnamed = 1u16.to_le_bytes().to_vec();
        let r = rec(X86, "bind", &[3, 0x1000, 2], 0, &unnamed);
        assert_eq!(decode(X86, &r).args[1], "AF_UNIX");
    }

    #[test]
    fn other_families_are_named_or_numbered() {
        let mut nl = 16u16.to_le_bytes().to_vec();
        nl.extend([0u8; 10]);
        assert_eq!(sockaddr(&nl), "AF_NETLINK");
        assert_eq!(sockaddr(&0u16.to_le_bytes()), "AF_UNSPEC");
        assert_eq!(sockaddr(&999u16.to_le_bytes()), "{sa_family=999}");
    }

    #[test]
    fn garbage_sockaddr_does_not_panic() {
        let cases: [&[u8]; 7] = [
            b"",
            b"\x02",
            b"\x02\x00\x01",
            b"\x02\x00\x01\x02\x03",
            b"\x0a\x00\x00\x50\x00\x00\x00\x00\x01",
            b"\x01\x00",
            b"\x01\x00\x00",
        ];
        for data in cases {
            for arch in [X86, ARM] {
                let r = rec(
                    arch,
                    "connect",
                    &[3, 0x1000, 200],
                    errno_ret("EINVAL"),
                    data,
                );
                let ev = decode(arch, &r);
                assert_eq!(ev.args.len(), 3);
            }
            let _ = sockaddr(data);
        }
        assert_eq!(sockaddr(b"\x02\x00\x01"), "AF_INET{?}");
        assert_eq!(sockaddr(b"\x01"), "{sa_family=?}");
    }

    #[test]
    fn truncated_sockaddr_is_marked() {
        let mut data = 1u16.to_le_bytes().to_vec();
        data.extend([b'a'; 126]);
        let mut r = rec(
            X86,
            "connect",
            &[3, 0x1000, 300],
            errno_ret("EINVAL"),
            &data,
        );
        r.data_truncated = true;
        assert!(decode(X86, &r).args[1].ends_with("..."));
    }

    #[test]
    fn sendto_with_and_without_destination() {
        let data = sockaddr_in([10, 0, 0, 7], 53);
        let r = rec(
            X86,
            "sendto",
            &[4, 0x1000, 32, 0x4000, 0x2000, 16],
            32,
            &data,
        );
        assert_eq!(
            decode(X86, &r).args,
            ["4", "0x1000", "32", "MSG_NOSIGNAL", "10.0.0.7:53", "16"]
        );
        let r = rec(
            ARM,
            "sendto",
            &[4, 0x1000, 32, 0, 0, 0],
            errno_ret("EPIPE"),
            b"",
        );
        assert_eq!(decode(ARM, &r).args[3..], ["0", "NULL", "0"]);
    }

    #[test]
    fn socket_names_domain_type_and_protocol() {
        let r = rec(X86, "socket", &[2, 1 | 0o2000000 | 0o4000, 6], 3, b"");
        assert_eq!(
            decode(X86, &r).args,
            [
                "AF_INET",
                "SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC",
                "IPPROTO_TCP"
            ]
        );
        let r = rec(ARM, "socket", &[1, 2, 0], 3, b"");
        assert_eq!(decode(ARM, &r).args, ["AF_UNIX", "SOCK_DGRAM", "0"]);
        let r = rec(ARM, "socket", &[16, 3, 0], 3, b"");
        assert_eq!(
            decode(ARM, &r).args,
            ["AF_NETLINK", "SOCK_RAW", "NETLINK_ROUTE"]
        );
        let r = rec(X86, "socket", &[777, 99, 5], errno_ret("EAFNOSUPPORT"), b"");
        assert_eq!(decode(X86, &r).args, ["777", "SOCK_RAW|0x60", "5"]);
    }

    #[test]
    fn accept_listen_shutdown_decode() {
        let r = rec(X86, "accept4", &[3, 0, 0, 0o2000000], 5, b"");
        assert_eq!(decode(X86, &r).args, ["3", "NULL", "NULL", "SOCK_CLOEXEC"]);
        let r = rec(X86, "listen", &[3, 4096], 0, b"");
        assert_eq!(decode(X86, &r).args, ["3", "4096"]);
        let r = rec(ARM, "shutdown", &[3, 2], errno_ret("ENOTCONN"), b"");
        assert_eq!(decode(ARM, &r).args, ["3", "SHUT_RDWR"]);
    }
}
