//! Vigil's response engine.
//!
//! Response policies (YAML, see [`policy`]) decide which actions to take when an alert joins an
//! incident: Docker actions (kill, stop, pause, remove, restart, quarantine, redeploy, remove and
//! block images, collect evidence) through the Docker Engine API, and killing a host process
//! safely against pid reuse. Every action passes the guardrails ([`guard`]: never Vigil itself,
//! protected targets, rate limits, dry run, target-changed checks) and is recorded as a stored
//! [`model::Action`] plus timeline entries on its incident, with its actor (`policy:<name>` or a
//! person). People act through [`Engine::request`], [`Engine::approve`] and [`Engine::deny`].
//!
//! This is the only crate that calls mutating Docker endpoints.

pub mod blocklist;
pub mod docker;
mod engine;
pub mod guard;
pub mod matcher;
pub mod params;
pub mod policy;
pub mod process;
pub mod subject;

pub use engine::{Engine, EngineConfig, EngineError, IncidentHook, RunOutcome};
pub use guard::GuardConfig;
pub use policy::{ActionSpec, Match, Policy, PolicyError, PolicySet};
pub use subject::Subject;
