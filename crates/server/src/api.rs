//! The Vigil API under `/api/v1/`: incidents, alerts, actions.

use crate::Shared;
use crate::backend::NarrativeEdit;
use crate::error::{ApiError, parse_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use model::{
    ActionItem, ActionStatus, AlertQuery, IncidentQuery, IncidentStatus, Narrative, Severity,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Res = Result<Json<Value>, ApiError>;

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Parses an incident or action id (`12` or `INC-12`).
fn parse_id(raw: &str) -> Result<i64, ApiError> {
    let s = raw.trim();
    let s = s
        .strip_prefix("INC-")
        .or_else(|| s.strip_prefix("inc-"))
        .unwrap_or(s);
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request("id", format!("`id`: {raw:?} is not an id")))
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn parse_param<T>(
    q: &HashMap<String, String>,
    name: &str,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ApiError> {
    match q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => f(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(name, format!("query parameter `{name}`: {e}"))),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected true or false, got {v:?}")),
    }
}

fn parse_usize(v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("expected a count, got {v:?}"))
}

fn parse_i64(v: &str) -> Result<i64, String> {
    v.trim_start_matches("INC-")
        .parse()
        .map_err(|_| format!("expected an id, got {v:?}"))
}

/// `since`: an RFC 3339 time, or a duration back from now (`30m`, `2h`, `7d`).
fn parse_since(v: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("expected an RFC 3339 time or a duration like 2h, got {v:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("unknown duration unit in {v:?}: use s, m, h or d")),
    };
    Ok(Utc::now() - chrono::Duration::seconds(secs))
}

/// `GET /api/v1/incidents`.
pub async fn list_incidents(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Res {
    let q = query_map(q.as_deref());
    let statuses = parse_param(&q, "status", |v| {
        v.split(',')
            .map(|x| x.parse::<IncidentStatus>())
            .collect::<Result<Vec<_>, _>>()
    })?
    .unwrap_or_default();
    let query = IncidentQuery {
        statuses,
        min_severity: parse_param(&q, "severity", |v| v.parse::<Severity>())?,
        drill: parse_param(&q, "drill", parse_bool)?,
        since: parse_param(&q, "since", parse_since)?,
        limit: parse_param(&q, "limit", parse_usize)?,
    };
    let list = s.backend.store().list_incidents(&query).await?;
    Ok(Json(to_value(&list)))
}

async fn incident_bundle(s: &Shared, id: i64) -> Result<serde_json::Map<String, Value>, ApiError> {
    let store = s.backend.store();
    let incident = store
        .get_incident(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incident {id} not found")))?;
    let timeline = store.timeline(id).await?;
    let mut alerts = store
        .list_alerts(&AlertQuery {
            incident_id: Some(id),
            ..AlertQuery::default()
        })
        .await?;
    // The incident's own list is the membership record: an alert that has just joined may not
    // carry the incident id in its row yet (that is written last), so fetch it by fingerprint.
    for fp in &incident.alerts {
        if !alerts.iter().any(|a| a.fingerprint == *fp)
            && let Some(mut a) = store.get_alert(*fp).await?
        {
            a.incident_id = Some(id);
            alerts.push(a);
        }
    }
    let actions = store.list_actions(Some(id), None).await?;
    let evidence = store.list_evidence(id).await?;
    let mut m = serde_json::Map::new();
    m.insert("incident".into(), to_value(&incident));
    m.insert("metrics".into(), to_value(&incident.metrics()));
    m.insert("timeline".into(), to_value(&timeline));
    m.insert("alerts".into(), to_value(&alerts));
    m.insert("actions".into(), to_value(&actions));
    m.insert("evidence".into(), to_value(&evidence));
    Ok(m)
}

/// `GET /api/v1/incidents/{id}`: the incident with metrics, timeline, alerts, actions, evidence.
pub async fn get_incident(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Res {
    let id = parse_id(&id)?;
    Ok(Json(Value::Object(incident_bundle(&s, id).await?)))
}

/// `GET /api/v1/incidents/{id}/report-input`: what the report generator needs.
pub async fn report_input(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Res {
    let id = parse_id(&id)?;
    let mut m = incident_bundle(&s, id).await?;
    m.remove("metrics");
    Ok(Json(Value::Object(m)))
}

/// `GET /api/v1/incidents/{id}/report?format=md|html|pdf|json`: the incident report, drafted from
/// the record where people have not written a section yet.
pub async fn report(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id = parse_id(&id)?;
    let q = query_map(q.as_deref());
    let format = parse_param(&q, "format", |v| {
        v.parse::<report::Format>().map_err(|e| e.to_string())
    })?
    .unwrap_or(report::Format::Markdown);
    let mut m = incident_bundle(&s, id).await?;
    m.remove("metrics");
    let input: report::ReportInput = serde_json::from_value(Value::Object(m)).map_err(|e| {
        ApiError::internal(format!(
            "incident {id} cannot be read as a report input: {e}"
        ))
    })?;
    let options = report::Options {
        generated_at: Some(Utc::now()),
        ..report::Options::default()
    };
    let bytes = tokio::task::spawn_blocking(move || report::render(&input, format, &options))
        .await
        .map_err(|e| ApiError::internal(format!("report renderer failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("cannot render the report: {e}")))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, format.content_type())],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActorBody {
    #[serde(default)]
    actor: Option<String>,
}

fn actor_of(a: Option<String>) -> String {
    a.map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "api".into())
}

fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

/// `POST /api/v1/incidents/{id}/ack`.
pub async fn ack(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = parse_id(&id)?;
    let b: ActorBody = optional_body(&body)?;
    let inc = s
        .backend
        .transition(id, IncidentStatus::Acknowledged, &actor_of(b.actor))
        .await?;
    Ok(Json(to_value(&inc)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    #[serde(default)]
    actor: Option<String>,
}

/// `POST /api/v1/incidents/{id}/status`.
pub async fn set_status(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = parse_id(&id)?;
    let b: StatusBody = parse_json(&body)?;
    let to: IncidentStatus = b
        .status
        .parse()
        .map_err(|e: String| ApiError::bad_request("status", e))?;
    let inc = s.backend.transition(id, to, &actor_of(b.actor)).await?;
    Ok(Json(to_value(&inc)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommanderBody {
    commander: String,
    #[serde(default)]
    actor: Option<String>,
}

/// `POST /api/v1/incidents/{id}/commander`.
pub async fn assign(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = parse_id(&id)?;
    let b: CommanderBody = parse_json(&body)?;
    if b.commander.trim().is_empty() {
        return Err(ApiError::bad_request(
            "commander",
            "`commander` must not be empty",
        ));
    }
    let inc = s
        .backend
        .assign_commander(id, b.commander.trim(), &actor_of(b.actor))
        .await?;
    Ok(Json(to_value(&inc)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
    #[serde(default)]
    actor: Option<String>,
}

/// `POST /api/v1/incidents/{id}/notes`.
pub async fn add_note(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = parse_id(&id)?;
    let b: NoteBody = parse_json(&body)?;
    if b.text.trim().is_empty() {
        return Err(ApiError::bad_request("text", "`text` must not be empty"));
    }
    let e = s.backend.add_note(id, &b.text, &actor_of(b.actor)).await?;
    Ok(Json(to_value(&e)))
}

/// `PATCH /api/v1/incidents/{id}/narrative`: `{"impact": "...", "root_cause": null,
/// "action_plan": [{"text": "...", "owner": "...", "due": "2026-12-01", "done": false}],
/// "actor": "alice"}`. Only the fields present change; `null` clears a field.
pub async fn edit_narrative(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Res {
    let id = parse_id(&id)?;
    let obj: serde_json::Map<String, Value> = parse_json(&body)?;
    let mut edit = NarrativeEdit::default();
    let mut actor = None;
    for (k, v) in obj {
        match k.as_str() {
            "actor" => {
                actor = Some(
                    v.as_str()
                        .ok_or_else(|| ApiError::bad_request("actor", "`actor` must be a string"))?
                        .to_string(),
                )
            }
            "action_plan" => {
                let items: Vec<ActionItem> = parse_json(v.to_string().as_bytes()).map_err(|e| {
                    let f = format!("action_plan{}", e.field.as_deref().unwrap_or(""));
                    ApiError::bad_request(f, e.message)
                })?;
                edit.action_plan = Some(items);
            }
            f if Narrative::FIELDS.contains(&f) => {
                let val = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    _ => {
                        return Err(ApiError::bad_request(
                            f,
                            format!("`{f}` must be a string or null"),
                        ));
                    }
                };
                edit.fields.insert(k, val);
            }
            other => {
                return Err(ApiError::bad_request(
                    other,
                    format!(
                        "unknown narrative field `{other}`: expected one of {}, action_plan, actor",
                        Narrative::FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    if edit.fields.is_empty() && edit.action_plan.is_none() {
        return Err(ApiError::bad_request(
            "",
            "nothing to edit: give at least one narrative field",
        ));
    }
    let inc = s.backend.edit_narrative(id, edit, &actor_of(actor)).await?;
    Ok(Json(to_value(&inc)))
}

/// `GET /api/v1/alerts?state=firing|resolved|all&incident=ID&unassigned=true&limit=N`.
pub async fn list_alerts(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Res {
    let q = query_map(q.as_deref());
    let state = parse_param(&q, "state", |v| match v {
        "firing" | "resolved" | "all" => Ok(v.to_string()),
        _ => Err(format!("expected firing, resolved or all, got {v:?}")),
    })?
    .unwrap_or_else(|| "all".into());
    let now = Utc::now();
    let query = AlertQuery {
        incident_id: parse_param(&q, "incident", parse_i64)?,
        unassigned: parse_param(&q, "unassigned", parse_bool)?.unwrap_or(false),
        firing_at: (state == "firing").then_some(now),
        limit: if state == "resolved" {
            None
        } else {
            parse_param(&q, "limit", parse_usize)?
        },
    };
    let mut list = s.backend.store().list_alerts(&query).await?;
    if state == "resolved" {
        list.retain(|a| a.alert.state_at(now) == model::AlertState::Resolved);
        if let Some(l) = parse_param(&q, "limit", parse_usize)? {
            list.truncate(l);
        }
    }
    let out: Vec<Value> = list
        .iter()
        .map(|a| {
            let mut v = to_value(a);
            if let Value::Object(m) = &mut v {
                m.insert("state".into(), to_value(&a.alert.state_at(now)));
            }
            v
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    kind: String,
    target: String,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    actor: Option<String>,
}

/// `POST /api/v1/incidents/{id}/actions`.
pub async fn request_action(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Res {
    let id = parse_id(&id)?;
    let b: ActionBody = parse_json(&body)?;
    if b.kind.trim().is_empty() {
        return Err(ApiError::bad_request("kind", "`kind` must not be empty"));
    }
    let a = s
        .backend
        .request_action(
            id,
            b.kind.trim(),
            b.target.trim(),
            b.params,
            &actor_of(b.actor),
        )
        .await?;
    Ok(Json(to_value(&a)))
}

/// `POST /api/v1/actions/{id}/approve`.
pub async fn approve(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = parse_id(&id)?;
    let b: ActorBody = optional_body(&body)?;
    Ok(Json(to_value(
        &s.backend.approve_action(id, &actor_of(b.actor)).await?,
    )))
}

/// `POST /api/v1/actions/{id}/deny`.
pub async fn deny(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Res {
    let id = parse_id(&id)?;
    let b: ActorBody = optional_body(&body)?;
    Ok(Json(to_value(
        &s.backend.deny_action(id, &actor_of(b.actor)).await?,
    )))
}

/// `GET /api/v1/actions?incident=ID&status=S`.
pub async fn list_actions(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Res {
    let q = query_map(q.as_deref());
    let incident = parse_param(&q, "incident", parse_i64)?;
    let status = parse_param(&q, "status", |v| {
        serde_json::from_value::<ActionStatus>(json!(v)).map_err(|e| e.to_string())
    })?;
    let list = s.backend.store().list_actions(incident, status).await?;
    Ok(Json(to_value(&list)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_since() {
        assert_eq!(parse_id("INC-7").unwrap(), 7);
        assert_eq!(parse_id("7").unwrap(), 7);
        assert_eq!(parse_id("x").unwrap_err().field.as_deref(), Some("id"));
        let t = parse_since("2h").unwrap();
        assert!((Utc::now() - t).num_minutes() >= 119);
        assert!(parse_since("2y").is_err());
    }
}
