//! Request handling: each platform's own paths (as [`platform::route`] calls them), the render
//! path every other path is, and the render call shared by all of them.

use crate::body::Body;
use crate::config::Config;
use crate::error::{AppError, json_response};
use crate::platform::{self, Call, Markers, Platform, Reply};
use crate::renderer::{CancelOnDrop, Failure, Renderer};
use crate::{etag, fanout};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{
    CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue,
    TRANSFER_ENCODING,
};
use hyper::{Method, Request, Response, StatusCode};
use render::request::Param;
use render::{CancelToken, Format, RenderRequest, RequestError, encode, progressive};
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracing::{Instrument, debug, info, warn};

/// Response header: the spp actually rendered.
pub const SPP_HEADER: &str = "x-render-spp";
/// Response header: the engine that rendered.
pub const ENGINE_HEADER: &str = "x-render-engine";
/// Response header: the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Shared by every connection.
pub struct State {
    /// The settings.
    pub config: Config,
    /// The render pool and its queue.
    pub renderer: Arc<Renderer>,
    /// The fan-out's workers, when `FANOUT_URL` is set.
    pub fanout: Option<Arc<fanout::Pool>>,
}

/// What one request knows about itself.
struct Ctx {
    id: String,
    deadline: Instant,
    /// The platform the request came through.
    platform: &'static dyn Platform,
    /// `x-render-part`: this request is a part of that fan-out.
    part_of: Option<String>,
    /// The caller's `Authorization`, forwarded to a fan-out's parts.
    authorization: Option<HeaderValue>,
    /// The request is HTTP/1.0: an answer whose length is not known before rendering is held
    /// whole and sent with its length ([`holds_whole`]).
    http10: bool,
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", id = %id);
    let cors = crate::cors::Asked::of(req.method(), req.headers());
    let mut res = dispatch(&state, req, &id).instrument(span).await;
    state.config.cors.answer(&cors, res.headers_mut());
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    Ok(res)
}

async fn dispatch(state: &State, req: Request<Incoming>, id: &str) -> Response<Body> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    debug!(%method, path = %path, headers = %redacted(req.headers()), "request");
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > state.config.max_uri_bytes {
        return AppError::UriTooLong { max: state.config.max_uri_bytes }.into_response();
    }
    let ctx = Ctx {
        id: id.to_owned(),
        deadline: Instant::now() + deadline_for(&state.config, req.headers()),
        platform: platform::of(req.headers()),
        // Logged, so kept to the request-id alphabet: a caller cannot write into the log through it.
        part_of: req.headers().get(fanout::PART_HEADER).map(|v| {
            let v = v.to_str().unwrap_or("");
            v.chars().filter(|c| c.is_ascii() && is_id_byte(*c as u8)).take(MAX_ID_LEN).collect()
        }),
        authorization: req.headers().get(hyper::header::AUTHORIZATION).cloned(),
        http10: req.version() == hyper::Version::HTTP_10,
    };
    let result = match platform::route(&method, &path, req.headers()) {
        Some(Ok(Call::Health)) => Ok(health(state)),
        Some(Ok(Call::Nothing { why })) => Ok(nothing(why)),
        Some(Ok(Call::Robots)) => Ok(robots()),
        Some(Ok(Call::Hook { phase, drain })) => Ok(hook(state, &ctx, phase, drain).await),
        Some(Ok(Call::Initialized)) => {
            info!(platform = ctx.platform.name(), "initializer called");
            Ok(json_response(StatusCode::OK, &serde_json::json!({"status": "initialized"})))
        }
        Some(Ok(Call::Event(reply))) => return event(state, &ctx, req, reply).await,
        Some(Err(allow)) if method == Method::OPTIONS => Ok(options(allow)),
        Some(Err(allow)) => Err(AppError::MethodNotAllowed { allow }),
        None if method == Method::GET && wants_viewer(req.headers(), req.uri().query()) => Ok(vary(viewer())),
        None if method == Method::GET || method == Method::POST => {
            let mut varies = false;
            // Kept before the request goes to `no_body`: the answer's tag needs the parameters.
            let conditions = etag::conditions(req.headers());
            let parsed = if method == Method::GET {
                let (query, negotiated) = negotiated_query(req.headers(), req.uri().query().unwrap_or(""));
                let query = query.into_owned();
                varies = negotiated;
                match no_body(state, req).await {
                    Ok(()) => RenderRequest::from_query(&query, &state.config.limits).map_err(AppError::from),
                    Err(e) => Err(e),
                }
            } else {
                let query = req.uri().query().unwrap_or("").to_owned();
                parse_body(state, req, &query).await
            };
            let tag = parsed.as_ref().ok().filter(|_| method == Method::GET).and_then(etag::of);
            // A client that has the image needs no render, and no place in the queue either.
            if let (Ok(r), Some(tag)) = (&parsed, &tag)
                && etag::none_match(&conditions, tag)
            {
                // An invocation like any other on the platforms' logs, though a short one.
                let _log = Markers::start("Invoke", &ctx.id);
                let res = not_modified(state, &ctx, r, tag.clone());
                return res.map_or_else(|e| log_error(e).into_response(), |res| if varies { vary(res) } else { res });
            }
            // Shed before anything else is done or logged (see `Renderer::shed`).
            if let Ok(r) = &parsed
                && let Some(e) = shed_if_full(state, r).await
            {
                return e.into_response();
            }
            let log = Markers::start("Invoke", &ctx.id);
            match parsed {
                Ok(r) => render(state, &ctx, r, false, tag, log).await.map(|res| if varies { vary(res) } else { res }),
                Err(e) => Err(e),
            }
        }
        None if method == Method::HEAD => head(state, &ctx, req.headers(), req.uri().query()),
        None if method == Method::OPTIONS => Ok(options(RENDER_METHODS)),
        None => Err(AppError::MethodNotAllowed { allow: RENDER_METHODS }),
    };
    result.unwrap_or_else(|e| log_error(e).into_response())
}

/// What a render path takes.
const RENDER_METHODS: &str = "GET, HEAD, POST";

/// The answer to OPTIONS on any path: its methods, nothing rendered. Load balancers' default
/// health checks send it (HAProxy's `option httpchk`: `OPTIONS / HTTP/1.0`), and a 405 marked
/// the server down. A browser's CORS preflight is one too: `handle` adds what `CORS_ALLOW_ORIGIN`
/// allows (`cors`).
fn options(methods: &'static str) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res.headers_mut().insert(hyper::header::ALLOW, crate::error::allow_header(methods));
    res
}

/// The viewer page, compiled in: one self-contained HTML file.
const VIEWER: &str = include_str!("viewer.html");

/// Whether a GET is a browser opening the function's URL: no query, and HTML accepted. Every
/// other client (curl's `*/*` among them) gets today's default image.
fn wants_viewer(headers: &HeaderMap, query: Option<&str>) -> bool {
    let html = accepted_types(headers).any(|t| t.eq_ignore_ascii_case("text/html"));
    html && query.is_none_or(str::is_empty)
}

/// A HEAD on a render path: the viewer's head, or the head of the image a GET would stream,
/// the request checked as for a GET (a 4xx names the parameter) but nothing queued or rendered.
/// A GET may still be answered otherwise: a full queue (503), a deadline, a failed render.
fn head(state: &State, ctx: &Ctx, headers: &HeaderMap, query: Option<&str>) -> Result<Response<Body>, AppError> {
    if wants_viewer(headers, query) {
        return Ok(vary(viewer()));
    }
    let (query, varies) = negotiated_query(headers, query.unwrap_or(""));
    let req = RenderRequest::from_query(&query, &state.config.limits)?;
    let tag = etag::of(&req);
    let res = match tag {
        Some(tag) if etag::none_match(&etag::conditions(headers), &tag) => not_modified(state, ctx, &req, tag)?,
        _ => {
            refuse(state, ctx, &req, false)?;
            let mut res = Response::new(Body::empty());
            image_headers(res.headers_mut(), &req);
            // A fan-out's GET has the tag only if its parts come from this build and arithmetic.
            if let Some(tag) = tag.filter(|_| req.parts.is_none()) {
                res.headers_mut().insert(ETAG, tag);
            }
            res
        }
    };
    Ok(if varies { vary(res) } else { res })
}

/// The answer to a GET or HEAD of `req` whose `If-None-Match` names `tag`, its image's: `304`,
/// nothing rendered or queued. A request the service would refuse is refused all the same.
fn not_modified(state: &State, ctx: &Ctx, req: &RenderRequest, tag: HeaderValue) -> Result<Response<Body>, AppError> {
    refuse(state, ctx, req, false)?;
    info!(etag = ?tag, "not modified: the client has the image");
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NOT_MODIFIED;
    res.headers_mut().insert(ETAG, tag);
    Ok(res)
}

/// The query a GET or HEAD renders, and whether the answer depends on `Accept`. A browser that
/// leaves out `format` (its Accept names text/html, image/png, image/apng, image/webp,
/// image/avif or image/*, and not PPM) gets PNG, which it can show: opening `/?spp=16` in a tab
/// used to download a PPM file. WebP and AVIF are there for Firefox's `<img>`, which asks with
/// `image/avif,image/webp,*/*` alone and was sent a PPM it cannot show; only browsers name them,
/// and every browser shows PNG. Other clients (curl's `*/*`) keep the PPM default.
fn negotiated_query<'q>(headers: &HeaderMap, query: &'q str) -> (Cow<'q, str>, bool) {
    let format = Param::Format.name();
    if form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == format) {
        return (Cow::Borrowed(query), false);
    }
    let accepts = |t: &str| accepted_types(headers).any(|a| a.eq_ignore_ascii_case(t));
    let shows_png =
        ["text/html", "image/png", "image/apng", "image/webp", "image/avif", "image/*"].iter().any(|t| accepts(t));
    if !shows_png || accepts(Format::Ppm.content_type()) {
        return (Cow::Borrowed(query), true);
    }
    let sep = if query.is_empty() { "" } else { "&" };
    (Cow::Owned(format!("{query}{sep}{format}={}", Format::Png.name())), true)
}

/// The media types an Accept header lists, without their parameters; one listed with `q=0` is
/// refused (RFC 9110 §12.4.2), not accepted, so it is left out.
fn accepted_types(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let refused = |param: &str| {
        param
            .split_once('=')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
    };
    headers.get_all(hyper::header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).filter_map(
        move |t| {
            let mut params = t.split(';');
            let media = params.next()?.trim();
            (!params.any(refused)).then_some(media)
        },
    )
}

/// `res` marked as depending on the request's Accept header, for caches.
fn vary(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut().insert(hyper::header::VARY, HeaderValue::from_static("accept"));
    res
}

fn viewer() -> Response<Body> {
    let mut res = Response::new(Body::full(VIEWER));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn log_error(e: AppError) -> AppError {
    if let AppError::QueueFull { .. } = e {
        // Counted in the shedding summary instead (`Renderer::shed`).
    } else if e.status().is_server_error() {
        warn!(status = e.status().as_u16(), error = %e, "request failed");
    } else {
        info!(status = e.status().as_u16(), error = %e, "request rejected");
    }
    e
}

/// Whether `req` is shed: it would render here and the queue is full (a fan-out's coordinator
/// renders nothing itself, so it is never shed). Its 503 comes after `SHED_DELAY_MS`: a client
/// that ignores `Retry-After` and asks again at once then waits that long per try instead of
/// making the server spend its cores refusing it (costs a timer, no CPU). `None` if the server
/// is not full, or a place freed in that time: the request is served.
async fn shed_if_full(state: &State, req: &RenderRequest) -> Option<AppError> {
    if req.parts.is_some() || !state.renderer.full() {
        return None;
    }
    (!state.renderer.wait_place(state.config.shed_delay).await).then(|| state.renderer.shed())
}

/// A platform's event: the body is the JSON request; the answer goes back as `reply` says.
async fn event(state: &State, ctx: &Ctx, req: Request<Incoming>, reply: Reply) -> Response<Body> {
    // A platform calls these paths; any query on them is its own, not render parameters.
    let parsed = parse_body(state, req, "").await;
    let shed = match &parsed {
        // Shed before anything else is done or logged (see `Renderer::shed`).
        Ok(r) if !r.progressive => shed_if_full(state, r).await,
        _ => None,
    };
    let result = match (parsed, shed) {
        // The platform returns the answer whole: frames would all arrive at the end.
        (Ok(r), _) if r.progressive => Err(AppError::ProgressiveEvent),
        (_, Some(e)) => Err(e),
        (parsed, None) => {
            let log = Markers::start("Invoke", &ctx.id);
            match parsed {
                Ok(r) => render(state, ctx, r, matches!(reply, Reply::Envelope(_)), None, log).await,
                Err(e) => Err(e),
            }
        }
    };
    match reply {
        Reply::Raw { error_header } => result.unwrap_or_else(|e| {
            let mut res = log_error(e).into_response();
            if let Some((name, value)) = error_header {
                res.headers_mut().insert(name, HeaderValue::from_static(value));
            }
            res
        }),
        Reply::Envelope(envelope) => {
            let wrapped = match result {
                Ok(res) => {
                    let content_type =
                        res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    match res.into_body().collect().await {
                        Ok(image) => (envelope.image)(&content_type, &image.to_bytes()),
                        Err(e) => {
                            warn!(error = %e, "render failed");
                            let e = AppError::RenderFailed;
                            (envelope.error)(e.status().as_u16(), &e.json())
                        }
                    }
                }
                Err(e) => {
                    let e = log_error(e);
                    (envelope.error)(e.status().as_u16(), &e.json())
                }
            };
            json_response(StatusCode::OK, &wrapped)
        }
    }
}

/// Reads a JSON request body (at most `max_body_bytes`) and the parameters in `query` into a
/// request.
async fn parse_body(state: &State, req: Request<Incoming>, query: &str) -> Result<RenderRequest, AppError> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = read_body(state, req).await?;
    RenderRequest::from_query_and_json(query, &body, &state.config.limits).map_err(|e| match e {
        // `curl -d spp=16` sends a form; so does `curl -d '{"spp": 16}'`, so the type is looked
        // at only for a body that does not even begin as JSON (malformed JSON gets its error).
        RequestError::BadBody { .. } if !looks_like_json(&body) => match form_type(&content_type) {
            Some(form) => AppError::FormBody { content_type: form },
            None => e.into(),
        },
        e => e.into(),
    })
}

/// Whether a body begins as a JSON value would (after any byte order mark and whitespace).
fn looks_like_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(render::request::UTF8_BOM).unwrap_or(body);
    body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| b"{[\"".contains(b) || b.is_ascii_digit())
}

/// The HTML form encoding a `Content-Type` names, if it names one (without its parameters).
fn form_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    ["application/x-www-form-urlencoded", "multipart/form-data"].into_iter().find(|t| essence.eq_ignore_ascii_case(t))
}

/// A GET's body is not read for parameters, so one with bytes in it is refused rather than
/// ignored (`curl -X GET -d '{"spp": 16}'` rendered the defaults). An empty one, chunked or
/// with `content-length: 0` as some gateways send, is fine.
async fn no_body(state: &State, req: Request<Incoming>) -> Result<(), AppError> {
    if req.body().is_end_stream() || read_body(state, req).await?.is_empty() {
        return Ok(());
    }
    Err(AppError::GetWithBody)
}

/// A request's body, at most `max_body_bytes`, within the body time limit.
async fn read_body(state: &State, req: Request<Incoming>) -> Result<Bytes, AppError> {
    let max = state.config.max_body_bytes;
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(AppError::BodyTooLarge { max });
    }
    // A coding on the body, repeated in the error (and its log line) as any caller's value is:
    // escaped and cut short. hyper removes a final `chunked` transfer coding, and only that.
    let shown = |v: &HeaderValue| render::request::shown(&String::from_utf8_lossy(v.as_bytes()));
    let coded = |v: &&HeaderValue| {
        let v = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
        v.split(',').map(str::trim).any(|c| !c.is_empty() && c != "identity" && c != "chunked")
    };
    let headers = [(CONTENT_ENCODING, "content-encoding"), (TRANSFER_ENCODING, "transfer-encoding")];
    let encoding =
        headers.into_iter().find_map(|(h, name)| req.headers().get(h).filter(coded).map(|v| (name, shown(v))));
    let body = Limited::new(req.into_body(), max).collect().await.map_err(|e| {
        if e.is::<LengthLimitError>() {
            AppError::BodyTooLarge { max }
        } else if timed_out(&*e) {
            AppError::BodyTimeout { secs: state.config.timeouts.body.as_secs() }
        } else {
            AppError::BodyUnreadable
        }
    })?;
    let body = body.to_bytes();
    // A compressed body would only fail to parse as JSON, with a message about its first byte.
    if let Some((header, encoding)) = encoding.filter(|_| !body.is_empty()) {
        return Err(AppError::BodyEncoded { header, encoding });
    }
    Ok(body)
}

/// Whether a body error comes from the client's time limit (`framing`'s `TimedOut`).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source())
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut))
}

/// Checks the cap, waits for a render slot, starts the render and answers once its first row
/// is encoded: errors before that are proper responses; after it the body streams, and a
/// failure aborts the connection. A fan-out's `req` is sent out in parts instead. The answer
/// carries `tag` (the image's [`etag::of`]) when it is the image the tag names: always when
/// rendered here, and for a fan-out when its parts came from this process's build and arithmetic.
async fn render(
    state: &State,
    ctx: &Ctx,
    req: RenderRequest,
    enveloped: bool,
    tag: Option<HeaderValue>,
    log: Markers,
) -> Result<Response<Body>, AppError> {
    refuse(state, ctx, &req, enveloped)?;
    info!(
        width = req.width,
        height = req.height,
        spp = req.spp,
        engine = req.engine.name(),
        format = req.format.name(),
        seed = req.seed,
        rows = req.rows.map(|r| r.to_string()),
        parts = req.parts,
        part_of = ctx.part_of.as_deref(),
        "render requested"
    );
    let (started, keep, queued, fanning): (_, Box<dyn Send>, _, _) = match &state.fanout {
        Some(pool) if req.parts.is_some() => {
            let job = fanout::Job::new(req, ctx.id.clone(), ctx.authorization.clone(), ctx.deadline);
            let running = fanout::start(pool.clone(), job);
            // The fan-out enforces its deadline itself; it counts as active while it runs.
            (running.started, Box::new(state.renderer.track()), None, Some(running.guard))
        }
        _ => {
            let cancel = CancelOnDrop(CancelToken::new());
            let asked = Instant::now();
            let (permit, active) = state.renderer.admit(ctx.deadline).await?;
            let queued = asked.elapsed();
            let started = state.renderer.start(req, cancel.0.clone(), permit, active);
            let watchdog = Watchdog::spawn(ctx.deadline, cancel.0.clone());
            (started, Box::new((cancel, watchdog)), Some(queued), None)
        }
    };
    match tokio::time::timeout_at(ctx.deadline.into(), started.head).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(f))) => return Err(failed(f)),
        Err(_) => return Err(AppError::DeadlineExceeded),
        Ok(Err(_)) => return Err(AppError::RenderFailed),
    }
    // Known now: the head waited for the first part's rows, checked for their build and arithmetic.
    let tag = tag.filter(|_| fanning.as_ref().is_none_or(|f| f.rendered_as_here(&req)));
    // The fan-out's guard first, as before: its parts are stopped before it stops counting as active.
    let keep: Box<dyn Send> = Box::new((fanning, keep));
    let mut body = Body::stream(started.data, sent_length(&req), keep);
    if holds_whole(ctx, &req) {
        // A failure or the deadline is still a proper answer here, not a cut-short body.
        body = Body::full(body.collect().await.map_err(ended)?.to_bytes());
    }
    let guard = StreamGuard { _log: log, bytes: started.bytes };
    let mut res = Response::new(body.with_guard(guard));
    image_headers(res.headers_mut(), &req);
    if let Some(tag) = tag {
        res.headers_mut().insert(ETAG, tag);
    }
    if let Some(queued) = queued {
        res.headers_mut().insert(HeaderName::from_static(fanout::QUEUED_HEADER), (queued.as_millis() as u64).into());
    }
    Ok(res)
}

/// The answer to a render that failed before its answer began.
fn failed(f: Failure) -> AppError {
    match f {
        // Cancelled is the deadline's watchdog, or a client that is gone and reads no answer.
        Failure::Cancelled | Failure::Deadline => AppError::DeadlineExceeded,
        Failure::Part { index, rows, reason, retry_after } => AppError::PartFailed { index, rows, reason, retry_after },
        Failure::Io(_) | Failure::Panic(_) => AppError::RenderFailed,
    }
}

/// The answer to a body that ended in `e`, when it was held whole: the render's [`Failure`] is
/// the error's source.
fn ended(e: std::io::Error) -> AppError {
    e.into_inner().and_then(|e| e.downcast::<Failure>().ok()).map_or(AppError::RenderFailed, |f| failed(*f))
}

/// The most an HTTP/1.0 answer held whole may take (its bound, decided before rendering).
const HELD_MAX_BYTES: u64 = 1 << 28;

/// Whether the answer to `req` is held whole and sent with its length rather than streamed: over
/// HTTP/1.0, which has no chunked coding, a body whose length is not sent ends where the
/// connection does, so a render cut short after the head would end like a complete image. PPM
/// and PFM send their length before rendering and stream; a progressive stream ends with its
/// closing boundary.
fn holds_whole(ctx: &Ctx, req: &RenderRequest) -> bool {
    ctx.http10 && !req.progressive && sent_length(req).is_none()
}

/// The length sent in the head of an answer to `req`: where the format fixes the size, so that
/// an answer cut short (a deadline or failure after the head) is seen as such by every client:
/// over HTTP/1.0, which has no chunked coding, it would otherwise end like a complete image.
fn sent_length(req: &RenderRequest) -> Option<u64> {
    match encode::image_size(req) {
        encode::OutputSize::Exact(n) if !req.progressive => Some(n),
        _ => None,
    }
}

/// The headers of an answer to `req`: its type, name, spp, engine and SIMD path (GET's, and
/// HEAD's without the body).
fn image_headers(h: &mut HeaderMap, req: &RenderRequest) {
    if let Some(parts) = req.parts {
        h.insert(HeaderName::from_static(fanout::PARTS_HEADER), parts.into());
    }
    if req.progressive {
        h.insert(CONTENT_TYPE, HeaderValue::from_str(&progressive::content_type()).expect("ASCII"));
    } else {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(req.format.content_type()));
        let disposition = format!("inline; filename=\"{}\"", file_name(req));
        h.insert(CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("ASCII"));
    }
    if let Some(n) = sent_length(req) {
        h.insert(CONTENT_LENGTH, n.into());
    }
    h.insert(HeaderName::from_static(SPP_HEADER), req.effective_spp().into());
    h.insert(HeaderName::from_static(ENGINE_HEADER), HeaderValue::from_static(req.engine.name()));
    if req.parts.is_none() && req.engine.on_simd_lanes() {
        h.insert(
            HeaderName::from_static(fanout::SIMD_HEADER),
            HeaderValue::from_static(render::engine::fast::simd_path()),
        );
    }
    if req.parts.is_none() {
        h.insert(HeaderName::from_static(fanout::BUILD_HEADER), HeaderValue::from_static(render::BUILD));
    }
}

/// The name a saved answer gets (`curl -OJ`, a browser's download or "Save image as"): what was
/// rendered, so that renders saved side by side keep apart, where each used to be `image.png`.
/// `smallpt-1024x768-16spp-fast.png`; a seed other than smallpt's own and a band are added
/// (`-seed7`, `-rows100-200`).
fn file_name(req: &RenderRequest) -> String {
    let mut name = format!("smallpt-{}x{}-{}spp-{}", req.width, req.height, req.effective_spp(), req.engine.name());
    if req.seed != 0 {
        name += &format!("-seed{}", req.seed);
    }
    if let Some(rows) = req.rows {
        name += &format!("-rows{}-{}", rows.start, rows.end);
    }
    format!("{name}.{}", req.format.extension())
}

/// A fan-out's bands wait at the coordinator until their turn, up to `FANOUT_CONCURRENCY` at
/// once: refused before any part is sent when they could take more than
/// `FANOUT_MAX_BUFFER_BYTES` (8192×8192 PFM in two parts would hold 806 MB, past a 512 MB instance).
fn fanout_buffer(settings: &crate::config::Fanout, req: &RenderRequest) -> Result<(), AppError> {
    let bands = req.part_bands().unwrap_or_default();
    let largest = bands.iter().map(|b| b.len()).max().unwrap_or(0);
    let band_bytes = encode::output_size(req.format.carrier(), req.width, largest).bound();
    let held = (bands.len() as u64).min(settings.concurrency as u64);
    let bytes = held * band_bytes;
    if bytes > settings.max_buffer_bytes {
        return Err(AppError::FanoutTooLarge { bands: held, band_bytes, bytes, max: settings.max_buffer_bytes });
    }
    Ok(())
}

/// Why `req` cannot be rendered here, found before any work: `parts` without workers, inside a
/// part or past the coordinator's buffer, or an answer (`enveloped`: base64 in an event's
/// envelope) over the response cap, or an HTTP/1.0 answer too large to hold whole.
fn refuse(state: &State, ctx: &Ctx, req: &RenderRequest, enveloped: bool) -> Result<(), AppError> {
    let image = encode::image_size(req).bound();
    if req.parts.is_some() {
        if ctx.part_of.is_some() {
            return Err(AppError::FanoutNested);
        }
        if state.fanout.is_none() {
            return Err(AppError::FanoutOff);
        }
        fanout_buffer(&state.config.fanout, req)?;
    }
    if let Some(cap) = state.config.response_cap_for(ctx.platform.response_cap()) {
        // A progressive render answers every frame.
        let raw = if req.progressive { progressive::stream_size_bound(req) } else { image };
        // In an envelope: base64 plus the envelope's few fields.
        let bytes = if enveloped { raw.div_ceil(3) * 4 + 256 } else { raw };
        if bytes > cap && req.progressive {
            let frames = progressive::passes(req.samples_per_subpixel()).len();
            return Err(AppError::StreamTooLarge { frames, bytes, cap });
        }
        if bytes > cap {
            return Err(AppError::ResponseTooLarge { format: req.format.name(), bytes, cap });
        }
    }
    if holds_whole(ctx, req) && image > HELD_MAX_BYTES {
        return Err(AppError::HeldTooLarge { format: req.format.name(), bytes: image, max: HELD_MAX_BYTES });
    }
    Ok(())
}

/// What an image's body keeps until it is dropped (sent, or the client gone): the invocation's
/// log markers, and the count of bytes its last log line reports. (The render's own guard,
/// which cancels it when dropped, goes with the stream.)
struct StreamGuard {
    _log: Markers,
    bytes: Arc<AtomicU64>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        debug!(bytes = self.bytes.load(Ordering::Relaxed), "response body closed");
    }
}

/// Cancels a render when its deadline passes after the head was sent; stopped when dropped.
struct Watchdog(tokio::task::JoinHandle<()>);

impl Watchdog {
    fn spawn(deadline: Instant, cancel: CancelToken) -> Watchdog {
        let span = tracing::Span::current();
        Watchdog(tokio::spawn(
            async move {
                tokio::time::sleep_until(deadline.into()).await;
                warn!("render deadline passed; cancelling and aborting the response");
                cancel.cancel();
            }
            .instrument(span),
        ))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A lifecycle hook: 200 at once, or with `drain` once in-flight renders finished (bounded by the
/// grace period). Idempotent.
async fn hook(state: &State, ctx: &Ctx, phase: &'static str, drain: bool) -> Response<Body> {
    let _log = Markers::start(phase, &ctx.id);
    let mut idle = true;
    if drain {
        idle = state.renderer.wait_idle(state.config.shutdown_grace).await;
        if !idle {
            warn!(active = state.renderer.active(), "pre-stop: grace period over with renders still running");
        }
    }
    json_response(StatusCode::OK, &serde_json::json!({"status": "ok", "idle": idle}))
}

/// `Cache-Control` of the fixed answers to what browsers and crawlers ask for on their own.
const A_DAY: &str = "public, max-age=86400";

/// The answer to what agents ask for on their own and the service has none of (icons,
/// `/.well-known/`): a 404 saying `why` and no render, cacheable for a day so that they need not
/// ask again.
fn nothing(why: &str) -> Response<Body> {
    let mut res = json_response(StatusCode::NOT_FOUND, &serde_json::json!({ "error": why }));
    res.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static(A_DAY));
    res
}

/// The answer to `/robots.txt`: crawlers keep out. Every other path renders (a default image
/// takes every core for a quarter of a second), which a crawler would ask for link after link.
fn robots() -> Response<Body> {
    let mut res = Response::new(Body::full("User-agent: *\nDisallow: /\n"));
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static(A_DAY));
    res
}

fn health(state: &State) -> Response<Body> {
    let r = &state.renderer;
    json_response(
        StatusCode::OK,
        &serde_json::json!({"status": "ok", "threads": r.threads(), "active": r.active(), "queued": r.queued()}),
    )
}

/// Longest request id taken from a header.
const MAX_ID_LEN: usize = 128;

/// The request-id alphabet, `[A-Za-z0-9._:-]`: safe in a header and a log line as is.
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:-".contains(&b)
}

/// The request id from the platform's header, or a fresh one. Only ids of up to 128
/// characters of `[A-Za-z0-9._:-]` are taken, so an id can go into a header and a log line as is.
fn request_id(headers: &HeaderMap) -> String {
    let valid = |s: &&str| (1..=MAX_ID_LEN).contains(&s.len()) && s.bytes().all(is_id_byte);
    platform::request_id_headers()
        .find_map(|name| headers.get(name)?.to_str().ok().filter(valid).map(str::to_owned))
        .unwrap_or_else(generate_id)
}

fn generate_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded per process from the OS; mixing in a counter makes ids unique.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// The render deadline for this request: the configured one, lowered by the platform's timeout
/// header. Values above an hour are taken as milliseconds (SCF's unit is undocumented; its
/// functions time out after at most 900 s).
fn deadline_for(config: &Config, headers: &HeaderMap) -> Duration {
    platform::timeout_headers()
        .filter_map(|name| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .map(|n| if n > 3600 { Duration::from_millis(n) } else { Duration::from_secs(n) })
        .fold(config.render_timeout, Duration::min)
}

/// Whether a header may carry a credential.
fn is_secret(name: &str) -> bool {
    const MARKERS: [&str; 9] =
        ["secret", "token", "password", "authorization", "cookie", "credential", "signature", "access-key", "session"];
    let name = name.to_ascii_lowercase();
    MARKERS.iter().any(|m| name.contains(m))
}

/// The headers as `name: value` pairs with every credential replaced by `[redacted]`.
pub fn redacted(headers: &HeaderMap) -> String {
    let pairs: Vec<String> = headers
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(k.as_str()) { "[redacted]" } else { v.to_str().unwrap_or("[binary]") };
            format!("{k}: {v}")
        })
        .collect();
    pairs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body held whole (HTTP/1.0) that ends in a render's failure is answered as that failure
    /// is before the head: a part's 502 naming it (503 when busy workers refused it), the
    /// deadline's 504, a panic's 500.
    #[tokio::test]
    async fn a_held_body_that_fails_answers_its_failure() {
        let part = |retry_after| Failure::Part {
            index: 2,
            rows: "40-60".parse().unwrap(),
            reason: "refused".into(),
            retry_after,
        };
        for (f, status) in
            [(part(None), 502), (part(Some(5)), 503), (Failure::Cancelled, 504), (Failure::Panic("boom".into()), 500)]
        {
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            tx.send(Ok(Bytes::from_static(b"P3\n"))).await.unwrap();
            tx.send(Err(std::io::Error::other(f))).await.unwrap();
            let e = Body::stream(rx, None, ()).collect().await.map_err(ended).unwrap_err();
            assert_eq!(e.status().as_u16(), status, "{e}");
            if status == 502 || status == 503 {
                assert_eq!((e.json()["part"].as_u64(), e.json()["rows"].as_str()), (Some(2), Some("40-60")));
            }
            if status == 503 {
                assert_eq!(e.into_response().headers()["retry-after"], "5");
            }
        }
    }

    #[test]
    fn a_page_may_read_every_header_the_service_names() {
        let exposed: Vec<&str> = crate::cors::EXPOSED.split(", ").collect();
        for name in [
            SPP_HEADER,
            ENGINE_HEADER,
            REQUEST_ID_HEADER,
            fanout::SIMD_HEADER,
            fanout::BUILD_HEADER,
            fanout::QUEUED_HEADER,
            fanout::PARTS_HEADER,
        ] {
            assert!(exposed.contains(&name), "{name} is not in {exposed:?}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let mut h = HeaderMap::new();
        for name in ["x-fc-access-key-secret", "x-fc-security-token", "X-Scf-Secret-Key", "X-Scf-Session-Token"] {
            h.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("hunter2"));
        }
        h.insert("x-cff-security-secret-key", HeaderValue::from_static("hunter2"));
        h.insert("authorization", HeaderValue::from_static("Bearer hunter2"));
        h.insert("x-fc-request-id", HeaderValue::from_static("abc"));
        let s = redacted(&h);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("x-fc-request-id: abc"), "{s}");
    }

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).len(), 16);
        assert_ne!(request_id(&h), request_id(&h));
        h.insert("x-request-id", HeaderValue::from_static("generic"));
        h.insert("x-scf-request-id", HeaderValue::from_static("scf-1"));
        assert_eq!(request_id(&h), "scf-1");
        h.insert("x-fc-request-id", HeaderValue::from_static("bad id\twith spaces"));
        assert_eq!(request_id(&h), "scf-1");
    }

    #[test]
    fn platform_timeouts_lower_the_deadline() {
        let c = Config::default();
        let mut h = HeaderMap::new();
        assert_eq!(deadline_for(&c, &h), c.render_timeout);
        h.insert("x-scf-timeout", HeaderValue::from_static("30"));
        assert_eq!(deadline_for(&c, &h), Duration::from_secs(30));
        h.insert("x-cff-timeout", HeaderValue::from_static("20000"));
        assert_eq!(deadline_for(&c, &h), Duration::from_secs(20));
        h.insert("x-fc-function-timeout", HeaderValue::from_static("100000000"));
        assert_eq!(deadline_for(&c, &h), Duration::from_secs(20));
    }
}
