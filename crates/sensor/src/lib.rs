//! Vigil's kernel sensor: Linux process, file and network events, attributed to containers, as
//! [`model::Event`]s.
//!
//! # Backends
//!
//! - **eBPF** (feature `bpf`, on by default): CO-RE programs in `src/bpf/sensor.bpf.c`, compiled
//!   by clang through libbpf-cargo at build time and loaded with libbpf-rs. They report through a
//!   ring buffer: `execve`/`execveat` (argv, executable path, cwd, uid/gid, login uid, tty,
//!   parent), process exit, `fork`/`vfork`/`clone`/`clone3` (new processes, not threads),
//!   `connect` (TCP/UDP/unix, IPv4/IPv6, both ends, result) and `accept`/`accept4`,
//!   `open`/`openat`/`openat2`/`creat` (path, flags, mode, result), `unlink`/`unlinkat`,
//!   `rename`/`renameat`/`renameat2`, `setuid`, `setgid`, `ptrace` (attach, seize, traceme,
//!   poke), `memfd_create`. Every record carries the kernel timestamp and the cgroup id, and
//!   the cgroup's name until the reader has resolved that id (it tells the kernel side which
//!   ids it knows), so containers are attributed without a race with the process' exit.
//!   Exec events also say whether the executable comes from a memfd (`proc.is_exe_from_memfd`),
//!   is writable by the user running it (`proc.is_exe_writable`)
//!   or an overlayfs upper layer (`proc.is_exe_upper_layer`: written in the container).
//!   The sensor's own process is not reported. Syscall tracepoints need tracefs; the sensor
//!   mounts it on `/sys/kernel/tracing` when the host has not.
//!
//!   Opens, unlinks and renames are filtered in the kernel by [`WatchPrefix`]es
//!   ([`default_watch_prefixes`]): reads only for sensitive files (`/etc/shadow`, `/root/.ssh/`,
//!   …), writes below system directories (`/etc/`, `/bin/`, `/usr/bin/`, `/root/`, `/var/log/`…),
//!   plus deletion or renaming of `*_history` files. An absolute path is matched as the caller
//!   gave it; a relative one by the path it reaches: a relative open that succeeded by its
//!   file's directory (walked in the kernel up to the task's root, cached per directory) and
//!   name, a relative unlink or rename by its directory (the cwd or the directory descriptor)
//!   and the path as given. Every syscall program runs at the
//!   syscall's exit only, with the arguments from the user registers it was entered with
//!   (x86-64): the path is read after the kernel has read it (so it is mapped, even a string in
//!   a page the process had not touched before), and most opens are rejected on its first 15
//!   bytes.
//! - **proc** (fallback, no BPF/BTF needed, root needed): the netlink process-events connector
//!   (fork, exec, exit, uid/gid changes, ptrace attach) with `/proc` enrichment, and a scan of
//!   `/proc/net/{tcp,tcp6,udp,udp6}` every [`SensorConfig::conn_scan_interval`].
//!
//! ## What the proc fallback cannot see
//!
//! - No file events at all: `open*`, `unlink*`, `rename*` (so no "read sensitive file" or
//!   "write below etc" detections), and no `memfd_create`.
//! - Exec details are read from `/proc/<pid>` after the fact: a process that exits within
//!   microseconds yields an exec event with only pid, and the argv/exe/cwd it had at the time of
//!   reading; `execveat` is reported as `execve`; failed execs are not seen.
//! - Connections are sampled: a connection opened and closed between two scans is missed, the
//!   result of a failed `connect` is never seen, the owning process is found by socket inode
//!   (none for a socket already closed), unix sockets are not reported, and the timestamp is the
//!   scan time.
//! - `setuid`/`setgid` appear only when the ids actually change (not failed attempts), and
//!   `ptrace` only for attach (not `PTRACE_POKE*`/`TRACEME`).
//! - Forks are reported with kind `clone` whatever syscall created the process.
//!
//! # Benchmark
//!
//! `cargo run --release -p vigil-sensor --example sensor_bench [-- [OPTIONS] EXECS [CONNECTS [OPENS
//! [ROUNDS]]]]`
//! or `vigil sensor --bench` (root): exec, connect, open, watched-open and refused-connect
//! storms without and with the sensor, medians of alternating rounds; see [`mod@bench`].
//!
//! Where the kernel-side cost goes: the programs themselves are short (an open of an unwatched
//! path is rejected after one 16-byte read of its path), but every hooked syscall also pays the
//! kernel's syscall-tracepoint path around them, and while any syscall tracepoint is attached
//! every syscall of every task takes the slower traced path (only its exit side: no program
//! runs at a syscall's entry, so the entry tracepoint stays off). On syscall-heavy loads (the
//! open storm) that fixed cost, not the programs, is most of the slowdown; the benchmark's
//! per-program lines show the programs' share. Inside the programs, helper calls cost more
//! than direct loads: the header reads the task's name and ids, and the descriptor table its
//! file, by direct loads; that took a refused connect's time in BPF from about 550 ns to
//! about 400–430 ns.
//!
//! # Container attribution
//!
//! cgroup (v1 `memory` hierarchy on legacy/hybrid hosts, the unified hierarchy on v2) → container
//! id, for Docker (cgroupfs and systemd drivers), containerd/CRI, CRI-O, Podman and kubepods
//! layouts (see [`cgroup`]). Metadata (name, image, image id and digest, labels, Kubernetes pod
//! and namespace from `io.kubernetes.*` labels, privileged, start time) comes from the Docker
//! Engine API and is cached. The reader never waits for Docker: on a cache miss `docker inspect`
//! runs in the background and that container's events are held back (in order, at most 1 s)
//! until the metadata arrives. Docker's own events refresh the cache and are delivered as events
//! with `source = docker` (`container_create`, `container_start`, `container_exec`,
//! `container_die`, `container_kill`, `container_oom`, `image_pull`, `image_tag`,
//! `image_delete`, …) with the container filled in.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), sensor::SensorError> {
//! let mut handle = sensor::Sensor::start(sensor::SensorConfig::default()).await?;
//! tracing::info!(backend = %handle.backend(), "sensor running");
//! let mut events = handle.take_events().expect("taken once");
//! while let Some(ev) = events.recv().await {
//!     // feed the detection engine
//!     let _ = ev;
//! }
//! let stats = handle.stats(); // events/s, ring-buffer drops, channel drops, lost
//! # let _ = stats; Ok(()) }
//! ```
//!
//! A consumer that is quick and never blocks (rule evaluation that spawns what has to wait)
//! can run on the reader thread instead, so that a drain wakes one thread rather than two:
//!
//! ```no_run
//! # async fn demo() -> Result<(), sensor::SensorError> {
//! let handle = sensor::Sensor::start_with_consumer(
//!     sensor::SensorConfig::default(),
//!     Box::new(|batch: Vec<model::Event>| {
//!         for ev in &batch {
//!             let _ = ev; // evaluate rules
//!         }
//!     }),
//! )
//! .await?;
//! # drop(handle); Ok(()) }
//! ```
//!
//! Records are handed to user space in batches: the kernel wakes the reader once a batch is
//! waiting, and the reader drains at least every [`SensorConfig::drain_interval`] (4 ms), which
//! bounds the latency. The reader thread runs at [`SensorConfig::reader_nice`].
//!
//! The handle stops the sensor when dropped (or by [`SensorHandle::stop`]). Events a stream's
//! reader does not take fast enough are dropped at its bound and counted in
//! [`SensorStats::channel_drops`]; events the kernel could not hand over are counted in
//! [`SensorStats::ring_drops`].

pub mod bench;
pub mod cgroup;
mod docker;
#[cfg(feature = "bpf")]
mod ebpf;
#[cfg_attr(not(feature = "bpf"), allow(dead_code))] // parts serve only the eBPF backend
mod enrich;
mod procconn;
pub mod proctable;
#[cfg_attr(not(feature = "bpf"), allow(dead_code))] // the ring-buffer decoder
mod raw;
mod stream;

pub use enrich::boot_ns;
pub use stream::{EventConsumer, EventStream};

use model::Event;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// eBPF when it loads, else the proc connector.
    #[default]
    Auto,
    /// eBPF only; fail when it cannot load.
    Ebpf,
    /// The proc connector fallback only.
    Proc,
}

impl std::str::FromStr for BackendChoice {
    type Err = SensorError;
    fn from_str(s: &str) -> Result<Self, SensorError> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "ebpf" | "bpf" => Ok(BackendChoice::Ebpf),
            "proc" => Ok(BackendChoice::Proc),
            other => Err(SensorError::Config(format!(
                "backend: unknown value `{other}` (expected auto, ebpf or proc)"
            ))),
        }
    }
}

/// The backend that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// eBPF programs and a ring buffer.
    Ebpf,
    /// Netlink proc connector and `/proc` scans.
    Proc,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Ebpf => "ebpf",
            Backend::Proc => "proc",
        })
    }
}

/// A path prefix the kernel-side file filter lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPrefix {
    /// Absolute path prefix, at most 64 bytes (`/etc/`, `/etc/shadow`).
    pub prefix: String,
    /// Only opens for writing/creating/truncating (and unlinks/renames) pass; otherwise any open.
    pub writes_only: bool,
}

impl WatchPrefix {
    fn new(prefix: &str, writes_only: bool) -> WatchPrefix {
        WatchPrefix {
            prefix: prefix.to_string(),
            writes_only,
        }
    }
}

/// The default file filter (at most 32 prefixes are used).
pub fn default_watch_prefixes() -> Vec<WatchPrefix> {
    let any = [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/pam.d/",
        "/etc/security/",
        "/etc/ld.so.preload",
        "/root/.ssh/",
        "/root/.aws/",
        "/root/.kube/",
        "/root/.docker/",
        "/etc/kubernetes/",
        "/var/run/secrets/kubernetes.io/",
        "/run/secrets/kubernetes.io/",
    ];
    let writes = [
        "/etc/",
        "/bin/",
        "/sbin/",
        "/usr/bin/",
        "/usr/sbin/",
        "/usr/local/bin/",
        "/usr/local/sbin/",
        "/lib/",
        "/lib64/",
        "/usr/lib/",
        "/boot/",
        "/root/",
        "/var/log/",
        "/var/lib/dpkg/",
        "/var/lib/rpm/",
        "/var/spool/cron/",
        "/dev/shm/",
        "/proc/sys/",
    ];
    any.iter()
        .map(|p| WatchPrefix::new(p, false))
        .chain(writes.iter().map(|p| WatchPrefix::new(p, true)))
        .collect()
}

/// Sensor settings.
#[derive(Debug, Clone)]
pub struct SensorConfig {
    /// Which backend to run.
    pub backend: BackendChoice,
    /// Events the consumer may fall behind before newer ones are dropped (see [`EventStream`]).
    pub channel_capacity: usize,
    /// Docker socket for container metadata and Docker events; `None` disables both.
    pub docker_socket: Option<String>,
    /// Deliver Docker's events (container start, image pull, …) as events.
    pub docker_events: bool,
    /// Ring buffer size in bytes (rounded up to a power of two).
    pub ring_buffer_bytes: u32,
    /// Kernel-side file filter (eBPF backend).
    pub watch_prefixes: Vec<WatchPrefix>,
    /// Most processes held in the process table.
    pub max_processes: usize,
    /// Interval of the `/proc/net` connection scan (proc backend).
    pub conn_scan_interval: Duration,
    /// Longest an event waits in the ring buffer (eBPF backend): the kernel wakes the reader
    /// only for batches, and the reader drains at least this often. Its timer fires anywhere
    /// in the second half of the interval, with the first interrupt there (on a busy CPU, the
    /// scheduler tick), so that draining adds no timer interrupt of its own.
    pub drain_interval: Duration,
    /// Nice value of the thread that reads the kernel (eBPF ring buffer or proc connector);
    /// negative keeps event latency low when the host is busy. 0 leaves it unchanged.
    pub reader_nice: i32,
    /// Trace syscalls (eBPF backend): file opens, unlinks and renames, connect and accept,
    /// setuid/setgid, ptrace, memfd_create. Off, the sensor sees process lifecycle (fork, exec,
    /// exit) and Docker events only, and no syscall on the host takes the kernel's
    /// traced-syscall path, which is most of what the sensor costs a process-heavy workload.
    pub syscall_events: bool,
    /// The syscall event types to deliver (`evt.type` names such as `execve`, `openat`,
    /// `procexit`), as the detection rules' interest set gives them (`RuleSet::event_types` in `vigil-detect`); `None`
    /// delivers every type. The sensor still reads fork, exec and exit to keep its process
    /// table, but builds no event of another type, and the eBPF backend does not attach the
    /// syscall programs (file, socket, setuid, ptrace, memfd) of types nobody wants. Docker
    /// events are not affected.
    pub event_types: Option<Vec<String>>,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            backend: BackendChoice::Auto,
            channel_capacity: 65_536,
            docker_socket: Some("/var/run/docker.sock".into()),
            docker_events: true,
            ring_buffer_bytes: 16 << 20,
            watch_prefixes: default_watch_prefixes(),
            max_processes: 65_536,
            conn_scan_interval: Duration::from_secs(1),
            drain_interval: Duration::from_millis(4),
            reader_nice: -5,
            syscall_events: true,
            event_types: None,
        }
    }
}

/// Why the sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The eBPF programs could not be opened, loaded (verifier) or attached.
    #[error("eBPF backend: {0}")]
    Bpf(String),
    /// This build has no eBPF programs (feature `bpf` off).
    #[error("eBPF backend: vigil-sensor was built without the `bpf` feature")]
    NoBpf,
    /// The proc connector could not be opened (needs root / CAP_NET_ADMIN).
    #[error("proc backend: {0}")]
    ProcConnector(String),
    /// Neither backend could start (`auto`): both reasons.
    #[error("no sensor backend could start (needs root): {0}")]
    NoBackend(String),
    /// A setting is invalid.
    #[error("sensor config: {0}")]
    Config(String),
    /// The sensor thread could not be started.
    #[error("sensor thread: {0}")]
    Thread(String),
}

/// Counters shared by the backend thread, the Docker task and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    out: stream::Output,
    /// Events delivered since start.
    events: AtomicU64,
    pub(crate) stop: AtomicBool,
    pub(crate) ring_drops: AtomicU64,
    pub(crate) kernel_lost: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) bpf_run_ns: AtomicU64,
    pub(crate) bpf_runs: AtomicU64,
    pub(crate) bpf_programs: Mutex<Vec<BpfProgramStats>>,
}

impl Shared {
    /// Hands an event to the consumer; counts it, or counts the drop when the consumer is
    /// too far behind.
    pub(crate) fn emit(&self, ev: Event) {
        self.emit_batch(vec![ev]);
    }

    /// Hands events to the consumer in one piece (one wakeup); counts them, or the drops.
    pub(crate) fn emit_batch(&self, batch: Vec<Event>) {
        let n = self.out.send(batch, &self.stop);
        self.events.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A snapshot of the sensor's counters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SensorStats {
    /// The backend that runs.
    pub backend: String,
    /// Events delivered since start.
    pub events: u64,
    /// Events delivered per second since the previous [`SensorHandle::stats`] call.
    pub events_per_sec: f64,
    /// Records the kernel could not put in the ring buffer (buffer full).
    pub ring_drops: u64,
    /// Events dropped because the consumer's channel was full.
    pub channel_drops: u64,
    /// Events lost otherwise: a path a syscall succeeded with that could not be read back at
    /// its exit (eBPF) or netlink overruns (proc).
    pub lost: u64,
    /// Records that could not be decoded.
    pub decode_errors: u64,
    /// Time spent in the BPF programs, ns (only counted while `kernel.bpf_stats_enabled=1`).
    pub bpf_run_ns: u64,
    /// BPF program runs (only counted while `kernel.bpf_stats_enabled=1`).
    pub bpf_runs: u64,
}

/// Run-time statistics of one BPF program (only counted while `kernel.bpf_stats_enabled=1`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BpfProgramStats {
    /// Program name (the function name in `sensor.bpf.c`, cut to 15 characters by the kernel).
    pub name: String,
    /// Time spent in the program, ns.
    pub run_ns: u64,
    /// Times it ran.
    pub runs: u64,
}

/// The running sensor. Dropping it stops the sensor.
pub struct SensorHandle {
    backend: Backend,
    shared: Arc<Shared>,
    events: Option<EventStream>,
    thread: Option<std::thread::JoinHandle<()>>,
    docker_task: Option<tokio::task::JoinHandle<()>>,
    last: Mutex<(Instant, u64)>,
}

impl std::fmt::Debug for SensorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorHandle")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SensorHandle {
    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The event stream (bounded); `None` once taken, and for a sensor started with
    /// [`Sensor::start_with_consumer`].
    pub fn take_events(&mut self) -> Option<EventStream> {
        self.events.take()
    }

    /// The counters, with the event rate since the previous call.
    pub fn stats(&self) -> SensorStats {
        let events = self.shared.events.load(Ordering::Relaxed);
        let rate = match self.last.lock() {
            Ok(mut l) => {
                let dt = l.0.elapsed().as_secs_f64();
                let r = if dt > 0.0 {
                    (events - l.1) as f64 / dt
                } else {
                    0.0
                };
                *l = (Instant::now(), events);
                r
            }
            Err(_) => 0.0,
        };
        SensorStats {
            backend: self.backend.to_string(),
            events,
            events_per_sec: rate,
            ring_drops: self.shared.ring_drops.load(Ordering::Relaxed),
            channel_drops: self.shared.out.dropped(),
            lost: self.shared.kernel_lost.load(Ordering::Relaxed),
            decode_errors: self.shared.decode_errors.load(Ordering::Relaxed),
            bpf_run_ns: self.shared.bpf_run_ns.load(Ordering::Relaxed),
            bpf_runs: self.shared.bpf_runs.load(Ordering::Relaxed),
        }
    }

    /// Per-program run-time statistics of the eBPF backend (empty for the proc backend),
    /// refreshed every 250 ms.
    pub fn bpf_programs(&self) -> Vec<BpfProgramStats> {
        match self.shared.bpf_programs.lock() {
            Ok(v) => v.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// Stops the sensor and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.docker_task.take() {
            t.abort();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SensorHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Entry point of the sensor.
#[derive(Debug)]
pub struct Sensor;

impl Sensor {
    /// Starts the sensor: seeds the container cache from Docker, starts the chosen backend on
    /// its own thread (which seeds the process table from `/proc` once attached), and follows
    /// Docker's events. Must
    /// be called inside a tokio runtime. Logs which backend runs.
    pub async fn start(cfg: SensorConfig) -> Result<SensorHandle, SensorError> {
        if cfg.channel_capacity == 0 {
            return Err(SensorError::Config(
                "channel_capacity: must be at least 1".into(),
            ));
        }
        let (sink, rx) = stream::channel(cfg.channel_capacity);
        Sensor::start_output(cfg, stream::Output::Stream(sink), Some(rx)).await
    }

    /// Like [`Sensor::start`], but hands every batch of events to `consumer` on the sensor's
    /// own thread instead of through a stream: a drain of the ring buffer then wakes one
    /// thread, not two. For consumers that are quick and never block, such as rule
    /// evaluation that spawns whatever has to wait.
    pub async fn start_with_consumer(
        cfg: SensorConfig,
        consumer: EventConsumer,
    ) -> Result<SensorHandle, SensorError> {
        Sensor::start_output(cfg, stream::Output::Inline(Mutex::new(consumer)), None).await
    }

    async fn start_output(
        cfg: SensorConfig,
        out: stream::Output,
        events: Option<EventStream>,
    ) -> Result<SensorHandle, SensorError> {
        let mode = cgroup::CgroupMode::detect();
        let rt = tokio::runtime::Handle::current();
        let docker = match &cfg.docker_socket {
            Some(s) => docker::DockerWatch::connect(s).await,
            None => None,
        };
        if let Some(d) = &docker {
            let n = d.seed().await;
            tracing::debug!(containers = n, "container cache seeded");
        }
        // The table is seeded by the backend thread once its event source is attached, so that
        // no process falls between the /proc snapshot and the first event.
        let procs = proctable::ProcTable::new(cfg.max_processes, mode);
        let enr = Box::new(
            enrich::Enricher::new(procs, mode, docker.clone(), Some(rt.clone()))
                .wanting(cfg.event_types.as_deref()),
        );
        let shared = Arc::new(Shared {
            out,
            events: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            ring_drops: AtomicU64::new(0),
            kernel_lost: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            bpf_run_ns: AtomicU64::new(0),
            bpf_runs: AtomicU64::new(0),
            bpf_programs: Mutex::new(Vec::new()),
        });

        let (backend, thread) = match cfg.backend {
            BackendChoice::Proc => start_proc(&cfg, enr, &shared, mode)?,
            BackendChoice::Ebpf => start_ebpf(&cfg, enr, &shared, mode)
                .await
                .map_err(|(e, _)| e)?,
            BackendChoice::Auto => match start_ebpf(&cfg, enr, &shared, mode).await {
                Ok(r) => r,
                Err((e, enr)) => {
                    tracing::warn!(error = %e, "eBPF backend unavailable; falling back to the proc connector");
                    start_proc(&cfg, enr, &shared, mode)
                        .map_err(|pe| SensorError::NoBackend(format!("{e}; and {pe}")))?
                }
            },
        };
        tracing::info!(%backend, docker = docker.is_some(), "sensor started");

        let docker_task = match docker {
            Some(d) if cfg.docker_events => {
                let sh = shared.clone();
                Some(tokio::spawn(d.run_events(
                    enrich::hostname().into(),
                    move |ev| {
                        sh.emit(ev);
                        !sh.stop.load(Ordering::Relaxed)
                    },
                )))
            }
            _ => None,
        };
        Ok(SensorHandle {
            backend,
            shared,
            events,
            thread: Some(thread),
            docker_task,
            last: Mutex::new((Instant::now(), 0)),
        })
    }
}

type Started = (Backend, std::thread::JoinHandle<()>);

/// Sets the calling thread's nice value (best effort; needs CAP_SYS_NICE to go below 0).
#[allow(unsafe_code)]
pub(crate) fn raise_thread_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // SAFETY: setpriority on our own thread id; failure only leaves the priority as it was.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc != 0 {
        tracing::debug!(nice, error = %std::io::Error::last_os_error(), "cannot change the sensor thread's priority");
    }
}

/// Lets the calling thread's timers fire up to `slack` late (`PR_SET_TIMERSLACK`; best effort).
/// A timer with slack expires with whatever interrupt comes first in its window, usually the
/// scheduler tick of a busy CPU, rather than with an interrupt of its own.
#[allow(unsafe_code)]
pub(crate) fn set_thread_timer_slack(slack: Duration) {
    let ns = slack.as_nanos().clamp(1, u128::from(u32::MAX)) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and changes only the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot set the reader's timer slack");
    }
}

fn start_proc(
    cfg: &SensorConfig,
    enr: Box<enrich::Enricher>,
    shared: &Arc<Shared>,
    mode: cgroup::CgroupMode,
) -> Result<Started, SensorError> {
    let conn = procconn::ProcConnector::open()?;
    let sh = shared.clone();
    let every = cfg.conn_scan_interval;
    let nice = cfg.reader_nice;
    let t = std::thread::Builder::new()
        .name("vigil-sensor-proc".into())
        .spawn(move || {
            raise_thread_priority(nice);
            procconn::run(conn, enr, sh, mode, every)
        })
        .map_err(|e| SensorError::Thread(e.to_string()))?;
    Ok((Backend::Proc, t))
}

#[cfg(feature = "bpf")]
async fn start_ebpf(
    cfg: &SensorConfig,
    enr: Box<enrich::Enricher>,
    shared: &Arc<Shared>,
    mode: cgroup::CgroupMode,
) -> Result<Started, (SensorError, Box<enrich::Enricher>)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let ecfg = ebpf::EbpfConfig {
        ring_bytes: cfg.ring_buffer_bytes.max(4096),
        use_v1_memcg: mode == cgroup::CgroupMode::V1,
        prefixes: cfg.watch_prefixes.clone(),
        drain_every: cfg.drain_interval.max(Duration::from_micros(100)),
        nice: cfg.reader_nice,
        syscall_events: cfg.syscall_events,
        event_types: cfg.event_types.clone(),
    };
    // What the fallback gets when the eBPF thread could not hand its enricher back.
    let bare_enricher = || {
        Box::new(
            enrich::Enricher::new(
                proctable::ProcTable::new(cfg.max_processes, mode),
                mode,
                None,
                None,
            )
            .wanting(cfg.event_types.as_deref()),
        )
    };
    let sh = shared.clone();
    let t = match std::thread::Builder::new()
        .name("vigil-sensor-bpf".into())
        .spawn(move || ebpf::run(ecfg, enr, sh, ready_tx))
    {
        Ok(t) => t,
        Err(e) => {
            return Err((SensorError::Thread(e.to_string()), bare_enricher()));
        }
    };
    let res = tokio::task::spawn_blocking(move || ready_rx.recv()).await;
    match res {
        Ok(Ok(Ok(()))) => Ok((Backend::Ebpf, t)),
        Ok(Ok(Err((e, enr)))) => {
            let _ = t.join();
            Err((e, enr))
        }
        _ => {
            let _ = t.join();
            Err((
                SensorError::Thread("eBPF thread ended before reporting".into()),
                bare_enricher(),
            ))
        }
    }
}

#[cfg(not(feature = "bpf"))]
async fn start_ebpf(
    _cfg: &SensorConfig,
    enr: Box<enrich::Enricher>,
    _shared: &Arc<Shared>,
    _mode: cgroup::CgroupMode,
) -> Result<Started, (SensorError, Box<enrich::Enricher>)> {
    Err((SensorError::NoBpf, enr))
}
