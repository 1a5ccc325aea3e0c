//! The demo's HSM, set up by `serve` when SoftHSM2 is installed and nobody gave the server a
//! token PIN: the token `carimbo` is initialized with random PINs kept in `DATA/hsm/user.pin` and
//! `DATA/hsm/so.pin` (mode 0600, never printed), and every person of the directory who has no
//! device key yet gets one generated inside the token, with a certificate from the demo
//! qualified CA stating QcSSCD, published in `DATA/hsm/people.json`. The device rule can then be
//! enforced and every `qualified` step still be met: with a key on the HSM and the person's
//! second factor.
//!
//! Run again on the same data directory, it changes nothing for people already published: a
//! revoked key stays revoked (the administrator rotates it), and the PINs stay those of the token.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use cryptoki::types::AuthPin;

use super::{DEFAULT_TOKEN, Hsm, HsmError, ProviderBook, read_pin};

/// What the demo set-up did, for the start-up banner.
#[derive(Debug, Clone)]
pub struct DemoHsm {
    /// The token user's PIN file the server signs with.
    pub pin_file: PathBuf,
    /// True when this start initialized the token.
    pub initialized: bool,
    /// People who got a key and certificate at this start.
    pub issued: Vec<String>,
    /// People with a device key in the book (published before or now), revoked ones included.
    pub published: usize,
}

/// The PIN files of the demo token in `data`.
pub fn pin_files(data: &Path) -> (PathBuf, PathBuf) {
    let dir = data.join("hsm");
    (dir.join("user.pin"), dir.join("so.pin"))
}

/// Sets up the demo token in the HSM of `module` for `people` (see the module's text). `root`
/// holds `seeds/` (the demo CA and the directory).
pub fn provision(module: &Path, data: &Path, root: &Path, people: &[String], now: DateTime<Utc>) -> Result<DemoHsm> {
    let (user_file, so_file) = pin_files(data);
    let hsm = Hsm::open(module)?;
    let has_token = hsm.list()?.iter().any(|t| t.token == DEFAULT_TOKEN);
    let initialized = !has_token;
    if has_token {
        if !user_file.is_file() {
            bail!(
                "CARIMBO-E1455: the HSM has a token {DEFAULT_TOKEN:?} but {} is missing; give the token's PIN with --hsm-pin-file or CARIMBO_HSM_PIN",
                user_file.display()
            );
        }
    } else {
        let so = new_pin_file(&so_file)?;
        let user = new_pin_file(&user_file)?;
        hsm.init_token(DEFAULT_TOKEN, &so, &user)?;
    }
    let pin = read_pin(super::PIN_ENV, Some(&user_file))?;
    let issued = publish_missing(&hsm, &pin, data, root, people, now)?;
    let published = ProviderBook::load(data)?.people.len();
    Ok(DemoHsm { pin_file: user_file, initialized, issued, published })
}

/// Generates and publishes a key for each of `people` not yet in the book. A key left on the
/// token by a start that stopped before publishing is used rather than refused.
fn publish_missing(hsm: &Hsm, pin: &AuthPin, data: &Path, root: &Path, people: &[String], now: DateTime<Utc>) -> Result<Vec<String>> {
    let known = ProviderBook::load(data)?;
    let mut issued = Vec::new();
    for person in people.iter().filter(|p| !known.people.contains_key(*p)) {
        match hsm.generate_p256(DEFAULT_TOKEN, pin, person) {
            Ok(_) | Err(HsmError::KeyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        super::lifecycle::issue(hsm, DEFAULT_TOKEN, data, root, person, person, None, now)
            .with_context(|| format!("cannot publish the HSM key of {person}"))?;
        issued.push(person.clone());
    }
    Ok(issued)
}

/// Writes a fresh random PIN (32 hexadecimal digits) to `path`, created owner-only (0600) and
/// never over an existing file: a PIN file that outlived its token is a question for a person.
fn new_pin_file(path: &Path) -> Result<AuthPin> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a PIN: {e}"))?;
    let pin = hex::encode(bytes);
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).with_context(|| {
            format!("cannot create the PIN file {} (if it is left from an earlier token, remove it or give --hsm-pin-file)", path.display())
        })?;
    file.write_all(pin.as_bytes()).and_then(|()| file.sync_all()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(AuthPin::from(pin))
}
