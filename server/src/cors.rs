//! Cross-origin calls from other sites' pages (CORS), off unless `CORS_ALLOW_ORIGIN` says who may
//! make them. A page on another origin can always show a render in an `<img>`; what CORS adds is
//! reading it from a script — `fetch` of a progressive stream, a POST with a JSON body (which a
//! browser first asks about with a preflight `OPTIONS`), the `x-render-*` headers, a refusal's
//! JSON. Without it the browser hides all of that behind a network error.
//!
//! `*` lets any page call the service (no credentials: a browser sends no cookies with such calls,
//! and the service reads none); a comma-separated list of origins lets only those, each answered
//! with its own origin and `Vary: Origin` so a cache keeps the answers apart. A leaf module: the
//! configuration parses it, the service applies it to every answer.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The response headers a page's script may read besides the CORS-safelisted ones (every
/// `x-render-*` the service sends: a test there checks).
pub(crate) const EXPOSED: &str = "x-render-spp, x-render-engine, x-render-simd, x-render-build, x-render-queued-ms, \
                                  x-render-parts, x-request-id, content-disposition, etag, retry-after";

/// How long a browser may keep a preflight's answer, in seconds (a day; Chromium caps it at two
/// hours).
const MAX_AGE: &str = "86400";

/// Who may call from another origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// Nobody: no CORS headers (the default).
    #[default]
    Off,
    /// Any origin (`*`).
    Any,
    /// Only these origins, as browsers write them (`https://a.example`, `http://127.0.0.1:8080`).
    Origins(Vec<String>),
}

impl Cors {
    /// Reads `CORS_ALLOW_ORIGIN`'s value: empty for off, `*`, or origins separated by commas
    /// (empty entries skipped, as in `FANOUT_URL`).
    pub fn parse(value: &str) -> Result<Cors, String> {
        let value = value.trim();
        if value == "*" {
            return Ok(Cors::Any);
        }
        let origins =
            value.split(',').map(str::trim).filter(|o| !o.is_empty()).map(origin).collect::<Result<Vec<_>, _>>()?;
        Ok(if origins.is_empty() { Cors::Off } else { Cors::Origins(origins) })
    }

    /// The `Access-Control-Allow-Origin` value for a call from `origin`, if it may be made.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self {
            Cors::Off => None,
            Cors::Any => Some(HeaderValue::from_static("*")),
            Cors::Origins(list) => {
                let origin = origin?;
                let text = origin.to_str().ok()?;
                list.iter().any(|o| o.eq_ignore_ascii_case(text)).then(|| origin.clone())
            }
        }
    }

    /// Adds the CORS headers to an answer. A preflight that may proceed (answered 204 with the
    /// path's `Allow`) also gets the methods, the headers it asked for, and how long to keep it.
    pub fn answer(&self, asked: &Asked, res: &mut HeaderMap) {
        if *self == Cors::Off {
            return;
        }
        if matches!(self, Cors::Origins(_)) {
            append_vary(res, "origin");
        }
        let Some(allow) = self.allow_origin(asked.origin.as_ref()) else { return };
        res.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if !asked.preflight {
            res.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
            return;
        }
        if let Some(methods) = res.get(header::ALLOW).cloned() {
            res.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        if let Some(wanted) = &asked.request_headers {
            // Whatever it asks to send: the service reads only the headers it knows.
            res.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, wanted.clone());
            append_vary(res, "access-control-request-headers");
        }
        res.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    }
}

/// What a request asks of CORS, taken before the request is consumed.
#[derive(Clone, Debug, Default)]
pub struct Asked {
    origin: Option<HeaderValue>,
    preflight: bool,
    request_headers: Option<HeaderValue>,
}

impl Asked {
    /// What a request with `method` and `headers` asks.
    pub fn of(method: &hyper::Method, headers: &HeaderMap) -> Asked {
        let origin = headers.get(header::ORIGIN).cloned();
        let preflight = *method == hyper::Method::OPTIONS
            && origin.is_some()
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let request_headers = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        Asked { origin, preflight, request_headers }
    }
}

/// One origin of the list, checked: `http` or `https`, a host, an optional port, nothing else
/// (browsers send exactly that in `Origin`; a trailing slash or a path would never match), in
/// the form browsers send: lower case, without the scheme's default port.
fn origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("`{text}` is not an origin ({why}); write `https://host` or `http://host:port`"));
    let Some((scheme, rest)) = text.split_once("://") else { return bad("no scheme") };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return bad("the scheme must be http or https");
    }
    if rest.is_empty() {
        return bad("no host");
    }
    if rest.contains(['/', '?', '#', '@', ' ', '*']) {
        return bad("only a scheme, a host and a port");
    }
    if let Some((_, port)) = rest.rsplit_once(':')
        && !rest.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return bad("the port must be a number up to 65535");
    }
    let origin = text.to_ascii_lowercase();
    let default_port = if scheme.eq_ignore_ascii_case("https") { ":443" } else { ":80" };
    if let Some(without) = origin.strip_suffix(default_port) {
        return Ok(without.to_owned());
    }
    Ok(origin)
}

/// Adds `token` to the answer's `Vary`, beside what it already names.
fn append_vary(res: &mut HeaderMap, token: &str) {
    let name: HeaderName = header::VARY;
    let joined = match res.get(&name).and_then(|v| v.to_str().ok()) {
        Some(old) if old.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)) => return,
        Some(old) => format!("{old}, {token}"),
        None => token.to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&joined) {
        res.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Method;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_setting_is_off_any_or_a_list_of_origins() {
        assert_eq!(Cors::parse("").unwrap(), Cors::Off);
        assert_eq!(Cors::parse(" , ").unwrap(), Cors::Off);
        assert_eq!(Cors::parse("https://a.example,").unwrap(), Cors::Origins(vec!["https://a.example".into()]));
        assert_eq!(Cors::parse(" * ").unwrap(), Cors::Any);
        assert_eq!(
            Cors::parse("https://A.example, http://127.0.0.1:8080").unwrap(),
            Cors::Origins(vec!["https://a.example".into(), "http://127.0.0.1:8080".into()])
        );
        assert!(Cors::parse("http://[::1]:8080").is_ok());
        // As a browser writes it: no default port.
        assert_eq!(
            Cors::parse("https://a.example:443,http://b.example:80,http://c.example:443").unwrap(),
            Cors::Origins(vec!["https://a.example".into(), "http://b.example".into(), "http://c.example:443".into()])
        );
        for bad in [
            "a.example",
            "ftp://a.example",
            "https://a.example/",
            "https://a.example/x",
            "https://",
            "*, https://a.example",
            "https://a.example:99999",
            "null",
        ] {
            let e = Cors::parse(bad).unwrap_err();
            assert!(e.contains("is not an origin"), "{bad}: {e}");
        }
    }

    #[test]
    fn off_adds_nothing() {
        let asked = Asked::of(&Method::GET, &headers(&[("origin", "https://a.example")]));
        let mut res = HeaderMap::new();
        Cors::Off.answer(&asked, &mut res);
        assert!(res.is_empty());
    }

    #[test]
    fn any_origin_reads_the_answer_and_its_headers() {
        let asked = Asked::of(&Method::GET, &headers(&[("origin", "https://a.example")]));
        let mut res = HeaderMap::new();
        Cors::Any.answer(&asked, &mut res);
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(res[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("x-render-spp"));
        assert!(!res.contains_key(header::VARY), "one answer for every origin");
    }

    #[test]
    fn a_listed_origin_gets_its_own_and_others_nothing() {
        let cors = Cors::parse("https://a.example").unwrap();
        let mut res = HeaderMap::new();
        res.insert(header::VARY, HeaderValue::from_static("accept"));
        cors.answer(&Asked::of(&Method::GET, &headers(&[("origin", "https://a.example")])), &mut res);
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert_eq!(res[header::VARY], "accept, origin");
        let mut res = HeaderMap::new();
        cors.answer(&Asked::of(&Method::GET, &headers(&[("origin", "https://b.example")])), &mut res);
        assert!(!res.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(res[header::VARY], "origin", "a cache must not give b's answer to a");
    }

    #[test]
    fn a_preflight_gets_the_methods_and_headers() {
        let asked = Asked::of(
            &Method::OPTIONS,
            &headers(&[
                ("origin", "https://a.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ]),
        );
        let mut res = HeaderMap::new();
        res.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST, OPTIONS"));
        Cors::Any.answer(&asked, &mut res);
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, HEAD, POST, OPTIONS");
        assert_eq!(res[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type");
        assert_eq!(res[header::ACCESS_CONTROL_MAX_AGE], MAX_AGE);
        assert!(!res.contains_key(header::ACCESS_CONTROL_EXPOSE_HEADERS));
    }
}
