//! Label matchers with Prometheus semantics and simple glob patterns.

use model::Labels;
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
    fn as_str(self) -> &'static str {
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

    /// Parses `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`; the value may be
    /// unquoted. `Err` says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("matcher {s:?} has no operator (=, !=, =~, !~)"))?;
        let name = &s[..name_end];
        if name.is_empty() {
            return Err(format!("matcher {s:?} has no label name"));
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
                "matcher {s:?}: expected =, !=, =~ or !~ after {name:?}"
            ));
        };
        let value = unquote(rest.trim())?;
        LabelMatcher::new(name, op, &value)
    }

    /// Whether the labels satisfy the matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// Whether a value satisfies the matcher.
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

/// Matches `text` against a glob pattern with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels::from_pairs([("alertname", "Miner"), ("image", "servethehome/x:latest")])
    }

    #[test]
    fn prometheus_semantics() {
        let l = labels();
        assert!(
            LabelMatcher::parse(r#"alertname="Miner""#)
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelMatcher::parse(r#"alertname!="Miner""#)
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelMatcher::parse(r#"image=~"servethehome/.*""#)
                .unwrap()
                .matches(&l)
        );
        // anchored: a partial match is no match
        assert!(
            !LabelMatcher::parse(r#"image=~"servethehome""#)
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelMatcher::parse(r#"image!~"servethehome""#)
                .unwrap()
                .matches(&l)
        );
        // missing label is ""
        assert!(LabelMatcher::parse(r#"pod="""#).unwrap().matches(&l));
        assert!(LabelMatcher::parse(r#"pod=~".*""#).unwrap().matches(&l));
        assert!(!LabelMatcher::parse(r#"pod=~".+""#).unwrap().matches(&l));
        assert!(LabelMatcher::parse("alertname=Miner").unwrap().matches(&l));
    }

    #[test]
    fn parse_errors_say_what() {
        assert!(
            LabelMatcher::parse("novalue")
                .unwrap_err()
                .contains("operator")
        );
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
    }

    #[test]
    fn globs() {
        assert!(glob_match("vigil*", "vigil-up"));
        assert!(glob_match("*prom*", "my-prometheus"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("kube-system", "kube-public"));
    }
}
