//! The built-in container threat rule pack (`rules/vigil_rules.yaml`), loaded first so user
//! files can override it.

/// Name of the built-in pack in diagnostics.
pub const BUILTIN_SOURCE_NAME: &str = "builtin:vigil_rules.yaml";

/// The built-in rules, in the Falco rules language.
pub const BUILTIN_RULES: &str = include_str!("../rules/vigil_rules.yaml");
