//! Load diagnostics and the load report.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The item was rejected (or the file could not be read / parsed).
    Error,
    /// The item loaded (or was left out on purpose) but something deserves attention.
    Warning,
}

/// A place in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name as given to the builder.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One error or warning produced while loading rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// Falco's load-result code, e.g. `LOAD_ERR_COMPILE_CONDITION`, `LOAD_UNKNOWN_FILTER`.
    pub code: &'static str,
    /// The item concerned, e.g. `rule 'Terminal shell in container'`.
    pub item: Option<String>,
    /// What went wrong.
    pub message: String,
    /// Where.
    pub location: Option<Location>,
    /// The source line at `location`.
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lvl = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{lvl}[{}]: ", self.code)?;
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        writeln!(f, "{}", self.message)?;
        if let Some(loc) = &self.location {
            writeln!(f, "  --> {loc}")?;
            if let Some(snippet) = &self.snippet {
                let num = loc.line.to_string();
                let pad = " ".repeat(num.len());
                writeln!(f, " {pad} |")?;
                writeln!(f, " {num} | {snippet}")?;
                // Caret under the column (tabs kept so alignment survives).
                let lead: String = snippet
                    .chars()
                    .take(loc.column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, " {pad} | {lead}^")?;
            }
        }
        Ok(())
    }
}

/// Why a rule is not part of the compiled rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Rule name.
    pub rule: String,
    /// Why: e.g. `uses fields Vigil does not collect yet: thread.cap_permitted`.
    pub reason: String,
    /// The unsupported fields, if that is the reason.
    pub fields: Vec<String>,
}

/// What loading produced: counts, rules left out, errors and warnings with their places.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Sources loaded, in order.
    pub sources: Vec<String>,
    /// Rules compiled (enabled or not).
    pub rules: usize,
    /// Rules compiled and enabled.
    pub rules_enabled: usize,
    /// Macros defined.
    pub macros: usize,
    /// Lists defined.
    pub lists: usize,
    /// Rules left out (unknown source, unsupported fields, errors).
    pub left_out: Vec<LeftOut>,
    /// Errors and warnings, in load order.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadReport {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.level == Level::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.level == Level::Warning)
    }

    /// Whether any error was reported.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Rules left out because they use fields Vigil does not collect.
    pub fn left_out_for_fields(&self) -> usize {
        self.left_out
            .iter()
            .filter(|l| !l.fields.is_empty())
            .count()
    }

    /// One-paragraph summary (counts only).
    pub fn summary(&self) -> String {
        format!(
            "{} rules loaded ({} enabled), {} macros, {} lists; {} rules left out ({} for unsupported fields); {} errors, {} warnings",
            self.rules,
            self.rules_enabled,
            self.macros,
            self.lists,
            self.left_out.len(),
            self.left_out_for_fields(),
            self.errors().count(),
            self.warnings().count()
        )
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        if !self.left_out.is_empty() {
            writeln!(f, "rules left out:")?;
            for l in &self.left_out {
                writeln!(f, "  - {}: {}", l.rule, l.reason)?;
            }
        }
        writeln!(f, "{}", self.summary())
    }
}
