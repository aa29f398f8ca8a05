//! The real `server` binary: start-up, logs on stdout, secrets, SIGTERM drain and exit code.

mod common;

use common::*;
use hyper::StatusCode;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_responses_and_exits_0() {
    let p = Proc::spawn(&[("SHUTDOWN_GRACE_SECS", "30")]);
    eprintln!("listening {:?} after spawn", p.started);
    assert_eq!(get(p.addr, "/healthz").await.status, StatusCode::OK);
    // About a second of rendering, streamed; SIGTERM arrives after the head.
    let query = "/?width=64&height=48&spp=256&engine=classic";
    let mut conn = Conn::open(p.addr).await;
    let res = conn.send("GET", query, &[], "").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    p.sigterm();
    use http_body_util::BodyExt;
    let body = tokio::time::timeout(TIMEOUT, res.into_body().collect()).await.unwrap().unwrap().to_bytes();
    assert_eq!(body.len(), "P6\n64 48\n255\n".len() + 64 * 48 * 3, "the in-flight image arrives whole");
    let addr = p.addr;
    let (code, lines) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
    assert!(lines.iter().any(|l| l.contains("SIGTERM")), "{lines:#?}");
}

/// Ctrl-C twice: the first starts the drain, the second ends it at once rather than after the
/// grace period (here a minute, and the render would take longer): the in-flight answer is cut
/// short, which its client sees, and the process exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_cuts_the_drain_short() {
    let p = Proc::spawn(&[("SHUTDOWN_GRACE_SECS", "60")]);
    // About a minute and a half of rendering on two threads, streamed.
    let mut conn = Conn::open(p.addr).await;
    let res = conn.send("GET", "/?width=1024&height=768&spp=4096", &[], "").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    p.signal("INT");
    let t = std::time::Instant::now();
    while !p.lines().iter().any(|l| l.contains("draining")) {
        assert!(t.elapsed() < TIMEOUT, "no drain after SIGINT: {:#?}", p.lines());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.signal("INT");
    use http_body_util::BodyExt;
    let body = tokio::time::timeout(Duration::from_secs(10), res.into_body().collect()).await;
    let ended = match body {
        Ok(Err(_)) => "cut short",
        Ok(Ok(_)) => "whole",
        Err(_) => "still open after 10 s",
    };
    assert_eq!(ended, "cut short", "the in-flight answer after the second signal");
    let (code, lines) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("second signal")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_lines_with_the_request_id_and_no_secrets() {
    let p = Proc::spawn(&[
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "S3CR3T-env"),
    ]);
    let secrets = [
        ("x-fc-access-key-secret", "S3CR3T-1"),
        ("x-fc-security-token", "S3CR3T-2"),
        ("X-Scf-Secret-Key", "S3CR3T-3"),
        ("X-Scf-Session-Token", "S3CR3T-4"),
        ("X-CFF-Security-Secret-Key", "S3CR3T-5"),
        ("Authorization", "Bearer S3CR3T-6"),
    ];
    let with_id = |id| {
        let mut h = secrets.to_vec();
        h.push(("x-fc-request-id", id));
        h
    };
    let res = call(p.addr, "GET", "/?width=8&height=6&engine=classic", &with_id("rid-ok"), "").await;
    assert_eq!(res.status, StatusCode::OK);
    // The same image asked for again by a client that has it: a 304, an invocation all the same.
    let mut again = with_id("rid-304");
    again.push(("if-none-match", res.header("etag")));
    let res = call(p.addr, "GET", "/?width=8&height=6&engine=classic", &again, "").await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    let res = call(p.addr, "GET", "/?spp=S3CR3T-7", &with_id("rid-bad"), "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = call(p.addr, "POST", "/initialize", &with_id("rid-init"), "").await;
    assert_eq!(res.status, StatusCode::OK);
    p.sigterm();
    let (code, lines) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, Some(0));

    let all = lines.join("\n");
    for (_, secret) in secrets {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    assert!(!all.contains("S3CR3T-env"));
    assert!(all.contains("[redacted]"), "headers are logged at debug, redacted:\n{all}");
    for marker in [
        "FC Invoke Start RequestId: rid-ok",
        "FC Invoke End RequestId: rid-ok",
        "FC Invoke Start RequestId: rid-bad",
        "FC Invoke End RequestId: rid-bad",
        "FC Invoke Start RequestId: rid-304",
        "FC Invoke End RequestId: rid-304",
        "FC Initialize Start RequestId: rid-init",
        "FC Initialize End RequestId: rid-init",
    ] {
        assert!(lines.iter().any(|l| l == marker), "missing `{marker}`:\n{all}");
    }
    for line in lines.iter().filter(|l| !l.starts_with("FC ")) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["message"] == "render done" || v["message"] == "render requested" {
            assert_eq!(v["span"]["id"], "rid-ok", "{line}");
        }
        if v["message"] == "not modified: the client has the image" {
            assert_eq!(v["span"]["id"], "rid-304", "{line}");
        }
    }
    assert!(lines.iter().any(|l| l.contains("render done") && l.contains("msamples_per_s")), "{all}");
    assert!(lines.iter().any(|l| l.contains("not modified")), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_cannot_forge_a_log_line() {
    let p = Proc::spawn(&[]);
    let forged = "/?spp=4%0AFC%20Invoke%20End%20RequestId:%20forged%0D%0Afake";
    let res = get(p.addr, forged).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let long = format!("/?seed={}", "7".repeat(6000));
    let res = get(p.addr, &long).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.len() < 400, "the 400 repeats the whole value: {} bytes", res.body.len());
    p.sigterm();
    let (_, lines) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert!(
        !lines.iter().any(|l| l.starts_with("FC Invoke End RequestId: forged") || l.starts_with("fake")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("forged") && l.contains("\\n")),
        "the value is logged, escaped: {lines:#?}"
    );
    assert!(lines.iter().all(|l| l.len() < 1000), "a log line repeats the whole value");
}

/// Every duration at its longest (a week) still serves renders, GET and POST, and drains on
/// SIGTERM: near `u64::MAX` seconds these used to panic every request computing its deadline.
#[tokio::test(flavor = "multi_thread")]
async fn the_longest_durations_still_serve() {
    let week = server::MAX_DURATION_SECS.to_string();
    let week_ms = (server::MAX_DURATION_SECS * 1000).to_string();
    let mut env: Vec<(&str, &str)> =
        ["RENDER_TIMEOUT_SECS", "HEAD_TIMEOUT_SECS", "BODY_TIMEOUT_SECS", "SEND_TIMEOUT_SECS", "SHUTDOWN_GRACE_SECS"]
            .into_iter()
            .map(|name| (name, week.as_str()))
            .collect();
    env.push(("SHED_DELAY_MS", &week_ms));
    let p = Proc::spawn(&env);
    let want = render_local("width=8&height=6&spp=4&engine=classic");
    let res = get(p.addr, "/?width=8&height=6&spp=4&engine=classic").await;
    assert_eq!((res.status, &res.body[..]), (StatusCode::OK, &want[..]));
    let res = call(
        p.addr,
        "POST",
        "/",
        &[("content-type", "application/json")],
        r#"{"width":8,"height":6,"engine":"classic"}"#,
    )
    .await;
    assert_eq!((res.status, &res.body[..]), (StatusCode::OK, &want[..]));
    p.sigterm();
    let (code, lines) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
}

/// `--port` overrides the port variables, so a bad one does not stop the server (it used to:
/// the environment was read whole before the flag); without the flag it still does.
#[tokio::test(flavor = "multi_thread")]
async fn the_port_flag_overrides_a_bad_port_variable() {
    let junk = [("PORT", "http"), ("FC_CUSTOM_LISTEN_PORT", "x"), ("FC_SERVER_PORT", "-1")];
    let p = Proc::spawn_with(&["--port", "0"], &junk);
    assert_eq!(get(p.addr, "/healthz").await.status, StatusCode::OK);
    p.sigterm();
    let (code, _) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, Some(0));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_server")).env_clear().envs(junk).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PORT=\"http\""), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The send timeout's line is written by the connection, not the request, yet names the request
/// it cut short, in the request's span as its other lines are.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_timeout_is_logged_under_the_request_it_cut() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = Proc::spawn(&[("SEND_TIMEOUT_SECS", "1")]);
    // A 48 MB image to a client with a small window that reads the head and then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(p.addr).await.unwrap();
    let request = "GET /?width=4096&height=4096&spp=4 HTTP/1.1\r\nhost: x\r\nx-request-id: stalled-7\r\n\r\n";
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = stalled.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&head[..n]));
    let lines = p.lines_once(|l| l.contains("send timeout"));
    let line = lines.iter().find(|l| l.contains("send timeout")).unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(line.contains("request{id=stalled-7}"), "{line}");
}

/// A client asking again as soon as it has an answer (FC's gateway may, with instanceConcurrency
/// 1) finds the last invocation's end marker already written, so the platforms' log tail keeps
/// invocations apart: an image with its length, a chunked PNG, a progressive stream, a 304 and a
/// refusal, one after another on one kept-alive connection and on new ones. (An image's end marker
/// is written when hyper drops its body, as soon as the last bytes are written.)
#[tokio::test(flavor = "multi_thread")]
async fn invocations_asked_one_after_another_are_marked_one_after_another() {
    let p = Proc::spawn(&[("RENDER_CONCURRENCY", "1"), ("RENDER_QUEUE", "0")]);
    let q = "/?width=8&height=6&spp=1";
    let tag = get(p.addr, q).await.header("etag").to_owned();
    let asks = [
        (q.to_owned(), None, StatusCode::OK),
        (format!("{q}&format=png"), None, StatusCode::OK),
        (format!("{q}&progressive=1"), None, StatusCode::OK),
        (q.to_owned(), Some(tag.as_str()), StatusCode::NOT_MODIFIED),
        ("/?spp=0".to_owned(), None, StatusCode::BAD_REQUEST),
    ];
    let mut kept = Conn::open(p.addr).await;
    let n = 60;
    for i in 0..n {
        let (path, condition, status) = &asks[i % asks.len()];
        let id = format!("seq-{i}");
        let mut headers = vec![("x-fc-request-id", id.as_str())];
        headers.extend(condition.map(|c| ("if-none-match", c)));
        let res = if i % 2 == 0 {
            kept.call("GET", path, &headers, "").await
        } else {
            call(p.addr, "GET", path, &headers, "").await
        };
        assert_eq!(res.status, *status, "{id}: {path}");
    }
    p.sigterm();
    let (code, lines) = tokio::task::spawn_blocking(move || p.wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(code, Some(0));
    let marked: Vec<&str> =
        lines.iter().map(String::as_str).filter(|l| l.contains("Invoke") && l.contains(": seq-")).collect();
    let expected: Vec<String> = (0..n)
        .flat_map(|i| [format!("FC Invoke Start RequestId: seq-{i}"), format!("FC Invoke End RequestId: seq-{i}")])
        .collect();
    assert_eq!(marked, expected, "markers out of order");
}
