//! `vigil rules`: check Falco rules files, run rule test suites, replay recorded events through
//! the rules, and benchmark the matcher.

use anyhow::Context;
use detect::suite::{Suite, parse_jsonl};
use detect::{LoadReport, RuleSet, RuleSetBuilder};
use model::{Ancestor, ContainerInfo, Event, EventSource, FdInfo, ProcessInfo, UserInfo};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Output format of `vigil rules replay`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Falco's text line: `time: Priority output`.
    Text,
    /// Falco's JSON alert, one per line.
    Json,
    /// Vigil alerts (Alertmanager model), one JSON object per line.
    Alert,
}

/// Subcommands of `vigil rules`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Load rules files (after the built-in pack) and report what loaded, what was left out and
    /// why; exits non-zero on any error.
    Check {
        /// Rules files, applied in order.
        files: Vec<PathBuf>,
        /// Do not load the built-in rule pack first.
        #[arg(long)]
        no_builtin: bool,
        /// Also print warnings (they are always counted in the summary).
        #[arg(long, short)]
        verbose: bool,
    },
    /// Run rule test suites: events in, expected detections out; exits non-zero on failure.
    Test {
        /// Suite files (YAML; see the `detect::suite` docs).
        suites: Vec<PathBuf>,
        /// Extra rules files, loaded after the built-in pack and the suite's own `rules`.
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
    },
    /// Replay recorded events (JSON lines of `model::Event`, as `vigil sensor --json` writes
    /// them; `-` for stdin) through the rules and print every detection.
    Replay {
        /// Events file.
        events: PathBuf,
        /// Rules files, loaded after the built-in pack.
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Do not load the built-in rule pack.
        #[arg(long)]
        no_builtin: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Measure matching speed on one thread: the upstream Falco rule files (when present) plus
    /// the built-in pack, against a generated mix of exec/open/connect/container events.
    Bench {
        /// Directory with Falco's rule files (`falco_rules.yaml`, …); default: the first of
        /// `../shared/compat/falco` and `/work/shared/compat/falco` that exists.
        #[arg(long, value_name = "DIR")]
        falco_dir: Option<PathBuf>,
        /// Extra rules files.
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Number of events to match.
        #[arg(long, default_value_t = 5_000_000)]
        events: usize,
        /// Also print the rules that cost the most time.
        #[arg(long)]
        profile: bool,
    },
}

/// Runs `vigil rules`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check {
            files,
            no_builtin,
            verbose,
        } => check(&files, !no_builtin, verbose),
        Command::Test { suites, rules } => test(&suites, &rules),
        Command::Replay {
            events,
            rules,
            no_builtin,
            format,
        } => replay(&events, &rules, !no_builtin, format),
        Command::Bench {
            falco_dir,
            rules,
            events,
            profile,
        } => bench(falco_dir, &rules, events, profile),
    }
}

fn load(builtin: bool, files: &[PathBuf]) -> anyhow::Result<(RuleSet, LoadReport)> {
    let mut b = RuleSetBuilder::new().builtin(builtin);
    for f in files {
        b = b.add_file(f);
    }
    Ok(b.build()?)
}

/// Prints errors (and warnings when asked) to stderr; returns whether there were errors.
fn print_report(report: &LoadReport, warnings: bool) -> bool {
    let mut err = std::io::stderr().lock();
    for d in &report.diagnostics {
        if d.level == detect::Level::Error || warnings {
            let _ = writeln!(err, "{d}");
        }
    }
    report.has_errors()
}

fn check(files: &[PathBuf], builtin: bool, verbose: bool) -> anyhow::Result<ExitCode> {
    if files.is_empty() && !builtin {
        anyhow::bail!("nothing to check: give rules files or drop --no-builtin");
    }
    let (rules, report) = load(builtin, files)?;
    let errors = print_report(&report, verbose);
    let mut out = std::io::stdout().lock();
    writeln!(out, "sources: {}", report.sources.join(", "))?;
    writeln!(
        out,
        "rules: {} loaded, {} enabled; macros: {}; lists: {}",
        report.rules, report.rules_enabled, report.macros, report.lists
    )?;
    if !report.left_out.is_empty() {
        writeln!(out, "rules left out: {}", report.left_out.len())?;
        for l in &report.left_out {
            writeln!(out, "  - {}: {}", l.rule, l.reason)?;
        }
    }
    writeln!(
        out,
        "{} errors, {} warnings{}",
        report.errors().count(),
        report.warnings().count(),
        if !verbose && report.warnings().next().is_some() {
            " (-v to show warnings)"
        } else {
            ""
        }
    )?;
    let _ = rules;
    Ok(if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn test(suites: &[PathBuf], extra: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if suites.is_empty() {
        anyhow::bail!("give at least one suite file");
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for path in suites {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read suite {}", path.display()))?;
        let name = path.display().to_string();
        let mut suite = Suite::parse(&name, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut files: Vec<PathBuf> = suite.rules.iter().map(|r| resolve(base, r)).collect();
        files.extend(extra.iter().cloned());
        let (rules, report) = load(suite.builtin, &files)?;
        if print_report(&report, false) {
            writeln!(out, "{name}: rules have errors")?;
            failed += suite.cases.len().max(1);
            continue;
        }
        for case in &mut suite.cases {
            if let Some(f) = &case.events_file {
                let p = resolve(base, f);
                let t = std::fs::read_to_string(&p).with_context(|| {
                    format!("case '{}': cannot read {}", case.name, p.display())
                })?;
                case.events
                    .extend(parse_jsonl(&p.display().to_string(), &t)?);
            }
            let r = case.run(&rules);
            if r.passed() {
                passed += 1;
                writeln!(out, "PASS {name}:{} {}", case.line, r.name)?;
            } else {
                failed += 1;
                writeln!(out, "FAIL {name}:{} {}", case.line, r.name)?;
                for f in &r.failures {
                    writeln!(out, "     - {f}")?;
                }
                for d in &r.detections {
                    writeln!(out, "     detected: {}: {}", d.rule, d.output)?;
                }
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn replay(
    events: &Path,
    rules_files: &[PathBuf],
    builtin: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (rules, report) = load(builtin, rules_files)?;
    if print_report(&report, false) {
        eprintln!("{}", report.summary());
        return Ok(ExitCode::FAILURE);
    }
    let reader: Box<dyn BufRead> = if events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(events)
                .with_context(|| format!("cannot open {}", events.display()))?,
        ))
    };
    let name = events.display().to_string();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut n_events, mut n_det, mut bad) = (0usize, 0usize, 0usize);
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: read error"))?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Event = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{name}:{}:{}: invalid event: {e}", i + 1, e.column());
                bad += 1;
                continue;
            }
        };
        n_events += 1;
        for d in rules.detect(&ev) {
            n_det += 1;
            match format {
                Format::Text => writeln!(out, "{}", d.falco_line())?,
                Format::Json => writeln!(out, "{}", d.to_falco_json())?,
                Format::Alert => writeln!(out, "{}", serde_json::to_string(&d.to_alert(&ev))?)?,
            }
        }
    }
    out.flush()?;
    eprintln!(
        "{n_events} events, {n_det} detections, {bad} invalid lines ({} rules enabled)",
        rules.enabled_len()
    );
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn falco_files(dir: Option<PathBuf>) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = match dir {
        Some(d) => vec![d],
        None => vec![
            PathBuf::from("../shared/compat/falco"),
            PathBuf::from("/work/shared/compat/falco"),
        ],
    };
    let Some(dir) = dirs.into_iter().find(|d| d.is_dir()) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    // Falco's usual order: stable, incubating, sandbox, then anything else.
    let rank = |p: &PathBuf| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match n {
            "falco_rules.yaml" => 0,
            "falco-incubating_rules.yaml" => 1,
            "falco-sandbox_rules.yaml" => 2,
            _ => 3,
        }
    };
    files.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    files
}

/// CPU time of the current thread in ns (`/proc/thread-self/schedstat`), where available.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

fn container(r: &mut Rng) -> Option<ContainerInfo> {
    const IMAGES: &[(&str, &str, &str)] = &[
        ("nginx:1.25", "nginx", "web"),
        ("postgres:15", "postgres", "db"),
        ("redis:7", "redis", "cache"),
        (
            "gcr.io/cadvisor/cadvisor:v0.47.0",
            "gcr.io/cadvisor/cadvisor",
            "cadvisor",
        ),
        (
            "prom/node-exporter:v1.7.0",
            "prom/node-exporter",
            "node-exporter",
        ),
        ("python:3.12-slim", "python", "api"),
        (
            "servethehome/monero_cpu_minergate:latest",
            "servethehome/monero_cpu_minergate",
            "miner",
        ),
    ];
    if r.below(10) < 3 {
        return None; // host
    }
    // Mostly ordinary workloads; the miner image rarely.
    let i = if r.below(200) == 0 {
        IMAGES.len() - 1
    } else {
        r.below(IMAGES.len() - 1)
    };
    let (image, repo, name) = IMAGES[i];
    Some(ContainerInfo {
        id: format!("{:016x}{:048x}", r.next(), i),
        name: name.into(),
        image: image.into(),
        image_repository: repo.into(),
        image_tag: image.rsplit(':').next().unwrap_or("latest").into(),
        privileged: r.below(50) == 0,
        labels: [(
            "io.kubernetes.pod.namespace".to_string(),
            "default".to_string(),
        )]
        .into(),
        k8s_ns: if r.below(2) == 0 {
            "default".into()
        } else {
            String::new()
        },
        k8s_pod: if r.below(2) == 0 {
            format!("{name}-7d9f")
        } else {
            String::new()
        },
        ..Default::default()
    })
}

fn process(r: &mut Rng, in_container: bool) -> ProcessInfo {
    const PROCS: &[(&str, &str, &[&str])] = &[
        ("nginx", "/usr/sbin/nginx", &["-g", "daemon off;"]),
        ("python3", "/usr/bin/python3", &["app.py", "--port", "8080"]),
        ("sh", "/bin/sh", &["-c", "ls /tmp"]),
        ("bash", "/bin/bash", &[]),
        ("java", "/usr/bin/java", &["-jar", "/app/app.jar"]),
        (
            "postgres",
            "/usr/lib/postgresql/15/bin/postgres",
            &["-D", "/var/lib/postgresql/data"],
        ),
        (
            "curl",
            "/usr/bin/curl",
            &["-s", "https://example.com/health"],
        ),
        ("cat", "/bin/cat", &["/etc/hostname"]),
        ("ls", "/bin/ls", &["-la"]),
        ("node_exporter", "/bin/node_exporter", &[]),
        ("sshd", "/usr/sbin/sshd", &["-D"]),
        (
            "xmrig",
            "/tmp/xmrig",
            &["-o", "stratum+tcp://pool.example:3333"],
        ),
        ("apt-get", "/usr/bin/apt-get", &["install", "-y", "curl"]),
        ("nc", "/bin/nc", &["-zv", "db", "5432"]),
    ];
    let i = if r.below(100) == 0 {
        r.below(PROCS.len())
    } else {
        r.below(PROCS.len() - 3)
    };
    let (name, exe, args) = PROCS[i];
    let parents: &[&str] = if in_container {
        &["sh", "containerd-shim", "systemd"]
    } else {
        &["bash", "sshd", "systemd"]
    };
    let depth = 1 + r.below(3);
    ProcessInfo {
        pid: 1000 + r.below(30000) as u32,
        tid: 0,
        ppid: 900,
        name: name.into(),
        exe: exe.into(),
        exepath: exe.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        cwd: "/".into(),
        tty: if r.below(20) == 0 { 34816 } else { 0 },
        user: UserInfo {
            uid: if r.below(3) == 0 { 0 } else { 1000 },
            name: if r.below(3) == 0 {
                "root".into()
            } else {
                "app".into()
            },
            loginuid: -1,
            loginname: String::new(),
        },
        ancestors: parents[..depth]
            .iter()
            .enumerate()
            .map(|(k, n)| {
                Ancestor {
                    pid: 900 - k as u32,
                    name: n.to_string(),
                    exepath: format!("/usr/bin/{n}"),
                    cmdline: n.to_string(),
                }
                .into()
            })
            .collect(),
        exe_upper_layer: in_container && r.below(100) == 0,
        ..Default::default()
    }
}

/// A realistic mix: ~45 % opens, 25 % execs, 25 % connects, 4 % accepts, 1 % container starts.
fn generate(n: usize) -> Vec<Event> {
    const FILES: &[(&str, &str)] = &[
        ("/etc/ld.so.cache", "O_RDONLY|O_CLOEXEC"),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "O_RDONLY|O_CLOEXEC"),
        ("/proc/self/stat", "O_RDONLY"),
        ("/var/log/app/app.log", "O_WRONLY|O_CREAT|O_APPEND"),
        ("/tmp/cache/item", "O_RDWR|O_CREAT"),
        ("/etc/passwd", "O_RDONLY|O_CLOEXEC"),
        ("/etc/hosts", "O_RDONLY"),
        ("/app/static/index.html", "O_RDONLY"),
        ("/var/lib/postgresql/data/base/1/1259", "O_RDWR"),
        ("/etc/shadow", "O_RDONLY"),
        ("/usr/bin/kdevtmpfsi", "O_WRONLY|O_CREAT|O_TRUNC"),
    ];
    const DESTS: &[(&str, u16)] = &[
        ("10.0.3.7", 5432),
        ("172.17.0.4", 6379),
        ("93.184.216.34", 443),
        ("10.96.0.1", 443),
        ("127.0.0.1", 9100),
        ("198.51.100.7", 3333),
    ];
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let c = container(&mut r);
        let roll = r.below(100);
        let mut ev = Event {
            hostname: "node-1".into(),
            ..Default::default()
        };
        if roll == 0 {
            ev.source = EventSource::Docker;
            ev.kind = "container_start".into();
            if let Some(c) = &c {
                ev.args.insert("image".into(), c.image.clone());
                ev.args.insert("name".into(), c.name.clone());
            }
            ev.container = c.or_else(|| container(&mut r)).map(Into::into);
            out.push(ev);
            continue;
        }
        let p = process(&mut r, c.is_some());
        if roll < 46 {
            let (path, flags) = if r.below(100) == 0 {
                *r.pick(FILES)
            } else {
                FILES[r.below(FILES.len() - 2)]
            };
            ev.kind = "openat".into();
            ev.res = Some(3 + r.below(20) as i64);
            ev.args.insert("flags".into(), flags.into());
            ev.args.insert("name".into(), path.into());
            ev.fd = Some(FdInfo {
                typechar: 'f',
                path: path.into(),
                ..Default::default()
            });
        } else if roll < 71 {
            ev.kind = "execve".into();
            ev.res = Some(0);
        } else if roll < 96 {
            let (ip, port) = if r.below(100) == 0 {
                *r.pick(DESTS)
            } else {
                DESTS[r.below(DESTS.len() - 1)]
            };
            ev.kind = "connect".into();
            ev.res = Some(if r.below(4) == 0 { -115 } else { 0 });
            ev.fd = Some(FdInfo {
                typechar: '4',
                cip: "172.17.0.9".parse().ok(),
                cport: Some(40000 + r.below(20000) as u16),
                sip: ip.parse().ok(),
                sport: Some(port),
                l4proto: "tcp".into(),
                local_is_server: false,
                path: String::new(),
            });
        } else {
            ev.kind = "accept4".into();
            ev.res = Some(7);
            ev.fd = Some(FdInfo {
                typechar: '4',
                cip: "10.0.8.8".parse().ok(),
                cport: Some(50000 + r.below(10000) as u16),
                sip: "172.17.0.9".parse().ok(),
                sport: Some(8080),
                l4proto: "tcp".into(),
                local_is_server: true,
                path: String::new(),
            });
        }
        ev.process = Some(p.into());
        ev.container = c.map(Into::into);
        out.push(ev);
    }
    out
}

fn bench(
    falco_dir: Option<PathBuf>,
    extra: &[PathBuf],
    n: usize,
    profile: bool,
) -> anyhow::Result<ExitCode> {
    let mut files = falco_files(falco_dir);
    if files.is_empty() {
        eprintln!("note: Falco's rule files not found; benchmarking the built-in pack only");
    }
    files.extend(extra.iter().cloned());
    let t0 = Instant::now();
    let (rules, report) = load(true, &files)?;
    let load_time = t0.elapsed();
    print_report(&report, false);
    println!(
        "rules: {} sources, {} rules enabled ({} left out), {} macros, {} lists; loaded and compiled in {:.1} ms",
        report.sources.len(),
        report.rules_enabled,
        report.left_out.len(),
        report.macros,
        report.lists,
        load_time.as_secs_f64() * 1e3
    );
    for (src, t, n_rules, size) in rules.index_stats() {
        if [
            "execve",
            "openat",
            "connect",
            "accept4",
            "container_start",
            "*",
        ]
        .contains(&t.as_str())
        {
            println!("  {src}/{t}: {n_rules} rules to evaluate ({size} condition nodes)");
        }
    }
    // Events are hot in cache when the matcher sees them in the real pipeline (just decoded);
    // a few thousand distinct events keep them so here too.
    let distinct = n.clamp(1, 4096);
    let events = generate(distinct);
    let mut scratch = detect::MatchScratch::default();
    // Warm-up pass (fills caches and scratch buffers).
    let mut detections = 0usize;
    for ev in &events {
        detections += rules.count_matches(ev, &mut scratch);
    }
    let per_pass = detections;
    let mut matched = 0usize;
    let cpu0 = thread_cpu_ns();
    let t = Instant::now();
    let mut done = 0usize;
    while done < n {
        for ev in events.iter().take(n - done) {
            matched += rules.count_matches(ev, &mut scratch);
        }
        done += distinct.min(n - done);
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| (b - a) as f64 / 1e9);
    println!(
        "events: {n} ({distinct} distinct; mix: 45% openat, 25% execve, 25% connect, 4% accept4, 1% container_start)"
    );
    println!("detections: {matched} ({per_pass} per {distinct} events)");
    println!(
        "throughput: {:.0} events/s on one thread, {:.0} ns/event (wall clock)",
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
    if let Some(cpu) = cpu {
        println!(
            "cpu time:   {:.0} events/s per CPU-second, {:.0} ns/event (thread CPU time; differs from wall clock when the machine is busy)",
            n as f64 / cpu,
            cpu * 1e9 / n as f64
        );
    }
    if profile {
        println!("slowest rules (total time over {distinct} events, including timing overhead):");
        for (name, evals, d) in rules.profile(&events).into_iter().take(15) {
            println!(
                "  {:>8.1} us  {:>6} evaluations  {:>6.0} ns each  {name}",
                d.as_secs_f64() * 1e6,
                evals,
                d.as_secs_f64() * 1e9 / evals as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
