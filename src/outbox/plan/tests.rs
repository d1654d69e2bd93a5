use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;
use tokio::sync::Notify;

use super::*;
use crate::delivery::Capacity;
use crate::normalize::{Kind, NormalizedData, Status};
use crate::providers::vectorcare;

fn record(subject: &str, order_key: &str, event_type: &'static str) -> Record {
    let tenant = TenantId::parse("tn_plan").unwrap();
    Record {
        id: EventId::generate(),
        tenant_id: tenant,
        provider: vectorcare::PROVIDER,
        normalized: Normalized {
            provider_event_id: format!("{subject}-{order_key}"),
            event_type,
            subject: subject.to_owned(),
            occurred_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            staleness_key: Some(subject.to_owned()),
            order_key: order_key.to_owned(),
            data: NormalizedData::bare(Kind::TransportRequest, Status::Pending),
        },
        cloud_event: r#"{"specversion":"1.0","data":{"provider_data":null}}"#.into(),
        raw_body: "{}".into(),
        raw_headers: "{}".into(),
        verification: "{}".into(),
        received_at: Utc::now(),
        sealed: Sealed {
            key_id: DataKeyId::parse(&format!(
                "dk_{}",
                subject.replace(|c: char| !c.is_ascii_alphanumeric(), "x")
            ))
            .unwrap(),
            blob: Vec::new(),
        },
    }
}

fn ids(set: &HashSet<String>, records: &[&Record]) -> Vec<usize> {
    let mut out: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| set.contains(r.id.as_str()))
        .map(|(i, _)| i)
        .collect();
    out.sort();
    out
}

#[test]
fn an_event_older_than_its_subjects_head_is_stale_in_batch_order_as_if_written_one_by_one() {
    let a = [
        record("A", "2", "transport.request.updated"),
        record("A", "1", "transport.request.updated"),
        record("B", "5", "transport.request.updated"),
        record("A", "2", "transport.request.updated"), // the same instant as the head: not stale
        record("A", "3", "transport.request.updated"),
    ];
    let refs: Vec<&Record> = a.iter().collect();
    let mut heads = HashMap::new();
    heads.insert(
        head_key(&a[2]).unwrap(),
        ("6".to_owned(), "evt_old".to_owned()),
    );
    let judged = judge(&refs, &heads, |_| true);
    assert_eq!(
        ids(&judged.stale, &refs),
        vec![1, 2],
        "A@1 after A@2, B@5 after the head B@6"
    );
    let a_head = &judged.moved[&head_key(&a[0]).unwrap()];
    assert_eq!(a_head, &("3".to_owned(), a[4].id.to_string()));
    assert!(
        !judged.moved.contains_key(&head_key(&a[2]).unwrap()),
        "B's head stays"
    );

    // Without the first event (a retry that inserted nothing), A@1 is not stale any more.
    let without_first = judge(&refs, &HashMap::new(), |r| r.id != a[0].id);
    assert_eq!(ids(&without_first.stale, &refs), Vec::<usize>::new());
}

#[test]
fn fan_out_plans_one_delivery_per_matching_endpoint_and_hands_off_what_has_a_slot() {
    let events = [
        record("A", "1", "transport.request.updated"),
        record("A", "0", "transport.request.updated"), // stale
        record("B", "1", "lab.order.created"),
        record("C", "1", "transport.request.updated"), // a retry: not inserted
    ];
    let refs: Vec<&Record> = events.iter().collect();
    let inserted: HashSet<String> = events[..3].iter().map(|r| r.id.to_string()).collect();
    let stale: HashSet<String> = [events[1].id.to_string()].into();
    let target = |types, include_stale, fifo| Target {
        id: EndpointId::generate(),
        include_stale,
        event_types: json!(types),
        fifo,
        held: false,
        pull: false,
    };
    let mut targets = HashMap::new();
    targets.insert(
        events[0].tenant_id.clone(),
        vec![
            target(json!([]), false, false),
            target(json!(["transport.*"]), true, true),
        ],
    );
    // One free slot: the first delivery that may be handed off takes it.
    let (handoff, _rx) = Handoff::new(
        Arc::new(Capacity::new(1, 10)),
        "wrk_plan".into(),
        chrono::Duration::seconds(45),
        true,
        Arc::new(Notify::new()),
    );
    let f = fan_out(&refs, &inserted, &stale, &targets, &handoff);
    let per_event: Vec<Option<(bool, usize)>> = f
        .outcomes
        .iter()
        .map(|o| o.as_ref().map(|o| (o.stale, o.deliveries)))
        .collect();
    assert_eq!(
        per_event,
        vec![Some((false, 2)), Some((true, 1)), Some((false, 1)), None],
        "stale goes only where include_stale; lab goes only where unfiltered; a retry plans nothing"
    );
    assert_eq!(f.rows.len(), 4);
    assert_eq!(f.handed.len(), 1, "one slot, one hand-off");
    assert!(
        f.rows[0].leased_until.is_some(),
        "the first went to the free slot"
    );
    assert!(
        f.rows[1].leased_until.is_none(),
        "a FIFO endpoint's goes through the queue"
    );
    assert!(f.queued);
    let disabled = fan_out(
        &refs,
        &inserted,
        &stale,
        &targets,
        &Handoff::disabled("w".into()),
    );
    assert!(disabled.handed.is_empty() && disabled.rows.iter().all(|r| r.leased_until.is_none()));
}

#[test]
fn endpoint_filters_match_exact_types_and_prefixes() {
    assert!(filter_matches(&json!([]), "lab.order.updated"));
    assert!(filter_matches(&json!(["lab.*"]), "lab.order.updated"));
    assert!(filter_matches(
        &json!(["transport.request.assigned"]),
        "transport.request.assigned"
    ));
    assert!(!filter_matches(
        &json!(["transport.*"]),
        "lab.order.updated"
    ));
    assert!(!filter_matches(
        &json!(["lab.order.created"]),
        "lab.order.updated"
    ));
}

#[test]
fn a_batch_is_refused_when_any_of_its_data_keys_is_not_live() {
    let a = record("reqA", "1", "transport.request.created");
    let b = record("reqB", "1", "transport.request.created");
    let again = record("reqA", "2", "transport.request.updated");
    let batch = [&a, &b, &again];
    let keys = key_ids(&batch);
    assert_eq!(keys.len(), 2, "one per distinct key, sorted: {keys:?}");
    assert!(keys[0] < keys[1]);
    let all: HashSet<DataKeyId> = keys.iter().cloned().collect();
    assert!(check_keys(&keys, &all).is_ok());
    let one: HashSet<DataKeyId> = keys[..1].iter().cloned().collect();
    let err = check_keys(&keys, &one).unwrap_err();
    assert!(is_key_destroyed(&err));
    assert!(!is_key_destroyed(&sea_orm::DbErr::Custom("other".into())));
}

#[test]
fn a_batch_is_numbered_per_endpoint_from_what_it_reserved_in_arrival_order() {
    let events = [
        record("A", "1", "transport.request.updated"),
        record("B", "1", "transport.request.updated"),
        record("C", "1", "lab.order.created"),
    ];
    let refs: Vec<&Record> = events.iter().collect();
    let inserted: HashSet<String> = events.iter().map(|r| r.id.to_string()).collect();
    let (all, transport, pull) = (
        EndpointId::generate(),
        EndpointId::generate(),
        EndpointId::generate(),
    );
    let mut targets = HashMap::new();
    targets.insert(
        events[0].tenant_id.clone(),
        vec![
            Target {
                id: all.clone(),
                include_stale: false,
                event_types: json!([]),
                fifo: false,
                held: false,
                pull: false,
            },
            Target {
                id: transport.clone(),
                include_stale: false,
                event_types: json!(["transport.*"]),
                fifo: false,
                held: false,
                pull: false,
            },
            Target {
                id: pull.clone(),
                include_stale: false,
                event_types: json!([]),
                fifo: false,
                held: true,
                pull: true,
            },
        ],
    );
    let (handoff, _rx) = Handoff::new(
        Arc::new(Capacity::new(100, 10)),
        "wrk_plan".into(),
        chrono::Duration::seconds(45),
        true,
        Arc::new(Notify::new()),
    );
    let mut f = fan_out(&refs, &inserted, &HashSet::new(), &targets, &handoff);
    let mut counts = sequence_counts(&f.rows);
    counts.sort();
    let mut expected = vec![(all.clone(), 3), (transport.clone(), 2), (pull.clone(), 3)];
    expected.sort();
    assert_eq!(
        counts, expected,
        "one count per endpoint, sorted by endpoint"
    );
    // The sequences stood at 10, 0 and 41 before: the reservation moved them by the counts.
    let lasts: HashMap<EndpointId, i64> = [
        (all.clone(), 13),
        (transport.clone(), 2),
        (pull.clone(), 44),
    ]
    .into();
    number(&mut f, &lasts).unwrap();
    let numbers = |ep: &EndpointId| -> Vec<i64> {
        f.rows
            .iter()
            .filter(|d| &d.endpoint_id == ep)
            .map(|d| d.seq)
            .collect()
    };
    assert_eq!(numbers(&all), vec![11, 12, 13]);
    assert_eq!(numbers(&transport), vec![1, 2]);
    assert_eq!(numbers(&pull), vec![42, 43, 44]);
    assert!(
        f.rows
            .iter()
            .filter(|d| d.endpoint_id == pull)
            .all(|d| d.leased_until.is_none()),
        "a pull endpoint's deliveries are never handed to a worker"
    );
    for h in &f.handed {
        let row = f.rows.iter().find(|d| d.id == h.claimed.id).unwrap();
        assert_eq!(
            h.claimed.seq,
            Some(row.seq),
            "a handed-off delivery carries its number"
        );
    }
    assert!(!f.handed.is_empty());
    let missing: HashMap<EndpointId, i64> = [(all, 13)].into();
    assert!(
        number(&mut f, &missing).is_err(),
        "an endpoint without a reservation is an error"
    );
}
