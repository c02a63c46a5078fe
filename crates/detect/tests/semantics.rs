//! Falco loader semantics: append/override order, exceptions, nested lists, loops, malformed
//! files, unknown fields, matching every rule.

use detect::{LoadReport, RuleSet, RuleSetBuilder};
use model::{ContainerInfo, Event, EventSource, FdInfo, ProcessInfo};

fn load(files: &[&str]) -> (RuleSet, LoadReport) {
    let mut b = RuleSetBuilder::new();
    for (i, f) in files.iter().enumerate() {
        b = b.add_source(format!("f{i}.yaml"), *f);
    }
    b.build().unwrap()
}

fn exec(name: &str, args: &[&str]) -> Event {
    Event {
        kind: "execve".into(),
        process: Some(
            ProcessInfo {
                pid: 42,
                name: name.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    }
}

fn hits(rules: &RuleSet, ev: &Event) -> Vec<String> {
    let mut v = Vec::new();
    rules.matches(ev, |r| v.push(r.name.clone()));
    v
}

fn rule(name: &str, cond: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: {cond}\n  output: \"{name} %proc.name\"\n  priority: WARNING\n"
    )
}

const BASE: &str = "
- list: shells
  items: [sh, bash]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: Shell
  desc: a shell
  condition: spawned and proc.name in (shells)
  output: shell %proc.name
  priority: WARNING
  tags: [shell]
";

#[test]
fn override_append_and_replace_across_files() {
    let f1 = "
- list: shells
  items: [zsh]
  override:
    items: append
- rule: Shell
  condition: and not proc.args contains safe
  override:
    condition: append
- rule: Shell
  priority: CRITICAL
  tags: [other]
  override:
    priority: replace
    tags: append
";
    let (rules, report) = load(&[BASE, f1]);
    assert!(!report.has_errors(), "{report}");
    assert_eq!(hits(&rules, &exec("zsh", &[])), vec!["Shell"]);
    assert!(hits(&rules, &exec("bash", &["safe"])).is_empty());
    let r = rules.rule("Shell").unwrap();
    assert_eq!(r.priority, detect::Priority::Critical);
    assert_eq!(r.tags, vec!["other".to_string(), "shell".to_string()]);
    // Order matters: the same override before the definition is an error.
    let (_, report) = load(&[f1, BASE]);
    assert!(report.has_errors());
    assert!(
        report
            .errors()
            .any(|e| e.message.contains("no list by that name")),
        "{report}"
    );
}

#[test]
fn override_keys_are_validated() {
    let bad = [
        // a key cannot be appended to
        "- rule: Shell\n  priority: ERROR\n  override:\n    priority: append\n",
        // override and append together
        "- rule: Shell\n  condition: and 1\n  append: true\n  override:\n    condition: append\n",
        // a defined key without an override entry
        "- rule: Shell\n  condition: and proc.pid > 1\n  desc: x\n  override:\n    condition: append\n",
        // override of an undefined key
        "- rule: Shell\n  override:\n    desc: replace\n",
        // unknown operation
        "- rule: Shell\n  desc: x\n  override:\n    desc: merge\n",
        // no such rule
        "- rule: Nope\n  desc: x\n  override:\n    desc: replace\n",
    ];
    for b in bad {
        let (rules, report) = load(&[BASE, b]);
        assert!(report.has_errors(), "should fail: {b}");
        // The good definitions still load.
        assert_eq!(hits(&rules, &exec("sh", &[])), vec!["Shell"], "{b}");
        let e = report.errors().next().unwrap();
        let loc = e.location.as_ref().expect("errors carry a location");
        assert_eq!(loc.file, "f1.yaml");
    }
}

#[test]
fn legacy_append_and_redefinition() {
    let f1 = "
- list: shells
  items: [fish]
  append: true
- macro: spawned
  condition: and proc.pid > 10
  append: true
- rule: Shell
  condition: and proc.name != bash
  append: true
";
    let (rules, report) = load(&[BASE, f1]);
    assert!(!report.has_errors(), "{report}");
    assert!(report.warnings().all(|w| w.code == "LOAD_DEPRECATED_ITEM"));
    assert_eq!(hits(&rules, &exec("fish", &[])), vec!["Shell"]);
    assert!(hits(&rules, &exec("bash", &[])).is_empty());
    // Redefinition replaces the whole list.
    let f2 = "- list: shells\n  items: [ksh]\n";
    let (rules, _) = load(&[BASE, f2]);
    assert!(hits(&rules, &exec("sh", &[])).is_empty());
    assert_eq!(hits(&rules, &exec("ksh", &[])), vec!["Shell"]);
}

#[test]
fn enabling_and_disabling() {
    let off = "- rule: Shell\n  enabled: false\n  override:\n    enabled: replace\n";
    let (rules, report) = load(&[BASE, off]);
    assert!(!report.has_errors(), "{report}");
    assert!(hits(&rules, &exec("sh", &[])).is_empty());
    assert_eq!(report.rules_enabled, 0);
    // Deprecated enabled-only entry turns it back on.
    let on = "- rule: Shell\n  enabled: true\n";
    let (rules, report) = load(&[BASE, off, on]);
    assert!(!report.has_errors(), "{report}");
    assert!(report.warnings().any(|w| w.code == "LOAD_DEPRECATED_ITEM"));
    assert_eq!(hits(&rules, &exec("sh", &[])), vec!["Shell"]);
    // enabled-only for an unknown rule is an error
    let (_, report) = load(&[BASE, "- rule: Nope\n  enabled: false\n"]);
    assert!(
        report
            .errors()
            .any(|e| e.message.contains("no rule by that name"))
    );
}

#[test]
fn every_matching_rule_is_reported_in_order() {
    let f = format!(
        "{}{}{}",
        rule("A", "evt.type = execve and proc.name = sh"),
        rule("B", "proc.name startswith s and evt.type in (execve)"),
        rule("C", "evt.type = open")
    );
    let (rules, report) = load(&[&f]);
    assert!(!report.has_errors(), "{report}");
    assert_eq!(hits(&rules, &exec("sh", &[])), vec!["A", "B"]);
}

#[test]
fn exceptions() {
    let f = "
- list: trusted
  items: [good1, good2]
- rule: Shell
  desc: d
  condition: evt.type = execve and proc.name in (sh, bash)
  output: o
  priority: INFO
  exceptions:
    - name: by_parent_and_args
      fields: [proc.pname, proc.args]
      comps: [in, contains]
      values:
        - [trusted, allowed]
        - [[cron, anacron], nightly]
    - name: by_cmdline
      fields: proc.cmdline
      values: [\"sh -c safe thing\"]
";
    let mut ev = exec("sh", &["run", "allowed"]);
    let set_parent = |ev: &mut Event, p: &str| {
        std::sync::Arc::make_mut(ev.process.as_mut().unwrap()).ancestors = vec![
            model::Ancestor {
                pid: 1,
                name: p.into(),
                ..Default::default()
            }
            .into(),
        ];
    };
    let (rules, report) = load(&[f]);
    assert!(!report.has_errors(), "{report}");
    set_parent(&mut ev, "good2");
    assert!(
        hits(&rules, &ev).is_empty(),
        "list name in exception values"
    );
    set_parent(&mut ev, "cron");
    assert_eq!(
        hits(&rules, &ev),
        vec!["Shell"],
        "args do not contain nightly"
    );
    std::sync::Arc::make_mut(ev.process.as_mut().unwrap()).args = vec!["nightly".into()];
    assert!(hits(&rules, &ev).is_empty());
    assert!(hits(&rules, &exec("sh", &["-c", "safe", "thing"])).is_empty());
    assert_eq!(hits(&rules, &exec("sh", &["-c", "other"])), vec!["Shell"]);
    // Appending values to an exception in a later file.
    let f2 = "
- rule: Shell
  exceptions:
    - name: by_cmdline
      values: [\"sh -c other\"]
  override:
    exceptions: append
";
    let (rules, report) = load(&[f, f2]);
    assert!(!report.has_errors(), "{report}");
    assert!(hits(&rules, &exec("sh", &["-c", "other"])).is_empty());
    // Malformed exceptions.
    for bad in [
        "    - name: x\n      fields: [proc.name, proc.pid]\n      comps: [=]\n      values: [[a, 1]]\n",
        "    - name: x\n      fields: proc.name\n      comps: \"=\"\n      values: [a]\n",
        "    - name: x\n      fields: [proc.name]\n      comps: [~]\n      values: [[a]]\n",
        "    - name: x\n      fields: [proc.name]\n      values: [[a, b]]\n",
    ] {
        let f = format!(
            "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: INFO\n  exceptions:\n{bad}"
        );
        let (rules, report) = load(&[&f]);
        assert!(report.has_errors(), "should fail: {bad}");
        assert!(rules.is_empty());
    }
}

#[test]
fn nested_lists_and_visibility() {
    let f = "
- list: a
  items: [x1, x2]
- list: b
  items: [a, y]
- list: c
  items: [b, z, later]
- list: later
  items: [w]
";
    let f = format!("{f}{}", rule("R", "evt.type = execve and proc.name in (c)"));
    let (rules, report) = load(&[&f]);
    assert!(!report.has_errors(), "{report}");
    for n in ["x1", "x2", "y", "z"] {
        assert_eq!(hits(&rules, &exec(n, &[])), vec!["R"], "{n}");
    }
    // `later` is defined after `c`, so inside `c` it is the literal string "later".
    assert_eq!(hits(&rules, &exec("later", &[])), vec!["R"]);
    assert!(hits(&rules, &exec("w", &[])).is_empty());
}

#[test]
fn list_and_macro_loops_are_rejected() {
    let lists = "
- list: l1
  items: [a]
- list: l2
  items: [l1, b]
- list: l1
  items: [l2]
  override:
    items: append
";
    let (_, report) = load(&[lists]);
    assert!(
        report.errors().any(|e| e.message.contains("loop")),
        "{report}"
    );
    let macros = "
- macro: m1
  condition: proc.name = a
- macro: m2
  condition: m1 or proc.name = b
- macro: m1
  condition: or m2
  override:
    condition: append
";
    let f = format!("{macros}{}", rule("R", "evt.type = execve and m2"));
    let (rules, report) = load(&[&f]);
    let e = report
        .errors()
        .find(|e| e.message.contains("loop"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(e.location.is_some());
    assert!(
        rules.rule("R").is_none(),
        "the rule using the loop is left out"
    );
    // A macro referencing itself is not visible to itself: undefined.
    let (_, report) = load(&["- macro: m\n  condition: m and proc.pid > 1\n"]);
    assert!(
        report
            .errors()
            .any(|e| e.message.contains("Undefined macro 'm'"))
    );
    // A macro may not use a macro defined after it, a rule may.
    let f = format!(
        "- macro: early\n  condition: late\n- macro: late\n  condition: proc.name = x\n{}",
        rule("R", "evt.type = execve and late")
    );
    let (rules, report) = load(&[&f]);
    assert!(
        report
            .errors()
            .any(|e| e.message.contains("Undefined macro 'late'"))
    );
    assert_eq!(hits(&rules, &exec("x", &[])), vec!["R"]);
}

#[test]
fn malformed_files_name_line_and_column() {
    // YAML syntax error.
    let (_, report) = load(&["- rule: x\n  condition: [oops\n"]);
    let e = report.errors().next().unwrap();
    assert_eq!(e.code, "LOAD_ERR_YAML_PARSE");
    assert!(e.location.as_ref().unwrap().line >= 2, "{e}");
    // Not a list.
    let (_, report) = load(&["rule: x\n"]);
    assert!(
        report.errors().any(|e| e.message.contains("array")),
        "{report}"
    );
    // Condition syntax error: column of the offending token.
    let good = rule("Good", "evt.type = execve");
    let src = format!(
        "{good}- rule: Bad\n  desc: d\n  condition: evt.type = execve and and\n  output: o\n  priority: INFO\n"
    );
    let (rules, report) = load(&[&src]);
    let e = report.errors().next().unwrap();
    let loc = e.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (8, 36), "{e}");
    assert!(e.snippet.as_deref().unwrap().contains("and and"));
    assert!(e.to_string().contains("f0.yaml:8:36"), "{e}");
    assert_eq!(
        hits(&rules, &exec("x", &[])),
        vec!["Good"],
        "good items still load"
    );
    // Missing keys, bad priority, wrong types.
    for (bad, needle) in [
        (
            "- rule: R\n  condition: evt.type = execve\n  output: o\n  priority: INFO\n",
            "desc",
        ),
        (
            "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: LOUD\n",
            "priority",
        ),
        (
            "- rule: R\n  desc: d\n  condition: [a]\n  output: o\n  priority: INFO\n",
            "scalar",
        ),
        ("- list: l\n  items: x\n", "sequence"),
        ("- macro: 1bad\n  condition: a\n", "invalid"),
        ("- just a string\n", "associative array"),
        ("- required_engine_version: 99.0.0\n", "engine version"),
        (
            "- rule: R\n  desc: d\n  condition: proc.nosuchfield = 1\n  output: o\n  priority: INFO\n",
            "not a known field",
        ),
        (
            "- rule: R\n  desc: d\n  condition: proc.pid = abc\n  output: o\n  priority: INFO\n",
            "not a number",
        ),
        (
            "- rule: R\n  desc: d\n  condition: proc.name regex \"(\"\n  output: o\n  priority: INFO\n",
            "regex",
        ),
        (
            "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: \"%proc.nosuch\"\n  priority: INFO\n",
            "not a known field",
        ),
    ] {
        let (_, report) = load(&[bad]);
        let e = report
            .errors()
            .next()
            .unwrap_or_else(|| panic!("no error for {bad}"));
        assert!(e.to_string().contains(needle), "{bad}: {e}");
        assert!(e.location.is_some(), "{e}");
    }
}

#[test]
fn unknown_and_unsupported_fields() {
    // Unsupported Falco field: warning naming rule and field, rule left out, counted.
    let f = rule(
        "Caps",
        "evt.type = execve and thread.cap_permitted contains CAP_SYS_ADMIN",
    );
    let (rules, report) = load(&[&f]);
    assert!(!report.has_errors());
    let w = report.warnings().next().unwrap();
    assert!(w.to_string().contains("Caps") && w.message.contains("thread.cap_permitted"));
    assert!(rules.is_empty());
    assert_eq!(report.left_out_for_fields(), 1);
    assert!(report.summary().contains("1 for unsupported fields"));
    // skip-if-unknown-filter: silently left out (still counted).
    let f2 = format!("{f}  skip-if-unknown-filter: true\n");
    let (_, report) = load(&[&f2]);
    assert!(report.diagnostics.is_empty(), "{report}");
    assert_eq!(report.left_out.len(), 1);
    // A name that is not a Falco field: error, or warning with skip-if-unknown-filter.
    let f3 = rule("Typo", "evt.type = execve and proc.nmae = x");
    let (_, report) = load(&[&f3]);
    assert!(report.has_errors());
    let (_, report) = load(&[&format!("{f3}  skip-if-unknown-filter: true\n")]);
    assert!(!report.has_errors());
    assert_eq!(report.warnings().count(), 1);
    // Unsupported field in the output only: rule kept, field shown as <NA>.
    let f4 = "- rule: Out\n  desc: d\n  condition: evt.type = execve\n  output: caps=%thread.cap_effective name=%proc.name\n  priority: INFO\n";
    let (rules, report) = load(&[f4]);
    assert!(!report.has_errors());
    let d = rules.detect(&exec("sh", &[]));
    assert_eq!(d[0].output, "caps=<NA> name=sh");
}

#[test]
fn unknown_sources_are_skipped_and_docker_rules_match() {
    let f = "
- rule: Cloud
  desc: d
  condition: ct.name = x
  output: o
  priority: INFO
  source: aws_cloudtrail
- rule: Started
  desc: d
  condition: evt.type = container_start and container.image.repository = busybox and evt.arg.name = c1
  output: started %container.name (%container.id) image=%container.image.repository by %evt.arg.name
  priority: NOTICE
  source: docker
";
    let (rules, report) = load(&[f]);
    assert!(!report.has_errors(), "{report}");
    assert!(report.warnings().any(|w| w.code == "LOAD_UNKNOWN_SOURCE"));
    let ev = Event {
        source: EventSource::Docker,
        kind: "container_start".into(),
        args: [("name".into(), "c1".to_string())].into(),
        container: Some(
            ContainerInfo {
                id: "0123456789abcdef0123".into(),
                name: "c1".into(),
                image: "busybox".into(),
                image_repository: "busybox".into(),
                ..Default::default()
            }
            .into(),
        ),
        ..Default::default()
    };
    let d = rules.detect(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].output, "started c1 (0123456789ab) image=busybox by c1");
    // A syscall event of the same type does not match a docker rule.
    let mut sys = ev.clone();
    sys.source = EventSource::Syscall;
    assert!(rules.detect(&sys).is_empty());
}

#[test]
fn operators_and_transformers() {
    let ev = Event {
        kind: "connect".into(),
        res: Some(0),
        process: Some(
            ProcessInfo {
                name: "Curl".into(),
                exepath: "/usr/bin/curl".into(),
                args: vec!["aGVsbG8=".into()],
                ancestors: vec![
                    model::Ancestor {
                        pid: 1,
                        name: "Curl".into(),
                        ..Default::default()
                    }
                    .into(),
                ],
                ..Default::default()
            }
            .into(),
        ),
        fd: Some(FdInfo {
            typechar: '4',
            cip: Some("10.1.2.3".parse().unwrap()),
            cport: Some(5000),
            sip: Some("192.168.1.9".parse().unwrap()),
            sport: Some(443),
            l4proto: "tcp".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let yes = [
        "proc.name icontains CURL",
        "proc.name iglob c*L",
        "proc.exepath glob /usr/*/curl",
        "proc.exepath pmatch (/usr/bin)",
        "proc.exepath regex '/usr/bin/c[a-z]+'",
        "proc.exepath endswith curl and proc.exepath startswith /usr",
        "fd.sport in (80, 443) and fd.sport >= 443 and fd.sport < 444 and fd.sport = 0x1bb",
        "fd.snet in (\"192.168.0.0/16\") and fd.net = \"10.0.0.0/8\" and fd.sip = 192.168.1.9",
        "tolower(proc.name) = curl and toupper(proc.name) = CURL",
        "basename(proc.exepath) = curl and len(proc.name) = 4",
        "b64(proc.args) = hello",
        "proc.name = val(proc.pname)",
        "proc.name in (a, Curl) and proc.name intersects (Curl)",
        "fd.name bcontains 3130 and fd.name bstartswith 3130",
        "fd.name exists and not proc.cwd exists",
        "proc.aname in (Curl) and proc.aname[1] = Curl",
        "not (proc.name = a or proc.name = b) and evt.res = SUCCESS and evt.failed = false",
        "fd.lport = 5000 and fd.rport = 443 and fd.lip = 10.1.2.3 and fd.rip = 192.168.1.9",
        "proc.name != curl and proc.name > Cu and proc.name <= Curl",
        "evt.num > 0 and fd.num >= 0",
    ];
    for c in yes {
        let (rules, report) = load(&[&rule("R", &format!("evt.type = connect and {c}"))]);
        assert!(!report.has_errors(), "{c}: {report}");
        assert_eq!(hits(&rules, &ev), vec!["R"], "{c}");
    }
    let no = [
        "proc.name contains URL",
        "fd.sport in (80)",
        "fd.snet in (\"10.0.0.0/8\")",
        "proc.exepath pmatch (/usr/bi)",
        "proc.name = val(proc.exepath)",
        "user.name = root",
        "user.name != root",
    ];
    for c in no {
        let (rules, report) = load(&[&rule("R", &format!("evt.type = connect and {c}"))]);
        assert!(!report.has_errors(), "{c}: {report}");
        assert!(hits(&rules, &ev).is_empty(), "{c}");
    }
}
