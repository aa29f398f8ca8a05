//! Huawei Cloud FunctionGraph (HTTP and event functions on a custom image).

use super::{Call, Envelope, Platform, Reply, SYNC_RESPONSE_CAP};
use base64::Engine as _;
use hyper::{HeaderMap, Method};

/// Huawei FunctionGraph.
pub struct FunctionGraph;

impl Platform for FunctionGraph {
    fn name(&self) -> &'static str {
        "functiongraph"
    }
    fn request_id_header(&self) -> Option<&'static str> {
        Some("x-cff-request-id")
    }
    fn timeout_header(&self) -> Option<&'static str> {
        Some("x-cff-timeout")
    }
    fn response_cap(&self) -> Option<u64> {
        Some(SYNC_RESPONSE_CAP)
    }
    fn route(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Result<Call, &'static str>> {
        match path {
            "/init" if *method == Method::POST => Some(Ok(Call::Initialized)),
            "/init" => Some(Err("POST")),
            // FC calls `/invoke` too; FunctionGraph's carry its request id and not FC's control path.
            "/invoke"
                if *method == Method::POST && self.sent(headers) && !headers.contains_key("x-fc-control-path") =>
            {
                Some(Ok(Call::Event(Reply::Envelope(Envelope { image, error }))))
            }
            _ => None,
        }
    }
}

/// An image as FunctionGraph's APIG-style envelope: always 200 to the platform, the image in base64.
fn image(content_type: &str, image: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "isBase64Encoded": true,
        "statusCode": 200,
        "headers": {"Content-Type": content_type},
        "body": base64::engine::general_purpose::STANDARD.encode(image),
    })
}

/// An error as the envelope: its status and JSON body inside.
fn error(status: u16, body: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "isBase64Encoded": false,
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": body.to_string(),
    })
}
