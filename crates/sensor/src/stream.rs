//! Where the sensor's events go. Events travel from the sensor's threads to the consumer in
//! batches (one per ring-buffer drain): either through an [`EventStream`], which wakes the
//! consumer once per drain rather than once for every few events, or straight into an
//! [`EventConsumer`] that runs on the sensor's own thread and wakes nobody. On a small,
//! virtualised host each wakeup costs the traced workload more than the event itself.

use model::Event;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A consumer that runs on the sensor's threads (the reader's, and the Docker task's for
/// Docker events), called with each batch in order. It must be quick: while it runs, events
/// wait in the kernel's ring buffer, and what overflows that is counted in
/// [`crate::SensorStats::ring_drops`].
pub type EventConsumer = Box<dyn FnMut(Vec<Event>) + Send>;

/// Takes the events gathered in `batch` to hand them over, leaving an empty vector with room
/// for a batch as large as this one: a drain's events are pushed without regrowing (and
/// copying) the vector, and an empty batch keeps its room.
pub(crate) fn take_batch(batch: &mut Vec<Event>) -> Vec<Event> {
    if batch.is_empty() {
        return Vec::new();
    }
    let room = batch.len().next_power_of_two().max(64);
    std::mem::replace(batch, Vec::with_capacity(room))
}

/// Where the sensor hands its events.
pub(crate) enum Output {
    /// Through a bounded channel to an [`EventStream`].
    Stream(EventSink),
    /// Into a consumer called in place.
    Inline(Mutex<EventConsumer>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stream(s) => f.debug_tuple("Stream").field(s).finish(),
            Output::Inline(_) => f.write_str("Inline"),
        }
    }
}

impl Output {
    /// Hands `batch` over; returns how many events were delivered. Sets `closed` when the
    /// consumer has gone.
    pub(crate) fn send(&self, batch: Vec<Event>, closed: &AtomicBool) -> usize {
        match self {
            Output::Stream(s) => s.send(batch, closed),
            Output::Inline(c) => {
                let n = batch.len();
                if n > 0 {
                    let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                    (*c)(batch);
                }
                n
            }
        }
    }

    /// Events dropped because the consumer fell too far behind (only a stream can).
    pub(crate) fn dropped(&self) -> u64 {
        match self {
            Output::Stream(s) => s.dropped.load(Ordering::Relaxed),
            Output::Inline(_) => 0,
        }
    }
}

/// The sending side of an [`EventStream`], held by the sensor's threads and the Docker task.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: mpsc::UnboundedSender<Vec<Event>>,
    /// Events sent and not yet taken by the consumer.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// Events dropped because the consumer fell `capacity` events behind.
    dropped: AtomicU64,
}

impl EventSink {
    /// Hands `batch` to the consumer in one piece; returns how many events went. Events that
    /// do not fit under the capacity are dropped and counted (the newest ones, as a full
    /// bounded channel would). Sets `closed` when the consumer has gone.
    fn send(&self, mut batch: Vec<Event>, closed: &AtomicBool) -> usize {
        let room = self
            .capacity
            .saturating_sub(self.queued.load(Ordering::Acquire));
        if batch.len() > room {
            self.dropped
                .fetch_add((batch.len() - room) as u64, Ordering::Relaxed);
            batch.truncate(room);
        }
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        self.queued.fetch_add(n, Ordering::AcqRel);
        match self.tx.send(batch) {
            Ok(()) => n,
            Err(_) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                closed.store(true, Ordering::Relaxed);
                0
            }
        }
    }
}

/// The events the sensor sees, in the order it saw them. Bounded: when the consumer falls
/// [`crate::SensorConfig::channel_capacity`] events behind, newer events are dropped and
/// counted in [`crate::SensorStats::channel_drops`].
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Vec<Event>>,
    /// The rest of the batch being read.
    current: std::vec::IntoIter<Event>,
    queued: Arc<AtomicUsize>,
}

impl EventStream {
    /// The next event; `None` once the sensor has stopped and everything was read.
    /// Cancel-safe: an event is never lost when the future is dropped unfinished.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.current.next() {
                return Some(ev);
            }
            let batch = self.rx.recv().await?;
            self.take(batch);
        }
    }

    /// Whether no event is waiting (a later [`EventStream::recv`] would wait).
    pub fn is_empty(&self) -> bool {
        self.current.len() == 0 && self.queued.load(Ordering::Acquire) == 0
    }

    /// The events available now, without waiting: the rest of the current batch, else the
    /// next batch queued; `None` when nothing is waiting.
    pub fn try_recv_batch(&mut self) -> Option<Vec<Event>> {
        let rest: Vec<Event> = self.current.by_ref().collect();
        if !rest.is_empty() {
            return Some(rest);
        }
        let batch = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        Some(batch)
    }

    fn take(&mut self, batch: Vec<Event>) {
        self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        self.current = batch.into_iter();
    }
}

/// A connected sink and stream holding at most `capacity` events between them.
pub(crate) fn channel(capacity: usize) -> (EventSink, EventStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        EventSink {
            tx,
            queued: queued.clone(),
            capacity,
            dropped: AtomicU64::new(0),
        },
        EventStream {
            rx,
            current: Vec::new().into_iter(),
            queued,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_batch_leaves_room_for_the_next() {
        let mut b: Vec<Event> = Vec::new();
        assert!(take_batch(&mut b).is_empty());
        b.extend((0..100).map(|_| Event::default()));
        let out = take_batch(&mut b);
        assert_eq!(out.len(), 100);
        assert!(b.is_empty());
        assert!(b.capacity() >= 128, "{}", b.capacity());
        let room = b.capacity();
        assert!(take_batch(&mut b).is_empty());
        assert_eq!(b.capacity(), room, "an empty batch keeps its room");
    }

    fn ev(i: usize) -> Event {
        Event {
            kind: "execve".into(),
            res: Some(i as i64),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn batches_arrive_in_order_and_capacity_drops_the_newest() {
        let (sink, mut stream) = channel(5);
        let closed = AtomicBool::new(false);
        assert_eq!(sink.send((0..3).map(ev).collect(), &closed), 3);
        assert_eq!(sink.send(Vec::new(), &closed), 0);
        // Two fit, one does not.
        assert_eq!(sink.send((3..6).map(ev).collect(), &closed), 2);
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 1);
        let mut seen = Vec::new();
        for _ in 0..5 {
            let e = stream.recv().await.expect("event");
            seen.push(e.res);
        }
        let want: Vec<_> = (0..5).map(Some).collect();
        assert_eq!(seen, want);
        // Read events free their room again.
        assert_eq!(sink.send((6..8).map(ev).collect(), &closed), 2);
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 1);
        assert!(!stream.is_empty());
        assert_eq!(stream.try_recv_batch().map(|b| b.len()), Some(2));
        assert!(stream.try_recv_batch().is_none());
        assert!(stream.is_empty());
        drop(sink);
        assert!(stream.recv().await.is_none());
    }

    #[test]
    fn an_inline_consumer_gets_whole_batches_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let out = Output::Inline(Mutex::new(Box::new(move |b: Vec<Event>| {
            s2.lock()
                .unwrap()
                .push(b.iter().map(|e| e.res).collect::<Vec<_>>());
        })));
        let closed = AtomicBool::new(false);
        assert_eq!(out.send((0..3).map(ev).collect(), &closed), 3);
        assert_eq!(out.send(Vec::new(), &closed), 0);
        assert_eq!(out.send(vec![ev(3)], &closed), 1);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![vec![Some(0), Some(1), Some(2)], vec![Some(3)]]
        );
        assert_eq!(out.dropped(), 0);
        assert!(!closed.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_gone_consumer_closes_the_sink() {
        let (sink, stream) = channel(4);
        drop(stream);
        let closed = AtomicBool::new(false);
        assert_eq!(sink.send(vec![ev(1)], &closed), 0);
        assert!(closed.load(Ordering::Relaxed));
    }
}
