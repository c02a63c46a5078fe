//! Correlation: which incident an alert joins, or whether it opens a new one.

use crate::entity::{
    Entity, EntityKind, Role, alert_assets, alert_entities, incident_campaign_entities,
    incident_entities, main_entity,
};
use model::{Incident, StoredAlert, Time, TimelineEntry, TimelineKind};
use std::collections::BTreeSet;
use std::time::Duration;

/// The actor of correlation entries.
pub const ACTOR: &str = "vigil";

/// The statuses in which an incident accepts new alerts (pass them as
/// [`IncidentQuery::statuses`](model::IncidentQuery) when loading candidates for
/// [`Correlator::decide`]).
pub const ACTIVE_STATUSES: [model::IncidentStatus; 3] = [
    model::IncidentStatus::Open,
    model::IncidentStatus::Acknowledged,
    model::IncidentStatus::Contained,
];

/// How alerts are correlated into incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationConfig {
    /// Sliding window: an incident accepts alerts while its last activity
    /// ([`Incident::updated_at`]) is at most this long ago. Default 30 minutes.
    pub window: Duration,
    /// Entity kinds alerts may be correlated on. Default: all.
    pub kinds: BTreeSet<EntityKind>,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            window: Duration::from_secs(30 * 60),
            kinds: EntityKind::ALL.into_iter().collect(),
        }
    }
}

/// What to do with an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Join this existing incident.
    Join {
        /// The incident's id.
        incident_id: i64,
        /// The entities the alert shares with it (empty when the alert was already part of it).
        shared: Vec<Entity>,
        /// The [`TimelineKind::Correlation`] entry saying why.
        entry: TimelineEntry,
    },
    /// Open a new incident ([`open_incident`]).
    Open {
        /// The [`TimelineEntry`] saying why (its `incident_id` is 0 until the incident is stored).
        entry: TimelineEntry,
    },
}

impl Decision {
    /// The correlation entry.
    pub fn entry(&self) -> &TimelineEntry {
        match self {
            Decision::Join { entry, .. } | Decision::Open { entry } => entry,
        }
    }

    /// The incident joined, if any.
    pub fn incident_id(&self) -> Option<i64> {
        match self {
            Decision::Join { incident_id, .. } => Some(*incident_id),
            Decision::Open { .. } => None,
        }
    }
}

/// The result of [`Correlator::correlate`]: the incident the alert is now part of, changed, and the
/// timeline entries to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlated {
    /// The incident, with the alert in it. `id` is 0 when [`is_new`](Self::is_new).
    pub incident: Incident,
    /// Whether the incident is new (store it with `create_incident`, then
    /// [`assign_incident_id`] the entries) or existing (`update_incident`).
    pub is_new: bool,
    /// Correlation entry first, then the detection entry.
    pub entries: Vec<TimelineEntry>,
}

/// Sets the incident id of entries made before the incident was stored.
pub fn assign_incident_id(entries: &mut [TimelineEntry], id: i64) {
    for e in entries {
        e.incident_id = id;
    }
}

/// Whether an alert belongs to a drill: it carries a `drill` label other than `false`/`0`.
pub fn is_drill_alert(alert: &StoredAlert) -> bool {
    alert.alert.labels.get("drill").is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "0" | "no"
        )
    })
}

/// Formats a duration the way people write it: `30m`, `1h30m`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if sec > 0 || out.is_empty() {
        out += &format!("{sec}s");
    }
    out
}

fn ago(now: Time, then: Time) -> String {
    let d = (now - then).to_std().unwrap_or_default();
    format!("{} ago", human_duration(Duration::from_secs(d.as_secs())))
}

fn kinds_phrase(kinds: &BTreeSet<EntityKind>) -> String {
    let names: Vec<&str> = EntityKind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k))
        .map(EntityKind::as_str)
        .collect();
    match names.len() {
        0 => "nothing (every entity kind is disabled)".to_string(),
        1 => names[0].to_string(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

fn alert_ref(alert: &StoredAlert) -> String {
    let name = alert.alert.name();
    if name.is_empty() {
        format!("alert {}", alert.fingerprint)
    } else {
        format!("alert {name} ({})", alert.fingerprint)
    }
}

/// Decides where alerts go. Cheap to build; holds only its configuration.
#[derive(Debug, Clone, Default)]
pub struct Correlator {
    config: CorrelationConfig,
}

impl Correlator {
    /// A correlator with this configuration.
    pub fn new(config: CorrelationConfig) -> Correlator {
        Correlator { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// The alert's entities that correlation uses (enabled kinds only).
    pub fn entities(&self, alert: &StoredAlert) -> Vec<Entity> {
        alert_entities(&alert.alert.labels)
            .into_iter()
            .filter(|e| self.config.kinds.contains(&e.kind))
            .collect()
    }

    /// Decides which incident `alert` joins, among `open` (incidents in any status may be passed;
    /// only active ones — open, acknowledged, contained — are candidates).
    ///
    /// 1. An alert already part of an active incident (`alert.incident_id`) stays there.
    /// 2. Otherwise the candidates are the active incidents of the same kind (drill or real) whose
    ///    last activity (`updated_at`) is within the window of `now` and that share an entity with
    ///    the alert (see the crate documentation for the matching rules).
    /// 3. The candidate with the most recent activity wins; ties go to the one sharing more
    ///    entities, then to the newest incident (highest id).
    /// 4. No candidate: open a new incident.
    pub fn decide(&self, alert: &StoredAlert, open: &[Incident], now: Time) -> Decision {
        let subject = alert_ref(alert);
        if let Some(id) = alert.incident_id
            && let Some(inc) = open.iter().find(|i| i.id == id && i.status.is_active())
        {
            let entry = TimelineEntry::new(
                inc.id,
                now,
                TimelineKind::Correlation,
                ACTOR,
                format!(
                    "kept in {}: {subject} is already part of it",
                    inc.display_id()
                ),
            )
            .with_data(serde_json::json!({
                "decision": "join",
                "incident_id": inc.id,
                "fingerprint": alert.fingerprint.to_string(),
                "already_member": true,
            }));
            return Decision::Join {
                incident_id: inc.id,
                shared: Vec::new(),
                entry,
            };
        }

        let mine = self.entities(alert);
        let window =
            chrono::Duration::from_std(self.config.window).unwrap_or(chrono::Duration::MAX);
        let drill = is_drill_alert(alert);
        let mut best: Option<(&Incident, Vec<Entity>)> = None;
        let mut candidates = Vec::new();
        for inc in open {
            if !inc.status.is_active() || inc.drill != drill || now - inc.updated_at > window {
                continue;
            }
            let theirs: Vec<Entity> = incident_entities(&inc.assets)
                .into_iter()
                .chain(incident_campaign_entities(inc))
                .filter(|e| self.config.kinds.contains(&e.kind))
                .collect();
            let shared: Vec<Entity> = mine
                .iter()
                .filter_map(|m| {
                    let t = theirs.iter().find(|t| {
                        t.key == m.key && (m.role == Role::Subject || t.role == Role::Subject)
                    })?;
                    let mut e = m.clone();
                    if e.via.is_none() {
                        e.via = t.via.clone();
                    }
                    Some(e)
                })
                .collect();
            if shared.is_empty() {
                continue;
            }
            candidates.push(inc.id);
            let better = match &best {
                None => true,
                Some((b, bs)) => {
                    (inc.updated_at, shared.len(), inc.id) > (b.updated_at, bs.len(), b.id)
                }
            };
            if better {
                best = Some((inc, shared));
            }
        }

        let window_text = human_duration(self.config.window);
        match best {
            Some((inc, shared)) => {
                let list: Vec<String> = shared.iter().map(ToString::to_string).collect();
                let others = candidates.len() - 1;
                let mut summary = format!(
                    "joined {} ({}): {subject} shares {} (last activity {})",
                    inc.display_id(),
                    inc.title,
                    list.join(", "),
                    ago(now, inc.updated_at),
                );
                if others > 0 {
                    summary += &format!(
                        "; chosen over {others} other matching incident{} as the most recently active",
                        if others == 1 { "" } else { "s" }
                    );
                }
                let entry =
                    TimelineEntry::new(inc.id, now, TimelineKind::Correlation, ACTOR, summary)
                        .with_data(serde_json::json!({
                            "decision": "join",
                            "incident_id": inc.id,
                            "fingerprint": alert.fingerprint.to_string(),
                            "shared": shared.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
                            "candidates": candidates,
                            "window_seconds": self.config.window.as_secs(),
                        }));
                Decision::Join {
                    incident_id: inc.id,
                    shared,
                    entry,
                }
            }
            None => {
                let summary = if mine.is_empty() {
                    format!(
                        "opened: {subject} names no {} to correlate on",
                        kinds_phrase(&self.config.kinds)
                    )
                } else {
                    format!(
                        "opened: no active {}incident shares {} with {subject} within {window_text}",
                        if drill { "drill " } else { "" },
                        kinds_phrase(&self.config.kinds),
                    )
                };
                let entry = TimelineEntry::new(0, now, TimelineKind::Correlation, ACTOR, summary)
                    .with_data(serde_json::json!({
                        "decision": "open",
                        "fingerprint": alert.fingerprint.to_string(),
                        "entities": mine.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
                        "window_seconds": self.config.window.as_secs(),
                    }));
                Decision::Open { entry }
            }
        }
    }

    /// Decides and applies: the alert joins an incident of `open` (returned changed) or opens a new
    /// one. Exactly one incident ends up with the alert in its `alerts`.
    pub fn correlate(&self, alert: &StoredAlert, open: &[Incident], now: Time) -> Correlated {
        match self.decide(alert, open, now) {
            Decision::Join {
                incident_id, entry, ..
            } => {
                let mut incident = open
                    .iter()
                    .find(|i| i.id == incident_id)
                    .cloned()
                    .expect("decide joins only incidents it was given");
                let mut entries = vec![entry];
                entries.extend(attach(&mut incident, alert, now));
                Correlated {
                    incident,
                    is_new: false,
                    entries,
                }
            }
            Decision::Open { entry } => {
                let (incident, detection) = open_incident(alert, now);
                let mut entries = vec![entry];
                entries.extend(detection);
                Correlated {
                    incident,
                    is_new: true,
                    entries,
                }
            }
        }
    }
}

fn detection_entry(incident_id: i64, alert: &StoredAlert, now: Time, what: &str) -> TimelineEntry {
    let a = &alert.alert;
    let actor = a.labels.get("source").unwrap_or("alert");
    let name = if a.name().is_empty() {
        "alert".to_string()
    } else {
        a.name().to_string()
    };
    let on = main_entity(&a.labels)
        .map(|e| format!(" on {e}"))
        .unwrap_or_default();
    TimelineEntry::new(
        incident_id,
        now,
        TimelineKind::Detection,
        actor,
        format!(
            "{name}{on} ({}, firing since {}){what}",
            a.severity(),
            a.starts_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    )
    .with_data(serde_json::json!({
        "fingerprint": alert.fingerprint.to_string(),
        "alert": a,
    }))
}

/// A new incident for `alert`, detected at `now`, and its detection entry (incident id 0 until
/// stored).
///
/// Title: `<alertname> on <main entity>` (container name or id, pod, instance, image, host);
/// severity: the alert's; `started_at`: the alert's `startsAt`; assets: the alert's; drill: whether
/// the alert is a drill alert ([`is_drill_alert`]).
pub fn open_incident(alert: &StoredAlert, now: Time) -> (Incident, Vec<TimelineEntry>) {
    let a = &alert.alert;
    let name = if a.name().is_empty() {
        format!("alert {}", alert.fingerprint)
    } else {
        a.name().to_string()
    };
    let title = match main_entity(&a.labels) {
        Some(e) => format!("{name} on {e}"),
        None => name,
    };
    let mut inc = Incident::new(title, a.severity(), a.starts_at.min(now), now);
    inc.assets = alert_assets(&a.labels);
    inc.alerts.push(alert.fingerprint);
    if !a.name().is_empty() {
        inc.rules.insert(a.name().to_string());
    }
    inc.drill = is_drill_alert(alert);
    let entry = detection_entry(0, alert, now, "; opened the incident");
    (inc, vec![entry])
}

/// Adds `alert` to `incident`: severity becomes the highest, assets are absorbed, the fingerprint
/// is appended (once), `started_at` moves earlier if the alert started earlier, last activity is
/// `now`. Returns the detection entry.
pub fn attach(incident: &mut Incident, alert: &StoredAlert, now: Time) -> Vec<TimelineEntry> {
    let a = &alert.alert;
    let mut notes = Vec::new();
    let again = incident.alerts.contains(&alert.fingerprint);
    if !again {
        incident.alerts.push(alert.fingerprint);
    }
    if !a.name().is_empty() {
        incident.rules.insert(a.name().to_string());
    }
    let sev = a.severity();
    if sev > incident.severity {
        notes.push(format!("severity raised {} → {sev}", incident.severity));
        incident.severity = sev;
    }
    let before = incident.assets.clone();
    if incident.assets.absorb(&alert_assets(&a.labels)) {
        let added = added_assets(&before, &incident.assets);
        if !added.is_empty() {
            notes.push(format!("new assets {}", added.join(", ")));
        }
    }
    if a.starts_at < incident.started_at {
        incident.started_at = a.starts_at;
    }
    if now > incident.updated_at {
        incident.updated_at = now;
    }
    let what = if again {
        "; fired again".to_string()
    } else {
        String::new()
    };
    let what = if notes.is_empty() {
        what
    } else {
        format!("{what}; {}", notes.join("; "))
    };
    vec![detection_entry(incident.id, alert, now, &what)]
}

fn added_assets(before: &model::Assets, after: &model::Assets) -> Vec<String> {
    let pairs = [
        ("host", &before.hosts, &after.hosts),
        ("container", &before.containers, &after.containers),
        ("image", &before.images, &after.images),
        ("pod", &before.pods, &after.pods),
        ("service", &before.services, &after.services),
    ];
    let mut out = Vec::new();
    for (kind, b, a) in pairs {
        for x in a.difference(b) {
            out.push(format!("{kind} {x}"));
        }
    }
    out
}

/// Records that an alert of the incident resolved (its `endsAt` passed): an
/// [`TimelineKind::AlertResolved`] entry; last activity becomes `now`. The incident's status does
/// not change — people resolve incidents.
pub fn alert_resolved(incident: &mut Incident, alert: &StoredAlert, now: Time) -> TimelineEntry {
    if now > incident.updated_at {
        incident.updated_at = now;
    }
    let a = &alert.alert;
    let ended = a.ends_at.unwrap_or(now);
    let how = if a.timeout {
        "stopped being sent (resolve_timeout)"
    } else {
        "resolved"
    };
    TimelineEntry::new(
        incident.id,
        ended.min(now),
        TimelineKind::AlertResolved,
        a.labels.get("source").unwrap_or("alert"),
        format!(
            "{} {how} at {}",
            alert_ref(alert),
            ended.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    )
    .with_data(serde_json::json!({
        "fingerprint": alert.fingerprint.to_string(),
        "ends_at": ended,
        "timeout": a.timeout,
        "alerts_in_incident": incident.alerts.len(),
    }))
}
