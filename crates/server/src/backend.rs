//! The seam between the HTTP layer and the rest of Vigil: `app` implements [`Backend`].

use model::{Action, ActionItem, Alert, Incident, IncidentStatus, Store, Time, TimelineEntry};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why the backend refused or failed a request. The server maps each kind to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The incident, action or alert does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong (400); `field` names the offending field when known.
    #[error("{message}")]
    Invalid {
        /// The field at fault, e.g. `status` or `[3].labels`.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The request conflicts with the current state, e.g. an illegal lifecycle step (409).
    #[error("{0}")]
    Conflict(String),
    /// A needed part of Vigil is not running, e.g. the response engine (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else, e.g. the store failed (500).
    #[error("{0}")]
    Internal(String),
}

impl BackendError {
    /// An [`Invalid`](BackendError::Invalid) error naming a field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        BackendError::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<model::StoreError> for BackendError {
    fn from(e: model::StoreError) -> Self {
        match e {
            model::StoreError::NotFound { .. } => BackendError::NotFound(e.to_string()),
            other => BackendError::Internal(other.to_string()),
        }
    }
}

/// An edit of an incident's narrative fields: only the fields present change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NarrativeEdit {
    /// Free-text fields by name (`executive_summary`, `impact`, `root_cause`, `remediation`,
    /// `lessons_learned`); `None` clears a field.
    pub fields: BTreeMap<String, Option<String>>,
    /// A replacement action plan.
    pub action_plan: Option<Vec<ActionItem>>,
}

/// What `GET /api/v2/status` reports about the running server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// The configuration as loaded (YAML), shown as `config.original`.
    pub config_original: String,
    /// When the server started.
    pub started_at: Time,
    /// Vigil's version.
    pub version: String,
}

/// What the HTTP layer needs from Vigil. Reads go to the [`Store`]; every mutation goes through
/// a method here so that the implementation can serialize it with correlation and response.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The store, for reads.
    fn store(&self) -> Arc<dyn Store>;

    /// Facts for `/api/v2/status`.
    fn info(&self) -> ServerInfo;

    /// Whether Vigil is ready to serve (store reachable, pipeline running).
    async fn ready(&self) -> Result<(), BackendError>;

    /// Takes alerts in: merges them by fingerprint, makes them durable, then correlates them.
    /// `Ok` means every alert is durable.
    async fn ingest(&self, alerts: Vec<Alert>) -> Result<(), BackendError>;

    /// Moves an incident to another lifecycle status.
    async fn transition(
        &self,
        incident_id: i64,
        to: IncidentStatus,
        actor: &str,
    ) -> Result<Incident, BackendError>;

    /// Makes someone the incident commander.
    async fn assign_commander(
        &self,
        incident_id: i64,
        commander: &str,
        actor: &str,
    ) -> Result<Incident, BackendError>;

    /// Adds a note to the timeline.
    async fn add_note(
        &self,
        incident_id: i64,
        text: &str,
        actor: &str,
    ) -> Result<TimelineEntry, BackendError>;

    /// Edits narrative fields (and the action plan).
    async fn edit_narrative(
        &self,
        incident_id: i64,
        edit: NarrativeEdit,
        actor: &str,
    ) -> Result<Incident, BackendError>;

    /// Asks the response engine for an action on an incident.
    async fn request_action(
        &self,
        incident_id: i64,
        kind: &str,
        target: &str,
        params: serde_json::Value,
        actor: &str,
    ) -> Result<Action, BackendError>;

    /// Approves an action waiting for approval.
    async fn approve_action(&self, action_id: i64, by: &str) -> Result<Action, BackendError>;

    /// Denies an action waiting for approval.
    async fn deny_action(&self, action_id: i64, by: &str) -> Result<Action, BackendError>;
}
