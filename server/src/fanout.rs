//! The fan-out coordinator: a request with `parts=N` is cut into N row bands
//! ([`RowBand::split`]: near-equal, the larger first), each sent as an HTTP request (`rows=A-B`, in
//! the format's lossless carrier, P6 or PFM) to the worker endpoints of `FANOUT_URL`, and the
//! bands' rows are re-encoded in the requested format into one streamed response. The coordinator
//! renders nothing itself: it only waits on sockets and re-encodes.
//!
//! Why it can stay simple: a band's bytes depend only on the request and its rows, never on the
//! process that renders them (for the fast engines, among processes whose SIMD paths share an
//! arithmetic, which `check_simd` enforces), so every attempt at a band — a retry, a hedged
//! duplicate — sends the same bytes. All attempts at a band write into one buffer, each extending
//! the prefix the others already have (and checked against it where they overlap); the band is
//! done when any of them reaches its end, and the others are dropped, which closes their
//! connections and so stops their renders. A retry after a reset resumes where the band had got
//! to; a hedge that overtakes a straggler simply wins.
//!
//! Stragglers are judged on running time, from when the worker began rendering the part (the
//! request's send time plus the queue wait it names in [`QUEUED_HEADER`]; the part counts as
//! running once its response head, sent after the band's first row, is in) to its end: a part
//! waiting in a worker's queue — a pool with more parts than render slots — is not a straggler,
//! and duplicating it would only queue more. A part that never gets its head is caught by
//! `FANOUT_PART_TIMEOUT_SECS` instead.
//!
//! Shape: a scheduler task starts parts in output order, at most `FANOUT_CONCURRENCY` bands ahead
//! of the merge, and retries, hedges and times them; the merge, on a blocking thread (PNG's
//! compression is CPU work), takes each band's rows in turn as they arrive, re-encodes them and
//! feeds the response body through the same bounded channel a local render uses. Bands that
//! finish ahead of their turn wait in memory; the window bounds that memory to
//! `FANOUT_CONCURRENCY` bands.

use crate::config::Fanout as Settings;
use crate::renderer::{ChannelWriter, Failure, Started};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use render::encode::{self, raw_row_len};
use render::engine::fast::SimdPath;
use render::{RenderRequest, RowBand, RowOrder};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, info, warn};

/// Request header on every part, valued `<request id>.p<index>`: its receiver refuses `parts`
/// (no recursion) and logs it.
pub const PART_HEADER: &str = "x-render-part";
/// Response header of a render by the fast or nee engine in one process (a part's, or a request
/// without `parts`): the SIMD path it ran on. A fan-out merges only parts whose paths share an
/// arithmetic ([`SimdPath::arithmetic`]).
pub const SIMD_HEADER: &str = "x-render-simd";
/// Response header of a render in one process: the build of its engines ([`render::BUILD`]).
/// A fan-out merges only parts of one build: a worker not yet updated (or a `FANOUT_URL` that
/// names another deployment) may render other bytes.
pub const BUILD_HEADER: &str = "x-render-build";
/// Response header of a render in one process: the milliseconds it waited for a render slot. A
/// fan-out times a part's rendering from its request's send time plus this wait, for its
/// accounting and its stragglers: the response head comes only after the band's first row, so
/// timing from the head would leave that row out (all of a small band, whose rows render in
/// parallel, and then every other band looked like a straggler).
pub const QUEUED_HEADER: &str = "x-render-queued-ms";
/// Response header: the parts a fan-out used.
pub const PARTS_HEADER: &str = "x-render-parts";

/// A part still running after this many times the median finished part's time gets a duplicate.
const HEDGE_FACTOR: f64 = 2.0;
/// The first retry waits this long; each further one twice as long, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long the merge waits for rows before it sends on what it has encoded and looks again. Rows
/// wake it early only in [`BATCH`]-sized amounts (or a band's end): a wake-up per received frame
/// would cost more than the bytes.
const MERGE_WAIT: Duration = Duration::from_millis(25);
/// Rows of the band being merged wake the merge in amounts of this size.
const BATCH: usize = 64 * 1024;
/// With nothing unsent, the merge sleeps until notified; this only bounds a missed wake-up.
const MERGE_IDLE: Duration = Duration::from_secs(1);
/// Chunks buffered between the merge and the response body (as for a local render).
const CHANNEL_CHUNKS: usize = 16;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The worker endpoints and one kept-alive HTTP/HTTPS client for them, shared by every fan-out.
pub struct Pool {
    client: HttpsClient,
    urls: Vec<Uri>,
    /// `urls` as the log shows them (their queries and credentials redacted), made once.
    shown: Vec<String>,
    next: AtomicUsize,
    settings: Settings,
    /// Per endpoint, until when it is passed over because it refused a connection: ms since
    /// `start`; 0 while it answers.
    passed_over: Vec<AtomicU64>,
    start: Instant,
}

/// How long an endpoint that refused a connection is passed over while another is left; then one
/// attempt tries it again. (Asked in turn, a dead endpoint in a pool whose others are full spent
/// a band's retries while the busy refusals between them counted for nothing, and failed it.)
const PASS_OVER: Duration = Duration::from_secs(2);

impl Pool {
    /// The pool of `settings.urls`; `None` when there are none (fan-out off).
    pub fn new(settings: &Settings) -> io::Result<Option<Arc<Pool>>> {
        if settings.urls.is_empty() {
            return Ok(None);
        }
        let urls =
            settings.urls.iter().map(|u| u.parse::<Uri>().map_err(io::Error::other)).collect::<Result<_, _>>()?;
        let shown = settings.urls.iter().map(|u| crate::config::shown_url(u)).collect();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(https);
        let passed_over = settings.urls.iter().map(|_| AtomicU64::new(0)).collect();
        let (next, settings, start) = (AtomicUsize::new(0), settings.clone(), Instant::now());
        Ok(Some(Arc::new(Pool { client, urls, shown, next, settings, passed_over, start })))
    }

    /// Where attempt `n` (from 0, hedges counted) at part `index` of a job goes: round-robin from
    /// the job's first endpoint, so a job's parts spread over the list and each retry or hedge of a
    /// part goes to the next endpoint after the one that failed or stalled — the next one not
    /// passed over ([`PASS_OVER`]), if any is left. The endpoint's number, and the name the log
    /// shows it by.
    fn url(&self, job: &Job, index: usize, n: usize) -> (usize, &str) {
        let len = self.urls.len();
        let turn = (job.first_url + index + n) % len;
        let i = (0..len).map(|k| (turn + k) % len).find(|&i| self.askable(i)).unwrap_or(turn);
        (i, &self.shown[i])
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Whether endpoint `i` may be asked now: it has not refused a connection, or did so
    /// [`PASS_OVER`] ago and this attempt is the one that tries it again (it claims the next
    /// period, so the others keep passing it over until it answers).
    fn askable(&self, i: usize) -> bool {
        let until = &self.passed_over[i];
        let (t, now) = (until.load(Ordering::Acquire), self.now_ms());
        let next = now + PASS_OVER.as_millis() as u64;
        t == 0 || (t <= now && until.compare_exchange(t, next, Ordering::AcqRel, Ordering::Acquire).is_ok())
    }

    /// Endpoint `i` refused a connection (or could not be reached): pass it over for a while.
    fn refused(&self, i: usize) {
        self.passed_over[i].store(self.now_ms() + PASS_OVER.as_millis() as u64, Ordering::Release);
    }

    /// Endpoint `i` answered.
    fn answered(&self, i: usize) {
        self.passed_over[i].store(0, Ordering::Release);
    }
}

/// rustls with ring, the Mozilla roots compiled in (the image has no certificate store) and the
/// certificates of `ca_file`, if given.
fn tls_config(ca_file: Option<&str>) -> io::Result<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, format!("FANOUT_CA_FILE {path}: {e}"));
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no certificate in the file".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// One fan-out: what to render and whom it is for.
pub struct Job {
    /// The client's request (with `parts`).
    pub req: RenderRequest,
    /// The client's request id; part `i` is `<id>.p<i>`.
    pub id: String,
    /// The client's `Authorization`, forwarded to every part (a JWT-protected trigger).
    pub authorization: Option<HeaderValue>,
    /// The client's deadline: it bounds the whole fan-out.
    pub deadline: Instant,
    /// Part 0's endpoint (set by [`start`]): jobs start at different ones.
    first_url: usize,
}

impl Job {
    /// A fan-out of `req` for the request `id`.
    pub fn new(req: RenderRequest, id: String, authorization: Option<HeaderValue>, deadline: Instant) -> Job {
        Job { req, id, authorization, deadline, first_url: 0 }
    }
}

/// Per-fan-out counters for the summary line.
#[derive(Default)]
struct Counters {
    retries: AtomicU32,
    /// Refusals by a busy worker, asked again without counting as retries.
    busy: AtomicU32,
    duplicates: AtomicU32,
    /// The sum of every attempt's running time (request to end less the worker's queueing,
    /// [`QUEUED_HEADER`]; from the response head for a worker that does not send it): the
    /// render time the parts cost.
    running_us: AtomicU64,
    /// The sum of every attempt's whole time (request sent to end).
    request_us: AtomicU64,
}

/// One band's progress, written by its attempts, read by the merge.
struct BandState {
    rows: RowBand,
    /// The band's data (rows without the header), as far as any attempt got.
    data: Vec<u8>,
    /// Length of the whole band's data.
    expected: usize,
    done: bool,
    /// When the band began rendering, as the first attempt to get a 2xx head tells: the worker
    /// has rendered the band's first row, so the band is running, not waiting in a worker's
    /// queue; it began when the request was sent plus the queue wait the worker names (the head's
    /// arrival, for a worker that names none, would leave the first row out).
    running: Option<Instant>,
    /// From `running` to completion: the part's render time, as the coordinator sees it.
    took: Option<Duration>,
    hedged: bool,
    /// Attempts started (hedges included).
    attempts: usize,
}

/// Why a fan-out ended without an image.
#[derive(Clone, Debug)]
enum End {
    Part {
        index: usize,
        rows: RowBand,
        reason: String,
        /// The last attempt was refused by a busy worker naming this `Retry-After`.
        retry_after: Option<u64>,
    },
    Deadline,
    /// The client went away (or the merge stopped).
    Stopped,
    /// An attempt's task panicked (a bug: nothing in it is meant to).
    Panic(String),
}

struct Progress {
    bands: Vec<BandState>,
    /// Bands the merge has finished, counted in output order.
    merged: usize,
    /// The band the merge waits on, the bytes of it already taken, and whether everything
    /// encoded has been sent (then any new row wakes the merge, so it streams at once).
    merging: (usize, usize, bool),
    end: Option<End>,
    /// The SIMD path of the first part that answered, and its band: every other part must share
    /// its arithmetic (fast and nee engines; see [`check_simd`]).
    simd: Option<(SimdPath, usize)>,
    /// The engines' build of the first part that answered, and its band (see [`check_build`]).
    build: Option<(String, usize)>,
}

/// What the scheduler, the attempts and the merge share.
struct Shared {
    progress: Mutex<Progress>,
    /// Wakes the merge: rows arrived, or the fan-out ended.
    rows_in: Condvar,
    /// Wakes the scheduler: a band finished or was merged.
    wake: Notify,
    /// Wakes a band refused as busy: an attempt that a worker took has ended, so a place may
    /// have been freed.
    freed: Notify,
    /// Per band, `true` once it is done: its remaining attempts stop.
    done: Vec<watch::Sender<bool>>,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the merge, the band's other attempts and the scheduler that band `index` is
    /// complete. Called by the attempt that completed it once it has logged its `part done`: the
    /// merge may finish the image at once, and the response's end aborts every attempt still
    /// running, so a line logged after this could be lost.
    fn band_done(&self, index: usize) {
        self.rows_in.notify_all();
        self.done[index].send_replace(true);
        self.wake.notify_one();
    }

    /// Ends the fan-out (the first reason wins) and wakes everyone.
    fn end(&self, why: End) {
        self.lock().end.get_or_insert(why);
        self.rows_in.notify_all();
        self.wake.notify_one();
    }
}

/// A running fan-out, seen from the response: the [`Started`] the body streams from, and a guard
/// that stops every part when dropped (the client went away, or the response is done).
pub struct Running {
    /// The merged image.
    pub started: Started,
    /// Keep alive as long as the body.
    pub guard: Guard,
}

/// Stops the fan-out when dropped: the scheduler (and with it every part's connection) is
/// aborted and the merge released.
pub struct Guard {
    shared: Arc<Shared>,
    scheduler: tokio::task::AbortHandle,
}

impl Guard {
    /// Whether the parts merged so far came from this process's engines: its build and, for the
    /// SIMD engines, its arithmetic. Then the merged image is the one this process renders for
    /// `req` without `parts`, byte for byte (every later part must match the first). Meant for
    /// once the head is out, when the first part has been checked.
    pub fn rendered_as_here(&self, req: &RenderRequest) -> bool {
        let p = self.shared.lock();
        let build = p.build.as_ref().is_some_and(|(b, _)| b == render::BUILD);
        let here = SimdPath::detected().arithmetic();
        let arithmetic = !req.engine.on_simd_lanes() || p.simd.is_some_and(|(s, _)| s.arithmetic() == here);
        build && arithmetic
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.scheduler.abort();
        self.shared.end(End::Stopped);
    }
}

/// Starts the fan-out of `job` over `pool`. The head resolves once the first band's first rows
/// are merged, or with the failure that came before them.
pub fn start(pool: Arc<Pool>, mut job: Job) -> Running {
    job.first_url = pool.next.fetch_add(job.req.parts.unwrap_or(1) as usize, Ordering::Relaxed);
    let bands = job.req.part_bands().expect("a fan-out request has parts");
    let fmt = job.req.format;
    let row_len = raw_row_len(fmt, job.req.width);
    // The merged image's rows in the format's order: PFM's bottom band first.
    let order: Vec<usize> = match fmt.row_order() {
        RowOrder::TopDown => (0..bands.len()).collect(),
        RowOrder::BottomUp => (0..bands.len()).rev().collect(),
    };
    let shared = Arc::new(Shared {
        progress: Mutex::new(Progress {
            bands: bands
                .iter()
                .map(|&rows| BandState {
                    rows,
                    data: Vec::new(),
                    expected: rows.len() as usize * row_len,
                    done: false,
                    running: None,
                    took: None,
                    hedged: false,
                    attempts: 0,
                })
                .collect(),
            merged: 0,
            merging: (order[0], 0, true),
            end: None,
            simd: None,
            build: None,
        }),
        rows_in: Condvar::new(),
        wake: Notify::new(),
        freed: Notify::new(),
        done: bands.iter().map(|_| watch::channel(false).0).collect(),
        counters: Counters::default(),
    });
    let job = Arc::new(job);
    let span = tracing::Span::current();
    let scheduler = tokio::spawn(schedule(pool, job.clone(), shared.clone(), order.clone()).instrument(span.clone()))
        .abort_handle();

    let (head_tx, head) = oneshot::channel();
    let (data_tx, data) = mpsc::channel(CHANNEL_CHUNKS);
    let bytes = Arc::new(AtomicU64::new(0));
    let writer = Batched::new(ChannelWriter::new(data_tx.clone(), bytes.clone()));
    let merge_shared = shared.clone();
    let merge_bytes = bytes.clone();
    let t0 = Instant::now();
    tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let mut head_tx = Some(head_tx);
        let outcome = merge(&job, &merge_shared, &order, writer, &mut head_tx);
        let c = &merge_shared.counters;
        let failure = match outcome {
            Ok(()) => {
                info!(
                    parts = order.len(),
                    retries = c.retries.load(Ordering::Relaxed),
                    busy = c.busy.load(Ordering::Relaxed),
                    duplicates = c.duplicates.load(Ordering::Relaxed),
                    wall_ms = ms(t0.elapsed()),
                    parts_ms = c.running_us.load(Ordering::Relaxed) as f64 / 1e3,
                    requests_ms = c.request_us.load(Ordering::Relaxed) as f64 / 1e3,
                    bytes = merge_bytes.load(Ordering::Relaxed),
                    "fan-out done"
                );
                None
            }
            Err(e) => {
                warn!(error = ?e, bytes = merge_bytes.load(Ordering::Relaxed), "fan-out failed");
                // Stop every part still running: the image cannot be finished.
                merge_shared.end(End::Stopped);
                Some(match e {
                    End::Part { index, rows, reason, retry_after } => {
                        Failure::Part { index, rows, reason, retry_after }
                    }
                    End::Deadline => Failure::Deadline,
                    End::Stopped => Failure::Cancelled,
                    End::Panic(msg) => Failure::Panic(msg),
                })
            }
        };
        if let Some(tx) = head_tx.take() {
            let _ = tx.send(failure.clone().map_or(Ok(()), Err));
        }
        if let Some(f) = failure {
            // The body ends in an error, so the connection is aborted rather than an image cut short.
            let _ = data_tx.blocking_send(Err(io::Error::other(f)));
        }
    });
    Running { started: Started { head, data, bytes }, guard: Guard { shared, scheduler } }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Starts bands in output order within the window, hedges stragglers, enforces the deadline and
/// ends the fan-out when a band has failed for good. Dropping it (abort) drops every attempt.
async fn schedule(pool: Arc<Pool>, job: Arc<Job>, shared: Arc<Shared>, order: Vec<usize>) {
    let mut attempts = JoinSet::new();
    let mut launched = 0;
    let window = pool.settings.concurrency;
    let mut next;
    loop {
        {
            let mut p = shared.lock();
            if p.end.is_some() || p.bands.iter().all(|b| b.done) {
                return;
            }
            while launched < order.len() && launched < p.merged + window {
                let index = order[launched];
                attempts.spawn(run_band(pool.clone(), job.clone(), shared.clone(), index).in_current_span());
                launched += 1;
            }
            // The scheduler sleeps until the next straggler is due (or an event), never polls.
            next = job.deadline;
            let mut took: Vec<Duration> = p.bands.iter().filter_map(|b| b.took).collect();
            if !took.is_empty() {
                took.sort();
                let limit = took[took.len() / 2].mul_f64(HEDGE_FACTOR);
                for (index, b) in p.bands.iter_mut().enumerate() {
                    let Some(running) = b.running.filter(|_| !b.done && !b.hedged) else { continue };
                    if running.elapsed() <= limit {
                        next = next.min(running + limit);
                    } else {
                        b.hedged = true;
                        shared.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        info!(part = index, rows = %b.rows, after_ms = ms(limit), "part straggling: sending a duplicate");
                        let (pool, job, shared) = (pool.clone(), job.clone(), shared.clone());
                        attempts.spawn(
                            async move {
                                // A hedge's failure is only logged: the original attempt goes on.
                                let _ = attempt(&pool, &job, &shared, index, "hedge").await;
                                Ok(())
                            }
                            .in_current_span(),
                        );
                    }
                }
            }
        }
        if Instant::now() >= job.deadline {
            warn!("fan-out deadline passed; stopping the parts");
            shared.end(End::Deadline);
            return;
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(next.into()) => {}
            Some(joined) = attempts.join_next() => {
                let failed = match joined {
                    Ok(Err(e)) => Some(e),
                    // Its band would wait for ever: end the fan-out rather than hang to the deadline.
                    Err(e) if e.is_panic() => Some(End::Panic(format!("a part's task panicked: {e}"))),
                    _ => None,
                };
                if let Some(e) = failed {
                    shared.end(e);
                    return;
                }
            }
        }
    }
}

/// A band's attempts: the first, then up to `FANOUT_RETRIES` retries with backoff, each on the
/// next worker, until one (or a hedge) completes the band.
///
/// A worker that refuses the part as busy (503 or 429 with `Retry-After`: its queue is full) is not
/// broken: its refusal is retried as soon as another of the fan-out's parts ends, or on the same
/// backoff, but never later than its `Retry-After` asks, and does not count against the retries, as
/// long as the band has been refused as busy for less than `FANOUT_PART_TIMEOUT_SECS` — as long as
/// a part may wait in a worker's queue for its head. So a pool with fewer render slots than
/// `FANOUT_CONCURRENCY` slows a fan-out down instead of failing it. (Waiting out the whole
/// `Retry-After` would idle a pool whose parts are short: this server names 5 s, a guess, when a
/// place may free in milliseconds.)
async fn run_band(pool: Arc<Pool>, job: Arc<Job>, shared: Arc<Shared>, index: usize) -> Result<(), End> {
    let mut failures = 0;
    let mut refusals = 0;
    let mut busy_since = None;
    let mut n = 0;
    loop {
        let e = match attempt(&pool, &job, &shared, index, &format!("a{n}")).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // A busy refusal's wait, while the band has been refused as busy for less than the part
        // timeout.
        let busy = e.busy.and_then(|after| {
            let wait = backoff(refusals + 1).min(after.max(BACKOFF_FIRST));
            let since = *busy_since.get_or_insert_with(Instant::now);
            // Saturating: a worker may name any number of seconds.
            (since.elapsed().saturating_add(wait) <= pool.settings.part_timeout).then_some(wait)
        });
        let (wait, full) = match busy {
            Some(wait) => {
                refusals += 1;
                shared.counters.busy.fetch_add(1, Ordering::Relaxed);
                (wait, true)
            }
            None if e.retry && failures < pool.settings.retries => {
                failures += 1;
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                (backoff(failures), false)
            }
            None => {
                let rows = shared.lock().bands[index].rows;
                let retry_after = e.busy.map(|d| d.as_secs());
                return Err(End::Part { index, rows, reason: e.reason, retry_after });
            }
        };
        if full {
            // One of this fan-out's own parts ending is the surest sign of a free place: ask
            // again then, or after the backoff, whichever comes first. On the backoff alone, a
            // pool with fewer places than the window idled between the waits.
            tokio::select! {
                () = shared.freed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        } else {
            tokio::time::sleep(wait).await;
        }
        n += 1;
    }
}

/// A `Retry-After`: seconds (the form this server and most gateways send) or an HTTP date (one
/// already past is now).
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let v = headers.get(hyper::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The wait before retry `n` (from 1).
fn backoff(n: u32) -> Duration {
    BACKOFF_FIRST.saturating_mul(1 << (n - 1).min(16)).min(BACKOFF_MAX)
}

/// Why one attempt failed, and whether another may succeed.
struct AttemptError {
    reason: String,
    retry: bool,
    /// The worker is busy and named when to come back (503 or 429 with `Retry-After`).
    busy: Option<Duration>,
}

impl AttemptError {
    fn retry(reason: impl Into<String>) -> AttemptError {
        AttemptError { reason: reason.into(), retry: true, busy: None }
    }
}

/// One request for band `index`: its body goes into the band's buffer as it arrives. `Ok` once
/// the band is done, by this attempt or another.
async fn attempt(pool: &Pool, job: &Job, shared: &Shared, index: usize, label: &str) -> Result<(), AttemptError> {
    let mut done = shared.done[index].subscribe();
    if *done.borrow() {
        return Ok(());
    }
    let (endpoint, shown) = {
        let mut p = shared.lock();
        p.bands[index].attempts += 1;
        pool.url(job, index, p.bands[index].attempts - 1)
    };
    let t0 = Instant::now();
    let mut got = 0u64;
    let mut head = None;
    let mut superseded = false;
    let result = tokio::select! {
        r = fetch(pool, job, shared, index, label, endpoint, &mut got, &mut head) => r,
        _ = done.wait_for(|d| *d) => {
            superseded = true;
            Ok(())
        }
    };
    let elapsed = t0.elapsed();
    let c = &shared.counters;
    c.request_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    if let Some(head) = &head {
        c.running_us.fetch_add(head.rendering.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    // Unless refused as busy, the attempt gave its worker's place back (or never took one): a
    // band waiting on a busy refusal may ask again.
    if !result.as_ref().is_err_and(|e| e.busy.is_some()) {
        shared.freed.notify_one();
    }
    let rows = shared.lock().bands[index].rows;
    let status = head.as_ref().map_or(0, |h| h.status.as_u16());
    match &result {
        // Dropping the request closed its connection: the worker stops rendering.
        Ok(()) if superseded => {
            info!(part = index, %rows, attempt = label, worker = %shown, ms = ms(elapsed), bytes = got, "part attempt dropped: another finished the band")
        }
        Ok(()) => {
            info!(part = index, %rows, attempt = label, worker = %shown, ms = ms(elapsed), bytes = got, status, "part done");
            shared.band_done(index);
        }
        // Expected of a pool smaller than the window, and asked again: not a warning.
        Err(e) if e.busy.is_some() => info!(
            part = index, %rows, attempt = label, worker = %shown, ms = ms(elapsed), status,
            "part refused: the worker is busy"
        ),
        Err(e) => warn!(
            part = index, %rows, attempt = label, worker = %shown, ms = ms(elapsed), bytes = got, status,
            error = %e.reason, retry = e.retry, "part failed"
        ),
    }
    result
}

/// An attempt's response head: its status, and when the worker began rendering.
struct Head {
    status: StatusCode,
    /// The request's send time plus the queue wait the worker names ([`QUEUED_HEADER`]); the
    /// head's arrival for a worker that names none.
    rendering: Instant,
}

/// The request and its body; `got` counts body bytes, `head` records the answer's status and
/// when it came.
#[allow(clippy::too_many_arguments)]
async fn fetch(
    pool: &Pool,
    job: &Job,
    shared: &Shared,
    index: usize,
    label: &str,
    endpoint: usize,
    got: &mut u64,
    head_seen: &mut Option<Head>,
) -> Result<(), AttemptError> {
    let (rows, expected) = {
        let p = shared.lock();
        (p.bands[index].rows, p.bands[index].expected)
    };
    let fmt = job.req.format.carrier();
    let part = job.req.part(rows, fmt);
    let part_id = format!("{}.p{index}", &job.id[..job.id.len().min(96)]);
    let mut req = Request::get(part_uri(&pool.urls[endpoint], &part.to_query()))
        .header(PART_HEADER, &part_id)
        .header("x-request-id", format!("{part_id}.{label}"));
    if let Some(auth) = &job.authorization {
        req = req.header(AUTHORIZATION, auth.clone());
    }
    let req = req.body(Empty::new()).map_err(|e| AttemptError { reason: e.to_string(), retry: false, busy: None })?;
    let timeout = pool.settings.part_timeout;
    let sent = Instant::now();
    let res = tokio::time::timeout(timeout, pool.client.request(req))
        .await
        .map_err(|_| AttemptError::retry(format!("no response head within {timeout:?}")))?
        .map_err(|e| {
            if e.is_connect() {
                pool.refused(endpoint);
            }
            AttemptError::retry(format!("request failed: {}", error_chain(&e)))
        })?;
    pool.answered(endpoint);
    let queued = res.headers().get(QUEUED_HEADER).and_then(|v| v.to_str().ok()?.parse().ok());
    let now = Instant::now();
    // Checked: a worker may name any number.
    let rendering = queued.and_then(|ms| sent.checked_add(Duration::from_millis(ms))).map_or(now, |t| t.min(now));
    *head_seen = Some(Head { status: res.status(), rendering });
    if !res.status().is_success() {
        let s = res.status();
        // A 4xx other than 429 would be the same on every worker: no point in retrying it.
        let retry = s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT;
        let busy = (s == StatusCode::SERVICE_UNAVAILABLE || s == StatusCode::TOO_MANY_REQUESTS)
            .then(|| retry_after(res.headers()))
            .flatten();
        let body = tokio::time::timeout(Duration::from_secs(2), res.into_body().collect()).await;
        let text = body.ok().and_then(|b| b.ok()).map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned());
        let text: String = text.unwrap_or_default().trim().chars().take(300).collect();
        return Err(AttemptError { reason: format!("worker answered {s}: {text}"), retry, busy });
    }
    check_simd(job, shared, index, res.headers())?;
    check_build(shared, index, res.headers())?;
    let first = {
        let running = &mut shared.lock().bands[index].running;
        let first = running.is_none();
        running.get_or_insert(rendering);
        first
    };
    if first {
        // Its straggler deadline now exists: the scheduler must know.
        shared.wake.notify_one();
    }
    let header = encode::header(fmt, job.req.width, rows.len());
    let mut head = Vec::with_capacity(header.len());
    let mut pos = 0usize;
    let mut body = res.into_body();
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| AttemptError::retry(format!("no body bytes for {timeout:?}")))?;
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(AttemptError::retry(format!("body failed: {}", error_chain(&e)))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        *got += data.len() as u64;
        let mut data = &data[..];
        if head.len() < header.len() {
            let k = (header.len() - head.len()).min(data.len());
            head.extend_from_slice(&data[..k]);
            data = &data[k..];
            if !header.as_bytes().starts_with(&head) {
                return Err(AttemptError::retry(format!("the body does not start with `{}`", header.escape_debug())));
            }
        }
        if data.is_empty() {
            continue;
        }
        if absorb(shared, index, pos, data)? {
            return Ok(());
        }
        pos += data.len();
    }
    if pos < expected || head.len() < header.len() {
        return Err(AttemptError::retry(format!("body ended after {pos} of the band's {expected} bytes")));
    }
    Ok(())
}

/// Refuses a part rendered in the other arithmetic than the fan-out's first part (fast and nee
/// engines: AVX2 and AVX-512 fuse multiply-adds, SSE2 and scalar round them twice, and the
/// bytes differ): merged, the bands would make an image no one process renders. A worker on a
/// host without AVX2 among AVX2 ones is retried on the next worker, like a failed one.
fn check_simd(job: &Job, shared: &Shared, index: usize, headers: &hyper::HeaderMap) -> Result<(), AttemptError> {
    if !job.req.engine.on_simd_lanes() {
        return Ok(());
    }
    let named = headers.get(SIMD_HEADER).and_then(|v| v.to_str().ok());
    let Some(path) = named.and_then(SimdPath::from_name) else {
        return Err(AttemptError::retry(format!("the worker did not name its SIMD path ({SIMD_HEADER}: {named:?})")));
    };
    let mut p = shared.lock();
    let &mut (first, band) = p.simd.get_or_insert((path, index));
    if first.arithmetic() == path.arithmetic() {
        return Ok(());
    }
    Err(AttemptError::retry(format!(
        "the worker rendered on {} ({} arithmetic), part {band} on {} ({}): the bytes would differ",
        path.name(),
        path.arithmetic(),
        first.name(),
        first.arithmetic()
    )))
}

/// Refuses a part rendered by another build of the engines than the fan-out's first part
/// ([`BUILD_HEADER`]; a worker that names none, as before there was one, counts as a build of its
/// own): merged, the bands could make an image no one process renders. Retried on the next
/// worker, like the other arithmetic.
fn check_build(shared: &Shared, index: usize, headers: &hyper::HeaderMap) -> Result<(), AttemptError> {
    let build = headers.get(BUILD_HEADER).map_or("none", |v| v.to_str().unwrap_or("not text"));
    let mut p = shared.lock();
    let (first, band) = p.build.get_or_insert_with(|| (build.to_owned(), index));
    if first == build {
        return Ok(());
    }
    Err(AttemptError::retry(format!(
        "the worker's engines are build {}, part {band}'s build {first}: the bytes may differ",
        render::request::shown(build)
    )))
}

/// `source` errors joined: hyper's outer error alone says little ("client error (Connect)").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}

/// Adds the bytes at `pos..` of band `index`'s data from one attempt; returns whether the band
/// is now complete (the attempt then announces it, see [`Shared::band_done`]). Bytes another
/// attempt already delivered must be the same.
fn absorb(shared: &Shared, index: usize, pos: usize, data: &[u8]) -> Result<bool, AttemptError> {
    let mut p = shared.lock();
    let band = &mut p.bands[index];
    if band.done {
        return Ok(true);
    }
    let end = pos + data.len();
    if end > band.expected {
        return Err(AttemptError::retry(format!("body longer than the band's {} bytes", band.expected)));
    }
    let have = band.data.len();
    if pos < have {
        let overlap = have.min(end) - pos;
        if band.data[pos..pos + overlap] != data[..overlap] {
            return Err(AttemptError::retry("bytes differ from another attempt's at the same place"));
        }
    }
    if end > have {
        band.data.extend_from_slice(&data[have - pos..]);
    }
    let complete = band.data.len() == band.expected;
    let (merging, taken, sent) = p.merging;
    let wake_merge = !complete && merging == index && (sent || p.bands[index].data.len() - taken >= BATCH);
    if complete {
        let band = &mut p.bands[index];
        band.done = true;
        band.took = band.running.map(|t| t.elapsed());
    }
    drop(p);
    if wake_merge {
        shared.rows_in.notify_all();
    }
    Ok(complete)
}

/// The part's URL: the endpoint's path (or `/`) and query, then the part's parameters.
fn part_uri(url: &Uri, query: &str) -> Uri {
    let mut parts = url.clone().into_parts();
    let path = url.path();
    let path = if path.is_empty() { "/" } else { path };
    let pq = match url.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}&{query}"),
        _ => format!("{path}?{query}"),
    };
    parts.path_and_query = Some(pq.parse().expect("a valid path and an encoded query"));
    Uri::from_parts(parts).expect("the endpoint's own scheme and authority")
}

/// The blocking side: every band's rows in output order, re-encoded into the response.
fn merge(
    job: &Job,
    shared: &Shared,
    order: &[usize],
    writer: Batched,
    head_tx: &mut Option<oneshot::Sender<Result<(), Failure>>>,
) -> Result<(), End> {
    let req = &job.req;
    let row_len = raw_row_len(req.format, req.width);
    let stopped = |_| End::Stopped;
    let out = writer.clone();
    let mut enc = encode::encoder(req.format, req.width, req.band().len(), writer).map_err(stopped)?;
    for &index in order {
        let mut off = 0;
        loop {
            let rows = {
                let mut p = shared.lock();
                let mut idle = false;
                let mut sent = false;
                loop {
                    if let Some(end) = &p.end {
                        return Err(end.clone());
                    }
                    let band = &p.bands[index];
                    if off == band.expected {
                        break None;
                    }
                    let have = band.data.len() / row_len * row_len;
                    if have > off {
                        break Some(band.data[off..have].to_vec());
                    }
                    if idle && !sent {
                        // A short wait brought nothing: what is encoded goes to the client now,
                        // and the merge sleeps until rows come (or the fan-out ends).
                        drop(p);
                        out.send().map_err(stopped)?;
                        p = shared.lock();
                        sent = true;
                        continue;
                    }
                    p.merging = (index, off, sent);
                    let wait = if sent { MERGE_IDLE } else { MERGE_WAIT };
                    let (g, waited) = shared.rows_in.wait_timeout(p, wait).unwrap_or_else(|e| e.into_inner());
                    p = g;
                    idle = waited.timed_out();
                }
            };
            let Some(rows) = rows else { break };
            // The head goes out before these rows are written: they may be more than the body's
            // channel holds, and the body is only read once the head is out.
            if let Some(tx) = head_tx.take() {
                let _ = tx.send(Ok(()));
            }
            for row in rows.chunks_exact(row_len) {
                enc.write_raw_row(row).map_err(stopped)?;
            }
            off += rows.len();
        }
        let mut p = shared.lock();
        p.bands[index].data = Vec::new();
        p.merged += 1;
        drop(p);
        shared.wake.notify_one();
    }
    enc.finish().map_err(stopped)?;
    out.send().map_err(stopped)
}

/// The merge's output: the body's [`ChannelWriter`] (which gathers small writes into chunks),
/// shared between the encoder, which owns one handle, and the merge, which sends what is
/// gathered whenever it has to wait for rows. The encoder itself cannot be asked to flush without
/// changing its bytes (PNG would end an IDAT chunk).
#[derive(Clone)]
struct Batched(Arc<Mutex<ChannelWriter>>);

impl Batched {
    fn new(inner: ChannelWriter) -> Batched {
        Batched(Arc::new(Mutex::new(inner)))
    }

    fn lock(&self) -> MutexGuard<'_, ChannelWriter> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends what is gathered.
    fn send(&self) -> io::Result<()> {
        self.lock().flush()
    }
}

impl io::Write for Batched {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.lock().write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Only the merge decides when to send (see `send`).
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_that_refused_is_passed_over_then_tried_again_by_one_attempt() {
        let urls = ["http://a/", "http://b/", "http://c/"].map(String::from).to_vec();
        let pool = Pool::new(&Settings { urls, ..Settings::default() }).unwrap().unwrap();
        let req = RenderRequest::from_query("parts=3", &render::Limits::DEFAULT).unwrap();
        let job = Job::new(req, "t".into(), None, Instant::now());
        let turns = || (0..3).map(|index| pool.url(&job, index, 0).0).collect::<Vec<_>>();
        assert_eq!(turns(), [0, 1, 2]);
        pool.refused(1);
        assert_eq!(turns(), [0, 2, 2], "b's turn goes to the next endpoint");
        // Its period over: the next attempt that would ask it does, the others still pass it over.
        std::thread::sleep(Duration::from_millis(2));
        pool.passed_over[1].store(1, Ordering::Release);
        assert_eq!(turns(), [0, 1, 2]);
        assert_eq!(turns(), [0, 2, 2]);
        pool.answered(1);
        assert_eq!(turns(), [0, 1, 2]);
        // Every endpoint refused: each attempt asks its own turn's all the same.
        (0..3).for_each(|i| pool.refused(i));
        assert_eq!(turns(), [0, 1, 2]);
    }

    #[test]
    fn part_urls_keep_the_endpoints_path_and_query() {
        let q = "width=8&rows=0-1";
        let cases = [
            ("http://127.0.0.1:9001", "http://127.0.0.1:9001/?width=8&rows=0-1"),
            ("http://127.0.0.1:9001/", "http://127.0.0.1:9001/?width=8&rows=0-1"),
            ("https://a.example/2016-08-15/proxy/s/f/", "https://a.example/2016-08-15/proxy/s/f/?width=8&rows=0-1"),
            ("https://a.example/x?token=1", "https://a.example/x?token=1&width=8&rows=0-1"),
        ];
        for (url, want) in cases {
            assert_eq!(part_uri(&url.parse().unwrap(), q).to_string(), want, "{url}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        let headers = |v: &str| {
            let mut h = hyper::HeaderMap::new();
            h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after(&headers("5")), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(&headers(" 0 ")), Some(Duration::ZERO));
        // An HTTP date: one past is now, one ahead is that far off.
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
        let ahead = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&headers(&ahead)).unwrap();
        assert!(d > Duration::from_secs(28) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(retry_after(&headers("-1")), None);
        assert_eq!(retry_after(&headers("tomorrow")), None);
        assert_eq!(retry_after(&hyper::HeaderMap::new()), None);
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        assert_eq!(
            [backoff(1), backoff(2), backoff(3), backoff(6), backoff(40)].map(|d| d.as_millis()),
            [100, 200, 400, 2000, 2000]
        );
    }
}
