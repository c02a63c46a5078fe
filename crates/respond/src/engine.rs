//! The response engine: decides which policies apply to an alert, runs their actions through the
//! guardrails, and records every step as a stored [`Action`] and timeline entries.

use crate::blocklist::{BlockEntry, BlockList};
use crate::docker::{self as dk, short};
use crate::guard::{
    GuardConfig, Limiter, SelfIdentity, image_protected, is_containment, is_destructive,
    protection_reason,
};
use crate::params::{self, bool_param, signal_param, str_param, u64_param};
use crate::policy::{ACTION_KINDS, ActionSpec, Policy, PolicySet};
use crate::subject::Subject;
use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use model::{
    Action, ActionStatus, Alert, AlertQuery, Event, EventSource, Evidence, Incident, Store,
    StoreError, Time, TimelineEntry, TimelineKind,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Engine settings (the `response` config section, minus the policy files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Where evidence (`evidence/<incident>/…`) and the image block list are kept.
    pub data_dir: PathBuf,
    /// Global dry run: record what would be done, do nothing.
    pub dry_run: bool,
    /// Guardrails.
    pub guardrails: GuardConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("data"),
            dry_run: false,
            guardrails: GuardConfig::default(),
        }
    }
}

/// A failure of an engine call (not of an action: those are recorded on the action).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed (unknown kind, bad parameter); names the field.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The action or incident does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// `action` or `incident`.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The action is not in a state that allows this (e.g. approving a finished action).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine could not start (Docker unreachable, data dir unusable).
    #[error("response engine: {0}")]
    Setup(String),
}

/// Told when an incident's threat is contained, so that the incident can be marked so.
#[async_trait::async_trait]
pub trait IncidentHook: Send + Sync + 'static {
    /// Every container the incident's matched alerts named has been contained by a successful
    /// action; `actor` is who did the last of it.
    async fn contained(&self, incident_id: i64, actor: &str, summary: &str);
}

/// What one policy run did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The policy.
    pub policy: String,
    /// The actions, in order, as they ended (or wait).
    pub actions: Vec<Action>,
    /// Why the policy did not run (cooldown), if it did not.
    pub skipped: Option<String>,
    /// Whether its containment actions all succeeded.
    pub contained: bool,
}

#[derive(Clone)]
struct Ctx {
    incident_id: Option<i64>,
    actor: String,
    subject: Subject,
    policy: Option<Policy>,
}

struct Pending {
    ctx: Ctx,
    specs: Vec<ActionSpec>,
    next: usize,
}

enum Prepared {
    None,
    Container(Box<ContainerInspectResponse>),
    Image {
        id: String,
        containers: Vec<String>,
        digests: Vec<String>,
        repos: Vec<String>,
    },
}

struct Inner {
    cfg: EngineConfig,
    policies: RwLock<Arc<PolicySet>>,
    store: Arc<dyn Store>,
    docker: Option<Docker>,
    me: SelfIdentity,
    limiter: Limiter,
    blocklist: Mutex<BlockList>,
    pending: Mutex<HashMap<i64, Pending>>,
    hook: RwLock<Option<Arc<dyn IncidentHook>>>,
    contained: Mutex<HashSet<i64>>,
}

/// The response engine. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn now() -> Time {
    chrono::Utc::now()
}

impl Engine {
    /// An engine that connects to the local Docker daemon. Without Docker the engine still runs;
    /// Docker actions then fail with a recorded error.
    pub async fn connect(
        cfg: EngineConfig,
        policies: PolicySet,
        store: Arc<dyn Store>,
    ) -> Result<Engine, EngineError> {
        let docker = match dk::connect().await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "response engine: Docker is not reachable; Docker actions will fail");
                None
            }
        };
        Engine::new(cfg, policies, store, docker)
    }

    /// An engine with a given Docker client (or none).
    pub fn new(
        cfg: EngineConfig,
        policies: PolicySet,
        store: Arc<dyn Store>,
        docker: Option<Docker>,
    ) -> Result<Engine, EngineError> {
        let blocklist = BlockList::load(&cfg.data_dir.join("respond").join("blocked-images.json"))
            .map_err(EngineError::Setup)?;
        Ok(Engine {
            inner: Arc::new(Inner {
                limiter: Limiter::new(&cfg.guardrails),
                cfg,
                policies: RwLock::new(Arc::new(policies)),
                store,
                docker,
                me: SelfIdentity::detect(),
                blocklist: Mutex::new(blocklist),
                pending: Mutex::new(HashMap::new()),
                hook: RwLock::new(None),
                contained: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Sets who is told when an incident is contained.
    pub fn set_hook(&self, hook: Arc<dyn IncidentHook>) {
        *self.inner.hook.write().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Replaces the policies.
    pub fn set_policies(&self, policies: PolicySet) {
        *self
            .inner
            .policies
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(policies);
    }

    /// The current policies.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.inner
            .policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The Docker client, if connected.
    pub fn docker(&self) -> Option<&Docker> {
        self.inner.docker.as_ref()
    }

    /// Blocked images.
    pub fn blocked_images(&self) -> Vec<BlockEntry> {
        self.inner
            .blocklist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries()
            .to_vec()
    }

    /// Runs the policies that match an alert that joined (or opened) `incident`.
    pub async fn handle_alert(&self, incident: &Incident, alert: &Alert) -> Vec<RunOutcome> {
        let policies = self.policies();
        let subject = Subject::from_alert(alert);
        let mut out = Vec::new();
        for p in policies.matching(alert) {
            let key = subject.key();
            if !self.inner.limiter.try_cooldown(&p.name, &key, p.cooldown) {
                tracing::debug!(policy = %p.name, target = %key, "policy in cooldown for target");
                out.push(RunOutcome {
                    policy: p.name.clone(),
                    actions: Vec::new(),
                    skipped: Some(format!("cooldown for {key}")),
                    contained: false,
                });
                continue;
            }
            let ctx = Ctx {
                incident_id: Some(incident.id),
                actor: format!("policy:{}", p.name),
                subject: subject.clone(),
                policy: Some(p.clone()),
            };
            let outcome = self.run_actions(ctx, p.actions.clone(), 0).await;
            out.push(outcome);
        }
        if out.iter().any(|o| o.contained) {
            let actor = out
                .iter()
                .rev()
                .find(|o| o.contained)
                .map(|o| format!("policy:{}", o.policy))
                .unwrap_or_default();
            self.check_contained(incident.id, &actor).await;
        }
        out
    }

    async fn run_actions(&self, ctx: Ctx, specs: Vec<ActionSpec>, from: usize) -> RunOutcome {
        let policy_name = ctx
            .policy
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let mut actions = Vec::new();
        let mut waiting = false;
        let mut i = from;
        while i < specs.len() {
            let spec = &specs[i];
            let a = self.execute(&ctx, spec).await;
            let status = a.status;
            let id = a.id;
            actions.push(a);
            match status {
                ActionStatus::AwaitingApproval => {
                    self.inner
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(
                            id,
                            Pending {
                                ctx: ctx.clone(),
                                specs: specs.clone(),
                                next: i + 1,
                            },
                        );
                    waiting = true;
                    break;
                }
                ActionStatus::Failed | ActionStatus::Refused if !spec.ignore_errors => {
                    let left = specs.len() - i - 1;
                    if left > 0 {
                        self.timeline(
                            ctx.incident_id,
                            TimelineKind::Action,
                            &ctx.actor,
                            format!(
                                "policy {policy_name} stopped after {} {}: {left} remaining action(s) not run",
                                spec.kind,
                                status_word(status)
                            ),
                            json!({"policy": policy_name, "skipped": left}),
                        )
                        .await;
                    }
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let contain = ctx.policy.as_ref().is_some_and(|p| p.contain);
        let containment: Vec<&Action> =
            actions.iter().filter(|a| is_containment(&a.kind)).collect();
        let contained = contain
            && !waiting
            && !containment.is_empty()
            && containment
                .iter()
                .all(|a| a.status == ActionStatus::Succeeded);
        RunOutcome {
            policy: policy_name,
            actions,
            skipped: None,
            contained,
        }
    }

    /// Records an action for `spec` and runs it unless it needs approval.
    async fn execute(&self, ctx: &Ctx, spec: &ActionSpec) -> Action {
        let target = ctx.subject.target_for(&spec.kind).unwrap_or_default();
        let mut action = Action {
            id: 0,
            incident_id: ctx.incident_id,
            kind: spec.kind.clone(),
            target,
            params: spec.params.clone(),
            actor: ctx.actor.clone(),
            status: ActionStatus::Requested,
            error: None,
            requested_at: now(),
            started_at: None,
            finished_at: None,
            decided_by: None,
        };
        let dry = spec.dry_run || ctx.policy.as_ref().is_some_and(|p| p.dry_run);
        if spec.approval_required && !dry && !self.inner.cfg.dry_run {
            action.status = ActionStatus::AwaitingApproval;
            action = self.save(action).await;
            self.timeline(
                ctx.incident_id,
                TimelineKind::Action,
                &ctx.actor,
                format!(
                    "{} requested; awaiting approval (action {})",
                    describe(&action),
                    action.id
                ),
                action_data(&action, None),
            )
            .await;
            return action;
        }
        self.perform(ctx, action, dry).await
    }

    /// Runs a recorded (or new) action through dry run, guardrails and the driver.
    async fn perform(&self, ctx: &Ctx, mut action: Action, dry: bool) -> Action {
        let fresh = action.id == 0;
        let entries = Vec::new();
        if action.target.is_empty() {
            let e = format!(
                "the alert names no target for {} (no container, image or pid)",
                action.kind
            );
            return self
                .finish_early(ctx, action, entries, ActionStatus::Refused, Some(e))
                .await;
        }
        if dry || self.inner.cfg.dry_run {
            return self
                .finish_early(ctx, action, entries, ActionStatus::DryRun, None)
                .await;
        }
        let prepared = match self.check(ctx, &action).await {
            Ok(p) => p,
            Err(e) => {
                return self
                    .finish_early(ctx, action, entries, ActionStatus::Refused, Some(e))
                    .await;
            }
        };
        if is_destructive(&action.kind)
            && let Err(e) = self.inner.limiter.acquire(ctx.incident_id)
        {
            return self
                .finish_early(ctx, action, entries, ActionStatus::Refused, Some(e))
                .await;
        }
        action.status = ActionStatus::Running;
        action.started_at = Some(now());
        // The bookkeeping runs alongside the act: nothing stands between decision and Docker call.
        let running = action.clone();
        let act = async {
            let r = self.run_kind(ctx, &running, prepared).await;
            (r, now())
        };
        let (saved, (result, end)) = tokio::join!(self.save(action.clone()), act);
        action.id = saved.id;
        let mut entries = entries;
        if fresh {
            entries.push(self.requested_entry(ctx, &action));
        }
        entries.push(self.entry(
            ctx.incident_id,
            action.started_at.unwrap_or_else(now),
            TimelineKind::Action,
            &ctx.actor,
            format!("{} started", describe(&action)),
            action_data(&action, None),
        ));
        action.finished_at = Some(end);
        let ms = action
            .started_at
            .map(|s| (end - s).num_microseconds().unwrap_or(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        let summary = match &result {
            Ok(msg) => {
                action.status = ActionStatus::Succeeded;
                format!("{} succeeded in {ms:.1} ms: {msg}", describe(&action))
            }
            Err(e) => {
                action.status = ActionStatus::Failed;
                action.error = Some(e.clone());
                format!("{} failed after {ms:.1} ms: {e}", describe(&action))
            }
        };
        action = self.save(action).await;
        entries.push(self.entry(
            ctx.incident_id,
            end,
            TimelineKind::Action,
            &ctx.actor,
            summary,
            action_data(&action, Some(ms)),
        ));
        self.append(entries).await;
        match &result {
            Ok(_) => {
                tracing::info!(action = action.id, kind = %action.kind, target = %action.target, ms, "action succeeded")
            }
            Err(e) => {
                tracing::warn!(action = action.id, kind = %action.kind, target = %action.target, error = %e, "action failed")
            }
        }
        action
    }

    async fn finish_early(
        &self,
        ctx: &Ctx,
        mut action: Action,
        mut entries: Vec<TimelineEntry>,
        status: ActionStatus,
        error: Option<String>,
    ) -> Action {
        let fresh = action.id == 0;
        action.status = status;
        action.error = error.clone();
        action.finished_at = Some(now());
        action = self.save(action).await;
        if fresh {
            entries.insert(0, self.requested_entry(ctx, &action));
        }
        let summary = match status {
            ActionStatus::DryRun => format!("dry run: would {}", describe(&action)),
            _ => format!(
                "{} refused: {}",
                describe(&action),
                error.as_deref().unwrap_or("")
            ),
        };
        if status == ActionStatus::Refused {
            tracing::warn!(kind = %action.kind, target = %action.target, error = ?error, "action refused");
        }
        entries.push(self.entry(
            ctx.incident_id,
            action.finished_at.unwrap_or_else(now),
            TimelineKind::Action,
            &ctx.actor,
            summary,
            action_data(&action, None),
        ));
        self.append(entries).await;
        action
    }

    fn dock(&self) -> Result<&Docker, String> {
        self.inner
            .docker
            .as_ref()
            .ok_or_else(|| "Docker is not reachable".to_string())
    }

    /// Guardrails: own container/pid, protection, target changed.
    async fn check(&self, ctx: &Ctx, a: &Action) -> Result<Prepared, String> {
        let g = &self.inner.cfg.guardrails;
        match a.kind.as_str() {
            "kill_process" => {
                let pid: u32 = a
                    .target
                    .parse()
                    .map_err(|_| format!("target {:?} is not a pid", a.target))?;
                crate::process::verify(pid, ctx.subject.pid_start, &self.inner.me)?;
                Ok(Prepared::None)
            }
            "block_image" => {
                if let Some(r) = image_protected(g, &a.target) {
                    return Err(r);
                }
                let Ok(d) = self.dock() else {
                    return Ok(Prepared::None);
                };
                match dk::image_facts(d, &a.target).await {
                    Ok((id, repos, digests, labels)) => {
                        if let Some(r) = protection_reason(g, "", "", "", &labels, None) {
                            return Err(format!("image {}: {r}", a.target));
                        }
                        Ok(Prepared::Image {
                            id,
                            containers: Vec::new(),
                            digests,
                            repos,
                        })
                    }
                    // The image may be gone already; block its name anyway.
                    Err(_) => Ok(Prepared::None),
                }
            }
            "remove_image" => {
                if let Some(r) = image_protected(g, &a.target) {
                    return Err(r);
                }
                let d = self.dock()?;
                let (id, repos, digests, labels) = dk::image_facts(d, &a.target).await?;
                if let Some(r) = protection_reason(g, "", "", "", &labels, None) {
                    return Err(format!("image {}: {r}", a.target));
                }
                if let Some(want) = &ctx.subject.image_id
                    && want != &id
                    && ctx.subject.image.as_deref() == Some(a.target.as_str())
                {
                    return Err(format!(
                        "target changed since the alert: {} now points to image {} instead of {want}",
                        a.target,
                        short(&id)
                    ));
                }
                let containers = dk::containers_of_image(d, &id).await?;
                let mut ids = Vec::new();
                for (cid, name, image, labels) in containers {
                    if self.inner.me.is_own_container(&cid) {
                        return Err(format!(
                            "refusing: image {} is used by Vigil's own container",
                            a.target
                        ));
                    }
                    if let Some(r) = protection_reason(g, &name, &cid, &image, &labels, None) {
                        return Err(format!(
                            "refusing: image {} is used by protected container {name}: {r}",
                            a.target
                        ));
                    }
                    ids.push(cid);
                }
                Ok(Prepared::Image {
                    id,
                    containers: ids,
                    digests,
                    repos,
                })
            }
            _ => {
                let d = self.dock()?;
                let i = dk::inspect(d, &a.target).await?;
                let id = i.id.clone().unwrap_or_default();
                if self.inner.me.is_own_container(&id) {
                    return Err("refusing to act on Vigil's own container".into());
                }
                if a.kind != "evidence" {
                    let name = i.name.clone().unwrap_or_default();
                    let labels = dk::labels(&i);
                    let ns = labels
                        .get("io.kubernetes.pod.namespace")
                        .cloned()
                        .or(ctx.subject.k8s_ns.clone());
                    if let Some(r) = protection_reason(
                        g,
                        &name,
                        &id,
                        &dk::configured_image(&i),
                        &labels,
                        ns.as_deref(),
                    ) {
                        return Err(r);
                    }
                }
                dk::verify_unchanged(&i, &ctx.subject)?;
                Ok(Prepared::Container(Box::new(i)))
            }
        }
    }

    async fn run_kind(&self, ctx: &Ctx, a: &Action, prepared: Prepared) -> Result<String, String> {
        let p = &a.params;
        let timeout = u64_param(p, "timeout").unwrap_or(10).min(3600) as i32;
        let cid = match &prepared {
            Prepared::Container(i) => i.id.clone().unwrap_or_else(|| a.target.clone()),
            _ => a.target.clone(),
        };
        match a.kind.as_str() {
            "kill" => dk::kill(self.dock()?, &cid, &signal_param(p)).await,
            "stop" => dk::stop(self.dock()?, &cid, timeout).await,
            "pause" => dk::pause(self.dock()?, &cid).await,
            "unpause" => dk::unpause(self.dock()?, &cid).await,
            "remove" => {
                dk::remove(
                    self.dock()?,
                    &cid,
                    bool_param(p, "force").unwrap_or(true),
                    bool_param(p, "volumes").unwrap_or(false),
                )
                .await
            }
            "restart" => dk::restart(self.dock()?, &cid, timeout).await,
            "quarantine" => {
                let Prepared::Container(i) = &prepared else {
                    return Err("quarantine needs a container".into());
                };
                dk::quarantine(self.dock()?, i, str_param(p, "network")).await
            }
            "redeploy" => {
                let Prepared::Container(i) = &prepared else {
                    return Err("redeploy needs a container".into());
                };
                let image = str_param(p, "image").ok_or("redeploy: no image parameter")?;
                dk::redeploy(self.dock()?, i, image, timeout).await
            }
            "remove_image" => {
                let Prepared::Image { containers, .. } = &prepared else {
                    return Err("remove_image: image not inspected".into());
                };
                dk::remove_image(
                    self.dock()?,
                    &a.target,
                    containers,
                    bool_param(p, "force").unwrap_or(true),
                )
                .await
            }
            "block_image" => self.block(ctx, a, &prepared),
            "kill_process" => {
                let pid: u32 = a.target.parse().map_err(|_| "bad pid".to_string())?;
                let sig = params::signal_number(&signal_param(p)).unwrap_or(9);
                let me = self.inner.me.clone();
                let start = ctx.subject.pid_start;
                tokio::task::spawn_blocking(move || {
                    crate::process::kill_process(pid, start, sig, &me)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            "evidence" => self.collect_evidence(ctx, a, &cid).await,
            other => Err(format!("unknown action kind {other}")),
        }
    }

    fn block(&self, ctx: &Ctx, a: &Action, prepared: &Prepared) -> Result<String, String> {
        let by_digest = str_param(&a.params, "by") == Some("digest");
        let (mut digests, repos) = match prepared {
            Prepared::Image {
                id, digests, repos, ..
            } => {
                let mut d = digests.clone();
                if !id.is_empty() {
                    d.push(id.clone());
                }
                (d, repos.clone())
            }
            _ => (Vec::new(), Vec::new()),
        };
        if let Some(i) = &ctx.subject.image_id
            && !digests.contains(i)
        {
            digests.push(i.clone());
        }
        let repository = (!by_digest).then(|| {
            repos
                .first()
                .cloned()
                .unwrap_or_else(|| model::ContainerInfo::split_image(&a.target).0)
        });
        if by_digest && digests.is_empty() {
            return Err(format!("no digest known for image {}", a.target));
        }
        let entry = BlockEntry {
            repository: repository.clone(),
            digests: if by_digest {
                digests.clone()
            } else {
                Vec::new()
            },
            incident_id: ctx.incident_id,
            actor: ctx.actor.clone(),
            at: now(),
        };
        self.inner
            .blocklist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(entry)?;
        Ok(match repository {
            Some(r) => format!("blocked repository {r}: containers started from it will be killed"),
            None => format!(
                "blocked {}: containers started from it will be killed",
                digests.join(", ")
            ),
        })
    }

    async fn collect_evidence(&self, ctx: &Ctx, a: &Action, cid: &str) -> Result<String, String> {
        let kinds = params::evidence_kinds(&a.params);
        let lines = u64_param(&a.params, "log_lines").unwrap_or(200);
        // Collected concurrently: before a kill, every millisecond the miner keeps running counts.
        let futs = kinds.iter().map(|kind| async move {
            let res: Result<Evidence, String> = async {
                let (bytes, ext) = match kind.as_str() {
                    "event" => {
                        let ev = ctx
                            .subject
                            .event
                            .as_ref()
                            .ok_or("the alert carries no event")?;
                        (
                            serde_json::to_vec_pretty(ev).map_err(|e| e.to_string())?,
                            "json",
                        )
                    }
                    "inspect" => {
                        let v = self
                            .dock()?
                            .inspect_container(cid, None)
                            .await
                            .map_err(dk::docker_err)?;
                        (
                            serde_json::to_vec_pretty(&v).map_err(|e| e.to_string())?,
                            "json",
                        )
                    }
                    "logs" => (dk::logs(self.dock()?, cid, lines).await?, "log"),
                    "diff" => (dk::diff(self.dock()?, cid).await?, "json"),
                    "processes" => (dk::processes(self.dock()?, cid).await?, "json"),
                    "export" => {
                        let (dir, rel) =
                            self.evidence_path(ctx.incident_id, cid, "export", "tar")?;
                        let (size, sha) = dk::export(self.dock()?, cid, &dir).await?;
                        return self
                            .record_evidence(ctx, "export", cid, rel, sha, size)
                            .await;
                    }
                    other => return Err(format!("cannot collect {other}")),
                };
                let (path, rel) = self.evidence_path(ctx.incident_id, cid, kind, ext)?;
                let sha = hex::encode(sha2::Sha256::digest(&bytes));
                tokio::fs::write(&path, &bytes)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                self.record_evidence(ctx, kind, cid, rel, sha, bytes.len() as u64)
                    .await
            }
            .await;
            (kind, res)
        });
        let mut got = Vec::new();
        let mut failed = Vec::new();
        for (kind, res) in futures::future::join_all(futs).await {
            match res {
                Ok(e) => got.push(e),
                Err(e) => failed.push(format!("{kind}: {e}")),
            }
        }
        if got.is_empty() {
            return Err(format!("no evidence collected ({})", failed.join("; ")));
        }
        let mut msg = format!(
            "collected {} of {}",
            got.iter().map(|e| &*e.kind).collect::<Vec<_>>().join(", "),
            short(cid)
        );
        if !failed.is_empty() {
            msg.push_str(&format!("; not collected: {}", failed.join("; ")));
        }
        Ok(msg)
    }

    fn evidence_path(
        &self,
        incident: Option<i64>,
        subject: &str,
        kind: &str,
        ext: &str,
    ) -> Result<(PathBuf, String), String> {
        let inc = incident.map_or_else(|| "none".to_string(), |i| i.to_string());
        let rel_dir = Path::new("evidence").join(&inc);
        let dir = self.inner.cfg.data_dir.join(&rel_dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stamp = now().format("%Y%m%dT%H%M%S%.6fZ");
        let subj: String = short(subject)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format!("{subj}-{kind}-{stamp}.{ext}");
        Ok((dir.join(&name), rel_dir.join(&name).display().to_string()))
    }

    async fn record_evidence(
        &self,
        ctx: &Ctx,
        kind: &str,
        subject: &str,
        rel: String,
        sha256: String,
        size: u64,
    ) -> Result<Evidence, String> {
        let mut ev = Evidence {
            id: 0,
            incident_id: ctx.incident_id.unwrap_or(0),
            kind: kind.to_string(),
            subject: subject.to_string(),
            path: rel,
            sha256,
            size,
            collected_at: now(),
        };
        if let Some(inc) = ctx.incident_id {
            ev = self
                .inner
                .store
                .add_evidence(&ev)
                .await
                .map_err(|e| format!("store evidence: {e}"))?;
            let e = self.entry(
                Some(inc),
                ev.collected_at,
                TimelineKind::Evidence,
                &ctx.actor,
                format!(
                    "collected {kind} of {} ({size} bytes, sha256 {})",
                    short(subject),
                    &ev.sha256[..12]
                ),
                serde_json::to_value(&ev).unwrap_or_default(),
            );
            self.append(vec![e]).await;
        }
        Ok(ev)
    }

    /// A person (or the API) asks for an action on an incident. Runs it at once (the request is
    /// its own approval); guardrails and dry run still apply.
    pub async fn request(
        &self,
        incident_id: i64,
        kind: &str,
        target: &str,
        params: serde_json::Value,
        actor: &str,
    ) -> Result<Action, EngineError> {
        let kind = kind.trim().to_ascii_lowercase().replace('-', "_");
        if !ACTION_KINDS.contains(&kind.as_str()) {
            return Err(EngineError::Invalid(format!(
                "kind: unknown action kind {kind:?}: expected one of {}",
                ACTION_KINDS.join(", ")
            )));
        }
        if target.trim().is_empty() {
            return Err(EngineError::Invalid("target: must not be empty".into()));
        }
        let params = if params.is_null() { json!({}) } else { params };
        params::validate(&kind, &params)
            .map_err(|e| EngineError::Invalid(format!("params: {e}")))?;
        if self.inner.store.get_incident(incident_id).await?.is_none() {
            return Err(EngineError::NotFound {
                what: "incident",
                id: incident_id,
            });
        }
        let ctx = Ctx {
            incident_id: Some(incident_id),
            actor: actor.to_string(),
            subject: Subject::from_target(&kind, target.trim(), &params),
            policy: None,
        };
        let action = Action {
            id: 0,
            incident_id: Some(incident_id),
            kind,
            target: target.trim().to_string(),
            params,
            actor: actor.to_string(),
            status: ActionStatus::Requested,
            error: None,
            requested_at: now(),
            started_at: None,
            finished_at: None,
            decided_by: Some(actor.to_string()),
        };
        let action = self.perform(&ctx, action, false).await;
        if action.status == ActionStatus::Succeeded && is_containment(&action.kind) {
            self.check_contained(incident_id, actor).await;
        }
        Ok(action)
    }

    /// Approves an action that awaits approval, runs it, then the rest of its policy.
    pub async fn approve(&self, action_id: i64, by: &str) -> Result<Action, EngineError> {
        let mut action = self.awaiting(action_id).await?;
        action.status = ActionStatus::Approved;
        action.decided_by = Some(by.to_string());
        action = self.save(action).await;
        let pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&action_id);
        let ctx = match &pending {
            Some(p) => p.ctx.clone(),
            None => Ctx {
                incident_id: action.incident_id,
                actor: action.actor.clone(),
                subject: Subject::from_target(&action.kind, &action.target, &action.params),
                policy: None,
            },
        };
        self.timeline(
            action.incident_id,
            TimelineKind::Action,
            by,
            format!("{} approved by {by}", describe(&action)),
            action_data(&action, None),
        )
        .await;
        let action = self.perform(&ctx, action, false).await;
        let mut contained =
            action.status == ActionStatus::Succeeded && is_containment(&action.kind);
        if let Some(p) = pending {
            let ok = action.status == ActionStatus::Succeeded
                || p.specs
                    .get(p.next.wrapping_sub(1))
                    .is_some_and(|s| s.ignore_errors);
            if ok && p.next < p.specs.len() {
                let out = self.run_actions(p.ctx, p.specs, p.next).await;
                contained = out.contained
                    || (contained
                        && out
                            .actions
                            .iter()
                            .filter(|a| is_containment(&a.kind))
                            .all(|a| a.status == ActionStatus::Succeeded));
            }
        }
        if contained && let Some(inc) = action.incident_id {
            self.check_contained(inc, by).await;
        }
        Ok(action)
    }

    /// Denies an action that awaits approval; the rest of its policy is cancelled.
    pub async fn deny(&self, action_id: i64, by: &str) -> Result<Action, EngineError> {
        let mut action = self.awaiting(action_id).await?;
        action.status = ActionStatus::Denied;
        action.decided_by = Some(by.to_string());
        action.finished_at = Some(now());
        action = self.save(action).await;
        let pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&action_id);
        let left = pending.map_or(0, |p| p.specs.len() - p.next);
        let mut summary = format!("{} denied by {by}", describe(&action));
        if left > 0 {
            summary.push_str(&format!(
                "; {left} remaining action(s) of the policy cancelled"
            ));
        }
        self.timeline(
            action.incident_id,
            TimelineKind::Action,
            by,
            summary,
            action_data(&action, None),
        )
        .await;
        Ok(action)
    }

    async fn awaiting(&self, id: i64) -> Result<Action, EngineError> {
        let a = self
            .inner
            .store
            .get_action(id)
            .await?
            .ok_or(EngineError::NotFound { what: "action", id })?;
        if a.status != ActionStatus::AwaitingApproval {
            return Err(EngineError::Conflict(format!(
                "action {id} is {}, not awaiting approval",
                serde_json::to_value(a.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )));
        }
        Ok(a)
    }

    /// Call on every runtime event: a `container_start` (Docker source) from a blocked image is
    /// killed at once. Returns the kill action, if one was taken.
    pub async fn on_event(&self, ev: &Event) -> Option<Action> {
        if ev.source != EventSource::Docker || ev.kind != "container_start" {
            return None;
        }
        let c = ev.container.as_ref()?;
        self.on_container_start(&c.id, &c.image, &c.image_id, ev.ts)
            .await
    }

    /// Kills a just-started container if its image is blocked. `image`/`image_id` may be empty
    /// (they are then looked up).
    pub async fn on_container_start(
        &self,
        id: &str,
        image: &str,
        image_id: &str,
        at: Time,
    ) -> Option<Action> {
        if id.is_empty()
            || self
                .inner
                .blocklist
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entries()
                .is_empty()
        {
            return None;
        }
        let (mut image, mut image_id) = (image.to_string(), image_id.to_string());
        if image.is_empty() || image_id.is_empty() {
            let d = self.inner.docker.as_ref()?;
            let i = d.inspect_container(id, None).await.ok()?;
            if image.is_empty() {
                image = dk::configured_image(&i);
            }
            if image_id.is_empty() {
                image_id = i.image.unwrap_or_default();
            }
        }
        let entry = {
            let bl = self
                .inner
                .blocklist
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            bl.find(&image, std::slice::from_ref(&image_id)).cloned()
        }?;
        let what = entry
            .repository
            .clone()
            .unwrap_or_else(|| entry.digests.join(", "));
        let ctx = Ctx {
            incident_id: entry.incident_id,
            actor: entry.actor.clone(),
            subject: Subject {
                container_id: Some(id.to_string()),
                image: Some(image.clone()),
                image_id: (!image_id.is_empty()).then_some(image_id.clone()),
                observed_at: Some(at),
                ..Default::default()
            },
            policy: None,
        };
        let action = Action {
            id: 0,
            incident_id: entry.incident_id,
            kind: "kill".into(),
            target: id.to_string(),
            params: json!({"signal": "SIGKILL", "reason": format!("image {what} is blocked")}),
            actor: entry.actor.clone(),
            status: ActionStatus::Requested,
            error: None,
            requested_at: now(),
            started_at: None,
            finished_at: None,
            decided_by: None,
        };
        Some(self.perform(&ctx, action, false).await)
    }

    /// Whether every container named by the incident's policy-matched alerts has been contained
    /// by a successful action; if so (once per incident) the hook is told.
    async fn check_contained(&self, incident_id: i64, actor: &str) {
        if self
            .inner
            .contained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&incident_id)
        {
            return;
        }
        let store = &self.inner.store;
        let alerts = match store
            .list_alerts(&AlertQuery {
                incident_id: Some(incident_id),
                ..Default::default()
            })
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "containment check: cannot list alerts");
                return;
            }
        };
        let actions = match store
            .list_actions(Some(incident_id), Some(ActionStatus::Succeeded))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "containment check: cannot list actions");
                return;
            }
        };
        let policies = self.policies();
        let mut containers = Vec::new();
        for sa in &alerts {
            if !policies.matching(&sa.alert).iter().any(|p| p.contain) {
                continue;
            }
            let s = Subject::from_alert(&sa.alert);
            if let Some(c) = s.container_id.clone()
                && !containers.iter().any(|(x, _): &(String, Option<String>)| {
                    x.starts_with(&c) || c.starts_with(x.as_str())
                })
            {
                containers.push((c, s.image.clone()));
            }
        }
        let done = |c: &str, image: &Option<String>| {
            actions.iter().any(|a| {
                let same = |t: &str| !t.is_empty() && (t.starts_with(c) || c.starts_with(t));
                (is_containment(&a.kind)
                    && a.kind != "remove_image"
                    && a.kind != "block_image"
                    && same(&a.target))
                    || (a.kind == "remove_image"
                        && image.as_deref().is_some_and(|i| {
                            dk::normalise_image(i) == dk::normalise_image(&a.target)
                        }))
            })
        };
        // Person-requested containment on an incident without matched alerts counts too.
        let contained = if containers.is_empty() {
            actions.iter().any(|a| is_containment(&a.kind))
        } else {
            containers.iter().all(|(c, i)| done(c, i))
        };
        if !contained {
            return;
        }
        if !self
            .inner
            .contained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(incident_id)
        {
            return;
        }
        let hook = self
            .inner
            .hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let n = containers.len();
        let summary =
            format!("contained: all {n} affected container(s) handled by response actions");
        if let Some(h) = hook {
            h.contained(incident_id, actor, &summary).await;
        }
    }

    async fn save(&self, a: Action) -> Action {
        match self.inner.store.save_action(&a).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, kind = %a.kind, "cannot store action");
                a
            }
        }
    }

    /// The "requested" timeline entry of a stored action (whatever its status now).
    fn requested_entry(&self, ctx: &Ctx, action: &Action) -> TimelineEntry {
        let mut data = action_data(action, None);
        data["status"] = json!(ActionStatus::Requested);
        data.as_object_mut().map(|o| o.remove("error"));
        self.entry(
            ctx.incident_id,
            action.requested_at,
            TimelineKind::Action,
            &ctx.actor,
            format!("{} requested", describe(action)),
            data,
        )
    }

    fn entry(
        &self,
        incident: Option<i64>,
        at: Time,
        kind: TimelineKind,
        actor: &str,
        summary: String,
        data: serde_json::Value,
    ) -> TimelineEntry {
        TimelineEntry::new(incident.unwrap_or(0), at, kind, actor, summary).with_data(data)
    }

    async fn append(&self, entries: Vec<TimelineEntry>) {
        let entries: Vec<_> = entries.into_iter().filter(|e| e.incident_id != 0).collect();
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.inner.store.append_timeline(&entries).await {
            tracing::error!(error = %e, "cannot append timeline");
        }
    }

    async fn timeline(
        &self,
        incident: Option<i64>,
        kind: TimelineKind,
        actor: &str,
        summary: String,
        data: serde_json::Value,
    ) {
        let e = self.entry(incident, now(), kind, actor, summary, data);
        self.append(vec![e]).await;
    }
}

fn status_word(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Failed => "failed",
        ActionStatus::Refused => "was refused",
        _ => "ended",
    }
}

fn describe(a: &Action) -> String {
    let t = match a.kind.as_str() {
        "remove_image" | "block_image" => format!("image {}", a.target),
        "kill_process" => format!("process {}", a.target),
        _ => format!("container {}", short(&a.target)),
    };
    let extra = match a.kind.as_str() {
        "kill" | "kill_process" => format!(" with {}", signal_param(&a.params)),
        _ => String::new(),
    };
    format!("{} {t}{extra}", a.kind)
}

fn action_data(a: &Action, ms: Option<f64>) -> serde_json::Value {
    let mut v = json!({
        "action_id": a.id,
        "kind": a.kind,
        "target": a.target,
        "status": a.status,
    });
    if !a.params.is_null() && a.params != json!({}) {
        v["params"] = a.params.clone();
    }
    if let Some(e) = &a.error {
        v["error"] = json!(e);
    }
    if let Some(ms) = ms {
        v["duration_ms"] = json!(ms);
    }
    if let Some(d) = &a.decided_by {
        v["decided_by"] = json!(d);
    }
    v
}
