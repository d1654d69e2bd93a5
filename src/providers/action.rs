//! The gateway's calls toward a provider on a tenant's behalf, declared by the provider: the
//! route a tenant calls, what its body looks like, and how a checked input becomes the provider's
//! request ([`Action::plan`]). The web layer registers every action of the registry as a route,
//! documents it in OpenAPI, and runs the planned call with the tenant's connection ([`ApiAuth`]),
//! recording it on the subject's timeline. Nothing of a provider lives outside its folder.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::error::ApiError;

/// One call the gateway makes toward a provider on a tenant's behalf.
#[derive(Serialize, ToSchema)]
pub struct Action {
    /// Stable name, as recorded on the subject's timeline (`accept`).
    pub name: &'static str,
    pub label: &'static str,
    /// The gateway route's method.
    pub method: &'static str,
    /// The gateway's route, `{tenant}` and the provider's ids as placeholders.
    pub path: &'static str,
    pub description: &'static str,
    /// The body's fields, by name (empty: no body).
    pub fields: &'static [&'static str],
    /// More of the route's documentation, for OpenAPI.
    #[serde(skip)]
    pub details: &'static str,
    /// The path placeholder naming the action's subject (its timeline), with its description.
    #[serde(skip)]
    pub subject: Option<(&'static str, &'static str)>,
    /// The body's schema; `None`: the route reads no body.
    #[serde(skip)]
    pub input: Option<InputSchema>,
    /// Checks the caller's input and plans the provider's request; nothing is sent when it fails.
    #[serde(skip)]
    pub plan: Plan,
}

/// See [`Action::plan`].
pub type Plan = fn(&Request) -> Result<Call, ApiError>;

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Action").field("name", &self.name).finish()
    }
}

/// Adds a body's schema (and those it refers to) to `schemas`; answers the reference to it.
pub type InputSchema = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

/// The [`InputSchema`] of `T`.
pub fn input<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    T::schemas(schemas);
    schemas.push((T::name().into_owned(), T::schema()));
    utoipa::openapi::Ref::from_schema_name(T::name()).into()
}

/// What the caller sent.
pub struct Request<'a> {
    /// The subject's path segment, as received.
    pub subject: Option<&'a str>,
    /// The JSON body (`None` for an action without input).
    pub body: Option<Value>,
    pub now: DateTime<Utc>,
}

impl Request<'_> {
    /// The body read into `T`, with the same answers as any API body.
    pub fn body<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        crate::error::from_json(self.body.clone().unwrap_or(Value::Null))
    }

    /// The subject as one segment of the provider's URL: nothing that could change the path
    /// (`/`, `..`, `?`, `%`) gets through. `what` names it in the error.
    pub fn subject_segment(&self, what: &str) -> Result<String, ApiError> {
        let id = self.subject.unwrap_or_default();
        let ok = !id.is_empty()
            && id.len() <= 128
            && id != "."
            && id != ".."
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(id.to_owned())
        } else {
            Err(ApiError::InvalidPath(format!(
                "{what} (letters, digits, `-`, `_`, `.`; at most 128)"
            )))
        }
    }
}

/// The provider's request, planned from a checked input.
pub struct Call {
    pub method: reqwest::Method,
    /// Below the connection's `api_base_url`.
    pub path: String,
    /// Sent as JSON, and recorded as what was sent.
    pub body: Option<Value>,
    /// The timeline subjects the call concerns (`None`: none in particular).
    pub subjects: Vec<Option<String>>,
}

/// How the gateway authenticates toward a provider's API with a tenant's connection.
#[derive(Clone, Copy, Debug)]
pub enum ApiAuth {
    /// The provider has no API the gateway calls.
    None,
    /// OAuth2 client credentials: the connection's client id and secret at its token URL, the
    /// credentials in the form body; the token is cached until it expires.
    ClientCredentials { scope: Option<&'static str> },
    /// The connection's secret in this header.
    ApiKeyHeader(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_cannot_change_the_provider_path() {
        let at = |s: &'static str| Request {
            subject: Some(s),
            body: None,
            now: Utc::now(),
        };
        assert_eq!(at("VC-123_a.b").subject_segment("x").unwrap(), "VC-123_a.b");
        let long = "a".repeat(129);
        for bad in ["", ".", "..", "a/b", "a?b", "a%2Fb", "a b", long.as_str()] {
            let r = Request {
                subject: Some(bad),
                body: None,
                now: Utc::now(),
            };
            assert!(r.subject_segment("x").is_err(), "{bad}");
        }
    }
}
