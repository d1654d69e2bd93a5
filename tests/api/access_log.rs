//! The access log: each read of patient data writes who read what, when and from where; lists
//! without patient fields write nothing; admins filter and export it.

use serde_json::Value;

use crate::delivery::setup_with;
use crate::helpers::assert_problem;

async fn entries(s: &crate::delivery::Setup, query: &str) -> Vec<Value> {
    let res = s
        .app
        .get_as(&format!("/api/v1/access-log{query}"), &s.admin)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    res.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn every_read_of_patient_data_is_recorded_with_who_what_and_where() {
    let s = setup_with(|_| {}).await;
    let event = s.event(1, "VC-READ-1").await;
    s.event(2, "VC-OTHER").await;
    let tenant: Value = s
        .app
        .get_as("/api/v1/tenants/acme", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let reader = s.app.tenant_token(tenant_id).await;

    // Lists show no patient fields: no record.
    for path in [
        "/api/v1/tenants/acme/events",
        "/api/v1/tenants/acme/deliveries",
    ] {
        assert_eq!(s.app.get_as(path, &reader).await.status().as_u16(), 200);
    }
    assert!(entries(&s, "").await.is_empty());
    // The minimal view shows no patient or address field, and is not an access to record.
    let minimal = s
        .app
        .get_as(
            &format!("/api/v1/tenants/acme/events/{event}?view=minimal"),
            &reader,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !minimal.contains("Margaret") && !minimal.contains("1941-07-22"),
        "{minimal}"
    );
    assert!(minimal.contains("\"subject\":\"VC-READ-1\""), "{minimal}");
    assert!(entries(&s, "").await.is_empty());

    let res = s
        .app
        .client
        .get(s.app.url(&format!("/api/v1/tenants/acme/events/{event}")))
        .bearer_auth(&reader)
        .header("x-request-id", "req-access-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let timeline = "/api/v1/tenants/acme/subjects/VC-READ-1/timeline";
    assert_eq!(s.app.get_as(timeline, &reader).await.status().as_u16(), 200);
    let disclosures = "/api/v1/tenants/acme/subjects/VC-OTHER/disclosures";
    assert_eq!(
        s.app.get_as(disclosures, &s.admin).await.status().as_u16(),
        200
    );
    // A read that finds nothing shows nothing: no record.
    let res = s
        .app
        .get_as("/api/v1/tenants/acme/events/evt_0000000000000000", &reader)
        .await;
    assert_eq!(res.status().as_u16(), 404);

    let all = entries(&s, "").await;
    assert_eq!(all.len(), 3, "{all:?}");
    let read = all.iter().find(|e| e["what"] == "event").unwrap();
    assert_eq!(read["event_id"], event.as_str());
    assert_eq!(read["subject"], "VC-READ-1");
    assert_eq!(read["tenant_id"], tenant_id);
    assert_eq!(read["role"], "tenant");
    assert_eq!(read["address"], "127.0.0.1");
    assert_eq!(read["request_id"], "req-access-1");
    assert!(read["token_id"].as_str().unwrap().starts_with("tok_"));

    let by_subject = entries(&s, "?subject=VC-READ-1").await;
    let shown: Vec<&str> = by_subject
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["timeline", "event"], "newest first");
    let by_principal = entries(
        &s,
        &format!("?principal={}", read["token_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(by_principal.len(), 2);
    let admin_reads = entries(&s, &format!("?tenant_id={tenant_id}&subject=VC-OTHER")).await;
    assert_eq!(admin_reads[0]["role"], "admin");
    assert!(entries(&s, "?tenant_id=tn_someoneelse").await.is_empty());

    let csv = s
        .app
        .get_as("/api/v1/access-log?format=csv", &s.admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("id,at,token_id,role,tenant_id,subject,event_id,what,address"));
    assert_eq!(csv.lines().count(), 4);
    let ndjson = s
        .app
        .get_as("/api/v1/access-log?format=ndjson&limit=2", &s.admin)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(ndjson.lines().count(), 2);

    // Only admins read the access log.
    let res = s.app.get_as("/api/v1/access-log", &reader).await;
    assert_problem(res, 403, "forbidden").await;
}
