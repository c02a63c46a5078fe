//! Rule test suites, as run by `vigil rules test SUITE.yaml`.
//!
//! ```yaml
//! rules: [my_rules.yaml]        # optional, loaded after the built-in pack (paths relative to the suite)
//! builtin: true                 # optional, default true
//! cases:
//!   - name: miner image started
//!     events:                   # inline events (model::Event as YAML; `ts` defaults to 2026-01-01)
//!       - type: container_start
//!         source: docker
//!         container: {id: "4f1c0e7d9a2b", image: "servethehome/monero_cpu_minergate:latest",
//!                     image_repository: servethehome/monero_cpu_minergate}
//!     events_file: events.jsonl # or/and JSON lines of model::Event (relative to the suite)
//!     expect:                   # detections that must occur
//!       - rule: Cryptominer container started
//!         priority: Critical    # optional
//!         output_fields:        # optional: field -> expected value ("<NA>" for missing)
//!           container.image.repository: servethehome/monero_cpu_minergate
//!         output_contains: "Cryptominer"   # optional
//!     absent: [Shell spawned in container]  # rules that must not fire
//!     only: true                # default true: no rule outside `expect` may fire
//! ```
//!
//! Values that look like numbers but are strings in the event model (ids, `typechar`) must be
//! quoted.

use crate::yaml::{self, Node, NodeKind};
use crate::{Detection, Priority, RuleSet};
use model::Event;

/// A suite file could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SuiteError {
    /// Suite file.
    pub file: String,
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
    /// What.
    pub message: String,
}

/// One expected detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Rule name.
    pub rule: String,
    /// Expected priority.
    pub priority: Option<Priority>,
    /// Expected output field values (`<NA>` = missing).
    pub output_fields: Vec<(String, String)>,
    /// Text the output must contain.
    pub output_contains: Option<String>,
}

/// One test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name.
    pub name: String,
    /// Line of the case in the suite.
    pub line: usize,
    /// Inline events.
    pub events: Vec<Event>,
    /// JSON-lines file with more events (the caller reads it, see [`parse_jsonl`]).
    pub events_file: Option<String>,
    /// Expected detections.
    pub expect: Vec<Expect>,
    /// Rules that must not fire.
    pub absent: Vec<String>,
    /// Whether only expected rules may fire.
    pub only: bool,
}

/// A parsed suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Extra rules files (relative to the suite).
    pub rules: Vec<String>,
    /// Load the built-in pack.
    pub builtin: bool,
    /// Cases.
    pub cases: Vec<Case>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Why it failed (empty = passed).
    pub failures: Vec<String>,
    /// Every detection produced.
    pub detections: Vec<Detection>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

struct Cx<'a> {
    file: &'a str,
}

impl Cx<'_> {
    fn err(&self, n: &Node, m: impl Into<String>) -> SuiteError {
        SuiteError {
            file: self.file.to_string(),
            line: n.pos.line,
            column: n.pos.col,
            message: m.into(),
        }
    }

    fn strings(&self, n: &Node, what: &str) -> Result<Vec<String>, SuiteError> {
        match &n.kind {
            NodeKind::Seq(v) => v
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.err(i, format!("{what}: expected a string")))
                })
                .collect(),
            NodeKind::Scalar(s, _) => Ok(vec![s.clone()]),
            NodeKind::Map(_) => Err(self.err(n, format!("{what}: expected a list of strings"))),
        }
    }
}

/// Parses an event from a YAML node (see the module docs).
fn event_from(cx: &Cx<'_>, n: &Node) -> Result<Event, SuiteError> {
    let mut j = n.to_json();
    let Some(obj) = j.as_object_mut() else {
        return Err(cx.err(n, "an event must be a mapping"));
    };
    obj.entry("ts")
        .or_insert_with(|| serde_json::Value::String("2026-01-01T00:00:00Z".into()));
    serde_json::from_value(j).map_err(|e| cx.err(n, format!("invalid event: {e}")))
}

/// Parses JSON lines of events; errors name the line.
pub fn parse_jsonl(file: &str, text: &str) -> Result<Vec<Event>, SuiteError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ev = serde_json::from_str(line).map_err(|e| SuiteError {
            file: file.to_string(),
            line: i + 1,
            column: e.column(),
            message: format!("invalid event: {e}"),
        })?;
        out.push(ev);
    }
    Ok(out)
}

impl Suite {
    /// Parses a suite.
    pub fn parse(file: &str, text: &str) -> Result<Suite, SuiteError> {
        let cx = Cx { file };
        let docs = yaml::parse(text).map_err(|e| SuiteError {
            file: file.to_string(),
            line: e.pos.line,
            column: e.pos.col,
            message: e.message,
        })?;
        let Some(root) = docs.into_iter().flatten().next() else {
            return Err(SuiteError {
                file: file.to_string(),
                line: 1,
                column: 1,
                message: "empty suite".into(),
            });
        };
        if !matches!(root.kind, NodeKind::Map(_)) {
            return Err(cx.err(&root, "a suite must be a mapping with `cases`"));
        }
        let rules = match root.get("rules") {
            Some(n) => cx.strings(n, "rules")?,
            None => vec![],
        };
        let builtin = match root.get("builtin").and_then(Node::as_str) {
            Some("false") => false,
            Some("true") | None => true,
            Some(_) => {
                return Err(cx.err(
                    root.get("builtin").unwrap_or(&root),
                    "builtin: expected true or false",
                ));
            }
        };
        let Some(cases_node) = root.get("cases") else {
            return Err(cx.err(&root, "missing `cases`"));
        };
        let NodeKind::Seq(items) = &cases_node.kind else {
            return Err(cx.err(cases_node, "`cases` must be a list"));
        };
        let mut cases = Vec::new();
        for (i, c) in items.iter().enumerate() {
            if !matches!(c.kind, NodeKind::Map(_)) {
                return Err(cx.err(c, "a case must be a mapping"));
            }
            let name = c
                .get("name")
                .and_then(Node::as_str)
                .map_or_else(|| format!("case {}", i + 1), str::to_string);
            let mut events = Vec::new();
            if let Some(evs) = c.get("events") {
                let NodeKind::Seq(list) = &evs.kind else {
                    return Err(cx.err(evs, "`events` must be a list"));
                };
                for e in list {
                    events.push(event_from(&cx, e)?);
                }
            }
            let events_file = c
                .get("events_file")
                .and_then(Node::as_str)
                .map(str::to_string);
            let mut expect = Vec::new();
            if let Some(ex) = c.get("expect") {
                let NodeKind::Seq(list) = &ex.kind else {
                    return Err(cx.err(ex, "`expect` must be a list"));
                };
                for e in list {
                    let rule = match (e.as_str(), e.get("rule").and_then(Node::as_str)) {
                        (Some(r), _) | (None, Some(r)) => r.to_string(),
                        _ => return Err(cx.err(e, "expected detection needs `rule`")),
                    };
                    let priority = match e.get("priority") {
                        None => None,
                        Some(p) => Some(
                            p.as_str()
                                .and_then(Priority::parse)
                                .ok_or_else(|| cx.err(p, "invalid priority"))?,
                        ),
                    };
                    let mut output_fields = Vec::new();
                    if let Some(of) = e.get("output_fields") {
                        let NodeKind::Map(entries) = &of.kind else {
                            return Err(cx.err(of, "`output_fields` must be a mapping"));
                        };
                        for (k, v) in entries {
                            let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                                return Err(
                                    cx.err(k, "output field names and values must be strings")
                                );
                            };
                            output_fields.push((k.to_string(), v.to_string()));
                        }
                    }
                    let output_contains = e
                        .get("output_contains")
                        .and_then(Node::as_str)
                        .map(str::to_string);
                    expect.push(Expect {
                        rule,
                        priority,
                        output_fields,
                        output_contains,
                    });
                }
            }
            let absent = match c.get("absent") {
                Some(n) => cx.strings(n, "absent")?,
                None => vec![],
            };
            let only = !matches!(c.get("only").and_then(Node::as_str), Some("false"));
            cases.push(Case {
                name,
                line: c.pos.line,
                events,
                events_file,
                expect,
                absent,
                only,
            });
        }
        Ok(Suite {
            rules,
            builtin,
            cases,
        })
    }
}

impl Case {
    /// Runs the case's events through `rules` and checks the expectations.
    pub fn run(&self, rules: &RuleSet) -> CaseResult {
        let mut detections = Vec::new();
        for ev in &self.events {
            detections.extend(rules.detect(ev));
        }
        let mut failures = Vec::new();
        for ex in &self.expect {
            let candidates: Vec<&Detection> =
                detections.iter().filter(|d| d.rule == ex.rule).collect();
            if candidates.is_empty() {
                failures.push(format!("expected rule '{}' did not fire", ex.rule));
                continue;
            }
            let mut why = Vec::new();
            let ok = candidates.iter().any(|d| {
                let mut problems = Vec::new();
                if let Some(p) = ex.priority
                    && d.priority != p
                {
                    problems.push(format!("priority {} instead of {p}", d.priority));
                }
                for (k, v) in &ex.output_fields {
                    let got = d
                        .output_fields
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone().unwrap_or_else(|| "<NA>".into()));
                    match got {
                        Some(g) if &g == v => {}
                        Some(g) => problems.push(format!("{k}={g} instead of {v}")),
                        None => problems.push(format!("{k} is not in the output")),
                    }
                }
                if let Some(t) = &ex.output_contains
                    && !d.output.contains(t.as_str())
                {
                    problems.push(format!("output does not contain {t:?}: {}", d.output));
                }
                let ok = problems.is_empty();
                why.extend(problems);
                ok
            });
            if !ok {
                failures.push(format!("rule '{}' fired but: {}", ex.rule, why.join("; ")));
            }
        }
        for a in &self.absent {
            if detections.iter().any(|d| &d.rule == a) {
                failures.push(format!("rule '{a}' fired but must not"));
            }
        }
        if self.only {
            let mut extra: Vec<&str> = detections
                .iter()
                .filter(|d| !self.expect.iter().any(|e| e.rule == d.rule))
                .map(|d| d.rule.as_str())
                .collect();
            extra.dedup();
            for r in extra {
                failures.push(format!("unexpected detection '{r}'"));
            }
        }
        CaseResult {
            name: self.name.clone(),
            failures,
            detections,
        }
    }
}
