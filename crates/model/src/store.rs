//! The persistence seam. `store` implements it for SQLite and PostgreSQL; `server`, `app`,
//! `respond` and `report` use it without knowing which backend runs.

use crate::{
    Action, ActionStatus, Alert, Evidence, Fingerprint, Incident, IncidentStatus, Severity, Time,
    TimelineEntry,
};
use serde::{Deserialize, Serialize};

/// An alert as stored: the alert, its fingerprint and the incident it joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// Fingerprint of the labels.
    pub fingerprint: Fingerprint,
    /// The alert (merged over every time it was received).
    pub alert: Alert,
    /// The incident it joined, once correlated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertQuery {
    /// Only alerts of this incident.
    pub incident_id: Option<i64>,
    /// Only alerts not yet correlated into an incident.
    pub unassigned: bool,
    /// Only alerts whose `ends_at` is unset or after this time (i.e. firing at that time).
    pub firing_at: Option<Time>,
    /// At most this many (newest `updated_at` first when set).
    pub limit: Option<usize>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentQuery {
    /// Only these statuses (any when empty).
    #[serde(default)]
    pub statuses: Vec<IncidentStatus>,
    /// Only at or above this severity.
    pub min_severity: Option<Severity>,
    /// Only drills (`Some(true)`) or only real incidents (`Some(false)`).
    pub drill: Option<bool>,
    /// Only incidents detected at or after this time.
    pub since: Option<Time>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of thing (`incident`, `action`, …).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The backend failed (connection, disk, constraint).
    #[error("store backend: {0}")]
    Backend(String),
    /// A stored document could not be decoded.
    #[error("stored {what} is corrupt: {message}")]
    Corrupt {
        /// What kind of record.
        what: &'static str,
        /// Decoder message.
        message: String,
    },
    /// The store URL or configuration is wrong.
    #[error("store configuration: {0}")]
    Config(String),
}

/// Durable state of Vigil. Every method that returns `Ok` has committed what it wrote.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces alerts by fingerprint (the caller has merged them), keeping each
    /// alert's `incident_id` unless given. Durable on return.
    ///
    /// Ordering contract: an implementation hands the write to its commit queue during the
    /// returned future's first poll (before it first returns `Pending`), and writes handed over
    /// earlier are never committed after later ones. The intake relies on it: it polls the
    /// future once while it holds the lock under which it merged the alerts, so two states of
    /// one alert reach the store in the order they were merged.
    async fn upsert_alerts(&self, alerts: &[StoredAlert]) -> Result<(), StoreError>;
    /// One alert by fingerprint.
    async fn get_alert(&self, fingerprint: Fingerprint) -> Result<Option<StoredAlert>, StoreError>;
    /// Alerts matching the query, newest `updated_at` first.
    async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError>;
    /// Records which incident an alert joined.
    async fn set_alert_incident(
        &self,
        fingerprint: Fingerprint,
        incident_id: i64,
    ) -> Result<(), StoreError>;

    /// Stores a new incident and returns it with its id.
    async fn create_incident(&self, incident: &Incident) -> Result<Incident, StoreError>;
    /// Replaces a stored incident (by `id`).
    async fn update_incident(&self, incident: &Incident) -> Result<(), StoreError>;
    /// One incident.
    async fn get_incident(&self, id: i64) -> Result<Option<Incident>, StoreError>;
    /// Incidents matching the query, newest first.
    async fn list_incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError>;

    /// Appends timeline entries (ids assigned in order) and returns them stored.
    async fn append_timeline(
        &self,
        entries: &[TimelineEntry],
    ) -> Result<Vec<TimelineEntry>, StoreError>;
    /// An incident's timeline in order (`at`, then `id`).
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError>;

    /// Inserts (`id == 0`) or replaces an action; returns it with its id.
    async fn save_action(&self, action: &Action) -> Result<Action, StoreError>;
    /// One action.
    async fn get_action(&self, id: i64) -> Result<Option<Action>, StoreError>;
    /// Actions, optionally of one incident and/or in one status, oldest first.
    async fn list_actions(
        &self,
        incident_id: Option<i64>,
        status: Option<ActionStatus>,
    ) -> Result<Vec<Action>, StoreError>;

    /// Records evidence and returns it with its id.
    async fn add_evidence(&self, evidence: &Evidence) -> Result<Evidence, StoreError>;
    /// An incident's evidence, oldest first.
    async fn list_evidence(&self, incident_id: i64) -> Result<Vec<Evidence>, StoreError>;
}
