//! The sensor against the real kernel and a real dockerd. Needs root and BTF; skips otherwise
//! (fails under VIGIL_REQUIRE_INTEGRATION=1).

use model::Event;
use sensor::EventStream;
use sensor::{BackendChoice, Sensor, SensorConfig, SensorHandle};
use std::process::Command;
use std::time::{Duration, Instant};

fn can_run_ebpf() -> bool {
    if cfg!(not(feature = "bpf")) {
        testkit::skip("vigil-sensor built without the `bpf` feature");
        return false;
    }
    if !testkit::is_root() {
        testkit::skip("the eBPF sensor needs root");
        return false;
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        testkit::skip("the kernel has no BTF (/sys/kernel/btf/vmlinux)");
        return false;
    }
    true
}

async fn start(backend: BackendChoice) -> (SensorHandle, EventStream) {
    start_with(SensorConfig {
        backend,
        ..Default::default()
    })
    .await
}

async fn start_with(cfg: SensorConfig) -> (SensorHandle, EventStream) {
    let mut h = Sensor::start(cfg).await.expect("sensor starts");
    let rx = h.take_events().expect("events");
    (h, rx)
}

/// Receives events until `want` holds for one (returns it) or the deadline passes.
async fn wait_for(
    rx: &mut EventStream,
    secs: u64,
    mut want: impl FnMut(&Event) -> bool,
) -> Option<Event> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if want(&e) => return Some(e),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

/// A test program compiled from C (`what` names it in the skip message), or `None` after a
/// skip when no C compiler works here.
fn compiled(name: &str, c_source: &str, what: &str) -> Option<std::path::PathBuf> {
    match testkit::compile_static_c(name, c_source) {
        Ok(b) => Some(b),
        Err(e) => {
            testkit::skip(&format!("cannot compile the {what}: {e}"));
            None
        }
    }
}

/// Collects every event for `secs` seconds.
async fn collect(rx: &mut EventStream, secs: u64) -> Vec<Event> {
    let mut v = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) => v.push(e),
            _ => break,
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_chain_across_sh_c() {
    if !can_run_ebpf() {
        return;
    }
    let (h, mut rx) = start(BackendChoice::Ebpf).await;
    let marker = format!("vigil-chain-{}", std::process::id());
    let st = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("/bin/echo {marker} >/dev/null; true"))
        .status()
        .expect("sh runs");
    assert!(st.success());
    let ev = wait_for(&mut rx, 10, |e| {
        e.kind == "execve"
            && e.process
                .as_ref()
                .is_some_and(|p| p.args.first() == Some(&marker))
    })
    .await
    .expect("execve of echo seen");
    let p = ev.process.unwrap();
    assert_eq!(p.exepath, "/usr/bin/echo");
    assert_eq!(p.exe, "/bin/echo");
    assert_eq!(p.name, "echo");
    assert_eq!(p.ancestors[0].name, "sh", "parent is sh: {:?}", p.ancestors);
    assert!(p.ancestors[0].cmdline.contains(&marker));
    assert_eq!(
        p.ancestors[1].pid,
        std::process::id(),
        "grandparent is the test"
    );
    assert!(ev.container.is_none(), "a host process has no container");
    assert!(p.cwd.ends_with('/'));
    assert_eq!(h.backend().to_string(), "ebpf");
    assert!(p.exe_writable, "root may write /usr/bin/echo");

    // An unprivileged user cannot write the binary it runs.
    if let Some(setpriv) = testkit::which("setpriv") {
        let marker2 = format!("{marker}-nobody");
        let st = Command::new(setpriv)
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/bin/echo",
                &marker2,
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("setpriv runs");
        assert!(st.success());
        let ev = wait_for(&mut rx, 10, |e| {
            e.kind == "execve"
                && e.process
                    .as_ref()
                    .is_some_and(|p| p.args.first() == Some(&marker2))
        })
        .await
        .expect("execve as nobody");
        let p = ev.process.unwrap();
        assert_eq!(p.user.uid, 65534);
        assert!(!p.exe_writable, "nobody cannot write /usr/bin/echo");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_and_fork_are_seen() {
    if !can_run_ebpf() {
        return;
    }
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let child = Command::new("/bin/sh")
        .args(["-c", "/bin/sleep 0.1; exit 3"])
        .spawn()
        .expect("sh");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(3));
    let evs = collect(&mut rx, 3).await;
    let fork = evs.iter().find(|e| {
        matches!(&*e.kind, "clone" | "fork" | "vfork" | "clone3")
            && e.process.as_ref().is_some_and(|p| p.pid == pid)
    });
    assert!(fork.is_some(), "sh forked for sleep");
    let exit = evs
        .iter()
        .find(|e| e.kind == "procexit" && e.process.as_ref().is_some_and(|p| p.pid == pid))
        .expect("procexit of sh");
    assert_eq!(exit.args.get("status").map(String::as_str), Some("768"));
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn port_for_test() -> u16 {
    if std::net::TcpListener::bind("127.0.0.1:3333").is_ok() {
        3333
    } else {
        testkit::free_port()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_exec_open_connect_attributed() {
    if !can_run_ebpf() {
        return;
    }
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no Docker daemon: {e}"));
        return;
    }
    let image = "vigil-sensor-busybox:test";
    if let Err(e) = testkit::busybox_image(image) {
        testkit::skip(&format!("cannot build the busybox image: {e}"));
        return;
    }
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let port = port_for_test();
    // A host listener (busybox nc, another process: the sensor ignores its own process).
    let mut listener = Command::new("busybox")
        .args(["nc", "-l", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("busybox nc listens");
    std::thread::sleep(Duration::from_millis(300));

    let name = format!("vigil-sensor-test-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let script = format!(
        "cat /etc/shadow >/dev/null; (cd /etc && cat shadow >/dev/null); echo hi | nc 127.0.0.1 {port}; cp /bin/busybox /tmp/true; /tmp/true; sleep 1"
    );
    let id = docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "--name",
        &name,
        image,
        "sh",
        "-c",
        &script,
    ])
    .expect("docker run");
    let evs = collect(&mut rx, 6).await;
    let _ = docker(&["wait", &name]);
    let inspect = docker(&["inspect", &name]).expect("docker inspect");
    let _ = docker(&["rm", "-f", &name]);
    let _ = listener.kill();
    let _ = listener.wait();
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    let c = &v[0];
    assert_eq!(c["Id"].as_str(), Some(id.as_str()));
    let want_name = c["Name"].as_str().unwrap().trim_start_matches('/');
    let want_image = c["Config"]["Image"].as_str().unwrap();
    let want_image_id = c["Image"].as_str().unwrap();

    let in_ctr = |e: &&Event| e.container.as_ref().is_some_and(|c| c.id == id);
    let cat = evs
        .iter()
        .filter(in_ctr)
        .find(|e| e.kind == "execve" && e.process.as_ref().is_some_and(|p| p.exe == "cat"))
        .unwrap_or_else(|| {
            let seen: Vec<String> = evs
                .iter()
                .filter(|e| e.kind == "execve")
                .map(|e| {
                    format!(
                        "{} {:?} {:?}",
                        e.process.as_ref().map(|p| p.exe.as_str()).unwrap_or(""),
                        e.process.as_ref().map(|p| p.args.clone()),
                        e.container.as_ref().map(|c| (&c.id, &c.name))
                    )
                })
                .collect();
            panic!("no execve of cat in container {id}; execs: {seen:#?}")
        });
    let ci = cat.container.as_ref().unwrap();
    assert_eq!(ci.name, want_name);
    assert_eq!(ci.image, want_image);
    assert_eq!(ci.image_id, want_image_id);
    assert_eq!(ci.image_repository, "vigil-sensor-busybox");
    assert_eq!(ci.image_tag, "test");
    let p = cat.process.as_ref().unwrap();
    assert_eq!(p.exe, "cat");
    assert_eq!(p.args, vec!["/etc/shadow".to_string()]);
    assert_eq!(p.exepath, "/bin/busybox");
    assert_eq!(p.ancestors[0].name, "sh");
    assert!(
        p.vpid.is_some_and(|v| v != p.pid),
        "pid namespace: {:?} vs {}",
        p.vpid,
        p.pid
    );
    assert!(!p.exe_upper_layer, "cat comes from the image");
    assert_eq!(p.user.uid, 0);
    assert_eq!(p.user.name, "root", "from the container's /etc/passwd");
    let dropped = evs
        .iter()
        .filter(in_ctr)
        .find(|e| e.kind == "execve" && e.process.as_ref().is_some_and(|p| p.exe == "/tmp/true"))
        .expect("execve of the dropped binary");
    let dp = dropped.process.as_ref().unwrap();
    assert!(
        dp.exe_upper_layer,
        "a binary written in the container is in the upper layer"
    );
    assert_eq!(dp.exepath, "/tmp/true");
    assert!(dp.exe_writable, "root can write the dropped binary");

    let open = evs
        .iter()
        .filter(in_ctr)
        .find(|e| {
            e.kind.starts_with("open") && e.fd.as_ref().is_some_and(|f| f.path == "/etc/shadow")
        })
        .expect("open of /etc/shadow in the container");
    assert_eq!(
        open.args
            .get("flags")
            .map(String::as_str)
            .map(|f| f.starts_with("O_RDONLY")),
        Some(true)
    );
    assert!(
        open.res.is_some_and(|r| r >= 0),
        "open succeeded: {:?}",
        open.res
    );
    assert_eq!(open.process.as_ref().unwrap().exe, "cat");
    // The same file opened by a relative path, in the container's /etc: the kernel filter
    // sees the path the container names it by.
    let relative = evs
        .iter()
        .filter(in_ctr)
        .find(|e| {
            e.kind.starts_with("open") && e.process.as_ref().is_some_and(|p| p.args == ["shadow"])
        })
        .expect("open of shadow relative to /etc in the container");
    assert_eq!(
        relative.fd.as_ref().map(|f| f.path.as_str()),
        Some("/etc/shadow")
    );

    let conn = evs
        .iter()
        .filter(in_ctr)
        .find(|e| e.kind == "connect" && e.fd.as_ref().is_some_and(|f| f.sport == Some(port)))
        .expect("connect from the container");
    let fd = conn.fd.as_ref().unwrap();
    assert_eq!(fd.sip, Some("127.0.0.1".parse().unwrap()), "{conn:?}");
    assert_eq!(fd.cip, Some("127.0.0.1".parse().unwrap()));
    assert!(fd.cport.is_some_and(|p| p != 0), "client port known");
    assert_eq!(fd.l4proto, "tcp");
    assert_eq!(fd.typechar, '4');
    assert!(!fd.local_is_server);
    assert_eq!(conn.res, Some(0));

    let acc = evs
        .iter()
        .find(|e| {
            matches!(&*e.kind, "accept" | "accept4")
                && e.fd.as_ref().is_some_and(|f| f.sport == Some(port))
        })
        .expect("accept on the host listener");
    let afd = acc.fd.as_ref().unwrap();
    assert!(afd.local_is_server);
    assert_eq!(afd.cport, fd.cport, "both ends agree on the client port");
    assert!(acc.container.is_none());

    let start = evs
        .iter()
        .find(|e| e.kind == "container_start" && e.container.as_ref().is_some_and(|c| c.id == id))
        .expect("docker container_start event");
    assert_eq!(start.source, model::EventSource::Docker);
    assert_eq!(
        start.container.as_ref().unwrap().image_repository,
        "vigil-sensor-busybox"
    );
    // JSON lines round-trip (the `vigil sensor --json` format).
    let line = serde_json::to_string(cat).unwrap();
    let back: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(&back, cat);
}

/// Waits until a socket listens on `port` (TCP, IPv4 or IPv6), reading `/proc/net/tcp*`, so
/// nothing connects to the one-shot listener before the test does.
fn wait_listening(port: u16, within: Duration) -> bool {
    let needle = format!(":{port:04X} ");
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        let listening = ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| {
                t.lines().skip(1).any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.get(1)
                        .is_some_and(|local| format!("{local} ").ends_with(&needle))
                        && cols.get(3) == Some(&"0A")
                })
            })
        });
        if listening {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_backend_attributes_exec_and_connections() {
    if !testkit::is_root() {
        testkit::skip("the proc connector needs root");
        return;
    }
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no Docker daemon: {e}"));
        return;
    }
    let image = "vigil-sensor-busybox:test";
    if let Err(e) = testkit::busybox_image(image) {
        testkit::skip(&format!("cannot build the busybox image: {e}"));
        return;
    }
    let port = testkit::free_port();
    let mut listener = Command::new("busybox")
        .args(["nc", "-l", "-p", &port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("busybox nc listens");
    // Started once the port listens, so its first scan knows the port as a server port (a
    // fixed wait was too short on a loaded machine).
    assert!(
        wait_listening(port, Duration::from_secs(20)),
        "busybox nc did not listen on {port}"
    );
    let (h, mut rx) = start(BackendChoice::Proc).await;
    assert_eq!(h.backend().to_string(), "proc");
    let name = format!("vigil-sensor-proc-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let script = format!("sleep 2.5 | nc 127.0.0.1 {port}");
    let id = docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "--name",
        &name,
        image,
        "sh",
        "-c",
        &script,
    ])
    .expect("docker run");
    let evs = collect(&mut rx, 5).await;
    let _ = docker(&["rm", "-f", &name]);
    let _ = listener.kill();
    let _ = listener.wait();

    let sleep = evs
        .iter()
        .find(|e| {
            e.kind == "execve"
                && e.process
                    .as_ref()
                    .is_some_and(|p| p.args.first().map(String::as_str) == Some("2.5"))
        })
        .expect("execve of sleep 2.5 seen by the proc connector");
    let c = sleep
        .container
        .as_ref()
        .expect("attributed to the container");
    assert_eq!(c.id, id);
    assert_eq!(c.name, name);
    assert_eq!(c.image, image);
    let conn = evs
        .iter()
        .find(|e| e.kind == "connect" && e.fd.as_ref().is_some_and(|f| f.sport == Some(port)))
        .expect("connection found by the /proc/net scan");
    assert_eq!(
        conn.container.as_ref().map(|c| c.id.as_str()),
        Some(id.as_str())
    );
    let fd = conn.fd.as_ref().unwrap();
    assert_eq!(fd.sip, Some("127.0.0.1".parse().unwrap()));
    assert!(fd.cport.is_some_and(|p| p != 0));
    let acc = evs
        .iter()
        .find(|e| e.kind == "accept" && e.fd.as_ref().is_some_and(|f| f.sport == Some(port)))
        .expect("accepted end found by the scan");
    assert!(acc.fd.as_ref().unwrap().local_is_server);
    assert!(acc.container.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_image_events() {
    if !testkit::is_root() {
        testkit::skip("the sensor needs root");
        return;
    }
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no Docker daemon: {e}"));
        return;
    }
    let image = "vigil-sensor-busybox:test";
    if let Err(e) = testkit::busybox_image(image) {
        testkit::skip(&format!("cannot build the busybox image: {e}"));
        return;
    }
    let (_h, mut rx) = start(BackendChoice::Proc).await;
    let tag = format!("vigil-sensor-tag:{}", std::process::id());
    docker(&["tag", image, &tag]).expect("docker tag");
    docker(&["rmi", &tag]).expect("docker rmi");
    let tagged = wait_for(&mut rx, 10, |e| {
        e.kind == "image_tag" && e.args.get("name") == Some(&tag)
    })
    .await
    .expect("image_tag event");
    assert_eq!(tagged.source, model::EventSource::Docker);
    assert!(tagged.container.is_none());
    let untag = wait_for(&mut rx, 10, |e| e.kind == "image_untag")
        .await
        .expect("image_untag event");
    assert_eq!(untag.source, model::EventSource::Docker);
}

const MEMFD_EXEC_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return 0;
    int fd = memfd_create("vigil-payload", 0);
    int src = open("/proc/self/exe", O_RDONLY);
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0)
        if (write(fd, buf, n) != n)
            return 2;
    char *args[] = {"vigil-memfd-child", "child", NULL};
    char *env[] = {NULL};
    fexecve(fd, args, env);
    return 1;
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memfd_create_and_fileless_exec() {
    if !can_run_ebpf() {
        return;
    }
    let Some(bin) = compiled("vigil-memfd-exec", MEMFD_EXEC_C, "memfd test program") else {
        return;
    };
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let st = Command::new(&bin).status().expect("runs");
    assert!(st.success(), "fexecve worked: {st:?}");
    let evs = collect(&mut rx, 3).await;
    let memfd = evs
        .iter()
        .find(|e| {
            e.kind == "memfd_create"
                && e.args.get("name").map(String::as_str) == Some("vigil-payload")
        })
        .expect("memfd_create event");
    assert!(memfd.res.is_some_and(|r| r >= 0));
    let exec = evs
        .iter()
        .find(|e| {
            e.kind.starts_with("execve")
                && e.process
                    .as_ref()
                    .is_some_and(|p| p.exe == "vigil-memfd-child")
        })
        .expect("exec of the memfd");
    let p = exec.process.as_ref().unwrap();
    assert_eq!(exec.kind, "execveat", "glibc's fexecve uses execveat");
    assert!(p.exe_from_memfd, "exe from memfd: {}", p.exepath);
    assert_eq!(p.exepath, "/memfd:vigil-payload");
    assert_eq!(p.args, vec!["child".to_string()]);
    assert_eq!(p.pid, memfd.process.as_ref().unwrap().pid, "same process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_are_counted() {
    if !can_run_ebpf() {
        return;
    }
    // A one-page ring buffer drained every 2 s and a consumer that never reads: both the
    // kernel-side and the channel-side drops must show in the stats.
    let h = Sensor::start(SensorConfig {
        backend: BackendChoice::Ebpf,
        ring_buffer_bytes: 4096,
        channel_capacity: 1,
        drain_interval: Duration::from_secs(2),
        docker_socket: None,
        ..Default::default()
    })
    .await
    .expect("sensor starts");
    for _ in 0..200 {
        let _ = Command::new("/bin/true").status();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = h.stats();
    assert!(s.ring_drops > 0, "ring buffer overflow counted: {s:?}");
    assert!(s.channel_drops > 0, "full channel counted: {s:?}");
    assert!(s.events >= 1, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_exec_kill_die_events() {
    if !can_run_ebpf() {
        return;
    }
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no Docker daemon: {e}"));
        return;
    }
    let image = "vigil-sensor-busybox:test";
    if let Err(e) = testkit::busybox_image(image) {
        testkit::skip(&format!("cannot build the busybox image: {e}"));
        return;
    }
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let name = format!("vigil-sensor-exec-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let id = docker(&["run", "-d", "--name", &name, image, "sleep", "30"]).expect("docker run");
    docker(&["exec", &name, "cat", "/etc/hostname"]).expect("docker exec");
    docker(&["kill", &name]).expect("docker kill");
    let evs = collect(&mut rx, 4).await;
    let _ = docker(&["rm", "-f", &name]);
    let of_ctr = |kind: &str| {
        evs.iter()
            .find(|e| e.kind == kind && e.container.as_ref().is_some_and(|c| c.id == id))
            .unwrap_or_else(|| panic!("{kind} event for the container"))
    };
    let ex = of_ctr("container_exec");
    assert_eq!(
        ex.args.get("cmd").map(String::as_str),
        Some("cat /etc/hostname")
    );
    assert_eq!(ex.container.as_ref().unwrap().name, name);
    of_ctr("container_kill");
    let die = of_ctr("container_die");
    assert_eq!(die.container.as_ref().unwrap().image, image);
    let cat = evs
        .iter()
        .find(|e| {
            e.kind == "execve"
                && e.container.as_ref().is_some_and(|c| c.id == id)
                && e.process.as_ref().is_some_and(|p| p.exe == "cat")
        })
        .expect("the exec'd process is attributed to the container");
    assert_eq!(
        cat.process.as_ref().unwrap().args,
        vec!["/etc/hostname".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_filled_without_docker_events() {
    if !can_run_ebpf() {
        return;
    }
    if let Err(e) = testkit::ensure_dockerd() {
        testkit::skip(&format!("no Docker daemon: {e}"));
        return;
    }
    let image = "vigil-sensor-busybox:test";
    if let Err(e) = testkit::busybox_image(image) {
        testkit::skip(&format!("cannot build the busybox image: {e}"));
        return;
    }
    // No Docker event stream: the first events of the container find a cold cache, are held
    // while `docker inspect` runs in the background, and leave with the metadata filled in.
    let (_h, mut rx) = start_with(SensorConfig {
        backend: BackendChoice::Ebpf,
        docker_events: false,
        ..Default::default()
    })
    .await;
    let name = format!("vigil-sensor-cold-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        image,
        "sh",
        "-c",
        "cat /etc/hostname; sleep 1",
    ])
    .expect("docker run");
    let cat = wait_for(&mut rx, 10, |e| {
        e.kind == "execve"
            && e.container.as_ref().is_some_and(|c| c.id == id)
            && e.process.as_ref().is_some_and(|p| p.exe == "cat")
    })
    .await;
    let _ = docker(&["rm", "-f", &name]);
    let cat = cat.expect("execve of cat in the container");
    let c = cat.container.unwrap();
    assert_eq!(c.name, name);
    assert_eq!(c.image, image);
    assert!(c.image_id.starts_with("sha256:"), "{}", c.image_id);
}

/// Opens, renames and unlinks that the kernel filter must keep or drop (argv[1]: a file name
/// to create below /etc; argv[2]: a scratch file).
const FILE_FILTER_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 1;
    char a[256], b[256];
    snprintf(a, sizeof a, "/etc/%s", argv[1]);
    snprintf(b, sizeof b, "/etc/%s.moved", argv[1]);
    /* reads of unwatched files, one sharing its first 8 bytes with /etc/ld.so.preload */
    int fd = open("/etc/hostname", O_RDONLY); if (fd >= 0) close(fd);
    fd = open("/etc/ld.so.cache", O_RDONLY); if (fd >= 0) close(fd);
    /* a write below /etc, renamed, then removed */
    fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0600); if (fd < 0) return 2; close(fd);
    if (rename(a, b) != 0) return 3;
    if (unlink(b) != 0) return 4;
    /* renamed out of /etc into a directory named by a descriptor: the new path is relative
     * to that descriptor, not to the old one's */
    fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0600); if (fd < 0) return 9; close(fd);
    int tmp = open("/tmp", O_RDONLY | O_DIRECTORY); if (tmp < 0) return 10;
    char back[256];
    snprintf(back, sizeof back, "%s.back", argv[1]);
    if (renameat(AT_FDCWD, a, tmp, back) != 0) return 11;
    if (unlinkat(tmp, back, 0) != 0) return 12;
    /* /etc/shadow named by a string in a page not mapped yet when the open starts */
    int sfd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (sfd < 0) return 5;
    static char page[4096];
    strcpy(page, "/etc/shadow");
    if (write(sfd, page, sizeof page) != sizeof page) return 6;
    char *p = mmap(0, sizeof page, PROT_READ, MAP_PRIVATE, sfd, 0);
    if (p == MAP_FAILED) return 7;
    fd = open(p, O_RDONLY); if (fd < 0) return 8; close(fd);
    /* alive while the sensor resolves the descriptor-relative path (/proc/PID/fd) */
    usleep(300000);
    return 0;
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_file_filter_keeps_watched_paths_only() {
    if !can_run_ebpf() {
        return;
    }
    let Some(bin) = compiled(
        "vigil-file-filter",
        FILE_FILTER_C,
        "file filter test program",
    ) else {
        return;
    };
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let name = format!("vigil-filter-{}", std::process::id());
    let scratch = std::env::temp_dir().join(format!("{name}.page"));
    let child = Command::new(&bin)
        .arg(&name)
        .arg(&scratch)
        .spawn()
        .expect("runs");
    let pid = child.id();
    let st = child.wait_with_output().expect("waits").status;
    let _ = std::fs::remove_file(&scratch);
    assert!(st.success(), "test program: {st:?}");
    let evs: Vec<Event> = collect(&mut rx, 3)
        .await
        .into_iter()
        .filter(|e| e.process.as_ref().is_some_and(|p| p.pid == pid))
        .collect();
    let opened: Vec<&str> = evs
        .iter()
        .filter(|e| e.kind.starts_with("open"))
        .filter_map(|e| e.fd.as_ref().map(|f| f.path.as_str()))
        .collect();
    let created = format!("/etc/{name}");
    let moved = format!("/etc/{name}.moved");
    assert!(
        opened.contains(&created.as_str()),
        "write below /etc: {opened:?}"
    );
    assert!(
        !opened.contains(&"/etc/hostname") && !opened.contains(&"/etc/ld.so.cache"),
        "reads of unwatched files are dropped in the kernel: {opened:?}"
    );
    assert!(
        opened.contains(&"/etc/shadow"),
        "a path in a page mapped only by the open itself is read at exit: {opened:?}"
    );
    let shadow = evs
        .iter()
        .find(|e| e.fd.as_ref().is_some_and(|f| f.path == "/etc/shadow"))
        .expect("shadow open");
    assert!(shadow.res.is_some_and(|r| r >= 0), "result of the open");
    assert!(
        evs.iter().any(|e| e.kind.starts_with("rename")
            && e.args.get("oldpath") == Some(&created)
            && e.args.get("newpath") == Some(&moved)),
        "rename below /etc: {:?}",
        evs.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    assert!(
        evs.iter()
            .any(|e| e.kind.starts_with("unlink") && e.args.get("path") == Some(&moved)),
        "unlink below /etc"
    );
    let back = format!("/tmp/{name}.back");
    assert!(
        evs.iter().any(|e| e.kind == "renameat"
            && e.args.get("oldpath") == Some(&created)
            && e.args.get("newpath") == Some(&back)),
        "renameat out of /etc, the new path relative to its own descriptor: {:?}",
        evs.iter()
            .filter(|e| e.kind.starts_with("rename"))
            .map(|e| &e.args)
            .collect::<Vec<_>>()
    );
}

/// Opens, renames and unlinks by relative paths (argv[1]: a file name to create below /etc;
/// argv[2]: a symlink to make in /tmp): relative to the working directory, through `..`,
/// relative to a directory descriptor, and through a symlink (named by where it leads).
const RELATIVE_OPEN_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 1;
    if (chdir("/etc") != 0) return 2;
    int fd = open("shadow", O_RDONLY); if (fd < 0) return 3; close(fd);
    fd = open("hostname", O_RDONLY); if (fd >= 0) close(fd);
    if (chdir("/tmp") != 0) return 4;
    fd = openat(AT_FDCWD, "../etc/gshadow", O_RDONLY); if (fd < 0) return 5; close(fd);
    fd = open("../etc/hostname", O_RDONLY); if (fd >= 0) close(fd);
    int etc = open("/etc", O_RDONLY | O_DIRECTORY); if (etc < 0) return 6;
    fd = openat(etc, argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600); if (fd < 0) return 7; close(fd);
    if (unlinkat(etc, argv[1], 0) != 0) return 8;
    /* a directory whose path is longer than the 16 bytes checked first */
    char dir[256];
    snprintf(dir, sizeof dir, "/etc/%s.d", argv[1]);
    if (mkdir(dir, 0700) != 0) return 11;
    if (chdir(dir) != 0) return 12;
    fd = open("f", O_WRONLY | O_CREAT | O_TRUNC, 0600); if (fd < 0) return 13; close(fd);
    fd = open("f", O_RDONLY); if (fd >= 0) close(fd);
    if (rename("f", "g") != 0) return 15;
    if (unlink("g") != 0) return 16;
    if (chdir("/tmp") != 0) return 14;
    rmdir(dir);
    if (symlink("/etc/shadow", argv[2]) != 0) return 9;
    fd = open(argv[2], O_RDONLY); if (fd < 0) return 10; close(fd);
    unlink(argv[2]);
    return 0;
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_pass_the_kernel_filter_by_the_path_they_reach() {
    if !can_run_ebpf() {
        return;
    }
    let Some(bin) = compiled(
        "vigil-relative-open",
        RELATIVE_OPEN_C,
        "relative open test program",
    ) else {
        return;
    };
    if !std::path::Path::new("/etc/gshadow").exists() {
        testkit::skip("/etc/gshadow does not exist on this host");
        return;
    }
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let name = format!("vigil-relative-{}", std::process::id());
    let link = format!("{name}.link");
    let child = Command::new(&bin)
        .arg(&name)
        .arg(&link)
        .spawn()
        .expect("runs");
    let pid = child.id();
    let st = child.wait_with_output().expect("waits").status;
    assert!(st.success(), "test program: {st:?}");
    let evs: Vec<Event> = collect(&mut rx, 3)
        .await
        .into_iter()
        .filter(|e| e.process.as_ref().is_some_and(|p| p.pid == pid))
        .collect();
    let opened: Vec<&str> = evs
        .iter()
        .filter(|e| e.kind.starts_with("open"))
        .filter_map(|e| e.fd.as_ref().map(|f| f.path.as_str()))
        .collect();
    let created_path = format!("/etc/{name}");
    let in_long_dir = format!("/etc/{name}.d/f");
    assert_eq!(
        opened,
        [
            "/etc/shadow",
            "/etc/gshadow",
            created_path.as_str(),
            in_long_dir.as_str(),
            "/etc/shadow"
        ],
        "relative opens of watched files, in order (the last through a symlink in /tmp); \
         reads of unwatched ones dropped"
    );
    let created = evs
        .iter()
        .find(|e| e.fd.as_ref().is_some_and(|f| f.path == created_path))
        .expect("the create below /etc");
    assert!(
        created
            .args
            .get("flags")
            .is_some_and(|f| f.contains("O_CREAT")),
        "{created:?}"
    );
    assert!(created.res.is_some_and(|r| r >= 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_syscall_events_processes_are_still_seen() {
    if !can_run_ebpf() {
        return;
    }
    let (_h, mut rx) = start_with(SensorConfig {
        backend: BackendChoice::Ebpf,
        syscall_events: false,
        docker_events: false,
        ..Default::default()
    })
    .await;
    let marker = format!("vigil-nosys-{}", std::process::id());
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "cat /etc/shadow >/dev/null; echo {marker} >/dev/null"
        ))
        .spawn()
        .expect("sh runs");
    let sh = child.id();
    assert!(child.wait_with_output().expect("waits").status.success());
    let evs = collect(&mut rx, 3).await;
    let cat = evs
        .iter()
        .find(|e| {
            e.kind == "execve"
                && e.process
                    .as_ref()
                    .is_some_and(|p| p.name == "cat" && p.ppid == sh)
        })
        .expect("the exec of cat, with its parent");
    let cat_pid = cat.process.as_ref().map(|p| p.pid);
    assert!(
        !evs.iter()
            .any(|e| e.kind.starts_with("open") && e.process.as_ref().map(|p| p.pid) == cat_pid),
        "no open events without syscall tracing"
    );
}

/// With an interest set (what `vigil up` derives from its rules), only events of those types
/// arrive, yet they still carry the process, its arguments and its parent chain: fork, exec
/// and exit keep the process table without becoming events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interest_set_limits_the_event_types_but_keeps_the_process_table() {
    if !can_run_ebpf() {
        return;
    }
    let (_h, mut rx) = start_with(SensorConfig {
        backend: BackendChoice::Ebpf,
        docker_events: false,
        event_types: Some(vec!["openat".into(), "open".into()]),
        ..Default::default()
    })
    .await;
    let marker = format!("vigil-interest-{}", std::process::id());
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("cat /etc/shadow {marker} >/dev/null 2>&1; true"))
        .spawn()
        .expect("sh runs");
    let sh = child.id();
    let _ = child.wait_with_output().expect("waits");
    let evs = collect(&mut rx, 3).await;
    assert!(
        evs.iter().all(|e| e.kind == "openat" || e.kind == "open"),
        "only the wanted types: {:?}",
        evs.iter().map(|e| &*e.kind).collect::<Vec<_>>()
    );
    let open = evs
        .iter()
        .find(|e| e.fd.as_ref().is_some_and(|f| f.path == "/etc/shadow"))
        .expect("the open of /etc/shadow");
    let p = open.process.as_ref().expect("process");
    assert_eq!(p.name, "cat");
    assert!(
        p.args.iter().any(|a| a == &marker),
        "argv from the table: {:?}",
        p.args
    );
    assert_eq!(p.ppid, sh);
    assert_eq!(p.ancestors.first().map(|a| a.name.as_str()), Some("sh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_connect_carries_both_ends() {
    if !can_run_ebpf() {
        return;
    }
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        testkit::skip("no IPv6 loopback (::1) on this host");
        return;
    };
    let port = listener.local_addr().expect("local addr").port();
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    // The connect comes from another process (the sensor ignores its own); bash's /dev/tcp
    // resolves `::1` to an IPv6 socket.
    let accepter = std::thread::spawn(move || listener.accept().map(|(_, peer)| peer));
    let status = Command::new("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/::1/{port}")])
        .status()
        .expect("bash");
    assert!(status.success(), "bash connected to [::1]:{port}");
    let peer = accepter.join().expect("accept thread").expect("accepted");
    let conn = wait_for(&mut rx, 5, |e| {
        e.kind == "connect" && e.fd.as_ref().is_some_and(|f| f.sport == Some(port))
    })
    .await
    .expect("IPv6 connect event");
    let fd = conn.fd.as_ref().unwrap();
    let lo6: std::net::IpAddr = "::1".parse().unwrap();
    assert_eq!(fd.typechar, '6', "{conn:?}");
    assert_eq!(fd.l4proto, "tcp");
    assert_eq!(fd.sip, Some(lo6));
    assert_eq!(fd.cip, Some(lo6), "local address read from the socket");
    assert_eq!(
        fd.cport,
        Some(peer.port()),
        "client port as the listener saw it"
    );
    assert_eq!(conn.res, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_connect_carries_its_path() {
    if !can_run_ebpf() {
        return;
    }
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    // busybox's logger connects a datagram socket to /dev/log (whether or not a syslog daemon
    // listens there: the connect is reported with its result either way).
    let Ok(child) = Command::new("busybox").args(["logger", "vigil"]).spawn() else {
        testkit::skip("busybox is not installed (scripts/deps.sh --test installs it)");
        return;
    };
    let pid = child.id();
    let out = child.wait_with_output().expect("logger");
    assert!(out.status.success());
    let conn = wait_for(&mut rx, 5, |e| {
        e.kind == "connect"
            && e.process.as_ref().is_some_and(|p| p.pid == pid)
            && e.fd.as_ref().is_some_and(|f| f.path == "/dev/log")
    })
    .await
    .expect("connect of busybox logger to /dev/log");
    let fd = conn.fd.as_ref().unwrap();
    assert_eq!(fd.typechar, 'u', "{conn:?}");
    assert_eq!(fd.path, "/dev/log");
    assert!(!fd.local_is_server);
    if !std::path::Path::new("/dev/log").exists() {
        assert_eq!(conn.res, Some(-2), "ENOENT: nothing listens at /dev/log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connect_still_names_the_server_it_tried() {
    if !can_run_ebpf() {
        return;
    }
    // A port nobody listens on: bound, then closed again.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (_h, mut rx) = start(BackendChoice::Ebpf).await;
    let child = Command::new("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
        .spawn()
        .expect("bash");
    let pid = child.id();
    let out = child.wait_with_output().expect("bash");
    assert!(!out.status.success(), "nothing listens on {port}");
    // bash may first connect a unix socket (nscd, while it looks up its user): the attempt
    // sought here is the TCP one.
    let conn = wait_for(&mut rx, 5, |e| {
        e.kind == "connect"
            && e.process.as_ref().is_some_and(|p| p.pid == pid)
            && e.fd.as_ref().is_some_and(|f| f.typechar == '4')
    })
    .await
    .expect("TCP connect event of the refused attempt");
    assert_eq!(conn.res, Some(-111), "ECONNREFUSED: {conn:?}");
    let fd = conn.fd.as_ref().unwrap();
    assert_eq!(fd.typechar, '4');
    assert_eq!(fd.l4proto, "tcp");
    assert_eq!(fd.sip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(
        fd.sport,
        Some(port),
        "the port it tried, though no peer is left"
    );
}

/// Unlinks argv[1] (an unwatched path that does not exist) argv[2] times, then opens
/// /etc/shadow.
const UNLINK_STORM_C: &str = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 1;
    int n = atoi(argv[2]);
    for (int i = 0; i < n; i++)
        if (unlink(argv[1]) == 0) return 2;
    int fd = open("/etc/shadow", O_RDONLY); if (fd < 0) return 4; close(fd);
    return 0;
}
"#;

/// An unlink is checked after its path is read into a reserved record, which an unwatched path
/// gives back. Given-back records keep their room until the reader passes them, and the reader,
/// seeing no records, sleeps: the kernel must wake it before they fill the ring, or the records
/// that are wanted find no room. 200k unlinks give back about 144 MB within a fraction of a
/// second; the ring holds 16 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinks_of_unwatched_files_never_fill_the_ring() {
    if !can_run_ebpf() {
        return;
    }
    let Some(bin) = compiled("vigil-unlink-storm", UNLINK_STORM_C, "unlink storm program") else {
        return;
    };
    let (h, mut rx) = start_with(SensorConfig {
        backend: BackendChoice::Ebpf,
        docker_events: false,
        ..Default::default()
    })
    .await;
    // Let the reader fall asleep first (nothing wanted happens for a drain interval).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let scratch = std::env::temp_dir().join(format!("vigil-unlink-storm-{}", std::process::id()));
    let child = Command::new(&bin)
        .arg(&scratch)
        .arg("200000")
        .spawn()
        .expect("runs");
    let pid = child.id();
    let st = child.wait_with_output().expect("waits").status;
    assert!(st.success(), "storm program: {st:?}");
    let shadow = wait_for(&mut rx, 5, |e| {
        e.process.as_ref().is_some_and(|p| p.pid == pid)
            && e.fd.as_ref().is_some_and(|f| f.path == "/etc/shadow")
    })
    .await;
    let s = h.stats();
    assert_eq!(s.ring_drops, 0, "{s:?}");
    assert!(shadow.is_some(), "the open after the storm arrives: {s:?}");
}
