//! What an admin enters for a tenant's connection to a provider, declared once per provider
//! ([`CredentialSpec`]) and read by everything else: the admin API validates a connection's body
//! with it, the catalog (`GET /api/v1/providers`) and the admin UI show its fields, OpenAPI
//! documents it, and the ingest path decodes the stored keys by its [`KeyKind`].

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::action::ApiAuth;
use super::KeyMaterial;
use crate::domain::keys::RsaPublicKeyPem;
use crate::domain::{mask, parse_cidr, EndpointUrl, SigningSecret};
use crate::error::FieldError;

pub struct CredentialSpec {
    /// The keys that verify inbound webhooks: at least one is needed to create a connection.
    pub keys: KeySpec,
    /// Everything else, in the order errors are reported.
    pub fields: &'static [Field],
    /// What the connection's one sealed secret is (`vectorcare_client_secret`): it is bound to
    /// this and to its row, so a ciphertext copied elsewhere does not open.
    pub secret_context: &'static str,
    /// Set when a connection is created, unless the body gives its own.
    pub default_token_url: Option<&'static str>,
    pub default_api_base_url: Option<&'static str>,
    /// How the connection authenticates the gateway's calls to the provider's API.
    pub api: ApiAuth,
}

pub struct KeySpec {
    /// The list in a connection's body (`public_keys`).
    pub field: &'static str,
    /// The one key of `POST .../keys` (`public_key_pem`).
    pub add_field: &'static str,
    pub kind: KeyKind,
    pub label: &'static str,
    pub description: &'static str,
}

/// How a provider signs, and so what a verification key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// An RSA public key in PEM, at least 2048 bits (signatures by the provider's private key).
    RsaPublicKey,
    /// A Standard Webhooks secret `whsec_…`: the HMAC key is the base64 after the prefix.
    StandardWebhooksSecret,
    /// A shared secret used as is: the HMAC key is the string's bytes.
    RawSecret,
}

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub kind: FieldKind,
    pub target: Target,
}

pub enum FieldKind {
    /// 1 to 1000 characters, trimmed.
    Text,
    /// 1 to 1000 characters; write-only: sealed at rest, shown only as a masked hint.
    Secret,
    /// HTTPS (HTTP only where the gateway allows it); `base` URLs end with `/`.
    Url { base: bool },
    /// One of a fixed set, each standing for a URL.
    Choice(&'static [(&'static str, &'static str)]),
    /// CIDR ranges or addresses.
    CidrList,
}

/// Which part of the connection a field sets.
#[derive(Clone, Copy)]
pub enum Target {
    ClientId,
    Secret,
    TokenUrl,
    ApiBaseUrl,
    IpAllowlist,
}

/// A key checked and ready to store.
pub struct NewKey {
    pub kind: KeyKind,
    /// The PEM of a public key, or the secret's text (sealed before it is stored).
    pub text: String,
    pub fingerprint: String,
    /// `RSA-2048`, or a masked secret.
    pub hint: String,
}

impl NewKey {
    pub fn is_public(&self) -> bool {
        self.kind == KeyKind::RsaPublicKey
    }
}

impl KeyKind {
    pub fn parse(self, text: &str) -> Result<NewKey, String> {
        match self {
            KeyKind::RsaPublicKey => {
                let k = RsaPublicKeyPem::parse(text)?;
                Ok(NewKey {
                    kind: self,
                    hint: format!("RSA-{}", k.bits),
                    fingerprint: k.fingerprint,
                    text: k.pem,
                })
            }
            KeyKind::StandardWebhooksSecret => {
                let s = SigningSecret::parse(text.trim())?;
                Ok(NewKey {
                    kind: self,
                    fingerprint: hex::encode(Sha256::digest(s.expose().as_bytes())),
                    hint: s.hint(),
                    text: s.expose().to_owned(),
                })
            }
            KeyKind::RawSecret => {
                let text = text.trim();
                if !(16..=1000).contains(&text.chars().count()) {
                    return Err("must be 16 to 1000 characters".into());
                }
                Ok(NewKey {
                    kind: self,
                    fingerprint: hex::encode(Sha256::digest(text.as_bytes())),
                    hint: mask(text),
                    text: text.to_owned(),
                })
            }
        }
    }

    /// The verifying material of a stored secret (public keys are read from their PEM).
    pub fn secret_material(self, text: &str) -> Option<KeyMaterial> {
        match self {
            KeyKind::RsaPublicKey => None,
            KeyKind::StandardWebhooksSecret => SigningSecret::parse(text)
                .ok()
                .map(|s| KeyMaterial::Secret(s.key_bytes())),
            KeyKind::RawSecret => Some(KeyMaterial::Secret(text.as_bytes().to_vec())),
        }
    }
}

/// What a connection's body asks to change; absent fields keep their value.
#[derive(Default)]
pub struct ConnectionChange {
    /// Replaces the whole key set when given.
    pub keys: Option<Vec<NewKey>>,
    pub client_id: Option<String>,
    pub secret: Option<String>,
    pub token_url: Option<String>,
    pub api_base_url: Option<String>,
    pub ip_allowlist: Option<Vec<String>>,
}

impl CredentialSpec {
    /// Reads a connection's body: every field checked, every problem reported with its path.
    /// A `null` field is as if absent.
    pub fn parse(
        &self,
        body: &Value,
        allow_http: bool,
    ) -> Result<ConnectionChange, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(map) = body.as_object() else {
            return Err(vec![FieldError::new("(body)", "must be a JSON object")]);
        };
        for name in map.keys() {
            if name != self.keys.field && !self.fields.iter().any(|f| f.name == name) {
                errors.push(FieldError::new(
                    name.as_str(),
                    "is not a field of this provider's connection",
                ));
            }
        }
        let mut change = ConnectionChange::default();
        if let Some(items) = strings(map, self.keys.field, &mut errors) {
            change.keys = Some(self.parse_keys(self.keys.field, &items, &mut errors));
        }
        for f in self.fields {
            let value = match &f.kind {
                FieldKind::CidrList => {
                    if let Some(items) = strings(map, f.name, &mut errors) {
                        change.ip_allowlist = Some(cidrs(&items, f.name, &mut errors));
                    }
                    continue;
                }
                _ => match string(map, f.name, &mut errors) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let parsed = match &f.kind {
                FieldKind::Text => {
                    check_text(f.name, &value, &mut errors).then(|| value.trim().to_owned())
                }
                FieldKind::Secret => check_text(f.name, &value, &mut errors).then_some(value),
                FieldKind::Url { base } => EndpointUrl::parse(value.trim(), allow_http)
                    .map(|u| {
                        let u = u.as_str().to_owned();
                        if *base && !u.ends_with('/') {
                            format!("{u}/")
                        } else {
                            u
                        }
                    })
                    .map_err(|m| errors.push(FieldError::new(f.name, m)))
                    .ok(),
                FieldKind::Choice(choices) => match choices.iter().find(|(c, _)| *c == value) {
                    Some((_, url)) => Some((*url).to_owned()),
                    None => {
                        let names: Vec<&str> = choices.iter().map(|(c, _)| *c).collect();
                        errors.push(FieldError::new(
                            f.name,
                            format!("must be one of {}", names.join(", ")),
                        ));
                        None
                    }
                },
                FieldKind::CidrList => None,
            };
            let slot = match f.target {
                Target::ClientId => &mut change.client_id,
                Target::Secret => &mut change.secret,
                Target::TokenUrl => &mut change.token_url,
                Target::ApiBaseUrl => &mut change.api_base_url,
                Target::IpAllowlist => continue,
            };
            // A later field of the same target wins (a URL given after a region); a bad value
            // fails the whole body, so it never needs to clear what an earlier one set.
            if parsed.is_some() {
                *slot = parsed;
            }
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }

    /// Each key parsed; one listed twice is refused.
    pub fn parse_keys(
        &self,
        field: &str,
        items: &[String],
        errors: &mut Vec<FieldError>,
    ) -> Vec<NewKey> {
        let mut out = Vec::new();
        // A connection always has a key: without one no webhook of it could be verified.
        if items.is_empty() {
            errors.push(FieldError::new(field, "needs at least one key"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, text) in items.iter().enumerate() {
            match self.keys.kind.parse(text) {
                Ok(k) if seen.insert(k.fingerprint.clone()) => out.push(k),
                Ok(_) => errors.push(FieldError::new(format!("{field}[{i}]"), "is listed twice")),
                Err(m) => errors.push(FieldError::new(format!("{field}[{i}]"), m)),
            }
        }
        out
    }
}

fn check_text(field: &str, text: &str, errors: &mut Vec<FieldError>) -> bool {
    let ok = !text.trim().is_empty() && text.chars().count() <= 1000;
    if !ok {
        errors.push(FieldError::new(field, "must be 1 to 1000 characters"));
    }
    ok
}

fn string(map: &Map<String, Value>, name: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match map.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => {
            errors.push(FieldError::new(name, "must be a string"));
            None
        }
    }
}

fn strings(
    map: &Map<String, Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    match map.get(name)? {
        Value::Null => None,
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(s) => out.push(s.to_owned()),
                    None => {
                        errors.push(FieldError::new(format!("{name}[{i}]"), "must be a string"))
                    }
                }
            }
            Some(out)
        }
        _ => {
            errors.push(FieldError::new(name, "must be an array of strings"));
            None
        }
    }
}

fn cidrs(items: &[String], field: &str, errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, text) in items.iter().enumerate() {
        match parse_cidr(text) {
            Ok(net) => out.push(net.to_string()),
            Err(m) => errors.push(FieldError::new(format!("{field}[{i}]"), m)),
        }
    }
    out
}

/// The allowlist field every provider's connection has.
pub const IP_ALLOWLIST: Field = Field {
    name: "ip_allowlist",
    label: "Allowed source addresses",
    description: "CIDR ranges or addresses allowed to post webhooks; empty or absent allows any.",
    kind: FieldKind::CidrList,
    target: Target::IpAllowlist,
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn each_key_kind_reads_its_own_text_and_yields_its_hmac_key() {
        let whsec = KeyKind::StandardWebhooksSecret.parse(WHSEC).unwrap();
        assert_eq!(whsec.hint, "whsec_****b7oD");
        let Some(KeyMaterial::Secret(key)) =
            KeyKind::StandardWebhooksSecret.secret_material(&whsec.text)
        else {
            panic!("a whsec_ secret has material");
        };
        assert_eq!(key, SigningSecret::parse(WHSEC).unwrap().key_bytes());

        // A raw secret keys the HMAC with its own bytes, not base64-decoded ones.
        let raw = KeyKind::RawSecret
            .parse("  uber-signing-key-0123456789  ")
            .unwrap();
        assert_eq!(raw.text, "uber-signing-key-0123456789");
        assert!(raw.hint.ends_with("6789") && !raw.hint.contains("uber"));
        let Some(KeyMaterial::Secret(key)) = KeyKind::RawSecret.secret_material(&raw.text) else {
            panic!("a raw secret has material");
        };
        assert_eq!(key, b"uber-signing-key-0123456789");
        assert!(KeyKind::RawSecret.parse("short").is_err());
        assert!(KeyKind::StandardWebhooksSecret.parse("not-whsec").is_err());
        assert!(KeyKind::RsaPublicKey.parse(WHSEC).is_err());
        assert!(KeyKind::RsaPublicKey.secret_material("x").is_none());
    }

    static SPEC: CredentialSpec = CredentialSpec {
        keys: KeySpec {
            field: "signing_keys",
            add_field: "signing_key",
            kind: KeyKind::RawSecret,
            label: "Signing keys",
            description: "",
        },
        fields: &[
            Field {
                name: "client_id",
                label: "",
                description: "",
                kind: FieldKind::Text,
                target: Target::ClientId,
            },
            Field {
                name: "client_secret",
                label: "",
                description: "",
                kind: FieldKind::Secret,
                target: Target::Secret,
            },
            Field {
                name: "environment",
                label: "",
                description: "",
                kind: FieldKind::Choice(&[("sandbox", "https://sandbox.example/")]),
                target: Target::ApiBaseUrl,
            },
            Field {
                name: "api_base_url",
                label: "",
                description: "",
                kind: FieldKind::Url { base: true },
                target: Target::ApiBaseUrl,
            },
            IP_ALLOWLIST,
        ],
        secret_context: "test_secret",
        default_token_url: None,
        default_api_base_url: None,
        api: ApiAuth::None,
    };

    #[test]
    fn a_spec_reads_a_body_into_a_change_and_names_every_bad_field() {
        let Ok(change) = SPEC.parse(
                &json!({"signing_keys": ["k-0123456789abcdef"], "client_id": " abc ",
                        "environment": "sandbox", "ip_allowlist": ["10.0.0.0/8"], "client_secret": null}),
                false,
            ) else {
            panic!("a good body is read");
        };
        assert_eq!(change.keys.as_ref().map(Vec::len), Some(1));
        assert_eq!(change.client_id.as_deref(), Some("abc"));
        assert_eq!(change.secret, None, "null is as if absent");
        assert_eq!(
            change.api_base_url.as_deref(),
            Some("https://sandbox.example/")
        );
        assert_eq!(change.ip_allowlist, Some(vec!["10.0.0.0/8".to_owned()]));

        let Ok(later_url_wins) = SPEC.parse(
            &json!({"environment": "sandbox", "api_base_url": "https://api.example/v1"}),
            false,
        ) else {
            panic!("a good body is read");
        };
        assert_eq!(
            later_url_wins.api_base_url.as_deref(),
            Some("https://api.example/v1/")
        );

        let errors = SPEC
            .parse(
                &json!({"signing_keys": ["k-0123456789abcdef", "k-0123456789abcdef", 7],
                        "client_id": "", "environment": "mars", "api_base_url": "http://x.example",
                        "ip_allowlist": "10.0.0.0/8", "region": "us"}),
                false,
            )
            .err()
            .expect("refused");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "region",
                "signing_keys[2]",
                "signing_keys[1]",
                "client_id",
                "environment",
                "api_base_url",
                "ip_allowlist"
            ]
        );
        assert!(SPEC.parse(&json!(["x"]), false).is_err());
    }
}
