//! How a case's facts read in words, in zh / pt / en, for everything that shows a case to a
//! person: the pages (`http::pages`), the printed record (`pdf`) and the mails (`notify::mail`).
//! One copy, so a status, a signature level, an act or a time reads the same on the screen, on
//! paper and in a mail. Pure: no I/O, no clock (times come in).

use crate::i18n::Lang;
use crate::workflow::{Action, Level};
use chrono::{DateTime, FixedOffset, Utc};

/// A text in the three languages, picked by the reader's language.
pub fn t(lang: Lang, zh: &'static str, pt: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::Pt => pt,
        Lang::En => en,
    }
}

/// Macau's offset from UTC. Macau has kept UTC+8 with no daylight saving since 1979, so the
/// fixed offset is exact for every time carimbo records; a time-zone database would add
/// nothing for this one zone.
pub fn macau() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A time as people read it: Macau time (Asia/Macau), to the minute, labelled in the reader's
/// language. Records, bundles and the API keep UTC.
pub fn when(lang: Lang, at: &DateTime<Utc>) -> String {
    let local = at.with_timezone(&macau()).format("%Y-%m-%d %H:%M");
    match lang {
        Lang::Zh => format!("{local}（澳門時間）"),
        Lang::Pt => format!("{local} (hora de Macau)"),
        Lang::En => format!("{local} (Macau time)"),
    }
}

/// A case status.
pub fn status_label(lang: Lang, status: &str) -> &'static str {
    match status {
        "open" => t(lang, "處理中", "Em curso", "In progress"),
        "returned" => t(lang, "已退回修改", "Devolvido para correção", "Returned for correction"),
        "completed" => t(lang, "已完成", "Concluído", "Completed"),
        "rejected" => t(lang, "不批准", "Indeferido", "Rejected"),
        "withdrawn" => t(lang, "已撤回", "Retirado", "Withdrawn"),
        _ => t(lang, "未知", "Desconhecido", "Unknown"),
    }
}

/// A signature level (Law 5/2005's simple, advanced, qualified).
pub fn level_label(lang: Lang, level: Level) -> &'static str {
    match level {
        Level::Simple => t(lang, "簡單電子簽名", "assinatura simples", "simple signature"),
        Level::Advanced => t(lang, "進階電子簽名", "assinatura avançada", "advanced signature"),
        Level::Qualified => t(lang, "合格電子簽名", "assinatura qualificada", "qualified signature"),
    }
}

/// What an approver did, as a verb after their name.
pub fn action_label(lang: Lang, a: Action) -> &'static str {
    match a {
        Action::Approve => t(lang, "批准", "aprovou", "approved"),
        Action::Reject => t(lang, "不批准", "indeferiu", "rejected"),
        Action::Return => t(lang, "退回修改", "devolveu para correção", "returned for correction"),
        Action::Sign => t(lang, "簽署", "assinou", "signed"),
    }
}

/// Characters that change how the text around them reads without showing themselves: control
/// characters (C0 but tab and line breaks, DEL, C1), the bidirectional embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069, U+061C), and the zero-width ones (U+200B–U+200F,
/// U+2060–U+2064, U+FEFF). An approver's comment with U+202E can make "approve" read as its
/// reverse, and a name with a zero-width space looks like another person's (Unicode TR #36, §2;
/// the "Trojan Source" attack, CVE-2021-42574). Text keeps them as typed and signed; pages and
/// the printed record only show them.
pub fn is_hidden_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A hidden character as it is shown: `⟨U+202E⟩`.
pub fn char_name(c: char) -> String {
    format!("⟨U+{:04X}⟩", c as u32)
}

/// Text with every hidden character written out as `⟨U+XXXX⟩` (for titles, labels, names).
pub fn visible(s: &str) -> String {
    if !s.chars().any(is_hidden_char) {
        return s.to_string();
    }
    s.chars().map(|c| if is_hidden_char(c) { char_name(c) } else { c.to_string() }).collect()
}
