//! The built-in rule pack: loads cleanly, every rule has a positive and a negative case, and
//! every case of `rules/vigil_rules.test.yaml` passes.

use detect::RuleSetBuilder;
use detect::suite::Suite;

const SUITE: &str = include_str!("../rules/vigil_rules.test.yaml");

#[test]
fn builtin_pack_loads_cleanly() {
    let (rules, report) = RuleSetBuilder::new().builtin(true).build().unwrap();
    assert!(report.diagnostics.is_empty(), "{report}");
    assert!(rules.len() >= 14, "{}", rules.len());
    for r in rules.rules() {
        assert!(
            !detect::mitre_ids(&r.tags).is_empty(),
            "rule '{}' has no MITRE ATT&CK id",
            r.name
        );
    }
}

#[test]
fn builtin_suite_passes() {
    let suite = Suite::parse("vigil_rules.test.yaml", SUITE).unwrap();
    let (rules, _) = RuleSetBuilder::new().builtin(true).build().unwrap();
    let mut failed = Vec::new();
    for case in &suite.cases {
        let r = case.run(&rules);
        if !r.passed() {
            failed.push(format!("{}: {}", r.name, r.failures.join("; ")));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[test]
fn every_builtin_rule_has_positive_and_negative_cases() {
    let suite = Suite::parse("vigil_rules.test.yaml", SUITE).unwrap();
    let (rules, _) = RuleSetBuilder::new().builtin(true).build().unwrap();
    for r in rules.rules() {
        assert!(
            suite
                .cases
                .iter()
                .any(|c| c.expect.iter().any(|e| e.rule == r.name)),
            "no positive case for '{}'",
            r.name
        );
        assert!(
            suite.cases.iter().any(|c| c.absent.contains(&r.name)),
            "no negative case for '{}'",
            r.name
        );
    }
}

#[test]
fn negative_cases_really_produce_nothing_for_their_rule() {
    // A broken rule that never fires would pass every negative case; the positive cases above
    // guard against that, and here we check the negative events do reach the matcher: removing
    // the `not ...` guard of one rule makes its negative case fail.
    let patched = "- rule: Sensitive file read\n  condition: vigil_open_read and (fd.name in (vigil_sensitive_files) or fd.directory in (vigil_sensitive_dirs) or fd.name = /etc/passwd)\n  override:\n    condition: replace\n";
    let (rules, report) = RuleSetBuilder::new()
        .builtin(true)
        .add_source("patch.yaml", patched)
        .build()
        .unwrap();
    assert!(!report.has_errors(), "{report}");
    let suite = Suite::parse("vigil_rules.test.yaml", SUITE).unwrap();
    let case = suite
        .cases
        .iter()
        .find(|c| c.name.starts_with("passwd read"))
        .unwrap();
    assert!(!case.run(&rules).passed());
}
