//! Guardrails: never act on Vigil itself, protected targets, rate limits, cooldowns.

use crate::matcher::glob_match;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The label that protects a container or image from every action except evidence collection.
pub const PROTECT_LABEL: &str = "vigil.protect";

/// Default: at most this many destructive actions per minute in total.
pub const DEFAULT_MAX_PER_MINUTE: u32 = 60;
/// Default: at most this many destructive actions per minute for one incident.
pub const DEFAULT_MAX_PER_INCIDENT_PER_MINUTE: u32 = 20;

/// Guardrail settings (the `response.guardrails` config section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Glob patterns of container names (or ids) never acted on.
    pub protect_containers: Vec<String>,
    /// Glob patterns of images (`repo:tag`) never acted on, nor their containers.
    pub protect_images: Vec<String>,
    /// Glob patterns of Kubernetes namespaces never acted on.
    pub protect_namespaces: Vec<String>,
    /// Destructive actions allowed per minute in total (default 60).
    pub max_actions_per_minute: u32,
    /// Destructive actions allowed per minute for one incident (default 20).
    pub max_actions_per_incident_per_minute: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            protect_containers: Vec::new(),
            protect_images: Vec::new(),
            protect_namespaces: vec!["kube-system".into()],
            max_actions_per_minute: DEFAULT_MAX_PER_MINUTE,
            max_actions_per_incident_per_minute: DEFAULT_MAX_PER_INCIDENT_PER_MINUTE,
        }
    }
}

/// Whether an action kind changes or destroys a workload (counted by the rate limits).
pub fn is_destructive(kind: &str) -> bool {
    !matches!(kind, "evidence" | "block_image" | "unpause")
}

/// Whether an action kind contains a threat (its success can mark an incident contained).
pub fn is_containment(kind: &str) -> bool {
    !matches!(kind, "evidence" | "unpause" | "restart")
}

/// Who Vigil is: its own pid and, when it runs in a container, that container's id.
#[derive(Debug, Clone, Default)]
pub struct SelfIdentity {
    /// Vigil's pid.
    pub pid: u32,
    /// Vigil's container id (64 hex), when in a container.
    pub container_id: Option<String>,
}

impl SelfIdentity {
    /// Reads `/proc/self/cgroup` (and `/proc/self/mountinfo` as a fallback) for a container id.
    pub fn detect() -> Self {
        let from = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|t| find_container_id(&t))
        };
        SelfIdentity {
            pid: std::process::id(),
            container_id: from("/proc/self/cgroup").or_else(|| {
                // mountinfo shows /var/lib/docker/containers/<id>/… for /etc/hostname etc.
                std::fs::read_to_string("/proc/self/mountinfo")
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .filter(|l| l.contains("/containers/"))
                            .find_map(find_container_id)
                    })
            }),
        }
    }

    /// Whether a container id (full or a prefix of at least 12) is Vigil's own.
    pub fn is_own_container(&self, id: &str) -> bool {
        match &self.container_id {
            Some(own) => !id.is_empty() && (own.starts_with(id) || id.starts_with(own.as_str())),
            None => false,
        }
    }
}

/// Finds the first 64-hex container id in cgroup/mountinfo text (`docker-<id>.scope`,
/// `/docker/<id>`, `cri-containerd-<id>.scope`, `/containers/<id>/`).
pub fn find_container_id(text: &str) -> Option<String> {
    for line in text.lines() {
        let bytes = line.as_bytes();
        let mut run = 0usize;
        for (i, b) in bytes.iter().enumerate() {
            if b.is_ascii_hexdigit() && !b.is_ascii_uppercase() {
                run += 1;
                let next_hex = bytes
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_hexdigit() && !n.is_ascii_uppercase());
                if run == 64 && !next_hex {
                    let start = i + 1 - 64;
                    let before_ok = start == 0 || matches!(bytes[start - 1], b'/' | b'-');
                    if before_ok {
                        return Some(line[start..=i].to_string());
                    }
                }
            } else {
                run = 0;
            }
        }
    }
    None
}

/// Rate limits and cooldowns; shared by every action the engine takes.
#[derive(Debug)]
pub struct Limiter {
    per_minute: u32,
    per_incident: u32,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    global: VecDeque<Instant>,
    incidents: HashMap<i64, VecDeque<Instant>>,
    cooldowns: HashMap<(String, String), Instant>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Limiter {
    /// A limiter with the configured limits.
    pub fn new(cfg: &GuardConfig) -> Self {
        Limiter {
            per_minute: cfg.max_actions_per_minute,
            per_incident: cfg.max_actions_per_incident_per_minute,
            state: Mutex::new(LimiterState::default()),
        }
    }

    /// Takes one destructive-action slot; `Err` says which limit is reached.
    pub fn acquire(&self, incident: Option<i64>) -> Result<(), String> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let prune = |q: &mut VecDeque<Instant>| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                q.pop_front();
            }
        };
        prune(&mut st.global);
        if st.global.len() >= self.per_minute as usize {
            return Err(format!(
                "rate limit: at most {} destructive actions per minute in total",
                self.per_minute
            ));
        }
        if let Some(id) = incident {
            let q = st.incidents.entry(id).or_default();
            prune(q);
            if q.len() >= self.per_incident as usize {
                return Err(format!(
                    "rate limit: at most {} destructive actions per minute for incident {id}",
                    self.per_incident
                ));
            }
            q.push_back(now);
        }
        st.global.push_back(now);
        Ok(())
    }

    /// Starts a policy's run on a target unless it ran there within `cooldown`; returns whether
    /// it may run (and then records the start).
    pub fn try_cooldown(&self, policy: &str, key: &str, cooldown: Duration) -> bool {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let k = (policy.to_string(), key.to_string());
        if let Some(t) = st.cooldowns.get(&k)
            && now.duration_since(*t) < cooldown
        {
            return false;
        }
        st.cooldowns.insert(k, now);
        if st.cooldowns.len() > 10_000 {
            st.cooldowns
                .retain(|_, t| now.duration_since(*t) < Duration::from_secs(86_400));
        }
        true
    }
}

/// Whether a container (by name, id, image, labels, namespace) is protected by configuration or
/// label; `Some(reason)` when it is.
pub fn protection_reason(
    cfg: &GuardConfig,
    name: &str,
    id: &str,
    image: &str,
    labels: &HashMap<String, String>,
    namespace: Option<&str>,
) -> Option<String> {
    if labels
        .get(PROTECT_LABEL)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Some(format!("protected by label {PROTECT_LABEL}=true"));
    }
    let name = name.trim_start_matches('/');
    if let Some(p) = cfg
        .protect_containers
        .iter()
        .find(|p| glob_match(p, name) || glob_match(p, id))
    {
        return Some(format!("container {name} is protected by pattern {p:?}"));
    }
    if let Some(p) = image_protected(cfg, image) {
        return Some(p);
    }
    if let Some(ns) = namespace
        && let Some(p) = cfg.protect_namespaces.iter().find(|p| glob_match(p, ns))
    {
        return Some(format!("namespace {ns} is protected by pattern {p:?}"));
    }
    None
}

/// Whether an image is protected by a configured pattern.
pub fn image_protected(cfg: &GuardConfig, image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let with_tag = if image.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    cfg.protect_images
        .iter()
        .find(|p| glob_match(p, image) || glob_match(p, &with_tag))
        .map(|p| format!("image {image} is protected by pattern {p:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";

    #[test]
    fn container_id_from_cgroup_and_mountinfo() {
        assert_eq!(
            find_container_id(&format!("0::/system.slice/docker-{ID}.scope\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(
            find_container_id(&format!("12:pids:/docker/{ID}\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(
            find_container_id(&format!(
                "1 2 8:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw\n"
            ))
            .as_deref(),
            Some(ID)
        );
        assert_eq!(find_container_id("0::/user.slice/session-1.scope\n"), None);
        let me = SelfIdentity {
            pid: 1,
            container_id: Some(ID.into()),
        };
        assert!(me.is_own_container(&ID[..12]));
        assert!(!me.is_own_container("aaaaaaaaaaaa"));
    }

    #[test]
    fn rate_limits_per_incident_and_global() {
        let l = Limiter::new(&GuardConfig {
            max_actions_per_minute: 3,
            max_actions_per_incident_per_minute: 2,
            ..Default::default()
        });
        assert!(l.acquire(Some(1)).is_ok());
        assert!(l.acquire(Some(1)).is_ok());
        assert!(l.acquire(Some(1)).unwrap_err().contains("incident 1"));
        assert!(l.acquire(Some(2)).is_ok());
        assert!(l.acquire(Some(3)).unwrap_err().contains("in total"));
    }

    #[test]
    fn cooldown_per_policy_and_target() {
        let l = Limiter::new(&GuardConfig::default());
        let d = Duration::from_secs(60);
        assert!(l.try_cooldown("p", "container:a", d));
        assert!(!l.try_cooldown("p", "container:a", d));
        assert!(l.try_cooldown("q", "container:a", d));
        assert!(l.try_cooldown("p", "container:b", d));
        assert!(l.try_cooldown("p", "container:c", Duration::ZERO));
        assert!(l.try_cooldown("p", "container:c", Duration::ZERO));
    }

    #[test]
    fn protection() {
        let cfg = GuardConfig {
            protect_containers: vec!["vigil*".into()],
            protect_images: vec!["postgres:*".into()],
            ..Default::default()
        };
        let none = HashMap::new();
        assert!(protection_reason(&cfg, "/vigil-up", "x", "a:1", &none, None).is_some());
        assert!(protection_reason(&cfg, "db", "x", "postgres", &none, None).is_some());
        assert!(protection_reason(&cfg, "m", "x", "a:1", &none, Some("kube-system")).is_some());
        let lbl = HashMap::from([(PROTECT_LABEL.to_string(), "true".to_string())]);
        assert!(
            protection_reason(&cfg, "m", "x", "a:1", &lbl, None)
                .unwrap()
                .contains("label")
        );
        assert!(protection_reason(&cfg, "miner", "x", "evil:1", &none, None).is_none());
    }
}
