//! The one row that describes this gateway's data: which master key it was written with.

use anyhow::{bail, Context};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait};

use sea_orm::sea_query::Expr;
use secrecy::{ExposeSecret, SecretBox};

use crate::crypto::{Cipher, MasterKey};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gateway_instance")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub key_fingerprint: String,
    pub created_at: DateTimeUtc,
    /// The API token signing key, sealed under the master key.
    pub token_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

const SINGLETON: i32 = 1;

/// Records the master key's fingerprint on first start and refuses a different key afterwards:
/// secrets encrypted with one key cannot be read with another, and finding out at start is
/// kinder than finding out at the first decryption. During a rotation the database may still
/// name the previous key (until `gateway master-key rotate` finishes).
pub async fn check_master_key(
    db: &impl ConnectionTrait,
    key: &MasterKey,
    previous: Option<&MasterKey>,
) -> anyhow::Result<()> {
    let fingerprint = key.fingerprint();
    let previous = previous.map(MasterKey::fingerprint);
    match Entity::find_by_id(SINGLETON).one(db).await? {
        Some(row) if row.key_fingerprint == fingerprint => Ok(()),
        Some(row) if previous.as_ref() == Some(&row.key_fingerprint) => Ok(()),
        Some(_) => bail!(
            "the master key does not match the one this database was initialised with; \
             start with the original key (GATEWAY_MASTER_KEY / GATEWAY_MASTER_KEY_FILE / <data_dir>/master.key), \
             or during a rotation give the old one as GATEWAY_MASTER_KEY_PREVIOUS"
        ),
        None => {
            let row = ActiveModel {
                id: Set(SINGLETON),
                key_fingerprint: Set(fingerprint.clone()),
                created_at: Set(Utc::now()),
                token_key: Set(None),
            };
            // Two replicas starting at once may race here; the loser re-reads and compares.
            if let Err(e) = Entity::insert(row).exec(db).await {
                let again = Entity::find_by_id(SINGLETON)
                    .one(db)
                    .await
                    .context("re-reading the instance row")?;
                match again {
                    Some(r) if r.key_fingerprint == fingerprint => return Ok(()),
                    _ => return Err(e).context("recording the master key fingerprint"),
                }
            }
            Ok(())
        }
    }
}

const TOKEN_KEY_AAD: &str = "token_key";

/// The API token signing key. Stored sealed so that a master key rotation re-seals it rather
/// than invalidating every token; the first time, it is the key tokens were signed with before
/// it was stored (derived from the master key the database names), so those stay valid.
pub async fn token_key(
    db: &impl ConnectionTrait,
    cipher: &Cipher,
    keys: [Option<&MasterKey>; 2],
) -> anyhow::Result<SecretBox<[u8; 32]>> {
    let row = Entity::find_by_id(SINGLETON)
        .one(db)
        .await?
        .context("the instance row is missing")?;
    if let Some(sealed) = &row.token_key {
        let bytes = cipher
            .open_bytes(sealed, TOKEN_KEY_AAD)
            .map_err(|e| anyhow::anyhow!("the token signing key: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the token signing key has the wrong length"))?;
        return Ok(SecretBox::new(Box::new(bytes)));
    }
    let named = keys
        .into_iter()
        .flatten()
        .find(|k| k.fingerprint() == row.key_fingerprint)
        .context("no configured master key is the one the database names")?;
    let key = named.derive(TOKEN_PURPOSE);
    Entity::update_many()
        .col_expr(
            Column::TokenKey,
            Expr::value(cipher.seal_bytes(key.expose_secret(), TOKEN_KEY_AAD)),
        )
        .filter(Column::Id.eq(SINGLETON))
        .filter(Column::TokenKey.is_null())
        .exec(db)
        .await?;
    Ok(key)
}

/// What API tokens were signed with before the signing key was stored.
pub const TOKEN_PURPOSE: &str = "api-token-hs256";

/// Re-seals the token key under the current master key; answers whether it changed.
pub async fn reseal_token_key(db: &impl ConnectionTrait, cipher: &Cipher) -> anyhow::Result<bool> {
    let Some(row) = Entity::find_by_id(SINGLETON).one(db).await? else {
        return Ok(false);
    };
    let Some(sealed) = row.token_key else {
        return Ok(false);
    };
    match cipher.reseal(&sealed, TOKEN_KEY_AAD) {
        Ok(None) => Ok(false),
        Ok(Some(new)) => {
            Entity::update_many()
                .col_expr(Column::TokenKey, Expr::value(new))
                .filter(Column::Id.eq(SINGLETON))
                .filter(Column::TokenKey.eq(sealed))
                .exec(db)
                .await?;
            Ok(true)
        }
        Err(e) => Err(anyhow::anyhow!("the token signing key: {e}")),
    }
}

/// The database now names `key`: the end of a rotation.
pub async fn record_master_key(db: &impl ConnectionTrait, key: &MasterKey) -> anyhow::Result<()> {
    Entity::update_many()
        .col_expr(Column::KeyFingerprint, Expr::value(key.fingerprint()))
        .filter(Column::Id.eq(SINGLETON))
        .exec(db)
        .await?;
    Ok(())
}
