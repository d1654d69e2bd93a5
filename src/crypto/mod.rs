//! The master key and what is derived from it.
//!
//! One 32-byte master key protects everything the gateway keeps secret. It is never used directly:
//! HKDF-SHA256 derives one subkey per purpose, so a key used for encryption is never also used for
//! signing tokens.

pub mod payload;

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

pub const MASTER_KEY_LEN: usize = 32;

pub struct MasterKey(SecretBox<[u8; MASTER_KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        Self(SecretBox::new(Box::new(*self.0.expose_secret())))
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Parses the base64 text of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "is not valid base64".to_string())?;
        let bytes: [u8; MASTER_KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "must be base64 of exactly {MASTER_KEY_LEN} bytes, got {} bytes",
                b.len()
            )
        })?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.expose_secret())
    }

    /// Reads the key file, or creates it with mode 0600 when it does not exist yet.
    /// Returns the key and whether it was just generated.
    pub fn load_or_generate(path: &Path) -> std::io::Result<(Self, bool)> {
        match fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text)
                .map(|k| (k, false))
                .map_err(|reason| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("master key file {}: {reason}", path.display()),
                    )
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    create_private_dir(dir)?;
                }
                let key = Self::generate();
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path)?;
                file.write_all(key.to_base64().as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
                Ok((key, true))
            }
            Err(e) => Err(e),
        }
    }

    /// A 32-byte subkey for one purpose. `purpose` must be a constant naming that use.
    pub fn derive(&self, purpose: &'static str) -> SecretBox<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"webhook-gateway/v1"), self.0.expose_secret());
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        if hk.expand(purpose.as_bytes(), &mut out).is_err() {
            unreachable!("HKDF output length is constant and valid");
        }
        SecretBox::new(Box::new(out))
    }

    /// A non-secret fingerprint stored in the database, so that starting with another master key
    /// than the one the data was written with fails at once instead of failing every decryption.
    pub fn fingerprint(&self) -> String {
        let sub = self.derive("key-check");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(sub.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"webhook-gateway key check");
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// Seals secrets at rest with XChaCha20-Poly1305 under a subkey of the master key.
///
/// Each value is bound to where it is stored (`aad`, e.g. `endpoint_secret:sec_...`), so a
/// ciphertext copied into another row or column does not open there.
///
/// During a master key rotation the cipher also holds the previous key: values sealed under it
/// still open, everything sealed now uses the new one, and [`Cipher::reseal`] moves a value over.
pub struct Cipher {
    current: XChaCha20Poly1305,
    previous: Option<XChaCha20Poly1305>,
}

#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted (wrong master key or tampered data)")]
pub struct OpenError;

const SEALED_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;

fn secrets_cipher(master: &MasterKey) -> XChaCha20Poly1305 {
    let key = master.derive("secrets-at-rest");
    XChaCha20Poly1305::new(Key::from_slice(key.expose_secret()))
}

/// `nonce || ciphertext` of `plaintext` under `cipher`, bound to `aad`.
pub(crate) fn seal_with(cipher: &XChaCha20Poly1305, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut rand::rngs::OsRng);
    let ciphertext = match cipher.encrypt(
        &nonce,
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        Ok(c) => c,
        // Encryption fails only for inputs beyond 256 GiB; what we seal is far smaller.
        Err(_) => unreachable!("XChaCha20-Poly1305 accepts any input of this size"),
    };
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// The plaintext of [`seal_with`]'s output.
pub(crate) fn open_with(
    cipher: &XChaCha20Poly1305,
    sealed: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < NONCE_LEN {
        return Err(OpenError);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| OpenError)
}

impl Cipher {
    pub fn new(master: &MasterKey) -> Self {
        Self::rotating(master, None)
    }

    /// Seals under `master`, opens under `master` or `previous` (a rotation in progress).
    pub fn rotating(master: &MasterKey, previous: Option<&MasterKey>) -> Self {
        Self {
            current: secrets_cipher(master),
            previous: previous.map(secrets_cipher),
        }
    }

    pub fn seal(&self, plaintext: &str, aad: &str) -> String {
        self.seal_bytes(plaintext.as_bytes(), aad)
    }

    pub fn seal_bytes(&self, plaintext: &[u8], aad: &str) -> String {
        let sealed = seal_with(&self.current, plaintext, aad.as_bytes());
        format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<SecretString, OpenError> {
        let plain = self.open_bytes(sealed, aad)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| OpenError)
    }

    pub fn open_bytes(&self, sealed: &str, aad: &str) -> Result<Vec<u8>, OpenError> {
        self.open_either(sealed, aad).map(|(plain, _)| plain)
    }

    /// The value sealed again under the current key when it was sealed under the previous one;
    /// `None` when it already is under the current key.
    pub fn reseal(&self, sealed: &str, aad: &str) -> Result<Option<String>, OpenError> {
        match self.open_either(sealed, aad)? {
            (_, true) => Ok(None),
            (plain, false) => Ok(Some(self.seal_bytes(&plain, aad))),
        }
    }

    /// The plaintext, and whether the current key opened it.
    fn open_either(&self, sealed: &str, aad: &str) -> Result<(Vec<u8>, bool), OpenError> {
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or(OpenError)?;
        if let Ok(plain) = open_with(&self.current, &raw, aad.as_bytes()) {
            return Ok((plain, true));
        }
        match &self.previous {
            Some(previous) => open_with(previous, &raw, aad.as_bytes()).map(|p| (p, false)),
            None => Err(OpenError),
        }
    }
}

/// Creates a folder (and its missing parents) readable by this user only (0700 on Unix): the
/// master key and the database live there. An existing folder is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes `path` readable by this user only (0600 on Unix), creating it empty when missing, so a
/// database file (and the WAL and shared-memory files SQLite gives the same mode) never starts
/// world-readable. An existing file is changed by its path only, never opened: closing a
/// descriptor of a database file would drop the locks SQLite holds on it in this process.
pub fn make_private_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
        return Ok(());
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        // Created meanwhile by another process: make it private as above.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => make_private_file(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_fingerprints_are_stable() {
        let k = MasterKey::generate();
        let again = MasterKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k.fingerprint(), again.fingerprint());
        assert_ne!(k.fingerprint(), MasterKey::generate().fingerprint());
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_place() {
        let key = MasterKey::generate();
        let cipher = Cipher::new(&key);
        let sealed = cipher.seal("whsec_secret", "endpoint_secret:sec_1");
        assert!(!sealed.contains("whsec_secret"));
        assert_eq!(
            cipher
                .open(&sealed, "endpoint_secret:sec_1")
                .unwrap()
                .expose_secret(),
            "whsec_secret"
        );
        assert!(cipher.open(&sealed, "endpoint_secret:sec_2").is_err());
        assert!(Cipher::new(&MasterKey::generate())
            .open(&sealed, "endpoint_secret:sec_1")
            .is_err());
        assert_ne!(
            sealed,
            cipher.seal("whsec_secret", "endpoint_secret:sec_1"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn a_rotating_cipher_opens_both_keys_and_reseals_only_the_previous_ones() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let under_old = Cipher::new(&old).seal("s3cret", "here");
        let rotating = Cipher::rotating(&new, Some(&old));
        assert_eq!(
            rotating.open(&under_old, "here").unwrap().expose_secret(),
            "s3cret"
        );
        let moved = rotating.reseal(&under_old, "here").unwrap().unwrap();
        assert!(rotating.reseal(&moved, "here").unwrap().is_none());
        let after = Cipher::new(&new);
        assert_eq!(
            after.open(&moved, "here").unwrap().expose_secret(),
            "s3cret"
        );
        assert!(after.open(&under_old, "here").is_err());
        assert!(rotating.reseal(&under_old, "elsewhere").is_err());
    }

    #[test]
    fn subkeys_differ_by_purpose() {
        let k = MasterKey::generate();
        assert_ne!(k.derive("a").expose_secret(), k.derive("b").expose_secret());
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let (k1, created) = MasterKey::load_or_generate(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (k2, created) = MasterKey::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.fingerprint(), k2.fingerprint());
    }
}
