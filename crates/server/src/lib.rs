//! Vigil's HTTP server: the Vigil API (`/api/v1/…`), the Alertmanager API v2 (`/api/v2/…`, what
//! Prometheus and `amtool` talk to), the Falco JSON intake (`/api/v1/falco`), health endpoints and
//! the OpenAPI document.
//!
//! The server knows nothing about how alerts are stored or correlated: it talks to a
//! [`Backend`], which `app` implements. It is the only crate that knows HTTP status codes.
//!
//! Safety: when an API token is configured, every mutating request (POST, PUT, PATCH, DELETE) must
//! carry it, including alert intake: `Authorization: Bearer <token>` (Prometheus:
//! `authorization: {credentials: <token>}` in its `alertmanager_config`; Falcosidekick: a custom
//! `Authorization` header), or basic auth whose password is the token (Prometheus `basic_auth`;
//! senders that only take a URL, such as Falco's libcurl `http_output`:
//! `http://vigil:<token>@host:9093/api/v1/falco`). Reads need no token. Bodies over
//! [`ServerConfig::body_limit`] get 413; malformed JSON gets 400 naming the field.

mod alertmanager;
mod api;
mod backend;
mod error;
mod falco;
mod matchers;
mod openapi;

pub use alertmanager::valid_label_name;
pub use backend::{Backend, BackendError, NarrativeEdit, ServerInfo};
pub use error::ApiError;
pub use falco::{FalcoPayload, parse_falco};
pub use matchers::{MatchOp, Matcher};
pub use openapi::openapi_document;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post};
use model::Time;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// When set, mutating requests must carry `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_token: None,
            body_limit: 4 * 1024 * 1024,
        }
    }
}

/// State shared by the handlers.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: ServerConfig,
}

/// Formats a time the way Alertmanager does (RFC 3339, `Z`, sub-seconds only when present).
pub fn fmt_time(t: Time) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Every route: method, path (axum syntax), handler. The OpenAPI document must describe each
/// (checked by a test).
pub(crate) fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<Shared>>)> {
    vec![
        (Method::GET, "/healthz", get(healthz)),
        (Method::GET, "/readyz", get(readyz)),
        (Method::GET, "/api/v1/openapi.json", get(openapi_json)),
        (Method::GET, "/api/v1/incidents", get(api::list_incidents)),
        (
            Method::GET,
            "/api/v1/incidents/{id}",
            get(api::get_incident),
        ),
        (
            Method::GET,
            "/api/v1/incidents/{id}/report-input",
            get(api::report_input),
        ),
        (
            Method::GET,
            "/api/v1/incidents/{id}/report",
            get(api::report),
        ),
        (Method::POST, "/api/v1/incidents/{id}/ack", post(api::ack)),
        (
            Method::POST,
            "/api/v1/incidents/{id}/status",
            post(api::set_status),
        ),
        (
            Method::POST,
            "/api/v1/incidents/{id}/commander",
            post(api::assign),
        ),
        (
            Method::POST,
            "/api/v1/incidents/{id}/notes",
            post(api::add_note),
        ),
        (
            Method::PATCH,
            "/api/v1/incidents/{id}/narrative",
            patch(api::edit_narrative),
        ),
        (
            Method::POST,
            "/api/v1/incidents/{id}/actions",
            post(api::request_action),
        ),
        (Method::GET, "/api/v1/actions", get(api::list_actions)),
        (
            Method::POST,
            "/api/v1/actions/{id}/approve",
            post(api::approve),
        ),
        (Method::POST, "/api/v1/actions/{id}/deny", post(api::deny)),
        (Method::GET, "/api/v1/alerts", get(api::list_alerts)),
        (Method::POST, "/api/v1/falco", post(falco::post_falco)),
        (Method::GET, "/api/v2/alerts", get(alertmanager::get_alerts)),
        (
            Method::POST,
            "/api/v2/alerts",
            post(alertmanager::post_alerts),
        ),
        (
            Method::GET,
            "/api/v2/alerts/groups",
            get(alertmanager::get_groups),
        ),
        (Method::GET, "/api/v2/status", get(alertmanager::get_status)),
        (
            Method::GET,
            "/api/v2/receivers",
            get(alertmanager::get_receivers),
        ),
        (
            Method::GET,
            "/api/v2/silences",
            get(alertmanager::get_silences),
        ),
    ]
}

/// Builds the router over a backend.
pub fn router(backend: Arc<dyn Backend>, config: ServerConfig) -> Router {
    let limit = config.body_limit;
    let shared = Arc::new(Shared { backend, config });
    let mut r: Router<Arc<Shared>> = Router::new();
    // Several methods can share a path: merge them per path.
    let mut by_path: Vec<(&'static str, MethodRouter<Arc<Shared>>)> = Vec::new();
    for (_, path, mr) in routes() {
        if let Some((_, existing)) = by_path.iter_mut().find(|(p, _)| *p == path) {
            let prev = std::mem::take(existing);
            *existing = prev.merge(mr);
        } else {
            by_path.push((path, mr));
        }
    }
    for (path, mr) in by_path {
        r = r.route(path, mr);
    }
    r.fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth))
        .layer(axum::middleware::from_fn(body_limit_json))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// Serves the router on a listener until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token in an `Authorization` header: `Bearer <token>`, or `Basic` credentials whose
/// password is the token (for senders that only support basic auth or credentials in the URL,
/// like libcurl-based Falco `http_output` with `http://vigil:<token>@host:9093/api/v1/falco`).
fn presented_token(v: &str) -> Option<String> {
    let (scheme, rest) = v.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(_, pw)| pw.to_string());
    }
    None
}

/// Standard base64 (RFC 4648, with or without padding).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

async fn auth(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some(token)) = (mutating, s.config.api_token.as_deref()) {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token);
        match given {
            None => {
                return ApiError::unauthorized(
                    "this Vigil requires an API token: send `Authorization: Bearer <token>`",
                )
                .into_response();
            }
            Some(g) if !constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => {
                return ApiError::unauthorized("wrong API token").into_response();
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}

/// Turns axum's plain-text 413 into the JSON error shape.
async fn body_limit_json(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "request body too large".into(),
            field: None,
        }
        .into_response();
    }
    resp
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    match s.backend.ready().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn openapi_json() -> axum::Json<serde_json::Value> {
    axum::Json(openapi_document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_bearer_and_basic() {
        assert_eq!(presented_token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(presented_token("bearer  abc ").as_deref(), Some("abc"));
        // "vigil:s3cret-token" in base64
        assert_eq!(
            presented_token("Basic dmlnaWw6czNjcmV0LXRva2Vu").as_deref(),
            Some("s3cret-token")
        );
        assert_eq!(presented_token("Basic !!!"), None);
        assert_eq!(presented_token("Digest x"), None);
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
    }
}
