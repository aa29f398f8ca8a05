//! Fan-out end to end: a coordinator and workers, each the real `server` binary on 127.0.0.1,
//! talking real HTTP (and HTTPS through a TLS endpoint with a test CA). Every merged image is
//! compared byte for byte with a one-process render of the same request without `parts`.

mod common;

use common::*;
use hyper::StatusCode;
use render::engine::fast::SimdPath;
use render::{Limits, RenderOptions, RenderRequest};
use server::config::Fanout;
use std::time::{Duration, Instant};

/// The bytes of `query` (without `parts`) rendered in this process.
fn local(query: &str) -> Vec<u8> {
    let mut req = RenderRequest::from_query(query, &Limits::DEFAULT).unwrap();
    req.parts = None;
    render::render_to_vec(&req, &RenderOptions::default()).unwrap().0
}

struct Cluster {
    workers: Vec<Proc>,
    coordinator: Proc,
}

/// `n` workers (one render thread each: the machine has two cores) and a coordinator over them.
fn cluster(n: usize, env: &[(&str, &str)]) -> Cluster {
    let workers: Vec<Proc> = (0..n).map(|_| Proc::spawn(&[("RENDER_THREADS", "1")])).collect();
    let urls: Vec<String> = workers.iter().map(|w| format!("http://{}/", w.addr)).collect();
    let urls = urls.join(",");
    let mut all = vec![("FANOUT_URL", urls.as_str()), ("RENDER_THREADS", "1")];
    all.extend_from_slice(env);
    Cluster { workers, coordinator: Proc::spawn(&all) }
}

/// Polls `addr`'s /healthz until `active` satisfies `pred`.
async fn wait_active(addr: std::net::SocketAddr, pred: impl Fn(u64) -> bool, within: Duration) {
    let t = Instant::now();
    loop {
        let h = get(addr, "/healthz").await.json();
        if pred(h["active"].as_u64().unwrap()) {
            return;
        }
        assert!(t.elapsed() < within, "/healthz of {addr} never as wanted: {h}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn merged_images_are_byte_identical_for_every_engine_every_format_and_every_path() {
    let c = cluster(3, &[]);
    let addr = c.coordinator.addr;
    for engine in ["fast", "classic", "nee"] {
        for format in ["ppm", "p3", "png", "pfm"] {
            let q = format!("width=61&height=37&spp=8&seed=3&engine={engine}&format={format}");
            let want = local(&q);
            // Bands of 8 and 7 rows; one row each (parts = height); a band of the image in 4 parts.
            for extra in ["&parts=5", "&parts=37", "&parts=1"] {
                let res = get(addr, &format!("/?{q}{extra}")).await;
                assert_eq!(res.status, StatusCode::OK, "{q}{extra}: {:?}", res.body);
                assert!(res.body == want, "{q}{extra}: merged image differs from the one-process render");
                assert_eq!(res.header("x-render-parts"), &extra[7..]);
                assert_eq!(res.header("x-render-engine"), engine);
                assert_eq!(res.header("content-type"), want_type(format));
            }
            let band = format!("{q}&rows=5-30");
            let res = get(addr, &format!("/?{band}&parts=4")).await;
            assert!(res.body == local(&band), "{band}&parts=4");
        }
    }
    // POST JSON, FC's /invoke and SCF's /event-invoke take `parts` like the query.
    let body = r#"{"width": 40, "height": 23, "spp": 4, "engine": "classic", "format": "png", "parts": 3}"#;
    let want = local("width=40&height=23&spp=4&engine=classic&format=png");
    for path in ["/", "/invoke", "/event-invoke"] {
        let res = call(addr, "POST", path, &[], body).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert!(res.body == want, "{path}");
    }
    // More parts than rows: refused, naming `parts` and the range.
    let res = get(addr, "/?width=8&height=6&parts=7").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["param"], "parts");
    assert!(res.json()["error"].as_str().unwrap().contains("1 to 6"), "{}", res.json());
    // Every worker got parts, and logged whose they were.
    for w in &c.workers {
        assert!(w.lines().iter().any(|l| l.contains("part_of=") && l.contains(".p")), "a worker had no part");
    }
    let lines = c.coordinator.lines_once(|l| l.contains("fan-out done"));
    assert!(lines.iter().any(|l| l.contains("fan-out done") && l.contains("parts_ms")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("part done") && l.contains("worker=http://127.0.0.1")), "{lines:#?}");
}

/// A pool of two kinds of host: a worker forced to SSE2 (which rounds multiply-adds twice) beside
/// one on AVX2 or AVX-512 (which fuse them). Their bytes differ, so parts from the kind other than
/// the first part's are refused and retried on the next worker: the image is byte-identical to
/// one worker's own render, never a mix of the two.
#[tokio::test(flavor = "multi_thread")]
async fn parts_of_the_other_simd_arithmetic_are_retried_never_merged() {
    // What a worker runs (its environment is cleared): the widest path the CPU has.
    let fused = SimdPath::Avx512.clamp_to_cpu();
    if fused.arithmetic() == SimdPath::Sse2.arithmetic() {
        eprintln!("skipped: this CPU has no AVX2, so every worker rounds the same way");
        return;
    }
    let workers =
        [Proc::spawn(&[("RENDER_THREADS", "1"), ("RENDER_SIMD", "sse2")]), Proc::spawn(&[("RENDER_THREADS", "1")])];
    let urls = format!("http://{}/,http://{}/", workers[0].addr, workers[1].addr);
    let coordinator = Proc::spawn(&[("FANOUT_URL", urls.as_str()), ("RENDER_THREADS", "1")]);
    for engine in ["fast", "nee"] {
        let q = format!("/?width=61&height=37&spp=8&seed=5&engine={engine}");
        // Each worker's own render (no parts): the two arithmetics give two images.
        let (twice, fused_img) = (get(workers[0].addr, &q).await, get(workers[1].addr, &q).await);
        assert_eq!(twice.header("x-render-simd"), "sse2");
        assert_eq!(fused_img.header("x-render-simd"), fused.name());
        assert!(twice.body != fused_img.body, "{engine}: SSE2 and {} gave the same bytes", fused.name());
        let res = get(coordinator.addr, &format!("{q}&parts=6")).await;
        assert_eq!(res.status, StatusCode::OK, "{engine}: {:?}", res.body);
        assert!(res.body == twice.body || res.body == fused_img.body, "{engine}: the merged image mixes the two");
        // The coordinator fuses too: it tags the merged image only if it is its own arithmetic's.
        let tag = res.headers.get("etag").map(|t| t.to_str().unwrap());
        let own = res.body == fused_img.body;
        assert_eq!(tag, own.then(|| fused_img.header("etag")), "{engine}: tagged only as its own image");
    }
    let refused = |lines: &[String]| -> Vec<String> {
        lines.iter().filter(|l| l.contains("part failed") && l.contains("arithmetic")).cloned().collect()
    };
    let lines = coordinator.lines();
    let before = refused(&lines);
    // Per render, the three parts sent first to the worker of the other kind (parts alternate).
    assert!(before.len() >= 6, "{lines:#?}");
    assert!(before.iter().all(|l| l.contains("retry=true")), "{before:#?}");
    // A classic render has one arithmetic everywhere: none of its parts is refused.
    let q = "/?width=61&height=37&spp=4&engine=classic";
    let res = get(coordinator.addr, &format!("{q}&parts=6")).await;
    assert!(res.body == local(&q[2..]), "classic");
    assert_eq!(res.header("etag"), get(workers[0].addr, q).await.header("etag"), "classic: one tag everywhere");
    assert_eq!(refused(&coordinator.lines()).len(), before.len(), "a classic part was refused");
}

/// A fan-out's image is byte for byte the render without `parts`, and has its tag; a condition
/// naming it is answered 304 by the coordinator at once, with no part sent to a worker.
#[tokio::test(flavor = "multi_thread")]
async fn a_fan_outs_image_has_the_one_renders_tag_and_its_304_sends_no_part() {
    let c = cluster(2, &[]);
    let q = "/?width=40&height=30&spp=8&seed=4";
    let plain = get(c.coordinator.addr, q).await;
    let tag = plain.header("etag");
    assert!(tag.contains("seed=4") && !tag.contains("parts"), "{tag}");
    let fanned = get(c.coordinator.addr, &format!("{q}&parts=3")).await;
    assert_eq!(fanned.status, StatusCode::OK);
    assert!(fanned.body == plain.body, "the merged image differs");
    assert_eq!(fanned.header("etag"), tag);
    for method in ["GET", "HEAD"] {
        let res = call(c.coordinator.addr, method, &format!("{q}&parts=3"), &[("if-none-match", tag)], "").await;
        assert_eq!(res.status, StatusCode::NOT_MODIFIED, "{method}");
        assert_eq!(res.header("etag"), tag, "{method}");
    }
    // Once both 304s' lines are in, so is any line logged before them (stdout keeps the order): a
    // fan-out starts only after "render requested", and the two logged are the first two GETs'.
    let t = Instant::now();
    let lines = loop {
        let lines = c.coordinator.lines();
        if lines.iter().filter(|l| l.contains("not modified")).count() == 2 || t.elapsed() > TIMEOUT {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let requested = lines.iter().filter(|l| l.contains("render requested")).count();
    assert_eq!(requested, 2, "a 304 asked for a render: {lines:#?}");
}

fn want_type(format: &str) -> &'static str {
    match format {
        "png" => "image/png",
        "pfm" => "image/x-portable-floatmap",
        _ => "image/x-portable-pixmap",
    }
}

/// A GET allowed longer than the common 20 s: the slow tests share two cores with the others.
async fn get_slow(addr: std::net::SocketAddr, path: String) -> Resp {
    let t = Duration::from_secs(90);
    tokio::time::timeout(t, async {
        let mut conn = Conn::open(addr).await;
        let res = conn.send("GET", &path, &[], "").await.unwrap();
        let (parts, body) = res.into_parts();
        use http_body_util::BodyExt;
        Resp { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
    })
    .await
    .expect("request timed out")
}

/// A second or two of classic rendering per part on one thread (three workers on two cores).
const SLOW: &str = "width=32&height=60&spp=1024&engine=classic&seed=1";

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_render_has_its_part_retried_elsewhere() {
    let c = cluster(3, &[]);
    let addr = c.coordinator.addr;
    let want = tokio::task::spawn_blocking(|| local(SLOW));
    let res = tokio::spawn(get_slow(addr, format!("/?{SLOW}&parts=3")));
    // Part 0 goes to the first worker (a job's parts go round-robin from its first endpoint):
    // kill it while it renders. Its retry goes to the next worker.
    wait_active(c.workers[0].addr, |a| a >= 1, Duration::from_secs(10)).await;
    c.workers[0].signal("KILL");
    let res = res.await.unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == want.await.unwrap(), "the image after a retry differs");
    let lines = c.coordinator.lines_once(|l| l.contains("fan-out done"));
    assert!(lines.iter().any(|l| l.contains("part failed") && l.contains("retry=true")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("fan-out done") && l.contains("retries=1")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_worker_is_overtaken_by_a_hedged_duplicate() {
    // The stall is a frozen process (SIGSTOP): its connection stays open and silent. The part
    // timeout is far away, so only the hedge can finish the image in time.
    let c = cluster(3, &[("FANOUT_PART_TIMEOUT_SECS", "600")]);
    let addr = c.coordinator.addr;
    let want = tokio::task::spawn_blocking(|| local(SLOW));
    let t = Instant::now();
    let res = tokio::spawn(get_slow(addr, format!("/?{SLOW}&parts=3")));
    // Part 1 is on the second worker; its hedge goes to the third.
    wait_active(c.workers[1].addr, |a| a >= 1, Duration::from_secs(10)).await;
    // Past its first row (tens of ms), so its head is out and it counts as running.
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.workers[1].signal("STOP");
    let res = res.await.unwrap();
    c.workers[1].signal("CONT");
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == want.await.unwrap(), "the hedged image differs");
    assert!(t.elapsed() < Duration::from_secs(60), "took {:?}", t.elapsed());
    let lines = c.coordinator.lines_once(|l| l.contains("fan-out done"));
    assert!(lines.iter().any(|l| l.contains("sending a duplicate") && l.contains("part=1")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("part done") && l.contains("attempt=\"hedge\"")), "{lines:#?}");
    // At least the stalled part's duplicate: on two loaded cores another part may be slow
    // enough to get one too.
    let duplicates = lines.iter().find(|l| l.contains("fan-out done")).and_then(|l| {
        let n = l.split("duplicates=").nth(1)?;
        n.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u32>().ok()
    });
    assert!(duplicates.is_some_and(|n| n >= 1), "{lines:#?}");
}

/// Also: the worker URLs' queries (a gateway's token) are never logged.
#[tokio::test(flavor = "multi_thread")]
async fn every_worker_down_is_a_502_naming_the_part_before_the_head() {
    // Two ports that nothing listens on.
    let ports: Vec<_> = (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let urls: Vec<String> =
        ports.iter().map(|l| format!("http://{}/w?token=secret-t", l.local_addr().unwrap())).collect();
    drop(ports);
    let urls = urls.join(",");
    let p = Proc::spawn(&[("FANOUT_URL", &urls), ("FANOUT_RETRIES", "2")]);
    let res = get(p.addr, "/?width=16&height=9&parts=3").await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    let j = res.json();
    assert!(j["part"].is_u64() && j["rows"].is_string(), "{j}");
    assert!(j["error"].as_str().unwrap().contains("refused"), "{j}");
    assert_eq!(get(p.addr, "/healthz").await.json()["active"], 0);
    let lines = p.lines();
    assert!(lines.iter().any(|l| l.contains("part failed") && l.contains("/w?[redacted]")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("secret")) && !j.to_string().contains("secret"), "{lines:#?}");
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> f64 {
    let v = line.split(&format!(" {name}=")).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
    v.split(' ').next().unwrap().parse().unwrap()
}

/// `parts_ms` is what rendering the parts cost: a part's wait in a worker's queue is left out (the
/// worker says how long it was), its first row is not (the response head comes after it).
#[tokio::test(flavor = "multi_thread")]
async fn a_parts_wait_in_a_workers_queue_is_not_counted_as_rendering() {
    let c = cluster(1, &[]);
    let worker = c.workers[0].addr;
    let plain = get(worker, "/?width=8&height=8&spp=4").await;
    assert!(plain.header("x-render-queued-ms").parse::<u64>().unwrap() < 100, "{:?}", plain.headers);
    // One row of 1.6M samples on the worker's one slot: a second or more.
    let blocker = tokio::spawn(get_slow(worker, "/?width=48&height=1&spp=32768&engine=classic".into()));
    wait_active(worker, |a| a >= 1, Duration::from_secs(10)).await;
    let q = "width=16&height=8&spp=4";
    let res = get(c.coordinator.addr, &format!("/?{q}&parts=1")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == local(q));
    assert_eq!(blocker.await.unwrap().status, StatusCode::OK);
    let lines = c.coordinator.lines_once(|l| l.contains("fan-out done"));
    let done =
        lines.iter().find(|l| l.contains("fan-out done")).unwrap_or_else(|| panic!("no summary line: {lines:#?}"));
    let (parts, requests) = (field(done, "parts_ms"), field(done, "requests_ms"));
    assert!(requests > 500.0 && parts < requests - 400.0, "{done}");
    // A band of one row of 0.8M samples: all of its time is rendering, though its head comes
    // only at its end.
    let q = "width=48&height=1&spp=16384&engine=classic";
    assert_eq!(get(c.coordinator.addr, &format!("/?{q}&parts=1")).await.status, StatusCode::OK);
    let second = |l: &str| l.contains("fan-out done") && l != done;
    let lines = c.coordinator.lines_once(second);
    let done = lines.iter().find(|l| second(l)).unwrap_or_else(|| panic!("no second summary line: {lines:#?}"));
    let (parts, requests) = (field(done, "parts_ms"), field(done, "requests_ms"));
    assert!(requests > 200.0 && parts > requests * 0.8, "{done}");
}

/// A self-hosted pool with fewer render slots than parts: one worker, one slot, no queue.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_workers_refusals_are_waited_out_not_counted_as_failures() {
    let worker = Proc::spawn(&[
        ("RENDER_THREADS", "1"),
        ("RENDER_CONCURRENCY", "1"),
        ("RENDER_QUEUE", "0"),
        ("SHED_DELAY_MS", "0"),
        ("RETRY_AFTER_SECS", "1"),
    ]);
    let url = format!("http://{}/", worker.addr);
    // No retries at all: only the waits for a busy worker can finish an image.
    let coordinator =
        |timeout| Proc::spawn(&[("FANOUT_URL", &url), ("FANOUT_RETRIES", "0"), ("FANOUT_PART_TIMEOUT_SECS", timeout)]);

    // Busy for minutes with a request of its own: every part is refused with `Retry-After: 1`,
    // and waited out until the part timeout has passed, then the fan-out fails (no head yet),
    // with the pool's 503 and `Retry-After`, naming the part.
    let (busy, head) = start_get(worker.addr, "/?width=32&height=600&spp=4096&engine=classic", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let t = Instant::now();
    let res = get(coordinator("3").addr, "/?width=16&height=8&parts=2").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", res.body);
    assert_eq!(res.header("retry-after"), "1");
    assert!(res.json()["part"].is_u64() && res.json()["error"].as_str().unwrap().contains("503"), "{}", res.json());
    let took = t.elapsed();
    assert!(took > Duration::from_millis(1500) && took < Duration::from_secs(10), "failed after {took:?}");
    drop(busy);
    wait_active(worker.addr, |a| a == 0, Duration::from_secs(5)).await;

    // Four parts of about 0.2 s each at once: one renders, three are refused, and one comes back
    // as each part ends.
    let coordinator = coordinator("120");
    let q = "width=48&height=64&spp=256&engine=classic&seed=2";
    let want = tokio::task::spawn_blocking(move || local(q));
    let res = get(coordinator.addr, &format!("/?{q}&parts=4")).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.body);
    assert!(res.body == want.await.unwrap(), "the image differs");
    let lines = coordinator.lines_once(|l| l.contains("fan-out done"));
    let done = lines.iter().rfind(|l| l.contains("fan-out done")).expect("a summary line");
    assert!(done.contains("retries=0") && !done.contains("busy=0"), "{lines:#?}");
    // Logged as what it is, not as a failure.
    assert!(lines.iter().any(|l| l.contains(" INFO ") && l.contains("part refused: the worker is busy")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("part failed")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_stops_every_part() {
    let c = cluster(3, &[]);
    // Minutes of rendering per part.
    let (stream, head) =
        start_get(c.coordinator.addr, "/?width=32&height=600&spp=4096&engine=classic&parts=3", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for w in &c.workers {
        wait_active(w.addr, |a| a == 1, Duration::from_secs(10)).await;
    }
    drop(stream);
    for w in &c.workers {
        wait_active(w.addr, |a| a == 0, Duration::from_secs(5)).await;
    }
    wait_active(c.coordinator.addr, |a| a == 0, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_are_refused_without_workers_over_the_caps_and_inside_a_part() {
    let plain = start(config()).await;
    let res = get(plain.addr, "/?width=8&height=8&parts=2").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["param"], "parts");
    assert!(res.json()["error"].as_str().unwrap().contains("FANOUT_URL"));

    let mut cfg = config();
    cfg.fanout = Fanout { urls: vec![format!("http://{}/", plain.addr)], ..Fanout::default() };
    cfg.limits.max_parts = 4;
    let coordinator = start(cfg).await;
    let res = get(coordinator.addr, "/?width=8&height=8&parts=5").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["param"], "parts");
    assert!(res.json()["error"].as_str().unwrap().contains("1 to 4"), "{}", res.json());
    // A part may not fan out again.
    let res = call(coordinator.addr, "GET", "/?width=8&height=8&parts=2", &[("x-render-part", "abc.p0")], "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["param"], "parts");
    assert!(res.json()["error"].as_str().unwrap().contains("part"));
    // SCF's response cap holds for the merged image: refused before any part is sent.
    let res =
        call(coordinator.addr, "GET", "/?width=2000&height=1500&parts=2", &[("x-scf-request-id", "r1")], "").await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.json()["param"], "format");
    // The coordinator's memory: 8192×8192 PFM in 2 parts would hold 2 bands of 403 MB.
    let res = get(coordinator.addr, "/?width=8192&height=8192&format=pfm&parts=2").await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.json()["param"], "parts");
    let e = res.json()["error"].as_str().unwrap().to_string();
    assert!(e.contains("2 bands of up to 402653") && e.contains("more parts"), "{e}");
    // Bands held at once are `parts`, at most FANOUT_CONCURRENCY: 32×32 PFM in two bands of
    // 6 KB is over 8000 bytes; PPM in four bands of 0.8 KB, two at a time, is under it.
    let mut cfg = config();
    cfg.fanout = Fanout {
        urls: vec![format!("http://{}/", plain.addr)],
        concurrency: 2,
        max_buffer_bytes: 8000,
        ..Fanout::default()
    };
    let small = start(cfg).await;
    let res = get(small.addr, "/?width=32&height=32&format=pfm&parts=2").await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", res.json());
    for q in ["width=32&height=32&format=ppm&parts=4", "width=32&height=32&format=ppm&parts=32"] {
        let res = get(small.addr, &format!("/?{q}")).await;
        assert_eq!(res.status, StatusCode::OK, "{q}");
        assert!(res.body == local(q), "{q}");
    }
    // A bad band: 400 naming `rows` and the form.
    let res = get(plain.addr, "/?height=10&rows=5-11").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["param"], "rows");
    assert!(res.json()["error"].as_str().unwrap().contains("A-B"), "{}", res.json());
    // A plain band request is still served there.
    let res =
        call(coordinator.addr, "GET", "/?width=8&height=8&rows=2-5&engine=classic", &[("x-render-part", "abc.p0")], "")
            .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body == local("width=8&height=8&rows=2-5&engine=classic"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_bounds_the_whole_fan_out() {
    // A first row that takes seconds (2000 px at classic spp 4096): the 2 s deadline passes
    // before the head, so 504, and every part's render stops.
    let c = cluster(2, &[("RENDER_TIMEOUT_SECS", "2")]);
    let t = Instant::now();
    let res = get(c.coordinator.addr, "/?width=2000&height=40&spp=4096&engine=classic&parts=2").await;
    assert_eq!(res.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", res.body);
    assert!(t.elapsed() < Duration::from_secs(8), "took {:?}", t.elapsed());
    for w in &c.workers {
        wait_active(w.addr, |a| a == 0, Duration::from_secs(5)).await;
    }
    wait_active(c.coordinator.addr, |a| a == 0, Duration::from_secs(5)).await;
}

mod tls {
    //! An HTTPS endpoint in front of a worker: TLS with a certificate from a test CA, and a gate
    //! that, like a JWT-protected trigger, answers 401 to a connection whose first request lacks
    //! the expected `Authorization`.
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub const TOKEN: &str = "Bearer part-token-123";

    /// The CA's PEM, and a running endpoint forwarding to `backend`.
    pub async fn endpoint(backend: SocketAddr) -> (String, SocketAddr) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "fan-out test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    gate(tls, backend).await;
                });
            }
        });
        (ca.pem(), addr)
    }

    async fn gate(mut tls: tokio_rustls::server::TlsStream<TcpStream>, backend: SocketAddr) {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        if !text.contains(&format!("authorization: {}", TOKEN.to_ascii_lowercase())) {
            let body = r#"{"error":"unauthorized"}"#;
            let res = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(res.as_bytes()).await;
            let _ = tls.shutdown().await;
            return;
        }
        let Ok(mut up) = TcpStream::connect(backend).await else { return };
        if up.write_all(&head).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_workers_with_a_private_ca_and_the_callers_authorization() {
    let worker = Proc::spawn(&[("RENDER_THREADS", "1")]);
    let (ca_pem, endpoint) = tls::endpoint(worker.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = format!("https://localhost:{}/", endpoint.port());
    let q = "width=24&height=17&spp=4&engine=classic&format=png";
    let trusted = Proc::spawn(&[("FANOUT_URL", &url), ("FANOUT_CA_FILE", ca_file.to_str().unwrap())]);
    // Without the caller's Authorization the gate refuses the parts: 502 naming a part. (The gate
    // checks the first request of each connection and closes on a refusal, so this comes first.)
    let res = get(trusted.addr, &format!("/?{q}&parts=3")).await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    assert!(res.json()["error"].as_str().unwrap().contains("401"), "{}", res.json());
    let res = call(trusted.addr, "GET", &format!("/?{q}&parts=3"), &[("authorization", tls::TOKEN)], "").await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.body);
    assert!(res.body == local(q), "the image over HTTPS differs");
    // Without the CA, the certificate is not trusted.
    let untrusting = Proc::spawn(&[("FANOUT_URL", &url), ("FANOUT_RETRIES", "0")]);
    let res = call(untrusting.addr, "GET", &format!("/?{q}&parts=2"), &[("authorization", tls::TOKEN)], "").await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    assert!(res.json()["error"].as_str().unwrap().to_lowercase().contains("certificate"), "{}", res.json());
}

/// A worker whose engines are another build (one not yet updated, or a `FANOUT_URL` naming
/// another deployment) has its parts retried on the others, never merged: its bytes may differ.
/// The other build is a real worker behind a proxy on 127.0.0.1 that renames its
/// `x-render-build`, as such a worker would answer.
#[tokio::test(flavor = "multi_thread")]
async fn parts_of_another_build_are_retried_never_merged() {
    use http_body_util::Full;
    let (same, other) = (Proc::spawn(&[("RENDER_THREADS", "1")]), Proc::spawn(&[("RENDER_THREADS", "1")]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let target = other.addr;
    tokio::spawn(async move {
        // Bounded: the test makes a few dozen requests at most.
        for _ in 0..200 {
            let Ok((stream, _)) = listener.accept().await else { return };
            let serve = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| async move {
                let path = req.uri().path_and_query().map_or("/".to_owned(), |p| p.to_string());
                let headers: Vec<(String, String)> = req
                    .headers()
                    .iter()
                    .filter(|(k, _)| *k != "host")
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let res = call(target, req.method().as_str(), &path, &headers, "").await;
                let mut out = hyper::Response::new(Full::new(res.body));
                *out.status_mut() = res.status;
                *out.headers_mut() = res.headers;
                out.headers_mut().remove("transfer-encoding");
                out.headers_mut().insert("x-render-build", hyper::header::HeaderValue::from_static("0000000000000000"));
                Ok::<_, std::convert::Infallible>(out)
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, serve));
        }
    });
    let urls = format!("http://{}/,http://{proxy}/", same.addr);
    let coordinator = Proc::spawn(&[("FANOUT_URL", urls.as_str()), ("RENDER_THREADS", "1")]);
    // Through the proxy, the other worker's own render names the other build.
    let q = "/?width=61&height=37&spp=8&seed=5&engine=nee";
    let through = get(proxy, q).await;
    assert_eq!((through.status, through.header("x-render-build")), (StatusCode::OK, "0000000000000000"));
    assert_eq!(get(same.addr, q).await.header("x-render-build"), render::BUILD);
    for engine in ["nee", "classic"] {
        let q = format!("width=61&height=37&spp=8&seed=5&engine={engine}");
        let res = get(coordinator.addr, &format!("/?{q}&parts=6")).await;
        assert_eq!(res.status, StatusCode::OK, "{engine}: {:?}", res.body);
        // (The proxied worker is this build under another name, so either build's bytes are these.)
        assert!(res.body == local(&q), "{engine}: the merged image differs from a one-process render");
    }
    let lines = coordinator.lines();
    let refused: Vec<&String> = lines.iter().filter(|l| l.contains("part failed") && l.contains("build")).collect();
    assert!(refused.len() >= 3 && refused.iter().all(|l| l.contains("retry=true")), "{lines:#?}");
}

/// A pool with fewer places than the fan-out's window, taken only by the fan-out's own parts
/// (two workers, one place each, no queue): a band refused as busy asks again as soon as one of
/// the fan-out's parts ends, rather than after its backoff, so the bands are refused in the first
/// round and about once each. (On backoffs alone, doubling to 2 s while the workers idled, they
/// were refused about seven times each, and 32 parts that render in 0.1 s took 20 s: BENCHMARKS.)
#[tokio::test(flavor = "multi_thread")]
async fn bands_refused_by_a_full_pool_ask_again_when_a_part_ends() {
    let one_place = [("RENDER_THREADS", "1"), ("RENDER_CONCURRENCY", "1"), ("RENDER_QUEUE", "0")];
    let workers: Vec<Proc> = (0..2).map(|_| Proc::spawn(&one_place)).collect();
    let urls: Vec<String> = workers.iter().map(|w| format!("http://{}/", w.addr)).collect();
    let coordinator = Proc::spawn(&[("FANOUT_URL", &urls.join(",")), ("FANOUT_RETRIES", "0")]);
    let parts = 24;
    let q = "width=32&height=48&spp=16&seed=4";
    let want = local(q);
    let res = get(coordinator.addr, &format!("/?{q}&parts={parts}")).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.body);
    assert!(res.body == want, "the image differs");
    let lines = coordinator.lines_once(|l| l.contains("fan-out done"));
    let done = lines.iter().find(|l| l.contains("fan-out done")).expect("a summary line");
    let busy = field(done, "busy");
    assert!(done.contains("retries=0") && busy <= (2 * parts) as f64, "{lines:#?}");
}

/// A pool with a dead endpoint beside a full one (one place, no queue): the dead one refuses its
/// first connections and is then passed over for a while, so its refusals cannot spend a band's
/// retries between the busy refusals that do not count. (Asked in turn, every band alternated
/// between the two, and 16 parts failed the render with a 502.)
#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_refuses_connections_is_passed_over_while_another_answers() {
    let worker = Proc::spawn(&[("RENDER_THREADS", "1"), ("RENDER_CONCURRENCY", "1"), ("RENDER_QUEUE", "0")]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let urls = format!("http://{}/,http://{dead}/", worker.addr);
    let coordinator = Proc::spawn(&[("FANOUT_URL", &urls)]);
    for (parts, seed) in [(16, 5), (32, 6)] {
        let q = format!("width=32&height=64&spp=16&seed={seed}");
        let res = get(coordinator.addr, &format!("/?{q}&parts={parts}")).await;
        assert_eq!(res.status, StatusCode::OK, "parts={parts}: {:?}", res.body);
        assert!(res.body == local(&q), "parts={parts}: the image differs");
    }
    let lines = coordinator.lines_once(|l| l.contains("fan-out done") && l.contains("parts=32"));
    let refused = lines.iter().filter(|l| l.contains("part failed") && l.contains(&dead.to_string())).count();
    assert!((1..=32).contains(&refused), "{lines:#?}");
}
