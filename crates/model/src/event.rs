//! Runtime events: what the sensor sees and the detection engine matches.
//!
//! An [`Event`] serializes to one JSON object; `vigil sensor --json` writes them one per line and
//! `vigil rules replay` reads the same lines back.
//!
//! Event kinds (`evt.type` in rules):
//! - `source = syscall`: the syscall name — `execve`, `execveat`, `clone`, `fork`, `procexit`,
//!   `connect`, `accept`, `openat`, `openat2`, `unlinkat`, `renameat2`, `setuid`, `setgid`,
//!   `ptrace`, `memfd_create`, …
//! - `source = docker`: `container_create`, `container_start`, `container_die`, `container_kill`,
//!   `container_oom`, `container_exec`, `image_pull`, `image_tag`, `image_delete` (object, `_`,
//!   Docker's action). `evt.arg.*` carries Docker's event attributes.

use crate::Time;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where an event came from; matches a Falco rule's `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// Kernel events (Falco's `syscall` source).
    #[default]
    Syscall,
    /// Docker Engine lifecycle events.
    Docker,
    /// Kubernetes audit events.
    K8sAudit,
}

impl EventSource {
    /// The Falco source name: `syscall`, `docker`, `k8s_audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Syscall => "syscall",
            EventSource::Docker => "docker",
            EventSource::K8sAudit => "k8s_audit",
        }
    }
}

/// One runtime event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Event {
    /// When it happened (`evt.time`).
    pub ts: Time,
    /// Where it came from (`evt.source`).
    #[serde(default)]
    pub source: EventSource,
    /// The event type (`evt.type`), see the module docs.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// Host the event happened on (`evt.hostname`).
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub hostname: Arc<str>,
    /// Syscall result (`evt.res` / `evt.rawres`): `>= 0` success, negative errno on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub res: Option<i64>,
    /// Event arguments (`evt.arg.NAME`, `evt.arg[NAME]`), e.g. `flags`, `mode`, `name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<Cow<'static, str>, String>,
    /// The process that caused the event. Shared: the sensor hands the same description to
    /// every event of a thread until something about the process changes, so an event costs
    /// no copy of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Arc<ProcessInfo>>,
    /// The file descriptor the event is about (file or socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<FdInfo>,
    /// The container the event belongs to; `None` on the host. Shared with the sensor's
    /// container cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Arc<ContainerInfo>>,
}

/// A process (`proc.*`, `user.*`, `group.*` fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProcessInfo {
    /// Process id as seen from the host (`proc.pid`).
    pub pid: u32,
    /// Thread id (`thread.tid`).
    #[serde(default)]
    pub tid: u32,
    /// Parent pid (`proc.ppid`).
    #[serde(default)]
    pub ppid: u32,
    /// Pid inside the process' pid namespace (`proc.vpid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpid: Option<u32>,
    /// Command name, at most 15 bytes as the kernel keeps it (`proc.name`).
    pub name: String,
    /// `argv[0]` (`proc.exe`).
    #[serde(default)]
    pub exe: String,
    /// Full path of the executable (`proc.exepath`).
    #[serde(default)]
    pub exepath: String,
    /// Arguments after `argv[0]` (`proc.args` joins them with spaces).
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory (`proc.cwd`), with a trailing `/` as Falco shows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cwd: String,
    /// Controlling terminal number, 0 for none (`proc.tty`).
    #[serde(default)]
    pub tty: u32,
    /// Session id (`proc.sid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<u32>,
    /// When the process started (`proc.start_ts`… in ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<Time>,
    /// The executable lies in a container's writable upper layer (`proc.is_exe_upper_layer`).
    #[serde(default)]
    pub exe_upper_layer: bool,
    /// The executable was written after the container started (`proc.is_exe_writable`).
    #[serde(default)]
    pub exe_writable: bool,
    /// The executable is a memfd (`proc.is_exe_from_memfd`).
    #[serde(default)]
    pub exe_from_memfd: bool,
    /// The user.
    #[serde(default)]
    pub user: UserInfo,
    /// Primary group id (`group.gid`).
    #[serde(default)]
    pub gid: u32,
    /// Primary group name (`group.name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Ancestors, parent first (`proc.pname` = `ancestors[0].name`, `proc.aname[n]` =
    /// `ancestors[n-1].name`). Shared with the sensor's process table, so an event costs no
    /// copy of its ancestry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<Arc<Ancestor>>,
}

/// The user of a process (`user.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserInfo {
    /// `user.uid`.
    #[serde(default)]
    pub uid: u32,
    /// `user.name`, resolved where possible.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `user.loginuid`; -1 when unset.
    #[serde(default = "minus_one")]
    pub loginuid: i64,
    /// `user.loginname`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub loginname: String,
}

fn minus_one() -> i64 {
    -1
}

/// One ancestor of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ancestor {
    /// Its pid.
    pub pid: u32,
    /// Its command name.
    pub name: String,
    /// Its executable path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exepath: String,
    /// Its full command line (`argv` joined by spaces).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cmdline: String,
}

/// A file descriptor: a file or a socket (`fd.*`).
///
/// For sockets, `cip:cport` is the client end and `sip:sport` the server end, as in Falco; which
/// of them is local depends on `local_is_server` (false for `connect`, true for `accept`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FdInfo {
    /// `fd.typechar`: `f` file, `4` IPv4 socket, `6` IPv6 socket, `u` unix socket, `p` pipe, …
    pub typechar: char,
    /// Path for files (`fd.name`); for sockets empty, `fd.name` is then derived as
    /// `cip:cport->sip:sport`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Client IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cip: Option<std::net::IpAddr>,
    /// Client port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cport: Option<u16>,
    /// Server IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<std::net::IpAddr>,
    /// Server port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    /// `tcp` or `udp` (`fd.l4proto`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub l4proto: String,
    /// Whether the local end is the server (accept) rather than the client (connect).
    #[serde(default)]
    pub local_is_server: bool,
}

/// A container and its image (`container.*`, `k8s.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContainerInfo {
    /// Full 64-hex container id. `container.id` is its first 12 characters, as in Falco.
    pub id: String,
    /// Container name without the leading `/` (`container.name`).
    #[serde(default)]
    pub name: String,
    /// Image as configured, e.g. `servethehome/monero_cpu_minergate:latest` (`container.image`).
    #[serde(default)]
    pub image: String,
    /// Image repository, e.g. `servethehome/monero_cpu_minergate` (`container.image.repository`).
    #[serde(default)]
    pub image_repository: String,
    /// Image tag, e.g. `latest` (`container.image.tag`).
    #[serde(default)]
    pub image_tag: String,
    /// Repository digest `sha256:…` where known (`container.image.digest`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_digest: String,
    /// Local image id `sha256:…` (`container.image.id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    /// Runs privileged (`container.privileged`).
    #[serde(default)]
    pub privileged: bool,
    /// Container labels (pod labels come from `io.kubernetes.*` labels).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes namespace (`k8s.ns.name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub k8s_ns: String,
    /// Kubernetes pod (`k8s.pod.name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub k8s_pod: String,
    /// When the container started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
}

impl ContainerInfo {
    /// The 12-character id Falco shows as `container.id`.
    pub fn short_id(&self) -> &str {
        let end = self.id.len().min(12);
        self.id.get(..end).unwrap_or(&self.id)
    }

    /// Splits an image reference into repository and tag (`repo:tag`, `repo@digest`,
    /// `host:port/repo:tag`). A missing tag is `latest` unless a digest is given.
    pub fn split_image(image: &str) -> (String, String) {
        let without_digest = image.split('@').next().unwrap_or(image);
        let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        match without_digest[last_slash..].rfind(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (
                    without_digest[..at].to_string(),
                    without_digest[at + 1..].to_string(),
                )
            }
            None if image.contains('@') => (without_digest.to_string(), String::new()),
            None => (without_digest.to_string(), "latest".to_string()),
        }
    }
}

impl FdInfo {
    /// `fd.name`: the path for files, `cip:cport->sip:sport` for sockets.
    pub fn name(&self) -> String {
        if !self.path.is_empty() || !matches!(self.typechar, '4' | '6') {
            return self.path.clone();
        }
        // One allocation, and IPv4 written by hand: the sensor names every socket it reports,
        // and `fmt` takes several times as long for an address.
        let mut name = String::with_capacity(48);
        let ep = |name: &mut String, ip: Option<std::net::IpAddr>, port: Option<u16>| {
            match ip {
                Some(std::net::IpAddr::V4(a)) => {
                    for (i, o) in a.octets().into_iter().enumerate() {
                        if i > 0 {
                            name.push('.');
                        }
                        push_decimal(name, o.into());
                    }
                }
                Some(std::net::IpAddr::V6(a)) if port.is_some() => {
                    use std::fmt::Write;
                    let _ = write!(name, "[{a}]");
                }
                Some(a) => {
                    use std::fmt::Write;
                    let _ = write!(name, "{a}");
                }
                None => return,
            }
            if let Some(p) = port {
                name.push(':');
                push_decimal(name, p);
            }
        };
        ep(&mut name, self.cip, self.cport);
        name.push_str("->");
        ep(&mut name, self.sip, self.sport);
        name
    }
}

/// Appends `n` in decimal.
fn push_decimal(s: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        s.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split() {
        assert_eq!(
            ContainerInfo::split_image("servethehome/monero_cpu_minergate:latest"),
            ("servethehome/monero_cpu_minergate".into(), "latest".into())
        );
        assert_eq!(
            ContainerInfo::split_image("localhost:5000/x/y"),
            ("localhost:5000/x/y".into(), "latest".into())
        );
        assert_eq!(
            ContainerInfo::split_image("nginx@sha256:abc"),
            ("nginx".into(), String::new())
        );
        assert_eq!(
            ContainerInfo::split_image("gcr.io/cadvisor/cadvisor:v0.47.0").1,
            "v0.47.0"
        );
    }

    #[test]
    fn short_id_is_12() {
        let c = ContainerInfo {
            id: "0123456789abcdef0123".into(),
            ..Default::default()
        };
        assert_eq!(c.short_id(), "0123456789ab");
    }

    #[test]
    fn socket_fd_name() {
        let fd = FdInfo {
            typechar: '4',
            cip: Some("172.17.0.2".parse().unwrap()),
            cport: Some(40000),
            sip: Some("127.0.0.1".parse().unwrap()),
            sport: Some(3333),
            l4proto: "tcp".into(),
            ..Default::default()
        };
        assert_eq!(fd.name(), "172.17.0.2:40000->127.0.0.1:3333");
        let v6 = FdInfo {
            typechar: '6',
            cip: Some("::1".parse().unwrap()),
            cport: Some(5),
            sip: Some("fe80::1".parse().unwrap()),
            sport: None,
            ..Default::default()
        };
        assert_eq!(v6.name(), "[::1]:5->fe80::1");
        let unknown = FdInfo {
            typechar: '4',
            ..Default::default()
        };
        assert_eq!(unknown.name(), "->");
    }

    proptest::proptest! {
        #[test]
        fn ipv4_socket_names_read_as_std_writes_them(
            c in proptest::prelude::any::<[u8; 4]>(),
            cport in proptest::prelude::any::<u16>(),
            s in proptest::prelude::any::<[u8; 4]>(),
            sport in proptest::option::of(proptest::prelude::any::<u16>()),
        ) {
            let (c, s) = (std::net::Ipv4Addr::from(c), std::net::Ipv4Addr::from(s));
            let fd = FdInfo {
                typechar: '4',
                cip: Some(c.into()),
                cport: Some(cport),
                sip: Some(s.into()),
                sport,
                ..Default::default()
            };
            let server = match sport {
                Some(p) => format!("{s}:{p}"),
                None => s.to_string(),
            };
            proptest::prop_assert_eq!(fd.name(), format!("{c}:{cport}->{server}"));
        }
    }

    #[test]
    fn event_json_roundtrip() {
        let e = Event {
            kind: "execve".into(),
            process: Some(
                ProcessInfo {
                    pid: 7,
                    name: "xmrig".into(),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        };
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"type\":\"execve\""));
        let back: Event = serde_json::from_str(&s).unwrap();
        assert_eq!(back, e);
    }
}
