//! Who is calling: API tokens are JWTs (HS256 under a subkey of the master key), each backed by a
//! row in `api_tokens` so that revocation takes effect at once. The [`Principal`] extractor
//! authenticates and rate-limits; [`TenantScope`] resolves the `{tenant}` of a path and hides
//! every tenant but the caller's own.

pub mod jwt;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use sea_orm::EntityTrait;

use crate::domain::{EndpointId, TenantId, TokenId};
use crate::error::ApiError;
use crate::store::{api_token, tenant};
use crate::web::AppState;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Tenant(TenantId),
    /// Reads one pull endpoint's events and moves its cursor; nothing else.
    Endpoint(TenantId, EndpointId),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Tenant(_) => "tenant",
            Role::Endpoint(..) => "endpoint",
        }
    }
}

/// The authenticated caller of this request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: TokenId,
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this operation needs an admin token".into(),
            ))
        }
    }

    /// The tenant a tenant (or endpoint) token is bound to; `None` for admins.
    pub fn tenant(&self) -> Option<&TenantId> {
        match &self.role {
            Role::Admin => None,
            Role::Tenant(t) | Role::Endpoint(t, _) => Some(t),
        }
    }
}

fn unauthorized(code: &'static str, detail: &str) -> ApiError {
    ApiError::Unauthorized {
        code,
        detail: detail.to_owned(),
    }
}

async fn authenticate(state: &AppState, header: Option<String>) -> Result<Principal, ApiError> {
    let header = header.ok_or_else(|| {
        unauthorized(
            "missing_token",
            "send an API token as `Authorization: Bearer <token>`",
        )
    })?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(
                "malformed_token",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    let claims = state.jwt.verify(token)?;
    let row = api_token::Entity::find_by_id(claims.token_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| unauthorized("invalid_token", "this token is not known to the gateway"))?;
    if row.revoked_at.is_some() {
        return Err(unauthorized("token_revoked", "this token has been revoked"));
    }
    if row.expires_at <= Utc::now() {
        return Err(unauthorized("token_expired", "this token has expired"));
    }
    let role = match (row.role.as_str(), row.tenant_id, row.endpoint_id) {
        ("admin", _, _) => Role::Admin,
        // A disabled tenant's tokens are refused until an admin enables it again.
        ("tenant" | "endpoint", Some(t), _) if tenant::is_disabled(&state.db, &t).await? => {
            return Err(ApiError::TenantDisabled)
        }
        ("tenant", Some(t), _) => Role::Tenant(t),
        ("endpoint", Some(t), Some(e)) => Role::Endpoint(t, e),
        _ => {
            return Err(unauthorized(
                "invalid_token",
                "this token has no valid role",
            ))
        }
    };
    Ok(Principal {
        token_id: row.id,
        name: row.name,
        role,
    })
}

/// What an endpoint token is refused everywhere but its endpoint's pull routes.
fn endpoint_token_refused() -> ApiError {
    ApiError::Forbidden(
        "an endpoint token only reads its pull endpoint's events and moves its cursor".into(),
    )
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    /// Any token but an endpoint token ([`Reader`] takes those).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = any_caller(req);
        Box::pin(async move {
            let p = caller.await?;
            if matches!(p.role, Role::Endpoint(..)) {
                return Err(endpoint_token_refused());
            }
            Ok(p)
        })
    }
}

/// The caller with any token, endpoint tokens included.
fn any_caller(req: &HttpRequest) -> LocalBoxFuture<'static, Result<Principal, ApiError>> {
    if let Some(p) = req.extensions().get::<Principal>() {
        let p = p.clone();
        return Box::pin(async move { Ok(p) });
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let req = req.clone();
    Box::pin(async move {
        let state = state
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
        let principal = authenticate(&state, header).await?;
        state.admin_limiter.check(&principal.token_id)?;
        req.extensions_mut().insert(principal.clone());
        Ok(principal)
    })
}

/// A reader of one endpoint's events: an admin, its tenant's token, or a token of that very
/// endpoint. Any other tenant's or endpoint's answers 404, as if it did not exist.
#[derive(Clone, Debug)]
pub struct Reader {
    pub principal: Principal,
    pub tenant: tenant::Model,
    pub endpoint: crate::store::endpoint::Model,
}

impl FromRequest for Reader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = any_caller(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let tenant_ref = req.match_info().get("tenant").map(str::to_owned);
        let endpoint_ref = req.match_info().get("endpoint").map(str::to_owned);
        let req = req.clone();
        Box::pin(async move {
            let principal = caller.await?;
            let state = state
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            let tenant = tenant::find_by_ref(&state.db, &tenant_ref.ok_or(ApiError::NotFound)?)
                .await?
                .ok_or(ApiError::NotFound)?;
            let endpoint = endpoint_ref
                .and_then(|e| EndpointId::parse(&e).ok())
                .ok_or(ApiError::NotFound)?;
            let allowed = match &principal.role {
                Role::Admin => true,
                Role::Tenant(t) => t == &tenant.id,
                Role::Endpoint(t, e) => t == &tenant.id && e == &endpoint,
            };
            if !allowed {
                return Err(ApiError::NotFound);
            }
            let endpoint =
                crate::store::endpoint::find_for_tenant(&state.db, &tenant.id, &endpoint)
                    .await?
                    .ok_or(ApiError::NotFound)?;
            req.extensions_mut().insert(tenant.id.clone());
            Ok(Reader {
                principal,
                tenant,
                endpoint,
            })
        })
    }
}

/// The tenant named by the path's `{tenant}` (id or slug), as seen by the caller: a tenant token
/// only ever finds its own tenant; any other answers 404 exactly like a tenant that does not exist.
#[derive(Clone, Debug)]
pub struct TenantScope {
    pub principal: Principal,
    pub tenant: tenant::Model,
}

impl TenantScope {
    pub fn id(&self) -> &TenantId {
        &self.tenant.id
    }
}

impl FromRequest for TenantScope {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let reference = req.match_info().get("tenant").map(str::to_owned);
        let req = req.clone();
        Box::pin(async move {
            let principal = principal.await?;
            let state = state
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            let reference = reference.ok_or(ApiError::NotFound)?;
            let tenant = tenant::find_by_ref(&state.db, &reference)
                .await?
                .ok_or(ApiError::NotFound)?;
            if let Some(own) = principal.tenant() {
                if own != &tenant.id {
                    return Err(ApiError::NotFound);
                }
            }
            req.extensions_mut().insert(tenant.id.clone());
            Ok(TenantScope { principal, tenant })
        })
    }
}

/// Creates the token's row and signs the JWT that refers to it. Used by the API and the CLI.
pub async fn issue_token(
    db: &impl sea_orm::ConnectionTrait,
    jwt: &jwt::JwtKeys,
    name: &str,
    role: &Role,
    ttl: std::time::Duration,
    created_by: Option<&TokenId>,
) -> Result<(api_token::Model, String), ApiError> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let now = Utc::now();
    let expires_at = now
        + chrono::Duration::from_std(ttl).map_err(|_| {
            ApiError::Validation(vec![crate::error::FieldError::new(
                "expires_in",
                "is too long",
            )])
        })?;
    let id = TokenId::generate();
    let tenant = role_tenant(role);
    let signed = jwt.issue(
        &id,
        role.name(),
        tenant.map(|t| t.as_str()),
        now,
        expires_at,
    )?;
    let row = api_token::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        role: Set(role.name().to_owned()),
        tenant_id: Set(tenant.cloned()),
        created_by: Set(created_by.map(ToString::to_string)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        endpoint_id: Set(match role {
            Role::Endpoint(_, e) => Some(e.clone()),
            _ => None,
        }),
    }
    .insert(db)
    .await?;
    Ok((row, signed))
}

fn role_tenant(role: &Role) -> Option<&TenantId> {
    match role {
        Role::Admin => None,
        Role::Tenant(t) | Role::Endpoint(t, _) => Some(t),
    }
}
