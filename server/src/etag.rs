//! Entity tags for renders, so that a client that has an image is not sent it again: a browser
//! reloading `/?spp=1024` revalidates with `If-None-Match` and gets a `304` at once, where it used
//! to wait for the whole render again (and, on a function service, pay for it).
//!
//! A render's bytes are a pure function of its request, the engines' build and, for the SIMD
//! engines, the arithmetic (AVX2 and AVX-512 fuse multiply-adds, SSE2 and scalar round twice:
//! the bytes differ). The tag names exactly those, the request as its canonical query, so two
//! answers with one tag are the same bytes (a test renders them on two processes and compares);
//! PNG's tag is weak, the same pixels ([`of`]).
//! A leaf module: the service tags its answers and checks the condition with it.
//!
//! Only a GET's or HEAD's one-shot image has one: a POST's parameters are not in its URL, and a
//! progressive stream is watched rather than kept. A fan-out's image is byte for byte the render
//! without `parts`, so it has that render's tag, and `parts` is left out of it; the coordinator
//! answers with it when the parts came from its own build and arithmetic (otherwise the image is
//! another's and goes untagged), and answers a condition naming it at once, with no part sent.

use hyper::header::{HeaderMap, HeaderValue, IF_NONE_MATCH};
use render::engine::fast::SimdPath;
use render::{Format, RenderRequest};

/// The tag of `req`'s image rendered here, if it has one: `"<build>.<arithmetic>.<query>"`. A
/// PNG's is weak (`W/"…"`: the same image, not necessarily the same bytes): the `png` crate
/// compresses it, and another version of that crate under the same engines' build may compress
/// the same pixels otherwise. PPM, P3 and PFM are written by the render crate's own code.
pub(crate) fn of(req: &RenderRequest) -> Option<HeaderValue> {
    if req.progressive {
        return None;
    }
    let req = RenderRequest { parts: None, ..*req };
    // The classic engine is smallpt's f64 arithmetic whatever the SIMD path.
    let arithmetic = if req.engine.on_simd_lanes() { SimdPath::detected().arithmetic() } else { "f64" };
    // The query is ASCII without spaces or quotes (its values are numbers and names): valid
    // inside a tag as it is.
    let weak = if req.format == Format::Png { "W/" } else { "" };
    let tag = format!("{weak}\"{}.{arithmetic}.{}\"", render::BUILD, req.to_query());
    HeaderValue::from_str(&tag).ok()
}

/// The request's `If-None-Match` fields, kept apart from the request (which its body reader takes).
pub(crate) fn conditions(headers: &HeaderMap) -> Vec<HeaderValue> {
    headers.get_all(IF_NONE_MATCH).iter().cloned().collect()
}

/// Whether the `If-None-Match` fields `conditions` name `tag` or are `*` (RFC 9110 §13.1.2: a
/// GET or HEAD compares weakly, so `W/"…"` names the same tag).
pub(crate) fn none_match<'a>(conditions: &'a [HeaderValue], tag: &'a HeaderValue) -> bool {
    let weak = |t: &'a str| t.strip_prefix("W/").unwrap_or(t);
    let Ok(tag) = tag.to_str().map(weak) else { return false };
    conditions
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || weak(t) == tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use render::request::Limits;

    fn req(query: &str) -> RenderRequest {
        RenderRequest::from_query(query, &Limits::default()).unwrap()
    }

    #[test]
    fn a_tag_names_the_build_the_arithmetic_and_every_parameter() {
        let tag = |q| of(&req(q)).map(|t| t.to_str().unwrap().to_owned());
        let fast = tag("width=8&height=4&spp=4").unwrap();
        let arithmetic = SimdPath::detected().arithmetic();
        assert!(fast.starts_with(&format!("\"{}.{arithmetic}.width=8&height=4&", render::BUILD)), "{fast}");
        assert!(tag("width=8&height=4&spp=4&engine=classic").unwrap().contains(".f64.width=8&"));
        // Every parameter that changes the bytes changes the tag.
        for other in [
            "width=9&height=4&spp=4",
            "width=8&height=5&spp=4",
            "width=8&height=4&spp=8",
            "width=8&height=4&spp=4&engine=nee",
            "width=8&height=4&spp=4&format=pfm",
            "width=8&height=4&spp=4&seed=3",
            "width=8&height=4&spp=4&rows=1-3",
        ] {
            let t = tag(other);
            assert!(t.as_ref().is_some_and(|t| *t != fast), "{other}: {t:?}");
        }
        let png = tag("width=8&height=4&spp=4&format=png").unwrap();
        assert!(png.starts_with("W/\"") && png.contains("&format=png&"), "{png}");
        assert_eq!(tag("width=8&height=4&spp=4&progressive=1"), None);
        assert_eq!(tag("width=8&height=4&spp=4&parts=2").unwrap(), fast, "a fan-out's image is the one render's");
    }

    #[test]
    fn if_none_match_compares_weakly_lists_and_star() {
        let tag = HeaderValue::from_static("\"b.fma.width=8\"");
        let asks = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            }
            none_match(&conditions(&h), &tag)
        };
        assert!(asks(&["\"b.fma.width=8\""]));
        assert!(asks(&["W/\"b.fma.width=8\""]));
        assert!(asks(&["\"x\", \"b.fma.width=8\""]));
        assert!(asks(&["\"x\"", "\"b.fma.width=8\""]));
        assert!(asks(&["*"]));
        assert!(!asks(&[]));
        assert!(!asks(&["\"b.fma.width=9\""]));
        assert!(!asks(&["b.fma.width=8"]), "unquoted is not the tag");
        assert!(!asks(&["\"b.mul-add.width=8\""]));
        // A weak tag of ours (PNG's) is named by either form.
        let png = HeaderValue::from_static("W/\"b.fma.format=png\"");
        let named = |v: &'static str| none_match(&[HeaderValue::from_static(v)], &png);
        assert!(named("W/\"b.fma.format=png\"") && named("\"b.fma.format=png\"") && !named("\"b.fma\""));
    }
}
