//! Sensor benchmark:
//! `cargo run --release -p vigil-sensor --example bench [-- [--no-syscall-events] EXECS [CONNECTS
//! [OPENS [ROUNDS]]]]` (root; a count of 0 skips that storm; `--no-syscall-events` measures the
//! sensor with process and Docker events only). Prints events/s captured, drops, slowdown, sensor and
//! BPF CPU and p99 latency for an exec, a connect and an open storm, without and with the
//! sensor (medians of ROUNDS alternating rounds, default 5). Also `vigil sensor --bench`.

/// The allocator the `vigil` binary uses, so the figures are those of `vigil` itself.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let syscall_events = match args.iter().position(|a| a == "--no-syscall-events") {
        Some(i) => {
            args.remove(i);
            false
        }
        None => true,
    };
    if args.get(1).map(String::as_str) == Some("--worker") {
        return match sensor::bench::worker_main(&args[2..]) {
            Ok(ns) => {
                println!("{ns}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("worker: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cfg = sensor::bench::BenchConfig {
        worker_cmd: vec![exe, "--worker".into()],
        syscall_events,
        ..Default::default()
    };
    if let Some(n) = args.get(1).and_then(|s| s.parse().ok()) {
        cfg.execs = n;
    }
    if let Some(n) = args.get(2).and_then(|s| s.parse().ok()) {
        cfg.connects = n;
    }
    if let Some(n) = args.get(3).and_then(|s| s.parse().ok()) {
        cfg.opens = n;
    }
    if let Some(n) = args.get(4).and_then(|s| s.parse().ok()) {
        cfg.rounds = n;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(sensor::bench::run(cfg)) {
        Ok(r) => {
            println!("{r}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
