//! Deterministic drafts of the narrative fields, written from the record alone (no language
//! model): the same record always gives the same words.

use crate::ReportInput;
use crate::text::{
    self, action_status, between, capitalise, count, join_and, join_some, short_id, time_utc,
};
use model::{
    Action, ActionItem, ActionStatus, Alert, Assets, Evidence, Incident, IncidentStatus, Labels,
    StoredAlert, TimelineEntry,
};
use std::collections::BTreeMap;

/// What the drafts and the data sections read: the record, sorted, with a few derived lists.
pub(crate) struct Facts<'a> {
    pub incident: &'a Incident,
    /// Sorted by time, then id.
    pub timeline: Vec<&'a TimelineEntry>,
    /// Sorted by start, then fingerprint.
    pub alerts: Vec<&'a StoredAlert>,
    /// Sorted by request time, then id.
    pub actions: Vec<&'a Action>,
    /// Sorted by collection time, then id.
    pub evidence: Vec<&'a Evidence>,
    /// The incident's assets, or (when it recorded none) those named by its alerts' labels.
    pub assets: Assets,
    /// Distinct alert names, in order of first start.
    pub alert_names: Vec<String>,
    /// Distinct rules, in order of first start.
    pub rules: Vec<String>,
    /// Distinct sources, in order of first start.
    pub sources: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

impl<'a> Facts<'a> {
    pub(crate) fn gather(input: &'a ReportInput) -> Self {
        let mut timeline: Vec<_> = input.timeline.iter().collect();
        timeline.sort_by_key(|e| (e.at, e.id));
        let mut alerts: Vec<_> = input.alerts.iter().collect();
        alerts.sort_by_key(|a| (a.alert.starts_at, a.fingerprint));
        let mut actions: Vec<_> = input.actions.iter().collect();
        actions.sort_by_key(|a| (a.requested_at, a.id));
        let mut evidence: Vec<_> = input.evidence.iter().collect();
        evidence.sort_by_key(|e| (e.collected_at, e.id));

        let mut assets = input.incident.assets.clone();
        if assets.count() == 0 {
            for a in &alerts {
                let l = &a.alert.labels;
                if let Some(h) = l.get("host").or_else(|| l.get("hostname")) {
                    assets.hosts.insert(h.to_string());
                }
                match (l.get("container_name"), l.get("container_id")) {
                    (Some(n), Some(id)) => {
                        assets.containers.insert(format!("{n} ({})", short_id(id)));
                    }
                    (Some(n), None) => {
                        assets.containers.insert(n.to_string());
                    }
                    (None, Some(id)) => {
                        assets.containers.insert(short_id(id));
                    }
                    (None, None) => {}
                }
                if let Some(i) = l.get("image") {
                    assets.images.insert(i.to_string());
                }
                if let (Some(ns), Some(p)) = (l.get("k8s_ns"), l.get("k8s_pod")) {
                    assets.pods.insert(format!("{ns}/{p}"));
                }
                if let Some(s) = l.get("instance").or_else(|| l.get("job")) {
                    assets.services.insert(s.to_string());
                }
            }
        }

        let mut alert_names = Vec::new();
        let mut rules = Vec::new();
        let mut sources = Vec::new();
        for a in &alerts {
            push_unique(&mut alert_names, a.alert.name().to_string());
            push_unique(&mut rules, rule_of(&a.alert));
            let s = source_of(&a.alert);
            if s != "unknown" {
                push_unique(&mut sources, s);
            }
        }
        Facts {
            incident: &input.incident,
            timeline,
            alerts,
            actions,
            evidence,
            assets,
            alert_names,
            rules,
            sources,
        }
    }

    /// Affected images: those named by alerts first, in order of the alerts' start, then the rest.
    fn images(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.alerts {
            if let Some(i) = a.alert.labels.get("image")
                && self.assets.images.contains(i)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
        for i in &self.assets.images {
            if !out.contains(&i.as_str()) {
                out.push(i);
            }
        }
        out
    }
}

/// The rule that raised an alert: its `rule` label, else its name.
pub(crate) fn rule_of(a: &Alert) -> String {
    a.labels.get("rule").unwrap_or_else(|| a.name()).to_string()
}

/// Where an alert came from: its `source` label, else a guess from its generator URL.
pub(crate) fn source_of(a: &Alert) -> String {
    if let Some(s) = a.labels.get("source") {
        return s.to_string();
    }
    if a.generator_url.contains("/graph") {
        return "prometheus".into();
    }
    "unknown".into()
}

/// What an alert is about, from its labels: container (with image), pod, instance or host.
pub(crate) fn asset_of(l: &Labels) -> String {
    let who = l
        .get("container_name")
        .map(str::to_string)
        .or_else(|| l.get("container_id").map(short_id))
        .or_else(|| {
            l.get("k8s_pod")
                .map(|p| format!("{}/{p}", l.get("k8s_ns").unwrap_or("default")))
        })
        .or_else(|| l.get("instance").map(str::to_string))
        .or_else(|| l.get("job").map(str::to_string))
        .or_else(|| l.get("host").map(str::to_string));
    match (who, l.get("image")) {
        (Some(w), Some(i)) => format!("{w} ({i})"),
        (Some(w), None) => w,
        (None, Some(i)) => i.to_string(),
        (None, None) => String::new(),
    }
}

/// Whether an actor is a response policy (automated) rather than a person.
pub(crate) fn automated(actor: &str) -> bool {
    actor.starts_with("policy:")
}

/// The NIST SP 800-61 phase an action kind belongs to.
pub(crate) fn phase(kind: &str) -> &'static str {
    match kind {
        "kill" | "stop" | "pause" | "quarantine" | "isolate" | "kill_process" | "disconnect" => {
            "containment"
        }
        "remove" | "remove_image" | "block_image" | "delete_image" => "eradication",
        "restart" | "redeploy" | "unpause" | "release" | "unquarantine" => "recovery",
        "evidence" => "analysis",
        _ => "other",
    }
}

/// Past-tense verb and object nouns for an action kind.
fn verb(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "kill" => ("killed", "container", "containers"),
        "stop" => ("stopped", "container", "containers"),
        "pause" => ("paused", "container", "containers"),
        "remove" => ("removed", "container", "containers"),
        "restart" => ("restarted", "container", "containers"),
        "quarantine" => ("quarantined", "container", "containers"),
        "redeploy" => ("redeployed", "container", "containers"),
        "remove_image" | "delete_image" => ("removed", "image", "images"),
        "block_image" => ("blocked", "image", "images"),
        "kill_process" => ("killed", "process", "processes"),
        "evidence" => ("collected evidence from", "target", "targets"),
        _ => ("acted on", "target", "targets"),
    }
}

/// `killed 3 containers and removed 3 images` for the given actions (grouped by kind, in order of
/// first appearance).
fn did(actions: &[&Action]) -> String {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for a in actions {
        match kinds.iter_mut().find(|(k, _)| *k == a.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&a.kind, 1)),
        }
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, n)| {
            let (v, s, p) = verb(k);
            if verb(k).0 == "acted on" {
                format!("ran {} {k}", count(*n, "action", "actions"))
            } else {
                format!("{v} {}", count(*n, s, p))
            }
        })
        .collect();
    join_and(&parts)
}

/// `all 6 actions succeeded` or `4 succeeded, 1 failed and 1 is awaiting approval`.
pub(crate) fn outcome_summary(actions: &[&Action]) -> String {
    if actions.is_empty() {
        return "no action was taken".into();
    }
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for a in actions {
        let s = action_status(a.status);
        if !by.contains_key(s) {
            order.push(s);
        }
        *by.entry(s).or_default() += 1;
    }
    if order.len() == 1 {
        let s = order[0];
        return match actions.len() {
            1 => format!("the action {s}"),
            2 => format!("both actions {s}"),
            n => format!("all {n} actions {s}"),
        };
    }
    let parts: Vec<String> = order.iter().map(|s| format!("{} {s}", by[s])).collect();
    format!("of {} actions, {}", actions.len(), join_and(&parts))
}

fn actor_phrase(actor: &str) -> String {
    match actor.strip_prefix("policy:") {
        Some(p) => format!("response policy {p}"),
        None => format!("responder {actor}"),
    }
}

/// What Vigil saw: `3 containers started from images a, b and c on host h`.
fn what_was_seen(f: &Facts) -> String {
    let a = &f.assets;
    let images = f.images();
    let mut s = if !a.containers.is_empty() && !images.is_empty() {
        format!(
            "{} started from {} {}",
            count(a.containers.len(), "container", "containers"),
            if images.len() == 1 { "image" } else { "images" },
            join_some(&images, 6)
        )
    } else if !a.containers.is_empty() {
        let c: Vec<&str> = a.containers.iter().map(String::as_str).collect();
        format!(
            "suspicious activity in {} ({})",
            count(c.len(), "container", "containers"),
            join_some(&c, 4)
        )
    } else if !a.pods.is_empty() {
        let p: Vec<&str> = a.pods.iter().map(String::as_str).collect();
        format!(
            "suspicious activity in {} ({})",
            count(p.len(), "pod", "pods"),
            join_some(&p, 4)
        )
    } else if !images.is_empty() {
        format!("activity involving image {}", join_some(&images, 6))
    } else if !a.services.is_empty() {
        let s: Vec<&str> = a.services.iter().map(String::as_str).collect();
        format!(
            "a problem with {} ({})",
            count(s.len(), "service", "services"),
            join_some(&s, 4)
        )
    } else {
        format!("\"{}\"", f.incident.title)
    };
    let hosts: Vec<&str> = a.hosts.iter().map(String::as_str).collect();
    match hosts.len() {
        0 => {}
        1 => s.push_str(&format!(" on host {}", hosts[0])),
        n => s.push_str(&format!(" on {n} hosts ({})", join_some(&hosts, 4))),
    }
    s
}

fn alerts_sentence(f: &Facts) -> Option<String> {
    if f.alerts.is_empty() {
        return None;
    }
    let mut s = format!(
        "{} joined the incident ({})",
        count(f.alerts.len(), "alert", "alerts"),
        join_some(&f.alert_names, 4)
    );
    if !f.sources.is_empty() {
        s.push_str(&format!(", raised by {}", join_and(&f.sources)));
    }
    s.push('.');
    Some(s)
}

/// Per actor, in order of first action: `Response policy kill-miners killed 3 containers.`
fn response_sentences(f: &Facts) -> Vec<String> {
    let mut actors: Vec<&str> = Vec::new();
    for a in &f.actions {
        if !actors.contains(&a.actor.as_str()) {
            actors.push(&a.actor);
        }
    }
    let mut out = Vec::new();
    for actor in actors {
        let done: Vec<&Action> = f
            .actions
            .iter()
            .copied()
            .filter(|a| a.actor == actor && a.status == ActionStatus::Succeeded)
            .collect();
        if !done.is_empty() {
            out.push(format!(
                "{} {}.",
                capitalise(&actor_phrase(actor)),
                did(&done)
            ));
        }
    }
    out
}

fn status_sentence(f: &Facts) -> String {
    let inc = f.incident;
    let m = inc.metrics();
    let mut s = match (m.time_to_contain, m.time_to_resolve) {
        (Some(c), Some(r)) => format!(
            "The incident was contained {} and resolved {} after detection",
            text::duration(c),
            text::duration(r)
        ),
        (Some(c), None) => format!(
            "The incident was contained {} after detection",
            text::duration(c)
        ),
        (None, Some(r)) => format!(
            "The incident was resolved {} after detection",
            text::duration(r)
        ),
        (None, None) => "The incident has not been contained".to_string(),
    };
    s.push_str(&format!("; its status is {}.", inc.status));
    s
}

/// Draft of the executive summary.
pub(crate) fn executive_summary(f: &Facts) -> String {
    let inc = f.incident;
    let mut p1 = format!(
        "On {} at {} UTC Vigil detected {}.",
        inc.detected_at.format("%Y-%m-%d"),
        inc.detected_at.format("%H:%M"),
        what_was_seen(f)
    );
    if let Some(a) = alerts_sentence(f) {
        p1.push(' ');
        p1.push_str(&a);
    }
    let mut p2 = response_sentences(f).join(" ");
    if f.actions.is_empty() {
        p2 = "No response action was recorded.".into();
    } else {
        if !p2.is_empty() {
            p2.push(' ');
        }
        p2.push_str(&format!("{}.", capitalise(&outcome_summary(&f.actions))));
    }
    p2.push(' ');
    p2.push_str(&status_sentence(f));
    if inc.drill {
        p2.push_str(" This was a drill, not a real incident.");
    }
    format!("{p1}\n\n{p2}")
}

/// Draft of the impact.
pub(crate) fn impact(f: &Facts) -> String {
    let inc = f.incident;
    let a = &f.assets;
    let mut parts = Vec::new();
    for (n, s, p) in [
        (a.containers.len(), "container", "containers"),
        (a.images.len(), "image", "images"),
        (a.pods.len(), "pod", "pods"),
        (a.services.len(), "service", "services"),
        (a.hosts.len(), "host", "hosts"),
    ] {
        if n > 0 {
            parts.push(count(n, s, p));
        }
    }
    let mut p1 = if parts.is_empty() {
        "No affected assets were recorded.".to_string()
    } else {
        format!("The incident touched {}.", join_and(&parts))
    };
    let end = inc.contained_at.or(inc.resolved_at);
    match end {
        Some(e) => p1.push_str(&format!(
            " The earliest sign of trouble was at {}; it was contained at {}, {} later.",
            time_utc(inc.started_at),
            text::time_after(e, inc.started_at),
            between(inc.started_at, e)
        )),
        None => p1.push_str(&format!(
            " The earliest sign of trouble was at {}; it had not been contained when the record was last updated ({}).",
            time_utc(inc.started_at),
            text::time_after(inc.updated_at, inc.started_at),
        )),
    }
    p1.push_str(&format!(" Severity: {}.", inc.severity));
    let p2 = "The business impact (data accessed, availability, cost) is not part of Vigil's record; \
              assess it and replace this draft.";
    format!("{p1}\n\n{p2}")
}

/// Draft of the root cause.
pub(crate) fn root_cause(f: &Facts) -> String {
    let mut p1 = String::new();
    if !f.rules.is_empty() {
        p1.push_str(&format!(
            "What the record shows: {} {} fired",
            if f.rules.len() == 1 { "rule" } else { "rules" },
            join_some(&f.rules, 5)
        ));
        if !f.sources.is_empty() {
            p1.push_str(&format!(" ({})", join_and(&f.sources)));
        }
        p1.push_str(&format!(" on {}.", what_was_seen(f)));
    } else {
        p1.push_str(&format!("What the record shows: {}.", what_was_seen(f)));
    }
    let mut descs: Vec<String> = Vec::new();
    for a in &f.alerts {
        let ann = &a.alert.annotations;
        if let Some(d) = ann
            .get("description")
            .or_else(|| ann.get("summary"))
            .or_else(|| ann.get("output"))
        {
            push_unique(&mut descs, d.trim().to_string());
        }
        if descs.len() >= 3 {
            break;
        }
    }
    let mut out = p1;
    if !descs.is_empty() {
        out.push_str("\n\n");
        out.push_str(
            &descs
                .iter()
                .map(|d| format!("- {}", d.replace('\n', " ")))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    let what = if f.assets.images.is_empty() {
        "the problem began"
    } else {
        "these images came to be run"
    };
    out.push_str(&format!(
        "\n\nHow {what}, and which control failed to prevent it, is not in Vigil's record yet."
    ));
    out
}

/// Draft of the remediation.
pub(crate) fn remediation(f: &Facts) -> String {
    let mut lines = Vec::new();
    for (ph, label) in [
        ("containment", "Containment"),
        ("eradication", "Eradication"),
        ("recovery", "Recovery"),
    ] {
        let acts: Vec<&Action> = f
            .actions
            .iter()
            .copied()
            .filter(|a| phase(&a.kind) == ph)
            .collect();
        if acts.is_empty() {
            lines.push(format!("- {label}: no action recorded."));
            continue;
        }
        let done: Vec<&Action> = acts
            .iter()
            .copied()
            .filter(|a| a.status == ActionStatus::Succeeded)
            .collect();
        let mut actors: Vec<String> = Vec::new();
        for a in &acts {
            push_unique(&mut actors, a.actor.clone());
        }
        let what = if done.is_empty() {
            "nothing completed".to_string()
        } else {
            did(&done)
        };
        lines.push(format!(
            "- {label}: {what} (by {}); {}.",
            join_and(&actors),
            outcome_summary(&acts)
        ));
    }
    if !f.evidence.is_empty() {
        lines.push(format!(
            "- Evidence: {} preserved with SHA-256 digests.",
            count(f.evidence.len(), "artifact", "artifacts")
        ));
    }
    let open = if f.incident.status < IncidentStatus::Resolved {
        "The incident is not resolved yet; remaining eradication and recovery work is in the action plan."
    } else {
        "Follow-up work is in the action plan."
    };
    format!("{}\n\n{open}", lines.join("\n"))
}

/// Draft of the lessons learned.
pub(crate) fn lessons_learned(f: &Facts) -> String {
    let inc = f.incident;
    let m = inc.metrics();
    let mut lines = Vec::new();
    if let Some(d) = m.time_to_detect {
        lines.push(format!(
            "- Detection took {} from the first alert to the incident.",
            text::duration(d)
        ));
    }
    let auto = f.actions.iter().filter(|a| automated(&a.actor)).count();
    match m.time_to_contain {
        Some(c) => lines.push(format!(
            "- Containment came {} after detection{}.",
            text::duration(c),
            if auto > 0 && auto == f.actions.len() {
                ", by automated response"
            } else if auto > 0 {
                ", by automated and manual response"
            } else if !f.actions.is_empty() {
                ", by manual response"
            } else {
                ""
            }
        )),
        None => lines.push("- The incident has not been contained.".into()),
    }
    match m.time_to_acknowledge {
        Some(a) => lines.push(format!(
            "- A person acknowledged the incident {} after detection.",
            text::duration(a)
        )),
        None => lines.push("- Nobody acknowledged the incident.".into()),
    }
    if inc.commander.is_none() {
        lines.push("- No incident commander was named.".into());
    }
    if !f.actions.is_empty() {
        lines.push(format!(
            "- {} of {} response actions were automated.",
            auto,
            f.actions.len()
        ));
    }
    let bad: Vec<&Action> = f
        .actions
        .iter()
        .copied()
        .filter(|a| {
            matches!(
                a.status,
                ActionStatus::Failed | ActionStatus::Refused | ActionStatus::Denied
            )
        })
        .collect();
    for a in bad.iter().take(5) {
        lines.push(format!(
            "- {} on {} {}{}.",
            a.kind,
            short_id(&a.target),
            action_status(a.status),
            a.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    format!(
        "What the record shows; add what the team learned (what went well, what to improve):\n\n{}",
        lines.join("\n")
    )
}

/// Draft of the action plan.
pub(crate) fn action_plan(f: &Facts) -> Vec<ActionItem> {
    let item = |t: String| ActionItem {
        text: t,
        owner: None,
        due: None,
        done: false,
    };
    let mut out = Vec::new();
    if f.incident.narrative.root_cause.is_none() {
        out.push(item(
            "Establish the root cause: how the affected workloads were started and which control failed."
                .into(),
        ));
    }
    for img in f.images().iter().take(10) {
        out.push(item(format!(
            "Deny image {img} at the registry and at admission."
        )));
    }
    for a in f
        .actions
        .iter()
        .filter(|a| matches!(a.status, ActionStatus::Failed | ActionStatus::Refused))
        .take(5)
    {
        out.push(item(format!(
            "Find out why {} on {} {}.",
            a.kind,
            short_id(&a.target),
            action_status(a.status)
        )));
    }
    if f.incident.commander.is_none() {
        out.push(item("Name an incident commander for the follow-up.".into()));
    }
    if f.incident.status < IncidentStatus::Resolved {
        out.push(item(
            "Finish eradication and recovery, then resolve the incident.".into(),
        ));
    }
    if !f.rules.is_empty() {
        out.push(item(format!(
            "Review the detection rules and response policies that fired ({}).",
            join_some(&f.rules, 4)
        )));
    }
    out
}
