//! Runs a planned provider call with the tenant's connection: the connection's secret opened, the
//! request authenticated as the provider's credential spec says (a cached OAuth2 token, fetched
//! again once on a 401; or an API key header), and the provider's answer mapped to ours.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::ApiError;
use crate::providers::action::{ApiAuth, Call};
use crate::providers::client::{error_chain, Credentials};
use crate::providers::credentials::Target;
use crate::providers::Provider;
use crate::store::provider_connection;
use crate::web::auth::TenantScope;
use crate::web::AppState;

/// What a provider answered, or why no answer could be had.
pub(super) struct Called {
    pub status: Option<u16>,
    pub result: Result<Option<Value>, ApiError>,
}

impl Called {
    fn failed(e: ApiError) -> Self {
        Self {
            status: None,
            result: Err(e),
        }
    }
}

/// The provider's own words from an error body: common JSON fields, else the text.
fn provider_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["detail", "message", "error_description", "error", "errors"] {
            match v.get(key) {
                Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
                Some(other @ (Value::Array(_) | Value::Object(_))) => {
                    return Some(other.to_string())
                }
                _ => {}
            }
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    (!text.is_empty()).then(|| text.chars().take(500).collect())
}

/// Maps a provider's answer to ours. 2xx passes through; the rest become problems carrying the
/// provider's message.
async fn interpret(name: &str, res: reqwest::Response) -> Called {
    let status = res.status();
    let wait = crate::delivery::send::retry_after(res.headers()).map(|d| d.as_secs().max(1));
    let body = res.bytes().await.unwrap_or_default();
    let said = provider_message(&body);
    let with = |what: &str| match &said {
        Some(m) => format!("{name} {what}: {m}"),
        None => format!("{name} {what}"),
    };
    let result = match status.as_u16() {
        200..=299 => Ok(serde_json::from_slice::<Value>(&body).ok()),
        400 => Err(ApiError::ProviderBadRequest(with(
            "refused the request (400)",
        ))),
        401 => Err(ApiError::ProviderCredentialsRejected(with(
            "refused the connection's credentials (401)",
        ))),
        403 => Err(ApiError::ProviderForbidden(with(
            "says this is not available to the tenant (403)",
        ))),
        404 => Err(ApiError::ProviderNotFound(with("does not know it (404)"))),
        429 => Err(ApiError::ProviderRateLimited {
            message: with("asks to slow down (429)"),
            retry_after_secs: wait,
        }),
        other => Err(ApiError::ProviderFailed(with(&format!("answered {other}")))),
    };
    Called {
        status: Some(status.as_u16()),
        result,
    }
}

fn unreachable(name: &str, e: &reqwest::Error) -> ApiError {
    ApiError::ProviderUnreachable(format!("{name} could not be reached: {}", error_chain(e)))
}

/// Opens a connection's sealed secret (client secret or API key).
fn open_secret(
    state: &AppState,
    conn: &provider_connection::Model,
) -> Result<Option<SecretString>, ApiError> {
    let Some(sealed) = &conn.secret_ciphertext else {
        return Ok(None);
    };
    state
        .cipher
        .open(
            sealed,
            &provider_connection::secret_context(conn.provider, &conn.id),
        )
        .map(Some)
        .map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "a stored provider secret could not be decrypted"
            ))
        })
}

fn base_url(conn: &provider_connection::Model, name: &str) -> Result<reqwest::Url, ApiError> {
    let base = conn.api_base_url.as_deref().ok_or_else(|| {
        ApiError::ConnectionIncomplete(format!("the {name} connection has no api_base_url"))
    })?;
    // Relative paths join below the base only when it ends with a slash.
    let base = if base.ends_with('/') {
        base.to_owned()
    } else {
        format!("{base}/")
    };
    reqwest::Url::parse(&base).map_err(|e| {
        ApiError::ConnectionIncomplete(format!("the {name} connection's api_base_url: {e}"))
    })
}

async fn connection(
    state: &AppState,
    scope: &TenantScope,
    provider: Provider,
) -> Result<provider_connection::Model, ApiError> {
    provider_connection::find_for_tenant(&state.db, scope.id(), provider)
        .await?
        .ok_or_else(|| {
            ApiError::ConnectionIncomplete(format!(
                "the tenant has no {} connection; create it with PUT /api/v1/tenants/{}/providers/{}",
                provider.as_str(),
                scope.tenant.slug,
                provider.as_str()
            ))
        })
}

/// How a call is authenticated.
enum Auth {
    Bearer(Credentials),
    Header(&'static str, SecretString),
}

fn authorize(
    state: &AppState,
    conn: &provider_connection::Model,
    provider: Provider,
) -> Result<Auth, ApiError> {
    let plugin = provider.plugin();
    let (name, spec) = (plugin.display_name(), plugin.credentials());
    let secret = open_secret(state, conn)?;
    let secret_field = spec
        .fields
        .iter()
        .find(|f| matches!(f.target, Target::Secret))
        .map_or("secret", |f| f.name);
    match spec.api {
        ApiAuth::ClientCredentials { scope } => {
            let (Some(client_id), Some(client_secret)) = (conn.client_id.clone(), secret) else {
                return Err(ApiError::ConnectionIncomplete(format!(
                    "the {name} connection has no client_id and {secret_field}; set them with \
                     PUT /api/v1/tenants/{{tenant}}/providers/{provider}"
                )));
            };
            let token_url = conn.token_url.clone().ok_or_else(|| {
                ApiError::ConnectionIncomplete(format!("the {name} connection has no token_url"))
            })?;
            Ok(Auth::Bearer(Credentials {
                provider: name,
                connection: conn.id.clone(),
                version: conn.updated_at.timestamp_micros().to_string(),
                client_id,
                client_secret,
                token_url,
                scope,
            }))
        }
        ApiAuth::ApiKeyHeader(header) => match secret {
            Some(key) => Ok(Auth::Header(header, key)),
            None => Err(ApiError::ConnectionIncomplete(format!(
                "the {name} connection has no {secret_field}; set it with PUT \
                 /api/v1/tenants/{{tenant}}/providers/{provider}"
            ))),
        },
        ApiAuth::None => Err(ApiError::ConnectionIncomplete(format!(
            "{name} has no API the gateway calls"
        ))),
    }
}

/// The call's URL below the connection's API base and how it is authenticated; any problem with
/// the connection answers before anything is sent.
pub(super) async fn prepare(
    state: &AppState,
    scope: &TenantScope,
    provider: Provider,
    call: &Call,
) -> Result<Prepared, ApiError> {
    let conn = connection(state, scope, provider).await?;
    let auth = authorize(state, &conn, provider)?;
    let name = provider.plugin().display_name();
    let url = base_url(&conn, name)?
        .join(&call.path)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("building the {name} URL: {e}")))?;
    Ok(Prepared { conn, auth, url })
}

pub(super) struct Prepared {
    conn: provider_connection::Model,
    auth: Auth,
    url: reqwest::Url,
}

/// Sends the call. With a token, a 401 drops it and the call is made once more with a new one
/// (a token can be revoked early: Uber invalidates the oldest of more than 100).
pub(super) async fn send(state: &AppState, provider: Provider, p: Prepared, call: &Call) -> Called {
    let providers = &state.providers;
    let name = provider.plugin().display_name();
    for attempt in 0..2 {
        let mut request = providers.http.request(call.method.clone(), p.url.clone());
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let serial = match &p.auth {
            Auth::Bearer(creds) => match providers.token(creds).await {
                Ok(token) => {
                    request = request.bearer_auth(token.secret.expose_secret());
                    Some(token.serial)
                }
                Err(e) => return Called::failed(e),
            },
            Auth::Header(header, key) => {
                request = request.header(*header, key.expose_secret());
                None
            }
        };
        let res = match request.send().await {
            Ok(r) => r,
            Err(e) => return Called::failed(unreachable(name, &e)),
        };
        if let (Some(serial), reqwest::StatusCode::UNAUTHORIZED, 0) =
            (serial, res.status(), attempt)
        {
            providers.invalidate(&p.conn.id, serial).await;
            continue;
        }
        return interpret(name, res).await;
    }
    Called::failed(ApiError::ProviderFailed(format!(
        "{name} refused two tokens in a row"
    )))
}
