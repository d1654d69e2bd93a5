//! Provider connections: per tenant and provider, the keys that verify inbound webhooks, the
//! credentials the gateway uses toward the provider, and the webhook URLs to paste into the
//! provider's settings.

use actix_web::http::header;
use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, ModelTrait};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::CommonErrors;
use crate::crypto::Cipher;
use crate::domain::keys::RsaPublicKeyPem;
use crate::domain::{
    mask, parse_cidr, ConnectionId, EndpointUrl, KeyId, Provider, SigningSecret, TenantId,
};
use crate::error::{ApiError, FieldError, Problem};
use crate::store::{provider_connection, provider_key, tenant};
use crate::web::auth::TenantScope;
use crate::web::http::ApiJson;
use crate::web::AppState;

pub const VECTORCARE_TOKEN_URL: &str = "https://auth.vectorcare.com/v2.0/oauth2/token";
pub const VECTORCARE_API_BASE_URL: &str = "https://hub.vectorcare.com/openapi/v2.0/";

/// Vital / Junction API base URL per region.
pub fn vital_region_url(region: &str) -> Option<&'static str> {
    match region {
        "us" => Some("https://api.us.junction.com/"),
        "eu" => Some("https://api.eu.junction.com/"),
        "us-sandbox" => Some("https://api.sandbox.us.junction.com/"),
        "eu-sandbox" => Some("https://api.sandbox.eu.junction.com/"),
        _ => None,
    }
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(put_vectorcare)
        .service(put_vital)
        .service(get_connection)
        .service(delete_connection)
        .service(add_key)
        .service(delete_key)
        // Undocumented on purpose: it only turns an unknown `{provider}` into a clear 422.
        .map(|c| c.service(put_unknown));
}

/// The URLs to paste into the provider's webhook settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookUrls {
    /// By slug: `{public_url}/webhooks/{provider}/{slug}`.
    #[schema(example = "https://gateway.example.com/webhooks/vectorcare/acme-health")]
    pub path: String,
    /// By customer id (VectorCare's documented pattern); `null` when the tenant has none.
    #[schema(example = "https://gateway.example.com/webhooks/vectorcare?customer_id=123")]
    pub customer_id: Option<String>,
}

pub fn webhook_urls(
    public_url: &url::Url,
    provider: Provider,
    tenant: &tenant::Model,
) -> WebhookUrls {
    let base = public_url.as_str().trim_end_matches('/');
    WebhookUrls {
        path: format!("{base}/webhooks/{provider}/{}", tenant.slug),
        customer_id: tenant.customer_id.as_ref().map(|c| {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("customer_id", c)
                .finish();
            format!("{base}/webhooks/{provider}?{query}")
        }),
    }
}

/// One verification key: an RSA public key (VectorCare) or a signing secret (Vital).
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationKey {
    pub id: KeyId,
    /// `rsa_public_key` or `signing_secret`.
    #[schema(example = "rsa_public_key")]
    pub kind: String,
    /// Masked for secrets (`whsec_****abcd`); the key size for public keys (`RSA-2048`).
    pub hint: String,
    /// SHA-256 of the key material, hex.
    pub fingerprint: String,
    /// The public key itself (public keys only: they are not secret).
    pub public_key_pem: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<provider_key::Model> for VerificationKey {
    fn from(k: provider_key::Model) -> Self {
        Self {
            id: k.id,
            kind: k.kind,
            hint: k.hint,
            fingerprint: k.fingerprint,
            public_key_pem: k.public_pem,
            created_at: k.created_at,
        }
    }
}

/// A tenant's connection to a provider. Secrets are never returned, only their masked hint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    /// VectorCare OAuth2 client id.
    pub client_id: Option<String>,
    /// Masked VectorCare client secret or Vital API key.
    #[schema(example = "****Qx7d")]
    pub secret_hint: Option<String>,
    /// VectorCare OAuth2 token URL.
    pub token_url: Option<String>,
    /// Provider API base URL.
    pub api_base_url: Option<String>,
    /// Source addresses allowed to post webhooks (CIDR); empty allows any.
    pub ip_allowlist: Vec<String>,
    /// Keys that verify inbound webhooks; any one of them may match (rotation).
    pub keys: Vec<VerificationKey>,
    pub webhook_urls: WebhookUrls,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// VectorCare connection settings. On update, absent fields keep their value; `public_keys`, when
/// given, replaces the whole key set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorCareConnectionInput {
    /// RSA public keys in PEM (`-----BEGIN PUBLIC KEY-----`), at least 2048 bits, as copied from
    /// VectorCare's settings. At least one is required when the connection is created.
    pub public_keys: Option<Vec<String>>,
    /// OAuth2 client id for VectorCare's Open API.
    pub client_id: Option<String>,
    /// OAuth2 client secret; write-only.
    pub client_secret: Option<String>,
    /// Default `https://auth.vectorcare.com/v2.0/oauth2/token`.
    pub token_url: Option<String>,
    /// Default `https://hub.vectorcare.com/openapi/v2.0/` (UAT: `https://hub-uat.vectorcare.com/openapi/v2.0/`).
    pub api_base_url: Option<String>,
    /// CIDR ranges or addresses allowed to post webhooks; empty or absent allows any.
    pub ip_allowlist: Option<Vec<String>>,
}

/// Vital / Junction connection settings. On update, absent fields keep their value;
/// `signing_secrets`, when given, replaces the whole set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VitalConnectionInput {
    /// Webhook signing secrets `whsec_...` from Vital's dashboard. At least one is required when
    /// the connection is created.
    pub signing_secrets: Option<Vec<String>>,
    /// API key for Vital's API (`X-Vital-API-Key`); write-only.
    pub api_key: Option<String>,
    /// `us`, `eu`, `us-sandbox` or `eu-sandbox` (default `us`); or give `api_base_url`.
    pub region: Option<String>,
    pub api_base_url: Option<String>,
    /// CIDR ranges or addresses allowed to post webhooks; empty or absent allows any.
    pub ip_allowlist: Option<Vec<String>>,
}

/// Add one key: `public_key_pem` for VectorCare, `signing_secret` for Vital.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKeyInput {
    pub public_key_pem: Option<String>,
    pub signing_secret: Option<String>,
}

/// A key checked and ready to store.
enum NewKey {
    Rsa(RsaPublicKeyPem),
    Secret(SigningSecret),
}

impl NewKey {
    fn fingerprint(&self) -> String {
        match self {
            NewKey::Rsa(k) => k.fingerprint.clone(),
            NewKey::Secret(s) => {
                use sha2::{Digest, Sha256};
                hex::encode(Sha256::digest(s.expose().as_bytes()))
            }
        }
    }

    fn into_model(
        self,
        cipher: &Cipher,
        tenant: &TenantId,
        connection: &ConnectionId,
    ) -> provider_key::ActiveModel {
        let id = KeyId::generate();
        let fingerprint = self.fingerprint();
        let (kind, pem, sealed, hint) = match self {
            NewKey::Rsa(k) => (
                provider_key::KIND_RSA_PUBLIC_KEY,
                Some(k.pem),
                None,
                format!("RSA-{}", k.bits),
            ),
            NewKey::Secret(s) => (
                provider_key::KIND_SIGNING_SECRET,
                None,
                Some(cipher.seal(s.expose(), &format!("provider_key:{id}"))),
                s.hint(),
            ),
        };
        provider_key::ActiveModel {
            id: Set(id),
            connection_id: Set(connection.clone()),
            tenant_id: Set(tenant.clone()),
            kind: Set(kind.to_owned()),
            public_pem: Set(pem),
            secret_ciphertext: Set(sealed),
            hint: Set(hint),
            fingerprint: Set(fingerprint),
            created_at: Set(Utc::now()),
        }
    }
}

fn parse_keys(
    provider: Provider,
    field: &str,
    items: &[String],
    errors: &mut Vec<FieldError>,
) -> Vec<NewKey> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, text) in items.iter().enumerate() {
        let key = match provider {
            Provider::Vectorcare => RsaPublicKeyPem::parse(text).map(NewKey::Rsa),
            Provider::Vital => SigningSecret::parse(text.trim()).map(NewKey::Secret),
        };
        match key {
            Ok(k) if seen.insert(k.fingerprint()) => out.push(k),
            Ok(_) => errors.push(FieldError::new(format!("{field}[{i}]"), "is listed twice")),
            Err(m) => errors.push(FieldError::new(format!("{field}[{i}]"), m)),
        }
    }
    out
}

fn parse_allowlist(items: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, text) in items.iter().enumerate() {
        match parse_cidr(text) {
            Ok(net) => out.push(net.to_string()),
            Err(m) => errors.push(FieldError::new(format!("ip_allowlist[{i}]"), m)),
        }
    }
    out
}

fn parse_url(
    field: &str,
    text: &str,
    allow_http: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    EndpointUrl::parse(text.trim(), allow_http)
        .map(|u| u.as_str().to_owned())
        .map_err(|m| errors.push(FieldError::new(field, m)))
        .ok()
}

fn check_secret_text(field: &str, text: &str, errors: &mut Vec<FieldError>) {
    if text.trim().is_empty() || text.len() > 1000 {
        errors.push(FieldError::new(field, "must be 1 to 1000 characters"));
    }
}

/// What a PUT resolved to, provider-independent.
struct ConnectionChange {
    keys: Option<Vec<NewKey>>,
    client_id: Option<Option<String>>,
    secret: Option<String>,
    token_url: Option<Option<String>>,
    api_base_url: Option<String>,
    ip_allowlist: Option<Vec<String>>,
}

async fn load_view(
    state: &AppState,
    tenant: &tenant::Model,
    provider: Provider,
) -> Result<Connection, ApiError> {
    let conn = provider_connection::find_for_tenant(&state.db, &tenant.id, provider)
        .await?
        .ok_or(ApiError::NotFound)?;
    let keys = provider_key::list_for_connection(&state.db, &tenant.id, &conn.id).await?;
    Ok(Connection {
        webhook_urls: webhook_urls(&state.settings.public_url, provider, tenant),
        id: conn.id,
        tenant_id: conn.tenant_id,
        provider,
        client_id: conn.client_id,
        secret_hint: conn.secret_hint,
        token_url: conn.token_url,
        api_base_url: conn.api_base_url,
        ip_allowlist: serde_json::from_value(conn.ip_allowlist).unwrap_or_default(),
        keys: keys.into_iter().map(VerificationKey::from).collect(),
        created_at: conn.created_at,
        updated_at: conn.updated_at,
    })
}

/// Creates or updates the connection and its key set in one transaction.
async fn apply(
    state: &AppState,
    scope: &TenantScope,
    provider: Provider,
    change: ConnectionChange,
) -> Result<HttpResponse, ApiError> {
    let txn = crate::store::begin_write(&state.db).await?;
    let existing = provider_connection::find_for_tenant(&txn, scope.id(), provider).await?;
    let created = existing.is_none();
    let now = Utc::now();
    let mut model: provider_connection::ActiveModel = match existing {
        Some(m) => m.into(),
        None => {
            if change.keys.as_ref().is_none_or(Vec::is_empty) {
                let field = match provider {
                    Provider::Vectorcare => "public_keys",
                    Provider::Vital => "signing_secrets",
                };
                return Err(ApiError::Validation(vec![FieldError::new(
                    field,
                    "at least one is required to create the connection",
                )]));
            }
            provider_connection::ActiveModel {
                id: Set(ConnectionId::generate()),
                tenant_id: Set(scope.id().clone()),
                provider: Set(provider.as_str().to_owned()),
                client_id: Set(None),
                secret_ciphertext: Set(None),
                secret_hint: Set(None),
                // Production defaults from the providers' documentation; the change may override.
                token_url: Set(match provider {
                    Provider::Vectorcare => Some(VECTORCARE_TOKEN_URL.to_owned()),
                    Provider::Vital => None,
                }),
                api_base_url: Set(match provider {
                    Provider::Vectorcare => Some(VECTORCARE_API_BASE_URL.to_owned()),
                    Provider::Vital => vital_region_url("us").map(str::to_owned),
                }),
                ip_allowlist: Set(serde_json::json!([])),
                created_at: Set(now),
                updated_at: Set(now),
            }
        }
    };
    let connection_id = match &model.id {
        sea_orm::ActiveValue::Set(id) | sea_orm::ActiveValue::Unchanged(id) => id.clone(),
        sea_orm::ActiveValue::NotSet => {
            return Err(ApiError::internal(anyhow::anyhow!("connection id missing")))
        }
    };
    if let Some(v) = change.client_id {
        model.client_id = Set(v);
    }
    if let Some(secret) = change.secret {
        model.secret_ciphertext = Set(Some(state.cipher.seal(
            &secret,
            &provider_connection::secret_context(provider, &connection_id),
        )));
        model.secret_hint = Set(Some(mask(&secret)));
    }
    if let Some(v) = change.token_url {
        model.token_url = Set(v);
    }
    if let Some(v) = change.api_base_url {
        model.api_base_url = Set(Some(v));
    }
    if let Some(v) = change.ip_allowlist {
        model.ip_allowlist = Set(serde_json::json!(v));
    }
    model.updated_at = Set(now);
    if created {
        model.insert(&txn).await?;
    } else {
        model.update(&txn).await?;
    }
    if let Some(keys) = change.keys {
        for old in provider_key::list_for_connection(&txn, scope.id(), &connection_id).await? {
            old.delete(&txn).await?;
        }
        for key in keys {
            key.into_model(&state.cipher, scope.id(), &connection_id)
                .insert(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    let view = load_view(state, &scope.tenant, provider).await?;
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res
        .insert_header((
            header::LOCATION,
            format!("/api/v1/tenants/{}/providers/{provider}", scope.id()),
        ))
        .json(view))
}

/// Set the VectorCare connection
///
/// Admin only. Creates the connection (201) or updates it (200). Keys are validated: each must
/// parse as an RSA public key of at least 2048 bits. The answer includes the webhook URLs to paste
/// into VectorCare's settings.
#[utoipa::path(
    tag = "providers",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = VectorCareConnectionInput,
    responses(
        (status = 200, body = Connection, description = "Updated"),
        (status = 201, body = Connection, description = "Created"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`), e.g. a bad PEM or a short key"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[put("/tenants/{tenant}/providers/vectorcare")]
async fn put_vectorcare(
    state: web::Data<AppState>,
    scope: TenantScope,
    body: ApiJson<VectorCareConnectionInput>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let input = body.0;
    let allow_http = state.settings.allow_http_endpoints;
    let mut errors = Vec::new();
    let keys = input
        .public_keys
        .as_deref()
        .map(|k| parse_keys(Provider::Vectorcare, "public_keys", k, &mut errors));
    if let Some(c) = &input.client_id {
        check_secret_text("client_id", c, &mut errors);
    }
    if let Some(s) = &input.client_secret {
        check_secret_text("client_secret", s, &mut errors);
    }
    let token_url = input
        .token_url
        .as_deref()
        .map(|u| parse_url("token_url", u, allow_http, &mut errors));
    let api_base_url = input
        .api_base_url
        .as_deref()
        .map(|u| parse_url("api_base_url", u, allow_http, &mut errors));
    let ip_allowlist = input
        .ip_allowlist
        .as_deref()
        .map(|l| parse_allowlist(l, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let change = ConnectionChange {
        keys,
        client_id: input.client_id.map(|c| Some(c.trim().to_owned())),
        secret: input.client_secret,
        token_url: token_url.flatten().map(Some),
        api_base_url: api_base_url.flatten().map(|u| {
            if u.ends_with('/') {
                u
            } else {
                format!("{u}/")
            }
        }),
        ip_allowlist,
    };
    apply(&state, &scope, Provider::Vectorcare, change).await
}

/// Set the Vital connection
///
/// Admin only. Creates the connection (201) or updates it (200). Signing secrets must be
/// `whsec_` followed by base64 of 24 to 64 bytes.
#[utoipa::path(
    tag = "providers",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = VitalConnectionInput,
    responses(
        (status = 200, body = Connection, description = "Updated"),
        (status = 201, body = Connection, description = "Created"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields (`validation_failed`), e.g. a bad `whsec_`"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[put("/tenants/{tenant}/providers/vital")]
async fn put_vital(
    state: web::Data<AppState>,
    scope: TenantScope,
    body: ApiJson<VitalConnectionInput>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let input = body.0;
    let allow_http = state.settings.allow_http_endpoints;
    let mut errors = Vec::new();
    let keys = input
        .signing_secrets
        .as_deref()
        .map(|k| parse_keys(Provider::Vital, "signing_secrets", k, &mut errors));
    if let Some(s) = &input.api_key {
        check_secret_text("api_key", s, &mut errors);
    }
    let mut api_base_url = None;
    if let Some(region) = &input.region {
        match vital_region_url(region) {
            Some(u) => api_base_url = Some(u.to_owned()),
            None => errors.push(FieldError::new(
                "region",
                "must be one of us, eu, us-sandbox, eu-sandbox",
            )),
        }
    }
    if let Some(u) = &input.api_base_url {
        api_base_url = parse_url("api_base_url", u, allow_http, &mut errors);
    }
    let ip_allowlist = input
        .ip_allowlist
        .as_deref()
        .map(|l| parse_allowlist(l, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let change = ConnectionChange {
        keys,
        client_id: None,
        secret: input.api_key,
        token_url: None,
        api_base_url,
        ip_allowlist,
    };
    apply(&state, &scope, Provider::Vital, change).await
}

/// A `{provider}` the gateway does not know answers 422 naming the field, for every method.
fn unknown_provider(provider: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(
        "provider",
        format!("unknown provider `{provider}`; known: vectorcare, vital"),
    )])
}

fn provider_from_path(text: &str) -> Result<Provider, ApiError> {
    Provider::parse(text).map_err(|_| unknown_provider(text))
}

#[put("/tenants/{tenant}/providers/{provider}")]
async fn put_unknown(
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    Err(unknown_provider(&path.1))
}

/// Get a provider connection
///
/// Secrets appear only as masked hints. Includes the webhook URLs for the provider's settings.
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "`vectorcare` or `vital`")
    ),
    responses(
        (status = 200, body = Connection),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "unknown provider (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[get("/tenants/{tenant}/providers/{provider}")]
async fn get_connection(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider_from_path(&path.1)?;
    Ok(HttpResponse::Ok().json(load_view(&state, &scope.tenant, provider).await?))
}

/// Delete a provider connection
///
/// Admin only. Its webhooks are refused from then on (404).
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "`vectorcare` or `vital`")
    ),
    responses((status = 204, description = "Deleted"), CommonErrors),
    security(("bearer" = []))
)]
#[delete("/tenants/{tenant}/providers/{provider}")]
async fn delete_connection(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let provider = provider_from_path(&path.1)?;
    let conn = provider_connection::find_for_tenant(&state.db, scope.id(), provider)
        .await?
        .ok_or(ApiError::NotFound)?;
    conn.delete(&state.db).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add a verification key
///
/// Admin only. For key rotation: add the new key, let the provider switch, then delete the old
/// one; until then either verifies. VectorCare takes `public_key_pem`, Vital `signing_secret`.
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "`vectorcare` or `vital`")
    ),
    request_body = AddKeyInput,
    responses(
        (status = 201, body = VerificationKey),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the key is already configured (`conflict`)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid key (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[post("/tenants/{tenant}/providers/{provider}/keys")]
async fn add_key(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: ApiJson<AddKeyInput>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let provider = provider_from_path(&path.1)?;
    let (field, text, other) = match provider {
        Provider::Vectorcare => (
            "public_key_pem",
            &body.0.public_key_pem,
            &body.0.signing_secret,
        ),
        Provider::Vital => (
            "signing_secret",
            &body.0.signing_secret,
            &body.0.public_key_pem,
        ),
    };
    let mut errors = Vec::new();
    if other.is_some() {
        let other_field = if field == "public_key_pem" {
            "signing_secret"
        } else {
            "public_key_pem"
        };
        errors.push(FieldError::new(
            other_field,
            format!("does not apply to {provider}"),
        ));
    }
    let keys = match text {
        Some(t) => parse_keys(provider, field, std::slice::from_ref(t), &mut errors),
        None => {
            errors.push(FieldError::new(field, "is required"));
            Vec::new()
        }
    };
    let key = match keys.into_iter().next() {
        Some(k) if errors.is_empty() => k,
        _ => {
            for e in &mut errors {
                e.field = e.field.trim_end_matches("[0]").to_owned();
            }
            return Err(ApiError::Validation(errors));
        }
    };
    let conn = provider_connection::find_for_tenant(&state.db, scope.id(), provider)
        .await?
        .ok_or(ApiError::NotFound)?;
    let model = key
        .into_model(&state.cipher, scope.id(), &conn.id)
        .insert(&state.db)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/tenants/{}/providers/{provider}/keys/{}",
                scope.id(),
                model.id
            ),
        ))
        .json(VerificationKey::from(model)))
}

/// Delete a verification key
///
/// Admin only. The last key of a connection cannot be deleted (422): delete the connection
/// instead, or add the new key first.
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "`vectorcare` or `vital`"),
        ("key" = KeyId, Path, description = "Key id")
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "it is the connection's last key (`validation_failed`)"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[delete("/tenants/{tenant}/providers/{provider}/keys/{key}")]
async fn delete_key(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let provider = provider_from_path(&path.1)?;
    let key_id = KeyId::parse(&path.2).map_err(|_| ApiError::NotFound)?;
    let conn = provider_connection::find_for_tenant(&state.db, scope.id(), provider)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = provider_key::find_for_tenant(&state.db, scope.id(), &conn.id, &key_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let count = provider_key::list_for_connection(&state.db, scope.id(), &conn.id)
        .await?
        .len();
    if count <= 1 {
        return Err(ApiError::Validation(vec![FieldError::new(
            "key",
            "is the connection's last key; add its replacement first",
        )]));
    }
    provider_key::Entity::delete_by_id(key.id)
        .exec(&state.db)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
