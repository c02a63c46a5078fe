//! `kill -9` of `vigil up` during a burst of intake: every alert answered 2xx is there after
//! restart, and alerts the crash left without an incident are correlated at start.

mod common;

use common::{Vigil, client, eventually, get_json, tempdir};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_intake_loses_no_acknowledged_alert() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut vigil = Vigil::start(&data);
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let url = vigil.url.clone();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let acked = acked.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            for i in 0.. {
                // Batches of 1 and of 5, each alert distinct.
                let n = if i % 2 == 0 { 1 } else { 5 };
                let batch: Vec<_> = (0..n)
                    .map(|k| {
                        json!({"labels": {"alertname": "burst", "worker": w.to_string(),
                            "seq": format!("{i}-{k}"), "instance": format!("host-{}:9100", w % 4),
                            "severity": "warning"}})
                    })
                    .collect();
                let Ok(r) = c
                    .post(format!("{url}/api/v2/alerts"))
                    .json(&batch)
                    .send()
                    .await
                else {
                    return;
                };
                if !r.status().is_success() {
                    return;
                }
                let mut a = acked.lock().unwrap();
                for k in 0..n {
                    a.insert(format!("{w}/{i}-{k}"));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    vigil.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too few alerts acknowledged before the kill: {}",
        acked.len()
    );

    let vigil = Vigil::start(&data);
    let alerts = get_json(&format!("{}/api/v1/alerts", vigil.url)).await;
    let stored: HashSet<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let l = &a["alert"]["labels"];
            format!(
                "{}/{}",
                l["worker"].as_str().unwrap(),
                l["seq"].as_str().unwrap()
            )
        })
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged alerts lost after kill -9, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // Alerts stored but not yet correlated when the process died get incidents after restart.
    let url = vigil.url.clone();
    let settled = eventually(30, || {
        let url = url.clone();
        async move {
            let u = get_json(&format!("{url}/api/v1/alerts?unassigned=true")).await;
            u.as_array()?.is_empty().then_some(())
        }
    })
    .await;
    assert!(
        settled.is_some(),
        "alerts left without an incident after restart"
    );
    // Correlation by instance: the four hosts give at most four incidents per window.
    let incidents = get_json(&format!("{}/api/v1/incidents", vigil.url)).await;
    let n = incidents.as_array().unwrap().len();
    assert!((1..=4).contains(&n), "expected 1..=4 incidents, got {n}");
}
