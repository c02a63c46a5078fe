//! Alerts in Alertmanager's model.

use crate::{Fingerprint, Labels, Severity, Time};
use serde::{Deserialize, Serialize};

/// An alert as Alertmanager models it: identified by its labels, described by its annotations,
/// active between `starts_at` and `ends_at`.
///
/// Runtime detections, metric alerts and alerts pushed by an external Prometheus or Falco all
/// become `Alert`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Identifying labels (`alertname`, `severity`, `instance`, `container_id`, …).
    pub labels: Labels,
    /// Descriptive annotations (`summary`, `description`, `output`, …).
    #[serde(default)]
    pub annotations: Labels,
    /// When the alert started firing.
    pub starts_at: Time,
    /// When the alert ends or ended. `None` means "until it stops being re-sent and
    /// `resolve_timeout` passes".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Time>,
    /// Link back to what generated the alert.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// When Vigil last received this alert.
    pub updated_at: Time,
    /// Whether `ends_at` was set by Vigil from `resolve_timeout` rather than by the sender.
    #[serde(default)]
    pub timeout: bool,
    /// The raw event or payload that caused the alert, kept as evidence (runtime detections,
    /// Falco intake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// Whether an alert is firing or resolved at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Firing.
    Firing,
    /// Resolved.
    Resolved,
}

impl Alert {
    /// A firing alert with the given labels, starting now.
    pub fn new(labels: Labels, now: Time) -> Self {
        Alert {
            labels,
            annotations: Labels::new(),
            starts_at: now,
            ends_at: None,
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
            evidence: None,
        }
    }

    /// The fingerprint of the alert's labels.
    pub fn fingerprint(&self) -> Fingerprint {
        self.labels.fingerprint()
    }

    /// The alert's name (`alertname` label), or `""`.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }

    /// Severity from the `severity` label, `Warning` when absent or unknown.
    pub fn severity(&self) -> Severity {
        self.labels
            .get("severity")
            .and_then(Severity::parse)
            .unwrap_or(Severity::Warning)
    }

    /// Resolved when `ends_at` is set and not after `now` (Alertmanager's `Resolved()`).
    pub fn state_at(&self, now: Time) -> AlertState {
        match self.ends_at {
            Some(end) if end <= now => AlertState::Resolved,
            _ => AlertState::Firing,
        }
    }

    /// Merges a newly received instance of the same alert into this one, as Alertmanager's
    /// `Alert.Merge` does: the interval is extended, the newer instance's annotations win,
    /// and an earlier resolution is not undone by a stale resend.
    pub fn merge(&mut self, newer: Alert) {
        // Alertmanager: if the older alert ended and the newer one starts later, the newer one
        // replaces it (a new firing); otherwise the intervals are joined.
        let restarted = matches!(self.ends_at, Some(end) if newer.starts_at > end);
        if restarted {
            *self = newer;
            return;
        }
        if newer.starts_at < self.starts_at {
            self.starts_at = newer.starts_at;
        }
        // Keep the later end, but a sender's explicit end always beats a timeout-derived one.
        match (self.ends_at, newer.ends_at) {
            (_, Some(n)) if self.timeout || self.ends_at.is_none() || Some(n) > self.ends_at => {
                self.ends_at = Some(n);
                self.timeout = newer.timeout;
            }
            (_, None) => {
                self.ends_at = None;
                self.timeout = newer.timeout;
            }
            _ => {}
        }
        self.annotations = newer.annotations;
        if !newer.generator_url.is_empty() {
            self.generator_url = newer.generator_url;
        }
        if newer.updated_at > self.updated_at {
            self.updated_at = newer.updated_at;
        }
        if newer.evidence.is_some() {
            self.evidence = newer.evidence;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t(s: i64) -> Time {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn ends_at_in_past_resolves() {
        let mut a = Alert::new(Labels::from_pairs([("alertname", "x")]), t(0));
        assert_eq!(a.state_at(t(10)), AlertState::Firing);
        a.ends_at = Some(t(5));
        assert_eq!(a.state_at(t(10)), AlertState::Resolved);
        assert_eq!(a.state_at(t(4)), AlertState::Firing);
    }

    #[test]
    fn merge_extends_and_refreshes() {
        let mut a = Alert::new(Labels::from_pairs([("alertname", "x")]), t(0));
        a.ends_at = Some(t(60));
        let mut b = a.clone();
        b.starts_at = t(30);
        b.ends_at = Some(t(120));
        b.updated_at = t(30);
        b.annotations.set("summary", "new");
        a.merge(b);
        assert_eq!(a.starts_at, t(0));
        assert_eq!(a.ends_at, Some(t(120)));
        assert_eq!(a.annotations.get("summary"), Some("new"));
        assert_eq!(a.updated_at, t(30));
    }

    #[test]
    fn merge_after_resolution_restarts() {
        let mut a = Alert::new(Labels::from_pairs([("alertname", "x")]), t(0));
        a.ends_at = Some(t(10));
        let b = Alert::new(a.labels.clone(), t(20));
        a.merge(b);
        assert_eq!(a.starts_at, t(20));
        assert_eq!(a.ends_at, None);
        let _ = Duration::seconds(1);
    }

    #[test]
    fn json_uses_alertmanager_field_names() {
        let a = Alert::new(Labels::from_pairs([("alertname", "x")]), t(0));
        let v = serde_json::to_value(&a).unwrap();
        assert!(v.get("startsAt").is_some());
        assert!(v.get("generatorURL").is_some());
        assert!(v.get("updatedAt").is_some());
    }
}
