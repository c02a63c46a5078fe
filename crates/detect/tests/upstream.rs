//! The upstream Falco rule files load with zero errors.

use std::path::PathBuf;

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/falco")
}

const FILES: [&str; 3] = [
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
];

#[test]
fn upstream_files_load_without_errors() {
    let dir = compat_dir();
    if !dir.join(FILES[0]).exists() {
        eprintln!("SKIP: {} absent", dir.display());
        return;
    }
    for f in FILES {
        let (rules, report) = detect::RuleSetBuilder::new()
            .add_file(dir.join(f))
            .build()
            .unwrap();
        println!("{f}: {}", report.summary());
        for d in &report.diagnostics {
            println!("{d}");
        }
        assert!(!report.has_errors(), "{f}: {report}");
        for w in report.warnings() {
            assert!(
                matches!(w.code, "LOAD_UNKNOWN_FILTER"),
                "{f}: unexpected warning {w}"
            );
        }
        assert!(rules.len() > 10, "{f}: only {} rules", rules.len());
    }
}
