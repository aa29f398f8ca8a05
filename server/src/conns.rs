//! The open connections, and which one to give up when they are all taken.
//!
//! `MAX_CONNECTIONS` bounds the open connections. When every one is taken, the server closes the
//! connection that has gone longest without a request in progress — idle between requests, or
//! still trickling in a head — so a new client is served at once instead of waiting behind idle
//! or slow ones. Connections with a request in progress (a render streaming, say) are never
//! closed for this; if every connection is busy, the new one waits in the listen backlog.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

/// One connection's state, shared by its reader ([`crate::framing::StrictFraming`]), its
/// requests and the accept loop.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    /// Requests in progress: from their head to the end of their response body.
    busy: AtomicU32,
    /// When the connection last had nothing in progress (ms since the registry started).
    since: AtomicU64,
    /// Set by the accept loop: close when next idle.
    evict: AtomicBool,
    /// The reader's task, woken to act on `evict`.
    waker: Mutex<Option<Waker>>,
    /// The id of the request whose response is being sent (HTTP/1: one at a time), for the log
    /// lines of what happens to the connection meanwhile.
    answering: Mutex<Option<String>>,
    conns: Arc<Registry>,
}

/// Every open connection.
#[derive(Debug)]
pub struct Registry {
    start: Instant,
    next: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Registry {
    /// No connections.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry { start: Instant::now(), next: AtomicU64::new(0), slots: Mutex::new(HashMap::new()) })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A new connection's slot; it leaves the registry when the last handle is dropped.
    pub fn open(self: &Arc<Registry>) -> Arc<Slot> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            id,
            busy: AtomicU32::new(0),
            since: AtomicU64::new(self.now_ms()),
            evict: AtomicBool::new(false),
            waker: Mutex::new(None),
            answering: Mutex::new(None),
            conns: self.clone(),
        });
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).insert(id, slot.clone());
        slot
    }

    /// Asks the connection longest without a request in progress to close; false if every
    /// connection is busy.
    pub fn evict_one(&self) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let victim = slots
            .values()
            .filter(|s| s.busy.load(Ordering::Relaxed) == 0 && !s.evict.load(Ordering::Relaxed))
            .min_by_key(|s| s.since.load(Ordering::Relaxed));
        let Some(v) = victim else { return false };
        v.evict.store(true, Ordering::Relaxed);
        if let Some(w) = v.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
        true
    }
}

impl Slot {
    /// A request started on this connection; it ends when the guard is dropped.
    pub fn request(self: &Arc<Slot>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Its response (request `id`) is being sent.
    pub fn answering(&self, id: &str) {
        *self.answering.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_owned());
    }

    /// The id of the request whose response is being sent, if one is.
    pub fn answering_id(&self) -> Option<String> {
        self.answering.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether a request is in progress on this connection.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }

    /// Whether the accept loop asked this connection to close and it has nothing in progress.
    pub fn should_close(&self) -> bool {
        self.evict.load(Ordering::Relaxed) && self.busy.load(Ordering::Relaxed) == 0
    }

    /// Remembers the reader's task, to wake it for an eviction.
    pub fn park(&self, waker: &Waker) {
        let mut w = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *w = Some(waker.clone());
        }
    }

    /// Leaves the registry (the connection closed).
    pub fn close(&self) {
        self.conns.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// A request in progress; its connection is not evicted until this is dropped.
pub struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.since.store(self.0.conns.now_ms(), Ordering::Relaxed);
            *self.0.answering.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_being_answered_is_known_until_its_response_ends() {
        let r = Registry::new();
        let a = r.open();
        let busy = a.request();
        assert_eq!(a.answering_id(), None);
        a.answering("req-1");
        assert_eq!(a.answering_id().as_deref(), Some("req-1"));
        drop(busy);
        assert_eq!(a.answering_id(), None, "a later stall is not this request's");
    }

    #[test]
    fn the_longest_idle_connection_goes_first_and_busy_ones_never() {
        let r = Registry::new();
        let (a, b) = (r.open(), r.open());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let c = r.open();
        let busy_a = a.request();
        assert!(r.evict_one());
        assert!(b.should_close() && !a.should_close() && !c.should_close(), "b is the longest idle, a is busy");
        assert!(r.evict_one());
        assert!(c.should_close());
        assert!(!r.evict_one(), "only a busy connection is left");
        drop(busy_a);
        assert!(r.evict_one() && a.should_close());
        for s in [&a, &b, &c] {
            s.close();
        }
        assert!(r.slots.lock().unwrap().is_empty());
    }
}
