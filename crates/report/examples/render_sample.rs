//! Writes the sample report in every format to a directory: `cargo run -p vigil-report --example render_sample -- DIR`.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let input = report::sample::cryptominer();
    for f in report::Format::ALL {
        let b = report::render(&input, f, &report::Options::default()).expect("render");
        std::fs::write(format!("{dir}/report.{}", f.as_str()), b).expect("write");
    }
}
