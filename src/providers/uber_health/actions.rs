//! Uber Health's trips API, as a tenant asks for it: read a trip, cancel it. Both name the trip
//! in the route; nothing else is sent.

use crate::error::ApiError;
use crate::providers::action::{Call, Request};

pub const TRIP: Option<(&str, &str)> = Some(("trip", "Uber Health trip (request) id"));

fn on_trip(r: &Request, method: reqwest::Method) -> Result<Call, ApiError> {
    let id = r.subject_segment("trip must be an Uber Health trip id")?;
    Ok(Call {
        method,
        path: format!("v1/health/trips/{id}"),
        body: None,
        subjects: vec![Some(id)],
    })
}

pub fn plan_get(r: &Request) -> Result<Call, ApiError> {
    on_trip(r, reqwest::Method::GET)
}

pub fn plan_cancel(r: &Request) -> Result<Call, ApiError> {
    on_trip(r, reqwest::Method::DELETE)
}
