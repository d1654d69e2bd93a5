//! Tenants' data keys: each seals its tenant's event payloads. A key is random, stored only
//! sealed under the master key, and destroyed by emptying `sealed`: from that commit on, no
//! replica can open what it sealed (readers load the key with the payload, never from a cache).
//! New events use the tenant's newest live key.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryFilter, QueryOrder};
use secrecy::ExposeSecret;

use crate::crypto::payload::DataKey;
use crate::crypto::Cipher;
use crate::domain::{DataKeyId, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DataKeyId,
    pub tenant_id: TenantId,
    /// The key sealed under the master key; `None` once destroyed.
    pub sealed: Option<String>,
    pub created_at: DateTimeUtc,
    pub destroyed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a data key is bound when sealed: a sealed key copied to another row does not open.
pub fn aad(id: &DataKeyId) -> String {
    format!("data_key:{id}")
}

/// A live key, opened: what new events of its tenant are sealed with.
pub struct ActiveKey {
    pub id: DataKeyId,
    pub key: DataKey,
}

fn opened(cipher: &Cipher, m: &Model) -> Option<DataKey> {
    let sealed = m.sealed.as_ref()?;
    match cipher.open_bytes(sealed, &aad(&m.id)) {
        Ok(bytes) => DataKey::try_from_slice(&bytes).ok(),
        Err(_) => {
            tracing::error!(key = %m.id, "a data key could not be opened (wrong master key?)");
            None
        }
    }
}

/// A new live key for the tenant; new events use it from now on.
pub async fn create(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    tenant: &TenantId,
) -> Result<(Model, ActiveKey), DbErr> {
    let id = DataKeyId::generate();
    let (key, bytes) = DataKey::generate();
    let row = ActiveModel {
        id: Set(id.clone()),
        tenant_id: Set(tenant.clone()),
        sealed: Set(Some(cipher.seal_bytes(bytes.expose_secret(), &aad(&id)))),
        created_at: Set(Utc::now()),
        destroyed_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((row, ActiveKey { id, key }))
}

/// The tenant's newest live key, made when it has none.
pub async fn active(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    tenant: &TenantId,
) -> Result<ActiveKey, DbErr> {
    let newest = Entity::find()
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::DestroyedAt.is_null())
        .order_by_desc(Column::Id)
        .one(db)
        .await?;
    if let Some(m) = newest {
        if let Some(key) = opened(cipher, &m) {
            return Ok(ActiveKey { id: m.id, key });
        }
    }
    Ok(create(db, cipher, tenant).await?.1)
}

pub async fn list_for_tenant(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::TenantId.eq(tenant.clone()))
        .order_by_desc(Column::Id)
        .all(db)
        .await
}

/// Destroys one of the tenant's keys: what it sealed can no longer be read. `None` when the
/// tenant has no such key.
pub async fn destroy(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &DataKeyId,
) -> Result<Option<Model>, DbErr> {
    let found = Entity::find_by_id(id.clone())
        .filter(Column::TenantId.eq(tenant.clone()))
        .one(db)
        .await?;
    let Some(mut m) = found else {
        return Ok(None);
    };
    if m.destroyed_at.is_none() {
        let now = Utc::now();
        Entity::update_many()
            .col_expr(Column::Sealed, Expr::value(Option::<String>::None))
            .col_expr(Column::DestroyedAt, Expr::value(Some(now)))
            .filter(Column::Id.eq(id.clone()))
            .exec(db)
            .await?;
        m.sealed = None;
        m.destroyed_at = Some(now);
    }
    Ok(Some(m))
}

/// Destroys every key of the tenant (its deletion): all its payloads become unreadable at once.
pub async fn destroy_all(db: &impl ConnectionTrait, tenant: &TenantId) -> Result<u64, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::Sealed, Expr::value(Option::<String>::None))
        .col_expr(Column::DestroyedAt, Expr::value(Some(Utc::now())))
        .filter(Column::TenantId.eq(tenant.clone()))
        .filter(Column::DestroyedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// The live keys among `ids`, opened; a destroyed or unknown key is absent.
pub async fn open_many(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    ids: &[DataKeyId],
) -> Result<HashMap<DataKeyId, Arc<DataKey>>, DbErr> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = Entity::find()
        .filter(Column::Id.is_in(ids.iter().cloned()))
        .filter(Column::DestroyedAt.is_null())
        .all(db)
        .await?;
    for m in rows {
        if let Some(key) = opened(cipher, &m) {
            out.insert(m.id, Arc::new(key));
        }
    }
    Ok(out)
}
