//! What an alert is about: the container, image and process an action may target.

use model::{Alert, ContainerInfo, Event, Time};

/// The things an alert names, as they were when it fired.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    /// Container id (full or short) — `container_id` label or the event's container.
    pub container_id: Option<String>,
    /// Container name.
    pub container_name: Option<String>,
    /// Image as configured (`repo:tag`).
    pub image: Option<String>,
    /// Local image id `sha256:…`, where known.
    pub image_id: Option<String>,
    /// Host pid of the process.
    pub pid: Option<u32>,
    /// When that process started, where known.
    pub pid_start: Option<Time>,
    /// Kubernetes namespace.
    pub k8s_ns: Option<String>,
    /// When the alert fired (a container created after this is a different one).
    pub observed_at: Option<Time>,
    /// The raw event, if the alert carried one.
    pub event: Option<serde_json::Value>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Subject {
    /// Extracts the subject from an alert's labels and its evidence event.
    pub fn from_alert(alert: &Alert) -> Subject {
        let l = &alert.labels;
        let event: Option<Event> = alert
            .evidence
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let c: Option<&ContainerInfo> = event.as_ref().and_then(|e| e.container.as_deref());
        let p = event.as_ref().and_then(|e| e.process.as_ref());
        let pick = |label: &str, from_event: Option<&str>| {
            // The event's value is more precise (full ids); labels are the fallback.
            non_empty(from_event).or_else(|| non_empty(l.get(label)))
        };
        Subject {
            container_id: pick("container_id", c.map(|c| c.id.as_str())),
            container_name: pick("container_name", c.map(|c| c.name.as_str())),
            image: pick("image", c.map(|c| c.image.as_str()))
                .or_else(|| non_empty(l.get("container_image"))),
            image_id: non_empty(c.map(|c| c.image_id.as_str())),
            pid: p
                .map(|p| p.pid)
                .filter(|p| *p > 0)
                .or_else(|| l.get("pid").and_then(|s| s.parse().ok())),
            pid_start: p.and_then(|p| p.start_ts),
            k8s_ns: pick("k8s_ns", c.map(|c| c.k8s_ns.as_str()))
                .or_else(|| non_empty(l.get("namespace"))),
            observed_at: Some(alert.starts_at),
            event: alert.evidence.clone(),
        }
    }

    /// A subject for a person's request: the target string interpreted for the action kind.
    pub fn from_target(kind: &str, target: &str, params: &serde_json::Value) -> Subject {
        let mut s = Subject::default();
        match kind {
            "remove_image" | "block_image" => s.image = Some(target.to_string()),
            "kill_process" => {
                s.pid = target.parse().ok();
                s.pid_start = params
                    .get("start_time")
                    .and_then(|v| v.as_str())
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
            }
            _ => s.container_id = Some(target.to_string()),
        }
        s
    }

    /// The target string for an action kind, if the subject has one.
    pub fn target_for(&self, kind: &str) -> Option<String> {
        match kind {
            "remove_image" | "block_image" => self.image.clone().or(self.image_id.clone()),
            "kill_process" => self.pid.map(|p| p.to_string()),
            _ => self.container_id.clone().or(self.container_name.clone()),
        }
    }

    /// The key cooldowns are kept under: container, else image, else pid.
    pub fn key(&self) -> String {
        if let Some(c) = &self.container_id {
            format!("container:{}", &c[..c.len().min(12)])
        } else if let Some(c) = &self.container_name {
            format!("container:{c}")
        } else if let Some(i) = &self.image {
            format!("image:{i}")
        } else if let Some(p) = self.pid {
            format!("pid:{p}")
        } else {
            "none".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Labels, ProcessInfo};

    #[test]
    fn event_beats_labels() {
        let now = chrono::Utc::now();
        let mut a = Alert::new(
            Labels::from_pairs([
                ("alertname", "x"),
                ("container_id", "0123456789ab"),
                ("image", "lbl/img:1"),
            ]),
            now,
        );
        let ev = Event {
            kind: "execve".into(),
            container: Some(
                ContainerInfo {
                    id: "0123456789abcdef".into(),
                    image: "ev/img:2".into(),
                    image_id: "sha256:ff".into(),
                    ..Default::default()
                }
                .into(),
            ),
            process: Some(
                ProcessInfo {
                    pid: 42,
                    start_ts: Some(now),
                    ..Default::default()
                }
                .into(),
            ),
            ..Default::default()
        };
        a.evidence = Some(serde_json::to_value(&ev).unwrap());
        let s = Subject::from_alert(&a);
        assert_eq!(s.container_id.as_deref(), Some("0123456789abcdef"));
        assert_eq!(s.image.as_deref(), Some("ev/img:2"));
        assert_eq!(s.pid, Some(42));
        assert_eq!(s.target_for("remove_image").as_deref(), Some("ev/img:2"));
        assert_eq!(s.target_for("kill_process").as_deref(), Some("42"));
        assert_eq!(s.key(), "container:0123456789ab");
    }
}
