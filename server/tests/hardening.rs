//! Slow and careless clients over real sockets on 127.0.0.1: time limits on heads and bodies,
//! connection pressure, and framing that holds for every request of a connection.

mod common;

use common::*;
use hyper::StatusCode;
use server::Config;
use server::framing::Timeouts;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn quick_limits() -> Config {
    let timeouts = Timeouts { head: Duration::from_secs(1), body: Duration::from_secs(1), ..Timeouts::default() };
    Config { timeouts, ..config() }
}

/// Everything the server sends until it closes (bounded in time).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await.expect("never closed");
    String::from_utf8_lossy(&got).into_owned()
}

/// A client that stops reading a render (a paused download, `curl … | less`) is cut once it has
/// accepted nothing for the send timeout, and its render stops: with one render at a time the
/// next request is answered, where it used to wait for the stalled render's deadline (15 min).
/// A render that is slow to produce its first bytes is not cut: the clock runs only while a write
/// waits on the client.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_cut_and_its_render_stopped() {
    let timeouts = Timeouts { send: Duration::from_secs(1), ..Timeouts::default() };
    let srv = start(Config { timeouts, concurrency: 1, queue: 4, ..config() }).await;
    // One row of 3M samples: about 3 s on one thread (Zen 4) with nothing to send, then 144 bytes.
    let t = Instant::now();
    let slow = get(srv.addr, "/?width=48&height=1&spp=65536&engine=classic").await;
    assert_eq!((slow.status, slow.body.len()), (StatusCode::OK, "P6\n48 1\n255\n".len() + 48 * 3));
    assert!(t.elapsed() > timeouts.send, "not slower than the send timeout: {:?}", t.elapsed());
    // A 48 MB image to a client with a small window that reads the head and then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(srv.addr).await.unwrap();
    stalled.write_all(b"GET /?width=4096&height=4096&spp=4 HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut head = [0u8; 64];
    let n = stalled.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&head[..n]));
    // The next render waits behind the stalled one, and then is answered.
    let t = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(10), get(srv.addr, "/?width=8&height=8&spp=4")).await;
    let next = next.expect("still waiting behind a client that reads nothing");
    assert_eq!(next.status, StatusCode::OK);
    eprintln!("answered after {:?}", t.elapsed());
    // The stalled connection was closed short of its image.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest)).await;
    let read = read.expect("the stalled connection is still open");
    assert!(read.is_err() || n + rest.len() < 4096 * 4096 * 3, "the whole image arrived: {}", rest.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_head_is_a_408_and_closed_but_idle_is_not() {
    let srv = start(quick_limits()).await;
    let t = Instant::now();
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{answer}");
    assert!(
        answer.contains("content-type: application/json") && answer.contains("\"error\":\"the request head"),
        "{answer}"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
    // A connection that sends nothing is idle, not slow: it outlives the head limit.
    let mut conn = Conn::open(srv.addr).await;
    assert_eq!(conn.call("GET", "/healthz", &[], "").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(conn.call("GET", "/healthz", &[], "").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_is_a_408_naming_the_body() {
    let srv = start(quick_limits()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n{\"spp\": ").await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"param\":\"body\""), "{answer}");
    // The same for a chunked body that stops midway.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"sp").await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_head_crowd_larger_than_the_cap_does_not_lock_others_out() {
    // 60 connections trickling a byte of a head every 300 ms (within the 10 s head limit), on a
    // server that takes 20: each new one evicts the connection longest without a request.
    let srv = start(Config { max_connections: 20, ..config() }).await;
    let addr = srv.addr;
    let crowd: Vec<_> = (0..60)
        .map(|_| {
            tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(addr).await else { return };
                for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa".iter() {
                    if s.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let t = Instant::now();
        let h = tokio::time::timeout(Duration::from_secs(5), get(addr, "/healthz")).await.expect("healthz locked out");
        assert_eq!(h.status, StatusCode::OK);
        let r = tokio::time::timeout(Duration::from_secs(5), get(addr, "/?width=16&height=12&engine=classic"))
            .await
            .expect("render locked out");
        assert_eq!(r.status, StatusCode::OK);
        assert!(t.elapsed() < Duration::from_secs(3), "answered after {:?}", t.elapsed());
    }
    for c in crowd {
        c.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn framing_refusals_hold_for_every_request_of_a_connection() {
    let srv = start(config()).await;
    let ambiguous =
        "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    for first in [
        "POST /?width=8&height=6 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(format!("{first}{ambiguous}").as_bytes()).await.unwrap();
        let answer = read_to_close(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{first:?}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{first:?}: {answer}");
        assert!(answer.contains("HTTP/1.1 400"), "the second, ambiguous request is refused: {answer}");
    }
    // Two Transfer-Encoding headers, on a new connection.
    let (_, head) = raw(
        srv.addr,
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shed_requests_cost_no_log_line_each() {
    // One render slot, no queue: while a long render runs, every other render is shed.
    let srv = Proc::spawn(&[("RENDER_QUEUE", "0"), ("RENDER_CONCURRENCY", "1")]);
    let (running, head) = start_get(srv.addr, LONG, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let before = srv.lines().len();
    let mut conn = Conn::open(srv.addr).await;
    let t = Instant::now();
    // Sequential on one connection: each waits SHED_DELAY_MS (50 ms) for its 503.
    for _ in 0..60 {
        let res = conn.call("GET", "/?width=8&height=6", &[], "").await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.header("retry-after"), "5");
        assert_eq!(res.json()["error"].as_str().map(|e| e.contains("queue")), Some(true));
    }
    let elapsed = t.elapsed();
    drop(running);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = srv.lines()[before..].to_vec();
    let summaries = lines.iter().filter(|l| l.contains("shedding load")).count();
    assert!(summaries <= elapsed.as_secs() as usize + 1, "{summaries} summaries in {elapsed:?}: {lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("FC Invoke Start")), "a shed request wrote FC markers: {lines:#?}");
    // The long render's own lines (cancelled, end marker) and the summaries: nothing per request.
    let others = lines.len() - summaries;
    assert!(others < 6, "{others} lines besides the summaries for 60 shed requests: {lines:#?}");
    assert!(elapsed >= Duration::from_millis(60 * 50), "each 503 waits SHED_DELAY_MS: {elapsed:?}");
    eprintln!("60 shed requests in {elapsed:?}, {} log lines", lines.len());
}

/// An HTTP/2 client (prior knowledge: `curl --http2-prior-knowledge`, a gateway set to HTTP/2
/// towards its backend) read the HTTP/1.1 400 as an empty reply. It is told in HTTP/2: the
/// server's SETTINGS, then GOAWAY with HTTP_1_1_REQUIRED (curl -v: "GOAWAY, error=13").
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_client_is_told_in_http2_to_use_http11() {
    let srv = start(config()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    // The client's preface and its (empty) SETTINGS frame, as a client sends them.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await.expect("never closed");
    // Frames (RFC 9113 §4.1): 24-bit length, type, flags, 31-bit stream id, payload.
    let (settings, rest) = got.split_at(9);
    assert_eq!(settings, [0, 0, 0, 0x4, 0, 0, 0, 0, 0], "an empty SETTINGS first: {got:?}");
    let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
    assert_eq!((rest[3], &rest[5..9], rest.len()), (0x7, &[0u8, 0, 0, 0][..], 9 + len), "a GOAWAY: {got:?}");
    let payload = &rest[9..];
    assert_eq!(u32::from_be_bytes(payload[4..8].try_into().unwrap()), 0xd, "HTTP_1_1_REQUIRED");
    assert!(String::from_utf8_lossy(&payload[8..]).contains("HTTP/1.1"), "{got:?}");
    // HTTP/1.1 on the same server is served.
    assert_eq!(get(srv.addr, "/healthz").await.status, hyper::StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_4xx_has_the_json_body() {
    let srv = start(Config { max_header_bytes: 4096, ..config() }).await;
    let big = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(5000));
    let cases: [(&[u8], &str); 5] = [
        (b"GET /?spp=\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n", "400"),
        // UTF-8 in a query passes hyper: the parameter parser refuses it (and keeps the connection).
        (b"GET /?seed=caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "400"),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", "400"),
        (big.as_bytes(), "431"),
    ];
    for (request, status) in cases {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let answer = read_to_close(&mut s).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(answer.contains("content-type: application/json"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
        assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
    }
}
