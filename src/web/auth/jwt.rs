//! Token signing and verification. The algorithm is pinned (HS256), and `exp`, `iss`, `aud` and
//! `sub` are required and checked: a token from another system or of another algorithm fails.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::domain::TokenId;
use crate::error::ApiError;

pub const ISSUER: &str = "webhook-gateway";
pub const AUDIENCE: &str = "webhook-gateway-api";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    iat: i64,
    exp: i64,
}

/// What a verified token says; the database row decides whether it is still valid.
#[derive(Debug)]
pub struct VerifiedClaims {
    pub token_id: TokenId,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// The keys of a gateway whose token key was never stored: derived from `master`.
    pub fn new(master: &MasterKey) -> Self {
        Self::from_secret(&master.derive(crate::store::instance::TOKEN_PURPOSE))
    }

    pub fn from_secret(key: &SecretBox<[u8; 32]>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(key.expose_secret()),
            decoding: DecodingKey::from_secret(key.expose_secret()),
            validation,
        }
    }

    pub fn issue(
        &self,
        id: &TokenId,
        role: &str,
        tenant: Option<&str>,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: id.to_string(),
            role: role.into(),
            tenant: tenant.map(str::to_owned),
            iat: issued_at.timestamp(),
            exp: expires_at.timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, ApiError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            let (code, detail) = match e.kind() {
                ErrorKind::ExpiredSignature => ("token_expired", "this token has expired"),
                ErrorKind::InvalidSignature => (
                    "invalid_token",
                    "the token's signature does not verify with this gateway's key",
                ),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    ("invalid_token", "the token was not issued for this gateway")
                }
                ErrorKind::InvalidAlgorithm => (
                    "invalid_token",
                    "the token uses another algorithm than HS256",
                ),
                ErrorKind::MissingRequiredClaim(_) => {
                    ("invalid_token", "the token lacks a required claim")
                }
                _ => ("malformed_token", "the token is not a well-formed JWT"),
            };
            ApiError::Unauthorized {
                code,
                detail: detail.into(),
            }
        })?;
        let token_id = TokenId::parse(&data.claims.sub).map_err(|_| ApiError::Unauthorized {
            code: "invalid_token",
            detail: "the token's subject is not a token id".into(),
        })?;
        Ok(VerifiedClaims { token_id })
    }
}
