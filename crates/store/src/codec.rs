//! Conversions shared by both backends: times as nanoseconds, model values as JSON documents.

use model::{ActionStatus, Severity, StoreError, Time, TimelineKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A time as nanoseconds since the Unix epoch, saturating outside 1677..2262.
pub(crate) fn nanos(t: Time) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The JSON document of a model value.
pub(crate) fn to_doc<T: Serialize>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        what,
        message: format!("cannot encode: {e}"),
    })
}

/// Decodes a stored JSON document.
pub(crate) fn from_doc<T: DeserializeOwned>(
    what: &'static str,
    doc: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        what,
        message: e.to_string(),
    })
}

/// Severity as an integer that orders like [`Severity`].
pub(crate) fn severity_rank(s: Severity) -> i32 {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0) as i32
}

/// The snake_case name of an action status, as serde writes it.
pub(crate) fn action_status_str(s: ActionStatus) -> String {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{s:?}"),
    }
}

/// The snake_case name of a timeline kind.
pub(crate) fn kind_str(k: TimelineKind) -> &'static str {
    k.as_str()
}

/// A fingerprint as stored: the same 64 bits as a signed integer.
pub(crate) fn fp_key(fp: model::Fingerprint) -> i64 {
    fp.0 as i64
}

/// A stored fingerprint column back to the fingerprint.
pub(crate) fn fingerprint(v: i64) -> model::Fingerprint {
    model::Fingerprint(v as u64)
}
