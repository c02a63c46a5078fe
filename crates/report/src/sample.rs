//! A recorded incident to try the renderer on, used by the tests, the benchmark and the crate
//! docs: the cryptominer exercise (three containers started from public miner images, detected
//! at runtime, killed and their images removed by a response policy, contained).
//!
//! Times and ids are fixed, so output rendered from it is reproducible.

use crate::ReportInput;
use model::{
    Action, ActionStatus, Alert, Assets, Evidence, Incident, IncidentStatus, Labels, Severity,
    StoredAlert, Time, TimelineEntry, TimelineKind,
};
use serde_json::json;

/// The images of the exercise.
pub const MINER_IMAGES: [&str; 3] = [
    "servethehome/monero_cpu_moneropool:latest",
    "servethehome/monero_cpu_minergate:latest",
    "servethehome/universal_cryptonight:latest",
];

const POLICY: &str = "policy:kill-cryptominers";

/// 2025-05-02 14:03:00 UTC plus `secs`.
fn t(secs: i64) -> Time {
    chrono::DateTime::from_timestamp(1_746_194_580 + secs, 0).unwrap_or_default()
}

fn container_id(i: usize) -> String {
    format!("{:x}", 0x3f2a_9c01_u32 as usize + i).repeat(8)
}

/// The cryptominer exercise as recorded: incident 1, a drill, contained.
pub fn cryptominer() -> ReportInput {
    let names = ["miner-moneropool", "miner-minergate", "miner-cryptonight"];
    let host = "docker-host-alpha";
    let mut incident = Incident::new(
        "Cryptominer containers on docker-host-alpha",
        Severity::Critical,
        t(-2),
        t(0),
    );
    incident.id = 1;
    incident.drill = true;
    incident.status = IncidentStatus::Contained;
    incident.commander = Some("alice".into());
    incident.acknowledged_at = Some(t(95));
    incident.contained_at = Some(t(9));
    incident.updated_at = t(130);
    let mut assets = Assets::default();
    assets.hosts.insert(host.into());
    for (i, n) in names.iter().enumerate() {
        assets
            .containers
            .insert(format!("{n} ({})", &container_id(i)[..12]));
        assets.images.insert(MINER_IMAGES[i].into());
    }
    incident.assets = assets;

    let mut alerts = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let labels = Labels::from_pairs([
            ("alertname", "CryptominerContainer"),
            ("severity", "critical"),
            ("source", "runtime"),
            ("rule", "Container started from a known cryptominer image"),
            ("host", host),
            ("container_id", &container_id(i)),
            ("container_name", n),
            ("image", MINER_IMAGES[i]),
        ]);
        let mut a = Alert::new(labels, t(-2 + i as i64));
        a.annotations.set(
            "description",
            "A container was started from an image on the cryptominer list.",
        );
        a.updated_at = t(i as i64);
        alerts.push(a);
    }
    let mut stratum = Alert::new(
        Labels::from_pairs([
            (
                "alertname",
                "Detect crypto miners using the Stratum protocol",
            ),
            ("severity", "critical"),
            ("source", "falco"),
            ("rule", "Detect crypto miners using the Stratum protocol"),
            ("host", host),
            ("container_id", &container_id(1)),
            ("container_name", names[1]),
            ("image", MINER_IMAGES[1]),
        ]),
        t(3),
    );
    stratum.annotations.set(
        "output",
        "Possible miner running (command=minergate-cli --user x -o stratum+tcp://pool.minergate.com:45700)",
    );
    stratum.updated_at = t(4);
    alerts.push(stratum);
    incident.alerts = alerts.iter().map(Alert::fingerprint).collect();
    let alerts: Vec<StoredAlert> = alerts
        .into_iter()
        .map(|a| StoredAlert {
            fingerprint: a.fingerprint(),
            alert: a,
            incident_id: Some(1),
        })
        .collect();

    let mut actions = Vec::new();
    let mut id = 0;
    for (i, _) in names.iter().enumerate() {
        id += 1;
        actions.push(Action {
            id,
            incident_id: Some(1),
            kind: "kill".into(),
            target: container_id(i),
            params: json!({"signal": "SIGKILL"}),
            actor: POLICY.into(),
            status: ActionStatus::Succeeded,
            error: None,
            requested_at: t(1 + i as i64),
            started_at: Some(t(1 + i as i64)),
            finished_at: Some(t(2 + i as i64)),
            decided_by: None,
        });
    }
    for img in MINER_IMAGES {
        id += 1;
        actions.push(Action {
            id,
            incident_id: Some(1),
            kind: "remove_image".into(),
            target: img.into(),
            params: json!({"force": true}),
            actor: POLICY.into(),
            status: ActionStatus::Succeeded,
            error: None,
            requested_at: t(5),
            started_at: Some(t(6)),
            finished_at: Some(t(8)),
            decided_by: None,
        });
    }

    let digests = [
        "9b5f0c3e1d2a4b6c8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f",
        "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
        "e3b7c1f0a9d8e7f6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d",
    ];
    let evidence: Vec<Evidence> = names
        .iter()
        .enumerate()
        .map(|(i, _)| Evidence {
            id: i as i64 + 1,
            incident_id: 1,
            kind: "inspect".into(),
            subject: container_id(i),
            path: format!("evidence/1/{}-inspect.json", &container_id(i)[..12]),
            sha256: digests[i].into(),
            size: 18_000 + 317 * i as u64,
            collected_at: t(1 + i as i64),
        })
        .collect();

    let mut tl = Vec::new();
    let mut push = |at: Time, kind: TimelineKind, actor: &str, summary: String| {
        tl.push(TimelineEntry::new(1, at, kind, actor, summary));
    };
    for (i, a) in alerts.iter().enumerate() {
        let src = a
            .alert
            .labels
            .get("source")
            .unwrap_or("runtime")
            .to_string();
        let at = if i == 0 { t(0) } else { a.alert.updated_at };
        push(
            at,
            TimelineKind::Detection,
            &src,
            format!(
                "{} fired for {} ({})",
                a.alert.name(),
                a.alert.labels.get("container_name").unwrap_or(""),
                a.alert.labels.get("image").unwrap_or("")
            ),
        );
        if i == 0 {
            push(
                t(0),
                TimelineKind::StatusChange,
                "vigil",
                "Incident opened (open)".into(),
            );
        } else {
            push(
                at,
                TimelineKind::Correlation,
                "vigil",
                "Alert joined the incident: same host and the same cryptominer rule within 5 min"
                    .into(),
            );
        }
    }
    for a in &actions {
        push(
            a.requested_at,
            TimelineKind::Action,
            POLICY,
            format!("{} {} requested", a.kind, crate::text::short_id(&a.target)),
        );
        push(
            a.finished_at.unwrap_or(a.requested_at),
            TimelineKind::Action,
            POLICY,
            format!("{} {} succeeded", a.kind, crate::text::short_id(&a.target)),
        );
    }
    for e in &evidence {
        push(
            e.collected_at,
            TimelineKind::Evidence,
            POLICY,
            format!(
                "Collected {} of {} (sha256 {}…)",
                e.kind,
                &e.subject[..12],
                &e.sha256[..12]
            ),
        );
    }
    push(
        t(9),
        TimelineKind::StatusChange,
        "vigil",
        "Status open → contained: every affected container is stopped".into(),
    );
    push(
        t(60),
        TimelineKind::Assignment,
        "alice",
        "alice is incident commander".into(),
    );
    push(
        t(95),
        TimelineKind::StatusChange,
        "alice",
        "Acknowledged".into(),
    );
    push(
        t(130),
        TimelineKind::Note,
        "alice",
        "Exercise traffic only; pool egress was blocked at the firewall.".into(),
    );
    for (i, e) in tl.iter_mut().enumerate() {
        e.id = i as i64 + 1;
    }

    ReportInput {
        incident,
        timeline: tl,
        alerts,
        actions,
        evidence,
    }
}

/// The cryptominer exercise with `n` timeline entries (the recorded ones, then synthetic
/// detections, actions, notes and status entries spread over the following hours), for
/// benchmarks.
pub fn with_timeline(n: usize) -> ReportInput {
    let mut input = cryptominer();
    let base = input.timeline.len();
    let kinds = [
        TimelineKind::Detection,
        TimelineKind::Correlation,
        TimelineKind::Action,
        TimelineKind::Note,
        TimelineKind::Evidence,
        TimelineKind::StatusChange,
    ];
    for i in base..n {
        let kind = kinds[i % kinds.len()];
        let at = t(130 + (i as i64 - base as i64) * 2);
        input.timeline.push(TimelineEntry {
            id: i as i64 + 1,
            incident_id: 1,
            at,
            kind,
            actor: if kind == TimelineKind::Action {
                POLICY.into()
            } else {
                "runtime".into()
            },
            summary: format!(
                "Synthetic {} entry {i}: container miner-{} restarted from {}",
                kind.as_str(),
                i % 97,
                MINER_IMAGES[i % 3]
            ),
            data: serde_json::Value::Null,
        });
    }
    input.timeline.truncate(n.max(1));
    input.incident.updated_at = input
        .timeline
        .last()
        .map(|e| e.at)
        .unwrap_or(input.incident.updated_at);
    input
}
