//! Master key rotation: every value sealed under the previous master key is sealed again under
//! the current one (endpoint signing secrets, provider keys and credentials, endpoint headers,
//! tenants' data keys, the token signing key), then the database names the new key. Each value
//! is replaced only if it is still the one read (a concurrent change wins), so the gateway keeps
//! running meanwhile: it opens values under either key while both are configured.
//!
//! Payloads are not touched: they are sealed under data keys, which are re-sealed here.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use super::{data_key, endpoint, endpoint_secret, instance, provider_connection, provider_key};
use crate::crypto::{Cipher, MasterKey};
use crate::providers::Provider;

const PAGE: u64 = 500;

/// How many values a rotation sealed again, per kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    pub endpoint_secrets: u64,
    pub provider_keys: u64,
    pub provider_credentials: u64,
    pub endpoint_headers: u64,
    pub data_keys: u64,
    pub token_key: bool,
}

impl std::fmt::Display for Resealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} endpoint secrets, {} provider keys, {} provider credentials, {} endpoints' headers, {} data keys, token key {}",
            self.endpoint_secrets,
            self.provider_keys,
            self.provider_credentials,
            self.endpoint_headers,
            self.data_keys,
            if self.token_key { "re-sealed" } else { "unchanged" }
        )
    }
}

/// Re-seals every value under `cipher`'s current key, then records `master` as the database's
/// key. Fails, recording nothing, when a value opens under neither key.
pub async fn rotate(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    master: &MasterKey,
) -> anyhow::Result<Resealed> {
    let done = Resealed {
        endpoint_secrets: reseal_column::<endpoint_secret::Entity>(
            db,
            cipher,
            endpoint_secret::Column::Id,
            endpoint_secret::Column::SecretCiphertext,
            |id, _| format!("endpoint_secret:{id}"),
        )
        .await?,
        provider_keys: reseal_column::<provider_key::Entity>(
            db,
            cipher,
            provider_key::Column::Id,
            provider_key::Column::SecretCiphertext,
            |id, _| format!("provider_key:{id}"),
        )
        .await?,
        provider_credentials: reseal_credentials(db, cipher).await?,
        endpoint_headers: reseal_headers(db, cipher).await?,
        data_keys: reseal_column::<data_key::Entity>(
            db,
            cipher,
            data_key::Column::Id,
            data_key::Column::Sealed,
            |id, _| format!("data_key:{id}"),
        )
        .await?,
        token_key: instance::reseal_token_key(db, cipher).await?,
    };
    instance::record_master_key(db, master).await?;
    Ok(done)
}

/// One sealed text column, page by page. `aad` gets the row's id and the extra column's value.
async fn reseal_column<E: EntityTrait>(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    id_col: E::Column,
    col: E::Column,
    aad: impl Fn(&str, &str) -> String,
) -> anyhow::Result<u64> {
    reseal_rows::<E>(db, cipher, id_col, col, id_col, aad).await
}

async fn reseal_rows<E: EntityTrait>(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    id_col: E::Column,
    col: E::Column,
    extra: E::Column,
    aad: impl Fn(&str, &str) -> String,
) -> anyhow::Result<u64> {
    let mut changed = 0;
    let mut after: Option<String> = None;
    loop {
        let mut page = E::find()
            .select_only()
            // Aliased: `extra` may be the id column again.
            .column_as(id_col, "row_id")
            .column_as(col, "sealed")
            .column_as(extra, "extra")
            .filter(col.is_not_null())
            .order_by_asc(id_col)
            .limit(PAGE);
        if let Some(last) = &after {
            page = page.filter(id_col.gt(last.clone()));
        }
        let rows: Vec<(String, Option<String>, String)> = page.into_tuple().all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(changed);
        };
        after = Some(last.0.clone());
        for (id, sealed, extra_value) in rows {
            let Some(sealed) = sealed else { continue };
            let new = cipher
                .reseal(&sealed, &aad(&id, &extra_value))
                .map_err(|_| anyhow::anyhow!("{id}: opens under neither master key"))?;
            if let Some(new) = new {
                E::update_many()
                    .col_expr(col, Expr::value(new))
                    .filter(id_col.eq(id))
                    .filter(col.eq(sealed))
                    .exec(db)
                    .await?;
                changed += 1;
            }
        }
    }
}

/// Provider credentials are bound to their provider's kind of secret and their row.
async fn reseal_credentials(db: &impl ConnectionTrait, cipher: &Cipher) -> anyhow::Result<u64> {
    reseal_rows::<provider_connection::Entity>(
        db,
        cipher,
        provider_connection::Column::Id,
        provider_connection::Column::SecretCiphertext,
        provider_connection::Column::Provider,
        |id, provider| match (
            Provider::parse(provider),
            crate::domain::ConnectionId::parse(id),
        ) {
            (Ok(p), Ok(id)) => provider_connection::secret_context(p, &id),
            // Opens under nothing: reported as such.
            _ => String::new(),
        },
    )
    .await
}

/// Endpoint headers hold one sealed value per name inside a JSON object.
async fn reseal_headers(db: &impl ConnectionTrait, cipher: &Cipher) -> anyhow::Result<u64> {
    let mut changed = 0;
    let mut after: Option<crate::domain::EndpointId> = None;
    loop {
        let mut page = endpoint::Entity::find()
            .order_by_asc(endpoint::Column::Id)
            .limit(PAGE);
        if let Some(last) = &after {
            page = page.filter(endpoint::Column::Id.gt(last.clone()));
        }
        let rows = page.all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(changed);
        };
        after = Some(last.id.clone());
        for row in rows {
            let mut headers = row.headers.clone();
            let mut moved = false;
            if let Some(map) = headers.as_object_mut() {
                for (name, stored) in map.iter_mut() {
                    let Some(sealed) = stored.get("sealed").and_then(Value::as_str) else {
                        continue;
                    };
                    let aad = super::endpoint_headers::aad(&row.id, name);
                    let new = cipher.reseal(sealed, &aad).map_err(|_| {
                        anyhow::anyhow!("{} header {name}: opens under neither master key", row.id)
                    })?;
                    if let (Some(new), Some(obj)) = (new, stored.as_object_mut()) {
                        obj.insert("sealed".into(), Value::String(new));
                        moved = true;
                    }
                }
            }
            if moved {
                update_headers(db, &row, headers).await?;
                changed += 1;
            }
        }
    }
}

async fn update_headers(
    db: &impl ConnectionTrait,
    row: &endpoint::Model,
    headers: Value,
) -> Result<(), DbErr> {
    // Replaced only if unchanged since read: an edit made meanwhile is sealed under the new key.
    let current = endpoint::Entity::find_by_id(row.id.clone()).one(db).await?;
    if current.is_some_and(|c| c.headers == row.headers) {
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::Headers, Expr::value(headers))
            .filter(endpoint::Column::Id.eq(row.id.clone()))
            .exec(db)
            .await?;
    }
    Ok(())
}
