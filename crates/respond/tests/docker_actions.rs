//! The response engine against a real dockerd and a real (SQLite) store.

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use model::{
    ActionStatus, Alert, ContainerInfo, Event, EventSource, Incident, Labels, ProcessInfo,
    Severity, Store, StoredAlert, TimelineKind,
};
use respond::{Engine, EngineConfig, GuardConfig, IncidentHook, PolicySet};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Env {
    docker: Docker,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
}

async fn env() -> Option<Env> {
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no dockerd: {e}"));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store::open_sqlite(dir.path().join("vigil.db"))
        .await
        .unwrap();
    let docker = respond::docker::connect().await.unwrap();
    Some(Env { docker, store, dir })
}

fn image(tag: &str) {
    testkit::busybox_image(tag).unwrap();
}

async fn start(d: &Docker, image: &str, name: &str, labels: &[(&str, &str)]) -> String {
    let _ = d
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo miner starting; touch /tmp/dropped; exec sleep 300".into(),
        ]),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ),
        ..Default::default()
    };
    let id = d
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await
        .unwrap()
        .id;
    d.start_container(&id, None).await.unwrap();
    // let the shell write its log line and file
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    id
}

async fn running(d: &Docker, id: &str) -> Option<bool> {
    d.inspect_container(id, None)
        .await
        .ok()
        .map(|i| i.state.and_then(|s| s.running).unwrap_or(false))
}

async fn cleanup(d: &Docker, ids: &[&str]) {
    for id in ids {
        let _ = d
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
}

async fn incident(store: &Arc<dyn Store>) -> Incident {
    let now = chrono::Utc::now();
    store
        .create_incident(&Incident::new("miner", Severity::Critical, now, now))
        .await
        .unwrap()
}

fn miner_alert(id: &str, name: &str, image: &str) -> Alert {
    let now = chrono::Utc::now();
    let mut a = Alert::new(
        Labels::from_pairs([
            ("alertname", "Known Cryptominer Process Executed"),
            ("severity", "critical"),
            ("tags", "T1496,process,container"),
            ("source", "runtime"),
            ("container_id", &id[..12]),
            ("container_name", name),
            ("image", image),
        ]),
        now,
    );
    let (repo, tag) = ContainerInfo::split_image(image);
    let ev = Event {
        ts: now,
        source: EventSource::Syscall,
        kind: "execve".into(),
        process: Some(
            ProcessInfo {
                pid: 4242,
                name: "xmrig".into(),
                ..Default::default()
            }
            .into(),
        ),
        container: Some(
            ContainerInfo {
                id: id.to_string(),
                name: name.to_string(),
                image: image.to_string(),
                image_repository: repo,
                image_tag: tag,
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    };
    a.evidence = Some(serde_json::to_value(&ev).unwrap());
    a
}

async fn attach(store: &Arc<dyn Store>, inc: &Incident, a: &Alert) {
    store
        .upsert_alerts(&[StoredAlert {
            fingerprint: a.fingerprint(),
            alert: a.clone(),
            incident_id: Some(inc.id),
        }])
        .await
        .unwrap();
}

#[derive(Default)]
struct Hook(Mutex<Vec<(i64, String)>>);

#[async_trait::async_trait]
impl IncidentHook for Hook {
    async fn contained(&self, incident_id: i64, actor: &str, _summary: &str) {
        self.0
            .lock()
            .unwrap()
            .push((incident_id, actor.to_string()));
    }
}

fn engine(env: &Env, policies: PolicySet, guard: GuardConfig, dry_run: bool) -> Engine {
    Engine::new(
        EngineConfig {
            data_dir: env.dir.path().to_path_buf(),
            dry_run,
            guardrails: guard,
        },
        policies,
        env.store.clone(),
        Some(env.docker.clone()),
    )
    .unwrap()
}

#[tokio::test]
async fn default_policy_contains_miner_with_evidence_and_blocks_image() {
    let Some(env) = env().await else { return };
    let img = "vigil-respond-test/miner-a:latest";
    image(img);
    let d = &env.docker;
    let id = start(d, img, "vigil-respond-miner-a", &[]).await;
    let inc = incident(&env.store).await;
    let alert = miner_alert(&id, "vigil-respond-miner-a", img);
    attach(&env.store, &inc, &alert).await;
    let eng = engine(&env, PolicySet::builtin(), GuardConfig::default(), false);
    let hook = Arc::new(Hook::default());
    eng.set_hook(hook.clone());

    let out = eng.handle_alert(&inc, &alert).await;
    assert_eq!(out.len(), 1);
    let run = &out[0];
    assert_eq!(run.policy, "cryptominer-containment");
    let kinds: Vec<_> = run.actions.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "evidence",
            "kill",
            "evidence",
            "block_image",
            "remove_image"
        ]
    );
    for a in &run.actions {
        assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
        assert_eq!(a.actor, "policy:cryptominer-containment");
        assert!(a.id > 0);
    }
    assert!(run.contained);
    assert_eq!(
        hook.0.lock().unwrap().as_slice(),
        &[(inc.id, "policy:cryptominer-containment".to_string())]
    );
    // container and image are gone
    assert_eq!(running(d, &id).await, None);
    assert!(d.inspect_image(img).await.is_err());

    // evidence: files exist under data_dir/evidence/<incident>/ and hash as recorded
    let ev = env.store.list_evidence(inc.id).await.unwrap();
    let kinds: Vec<_> = ev.iter().map(|e| e.kind.as_str()).collect();
    for k in ["event", "inspect", "logs", "processes", "diff"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    for e in &ev {
        assert!(
            e.path.starts_with(&format!("evidence/{}/", inc.id)),
            "{}",
            e.path
        );
        let bytes = std::fs::read(env.dir.path().join(&e.path)).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), e.sha256);
        assert_eq!(bytes.len() as u64, e.size);
    }
    let logs = ev.iter().find(|e| e.kind == "logs").unwrap();
    let text = std::fs::read_to_string(env.dir.path().join(&logs.path)).unwrap();
    assert!(text.contains("miner starting"), "{text}");
    let diff = ev.iter().find(|e| e.kind == "diff").unwrap();
    let text = std::fs::read_to_string(env.dir.path().join(&diff.path)).unwrap();
    assert!(text.contains("/tmp/dropped"), "{text}");
    let procs = ev.iter().find(|e| e.kind == "processes").unwrap();
    let text = std::fs::read_to_string(env.dir.path().join(&procs.path)).unwrap();
    assert!(text.contains("sleep"), "{text}");

    // audit: every action requested, started, succeeded, in order
    let tl = env.store.timeline(inc.id).await.unwrap();
    let actions: Vec<_> = tl
        .iter()
        .filter(|e| e.kind == TimelineKind::Action)
        .collect();
    assert_eq!(
        actions.len(),
        15,
        "{:#?}",
        tl.iter().map(|e| &e.summary).collect::<Vec<_>>()
    );
    assert!(
        actions[3].summary.starts_with("kill container"),
        "{}",
        actions[3].summary
    );
    assert!(actions[3].summary.ends_with("requested"));
    assert!(actions[4].summary.contains("started"));
    assert!(actions[5].summary.contains("succeeded"));
    assert!(actions[5].data["duration_ms"].as_f64().is_some());
    assert!(tl.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(tl.iter().any(|e| e.kind == TimelineKind::Evidence));
    let stored = env.store.list_actions(Some(inc.id), None).await.unwrap();
    assert_eq!(stored.len(), 5);
    for a in &stored {
        let steps: Vec<&str> = tl
            .iter()
            .filter(|e| e.data["action_id"].as_i64() == Some(a.id))
            .filter_map(|e| e.data["status"].as_str())
            .collect();
        assert_eq!(
            steps,
            ["requested", "running", "succeeded"],
            "action {}",
            a.id
        );
    }
    assert!(
        stored
            .iter()
            .all(|a| a.started_at.is_some() && a.finished_at.is_some())
    );

    // the same alert again: cooldown, nothing done
    let again = eng.handle_alert(&inc, &alert).await;
    assert!(again[0].skipped.is_some() && again[0].actions.is_empty());

    // blocked: a container started later from the same repository (any tag) is killed
    let img2 = "vigil-respond-test/miner-a:v2";
    image(img2);
    let id2 = start(d, img2, "vigil-respond-miner-a2", &[]).await;
    let killed = eng
        .on_container_start(&id2, img2, "", chrono::Utc::now())
        .await
        .expect("blocked image must be acted on");
    assert_eq!(killed.status, ActionStatus::Succeeded, "{killed:?}");
    assert_eq!(killed.incident_id, Some(inc.id));
    assert_eq!(running(d, &id2).await, Some(false));
    // an unblocked image is left alone
    let img3 = "vigil-respond-test/innocent:latest";
    image(img3);
    let id3 = start(d, img3, "vigil-respond-innocent", &[]).await;
    assert!(
        eng.on_container_start(&id3, img3, "", chrono::Utc::now())
            .await
            .is_none()
    );
    assert_eq!(running(d, &id3).await, Some(true));
    cleanup(d, &[&id2, &id3]).await;
    let _ = d
        .remove_image(
            img3,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;

    let _ = d
        .remove_image(
            img2,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

const GUARDED: &str = r#"
policies:
  - name: dry
    match: {labels: ['alertname="dry"']}
    dry_run: true
    actions: [{kind: kill}]
  - name: kill-it
    match: {labels: ['alertname=~"kill|protect"']}
    cooldown: 0s
    actions: [{kind: kill}]
  - name: approve-first
    match: {labels: ['alertname="approve"']}
    actions:
      - kind: pause
        approval: required
      - kind: stop
        params: {timeout: 1}
  - name: stop-on-fail
    match: {labels: ['alertname="chain"']}
    actions:
      - kind: unpause
      - kind: kill
"#;

fn named(a: &Alert, name: &str) -> Alert {
    let mut a = a.clone();
    a.labels.set("alertname", name);
    a
}

#[tokio::test]
async fn guardrails_dry_run_protection_changed_target_rate_limit() {
    let Some(env) = env().await else { return };
    let img = "vigil-respond-test/guard:latest";
    image(img);
    let d = &env.docker;
    let mut policies = PolicySet::default();
    policies.add_yaml("guard.yaml", GUARDED).unwrap();
    let eng = engine(
        &env,
        policies,
        GuardConfig {
            protect_containers: vec!["*-db".into()],
            max_actions_per_incident_per_minute: 2,
            ..Default::default()
        },
        false,
    );
    let inc = incident(&env.store).await;

    // dry run: recorded, nothing done
    let id = start(d, img, "vigil-respond-guard-1", &[]).await;
    let a = miner_alert(&id, "vigil-respond-guard-1", img);
    let out = eng.handle_alert(&inc, &named(&a, "dry")).await;
    assert_eq!(out[0].actions[0].status, ActionStatus::DryRun);
    assert!(!out[0].contained);
    assert_eq!(running(d, &id).await, Some(true));

    // protected by label
    let p1 = start(
        d,
        img,
        "vigil-respond-guard-2",
        &[("vigil.protect", "true")],
    )
    .await;
    let out = eng
        .handle_alert(
            &inc,
            &named(&miner_alert(&p1, "vigil-respond-guard-2", img), "protect"),
        )
        .await;
    let act = &out[0].actions[0];
    assert_eq!(act.status, ActionStatus::Refused);
    assert!(
        act.error.as_deref().unwrap().contains("vigil.protect"),
        "{act:?}"
    );
    assert_eq!(running(d, &p1).await, Some(true));
    // protected by pattern
    let p2 = start(d, img, "vigil-respond-guard-db", &[]).await;
    let out = eng
        .handle_alert(
            &inc,
            &named(&miner_alert(&p2, "vigil-respond-guard-db", img), "kill"),
        )
        .await;
    assert_eq!(out[0].actions[0].status, ActionStatus::Refused);
    assert_eq!(running(d, &p2).await, Some(true));

    // target changed: the alert saw another image under this container id
    let mut changed = named(&a, "kill");
    let mut ev: Event = serde_json::from_value(changed.evidence.clone().unwrap()).unwrap();
    std::sync::Arc::make_mut(ev.container.as_mut().unwrap()).image = "someone/else:1".into();
    changed.evidence = Some(serde_json::to_value(&ev).unwrap());
    changed.labels.set("image", "someone/else:1");
    let out = eng.handle_alert(&inc, &changed).await;
    let act = &out[0].actions[0];
    assert_eq!(act.status, ActionStatus::Refused);
    assert!(
        act.error.as_deref().unwrap().contains("target changed"),
        "{act:?}"
    );
    // target changed: container created after the alert fired (name reused)
    let mut old = named(&a, "kill");
    old.starts_at -= chrono::Duration::seconds(60);
    old.labels.set("container_id", "");
    let mut ev: Event = serde_json::from_value(old.evidence.clone().unwrap()).unwrap();
    std::sync::Arc::make_mut(ev.container.as_mut().unwrap()).id = String::new();
    old.evidence = Some(serde_json::to_value(&ev).unwrap());
    let out = eng.handle_alert(&inc, &old).await;
    let act = &out[0].actions[0];
    assert_eq!(act.status, ActionStatus::Refused, "{act:?}");
    assert!(act.error.as_deref().unwrap().contains("created"), "{act:?}");
    assert_eq!(running(d, &id).await, Some(true));

    // rate limit: 2 destructive actions per incident per minute
    let k1 = start(d, img, "vigil-respond-guard-k1", &[]).await;
    let k2 = start(d, img, "vigil-respond-guard-k2", &[]).await;
    let k3 = start(d, img, "vigil-respond-guard-k3", &[]).await;
    let mut st = Vec::new();
    for (k, n) in [(&k1, "k1"), (&k2, "k2"), (&k3, "k3")] {
        let al = named(
            &miner_alert(k, &format!("vigil-respond-guard-{n}"), img),
            "kill",
        );
        st.push(eng.handle_alert(&inc, &al).await[0].actions[0].clone());
    }
    assert_eq!(st[0].status, ActionStatus::Succeeded);
    assert_eq!(st[1].status, ActionStatus::Succeeded);
    assert_eq!(st[2].status, ActionStatus::Refused);
    assert!(st[2].error.as_deref().unwrap().contains("rate limit"));
    assert_eq!(running(d, &k3).await, Some(true));

    // a failed action stops the policy unless ignore_errors: unpause of a running container fails
    let inc2 = incident(&env.store).await;
    let out = eng.handle_alert(&inc2, &named(&a, "chain")).await;
    assert_eq!(out[0].actions.len(), 1);
    assert_eq!(out[0].actions[0].status, ActionStatus::Failed);
    assert!(out[0].actions[0].error.is_some());
    let tl = env.store.timeline(inc2.id).await.unwrap();
    assert!(
        tl.last()
            .unwrap()
            .summary
            .contains("1 remaining action(s) not run")
    );
    assert_eq!(running(d, &id).await, Some(true));

    cleanup(d, &[&id, &p1, &p2, &k1, &k2, &k3]).await;
    let _ = d
        .remove_image(
            img,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

#[tokio::test]
async fn approval_waits_then_runs_rest_and_deny_cancels() {
    let Some(env) = env().await else { return };
    let img = "vigil-respond-test/approve:latest";
    image(img);
    let d = &env.docker;
    let mut policies = PolicySet::default();
    policies.add_yaml("approve.yaml", GUARDED).unwrap();
    let eng = engine(&env, policies, GuardConfig::default(), false);
    let inc = incident(&env.store).await;
    let id = start(d, img, "vigil-respond-approve-1", &[]).await;
    let out = eng
        .handle_alert(
            &inc,
            &named(&miner_alert(&id, "vigil-respond-approve-1", img), "approve"),
        )
        .await;
    let waiting = &out[0].actions[0];
    assert_eq!(out[0].actions.len(), 1);
    assert_eq!(waiting.status, ActionStatus::AwaitingApproval);
    assert_eq!(running(d, &id).await, Some(true));
    let listed = env
        .store
        .list_actions(Some(inc.id), Some(ActionStatus::AwaitingApproval))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    let approved = eng.approve(waiting.id, "alice").await.unwrap();
    assert_eq!(approved.status, ActionStatus::Succeeded);
    assert_eq!(approved.decided_by.as_deref(), Some("alice"));
    // the rest of the policy (stop) ran after the approved pause
    let all = env.store.list_actions(Some(inc.id), None).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].kind, "stop");
    assert_eq!(all[1].status, ActionStatus::Succeeded, "{:?}", all[1]);
    assert_eq!(running(d, &id).await, Some(false));
    // approving twice is a conflict
    assert!(matches!(
        eng.approve(waiting.id, "alice").await,
        Err(respond::EngineError::Conflict(_))
    ));
    let tl = env.store.timeline(inc.id).await.unwrap();
    assert!(
        tl.iter()
            .any(|e| e.actor == "alice" && e.summary.contains("approved by alice"))
    );

    // deny: nothing runs
    let id2 = start(d, img, "vigil-respond-approve-2", &[]).await;
    let out = eng
        .handle_alert(
            &inc,
            &named(
                &miner_alert(&id2, "vigil-respond-approve-2", img),
                "approve",
            ),
        )
        .await;
    let denied = eng.deny(out[0].actions[0].id, "bob").await.unwrap();
    assert_eq!(denied.status, ActionStatus::Denied);
    assert_eq!(running(d, &id2).await, Some(true));
    let tl = env.store.timeline(inc.id).await.unwrap();
    assert!(
        tl.last()
            .unwrap()
            .summary
            .contains("1 remaining action(s) of the policy cancelled")
    );
    assert!(matches!(
        eng.approve(999_999, "x").await,
        Err(respond::EngineError::NotFound { .. })
    ));
    cleanup(d, &[&id, &id2]).await;
    let _ = d
        .remove_image(
            img,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

#[tokio::test]
async fn people_act_quarantine_redeploy_evidence_export_stop() {
    let Some(env) = env().await else { return };
    let img = "vigil-respond-test/person:latest";
    let replacement = "vigil-respond-test/person:fixed";
    image(img);
    image(replacement);
    let d = &env.docker;
    let eng = engine(&env, PolicySet::builtin(), GuardConfig::default(), false);
    let hook = Arc::new(Hook::default());
    eng.set_hook(hook.clone());
    let inc = incident(&env.store).await;
    let id = start(d, img, "vigil-respond-person-1", &[]).await;

    // bad requests name the field
    let e = eng
        .request(inc.id, "explode", &id, serde_json::json!({}), "carol")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("kind"), "{e}");
    let e = eng
        .request(
            inc.id,
            "stop",
            &id,
            serde_json::json!({"timeout": "x"}),
            "carol",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timeout"), "{e}");
    assert!(matches!(
        eng.request(987_654, "stop", &id, serde_json::json!({}), "carol")
            .await,
        Err(respond::EngineError::NotFound {
            what: "incident",
            ..
        })
    ));

    // evidence with export
    let a = eng
        .request(
            inc.id,
            "evidence",
            &id,
            serde_json::json!({"collect": ["inspect", "export"]}),
            "carol",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
    assert_eq!(a.actor, "carol");
    let ev = env.store.list_evidence(inc.id).await.unwrap();
    let export = ev.iter().find(|e| e.kind == "export").unwrap();
    assert!(
        export.size > 100_000,
        "busybox rootfs export is large: {}",
        export.size
    );

    // quarantine into an isolated network
    let net = "vigil-respond-test-isolated";
    let a = eng
        .request(
            inc.id,
            "quarantine",
            &id,
            serde_json::json!({"network": net}),
            "carol",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
    let i = d.inspect_container(&id, None).await.unwrap();
    let nets: Vec<String> = i
        .network_settings
        .unwrap()
        .networks
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(nets, [net.to_string()]);
    let n = d.inspect_network(net, None).await.unwrap();
    assert_eq!(n.internal, Some(true));
    // quarantine is containment, and the incident has no matched alerts: contained
    assert_eq!(hook.0.lock().unwrap().len(), 1);

    // redeploy with a replacement image: same name, new container, old one gone
    let a = eng
        .request(
            inc.id,
            "redeploy",
            "vigil-respond-person-1",
            serde_json::json!({"image": replacement, "timeout": 1}),
            "carol",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
    let new = d
        .inspect_container("vigil-respond-person-1", None)
        .await
        .unwrap();
    assert_ne!(new.id.as_deref(), Some(id.as_str()));
    assert_eq!(new.config.unwrap().image.as_deref(), Some(replacement));
    assert_eq!(new.state.unwrap().running, Some(true));
    assert!(d.inspect_container(&id, None).await.is_err());
    let new_id = new.id.unwrap();

    // stop; then remove-image of the replacement removes the (stopped) container with it
    let a = eng
        .request(
            inc.id,
            "stop",
            &new_id,
            serde_json::json!({"timeout": 1}),
            "carol",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded);
    assert_eq!(running(d, &new_id).await, Some(false));
    let a = eng
        .request(
            inc.id,
            "remove-image",
            replacement,
            serde_json::json!({}),
            "carol",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
    assert!(d.inspect_container(&new_id, None).await.is_err());
    assert!(d.inspect_image(replacement).await.is_err());
    let _ = d.remove_network(net).await;
    let _ = d
        .remove_image(
            img,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

#[tokio::test]
async fn restart_pause_remove_and_global_dry_run() {
    let Some(env) = env().await else { return };
    let img = "vigil-respond-test/misc:latest";
    image(img);
    let d = &env.docker;
    let inc = incident(&env.store).await;

    // Global dry run: nothing happens, everything is recorded.
    let dry = engine(&env, PolicySet::builtin(), GuardConfig::default(), true);
    let id = start(d, img, "vigil-respond-misc-1", &[]).await;
    let out = dry
        .handle_alert(&inc, &miner_alert(&id, "vigil-respond-misc-1", img))
        .await;
    assert!(!out[0].actions.is_empty());
    assert!(
        out[0]
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::DryRun)
    );
    assert!(!out[0].contained);
    assert_eq!(running(d, &id).await, Some(true));
    assert!(d.inspect_image(img).await.is_ok());
    let tl = env.store.timeline(inc.id).await.unwrap();
    assert!(
        tl.iter()
            .any(|e| e.summary.starts_with("dry run: would kill container"))
    );
    let a = dry
        .request(inc.id, "kill", &id, serde_json::json!({}), "frank")
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::DryRun);
    assert_eq!(running(d, &id).await, Some(true));

    let eng = engine(&env, PolicySet::builtin(), GuardConfig::default(), false);
    let started_before = d
        .inspect_container(&id, None)
        .await
        .unwrap()
        .state
        .unwrap()
        .started_at;
    let a = eng
        .request(
            inc.id,
            "restart",
            &id,
            serde_json::json!({"timeout": 1}),
            "frank",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded, "{a:?}");
    let state = d.inspect_container(&id, None).await.unwrap().state.unwrap();
    assert_eq!(state.running, Some(true));
    assert_ne!(state.started_at, started_before);
    let a = eng
        .request(inc.id, "pause", &id, serde_json::json!({}), "frank")
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded);
    let state = d.inspect_container(&id, None).await.unwrap().state.unwrap();
    assert_eq!(state.paused, Some(true));
    let a = eng
        .request(inc.id, "unpause", &id, serde_json::json!({}), "frank")
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded);
    let a = eng
        .request(
            inc.id,
            "remove",
            &id,
            serde_json::json!({"force": true}),
            "frank",
        )
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Succeeded);
    assert_eq!(running(d, &id).await, None);
    // Acting on a container that no longer exists is refused with Docker's reason.
    let a = eng
        .request(inc.id, "kill", &id, serde_json::json!({}), "frank")
        .await
        .unwrap();
    assert_eq!(a.status, ActionStatus::Refused);
    assert!(
        a.error.as_deref().unwrap().contains("No such container"),
        "{a:?}"
    );
    let _ = d
        .remove_image(
            img,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}
