//! Vigil's incident engine: correlation of alerts into incidents, the incident lifecycle, and
//! timing metrics. Pure logic — no I/O, no async, no clock (every function takes `now`).
//!
//! # Using it
//!
//! ```
//! use incident::{Correlator, CorrelationConfig, assign_incident_id};
//! # use model::{Alert, Labels, StoredAlert};
//! # let now = chrono::Utc::now();
//! # let a = Alert::new(Labels::from_pairs([("alertname", "down"), ("instance", "cadvisor:8080")]), now);
//! # let alert = StoredAlert { fingerprint: a.fingerprint(), alert: a, incident_id: None };
//! let correlator = Correlator::new(CorrelationConfig::default());
//! let active = vec![]; // store.list_incidents(open, acknowledged, contained)
//! let mut c = correlator.correlate(&alert, &active, now);
//! if c.is_new {
//!     // let stored = store.create_incident(&c.incident).await?;
//!     let id = 1;
//!     assign_incident_id(&mut c.entries, id);
//! } // else store.update_incident(&c.incident)
//! // store.append_timeline(&c.entries); store.set_alert_incident(alert.fingerprint, id)
//! assert_eq!(c.entries.len(), 2);
//! ```
//!
//! [`Correlator::decide`] alone gives the [`Decision`] (join which incident, or open one) with its
//! [`TimelineKind::Correlation`](model::TimelineKind) entry; [`open_incident`] and [`attach`]
//! apply it. Lifecycle: [`transition`], [`assign_commander`], [`add_note`], [`edit_narrative`],
//! [`edit_action_plan`], [`set_severity`]; alert resolution: [`alert_resolved`]. Each returns the
//! timeline entry that records it.
//!
//! # Entities and how they match
//!
//! An alert's entities come from its labels ([`alert_entities`]); an incident's from its
//! [`Assets`](model::Assets) ([`incident_entities`]), which hold every asset of every alert that
//! joined, so no extra state is needed. Each entity is a key `namespace=value`:
//!
//! | label | key | role |
//! |---|---|---|
//! | `container_id` | `container_id=<first 12 hex digits, lower case>` (full ids and short ids match) | subject |
//! | `container_name` | `container_name=<name without leading />` | subject |
//! | `image` | `image=<ref>`, with `docker.io/`, `library/` dropped and `:latest` added when untagged | subject |
//! | `k8s_ns`, `k8s_pod` | `pod=<ns>/<pod>` (ns `default` when absent) | subject |
//! | `instance` | `instance=<instance>` | subject |
//! | host part of `instance` (`cadvisor:8080` → `cadvisor`) | `container_name=cadvisor` and `host=cadvisor` | subject |
//! | `host`, `hostname` | `host=<lower case>` | subject if the alert names no container, image or pod; else location |
//! | `alertname` with a location host | `rule=<alertname>@<host>` (incident side: every rule that joined × every host) | subject |
//!
//! Falco's placeholders (`host` as a container id/name, `<NA>`) and loopback names (`localhost`,
//! `127.0.0.1`, `::1`) name nothing and produce no key.
//!
//! An alert shares an entity with an incident when both have the same key **and at least one side
//! has it as subject**. So:
//! - a Falco alert about container `cadvisor` joins the incident of the Prometheus alert for
//!   `instance="cadvisor:8080"` (`container_name=cadvisor` on both sides);
//! - two alerts about different containers on the same host do **not** join through the host
//!   (the host is only their location), unless they come from the same rule: the same detection
//!   repeated on one host within the window is one campaign (three miner containers started by
//!   one payload script are one incident); but a host-level alert (`host=alpha`, no container) joins an
//!   incident whose containers run on `alpha`, and a container alert joins a host-level incident;
//! - a container named `alpha` and a host named `alpha` do not match each other (different
//!   namespaces), but both match a target `alpha:9100`.
//!
//! Hosts of an incident count as subjects while the incident has no container, image or pod
//! asset, else as locations (assets do not say which alert brought them).
//!
//! # Correlation
//!
//! See [`Correlator::decide`]: the candidates are the active incidents (open, acknowledged,
//! contained), of the same kind (drill alerts — a `drill` label other than `false` — only join
//! drills, and real alerts only real incidents), whose last activity (`updated_at`: any joined
//! alert, status change, note or edit) is within the sliding window (default 30 minutes), and that
//! share an enabled entity kind with the alert. The most recently active candidate wins; ties go to
//! the one sharing more entities, then to the highest id. An alert already part of an active
//! incident stays in it. Every decision yields a timeline entry saying why.
//!
//! # Lifecycle
//!
//! `open → acknowledged → contained → resolved → closed`. Forward moves may skip steps; the
//! skipped steps get the same timestamp as the target when they have none. A resolved incident can
//! be reopened (`resolved → open`, clearing `resolved_at`). Every other move is a
//! [`LifecycleError`].
//!
//! # Timing metrics
//!
//! Computed by [`model::Incident::metrics`], in seconds:
//! - **time to detect** = `detected_at − started_at`: from the earliest `startsAt` of the
//!   incident's alerts (when the trouble began, as far as any source saw) to when Vigil opened the
//!   incident (never negative);
//! - **time to acknowledge** = `acknowledged_at − detected_at`;
//! - **time to contain** = `contained_at − detected_at`;
//! - **time to resolve** = `resolved_at − detected_at`.
//!
//! Each step's time is the first time the incident reached it (see Lifecycle), so reopening does
//! not reset acknowledge or contain times; resolving again sets a new `resolved_at`.

mod correlate;
mod entity;
mod lifecycle;

pub use correlate::{
    ACTIVE_STATUSES, ACTOR, Correlated, CorrelationConfig, Correlator, Decision, alert_resolved,
    assign_incident_id, attach, human_duration, is_drill_alert, open_incident,
};
pub use entity::{
    Entity, EntityKind, Role, alert_assets, alert_entities, campaign_entity,
    incident_campaign_entities, incident_entities, instance_host, main_entity,
    normalize_container_id, normalize_container_name, normalize_image,
};
pub use lifecycle::{
    LifecycleError, add_note, assign_commander, edit_action_plan, edit_narrative,
    is_narrative_field, set_severity, transition,
};
pub use model::TimingMetrics;

#[cfg(test)]
mod tests;
