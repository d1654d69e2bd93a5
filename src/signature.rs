//! Standard Webhooks (Svix) signatures: HMAC-SHA256 over `{id}.{timestamp}.{body}`, sent as a
//! space-separated list of `v1,<base64>`. Vital signs what it sends us this way, and we sign our
//! callbacks the same way.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// `v1,<base64>` for one key.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(key, id, timestamp, body)))
}

/// Whether any `v1,` entry of `header` matches `key`, compared in constant time.
pub fn matches(header: &str, key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> bool {
    let expected = mac(key, id, timestamp, body);
    header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| given.len() == expected.len() && bool::from(given.ct_eq(&expected)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector from Svix's documentation.
    #[test]
    fn the_svix_test_vector_verifies() {
        let key = STANDARD.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
        assert_eq!(
            sign(&key, id, 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let header = "v1,bm9wZQ== v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert!(matches(header, &key, id, 1649367553, body));
        assert!(!matches(header, &key, id, 1649367554, body));
        assert!(!matches(
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            &key,
            id,
            1649367553,
            body
        ));
    }
}
