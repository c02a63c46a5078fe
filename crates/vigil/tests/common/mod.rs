//! Shared helpers for the `vigil` binary's integration tests: start `vigil up` on a free port
//! in a temporary data dir, talk HTTP to it, stop it (gracefully or with SIGKILL).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `vigil up`.
pub struct Vigil {
    pub child: Child,
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// What `vigil up` printed on standard output before serving.
    pub banner: Vec<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigil")
}

impl Vigil {
    /// Starts `vigil up` listening on `host:port` with `data_dir`, plus extra arguments, and waits
    /// until `/healthz` answers.
    /// Unless `extra` names a `--config`, a configuration with the kernel sensor off is used, so
    /// runtime detections of the test machine do not mix into the test's incidents.
    pub fn start_on(host: &str, port: u16, data_dir: &Path, extra: &[&str]) -> Vigil {
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if !extra.iter().any(|a| a == "--config") {
            let cfg = data_dir.with_extension("yml");
            std::fs::write(&cfg, "sensor:\n  enabled: off\n").expect("write test config");
            extra.push("--config".into());
            extra.push(cfg.display().to_string());
        }
        let mut child = Command::new(bin())
            .arg("up")
            .arg("--listen")
            .arg(format!("{host}:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(&extra)
            .env("VIGIL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vigil up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Read the banner lines (URL, store, token) as they come.
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    banner.push(l);
                    if banner.len() >= 2 {
                        // Give the token line a moment to arrive, then stop reading.
                        while let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
                            banner.push(l);
                        }
                        break;
                    }
                }
                Err(_) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        panic!("vigil up exited early: {st}");
                    }
                }
            }
        }
        let url = format!("http://127.0.0.1:{port}");
        let v = Vigil {
            child,
            url,
            port,
            data_dir: data_dir.to_path_buf(),
            banner,
        };
        v.wait_healthy();
        v
    }

    /// Starts on loopback.
    pub fn start(data_dir: &Path) -> Vigil {
        Vigil::start_on("127.0.0.1", testkit::free_port(), data_dir, &[])
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                drop(s);
                if http_get_status(&self.url, "/readyz") == Some(200) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("vigil did not become ready at {}", self.url);
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Minimal blocking GET returning the status code (used while waiting for readiness).
fn http_get_status(base: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let r = client().get(url).send().await.expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.expect("JSON")
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vigil-test-")
        .tempdir()
        .expect("tempdir")
}
