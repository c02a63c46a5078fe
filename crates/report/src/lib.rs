//! Vigil's incident reports: drafted from the record, finished by people, exported as Markdown,
//! self-contained HTML, PDF and JSON.
//!
//! This crate is an engine: no network, no database, no async runtime. Give it a
//! [`ReportInput`] (the incident with its timeline, alerts, actions and evidence) and a
//! [`Format`], get bytes back:
//!
//! ```
//! use report::{render, Format, Options};
//! let input = report::sample::cryptominer();
//! let md = render(&input, Format::Markdown, &Options::default()).unwrap();
//! let md = String::from_utf8(md).unwrap();
//! assert!(md.contains("## Executive summary"));
//! assert!(md.contains("servethehome/monero_cpu_moneropool"));
//! ```
//!
//! # Sections
//!
//! Every format has the same content, in this order ([`SECTION_KEYS`] / [`SECTION_HEADINGS`]):
//! the title block (id `INC-n`, title, severity, status, incident commander, drill or real,
//! period), then *Executive summary*, *What was affected*, *Impact*, *Detection*, *Timeline*,
//! *Response*, *Evidence*, *Root cause*, *Remediation*, *Lessons learned*, *Action plan and
//! recommendations* and *Metrics*. This covers the sections of hand-written post-incident
//! reports and the phases of NIST SP 800-61 (detection and analysis; containment, eradication
//! and recovery; post-incident activity).
//!
//! # Drafts
//!
//! The narrative fields ([`model::Narrative`]: `executive_summary`, `impact`, `root_cause`,
//! `remediation`, `lessons_learned`, `action_plan`) that nobody has written yet are drafted
//! deterministically from the record — counts, names, times, actions and their outcomes; no
//! language model, the same record always gives the same words. A drafted section is marked as a
//! draft (a `DRAFT` marker in Markdown, HTML and PDF; `"draft": true` in JSON) until a person
//! writes the field or accepts the draft by adding its name to `narrative.accepted`.
//!
//! # Formats
//!
//! - [`Format::Markdown`]: CommonMark with pipe tables.
//! - [`Format::Html`]: one file, inline CSS (print-friendly, A4 page rules), the timeline chart as
//!   inline SVG; no external references (no scripts, stylesheets, images or fonts to fetch).
//! - [`Format::Pdf`]: rendered in-process by a small layout engine over the PDF standard fonts
//!   (Helvetica, Courier: nothing embedded, nothing downloaded, text extractable), A4 pages with
//!   repeated table headers, bookmarks per section, page numbers, and the timeline chart drawn as
//!   vector graphics.
//! - [`Format::Json`]: the structured [`Report`] (title block, timing metrics in seconds, then
//!   sections with `key`, `heading`, `draft`, `field`, `text` and `tables`).
//!
//! # Templates
//!
//! Markdown and HTML are produced by [minijinja](https://docs.rs/minijinja) templates. The
//! built-in ones are [`DEFAULT_MARKDOWN_TEMPLATE`] and [`DEFAULT_HTML_TEMPLATE`]; an organisation
//! supplies its own through [`Options::template`] (`vigil report --template FILE`), usually
//! starting from a copy of the default. Blocks trim their trailing newline (`trim_blocks`,
//! `lstrip_blocks`); in HTML templates output is HTML-escaped automatically. Using an undefined
//! variable is an error (testing it with `if` is allowed). The variables:
//!
//! | variable | content |
//! |---|---|
//! | `report.format_version` | layout version of `report` (currently 1) |
//! | `report.draft` | whether any section is still a draft |
//! | `report.metrics.time_to_detect`, `.time_to_acknowledge`, `.time_to_contain`, `.time_to_resolve` | seconds (none where not reached) |
//! | `report.generated_at` | RFC 3339 time (none unless the caller set [`Options::generated_at`]) |
//! | `report.title_block.id` | `INC-<n>` |
//! | `report.title_block.incident_id` | `<n>` |
//! | `report.title_block.title`, `.severity`, `.status`, `.commander` (may be none), `.drill` (bool), `.kind` (`drill` / `real incident`) | the head of the report |
//! | `report.title_block.period_start`, `.period_end` (may be none), `.period` (text) | the period |
//! | `report.sections` | list of sections in order; each has `key`, `heading`, `draft` (bool), `field` (narrative field name, narrative sections only), `text` (Markdown prose) and `tables` |
//! | `section.tables[i].columns`, `.rows` | column headings; rows of cell strings |
//! | `incident` | the raw [`model::Incident`] as JSON (ids, timestamps, `assets`, `narrative`, …) |
//! | `chart_svg` | the timeline chart as an `<svg>` element (already safe in HTML) |
//! | `format` | `md` or `html` |
//!
//! Filters besides minijinja's built-ins: `markdown` (Markdown prose to HTML, raw HTML shown as
//! text), `md_cell` (escapes `|` and line breaks for a Markdown table cell) and `datetime` (an
//! RFC 3339 time such as `report.generated_at` as `2025-05-02 14:03:07 UTC`). A template error
//! names the template and line ([`ReportError::Template`]).

mod chart;
mod document;
mod draft;
mod input;
mod pdf;
pub mod sample;
mod templates;
mod text;

pub use document::{
    FORMAT_VERSION, METRIC_DEFINITIONS, Report, SECTION_HEADINGS, SECTION_KEYS, Section, Table,
    TitleBlock, heading,
};
pub use input::ReportInput;
pub use templates::{DEFAULT_HTML_TEMPLATE, DEFAULT_MARKDOWN_TEMPLATE};

use std::fmt;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Markdown (CommonMark with pipe tables).
    Markdown,
    /// One self-contained HTML file.
    Html,
    /// PDF.
    Pdf,
    /// The structured report as JSON.
    Json,
}

impl Format {
    /// All formats.
    pub const ALL: [Format; 4] = [Format::Markdown, Format::Html, Format::Pdf, Format::Json];

    /// Short name: `md`, `html`, `pdf`, `json` (also the file extension).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Json => "json",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Pdf => "application/pdf",
            Format::Json => "application/json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = ReportError;
    /// Parses `md`/`markdown`, `html`/`htm`, `pdf`, `json`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "html" | "htm" => Ok(Format::Html),
            "pdf" => Ok(Format::Pdf),
            "json" => Ok(Format::Json),
            _ => Err(ReportError::UnknownFormat(s.to_string())),
        }
    }
}

/// An organisation's own template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Where it came from (a file path), used in error messages.
    pub name: String,
    /// The minijinja source.
    pub source: String,
}

/// Rendering options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Template replacing the built-in one (Markdown and HTML only).
    pub template: Option<Template>,
    /// Generation time to print in the report; `None` leaves it out (reproducible output).
    pub generated_at: Option<model::Time>,
    /// Leave the timeline chart out of HTML and PDF.
    pub no_chart: bool,
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A `ReportInput` JSON document is malformed.
    #[error("{origin}:{line}:{column}: invalid report input: {message}")]
    Input {
        /// File path or URL.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A template failed to parse or render.
    #[error("template {name}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        /// Template name (file path, or `built-in …`).
        name: String,
        /// Line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A template was given for a format that does not use templates.
    #[error("templates apply to Markdown and HTML only, not {0}")]
    TemplateNotSupported(Format),
    /// An unknown format name.
    #[error("unknown report format {0:?}: expected md, html, pdf or json")]
    UnknownFormat(String),
}

/// Renders the report of `input` in `format`.
pub fn render(
    input: &ReportInput,
    format: Format,
    options: &Options,
) -> Result<Vec<u8>, ReportError> {
    let mut report = Report::build(input);
    report.generated_at = options.generated_at;
    let chart = || {
        if options.no_chart {
            None
        } else {
            Some(chart::layout(&draft::Facts::gather(input)))
        }
    };
    match format {
        Format::Json | Format::Pdf if options.template.is_some() => {
            Err(ReportError::TemplateNotSupported(format))
        }
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&report).unwrap_or_default();
            v.push(b'\n');
            Ok(v)
        }
        Format::Pdf => Ok(pdf::render(&report, chart().as_ref())),
        Format::Markdown => templates::render(
            &report,
            &input.incident,
            None,
            format,
            options.template.as_ref(),
        )
        .map(String::into_bytes),
        Format::Html => templates::render(
            &report,
            &input.incident,
            chart().map(|c| c.to_svg(false)),
            format,
            options.template.as_ref(),
        )
        .map(String::into_bytes),
    }
}

/// The text Vigil drafts for a free-text narrative field (`executive_summary`, `impact`,
/// `root_cause`, `remediation`, `lessons_learned`) from the record, whether or not a person has
/// written the field; `None` for an unknown field. Useful to show a draft before editing it, or
/// to accept a draft by storing its text.
pub fn draft_field(input: &ReportInput, field: &str) -> Option<String> {
    let f = draft::Facts::gather(input);
    Some(match field {
        "executive_summary" => draft::executive_summary(&f),
        "impact" => draft::impact(&f),
        "root_cause" => draft::root_cause(&f),
        "remediation" => draft::remediation(&f),
        "lessons_learned" => draft::lessons_learned(&f),
        _ => return None,
    })
}

/// The action plan Vigil drafts from the record.
pub fn draft_action_plan(input: &ReportInput) -> Vec<model::ActionItem> {
    draft::action_plan(&draft::Facts::gather(input))
}

/// The timeline chart of `input` as a standalone SVG document.
pub fn timeline_svg(input: &ReportInput) -> String {
    chart::layout(&draft::Facts::gather(input)).to_svg(true)
}
