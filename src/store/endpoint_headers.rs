//! An endpoint's extra headers as stored: the API's own advice is to put credentials there
//! (`Authorization: Bearer ...`), so each value is sealed with the master key, bound to its
//! endpoint and name, and kept with a masked hint, which is all the API ever answers:
//! `{"Authorization": {"sealed": "v1....", "hint": "****abcd"}}`. Rows from before sealing hold
//! plain strings; [`seal_plain`] seals them when the gateway starts.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use super::endpoint::{self, Column, Entity};
use crate::crypto::Cipher;
use crate::domain::{mask, EndpointId};

pub(crate) fn aad(id: &EndpointId, name: &str) -> String {
    format!("endpoint_header:{id}:{name}")
}

/// Seals `headers` for the endpoint. A value sent back exactly as its hint keeps the value
/// stored under that name, so a client can return what it read without erasing a credential.
pub fn seal(
    cipher: &Cipher,
    id: &EndpointId,
    headers: &BTreeMap<String, String>,
    previous: &Value,
) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let kept = previous
            .get(name)
            .filter(|p| hint_of(p).as_deref() == Some(value.as_str()));
        let stored = match kept {
            Some(p) if p.is_object() => p.clone(),
            _ => json!({"sealed": cipher.seal(value, &aad(id, name)), "hint": mask(value)}),
        };
        out.insert(name.clone(), stored);
    }
    Value::Object(out)
}

fn hint_of(stored: &Value) -> Option<String> {
    match stored {
        Value::String(plain) => Some(mask(plain)),
        other => other.get("hint").and_then(Value::as_str).map(str::to_owned),
    }
}

/// What the API answers: each header's name and masked hint.
pub fn hints(stored: &Value) -> BTreeMap<String, String> {
    stored
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(name, v)| Some((name.clone(), hint_of(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The headers a delivery sends, opened. A value that does not open is left out and logged.
pub fn open(cipher: &Cipher, id: &EndpointId, stored: &Value) -> Vec<(String, String)> {
    let Some(map) = stored.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(name, v)| match v {
            Value::String(plain) => Some((name.clone(), plain.clone())),
            other => {
                let sealed = other.get("sealed").and_then(Value::as_str)?;
                match cipher.open(sealed, &aad(id, name)) {
                    Ok(value) => Some((name.clone(), value.expose_secret().to_owned())),
                    Err(_) => {
                        tracing::error!(endpoint = %id, header = %name, "a stored endpoint header could not be decrypted");
                        None
                    }
                }
            }
        })
        .collect()
}

/// Seals the plain header values of endpoints stored before headers were sealed; answers how
/// many endpoints changed. Runs at start, in pages, on every tenant's endpoints.
pub async fn seal_plain(db: &impl ConnectionTrait, cipher: &Cipher) -> Result<usize, DbErr> {
    let mut changed = 0;
    let mut after: Option<EndpointId> = None;
    loop {
        let mut page = Entity::find().order_by_asc(Column::Id).limit(500);
        if let Some(last) = &after {
            page = page.filter(Column::Id.gt(last.clone()));
        }
        let rows = page.all(db).await?;
        let Some(last) = rows.last() else {
            return Ok(changed);
        };
        after = Some(last.id.clone());
        for row in rows {
            let plain = row
                .headers
                .as_object()
                .is_some_and(|m| m.values().any(Value::is_string));
            if !plain {
                continue;
            }
            let values: BTreeMap<String, String> =
                serde_json::from_value(row.headers.clone()).unwrap_or_default();
            let sealed = seal(cipher, &row.id, &values, &Value::Null);
            let mut model: endpoint::ActiveModel = row.into();
            model.headers = Set(sealed);
            model.update(db).await?;
            changed += 1;
        }
    }
}
