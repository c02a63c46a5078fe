//! The OpenAPI 3.0 document served at `/api/v1/openapi.json`, written by hand and kept in sync
//! with the router by a test (every route documented, every documented operation routed).

use serde_json::{Value, json};

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true,
        "description": "Numeric id (`12`) or display id (`INC-12`).",
        "schema": {"type": "string"}})
}

fn q(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "413": {"$ref": "#/components/responses/TooLarge"}
    })
}

fn body(schema: Value, required: bool) -> Value {
    json!({"required": required, "content": {"application/json": {"schema": schema}}})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn arr(v: Value) -> Value {
    json!({"type": "array", "items": v})
}

fn mutating(summary: &str, description: &str, req: Value, resp: Value) -> Value {
    json!({"summary": summary, "description": description,
        "security": [{"bearer": []}],
        "parameters": [id_param()],
        "requestBody": req,
        "responses": resp})
}

/// The OpenAPI document.
pub fn openapi_document() -> Value {
    let actor = json!({"type": "string", "description": "Who does it; `api` when absent."});
    let am_filter = vec![
        q(
            "filter",
            "Label matchers (`name=\"v\"`, `!=`, `=~`, `!~`); repeatable.",
            arr(json!({"type": "string"})),
        ),
        q(
            "active",
            "Include active alerts (default true).",
            json!({"type": "boolean"}),
        ),
        q(
            "silenced",
            "Include silenced alerts (default true; Vigil has no silences yet).",
            json!({"type": "boolean"}),
        ),
        q(
            "inhibited",
            "Include inhibited alerts (default true; Vigil has no inhibitions yet).",
            json!({"type": "boolean"}),
        ),
        q(
            "unprocessed",
            "Include unprocessed alerts (default true).",
            json!({"type": "boolean"}),
        ),
        q(
            "receiver",
            "Regex the receiver name must match.",
            json!({"type": "string"}),
        ),
    ];
    json!({
      "openapi": "3.0.3",
      "info": {"title": "Vigil API", "version": env!("CARGO_PKG_VERSION"),
        "description": "Vigil's own API (/api/v1), the Alertmanager API v2 subset that Prometheus and amtool use (/api/v2), the Falco JSON intake and health endpoints. When Vigil listens on a non-loopback address (or a token is configured) every mutating request needs the API token: `Authorization: Bearer <token>`, or basic auth with the token as password."},
      "paths": {
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process runs."}}}},
        "/readyz": {"get": {"summary": "Readiness", "responses": {
            "200": {"description": "Store reachable, pipeline running."},
            "503": {"description": "Not ready; `error` says why."}}}},
        "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.0 document."}}}},
        "/api/v1/incidents": {"get": {
            "summary": "List incidents, newest first",
            "parameters": [
                q("status", "Comma-separated statuses (open, acknowledged, contained, resolved, closed).", json!({"type": "string"})),
                q("severity", "Minimum severity (info, notice, warning, error, critical).", json!({"type": "string"})),
                q("drill", "Only drills (true) or only real incidents (false).", json!({"type": "boolean"})),
                q("since", "Detected at or after: RFC 3339 time or a duration back from now (30m, 2h, 7d).", json!({"type": "string"})),
                q("limit", "At most this many.", json!({"type": "integer"}))],
            "responses": ok("Incidents.", arr(r("Incident")))}},
        "/api/v1/incidents/{id}": {"get": {
            "summary": "One incident with its metrics, timeline, alerts, actions and evidence",
            "parameters": [id_param()],
            "responses": ok("The incident.", r("IncidentDetail"))}},
        "/api/v1/incidents/{id}/report-input": {"get": {
            "summary": "Everything the report generator reads",
            "parameters": [id_param()],
            "responses": ok("`{incident, timeline, alerts, actions, evidence}`.", r("ReportInput"))}},
        "/api/v1/incidents/{id}/report": {"get": {
            "summary": "The incident report (drafted from the record where not yet written)",
            "parameters": [id_param(),
                q("format", "md (default), html, pdf or json.", json!({"type": "string", "enum": ["md", "html", "pdf", "json"]}))],
            "responses": {
                "200": {"description": "The report in the asked format.", "content": {
                    "text/markdown": {"schema": {"type": "string"}},
                    "text/html": {"schema": {"type": "string"}},
                    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "Unknown format."},
                "404": {"description": "No such incident."}}}},
        "/api/v1/incidents/{id}/ack": {"post": mutating("Acknowledge",
            "Moves the incident to `acknowledged` (409 when that is not a legal step).",
            body(json!({"type": "object", "properties": {"actor": actor}}), false),
            ok("The incident.", r("Incident")))},
        "/api/v1/incidents/{id}/status": {"post": mutating("Change lifecycle status",
            "open → acknowledged → contained → resolved → closed; 409 for an illegal step.",
            body(json!({"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["open", "acknowledged", "contained", "resolved", "closed"]},
                "actor": actor}}), true),
            ok("The incident.", r("Incident")))},
        "/api/v1/incidents/{id}/commander": {"post": mutating("Assign the incident commander", "",
            body(json!({"type": "object", "required": ["commander"], "properties": {
                "commander": {"type": "string"}, "actor": actor}}), true),
            ok("The incident.", r("Incident")))},
        "/api/v1/incidents/{id}/notes": {"post": mutating("Add a note to the timeline", "",
            body(json!({"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string"}, "actor": actor}}), true),
            ok("The timeline entry.", r("TimelineEntry")))},
        "/api/v1/incidents/{id}/narrative": {"patch": mutating("Edit narrative fields and the action plan",
            "Only the fields present change; null clears a field. Unknown fields are refused with 400 naming them.",
            body(json!({"type": "object", "properties": {
                "executive_summary": {"type": "string", "nullable": true},
                "impact": {"type": "string", "nullable": true},
                "root_cause": {"type": "string", "nullable": true},
                "remediation": {"type": "string", "nullable": true},
                "lessons_learned": {"type": "string", "nullable": true},
                "action_plan": arr(r("ActionItem")),
                "actor": actor}}), true),
            ok("The incident.", r("Incident")))},
        "/api/v1/incidents/{id}/actions": {"post": mutating("Request a response action",
            "Hands the request to the response engine; 503 when it is not running.",
            body(json!({"type": "object", "required": ["kind", "target"], "properties": {
                "kind": {"type": "string", "description": "kill, stop, pause, remove, restart, quarantine, redeploy, remove_image, block_image, evidence, kill_process"},
                "target": {"type": "string"}, "params": {"type": "object"}, "actor": actor}}), true),
            ok("The action.", r("Action")))},
        "/api/v1/actions": {"get": {"summary": "List response actions, oldest first",
            "parameters": [q("incident", "Only of this incident.", json!({"type": "string"})),
                q("status", "Only in this status.", json!({"type": "string"}))],
            "responses": ok("Actions.", arr(r("Action")))}},
        "/api/v1/actions/{id}/approve": {"post": mutating("Approve an action awaiting approval",
            "503 when the response engine is not running.",
            body(json!({"type": "object", "properties": {"actor": actor}}), false),
            ok("The action.", r("Action")))},
        "/api/v1/actions/{id}/deny": {"post": mutating("Deny an action awaiting approval",
            "503 when the response engine is not running.",
            body(json!({"type": "object", "properties": {"actor": actor}}), false),
            ok("The action.", r("Action")))},
        "/api/v1/alerts": {"get": {"summary": "List alerts, newest update first",
            "parameters": [
                q("state", "firing, resolved or all (default).", json!({"type": "string"})),
                q("incident", "Only alerts of this incident.", json!({"type": "string"})),
                q("unassigned", "Only alerts not correlated yet.", json!({"type": "boolean"})),
                q("limit", "At most this many.", json!({"type": "integer"}))],
            "responses": ok("Alerts.", arr(r("StoredAlert")))}},
        "/api/v1/falco": {"post": {"summary": "Falco intake",
            "description": "Falco http_output JSON or a Falcosidekick payload (or an array of them). Each becomes an alert: alertname = rule, severity from priority, labels source=falco, container_id, container_name, image, k8s_ns, k8s_pod, host; annotations output, description, summary, priority, tags; the payload is kept as evidence.",
            "security": [{"bearer": []}],
            "requestBody": body(json!({"oneOf": [r("FalcoPayload"), arr(r("FalcoPayload"))]}), true),
            "responses": ok("Accepted and durable.", json!({"type": "object", "properties": {
                "accepted": {"type": "integer"}, "fingerprints": arr(json!({"type": "string"}))}}))}},
        "/api/v2/alerts": {
            "get": {"summary": "Alertmanager v2: list active alerts (gettableAlerts)",
                "parameters": am_filter.clone(),
                "responses": ok("Alerts.", arr(r("GettableAlert")))},
            "post": {"summary": "Alertmanager v2: post alerts (postableAlerts)",
                "description": "A 200 means every alert is durable. A missing startsAt is the time of receipt; a missing endsAt resolves the alert resolve_timeout after it was last received. One invalid alert refuses the whole batch with 400 naming its index and field.",
                "security": [{"bearer": []}],
                "requestBody": body(arr(r("PostableAlert")), true),
                "responses": {"200": {"description": "Durable."},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "413": {"$ref": "#/components/responses/TooLarge"}}}},
        "/api/v2/alerts/groups": {"get": {"summary": "Alertmanager v2: alert groups",
            "parameters": am_filter,
            "responses": ok("Groups.", arr(json!({"type": "object", "properties": {
                "labels": {"type": "object"}, "receiver": {"type": "object"}, "alerts": arr(r("GettableAlert"))}})))}},
        "/api/v2/status": {"get": {"summary": "Alertmanager v2: status (cluster, versionInfo, config.original, uptime)",
            "responses": {"200": {"description": "Status."}}}},
        "/api/v2/receivers": {"get": {"summary": "Alertmanager v2: receivers",
            "responses": {"200": {"description": "Receivers."}}}},
        "/api/v2/silences": {"get": {"summary": "Alertmanager v2: silences (none yet)",
            "responses": {"200": {"description": "An empty list."}}}}
      },
      "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The API token; basic auth with the token as password is accepted too."}},
        "responses": {
            "BadRequest": {"description": "Malformed request; `field` names the place.", "content": {"application/json": {"schema": r("Error")}}},
            "Unauthorized": {"description": "Missing or wrong API token.", "content": {"application/json": {"schema": r("Error")}}},
            "NotFound": {"description": "No such incident, action or route.", "content": {"application/json": {"schema": r("Error")}}},
            "TooLarge": {"description": "Body over the limit.", "content": {"application/json": {"schema": r("Error")}}}
        },
        "schemas": {
          "Error": {"type": "object", "required": ["error"], "properties": {
              "error": {"type": "string"}, "field": {"type": "string"}}},
          "Labels": {"type": "object", "additionalProperties": {"type": "string"}},
          "PostableAlert": {"type": "object", "required": ["labels"], "properties": {
              "labels": r("Labels"), "annotations": r("Labels"),
              "startsAt": {"type": "string", "format": "date-time"},
              "endsAt": {"type": "string", "format": "date-time"},
              "generatorURL": {"type": "string"}}},
          "GettableAlert": {"type": "object", "properties": {
              "labels": r("Labels"), "annotations": r("Labels"),
              "startsAt": {"type": "string", "format": "date-time"},
              "endsAt": {"type": "string", "format": "date-time"},
              "updatedAt": {"type": "string", "format": "date-time"},
              "generatorURL": {"type": "string"}, "fingerprint": {"type": "string"},
              "receivers": arr(json!({"type": "object", "properties": {"name": {"type": "string"}}})),
              "status": {"type": "object", "properties": {"state": {"type": "string"},
                  "silencedBy": arr(json!({"type": "string"})), "inhibitedBy": arr(json!({"type": "string"}))}}}},
          "Alert": {"type": "object", "properties": {
              "labels": r("Labels"), "annotations": r("Labels"),
              "startsAt": {"type": "string", "format": "date-time"},
              "endsAt": {"type": "string", "format": "date-time"},
              "generatorURL": {"type": "string"},
              "updatedAt": {"type": "string", "format": "date-time"},
              "timeout": {"type": "boolean"}, "evidence": {}}},
          "StoredAlert": {"type": "object", "properties": {
              "fingerprint": {"type": "string"}, "alert": r("Alert"),
              "incident_id": {"type": "integer"},
              "state": {"type": "string", "enum": ["firing", "resolved"]}}},
          "ActionItem": {"type": "object", "required": ["text"], "properties": {
              "text": {"type": "string"}, "owner": {"type": "string"},
              "due": {"type": "string"}, "done": {"type": "boolean"}}},
          "Incident": {"type": "object", "properties": {
              "id": {"type": "integer"}, "title": {"type": "string"},
              "status": {"type": "string"}, "severity": {"type": "string"},
              "commander": {"type": "string"}, "drill": {"type": "boolean"},
              "started_at": {"type": "string", "format": "date-time"},
              "detected_at": {"type": "string", "format": "date-time"},
              "acknowledged_at": {"type": "string", "format": "date-time"},
              "contained_at": {"type": "string", "format": "date-time"},
              "resolved_at": {"type": "string", "format": "date-time"},
              "closed_at": {"type": "string", "format": "date-time"},
              "updated_at": {"type": "string", "format": "date-time"},
              "assets": {"type": "object"}, "alerts": arr(json!({"type": "string"})),
              "narrative": {"type": "object"}}},
          "TimelineEntry": {"type": "object", "properties": {
              "id": {"type": "integer"}, "incident_id": {"type": "integer"},
              "at": {"type": "string", "format": "date-time"}, "kind": {"type": "string"},
              "actor": {"type": "string"}, "summary": {"type": "string"}, "data": {}}},
          "Action": {"type": "object", "properties": {
              "id": {"type": "integer"}, "incident_id": {"type": "integer"},
              "kind": {"type": "string"}, "target": {"type": "string"}, "params": {},
              "actor": {"type": "string"}, "status": {"type": "string"},
              "error": {"type": "string"},
              "requested_at": {"type": "string", "format": "date-time"},
              "started_at": {"type": "string", "format": "date-time"},
              "finished_at": {"type": "string", "format": "date-time"},
              "decided_by": {"type": "string"}}},
          "Evidence": {"type": "object", "properties": {
              "id": {"type": "integer"}, "incident_id": {"type": "integer"},
              "kind": {"type": "string"}, "subject": {"type": "string"},
              "path": {"type": "string"}, "sha256": {"type": "string"},
              "size": {"type": "integer"},
              "collected_at": {"type": "string", "format": "date-time"}}},
          "ReportInput": {"type": "object", "properties": {
              "incident": r("Incident"), "timeline": arr(r("TimelineEntry")),
              "alerts": arr(r("StoredAlert")), "actions": arr(r("Action")),
              "evidence": arr(r("Evidence"))}},
          "IncidentDetail": {"type": "object", "properties": {
              "incident": r("Incident"), "metrics": {"type": "object", "properties": {
                  "time_to_detect": {"type": "number"}, "time_to_acknowledge": {"type": "number"},
                  "time_to_contain": {"type": "number"}, "time_to_resolve": {"type": "number"}}},
              "timeline": arr(r("TimelineEntry")),
              "alerts": arr(r("StoredAlert")), "actions": arr(r("Action")),
              "evidence": arr(r("Evidence"))}},
          "FalcoPayload": {"type": "object", "required": ["rule", "priority"], "properties": {
              "output": {"type": "string"}, "priority": {"type": "string"},
              "rule": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
              "output_fields": {"type": "object"}, "source": {"type": "string"},
              "tags": arr(json!({"type": "string"})), "hostname": {"type": "string"},
              "uuid": {"type": "string"}}}
        }
      }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_operation_routed() {
        let doc = openapi_document();
        let paths = doc["paths"].as_object().unwrap();
        let routes = crate::routes();
        for (method, path, _) in &routes {
            let m = method.as_str().to_ascii_lowercase();
            assert!(
                paths.get(*path).and_then(|p| p.get(&m)).is_some(),
                "route {method} {path} is not in the OpenAPI document"
            );
        }
        for (path, ops) in paths {
            for m in ops.as_object().unwrap().keys() {
                assert!(
                    routes
                        .iter()
                        .any(|(rm, rp, _)| rp == path && rm.as_str().eq_ignore_ascii_case(m)),
                    "documented {m} {path} is not routed"
                );
            }
        }
        // Every $ref points at a defined component.
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            let mut parts = target.split('/');
            let (section, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(
                doc["components"][section].get(name).is_some(),
                "dangling $ref {target}"
            );
        }
    }
}
