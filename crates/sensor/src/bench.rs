//! The sensor benchmark: an exec storm and a connect storm, each run without and with the
//! sensor, reporting events/s captured, drops, the storm's slowdown, the sensor's CPU and the
//! latency from the kernel's timestamp to the event reaching the consumer.
//!
//! The storms run in a worker process (the sensor ignores its own process), started as
//! `worker_cmd… exec N` / `worker_cmd… connect N`, which prints the storm's elapsed nanoseconds;
//! [`worker_main`] implements that side.

use crate::{BackendChoice, Sensor, SensorConfig, SensorError};
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Command that runs the worker (e.g. `[vigil, sensor, --bench-worker]`).
    pub worker_cmd: Vec<String>,
    /// Processes spawned by the exec storm.
    pub execs: u32,
    /// Connections made by the connect storm.
    pub connects: u32,
    /// Rounds per mode (the best round of each mode is compared).
    pub rounds: u32,
    /// Backend under test.
    pub backend: BackendChoice,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            worker_cmd: Vec::new(),
            execs: 5_000,
            connects: 20_000,
            rounds: 2,
            backend: BackendChoice::Ebpf,
        }
    }
}

/// Figures for one storm.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StormResult {
    /// `exec` or `connect`.
    pub storm: String,
    /// Operations per storm.
    pub ops: u32,
    /// Storm duration without the sensor (best round), seconds.
    pub base_secs: f64,
    /// Storm duration with the sensor (best round), seconds.
    pub sensor_secs: f64,
    /// `(sensor - base) / base` in %.
    pub slowdown_pct: f64,
    /// Events the consumer received during the sensor rounds, per second of storm.
    pub events_per_sec: f64,
    /// Events received in the sensor rounds.
    pub events: u64,
    /// Ring-buffer drops + channel drops + lost, over the sensor rounds.
    pub drops: u64,
    /// CPU used by the sensor process (all its threads) while the storm ran, in % of one CPU.
    pub sensor_cpu_pct: f64,
    /// Latency kernel timestamp → consumer, 50th percentile, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Maximum, microseconds.
    pub max_us: f64,
}

/// The whole benchmark's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Backend measured.
    pub backend: String,
    /// CPUs on this machine.
    pub cpus: usize,
    /// One entry per storm.
    pub storms: Vec<StormResult>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vigil sensor benchmark — backend {}, {} CPUs",
            self.backend, self.cpus
        )?;
        writeln!(
            f,
            "{:<8} {:>7} {:>9} {:>9} {:>9} {:>11} {:>7} {:>8} {:>9} {:>9} {:>9}",
            "storm",
            "ops",
            "base s",
            "sensor s",
            "slowdown",
            "events/s",
            "drops",
            "cpu %",
            "p50 µs",
            "p99 µs",
            "max µs"
        )?;
        for s in &self.storms {
            writeln!(
                f,
                "{:<8} {:>7} {:>9.3} {:>9.3} {:>8.1}% {:>11.0} {:>7} {:>8.1} {:>9.0} {:>9.0} {:>9.0}",
                s.storm,
                s.ops,
                s.base_secs,
                s.sensor_secs,
                s.slowdown_pct,
                s.events_per_sec,
                s.drops,
                s.sensor_cpu_pct,
                s.p50_us,
                s.p99_us,
                s.max_us
            )?;
        }
        Ok(())
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

fn run_worker(cmd: &[String], storm: &str, n: u32) -> Result<Duration, BenchError> {
    let (exe, rest) = cmd
        .split_first()
        .ok_or_else(|| BenchError::Worker("worker_cmd is empty".into()))?;
    let out = std::process::Command::new(exe)
        .args(rest)
        .arg(storm)
        .arg(n.to_string())
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

/// Runs the benchmark (needs root for the sensor).
pub async fn run(cfg: BenchConfig) -> Result<BenchReport, BenchError> {
    let mut storms = Vec::new();
    let mut backend = String::new();
    for (storm, ops) in [("exec", cfg.execs), ("connect", cfg.connects)] {
        let mut base = Duration::MAX;
        let mut with = Duration::MAX;
        let mut events = 0u64;
        let mut drops = 0u64;
        let mut lat: Vec<u64> = Vec::new();
        let mut cpu = 0.0;
        let mut storm_secs = 0.0;
        for _ in 0..cfg.rounds.max(1) {
            let cmd = cfg.worker_cmd.clone();
            let d = tokio::task::spawn_blocking(move || run_worker(&cmd, storm, ops))
                .await
                .map_err(|e| BenchError::Worker(e.to_string()))??;
            base = base.min(d);

            let mut h = Sensor::start(SensorConfig {
                backend: cfg.backend,
                docker_events: false,
                channel_capacity: 1 << 20,
                ..Default::default()
            })
            .await?;
            backend = h.backend().to_string();
            let mut rx = h
                .take_events()
                .ok_or_else(|| BenchError::Worker("event stream taken".into()))?;
            let consumer = tokio::spawn(async move {
                let mut n = 0u64;
                let mut lat = Vec::with_capacity(1 << 16);
                while let Some(ev) = rx.recv().await {
                    n += 1;
                    let now = chrono::Utc::now();
                    let d = (now - ev.ts).num_nanoseconds().unwrap_or(0).max(0) as u64;
                    lat.push(d);
                }
                (n, lat)
            });
            let before = h.stats();
            let cpu0 = self_cpu_secs();
            let cmd = cfg.worker_cmd.clone();
            let d = tokio::task::spawn_blocking(move || run_worker(&cmd, storm, ops))
                .await
                .map_err(|e| BenchError::Worker(e.to_string()))??;
            // let the sensor drain what is in flight
            tokio::time::sleep(Duration::from_millis(300)).await;
            let cpu1 = self_cpu_secs();
            let after = h.stats();
            h.stop();
            let (n, l) = consumer
                .await
                .map_err(|e| BenchError::Worker(e.to_string()))?;
            events += n;
            lat.extend(l);
            drops += (after.ring_drops - before.ring_drops)
                + (after.channel_drops - before.channel_drops)
                + (after.lost - before.lost);
            cpu += cpu1 - cpu0;
            storm_secs += d.as_secs_f64();
            with = with.min(d);
        }
        lat.sort_unstable();
        let b = base.as_secs_f64();
        let w = with.as_secs_f64();
        storms.push(StormResult {
            storm: storm.to_string(),
            ops,
            base_secs: b,
            sensor_secs: w,
            slowdown_pct: if b > 0.0 { (w - b) / b * 100.0 } else { 0.0 },
            events_per_sec: if storm_secs > 0.0 {
                events as f64 / storm_secs
            } else {
                0.0
            },
            events,
            drops,
            sensor_cpu_pct: if storm_secs > 0.0 {
                cpu / (storm_secs + 0.3 * f64::from(cfg.rounds.max(1))) * 100.0
            } else {
                0.0
            },
            p50_us: percentile(&lat, 0.50),
            p99_us: percentile(&lat, 0.99),
            max_us: percentile(&lat, 1.0),
        });
    }
    Ok(BenchReport {
        backend,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        storms,
    })
}

/// The worker side: `args` = `[exec|connect, N]`. Runs the storm on two threads and returns
/// its elapsed nanoseconds (the caller prints them).
pub fn worker_main(args: &[String]) -> Result<u64, String> {
    let storm = args.first().map(String::as_str).unwrap_or("");
    let n: u32 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .ok_or("usage: exec|connect N")?;
    let threads = 2u32;
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
            let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let addr = l.local_addr().map_err(|e| e.to_string())?;
            std::thread::spawn(move || {
                for s in l.incoming() {
                    match s {
                        Ok(mut s) => {
                            let _ = s.write_all(b"x");
                        }
                        Err(_) => break,
                    }
                }
            });
            let t0 = Instant::now();
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut b = [0u8; 1];
                        for _ in 0..n / threads {
                            if let Ok(mut s) = TcpStream::connect(addr) {
                                let _ = s.read(&mut b);
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
        other => Err(format!("unknown storm `{other}` (exec or connect)")),
    }
}
