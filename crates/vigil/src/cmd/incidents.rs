//! `vigil incidents` (being built).

/// Subcommands of `vigil incidents`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `vigil incidents`.
pub async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {}
}
