//! The built-in host-process policy kills a miner process by pid, and never a reused pid.

use model::{
    ActionStatus, Alert, Event, Incident, Labels, ProcessInfo, Severity, Store, TimelineKind,
};
use respond::{Engine, EngineConfig, PolicySet};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;

fn miner_alert(pid: u32, start: Option<model::Time>) -> Alert {
    let now = chrono::Utc::now();
    let mut a = Alert::new(
        Labels::from_pairs([
            ("alertname", "Cryptominer process executed"),
            ("severity", "critical"),
            ("source", "runtime"),
            (
                "tags",
                "host,container,process,cryptomining,mitre_impact,T1496",
            ),
            ("host", "vm"),
        ]),
        now,
    );
    let ev = Event {
        ts: now,
        kind: "execve".into(),
        process: Some(
            ProcessInfo {
                pid,
                name: "xmrig".into(),
                start_ts: start,
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    };
    a.evidence = Some(serde_json::to_value(&ev).unwrap());
    a
}

#[tokio::test]
async fn host_miner_process_is_killed_unless_pid_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = store::open_sqlite(dir.path().join("v.db")).await.unwrap();
    let now = chrono::Utc::now();
    let inc = store
        .create_incident(&Incident::new("m", Severity::Critical, now, now))
        .await
        .unwrap();
    let eng = Engine::new(
        EngineConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        },
        PolicySet::builtin(),
        store.clone(),
        None,
    )
    .unwrap();

    // Reused pid: the event's process started at another time. Refused, process untouched.
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let start = respond::process::process_start_time(other.id()).unwrap();
    let out = eng
        .handle_alert(
            &inc,
            &miner_alert(other.id(), Some(start - chrono::Duration::seconds(30))),
        )
        .await;
    assert_eq!(out[0].policy, "cryptominer-host-process");
    let a = &out[0].actions[0];
    assert_eq!(a.kind, "kill_process");
    assert_eq!(a.status, ActionStatus::Refused, "{a:?}");
    assert!(a.error.as_deref().unwrap().contains("reused"), "{a:?}");
    assert!(other.try_wait().unwrap().is_none());

    // The right process: killed.
    let mut miner = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let start = respond::process::process_start_time(miner.id()).unwrap();
    let out = eng
        .handle_alert(&inc, &miner_alert(miner.id(), Some(start)))
        .await;
    let a = &out[0].actions[0];
    assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
    assert_eq!(a.target, miner.id().to_string());
    assert_eq!(miner.wait().unwrap().signal(), Some(9));
    let tl = store.timeline(inc.id).await.unwrap();
    assert!(tl.iter().any(|e| e.kind == TimelineKind::Action
        && e.actor == "policy:cryptominer-host-process"
        && e.summary.contains("succeeded")));
    let _ = other.kill();
    let _ = other.wait();
}
