//! An event's payload sealed under its tenant's data key: the CloudEvent, the headers kept and
//! the webhook as received, in one blob. The data key is random, per tenant, and stored only
//! sealed under the master key; destroying it leaves every blob it sealed unreadable
//! (crypto-shredding).
//!
//! Blob: `version (1) | flags (1) | nonce (24) | ciphertext`, the plaintext compressed with LZ4
//! first when that makes it smaller (ciphertext does not compress, so PostgreSQL's own
//! compression of large values no longer can). The event id is the associated data: a blob
//! copied onto another event does not open.

use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{Key, XChaCha20Poly1305};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

use super::{open_with, seal_with, OpenError};

const VERSION: u8 = 1;
const FLAG_LZ4: u8 = 1;
const HEADER_LEN: usize = 2;
/// Below this, compression saves too little to pay for itself.
const COMPRESS_FROM: usize = 512;
/// A payload is at most the largest accepted body plus its CloudEvent; a blob claiming more
/// after decompression is refused rather than allocated.
const MAX_PLAIN: usize = 64 * 1024 * 1024;

pub const DATA_KEY_LEN: usize = 32;

/// A tenant's data key, opened.
pub struct DataKey(XChaCha20Poly1305);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A new random key and its bytes (to be sealed under the master key and stored).
    pub fn generate() -> (Self, SecretBox<[u8; DATA_KEY_LEN]>) {
        let mut bytes = [0u8; DATA_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = SecretBox::new(Box::new(bytes));
        (Self::from_bytes(secret.expose_secret()), secret)
    }

    pub fn from_bytes(bytes: &[u8; DATA_KEY_LEN]) -> Self {
        Self(XChaCha20Poly1305::new(Key::from_slice(bytes)))
    }

    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, OpenError> {
        let bytes: &[u8; DATA_KEY_LEN] = bytes.try_into().map_err(|_| OpenError)?;
        Ok(Self::from_bytes(bytes))
    }
}

/// What an event's blob holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPayload {
    /// The CloudEvent as stored (JSON text).
    pub cloud_event: String,
    /// The headers kept (JSON text).
    pub raw_headers: String,
    /// The webhook's body as received.
    pub raw_body: String,
}

/// The same, borrowed: what is sealed at ingest without copying the strings.
#[derive(Clone, Copy)]
pub struct PayloadRef<'a> {
    pub cloud_event: &'a str,
    pub raw_headers: &'a str,
    pub raw_body: &'a str,
}

impl EventPayload {
    pub fn as_ref(&self) -> PayloadRef<'_> {
        PayloadRef {
            cloud_event: &self.cloud_event,
            raw_headers: &self.raw_headers,
            raw_body: &self.raw_body,
        }
    }
}

fn aad(event_id: &str) -> Vec<u8> {
    format!("event:{event_id}").into_bytes()
}

/// Length-prefixed fields: the first two carry their length (u32, little-endian), the body
/// takes the rest.
fn encode(p: PayloadRef<'_>) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(8 + p.cloud_event.len() + p.raw_headers.len() + p.raw_body.len());
    for field in [p.cloud_event, p.raw_headers] {
        // Fields are bounded by the accepted body size, far below 4 GiB.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(p.raw_body.as_bytes());
    out
}

fn decode(mut bytes: &[u8]) -> Result<EventPayload, OpenError> {
    let mut field = || -> Result<String, OpenError> {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or(OpenError)?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| OpenError)?;
        if rest.len() < len {
            return Err(OpenError);
        }
        let (text, rest) = rest.split_at(len);
        bytes = rest;
        String::from_utf8(text.to_vec()).map_err(|_| OpenError)
    };
    let cloud_event = field()?;
    let raw_headers = field()?;
    let raw_body = String::from_utf8(bytes.to_vec()).map_err(|_| OpenError)?;
    Ok(EventPayload {
        cloud_event,
        raw_headers,
        raw_body,
    })
}

pub fn seal(key: &DataKey, event_id: &str, payload: PayloadRef<'_>) -> Vec<u8> {
    let plain = encode(payload);
    let (flags, body) = if plain.len() >= COMPRESS_FROM {
        let packed = lz4_flex::compress_prepend_size(&plain);
        if packed.len() < plain.len() {
            (FLAG_LZ4, packed)
        } else {
            (0, plain)
        }
    } else {
        (0, plain)
    };
    let sealed = seal_with(&key.0, &body, &aad(event_id));
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&sealed);
    out
}

pub fn open(key: &DataKey, event_id: &str, blob: &[u8]) -> Result<EventPayload, OpenError> {
    let (&[version, flags], sealed) = blob.split_first_chunk::<HEADER_LEN>().ok_or(OpenError)?;
    if version != VERSION || flags & !FLAG_LZ4 != 0 {
        return Err(OpenError);
    }
    let body = open_with(&key.0, sealed, &aad(event_id))?;
    let plain = if flags & FLAG_LZ4 != 0 {
        let claimed = body
            .first_chunk::<4>()
            .map(|n| u32::from_le_bytes(*n) as usize)
            .ok_or(OpenError)?;
        if claimed > MAX_PLAIN {
            return Err(OpenError);
        }
        lz4_flex::decompress_size_prepended(&body).map_err(|_| OpenError)?
    } else {
        body
    };
    decode(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: &str) -> EventPayload {
        EventPayload {
            cloud_event: r#"{"specversion":"1.0","id":"evt_1"}"#.into(),
            raw_headers: r#"{"x-signature":"abc"}"#.into(),
            raw_body: body.into(),
        }
    }

    #[test]
    fn a_payload_opens_with_its_key_and_event_only() {
        let (key, _) = DataKey::generate();
        let p = sample(r#"{"patient":{"first_name":"Ada"}}"#);
        let blob = seal(&key, "evt_1", p.as_ref());
        assert_eq!(open(&key, "evt_1", &blob).unwrap(), p);
        assert!(open(&key, "evt_2", &blob).is_err(), "bound to its event");
        assert!(open(&DataKey::generate().0, "evt_1", &blob).is_err());
        assert!(!blob.windows(3).any(|w| w == b"Ada"));
    }

    #[test]
    fn large_payloads_are_compressed_before_sealing_and_small_ones_are_not() {
        let (key, _) = DataKey::generate();
        let large = sample(&format!(r#"{{"notes":"{}"}}"#, "lab order ".repeat(400)));
        let blob = seal(&key, "evt_1", large.as_ref());
        assert_eq!(blob[1], FLAG_LZ4);
        assert!(
            blob.len() < encode(large.as_ref()).len() / 2,
            "{}",
            blob.len()
        );
        assert_eq!(open(&key, "evt_1", &blob).unwrap(), large);
        let small = sample("{}");
        assert_eq!(seal(&key, "evt_1", small.as_ref())[1], 0);
    }

    #[test]
    fn a_tampered_or_truncated_blob_does_not_open() {
        let (key, _) = DataKey::generate();
        let mut blob = seal(&key, "evt_1", sample("{}").as_ref());
        for cut in [0, 1, 2, 10, blob.len() - 1] {
            assert!(open(&key, "evt_1", &blob[..cut]).is_err(), "cut at {cut}");
        }
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(open(&key, "evt_1", &blob).is_err());
    }

    #[test]
    fn decoding_rejects_lengths_past_the_end() {
        let mut bytes = 10u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"short");
        assert!(decode(&bytes).is_err());
        let round = encode(sample("body").as_ref());
        assert_eq!(decode(&round).unwrap(), sample("body"));
    }
}
