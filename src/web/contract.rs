//! What the OpenAPI document says beyond the routes' own annotations, so that it describes what
//! the server answers and accepts: the statuses the cross-cutting layers give (the extractors'
//! 400, 413, 415 and 422; 503 `database_unavailable`), and the limits the handlers enforce,
//! written as JSON Schema keywords. A schema-driven fuzzer (schemathesis, in CI) holds the
//! server to it: no undocumented status, no schema-valid request refused.

use serde_json::{json, Value};

use crate::domain::patterns;
use crate::providers::Provider;

/// The document as served: the routes' annotations, completed (see the module's description).
/// JSON, because utoipa's types cannot read back every schema they write.
pub fn complete(api: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api).unwrap_or(Value::Null);
    name_provider_variants(&mut doc);
    add_responses(&mut doc);
    add_limits(&mut doc);
    add_rules(&mut doc);
    forbid_nul(&mut doc);
    doc
}

/// Rules between fields: an admin token names no tenant, a tenant token must; a pull endpoint
/// has no URL and none of the push options, a push endpoint has a URL, and a FIFO endpoint does
/// not supersede.
fn add_rules(doc: &mut Value) {
    if let Some(Value::Object(endpoint)) = doc.pointer_mut("/components/schemas/CreateEndpoint") {
        endpoint.insert(
            "allOf".into(),
            json!([
                {
                    "if": {"properties": {"kind": {"const": "pull"}}, "required": ["kind"]},
                    "then": {"properties": {
                        "url": {"type": "null"},
                        "handshake": {"const": false},
                        "supersede": {"const": false},
                        "heartbeat_minutes": {"enum": [0, null]}
                    }},
                    "else": {"required": ["url"], "properties": {"url": {"type": "string"}}}
                },
                {
                    "if": {"properties": {"ordering": {"const": "fifo_subject"}}, "required": ["ordering"]},
                    "then": {"properties": {"supersede": {"const": false}}}
                }
            ]),
        );
    }
    if let Some(Value::Object(token)) = doc.pointer_mut("/components/schemas/CreateToken") {
        // `if`/`then`/`else` rather than `oneOf`: removing `tenant` from an admin token's body
        // leaves it valid, which a generator reading a `oneOf` branch would take for invalid.
        token.insert(
            "if".into(),
            json!({"properties": {"role": {"const": "tenant"}}}),
        );
        token.insert(
            "then".into(),
            json!({"properties": {"tenant": {"type": "string", "minLength": 1}}, "required": ["tenant"]}),
        );
        token.insert(
            "else".into(),
            json!({"properties": {"tenant": {"type": "null"}}}),
        );
    }
}

/// A body that depends on the provider in the path is documented as an `anyOf` (a connection)
/// or a `oneOf` (a key) over the
/// providers in the registry's order; each variant names its provider (`x-provider`), so a
/// reader, or a generator (`.ci/schemathesis_hooks.py`), can match the body to `{provider}`.
/// One path per provider was tried: it made a connection of a tenant just created look like a
/// resource that should exist, and `Allow` could not match both a provider's own path and the
/// generic one.
fn name_provider_variants(doc: &mut Value) {
    for (component, of) in [("ConnectionInput", "anyOf"), ("AddKeyInput", "oneOf")] {
        let pointer = format!("/components/schemas/{component}/{of}");
        let Some(variants) = doc.pointer_mut(&pointer).and_then(Value::as_array_mut) else {
            continue;
        };
        for (variant, provider) in variants.iter_mut().zip(Provider::all()) {
            if let Some(v) = variant.as_object_mut() {
                v.insert("x-provider".into(), json!(provider.as_str()));
            }
        }
    }
}

/// The operations a path item can hold, as the routes use them.
pub const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {crate::error::PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// Every status the layers around a handler can answer, where they can answer it; a route's own
/// description of a status is kept.
fn add_responses(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let uses_database = path.starts_with("/api/") || path.starts_with("/webhooks/");
        let shared = item.get("parameters").cloned().unwrap_or(json!([]));
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            let params: Vec<String> = shared
                .as_array()
                .into_iter()
                .flatten()
                .chain(op["parameters"].as_array().into_iter().flatten())
                .filter_map(|p| p["in"].as_str().map(str::to_owned))
                .collect();
            let has_body = op.get("requestBody").is_some();
            let mut wanted = Vec::new();
            if !params.is_empty() || has_body {
                wanted.push(("400", "A parameter or the body cannot be read (`invalid_path`, `invalid_query`, `invalid_json`), e.g. a value of the wrong type or a NUL character"));
            }
            if !params.is_empty() || has_body {
                wanted.push(("422", "A value is out of its documented range or invalid (`validation_failed`; `errors` names each field)"));
            }
            if has_body {
                wanted.push((
                    "413",
                    "The body exceeds the size limit (`payload_too_large`)",
                ));
                wanted.push((
                    "415",
                    "The body is not sent as `application/json` (`unsupported_media_type`)",
                ));
            }
            if uses_database {
                wanted.push(("503", "The database is unavailable (`database_unavailable`): nothing was done; send the request again after `Retry-After`"));
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, text) in wanted {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(text));
            }
        }
    }
}

/// The kind of id a list's cursor is (the `next_cursor` of its previous page), by the list's
/// last path segment.
fn cursor_prefix(path: &str) -> Option<&'static str> {
    Some(match path.rsplit('/').next()? {
        "tenants" => "tn",
        "endpoints" => "ep",
        "tokens" => "tok",
        "audit" => "aud",
        "events" => "evt",
        "deliveries" => "dlv",
        "actions" => "act",
        "access-log" => "acc",
        "alerts" => "alr",
        _ => return None,
    })
}
/// A provider's identifier in a path (a request, order or trip id).
const PROVIDER_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,128}$";

/// The handlers' limits, by component schema and property. They restate checks in the
/// handlers (`web/admin/*`, `domain`), which stay the authority: a test sends the limits'
/// edges to both.
fn limits() -> Vec<(&'static str, &'static str, Value)> {
    let slug = json!({"pattern": "^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"});
    let name = json!({"maxLength": 200, "pattern": patterns::NOT_BLANK});
    let customer_id = json!({"pattern": "^[A-Za-z0-9._-]{1,200}$"});
    // https only: what the default configuration accepts (`allow_http_endpoints` adds http).
    let url = json!({"maxLength": 2048, "pattern": patterns::HTTPS_URL});
    let headers = json!({
        "maxProperties": 20,
        "propertyNames": {"pattern": "^(?!(host|content-type|content-length|transfer-encoding|connection|webhook-id|webhook-timestamp|webhook-signature|x-delivery-id|x-gateway-sequence|user-agent)$)[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"},
        "additionalProperties": {"type": "string", "maxLength": 4096, "pattern": "^[\\x20-\\x7e]*$"}
    });
    let event_types = json!({"maxItems": 100, "items": {"type": "string", "pattern": "^(?=.{1,100}$)[a-z0-9._-]*\\*?$"}});
    let description = json!({"maxLength": 500});
    vec![
        ("CreateTenant", "slug", slug.clone()),
        ("CreateTenant", "name", name.clone()),
        ("CreateTenant", "customer_id", customer_id.clone()),
        ("UpdateTenant", "slug", slug),
        // `""` removes it.
        (
            "UpdateTenant",
            "customer_id",
            json!({"pattern": "^[A-Za-z0-9._-]{0,200}$"}),
        ),
        ("UpdateTenant", "name", name.clone()),
        ("CreateToken", "name", name),
        (
            "CreateToken",
            "expires_in",
            json!({"pattern": "^([1-9][0-9]{0,4}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[12][0-9]{3}d|3[0-5][0-9]{2}d)$"}),
        ),
        ("CreateEndpoint", "url", url.clone()),
        ("UpdateEndpoint", "url", url),
        ("CreateEndpoint", "headers", headers.clone()),
        ("UpdateEndpoint", "headers", headers),
        ("CreateEndpoint", "event_types", event_types.clone()),
        ("UpdateEndpoint", "event_types", event_types),
        ("CreateEndpoint", "description", description.clone()),
        ("UpdateEndpoint", "description", description),
        (
            "CreateEndpoint",
            "rate_limit_per_second",
            json!({"minimum": 0, "maximum": 10000}),
        ),
        (
            "UpdateEndpoint",
            "rate_limit_per_second",
            json!({"minimum": 0, "maximum": 10000}),
        ),
        (
            "CreateEndpoint",
            "max_concurrency",
            json!({"minimum": 0, "maximum": 100}),
        ),
        (
            "UpdateEndpoint",
            "max_concurrency",
            json!({"minimum": 0, "maximum": 100}),
        ),
        (
            "CreateEndpoint",
            "heartbeat_minutes",
            json!({"minimum": 0, "maximum": 1440}),
        ),
        (
            "UpdateEndpoint",
            "heartbeat_minutes",
            json!({"minimum": 0, "maximum": 1440}),
        ),
    ]
}

fn add_limits(doc: &mut Value) {
    for (schema, property, keywords) in limits() {
        let Some(target) = doc.pointer_mut(&format!(
            "/components/schemas/{schema}/properties/{property}"
        )) else {
            continue;
        };
        merge(target, &keywords);
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let cursor = cursor_prefix(path).map(|p| format!("^{p}_[0-9a-zA-Z]{{1,64}}$"));
        for method in METHODS {
            let Some(params) = item
                .get_mut(method)
                .and_then(|op| op.get_mut("parameters"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for p in params {
                let keywords = match (p["in"].as_str(), p["name"].as_str()) {
                    (Some("query"), Some("cursor")) => match &cursor {
                        Some(pattern) => json!({"pattern": pattern}),
                        None => continue,
                    },
                    (Some("path"), Some("request" | "trip" | "order")) => {
                        json!({"pattern": PROVIDER_ID_PATTERN})
                    }
                    _ => continue,
                };
                if let Some(schema) = p.get_mut("schema") {
                    merge(schema, &keywords);
                }
            }
        }
    }
}

/// Adds `keywords` to a schema; for a nullable one (`oneOf` with `null`, or a type list) to the
/// part that is not null.
fn merge(schema: &mut Value, keywords: &Value) {
    let Some(extra) = keywords.as_object() else {
        return;
    };
    if let Some(variants) = schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        for v in variants.iter_mut().filter(|v| v["type"] != "null") {
            merge(v, keywords);
        }
        return;
    }
    if let Some(object) = schema.as_object_mut() {
        for (k, v) in extra {
            object.insert(k.clone(), v.clone());
        }
    }
}

/// No stored text may hold a NUL character (PostgreSQL refuses it; the edge answers 400):
/// every string without a pattern, format or list of values says so.
fn forbid_nul(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                _ => false,
            };
            let free = !["pattern", "format", "enum", "const", "$ref"]
                .iter()
                .any(|k| map.contains_key(*k));
            if is_string && free {
                map.insert("pattern".into(), json!("^[^\\u0000]*$"));
            }
            for v in map.values_mut() {
                forbid_nul(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}
