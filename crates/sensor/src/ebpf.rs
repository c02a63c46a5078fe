//! The eBPF backend: loads `src/bpf/sensor.bpf.c` (compiled by build.rs), attaches it, and reads
//! its ring buffer on a dedicated thread.

use crate::enrich::Enricher;
use crate::raw;
use crate::{BpfProgramStats, SensorError, Shared, WatchPrefix};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[allow(unsafe_code)] // generated libbpf skeleton: FFI into libbpf
#[allow(clippy::all)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}

use skel::SensorSkelBuilder;

/// Longest the reader sleeps when nothing comes (it still refreshes its counters and flushes
/// held events this often); the first record after a quiet spell wakes it at once.
const IDLE_WAIT: Duration = Duration::from_millis(250);

/// Settings of the eBPF backend.
pub(crate) struct EbpfConfig {
    pub ring_bytes: u32,
    pub use_v1_memcg: bool,
    pub prefixes: Vec<WatchPrefix>,
    pub drain_every: Duration,
    pub nice: i32,
    pub syscall_events: bool,
    /// The syscall event types wanted (`None`: all); see [`crate::SensorConfig::event_types`].
    pub event_types: Option<Vec<String>>,
}

/// Outcome of loading, sent back to `Sensor::start` before the read loop runs.
pub(crate) type Ready = Result<(), (SensorError, Box<Enricher>)>;

fn err(stage: &str, e: libbpf_rs::Error) -> SensorError {
    SensorError::Bpf(format!("{stage}: {e}"))
}

/// Loads, attaches and reads until `shared.stop`; reports load success or failure on `ready`.
pub(crate) fn run(
    cfg: EbpfConfig,
    mut enr: Box<Enricher>,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::SyncSender<Ready>,
) {
    ensure_tracefs();
    crate::raise_thread_priority(cfg.nice);
    let (drain_wait, drain_slack) = drain_timer(cfg.drain_every);
    crate::set_thread_timer_slack(drain_slack);
    let mut obj = MaybeUninit::uninit();
    let opened = SensorSkelBuilder::default().open(&mut obj);
    let mut open = match opened {
        Ok(o) => o,
        Err(e) => {
            let _ = ready.send(Err((err("open", e), enr)));
            return;
        }
    };
    if let Err(e) = open
        .maps
        .events
        .set_max_entries(cfg.ring_bytes.next_power_of_two())
    {
        let _ = ready.send(Err((err("ring buffer size", e), enr)));
        return;
    }
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.use_v1_memcg = u32::from(cfg.use_v1_memcg);
        ro.self_tgid = std::process::id();
        ro.wakeup_bytes = wakeup_bytes(cfg.ring_bytes);
        // Prefixes that pass any open first: a read is checked against those only.
        let mut prefixes: Vec<&WatchPrefix> = cfg.prefixes.iter().collect();
        prefixes.sort_by_key(|p| p.writes_only);
        let n = prefixes.len().min(ro.prefixes.len());
        for (slot, p) in ro.prefixes.iter_mut().zip(prefixes.iter()).take(n) {
            let bytes = p.prefix.as_bytes();
            let len = bytes.len().min(slot.p.len());
            for (d, s) in slot.p.iter_mut().zip(bytes.iter()).take(len) {
                *d = *s as i8;
            }
            slot.len = len as u32;
            slot.mode = if p.writes_only { 2 } else { 1 };
            [(slot.w0, slot.m0), (slot.w1, slot.m1)] = prefix_words(&bytes[..len]);
        }
        ro.n_prefixes = n as u32;
        ro.n_any = prefixes.iter().take(n).filter(|p| !p.writes_only).count() as u32;
    }
    for mut p in open.open_object_mut().progs_mut() {
        let name = p.name().to_string_lossy().into_owned();
        if !syscall_program_needed(&name, cfg.syscall_events, cfg.event_types.as_deref()) {
            p.set_autoload(false);
        }
    }
    let mut sk = match open.load() {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err((err("load (verifier)", e), enr)));
            return;
        }
    };
    if let Err(e) = sk.attach() {
        let _ = ready.send(Err((err("attach", e), enr)));
        return;
    }
    // Attached: events queue in the ring buffer while the table is filled from /proc.
    let seeded = enr.procs.seed();
    enr.track_known_cgroups();

    // Should the ring buffer fail after the callback borrowed `enr`, the fallback gets a fresh
    // enricher (the process table reloads from /proc on demand).
    let spare = enr.spare();
    // Events of one drain are handed to the consumer together after it, so that the consumer
    // is woken once per batch rather than racing the reader event by event.
    let batch = std::cell::RefCell::new(Vec::<model::Event>::with_capacity(1024));
    let enr = std::cell::RefCell::new(enr);
    // Records read since the reader last looked (whether or not they became events).
    let records = std::cell::Cell::new(0u64);
    let mut rb = RingBufferBuilder::new();
    let shared_cb = shared.clone();
    let enr_ref = &enr;
    let batch_ref = &batch;
    let records_ref = &records;
    let added = rb.add(&sk.maps.events, move |data: &[u8]| {
        records_ref.set(records_ref.get() + 1);
        match raw::decode(data) {
            Ok(r) => enr_ref
                .borrow_mut()
                .handle(r, &mut |ev| batch_ref.borrow_mut().push(ev)),
            Err(e) => {
                shared_cb.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "undecodable ring buffer record");
            }
        }
        if shared_cb.stop.load(Ordering::Relaxed) {
            return -1;
        }
        0
    });
    let built = match added {
        Ok(_) => rb.build(),
        Err(e) => Err(e),
    };
    let rb = match built {
        Ok(rb) => rb,
        Err(e) => {
            let _ = ready.send(Err((err("ring buffer", e), Box::new(spare))));
            return;
        }
    };
    let progs: Vec<(String, i32)> = {
        use std::os::fd::{AsFd, AsRawFd};
        sk.object()
            .progs()
            .filter(|p| p.autoload())
            .map(|p| {
                (
                    p.name().to_string_lossy().into_owned(),
                    p.as_fd().as_raw_fd(),
                )
            })
            .collect()
    };
    let _ = ready.send(Ok(()));
    tracing::info!(processes = seeded, "eBPF sensor attached");

    let mut last = Instant::now();
    let mut bss = sk.maps.bss_data.as_deref_mut();
    let mut asleep = false;
    let mut known_slots = HashSet::new();
    while !shared.stop.load(Ordering::Relaxed) {
        // Records are submitted without a wakeup until a batch is waiting; drain at least every
        // `drain_every` so an event is never held longer. Asleep, the next record wakes us.
        let wait = if asleep { IDLE_WAIT } else { drain_wait };
        let r = rb.poll(wait).and_then(|()| rb.consume());
        let out = {
            let mut b = batch.borrow_mut();
            enr.borrow_mut().flush(&mut |ev| b.push(ev));
            crate::stream::take_batch(&mut b)
        };
        shared.emit_batch(out);
        publish_known_cgroups(
            &sk.maps.known_cgroups,
            enr.borrow_mut().take_known_cgroups(),
            &mut known_slots,
        );
        if let Err(e) = r
            && !shared.stop.load(Ordering::Relaxed)
        {
            tracing::warn!(error = %e, "ring buffer poll failed");
        }
        if let Some(b) = bss.as_deref_mut() {
            if records.replace(0) > 0 {
                if asleep {
                    asleep = false;
                    b.reader_asleep = 0;
                }
            } else if !asleep && !enr.borrow().holds_events() {
                // Nothing came during a whole drain interval: sleep until the next record
                // (the kernel clears the flag and wakes us). Look once more after raising
                // the flag, for a record submitted just before the kernel could see it.
                b.reader_asleep = 1;
                std::sync::atomic::fence(Ordering::SeqCst);
                let _ = rb.consume();
                if records.get() > 0 {
                    b.reader_asleep = 0;
                } else {
                    asleep = true;
                }
            }
        }
        if last.elapsed() >= Duration::from_millis(250) {
            last = Instant::now();
            let stats_on = std::fs::read("/proc/sys/kernel/bpf_stats_enabled")
                .is_ok_and(|v| v.first() == Some(&b'1'));
            if let Ok(Some(vals)) = sk
                .maps
                .counters
                .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            {
                shared.ring_drops.store(sum(&vals), Ordering::Relaxed);
            }
            if let Ok(Some(vals)) = sk
                .maps
                .counters
                .lookup_percpu(&1u32.to_ne_bytes(), MapFlags::ANY)
            {
                shared.kernel_lost.store(sum(&vals), Ordering::Relaxed);
            }
            if !stats_on {
                // Per-program figures exist only while the kernel collects them; reading
                // every program's fdinfo costs more than everything else this loop does.
                continue;
            }
            let per_prog: Vec<BpfProgramStats> = progs
                .iter()
                .map(|(name, fd)| {
                    let (run_ns, runs) = prog_run_stats(*fd);
                    BpfProgramStats {
                        name: name.clone(),
                        run_ns,
                        runs,
                    }
                })
                .collect();
            let ns = per_prog.iter().map(|p| p.run_ns).sum();
            let runs = per_prog.iter().map(|p| p.runs).sum();
            shared.bpf_run_ns.store(ns, Ordering::Relaxed);
            shared.bpf_runs.store(runs, Ordering::Relaxed);
            if let Ok(mut v) = shared.bpf_programs.lock() {
                *v = per_prog;
            }
        }
    }
    tracing::info!("eBPF sensor detached");
}

/// Slots of the kernel side's `known_cgroups` cache (`KNOWN_CGROUP_SLOTS` there).
const KNOWN_CGROUP_SLOTS: u64 = 4096;

/// Tells the kernel side which cgroups need not be named in records any more: cgroup `id`
/// goes to slot `id % KNOWN_CGROUP_SLOTS`. `used` remembers the slots written, to clear them.
fn publish_known_cgroups(
    map: &libbpf_rs::Map<'_>,
    known: crate::enrich::KnownCgroups,
    used: &mut HashSet<u32>,
) {
    if known.cleared {
        for slot in used.drain() {
            let _ = map.update(&slot.to_ne_bytes(), &0u64.to_ne_bytes(), MapFlags::ANY);
        }
    }
    for id in known.added {
        let slot = (id % KNOWN_CGROUP_SLOTS) as u32;
        if map
            .update(&slot.to_ne_bytes(), &id.to_ne_bytes(), MapFlags::ANY)
            .is_ok()
        {
            used.insert(slot);
        }
    }
}

/// Whether the program named `name` is loaded. Syscall programs (`sys_exit_X`, all at a
/// syscall's exit) are not loaded at all without syscall events: with no syscall tracepoint in
/// use, no syscall on the host takes the kernel's traced-syscall path. With an interest set, a
/// syscall's program is loaded only when its type is wanted. Process programs (fork, exec,
/// exit) always load.
fn syscall_program_needed(name: &str, syscall_events: bool, wanted: Option<&[String]>) -> bool {
    let Some(syscall) = name.strip_prefix("sys_exit_") else {
        return true;
    };
    syscall_events && wanted.is_none_or(|w| w.iter().any(|t| t == syscall))
}

/// How much data waits in the ring buffer before the kernel wakes the reader: a quarter of
/// the ring, at most 256 KiB. While events flow the reader drains on its timer (every 4 ms),
/// and at this machine's highest rates about 80 KiB arrive in that time, so the kernel's
/// wakeups (expensive on this VM: a forced wakeup every few dozen records made
/// `sys_exit_connect` 60% slower) come only when the reader has fallen behind.
fn wakeup_bytes(ring_bytes: u32) -> u64 {
    (u64::from(ring_bytes.next_power_of_two()) / 4).clamp(4096, 256 << 10)
}

/// The reader's poll timeout and timer slack for draining at least every `every`: the timer may
/// fire anywhere in the second half of the interval, so on a busy CPU it fires with the
/// scheduler tick (every 4 ms at HZ=250) instead of raising an interrupt of its own. On this
/// 2-CPU VM a thread that merely wakes every 4 ms on its own timer slows an exec storm by about
/// 2.7%; woken on the tick, by about 0.1%. The poll timeout has millisecond granularity.
fn drain_timer(every: Duration) -> (Duration, Duration) {
    let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
    if ms < 2 {
        return (every, Duration::from_micros(50));
    }
    let wait = Duration::from_millis(ms / 2);
    (wait, every - wait)
}

/// The first (up to) 15 bytes of a prefix as the two little-endian words the BPF filter
/// compares with a path's first 16 bytes (read as a string, so the 16th is always a NUL), and
/// the masks of the bytes that belong to the prefix.
fn prefix_words(prefix: &[u8]) -> [(u64, u64); 2] {
    let mut w = [0u8; 16];
    let mut m = [0u8; 16];
    for (i, b) in prefix.iter().take(15).enumerate() {
        w[i] = *b;
        m[i] = 0xff;
    }
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    [
        (word(&w[..8]), word(&m[..8])),
        (word(&w[8..]), word(&m[8..])),
    ]
}

/// Syscall tracepoints are found through tracefs; mounts it where the host has not.
#[allow(unsafe_code)]
fn ensure_tracefs() {
    let dirs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    if dirs
        .iter()
        .any(|d| std::path::Path::new(d).join("events").is_dir())
    {
        return;
    }
    let (src, target, fstype) = (c"nodev", c"/sys/kernel/tracing", c"tracefs");
    // SAFETY: all pointers are valid NUL-terminated strings; data may be NULL for tracefs.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        tracing::info!("mounted tracefs on /sys/kernel/tracing (needed by syscall tracepoints)");
    } else {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot mount tracefs; syscall tracepoints will not attach");
    }
}

/// `run_time_ns` and `run_cnt` of one of our programs (non-zero only while the kernel's
/// `kernel.bpf_stats_enabled` sysctl is 1).
fn prog_run_stats(fd: i32) -> (u64, u64) {
    let mut ns = 0;
    let mut runs = 0;
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
        return (0, 0);
    };
    for line in info.lines() {
        let mut it = line.split_whitespace();
        match (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) {
            (Some("run_time_ns:"), Some(v)) => ns = v,
            (Some("run_cnt:"), Some(v)) => runs = v,
            _ => {}
        }
    }
    (ns, runs)
}

fn sum(vals: &[Vec<u8>]) -> u64 {
    vals.iter()
        .map(|v| {
            let mut a = [0u8; 8];
            let n = v.len().min(8);
            a[..n].copy_from_slice(&v[..n]);
            u64::from_ne_bytes(a)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::{drain_timer, prefix_words, syscall_program_needed, wakeup_bytes};

    #[test]
    fn the_kernel_wakes_the_reader_only_when_it_has_fallen_behind() {
        assert_eq!(wakeup_bytes(16 << 20), 256 << 10);
        assert_eq!(
            wakeup_bytes(1 << 20),
            256 << 10,
            "a quarter, at most 256 KiB"
        );
        assert_eq!(
            wakeup_bytes(300 << 10),
            128 << 10,
            "of the power of two above"
        );
        assert_eq!(wakeup_bytes(64 << 10), 16 << 10);
        assert_eq!(wakeup_bytes(4096), 4096, "at least a page");
    }
    use std::time::Duration;

    #[test]
    fn the_drain_timer_covers_the_interval_with_its_slack() {
        let ms = Duration::from_millis;
        assert_eq!(drain_timer(ms(4)), (ms(2), ms(2)));
        assert_eq!(drain_timer(ms(5)), (ms(2), ms(3)));
        assert_eq!(drain_timer(ms(50)), (ms(25), ms(25)));
        // below what the poll timeout can express: as asked, with the default slack
        assert_eq!(
            drain_timer(Duration::from_micros(1500)),
            (Duration::from_micros(1500), Duration::from_micros(50))
        );
        for every in [3, 4, 7, 10, 100] {
            let (w, s) = drain_timer(ms(every));
            assert_eq!(w + s, ms(every), "drained within {every} ms");
            assert!(w >= ms(1));
        }
    }

    #[test]
    fn syscall_programs_follow_the_interest_set() {
        let wanted = vec!["openat".to_string(), "connect".to_string()];
        let w = Some(wanted.as_slice());
        assert!(syscall_program_needed("on_exec", false, w));
        assert!(syscall_program_needed("sys_exit_openat", true, w));
        assert!(syscall_program_needed("sys_exit_connect", true, w));
        assert!(!syscall_program_needed("sys_exit_accept4", true, w));
        assert!(!syscall_program_needed("sys_exit_unlinkat", true, w));
        assert!(!syscall_program_needed("sys_exit_setuid", true, w));
        assert!(syscall_program_needed("sys_exit_unlinkat", true, None));
        assert!(!syscall_program_needed("sys_exit_openat", false, None));
    }

    #[test]
    fn prefix_words_mask_what_the_prefix_covers() {
        // Does a path (read as the kernel does: at most 15 bytes, then zeros) pass the words?
        let passes = |prefix: &[u8], path: &[u8]| {
            let mut head = [0u8; 16];
            for (d, s) in head.iter_mut().zip(path.iter().take(15)) {
                *d = *s;
            }
            let w0 = u64::from_le_bytes(head[..8].try_into().unwrap());
            let w1 = u64::from_le_bytes(head[8..].try_into().unwrap());
            let [(a, ma), (b, mb)] = prefix_words(prefix);
            w0 & ma == a && w1 & mb == b
        };
        let [(w, m), (w1, m1)] = prefix_words(b"/etc/");
        assert_eq!(m, 0x0000_00ff_ffff_ffff);
        assert_eq!((w1, m1), (0, 0));
        assert_eq!(w, u64::from_le_bytes(*b"/etc/\0\0\0"));
        assert!(passes(b"/etc/", b"/etc/hostname"));
        assert!(!passes(b"/etc/", b"/etx/hostname"));
        // the second word tells prefixes apart that share their first eight bytes
        assert!(passes(b"/etc/ld.so.preload", b"/etc/ld.so.preload"));
        assert!(!passes(b"/etc/ld.so.preload", b"/etc/ld.so.cache"));
        // past 15 bytes the kernel has read nothing: `wanted` decides on the whole path
        assert!(passes(
            b"/var/run/secrets/kubernetes.io/",
            b"/var/run/secrets/x"
        ));
        let [_, (_, m1)] = prefix_words(b"/var/run/secrets/kubernetes.io/");
        assert_eq!(m1, 0x00ff_ffff_ffff_ffff);
        // a path that ends early is zero padded and cannot match a longer prefix
        assert!(!passes(b"/etc/", b"/etc"));
        assert!(!passes(b"/etc/shadow", b"/etc/sha"));
    }
}
