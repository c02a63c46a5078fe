//! The alert pipeline: merge by fingerprint → durable write (the request's own task hands it to
//! the store's group commit: every write queued while a commit runs shares the next one) →
//! correlation (one task, under the core lock) → [`IncidentUpdate`] subscribers. A sweeper
//! records alerts that resolved by `endsAt` or by `resolve_timeout`.

use crate::{AppError, Inner};
use chrono::Utc;
use futures::FutureExt;
use model::{AlertQuery, AlertState, Fingerprint, Incident, StoreError, StoredAlert};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A store write in flight.
type WriteFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

/// Published after each alert is correlated into an incident.
#[derive(Debug, Clone)]
pub struct IncidentUpdate {
    /// The incident as stored after the alert joined (or opened) it.
    pub incident: Incident,
    /// The alert.
    pub alert: StoredAlert,
    /// Whether the alert opened the incident.
    pub opened: bool,
}

pub(crate) enum CorrMsg {
    Correlate(Vec<Fingerprint>),
    /// Alerts the store listed without an incident: those that got one meanwhile (received
    /// and correlated since the listing) are skipped.
    Unassigned(Vec<Fingerprint>),
    Sweep,
    Barrier(oneshot::Sender<()>),
}

pub(crate) struct Receivers {
    corr: mpsc::UnboundedReceiver<CorrMsg>,
}

/// In-memory view of every stored alert (the merge base) and the correlator's queue.
pub(crate) struct Pipeline {
    cache: Mutex<HashMap<Fingerprint, StoredAlert>>,
    corr_tx: mpsc::UnboundedSender<CorrMsg>,
}

impl Pipeline {
    pub(crate) fn new(all: Vec<StoredAlert>) -> (Pipeline, Receivers) {
        let (corr_tx, corr) = mpsc::unbounded_channel();
        let cache = all.into_iter().map(|a| (a.fingerprint, a)).collect();
        (
            Pipeline {
                cache: Mutex::new(cache),
                corr_tx,
            },
            Receivers { corr },
        )
    }

    pub(crate) fn cached(&self, fp: Fingerprint) -> Option<StoredAlert> {
        self.cache.lock().ok()?.get(&fp).cloned()
    }

    pub(crate) fn set_incident(&self, fp: Fingerprint, incident_id: i64) {
        if let Ok(mut c) = self.cache.lock()
            && let Some(a) = c.get_mut(&fp)
        {
            a.incident_id = Some(incident_id);
        }
    }

    /// Alerts with an incident that are resolved at `now`, except those in `noted`.
    pub(crate) fn resolved_with_incident(
        &self,
        now: model::Time,
        noted: &std::collections::HashSet<Fingerprint>,
    ) -> Vec<StoredAlert> {
        let Ok(c) = self.cache.lock() else {
            return Vec::new();
        };
        c.values()
            .filter(|a| {
                a.incident_id.is_some()
                    && !noted.contains(&a.fingerprint)
                    && a.alert.state_at(now) == AlertState::Resolved
            })
            .cloned()
            .collect()
    }

    /// Forgets alerts resolved before `before` whose resolution is recorded (or that have no
    /// incident), as Alertmanager garbage-collects resolved alerts. They stay in the store; a
    /// later instance of one is merged as new (it would restart anyway). Returns the forgotten.
    pub(crate) fn forget_resolved(
        &self,
        before: model::Time,
        noted: &std::collections::HashSet<Fingerprint>,
    ) -> Vec<Fingerprint> {
        let Ok(mut c) = self.cache.lock() else {
            return Vec::new();
        };
        let old: Vec<Fingerprint> = c
            .values()
            .filter(|a| {
                a.alert.ends_at.is_some_and(|e| e < before)
                    && (a.incident_id.is_none() || noted.contains(&a.fingerprint))
            })
            .map(|a| a.fingerprint)
            .collect();
        for fp in &old {
            c.remove(fp);
        }
        old
    }

    pub(crate) fn send(&self, msg: CorrMsg) {
        let _ = self.corr_tx.send(msg);
    }
}

pub(crate) async fn ingest(
    inner: &Arc<Inner>,
    alerts: Vec<model::Alert>,
) -> Result<Vec<Fingerprint>, AppError> {
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    if *inner.shutdown.borrow() {
        return Err(AppError::ShuttingDown);
    }
    let now = Utc::now();
    let rt = chrono::Duration::from_std(inner.config.resolve_timeout)
        .unwrap_or(chrono::Duration::minutes(5));
    let mut merged: Vec<StoredAlert> = Vec::with_capacity(alerts.len());
    let mut to_correlate = Vec::new();
    let fps: Vec<Fingerprint>;
    let write = {
        let mut cache = inner
            .pipeline
            .cache
            .lock()
            .map_err(|_| AppError::Unavailable("alert cache poisoned".into()))?;
        for mut a in alerts {
            if a.ends_at.is_none() {
                // Alertmanager: an alert without endsAt resolves resolve_timeout after receipt
                // unless it is re-sent.
                a.ends_at = Some(now + rt);
                a.timeout = true;
            }
            a.updated_at = now;
            let fp = a.fingerprint();
            match cache.get_mut(&fp) {
                Some(existing) => {
                    let was_resolved = existing.alert.state_at(now) == AlertState::Resolved;
                    existing.alert.merge(a);
                    let refired =
                        was_resolved && existing.alert.state_at(now) == AlertState::Firing;
                    if existing.incident_id.is_none() || refired {
                        to_correlate.push(fp);
                    }
                    merged.push(existing.clone());
                }
                None => {
                    let sa = StoredAlert {
                        fingerprint: fp,
                        alert: a,
                        incident_id: None,
                    };
                    cache.insert(fp, sa.clone());
                    to_correlate.push(fp);
                    merged.push(sa);
                }
            }
        }
        // The same fingerprint twice in one request: keep the last (fully merged) copy.
        if merged.len() > 1 {
            let mut last: HashMap<Fingerprint, usize> = HashMap::new();
            for (i, a) in merged.iter().enumerate() {
                last.insert(a.fingerprint, i);
            }
            if last.len() != merged.len() {
                let mut i = 0;
                merged.retain(|a| {
                    let keep = last.get(&a.fingerprint) == Some(&i);
                    i += 1;
                    keep
                });
            }
            to_correlate.sort();
            to_correlate.dedup();
        }
        fps = merged.iter().map(|a| a.fingerprint).collect();
        let store = inner.store.clone();
        let mut write: WriteFuture = Box::pin(async move { store.upsert_alerts(&merged).await });
        // Polled once under the cache lock: the store queues the write in its first poll
        // (`Store::upsert_alerts`' ordering contract), so two states of one alert are written
        // in the order they were merged.
        match (&mut write).now_or_never() {
            Some(done) => Box::pin(std::future::ready(done)),
            None => write,
        }
    };
    let result = write.await.map_err(AppError::Store);
    if let Err(e) = result {
        // Nothing half-written: the cache goes back to what the store holds.
        for fp in &fps {
            let stored = inner.store.get_alert(*fp).await.ok().flatten();
            if let Ok(mut cache) = inner.pipeline.cache.lock() {
                match stored {
                    Some(s) => {
                        cache.insert(*fp, s);
                    }
                    None => {
                        cache.remove(fp);
                    }
                }
            }
        }
        return Err(e);
    }
    if !to_correlate.is_empty() {
        inner.pipeline.send(CorrMsg::Correlate(to_correlate));
    }
    Ok(fps)
}

pub(crate) async fn queue_unassigned(inner: &Arc<Inner>) -> Result<usize, AppError> {
    let unassigned = inner
        .store
        .list_alerts(&AlertQuery {
            unassigned: true,
            ..AlertQuery::default()
        })
        .await?;
    let mut fps: Vec<Fingerprint> = unassigned.iter().map(|a| a.fingerprint).collect();
    // Oldest first, so incidents open in the order the alerts arrived.
    fps.reverse();
    let n = fps.len();
    if n > 0 {
        tracing::info!(
            alerts = n,
            "Correlating stored alerts that have no incident yet."
        );
        inner.pipeline.send(CorrMsg::Unassigned(fps));
    }
    Ok(n)
}

pub(crate) async fn settle(inner: &Arc<Inner>) {
    let (tx, rx) = oneshot::channel();
    inner.pipeline.send(CorrMsg::Barrier(tx));
    let _ = rx.await;
}

pub(crate) fn spawn_tasks(inner: &Arc<Inner>, rx: Receivers) {
    let Receivers { corr } = rx;
    tokio::spawn(correlator(inner.clone(), corr));
    tokio::spawn(sweeper(inner.clone()));
    let i = inner.clone();
    tokio::spawn(async move {
        if let Err(e) = queue_unassigned(&i).await {
            tracing::error!(error = %e, "Cannot list uncorrelated alerts.");
        }
    });
}

async fn correlator(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<CorrMsg>) {
    let mut stop = inner.shutdown.subscribe();
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = stop.changed() => return,
        };
        match still_unassigned(&inner, msg) {
            CorrMsg::Correlate(mut fps) => {
                // Take every queued batch at once: one round of store writes for all of them.
                let mut later = Vec::new();
                while fps.len() < 256 {
                    match rx.try_recv().map(|m| still_unassigned(&inner, m)) {
                        Ok(CorrMsg::Correlate(more)) => fps.extend(more),
                        Ok(other) => {
                            later.push(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let alerts: Vec<StoredAlert> = fps
                    .into_iter()
                    .filter_map(|fp| inner.pipeline.cached(fp))
                    .collect();
                let mut core = inner.core.lock().await;
                match core.correlate_batch(&inner, alerts).await {
                    Ok(updates) => {
                        for u in updates {
                            let _ = inner.updates.send(u);
                        }
                    }
                    Err(e) => {
                        // Those alerts stay without incident and are retried at the next start.
                        tracing::error!(error = %e, "Correlation failed.");
                    }
                }
                drop(core);
                for m in later {
                    handle_other(&inner, m).await;
                }
            }
            other => handle_other(&inner, other).await,
        }
    }
}

/// Turns [`CorrMsg::Unassigned`] into a [`CorrMsg::Correlate`] of the alerts that still have no
/// incident; other messages pass unchanged.
fn still_unassigned(inner: &Arc<Inner>, msg: CorrMsg) -> CorrMsg {
    match msg {
        CorrMsg::Unassigned(fps) => CorrMsg::Correlate(
            fps.into_iter()
                .filter(|fp| {
                    inner
                        .pipeline
                        .cached(*fp)
                        .is_some_and(|a| a.incident_id.is_none())
                })
                .collect(),
        ),
        other => other,
    }
}

async fn handle_other(inner: &Arc<Inner>, msg: CorrMsg) {
    match still_unassigned(inner, msg) {
        // (`still_unassigned` has filtered an `Unassigned` into a `Correlate` already.)
        CorrMsg::Correlate(fps) | CorrMsg::Unassigned(fps) => {
            let alerts: Vec<StoredAlert> = fps
                .into_iter()
                .filter_map(|fp| inner.pipeline.cached(fp))
                .collect();
            let mut core = inner.core.lock().await;
            match core.correlate_batch(inner, alerts).await {
                Ok(updates) => {
                    for u in updates {
                        let _ = inner.updates.send(u);
                    }
                }
                Err(e) => tracing::error!(error = %e, "Correlation failed."),
            }
        }
        CorrMsg::Sweep => {
            let mut core = inner.core.lock().await;
            let resolved = inner
                .pipeline
                .resolved_with_incident(Utc::now(), core.resolved_noted());
            if !resolved.is_empty()
                && let Err(e) = core.note_resolved(inner, resolved).await
            {
                tracing::error!(error = %e, "Recording resolved alerts failed.");
            }
            let gone = inner.pipeline.forget_resolved(
                Utc::now() - forget_after(&inner.config),
                core.resolved_noted(),
            );
            core.forget(&gone);
        }
        CorrMsg::Barrier(tx) => {
            let _ = tx.send(());
        }
    }
}

/// Resolved alerts are kept in memory this long (at least `resolve_timeout`) after they ended.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// How long after they ended resolved alerts stay in memory.
pub(crate) fn forget_after(config: &crate::Config) -> chrono::Duration {
    chrono::Duration::from_std(config.resolve_timeout.max(FORGET_AFTER))
        .unwrap_or(chrono::Duration::hours(1))
}

/// How often the sweeper looks for alerts that resolved.
pub(crate) fn sweep_interval(resolve_timeout: Duration) -> Duration {
    (resolve_timeout / 10).clamp(Duration::from_millis(200), Duration::from_secs(10))
}

async fn sweeper(inner: Arc<Inner>) {
    let mut stop = inner.shutdown.subscribe();
    let mut tick = tokio::time::interval(sweep_interval(inner.config.resolve_timeout));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => inner.pipeline.send(CorrMsg::Sweep),
            _ = stop.changed() => return,
        }
    }
}
