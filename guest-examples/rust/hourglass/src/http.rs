//! Outbound HTTP through Extism's kernel imports (`http_request`, `http_status_code`,
//! `http_headers` in `extism:host/env`), over the official PDK's `extism_pdk::http::request`.
//! What the host allows (hosts, methods, sizes, timeouts) is in docs/guest-abi.md.
//!
//! `extism-pdk` 1.0.0 sends `{"url","headers":{…},"method":…}` (`extism_manifest::HttpRequest`;
//! `method` is `null` unless set) and reads the body and status only; this module also reads
//! the response headers (`http_headers()`, a JSON object of lowercased names) and decodes the
//! host's failure answer: status 0 with the body `{"error":{"code","message"}}`.

use serde::Deserialize;
use std::collections::BTreeMap;

pub use extism_pdk::HttpRequest;

#[link(wasm_import_module = "extism:host/env")]
extern "C" {
    fn http_headers() -> u64;
}

/// A response, or the host's account of why there is none (`status == 0`).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status, or 0 when the request failed.
    pub status: u16,
    pub body: Vec<u8>,
    /// Lowercased header names → values (empty when the host sent none).
    pub headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Failure {
    error: FailureBody,
}

#[derive(Deserialize)]
struct FailureBody {
    code: String,
    #[serde(default)]
    message: String,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(|s| s.as_str())
    }

    /// For status 0: the host's error `(code, message)` (`no_response` when it sent none).
    pub fn error(&self) -> Option<(String, String)> {
        if self.status != 0 {
            return None;
        }
        Some(match serde_json::from_slice::<Failure>(&self.body) {
            Ok(f) => (f.error.code, f.error.message),
            Err(_) => (
                "no_response".into(),
                "the host sent no response (is outbound HTTP enabled for this plugin?)".into(),
            ),
        })
    }

    /// `None` for a 2xx answer; otherwise the message a run should fail with:
    /// `http: <code>: <message>` (no answer) or `http: status <n>`.
    pub fn failure(&self) -> Option<String> {
        if let Some((code, message)) = self.error() {
            return Some(format!("http: {code}: {message}"));
        }
        if self.is_success() {
            None
        } else {
            Some(format!("http: status {}", self.status))
        }
    }
}

/// Sends `request` (with `body`, if any) and returns the answer; never fails for an HTTP
/// reason (those come back as status 0 or a non-2xx status).
pub fn send(request: &HttpRequest, body: Option<&[u8]>) -> Result<Response, extism_pdk::Error> {
    let res = extism_pdk::http::request(request, body)?;
    let headers = last_headers();
    let status = res.status_code();
    let body = res.body();
    if let Some(mem) = extism_pdk::Memory::find(res.into_memory().offset()) {
        mem.free();
    }
    Ok(Response { status, body, headers })
}

/// The headers of the last response (`http_headers()`), empty when there are none.
pub fn last_headers() -> BTreeMap<String, String> {
    let offset = unsafe { http_headers() };
    match extism_pdk::Memory::find(offset) {
        Some(mem) => {
            let bytes = mem.to_vec();
            mem.free();
            serde_json::from_slice(&bytes).unwrap_or_default()
        }
        None => BTreeMap::new(),
    }
}

/// A GET of `url` with the given headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, extism_pdk::Error> {
    send(&with_headers(HttpRequest::new(url).with_method("GET"), headers), None)
}

/// A POST of `body` to `url` with the given headers.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, extism_pdk::Error> {
    send(&with_headers(HttpRequest::new(url).with_method("POST"), headers), Some(body))
}

fn with_headers(mut req: HttpRequest, headers: &[(&str, &str)]) -> HttpRequest {
    for (k, v) in headers {
        req = req.with_header(*k, *v);
    }
    req
}
