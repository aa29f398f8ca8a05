//! Alibaba Function Compute (FC 3.0 custom container; FC 2.0's paths too).

use super::{Call, Platform, Reply};
use hyper::{HeaderMap, Method};

/// Alibaba FC.
pub struct Fc;

impl Platform for Fc {
    fn name(&self) -> &'static str {
        "fc"
    }
    fn request_id_header(&self) -> Option<&'static str> {
        Some("x-fc-request-id")
    }
    fn timeout_header(&self) -> Option<&'static str> {
        Some("x-fc-function-timeout")
    }
    fn route(&self, method: &Method, path: &str, _: &HeaderMap) -> Option<Result<Call, &'static str>> {
        let get_or_post = *method == Method::GET || *method == Method::POST;
        Some(match path {
            // An event function's call: the JSON request in, the image out; `x-fc-status` marks
            // an error as the function's, not the platform's.
            "/invoke" if *method == Method::POST => {
                Ok(Call::Event(Reply::Raw { error_header: Some(("x-fc-status", "404")) }))
            }
            "/initialize" if *method == Method::POST => Ok(Call::Hook { phase: "Initialize", drain: false }),
            "/pre-freeze" if get_or_post => Ok(Call::Hook { phase: "PreFreeze", drain: false }),
            "/pre-stop" if get_or_post => Ok(Call::Hook { phase: "PreStop", drain: true }),
            "/invoke" | "/initialize" => Err("POST"),
            "/pre-freeze" | "/pre-stop" => Err("GET, POST"),
            _ => return None,
        })
    }
    /// FC's custom-runtime contract: `FC <Phase> Start RequestId: <id>` and `... End ...` on
    /// stdout for every invocation and hook; the console's per-request log tail matches them.
    fn marker(&self, phase: &str, id: &str, start: bool) -> Option<String> {
        Some(format!("FC {phase} {} RequestId: {id}", if start { "Start" } else { "End" }))
    }
}
