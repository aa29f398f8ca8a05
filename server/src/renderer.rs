//! The render side: a dedicated rayon pool, the slots that bound how many renders run at once,
//! the FIFO queue behind them, and the blocking driver that feeds a response body.
//!
//! A render's driver runs on tokio's blocking pool (never on a tokio worker); its rows are
//! rendered on the rayon pool; its encoded bytes go through a bounded channel to the body.

use crate::body::Chunk;
use crate::config::Config;
use crate::error::AppError;
use bytes::Bytes;
use render::{CancelToken, RenderError, RenderOptions, RenderRequest, RenderStats, Scene};
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{error, info, warn};

/// Chunks buffered between a render and its body. The encoders write a row (or a compressor
/// block) at a time, so this is a few rows: enough to keep the socket busy, small enough that a
/// slow client holds the render back instead of growing memory.
const CHANNEL_CHUNKS: usize = 16;

/// The render pool and its admission control.
pub struct Renderer {
    pool: Arc<rayon::ThreadPool>,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queue: usize,
    active: AtomicUsize,
    idle: Notify,
    /// A render gave its slot back (one waiter per slot: see [`Renderer::wait_place`]).
    freed: Notify,
    retry_after: u64,
    /// Requests shed since the last summary line, and when that was (ms after `started`).
    shed: AtomicU64,
    shed_logged: AtomicU64,
    started: Instant,
    #[cfg(feature = "test-hooks")]
    fault_injection: bool,
}

/// Counts a render from admission until its driver finished (or it left the queue).
pub struct Active(Arc<Renderer>);

impl Drop for Active {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

struct Queued<'a>(&'a Renderer);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Cancels a render when dropped: held by the request handler, then by the response body, so a
/// client that goes away, at any stage, stops its render within about a row.
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Why a started render did not finish. It also ends the body's stream (as the error's source),
/// so that an answer held whole can still say why it failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// Cancelled: client gone, or deadline.
    #[error("cancelled")]
    Cancelled,
    /// The encoder or the channel failed.
    #[error("output failed: {0}")]
    Io(String),
    /// The render panicked.
    #[error("panicked: {0}")]
    Panic(String),
    /// A fan-out's part failed for good.
    #[error("part {index} (rows {rows}) failed: {reason}")]
    Part {
        /// The part's index (0 is the top band).
        index: usize,
        /// Its rows.
        rows: render::RowBand,
        /// The last attempt's error.
        reason: String,
        /// The last attempt was refused by a busy worker naming this `Retry-After` (seconds).
        retry_after: Option<u64>,
    },
    /// A fan-out's deadline passed.
    #[error("the deadline passed")]
    Deadline,
}

/// A render that has started: the first row's arrival (or the failure before it) on `head`,
/// the encoded bytes on `data`.
pub struct Started {
    /// Resolves when the first row is encoded (`Ok`) or the render ended before that.
    pub head: oneshot::Receiver<Result<(), Failure>>,
    /// The encoded image, then an `Err` if the render failed.
    pub data: mpsc::Receiver<Chunk>,
    /// Bytes sent so far.
    pub bytes: Arc<AtomicU64>,
}

impl Renderer {
    /// A pool of `config.pool_threads()` threads.
    pub fn new(config: &Config) -> io::Result<Arc<Renderer>> {
        let threads = config.pool_threads();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("render-{i}"))
            .build()
            .map_err(io::Error::other)?;
        Ok(Arc::new(Renderer {
            pool: Arc::new(pool),
            slots: Arc::new(Semaphore::new(config.concurrency)),
            queued: AtomicUsize::new(0),
            max_queue: config.queue,
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            freed: Notify::new(),
            retry_after: config.retry_after_secs,
            shed: AtomicU64::new(0),
            shed_logged: AtomicU64::new(0),
            started: Instant::now(),
            #[cfg(feature = "test-hooks")]
            fault_injection: config.fault_injection,
        }))
    }

    /// Threads in the render pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Renders admitted and not finished (queued ones included).
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Renders waiting for a slot.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits until no render is active, or `timeout` passes; returns whether it is idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.active() == 0 {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.active() == 0;
            }
        }
    }

    /// Counts work that needs no render slot (a fan-out's coordination) as active, so `/healthz`
    /// shows it and PreStop waits for it.
    pub fn track(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Ordering::AcqRel);
        Active(self.clone())
    }

    /// Whether a render asked for now would be refused: every slot rendering, the queue full.
    /// Checked before anything else is done for a request, so shedding costs microseconds.
    pub fn full(&self) -> bool {
        self.slots.available_permits() == 0 && self.queued.load(Ordering::Acquire) >= self.max_queue
    }

    /// Waits up to `grace` for the server to be no longer [`full`](Self::full); whether it is.
    /// A render whose client has just gone (a browser's "render again", a client's retry) gives
    /// its slot back milliseconds later, and the one asking again at once is served instead of
    /// told the slot is taken. Each freed slot wakes one waiter.
    pub async fn wait_place(&self, grace: Duration) -> bool {
        let until = tokio::time::Instant::now() + grace;
        loop {
            let freed = self.freed.notified();
            if !self.full() {
                return true;
            }
            if tokio::time::timeout_at(until, freed).await.is_err() {
                return !self.full();
            }
        }
    }

    /// The 503 for a request shed because the server is [`full`](Self::full). Shed requests log
    /// nothing each: one summary line a second counts them.
    pub fn shed(&self) -> AppError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.shed_logged.load(Ordering::Relaxed);
        if now >= last + 1000
            && self.shed_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let n = self.shed.swap(0, Ordering::Relaxed);
            warn!(
                shed = n,
                since_ms = now - last,
                retry_after = self.retry_after,
                "shedding load: renders refused, queue full"
            );
        }
        AppError::QueueFull { retry_after: self.retry_after }
    }

    /// Takes a render slot, queueing (FIFO) if all are busy: 503 at once if the queue is full,
    /// 503 if `deadline` passes in the queue.
    pub async fn admit(self: &Arc<Self>, deadline: Instant) -> Result<(OwnedSemaphorePermit, Active), AppError> {
        self.active.fetch_add(1, Ordering::AcqRel);
        let active = Active(self.clone());
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok((permit, active));
        }
        let max = self.max_queue;
        if self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q < max).then_some(q + 1)).is_err() {
            return Err(self.shed());
        }
        let _queued = Queued(self);
        info!(queued = self.queued(), "render queued");
        let acquire = self.slots.clone().acquire_owned();
        match tokio::time::timeout_at(deadline.into(), acquire).await {
            Ok(permit) => Ok((permit.expect("the slots semaphore is never closed"), active)),
            Err(_) => Err(AppError::QueuedTooLong),
        }
    }

    /// Starts rendering `req` on the pool. The permit and the `Active` count are released when
    /// the driver has returned, so the next render never overlaps a cancelled one, and before the
    /// data channel closes, so a client that has the whole image finds the slot free ([`Body`]).
    ///
    /// [`Body`]: crate::body::Body
    pub fn start(
        self: &Arc<Self>,
        req: RenderRequest,
        cancel: CancelToken,
        permit: OwnedSemaphorePermit,
        active: Active,
    ) -> Started {
        let (head_tx, head) = oneshot::channel();
        let (data_tx, data) = mpsc::channel(CHANNEL_CHUNKS);
        let bytes = Arc::new(AtomicU64::new(0));
        let writer = ChannelWriter::new(data_tx.clone(), bytes.clone());
        let bytes_done = bytes.clone();
        let pool = self.pool.clone();
        let this = self.clone();
        #[cfg(feature = "test-hooks")]
        let fault = self.fault_injection;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            let slot = (permit, active);
            let mut head_tx = Some(head_tx);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                #[cfg(feature = "test-hooks")]
                if fault && req.seed == render::request::MAX_SEED {
                    panic!("injected fault (seed {})", req.seed);
                }
                drive(&pool, &req, &cancel, writer, &mut head_tx)
            }));
            let outcome = match outcome {
                Ok(Ok(stats)) => Ok(stats),
                Ok(Err(RenderError::Cancelled)) => Err(Failure::Cancelled),
                Ok(Err(RenderError::Io(e))) => Err(Failure::Io(e.to_string())),
                Ok(Err(e @ (RenderError::Scene(_) | RenderError::OutOfMemory { .. }))) => {
                    Err(Failure::Io(e.to_string()))
                }
                Err(panic) => Err(Failure::Panic(panic_message(&*panic))),
            };
            log_outcome(&outcome, bytes_done.load(Ordering::Relaxed));
            let failure = outcome.err();
            if let Some(tx) = head_tx.take() {
                let _ = tx.send(failure.clone().map_or(Ok(()), Err));
            }
            if let Some(f) = failure {
                // Makes the body end in an error, so hyper aborts the connection rather than
                // ending a short image cleanly.
                let _ = data_tx.blocking_send(Err(io::Error::other(f)));
            }
            drop(slot);
            this.freed.notify_one();
            drop(data_tx);
        });
        Started { head, data, bytes }
    }
}

fn log_outcome(outcome: &Result<RenderStats, Failure>, bytes: u64) {
    match outcome {
        // The parameters are in the "render requested" line of the same request id.
        Ok(s) => info!(
            pixels = s.pixels,
            spp = s.effective_spp,
            ms = s.elapsed.as_secs_f64() * 1e3,
            bytes,
            threads = s.threads,
            msamples_per_s = format!("{:.2}", s.msamples_per_sec()),
            msegments_per_s = format!("{:.2}", s.msegments_per_sec()),
            "render done"
        ),
        Err(Failure::Cancelled) => warn!(bytes, "render cancelled"),
        Err(Failure::Io(e)) => warn!(bytes, error = %e, "render stopped: output failed"),
        Err(Failure::Panic(msg)) => error!(bytes, panic = %msg, "render panicked"),
        Err(f @ (Failure::Part { .. } | Failure::Deadline)) => warn!(bytes, failure = ?f, "render failed"),
    }
}

/// The blocking part: encode rows as they finish, signal the first one.
fn drive(
    pool: &rayon::ThreadPool,
    req: &RenderRequest,
    cancel: &CancelToken,
    writer: ChannelWriter,
    head_tx: &mut Option<oneshot::Sender<Result<(), Failure>>>,
) -> Result<RenderStats, RenderError> {
    let start = Instant::now();
    let opts = RenderOptions { pool: Some(pool), cancel: cancel.clone(), ..RenderOptions::default() };
    let stats = render::render_scene_to_writer(&Scene::default(), req, &opts, writer, || {
        if let Some(tx) = head_tx.take() {
            tracing::debug!(ms = start.elapsed().as_secs_f64() * 1e3, "first row");
            let _ = tx.send(Ok(()));
        }
    })?;
    Ok(stats)
}

/// Writes go to the body through the bounded channel; blocks while the channel is full (the
/// client is slower than the render), fails once the body is gone.
///
/// Writes are coalesced: a write is sent on at once if nothing was sent for [`COALESCE_TIME`],
/// else it waits for more, up to [`COALESCE_BYTES`]. A slow render still streams row by row; a
/// fast one goes out in 64 KiB chunks instead of one frame, wake-up and syscall per row (which on
/// a fan-out's coordinator cost more than the bytes). What is left is sent by `flush` and on drop.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    bytes: Arc<AtomicU64>,
    buf: Vec<u8>,
    last_send: Option<Instant>,
}

/// See [`ChannelWriter`].
const COALESCE_TIME: Duration = Duration::from_millis(20);
/// See [`ChannelWriter`].
const COALESCE_BYTES: usize = 64 * 1024;

impl ChannelWriter {
    /// Writes into `tx`, counting the bytes sent in `bytes`.
    pub(crate) fn new(tx: mpsc::Sender<Chunk>, bytes: Arc<AtomicU64>) -> ChannelWriter {
        ChannelWriter { tx, bytes, buf: Vec::new(), last_send: None }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        let n = chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "response body dropped"))?;
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.last_send = Some(Instant::now());
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= COALESCE_BYTES || self.last_send.is_none_or(|t| t.elapsed() >= COALESCE_TIME) {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        // The encoders own their writer and some do not flush it on finish (PNG's stream writer).
        let _ = self.send();
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
