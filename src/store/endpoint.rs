use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryFilter};

use crate::domain::{EndpointId, EndpointUrl, Ordering, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: EndpointUrl,
    pub description: String,
    /// JSON array of event type filters; empty means every type.
    pub event_types: Json,
    pub enabled: bool,
    /// JSON object of extra headers sent with every delivery.
    pub headers: Json,
    pub rate_limit_per_second: Option<i32>,
    pub disabled_reason: Option<String>,
    /// Also deliver events marked stale (older than one already seen for their subject).
    pub include_stale: bool,
    /// `none`, or `fifo_subject`: a subject's next event waits until the previous one succeeded or died.
    pub ordering: Ordering,
    /// What it is sent: the full normalized event, or the minimal one.
    pub payload_mode: crate::domain::PayloadMode,
    /// Deliveries in flight to this endpoint at most (per gateway process); `None`: the default.
    pub max_concurrency: Option<i32>,
    /// When the current run of failures began; cleared by a success.
    pub failing_since: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Deleted: gone from the API and never sent to again; the row stays for the accounting of
    /// disclosures.
    pub deleted_at: Option<DateTimeUtc>,
    /// `push` (sent to `url`) or `pull` (read through the API; `url` is where).
    pub kind: crate::domain::EndpointKind,
    /// Patient data waits until the endpoint answered a handshake 2xx (`verified_at`).
    pub handshake: bool,
    /// When the endpoint last answered its handshake; cleared on re-enable and URL change.
    pub verified_at: Option<DateTimeUtc>,
    /// A heartbeat after this many minutes without anything sent.
    pub heartbeat_minutes: Option<i32>,
    /// A failed delivery is not retried once a newer event of its subject was delivered.
    pub supersede: bool,
}

impl Model {
    /// A push endpoint that requires a handshake and has not answered one: it is sent nothing
    /// but the handshake.
    pub fn awaiting_handshake(&self) -> bool {
        self.handshake && self.verified_at.is_none()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The only way to read an endpoint: through the tenant that owns it.
pub async fn find_for_tenant(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &EndpointId,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.clone())
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// For the delivery workers, which act on a delivery already leased (its tenant is the
/// endpoint's by construction of the row): never for an id a caller gave.
pub async fn find_by_id_unscoped(
    db: &impl ConnectionTrait,
    id: &EndpointId,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.clone()).one(db).await
}

/// The enabled endpoints of some tenants: where the outbox fans their events out.
pub async fn enabled_of_tenants(
    db: &impl ConnectionTrait,
    tenants: &[TenantId],
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::TenantId.is_in(tenants.iter().cloned()))
        .filter(Column::Enabled.eq(true))
        .all(db)
        .await
}

/// Why the pending deliveries of a deleted endpoint ended.
pub const DELETED: &str = "the endpoint was deleted";

/// Deletes an endpoint but keeps its row, deliveries and attempts (the accounting of
/// disclosures names it): disabled, marked deleted, its secrets and headers erased, and its
/// pending deliveries ended as dead.
pub async fn mark_deleted(db: &impl ConnectionTrait, id: &EndpointId) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    let now = chrono::Utc::now();
    Entity::update_many()
        .col_expr(Column::DeletedAt, Expr::value(now))
        .col_expr(Column::Enabled, Expr::value(false))
        .col_expr(Column::DisabledReason, Expr::value(DELETED))
        .col_expr(Column::Headers, Expr::value(serde_json::json!({})))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id.clone()))
        .exec(db)
        .await?;
    super::endpoint_secret::Entity::delete_many()
        .filter(super::endpoint_secret::Column::EndpointId.eq(id.clone()))
        .exec(db)
        .await?;
    super::delivery::end_pending(DELETED, now)
        .filter(super::delivery::Column::EndpointId.eq(id.clone()))
        .exec(db)
        .await?;
    Ok(())
}
