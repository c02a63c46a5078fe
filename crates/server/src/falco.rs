//! Falco intake: `POST /api/v1/falco` takes Falco's `http_output` JSON or a Falcosidekick
//! payload (one object or an array of them) and turns each into an [`Alert`].

use crate::Shared;
use crate::error::{ApiError, parse_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use chrono::{DateTime, Utc};
use model::{Alert, Labels, Severity, Time};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A Falco alert as Falco's `http_output` and Falcosidekick send it.
#[derive(Debug, Clone, Deserialize)]
pub struct FalcoPayload {
    /// The formatted output line.
    #[serde(default)]
    pub output: String,
    /// Priority (`Emergency` … `Debug`).
    pub priority: String,
    /// The rule that fired.
    pub rule: String,
    /// Event time, RFC 3339.
    #[serde(default)]
    pub time: Option<String>,
    /// Field values of the output (`container.id`, `k8s.pod.name`, …).
    #[serde(default)]
    pub output_fields: Map<String, Value>,
    /// Event source (`syscall`, `k8s_audit`, …).
    #[serde(default)]
    pub source: Option<String>,
    /// Rule tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Host that ran Falco.
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Value>),
    One(Box<Value>),
}

fn field_str(f: &Map<String, Value>, name: &str) -> Option<String> {
    match f.get(name)? {
        Value::String(s) if !s.is_empty() && s != "<NA>" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Strips Falco's `"<time>: <Priority> "` prefix from an output line.
fn description(output: &str, priority: &str) -> String {
    let rest = match output.split_once(": ") {
        Some((head, tail))
            if head
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '.') =>
        {
            tail
        }
        _ => output,
    };
    let rest = rest
        .strip_prefix(priority)
        .map(str::trim_start)
        .unwrap_or(rest);
    rest.to_string()
}

impl FalcoPayload {
    /// The alert for this payload. `raw` is kept as evidence.
    pub fn to_alert(&self, raw: Value, now: Time) -> Result<Alert, String> {
        if self.rule.trim().is_empty() {
            return Err("`rule` must not be empty".into());
        }
        let f = &self.output_fields;
        let mut labels = Labels::new();
        labels.set("alertname", self.rule.trim());
        labels.set(
            "severity",
            Severity::from_falco_priority(&self.priority).as_str(),
        );
        labels.set("source", "falco");
        if let Some(id) = field_str(f, "container.id").filter(|id| id != "host") {
            labels.set("container_id", id);
        }
        if let Some(name) = field_str(f, "container.name").filter(|n| n != "host") {
            labels.set("container_name", name);
        }
        if let Some(repo) = field_str(f, "container.image.repository") {
            let image = match field_str(f, "container.image.tag") {
                Some(tag) => format!("{repo}:{tag}"),
                None => repo,
            };
            labels.set("image", image);
        } else if let Some(image) = field_str(f, "container.image") {
            labels.set("image", image);
        }
        if let Some(ns) = field_str(f, "k8s.ns.name") {
            labels.set("k8s_ns", ns);
        }
        if let Some(pod) = field_str(f, "k8s.pod.name") {
            labels.set("k8s_pod", pod);
        }
        if let Some(host) = self.hostname.as_deref().filter(|h| !h.is_empty()) {
            labels.set("host", host);
        }
        let starts = match self.time.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("`time`: {t:?} is not an RFC 3339 time: {e}"))?
                .with_timezone(&Utc),
            None => now,
        };
        let mut alert = Alert::new(labels, now);
        alert.starts_at = starts;
        alert.annotations.set("output", self.output.clone());
        alert
            .annotations
            .set("description", description(&self.output, &self.priority));
        alert.annotations.set("summary", self.rule.trim());
        alert.annotations.set("priority", self.priority.clone());
        if let Some(src) = &self.source {
            alert.annotations.set("falco_source", src.clone());
        }
        if !self.tags.is_empty() {
            alert.annotations.set("tags", self.tags.join(","));
        }
        alert.evidence = Some(raw);
        Ok(alert)
    }
}

/// Parses a request body (one payload or an array) into alerts; errors name the field.
pub fn parse_falco(body: &[u8], now: Time) -> Result<Vec<Alert>, ApiError> {
    let values: Vec<Value> = match parse_json::<OneOrMany>(body)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(v) => vec![*v],
    };
    let many = values.len() > 1 || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.into_iter().enumerate() {
        let prefix = if many {
            format!("[{i}].")
        } else {
            String::new()
        };
        let p: FalcoPayload = parse_json(v.to_string().as_bytes()).map_err(|e| {
            let field = format!("{prefix}{}", e.field.clone().unwrap_or_default());
            let field = field.trim_end_matches('.').to_string();
            let message = if e.field.is_none() && e.message.contains("missing field") {
                format!(
                    "Falco payload {}: {}",
                    prefix.trim_end_matches('.'),
                    e.message
                )
            } else {
                e.message
            };
            ApiError::bad_request(field, message)
        })?;
        let a = p.to_alert(v, now).map_err(|m| {
            let field = if m.starts_with("`time`") {
                "time"
            } else {
                "rule"
            };
            ApiError::bad_request(format!("{prefix}{field}"), m)
        })?;
        out.push(a);
    }
    Ok(out)
}

/// `POST /api/v1/falco`.
pub async fn post_falco(
    State(s): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let alerts = parse_falco(&body, Utc::now())?;
    let fps: Vec<String> = alerts.iter().map(|a| a.fingerprint().to_string()).collect();
    s.backend.ingest(alerts).await?;
    Ok(Json(json!({"accepted": fps.len(), "fingerprints": fps})))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"hostname":"falco-xczjd","output":"13:44:05.478445995: Critical A shell was spawned in a container (user=root)","priority":"Critical","rule":"Terminal shell in container","source":"syscall","tags":["container","shell"],"time":"2023-05-25T13:44:05.478445995Z","output_fields":{"container.id":"ee97d9c4186f","container.name":"web","container.image.repository":"docker.io/library/alpine","container.image.tag":"3.19","evt.time":1685022245478445995,"k8s.ns.name":"default","k8s.pod.name":"kubecon","proc.name":"sh"}}"#;

    #[test]
    fn falco_payload_becomes_alert() {
        let a = parse_falco(SAMPLE.as_bytes(), Utc::now()).unwrap();
        let a = &a[0];
        assert_eq!(a.name(), "Terminal shell in container");
        assert_eq!(a.labels.get("severity"), Some("critical"));
        assert_eq!(a.labels.get("source"), Some("falco"));
        assert_eq!(a.labels.get("container_id"), Some("ee97d9c4186f"));
        assert_eq!(a.labels.get("container_name"), Some("web"));
        assert_eq!(a.labels.get("image"), Some("docker.io/library/alpine:3.19"));
        assert_eq!(a.labels.get("k8s_ns"), Some("default"));
        assert_eq!(a.labels.get("k8s_pod"), Some("kubecon"));
        assert_eq!(a.labels.get("host"), Some("falco-xczjd"));
        assert_eq!(
            a.annotations.get("description"),
            Some("A shell was spawned in a container (user=root)")
        );
        assert_eq!(
            a.starts_at.to_rfc3339(),
            "2023-05-25T13:44:05.478445995+00:00"
        );
        assert!(a.evidence.as_ref().unwrap().get("output_fields").is_some());
    }

    #[test]
    fn missing_rule_names_field() {
        let e = parse_falco(br#"{"priority":"Warning","output":"x"}"#, Utc::now()).unwrap_err();
        assert!(e.message.contains("rule"), "{}", e.message);
        let e = parse_falco(
            br#"[{"priority":"Warning","rule":"r"},{"priority":"Warning","rule":"r","time":"noon"}]"#,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("[1].time"));
    }
}
