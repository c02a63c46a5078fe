//! Vigil's shared vocabulary.
//!
//! Every other crate meets through the values defined here: [`Labels`] (with Alertmanager-identical
//! fingerprints), [`Alert`] (Alertmanager's alert model), [`Event`] (a runtime event whose fields are
//! addressable by Falco field names), [`Incident`] with its [`TimelineEntry`]s, response
//! [`Action`]s and [`Evidence`], and the [`Store`] seam that persistence backends implement.
//!
//! This crate does no I/O.

mod action;
mod alert;
mod event;
pub mod fields;
mod incident;
mod labels;
mod matcher;
mod severity;
mod store;
mod timeline;

pub use action::{Action, ActionStatus, Evidence};
pub use alert::{Alert, AlertState};
pub use event::{Ancestor, ContainerInfo, Event, EventSource, FdInfo, ProcessInfo, UserInfo};
pub use fields::{Field, FieldKind};
pub use incident::{ActionItem, Assets, Incident, IncidentStatus, Narrative, TimingMetrics};
pub use labels::{Fingerprint, Labels};
pub use matcher::{LabelMatcher, MatchOp, anchored};
pub use severity::Severity;
pub use store::{AlertQuery, IncidentQuery, Store, StoreError, StoredAlert};
pub use timeline::{TimelineEntry, TimelineKind};

/// Time as used throughout Vigil: UTC with nanosecond precision.
pub type Time = chrono::DateTime<chrono::Utc>;
