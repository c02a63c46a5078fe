//! `vigil sensor` (being built).

/// Arguments of `vigil sensor`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `vigil sensor`.
pub async fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("vigil sensor is not built yet")
}
