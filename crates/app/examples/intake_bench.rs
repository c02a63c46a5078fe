//! Alert intake benchmark: drives `POST /api/v2/alerts` with batches of 1 and of 100 alerts at a
//! fixed concurrency against Vigil (SQLite, durable: each 200 means committed, see `--sync`) and
//! against Debian's Alertmanager 0.25 (in memory) started in the same run, and prints alerts/s,
//! p50/p99 request latency for both, the CPU time each server spent per alert, and the ratios.
//!
//! ```text
//! cargo run --release -p vigil-app --example intake_bench -- [--seconds 8] [--concurrency 32]
//!     [--distinct 5000] [--rounds 3] [--alertmanager /usr/bin/prometheus-alertmanager]
//!     [--sync tiered|full|normal]
//! ```
//!
//! Runs alternate (Vigil, Alertmanager, Vigil, …) for `--rounds` rounds and each figure is the
//! median over the rounds, so a burst of other work on the machine hits both servers alike. The
//! CPU time per alert is what the server itself used (Vigil: this process minus the load
//! generator's threads; Alertmanager: its process), which depends far less on other load than
//! the rate does.
//!
//! Every mode survives `kill -9` of Vigil right after a 2xx, which is what "a 2xx means durable"
//! promises. They differ in power loss: `--sync tiered` (Vigil's default) fsyncs the SQLite WAL at
//! every commit that changes incidents or other state and fsyncs alert intake within 100 ms (or
//! when idle); `--sync full` fsyncs at every commit (each 2xx also survives power loss);
//! `--sync normal` leaves the WAL to the kernel between checkpoints.
//!
//! The alerts are a fixed set of `--distinct` label sets (50 instances) sent round-robin, as
//! Prometheus re-sends its firing alerts: the first pass creates alerts (and, in Vigil, incidents);
//! later passes merge. Vigil runs in this process on its own runtime; the load generator runs on
//! another. Alertmanager runs as a child process.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The allocator the `vigil` binary uses, so the figures are those of `vigil` itself.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Opts {
    seconds: u64,
    rounds: usize,
    concurrency: usize,
    distinct: usize,
    alertmanager: String,
    /// SQLite commit durability: `tiered` (Vigil's default), `full` (fsync per commit) or
    /// `normal` (no fsync per commit).
    sync: String,
}

fn opts() -> Opts {
    let mut o = Opts {
        seconds: 8,
        rounds: 3,
        concurrency: 32,
        distinct: 5000,
        alertmanager: "/usr/bin/prometheus-alertmanager".into(),
        sync: "tiered".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--seconds" => o.seconds = v.parse().expect("--seconds N"),
            "--rounds" => o.rounds = v.parse::<usize>().expect("--rounds N").max(1),
            "--concurrency" => o.concurrency = v.parse().expect("--concurrency N"),
            "--distinct" => o.distinct = v.parse().expect("--distinct N"),
            "--alertmanager" => o.alertmanager = v,
            "--sync" => o.sync = v,
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    o
}

fn alert(i: usize) -> Value {
    json!({
        "labels": {
            "alertname": format!("bench_alert_{}", i % 20),
            "instance": format!("node-{}:9100", i % 50),
            "job": "node",
            "series": i.to_string(),
            "severity": if i.is_multiple_of(7) { "critical" } else { "warning" },
        },
        "annotations": {"summary": "benchmark alert", "description": format!("alert number {i}")},
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
    })
}

struct Run {
    alerts: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    errors: usize,
    /// CPU time the server used during the run.
    cpu: Duration,
}

/// Clock ticks per second of `/proc/*/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime in ticks and the command name from a `/proc/.../stat` file.
fn stat_ticks(path: &str) -> Option<(u64, String)> {
    let s = std::fs::read_to_string(path).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 2..].split(' ').collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ut: u64 = rest.get(11)?.parse().ok()?;
    let st: u64 = rest.get(12)?.parse().ok()?;
    Some((ut + st, comm))
}

/// Where the server under test runs, to read its CPU time.
#[derive(Clone, Copy)]
enum Server {
    /// Vigil, in this process: every thread but the load generator's.
    InProcess,
    /// Alertmanager, a child process.
    Child(u32),
}

/// CPU ticks used so far by the server.
fn server_ticks(server: Server) -> u64 {
    match server {
        Server::Child(pid) => stat_ticks(&format!("/proc/{pid}/stat")).map_or(0, |t| t.0),
        Server::InProcess => {
            let total = stat_ticks("/proc/self/stat").map_or(0, |t| t.0);
            let loadgen: u64 = std::fs::read_dir("/proc/self/task")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|t| stat_ticks(&format!("{}/stat", t.path().display())))
                .filter(|(_, comm)| comm.starts_with(LOADGEN_THREAD))
                .map(|(t, _)| t)
                .sum();
            total.saturating_sub(loadgen)
        }
    }
}

/// Thread name of the load generator's runtime.
const LOADGEN_THREAD: &str = "loadgen";

async fn drive(url: &str, server: Server, batch: usize, o: &Opts) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Pre-serialize every batch body once.
    let nbodies = o.distinct.div_ceil(batch).max(1);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..nbodies)
            .map(|b| {
                let v: Vec<Value> = (0..batch)
                    .map(|k| alert((b * batch + k) % o.distinct))
                    .collect();
                serde_json::to_vec(&v).unwrap()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let ticks0 = server_ticks(server);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let client = client.clone();
        let bodies = bodies.clone();
        let next = next.clone();
        let errors = errors.clone();
        let url = format!("{url}/api/v2/alerts");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let body = bodies[i % bodies.len()].clone();
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => lat.push(t.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    let ticks = server_ticks(server).saturating_sub(ticks0);
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Run {
        alerts: lat.len() * batch,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        errors: errors.load(Ordering::Relaxed),
        cpu: Duration::from_secs_f64(ticks as f64 / clock_ticks()),
    }
}

/// The CPU time the server used per alert, in µs.
fn cpu_per_alert(r: &Run) -> f64 {
    r.cpu.as_secs_f64() * 1e6 / (r.alerts.max(1) as f64)
}

/// The median run by rate, and the medians of its figures over `runs`.
fn median(runs: &[Run]) -> Run {
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let secs = mid(runs.iter().map(|r| r.elapsed.as_secs_f64()).collect());
    Run {
        alerts: (mid(runs.iter().map(rate).collect()) * secs) as usize,
        elapsed: Duration::from_secs_f64(secs),
        p50: Duration::from_secs_f64(mid(runs.iter().map(|r| r.p50.as_secs_f64()).collect())),
        p99: Duration::from_secs_f64(mid(runs.iter().map(|r| r.p99.as_secs_f64()).collect())),
        errors: runs.iter().map(|r| r.errors).sum(),
        cpu: Duration::from_secs_f64(
            mid(runs.iter().map(cpu_per_alert).collect())
                * 1e-6
                * (mid(runs.iter().map(rate).collect()) * secs),
        ),
    }
}

fn rate(r: &Run) -> f64 {
    r.alerts as f64 / r.elapsed.as_secs_f64()
}

fn report(name: &str, batch: usize, r: &Run) {
    println!(
        "{name:<13} batch {batch:>3}: {:>9.0} alerts/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>6.1} µs CPU/alert  ({} errors)",
        rate(r),
        r.p50.as_secs_f64() * 1000.0,
        r.p99.as_secs_f64() * 1000.0,
        cpu_per_alert(r),
        r.errors
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

fn start_vigil(dir: &std::path::Path, sync: &str) -> (String, std::thread::JoinHandle<()>) {
    let port = free_port();
    let mut config = app::Config {
        listen: ([127, 0, 0, 1], port).into(),
        data_dir: dir.join("vigil"),
        store: Some(format!(
            "sqlite://{}?synchronous={sync}",
            dir.join("vigil").join("vigil.db").display()
        )),
        ..Default::default()
    };
    config.sensor.enabled = app::SensorEnabled::Off;
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vigil-rt")
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = app::App::start(config).await.expect("start Vigil");
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            tx.send(app.config().store_url()).unwrap();
            app.serve(listener, std::future::pending()).await.unwrap();
        });
    });
    let store = rx.recv().unwrap();
    println!("Vigil: in-process, store {store} (WAL)");
    wait_port(port);
    (format!("http://127.0.0.1:{port}"), h)
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_alertmanager(bin: &str, dir: &std::path::Path) -> Option<(String, Child)> {
    if !std::path::Path::new(bin).exists() {
        return None;
    }
    let port = free_port();
    let cfg = dir.join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let child = Child(child);
    wait_port(port);
    let v = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&v.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
        + String::from_utf8_lossy(&v.stderr)
            .lines()
            .next()
            .unwrap_or("");
    println!("Alertmanager: {version} (in memory)");
    Some((format!("http://127.0.0.1:{port}"), child))
}

fn main() {
    let o = opts();
    let dir = tempfile::Builder::new()
        .prefix("vigil-intake-bench-")
        .tempdir()
        .unwrap();
    println!(
        "intake benchmark: {}s per run, concurrency {}, {} distinct alerts; {} CPUs",
        o.seconds,
        o.concurrency,
        o.distinct,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (vigil_url, _vigil) = start_vigil(dir.path(), &o.sync);
    let am = start_alertmanager(&o.alertmanager, dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOADGEN_THREAD)
        .enable_all()
        .build()
        .unwrap();
    // Warm-up, not measured: every distinct alert once (batches of 100), as when Prometheus
    // first fires them; then wait until Vigil has correlated them all into incidents. The runs
    // below measure re-sends and merges, Prometheus' steady state.
    let warm = |url: &str| {
        let o2 = Opts {
            seconds: 0,
            rounds: 1,
            concurrency: 1,
            distinct: o.distinct,
            alertmanager: String::new(),
            sync: String::new(),
        };
        let t = Instant::now();
        let client = reqwest::Client::new();
        rt.block_on(async {
            for b in 0..o.distinct.div_ceil(100) {
                let v: Vec<Value> = (b * 100..((b + 1) * 100).min(o2.distinct))
                    .map(alert)
                    .collect();
                let r = client
                    .post(format!("{url}/api/v2/alerts"))
                    .json(&v)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        });
        t.elapsed()
    };
    let t0 = Instant::now();
    let t = warm(&vigil_url);
    rt.block_on(async {
        let client = reqwest::Client::new();
        loop {
            let v: Value = client
                .get(format!("{vigil_url}/api/v1/alerts?unassigned=true&limit=1"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v.as_array().is_some_and(|a| a.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let incidents: Value = rt.block_on(async {
        reqwest::get(format!("{vigil_url}/api/v1/incidents"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    println!(
        "warm-up: {} new alerts into Vigil in {:.2}s, correlated into {} incidents after {:.2}s",
        o.distinct,
        t.as_secs_f64(),
        incidents.as_array().map_or(0, Vec::len),
        t0.elapsed().as_secs_f64()
    );
    if let Some((url, _)) = &am {
        let t = warm(url);
        println!(
            "warm-up: {} new alerts into Alertmanager in {:.2}s",
            o.distinct,
            t.as_secs_f64()
        );
    }
    let mut rows = Vec::new();
    for batch in [1usize, 100] {
        let (mut vs, mut ams) = (Vec::new(), Vec::new());
        for round in 1..=o.rounds {
            let v = rt.block_on(drive(&vigil_url, Server::InProcess, batch, &o));
            report(&format!("  vigil #{round}"), batch, &v);
            vs.push(v);
            if let Some((url, child)) = &am {
                let a = rt.block_on(drive(url, Server::Child(child.0.id()), batch, &o));
                report(&format!("  am #{round}"), batch, &a);
                ams.push(a);
            }
        }
        let v = median(&vs);
        report("vigil", batch, &v);
        let a = (!ams.is_empty()).then(|| median(&ams));
        if let Some(a) = &a {
            report("alertmanager", batch, a);
        }
        rows.push((batch, v, a));
    }
    println!();
    println!("medians over {} rounds:", o.rounds);
    for (batch, v, a) in &rows {
        match a {
            Some(a) => println!(
                "batch {batch:>3}: Vigil/Alertmanager throughput ratio {:.2}, p99 ratio {:.2}, CPU per alert ratio {:.2}",
                rate(v) / rate(a).max(1e-9),
                v.p99.as_secs_f64() / a.p99.as_secs_f64().max(1e-9),
                cpu_per_alert(v) / cpu_per_alert(a).max(1e-9)
            ),
            None => println!(
                "batch {batch:>3}: Alertmanager not found at {}",
                o.alertmanager
            ),
        }
    }
    // `exit` skips destructors: stop Alertmanager and remove the data directory first, or they
    // outlive the bench (each run leaves hundreds of MB of store behind otherwise).
    drop(am);
    if let Err(e) = dir.close() {
        eprintln!("could not remove the bench's data directory: {e}");
    }
    std::process::exit(0);
}
