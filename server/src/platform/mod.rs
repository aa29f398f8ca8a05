//! The platforms the server answers for, one file each: Alibaba FC, Tencent SCF, Huawei
//! FunctionGraph, and plain HTTP (`/healthz`, and the render path every platform shares). A
//! [`Platform`] owns its request headers (id, timeout), its own paths and what they do, how an
//! event's answer goes back (the image as is, or an envelope), its response cap and its log
//! markers. Adding one is a new file and a row of [`ALL`]. A leaf: it knows nothing of the
//! service that routes by it.

mod fc;
mod functiongraph;
mod http;
mod scf;

use hyper::{HeaderMap, Method};

/// Largest synchronous response SCF and FunctionGraph pass back: both reject more than 6 MB; a
/// little under it leaves room for headers and the platform's own framing.
pub const SYNC_RESPONSE_CAP: u64 = 6_000_000;

/// What a platform's own path asks for.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    /// `/healthz`: the server's state.
    Health,
    /// What browsers and other agents ask for on their own, which the service has none of (an
    /// icon, `/.well-known/` metadata): a 404 saying `why`, where each used to render a default
    /// 1024×768 image.
    Nothing {
        /// The error message.
        why: &'static str,
    },
    /// `/robots.txt`, which crawlers read before anything else: every path here is a render,
    /// so none is for them.
    Robots,
    /// A lifecycle hook, answered 200 at once; with `drain`, only once running renders finished
    /// (bounded by the grace period).
    Hook {
        /// The phase's name in the log markers.
        phase: &'static str,
        /// Wait for in-flight renders first.
        drain: bool,
    },
    /// FunctionGraph's initializer: `{"status": "initialized"}`.
    Initialized,
    /// An event: the body is a JSON render request, answered as `Reply` says.
    Event(Reply),
}

/// How an event's answer goes back.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// The image is the response; an error is a JSON error response, with `error_header` added
    /// (FC reads `x-fc-status` to tell a function error from a result).
    Raw {
        /// A header (name, value) every error answer carries.
        error_header: Option<(&'static str, &'static str)>,
    },
    /// Always 200, the outcome in a JSON envelope (the image in base64).
    Envelope(Envelope),
}

/// A JSON envelope around an event's outcome.
#[derive(Clone, Copy, Debug)]
pub struct Envelope {
    /// The envelope of an image of this content type.
    pub image: fn(content_type: &str, image: &[u8]) -> serde_json::Value,
    /// The envelope of an error with this HTTP status and JSON body.
    pub error: fn(status: u16, body: &serde_json::Value) -> serde_json::Value,
}

/// One platform's contract.
pub trait Platform: Sync {
    /// Its name in logs.
    fn name(&self) -> &'static str;
    /// The header its requests carry their id in.
    fn request_id_header(&self) -> Option<&'static str> {
        None
    }
    /// The header its requests carry the call's timeout in (seconds, or milliseconds above an hour).
    fn timeout_header(&self) -> Option<&'static str> {
        None
    }
    /// Whether a request with these headers came through this platform.
    fn sent(&self, headers: &HeaderMap) -> bool {
        self.request_id_header().is_some_and(|h| headers.contains_key(h))
    }
    /// The largest response the platform passes back, if it has a limit.
    fn response_cap(&self) -> Option<u64> {
        None
    }
    /// What `method path` (with these headers) does if `path` is one of the platform's own:
    /// `Some(Ok(call))`, or `Some(Err(allow))` for a method the path does not take (a 405
    /// listing `allow`); `None` for a path that is not the platform's.
    fn route(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Result<Call, &'static str>>;
    /// The line marking the start (or end) of an invocation's `phase` for request `id`, if the
    /// platform reads one from stdout.
    fn marker(&self, _phase: &str, _id: &str, _start: bool) -> Option<String> {
        None
    }
}

/// Every platform, in the order requests are matched against them: FunctionGraph before FC,
/// since both call `POST /invoke` and only FunctionGraph's headers tell them apart.
pub static ALL: [&dyn Platform; 4] = [&functiongraph::FunctionGraph, &fc::Fc, &scf::Scf, &http::Http];

/// The platform a request with these headers came through (plain HTTP if none claims it).
pub fn of(headers: &HeaderMap) -> &'static dyn Platform {
    ALL.iter().copied().find(|p| p.sent(headers)).unwrap_or(&http::Http)
}

/// The call `method path` makes on some platform's own path, if it is one.
pub fn route(method: &Method, path: &str, headers: &HeaderMap) -> Option<Result<Call, &'static str>> {
    ALL.iter().find_map(|p| p.route(method, path, headers))
}

/// Every platform's request-id header, in [`ALL`]'s order, then the generic `x-request-id`.
pub fn request_id_headers() -> impl Iterator<Item = &'static str> {
    ALL.iter().filter_map(|p| p.request_id_header()).chain(["x-request-id"])
}

/// Every platform's timeout header.
pub fn timeout_headers() -> impl Iterator<Item = &'static str> {
    ALL.iter().filter_map(|p| p.timeout_header())
}

/// Writes every platform's start marker for `phase` of request `id` now, and its end marker when
/// dropped. Written verbatim to stdout (not through the log formatter): platforms match the text.
pub struct Markers {
    phase: &'static str,
    id: String,
}

impl Markers {
    /// Marks the start of `phase` of request `id`.
    pub fn start(phase: &'static str, id: &str) -> Markers {
        write_markers(phase, id, true);
        Markers { phase, id: id.to_owned() }
    }
}

impl Drop for Markers {
    fn drop(&mut self) {
        write_markers(self.phase, &self.id, false);
    }
}

fn write_markers(phase: &str, id: &str, start: bool) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for line in ALL.iter().filter_map(|p| p.marker(phase, id, start)) {
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(names: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for n in names {
            h.insert(*n, HeaderValue::from_static("x"));
        }
        h
    }

    #[test]
    fn each_platform_claims_its_own_requests_and_paths() {
        assert_eq!(of(&headers(&["x-fc-request-id"])).name(), "fc");
        assert_eq!(of(&headers(&["x-scf-request-id"])).name(), "scf");
        assert_eq!(of(&headers(&["x-cff-request-id"])).name(), "functiongraph");
        assert_eq!(of(&headers(&[])).name(), "http");
        let post = |path, h: &[&'static str]| route(&Method::POST, path, &headers(h));
        assert!(matches!(post("/invoke", &["x-cff-request-id"]), Some(Ok(Call::Event(Reply::Envelope(_))))));
        assert!(matches!(post("/invoke", &[]), Some(Ok(Call::Event(Reply::Raw { error_header: Some(_) })))));
        // FC's own console calls carry x-fc-control-path: FC's /invoke even with FunctionGraph's id.
        assert!(matches!(
            post("/invoke", &["x-cff-request-id", "x-fc-control-path"]),
            Some(Ok(Call::Event(Reply::Raw { .. })))
        ));
        assert!(matches!(post("/event-invoke", &[]), Some(Ok(Call::Event(Reply::Raw { error_header: None })))));
        assert!(matches!(post("/pre-stop", &[]), Some(Ok(Call::Hook { drain: true, .. }))));
        assert!(matches!(post("/init", &[]), Some(Ok(Call::Initialized))));
        assert!(matches!(route(&Method::PUT, "/healthz", &headers(&[])), Some(Err("GET, HEAD"))));
        assert!(matches!(route(&Method::GET, "/invoke", &headers(&[])), Some(Err("POST"))));
        assert!(post("/anything", &[]).is_none());
        assert_eq!(request_id_headers().last(), Some("x-request-id"));
        assert_eq!(timeout_headers().count(), 3);
    }
}
