//! What a report is made from: one incident and everything recorded about it.

use crate::ReportError;
use model::{Action, Evidence, Incident, StoredAlert, TimelineEntry};
use serde::{Deserialize, Serialize};

/// Everything a report is rendered from: the incident (with its narrative fields) and its record.
///
/// This is also the JSON document `vigil report --input FILE.json` reads and that a Vigil server
/// serves at `GET /api/v1/incidents/{id}/report-input`:
///
/// ```json
/// {
///   "incident": { "id": 1, "title": "…", "status": "contained", "severity": "critical", … },
///   "timeline": [ { "id": 1, "incident_id": 1, "at": "2025-05-02T14:03:07Z", "kind": "detection", … } ],
///   "alerts":   [ { "fingerprint": "…", "alert": { "labels": { … }, "startsAt": "…", … } } ],
///   "actions":  [ { "id": 1, "kind": "kill", "target": "…", "actor": "policy:…", "status": "succeeded", … } ],
///   "evidence": [ { "id": 1, "incident_id": 1, "kind": "inspect", "sha256": "…", … } ]
/// }
/// ```
///
/// Every field but `incident` may be omitted (an empty list). Each element has the JSON form of the
/// corresponding `model` type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInput {
    /// The incident, with its assets, metrics timestamps and narrative.
    pub incident: Incident,
    /// Its timeline, in any order (the report sorts it by time, then id).
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// The alerts that joined it.
    #[serde(default)]
    pub alerts: Vec<StoredAlert>,
    /// The response actions taken for it.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// The evidence collected for it.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

impl ReportInput {
    /// An input with the incident alone (no timeline, alerts, actions or evidence).
    pub fn new(incident: Incident) -> Self {
        ReportInput {
            incident,
            timeline: Vec::new(),
            alerts: Vec::new(),
            actions: Vec::new(),
            evidence: Vec::new(),
        }
    }

    /// Parses a `ReportInput` JSON document. `origin` names where it came from (a file path, a
    /// URL) and appears in the error together with the line and column of the problem.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self, ReportError> {
        serde_json::from_slice(bytes).map_err(|e| ReportError::Input {
            origin: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// The JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
