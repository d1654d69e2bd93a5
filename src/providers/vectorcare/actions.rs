//! VectorCare's Open API v2.0 calls, as a tenant asks for them: the inputs, and the local checks
//! that run before anything is sent (a request VectorCare would refuse never leaves).

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::domain::patterns;
use crate::error::{ApiError, FieldError};
use crate::providers::action::{Call, Request};

/// VectorCare's limit for notes and reasons.
pub const MAX_TEXT: usize = 450;
/// VectorCare's limit for one location update.
pub const MAX_POINTS: usize = 200;
/// State and location timestamps may be this old at most.
pub const MAX_AGE: Duration = Duration::days(7);
/// Clocks differ a little: a timestamp this far ahead of ours still counts as "now".
pub const CLOCK_SKEW: Duration = Duration::seconds(60);

/// A state VectorCare knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[schema(as = VectorCareStateName)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    EnRoute,
    Arrived,
    OnBoard,
    ArrivedAtDestination,
    Completed,
    Canceled,
    DryRun,
}

/// Accept or decline a broadcast.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseNotes {
    /// Optional notes for the requester, at most 450 characters.
    #[schema(max_length = 450)]
    pub response_notes: Option<String>,
}

/// Report progress on an assigned request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateUpdate {
    /// `en_route`, `arrived`, `on_board`, `arrived_at_destination`, `completed`, `canceled` or
    /// `dry_run`.
    #[schema(example = "en_route")]
    pub name: StateName,
    /// When it happened: RFC 3339 in UTC (`Z`), not in the future, at most 7 days ago.
    #[schema(example = "2025-01-15T14:30:00Z", format = DateTime, pattern = "(Z|[+-]00:00)$")]
    pub timestamp: String,
}

/// One position of the vehicle.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationPoint {
    /// Latitude, -90 to 90.
    #[schema(value_type = f64, required = true, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Longitude, -180 to 180.
    #[schema(value_type = f64, required = true, minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
    /// Altitude in meters.
    #[schema(value_type = f64, required = true)]
    pub alt: Option<f64>,
    /// Speed, optional.
    pub speed: Option<f64>,
    /// Unix seconds (UTC), not in the future, at most 7 days ago.
    #[schema(value_type = i64, required = true)]
    #[serde(default, deserialize_with = "crate::domain::numbers::optional_i64")]
    pub timestamp: Option<i64>,
}

/// Positions of the vehicle serving a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationUpdate {
    /// 1 to 200 points.
    #[schema(min_items = 1, max_items = 200)]
    pub locations: Vec<LocationPoint>,
}

/// Propose a pickup time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeTime {
    /// RFC 3339 in UTC (`Z`).
    #[schema(example = "2025-01-16T09:00:00Z", format = DateTime, pattern = "(Z|[+-]00:00)$")]
    pub proposed_agreed_dt: String,
}

/// Ask to change the agreed time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// The new time, RFC 3339 in UTC (`Z`).
    #[schema(example = "2025-01-16T10:30:00Z", format = DateTime, pattern = "(Z|[+-]00:00)$")]
    pub agreed_dt: String,
    /// Why, at most 450 characters, not blank.
    #[schema(example = "Traffic", schema_with = reason)]
    pub change_reason: String,
}

/// A reason: at most 450 characters, not blank.
fn reason() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .max_length(Some(MAX_TEXT))
        .pattern(Some(patterns::NOT_BLANK))
        .build()
}

/// One VectorCare Open API call: its method and path below `requests/{id}/`, and the body sent
/// once the input passed the local checks.
pub trait VectorCareCall: DeserializeOwned {
    const METHOD: reqwest::Method;
    const PATH: &'static str;
    fn provider_body(&self, now: DateTime<Utc>) -> Result<Value, ApiError>;
}

/// Plans a call on the request named in the route: the body is checked first, then the id.
pub fn plan<C: VectorCareCall>(r: &Request) -> Result<Call, ApiError> {
    let body = r.body::<C>()?.provider_body(r.now)?;
    let id = r.subject_segment("request must be a VectorCare service_request_id")?;
    Ok(Call {
        method: C::METHOD,
        path: format!("requests/{id}/{}", C::PATH),
        body: Some(body),
        subjects: vec![Some(id)],
    })
}

/// Accepting and declining take the same body.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Accept(pub ResponseNotes);
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Decline(pub ResponseNotes);

impl VectorCareCall for Accept {
    const METHOD: reqwest::Method = reqwest::Method::PUT;
    const PATH: &'static str = "accept/";
    fn provider_body(&self, _: DateTime<Utc>) -> Result<Value, ApiError> {
        self.0.notes_body()
    }
}

impl VectorCareCall for Decline {
    const METHOD: reqwest::Method = reqwest::Method::PUT;
    const PATH: &'static str = "decline/";
    fn provider_body(&self, _: DateTime<Utc>) -> Result<Value, ApiError> {
        self.0.notes_body()
    }
}

fn invalid(errors: Vec<FieldError>) -> Result<Value, ApiError> {
    Err(ApiError::Validation(errors))
}

fn check_text(field: &str, text: &str, required: bool, errors: &mut Vec<FieldError>) {
    let n = text.chars().count();
    if required && text.trim().is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if n > MAX_TEXT {
        errors.push(FieldError::new(
            field,
            format!("is {n} characters long; VectorCare accepts at most {MAX_TEXT}"),
        ));
    }
}

/// An RFC 3339 time that must be in UTC; answered in VectorCare's spelling (`…Z`, seconds).
fn utc(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) if t.offset().local_minus_utc() == 0 => Some(t.with_timezone(&Utc)),
        Ok(_) => {
            errors.push(FieldError::new(
                field,
                "must be in UTC (end with `Z` or `+00:00`)",
            ));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 time in UTC, e.g. 2025-01-15T14:30:00Z",
            ));
            None
        }
    }
}

fn recent(field: &str, t: DateTime<Utc>, now: DateTime<Utc>, errors: &mut Vec<FieldError>) {
    if t > now + CLOCK_SKEW {
        errors.push(FieldError::new(field, "is in the future"));
    } else if t < now - MAX_AGE {
        errors.push(FieldError::new(field, "is more than 7 days ago"));
    }
}

fn spelled(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl ResponseNotes {
    pub fn notes_body(&self) -> Result<Value, ApiError> {
        let mut errors = Vec::new();
        match &self.response_notes {
            Some(n) => {
                check_text("response_notes", n, false, &mut errors);
                if !errors.is_empty() {
                    return invalid(errors);
                }
                Ok(json!({"response_notes": n}))
            }
            None => Ok(json!({})),
        }
    }
}

impl VectorCareCall for StateUpdate {
    const METHOD: reqwest::Method = reqwest::Method::POST;
    const PATH: &'static str = "state/";
    fn provider_body(&self, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let mut errors = Vec::new();
        let t = utc("timestamp", &self.timestamp, &mut errors);
        if let Some(t) = t {
            recent("timestamp", t, now, &mut errors);
        }
        match t {
            Some(t) if errors.is_empty() => Ok(json!({"name": self.name, "timestamp": spelled(t)})),
            _ => invalid(errors),
        }
    }
}

impl VectorCareCall for LocationUpdate {
    const METHOD: reqwest::Method = reqwest::Method::POST;
    const PATH: &'static str = "locations/";
    fn provider_body(&self, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let mut errors = Vec::new();
        if self.locations.is_empty() {
            errors.push(FieldError::new("locations", "needs at least one point"));
        } else if self.locations.len() > MAX_POINTS {
            errors.push(FieldError::new(
                "locations",
                format!(
                    "has {} points; VectorCare accepts at most {MAX_POINTS} per update",
                    self.locations.len()
                ),
            ));
        }
        let mut points = Vec::with_capacity(self.locations.len());
        for (i, p) in self.locations.iter().enumerate().take(MAX_POINTS) {
            let at = |f: &str| format!("locations[{i}].{f}");
            let mut present = true;
            for (name, v) in [("lat", p.lat), ("lng", p.lng), ("alt", p.alt)] {
                match v {
                    None => {
                        errors.push(FieldError::new(at(name), "is required"));
                        present = false;
                    }
                    Some(x) if !x.is_finite() => {
                        errors.push(FieldError::new(at(name), "must be a number"));
                        present = false;
                    }
                    _ => {}
                }
            }
            if p.lat.is_some_and(|x| !(-90.0..=90.0).contains(&x)) {
                errors.push(FieldError::new(at("lat"), "must be between -90 and 90"));
            }
            if p.lng.is_some_and(|x| !(-180.0..=180.0).contains(&x)) {
                errors.push(FieldError::new(at("lng"), "must be between -180 and 180"));
            }
            match p.timestamp {
                None => {
                    errors.push(FieldError::new(at("timestamp"), "is required"));
                    present = false;
                }
                Some(s) => match DateTime::<Utc>::from_timestamp(s, 0) {
                    Some(t) => recent(&at("timestamp"), t, now, &mut errors),
                    None => errors.push(FieldError::new(at("timestamp"), "is not a valid time")),
                },
            }
            if present {
                let mut point = json!({
                    "lat": p.lat, "lng": p.lng, "alt": p.alt, "timestamp": p.timestamp,
                });
                if let Some(speed) = p.speed {
                    point["speed"] = json!(speed);
                }
                points.push(point);
            }
        }
        if !errors.is_empty() {
            return invalid(errors);
        }
        Ok(Value::Array(points))
    }
}

impl VectorCareCall for ProposeTime {
    const METHOD: reqwest::Method = reqwest::Method::PUT;
    const PATH: &'static str = "best-time/";
    fn provider_body(&self, _: DateTime<Utc>) -> Result<Value, ApiError> {
        let mut errors = Vec::new();
        match utc("proposed_agreed_dt", &self.proposed_agreed_dt, &mut errors) {
            Some(t) => Ok(json!({"proposed_agreed_dt": spelled(t)})),
            None => invalid(errors),
        }
    }
}

impl VectorCareCall for ChangeRequest {
    const METHOD: reqwest::Method = reqwest::Method::POST;
    const PATH: &'static str = "change-request/";
    fn provider_body(&self, _: DateTime<Utc>) -> Result<Value, ApiError> {
        let mut errors = Vec::new();
        let t = utc("agreed_dt", &self.agreed_dt, &mut errors);
        check_text("change_reason", &self.change_reason, true, &mut errors);
        match t {
            Some(t) if errors.is_empty() => Ok(json!({
                "agreed_dt": spelled(t),
                "change_reason": self.change_reason,
            })),
            _ => invalid(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(r: Result<Value, ApiError>) -> Vec<String> {
        match r {
            Err(ApiError::Validation(e)) => e.into_iter().map(|f| f.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn state_updates_need_a_known_name_and_a_recent_utc_time() {
        let now = Utc::now();
        let ok = StateUpdate {
            name: StateName::EnRoute,
            timestamp: spelled(now - Duration::minutes(5)),
        };
        assert_eq!(ok.provider_body(now).unwrap()["name"], "en_route");
        let bad = StateUpdate {
            name: StateName::Arrived,
            timestamp: "2025-01-15T14:30:00+02:00".into(),
        };
        assert_eq!(codes(bad.provider_body(now)), vec!["timestamp"]);
        let future = StateUpdate {
            name: StateName::Arrived,
            timestamp: spelled(now + Duration::minutes(5)),
        };
        assert_eq!(codes(future.provider_body(now)), vec!["timestamp"]);
        let old = StateUpdate {
            name: StateName::Arrived,
            timestamp: spelled(now - Duration::days(8)),
        };
        assert_eq!(codes(old.provider_body(now)), vec!["timestamp"]);
    }

    #[test]
    fn notes_count_characters_not_bytes() {
        let ok = ResponseNotes {
            response_notes: Some("é".repeat(450)),
        };
        assert!(ok.notes_body().is_ok());
        let long = ResponseNotes {
            response_notes: Some("x".repeat(451)),
        };
        assert_eq!(codes(long.notes_body()), vec!["response_notes"]);
    }
}
