//! What each error code means, served by the server itself at `/docs/errors` (the address every
//! problem's `type` names, `/docs/errors#carimbo-e0721`): the rows of `docs/errors.md` and
//! `docs/errors-signing.md`, compiled in, each with its code as the anchor, so a code on any page
//! links to its explanation even where the repository is out of reach. The short message of a
//! code is shown in the reader's language where carimbo has one; the explanation itself is the
//! documentation's, in English, and marked so (`lang="en"`).

use super::{PageLang, layout, page, t};
use crate::http::auth::Caller;
use crate::i18n::Lang;
use axum::response::Response;
use maud::{Markup, html};

const DOCS: [&str; 2] = [include_str!("../../../docs/errors.md"), include_str!("../../../docs/errors-signing.md")];

/// One section of the documentation: its heading and its code rows (code, what, why, what to do).
struct Section {
    heading: String,
    rows: Vec<[String; 4]>,
}

fn sections() -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for doc in DOCS {
        for line in doc.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                out.push(Section { heading: h.trim().to_string(), rows: Vec::new() });
            } else if let Some(rest) = line.strip_prefix("| CARIMBO-E") {
                let cells: Vec<&str> = rest.split(" | ").collect();
                if cells.len() >= 4 {
                    let code = format!("CARIMBO-E{}", cells[0].trim());
                    let last = cells[3..].join(" | ");
                    let row = [code, cells[1].trim().to_string(), cells[2].trim().to_string(), last.trim_end_matches('|').trim().to_string()];
                    match out.last_mut() {
                        Some(s) => s.rows.push(row),
                        None => out.push(Section { heading: String::new(), rows: vec![row] }),
                    }
                }
            }
        }
    }
    out.retain(|s| !s.rows.is_empty());
    out
}

/// A documentation cell: `code spans` as `<code>`, the rest as text.
fn cell(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// The anchor of a code on the page (`carimbo-e0721`), as problems' `type` names it.
pub fn anchor(code: &str) -> String {
    code.to_ascii_lowercase()
}

fn explain_page(pl: &PageLang, caller: Option<&Caller>) -> Markup {
    let lang = pl.lang;
    let title = t(lang, "錯誤代碼說明", "Códigos de erro", "Error codes");
    let generic = crate::http::error::message("");
    html! {
        (layout(pl, title, caller, html! {
            h1 { (title) }
            p { (t(lang,
                "每個錯誤都有固定代碼。下表說明發生了甚麼、原因及應如何處理（說明為英文）。",
                "Cada erro tem um código estável. A tabela diz o que aconteceu, porquê e o que fazer (a explicação está em inglês).",
                "Every error carries a stable code. The table says what happened, why, and what to do.")) }
            @for (i, s) in sections().iter().enumerate() {
                section {
                    h2 #(format!("section-{i}")) lang="en" { (s.heading) }
                    div.scroll tabindex="0" role="region" aria-labelledby=(format!("section-{i}")) {
                        table.codes {
                            thead { tr {
                                th scope="col" { (t(lang, "代碼", "Código", "Code")) }
                                th scope="col" { (t(lang, "發生了甚麼", "O que aconteceu", "What happened")) }
                                th scope="col" { (t(lang, "原因", "Porquê", "Why")) }
                                th scope="col" { (t(lang, "應如何處理", "O que fazer", "What to do")) }
                            } }
                            tbody {
                                @for [code, what, why, todo] in &s.rows {
                                    @let short = crate::http::error::message(code);
                                    tr id=(anchor(code)) {
                                        th scope="row" { code { (code) } }
                                        td {
                                            @if lang != Lang::En && short != generic { p { (short.get(lang)) } }
                                            span lang="en" { (cell(what)) }
                                        }
                                        td lang="en" { (cell(why)) }
                                        td lang="en" { (cell(todo)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
    }
}

pub async fn show(caller: Option<Caller>, pl: PageLang) -> Response {
    page(&pl, explain_page(&pl, caller.as_ref()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_code_row_of_the_docs_becomes_a_row_with_its_anchor() {
        let rows: Vec<[String; 4]> = super::sections().into_iter().flat_map(|s| s.rows).collect();
        assert!(rows.len() > 100, "{} rows", rows.len());
        assert!(rows.iter().any(|r| r[0] == "CARIMBO-E0721" && r[1].contains("sign-in form")));
        assert!(rows.iter().all(|r| r[0].len() == "CARIMBO-E".len() + 4 && !r[3].ends_with('|')));
        assert_eq!(super::anchor("CARIMBO-E0721"), "carimbo-e0721");
    }
}
