//! Markdown and HTML through minijinja templates: the built-in defaults or an organisation's own.

use crate::{Format, Report, ReportError, Template};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};

/// The built-in Markdown template (a starting point for an organisation's own).
pub const DEFAULT_MARKDOWN_TEMPLATE: &str = include_str!("templates/report.md.j2");
/// The built-in HTML template (a starting point for an organisation's own).
pub const DEFAULT_HTML_TEMPLATE: &str = include_str!("templates/report.html.j2");

/// Escapes a table cell for a Markdown pipe table: `|` and line breaks.
fn md_cell(s: String) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// An RFC 3339 time as `2025-05-02 14:03:07 UTC`; other text unchanged.
fn datetime(s: String) -> String {
    match chrono::DateTime::parse_from_rfc3339(&s) {
        Ok(t) => crate::text::time_utc(t.with_timezone(&chrono::Utc)),
        Err(_) => s,
    }
}

/// Markdown to HTML; raw HTML in the text is shown, not interpreted.
fn markdown(s: String) -> Value {
    use pulldown_cmark::{Event, Options, Parser};
    let parser =
        Parser::new_ext(&s, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|ev| {
            match ev {
                Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
                e => e,
            }
        });
    let mut html = String::with_capacity(s.len() * 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    Value::from_safe_string(html)
}

fn template_error(name: &str, e: minijinja::Error) -> ReportError {
    let mut message = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        message.push_str(&format!(": {s}"));
        src = s.source();
    }
    ReportError::Template {
        name: name.to_string(),
        line: e.line(),
        message,
    }
}

/// Renders Markdown or HTML with `template` (else the built-in one).
pub(crate) fn render(
    report: &Report,
    incident: &model::Incident,
    chart_svg: Option<String>,
    format: Format,
    template: Option<&Template>,
) -> Result<String, ReportError> {
    let (default, ext) = match format {
        Format::Html => (DEFAULT_HTML_TEMPLATE, "html"),
        _ => (DEFAULT_MARKDOWN_TEMPLATE, "md"),
    };
    let (name, source) = match template {
        Some(t) => (t.name.clone(), t.source.as_str()),
        None => (format!("built-in report.{ext}.j2"), default),
    };
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| template_error(&name, e))?;
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    let is_html = format == Format::Html;
    env.set_auto_escape_callback(move |_| {
        if is_html {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.add_filter("md_cell", md_cell);
    env.add_filter("markdown", markdown);
    env.add_filter("datetime", datetime);
    env.add_template_owned(name.clone(), source.to_string())
        .map_err(|e| template_error(&name, e))?;
    let tmpl = env
        .get_template(&name)
        .map_err(|e| template_error(&name, e))?;
    let chart = match chart_svg {
        Some(svg) if is_html => Value::from_safe_string(svg),
        Some(svg) => Value::from(svg),
        None => Value::from(()),
    };
    let ctx = minijinja::context! {
        report => Value::from(Serde(report)),
        incident => Value::from(Serde(incident)),
        chart_svg => chart,
        format => format.as_str(),
    };
    tmpl.render(ctx).map_err(|e| template_error(&name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_read_well() {
        assert_eq!(
            datetime("2025-05-02T14:03:07.123456Z".into()),
            "2025-05-02 14:03:07 UTC"
        );
        assert_eq!(datetime("soon".into()), "soon");
    }

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(md_cell("a|b\nc".into()), "a\\|b<br>c");
    }

    #[test]
    fn markdown_does_not_pass_raw_html() {
        let v = markdown("hi <script>x</script> **b**".into());
        let s = v.to_string();
        assert!(s.contains("&lt;script&gt;"), "{s}");
        assert!(s.contains("<strong>b</strong>"), "{s}");
    }
}
