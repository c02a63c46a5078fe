//! `vigil respond` (being built).

/// Subcommands of `vigil respond`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `vigil respond`.
pub async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {}
}
