//! The viewer page in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/viewer/viewer.mjs`), against the real server process. Needs `/usr/bin/chromium`
//! (`.ci/run` installs it) and Node; the test installs its npm package itself.

mod common;

use common::*;
use hyper::StatusCode;
use std::path::Path;
use std::process::Command;

/// `tests/viewer/node_modules`, installed from the lock file if missing.
fn node_modules() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/viewer");
    if dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .expect("npm (Node.js) is needed for the browser test")
        .success();
    assert!(ok, "npm ci in {} failed", dir.display());
}

/// Runs `tests/viewer/<script>` with `args` in headless Chromium; what it saw, from the JSON
/// line it prints last.
fn browser(script: &str, args: &[String]) -> serde_json::Value {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (`apt-get install chromium`, as .ci/run does)"
    );
    node_modules();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/viewer").join(script);
    let run = Command::new("node")
        .arg(&script)
        .args(args)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs the browser script");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "browser script failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn the_viewer_renders_progressively_in_a_real_browser() {
    // Debug logs a line per request, to see which the browser made.
    let srv = Proc::spawn(&[("RUST_LOG", "debug")]);
    let short = Proc::spawn(&[("RENDER_TIMEOUT_SECS", "1")]);
    let nginx = Nginx::start(short.addr);
    let one_place = Proc::spawn(&[("RENDER_CONCURRENCY", "1"), ("RENDER_QUEUE", "0")]);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer");
    std::fs::create_dir_all(&out).unwrap();
    // Under FC 2.0's path prefix, as the page's relative URLs must work there.
    let url = format!("http://{}/2016-08-15/proxy/svc/fn/", srv.addr);
    let seen = browser(
        "viewer.mjs",
        &[
            url,
            out.display().to_string(),
            format!("http://{}/", short.addr),
            format!("http://{}/", nginx.addr),
            format!("http://{}/", one_place.addr),
        ],
    );
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(seen["contentType"], "text/html; charset=utf-8", "{seen}");
    assert_eq!(seen["frames"], serde_json::json!([4, 8, 16, 32, 64]), "every frame shown: {seen}");
    assert_eq!(seen["reached"], "64", "{seen}");
    assert_eq!(seen["maxDiff"], 0, "the last frame shows the one-shot render: {seen}");
    // The throughput of the 96×72 render at 4096 spp, whose width field read 8192 as it ran.
    let number = |key: &str, unit: &str| -> f64 {
        let text = seen["stats"][key].as_str().unwrap();
        text.strip_suffix(unit).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{key}: {seen}"))
    };
    let (elapsed, rate) = (number("elapsed", " s"), number("rate", " M samples/s"));
    let expected = 96.0 * 72.0 * 4096.0 / elapsed / 1e6;
    assert!((rate / expected - 1.0).abs() < 0.05, "{rate} M samples/s shown, {expected:.1} rendered: {seen}");
    // 8192×8192 is past the progressive memory bound: the server's 413 and its message, shown.
    let error = seen["error"].as_str().unwrap();
    assert!(error.starts_with("413") && error.contains("parameter `progressive`"), "{seen}");
    assert_eq!(seen["links"].as_array().unwrap().len(), 3, "{seen}");
    // A tab opened on a render URL without `format` shows the image (PNG), not a PPM download.
    assert_eq!(seen["tab"], serde_json::json!({"contentType": "image/png", "size": [32, 24]}), "{seen}");
    // Reloaded, the browser sent the image's ETag back and was answered 304: rendered once.
    assert_eq!(seen["reloaded"]["size"], serde_json::json!([32, 24]), "{seen}");
    assert_eq!(seen["pageErrors"], serde_json::json!([]), "{seen}");
    assert!(out.join("viewer.png").exists(), "no screenshot");
    // 256×192 at 65536 spp, broken off by the server's 1 s deadline after its first frames:
    // directly, and through nginx, which ends the stream cleanly (it used to stay "refining").
    for broken in [&seen["brokenOff"], &seen["brokenOffProxied"]] {
        let last = broken["frames"].as_str().unwrap().rsplit(',').next().unwrap();
        assert!(!last.is_empty() && last != "65536", "{seen}");
        let error = broken["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("the render stopped after {last} spp (")) && error.contains("deadline"),
            "{seen}"
        );
    }
    assert!(seen["brokenOffProxied"]["error"].as_str().unwrap().contains("closing boundary"), "{seen}");
    // Rendered again while the first render ran, on one place and no queue: served, all frames.
    let again = &seen["renderAgain"];
    assert_eq!((&again["state"], &again["error"]), (&"done".into(), &"".into()), "{seen}");
    assert_eq!(again["frames"], "4,8,16", "{seen}");
    // The page names no icon, so the browser asks for no `/favicon.ico` (as it may for the image
    // tab opened last); and that path renders nothing (it used to render 1024×768 each time).
    let lines = srv.lines();
    let tab = lines.iter().position(|l| l.contains("render requested width=32 height=24")).expect("the tab's render");
    let renders = lines.iter().filter(|l| l.contains("render requested width=32 height=24")).count();
    let revalidated = lines[tab..].iter().any(|l| l.contains("not modified"));
    assert!(renders == 1 && revalidated, "reloaded: {}; {renders} renders: {lines:#?}", seen["reloaded"]);
    assert!(!lines[..tab].iter().any(|l| l.contains("path=/favicon.ico")), "the page asked for an icon");
    assert!(!lines.iter().any(|l| l.contains("render requested width=1024")), "an icon request rendered");
    eprintln!("screenshot: {}", out.join("viewer.png").display());
}

/// A script on another site's page (here the viewer page of another server: another port is
/// another origin) calls the service in a real browser: allowed by `CORS_ALLOW_ORIGIN`, its POST
/// with a JSON body (preflighted), a refusal's JSON and a progressive stream all read; without
/// it, the browser blocks the call.
#[test]
fn another_sites_page_calls_it_when_cors_allows() {
    let site = Proc::spawn(&[]);
    let origin = format!("http://{}", site.addr);
    let allowing = Proc::spawn(&[("CORS_ALLOW_ORIGIN", &origin)]);
    let closed = Proc::spawn(&[]);
    let seen = browser(
        "cors.mjs",
        &[format!("{origin}/"), format!("http://{}/", allowing.addr), format!("http://{}/", closed.addr)],
    );
    assert_eq!(seen["origin"], origin.as_str(), "{seen}");
    let png = serde_json::json!({"status": 200, "contentType": "image/png", "spp": "4", "png": true});
    assert_eq!(seen["allowed"], png, "{seen}");
    assert_eq!(seen["closed"], serde_json::json!({"error": "TypeError"}), "blocked without CORS: {seen}");
    assert_eq!(
        (&seen["refused"]["status"], &seen["refused"]["body"]["param"]),
        (&serde_json::json!(400), &serde_json::json!("width")),
        "{seen}"
    );
    assert_eq!(seen["frames"], serde_json::json!([4, 8, 16]), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_browser_opening_the_url_gets_the_page() {
    let srv = start(config()).await;
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let res = call(srv.addr, "GET", "/", &html, "").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("content-type"), "text/html; charset=utf-8");
    let page = String::from_utf8_lossy(&res.body);
    assert!(page.contains("<title>smallpt</title>"));
    // Self-contained: nothing fetched from elsewhere, every URL relative.
    for outside in ["http://", "https://", "src=\"/", "href=\"/", "//cdn"] {
        assert!(!page.contains(outside), "the page refers to {outside}");
    }
    // A query renders: for a browser as PNG (it cannot show PPM), for curl (*/*) the default PPM.
    let res = call(srv.addr, "GET", "/?width=8&height=6", &html, "").await;
    assert_eq!(res.header("content-type"), "image/png");
    let res = call(srv.addr, "GET", "/?width=8&height=6", &[("accept", "*/*")], "").await;
    assert_eq!(res.header("content-type"), "image/x-portable-pixmap");
}
