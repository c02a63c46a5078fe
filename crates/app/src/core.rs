//! The core: every incident mutation happens here, under one lock (`Inner::core`).

use crate::glue::{self, Decision};
use crate::pipeline::IncidentUpdate;
use crate::{AppError, Inner};
use chrono::Utc;
use model::{
    AlertState, Fingerprint, Incident, IncidentQuery, IncidentStatus, Store, StoredAlert,
    TimelineEntry, TimelineKind,
};
use server::NarrativeEdit;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) struct Core {
    /// Incidents that alerts may still join (open, acknowledged, contained).
    active: HashMap<i64, Incident>,
    /// Alerts whose resolution is already on their incident's timeline.
    resolved_noted: HashSet<Fingerprint>,
}

impl Core {
    pub(crate) async fn load(
        store: &Arc<dyn Store>,
        _config: &crate::Config,
        alerts: &[StoredAlert],
    ) -> Result<Core, AppError> {
        let active_list = store
            .list_incidents(&IncidentQuery {
                statuses: IncidentStatus::ALL
                    .into_iter()
                    .filter(|s| s.is_active())
                    .collect(),
                ..IncidentQuery::default()
            })
            .await?;
        let active: HashMap<i64, Incident> = active_list.into_iter().map(|i| (i.id, i)).collect();
        // Which resolutions are already recorded: an AlertResolved entry for the fingerprint
        // after the alert last started.
        let mut recorded: HashMap<Fingerprint, model::Time> = HashMap::new();
        for id in active.keys() {
            for e in store.timeline(*id).await? {
                if e.kind == TimelineKind::AlertResolved
                    && let Some(fp) = e
                        .data
                        .get("fingerprint")
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.parse::<Fingerprint>().ok())
                {
                    let t = recorded.entry(fp).or_insert(e.at);
                    if e.at > *t {
                        *t = e.at;
                    }
                }
            }
        }
        let now = Utc::now();
        let mut resolved_noted = HashSet::new();
        for a in alerts {
            if a.alert.state_at(now) != AlertState::Resolved {
                continue;
            }
            let incident_active = a.incident_id.is_some_and(|id| active.contains_key(&id));
            let noted = recorded
                .get(&a.fingerprint)
                .is_some_and(|t| *t >= a.alert.starts_at);
            if !incident_active || noted {
                resolved_noted.insert(a.fingerprint);
            }
        }
        Ok(Core {
            active,
            resolved_noted,
        })
    }

    /// Correlates one alert: attaches it to an active incident or opens one.
    pub(crate) async fn correlate(
        &mut self,
        inner: &Arc<Inner>,
        alert: StoredAlert,
    ) -> Result<Option<IncidentUpdate>, AppError> {
        let now = Utc::now();
        if alert.alert.state_at(now) == AlertState::Firing {
            self.resolved_noted.remove(&alert.fingerprint);
        }
        if let Some(id) = alert.incident_id
            && self.active.contains_key(&id)
        {
            // Already in an active incident (e.g. a re-fired alert): nothing to decide.
            return Ok(None);
        }
        let store = &inner.store;
        let window = chrono::Duration::from_std(inner.config.correlation_window)
            .unwrap_or(chrono::Duration::minutes(30));
        let candidates: Vec<&Incident> = self.active.values().collect();
        let decision = glue::decide(&candidates, &alert, window, now);
        let (incident, opened) = match decision {
            Decision::Attach {
                incident_id,
                reason,
            } => {
                let mut inc = self
                    .active
                    .get(&incident_id)
                    .cloned()
                    .ok_or_else(|| AppError::NotFound(format!("incident {incident_id}")))?;
                let mut entries = Vec::new();
                if !inc.alerts.contains(&alert.fingerprint) {
                    entries = glue::attach(&mut inc, &alert, &reason, now);
                    store.update_incident(&inc).await?;
                }
                store.append_timeline(&entries).await?;
                (inc, false)
            }
            Decision::Open { reason } => {
                let (inc, mut entries) = glue::open(&alert, &reason, now);
                let inc = store.create_incident(&inc).await?;
                for e in &mut entries {
                    e.incident_id = inc.id;
                }
                store.append_timeline(&entries).await?;
                (inc, true)
            }
        };
        store
            .set_alert_incident(alert.fingerprint, incident.id)
            .await?;
        inner.pipeline.set_incident(alert.fingerprint, incident.id);
        self.active.insert(incident.id, incident.clone());
        let mut alert = alert;
        alert.incident_id = Some(incident.id);
        Ok(Some(IncidentUpdate {
            incident,
            alert,
            opened,
        }))
    }

    /// Records alerts that resolved (by `endsAt` or `resolve_timeout`) on their incidents.
    pub(crate) async fn note_resolved(
        &mut self,
        inner: &Arc<Inner>,
        resolved: Vec<StoredAlert>,
    ) -> Result<(), AppError> {
        let mut entries = Vec::new();
        let mut fps = Vec::new();
        for a in resolved {
            if self.resolved_noted.contains(&a.fingerprint) {
                continue;
            }
            let Some(id) = a.incident_id.filter(|id| self.active.contains_key(id)) else {
                self.resolved_noted.insert(a.fingerprint);
                continue;
            };
            let ends = a.alert.ends_at.unwrap_or_else(Utc::now);
            let how = if a.alert.timeout {
                "was not re-sent within resolve_timeout"
            } else {
                "ended (endsAt)"
            };
            entries.push(
                TimelineEntry::new(
                    id,
                    ends,
                    TimelineKind::AlertResolved,
                    "vigil",
                    format!("Alert {} resolved: it {how}", a.alert.name()),
                )
                .with_data(serde_json::json!({
                    "fingerprint": a.fingerprint.to_string(),
                    "labels": a.alert.labels,
                    "ends_at": ends,
                    "timeout": a.alert.timeout,
                })),
            );
            fps.push(a.fingerprint);
        }
        if !entries.is_empty() {
            inner.store.append_timeline(&entries).await?;
        }
        self.resolved_noted.extend(fps);
        Ok(())
    }

    async fn load_incident(&self, inner: &Inner, id: i64) -> Result<Incident, AppError> {
        if let Some(i) = self.active.get(&id) {
            return Ok(i.clone());
        }
        inner
            .store
            .get_incident(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("incident {id} not found")))
    }

    async fn save(
        &mut self,
        inner: &Inner,
        inc: Incident,
        entries: Vec<TimelineEntry>,
    ) -> Result<Incident, AppError> {
        inner.store.update_incident(&inc).await?;
        if !entries.is_empty() {
            inner.store.append_timeline(&entries).await?;
        }
        if inc.status.is_active() {
            self.active.insert(inc.id, inc.clone());
        } else {
            self.active.remove(&inc.id);
        }
        Ok(inc)
    }
}

pub(crate) async fn transition(
    inner: &Arc<Inner>,
    id: i64,
    to: IncidentStatus,
    actor: &str,
) -> Result<Incident, AppError> {
    let mut core = inner.core.lock().await;
    let mut inc = core.load_incident(inner, id).await?;
    let entries = glue::transition(&mut inc, to, actor, Utc::now()).map_err(AppError::Conflict)?;
    core.save(inner, inc, entries).await
}

pub(crate) async fn assign_commander(
    inner: &Arc<Inner>,
    id: i64,
    commander: &str,
    actor: &str,
) -> Result<Incident, AppError> {
    let mut core = inner.core.lock().await;
    let mut inc = core.load_incident(inner, id).await?;
    let entries = glue::assign_commander(&mut inc, commander, actor, Utc::now());
    core.save(inner, inc, entries).await
}

pub(crate) async fn add_note(
    inner: &Arc<Inner>,
    id: i64,
    text: &str,
    actor: &str,
) -> Result<TimelineEntry, AppError> {
    let core = inner.core.lock().await;
    let inc = core.load_incident(inner, id).await?;
    let entry = glue::add_note(&inc, text, actor, Utc::now());
    let mut stored = inner.store.append_timeline(&[entry]).await?;
    stored
        .pop()
        .ok_or_else(|| AppError::Unavailable("store returned no timeline entry".into()))
}

pub(crate) async fn edit_narrative(
    inner: &Arc<Inner>,
    id: i64,
    edit: NarrativeEdit,
    actor: &str,
) -> Result<Incident, AppError> {
    let mut core = inner.core.lock().await;
    let mut inc = core.load_incident(inner, id).await?;
    let entries =
        glue::edit_narrative(&mut inc, &edit, actor, Utc::now()).map_err(|(field, message)| {
            AppError::Invalid {
                field: Some(field),
                message,
            }
        })?;
    core.save(inner, inc, entries).await
}

pub(crate) async fn update_with(
    inner: &Arc<Inner>,
    id: i64,
    f: impl FnOnce(&mut Incident) + Send,
) -> Result<Incident, AppError> {
    let mut core = inner.core.lock().await;
    let mut inc = core.load_incident(inner, id).await?;
    f(&mut inc);
    inc.updated_at = Utc::now();
    core.save(inner, inc, Vec::new()).await
}
