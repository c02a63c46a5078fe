//! `vigil up` (being built).

/// Arguments of `vigil up`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `vigil up`.
pub async fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("vigil up is not built yet")
}
