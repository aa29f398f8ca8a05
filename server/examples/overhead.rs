//! HTTP overhead and time to first byte: the same render in-process and through the server
//! (in-process `server::run` on 127.0.0.1, a real HTTP/1.1 client), alternated, medians printed.
//!
//! `cargo run --release -p server --example overhead -- [runs] [query]`
//! (default: 5 runs of `width=1024&height=768&spp=4&engine=classic`).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use render::{Limits, RenderOptions, RenderRequest};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("runs"));
    let query = args.next().unwrap_or_else(|| "width=1024&height=768&spp=4&engine=classic".into());
    let req = RenderRequest::from_query(&query, &Limits::DEFAULT).expect("query");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::run(listener, server::Config::default(), std::future::pending()));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = std::sync::Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap());

    let (mut local, mut http, mut head, mut first) = (vec![], vec![], vec![], vec![]);
    let mut bytes = 0;
    for _ in 0..runs {
        let pool = pool.clone();
        let t = Instant::now();
        tokio::task::spawn_blocking(move || {
            let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
            render::render_to_writer(&req, &opts, std::io::sink()).unwrap();
        })
        .await
        .unwrap();
        local.push(t.elapsed());

        let t = Instant::now();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let get = hyper::Request::get(format!("/?{query}")).header("host", "bench").body(Empty::<Bytes>::new());
        let res = send.send_request(get.unwrap()).await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        head.push(t.elapsed());
        let mut body = res.into_body();
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                if n == 0 {
                    first.push(t.elapsed());
                }
                n += data.len();
            }
        }
        http.push(t.elapsed());
        bytes = n;
    }
    let (l, h) = (median(&mut local), median(&mut http));
    println!("{query}: {runs} runs, {bytes} bytes, {threads} render threads");
    println!("in-process render  median {:8.1} ms  (min {:.1})", ms(l), ms(*local.iter().min().unwrap()));
    println!("through HTTP       median {:8.1} ms  (min {:.1})", ms(h), ms(*http.iter().min().unwrap()));
    println!("HTTP overhead      {:+.2} % of the median", (ms(h) / ms(l) - 1.0) * 100.0);
    println!("response head      median {:8.1} ms", ms(median(&mut head)));
    println!("first body byte    median {:8.1} ms", ms(median(&mut first)));
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
