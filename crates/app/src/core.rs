//! The core: every incident mutation happens here, under one lock (`Inner::core`).

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
    correlator: incident::Correlator,
    /// Alerts whose resolution is already on their incident's timeline.
    resolved_noted: HashSet<Fingerprint>,
}

impl Core {
    pub(crate) async fn load(
        store: &Arc<dyn Store>,
        config: &crate::Config,
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
        let correlator = incident::Correlator::new(incident::CorrelationConfig {
            window: config.correlation_window,
            ..Default::default()
        });
        Ok(Core {
            active,
            correlator,
            resolved_noted,
        })
    }

    /// Correlates alerts in order: each attaches to an active incident or opens one. The store
    /// writes of the whole batch are issued together (incident rows, then timeline, then each
    /// alert's incident id last, so a crash in between leaves alerts to re-correlate at start).
    pub(crate) async fn correlate_batch(
        &mut self,
        inner: &Arc<Inner>,
        alerts: Vec<StoredAlert>,
    ) -> Result<Vec<IncidentUpdate>, AppError> {
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let store = &inner.store;
        let mut active: Vec<Incident> = self.active.values().cloned().collect();
        active.sort_by_key(|i| i.id);
        let mut entries: Vec<TimelineEntry> = Vec::new();
        let mut changed: Vec<i64> = Vec::new();
        let mut assigned: Vec<(StoredAlert, i64, bool)> = Vec::with_capacity(alerts.len());
        for alert in alerts {
            if alert.alert.state_at(now) == AlertState::Firing {
                self.resolved_noted.remove(&alert.fingerprint);
            }
            let mut c = self.correlator.correlate(&alert, &active, now);
            let id = if c.is_new {
                let stored = store.create_incident(&c.incident).await?;
                incident::assign_incident_id(&mut c.entries, stored.id);
                let id = stored.id;
                active.push(stored);
                id
            } else {
                let id = c.incident.id;
                if let Some(slot) = active.iter_mut().find(|i| i.id == id) {
                    *slot = c.incident;
                }
                if !changed.contains(&id) {
                    changed.push(id);
                }
                id
            };
            entries.extend(c.entries);
            assigned.push((alert, id, c.is_new));
        }
        let updates = changed
            .iter()
            .filter_map(|id| active.iter().find(|i| i.id == *id))
            .map(|i| store.update_incident(i));
        futures::future::try_join_all(updates).await?;
        store.append_timeline(&entries).await?;
        let sets = assigned
            .iter()
            .map(|(a, id, _)| store.set_alert_incident(a.fingerprint, *id));
        futures::future::try_join_all(sets).await?;
        self.active = active.into_iter().map(|i| (i.id, i)).collect();
        let mut out = Vec::with_capacity(assigned.len());
        for (mut alert, id, opened) in assigned {
            inner.pipeline.set_incident(alert.fingerprint, id);
            alert.incident_id = Some(id);
            if let Some(incident) = self.active.get(&id) {
                out.push(IncidentUpdate {
                    incident: incident.clone(),
                    alert,
                    opened,
                });
            }
        }
        Ok(out)
    }

    /// Alerts whose resolution is on the timeline already.
    pub(crate) fn resolved_noted(&self) -> &HashSet<Fingerprint> {
        &self.resolved_noted
    }

    /// Drops forgotten alerts from the resolution bookkeeping.
    pub(crate) fn forget(&mut self, fps: &[Fingerprint]) {
        for fp in fps {
            self.resolved_noted.remove(fp);
        }
    }

    /// Records alerts that resolved (by `endsAt` or `resolve_timeout`) on their incidents.
    pub(crate) async fn note_resolved(
        &mut self,
        inner: &Arc<Inner>,
        resolved: Vec<StoredAlert>,
    ) -> Result<(), AppError> {
        let now = Utc::now();
        let mut entries = Vec::new();
        let mut touched: Vec<i64> = Vec::new();
        for a in resolved {
            if self.resolved_noted.contains(&a.fingerprint) {
                continue;
            }
            self.resolved_noted.insert(a.fingerprint);
            let Some(inc) = a.incident_id.and_then(|id| self.active.get_mut(&id)) else {
                continue;
            };
            entries.push(incident::alert_resolved(inc, &a, now));
            if !touched.contains(&inc.id) {
                touched.push(inc.id);
            }
        }
        for id in touched {
            if let Some(inc) = self.active.get(&id) {
                inner.store.update_incident(inc).await?;
            }
        }
        if !entries.is_empty() {
            inner.store.append_timeline(&entries).await?;
        }
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
    let entry = incident::transition(&mut inc, to, actor, Utc::now()).map_err(lifecycle_error)?;
    core.save(inner, inc, vec![entry]).await
}

pub(crate) async fn assign_commander(
    inner: &Arc<Inner>,
    id: i64,
    commander: &str,
    actor: &str,
) -> Result<Incident, AppError> {
    let mut core = inner.core.lock().await;
    let mut inc = core.load_incident(inner, id).await?;
    let entry = incident::assign_commander(&mut inc, commander, actor, Utc::now())
        .map_err(lifecycle_error)?;
    core.save(inner, inc, vec![entry]).await
}

pub(crate) async fn add_note(
    inner: &Arc<Inner>,
    id: i64,
    text: &str,
    actor: &str,
) -> Result<TimelineEntry, AppError> {
    let mut core = inner.core.lock().await;
    let mut inc = core.load_incident(inner, id).await?;
    let entry = incident::add_note(&mut inc, actor, text, Utc::now()).map_err(lifecycle_error)?;
    inner.store.update_incident(&inc).await?;
    let mut stored = inner.store.append_timeline(&[entry]).await?;
    if inc.status.is_active() {
        core.active.insert(inc.id, inc);
    }
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
    let now = Utc::now();
    let mut entries = Vec::new();
    for (field, value) in edit.fields {
        let e = incident::edit_narrative(&mut inc, &field, value, actor, now).map_err(|e| {
            AppError::Invalid {
                field: Some(field.clone()),
                message: e.to_string(),
            }
        })?;
        entries.push(e);
    }
    if let Some(plan) = edit.action_plan {
        entries
            .push(incident::edit_action_plan(&mut inc, plan, actor, now).map_err(lifecycle_error)?);
    }
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

fn lifecycle_error(e: incident::LifecycleError) -> AppError {
    match e {
        incident::LifecycleError::InvalidTransition { .. }
        | incident::LifecycleError::Unchanged { .. } => AppError::Conflict(e.to_string()),
        incident::LifecycleError::Empty { field } => AppError::Invalid {
            field: Some(field.to_string()),
            message: e.to_string(),
        },
        other => AppError::Invalid {
            field: None,
            message: other.to_string(),
        },
    }
}
