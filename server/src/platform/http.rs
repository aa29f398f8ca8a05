//! Plain HTTP, and what every platform shares: `/healthz`, and `/favicon.ico` and `/robots.txt`
//! answered without a render. (Every path no platform claims renders: the render path is the
//! service's, not a platform's.)

use super::{Call, Platform};
use hyper::{HeaderMap, Method};

/// Plain HTTP.
pub struct Http;

impl Platform for Http {
    fn name(&self) -> &'static str {
        "http"
    }
    fn sent(&self, _: &HeaderMap) -> bool {
        false
    }
    fn route(&self, method: &Method, path: &str, _: &HeaderMap) -> Option<Result<Call, &'static str>> {
        match path {
            "/healthz" if *method == Method::GET || *method == Method::HEAD => Some(Ok(Call::Health)),
            "/healthz" => Some(Err("GET, HEAD")),
            "/favicon.ico" if *method == Method::GET || *method == Method::HEAD => Some(Ok(Call::NoIcon)),
            "/favicon.ico" => Some(Err("GET, HEAD")),
            "/robots.txt" if *method == Method::GET || *method == Method::HEAD => Some(Ok(Call::Robots)),
            "/robots.txt" => Some(Err("GET, HEAD")),
            _ => None,
        }
    }
}
