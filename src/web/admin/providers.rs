//! Provider connections: per tenant and provider, the keys that verify inbound webhooks, the
//! credentials the gateway uses toward the provider, and the webhook URLs to paste into the
//! provider's settings.

use actix_web::http::header;
use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, ModelTrait};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::crypto::Cipher;
use crate::domain::{mask, ConnectionId, KeyId, TenantId};
use crate::error::{ApiError, FieldError, Problem};
use crate::providers::catalog::ProviderInfo;
use crate::providers::credentials::{ConnectionChange, NewKey};
use crate::providers::Provider;
use crate::store::{provider_connection, provider_key, tenant};
use crate::web::admin::connection_schema::{AddKeyInput, ConnectionInput};
use crate::web::auth::{Principal, TenantScope};
use crate::web::http::ApiJson;
use crate::web::responses::CommonErrors;
use crate::web::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_providers)
        .service(put_connection)
        .service(get_connection)
        .service(delete_connection)
        .service(add_key)
        .service(delete_key);
}

/// The URLs to paste into the provider's webhook settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookUrls {
    /// By slug: `{public_url}/webhooks/{provider}/{slug}`.
    #[schema(example = "https://gateway.example.com/webhooks/vectorcare/acme-health")]
    pub path: String,
    /// By customer id (one URL per customer organization, told apart by `?customer_id=`);
    /// `null` when the tenant has none.
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

/// One verification key: a public key or a signing secret, as the provider's key kind says.
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
    /// OAuth2 client id, for providers whose API uses client credentials.
    pub client_id: Option<String>,
    /// The connection's one secret (client secret or API key), masked.
    #[schema(example = "****Qx7d")]
    pub secret_hint: Option<String>,
    /// OAuth2 token URL.
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

/// The key's row, sealed when it is a secret.
fn key_model(
    key: NewKey,
    cipher: &Cipher,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> provider_key::ActiveModel {
    let id = KeyId::generate();
    let (kind, pem, sealed) = if key.is_public() {
        (provider_key::KIND_RSA_PUBLIC_KEY, Some(key.text), None)
    } else {
        let sealed = cipher.seal(&key.text, &format!("provider_key:{id}"));
        (provider_key::KIND_SIGNING_SECRET, None, Some(sealed))
    };
    provider_key::ActiveModel {
        id: Set(id),
        connection_id: Set(connection.clone()),
        tenant_id: Set(tenant.clone()),
        kind: Set(kind.to_owned()),
        public_pem: Set(pem),
        secret_ciphertext: Set(sealed),
        hint: Set(key.hint),
        fingerprint: Set(key.fingerprint),
        created_at: Set(Utc::now()),
    }
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
    let spec = provider.plugin().credentials();
    let txn = crate::store::begin_write(&state.db).await?;
    let existing = provider_connection::find_for_tenant(&txn, scope.id(), provider).await?;
    let created = existing.is_none();
    let now = Utc::now();
    let mut model: provider_connection::ActiveModel = match existing {
        Some(m) => m.into(),
        None => {
            // The same body is a valid update of an existing connection: what it lacks is
            // owed to the resource's state (absent), hence 409 rather than 422.
            if change.keys.is_none() {
                return Err(ApiError::Conflict {
                    field: spec.keys.field.to_owned(),
                    message:
                        "the connection does not exist yet; creating it needs at least one key"
                            .into(),
                });
            }
            provider_connection::ActiveModel {
                id: Set(ConnectionId::generate()),
                tenant_id: Set(scope.id().clone()),
                provider: Set(provider),
                client_id: Set(None),
                secret_ciphertext: Set(None),
                secret_hint: Set(None),
                // Production defaults from the providers' documentation; the change may override.
                token_url: Set(spec.default_token_url.map(str::to_owned)),
                api_base_url: Set(spec.default_api_base_url.map(str::to_owned)),
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
        model.client_id = Set(Some(v));
    }
    if let Some(secret) = change.secret {
        model.secret_ciphertext = Set(Some(state.cipher.seal(
            &secret,
            &provider_connection::secret_context(provider, &connection_id),
        )));
        model.secret_hint = Set(Some(mask(&secret)));
    }
    if let Some(v) = change.token_url {
        model.token_url = Set(Some(v));
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
            key_model(key, &state.cipher, scope.id(), &connection_id)
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

/// Set a provider connection
///
/// Admin only. Creates the connection (201) or updates it (200). The body holds the fields of
/// the provider's credential spec (`GET /api/v1/providers`): VectorCare takes `public_keys`
/// (RSA public keys in PEM, at least 2048 bits), `client_id`, `client_secret`, `token_url`,
/// `api_base_url`; Vital takes `signing_secrets` (`whsec_` followed by base64 of 24 to 64 bytes),
/// `api_key`, `region`, `api_base_url`; every provider takes `ip_allowlist`. The answer includes
/// the webhook URLs to paste into the provider's settings.
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them")
    ),
    request_body = ConnectionInput,
    responses(
        (status = 200, body = Connection, description = "Updated"),
        (status = 201, body = Connection, description = "Created"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the connection does not exist yet and the body has no keys to create it with (`conflict`; `errors` names the key field)"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "invalid fields or an unknown provider (`validation_failed`), e.g. a bad PEM, a short key or a bad `whsec_`"),
        CommonErrors
    ),
    security(("bearer" = []))
)]
#[put("/tenants/{tenant}/providers/{provider}")]
async fn put_connection(
    state: web::Data<AppState>,
    scope: TenantScope,
    path: web::Path<(String, String)>,
    body: ApiJson<Value>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let provider = provider_from_path(&path.1)?;
    let change = provider
        .plugin()
        .credentials()
        .parse(&body.0, state.settings.allow_http_endpoints)
        .map_err(ApiError::Validation)?;
    apply(&state, &scope, provider, change).await
}

/// A `{provider}` the gateway does not know answers 422 naming the field, for every method.
fn provider_from_path(text: &str) -> Result<Provider, ApiError> {
    Provider::parse(text).map_err(|m| ApiError::Validation(vec![FieldError::new("provider", m)]))
}

/// List the providers
///
/// The catalog: every provider the gateway speaks to, with the fields of its connection (which
/// are secret, which a new connection needs), the event types it emits, the actions the
/// gateway takes toward it, its webhook URL forms and the simulator's scenarios. Any token.
#[utoipa::path(
    tag = "providers",
    responses((status = 200, body = Vec<ProviderInfo>), CommonErrors),
    security(("bearer" = []))
)]
#[get("/providers")]
async fn list_providers(
    state: web::Data<AppState>,
    _caller: Principal,
) -> Result<HttpResponse, ApiError> {
    let public_url = state.settings.public_url.as_str();
    let catalog: Vec<ProviderInfo> = Provider::all()
        .map(|p| ProviderInfo::of(p, public_url))
        .collect();
    Ok(HttpResponse::Ok().json(catalog))
}

/// Get a provider connection
///
/// Secrets appear only as masked hints. Includes the webhook URLs for the provider's settings.
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them")
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
        ("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them")
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
/// one; until then either verifies. The body's one field is the provider's `add_key_field`
/// (`GET /api/v1/providers`).
#[utoipa::path(
    tag = "providers",
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them")
    ),
    request_body = AddKeyInput,
    responses(
        (status = 201, body = VerificationKey),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the key is already configured, or the connection does not exist yet (`conflict`)"),
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
    body: ApiJson<serde_json::Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    scope.principal.require_admin()?;
    let provider = provider_from_path(&path.1)?;
    let spec = provider.plugin().credentials();
    let field = spec.keys.add_field;
    let mut errors = Vec::new();
    for name in body.0.keys().filter(|name| name.as_str() != field) {
        errors.push(FieldError::new(
            name.as_str(),
            format!("does not apply to {provider}; its key field is `{field}`"),
        ));
    }
    let text = match body.0.get(field) {
        Some(Value::String(t)) => Some(t),
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string"));
            None
        }
        None => None,
    };
    let keys = match text {
        Some(t) => spec.parse_keys(field, std::slice::from_ref(t), &mut errors),
        None if body.0.get(field).is_some() => Vec::new(),
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
    // The key is valid; the connection it would join is missing, which creating the
    // connection (`PUT`) resolves: a conflict with the resource's state, as for `PUT`.
    let conn = provider_connection::find_for_tenant(&state.db, scope.id(), provider)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            field: field.to_owned(),
            message: "the connection does not exist yet; create it with its keys first".into(),
        })?;
    let model = key_model(key, &state.cipher, scope.id(), &conn.id)
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
        ("provider" = Provider, Path, description = "A provider's name, as `GET /api/v1/providers` lists them"),
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
