//! Architecture invariant (docs/ARCHITECTURE.md, "Architecture invariant"): the core does no
//! I/O and reads no clock. Every file of a core module is parsed as Rust (syn), so a comment or
//! a string that names `std::fs` or `Utc::now` is not a finding, and a call inside a macro
//! (`format!("{}", Utc::now())`) still is. `#[cfg(test)]` items are left out: a unit test may
//! make a temporary folder.

use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The core, as docs/ARCHITECTURE.md names it: folders (every `.rs` file under them) and files.
const CORE: &[&str] = &[
    "src/forms",
    "src/workflow",
    "src/pki",
    "src/signing",
    "src/chain.rs",
    "src/evidence/verify.rs",
    "src/evidence/locate.rs",
    "src/evidence/read.rs",
    "src/evidence/archive.rs",
    "src/visibility.rs",
    "src/i18n.rs",
    "src/json_strict.rs",
    "src/jcs.rs",
    "src/accounts/second_factor.rs",
    "src/notify/mod.rs",
    "src/pdf",
    "src/wording.rs",
    "src/csc/protocol.rs",
];

/// Paths the core must not name (a prefix of segments), and why.
const FORBIDDEN: &[(&[&str], &str)] = &[
    (&["std", "fs"], "file I/O"),
    (&["std", "net"], "network I/O"),
    (&["std", "process"], "processes"),
    (&["std", "env"], "the environment"),
    (&["std", "io", "stdin"], "the terminal"),
    (&["std", "io", "stdout"], "the terminal"),
    (&["std", "io", "stderr"], "the terminal"),
    (&["tokio"], "the async runtime"),
    (&["axum"], "the web layer"),
    (&["ureq"], "network I/O"),
    (&["sled"], "a store"),
    (&["postgres"], "a store"),
    (&["crate", "store"], "a store"),
    (&["carimbo", "store"], "a store"),
    (&["crate", "http"], "the web layer"),
    (&["crate", "cli"], "the command line's edge"),
];

/// Types whose `now` reads the clock.
const CLOCKS: &[&str] = &["Utc", "Local", "SystemTime", "Instant"];

/// Macros that write to the terminal.
const TERMINAL: &[&str] = &["println", "print", "eprintln", "eprint", "dbg"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    line: usize,
    what: String,
}

struct Checker {
    findings: Vec<Finding>,
    /// Names a `use` gave to a clock type (`use chrono::Utc as Clock;`).
    clock_names: Vec<String>,
}

impl Checker {
    fn path(&mut self, segments: &[String], line: usize) {
        for (prefix, why) in FORBIDDEN {
            let mut s = segments.iter().map(String::as_str).skip_while(|s| s.is_empty());
            if prefix.iter().all(|p| s.next() == Some(*p)) {
                self.findings.push(Finding { line, what: format!("`{}` ({why})", segments.join("::")) });
                return;
            }
        }
        if segments.len() >= 2 && segments[segments.len() - 1] == "now" {
            let ty = &segments[segments.len() - 2];
            if CLOCKS.contains(&ty.as_str()) || self.clock_names.contains(ty) {
                self.findings.push(Finding { line, what: format!("`{}` (reads the clock)", segments.join("::")) });
            }
        }
    }

    /// Paths written inside a macro's tokens: `a::b::c` runs of identifiers.
    fn tokens(&mut self, tokens: TokenStream) {
        let mut run: Vec<String> = Vec::new();
        let mut line = 0;
        let mut colons = 0;
        let flush = |me: &mut Checker, run: &mut Vec<String>, line: usize| {
            if run.len() > 1 {
                me.path(run, line);
            }
            run.clear();
        };
        for tt in tokens {
            match tt {
                TokenTree::Ident(i) => {
                    if colons != 2 {
                        flush(self, &mut run, line);
                        line = i.span().start().line;
                    }
                    run.push(i.to_string());
                    colons = 0;
                }
                TokenTree::Punct(p) if p.as_char() == ':' => colons += 1,
                TokenTree::Group(g) => {
                    flush(self, &mut run, line);
                    colons = 0;
                    self.tokens(g.stream());
                }
                _ => {
                    flush(self, &mut run, line);
                    colons = 0;
                }
            }
        }
        flush(self, &mut run, line);
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.path(prefix, n.ident.span().start().line);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                if CLOCKS.contains(&r.ident.to_string().as_str()) {
                    self.clock_names.push(r.rename.to_string());
                }
                self.path(prefix, r.ident.span().start().line);
                prefix.pop();
            }
            syn::UseTree::Glob(g) => {
                prefix.push("*".into());
                self.path(prefix, g.star_token.span.start().line);
                prefix.pop();
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

/// `#[cfg(test)]`, or a `cfg` that needs `test` (`all(test, …)`), not one that excludes it.
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|l| {
                let t = l.tokens.to_string();
                t.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == "test") && !t.contains("not")
            })
    })
}

impl<'ast> Visit<'ast> for Checker {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let leading = if u.leading_colon.is_some() { vec![String::new()] } else { Vec::new() };
        self.use_tree(&mut leading.clone(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let mut segments: Vec<String> = Vec::new();
        if p.leading_colon.is_some() {
            segments.push(String::new());
        }
        segments.extend(p.segments.iter().map(|s| s.ident.to_string()));
        let line = p.segments.first().map(|s| s.ident.span().start().line).unwrap_or(0);
        self.path(&segments, line);
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(name) = m.path.segments.last().map(|s| s.ident.to_string())
            && TERMINAL.contains(&name.as_str())
        {
            let line = m.path.segments[0].ident.span().start().line;
            self.findings.push(Finding { line, what: format!("`{name}!` (the terminal)") });
        }
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }

    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match i {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(im) => &im.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            _ => &[],
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, i);
        }
    }
}

/// The findings of one file's source; a file that is not Rust is a finding itself.
fn check_source(source: &str) -> Vec<Finding> {
    let file = match syn::parse_file(source) {
        Ok(f) => f,
        Err(e) => return vec![Finding { line: e.span().start().line, what: format!("does not parse: {e}") }],
    };
    let mut checker = Checker { findings: Vec::new(), clock_names: Vec::new() };
    // Aliases first, so `Clock::now()` above the `use` is found too.
    for item in &file.items {
        if let syn::Item::Use(u) = item {
            checker.use_tree(&mut Vec::new(), &u.tree);
        }
    }
    checker.findings.clear();
    checker.visit_file(&file);
    checker.findings
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn the_core_does_no_io_and_reads_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for c in CORE {
        let path = root.join(c);
        assert!(path.exists(), "{c} is named as core in tests/architecture.rs but does not exist: update CORE and docs/ARCHITECTURE.md together");
        rust_files(&path, &mut files);
    }
    assert!(files.len() > 30, "only {} core files found", files.len());
    let mut report = Vec::new();
    for f in &files {
        let source = std::fs::read_to_string(f).unwrap();
        for finding in check_source(&source) {
            report.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap().display(), finding.line, finding.what));
        }
    }
    assert!(
        report.is_empty(),
        "the core must do no I/O and read no clock (docs/ARCHITECTURE.md, \"Architecture invariant\"); take the file, the folder or `now` as an argument and do the reading at the edge (src/cli, main.rs, the server's start-up):\n{}",
        report.join("\n")
    );
}

fn whats(source: &str) -> Vec<String> {
    check_source(source).into_iter().map(|f| format!("{}: {}", f.line, f.what)).collect()
}

#[test]
fn file_reads_store_imports_and_clock_reads_are_found_where_they_are_written() {
    let source = r#"
use std::fs;
use std::{io, net::TcpStream};
use crate::store::GENESIS_HASH;
use chrono::Utc as Clock;
fn f() -> String {
    let _ = std::fs::read("x");
    let t = chrono::Utc::now();
    let u = Clock::now();
    let v = std::time::Instant::now();
    let w = None.unwrap_or_else(Utc::now);
    println!("{t}");
    format!("{}", SystemTime::now())
}
"#;
    assert_eq!(
        whats(source),
        [
            "2: `std::fs` (file I/O)",
            "3: `std::net::TcpStream` (network I/O)",
            "4: `crate::store::GENESIS_HASH` (a store)",
            "7: `std::fs::read` (file I/O)",
            "8: `chrono::Utc::now` (reads the clock)",
            "9: `Clock::now` (reads the clock)",
            "10: `std::time::Instant::now` (reads the clock)",
            "11: `Utc::now` (reads the clock)",
            "12: `println!` (the terminal)",
            "13: `SystemTime::now` (reads the clock)",
        ]
    );
}

#[test]
fn comments_strings_time_passed_in_and_unit_tests_are_not_findings() {
    let source = r#"
//! Reads no file: `std::fs::read` and `Utc::now()` are the caller's.
use chrono::{DateTime, Utc};
/// Like `std::fs::read`, but from bytes.
fn f(now: DateTime<Utc>) -> String {
    // not Utc::now() here
    let s = "std::fs::read and Utc::now()";
    let later = now + chrono::Duration::days(1);
    format!("{s} {later} {}", "tokio::spawn")
}
#[cfg(test)]
mod tests {
    use std::fs;
    #[test]
    fn t() { let _ = fs::read("x"); let _ = chrono::Utc::now(); }
}
"#;
    assert_eq!(whats(source), Vec::<String>::new());
}

/// Every string literal of a file outside `#[cfg(test)]` items, with its line; and the
/// out-of-line modules it declares as `#[cfg(test)] mod name;` (their files are unit tests).
#[derive(Default)]
struct Literals {
    strings: Vec<(usize, String)>,
    test_modules: Vec<String>,
}

impl<'ast> Visit<'ast> for Literals {
    fn visit_lit_str(&mut self, l: &'ast syn::LitStr) {
        self.strings.push((l.span().start().line, l.value()));
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        fn walk(me: &mut Literals, tokens: TokenStream) {
            for tt in tokens {
                match tt {
                    TokenTree::Literal(l) => {
                        if let Ok(syn::Lit::Str(s)) = syn::parse_str::<syn::Lit>(&l.to_string()) {
                            me.strings.push((l.span().start().line, s.value()));
                        }
                    }
                    TokenTree::Group(g) => walk(me, g.stream()),
                    _ => {}
                }
            }
        }
        walk(self, m.tokens.clone());
    }

    fn visit_item(&mut self, i: &'ast syn::Item) {
        if let syn::Item::Mod(m) = i
            && is_cfg_test(&m.attrs)
        {
            if m.content.is_none() {
                self.test_modules.push(m.ident.to_string());
            }
            return;
        }
        let attrs: &[syn::Attribute] = match i {
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(im) => &im.attrs,
            syn::Item::Const(c) => &c.attrs,
            _ => &[],
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, i);
        }
    }
}

/// The ids of the shipped forms (`forms/*.json` of kind `form`).
fn shipped_form_ids(root: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(root.join("forms")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if v["kind"] == "form" {
                ids.push(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids.sort();
    ids
}

/// The form ids written in `source` outside unit tests, and the file's test modules.
fn form_ids_in(source: &str, ids: &[String]) -> (Vec<String>, Vec<String>) {
    let file = syn::parse_file(source).unwrap();
    let mut lits = Literals::default();
    lits.visit_file(&file);
    let found = lits.strings.into_iter().filter(|(_, s)| ids.contains(s)).map(|(line, s)| format!("{line}: \"{s}\"")).collect();
    (found, lits.test_modules)
}

#[test]
fn no_form_is_known_by_its_id_in_the_rust_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ids = shipped_form_ids(root);
    assert_eq!(ids.len(), 18, "the 18 personnel forms are shipped in forms/");
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut test_files: Vec<PathBuf> = Vec::new();
    let mut report = Vec::new();
    for f in &files {
        let (found, test_modules) = form_ids_in(&std::fs::read_to_string(f).unwrap(), &ids);
        // `#[cfg(test)] mod tests;` in `a/b.rs` or `a/mod.rs` is `a/b/tests.rs` or `a/tests.rs`.
        let dir = match f.file_stem().and_then(|s| s.to_str()) {
            Some("mod" | "lib" | "main") => f.parent().unwrap().to_path_buf(),
            Some(stem) => f.parent().unwrap().join(stem),
            None => continue,
        };
        test_files.extend(test_modules.iter().flat_map(|m| [dir.join(format!("{m}.rs")), dir.join(m).join("mod.rs")]));
        report.extend(found.into_iter().map(|l| (f.clone(), l)));
    }
    let report: Vec<String> =
        report.into_iter().filter(|(f, _)| !test_files.contains(f)).map(|(f, l)| format!("{}:{l}", f.strip_prefix(root).unwrap().display())).collect();
    assert!(
        report.is_empty(),
        "the Rust code knows no particular form (docs/ARCHITECTURE.md, Invariants): express what the form needs in its definition instead:\n{}",
        report.join("\n")
    );
}

#[test]
fn a_form_id_in_code_is_found_and_one_in_a_comment_or_unit_test_is_not() {
    let ids = vec!["special-leave".to_string()];
    let source = r#"
// special-leave is special? No: "special-leave" in a comment is not code.
fn f(id: &str) -> bool { id == "special-leave" }
fn g() -> String { format!("{}", "special-leave") }
#[cfg(test)]
mod tests { const LEAVE: &str = "special-leave"; }
#[cfg(test)]
mod more;
"#;
    let (found, test_modules) = form_ids_in(source, &ids);
    assert_eq!(found, ["3: \"special-leave\"", "4: \"special-leave\""]);
    assert_eq!(test_modules, ["more"]);
}
