//! `vigil report` (being built).

/// Arguments of `vigil report`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `vigil report`.
pub async fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("vigil report is not built yet")
}
