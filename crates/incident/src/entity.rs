//! Affected entities: what an alert is about and what an incident touched, as comparable keys.
//!
//! See the crate documentation for the matching rules.

use model::{Assets, Labels};
use std::collections::BTreeSet;
use std::fmt;

/// A kind of entity correlation can be switched on or off for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    /// Containers: `container_id` (compared on its 12-character short form) and `container_name`.
    Container,
    /// Container images: `image`.
    Image,
    /// Kubernetes pods: `k8s_ns` / `k8s_pod`.
    Pod,
    /// Hosts: `host`, `hostname`.
    Host,
    /// Scrape targets: `instance`, and the name in front of its port.
    Instance,
}

impl EntityKind {
    /// Every kind, in the order used in messages.
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Container,
        EntityKind::Image,
        EntityKind::Pod,
        EntityKind::Host,
        EntityKind::Instance,
    ];

    /// Lower-case name (`container`, `image`, `pod`, `host`, `instance`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Container => "container",
            EntityKind::Image => "image",
            EntityKind::Pod => "pod",
            EntityKind::Host => "host",
            EntityKind::Instance => "instance",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EntityKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        let l = l.strip_suffix('s').unwrap_or(&l);
        EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == l)
            .ok_or_else(|| {
                format!(
                    "unknown entity kind {s:?}: expected container, image, pod, host or instance"
                )
            })
    }
}

/// Whether an entity is what an alert is about, or only where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The alert is about this entity (a container, an image, a scrape target, a host that is
    /// itself the problem).
    Subject,
    /// The alert happened there: the host of a container alert.
    Location,
}

/// One comparable entity key, e.g. `container_name=cadvisor`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    /// The kind of label it came from (what [`crate::CorrelationConfig::kinds`] switches).
    pub kind: EntityKind,
    /// The key, `<namespace>=<normalised value>`; equal keys name the same thing.
    pub key: String,
    /// Subject or location.
    pub role: Role,
    /// Where it came from when that is not obvious from the key (`instance cadvisor:8080`).
    pub via: Option<String>,
}

impl Entity {
    fn new(kind: EntityKind, ns: &str, value: &str, role: Role) -> Entity {
        Entity {
            kind,
            key: format!("{ns}={value}"),
            role,
            via: None,
        }
    }

    fn via(mut self, via: String) -> Entity {
        self.via = Some(via);
        self
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(v) = &self.via {
            write!(f, " (from {v})")?;
        }
        Ok(())
    }
}

/// Values that name no real entity (Falco's placeholders for host processes and unknowns).
fn is_placeholder(v: &str) -> bool {
    let v = v.trim();
    v.is_empty() || v.eq_ignore_ascii_case("host") || v == "<NA>" || v == "N/A" || v == "<none>"
}

/// Names that mean "this machine" wherever they appear and so identify nothing.
fn is_loopback(h: &str) -> bool {
    matches!(
        h.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1" | "[::1]" | "0.0.0.0" | "[::]" | "::" | "ip6-localhost"
    )
}

/// The comparable form of a container id: lower case, runtime prefix (`docker://`) dropped, cut
/// to the 12-character short id Docker and Falco show.
pub fn normalize_container_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id.rsplit("://").next().unwrap_or(id);
    if is_placeholder(id) {
        return None;
    }
    let id = id.to_ascii_lowercase();
    Some(id.chars().take(12).collect())
}

/// The comparable form of a container name: Docker's leading `/` dropped.
pub fn normalize_container_name(name: &str) -> Option<String> {
    let n = name.trim().trim_start_matches('/');
    if is_placeholder(n) {
        return None;
    }
    Some(n.to_string())
}

/// The comparable form of an image reference: lower case, Docker Hub's implicit `docker.io/` and
/// `library/` dropped, `:latest` added when there is neither tag nor digest.
pub fn normalize_image(image: &str) -> Option<String> {
    let i = image.trim();
    if is_placeholder(i) {
        return None;
    }
    let mut i = i.to_ascii_lowercase();
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = i.strip_prefix(prefix) {
            i = rest.to_string();
            break;
        }
    }
    if let Some(rest) = i.strip_prefix("library/") {
        i = rest.to_string();
    }
    let last = i.rsplit('/').next().unwrap_or(&i);
    if !last.contains(':') && !i.contains('@') {
        i.push_str(":latest");
    }
    Some(i)
}

/// The host part of an `instance` (`cadvisor:8080` → `cadvisor`, `[::1]:9090` → `::1`,
/// `http://node:9100/metrics` → `node`), or `None` when it is a loopback name.
pub fn instance_host(instance: &str) -> Option<String> {
    let s = instance.trim();
    let s = s.split_once("://").map_or(s, |(_, r)| r);
    let s = s.split('/').next().unwrap_or(s);
    let s = s.rsplit_once('@').map_or(s, |(_, r)| r);
    let host = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if s.matches(':').count() == 1 {
        s.split(':').next().unwrap_or(s)
    } else {
        s
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() || is_loopback(&host) {
        return None;
    }
    Some(host)
}

/// The entities of an alert, from its labels.
///
/// - `container_id` → `container_id=<12 chars>`, `container_name` → `container_name=<name>`,
///   `image` → `image=<normalised>`, `k8s_ns`+`k8s_pod` → `pod=<ns>/<pod>` (namespace `default`
///   when absent), `instance` → `instance=<instance>`: all subjects.
/// - The host part of `instance` (unless loopback) → `container_name=<h>` and `host=<h>`, subjects:
///   a scrape target is a container or a machine of that name.
/// - `host` / `hostname` → `host=<h>`: subject when the alert names no container, image or pod,
///   otherwise location.
pub fn alert_entities(labels: &Labels) -> Vec<Entity> {
    use EntityKind as K;
    let mut out = Vec::new();
    if let Some(id) = labels.get("container_id").and_then(normalize_container_id) {
        out.push(Entity::new(
            K::Container,
            "container_id",
            &id,
            Role::Subject,
        ));
    }
    if let Some(n) = labels
        .get("container_name")
        .and_then(normalize_container_name)
    {
        out.push(Entity::new(
            K::Container,
            "container_name",
            &n,
            Role::Subject,
        ));
    }
    if let Some(i) = labels.get("image").and_then(normalize_image) {
        out.push(Entity::new(K::Image, "image", &i, Role::Subject));
    }
    if let Some(p) = labels.get("k8s_pod").filter(|p| !is_placeholder(p)) {
        let ns = labels
            .get("k8s_ns")
            .filter(|n| !is_placeholder(n))
            .unwrap_or("default");
        out.push(Entity::new(
            K::Pod,
            "pod",
            &format!("{ns}/{p}"),
            Role::Subject,
        ));
    }
    let host_role = if out.is_empty() {
        Role::Subject
    } else {
        Role::Location
    };
    for label in ["host", "hostname"] {
        if let Some(h) = labels.get(label).filter(|h| !is_placeholder(h)) {
            let h = h.trim().to_ascii_lowercase();
            if !is_loopback(&h) {
                out.push(Entity::new(K::Host, "host", &h, host_role));
            }
        }
    }
    if let Some(inst) = labels.get("instance").filter(|i| !i.trim().is_empty()) {
        out.extend(instance_entities(inst));
    }
    if let Some(name) = labels.get("alertname").filter(|n| !n.trim().is_empty()) {
        let hosts: Vec<String> = out
            .iter()
            .filter(|e| e.kind == K::Host && e.role == Role::Location)
            .map(|e| e.key.trim_start_matches("host=").to_string())
            .collect();
        for h in hosts {
            out.push(campaign_entity(name, &h));
        }
    }
    dedup(out)
}

/// The same detection (`alertname`) repeated on the same host: `rule=<alertname>@<host>`, a
/// subject. Container alerts on one host that come from the same rule within the window are one
/// campaign (a payload script starting several miner containers), so they join one incident.
pub fn campaign_entity(alertname: &str, host: &str) -> Entity {
    Entity::new(
        EntityKind::Host,
        "rule",
        &format!("{}@{}", alertname.trim(), host.trim().to_ascii_lowercase()),
        Role::Subject,
    )
}

/// The campaign entities of an incident: every rule that joined it on every host it touched.
pub fn incident_campaign_entities(incident: &model::Incident) -> Vec<Entity> {
    let mut out = Vec::new();
    for h in &incident.assets.hosts {
        if is_placeholder(h) || is_loopback(&h.trim().to_ascii_lowercase()) {
            continue;
        }
        for r in &incident.rules {
            out.push(campaign_entity(r, h));
        }
    }
    out
}

fn instance_entities(inst: &str) -> Vec<Entity> {
    let inst = inst.trim();
    let mut out = vec![Entity::new(
        EntityKind::Instance,
        "instance",
        inst,
        Role::Subject,
    )];
    if let Some(h) = instance_host(inst) {
        let via = format!("instance {inst}");
        out.push(
            Entity::new(EntityKind::Instance, "container_name", &h, Role::Subject).via(via.clone()),
        );
        out.push(Entity::new(EntityKind::Instance, "host", &h, Role::Subject).via(via));
    }
    out
}

/// Keeps the first of equal keys, preferring a subject over a location.
fn dedup(mut v: Vec<Entity>) -> Vec<Entity> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    v.sort_by_key(|e| e.role);
    v.retain(|e| seen.insert(e.key.clone()));
    v
}

/// Splits a container asset (`name (short id)`, an id alone, or a name alone) into name and id.
fn parse_container_asset(s: &str) -> (Option<String>, Option<String>) {
    let s = s.trim();
    if let Some(open) = s.rfind(" (")
        && s.ends_with(')')
    {
        let name = &s[..open];
        let id = &s[open + 2..s.len() - 1];
        return (normalize_container_name(name), normalize_container_id(id));
    }
    let hex = s.len() >= 12 && s.chars().all(|c| c.is_ascii_hexdigit());
    if hex {
        (None, normalize_container_id(s))
    } else {
        (normalize_container_name(s), None)
    }
}

/// The entities of an incident, derived from its [`Assets`]: the same keys its alerts produced.
///
/// Hosts are subjects when the incident touched no container, image or pod (a host-level
/// incident), otherwise locations. Every service is taken as an `instance`.
pub fn incident_entities(assets: &Assets) -> Vec<Entity> {
    use EntityKind as K;
    let mut out = Vec::new();
    for c in &assets.containers {
        let (name, id) = parse_container_asset(c);
        if let Some(id) = id {
            out.push(Entity::new(
                K::Container,
                "container_id",
                &id,
                Role::Subject,
            ));
        }
        if let Some(n) = name {
            out.push(Entity::new(
                K::Container,
                "container_name",
                &n,
                Role::Subject,
            ));
        }
    }
    for i in &assets.images {
        if let Some(i) = normalize_image(i) {
            out.push(Entity::new(K::Image, "image", &i, Role::Subject));
        }
    }
    for p in &assets.pods {
        let p = if p.contains('/') {
            p.clone()
        } else {
            format!("default/{p}")
        };
        out.push(Entity::new(K::Pod, "pod", &p, Role::Subject));
    }
    let host_role = if out.is_empty() {
        Role::Subject
    } else {
        Role::Location
    };
    for h in &assets.hosts {
        let h = h.trim().to_ascii_lowercase();
        if !is_placeholder(&h) && !is_loopback(&h) {
            out.push(Entity::new(K::Host, "host", &h, host_role));
        }
    }
    for s in &assets.services {
        out.extend(instance_entities(s));
    }
    dedup(out)
}

/// The assets an alert names, as they appear in an incident (and in its report).
///
/// Containers are `name (short id)` when both are known, else the short id or the name; pods
/// `namespace/pod`; services the `instance`.
pub fn alert_assets(labels: &Labels) -> Assets {
    let mut a = Assets::default();
    for label in ["host", "hostname"] {
        if let Some(h) = labels.get(label).filter(|h| !is_placeholder(h)) {
            a.hosts.insert(h.trim().to_string());
        }
    }
    let id = labels.get("container_id").and_then(normalize_container_id);
    let name = labels
        .get("container_name")
        .and_then(normalize_container_name);
    match (name, id) {
        (Some(n), Some(i)) => {
            a.containers.insert(format!("{n} ({i})"));
        }
        (Some(n), None) => {
            a.containers.insert(n);
        }
        (None, Some(i)) => {
            a.containers.insert(i);
        }
        (None, None) => {}
    }
    if let Some(i) = labels.get("image").filter(|i| !is_placeholder(i)) {
        a.images.insert(i.trim().to_string());
    }
    if let Some(p) = labels.get("k8s_pod").filter(|p| !is_placeholder(p)) {
        let ns = labels
            .get("k8s_ns")
            .filter(|n| !is_placeholder(n))
            .unwrap_or("default");
        a.pods.insert(format!("{ns}/{p}"));
    }
    if let Some(i) = labels.get("instance").filter(|i| !i.trim().is_empty()) {
        a.services.insert(i.trim().to_string());
    }
    a
}

/// The main entity of an alert, for titles: container name (or id), pod, instance, image, host.
pub fn main_entity(labels: &Labels) -> Option<String> {
    labels
        .get("container_name")
        .and_then(normalize_container_name)
        .or_else(|| labels.get("container_id").and_then(normalize_container_id))
        .or_else(|| {
            labels
                .get("k8s_pod")
                .filter(|p| !is_placeholder(p))
                .map(|p| match labels.get("k8s_ns") {
                    Some(ns) if !is_placeholder(ns) => format!("{ns}/{p}"),
                    _ => p.to_string(),
                })
        })
        .or_else(|| labels.get("instance").map(|i| i.trim().to_string()))
        .or_else(|| labels.get("image").map(|i| i.trim().to_string()))
        .or_else(|| {
            labels
                .get("host")
                .or(labels.get("hostname"))
                .map(str::to_string)
        })
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[Entity]) -> Vec<String> {
        v.iter()
            .map(|e| {
                format!(
                    "{}{}",
                    e.key,
                    if e.role == Role::Location { "@" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn instance_host_part() {
        assert_eq!(instance_host("cadvisor:8080").as_deref(), Some("cadvisor"));
        assert_eq!(instance_host("Node-1").as_deref(), Some("node-1"));
        assert_eq!(instance_host("10.0.0.5:9100").as_deref(), Some("10.0.0.5"));
        assert_eq!(instance_host("[fd00::5]:9100").as_deref(), Some("fd00::5"));
        assert_eq!(
            instance_host("https://user@web:8443/metrics").as_deref(),
            Some("web")
        );
        assert_eq!(instance_host("localhost:9090"), None);
        assert_eq!(instance_host("127.0.0.1:9100"), None);
        assert_eq!(instance_host("[::1]:9100"), None);
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize_container_id("docker://EE97D9C4186F0123456789abcdef").as_deref(),
            Some("ee97d9c4186f")
        );
        assert_eq!(normalize_container_id("host"), None);
        assert_eq!(normalize_container_id("<NA>"), None);
        assert_eq!(normalize_container_name("/web").as_deref(), Some("web"));
        assert_eq!(
            normalize_image("docker.io/library/alpine:3.19").as_deref(),
            Some("alpine:3.19")
        );
        assert_eq!(normalize_image("alpine").as_deref(), Some("alpine:latest"));
        assert_eq!(
            normalize_image("localhost:5000/miner").as_deref(),
            Some("localhost:5000/miner:latest")
        );
        assert_eq!(
            normalize_image("quay.io/x/y@sha256:abcd").as_deref(),
            Some("quay.io/x/y@sha256:abcd")
        );
    }

    #[test]
    fn prometheus_alert_entities() {
        let l = Labels::from_pairs([
            ("alertname", "monitor_service_down"),
            ("instance", "cadvisor:8080"),
            ("job", "cadvisor"),
            ("monitor", "docker-host-alpha"),
            ("severity", "critical"),
        ]);
        assert_eq!(
            keys(&alert_entities(&l)),
            vec![
                "instance=cadvisor:8080",
                "container_name=cadvisor",
                "host=cadvisor"
            ]
        );
    }

    #[test]
    fn falco_container_alert_host_is_a_location() {
        let l = Labels::from_pairs([
            ("alertname", "Terminal shell in container"),
            ("container_id", "ee97d9c4186f"),
            ("container_name", "web"),
            ("image", "docker.io/library/alpine:3.19"),
            ("host", "alpha"),
            ("k8s_ns", "default"),
            ("k8s_pod", "kubecon"),
        ]);
        assert_eq!(
            keys(&alert_entities(&l)),
            vec![
                "container_id=ee97d9c4186f",
                "container_name=web",
                "image=alpine:3.19",
                "pod=default/kubecon",
                "rule=Terminal shell in container@alpha",
                "host=alpha@"
            ]
        );
    }

    #[test]
    fn host_alert_host_is_a_subject() {
        let l = Labels::from_pairs([("alertname", "DiskFull"), ("hostname", "Alpha")]);
        assert_eq!(keys(&alert_entities(&l)), vec!["host=alpha"]);
    }

    #[test]
    fn assets_roundtrip_to_the_same_keys() {
        let l = Labels::from_pairs([
            ("container_id", "ee97d9c4186f0000"),
            ("container_name", "web"),
            ("image", "alpine:3.19"),
            ("host", "alpha"),
            ("instance", "web:8080"),
        ]);
        let assets = alert_assets(&l);
        assert_eq!(
            assets.containers.iter().next().map(String::as_str),
            Some("web (ee97d9c4186f)")
        );
        let mut a = keys(&alert_entities(&l));
        let mut b = keys(&incident_entities(&assets));
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn container_assets_parse() {
        assert_eq!(
            parse_container_asset("my app (abcdef012345)"),
            (Some("my app".into()), Some("abcdef012345".into()))
        );
        assert_eq!(
            parse_container_asset("abcdef0123456789"),
            (None, Some("abcdef012345".into()))
        );
        assert_eq!(
            parse_container_asset("cadvisor"),
            (Some("cadvisor".into()), None)
        );
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            "Containers".parse::<EntityKind>().unwrap(),
            EntityKind::Container
        );
        assert!(
            "volume"
                .parse::<EntityKind>()
                .unwrap_err()
                .contains("instance")
        );
    }
}
