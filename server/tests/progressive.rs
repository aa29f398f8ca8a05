//! Progressive renders over HTTP: the multipart stream, read by a real MIME parser (Python's
//! `email` package), each frame byte-identical to the one-shot render at its spp; the refusals.

mod common;

use common::*;
use hyper::StatusCode;
use server::Config;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One part of a multipart body: its headers (names lowercased) and its body.
type Part = (Vec<(String, String)>, Vec<u8>);

/// Parses a multipart body with Python's standard MIME parser.
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    const SCRIPT: &str = r#"
import email, email.policy, json, sys
raw = sys.stdin.buffer.read()
msg = email.message_from_bytes(b"Content-Type: " + sys.argv[1].encode() + b"\r\n\r\n" + raw, policy=email.policy.HTTP)
assert msg.is_multipart(), "not multipart"
assert not msg.defects, msg.defects
out = [{"headers": list(p.items()), "body": p.get_payload(decode=True).hex()} for p in msg.iter_parts()]
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, content_type])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the MIME parser");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the stream");
    let parts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let headers = p["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().to_ascii_lowercase(), h[1].as_str().unwrap().to_string()))
                .collect();
            (headers, hex(p["body"].as_str().unwrap()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_are_the_one_shot_renders_at_each_spp() {
    let srv = start(config()).await;
    let q = "width=48&height=36&spp=20&seed=9&format=png";
    let res = get(srv.addr, &format!("/?{q}&progressive=1")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), "multipart/x-mixed-replace; boundary=smallpt-frame");
    assert_eq!(res.header("x-render-spp"), "20");
    let parts = parse_multipart(res.header("content-type"), &res.body);
    let spps: Vec<u32> =
        parts.iter().map(|(h, _)| h.iter().find(|(k, _)| k == "x-render-spp").unwrap().1.parse().unwrap()).collect();
    assert_eq!(spps, [4, 8, 16, 20]);
    for ((headers, body), spp) in parts.iter().zip(spps) {
        assert!(headers.contains(&("content-type".into(), "image/png".into())), "{headers:?}");
        assert!(headers.contains(&("content-length".into(), body.len().to_string())), "{headers:?}");
        let one_shot = get(srv.addr, &format!("/?width=48&height=36&spp={spp}&seed=9&format=png")).await;
        assert!(*body == one_shot.body, "frame at spp {spp} differs from the one-shot render");
    }
    // PFM frames too, through POST JSON.
    let body = r#"{"width": 16, "height": 12, "spp": 8, "format": "pfm", "progressive": true}"#;
    let res = call(srv.addr, "POST", "/", &[], body).await;
    let parts = parse_multipart(res.header("content-type"), &res.body);
    assert_eq!(parts.len(), 2);
    assert!(parts[1].1 == render_local("width=16&height=12&spp=8&format=pfm"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_4xx_json_naming_the_parameter() {
    let srv =
        start(Config { limits: render::Limits { max_progressive_bytes: 96 * 1000, ..config().limits }, ..config() })
            .await;
    for (query, status, param) in [
        ("progressive=1&engine=classic", 400, "engine"),
        ("progressive=2", 400, "progressive"),
        ("progressive=1&width=100&height=11", 413, "progressive"),
    ] {
        let res = get(srv.addr, &format!("/?{query}")).await;
        assert_eq!(res.status.as_u16(), status, "{query}");
        assert_eq!(res.json()["param"], param, "{query}");
    }
    // On SCF (6 MB responses), every frame counts: spp 16384 is 13 frames, 7.7 MB of 512×384 PPM.
    let srv = start(config()).await;
    let q = "/?progressive=1&width=512&height=384&spp=16384&format=ppm";
    let res = call(srv.addr, "GET", q, &[("x-scf-request-id", "s-1")], "").await;
    assert_eq!(res.status.as_u16(), 413);
    assert_eq!(res.json()["param"], "progressive");
    let res =
        call(srv.addr, "GET", "/?progressive=1&width=64&height=48&spp=8", &[("x-scf-request-id", "s-2")], "").await;
    assert_eq!(res.status, StatusCode::OK);
}

/// A progressive render long enough to be cut off: 1024×768 at spp 8192 (75 MB of sums).
const LONG_PROGRESSIVE: &str = "/?progressive=1&width=1024&height=768&spp=8192&format=png";

#[tokio::test(flavor = "multi_thread")]
async fn disconnect_queue_and_deadline_work_as_for_a_one_shot_render() {
    // A client that leaves mid-stream frees the cores at once.
    let srv = start(Config { queue: 1, ..config() }).await;
    let (running, head) = start_get(srv.addr, LONG_PROGRESSIVE, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: multipart/x-mixed-replace; boundary=smallpt-frame"), "{head}");
    // It holds the one render slot: the next waits in the queue, the one after is a 503.
    let queued = tokio::spawn(start_get(srv.addr, LONG_PROGRESSIVE, ""));
    wait_queued(srv.addr, 1).await;
    let res = get(srv.addr, "/?progressive=1&width=8&height=6").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    queued.abort();
    let _ = queued.await;
    drop(running);
    let idle = wait_idle(srv.addr, Duration::from_secs(3)).await;
    eprintln!("cores idle {idle:?} after the progressive clients went away");

    // The deadline aborts a stream already sending frames: an incomplete body, never a clean end.
    // (A small image, so the first frame comes well before the 2 s deadline on a busy machine.)
    let t = Instant::now();
    let mut conn = Conn::open(srv.addr).await;
    let small_long = "/?progressive=1&width=64&height=48&spp=65536&format=png";
    let res = conn.send("GET", small_long, &[("x-scf-timeout", "2")], "").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    use http_body_util::BodyExt;
    let body =
        tokio::time::timeout(Duration::from_secs(20), res.into_body().collect()).await.expect("body never ended");
    assert!(body.is_err(), "a progressive render cut off by its deadline must not end cleanly");
    assert!(t.elapsed() < Duration::from_secs(6), "aborted after {:?}", t.elapsed());
    wait_idle(srv.addr, Duration::from_secs(2)).await;
}
