//! Tencent Serverless Cloud Function (web and event functions on a custom image).

use super::{Call, Platform, Reply, SYNC_RESPONSE_CAP};
use hyper::{HeaderMap, Method};

/// Tencent SCF.
pub struct Scf;

impl Platform for Scf {
    fn name(&self) -> &'static str {
        "scf"
    }
    fn request_id_header(&self) -> Option<&'static str> {
        Some("x-scf-request-id")
    }
    fn timeout_header(&self) -> Option<&'static str> {
        Some("x-scf-timeout")
    }
    fn response_cap(&self) -> Option<u64> {
        Some(SYNC_RESPONSE_CAP)
    }
    fn route(&self, method: &Method, path: &str, _: &HeaderMap) -> Option<Result<Call, &'static str>> {
        match path {
            // An event function's call: the JSON event in, the image out.
            "/event-invoke" if *method == Method::POST => Some(Ok(Call::Event(Reply::Raw { error_header: None }))),
            "/event-invoke" => Some(Err("POST")),
            _ => None,
        }
    }
}
