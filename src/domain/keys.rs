//! Provider public keys: VectorCare signs webhooks with RSA (PKCS#1 v1.5, SHA-256).

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};

pub const MIN_RSA_BITS: usize = 2048;

/// An RSA public key that parsed and is strong enough, kept as normalized SPKI PEM.
#[derive(Clone, Debug)]
pub struct RsaPublicKeyPem {
    pub key: RsaPublicKey,
    pub pem: String,
    pub bits: usize,
    /// SHA-256 of the DER encoding, hex: identifies the key without showing it.
    pub fingerprint: String,
}

impl RsaPublicKeyPem {
    /// Accepts `BEGIN PUBLIC KEY` (SPKI, what VectorCare shows) and `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let key = if text.contains("BEGIN PUBLIC KEY") {
            RsaPublicKey::from_public_key_pem(text)
                .map_err(|e| format!("is not an RSA public key in PEM ({e})"))?
        } else if text.contains("BEGIN RSA PUBLIC KEY") {
            RsaPublicKey::from_pkcs1_pem(text)
                .map_err(|e| format!("is not an RSA public key in PEM ({e})"))?
        } else {
            return Err("must be a PEM block starting with -----BEGIN PUBLIC KEY-----".into());
        };
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
            ));
        }
        let der = key
            .to_public_key_der()
            .map_err(|e| format!("cannot be re-encoded ({e})"))?;
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("cannot be re-encoded ({e})"))?;
        Ok(Self {
            fingerprint: hex::encode(Sha256::digest(der.as_bytes())),
            key,
            pem,
            bits,
        })
    }
}
