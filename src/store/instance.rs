//! The one row that describes this gateway's data: which master key it was written with.

use anyhow::{bail, Context};
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait};

use crate::crypto::MasterKey;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gateway_instance")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub key_fingerprint: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

const SINGLETON: i32 = 1;

/// Records the master key's fingerprint on first start and refuses a different key afterwards:
/// secrets encrypted with one key cannot be read with another, and finding out at start is
/// kinder than finding out at the first decryption.
pub async fn check_master_key(db: &impl ConnectionTrait, key: &MasterKey) -> anyhow::Result<()> {
    let fingerprint = key.fingerprint();
    match Entity::find_by_id(SINGLETON).one(db).await? {
        Some(row) if row.key_fingerprint == fingerprint => Ok(()),
        Some(_) => bail!(
            "the master key does not match the one this database was initialised with; \
             start with the original key (GATEWAY_MASTER_KEY / GATEWAY_MASTER_KEY_FILE / <data_dir>/master.key)"
        ),
        None => {
            let row = ActiveModel {
                id: Set(SINGLETON),
                key_fingerprint: Set(fingerprint.clone()),
                created_at: Set(Utc::now()),
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
