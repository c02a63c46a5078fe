//! Sensor benchmark (root):
//!
//! `cargo run --release -p vigil-sensor --example sensor_bench -- [--no-syscall-events]
//! [--drain-ms MS] [--reader-nice N] [--ring-kb KB] [--storm-threads N] [--refused N]
//! [--relative-opens N] [--watched-opens N] [--stream]
//! [--all-events] [--event-types LIST] [EXECS [CONNECTS [OPENS [ROUNDS]]]]`
//!
//! Prints events/s captured, drops, slowdown, sensor and BPF CPU and p99 latency for an exec, a
//! connect, an open and a refused-connect storm (`--refused`: that many connects by one thread
//! to a port nobody listens on, default 60000; what tracing adds to each connect syscall, to a
//! few nanoseconds; `--relative-opens`: that many reads of the open storm's file by a relative
//! path, default 0; `--watched-opens`: that many reads of `/etc/shadow`, which the built-in rules
//! watch, so every one is an event: the highest event rate this machine produces, default
//! 200000), without and with the sensor (medians of ROUNDS alternating
//! rounds, default 25, with a 95% confidence interval of the median slowdown). A count of 0
//! skips that storm. `--no-syscall-events` measures the sensor with process and Docker events
//! only; `--drain-ms` sets how often the reader drains the ring buffer at the latest (default
//! 4); `--reader-nice` the reader thread's nice value (default -5); `--ring-kb` the ring
//! buffer's size (default 16384); `--storm-threads` the
//! threads each storm runs on (default one per CPU; the connect storm runs that many
//! client/server pairs); `--stream` reads events through an `EventStream` as `vigil sensor`
//! does, instead of a consumer on the sensor's thread as `vigil up` does. Like `vigil up`, the
//! sensor builds only the event types its rules (the built-in pack) can match; `--all-events`
//! builds every type, as `vigil sensor` does; `--event-types execve,openat` builds the listed
//! ones (`evt.type` names). Also `vigil sensor --bench`.

/// The allocator the `vigil` binary uses, so the figures are those of `vigil` itself.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The event types the built-in rules can match: what `vigil up` asks its sensor for.
fn builtin_interest() -> Option<Vec<String>> {
    let (rules, _) = detect::RuleSetBuilder::new()
        .builtin(true)
        .build()
        .expect("the built-in rules are embedded");
    rules.event_types(model::EventSource::Syscall)
}

/// Removes `flag` from `args`; returns whether it was there.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    match args.iter().position(|a| a == flag) {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    }
}

/// Removes `flag` and its value from `args`; the value, if the flag was there.
fn take_value(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    let Some(i) = args.iter().position(|a| a == flag) else {
        return Ok(None);
    };
    if i + 1 >= args.len() {
        return Err(format!("{flag} wants a value"));
    }
    let v = args.remove(i + 1);
    args.remove(i);
    Ok(Some(v))
}

/// Like [`take_value`], for a whole number.
fn take_number<T: std::str::FromStr>(
    args: &mut Vec<String>,
    flag: &str,
) -> Result<Option<T>, String> {
    match take_value(args, flag)? {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{flag} wants a whole number, not `{v}`")),
    }
}

/// The benchmark's settings from the command line: flags, then the positional counts.
fn config(args: &mut Vec<String>) -> Result<sensor::bench::BenchConfig, String> {
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cfg = sensor::bench::BenchConfig {
        worker_cmd: vec![exe, "--worker".into()],
        syscall_events: !take_flag(args, "--no-syscall-events"),
        stream: take_flag(args, "--stream"),
        ..Default::default()
    };
    let all_events = take_flag(args, "--all-events");
    let listed = take_value(args, "--event-types")?
        .map(|list| list.split(',').map(str::to_string).collect::<Vec<_>>());
    cfg.event_types = if all_events {
        None
    } else {
        listed.or_else(builtin_interest)
    };
    if let Some(ms) = take_number(args, "--drain-ms")? {
        cfg.drain_interval = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = take_number(args, "--reader-nice")? {
        cfg.reader_nice = n;
    }
    if let Some(kb) = take_number::<u32>(args, "--ring-kb")? {
        cfg.ring_buffer_bytes = kb.saturating_mul(1024);
    }
    if let Some(n) = take_number(args, "--storm-threads")? {
        cfg.storm_threads = n;
    }
    if let Some(n) = take_number(args, "--relative-opens")? {
        cfg.relative_opens = n;
    }
    if let Some(n) = take_number(args, "--watched-opens")? {
        cfg.watched_opens = n;
    }
    if let Some(n) = take_number(args, "--refused")? {
        cfg.refused = n;
    }
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
    Ok(cfg)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(out) => {
            println!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The worker's elapsed nanoseconds (with `--worker`), else the benchmark's report.
fn run() -> Result<String, String> {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        return sensor::bench::worker_main(&args[2..])
            .map(|ns| ns.to_string())
            .map_err(|e| format!("worker: {e}"));
    }
    let cfg = config(&mut args)?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(sensor::bench::run(cfg))
        .map(|r| r.to_string())
        .map_err(|e| format!("bench: {e}"))
}
