//! Renders an incident with 10,000 timeline entries (the cryptominer exercise plus synthetic
//! entries) as Markdown, HTML, PDF and JSON and prints how long each took.
//!
//! `cargo run --release -p vigil-report --example report_bench [-- ENTRIES [DIR]]` (with DIR, the
//! reports are also written there as `bench.<ext>`).

use report::{Format, Options, render};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = std::env::args().nth(2);
    let input = report::sample::with_timeline(n);
    let opts = Options::default();
    println!(
        "report of an incident with {} timeline entries",
        input.timeline.len()
    );
    for format in Format::ALL {
        // One warm-up, then the best of three.
        let _ = render(&input, format, &opts);
        let mut best = f64::MAX;
        let mut size = 0;
        for _ in 0..3 {
            let start = Instant::now();
            match render(&input, format, &opts) {
                Ok(bytes) => size = bytes.len(),
                Err(e) => {
                    eprintln!("{format}: {e}");
                    std::process::exit(1);
                }
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        if let Some(dir) = &dir
            && let Ok(bytes) = render(&input, format, &opts)
        {
            let path = format!("{dir}/bench.{}", format.as_str());
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("{path}: {e}");
            }
        }
        println!(
            "{:<5} {:>9.1} ms  {:>10} bytes",
            format.as_str(),
            best * 1000.0,
            size
        );
    }
}
