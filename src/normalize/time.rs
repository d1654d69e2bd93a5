//! Provider timestamps: RFC 3339, or a bare `YYYY-MM-DDTHH:MM:SS` that the providers document as UTC.

use chrono::{DateTime, NaiveDateTime, Utc};

pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// The same instant as normalized text, or the input unchanged when it does not parse.
pub fn normalize(text: &str) -> String {
    parse_utc(text).map_or_else(|| text.to_owned(), super::rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_provider_times_are_utc() {
        assert_eq!(normalize("2022-01-01T00:00:00"), "2022-01-01T00:00:00.000Z");
        assert_eq!(
            normalize("2025-01-15T09:30:00-05:00"),
            "2025-01-15T14:30:00.000Z"
        );
        assert_eq!(normalize("not a time"), "not a time");
    }
}
