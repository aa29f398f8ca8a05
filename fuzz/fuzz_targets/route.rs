//! The platforms' routing on arbitrary methods, paths and headers: never a panic, and a path is
//! routed the same whatever the headers say unless a platform tells them apart by header.
#![no_main]

use hyper::Method;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use server::platform;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == b'\n');
    let method = parts.next().and_then(|m| Method::from_bytes(m).ok()).unwrap_or(Method::GET);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut headers = HeaderMap::new();
    for line in parts {
        let mut kv = line.splitn(2, |&b| b == b':');
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else { continue };
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
            headers.append(k, v);
        }
    }
    let _ = platform::of(&headers).name();
    let routed = platform::route(&method, &path, &headers);
    let bare = platform::route(&method, &path, &HeaderMap::new());
    // Only `POST /invoke` depends on headers (FunctionGraph's and FC's share the path).
    if !(method == Method::POST && path == "/invoke") {
        assert_eq!(format!("{routed:?}"), format!("{bare:?}"));
    }
});
