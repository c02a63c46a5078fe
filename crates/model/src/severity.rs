//! Severity, shared by alerts and incidents.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad something is, ordered from least to most severe.
///
/// Parsed leniently from the `severity` label values people use with Alertmanager and from Falco
/// priorities; see [`Severity::parse`] and [`Severity::from_falco_priority`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational; also Falco's `Informational` and `Debug`.
    #[default]
    Info,
    /// Worth a look; Falco's `Notice`.
    Notice,
    /// Falco's and Prometheus' `warning`.
    Warning,
    /// Falco's `Error`; also `high`, `major`.
    Error,
    /// Falco's `Critical`, `Alert`, `Emergency`; Prometheus' `critical`, `page`.
    Critical,
}

impl Severity {
    /// All severities, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// The label value: `info`, `notice`, `warning`, `error` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// Parses a severity label value or Falco priority, case-insensitively.
    /// Unknown words give `None`.
    pub fn parse(s: &str) -> Option<Severity> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "critical" | "crit" | "emergency" | "emerg" | "alert" | "page" | "fatal" | "p1" => {
                Severity::Critical
            }
            "error" | "err" | "high" | "major" | "p2" => Severity::Error,
            "warning" | "warn" | "medium" | "p3" => Severity::Warning,
            "notice" | "low" | "minor" | "p4" => Severity::Notice,
            "info" | "informational" | "debug" | "none" | "p5" => Severity::Info,
            _ => return None,
        })
    }

    /// Maps a Falco priority (`Emergency` … `Debug`) to a severity.
    pub fn from_falco_priority(p: &str) -> Severity {
        Severity::parse(p).unwrap_or(Severity::Warning)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::parse(s).ok_or_else(|| format!("unknown severity {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falco_priorities_map() {
        assert_eq!(
            Severity::from_falco_priority("Emergency"),
            Severity::Critical
        );
        assert_eq!(
            Severity::from_falco_priority("CRITICAL"),
            Severity::Critical
        );
        assert_eq!(Severity::from_falco_priority("Error"), Severity::Error);
        assert_eq!(Severity::from_falco_priority("Warning"), Severity::Warning);
        assert_eq!(Severity::from_falco_priority("Notice"), Severity::Notice);
        assert_eq!(
            Severity::from_falco_priority("Informational"),
            Severity::Info
        );
        assert_eq!(Severity::from_falco_priority("Debug"), Severity::Info);
    }

    #[test]
    fn ordering_is_by_badness() {
        assert!(Severity::Critical > Severity::Error);
        assert!(Severity::Info < Severity::Notice);
        assert_eq!(Severity::ALL.iter().max(), Some(&Severity::Critical));
    }
}
