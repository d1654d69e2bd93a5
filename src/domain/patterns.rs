//! The input rules that JSON Schema can state, as the OpenAPI document states them: each pattern
//! here accepts exactly what the matching check in the code accepts, so a generator working from
//! the document neither sends what the server refuses nor misses what it takes. Tests hold each
//! pattern to its check.

/// White space as Rust's `char::is_whitespace` (and so `str::trim`) has it, spelled out as a
/// character class body: ECMA-262's `\s` differs (it holds U+FEFF and lacks U+0085).
macro_rules! white_space {
    () => {
        "\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
    };
}

/// Text with at least one character that is not white space, and no NUL (names, reasons).
pub const NOT_BLANK: &str = concat!("^[^\\u0000]*[^", white_space!(), "\\u0000][^\\u0000]*$");

/// 16 to 1000 characters, neither starting nor ending with white space, no NUL (a raw secret).
pub const RAW_SECRET: &str = concat!(
    "^[^",
    white_space!(),
    "\\u0000][^\\u0000]{14,998}[^",
    white_space!(),
    "\\u0000]$"
);

/// `whsec_` and canonical padded base64 of 24 to 64 bytes (Standard Webhooks): 3k bytes, then
/// 3k+1 (`xx==`, the second character's low bits zero), or 3k+2 (`xxx=`, likewise).
pub const WHSEC: &str = "^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/][AQgw]==)?|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$";

/// An IPv4 network in CIDR notation, without leading zeros (`10.0.0.0/8`).
pub const IPV4_CIDR: &str = "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$";

/// The `format` of an RSA public key in PEM; a generator needs to be taught it (see
/// `.ci/schemathesis_hooks.py`): no pattern can tell a valid key.
pub const RSA_PUBLIC_KEY_PEM_FORMAT: &str = "rsa-public-key-pem";

/// What follows `https://` in a URL the gateway takes: a host name (labels of letters, digits
/// and `-`, the last starting with a letter, so never an IPv4 address or a number), a port,
/// then a path and query of printable ASCII other than `#` (no fragment) and `\\` (which
/// parsers read differently). Anything else is percent-encoded by the caller.
macro_rules! url_after_scheme {
    () => {
        "://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?([/?][!\"$-\\[\\]-~]*)?$"
    };
}

/// An HTTPS URL with a host name, as the default configuration takes it. The server checks the
/// same pattern (`EndpointUrl::parse`), besides an IP address as host, which the document leaves
/// out: most are refused as internal.
pub const HTTPS_URL: &str = concat!("^https", url_after_scheme!());

/// The same with plain `http` too, when `allow_http_endpoints` is on.
pub const HTTP_OR_HTTPS_URL: &str = concat!("^https?", url_after_scheme!());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{parse_cidr, SigningSecret};
    use crate::providers::credentials::KeyKind;
    use base64::{engine::general_purpose::STANDARD, Engine};

    fn matcher(pattern: &str) -> impl Fn(&str) -> bool {
        let v =
            jsonschema::validator_for(&serde_json::json!({"type": "string", "pattern": pattern}))
                .expect("the pattern compiles as ECMA-262");
        move |text: &str| v.is_valid(&serde_json::json!(text))
    }

    #[test]
    fn the_not_blank_pattern_has_rusts_white_space_exactly() {
        let m = matcher(NOT_BLANK);
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let expected = !c.is_whitespace() && c != '\0';
            assert_eq!(m(&c.to_string()), expected, "U+{:04X}", c as u32);
        }
        assert!(m("  a  ") && !m(" \u{85}\u{3000} ") && !m("a\0b"));
    }

    #[test]
    fn a_raw_secret_the_pattern_admits_is_one_the_check_admits_and_the_other_way_round() {
        let m = matcher(RAW_SECRET);
        for n in [0, 1, 15, 16, 17, 999, 1000, 1001] {
            for fill in ['x', 'é', ' ', '\u{85}'] {
                let inner: String = std::iter::repeat_n(fill, n.max(2) - 2).collect();
                let text = if n < 2 {
                    "x".repeat(n)
                } else {
                    format!("a{inner}z")
                };
                assert_eq!(
                    m(&text),
                    KeyKind::RawSecret.parse(&text).is_ok(),
                    "{n} of {fill:?}"
                );
            }
        }
        // Surrounding white space the check trims: the pattern, stricter, refuses it.
        assert!(!m(&format!(" {} ", "x".repeat(16))));
    }

    #[test]
    fn the_whsec_pattern_admits_exactly_the_secrets_the_parser_admits() {
        let m = matcher(WHSEC);
        for n in 0..=70usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let good = format!("whsec_{}", STANDARD.encode(&bytes));
            assert_eq!(m(&good), SigningSecret::parse(&good).is_ok(), "{n} bytes");
            assert_eq!(m(&good), (24..=64).contains(&n), "{n} bytes");
            // The same text with the last data character's unused low bits set: not canonical.
            if let Some(pos) = good.find('=').and_then(|p| p.checked_sub(1)) {
                let mut odd = good.clone().into_bytes();
                odd[pos] = b'/';
                let odd = String::from_utf8(odd).unwrap();
                assert_eq!(m(&odd), SigningSecret::parse(&odd).is_ok(), "{odd}");
            }
            let unpadded = good.trim_end_matches('=');
            assert_eq!(
                m(unpadded),
                SigningSecret::parse(unpadded).is_ok(),
                "{unpadded}"
            );
        }
    }

    #[test]
    fn what_the_ipv4_network_pattern_admits_parses_as_a_network() {
        let m = matcher(IPV4_CIDR);
        for text in [
            "10.0.0.0/8",
            "192.168.1.7/32",
            "0.0.0.0/0",
            "255.255.255.255/32",
        ] {
            assert!(m(text) && parse_cidr(text).is_ok(), "{text}");
        }
        for text in [
            "10.0.0.0/33",
            "256.0.0.0/8",
            "01.0.0.0/8",
            "10.0.0/8",
            "10.0.0.0",
        ] {
            assert!(!m(text), "{text}");
        }
    }

    #[test]
    fn a_url_with_a_host_name_is_taken_exactly_when_the_documented_pattern_matches_it() {
        let m = matcher(HTTPS_URL);
        for text in [
            "https://hooks.example.com/in?x=1&y=%20z",
            "https://3com.example:8443/a/b~c!$&'()*+,;=:@",
            "https://a",
            "https://a.com*",
            "https://a.com:",
            "https://a.com:0/",
            "https://a.com:99999/",
            "https://a.com:65536/",
            "https://a.com:65535/",
            "https://a.com:08/",
            "https://a.com/x*",
            "https://a.com/\u{e9}",
            "https://a.com/ x",
            "https://a.com/#top",
            "https://a.com/\\@b.example/",
            "https://a.123/",
            "https://-a.com/",
            "https://a_b.com/",
            "https://u:p@a.com/",
            "http://a.com/",
            "https:/a.com/",
        ] {
            let taken = crate::domain::EndpointUrl::parse(text, false).is_ok();
            assert_eq!(m(text), taken, "{text}");
        }
        let http = matcher(HTTP_OR_HTTPS_URL);
        assert!(
            http("http://a.com/")
                && crate::domain::EndpointUrl::parse("http://a.com/", true).is_ok()
        );
    }
}
