//! Test helpers: an in-process server on 127.0.0.1:0, a small real HTTP/1.1 client (and raw
//! HTTP/1.0 exchanges), the server binary as a process, and nginx in front of a server.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use server::Config;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Longest any single test request may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub const REFERENCE_64X48: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/smallpt-64x48-4spp.ppm");

/// A server running in this process; shut down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A config for tests: two render threads, short grace.
pub fn config() -> Config {
    Config { render_threads: 2, shutdown_grace: Duration::from_secs(2), ..Config::default() }
}

pub async fn start(config: Config) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        server::run(
            listener,
            config,
            async {
                let _ = rx.await;
            },
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    TestServer { addr, stop: Some(tx) }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

/// One kept-alive client connection.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Conn { send, addr }
    }

    /// Sends a request; the response head only.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> hyper::Result<hyper::Response<hyper::body::Incoming>> {
        let mut req = Request::builder().method(method).uri(path).header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        self.send.ready().await?;
        self.send.send_request(req).await
    }

    /// Sends a request and reads the whole response.
    pub async fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        tokio::time::timeout(TIMEOUT, async {
            let res = self.send(method, path, headers, body).await.unwrap();
            let (parts, body) = res.into_parts();
            Resp { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
        })
        .await
        .expect("request timed out")
    }
}

/// One request on a fresh connection.
pub async fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    Conn::open(addr).await.call(method, path, headers, body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    call(addr, "GET", path, &[], "").await
}

/// The classic engine's bytes for a small request, rendered in-process.
pub fn render_local(query: &str) -> Vec<u8> {
    let req = render::RenderRequest::from_query(query, &render::Limits::DEFAULT).unwrap();
    render::render_to_vec(&req, &render::RenderOptions::default()).unwrap().0
}

/// Sends `request` verbatim on a new connection and reads until the response head is complete
/// (or the connection closes). Returns the stream and what was read.
pub async fn raw(addr: SocketAddr, request: &str) -> (TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(TIMEOUT, async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("no response head");
    (stream, String::from_utf8_lossy(&got).into_owned())
}

/// An HTTP/1.0 exchange read to the connection's end: the status line and headers (lower-case),
/// and the body as it arrived, however it ended.
pub async fn http10(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("{method} {path} HTTP/1.0\r\nHost: t\r\n{extra}\r\n").as_bytes()).await.unwrap();
    let mut got = Vec::new();
    // A connection the server aborts ends in an error after the bytes it sent; they are kept.
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut got)).await.expect("the answer never ended").ok();
    let head_len = got.windows(4).position(|w| w == b"\r\n\r\n").expect("no response head") + 4;
    let body = got.split_off(head_len);
    (String::from_utf8_lossy(&got).to_ascii_lowercase(), body)
}

/// The value of header `name` (lower-case) in a head as [`http10`] returns it.
pub fn head_value<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// Starts a GET of `path` and returns once its response head arrived.
pub async fn start_get(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, String) {
    raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n")).await
}

/// A render long enough (about two minutes on two cores) that finishing it is never what a
/// test sees, with rows short enough (32 px at spp 4096) that cancelling takes a fraction of a
/// second.
pub const LONG: &str = "/?width=32&height=2000&spp=4096&engine=classic";

/// A render a deadline of a second or two cuts short after its head: rows of 8 pixels are quick
/// even on a busy machine, 8000 of them at classic spp 4096 are not. Its PPM's length in
/// [`CUT_PPM_BYTES`].
pub const CUT: &str = "/?width=8&height=8000&spp=4096&engine=classic";

/// The length of [`CUT`]'s whole PPM.
pub const CUT_PPM_BYTES: usize = "P6\n8 8000\n255\n".len() + 8 * 8000 * 3;

/// Polls /healthz until no render is active; the time it took.
pub async fn wait_idle(addr: SocketAddr, within: Duration) -> Duration {
    let t = std::time::Instant::now();
    loop {
        let h = get(addr, "/healthz").await.json();
        if h["active"] == 0 {
            return t.elapsed();
        }
        assert!(t.elapsed() < within, "renders still active after {within:?}: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls /healthz until `n` renders are queued.
pub async fn wait_queued(addr: SocketAddr, n: u64) {
    let t = std::time::Instant::now();
    while get(addr, "/healthz").await.json()["queued"] != n {
        assert!(t.elapsed() < TIMEOUT, "never {n} queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The binary, running, its stdout collected line by line.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    pub started: Duration,
}

impl Drop for Proc {
    /// A test that fails midway leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn spawn(env: &[(&str, &str)]) -> Proc {
        Proc::spawn_with(&[], env)
    }

    /// [`Proc::spawn`] with command-line arguments.
    pub fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let t = Instant::now();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.args(args).env_clear().env("PORT", "0").env("RENDER_THREADS", "2").envs(env.iter().copied());
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).current_dir("/").spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            // Split on bytes, not `lines()`: a line that is not UTF-8 would end `lines()`, and every
            // line after it would silently go missing.
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                if let Some(port) = listening_port(&line) {
                    let _ = port_tx.send(port);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = port_rx.recv_timeout(Duration::from_secs(10)).expect("no `listening` line");
        Proc { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), lines, started: t.elapsed() }
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends `kill -<sig>` (TERM, KILL, STOP, CONT).
    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
    }

    /// The stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Every stdout line once one satisfies `pred` (polled for up to [`TIMEOUT`]: a line logged
    /// as a response ends may reach the pipe after the client has read the response, and later
    /// still when the tests running beside it load both cores).
    pub fn lines_once(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let t = Instant::now();
        loop {
            let lines = self.lines();
            if lines.iter().any(|l| pred(l)) || t.elapsed() > TIMEOUT {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) for the exit; returns its code and every stdout line.
    pub fn wait(mut self, within: Duration) -> (Option<i32>, Vec<String>) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > within {
                let _ = self.child.kill();
                panic!("server did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.lines.lock().unwrap().clone();
        (status.code(), lines)
    }
}

/// The port of a `listening` log line, text (`addr=0.0.0.0:N`) or JSON (`"addr":"0.0.0.0:N"`).
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening") {
        return None;
    }
    let rest = &line[line.find("0.0.0.0:")? + 8..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// nginx in front of `upstream` with its defaults for a proxied location (HTTP/1.0 to the
/// server, responses buffered), as a user would put it before the service; stopped when dropped.
/// Needs Debian's nginx (`.ci/run` installs it); `NGINX` names another binary.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    pub fn start(upstream: SocketAddr) -> Nginx {
        let bin = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing: install Debian's nginx (`apt-get install nginx`, as .ci/run does)"
        );
        // A port free a moment ago may be taken again before nginx binds it: then another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().display();
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let conf = format!(
                "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
                 events {{ worker_connections 64; }}
                 http {{
                     access_log off;
                     client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
                     uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
                     server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://{upstream}; }} }}
                 }}"
            );
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let error_log = dir.path().join("error.log");
            let mut child = Command::new(&bin)
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(&error_log)
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .spawn()
                .expect("nginx starts");
            // nginx writes its pid file once its socket is bound.
            let t = Instant::now();
            let exited = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if dir.path().join("nginx.pid").exists() {
                    return Nginx { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), _dir: dir };
                }
                assert!(t.elapsed() < Duration::from_secs(10), "nginx never started");
                std::thread::sleep(Duration::from_millis(10));
            };
            let log = std::fs::read_to_string(&error_log).unwrap_or_default();
            assert!(log.contains("Address already in use"), "nginx exited ({exited}): {log}");
        }
        panic!("no free port for nginx in five tries");
    }
}
