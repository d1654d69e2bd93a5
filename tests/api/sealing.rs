//! Payloads sealed per tenant: destroying a data key shreds what it sealed at once (reads,
//! deliveries, redelivery), new events get a new key, a key destroyed behind this process's
//! back is never written under, deleting a tenant destroys its keys, and payloads stored before
//! sealing are sealed in the background and read the same.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::delivery::{setup_with, Setup};
use crate::helpers::assert_problem;
use crate::receiver::Receiver;
use gateway::domain::{DataKeyId, EventId, TenantId};
use gateway::store::{data_key, event};

async fn get(s: &Setup, path: &str) -> Value {
    let res = s.app.get_as(path, &s.admin).await;
    assert_eq!(res.status().as_u16(), 200, "{path}");
    res.json().await.unwrap()
}

async fn event_json(s: &Setup, id: &str) -> Value {
    get(s, &format!("/api/v1/tenants/acme/events/{id}")).await
}

async fn keys(s: &Setup) -> Vec<Value> {
    get(s, "/api/v1/tenants/acme/data-keys").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn row(s: &Setup, id: &str) -> event::Model {
    event::Entity::find_by_id(EventId::parse(id).unwrap())
        .one(&s.app.state.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn destroying_a_data_key_shreds_its_payloads_at_once_and_new_events_get_a_new_key() {
    let s = setup_with(|_| {}).await;
    let receiver = Receiver::start().await;
    s.endpoint(&receiver.url, json!({})).await;
    let first = s.event(1, "VC-SHRED-1").await;
    let held = event_json(&s, &first).await;
    assert_eq!(held["payload"], "held");
    assert!(held["raw"]["body"].as_str().unwrap().contains("Margaret"));
    let listed = keys(&s).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["active"], true);
    let key = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(row(&s, &first).await.data_key_id.unwrap().as_str(), key);

    // Another tenant cannot name it.
    s.app.create_tenant(&s.admin, "beta", None).await;
    let res = s
        .app
        .delete_as(&format!("/api/v1/tenants/beta/data-keys/{key}"), &s.admin)
        .await;
    assert_problem(res, 404, "not_found").await;

    let res = s
        .app
        .delete_as(&format!("/api/v1/tenants/acme/data-keys/{key}"), &s.admin)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    let listed = keys(&s).await;
    assert!(listed[0]["destroyed_at"].is_string(), "{listed:?}");
    assert_eq!(listed[0]["active"], false);

    for view in ["", "?view=minimal"] {
        let gone = get(&s, &format!("/api/v1/tenants/acme/events/{first}{view}")).await;
        assert_eq!(gone["payload"], "shredded", "{view}");
        assert_eq!(gone["normalized"], Value::Null);
        assert_eq!(gone["raw"], Value::Null);
        assert_eq!(gone["subject"], "VC-SHRED-1", "the skeleton stays");
    }
    // Its pending delivery ends without sending anything.
    s.drain().await;
    assert!(receiver.received().is_empty());
    let delivery = &s.deliveries(&format!("?event_id={first}")).await[0];
    assert_eq!(delivery["status"], "dead");
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap()
            .contains("shredded"),
        "{delivery}"
    );
    let res = s
        .app
        .post_as(
            &format!(
                "/api/v1/tenants/acme/deliveries/{}/redeliver",
                delivery["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({}),
        )
        .await;
    assert_problem(res, 410, "payload_shredded").await;

    // The next event is sealed under a new key, and delivered.
    let second = s.event(2, "VC-SHRED-2").await;
    let listed = keys(&s).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["active"], true);
    assert_ne!(listed[0]["id"], key);
    assert_eq!(event_json(&s, &second).await["payload"], "held");
    assert_eq!(s.drain().await, 1);
    assert!(String::from_utf8_lossy(&receiver.received()[0].body).contains("Margaret"));
}

#[tokio::test]
async fn a_key_destroyed_behind_this_process_is_never_written_under() {
    let s = setup_with(|_| {}).await;
    let first = s.event(1, "VC-REPLICA-1").await;
    let tenant = row(&s, &first).await.tenant_id;
    let cached = row(&s, &first).await.data_key_id.unwrap();
    // As another replica would: the database changes, this process's cache does not.
    data_key::destroy(&s.app.state.db, &tenant, &cached)
        .await
        .unwrap()
        .unwrap();
    let second = s.event(2, "VC-REPLICA-2").await;
    let stored = row(&s, &second).await;
    assert_ne!(stored.data_key_id.as_ref(), Some(&cached));
    let e = event_json(&s, &second).await;
    assert_eq!(e["payload"], "held");
    assert!(e["raw"]["body"].as_str().unwrap().contains("Margaret"));
}

#[tokio::test]
async fn deleting_a_tenant_destroys_its_data_keys_in_the_same_transaction() {
    let s = setup_with(|_| {}).await;
    let first = s.event(1, "VC-DELETE-1").await;
    let tenant: TenantId = row(&s, &first).await.tenant_id;
    let res = s.app.delete_as("/api/v1/tenants/acme", &s.admin).await;
    assert_eq!(res.status().as_u16(), 204);
    let left = data_key::Entity::find()
        .filter(data_key::Column::TenantId.eq(tenant))
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert!(left
        .iter()
        .all(|k| k.sealed.is_none() && k.destroyed_at.is_some()));
}

#[tokio::test]
async fn payloads_stored_before_sealing_are_delivered_then_sealed_in_the_background_and_read_the_same(
) {
    let s = setup_with(|_| {}).await;
    let receiver = Receiver::start().await;
    s.endpoint(&receiver.url, json!({})).await;
    let id = s.event(1, "VC-LEGACY-1").await;
    let before = event_json(&s, &id).await;
    // Back to how an event was stored before payloads were sealed: plain columns, no key.
    let m = row(&s, &id).await;
    let gateway::store::payload::PayloadState::Held(p) =
        gateway::store::payload::open(&s.app.state.db, &s.app.state.cipher, &m)
            .await
            .unwrap()
    else {
        panic!("held")
    };
    event::Entity::update_many()
        .col_expr(
            event::Column::Normalized,
            Expr::value(serde_json::from_str::<Value>(&p.cloud_event).unwrap()),
        )
        .col_expr(event::Column::RawBody, Expr::value(p.raw_body.clone()))
        .col_expr(
            event::Column::RawHeaders,
            Expr::value(serde_json::from_str::<Value>(&p.raw_headers).unwrap()),
        )
        .col_expr(
            event::Column::DataKeyId,
            Expr::value(Option::<DataKeyId>::None),
        )
        .col_expr(
            event::Column::SealedPayload,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .filter(event::Column::Id.eq(m.id.clone()))
        .exec(&s.app.state.db)
        .await
        .unwrap();
    assert_eq!(
        event_json(&s, &id).await,
        before,
        "read from the plain columns"
    );
    assert_eq!(s.drain().await, 1, "delivered from the plain columns");
    assert!(String::from_utf8_lossy(&receiver.received()[0].body).contains("Margaret"));

    let settings = &s.app.state.settings;
    let gate = gateway::store::WriteGate::open(settings, &s.app.state.db)
        .await
        .unwrap();
    let mut purger = gateway::store::purge::Purger::new(
        s.app.state.db.clone(),
        gate,
        s.app.state.cipher.clone(),
        settings.retention.clone(),
    );
    assert_eq!(purger.seal_plain().await.unwrap(), 1);
    assert_eq!(
        purger.seal_plain().await.unwrap(),
        0,
        "nothing left to seal"
    );
    let sealed = row(&s, &id).await;
    assert!(sealed.data_key_id.is_some() && sealed.sealed_payload.is_some());
    assert_eq!(sealed.raw_body, "");
    assert!(!sealed.normalized.to_string().contains("Margaret"));
    assert_eq!(
        event_json(&s, &id).await,
        before,
        "read from the sealed payload"
    );
}
