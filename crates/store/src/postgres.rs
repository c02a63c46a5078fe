//! The PostgreSQL backend (tokio-postgres, no TLS: meant for a loopback or private-network server).
//!
//! A small pool of connections, each used by one request at a time; every write runs in its own
//! transaction and returns after `COMMIT`, which PostgreSQL makes durable (`synchronous_commit`
//! defaults to `on`). Alert upserts, the hot path, go through one writer task that does group
//! commit like the SQLite backend: every upsert queued while the previous statement ran is merged
//! into the next single `INSERT … SELECT FROM UNNEST(…) ON CONFLICT` statement. Documents are
//! stored as `jsonb`.

use crate::codec::{
    action_status_str, fingerprint, fp_key, from_doc, kind_str, nanos, severity_rank, to_doc,
};
use crate::migrations::{self, Migration};
use model::{
    Action, ActionStatus, AlertQuery, Evidence, Fingerprint, Incident, IncidentQuery, Store,
    StoreError, StoredAlert, TimelineEntry,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, MutexGuard, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

/// Connections in the pool.
const POOL_SIZE: usize = 8;
/// Advisory lock key serialising migrations between processes ("vigil" in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6967_696c;

type Param = Box<dyn ToSql + Sync + Send>;

fn backend(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

/// A Vigil store in a PostgreSQL database.
pub struct PgStore {
    url: String,
    pool: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
    /// The alert writer task (group commit of upserts); stops when the store is dropped.
    alert_writer: mpsc::UnboundedSender<AlertWrite>,
}

/// One alert row: fingerprint, incident id, starts, ends, updated (ns), JSON document.
type AlertRow = (i64, Option<i64>, i64, Option<i64>, i64, String);

/// An `upsert_alerts` call waiting for the alert writer.
struct AlertWrite {
    rows: Vec<AlertRow>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Most rows folded into one upsert statement.
const MAX_GROUP_ROWS: usize = 10_000;

/// The alert writer: takes every upsert queued while the previous statement ran and writes them
/// all in one statement (one transaction, one WAL flush), then answers every waiter. If a merged
/// statement fails, each request is retried alone so one bad request does not fail the others.
async fn alert_writer(url: String, mut rx: mpsc::UnboundedReceiver<AlertWrite>) {
    let mut client: Option<Client> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut n = batch[0].rows.len();
        while n < MAX_GROUP_ROWS {
            match rx.try_recv() {
                Ok(w) => {
                    n += w.rows.len();
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        let all: Vec<&AlertRow> = batch.iter().flat_map(|w| w.rows.iter()).collect();
        match upsert_rows(&url, &mut client, &all).await {
            Ok(()) => {
                for w in batch {
                    let _ = w.reply.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = batch.pop().map(|w| w.reply.send(Err(e)));
            }
            Err(_) => {
                for w in batch {
                    let rows: Vec<&AlertRow> = w.rows.iter().collect();
                    let r = upsert_rows(&url, &mut client, &rows).await;
                    let _ = w.reply.send(r);
                }
            }
        }
    }
}

/// Upserts rows in one statement, with the result a sequence of single upserts would have: the
/// last row of a fingerprint wins, except that a row without incident keeps the latest one given.
async fn upsert_rows(
    url: &str,
    client: &mut Option<Client>,
    rows: &[&AlertRow],
) -> Result<(), StoreError> {
    let mut index: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut unique: Vec<&AlertRow> = Vec::with_capacity(rows.len());
    let mut incident_ids: Vec<Option<i64>> = Vec::with_capacity(rows.len());
    for r in rows {
        match index.get(&r.0) {
            Some(&i) => {
                incident_ids[i] = r.1.or(incident_ids[i]);
                unique[i] = r;
            }
            None => {
                index.insert(r.0, unique.len());
                unique.push(r);
                incident_ids.push(r.1);
            }
        }
    }
    let fps: Vec<i64> = unique.iter().map(|r| r.0).collect();
    let starts: Vec<i64> = unique.iter().map(|r| r.2).collect();
    let ends: Vec<Option<i64>> = unique.iter().map(|r| r.3).collect();
    let updated: Vec<i64> = unique.iter().map(|r| r.4).collect();
    let docs: Vec<&str> = unique.iter().map(|r| r.5.as_str()).collect();
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = Some(connect(url).await.map_err(|e| match e {
            StoreError::Config(m) => StoreError::Backend(m),
            other => other,
        })?);
    }
    let c = client
        .as_ref()
        .ok_or_else(|| StoreError::Backend("no connection".into()))?;
    c.execute(
        concat!(
            "INSERT INTO alerts (fingerprint, incident_id, starts_at, ends_at, updated_at, doc)
             SELECT f, i, s, e, u, d::jsonb
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
                  AS t(f, i, s, e, u, d) ",
            crate::alert_upsert_conflict!()
        ),
        &[&fps, &incident_ids, &starts, &ends, &updated, &docs],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| StoreError::Config(format!("cannot connect to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), applies pending migrations
    /// and returns the store.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut first = connect(url).await?;
        migrate(&mut first, migrations::POSTGRES).await?;
        let mut pool = Vec::with_capacity(POOL_SIZE);
        pool.push(Mutex::new(Some(first)));
        for _ in 1..POOL_SIZE {
            pool.push(Mutex::new(None));
        }
        let (alert_writer, rx) = mpsc::unbounded_channel();
        tokio::spawn(self::alert_writer(url.to_string(), rx));
        Ok(PgStore {
            url: url.to_string(),
            pool,
            next: AtomicUsize::new(0),
            alert_writer,
        })
    }

    /// A live connection for this request (idle ones first, then round-robin), reconnecting a
    /// closed one.
    async fn client(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        let mut guard = None;
        for slot in &self.pool {
            if let Ok(g) = slot.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut g = match guard {
            Some(g) => g,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
                self.pool[i].lock().await
            }
        };
        if g.as_ref().is_none_or(Client::is_closed) {
            // Reconnecting later is a backend failure, not a configuration error.
            *g = Some(connect(&self.url).await.map_err(|e| match e {
                StoreError::Config(m) => StoreError::Backend(m),
                other => other,
            })?);
        }
        Ok(g)
    }

    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let g = self.client().await?;
        let c = g
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        c.query(sql, &refs).await.map_err(backend)
    }
}

async fn migrate(client: &mut Client, list: &[Migration]) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY NOT NULL,
             name TEXT NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .map_err(backend)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .map_err(backend)?
        .get(0);
    let latest = migrations::latest(list);
    if current > latest {
        return Err(StoreError::Config(format!(
            "PostgreSQL schema version {current} is newer than this Vigil knows ({latest})"
        )));
    }
    for m in list.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await.map_err(|e| {
            StoreError::Backend(format!(
                "postgres migration {} ({}): {e}",
                m.version, m.name
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &nanos(chrono::Utc::now())],
        )
        .await
        .map_err(backend)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied PostgreSQL migration"
        );
    }
    tx.commit().await.map_err(backend)
}

fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(backend)
}

fn decode_alert(row: &Row) -> Result<StoredAlert, StoreError> {
    let fp: i64 = col(row, 0)?;
    let incident_id: Option<i64> = col(row, 1)?;
    let doc: String = col(row, 2)?;
    Ok(StoredAlert {
        fingerprint: fingerprint(fp),
        alert: from_doc("alert", &doc)?,
        incident_id,
    })
}

fn decode_incident(row: &Row) -> Result<Incident, StoreError> {
    let mut i: Incident = from_doc("incident", &col::<String>(row, 1)?)?;
    i.id = col(row, 0)?;
    Ok(i)
}

fn decode_entry(row: &Row) -> Result<TimelineEntry, StoreError> {
    let mut e: TimelineEntry = from_doc("timeline entry", &col::<String>(row, 2)?)?;
    e.id = col(row, 0)?;
    e.incident_id = col(row, 1)?;
    Ok(e)
}

fn decode_action(row: &Row) -> Result<Action, StoreError> {
    let mut a: Action = from_doc("action", &col::<String>(row, 1)?)?;
    a.id = col(row, 0)?;
    Ok(a)
}

fn decode_evidence(row: &Row) -> Result<Evidence, StoreError> {
    let mut e: Evidence = from_doc("evidence", &col::<String>(row, 1)?)?;
    e.id = col(row, 0)?;
    Ok(e)
}

fn decode_all<T>(
    rows: &[Row],
    f: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

fn limit_i64(limit: Option<usize>) -> Option<i64> {
    limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn upsert_alerts(&self, alerts: &[StoredAlert]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(alerts.len());
        for a in alerts {
            rows.push((
                fp_key(a.fingerprint),
                a.incident_id,
                nanos(a.alert.starts_at),
                a.alert.ends_at.map(nanos),
                nanos(a.alert.updated_at),
                to_doc("alert", &a.alert)?,
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.alert_writer
            .send(AlertWrite { rows, reply })
            .map_err(|_| StoreError::Backend("PostgreSQL alert writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("PostgreSQL alert writer has stopped".into()))?
    }

    async fn get_alert(&self, fp: Fingerprint) -> Result<Option<StoredAlert>, StoreError> {
        let rows = self
            .query(
                "SELECT fingerprint, incident_id, doc::text FROM alerts WHERE fingerprint = $1",
                &[Box::new(fp_key(fp))],
            )
            .await?;
        rows.first().map(decode_alert).transpose()
    }

    async fn list_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        let mut sql =
            String::from("SELECT fingerprint, incident_id, doc::text FROM alerts WHERE TRUE");
        let mut p: Vec<Param> = Vec::new();
        if let Some(id) = q.incident_id {
            p.push(Box::new(id));
            sql += &format!(" AND incident_id = ${}", p.len());
        }
        if q.unassigned {
            sql += " AND incident_id IS NULL";
        }
        if let Some(t) = q.firing_at {
            p.push(Box::new(nanos(t)));
            sql += &format!(" AND (ends_at IS NULL OR ends_at > ${})", p.len());
        }
        sql += " ORDER BY updated_at DESC, fingerprint";
        if let Some(l) = limit_i64(q.limit) {
            p.push(Box::new(l));
            sql += &format!(" LIMIT ${}", p.len());
        }
        decode_all(&self.query(&sql, &p).await?, decode_alert)
    }

    async fn set_alert_incident(
        &self,
        fp: Fingerprint,
        incident_id: i64,
    ) -> Result<(), StoreError> {
        let key = fp.to_string();
        let g = self.client().await?;
        let c = g
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let n = c
            .execute(
                "UPDATE alerts SET incident_id = $1 WHERE fingerprint = $2",
                &[&incident_id, &fp_key(fp)],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "alert",
                id: key,
            });
        }
        Ok(())
    }

    async fn create_incident(&self, incident: &Incident) -> Result<Incident, StoreError> {
        let doc = to_doc("incident", incident)?;
        let g = self.client().await?;
        let c = g
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let row = c
            .query_one(
                "INSERT INTO incidents (status, severity, drill, detected_at, updated_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb) RETURNING id",
                &[
                    &incident.status.as_str(),
                    &severity_rank(incident.severity),
                    &incident.drill,
                    &nanos(incident.detected_at),
                    &nanos(incident.updated_at),
                    &doc,
                ],
            )
            .await
            .map_err(backend)?;
        Ok(Incident {
            id: col(&row, 0)?,
            ..incident.clone()
        })
    }

    async fn update_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        let doc = to_doc("incident", incident)?;
        let g = self.client().await?;
        let c = g
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let n = c
            .execute(
                "UPDATE incidents SET status = $1, severity = $2, drill = $3, detected_at = $4,
                 updated_at = $5, doc = $6::text::jsonb WHERE id = $7",
                &[
                    &incident.status.as_str(),
                    &severity_rank(incident.severity),
                    &incident.drill,
                    &nanos(incident.detected_at),
                    &nanos(incident.updated_at),
                    &doc,
                    &incident.id,
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "incident",
                id: incident.id.to_string(),
            });
        }
        Ok(())
    }

    async fn get_incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let rows = self
            .query(
                "SELECT id, doc::text FROM incidents WHERE id = $1",
                &[Box::new(id)],
            )
            .await?;
        rows.first().map(decode_incident).transpose()
    }

    async fn list_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let mut sql = String::from("SELECT id, doc::text FROM incidents WHERE TRUE");
        let mut p: Vec<Param> = Vec::new();
        if !q.statuses.is_empty() {
            let names: Vec<String> = q.statuses.iter().map(|s| s.as_str().to_string()).collect();
            p.push(Box::new(names));
            sql += &format!(" AND status = ANY(${})", p.len());
        }
        if let Some(s) = q.min_severity {
            p.push(Box::new(severity_rank(s)));
            sql += &format!(" AND severity >= ${}", p.len());
        }
        if let Some(d) = q.drill {
            p.push(Box::new(d));
            sql += &format!(" AND drill = ${}", p.len());
        }
        if let Some(t) = q.since {
            p.push(Box::new(nanos(t)));
            sql += &format!(" AND detected_at >= ${}", p.len());
        }
        sql += " ORDER BY detected_at DESC, id DESC";
        if let Some(l) = limit_i64(q.limit) {
            p.push(Box::new(l));
            sql += &format!(" LIMIT ${}", p.len());
        }
        decode_all(&self.query(&sql, &p).await?, decode_incident)
    }

    async fn append_timeline(
        &self,
        entries: &[TimelineEntry],
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut docs = Vec::with_capacity(entries.len());
        for e in entries {
            docs.push(to_doc("timeline entry", e)?);
        }
        let mut g = self.client().await?;
        let c = g
            .as_mut()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let tx = c.transaction().await.map_err(backend)?;
        let stmt = tx
            .prepare(
                "INSERT INTO timeline (incident_id, at, kind, doc) VALUES ($1, $2, $3, $4::text::jsonb)
                 RETURNING id",
            )
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(entries.len());
        for (e, doc) in entries.iter().zip(&docs) {
            let row = tx
                .query_one(
                    &stmt,
                    &[&e.incident_id, &nanos(e.at), &kind_str(e.kind), doc],
                )
                .await
                .map_err(backend)?;
            out.push(TimelineEntry {
                id: col(&row, 0)?,
                ..e.clone()
            });
        }
        tx.commit().await.map_err(backend)?;
        Ok(out)
    }

    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows = self
            .query(
                "SELECT id, incident_id, doc::text FROM timeline WHERE incident_id = $1 ORDER BY at, id",
                &[Box::new(incident_id)],
            )
            .await?;
        decode_all(&rows, decode_entry)
    }

    async fn save_action(&self, action: &Action) -> Result<Action, StoreError> {
        let doc = to_doc("action", action)?;
        let status = action_status_str(action.status);
        let requested = nanos(action.requested_at);
        let g = self.client().await?;
        let c = g
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        if action.id == 0 {
            let row = c
                .query_one(
                    "INSERT INTO actions (incident_id, status, requested_at, doc)
                     VALUES ($1, $2, $3, $4::text::jsonb) RETURNING id",
                    &[&action.incident_id, &status, &requested, &doc],
                )
                .await
                .map_err(backend)?;
            return Ok(Action {
                id: col(&row, 0)?,
                ..action.clone()
            });
        }
        let n = c
            .execute(
                "UPDATE actions SET incident_id = $1, status = $2, requested_at = $3,
                 doc = $4::text::jsonb WHERE id = $5",
                &[&action.incident_id, &status, &requested, &doc, &action.id],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "action",
                id: action.id.to_string(),
            });
        }
        Ok(action.clone())
    }

    async fn get_action(&self, id: i64) -> Result<Option<Action>, StoreError> {
        let rows = self
            .query(
                "SELECT id, doc::text FROM actions WHERE id = $1",
                &[Box::new(id)],
            )
            .await?;
        rows.first().map(decode_action).transpose()
    }

    async fn list_actions(
        &self,
        incident_id: Option<i64>,
        status: Option<ActionStatus>,
    ) -> Result<Vec<Action>, StoreError> {
        let mut sql = String::from("SELECT id, doc::text FROM actions WHERE TRUE");
        let mut p: Vec<Param> = Vec::new();
        if let Some(id) = incident_id {
            p.push(Box::new(id));
            sql += &format!(" AND incident_id = ${}", p.len());
        }
        if let Some(s) = status {
            p.push(Box::new(action_status_str(s)));
            sql += &format!(" AND status = ${}", p.len());
        }
        sql += " ORDER BY requested_at, id";
        decode_all(&self.query(&sql, &p).await?, decode_action)
    }

    async fn add_evidence(&self, evidence: &Evidence) -> Result<Evidence, StoreError> {
        let doc = to_doc("evidence", evidence)?;
        let g = self.client().await?;
        let c = g
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        let row = c
            .query_one(
                "INSERT INTO evidence (incident_id, collected_at, doc)
                 VALUES ($1, $2, $3::text::jsonb) RETURNING id",
                &[&evidence.incident_id, &nanos(evidence.collected_at), &doc],
            )
            .await
            .map_err(backend)?;
        Ok(Evidence {
            id: col(&row, 0)?,
            ..evidence.clone()
        })
    }

    async fn list_evidence(&self, incident_id: i64) -> Result<Vec<Evidence>, StoreError> {
        let rows = self
            .query(
                "SELECT id, doc::text FROM evidence WHERE incident_id = $1 ORDER BY collected_at, id",
                &[Box::new(incident_id)],
            )
            .await?;
        decode_all(&rows, decode_evidence)
    }
}
