//! FHIR mapping of every provider example (issue 21, in progress): each golden CloudEvent of
//! `tests/fixtures/golden/` as a full-resource R4 notification bundle in `tests/fixtures/fhir/`.
//! `UPDATE_GOLDEN=1 cargo test fhir` rewrites them after a deliberate change.

use gateway::fhir::bundle::{notification, Content, Event, Kind, Release, Subscription};
use gateway::fhir::resources::of_event;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

#[test]
fn every_provider_example_maps_to_its_golden_fhir_notification() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut names: Vec<String> = std::fs::read_dir(format!("{FIXTURES}/golden"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    let sub = Subscription {
        id: "ep_golden",
        topic: "https://gateway.test/fhir/SubscriptionTopic/normalized-events",
        base: "https://gateway.test/fhir/tn_golden",
        status: "active",
    };
    let mut kinds = std::collections::BTreeSet::new();
    for name in names {
        let event: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{FIXTURES}/golden/{name}")).unwrap(),
        )
        .unwrap();
        let resources = of_event(&event);
        kinds.insert(resources[0].resource_type);
        let events = [Event {
            number: 1,
            timestamp: event["time"].as_str().unwrap(),
            resources: &resources,
        }];
        let bundle = notification(
            Release::R4,
            Content::FullResource,
            &sub,
            Kind::EventNotification,
            1,
            &events,
            "2026-02-15T12:00:01Z",
        );
        let path = format!("{FIXTURES}/fhir/{name}");
        let text = serde_json::to_string_pretty(&bundle).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(format!("{FIXTURES}/fhir")).unwrap();
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{path} is missing: run UPDATE_GOLDEN=1 cargo test fhir"));
        assert_eq!(
            serde_json::from_str::<Value>(&golden).unwrap(),
            bundle,
            "{name} differs from its golden FHIR notification"
        );
    }
    if !update {
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["Appointment", "Communication", "Task"],
            "every kind's focus resource is covered"
        );
    }
}
