//! End to end: the server over loopback against the in-process render of the same request
//! (1024×768 spp 4, the default engine), and the time to the first body byte.
//!
//! (A paired bench — in-process and HTTP back to back, timing the difference — was tried: the
//! difference is below the noise and often negative, which criterion cannot record.)

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use render::{Limits, RenderOptions, RenderRequest, render_to_writer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const QUERY: &str = "width=1024&height=768&spp=4";

/// One GET on a fresh connection: (time to the first body byte, time to the last).
async fn get(addr: SocketAddr) -> (Duration, Duration) {
    let t = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("/?{QUERY}")).header("host", "bench").body(Empty::<Bytes>::new()).unwrap();
    let res = send.send_request(req).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let mut body = res.into_body();
    let mut first = None;
    while let Some(frame) = body.frame().await {
        if frame.unwrap().is_data() && first.is_none() {
            first = Some(t.elapsed());
        }
    }
    (first.unwrap(), t.elapsed())
}

fn http(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(server::run(listener, server::Config::default(), std::future::pending(), std::future::pending()));
    let req = RenderRequest::from_query(QUERY, &Limits::DEFAULT).unwrap();
    // The same pool size the server uses: every core.
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();

    let mut group = c.benchmark_group("http");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8));
    let in_process = || {
        let t = Instant::now();
        let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
        render_to_writer(&req, &opts, std::io::sink()).unwrap();
        t.elapsed()
    };
    group.bench_function("in-process_1024x768-spp4", |b| b.iter_custom(|iters| (0..iters).map(|_| in_process()).sum()));
    group.bench_function("server_1024x768-spp4", |b| b.iter(|| rt.block_on(get(addr)).1));
    group.bench_function("ttfb_1024x768-spp4", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(get(addr)).0).sum())
    });
    group.finish();
}

criterion_group!(benches, http);
criterion_main!(benches);
