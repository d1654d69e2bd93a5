//! Patient data never reaches the log nor the database in the clear: the real binary, logging at
//! `debug`, receives a webhook with a patient's name and date of birth, has it read through every
//! route that shows patient data (and exported), refuses a forged copy, rotates its master key
//! with the CLI, purges and seals payloads stored in the clear before payloads were sealed, and
//! not one log line, nor the database's files (SQLite with its WAL, or a PostgreSQL dump), holds
//! them; the data still reads back through the API after the rotation.

use std::time::Duration;

use gateway::providers::vectorcare::simulate::sign;
use sea_orm::EntityTrait;
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
    let new_key = gateway::crypto::MasterKey::generate().to_base64();
    let with_keys = |args: &[&str], key: &str, previous: Option<&str>| {
        let mut cmd = gateway(dir.path());
        if db.is_postgres() {
            cmd.env("DATABASE_URL", &db.url);
        }
        cmd.env("GATEWAY_MASTER_KEY", key)
            .env("GATEWAY_LOG", "debug")
            .env("GATEWAY_PURGE_INTERVAL", "1s")
            .args(args);
        if let Some(previous) = previous {
            cmd.env("GATEWAY_MASTER_KEY_PREVIOUS", previous);
        }
        cmd
    };
    let command = |args: &[&str]| with_keys(args, &key, None);
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
        "/api/v1/tenants/acme/data-keys".into(),
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
    // A new data key for the tenant: what was sealed before stays readable.
    let res = client
        .post(url("/api/v1/tenants/acme/data-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    // And destroyed again (it sealed nothing yet): the crypto-shredding route, logged too.
    let unused: serde_json::Value = res.json().await.unwrap();
    let res = client
        .delete(url(&format!(
            "/api/v1/tenants/acme/data-keys/{}",
            unused["id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_no_patient_data_stored(&db, dir.path(), "while serving");

    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );

    // The master key rotation, as README tells it: the command re-seals under the new key
    // (reading the old one), then the gateway runs on the new key alone.
    let out = with_keys(&["master-key", "rotate"], &new_key, Some(&key))
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("1 data keys"),
        "the live one; a destroyed key has nothing to re-seal: {said}"
    );
    let refused = command(&["token", "create", "--role", "admin"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "the old key alone is refused");
    let (mut child, addr, rotated_log) = serve_logged(&mut with_keys(&[], &new_key, None));
    let detail = client
        .get(format!("http://{addr}/api/v1/tenants/acme/events/{event}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        detail.status().as_u16(),
        200,
        "a token from before still works"
    );
    assert!(detail.text().await.unwrap().contains(PATIENT[1]));
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );
    assert_no_patient_data_stored(&db, dir.path(), "after the rotation");

    // The purger at work on patient data: two events as stored before payloads were sealed
    // (plain columns), one past retention (purged) and one recent (sealed in the background).
    let url = if db.is_postgres() {
        db.url.clone()
    } else {
        format!(
            "sqlite://{}?mode=rw",
            dir.path().join("data/gateway.db").display()
        )
    };
    let conn = sea_orm::Database::connect(&url).await.unwrap();
    let old = format!(
        "{}1",
        gateway::domain::EventId::bound_at(chrono::Utc::now() - chrono::Duration::days(400))
    );
    let recent = format!("{event}1");
    for (id, suffix) in [(old.as_str(), "-old"), (recent.as_str(), "-recent")] {
        insert_plain(&conn, &event, id, suffix).await;
    }
    let (mut child, _, purger_log) = serve_logged(&mut with_keys(&[], &new_key, None));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = gateway::store::event::Entity::find()
            .all(&conn)
            .await
            .unwrap();
        let of = |id: &str| rows.iter().find(|r| r.id.as_str() == id).unwrap().clone();
        if of(&old).purged_at.is_some() && of(&recent).data_key_id.is_some() {
            assert!(!of(&recent).raw_body.contains(PATIENT[0]));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the purger did not get to them"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)).code(),
        Some(0)
    );
    drop(conn);
    // SQLite's files may still hold the plain rows this test wrote, in free space the purge left
    // (see README, "Patient data"); a dump holds only what the rows hold now.
    if db.is_postgres() {
        assert_no_patient_data_stored(&db, dir.path(), "after the purger");
    }

    let mut lines = log.lock().unwrap().clone();
    lines.extend(rotated_log.lock().unwrap().iter().cloned());
    lines.extend(purger_log.lock().unwrap().iter().cloned());
    lines.extend(said.lines().map(str::to_owned));
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

/// Greps the database as stored: SQLite's files (the WAL and shared memory included), or a
/// PostgreSQL dump of the data.
fn assert_no_patient_data_stored(db: &TestDatabase, dir: &std::path::Path, when: &str) {
    let mut stored: Vec<(String, Vec<u8>)> = Vec::new();
    if db.is_postgres() {
        let out = std::process::Command::new("pg_dump")
            .args(["--data-only", &db.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("VC-PHI-1"),
            "the dump holds the event's skeleton"
        );
        stored.push(("pg_dump".into(), out.stdout));
    } else {
        for entry in std::fs::read_dir(dir.join("data")).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("gateway.db") {
                stored.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        assert!(
            stored
                .iter()
                .any(|(_, b)| b.windows(8).any(|w| w == b"VC-PHI-1")),
            "the files hold the event's skeleton"
        );
    }
    for (name, bytes) in &stored {
        for value in PATIENT {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{when}: {name} holds `{value}`"
            );
        }
    }
}

/// A copy of `source` with its payload in the plain columns, as events were stored before
/// payloads were sealed: the patient's name, date of birth in the normalized data and body.
async fn insert_plain(db: &sea_orm::DatabaseConnection, source: &str, id: &str, suffix: &str) {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let backend = db.get_database_backend();
    let normalized = json!({"specversion": "1.0", "id": id, "data": {"patient": {
        "first_name": PATIENT[0], "last_name": PATIENT[1], "date_of_birth": PATIENT[2]}}})
    .to_string();
    let body =
        json!({"patient_first_name": PATIENT[0], "patient_last_name": PATIENT[1]}).to_string();
    let (json, marks) = match backend {
        DatabaseBackend::Postgres => ("::json", ["$1", "$2", "$3", "$4", "$5"]),
        _ => ("", ["?1", "?2", "?3", "?4", "?5"]),
    };
    let [m_id, m_suffix, m_normalized, m_body, m_source] = marks;
    let sql = format!(
        "INSERT INTO events (id, tenant_id, provider, provider_event_id, event_type, subject, \
         status, order_key, stale, occurred_at, received_at, normalized, raw_body, raw_headers, \
         verification) SELECT {m_id}, tenant_id, provider, provider_event_id || {m_suffix}, \
         event_type, subject, status, order_key, stale, occurred_at, received_at, \
         {m_normalized}{json}, {m_body}, raw_headers, verification FROM events WHERE id = {m_source}"
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [
            id.into(),
            suffix.into(),
            normalized.into(),
            body.into(),
            source.into(),
        ],
    ))
    .await
    .unwrap();
}
