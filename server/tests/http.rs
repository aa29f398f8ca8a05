//! The server over real TCP on 127.0.0.1 with a real HTTP/1.1 client: the render path, bad input,
//! limits and the platforms' calls.

mod common;

use common::*;
use hyper::StatusCode;
use server::Config;
use server::config::ResponseCap;
use std::time::{Duration, Instant};

const SMALL: &str = "spp=4&width=64&height=48&engine=classic&format=p3";

#[tokio::test(flavor = "multi_thread")]
async fn get_renders_the_reference_image_streamed() {
    let srv = start(config()).await;
    let res = get(srv.addr, &format!("/?{SMALL}")).await;
    assert_eq!(res.status, StatusCode::OK);
    let reference = std::fs::read(REFERENCE_64X48).unwrap();
    assert!(res.body == reference, "body differs from {REFERENCE_64X48}");
    assert_eq!(res.header("content-type"), "image/x-portable-pixmap");
    assert_eq!(res.header("content-disposition"), "inline; filename=\"smallpt-64x48-4spp-classic.ppm\"");
    assert_eq!(res.header("transfer-encoding"), "chunked");
    assert_eq!(res.header("x-render-spp"), "4");
    assert_eq!(res.header("x-render-engine"), "classic");
    assert!(res.headers.get("x-render-simd").is_none(), "the classic engine has no SIMD path");
    assert_eq!(res.header("x-request-id").len(), 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn post_json_and_any_path_render() {
    let srv = start(config()).await;
    let body = r#"{"spp": 4, "width": 64, "height": 48, "engine": "classic", "format": "p3"}"#;
    let res = call(srv.addr, "POST", "/2016-08-15/proxy/svc/fn/", &[("x-request-id", "req-1")], body).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == std::fs::read(REFERENCE_64X48).unwrap());
    assert_eq!(res.header("x-request-id"), "req-1");
    let res = get(srv.addr, "/any/path?spp=1&width=8&height=6&engine=classic&format=png").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), "image/png");
    assert_eq!(res.header("content-disposition"), "inline; filename=\"smallpt-8x6-4spp-classic.png\"");
    assert_eq!(res.header("x-render-spp"), "4");
    assert!(res.body == render_local("spp=1&width=8&height=6&engine=classic&format=png"));
    // A saved answer is named for what it holds (each used to be `image.png`).
    let res = call(srv.addr, "HEAD", "/?spp=13&width=64&height=48&seed=7&rows=8-40&format=pfm", &[], "").await;
    assert_eq!(res.header("content-disposition"), "inline; filename=\"smallpt-64x48-16spp-fast-seed7-rows8-40.pfm\"");
    // A POST's query string and body are one set of parameters: the query is not ignored (it
    // used to be: this rendered the default 1024×768), and a parameter in both is refused.
    let res = call(srv.addr, "POST", "/?spp=4&width=64&format=p3", &[], r#"{"height": 48, "engine": "classic"}"#).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == std::fs::read(REFERENCE_64X48).unwrap());
    let res = call(srv.addr, "POST", "/?spp=4", &[], r#"{"spp": 8}"#).await;
    assert_eq!((res.status, res.json()["param"].as_str().unwrap()), (StatusCode::BAD_REQUEST, "spp"));
    let res = call(srv.addr, "POST", "/?spp=4&width=8&height=6", &[], "").await;
    assert_eq!((res.status, res.header("x-render-spp")), (StatusCode::OK, "4"));
    assert!(res.body.starts_with(b"P6\n8 6\n"), "the query's size, not the default");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_4xx_json_naming_the_parameter() {
    let srv = start(Config { max_uri_bytes: 1024, ..config() }).await;
    for (query, param) in [
        ("colour=red", "colour"),
        ("spp=4&spp=8", "spp"),
        ("spp=", "spp"),
        ("width=1.5", "width"),
        ("width=-3", "width"),
        ("height=0", "height"),
        ("spp=100000000", "spp"),
        ("width=8192&height=8192&spp=65536", "spp"),
        ("format=gif", "format"),
        ("engine=turbo", "engine"),
        ("seed=70000", "seed"),
    ] {
        let res = get(srv.addr, &format!("/?{query}")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}");
        let json = res.json();
        assert_eq!(json["param"], param, "{query}: {json}");
        assert!(json["error"].as_str().unwrap().contains(param), "{query}: {json}");
    }
    for (body, param) in [("{\"spp\": 1.5}", "spp"), ("[1]", "body"), ("not json", "body"), ("{\"x\": 1}", "x")] {
        let res = call(srv.addr, "POST", "/", &[], body).await;
        assert_eq!((res.status, res.json()["param"].as_str().unwrap()), (StatusCode::BAD_REQUEST, param), "{body}");
    }
    // A form (`curl -d spp=16`) is named as such, not as bad JSON (it was "expected value at line
    // 1 column 1"); JSON sent with a form's type, as `curl -d` does, still renders.
    let want = render_local("width=8&height=6&engine=classic");
    let json = r#"{"width": 8, "height": 6, "engine": "classic"}"#;
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", "width=8&height=6"),
        (
            "multipart/form-data; boundary=b",
            "--b\r\ncontent-disposition: form-data; name=\"spp\"\r\n\r\n4\r\n--b--\r\n",
        ),
    ] {
        let res = call(srv.addr, "POST", "/", &[("content-type", content_type)], body).await;
        let e = res.json();
        assert_eq!((res.status, e["param"].as_str()), (StatusCode::BAD_REQUEST, Some("body")), "{e}");
        let form = content_type.split(';').next().unwrap();
        assert!(e["error"].as_str().unwrap().contains(&format!("is a form ({form})")), "{e}");
        let res = call(srv.addr, "POST", "/", &[("content-type", content_type)], json).await;
        assert_eq!((res.status, &res.body[..]), (StatusCode::OK, &want[..]), "{content_type}");
    }
    // Malformed JSON sent with a form's type gets the JSON error, not "is a form"; a byte order
    // mark before the JSON (Windows editors, PowerShell) is ignored: it was a 400.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let e = call(srv.addr, "POST", "/", &form, r#"{"width": 8,}"#).await.json();
    assert!(e["error"].as_str().unwrap().contains("must be a JSON object") && e["param"] == "body", "{e}");
    let res = call(srv.addr, "POST", "/", &form, &format!("\u{feff}{json}")).await;
    assert_eq!((res.status, &res.body[..]), (StatusCode::OK, &want[..]));
    // A compressed body is a 415 naming its encoding, not a JSON error about its first byte;
    // `identity` is no encoding.
    let res = call(srv.addr, "POST", "/", &[("content-encoding", "gzip")], "\u{1f}").await;
    assert_eq!((res.status, res.json()["param"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("body")));
    assert!(res.json()["error"].as_str().unwrap().contains("`gzip`"));
    let res = call(srv.addr, "POST", "/", &[("content-encoding", "identity")], json).await;
    assert_eq!((res.status, &res.body[..]), (StatusCode::OK, &want[..]));
    // So is a transfer coding other than chunked, which hyper leaves in the body (it failed as
    // JSON, "expected value at line 1 column 1"). Chunked alone is no coding.
    for (coding, status) in [("gzip, chunked", "415"), ("chunked", "200")] {
        let head = format!("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: {coding}\r\nconnection: close\r\n\r\n");
        let body = format!("{:x}\r\n{json}\r\n0\r\n\r\n", json.len());
        let (_, got) = raw(srv.addr, &format!("{head}{body}")).await;
        assert!(got.starts_with(&format!("HTTP/1.1 {status}")), "{coding}: {got}");
        assert!(status == "200" || got.contains("transfer-encoding `gzip, chunked`"), "{got}");
    }
    // A GET's body is not read: one with bytes is refused, not ignored (it rendered the query's
    // or the default image); an empty one, with a length of 0 or chunked, is no body.
    let res = call(srv.addr, "GET", "/?width=16&height=8", &[], r#"{"width": 8}"#).await;
    assert_eq!((res.status, res.json()["param"].as_str()), (StatusCode::BAD_REQUEST, Some("body")));
    assert!(res.json()["error"].as_str().unwrap().contains("POST"));
    let res = call(srv.addr, "GET", "/?width=16&height=8", &[("content-length", "0")], "").await;
    assert_eq!(res.status, StatusCode::OK);
    for (body, status) in [("0\r\n\r\n", "200"), ("2\r\nhi\r\n0\r\n\r\n", "400")] {
        let head =
            "GET /?width=8&height=8 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        let (_, got) = raw(srv.addr, &format!("{head}{body}")).await;
        assert!(got.starts_with(&format!("HTTP/1.1 {status}")), "{body:?}: {got}");
    }
    let range = get(srv.addr, "/?width=9000").await.json();
    assert!(range["error"].as_str().unwrap().contains("1 to 8192"), "{range}");

    for method in ["PUT", "DELETE", "PATCH"] {
        let res = call(srv.addr, method, "/", &[], "").await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.header("allow"), "GET, HEAD, POST, OPTIONS");
        res.json();
    }
    // OPTIONS is answered on every path, with its methods and nothing rendered: HAProxy's default
    // health check sends `OPTIONS / HTTP/1.0`, and a 405 marked the server down.
    for (path, allow) in [("/", "GET, HEAD, POST"), ("/healthz", "GET, HEAD"), ("/invoke", "POST")] {
        let res = call(srv.addr, "OPTIONS", path, &[], "").await;
        assert_eq!(
            (res.status, res.header("allow")),
            (StatusCode::NO_CONTENT, &*format!("{allow}, OPTIONS")),
            "{path}"
        );
        assert!(res.body.is_empty(), "{path}");
    }
    let (head, body) = http10(srv.addr, "OPTIONS", "/", "").await;
    assert!(head.starts_with("http/1.0 204") && body.is_empty(), "{head}");
    let (_, head) = raw(srv.addr, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 204") && head.contains("allow: GET, HEAD, POST, OPTIONS"), "{head}");
    assert_eq!(call(srv.addr, "GET", "/invoke", &[], "").await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call(srv.addr, "HEAD", "/invoke", &[], "").await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(call(srv.addr, "POST", "/healthz", &[], "").await.status, StatusCode::METHOD_NOT_ALLOWED);

    let big = format!("{{\"seed\": \"{}\"}}", "1".repeat((1 << 20) + 1));
    let res = call(srv.addr, "POST", "/", &[], &big).await;
    assert_eq!((res.status, res.json()["param"].as_str().unwrap()), (StatusCode::PAYLOAD_TOO_LARGE, "body"));
    let res = call(srv.addr, "POST", "/invoke", &[], &big).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);

    let res = get(srv.addr, &format!("/?{}", "a".repeat(2000))).await;
    assert_eq!(res.status, StatusCode::URI_TOO_LONG);
    res.json();
    let huge = "x".repeat(70_000);
    let res = call(srv.addr, "GET", "/healthz", &[("x-big", &huge)], "").await;
    assert_eq!(res.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

/// Browsers ask for `/favicon.ico` on their own beside any page or image they open (and other
/// agents for `/.well-known/` metadata); each used to render a default 1024×768 image (a render
/// slot taken, and on FC an instance billed).
#[tokio::test(flavor = "multi_thread")]
async fn a_browsers_icon_request_renders_nothing() {
    let srv = start(config()).await;
    let icon = [("accept", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8")];
    for method in ["GET", "HEAD"] {
        let res = call(srv.addr, method, "/favicon.ico", &icon, "").await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(res.header("content-type"), "application/json", "{method}");
        assert_eq!(res.header("cache-control"), "public, max-age=86400", "{method}");
        assert!(res.header("x-render-spp").is_empty(), "{method}");
    }
    let res = get(srv.addr, "/favicon.ico").await;
    assert!(res.json()["error"].as_str().unwrap().contains("every other path renders"));
    // Safari's, when a page is bookmarked, pinned or added to a home screen.
    for path in
        ["/apple-touch-icon.png", "/apple-touch-icon-precomposed.png", "/apple-touch-icon-120x120-precomposed.png"]
    {
        let res = get(srv.addr, path).await;
        assert_eq!((res.status, res.header("x-render-spp")), (StatusCode::NOT_FOUND, ""), "{path}");
    }
    // Site metadata agents ask for on their own: Chrome's prefetch proxy and DevTools, scanners.
    for path in [
        "/.well-known/traffic-advice",
        "/.well-known/appspecific/com.chrome.devtools.json",
        "/.well-known/security.txt",
    ] {
        let res = get(srv.addr, path).await;
        assert_eq!((res.status, res.header("x-render-spp")), (StatusCode::NOT_FOUND, ""), "{path}");
        assert!(res.json()["error"].as_str().unwrap().contains("no site metadata"), "{path}");
        assert_eq!(res.header("cache-control"), "public, max-age=86400", "{path}");
    }
    let res = call(srv.addr, "POST", "/.well-known/x", &[], "").await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    let res = call(srv.addr, "POST", "/favicon.ico", &[], "").await;
    assert_eq!((res.status, res.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD, OPTIONS"));
    // Under a path prefix it is a render path like any other.
    let res = get(srv.addr, "/icons/favicon.ico?width=8&height=6").await;
    assert_eq!((res.status, res.header("x-render-spp")), (StatusCode::OK, "4"));
}

/// Crawlers read `/robots.txt` first; it used to render a default image like any other path, and
/// a crawler that found the function's URL would go on asking for renders.
#[tokio::test(flavor = "multi_thread")]
async fn crawlers_are_asked_to_keep_out() {
    let srv = start(config()).await;
    let res = get(srv.addr, "/robots.txt").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(res.header("cache-control"), "public, max-age=86400");
    assert_eq!(String::from_utf8_lossy(&res.body), "User-agent: *\nDisallow: /\n");
    assert_eq!(call(srv.addr, "HEAD", "/robots.txt", &[], "").await.status, StatusCode::OK);
    let res = call(srv.addr, "POST", "/robots.txt", &[], "").await;
    assert_eq!((res.status, res.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD, OPTIONS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_calls() {
    let srv = start(config()).await;
    let a = srv.addr;
    let health = get(a, "/healthz").await;
    assert_eq!((health.status, health.json()["status"].as_str().unwrap()), (StatusCode::OK, "ok"));
    assert_eq!(call(a, "HEAD", "/healthz", &[], "").await.status, StatusCode::OK);
    // A health check pointed at another usual path is answered too, not given a render.
    for path in ["/healthz/", "/health", "/health/", "/livez", "/readyz/"] {
        let health = get(a, path).await;
        assert_eq!(health.header("content-type"), "application/json", "{path}");
        assert_eq!(health.json()["status"], "ok", "{path}");
        let res = call(a, "POST", path, &[], "").await;
        assert_eq!((res.status, res.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD, OPTIONS"), "{path}");
    }
    for _ in 0..2 {
        for (method, path) in [("POST", "/initialize"), ("GET", "/pre-freeze"), ("POST", "/pre-freeze")] {
            assert_eq!(call(a, method, path, &[], "").await.status, StatusCode::OK, "{method} {path}");
        }
        for (method, path) in [("GET", "/pre-stop"), ("POST", "/pre-stop"), ("POST", "/init")] {
            assert_eq!(call(a, method, path, &[], "").await.status, StatusCode::OK, "{method} {path}");
        }
    }
    let body = r#"{"spp": 4, "width": 64, "height": 48, "engine": "classic", "format": "p3"}"#;
    let reference = std::fs::read(REFERENCE_64X48).unwrap();

    // FC event invocation.
    let fc = [("x-fc-control-path", "/invoke"), ("x-fc-request-id", "fc-42")];
    let res = call(a, "POST", "/invoke", &fc, body).await;
    assert_eq!((res.status, res.header("x-request-id")), (StatusCode::OK, "fc-42"));
    assert!(res.body == reference);
    let res = call(a, "POST", "/invoke", &fc, r#"{"spp": 0}"#).await;
    assert_eq!((res.status, res.header("x-fc-status")), (StatusCode::BAD_REQUEST, "404"));
    assert_eq!(res.json()["param"], "spp");

    // SCF event function.
    let res = call(a, "POST", "/event-invoke", &[("x-scf-request-id", "scf-7")], body).await;
    assert_eq!((res.status, res.header("x-request-id")), (StatusCode::OK, "scf-7"));
    assert!(res.body == reference);
    let res = call(a, "POST", "/event-invoke", &[], "{").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);

    // FunctionGraph event: the JSON envelope with the PNG in base64.
    let fg = [("x-cff-request-id", "fg-9")];
    let png_req = r#"{"spp": 4, "width": 16, "height": 12, "engine": "classic", "format": "png"}"#;
    let res = call(a, "POST", "/invoke", &fg, png_req).await;
    assert_eq!((res.status, res.header("x-request-id")), (StatusCode::OK, "fg-9"));
    let env = res.json();
    assert_eq!((env["isBase64Encoded"].as_bool(), env["statusCode"].as_u64()), (Some(true), Some(200)));
    assert_eq!(env["headers"]["Content-Type"], "image/png");
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD.decode(env["body"].as_str().unwrap()).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (16, 12));
    let res = call(a, "POST", "/invoke", &fg, r#"{"format": "tiff"}"#).await;
    let env = res.json();
    assert_eq!(
        (res.status, env["statusCode"].as_u64(), env["isBase64Encoded"].as_bool()),
        (StatusCode::OK, Some(400), Some(false))
    );
    let inner: serde_json::Value = serde_json::from_str(env["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["param"], "format");

    // An event's answer goes back whole, so progressive frames would all arrive at the end (it
    // used to answer the whole multipart stream at once): a 400 naming `progressive`.
    let progressive = r#"{"width": 8, "height": 8, "spp": 8, "progressive": true}"#;
    let res = call(a, "POST", "/invoke", &fc, progressive).await;
    assert_eq!((res.status, res.header("x-fc-status")), (StatusCode::BAD_REQUEST, "404"));
    assert_eq!(res.json()["param"], "progressive");
    let res = call(a, "POST", "/event-invoke", &[], progressive).await;
    assert_eq!((res.status, res.json()["param"].as_str()), (StatusCode::BAD_REQUEST, Some("progressive")));
    let env = call(a, "POST", "/invoke", &fg, progressive).await.json();
    let inner: serde_json::Value = serde_json::from_str(env["body"].as_str().unwrap()).unwrap();
    assert_eq!((env["statusCode"].as_u64(), inner["param"].as_str()), (Some(400), Some("progressive")));
}

#[tokio::test(flavor = "multi_thread")]
async fn response_cap_answers_413_before_rendering() {
    let srv = start(config()).await;
    // 2000×1200 PPM is 7.2 MB; with spp 65536 rendering it would take hours, so a quick answer
    // shows nothing was rendered.
    let path = "/?width=2000&height=1200&spp=1024";
    let t = Instant::now();
    let res = call(srv.addr, "GET", path, &[("x-scf-request-id", "s1")], "").await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    let json = res.json();
    assert_eq!(json["param"], "format");
    assert!(json["error"].as_str().unwrap().contains("format=png"), "{json}");
    assert!(t.elapsed() < Duration::from_secs(2));
    let fg =
        call(srv.addr, "POST", "/invoke", &[("x-cff-request-id", "f1")], r#"{"width": 2000, "height": 1200}"#).await;
    assert_eq!(fg.json()["statusCode"], 413);

    let capped = start(Config { response_cap: ResponseCap::Bytes(1000), ..config() }).await;
    assert_eq!(get(capped.addr, "/?width=64&height=48").await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(get(capped.addr, "/?width=16&height=12&engine=classic").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_render_fails_only_its_request() {
    let srv = start(Config { fault_injection: true, ..config() }).await;
    let res = get(srv.addr, "/?width=8&height=8&seed=65535&engine=classic").await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.json()["error"].is_string());
    let res = get(srv.addr, &format!("/?{SMALL}")).await;
    assert_eq!(res.status, StatusCode::OK);
}

/// Ambiguous framing is refused with 400 (hyper's rules, plus `server::framing` for CL+TE and
/// repeated equal CL) and the connection closed: one response, nothing behind it read as a
/// second request; the server keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn raw_tcp_framing_cases() {
    let srv = start(config()).await;
    let smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases = [
        // Duplicate Content-Length with different values.
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{{}}{smuggled}"),
        // Malformed Content-Length.
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2x\r\n\r\n{{}}{smuggled}"),
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{{}}{smuggled}"),
        // A list, and lengths past what hyper can hold (it answers an empty 431 to the first).
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{{}}{smuggled}"),
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n{{}}{smuggled}"),
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{{}}{smuggled}"),
        // Content-Length with a Transfer-Encoding that is not chunked.
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: gzip\r\n\r\n{{}}{smuggled}"),
        // Content-Length and Transfer-Encoding together, either order, with a chunked body that
        // is a valid request on its own: refused.
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED}{smuggled}"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n{CHUNKED}{smuggled}"
        ),
        // Duplicate Content-Length, even with equal values.
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}{smuggled}"),
    ];
    for request in &cases {
        let (mut stream, head) = raw(srv.addr, request).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{request:?} -> {head}");
        use tokio::io::AsyncReadExt;
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await.expect("connection left open").ok();
        let all = head + &String::from_utf8_lossy(&rest);
        assert_eq!(all.matches("HTTP/1.1 ").count(), 1, "{request:?} -> {all}");
        // Said in JSON, not hyper's empty 400.
        assert!(all.contains(r#"{"error":"#) && all.contains("Content-Length"), "{request:?} -> {all}");
        assert_eq!(get(srv.addr, "/healthz").await.status, StatusCode::OK);
    }
    // On a kept-alive connection: the first request is answered, the ambiguous second one refused
    // (behind a request still in hand the framing leaves a list as Content-Length to hyper, which
    // refuses it).
    use tokio::io::AsyncReadExt;
    // The list's body is a valid request of its own: taken as it, the answer would be three 200s.
    for (framing, body) in
        [("Content-Length: 9\r\nTransfer-Encoding: chunked", CHUNKED), ("Content-Length: 11, 11", r#"{"width":1}"#)]
    {
        let second = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n{body}{smuggled}"
        );
        let (mut stream, head) = raw(srv.addr, &second).await;
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await.expect("connection left open").ok();
        let all = head + &String::from_utf8_lossy(&rest);
        let statuses: Vec<&str> = all.match_indices("HTTP/1.1 ").map(|(i, _)| &all[i + 9..i + 12]).collect();
        assert_eq!(statuses, ["200", "400"], "{framing:?}: {all}");
    }
    // What hyper alone answers with an empty 400 or 431 is said in JSON: a body in another coding
    // than chunked, more header fields than hyper takes.
    let many: String = (0..101).map(|i| format!("X-F{i}: v\r\n")).collect();
    for (request, status, says) in [
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}".to_string(), "400", "chunked"),
        (format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n"), "431", "more than 100 header fields"),
    ] {
        let (mut stream, head) = raw(srv.addr, &request).await;
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await.expect("connection left open").ok();
        let all = head + &String::from_utf8_lossy(&rest);
        assert!(all.starts_with(&format!("HTTP/1.1 {status}")) && all.contains(says), "{all}");
    }
    // A chunked body without Content-Length is read as usual (here: the unknown field is named).
    let json = r#"{"width": 4, "height": 3, "x": 1}"#;
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{json}\r\n0\r\n\r\n",
        json.len()
    );
    let (mut stream, head) = raw(srv.addr, &chunked).await;
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await.expect("connection left open").ok();
    let all = head + &String::from_utf8_lossy(&rest);
    assert!(all.starts_with("HTTP/1.1 400") && all.contains(r#""param":"x""#), "{all}");
}

/// A chunked body holding `{}`.
const CHUNKED: &str = "2\r\n{}\r\n0\r\n\r\n";

/// HTTP/1.0 has no chunked coding: an answer whose length the format does not fix (P3, PNG) is
/// held whole and sent with its length, the same bytes as over HTTP/1.1; one too large to hold is
/// a 413 naming `format`, before rendering. (PPM's is sent up front: `load.rs`.)
#[tokio::test(flavor = "multi_thread")]
async fn http10_gets_answers_of_unknown_length_whole_with_their_length() {
    let srv = start(config()).await;
    let (head, body) = http10(srv.addr, "GET", &format!("/?{SMALL}"), "").await;
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert_eq!(head_value(&head, "content-length"), Some(body.len().to_string().as_str()), "{head}");
    assert!(body == std::fs::read(REFERENCE_64X48).unwrap(), "body differs from {REFERENCE_64X48}");
    let png = "/?width=40&height=30&spp=8&format=png";
    let (head, body) = http10(srv.addr, "GET", png, "").await;
    assert_eq!(head_value(&head, "content-length"), Some(body.len().to_string().as_str()), "{head}");
    assert!(body == get(srv.addr, png).await.body, "HTTP/1.0 and HTTP/1.1 answers differ");
    // A progressive stream is not held: it ends with its closing boundary.
    let (head, body) = http10(srv.addr, "GET", "/?width=8&height=8&spp=8&progressive=1", "").await;
    assert!(head.starts_with("http/1.0 200") && head_value(&head, "content-length").is_none(), "{head}");
    assert!(body.ends_with(b"--smallpt-frame--\r\n"), "{:?}", String::from_utf8_lossy(&body[body.len() - 40..]));
    for method in ["GET", "HEAD"] {
        let (head, body) = http10(srv.addr, method, "/?width=8192&height=8192&format=p3", "").await;
        assert!(head.starts_with("http/1.0 413"), "{method}: {head}");
        if method == "GET" {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["param"], "format", "{error}");
            assert!(error["error"].as_str().unwrap().contains("HTTP/1.1"), "{error}");
        }
    }
    // Over HTTP/1.1 the same request streams.
    assert_eq!(call(srv.addr, "HEAD", "/?width=8192&height=8192&format=p3", &[], "").await.status, StatusCode::OK);
    // A client that leaves while its answer is held stops the render, as one that leaves a stream.
    use tokio::io::AsyncWriteExt;
    let mut held = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    held.write_all(format!("GET {LONG}&format=png HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    let t = Instant::now();
    while get(srv.addr, "/healthz").await.json()["active"] != 1 {
        assert!(t.elapsed() < TIMEOUT, "the held render never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(held);
    wait_idle(srv.addr, Duration::from_secs(5)).await;
}

/// HEAD answers what a GET would, without rendering: the same headers and no body for a good
/// query, the same 4xx for a bad one, the viewer's head for a browser; it used to be a 405.
#[tokio::test(flavor = "multi_thread")]
async fn head_answers_a_gets_status_and_headers_without_rendering() {
    let srv = start(config()).await;
    for query in
        ["/?width=16&height=8&spp=8&format=png", "/render/x?width=8&height=8&engine=classic", "/?width=8&progressive=1"]
    {
        let get = get(srv.addr, query).await;
        let head = call(srv.addr, "HEAD", query, &[], "").await;
        assert_eq!((head.status, get.status), (StatusCode::OK, StatusCode::OK), "{query}");
        assert!(head.body.is_empty() && !get.body.is_empty(), "{query}");
        for name in ["content-type", "content-disposition", "x-render-spp", "x-render-engine", "x-render-simd"] {
            assert_eq!(head.headers.get(name), get.headers.get(name), "{query}: {name}");
        }
        // A PPM's length is known before rendering; a PNG's, or a stream of frames', is not.
        let length = get.body.len().to_string();
        let expected = query.contains("classic").then_some(length.as_str());
        assert_eq!(head.headers.get("content-length").map(|v| v.to_str().unwrap()), expected, "{query}");
        assert_eq!(get.headers.get("content-length").map(|v| v.to_str().unwrap()), expected, "{query}");
    }
    for (query, param) in [("/?width=0", "width"), ("/?spp=4&spp=8", "spp"), ("/?parts=2", "parts"), ("/?x=1", "x")] {
        let get = get(srv.addr, query).await;
        let head = call(srv.addr, "HEAD", query, &[], "").await;
        assert_eq!((head.status, get.json()["param"].as_str()), (get.status, Some(param)), "{query}");
        assert!(head.status.is_client_error() && head.body.is_empty(), "{query}");
    }
    let page = call(srv.addr, "HEAD", "/", &[("accept", "text/html")], "").await;
    assert_eq!((page.status, page.header("content-type")), (StatusCode::OK, "text/html; charset=utf-8"));
    // Minutes of classic rendering if it started, cancelled only once its first row (seconds)
    // is out: after the HEAD nothing runs or waits.
    let head = call(srv.addr, "HEAD", "/?width=1024&height=768&spp=4096&engine=classic", &[], "").await;
    assert_eq!(head.status, StatusCode::OK);
    let health = get(srv.addr, "/healthz").await.json();
    assert_eq!((health["active"].as_u64(), health["queued"].as_u64()), (Some(0), Some(0)), "{health}");
}

/// A GET or HEAD that leaves out `format` from a browser gets PNG, which it can show (a tab opened
/// on `/?spp=16` used to download a PPM file); curl's `*/*`, a client naming PPM, and every
/// request that gives `format` get what they got before. The answer says it varies by Accept.
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_leaves_out_format_gets_png() {
    let srv = start(config()).await;
    let query = "/?width=16&height=12&spp=4&engine=classic";
    let png = get(srv.addr, &format!("{query}&format=png")).await;
    let ppm = get(srv.addr, query).await;
    assert_eq!((ppm.header("content-type"), ppm.body.len()), ("image/x-portable-pixmap", 13 + 16 * 12 * 3));
    let tab = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";
    let img = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    // Firefox's <img> (92 and later; 65 to 91 without AVIF): no PNG, no image/*.
    let firefox_img = "image/avif,image/webp,*/*";
    for (accept, want) in [
        (tab, &png),
        (img, &png),
        (firefox_img, &png),
        ("image/webp,*/*", &png),
        ("image/*", &png),
        ("*/*", &ppm),
        ("image/x-portable-pixmap, image/*", &ppm),
        // `q=0` refuses a type (RFC 9110 §12.4.2): PNG is not sent to a client that says so.
        ("image/png;q=0, */*", &ppm),
        ("image/*; q=0.000, */*", &ppm),
        ("image/png;q=0.5, */*", &png),
    ] {
        let res = call(srv.addr, "GET", query, &[("accept", accept)], "").await;
        assert_eq!((res.status, res.header("vary")), (StatusCode::OK, "accept"), "{accept}");
        assert!(res.body == want.body, "{accept}: got {}", res.header("content-type"));
        let head = call(srv.addr, "HEAD", query, &[("accept", accept)], "").await;
        assert_eq!(head.header("content-type"), want.header("content-type"), "HEAD, {accept}");
    }
    // Given, the format is the format; the answer does not vary.
    let res = call(srv.addr, "GET", &format!("{query}&format=ppm"), &[("accept", tab)], "").await;
    assert!(res.body == ppm.body && res.headers.get("vary").is_none());
    // A bad request is still named for what is wrong in it.
    let res = call(srv.addr, "GET", "/?width=0", &[("accept", tab)], "").await;
    assert_eq!((res.status, res.json()["param"].as_str()), (StatusCode::BAD_REQUEST, Some("width")));
}

/// CORS, off by default: a page on another site gets no `Access-Control-*` headers, so its
/// scripts cannot read answers. With `CORS_ALLOW_ORIGIN` every answer (images, refusals, the
/// health check) carries them, and a preflight gets the path's methods and the headers it asked
/// for. A listed origin is answered with itself and `Vary: Origin`; an unlisted one with nothing.
#[tokio::test(flavor = "multi_thread")]
async fn cors_is_off_by_default_and_answers_what_it_allows() {
    let from_a = [("origin", "https://a.example")];
    let preflight = [
        ("origin", "https://a.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let off = start(config()).await;
    let res = call(off.addr, "GET", "/?width=8&height=6", &from_a, "").await;
    assert_eq!((res.status, res.headers.get("access-control-allow-origin")), (StatusCode::OK, None));
    let res = call(off.addr, "OPTIONS", "/", &preflight, "").await;
    assert_eq!((res.status, res.headers.get("access-control-allow-origin")), (StatusCode::NO_CONTENT, None));

    let any = start(Config { cors: server::cors::Cors::Any, ..config() }).await;
    for (path, status) in
        [("/?width=8&height=6", StatusCode::OK), ("/?width=0", StatusCode::BAD_REQUEST), ("/healthz", StatusCode::OK)]
    {
        let res = call(any.addr, "GET", path, &from_a, "").await;
        assert_eq!((res.status, res.header("access-control-allow-origin")), (status, "*"), "{path}");
        let exposed = res.header("access-control-expose-headers");
        assert!(exposed.contains("x-render-spp") && exposed.contains("x-request-id"), "{path}: {exposed}");
    }
    let res = call(any.addr, "OPTIONS", "/", &preflight, "").await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(res.header("access-control-allow-origin"), "*");
    assert_eq!(res.header("access-control-allow-methods"), "GET, HEAD, POST, OPTIONS");
    assert_eq!(res.header("access-control-allow-headers"), "content-type");
    assert_eq!(res.header("access-control-max-age"), "86400");
    let res = call(any.addr, "OPTIONS", "/healthz", &preflight, "").await;
    assert_eq!(res.header("access-control-allow-methods"), "GET, HEAD, OPTIONS");

    let listed = server::cors::Cors::parse("https://a.example").unwrap();
    let listed = start(Config { cors: listed, ..config() }).await;
    let res = call(listed.addr, "GET", "/?width=8&height=6", &from_a, "").await;
    assert_eq!(res.header("access-control-allow-origin"), "https://a.example");
    assert!(res.header("vary").contains("origin"), "{:?}", res.headers);
    let res = call(listed.addr, "GET", "/?width=8&height=6", &[("origin", "https://b.example")], "").await;
    assert_eq!((res.status, res.headers.get("access-control-allow-origin")), (StatusCode::OK, None));
    assert!(res.header("vary").contains("origin"), "{:?}", res.headers);
}

/// A GET's image carries an entity tag, and a client that sends it back (a browser reloading the
/// image) gets a 304 at once with nothing rendered or queued: here while the one render slot is
/// taken and there is no queue, where a render is a 503. Bad parameters are refused all the same.
/// Other parameters, or another format negotiated from `Accept`, have other tags; a POST and a
/// progressive stream have none.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_has_the_image_gets_a_304_without_a_render() {
    let srv = start(Config { concurrency: 1, queue: 0, ..config() }).await;
    let q = "/?width=16&height=12&spp=4";
    let first = get(srv.addr, q).await;
    assert_eq!(first.status, StatusCode::OK);
    let tag = first.header("etag").to_owned();
    assert!(tag.starts_with('"') && tag.ends_with('"') && tag.contains("width=16&height=12&spp=4"), "{tag}");
    assert_eq!(call(srv.addr, "HEAD", q, &[], "").await.header("etag"), tag);

    let (running, head) = start_get(srv.addr, LONG, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(get(srv.addr, q).await.status, StatusCode::SERVICE_UNAVAILABLE, "the slot is taken");
    for condition in [tag.clone(), format!("W/{tag}"), format!("\"other\", {tag}"), "*".to_owned()] {
        for method in ["GET", "HEAD"] {
            let res = call(srv.addr, method, q, &[("if-none-match", &condition)], "").await;
            assert_eq!(res.status, StatusCode::NOT_MODIFIED, "{method} {condition}");
            assert_eq!(res.header("etag"), tag, "{method} {condition}");
            assert!(res.body.is_empty() && res.headers.get("content-type").is_none(), "{method} {condition}");
        }
    }
    let bad = call(srv.addr, "GET", "/?width=16&height=12&spp=0", &[("if-none-match", "*")], "").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    drop(running);
    wait_idle(srv.addr, TIMEOUT).await;

    // Another tag: the image again, byte for byte.
    let again = call(srv.addr, "GET", q, &[("if-none-match", "\"other\"")], "").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body == first.body, "the same tag, other bytes");
    assert_eq!(again.header("etag"), tag);
    let seeded = get(srv.addr, "/?width=16&height=12&spp=4&seed=1").await;
    assert!(!seeded.header("etag").is_empty() && seeded.header("etag") != tag);
    let png = call(srv.addr, "GET", q, &[("accept", "image/png")], "").await;
    assert_eq!(png.header("content-type"), "image/png");
    let png_tag = png.header("etag");
    assert!(png_tag.starts_with("W/\"") && png_tag.contains("format=png"), "weak: {png_tag}");
    let res = call(srv.addr, "GET", q, &[("accept", "image/png"), ("if-none-match", png_tag)], "").await;
    assert_eq!(res.status, StatusCode::NOT_MODIFIED);
    assert_eq!(res.header("vary"), "accept", "a cache must keep the formats apart");
    // Where the image's URL does not name it: no tag, and a condition is not looked at.
    let post = call(srv.addr, "POST", q, &[("if-none-match", "*")], "").await;
    assert_eq!(post.status, StatusCode::OK);
    assert!(post.headers.get("etag").is_none());
    let progressive = call(srv.addr, "GET", &format!("{q}&progressive=1"), &[("if-none-match", "*")], "").await;
    assert_eq!(progressive.status, StatusCode::OK);
    assert!(progressive.headers.get("etag").is_none());
}

/// One tag, one image: every engine rendered by servers on each SIMD path has the tag of its bytes
/// (AVX2 and AVX-512 fuse multiply-adds alike; SSE2 rounds twice, and its PFM differs, though an
/// 8-bit PPM may round to the same bytes) — the classic engine's the same on all of them.
#[tokio::test(flavor = "multi_thread")]
async fn an_entity_tag_names_the_bytes_across_processes_and_simd_paths() {
    let servers: Vec<Proc> = ["avx512", "avx2", "sse2"]
        .into_iter()
        .map(|path| Proc::spawn(&[("RENDER_THREADS", "1"), ("RENDER_SIMD", path)]))
        .collect();
    for engine in ["fast", "nee", "classic"] {
        let q = format!("/?width=24&height=16&spp=8&engine={engine}&format=pfm");
        let mut seen: Vec<(String, Resp)> = Vec::new();
        for srv in &servers {
            let res = get(srv.addr, &q).await;
            assert_eq!(res.status, StatusCode::OK);
            let tag = res.header("etag").to_owned();
            assert!(!tag.is_empty(), "{q}");
            for (other, earlier) in &seen {
                assert_eq!(*other == tag, earlier.body == res.body, "{q}: {other} and {tag}");
                let simd = |r: &Resp| r.header("x-render-simd").to_owned();
                let fused = |r: &Resp| ["avx512", "avx2"].contains(&simd(r).as_str());
                let same = engine == "classic" || fused(earlier) == fused(&res);
                assert_eq!(*other == tag, same, "{q}: {} and {}", simd(earlier), simd(&res));
            }
            seen.push((tag, res));
        }
    }
}

/// s.yaml gives an instance one render slot and no queue, and FC (instanceConcurrency 1) may send it
/// the next request as soon as the previous answer's last byte is in. The slot is free by then:
/// an image's last bytes wait for its render to give the slot back, so a client asking again at
/// once is never told the slot is taken — whether the length was sent (PPM, PFM) or the body is
/// chunked (PNG), on a kept-alive connection or a new one.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_asking_again_on_the_last_byte_finds_the_slot_free() {
    let srv = start(Config { concurrency: 1, queue: 0, ..config() }).await;
    let mut kept = Conn::open(srv.addr).await;
    let mut refused = Vec::new();
    for i in 0..300 {
        let format = ["ppm", "pfm", "png"][i % 3];
        let q = format!("/?width=4&height=3&spp=1&format={format}");
        let res = if i % 2 == 0 { kept.call("GET", &q, &[], "").await } else { get(srv.addr, &q).await };
        if res.status != StatusCode::OK {
            refused.push((i, format, res.status));
        }
    }
    assert!(refused.is_empty(), "asked again at once, refused: {refused:?}");
}

/// A client that goes away and asks again at once (a browser's "render again", a gateway's
/// retry) is served, not told the slot is taken, on s.yaml's one slot and no queue: the render it
/// left gives its slot back within milliseconds, and the shed delay waits for it. A slot that
/// stays taken is refused all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_and_asks_again_at_once_is_served() {
    let srv = start(Config { concurrency: 1, queue: 0, ..config() }).await;
    for round in 0..5 {
        let (left, head) = start_get(srv.addr, LONG, "").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(left);
        let res = get(srv.addr, "/?width=8&height=6&spp=1").await;
        assert_eq!(res.status, StatusCode::OK, "round {round}: {:?}", res.body);
    }
    let (_running, head) = start_get(srv.addr, LONG, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(get(srv.addr, "/?width=8&height=6&spp=1").await.status, StatusCode::SERVICE_UNAVAILABLE);
}
