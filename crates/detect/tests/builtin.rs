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

#[test]
fn detections_become_alerts() {
    let (rules, _) = RuleSetBuilder::new().builtin(true).build().unwrap();
    let ev = model::Event {
        kind: "container_start".into(),
        source: model::EventSource::Docker,
        hostname: "node-1".into(),
        container: Some(
            model::ContainerInfo {
                id: "4f1c0e7d9a2b3c4d5e6f00".into(),
                name: "miner".into(),
                image: "servethehome/monero_cpu_minergate:latest".into(),
                image_repository: "servethehome/monero_cpu_minergate".into(),
                k8s_ns: "prod".into(),
                k8s_pod: "miner-0".into(),
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    };
    let d = rules.detect(&ev);
    assert_eq!(d.len(), 1);
    let a = d[0].to_alert(&ev);
    let l = |k: &str| a.labels.get(k).map(str::to_string);
    assert_eq!(
        l("alertname").as_deref(),
        Some("Cryptominer container started")
    );
    assert_eq!(l("severity").as_deref(), Some("critical"));
    assert_eq!(l("source").as_deref(), Some("runtime"));
    assert_eq!(l("priority").as_deref(), Some("Critical"));
    assert_eq!(l("mitre").as_deref(), Some("T1496"));
    assert_eq!(l("container_id").as_deref(), Some("4f1c0e7d9a2b"));
    assert_eq!(l("container_name").as_deref(), Some("miner"));
    assert_eq!(
        l("image").as_deref(),
        Some("servethehome/monero_cpu_minergate:latest")
    );
    assert_eq!(l("k8s_ns").as_deref(), Some("prod"));
    assert_eq!(l("k8s_pod").as_deref(), Some("miner-0"));
    assert_eq!(l("host").as_deref(), Some("node-1"));
    assert!(l("tags").unwrap().contains("cryptomining"));
    assert!(
        a.annotations
            .get("output")
            .unwrap()
            .starts_with("Cryptominer container started")
    );
    assert!(!a.annotations.get("description").unwrap().ends_with('\n'));
    let evidence: model::Event = serde_json::from_value(a.evidence.clone().unwrap()).unwrap();
    assert_eq!(evidence, ev);
    assert_eq!(a.starts_at, ev.ts);
}
