//! Progressive renders over HTTP: the multipart stream, read by a real MIME parser (Python's
//! `email` package), each frame byte-identical to the one-shot render at its spp; the refusals.

mod common;

use common::*;
use hyper::StatusCode;
use server::Config;
use std::io::Write as _;
use std::process::{Command, Stdio};

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
