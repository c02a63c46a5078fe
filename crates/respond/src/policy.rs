//! Response policies: which alerts they match and which actions they take, loaded from YAML.
//!
//! ```yaml
//! policies:
//!   - name: cryptominer
//!     match:
//!       severity: warning            # at or above
//!       alertname: "Known Cryptominer Process Executed"   # exact
//!       alertname_re: "(?i).*miner.*"                     # fully anchored regex
//!       tags: [T1496]                # all of these tags
//!       any_tags: [cryptomining, mining]   # at least one of these
//!       source: runtime
//!       labels: ['container_id=~".+"', 'image!~"vigil.*"']
//!       any:                         # at least one of these sub-matches (same keys, no nesting)
//!         - tags: [T1496]
//!         - alertname_re: "(?i).*stratum.*"
//!     cooldown: 5m                   # per policy and target
//!     dry_run: false
//!     continue: false                # keep evaluating later policies after a match
//!     actions:
//!       - kind: evidence
//!         params: { collect: [inspect, logs, processes, diff], log_lines: 200 }
//!         ignore_errors: true
//!       - kind: kill
//!         params: { signal: SIGKILL }
//!       - kind: remove_image
//!         approval: required
//! ```

use crate::matcher::{LabelMatcher, anchored};
use model::{Alert, Severity};
use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::Path;
use std::time::Duration;

/// The built-in default policy for the built-in rule pack.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../policies/default.yaml");
/// The name under which the built-in policy file is reported in errors.
pub const DEFAULT_POLICY_FILE: &str = "<builtin>/default.yaml";

/// Every action kind the engine knows.
pub const ACTION_KINDS: [&str; 12] = [
    "kill",
    "stop",
    "pause",
    "remove",
    "restart",
    "quarantine",
    "redeploy",
    "remove_image",
    "block_image",
    "evidence",
    "kill_process",
    "unpause",
];

/// A policy file that could not be loaded, with the place of the problem.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{file}: {message}")]
    Io {
        /// File name.
        file: String,
        /// What failed.
        message: String,
    },
    /// The file is not valid, at `line:column`.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// File name.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    policies: Vec<Spanned<RawPolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default, rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    actions: Vec<Spanned<RawAction>>,
    #[serde(default, rename = "continue")]
    cont: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    cooldown: Option<Spanned<String>>,
    #[serde(default = "yes")]
    contain: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    alertname: Option<String>,
    #[serde(default)]
    alertname_re: Option<Spanned<String>>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    rule_re: Option<Spanned<String>>,
    #[serde(default)]
    severity: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    any_tags: Vec<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    labels: Vec<Spanned<String>>,
    #[serde(default)]
    any: Vec<Spanned<RawMatch>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    kind: Spanned<String>,
    #[serde(default)]
    params: serde_json::Value,
    #[serde(default)]
    ignore_errors: bool,
    #[serde(default)]
    approval: Option<Spanned<String>>,
    #[serde(default)]
    dry_run: bool,
}

/// What a policy matches. Every given condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// `alertname` equal to this.
    pub alertname: Option<String>,
    /// `alertname` matching this anchored regex.
    pub alertname_re: Option<Regex>,
    /// Rule name (`rule` label, else `alertname`) equal to this.
    pub rule: Option<String>,
    /// Rule name matching this anchored regex.
    pub rule_re: Option<Regex>,
    /// Severity at or above.
    pub severity: Option<Severity>,
    /// All of these tags.
    pub tags: Vec<String>,
    /// At least one of these tags (when not empty).
    pub any_tags: Vec<String>,
    /// `source` label equal to this.
    pub source: Option<String>,
    /// Label matchers.
    pub labels: Vec<LabelMatcher>,
    /// At least one of these (when not empty).
    pub any: Vec<Match>,
}

/// Tags of an alert: the `tags` label (or annotation), split on commas and spaces.
pub fn alert_tags(alert: &Alert) -> Vec<String> {
    let raw = alert
        .labels
        .get("tags")
        .or_else(|| alert.annotations.get("tags"))
        .unwrap_or("");
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .map(|t| t.trim_matches(|c| c == '[' || c == ']' || c == '"'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl Match {
    /// Whether the alert satisfies every condition.
    pub fn matches(&self, alert: &Alert) -> bool {
        let name = alert.name();
        let rule = alert.labels.get("rule").unwrap_or(name);
        if self.alertname.as_deref().is_some_and(|n| n != name) {
            return false;
        }
        if self
            .alertname_re
            .as_ref()
            .is_some_and(|r| !r.is_match(name))
        {
            return false;
        }
        if self.rule.as_deref().is_some_and(|n| n != rule) {
            return false;
        }
        if self.rule_re.as_ref().is_some_and(|r| !r.is_match(rule)) {
            return false;
        }
        if self.severity.is_some_and(|s| alert.severity() < s) {
            return false;
        }
        if self
            .source
            .as_deref()
            .is_some_and(|s| alert.labels.get("source").unwrap_or("") != s)
        {
            return false;
        }
        if !self.tags.is_empty() || !self.any_tags.is_empty() {
            let tags = alert_tags(alert);
            let has = |t: &String| tags.iter().any(|x| x.eq_ignore_ascii_case(t));
            if !self.tags.iter().all(has) {
                return false;
            }
            if !self.any_tags.is_empty() && !self.any_tags.iter().any(has) {
                return false;
            }
        }
        if !self.labels.iter().all(|m| m.matches(&alert.labels)) {
            return false;
        }
        self.any.is_empty() || self.any.iter().any(|m| m.matches(alert))
    }
}

/// One action of a policy.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// Action kind (see [`ACTION_KINDS`]).
    pub kind: String,
    /// Parameters.
    pub params: serde_json::Value,
    /// Keep going with the next action when this one fails.
    pub ignore_errors: bool,
    /// Wait for a person's approval before running.
    pub approval_required: bool,
    /// Record instead of acting.
    pub dry_run: bool,
}

/// A response policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique name; actions it takes have actor `policy:<name>`.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Where it was defined (`file:line:column`).
    pub origin: String,
    /// What it matches.
    pub matcher: Match,
    /// Ordered actions.
    pub actions: Vec<ActionSpec>,
    /// Keep evaluating later policies after this one matched.
    pub cont: bool,
    /// Record every action as dry run.
    pub dry_run: bool,
    /// No second run for the same target within this time.
    pub cooldown: Duration,
    /// Whether success of its (non-evidence) actions marks the incident contained.
    pub contain: bool,
}

/// Default cooldown when a policy sets none.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

/// An ordered set of policies.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// Policies in evaluation order.
    pub policies: Vec<Policy>,
}

impl PolicySet {
    /// The built-in default policy.
    pub fn builtin() -> Self {
        let mut s = PolicySet::default();
        s.add_yaml(DEFAULT_POLICY_FILE, DEFAULT_POLICY_YAML)
            .expect("built-in policy is valid");
        s
    }

    /// Loads one policy file and appends its policies.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Io {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.add_yaml(&path.display().to_string(), &text)
    }

    /// Parses policies from YAML text (`file` names it in errors) and appends them; returns how
    /// many were added. A duplicate name is an error.
    pub fn add_yaml(&mut self, file: &str, text: &str) -> Result<usize, PolicyError> {
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            PolicyError::Invalid {
                file: file.to_string(),
                line,
                column,
                message: first_line(&e.without_snippet().to_string()),
            }
        })?;
        let mut added = Vec::new();
        for p in raw.policies {
            let at = p.defined;
            let p = p.value;
            if !p.enabled {
                continue;
            }
            let err = |loc: serde_saphyr::Location, message: String| PolicyError::Invalid {
                file: file.to_string(),
                line: loc.line(),
                column: loc.column(),
                message,
            };
            if p.name.value.trim().is_empty() {
                return Err(err(p.name.defined, "policy name is empty".into()));
            }
            if self
                .policies
                .iter()
                .chain(added.iter())
                .any(|x: &Policy| x.name == p.name.value)
            {
                return Err(err(
                    p.name.defined,
                    format!("duplicate policy name {:?}", p.name.value),
                ));
            }
            let matcher = compile_match(p.matcher, &err, true)?;
            let cooldown = match &p.cooldown {
                Some(c) => parse_duration(&c.value).map_err(|m| err(c.defined, m))?,
                None => DEFAULT_COOLDOWN,
            };
            let mut actions = Vec::new();
            for a in p.actions {
                let a_at = a.defined;
                let a = a.value;
                let kind = a.kind.value.trim().to_ascii_lowercase().replace('-', "_");
                if !ACTION_KINDS.contains(&kind.as_str()) {
                    return Err(err(
                        a.kind.defined,
                        format!(
                            "unknown action kind {:?}: expected one of {}",
                            a.kind.value,
                            ACTION_KINDS.join(", ")
                        ),
                    ));
                }
                let params = if a.params.is_null() {
                    serde_json::Value::Object(Default::default())
                } else {
                    a.params
                };
                crate::params::validate(&kind, &params).map_err(|m| err(a_at, m))?;
                let approval_required = match &a.approval {
                    None => false,
                    Some(s) => match s.value.as_str() {
                        "required" => true,
                        "none" | "auto" => false,
                        o => {
                            return Err(err(
                                s.defined,
                                format!("approval {o:?}: expected \"required\" or \"none\""),
                            ));
                        }
                    },
                };
                actions.push(ActionSpec {
                    kind,
                    params,
                    ignore_errors: a.ignore_errors,
                    approval_required,
                    dry_run: a.dry_run,
                });
            }
            if actions.is_empty() {
                return Err(err(at, format!("policy {:?} has no actions", p.name.value)));
            }
            added.push(Policy {
                name: p.name.value,
                description: p.description,
                origin: format!("{file}:{}:{}", at.line(), at.column()),
                matcher,
                actions,
                cont: p.cont,
                dry_run: p.dry_run,
                cooldown,
                contain: p.contain,
            });
        }
        let n = added.len();
        self.policies.extend(added);
        Ok(n)
    }

    /// The policies that match an alert, in order, honouring `continue`.
    pub fn matching<'a>(&'a self, alert: &Alert) -> Vec<&'a Policy> {
        let mut out = Vec::new();
        for p in &self.policies {
            if p.matcher.matches(alert) {
                out.push(p);
                if !p.cont {
                    break;
                }
            }
        }
        out
    }

    /// A policy by name.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

fn compile_match(
    m: RawMatch,
    err: &impl Fn(serde_saphyr::Location, String) -> PolicyError,
    top: bool,
) -> Result<Match, PolicyError> {
    let re = |s: &Option<Spanned<String>>| -> Result<Option<Regex>, PolicyError> {
        s.as_ref()
            .map(|s| anchored(&s.value).map_err(|m| err(s.defined, m)))
            .transpose()
    };
    let severity = match &m.severity {
        Some(s) => Some(
            Severity::parse(&s.value)
                .ok_or_else(|| err(s.defined, format!("unknown severity {:?}", s.value)))?,
        ),
        None => None,
    };
    let mut labels = Vec::new();
    for l in &m.labels {
        labels.push(LabelMatcher::parse(&l.value).map_err(|e| err(l.defined, e))?);
    }
    let mut any = Vec::new();
    for sub in m.any {
        if !top || !sub.value.any.is_empty() {
            return Err(err(sub.defined, "`any` cannot be nested".into()));
        }
        any.push(compile_match(sub.value, err, false)?);
    }
    Ok(Match {
        alertname: m.alertname,
        alertname_re: re(&m.alertname_re)?,
        rule: m.rule,
        rule_re: re(&m.rule_re)?,
        severity,
        tags: m.tags,
        any_tags: m.any_tags,
        source: m.source,
        labels,
        any,
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1h30m`, `2d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {s:?} lacks a unit (ms, s, m, h, d)"))?;
        if digits == 0 {
            return Err(format!("bad duration {s:?}: expected e.g. 30s, 5m, 1h"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            u => return Err(format!("bad duration unit {u:?} in {s:?}")),
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Labels;

    fn alert(pairs: &[(&str, &str)]) -> Alert {
        Alert::new(
            Labels::from_pairs(pairs.iter().copied()),
            chrono::Utc::now(),
        )
    }

    #[test]
    fn builtin_loads_and_matches_miner() {
        let s = PolicySet::builtin();
        assert!(!s.policies.is_empty());
        let a = alert(&[
            ("alertname", "Known Cryptominer Process Executed"),
            ("severity", "critical"),
            ("tags", "T1496,process"),
            ("container_id", "abc"),
        ]);
        let m = s.matching(&a);
        assert_eq!(m.len(), 1);
        assert!(m[0].actions.iter().any(|a| a.kind == "kill"));
        let benign = alert(&[("alertname", "Shell in container"), ("container_id", "abc")]);
        assert!(s.matching(&benign).is_empty());
        // On the host, a miner binary is killed; a stratum URL in a command line is not.
        let host_miner = alert(&[
            ("alertname", "Cryptominer process executed"),
            ("severity", "critical"),
            ("tags", "host,process,cryptomining,T1496"),
        ]);
        assert_eq!(s.matching(&host_miner)[0].name, "cryptominer-host-process");
        let host_url = alert(&[
            ("alertname", "Cryptomining stratum URL in command line"),
            ("severity", "critical"),
            ("tags", "host,process,cryptomining,T1496"),
        ]);
        assert!(s.matching(&host_url).is_empty());
    }

    const FILE: &str = r#"
policies:
  - name: a
    match:
      severity: error
      alertname_re: "Crypto.*"
      tags: [T1496]
      labels: ['image=~"evil/.*"', 'env!="prod"']
    continue: true
    cooldown: 1m30s
    actions:
      - kind: kill
        params: {signal: SIGTERM}
      - kind: remove-image
        approval: required
        ignore_errors: true
  - name: b
    match:
      any:
        - alertname: X
        - any_tags: [y, z]
    dry_run: true
    actions:
      - kind: stop
        params: {timeout: 3}
  - name: c
    actions:
      - kind: evidence
"#;

    #[test]
    fn parses_every_field() {
        let mut s = PolicySet::default();
        assert_eq!(s.add_yaml("p.yaml", FILE).unwrap(), 3);
        let a = &s.policies[0];
        assert_eq!(a.cooldown, Duration::from_secs(90));
        assert!(a.cont);
        assert_eq!(a.actions[1].kind, "remove_image");
        assert!(a.actions[1].approval_required && a.actions[1].ignore_errors);
        assert_eq!(a.origin, "p.yaml:3:5");
        let hit = alert(&[
            ("alertname", "CryptoMiner"),
            ("severity", "critical"),
            ("tags", "T1496, mitre"),
            ("image", "evil/m:1"),
        ]);
        // a matches and continues; b does not match; c matches everything and stops.
        let names: Vec<_> = s.matching(&hit).iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["a", "c"]);
        let low = alert(&[("alertname", "CryptoMiner"), ("severity", "warning")]);
        assert_eq!(s.matching(&low)[0].name, "c");
        let prod = alert(&[
            ("alertname", "CryptoMiner"),
            ("severity", "critical"),
            ("tags", "T1496"),
            ("image", "evil/m:1"),
            ("env", "prod"),
        ]);
        assert_eq!(s.matching(&prod)[0].name, "c");
        let b = alert(&[("alertname", "Q"), ("tags", "z")]);
        assert_eq!(s.matching(&b)[0].name, "b");
        assert!(s.policies[1].dry_run);
    }

    #[test]
    fn errors_name_file_line_column() {
        let bad_kind = "policies:\n  - name: a\n    actions:\n      - kind: explode\n";
        let e = PolicySet::default()
            .add_yaml("x.yaml", bad_kind)
            .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("x.yaml:4:"), "{s}");
        assert!(s.contains("unknown action kind"), "{s}");

        let bad_re = "policies:\n  - name: a\n    match:\n      labels: ['a=~\"(\"']\n    actions:\n      - kind: kill\n";
        let s = PolicySet::default()
            .add_yaml("y.yaml", bad_re)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("y.yaml:4:"), "{s}");
        assert!(s.contains("bad regex"), "{s}");

        let unknown_field = "policies:\n  - name: a\n    frobnicate: 1\n    actions: []\n";
        let s = PolicySet::default()
            .add_yaml("z.yaml", unknown_field)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("z.yaml:3:"), "{s}");

        let bad_param = "policies:\n  - name: a\n    actions:\n      - kind: stop\n        params: {timeout: soon}\n";
        let s = PolicySet::default()
            .add_yaml("w.yaml", bad_param)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("w.yaml:4:"), "{s}");
        assert!(s.contains("timeout"), "{s}");

        let dup = "policies:\n  - name: a\n    actions: [{kind: kill}]\n  - name: a\n    actions: [{kind: kill}]\n";
        let s = PolicySet::default()
            .add_yaml("d.yaml", dup)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("d.yaml:4:"), "{s}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
    }
}
