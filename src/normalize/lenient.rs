//! Field types for reading a provider's body straight into a struct, as leniently as reading it
//! through `serde_json::Value` would: a field of an unexpected JSON type reads as absent instead
//! of failing the webhook (a verified event is never refused over a field the gateway only
//! copies). Reading into a struct skips everything else in the body without building it, which
//! made VectorCare's normalization about three times cheaper (README, "Performance").

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string, or `None` for any other JSON value (or a missing field, with `#[serde(default)]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text(pub Option<String>);

/// A number as `f64`, or `None` for any other JSON value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Number(pub Option<f64>);

/// An object read as `T`, or `None` for any other JSON value.
#[derive(Clone, Debug, PartialEq)]
pub struct Object<T>(pub Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Object(None)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Visitor methods that answer `$none` for every JSON value not handled by the visitor itself.
macro_rules! otherwise {
    ($none:expr; $($skip:ident),*) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Ok($none) }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Ok($none) }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> { Ok($none) }
        $(otherwise!(@ $skip, $none);)*
    };
    (@ numbers, $none:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Ok($none) }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Ok($none) }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Ok($none) }
    };
    (@ strings, $none:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Ok($none) }
    };
    (@ maps, $none:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            skip_map(map)?;
            Ok($none)
        }
    };
    (@ seqs, $none:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq)?;
            Ok($none)
        }
    };
}

/// One JSON value as [`Text`], [`Number`] and [`UInt`] read it: one visitor for the three.
enum Scalar {
    Str(String),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(s))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar::Signed(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar, E> {
                Ok(Scalar::Unsigned(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(n))
            }
            otherwise!(Scalar::Other; maps, seqs);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match Scalar::deserialize(d)? {
            Scalar::Str(s) => Some(s),
            _ => None,
        }))
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Number(match Scalar::deserialize(d)? {
            Scalar::Signed(n) => Some(n as f64),
            Scalar::Unsigned(n) => Some(n as f64),
            Scalar::Float(n) => Some(n),
            _ => None,
        }))
    }
}

impl<'de> Deserialize<'de> for UInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(UInt(match Scalar::deserialize(d)? {
            Scalar::Signed(n) => u64::try_from(n).ok(),
            Scalar::Unsigned(n) => Some(n),
            _ => None,
        }))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Object(Some(t)))
            }
            otherwise!(Object(None); numbers, strings, seqs);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A non-negative integer, or `None` for any other JSON value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UInt(pub Option<u64>);

/// A field read as `T` that also remembers whether it was there at all, `null` included.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen<T>(pub bool, pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seen<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|t| Seen(true, t))
    }
}

/// The length and last element of an array (the element read as [`Object`]); both `None` for
/// any other JSON value.
#[derive(Clone, Debug, PartialEq)]
pub struct Last<T> {
    pub len: Option<usize>,
    pub last: Option<Object<T>>,
}

impl<T> Default for Last<T> {
    fn default() -> Self {
        Last {
            len: None,
            last: None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Last<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Last<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Last<T>, A::Error> {
                let (mut len, mut last) = (0, None);
                while let Some(element) = seq.next_element::<Object<T>>()? {
                    len += 1;
                    last = Some(element);
                }
                Ok(Last {
                    len: Some(len),
                    last,
                })
            }
            otherwise!(Last::default(); numbers, strings, maps);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An object read as `T`, `None` for `null` or a missing field, and an error for anything else:
/// for a field whose shape the provider's contract fixes.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectOrNull<T>(pub Option<T>);

impl<T> Default for ObjectOrNull<T> {
    fn default() -> Self {
        ObjectOrNull(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOrNull<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ObjectOrNull<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjectOrNull(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjectOrNull(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| ObjectOrNull(Some(t)))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Whether the text's first value is an object: a struct also reads from a JSON array (as its
/// fields in order), which a provider's body must not be.
pub fn is_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Why a body could not be read, for the `invalid_payload` problem's detail.
pub fn read_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => format!("the body is JSON of another shape ({e})"),
        _ => format!("the body is not JSON ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default)]
    struct Place {
        city: Text,
        lat: Number,
    }

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct Body {
        name: Text,
        place: Object<Place>,
        data: ObjectOrNull<Place>,
    }

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct Listing {
        seq: UInt,
        marker: Seen<Text>,
        items: Last<Place>,
    }

    #[test]
    fn an_array_gives_its_length_and_last_element_and_a_present_null_is_seen() {
        let l: Listing = serde_json::from_str(
            r#"{"seq":7,"marker":null,"items":[{"city":"a"},{"city":"b","lat":2}]}"#,
        )
        .unwrap();
        assert_eq!(l.seq, UInt(Some(7)));
        assert_eq!(l.marker, Seen(true, Text(None)));
        assert_eq!(l.items.len, Some(2));
        assert_eq!(
            l.items.last.unwrap().0.unwrap().city,
            Text(Some("b".into()))
        );
        let l: Listing = serde_json::from_str(r#"{"seq":-1,"items":[{"city":"a"},5]}"#).unwrap();
        assert_eq!(l.seq, UInt(None));
        assert_eq!(l.marker, Seen(false, Text(None)));
        assert_eq!(l.items.len, Some(2));
        assert!(
            l.items.last.unwrap().0.is_none(),
            "5 is there, not an object"
        );
        for other in ["1.5", "{}", "\"x\"", "null"] {
            let l: Listing =
                serde_json::from_str(&format!(r#"{{"seq":{other},"items":{other}}}"#)).unwrap();
            assert_eq!(l.seq, UInt(None), "{other}");
            assert_eq!(l.items, Last::default(), "{other}");
        }
        let l: Listing = serde_json::from_str(r#"{"items":[]}"#).unwrap();
        assert_eq!((l.items.len, l.items.last.is_none()), (Some(0), true));
    }

    fn read(text: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn a_field_of_an_unexpected_type_reads_as_absent_and_the_rest_still_reads() {
        for other in [
            "1",
            "-2",
            "2.5",
            "true",
            "null",
            "[1,{\"a\":[]}]",
            "{\"a\":{\"b\":1}}",
        ] {
            let b = read(&format!(
                r#"{{"name":{other},"place":{{"city":{other},"lat":"x"}},"data":{{"city":"Oslo"}}}}"#
            ))
            .unwrap_or_else(|e| panic!("{other}: {e}"));
            assert_eq!(b.name, Text(None), "{other}");
            let place = b.place.0.expect("an object");
            assert_eq!(place.city, Text(None), "{other}");
            assert_eq!(place.lat, Number(None), "{other}");
            assert_eq!(b.data.0.unwrap().city, Text(Some("Oslo".into())));
        }
    }

    #[test]
    fn strings_numbers_and_objects_read_as_json_value_would_read_them() {
        let b = read(
            r#"{"name":"A \"q\" \u00e9","place":{"city":"x","lat":41},"data":null,"extra":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(b.name, Text(Some("A \"q\" é".into())));
        assert_eq!(b.place.0.unwrap().lat, Number(Some(41.0)));
        assert!(b.data.0.is_none());
        let b = read(r#"{"place":"somewhere"}"#).unwrap();
        assert!(b.place.0.is_none() && b.name.0.is_none() && b.data.0.is_none());
    }

    #[test]
    fn a_field_that_must_be_an_object_or_null_refuses_anything_else() {
        for other in ["1", "\"x\"", "[]", "true"] {
            let e = read(&format!(r#"{{"data":{other}}}"#)).unwrap_err();
            assert!(e.to_string().contains("an object or null"), "{other}: {e}");
        }
        assert!(read("{\"name\":\"x\"} trailing").is_err());
        let shape = read(r#"{"data":1}"#).unwrap_err();
        assert!(read_error(&shape).starts_with("the body is JSON of another shape ("));
        let syntax = read(r#"{"data":"#).unwrap_err();
        assert!(read_error(&syntax).starts_with("the body is not JSON ("));
    }

    #[test]
    fn only_an_object_is_an_object() {
        assert!(is_object(b" \n{\"a\":1}"));
        assert!(!is_object(b"[1,2]"));
        assert!(!is_object(b""));
        assert!(!is_object(b"  \"x\""));
    }
}
