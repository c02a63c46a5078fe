//! The YAML loader and the condition parser never panic, whatever the input.
//!
//! Each property runs `CASES` inputs (proptest's default is 256; raised here). With the
//! three properties below that is 3 × 4096 = 12 288 inputs per run.

use detect::RuleSetBuilder;
use proptest::prelude::*;

const CASES: u32 = 4096;

/// `VIGIL_FUZZ_CASES` overrides the number of inputs per property (for long runs).
fn cases() -> u32 {
    std::env::var("VIGIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

/// Fragments that make up rules files, so that random combinations reach deep into the loader.
fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("- rule: R\n".to_string()),
        Just("  desc: d\n".to_string()),
        Just("  condition: evt.type = execve and proc.name in (a, b)\n".to_string()),
        Just("  condition: m and not l\n".to_string()),
        Just("  output: \"%proc.name %fd.name[1] %evt.arg.flags\"\n".to_string()),
        Just("  priority: WARNING\n".to_string()),
        Just("  enabled: false\n".to_string()),
        Just("  append: true\n".to_string()),
        Just("  override:\n    condition: append\n".to_string()),
        Just(
            "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[x]]\n"
                .to_string()
        ),
        Just("- macro: m\n  condition: proc.pid > 1\n".to_string()),
        Just("- list: l\n  items: [x, l, \"y z\"]\n".to_string()),
        Just("- required_engine_version: 0.1.0\n".to_string()),
        Just("  tags: [a, T1059]\n".to_string()),
        Just("---\n".to_string()),
        Just("&a [1, *a]\n".to_string()),
        "[ -~\n]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let (_, report) = RuleSetBuilder::new().add_source("fuzz.yaml", text).build().unwrap();
        // Every error names a place.
        for e in report.errors() {
            prop_assert!(e.location.is_some() || e.code == "LOAD_ERR_YAML_VALIDATE", "{e}");
        }
    }

    #[test]
    fn loader_never_panics_on_rule_like_text(parts in proptest::collection::vec(yaml_fragment(), 0..24)) {
        let text: String = parts.concat();
        let (rules, _) = RuleSetBuilder::new().add_source("fuzz.yaml", text).build().unwrap();
        // Whatever loaded can be matched.
        let ev = model::Event { kind: "execve".into(), ..Default::default() };
        let _ = rules.detect(&ev);
    }

    #[test]
    fn condition_parser_never_panics(
        text in prop_oneof![
            "\\PC{0,200}",
            proptest::collection::vec(prop_oneof![
                Just("proc.name"), Just("evt.arg.flags"), Just("proc.aname[2]"), Just("="), Just("!="),
                Just("in"), Just("("), Just(")"), Just(","), Just("and"), Just("or"), Just("not"),
                Just("contains"), Just("'x y'"), Just("\""), Just("val("), Just("tolower("), Just("exists"),
                Just("glob"), Just("pmatch"), Just("macro_a"), Just("<="), Just("0x1f"), Just("["), Just("]"),
            ], 0..40).prop_map(|v| v.join(" ")),
        ]
    ) {
        let _ = detect::parser::parse_condition(&text);
        // And through the full compiler, inside a rule.
        let rule = format!(
            "- rule: R\n  desc: d\n  condition: {}\n  output: o\n  priority: INFO\n",
            serde_json::to_string(&text).unwrap()
        );
        let (rules, _) = RuleSetBuilder::new().add_source("fuzz.yaml", rule).build().unwrap();
        let ev = model::Event { kind: "execve".into(), ..Default::default() };
        let _ = rules.detect(&ev);
    }
}
