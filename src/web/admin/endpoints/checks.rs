//! The checks an endpoint's fields pass before anything is stored; each problem is reported
//! with its field.

use std::collections::BTreeMap;

use actix_web::http::header;

use crate::domain::EndpointUrl;
use crate::error::FieldError;
use crate::web::AppState;

/// Headers the gateway sets itself; an endpoint may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    crate::delivery::send::DELIVERY_ID,
    crate::delivery::send::SEQUENCE,
    "user-agent",
];

/// A callback URL: well formed, allowed by scheme, and not pointing where the SSRF guard would
/// refuse every delivery (a literal internal address, or a URL HTTP parsers read differently).
pub(super) fn check_url(
    state: &AppState,
    text: &str,
    errors: &mut Vec<FieldError>,
) -> Option<EndpointUrl> {
    let guard = crate::delivery::ssrf::Guard::from_settings(&state.settings.delivery);
    EndpointUrl::parse(text.trim(), state.settings.allow_http_endpoints)
        .and_then(|url| guard.check_url(url.as_str()).map(|()| url))
        .map_err(|m| errors.push(FieldError::new("url", m)))
        .ok()
}

pub(super) fn check_description(text: &str, errors: &mut Vec<FieldError>) {
    if text.chars().count() > 500 {
        errors.push(FieldError::new(
            "description",
            "must be at most 500 characters",
        ));
    }
}

pub(super) fn check_event_types(types: &[String], errors: &mut Vec<FieldError>) {
    if types.len() > 100 {
        errors.push(FieldError::new("event_types", "at most 100 filters"));
    }
    for (i, t) in types.iter().enumerate() {
        let body = t.strip_suffix('*').unwrap_or(t);
        let ok = !t.is_empty()
            && t.len() <= 100
            && body.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !ok {
            errors.push(FieldError::new(
                format!("event_types[{i}]"),
                "must be an event type like `transport.request.assigned`, or a prefix ending in `*`",
            ));
        }
    }
}

pub(super) fn check_headers(headers: &BTreeMap<String, String>, errors: &mut Vec<FieldError>) {
    if headers.len() > 20 {
        errors.push(FieldError::new("headers", "at most 20 headers"));
    }
    for (name, value) in headers {
        let field = format!("headers.{name}");
        if header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(FieldError::new(field, "is not a valid header name"));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.push(FieldError::new(
                field,
                "is set by the gateway and cannot be overridden",
            ));
        } else if header::HeaderValue::from_str(value).is_err()
            || value.len() > 4096
            || !value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            // Visible ASCII and spaces only: other bytes are read differently by receivers.
            errors.push(FieldError::new(field, "is not a valid header value"));
        }
    }
}

pub(super) fn check_rate_limit(n: u32, errors: &mut Vec<FieldError>) {
    if n > 10_000 {
        errors.push(FieldError::new(
            "rate_limit_per_second",
            "must be at most 10000",
        ));
    }
}

pub(super) fn check_concurrency(n: u32, errors: &mut Vec<FieldError>) {
    if n > 100 {
        errors.push(FieldError::new("max_concurrency", "must be at most 100"));
    }
}

/// A heartbeat every 1 to 1440 minutes (`0` removes it).
pub(super) fn check_heartbeat(n: u32, errors: &mut Vec<FieldError>) {
    if n > 1440 {
        errors.push(FieldError::new(
            "heartbeat_minutes",
            "must be between 1 and 1440 (0 removes the heartbeat)",
        ));
    }
}
