//! Every error code the code can give has its entry in docs/errors.md (or, for signatures and
//! the PKI, docs/errors-signing.md, which it points to), and every code there is one row: a
//! person who reads a code in a message can always look it up.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `CARIMBO-Ennnn` in a text.
fn codes_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("CARIMBO-E") {
        let digits: String = rest[i + 9..].chars().take_while(char::is_ascii_digit).collect();
        if digits.len() == 4 {
            out.push(format!("CARIMBO-E{digits}"));
        }
        rest = &rest[i + 9..];
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "js") {
            out.push(path);
        }
    }
}

#[test]
fn every_code_in_the_source_has_its_entry_in_docs_errors_md() {
    let repo = common::repo();
    let docs = ["docs/errors.md", "docs/errors-signing.md"].map(|f| std::fs::read_to_string(repo.join(f)).unwrap()).join("\n");
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for line in docs.lines() {
        if let Some(cell) = line.strip_prefix("| ").and_then(|l| l.split(" |").next())
            && let [code] = codes_in(cell).as_slice()
            && cell.trim() == code
        {
            *rows.entry(code.clone()).or_default() += 1;
        }
    }
    assert!(rows.len() > 100, "docs/errors.md lists its codes as table rows: {} found", rows.len());
    let twice: Vec<_> = rows.iter().filter(|(_, n)| **n > 1).map(|(c, _)| c.clone()).collect();
    assert!(twice.is_empty(), "codes with more than one row in the error docs: {twice:?}");

    let mut files = Vec::new();
    sources(&repo.join("src"), &mut files);
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for code in codes_in(&text) {
            if !rows.contains_key(&code) {
                missing.insert(format!("{code} ({})", file.strip_prefix(&repo).unwrap().display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "codes used in src/ with no row in docs/errors.md or docs/errors-signing.md:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_scanner_finds_codes_and_skips_what_is_not_one() {
    assert_eq!(codes_in("a [CARIMBO-E0409] b CARIMBO-E12 c CARIMBO-E04101"), vec!["CARIMBO-E0409".to_string()]);
}
