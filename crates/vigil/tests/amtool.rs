//! Debian's `amtool` 0.25 lists and adds alerts against Vigil.

mod common;

use common::{Vigil, get_json, tempdir};
use std::process::Command;

fn amtool(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .expect("run amtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_adds_and_queries_alerts() {
    if testkit::which("amtool").is_none() {
        testkit::skip("Debian's amtool (prometheus-alertmanager) is not installed");
        return;
    }
    let dir = tempdir();
    let vigil = Vigil::start(&dir.path().join("data"));
    let (ok, out, err) = amtool(
        &vigil.url,
        &[
            "alert",
            "add",
            "disk_full",
            "severity=warning",
            "instance=db-1:9100",
            "--annotation=summary=Disk almost full",
        ],
    );
    assert!(ok, "amtool alert add failed: {out} {err}");
    let (ok, out, err) = amtool(
        &vigil.url,
        &[
            "alert",
            "add",
            "cpu_hot",
            "severity=critical",
            "instance=web-1:9100",
        ],
    );
    assert!(ok, "amtool alert add failed: {out} {err}");

    // Stored durably and visible through Vigil's own API too.
    let alerts = get_json(&format!("{}/api/v1/alerts", vigil.url)).await;
    assert_eq!(alerts.as_array().unwrap().len(), 2, "{alerts}");

    let (ok, out, err) = amtool(&vigil.url, &["alert", "query"]);
    assert!(ok, "amtool alert query failed: {err}");
    assert!(
        out.contains("disk_full") && out.contains("cpu_hot"),
        "{out}"
    );
    assert!(out.contains("Disk almost full"), "{out}");

    let (ok, out, err) = amtool(&vigil.url, &["alert", "query", "severity=critical"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("cpu_hot") && !out.contains("disk_full"),
        "{out}"
    );

    let (ok, out, err) = amtool(&vigil.url, &["alert", "query", "instance=~db-.*"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("disk_full") && !out.contains("cpu_hot"),
        "{out}"
    );

    let (ok, out, err) = amtool(
        &vigil.url,
        &["-o", "json", "alert", "query", "alertname!=cpu_hot"],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("amtool JSON");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{out}");
    assert_eq!(arr[0]["labels"]["alertname"], "disk_full");
    assert_eq!(arr[0]["status"]["state"], "active");
    assert_eq!(arr[0]["fingerprint"].as_str().unwrap().len(), 16, "{out}");
}
