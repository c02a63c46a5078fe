//! Docker attribution and Docker events.
//!
//! [`DockerWatch`] talks to the Docker Engine API (bollard, `/var/run/docker.sock`): it keeps a
//! cache of container metadata (name, image, image id and digest, labels, Kubernetes pod and
//! namespace, privileged, start time), fills it from `docker inspect` on first sight and on
//! `create`/`start`/`rename` events, and turns Docker's event stream into [`model::Event`]s with
//! `source = docker`.

use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures::StreamExt;
use model::{ContainerInfo, Event, EventSource};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a failed lookup (not a Docker container) is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Upper bound on cached containers.
const CACHE_CAP: usize = 4096;

#[derive(Debug, Clone)]
enum Entry {
    Found(Arc<ContainerInfo>),
    Missing(Instant),
}

/// Container metadata cache shared by the event pipeline and the Docker event task.
#[derive(Debug, Default)]
pub(crate) struct ContainerCache {
    map: HashMap<String, Entry>,
}

impl ContainerCache {
    fn put(&mut self, info: ContainerInfo) {
        if self.map.len() >= CACHE_CAP {
            self.map.retain(|_, e| matches!(e, Entry::Found(_)));
            if self.map.len() >= CACHE_CAP {
                self.map.clear();
            }
        }
        self.map
            .insert(info.id.clone(), Entry::Found(Arc::new(info)));
    }
}

/// Shared handle on the cache.
pub(crate) type SharedCache = Arc<Mutex<ContainerCache>>;

/// A connection to the Docker Engine plus the metadata cache.
#[derive(Clone)]
pub(crate) struct DockerWatch {
    client: bollard::Docker,
    cache: SharedCache,
}

/// What a lookup in the cache found.
pub(crate) enum Cached {
    Hit(Arc<ContainerInfo>),
    /// Known not to be a Docker container (recently).
    Negative,
    Miss,
}

impl DockerWatch {
    /// Connects to the Docker socket at `socket` and checks the daemon answers.
    pub(crate) async fn connect(socket: &str) -> Option<DockerWatch> {
        if !std::path::Path::new(socket).exists() {
            return None;
        }
        let client =
            bollard::Docker::connect_with_unix(socket, 10, bollard::API_DEFAULT_VERSION).ok()?;
        match tokio::time::timeout(Duration::from_secs(3), client.ping()).await {
            Ok(Ok(_)) => Some(DockerWatch {
                client,
                cache: Arc::default(),
            }),
            Ok(Err(e)) => {
                tracing::warn!(socket, error = %e, "Docker daemon does not answer; no container metadata");
                None
            }
            Err(_) => {
                tracing::warn!(
                    socket,
                    "Docker daemon ping timed out; no container metadata"
                );
                None
            }
        }
    }

    /// Cached metadata of container `id`.
    pub(crate) fn cached(&self, id: &str) -> Cached {
        let Ok(c) = self.cache.lock() else {
            return Cached::Miss;
        };
        match c.map.get(id) {
            Some(Entry::Found(i)) => Cached::Hit(i.clone()),
            Some(Entry::Missing(t)) if t.elapsed() < NEGATIVE_TTL => Cached::Negative,
            _ => Cached::Miss,
        }
    }

    /// Remembers for a while that `id` has no metadata (lookup failed or took too long).
    pub(crate) fn mark_missing(&self, id: &str) {
        if let Ok(mut c) = self.cache.lock()
            && !matches!(c.map.get(id), Some(Entry::Found(_)))
        {
            c.map.insert(id.to_string(), Entry::Missing(Instant::now()));
        }
    }

    /// Inspects container `id` (and its image) and caches the result.
    pub(crate) async fn inspect(&self, id: &str) -> Option<ContainerInfo> {
        let r = self.client.inspect_container(id, None).await;
        let info = match r {
            Ok(r) => {
                let mut info = info_from_inspect(&r);
                if !info.image_id.is_empty()
                    && let Ok(img) = self.client.inspect_image(&info.image_id).await
                {
                    info.image_digest = img
                        .repo_digests
                        .unwrap_or_default()
                        .iter()
                        .find_map(|d| d.split_once('@').map(|(_, dg)| dg.to_string()))
                        .unwrap_or_default();
                }
                info
            }
            Err(e) => {
                tracing::debug!(id, error = %e, "container inspect failed");
                if let Ok(mut c) = self.cache.lock() {
                    c.map.insert(id.to_string(), Entry::Missing(Instant::now()));
                }
                return None;
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.put(info.clone());
        }
        Some(info)
    }

    /// Loads every running container into the cache.
    pub(crate) async fn seed(&self) -> usize {
        let list = self
            .client
            .list_containers(Some(ListContainersOptions {
                all: false,
                ..Default::default()
            }))
            .await
            .unwrap_or_default();
        let mut n = 0;
        for c in list {
            if let Some(id) = c.id
                && self.inspect(&id).await.is_some()
            {
                n += 1;
            }
        }
        n
    }

    /// Follows Docker's event stream until `send` returns false; reconnects after errors.
    pub(crate) async fn run_events<F>(self, hostname: Arc<str>, mut send: F)
    where
        F: FnMut(Event) -> bool + Send,
    {
        let mut since: Option<i64> = None;
        loop {
            let opts = EventsOptions {
                since: since.map(|s| s.to_string()),
                ..Default::default()
            };
            let mut stream = self.client.events(Some(opts));
            while let Some(item) = stream.next().await {
                let msg = match item {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "Docker event stream failed; reconnecting");
                        break;
                    }
                };
                if let Some(t) = msg.time {
                    since = Some(t);
                }
                let ev = self.event_from_message(msg, &hostname).await;
                if let Some(ev) = ev
                    && !send(ev)
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn event_from_message(
        &self,
        msg: bollard::models::EventMessage,
        hostname: &Arc<str>,
    ) -> Option<Event> {
        let typ = msg.typ.map(|t| t.to_string()).unwrap_or_default();
        let action = msg.action.clone().unwrap_or_default();
        let actor = msg.actor.unwrap_or_default();
        let id = actor.id.clone().unwrap_or_default();
        let attrs = actor.attributes.unwrap_or_default();
        let kind = event_kind(&typ, &action);
        let mut args: BTreeMap<Cow<'static, str>, String> =
            attrs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        args.insert("id".into(), id.clone());
        args.insert("action".into(), action.clone());
        if let Some((_, cmd)) = action.split_once(": ")
            && action.starts_with("exec_")
        {
            args.insert("cmd".into(), cmd.to_string());
        }
        let base = action.split(':').next().unwrap_or("").trim();
        let container = if typ == "container" {
            match base {
                "create" | "start" | "rename" | "update" | "restart" => {
                    self.inspect(&id).await.map(Arc::new)
                }
                _ => match self.cached(&id) {
                    Cached::Hit(i) => Some(i),
                    _ => self.inspect(&id).await.map(Arc::new),
                },
            }
            .or_else(|| {
                // Gone already (destroy): what the event itself says.
                let image = args.get("image").cloned().unwrap_or_default();
                let (image_repository, image_tag) = ContainerInfo::split_image(&image);
                Some(Arc::new(ContainerInfo {
                    id: id.clone(),
                    name: args.get("name").cloned().unwrap_or_default(),
                    image,
                    image_repository,
                    image_tag,
                    ..Default::default()
                }))
            })
        } else {
            None
        };
        if typ == "container"
            && base == "destroy"
            && let Ok(mut c) = self.cache.lock()
        {
            c.map.remove(&id);
        }
        let ts = msg
            .time_nano
            .map(chrono::DateTime::from_timestamp_nanos)
            .unwrap_or_else(chrono::Utc::now);
        Some(Event {
            ts,
            source: EventSource::Docker,
            kind: kind.into(),
            hostname: hostname.clone(),
            res: None,
            args,
            process: None,
            fd: None,
            container,
        })
    }
}

/// `evt.type` of a Docker event: `<object>_<action>`, Docker's `exec_start` as `container_exec`.
pub(crate) fn event_kind(typ: &str, action: &str) -> String {
    let base = action.split(':').next().unwrap_or("").trim();
    let base = match base {
        "exec_start" => "exec",
        b => b,
    };
    format!("{typ}_{base}")
}

fn parse_time(s: &str) -> Option<model::Time> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?.to_utc();
    (t.timestamp() > 0).then_some(t)
}

fn info_from_inspect(r: &bollard::models::ContainerInspectResponse) -> ContainerInfo {
    let cfg = r.config.as_ref();
    let image = cfg.and_then(|c| c.image.clone()).unwrap_or_default();
    let (image_repository, image_tag) = ContainerInfo::split_image(&image);
    let labels: BTreeMap<String, String> = cfg
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    ContainerInfo {
        id: r.id.clone().unwrap_or_default(),
        name: r
            .name
            .clone()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image,
        image_repository,
        image_tag,
        image_digest: String::new(),
        image_id: r.image.clone().unwrap_or_default(),
        privileged: r
            .host_config
            .as_ref()
            .and_then(|h| h.privileged)
            .unwrap_or(false),
        k8s_ns: labels
            .get("io.kubernetes.pod.namespace")
            .cloned()
            .unwrap_or_default(),
        k8s_pod: labels
            .get("io.kubernetes.pod.name")
            .cloned()
            .unwrap_or_default(),
        labels,
        started_at: r
            .state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .and_then(parse_time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(event_kind("container", "start"), "container_start");
        assert_eq!(
            event_kind("container", "exec_start: sh -c id"),
            "container_exec"
        );
        assert_eq!(
            event_kind("container", "exec_create: sh"),
            "container_exec_create"
        );
        assert_eq!(
            event_kind("container", "health_status: healthy"),
            "container_health_status"
        );
        assert_eq!(event_kind("image", "pull"), "image_pull");
        assert_eq!(event_kind("image", "delete"), "image_delete");
    }

    #[test]
    fn start_time_parse() {
        assert!(parse_time("0001-01-01T00:00:00Z").is_none());
        assert_eq!(
            parse_time("2026-11-24T04:00:00.123456789Z").map(|t| t.timestamp()),
            Some(1_795_492_800)
        );
    }
}
