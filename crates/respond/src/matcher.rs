//! Label matchers (Prometheus semantics, from `model`) and simple glob patterns.

#[cfg(test)]
use model::Labels;
pub use model::{LabelMatcher, MatchOp, anchored};

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
