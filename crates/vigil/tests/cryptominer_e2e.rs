//! The cryptominer exercise end to end, against a real dockerd and the kernel sensor:
//! `vigil up` with the built-in rules and the default response policy; a payload script starts
//! three containers from miner images, each running a harmless `xmrig` that burns some CPU and
//! sends a stratum `login` to a local listener on port 3333. Vigil must detect the image, the
//! process and the connection, open one incident naming all three containers and images, kill
//! the containers and remove the images by policy, store evidence with its sha256, mark the
//! incident contained, and keep a complete timeline in order.
//!
//! The benchmark (`cargo test -p vigil --test cryptominer_e2e -- --ignored --nocapture`) repeats
//! "start a miner container → container gone" 20 times and prints p50/p99 of detect, decide and
//! act.

mod common;

use common::{Vigil, client, eventually, get_json, tempdir};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The harmless "miner": burns CPU in short bursts and speaks just enough stratum to log in.
const XMRIG_C: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static void burn(long ms) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        for (int i = 0; i < 100000; i++) sink += i * 2654435761u;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= ms) return;
    }
}

int main(int argc, char **argv) {
    const char *url = "stratum+tcp://127.0.0.1:3333";
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-o") == 0) url = argv[i + 1];
    char host[64] = {0};
    int port = 3333;
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    sscanf(p, "%63[^:]:%d", host, &port);
    printf("xmrig (harmless test miner) connecting to %s:%d\n", host, port);
    fflush(stdout);
    for (int attempt = 0; attempt < 50; attempt++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        inet_pton(AF_INET, host, &sa.sin_addr);
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
            const char *login =
                "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":"
                "\"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A\","
                "\"pass\":\"x\",\"agent\":\"XMRig/6.21.0\",\"algo\":[\"rx/0\"]}}\n";
            if (write(s, login, strlen(login)) > 0) {
                printf("login sent\n");
                fflush(stdout);
            }
            for (;;) { burn(200); usleep(100000); }
        }
        close(s);
        burn(100);
    }
    for (;;) { burn(200); usleep(100000); }
}
"#;

const MINER_IMAGES: [&str; 3] = [
    "servethehome/monero_cpu_moneropool:latest",
    "servethehome/monero_cpu_minergate:latest",
    "servethehome/universal_cryptonight:latest",
];

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The docker0 address, which containers on the default bridge reach the host at.
fn bridge_gateway() -> String {
    let (ok, out) =
        sh("docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}'");
    let gw = out.trim().to_string();
    if ok && !gw.is_empty() && !gw.contains(' ') {
        return gw;
    }
    let (_, out) = sh("ip -4 -o addr show docker0");
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .unwrap_or_else(|| "172.17.0.1".into())
}

/// A stratum listener: records every line a miner sends.
struct Pool {
    lines: Arc<Mutex<Vec<String>>>,
}

fn pool(port: u16) -> Result<Pool, String> {
    let l = std::net::TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let rec = lines.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let rec = rec.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    rec.lock().unwrap().push(line);
                }
            });
        }
    });
    Ok(Pool { lines })
}

/// Compiles the miner and builds the images (every run, so a removed image comes back).
fn build_images(tags: &[&str], gateway: &str) -> Result<(), String> {
    let bin: PathBuf = testkit::compile_static_c("xmrig", XMRIG_C)?;
    let url = format!("stratum+tcp://{gateway}:3333");
    for tag in tags {
        testkit::import_image(
            tag,
            &[(bin.as_path(), "/usr/bin/xmrig")],
            &["/usr/bin/xmrig", "-o", &url, "-u", "wallet", "-p", "x"],
        )?;
    }
    Ok(())
}

fn prerequisites() -> bool {
    if !testkit::is_root() {
        testkit::skip("the kernel sensor needs root");
        return false;
    }
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no dockerd: {e}"));
        return false;
    }
    true
}

fn config(dir: &Path, port: u16) -> PathBuf {
    let p = dir.join("vigil.yaml");
    std::fs::write(
        &p,
        format!(
            "listen: 127.0.0.1:{port}\ndata_dir: {}\ndetection:\n  builtin: true\n\
             sensor:\n  enabled: on\nresponse:\n  builtin_policy: true\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    p
}

fn start_vigil(dir: &Path) -> Vigil {
    let port = testkit::free_port();
    let cfg = config(dir, port);
    Vigil::start_on(
        "127.0.0.1",
        port,
        &dir.join("data"),
        &["--config", cfg.to_str().unwrap()],
    )
}

fn remove_leftovers(names: &[String], images: &[&str]) {
    for n in names {
        let _ = sh(&format!("docker rm -f {n} >/dev/null 2>&1"));
    }
    for i in images {
        let _ = sh(&format!("docker rmi -f {i} >/dev/null 2>&1"));
    }
}

fn sha256_of(path: &Path) -> String {
    let (ok, out) = sh(&format!("sha256sum '{}'", path.display()));
    assert!(ok, "{out}");
    out.split_whitespace().next().unwrap_or("").to_string()
}

fn time(v: &Value, key: &str) -> Option<model::Time> {
    v.get(key)
        .and_then(|t| serde_json::from_value::<model::Time>(t.clone()).ok())
}

fn now() -> model::Time {
    model::Time::from(std::time::SystemTime::now())
}

fn ms(a: model::Time, b: model::Time) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cryptominer_exercise_is_detected_contained_and_recorded() {
    if !prerequisites() {
        return;
    }
    let gateway = bridge_gateway();
    let pool = match pool(3333) {
        Ok(p) => p,
        Err(e) => panic!("the stratum listener needs port 3333: {e}"),
    };
    let names: Vec<String> = (1..=3).map(|i| format!("vigil-e2e-miner-{i}")).collect();
    remove_leftovers(&names, &MINER_IMAGES);
    build_images(&MINER_IMAGES, &gateway).unwrap();

    let dir = tempdir();
    let vigil = start_vigil(dir.path());

    // The payload script, as in the seed exercise: three miner containers at once.
    let payload: String = MINER_IMAGES
        .iter()
        .zip(&names)
        .map(|(img, name)| format!("docker run -d --name {name} {img}\n"))
        .collect();
    let script = dir.path().join("payload.sh");
    std::fs::write(&script, format!("#!/bin/sh\nset -e\n{payload}")).unwrap();
    let started = now();
    let (ok, out) = sh(&format!("sh {}", script.display()));
    assert!(ok, "payload failed: {out}");

    // Wait until policy has killed the three containers and removed the three images.
    let url = vigil.url.clone();
    let done = eventually(45, || {
        let url = url.clone();
        async move {
            let actions = get_json(&format!("{url}/api/v1/actions")).await;
            let ok = |kind: &str| {
                actions.as_array().map_or(0, |a| {
                    a.iter()
                        .filter(|x| x["kind"] == kind && x["status"] == "succeeded")
                        .count()
                })
            };
            (ok("kill") >= 3 && ok("remove_image") >= 3).then_some(())
        }
    })
    .await;
    if done.is_none() {
        let list = get_json(&format!("{}/api/v1/incidents", vigil.url)).await;
        let actions = get_json(&format!("{}/api/v1/actions", vigil.url)).await;
        remove_leftovers(&names, &MINER_IMAGES);
        panic!("the miners were not contained by policy:\n{list:#}\nactions:\n{actions:#}");
    }
    // The incidents that name the miners.
    let incidents = get_json(&format!("{}/api/v1/incidents", vigil.url)).await;
    let ids: Vec<i64> = incidents
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["assets"]["images"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| MINER_IMAGES.contains(&x.as_str().unwrap_or("")))
            })
        })
        .filter_map(|i| i["id"].as_i64())
        .collect();
    assert!(
        !ids.is_empty(),
        "no incident names the miners: {incidents:#}"
    );
    // Every one of them is contained (the engine marks it once all its containers are handled).
    let url = vigil.url.clone();
    let fulls = eventually(15, || {
        let url = url.clone();
        let ids = ids.clone();
        async move {
            let mut out = Vec::new();
            for id in ids {
                let v = get_json(&format!("{url}/api/v1/incidents/{id}")).await;
                if v["incident"]["status"] != "contained" {
                    return None;
                }
                out.push(v);
            }
            Some(out)
        }
    })
    .await
    .expect("every miner incident is marked contained");
    for full in &fulls {
        check_incident(full, &vigil.data_dir, started);
    }
    // Detections for the image, the process and the connection.
    let alertnames: Vec<String> = fulls
        .iter()
        .flat_map(|f| f["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            a["alert"]["labels"]["alertname"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(
        alertnames
            .iter()
            .any(|n| n == "Cryptominer container started"),
        "image detection missing: {alertnames:?}"
    );
    assert!(
        alertnames
            .iter()
            .any(|n| n == "Cryptominer process executed" || n == "Process in cryptominer image"),
        "process detection missing: {alertnames:?}"
    );
    assert!(
        alertnames
            .iter()
            .any(|n| n == "Connection to cryptomining pool port"),
        "connection detection missing: {alertnames:?}"
    );
    // The miners really spoke stratum to the pool.
    let lines = pool.lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("\"method\":\"login\"")),
        "{lines:?}"
    );
    // Containers killed and images removed, by policy.
    let actions: Vec<Value> = fulls
        .iter()
        .flat_map(|f| f["actions"].as_array().cloned().unwrap_or_default())
        .collect();
    for kind in ["kill", "remove_image", "block_image"] {
        let ok: Vec<_> = actions
            .iter()
            .filter(|a| a["kind"] == kind && a["status"] == "succeeded")
            .collect();
        assert_eq!(ok.len(), 3, "{kind}: {actions:#?}");
        assert!(
            ok.iter()
                .all(|a| a["actor"] == "policy:cryptominer-containment")
        );
    }
    for n in &names {
        let (exists, _) = sh(&format!("docker inspect {n} >/dev/null 2>&1"));
        assert!(!exists, "container {n} still exists");
    }
    for i in MINER_IMAGES {
        let (exists, _) = sh(&format!("docker image inspect {i} >/dev/null 2>&1"));
        assert!(!exists, "image {i} still exists");
    }
    // The images are blocked: the same repository started again is killed at start.
    build_images(&MINER_IMAGES[1..2], &gateway).unwrap();
    let again = "vigil-e2e-miner-again";
    remove_leftovers(&[again.to_string()], &[]);
    let (ok, out) = sh(&format!("docker run -d --name {again} {}", MINER_IMAGES[1]));
    assert!(ok, "{out}");
    let again_id = out.trim().to_string();
    let url = vigil.url.clone();
    let blocked = eventually(20, || {
        let url = url.clone();
        let again_id = again_id.clone();
        async move {
            let actions = get_json(&format!("{url}/api/v1/actions")).await;
            actions
                .as_array()?
                .iter()
                .find(|a| {
                    a["kind"] == "kill"
                        && a["target"] == again_id.as_str()
                        && a["params"]["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("blocked"))
                        && a["status"] != "running"
                        && a["status"] != "requested"
                })
                .cloned()
        }
    })
    .await
    .expect("a container from a blocked image is killed at start");
    assert_eq!(blocked["status"], "succeeded", "{blocked:#}");
    assert_ne!(running_state(again), "running");
    remove_leftovers(&[again.to_string()], &[]);

    for f in &fulls {
        println!(
            "INC-{}: {} alerts, {} actions, {} evidence files, {} timeline entries; time to contain {}s",
            f["incident"]["id"],
            f["alerts"].as_array().map_or(0, Vec::len),
            f["actions"].as_array().map_or(0, Vec::len),
            f["evidence"].as_array().map_or(0, Vec::len),
            f["timeline"].as_array().map_or(0, Vec::len),
            f["metrics"]["time_to_contain"]
        );
    }
    remove_leftovers(&names, &MINER_IMAGES);

    // One incident names all three containers and images (the exercise is one incident).
    assert_eq!(
        fulls.len(),
        1,
        "the three miners must be correlated into one incident, got {}: {:#?}",
        fulls.len(),
        fulls
            .iter()
            .map(|f| (
                f["incident"]["title"].clone(),
                f["incident"]["assets"].clone()
            ))
            .collect::<Vec<_>>()
    );
    let inc = &fulls[0]["incident"];
    let containers: Vec<String> = inc["assets"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    for n in &names {
        assert!(
            containers.iter().any(|c| c.contains(n.as_str())),
            "{n} not in {containers:?}"
        );
    }
}

/// One miner incident: contained, evidence on disk with its sha256, a complete ordered timeline.
fn check_incident(full: &Value, data_dir: &Path, started: model::Time) {
    let inc = &full["incident"];
    assert!(inc["contained_at"].is_string(), "{inc:#}");
    let actions = full["actions"].as_array().unwrap();
    // Evidence stored under the data dir with its sha256.
    let evidence = full["evidence"].as_array().unwrap();
    let kinds: Vec<&str> = evidence.iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["event", "inspect", "logs", "processes", "diff"] {
        assert!(kinds.contains(&k), "{k} evidence missing: {kinds:?}");
    }
    for e in evidence {
        let path = data_dir.join(e["path"].as_str().unwrap());
        assert_eq!(
            sha256_of(&path),
            e["sha256"].as_str().unwrap(),
            "{}",
            path.display()
        );
    }
    let logs = evidence.iter().find(|e| e["kind"] == "logs").unwrap();
    let text = std::fs::read_to_string(data_dir.join(logs["path"].as_str().unwrap())).unwrap();
    assert!(text.contains("xmrig"), "{text}");
    // The timeline: complete and in order.
    let tl = full["timeline"].as_array().unwrap();
    let times: Vec<_> = tl.iter().map(|e| time(e, "at").unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timeline out of order"
    );
    let first = |pred: &dyn Fn(&Value) -> bool| tl.iter().position(pred);
    let detection = first(&|e| e["kind"] == "detection").expect("detection entry");
    let requested = first(&|e| e["kind"] == "action").expect("action entry");
    let killed = first(&|e| {
        e["kind"] == "action" && e["data"]["kind"] == "kill" && e["data"]["status"] == "succeeded"
    })
    .expect("kill succeeded entry");
    let contained = first(&|e| e["kind"] == "status_change" && e["data"]["to"] == "contained")
        .expect("contained entry");
    assert!(
        detection < requested && requested < killed && killed < contained,
        "{detection} {requested} {killed} {contained}"
    );
    assert!(tl.iter().any(|e| e["kind"] == "evidence"));
    for a in actions {
        let aid = a["id"].as_i64().unwrap();
        let steps: Vec<&str> = tl
            .iter()
            .filter(|e| e["data"]["action_id"].as_i64() == Some(aid))
            .filter_map(|e| e["data"]["status"].as_str())
            .collect();
        assert!(
            steps.starts_with(&["requested", "running"]) && steps.last() == Some(&"succeeded"),
            "action {aid} ({}) steps {steps:?}",
            a["kind"]
        );
    }
    let first_at = time(&tl[0], "at").unwrap();
    assert!(
        ms(started, first_at) > -5000.0,
        "timeline starts before the payload"
    );
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Benchmark, not run by `cargo test`: 20 × "start a miner container → container gone".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p vigil --test cryptominer_e2e -- --ignored --nocapture"]
async fn bench_miner_container_to_gone() {
    if !prerequisites() {
        return;
    }
    let gateway = bridge_gateway();
    let _pool = pool(3333).ok();
    // Images first: building them puts a stratum URL on a host command line (`docker import`),
    // which Vigil would rightly report while it runs.
    let tags: Vec<String> = (0..20)
        .map(|i| format!("vigil-bench/xmrig-{i}:latest"))
        .collect();
    build_images(
        &tags.iter().map(String::as_str).collect::<Vec<_>>(),
        &gateway,
    )
    .unwrap();
    let dir = tempdir();
    let vigil = start_vigil(dir.path());
    let c = client();
    let (mut run, mut detect, mut decide, mut evidence, mut act, mut total, mut total_run) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (i, tag) in tags.iter().enumerate() {
        // A fresh repository each round: the previous one is blocked (and would be killed by the
        // block list, not by detection).
        let name = format!("vigil-bench-miner-{i}");
        remove_leftovers(std::slice::from_ref(&name), &[]);
        let t0 = now();
        let (ok, out) = sh(&format!("docker run -d --name {name} {tag}"));
        assert!(ok, "{out}");
        let url = vigil.url.clone();
        let done = eventually(30, || {
            let url = url.clone();
            let name = name.clone();
            async move {
                let list = get_json(&format!("{url}/api/v1/incidents?status=contained")).await;
                let inc = list.as_array()?.iter().find(|i| {
                    i["assets"]["containers"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|c| c.as_str().unwrap_or("").contains(&name)))
                })?;
                let id = inc["id"].as_i64()?;
                let v = get_json(&format!("{url}/api/v1/incidents/{id}")).await;
                v["actions"]
                    .as_array()?
                    .iter()
                    .any(|a| a["kind"] == "kill" && a["status"] == "succeeded")
                    .then_some(v)
            }
        })
        .await
        .expect("miner not contained within 30 s");
        let inc = &done["incident"];
        let actions = done["actions"].as_array().unwrap();
        let kill = actions.iter().find(|a| a["kind"] == "kill").unwrap();
        let first = actions
            .iter()
            .filter_map(|a| time(a, "requested_at"))
            .min()
            .unwrap();
        let detected = time(inc, "detected_at").unwrap();
        let kill_start = time(kill, "started_at").unwrap();
        let kill_end = time(kill, "finished_at").unwrap();
        // The container's first event (its process' exec, or Docker's start) as the kernel and
        // Docker saw it: the alerts' startsAt.
        let started = done["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| time(&a["alert"], "startsAt"))
            .min()
            .unwrap();
        println!(
            "  #{i:<2} docker run {:6.1}  detect {:6.1}  decide {:5.1}  evidence {:6.1}  act {:6.1}  total {:6.1} ms (from docker run {:6.1})",
            ms(t0, started),
            ms(started, detected),
            ms(detected, first),
            ms(first, kill_start),
            ms(kill_start, kill_end),
            ms(started, kill_end),
            ms(t0, kill_end),
        );
        run.push(ms(t0, started));
        detect.push(ms(started, detected));
        decide.push(ms(detected, first));
        evidence.push(ms(first, kill_start));
        act.push(ms(kill_start, kill_end));
        total.push(ms(started, kill_end));
        total_run.push(ms(t0, kill_end));
        // Resolve it so that the next miner opens a new incident.
        let id = inc["id"].as_i64().unwrap();
        let _ = c
            .post(format!("{}/api/v1/incidents/{id}/status", vigil.url))
            .json(&json!({"status": "resolved", "actor": "bench"}))
            .send()
            .await;
        remove_leftovers(std::slice::from_ref(&name), &[tag]);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("cryptominer response benchmark: 20 × start a miner container → container killed");
    println!(
        "(debug build unless run with --release; load average {} on {} CPUs)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "(docker run = `docker run` issued → the container's first event; detect = that event → \
         incident opened (sensor, rules, intake, correlation); decide = incident → first action; \
         evidence = pre-kill evidence; act = Docker kill API until Docker reports the container \
         dead; total = first event → dead)"
    );
    for (name, v) in [
        ("docker run", &mut run),
        ("detect", &mut detect),
        ("decide", &mut decide),
        ("evidence", &mut evidence),
        ("act", &mut act),
        ("total", &mut total),
        ("total from docker run", &mut total_run),
    ] {
        let p50 = pct(v, 50.0);
        let p99 = pct(v, 99.0);
        println!("  {name:<22} p50 {p50:8.1} ms   p99 {p99:8.1} ms");
    }
}

fn vigil_cli(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(common::bin())
        .arg("respond")
        .args(args)
        .env("VIGIL_URL", url)
        .env("VIGIL_LOG", "warn")
        .output()
        .expect("run vigil respond");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// People act through `vigil respond … --incident`, and approve what a policy holds back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_cli_acts_and_approves_through_the_api() {
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no dockerd: {e}"));
        return;
    }
    let img = "vigil-e2e/cli-target:latest";
    testkit::busybox_image(img).unwrap();
    let name = "vigil-e2e-cli-target";
    remove_leftovers(&[name.to_string()], &[]);
    let (ok, out) = sh(&format!("docker run -d --name {name} {img} sleep 300"));
    assert!(ok, "{out}");
    let cid = out.trim().to_string();

    let dir = tempdir();
    let port = testkit::free_port();
    let policy = dir.path().join("hold.yaml");
    std::fs::write(
        &policy,
        "policies:\n  - name: hold-back\n    match:\n      alertname: NeedsApproval\n    actions:\n      - kind: pause\n        approval: required\n",
    )
    .unwrap();
    let cfg = dir.path().join("vigil.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\nsensor:\n  enabled: off\nresponse:\n  policies: [{}]\n",
            policy.display()
        ),
    )
    .unwrap();
    let vigil = Vigil::start_on(
        "127.0.0.1",
        port,
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    // An alert about the container opens an incident; the policy holds its action back.
    let r = client()
        .post(format!("{}/api/v2/alerts", vigil.url))
        .json(
            &json!([{"labels": {"alertname": "NeedsApproval", "severity": "critical",
            "container_id": cid.clone(), "container_name": name, "image": img}}]),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let url = vigil.url.clone();
    let pending = eventually(20, || {
        let url = url.clone();
        async move {
            let v = get_json(&format!("{url}/api/v1/actions?status=awaiting_approval")).await;
            v.as_array()?.first().cloned()
        }
    })
    .await
    .expect("the policy's action waits for approval");
    let incident = pending["incident_id"].as_i64().unwrap().to_string();
    assert_eq!(running_state(name), "running");

    // Evidence by a person.
    let (ok, out) = vigil_cli(
        &vigil.url,
        &["evidence", name, "--incident", &incident, "--actor", "dana"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("succeeded"), "{out}");
    // Approve the held-back pause.
    let aid = pending["id"].as_i64().unwrap().to_string();
    let (ok, out) = vigil_cli(&vigil.url, &["approve", &aid, "--actor", "erin"]);
    assert!(ok, "{out}");
    assert!(out.contains("succeeded"), "{out}");
    assert_eq!(running_state(name), "paused");
    // Approving again is refused with the server's reason, and a non-zero exit.
    let (ok, out) = vigil_cli(&vigil.url, &["approve", &aid]);
    assert!(!ok && out.contains("not awaiting approval"), "{out}");
    // Kill by a person; a protected or unknown target fails with a reason.
    let (ok, out) = vigil_cli(&vigil.url, &["kill", name, "--incident", &incident]);
    assert!(ok, "{out}");
    assert_eq!(running_state(name), "exited");
    let (ok, out) = vigil_cli(
        &vigil.url,
        &["stop", "no-such-container", "--incident", &incident],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("failed") || out.contains("No such container"),
        "{out}"
    );
    // The list shows every action with its actor.
    let (ok, out) = vigil_cli(&vigil.url, &["list", "--incident", &incident]);
    assert!(ok, "{out}");
    for w in ["evidence", "pause", "kill", "dana", "policy:hold-back"] {
        assert!(out.contains(w), "{w} missing from:\n{out}");
    }
    // The timeline records who did what.
    let v = get_json(&format!("{}/api/v1/incidents/{incident}", vigil.url)).await;
    let tl = v["timeline"].as_array().unwrap();
    assert!(tl.iter().any(
        |e| e["actor"] == "erin" && e["summary"].as_str().unwrap().contains("approved by erin")
    ));
    assert!(
        tl.iter()
            .any(|e| e["actor"] == "dana" && e["kind"] == "evidence")
    );
    remove_leftovers(&[name.to_string()], &[img]);
}

fn running_state(name: &str) -> String {
    let (_, out) = sh(&format!("docker inspect -f '{{{{.State.Status}}}}' {name}"));
    out.trim().to_string()
}

/// `vigil respond check` names the bad place of a policy file and exits non-zero.
#[test]
fn respond_check_names_file_line_column() {
    let dir = tempdir();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "policies:\n  - name: stop-web-shells\n    match:\n      labels: ['alertname=~\"Shell.*\"']\n    actions:\n      - kind: stop\n        params: {timeout: 5}\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "policies:\n  - name: oops\n    actions:\n      - kind: stop\n        params: {timeout: soon}\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["respond", "check"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("stop-web-shells") && text.contains("cryptominer-containment"),
        "{text}"
    );
    let out = Command::new(common::bin())
        .args(["respond", "check"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{}:4:", bad.display())), "{err}");
    assert!(err.contains("timeout"), "{err}");
}
