//! The gateway as the providers' client: one HTTP client (no redirects, bounded time) and the
//! OAuth2 token cache for connections that use client credentials. A token is fetched once and
//! shared by every call of its connection until it expires (some providers limit token requests:
//! Uber allows 100 an hour, and a new token can invalidate the oldest).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::ConnectionId;
use crate::error::ApiError;

/// A token lives this long when the token endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// What the token endpoint needs, read from the tenant's connection.
pub struct Credentials {
    /// The provider's name for messages (`VectorCare`).
    pub provider: &'static str,
    pub connection: ConnectionId,
    /// The connection's `updated_at`: it changes with its credentials or URLs, and an old token
    /// is dropped then.
    pub version: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub token_url: String,
    pub scope: Option<&'static str>,
}

/// A cached access token and when to fetch the next one (at 80 % of its lifetime).
struct Cached {
    version: String,
    token: SecretString,
    refresh_at: Instant,
    serial: u64,
}

/// A token handed to a call; `serial` tells the cache which token a 401 was about.
pub struct Token {
    pub secret: SecretString,
    pub serial: u64,
}

pub struct ProviderClient {
    pub http: reqwest::Client,
    tokens: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    serial: std::sync::atomic::AtomicU64,
}

impl ProviderClient {
    /// The environment's proxy variables are ignored, as for callbacks; `proxy` is the
    /// configured `outbound_proxy`.
    pub fn new(timeout: Duration, proxy: Option<&url::Url>) -> Self {
        let http = crate::outbound::client(proxy)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirect could carry the bearer token or the client secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("webhook-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            http,
            tokens: Mutex::new(HashMap::new()),
            serial: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn slot(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_default()
            .clone()
    }

    /// A valid token for the connection. Concurrent callers wait for one token request and share
    /// its answer instead of each asking the provider.
    pub async fn token(&self, c: &Credentials) -> Result<Token, ApiError> {
        let slot = self.slot(&c.connection);
        let mut cached = slot.lock().await;
        if let Some(t) = cached.as_ref() {
            if t.version == c.version && Instant::now() < t.refresh_at {
                return Ok(Token {
                    secret: t.token.clone(),
                    serial: t.serial,
                });
            }
        }
        let (token, lifetime) = self.fetch(c).await?;
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *cached = Some(Cached {
            version: c.version.clone(),
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.mul_f64(0.8),
            serial,
        });
        Ok(Token {
            secret: token,
            serial,
        })
    }

    /// Drops the token a call found refused (401), unless another call already replaced it.
    pub async fn invalidate(&self, connection: &ConnectionId, serial: u64) {
        let slot = self.slot(connection);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|t| t.serial == serial) {
            *cached = None;
        }
    }

    async fn fetch(&self, c: &Credentials) -> Result<(SecretString, Duration), ApiError> {
        let url = TokenUrl::new(c.token_url.clone()).map_err(|e| {
            ApiError::ConnectionIncomplete(format!("the connection's token_url is not valid: {e}"))
        })?;
        // The credentials go in the form body, as VectorCare and Uber document.
        let client = BasicClient::new(ClientId::new(c.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                c.client_secret.expose_secret().to_owned(),
            ))
            .set_token_uri(url)
            .set_auth_type(AuthType::RequestBody);
        let mut exchange = client.exchange_client_credentials();
        if let Some(scope) = c.scope {
            exchange = exchange.add_scope(Scope::new(scope.to_owned()));
        }
        let name = c.provider;
        // The status is kept: a token endpoint that limits requests (Uber: 100 an hour) answers
        // 429 with a body that is no OAuth2 error, and the caller should hear "slow down".
        let limited = Mutex::new(None);
        let http = |request: oauth2::HttpRequest| {
            let sent = oauth2::AsyncHttpClient::call(&self.http, request);
            let limited = &limited;
            async move {
                let answer = sent.await?;
                if answer.status().as_u16() == 429 {
                    let wait = answer
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    *limited.lock().unwrap_or_else(|p| p.into_inner()) = Some(wait);
                }
                Ok::<_, oauth2::HttpClientError<reqwest::Error>>(answer)
            }
        };
        let answer = exchange.request_async(&http).await;
        if answer.is_err() {
            if let Some(wait) = *limited.lock().unwrap_or_else(|p| p.into_inner()) {
                return Err(ApiError::ProviderRateLimited {
                    message: format!("{name}'s token endpoint asks to slow down (429)"),
                    retry_after_secs: wait,
                });
            }
        }
        match answer {
            Ok(answer) => {
                let lifetime = answer
                    .expires_in()
                    .filter(|d| !d.is_zero())
                    .unwrap_or(DEFAULT_LIFETIME);
                Ok((
                    SecretString::from(answer.access_token().secret().to_owned()),
                    lifetime,
                ))
            }
            Err(RequestTokenError::ServerResponse(r))
                if *r.error() == BasicErrorResponseType::InvalidClient =>
            {
                tracing::warn!(connection = %c.connection, "the provider refused the connection's client credentials");
                Err(ApiError::ProviderCredentialsRejected(format!(
                    "{name} refused this connection's client credentials (invalid_client): \
                     set a valid client_id and client_secret on the tenant's {name} connection"
                )))
            }
            Err(RequestTokenError::ServerResponse(r)) => Err(ApiError::ProviderFailed(format!(
                "{name}'s token endpoint answered `{}`{}",
                r.error(),
                r.error_description()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ))),
            Err(RequestTokenError::Request(e)) => Err(ApiError::ProviderUnreachable(format!(
                "{name}'s token endpoint could not be reached: {}",
                error_chain(&e)
            ))),
            Err(RequestTokenError::Parse(_, _)) => Err(ApiError::ProviderFailed(format!(
                "{name}'s token endpoint answered something that is not a token"
            ))),
            Err(RequestTokenError::Other(m)) => Err(ApiError::ProviderFailed(format!(
                "{name}'s token endpoint failed: {m}"
            ))),
        }
    }
}

/// An error with its causes, one line: reqwest hides the useful part (refused, timed out) in them.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
