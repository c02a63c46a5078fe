//! Lifecycle transitions, roles, notes and narrative edits. Each returns the timeline entry that
//! records it and sets the incident's last activity (`updated_at`) to `now`.

use model::{
    ActionItem, Incident, IncidentStatus, Narrative, Severity, Time, TimelineEntry, TimelineKind,
};

/// A change the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The status change goes backwards (other than reopening a resolved incident).
    #[error(
        "{incident} cannot go from {from} to {to}: the lifecycle is open → acknowledged → contained → resolved → closed (steps may be skipped forward; only a resolved incident can be reopened)"
    )]
    InvalidTransition {
        /// `INC-<id>`.
        incident: String,
        /// Current status.
        from: IncidentStatus,
        /// Requested status.
        to: IncidentStatus,
    },
    /// The incident is already in the requested status.
    #[error("{incident} is already {status}")]
    Unchanged {
        /// `INC-<id>`.
        incident: String,
        /// Its status.
        status: IncidentStatus,
    },
    /// A required text is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field (`commander`, `note`, `actor`).
        field: &'static str,
    },
    /// Not a narrative field.
    #[error("{0}")]
    UnknownField(String),
}

fn require(field: &'static str, value: &str) -> Result<(), LifecycleError> {
    if value.trim().is_empty() {
        Err(LifecycleError::Empty { field })
    } else {
        Ok(())
    }
}

fn touch(incident: &mut Incident, now: Time) {
    if now > incident.updated_at {
        incident.updated_at = now;
    }
}

/// The timestamp field of a status (`Open` has none: it is `detected_at`, set at creation).
fn stamp(incident: &mut Incident, status: IncidentStatus) -> Option<&mut Option<Time>> {
    match status {
        IncidentStatus::Open => None,
        IncidentStatus::Acknowledged => Some(&mut incident.acknowledged_at),
        IncidentStatus::Contained => Some(&mut incident.contained_at),
        IncidentStatus::Resolved => Some(&mut incident.resolved_at),
        IncidentStatus::Closed => Some(&mut incident.closed_at),
    }
}

/// Moves the incident to `to`.
///
/// - Forward moves are allowed, skipping steps included: the timestamp of `to` and of every
///   skipped step that has none yet is set to `now` (an incident resolved straight from open was
///   acknowledged and contained by then at the latest). Timestamps already set are kept, so the
///   metrics measure the first time each step was reached.
/// - `resolved → open` reopens: `resolved_at` is cleared; acknowledge and contain times stay.
/// - Anything else (backwards, from closed, or to the current status) is an error.
pub fn transition(
    incident: &mut Incident,
    to: IncidentStatus,
    actor: &str,
    now: Time,
) -> Result<TimelineEntry, LifecycleError> {
    require("actor", actor)?;
    let from = incident.status;
    let id = incident.display_id();
    if from == to {
        return Err(LifecycleError::Unchanged {
            incident: id,
            status: from,
        });
    }
    let summary;
    if to == IncidentStatus::Open && from == IncidentStatus::Resolved {
        incident.resolved_at = None;
        summary = format!("reopened by {actor} (was resolved)");
    } else if to > from {
        let skipped: Vec<IncidentStatus> = IncidentStatus::ALL
            .into_iter()
            .filter(|s| *s > from && *s < to)
            .collect();
        for s in skipped.iter().copied().chain([to]) {
            if let Some(slot) = stamp(incident, s)
                && slot.is_none()
            {
                *slot = Some(now);
            }
        }
        summary = if skipped.is_empty() {
            format!("{to} by {actor} (was {from})")
        } else {
            let names: Vec<&str> = skipped.iter().map(|s| s.as_str()).collect();
            format!(
                "{to} by {actor} (was {from}; {} recorded at the same time)",
                names.join(", ")
            )
        };
    } else {
        return Err(LifecycleError::InvalidTransition {
            incident: id,
            from,
            to,
        });
    }
    incident.status = to;
    touch(incident, now);
    Ok(
        TimelineEntry::new(incident.id, now, TimelineKind::StatusChange, actor, summary)
            .with_data(serde_json::json!({"from": from, "to": to})),
    )
}

/// Makes `commander` the incident commander.
pub fn assign_commander(
    incident: &mut Incident,
    commander: &str,
    actor: &str,
    now: Time,
) -> Result<TimelineEntry, LifecycleError> {
    require("commander", commander)?;
    require("actor", actor)?;
    let commander = commander.trim().to_string();
    let previous = incident.commander.replace(commander.clone());
    touch(incident, now);
    let summary = match &previous {
        Some(p) if *p != commander => {
            format!("incident commander {commander} (was {p}), assigned by {actor}")
        }
        _ => format!("incident commander {commander}, assigned by {actor}"),
    };
    Ok(
        TimelineEntry::new(incident.id, now, TimelineKind::Assignment, actor, summary).with_data(
            serde_json::json!({
                "role": "commander",
                "assignee": commander,
                "previous": previous,
            }),
        ),
    )
}

/// A person's note on the incident.
pub fn add_note(
    incident: &mut Incident,
    author: &str,
    text: &str,
    now: Time,
) -> Result<TimelineEntry, LifecycleError> {
    require("author", author)?;
    require("note", text)?;
    touch(incident, now);
    Ok(TimelineEntry::new(
        incident.id,
        now,
        TimelineKind::Note,
        author,
        text.trim(),
    ))
}

/// Sets (or with `None` or blank text, clears) a free-text narrative field by name
/// ([`Narrative::FIELDS`]) and marks it as written by a person (no longer "accepted draft").
pub fn edit_narrative(
    incident: &mut Incident,
    field: &str,
    value: Option<String>,
    actor: &str,
    now: Time,
) -> Result<TimelineEntry, LifecycleError> {
    require("actor", actor)?;
    let value = value.filter(|v| !v.trim().is_empty());
    incident
        .narrative
        .set(field, value.clone())
        .map_err(LifecycleError::UnknownField)?;
    incident.narrative.accepted.remove(field);
    touch(incident, now);
    let label = field.replace('_', " ");
    let summary = match &value {
        Some(v) => format!("{actor} edited {label} ({} characters)", v.chars().count()),
        None => format!("{actor} cleared {label}"),
    };
    Ok(TimelineEntry::new(
        incident.id,
        now,
        TimelineKind::NarrativeEdit,
        actor,
        summary,
    )
    .with_data(serde_json::json!({"field": field, "value": value})))
}

/// Replaces the action plan of the report.
pub fn edit_action_plan(
    incident: &mut Incident,
    items: Vec<ActionItem>,
    actor: &str,
    now: Time,
) -> Result<TimelineEntry, LifecycleError> {
    require("actor", actor)?;
    let n = items.len();
    incident.narrative.action_plan = items;
    incident.narrative.accepted.remove("action_plan");
    touch(incident, now);
    Ok(TimelineEntry::new(
        incident.id,
        now,
        TimelineKind::NarrativeEdit,
        actor,
        format!(
            "{actor} set the action plan ({n} item{})",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_data(serde_json::json!({
        "field": "action_plan",
        "value": incident.narrative.action_plan,
    })))
}

/// Sets the severity by hand (alerts joining later can still raise it).
pub fn set_severity(
    incident: &mut Incident,
    severity: Severity,
    actor: &str,
    now: Time,
) -> Result<TimelineEntry, LifecycleError> {
    require("actor", actor)?;
    let from = incident.severity;
    incident.severity = severity;
    touch(incident, now);
    Ok(TimelineEntry::new(
        incident.id,
        now,
        TimelineKind::StatusChange,
        actor,
        format!("severity {from} → {severity} by {actor}"),
    )
    .with_data(serde_json::json!({"severity_from": from, "severity_to": severity})))
}

/// Whether `field` names a narrative field ([`Narrative::FIELDS`] or `action_plan`).
pub fn is_narrative_field(field: &str) -> bool {
    Narrative::FIELDS.contains(&field) || field == "action_plan"
}
