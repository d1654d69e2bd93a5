//! One write path, two backends: the same batches, written through the SQLite backend (SQLite's
//! own API) and through the sea-orm backend (PostgreSQL with TEST_DATABASE_URL, else a second
//! SQLite database), leave the same rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use gateway::crypto::payload::{self, PayloadRef};
use gateway::delivery::policy::{plan, EndpointState};
use gateway::delivery::send::Outcome as Sent;
use gateway::domain::{EventId, TenantId};
use gateway::handoff::Handoff;
use gateway::normalize::{stored_cloud_event, Kind, Normalized, NormalizedData, Status};
use gateway::outbox::{Backend, Record, Sealed};
use gateway::providers::vectorcare;
use gateway::store::data_key::{self, ActiveKey};
use gateway::store::payload::{open as payload_state, PayloadState};
use gateway::store::{delivery, delivery_attempt, endpoint, event, subject_head};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_sqlite_app, TestApp};

const WORKER: &str = "wrk_conformance";

/// (provider event id, subject, order key); the same id twice is a provider's retry.
const FIRST: &[(&str, &str, &str)] = &[
    ("evt-1", "req-A", "2026-01-01T10:00:00Z"),
    ("evt-2", "req-A", "2026-01-01T09:00:00Z"), // older than evt-1: stale
    ("evt-3", "req-B", "2026-01-01T10:00:00Z"),
    ("evt-1", "req-A", "2026-01-01T10:00:00Z"), // a retry within the batch
    ("evt-4", "req-A", "2026-01-01T10:00:00Z"), // the same instant as the head: not stale
];
const SECOND: &[(&str, &str, &str)] = &[
    ("evt-3", "req-B", "2026-01-01T10:00:00Z"), // a retry of an event stored before
    ("evt-5", "req-A", "2026-01-01T11:00:00Z"),
    ("evt-6", "req-B", "2026-01-01T08:00:00Z"), // stale against the stored head
];

fn record(tenant: &TenantId, key: &ActiveKey, (pid, subject, order): (&str, &str, &str)) -> Record {
    let occurred_at = chrono::DateTime::parse_from_rfc3339(order)
        .unwrap()
        .with_timezone(&Utc);
    let normalized = Normalized {
        provider_event_id: pid.to_owned(),
        event_type: "transport.request.updated",
        subject: subject.to_owned(),
        occurred_at,
        staleness_key: Some(subject.to_owned()),
        order_key: order.to_owned(),
        data: NormalizedData {
            provider_status: Some("in_progress".into()),
            ..NormalizedData::bare(Kind::TransportRequest, Status::InProgress)
        },
    };
    let id = EventId::generate();
    let cloud_event = stored_cloud_event(id.as_str(), tenant, "vectorcare", &normalized).unwrap();
    let raw_body = format!(r#"{{"event_id":"{pid}","request_id":"{subject}"}}"#);
    let raw_headers = r#"{"x-test":"1"}"#.to_owned();
    let blob = payload::seal(
        &key.key,
        id.as_str(),
        PayloadRef {
            cloud_event: &cloud_event,
            raw_headers: &raw_headers,
            raw_body: &raw_body,
        },
    );
    Record {
        cloud_event,
        id,
        tenant_id: tenant.clone(),
        provider: vectorcare::PROVIDER,
        normalized,
        raw_body,
        raw_headers,
        verification: r#"{"method":"test"}"#.into(),
        received_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
        sealed: Sealed {
            key_id: key.id.clone(),
            blob,
        },
    }
}

struct Side {
    app: TestApp,
    backend: Arc<dyn Backend>,
    tenant: TenantId,
    key: ActiveKey,
}

async fn side(app: TestApp, sqlite_api: bool) -> Side {
    let admin = app.admin_token().await;
    let t = app.create_tenant(&admin, "acme", None).await;
    let tenant_id = t["id"].as_str().unwrap().to_owned();
    for body in [
        json!({"url": "https://a.example/hook"}),
        json!({"url": "https://b.example/hook", "event_types": ["transport.*"], "include_stale": true}),
        json!({"url": "https://c.example/hook", "event_types": ["lab.*"]}),
        json!({"kind": "pull"}),
        json!({"url": "https://d.example/hook", "handshake": true}),
    ] {
        let res = app
            .post_as(
                &format!("/api/v1/tenants/{tenant_id}/endpoints"),
                &admin,
                body,
            )
            .await;
        assert_eq!(res.status().as_u16(), 201);
    }
    let backend: Arc<dyn Backend> = if sqlite_api {
        let conn = rusqlite::Connection::open(app.data_dir.join("gateway.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        Arc::new(gateway::outbox::Sqlite::new(Arc::new(Mutex::new(conn))))
    } else {
        Arc::new(gateway::outbox::Postgres::new(app.state.db.clone()))
    };
    let tenant = TenantId::parse(&tenant_id).unwrap();
    let (_, key) = data_key::create(&app.state.db, &app.state.cipher, &tenant)
        .await
        .unwrap();
    Side {
        tenant,
        app,
        backend,
        key,
    }
}

/// Writes both batches, with outcomes for the first batch's deliveries alongside the second.
async fn run(side: &Side) -> Value {
    let handoff = Handoff::disabled(WORKER.to_owned());
    let first: Vec<Record> = FIRST
        .iter()
        .map(|r| record(&side.tenant, &side.key, *r))
        .collect();
    let refs: Vec<&Record> = first.iter().collect();
    let stored1 = side.backend.write(&refs, &[], &handoff).await.unwrap();

    // The workers lease what the first batch queued.
    let db = &side.app.state.db;
    delivery::Entity::update_many()
        .col_expr(delivery::Column::LeasedBy, Expr::value(WORKER))
        .col_expr(
            delivery::Column::LeasedUntil,
            Expr::value(Some(Utc::now() + chrono::Duration::minutes(1))),
        )
        .exec(db)
        .await
        .unwrap();
    let endpoints = endpoint::Entity::find().all(db).await.unwrap();
    let url_of: HashMap<_, _> = endpoints
        .iter()
        .map(|e| (e.id.clone(), e.url.as_str().to_owned()))
        .collect();
    let pid_of: HashMap<String, String> = event::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id.to_string(), e.provider_event_id))
        .collect();
    let mut leased = delivery::Entity::find().all(db).await.unwrap();
    leased.sort_by_key(|d| {
        (
            pid_of[d.event_id.as_str()].clone(),
            url_of[&d.endpoint_id].clone(),
        )
    });
    let settings = gateway::config::Settings::from_raw(Default::default())
        .unwrap()
        .delivery;
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 1).unwrap();
    let plans: Vec<_> = leased
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let ep = endpoints.iter().find(|e| e.id == d.endpoint_id).unwrap();
            // In turn: a success, a failure to retry, and a 410 that disables the endpoint.
            let status = [200, 500, 410][i % 3];
            let sent = Sent {
                status: Some(status),
                duration: Duration::from_millis(5),
                error_class: (status != 200).then_some("http_status"),
                error: (status != 200).then(|| format!("HTTP {status}")),
                snippet: None,
                retry_after: (status == 500).then(|| Duration::from_secs(30)),
            };
            let state = EndpointState {
                id: &ep.id,
                tenant_id: &ep.tenant_id,
                failing_since: ep.failing_since,
                payload_mode: ep.payload_mode,
            };
            plan(
                &settings,
                &d.id,
                d.attempts,
                &state,
                &sent,
                now,
                &mut rand::thread_rng(),
            )
            .0
        })
        .collect();
    let plan_refs: Vec<_> = plans.iter().collect();
    let second: Vec<Record> = SECOND
        .iter()
        .map(|r| record(&side.tenant, &side.key, *r))
        .collect();
    let refs: Vec<&Record> = second.iter().collect();
    let stored2 = side
        .backend
        .write(&refs, &plan_refs, &handoff)
        .await
        .unwrap();

    let mut answers = Vec::new();
    for (records, stored) in [(&first, &stored1), (&second, &stored2)] {
        for (r, o) in records.iter().zip(&stored.outcomes) {
            answers.push(json!({
                "event": r.normalized.provider_event_id,
                "same_id_as_stored": pid_of.get(o.event_id.as_str()).or_else(|| {
                    (o.event_id == r.id).then_some(&r.normalized.provider_event_id)
                }),
                "duplicate": o.duplicate, "stale": o.stale, "deliveries": o.deliveries,
            }));
        }
    }
    rows(side, answers).await
}

/// The rows both backends own, with generated ids replaced by what they stand for.
async fn rows(side: &Side, answers: Vec<Value>) -> Value {
    let db = &side.app.state.db;
    let tenant = side.tenant.to_string();
    let events = event::Entity::find()
        .filter(event::Column::TenantId.eq(side.tenant.clone()))
        .all(db)
        .await
        .unwrap();
    let pid: HashMap<String, String> = events
        .iter()
        .map(|e| (e.id.to_string(), e.provider_event_id.clone()))
        .collect();
    let url: HashMap<String, String> = endpoint::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            // A pull endpoint's URL names its tenant, which differs between the sides.
            let url = match e.kind {
                gateway::domain::EndpointKind::Pull => "pull".to_owned(),
                gateway::domain::EndpointKind::Push => e.url.as_str().to_owned(),
            };
            (e.id.to_string(), url)
        })
        .collect();
    let mut event_rows: Vec<Value> = Vec::new();
    for e in &events {
        // What is stored in the clear must be the same, and what is sealed must open to the
        // same payload.
        let PayloadState::Held(held) = payload_state(db, &side.app.state.cipher, e).await.unwrap()
        else {
            panic!("{} is not held", e.id)
        };
        let normalized = held
            .cloud_event
            .replace(e.id.as_str(), "EVENT")
            .replace(&tenant, "TENANT");
        event_rows.push(json!([
            e.provider_event_id,
            e.provider,
            e.event_type,
            e.subject,
            e.status,
            e.order_key,
            e.stale,
            e.occurred_at,
            e.received_at,
            normalized,
            held.raw_body,
            held.raw_headers,
            e.verification,
            e.data_key_id.as_ref() == Some(&side.key.id),
            [
                &e.normalized.to_string(),
                &e.raw_body,
                &e.raw_headers.to_string()
            ]
        ]));
    }
    event_rows.sort_by_key(|v| v.to_string());
    let mut heads: Vec<Value> = subject_head::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|h| json!([h.provider, h.subject, h.order_key, pid.get(&h.event_id)]))
        .collect();
    heads.sort_by_key(|v| v.to_string());
    let deliveries = delivery::Entity::find().all(db).await.unwrap();
    let mut delivery_rows: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!([
                pid[d.event_id.as_str()],
                url[d.endpoint_id.as_str()],
                d.subject,
                d.status,
                d.attempts,
                d.last_status_code,
                d.last_error,
                d.leased_by,
                d.leased_until.is_some(),
                d.completed_at,
                d.next_attempt_at >= d.created_at,
                d.seq
            ])
        })
        .collect();
    delivery_rows.sort_by_key(|v| v.to_string());
    let of_delivery: HashMap<String, (String, String)> = deliveries
        .iter()
        .map(|d| {
            (
                d.id.to_string(),
                (
                    pid[d.event_id.as_str()].clone(),
                    url[d.endpoint_id.as_str()].clone(),
                ),
            )
        })
        .collect();
    let mut attempts: Vec<Value> = delivery_attempt::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            json!([
                of_delivery[a.delivery_id.as_str()],
                url[a.endpoint_id.as_str()],
                a.attempt,
                a.at,
                a.status_code,
                a.duration_ms,
                a.error_class,
                a.error,
                a.success
            ])
        })
        .collect();
    attempts.sort_by_key(|v| v.to_string());
    let mut endpoints: Vec<Value> = endpoint::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            json!([
                url[e.id.as_str()],
                e.enabled,
                e.disabled_reason,
                e.failing_since
            ])
        })
        .collect();
    endpoints.sort_by_key(|v| v.to_string());
    let mut sequences: Vec<Value> = gateway::store::endpoint_sequence::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|q| json!([url[q.endpoint_id.as_str()], q.last_seq]))
        .collect();
    sequences.sort_by_key(|v| v.to_string());
    json!({
        "sequences": sequences,
        "answers": answers, "events": event_rows, "heads": heads,
        "deliveries": delivery_rows, "attempts": attempts, "endpoints": endpoints,
    })
}

#[tokio::test]
async fn both_outbox_backends_write_the_same_rows_for_the_same_batches() {
    let sqlite = side(spawn_sqlite_app().await, true).await;
    let other = side(spawn_app().await, false).await;
    let a = run(&sqlite).await;
    let b = run(&other).await;
    for key in [
        "answers",
        "events",
        "heads",
        "deliveries",
        "attempts",
        "endpoints",
        "sequences",
    ] {
        assert_eq!(
            a[key],
            b[key],
            "{key} differ between the SQLite backend and the sea-orm backend ({})",
            if other.app.database.is_postgres() {
                "PostgreSQL"
            } else {
                "SQLite"
            }
        );
    }
    // What the batches were built to show, so that an empty result cannot pass.
    let answers = a["answers"].as_array().unwrap();
    let flags: Vec<(bool, bool)> = answers
        .iter()
        .map(|v| {
            (
                v["duplicate"].as_bool().unwrap(),
                v["stale"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            (false, false),
            (false, true),
            (false, false),
            (true, false),
            (false, false),
            (true, false),
            (false, false),
            (false, true),
        ]
    );
    assert_eq!(a["heads"].as_array().unwrap().len(), 2);
    // The pull endpoint's events (until an outcome disabled it) are numbered 1, 2, 3...
    let pull_numbers: Vec<i64> = a["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d[1] == "pull")
        .map(|d| d[11].as_i64().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(pull_numbers.len() >= 2, "{pull_numbers:?}");
    assert_eq!(
        pull_numbers,
        (1..=pull_numbers.len() as i64).collect::<Vec<i64>>()
    );
    let attempts = a["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 3, "{attempts:?}");
    let disabled = a["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[1] == json!(false))
        .count();
    assert!(
        disabled >= 1,
        "a 410 disables its endpoint: {}",
        a["endpoints"]
    );
}

#[tokio::test]
async fn both_outbox_backends_refuse_a_batch_sealed_with_a_destroyed_data_key() {
    for s in [
        side(spawn_sqlite_app().await, true).await,
        side(spawn_app().await, false).await,
    ] {
        let handoff = Handoff::disabled(WORKER.to_owned());
        data_key::destroy(&s.app.state.db, &s.tenant, &s.key.id)
            .await
            .unwrap()
            .unwrap();
        let batch: Vec<Record> = FIRST[..1]
            .iter()
            .map(|r| record(&s.tenant, &s.key, *r))
            .collect();
        let refs: Vec<&Record> = batch.iter().collect();
        let err = s
            .backend
            .write(&refs, &[], &handoff)
            .await
            .err()
            .expect("refused");
        assert!(gateway::outbox::is_key_destroyed(&err), "{err}");
        let stored = event::Entity::find().all(&s.app.state.db).await.unwrap();
        assert!(stored.is_empty(), "nothing is stored under a destroyed key");
    }
}
