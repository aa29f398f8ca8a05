//! Plain HTTP, and what every platform shares: `/healthz` (and the other usual health paths),
//! and browsers' icons, `/.well-known/` and `/robots.txt` answered without a render. (Every path
//! no platform claims renders: the render path is the service's, not a platform's.)

use super::{Call, Platform};
use hyper::{HeaderMap, Method};

/// Plain HTTP.
pub struct Http;

/// Whether `method` reads (GET or HEAD).
fn reads(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// The 404's message for an icon.
const NO_ICON: &str =
    "no icon here: browsers ask for /favicon.ico and /apple-touch-icon.png on their own; every other path renders";

/// Site metadata (RFC 8615), which agents ask for on their own: Chrome's prefetch proxy
/// (`traffic-advice`) and DevTools (`appspecific/com.chrome.devtools.json`), `security.txt`
/// scanners, app-link checkers.
const WELL_KNOWN: &str = "/.well-known/";

/// The 404's message for `/.well-known/`.
const NO_METADATA: &str =
    "no site metadata here: /.well-known/ is asked for by agents on their own; every other path renders";

/// The icons browsers ask for on their own, at the root whatever the page's path: every browser's
/// `/favicon.ico`, and Safari's `/apple-touch-icon.png` with its variants (`-precomposed`, sizes
/// such as `-120x120`), asked for when a page is bookmarked, pinned or added to a home screen.
fn is_icon(path: &str) -> bool {
    path == "/favicon.ico"
        || path
            .strip_prefix("/apple-touch-icon")
            .and_then(|p| p.strip_suffix(".png"))
            .is_some_and(|variant| variant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// The health check's paths: `/healthz`, and the others a health check is commonly pointed at
/// (`/health`, Kubernetes' `/livez` and `/readyz`), each with or without a trailing slash. Any
/// other path renders, and a check that renders is worse than none: with `s.yaml`'s
/// `RENDER_QUEUE: 0` it gets a 503 whenever a render runs, and after five such the platform
/// restarts the instance, killing that render.
fn is_health(path: &str) -> bool {
    matches!(path.strip_suffix('/').unwrap_or(path), "/healthz" | "/health" | "/livez" | "/readyz")
}

impl Platform for Http {
    fn name(&self) -> &'static str {
        "http"
    }
    fn sent(&self, _: &HeaderMap) -> bool {
        false
    }
    fn route(&self, method: &Method, path: &str, _: &HeaderMap) -> Option<Result<Call, &'static str>> {
        let call = match path {
            p if is_health(p) => Call::Health,
            p if is_icon(p) => Call::Nothing { why: NO_ICON },
            p if p.starts_with(WELL_KNOWN) => Call::Nothing { why: NO_METADATA },
            "/robots.txt" => Call::Robots,
            _ => return None,
        };
        // Each answers GET and HEAD only.
        Some(if reads(method) { Ok(call) } else { Err("GET, HEAD") })
    }
}
