//! Cross-cutting HTTP plumbing: request ids and access logs, problem+json for every rejection,
//! and the body limits of the extractors.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{web, FromRequest, HttpMessage};
use tracing::Instrument;

use crate::error::{ApiError, Problem, PROBLEM_JSON};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, also in every log line written while serving it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An incoming id is kept when it is short and harmless, so a caller can follow its own id
/// through our logs; anything else is replaced.
fn accept_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| text.to_owned())
}

fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

/// Outermost middleware: assigns the request id, opens the request span, writes the access log
/// line and returns the id in `x-request-id`. Paths are logged by route pattern and query strings
/// never, so identifiers of patients cannot end up in the log through a URL.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(accept_request_id)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let method = req.method().clone();
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let status = res.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(%method, route, status, elapsed_ms, "request served");
        } else {
            tracing::info!(%method, route, status, elapsed_ms, "request served");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}

/// The most headers a request may carry, and their size in all (names and values). Below the
/// HTTP parser's own ceiling (96 headers, 128 KiB of head), which can only answer a bare 431, so
/// that oversized requests meet this answer instead: problem+json with a request id.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Refuses requests whose headers exceed `MAX_HEADERS` or `MAX_HEADER_BYTES` with
/// 431 `headers_too_large`, and a NUL character (`%00`) in the path or the query with 400
/// `invalid_path` or `invalid_query`: no stored text may hold one (PostgreSQL refuses it), so
/// it is refused here, alike on both backends, before anything looks it up.
pub async fn request_limits(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let count = req.headers().len();
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len().saturating_add(v.len()))
        .fold(0usize, usize::saturating_add);
    if count > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let err = ApiError::HeadersTooLarge {
            count: MAX_HEADERS,
            bytes: MAX_HEADER_BYTES,
        };
        return Ok(req.error_response(err).map_into_right_body());
    }
    if has_nul(req.path()) {
        let err = ApiError::InvalidPath("a path may not contain a NUL character (%00)".into());
        return Ok(req.error_response(err).map_into_right_body());
    }
    if has_nul(req.query_string()) {
        let err = ApiError::InvalidQuery("a query may not contain a NUL character (%00)".into());
        return Ok(req.error_response(err).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A percent-encoded NUL (`%00`) in a raw path or query.
fn has_nul(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| w == b"%00")
}

/// A `\u0000` escape in a JSON text's strings (a raw NUL is not valid JSON anyway). Escapes are
/// skipped in pairs, so an escaped backslash followed by `u0000` is text, not a NUL.
pub fn json_has_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The methods each route pattern answers, read from the served OpenAPI document (every API
/// route is in it): a 405 names them in `Allow`, as RFC 9110 asks.
pub struct AllowedMethods(std::collections::HashMap<String, String>);

impl AllowedMethods {
    pub fn from_document(doc: &serde_json::Value) -> Self {
        let paths = doc["paths"].as_object().into_iter().flatten();
        Self(
            paths
                .map(|(path, item)| {
                    let methods: Vec<String> = crate::web::contract::METHODS
                        .iter()
                        .filter(|m| item.get(**m).is_some())
                        .map(|m| m.to_ascii_uppercase())
                        .collect();
                    (path.clone(), methods.join(", "))
                })
                .collect(),
        )
    }

    fn of(&self, pattern: &str) -> Option<&str> {
        self.0.get(pattern).map(String::as_str)
    }
}

/// Turns every error answer that is not problem+json yet (actix's own 404, 405, 413, ...) into
/// one, so clients meet a single error format everywhere.
pub fn problem_fallback<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if already {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, original) = res.into_parts();
    let has_resource = req.resource_map().has_resource(req.path());
    let problem = problem_for_status(status, req.method().as_str(), req.path(), has_resource);
    let mut replacement = problem.response();
    if problem.status == StatusCode::METHOD_NOT_ALLOWED.as_u16() {
        let table = req.app_data::<web::Data<AllowedMethods>>();
        let allow = req
            .resource_map()
            .match_pattern(req.path())
            .and_then(|p| table.and_then(|t| t.of(&p)).map(str::to_owned))
            .and_then(|m| HeaderValue::from_str(&m).ok());
        if let Some(allow) = allow {
            replacement.headers_mut().insert(header::ALLOW, allow);
        }
    }
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement
                .headers_mut()
                .insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, replacement).map_into_right_body(),
    ))
}

/// `has_resource`: some route matches the path, just not for this method. Routes declared with
/// `#[get]`/`#[post]` guard on the method, so actix answers those with 404, not 405.
fn problem_for_status(status: StatusCode, method: &str, path: &str, has_resource: bool) -> Problem {
    let api = match status {
        StatusCode::NOT_FOUND if has_resource => {
            return Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ApiError::MethodNotAllowed.code(),
                ApiError::MethodNotAllowed.title(),
                format!("{path} does not accept {method}."),
            )
        }
        StatusCode::NOT_FOUND => {
            return Problem::new(
                status,
                ApiError::RouteNotFound.code(),
                ApiError::RouteNotFound.title(),
                format!("No route matches {method} {path}."),
            )
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            return Problem::new(
                status,
                ApiError::MethodNotAllowed.code(),
                ApiError::MethodNotAllowed.title(),
                format!("{path} does not accept {method}."),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported media type"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "Request timeout"),
        s if s.is_server_error() => ("internal_error", "Internal server error"),
        _ => ("bad_request", "Bad request"),
    };
    let detail = status
        .canonical_reason()
        .unwrap_or("The request was refused.")
        .to_owned();
    Problem::new(status, api.0, api.1, detail)
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| {
            let api = match err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. }
                | JsonPayloadError::Payload(PayloadError::Overflow) => {
                    ApiError::PayloadTooLarge { limit }
                }
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType {
                    expected: "application/json",
                },
                JsonPayloadError::Deserialize(e) => ApiError::InvalidJson(e.to_string()),
                other => ApiError::BadRequest(other.to_string()),
            };
            api.into()
        })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| ApiError::InvalidPath(err.to_string()).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::InvalidQuery(err.to_string()).into())
}

/// A JSON request body for the API. Unlike `web::Json`, a body of the wrong shape names the
/// offending field: syntax errors answer 400 `invalid_json`, a missing or mistyped field 422
/// `validation_failed` with `errors[].field` set to its path.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let is_json = req
            .mime_type()
            .ok()
            .flatten()
            .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let limit = req
            .app_data::<web::Data<crate::web::AppState>>()
            .map_or(1024 * 1024, |s| s.settings.max_body_bytes);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType {
                    expected: "application/json",
                });
            }
            let bytes = body
                .await
                .map_err(|_| ApiError::PayloadTooLarge { limit })?;
            if json_has_nul(&bytes) {
                return Err(ApiError::InvalidJson(
                    "text values may not contain a NUL character (\\u0000)".into(),
                ));
            }
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            crate::error::from_json(de).map(ApiJson)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{has_nul, json_has_nul};

    #[test]
    fn a_nul_escape_is_found_in_json_strings_but_an_escaped_backslash_is_not_one() {
        assert!(json_has_nul(br#"{"name":"a\u0000b"}"#));
        assert!(!json_has_nul(br#"{"name":"a\\u0000b"}"#));
        assert!(json_has_nul(br#"{"name":"a\\\u0000b"}"#));
        assert!(!json_has_nul(br#"{"name":"a\u00e9b"}"#));
        assert!(has_nul("customer_id=a%00b"));
        assert!(!has_nul("customer_id=a%20b%0A0"));
    }
}
