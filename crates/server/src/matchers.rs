//! Alertmanager label matchers (`name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`), as used
//! by the `filter` parameter of `GET /api/v2/alerts` and by `amtool`.

use model::Labels;
use regex::Regex;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored regex)
    Regex,
    /// `!~` (anchored regex)
    NotRegex,
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex source.
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// Parses `name<op>value`; the value may be double-quoted (with `\"`, `\\`, `\n` escapes).
    /// Surrounding braces (`{a="b"}`) are accepted.
    pub fn parse(input: &str) -> Result<Matcher, String> {
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
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("matcher {input:?}: invalid regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value,
            re,
        })
    }

    /// Whether the matcher accepts a label value (`""` when the label is absent).
    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts a label set.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }
}

fn unquote(s: &str) -> Result<String, String> {
    let Some(inner) = s.strip_prefix('"') else {
        return Ok(s.to_string());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| "unterminated quoted value".to_string())?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => return Err("dangling backslash".into()),
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
        Labels::from_pairs([("alertname", "monitor_service_down"), ("job", "cadvisor")])
    }

    #[test]
    fn operators() {
        assert!(
            Matcher::parse(r#"alertname="monitor_service_down""#)
                .unwrap()
                .matches(&l())
        );
        assert!(Matcher::parse("job=cadvisor").unwrap().matches(&l()));
        assert!(!Matcher::parse(r#"job!="cadvisor""#).unwrap().matches(&l()));
        assert!(Matcher::parse(r#"job=~"cad.*""#).unwrap().matches(&l()));
        assert!(!Matcher::parse(r#"job=~"cad""#).unwrap().matches(&l()));
        assert!(Matcher::parse(r#"job!~"node.*""#).unwrap().matches(&l()));
        assert!(Matcher::parse(r#"{missing="" }"#).unwrap().matches(&l()));
        assert!(Matcher::parse(r#"x="a\"b""#).unwrap().value == "a\"b");
    }

    #[test]
    fn errors_name_the_matcher() {
        let e = Matcher::parse("nooperator").unwrap_err();
        assert!(e.contains("nooperator"), "{e}");
        assert!(Matcher::parse(r#"a=~"(""#).is_err());
        assert!(Matcher::parse(r#"a="x"#).is_err());
    }
}
