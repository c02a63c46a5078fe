//! Writes the sample incident (the cryptominer exercise) as a ReportInput JSON file and its
//! report in every format into a directory:
//! `cargo run -p vigil-report --example render_sample -- DIR`.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let input = report::sample::cryptominer();
    std::fs::write(format!("{dir}/report-input.json"), input.to_json()).expect("write input");
    for f in report::Format::ALL {
        let b = report::render(&input, f, &report::Options::default()).expect("render");
        std::fs::write(format!("{dir}/report.{}", f.as_str()), b).expect("write");
    }
    println!("wrote {dir}/report-input.json and {dir}/report.{{md,html,pdf,json}}");
}
