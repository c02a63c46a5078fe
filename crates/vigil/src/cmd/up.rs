//! `vigil up`: runs everything in one process.

use app::{App, Config, TokenOrigin};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `vigil up`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:9093, Alertmanager's port). On a non-loopback
    /// address mutating requests need an API token.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (default ./vigil-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration file (YAML); flags override it.
    #[arg(long, env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Shutting down: finishing open requests.");
}

/// Runs `vigil up`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    let app = App::start(config).await?;
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let url = if local.is_ipv6() {
        format!("http://[{host}]:{}", local.port())
    } else {
        format!("http://{host}:{}", local.port())
    };
    println!("Vigil is up at {url}");
    println!("  store: {}", app.config().store_url());
    match app.token_origin() {
        TokenOrigin::None => {}
        TokenOrigin::Configured => println!("  API token: from the configuration"),
        TokenOrigin::Generated(path) => {
            println!(
                "  API token (generated, shown once; kept in {}): {}",
                path.display(),
                app.api_token().unwrap_or("")
            );
            println!(
                "  send it as `Authorization: Bearer <token>` (Prometheus: `authorization: {{credentials: <token>}}` under alerting.alertmanagers)"
            );
        }
        TokenOrigin::Saved(path) => println!("  API token: in {}", path.display()),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    app.serve(listener, shutdown_signal()).await?;
    app.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
