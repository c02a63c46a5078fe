//! Incidents: correlated alerts with a lifecycle, roles, assets and the narrative of the report.

use crate::{Fingerprint, Severity, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Lifecycle of an incident, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Opened by a detection, nobody has looked yet.
    #[default]
    Open,
    /// A person has taken it.
    Acknowledged,
    /// The threat can no longer spread or act (containers killed, isolated…).
    Contained,
    /// Eradicated and recovered.
    Resolved,
    /// Report written, nothing left to do.
    Closed,
}

impl IncidentStatus {
    /// All statuses in lifecycle order.
    pub const ALL: [IncidentStatus; 5] = [
        IncidentStatus::Open,
        IncidentStatus::Acknowledged,
        IncidentStatus::Contained,
        IncidentStatus::Resolved,
        IncidentStatus::Closed,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    /// Whether new alerts may still join an incident in this status.
    pub fn is_active(self) -> bool {
        self < IncidentStatus::Resolved
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IncidentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        IncidentStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == l || (l == "ack" && *x == IncidentStatus::Acknowledged))
            .ok_or_else(|| {
                format!("unknown status {s:?}: expected open, acknowledged, contained, resolved or closed")
            })
    }
}

/// What an incident touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Assets {
    /// Host names.
    #[serde(default)]
    pub hosts: BTreeSet<String>,
    /// Containers, as `name (short id)` or the id alone.
    #[serde(default)]
    pub containers: BTreeSet<String>,
    /// Container images (`repo:tag`).
    #[serde(default)]
    pub images: BTreeSet<String>,
    /// Kubernetes pods, as `namespace/pod`.
    #[serde(default)]
    pub pods: BTreeSet<String>,
    /// Services and scrape targets (`job`, `instance`).
    #[serde(default)]
    pub services: BTreeSet<String>,
}

impl Assets {
    /// Adds every asset of `other`; returns whether anything was new.
    pub fn absorb(&mut self, other: &Assets) -> bool {
        let before = self.count();
        self.hosts.extend(other.hosts.iter().cloned());
        self.containers.extend(other.containers.iter().cloned());
        self.images.extend(other.images.iter().cloned());
        self.pods.extend(other.pods.iter().cloned());
        self.services.extend(other.services.iter().cloned());
        self.count() != before
    }

    /// Total number of assets.
    pub fn count(&self) -> usize {
        self.hosts.len()
            + self.containers.len()
            + self.images.len()
            + self.pods.len()
            + self.services.len()
    }
}

/// One item of the action plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ActionItem {
    /// What is to be done.
    pub text: String,
    /// Who does it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When it is due (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// Whether it is done.
    #[serde(default)]
    pub done: bool,
}

/// The narrative fields of the report, written by people (or drafted by Vigil while empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Narrative {
    /// Executive summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executive_summary: Option<String>,
    /// Impact on the business and systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    /// Root cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// Remediation done and to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// Lessons learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lessons_learned: Option<String>,
    /// Action plan and recommendations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action_plan: Vec<ActionItem>,
    /// Narrative fields whose drafted text a person accepted as written.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub accepted: BTreeSet<String>,
}

impl Narrative {
    /// The names of the free-text narrative fields, as used by the API and the CLI.
    pub const FIELDS: [&'static str; 5] = [
        "executive_summary",
        "impact",
        "root_cause",
        "remediation",
        "lessons_learned",
    ];

    /// Reads a free-text field by name.
    pub fn get(&self, field: &str) -> Option<&Option<String>> {
        Some(match field {
            "executive_summary" => &self.executive_summary,
            "impact" => &self.impact,
            "root_cause" => &self.root_cause,
            "remediation" => &self.remediation,
            "lessons_learned" => &self.lessons_learned,
            _ => return None,
        })
    }

    /// Sets a free-text field by name; `Err` names the valid fields.
    pub fn set(&mut self, field: &str, value: Option<String>) -> Result<(), String> {
        let slot = match field {
            "executive_summary" => &mut self.executive_summary,
            "impact" => &mut self.impact,
            "root_cause" => &mut self.root_cause,
            "remediation" => &mut self.remediation,
            "lessons_learned" => &mut self.lessons_learned,
            _ => {
                return Err(format!(
                    "unknown narrative field {field:?}: expected one of {}",
                    Self::FIELDS.join(", ")
                ));
            }
        };
        *slot = value;
        Ok(())
    }
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Store-assigned id (0 before it is stored).
    pub id: i64,
    /// Short title, e.g. the first alert's name and the affected asset.
    pub title: String,
    /// Lifecycle status.
    pub status: IncidentStatus,
    /// Highest severity of its alerts (or set by a person).
    pub severity: Severity,
    /// Incident commander.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commander: Option<String>,
    /// Whether this is a drill rather than a real incident.
    #[serde(default)]
    pub drill: bool,
    /// Earliest `startsAt` of its alerts: when the trouble began, as far as anyone saw.
    pub started_at: Time,
    /// When Vigil received the first alert and opened the incident.
    pub detected_at: Time,
    /// When a person acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Time>,
    /// When it was contained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contained_at: Option<Time>,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Time>,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Time>,
    /// Last change.
    pub updated_at: Time,
    /// Affected assets.
    #[serde(default)]
    pub assets: Assets,
    /// Fingerprints of the alerts that joined it, in the order they joined.
    #[serde(default)]
    pub alerts: Vec<Fingerprint>,
    /// Narrative fields of the report.
    #[serde(default)]
    pub narrative: Narrative,
    /// Names (`alertname`) of the alerts that joined, so that the same detection repeated on the
    /// same host (one campaign, e.g. three miner containers) correlates into one incident.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub rules: BTreeSet<String>,
}

/// Timing metrics of an incident, in seconds. See [`Incident::metrics`] for definitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct TimingMetrics {
    /// Time to detect: first alert's `startsAt` → incident opened (`detected_at`).
    pub time_to_detect: Option<f64>,
    /// Time to acknowledge: `detected_at` → `acknowledged_at`.
    pub time_to_acknowledge: Option<f64>,
    /// Time to contain: `detected_at` → `contained_at`.
    pub time_to_contain: Option<f64>,
    /// Time to resolve: `detected_at` → `resolved_at`.
    pub time_to_resolve: Option<f64>,
}

impl Incident {
    /// A new open incident detected at `now`, for trouble that began at `started_at`.
    pub fn new(title: impl Into<String>, severity: Severity, started_at: Time, now: Time) -> Self {
        Incident {
            id: 0,
            title: title.into(),
            status: IncidentStatus::Open,
            severity,
            commander: None,
            drill: false,
            started_at,
            detected_at: now,
            acknowledged_at: None,
            contained_at: None,
            resolved_at: None,
            closed_at: None,
            updated_at: now,
            assets: Assets::default(),
            alerts: Vec::new(),
            narrative: Narrative::default(),
            rules: BTreeSet::new(),
        }
    }

    /// Timing metrics:
    /// - time to detect = `detected_at − started_at`;
    /// - time to acknowledge / contain / resolve = that step's time `− detected_at`.
    pub fn metrics(&self) -> TimingMetrics {
        let secs = |a: Time, b: Time| (b - a).num_milliseconds() as f64 / 1000.0;
        TimingMetrics {
            time_to_detect: Some(secs(self.started_at, self.detected_at).max(0.0)),
            time_to_acknowledge: self.acknowledged_at.map(|t| secs(self.detected_at, t)),
            time_to_contain: self.contained_at.map(|t| secs(self.detected_at, t)),
            time_to_resolve: self.resolved_at.map(|t| secs(self.detected_at, t)),
        }
    }

    /// The human id, `INC-<id>`.
    pub fn display_id(&self) -> String {
        format!("INC-{}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn metrics_follow_definitions() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut i = Incident::new(
            "x",
            Severity::Critical,
            t0,
            t0 + chrono::Duration::seconds(2),
        );
        i.contained_at = Some(t0 + chrono::Duration::milliseconds(2500));
        let m = i.metrics();
        assert_eq!(m.time_to_detect, Some(2.0));
        assert_eq!(m.time_to_contain, Some(0.5));
        assert_eq!(m.time_to_acknowledge, None);
    }

    #[test]
    fn status_parse_and_order() {
        assert_eq!(
            "ack".parse::<IncidentStatus>().unwrap(),
            IncidentStatus::Acknowledged
        );
        assert!("bogus".parse::<IncidentStatus>().is_err());
        assert!(IncidentStatus::Contained.is_active());
        assert!(!IncidentStatus::Resolved.is_active());
    }

    #[test]
    fn narrative_set_names_fields() {
        let mut n = Narrative::default();
        n.set("impact", Some("cpu".into())).unwrap();
        assert_eq!(n.impact.as_deref(), Some("cpu"));
        let e = n.set("nope", None).unwrap_err();
        assert!(e.contains("executive_summary"));
    }
}
