//! Backend-neutral raw records: what a backend saw, before the process table and container cache
//! turn it into a [`model::Event`]. The eBPF ring-buffer records are decoded here, byte for byte
//! as `src/bpf/sensor.bpf.c` lays them out.

use std::net::IpAddr;

/// Record kinds, as numbered in the BPF program.
pub(crate) mod kind {
    pub const EXECVE: u32 = 1;
    pub const EXECVEAT: u32 = 2;
    pub const EXIT: u32 = 3;
    pub const FORK: u32 = 4;
    pub const CONNECT: u32 = 5;
    pub const ACCEPT: u32 = 6;
    pub const OPEN: u32 = 7;
    pub const OPENAT: u32 = 8;
    pub const OPENAT2: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const UNLINKAT: u32 = 11;
    pub const RENAME: u32 = 12;
    pub const RENAMEAT: u32 = 13;
    pub const RENAMEAT2: u32 = 14;
    pub const SETUID: u32 = 15;
    pub const SETGID: u32 = 16;
    pub const PTRACE: u32 = 17;
    pub const MEMFD: u32 = 18;
    pub const ACCEPT4: u32 = 19;
    pub const CREAT: u32 = 20;
}

/// Event name (`evt.type`) of a record kind.
pub(crate) fn kind_name(k: u32) -> &'static str {
    match k {
        kind::EXECVE => "execve",
        kind::EXECVEAT => "execveat",
        kind::EXIT => "procexit",
        kind::FORK => "clone",
        kind::CONNECT => "connect",
        kind::ACCEPT => "accept",
        kind::OPEN => "open",
        kind::OPENAT => "openat",
        kind::OPENAT2 => "openat2",
        kind::UNLINK => "unlink",
        kind::UNLINKAT => "unlinkat",
        kind::RENAME => "rename",
        kind::RENAMEAT => "renameat",
        kind::RENAMEAT2 => "renameat2",
        kind::SETUID => "setuid",
        kind::SETGID => "setgid",
        kind::PTRACE => "ptrace",
        kind::MEMFD => "memfd_create",
        kind::ACCEPT4 => "accept4",
        kind::CREAT => "creat",
        _ => "unknown",
    }
}

/// Common header of every record.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Header {
    pub kind: u32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub vpid: u32,
    pub uid: u32,
    pub gid: u32,
    pub loginuid: u32,
    /// Nanoseconds since boot (CLOCK_BOOTTIME).
    pub ts: u64,
    pub cgroup_id: u64,
    pub res: i64,
    /// Process start, nanoseconds since boot.
    pub start_time: u64,
    pub comm: String,
    /// Leaf name of the process' cgroup (empty when unknown).
    pub cgroup: String,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Exec {
        h: Header,
        tty: u32,
        argv: Vec<String>,
        exepath: String,
        cwd: String,
        /// The executable lies in an overlayfs upper layer.
        upper: bool,
        /// The executable is writable by the user running it.
        writable: bool,
    },
    Exit {
        h: Header,
        code: u32,
    },
    Fork {
        h: Header,
        child: u32,
        /// Syscall number that created the child (0 when unknown).
        nr: u32,
    },
    Sock {
        h: Header,
        family: u16,
        proto: u16,
        local: Option<(IpAddr, u16)>,
        remote: Option<(IpAddr, u16)>,
        unix_path: String,
        fd: i32,
    },
    File {
        h: Header,
        flags: u32,
        mode: u32,
        dfd: i32,
        aux: u32,
        aux2: u64,
        path: String,
        path2: String,
    },
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum DecodeError {
    #[error("record of {0} bytes is shorter than its layout")]
    Short(usize),
    #[error("unknown record kind {0}")]
    Kind(u32),
}

pub(crate) const HDR_LEN: usize = 176;
const PATH_LEN: usize = 256;
const WALK_BUF: usize = 320;
const ARGS_LEN: usize = 1024;
pub(crate) const EXEC_LEN: usize = HDR_LEN + 16 + 2 * WALK_BUF + ARGS_LEN;
pub(crate) const EXIT_LEN: usize = HDR_LEN + 8;
pub(crate) const FORK_LEN: usize = HDR_LEN + 16;
pub(crate) const SOCK_LEN: usize = HDR_LEN + 8 + 32 + 8 + 112;
pub(crate) const FILE_LEN: usize = HDR_LEN + 24 + 2 * PATH_LEN;

struct Rd<'a>(&'a [u8]);

impl Rd<'_> {
    fn u16(&self, o: usize) -> u16 {
        u16::from_le_bytes([self.0[o], self.0[o + 1]])
    }
    fn u32(&self, o: usize) -> u32 {
        let b = &self.0[o..o + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn u64(&self, o: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.0[o..o + 8]);
        u64::from_le_bytes(a)
    }
    fn cstr(&self, o: usize, len: usize) -> String {
        cstr(&self.0[o..o + len])
    }
}

/// Text up to the first NUL, lossily decoded.
pub(crate) fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    text(&b[..end])
}

/// `b` as text: copied as it is when it is UTF-8 (nearly always, and checked much faster than
/// a lossy decoding walks it), else lossily.
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Joins the leaf-first, NUL-separated components the BPF path walk writes into an absolute path.
pub(crate) fn walked_path(buf: &[u8], len: usize) -> String {
    let len = len.min(buf.len());
    let mut path = Vec::with_capacity(len + 1);
    for part in buf[..len].rsplit(|&c| c == 0) {
        if part.is_empty() || part == b"/" {
            continue;
        }
        path.push(b'/');
        path.extend_from_slice(part);
    }
    if path.is_empty() {
        return "/".to_string();
    }
    match String::from_utf8(path) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Splits a NUL-separated argv block.
pub(crate) fn split_argv(b: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = b.split(|&c| c == 0).map(text).collect();
    while v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}

fn ip(family: u16, b: &[u8]) -> IpAddr {
    if family == 2 {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        let v6 = std::net::Ipv6Addr::from(a);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

fn header(r: &Rd<'_>) -> Header {
    Header {
        kind: r.u32(0),
        pid: r.u32(4),
        tid: r.u32(8),
        ppid: r.u32(12),
        vpid: r.u32(16),
        uid: r.u32(20),
        gid: r.u32(24),
        loginuid: r.u32(28),
        ts: r.u64(32),
        cgroup_id: r.u64(40),
        res: r.u64(48) as i64,
        start_time: r.u64(56),
        comm: r.cstr(64, 16),
        cgroup: r.cstr(80, 96),
    }
}

/// Decodes one ring-buffer record.
pub(crate) fn decode(data: &[u8]) -> Result<Raw, DecodeError> {
    if data.len() < HDR_LEN {
        return Err(DecodeError::Short(data.len()));
    }
    let r = Rd(data);
    let h = header(&r);
    let need = |n: usize| {
        if data.len() < n {
            Err(DecodeError::Short(data.len()))
        } else {
            Ok(())
        }
    };
    let b = HDR_LEN;
    Ok(match h.kind {
        kind::EXECVE | kind::EXECVEAT => {
            need(EXEC_LEN)?;
            let tty = r.u32(b);
            let args_len = (r.u32(b + 4) as usize).min(ARGS_LEN);
            let exe_word = r.u32(b + 8);
            let exe_len = (exe_word & 0x3fff_ffff) as usize;
            let cwd_len = r.u32(b + 12) as usize;
            let exe_o = b + 16;
            let cwd_o = exe_o + WALK_BUF;
            let args_o = cwd_o + WALK_BUF;
            Raw::Exec {
                tty,
                argv: split_argv(&data[args_o..args_o + args_len]),
                exepath: walked_path(&data[exe_o..exe_o + WALK_BUF], exe_len),
                cwd: walked_path(&data[cwd_o..cwd_o + WALK_BUF], cwd_len),
                upper: exe_word & 0x8000_0000 != 0,
                writable: exe_word & 0x4000_0000 != 0,
                h,
            }
        }
        kind::EXIT => {
            need(EXIT_LEN)?;
            Raw::Exit { code: r.u32(b), h }
        }
        kind::FORK => {
            need(FORK_LEN)?;
            Raw::Fork {
                child: r.u32(b),
                nr: r.u32(b + 8),
                h,
            }
        }
        kind::CONNECT | kind::ACCEPT | kind::ACCEPT4 => {
            need(SOCK_LEN)?;
            let family = r.u16(b);
            let proto = r.u16(b + 2);
            let lport = r.u16(b + 4);
            let rport = r.u16(b + 6);
            let (local, remote) = if family == 2 || family == 10 {
                (
                    Some((ip(family, &data[b + 8..b + 24]), lport)),
                    Some((ip(family, &data[b + 24..b + 40]), rport)),
                )
            } else {
                (None, None)
            };
            Raw::Sock {
                family,
                proto,
                local,
                remote,
                fd: r.u32(b + 40) as i32,
                unix_path: r.cstr(b + 48, 112),
                h,
            }
        }
        kind::OPEN..=kind::MEMFD | kind::CREAT => {
            need(FILE_LEN)?;
            Raw::File {
                flags: r.u32(b),
                mode: r.u32(b + 4),
                dfd: r.u32(b + 8) as i32,
                aux: r.u32(b + 12),
                aux2: r.u64(b + 16),
                path: r.cstr(b + 24, PATH_LEN),
                path2: r.cstr(b + 24 + PATH_LEN, PATH_LEN),
                h,
            }
        }
        k => return Err(DecodeError::Kind(k)),
    })
}

/// Lays `raw` out as the BPF program writes it: the inverse of [`decode`] for whatever fits the
/// record (longer text is cut to its field, less one byte for the NUL). The benchmark feeds the
/// reader records made here, and the tests check that decoding gives them back.
pub(crate) fn encode(raw: &Raw) -> Vec<u8> {
    fn put(d: &mut [u8], o: usize, b: &[u8]) {
        d[o..o + b.len()].copy_from_slice(b);
    }
    fn text(d: &mut [u8], o: usize, len: usize, s: &str) {
        let n = s.len().min(len - 1);
        put(d, o, &s.as_bytes()[..n]);
    }
    fn addr(d: &mut [u8], o: usize, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => put(d, o, &a.octets()),
            IpAddr::V6(a) => put(d, o, &a.octets()),
        }
    }
    /// Components leaf first, NUL separated, as the path walk writes them; returns the length.
    fn walked(d: &mut [u8], o: usize, path: &str) -> u32 {
        let mut pos = 0;
        for part in path.rsplit('/').filter(|p| !p.is_empty()) {
            if pos + part.len() + 1 > WALK_BUF {
                break;
            }
            put(d, o + pos, part.as_bytes());
            pos += part.len() + 1;
        }
        pos as u32
    }
    let (h, len) = match raw {
        Raw::Exec { h, .. } => (h, EXEC_LEN),
        Raw::Exit { h, .. } => (h, EXIT_LEN),
        Raw::Fork { h, .. } => (h, FORK_LEN),
        Raw::Sock { h, .. } => (h, SOCK_LEN),
        Raw::File { h, .. } => (h, FILE_LEN),
    };
    let mut d = vec![0u8; len];
    for (o, v) in [
        h.kind, h.pid, h.tid, h.ppid, h.vpid, h.uid, h.gid, h.loginuid,
    ]
    .into_iter()
    .enumerate()
    {
        put(&mut d, o * 4, &v.to_le_bytes());
    }
    put(&mut d, 32, &h.ts.to_le_bytes());
    put(&mut d, 40, &h.cgroup_id.to_le_bytes());
    put(&mut d, 48, &h.res.to_le_bytes());
    put(&mut d, 56, &h.start_time.to_le_bytes());
    text(&mut d, 64, 16, &h.comm);
    text(&mut d, 80, 96, &h.cgroup);
    let b = HDR_LEN;
    match raw {
        Raw::Exec {
            tty,
            argv,
            exepath,
            cwd,
            upper,
            writable,
            ..
        } => {
            let exe_o = b + 16;
            let cwd_o = exe_o + WALK_BUF;
            let args_o = cwd_o + WALK_BUF;
            let mut exe_word = walked(&mut d, exe_o, exepath);
            exe_word |= u32::from(*upper) << 31 | u32::from(*writable) << 30;
            let cwd_len = walked(&mut d, cwd_o, cwd);
            let mut args_len = 0;
            for a in argv {
                if args_len + a.len() + 1 > ARGS_LEN {
                    break;
                }
                put(&mut d, args_o + args_len, a.as_bytes());
                args_len += a.len() + 1;
            }
            put(&mut d, b, &tty.to_le_bytes());
            put(&mut d, b + 4, &(args_len as u32).to_le_bytes());
            put(&mut d, b + 8, &exe_word.to_le_bytes());
            put(&mut d, b + 12, &cwd_len.to_le_bytes());
        }
        Raw::Exit { code, .. } => put(&mut d, b, &code.to_le_bytes()),
        Raw::Fork { child, nr, .. } => {
            put(&mut d, b, &child.to_le_bytes());
            put(&mut d, b + 8, &nr.to_le_bytes());
        }
        Raw::Sock {
            family,
            proto,
            local,
            remote,
            unix_path,
            fd,
            ..
        } => {
            put(&mut d, b, &family.to_le_bytes());
            put(&mut d, b + 2, &proto.to_le_bytes());
            if let Some((ip, port)) = local {
                put(&mut d, b + 4, &port.to_le_bytes());
                addr(&mut d, b + 8, *ip);
            }
            if let Some((ip, port)) = remote {
                put(&mut d, b + 6, &port.to_le_bytes());
                addr(&mut d, b + 24, *ip);
            }
            put(&mut d, b + 40, &fd.to_le_bytes());
            text(&mut d, b + 48, 112, unix_path);
        }
        Raw::File {
            flags,
            mode,
            dfd,
            aux,
            aux2,
            path,
            path2,
            ..
        } => {
            put(&mut d, b, &flags.to_le_bytes());
            put(&mut d, b + 4, &mode.to_le_bytes());
            put(&mut d, b + 8, &dfd.to_le_bytes());
            put(&mut d, b + 12, &aux.to_le_bytes());
            put(&mut d, b + 16, &aux2.to_le_bytes());
            text(&mut d, b + 24, PATH_LEN, path);
            text(&mut d, b + 24 + PATH_LEN, PATH_LEN, path2);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walked_paths_reverse() {
        assert_eq!(walked_path(b"cat\0bin\0usr\0", 12), "/usr/bin/cat");
        assert_eq!(walked_path(b"", 0), "/");
        assert_eq!(walked_path(b"tmp\0\0\0", 4), "/tmp");
        assert_eq!(walked_path(b"a\xff\0b\0", 5), "/b/a\u{fffd}");
        assert_eq!(cstr(b"sh\xff\0junk"), "sh\u{fffd}");
    }

    #[test]
    fn argv_split() {
        assert_eq!(
            split_argv(b"sh\0-c\0echo hi\0"),
            vec!["sh", "-c", "echo hi"]
        );
        assert!(split_argv(b"").is_empty());
    }

    fn connect_record() -> Raw {
        Raw::Sock {
            h: Header {
                kind: kind::CONNECT,
                pid: 42,
                res: -111,
                comm: "curl".into(),
                ..Default::default()
            },
            family: 2,
            proto: 6,
            local: Some(("172.17.0.2".parse().unwrap(), 40000)),
            remote: Some(("127.0.0.1".parse().unwrap(), 3333)),
            unix_path: String::new(),
            fd: 3,
        }
    }

    #[test]
    fn decode_connect_record() {
        let d = encode(&connect_record());
        assert_eq!(d.len(), SOCK_LEN);
        // The layout the BPF program writes: the header, then family, protocol, ports and
        // addresses.
        assert_eq!(&d[0..4], &kind::CONNECT.to_le_bytes());
        assert_eq!(&d[48..56], &(-111i64).to_le_bytes());
        assert_eq!(&d[64..69], b"curl\0");
        assert_eq!(&d[HDR_LEN + 4..HDR_LEN + 8], &[0x40, 0x9c, 0x05, 0x0d]);
        assert_eq!(&d[HDR_LEN + 8..HDR_LEN + 12], &[172, 17, 0, 2]);
        assert_eq!(&d[HDR_LEN + 24..HDR_LEN + 28], &[127, 0, 0, 1]);
        assert_eq!(decode(&d), Ok(connect_record()));
    }

    #[test]
    fn short_and_unknown_records_fail() {
        assert_eq!(decode(&[0u8; 10]), Err(DecodeError::Short(10)));
        let mut d = vec![0u8; HDR_LEN];
        d[0] = 99;
        assert_eq!(decode(&d), Err(DecodeError::Kind(99)));
        d[0] = kind::EXECVE as u8;
        assert_eq!(decode(&d), Err(DecodeError::Short(HDR_LEN)));
    }

    use proptest::prelude::*;

    fn header(kind: u32) -> impl Strategy<Value = Header> {
        (
            any::<[u32; 7]>(),
            any::<[u64; 3]>(),
            any::<i64>(),
            "[a-z0-9:.-]{0,15}",
            "[a-z0-9-]{0,40}",
        )
            .prop_map(move |(n, t, res, comm, cgroup)| Header {
                kind,
                pid: n[0],
                tid: n[1],
                ppid: n[2],
                vpid: n[3],
                uid: n[4],
                gid: n[5],
                loginuid: n[6],
                ts: t[0],
                cgroup_id: t[1],
                res,
                start_time: t[2],
                comm,
                cgroup,
            })
    }

    fn endpoint(v6: bool) -> BoxedStrategy<(IpAddr, u16)> {
        if v6 {
            // Not v4-mapped: those decode as IPv4, as the kernel's dual-stack sockets mean.
            (any::<[u16; 8]>(), any::<u16>())
                .prop_map(|(w, p)| {
                    let mut w = w;
                    w[0] |= 0x2000;
                    (IpAddr::from(w), p)
                })
                .boxed()
        } else {
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(a, p)| (IpAddr::from(a), p))
                .boxed()
        }
    }

    fn record() -> impl Strategy<Value = Raw> {
        let path = "(/[a-z0-9._-]{1,12}){0,6}";
        prop_oneof![
            (
                header(kind::EXECVE),
                any::<u32>(),
                prop::collection::vec("[ -~]{1,20}", 0..8),
                path,
                path,
                any::<(bool, bool)>()
            )
                .prop_map(|(h, tty, argv, exe, cwd, (upper, writable))| Raw::Exec {
                    h,
                    tty,
                    argv,
                    exepath: if exe.is_empty() { "/".into() } else { exe },
                    cwd: if cwd.is_empty() { "/".into() } else { cwd },
                    upper,
                    writable,
                }),
            (header(kind::EXIT), any::<u32>()).prop_map(|(h, code)| Raw::Exit { h, code }),
            (header(kind::FORK), any::<(u32, u32)>()).prop_map(|(h, (child, nr))| Raw::Fork {
                h,
                child,
                nr
            }),
            (
                header(kind::CONNECT),
                any::<bool>(),
                any::<u16>(),
                any::<i32>()
            )
                .prop_flat_map(|(h, v6, proto, fd)| {
                    (endpoint(v6), endpoint(v6)).prop_map(move |(l, r)| Raw::Sock {
                        h: h.clone(),
                        family: if v6 { 10 } else { 2 },
                        proto,
                        local: Some(l),
                        remote: Some(r),
                        unix_path: String::new(),
                        fd,
                    })
                }),
            (header(kind::ACCEPT4), "/[a-z/]{0,100}", any::<i32>()).prop_map(|(h, p, fd)| {
                Raw::Sock {
                    h,
                    family: 1,
                    proto: 0,
                    local: None,
                    remote: None,
                    unix_path: p,
                    fd,
                }
            }),
            (
                prop_oneof![kind::OPEN..=kind::MEMFD, Just(kind::CREAT)].prop_flat_map(header),
                any::<(u32, u32, i32, u32, u64)>(),
                "[ -~]{0,255}",
                "[ -~]{0,255}"
            )
                .prop_map(|(h, (flags, mode, dfd, aux, aux2), path, path2)| {
                    Raw::File {
                        h,
                        flags,
                        mode,
                        dfd,
                        aux,
                        aux2,
                        path,
                        path2,
                    }
                }),
        ]
    }

    proptest! {
        #[test]
        fn decoding_gives_back_what_was_encoded(r in record()) {
            prop_assert_eq!(decode(&encode(&r)), Ok(r));
        }

        #[test]
        fn decoding_never_panics(kind in 0u32..24, tail in prop::collection::vec(any::<u8>(), 0..2400)) {
            let mut d = kind.to_le_bytes().to_vec();
            d.extend(tail);
            let _ = decode(&d);
        }
    }
}
