//! The structured report: a title block and the sections in their fixed order. Every output
//! format is rendered from this one value, and the JSON format is this value itself.

use crate::ReportInput;
use crate::draft::{self, Facts};
use crate::text::{self, action_status, count, short_id, time_cell, time_utc};
use model::{Severity, Time};
use serde::{Deserialize, Serialize};

/// Version of the JSON layout of [`Report`]; raised when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// The section keys, in the order sections appear.
pub const SECTION_KEYS: [&str; 12] = [
    "executive_summary",
    "affected",
    "impact",
    "detection",
    "timeline",
    "response",
    "evidence",
    "root_cause",
    "remediation",
    "lessons_learned",
    "action_plan",
    "metrics",
];

/// The section headings, in the same order as [`SECTION_KEYS`].
pub const SECTION_HEADINGS: [&str; 12] = [
    "Executive summary",
    "What was affected",
    "Impact",
    "Detection",
    "Timeline",
    "Response",
    "Evidence",
    "Root cause",
    "Remediation",
    "Lessons learned",
    "Action plan and recommendations",
    "Metrics",
];

/// A rendered-to-data incident report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Who and what: id, title, severity, status, commander, drill or real, period.
    pub title_block: TitleBlock,
    /// The sections, in the order of [`SECTION_KEYS`].
    pub sections: Vec<Section>,
    /// Whether any section is still a draft.
    pub draft: bool,
    /// The timing metrics in seconds (`null` where not reached), as in the Metrics section.
    pub metrics: model::TimingMetrics,
    /// When the report was generated, if the caller said ([`crate::Options::generated_at`]).
    #[serde(default)]
    pub generated_at: Option<Time>,
}

/// The head of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TitleBlock {
    /// `INC-<id>`.
    pub id: String,
    /// Numeric incident id.
    pub incident_id: i64,
    /// Incident title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle status (`open` … `closed`).
    pub status: String,
    /// Incident commander, if one was named.
    #[serde(default)]
    pub commander: Option<String>,
    /// Whether this was a drill.
    pub drill: bool,
    /// `drill` or `real incident`.
    pub kind: String,
    /// When the trouble began (the earliest alert's start).
    pub period_start: Time,
    /// When it ended (resolved, else closed), if it has.
    #[serde(default)]
    pub period_end: Option<Time>,
    /// The period for people: `2025-05-02 14:03:01 UTC – 14:20:00 UTC`, or `… – ongoing`.
    pub period: String,
}

/// One section of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Stable key, one of [`SECTION_KEYS`].
    pub key: String,
    /// Heading, one of [`SECTION_HEADINGS`].
    pub heading: String,
    /// Whether the text was drafted by Vigil from the record and no person has written or
    /// accepted it yet.
    pub draft: bool,
    /// The narrative field a person edits to replace the text (`vigil incidents edit ID --field
    /// <field>`), for the narrative sections.
    #[serde(default)]
    pub field: Option<String>,
    /// The prose: paragraphs separated by a blank line; lines starting `- ` form a list. Written
    /// by a person (Markdown) or drafted.
    pub text: String,
    /// Tabular content (assets, alerts, timeline, actions, evidence, plan, metrics).
    #[serde(default)]
    pub tables: Vec<Table>,
}

/// A table: a header row and rows of plain-text cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows; each has one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[&str]) -> Self {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }
}

impl Report {
    /// Builds the report from the record, drafting the narrative fields nobody has written.
    pub fn build(input: &ReportInput) -> Report {
        let facts = Facts::gather(input);
        let inc = &input.incident;
        let n = &inc.narrative;
        let period_end = inc.resolved_at.or(inc.closed_at);
        let period = match period_end {
            Some(end) => format!(
                "{} – {}",
                time_utc(inc.started_at),
                text::time_after(end, inc.started_at)
            ),
            None => match inc.contained_at {
                Some(c) => format!(
                    "{} – ongoing (contained at {})",
                    time_utc(inc.started_at),
                    text::time_after(c, inc.started_at)
                ),
                None => format!("{} – ongoing", time_utc(inc.started_at)),
            },
        };
        let title_block = TitleBlock {
            id: inc.display_id(),
            incident_id: inc.id,
            title: inc.title.clone(),
            severity: inc.severity,
            status: inc.status.as_str().to_string(),
            commander: inc.commander.clone(),
            drill: inc.drill,
            kind: if inc.drill { "drill" } else { "real incident" }.to_string(),
            period_start: inc.started_at,
            period_end,
            period,
        };

        let narrative = |key: &str, written: &Option<String>, drafted: fn(&Facts) -> String| {
            let (text, draft) = match written {
                Some(t) => (t.clone(), false),
                None => (drafted(&facts), !n.accepted.contains(key)),
            };
            Section {
                key: key.to_string(),
                heading: heading(key).to_string(),
                draft,
                field: Some(key.to_string()),
                text,
                tables: Vec::new(),
            }
        };

        let sections = vec![
            narrative(
                "executive_summary",
                &n.executive_summary,
                draft::executive_summary,
            ),
            affected(&facts),
            narrative("impact", &n.impact, draft::impact),
            detection(&facts),
            timeline(&facts),
            response(&facts),
            evidence(&facts),
            narrative("root_cause", &n.root_cause, draft::root_cause),
            narrative("remediation", &n.remediation, draft::remediation),
            narrative(
                "lessons_learned",
                &n.lessons_learned,
                draft::lessons_learned,
            ),
            action_plan(&facts),
            metrics(&facts),
        ];
        let draft = sections.iter().any(|s| s.draft);
        Report {
            format_version: FORMAT_VERSION,
            title_block,
            sections,
            draft,
            metrics: inc.metrics(),
            generated_at: None,
        }
    }

    /// The section with this key.
    pub fn section(&self, key: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.key == key)
    }
}

/// The heading of a section key (the key itself when unknown).
pub fn heading(key: &str) -> &str {
    SECTION_KEYS
        .iter()
        .position(|k| *k == key)
        .map(|i| SECTION_HEADINGS[i])
        .unwrap_or(key)
}

fn data_section(key: &str, text: String, tables: Vec<Table>) -> Section {
    Section {
        key: key.to_string(),
        heading: heading(key).to_string(),
        draft: false,
        field: None,
        text,
        tables,
    }
}

fn affected(f: &Facts) -> Section {
    let a = &f.assets;
    let mut t = Table::new(&["Kind", "Count", "Names"]);
    let mut parts = Vec::new();
    for (kind, singular, plural, set) in [
        ("Hosts", "host", "hosts", &a.hosts),
        ("Containers", "container", "containers", &a.containers),
        ("Images", "image", "images", &a.images),
        ("Pods", "pod", "pods", &a.pods),
        ("Services", "service", "services", &a.services),
    ] {
        if set.is_empty() {
            continue;
        }
        parts.push(count(set.len(), singular, plural));
        let names: Vec<&str> = set.iter().map(String::as_str).collect();
        t.rows
            .push(vec![kind.into(), set.len().to_string(), names.join(", ")]);
    }
    let text = if parts.is_empty() {
        "No affected hosts, containers, images, pods or services were recorded.".to_string()
    } else {
        format!("{}.", text::capitalise(&text::join_and(&parts)))
    };
    let tables = if t.rows.is_empty() { vec![] } else { vec![t] };
    data_section("affected", text, tables)
}

fn detection(f: &Facts) -> Section {
    let inc = f.incident;
    let mut text = format!(
        "The first alert started at {}; Vigil opened the incident at {} ({} later).",
        time_utc(inc.started_at),
        text::time_after(inc.detected_at, inc.started_at),
        text::between(inc.started_at, inc.detected_at)
    );
    let mut t = Table::new(&[
        "First fired (UTC)",
        "Alert",
        "Rule",
        "Source",
        "Severity",
        "Asset",
    ]);
    if !f.alerts.is_empty() {
        text.push_str(&format!(
            " {} joined it.",
            count(f.alerts.len(), "alert", "alerts")
        ));
        for a in &f.alerts {
            let l = &a.alert.labels;
            t.rows.push(vec![
                time_cell(a.alert.starts_at),
                a.alert.name().to_string(),
                draft::rule_of(&a.alert),
                draft::source_of(&a.alert),
                a.alert.severity().to_string(),
                draft::asset_of(l),
            ]);
        }
    } else {
        let dets: Vec<_> = f
            .timeline
            .iter()
            .filter(|e| e.kind == model::TimelineKind::Detection)
            .collect();
        if !dets.is_empty() {
            text.push_str(&format!(
                " {} recorded.",
                count(dets.len(), "detection was", "detections were")
            ));
        }
        for e in dets {
            let d = &e.data;
            let s = |k: &str| {
                d.pointer(&format!("/labels/{k}"))
                    .or_else(|| d.pointer(&format!("/alert/labels/{k}")))
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            t.rows.push(vec![
                time_cell(e.at),
                e.summary.clone(),
                s("rule"),
                if s("source").is_empty() {
                    e.actor.clone()
                } else {
                    s("source")
                },
                s("severity"),
                s("container_name"),
            ]);
        }
    }
    let tables = if t.rows.is_empty() { vec![] } else { vec![t] };
    data_section("detection", text, tables)
}

fn timeline(f: &Facts) -> Section {
    let mut t = Table::new(&["Time (UTC)", "Kind", "Source / actor", "Entry"]);
    for e in &f.timeline {
        t.rows.push(vec![
            time_cell(e.at),
            e.kind.as_str().replace('_', " "),
            e.actor.clone(),
            e.summary.clone(),
        ]);
    }
    let text = if f.timeline.is_empty() {
        "The timeline is empty.".to_string()
    } else {
        format!(
            "{} from {} to {}.",
            count(f.timeline.len(), "entry", "entries"),
            time_utc(f.timeline[0].at),
            text::time_after(f.timeline[f.timeline.len() - 1].at, f.timeline[0].at)
        )
    };
    let tables = if t.rows.is_empty() { vec![] } else { vec![t] };
    data_section("timeline", text, tables)
}

fn response(f: &Facts) -> Section {
    let mut t = Table::new(&[
        "Requested (UTC)",
        "Phase",
        "Action",
        "Target",
        "By",
        "Mode",
        "Outcome",
    ]);
    for a in &f.actions {
        let mut outcome = action_status(a.status).to_string();
        if let Some(fin) = a.finished_at {
            outcome.push_str(&format!(" at {}", text::clock_utc(fin)));
        }
        if let Some(e) = &a.error {
            outcome.push_str(&format!(": {e}"));
        }
        if let Some(d) = &a.decided_by {
            outcome.push_str(&format!(" (decided by {d})"));
        }
        t.rows.push(vec![
            time_cell(a.requested_at),
            draft::phase(&a.kind).to_string(),
            a.kind.clone(),
            short_id(&a.target),
            a.actor.clone(),
            if draft::automated(&a.actor) {
                "automated"
            } else {
                "manual"
            }
            .to_string(),
            outcome,
        ]);
    }
    let text = if f.actions.is_empty() {
        "No response action was recorded.".to_string()
    } else {
        let auto = f
            .actions
            .iter()
            .filter(|a| draft::automated(&a.actor))
            .count();
        format!(
            "{}: {} automated by response policies, {} manual. {}.",
            count(f.actions.len(), "action", "actions"),
            auto,
            f.actions.len() - auto,
            text::capitalise(&draft::outcome_summary(&f.actions))
        )
    };
    let tables = if t.rows.is_empty() { vec![] } else { vec![t] };
    data_section("response", text, tables)
}

fn evidence(f: &Facts) -> Section {
    let mut t = Table::new(&[
        "Collected (UTC)",
        "Kind",
        "Subject",
        "Path",
        "Size",
        "SHA-256",
    ]);
    for e in &f.evidence {
        t.rows.push(vec![
            time_cell(e.collected_at),
            e.kind.clone(),
            short_id(&e.subject),
            e.path.clone(),
            text::size(e.size),
            e.sha256.clone(),
        ]);
    }
    let text = if f.evidence.is_empty() {
        "No evidence was collected.".to_string()
    } else {
        format!(
            "{}, each kept under Vigil's data directory with its SHA-256 digest.",
            count(f.evidence.len(), "artifact", "artifacts")
        )
    };
    let tables = if t.rows.is_empty() { vec![] } else { vec![t] };
    data_section("evidence", text, tables)
}

fn action_plan(f: &Facts) -> Section {
    let n = &f.incident.narrative;
    let (items, draft, text) = if !n.action_plan.is_empty() {
        (n.action_plan.clone(), false, String::new())
    } else {
        let accepted = n.accepted.contains("action_plan");
        (
            draft::action_plan(f),
            !accepted,
            "Proposed from the record; owners and due dates are still to be set.".to_string(),
        )
    };
    let mut t = Table::new(&["#", "Action", "Owner", "Due", "Status"]);
    for (i, it) in items.iter().enumerate() {
        t.rows.push(vec![
            (i + 1).to_string(),
            it.text.clone(),
            it.owner.clone().unwrap_or_else(|| "unassigned".into()),
            it.due.clone().unwrap_or_else(|| "not set".into()),
            if it.done { "done" } else { "open" }.to_string(),
        ]);
    }
    Section {
        key: "action_plan".into(),
        heading: heading("action_plan").into(),
        draft,
        field: Some("action_plan".into()),
        text,
        tables: if t.rows.is_empty() { vec![] } else { vec![t] },
    }
}

/// The definitions printed with the metrics, as in [`model::Incident::metrics`].
pub const METRIC_DEFINITIONS: [(&str, &str); 4] = [
    (
        "Time to detect",
        "From the start of the earliest alert (startsAt) to Vigil opening the incident.",
    ),
    (
        "Time to acknowledge",
        "From the incident being opened to a person acknowledging it.",
    ),
    (
        "Time to contain",
        "From the incident being opened to the threat being contained.",
    ),
    (
        "Time to resolve",
        "From the incident being opened to its resolution (eradicated and recovered).",
    ),
];

fn metrics(f: &Facts) -> Section {
    let m = f.incident.metrics();
    let values = [
        m.time_to_detect,
        m.time_to_acknowledge,
        m.time_to_contain,
        m.time_to_resolve,
    ];
    let mut t = Table::new(&["Metric", "Value", "Definition"]);
    for ((name, def), v) in METRIC_DEFINITIONS.iter().zip(values) {
        t.rows.push(vec![
            name.to_string(),
            v.map(text::duration)
                .unwrap_or_else(|| "not reached".into()),
            def.to_string(),
        ]);
    }
    data_section(
        "metrics",
        "Timing measured from the incident record.".to_string(),
        vec![t],
    )
}
