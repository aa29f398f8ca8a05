//! Load, cancellation and connection behaviour over real TCP.

mod common;

use common::*;
use hyper::StatusCode;
use server::Config;
use std::time::{Duration, Instant};

const SMALL: &str = "/?spp=4&width=16&height=12&engine=classic";

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_cancels_running_and_queued_renders() {
    let srv = start(Config { queue: 4, ..config() }).await;
    let (running, head) = start_get(srv.addr, LONG, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {}", "P6\n32 2000\n255\n".len() + 32 * 2000 * 3)), "{head}");

    // /healthz answers at once while the render saturates the pool.
    for _ in 0..5 {
        let t = Instant::now();
        let h = get(srv.addr, "/healthz").await;
        assert_eq!(h.status, StatusCode::OK);
        assert!(t.elapsed() < Duration::from_secs(1), "healthz took {:?}", t.elapsed());
        assert_eq!(h.json()["active"], 1);
    }

    // A second long render queues behind the first; its client gives up while it waits.
    let queued = tokio::spawn(start_get(srv.addr, LONG, ""));
    wait_queued(srv.addr, 1).await;
    queued.abort();
    let _ = queued.await;
    drop(running);

    let idle = wait_idle(srv.addr, Duration::from_secs(3)).await;
    eprintln!("cores idle {idle:?} after the clients went away");
    let t = Instant::now();
    assert_eq!(get(srv.addr, SMALL).await.status, StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(2), "next render took {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn full_queue_is_503_at_once_and_queued_deadline_is_503() {
    let srv = start(Config { queue: 1, ..config() }).await;
    let (running, head) = start_get(srv.addr, LONG, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Takes the one queue place, and gives up after two seconds (its platform timeout).
    let queued = tokio::spawn(async move { call(srv.addr, "GET", SMALL, &[("x-scf-timeout", "2")], "").await });
    wait_queued(srv.addr, 1).await;

    let t = Instant::now();
    let res = get(srv.addr, SMALL).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.header("retry-after"), "5");
    assert!(res.json()["error"].as_str().unwrap().contains("queue"));
    assert!(t.elapsed() < Duration::from_secs(1), "503 took {:?}", t.elapsed());

    let res = queued.await.unwrap();
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.json()["error"].as_str().unwrap().contains("deadline"));
    drop(running);
    wait_idle(srv.addr, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deadline_cancels_before_and_after_the_head() {
    let srv = start(Config { render_timeout: Duration::from_secs(2), ..config() }).await;
    // The first row alone takes many seconds: 504 JSON at the deadline, nothing streamed.
    let t = Instant::now();
    let res = get(srv.addr, "/?width=2000&height=2&spp=4096&engine=classic").await;
    assert_eq!(res.status, StatusCode::GATEWAY_TIMEOUT);
    res.json();
    assert!(t.elapsed() < Duration::from_secs(4), "504 after {:?}", t.elapsed());
    wait_idle(srv.addr, Duration::from_secs(2)).await;

    // Streaming already: the deadline aborts the connection, the client sees an incomplete body.
    let t = Instant::now();
    let mut conn = Conn::open(srv.addr).await;
    // The head comes well before the one-second platform timeout the request carries.
    let res = conn.send("GET", CUT, &[("x-scf-timeout", "1")], "").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    use http_body_util::BodyExt;
    let body = tokio::time::timeout(TIMEOUT, res.into_body().collect()).await.expect("body never ended");
    assert!(body.is_err(), "a cancelled render must not end its body cleanly");
    assert!(t.elapsed() < Duration::from_secs(4), "aborted after {:?}", t.elapsed());
    wait_idle(srv.addr, Duration::from_secs(2)).await;

    // HTTP/1.0 has no chunked coding: the body ends where the connection does, so without a
    // length the cut-short image ended like a complete one. The length says it is not.
    let (head, body) = http10(srv.addr, "GET", CUT, "x-scf-timeout: 1\r\n").await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    let length: usize = head_value(&head, "content-length")
        .unwrap_or_else(|| panic!("a PPM's length is known before rendering: {head}"))
        .parse()
        .unwrap();
    assert_eq!(length, CUT_PPM_BYTES);
    assert!(body.len() < length, "the deadline cut the image short: {} of {length} bytes", body.len());
    wait_idle(srv.addr, Duration::from_secs(2)).await;
    // A P3 image's length is known only at its end, so over HTTP/1.0 it is held whole: the
    // deadline is a 504, as before the head, not an image that ends early.
    let (head, body) = http10(srv.addr, "GET", &format!("{CUT}&format=p3"), "x-scf-timeout: 1\r\n").await;
    assert!(head.starts_with("http/1.0 504"), "{head}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(error["error"].as_str().unwrap().contains("deadline"), "{error}");
    wait_idle(srv.addr, Duration::from_secs(2)).await;
}

/// FC reuses kept-alive connections for up to 15 minutes; hyper's default header-read timeout
/// (30 s once a timer is set) would close them, and so would a time limit on idle (ours apply
/// only once a request's first byte is in). The gap exceeds hyper's default and a minute: 65 s;
/// it runs concurrently with the rest of the suite.
#[tokio::test(flavor = "multi_thread")]
async fn kept_alive_connection_survives_an_idle_gap() {
    let srv = start(config()).await;
    let mut conn = Conn::open(srv.addr).await;
    assert_eq!(conn.call("GET", "/healthz", &[], "").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(
        conn.call("POST", "/invoke", &[("x-fc-control-path", "/invoke")], "{\"width\": 8, \"height\": 6}").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pre_stop_waits_for_in_flight_renders_within_the_grace_period() {
    let srv = start(Config { shutdown_grace: Duration::from_secs(1), ..config() }).await;
    // A short render: pre-stop answers once it is done.
    let render = tokio::spawn(get(srv.addr, "/?width=64&height=48&spp=64&engine=classic"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let res = get(srv.addr, "/pre-stop").await;
    assert_eq!((res.status, res.json()["idle"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(render.await.unwrap().status, StatusCode::OK);

    // A render longer than the grace period: pre-stop gives up after it.
    let (running, _) = start_get(srv.addr, LONG, "").await;
    let t = Instant::now();
    let res = call(srv.addr, "POST", "/pre-stop", &[], "").await;
    assert_eq!((res.status, res.json()["idle"].as_bool()), (StatusCode::OK, Some(false)));
    assert!((Duration::from_millis(900)..Duration::from_secs(3)).contains(&t.elapsed()), "{:?}", t.elapsed());
    drop(running);
}
