//! `vigil rules` (being built).

/// Subcommands of `vigil rules`.
#[derive(clap::Subcommand)]
pub enum Command {}

/// Runs `vigil rules`.
pub async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    match command {}
}
