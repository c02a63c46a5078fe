//! HTTP client for commands that talk to a running Vigil (`--server URL` / `VIGIL_URL`,
//! `--token` / `VIGIL_TOKEN`), and the table helpers they share.

use anyhow::{Context, anyhow};
use serde_json::Value;

/// Where the running Vigil is and how to print.
#[derive(clap::Args, Debug, Clone)]
pub struct Remote {
    /// URL of the running Vigil.
    #[arg(long, env = "VIGIL_URL", default_value = "http://127.0.0.1:9093")]
    pub server: String,
    /// API token (needed for changes when Vigil listens on a non-loopback address).
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A client of one Vigil server.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `remote`.
    pub fn new(remote: &Remote) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: remote.server.trim_end_matches('/').to_string(),
            token: remote.token.clone().filter(|t| !t.is_empty()),
            http,
        })
    }

    /// `GET path` (with query string), JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach Vigil at {}: {e} (is `vigil up` running? set --server or VIGIL_URL)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let msg = v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| text.trim().to_string());
            let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                " (give the API token with --token or VIGIL_TOKEN)"
            } else {
                ""
            };
            return Err(anyhow!("{method} {path}: HTTP {status}: {msg}{hint}"));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: answer is not JSON"))
    }
}

/// Appends `?k=v&…` for the given present parameters.
pub fn with_query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let mut out = String::from(path);
    let mut first = true;
    for (k, v) in params {
        if let Some(v) = v {
            out.push(if first { '?' } else { '&' });
            first = false;
            out.push_str(k);
            out.push('=');
            for b in v.bytes() {
                if b.is_ascii_alphanumeric() || b"-_.~:,".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// A table with a header row, in Vigil's style.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// A JSON string field, or `""`.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A timestamp shortened to `YYYY-MM-DD HH:MM:SS`.
pub fn short_time(v: &Value, key: &str) -> String {
    let t = s(v, key);
    if t.len() >= 19 {
        t[..19].replace('T', " ")
    } else {
        t.to_string()
    }
}

/// Prints JSON pretty.
pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// The acting person: `--actor`, else `$USER`, else `cli`.
pub fn actor(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cli".into())
}
