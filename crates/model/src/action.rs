//! Response actions and the evidence they collect.

use crate::Time;
use serde::{Deserialize, Serialize};

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Decided, not started.
    Requested,
    /// Waits for a person's approval.
    AwaitingApproval,
    /// Approved, about to run.
    Approved,
    /// A person refused it.
    Denied,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// Failed; `error` says why.
    Failed,
    /// Would have run, but dry run was on.
    DryRun,
    /// Refused by a guardrail; `error` says which.
    Refused,
}

impl ActionStatus {
    /// Whether the action will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionStatus::Denied
                | ActionStatus::Succeeded
                | ActionStatus::Failed
                | ActionStatus::DryRun
                | ActionStatus::Refused
        )
    }
}

/// A response action against a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Store-assigned id (0 before it is stored).
    pub id: i64,
    /// The incident it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
    /// What it does: `kill`, `stop`, `pause`, `remove`, `restart`, `quarantine`, `redeploy`,
    /// `remove_image`, `block_image`, `evidence`, `kill_process`.
    pub kind: String,
    /// What it acts on: a container id, an image, a pid.
    pub target: String,
    /// Parameters (signal, timeout, replacement image, …).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub params: serde_json::Value,
    /// Who asked for it: `policy:<name>` or a person.
    pub actor: String,
    /// Where it stands.
    pub status: ActionStatus,
    /// Why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was requested.
    pub requested_at: Time,
    /// When it started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Who approved or denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// A collected artifact, kept under the data dir, with its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Store-assigned id (0 before it is stored).
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// What it is: `inspect`, `logs`, `diff`, `processes`, `export`, `event`.
    pub kind: String,
    /// What it was collected from (container id, image).
    pub subject: String,
    /// Path of the file under the data dir.
    pub path: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was collected.
    pub collected_at: Time,
}
