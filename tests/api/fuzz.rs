//! Fuzz targets (proptest): every provider's verify and parse, the signature header parsers, the
//! endpoint URL and SSRF classifier, and the JWT check, fed random and mutated inputs. Each asserts
//! no panic and a property that must hold. `cargo test` runs `FUZZ_CASES` inputs per target
//! (default 2,000); a long run: `FUZZ_CASES=10000000 cargo test --release --test api fuzz`
//! (`FUZZ_PROVIDERS=vital,uber-health` limits the provider targets to those).

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use chrono::Utc;
use gateway::delivery::ssrf::Guard;
use gateway::domain::{EndpointUrl, KeyId, TokenId};
use gateway::providers::{Inbound, KeyMaterial, Provider, Rejection, Verified, VerifyKey};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// The providers to fuzz: all, or those `FUZZ_PROVIDERS` names (comma-separated).
fn providers() -> Vec<Provider> {
    let only = std::env::var("FUZZ_PROVIDERS").unwrap_or_default();
    Provider::all()
        .filter(|p| only.is_empty() || only.split(',').any(|n| n.trim() == p.as_str()))
        .collect()
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `test` over `strategy`; a failing input is shrunk and named.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let started = std::time::Instant::now();
    if let Err(e) = runner().run(&strategy, test) {
        panic!("fuzz target {name}: {e}");
    }
    eprintln!(
        "fuzz target {name}: {} inputs in {:.1?}, no failure",
        cases(),
        started.elapsed()
    );
}

/// Any JSON value a provider might send, shallow.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop::collection::vec(".{0,8}".prop_map(Value::String), 0..3).prop_map(Value::Array),
        Just(serde_json::json!({})),
    ]
}

/// Replaces the `n`-th node (depth first, modulo the node count) of `v` by `with`.
fn replace_nth(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|i| replace_nth(i, n, with)),
        Value::Object(map) => map.values_mut().any(|i| replace_nth(i, n, with)),
        _ => false,
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// A fixture with some of its values replaced (kept valid JSON, so the parser is reached), or a
/// fixture's bytes with some bytes changed, inserted or removed.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    let structural = (
        0..n,
        prop::collection::vec((any::<usize>(), json_leaf()), 0..6),
    )
        .prop_map({
            let seeds = seeds.clone();
            move |(i, edits)| {
                let mut v: Value = serde_json::from_slice(&seeds[i]).unwrap_or(Value::Null);
                for (at, with) in edits {
                    let mut k = at % count(&v);
                    replace_nth(&mut v, &mut k, &with);
                }
                serde_json::to_vec(&v).unwrap_or_default()
            }
        });
    let bytes = (
        0..n,
        prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 0..8),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds[i].clone();
            for (at, byte, op) in edits {
                let at = if b.is_empty() { 0 } else { at % b.len() };
                match op {
                    0 if !b.is_empty() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if !b.is_empty() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            b
        });
    prop_oneof![
        3 => structural,
        2 => bytes,
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn fixtures(provider: Provider) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(format!("{FIXTURES}/{provider}"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    out.sort();
    out
}

fn verified() -> Verified {
    Verified {
        method: "fuzz",
        key_id: KeyId::generate(),
        delivery_id: Some("msg_fuzz".into()),
        timestamp: None,
    }
}

#[test]
fn fuzz_every_providers_parse_never_panics_and_refuses_only_as_invalid_payload() {
    for provider in providers() {
        let headers = HeaderMap::new();
        fuzz(
            &format!("{provider} normalize"),
            mutated(fixtures(provider)),
            |body| {
                let inbound = Inbound {
                    headers: &headers,
                    body: &body,
                    now: Utc::now(),
                };
                match provider.plugin().normalize(&inbound, &verified()) {
                    Ok(n) => {
                        prop_assert!(!n.provider_event_id.is_empty());
                        prop_assert!(!n.subject.is_empty());
                    }
                    Err(r) => prop_assert!(matches!(r, Rejection::InvalidPayload(_)), "{r:?}"),
                }
                Ok(())
            },
        );
    }
}

/// A header value from a few shapes a signature header takes, or anything.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9+/=]{0,400}",
        "v1,[A-Za-z0-9+/=]{0,60}( v1,[A-Za-z0-9+/=]{0,60}){0,3}",
        "[0-9a-fA-F]{0,80}",
        "-?[0-9]{1,20}",
        "[ -~]{0,100}",
    ]
}

#[test]
fn fuzz_every_providers_verify_never_panics_and_never_accepts_a_forgery() {
    for provider in providers() {
        let names: Vec<&str> = provider
            .plugin()
            .kept_headers()
            .iter()
            .copied()
            .chain(["svix-id", "svix-timestamp", "svix-signature"])
            .collect();
        let keys = [
            VerifyKey {
                id: KeyId::generate(),
                material: KeyMaterial::Secret(b"fuzz-secret-key-0123456789abcdef".to_vec()),
            },
            VerifyKey {
                id: KeyId::generate(),
                material: KeyMaterial::RsaPublicPkcs1(rsa_public_der(include_str!(
                    "../fixtures/keys/vectorcare_public.pem"
                ))),
            },
        ];
        let strategy = (
            prop::collection::vec((0..names.len(), header_value()), 0..6),
            mutated(fixtures(provider)),
        );
        fuzz(&format!("{provider} verify"), strategy, |(pairs, body)| {
            let mut headers = HeaderMap::new();
            for (i, value) in pairs {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(HeaderName::from_static(names[i]), v);
                }
            }
            let inbound = Inbound {
                headers: &headers,
                body: &body,
                now: Utc::now(),
            };
            let result = provider.plugin().verify(&inbound, &keys);
            prop_assert!(result.is_err(), "a random signature verified: {headers:?}");
            Ok(())
        });
    }
}

fn rsa_public_der(pem: &str) -> Vec<u8> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn fuzz_the_standard_webhooks_signature_header_parser() {
    let key = b"0123456789abcdef0123456789abcdef";
    let body = br#"{"a":1}"#;
    let good = gateway::signature::sign(key, "msg_1", 1_700_000_000, body);
    fuzz(
        "signature header",
        (header_value(), any::<i64>(), any::<bool>()),
        |(header, ts, with_good)| {
            let header = if with_good {
                format!("{header} {good}")
            } else {
                header
            };
            let ok = gateway::signature::matches(&header, key, "msg_1", ts, body);
            // Only the real signature, for its own timestamp, matches.
            prop_assert_eq!(ok, with_good && ts == 1_700_000_000);
            Ok(())
        },
    );
}

/// URL-like text: schemes, credentials, hosts in every spelling a parser may read as an
/// address, ports, paths with the characters parsers disagree on.
fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("HTTP://"),
        Just("ftp://"),
        Just("http:/"),
        Just("http:\\\\"),
        Just(""),
    ];
    let host = prop_oneof![
        any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!("0x{n:x}")),
        any::<u128>().prop_map(|n| format!("[{}]", std::net::Ipv6Addr::from(n))),
        any::<u32>().prop_map(|n| format!("[::ffff:{}]", std::net::Ipv4Addr::from(n))),
        Just("[fe80::1%25eth0]".to_owned()),
        "[a-z0-9.-]{1,30}",
        "[ -~]{0,20}",
    ];
    let tail = "[ -~]{0,30}";
    (
        scheme,
        prop::option::of("[a-z]{1,5}(:[a-z]{0,5})?@"),
        host,
        prop::option::of(any::<u16>()),
        tail,
    )
        .prop_map(|(s, user, h, port, t)| {
            format!(
                "{s}{}{h}{}{t}",
                user.unwrap_or_default(),
                port.map(|p| format!(":{p}")).unwrap_or_default()
            )
        })
}

#[test]
fn fuzz_the_endpoint_url_and_ssrf_classifier() {
    let guard = Guard {
        enabled: true,
        ..Guard::default()
    };
    fuzz("endpoint url", url_text(), |text| {
        let parsed = EndpointUrl::parse(&text, true);
        let checked = guard.check_url(&text);
        if let (Ok(url), Ok(())) = (&parsed, &checked) {
            // What passed names no refused literal, and reads the same to the connection.
            let u = url::Url::parse(url.as_str()).unwrap();
            if let Some(ip) = gateway::delivery::ssrf::literal(&u) {
                prop_assert!(guard.allows(ip), "{text} passed with {ip}");
            }
            let uri: http::Uri = url.as_str().parse().unwrap();
            prop_assert_eq!(
                uri.host()
                    .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()),
                u.host_str()
                    .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            );
        }
        Ok(())
    });
    fuzz("ip classifier", any::<u32>(), |n| {
        let v4 = std::net::Ipv4Addr::from(n);
        let refused = !guard.allows(v4.into());
        // Every IPv6 form that carries an IPv4 address is judged as that address.
        let [a, b, c, d] = v4.octets();
        let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        for v6 in [
            v4.to_ipv6_mapped(),
            std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            std::net::Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
            std::net::Ipv6Addr::new(0x2001, 0, 0x5db8, 0xd822, 0, 0, !hi, !lo),
        ] {
            prop_assert_eq!(!guard.allows(v6.into()), refused, "{} as {}", v4, v6);
        }
        Ok(())
    });
}

#[test]
fn fuzz_the_jwt_check() {
    let keys = gateway::web::auth::jwt::JwtKeys::new(&gateway::crypto::MasterKey::generate());
    let now = Utc::now();
    let good = keys
        .issue(
            &TokenId::generate(),
            "admin",
            None,
            now,
            now + chrono::Duration::hours(1),
        )
        .unwrap();
    let strategy = prop_oneof![
        "[A-Za-z0-9_.=-]{0,300}",
        prop::collection::vec((any::<usize>(), "[A-Za-z0-9_.=-]"), 1..4).prop_map({
            let good = good.clone();
            move |edits| {
                let mut t: Vec<char> = good.chars().collect();
                for (at, c) in edits {
                    let at = at % t.len();
                    t[at] = c.chars().next().unwrap_or('A');
                }
                t.into_iter().collect::<String>()
            }
        }),
    ];
    fuzz("jwt", strategy, |token| {
        let result = keys.verify(&token);
        // Base64url's last character can carry unused bits: a change there may decode alike.
        if result.is_ok() {
            prop_assert_eq!(token.len(), good.len());
        }
        Ok(())
    });
}
