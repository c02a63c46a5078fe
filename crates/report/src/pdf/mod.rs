//! The PDF renderer: a small in-process layout engine (A4, wrapped text, tables with repeated
//! headers, page breaks, bookmarks, page numbers) over the PDF standard fonts, with the timeline
//! chart drawn as vector path operators. No external program, no font files.

mod fonts;
mod writer;

use crate::chart::{Anchor, Chart, Prim, Rgb};
use crate::document::{Report, Section, Table};
use fonts::{Font, pdf_string};
use std::fmt::Write;
use writer::{Bookmark, PAGE_H, PAGE_W, Page};

const ML: f64 = 50.0;
const MR: f64 = 50.0;
const MT: f64 = 56.0;
const MB: f64 = 58.0;
const CW: f64 = PAGE_W - ML - MR;

const INK: Rgb = (30, 30, 30);
const MUTED: Rgb = (105, 105, 105);
const RULE: Rgb = (205, 205, 205);
const HEAD_BG: Rgb = (238, 238, 238);
const DRAFT: Rgb = (179, 92, 0);
const DRAFT_BG: Rgb = (255, 244, 228);
const DRILL: Rgb = (59, 110, 168);

/// Renders the report as a PDF document.
pub(crate) fn render(report: &Report, chart: Option<&Chart>) -> Vec<u8> {
    let report = &pdf_safe(report);
    let mut d = Doc::new();
    d.title_block(report);
    for s in &report.sections {
        d.section(s, report, chart);
    }
    d.finish(report)
}

/// The report with characters the standard fonts lack replaced where a look-alike exists.
fn pdf_safe(report: &Report) -> Report {
    let f = |s: &mut String| {
        if let std::borrow::Cow::Owned(o) = fonts::ascii_fallbacks(s) {
            *s = o;
        }
    };
    let mut r = report.clone();
    f(&mut r.title_block.title);
    f(&mut r.title_block.period);
    if let Some(c) = r.title_block.commander.as_mut() {
        f(c);
    }
    for s in &mut r.sections {
        f(&mut s.text);
        for t in &mut s.tables {
            t.columns.iter_mut().for_each(f);
            for row in &mut t.rows {
                row.iter_mut().for_each(f);
            }
        }
    }
    r
}

struct Doc {
    pages: Vec<Page>,
    cur: String,
    y: f64,
    bookmarks: Vec<Bookmark>,
}

fn color(c: Rgb) -> (f64, f64, f64) {
    (c.0 as f64 / 255.0, c.1 as f64 / 255.0, c.2 as f64 / 255.0)
}

/// Greedy word wrap to `width`; words longer than a line are broken between characters.
/// Explicit newlines start new lines.
fn wrap(font: Font, size: f64, text: &str, width: f64) -> Vec<String> {
    let mut lines = Vec::new();
    let space = font.char_width(' ', size);
    for raw in text.split('\n') {
        let mut line = String::new();
        let mut lw = 0.0;
        for word in raw.split_whitespace() {
            let ww = font.width(word, size);
            if !line.is_empty() && lw + space + ww <= width {
                line.push(' ');
                line.push_str(word);
                lw += space + ww;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                lw = 0.0;
            }
            if ww <= width {
                line.push_str(word);
                lw = ww;
            } else {
                for c in word.chars() {
                    let cw = font.char_width(c, size);
                    if lw + cw > width && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        lw = 0.0;
                    }
                    line.push(c);
                    lw += cw;
                }
            }
        }
        lines.push(line);
    }
    lines
}

impl Doc {
    fn new() -> Self {
        Doc {
            pages: Vec::new(),
            cur: String::with_capacity(16 * 1024),
            y: PAGE_H - MT,
            bookmarks: Vec::new(),
        }
    }

    fn break_page(&mut self) {
        let content = std::mem::replace(&mut self.cur, String::with_capacity(16 * 1024));
        self.pages.push(Page { content });
        self.y = PAGE_H - MT;
    }

    /// Starts a new page unless `h` points still fit on this one.
    fn need(&mut self, h: f64) {
        if self.y - h < MB {
            self.break_page();
        }
    }

    fn text(&mut self, x: f64, y: f64, font: Font, size: f64, c: Rgb, s: &str) {
        if s.is_empty() {
            return;
        }
        let (r, g, b) = color(c);
        let _ = write!(
            self.cur,
            "BT /{} {size:.2} Tf {r:.3} {g:.3} {b:.3} rg {x:.2} {y:.2} Td ",
            font.resource()
        );
        pdf_string(s, &mut self.cur);
        self.cur.push_str(" Tj ET\n");
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, c: Rgb) {
        let (r, g, b) = color(c);
        let _ = writeln!(
            self.cur,
            "{r:.3} {g:.3} {b:.3} rg {x:.2} {y:.2} {w:.2} {h:.2} re f"
        );
    }

    fn hline(&mut self, x1: f64, x2: f64, y: f64, c: Rgb, w: f64) {
        let (r, g, b) = color(c);
        let _ = writeln!(
            self.cur,
            "{r:.3} {g:.3} {b:.3} RG {w:.2} w {x1:.2} {y:.2} m {x2:.2} {y:.2} l S"
        );
    }

    /// A small filled label (`DRAFT`, `DRILL`) with its left edge at `x`, baseline `y`.
    fn badge(&mut self, x: f64, y: f64, label: &str, bg: Rgb) -> f64 {
        let size = 7.5;
        let w = Font::Bold.width(label, size) + 8.0;
        self.rect(x, y - 2.5, w, size + 4.0, bg);
        self.text(x + 4.0, y, Font::Bold, size, (255, 255, 255), label);
        w
    }

    /// Wrapped lines with page breaks; returns nothing, moves the cursor.
    #[allow(clippy::too_many_arguments)]
    fn lines(
        &mut self,
        text: &str,
        font: Font,
        size: f64,
        leading: f64,
        x: f64,
        width: f64,
        c: Rgb,
    ) {
        for line in wrap(font, size, text, width) {
            self.need(leading);
            self.y -= leading;
            self.text(x, self.y + leading - size, font, size, c, &line);
        }
    }

    fn title_block(&mut self, report: &Report) {
        let tb = &report.title_block;
        // Kicker line with badges.
        let ky = self.y - 9.0;
        self.text(ML, ky, Font::Bold, 9.0, MUTED, "INCIDENT REPORT");
        let mut x = ML + Font::Bold.width("INCIDENT REPORT", 9.0) + 8.0;
        if tb.drill {
            x += self.badge(x, ky, "DRILL", DRILL) + 5.0;
        }
        if report.draft {
            self.badge(x, ky, "DRAFT", DRAFT);
        }
        self.y -= 16.0;
        let title = format!("{}: {}", tb.id, tb.title);
        self.lines(&title, Font::Bold, 19.0, 24.0, ML, CW, INK);
        self.y -= 10.0;
        let mut rows: Vec<(&str, String)> = vec![
            ("Incident", tb.id.clone()),
            ("Severity", tb.severity.to_string()),
            ("Status", tb.status.clone()),
            (
                "Incident commander",
                tb.commander.clone().unwrap_or_else(|| "not named".into()),
            ),
            ("Type", tb.kind.clone()),
            ("Period", tb.period.clone()),
        ];
        if let Some(g) = report.generated_at {
            rows.push(("Generated", crate::text::time_utc(g)));
        }
        for (k, v) in rows {
            let lines = wrap(Font::Regular, 10.0, &v, CW - 120.0);
            let h = lines.len() as f64 * 13.0;
            self.need(h);
            self.text(ML, self.y - 10.0, Font::Bold, 9.5, MUTED, k);
            let sev = k == "Severity" && (v == "critical" || v == "error");
            for (i, l) in lines.iter().enumerate() {
                self.text(
                    ML + 120.0,
                    self.y - 10.0 - i as f64 * 13.0,
                    if sev { Font::Bold } else { Font::Regular },
                    10.0,
                    if sev { (176, 0, 32) } else { INK },
                    l,
                );
            }
            self.y -= h + 2.0;
        }
        self.y -= 4.0;
        self.hline(ML, ML + CW, self.y, RULE, 1.0);
        self.y -= 6.0;
    }

    fn section(&mut self, s: &Section, report: &Report, chart: Option<&Chart>) {
        self.need(64.0);
        self.y -= 16.0;
        self.bookmarks.push(Bookmark {
            title: s.heading.clone(),
            page: self.pages.len(),
            y: self.y + 20.0,
        });
        self.text(ML, self.y - 14.0, Font::Bold, 14.0, INK, &s.heading);
        if s.draft {
            let x = ML + Font::Bold.width(&s.heading, 14.0) + 8.0;
            self.badge(x, self.y - 13.0, "DRAFT", DRAFT);
        }
        self.y -= 19.0;
        self.hline(ML, ML + CW, self.y, RULE, 1.2);
        self.y -= 4.0;
        if s.draft {
            let note = format!(
                "Drafted by Vigil from the incident record. Edit it (vigil incidents edit {} --field {}) or accept it.",
                report.title_block.incident_id,
                s.field.as_deref().unwrap_or(&s.key)
            );
            let lines = wrap(Font::Italic, 8.5, &note, CW - 12.0);
            let h = lines.len() as f64 * 11.0 + 6.0;
            self.need(h);
            self.rect(ML, self.y - h, CW, h, DRAFT_BG);
            self.rect(ML, self.y - h, 3.0, h, DRAFT);
            for (i, l) in lines.iter().enumerate() {
                self.text(
                    ML + 9.0,
                    self.y - 3.0 - 8.5 - i as f64 * 11.0,
                    Font::Italic,
                    8.5,
                    DRAFT,
                    l,
                );
            }
            self.y -= h + 4.0;
        }
        self.prose(&s.text);
        if s.key == "timeline"
            && let Some(c) = chart
        {
            self.chart(c);
        }
        for t in &s.tables {
            if s.key == "evidence" {
                self.evidence(t);
            } else {
                self.table(t);
            }
        }
    }

    /// Markdown prose (as people write it, and as drafts are written): paragraphs, headings,
    /// bullet and numbered lists, code blocks; inline markup is shown as plain text.
    fn prose(&mut self, text: &str) {
        let mut after_item = false;
        for block in prose_blocks(text) {
            if after_item && !matches!(block, Block::Item { .. }) {
                self.y -= 5.0;
            }
            after_item = matches!(block, Block::Item { .. });
            match block {
                Block::Para(t) => self.lines(&t, Font::Regular, 10.0, 13.5, ML, CW, INK),
                Block::Heading(t) => {
                    self.need(30.0);
                    self.y -= 3.0;
                    self.lines(&t, Font::Bold, 10.5, 14.0, ML, CW, INK);
                }
                Block::Code(t) => self.lines(&t, Font::Mono, 8.5, 11.0, ML + 8.0, CW - 8.0, INK),
                Block::Item {
                    depth,
                    marker,
                    text,
                } => {
                    let indent = ML + depth as f64 * 14.0;
                    let wrapped = wrap(Font::Regular, 10.0, &text, ML + CW - indent - 14.0);
                    for (i, w) in wrapped.iter().enumerate() {
                        self.need(13.5);
                        self.y -= 13.5;
                        if i == 0 {
                            self.text(
                                indent + 3.0,
                                self.y + 3.5,
                                Font::Regular,
                                10.0,
                                INK,
                                &marker,
                            );
                        }
                        self.text(indent + 14.0, self.y + 3.5, Font::Regular, 10.0, INK, w);
                    }
                    continue;
                }
            }
            self.y -= 5.0;
        }
        self.y -= 3.0;
    }

    fn chart(&mut self, c: &Chart) {
        let s = CW / c.width;
        let h = c.height * s;
        self.need(h + 14.0);
        let top = self.y - 4.0;
        let px = |x: f64| ML + x * s;
        let py = |y: f64| top - y * s;
        self.cur.push_str("q\n");
        for p in &c.prims {
            match p {
                Prim::Line {
                    x1,
                    y1,
                    x2,
                    y2,
                    color: col,
                    width,
                    dashed,
                } => {
                    let (r, g, b) = color(*col);
                    let _ = writeln!(
                        self.cur,
                        "{r:.3} {g:.3} {b:.3} RG {:.2} w {} {:.2} {:.2} m {:.2} {:.2} l S",
                        width * s,
                        if *dashed { "[2 2] 0 d" } else { "[] 0 d" },
                        px(*x1),
                        py(*y1),
                        px(*x2),
                        py(*y2)
                    );
                }
                Prim::Circle { cx, cy, r, fill } => {
                    let (cr, cg, cb) = color(*fill);
                    let (x, y, r) = (px(*cx), py(*cy), r * s);
                    let k = 0.5523 * r;
                    let _ = writeln!(
                        self.cur,
                        "{cr:.3} {cg:.3} {cb:.3} rg {:.2} {y:.2} m {:.2} {:.2} {:.2} {:.2} {x:.2} {:.2} c {:.2} {:.2} {:.2} {:.2} {:.2} {y:.2} c {:.2} {:.2} {:.2} {:.2} {x:.2} {:.2} c {:.2} {:.2} {:.2} {:.2} {:.2} {y:.2} c f",
                        x + r,
                        x + r,
                        y + k,
                        x + k,
                        y + r,
                        y + r,
                        x - k,
                        y + r,
                        x - r,
                        y + k,
                        x - r,
                        x - r,
                        y - k,
                        x - k,
                        y - r,
                        y - r,
                        x + k,
                        y - r,
                        x + r,
                        y - k,
                        x + r
                    );
                }
                Prim::Diamond { cx, cy, r, fill } => {
                    let (cr, cg, cb) = color(*fill);
                    let (x, y, r) = (px(*cx), py(*cy), r * s);
                    let _ = writeln!(
                        self.cur,
                        "{cr:.3} {cg:.3} {cb:.3} rg {x:.2} {:.2} m {:.2} {y:.2} l {x:.2} {:.2} l {:.2} {y:.2} l h f",
                        y + r,
                        x + r,
                        y - r,
                        x - r
                    );
                }
                Prim::Rect { x, y, w, h, fill } => {
                    let (cr, cg, cb) = color(*fill);
                    let _ = writeln!(
                        self.cur,
                        "{cr:.3} {cg:.3} {cb:.3} rg {:.2} {:.2} {:.2} {:.2} re f",
                        px(*x),
                        py(y + h),
                        w * s,
                        h * s
                    );
                }
                Prim::Text {
                    x,
                    y,
                    size,
                    anchor,
                    color: col,
                    text,
                } => {
                    let fs = size * s;
                    let w = Font::Regular.width(text, fs);
                    let x0 = match anchor {
                        Anchor::Start => px(*x),
                        Anchor::Middle => px(*x) - w / 2.0,
                        Anchor::End => px(*x) - w,
                    };
                    self.text(x0, py(*y), Font::Regular, fs, *col, text);
                }
            }
        }
        self.cur.push_str("[] 0 d\nQ\n");
        self.y = top - h - 10.0;
    }

    fn table(&mut self, t: &Table) {
        const SIZE: f64 = 8.0;
        const LEAD: f64 = 10.0;
        const PAD: f64 = 3.0;
        let fonts: Vec<(Font, f64)> = t
            .columns
            .iter()
            .map(|c| {
                if c == "SHA-256" {
                    (Font::Mono, 7.0)
                } else {
                    (Font::Regular, SIZE)
                }
            })
            .collect();
        let widths = column_widths(t, &fonts, CW, PAD);
        let header: Vec<Vec<String>> = t
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| wrap(Font::Bold, SIZE, c, w - 2.0 * PAD))
            .collect();
        let header_h = header.iter().map(Vec::len).max().unwrap_or(1) as f64 * LEAD + 2.0 * PAD;
        let max_lines = ((PAGE_H - MT - MB - header_h - 2.0 * PAD) / LEAD).floor() as usize;
        self.need(header_h + LEAD * 2.0 + 2.0 * PAD);
        self.y -= 2.0;
        self.table_header(&header, &widths, header_h, LEAD, PAD, SIZE);
        for row in &t.rows {
            let mut cells: Vec<Vec<String>> = row
                .iter()
                .zip(&widths)
                .zip(&fonts)
                .map(|((c, w), (f, sz))| wrap(*f, *sz, c, w - 2.0 * PAD))
                .collect();
            for c in &mut cells {
                if c.len() > max_lines {
                    c.truncate(max_lines);
                    if let Some(l) = c.last_mut() {
                        l.push_str(" …");
                    }
                }
            }
            let n = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = n as f64 * LEAD + 2.0 * PAD;
            if self.y - h < MB {
                self.break_page();
                self.table_header(&header, &widths, header_h, LEAD, PAD, SIZE);
            }
            let mut x = ML;
            for ((lines, w), (f, sz)) in cells.iter().zip(&widths).zip(&fonts) {
                for (i, l) in lines.iter().enumerate() {
                    self.text(
                        x + PAD,
                        self.y - PAD - SIZE - i as f64 * LEAD + 0.5,
                        *f,
                        *sz,
                        INK,
                        l,
                    );
                }
                x += w;
            }
            self.y -= h;
            self.hline(ML, ML + CW, self.y, RULE, 0.5);
        }
        self.y -= 8.0;
    }

    fn table_header(
        &mut self,
        header: &[Vec<String>],
        widths: &[f64],
        h: f64,
        lead: f64,
        pad: f64,
        size: f64,
    ) {
        self.rect(ML, self.y - h, CW, h, HEAD_BG);
        let mut x = ML;
        for (lines, w) in header.iter().zip(widths) {
            for (i, l) in lines.iter().enumerate() {
                self.text(
                    x + pad,
                    self.y - pad - size - i as f64 * lead + 0.5,
                    Font::Bold,
                    size,
                    INK,
                    l,
                );
            }
            x += w;
        }
        self.y -= h;
    }

    /// Evidence as one block per artifact, so the 64-digit digest stays on one line.
    fn evidence(&mut self, t: &Table) {
        let col = |name: &str| t.columns.iter().position(|c| c == name);
        let (ci, ki, si, pi, zi, hi) = (
            col("Collected (UTC)"),
            col("Kind"),
            col("Subject"),
            col("Path"),
            col("Size"),
            col("SHA-256"),
        );
        let get = |row: &Vec<String>, i: Option<usize>| {
            i.and_then(|i| row.get(i)).cloned().unwrap_or_default()
        };
        for row in &t.rows {
            self.need(44.0);
            let head = format!("{} · {}", get(row, ki), get(row, si));
            self.y -= 12.0;
            self.text(ML, self.y, Font::Bold, 9.0, INK, &head);
            let meta = format!(
                "collected {} UTC · {} · {}",
                get(row, ci),
                get(row, zi),
                get(row, pi)
            );
            for l in wrap(Font::Regular, 8.5, &meta, CW) {
                self.y -= 11.0;
                self.text(ML, self.y, Font::Regular, 8.5, MUTED, &l);
            }
            self.y -= 11.0;
            self.text(ML, self.y, Font::Regular, 8.5, MUTED, "SHA-256");
            self.text(ML + 40.0, self.y, Font::Mono, 8.0, INK, &get(row, hi));
            self.y -= 6.0;
            self.hline(ML, ML + CW, self.y, RULE, 0.5);
        }
        self.y -= 8.0;
    }

    fn finish(mut self, report: &Report) -> Vec<u8> {
        self.break_page();
        let total = self.pages.len();
        let tb = &report.title_block;
        let mut left = format!("{} · {}", tb.id, tb.title);
        if report.draft {
            left.push_str(" · draft");
        }
        let left = wrap(Font::Regular, 8.0, &left, CW - 80.0)
            .into_iter()
            .next()
            .unwrap_or_default();
        for (i, p) in self.pages.iter_mut().enumerate() {
            let right = format!("Page {} of {total}", i + 1);
            let mut foot = String::new();
            let (r, g, b) = color(MUTED);
            let _ = write!(foot, "BT /F1 8 Tf {r:.3} {g:.3} {b:.3} rg {ML:.2} 30 Td ");
            pdf_string(&left, &mut foot);
            foot.push_str(" Tj ET\n");
            let rx = ML + CW - Font::Regular.width(&right, 8.0);
            let _ = write!(foot, "BT /F1 8 Tf {r:.3} {g:.3} {b:.3} rg {rx:.2} 30 Td ");
            pdf_string(&right, &mut foot);
            foot.push_str(" Tj ET\n");
            p.content.push_str(&foot);
        }
        writer::write(
            &self.pages,
            &self.bookmarks,
            &format!("{}: {}", tb.id, tb.title),
            "Incident report",
        )
    }
}

/// A block of prose for the PDF.
#[derive(Debug, PartialEq)]
enum Block {
    Para(String),
    Heading(String),
    Code(String),
    Item {
        depth: usize,
        marker: String,
        text: String,
    },
}

/// Splits Markdown into blocks of plain text.
fn prose_blocks(text: &str) -> Vec<Block> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut buf = String::new();
    // Open lists: the next number of an ordered list, None for bullets.
    let mut lists: Vec<Option<u64>> = Vec::new();
    // The item being written: (depth, marker).
    let mut item: Option<(usize, String)> = None;
    let flush = |buf: &mut String, item: &mut Option<(usize, String)>, out: &mut Vec<Block>| {
        let t = buf.trim().to_string();
        buf.clear();
        if let Some((depth, marker)) = item.take() {
            out.push(Block::Item {
                depth,
                marker,
                text: t,
            });
        } else if !t.is_empty() {
            out.push(Block::Para(t));
        }
    };
    let opts =
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH;
    for ev in Parser::new_ext(text, opts) {
        match ev {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                buf.push_str(&t)
            }
            Event::SoftBreak => buf.push(' '),
            Event::HardBreak => buf.push('\n'),
            Event::Start(Tag::List(start)) => {
                if item.is_some() {
                    flush(&mut buf, &mut item, &mut out);
                }
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                if item.is_some() || !buf.trim().is_empty() {
                    flush(&mut buf, &mut item, &mut out);
                }
                let depth = lists.len().saturating_sub(1);
                let marker = match lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}.");
                        *n += 1;
                        m
                    }
                    _ => "•".to_string(),
                };
                item = Some((depth, marker));
            }
            Event::End(TagEnd::Item) if item.is_some() => {
                flush(&mut buf, &mut item, &mut out);
            }
            Event::End(TagEnd::Paragraph) => {
                if item.is_some() {
                    buf.push(' ');
                } else {
                    flush(&mut buf, &mut item, &mut out);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let t = buf.trim().to_string();
                buf.clear();
                out.push(Block::Heading(t));
            }
            Event::End(TagEnd::CodeBlock) => {
                let t = buf.trim_end().to_string();
                buf.clear();
                out.push(Block::Code(t));
            }
            Event::End(TagEnd::TableCell) => buf.push_str(" | "),
            Event::End(TagEnd::TableHead) | Event::End(TagEnd::TableRow) => {
                let t = buf.trim().trim_end_matches('|').trim().to_string();
                buf.clear();
                out.push(Block::Para(t));
            }
            Event::TaskListMarker(done) => buf.push_str(if done { "[x] " } else { "[ ] " }),
            _ => {}
        }
    }
    flush(&mut buf, &mut item, &mut out);
    out
}

/// Column widths that fill `total`: natural widths when they fit, else each column gets at
/// least its longest word (capped) and the rest is shared by how much more each would like.
fn column_widths(t: &Table, fonts: &[(Font, f64)], total: f64, pad: f64) -> Vec<f64> {
    let n = t.columns.len().max(1);
    let mut natural = vec![0.0f64; n];
    let mut minimum = vec![0.0f64; n];
    let mut measure = |i: usize, s: &str, f: Font, sz: f64| {
        let mut longest = 0.0f64;
        let mut line = 0.0f64;
        for l in s.split('\n') {
            line = line.max(f.width(l, sz));
            for w in l.split_whitespace() {
                longest = longest.max(f.width(w, sz));
            }
        }
        natural[i] = natural[i].max(line + 2.0 * pad);
        minimum[i] = minimum[i].max(longest + 2.0 * pad);
    };
    for (i, c) in t.columns.iter().enumerate() {
        measure(i, c, Font::Bold, fonts[i].1);
    }
    for row in &t.rows {
        for (i, c) in row.iter().enumerate().take(n) {
            measure(i, c, fonts[i].0, fonts[i].1);
        }
    }
    let cap = total * 0.45;
    for (m, nat) in minimum.iter_mut().zip(&natural) {
        // Short columns (times, counts, statuses) stay on one line.
        *m = if *nat <= total * 0.18 {
            *nat
        } else {
            m.min(cap)
        };
    }
    let nat_sum: f64 = natural.iter().sum();
    if nat_sum <= total {
        let extra = (total - nat_sum) / n as f64;
        return natural.iter().map(|w| w + extra).collect();
    }
    let min_sum: f64 = minimum.iter().sum();
    if min_sum >= total {
        return minimum.iter().map(|w| w * total / min_sum).collect();
    }
    let want: Vec<f64> = natural
        .iter()
        .zip(&minimum)
        .map(|(a, b)| (a - b).max(0.0))
        .collect();
    let want_sum: f64 = want.iter().sum::<f64>().max(1e-9);
    let rest = total - min_sum;
    minimum
        .iter()
        .zip(&want)
        .map(|(m, w)| m + rest * w / want_sum)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_inside_long_words() {
        let lines = wrap(Font::Regular, 10.0, "aaa bbb ccc", 40.0);
        assert_eq!(lines, vec!["aaa bbb", "ccc"]);
        let long = "x".repeat(40);
        let lines = wrap(Font::Mono, 10.0, &long, 60.0);
        assert!(
            lines.len() == 4 && lines.iter().all(|l| l.len() == 10),
            "{lines:?}"
        );
    }

    #[test]
    fn prose_blocks_from_markdown() {
        let b = prose_blocks(
            "First **bold** line\nsame para.\n\n- one\n- two `x`\n  1. sub\n\n## Head\n\n```\ncode\n```",
        );
        assert_eq!(
            b,
            vec![
                Block::Para("First bold line same para.".into()),
                Block::Item {
                    depth: 0,
                    marker: "•".into(),
                    text: "one".into()
                },
                Block::Item {
                    depth: 0,
                    marker: "•".into(),
                    text: "two x".into()
                },
                Block::Item {
                    depth: 1,
                    marker: "1.".into(),
                    text: "sub".into()
                },
                Block::Heading("Head".into()),
                Block::Code("code".into()),
            ]
        );
    }

    #[test]
    fn widths_fill_the_page() {
        let t = Table {
            columns: vec!["A".into(), "B".into()],
            rows: vec![vec!["short".into(), "a much longer cell ".repeat(20)]],
        };
        let f = [(Font::Regular, 8.0), (Font::Regular, 8.0)];
        let w = column_widths(&t, &f, 400.0, 3.0);
        assert!((w.iter().sum::<f64>() - 400.0).abs() < 1e-6);
        assert!(w[1] > w[0]);
    }
}
