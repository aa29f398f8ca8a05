//! The render driver: rows in parallel on a rayon pool, handed to a sink in order as soon as they
//! and every row before them are done, with a bounded reorder window; cancellable; observable.
//!
//! Workers claim rows in output order from a shared counter. A worker may only start row `k` when
//! `k < emitted + window`, so at most `window` finished-but-unsent rows ever exist, whatever the
//! image height. This cannot deadlock: the lowest unsent row is always claimed by a worker that is
//! rendering it, not waiting. The sink runs on the calling thread, never on a pool thread, so all
//! of the pool's threads render.

use crate::color::Rgb;
use crate::control::{CancelToken, Progress};
use crate::engine::{self, Cancelled};
use crate::format::RowOrder;
use crate::request::RenderRequest;
use crate::scene::Scene;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Most threads a render pool may be given (the CLI's `--threads`, the server's `RENDER_THREADS`):
/// far more than any host's cores. More only cost a stack each, and asked for by the hundred
/// thousand, the threads could not all be started (the server hung starting them).
pub const MAX_THREADS: u32 = 1024;

/// How to run a render.
#[derive(Clone, Debug)]
pub struct RenderOptions<'a> {
    /// The pool to render on; the global rayon pool when `None`.
    pub pool: Option<&'a rayon::ThreadPool>,
    /// Largest number of finished rows held back waiting for an earlier row; 0 picks
    /// [`default_window`] for the pool's size.
    pub window: usize,
    /// Cancels the render.
    pub cancel: CancelToken,
    /// Where the driver counts the rows it has handed to the sink.
    pub progress: Progress,
}

impl Default for RenderOptions<'_> {
    fn default() -> Self {
        RenderOptions { pool: None, window: 0, cancel: CancelToken::new(), progress: Progress::new() }
    }
}

impl RenderOptions<'_> {
    /// Threads the render runs on: the pool's, or the global pool's.
    pub fn threads(&self) -> usize {
        self.pool.map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }
}

/// The reorder window used when none is given: four rows per thread, at least 8.
pub fn default_window(threads: usize) -> usize {
    (4 * threads).max(8)
}

/// Why a render did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The cancel token fired.
    #[error("render cancelled")]
    Cancelled,
    /// The sink (the encoder or its writer) failed.
    #[error("writing the image failed: {0}")]
    Io(#[from] io::Error),
    /// The engine cannot render the scene.
    #[error(transparent)]
    Scene(#[from] engine::SceneError),
    /// Memory for the render's buffers could not be had (a progressive render's sums, past a
    /// limit set above the machine's memory): an error, not an abort of the process.
    #[error("cannot allocate {bytes} bytes for the render")]
    OutOfMemory {
        /// What was asked for.
        bytes: u64,
    },
}

/// What a finished render did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderStats {
    /// Width × height.
    pub pixels: u64,
    /// The spp actually rendered (a multiple of 4).
    pub effective_spp: u32,
    /// Camera samples: pixels × effective spp.
    pub samples: u64,
    /// Ray segments traced (ray–scene intersection queries).
    pub segments: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Threads that rendered.
    pub threads: usize,
    /// The most rows that were ever finished but not yet handed to the sink (an upper bound,
    /// counted from when a row is done): never more than the reorder window. A test hook.
    #[cfg(feature = "test-hooks")]
    pub max_held_rows: u32,
}

impl RenderStats {
    /// The stats of `req` rendered in full (every row of its band): `segments` traced on
    /// `threads` since `start`.
    pub(crate) fn of(req: &RenderRequest, segments: u64, start: Instant, threads: usize) -> RenderStats {
        RenderStats {
            pixels: u64::from(req.width) * u64::from(req.band().len()),
            effective_spp: req.effective_spp(),
            samples: req.total_samples(),
            segments,
            elapsed: start.elapsed(),
            threads,
            #[cfg(feature = "test-hooks")]
            max_held_rows: 0,
        }
    }

    /// Millions of camera samples per second.
    pub fn msamples_per_sec(&self) -> f64 {
        self.samples as f64 / self.elapsed.as_secs_f64() / 1e6
    }
    /// Millions of ray segments per second.
    pub fn msegments_per_sec(&self) -> f64 {
        self.segments as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Renders `req` on `scene`, calling `sink(row, pixels)` for every row of `req.band()` in
/// `order`, where `row` counts from the top of the whole image. Returns only after every row
/// reached the sink, or with the error that stopped it (a cancelled render never looks like a
/// short image).
///
/// A panic in the engine stops the other workers and is resumed on the calling thread.
pub fn render_rows<F>(
    scene: &Scene,
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    order: RowOrder,
    mut sink: F,
) -> Result<RenderStats, RenderError>
where
    F: FnMut(u32, &[Rgb]) -> io::Result<()>,
{
    let start = Instant::now();
    let engine = engine::build(scene, req)?;
    let band = req.band();
    let (w, h) = (req.width, band.len());
    let threads = opts.threads();
    let window = if opts.window == 0 { default_window(threads) } else { opts.window } as u32;
    let cancel = &opts.cancel;
    opts.progress.set(0, h);
    let row_of = |k: u32| match order {
        RowOrder::TopDown => band.start + k,
        RowOrder::BottomUp => band.end - 1 - k,
    };

    let next = AtomicU32::new(0);
    // Rows handed to the sink; workers wait on `advanced` for room in the window.
    let emitted = Mutex::new(0u32);
    let advanced = Condvar::new();
    let segments = AtomicU64::new(0);
    let finished = AtomicU32::new(0);
    #[cfg(feature = "test-hooks")]
    let mut max_held_rows = 0;
    let (tx, rx) = mpsc::channel::<(u32, Vec<Rgb>)>();
    let mut outcome: Result<(), RenderError> = Ok(());

    in_place_scope(opts.pool, |scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (engine, next, emitted, advanced, segments, finished) =
                (&engine, &next, &emitted, &advanced, &segments, &finished);
            scope.spawn(move |_| {
                // If this worker panics, nobody may wait for its row: stop everyone.
                let _guard = PanicStop { cancel, advanced };
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= h {
                        return;
                    }
                    {
                        let mut e = emitted.lock().unwrap_or_else(|p| p.into_inner());
                        // A timed wait: a cancel from outside does not notify, and must still be seen.
                        while k >= *e + window && !cancel.is_cancelled() {
                            e = advanced.wait_timeout(e, WINDOW_POLL).unwrap_or_else(|p| p.into_inner()).0;
                        }
                    }
                    if cancel.is_cancelled() {
                        return;
                    }
                    let mut pixels = vec![Rgb::ZERO; w as usize];
                    match engine.render_row(row_of(k), &mut pixels, cancel) {
                        Ok(stats) => {
                            segments.fetch_add(stats.segments, Ordering::Relaxed);
                            finished.fetch_add(1, Ordering::Relaxed);
                            if tx.send((k, pixels)).is_err() {
                                return;
                            }
                        }
                        Err(Cancelled) => return,
                    }
                }
            });
        }
        drop(tx);

        // The sink side, on the calling thread: put rows back in order and pass them on. A panic
        // in the sink must release the workers too, or the scope would wait for them forever.
        let _guard = PanicStop { cancel, advanced: &advanced };
        let mut pending = BTreeMap::new();
        let mut sent = 0u32;
        for (k, pixels) in rx.iter() {
            #[cfg(feature = "test-hooks")]
            {
                max_held_rows = max_held_rows.max(finished.load(Ordering::Relaxed) - sent);
            }
            pending.insert(k, pixels);
            while let Some(pixels) = pending.remove(&sent) {
                if outcome.is_ok()
                    && let Err(e) = sink(row_of(sent), &pixels)
                {
                    outcome = Err(e.into());
                    cancel.cancel();
                }
                sent += 1;
                opts.progress.set(sent, h);
                *emitted.lock().unwrap_or_else(|p| p.into_inner()) = sent;
                advanced.notify_all();
            }
        }
        if outcome.is_ok() && sent < h {
            outcome = Err(RenderError::Cancelled);
        }
    });
    outcome?;
    Ok(RenderStats {
        #[cfg(feature = "test-hooks")]
        max_held_rows,
        ..RenderStats::of(req, segments.into_inner(), start, threads)
    })
}

/// Runs `f` on `pool` (or the global pool).
pub(crate) fn install<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// A scope whose body runs on the calling thread and whose spawns run on `pool` (or the global pool).
pub(crate) fn in_place_scope<'s, R>(pool: Option<&rayon::ThreadPool>, body: impl FnOnce(&rayon::Scope<'s>) -> R) -> R {
    match pool {
        Some(pool) => pool.in_place_scope(body),
        None => rayon::in_place_scope(body),
    }
}

/// How often a worker waiting for room in the reorder window looks at the cancel flag.
const WINDOW_POLL: Duration = Duration::from_millis(5);

/// Cancels the render and wakes the waiting workers if dropped during a panic.
struct PanicStop<'a> {
    cancel: &'a CancelToken,
    advanced: &'a Condvar,
}

impl Drop for PanicStop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.cancel.cancel();
            self.advanced.notify_all();
        }
    }
}
