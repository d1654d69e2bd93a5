//! Payloads sealed per tenant: destroying a data key shreds what it sealed at once (reads,
//! deliveries, redelivery), new events get a new key, a key destroyed behind this process's
//! back is never written under, deleting a tenant destroys its keys at once and removes its rows
//! in batches, and payloads stored before
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
async fn a_deleted_tenant_is_gone_at_once_its_keys_destroyed_and_its_rows_removed_in_batches() {
    let s = setup_with(|_| {}).await;
    let receiver = Receiver::start().await;
    s.endpoint(&receiver.url, json!({})).await;
    let mut first = String::new();
    for n in 1..=5 {
        first = s.event(n, &format!("VC-DELETE-{n}")).await;
    }
    assert_eq!(s.drain().await, 5);
    let tenant: TenantId = row(&s, &first).await.tenant_id;
    let res = s.app.delete_as("/api/v1/tenants/acme", &s.admin).await;
    assert_eq!(res.status().as_u16(), 204);

    // Gone from the API and the webhook URL at once; its slug is free again.
    assert_problem(
        s.app.get_as("/api/v1/tenants/acme", &s.admin).await,
        404,
        "not_found",
    )
    .await;
    let body = crate::webhooks::vectorcare_event(
        "01JN0000000000000000000099",
        "VC-DELETE-9",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    let res = s
        .app
        .post_vectorcare(
            "/webhooks/vectorcare/acme",
            &body,
            crate::webhooks::VECTORCARE_PRIVATE_PEM,
        )
        .await;
    assert_problem(res, 404, "tenant_not_found").await;
    let listed = get(&s, "/api/v1/tenants").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
    let again = s.app.create_tenant(&s.admin, "acme", None).await;
    assert_ne!(again["id"].as_str(), Some(tenant.as_str()));
    let keys = data_key::Entity::find()
        .filter(data_key::Column::TenantId.eq(tenant.clone()))
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys
        .iter()
        .all(|k| k.sealed.is_none() && k.destroyed_at.is_some()));

    // Its rows go in bounded batches, the tenant's own row last.
    let gate = gateway::store::WriteGate::open(&s.app.state.settings, &s.app.state.db)
        .await
        .unwrap();
    let mut batches = Vec::new();
    loop {
        let (n, gone) =
            gateway::store::purge::remove_deleted_batch(&s.app.state.db, &gate, &tenant, 2)
                .await
                .unwrap();
        batches.push(n);
        if gone {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0]);
    let db = &s.app.state.db;
    let events = event::Entity::find()
        .filter(event::Column::TenantId.eq(tenant.clone()))
        .all(db)
        .await
        .unwrap();
    assert!(events.is_empty());
    let deliveries = gateway::store::delivery::Entity::find()
        .filter(gateway::store::delivery::Column::TenantId.eq(tenant.clone()))
        .all(db)
        .await
        .unwrap();
    let attempts = gateway::store::delivery_attempt::Entity::find()
        .filter(gateway::store::delivery_attempt::Column::TenantId.eq(tenant.clone()))
        .all(db)
        .await
        .unwrap();
    assert!(deliveries.is_empty() && attempts.is_empty());
    let sequences = gateway::store::endpoint_sequence::Entity::find()
        .all(db)
        .await
        .unwrap();
    assert!(
        sequences.is_empty(),
        "its endpoints' sequences go too: {sequences:?}"
    );
    let row = gateway::store::tenant::Entity::find_by_id(tenant)
        .one(db)
        .await
        .unwrap();
    assert!(row.is_none(), "the tenant's row goes last");
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
