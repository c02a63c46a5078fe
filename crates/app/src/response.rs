//! Response wiring: incident updates → the response engine (policies → actions, evidence); the
//! engine's containment → the incident marked contained; the API's action endpoints → the engine.

use crate::{App, AppError, ResponseError, ResponseHandle};
use model::{
    Action, ActionStatus, AlertQuery, AlertState, Evidence, Fingerprint, Incident, IncidentQuery,
    IncidentStatus, Store, StoreError, StoredAlert, TimelineEntry,
};
use respond::{Engine, EngineConfig, EngineError, IncidentHook, PolicySet};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Loads the policies of the `response` section (the built-in policy first, then the files in
/// order); a bad file is an error naming file:line:column.
pub fn load_policies(cfg: &crate::ResponseConfig) -> Result<PolicySet, AppError> {
    let mut set = if cfg.builtin_policy {
        PolicySet::builtin()
    } else {
        PolicySet::default()
    };
    for f in &cfg.policies {
        set.add_file(f).map_err(|e| AppError::Invalid {
            field: Some("response.policies".into()),
            message: e.to_string(),
        })?;
    }
    Ok(set)
}

/// Starts the response engine: registers it for the API, follows incident updates, and marks
/// incidents contained. Returns the engine (the runtime uses it for image block checks).
pub(crate) async fn start(app: &App) -> Result<Engine, AppError> {
    let cfg = app.config();
    let policies = load_policies(&cfg.response)?;
    let engine = Engine::connect(
        EngineConfig {
            data_dir: cfg.data_dir.clone(),
            dry_run: cfg.response.dry_run,
            guardrails: cfg.response.guardrails.clone(),
        },
        policies,
        Arc::new(AppStore(app.clone())),
    )
    .await
    .map_err(|e| AppError::Unavailable(e.to_string()))?;
    tracing::info!(
        policies = engine.policies().policies.len(),
        dry_run = cfg.response.dry_run,
        "response engine running"
    );
    engine.set_hook(Arc::new(ContainHook(app.clone())));
    app.set_response_handle(Arc::new(Handle(engine.clone())));

    let mut updates = app.subscribe();
    let mut shutdown = app.inner.shutdown.subscribe();
    let eng = engine.clone();
    tokio::spawn(async move {
        loop {
            let update = tokio::select! {
                u = updates.recv() => u,
                _ = shutdown.changed() => break,
            };
            match update {
                Ok(u) => {
                    let now = chrono::Utc::now();
                    if u.alert.alert.state_at(now) == AlertState::Resolved
                        || !u.incident.status.is_active()
                    {
                        continue;
                    }
                    let eng = eng.clone();
                    // One task per update: three miners are contained in parallel, and the
                    // engine's cooldown keeps a second alert for the same target from acting
                    // twice.
                    tokio::spawn(async move {
                        let out = eng.handle_alert(&u.incident, &u.alert.alert).await;
                        for o in out.iter().filter(|o| o.skipped.is_none()) {
                            tracing::debug!(
                                incident = u.incident.id,
                                policy = %o.policy,
                                actions = o.actions.len(),
                                contained = o.contained,
                                "policy ran"
                            );
                        }
                    });
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "response engine fell behind incident updates");
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    Ok(engine)
}

struct ContainHook(App);

#[async_trait::async_trait]
impl IncidentHook for ContainHook {
    async fn contained(&self, incident_id: i64, actor: &str, summary: &str) {
        let inc = match self.0.store().get_incident(incident_id).await {
            Ok(Some(i)) => i,
            _ => return,
        };
        if inc.status >= IncidentStatus::Contained {
            return;
        }
        match self
            .0
            .transition(incident_id, IncidentStatus::Contained, actor)
            .await
        {
            Ok(_) => tracing::info!(incident = incident_id, %actor, "{summary}"),
            Err(e) => tracing::warn!(incident = incident_id, error = %e, "cannot mark contained"),
        }
    }
}

struct Handle(Engine);

fn map_err(e: EngineError) -> ResponseError {
    match e {
        EngineError::Invalid(m) => ResponseError::Invalid(m),
        EngineError::NotFound { .. } => ResponseError::NotFound(e.to_string()),
        EngineError::Conflict(m) => ResponseError::Conflict(m),
        other => ResponseError::Failed(other.to_string()),
    }
}

#[async_trait::async_trait]
impl ResponseHandle for Handle {
    async fn request(
        &self,
        incident_id: i64,
        kind: &str,
        target: &str,
        params: serde_json::Value,
        actor: &str,
    ) -> Result<Action, ResponseError> {
        self.0
            .request(incident_id, kind, target, params, actor)
            .await
            .map_err(map_err)
    }

    async fn approve(&self, action_id: i64, by: &str) -> Result<Action, ResponseError> {
        self.0.approve(action_id, by).await.map_err(map_err)
    }

    async fn deny(&self, action_id: i64, by: &str) -> Result<Action, ResponseError> {
        self.0.deny(action_id, by).await.map_err(map_err)
    }
}

/// The store as the engine sees it: timeline entries go through [`App::append_timeline`], so
/// they are serialized with every other incident mutation; everything else goes to the store.
struct AppStore(App);

#[async_trait::async_trait]
impl Store for AppStore {
    async fn upsert_alerts(&self, alerts: &[StoredAlert]) -> Result<(), StoreError> {
        self.0.store().upsert_alerts(alerts).await
    }
    async fn get_alert(&self, fingerprint: Fingerprint) -> Result<Option<StoredAlert>, StoreError> {
        self.0.store().get_alert(fingerprint).await
    }
    async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        self.0.store().list_alerts(query).await
    }
    async fn set_alert_incident(
        &self,
        fingerprint: Fingerprint,
        incident_id: i64,
    ) -> Result<(), StoreError> {
        self.0
            .store()
            .set_alert_incident(fingerprint, incident_id)
            .await
    }
    async fn create_incident(&self, incident: &Incident) -> Result<Incident, StoreError> {
        self.0.store().create_incident(incident).await
    }
    async fn update_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        self.0.store().update_incident(incident).await
    }
    async fn get_incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.0.store().get_incident(id).await
    }
    async fn list_incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        self.0.store().list_incidents(query).await
    }
    async fn append_timeline(
        &self,
        entries: &[TimelineEntry],
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        self.0
            .append_timeline(entries.to_vec())
            .await
            .map_err(|e| match e {
                AppError::Store(s) => s,
                other => StoreError::Backend(other.to_string()),
            })
    }
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        self.0.store().timeline(incident_id).await
    }
    async fn save_action(&self, action: &Action) -> Result<Action, StoreError> {
        self.0.store().save_action(action).await
    }
    async fn get_action(&self, id: i64) -> Result<Option<Action>, StoreError> {
        self.0.store().get_action(id).await
    }
    async fn list_actions(
        &self,
        incident_id: Option<i64>,
        status: Option<ActionStatus>,
    ) -> Result<Vec<Action>, StoreError> {
        self.0.store().list_actions(incident_id, status).await
    }
    async fn add_evidence(&self, evidence: &Evidence) -> Result<Evidence, StoreError> {
        self.0.store().add_evidence(evidence).await
    }
    async fn list_evidence(&self, incident_id: i64) -> Result<Vec<Evidence>, StoreError> {
        self.0.store().list_evidence(incident_id).await
    }
}
