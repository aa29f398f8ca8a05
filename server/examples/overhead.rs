//! HTTP overhead and time to first byte: the same render in-process and through the server
//! (in-process `server::run` on 127.0.0.1, a real HTTP/1.1 client), alternated, medians printed.
//!
//! `cargo run --release -p server --example overhead -- [runs] [query]`
//! (default: 5 runs of `width=1024&height=768&spp=4&engine=classic`).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use render::{Limits, RenderOptions, RenderRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("runs"));
    let query = args.next().unwrap_or_else(|| "width=1024&height=768&spp=4&engine=classic".into());
    let req = RenderRequest::from_query(&query, &Limits::DEFAULT).expect("query");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::run(listener, server::Config::default(), std::future::pending(), std::future::pending()));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap());

    let (mut local, mut http, mut head, mut first) = (vec![], vec![], vec![], vec![]);
    let mut bytes = 0;
    for run in 0..runs {
        // Alternate which goes first, so drift in the machine's speed hits both alike.
        for http_turn in [run % 2 == 1, run % 2 == 0] {
            if http_turn {
                let (h, f, total, n) = over_http(addr, &query).await;
                head.push(h);
                first.push(f);
                http.push(total);
                bytes = n;
            } else {
                local.push(in_process(&pool, req).await);
            }
        }
        eprintln!("run {run}: in-process {:.1} ms, HTTP {:.1} ms", ms(local[run]), ms(http[run]));
    }
    let (l, h) = (median(&mut local), median(&mut http));
    println!("{query}: {runs} runs, {bytes} bytes, {threads} render threads");
    println!("in-process render  median {:8.1} ms  (min {:.1})", ms(l), ms(*local.iter().min().unwrap()));
    println!("through HTTP       median {:8.1} ms  (min {:.1})", ms(h), ms(*http.iter().min().unwrap()));
    println!("HTTP overhead      {:+.2} % of the median", (ms(h) / ms(l) - 1.0) * 100.0);
    println!("response head      median {:8.1} ms", ms(median(&mut head)));
    println!("first body byte    median {:8.1} ms", ms(median(&mut first)));
}

/// One render into `io::sink` on `pool`, driven from the blocking pool as the server does.
async fn in_process(pool: &Arc<rayon::ThreadPool>, req: RenderRequest) -> Duration {
    let pool = pool.clone();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || {
        let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
        render::render_to_writer(&req, &opts, std::io::sink()).unwrap();
    })
    .await
    .unwrap();
    t.elapsed()
}

/// One GET on a new connection: time to the head, to the first body byte, to the end; bytes.
async fn over_http(addr: std::net::SocketAddr, query: &str) -> (Duration, Duration, Duration, usize) {
    let t = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let get = hyper::Request::get(format!("/?{query}")).header("host", "bench").body(Empty::<Bytes>::new());
    let res = send.send_request(get.unwrap()).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let head = t.elapsed();
    let mut first = Duration::ZERO;
    let mut body = res.into_body();
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            if n == 0 {
                first = t.elapsed();
            }
            n += data.len();
        }
    }
    (head, first, t.elapsed(), n)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
