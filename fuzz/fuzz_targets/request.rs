//! The request parser on arbitrary query strings and JSON bodies (an event's payload): never a
//! panic; what it accepts validates, and survives its own query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use render::{Limits, RenderRequest};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::DEFAULT;
    let query = String::from_utf8_lossy(data);
    for parsed in [RenderRequest::from_query(&query, &limits), RenderRequest::from_json(data, &limits)] {
        match parsed {
            Ok(req) => {
                assert!(req.validate(&limits).is_ok());
                assert_eq!(RenderRequest::from_query(&req.to_query(), &limits).as_ref(), Ok(&req));
            }
            Err(e) => {
                // Every refusal names a parameter, and its message holds no raw control characters.
                assert!(!e.param().is_empty());
                assert!(!e.to_string().chars().any(|c| c == '\n' || c == '\r'));
            }
        }
    }
});
