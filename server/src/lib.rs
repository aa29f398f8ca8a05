//! smallpt as an HTTP function service: `GET /?spp=16` answers the image, streamed row by row,
//! on Alibaba FC, Tencent SCF and Huawei FunctionGraph alike.
//!
//! `main` reads the [`Config`] and binds; [`run`] serves a listener until a shutdown future
//! resolves (the first signal, [`shutdown_signals`]), so tests and benches run the same server
//! in-process on `127.0.0.1:0`.

pub mod body;
pub mod config;
pub mod conns;
pub mod cors;
pub mod error;
mod etag;
pub mod fanout;
pub mod framing;
pub mod platform;
pub mod renderer;
pub mod service;

pub use config::{Config, ENV, MAX_DURATION_SECS};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use renderer::Renderer;
use service::State;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Serves `listener` until `shutdown` resolves, then stops accepting, lets in-flight responses
/// finish (at most `config.shutdown_grace`, or until `force` resolves: a second Ctrl-C) and
/// returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
    force: impl Future<Output = ()>,
) -> io::Result<()> {
    let renderer = Renderer::new(&config)?;
    info!(
        addr = %listener.local_addr()?,
        render_threads = renderer.threads(),
        concurrency = config.concurrency,
        queue = config.queue,
        "listening"
    );
    let fanout = fanout::Pool::new(&config.fanout)?;
    let state = Arc::new(State { config, renderer, fanout });
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        // No timer is installed, so hyper has no header-read timeout; set it to None anyway so a
        // future default cannot close kept-alive connections (FC reuses them for up to 15 min
        // and answers 502 when it finds one closed).
        .header_read_timeout(None)
        .max_header_size(state.config.max_header_bytes)
        .max_buf_size(state.config.max_header_bytes.max(8192) + 8192);
    let connections = Arc::new(Semaphore::new(state.config.max_connections));
    let registry = conns::Registry::new();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Every connection is taken: free the one longest without a request in progress
                // (see `conns`), then wait for a place.
                if !registry.evict_one() {
                    debug!("every connection is busy; new ones wait in the backlog");
                }
                tokio::select! {
                    p = connections.clone().acquire_owned() => p.expect("never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (timeouts, max_head) = (state.config.timeouts, state.config.max_header_bytes);
        let state = state.clone();
        let slot = registry.open();
        let requests = slot.clone();
        let svc = service_fn(move |req| {
            // The connection counts as busy until the response body is dropped.
            let busy = requests.request();
            let state = state.clone();
            let slot = requests.clone();
            async move {
                let Ok(res) = service::handle(state, req).await;
                if let Some(id) = res.headers().get(service::REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()) {
                    slot.answering(id);
                }
                Ok::<_, std::convert::Infallible>(res.map(|b| b.with_guard(busy)))
            }
        });
        let io = framing::StrictFraming::new(stream, timeouts).with_slot(slot.clone()).with_max_head(max_head);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(io), svc));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            slot.close();
            drop(permit);
        });
    }
    drop(listener);
    let grace = state.config.shutdown_grace;
    info!(connections = graceful.count(), grace_secs = grace.as_secs_f64(), "shutting down: draining connections");
    tokio::select! {
        () = graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(grace) => warn!("grace period over; closing the remaining connections"),
        () = force => warn!("second signal; closing the remaining connections now"),
    }
    Ok(())
}

/// Logs to stdout, one line per event: text, or JSON with `json`. `RUST_LOG` filters (default
/// `info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stdout).with_ansi(false);
    let _ = if json { fmt.json().flatten_event(true).try_init() } else { fmt.try_init() };
}

/// Two futures: the first resolves on the first SIGTERM or SIGINT (stop accepting, drain), the
/// second on the next one. Once a handler is installed a signal no longer ends the process by
/// itself, so without the second a Ctrl-C pressed again during a long render's drain would be
/// ignored until the grace period ran out. Call inside the runtime.
pub fn shutdown_signals() -> io::Result<(impl Future<Output = ()>, impl Future<Output = ()>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (count, seen) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            count.send_modify(|n| *n += 1);
            info!(signal = name, count = *count.borrow(), "{name} received");
        }
    });
    let nth = move |n: u32| {
        let mut seen = seen.clone();
        async move {
            // Err only if the counting task is gone, which ends nothing: wait on.
            if seen.wait_for(|&c| c >= n).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    Ok((nth(1), nth(2)))
}
