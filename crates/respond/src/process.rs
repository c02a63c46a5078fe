//! Killing a host process safely: the pid must still belong to the process the event saw.
//!
//! The process is pinned with a pidfd first, then its start time (`/proc/<pid>/stat` field 22,
//! converted to wall-clock time) is compared with the event's; the signal goes through the pidfd,
//! so a pid reused after the check cannot be hit.

use crate::guard::SelfIdentity;
use model::Time;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// How far the start time read from `/proc` may differ from the event's (clock-tick and boot-time
/// rounding), in milliseconds.
pub const START_TIME_TOLERANCE_MS: i64 = 500;

/// A process's start time as wall-clock time, from `/proc/<pid>/stat` and `/proc/uptime`.
pub fn process_start_time(pid: u32) -> std::io::Result<Time> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| std::io::Error::other("malformed /proc/pid/stat"))?;
    // after ")" come fields 3.. ; starttime is field 22 → index 19 here.
    let ticks: u64 = after
        .split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no starttime in /proc/pid/stat"))?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed /proc/uptime"))?;
    let now = chrono::Utc::now();
    let boot = now - chrono::Duration::microseconds((uptime * 1e6) as i64);
    Ok(boot + chrono::Duration::microseconds((ticks as i64) * 1_000_000 / hz as i64))
}

/// Checks, without acting, that `pid` is not Vigil, not init, and still the process that started
/// at `expected_start` (the guardrail run before [`kill_process`], which checks again).
pub fn verify(pid: u32, expected_start: Option<Time>, me: &SelfIdentity) -> Result<(), String> {
    if pid <= 1 {
        return Err(format!("refusing to signal pid {pid}"));
    }
    if pid == me.pid {
        return Err(format!("refusing to signal Vigil itself (pid {pid})"));
    }
    let expected = expected_start.ok_or_else(|| {
        format!("refusing to signal pid {pid}: the alert carries no process start time to check against pid reuse")
    })?;
    let actual = process_start_time(pid).map_err(|e| format!("process {pid} is gone ({e})"))?;
    check_start(pid, actual, expected)
}

fn check_start(pid: u32, actual: Time, expected: Time) -> Result<(), String> {
    if (actual - expected).num_milliseconds().abs() > START_TIME_TOLERANCE_MS {
        return Err(format!(
            "refusing: pid {pid} was reused (started {} but the event's process started {})",
            actual.to_rfc3339(),
            expected.to_rfc3339()
        ));
    }
    Ok(())
}

/// Sends `signal` to host process `pid` if it is still the process that started at
/// `expected_start`. Refuses Vigil itself, pid 1, and a pid whose start time is unknown or
/// differs. Returns a description of what was done.
pub fn kill_process(
    pid: u32,
    expected_start: Option<Time>,
    signal: i32,
    me: &SelfIdentity,
) -> Result<String, String> {
    if pid <= 1 {
        return Err(format!("refusing to signal pid {pid}"));
    }
    if pid == me.pid {
        return Err(format!("refusing to signal Vigil itself (pid {pid})"));
    }
    let expected = expected_start.ok_or_else(|| {
        format!("refusing to signal pid {pid}: the alert carries no process start time to check against pid reuse")
    })?;
    let sig = Signal::from_named_raw(signal).ok_or_else(|| format!("unknown signal {signal}"))?;
    let p = Pid::from_raw(pid as i32).ok_or_else(|| format!("bad pid {pid}"))?;
    let fd =
        pidfd_open(p, PidfdFlags::empty()).map_err(|e| format!("process {pid} is gone ({e})"))?;
    let actual = process_start_time(pid).map_err(|e| format!("process {pid}: {e}"))?;
    check_start(pid, actual, expected)?;
    pidfd_send_signal(&fd, sig).map_err(|e| format!("signal pid {pid}: {e}"))?;
    Ok(format!("sent signal {signal} to pid {pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_the_right_process_and_refuses_reuse() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = process_start_time(pid).unwrap();
        let me = SelfIdentity::detect();
        // wrong start time: refused, process still alive
        let wrong = start - chrono::Duration::seconds(5);
        let e = kill_process(pid, Some(wrong), 9, &me).unwrap_err();
        assert!(e.contains("reused"), "{e}");
        assert!(child.try_wait().unwrap().is_none());
        // unknown start time: refused
        assert!(
            kill_process(pid, None, 9, &me)
                .unwrap_err()
                .contains("start time")
        );
        // self and init: refused
        assert!(kill_process(me.pid, Some(start), 9, &me).is_err());
        assert!(kill_process(1, Some(start), 9, &me).is_err());
        // right start time: killed
        kill_process(pid, Some(start), 9, &me).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
}
