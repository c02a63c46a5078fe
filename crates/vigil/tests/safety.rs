//! Safety: an API token on non-loopback addresses, 413 for big bodies, 400 naming the field for
//! malformed JSON, nothing half-written; `vigil config check` names the place of an error.

mod common;

use common::{Vigil, bin, client, get_json, tempdir};
use serde_json::{Value, json};

fn token_from_banner(banner: &[String]) -> Option<String> {
    banner
        .iter()
        .find(|l| l.contains("API token (generated"))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_requires_a_token_for_changes() {
    let dir = tempdir();
    let port = testkit::free_port();
    let data = dir.path().join("data");
    let mut vigil = Vigil::start_on("0.0.0.0", port, &data, &[]);
    let token = token_from_banner(&vigil.banner)
        .unwrap_or_else(|| panic!("no generated token printed: {:?}", vigil.banner));
    assert!(token.len() >= 32, "{token}");
    let c = client();
    let alert = json!([{"labels": {"alertname": "x", "instance": "a:1"}}]);
    let post = |t: Option<&str>| {
        let mut r = c.post(format!("{}/api/v2/alerts", vigil.url)).json(&alert);
        if let Some(t) = t {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = post(None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(post(Some("wrong-token-123")).await.unwrap().status(), 401);
    assert_eq!(post(Some(&token)).await.unwrap().status(), 200);
    // Basic auth with the token as password (senders that only take credentials in a URL).
    let r = c
        .post(format!("{}/api/v2/alerts", vigil.url))
        .basic_auth("falco", Some(&token))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Reads need no token.
    let alerts = get_json(&format!("{}/api/v2/alerts", vigil.url)).await;
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    // Every mutating Vigil API endpoint is guarded too.
    for (path, body) in [
        ("/api/v1/incidents/1/ack", json!({})),
        ("/api/v1/incidents/1/notes", json!({"text": "x"})),
        ("/api/v1/falco", json!({"rule": "r", "priority": "Warning"})),
    ] {
        let r = c
            .post(format!("{}{path}", vigil.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    assert_eq!(vigil.stop(), Some(0), "graceful shutdown on SIGTERM");

    // The generated token is kept: printed once, reused after a restart.
    let vigil = Vigil::start_on("0.0.0.0", port, &data, &[]);
    assert!(
        token_from_banner(&vigil.banner).is_none(),
        "{:?}",
        vigil.banner
    );
    let r = c
        .post(format!("{}/api/v2/alerts", vigil.url))
        .bearer_auth(&token)
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn post_raw(url: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_bodies_413_bad_json_400_nothing_half_written() {
    let dir = tempdir();
    let cfg = dir.path().join("vigil.yml");
    std::fs::write(
        &cfg,
        "max_body_bytes: 4096\nresolve_timeout: 1m\nsensor:\n  enabled: off\n",
    )
    .unwrap();
    let vigil = Vigil::start_on(
        "127.0.0.1",
        testkit::free_port(),
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let url = vigil.url.clone();

    let big = json!([{"labels": {"alertname": "x"}, "annotations": {"d": "y".repeat(5000)}}]);
    let (st, body) = post_raw(&url, "/api/v2/alerts", big.to_string().into_bytes()).await;
    assert_eq!(st, 413, "{body}");

    let (st, body) = post_raw(
        &url,
        "/api/v2/alerts",
        b"[{\"labels\": {\"a\": 1}}]".to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(body["field"], "[0].labels.a", "{body}");

    let (st, body) = post_raw(
        &url,
        "/api/v2/alerts",
        b"[{\"labels\": {\"a\": \"b\"}".to_vec(),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");

    // One bad alert refuses the whole batch: the good first alert is not stored either.
    let batch = json!([
        {"labels": {"alertname": "good"}},
        {"labels": {"alertname": "bad"}, "startsAt": "not a time"}
    ]);
    let (st, body) = post_raw(&url, "/api/v2/alerts", batch.to_string().into_bytes()).await;
    assert_eq!(st, 400);
    assert_eq!(body["field"], "[1].startsAt", "{body}");
    let (st, body) = post_raw(
        &url,
        "/api/v1/falco",
        br#"{"priority": "Warning"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(body["error"].as_str().unwrap().contains("rule"), "{body}");
    let alerts = get_json(&format!("{url}/api/v1/alerts")).await;
    assert_eq!(alerts.as_array().unwrap().len(), 0, "{alerts}");

    // Vigil API errors name the field too.
    let (st, body) = post_raw(
        &url,
        "/api/v1/incidents/1/status",
        br#"{"state": "open"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert!(body["error"].as_str().unwrap().contains("state"), "{body}");
    let (st, _) = post_raw(&url, "/api/v1/incidents/999/ack", b"{}".to_vec()).await;
    assert_eq!(st, 404);
    // Action endpoints reach the response engine, which names what is missing.
    let (st, body) = post_raw(&url, "/api/v1/actions/999/approve", b"{}".to_vec()).await;
    assert_eq!(st, 404, "{body}");
    let (st, body) = post_raw(&url, "/api/v1/incidents/x/actions", b"{}".to_vec()).await;
    assert_eq!(st, 400);
    assert_eq!(body["field"], "id", "{body}");
}

#[test]
fn config_check_names_the_place() {
    let dir = tempdir();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "listen: 127.0.0.1:9093\nresolve_timeout: 5m\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "listen: 127.0.0.1:9093\nsensor:\n  enabeld: on\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");
    assert!(err.contains("enabeld"), "{err}");

    // The rule and policy files a valid configuration names are checked too, with their places.
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: broken\n  desc: x\n  condition: proc.name = (\n  output: x\n  priority: WARNING\n",
    )
    .unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "policies:\n  - name: p\n    actions: 7\n").unwrap();
    let cfg = dir.path().join("refs.yml");
    std::fs::write(
        &cfg,
        format!(
            "detection:\n  rules: [{}]\nresponse:\n  policies: [{}]\n",
            rules.display(),
            policy.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", rules.display())), "{err}");
    assert!(err.contains(&policy.display().to_string()), "{err}");
}
