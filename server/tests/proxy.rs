//! Behind nginx, as a user puts a reverse proxy in front of the service. Its defaults for a
//! proxied location speak HTTP/1.0 to the server, where a body without a length ends where the
//! connection does, and nginx passes such an end on to its client as a complete answer. So every
//! answer the server cuts short (its deadline, a failure) must carry what tells it apart: a
//! length, an error before the head, or a progressive stream's closing boundary. (Before, every
//! format cut short by the deadline reached curl through nginx as a clean 200.)

mod common;

use common::*;
use http_body_util::BodyExt;
use hyper::StatusCode;
use server::Config;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn answers_cut_short_behind_nginx_reach_its_client_as_failures() {
    let srv = start(Config { render_timeout: Duration::from_secs(1), ..config() }).await;
    let nginx = Nginx::start(srv.addr);

    // A complete answer passes through whole: P3, whose length only the end knows, is held at
    // the server and sent with it.
    let res = get(nginx.addr, "/?spp=4&width=64&height=48&engine=classic&format=p3").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == std::fs::read(REFERENCE_64X48).unwrap(), "body differs from {REFERENCE_64X48}");

    // PPM: its length goes ahead of it, so nginx breaks its client's connection off when the
    // server's ends short of it.
    let mut conn = Conn::open(nginx.addr).await;
    let res = conn.send("GET", CUT, &[], "").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let length: usize = res.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(length, CUT_PPM_BYTES);
    let body = tokio::time::timeout(TIMEOUT, res.into_body().collect()).await.expect("body never ended");
    assert!(body.is_err(), "a PPM cut short reached nginx's client as a complete answer");

    // PNG and P3: held whole at the server, so the deadline is a 504 with its JSON.
    for format in ["png", "p3"] {
        let res = get(nginx.addr, &format!("{CUT}&format={format}")).await;
        assert_eq!(res.status, StatusCode::GATEWAY_TIMEOUT, "{format}: {:?}", String::from_utf8_lossy(&res.body));
        assert!(res.json()["error"].as_str().unwrap().contains("deadline"), "{format}");
    }

    // A progressive stream is not held (its frames would all arrive at the end): cut short, it
    // reaches nginx's client as a clean end, but without its closing boundary, which the viewer
    // reads as the render broken off (`viewer.rs`).
    let res = get(nginx.addr, "/?width=64&height=48&spp=65536&progressive=1").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.starts_with(b"--smallpt-frame\r\n"), "no frame came through");
    assert!(!res.body.ends_with(b"--smallpt-frame--\r\n"), "a stream cut short ended with its closing boundary");
    // And one that finishes ends with it.
    let res = get(nginx.addr, "/?width=16&height=12&spp=16&progressive=1").await;
    assert!(res.body.ends_with(b"--smallpt-frame--\r\n"), "{:?}", String::from_utf8_lossy(&res.body));
    wait_idle(srv.addr, Duration::from_secs(3)).await;
}
