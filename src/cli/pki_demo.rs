//! Writing the demo PKI: `pki::demo` makes the certificates, keys, CRLs and trust list as
//! bytes; this reads what it needs of an existing PKI and writes what it made.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::pki::PkiError;
use crate::pki::demo::{self, DemoFile, DemoFolder, DemoPerson, DemoSummary, DemoTsaInputs};
use crate::pki::trust::TRUST_LIST_FILE;

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| PkiError::Unreadable { path: path.display().to_string(), source })
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    String::from_utf8(read(path)?).map_err(|e| PkiError::BadCertificateFile { path: path.display().to_string(), reason: e.to_string() })
}

fn write(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| PkiError::Unwritable { path: parent.display().to_string(), source })?;
    }
    std::fs::write(path, contents).map_err(|source| PkiError::Unwritable { path: path.display().to_string(), source })
}

/// Writes each file into the PKI folder `pki` or the trust folder `trust`.
pub fn write_files(files: &[DemoFile], pki: &Path, trust: &Path) -> Result<(), PkiError> {
    for f in files {
        let dir = match f.folder {
            DemoFolder::Pki => pki,
            DemoFolder::Trust => trust,
        };
        write(&dir.join(&f.path), &f.contents)?;
    }
    Ok(())
}

/// The demo people of a `people.json` file.
pub fn read_people(path: &Path) -> Result<Vec<DemoPerson>, PkiError> {
    demo::parse_people(&read(path)?, &path.display().to_string())
}

/// Generates the whole demo PKI into `out` and its trust list into `trust_out`.
pub fn write_demo(people: &[DemoPerson], out: &Path, trust_out: &Path) -> Result<DemoSummary, PkiError> {
    let made = demo::generate(people)?;
    write_files(&made.files, out, trust_out)?;
    Ok(made.summary)
}

/// A TSA certificate and key issued by the demo root of the PKI folder `pki`.
pub fn issue_tsa_certificate(pki: &Path, cn: &str, serial: u64, critical_eku: bool) -> Result<(String, String), PkiError> {
    let root_pem = read_text(&pki.join("root/root.pem"))?;
    let root_key_pem = read_text(&pki.join("root/root.key.pem"))?;
    demo::issue_tsa_certificate(&root_pem, &root_key_pem, cn, serial, critical_eku)
}

/// `issue_tsa_certificate`, valid until `until` (a date, UTC).
pub fn issue_tsa_certificate_until(pki: &Path, cn: &str, serial: u64, critical_eku: bool, until: Option<(i32, u8, u8)>) -> Result<(String, String), PkiError> {
    let root_pem = read_text(&pki.join("root/root.pem"))?;
    let root_key_pem = read_text(&pki.join("root/root.key.pem"))?;
    demo::issue_tsa_certificate_until(&root_pem, &root_key_pem, cn, serial, critical_eku, until)
}

/// `demo::issue_root_crl` with the demo root in `pki`.
pub fn issue_root_crl(pki: &Path, crl_number: u64, this_update: (i32, u8, u8), revoked: &[(u64, (i32, u8, u8))]) -> Result<String, PkiError> {
    let root_pem = read_text(&pki.join("root/root.pem"))?;
    let root_key_pem = read_text(&pki.join("root/root.key.pem"))?;
    demo::issue_root_crl(&root_pem, &root_key_pem, crl_number, this_update, revoked)
}

/// Adds the demo TSA to the demo PKI in `out` and the trust list in `trust_out`, at `at`;
/// returns the new member's id.
pub fn add_demo_tsa(out: &Path, trust_out: &Path, at: DateTime<Utc>) -> Result<String, PkiError> {
    let root_pem = read_text(&out.join("root/root.pem"))?;
    let root_key_pem = read_text(&out.join("root/root.key.pem"))?;
    let operator_key_pem = read(&out.join("operator/operator.key.pem"))?;
    let operator_pem = read(&out.join("operator/operator.pem"))?;
    let list_path: PathBuf = trust_out.join(TRUST_LIST_FILE);
    let trust_list = read(&list_path)?;
    let origin = list_path.display().to_string();
    let input = DemoTsaInputs {
        root_pem: &root_pem,
        root_key_pem: &root_key_pem,
        operator_key_pem: &operator_key_pem,
        operator_pem: &operator_pem,
        trust_list: &trust_list,
        trust_list_origin: &origin,
    };
    let (id, files) = demo::add_tsa(&input, at)?;
    write_files(&files, out, trust_out)?;
    Ok(id)
}

/// Issues the certificates of the people of `people` again, for the keys already in
/// `pki/people/<id>.key.pem`, from the CAs already in `pki/ca/`; returns how many.
pub fn reissue_people(people: &[DemoPerson], pki: &Path) -> Result<usize, PkiError> {
    let qualified_key_pem = read_text(&pki.join("ca/qualified-ca.key.pem"))?;
    let qualified_cert_pem = read_text(&pki.join("ca/qualified-ca.pem"))?;
    let advanced_key_pem = read_text(&pki.join("ca/advanced-ca.key.pem"))?;
    let advanced_cert_pem = read_text(&pki.join("ca/advanced-ca.pem"))?;
    let cas = demo::PeopleCaFiles {
        qualified_key_pem: &qualified_key_pem,
        qualified_cert_pem: &qualified_cert_pem,
        advanced_key_pem: &advanced_key_pem,
        advanced_cert_pem: &advanced_cert_pem,
    };
    let mut keys = std::collections::BTreeMap::new();
    for person in people {
        keys.insert(person.id.clone(), read_text(&pki.join(format!("people/{}.key.pem", person.id)))?);
    }
    let files = demo::reissue_people(people, |id| keys.get(id).cloned(), &cas)?;
    write_files(&files, pki, pki)?;
    Ok(files.len())
}
