//! The alert pipeline: merge by fingerprint → durable write (batched: every request queued
//! while a commit runs shares the next one) → correlation (one task, under the core lock) →
//! [`IncidentUpdate`] subscribers. A sweeper records alerts that resolved by `endsAt` or by
//! `resolve_timeout`.

use crate::{AppError, Inner};
use chrono::Utc;
use model::{AlertQuery, AlertState, Fingerprint, Incident, StoreError, StoredAlert};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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

pub(crate) struct WriteReq {
    alerts: Vec<StoredAlert>,
    done: oneshot::Sender<Result<(), String>>,
}

pub(crate) enum CorrMsg {
    Correlate(Vec<Fingerprint>),
    Sweep,
    Barrier(oneshot::Sender<()>),
}

pub(crate) struct Receivers {
    write: mpsc::UnboundedReceiver<WriteReq>,
    corr: mpsc::UnboundedReceiver<CorrMsg>,
}

/// In-memory view of every stored alert (the merge base) and the task queues.
pub(crate) struct Pipeline {
    cache: Mutex<HashMap<Fingerprint, StoredAlert>>,
    write_tx: mpsc::UnboundedSender<WriteReq>,
    corr_tx: mpsc::UnboundedSender<CorrMsg>,
}

impl Pipeline {
    pub(crate) fn new(all: Vec<StoredAlert>) -> (Pipeline, Receivers) {
        let (write_tx, write) = mpsc::unbounded_channel();
        let (corr_tx, corr) = mpsc::unbounded_channel();
        let cache = all.into_iter().map(|a| (a.fingerprint, a)).collect();
        (
            Pipeline {
                cache: Mutex::new(cache),
                write_tx,
                corr_tx,
            },
            Receivers { write, corr },
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

    /// Alerts of incidents that are resolved at `now`.
    pub(crate) fn resolved_with_incident(&self, now: model::Time) -> Vec<StoredAlert> {
        let Ok(c) = self.cache.lock() else {
            return Vec::new();
        };
        c.values()
            .filter(|a| a.incident_id.is_some() && a.alert.state_at(now) == AlertState::Resolved)
            .cloned()
            .collect()
    }

    pub(crate) fn send(&self, msg: CorrMsg) {
        let _ = self.corr_tx.send(msg);
    }
}

pub(crate) async fn ingest(
    inner: &Arc<Inner>,
    alerts: Vec<model::Alert>,
) -> Result<Vec<StoredAlert>, AppError> {
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
    let rx = {
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
        let (done, rx) = oneshot::channel();
        inner
            .pipeline
            .write_tx
            .send(WriteReq {
                alerts: merged.clone(),
                done,
            })
            .map_err(|_| AppError::ShuttingDown)?;
        rx
    };
    let result = match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(m)) => Err(AppError::Store(StoreError::Backend(m))),
        Err(_) => Err(AppError::ShuttingDown),
    };
    if let Err(e) = result {
        // Nothing half-written: the cache goes back to what the store holds.
        for a in &merged {
            let stored = inner.store.get_alert(a.fingerprint).await.ok().flatten();
            if let Ok(mut cache) = inner.pipeline.cache.lock() {
                match stored {
                    Some(s) => {
                        cache.insert(a.fingerprint, s);
                    }
                    None => {
                        cache.remove(&a.fingerprint);
                    }
                }
            }
        }
        return Err(e);
    }
    if !to_correlate.is_empty() {
        inner.pipeline.send(CorrMsg::Correlate(to_correlate));
    }
    Ok(merged)
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
        inner.pipeline.send(CorrMsg::Correlate(fps));
    }
    Ok(n)
}

pub(crate) async fn settle(inner: &Arc<Inner>) {
    let (tx, rx) = oneshot::channel();
    inner.pipeline.send(CorrMsg::Barrier(tx));
    let _ = rx.await;
}

pub(crate) fn spawn_tasks(inner: &Arc<Inner>, rx: Receivers) {
    let Receivers { write, corr } = rx;
    tokio::spawn(writer(inner.store.clone(), write));
    tokio::spawn(correlator(inner.clone(), corr));
    tokio::spawn(sweeper(inner.clone()));
    let i = inner.clone();
    tokio::spawn(async move {
        if let Err(e) = queue_unassigned(&i).await {
            tracing::error!(error = %e, "Cannot list uncorrelated alerts.");
        }
    });
}

/// Writes alerts in batches: each request waits for the commit that contains it.
async fn writer(store: Arc<dyn model::Store>, mut rx: mpsc::UnboundedReceiver<WriteReq>) {
    while let Some(first) = rx.recv().await {
        let mut reqs = vec![first];
        while reqs.len() < 512 {
            match rx.try_recv() {
                Ok(r) => reqs.push(r),
                Err(_) => break,
            }
        }
        let alerts: Vec<StoredAlert> = if reqs.len() == 1 {
            std::mem::take(&mut reqs[0].alerts)
        } else {
            let mut idx: HashMap<Fingerprint, usize> = HashMap::new();
            let mut out: Vec<StoredAlert> = Vec::new();
            for r in &mut reqs {
                for a in r.alerts.drain(..) {
                    match idx.get(&a.fingerprint) {
                        Some(&i) => out[i] = a,
                        None => {
                            idx.insert(a.fingerprint, out.len());
                            out.push(a);
                        }
                    }
                }
            }
            out
        };
        let res = store.upsert_alerts(&alerts).await.map_err(|e| {
            tracing::error!(error = %e, alerts = alerts.len(), "Storing alerts failed.");
            e.to_string()
        });
        for r in reqs {
            let _ = r.done.send(res.clone());
        }
    }
}

async fn correlator(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<CorrMsg>) {
    let mut stop = inner.shutdown.subscribe();
    loop {
        let msg = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = stop.changed() => return,
        };
        match msg {
            CorrMsg::Correlate(fps) => {
                let mut core = inner.core.lock().await;
                for fp in fps {
                    let Some(alert) = inner.pipeline.cached(fp) else {
                        continue;
                    };
                    match core.correlate(&inner, alert).await {
                        Ok(Some(update)) => {
                            let _ = inner.updates.send(update);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            // The alert stays without incident and is retried at the next start.
                            tracing::error!(error = %e, fingerprint = %fp, "Correlation failed.");
                        }
                    }
                }
            }
            CorrMsg::Sweep => {
                let resolved = inner.pipeline.resolved_with_incident(Utc::now());
                if !resolved.is_empty() {
                    let mut core = inner.core.lock().await;
                    if let Err(e) = core.note_resolved(&inner, resolved).await {
                        tracing::error!(error = %e, "Recording resolved alerts failed.");
                    }
                }
            }
            CorrMsg::Barrier(tx) => {
                let _ = tx.send(());
            }
        }
    }
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
