//! `kill -9` during a burst of writes loses nothing that was acknowledged.
//!
//! The test runs this test binary again as a child (the ignored test `durability_child`, selected
//! by name, with the store URL in an environment variable). The child writes alerts from many
//! concurrent tasks, singly and in batches, and prints `ACK <fingerprint>` after each write
//! returned `Ok`. The parent kills it with SIGKILL in the middle of the burst, reopens the store
//! and checks that every acknowledged alert is there.

use chrono::Utc;
use model::{Alert, Labels, Store, StoredAlert};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "VIGIL_STORE_DURABILITY_URL";
/// Acknowledgements to see before the kill.
const ACKS_BEFORE_KILL: usize = 2000;

fn alert(writer: usize, n: usize) -> StoredAlert {
    let labels = Labels::from_pairs([
        ("alertname", "durability".to_string()),
        ("writer", writer.to_string()),
        ("n", n.to_string()),
    ]);
    let a = Alert::new(labels, Utc::now());
    StoredAlert {
        fingerprint: a.fingerprint(),
        alert: a,
        incident_id: None,
    }
}

#[test]
#[ignore = "child process of kill9_loses_no_acknowledged_alert_*; needs VIGIL_STORE_DURABILITY_URL"]
fn durability_child() {
    let url = std::env::var(CHILD_ENV).expect("VIGIL_STORE_DURABILITY_URL names the store");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store: Arc<dyn Store> = store::open(&url).await.unwrap();
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for w in 0..24usize {
            let store = store.clone();
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                // Writers 0..16 send single alerts, the others batches of 10.
                let batch = if w < 16 { 1 } else { 10 };
                let mut n = 0;
                loop {
                    let alerts: Vec<_> = (0..batch).map(|i| alert(w, n + i)).collect();
                    n += batch;
                    store.upsert_alerts(&alerts).await.unwrap();
                    let mut o = out.lock().unwrap();
                    for a in &alerts {
                        writeln!(o, "ACK {}", a.fingerprint).unwrap();
                    }
                    o.flush().unwrap();
                }
            }));
        }
        // The writers never stop: wait for the first to fail (the parent kills us first).
        let (r, _, _) = futures::future::select_all(tasks).await;
        r.unwrap();
    });
}

fn kill9_during_burst(url: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--ignored", "--exact", "durability_child", "--nocapture"])
        .env(CHILD_ENV, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while acked.len() < ACKS_BEFORE_KILL && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(fp) = l.strip_prefix("ACK ") {
                    acked.push(fp.parse::<model::Fingerprint>().unwrap());
                }
            }
            _ => break,
        }
    }
    assert!(
        !acked.is_empty(),
        "the child acknowledged nothing before the deadline"
    );
    child.kill().unwrap(); // SIGKILL
    // Whatever the child printed before it died was acknowledged too.
    for l in lines.map_while(Result::ok) {
        if let Some(fp) = l.strip_prefix("ACK ") {
            // A line cut by the kill is not a complete acknowledgement.
            if fp.len() == 16
                && let Ok(fp) = fp.parse()
            {
                acked.push(fp);
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = store::open(url).await.unwrap();
        let mut missing = Vec::new();
        for fp in &acked {
            if store.get_alert(*fp).await.unwrap().is_none() {
                missing.push(fp.to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged alerts lost after kill -9: {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(10)]
        );
        eprintln!("kill -9: all {} acknowledged alerts present", acked.len());
    });
}

#[test]
fn kill9_loses_no_acknowledged_alert_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    kill9_during_burst(&url);
}

#[test]
fn kill9_loses_no_acknowledged_alert_sqlite_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?synchronous=full",
        dir.path().join("vigil.db").display()
    );
    kill9_during_burst(&url);
}

#[test]
fn kill9_loses_no_acknowledged_alert_sqlite_synchronous_normal() {
    // Without an fsync per commit the kernel still holds every committed WAL frame, so killing
    // the process loses nothing (only a power loss could).
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?synchronous=normal",
        dir.path().join("vigil.db").display()
    );
    kill9_during_burst(&url);
}

#[test]
fn kill9_loses_no_acknowledged_alert_postgres() {
    let pg = match testkit::postgres() {
        Ok(pg) => pg,
        Err(e) => return testkit::skip(&format!("PostgreSQL: {e}")),
    };
    kill9_during_burst(&pg.url());
}
