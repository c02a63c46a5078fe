//! Runtime detection wiring: sensor events → the detection rules (on the sensor's thread) →
//! alerts into the pipeline, and Docker `container_start` events → the response engine's image
//! block list.

use crate::{App, AppError, SensorBackend, SensorEnabled};
use model::{Event, EventSource};

/// Loads the detection rules of the `detection` section. A bad rule is logged with its place and
/// left out; the others load (a file that cannot be read at all is an error).
pub fn load_rules(cfg: &crate::DetectionConfig) -> Result<detect::RuleSet, AppError> {
    let mut b = detect::RuleSetBuilder::new().builtin(cfg.builtin);
    for f in &cfg.rules {
        b = b.add_file(f.clone());
    }
    let (rules, report) = b.build().map_err(|e| AppError::Invalid {
        field: Some("detection.rules".into()),
        message: e.to_string(),
    })?;
    for d in report.errors() {
        tracing::warn!("detection rules: {d}");
    }
    tracing::info!(
        rules = rules.enabled_len(),
        "detection rules loaded ({})",
        report.summary()
    );
    Ok(rules)
}

/// Starts the sensor (per the `sensor` section) and the detection loop. With `enabled: auto` a
/// sensor that cannot start (not root, no eBPF and no proc connector) is logged and skipped;
/// with `enabled: on` it is an error.
pub(crate) async fn start(app: &App, engine: Option<respond::Engine>) -> Result<(), AppError> {
    let cfg = app.config();
    if cfg.sensor.enabled == SensorEnabled::Off {
        tracing::info!("sensor off: no runtime detection");
        return Ok(());
    }
    let rules = load_rules(&cfg.detection)?;
    let scfg = sensor::SensorConfig {
        backend: match cfg.sensor.backend {
            SensorBackend::Auto => sensor::BackendChoice::Auto,
            SensorBackend::Ebpf => sensor::BackendChoice::Ebpf,
            SensorBackend::Proc => sensor::BackendChoice::Proc,
        },
        syscall_events: cfg.sensor.syscall_events,
        // Only what the rules can match is built (Falco's interest set).
        event_types: rules.event_types(EventSource::Syscall),
        ..Default::default()
    };
    let scfg_types = scfg.event_types.clone();
    // Rules run on the sensor's own thread, batch by batch, so a drain of the ring buffer wakes
    // one thread; whatever has to wait (ingest, the response engine) is spawned.
    let rt = tokio::runtime::Handle::current();
    let consumer_app = app.clone();
    let consumer = move |batch: Vec<Event>| {
        let mut alerts = Vec::new();
        for ev in &batch {
            if let Some(eng) = &engine
                && ev.source == EventSource::Docker
                && ev.kind == "container_start"
            {
                let eng = eng.clone();
                let ev = ev.clone();
                rt.spawn(async move {
                    eng.on_event(&ev).await;
                });
            }
            alerts.extend(rules.detect(ev).iter().map(|d| d.to_alert(ev)));
        }
        if alerts.is_empty() {
            return;
        }
        let app = consumer_app.clone();
        rt.spawn(async move {
            if let Err(e) = app.ingest(alerts).await {
                tracing::warn!(error = %e, "runtime alerts not ingested");
            }
        });
    };
    let handle = match sensor::Sensor::start_with_consumer(scfg, Box::new(consumer)).await {
        Ok(h) => h,
        Err(e) if cfg.sensor.enabled == SensorEnabled::Auto => {
            tracing::warn!(error = %e, "sensor could not start; running without runtime detection");
            return Ok(());
        }
        Err(e) => return Err(AppError::Unavailable(format!("sensor: {e}"))),
    };
    tracing::info!(
        backend = %handle.backend(),
        event_types = ?scfg_types,
        "sensor running (event types the rules can match; None: all)"
    );
    let mut shutdown = app.inner.shutdown.subscribe();
    tokio::spawn(async move {
        // Dropping the handle stops the sensor: keep it until shutdown.
        let _ = shutdown.changed().await;
        handle.stop();
    });
    Ok(())
}
