//! Retention: past a tenant's retention period the purger empties events' payloads and the
//! response bodies of their attempts, keeps the skeleton, and leaves alone what is still to be
//! delivered; the API answers "purged" where the payload was. The accounting of a subject's
//! disclosures outlives the purge.

use chrono::{Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::delivery::{setup_with, Setup};
use crate::helpers::assert_problem;
use crate::receiver::Receiver;

pub async fn purge_as_of(s: &Setup, days_later: i64) -> u64 {
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
    purger
        .pass(Utc::now() + Duration::days(days_later))
        .await
        .unwrap()
}

async fn event(s: &Setup, id: &str) -> Value {
    let res = s
        .app
        .get_as(&format!("/api/v1/tenants/acme/events/{id}"), &s.admin)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

async fn snippets(s: &Setup, event_id: &str) -> Vec<Option<String>> {
    use gateway::store::{delivery, delivery_attempt};
    let db = &s.app.state.db;
    let deliveries: Vec<delivery::Model> = delivery::Entity::find()
        .filter(delivery::Column::EventId.eq(event_id))
        .all(db)
        .await
        .unwrap();
    let ids: Vec<_> = deliveries.into_iter().map(|d| d.id).collect();
    delivery_attempt::Entity::find()
        .filter(delivery_attempt::Column::DeliveryId.is_in(ids))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.response_snippet)
        .collect()
}

#[tokio::test]
async fn past_retention_payloads_are_purged_in_place_and_the_skeleton_stays() {
    let s = setup_with(|_| {}).await;
    let receiver = Receiver::start().await;
    s.endpoint(&receiver.url, json!({})).await;
    let old = s.event(1, "VC-OLD-1").await;
    assert_eq!(s.drain().await, 1);
    assert_eq!(
        snippets(&s, &old).await,
        [Some("receiver answered 200".into())]
    );
    // Not delivered yet (the tests' workers are off): its payload is what would be sent.
    let pending = s.event(2, "VC-PENDING").await;

    // A tenant's own period wins over the default of 30 days.
    let res = s
        .app
        .patch_as(
            "/api/v1/tenants/acme",
            &s.admin,
            json!({"retention_days": 60}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["retention_days"], 60);
    assert_eq!(purge_as_of(&s, 31).await, 0);
    let res = s
        .app
        .patch_as(
            "/api/v1/tenants/acme",
            &s.admin,
            json!({"retention_days": null}),
        )
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["retention_days"],
        Value::Null
    );
    assert_eq!(purge_as_of(&s, 29).await, 0, "inside the default period");

    assert_eq!(purge_as_of(&s, 31).await, 1);
    assert_eq!(
        purge_as_of(&s, 31).await,
        0,
        "a purged event is not purged again"
    );

    let e = event(&s, &old).await;
    assert!(e["purged_at"].is_string(), "{e}");
    assert_eq!(e["normalized"], Value::Null);
    assert_eq!(e["raw"], Value::Null);
    assert_eq!(e["subject"], "VC-OLD-1", "the skeleton stays");
    assert_eq!(snippets(&s, &old).await, [None], "response bodies go too");
    let kept = event(&s, &pending).await;
    assert_eq!(kept["purged_at"], Value::Null);
    assert!(kept["raw"]["body"].as_str().unwrap().contains("Margaret"));

    // The database itself no longer holds the patient's name for the purged event.
    let row =
        gateway::store::event::Entity::find_by_id(gateway::domain::EventId::parse(&old).unwrap())
            .one(&s.app.state.db)
            .await
            .unwrap()
            .unwrap();
    assert!(row.sealed_payload.is_none(), "the sealed payload is gone");
    assert!(!row.raw_body.contains("Margaret") && !row.normalized.to_string().contains("Margaret"));

    // Counts and timelines still add up; the purged event cannot be sent again.
    let list: Value = s
        .app
        .get_as("/api/v1/tenants/acme/events", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let delivered = s.deliveries(&format!("?event_id={old}")).await;
    assert_eq!(delivered[0]["status"], "succeeded");
    let endpoint_id = delivered[0]["endpoint_id"].as_str().unwrap().to_owned();
    let res = s
        .app
        .post_as(
            &format!("/api/v1/tenants/acme/events/{old}/resend"),
            &s.admin,
            json!({"endpoint_id": endpoint_id}),
        )
        .await;
    assert_problem(res, 410, "event_purged").await;
    let res = s
        .app
        .post_as(
            &format!(
                "/api/v1/tenants/acme/deliveries/{}/redeliver",
                delivered[0]["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({}),
        )
        .await;
    assert_problem(res, 410, "event_purged").await;

    // Once its delivery is done, the pending one goes the same way.
    assert_eq!(s.drain().await, 1);
    assert_eq!(purge_as_of(&s, 31).await, 1);
}

#[tokio::test]
async fn a_retention_period_outside_one_day_to_ten_years_is_refused() {
    let s = setup_with(|_| {}).await;
    for bad in [json!(0), json!(3651), json!(1.5), json!("30")] {
        let res = s
            .app
            .patch_as(
                "/api/v1/tenants/acme",
                &s.admin,
                json!({"retention_days": bad}),
            )
            .await;
        let status = res.status().as_u16();
        assert!(status == 422, "{bad}: {status}");
    }
    let res = s
        .app
        .post_as(
            "/api/v1/tenants",
            &s.admin,
            json!({"slug": "brief", "name": "Brief", "retention_days": 7.0}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["retention_days"], 7);
}

#[tokio::test]
async fn a_subjects_disclosures_list_every_attempt_to_every_endpoint_and_outlive_the_purge() {
    let s = setup_with(|_| {}).await;
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.set_status(503);
    let good = s.endpoint(&ok.url, json!({})).await;
    let bad = s.endpoint(&failing.url, json!({})).await;
    let first = s.event(1, "VC-DISCLOSED").await;
    s.event(2, "VC-SOMEONE-ELSE").await;
    s.drain().await;
    assert_eq!(purge_as_of(&s, 31).await, 2);

    let path = "/api/v1/tenants/acme/subjects/VC-DISCLOSED/disclosures";
    let list: Value = s.app.get_as(path, &s.admin).await.json().await.unwrap();
    let rows = list["data"].as_array().unwrap();
    // One attempt to the good endpoint; three (the retry schedule) to the failing one.
    assert_eq!(rows.len(), 4, "{list}");
    assert!(rows.iter().all(|r| r["event_id"] == first.as_str()));
    let to_good: Vec<&Value> = rows
        .iter()
        .filter(|r| r["endpoint_id"] == good["id"])
        .collect();
    assert_eq!(to_good.len(), 1);
    assert_eq!(to_good[0]["outcome"], "delivered");
    assert_eq!(to_good[0]["endpoint_host"], "127.0.0.1");
    assert_eq!(to_good[0]["payload_mode"], "full");
    assert!(rows
        .iter()
        .filter(|r| r["endpoint_id"] == bad["id"])
        .all(|r| r["outcome"] == "failed" && r["status_code"] == 503));

    let csv = s.app.get_as(&format!("{path}?format=csv"), &s.admin).await;
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("at,event_id,event_type,endpoint_id,endpoint_host"));
    assert_eq!(csv.lines().count(), 5);
    let ndjson = s
        .app
        .get_as(&format!("{path}?format=ndjson"), &s.admin)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(ndjson.lines().count(), 4);
    for line in ndjson.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }

    // Another tenant's token sees none of it.
    let admin = s.app.admin_token().await;
    let other = s.app.create_tenant(&admin, "other-org", None).await;
    let token = s.app.tenant_token(other["id"].as_str().unwrap()).await;
    let res = s.app.get_as(path, &token).await;
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test]
async fn disclosures_outlive_the_endpoint_which_once_deleted_is_never_sent_to_again() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({})).await;
    let id = ep["id"].as_str().unwrap().to_owned();
    s.event(1, "VC-GONE-1").await;
    assert_eq!(s.drain().await, 1);
    // Delivered once; a second event waits in the queue when the endpoint is deleted.
    s.event(2, "VC-GONE-1").await;
    let path = format!("/api/v1/tenants/acme/endpoints/{id}");
    assert_eq!(
        s.app.delete_as(&path, &s.admin).await.status().as_u16(),
        204
    );
    assert_problem(s.app.get_as(&path, &s.admin).await, 404, "not_found").await;
    let listed: Value = s
        .app
        .get_as("/api/v1/tenants/acme/endpoints", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);

    s.drain().await;
    assert_eq!(rx.received().len(), 1, "nothing is sent after the deletion");
    let deliveries = s.deliveries("").await;
    let waiting: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["status"] == "dead")
        .collect();
    assert_eq!(waiting.len(), 1, "{deliveries:?}");
    assert_eq!(waiting[0]["last_error"], "the endpoint was deleted");
    let res = s
        .app
        .post_as(
            &format!(
                "/api/v1/tenants/acme/deliveries/{}/redeliver",
                waiting[0]["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;

    // Its signing secrets are erased; the accounting still names it.
    let secrets = gateway::store::endpoint_secret::Entity::find()
        .filter(gateway::store::endpoint_secret::Column::EndpointId.eq(id.clone()))
        .all(&s.app.state.db)
        .await
        .unwrap();
    assert!(secrets.is_empty());
    let list: Value = s
        .app
        .get_as(
            "/api/v1/tenants/acme/subjects/VC-GONE-1/disclosures",
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["endpoint_id"], id.as_str());
    assert_eq!(rows[0]["endpoint_host"], "127.0.0.1");
    assert_eq!(rows[0]["outcome"], "delivered");
}
