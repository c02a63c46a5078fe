//! Small text helpers shared by the drafts and the renderers: times, durations, lists, plurals.

use model::{ActionStatus, Time};

/// `2025-05-02 14:03:07 UTC`.
pub(crate) fn time_utc(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2025-05-02 14:03:07` (for table cells under a "(UTC)" header).
pub(crate) fn time_cell(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `14:03:07 UTC`.
pub(crate) fn clock_utc(t: Time) -> String {
    t.format("%H:%M:%S UTC").to_string()
}

/// A time relative to another on the same day prints the clock only, else the full time.
pub(crate) fn time_after(t: Time, reference: Time) -> String {
    if t.date_naive() == reference.date_naive() {
        clock_utc(t)
    } else {
        time_utc(t)
    }
}

/// A duration in seconds for people: `2.5 s`, `45 s`, `4 min 05 s`, `2 h 03 min`, `3 d 4 h`.
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "unknown".into();
    }
    if secs < 0.0 {
        return format!("-{}", duration(-secs));
    }
    if secs < 10.0 {
        let r = (secs * 10.0).round() / 10.0;
        return if r.fract() == 0.0 {
            format!("{} s", r as i64)
        } else {
            format!("{r:.1} s")
        };
    }
    let s = secs.round() as i64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// The duration between two times.
pub(crate) fn between(a: Time, b: Time) -> String {
    duration((b - a).num_milliseconds() as f64 / 1000.0)
}

/// `1 container`, `3 containers`; `plural` is the plural form.
pub(crate) fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn join_and<S: AsRef<str>>(items: &[S]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].as_ref().to_string(),
        n => {
            let head: Vec<&str> = items[..n - 1].iter().map(|s| s.as_ref()).collect();
            format!("{} and {}", head.join(", "), items[n - 1].as_ref())
        }
    }
}

/// Like [`join_and`] but lists at most `max` items and says how many more there are.
pub(crate) fn join_some<S: AsRef<str>>(items: &[S], max: usize) -> String {
    if items.len() <= max {
        return join_and(items);
    }
    let shown: Vec<&str> = items[..max].iter().map(|s| s.as_ref()).collect();
    format!("{} and {} more", shown.join(", "), items.len() - max)
}

/// Uppercases the first letter.
pub(crate) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Shortens a 64-hex-digit container or image id to Docker's 12 digits; other text unchanged.
pub(crate) fn short_id(s: &str) -> String {
    let t = s.strip_prefix("sha256:").unwrap_or(s);
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        t[..12].to_string()
    } else {
        s.to_string()
    }
}

/// Human words for an action status.
pub(crate) fn action_status(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Requested => "requested",
        ActionStatus::AwaitingApproval => "awaiting approval",
        ActionStatus::Approved => "approved",
        ActionStatus::Denied => "denied",
        ActionStatus::Running => "running",
        ActionStatus::Succeeded => "succeeded",
        ActionStatus::Failed => "failed",
        ActionStatus::DryRun => "dry run",
        ActionStatus::Refused => "refused",
    }
}

/// Size in bytes for people: `812 B`, `4.2 KiB`, `3.1 MiB`.
pub(crate) fn size(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f < K {
        format!("{n} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / K / K)
    } else {
        format!("{:.1} GiB", f / K / K / K)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(2.0), "2 s");
        assert_eq!(duration(2.54), "2.5 s");
        assert_eq!(duration(45.2), "45 s");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(7380.0), "2 h 03 min");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 4 h");
    }

    #[test]
    fn lists_join() {
        assert_eq!(join_and(&["a"]), "a");
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
        assert_eq!(join_some(&["a", "b", "c", "d"], 2), "a, b and 2 more");
        assert_eq!(count(1, "host", "hosts"), "1 host");
        assert_eq!(count(3, "host", "hosts"), "3 hosts");
    }

    #[test]
    fn ids_shorten() {
        let id = "a".repeat(64);
        assert_eq!(short_id(&id), "aaaaaaaaaaaa");
        assert_eq!(short_id("miner1"), "miner1");
    }
}
