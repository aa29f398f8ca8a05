//! Every way a request can fail, mapped once to a status and a JSON body.

use crate::body::Body;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use render::RequestError;

/// The `Allow` header of a path that takes `methods`: those, and OPTIONS, which every path
/// answers.
pub fn allow_header(methods: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{methods}, OPTIONS")).expect("method names are ASCII")
}

/// Why a request got no image.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad render parameters.
    #[error(transparent)]
    BadRequest(#[from] RequestError),
    /// A method the path does not take.
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed {
        /// The methods it takes.
        allow: &'static str,
    },
    /// A request body over the limit.
    #[error("request body is larger than {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// A GET with a body, which would be ignored.
    #[error("a GET's body is not read: put the parameters in the query string, or send the JSON object with POST")]
    GetWithBody,
    /// The request body could not be read.
    #[error("request body could not be read")]
    BodyUnreadable,
    /// A compressed body, which is not decoded.
    #[error("a body with {header} `{encoding}` is not read; send the JSON object uncompressed")]
    BodyEncoded {
        /// `content-encoding`, or `transfer-encoding` (whose codings other than chunked hyper
        /// leaves in the body).
        header: &'static str,
        /// Its value.
        encoding: String,
    },
    /// A form body (`curl -d spp=16` sends one), which is not read: only JSON is.
    #[error(
        "the body is a form ({content_type}), which is not read: send a JSON object such as {{\"spp\": 16}} (with curl: -d '{{\"spp\": 16}}'), or put the parameters in the query string"
    )]
    FormBody {
        /// The form encoding the `Content-Type` names.
        content_type: &'static str,
    },
    /// Path + query over the limit.
    #[error("path and query are longer than {max} bytes")]
    UriTooLong {
        /// The limit.
        max: usize,
    },
    /// The output could exceed the response cap.
    #[error(
        "the {format} image could be up to {bytes} bytes, over this platform's response limit of {cap} bytes; use format=png or a smaller width and height"
    )]
    ResponseTooLarge {
        /// The format asked for.
        format: &'static str,
        /// The size or bound of the response.
        bytes: u64,
        /// The cap.
        cap: u64,
    },
    /// An HTTP/1.0 answer, held whole to send its length, that could exceed what is held.
    #[error(
        "over HTTP/1.0 a {format} image is held whole to send its length (HTTP/1.0 has no chunked coding to show where a cut-short one ends); this one could be up to {bytes} bytes, over the {max} bytes held: use HTTP/1.1, format=ppm (whose length is known before rendering), or a smaller width and height"
    )]
    HeldTooLarge {
        /// The format asked for.
        format: &'static str,
        /// The bound of the image.
        bytes: u64,
        /// The most held.
        max: u64,
    },
    /// The request body did not arrive within its time limit.
    #[error("the request body was not complete within {secs} s of its head")]
    BodyTimeout {
        /// The limit.
        secs: u64,
    },
    /// A progressive render whose frames together could exceed the response cap.
    #[error(
        "a progressive render's {frames} frames could be up to {bytes} bytes in all, over this platform's response limit of {cap} bytes; lower spp (fewer frames), the size, or render once"
    )]
    StreamTooLarge {
        /// Frames in the stream.
        frames: usize,
        /// The bound of the whole stream.
        bytes: u64,
        /// The cap.
        cap: u64,
    },
    /// Every render slot and queue place is taken.
    #[error("the renderer is busy and its queue is full; retry later")]
    QueueFull {
        /// Seconds to suggest in Retry-After.
        retry_after: u64,
    },
    /// The deadline passed while the request was queued.
    #[error("the render deadline passed while waiting in the queue")]
    QueuedTooLong,
    /// The deadline passed before the first row was rendered.
    #[error("the render deadline passed")]
    DeadlineExceeded,
    /// The render panicked or failed; details are in the log.
    #[error("the render failed")]
    RenderFailed,
    /// `progressive` in a platform's event, whose answer goes back whole rather than streamed.
    #[error(
        "parameter `progressive` needs a streamed HTTP response; an event invocation answers once, with every frame together: leave out `progressive`, or call the function's HTTP URL"
    )]
    ProgressiveEvent,
    /// `parts` on a server with no `FANOUT_URL`.
    #[error("parameter `parts` needs a fan-out: this server has no workers (FANOUT_URL is unset); leave out `parts`")]
    FanoutOff,
    /// A fan-out whose bands, waiting at the coordinator, could take more memory than allowed.
    #[error(
        "parameter `parts`: the coordinator could hold {bands} bands of up to {band_bytes} bytes at once ({bytes} bytes), over its limit of {max} bytes; ask for more parts (smaller bands) or a smaller image"
    )]
    FanoutTooLarge {
        /// Bands held at once: `parts`, at most `FANOUT_CONCURRENCY`.
        bands: u64,
        /// The largest band's size in the wire format.
        band_bytes: u64,
        /// Their product.
        bytes: u64,
        /// `FANOUT_MAX_BUFFER_BYTES`.
        max: u64,
    },
    /// `parts` on a request that is itself a part of a fan-out.
    #[error("parameter `parts` is refused on a request that is itself a part of a fan-out (x-render-part)")]
    FanoutNested,
    /// A part of a fan-out failed after its retries, before the response began: 502, or 503
    /// with the worker's `Retry-After` when the workers were busy for the part's whole timeout.
    #[error("part {index} (rows {rows}) of the fan-out failed: {reason}")]
    PartFailed {
        /// The part's index.
        index: usize,
        /// Its rows.
        rows: render::RowBand,
        /// The last attempt's error.
        reason: String,
        /// The last attempt was refused by a busy worker naming this `Retry-After`.
        retry_after: Option<u64>,
    },
}

impl AppError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(RequestError::ProgressiveTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BadRequest(_) | AppError::BodyUnreadable | AppError::GetWithBody | AppError::FormBody { .. } => {
                StatusCode::BAD_REQUEST
            }
            AppError::BodyEncoded { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::BodyTooLarge { .. }
            | AppError::ResponseTooLarge { .. }
            | AppError::HeldTooLarge { .. }
            | AppError::StreamTooLarge { .. }
            | AppError::FanoutTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            AppError::QueueFull { .. } | AppError::QueuedTooLong => StatusCode::SERVICE_UNAVAILABLE,
            AppError::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            AppError::FanoutOff | AppError::FanoutNested | AppError::ProgressiveEvent => StatusCode::BAD_REQUEST,
            AppError::PartFailed { retry_after: Some(_), .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::PartFailed { .. } => StatusCode::BAD_GATEWAY,
            AppError::RenderFailed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The parameter at fault, if one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            AppError::BadRequest(e) => Some(e.param()),
            AppError::BodyTooLarge { .. }
            | AppError::BodyUnreadable
            | AppError::BodyTimeout { .. }
            | AppError::BodyEncoded { .. }
            | AppError::FormBody { .. }
            | AppError::GetWithBody => Some("body"),
            AppError::ResponseTooLarge { .. } | AppError::HeldTooLarge { .. } => Some("format"),
            AppError::StreamTooLarge { .. } | AppError::ProgressiveEvent => Some("progressive"),
            AppError::FanoutOff | AppError::FanoutNested | AppError::FanoutTooLarge { .. } => Some("parts"),
            _ => None,
        }
    }

    /// The JSON body: `{"error": ..., "param": ...}`.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self.to_string() });
        if let Some(p) = self.param() {
            v["param"] = p.into();
        }
        if let AppError::PartFailed { index, rows, .. } = self {
            v["part"] = (*index).into();
            v["rows"] = rows.to_string().into();
        }
        v
    }

    /// The whole response.
    pub fn into_response(self) -> Response<Body> {
        let mut res = json_response(self.status(), &self.json());
        let h = res.headers_mut();
        match self {
            AppError::MethodNotAllowed { allow } => {
                h.insert(ALLOW, allow_header(allow));
            }
            AppError::QueueFull { retry_after } => {
                h.insert(RETRY_AFTER, retry_after.into());
            }
            AppError::QueuedTooLong => {
                h.insert(RETRY_AFTER, 1.into());
            }
            AppError::PartFailed { retry_after: Some(secs), .. } => {
                h.insert(RETRY_AFTER, secs.into());
            }
            _ => {}
        }
        res
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut res = Response::new(Body::full(v.to_string() + "\n"));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
