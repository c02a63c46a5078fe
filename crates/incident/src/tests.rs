use crate::*;
use chrono::{Duration as CDuration, TimeZone, Utc};
use model::{Alert, Incident, IncidentStatus, Labels, Severity, StoredAlert, Time, TimelineKind};
use std::time::Duration;

fn t(min: i64) -> Time {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap() + CDuration::minutes(min)
}

fn alert(pairs: &[(&str, &str)], at: Time) -> StoredAlert {
    let a = Alert::new(Labels::from_pairs(pairs.iter().copied()), at);
    StoredAlert {
        fingerprint: a.fingerprint(),
        alert: a,
        incident_id: None,
    }
}

fn seed(at: Time) -> StoredAlert {
    alert(
        &[
            ("alertname", "monitor_service_down"),
            ("instance", "cadvisor:8080"),
            ("job", "cadvisor"),
            ("monitor", "docker-host-alpha"),
            ("severity", "critical"),
        ],
        at,
    )
}

fn falco(rule: &str, id: &str, name: &str, image: &str, at: Time) -> StoredAlert {
    alert(
        &[
            ("alertname", rule),
            ("source", "falco"),
            ("container_id", id),
            ("container_name", name),
            ("image", image),
            ("host", "alpha"),
            ("severity", "warning"),
        ],
        at,
    )
}

/// Runs alerts through the correlator like the server does, with sequential ids.
struct World {
    c: Correlator,
    incidents: Vec<Incident>,
}

impl World {
    fn new(c: Correlator) -> World {
        World {
            c,
            incidents: Vec::new(),
        }
    }

    fn feed(&mut self, a: &StoredAlert, now: Time) -> (i64, Vec<model::TimelineEntry>) {
        let mut out = self.c.correlate(a, &self.incidents, now);
        if out.is_new {
            let id = self.incidents.len() as i64 + 1;
            out.incident.id = id;
            assign_incident_id(&mut out.entries, id);
            self.incidents.push(out.incident);
            (id, out.entries)
        } else {
            let id = out.incident.id;
            let slot = self.incidents.iter_mut().find(|i| i.id == id).unwrap();
            *slot = out.incident;
            (id, out.entries)
        }
    }

    fn get(&self, id: i64) -> &Incident {
        self.incidents.iter().find(|i| i.id == id).unwrap()
    }
}

#[test]
fn falco_alert_about_container_joins_exporter_down_incident() {
    let mut w = World::new(Correlator::default());
    let (inc, entries) = w.feed(&seed(t(0)), t(1));
    assert_eq!(inc, 1);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind, TimelineKind::Correlation);
    assert_eq!(
        entries[0].summary,
        format!(
            "opened: no active incident shares container, image, pod, host or instance with alert monitor_service_down ({}) within 30m",
            seed(t(0)).fingerprint
        )
    );
    assert_eq!(entries[1].kind, TimelineKind::Detection);
    assert!(entries.iter().all(|e| e.incident_id == 1));
    let i = w.get(1);
    assert_eq!(i.title, "monitor_service_down on cadvisor:8080");
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.started_at, t(0));
    assert_eq!(i.detected_at, t(1));
    assert_eq!(i.metrics().time_to_detect, Some(60.0));
    assert!(i.assets.services.contains("cadvisor:8080"));

    let f = falco(
        "Terminal shell in container",
        "ee97d9c4186f",
        "cadvisor",
        "gcr.io/cadvisor/cadvisor:v0.47.0",
        t(3),
    );
    let (inc, entries) = w.feed(&f, t(3));
    assert_eq!(inc, 1);
    assert_eq!(entries[0].kind, TimelineKind::Correlation);
    assert!(
        entries[0].summary.starts_with(
            "joined INC-1 (monitor_service_down on cadvisor:8080): alert Terminal shell in container"
        ),
        "{}",
        entries[0].summary
    );
    assert!(
        entries[0]
            .summary
            .contains("shares container_name=cadvisor (from instance cadvisor:8080)"),
        "{}",
        entries[0].summary
    );
    assert!(
        entries[0].summary.contains("last activity 2m ago"),
        "{}",
        entries[0].summary
    );
    assert_eq!(entries[1].kind, TimelineKind::Detection);
    assert_eq!(entries[1].actor, "falco");
    let i = w.get(1);
    assert_eq!(i.alerts.len(), 2);
    assert!(i.assets.containers.contains("cadvisor (ee97d9c4186f)"));
    assert!(i.assets.hosts.contains("alpha"));
    assert_eq!(i.updated_at, t(3));
    // Severity stays the highest.
    assert_eq!(i.severity, Severity::Critical);
}

#[test]
fn falco_alert_first_then_exporter_down_joins_it() {
    let mut w = World::new(Correlator::default());
    let f = falco(
        "Drop and execute",
        "ee97d9c4186f",
        "cadvisor",
        "cadvisor",
        t(0),
    );
    assert_eq!(w.feed(&f, t(0)).0, 1);
    let (inc, entries) = w.feed(&seed(t(1)), t(2));
    assert_eq!(inc, 1);
    assert!(entries[0].summary.contains("container_name=cadvisor"));
    assert_eq!(w.get(1).severity, Severity::Critical);
    assert!(
        entries[1]
            .summary
            .contains("severity raised warning → critical"),
        "{}",
        entries[1].summary
    );
}

#[test]
fn unrelated_containers_on_one_host_stay_apart() {
    let mut w = World::new(Correlator::default());
    let a = falco("miner", "aaaaaaaaaaaa", "miner-1", "evil/xmrig", t(0));
    let b = falco("shell", "bbbbbbbbbbbb", "web", "nginx:1.25", t(1));
    assert_eq!(w.feed(&a, t(0)).0, 1);
    assert_eq!(w.feed(&b, t(1)).0, 2);
    // A host-level alert about alpha joins the most recent of them.
    let h = alert(&[("alertname", "HighLoad"), ("host", "alpha")], t(2));
    let (inc, entries) = w.feed(&h, t(2));
    assert_eq!(inc, 2);
    assert!(
        entries[0].summary.contains("host=alpha"),
        "{}",
        entries[0].summary
    );
    assert!(
        entries[0]
            .summary
            .contains("chosen over 1 other matching incident"),
        "{}",
        entries[0].summary
    );
}

#[test]
fn same_rule_on_one_host_is_one_campaign() {
    let mut w = World::new(Correlator::default());
    let images = [
        "servethehome/monero_cpu_moneropool:latest",
        "servethehome/monero_cpu_minergate:latest",
        "servethehome/universal_cryptonight:latest",
    ];
    let ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"];
    for (i, (id, image)) in ids.iter().zip(images).enumerate() {
        let a = falco(
            "Cryptominer image",
            id,
            &format!("miner-{i}"),
            image,
            t(i as i64),
        );
        let (inc, entries) = w.feed(&a, t(i as i64));
        assert_eq!(inc, 1, "miner {i} joined {inc}");
        if i > 0 {
            assert!(
                entries[0].summary.contains("rule=Cryptominer image@alpha"),
                "{}",
                entries[0].summary
            );
        }
    }
    assert_eq!(w.get(1).assets.images.len(), 3);
    assert_eq!(w.get(1).assets.containers.len(), 3);
    // The same rule on another host is another incident.
    let mut other = falco("Cryptominer image", "dddddddddddd", "m", images[0], t(4));
    other.alert.labels.set("host", "beta");
    other.fingerprint = other.alert.fingerprint();
    assert_eq!(w.feed(&other, t(4)).0, 1, "shares the image");
    let mut unrelated = falco("Cryptominer image", "eeeeeeeeeeee", "m2", "other/img", t(5));
    unrelated.alert.labels.set("host", "beta");
    unrelated.fingerprint = unrelated.alert.fingerprint();
    assert_eq!(
        w.feed(&unrelated, t(5)).0,
        1,
        "shares rule@beta with the previous one"
    );
    let mut fresh = falco("Cryptominer image", "ffffffffffff", "m3", "third/img", t(6));
    fresh.alert.labels.set("host", "gamma");
    fresh.fingerprint = fresh.alert.fingerprint();
    assert_eq!(w.feed(&fresh, t(6)).0, 2, "nothing shared on gamma");
}

#[test]
fn container_alert_joins_host_level_incident() {
    let mut w = World::new(Correlator::default());
    let h = alert(&[("alertname", "HighLoad"), ("hostname", "Alpha")], t(0));
    assert_eq!(w.feed(&h, t(0)).0, 1);
    let a = falco("miner", "aaaaaaaaaaaa", "miner-1", "evil/xmrig", t(1));
    assert_eq!(w.feed(&a, t(1)).0, 1);
}

#[test]
fn same_image_different_containers_join() {
    let mut w = World::new(Correlator::default());
    let a = falco(
        "miner",
        "aaaaaaaaaaaa",
        "miner-1",
        "docker.io/evil/xmrig",
        t(0),
    );
    let b = falco(
        "miner",
        "bbbbbbbbbbbb",
        "miner-2",
        "evil/xmrig:latest",
        t(1),
    );
    assert_eq!(w.feed(&a, t(0)).0, 1);
    let (inc, e) = w.feed(&b, t(1));
    assert_eq!(inc, 1);
    assert!(
        e[0].summary.contains("image=evil/xmrig:latest"),
        "{}",
        e[0].summary
    );
}

#[test]
fn full_container_id_matches_short_id() {
    let mut w = World::new(Correlator::default());
    let full = "ee97d9c4186f5e6fa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3";
    let a = alert(&[("alertname", "x"), ("container_id", full)], t(0));
    let b = alert(
        &[("alertname", "y"), ("container_id", "ee97d9c4186f")],
        t(1),
    );
    assert_eq!(w.feed(&a, t(0)).0, 1);
    let (inc, e) = w.feed(&b, t(1));
    assert_eq!(inc, 1);
    assert!(e[0].summary.contains("container_id=ee97d9c4186f"));
}

#[test]
fn pods_match_by_namespace_and_name() {
    let mut w = World::new(Correlator::default());
    let a = alert(
        &[("alertname", "x"), ("k8s_ns", "prod"), ("k8s_pod", "web-1")],
        t(0),
    );
    let b = alert(
        &[("alertname", "y"), ("k8s_ns", "dev"), ("k8s_pod", "web-1")],
        t(1),
    );
    let c = alert(
        &[("alertname", "z"), ("k8s_ns", "prod"), ("k8s_pod", "web-1")],
        t(2),
    );
    assert_eq!(w.feed(&a, t(0)).0, 1);
    assert_eq!(w.feed(&b, t(1)).0, 2);
    assert_eq!(w.feed(&c, t(2)).0, 1);
}

#[test]
fn window_slides_with_activity() {
    let mut w = World::new(Correlator::default());
    assert_eq!(w.feed(&seed(t(0)), t(0)).0, 1);
    let again = |n: &str, at| alert(&[("alertname", n), ("instance", "cadvisor:8080")], at);
    // 29 minutes after the last activity: joins, and slides the window.
    assert_eq!(w.feed(&again("a", t(29)), t(29)).0, 1);
    assert_eq!(w.feed(&again("b", t(58)), t(58)).0, 1);
    // 31 minutes of silence: a new incident.
    let (inc, e) = w.feed(&again("c", t(89)), t(89));
    assert_eq!(inc, 2);
    assert!(e[0].summary.contains("within 30m"), "{}", e[0].summary);
    // A custom window.
    let mut w = World::new(Correlator::new(CorrelationConfig {
        window: Duration::from_secs(90 * 60),
        ..Default::default()
    }));
    w.feed(&seed(t(0)), t(0));
    let (inc, _) = w.feed(&again("c", t(89)), t(89));
    assert_eq!(inc, 1);
}

#[test]
fn notes_count_as_activity() {
    let mut w = World::new(Correlator::default());
    w.feed(&seed(t(0)), t(0));
    add_note(&mut w.incidents[0], "alice", "looking", t(25)).unwrap();
    let a = alert(&[("alertname", "a"), ("instance", "cadvisor:8080")], t(50));
    assert_eq!(w.feed(&a, t(50)).0, 1);
}

#[test]
fn resolved_incidents_and_drills_are_not_candidates() {
    let mut w = World::new(Correlator::default());
    w.feed(&seed(t(0)), t(0));
    transition(&mut w.incidents[0], IncidentStatus::Resolved, "bob", t(1)).unwrap();
    let a = alert(&[("alertname", "a"), ("instance", "cadvisor:8080")], t(2));
    assert_eq!(w.feed(&a, t(2)).0, 2);

    // Contained is still active.
    transition(&mut w.incidents[1], IncidentStatus::Contained, "bob", t(3)).unwrap();
    let b = alert(&[("alertname", "b"), ("instance", "cadvisor:8080")], t(4));
    assert_eq!(w.feed(&b, t(4)).0, 2);

    // A drill alert does not join the real incident, and opens a drill.
    let d = alert(
        &[
            ("alertname", "b"),
            ("instance", "cadvisor:8080"),
            ("drill", "exporter-down"),
        ],
        t(5),
    );
    let (inc, e) = w.feed(&d, t(5));
    assert_eq!(inc, 3);
    assert!(w.get(3).drill);
    assert!(
        e[0].summary.contains("no active drill incident"),
        "{}",
        e[0].summary
    );
    let d2 = alert(
        &[
            ("alertname", "c"),
            ("instance", "cadvisor:8080"),
            ("drill", "exporter-down"),
        ],
        t(6),
    );
    assert_eq!(w.feed(&d2, t(6)).0, 3);
    let real = alert(&[("alertname", "c"), ("instance", "cadvisor:8080")], t(7));
    assert_eq!(w.feed(&real, t(7)).0, 2);
}

#[test]
fn disabled_kinds_do_not_correlate() {
    let mut cfg = CorrelationConfig::default();
    cfg.kinds.remove(&EntityKind::Instance);
    let mut w = World::new(Correlator::new(cfg));
    w.feed(&seed(t(0)), t(0));
    let f = falco("shell", "ee97d9c4186f", "cadvisor", "cadvisor", t(1));
    let (inc, e) = w.feed(&f, t(1));
    assert_eq!(inc, 2);
    assert!(
        e[0].summary
            .contains("shares container, image, pod or host with"),
        "{}",
        e[0].summary
    );
    // With every kind off, nothing correlates and the entry says so.
    let mut w = World::new(Correlator::new(CorrelationConfig {
        kinds: Default::default(),
        ..Default::default()
    }));
    w.feed(&seed(t(0)), t(0));
    let (inc, e) = w.feed(&seed(t(1)), t(1));
    assert_eq!(inc, 2);
    assert!(
        e[0].summary.contains("every entity kind is disabled"),
        "{}",
        e[0].summary
    );
}

#[test]
fn alert_without_entities_opens_and_says_why() {
    let c = Correlator::default();
    let a = alert(&[("alertname", "Watchdog")], t(0));
    let d = c.decide(&a, &[], t(0));
    assert!(matches!(d, Decision::Open { .. }));
    assert!(
        d.entry()
            .summary
            .contains("names no container, image, pod, host or instance"),
        "{}",
        d.entry().summary
    );
    let (i, _) = open_incident(&a, t(0));
    assert_eq!(i.title, "Watchdog");
    assert_eq!(i.severity, Severity::Warning);
}

#[test]
fn ties_go_to_more_shared_entities_then_highest_id() {
    let c = Correlator::default();
    let mut one = open_incident(&falco("a", "aaaaaaaaaaaa", "web", "nginx", t(0)), t(0)).0;
    one.id = 1;
    let mut two = open_incident(
        &alert(&[("alertname", "b"), ("image", "nginx")], t(0)),
        t(0),
    )
    .0;
    two.id = 2;
    let mut three = two.clone();
    three.id = 3;
    let probe = falco("c", "aaaaaaaaaaaa", "web", "nginx", t(1));
    // Same last activity: 1 shares id, name and image; 2 and 3 only the image.
    let d = c.decide(&probe, &[one.clone(), two.clone(), three.clone()], t(1));
    assert_eq!(d.incident_id(), Some(1));
    let only_image = falco("c", "cccccccccccc", "other", "nginx", t(1));
    let d = c.decide(
        &only_image,
        &[one.clone(), two.clone(), three.clone()],
        t(1),
    );
    assert_eq!(d.incident_id(), Some(3));
    // Recency beats everything.
    two.updated_at = t(1);
    let d = c.decide(&probe, &[one, two, three], t(1));
    assert_eq!(d.incident_id(), Some(2));
}

#[test]
fn an_alert_already_in_an_active_incident_stays() {
    let c = Correlator::default();
    let mut one = open_incident(&seed(t(0)), t(0)).0;
    one.id = 1;
    let mut two = one.clone();
    two.id = 2;
    two.updated_at = t(5);
    let mut a = seed(t(0));
    a.incident_id = Some(1);
    let d = c.decide(&a, &[one.clone(), two.clone()], t(6));
    assert_eq!(d.incident_id(), Some(1));
    assert!(d.entry().summary.contains("already part of it"));
    let out = c.correlate(&a, &[one.clone(), two.clone()], t(6));
    assert_eq!(out.incident.alerts, vec![a.fingerprint]);
    assert!(out.entries[1].summary.contains("fired again"));
    // Once that incident is resolved, the re-fired alert correlates afresh.
    transition(&mut one, IncidentStatus::Resolved, "bob", t(6)).unwrap();
    assert_eq!(c.decide(&a, &[one, two], t(7)).incident_id(), Some(2));
}

#[test]
fn attach_merges_severity_assets_and_start() {
    let (mut i, _) = open_incident(&seed(t(10)), t(11));
    i.id = 4;
    let earlier = falco("x", "ee97d9c4186f", "cadvisor", "cadvisor", t(5));
    let e = attach(&mut i, &earlier, t(12));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].incident_id, 4);
    assert_eq!(e[0].data["fingerprint"], earlier.fingerprint.to_string());
    assert!(e[0].summary.contains("new assets"), "{}", e[0].summary);
    assert_eq!(i.started_at, t(5));
    assert_eq!(i.updated_at, t(12));
    assert!(i.assets.images.contains("cadvisor"));
    // Attaching the same alert again does not duplicate it.
    attach(&mut i, &earlier, t(13));
    assert_eq!(i.alerts.len(), 2);
}

#[test]
fn alert_resolution_is_recorded() {
    let (mut i, _) = open_incident(&seed(t(0)), t(0));
    i.id = 2;
    let mut a = seed(t(0));
    a.alert.ends_at = Some(t(4));
    let e = alert_resolved(&mut i, &a, t(5));
    assert_eq!(e.kind, TimelineKind::AlertResolved);
    assert_eq!(e.at, t(4));
    assert_eq!(e.incident_id, 2);
    assert!(e.summary.contains("monitor_service_down"), "{}", e.summary);
    assert_eq!(i.updated_at, t(5));
    assert_eq!(i.status, IncidentStatus::Open);
}

#[test]
fn lifecycle_forward_with_skips_and_reopen() {
    let (mut i, _) = open_incident(&seed(t(0)), t(1));
    i.id = 9;
    let e = transition(&mut i, IncidentStatus::Acknowledged, "alice", t(3)).unwrap();
    assert_eq!(e.kind, TimelineKind::StatusChange);
    assert_eq!(e.summary, "acknowledged by alice (was open)");
    assert_eq!(e.data["from"], "open");
    assert_eq!(e.data["to"], "acknowledged");
    assert_eq!(i.acknowledged_at, Some(t(3)));
    // Skip contained: it gets the resolve time.
    let e = transition(&mut i, IncidentStatus::Resolved, "alice", t(10)).unwrap();
    assert!(
        e.summary.contains("contained recorded at the same time"),
        "{}",
        e.summary
    );
    assert_eq!(i.contained_at, Some(t(10)));
    assert_eq!(i.resolved_at, Some(t(10)));
    let m = i.metrics();
    assert_eq!(m.time_to_detect, Some(60.0));
    assert_eq!(m.time_to_acknowledge, Some(120.0));
    assert_eq!(m.time_to_contain, Some(540.0));
    assert_eq!(m.time_to_resolve, Some(540.0));
    // Reopen, then resolve again: acknowledge/contain keep the first times.
    let e = transition(&mut i, IncidentStatus::Open, "bob", t(20)).unwrap();
    assert!(e.summary.contains("reopened by bob"));
    assert_eq!(i.resolved_at, None);
    assert_eq!(i.status, IncidentStatus::Open);
    transition(&mut i, IncidentStatus::Closed, "bob", t(30)).unwrap();
    assert_eq!(i.acknowledged_at, Some(t(3)));
    assert_eq!(i.contained_at, Some(t(10)));
    assert_eq!(i.resolved_at, Some(t(30)));
    assert_eq!(i.closed_at, Some(t(30)));
    assert_eq!(i.updated_at, t(30));
}

#[test]
fn lifecycle_rejects_backwards_and_no_change() {
    let (mut i, _) = open_incident(&seed(t(0)), t(0));
    i.id = 3;
    transition(&mut i, IncidentStatus::Contained, "a", t(1)).unwrap();
    let e = transition(&mut i, IncidentStatus::Acknowledged, "a", t(2)).unwrap_err();
    assert!(matches!(e, LifecycleError::InvalidTransition { .. }));
    let msg = e.to_string();
    assert!(
        msg.starts_with("INC-3 cannot go from contained to acknowledged"),
        "{msg}"
    );
    assert!(
        msg.contains("only a resolved incident can be reopened"),
        "{msg}"
    );
    assert!(transition(&mut i, IncidentStatus::Open, "a", t(2)).is_err());
    let e = transition(&mut i, IncidentStatus::Contained, "a", t(2)).unwrap_err();
    assert_eq!(e.to_string(), "INC-3 is already contained");
    transition(&mut i, IncidentStatus::Closed, "a", t(3)).unwrap();
    // Closed is final.
    for s in IncidentStatus::ALL {
        assert!(transition(&mut i, s, "a", t(4)).is_err(), "closed -> {s}");
    }
    assert_eq!(i.status, IncidentStatus::Closed);
    assert_eq!(i.updated_at, t(3));
    assert!(matches!(
        transition(&mut i, IncidentStatus::Closed, " ", t(4)),
        Err(LifecycleError::Empty { field: "actor" })
    ));
}

#[test]
fn roles_notes_narrative() {
    let (mut i, _) = open_incident(&seed(t(0)), t(0));
    i.id = 5;
    let e = assign_commander(&mut i, "alice", "bob", t(1)).unwrap();
    assert_eq!(e.kind, TimelineKind::Assignment);
    assert_eq!(i.commander.as_deref(), Some("alice"));
    let e = assign_commander(&mut i, "carol", "bob", t(2)).unwrap();
    assert!(e.summary.contains("carol (was alice)"), "{}", e.summary);
    assert!(assign_commander(&mut i, "", "bob", t(2)).is_err());

    let e = add_note(&mut i, "alice", "  miner killed by policy  ", t(3)).unwrap();
    assert_eq!(e.kind, TimelineKind::Note);
    assert_eq!(e.summary, "miner killed by policy");
    assert_eq!(e.actor, "alice");
    assert_eq!(e.incident_id, 5);
    assert_eq!(
        add_note(&mut i, "alice", " ", t(3))
            .unwrap_err()
            .to_string(),
        "note must not be empty"
    );

    i.narrative.accepted.insert("root_cause".into());
    let e = edit_narrative(
        &mut i,
        "root_cause",
        Some("exposed docker socket".into()),
        "alice",
        t(4),
    )
    .unwrap();
    assert_eq!(e.kind, TimelineKind::NarrativeEdit);
    assert_eq!(
        i.narrative.root_cause.as_deref(),
        Some("exposed docker socket")
    );
    assert!(!i.narrative.accepted.contains("root_cause"));
    assert_eq!(e.data["field"], "root_cause");
    let e = edit_narrative(&mut i, "root_cause", Some("  ".into()), "alice", t(5)).unwrap();
    assert!(e.summary.contains("cleared root cause"));
    assert_eq!(i.narrative.root_cause, None);
    let err = edit_narrative(&mut i, "rootcause", None, "alice", t(5)).unwrap_err();
    assert!(err.to_string().contains("executive_summary"), "{err}");

    let e = edit_action_plan(
        &mut i,
        vec![model::ActionItem {
            text: "close the socket".into(),
            owner: Some("ops".into()),
            due: None,
            done: false,
        }],
        "alice",
        t(6),
    )
    .unwrap();
    assert!(e.summary.contains("1 item"));
    assert_eq!(i.narrative.action_plan.len(), 1);
    let e = set_severity(&mut i, Severity::Error, "alice", t(7)).unwrap();
    assert_eq!(i.severity, Severity::Error);
    assert!(e.summary.contains("critical → error"));
    assert_eq!(i.updated_at, t(7));
    assert!(is_narrative_field("impact") && is_narrative_field("action_plan"));
    assert!(!is_narrative_field("title"));
}

#[test]
fn active_statuses_are_the_joinable_ones() {
    for s in IncidentStatus::ALL {
        assert_eq!(ACTIVE_STATUSES.contains(&s), s.is_active(), "{s}");
    }
}

#[test]
fn durations_read_like_people_write_them() {
    assert_eq!(human_duration(Duration::from_secs(1800)), "30m");
    assert_eq!(human_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(human_duration(Duration::from_secs(45)), "45s");
    assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
    assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        /// An alert: label choices, minutes since the previous op, whether to resend an
        /// earlier alert (index) instead.
        Alert {
            labels: Vec<(usize, usize)>,
            gap: i64,
            resend: Option<usize>,
        },
        /// A status change of an incident (index modulo count).
        Transition {
            incident: usize,
            to: usize,
            gap: i64,
        },
    }

    const NAMES: [&str; 8] = [
        "container_id",
        "container_name",
        "image",
        "host",
        "hostname",
        "instance",
        "k8s_pod",
        "k8s_ns",
    ];
    const VALUES: [&str; 8] = [
        "cadvisor",
        "cadvisor:8080",
        "ee97d9c4186f",
        "ee97d9c4186f0123456789",
        "alpha",
        "host",
        "docker.io/library/alpine",
        "[::1]:9",
    ];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (
                proptest::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..5),
                0i64..40,
                proptest::option::weighted(0.2, 0usize..64),
            )
                .prop_map(|(labels, gap, resend)| Op::Alert { labels, gap, resend }),
            1 => (0usize..16, 0usize..5, 0i64..10)
                .prop_map(|(incident, to, gap)| Op::Transition { incident, to, gap }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_alert_ends_in_exactly_one_incident(ops in proptest::collection::vec(op(), 1..60)) {
            let c = Correlator::default();
            let mut incidents: Vec<Incident> = Vec::new();
            let mut sent: Vec<StoredAlert> = Vec::new();
            let mut home: HashMap<model::Fingerprint, i64> = HashMap::new();
            let mut now = t(0);
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Alert { labels, gap, resend } => {
                        now += CDuration::minutes(gap);
                        let mut a = match resend.filter(|_| !sent.is_empty()) {
                            Some(i) => sent[i % sent.len()].clone(),
                            None => {
                                let mut l = Labels::from_pairs([("alertname", format!("a{n}"))]);
                                for (k, v) in labels {
                                    l.set(NAMES[k], VALUES[v]);
                                }
                                let a = Alert::new(l, now);
                                StoredAlert { fingerprint: a.fingerprint(), alert: a, incident_id: None }
                            }
                        };
                        a.incident_id = home.get(&a.fingerprint).copied();
                        let mut out = c.correlate(&a, &incidents, now);
                        prop_assert!(out.incident.alerts.contains(&a.fingerprint));
                        prop_assert_eq!(out.entries.len(), 2);
                        prop_assert_eq!(out.entries[0].kind, TimelineKind::Correlation);
                        prop_assert_eq!(out.entries[1].kind, TimelineKind::Detection);
                        let id = if out.is_new {
                            let id = incidents.len() as i64 + 1;
                            out.incident.id = id;
                            assign_incident_id(&mut out.entries, id);
                            incidents.push(out.incident);
                            id
                        } else {
                            let id = out.incident.id;
                            prop_assert!(incidents.iter().any(|i| i.id == id && i.status.is_active()));
                            *incidents.iter_mut().find(|i| i.id == id).unwrap() = out.incident;
                            id
                        };
                        prop_assert!(out.entries.iter().all(|e| e.incident_id == id));
                        if let Some(prev) = a.incident_id
                            && incidents.iter().any(|i| i.id == prev && i.status.is_active())
                        {
                            prop_assert_eq!(prev, id, "an alert in an active incident stays there");
                        }
                        home.insert(a.fingerprint, id);
                        if !sent.iter().any(|s| s.fingerprint == a.fingerprint) {
                            sent.push(a);
                        }
                    }
                    Op::Transition { incident, to, gap } => {
                        if incidents.is_empty() { continue; }
                        now += CDuration::minutes(gap);
                        let k = incident % incidents.len();
                        let inc = &mut incidents[k];
                        let before = inc.clone();
                        let to = IncidentStatus::ALL[to];
                        match transition(inc, to, "prop", now) {
                            Ok(e) => {
                                prop_assert_eq!(inc.status, to);
                                prop_assert_eq!(e.incident_id, inc.id);
                            }
                            Err(_) => prop_assert_eq!(&*inc, &before),
                        }
                        let s = inc.status;
                        if s >= IncidentStatus::Acknowledged { prop_assert!(inc.acknowledged_at.is_some()); }
                        if s >= IncidentStatus::Contained { prop_assert!(inc.contained_at.is_some()); }
                        if s >= IncidentStatus::Resolved { prop_assert!(inc.resolved_at.is_some()); }
                        if s < IncidentStatus::Resolved { prop_assert!(inc.resolved_at.is_none()); }
                    }
                }
            }
            // Every alert is (once) in the incident it was last put in.
            for (fp, id) in &home {
                let inc = incidents.iter().find(|i| i.id == *id).unwrap();
                prop_assert_eq!(inc.alerts.iter().filter(|f| *f == fp).count(), 1);
            }
        }

        #[test]
        fn entities_never_panic(pairs in proptest::collection::vec(("[a-z_]{1,12}", "\\PC{0,40}"), 0..8)) {
            let l = Labels::from_pairs(pairs.clone());
            let es = alert_entities(&l);
            let assets = alert_assets(&l);
            let _ = incident_entities(&assets);
            let _ = main_entity(&l);
            for e in es {
                prop_assert!(e.key.contains('='));
            }
            let a = Alert::new(l, t(0));
            let s = StoredAlert { fingerprint: a.fingerprint(), alert: a, incident_id: None };
            let (i, e) = open_incident(&s, t(0));
            prop_assert_eq!(i.alerts.len(), 1);
            prop_assert_eq!(e.len(), 1);
        }
    }
}
