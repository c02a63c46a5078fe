//! One conformance suite for every backend: the same calls must give the same results on SQLite
//! and PostgreSQL.

use chrono::{Duration, TimeZone, Utc};
use model::{
    Action, ActionStatus, Alert, AlertQuery, Evidence, Fingerprint, Incident, IncidentQuery,
    IncidentStatus, Labels, Severity, Store, StoreError, StoredAlert, Time, TimelineEntry,
    TimelineKind,
};
use std::sync::Arc;

fn t(s: i64) -> Time {
    // A nanosecond part checks that times keep their full precision.
    Utc.timestamp_opt(1_700_000_000 + s, 123_456_789).unwrap()
}

fn alert(name: &str, instance: &str, at: Time) -> StoredAlert {
    let labels = Labels::from_pairs([
        ("alertname", name),
        ("instance", instance),
        ("severity", "critical"),
    ]);
    let mut a = Alert::new(labels, at);
    a.annotations
        .set("summary", format!("{name} on {instance}"));
    a.generator_url = "http://prometheus:9090/graph".into();
    StoredAlert {
        fingerprint: a.fingerprint(),
        alert: a,
        incident_id: None,
    }
}

fn incident(title: &str, sev: Severity, detected: Time) -> Incident {
    let mut i = Incident::new(title, sev, detected - Duration::seconds(30), detected);
    i.assets.hosts.insert("alpha".into());
    i.narrative.impact = Some("cpu burnt".into());
    i
}

/// The whole suite; `store` must be empty.
pub async fn conformance(store: Arc<dyn Store>) {
    alerts(&*store).await;
    alert_history(&*store).await;
    incidents(&*store).await;
    timeline(&*store).await;
    actions(&*store).await;
    evidence(&*store).await;
    concurrent_writes(store.clone()).await;
}

async fn alerts(s: &dyn Store) {
    let a = alert("down", "cadvisor:8080", t(0));
    let mut b = alert("down", "node:9100", t(10));
    b.incident_id = Some(7);
    let mut c = alert("miner", "host-b", t(20));
    c.alert.ends_at = Some(t(25));
    c.alert.evidence = Some(serde_json::json!({"proc.name": "xmrig"}));
    s.upsert_alerts(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    s.upsert_alerts(&[]).await.unwrap();

    assert_eq!(s.get_alert(a.fingerprint).await.unwrap().as_ref(), Some(&a));
    assert_eq!(s.get_alert(b.fingerprint).await.unwrap().as_ref(), Some(&b));
    assert_eq!(s.get_alert(c.fingerprint).await.unwrap().as_ref(), Some(&c));
    assert_eq!(s.get_alert(Fingerprint(42)).await.unwrap(), None);

    // Upsert without an incident keeps the stored one; with one, replaces it.
    let mut b2 = b.clone();
    b2.incident_id = None;
    b2.alert.updated_at = t(30);
    b2.alert.annotations.set("summary", "still down");
    s.upsert_alerts(&[b2.clone()]).await.unwrap();
    let got = s.get_alert(b.fingerprint).await.unwrap().unwrap();
    assert_eq!(got.incident_id, Some(7));
    assert_eq!(got.alert, b2.alert);
    let mut b3 = b2.clone();
    b3.incident_id = Some(9);
    s.upsert_alerts(&[b3]).await.unwrap();
    assert_eq!(
        s.get_alert(b.fingerprint)
            .await
            .unwrap()
            .unwrap()
            .incident_id,
        Some(9)
    );

    // The same fingerprint twice in one batch: the last one wins.
    let mut a1 = a.clone();
    a1.alert.annotations.set("summary", "first");
    let mut a2 = a.clone();
    a2.alert.annotations.set("summary", "second");
    s.upsert_alerts(&[a1, a2.clone()]).await.unwrap();
    assert_eq!(
        s.get_alert(a.fingerprint).await.unwrap().unwrap().alert,
        a2.alert
    );

    // Newest updated_at first: b (t30), c (t20), a (t0).
    let all = s.list_alerts(&AlertQuery::default()).await.unwrap();
    let fps: Vec<_> = all.iter().map(|x| x.fingerprint).collect();
    assert_eq!(fps, vec![b.fingerprint, c.fingerprint, a.fingerprint]);
    let limited = s
        .list_alerts(&AlertQuery {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].fingerprint, b.fingerprint);

    let of9 = s
        .list_alerts(&AlertQuery {
            incident_id: Some(9),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of9.len(), 1);
    assert_eq!(of9[0].fingerprint, b.fingerprint);

    let unassigned = s
        .list_alerts(&AlertQuery {
            unassigned: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let fps: Vec<_> = unassigned.iter().map(|x| x.fingerprint).collect();
    assert_eq!(fps, vec![c.fingerprint, a.fingerprint]);

    // c ended at t25: firing at t24, not at t25 or later.
    let firing = |at| AlertQuery {
        firing_at: Some(at),
        ..Default::default()
    };
    let f24 = s.list_alerts(&firing(t(24))).await.unwrap();
    assert_eq!(f24.len(), 3);
    let f25 = s.list_alerts(&firing(t(25))).await.unwrap();
    assert!(f25.iter().all(|x| x.fingerprint != c.fingerprint));
    assert_eq!(f25.len(), 2);

    s.set_alert_incident(a.fingerprint, 3).await.unwrap();
    assert_eq!(
        s.get_alert(a.fingerprint)
            .await
            .unwrap()
            .unwrap()
            .incident_id,
        Some(3)
    );
    let e = s.set_alert_incident(Fingerprint(42), 3).await.unwrap_err();
    assert!(
        matches!(e, StoreError::NotFound { what: "alert", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("000000000000002a"), "{e}");

    // The same fingerprint twice in one batch, the later copy without incident: the incident the
    // earlier copy gave stays, as a sequence of single upserts would leave it.
    let d = alert("dup", "db:5432", t(40));
    let mut d1 = d.clone();
    d1.incident_id = Some(5);
    let mut d2 = d.clone();
    d2.alert.annotations.set("summary", "later");
    s.upsert_alerts(&[d1, d2.clone()]).await.unwrap();
    let got = s.get_alert(d.fingerprint).await.unwrap().unwrap();
    assert_eq!(got.incident_id, Some(5));
    assert_eq!(got.alert, d2.alert);
}

/// Many re-sends of the same alerts (more than the SQLite alert log holds before it folds), an
/// incident set between two re-sends, and a stale incident id re-sent before a new one is set:
/// every read shows the last state of each alert.
async fn alert_history(s: &dyn Store) {
    const SERIES: usize = 300;
    const ROUNDS: usize = 20;
    let series = |round: usize| -> Vec<StoredAlert> {
        (0..SERIES)
            .map(|i| {
                let mut a = alert("resent", &format!("host-{i}:9100"), t(100));
                a.alert.updated_at = t(100 + round as i64);
                a.alert.ends_at = Some(t(400 + round as i64));
                a.alert.annotations.set("round", round.to_string());
                a
            })
            .collect()
    };
    let first = series(0);
    for round in 0..ROUNDS {
        for chunk in series(round).chunks(100) {
            s.upsert_alerts(chunk).await.unwrap();
        }
        if round == 3 {
            s.set_alert_incident(first[0].fingerprint, 11)
                .await
                .unwrap();
        }
    }
    let resent = |x: &StoredAlert| x.alert.name() == "resent";
    let all: Vec<StoredAlert> = s
        .list_alerts(&AlertQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(resent)
        .collect();
    assert_eq!(all.len(), SERIES);
    let last = (ROUNDS - 1).to_string();
    for a in &all {
        assert_eq!(
            a.alert.annotations.get("round"),
            Some(last.as_str()),
            "{a:?}"
        );
        assert_eq!(a.alert.ends_at, Some(t(400 + ROUNDS as i64 - 1)));
    }
    let got = s.get_alert(first[0].fingerprint).await.unwrap().unwrap();
    assert_eq!(
        got.incident_id,
        Some(11),
        "re-sends without incident keep it"
    );
    let by_incident = s
        .list_alerts(&AlertQuery {
            incident_id: Some(11),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_incident.len(), 1);

    // A re-send still carrying the old incident, then the new one set: the new one holds.
    let mut stale = series(ROUNDS)[1].clone();
    stale.incident_id = Some(11);
    s.upsert_alerts(std::slice::from_ref(&stale)).await.unwrap();
    s.set_alert_incident(stale.fingerprint, 12).await.unwrap();
    let got = s.get_alert(stale.fingerprint).await.unwrap().unwrap();
    assert_eq!(got.incident_id, Some(12));
    assert_eq!(got.alert, stale.alert);
    // A new alert, set an incident right after its first upsert.
    let fresh = alert("fresh", "host-x:9100", t(500));
    s.upsert_alerts(std::slice::from_ref(&fresh)).await.unwrap();
    s.set_alert_incident(fresh.fingerprint, 13).await.unwrap();
    assert_eq!(
        s.get_alert(fresh.fingerprint)
            .await
            .unwrap()
            .unwrap()
            .incident_id,
        Some(13)
    );
}

async fn incidents(s: &dyn Store) {
    let one = s
        .create_incident(&incident("miner on alpha", Severity::Critical, t(100)))
        .await
        .unwrap();
    let mut drill = incident("drill: exporter down", Severity::Warning, t(200));
    drill.drill = true;
    let two = s.create_incident(&drill).await.unwrap();
    let three = s
        .create_incident(&incident("notice", Severity::Notice, t(300)))
        .await
        .unwrap();
    assert!(one.id > 0 && two.id > one.id && three.id > two.id);
    assert_eq!(one.title, "miner on alpha");

    assert_eq!(s.get_incident(one.id).await.unwrap().as_ref(), Some(&one));
    assert!(s.get_incident(two.id).await.unwrap().unwrap().drill);
    assert_eq!(s.get_incident(999_999).await.unwrap(), None);

    let mut one2 = one.clone();
    one2.status = IncidentStatus::Acknowledged;
    one2.acknowledged_at = Some(t(160));
    one2.commander = Some("alice".into());
    one2.alerts.push(Fingerprint(0xe960_cfc9_079a_e255));
    one2.updated_at = t(160);
    s.update_incident(&one2).await.unwrap();
    assert_eq!(s.get_incident(one.id).await.unwrap().as_ref(), Some(&one2));
    let mut ghost = one2.clone();
    ghost.id = 999_999;
    let e = s.update_incident(&ghost).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NotFound {
                what: "incident",
                ..
            }
        ),
        "{e}"
    );

    let ids = |v: Vec<Incident>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    // Newest first.
    assert_eq!(
        ids(s.list_incidents(&IncidentQuery::default()).await.unwrap()),
        vec![three.id, two.id, one.id]
    );
    let q = IncidentQuery {
        statuses: vec![IncidentStatus::Acknowledged, IncidentStatus::Contained],
        ..Default::default()
    };
    assert_eq!(ids(s.list_incidents(&q).await.unwrap()), vec![one.id]);
    let q = IncidentQuery {
        statuses: vec![IncidentStatus::Open],
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_incidents(&q).await.unwrap()),
        vec![three.id, two.id]
    );
    let q = IncidentQuery {
        min_severity: Some(Severity::Warning),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_incidents(&q).await.unwrap()),
        vec![two.id, one.id]
    );
    let q = IncidentQuery {
        drill: Some(false),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_incidents(&q).await.unwrap()),
        vec![three.id, one.id]
    );
    let q = IncidentQuery {
        drill: Some(true),
        ..Default::default()
    };
    assert_eq!(ids(s.list_incidents(&q).await.unwrap()), vec![two.id]);
    let q = IncidentQuery {
        since: Some(t(200)),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_incidents(&q).await.unwrap()),
        vec![three.id, two.id]
    );
    let q = IncidentQuery {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(s.list_incidents(&q).await.unwrap()), vec![three.id]);
}

async fn timeline(s: &dyn Store) {
    let inc = s
        .create_incident(&incident("timeline", Severity::Error, t(400)))
        .await
        .unwrap();
    let entry = |at, kind, summary: &str| TimelineEntry::new(inc.id, at, kind, "vigil", summary);
    let first = s
        .append_timeline(&[
            entry(t(402), TimelineKind::Detection, "alert joined")
                .with_data(serde_json::json!({"fingerprint": "e960cfc9079ae255"})),
            entry(t(401), TimelineKind::Correlation, "opened: nothing shared"),
        ])
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0].id > 0 && first[1].id > first[0].id);
    assert_eq!(first[0].summary, "alert joined");
    let later = s
        .append_timeline(&[entry(t(402), TimelineKind::Note, "looked at it")])
        .await
        .unwrap();
    assert!(later[0].id > first[1].id);
    s.append_timeline(&[TimelineEntry::new(
        inc.id + 1000,
        t(400),
        TimelineKind::Note,
        "bob",
        "other incident",
    )])
    .await
    .unwrap();
    assert!(s.append_timeline(&[]).await.unwrap().is_empty());

    let got = s.timeline(inc.id).await.unwrap();
    // Ordered by `at`, then id.
    assert_eq!(
        got,
        vec![first[1].clone(), first[0].clone(), later[0].clone()]
    );
    assert_eq!(got[1].data["fingerprint"], "e960cfc9079ae255");
    assert!(s.timeline(inc.id + 2000).await.unwrap().is_empty());
}

async fn actions(s: &dyn Store) {
    let mk = |incident_id, kind: &str, at| Action {
        id: 0,
        incident_id,
        kind: kind.into(),
        target: "abc123".into(),
        params: serde_json::json!({"signal": "KILL"}),
        actor: "policy:miners".into(),
        status: ActionStatus::Requested,
        error: None,
        requested_at: at,
        started_at: None,
        finished_at: None,
        decided_by: None,
    };
    let a = s.save_action(&mk(Some(1), "kill", t(510))).await.unwrap();
    let b = s
        .save_action(&mk(Some(1), "evidence", t(500)))
        .await
        .unwrap();
    let c = s
        .save_action(&mk(None, "block_image", t(520)))
        .await
        .unwrap();
    assert!(a.id > 0 && b.id > a.id && c.id > b.id);
    assert_eq!(s.get_action(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(s.get_action(999_999).await.unwrap(), None);

    let mut a2 = a.clone();
    a2.status = ActionStatus::Succeeded;
    a2.started_at = Some(t(511));
    a2.finished_at = Some(t(512));
    let saved = s.save_action(&a2).await.unwrap();
    assert_eq!(saved, a2);
    assert_eq!(s.get_action(a.id).await.unwrap().as_ref(), Some(&a2));
    let mut ghost = a2.clone();
    ghost.id = 999_999;
    let e = s.save_action(&ghost).await.unwrap_err();
    assert!(
        matches!(e, StoreError::NotFound { what: "action", .. }),
        "{e}"
    );

    let ids = |v: Vec<Action>| v.into_iter().map(|x| x.id).collect::<Vec<_>>();
    // Oldest first.
    assert_eq!(
        ids(s.list_actions(None, None).await.unwrap()),
        vec![b.id, a.id, c.id]
    );
    assert_eq!(
        ids(s.list_actions(Some(1), None).await.unwrap()),
        vec![b.id, a.id]
    );
    assert_eq!(
        ids(s
            .list_actions(None, Some(ActionStatus::Succeeded))
            .await
            .unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(s
            .list_actions(Some(1), Some(ActionStatus::Requested))
            .await
            .unwrap()),
        vec![b.id]
    );
    assert!(s.list_actions(Some(2), None).await.unwrap().is_empty());
}

async fn evidence(s: &dyn Store) {
    let mk = |incident_id, kind: &str, at| Evidence {
        id: 0,
        incident_id,
        kind: kind.into(),
        subject: "abc123".into(),
        path: format!("evidence/{kind}.json"),
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        size: 1234,
        collected_at: at,
    };
    let x = s.add_evidence(&mk(5, "logs", t(610))).await.unwrap();
    let y = s.add_evidence(&mk(5, "inspect", t(600))).await.unwrap();
    s.add_evidence(&mk(6, "diff", t(600))).await.unwrap();
    assert!(x.id > 0 && y.id > x.id);
    assert_eq!(s.list_evidence(5).await.unwrap(), vec![y, x]);
    assert!(s.list_evidence(7).await.unwrap().is_empty());
}

async fn concurrent_writes(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let a = alert("burst", &format!("target-{i}:9100"), t(700 + i));
            s.upsert_alerts(std::slice::from_ref(&a)).await.unwrap();
            a
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.push(t.await.unwrap());
    }
    for a in &written {
        assert_eq!(s.get_alert(a.fingerprint).await.unwrap().as_ref(), Some(a));
    }
    let n = s
        .list_alerts(&AlertQuery {
            firing_at: Some(t(700)),
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|a| a.alert.name() == "burst")
        .count();
    assert_eq!(n, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vigil.db").display());
    let store = store::open(&url).await.unwrap();
    conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    let pg = match testkit::postgres() {
        Ok(pg) => pg,
        Err(e) => return testkit::skip(&format!("PostgreSQL: {e}")),
    };
    let store = store::open(&pg.url()).await.unwrap();
    conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations_are_idempotent_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/vigil.db");
    let a = alert("down", "cadvisor:8080", t(0));
    {
        let s = store::open_sqlite(&path).await.unwrap();
        s.upsert_alerts(std::slice::from_ref(&a)).await.unwrap();
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the store file is private");
    }
    let s = store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(s.get_alert(a.fingerprint).await.unwrap(), Some(a.clone()));
    // An alert still in the log when the store closes is in `alerts` after it opens again.
    let mut b = a.clone();
    b.alert.annotations.set("summary", "re-sent");
    s.upsert_alerts(std::slice::from_ref(&b)).await.unwrap();
    drop(s);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let logged: i64 = conn
            .query_row("SELECT COUNT(*) FROM alert_log", [], |r| r.get(0))
            .unwrap();
        assert!(logged <= 1, "{logged}");
    }
    let s = store::open(path.to_str().unwrap()).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (logged, doc): (i64, String) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM alert_log), doc FROM alerts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(logged, 0, "the log is folded at open");
    assert!(doc.contains("re-sent"), "{doc}");
    drop(conn);
    assert_eq!(s.get_alert(a.fingerprint).await.unwrap(), Some(b));
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (n, max): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), MAX(version) FROM schema_migrations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n as usize, store::migrations::SQLITE.len());
    assert_eq!(max, store::migrations::SQLITE.last().unwrap().version);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    // A database from a newer Vigil is refused, naming the versions.
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let e = store::open_sqlite(&path)
        .await
        .err()
        .expect("newer schema refused");
    assert!(e.to_string().contains("999"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_are_idempotent() {
    let pg = match testkit::postgres() {
        Ok(pg) => pg,
        Err(e) => return testkit::skip(&format!("PostgreSQL: {e}")),
    };
    let a = alert("down", "cadvisor:8080", t(0));
    {
        let s = store::open(&pg.url()).await.unwrap();
        s.upsert_alerts(std::slice::from_ref(&a)).await.unwrap();
    }
    // Two processes' worth of concurrent opens serialise on the migration lock.
    let url = pg.url();
    let (x, y) = tokio::join!(store::open(&url), store::open(&url));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.get_alert(a.fingerprint).await.unwrap(), Some(a.clone()));
    assert_eq!(y.get_alert(a.fingerprint).await.unwrap(), Some(a));
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    let e = store::open("mysql://localhost/x").await.err().unwrap();
    assert!(matches!(e, StoreError::Config(_)), "{e}");
    let port = testkit::free_port();
    let e = store::open(&format!("postgres://vigil@127.0.0.1:{port}/vigil"))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Config(_)), "{e}");
    assert!(e.to_string().contains("PostgreSQL"), "{e}");
}

/// An upsert and an incident assignment queued together (one SQLite group commit): the
/// assignment sees the alert the upsert appended just before it in the same transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_assignment_queued_with_the_upsert_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = store::open_sqlite(dir.path().join("vigil.db"))
        .await
        .unwrap();
    for i in 0..50 {
        let a = alert("queued", &format!("host-{i}:9100"), t(i));
        let (up, set) = tokio::join!(
            s.upsert_alerts(std::slice::from_ref(&a)),
            s.set_alert_incident(a.fingerprint, 9)
        );
        up.unwrap();
        set.unwrap();
        let got = s.get_alert(a.fingerprint).await.unwrap().unwrap();
        assert_eq!(got.incident_id, Some(9));
        assert_eq!(got.alert, a.alert);
    }
}
