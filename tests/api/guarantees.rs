//! What lets receivers and operators trust delivery: a handshake before patient data, a
//! heartbeat on quiet days, superseded retries, operator alerts (signed, listed, retried), and
//! fairness between tenants.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::delivery::{setup_with, verify, Setup};
use crate::helpers::VITAL_SECRET;
use crate::receiver::{Received, Receiver};

fn of_type<'a>(got: &'a [Received], event_type: &str) -> Vec<&'a Received> {
    got.iter()
        .filter(|r| r.json()["type"] == event_type)
        .collect()
}

async fn execute(s: &Setup, postgres: &str, sqlite: &str, values: Vec<sea_orm::Value>) {
    let db = &s.app.state.db;
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => postgres,
        _ => sqlite,
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_endpoint_that_asks_for_a_handshake_gets_patient_data_only_after_answering_it() {
    let s = setup_with(|c| c.monitor_interval = "50ms".into()).await;
    let rx = Receiver::start().await;
    rx.set_status(503);
    let ep = s.endpoint(&rx.url, json!({"handshake": true})).await;
    assert_eq!(ep["handshake"], true);
    assert!(ep["verified_at"].is_null());
    let secret = ep["signing_secret"].as_str().unwrap();
    let id = ep["id"].as_str().unwrap();
    s.event(1, "VC-HS1").await;
    assert_eq!(s.drain().await, 0, "held until the handshake is answered");

    s.app.state.monitor.tick().await.unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 1, "only the handshake went out");
    let hs = got[0].json();
    assert_eq!(hs["type"], "gateway.endpoint.handshake");
    assert_eq!(hs["data"]["endpoint_id"], id);
    assert!(hs["data"]["challenge"].is_string());
    assert!(verify(secret, &got[0]), "signed like every delivery");
    assert_eq!(s.drain().await, 0, "answered 503: still held");

    rx.set_status(200);
    tokio::time::sleep(Duration::from_millis(150)).await; // past the first back-off
    s.app.state.monitor.tick().await.unwrap();
    assert_eq!(
        of_type(&rx.received(), "gateway.endpoint.handshake").len(),
        2
    );
    let ep_now: Value = s
        .app
        .get_as(&format!("/api/v1/tenants/acme/endpoints/{id}"), &s.admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(ep_now["verified_at"].is_string(), "{ep_now}");
    assert_eq!(s.drain().await, 1, "the held event goes now");
    assert_eq!(rx.received().last().unwrap().json()["subject"], "VC-HS1");

    // Re-enabled: a new handshake before the next event.
    let path = format!("/api/v1/tenants/acme/endpoints/{id}");
    s.app
        .patch_as(&path, &s.admin, json!({"enabled": false}))
        .await;
    let res = s
        .app
        .patch_as(&path, &s.admin, json!({"enabled": true}))
        .await;
    assert!(res.json::<Value>().await.unwrap()["verified_at"].is_null());
    s.event(2, "VC-HS2").await;
    assert_eq!(s.drain().await, 0);
    s.app.state.monitor.tick().await.unwrap();
    assert_eq!(
        of_type(&rx.received(), "gateway.endpoint.handshake").len(),
        3
    );
    assert_eq!(s.drain().await, 1);
}

#[tokio::test]
async fn a_quiet_endpoint_gets_a_signed_heartbeat_with_its_current_sequence_number() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({"heartbeat_minutes": 1})).await;
    assert_eq!(ep["heartbeat_minutes"], 1);
    let id = ep["id"].as_str().unwrap().to_owned();
    s.event(1, "VC-HB1").await;
    s.event(2, "VC-HB2").await;
    assert_eq!(s.drain().await, 2);
    s.app.state.monitor.tick().await.unwrap();
    assert_eq!(rx.received().len(), 2, "just sent to: no heartbeat");

    // Two minutes pass without anything sent.
    let past = chrono::Utc::now() - chrono::Duration::minutes(2);
    execute(
        &s,
        "UPDATE delivery_attempts SET at = $1 WHERE endpoint_id = $2",
        "UPDATE delivery_attempts SET at = ?1 WHERE endpoint_id = ?2",
        vec![past.into(), id.clone().into()],
    )
    .await;
    execute(
        &s,
        "UPDATE endpoints SET created_at = $1 WHERE id = $2",
        "UPDATE endpoints SET created_at = ?1 WHERE id = ?2",
        vec![past.into(), id.clone().into()],
    )
    .await;
    s.app.state.monitor.tick().await.unwrap();
    let got = rx.received();
    let beats = of_type(&got, "gateway.endpoint.heartbeat");
    assert_eq!(beats.len(), 1);
    let beat = beats[0].json();
    assert_eq!(beat["endpointseq"], 2);
    assert_eq!(beat["data"]["last_seq"], 2);
    assert_eq!(beats[0].headers["x-gateway-sequence"], "2");
    assert!(verify(ep["signing_secret"].as_str().unwrap(), beats[0]));
    s.app.state.monitor.tick().await.unwrap();
    assert_eq!(rx.received().len(), 3, "one heartbeat per quiet interval");

    let res = s
        .app
        .patch_as(
            &format!("/api/v1/tenants/acme/endpoints/{id}"),
            &s.admin,
            json!({"heartbeat_minutes": 1441}),
        )
        .await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_failed_delivery_is_superseded_once_a_newer_event_of_its_subject_was_delivered() {
    let s = setup_with(|c| c.delivery_retry_schedule = "0s,1s,1s".into()).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({"supersede": true})).await;
    assert_eq!(ep["supersede"], true);
    let fifo = s
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &s.admin,
            json!({"url": rx.url, "supersede": true, "ordering": "fifo_subject"}),
        )
        .await;
    crate::helpers::assert_problem(fifo, 422, "validation_failed").await;

    rx.set_status(500);
    let older = s.event(1, "VC-SUP").await;
    assert_eq!(s.drain().await, 1);
    rx.set_status(200);
    let newer = s.event(2, "VC-SUP").await;
    assert_eq!(s.drain().await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.drain().await, 1, "the retry came due");
    let got: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got,
        vec![older.clone(), newer.clone()],
        "the older one was not sent again"
    );
    let d = s.deliveries(&format!("?event_id={older}")).await;
    assert_eq!(d[0]["status"], "superseded", "{d:?}");
    assert_eq!(d[0]["attempts"], 1);

    // Without the option the same story retries the older event.
    let plain_rx = Receiver::start().await;
    s.app
        .patch_as(
            &format!(
                "/api/v1/tenants/acme/endpoints/{}",
                ep["id"].as_str().unwrap()
            ),
            &s.admin,
            json!({"enabled": false}),
        )
        .await;
    s.endpoint(&plain_rx.url, json!({})).await;
    plain_rx.set_status(500);
    s.event(3, "VC-SUP2").await;
    s.drain().await;
    plain_rx.set_status(200);
    s.event(4, "VC-SUP2").await;
    s.drain().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.drain().await;
    assert_eq!(plain_rx.received().len(), 3, "the older one was retried");
}

#[tokio::test]
async fn operator_alerts_are_raised_signed_sent_listed_and_retried() {
    let operator = Receiver::start().await;
    let operator_url = operator.url.clone();
    let s = setup_with(move |c| {
        c.operator_url = operator_url;
        c.operator_secret = VITAL_SECRET.into();
        c.alert_failures = 2;
        c.alert_backlog = 2;
        c.alert_oldest_pending = "1ms".into();
        c.alert_verification_failures = 3;
        c.ingest_failed_verifications_burst = 100;
    })
    .await;
    // A failing endpoint: three attempts, the delivery dies.
    let failing_rx = Receiver::start().await;
    failing_rx.set_status(500);
    let failing = s.endpoint(&failing_rx.url, json!({})).await;
    s.event(1, "VC-AL1").await;
    assert_eq!(s.drain().await, 3);
    s.app.state.monitor.tick().await.unwrap();
    let path = |ep: &Value| {
        format!(
            "/api/v1/tenants/acme/endpoints/{}",
            ep["id"].as_str().unwrap()
        )
    };
    s.app
        .patch_as(&path(&failing), &s.admin, json!({"enabled": false}))
        .await;
    // An endpoint that answers 410 is disabled.
    let gone_rx = Receiver::start().await;
    gone_rx.set_status(410);
    let gone = s.endpoint(&gone_rx.url, json!({})).await;
    s.event(2, "VC-AL2").await;
    assert_eq!(s.drain().await, 1);
    // A pull endpoint nobody reads: a backlog, and an old pending event.
    let pull: Value = s
        .app
        .post_as(
            "/api/v1/tenants/acme/endpoints",
            &s.admin,
            json!({"kind": "pull"}),
        )
        .await
        .json()
        .await
        .unwrap();
    for n in 3..=5 {
        s.event(n, &format!("VC-AL{n}")).await;
    }
    // Webhooks with a wrong signature: a rotated provider key, or an attack.
    for n in 0..3 {
        let body = crate::webhooks::vectorcare_event(
            &format!("01JB{n:022}"),
            "VC-FORGED",
            "ASSIGNED",
            "REQUEST_DATA_UPDATED",
        );
        let res = s
            .app
            .client
            .post(s.app.url("/webhooks/vectorcare/acme"))
            .header("x-vectorcare-signature", "Zm9yZ2Vk")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // raised in the background
    s.app.state.monitor.tick().await.unwrap();

    let list: Value = s
        .app
        .get_as("/api/v1/alerts?limit=50", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let alerts = list["data"].as_array().unwrap();
    let find =
        |kind: &str| -> Vec<&Value> { alerts.iter().filter(|a| a["kind"] == kind).collect() };
    let failing_id = failing["id"].as_str().unwrap();
    let dead: Vec<&Value> = find("delivery_dead")
        .iter()
        .map(|a| &a["endpoint_id"])
        .collect();
    assert_eq!(
        dead.len(),
        2,
        "every attempt failed, and a 410 ends at once: {list}"
    );
    assert!(dead.contains(&&json!(failing_id)) && dead.contains(&&gone["id"]));
    assert_eq!(find("endpoint_failing")[0]["endpoint_id"], failing_id);
    assert_eq!(find("endpoint_failing")[0]["detail"]["failures"], 3);
    assert_eq!(find("endpoint_disabled")[0]["endpoint_id"], gone["id"]);
    assert_eq!(find("backlog")[0]["endpoint_id"], pull["id"]);
    assert_eq!(find("backlog")[0]["detail"]["pending"], 3);
    assert!(find("oldest_pending")
        .iter()
        .any(|a| a["endpoint_id"] == pull["id"]));
    assert_eq!(
        find("verification_failures").len(),
        1,
        "once per tenant a minute"
    );
    assert!(alerts.iter().all(|a| a["status"] == "sent"), "{list}");

    let got = operator.received();
    assert_eq!(got.len(), alerts.len());
    for r in &got {
        assert!(verify(VITAL_SECRET, r), "signed with the operator secret");
        let body = r.json();
        assert!(body["type"].as_str().unwrap().starts_with("gateway.alert."));
        assert!(
            !String::from_utf8_lossy(&r.body).contains("Margaret"),
            "no patient data"
        );
    }
    // The same conditions this hour raise nothing new.
    s.app.state.monitor.tick().await.unwrap();
    assert_eq!(operator.received().len(), got.len());

    // The operator endpoint is down: the alert waits and is tried again.
    operator.set_status(500);
    s.app
        .patch_as(&path(&gone), &s.admin, json!({"enabled": true}))
        .await;
    s.event(6, "VC-AL6").await;
    s.drain().await;
    s.app.state.monitor.tick().await.unwrap();
    let pending: Value = s
        .app
        .get_as("/api/v1/alerts?kind=endpoint_disabled", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let latest = &pending["data"][0];
    assert_eq!(latest["status"], "pending", "{pending}");
    assert_eq!(latest["attempts"], 1);
    assert!(latest["last_error"].as_str().unwrap().contains("500"));
    let tenant_token = s
        .app
        .tenant_token(failing["tenant_id"].as_str().unwrap())
        .await;
    let res = s.app.get_as("/api/v1/alerts", &tenant_token).await;
    crate::helpers::assert_problem(res, 403, "forbidden").await;
    let metrics = s.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_alerts_raised_total{kind=\"backlog\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_tenants_backlog_of_ten_thousand_does_not_delay_another_tenants_fresh_event() {
    let s = setup_with(|c| {
        c.delivery_enabled = true;
        c.delivery_poll_interval = "100ms".into();
    })
    .await;
    let slow = Receiver::start().await;
    slow.set_delay(Duration::from_secs(5));
    let flooded = s.endpoint(&slow.url, json!({})).await;
    let event = s.event(1, "VC-FLOOD").await;
    // Ten thousand deliveries of tenant A due now (a backlog of retries, a bulk recover).
    let now = chrono::Utc::now() - chrono::Duration::seconds(1);
    execute(
        &s,
        "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, subject, status, attempts, \
         next_attempt_at, created_at, updated_at) \
         SELECT 'dlv_' || lpad(to_hex(i), 32, '0'), $1, $2, $3, 'VC-FLOOD', 'pending', 1, $4, $4, $4 \
         FROM generate_series(1, 10000) AS i",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, subject, status, attempts, \
         next_attempt_at, created_at, updated_at) \
         SELECT printf('dlv_%032x', i), ?1, ?2, ?3, 'VC-FLOOD', 'pending', 1, ?4, ?4, ?4 FROM n",
        vec![
            flooded["tenant_id"].as_str().unwrap().into(),
            event.into(),
            flooded["id"].as_str().unwrap().into(),
            now.into(),
        ],
    )
    .await;
    s.app.state.delivery.poke();
    slow.wait_for(5, Duration::from_secs(10)).await;

    // Tenant B, its own provider connection and endpoint.
    s.app.create_tenant(&s.admin, "bravo", None).await;
    let res = s
        .app
        .put_as(
            "/api/v1/tenants/bravo/providers/vectorcare",
            &s.admin,
            json!({"public_keys": [crate::helpers::VECTORCARE_PUBLIC_PEM]}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let fast = Receiver::start().await;
    let res = s
        .app
        .post_as(
            "/api/v1/tenants/bravo/endpoints",
            &s.admin,
            json!({"url": fast.url}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let body = crate::webhooks::vectorcare_event(
        &format!("01JF{:022}", 1),
        "VC-FRESH",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    let sent = Instant::now();
    let res = s
        .app
        .post_vectorcare(
            "/webhooks/vectorcare/bravo",
            &body,
            crate::webhooks::VECTORCARE_PRIVATE_PEM,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let got = fast.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        !got.is_empty(),
        "tenant B's event was not delivered within 10 s"
    );
    let took = got[0].at - sent;
    assert!(
        took < Duration::from_secs(1),
        "tenant B's event took {took:?}"
    );
    let pending = s.deliveries("?status=pending&limit=1").await;
    assert!(!pending.is_empty(), "tenant A's backlog is still there");
}

#[tokio::test]
async fn the_shipped_prometheus_rules_name_only_metrics_the_gateway_exports() {
    let rules = include_str!("../../src/metrics/alerts.yml");
    let app = crate::helpers::spawn_app().await;
    // A labelled family shows once it has a sample: give each one.
    let m = &app.state.metrics;
    let endpoint = gateway::metrics::EndpointLabel {
        endpoint: "ep_x".into(),
    };
    m.alerts_raised
        .get_or_create(&gateway::metrics::KindLabel {
            kind: "backlog".into(),
        })
        .inc();
    m.reject("vectorcare", "invalid_signature");
    m.delivery_attempts
        .get_or_create(&gateway::metrics::OutcomeLabel {
            outcome: "dead".into(),
        })
        .inc();
    m.pull_backlog.get_or_create(&endpoint).set(1);
    m.pull_lag_seconds.get_or_create(&endpoint).set(1.0);
    m.pull_last_read_timestamp_seconds
        .get_or_create(&endpoint)
        .set(1.0);
    let exported = app.get("/metrics").await.text().await.unwrap();
    let mut named = std::collections::BTreeSet::new();
    for line in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("gateway_") {
                named.insert(word.to_owned());
            }
        }
    }
    assert!(named.len() >= 7, "{named:?}");
    for name in &named {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "{name} is not exported:\n{exported}"
        );
    }
    let alerts = rules.matches("- alert:").count();
    assert_eq!(alerts, rules.matches("expr:").count());
    assert!(alerts >= 8);
}
