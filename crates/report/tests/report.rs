//! Rendering the recorded cryptominer exercise in every format: snapshots of Markdown and JSON,
//! drafts and their markers, self-contained HTML, a valid PDF whose text `pdftotext` extracts,
//! organisation templates and input errors.
//!
//! Snapshots live in `tests/snapshots/`; after an intended change, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p vigil-report --test report` and review the diff.

use report::{Format, Options, ReportInput, SECTION_HEADINGS, Template, render};
use std::path::PathBuf;
use std::process::Command;

fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with UPDATE_SNAPSHOTS=1)",
            path.display()
        )
    });
    if expected != actual {
        let out = path.with_extension("new");
        std::fs::write(&out, actual).unwrap();
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the rendering (first difference at line {}); the new output is in {}",
            path.display(),
            first + 1,
            out.display()
        );
    }
}

fn render_str(input: &ReportInput, format: Format, opts: &Options) -> String {
    String::from_utf8(render(input, format, opts).unwrap()).unwrap()
}

#[test]
fn markdown_snapshot() {
    let md = render_str(
        &report::sample::cryptominer(),
        Format::Markdown,
        &Options::default(),
    );
    snapshot("cryptominer.md", &md);
}

#[test]
fn json_snapshot() {
    let json = render_str(
        &report::sample::cryptominer(),
        Format::Json,
        &Options::default(),
    );
    snapshot("cryptominer.json", &json);
}

#[test]
fn sections_in_order_with_the_drafting_in_place() {
    let input = report::sample::cryptominer();
    let md = render_str(&input, Format::Markdown, &Options::default());
    let mut at = 0;
    for h in SECTION_HEADINGS {
        let pos = md[at..]
            .find(&format!("\n## {h}\n"))
            .unwrap_or_else(|| panic!("heading {h:?} missing or out of order"));
        at += pos + 1;
    }
    assert!(md.starts_with("# INC-1: Cryptominer containers on docker-host-alpha\n"));
    assert!(md.contains(
        "On 2025-05-02 at 14:03 UTC Vigil detected 3 containers started from images \
         servethehome/monero_cpu_moneropool:latest, servethehome/monero_cpu_minergate:latest and \
         servethehome/universal_cryptonight:latest on host docker-host-alpha."
    ));
    assert!(
        md.contains("Response policy kill-cryptominers killed 3 containers and removed 3 images.")
    );
    assert!(md.contains("| Type | drill |"));
    assert!(md.contains("| Time to contain | 9 s |"));
    // Every timeline entry is there.
    for e in &input.timeline {
        assert!(md.contains(&e.summary.replace('|', "\\|")), "{}", e.summary);
    }
    for ev in &input.evidence {
        assert!(md.contains(&ev.sha256));
    }
}

#[test]
fn written_and_accepted_fields_are_not_drafts() {
    let mut input = report::sample::cryptominer();
    input.incident.narrative.impact = Some("Three hosts burned CPU for 11 seconds.".into());
    input
        .incident
        .narrative
        .accepted
        .insert("root_cause".into());
    let json: serde_json::Value =
        serde_json::from_slice(&render(&input, Format::Json, &Options::default()).unwrap())
            .unwrap();
    let sections = json["sections"].as_array().unwrap();
    let draft = |key: &str| {
        sections
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no section {key}"))["draft"]
            .as_bool()
            .unwrap()
    };
    assert!(!draft("impact"));
    assert!(!draft("root_cause"));
    assert!(draft("executive_summary"));
    assert!(draft("action_plan"));
    assert!(!draft("timeline"));
    assert_eq!(json["metrics"]["time_to_detect"], 2.0);
    assert_eq!(json["metrics"]["time_to_contain"], 9.0);
    assert!(json["metrics"]["time_to_resolve"].is_null());
    let impact = sections.iter().find(|s| s["key"] == "impact").unwrap();
    assert_eq!(impact["text"], "Three hosts burned CPU for 11 seconds.");
    let md = render_str(&input, Format::Markdown, &Options::default());
    let impact_md = &md[md.find("## Impact").unwrap()..md.find("## Detection").unwrap()];
    assert!(!impact_md.contains("DRAFT"), "{impact_md}");
    let summary_md = &md[md.find("## Executive summary").unwrap()..md.find("## What was").unwrap()];
    assert!(summary_md.contains("**DRAFT**"), "{summary_md}");

    // Everything written or accepted: the report is no longer a draft.
    let n = &mut input.incident.narrative;
    for f in model::Narrative::FIELDS {
        n.accepted.insert(f.to_string());
    }
    n.accepted.insert("action_plan".into());
    let json: serde_json::Value =
        serde_json::from_slice(&render(&input, Format::Json, &Options::default()).unwrap())
            .unwrap();
    assert_eq!(json["draft"], false);
}

#[test]
fn drafts_follow_the_record() {
    let mut input = report::sample::cryptominer();
    // One removal failed and a person stopped a container by hand.
    input.actions[4].status = model::ActionStatus::Failed;
    input.actions[4].error = Some("image is in use by container 9d1e".into());
    let mut manual = input.actions[0].clone();
    manual.id = 99;
    manual.kind = "stop".into();
    manual.actor = "bob".into();
    input.actions.push(manual);
    let json: serde_json::Value =
        serde_json::from_slice(&render(&input, Format::Json, &Options::default()).unwrap())
            .unwrap();
    let text = |key: &str| {
        json["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let summary = text("executive_summary");
    assert!(summary.contains("removed 2 images"), "{summary}");
    assert!(
        summary.contains("Responder bob stopped 1 container."),
        "{summary}"
    );
    assert!(
        summary.contains("Of 7 actions, 6 succeeded and 1 failed."),
        "{summary}"
    );
    let lessons = text("lessons_learned");
    assert!(
        lessons.contains(
            "remove_image on servethehome/monero_cpu_minergate:latest failed: image is in use"
        ),
        "{lessons}"
    );
    assert!(text("response").contains("6 automated by response policies, 1 manual"));
    let plan = &json["sections"].as_array().unwrap()[10];
    assert_eq!(plan["key"], "action_plan");
    let plan = plan.to_string();
    assert!(
        plan.contains(
            "Find out why remove_image on servethehome/monero_cpu_minergate:latest failed"
        ),
        "{plan}"
    );
}

#[test]
fn empty_record_still_renders() {
    let now = chrono::DateTime::from_timestamp(1_746_194_580, 0).unwrap();
    let mut inc = model::Incident::new("Exporter down", model::Severity::Warning, now, now);
    inc.id = 42;
    inc.assets.services.insert("cadvisor:8080".into());
    let input = ReportInput::new(inc);
    for f in Format::ALL {
        let out = render(&input, f, &Options::default()).unwrap();
        assert!(!out.is_empty(), "{f}");
    }
    let md = render_str(&input, Format::Markdown, &Options::default());
    assert!(
        md.contains("Vigil detected a problem with 1 service (cadvisor:8080)."),
        "{md}"
    );
    assert!(md.contains("No response action was recorded."));
    assert!(md.contains("| Time to resolve | not reached |"));
}

#[test]
fn html_is_one_self_contained_file() {
    let html = render_str(
        &report::sample::cryptominer(),
        Format::Html,
        &Options::default(),
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<style>") && html.contains("@media print"));
    let lower = html.to_ascii_lowercase();
    for banned in [
        "<link", "<script", "src=", "href=", "url(", "@import", "http://", "https://", "<img",
        "<iframe",
    ] {
        assert!(
            !lower.contains(banned),
            "HTML references something outside the file: {banned}"
        );
    }
    assert_eq!(html.matches("<svg").count(), 1, "one inline SVG chart");
    assert!(
        html.contains("<circle") && html.contains("<path"),
        "alerts and actions drawn"
    );
    for h in SECTION_HEADINGS {
        assert!(html.contains(&format!(">{h}")), "{h}");
    }
    assert!(html.contains("class=\"badge\">DRAFT</span>"));
    assert!(html.contains("servethehome/universal_cryptonight:latest"));
}

#[test]
fn html_escapes_what_people_write() {
    let mut input = report::sample::cryptominer();
    input.incident.title = "<b>owned</b> & more".into();
    input.incident.narrative.impact = Some("Some **bold** text <script>alert(1)</script>".into());
    let html = render_str(&input, Format::Html, &Options::default());
    assert!(html.contains("&lt;b&gt;owned&lt;&#x2f;b&gt; &amp; more"));
    assert!(!html.contains("<b>owned"));
    assert!(html.contains("<strong>bold</strong>"));
    assert!(!html.contains("<script>"));
}

fn check_pdf_structure(pdf: &[u8]) {
    assert!(pdf.starts_with(b"%PDF-1.7\n"));
    assert!(pdf.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(pdf);
    let sx = text.rfind("startxref\n").unwrap();
    let xref_at: usize = text[sx + 10..].lines().next().unwrap().parse().unwrap();
    assert_eq!(&pdf[xref_at..xref_at + 5], b"xref\n");
    let xref = String::from_utf8_lossy(&pdf[xref_at..]);
    let mut lines = xref.lines().skip(1);
    let count: usize = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    lines.next(); // free entry
    for id in 1..count {
        let off: usize = lines.next().unwrap()[..10].parse().unwrap();
        let head = format!("{id} 0 obj");
        assert_eq!(
            &pdf[off..off + head.len()],
            head.as_bytes(),
            "xref entry of object {id} points elsewhere"
        );
    }
}

fn pdftotext(pdf: &[u8], name: &str) -> Option<String> {
    if testkit::which("pdftotext").is_none() {
        testkit::skip("pdftotext (poppler-utils) is not installed");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("vigil-report-test-")
        .tempdir()
        .unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn pdf_is_valid_and_its_text_extracts() {
    let input = report::sample::cryptominer();
    let pdf = render(&input, Format::Pdf, &Options::default()).unwrap();
    check_pdf_structure(&pdf);
    let Some(text) = pdftotext(&pdf, "cryptominer.pdf") else {
        return;
    };
    assert!(text.contains("INC-1: Cryptominer containers on docker-host-alpha"));
    for h in SECTION_HEADINGS {
        assert!(
            text.contains(h),
            "heading {h:?} not in the PDF text:\n{text}"
        );
    }
    for img in report::sample::MINER_IMAGES {
        assert!(text.contains(img), "image {img} not in the PDF text");
    }
    for ev in &input.evidence {
        assert!(
            text.contains(&ev.sha256),
            "digest {} not in the PDF text",
            ev.sha256
        );
    }
    assert!(text.contains("DRAFT"));
    assert!(text.contains("Page 1 of"));
    assert!(text.contains("Time to detect"));
    // Characters the standard fonts lack get ASCII look-alikes.
    assert!(text.contains("Status open -> contained"), "{text}");
}

#[test]
fn long_timeline_breaks_pages_and_keeps_every_entry() {
    let input = report::sample::with_timeline(400);
    let pdf = render(&input, Format::Pdf, &Options::default()).unwrap();
    check_pdf_structure(&pdf);
    let Some(text) = pdftotext(&pdf, "long.pdf") else {
        return;
    };
    let pages = text.matches("\u{c}").count();
    assert!(pages > 5, "400 entries on only {pages} pages");
    // Header rows repeat on every timeline page; the last entry made it.
    assert!(text.matches("Source / actor").count() > 3);
    assert!(text.contains("entry 399"), "last timeline entry missing");
}

#[test]
fn organisation_template() {
    let input = report::sample::cryptominer();
    let source = "{{ report.title_block.id }} for ACME\n\
        {% for s in report.sections %}{{ s.heading }}{{ \" (draft)\" if s.draft else \"\" }}\n{% endfor %}\
        images: {{ incident.assets.images | join(', ') }}\n";
    let opts = Options {
        template: Some(Template {
            name: "acme.md.j2".into(),
            source: source.into(),
        }),
        ..Options::default()
    };
    let md = render_str(&input, Format::Markdown, &opts);
    assert!(
        md.starts_with("INC-1 for ACME\nExecutive summary (draft)\nWhat was affected\n"),
        "{md}"
    );
    assert!(md.contains("images: servethehome/monero_cpu_minergate:latest, "));

    // HTML templates escape automatically.
    let opts = Options {
        template: Some(Template {
            name: "acme.html.j2".into(),
            source: "<h1>{{ report.title_block.title }}</h1>".into(),
        }),
        ..Options::default()
    };
    let mut evil = input.clone();
    evil.incident.title = "<i>x</i>".into();
    assert_eq!(
        render_str(&evil, Format::Html, &opts),
        "<h1>&lt;i&gt;x&lt;&#x2f;i&gt;</h1>"
    );

    // Mistakes name the template and line.
    let bad = Options {
        template: Some(Template {
            name: "acme.md.j2".into(),
            source: "line one\n{{ report.nonexistent.field }}\n".into(),
        }),
        ..Options::default()
    };
    let err = render(&input, Format::Markdown, &bad)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("template acme.md.j2:2:"), "{err}");
    let syntax = Options {
        template: Some(Template {
            name: "acme.md.j2".into(),
            source: "ok\n{% for s in %}\n".into(),
        }),
        ..Options::default()
    };
    let err = render(&input, Format::Markdown, &syntax)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("template acme.md.j2:2:"), "{err}");
    assert!(matches!(
        render(&input, Format::Pdf, &bad),
        Err(report::ReportError::TemplateNotSupported(Format::Pdf))
    ));
}

#[test]
fn input_json_round_trips_and_errors_name_the_place() {
    let input = report::sample::cryptominer();
    let json = input.to_json();
    let back = ReportInput::from_json(json.as_bytes(), "input.json").unwrap();
    assert_eq!(back, input);
    let err = ReportInput::from_json(
        b"{\n  \"incident\": {\n    \"id\": \"x\"\n  }\n}",
        "in.json",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("in.json:3:"), "{err}");
    // Only the incident is required.
    let only = serde_json::json!({ "incident": input.incident });
    let parsed = ReportInput::from_json(only.to_string().as_bytes(), "x").unwrap();
    assert!(parsed.timeline.is_empty() && parsed.actions.is_empty());
}

#[test]
fn formats_parse() {
    assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!("HTML".parse::<Format>().unwrap(), Format::Html);
    assert_eq!("pdf".parse::<Format>().unwrap(), Format::Pdf);
    assert!(
        "docx"
            .parse::<Format>()
            .unwrap_err()
            .to_string()
            .contains("md, html, pdf or json")
    );
}

#[test]
fn output_is_reproducible() {
    let input = report::sample::cryptominer();
    for f in Format::ALL {
        assert_eq!(
            render(&input, f, &Options::default()).unwrap(),
            render(&input, f, &Options::default()).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn generation_time_is_printed_when_given() {
    let input = report::sample::cryptominer();
    let opts = Options {
        generated_at: chrono::DateTime::from_timestamp(1_746_200_000, 0),
        ..Options::default()
    };
    let md = render_str(&input, Format::Markdown, &opts);
    assert!(
        md.contains("| Generated | 2025-05-02 15:33:20 UTC |"),
        "{md}"
    );
    let html = render_str(&input, Format::Html, &opts);
    assert!(html.contains("2025-05-02 15:33:20 UTC"));
    let json: serde_json::Value =
        serde_json::from_slice(&render(&input, Format::Json, &opts).unwrap()).unwrap();
    assert_eq!(json["generated_at"], "2025-05-02T15:33:20Z");
    assert!(!render_str(&input, Format::Markdown, &Options::default()).contains("Generated"));
}

#[test]
fn drafts_are_available_on_their_own() {
    let mut input = report::sample::cryptominer();
    input.incident.narrative.impact = Some("written".into());
    let impact = report::draft_field(&input, "impact").unwrap();
    assert!(
        impact.starts_with("The incident touched 3 containers, 3 images and 1 host."),
        "{impact}"
    );
    assert!(report::draft_field(&input, "nope").is_none());
    for f in model::Narrative::FIELDS {
        assert!(!report::draft_field(&input, f).unwrap().is_empty(), "{f}");
    }
    let plan = report::draft_action_plan(&input);
    assert!(
        plan.iter()
            .any(|i| i.text.contains("servethehome/universal_cryptonight:latest"))
    );
    // Storing the draft as written text gives the same section, no longer a draft.
    let mut accepted = input.clone();
    accepted.incident.narrative.root_cause = report::draft_field(&input, "root_cause");
    let a = report::Report::build(&accepted);
    let b = report::Report::build(&input);
    assert_eq!(
        a.section("root_cause").unwrap().text,
        b.section("root_cause").unwrap().text
    );
    assert!(b.section("root_cause").unwrap().draft && !a.section("root_cause").unwrap().draft);
}
