//! `vigil respond`: take response actions on an incident through a running Vigil, approve or deny
//! pending ones, list them, and check policy files offline.

use crate::client::{Client, Remote, actor, print_json, s, short_time, table, with_query};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options shared by the action subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct On {
    /// The incident the action belongs to (`12` or `INC-12`).
    #[arg(long)]
    incident: String,
    /// Who acts (default `$USER`).
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

/// Subcommands of `vigil respond`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Kill a container (send a signal).
    Kill {
        /// Container id or name.
        target: String,
        /// Signal (default SIGKILL).
        #[arg(long, default_value = "SIGKILL")]
        signal: String,
        #[command(flatten)]
        on: On,
    },
    /// Stop a container (SIGTERM, then SIGKILL after the timeout).
    Stop {
        /// Container id or name.
        target: String,
        /// Seconds to wait before SIGKILL.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        #[command(flatten)]
        on: On,
    },
    /// Pause a container.
    Pause {
        /// Container id or name.
        target: String,
        #[command(flatten)]
        on: On,
    },
    /// Disconnect a container from every network, optionally attach it to an isolated one.
    Quarantine {
        /// Container id or name.
        target: String,
        /// Isolated network to attach it to (created as an internal bridge if missing).
        #[arg(long)]
        network: Option<String>,
        #[command(flatten)]
        on: On,
    },
    /// Remove an image together with every container made from it.
    RemoveImage {
        /// Image (`repo:tag` or id).
        target: String,
        #[command(flatten)]
        on: On,
    },
    /// Block an image: containers started from its repository later are killed at start.
    BlockImage {
        /// Image (`repo:tag` or id).
        target: String,
        /// Block by repository (any tag) or by digest.
        #[arg(long, default_value = "repository", value_parser = ["repository", "digest"])]
        by: String,
        #[command(flatten)]
        on: On,
    },
    /// Collect evidence from a container (inspect, logs, diff, processes; export on request).
    Evidence {
        /// Container id or name.
        target: String,
        /// Number of log lines.
        #[arg(long, default_value_t = 200)]
        lines: u64,
        /// Also export the container's filesystem as a tar.
        #[arg(long)]
        export: bool,
        #[command(flatten)]
        on: On,
    },
    /// Recreate a container with its configuration and a replacement image.
    Redeploy {
        /// Container id or name.
        target: String,
        /// The replacement image.
        #[arg(long)]
        image: String,
        #[command(flatten)]
        on: On,
    },
    /// Approve an action that waits for approval; it runs at once.
    Approve {
        /// Action id.
        action_id: i64,
        /// Who approves (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Deny an action that waits for approval.
    Deny {
        /// Action id.
        action_id: i64,
        /// Who denies (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List response actions, oldest first.
    List {
        /// Only actions of this incident.
        #[arg(long)]
        incident: Option<String>,
        /// Only in this status (e.g. awaiting_approval).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Check response policy files (offline); exits non-zero on the first bad file.
    Check {
        /// Policy files (YAML).
        files: Vec<PathBuf>,
    },
}

/// Runs `vigil respond`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let (kind, target, params, on) = match command {
        Command::Kill { target, signal, on } => ("kill", target, json!({"signal": signal}), on),
        Command::Stop {
            target,
            timeout,
            on,
        } => ("stop", target, json!({"timeout": timeout}), on),
        Command::Pause { target, on } => ("pause", target, json!({}), on),
        Command::Quarantine {
            target,
            network,
            on,
        } => (
            "quarantine",
            target,
            network.map_or(json!({}), |n| json!({"network": n})),
            on,
        ),
        Command::RemoveImage { target, on } => ("remove_image", target, json!({}), on),
        Command::BlockImage { target, by, on } => ("block_image", target, json!({"by": by}), on),
        Command::Evidence {
            target,
            lines,
            export,
            on,
        } => {
            let mut collect = vec!["inspect", "logs", "diff", "processes"];
            if export {
                collect.push("export");
            }
            (
                "evidence",
                target,
                json!({"collect": collect, "log_lines": lines}),
                on,
            )
        }
        Command::Redeploy { target, image, on } => {
            ("redeploy", target, json!({"image": image}), on)
        }
        Command::Approve {
            action_id,
            actor: who,
            remote,
        } => return decide("approve", action_id, who, remote).await,
        Command::Deny {
            action_id,
            actor: who,
            remote,
        } => return decide("deny", action_id, who, remote).await,
        Command::List {
            incident,
            status,
            remote,
        } => return list(incident, status, remote).await,
        Command::Check { files } => return check(&files),
    };
    let c = Client::new(&on.remote)?;
    let id = incident_id(&on.incident)?;
    let v = c
        .post(
            &format!("/api/v1/incidents/{id}/actions"),
            json!({"kind": kind, "target": target, "params": params, "actor": actor(on.actor)}),
        )
        .await?;
    Ok(report(&v, on.remote.json))
}

fn incident_id(s: &str) -> anyhow::Result<i64> {
    let t = s.trim();
    let t = t
        .strip_prefix("INC-")
        .or_else(|| t.strip_prefix("inc-"))
        .unwrap_or(t);
    t.parse()
        .map_err(|_| anyhow::anyhow!("--incident {s:?}: expected a number or INC-<number>"))
}

async fn decide(
    verb: &str,
    action_id: i64,
    who: Option<String>,
    remote: Remote,
) -> anyhow::Result<ExitCode> {
    let c = Client::new(&remote)?;
    let v = c
        .post(
            &format!("/api/v1/actions/{action_id}/{verb}"),
            json!({"actor": actor(who)}),
        )
        .await?;
    Ok(report(&v, remote.json))
}

/// Prints an action; failure and refusal give a non-zero exit code.
fn report(v: &Value, as_json: bool) -> ExitCode {
    let status = s(v, "status");
    if as_json {
        print_json(v);
    } else {
        let mut line = format!(
            "action {} {} {}: {}",
            v.get("id").and_then(Value::as_i64).unwrap_or(0),
            s(v, "kind"),
            s(v, "target"),
            status
        );
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            line.push_str(&format!(" ({e})"));
        }
        if status == "awaiting_approval" {
            line.push_str(&format!(
                " — approve with `vigil respond approve {}`",
                v.get("id").and_then(Value::as_i64).unwrap_or(0)
            ));
        }
        println!("{line}");
    }
    if matches!(status, "failed" | "refused") {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn list(
    incident: Option<String>,
    status: Option<String>,
    remote: Remote,
) -> anyhow::Result<ExitCode> {
    let c = Client::new(&remote)?;
    let incident = incident.map(|i| incident_id(&i)).transpose()?;
    let path = with_query(
        "/api/v1/actions",
        &[
            ("incident", incident.map(|i| i.to_string())),
            ("status", status),
        ],
    );
    let v = c.get(&path).await?;
    if remote.json {
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "ID",
        "INCIDENT",
        "KIND",
        "TARGET",
        "STATUS",
        "ACTOR",
        "REQUESTED",
        "ERROR",
    ]);
    for a in v.as_array().into_iter().flatten() {
        let target = s(a, "target");
        t.add_row(vec![
            a.get("id").and_then(Value::as_i64).unwrap_or(0).to_string(),
            a.get("incident_id")
                .and_then(Value::as_i64)
                .map_or(String::new(), |i| format!("INC-{i}")),
            s(a, "kind").to_string(),
            if target.len() > 40 {
                format!("{}…", &target[..40])
            } else {
                target.to_string()
            },
            s(a, "status").to_string(),
            s(a, "actor").to_string(),
            short_time(a, "requested_at"),
            s(a, "error").to_string(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut set = respond::PolicySet::builtin();
    let builtin = set.policies.len();
    let mut ok = true;
    for f in files {
        match set.add_file(f) {
            Ok(n) => println!(
                "{}: {n} polic{} OK",
                f.display(),
                if n == 1 { "y" } else { "ies" }
            ),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    println!(
        "{} policies ({builtin} built-in) in evaluation order: {}",
        set.policies.len(),
        set.policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
