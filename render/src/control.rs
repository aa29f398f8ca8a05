//! Handles on a running render, shared across threads: [`CancelToken`] (the engines and the
//! driver check it) and [`Progress`] (the driver counts rows into it). A leaf.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Cancels a render from any thread. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, uncancelled token.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks the render to stop; it ends with `RenderError::Cancelled` within about a row.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    #[inline(always)]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A render's progress, readable from any thread while it runs: rows handed to the sink, and
/// rows in the image. Cheap to clone; one per render.
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<[AtomicU32; 2]>);

impl Progress {
    /// No rows of no rows yet.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Rows handed to the sink so far, and rows in the image.
    pub fn get(&self) -> (u32, u32) {
        (self.0[0].load(Ordering::Relaxed), self.0[1].load(Ordering::Relaxed))
    }

    /// Records `done` of `total` rows (the driver's side).
    pub(crate) fn set(&self, done: u32, total: u32) {
        self.0[1].store(total, Ordering::Relaxed);
        self.0[0].store(done, Ordering::Relaxed);
    }
}
