//! `vigil report`: renders an incident report as Markdown, HTML, PDF or JSON, from a running Vigil
//! (`GET /api/v1/incidents/{id}/report-input`) or offline from a saved `ReportInput` JSON file.

use anyhow::{Context, anyhow, bail};
use report::{Format, Options, ReportInput, Template};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `vigil report`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["id", "input"])))]
pub struct Args {
    /// Incident id (`12` or `INC-12`), fetched from the running Vigil.
    pub id: Option<String>,
    /// Render from a ReportInput JSON file instead (`-` for stdin); works offline.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output format: md, html, pdf or json (default: from the -o extension, else md).
    #[arg(long, short = 'f')]
    pub format: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The organisation's own minijinja template (Markdown and HTML).
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Also save the fetched ReportInput JSON here (to render it again offline).
    #[arg(long, value_name = "FILE")]
    pub save_input: Option<PathBuf>,
    /// Leave the generation time out (byte-identical output for the same record).
    #[arg(long)]
    pub reproducible: bool,
    /// Leave the timeline chart out of HTML and PDF.
    #[arg(long)]
    pub no_chart: bool,
    /// URL of the running Vigil.
    #[arg(long, env = "VIGIL_URL", default_value = "http://127.0.0.1:9093")]
    pub server: String,
    /// API token, if the server asks for one.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Runs `vigil report`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format = pick_format(args.format.as_deref(), args.output.as_deref())?;
    if format == Format::Pdf && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("a PDF is binary: write it to a file with -o FILE.pdf (or redirect standard output)");
    }

    let (input, raw) = match (&args.input, &args.id) {
        (Some(path), _) => {
            let (bytes, origin) = if path.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut b)
                    .context("reading the report input from standard input")?;
                (b, "<stdin>".to_string())
            } else {
                let b =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                (b, path.display().to_string())
            };
            (ReportInput::from_json(&bytes, &origin)?, bytes)
        }
        (None, Some(id)) => fetch(&args.server, args.token.as_deref(), id).await?,
        (None, None) => bail!("give an incident id or --input FILE"),
    };
    if let Some(path) = &args.save_input {
        std::fs::write(path, &raw).with_context(|| format!("writing {}", path.display()))?;
    }

    let template = match &args.template {
        Some(path) => Some(Template {
            name: path.display().to_string(),
            source: std::fs::read_to_string(path)
                .with_context(|| format!("reading template {}", path.display()))?,
        }),
        None => None,
    };
    let options = Options {
        template,
        generated_at: (!args.reproducible).then(|| model::Time::from(std::time::SystemTime::now())),
        no_chart: args.no_chart,
    };
    let bytes = report::render(&input, format, &options)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} report of {} to {} ({} bytes)",
                format,
                input.incident.display_id(),
                path.display(),
                bytes.len()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes).context("writing the report")?;
            out.flush().context("writing the report")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The format: `--format`, else the output file's extension, else Markdown.
fn pick_format(format: Option<&str>, output: Option<&std::path::Path>) -> anyhow::Result<Format> {
    Ok(match (format, output) {
        (Some(f), _) => f.parse::<Format>()?,
        (None, Some(path)) => path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse::<Format>().ok())
            .unwrap_or(Format::Markdown),
        (None, None) => Format::Markdown,
    })
}

/// `12` or `INC-12` → 12.
fn incident_number(id: &str) -> anyhow::Result<i64> {
    let id = id.trim();
    id.strip_prefix("INC-")
        .unwrap_or(id)
        .parse::<i64>()
        .map_err(|_| anyhow!("incident id {id:?} is neither a number nor INC-<number>"))
}

/// Fetches `GET {server}/api/v1/incidents/{id}/report-input`; a server without that endpoint is
/// asked for `GET /api/v1/incidents/{id}`, whose answer carries the same fields.
async fn fetch(
    server: &str,
    token: Option<&str>,
    id: &str,
) -> anyhow::Result<(ReportInput, Vec<u8>)> {
    let id = id.trim();
    let num = incident_number(id)?;
    let base = server.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let mut last = None;
    for path in [
        format!("/api/v1/incidents/{num}/report-input"),
        format!("/api/v1/incidents/{num}"),
    ] {
        let url = format!("{base}{path}");
        let mut req = http.get(&url);
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow!("cannot reach Vigil at {base}: {e} (is `vigil up` running? set --server or VIGIL_URL)")
        })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("GET {url}: reading the answer"))?
            .to_vec();
        if status == reqwest::StatusCode::NOT_FOUND && path.ends_with("/report-input") {
            // Either the incident does not exist or the server predates the endpoint.
            last = Some(String::from_utf8_lossy(&body).trim().to_string());
            continue;
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            bail!("GET {path}: HTTP {status}: {msg}");
        }
        let input = ReportInput::from_json(&body, &url)?;
        return Ok((input, body));
    }
    Err(anyhow!(
        "incident {id} not found at {base}: {}",
        last.unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn format_from_flag_then_extension() {
        assert_eq!(pick_format(Some("pdf"), None).unwrap(), Format::Pdf);
        assert_eq!(
            pick_format(Some("json"), Some(Path::new("x.pdf"))).unwrap(),
            Format::Json
        );
        assert_eq!(
            pick_format(None, Some(Path::new("r.html"))).unwrap(),
            Format::Html
        );
        assert_eq!(
            pick_format(None, Some(Path::new("r.txt"))).unwrap(),
            Format::Markdown
        );
        assert_eq!(pick_format(None, None).unwrap(), Format::Markdown);
        assert!(pick_format(Some("docx"), None).is_err());
    }

    #[test]
    fn incident_ids() {
        assert_eq!(incident_number("12").unwrap(), 12);
        assert_eq!(incident_number(" INC-7 ").unwrap(), 7);
        assert!(
            incident_number("INC-x")
                .unwrap_err()
                .to_string()
                .contains("INC-<number>")
        );
    }
}
