//! The sensor benchmark: an exec storm, a connect storm, an open storm (reads of a file the
//! kernel filter drops), a watched-open storm (reads of a file it passes, each an event: the
//! highest event rate this machine produces) and a refused-connect storm, each run without and
//! with the sensor, reporting events/s captured, drops, the storm's slowdown, the sensor's CPU,
//! the BPF programs' CPU and the latency from the kernel's timestamp to the event reaching the
//! consumer.
//!
//! Rounds alternate without/with the sensor (the order flips every round) and the figures are
//! medians over the rounds, so background load on a shared machine hits both sides alike. The
//! slowdown is given twice: in wall-clock time, and in the storm's own CPU time (user + system
//! of its processes, which includes the BPF programs that run in their syscalls), which other
//! load disturbs much less. Timed rounds run with `kernel.bpf_stats_enabled=0`; one extra round
//! with the sensor enables it to measure the BPF programs (`bpf ns`, `runs/op`, `bpf cpu%` and
//! the per-program lines).
//!
//! The storms run in a worker process (the sensor ignores its own process), started as
//! `worker_cmd… STORM N THREADS`, which prints the storm's elapsed nanoseconds;
//! [`worker_main`] implements that side.

use crate::{BackendChoice, BpfProgramStats, Sensor, SensorConfig, SensorError};
use model::Event;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Command that runs the worker (e.g. `[vigil, sensor, --bench-worker]`).
    pub worker_cmd: Vec<String>,
    /// Processes spawned by the exec storm (0 skips it).
    pub execs: u32,
    /// Connections made by the connect storm (0 skips it).
    pub connects: u32,
    /// Timed rounds per storm, each one run without and one with the sensor (medians are
    /// reported).
    pub rounds: u32,
    /// Reads of a non-watched file by the open storm (filtered in the kernel; 0 skips it).
    pub opens: u32,
    /// The same reads by a path relative to the working directory (`relopen`; 0 skips it).
    pub relative_opens: u32,
    /// Reads of `/etc/shadow`, a file the built-in rules watch (`watched`; 0 skips it): every
    /// open passes the kernel filter and becomes an event, so this storm drives the sensor at
    /// the highest event rate this machine produces.
    pub watched_opens: u32,
    /// Connects to a port nobody listens on, by one thread (0 skips it): refused at once, so
    /// each costs the same few microseconds and what the sensor adds to a connect syscall
    /// shows to a few nanoseconds, with the other CPUs left to the sensor.
    pub refused: u32,
    /// Backend under test.
    pub backend: BackendChoice,
    /// Whether the sensor traces syscalls ([`SensorConfig::syscall_events`]).
    pub syscall_events: bool,
    /// How often the sensor's reader drains the ring buffer at the latest
    /// ([`SensorConfig::drain_interval`]).
    pub drain_interval: Duration,
    /// Read events through an [`crate::EventStream`] (as `vigil sensor` does) instead of a
    /// consumer on the sensor's thread (as `vigil up` does).
    pub stream: bool,
    /// The event types the sensor builds ([`SensorConfig::event_types`]; `vigil up` passes its
    /// rules' interest set). `None`: every type.
    pub event_types: Option<Vec<String>>,
    /// Nice value of the sensor's reader thread ([`SensorConfig::reader_nice`]).
    pub reader_nice: i32,
    /// Size of the sensor's ring buffer ([`SensorConfig::ring_buffer_bytes`]).
    pub ring_buffer_bytes: u32,
    /// Threads each storm runs on (the connect storm: that many client/server pairs, each on
    /// its own listener; the refused storm always one); 0: one per CPU, which drives this
    /// machine to its highest rate.
    pub storm_threads: u32,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            worker_cmd: Vec::new(),
            execs: 5_000,
            connects: 20_000,
            opens: 500_000,
            relative_opens: 0,
            watched_opens: 200_000,
            refused: 60_000,
            rounds: 25,
            backend: BackendChoice::Ebpf,
            syscall_events: true,
            drain_interval: SensorConfig::default().drain_interval,
            stream: false,
            event_types: None,
            reader_nice: SensorConfig::default().reader_nice,
            ring_buffer_bytes: SensorConfig::default().ring_buffer_bytes,
            storm_threads: 0,
        }
    }
}

/// One BPF program's share of a storm (from the round with BPF statistics on).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgramFigure {
    /// Program name.
    pub name: String,
    /// Runs per storm operation.
    pub runs_per_op: f64,
    /// Mean time per run, ns.
    pub ns_per_run: f64,
}

/// Figures for one storm.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StormResult {
    /// `exec`, `connect`, `open`, `relopen` or `refused`.
    pub storm: String,
    /// Operations per storm.
    pub ops: u32,
    /// Timed rounds (each without and with the sensor).
    pub rounds: u32,
    /// Storm duration without the sensor (median), seconds.
    pub base_secs: f64,
    /// Storm duration with the sensor (median), seconds.
    pub sensor_secs: f64,
    /// Wall-clock slowdown: median over the rounds of `(with - without) / without`, in %.
    pub slowdown_pct: f64,
    /// First and third quartiles of the per-round wall-clock slowdown, in %: how far rounds
    /// of the same build spread on this machine.
    pub slowdown_quartiles_pct: (f64, f64),
    /// A distribution-free confidence interval of at least 95% for the median wall-clock
    /// slowdown (order statistics of the rounds; with fewer than 6 rounds, their range, which
    /// covers less).
    pub slowdown_ci95_pct: (f64, f64),
    /// Wall-clock slowdown of each round, in %, in the order they ran.
    pub round_slowdowns_pct: Vec<f64>,
    /// What the sensor adds to each operation of the storm (median over the rounds of the
    /// difference of the storm's durations, divided by its operations), nanoseconds.
    pub added_ns_per_op: f64,
    /// CPU-time slowdown: median over the rounds of the increase of the storm's own CPU time
    /// (user + system of its processes, including the BPF programs run in its syscalls), in %.
    pub cpu_slowdown_pct: f64,
    /// What the sensor costs in CPU, relative to the storm: median over the rounds of the
    /// storm's extra CPU time plus the sensor's own (user space), over the storm's CPU time
    /// without the sensor, in %. On a machine the storm keeps busy this is the slowdown to
    /// expect, with little of the noise that other load puts into wall-clock time.
    pub cpu_cost_pct: f64,
    /// 95% confidence interval of [`Self::cpu_cost_pct`] (the range of the rounds below 6).
    pub cpu_cost_ci95_pct: (f64, f64),
    /// Events the consumer received during the sensor rounds, per second of storm.
    pub events_per_sec: f64,
    /// Events received in the sensor rounds.
    pub events: u64,
    /// Ring-buffer drops + channel drops + lost, over the sensor rounds.
    pub drops: u64,
    /// CPU used by the sensor in user space (all threads of the process running it, including
    /// the consumer) while the storm ran, in % of one CPU.
    pub sensor_cpu_pct: f64,
    /// Latency kernel timestamp → consumer, 50th percentile, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Maximum, microseconds.
    pub max_us: f64,
    /// Events handled per second of sensor CPU (user space): comparable to Falco's
    /// "syscalls/s at one CPU".
    pub events_per_cpu_sec: f64,
    /// Mean time per BPF program run, ns (kernel side, charged to the storm).
    pub bpf_ns_per_run: f64,
    /// BPF program runs per storm operation (hooks hit, including filtered-out calls).
    pub bpf_runs_per_op: f64,
    /// Time in the BPF programs per storm, in % of the storm's own CPU time without the
    /// sensor: the kernel-side slowdown, independent of other load on the machine.
    pub bpf_overhead_pct: f64,
    /// The programs that ran, most time first.
    pub programs: Vec<ProgramFigure>,
}

/// The whole benchmark's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Backend measured.
    pub backend: String,
    /// CPUs on this machine.
    pub cpus: usize,
    /// Whether the sensor traced syscalls.
    pub syscall_events: bool,
    /// How often the reader drained the ring buffer at the latest, in ms.
    pub drain_ms: f64,
    /// Whether events went through a stream rather than a consumer on the sensor's thread.
    pub stream: bool,
    /// The event types the sensor built (`None`: all).
    pub event_types: Option<Vec<String>>,
    /// Threads each storm ran on (the connect storm: client/server pairs).
    pub storm_threads: u32,
    /// One entry per storm.
    pub storms: Vec<StormResult>,
    /// The reader's user-space cost per record ([`reader_costs`]).
    pub reader: Vec<ReaderCost>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vigil sensor benchmark — backend {}, {} CPUs, storm threads: {}, syscall events {}, drain every {} ms, consumer {} (medians of {} rounds without/with)",
            self.backend,
            self.cpus,
            self.storm_threads,
            if self.syscall_events { "on" } else { "off" },
            self.drain_ms,
            if self.stream {
                "behind a stream"
            } else {
                "on the sensor thread"
            },
            self.storms.first().map_or(0, |s| s.rounds)
        )?;
        match &self.event_types {
            Some(t) => writeln!(f, "event types built: {}", t.join(", "))?,
            None => writeln!(f, "event types built: all")?,
        }
        writeln!(
            f,
            "{:<8} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>11} {:>7} {:>7} {:>8}",
            "storm",
            "ops",
            "base s",
            "sensor s",
            "slowdown",
            "cpu slow",
            "events/s",
            "drops",
            "cpu%",
            "p50 µs",
            "p99 µs",
            "max µs",
            "ev/cpu-s",
            "bpf ns",
            "runs/op",
            "bpf cpu%"
        )?;
        for s in &self.storms {
            writeln!(
                f,
                "{:<8} {:>7} {:>8.3} {:>8.3} {:>8.1}% {:>8.1}% {:>9.0} {:>6} {:>6.1} {:>8.0} {:>8.0} {:>8.0} {:>11.0} {:>7.0} {:>7.1} {:>7.1}%",
                s.storm,
                s.ops,
                s.base_secs,
                s.sensor_secs,
                s.slowdown_pct,
                s.cpu_slowdown_pct,
                s.events_per_sec,
                s.drops,
                s.sensor_cpu_pct,
                s.p50_us,
                s.p99_us,
                s.max_us,
                s.events_per_cpu_sec,
                s.bpf_ns_per_run,
                s.bpf_runs_per_op,
                s.bpf_overhead_pct
            )?;
        }
        for s in &self.storms {
            let interval = if s.rounds >= 6 {
                "95% confidence"
            } else {
                "under 6 rounds, no 95% interval: range"
            };
            writeln!(
                f,
                "  {:<7} CPU cost (the storm's extra CPU and the sensor's, over the storm's own): median {:.1}%, {} {:.1}% to {:.1}%",
                s.storm, s.cpu_cost_pct, interval, s.cpu_cost_ci95_pct.0, s.cpu_cost_ci95_pct.1
            )?;
            writeln!(
                f,
                "  {:<7} wall slowdown: median {:.1}% ({:.0} ns per op), {} {:.1}% to {:.1}%; single rounds: quartiles {:.1}% to {:.1}%, each:{}",
                s.storm,
                s.slowdown_pct,
                s.added_ns_per_op,
                interval,
                s.slowdown_ci95_pct.0,
                s.slowdown_ci95_pct.1,
                s.slowdown_quartiles_pct.0,
                s.slowdown_quartiles_pct.1,
                s.round_slowdowns_pct
                    .iter()
                    .map(|r| format!(" {r:.1}"))
                    .collect::<String>()
            )?;
            if s.programs.is_empty() {
                continue;
            }
            write!(f, "  {:<7} BPF per op:", s.storm)?;
            for p in s.programs.iter().take(5) {
                write!(
                    f,
                    " {} {:.2}×{:.0} ns;",
                    p.name, p.runs_per_op, p.ns_per_run
                )?;
            }
            writeln!(f)?;
        }
        write!(f, "reader, user space per record:")?;
        for c in &self.reader {
            write!(f, " {} {:.0} ns;", c.kind, c.ns_per_record)?;
        }
        writeln!(f)
    }
}

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The sensor did not start.
    #[error(transparent)]
    Sensor(#[from] SensorError),
    /// The worker process failed.
    #[error("bench worker: {0}")]
    Worker(String),
}

fn run_worker(cmd: &[String], storm: &str, n: u32, threads: u32) -> Result<Duration, BenchError> {
    let (exe, rest) = cmd
        .split_first()
        .ok_or_else(|| BenchError::Worker("worker_cmd is empty".into()))?;
    let out = std::process::Command::new(exe)
        .args(rest)
        .arg(storm)
        .arg(n.to_string())
        .arg(threads.to_string())
        .output()
        .map_err(|e| BenchError::Worker(format!("{exe}: {e}")))?;
    if !out.status.success() {
        return Err(BenchError::Worker(format!(
            "{storm} storm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let ns: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| BenchError::Worker(format!("worker output: {e}")))?;
    Ok(Duration::from_nanos(ns))
}

/// Waits (at most 15 s) until the kernel's connection tracking table, where the host's
/// firewall has one, is at most a quarter full.
///
/// Every connection of a connect storm leaves an entry there for 10 s after it closed
/// (`nf_conntrack_tcp_timeout_close`). Storms back to back at this machine's rate fill the
/// table; once full, the kernel drops new connections' SYNs, and each costs the storm a
/// retransmission timeout of one to three seconds. Each storm starts with room instead.
fn wait_for_conntrack_room() {
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let t0 = Instant::now();
    let Some(max) = read("/proc/sys/net/netfilter/nf_conntrack_max") else {
        return;
    };
    while t0.elapsed() < Duration::from_secs(15)
        && read("/proc/sys/net/netfilter/nf_conntrack_count").is_some_and(|n| n > max / 4)
    {
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// CPU time (user + system) of waited-for children and their descendants, seconds.
#[allow(unsafe_code)]
fn children_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data (zero is valid) and getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sets `SO_LINGER` to zero, so that closing the socket resets the connection.
#[allow(unsafe_code)]
fn linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a pointer to a linger of the given size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// CPU time (user + system) of this process, seconds.
fn self_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    // fields after ')': state=0 … utime=11, stime=12
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// First and third quartiles (nearest rank) of `v`; zeros when empty.
fn quartiles(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.75))
}

/// Bounds of a confidence interval of at least 95% for the median of the population `v` was
/// drawn from: the `k`-th smallest and `k`-th largest values, with `k` the largest rank for
/// which fewer than `k` of `n` fair coin flips come up heads with a chance of at most 2.5%.
/// With fewer than 6 values no rank qualifies, and the whole range (which covers less) is
/// returned.
fn median_ci95(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    // P(X <= j) for X ~ Binomial(n, 1/2), accumulated term by term.
    let mut term = 0.5f64.powi(n as i32);
    let mut below = 0.0;
    let mut k = 1;
    for j in 0..n {
        below += term;
        if below > 0.025 {
            break;
        }
        // P(X <= j) <= 2.5%: the interval from the (j+1)-th smallest to the (j+1)-th largest
        // value misses the median with a chance of at most 5%.
        k = j + 1;
        term *= (n - j) as f64 / (j + 1) as f64;
    }
    let k = k.min(n.div_ceil(2));
    (v[k - 1], v[n - k])
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Sets the kernel's BPF run-time statistics switch while alive; restores the old value on
/// drop.
struct BpfStatsGuard(Option<String>);

impl BpfStatsGuard {
    const PATH: &'static str = "/proc/sys/kernel/bpf_stats_enabled";
    fn set(on: bool) -> BpfStatsGuard {
        let old = std::fs::read_to_string(Self::PATH).ok();
        if old.is_some() && std::fs::write(Self::PATH, if on { "1" } else { "0" }).is_err() {
            return BpfStatsGuard(None);
        }
        BpfStatsGuard(old)
    }
}

impl Drop for BpfStatsGuard {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write(Self::PATH, old.trim());
        }
    }
}

/// Figures of one storm round with the sensor.
struct Round {
    storm: Duration,
    storm_cpu: f64,
    events: u64,
    lat: Vec<u64>,
    drops: u64,
    cpu_secs: f64,
    bpf_ns: u64,
    bpf_runs: u64,
    programs: Vec<BpfProgramStats>,
}

/// Runs one storm; its duration and the CPU the storm's processes used.
async fn worker(
    cfg: &BenchConfig,
    storm: &'static str,
    ops: u32,
) -> Result<(Duration, f64), BenchError> {
    let cmd = cfg.worker_cmd.clone();
    let threads = cfg.storm_threads;
    tokio::task::spawn_blocking(move || {
        if storm == "connect" || storm == "refused" {
            wait_for_conntrack_room();
        }
        let c0 = children_cpu_secs();
        let d = run_worker(&cmd, storm, ops, threads)?;
        Ok((d, children_cpu_secs() - c0))
    })
    .await
    .map_err(|e| BenchError::Worker(e.to_string()))?
}

/// How a round's events reach the bench.
enum Consumer {
    Stream(tokio::task::JoinHandle<Vec<u64>>),
    Inline(Arc<Mutex<Vec<u64>>>),
}

async fn sensor_round(
    cfg: &BenchConfig,
    storm: &'static str,
    ops: u32,
    backend: &mut String,
) -> Result<Round, BenchError> {
    let scfg = SensorConfig {
        backend: cfg.backend,
        docker_events: false,
        channel_capacity: 1 << 20,
        syscall_events: cfg.syscall_events,
        drain_interval: cfg.drain_interval,
        event_types: cfg.event_types.clone(),
        reader_nice: cfg.reader_nice,
        ring_buffer_bytes: cfg.ring_buffer_bytes,
        ..Default::default()
    };
    // Latency of each event from the kernel's timestamp to the consumer.
    fn latency(ev: &Event) -> u64 {
        (chrono::Utc::now() - ev.ts)
            .num_nanoseconds()
            .unwrap_or(0)
            .max(0) as u64
    }
    let (h, consumer) = if cfg.stream {
        let mut h = Sensor::start(scfg).await?;
        let mut rx = h
            .take_events()
            .ok_or_else(|| BenchError::Worker("event stream taken".into()))?;
        let consumer = tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            while let Some(ev) = rx.recv().await {
                lat.push(latency(&ev));
            }
            lat
        });
        (h, Consumer::Stream(consumer))
    } else {
        let lat = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
        let sink = lat.clone();
        let h = Sensor::start_with_consumer(
            scfg,
            Box::new(move |batch: Vec<Event>| {
                let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
                l.extend(batch.iter().map(latency));
            }),
        )
        .await?;
        (h, Consumer::Inline(lat))
    };
    *backend = h.backend().to_string();
    // Let the start-up (process table seed) settle before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = h.stats();
    let progs_before = h.bpf_programs();
    let cpu0 = self_cpu_secs();
    let (d, storm_cpu) = worker(cfg, storm, ops).await?;
    // Let the sensor drain what is in flight (and refresh its BPF statistics).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu1 = self_cpu_secs();
    let after = h.stats();
    let programs = h
        .bpf_programs()
        .into_iter()
        .map(|p| {
            let b = progs_before.iter().find(|q| q.name == p.name);
            BpfProgramStats {
                run_ns: p.run_ns - b.map_or(0, |b| b.run_ns.min(p.run_ns)),
                runs: p.runs - b.map_or(0, |b| b.runs.min(p.runs)),
                name: p.name,
            }
        })
        .collect();
    h.stop();
    let lat = match consumer {
        Consumer::Stream(t) => t.await.map_err(|e| BenchError::Worker(e.to_string()))?,
        Consumer::Inline(l) => std::mem::take(&mut *l.lock().unwrap_or_else(|p| p.into_inner())),
    };
    let events = lat.len() as u64;
    Ok(Round {
        storm: d,
        storm_cpu,
        events: events.saturating_sub(before.events),
        lat,
        drops: (after.ring_drops - before.ring_drops)
            + (after.channel_drops - before.channel_drops)
            + (after.lost - before.lost),
        cpu_secs: cpu1 - cpu0,
        bpf_ns: after.bpf_run_ns - before.bpf_run_ns,
        bpf_runs: after.bpf_runs - before.bpf_runs,
        programs,
    })
}

/// Runs the benchmark (needs root for the sensor).
pub async fn run(cfg: BenchConfig) -> Result<BenchReport, BenchError> {
    let mut storms = Vec::new();
    let mut backend = String::new();
    let n_rounds = cfg.rounds.max(1);
    for (storm, ops) in [
        ("exec", cfg.execs),
        ("connect", cfg.connects),
        ("open", cfg.opens),
        ("relopen", cfg.relative_opens),
        ("watched", cfg.watched_opens),
        ("refused", cfg.refused),
    ] {
        if ops == 0 {
            continue;
        }
        let mut base = Vec::new();
        let mut rounds = Vec::new();
        let mut wall_ratio = Vec::new();
        let mut cpu_ratio = Vec::new();
        let mut cost_ratio = Vec::new();
        {
            // Timed rounds: BPF statistics off (they add two clock reads to every program run).
            let _stats = BpfStatsGuard::set(false);
            for i in 0..n_rounds {
                // Alternate the order so that a trend in background load hits both sides.
                let (b, r) = if i % 2 == 0 {
                    let b = worker(&cfg, storm, ops).await?;
                    (b, sensor_round(&cfg, storm, ops, &mut backend).await?)
                } else {
                    let r = sensor_round(&cfg, storm, ops, &mut backend).await?;
                    (worker(&cfg, storm, ops).await?, r)
                };
                let (bd, bc) = (b.0.as_secs_f64(), b.1);
                if bd > 0.0 {
                    wall_ratio.push((r.storm.as_secs_f64() - bd) / bd * 100.0);
                }
                if bc > 0.0 {
                    cpu_ratio.push((r.storm_cpu - bc) / bc * 100.0);
                    cost_ratio.push((r.storm_cpu - bc + r.cpu_secs) / bc * 100.0);
                }
                base.push(b);
                rounds.push(r);
            }
        }
        // One more round with the sensor to measure the BPF programs.
        let stats_round = {
            let _stats = BpfStatsGuard::set(true);
            sensor_round(&cfg, storm, ops, &mut backend).await?
        };
        let base_cpu = median(base.iter().map(|b| b.1).collect());
        let bpf_ns = stats_round.bpf_ns;
        let bpf_runs = stats_round.bpf_runs;
        let mut programs: Vec<ProgramFigure> = stats_round
            .programs
            .iter()
            .filter(|p| p.runs > 0)
            .map(|p| ProgramFigure {
                name: p.name.clone(),
                runs_per_op: p.runs as f64 / f64::from(ops),
                ns_per_run: p.run_ns as f64 / p.runs as f64,
            })
            .collect();
        programs.sort_by(|a, b| {
            (b.runs_per_op * b.ns_per_run).total_cmp(&(a.runs_per_op * a.ns_per_run))
        });
        rounds.push(stats_round);

        let events: u64 = rounds.iter().map(|r| r.events).sum();
        let storm_secs: f64 = rounds.iter().map(|r| r.storm.as_secs_f64()).sum();
        let cpu: f64 = rounds.iter().map(|r| r.cpu_secs).sum();
        let mut lat: Vec<u64> = rounds.iter().flat_map(|r| r.lat.iter().copied()).collect();
        lat.sort_unstable();
        let measured = storm_secs + 0.3 * rounds.len() as f64;
        storms.push(StormResult {
            storm: storm.to_string(),
            ops,
            rounds: n_rounds,
            base_secs: median(base.iter().map(|b| b.0.as_secs_f64()).collect()),
            sensor_secs: median(
                rounds[..rounds.len() - 1]
                    .iter()
                    .map(|r| r.storm.as_secs_f64())
                    .collect(),
            ),
            slowdown_quartiles_pct: quartiles(wall_ratio.clone()),
            slowdown_ci95_pct: median_ci95(wall_ratio.clone()),
            round_slowdowns_pct: wall_ratio.clone(),
            added_ns_per_op: median(
                base.iter()
                    .zip(&rounds)
                    .map(|(b, r)| {
                        (r.storm.as_secs_f64() - b.0.as_secs_f64()) * 1e9 / f64::from(ops)
                    })
                    .collect(),
            ),
            slowdown_pct: median(wall_ratio),
            cpu_slowdown_pct: median(cpu_ratio),
            cpu_cost_ci95_pct: median_ci95(cost_ratio.clone()),
            cpu_cost_pct: median(cost_ratio),
            // Per round, then the median: one round stretched by something outside the
            // sensor (a TCP retransmission, say) does not drag the rate down.
            events_per_sec: median(
                rounds
                    .iter()
                    .filter(|r| r.storm.as_secs_f64() > 0.0)
                    .map(|r| r.events as f64 / r.storm.as_secs_f64())
                    .collect(),
            ),
            events,
            drops: rounds.iter().map(|r| r.drops).sum(),
            sensor_cpu_pct: if measured > 0.0 {
                cpu / measured * 100.0
            } else {
                0.0
            },
            p50_us: percentile(&lat, 0.50),
            p99_us: percentile(&lat, 0.99),
            max_us: percentile(&lat, 1.0),
            events_per_cpu_sec: if cpu > 0.0 { events as f64 / cpu } else { 0.0 },
            bpf_ns_per_run: if bpf_runs > 0 {
                bpf_ns as f64 / bpf_runs as f64
            } else {
                0.0
            },
            bpf_runs_per_op: bpf_runs as f64 / f64::from(ops),
            bpf_overhead_pct: if base_cpu > 0.0 {
                bpf_ns as f64 / 1e9 / base_cpu * 100.0
            } else {
                0.0
            },
            programs,
        });
    }
    Ok(BenchReport {
        backend,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        syscall_events: cfg.syscall_events,
        drain_ms: cfg.drain_interval.as_secs_f64() * 1000.0,
        stream: cfg.stream,
        event_types: cfg.event_types.clone(),
        storm_threads: storm_threads(cfg.storm_threads),
        storms,
        reader: reader_costs(100_000, cfg.event_types.as_deref()),
    })
}

/// What the reader spends on one record of one kind, in user space: from the record's bytes to
/// the event handed on (decoding, the process table, the process and container descriptions,
/// the event's fields), and the event's drop.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderCost {
    /// The event type (`connect`, `openat`, `execve`).
    pub kind: &'static str,
    /// Nanoseconds per record, the fastest of a few runs.
    pub ns_per_record: f64,
}

/// Measures [`ReaderCost`]s: `records` records per kind (and run) of this very process, which
/// the process table knows, run through a reader of its own on this thread (no Docker, no
/// kernel) that builds `event_types` (`None`: all), as the sensor under test does. This is the user-space part of what each event costs the host, which the storms
/// show only mixed with the kernel side and the scheduler.
pub fn reader_costs(records: u32, event_types: Option<&[String]>) -> Vec<ReaderCost> {
    use crate::cgroup::CgroupMode;
    use crate::enrich::Enricher;
    use crate::proctable::ProcTable;
    use crate::raw::{self, Header, Raw, kind};

    let mode = CgroupMode::detect();
    let mut enr = Enricher::new(ProcTable::new(4096, mode), mode, None, None).wanting(event_types);
    enr.procs.seed();
    let pid = std::process::id();
    let me = enr.procs.get(pid).cloned().unwrap_or_default();
    let header = |kind: u32| Header {
        kind,
        pid,
        tid: pid,
        ppid: me.ppid,
        uid: me.uid,
        gid: me.gid,
        loginuid: me.loginuid,
        ts: crate::enrich::boot_ns(),
        cgroup_id: 1,
        comm: me.name.clone(),
        ..Default::default()
    };
    let samples = [
        (
            "connect",
            Raw::Sock {
                h: header(kind::CONNECT),
                family: 2,
                proto: 6,
                local: Some(([127, 0, 0, 1].into(), 43512)),
                remote: Some(([10, 20, 30, 40].into(), 3333)),
                unix_path: String::new(),
                fd: 7,
            },
        ),
        (
            "openat",
            Raw::File {
                h: header(kind::OPENAT),
                flags: 0o2000000,
                mode: 0,
                dfd: -100,
                aux: 0,
                aux2: 0,
                path: "/etc/shadow".into(),
                path2: String::new(),
            },
        ),
        (
            "execve",
            Raw::Exec {
                h: header(kind::EXECVE),
                tty: 0,
                argv: me.argv.to_vec(),
                exepath: me.exepath.to_string(),
                cwd: me.cwd.to_string(),
                upper: false,
                writable: false,
            },
        ),
    ];
    samples
        .iter()
        .map(|(name, sample)| {
            let bytes = raw::encode(sample);
            let mut events = 0u64;
            let best = (0..5)
                .map(|_| {
                    let t0 = Instant::now();
                    for _ in 0..records {
                        if let Ok(r) = raw::decode(std::hint::black_box(&bytes)) {
                            enr.handle(r, &mut |ev| {
                                events += 1;
                                drop(std::hint::black_box(ev));
                            });
                        }
                    }
                    t0.elapsed().as_nanos() as f64 / f64::from(records.max(1))
                })
                .fold(f64::INFINITY, f64::min);
            ReaderCost {
                kind: name,
                // A reader that built no event measured nothing.
                ns_per_record: if events > 0 { best } else { f64::NAN },
            }
        })
        .collect()
}

/// Threads a storm runs on: `asked`, or one per CPU for 0.
fn storm_threads(asked: u32) -> u32 {
    match asked {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
        t => t,
    }
}

/// The worker side: `args` = `[exec|connect|open|refused, N, THREADS]`. Runs the storm on
/// `THREADS` threads (0 or absent: one per CPU; the connect storm: that many client/server
/// pairs; the refused storm: one) and returns its elapsed nanoseconds (the caller prints them).
pub fn worker_main(args: &[String]) -> Result<u64, String> {
    let storm = args.first().map(String::as_str).unwrap_or("");
    let n: u32 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .ok_or("usage: exec|connect|open|relopen|watched|refused N [THREADS]")?;
    let threads: u32 = match args.get(2) {
        Some(t) => t
            .parse()
            .map_err(|_| format!("THREADS: not a number: {t}"))?,
        None => 0,
    };
    let threads = storm_threads(threads);
    match storm {
        "exec" => {
            let t0 = Instant::now();
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        for _ in 0..n / threads {
                            let _ = std::process::Command::new("/bin/true").status();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().map_err(|_| "exec thread panicked")?;
            }
            Ok(t0.elapsed().as_nanos() as u64)
        }
        "connect" => {
            // Pairs of one client and one server, each pair on its own listener: a listener
            // shared by several accepting threads wakes them all for each connection, which
            // caps the rate and makes it vary by ±8% from one storm to the next (±2% so).
            let mut addrs = Vec::new();
            for _ in 0..threads {
                let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                addrs.push(l.local_addr().map_err(|e| e.to_string())?);
                std::thread::spawn(move || {
                    for s in l.incoming() {
                        match s {
                            Ok(mut s) => {
                                let _ = s.write_all(b"x");
                                // Close abortively: a TIME_WAIT left per connection would,
                                // after a few rounds, make a reused port's SYN wait out a
                                // one-second retransmission and stretch a round by seconds.
                                linger_zero(&s);
                            }
                            Err(_) => break,
                        }
                    }
                });
            }
            let t0 = Instant::now();
            let hs: Vec<_> = addrs
                .into_iter()
                .map(|addr| {
                    std::thread::spawn(move || {
                        let mut b = [0u8; 1];
                        for _ in 0..n / threads {
                            if let Ok(mut s) = TcpStream::connect(addr) {
                                let _ = s.read(&mut b);
                                // Abortive on this side too: closed first, the client would
                                // now and then keep a TIME_WAIT, which a later connect reuses
                                // (loopback allows it) at the cost of a lost SYN and a stall
                                // of seconds.
                                linger_zero(&s);
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().map_err(|_| "connect thread panicked")?;
            }
            Ok(t0.elapsed().as_nanos() as u64)
        }
        "open" | "relopen" | "watched" => {
            // `relopen`: the same file by a path relative to the working directory, which
            // the kernel filter resolves through its cache of directories; `watched`: a file
            // the filter passes, so that every open is an event.
            let path = match storm {
                "relopen" => {
                    std::env::set_current_dir("/etc").map_err(|e| format!("chdir /etc: {e}"))?;
                    "hostname"
                }
                "watched" => "/etc/shadow",
                _ => "/etc/hostname",
            };
            let t0 = Instant::now();
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        for _ in 0..n / threads {
                            let _ = std::fs::File::open(path);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().map_err(|_| "open thread panicked")?;
            }
            Ok(t0.elapsed().as_nanos() as u64)
        }
        "refused" => {
            // One thread whatever THREADS says: the sensor has the other CPUs, so the figure
            // is what tracing adds inside each connect, not competition for a CPU.
            let addr = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            for _ in 0..n {
                let _ = TcpStream::connect(addr);
            }
            Ok(t0.elapsed().as_nanos() as u64)
        }
        other => Err(format!(
            "unknown storm `{other}` (exec, connect, open, relopen, watched or refused)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_cost_comes_from_events_it_built() {
        let types = ["connect", "openat", "execve"].map(String::from);
        let costs = reader_costs(50, Some(&types));
        let kinds: Vec<&str> = costs.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["connect", "openat", "execve"]);
        for c in &costs {
            assert!(
                c.ns_per_record.is_finite() && c.ns_per_record > 0.0,
                "{}: no event built ({})",
                c.kind,
                c.ns_per_record
            );
        }
    }

    #[test]
    fn quartiles_and_median_of_round_figures() {
        assert_eq!(quartiles(Vec::new()), (0.0, 0.0));
        assert_eq!(quartiles(vec![5.0]), (5.0, 5.0));
        let v = vec![9.0, 1.0, 5.0, 3.0, 7.0];
        assert_eq!(quartiles(v.clone()), (3.0, 7.0));
        assert_eq!(median(v), 5.0);
        assert_eq!(median(vec![1.0, 2.0, 3.0, 10.0]), 2.5);
    }

    #[test]
    fn the_median_interval_follows_the_binomial_ranks() {
        let ranks = |n: usize| -> (f64, f64) { median_ci95((1..=n).map(|i| i as f64).collect()) };
        // Fewer than 6 rounds: no rank qualifies, the whole range.
        assert_eq!(median_ci95(Vec::new()), (0.0, 0.0));
        assert_eq!(ranks(1), (1.0, 1.0));
        assert_eq!(ranks(5), (1.0, 5.0));
        // n = 6: P(X = 0) = 1.6% → 1st and 6th (the table value for 95%).
        assert_eq!(ranks(6), (1.0, 6.0));
        // n = 15: P(X <= 3) = 1.8%, P(X <= 4) = 5.9% → 4th and 12th.
        assert_eq!(ranks(15), (4.0, 12.0));
        // n = 25: P(X <= 7) = 2.2%, P(X <= 8) = 5.4% → 8th and 18th.
        assert_eq!(ranks(25), (8.0, 18.0));
        // Order does not matter.
        assert_eq!(median_ci95(vec![9.0, 2.0, 7.0, 1.0, 8.0, 3.0]), (1.0, 9.0));
    }
}
