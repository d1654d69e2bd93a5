//! Whole numbers as JSON Schema's `integer` reads them: `5` and `5.0` alike (a schema-driven
//! client may send either); a fraction, or a value out of the field's range, is refused.

use serde::de::Error;
use serde::{Deserialize, Deserializer};
use serde_json::Number;

fn whole<T: TryFrom<i128>>(n: &Number) -> Option<T> {
    let wide = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i128::from(i),
        (None, Some(u), _) => i128::from(u),
        // `i64::MAX as f64` is 2^63, one past the range.
        (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < i64::MAX as f64 => f as i128,
        _ => return None,
    };
    T::try_from(wide).ok()
}

fn optional<'de, T, D>(d: D, range: &str) -> Result<Option<T>, D::Error>
where
    T: TryFrom<i128>,
    D: Deserializer<'de>,
{
    let Some(n) = Option::<Number>::deserialize(d)? else {
        return Ok(None);
    };
    whole(&n)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a whole number {range}, got {n}")))
}

/// An optional count from 0 to 4,294,967,295 (`serde(deserialize_with)`).
pub fn optional_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    optional(d, &format!("from 0 to {}", u32::MAX))
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a count (`Some(Some(n))`):
/// with `serde(default, deserialize_with)`, an update that tells "leave it" from "clear it".
pub fn present_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    optional_u32(d).map(Some)
}

/// A required signed 64-bit number (`serde(deserialize_with)`).
pub fn required_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    optional_i64(d)?.ok_or_else(|| D::Error::custom("expected a whole number, got null"))
}

/// An optional signed 64-bit number, e.g. Unix seconds (`serde(deserialize_with)`).
pub fn optional_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    optional(d, "that fits in 64 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Counts {
        #[serde(default, deserialize_with = "optional_u32")]
        count: Option<u32>,
        #[serde(default, deserialize_with = "optional_i64")]
        at: Option<i64>,
    }

    fn read(json: &str) -> Result<Counts, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_floats_count_as_integers_and_fractions_or_overflows_do_not() {
        let c = read(r#"{"count": 5.0, "at": -231.0}"#).unwrap();
        assert_eq!((c.count, c.at), (Some(5), Some(-231)));
        let c = read(r#"{"count": null}"#).unwrap();
        assert_eq!((c.count, c.at), (None, None));
        for bad in [
            r#"{"count": 5.5}"#,
            r#"{"count": -1}"#,
            r#"{"count": 4294967296}"#,
            r#"{"at": 9223372036854775808}"#,
            r#"{"at": 1e300}"#,
            r#"{"at": "5"}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert_eq!(
            read(r#"{"at": -9223372036854775808}"#).unwrap().at,
            Some(i64::MIN)
        );
    }
}
