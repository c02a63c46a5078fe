//! Alertmanager label matchers (`name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`), as used
//! by the `filter` parameter of `GET /api/v2/alerts` and by `amtool`: `model::LabelMatcher`.

pub use model::{LabelMatcher as Matcher, MatchOp};

#[cfg(test)]
mod tests {
    use super::*;
    use model::Labels;

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
