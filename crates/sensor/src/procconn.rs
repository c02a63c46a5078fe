//! The fallback backend: the netlink process-events connector (fork, exec, exit, uid/gid
//! changes, ptrace attach) with `/proc` enrichment, plus a periodic scan of `/proc/net` for new
//! TCP/UDP connections. Needs `CAP_NET_ADMIN` (root), but no BPF or BTF.
//!
//! What it cannot see is listed in the crate docs.

use crate::cgroup::CgroupMode;
use crate::enrich::{Enricher, boot_ns, mono_ns};
use crate::raw::{Header, Raw, kind};
use crate::{SensorError, Shared};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;

const EV_FORK: u32 = 0x1;
const EV_EXEC: u32 = 0x2;
const EV_UID: u32 = 0x4;
const EV_GID: u32 = 0x40;
const EV_PTRACE: u32 = 0x100;
const EV_EXIT: u32 = 0x8000_0000;

/// An open proc-connector socket.
pub(crate) struct ProcConnector {
    fd: std::os::fd::OwnedFd,
}

fn last_os_error(what: &str) -> SensorError {
    SensorError::ProcConnector(format!("{what}: {}", std::io::Error::last_os_error()))
}

impl ProcConnector {
    /// Opens the socket, joins the proc events group and subscribes.
    #[allow(unsafe_code)]
    pub(crate) fn open() -> Result<ProcConnector, SensorError> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(last_os_error("netlink socket"));
        }
        // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let me = ProcConnector { fd };
        me.setup()?;
        Ok(me)
    }

    #[allow(unsafe_code)]
    fn setup(&self) -> Result<(), SensorError> {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_pid = 0; // let the kernel pick a unique port id
        sa.nl_groups = CN_IDX_PROC;
        // SAFETY: `sa` is a valid sockaddr_nl and the length matches it.
        let rc = unsafe {
            libc::bind(
                fd,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(last_os_error("netlink bind"));
        }
        let rcvbuf: libc::c_int = 8 << 20;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: the option values are valid for their lengths; failures are not fatal.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&rcvbuf as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let msg = listen_message();
        // SAFETY: `msg` is a valid buffer of the given length.
        let n = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(last_os_error("proc connector subscribe"));
        }
        Ok(())
    }

    /// Receives one datagram; `Ok(0)` on timeout.
    #[allow(unsafe_code)]
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: `buf` is valid and writable for its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}

/// nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN.
fn listen_message() -> Vec<u8> {
    let total = 16 + 20 + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&std::process::id().to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

/// One decoded proc connector event.
#[derive(Debug, PartialEq)]
pub(crate) enum ProcEvent {
    Fork {
        parent: u32,
        child_tid: u32,
        child: u32,
    },
    Exec {
        pid: u32,
    },
    Exit {
        pid: u32,
        tid: u32,
        code: u32,
    },
    Uid {
        pid: u32,
        ruid: u32,
    },
    Gid {
        pid: u32,
        rgid: u32,
    },
    Ptrace {
        pid: u32,
        tracer: u32,
    },
    Other,
}

fn ne32(b: &[u8], o: usize) -> Option<u32> {
    let s = b.get(o..o + 4)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses one netlink datagram (one or more messages) into events with their monotonic times.
pub(crate) fn parse(buf: &[u8]) -> Vec<(u64, ProcEvent)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let Some(len) = ne32(buf, off) else { break };
        let len = len as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let msg = &buf[off..off + len];
        // cn_msg at 16 (20 bytes), proc_event at 36
        let p = 36;
        if let (Some(what), Some(ts_lo), Some(ts_hi)) =
            (ne32(msg, p), ne32(msg, p + 8), ne32(msg, p + 12))
        {
            let ts = u64::from(ts_lo) | (u64::from(ts_hi) << 32);
            let d = p + 16;
            let f = |i: usize| ne32(msg, d + 4 * i).unwrap_or(0);
            let ev = match what {
                EV_FORK => ProcEvent::Fork {
                    parent: f(1),
                    child_tid: f(2),
                    child: f(3),
                },
                EV_EXEC => ProcEvent::Exec { pid: f(1) },
                EV_EXIT => ProcEvent::Exit {
                    tid: f(0),
                    pid: f(1),
                    code: f(2),
                },
                EV_UID => ProcEvent::Uid {
                    pid: f(1),
                    ruid: f(2),
                },
                EV_GID => ProcEvent::Gid {
                    pid: f(1),
                    rgid: f(2),
                },
                EV_PTRACE => ProcEvent::Ptrace {
                    pid: f(1),
                    tracer: f(3),
                },
                _ => ProcEvent::Other,
            };
            out.push((ts, ev));
        }
        off += (len + 3) & !3;
    }
    out
}

fn header_from_proc(enr: &mut Enricher, pid: u32, k: u32, ts: u64) -> Header {
    let e = enr.procs.get_or_load(pid).cloned().unwrap_or_default();
    Header {
        kind: k,
        pid,
        tid: pid,
        ppid: e.ppid,
        vpid: e.vpid.unwrap_or(0),
        uid: e.uid,
        gid: e.gid,
        loginuid: e.loginuid,
        ts,
        cgroup_id: 0,
        res: 0,
        start_time: e.start_boot_ns,
        comm: e.name.clone(),
        cgroup: String::new(),
    }
}

/// Reads the connector and scans connections until `shared.stop`.
pub(crate) fn run(
    conn: ProcConnector,
    mut enr: Box<Enricher>,
    shared: Arc<Shared>,
    mode: CgroupMode,
    scan_every: Duration,
) {
    let n = enr.procs.seed();
    tracing::debug!(processes = n, "process table seeded");
    let mut buf = vec![0u8; 64 * 1024];
    let mono_to_boot = boot_ns() as i64 - mono_ns();
    let mut scanner = ConnScanner::new();
    scanner.scan(); // baseline: existing connections are not new
    let mut last_scan = Instant::now();
    tracing::info!("proc connector sensor running");
    // What one pass produces is handed over in one piece, as the eBPF reader does.
    let mut out = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        match conn.recv(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                for (ts, ev) in parse(&buf[..n]) {
                    let ts = (ts as i64 + mono_to_boot).max(0) as u64;
                    if let Some(raw) = to_raw(&mut enr, ev, ts, mode) {
                        enr.handle(raw, &mut |e| out.push(e));
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                shared.kernel_lost.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "proc connector receive failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        enr.flush(&mut |e| out.push(e));
        if last_scan.elapsed() >= scan_every {
            last_scan = Instant::now();
            for raw in scanner.scan() {
                enr.handle(raw, &mut |e| out.push(e));
            }
        }
        shared.emit_batch(crate::stream::take_batch(&mut out));
    }
}

fn to_raw(enr: &mut Enricher, ev: ProcEvent, ts: u64, mode: CgroupMode) -> Option<Raw> {
    Some(match ev {
        ProcEvent::Exec { pid } => {
            let e = crate::proctable::read_proc(pid, mode)?;
            let mut h = header_from_proc(enr, pid, kind::EXECVE, ts);
            h.ppid = e.ppid;
            h.uid = e.uid;
            h.gid = e.gid;
            h.comm = e.name.clone();
            h.loginuid = e.loginuid;
            h.vpid = e.vpid.unwrap_or(0);
            h.start_time = e.start_boot_ns;
            h.cgroup = e.container.clone().unwrap_or_default();
            Raw::Exec {
                h,
                tty: e.tty,
                argv: e.argv.to_vec(),
                exepath: e.exepath.to_string(),
                cwd: e.cwd.to_string(),
                upper: false,
                writable: false,
            }
        }
        ProcEvent::Fork {
            parent,
            child_tid,
            child,
        } => {
            if child_tid != child {
                return None; // a thread
            }
            let mut h = header_from_proc(enr, parent, kind::FORK, ts);
            h.res = i64::from(child);
            Raw::Fork { h, child, nr: 0 }
        }
        ProcEvent::Exit { pid, tid, code } => {
            if pid != tid {
                return None;
            }
            let mut h = header_from_proc(enr, pid, kind::EXIT, ts);
            h.res = i64::from(code);
            Raw::Exit { h, code }
        }
        ProcEvent::Uid { pid, ruid } | ProcEvent::Gid { pid, rgid: ruid } => {
            let is_uid = matches!(ev, ProcEvent::Uid { .. });
            let k = if is_uid { kind::SETUID } else { kind::SETGID };
            let h = header_from_proc(enr, pid, k, ts);
            Raw::File {
                h,
                flags: 0,
                mode: 0,
                dfd: -100,
                aux: ruid,
                aux2: 0,
                path: String::new(),
                path2: String::new(),
            }
        }
        ProcEvent::Ptrace { pid, tracer } => {
            if tracer == 0 {
                return None; // detach
            }
            let h = header_from_proc(enr, tracer, kind::PTRACE, ts);
            Raw::File {
                h,
                flags: 0,
                mode: 0,
                dfd: -100,
                aux: pid,
                aux2: 16,
                path: String::new(),
                path2: String::new(),
            }
        }
        ProcEvent::Other => return None,
    })
}

/// A connection from `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NetEntry {
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub state: u8,
    pub inode: u64,
    pub proto: u16,
}

fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = if a.len() == 8 {
        let v = u32::from_str_radix(a, 16).ok()?;
        IpAddr::from(v.to_le_bytes())
    } else if a.len() == 32 {
        let mut b = [0u8; 16];
        for i in 0..4 {
            let w = u32::from_str_radix(&a[i * 8..i * 8 + 8], 16).ok()?;
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        let v6 = std::net::Ipv6Addr::from(b);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    } else {
        return None;
    };
    Some((ip, port))
}

/// Parses a `/proc/net/tcp`-style table.
pub(crate) fn parse_net(text: &str, proto: u16) -> Vec<NetEntry> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(NetEntry {
                local: parse_addr(f.get(1)?)?,
                remote: parse_addr(f.get(2)?)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
                proto,
            })
        })
        .collect()
}

const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;

/// Finds connections that appeared since the last scan.
struct ConnScanner {
    seen: HashSet<(IpAddr, u16, IpAddr, u16, u16)>,
    /// Ports seen listening recently (a one-shot server closes its listener after accepting).
    listeners: HashMap<u16, Instant>,
}

/// How long a port stays known as a server port after its listener was last seen.
const LISTENER_MEMORY: Duration = Duration::from_secs(120);

impl ConnScanner {
    fn new() -> ConnScanner {
        ConnScanner {
            seen: HashSet::new(),
            listeners: HashMap::new(),
        }
    }

    fn scan(&mut self) -> Vec<Raw> {
        let mut all = Vec::new();
        for (f, proto) in [
            ("/proc/net/tcp", 6),
            ("/proc/net/tcp6", 6),
            ("/proc/net/udp", 17),
            ("/proc/net/udp6", 17),
        ] {
            if let Ok(t) = std::fs::read_to_string(f) {
                all.extend(parse_net(&t, proto));
            }
        }
        let now = Instant::now();
        for e in all.iter().filter(|e| e.proto == 6 && e.state == TCP_LISTEN) {
            self.listeners.insert(e.local.1, now);
        }
        self.listeners
            .retain(|_, t| now.duration_since(*t) < LISTENER_MEMORY);
        let listening: HashSet<u16> = self.listeners.keys().copied().collect();
        let mut now_seen = HashSet::new();
        let mut fresh = Vec::new();
        for e in all {
            // Any state of a connected socket (established, closing, …), not listeners.
            let connected = if e.proto == 6 {
                !matches!(e.state, TCP_LISTEN | TCP_CLOSE) && e.remote.1 != 0 && e.inode != 0
            } else {
                e.remote.1 != 0
            };
            if !connected {
                continue;
            }
            let key = (e.local.0, e.local.1, e.remote.0, e.remote.1, e.proto);
            if !self.seen.contains(&key) {
                fresh.push(e.clone());
            }
            now_seen.insert(key);
        }
        self.seen = now_seen;
        if fresh.is_empty() {
            return Vec::new();
        }
        let owners = inode_owners(&fresh.iter().map(|e| e.inode).collect());
        let ts = boot_ns();
        fresh
            .into_iter()
            .filter_map(|e| {
                let pid = *owners.get(&e.inode)?;
                let accept = e.proto == 6 && listening.contains(&e.local.1);
                let k = if accept { kind::ACCEPT } else { kind::CONNECT };
                Some(Raw::Sock {
                    h: Header {
                        kind: k,
                        pid,
                        tid: pid,
                        ts,
                        loginuid: u32::MAX,
                        ..Default::default()
                    },
                    family: if e.local.0.is_ipv4() { 2 } else { 10 },
                    proto: e.proto,
                    local: Some(e.local),
                    remote: Some(e.remote),
                    unix_path: String::new(),
                    fd: -1,
                })
            })
            .collect()
    }
}

/// Which pid holds each socket inode (scans `/proc/*/fd`).
fn inode_owners(want: &HashSet<u64>) -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for d in rd.flatten() {
        let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(l) = std::fs::read_link(fd.path())
                && let Some(ino) = l
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
                && want.contains(&ino)
            {
                out.entry(ino).or_insert(pid);
            }
        }
        if out.len() == want.len() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_table_parse() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0D05 0200A8C0:9C40 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n";
        let e = parse_net(t, 6);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].local, ("127.0.0.1".parse().unwrap(), 3333));
        assert_eq!(e[0].remote, ("192.168.0.2".parse().unwrap(), 40000));
        assert_eq!(e[0].state, 1);
        assert_eq!(e[0].inode, 12345);
    }

    #[test]
    fn connector_message_parse() {
        let mut m = vec![0u8; 36 + 16 + 24];
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m[36..40].copy_from_slice(&EV_FORK.to_ne_bytes());
        m[44..52].copy_from_slice(&77u64.to_ne_bytes());
        for (i, v) in [10u32, 10, 11, 11].iter().enumerate() {
            m[52 + 4 * i..56 + 4 * i].copy_from_slice(&v.to_ne_bytes());
        }
        let ev = parse(&m);
        assert_eq!(
            ev,
            vec![(
                77,
                ProcEvent::Fork {
                    parent: 10,
                    child_tid: 11,
                    child: 11
                }
            )]
        );
        assert_eq!(listen_message().len(), 40);
    }
}
