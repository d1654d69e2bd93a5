//! Validated values of the admin API.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// A tenant's URL-safe name, used in its webhook URLs: 3 to 63 of `a-z 0-9 -`, starting and
/// ending with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, sea_orm::DeriveValueType)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(text: &str) -> Result<Self, String> {
        let len_ok = (3..=63).contains(&text.len());
        let chars_ok = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ends_ok = !text.starts_with('-') && !text.ends_with('-');
        if len_ok && chars_ok && ends_ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(
                "must be 3 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The endpoint URL column's size (migration 0008).
pub const MAX_STORED_URL: usize = 8192;

/// An endpoint's callback URL: absolute, https (http only when configuration allows it), no
/// credentials in it (they would show up wherever the URL is shown).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sea_orm::DeriveValueType)]
#[serde(transparent)]
pub struct EndpointUrl(String);

/// The documented URL pattern (`patterns::HTTPS_URL`), checked as written. A constant that a
/// test compiles; were it broken, every URL would be refused rather than the process stopped.
fn plain_url(allow_http: bool, text: &str) -> bool {
    type Pattern = std::sync::LazyLock<Option<regex::Regex>>;
    static HTTPS: Pattern =
        std::sync::LazyLock::new(|| regex::Regex::new(super::patterns::HTTPS_URL).ok());
    static ANY: Pattern =
        std::sync::LazyLock::new(|| regex::Regex::new(super::patterns::HTTP_OR_HTTPS_URL).ok());
    let pattern = if allow_http { &ANY } else { &HTTPS };
    pattern.as_ref().is_some_and(|p| p.is_match(text))
}

impl EndpointUrl {
    pub fn parse(text: &str, allow_http: bool) -> Result<Self, String> {
        if text.len() > 2048 {
            return Err("must be at most 2048 characters".into());
        }
        let url = Url::parse(text).map_err(|e| format!("is not an absolute URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => {
                return Err(
                    "must use https (plain http is not allowed by this gateway's configuration)"
                        .into(),
                )
            }
            other => return Err(format!("scheme `{other}` is not supported; use https")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials; use the endpoint's headers instead".into());
        }
        if url.fragment().is_some() {
            return Err("must not contain a fragment".into());
        }
        let ip_host = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
        if !ip_host && !plain_url(allow_http, text) {
            return Err("must be a plain URL: a host name of letters, digits, `-` and `.`, a port from 1 to 65535, and a path and query of printable ASCII without `\\` (percent-encode anything else)".into());
        }
        // Stored as the parser spells it, which may be longer than what was sent (a `/` added,
        // characters percent-encoded): the column holds 8192 (migration 0008), more than any
        // spelling of 2048 characters can grow to.
        let spelled = url.to_string();
        if spelled.len() > MAX_STORED_URL {
            return Err("is too long once normalized".into());
        }
        Ok(Self(spelled))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod endpoint_url_tests {
    use super::EndpointUrl;

    #[test]
    fn a_url_of_2048_characters_is_taken_whatever_its_normalized_spelling() {
        // Found by schemathesis on PostgreSQL: 2048 characters, then a `/` added by the parser,
        // overflowed the column.
        let mut host = "a".repeat(63);
        while host.len() + 64 <= 2048 - 8 {
            host.push('.');
            host.push_str(&"a".repeat(63));
        }
        host.push('.');
        host.push_str(&"a".repeat(2048 - 8 - host.len()));
        let text = format!("https://{host}");
        assert_eq!(text.len(), 2048);
        assert_eq!(
            EndpointUrl::parse(&text, false).unwrap().as_str().len(),
            2049
        );
        // The parser percent-encodes `"`, `{`, `|`...: three characters for one.
        let worst = format!("https://a.example/{}", "\"".repeat(2048 - 18));
        assert_eq!(worst.len(), 2048);
        let stored = EndpointUrl::parse(&worst, false).unwrap();
        assert!(stored.as_str().len() > 6000 && stored.as_str().len() <= super::MAX_STORED_URL);
        assert!(EndpointUrl::parse(&format!("{text}x"), false).is_err());
        // Other characters arrive percent-encoded by the caller, so nothing is encoded twice.
        assert!(EndpointUrl::parse("https://a.example/caf\u{e9}", false).is_err());
    }
}

/// A Standard Webhooks / Svix signing secret: `whsec_` followed by base64 of 24 to 64 bytes.
#[derive(Clone)]
pub struct SigningSecret(SecretString);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret({})", self.hint())
    }
}

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(b64) = text.strip_prefix(Self::PREFIX) else {
            return Err("must start with whsec_".into());
        };
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| "the part after whsec_ is not valid base64".to_string())?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(format!(
                "must hold 24 to 64 bytes after whsec_, got {}",
                bytes.len()
            ));
        }
        Ok(Self(SecretString::from(text.to_owned())))
    }

    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(SecretString::from(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(bytes)
        )))
    }

    /// The HMAC key: the decoded bytes after `whsec_`.
    pub fn key_bytes(&self) -> Vec<u8> {
        let text = self.0.expose_secret();
        STANDARD
            .decode(&text[Self::PREFIX.len()..])
            .unwrap_or_default()
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hint(&self) -> String {
        mask(self.0.expose_secret())
    }
}

/// What a stored secret looks like in answers after creation: its kind and last four characters.
pub fn mask(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = if secret.starts_with(SigningSecret::PREFIX) {
        SigningSecret::PREFIX
    } else {
        ""
    };
    if secret.chars().count() <= 8 {
        format!("{prefix}****")
    } else {
        format!("{prefix}****{tail}")
    }
}

/// A source-address allowlist entry in CIDR notation (a bare address means a single host).
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert!(Slug::parse("acme-health-2").is_ok());
        for bad in ["ab", "Acme", "acme_health", "-acme", "acme-", "a/b", "tn_x"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_urls_require_https_unless_allowed() {
        assert!(EndpointUrl::parse("https://example.com/hook", false).is_ok());
        assert!(EndpointUrl::parse("http://example.com/hook", false).is_err());
        assert!(EndpointUrl::parse("http://127.0.0.1:9/hook", true).is_ok());
        assert!(EndpointUrl::parse("https://user:pw@example.com/", false).is_err());
        assert!(EndpointUrl::parse("ftp://example.com/", true).is_err());
        assert!(EndpointUrl::parse("/relative", true).is_err());
    }

    #[test]
    fn signing_secrets_follow_standard_webhooks() {
        let s = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(s.key_bytes().len(), 24);
        assert!(SigningSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(SigningSecret::parse("whsec_!!!").is_err());
        let g = SigningSecret::generate();
        assert_eq!(g.key_bytes().len(), 32);
        assert!(g.hint().starts_with("whsec_****"));
        assert!(!format!("{g:?}").contains(&g.expose()[10..]));
    }

    #[test]
    fn cidrs_accept_ranges_and_single_addresses() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_cidr("203.0.113.7").unwrap().to_string(),
            "203.0.113.7/32"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }
}

/// A duration a client sends (`24h`, `30d`), read by humantime and held to `min..=max`, so that
/// no client number reaches date arithmetic unbounded.
pub fn bounded_duration(
    text: &str,
    min: std::time::Duration,
    max: std::time::Duration,
) -> Result<std::time::Duration, String> {
    let spelled = |d: std::time::Duration| humantime::format_duration(d).to_string();
    match humantime::parse_duration(text.trim()) {
        Ok(d) if (min..=max).contains(&d) => Ok(d),
        _ => Err(format!(
            "must be a duration from {} to {}, like 24h, 30m or 7d",
            spelled(min),
            spelled(max)
        )),
    }
}

#[cfg(test)]
mod duration_tests {
    use super::bounded_duration;
    use std::time::Duration;

    #[test]
    fn client_durations_are_bounded_and_never_overflow() {
        let (min, max) = (Duration::ZERO, Duration::from_secs(30 * 86_400));
        assert_eq!(
            bounded_duration("24h", min, max),
            Ok(Duration::from_secs(86_400))
        );
        assert_eq!(bounded_duration("0s", min, max), Ok(Duration::ZERO));
        for bad in [
            "31d",
            "100000y",
            "1000000y",
            "5000000000y",
            "-1s",
            "soon",
            "",
        ] {
            assert!(bounded_duration(bad, min, max).is_err(), "{bad}");
        }
    }
}
