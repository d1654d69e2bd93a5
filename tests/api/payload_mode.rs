//! Minimum necessary per endpoint: an endpoint in the `minimal` payload mode receives ids,
//! type, status, times and links with a `dataref` to the full event, no patient or address
//! field; the body is signed as every other (an independent Standard Webhooks library verifies
//! it) and matches the JSON Schema. Reading the full event through `dataref` with a
//! tenant-scoped token is an audited access, and the disclosures name each attempt's mode.

use serde_json::{json, Value};

use crate::delivery::{setup_with, verify};
use crate::normalization::{assert_valid, schema};
use crate::receiver::Receiver;

const PRIVATE: [&str; 6] = [
    "Margaret",
    "Hollis",
    "1941-07-22",
    "Elm St",
    "Carpenter",
    "2175550100",
];

#[tokio::test]
async fn a_minimal_endpoint_gets_no_patient_data_and_reads_the_rest_through_an_audited_api_call() {
    let s = setup_with(|_| {}).await;
    let minimal_rx = Receiver::start().await;
    let full_rx = Receiver::start().await;
    let minimal = s
        .endpoint(&minimal_rx.url, json!({"payload_mode": "minimal"}))
        .await;
    assert_eq!(minimal["payload_mode"], "minimal");
    let full = s.endpoint(&full_rx.url, json!({})).await;
    assert_eq!(full["payload_mode"], "full");
    let event = s.event(1, "VC-MIN-1").await;
    assert_eq!(s.drain().await, 2);

    let full_body = String::from_utf8(full_rx.received()[0].body.clone()).unwrap();
    for private in PRIVATE {
        assert!(
            full_body.contains(private),
            "the full mode is unchanged: {private}"
        );
    }
    let got = &minimal_rx.received()[0];
    let text = String::from_utf8(got.body.clone()).unwrap();
    for private in PRIVATE {
        assert!(!text.contains(private), "`{private}` in {text}");
    }
    assert!(verify(minimal["signing_secret"].as_str().unwrap(), got));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_valid(&schema(), &body);
    assert_eq!(body["id"], event);
    assert_eq!(body["subject"], "VC-MIN-1");
    assert_eq!(body["data"]["status"], "scheduled");
    assert_eq!(body["data"].get("patient"), None);
    let tenant = minimal["tenant_id"].as_str().unwrap();
    let dataref = body["dataref"].as_str().unwrap();
    assert_eq!(
        dataref,
        format!("https://gateway.test/api/v1/tenants/{tenant}/events/{event}")
    );

    // The receiver reads the rest with its tenant-scoped token: an access on record.
    let token = s.app.tenant_token(tenant).await;
    let path = dataref.trim_start_matches("https://gateway.test");
    let res = s.app.get_as(path, &token).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("Margaret"));
    let log: Value = s
        .app
        .get_as(
            &format!("/api/v1/access-log?tenant_id={tenant}&subject=VC-MIN-1"),
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["role"], "tenant");
    assert_eq!(entries[0]["event_id"], event);

    let disclosures: Value = s
        .app
        .get_as(
            "/api/v1/tenants/acme/subjects/VC-MIN-1/disclosures",
            &s.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    let mut modes: Vec<(String, String)> = disclosures["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["endpoint_id"].as_str().unwrap().to_owned(),
                d["payload_mode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    modes.sort();
    let mut expected = vec![
        (
            minimal["id"].as_str().unwrap().to_owned(),
            "minimal".to_owned(),
        ),
        (full["id"].as_str().unwrap().to_owned(), "full".to_owned()),
    ];
    expected.sort();
    assert_eq!(modes, expected);
}

#[tokio::test]
async fn an_endpoints_payload_mode_changes_and_an_unknown_one_is_refused() {
    let s = setup_with(|_| {}).await;
    let rx = Receiver::start().await;
    let ep = s.endpoint(&rx.url, json!({})).await;
    let path = format!(
        "/api/v1/tenants/acme/endpoints/{}",
        ep["id"].as_str().unwrap()
    );
    let res = s
        .app
        .patch_as(&path, &s.admin, json!({"payload_mode": "minimal"}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["payload_mode"],
        "minimal"
    );
    s.event(1, "VC-MIN-2").await;
    assert_eq!(s.drain().await, 1);
    assert!(!String::from_utf8_lossy(&rx.received()[0].body).contains("Margaret"));
    let res = s
        .app
        .patch_as(&path, &s.admin, json!({"payload_mode": "everything"}))
        .await;
    assert_eq!(res.status().as_u16(), 422);
}
