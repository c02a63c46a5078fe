//! `GET /api/v1/incidents/{id}/report?format=…` renders the incident report from the record.

mod common;

use common::{Vigil, client, eventually, get_json, tempdir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_endpoint_renders_every_format() {
    let dir = tempdir();
    let vigil = Vigil::start(&dir.path().join("data"));
    let c = client();
    let r = c
        .post(format!("{}/api/v2/alerts", vigil.url))
        .json(&json!([{
            "labels": {"alertname": "CryptominerContainer", "severity": "critical",
                       "container_id": "3f2a9c1b7d4e", "container_name": "miner-moneropool",
                       "image": "servethehome/monero_cpu_moneropool:latest", "host": "docker-host-alpha"},
            "annotations": {"summary": "container started from a known miner image"}
        }]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = vigil.url.clone();
    let id = eventually(10, || {
        let url = url.clone();
        async move {
            let l = get_json(&format!("{url}/api/v1/incidents")).await;
            l.as_array()?.first()?["id"].as_i64()
        }
    })
    .await
    .expect("an incident");

    let get = |format: &str| {
        let c = c.clone();
        let u = format!("{}/api/v1/incidents/{id}/report?format={format}", vigil.url);
        async move { c.get(u).send().await.unwrap() }
    };
    let md = get("md").await;
    assert_eq!(md.status(), 200);
    assert!(
        md.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = md.text().await.unwrap();
    for heading in [
        "Executive summary",
        "What was affected",
        "Timeline",
        "Lessons learned",
        "Metrics",
    ] {
        assert!(md.contains(heading), "markdown lacks {heading}:\n{md}");
    }
    assert!(md.contains("servethehome/monero_cpu_moneropool"), "{md}");

    let html = get("html").await;
    assert_eq!(html.status(), 200);
    let html = html.text().await.unwrap();
    assert!(html.contains("<svg"), "HTML has the timeline chart");

    let pdf = get("pdf").await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "PDF header");

    let js: serde_json::Value = get("json").await.json().await.unwrap();
    assert!(js.is_object(), "{js}");

    let bad = get("docx").await;
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["field"], "format", "{body}");

    let missing = c
        .get(format!("{}/api/v1/incidents/999/report", vigil.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
