//! The SQLite backend.
//!
//! One dedicated writer thread owns the only writing connection and does *group commit*: it takes
//! every write queued while the previous commit was syncing, runs each in its own savepoint inside
//! one transaction, commits once, and only then answers every waiter. Whether that commit fsyncs
//! the WAL follows [`crate::SqliteSync`]: by default a group that changes any state does, and a
//! group of alert intake alone does when the last fsync is [`crate::SqliteSync::INTAKE_SYNC_WITHIN`]
//! old (an idle writer fsyncs what is left). A write that fails rolls back to its savepoint without disturbing the others in the
//! batch. Reads run on a small pool of read-only connections through `spawn_blocking`; WAL lets them
//! proceed while the writer commits, and each read sees every commit acknowledged before it began.
//!
//! Alert upserts, the bulk of all writes, are appended to `alert_log` rather than applied to
//! `alerts` in place: an append lands on the log's last page, so a commit of a hundred re-sent
//! alerts writes a handful of WAL pages instead of a random table page and two index pages per
//! alert. The writer folds the log into `alerts`, in order, inside its transactions: when the log
//! has [`FOLD_AT`] rows (a chunk with each commit), after [`IDLE_FOLD`] without writes, before any write that changes
//! `alerts` itself, and when a read of `alerts` finds unfolded rows (it queues a fold and waits
//! for it). Readers therefore always see every acknowledged alert in `alerts`.

use crate::codec::{
    action_status_str, fingerprint, fp_key, from_doc, kind_str, nanos, severity_rank, to_doc,
};
use crate::migrations::{self, Migration};
use model::{
    Action, ActionStatus, AlertQuery, Evidence, Fingerprint, Incident, IncidentQuery, Store,
    StoreError, StoredAlert, TimelineEntry,
};
use rusqlite::{Connection, OpenFlags, ToSql, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

/// Most writes folded into one transaction.
const MAX_GROUP: usize = 4096;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// The alert log is folded into `alerts` once it holds this many rows ...
const FOLD_AT: u64 = 2048;
/// ... this many at a time, one chunk with each group commit, so no commit grows long.
const FOLD_CHUNK: u64 = 512;
/// The alert log is folded after this long without writes.
const IDLE_FOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// A boxed query parameter that can cross to the blocking pool.
type Param = Box<dyn ToSql + Send>;

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

/// What the writer thread runs for one queued write.
trait WriteJob: Send {
    /// Runs inside the group transaction; returns what to do once the commit is known.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn FnOnce(Result<(), String>) + Send>;
    /// Answers without running (the transaction could not begin).
    fn fail(self: Box<Self>, error: String);
    /// Whether the alert log must be folded into `alerts` before this job runs.
    fn needs_fold(&self) -> bool;
    /// Whether the job writes anything but alert intake (its commit then fsyncs in tiered mode).
    fn changes_state(&self) -> bool;
}

struct Job<F, R> {
    f: F,
    reply: oneshot::Sender<Result<R, StoreError>>,
    fold: bool,
    /// False for alert intake only.
    state: bool,
}

impl<F, R> WriteJob for Job<F, R>
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn FnOnce(Result<(), String>) + Send> {
        let Job { f, reply, .. } = *self;
        let exec = |sql: &str| {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute([]))
                .map(|_| ())
        };
        let result = match exec("SAVEPOINT job") {
            Err(e) => Err(backend(e)),
            Ok(()) => {
                let r = f(conn);
                let end = if r.is_ok() {
                    exec("RELEASE job")
                } else {
                    exec("ROLLBACK TO job").and_then(|()| exec("RELEASE job"))
                };
                match end {
                    Ok(()) => r,
                    Err(e) => Err(backend(e)),
                }
            }
        };
        Box::new(move |commit: Result<(), String>| {
            let answer = match commit {
                Ok(()) => result,
                Err(e) => Err(StoreError::Backend(e)),
            };
            let _ = reply.send(answer);
        })
    }

    fn fail(self: Box<Self>, error: String) {
        let _ = self.reply.send(Err(StoreError::Backend(error)));
    }

    fn needs_fold(&self) -> bool {
        self.fold
    }

    fn changes_state(&self) -> bool {
        self.state
    }
}

/// A Vigil store in one SQLite file.
pub struct SqliteStore {
    writer: mpsc::Sender<Box<dyn WriteJob>>,
    /// Alert-log rows queued or committed and not yet folded into `alerts` (an upper bound:
    /// counted before the append commits, taken back if it fails).
    unfolded: Arc<AtomicU64>,
    /// Dropping it stops the checkpoint thread.
    _checkpointer: mpsc::Sender<()>,
    readers: Arc<ReadPool>,
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(backend)?;
        c.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        Ok(c)
    }

    fn put(&self, c: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(c);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent directory) the database file at `path`, applies
    /// pending migrations and starts the writer thread. Blocking; see [`crate::open_sqlite`] for
    /// the async form.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, crate::SqliteSync::default())
    }

    /// Opens (creating if needed) the database at `path` with the given commit durability and
    /// applies pending migrations.
    pub fn open_with(
        path: impl AsRef<Path>,
        sync: crate::SqliteSync,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // The store holds security incidents: create it readable by its owner only.
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Ok(std::fs::File::open(&path)?),
                    _ => Err(e),
                })
                .map_err(|e| {
                    StoreError::Config(format!("cannot create SQLite file {}: {e}", path.display()))
                })?;
        }
        let mut conn = Connection::open(&path).map_err(|e| {
            StoreError::Config(format!("cannot open SQLite file {}: {e}", path.display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Config(format!(
                "{}: SQLite refused WAL mode (got {mode})",
                path.display()
            )));
        }
        // Checkpoints normally run on their own thread (see `checkpoint_loop`) so commits never
        // wait for them; the writer checkpoints itself only as a safety net when the WAL grows
        // past 80 MB.
        conn.execute_batch(&format!(
            "PRAGMA synchronous={}; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-16384;
             PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=20000;",
            sync_pragma(sync.fsync_commit(true, std::time::Duration::ZERO))
        ))
        .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, migrations::SQLITE, &path)?;
        // What a crash left in the alert log goes into `alerts` before anything reads it.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
        let folded = fold_log(&conn).and_then(|n| {
            conn.execute_batch("COMMIT").map_err(backend)?;
            Ok(n)
        });
        match folded {
            Ok(n) if n > 0 => {
                tracing::info!(rows = n, path = %path.display(), "folded the SQLite alert log")
            }
            Ok(_) => {}
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }

        let unfolded = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<Box<dyn WriteJob>>();
        let writer_unfolded = unfolded.clone();
        let writer_path = path.clone();
        std::thread::Builder::new()
            .name("vigil-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, writer_unfolded, sync, &writer_path))
            .map_err(|e| StoreError::Backend(format!("cannot start SQLite writer: {e}")))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let cp_path = path.clone();
        std::thread::Builder::new()
            .name("vigil-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(cp_path, stopped))
            .map_err(|e| StoreError::Backend(format!("cannot start SQLite checkpointer: {e}")))?;
        Ok(SqliteStore {
            writer: tx,
            unfolded,
            _checkpointer: stop,
            readers: Arc::new(ReadPool {
                path,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Queues a write for the next group commit and waits until it is durable.
    async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.write_job(f, false, true).await
    }

    /// Like [`Self::write`], for alert intake alone (appends to the alert log): in tiered mode
    /// its commit need not fsync at once.
    async fn write_intake<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.write_job(f, false, false).await
    }

    /// Like [`Self::write`], for a write that changes `alerts` itself: the alert log is folded
    /// first, in the same transaction.
    async fn write_folded<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.write_job(f, true, true).await
    }

    /// Makes sure every alert acknowledged so far is in `alerts` (a no-op when the log is empty).
    async fn fold_pending(&self) -> Result<(), StoreError> {
        if self.unfolded.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        self.write_folded(|_| Ok(())).await
    }

    async fn write_job<R, F>(&self, f: F, fold: bool, state: bool) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Box::new(Job {
                f,
                reply,
                fold,
                state,
            }))
            .map_err(|_| StoreError::Backend("SQLite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("SQLite writer has stopped".into()))?
    }

    /// Runs a read on a pooled read connection.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let r = f(&conn);
            pool.put(conn);
            r
        })
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite read task: {e}")))?
    }
}

/// Applies the alert log to `alerts` in order and empties it; returns the rows folded. Runs
/// inside the writer's transaction, in its own savepoint: on error nothing of it remains.
fn fold_log(conn: &Connection) -> Result<u64, StoreError> {
    fold_log_upto(conn, i64::MAX)
}

/// Folds the oldest [`FOLD_CHUNK`] rows of the alert log (all when it holds fewer), so the
/// commit that carries it stays short.
fn fold_log_chunk(conn: &Connection) -> Result<u64, StoreError> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT seq FROM alert_log ORDER BY seq LIMIT 1 OFFSET ?1")
        .and_then(|mut s| {
            let mut rows = s.query([FOLD_CHUNK as i64 - 1])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })
        .map_err(backend)?;
    fold_log_upto(conn, last.unwrap_or(i64::MAX))
}

/// Applies the alert-log rows up to `last` (by `seq`) to `alerts` in order and deletes them.
fn fold_log_upto(conn: &Connection, last: i64) -> Result<u64, StoreError> {
    let exec = |sql: &str, p: &[&dyn ToSql]| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(p))
            .map_err(backend)
    };
    exec("SAVEPOINT fold", &[])?;
    let run = || -> Result<u64, StoreError> {
        exec(
            concat!(
                "INSERT INTO alerts (fingerprint, incident_id, starts_at, ends_at, updated_at, doc)
                 SELECT fingerprint, incident_id, starts_at, ends_at, updated_at, doc
                 FROM alert_log WHERE seq <= ?1 ORDER BY seq ",
                crate::alert_upsert_conflict!()
            ),
            &[&last],
        )?;
        Ok(exec("DELETE FROM alert_log WHERE seq <= ?1", &[&last])? as u64)
    };
    match run() {
        Ok(n) => {
            exec("RELEASE fold", &[])?;
            Ok(n)
        }
        Err(e) => {
            let _ = exec("ROLLBACK TO fold", &[]).and_then(|_| exec("RELEASE fold", &[]));
            Err(e)
        }
    }
}

/// The `PRAGMA synchronous` value for a commit that does or does not fsync the WAL.
fn sync_pragma(fsync: bool) -> &'static str {
    if fsync { "FULL" } else { "NORMAL" }
}

/// The writer connection's `PRAGMA synchronous`, set only when a commit needs the other value.
struct CommitSync {
    mode: crate::SqliteSync,
    /// Whether the connection is at `FULL` now.
    full: bool,
    /// When a commit last fsynced the WAL.
    last_fsync: std::time::Instant,
    /// Whether a commit since then left the WAL unsynced.
    dirty: bool,
    /// The WAL file, to fsync directly when the writer goes idle with unsynced commits.
    wal: PathBuf,
}

impl CommitSync {
    /// Sets the pragma for the next commit (outside a transaction); returns whether it fsyncs.
    fn prepare(&mut self, conn: &Connection, state: bool) -> bool {
        let full = self.mode.fsync_commit(state, self.last_fsync.elapsed());
        if full != self.full {
            match conn.execute_batch(&format!("PRAGMA synchronous={}", sync_pragma(full))) {
                Ok(()) => self.full = full,
                Err(e) => tracing::error!(error = %e, "cannot set PRAGMA synchronous"),
            }
        }
        self.full
    }

    /// Records a successful commit made after [`Self::prepare`]; `wrote` tells whether it
    /// changed any row (a commit that wrote nothing neither syncs nor dirties the WAL).
    fn committed(&mut self, fsynced: bool, wrote: bool) {
        if !wrote {
            return;
        }
        if fsynced {
            self.last_fsync = std::time::Instant::now();
            self.dirty = false;
        } else {
            self.dirty = true;
        }
    }

    /// The writer is idle: fsyncs the WAL if a commit left it unsynced (tiered mode only;
    /// `normal` leaves it to checkpoints).
    fn settle(&mut self) {
        if !self.dirty || self.mode != crate::SqliteSync::Tiered {
            return;
        }
        match std::fs::File::open(&self.wal).and_then(|f| f.sync_data()) {
            Ok(()) => self.committed(true, true),
            Err(e) => {
                tracing::warn!(error = %e, wal = %self.wal.display(), "cannot fsync the SQLite WAL")
            }
        }
    }
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn WriteJob>>,
    unfolded: Arc<AtomicU64>,
    mode: crate::SqliteSync,
    path: &Path,
) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let mut sync = CommitSync {
        mode,
        full: mode.fsync_commit(true, std::time::Duration::ZERO),
        last_fsync: std::time::Instant::now(),
        dirty: false,
        wal: wal.into(),
    };
    loop {
        let first = match rx.recv_timeout(IDLE_FOLD) {
            Ok(j) => j,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if unfolded.load(Ordering::SeqCst) > 0 {
                    // Idle: this commit also fsyncs whatever intake was only written so far.
                    let fsync = sync.prepare(&conn, true);
                    let changes = conn.total_changes();
                    if fold_alone(&conn, &unfolded) {
                        sync.committed(fsync, conn.total_changes() != changes);
                    }
                }
                sync.settle();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let fsync = sync.prepare(&conn, jobs.iter().any(|j| j.changes_state()));
        let changes = conn.total_changes();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = format!("sqlite: cannot begin: {e}");
            tracing::error!(error = %msg, "SQLite write batch failed");
            for j in jobs {
                j.fail(msg.clone());
            }
            continue;
        }
        // Rows folded in this transaction; they leave `unfolded` once it commits.
        let mut folded = 0u64;
        if unfolded.load(Ordering::SeqCst) >= FOLD_AT {
            match fold_log_chunk(&conn) {
                Ok(n) => folded += n,
                Err(e) => tracing::error!(error = %e, "Folding the SQLite alert log failed."),
            }
        }
        // Each job runs after every job queued before it; one that changes or reads `alerts`
        // first folds the log as it stands at that point, earlier jobs' appends included.
        let mut done = Vec::with_capacity(jobs.len());
        for j in jobs {
            if j.needs_fold() {
                match fold_log(&conn) {
                    Ok(n) => folded += n,
                    Err(e) => {
                        j.fail(format!("cannot fold the alert log: {e}"));
                        continue;
                    }
                }
            }
            // A panicking write must not take the writer thread (and every later write) down;
            // its reply channel is dropped, so its caller gets an error.
            done.push(
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| j.run(&conn)))
                    .unwrap_or_else(|_| {
                        tracing::error!("SQLite write panicked; rolled back to its savepoint");
                        let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                        Box::new(|_| {})
                    }),
            );
        }
        let commit = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = format!("sqlite: commit failed: {e}");
            tracing::error!(error = %msg, "SQLite write batch failed");
            msg
        });
        if commit.is_ok() {
            unfolded.fetch_sub(folded, Ordering::SeqCst);
            sync.committed(fsync, conn.total_changes() != changes);
        }
        for d in done {
            d(commit.clone());
        }
    }
    tracing::debug!("SQLite writer stopped");
}

/// Folds the alert log in a transaction of its own (the writer is idle); returns whether it
/// committed.
fn fold_alone(conn: &Connection, unfolded: &AtomicU64) -> bool {
    let r = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(backend)
        .and_then(|()| fold_log(conn))
        .and_then(|n| conn.execute_batch("COMMIT").map(|()| n).map_err(backend));
    match r {
        Ok(n) => {
            unfolded.fetch_sub(n, Ordering::SeqCst);
            true
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "Folding the SQLite alert log failed.");
            false
        }
    }
}

/// Copies committed WAL frames into the database file in the background (passive checkpoints,
/// which never block the writer or readers), every second while the store is open. Each
/// checkpoint syncs the database file, and that sync competes with the commits' WAL syncs:
/// checkpoints every 200 ms cost about 5% of batch-1 intake.
fn checkpoint_loop(path: PathBuf, stop: mpsc::Receiver<()>) {
    let conn = Connection::open(&path).and_then(|c| {
        c.busy_timeout(std::time::Duration::from_secs(1))?;
        c.execute_batch("PRAGMA synchronous=FULL")?;
        Ok(c)
    });
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "SQLite checkpointer not started; the writer checkpoints instead");
            return;
        }
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(std::time::Duration::from_millis(1000))
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "SQLite passive checkpoint");
        }
    }
}

fn migrate(conn: &mut Connection, list: &[Migration], path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY NOT NULL,
             name TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(backend)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let latest = migrations::latest(list);
    if current > latest {
        return Err(StoreError::Config(format!(
            "{}: schema version {current} is newer than this Vigil knows ({latest})",
            path.display()
        )));
    }
    for m in list {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let done: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [m.version],
                |r| r.get(0),
            )
            .map_err(backend)?;
        if done {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::Backend(format!("sqlite migration {} ({}): {e}", m.version, m.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, nanos(chrono::Utc::now())],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version = m.version, name = m.name, path = %path.display(), "applied SQLite migration");
    }
    Ok(())
}

/// Runs a query with boxed parameters and decodes each row.
fn query_docs<T>(
    conn: &Connection,
    sql: &str,
    params: &[Param],
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let refs: Vec<&dyn ToSql> = params.iter().map(|b| b.as_ref() as &dyn ToSql).collect();
    let mut rows = stmt.query(refs.as_slice()).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn col<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, i: usize) -> Result<T, StoreError> {
    row.get(i).map_err(backend)
}

fn decode_alert(row: &rusqlite::Row<'_>) -> Result<StoredAlert, StoreError> {
    let fp: i64 = col(row, 0)?;
    let incident_id: Option<i64> = col(row, 1)?;
    let doc: String = col(row, 2)?;
    Ok(StoredAlert {
        fingerprint: fingerprint(fp),
        alert: from_doc("alert", &doc)?,
        incident_id,
    })
}

fn decode_incident(row: &rusqlite::Row<'_>) -> Result<Incident, StoreError> {
    let id: i64 = col(row, 0)?;
    let doc: String = col(row, 1)?;
    let mut i: Incident = from_doc("incident", &doc)?;
    i.id = id;
    Ok(i)
}

fn decode_entry(row: &rusqlite::Row<'_>) -> Result<TimelineEntry, StoreError> {
    let id: i64 = col(row, 0)?;
    let incident_id: i64 = col(row, 1)?;
    let doc: String = col(row, 2)?;
    let mut e: TimelineEntry = from_doc("timeline entry", &doc)?;
    e.id = id;
    e.incident_id = incident_id;
    Ok(e)
}

fn decode_action(row: &rusqlite::Row<'_>) -> Result<Action, StoreError> {
    let id: i64 = col(row, 0)?;
    let doc: String = col(row, 1)?;
    let mut a: Action = from_doc("action", &doc)?;
    a.id = id;
    Ok(a)
}

fn decode_evidence(row: &rusqlite::Row<'_>) -> Result<Evidence, StoreError> {
    let id: i64 = col(row, 0)?;
    let doc: String = col(row, 1)?;
    let mut e: Evidence = from_doc("evidence", &doc)?;
    e.id = id;
    Ok(e)
}

fn limit_i64(limit: Option<usize>) -> Option<i64> {
    limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
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
        let n = rows.len() as u64;
        // Counted before the append can commit, so a read never misses an acknowledged alert.
        self.unfolded.fetch_add(n, Ordering::SeqCst);
        let r = self
            .write_intake(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "INSERT INTO alert_log
                             (fingerprint, incident_id, starts_at, ends_at, updated_at, doc)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(backend)?;
                for r in &rows {
                    stmt.execute(params![r.0, r.1, r.2, r.3, r.4, r.5])
                        .map_err(backend)?;
                }
                Ok(())
            })
            .await;
        if r.is_err() {
            // Rolled back: those rows are not in the log.
            self.unfolded.fetch_sub(n, Ordering::SeqCst);
        }
        r
    }

    async fn get_alert(&self, fp: Fingerprint) -> Result<Option<StoredAlert>, StoreError> {
        self.fold_pending().await?;
        self.read(move |conn| {
            let p: Vec<Param> = vec![Box::new(fp_key(fp))];
            Ok(query_docs(
                conn,
                "SELECT fingerprint, incident_id, doc FROM alerts WHERE fingerprint = ?1",
                &p,
                decode_alert,
            )?
            .pop())
        })
        .await
    }

    async fn list_alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        let mut sql = String::from("SELECT fingerprint, incident_id, doc FROM alerts WHERE 1=1");
        let mut p: Vec<Param> = Vec::new();
        if let Some(id) = q.incident_id {
            p.push(Box::new(id));
            sql += &format!(" AND incident_id = ?{}", p.len());
        }
        if q.unassigned {
            sql += " AND incident_id IS NULL";
        }
        if let Some(t) = q.firing_at {
            p.push(Box::new(nanos(t)));
            sql += &format!(" AND (ends_at IS NULL OR ends_at > ?{})", p.len());
        }
        sql += " ORDER BY updated_at DESC, fingerprint";
        if let Some(l) = limit_i64(q.limit) {
            p.push(Box::new(l));
            sql += &format!(" LIMIT ?{}", p.len());
        }
        self.fold_pending().await?;
        self.read(move |conn| query_docs(conn, &sql, &p, decode_alert))
            .await
    }

    async fn set_alert_incident(
        &self,
        fp: Fingerprint,
        incident_id: i64,
    ) -> Result<(), StoreError> {
        self.write_folded(move |conn| {
            let n = conn
                .prepare_cached("UPDATE alerts SET incident_id = ?1 WHERE fingerprint = ?2")
                .and_then(|mut s| s.execute(params![incident_id, fp_key(fp)]))
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "alert",
                    id: fp.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    async fn create_incident(&self, incident: &Incident) -> Result<Incident, StoreError> {
        let mut out = incident.clone();
        let doc = to_doc("incident", incident)?;
        let cols = (
            incident.status.as_str(),
            severity_rank(incident.severity),
            incident.drill,
            nanos(incident.detected_at),
            nanos(incident.updated_at),
        );
        let id = self
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO incidents (status, severity, drill, detected_at, updated_at, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| s.execute(params![cols.0, cols.1, cols.2, cols.3, cols.4, doc]))
                .map_err(backend)?;
                Ok(conn.last_insert_rowid())
            })
            .await?;
        out.id = id;
        Ok(out)
    }

    async fn update_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        let doc = to_doc("incident", incident)?;
        let id = incident.id;
        let cols = (
            incident.status.as_str(),
            severity_rank(incident.severity),
            incident.drill,
            nanos(incident.detected_at),
            nanos(incident.updated_at),
        );
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE incidents SET status = ?1, severity = ?2, drill = ?3, detected_at = ?4,
                     updated_at = ?5, doc = ?6 WHERE id = ?7",
                )
                .and_then(|mut s| {
                    s.execute(params![cols.0, cols.1, cols.2, cols.3, cols.4, doc, id])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "incident",
                    id: id.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    async fn get_incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.read(move |conn| {
            let p: Vec<Param> = vec![Box::new(id)];
            Ok(query_docs(
                conn,
                "SELECT id, doc FROM incidents WHERE id = ?1",
                &p,
                decode_incident,
            )?
            .pop())
        })
        .await
    }

    async fn list_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let mut sql = String::from("SELECT id, doc FROM incidents WHERE 1=1");
        let mut p: Vec<Param> = Vec::new();
        if !q.statuses.is_empty() {
            let mut marks = Vec::new();
            for s in &q.statuses {
                p.push(Box::new(s.as_str()));
                marks.push(format!("?{}", p.len()));
            }
            sql += &format!(" AND status IN ({})", marks.join(", "));
        }
        if let Some(s) = q.min_severity {
            p.push(Box::new(severity_rank(s)));
            sql += &format!(" AND severity >= ?{}", p.len());
        }
        if let Some(d) = q.drill {
            p.push(Box::new(d));
            sql += &format!(" AND drill = ?{}", p.len());
        }
        if let Some(t) = q.since {
            p.push(Box::new(nanos(t)));
            sql += &format!(" AND detected_at >= ?{}", p.len());
        }
        sql += " ORDER BY detected_at DESC, id DESC";
        if let Some(l) = limit_i64(q.limit) {
            p.push(Box::new(l));
            sql += &format!(" LIMIT ?{}", p.len());
        }
        self.read(move |conn| query_docs(conn, &sql, &p, decode_incident))
            .await
    }

    async fn append_timeline(
        &self,
        entries: &[TimelineEntry],
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(entries.len());
        for e in entries {
            rows.push((
                e.incident_id,
                nanos(e.at),
                kind_str(e.kind),
                to_doc("timeline entry", e)?,
            ));
        }
        let ids = self
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "INSERT INTO timeline (incident_id, at, kind, doc) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(backend)?;
                let mut ids = Vec::with_capacity(rows.len());
                for r in &rows {
                    stmt.execute(params![r.0, r.1, r.2, r.3]).map_err(backend)?;
                    ids.push(conn.last_insert_rowid());
                }
                Ok(ids)
            })
            .await?;
        Ok(entries
            .iter()
            .zip(ids)
            .map(|(e, id)| TimelineEntry { id, ..e.clone() })
            .collect())
    }

    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        self.read(move |conn| {
            let p: Vec<Param> = vec![Box::new(incident_id)];
            query_docs(
                conn,
                "SELECT id, incident_id, doc FROM timeline WHERE incident_id = ?1 ORDER BY at, id",
                &p,
                decode_entry,
            )
        })
        .await
    }

    async fn save_action(&self, action: &Action) -> Result<Action, StoreError> {
        let doc = to_doc("action", action)?;
        let id = action.id;
        let cols = (
            action.incident_id,
            action_status_str(action.status),
            nanos(action.requested_at),
        );
        let id = self
            .write(move |conn| {
                if id == 0 {
                    conn.prepare_cached(
                        "INSERT INTO actions (incident_id, status, requested_at, doc) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut s| s.execute(params![cols.0, cols.1, cols.2, doc]))
                    .map_err(backend)?;
                    return Ok(conn.last_insert_rowid());
                }
                let n = conn
                    .prepare_cached(
                        "UPDATE actions SET incident_id = ?1, status = ?2, requested_at = ?3, doc = ?4 WHERE id = ?5",
                    )
                    .and_then(|mut s| s.execute(params![cols.0, cols.1, cols.2, doc, id]))
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::NotFound {
                        what: "action",
                        id: id.to_string(),
                    });
                }
                Ok(id)
            })
            .await?;
        Ok(Action {
            id,
            ..action.clone()
        })
    }

    async fn get_action(&self, id: i64) -> Result<Option<Action>, StoreError> {
        self.read(move |conn| {
            let p: Vec<Param> = vec![Box::new(id)];
            Ok(query_docs(
                conn,
                "SELECT id, doc FROM actions WHERE id = ?1",
                &p,
                decode_action,
            )?
            .pop())
        })
        .await
    }

    async fn list_actions(
        &self,
        incident_id: Option<i64>,
        status: Option<ActionStatus>,
    ) -> Result<Vec<Action>, StoreError> {
        let mut sql = String::from("SELECT id, doc FROM actions WHERE 1=1");
        let mut p: Vec<Param> = Vec::new();
        if let Some(id) = incident_id {
            p.push(Box::new(id));
            sql += &format!(" AND incident_id = ?{}", p.len());
        }
        if let Some(s) = status {
            p.push(Box::new(action_status_str(s)));
            sql += &format!(" AND status = ?{}", p.len());
        }
        sql += " ORDER BY requested_at, id";
        self.read(move |conn| query_docs(conn, &sql, &p, decode_action))
            .await
    }

    async fn add_evidence(&self, evidence: &Evidence) -> Result<Evidence, StoreError> {
        let doc = to_doc("evidence", evidence)?;
        let cols = (evidence.incident_id, nanos(evidence.collected_at));
        let id = self
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO evidence (incident_id, collected_at, doc) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![cols.0, cols.1, doc]))
                .map_err(backend)?;
                Ok(conn.last_insert_rowid())
            })
            .await?;
        Ok(Evidence {
            id,
            ..evidence.clone()
        })
    }

    async fn list_evidence(&self, incident_id: i64) -> Result<Vec<Evidence>, StoreError> {
        self.read(move |conn| {
            let p: Vec<Param> = vec![Box::new(incident_id)];
            query_docs(
                conn,
                "SELECT id, doc FROM evidence WHERE incident_id = ?1 ORDER BY collected_at, id",
                &p,
                decode_evidence,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::CommitSync;
    use crate::SqliteSync;
    use std::time::{Duration, Instant};

    fn sync(mode: SqliteSync) -> CommitSync {
        CommitSync {
            mode,
            full: true,
            last_fsync: Instant::now(),
            dirty: false,
            wal: std::path::PathBuf::from("/nonexistent/vigil.db-wal"),
        }
    }

    #[test]
    fn only_a_commit_that_wrote_changes_what_is_unsynced() {
        let mut s = sync(SqliteSync::Tiered);
        s.committed(false, true);
        assert!(
            s.dirty,
            "an intake commit without fsync leaves the WAL unsynced"
        );
        s.committed(true, false);
        assert!(s.dirty, "a FULL commit that wrote nothing syncs nothing");
        s.last_fsync = Instant::now() - Duration::from_secs(1);
        s.committed(true, true);
        assert!(!s.dirty);
        assert!(s.last_fsync.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn settle_keeps_the_wal_dirty_when_it_cannot_sync() {
        let mut s = sync(SqliteSync::Tiered);
        s.committed(false, true);
        s.settle();
        assert!(
            s.dirty,
            "the WAL file does not exist, so nothing was synced"
        );
        let dir = tempfile::tempdir().unwrap();
        s.wal = dir.path().join("vigil.db-wal");
        std::fs::write(&s.wal, b"frames").unwrap();
        s.settle();
        assert!(!s.dirty);
        let mut n = sync(SqliteSync::Normal);
        n.committed(false, true);
        n.settle();
        assert!(n.dirty, "normal leaves the WAL to checkpoints");
    }
}
