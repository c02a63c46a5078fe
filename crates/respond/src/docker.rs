//! The Docker driver: every mutating Docker Engine call Vigil makes goes through here.

use crate::subject::Subject;
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RemoveImageOptions, RenameContainerOptions, RestartContainerOptions,
    StopContainerOptions,
};
use futures::StreamExt;
use model::Time;
use std::collections::HashMap;

/// A Docker API failure, as text for the action's `error`.
pub fn docker_err(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("docker: {message} (HTTP {status_code})"),
        other => format!("docker: {other}"),
    }
}

/// Whether a Docker error means "no such object".
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether a Docker error says the container is not running (kill: 409, stop: 304).
fn not_running(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 304 || (*status_code == 409 && message.contains("is not running")),
        _ => false,
    }
}

/// Connects to the local Docker daemon (`DOCKER_HOST` or `/var/run/docker.sock`) and negotiates
/// the API version.
pub async fn connect() -> Result<Docker, String> {
    let d = Docker::connect_with_defaults().map_err(docker_err)?;
    d.negotiate_version().await.map_err(docker_err)
}

/// The container's creation time.
pub fn created(i: &ContainerInspectResponse) -> Option<Time> {
    let v = serde_json::to_value(&i.created).ok()?;
    let s = v.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The container's image as configured (`repo:tag`).
pub fn configured_image(i: &ContainerInspectResponse) -> String {
    i.config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// The container's labels.
pub fn labels(i: &ContainerInspectResponse) -> HashMap<String, String> {
    i.config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
}

/// Appends `:latest` to an image reference without tag or digest.
pub fn normalise_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') || image.starts_with("sha256:") {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Refuses when the container is not the one the alert saw: another id, another image, or
/// created after the alert fired (a name reused by a new container).
pub fn verify_unchanged(i: &ContainerInspectResponse, s: &Subject) -> Result<(), String> {
    let id = i.id.clone().unwrap_or_default();
    if let Some(want) = &s.container_id
        && !(id.starts_with(want.as_str()) || want.starts_with(id.as_str()))
        && i.name.as_deref().map(|n| n.trim_start_matches('/')) != Some(want.as_str())
    {
        return Err(format!(
            "target changed since the alert: container {want} is now {}",
            &id[..id.len().min(12)]
        ));
    }
    if let Some(want) = &s.image_id
        && i.image.as_deref().is_some_and(|have| have != want)
    {
        return Err(format!(
            "target changed since the alert: image id {want} is now {}",
            i.image.as_deref().unwrap_or("")
        ));
    }
    if let Some(want) = &s.image {
        let have = configured_image(i);
        let id_match = i.image.as_deref() == Some(want.as_str());
        if !have.is_empty() && normalise_image(&have) != normalise_image(want) && !id_match {
            return Err(format!(
                "target changed since the alert: image {want} is now {have}"
            ));
        }
    }
    if let (Some(seen), Some(made)) = (s.observed_at, created(i))
        && made > seen + chrono::Duration::seconds(1)
    {
        return Err(format!(
            "target changed since the alert: container was created at {} after the alert at {}",
            made.to_rfc3339(),
            seen.to_rfc3339()
        ));
    }
    Ok(())
}

/// Inspects a container.
pub async fn inspect(d: &Docker, target: &str) -> Result<ContainerInspectResponse, String> {
    d.inspect_container(target, None).await.map_err(docker_err)
}

/// `docker kill --signal`.
pub async fn kill(d: &Docker, id: &str, signal: &str) -> Result<String, String> {
    let opts = KillContainerOptions {
        signal: signal.to_string(),
    };
    match d.kill_container(id, Some(opts)).await {
        Ok(()) => Ok(format!("sent {signal} to container {}", short(id))),
        // Already dead (e.g. its main process was killed): the goal is reached.
        Err(e) if not_running(&e) => Ok(format!("container {} is not running", short(id))),
        Err(e) => Err(docker_err(e)),
    }
}

/// `docker stop -t`.
pub async fn stop(d: &Docker, id: &str, timeout: i32) -> Result<String, String> {
    let opts = StopContainerOptions {
        t: Some(timeout),
        signal: None,
    };
    match d.stop_container(id, Some(opts)).await {
        Ok(()) => Ok(format!(
            "stopped container {} (timeout {timeout}s)",
            short(id)
        )),
        Err(e) if not_running(&e) => Ok(format!("container {} was already stopped", short(id))),
        Err(e) => Err(docker_err(e)),
    }
}

/// `docker pause`.
pub async fn pause(d: &Docker, id: &str) -> Result<String, String> {
    d.pause_container(id).await.map_err(docker_err)?;
    Ok(format!("paused container {}", short(id)))
}

/// `docker unpause`.
pub async fn unpause(d: &Docker, id: &str) -> Result<String, String> {
    d.unpause_container(id).await.map_err(docker_err)?;
    Ok(format!("unpaused container {}", short(id)))
}

/// `docker rm [-f] [-v]`.
pub async fn remove(d: &Docker, id: &str, force: bool, volumes: bool) -> Result<String, String> {
    let opts = RemoveContainerOptions {
        force,
        v: volumes,
        link: false,
    };
    d.remove_container(id, Some(opts))
        .await
        .map_err(docker_err)?;
    Ok(format!("removed container {}", short(id)))
}

/// `docker restart -t`.
pub async fn restart(d: &Docker, id: &str, timeout: i32) -> Result<String, String> {
    let opts = RestartContainerOptions {
        t: Some(timeout),
        signal: None,
    };
    d.restart_container(id, Some(opts))
        .await
        .map_err(docker_err)?;
    Ok(format!("restarted container {}", short(id)))
}

/// Disconnects the container from every network; then, if `network` is given, connects it to
/// that network (created as an internal bridge labelled `vigil.quarantine=true` if missing).
pub async fn quarantine(
    d: &Docker,
    i: &ContainerInspectResponse,
    network: Option<&str>,
) -> Result<String, String> {
    let id = i.id.clone().unwrap_or_default();
    let nets: Vec<String> = i
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut done = Vec::new();
    for n in &nets {
        if Some(n.as_str()) == network {
            continue;
        }
        d.disconnect_network(
            n,
            NetworkDisconnectRequest {
                container: id.clone(),
                force: Some(true),
            },
        )
        .await
        .map_err(|e| format!("disconnect from {n}: {}", docker_err(e)))?;
        done.push(n.clone());
    }
    let mut msg = format!(
        "disconnected container {} from {}",
        short(&id),
        if done.is_empty() {
            "no network".to_string()
        } else {
            done.join(", ")
        }
    );
    if let Some(net) = network
        && !nets.iter().any(|n| n == net)
    {
        if let Err(e) = d.inspect_network(net, None).await {
            if !is_not_found(&e) {
                return Err(docker_err(e));
            }
            d.create_network(NetworkCreateRequest {
                name: net.to_string(),
                driver: Some("bridge".into()),
                internal: Some(true),
                labels: Some(HashMap::from([(
                    "vigil.quarantine".to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("create network {net}: {}", docker_err(e)))?;
        }
        d.connect_network(
            net,
            NetworkConnectRequest {
                container: id.clone(),
                endpoint_config: None,
            },
        )
        .await
        .map_err(|e| format!("connect to {net}: {}", docker_err(e)))?;
        msg.push_str(&format!("; attached to isolated network {net}"));
    }
    Ok(msg)
}

/// Recreates the container with its configuration but a replacement image: the old one is
/// stopped and renamed, the new one created under the old name and started, the old one removed.
/// Returns the new container id in the message.
pub async fn redeploy(
    d: &Docker,
    i: &ContainerInspectResponse,
    image: &str,
    timeout: i32,
) -> Result<String, String> {
    let id = i.id.clone().unwrap_or_default();
    let name = i
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    // ContainerConfig and ContainerCreateBody share their JSON field names.
    let mut body: serde_json::Value = serde_json::to_value(i.config.clone().unwrap_or_default())
        .map_err(|e| format!("redeploy: {e}"))?;
    body["Image"] = serde_json::Value::String(image.to_string());
    // The hostname defaults to the container id; let the new container get its own.
    if let Some(h) = body.get("Hostname").and_then(|h| h.as_str())
        && id.starts_with(h)
    {
        body.as_object_mut().map(|o| o.remove("Hostname"));
    }
    let mut create: ContainerCreateBody =
        serde_json::from_value(body).map_err(|e| format!("redeploy: {e}"))?;
    create.host_config = i.host_config.clone();
    let endpoints = i
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .map(|m| {
            m.into_iter()
                .map(|(k, mut v)| {
                    // addresses and ids belong to the old endpoint
                    v.endpoint_id = None;
                    v.network_id = None;
                    v.ip_address = None;
                    v.ip_prefix_len = None;
                    v.gateway = None;
                    v.mac_address = None;
                    v.ipv6_gateway = None;
                    v.global_ipv6_address = None;
                    v.global_ipv6_prefix_len = None;
                    v.dns_names = None;
                    (k, v)
                })
                .collect()
        });
    create.networking_config = Some(NetworkingConfig {
        endpoints_config: endpoints,
    });
    let opts = StopContainerOptions {
        t: Some(timeout),
        signal: None,
    };
    if let Err(e) = d.stop_container(&id, Some(opts)).await
        && !matches!(
            &e,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 304,
                ..
            }
        )
    {
        return Err(docker_err(e));
    }
    let old_name = format!("{name}-vigil-replaced-{}", short(&id));
    d.rename_container(
        &id,
        RenameContainerOptions {
            name: old_name.clone(),
        },
    )
    .await
    .map_err(docker_err)?;
    let created = d
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                platform: String::new(),
            }),
            create,
        )
        .await;
    let new_id = match created {
        Ok(r) => r.id,
        Err(e) => {
            // put the old container back under its name
            let _ = d
                .rename_container(&id, RenameContainerOptions { name: name.clone() })
                .await;
            return Err(format!("redeploy: create: {}", docker_err(e)));
        }
    };
    d.start_container(&new_id, None)
        .await
        .map_err(|e| format!("redeploy: start {}: {}", short(&new_id), docker_err(e)))?;
    remove(d, &id, true, false).await?;
    Ok(format!(
        "redeployed {name}: container {} replaced by {} from image {image}",
        short(&id),
        short(&new_id)
    ))
}

/// Containers (any state) created from an image, as `(id, name, image, labels)`.
pub async fn containers_of_image(
    d: &Docker,
    image: &str,
) -> Result<Vec<(String, String, String, HashMap<String, String>)>, String> {
    let opts = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "ancestor".to_string(),
            vec![image.to_string()],
        )])),
        ..Default::default()
    };
    let list = d.list_containers(Some(opts)).await.map_err(docker_err)?;
    Ok(list
        .into_iter()
        .map(|c| {
            (
                c.id.unwrap_or_default(),
                c.names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                c.image.unwrap_or_default(),
                c.labels.unwrap_or_default(),
            )
        })
        .collect())
}

/// Removes an image (forced), after removing the given containers made from it.
pub async fn remove_image(
    d: &Docker,
    image: &str,
    containers: &[String],
    force: bool,
) -> Result<String, String> {
    for c in containers {
        match d
            .remove_container(
                c,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    link: false,
                }),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(format!("remove container {}: {}", short(c), docker_err(e))),
        }
    }
    let opts = RemoveImageOptions {
        force,
        noprune: false,
        platforms: None,
    };
    let deleted = d
        .remove_image(image, Some(opts), None)
        .await
        .map_err(docker_err)?;
    let untagged = deleted.iter().filter(|x| x.untagged.is_some()).count();
    let removed = deleted.iter().filter(|x| x.deleted.is_some()).count();
    Ok(format!(
        "removed image {image} ({} container(s) removed, {untagged} tag(s) untagged, {removed} layer(s) deleted)",
        containers.len()
    ))
}

/// Image facts used by the block list: `(image id, repositories, repo digests, labels)`.
pub async fn image_facts(
    d: &Docker,
    image: &str,
) -> Result<(String, Vec<String>, Vec<String>, HashMap<String, String>), String> {
    let i = d.inspect_image(image).await.map_err(docker_err)?;
    let repos = i
        .repo_tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| model::ContainerInfo::split_image(&t).0)
        .collect();
    Ok((
        i.id.unwrap_or_default(),
        repos,
        i.repo_digests.unwrap_or_default(),
        i.config.and_then(|c| c.labels).unwrap_or_default(),
    ))
}

/// Last `lines` log lines (stdout and stderr, with timestamps).
pub async fn logs(d: &Docker, id: &str, lines: u64) -> Result<Vec<u8>, String> {
    let opts = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut s = d.logs(id, Some(opts));
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(chunk.map_err(docker_err)?.as_ref());
    }
    Ok(out)
}

/// `docker diff` as JSON.
pub async fn diff(d: &Docker, id: &str) -> Result<Vec<u8>, String> {
    let changes = d.container_changes(id).await.map_err(docker_err)?;
    serde_json::to_vec_pretty(&changes.unwrap_or_default()).map_err(|e| e.to_string())
}

/// `docker top` as JSON.
pub async fn processes(d: &Docker, id: &str) -> Result<Vec<u8>, String> {
    let top = d.top_processes(id, None).await.map_err(docker_err)?;
    serde_json::to_vec_pretty(&top).map_err(|e| e.to_string())
}

/// Streams `docker export` into `out`, returning the bytes written and their sha256.
pub async fn export(d: &Docker, id: &str, out: &std::path::Path) -> Result<(u64, String), String> {
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::File::create(out)
        .await
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    let mut s = d.export_container(id);
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(docker_err)?;
        h.update(&chunk);
        n += chunk.len() as u64;
        f.write_all(&chunk)
            .await
            .map_err(|e| format!("{}: {e}", out.display()))?;
    }
    f.flush().await.map_err(|e| e.to_string())?;
    Ok((n, hex::encode(h.finalize())))
}

/// First 12 characters of an id.
pub fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}
