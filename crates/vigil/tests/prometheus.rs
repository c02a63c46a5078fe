//! Debian's Prometheus 2.42 with Vigil as its Alertmanager: the dockprom rule
//! `monitor_service_down` against the unreachable target `cadvisor:8080` reaches Vigil with the
//! labels and fingerprint Alertmanager would show, and opens an incident. Vigil requires an API
//! token here, which Prometheus sends with `authorization` in its `alertmanager_config`.

mod common;

use common::{Vigil, eventually, get_json, tempdir};
use serde_json::Value;
use std::process::{Command, Stdio};

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alert_reaches_vigil_with_alertmanager_fingerprint() {
    let Some(prometheus) = testkit::which("prometheus") else {
        testkit::skip("Debian's prometheus is not installed");
        return;
    };
    let dir = tempdir();
    let token = "prometheus-pushes-with-this-token";
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        format!("api_token: {token}\nsensor:\n  enabled: off\n"),
    )
    .unwrap();
    let vigil = Vigil::start_on(
        "127.0.0.1",
        testkit::free_port(),
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let prom_port = testkit::free_port();
    std::fs::write(
        dir.path().join("alert.rules"),
        r#"groups:
  - name: targets
    rules:
      - alert: monitor_service_down
        expr: up == 0
        for: 30s
        labels:
          severity: critical
        annotations:
          summary: "Monitor service non-operational"
          description: "Service {{ $labels.instance }} is down."
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            r#"global:
  scrape_interval: 2s
  scrape_timeout: 1s
  evaluation_interval: 2s
  external_labels:
    monitor: 'docker-host-alpha'
rule_files: ["alert.rules"]
alerting:
  alertmanagers:
    - scheme: http
      authorization:
        type: Bearer
        credentials: {}
      static_configs:
        - targets: ['127.0.0.1:{}']
scrape_configs:
  - job_name: cadvisor
    static_configs:
      - targets: ['cadvisor:8080']
"#,
            token, vigil.port
        ),
    )
    .unwrap();
    let _prom = KillOnDrop(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    let url = vigil.url.clone();
    let alert = eventually(75, || {
        let url = url.clone();
        async move {
            let alerts = get_json(&format!("{url}/api/v2/alerts")).await;
            alerts
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == "monitor_service_down")
                .cloned()
        }
    })
    .await
    .expect("Prometheus did not deliver monitor_service_down to Vigil within 75s");

    assert_eq!(alert["fingerprint"], "e960cfc9079ae255", "{alert}");
    let labels = alert["labels"].as_object().unwrap();
    let mut names: Vec<&str> = labels.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        ["alertname", "instance", "job", "monitor", "severity"]
    );
    assert_eq!(labels["instance"], "cadvisor:8080");
    assert_eq!(labels["job"], "cadvisor");
    assert_eq!(labels["monitor"], "docker-host-alpha");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(
        alert["annotations"]["description"],
        "Service cadvisor:8080 is down."
    );
    assert!(
        alert["generatorURL"].as_str().unwrap().contains("expr=up"),
        "{alert}"
    );
    assert_eq!(alert["status"]["state"], "active");

    let incident = eventually(20, || {
        let url = url.clone();
        async move {
            let list = get_json(&format!("{url}/api/v1/incidents?status=open")).await;
            list.as_array()?
                .iter()
                .find(|i| {
                    i["alerts"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|f| f == "e960cfc9079ae255"))
                })
                .cloned()
        }
    })
    .await
    .expect("no open incident holds the alert");
    assert_eq!(incident["severity"], "critical");
    let id = incident["id"].as_i64().unwrap();
    let detail: Value = get_json(&format!("{url}/api/v1/incidents/{id}")).await;
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "detection"),
        "{detail}"
    );
    // The token was needed: Prometheus' deliveries were authenticated.
    let r = common::client()
        .post(format!("{url}/api/v2/alerts"))
        .json(&serde_json::json!([{"labels": {"alertname": "x"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
