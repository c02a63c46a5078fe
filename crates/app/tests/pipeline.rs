//! The pipeline in process, on SQLite and on PostgreSQL: merge by fingerprint, correlation into
//! incidents with subscribers told, resolution by `endsAt` and by `resolve_timeout`, alerts a crash
//! left without an incident correlated at start, and lifecycle calls.

use app::{App, AppError, Config, SensorEnabled};
use chrono::Utc;
use model::{Alert, AlertQuery, IncidentStatus, Labels, StoredAlert, TimelineKind};
use std::time::Duration;

fn config(dir: &std::path::Path, store: Option<String>) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        store,
        resolve_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    c.sensor.enabled = SensorEnabled::Off;
    c
}

fn alert(name: &str, instance: &str) -> Alert {
    let mut a = Alert::new(
        Labels::from_pairs([
            ("alertname", name),
            ("instance", instance),
            ("severity", "warning"),
        ]),
        Utc::now(),
    );
    a.annotations
        .set("summary", format!("{name} on {instance}"));
    a
}

async fn wait_for<F, Fut, T>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pipeline_scenario(store: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(config(dir.path(), store)).await.unwrap();
    let mut updates = app.subscribe();
    let s = app.store();

    // A new alert opens an incident; subscribers hear of it.
    let a = alert("disk_full", "db-1:9100");
    let fp_a = a.fingerprint();
    let stored = app.ingest(vec![a.clone()]).await.unwrap();
    assert_eq!(stored.len(), 1);
    // Durable on return, with resolve_timeout applied like Alertmanager.
    let got = s
        .get_alert(fp_a)
        .await
        .unwrap()
        .expect("stored before ingest returned");
    assert!(got.alert.timeout && got.alert.ends_at.is_some());
    app.settle().await;
    let u = updates.recv().await.unwrap();
    assert!(u.opened);
    assert_eq!(u.alert.fingerprint, fp_a);
    let id = u.incident.id;
    assert!(id > 0);

    // Another alert about the same instance joins it; a re-sent alert merges (no new incident).
    let b = alert("cpu_hot", "db-1:9100");
    let fp_b = b.fingerprint();
    app.ingest(vec![b, a.clone()]).await.unwrap();
    app.settle().await;
    let u = updates.recv().await.unwrap();
    assert!(!u.opened);
    assert_eq!(u.incident.id, id);
    assert_eq!(u.alert.fingerprint, fp_b);
    let inc = s.get_incident(id).await.unwrap().unwrap();
    assert_eq!(inc.alerts, vec![fp_a, fp_b]);
    let timeline = s.timeline(id).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == TimelineKind::Correlation && e.summary.contains("db-1")),
        "{timeline:#?}"
    );

    // A different instance opens a second incident.
    app.ingest(vec![alert("disk_full", "web-9:9100")])
        .await
        .unwrap();
    app.settle().await;
    let u = updates.recv().await.unwrap();
    assert!(u.opened && u.incident.id != id);

    // endsAt in the past resolves A at once; B, not re-sent, resolves after resolve_timeout.
    let mut ended = a.clone();
    ended.ends_at = Some(Utc::now() - chrono::Duration::seconds(1));
    app.ingest(vec![ended]).await.unwrap();
    let resolved = wait_for(10, || {
        let s = s.clone();
        async move {
            let t = s.timeline(id).await.ok()?;
            let r: Vec<_> = t
                .into_iter()
                .filter(|e| e.kind == TimelineKind::AlertResolved)
                .collect();
            (r.len() == 2).then_some(r)
        }
    })
    .await
    .expect("both alerts resolved on the timeline");
    let by_fp = |fp: model::Fingerprint| {
        resolved
            .iter()
            .find(|e| e.data["fingerprint"] == fp.to_string())
            .unwrap_or_else(|| panic!("no resolution for {fp}: {resolved:#?}"))
    };
    assert_eq!(by_fp(fp_a).data["timeout"], false);
    assert_eq!(by_fp(fp_b).data["timeout"], true);
    let firing = s
        .list_alerts(&AlertQuery {
            firing_at: Some(Utc::now()),
            incident_id: Some(id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(firing.is_empty(), "{firing:#?}");
    // The incident itself stays open: people resolve incidents.
    assert_eq!(
        s.get_incident(id).await.unwrap().unwrap().status,
        IncidentStatus::Open
    );

    // A resolved alert that fires again rejoins its still-active incident ("fired again").
    app.ingest(vec![alert("disk_full", "db-1:9100")])
        .await
        .unwrap();
    app.settle().await;
    let u = updates.recv().await.unwrap();
    assert_eq!(u.incident.id, id);
    assert!(!u.opened);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_on_sqlite() {
    pipeline_scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_on_postgres() {
    let pg = match testkit::postgres() {
        Ok(pg) => pg,
        Err(e) => {
            testkit::skip(&format!("PostgreSQL: {e}"));
            return;
        }
    };
    pipeline_scenario(Some(pg.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_left_without_incident_are_correlated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), None);
    // As if the process died between storing the alerts and correlating them.
    {
        let s = store::open(&cfg.store_url()).await.unwrap();
        let mut stored = Vec::new();
        for inst in ["a:1", "a:1", "b:2"] {
            let mut a = alert(&format!("x{}", stored.len()), inst);
            a.ends_at = Some(Utc::now() + chrono::Duration::minutes(5));
            stored.push(StoredAlert {
                fingerprint: a.fingerprint(),
                alert: a,
                incident_id: None,
            });
        }
        s.upsert_alerts(&stored).await.unwrap();
    }
    let app = App::start(cfg).await.unwrap();
    let s = app.store();
    let done = wait_for(10, || {
        let s = s.clone();
        async move {
            let u = s
                .list_alerts(&AlertQuery {
                    unassigned: true,
                    ..Default::default()
                })
                .await
                .ok()?;
            u.is_empty().then_some(())
        }
    })
    .await;
    assert!(done.is_some(), "alerts still without incident");
    let incidents = s.list_incidents(&Default::default()).await.unwrap();
    assert_eq!(
        incidents.len(),
        2,
        "a:1 twice → one incident, b:2 → another"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_notes_and_narrative_go_through_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(config(dir.path(), None)).await.unwrap();
    app.ingest(vec![alert("x", "h:1")]).await.unwrap();
    app.settle().await;
    let id = app
        .store()
        .list_incidents(&Default::default())
        .await
        .unwrap()[0]
        .id;

    let inc = app
        .transition(id, IncidentStatus::Acknowledged, "alice")
        .await
        .unwrap();
    assert!(inc.acknowledged_at.is_some());
    let e = app
        .transition(id, IncidentStatus::Open, "alice")
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Conflict(_)), "{e}");
    let inc = app.assign_commander(id, "bob", "alice").await.unwrap();
    assert_eq!(inc.commander.as_deref(), Some("bob"));
    let note = app.add_note(id, "looking at disk", "bob").await.unwrap();
    assert!(note.id > 0);
    let mut edit = server::NarrativeEdit::default();
    edit.fields.insert("impact".into(), Some("none".into()));
    edit.action_plan = Some(vec![model::ActionItem {
        text: "add alert on inode usage".into(),
        ..Default::default()
    }]);
    let inc = app.edit_narrative(id, edit, "bob").await.unwrap();
    assert_eq!(inc.narrative.impact.as_deref(), Some("none"));
    assert_eq!(inc.narrative.action_plan.len(), 1);
    let mut bad = server::NarrativeEdit::default();
    bad.fields.insert("nonsense".into(), Some("x".into()));
    match app.edit_narrative(id, bad, "bob").await.unwrap_err() {
        AppError::Invalid { field, .. } => assert_eq!(field.as_deref(), Some("nonsense")),
        other => panic!("{other}"),
    }
    assert!(matches!(
        app.transition(999, IncidentStatus::Resolved, "x").await,
        Err(AppError::NotFound(_))
    ));
    let kinds: Vec<TimelineKind> = app
        .store()
        .timeline(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for k in [
        TimelineKind::StatusChange,
        TimelineKind::Assignment,
        TimelineKind::Note,
        TimelineKind::NarrativeEdit,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
    }
    // Resolved incidents no longer take alerts: the same instance opens a new incident.
    app.transition(id, IncidentStatus::Resolved, "bob")
        .await
        .unwrap();
    app.ingest(vec![alert("y", "h:1")]).await.unwrap();
    app.settle().await;
    let all = app
        .store()
        .list_incidents(&Default::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mutations_and_correlation_do_not_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::start(config(dir.path(), None)).await.unwrap();
    app.ingest(vec![alert("first", "shared:9100")])
        .await
        .unwrap();
    app.settle().await;
    let id = app
        .store()
        .list_incidents(&Default::default())
        .await
        .unwrap()[0]
        .id;
    // Notes and commander changes (which rewrite the incident) race with alerts joining it
    // (which rewrite its alert list): none may overwrite the other.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                app.ingest(vec![alert(&format!("a{i}"), "shared:9100")])
                    .await
                    .map(|_| ())
            } else if i % 4 == 1 {
                app.add_note(id, &format!("note {i}"), "carol")
                    .await
                    .map(|_| ())
            } else {
                app.assign_commander(id, &format!("ic{i}"), "carol")
                    .await
                    .map(|_| ())
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    app.settle().await;
    let inc = app.store().get_incident(id).await.unwrap().unwrap();
    assert_eq!(inc.alerts.len(), 21, "{:?}", inc.alerts);
    assert!(inc.commander.is_some());
    let timeline = app.store().timeline(id).await.unwrap();
    let notes = timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Note)
        .count();
    assert_eq!(notes, 10);
    let detections = timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Detection)
        .count();
    assert_eq!(detections, 21);
    app.shutdown().await;
}
