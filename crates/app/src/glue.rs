//! Adapter between the core and the `incident` crate's pure logic (correlation decisions,
//! lifecycle, roles, notes, narrative). Interim implementation until the crate lands.

use model::{Assets, Incident, IncidentStatus, StoredAlert, Time, TimelineEntry, TimelineKind};
use server::NarrativeEdit;

pub(crate) enum Decision {
    Attach { incident_id: i64, reason: String },
    Open { reason: String },
}

fn entity_keys(a: &StoredAlert) -> Vec<(&'static str, String)> {
    let l = &a.alert.labels;
    ["container_id", "image", "k8s_pod", "host", "instance"]
        .into_iter()
        .filter_map(|k| l.get(k).map(|v| (k, v.to_string())))
        .collect()
}

fn assets_of(a: &StoredAlert) -> Assets {
    let l = &a.alert.labels;
    let mut s = Assets::default();
    if let Some(h) = l.get("host") {
        s.hosts.insert(h.to_string());
    }
    if let Some(c) = l.get("container_id") {
        s.containers.insert(match l.get("container_name") {
            Some(n) => format!("{n} ({})", &c[..c.len().min(12)]),
            None => c.to_string(),
        });
    }
    if let Some(i) = l.get("image") {
        s.images.insert(i.to_string());
    }
    if let (Some(ns), Some(p)) = (l.get("k8s_ns"), l.get("k8s_pod")) {
        s.pods.insert(format!("{ns}/{p}"));
    }
    if let Some(i) = l.get("instance") {
        s.services.insert(i.to_string());
    }
    if let Some(j) = l.get("job") {
        s.services.insert(j.to_string());
    }
    s
}

fn incident_has(inc: &Incident, key: &str, value: &str) -> bool {
    let a = &inc.assets;
    match key {
        "container_id" => a
            .containers
            .iter()
            .any(|c| c == value || c.contains(&format!("({})", &value[..value.len().min(12)]))),
        "image" => a.images.contains(value),
        "k8s_pod" => a.pods.iter().any(|p| p.ends_with(&format!("/{value}"))),
        "host" => a.hosts.contains(value),
        "instance" => a.services.contains(value),
        _ => false,
    }
}

pub(crate) fn decide(
    active: &[&Incident],
    alert: &StoredAlert,
    window: chrono::Duration,
    now: Time,
) -> Decision {
    let keys = entity_keys(alert);
    let mut best: Option<(&Incident, &str, &str)> = None;
    for inc in active {
        if now - inc.updated_at > window {
            continue;
        }
        for (k, v) in &keys {
            if incident_has(inc, k, v) && best.is_none_or(|(b, _, _)| inc.updated_at > b.updated_at)
            {
                best = Some((inc, k, v));
            }
        }
    }
    match best {
        Some((inc, k, v)) => Decision::Attach {
            incident_id: inc.id,
            reason: format!(
                "shares {k}={v} with {} within the correlation window",
                inc.display_id()
            ),
        },
        None => Decision::Open {
            reason: if keys.is_empty() {
                "no affected entity to correlate on".into()
            } else {
                "no active incident shares an affected entity within the correlation window".into()
            },
        },
    }
}

fn detection(id: i64, alert: &StoredAlert, now: Time) -> TimelineEntry {
    let source = alert
        .alert
        .labels
        .get("source")
        .unwrap_or("alertmanager-api");
    TimelineEntry::new(
        id,
        now,
        TimelineKind::Detection,
        source,
        format!("Alert {} {}", alert.alert.name(), alert.alert.labels),
    )
    .with_data(
        serde_json::json!({"fingerprint": alert.fingerprint.to_string(), "alert": alert.alert}),
    )
}

pub(crate) fn open(alert: &StoredAlert, reason: &str, now: Time) -> (Incident, Vec<TimelineEntry>) {
    let assets = assets_of(alert);
    let subject = alert
        .alert
        .labels
        .get("container_name")
        .or(alert.alert.labels.get("instance"))
        .or(alert.alert.labels.get("host"));
    let title = match subject {
        Some(s) => format!("{} on {s}", alert.alert.name()),
        None => alert.alert.name().to_string(),
    };
    let mut inc = Incident::new(title, alert.alert.severity(), alert.alert.starts_at, now);
    inc.assets = assets;
    inc.alerts.push(alert.fingerprint);
    let entries = vec![
        detection(0, alert, now),
        TimelineEntry::new(
            0,
            now,
            TimelineKind::Correlation,
            "vigil",
            format!("Opened a new incident: {reason}"),
        ),
    ];
    (inc, entries)
}

pub(crate) fn attach(
    inc: &mut Incident,
    alert: &StoredAlert,
    reason: &str,
    now: Time,
) -> Vec<TimelineEntry> {
    inc.alerts.push(alert.fingerprint);
    inc.assets.absorb(&assets_of(alert));
    inc.severity = inc.severity.max(alert.alert.severity());
    if alert.alert.starts_at < inc.started_at {
        inc.started_at = alert.alert.starts_at;
    }
    inc.updated_at = now;
    vec![
        detection(inc.id, alert, now),
        TimelineEntry::new(
            inc.id,
            now,
            TimelineKind::Correlation,
            "vigil",
            format!("Joined {}: {reason}", inc.display_id()),
        ),
    ]
}

pub(crate) fn transition(
    inc: &mut Incident,
    to: IncidentStatus,
    actor: &str,
    now: Time,
) -> Result<Vec<TimelineEntry>, String> {
    let from = inc.status;
    if from == to {
        return Err(format!("{} is already {to}", inc.display_id()));
    }
    if from == IncidentStatus::Closed {
        return Err(format!("{} is closed", inc.display_id()));
    }
    inc.status = to;
    match to {
        IncidentStatus::Acknowledged => inc.acknowledged_at = inc.acknowledged_at.or(Some(now)),
        IncidentStatus::Contained => inc.contained_at = inc.contained_at.or(Some(now)),
        IncidentStatus::Resolved => inc.resolved_at = inc.resolved_at.or(Some(now)),
        IncidentStatus::Closed => inc.closed_at = inc.closed_at.or(Some(now)),
        IncidentStatus::Open => {}
    }
    inc.updated_at = now;
    Ok(vec![
        TimelineEntry::new(
            inc.id,
            now,
            TimelineKind::StatusChange,
            actor,
            format!("Status {from} → {to}"),
        )
        .with_data(serde_json::json!({"from": from, "to": to})),
    ])
}

pub(crate) fn assign_commander(
    inc: &mut Incident,
    who: &str,
    actor: &str,
    now: Time,
) -> Vec<TimelineEntry> {
    inc.commander = Some(who.to_string());
    inc.updated_at = now;
    vec![TimelineEntry::new(
        inc.id,
        now,
        TimelineKind::Assignment,
        actor,
        format!("{who} is incident commander"),
    )]
}

pub(crate) fn add_note(inc: &Incident, text: &str, actor: &str, now: Time) -> TimelineEntry {
    TimelineEntry::new(inc.id, now, TimelineKind::Note, actor, text)
}

pub(crate) fn edit_narrative(
    inc: &mut Incident,
    edit: &NarrativeEdit,
    actor: &str,
    now: Time,
) -> Result<Vec<TimelineEntry>, (String, String)> {
    let mut entries = Vec::new();
    for (field, value) in &edit.fields {
        inc.narrative
            .set(field, value.clone())
            .map_err(|e| (field.clone(), e))?;
        entries.push(TimelineEntry::new(
            inc.id,
            now,
            TimelineKind::NarrativeEdit,
            actor,
            format!("Edited {field}"),
        ));
    }
    if let Some(plan) = &edit.action_plan {
        inc.narrative.action_plan = plan.clone();
        entries.push(TimelineEntry::new(
            inc.id,
            now,
            TimelineKind::NarrativeEdit,
            actor,
            "Edited action_plan",
        ));
    }
    inc.updated_at = now;
    Ok(entries)
}
