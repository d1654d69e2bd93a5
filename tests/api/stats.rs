//! The dashboard's per-minute statistics.

use serde_json::{json, Value};

use crate::delivery::setup_with;
use crate::helpers::assert_problem;
use crate::receiver::Receiver;

#[tokio::test]
async fn stats_count_this_minutes_webhooks_attempts_and_the_backlog_they_left() {
    // A failed attempt waits an hour for the next: the backlog stays visible.
    let s = setup_with(|c| c.delivery_retry_schedule = "0s,1h".into()).await;
    let rx = Receiver::start().await;
    rx.set_status(500);
    s.endpoint(&rx.url, json!({})).await;
    s.event(1, "VC-STATS1").await;
    s.event(2, "VC-STATS2").await;
    assert_eq!(s.drain().await, 2);

    let stats: Value = s
        .app
        .get_as("/api/v1/stats?minutes=5", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 5);
    // Summed over the window, so a minute that turns mid-test changes nothing.
    let sum = |b: &[Value], k: &str| b.iter().map(|x| x[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum(buckets, "events"), 2, "{stats}");
    assert_eq!(sum(buckets, "failed"), 2);
    assert_eq!(sum(buckets, "delivered"), 0);
    assert_eq!(buckets[4]["backlog"], 2, "both wait for their retry");
    assert_eq!(stats["backlog"], 2);
    // Four minutes ago nothing existed: the backlog walked back is empty.
    assert_eq!(buckets[0]["backlog"], 0);

    rx.set_status(200);
    for d in s.deliveries("").await {
        let id = d["id"].as_str().unwrap();
        s.app
            .post_as(
                &format!("/api/v1/tenants/acme/deliveries/{id}/redeliver"),
                &s.admin,
                json!({}),
            )
            .await;
    }
    assert_eq!(s.drain().await, 2);
    let stats: Value = s
        .app
        .get_as("/api/v1/stats?minutes=5", &s.admin)
        .await
        .json()
        .await
        .unwrap();
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(sum(buckets, "delivered"), 2, "{stats}");
    assert_eq!(buckets[4]["backlog"], 0);

    let bad = s.app.get_as("/api/v1/stats?minutes=0", &s.admin).await;
    assert_problem(bad, 422, "validation_failed").await;
}
