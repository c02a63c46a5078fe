//! The process table: every live process with what events need about it (name, executable,
//! argv, cwd, ids, container), seeded from `/proc` and kept by fork, exec and exit events.
//!
//! The table is bounded: exited processes are kept a few seconds (late events and children still
//! name them), then dropped; above the capacity, the oldest exited entries go first, then entries
//! whose `/proc/<pid>` no longer exists.

use crate::cgroup::{self, CgroupMode};
use model::Ancestor;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an exited process stays in the table: long enough for the events that still name
/// it as a parent (a child's ppid changes only once the exit has run its course), short enough
/// that an exec storm keeps the table within its initial size (no rehash while it runs).
const EXITED_TTL: Duration = Duration::from_millis(500);
/// Inserts between two sweeps of the exited entries.
const SWEEP_EVERY: u32 = 1024;

/// What the table knows about one process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcEntry {
    /// Host pid.
    pub pid: u32,
    /// Parent pid.
    pub ppid: u32,
    /// Command name (comm).
    pub name: String,
    /// Executable path (shared with the entries forked from this one until they exec).
    pub exepath: Arc<str>,
    /// Full argv (`argv[0]` first; shared like `exepath`).
    pub argv: Arc<[String]>,
    /// Working directory at exec (shared like `exepath`).
    pub cwd: Arc<str>,
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// Login uid (`u32::MAX` unset).
    pub loginuid: u32,
    /// Controlling tty (encoded device number).
    pub tty: u32,
    /// Pid in its own namespace.
    pub vpid: Option<u32>,
    /// Container id (64 hex), `None` on the host.
    pub container: Option<String>,
    /// Start, nanoseconds since boot.
    pub start_boot_ns: u64,
    /// The executable lies in an overlayfs upper layer (written after the container started).
    pub exe_upper_layer: bool,
    /// The executable is writable by the user running it.
    pub exe_writable: bool,
    /// When the exit was seen.
    pub(crate) exited: Option<Instant>,
    /// This process as its children's events show it, built on first use and shared by all
    /// of them.
    pub(crate) as_ancestor: std::cell::OnceCell<Arc<Ancestor>>,
}

impl ProcEntry {
    /// `argv` joined by spaces (`proc.cmdline` style).
    pub fn cmdline(&self) -> String {
        self.argv.join(" ")
    }

    /// This process as an ancestor of another (shared, built once per entry).
    pub fn as_ancestor(&self) -> Arc<Ancestor> {
        self.as_ancestor
            .get_or_init(|| {
                Arc::new(Ancestor {
                    pid: self.pid,
                    name: self.name.clone(),
                    exepath: self.exepath.to_string(),
                    cmdline: self.cmdline(),
                })
            })
            .clone()
    }
}

/// The process table.
#[derive(Debug)]
pub struct ProcTable {
    map: FxHashMap<u32, ProcEntry>,
    capacity: usize,
    mode: CgroupMode,
    /// Inserts since exited entries were last swept out.
    inserts: u32,
    /// Counts the changes to the table: what was built from it is still true while this stays.
    generation: u64,
}

impl ProcTable {
    /// An empty table holding at most `capacity` processes.
    pub fn new(capacity: usize, mode: CgroupMode) -> ProcTable {
        ProcTable {
            map: FxHashMap::with_capacity_and_hasher(capacity.clamp(64, 4096), Default::default()),
            capacity: capacity.max(64),
            mode,
            inserts: 0,
            generation: 0,
        }
    }

    /// A number that changes whenever an entry is added, changed or dropped: a description of
    /// a process built from the table holds while it stays the same.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Most processes held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of processes held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Loads every process in `/proc`.
    pub fn seed(&mut self) -> usize {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let mut n = 0;
        for d in rd.flatten() {
            let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(e) = read_proc(pid, self.mode) {
                self.map.insert(pid, e);
                n += 1;
            }
        }
        self.generation += 1;
        self.trim();
        n
    }

    /// The entry of `pid`; read from `/proc` when not yet known.
    pub fn get_or_load(&mut self, pid: u32) -> Option<&ProcEntry> {
        if !self.map.contains_key(&pid) {
            let e = read_proc(pid, self.mode)?;
            self.insert(e);
        }
        self.map.get(&pid)
    }

    /// The entry of `pid`, if known.
    pub fn get(&self, pid: u32) -> Option<&ProcEntry> {
        self.map.get(&pid)
    }

    /// Inserts or replaces an entry.
    pub fn insert(&mut self, e: ProcEntry) {
        self.generation += 1;
        self.inserts += 1;
        if self.inserts >= SWEEP_EVERY {
            // Exited processes leave soon, so that a storm of short-lived processes keeps
            // the table (and its rehashing) small instead of filling it to capacity.
            self.sweep();
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&e.pid) {
            self.trim();
        }
        self.map.insert(e.pid, e);
    }

    /// A fork: the child starts as a copy of its parent.
    pub fn fork(&mut self, parent: u32, child: u32, start_boot_ns: u64) {
        let mut e = match self.get_or_load(parent) {
            Some(p) => p.clone(),
            None => ProcEntry {
                loginuid: u32::MAX,
                ..Default::default()
            },
        };
        e.ppid = parent;
        e.pid = child;
        e.as_ancestor = std::cell::OnceCell::new();
        e.vpid = None;
        e.exited = None;
        e.start_boot_ns = start_boot_ns;
        self.insert(e);
    }

    /// Records `ppid` as the parent of `pid` (reparenting), loading `pid` first when unknown.
    pub fn set_parent(&mut self, pid: u32, ppid: u32) {
        if self.get_or_load(pid).is_some()
            && let Some(e) = self.map.get_mut(&pid)
        {
            e.ppid = ppid;
            self.generation += 1;
        }
    }

    /// Marks `pid` exited; it is dropped a few seconds later.
    pub fn exit(&mut self, pid: u32) {
        if let Some(e) = self.map.get_mut(&pid) {
            e.exited = Some(Instant::now());
            self.generation += 1;
        }
    }

    /// Ancestors of `pid`, parent first, at most `max`.
    pub fn ancestors(&mut self, pid: u32, max: usize) -> Vec<Arc<Ancestor>> {
        let mut out = Vec::new();
        let mut cur = self.get(pid).map(|e| e.ppid);
        while let Some(pp) = cur {
            if pp == 0 || out.len() >= max {
                break;
            }
            let Some(e) = self.get_or_load(pp) else {
                break;
            };
            out.push(e.as_ancestor());
            if e.ppid == pp {
                break;
            }
            cur = Some(e.ppid);
        }
        out
    }

    /// Drops exited entries past their time.
    pub fn sweep(&mut self) {
        self.inserts = 0;
        let now = Instant::now();
        self.map
            .retain(|_, e| e.exited.is_none_or(|t| now.duration_since(t) < EXITED_TTL));
        self.generation += 1;
    }

    /// Drops exited entries past their time; when full, brings the table down to three
    /// quarters of its capacity: exited entries first, then entries whose process is gone, then
    /// the youngest (they reload from `/proc` on demand).
    pub fn trim(&mut self) {
        self.sweep();
        let target = self.capacity * 3 / 4;
        if self.map.len() > target {
            self.map.retain(|_, e| e.exited.is_none());
        }
        if self.map.len() > target {
            self.map
                .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
        if self.map.len() > target {
            let mut v: Vec<(u64, u32)> = self
                .map
                .values()
                .map(|e| (e.start_boot_ns, e.pid))
                .collect();
            v.sort_unstable();
            for (_, pid) in v.iter().skip(target) {
                self.map.remove(pid);
            }
        }
        self.generation += 1;
    }
}

fn read_link(p: String) -> String {
    std::fs::read_link(p)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads one process from `/proc`.
pub fn read_proc(pid: u32, mode: CgroupMode) -> Option<ProcEntry> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    // rest[0] = state, [1] = ppid, [4] = tty_nr, [19] = starttime (clock ticks)
    let ppid = rest.get(1)?.parse().ok()?;
    let tty = rest.get(4).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0) as u32;
    let ticks: u64 = rest.get(19).and_then(|s| s.parse().ok()).unwrap_or(0);
    let start_boot_ns = ticks.saturating_mul(1_000_000_000 / clock_ticks());
    let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| crate::raw::split_argv(&b))
        .unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let id_field = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let vpid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok());
    let loginuid = std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    let mut cwd = read_link(format!("/proc/{pid}/cwd"));
    if cwd.is_empty() {
        cwd = String::new();
    }
    Some(ProcEntry {
        pid,
        ppid,
        name,
        exepath: read_link(format!("/proc/{pid}/exe")).into(),
        argv: argv.into(),
        cwd: cwd.into(),
        uid: id_field("Uid:"),
        gid: id_field("Gid:"),
        loginuid,
        tty,
        vpid,
        container: cgroup::container_of_pid(pid, mode),
        start_boot_ns,
        exe_upper_layer: false,
        exe_writable: false,
        exited: None,
        as_ancestor: Default::default(),
    })
}

/// `USER_HZ`: the unit of `/proc/<pid>/stat` times, 100 on every Linux architecture.
fn clock_ticks() -> u64 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_finds_own_ancestry() {
        let mut t = ProcTable::new(100_000, CgroupMode::detect());
        assert!(t.seed() > 1);
        let me = std::process::id();
        let e = t.get(me).expect("own process in table").clone();
        assert!(!e.argv.is_empty());
        let anc = t.ancestors(me, 8);
        assert_eq!(anc.first().map(|a| a.pid), Some(e.ppid));
    }

    #[test]
    fn fork_exit_and_bound() {
        let mut t = ProcTable::new(64, CgroupMode::detect());
        let me = std::process::id();
        t.fork(me, 4_000_000, 1);
        let child = t.get(4_000_000).expect("child").clone();
        assert_eq!(child.ppid, me);
        assert_eq!(child.name, t.get(me).unwrap().name);
        assert_eq!(t.ancestors(4_000_000, 1)[0].pid, me);
        t.exit(4_000_000);
        assert!(t.get(4_000_000).is_some(), "kept a while after exit");
        for i in 0..500 {
            t.insert(ProcEntry {
                pid: 5_000_000 + i,
                ..Default::default()
            });
        }
        assert!(t.len() <= 64, "bounded: {}", t.len());
    }

    #[test]
    fn exited_entries_are_swept_long_before_the_table_fills() {
        let mut t = ProcTable::new(1_000_000, CgroupMode::detect());
        for i in 0..100 {
            t.insert(ProcEntry {
                pid: 6_000_000 + i,
                ..Default::default()
            });
            t.exit(6_000_000 + i);
        }
        // Exited just now: kept; exited long ago: gone at the next sweep.
        t.insert(ProcEntry {
            pid: 7_000_000,
            ..Default::default()
        });
        t.exit(7_000_000);
        for i in 0..100 {
            if let Some(e) = t.map.get_mut(&(6_000_000 + i)) {
                e.exited = Instant::now().checked_sub(EXITED_TTL * 2);
            }
        }
        for i in 0..SWEEP_EVERY {
            t.insert(ProcEntry {
                pid: 8_000_000 + i,
                ..Default::default()
            });
        }
        assert!(t.get(6_000_000).is_none() && t.get(6_000_099).is_none());
        assert!(
            t.get(7_000_000).is_some(),
            "a fresh exit stays for late events"
        );
        assert_eq!(t.len(), SWEEP_EVERY as usize + 1);
    }
}
