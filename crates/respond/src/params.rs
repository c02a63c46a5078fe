//! Action parameters: validation (at policy load and API request time) and typed access.

use serde_json::Value;

/// Evidence kinds `evidence` can collect.
pub const EVIDENCE_KINDS: [&str; 6] = ["inspect", "logs", "diff", "processes", "export", "event"];

/// Evidence collected when a policy does not say.
pub const DEFAULT_EVIDENCE: [&str; 5] = ["event", "inspect", "logs", "processes", "diff"];

fn allowed(kind: &str) -> &'static [&'static str] {
    match kind {
        "kill" => &["signal"],
        "stop" | "restart" => &["timeout"],
        "pause" | "unpause" => &[],
        "remove" => &["force", "volumes"],
        "quarantine" => &["network"],
        "redeploy" => &["image", "timeout"],
        "remove_image" => &["force"],
        "block_image" => &["by"],
        "evidence" => &["collect", "log_lines", "export"],
        "kill_process" => &["signal", "start_time", "pid"],
        _ => &[],
    }
}

/// Checks `params` for an action kind; `Err` names the bad field.
pub fn validate(kind: &str, params: &Value) -> Result<(), String> {
    let obj = match params {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        _ => return Err(format!("{kind}: params must be a mapping")),
    };
    let ok = allowed(kind);
    for (k, v) in obj {
        if !ok.contains(&k.as_str()) {
            return Err(format!(
                "{kind}: unknown parameter {k:?} (allowed: {})",
                if ok.is_empty() {
                    "none".to_string()
                } else {
                    ok.join(", ")
                }
            ));
        }
        match k.as_str() {
            "signal" => {
                let s = v
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
                    .ok_or_else(|| format!("{kind}: signal must be a name like SIGKILL"))?;
                signal_number(&s).ok_or_else(|| format!("{kind}: unknown signal {s:?}"))?;
            }
            "timeout" | "log_lines" | "pid" if v.as_u64().is_none() => {
                return Err(format!("{kind}: {k} must be a non-negative integer"));
            }
            "force" | "volumes" | "export" if !v.is_boolean() => {
                return Err(format!("{kind}: {k} must be true or false"));
            }
            "network" | "image" | "start_time" if !v.is_string() => {
                return Err(format!("{kind}: {k} must be a string"));
            }
            "by" => match v.as_str() {
                Some("repository" | "digest") => {}
                _ => return Err(format!("{kind}: by must be \"repository\" or \"digest\"")),
            },
            "collect" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| format!("{kind}: collect must be a list"))?;
                for item in list {
                    let s = item.as_str().unwrap_or("");
                    if !EVIDENCE_KINDS.contains(&s) {
                        return Err(format!(
                            "{kind}: cannot collect {item}: expected one of {}",
                            EVIDENCE_KINDS.join(", ")
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if kind == "redeploy" && obj.get("image").is_none() {
        return Err("redeploy: parameter image (the replacement image) is required".into());
    }
    Ok(())
}

/// A string parameter.
pub fn str_param<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

/// An integer parameter.
pub fn u64_param(params: &Value, key: &str) -> Option<u64> {
    params.get(key).and_then(Value::as_u64)
}

/// A boolean parameter.
pub fn bool_param(params: &Value, key: &str) -> Option<bool> {
    params.get(key).and_then(Value::as_bool)
}

/// The signal parameter as written (default `SIGKILL`), normalised to `SIGNAME`.
pub fn signal_param(params: &Value) -> String {
    let raw = params
        .get("signal")
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .unwrap_or_else(|| "SIGKILL".into());
    normalise_signal(&raw)
}

fn normalise_signal(s: &str) -> String {
    let u = s.trim().to_ascii_uppercase();
    if u.parse::<u32>().is_ok() || u.starts_with("SIG") {
        u
    } else {
        format!("SIG{u}")
    }
}

/// Linux signal number for a name (`SIGKILL`, `KILL`, `9`).
pub fn signal_number(s: &str) -> Option<i32> {
    let u = normalise_signal(s);
    if let Ok(n) = u.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    Some(match u.as_str() {
        "SIGHUP" => 1,
        "SIGINT" => 2,
        "SIGQUIT" => 3,
        "SIGABRT" => 6,
        "SIGKILL" => 9,
        "SIGUSR1" => 10,
        "SIGUSR2" => 12,
        "SIGTERM" => 15,
        "SIGCONT" => 18,
        "SIGSTOP" => 19,
        _ => return None,
    })
}

/// The evidence kinds an `evidence` action collects.
pub fn evidence_kinds(params: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = match params.get("collect").and_then(Value::as_array) {
        Some(l) => l
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        None => DEFAULT_EVIDENCE.iter().map(|s| s.to_string()).collect(),
    };
    if bool_param(params, "export") == Some(true) && !kinds.iter().any(|k| k == "export") {
        kinds.push("export".into());
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_names_fields() {
        assert!(validate("kill", &json!({"signal": "SIGTERM"})).is_ok());
        assert!(validate("kill", &json!({"signal": "TERM"})).is_ok());
        assert!(
            validate("kill", &json!({"signal": "SIGFOO"}))
                .unwrap_err()
                .contains("SIGFOO")
        );
        assert!(
            validate("stop", &json!({"wait": 1}))
                .unwrap_err()
                .contains("\"wait\"")
        );
        assert!(
            validate("redeploy", &json!({}))
                .unwrap_err()
                .contains("image")
        );
        assert!(validate("evidence", &json!({"collect": ["memory"]})).is_err());
        assert!(validate("block_image", &json!({"by": "tag"})).is_err());
        assert!(validate("evidence", &json!({"collect": ["logs"], "log_lines": 5})).is_ok());
    }

    #[test]
    fn signals() {
        assert_eq!(signal_number("kill"), Some(9));
        assert_eq!(signal_number("15"), Some(15));
        assert_eq!(signal_param(&json!({"signal": "term"})), "SIGTERM");
        assert_eq!(signal_param(&json!({})), "SIGKILL");
    }

    #[test]
    fn evidence_defaults() {
        assert_eq!(evidence_kinds(&json!({})).len(), DEFAULT_EVIDENCE.len());
        assert_eq!(
            evidence_kinds(&json!({"collect": ["logs"], "export": true})),
            ["logs", "export"]
        );
    }
}
