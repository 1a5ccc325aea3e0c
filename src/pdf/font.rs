//! The one typeface of the printable record and its subset embedded in each document.
//!
//! carimbo ships a subset of Noto Sans CJK TC Regular (SIL Open Font License 1.1, see
//! `assets/pdf/README.md`): traditional Chinese as written in Macau, Portuguese and English in
//! one face, so a document renders the same on a machine without any font installed. Each PDF
//! embeds only the glyphs it uses (`subsetter`, typst's subsetter), as a CID-keyed CFF font
//! addressed by the subset's glyph ids (Identity-H), with a ToUnicode map so the text can be
//! searched and extracted. Glyphs are placed one per character (no shaping): Chinese, Portuguese
//! and English need no ligatures or reordering. A character the face has no glyph for is
//! refused (`CARIMBO-E1402`), never drawn as an empty box.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Filter, Finish, Name, Rect, Ref, Str};
use subsetter::GlyphRemapper;

use super::PdfError;

/// The shipped subset (about 1.4 MB; `assets/pdf/make_font.py` makes it).
static FACE_BYTES: &[u8] = include_bytes!("../../assets/pdf/NotoSansCJKtc-Regular-subset.otf");
/// The PostScript name of the face.
const FACE_NAME: &str = "NotoSansCJKtc-Regular";

/// The face and the glyphs one document has used so far.
pub struct DocumentFont {
    face: ttf_parser::Face<'static>,
    units_per_em: f32,
    remapper: GlyphRemapper,
    /// New glyph id → the text it stands for (for ToUnicode).
    text_of: BTreeMap<u16, char>,
    /// New glyph id → advance in thousandths of an em.
    widths: BTreeMap<u16, f32>,
}

impl DocumentFont {
    pub fn new() -> Result<DocumentFont, PdfError> {
        let face = ttf_parser::Face::parse(FACE_BYTES, 0).map_err(|e| PdfError::Font(format!("the shipped font does not parse: {e}")))?;
        let units_per_em = f32::from(face.units_per_em());
        Ok(DocumentFont { face, units_per_em, remapper: GlyphRemapper::new(), text_of: BTreeMap::new(), widths: BTreeMap::new() })
    }

    /// Whether the face can draw `c` (ignoring characters that draw nothing).
    pub fn covers(&self, c: char) -> bool {
        c.is_control() || self.face.glyph_index(c).is_some()
    }

    /// The advance of `c` at `size` points (0 for characters that draw nothing).
    pub fn advance(&self, c: char, size: f32) -> f32 {
        if c.is_control() {
            return 0.0;
        }
        let gid = self.face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
        f32::from(self.face.glyph_hor_advance(gid).unwrap_or(0)) / self.units_per_em * size
    }

    /// The width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c, size)).sum()
    }

    /// The bytes that show `text` with this font (two bytes per glyph, Identity-H), recording
    /// every glyph used. The caller has checked coverage (`check_text`).
    pub fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars().filter(|c| !c.is_control()) {
            let Some(old) = self.face.glyph_index(c) else { continue };
            let new = self.remapper.remap(old.0);
            self.text_of.entry(new).or_insert(c);
            let advance = f32::from(self.face.glyph_hor_advance(old).unwrap_or(0)) * 1000.0 / self.units_per_em;
            self.widths.insert(new, advance);
            out.extend_from_slice(&new.to_be_bytes());
        }
        out
    }

    /// Writes the Type 0 font `font_ref` (and its CID font, descriptor, program and ToUnicode
    /// map, numbered from `next`) into `chunk`. Returns the next free reference.
    pub fn write(&self, chunk: &mut Chunk, font_ref: Ref, mut next: Ref) -> Result<Ref, PdfError> {
        let mut alloc = || {
            let r = next;
            next = Ref::new(next.get() + 1);
            r
        };
        let (cid_ref, descriptor_ref, program_ref, cmap_ref) = (alloc(), alloc(), alloc(), alloc());
        let subset = subsetter::subset(FACE_BYTES, 0, &self.remapper).map_err(|e| PdfError::Font(format!("the font cannot be subset: {e}")))?;
        let cff = ttf_parser::RawFace::parse(&subset, 0)
            .ok()
            .and_then(|raw| raw.table(ttf_parser::Tag::from_bytes(b"CFF ")))
            .ok_or_else(|| PdfError::Font("the font subset has no CFF table".into()))?
            .to_vec();
        let base = format!("{}+{FACE_NAME}", subset_tag(&self.remapper));
        let system_info = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };

        chunk.type0_font(font_ref).base_font(Name(base.as_bytes())).encoding_predefined(Name(b"Identity-H")).descendant_font(cid_ref).to_unicode(cmap_ref);

        let mut cid = chunk.cid_font(cid_ref);
        cid.subtype(CidFontType::Type0).base_font(Name(base.as_bytes())).system_info(system_info).font_descriptor(descriptor_ref).default_width(0.0);
        {
            let mut widths = cid.widths();
            for (gid, w) in &self.widths {
                widths.consecutive(*gid, [*w]);
            }
        }
        cid.finish();

        let s = 1000.0 / self.units_per_em;
        let bbox = self.face.global_bounding_box();
        let cap_height = self.face.capital_height().map(f32::from).unwrap_or(733.0);
        chunk
            .font_descriptor(descriptor_ref)
            .name(Name(base.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(f32::from(bbox.x_min) * s, f32::from(bbox.y_min) * s, f32::from(bbox.x_max) * s, f32::from(bbox.y_max) * s))
            .italic_angle(0.0)
            .ascent(f32::from(self.face.ascender()) * s)
            .descent(f32::from(self.face.descender()) * s)
            .cap_height(cap_height * s)
            .stem_v(80.0)
            .font_file3(program_ref);

        let compressed = super::deflate(&cff);
        chunk.stream(program_ref, &compressed).filter(Filter::FlateDecode).pair(Name(b"Subtype"), Name(b"CIDFontType0C"));

        let mut cmap = UnicodeCmap::new(Name(b"Custom"), system_info);
        for (gid, c) in &self.text_of {
            cmap.pair(*gid, *c);
        }
        let cmap = cmap.finish();
        chunk.cmap(cmap_ref, &cmap).name(Name(b"Custom")).system_info(system_info);
        Ok(next)
    }
}

/// The six capital letters ISO 32000 §9.6.4 asks a subset's name to begin with, derived from
/// the glyphs it holds (the same subset, the same tag).
fn subset_tag(remapper: &GlyphRemapper) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for g in remapper.remapped_gids() {
        h.update(g.to_be_bytes());
    }
    h.finalize().iter().take(6).map(|b| char::from(b'A' + b % 26)).collect()
}
