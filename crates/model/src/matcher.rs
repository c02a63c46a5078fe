//! Label matchers with Prometheus/Alertmanager semantics: `name="value"`, `name!="value"`,
//! `name=~"regex"`, `name!~"regex"`. Used by the Alertmanager `filter` parameter and by response
//! policies.

use crate::Labels;
use regex::Regex;
use std::fmt;

/// How a [`LabelMatcher`] compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Equal,
    /// `!=`: not equal.
    NotEqual,
    /// `=~`: the fully anchored regex matches.
    Regex,
    /// `!~`: the fully anchored regex does not match.
    NotRegex,
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher, e.g. `image=~"servethehome/.*"`.
///
/// As in Prometheus, a missing label has the value `""`, and regexes are fully anchored.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// The value or regex source.
    pub value: String,
    regex: Option<Regex>,
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl LabelMatcher {
    /// Builds a matcher; `Err` describes a bad regex.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(anchored(value)?),
            _ => None,
        };
        Ok(LabelMatcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Parses `name<op>value`. The value may be bare, or quoted with `"` or `'` (escapes `\"`,
    /// `\\`, `\n`, `\t`); surrounding braces (`{a="b"}`) are accepted. `Err` names the matcher and
    /// says what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(s)
            .trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("matcher {input:?} has no operator (=, !=, =~, !~)"))?;
        let name = &s[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("matcher {input:?} has an invalid label name"));
        }
        let rest = s[name_end..].trim_start();
        let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Equal, r)
        } else {
            return Err(format!(
                "matcher {input:?}: expected an operator (=, !=, =~, !~) after {name:?}"
            ));
        };
        let value = unquote(rest.trim()).map_err(|e| format!("matcher {input:?}: {e}"))?;
        LabelMatcher::new(name, op, &value).map_err(|e| format!("matcher {input:?}: {e}"))
    }

    /// Whether the labels satisfy the matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether a value satisfies the matcher (`""` stands for an absent label).
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// Compiles a regex anchored at both ends, as Prometheus does.
pub fn anchored(re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("bad regex {re:?}: {e}"))
}

fn unquote(v: &str) -> Result<String, String> {
    let Some(first) = v.chars().next() else {
        return Ok(String::new());
    };
    if first != '"' && first != '\'' {
        return Ok(v.to_string());
    }
    if v.len() < 2 || !v.ends_with(first) {
        return Err(format!("unterminated quoted value {v}"));
    }
    let inner = &v[1..v.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => return Err(format!("dangling backslash in {v}")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> Labels {
        Labels::from_pairs([
            ("alertname", "monitor_service_down"),
            ("job", "cadvisor"),
            ("image", "servethehome/x:latest"),
        ])
    }

    #[test]
    fn prometheus_semantics() {
        let m = |s: &str| LabelMatcher::parse(s).unwrap().matches(&l());
        assert!(m(r#"alertname="monitor_service_down""#));
        assert!(m("job=cadvisor"));
        assert!(m("job='cadvisor'"));
        assert!(!m(r#"job!="cadvisor""#));
        assert!(m(r#"job=~"cad.*""#));
        // anchored: a partial match is no match
        assert!(!m(r#"job=~"cad""#));
        assert!(m(r#"image!~"servethehome""#));
        assert!(m(r#"job!~"node.*""#));
        // a missing label is ""
        assert!(m(r#"{missing="" }"#));
        assert!(m(r#"pod=~".*""#));
        assert!(!m(r#"pod=~".+""#));
        assert_eq!(LabelMatcher::parse(r#"x="a\"b""#).unwrap().value, "a\"b");
        assert_eq!(
            LabelMatcher::parse(r#"job=~"a.*""#).unwrap().to_string(),
            r#"job=~"a.*""#
        );
    }

    #[test]
    fn errors_name_the_matcher() {
        let e = LabelMatcher::parse("nooperator").unwrap_err();
        assert!(e.contains("nooperator") && e.contains("operator"), "{e}");
        assert!(
            LabelMatcher::parse(r#"a=~"(""#)
                .unwrap_err()
                .contains("bad regex")
        );
        assert!(
            LabelMatcher::parse(r#"a="x"#)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            LabelMatcher::parse(r#"1a="x""#)
                .unwrap_err()
                .contains("invalid label name")
        );
    }
}
