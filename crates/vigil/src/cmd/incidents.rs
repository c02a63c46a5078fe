//! `vigil incidents`: list, show and work on incidents of a running Vigil.

use crate::client::{Client, Remote, actor, print_json, s, short_time, table, with_query};
use serde_json::{Value, json};
use std::process::ExitCode;

/// Subcommands of `vigil incidents`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List incidents, newest first.
    List {
        /// Only these statuses (comma-separated: open,acknowledged,contained,resolved,closed).
        #[arg(long)]
        status: Option<String>,
        /// Only at or above this severity.
        #[arg(long)]
        severity: Option<String>,
        /// Only drills (true) or only real incidents (false).
        #[arg(long)]
        drill: Option<bool>,
        /// Only detected since: RFC 3339 time or a duration back from now (2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one incident with its timeline, alerts, actions and evidence.
    Show {
        /// Incident id (`12` or `INC-12`).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Acknowledge an incident.
    Ack {
        /// Incident id.
        id: String,
        /// Who acts (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Mark an incident resolved.
    Resolve {
        /// Incident id.
        id: String,
        /// Who acts (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Move an incident to a lifecycle status (open, acknowledged, contained, resolved, closed).
    Status {
        /// Incident id.
        id: String,
        /// The new status.
        status: String,
        /// Who acts (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a note to the timeline.
    Note {
        /// Incident id.
        id: String,
        /// The note.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// Who writes it (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Make someone the incident commander.
    Assign {
        /// Incident id.
        id: String,
        /// The incident commander.
        commander: String,
        /// Who acts (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Edit a narrative field of the report (executive_summary, impact, root_cause,
    /// remediation, lessons_learned) or the action plan (`--field action_plan --value '[{"text": …}]'`).
    Edit {
        /// Incident id.
        id: String,
        /// The field.
        #[arg(long)]
        field: String,
        /// The new text (`-` reads standard input; empty clears the field).
        #[arg(long)]
        value: String,
        /// Who edits (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Accept Vigil's drafted text of a report section as written (executive_summary, impact,
    /// root_cause, remediation, lessons_learned, action_plan): the draft is stored as the field's
    /// value and the report no longer marks it as a draft.
    Accept {
        /// Incident id.
        id: String,
        /// The field whose draft to accept.
        #[arg(long)]
        field: String,
        /// Who accepts (default `$USER`).
        #[arg(long)]
        actor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

fn path_id(id: &str) -> String {
    id.trim().trim_start_matches("INC-").to_string()
}

fn print_incident_row(t: &mut comfy_table::Table, i: &Value) {
    t.add_row(vec![
        format!("INC-{}", i["id"]),
        s(i, "status").to_string(),
        s(i, "severity").to_string(),
        s(i, "title").to_string(),
        i["alerts"].as_array().map_or(0, Vec::len).to_string(),
        s(i, "commander").to_string(),
        short_time(i, "detected_at"),
        if i["drill"].as_bool() == Some(true) {
            "drill".into()
        } else {
            String::new()
        },
    ]);
}

fn print_incident(i: &Value) {
    let mut t = table(&[
        "ID",
        "STATUS",
        "SEVERITY",
        "TITLE",
        "ALERTS",
        "COMMANDER",
        "DETECTED",
        "",
    ]);
    print_incident_row(&mut t, i);
    println!("{t}");
}

fn print_detail(v: &Value) {
    let i = &v["incident"];
    println!("INC-{}  {}", i["id"], s(i, "title"));
    println!(
        "status {}  severity {}  commander {}  {}",
        s(i, "status"),
        s(i, "severity"),
        if s(i, "commander").is_empty() {
            "-"
        } else {
            s(i, "commander")
        },
        if i["drill"].as_bool() == Some(true) {
            "(drill)"
        } else {
            ""
        }
    );
    for (label, key) in [
        ("started", "started_at"),
        ("detected", "detected_at"),
        ("acknowledged", "acknowledged_at"),
        ("contained", "contained_at"),
        ("resolved", "resolved_at"),
        ("closed", "closed_at"),
    ] {
        if !s(i, key).is_empty() {
            println!("  {label:<13} {}", short_time(i, key));
        }
    }
    let m = &v["metrics"];
    let fmt = |k: &str| {
        m.get(k)
            .and_then(Value::as_f64)
            .map(|x| format!("{x:.0}s"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "  TTD {}  TTA {}  TTC {}  TTR {}",
        fmt("time_to_detect"),
        fmt("time_to_acknowledge"),
        fmt("time_to_contain"),
        fmt("time_to_resolve")
    );
    if let Some(assets) = i["assets"].as_object() {
        for (k, list) in assets {
            let items: Vec<&str> = list
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !items.is_empty() {
                println!("  {k:<13} {}", items.join(", "));
            }
        }
    }
    if let Some(n) = i["narrative"].as_object() {
        for (k, val) in n {
            if let Some(text) = val.as_str() {
                println!("  {k}: {text}");
            }
        }
    }
    let mut alerts = table(&["FINGERPRINT", "ALERT", "SEVERITY", "STARTS", "LABELS"]);
    for a in v["alerts"].as_array().into_iter().flatten() {
        let al = &a["alert"];
        let labels = al["labels"].as_object().map_or(String::new(), |m| {
            m.iter()
                .filter(|(k, _)| *k != "alertname" && *k != "severity")
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        });
        alerts.add_row(vec![
            s(a, "fingerprint").to_string(),
            al["labels"]["alertname"].as_str().unwrap_or("").to_string(),
            al["labels"]["severity"].as_str().unwrap_or("").to_string(),
            short_time(al, "startsAt"),
            labels,
        ]);
    }
    println!("\nAlerts\n{alerts}");
    let mut tl = table(&["AT", "KIND", "ACTOR", "SUMMARY"]);
    for e in v["timeline"].as_array().into_iter().flatten() {
        tl.add_row(vec![
            short_time(e, "at"),
            s(e, "kind").to_string(),
            s(e, "actor").to_string(),
            s(e, "summary").to_string(),
        ]);
    }
    println!("\nTimeline\n{tl}");
    let actions = v["actions"].as_array().cloned().unwrap_or_default();
    if !actions.is_empty() {
        let mut t = table(&["ID", "KIND", "TARGET", "STATUS", "ACTOR"]);
        for a in &actions {
            t.add_row(vec![
                a["id"].to_string(),
                s(a, "kind").to_string(),
                s(a, "target").to_string(),
                s(a, "status").to_string(),
                s(a, "actor").to_string(),
            ]);
        }
        println!("\nActions\n{t}");
    }
    let evidence = v["evidence"].as_array().cloned().unwrap_or_default();
    if !evidence.is_empty() {
        let mut t = table(&["ID", "KIND", "SUBJECT", "SHA256", "PATH"]);
        for e in &evidence {
            t.add_row(vec![
                e["id"].to_string(),
                s(e, "kind").to_string(),
                s(e, "subject").to_string(),
                s(e, "sha256").chars().take(16).collect(),
                s(e, "path").to_string(),
            ]);
        }
        println!("\nEvidence\n{t}");
    }
}

async fn change(remote: &Remote, path: String, body: Value, patch: bool) -> anyhow::Result<()> {
    let c = Client::new(remote)?;
    let v = if patch {
        c.patch(&path, body).await?
    } else {
        c.post(&path, body).await?
    };
    if remote.json {
        print_json(&v);
    } else if v.get("kind").is_some() {
        println!("{} {}", s(&v, "kind"), s(&v, "summary"));
    } else {
        print_incident(&v);
    }
    Ok(())
}

/// Sets one narrative field (or the action plan) of an incident.
async fn edit_narrative(
    remote: &Remote,
    id: &str,
    field: String,
    value: Value,
    actor: String,
) -> anyhow::Result<()> {
    let mut body = serde_json::Map::new();
    body.insert(field, value);
    body.insert("actor".into(), Value::String(actor));
    change(
        remote,
        format!("/api/v1/incidents/{}/narrative", path_id(id)),
        Value::Object(body),
        true,
    )
    .await
}

/// Runs `vigil incidents`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List {
            status,
            severity,
            drill,
            since,
            limit,
            remote,
        } => {
            let c = Client::new(&remote)?;
            let path = with_query(
                "/api/v1/incidents",
                &[
                    ("status", status),
                    ("severity", severity),
                    ("drill", drill.map(|b| b.to_string())),
                    ("since", since),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            );
            let v = c.get(&path).await?;
            if remote.json {
                print_json(&v);
            } else {
                let mut t = table(&[
                    "ID",
                    "STATUS",
                    "SEVERITY",
                    "TITLE",
                    "ALERTS",
                    "COMMANDER",
                    "DETECTED",
                    "",
                ]);
                for i in v.as_array().into_iter().flatten() {
                    print_incident_row(&mut t, i);
                }
                println!("{t}");
            }
        }
        Command::Show { id, remote } => {
            let c = Client::new(&remote)?;
            let v = c
                .get(&format!("/api/v1/incidents/{}", path_id(&id)))
                .await?;
            if remote.json {
                print_json(&v);
            } else {
                print_detail(&v);
            }
        }
        Command::Ack {
            id,
            actor: a,
            remote,
        } => {
            let body = json!({"actor": actor(a)});
            change(
                &remote,
                format!("/api/v1/incidents/{}/ack", path_id(&id)),
                body,
                false,
            )
            .await?;
        }
        Command::Resolve {
            id,
            actor: a,
            remote,
        } => {
            let body = json!({"status": "resolved", "actor": actor(a)});
            change(
                &remote,
                format!("/api/v1/incidents/{}/status", path_id(&id)),
                body,
                false,
            )
            .await?;
        }
        Command::Status {
            id,
            status,
            actor: a,
            remote,
        } => {
            let body = json!({"status": status, "actor": actor(a)});
            change(
                &remote,
                format!("/api/v1/incidents/{}/status", path_id(&id)),
                body,
                false,
            )
            .await?;
        }
        Command::Note {
            id,
            text,
            actor: a,
            remote,
        } => {
            let body = json!({"text": text.join(" "), "actor": actor(a)});
            change(
                &remote,
                format!("/api/v1/incidents/{}/notes", path_id(&id)),
                body,
                false,
            )
            .await?;
        }
        Command::Assign {
            id,
            commander,
            actor: a,
            remote,
        } => {
            let body = json!({"commander": commander, "actor": actor(a)});
            change(
                &remote,
                format!("/api/v1/incidents/{}/commander", path_id(&id)),
                body,
                false,
            )
            .await?;
        }
        Command::Edit {
            id,
            field,
            value,
            actor: a,
            remote,
        } => {
            let value = if value == "-" {
                let mut buf = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)?;
                buf.trim_end().to_string()
            } else {
                value
            };
            let v = if field == "action_plan" {
                serde_json::from_str::<Value>(&value).map_err(|e| {
                    anyhow::anyhow!("--value for action_plan must be a JSON array of {{\"text\", \"owner\", \"due\", \"done\"}}: {e}")
                })?
            } else if value.is_empty() {
                Value::Null
            } else {
                Value::String(value)
            };
            edit_narrative(&remote, &id, field, v, actor(a)).await?;
        }
        Command::Accept {
            id,
            field,
            actor: a,
            remote,
        } => {
            let c = Client::new(&remote)?;
            let raw = c
                .get(&format!("/api/v1/incidents/{}/report-input", path_id(&id)))
                .await?;
            let input: report::ReportInput = serde_json::from_value(raw)
                .map_err(|e| anyhow::anyhow!("the server's report input is not readable: {e}"))?;
            let v = if field == "action_plan" {
                serde_json::to_value(report::draft_action_plan(&input))?
            } else {
                let text = report::draft_field(&input, &field).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown field {field:?}: expected executive_summary, impact, root_cause, remediation, lessons_learned or action_plan"
                    )
                })?;
                Value::String(text)
            };
            edit_narrative(&remote, &id, field, v, actor(a)).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
