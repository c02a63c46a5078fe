//! `vigil config` (being built).

/// Subcommands of `vigil config`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `vigil config`.
pub async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {}
}
