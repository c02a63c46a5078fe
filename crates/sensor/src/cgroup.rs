//! cgroup paths to container ids.
//!
//! Layouts recognised (cgroup v1 and v2):
//! - Docker, cgroupfs driver: `/docker/<id>`; systemd driver: `/system.slice/docker-<id>.scope`
//! - containerd (CRI): `/kubepods/<qos>/pod<uid>/<id>`,
//!   `/kubepods.slice/…/cri-containerd-<id>.scope`, `…:cri-containerd:<id>`
//! - CRI-O: `…/crio-<id>.scope` (but not `crio-conmon-<id>.scope`, the monitor)
//! - Podman: `libpod-<id>.scope`
//!
//! A container with nested cgroups (systemd in a container: `/docker/<id>/init.scope`) is found
//! by looking at every component from the leaf up.

use std::path::Path;

/// Which cgroup hierarchy carries container membership on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Unified hierarchy only (`/sys/fs/cgroup/cgroup.controllers` exists).
    V2,
    /// Legacy or hybrid: the v1 `memory` controller's hierarchy is used.
    V1,
}

impl CgroupMode {
    /// Detects the mode of the running host.
    pub fn detect() -> CgroupMode {
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            CgroupMode::V2
        } else {
            CgroupMode::V1
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The container id in one cgroup path component, if it names a container.
pub fn id_from_component(c: &str) -> Option<String> {
    if c.starts_with("crio-conmon-") {
        return None;
    }
    // `kubepods-…-pod….slice:cri-containerd:<id>` (containerd, systemd driver on v1)
    let c = c.rsplit(':').next().unwrap_or(c);
    let c = c.strip_suffix(".scope").unwrap_or(c);
    let c = [
        "docker-",
        "cri-containerd-",
        "crio-",
        "libpod-",
        "containerd-",
    ]
    .iter()
    .find_map(|p| c.strip_prefix(p))
    .unwrap_or(c);
    is_hex64(c).then(|| c.to_string())
}

/// The container id of a cgroup path (`/docker/<id>`, …), looking from the leaf up.
pub fn id_from_path(path: &str) -> Option<String> {
    path.rsplit('/').find_map(id_from_component)
}

/// The cgroup path of `pid` in the hierarchy `mode` uses, from `/proc/<pid>/cgroup`.
pub fn proc_cgroup_path(pid: u32, mode: CgroupMode) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    pick_line(&text, mode)
}

/// Picks the relevant path out of a `/proc/<pid>/cgroup` text.
pub fn pick_line(text: &str, mode: CgroupMode) -> Option<String> {
    let mut unified = None;
    let mut memory = None;
    let mut any_with_id = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            unified = Some(path.to_string());
        } else if ctrls.split(',').any(|c| c == "memory") {
            memory = Some(path.to_string());
        }
        if any_with_id.is_none() && id_from_path(path).is_some() {
            any_with_id = Some(path.to_string());
        }
    }
    match mode {
        CgroupMode::V2 => unified.or(any_with_id),
        CgroupMode::V1 => memory.or(any_with_id).or(unified),
    }
}

/// The container id of a running process, from its cgroups.
pub fn container_of_pid(pid: u32, mode: CgroupMode) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    if let Some(p) = pick_line(&text, mode)
        && let Some(id) = id_from_path(&p)
    {
        return Some(id);
    }
    // Any hierarchy that names a container will do.
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(id_from_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f9a1c0d2b7e4f5a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

    #[test]
    fn layouts() {
        for p in [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
            format!("/kubepods/besteffort/pod1234-5678/{ID}"),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/cri-containerd-{ID}.scope"
            ),
            format!(
                "/system.slice/containerd.service/kubepods-besteffort-podabc.slice:cri-containerd:{ID}"
            ),
            format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/docker/{ID}/init.scope"),
        ] {
            assert_eq!(id_from_path(&p).as_deref(), Some(ID), "{p}");
        }
        assert_eq!(
            id_from_path("/user.slice/user-0.slice/session-1.scope"),
            None
        );
        assert_eq!(
            id_from_path(&format!("/kubepods.slice/crio-conmon-{ID}.scope")),
            None
        );
        assert_eq!(id_from_path("/"), None);
    }

    #[test]
    fn proc_cgroup_lines() {
        let text = format!(
            "12:pids:/docker/{ID}\n5:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        assert_eq!(
            pick_line(&text, CgroupMode::V1),
            Some(format!("/docker/{ID}"))
        );
        assert_eq!(pick_line(&text, CgroupMode::V2), Some("/".to_string()));
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(
            pick_line(&v2, CgroupMode::V2)
                .and_then(|p| id_from_path(&p))
                .as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn own_process_has_a_cgroup() {
        assert!(proc_cgroup_path(std::process::id(), CgroupMode::detect()).is_some());
    }
}
