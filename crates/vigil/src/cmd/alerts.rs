//! `vigil alerts`: alerts held by a running Vigil.

use crate::client::{Client, Remote, print_json, s, short_time, table, with_query};
use std::process::ExitCode;

/// Subcommands of `vigil alerts`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List alerts, most recently updated first.
    List {
        /// firing, resolved or all.
        #[arg(long, default_value = "all")]
        state: String,
        /// Only alerts of this incident.
        #[arg(long)]
        incident: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs `vigil alerts`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List {
            state,
            incident,
            limit,
            remote,
        } => {
            let c = Client::new(&remote)?;
            let path = with_query(
                "/api/v1/alerts",
                &[
                    ("state", Some(state)),
                    (
                        "incident",
                        incident.map(|i| i.trim_start_matches("INC-").to_string()),
                    ),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            );
            let v = c.get(&path).await?;
            if remote.json {
                print_json(&v);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(&[
                "FINGERPRINT",
                "ALERT",
                "STATE",
                "SEVERITY",
                "INCIDENT",
                "STARTS",
                "UPDATED",
                "LABELS",
            ]);
            for a in v.as_array().into_iter().flatten() {
                let al = &a["alert"];
                let labels = al["labels"].as_object().map_or(String::new(), |m| {
                    m.iter()
                        .filter(|(k, _)| *k != "alertname" && *k != "severity")
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                t.add_row(vec![
                    s(a, "fingerprint").to_string(),
                    al["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    s(a, "state").to_string(),
                    al["labels"]["severity"].as_str().unwrap_or("").to_string(),
                    a.get("incident_id")
                        .and_then(|i| i.as_i64())
                        .map(|i| format!("INC-{i}"))
                        .unwrap_or_default(),
                    short_time(al, "startsAt"),
                    short_time(al, "updatedAt"),
                    labels,
                ]);
            }
            println!("{t}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
