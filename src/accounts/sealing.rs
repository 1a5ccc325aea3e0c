//! TOTP secrets encrypted at rest, with a key kept apart from the accounts file.
//!
//! A TOTP secret is a shared secret: whoever reads it can make every future code. The accounts
//! file therefore holds each secret only as AES-256-GCM ciphertext (`ring::aead`, already the
//! crate carimbo signs and verifies with), under a 256-bit key in a file of its own
//! (`DATA/keys/totp.key` by default, or `serve --totp-key-file`), so a copy of the accounts file
//! or of a backup of it without the key gives nothing. Each secret gets a random 96-bit nonce,
//! and the person id is the associated data, so a ciphertext moved to another account does not
//! open. Key and files are created 0600 in a 0700 directory.

use super::AccountError;
use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a sealed secret starts with in the accounts file; anything else is a clear-text secret
/// written by an older carimbo, which `Accounts::open` seals.
const SEALED_PREFIX: &str = "aes-256-gcm:";
const KEY_LEN: usize = 32;

/// A TOTP secret as the accounts file holds it. Its `Debug` shows no byte of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(String);

impl SealedSecret {
    /// Sealed by `TotpKey::seal` (false for a clear-text secret read from an older file).
    pub fn is_sealed(&self) -> bool {
        self.0.starts_with(SEALED_PREFIX)
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_sealed() { "SealedSecret(..)" } else { "SealedSecret(clear, ..)" })
    }
}

/// The key that seals TOTP secrets, read from (or created in) its own file.
pub struct TotpKey {
    key: LessSafeKey,
    path: PathBuf,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpKey").field("path", &self.path).finish_non_exhaustive()
    }
}

fn key_error(path: &Path, reason: impl std::fmt::Display) -> AccountError {
    AccountError::KeyFile { path: path.display().to_string(), reason: reason.to_string() }
}

impl TotpKey {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the key file; `None` when there is no file at `path`.
    pub fn load(path: &Path) -> Result<Option<TotpKey>, AccountError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(key_error(path, e)),
        };
        warn_if_readable_by_others(path);
        let bytes = hex::decode(text.trim()).map_err(|_| key_error(path, "it is not a key written by carimbo (64 hexadecimal digits)"))?;
        if bytes.len() != KEY_LEN {
            return Err(key_error(path, format!("a key has {KEY_LEN} bytes (64 hexadecimal digits), this one {}", bytes.len())));
        }
        Ok(Some(TotpKey::from_bytes(&bytes, path)?))
    }

    /// Makes a new random key and writes it to `path` (0600; missing directories 0700). Never
    /// replaces a file: a key that exists is the only one that opens the secrets sealed with it.
    pub fn create(path: &Path) -> Result<TotpKey, AccountError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| key_error(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(|e| key_error(dir, e))?;
        }
        let mut file = private_file().create_new(true).write(true).open(path).map_err(|e| key_error(path, e))?;
        file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes()).and_then(|_| file.sync_all()).map_err(|e| key_error(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| key_error(dir, e))?;
        }
        TotpKey::from_bytes(&bytes, path)
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<TotpKey, AccountError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| key_error(path, "not an AES-256 key"))?;
        Ok(TotpKey { key: LessSafeKey::new(unbound), path: path.to_path_buf() })
    }

    /// Encrypts a base32 secret for `person`.
    pub fn seal(&self, person: &str, secret_b32: &str) -> Result<SealedSecret, AccountError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| AccountError::Totp(e.to_string()))?;
        let mut in_out = secret_b32.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(person), &mut in_out)
            .map_err(|_| AccountError::Totp("the secret could not be encrypted".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&in_out);
        Ok(SealedSecret(format!("{SEALED_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob))))
    }

    /// The base32 secret inside `sealed`, or clear text from an older file as it is.
    pub fn open(&self, person: &str, sealed: &SealedSecret) -> Result<String, AccountError> {
        let Some(b64) = sealed.0.strip_prefix(SEALED_PREFIX) else { return Ok(sealed.0.clone()) };
        let wrong = || AccountError::WrongKey { path: self.path.display().to_string(), person: person.to_string() };
        let mut blob = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).map_err(|_| wrong())?;
        if blob.len() < NONCE_LEN {
            return Err(wrong());
        }
        let mut in_out = blob.split_off(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = blob.try_into().map_err(|_| wrong())?;
        let plain = self.key.open_in_place(Nonce::assume_unique_for_key(nonce), aad(person), &mut in_out).map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

/// Binds a ciphertext to its account.
fn aad(person: &str) -> Aad<Vec<u8>> {
    Aad::from(format!("carimbo totp secret v1\u{0}{person}").into_bytes())
}

/// Options for a file only its owner may read or write (the mode applies when it is created).
pub(crate) fn private_file() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `dir` and its missing parents as 0700; an existing directory is left as it is.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Whether group or others may read or write `path` (never on systems without Unix modes).
pub(crate) fn open_to_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if open_to_others(path) {
        eprintln!("warning: the TOTP key file {} can be read by other users of this machine; `chmod 600` it", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_account_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = TotpKey::create(&dir.path().join("keys/totp.key")).unwrap();
        let sealed = key.seal("p005", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.is_sealed() && !serde_json::to_string(&sealed).unwrap().contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(format!("{sealed:?}"), "SealedSecret(..)");
        assert_eq!(key.open("p005", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(matches!(key.open("p006", &sealed), Err(AccountError::WrongKey { .. })), "moved to another account, it does not open");
        assert_ne!(key.seal("p005", "JBSWY3DPEHPK3PXP").unwrap(), sealed, "a fresh nonce each time");
        let other = TotpKey::create(&dir.path().join("other.key")).unwrap();
        assert!(matches!(other.open("p005", &sealed), Err(AccountError::WrongKey { .. })));
        let again = TotpKey::load(&dir.path().join("keys/totp.key")).unwrap().expect("the key file exists");
        assert_eq!(again.open("p005", &sealed).unwrap(), "JBSWY3DPEHPK3PXP", "the key read back is the same key");
        assert!(!format!("{again:?}").contains(&std::fs::read_to_string(dir.path().join("keys/totp.key")).unwrap().trim().to_string()));
    }

    #[test]
    fn the_key_file_is_created_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/totp.key");
        TotpKey::create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        assert!(matches!(TotpKey::create(&path), Err(AccountError::KeyFile { .. })), "an existing key is not overwritten");
        assert!(TotpKey::load(&dir.path().join("none.key")).unwrap().is_none());
        std::fs::write(dir.path().join("bad.key"), "not hex\n").unwrap();
        assert!(matches!(TotpKey::load(&dir.path().join("bad.key")), Err(AccountError::KeyFile { .. })));
        std::fs::write(dir.path().join("short.key"), "abcd\n").unwrap();
        assert!(matches!(TotpKey::load(&dir.path().join("short.key")), Err(AccountError::KeyFile { .. })));
    }
}
