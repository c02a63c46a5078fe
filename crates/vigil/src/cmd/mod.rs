//! One module per subcommand; each defines its clap arguments and a `run` returning the exit code.

pub mod alerts;
pub mod config;
pub mod incidents;
pub mod report;
pub mod respond;
pub mod rules;
pub mod sensor;
pub mod up;
