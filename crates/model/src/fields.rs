//! Falco field names over [`Event`]: `evt.*`, `proc.*`, `thread.tid`, `user.*`, `group.*`,
//! `fd.*`, `container.*` and `k8s.*`.
//!
//! A field name is parsed once into a compact [`Field`] (a [`FieldKind`] plus an optional
//! [`FieldArg`]); extracting its value from an event is then a `match` on the kind, with no
//! string matching and no allocation. A few fields are composed from several parts of the event
//! (`proc.cmdline`, `proc.args`, `fd.name` of a socket, `evt.args`, `evt.time`, …); their text is
//! built into a reusable [`Scratch`] buffer: call [`Scratch::prepare`] before
//! [`Field::value_at`] for such fields ([`Field::needs_scratch`]).
//!
//! Some fields hold several values: `proc.aname`, `proc.apid`, `proc.aexepath`, `proc.aexe`
//! without an index (every ancestor), `fd.ip`, `fd.port`, `fd.net` (either end of a socket).
//! [`Field::value_at`] returns them one by one; a condition holds when any value satisfies it.
//!
//! [`lookup`] tells apart fields Vigil provides, Falco fields Vigil does not collect yet
//! ([`Lookup::Unsupported`]) and names that are not Falco fields at all ([`Lookup::Unknown`]).

use crate::{Event, EventSource};
use std::fmt::Write as _;
use std::net::IpAddr;

/// What a field's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Text.
    Str,
    /// A signed integer (pids, uids, ports, timestamps, …).
    Int,
    /// `true` / `false`.
    Bool,
    /// An IP address, compared with addresses.
    Ip,
    /// An IP address compared with networks (`fd.net = "10.0.0.0/8"`).
    Net,
}

/// The argument of a field: `proc.aname[2]`, `evt.arg.flags`, `k8s.pod.label[app]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum FieldArg {
    /// No argument.
    #[default]
    None,
    /// A numeric argument (`proc.aname[2]`, `evt.arg[0]`).
    Index(u32),
    /// A name (`evt.arg.flags`, `container.label[com.example]`).
    Key(Box<str>),
}

macro_rules! kinds {
    ($( $kind:ident => $name:literal, $ty:ident, $arg:ident, $doc:literal; )*) => {
        /// The field a [`Field`] reads; one variant per Falco field name Vigil provides.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FieldKind {
            $( #[doc = $doc] $kind, )*
        }

        /// `(name, kind, type, argument)` for every supported field.
        const TABLE: &[(&str, FieldKind, FieldType, ArgSpec)] = &[
            $( ($name, FieldKind::$kind, FieldType::$ty, ArgSpec::$arg), )*
        ];
    };
}

/// Which argument a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgSpec {
    /// None.
    No,
    /// An optional index (`proc.aname`, `proc.aname[2]`).
    OptIndex,
    /// A required key (`evt.arg.flags`, `k8s.pod.label[app]`).
    Key,
}

kinds! {
    EvtType => "evt.type", Str, No, "`evt.type`: syscall name or Docker action (`container_start`).";
    SyscallType => "syscall.type", Str, No, "`syscall.type`: the syscall name (absent for non-syscall events).";
    EvtSource => "evt.source", Str, No, "`evt.source`: `syscall`, `docker`, `k8s_audit`.";
    EvtHostname => "evt.hostname", Str, No, "`evt.hostname`.";
    EvtTime => "evt.time", Str, No, "`evt.time`: `HH:MM:SS.nnnnnnnnn` (UTC).";
    EvtTimeS => "evt.time.s", Str, No, "`evt.time.s`: `HH:MM:SS` (UTC).";
    EvtTimeIso8601 => "evt.time.iso8601", Str, No, "`evt.time.iso8601`.";
    EvtDatetime => "evt.datetime", Str, No, "`evt.datetime`: `YYYY-MM-DD HH:MM:SS.nnnnnnnnn` (UTC).";
    EvtDatetimeS => "evt.datetime.s", Str, No, "`evt.datetime.s`: `YYYY-MM-DD HH:MM:SS` (UTC).";
    EvtRawtime => "evt.rawtime", Int, No, "`evt.rawtime`: nanoseconds since the epoch.";
    EvtRawtimeS => "evt.rawtime.s", Int, No, "`evt.rawtime.s`: seconds since the epoch.";
    EvtRawtimeNs => "evt.rawtime.ns", Int, No, "`evt.rawtime.ns`: the nanoseconds part.";
    EvtRes => "evt.res", Str, No, "`evt.res`: `SUCCESS` or the errno name (`ENOENT`).";
    EvtRawres => "evt.rawres", Int, No, "`evt.rawres`: the raw result.";
    EvtFailed => "evt.failed", Bool, No, "`evt.failed`: the result is an error.";
    EvtArg => "evt.arg", Str, Key, "`evt.arg.NAME` / `evt.arg[NAME]`.";
    EvtRawarg => "evt.rawarg", Str, Key, "`evt.rawarg.NAME`.";
    EvtArgs => "evt.args", Str, No, "`evt.args`: every argument as `name=value`, space separated.";
    EvtNum => "evt.num", Int, No, "`evt.num`: Vigil has no global event counter; this is the event's raw time in ns (always > 0), which keeps Falco's `never_true` (`evt.num=0`) / `always_true` idioms working.";
    EvtDir => "evt.dir", Str, No, "`evt.dir`: always `<` (exit events only, as in Falco 0.42+).";
    EvtIsOpenRead => "evt.is_open_read", Bool, No, "`evt.is_open_read`: an open for reading.";
    EvtIsOpenWrite => "evt.is_open_write", Bool, No, "`evt.is_open_write`: an open for writing.";
    EvtIsOpenExec => "evt.is_open_exec", Bool, No, "`evt.is_open_exec`: an open creating an executable file.";
    EvtIsOpenCreate => "evt.is_open_create", Bool, No, "`evt.is_open_create`: an open with `O_CREAT`.";
    ProcPid => "proc.pid", Int, No, "`proc.pid`.";
    ProcPpid => "proc.ppid", Int, No, "`proc.ppid`.";
    ProcVpid => "proc.vpid", Int, No, "`proc.vpid`.";
    ProcSid => "proc.sid", Int, No, "`proc.sid`.";
    ThreadTid => "thread.tid", Int, No, "`thread.tid`.";
    ProcName => "proc.name", Str, No, "`proc.name`.";
    ProcExe => "proc.exe", Str, No, "`proc.exe`: `argv[0]`.";
    ProcExepath => "proc.exepath", Str, No, "`proc.exepath`.";
    ProcCmdline => "proc.cmdline", Str, No, "`proc.cmdline`: `proc.name` and the arguments.";
    ProcArgs => "proc.args", Str, No, "`proc.args`: the arguments joined by spaces.";
    ProcCwd => "proc.cwd", Str, No, "`proc.cwd`.";
    ProcTty => "proc.tty", Int, No, "`proc.tty`: terminal number, 0 for none.";
    ProcPname => "proc.pname", Str, No, "`proc.pname`: the parent's name.";
    ProcPexe => "proc.pexe", Str, No, "`proc.pexe`: the parent's `argv[0]`.";
    ProcPexepath => "proc.pexepath", Str, No, "`proc.pexepath`: the parent's executable path.";
    ProcPcmdline => "proc.pcmdline", Str, No, "`proc.pcmdline`: the parent's command line.";
    ProcAname => "proc.aname", Str, OptIndex, "`proc.aname[N]` (0 = self, 1 = parent); without index: any ancestor.";
    ProcApid => "proc.apid", Int, OptIndex, "`proc.apid[N]`; without index: any ancestor.";
    ProcAexepath => "proc.aexepath", Str, OptIndex, "`proc.aexepath[N]`; without index: any ancestor.";
    ProcAexe => "proc.aexe", Str, OptIndex, "`proc.aexe[N]`; without index: any ancestor.";
    ProcAcmdline => "proc.acmdline", Str, OptIndex, "`proc.acmdline[N]`; without index: any ancestor.";
    ProcIsExeUpperLayer => "proc.is_exe_upper_layer", Bool, No, "`proc.is_exe_upper_layer`.";
    ProcIsExeWritable => "proc.is_exe_writable", Bool, No, "`proc.is_exe_writable`.";
    ProcIsExeFromMemfd => "proc.is_exe_from_memfd", Bool, No, "`proc.is_exe_from_memfd`.";
    UserUid => "user.uid", Int, No, "`user.uid`.";
    UserName => "user.name", Str, No, "`user.name`.";
    UserLoginuid => "user.loginuid", Int, No, "`user.loginuid` (-1 when unset).";
    UserLoginname => "user.loginname", Str, No, "`user.loginname`.";
    GroupGid => "group.gid", Int, No, "`group.gid`.";
    GroupName => "group.name", Str, No, "`group.name`.";
    FdNum => "fd.num", Int, No, "`fd.num`: the `fd` argument, else the result of an fd-creating syscall (-1 on failure); an fd event without result counts as 0.";
    ProcDuration => "proc.duration", Int, No, "`proc.duration`: ns since the process started (when the start time is known).";
    FdTypechar => "fd.typechar", Str, No, "`fd.typechar`: `f`, `4`, `6`, `u`, `p`, …";
    FdType => "fd.type", Str, No, "`fd.type`: `file`, `ipv4`, `ipv6`, `unix`, `pipe`, …";
    FdSockfamily => "fd.sockfamily", Str, No, "`fd.sockfamily`: `ip` or `unix`.";
    FdName => "fd.name", Str, No, "`fd.name`: path, or `cip:cport->sip:sport` for sockets.";
    FdNameraw => "fd.nameraw", Str, No, "`fd.nameraw`: as `fd.name`.";
    FdDirectory => "fd.directory", Str, No, "`fd.directory`: directory of a file.";
    FdFilename => "fd.filename", Str, No, "`fd.filename`: file name without directory.";
    FdL4proto => "fd.l4proto", Str, No, "`fd.l4proto`: `tcp`, `udp`.";
    FdSip => "fd.sip", Ip, No, "`fd.sip`: server IP.";
    FdCip => "fd.cip", Ip, No, "`fd.cip`: client IP.";
    FdRip => "fd.rip", Ip, No, "`fd.rip`: remote IP.";
    FdLip => "fd.lip", Ip, No, "`fd.lip`: local IP.";
    FdIp => "fd.ip", Ip, No, "`fd.ip`: either IP (filter only).";
    FdSport => "fd.sport", Int, No, "`fd.sport`: server port.";
    FdCport => "fd.cport", Int, No, "`fd.cport`: client port.";
    FdRport => "fd.rport", Int, No, "`fd.rport`: remote port.";
    FdLport => "fd.lport", Int, No, "`fd.lport`: local port.";
    FdPort => "fd.port", Int, No, "`fd.port`: either port (filter only).";
    FdNet => "fd.net", Net, No, "`fd.net`: either IP compared with a network.";
    FdSnet => "fd.snet", Net, No, "`fd.snet`: server IP compared with a network.";
    FdCnet => "fd.cnet", Net, No, "`fd.cnet`: client IP compared with a network.";
    FdRnet => "fd.rnet", Net, No, "`fd.rnet`: remote IP compared with a network.";
    FdLnet => "fd.lnet", Net, No, "`fd.lnet`: local IP compared with a network.";
    ContainerId => "container.id", Str, No, "`container.id`: 12-character id, `host` on the host.";
    ContainerFullId => "container.full_id", Str, No, "`container.full_id`: 64-character id, `host` on the host.";
    ContainerName => "container.name", Str, No, "`container.name`, `host` on the host.";
    ContainerType => "container.type", Str, No, "`container.type`: `docker`, or `host`.";
    ContainerImage => "container.image", Str, No, "`container.image`.";
    ContainerImageId => "container.image.id", Str, No, "`container.image.id`.";
    ContainerImageRepository => "container.image.repository", Str, No, "`container.image.repository`.";
    ContainerImageTag => "container.image.tag", Str, No, "`container.image.tag`.";
    ContainerImageDigest => "container.image.digest", Str, No, "`container.image.digest`.";
    ContainerPrivileged => "container.privileged", Bool, No, "`container.privileged`.";
    ContainerStartTs => "container.start_ts", Int, No, "`container.start_ts`: ns since the epoch.";
    ContainerLabel => "container.label", Str, Key, "`container.label[KEY]`.";
    K8sNsName => "k8s.ns.name", Str, No, "`k8s.ns.name`.";
    K8sPodName => "k8s.pod.name", Str, No, "`k8s.pod.name`.";
    K8sPodUid => "k8s.pod.uid", Str, No, "`k8s.pod.uid` (container label `io.kubernetes.pod.uid`).";
    K8sPodLabel => "k8s.pod.label", Str, Key, "`k8s.pod.label[KEY]`: the container label `KEY`.";
}

/// A parsed field reference: what to read, with its argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Which field.
    pub kind: FieldKind,
    /// Its argument, if any.
    pub arg: FieldArg,
}

/// The result of looking a field name up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Vigil provides this field.
    Supported(Field),
    /// A Falco field Vigil does not collect yet.
    Unsupported,
    /// Not a Falco field (or a malformed argument); the message says why.
    Unknown(String),
}

/// One value of a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Text.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// An IP address.
    Ip(IpAddr),
}

impl std::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Number of fields whose text is composed into a [`Scratch`] buffer.
const SLOTS: usize = 6;

/// Reusable buffers for composed field values (`proc.cmdline`, `proc.args`, socket `fd.name`,
/// `evt.args`, times). Reset it for every new event with [`Scratch::reset`]; the buffers keep
/// their capacity, so after warm-up no allocation happens. It also remembers the event's
/// parsed open flags (`evt.is_open_read`, `evt.is_open_write`) until the next reset.
#[derive(Debug, Default)]
pub struct Scratch {
    bufs: [String; SLOTS],
    ready: u32,
    /// [`open_flag_bits`] of the current event, with bit 7 set once computed.
    open: std::cell::Cell<u8>,
}

impl Scratch {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the composed values of the previous event.
    #[inline]
    pub fn reset(&mut self) {
        self.ready = 0;
        self.open.set(0);
    }

    /// [`open_flag_bits`] of `flags`, parsed once per event.
    #[inline]
    fn open_bits(&self, flags: &str) -> u8 {
        let b = self.open.get();
        if b & 0x80 != 0 {
            return b;
        }
        let b = open_flag_bits(flags) | 0x80;
        self.open.set(b);
        b
    }

    /// Composes the text of `field` for `ev` unless already done since the last reset.
    #[inline]
    pub fn prepare(&mut self, field: &Field, ev: &Event) {
        let Some(slot) = field.kind.slot() else {
            return;
        };
        let bit = 1u32 << slot;
        if self.ready & bit != 0 {
            return;
        }
        self.ready |= bit;
        let buf = &mut self.bufs[slot];
        buf.clear();
        compose(field.kind, ev, buf);
    }

    #[inline]
    fn get(&self, slot: usize) -> Option<&str> {
        (self.ready & (1 << slot) != 0).then(|| self.bufs[slot].as_str())
    }
}

fn compose(kind: FieldKind, ev: &Event, buf: &mut String) {
    use FieldKind::*;
    match kind {
        ProcCmdline => {
            if let Some(p) = &ev.process {
                buf.push_str(&p.name);
                for a in &p.args {
                    buf.push(' ');
                    buf.push_str(a);
                }
            }
        }
        ProcArgs => {
            if let Some(p) = &ev.process {
                for (i, a) in p.args.iter().enumerate() {
                    if i > 0 {
                        buf.push(' ');
                    }
                    buf.push_str(a);
                }
            }
        }
        FdName | FdNameraw => {
            if let Some(fd) = &ev.fd {
                if !fd.path.is_empty() || !matches!(fd.typechar, '4' | '6') {
                    // Read directly from the event by `value_at`.
                } else {
                    let ep = |buf: &mut String, ip: Option<IpAddr>, port: Option<u16>| {
                        let _ = match (ip, port) {
                            (Some(IpAddr::V6(a)), Some(p)) => write!(buf, "[{a}]:{p}"),
                            (Some(a), Some(p)) => write!(buf, "{a}:{p}"),
                            (Some(a), None) => write!(buf, "{a}"),
                            _ => Ok(()),
                        };
                    };
                    ep(buf, fd.cip, fd.cport);
                    buf.push_str("->");
                    ep(buf, fd.sip, fd.sport);
                }
            }
        }
        EvtArgs => {
            for (i, (k, v)) in ev.args.iter().enumerate() {
                if i > 0 {
                    buf.push(' ');
                }
                let _ = write!(buf, "{k}={v}");
            }
        }
        EvtTime => {
            let _ = write!(buf, "{}", ev.ts.format("%H:%M:%S%.9f"));
        }
        EvtTimeS => {
            let _ = write!(buf, "{}", ev.ts.format("%H:%M:%S"));
        }
        EvtTimeIso8601 => {
            let _ = write!(buf, "{}", ev.ts.format("%Y-%m-%dT%H:%M:%S%.9fZ"));
        }
        EvtDatetime => {
            let _ = write!(buf, "{}", ev.ts.format("%Y-%m-%d %H:%M:%S%.9f"));
        }
        EvtDatetimeS => {
            let _ = write!(buf, "{}", ev.ts.format("%Y-%m-%d %H:%M:%S"));
        }
        _ => {}
    }
}

/// Falco field names Vigil does not collect yet (also listed in `crates/detect/README.md`).
pub const UNSUPPORTED_FIELDS: &[&str] = &[
    "evt.cpu",
    "evt.buffer",
    "evt.buflen",
    "evt.latency",
    "evt.latency.s",
    "evt.latency.ns",
    "evt.latency.human",
    "evt.deltatime",
    "evt.deltatime.s",
    "evt.deltatime.ns",
    "evt.outputtime",
    "evt.reltime",
    "evt.reltime.s",
    "evt.reltime.ns",
    "evt.wait_latency",
    "evt.is_io",
    "evt.is_io_read",
    "evt.is_io_write",
    "evt.io_dir",
    "evt.is_wait",
    "evt.is_syslog",
    "evt.count",
    "evt.count.error",
    "evt.count.error.file",
    "evt.count.error.net",
    "evt.count.error.memory",
    "evt.count.error.other",
    "evt.count.exit",
    "evt.around",
    "evt.abspath",
    "evt.abspath.src",
    "evt.abspath.dst",
    "evt.info",
    "evt.category",
    "evt.plugininfo",
    "evt.pluginname",
    "evt.asynctype",
    "evt.is_async",
    "evt.params",
    "proc.env",
    "proc.aenv",
    "proc.sname",
    "proc.exeline",
    "proc.cmdnargs",
    "proc.cmdlenargs",
    "proc.loginshellid",
    "proc.is_vpgid_leader",
    "proc.is_sid_leader",
    "proc.vpgid",
    "proc.vpgid.name",
    "proc.vpgid.exe",
    "proc.vpgid.exepath",
    "proc.pgid",
    "proc.pgid.name",
    "proc.pgid.exe",
    "proc.pgid.exepath",
    "proc.sid.exe",
    "proc.sid.exepath",
    "proc.sid.name",
    "proc.pvpid",
    "proc.exe_ino",
    "proc.exe_ino.ctime",
    "proc.exe_ino.mtime",
    "proc.exe_ino.ctime_duration_proc_start",
    "proc.exe_ino.ctime_duration_pidns_start",
    "proc.is_exe_writable_upper_layer",
    "proc.is_exe_lower_layer",
    "proc.pidns_init_start_ts",
    "proc.ppid.duration",
    "proc.pid.ts",
    "proc.ppid.ts",
    "proc.nthreads",
    "proc.nchilds",
    "proc.fdopencount",
    "proc.fdopenlimit",
    "proc.fdlimit",
    "proc.fdusage",
    "proc.vmsize",
    "proc.vmrss",
    "proc.vmswap",
    "proc.pfmajor",
    "proc.pfminor",
    "proc.is_container_healthcheck",
    "proc.is_container_liveness_probe",
    "proc.is_container_readiness_probe",
    "proc.stdin.type",
    "proc.stdout.type",
    "proc.stderr.type",
    "proc.stdin.name",
    "proc.stdout.name",
    "proc.stderr.name",
    "proc.fd",
    "thread.cap_permitted",
    "thread.cap_effective",
    "thread.cap_inheritable",
    "thread.vmrss",
    "thread.vmsize",
    "thread.exectime",
    "thread.totexectime",
    "thread.cgroups",
    "thread.cgroup",
    "thread.nametid",
    "thread.ismain",
    "thread.vtid",
    "thread.pfmajor",
    "thread.pfminor",
    "user.homedir",
    "user.shell",
    "fd.cip.name",
    "fd.sip.name",
    "fd.lip.name",
    "fd.rip.name",
    "fd.containername",
    "fd.containerdirectory",
    "fd.proto",
    "fd.cproto",
    "fd.sproto",
    "fd.lproto",
    "fd.rproto",
    "fd.dev",
    "fd.dev.major",
    "fd.dev.minor",
    "fd.ino",
    "fd.types",
    "fd.connected",
    "fd.name_changed",
    "fd.is_server",
    "fd.uid",
    "fs.path.name",
    "fs.path.nameraw",
    "fs.path.source",
    "fs.path.sourceraw",
    "fs.path.target",
    "fs.path.targetraw",
    "container.mounts",
    "container.mount",
    "container.mount.dest",
    "container.mount.source",
    "container.mount.mode",
    "container.mount.rdwr",
    "container.mount.propagation",
    "container.healthcheck",
    "container.liveness_probe",
    "container.readiness_probe",
    "container.duration",
    "container.ip",
    "container.cni.json",
    "container.host_pid",
    "container.host_network",
    "container.host_ipc",
    "container.user",
    "container.labels",
    "container.info",
    "k8s.pod.ip",
    "k8s.pod.cni.json",
    "k8s.pod.sandbox_id",
    "k8s.pod.full_sandbox_id",
    "k8s.pod.labels",
    "k8s.pod.id",
    "k8s.ns.id",
    "k8s.ns.label",
    "k8s.ns.labels",
];

/// Field classes of Falco plugins and legacy sources Vigil does not provide: every field in
/// them is [`Lookup::Unsupported`].
const UNSUPPORTED_CLASSES: &[&str] = &[
    "fdlist",
    "ka",
    "jevt",
    "k8smeta",
    "k8sres",
    "ct",
    "s3",
    "ec2",
    "gcp",
    "okta",
    "github",
    "json",
    "span",
    "evtin",
    "mesos",
    "marathon",
    "syslog",
    "cloudtrail",
    "aws",
    "dummy",
    "gvisor",
    "tracer",
];

/// Looks a Falco field up: `name` without its bracket argument, `arg` the text between the
/// brackets. Dotted arguments (`evt.arg.flags`, `k8s.pod.label.app`) are recognised in `name`.
pub fn lookup(name: &str, arg: Option<&str>) -> Lookup {
    // Exact match first.
    let mut found = TABLE.iter().find(|(n, ..)| *n == name).map(|e| (e, None));
    if found.is_none() {
        // Dotted key: the longest table entry taking a key that is a prefix + '.'.
        found = TABLE
            .iter()
            .filter(|(_, _, _, spec)| *spec == ArgSpec::Key)
            .filter_map(|e| {
                let rest = name.strip_prefix(e.0)?.strip_prefix('.')?;
                (!rest.is_empty()).then_some((e, Some(rest)))
            })
            .max_by_key(|(e, _)| e.0.len());
    }
    if let Some(((n, kind, _, spec), dotted)) = found {
        if matches!(kind, FieldKind::K8sPodLabel | FieldKind::ContainerLabel)
            && dotted.is_some()
            && arg.is_some()
        {
            return Lookup::Unknown(format!("field '{name}' cannot take an argument"));
        }
        let arg_text = dotted.or(arg);
        let arg = match (spec, arg_text) {
            (ArgSpec::No, None) => FieldArg::None,
            (ArgSpec::No, Some(_)) => {
                return Lookup::Unknown(format!("field '{n}' does not take an argument"));
            }
            (ArgSpec::OptIndex, None) => FieldArg::None,
            (ArgSpec::OptIndex, Some(a)) => match a.trim().parse::<u32>() {
                Ok(i) => FieldArg::Index(i),
                Err(_) => {
                    return Lookup::Unknown(format!(
                        "field '{n}' needs a numeric argument, got '{a}'"
                    ));
                }
            },
            (ArgSpec::Key, None) => {
                return Lookup::Unknown(format!("field '{n}' needs an argument"));
            }
            (ArgSpec::Key, Some("")) => {
                return Lookup::Unknown(format!("field '{n}' needs an argument"));
            }
            (ArgSpec::Key, Some(a)) => match (kind, a.parse::<u32>()) {
                (FieldKind::EvtArg | FieldKind::EvtRawarg, Ok(i)) => FieldArg::Index(i),
                _ => FieldArg::Key(a.into()),
            },
        };
        return Lookup::Supported(Field { kind: *kind, arg });
    }
    if UNSUPPORTED_FIELDS.contains(&name) {
        return Lookup::Unsupported;
    }
    let class = name.split('.').next().unwrap_or("");
    if UNSUPPORTED_CLASSES.contains(&class)
        || (class == "k8s" && !name.starts_with("k8s.pod.") && !name.starts_with("k8s.ns."))
    {
        return Lookup::Unsupported;
    }
    Lookup::Unknown(format!("'{name}' is not a known field"))
}

/// Every supported field name (for documentation and `--list`).
pub fn supported_field_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, ..)| *n)
}

impl FieldKind {
    /// The Falco name of the field (without argument).
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(_, k, ..)| *k == self)
            .map_or("?", |(n, ..)| n)
    }

    /// The type of its values.
    pub fn field_type(self) -> FieldType {
        TABLE
            .iter()
            .find(|(_, k, ..)| *k == self)
            .map_or(FieldType::Str, |(_, _, t, _)| *t)
    }

    #[inline]
    fn slot(self) -> Option<usize> {
        use FieldKind::*;
        Some(match self {
            ProcCmdline => 0,
            ProcArgs => 1,
            FdName | FdNameraw => 2,
            EvtArgs => 3,
            EvtTime | EvtTimeIso8601 | EvtDatetime => 4,
            EvtTimeS | EvtDatetimeS => 5,
            _ => return None,
        })
    }
}

#[inline]
fn nonempty(s: &str) -> Option<Value<'_>> {
    (!s.is_empty()).then_some(Value::Str(s))
}

fn basename(p: &str) -> &str {
    // Byte search: cheaper than the generic `char` pattern on short paths.
    match p.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

fn first_word(s: &str) -> &str {
    match s.as_bytes().iter().position(|&b| b == b' ') {
        Some(i) => &s[..i],
        None => s,
    }
}

fn fd_type_name(c: char) -> &'static str {
    match c {
        'f' => "file",
        '4' => "ipv4",
        '6' => "ipv6",
        'u' => "unix",
        'p' => "pipe",
        'e' => "event",
        's' => "signalfd",
        'l' => "eventpoll",
        'i' => "inotify",
        't' => "timerfd",
        'n' => "netlink",
        'b' => "bpf",
        'r' => "memfd",
        'o' => "io_uring",
        'd' => "directory",
        _ => "unknown",
    }
}

/// Name of a (negated) errno as Falco prints `evt.res`.
pub fn errno_name(res: i64) -> &'static str {
    match -res {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        30 => "EROFS",
        32 => "EPIPE",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        115 => "EINPROGRESS",
        _ => "E?",
    }
}

fn ts_nanos(t: &crate::Time) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

impl Field {
    /// Parses `proc.aname[2]`, `evt.arg.flags`, `evt.arg[flags]`, `k8s.pod.label[app]`, ….
    pub fn parse(text: &str) -> Lookup {
        match text.find('[') {
            Some(open) if text.ends_with(']') => {
                lookup(&text[..open], Some(&text[open + 1..text.len() - 1]))
            }
            Some(_) => Lookup::Unknown(format!("'{text}': unbalanced '['")),
            None => lookup(text, None),
        }
    }

    /// The Falco name with its argument, e.g. `proc.aname[2]`.
    pub fn display_name(&self) -> String {
        match &self.arg {
            FieldArg::None => self.kind.name().to_string(),
            FieldArg::Index(i) => format!("{}[{i}]", self.kind.name()),
            FieldArg::Key(k) => match self.kind {
                FieldKind::EvtArg | FieldKind::EvtRawarg => {
                    format!("{}.{k}", self.kind.name())
                }
                _ => format!("{}[{k}]", self.kind.name()),
            },
        }
    }

    /// The type of the field's values.
    pub fn field_type(&self) -> FieldType {
        self.kind.field_type()
    }

    /// Whether the value is composed into a [`Scratch`] (call [`Scratch::prepare`] first).
    #[inline]
    pub fn needs_scratch(&self) -> bool {
        self.kind.slot().is_some()
    }

    /// Whether the field can hold several values (any of which may satisfy a condition).
    #[inline]
    pub fn is_multi(&self) -> bool {
        use FieldKind::*;
        match self.kind {
            ProcAname | ProcApid | ProcAexepath | ProcAexe | ProcAcmdline => {
                self.arg == FieldArg::None
            }
            FdIp | FdPort | FdNet => true,
            _ => false,
        }
    }

    /// A direct reader for this field when it is a single-valued text field read straight
    /// from the event (`proc.name`, `fd.directory`, `container.id`, …).
    pub fn str_getter(&self) -> Option<StrGetter> {
        use FieldKind as K;
        Some(match (self.kind, &self.arg) {
            (K::ProcName, _) => StrGetter::ProcName,
            (K::ProcExe, _) => StrGetter::ProcExe,
            (K::ProcExepath, _) => StrGetter::ProcExepath,
            (K::ProcCwd, _) => StrGetter::ProcCwd,
            (K::ProcPname, _) => StrGetter::ProcPname,
            (K::ProcPexepath, _) => StrGetter::ProcPexepath,
            (K::ProcPcmdline, _) => StrGetter::ProcPcmdline,
            (K::ProcAname, FieldArg::Index(n)) => StrGetter::ProcAname(*n),
            (K::UserName, _) => StrGetter::UserName,
            (K::UserLoginname, _) => StrGetter::UserLoginname,
            (K::GroupName, _) => StrGetter::GroupName,
            (K::FdName | K::FdNameraw, _) => StrGetter::FdName,
            (K::FdDirectory, _) => StrGetter::FdDirectory,
            (K::FdFilename, _) => StrGetter::FdFilename,
            (K::FdTypechar, _) => StrGetter::FdTypechar,
            (K::FdType, _) => StrGetter::FdType,
            (K::FdSockfamily, _) => StrGetter::FdSockfamily,
            (K::FdL4proto, _) => StrGetter::FdL4proto,
            (K::ContainerId, _) => StrGetter::ContainerId,
            (K::ContainerName, _) => StrGetter::ContainerName,
            (K::ContainerImage, _) => StrGetter::ContainerImage,
            (K::ContainerImageRepository, _) => StrGetter::ContainerImageRepository,
            (K::ContainerImageTag, _) => StrGetter::ContainerImageTag,
            (K::K8sNsName, _) => StrGetter::K8sNsName,
            (K::K8sPodName, _) => StrGetter::K8sPodName,
            _ => return None,
        })
    }

    /// The first value of the field, `None` when the event does not have it.
    pub fn value<'a>(&self, ev: &'a Event, scratch: &'a Scratch) -> Option<Value<'a>> {
        self.value_at(ev, scratch, 0)
    }

    /// The `i`-th value of the field (only multi-valued fields have more than one), `None`
    /// past the last. Composed fields read `scratch`, which must have been prepared;
    /// `evt.is_open_read` / `evt.is_open_write` keep the event's parsed open flags in it, so
    /// reset it ([`Scratch::reset`]) before reading another event.
    pub fn value_at<'a>(&self, ev: &'a Event, scratch: &'a Scratch, i: usize) -> Option<Value<'a>> {
        use FieldKind::*;
        if i > 0 && !self.is_multi() {
            return None;
        }
        let p = ev.process.as_ref();
        let fd = ev.fd.as_ref();
        let c = ev.container.as_ref();
        let on_host = c.is_none() && ev.source == EventSource::Syscall;
        let ancestor = |n: u32| -> Option<&'a crate::Ancestor> {
            p.and_then(|p| p.ancestors.get((n as usize).checked_sub(1)?).map(|a| &**a))
        };
        // For multi-valued ancestor fields: index i means aname[i+1]... but aname without
        // index covers ancestors only (Falco: any ancestor, excluding the process itself).
        let anc_index = |arg: &FieldArg| -> Option<u32> {
            match arg {
                FieldArg::Index(n) => Some(*n),
                _ => u32::try_from(i).ok().map(|i| i + 1),
            }
        };
        let flags = || ev.args.get("flags").map(String::as_str).unwrap_or("");
        let is_open = || matches!(&*ev.kind, "open" | "openat" | "openat2" | "creat");
        Some(match self.kind {
            EvtType => Value::Str(&ev.kind),
            SyscallType => {
                if ev.source == EventSource::Syscall {
                    Value::Str(&ev.kind)
                } else {
                    return None;
                }
            }
            EvtSource => Value::Str(ev.source.as_str()),
            EvtHostname => return nonempty(&ev.hostname),
            EvtTime | EvtTimeS | EvtTimeIso8601 | EvtDatetime | EvtDatetimeS | ProcCmdline
            | ProcArgs | EvtArgs => {
                if matches!(self.kind, ProcCmdline | ProcArgs) && p.is_none() {
                    return None;
                }
                Value::Str(scratch.get(self.kind.slot()?)?)
            }
            FdName | FdNameraw => {
                let f = fd?;
                if !f.path.is_empty() || !matches!(f.typechar, '4' | '6') {
                    return nonempty(&f.path);
                }
                return nonempty(scratch.get(self.kind.slot()?)?);
            }
            EvtRawtime => Value::Int(ts_nanos(&ev.ts)),
            EvtRawtimeS => Value::Int(ev.ts.timestamp()),
            EvtRawtimeNs => Value::Int(i64::from(ev.ts.timestamp_subsec_nanos())),
            EvtRes => {
                let r = ev.res?;
                Value::Str(if r >= 0 { "SUCCESS" } else { errno_name(r) })
            }
            EvtRawres => Value::Int(ev.res?),
            EvtFailed => Value::Bool(ev.res? < 0),
            EvtArg | EvtRawarg => match &self.arg {
                FieldArg::Key(k) => Value::Str(ev.args.get(&**k)?),
                FieldArg::Index(n) => Value::Str(ev.args.values().nth(*n as usize)?),
                FieldArg::None => return None,
            },
            EvtDir => Value::Str("<"),
            EvtNum => Value::Int(ts_nanos(&ev.ts).max(1)),
            FdNum => {
                if let Some(n) = ev.args.get("fd").and_then(|a| a.trim().parse::<i64>().ok()) {
                    Value::Int(n)
                } else if let Some(r) = ev.res {
                    Value::Int(if r >= 0 { r } else { -1 })
                } else if fd.is_some() {
                    Value::Int(0)
                } else {
                    return None;
                }
            }
            ProcDuration => {
                let start = p?.start_ts.as_ref()?;
                Value::Int(ts_nanos(&ev.ts).saturating_sub(ts_nanos(start)))
            }
            EvtIsOpenRead => {
                Value::Bool(is_open() && scratch.open_bits(flags()) & (O_RDONLY | O_RDWR) != 0)
            }
            EvtIsOpenWrite => {
                Value::Bool(is_open() && scratch.open_bits(flags()) & (O_WRONLY | O_RDWR) != 0)
            }
            EvtIsOpenExec => {
                let f = flags();
                let mode = ev.args.get("mode").map(String::as_str).unwrap_or("");
                Value::Bool(
                    is_open()
                        && has_flag(f, "O_CREAT")
                        && (mode.contains("S_IX") || exec_mode(mode)),
                )
            }
            EvtIsOpenCreate => Value::Bool(is_open() && has_flag(flags(), "O_CREAT")),
            ProcPid => Value::Int(p?.pid.into()),
            ProcPpid => Value::Int(p?.ppid.into()),
            ProcVpid => Value::Int(p?.vpid?.into()),
            ProcSid => Value::Int(p?.sid?.into()),
            ThreadTid => Value::Int(p?.tid.into()),
            ProcName => Value::Str(&p?.name),
            ProcExe => return nonempty(&p?.exe),
            ProcExepath => return nonempty(&p?.exepath),
            ProcCwd => return nonempty(&p?.cwd),
            ProcTty => Value::Int(p?.tty.into()),
            ProcPname => Value::Str(&ancestor(1)?.name),
            ProcPexe => {
                let a = ancestor(1)?;
                let w = first_word(&a.cmdline);
                return if w.is_empty() {
                    nonempty(&a.exepath)
                } else {
                    nonempty(w)
                };
            }
            ProcPexepath => return nonempty(&ancestor(1)?.exepath),
            ProcPcmdline => return nonempty(&ancestor(1)?.cmdline),
            ProcAname | ProcApid | ProcAexepath | ProcAexe | ProcAcmdline => {
                let n = anc_index(&self.arg)?;
                let p = p?;
                if n == 0 {
                    match self.kind {
                        ProcAname => Value::Str(&p.name),
                        ProcApid => Value::Int(p.pid.into()),
                        ProcAexepath => return nonempty(&p.exepath),
                        ProcAexe => return nonempty(&p.exe),
                        _ => return None, // acmdline[0]: use proc.cmdline
                    }
                } else {
                    let a = ancestor(n)?;
                    match self.kind {
                        ProcAname => Value::Str(&a.name),
                        ProcApid => Value::Int(a.pid.into()),
                        ProcAexepath => {
                            if a.exepath.is_empty() {
                                // keep iterating past ancestors without a path
                                Value::Str("")
                            } else {
                                Value::Str(&a.exepath)
                            }
                        }
                        ProcAexe => Value::Str(first_word(&a.cmdline)),
                        _ => Value::Str(&a.cmdline),
                    }
                }
            }
            ProcIsExeUpperLayer => Value::Bool(p?.exe_upper_layer),
            ProcIsExeWritable => Value::Bool(p?.exe_writable),
            ProcIsExeFromMemfd => Value::Bool(p?.exe_from_memfd),
            UserUid => Value::Int(p?.user.uid.into()),
            UserName => return nonempty(&p?.user.name),
            UserLoginuid => Value::Int(p?.user.loginuid),
            UserLoginname => return nonempty(&p?.user.loginname),
            GroupGid => Value::Int(p?.gid.into()),
            GroupName => return nonempty(&p?.group),
            FdTypechar => {
                let fd = fd?;
                Value::Str(char_str(fd.typechar))
            }
            FdType => Value::Str(fd_type_name(fd?.typechar)),
            FdSockfamily => match fd?.typechar {
                '4' | '6' => Value::Str("ip"),
                'u' => Value::Str("unix"),
                _ => return None,
            },
            FdDirectory => {
                let path = &fd?.path;
                if path.is_empty() {
                    return None;
                }
                match path.as_bytes().iter().rposition(|&b| b == b'/') {
                    Some(0) => Value::Str("/"),
                    Some(i) => Value::Str(&path[..i]),
                    None => return None,
                }
            }
            FdFilename => {
                let path = &fd?.path;
                return nonempty(basename(path));
            }
            FdL4proto => return nonempty(&fd?.l4proto),
            FdSip | FdSnet => Value::Ip(fd?.sip?),
            FdCip | FdCnet => Value::Ip(fd?.cip?),
            FdRip | FdRnet => {
                let fd = fd?;
                Value::Ip(if fd.local_is_server { fd.cip? } else { fd.sip? })
            }
            FdLip | FdLnet => {
                let fd = fd?;
                Value::Ip(if fd.local_is_server { fd.sip? } else { fd.cip? })
            }
            FdIp | FdNet => {
                let fd = fd?;
                match i {
                    0 => Value::Ip(fd.cip.or(fd.sip)?),
                    1 if fd.cip.is_some() => Value::Ip(fd.sip?),
                    _ => return None,
                }
            }
            FdSport => Value::Int(fd?.sport?.into()),
            FdCport => Value::Int(fd?.cport?.into()),
            FdRport => {
                let fd = fd?;
                Value::Int(
                    if fd.local_is_server {
                        fd.cport?
                    } else {
                        fd.sport?
                    }
                    .into(),
                )
            }
            FdLport => {
                let fd = fd?;
                Value::Int(
                    if fd.local_is_server {
                        fd.sport?
                    } else {
                        fd.cport?
                    }
                    .into(),
                )
            }
            FdPort => {
                let fd = fd?;
                match i {
                    0 => Value::Int(fd.cport.or(fd.sport)?.into()),
                    1 if fd.cport.is_some() => Value::Int(fd.sport?.into()),
                    _ => return None,
                }
            }
            ContainerId => match c {
                Some(c) => Value::Str(c.short_id()),
                None if on_host => Value::Str("host"),
                None => return None,
            },
            ContainerFullId => match c {
                Some(c) => Value::Str(&c.id),
                None if on_host => Value::Str("host"),
                None => return None,
            },
            ContainerName => match c {
                Some(c) => return nonempty(&c.name),
                None if on_host => Value::Str("host"),
                None => return None,
            },
            ContainerType => match c {
                Some(_) => Value::Str("docker"),
                None if on_host => Value::Str("host"),
                None => return None,
            },
            ContainerImage => return nonempty(&c?.image),
            ContainerImageId => return nonempty(&c?.image_id),
            ContainerImageRepository => return nonempty(&c?.image_repository),
            ContainerImageTag => return nonempty(&c?.image_tag),
            ContainerImageDigest => return nonempty(&c?.image_digest),
            ContainerPrivileged => Value::Bool(c?.privileged),
            ContainerStartTs => Value::Int(ts_nanos(c?.started_at.as_ref()?)),
            ContainerLabel | K8sPodLabel => match &self.arg {
                FieldArg::Key(k) => Value::Str(c?.labels.get(&**k)?),
                _ => return None,
            },
            K8sNsName => return nonempty(&c?.k8s_ns),
            K8sPodName => return nonempty(&c?.k8s_pod),
            K8sPodUid => Value::Str(c?.labels.get("io.kubernetes.pod.uid")?),
        })
    }
}

/// A text field read straight from the event, without [`Scratch`] and without building a
/// [`Value`]: for matchers that test the same few fields many times per event. Its result is
/// always the same as [`Field::value_at`] at index 0 (see [`Field::str_getter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrGetter {
    /// `proc.name`.
    ProcName,
    /// `proc.exe`.
    ProcExe,
    /// `proc.exepath`.
    ProcExepath,
    /// `proc.cwd`.
    ProcCwd,
    /// `proc.pname`.
    ProcPname,
    /// `proc.pexepath`.
    ProcPexepath,
    /// `proc.pcmdline`.
    ProcPcmdline,
    /// `proc.aname[N]`.
    ProcAname(u32),
    /// `user.name`.
    UserName,
    /// `user.loginname`.
    UserLoginname,
    /// `group.name`.
    GroupName,
    /// `fd.name` / `fd.nameraw` of a file (sockets need the [`Scratch`]: [`NeedsScratch`]).
    FdName,
    /// `fd.directory`.
    FdDirectory,
    /// `fd.filename`.
    FdFilename,
    /// `fd.typechar`.
    FdTypechar,
    /// `fd.type`.
    FdType,
    /// `fd.sockfamily`.
    FdSockfamily,
    /// `fd.l4proto`.
    FdL4proto,
    /// `container.id`.
    ContainerId,
    /// `container.name`.
    ContainerName,
    /// `container.image`.
    ContainerImage,
    /// `container.image.repository`.
    ContainerImageRepository,
    /// `container.image.tag`.
    ContainerImageTag,
    /// `k8s.ns.name`.
    K8sNsName,
    /// `k8s.pod.name`.
    K8sPodName,
}

/// [`StrGetter::get`] cannot answer without the [`Scratch`]: use [`Field::value_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedsScratch;

impl StrGetter {
    /// The field's value (`Ok(None)` when the event does not have it), or [`NeedsScratch`]
    /// when it must be composed (the `fd.name` of a socket).
    #[inline(always)]
    pub fn get(self, ev: &Event) -> Result<Option<&str>, NeedsScratch> {
        use StrGetter::*;
        #[inline]
        fn ne(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        let p = || ev.process.as_ref();
        let c = || ev.container.as_ref();
        let parent = || p().and_then(|p| p.ancestors.first());
        let host = || ev.source == EventSource::Syscall;
        Ok(match self {
            ProcName => p().map(|p| p.name.as_str()),
            ProcExe => p().and_then(|p| ne(&p.exe)),
            ProcExepath => p().and_then(|p| ne(&p.exepath)),
            ProcCwd => p().and_then(|p| ne(&p.cwd)),
            ProcPname => parent().map(|a| a.name.as_str()),
            ProcPexepath => parent().and_then(|a| ne(&a.exepath)),
            ProcPcmdline => parent().and_then(|a| ne(&a.cmdline)),
            ProcAname(0) => p().map(|p| p.name.as_str()),
            ProcAname(n) => p()
                .and_then(|p| p.ancestors.get(n as usize - 1))
                .map(|a| a.name.as_str()),
            UserName => p().and_then(|p| ne(&p.user.name)),
            UserLoginname => p().and_then(|p| ne(&p.user.loginname)),
            GroupName => p().and_then(|p| ne(&p.group)),
            FdName => match &ev.fd {
                Some(f) if !f.path.is_empty() || !matches!(f.typechar, '4' | '6') => ne(&f.path),
                Some(_) => return Err(NeedsScratch),
                None => None,
            },
            FdDirectory => ev.fd.as_ref().and_then(|f| {
                let path = &f.path;
                match path.as_bytes().iter().rposition(|&b| b == b'/') {
                    Some(0) => Some("/"),
                    Some(i) => Some(&path[..i]),
                    None => None,
                }
            }),
            FdFilename => ev.fd.as_ref().and_then(|f| ne(basename(&f.path))),
            FdTypechar => ev.fd.as_ref().map(|f| char_str(f.typechar)),
            FdType => ev.fd.as_ref().map(|f| fd_type_name(f.typechar)),
            FdSockfamily => ev.fd.as_ref().and_then(|f| match f.typechar {
                '4' | '6' => Some("ip"),
                'u' => Some("unix"),
                _ => None,
            }),
            FdL4proto => ev.fd.as_ref().and_then(|f| ne(&f.l4proto)),
            ContainerId => match c() {
                Some(c) => Some(c.short_id()),
                None if host() => Some("host"),
                None => None,
            },
            ContainerName => match c() {
                Some(c) => ne(&c.name),
                None if host() => Some("host"),
                None => None,
            },
            ContainerImage => c().and_then(|c| ne(&c.image)),
            ContainerImageRepository => c().and_then(|c| ne(&c.image_repository)),
            ContainerImageTag => c().and_then(|c| ne(&c.image_tag)),
            K8sNsName => c().and_then(|c| ne(&c.k8s_ns)),
            K8sPodName => c().and_then(|c| ne(&c.k8s_pod)),
        })
    }
}

const O_RDONLY: u8 = 1;
const O_WRONLY: u8 = 2;
const O_RDWR: u8 = 4;

/// Which of `O_RDONLY`, `O_WRONLY`, `O_RDWR` a `|`-separated flag list holds, in one pass:
/// bit `O_X` set exactly when `has_flag(flags, "O_X")`.
fn open_flag_bits(flags: &str) -> u8 {
    #[inline]
    fn bit(t: &[u8]) -> u8 {
        match t {
            b"O_RDONLY" => O_RDONLY,
            b"O_WRONLY" => O_WRONLY,
            b"O_RDWR" => O_RDWR,
            _ => 0,
        }
    }
    #[inline]
    fn part_bits(flags: &str, start: usize, end: usize) -> u8 {
        let t = flags.as_bytes()[start..end].trim_ascii();
        let mut bits = bit(t);
        if matches!((t.first(), t.last()), (Some(&a), Some(&z)) if a >= 0x80 || z >= 0x80) {
            bits |= bit(flags[start..end].trim().as_bytes());
        }
        bits
    }
    let mut bits = 0;
    let mut start = 0;
    for (i, &c) in flags.as_bytes().iter().enumerate() {
        if c == b'|' {
            bits |= part_bits(flags, start, i);
            start = i + 1;
        }
    }
    bits | part_bits(flags, start, flags.len())
}

/// Whether a `|`-separated flag list (`O_RDONLY|O_CLOEXEC`) holds `flag`.
fn has_flag(flags: &str, flag: &str) -> bool {
    // Same as `flags.split('|').any(|f| f.trim() == flag)`: ASCII trimming on bytes, and
    // `str::trim` only when a part begins or ends with a non-ASCII byte (Unicode spaces).
    let want = flag.as_bytes();
    let mut start = 0;
    for part in flags.as_bytes().split(|&c| c == b'|') {
        let end = start + part.len();
        let t = part.trim_ascii();
        if t == want {
            return true;
        }
        if matches!((t.first(), t.last()), (Some(&a), Some(&z)) if a >= 0x80 || z >= 0x80)
            && flags[start..end].trim() == flag
        {
            return true;
        }
        start = end + 1;
    }
    false
}

fn exec_mode(mode: &str) -> bool {
    // Octal mode such as 0755 / 755: any execute bit.
    let digits = mode.trim_start_matches("0o");
    u32::from_str_radix(digits, 8).is_ok_and(|m| m & 0o111 != 0)
}

fn char_str(c: char) -> &'static str {
    match c {
        'f' => "f",
        '4' => "4",
        '6' => "6",
        'u' => "u",
        'p' => "p",
        'e' => "e",
        's' => "s",
        'l' => "l",
        'i' => "i",
        't' => "t",
        'n' => "n",
        'b' => "b",
        'r' => "r",
        'o' => "o",
        'd' => "d",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ancestor, ContainerInfo, FdInfo, ProcessInfo};

    /// The byte-search helpers agree with the plain `str` formulations.
    #[test]
    fn byte_search_helpers_match_str_methods() {
        let samples = [
            "",
            "/",
            "a",
            "/etc/",
            "/etc/shadow",
            "dir/file",
            "no-slash",
            "a b c",
            " lead",
            "trail ",
            "O_RDONLY",
            "O_WRONLY|O_CREAT",
            " O_RDWR | O_CLOEXEC ",
            "|",
            "||O_CREAT|",
            "\u{a0}O_CREAT",
            "O_WRONLY\u{a0}|\u{2003}O_RDWR",
            "O_RDONLY|O_WRONLY|O_RDWR",
            "é/ü x|y",
        ];
        for s in samples {
            assert_eq!(basename(s), s.rsplit('/').next().unwrap_or(s), "{s:?}");
            assert_eq!(first_word(s), s.split(' ').next().unwrap_or(s), "{s:?}");
            let bits = open_flag_bits(s);
            for (f, b) in [
                ("O_RDONLY", O_RDONLY),
                ("O_WRONLY", O_WRONLY),
                ("O_RDWR", O_RDWR),
            ] {
                assert_eq!(bits & b != 0, has_flag(s, f), "{s:?} {f:?}");
            }
            for f in ["O_RDONLY", "O_CREAT", "O_RDWR", "O_CLOEXEC", "y", ""] {
                assert_eq!(
                    has_flag(s, f),
                    s.split('|').any(|x| x.trim() == f),
                    "{s:?} {f:?}"
                );
            }
        }
    }

    fn ev() -> Event {
        Event {
            kind: "execve".into(),
            process: Some(
                ProcessInfo {
                    pid: 10,
                    name: "xmrig".into(),
                    exe: "./xmrig".into(),
                    exepath: "/tmp/xmrig".into(),
                    args: vec!["-o".into(), "stratum+tcp://pool:3333".into()],
                    ancestors: vec![
                        Ancestor {
                            pid: 9,
                            name: "sh".into(),
                            exepath: "/bin/sh".into(),
                            cmdline: "sh -c run".into(),
                        }
                        .into(),
                        Ancestor {
                            pid: 1,
                            name: "containerd-shim".into(),
                            ..Default::default()
                        }
                        .into(),
                    ],
                    ..Default::default()
                }
                .into(),
            ),
            fd: Some(FdInfo {
                typechar: '4',
                cip: Some("172.17.0.2".parse().unwrap()),
                cport: Some(40000),
                sip: Some("10.1.1.1".parse().unwrap()),
                sport: Some(3333),
                l4proto: "tcp".into(),
                ..Default::default()
            }),
            container: Some(
                ContainerInfo {
                    id: "0123456789abcdef".into(),
                    image_repository: "servethehome/monero_cpu_minergate".into(),
                    labels: [("app".to_string(), "web".to_string())].into(),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        }
    }

    fn get(name: &str, e: &Event) -> Option<String> {
        let Lookup::Supported(f) = Field::parse(name) else {
            panic!("{name} not supported")
        };
        let mut s = Scratch::new();
        s.prepare(&f, e);
        f.value(e, &s).map(|v| v.to_string())
    }

    #[test]
    fn basic_fields() {
        let e = ev();
        assert_eq!(get("proc.name", &e).unwrap(), "xmrig");
        assert_eq!(
            get("proc.cmdline", &e).unwrap(),
            "xmrig -o stratum+tcp://pool:3333"
        );
        assert_eq!(get("proc.args", &e).unwrap(), "-o stratum+tcp://pool:3333");
        assert_eq!(get("proc.pname", &e).unwrap(), "sh");
        assert_eq!(get("proc.aname[0]", &e).unwrap(), "xmrig");
        assert_eq!(get("proc.aname[2]", &e).unwrap(), "containerd-shim");
        assert_eq!(get("proc.aname[3]", &e), None);
        assert_eq!(get("proc.pcmdline", &e).unwrap(), "sh -c run");
        assert_eq!(get("proc.pexe", &e).unwrap(), "sh");
        assert_eq!(get("container.id", &e).unwrap(), "0123456789ab");
        assert_eq!(get("k8s.pod.label[app]", &e).unwrap(), "web");
        assert_eq!(get("k8s.pod.label.app", &e).unwrap(), "web");
        assert_eq!(
            get("fd.name", &e).unwrap(),
            "172.17.0.2:40000->10.1.1.1:3333"
        );
        assert_eq!(get("fd.rport", &e).unwrap(), "3333");
        assert_eq!(get("fd.lport", &e).unwrap(), "40000");
        assert_eq!(get("fd.rip", &e).unwrap(), "10.1.1.1");
        assert_eq!(get("fd.type", &e).unwrap(), "ipv4");
        assert_eq!(get("evt.dir", &e).unwrap(), "<");
        assert_eq!(get("user.name", &e), None);
    }

    #[test]
    fn host_and_files() {
        let mut e = ev();
        e.container = None;
        e.fd = Some(FdInfo {
            typechar: 'f',
            path: "/etc/shadow".into(),
            ..Default::default()
        });
        e.args.insert("flags".into(), "O_RDONLY|O_CLOEXEC".into());
        e.kind = "openat".into();
        assert_eq!(get("container.id", &e).unwrap(), "host");
        assert_eq!(get("fd.directory", &e).unwrap(), "/etc");
        assert_eq!(get("fd.filename", &e).unwrap(), "shadow");
        assert_eq!(get("evt.is_open_read", &e).unwrap(), "true");
        assert_eq!(get("evt.is_open_write", &e).unwrap(), "false");
        assert_eq!(get("evt.arg.flags", &e).unwrap(), "O_RDONLY|O_CLOEXEC");
        assert_eq!(get("container.image.repository", &e), None);
    }

    #[test]
    fn lookups() {
        assert_eq!(Field::parse("thread.cap_permitted"), Lookup::Unsupported);
        assert_eq!(Field::parse("ka.verb"), Lookup::Unsupported);
        assert_eq!(
            Field::parse("container.mount.dest[/etc]"),
            Lookup::Unsupported
        );
        assert!(matches!(Field::parse("proc.nope"), Lookup::Unknown(_)));
        assert!(matches!(Field::parse("proc.aname[x]"), Lookup::Unknown(_)));
        assert!(matches!(Field::parse("proc.name[1]"), Lookup::Unknown(_)));
        let Lookup::Supported(f) = Field::parse("evt.arg.flags") else {
            panic!()
        };
        assert_eq!(f.display_name(), "evt.arg.flags");
    }

    /// Every direct text reader agrees with `value_at` on files, sockets, host and container
    /// events, with and without parents.
    #[test]
    fn str_getters_agree_with_value_at() {
        let mut events = vec![ev(), Event::default()];
        let mut e = ev();
        e.container = None;
        e.fd = Some(FdInfo {
            typechar: 'f',
            path: "/etc/shadow".into(),
            ..Default::default()
        });
        events.push(e.clone());
        for path in ["/", "noslash", "/a/b/", ""] {
            let mut f = e.clone();
            if let Some(fd) = f.fd.as_mut() {
                fd.path = path.into();
            }
            events.push(f);
        }
        e.source = EventSource::Docker;
        e.process = Some(ProcessInfo::default().into());
        events.push(e);
        let mut names: Vec<String> = supported_field_names().map(str::to_string).collect();
        names.extend((0..5).map(|i| format!("proc.aname[{i}]")));
        let mut with_getter = 0;
        for name in &names {
            let Lookup::Supported(f) = Field::parse(name) else {
                continue;
            };
            let Some(g) = f.str_getter() else { continue };
            with_getter += 1;
            assert_eq!(f.field_type(), FieldType::Str, "{name}");
            assert!(!f.is_multi(), "{name}");
            for e in &events {
                let mut s = Scratch::new();
                s.prepare(&f, e);
                let want = f.value_at(e, &s, 0).map(|v| v.to_string());
                match g.get(e) {
                    Ok(got) => assert_eq!(got.map(str::to_string), want, "{name} {e:?}"),
                    Err(NeedsScratch) => assert!(f.needs_scratch(), "{name}"),
                }
            }
        }
        assert!(with_getter >= 25, "{with_getter}");
    }

    /// The open flags remembered in the scratch are forgotten on reset.
    #[test]
    fn open_flags_per_event() {
        let field = |n: &str| match Field::parse(n) {
            Lookup::Supported(f) => f,
            _ => panic!("{n}"),
        };
        let (read, write) = (field("evt.is_open_read"), field("evt.is_open_write"));
        let mut s = Scratch::new();
        for (flags, r, w) in [
            ("O_RDONLY|O_CLOEXEC", true, false),
            ("O_WRONLY|O_CREAT", false, true),
            ("O_CLOEXEC| O_RDWR ", true, true),
            ("O_CLOEXEC", false, false),
        ] {
            let mut e = ev();
            e.kind = "openat".into();
            e.args.insert("flags".into(), flags.into());
            s.reset();
            assert_eq!(read.value(&e, &s), Some(Value::Bool(r)), "{flags}");
            assert_eq!(write.value(&e, &s), Some(Value::Bool(w)), "{flags}");
            assert_eq!(read.value(&e, &s), Some(Value::Bool(r)), "{flags}");
        }
    }

    #[test]
    fn multi_values() {
        let e = ev();
        let Lookup::Supported(f) = Field::parse("proc.aname") else {
            panic!()
        };
        let s = Scratch::new();
        let all: Vec<String> = (0..)
            .map_while(|i| f.value_at(&e, &s, i))
            .map(|v| v.to_string())
            .collect();
        assert_eq!(all, vec!["sh", "containerd-shim"]);
    }
}
