//! The printable record, checked with tools that are not carimbo's: pyHanko validates the PAdES
//! seal against the demo PKI (intact, trusted, time-stamped; a changed byte breaks it),
//! pikepdf the PDF/A-3b properties, poppler's pdftotext and pdftoppm what a reader sees.
//! A test whose tool is missing says SKIPPED (CI installs them all: `.ci/run`).

use crate::common;
use crate::evidence_case;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use carimbo::evidence::EvidenceBundle;
use carimbo::i18n::Lang;
use carimbo::pdf::{PdfError, PdfSeal};
use carimbo::signing::timestamp::{DEFAULT_TSA_POLICY, TsaSigner};
use carimbo::workflow::Action;
use chrono::Utc;
use evidence_case::{Harness, leave, repo, seeds};

fn tool(name: &str) -> bool {
    Command::new(name).arg("-v").output().is_ok()
}

fn python_has(module: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
}

fn skip(what: &str) -> bool {
    let missing = match what {
        "pyhanko" => !python_has("pyhanko"),
        "pikepdf" => !python_has("pikepdf"),
        t => !tool(t),
    };
    if missing {
        eprintln!("SKIPPED: {what} is not installed here (.ci/run installs it)");
    }
    missing
}

fn seal_key() -> PdfSeal {
    let dir = seeds().join("pki/service");
    PdfSeal::from_pem(&std::fs::read(dir.join("service.key.pem")).unwrap(), &std::fs::read(dir.join("service.pem")).unwrap()).unwrap()
}

fn tsa() -> TsaSigner {
    let dir = seeds().join("pki/tsa");
    TsaSigner::from_pem(&std::fs::read(dir.join("tsa.key.pem")).unwrap(), &std::fs::read(dir.join("tsa.pem")).unwrap(), DEFAULT_TSA_POLICY).unwrap()
}

/// The cases every test reads: a leave case returned and resubmitted three times, a medical
/// certificate whose diagnosis only HR may read, exported for everyone and for a reader
/// without the role.
struct Cases {
    h: Harness,
    leave: EvidenceBundle,
    medical_open: EvidenceBundle,
    medical_withheld: EvidenceBundle,
}

fn cases() -> &'static Cases {
    static CASES: OnceLock<Cases> = OnceLock::new();
    CASES.get_or_init(|| {
        let h = Harness::new();
        let leave_id = evidence_case::long_case(&h);
        let medical_id = evidence_case::medical_case(&h);
        let leave = h.export(&leave_id, "p022");
        let medical_open = h.export(&medical_id, "p018");
        let medical_withheld = h.export_withholding(&medical_id, "p005");
        Cases { h, leave, medical_open, medical_withheld }
    })
}

/// The sealed document of `bundle` for a reader of `lang`, time-stamped by the demo TSA.
fn print(bundle: &EvidenceBundle, lang: Lang) -> Vec<u8> {
    let dir = cases().h.service.directory();
    let people = |p: &str| carimbo::http::pages::person_label(lang, &dir, p);
    let tsa = tsa();
    let stamp = |b: &[u8]| tsa.stamp(b, 7, Utc::now()).map(Some);
    carimbo::pdf::print(bundle, lang, &people, &seal_key(), &stamp, Utc::now()).unwrap()
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("carimbo-pdf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn text_of(path: &Path) -> String {
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(path).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn check(mode: &str, path: &Path) -> (bool, String) {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("tests/interop/check_pdf.py")).arg(mode).arg(path);
    if mode == "seal" {
        cmd.arg(seeds().join("pki/root/root.pem")).arg(seeds().join("pki/crl"));
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn pyhanko_finds_the_seal_intact_trusted_and_time_stamped() {
    if skip("pyhanko") {
        return;
    }
    let path = write("sealed.pdf", &print(&cases().leave, Lang::Zh));
    let (ok, out) = check("seal", &path);
    assert!(ok, "{out}");
    assert!(out.contains("\"timestamp\": true"), "the seal is B-T: {out}");
    assert!(out.contains("ETSI.CAdES.detached"), "{out}");
    assert!(out.contains("carimbo service seal"), "{out}");
}

#[test]
fn a_changed_byte_breaks_the_seal() {
    if skip("pyhanko") {
        return;
    }
    let mut pdf = print(&cases().leave, Lang::En);
    let at = pdf.windows(8).position(|w| w == b"carimbo:").expect("the seal's reason");
    pdf[at] = b'C';
    let path = write("changed.pdf", &pdf);
    let (ok, out) = check("seal", &path);
    assert!(!ok, "a changed byte must break the seal: {out}");
    assert!(out.contains("\"intact\": false"), "{out}");
}

#[test]
fn the_pdfa_3b_properties_hold() {
    if skip("pikepdf") {
        return;
    }
    for lang in Lang::ALL {
        let path = write(&format!("pdfa-{lang}.pdf"), &print(&cases().leave, lang));
        let (ok, out) = check("pdfa", &path);
        assert!(ok, "{lang}: {out}");
    }
}

#[test]
fn the_text_holds_the_fields_and_the_signers_in_each_language() {
    if skip("pdftotext") {
        return;
    }
    let table: [(Lang, &[&str]); 3] = [
        (
            Lang::Zh,
            &[
                "缺勤與年假申請書",
                "Boletim de faltas e férias",
                "假期類別",
                "工作日數",
                "由系統計算",
                "簽署頁",
                "角色及席位",
                "直屬上級審批",
                "何志偉",
                "陳美玲",
                "李嘉欣",
                "合格電子簽名",
                "澳門時間",
                "已完成",
            ],
        ),
        (
            Lang::Pt,
            &[
                "Boletim de faltas e férias",
                "缺勤與年假申請書",
                "Tipo de ausência",
                "Dias úteis",
                "Página de assinaturas",
                "Ho Chi Wai",
                "Chan Mei Leng",
                "assinatura qualificada",
                "hora de Macau",
                "Concluído",
            ],
        ),
        (
            Lang::En,
            &[
                "Absence and annual-leave application",
                "缺勤與年假申請書",
                "Boletim de faltas e férias",
                "Type of leave",
                "Working days",
                "computed by carimbo",
                "Signature page",
                "Ho Chi Wai",
                "Chan Mei Leng",
                "qualified signature",
                "Macau time",
                "Completed",
            ],
        ),
    ];
    for (lang, expected) in table {
        let text = text_of(&write(&format!("text-{lang}.pdf"), &print(&cases().leave, lang)));
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for e in expected {
            assert!(flat.contains(e), "{lang}: {e:?} missing from\n{text}");
        }
        assert!(flat.contains("family matters in Lisbon, tickets booked, substitute agreed"), "{lang}: the last version's reason");
        assert!(flat.contains("Wong Ka Man"), "{lang}");
    }
}

#[test]
fn pdftoppm_renders_every_page() {
    if skip("pdftoppm") || skip("pdfinfo") {
        return;
    }
    let path = write("render.pdf", &print(&cases().leave, Lang::Zh));
    let info = String::from_utf8(Command::new("pdfinfo").arg(&path).output().unwrap().stdout).unwrap();
    let pages: usize = info.lines().find_map(|l| l.strip_prefix("Pages:")).unwrap().trim().parse().unwrap();
    assert!(pages >= 2, "the form and the signature page at least: {info}");
    let prefix = path.with_file_name("page");
    let out = Command::new("pdftoppm").args(["-r", "40", "-png"]).arg(&path).arg(&prefix).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let rendered = std::fs::read_dir(path.parent().unwrap()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("page")).count();
    assert_eq!(rendered, pages);
}

#[test]
fn a_reader_without_the_role_gets_no_restricted_value() {
    if skip("pdftotext") {
        return;
    }
    let open = text_of(&write("medical-open.pdf", &print(&cases().medical_open, Lang::En)));
    assert!(open.contains("K35.2"), "HR reads the diagnosis:\n{open}");
    let withheld = text_of(&write("medical-withheld.pdf", &print(&cases().medical_withheld, Lang::En)));
    assert!(!withheld.contains("K35.2") && !withheld.contains("K35.8"), "no diagnosis for a reader without the role:\n{withheld}");
    assert!(withheld.contains("[restricted field, withheld]"), "{withheld}");
    assert!(withheld.contains("Your roles may not read these restricted fields"), "{withheld}");
}

#[test]
fn a_character_outside_the_font_is_refused_rather_than_drawn_as_a_box() {
    let h = &cases().h;
    let id = h.submit("p005", "absence-and-annual-leave", &leave("visit 𓀀 exhibition"), "pdf-missing-glyph");
    h.act(&id, "p003", "supervisor", Action::Approve);
    let bundle = h.export(&id, "p005");
    let people = |p: &str| p.to_string();
    let err = carimbo::pdf::render(&bundle, &bundle.to_bytes(), Lang::En, &people, Utc::now()).unwrap_err();
    assert!(matches!(err, PdfError::MissingGlyph { character: '𓀀', .. }), "{err}");
    assert_eq!(err.code(), "CARIMBO-E1402");
    assert!(err.to_string().contains("U+13000"), "{err}");
}

fn carimbo_pdf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carimbo")).arg("pdf").args(args).arg("--root").arg(repo()).output().unwrap()
}

#[test]
fn the_command_prints_a_bundle_offline_and_refuses_one_that_does_not_verify() {
    let bundle = cases().leave.to_bytes();
    let good = write("offline.json", &bundle);
    let data = good.with_file_name("cli-data");
    let out = good.with_file_name("offline.pdf");
    let run = carimbo_pdf(&["--bundle", good.to_str().unwrap(), "--lang", "pt", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let pdf = std::fs::read(&out).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.7"));
    if !skip("pdftotext") {
        let text = text_of(&out);
        assert!(text.contains("Página de assinaturas") && text.contains("HO CHI WAI"), "names from the certificates:\n{text}");
    }

    let tampered = String::from_utf8(bundle).unwrap().replacen(
        "family matters in Lisbon, tickets booked, substitute agreed",
        "family matters in Paris, tickets booked, substitute agreed",
        1,
    );
    let bad = write("tampered.json", tampered.as_bytes());
    let bad_out = good.with_file_name("tampered.pdf");
    let run = carimbo_pdf(&["--bundle", bad.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", bad_out.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("CARIMBO-E1406"), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(!bad_out.exists(), "nothing is written for a bundle that does not verify");

    let run = carimbo_pdf(&["--bundle", good.to_str().unwrap(), "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!run.status.success() && String::from_utf8_lossy(&run.stderr).contains("exists"), "an existing file is never overwritten");
    assert_eq!(std::fs::read(&out).unwrap(), pdf);
}

#[test]
fn a_hidden_character_in_peoples_text_is_printed_by_its_code_point() {
    if skip("pdftotext") {
        return;
    }
    let h = &cases().h;
    let id = h.submit("p005", "absence-and-annual-leave", &leave("approve\u{202E}reject"), "pdf-hidden-char");
    let text = text_of(&write("hidden.pdf", &print(&h.export(&id, "p005"), Lang::En)));
    assert!(text.contains("approve〈U+202E〉reject"), "{text}");
}

/// The PDF link of a case's page, fetched as the browser does (session cookie).
fn fetch_pdf(s: &common::server::TestServer, token: &str, id: &str, lang: &str) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent
        .get(format!("{}/cases/{id}/pdf?lang={lang}", s.base))
        .header("cookie", format!("{}={token}", carimbo::http::auth::SESSION_COOKIE))
        .call()
        .unwrap();
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (r.status().as_u16(), kind, r.body_mut().with_config().limit(32 << 20).read_to_vec().unwrap())
}

#[test]
fn the_case_page_links_a_sealed_pdf_that_the_server_makes_for_whoever_may_see_the_case() {
    let s = common::server::TestServer::start();
    let staff = s.login("p005").by_cookie();
    let id = staff.submit_ok("absence-and-annual-leave", &common::server::leave(1), "pdf-page");
    let page = staff.get(&format!("/cases/{id}"));
    assert!(page.body.as_str().is_some_and(|b| b.contains(&format!("href=\"/cases/{id}/pdf\""))), "{}", page.body);
    let (status, kind, pdf) = fetch_pdf(&s, staff.token.as_deref().unwrap(), &id, "pt");
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-1.7"));
    if !skip("pdftotext") {
        let text = text_of(&write("served.pdf", &pdf));
        assert!(text.contains("Boletim de faltas e férias") && text.contains("Página de assinaturas"), "{text}");
    }
    if !skip("pyhanko") {
        let (ok, out) = check("seal", &write("served-seal.pdf", &pdf));
        assert!(ok && out.contains("\"timestamp\": true"), "the server's seal is B-T with its TSA: {out}");
    }
    let author = s.login("p031");
    let (status, kind, _) = fetch_pdf(&s, author.token.as_deref().unwrap(), &id, "en");
    assert_eq!(status, 404, "no document of a case one may not see");
    assert!(kind.starts_with("text/html"), "{kind}");
}

#[test]
fn without_time_stamping_the_seal_is_b_b_and_a_failing_tsa_gives_no_document() {
    let dir = cases().h.service.directory();
    let people = |p: &str| carimbo::http::pages::person_label(Lang::En, &dir, p);
    let off = |_: &[u8]| Ok(None);
    let pdf = carimbo::pdf::print(&cases().leave, Lang::En, &people, &seal_key(), &off, Utc::now()).unwrap();
    if !skip("pyhanko") {
        let (ok, out) = check("seal", &write("b-b.pdf", &pdf));
        assert!(ok && out.contains("\"timestamp\": false"), "{out}");
    }
    let down = |_: &[u8]| Err(carimbo::signing::timestamp::TimeStampError::Unaccepted("no TSA answered".into()));
    let err = carimbo::pdf::print(&cases().leave, Lang::En, &people, &seal_key(), &down, Utc::now()).unwrap_err();
    assert_eq!((err.code(), err.status()), ("CARIMBO-E1405", 503), "{err}");
}

#[test]
fn an_act_under_delegation_names_the_delegate_the_principal_and_the_delegation() {
    if skip("pdftotext") {
        return;
    }
    let h = &cases().h;
    // p017's supervisor is p015, whose delegate this month is p016 (d-2026-001).
    let id = h.submit("p017", "absence-and-annual-leave", &leave("delegated decision"), "pdf-delegation");
    h.act(&id, "p016", "supervisor", Action::Approve);
    let text = text_of(&write("delegation.pdf", &print(&h.export(&id, "p017"), Lang::En)));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Tang Kam Fai (p016) for Lao Sio Fan (p015) under delegation d-2026-001"), "{text}");
}
