//! `vigil alerts` (being built).

/// Subcommands of `vigil alerts`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `vigil alerts`.
pub async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {}
}
