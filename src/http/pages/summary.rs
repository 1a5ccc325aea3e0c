//! A case's summary fields (the form's `layout.summary`, `forms::summary`) as the pages show
//! them: in inbox rows, "My cases", the case page and the batch confirmation. The values are read
//! through the caller's `visibility::Sight`, so a field hidden from the reader is never shown,
//! even if a definition named a restricted field (`carimbo check` refuses that).

use super::render::{pointer_label, value_label};
use crate::forms::{FormDefinition, pointer_push};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::i18n::Lang;
use crate::visibility::{Sight, is_restricted_marker};
use crate::workflow::Case;
use maud::{Markup, html};
use serde_json::Value;

/// The summary of one case for one reader: (label, value) in the reader's language.
#[derive(Debug, Clone, Default)]
pub struct Summary(pub Vec<(String, String)>);

impl Summary {
    /// The case's summary as `caller` may read it.
    pub fn of(state: &AppState, caller: &Caller, lang: Lang, case: &Case) -> Summary {
        match state.cases.form_of(case) {
            Ok(form) => Summary::read(&form, lang, &state.sight(caller, case), &case.data),
            Err(_) => Summary::default(),
        }
    }

    /// The summary fields of `data` that `sight` lets through, labelled as the form labels them.
    pub fn read(form: &FormDefinition, lang: Lang, sight: &Sight, data: &Value) -> Summary {
        let seen = sight.data(data);
        let items = form
            .layout
            .summary
            .iter()
            .filter(|f| !sight.hides(f))
            .filter_map(|f| {
                let v = seen.get(f.as_str()).filter(|v| !v.is_null() && !is_restricted_marker(v))?;
                let ptr = pointer_push("", f);
                Some((pointer_label(form, lang, &ptr), value_label(form, lang, &ptr, v)))
            })
            .collect();
        Summary(items)
    }

    /// One line: "Leave type: Annual leave · Start date: 2026-03-02 · …" (the batch confirmation).
    pub fn line(&self) -> String {
        self.0.iter().map(|(l, v)| format!("{l}: {}", super::visible(v))).collect::<Vec<_>>().join(" · ")
    }

    /// As a short definition list, for table cells and the case page.
    pub fn render(&self) -> Markup {
        html! {
            @if !self.0.is_empty() {
                dl.summary {
                    @for (label, value) in &self.0 {
                        div { dt { (label) } dd { (super::shown(value)) } }
                    }
                }
            }
        }
    }
}
