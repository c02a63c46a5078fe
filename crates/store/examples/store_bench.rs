//! Store write benchmark: durable alert upserts per second.
//!
//! ```text
//! cargo run --release -p vigil-store --example store_bench [-- STORE_URL [SECONDS]]
//! ```
//!
//! Without a URL it uses a fresh SQLite file in a temporary directory. Two runs: single-alert
//! upserts from 32 concurrent tasks, and batches of 100 alerts from 4 concurrent tasks. Each run
//! lasts SECONDS (default 5) and prints upserts/s, the p99 latency of one call and the CPU time
//! per upsert (which, unlike the rate, hardly depends on what else the machine is doing).

use chrono::Utc;
use model::{Alert, Labels, Store, StoredAlert};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn alert(run: &str, task: usize, n: usize) -> StoredAlert {
    let labels = Labels::from_pairs([
        ("alertname", "bench".to_string()),
        ("run", run.to_string()),
        ("instance", format!("target-{task}:9100")),
        ("n", n.to_string()),
        ("severity", "warning".to_string()),
    ]);
    let mut a = Alert::new(labels, Utc::now());
    a.annotations.set("summary", "benchmark alert");
    StoredAlert {
        fingerprint: a.fingerprint(),
        alert: a,
        incident_id: None,
    }
}

/// CPU time (user + system) this process has used so far, from /proc/self/stat; `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

async fn run(store: Arc<dyn Store>, name: &str, concurrency: usize, batch: usize, secs: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = cpu_time();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let store = store.clone();
        let stop = stop.clone();
        let name = name.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let alerts: Vec<_> = (0..batch).map(|i| alert(&name, task, n + i)).collect();
                n += batch;
                let t = Instant::now();
                store.upsert_alerts(&alerts).await.expect("upsert");
                latencies.push(t.elapsed());
            }
            (n, latencies)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut lat = Vec::new();
    for t in tasks {
        let (n, l) = t.await.expect("task");
        total += n;
        lat.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_time()) {
        (Some(a), Some(b)) if total > 0 => {
            format!(
                "{:>6.1} µs CPU/upsert",
                (b - a).as_secs_f64() * 1e6 / total as f64
            )
        }
        _ => String::new(),
    };
    lat.sort();
    let p99 = lat
        .get((lat.len() * 99 / 100).min(lat.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    println!(
        "{name:<28} {:>10.0} upserts/s   {:>8} calls   p99 {:>8.2} ms   {cpu}",
        total as f64 / elapsed,
        lat.len(),
        p99.as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = args
        .next()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let store = store::open(&url).await.expect("open store");
    println!("store: {url} ({secs} s per run, durable: every call waits for its commit)");
    run(store.clone(), "batch=1   concurrency=32", 32, 1, secs).await;
    run(store.clone(), "batch=100 concurrency=4", 4, 100, secs).await;
    run(store, "batch=100 concurrency=1", 1, 100, secs).await;
}
