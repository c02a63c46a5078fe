//! The timeline chart: alerts, actions, status changes and other entries on a time axis, laid out
//! once as drawing primitives and emitted as SVG (HTML) or PDF path operators (PDF).

use crate::draft::Facts;
use model::{Time, TimelineKind};
use std::collections::BTreeMap;
use std::fmt::Write;

/// An RGB colour.
pub(crate) type Rgb = (u8, u8, u8);

/// Where text hangs from its point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// A drawing primitive; coordinates in chart units, origin top left, y downwards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prim {
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        color: Rgb,
        width: f64,
        dashed: bool,
    },
    Circle {
        cx: f64,
        cy: f64,
        r: f64,
        fill: Rgb,
    },
    Diamond {
        cx: f64,
        cy: f64,
        r: f64,
        fill: Rgb,
    },
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: Rgb,
    },
    Text {
        x: f64,
        y: f64,
        size: f64,
        anchor: Anchor,
        color: Rgb,
        text: String,
    },
}

/// A laid-out chart.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub width: f64,
    pub height: f64,
    pub prims: Vec<Prim>,
}

const WIDTH: f64 = 720.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const LANE_H: f64 = 26.0;
const AXIS_H: f64 = 34.0;

const GREY: Rgb = (110, 110, 110);
const LIGHT: Rgb = (225, 225, 225);
const INK: Rgb = (30, 30, 30);

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Circle,
    Diamond,
}

struct LaneDef {
    label: &'static str,
    color: Rgb,
    shape: Shape,
}

const LANES: [LaneDef; 4] = [
    LaneDef {
        label: "Alerts",
        color: (200, 40, 40),
        shape: Shape::Circle,
    },
    LaneDef {
        label: "Actions",
        color: (30, 100, 200),
        shape: Shape::Diamond,
    },
    LaneDef {
        label: "Status",
        color: (40, 140, 70),
        shape: Shape::Circle,
    },
    LaneDef {
        label: "Other",
        color: (130, 90, 160),
        shape: Shape::Circle,
    },
];

/// Lays out the chart of an incident's record.
pub(crate) fn layout(f: &Facts) -> Chart {
    // (lane, time) points.
    let mut pts: Vec<(usize, Time)> = Vec::new();
    if !f.alerts.is_empty() {
        pts.extend(f.alerts.iter().map(|a| (0, a.alert.starts_at)));
    }
    if !f.actions.is_empty() {
        pts.extend(
            f.actions
                .iter()
                .map(|a| (1, a.finished_at.or(a.started_at).unwrap_or(a.requested_at))),
        );
    }
    let have_ev_entries = f.timeline.iter().any(|e| e.kind == TimelineKind::Evidence);
    for e in &f.timeline {
        let lane = match e.kind {
            TimelineKind::Detection if f.alerts.is_empty() => 0,
            TimelineKind::Detection => continue,
            TimelineKind::Action if f.actions.is_empty() => 1,
            TimelineKind::Action => continue,
            TimelineKind::StatusChange | TimelineKind::Assignment => 2,
            _ => 3,
        };
        pts.push((lane, e.at));
    }
    if !have_ev_entries {
        pts.extend(f.evidence.iter().map(|e| (3, e.collected_at)));
    }
    let inc = f.incident;
    let milestones: Vec<(&str, Time)> = [
        ("detected", Some(inc.detected_at)),
        ("contained", inc.contained_at),
        ("resolved", inc.resolved_at),
    ]
    .into_iter()
    .filter_map(|(n, t)| t.map(|t| (n, t)))
    .collect();

    let mut t0 = inc.started_at;
    let mut t1 = inc.started_at;
    for t in pts
        .iter()
        .map(|p| p.1)
        .chain(milestones.iter().map(|m| m.1))
    {
        t0 = t0.min(t);
        t1 = t1.max(t);
    }
    let mut span = (t1 - t0).num_milliseconds() as f64 / 1000.0;
    if span < 1.0 {
        t0 -= chrono::Duration::seconds(30);
        span = 60.0;
    }
    // A little air on both sides.
    let pad = span * 0.03;
    let start_ms = t0.timestamp_millis() as f64 - pad * 1000.0;
    let span_ms = (span + 2.0 * pad) * 1000.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x_of = |t: Time| LEFT + (t.timestamp_millis() as f64 - start_ms) / span_ms * plot_w;

    let height = TOP + LANES.len() as f64 * LANE_H + AXIS_H;
    let axis_y = TOP + LANES.len() as f64 * LANE_H;
    let mut prims = Vec::new();
    prims.push(Prim::Rect {
        x: 0.0,
        y: 0.0,
        w: WIDTH,
        h: height,
        fill: (255, 255, 255),
    });

    // Lanes.
    for (i, lane) in LANES.iter().enumerate() {
        let y = TOP + i as f64 * LANE_H + LANE_H / 2.0;
        prims.push(Prim::Line {
            x1: LEFT,
            y1: y,
            x2: WIDTH - RIGHT,
            y2: y,
            color: LIGHT,
            width: 1.0,
            dashed: false,
        });
        prims.push(Prim::Text {
            x: LEFT - 8.0,
            y: y + 4.0,
            size: 11.0,
            anchor: Anchor::End,
            color: INK,
            text: lane.label.to_string(),
        });
    }

    // Ticks.
    let (step, fmt) = tick_step(span_ms / 1000.0);
    let step_ms = step * 1000.0;
    let mut tick = (start_ms / step_ms).ceil() * step_ms;
    prims.push(Prim::Line {
        x1: LEFT,
        y1: axis_y,
        x2: WIDTH - RIGHT,
        y2: axis_y,
        color: GREY,
        width: 1.0,
        dashed: false,
    });
    while tick <= start_ms + span_ms {
        let x = LEFT + (tick - start_ms) / span_ms * plot_w;
        prims.push(Prim::Line {
            x1: x,
            y1: axis_y,
            x2: x,
            y2: axis_y + 4.0,
            color: GREY,
            width: 1.0,
            dashed: false,
        });
        let label = chrono::DateTime::from_timestamp_millis(tick as i64)
            .map(|t| t.format(fmt).to_string())
            .unwrap_or_default();
        prims.push(Prim::Text {
            x,
            y: axis_y + 16.0,
            size: 10.0,
            anchor: Anchor::Middle,
            color: GREY,
            text: label,
        });
        tick += step_ms;
    }
    let day = |ms: f64| {
        chrono::DateTime::from_timestamp_millis(ms as i64)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let (d0, d1) = (day(start_ms), day(start_ms + span_ms));
    prims.push(Prim::Text {
        x: WIDTH - RIGHT,
        y: axis_y + 30.0,
        size: 9.0,
        anchor: Anchor::End,
        color: GREY,
        text: if d0 == d1 {
            format!("time (UTC), {d0}")
        } else {
            format!("time (UTC), {d0} to {d1}")
        },
    });

    // Milestones.
    let mut last_label_end = f64::MIN;
    let mut raised = false;
    for (name, t) in &milestones {
        let x = x_of(*t);
        // Labels that would collide with the previous one go one line up.
        raised = x + 2.0 < last_label_end && !raised;
        let ly = if raised { TOP - 17.0 } else { TOP - 8.0 };
        last_label_end = x + 2.0 + name.len() as f64 * 5.0;
        prims.push(Prim::Line {
            x1: x,
            y1: TOP - 4.0,
            x2: x,
            y2: axis_y,
            color: GREY,
            width: 0.8,
            dashed: true,
        });
        prims.push(Prim::Text {
            x: x + 2.0,
            y: ly,
            size: 9.0,
            anchor: Anchor::Start,
            color: GREY,
            text: name.to_string(),
        });
    }

    // Marks, binned per lane and whole unit of x so 10,000 entries stay a small drawing.
    let mut bins: BTreeMap<(usize, i64), usize> = BTreeMap::new();
    for (lane, t) in &pts {
        *bins.entry((*lane, x_of(*t).round() as i64)).or_default() += 1;
    }
    for ((lane, x), n) in bins {
        let def = &LANES[lane];
        let cy = TOP + lane as f64 * LANE_H + LANE_H / 2.0;
        let r = 4.0 + (n as f64).log2().min(5.0);
        let cx = x as f64;
        prims.push(match def.shape {
            Shape::Circle => Prim::Circle {
                cx,
                cy,
                r,
                fill: def.color,
            },
            Shape::Diamond => Prim::Diamond {
                cx,
                cy,
                r: r + 1.0,
                fill: def.color,
            },
        });
    }
    Chart {
        width: WIDTH,
        height,
        prims,
    }
}

/// A tick step (seconds) giving at most ~8 ticks, and the label format for it.
fn tick_step(span: f64) -> (f64, &'static str) {
    const STEPS: [f64; 22] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 604800.0, 1209600.0, 2592000.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 8.0)
        .unwrap_or(2592000.0 * (span / 2592000.0 / 8.0).ceil());
    let fmt = if step < 60.0 {
        "%H:%M:%S"
    } else if step < 86400.0 {
        "%H:%M"
    } else {
        "%m-%d"
    };
    (step, fmt)
}

fn rgb(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Chart {
    /// The chart as an inline SVG element (no namespace needed inside HTML; `standalone` adds it).
    pub(crate) fn to_svg(&self, standalone: bool) -> String {
        let mut s = String::with_capacity(4096 + self.prims.len() * 80);
        let _ = write!(
            s,
            "<svg {}viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\" aria-label=\"Timeline chart: alerts and actions on a time axis\" font-family=\"Helvetica, Arial, sans-serif\">",
            if standalone {
                "xmlns=\"http://www.w3.org/2000/svg\" "
            } else {
                ""
            },
            self.width,
            self.height
        );
        s.push_str("<title>Timeline: alerts, actions and status changes</title>");
        for p in &self.prims {
            match p {
                Prim::Line {
                    x1,
                    y1,
                    x2,
                    y2,
                    color,
                    width,
                    dashed,
                } => {
                    let _ = write!(
                        s,
                        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"{width}\"{}/>",
                        rgb(*color),
                        if *dashed {
                            " stroke-dasharray=\"3 3\""
                        } else {
                            ""
                        }
                    );
                }
                Prim::Circle { cx, cy, r, fill } => {
                    let _ = write!(
                        s,
                        "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" fill=\"{}\" fill-opacity=\"0.85\"/>",
                        rgb(*fill)
                    );
                }
                Prim::Diamond { cx, cy, r, fill } => {
                    let _ = write!(
                        s,
                        "<path d=\"M{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z\" fill=\"{}\" fill-opacity=\"0.85\"/>",
                        cx,
                        cy - r,
                        cx + r,
                        cy,
                        cx,
                        cy + r,
                        cx - r,
                        cy,
                        rgb(*fill)
                    );
                }
                Prim::Rect { x, y, w, h, fill } => {
                    let _ = write!(
                        s,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                        rgb(*fill)
                    );
                }
                Prim::Text {
                    x,
                    y,
                    size,
                    anchor,
                    color,
                    text,
                } => {
                    let a = match anchor {
                        Anchor::Start => "start",
                        Anchor::Middle => "middle",
                        Anchor::End => "end",
                    };
                    let _ = write!(
                        s,
                        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{a}\" fill=\"{}\">{}</text>",
                        rgb(*color),
                        esc(text)
                    );
                }
            }
        }
        s.push_str("</svg>");
        s
    }
}
