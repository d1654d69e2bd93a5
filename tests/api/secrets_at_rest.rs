//! Secrets never sit in the database in plaintext.

use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, VECTORCARE_PUBLIC_PEM, VITAL_SECRET};

#[tokio::test]
async fn no_secret_is_stored_in_plaintext() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_tenant(&admin, "acme", None).await;
    let client_secret = "vc-client-secret-PLAINTEXT-1";
    let api_key = "sk_us_PLAINTEXT_vital_key_2";
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vectorcare",
            &admin,
            json!({"public_keys": [VECTORCARE_PUBLIC_PEM], "client_id": "cid", "client_secret": client_secret}),
        )
        .await;
    assert!(res.status().is_success());
    let res = app
        .put_as(
            "/api/v1/tenants/acme/providers/vital",
            &admin,
            json!({"signing_secrets": [VITAL_SECRET], "api_key": api_key}),
        )
        .await;
    assert!(res.status().is_success());
    let ep: Value = app
        .create_endpoint(&admin, "acme", "https://a.example.com/")
        .await;
    let endpoint_secret = ep["signing_secret"].as_str().unwrap().to_owned();

    // The base64 bodies, so a re-encoding of the secret would be caught too.
    let needles = [
        client_secret.to_owned(),
        api_key.to_owned(),
        VITAL_SECRET.trim_start_matches("whsec_").to_owned(),
        endpoint_secret.trim_start_matches("whsec_").to_owned(),
    ];

    // Every row of every table that holds secrets, as the database returns it.
    use gateway::store::*;
    let mut dump = String::new();
    for rows in [
        provider_connection::Entity::find()
            .into_json()
            .all(&app.state.db)
            .await
            .unwrap(),
        provider_key::Entity::find()
            .into_json()
            .all(&app.state.db)
            .await
            .unwrap(),
        endpoint_secret::Entity::find()
            .into_json()
            .all(&app.state.db)
            .await
            .unwrap(),
        endpoint::Entity::find()
            .into_json()
            .all(&app.state.db)
            .await
            .unwrap(),
        api_token::Entity::find()
            .into_json()
            .all(&app.state.db)
            .await
            .unwrap(),
        audit_entry::Entity::find()
            .into_json()
            .all(&app.state.db)
            .await
            .unwrap(),
    ] {
        dump.push_str(&serde_json::to_string(&rows).unwrap());
    }
    assert!(dump.contains("v1."), "sealed values are there");
    for needle in &needles {
        assert!(
            !dump.contains(needle.as_str()),
            "plaintext secret found in a table"
        );
    }

    // And on SQLite, the raw files themselves (database and write-ahead log).
    if !app.database.is_postgres() {
        let mut bytes = Vec::new();
        for name in ["gateway.db", "gateway.db-wal"] {
            if let Ok(b) = std::fs::read(app.data_dir.join(name)) {
                bytes.extend(b);
            }
        }
        assert!(bytes.len() > 4096);
        let raw = String::from_utf8_lossy(&bytes);
        for needle in &needles {
            assert!(
                !raw.contains(needle.as_str()),
                "plaintext secret found in the database file"
            );
        }
    }

    // The sealed values open again with the master key.
    let conn = provider_connection::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    let vc = conn
        .iter()
        .find(|c| c.provider.as_str() == "vectorcare")
        .unwrap();
    let opened = app
        .state
        .cipher
        .open(
            vc.secret_ciphertext.as_deref().unwrap(),
            &format!("vectorcare_client_secret:{}", vc.id),
        )
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), client_secret);
}
