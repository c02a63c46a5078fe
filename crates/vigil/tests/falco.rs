//! A Falco JSON alert about a container joins the incident of that container.

mod common;

use common::{Vigil, client, eventually, get_json, tempdir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falco_alert_joins_the_container_incident() {
    let dir = tempdir();
    let vigil = Vigil::start(&dir.path().join("data"));
    let c = client();
    // A metric alert about the container opens an incident.
    let r = c
        .post(format!("{}/api/v2/alerts", vigil.url))
        .json(&json!([{
            "labels": {"alertname": "container_cpu_high", "severity": "warning",
                       "container_id": "3f2a9c1b7d4e", "container_name": "web"},
            "annotations": {"summary": "CPU above 90%"}
        }]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = vigil.url.clone();
    let first = eventually(10, || {
        let url = url.clone();
        async move {
            let l = get_json(&format!("{url}/api/v1/incidents")).await;
            l.as_array()?.first().cloned()
        }
    })
    .await
    .expect("incident for the metric alert");
    assert_eq!(first["severity"], "warning");

    // Falco's http_output JSON about the same container (Falco gives the 12-character id).
    let falco = json!({
        "hostname": "node-7",
        "output": "04:00:01.123456789: Critical Detected crypto miner (proc=xmrig container=web)",
        "priority": "Critical",
        "rule": "Detect crypto miners using the Stratum protocol",
        "source": "syscall",
        "tags": ["container", "mitre_impact"],
        "time": "2026-11-24T04:00:01.123456789Z",
        "output_fields": {
            "container.id": "3f2a9c1b7d4e",
            "container.name": "web",
            "container.image.repository": "docker.io/library/miner",
            "container.image.tag": "latest",
            "proc.name": "xmrig"
        }
    });
    let r = c
        .post(format!("{}/api/v1/falco", vigil.url))
        .json(&falco)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let body: serde_json::Value = r.json().await.unwrap();
    let fp = body["fingerprints"][0].as_str().unwrap().to_string();

    let id = first["id"].as_i64().unwrap();
    let detail = eventually(10, || {
        let url = url.clone();
        let fp = fp.clone();
        async move {
            let d = get_json(&format!("{url}/api/v1/incidents/{id}")).await;
            d["incident"]["alerts"]
                .as_array()?
                .iter()
                .any(|f| f == fp.as_str())
                .then_some(d)
        }
    })
    .await
    .expect("the Falco alert did not join the container's incident");
    let inc = &detail["incident"];
    assert_eq!(
        inc["severity"], "critical",
        "severity = highest of its alerts"
    );
    assert_eq!(inc["alerts"].as_array().unwrap().len(), 2);
    let all = get_json(&format!("{}/api/v1/incidents", vigil.url)).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "no second incident: {all}"
    );
    // The Falco alert carries the labels policies match on, and its payload as evidence.
    let falco_alert = detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["fingerprint"] == fp.as_str())
        .unwrap();
    let labels = &falco_alert["alert"]["labels"];
    assert_eq!(labels["source"], "falco");
    assert_eq!(labels["image"], "docker.io/library/miner:latest");
    assert_eq!(labels["host"], "node-7");
    assert_eq!(
        falco_alert["alert"]["annotations"]["description"],
        "Detected crypto miner (proc=xmrig container=web)"
    );
    assert_eq!(
        falco_alert["alert"]["evidence"]["output_fields"]["proc.name"],
        "xmrig"
    );
    // The attach decision is on the timeline with its reason.
    let why = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "correlation")
        .map(|e| e["summary"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>();
    assert!(
        why.iter().any(|s| s.contains("3f2a9c1b7d4e")),
        "no correlation entry names the shared container: {why:?}"
    );
}
