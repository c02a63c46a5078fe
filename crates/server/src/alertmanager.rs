//! Alertmanager API v2 (the subset Prometheus and `amtool` use): `POST/GET /api/v2/alerts`,
//! `GET /api/v2/alerts/groups`, `/api/v2/status`, `/api/v2/receivers`, `/api/v2/silences`.

use crate::error::{ApiError, parse_json};
use crate::matchers::Matcher;
use crate::{Shared, fmt_time};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Utc};
use model::{Alert, AlertQuery, Labels, StoredAlert, Time};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The only receiver Vigil reports until notification routing exists.
pub const RECEIVER: &str = "vigil";

/// An alert as Prometheus and `amtool` post it (`postableAlert`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

/// Whether `name` is a valid (classic) Prometheus label name.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an optional timestamp; Go's zero time (`0001-01-01T00:00:00Z`) counts as absent.
fn parse_time(field: &str, v: Option<&str>) -> Result<Option<Time>, ApiError> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| {
            ApiError::bad_request(
                field,
                format!("`{field}`: {s:?} is not an RFC 3339 time: {e}"),
            )
        })?
        .with_timezone(&Utc);
    Ok((t.year() > 1).then_some(t))
}

fn to_labels(field: &str, m: BTreeMap<String, String>) -> Result<Labels, ApiError> {
    let mut labels = Labels::new();
    for (k, v) in m {
        if !valid_label_name(&k) {
            return Err(ApiError::bad_request(
                format!("{field}.{k}"),
                format!("`{field}`: invalid label name {k:?}"),
            ));
        }
        labels.set(k, v);
    }
    Ok(labels)
}

/// Turns posted alerts into model alerts the way Alertmanager does: a missing `startsAt` is now
/// (or `endsAt` if only that is given). A missing `endsAt` stays unset; the pipeline applies
/// `resolve_timeout`. The whole batch is refused when one alert is invalid, naming its index.
fn convert(posted: Vec<PostableAlert>, now: Time) -> Result<Vec<Alert>, ApiError> {
    let mut out = Vec::with_capacity(posted.len());
    for (i, p) in posted.into_iter().enumerate() {
        let at = format!("[{i}]");
        let labels = to_labels(&format!("{at}.labels"), p.labels)?;
        if labels.is_empty() {
            return Err(ApiError::bad_request(
                format!("{at}.labels"),
                format!("alert {at}: at least one label pair required"),
            ));
        }
        let annotations = to_labels(
            &format!("{at}.annotations"),
            p.annotations.unwrap_or_default(),
        )?;
        let starts = parse_time(&format!("{at}.startsAt"), p.starts_at.as_deref())?;
        let ends = parse_time(&format!("{at}.endsAt"), p.ends_at.as_deref())?;
        let starts_at = match (starts, ends) {
            (Some(s), _) => s,
            (None, Some(e)) => e,
            (None, None) => now,
        };
        if let Some(e) = ends
            && e < starts_at
        {
            return Err(ApiError::bad_request(
                format!("{at}.endsAt"),
                format!("alert {at}: start time must be before end time"),
            ));
        }
        let mut a = Alert::new(labels, now);
        a.annotations = annotations;
        a.starts_at = starts_at;
        a.ends_at = ends;
        a.generator_url = p.generator_url.unwrap_or_default();
        out.push(a);
    }
    Ok(out)
}

/// `POST /api/v2/alerts`.
pub async fn post_alerts(
    State(s): State<Arc<Shared>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let posted: Vec<PostableAlert> = parse_json(&body)?;
    let alerts = convert(posted, Utc::now())?;
    if !alerts.is_empty() {
        s.backend.ingest(alerts).await?;
    }
    Ok(StatusCode::OK)
}

/// Query parameters of `GET /api/v2/alerts` and `/alerts/groups`.
struct AlertFilter {
    matchers: Vec<Matcher>,
    active: bool,
    receiver: Option<regex::Regex>,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(
            name,
            format!("query parameter `{name}`: expected true or false, got {v:?}"),
        )),
    }
}

fn parse_filter(q: Option<&str>) -> Result<AlertFilter, ApiError> {
    let mut f = AlertFilter {
        matchers: Vec::new(),
        active: true,
        receiver: None,
    };
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "filter" => f
                .matchers
                .push(Matcher::parse(&v).map_err(|e| ApiError::bad_request("filter", e))?),
            "active" => f.active = parse_bool("active", &v)?,
            // Vigil has no silences or inhibitions yet and processes alerts on receipt, so
            // every alert is `active`; these flags only exclude states that never occur.
            "silenced" | "inhibited" | "unprocessed" => {
                parse_bool(&k, &v)?;
            }
            "receiver" => {
                f.receiver = Some(regex::Regex::new(&format!("^(?:{v})$")).map_err(|e| {
                    ApiError::bad_request("receiver", format!("`receiver`: invalid regex: {e}"))
                })?)
            }
            _ => {}
        }
    }
    Ok(f)
}

/// An alert in Alertmanager's `gettableAlert` shape.
pub fn gettable(a: &StoredAlert) -> Value {
    let al = &a.alert;
    json!({
        "labels": al.labels,
        "annotations": al.annotations,
        "startsAt": fmt_time(al.starts_at),
        "endsAt": al.ends_at.map(fmt_time).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "generatorURL": al.generator_url,
        "updatedAt": fmt_time(al.updated_at),
        "fingerprint": a.fingerprint.to_string(),
        "receivers": [{"name": RECEIVER}],
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    })
}

async fn filtered(s: &Shared, q: Option<&str>) -> Result<Vec<StoredAlert>, ApiError> {
    let f = parse_filter(q)?;
    if !f.active || f.receiver.as_ref().is_some_and(|r| !r.is_match(RECEIVER)) {
        return Ok(Vec::new());
    }
    let mut alerts = s
        .backend
        .store()
        .list_alerts(&AlertQuery {
            firing_at: Some(Utc::now()),
            ..AlertQuery::default()
        })
        .await?;
    alerts.retain(|a| f.matchers.iter().all(|m| m.matches(&a.alert.labels)));
    // Alertmanager lists alerts in fingerprint order.
    alerts.sort_by_key(|a| a.fingerprint);
    Ok(alerts)
}

/// `GET /api/v2/alerts`.
pub async fn get_alerts(
    State(s): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let alerts = filtered(&s, q.as_deref()).await?;
    Ok(Json(Value::Array(alerts.iter().map(gettable).collect())))
}

/// `GET /api/v2/alerts/groups`: one group (Vigil's default route groups by nothing).
pub async fn get_groups(
    State(s): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let alerts = filtered(&s, q.as_deref()).await?;
    if alerts.is_empty() {
        return Ok(Json(json!([])));
    }
    Ok(Json(json!([{
        "labels": {},
        "receiver": {"name": RECEIVER},
        "alerts": alerts.iter().map(gettable).collect::<Vec<_>>(),
    }])))
}

/// `GET /api/v2/status`.
pub async fn get_status(State(s): State<Arc<Shared>>) -> Json<Value> {
    let info = s.backend.info();
    Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "branch": "main",
            "buildDate": "",
            "buildUser": "vigil",
            "goVersion": "none (Vigil is written in Rust)",
            "revision": "",
            "version": info.version,
        },
        "config": {"original": info.config_original},
        "uptime": fmt_time(info.started_at),
    }))
}

/// `GET /api/v2/receivers`.
pub async fn get_receivers() -> Json<Value> {
    Json(json!([{"name": RECEIVER}]))
}

/// `GET /api/v2/silences`: Vigil has no silences yet.
pub async fn get_silences() -> Json<Value> {
    Json(json!([]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(v: Value) -> Result<Vec<Alert>, ApiError> {
        let p: Vec<PostableAlert> = parse_json(v.to_string().as_bytes())?;
        convert(p, Utc::now())
    }

    #[test]
    fn fills_times_like_alertmanager() {
        let now = Utc::now();
        let a = post(json!([{"labels": {"alertname": "x"}}])).unwrap();
        assert!(a[0].starts_at >= now && a[0].ends_at.is_none());
        let a = post(
            json!([{"labels": {"alertname": "x"}, "startsAt": "0001-01-01T00:00:00.000Z",
            "endsAt": "2020-01-01T00:00:00Z"}]),
        )
        .unwrap();
        assert_eq!(a[0].starts_at, a[0].ends_at.unwrap());
    }

    #[test]
    fn errors_name_index_and_field() {
        let e = post(json!([{"labels": {"a": "b"}}, {"labels": {}}])).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[1].labels"));
        let e = post(json!([{"labels": {"a": "b"}, "startsAt": "yesterday"}])).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[0].startsAt"));
        let e = post(json!([{"labels": {"a": 1}}])).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[0].labels.a"));
        let e = post(json!([{"labels": {"0bad": "x"}}])).unwrap_err();
        assert!(e.message.contains("0bad"));
        let e = post(
            json!([{"labels": {"a": "b"}, "startsAt": "2020-01-02T00:00:00Z",
            "endsAt": "2020-01-01T00:00:00Z"}]),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[0].endsAt"));
    }
}
