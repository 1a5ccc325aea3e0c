//! The PDF/A-3b file around the drawn pages (ISO 19005-3): XMP metadata naming the
//! conformance level, an sRGB output intent, the one embedded font, the evidence bundle as an
//! associated file (`/AF`, relationship `Source`: the record the document was drawn from), and
//! an empty PAdES signature field whose `/Contents` the seal fills in afterwards
//! (`seal::seal`). No JavaScript, no actions, no external references.

use chrono::{DateTime, Datelike, Timelike, Utc};
use pdf_writer::types::{AnnotationFlags, AssociationKind, FieldType, OutputIntentSubtype, SigFlags};
use pdf_writer::{Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::PdfError;
use super::font::DocumentFont;
use super::layout::{FONT_NAME, PAGE_H, PAGE_W};
use super::record::Record;

/// The sRGB profile of the output intent: Little CMS's built-in sRGB (IEC 61966-2.1), written
/// by Pillow's `ImageCms.createProfile("sRGB")`; its copyright tag reads "No copyright, use
/// freely" (`assets/pdf/README.md`).
static SRGB_ICC: &[u8] = include_bytes!("../../assets/pdf/sRGB-lcms.icc");

/// Bytes reserved for the CMS signature (hex-encoded, twice as many characters): the service
/// certificate chain, a time-stamp token with the TSA's certificate and the signature fit in
/// a quarter of it.
pub const SIGNATURE_BYTES: usize = 24 * 1024;
/// What `/ByteRange` holds until the seal knows the offsets; each number is replaced by one of
/// the same width (ten digits, zero-padded), so no offset in the file moves.
pub const BYTE_RANGE_PLACEHOLDER: &str = "[0 2000000000 2000000000 2000000000]";

fn pdf_date(t: &DateTime<Utc>) -> Date {
    Date::new(t.year() as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

fn xmp_date(t: &DateTime<Utc>) -> xmp_writer::DateTime {
    xmp_writer::DateTime {
        year: t.year() as u16,
        month: Some(t.month() as u8),
        day: Some(t.day() as u8),
        hour: Some(t.hour() as u8),
        minute: Some(t.minute() as u8),
        second: Some(t.second() as u8),
        timezone: Some(xmp_writer::Timezone::Utc),
    }
}

fn lang_tag(r: &Record) -> &'static str {
    match r.lang {
        crate::i18n::Lang::Zh => "zh-Hant-MO",
        crate::i18n::Lang::Pt => "pt-MO",
        crate::i18n::Lang::En => "en",
    }
}

/// Allocates object numbers in order.
struct Refs(i32);

impl Refs {
    fn next(&mut self) -> Ref {
        self.0 += 1;
        Ref::new(self.0)
    }
}

/// The whole file, its seal not yet made.
pub fn assemble(r: &Record, font: &mut DocumentFont, contents: Vec<Content>, bundle: &[u8], now: DateTime<Utc>) -> Result<Vec<u8>, PdfError> {
    let mut refs = Refs(0);
    let (catalog, pages_ref, font_ref) = (refs.next(), refs.next(), refs.next());
    let (metadata, icc, file_spec, embedded, field, sig) = (refs.next(), refs.next(), refs.next(), refs.next(), refs.next(), refs.next());
    let page_refs: Vec<(Ref, Ref)> = contents.iter().map(|_| (refs.next(), refs.next())).collect();
    let last_page = page_refs.last().map(|p| p.0).ok_or_else(|| PdfError::Bundle("the document has no page".into()))?;
    let mut pdf = Pdf::new();
    let digest = crate::evidence::sha256_hex(bundle);
    let id = hex::decode(&digest[..32]).unwrap_or_default();
    pdf.set_file_id((id.clone(), id));

    let bundle_name = format!("evidence-{}.json", r.case_id);
    {
        let mut cat = pdf.catalog(catalog);
        cat.pages(pages_ref).metadata(metadata).lang(TextStr(lang_tag(r)));
        cat.output_intents()
            .push()
            .subtype(OutputIntentSubtype::PDFA)
            .output_condition_identifier(TextStr("sRGB IEC61966-2.1"))
            .info(TextStr("sRGB IEC61966-2.1"))
            .dest_output_profile(icc);
        cat.names().embedded_files().names().insert(Str(bundle_name.as_bytes()), file_spec);
        cat.insert(Name(b"AF")).array().item(file_spec);
        cat.form().fields([field]).sig_flags(SigFlags::SIGNATURES_EXIST | SigFlags::APPEND_ONLY);
        cat.viewer_preferences().display_doc_title(true);
    }

    pdf.pages(pages_ref).kids(page_refs.iter().map(|p| p.0)).count(page_refs.len() as i32);
    for (i, (content, (page_ref, content_ref))) in contents.into_iter().zip(&page_refs).enumerate() {
        let mut page = pdf.page(*page_ref);
        page.parent(pages_ref).media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H)).contents(*content_ref);
        page.resources().fonts().pair(Name(FONT_NAME), font_ref);
        if i + 1 == page_refs.len() {
            page.annotations([field]);
        }
        page.finish();
        let compressed = super::deflate(&content.finish());
        pdf.stream(*content_ref, &compressed).filter(Filter::FlateDecode);
    }
    let next = Ref::new(refs.0 + 1);
    font.write(&mut pdf, font_ref, next)?;

    let xmp = metadata_xml(r, now);
    pdf.metadata(metadata, xmp.as_bytes());
    pdf.icc_profile(icc, SRGB_ICC).n(3);

    let compressed = super::deflate(bundle);
    {
        let mut ef = pdf.embedded_file(embedded, &compressed);
        ef.filter(Filter::FlateDecode);
        ef.subtype(Name(b"application/json"));
        ef.params().size(bundle.len() as i32).modification_date(pdf_date(&now));
    }
    pdf.file_spec(file_spec)
        .path(Str(bundle_name.as_bytes()))
        .unic_file(TextStr(&bundle_name))
        .description(TextStr("carimbo evidence bundle: the machine-checkable record (carimbo verify)"))
        .association_kind(AssociationKind::Source)
        .embedded_file_with_unicode(embedded);

    {
        let mut f = pdf.form_field(field);
        f.partial_name(TextStr("carimbo-seal")).field_type(FieldType::Signature);
        f.pair(Name(b"V"), sig);
        let mut annot = f.into_annotation();
        annot.rect(Rect::new(0.0, 0.0, 0.0, 0.0)).flags(AnnotationFlags::PRINT | AnnotationFlags::LOCKED).page(last_page);
    }
    {
        // Not ASCII, so pdf-writer writes a hex string (`<FFFF…>`) of a known width.
        let zeros = vec![0xFFu8; SIGNATURE_BYTES];
        let mut d = pdf.indirect(sig).dict();
        d.pair(Name(b"Type"), Name(b"Sig"));
        d.pair(Name(b"Filter"), Name(b"Adobe.PPKLite"));
        d.pair(Name(b"SubFilter"), Name(b"ETSI.CAdES.detached"));
        d.insert(Name(b"ByteRange")).array().items([0, 2_000_000_000, 2_000_000_000, 2_000_000_000]);
        d.pair(Name(b"Contents"), Str(&zeros));
        d.pair(Name(b"M"), pdf_date(&now));
        d.pair(Name(b"Reason"), TextStr("carimbo: sealed record of the case"));
    }
    Ok(pdf.finish())
}

fn metadata_xml(r: &Record, now: DateTime<Utc>) -> String {
    let mut x = xmp_writer::XmpWriter::new();
    let title = format!("{} — {}", r.title, r.case_id);
    x.title([(None, title.as_str())]);
    x.language([xmp_writer::LangId(lang_tag(r))]);
    x.creator(["carimbo"]);
    x.format("application/pdf");
    x.create_date(xmp_date(&now));
    x.modify_date(xmp_date(&now));
    x.metadata_date(xmp_date(&now));
    x.creator_tool(concat!("carimbo ", env!("CARGO_PKG_VERSION")));
    x.producer(concat!("carimbo ", env!("CARGO_PKG_VERSION"), " (pdf-writer)"));
    x.pdfa_part(3);
    x.pdfa_conformance("B");
    x.finish(None)
}
