//! Test support for Vigil's integration tests.
//!
//! Tests use real components: a Docker daemon, PostgreSQL, static binaries in locally built
//! images. This crate starts what is missing and, where something cannot exist on the machine,
//! lets a test skip with a printed reason — except under `VIGIL_REQUIRE_INTEGRATION=1` (CI), where
//! a skip is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether integration tests must run (CI sets `VIGIL_REQUIRE_INTEGRATION=1`).
pub fn integration_required() -> bool {
    std::env::var("VIGIL_REQUIRE_INTEGRATION")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Skips the calling test with a reason: prints `SKIP: reason`, and panics when integration
/// tests are required, so that a skip in CI fails the run.
pub fn skip(reason: &str) {
    if integration_required() {
        panic!("integration test cannot run (VIGIL_REQUIRE_INTEGRATION=1): {reason}");
    }
    eprintln!("SKIP: {reason}");
}

/// Finds an executable on `PATH` (and in `/usr/sbin`, `/sbin`).
pub fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

/// A free TCP port on 127.0.0.1 (free when asked; another process may take it later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Whether we run as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn docker_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static DOCKERD: Mutex<()> = Mutex::new(());

/// Makes sure a Docker daemon answers on `/var/run/docker.sock`, starting Debian's `dockerd`
/// in the background when it is installed and we are root.
pub fn ensure_dockerd() -> Result<(), String> {
    let _guard = DOCKERD.lock().unwrap_or_else(|e| e.into_inner());
    if which("docker").is_none() {
        return Err("the docker client is not installed (apt-get install docker.io)".into());
    }
    if docker_answers() {
        return Ok(());
    }
    let dockerd = which("dockerd").ok_or("dockerd is not installed (apt-get install docker.io)")?;
    if !is_root() {
        return Err("dockerd is not running and only root can start it".into());
    }
    let log = std::fs::File::create("/tmp/vigil-testkit-dockerd.log").map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    Command::new(dockerd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start dockerd: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if docker_answers() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err("dockerd did not answer within 60 s (see /tmp/vigil-testkit-dockerd.log)".into())
}

fn cache_dir() -> PathBuf {
    let d = std::env::temp_dir().join("vigil-testkit");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Compiles a C program with `cc -static -O2` into a cached directory and returns the binary.
/// Recompiles only when the source changed.
pub fn compile_static_c(name: &str, c_source: &str) -> Result<PathBuf, String> {
    let dir = cache_dir().join("bin");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    let unchanged = std::fs::read_to_string(&src).is_ok_and(|s| s == c_source) && bin.is_file();
    if unchanged {
        return Ok(bin);
    }
    let cc = which("cc")
        .or_else(|| which("gcc"))
        .ok_or("no C compiler (cc) on PATH")?;
    let tmp_src = dir.join(format!("{name}.{}.c", std::process::id()));
    std::fs::write(&tmp_src, c_source).map_err(|e| e.to_string())?;
    let tmp_bin = dir.join(format!("{name}.{}", std::process::id()));
    run(Command::new(cc)
        .args(["-static", "-O2", "-o"])
        .arg(&tmp_bin)
        .arg(&tmp_src))?;
    std::fs::rename(&tmp_bin, &bin).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp_src, &src).map_err(|e| e.to_string())?;
    Ok(bin)
}

static IMAGES: Mutex<()> = Mutex::new(());

/// Builds a local Docker image (no registry) from host files placed at the given in-image
/// paths, with `CMD` set to `cmd`, via `docker import`. Rebuilt every call, so the image always
/// holds the given files; containers from an older image of the tag keep theirs.
pub fn import_image(tag: &str, files: &[(&Path, &str)], cmd: &[&str]) -> Result<(), String> {
    let _guard = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    ensure_dockerd()?;
    let root = cache_dir().join(format!("rootfs-{}-{}", sanitize(tag), std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "tmp", "etc", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n").map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n")
        .map_err(|e| e.to_string())?;
    for (host, inside) in files {
        let dest = root.join(inside.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::copy(host, &dest)
            .map_err(|e| format!("copy {} -> {}: {e}", host.display(), dest.display()))?;
    }
    let tar = root.with_extension("tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."))?;
    let cmd_json = format!(
        "CMD [{}]",
        cmd.iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let result = run(Command::new("docker")
        .args(["import", "-c", &cmd_json])
        .arg(&tar)
        .arg(tag));
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&tar);
    result.map(|_| ())
}

/// The busybox applets linked into [`busybox_image`].
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "cat", "nc", "sleep", "wget", "echo", "ls", "ps", "id", "cp", "mv", "rm", "mkdir",
    "chmod", "touch", "head", "tail", "grep", "sed", "env", "true", "false", "kill", "top",
    "whoami",
];

/// Builds an image `tag` with Debian's static busybox (`apt-get install busybox-static`) as
/// `/bin/busybox`, its common applets linked in `/bin` (see [`BUSYBOX_APPLETS`]), `CMD /bin/sh`.
pub fn busybox_image(tag: &str) -> Result<(), String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or("busybox is not installed (apt-get install busybox-static)")?;
    let static_ok = run(Command::new("file").arg(busybox))
        .map(|s| s.contains("static"))
        .unwrap_or(true);
    if !static_ok {
        return Err(
            "/bin/busybox is not statically linked (apt-get install busybox-static)".into(),
        );
    }
    let _guard = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    ensure_dockerd()?;
    let root = cache_dir().join(format!("rootfs-{}-{}", sanitize(tag), std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "tmp", "etc", "proc", "sys", "dev", "usr/bin"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n").map_err(|e| e.to_string())?;
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n")
        .map_err(|e| e.to_string())?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    for applet in BUSYBOX_APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| e.to_string())?;
    }
    let tar = root.with_extension("tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."))?;
    let result = run(Command::new("docker")
        .args(["import", "-c", "CMD [\"/bin/sh\"]"])
        .arg(&tar)
        .arg(tag));
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&tar);
    result.map(|_| ())
}

fn sanitize(tag: &str) -> String {
    tag.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A private PostgreSQL server for one test; stopped and deleted on drop.
pub struct Pg {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl Pg {
    /// Connection URL: `postgres://vigil@127.0.0.1:PORT/vigil`.
    pub fn url(&self) -> String {
        format!("postgres://vigil@127.0.0.1:{}/vigil", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGINT = fast shutdown.
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Starts a private PostgreSQL cluster (Debian's `postgresql`) on a free loopback port in a
/// temporary directory, with a trusted superuser `vigil` and a database `vigil`. As root the
/// server runs as the `postgres` user.
pub fn postgres() -> Result<Pg, String> {
    let bin = pg_bin_dir().ok_or("PostgreSQL is not installed (apt-get install postgresql)")?;
    let root = is_root();
    if root && run(Command::new("id").arg("postgres")).is_err() {
        return Err("user postgres does not exist (apt-get install postgresql)".into());
    }
    let dir = std::env::temp_dir().join(format!(
        "vigil-pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let as_pg = |program: &Path| -> Command {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    if root {
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
    }
    let data = dir.join("data");
    run(as_pg(&bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "vigil",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data))?;
    let port = free_port();
    let log = dir.join("server.log");
    let child = as_pg(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-k",
        ])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let mut pg = Pg {
        child: Some(child),
        dir: dir.clone(),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            drop(pg);
            return Err(format!("postgres did not become ready in 30 s: {log}"));
        }
        if let Some(c) = pg.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("postgres exited ({status}): {log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    run(Command::new(bin.join("createdb")).args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "vigil",
        "vigil",
    ]))?;
    Ok(pg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port(), 0);
    }

    #[test]
    fn which_finds_sh() {
        assert!(which("sh").is_some());
        assert!(which("definitely-not-a-binary-vigil").is_none());
    }

    #[test]
    fn postgres_starts_and_answers() {
        match postgres() {
            Ok(pg) => {
                let bin = pg_bin_dir().expect("bin dir");
                let out = Command::new(bin.join("psql"))
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &pg.port().to_string(),
                        "-U",
                        "vigil",
                        "-tAc",
                        "select 40+2",
                        "vigil",
                    ])
                    .output()
                    .expect("psql");
                assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
            }
            Err(e) => skip(&format!("PostgreSQL unavailable: {e}")),
        }
    }

    #[test]
    fn busybox_container_runs() {
        if let Err(e) = busybox_image("vigil-testkit/busybox:test") {
            skip(&format!("docker unavailable: {e}"));
            return;
        }
        let out = Command::new("docker")
            .args([
                "run",
                "--rm",
                "vigil-testkit/busybox:test",
                "sh",
                "-c",
                "echo $((6*7))",
            ])
            .output()
            .expect("docker run");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    }

    #[test]
    fn static_c_compiles_and_runs() {
        let bin = compile_static_c(
            "vigil_testkit_hello",
            "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n",
        )
        .expect("compile");
        let out = Command::new(&bin).output().expect("run");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    }
}
