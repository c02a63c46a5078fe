//! HTTP errors: every error response is `{"error": "...", "field": "..."}` with a fitting status.

use crate::backend::BackendError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// The request field at fault, when known.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// A 400 naming a field.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: (!field.is_empty()).then_some(field),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            field: None,
        }
    }

    /// A 500: the server failed, not the request.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            field: None,
        }
    }

    /// A 401 (missing or wrong token).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            field: None,
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let (status, field) = match &e {
            BackendError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            BackendError::Invalid { field, .. } => (StatusCode::BAD_REQUEST, field.clone()),
            BackendError::Conflict(_) => (StatusCode::CONFLICT, None),
            BackendError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            BackendError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "Request failed.");
        }
        ApiError {
            status,
            message: e.to_string(),
            field,
        }
    }
}

impl From<model::StoreError> for ApiError {
    fn from(e: model::StoreError) -> Self {
        BackendError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            error: &self.message,
            field: self.field.as_deref(),
        })
        .unwrap_or_default();
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        resp
    }
}

/// Parses a JSON request body, naming the field (serde path) of the first problem.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Fast path; on failure parse again tracking the path, to name the field.
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." { String::new() } else { path };
            let message = if field.is_empty() {
                format!("malformed JSON body: {inner}")
            } else {
                format!("malformed JSON body at `{field}`: {inner}")
            };
            Err(ApiError::bad_request(field, message))
        }
    }
}
