//! Patient data never reaches the log: the real binary, logging at `debug`, receives a webhook
//! with a patient's name and date of birth, has it read through every route that shows patient
//! data (and exported), refuses a forged copy, and not one log line holds them.

use std::time::Duration;

use gateway::providers::vectorcare::simulate::sign;
use serde_json::json;

use crate::helpers::{TestDatabase, VECTORCARE_PUBLIC_PEM};
use crate::process::{gateway, serve_logged, signal, wait_exit};
use crate::webhooks::{vectorcare_event, VECTORCARE_PRIVATE_PEM};

const PATIENT: [&str; 3] = ["Margaret", "Hollis", "1941-07-22"];

#[tokio::test]
async fn no_log_line_holds_patient_data_at_debug_level_through_every_reading_route() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(dir.path()).await;
    let key = gateway::crypto::MasterKey::generate().to_base64();
    let command = |args: &[&str]| {
        let mut cmd = gateway(dir.path());
        if db.is_postgres() {
            cmd.env("DATABASE_URL", &db.url);
        }
        cmd.env("GATEWAY_MASTER_KEY", &key)
            .env("GATEWAY_LOG", "debug")
            .args(args);
        cmd
    };
    let out = command(&["token", "create", "--role", "admin"])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (mut child, addr, log) = serve_logged(&mut command(&[]));
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    let res = client
        .post(url("/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({"slug": "acme", "name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let res = client
        .put(url("/api/v1/tenants/acme/providers/vectorcare"))
        .bearer_auth(&token)
        .json(&json!({"public_keys": [VECTORCARE_PUBLIC_PEM]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    let body = vectorcare_event(
        "01JQ0000000000000000000001",
        "VC-PHI-1",
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    assert!(String::from_utf8_lossy(&body).contains(PATIENT[0]));
    let post = |signature: String| {
        client
            .post(url("/webhooks/vectorcare/acme"))
            .header("content-type", "application/json")
            .header("x-vectorcare-signature", signature)
            .body(body.clone())
            .send()
    };
    let res = post(sign(VECTORCARE_PRIVATE_PEM, &body).unwrap())
        .await
        .unwrap();
    let event: serde_json::Value = res.json().await.unwrap();
    let event = event["event_id"].as_str().unwrap().to_owned();
    let forged = post("AAAA".into()).await.unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    for path in [
        format!("/api/v1/tenants/acme/events/{event}"),
        "/api/v1/tenants/acme/events".into(),
        "/api/v1/tenants/acme/subjects/VC-PHI-1/timeline".into(),
        "/api/v1/tenants/acme/subjects/VC-PHI-1/disclosures?format=csv".into(),
        "/api/v1/access-log?format=ndjson".into(),
        "/api/v1/audit".into(),
    ] {
        let res = client
            .get(url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
    }
    let detail = client
        .get(url(&format!("/api/v1/tenants/acme/events/{event}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        detail.contains(PATIENT[1]),
        "the read itself shows the data"
    );

    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.len() > 10,
        "the log at debug level has lines: {}",
        lines.len()
    );
    for line in &lines {
        for value in PATIENT {
            assert!(!line.contains(value), "a log line holds `{value}`: {line}");
        }
    }
}
