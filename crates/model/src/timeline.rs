//! The incident timeline: every detection, decision, action and note, in order.

use crate::Time;
use serde::{Deserialize, Serialize};

/// What kind of thing a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// An alert joined the incident (or opened it); `data` holds the alert.
    Detection,
    /// A correlation decision and why it was taken.
    Correlation,
    /// A lifecycle change (`data.from`, `data.to`).
    StatusChange,
    /// Incident commander or another role assigned.
    Assignment,
    /// A response action was requested, approved, started, succeeded or failed.
    Action,
    /// Evidence was collected.
    Evidence,
    /// A person's note.
    Note,
    /// A narrative field of the report was edited.
    NarrativeEdit,
    /// An alert of the incident resolved.
    AlertResolved,
}

impl TimelineKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Detection => "detection",
            TimelineKind::Correlation => "correlation",
            TimelineKind::StatusChange => "status_change",
            TimelineKind::Assignment => "assignment",
            TimelineKind::Action => "action",
            TimelineKind::Evidence => "evidence",
            TimelineKind::Note => "note",
            TimelineKind::NarrativeEdit => "narrative_edit",
            TimelineKind::AlertResolved => "alert_resolved",
        }
    }
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Store-assigned id, increasing in insertion order (0 before it is stored).
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// When it happened.
    pub at: Time,
    /// What it records.
    pub kind: TimelineKind,
    /// Who did it: `vigil` (correlation), a policy name (`policy:<name>`), a person, a source
    /// (`prometheus`, `falco`, `runtime`).
    pub actor: String,
    /// One line a person reads.
    pub summary: String,
    /// Structured details.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl TimelineEntry {
    /// A new entry (not yet stored).
    pub fn new(
        incident_id: i64,
        at: Time,
        kind: TimelineKind,
        actor: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        TimelineEntry {
            id: 0,
            incident_id,
            at,
            kind,
            actor: actor.into(),
            summary: summary.into(),
            data: serde_json::Value::Null,
        }
    }

    /// Attaches structured data.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}
