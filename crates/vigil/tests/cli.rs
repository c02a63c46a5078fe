//! The `vigil incidents` and `vigil alerts` commands against a running Vigil: tables by default,
//! `--json` for scripts, `--server` / `VIGIL_URL`, `--token` / `VIGIL_TOKEN`.

mod common;

use common::{Vigil, bin, client, eventually, get_json, tempdir};
use serde_json::{Value, json};
use std::process::Command;

fn vigil(url: &str, token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(bin());
    c.args(args).env("VIGIL_URL", url).env_remove("VIGIL_TOKEN");
    if let Some(t) = token {
        c.env("VIGIL_TOKEN", t);
    }
    let out = c.output().expect("run vigil");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_and_alerts_commands() {
    let dir = tempdir();
    let cfg = dir.path().join("vigil.yml");
    let token = "cli-test-token-0123";
    std::fs::write(
        &cfg,
        format!("api_token: {token}\nsensor:\n  enabled: off\n"),
    )
    .unwrap();
    let v = Vigil::start_on(
        "127.0.0.1",
        testkit::free_port(),
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let url = v.url.clone();
    let r = client()
        .post(format!("{url}/api/v2/alerts"))
        .bearer_auth(token)
        .json(
            &json!([{"labels": {"alertname": "monitor_service_down", "instance": "cadvisor:8080",
            "job": "cadvisor", "monitor": "docker-host-alpha", "severity": "critical"}}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u = url.clone();
    let id = eventually(10, || {
        let u = u.clone();
        async move {
            let l = get_json(&format!("{u}/api/v1/incidents")).await;
            l.as_array()?.first()?["id"].as_i64()
        }
    })
    .await
    .expect("incident");

    let (ok, out, err) = vigil(&url, None, &["incidents", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("INC-{id}")) && out.contains("monitor_service_down"),
        "{out}"
    );
    let (ok, out, err) = vigil(
        &url,
        None,
        &["incidents", "list", "--json", "--status", "open"],
    );
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (ok, out, err) = vigil(&url, None, &["alerts", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("e960cfc9079ae255") && out.contains("firing"),
        "{out}"
    );

    // Changes need the token.
    let (ok, _, err) = vigil(&url, None, &["incidents", "ack", &id.to_string()]);
    assert!(!ok);
    assert!(err.contains("401") && err.contains("token"), "{err}");
    let t = Some(token);
    let sid = format!("INC-{id}");
    for args in [
        vec!["incidents", "ack", &sid, "--actor", "alice"],
        vec!["incidents", "assign", &sid, "bob", "--actor", "alice"],
        vec![
            "incidents",
            "note",
            &sid,
            "cadvisor",
            "container",
            "restarted",
        ],
        vec![
            "incidents",
            "edit",
            &sid,
            "--field",
            "impact",
            "--value",
            "no metrics for 5 minutes",
        ],
        vec!["incidents", "status", &sid, "contained"],
        vec!["incidents", "resolve", &sid],
    ] {
        let (ok, out, err) = vigil(&url, t, &args);
        assert!(ok, "{args:?}: {out} {err}");
    }
    // An illegal step names the lifecycle.
    let (ok, _, err) = vigil(
        &url,
        t,
        &["incidents", "status", &sid, "open", "--actor", "x"],
    );
    assert!(ok, "resolved → open reopens: {err}");
    let (ok, _, err) = vigil(&url, t, &["incidents", "status", &sid, "open"]);
    assert!(!ok);
    assert!(err.contains("409"), "{err}");

    let (ok, out, err) = vigil(&url, None, &["incidents", "show", &sid]);
    assert!(ok, "{err}");
    for needle in [
        "bob",
        "cadvisor container restarted",
        "no metrics for 5 minutes",
        "Timeline",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    let (ok, out, _) = vigil(&url, None, &["incidents", "show", &sid, "--json"]);
    assert!(ok);
    let d: Value = serde_json::from_str(&out).unwrap();
    let inc = &d["incident"];
    assert_eq!(inc["commander"], "bob");
    assert_eq!(inc["status"], "open");
    assert!(inc["acknowledged_at"].is_string() && inc["contained_at"].is_string());
    assert_eq!(inc["narrative"]["impact"], "no metrics for 5 minutes");
    assert!(d["metrics"]["time_to_acknowledge"].is_number());
    assert!(inc["narrative"]["executive_summary"].is_null());

    // Accepting the drafted executive summary stores Vigil's draft as written text.
    let (ok, out, err) = vigil(
        &url,
        t,
        &["incidents", "accept", &sid, "--field", "executive_summary"],
    );
    assert!(ok, "accept: {out} {err}");
    let (ok, out, _) = vigil(&url, None, &["incidents", "show", &sid, "--json"]);
    assert!(ok);
    let d: Value = serde_json::from_str(&out).unwrap();
    let summary = d["incident"]["narrative"]["executive_summary"]
        .as_str()
        .expect("accepted summary stored");
    assert!(summary.contains("Vigil"), "{summary}");
    let (ok, _, err) = vigil(&url, t, &["incidents", "accept", &sid, "--field", "bogus"]);
    assert!(!ok);
    assert!(err.contains("unknown field"), "{err}");

    // An unreachable server is explained.
    let (ok, _, err) = vigil("http://127.0.0.1:1", None, &["incidents", "list"]);
    assert!(!ok);
    assert!(err.contains("cannot reach Vigil"), "{err}");
}
