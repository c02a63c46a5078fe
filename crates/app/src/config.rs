//! Vigil's configuration file (YAML).
//!
//! ```yaml
//! listen: 127.0.0.1:9093          # Alertmanager's port, so Prometheus and amtool find it
//! data_dir: ./vigil-data
//! store: sqlite://./vigil-data/vigil.db   # default; or postgres://user:pw@host/db
//!                                 # ?synchronous=tiered (default): fsync every state commit,
//!                                 # alert intake within 100 ms; =full: fsync every commit;
//!                                 # =normal: fsync at checkpoints. All survive kill -9.
//! api_token: s3cret               # required for mutating requests when set; generated when
//!                                 # listening on a non-loopback address without one
//! resolve_timeout: 5m             # alerts not re-sent resolve after this
//! correlation_window: 30m         # alerts about the same entity within this join one incident
//! max_body_bytes: 4194304
//! detection: { builtin: true, rules: [] }
//! sensor: { enabled: auto, backend: auto, syscall_events: true }  # false: process and Docker
//!                                 # events only, the lowest cost to the host
//! response: { builtin_policy: true, policies: [], dry_run: false,
//!             guardrails: { protect_containers: [], protect_images: [], protect_namespaces: [kube-system],
//!                           max_actions_per_minute: 60, max_actions_per_incident_per_minute: 20 } }
//! ```
//!
//! Every field is optional. Unknown fields are errors, reported with file:line:column.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration error, with the place it was found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed or has a wrong field.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("{path}: `{field}`: {message}")]
    Invalid {
        /// The file (or `<config>`).
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Whether the kernel sensor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SensorEnabled {
    /// Run it when the machine allows (root, eBPF or procfs available).
    #[default]
    Auto,
    /// Run it; failing to start is an error.
    On,
    /// Do not run it.
    Off,
}

/// Which sensor backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SensorBackend {
    /// eBPF when it loads, else the proc connector / procfs fallback.
    #[default]
    Auto,
    /// eBPF only.
    Ebpf,
    /// Proc connector / procfs only.
    Proc,
}

/// `detection:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Load Vigil's built-in rules.
    pub builtin: bool,
    /// Extra Falco rule files.
    pub rules: Vec<PathBuf>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            builtin: true,
            rules: Vec::new(),
        }
    }
}

/// `sensor:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Whether the sensor runs.
    pub enabled: SensorEnabled,
    /// Which backend.
    pub backend: SensorBackend,
    /// Trace syscalls (file, network, credential, ptrace and memfd events); false keeps
    /// process lifecycle and Docker events only (see `sensor::SensorConfig::syscall_events`).
    pub syscall_events: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            enabled: SensorEnabled::default(),
            backend: SensorBackend::default(),
            syscall_events: true,
        }
    }
}

/// `response:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Load Vigil's built-in response policy.
    pub builtin_policy: bool,
    /// Extra policy files.
    pub policies: Vec<PathBuf>,
    /// Decide and record actions without executing them.
    pub dry_run: bool,
    /// Guardrails: protected containers, images and namespaces, and rate limits of destructive
    /// actions (defaults: 60 per minute in total, 20 per incident, `kube-system` protected).
    pub guardrails: respond::GuardConfig,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            builtin_policy: true,
            policies: Vec::new(),
            dry_run: false,
            guardrails: respond::GuardConfig::default(),
        }
    }
}

/// Vigil's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, evidence and other state.
    pub data_dir: PathBuf,
    /// Store URL; default `sqlite://<data_dir>/vigil.db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// API token for mutating requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// Alerts that stop being re-sent resolve after this long (Alertmanager's `resolve_timeout`).
    #[serde(with = "duration_text")]
    pub resolve_timeout: Duration,
    /// Alerts about the same entity within this window join the same open incident.
    #[serde(with = "duration_text")]
    pub correlation_window: Duration,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Detection settings.
    pub detection: DetectionConfig,
    /// Sensor settings.
    pub sensor: SensorConfig,
    /// Response settings.
    pub response: ResponseConfig,
    /// Where the configuration came from (not a YAML field).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9093)),
            data_dir: PathBuf::from("./vigil-data"),
            store: None,
            api_token: None,
            resolve_timeout: Duration::from_secs(300),
            correlation_window: Duration::from_secs(1800),
            max_body_bytes: 4 * 1024 * 1024,
            detection: DetectionConfig::default(),
            sensor: SensorConfig::default(),
            response: ResponseConfig::default(),
            source: None,
        }
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c = Config::parse(&text, path)?;
        c.source = Some(path.to_path_buf());
        Ok(c)
    }

    /// Parses and checks configuration text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let c: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: first_line(&e.to_string()),
                }
            })?
        };
        c.check(path)?;
        Ok(c)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.into(),
            message: message.into(),
        };
        if self.resolve_timeout.is_zero() {
            return Err(invalid("resolve_timeout", "must be longer than 0s"));
        }
        if self.correlation_window.is_zero() {
            return Err(invalid("correlation_window", "must be longer than 0s"));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if let Some(t) = &self.api_token
            && t.trim().len() < 8
        {
            return Err(invalid("api_token", "must be at least 8 characters"));
        }
        if let Some(url) = &self.store {
            store::StoreLocation::parse(url).map_err(|e| invalid("store", &e.to_string()))?;
        }
        Ok(())
    }

    /// The store URL: `store`, or a SQLite file under the data dir.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("vigil.db").display()),
        }
    }

    /// The configuration as YAML (the token is masked).
    pub fn to_yaml(&self) -> String {
        let mut c = self.clone();
        if c.api_token.is_some() {
            c.api_token = Some("<secret>".into());
        }
        serde_saphyr::to_string(&c).unwrap_or_default()
    }
}

/// The first line of a possibly multi-line parser message (the rest is a source snippet).
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(s)
        .trim_start_matches("error: ")
        .to_string()
}

/// Parses Prometheus-style durations: `5m`, `1h30m`, `90s`, `500ms`, `1d`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {s:?} lacks a unit (ms, s, m, h, d, w)"))?;
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            "w" => Duration::from_secs(n * 7 * 86400),
            _ => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m, h, d, w)"
                ));
            }
        };
        total += d;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, len) in [("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn full_file_parses() {
        let c = Config::parse(
            "listen: 0.0.0.0:9999\nresolve_timeout: 1m\ncorrelation_window: 10m\napi_token: abcdefghij\n\
             detection:\n  builtin: false\n  rules: [a.yaml]\nsensor:\n  enabled: off\n  backend: proc\n  syscall_events: false\n\
             response:\n  dry_run: true\n  guardrails:\n    protect_images: ['registry.local/*']\n    max_actions_per_minute: 5\n",
            Path::new("v.yml"),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.resolve_timeout, Duration::from_secs(60));
        assert!(!c.detection.builtin);
        assert_eq!(c.sensor.enabled, SensorEnabled::Off);
        assert_eq!(c.sensor.backend, SensorBackend::Proc);
        assert!(!c.sensor.syscall_events);
        assert!(Config::default().sensor.syscall_events);
        assert!(c.response.dry_run && c.response.builtin_policy);
        assert_eq!(
            c.response.guardrails.protect_images,
            vec!["registry.local/*"]
        );
        assert_eq!(c.response.guardrails.max_actions_per_minute, 5);
        assert_eq!(
            c.response.guardrails.max_actions_per_incident_per_minute,
            respond::GuardConfig::default().max_actions_per_incident_per_minute
        );
        assert!(c.store_url().starts_with("sqlite://"));
        let mut back = Config::parse(&c.to_yaml(), Path::new("x")).unwrap();
        assert_eq!(back.api_token.as_deref(), Some("<secret>"));
        back.api_token = c.api_token.clone();
        assert_eq!(back, c);
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = Config::parse(
            "listen: 127.0.0.1:9093\nresolve_timeout: 5 minutes\n",
            Path::new("v.yml"),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("v.yml:2:"), "{s}");
        assert!(s.contains("5 minutes"), "{s}");
        let e =
            Config::parse("listen: 1.2.3.4:1\nlisten_addr: x\n", Path::new("v.yml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("v.yml:2:"), "{s}");
        assert!(s.contains("listen_addr"), "{s}");
        let e = Config::parse("sensor:\n  enabled: maybe\n", Path::new("v.yml")).unwrap_err();
        assert!(e.to_string().starts_with("v.yml:2:"), "{e}");
        let e = Config::parse("resolve_timeout: 0s\n", Path::new("v.yml")).unwrap_err();
        assert!(e.to_string().contains("resolve_timeout"), "{e}");
    }
}
