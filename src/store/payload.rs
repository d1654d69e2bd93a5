//! An event's payload as readers see it: held (opened with its tenant's data key), purged
//! (past retention) or shredded (its data key was destroyed). And the one-time sealing of
//! payloads stored in plain columns before payloads were sealed.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{data_key, event, WriteGate};
use crate::crypto::payload::{self, EventPayload};
use crate::crypto::Cipher;
use crate::domain::{DataKeyId, EventId, TenantId};

pub enum PayloadState {
    Held(EventPayload),
    Purged,
    /// The data key that sealed it was destroyed (or cannot be opened).
    Shredded,
}

/// Opens a stored event's payload, loading its data key from the database: a key destroyed by
/// any replica is never used again.
pub async fn open(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    m: &event::Model,
) -> Result<PayloadState, DbErr> {
    if m.purged_at.is_some() {
        return Ok(PayloadState::Purged);
    }
    let (Some(key_id), Some(blob)) = (&m.data_key_id, &m.sealed_payload) else {
        return Ok(PayloadState::Held(plain(m)));
    };
    let keys = data_key::open_many(db, cipher, std::slice::from_ref(key_id)).await?;
    Ok(match keys.get(key_id) {
        Some(key) => match payload::open(key, m.id.as_str(), blob) {
            Ok(p) => PayloadState::Held(p),
            Err(_) => {
                tracing::error!(event = %m.id, "a sealed payload did not open with its key");
                PayloadState::Shredded
            }
        },
        None => PayloadState::Shredded,
    })
}

/// Whether an event's payload can still be read (and so sent), without opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Yes,
    /// Purged, or the event no longer exists.
    Purged,
    Shredded,
}

pub async fn held(db: &impl ConnectionTrait, id: &EventId) -> Result<Held, DbErr> {
    let row: Option<(Option<chrono::DateTime<chrono::Utc>>, Option<DataKeyId>)> =
        event::Entity::find_by_id(id.clone())
            .select_only()
            .column(event::Column::PurgedAt)
            .column(event::Column::DataKeyId)
            .into_tuple()
            .one(db)
            .await?;
    Ok(match row {
        None | Some((Some(_), _)) => Held::Purged,
        Some((None, None)) => Held::Yes,
        Some((None, Some(key))) => {
            let live = data_key::Entity::find_by_id(key)
                .filter(data_key::Column::DestroyedAt.is_null())
                .one(db)
                .await?;
            if live.is_some() {
                Held::Yes
            } else {
                Held::Shredded
            }
        }
    })
}

fn plain(m: &event::Model) -> EventPayload {
    EventPayload {
        cloud_event: m.normalized.to_string(),
        raw_headers: m.raw_headers.to_string(),
        raw_body: m.raw_body.clone(),
    }
}

/// Seals up to `limit` payloads still held in plain columns (stored before payloads were
/// sealed) under their tenants' live keys, and empties those columns. Answers how many.
pub async fn seal_plain_batch(
    db: &DatabaseConnection,
    gate: &WriteGate,
    cipher: &Cipher,
    limit: u64,
) -> Result<u64, DbErr> {
    let rows = event::Entity::find()
        .filter(event::Column::DataKeyId.is_null())
        .filter(event::Column::PurgedAt.is_null())
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut keys: HashMap<TenantId, data_key::ActiveKey> = HashMap::new();
    for m in &rows {
        if !keys.contains_key(&m.tenant_id) {
            let key = data_key::active(db, cipher, &m.tenant_id).await?;
            keys.insert(m.tenant_id.clone(), key);
        }
    }
    let sealed: Vec<(EventId, DataKeyId, Vec<u8>)> = rows
        .iter()
        .filter_map(|m| {
            let key = keys.get(&m.tenant_id)?;
            let blob = payload::seal(&key.key, m.id.as_str(), plain(m).as_ref());
            Some((m.id.clone(), key.id.clone(), blob))
        })
        .collect();
    let turn = gate.enter().await;
    let txn = super::begin_write(turn.db).await?;
    let mut done = 0;
    for (id, key_id, blob) in sealed {
        let n = event::Entity::update_many()
            .col_expr(event::Column::DataKeyId, Expr::value(key_id))
            .col_expr(event::Column::SealedPayload, Expr::value(blob))
            .col_expr(event::Column::RawBody, Expr::value(""))
            .col_expr(
                event::Column::RawHeaders,
                Expr::value(serde_json::json!({})),
            )
            .col_expr(
                event::Column::Normalized,
                Expr::value(serde_json::json!({})),
            )
            .filter(event::Column::Id.eq(id))
            // Purged meanwhile: nothing to seal.
            .filter(event::Column::PurgedAt.is_null())
            .filter(event::Column::DataKeyId.is_null())
            .exec(&txn)
            .await?;
        done += n.rows_affected;
    }
    txn.commit().await?;
    Ok(done)
}
