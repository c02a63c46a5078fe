//! `vigil sensor`: runs the kernel sensor and prints its events (JSON lines with `--json`, the
//! format `vigil rules replay` reads), per-second statistics (`--stats`), or benchmarks it
//! (`--bench`).

use anyhow::Context;
use std::io::Write;
use std::time::Duration;

/// Backend choice on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BackendArg {
    /// eBPF when it loads, else the proc connector.
    Auto,
    /// eBPF only.
    Ebpf,
    /// Netlink proc connector and /proc scans only.
    Proc,
}

/// Arguments of `vigil sensor`.
#[derive(clap::Args)]
pub struct Args {
    /// Which backend to run.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// Print events as JSON lines (one `Event` per line).
    #[arg(long)]
    json: bool,
    /// Print statistics every second (to stderr when events are printed too).
    #[arg(long)]
    stats: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Do not follow Docker's events (container metadata is still looked up).
    #[arg(long)]
    no_docker_events: bool,
    /// Do not trace syscalls (file, network, credential, ptrace and memfd events): process
    /// lifecycle and Docker events only, at the lowest cost to the host.
    #[arg(long)]
    no_syscall_events: bool,
    /// Event types to build: a comma-separated list of `evt.type` names (`execve,openat`),
    /// `rules` (those the built-in rules can match, as `vigil up` asks for) or `all`. Default:
    /// `all`, and `rules` with `--bench`. Fork, exec and exit are always read to keep the
    /// process table.
    #[arg(long, value_name = "TYPES")]
    event_types: Option<String>,
    /// Run the benchmark: exec, connect and open storms without and with the sensor.
    #[arg(long, conflicts_with_all = ["json", "stats"])]
    bench: bool,
    /// Processes spawned by the benchmark's exec storm.
    #[arg(long, default_value_t = 5000, requires = "bench")]
    bench_execs: u32,
    /// Connections made by the benchmark's connect storm.
    #[arg(long, default_value_t = 20000, requires = "bench")]
    bench_connects: u32,
    /// Opens of a non-watched file made by the benchmark's open storm.
    #[arg(long, default_value_t = 500000, requires = "bench")]
    bench_opens: u32,
    /// Opens of `/etc/shadow`, which the built-in rules watch (every one an event), made by
    /// the benchmark's watched storm.
    #[arg(long, default_value_t = 200000, requires = "bench")]
    bench_watched: u32,
    /// Connects by one thread to a port nobody listens on, made by the benchmark's refused
    /// storm (what tracing adds to each connect syscall).
    #[arg(long, default_value_t = 60000, requires = "bench")]
    bench_refused: u32,
    /// Rounds per storm, each without and with the sensor (medians and a 95% interval of the
    /// median are printed).
    #[arg(long, default_value_t = 25, requires = "bench")]
    bench_rounds: u32,
    /// Internal: the benchmark's storm worker (`exec|connect|open|refused N THREADS`).
    #[arg(long, hide = true, num_args = 3, value_names = ["STORM", "N", "THREADS"])]
    bench_worker: Option<Vec<String>>,
}

fn backend(b: BackendArg) -> sensor::BackendChoice {
    match b {
        BackendArg::Auto => sensor::BackendChoice::Auto,
        BackendArg::Ebpf => sensor::BackendChoice::Ebpf,
        BackendArg::Proc => sensor::BackendChoice::Proc,
    }
}

/// One line for a person: time, type, process, container, what.
fn human(ev: &model::Event) -> String {
    let mut s = format!("{} {:<14}", ev.ts.format("%H:%M:%S%.6f"), ev.kind);
    if let Some(p) = &ev.process {
        s.push_str(&format!(
            " {}({}) ppid={} uid={}",
            p.name, p.pid, p.ppid, p.user.uid
        ));
        if ev.kind.starts_with("exec") {
            s.push_str(&format!(" exe={} args={:?}", p.exepath, p.args));
        }
    }
    if let Some(c) = &ev.container {
        s.push_str(&format!(
            " container={}({}) image={}",
            c.short_id(),
            c.name,
            c.image
        ));
    }
    if let Some(fd) = &ev.fd {
        s.push_str(&format!(" fd={}", fd.name()));
    }
    for k in [
        "flags", "name", "oldpath", "newpath", "uid", "gid", "request", "pid", "status",
    ] {
        if ev.fd.is_some() && k == "name" {
            continue;
        }
        if let Some(v) = ev.args.get(k) {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(r) = ev.res
        && r < 0
    {
        s.push_str(&format!(" res={r}"));
    }
    s
}

/// The event types `--event-types` asks for (`None`: all); `default` when it is not given.
fn event_types(arg: Option<&str>, default: &str) -> anyhow::Result<Option<Vec<String>>> {
    match arg.unwrap_or(default).trim() {
        "all" => Ok(None),
        "rules" => {
            let (rules, _) = detect::RuleSetBuilder::new()
                .builtin(true)
                .build()
                .context("loading the built-in rules")?;
            Ok(rules.event_types(model::EventSource::Syscall))
        }
        list => {
            let types: Vec<String> = list
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            anyhow::ensure!(
                !types.is_empty(),
                "--event-types: expected a list of event types, `rules` or `all`"
            );
            Ok(Some(types))
        }
    }
}

/// Runs `vigil sensor`.
pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    if let Some(w) = &args.bench_worker {
        let ns = sensor::bench::worker_main(w).map_err(anyhow::Error::msg)?;
        println!("{ns}");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if args.bench {
        let exe = std::env::current_exe().context("locating the vigil binary")?;
        let cfg = sensor::bench::BenchConfig {
            worker_cmd: vec![
                exe.to_string_lossy().into_owned(),
                "sensor".into(),
                "--bench-worker".into(),
            ],
            execs: args.bench_execs,
            connects: args.bench_connects,
            opens: args.bench_opens,
            watched_opens: args.bench_watched,
            refused: args.bench_refused,
            rounds: args.bench_rounds,
            syscall_events: !args.no_syscall_events,
            event_types: event_types(args.event_types.as_deref(), "rules")?,
            backend: match args.backend {
                BackendArg::Auto => sensor::BackendChoice::Ebpf,
                b => backend(b),
            },
            ..Default::default()
        };
        let report = sensor::bench::run(cfg).await?;
        println!("{report}");
        return Ok(std::process::ExitCode::SUCCESS);
    }

    let mut handle = sensor::Sensor::start(sensor::SensorConfig {
        backend: backend(args.backend),
        docker_events: !args.no_docker_events,
        syscall_events: !args.no_syscall_events,
        event_types: event_types(args.event_types.as_deref(), "all")?,
        ..Default::default()
    })
    .await
    .context("starting the sensor")?;
    tracing::info!(backend = %handle.backend(), "vigil sensor running");
    let mut rx = handle
        .take_events()
        .context("sensor event stream unavailable")?;
    let print_events = args.json || !args.stats;
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Made once, not per event: a storm passes through this loop tens of thousands of times a
    // second.
    let until = tokio::time::sleep_until(
        deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)),
    );
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(until, interrupted);
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                if print_events {
                    let line = if args.json {
                        serde_json::to_string(&ev)?
                    } else {
                        human(&ev)
                    };
                    if writeln!(out, "{line}").is_err() {
                        break; // stdout closed
                    }
                    if rx.is_empty() {
                        out.flush().ok();
                    }
                }
            }
            _ = tick.tick(), if args.stats => {
                let s = handle.stats();
                let line = format!(
                    "backend={} events={} events/s={:.0} ring_drops={} channel_drops={} lost={} decode_errors={}",
                    s.backend, s.events, s.events_per_sec, s.ring_drops, s.channel_drops, s.lost, s.decode_errors
                );
                if print_events {
                    eprintln!("{line}");
                } else {
                    writeln!(out, "{line}").ok();
                    out.flush().ok();
                }
            }
            _ = &mut until => break,
            _ = &mut interrupted => break,
        }
    }
    out.flush().ok();
    drop(out);
    let s = handle.stats();
    tracing::info!(
        events = s.events,
        ring_drops = s.ring_drops,
        channel_drops = s.channel_drops,
        lost = s.lost,
        "vigil sensor stopped"
    );
    handle.stop();
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::event_types;

    #[test]
    fn event_types_argument() {
        assert_eq!(event_types(None, "all").unwrap(), None);
        assert_eq!(event_types(Some("all"), "rules").unwrap(), None);
        let rules = event_types(None, "rules")
            .unwrap()
            .expect("an interest set");
        assert!(rules.iter().any(|t| t == "execve"), "{rules:?}");
        assert_eq!(
            event_types(Some(" execve, openat ,"), "all").unwrap(),
            Some(vec!["execve".to_string(), "openat".to_string()])
        );
        assert!(event_types(Some(" , "), "all").is_err());
    }
}
