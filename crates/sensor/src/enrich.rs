//! Turns backend records into [`model::Event`]s: process table upkeep, ancestors, path
//! resolution, flag names, cgroup → container attribution.

use crate::cgroup::{self, CgroupMode};
use crate::docker::{Cached, DockerWatch};
use crate::proctable::{ProcEntry, ProcTable};
use crate::raw::{Header, Raw, kind, kind_name};
use model::{ContainerInfo, Event, EventSource, FdInfo, ProcessInfo, UserInfo};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest an event of a container waits for that container's metadata.
const HOLD_MAX: Duration = Duration::from_secs(1);
/// Most events held per container while its metadata is looked up.
const HOLD_CAP: usize = 4096;

/// Ancestors kept on each event (`proc.aname[1..=N]`).
const MAX_ANCESTORS: usize = 8;
const AT_FDCWD: i32 = -100;

/// Nanoseconds of a clock.
#[allow(unsafe_code)]
fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes into it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Now on CLOCK_BOOTTIME (the clock of `bpf_ktime_get_boot_ns`), in ns.
pub fn boot_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64
}

/// Now on CLOCK_MONOTONIC (the proc connector's clock), in ns.
pub(crate) fn mono_ns() -> i64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Wall clock minus boot clock, in ns.
pub(crate) fn boot_to_wall_offset() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)
}

/// This host's name.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Enrichment state, owned by the thread that reads a backend.
pub(crate) struct Enricher {
    pub(crate) procs: ProcTable,
    cgroups: FxHashMap<u64, Option<String>>,
    /// Changes to `cgroups` for a backend that tells the kernel which cgroups need no name
    /// (see [`Enricher::take_known_cgroups`]); `None` when no backend asked.
    known_cgroups: Option<KnownCgroups>,
    mode: CgroupMode,
    docker: Option<DockerWatch>,
    rt: Option<tokio::runtime::Handle>,
    offset: i64,
    hostname: Arc<str>,
    users: HashMap<u32, String>,
    /// User names inside each container (its own `/etc/passwd`).
    container_users: HashMap<String, HashMap<u32, String>>,
    /// Events of containers whose metadata is being looked up, in arrival order.
    held: HashMap<String, (Instant, Vec<Event>)>,
    /// Containers with a `docker inspect` under way.
    in_flight: HashSet<String>,
    /// Set by `container_info` when the last lookup went asynchronous.
    last_pending: bool,
    /// The syscall event types to build (`None`: all); records of other types only keep the
    /// process table.
    wanted: Option<Arc<FxHashSet<String>>>,
    /// The process descriptions last handed out, one per thread (see [`SharedProcess`]).
    shared: Vec<SharedProcess>,
}

/// Cgroup ids resolved (or forgotten) since the backend last asked.
#[derive(Debug, Default)]
pub(crate) struct KnownCgroups {
    /// Everything known before was forgotten.
    pub(crate) cleared: bool,
    /// Ids resolved since (after `cleared`, when set).
    pub(crate) added: Vec<u64>,
}

/// Most threads whose description is kept for reuse.
const SHARED_PROCESSES: usize = 32;

/// A process description handed to a thread's events, reused for its next event while
/// everything it was built from is unchanged: the record's header fields, the container and
/// the process table (its generation). A thread that connects in a loop then costs one
/// reference count per event instead of a copy of its process, user and ancestry.
struct SharedProcess {
    generation: u64,
    tid: u32,
    pid: u32,
    ppid: u32,
    vpid: u32,
    uid: u32,
    gid: u32,
    loginuid: u32,
    start_time: u64,
    comm: String,
    container: Option<String>,
    info: Arc<ProcessInfo>,
}

impl SharedProcess {
    fn serves(&self, generation: u64, h: &Header, container: Option<&str>) -> bool {
        self.generation == generation
            && self.tid == h.tid
            && self.pid == h.pid
            && self.ppid == h.ppid
            && self.vpid == h.vpid
            && self.uid == h.uid
            && self.gid == h.gid
            && self.loginuid == h.loginuid
            && self.start_time == h.start_time
            && self.comm == h.comm
            && self.container.as_deref() == container
    }
}

impl Enricher {
    pub(crate) fn new(
        procs: ProcTable,
        mode: CgroupMode,
        docker: Option<DockerWatch>,
        rt: Option<tokio::runtime::Handle>,
    ) -> Enricher {
        Enricher {
            procs,
            cgroups: FxHashMap::default(),
            known_cgroups: None,
            mode,
            docker,
            rt,
            offset: boot_to_wall_offset(),
            hostname: hostname().into(),
            users: read_passwd("/etc/passwd"),
            container_users: HashMap::new(),
            held: HashMap::new(),
            in_flight: HashSet::new(),
            last_pending: false,
            wanted: None,
            shared: Vec::new(),
        }
    }

    /// Builds only events of these syscall event types (`None`: all of them).
    pub(crate) fn wanting(mut self, types: Option<&[String]>) -> Enricher {
        self.wanted = types.map(|t| Arc::new(t.iter().cloned().collect()));
        self
    }

    /// Keeps track of the cgroups this enricher resolves, for [`Self::take_known_cgroups`].
    pub(crate) fn track_known_cgroups(&mut self) {
        self.known_cgroups = Some(KnownCgroups::default());
    }

    /// The cgroups resolved since the last call (and whether all known before were forgotten):
    /// records of these need to carry only the cgroup's id, since the container it belongs to
    /// is cached by id. Empty unless [`Self::track_known_cgroups`].
    pub(crate) fn take_known_cgroups(&mut self) -> KnownCgroups {
        self.known_cgroups
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn wants(&self, kind: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| w.contains(kind))
    }

    /// A new enricher with the same settings and an empty process table.
    pub(crate) fn spare(&self) -> Enricher {
        let mut e = Enricher::new(
            ProcTable::new(self.procs_capacity(), self.mode),
            self.mode,
            self.docker.clone(),
            self.rt.clone(),
        );
        e.wanted = self.wanted.clone();
        e
    }

    fn procs_capacity(&self) -> usize {
        self.procs.capacity()
    }

    /// Boot-clock nanoseconds to wall time.
    pub(crate) fn wall(&self, boot: u64) -> model::Time {
        chrono::DateTime::from_timestamp_nanos(boot as i64 + self.offset)
    }

    fn container_id(&mut self, h: &Header) -> Option<String> {
        if h.cgroup_id != 0
            && let Some(c) = self.cgroups.get(&h.cgroup_id)
        {
            return c.clone();
        }
        let id = cgroup::id_from_component(&h.cgroup)
            .or_else(|| cgroup::container_of_pid(h.pid, self.mode))
            .or_else(|| self.procs.get(h.pid).and_then(|e| e.container.clone()));
        if h.cgroup_id != 0 {
            if self.cgroups.len() > 65_536 {
                self.cgroups.clear();
                if let Some(k) = &mut self.known_cgroups {
                    k.cleared = true;
                    k.added.clear();
                }
            }
            self.cgroups.insert(h.cgroup_id, id.clone());
            if let Some(k) = &mut self.known_cgroups {
                k.added.push(h.cgroup_id);
            }
        }
        id
    }

    /// Metadata for container `id` from the cache; on a miss, starts a `docker inspect` in the
    /// background, returns the bare id and sets `last_pending` (the event is then held by
    /// [`Enricher::handle`] until the metadata arrives, at most [`HOLD_MAX`]).
    pub(crate) fn container_info(&mut self, id: &str) -> Arc<ContainerInfo> {
        let bare = Arc::new(ContainerInfo {
            id: id.to_string(),
            ..Default::default()
        });
        let Some(d) = &self.docker else {
            return bare;
        };
        match d.cached(id) {
            Cached::Hit(i) => i,
            Cached::Negative => bare,
            Cached::Miss => {
                let Some(rt) = &self.rt else { return bare };
                if self.in_flight.insert(id.to_string()) {
                    let d = d.clone();
                    let id2 = id.to_string();
                    rt.spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), d.inspect(&id2)).await;
                    });
                }
                self.last_pending = true;
                bare
            }
        }
    }

    /// Enriches `raw` and hands the event to `emit`, holding it back while its container's
    /// metadata is being fetched (events of that container keep their order).
    pub(crate) fn handle(&mut self, raw: Raw, emit: &mut dyn FnMut(Event)) {
        self.last_pending = false;
        let Some(ev) = self.enrich(raw) else { return };
        let held_id = ev
            .container
            .as_ref()
            .filter(|c| self.last_pending || self.held.contains_key(&c.id))
            .map(|c| c.id.clone());
        match held_id {
            Some(id) => {
                let slot = self
                    .held
                    .entry(id)
                    .or_insert_with(|| (Instant::now(), Vec::new()));
                if slot.1.len() < HOLD_CAP {
                    slot.1.push(ev);
                } else {
                    emit(ev);
                }
            }
            None => emit(ev),
        }
    }

    /// Whether events wait for their container's metadata (see [`Self::flush`]).
    pub(crate) fn holds_events(&self) -> bool {
        !self.held.is_empty()
    }

    /// Releases held events whose container metadata arrived (filled in) or took too long
    /// (sent with the bare id).
    pub(crate) fn flush(&mut self, emit: &mut dyn FnMut(Event)) {
        if self.held.is_empty() {
            return;
        }
        let Some(d) = self.docker.clone() else {
            for (_, (_, evs)) in self.held.drain() {
                evs.into_iter().for_each(&mut *emit);
            }
            return;
        };
        let ids: Vec<String> = self.held.keys().cloned().collect();
        for id in ids {
            let info = match d.cached(&id) {
                Cached::Hit(i) => Some(i),
                Cached::Negative => None,
                Cached::Miss => {
                    let waited = self
                        .held
                        .get(&id)
                        .is_some_and(|h| h.0.elapsed() >= HOLD_MAX);
                    if !waited {
                        continue;
                    }
                    d.mark_missing(&id);
                    None
                }
            };
            self.in_flight.remove(&id);
            if let Some((_, evs)) = self.held.remove(&id) {
                for mut ev in evs {
                    if let Some(i) = &info {
                        ev.container = Some(i.clone());
                    }
                    emit(ev);
                }
            }
        }
    }

    /// User names of the container `id`, from `/proc/<pid>/root/etc/passwd` (cached).
    fn users_of(&mut self, id: &str, pid: u32) -> &HashMap<u32, String> {
        if !self.container_users.contains_key(id) {
            if self.container_users.len() > 1024 {
                self.container_users.clear();
            }
            let m = read_passwd(&format!("/proc/{pid}/root/etc/passwd"));
            self.container_users.insert(id.to_string(), m);
        }
        &self.container_users[id]
    }

    /// `user.*`: the name from the container's own passwd file for container processes (the
    /// login user is a host user).
    fn user(&mut self, uid: u32, loginuid: u32, container: Option<&str>, pid: u32) -> UserInfo {
        let uname = match container {
            Some(id) => self.users_of(id, pid).get(&uid).cloned(),
            None => self.users.get(&uid).cloned(),
        }
        .unwrap_or_default();
        let name = |u: u32| self.users.get(&u).cloned().unwrap_or_default();
        UserInfo {
            uid,
            name: uname,
            loginuid: if loginuid == u32::MAX {
                -1
            } else {
                i64::from(loginuid)
            },
            loginname: if loginuid == u32::MAX {
                String::new()
            } else {
                name(loginuid)
            },
        }
    }

    /// The description of the process behind `h`: the one its thread's last event carried
    /// when nothing it was built from changed since, else a new one.
    fn process_info(&mut self, h: &Header, container: Option<&str>) -> Arc<ProcessInfo> {
        if h.ppid != 0
            && self
                .procs
                .get_or_load(h.pid)
                .is_some_and(|e| e.ppid != h.ppid)
        {
            self.procs.set_parent(h.pid, h.ppid);
        }
        let generation = self.procs.generation();
        if let Some(s) = self.shared.iter().find(|s| s.tid == h.tid)
            && s.serves(generation, h, container)
        {
            return s.info.clone();
        }
        let info = Arc::new(self.build_process_info(h, container));
        // Building may have loaded ancestors into the table: key on the generation after it.
        let generation = self.procs.generation();
        if self
            .shared
            .first()
            .is_some_and(|s| s.generation != generation)
        {
            self.shared.clear();
        }
        if let Some(i) = self.shared.iter().position(|s| s.tid == h.tid) {
            self.shared.swap_remove(i);
        } else if self.shared.len() >= SHARED_PROCESSES {
            self.shared.clear();
        }
        self.shared.push(SharedProcess {
            generation,
            tid: h.tid,
            pid: h.pid,
            ppid: h.ppid,
            vpid: h.vpid,
            uid: h.uid,
            gid: h.gid,
            loginuid: h.loginuid,
            start_time: h.start_time,
            comm: h.comm.clone(),
            container: container.map(str::to_string),
            info: info.clone(),
        });
        info
    }

    /// A new description of the process behind `h`, from the header and the process table.
    fn build_process_info(&mut self, h: &Header, container: Option<&str>) -> ProcessInfo {
        // Filled from the table entry by reference: an event copies only the fields it carries.
        let mut p = ProcessInfo {
            pid: h.pid,
            tid: h.tid,
            ppid: h.ppid,
            vpid: (h.vpid != 0).then_some(h.vpid),
            name: h.comm.clone(),
            tty: 0,
            sid: None,
            gid: h.gid,
            group: if h.gid == 0 {
                "root".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let mut start = h.start_time;
        if let Some(e) = self.procs.get(h.pid) {
            if p.ppid == 0 {
                p.ppid = e.ppid;
            }
            if p.vpid.is_none() {
                p.vpid = e.vpid;
            }
            if p.name.is_empty() {
                p.name.clone_from(&e.name);
            }
            if let Some((exe, args)) = e.argv.split_first() {
                p.exe.clone_from(exe);
                p.args = args.to_vec();
            }
            p.exepath.push_str(&e.exepath);
            if !e.cwd.is_empty() {
                p.cwd.reserve(e.cwd.len() + 1);
                p.cwd.push_str(&e.cwd);
                if !e.cwd.ends_with('/') {
                    p.cwd.push('/');
                }
            }
            p.tty = e.tty;
            p.exe_upper_layer = e.exe_upper_layer;
            p.exe_writable = e.exe_writable;
            p.exe_from_memfd = e.exepath.contains("memfd:");
            if start == 0 {
                start = e.start_boot_ns;
            }
        }
        p.start_ts = (start != 0).then(|| self.wall(start));
        p.user = self.user(h.uid, h.loginuid, container, h.pid);
        p.ancestors = self.procs.ancestors(h.pid, MAX_ANCESTORS);
        p
    }

    fn base(&mut self, h: &Header, kind: &'static str) -> Event {
        let cid = self.container_id(h);
        let container = cid.as_deref().map(|id| self.container_info(id));
        let process = Some(self.process_info(h, cid.as_deref()));
        Event {
            ts: self.wall(h.ts),
            source: EventSource::Syscall,
            kind: kind.into(),
            hostname: self.hostname.clone(),
            res: Some(h.res),
            args: BTreeMap::new(),
            process,
            fd: None,
            container,
        }
    }

    /// Resolves a path relative to `dfd` of process `pid`.
    fn resolve(&mut self, pid: u32, dfd: i32, path: &str) -> String {
        if path.starts_with('/') || path.is_empty() {
            return path.to_string();
        }
        let dir = if dfd == AT_FDCWD {
            self.procs
                .get(pid)
                .map(|e| e.cwd.to_string())
                .unwrap_or_default()
        } else {
            std::fs::read_link(format!("/proc/{pid}/fd/{dfd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if dir.is_empty() {
            return path.to_string();
        }
        let p = path.strip_prefix("./").unwrap_or(path);
        format!("{}/{}", dir.trim_end_matches('/'), p)
    }

    /// One record in, at most one event out; keeps the process table.
    pub(crate) fn enrich(&mut self, raw: Raw) -> Option<Event> {
        match raw {
            Raw::Exec {
                h,
                tty,
                argv,
                exepath,
                cwd,
                upper,
                writable,
            } => {
                let container = self.container_id(&h);
                self.procs.insert(ProcEntry {
                    pid: h.pid,
                    ppid: h.ppid,
                    name: h.comm.clone(),
                    exepath: exepath.into(),
                    argv: argv.into(),
                    cwd: cwd.into(),
                    uid: h.uid,
                    gid: h.gid,
                    loginuid: h.loginuid,
                    tty,
                    vpid: (h.vpid != 0).then_some(h.vpid),
                    container,
                    start_boot_ns: h.start_time,
                    exe_upper_layer: upper,
                    exe_writable: writable,
                    ..Default::default()
                });
                if !self.wants(kind_name(h.kind)) {
                    return None;
                }
                let mut ev = self.base(&h, kind_name(h.kind));
                ev.res = Some(0);
                Some(ev)
            }
            Raw::Fork { h, child, nr } => {
                self.procs.get_or_load(h.pid);
                self.procs.fork(h.pid, child, h.ts);
                let name = match nr {
                    57 => "fork",
                    58 => "vfork",
                    435 => "clone3",
                    _ => "clone",
                };
                if !self.wants(name) {
                    return None;
                }
                let mut ev = self.base(&h, name);
                ev.args.insert("child_pid".into(), child.to_string());
                Some(ev)
            }
            Raw::Exit { h, code } => {
                if !self.wants("procexit") {
                    self.procs.exit(h.pid);
                    return None;
                }
                let mut ev = self.base(&h, "procexit");
                ev.args.insert("status".into(), code.to_string());
                self.procs.exit(h.pid);
                Some(ev)
            }
            Raw::Sock {
                h,
                family,
                proto,
                local,
                remote,
                unix_path,
                fd,
            } => {
                if !self.wants(kind_name(h.kind)) {
                    return None;
                }
                let accept = matches!(h.kind, kind::ACCEPT | kind::ACCEPT4);
                let mut ev = self.base(&h, kind_name(h.kind));
                let fdi = socket_fd(family, proto, local, remote, unix_path, accept);
                ev.args.insert("fd".into(), fd.to_string());
                ev.args.insert("tuple".into(), fdi.name());
                ev.fd = Some(fdi);
                Some(ev)
            }
            Raw::File {
                h,
                flags,
                mode,
                dfd,
                aux,
                aux2,
                path,
                path2,
            } => {
                if !self.wants(kind_name(h.kind)) {
                    return None;
                }
                let mut ev = self.base(&h, kind_name(h.kind));
                let p1 = self.resolve(h.pid, dfd, &path);
                match h.kind {
                    kind::OPEN | kind::OPENAT | kind::OPENAT2 | kind::CREAT => {
                        ev.args.insert("flags".into(), open_flags(flags));
                        if flags & 0o100 != 0 || flags & 0o20000000 != 0 {
                            ev.args.insert("mode".into(), format!("0{mode:o}"));
                        }
                        ev.args.insert("name".into(), p1.clone());
                        if h.res >= 0 {
                            ev.args.insert("fd".into(), h.res.to_string());
                        }
                        ev.fd = Some(FdInfo {
                            typechar: 'f',
                            path: p1,
                            ..Default::default()
                        });
                    }
                    kind::UNLINK | kind::UNLINKAT => {
                        ev.args.insert("name".into(), p1.clone());
                        ev.args.insert("path".into(), p1);
                        if h.kind == kind::UNLINKAT {
                            ev.args.insert("flags".into(), flags.to_string());
                        }
                    }
                    kind::RENAME | kind::RENAMEAT | kind::RENAMEAT2 => {
                        // `aux`: the directory the new path is relative to.
                        let p2 = self.resolve(h.pid, aux as i32, &path2);
                        ev.args.insert("oldpath".into(), p1);
                        ev.args.insert("newpath".into(), p2);
                    }
                    kind::SETUID => {
                        ev.args.insert("uid".into(), aux.to_string());
                    }
                    kind::SETGID => {
                        ev.args.insert("gid".into(), aux.to_string());
                    }
                    kind::PTRACE => {
                        ev.args.insert("request".into(), ptrace_request(aux2));
                        ev.args.insert("pid".into(), aux.to_string());
                    }
                    kind::MEMFD => {
                        ev.args.insert("name".into(), path);
                        ev.args.insert("flags".into(), memfd_flags(flags));
                    }
                    _ => {}
                }
                Some(ev)
            }
        }
    }
}

/// The socket end points as Falco orders them: client `cip:cport`, server `sip:sport`.
pub(crate) fn socket_fd(
    family: u16,
    proto: u16,
    local: Option<(IpAddr, u16)>,
    remote: Option<(IpAddr, u16)>,
    unix_path: String,
    accept: bool,
) -> FdInfo {
    if family == 1 {
        return FdInfo {
            typechar: 'u',
            path: unix_path,
            local_is_server: accept,
            ..Default::default()
        };
    }
    let (client, server) = if accept {
        (remote, local)
    } else {
        (local, remote)
    };
    let v4 = matches!(server.or(client), Some((IpAddr::V4(_), _)) | None);
    FdInfo {
        typechar: if v4 { '4' } else { '6' },
        path: String::new(),
        cip: client.map(|c| c.0),
        cport: client.map(|c| c.1),
        sip: server.map(|s| s.0),
        sport: server.map(|s| s.1),
        l4proto: match proto {
            6 => "tcp".into(),
            17 => "udp".into(),
            _ => String::new(),
        },
        local_is_server: accept,
    }
}

/// Open flags as Falco prints them: `O_WRONLY|O_CREAT|O_TRUNC`.
pub(crate) fn open_flags(f: u32) -> String {
    let mut v = vec![match f & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    }];
    const BITS: &[(u32, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ];
    if f & 0o20200000 == 0o20200000 {
        v.push("O_TMPFILE");
    }
    for (bit, name) in BITS {
        if f & bit != 0 && !(*bit == 0o200000 && f & 0o20200000 == 0o20200000) {
            v.push(name);
        }
    }
    v.join("|")
}

fn memfd_flags(f: u32) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (1, "MFD_CLOEXEC"),
        (2, "MFD_ALLOW_SEALING"),
        (4, "MFD_HUGETLB"),
        (8, "MFD_NOEXEC_SEAL"),
        (16, "MFD_EXEC"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

fn ptrace_request(r: u64) -> String {
    match r {
        0 => "PTRACE_TRACEME".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        6 => "PTRACE_POKEUSR".into(),
        16 => "PTRACE_ATTACH".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        n => n.to_string(),
    }
}

/// uid → name from a passwd file (`root` for 0 when the file is missing).
fn read_passwd(path: &str) -> HashMap<u32, String> {
    let mut m: HashMap<u32, String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(':');
            let name = it.next()?;
            let uid = it.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect();
    m.entry(0).or_insert_with(|| "root".into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_render() {
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(open_flags(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(0o20200002), "O_RDWR|O_TMPFILE");
        assert_eq!(memfd_flags(3), "MFD_CLOEXEC|MFD_ALLOW_SEALING");
    }

    #[test]
    fn socket_orientation() {
        let l = Some(("172.17.0.2".parse().unwrap(), 40000));
        let r = Some(("127.0.0.1".parse().unwrap(), 3333));
        let c = socket_fd(2, 6, l, r, String::new(), false);
        assert_eq!(c.name(), "172.17.0.2:40000->127.0.0.1:3333");
        assert!(!c.local_is_server);
        assert_eq!(c.l4proto, "tcp");
        let a = socket_fd(2, 6, r, l, String::new(), true);
        assert_eq!(a.name(), "172.17.0.2:40000->127.0.0.1:3333");
        assert!(a.local_is_server);
        let u = socket_fd(1, 0, None, None, "/var/run/docker.sock".into(), false);
        assert_eq!((u.typechar, u.path.as_str()), ('u', "/var/run/docker.sock"));
    }

    #[test]
    fn clocks_agree() {
        let off = boot_to_wall_offset();
        let wall = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let est = boot_ns() as i64 + off;
        assert!((wall - est).abs() < 1_000_000_000, "{wall} vs {est}");
    }

    /// Pids far above any real one, so that nothing is read from `/proc`.
    const PARENT: u32 = 3_999_999_001;
    const CHILD: u32 = 3_999_999_002;

    fn exec(pid: u32, ppid: u32, argv: &[&str]) -> Raw {
        Raw::Exec {
            h: Header {
                kind: kind::EXECVE,
                pid,
                tid: pid,
                ppid,
                comm: argv[0].to_string(),
                loginuid: u32::MAX,
                ..Default::default()
            },
            tty: 0,
            argv: argv.iter().map(|a| a.to_string()).collect(),
            exepath: format!("/usr/bin/{}", argv[0]),
            cwd: "/srv".into(),
            upper: false,
            writable: false,
        }
    }

    fn connect(tid: u32, uid: u32) -> Raw {
        Raw::Sock {
            h: Header {
                kind: kind::CONNECT,
                pid: CHILD,
                tid,
                ppid: PARENT,
                uid,
                comm: "miner".into(),
                loginuid: u32::MAX,
                ..Default::default()
            },
            family: 2,
            proto: 6,
            local: Some(("127.0.0.1".parse().unwrap(), 40000)),
            remote: Some(("127.0.0.1".parse().unwrap(), 3333)),
            unix_path: String::new(),
            fd: 3,
        }
    }

    fn process(e: &mut Enricher, raw: Raw) -> Arc<ProcessInfo> {
        e.enrich(raw)
            .and_then(|ev| ev.process)
            .expect("an event with its process")
    }

    #[test]
    fn a_thread_shares_its_process_description_until_something_changes() {
        let mode = CgroupMode::V2;
        let mut e = Enricher::new(ProcTable::new(64, mode), mode, None, None);
        assert!(e.enrich(exec(PARENT, 0, &["sh", "-c", "miner"])).is_some());
        assert!(
            e.enrich(exec(CHILD, PARENT, &["miner", "-o", "pool:3333"]))
                .is_some()
        );

        let first = process(&mut e, connect(CHILD, 0));
        assert_eq!(first.args, ["-o", "pool:3333"]);
        assert_eq!(first.ancestors[0].name, "sh");
        assert_eq!((first.user.uid, first.tid), (0, CHILD));
        let again = process(&mut e, connect(CHILD, 0));
        assert!(
            Arc::ptr_eq(&first, &again),
            "unchanged thread: the same description"
        );

        // Another thread of the process gets its own.
        let other = process(&mut e, connect(CHILD + 1, 0));
        assert_eq!(other.tid, CHILD + 1);
        assert!(Arc::ptr_eq(&other, &process(&mut e, connect(CHILD + 1, 0))));

        // A header field it was built from changed: built anew.
        let setuid = process(&mut e, connect(CHILD, 1000));
        assert!(!Arc::ptr_eq(&first, &setuid));
        assert_eq!(setuid.user.uid, 1000);

        // The process table changed (a new program): built anew, from the new entry.
        assert!(
            e.enrich(exec(CHILD, PARENT, &["miner", "--donate", "0"]))
                .is_some()
        );
        let after_exec = process(&mut e, connect(CHILD, 1000));
        assert!(!Arc::ptr_eq(&setuid, &after_exec));
        assert_eq!(after_exec.args, ["--donate", "0"]);
        assert!(Arc::ptr_eq(
            &after_exec,
            &process(&mut e, connect(CHILD, 1000))
        ));
    }
}
