//! Drawing a `Record` on A4 pages: the form's title and legal basis, the case facts, each
//! section with its fields (label beside value, lists of rows as tables), and the signature
//! page. Text wraps at spaces in Latin text and between any two Chinese characters.

use pdf_writer::{Content, Name, Str};

use super::PdfError;
use super::font::DocumentFont;
use super::record::{Item, Record, Shown, SignatureLine, withheld_text};
use crate::i18n::Lang;
use crate::wording::{t, when};

pub const PAGE_W: f32 = 595.276;
pub const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 50.0;
const BOTTOM: f32 = 60.0;
const BODY: f32 = 9.5;
const SMALL: f32 = 7.5;
const LEADING: f32 = 1.45;
const LABEL_W: f32 = 160.0;
pub const FONT_NAME: &[u8] = b"F1";

/// The pages being drawn and where the next line goes.
pub struct Pages<'f> {
    pub font: &'f mut DocumentFont,
    pub done: Vec<Content>,
    page: Content,
    y: f32,
}

impl<'f> Pages<'f> {
    pub fn new(font: &'f mut DocumentFont) -> Pages<'f> {
        Pages { font, done: Vec::new(), page: Content::new(), y: PAGE_H - MARGIN }
    }

    fn new_page(&mut self) {
        let page = std::mem::replace(&mut self.page, Content::new());
        self.done.push(page);
        self.y = PAGE_H - MARGIN;
    }

    /// Starts a new page unless `height` still fits on this one.
    fn room(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.new_page();
        }
    }

    /// Draws one line of text with its baseline at `y`.
    fn text_at(&mut self, x: f32, y: f32, size: f32, text: &str, grey: f32) {
        let bytes = self.font.encode(text);
        self.page.set_fill_rgb(grey, grey, grey);
        self.page.begin_text();
        self.page.set_font(Name(FONT_NAME), size);
        self.page.next_line(x, y);
        self.page.show(Str(&bytes));
        self.page.end_text();
    }

    fn rule(&mut self, x0: f32, x1: f32, y: f32, grey: f32) {
        self.page.set_stroke_rgb(grey, grey, grey);
        self.page.set_line_width(0.5);
        self.page.move_to(x0, y);
        self.page.line_to(x1, y);
        self.page.stroke();
    }

    /// A paragraph at `x`, `width` wide, starting on a new page when it would not fit.
    fn paragraph(&mut self, x: f32, width: f32, size: f32, text: &str, grey: f32) {
        for line in wrap(self.font, text, width, size) {
            self.room(size * LEADING);
            self.y -= size * LEADING;
            self.text_at(x, self.y, size, &line, grey);
        }
    }

    fn gap(&mut self, h: f32) {
        self.y -= h;
    }

    /// Label on the left, value on the right, both wrapped; kept together on one page.
    fn field(&mut self, label: &str, value: &str, note: Option<&str>) {
        let x = MARGIN;
        let vx = MARGIN + LABEL_W + 10.0;
        let vw = PAGE_W - MARGIN - vx;
        let labels = wrap(self.font, label, LABEL_W, BODY);
        let mut values = wrap(self.font, value, vw, BODY);
        if let Some(note) = note {
            values.extend(wrap(self.font, note, vw, SMALL));
        }
        let lines = labels.len().max(values.len()).max(1);
        let h = lines as f32 * BODY * LEADING + 4.0;
        self.room(h);
        let top = self.y;
        for (i, l) in labels.iter().enumerate() {
            self.text_at(x, top - (i as f32 + 1.0) * BODY * LEADING, BODY, l, 0.35);
        }
        for (i, v) in values.iter().enumerate() {
            let size = if note.is_some() && i + 1 == values.len() { SMALL } else { BODY };
            self.text_at(vx, top - (i as f32 + 1.0) * BODY * LEADING, size, v, 0.0);
        }
        self.y = top - h;
        self.rule(MARGIN, PAGE_W - MARGIN, self.y + 2.0, 0.85);
    }

    fn heading(&mut self, text: &str, size: f32) {
        self.room(size * 2.0 + BODY * LEADING * 2.0);
        self.gap(size * 0.6);
        self.paragraph(MARGIN, PAGE_W - 2.0 * MARGIN, size, text, 0.1);
        self.gap(3.0);
        self.rule(MARGIN, PAGE_W - MARGIN, self.y, 0.3);
    }

    /// A list of rows: a header line and one line group per row, columns of equal width.
    fn table(&mut self, columns: &[(String, bool)], rows: &[Vec<Shown>], lang: Lang) {
        let n = columns.len().max(1);
        let cw = (PAGE_W - 2.0 * MARGIN) / n as f32;
        let computed = t(lang, "（計算）", " (calc.)", " (computed)");
        let header: Vec<String> = columns.iter().map(|(c, comp)| if *comp { format!("{c}{computed}") } else { c.clone() }).collect();
        self.row(&header, cw, SMALL, 0.35);
        for r in rows {
            let cells: Vec<String> = r.iter().map(|s| shown_text(s, lang)).collect();
            self.row(&cells, cw, BODY, 0.0);
        }
        self.gap(4.0);
    }

    fn row(&mut self, cells: &[String], cw: f32, size: f32, grey: f32) {
        let wrapped: Vec<Vec<String>> = cells.iter().map(|c| wrap(self.font, c, cw - 6.0, size)).collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let h = lines as f32 * size * LEADING + 3.0;
        self.room(h);
        let top = self.y;
        for (i, cell) in wrapped.iter().enumerate() {
            for (j, l) in cell.iter().enumerate() {
                self.text_at(MARGIN + i as f32 * cw, top - (j as f32 + 1.0) * size * LEADING, size, l, grey);
            }
        }
        self.y = top - h;
        self.rule(MARGIN, PAGE_W - MARGIN, self.y + 1.5, 0.8);
    }

    /// The last page under way, then every page.
    pub fn finish(mut self) -> Vec<Content> {
        self.new_page();
        self.done
    }
}

pub fn shown_text(s: &Shown, lang: Lang) -> String {
    match s {
        Shown::Text(t) => t.clone(),
        Shown::Withheld => withheld_text(lang).to_string(),
        Shown::Empty => "—".to_string(),
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
}

/// People's text as the document draws it: every hidden character (bidirectional overrides,
/// zero-width characters, controls) shown by its code point as the pages show it
/// (`pages::visible`), so it cannot turn the text around it; the pages' ⟨ ⟩ become the
/// CJK brackets 〈 〉 the font has.
pub fn printable(text: &str) -> String {
    crate::wording::visible(text).replace('⟨', "〈").replace('⟩', "〉")
}

/// Greedy line breaking: after a space, or before and after a Chinese character; a word longer
/// than the line is cut where it overflows.
pub fn wrap(font: &DocumentFont, text: &str, width: f32, size: f32) -> Vec<String> {
    let mut out = Vec::new();
    let text = printable(text);
    for para in text.split('\n') {
        let chars: Vec<char> = para.chars().collect();
        let mut start = 0;
        while start < chars.len() {
            let mut w = 0.0;
            let mut end = start;
            let mut last_break = None;
            while end < chars.len() {
                let cw = font.advance(chars[end], size);
                if w + cw > width && end > start {
                    break;
                }
                w += cw;
                if chars[end] == ' ' || is_cjk(chars[end]) || chars.get(end + 1).is_some_and(|c| is_cjk(*c)) {
                    last_break = Some(end + 1);
                }
                end += 1;
            }
            if end < chars.len()
                && let Some(b) = last_break.filter(|b| *b > start)
            {
                end = b;
            }
            out.push(chars[start..end].iter().collect::<String>().trim_end().to_string());
            start = end;
            while start < chars.len() && chars[start] == ' ' {
                start += 1;
            }
        }
        if chars.is_empty() {
            out.push(String::new());
        }
    }
    out
}

/// Every character of the record the font can draw, or the first one it cannot.
pub fn check_coverage(font: &DocumentFont, record: &Record, texts: &[String]) -> Result<(), PdfError> {
    for text in texts {
        let text = printable(text);
        if let Some(c) = text.chars().find(|c| !font.covers(*c)) {
            return Err(PdfError::MissingGlyph { character: c, context: text.chars().take(60).collect(), case: record.case_id.clone() });
        }
    }
    Ok(())
}

/// Draws the whole record.
pub fn draw(pages: &mut Pages, r: &Record) {
    let lang = r.lang;
    let full = PAGE_W - 2.0 * MARGIN;
    pages.paragraph(MARGIN, full, 16.0, &r.title, 0.05);
    for other in &r.other_titles {
        pages.paragraph(MARGIN, full, 11.0, other, 0.3);
    }
    pages.gap(2.0);
    pages.paragraph(MARGIN, full, SMALL, &format!("{}{}", t(lang, "法律依據：", "Base legal: ", "Legal basis: "), r.legal_basis), 0.3);
    pages.gap(6.0);
    pages.field(
        t(lang, "個案編號", "Processo n.º", "Case"),
        &format!("{} · {} {}", r.case_id, t(lang, "表格版本", "versão do formulário", "form version"), r.form_version),
        None,
    );
    pages.field(t(lang, "申請人", "Requerente", "Applicant"), &r.applicant, None);
    if let Some(s) = &r.submitter {
        pages.field(t(lang, "提交人", "Submetido por", "Submitted by"), s, None);
    }
    pages.field(t(lang, "提交日期", "Submetido em", "Submitted"), &when(lang, &r.opened_at), None);
    pages.field(t(lang, "狀態", "Estado", "Status"), &format!("{} · {}", r.status, when(lang, &r.status_at)), None);
    if !r.withheld.is_empty() {
        let note = match lang {
            Lang::Zh => format!("閣下的角色無權查看以下限閱欄位，本文件不載其內容：{}", r.withheld.join("、")),
            Lang::Pt => format!("O seu perfil não dá acesso a estes campos reservados, que este documento não mostra: {}", r.withheld.join(", ")),
            Lang::En => format!("Your roles may not read these restricted fields, so this document leaves them out: {}", r.withheld.join(", ")),
        };
        pages.gap(4.0);
        pages.paragraph(MARGIN, full, SMALL, &note, 0.2);
    }
    let computed_note = t(lang, "由系統計算", "calculado pelo sistema", "computed by carimbo");
    for section in &r.sections {
        pages.heading(&section.title, 12.0);
        for item in &section.items {
            match item {
                Item::Field { label, value, computed } => pages.field(label, &shown_text(value, lang), computed.then_some(computed_note)),
                Item::Table { label, columns, rows } => {
                    pages.room(BODY * LEADING * 3.0);
                    pages.gap(2.0);
                    pages.paragraph(MARGIN, full, BODY, label, 0.35);
                    pages.table(columns, rows, lang);
                }
            }
        }
    }
    signature_page(pages, r);
}

fn signature_page(pages: &mut Pages, r: &Record) {
    let lang = r.lang;
    let full = PAGE_W - 2.0 * MARGIN;
    pages.new_page();
    pages.paragraph(MARGIN, full, 14.0, t(lang, "簽署頁", "Página de assinaturas", "Signature page"), 0.05);
    pages.paragraph(MARGIN, full, SMALL, &r.title, 0.3);
    pages.gap(4.0);
    for (i, s) in r.signatures.iter().enumerate() {
        signature_block(pages, i + 1, s, lang);
    }
    pages.heading(t(lang, "個案最終狀態", "Estado final do processo", "Final state of the case"), 11.0);
    pages.field(t(lang, "狀態", "Estado", "Status"), &format!("{} · {}", r.status, when(lang, &r.status_at)), None);
    let record_line = match lang {
        Lang::Zh => format!(
            "紀錄共 {} 個事件，最後事件雜湊 sha256:{}；證據包於 {} 匯出，附於本文件內（evidence-{}.json），可以 carimbo verify 離線核實。",
            r.events, r.last_hash, r.exported_at, r.case_id
        ),
        Lang::Pt => format!(
            "O registo tem {} eventos, último hash sha256:{}; o pacote de prova exportado em {} vai anexo a este documento (evidence-{}.json) e verifica-se offline com carimbo verify.",
            r.events, r.last_hash, r.exported_at, r.case_id
        ),
        Lang::En => format!(
            "The record holds {} events, last hash sha256:{}; the evidence bundle exported at {} is attached to this document (evidence-{}.json) and checks offline with carimbo verify.",
            r.events, r.last_hash, r.exported_at, r.case_id
        ),
    };
    pages.gap(4.0);
    pages.paragraph(MARGIN, full, SMALL, &record_line, 0.25);
    let seal_line = t(
        lang,
        "本文件以服務電子印章（PAdES）封存；任何修改都會令印章失效。",
        "Este documento está selado com o selo eletrónico do serviço (PAdES); qualquer alteração invalida o selo.",
        "This document is sealed with the service's electronic seal (PAdES); any change to it breaks the seal.",
    );
    pages.paragraph(MARGIN, full, SMALL, seal_line, 0.25);
}

fn signature_block(pages: &mut Pages, n: usize, s: &SignatureLine, lang: Lang) {
    pages.heading(&format!("{n}. {}", s.what), 10.5);
    let mut person = s.person.clone();
    if let Some(b) = &s.on_behalf {
        person = format!("{person} {b}");
    }
    pages.field(t(lang, "簽署人", "Signatário", "Signed by"), &person, None);
    if let Some(seat) = &s.seat {
        pages.field(t(lang, "角色及席位", "Função e lugar", "Role and seat"), seat, None);
    }
    let factor = if s.second_factor { t(lang, "，已驗證第二重認證", ", com segundo fator verificado", ", second factor verified") } else { "" };
    pages.field(t(lang, "簽署級別", "Nível de assinatura", "Level"), &format!("{}{factor}", s.level), None);
    if let Some(subject) = &s.subject {
        pages.field(t(lang, "證書主體", "Titular do certificado", "Certificate subject"), subject, None);
    }
    if let Some(issuer) = &s.issuer {
        pages.field(t(lang, "證書簽發者", "Emissor do certificado", "Certificate issuer"), issuer, None);
    }
    pages.field(t(lang, "簽署時間", "Hora da assinatura", "Signing time"), &when(lang, &s.signed_at), None);
    let stamp = match &s.stamped_at {
        Some(at) => when(lang, at),
        None => t(lang, "無（只有簽署人聲稱的時間）", "nenhum (só a hora declarada pelo signatário)", "none (the signer's claimed time only)").to_string(),
    };
    pages.field(t(lang, "時間戳記", "Carimbo temporal", "Time-stamp"), &stamp, None);
    if let Some(c) = &s.comment {
        pages.field(t(lang, "意見", "Comentário", "Comment"), c, None);
    }
}

/// The footer of every page: case, page n of N.
pub fn footers(contents: &mut [Content], font: &mut DocumentFont, r: &Record) {
    let total = contents.len();
    for (i, c) in contents.iter_mut().enumerate() {
        let text = match r.lang {
            Lang::Zh => format!("{} · 第 {} 頁，共 {} 頁", r.case_id, i + 1, total),
            Lang::Pt => format!("{} · página {} de {}", r.case_id, i + 1, total),
            Lang::En => format!("{} · page {} of {}", r.case_id, i + 1, total),
        };
        let bytes = font.encode(&text);
        c.set_fill_rgb(0.4, 0.4, 0.4);
        c.begin_text();
        c.set_font(Name(FONT_NAME), SMALL);
        c.next_line(MARGIN, 32.0);
        c.show(Str(&bytes));
        c.end_text();
    }
}

/// Every text the document will draw (for the coverage check before drawing).
pub fn texts(r: &Record) -> Vec<String> {
    let mut out = vec![r.title.clone(), r.legal_basis.clone(), r.applicant.clone(), r.status.clone()];
    out.extend(r.other_titles.iter().cloned());
    out.extend(r.submitter.iter().cloned());
    out.extend(r.withheld.iter().cloned());
    for s in &r.sections {
        out.push(s.title.clone());
        for item in &s.items {
            match item {
                Item::Field { label, value, .. } => {
                    out.push(label.clone());
                    out.push(shown_text(value, r.lang));
                }
                Item::Table { label, columns, rows } => {
                    out.push(label.clone());
                    out.extend(columns.iter().map(|c| c.0.clone()));
                    out.extend(rows.iter().flatten().map(|v| shown_text(v, r.lang)));
                }
            }
        }
    }
    for s in &r.signatures {
        out.extend([s.what.clone(), s.person.clone(), s.level.clone()]);
        out.extend(s.on_behalf.iter().chain(&s.seat).chain(&s.subject).chain(&s.issuer).chain(&s.comment).cloned());
    }
    out
}
