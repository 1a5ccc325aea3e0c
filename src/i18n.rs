//! The three working languages and texts written in all of them.
//!
//! Macau's official languages are Chinese and Portuguese; English is the working language of
//! the IT staff. Every text a person reads (form titles, field labels, rule messages, error
//! messages) exists in all three, so a definition missing one is refused by `carimbo check`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A language a person can read carimbo in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Traditional Chinese (zh-Hant-MO).
    Zh,
    /// European Portuguese as used in Macau.
    Pt,
    /// English.
    #[default]
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Zh, Lang::Pt, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::Pt => "pt",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The language code was not one of `zh`, `pt`, `en`.
#[derive(Debug, thiserror::Error)]
#[error("unknown language {0:?}: use zh, pt or en")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept regional tags such as `zh-Hant-MO` or `pt-PT` from browsers.
        let primary = s.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Ok(Lang::Zh),
            "pt" => Ok(Lang::Pt),
            "en" => Ok(Lang::En),
            _ => Err(UnknownLang(s.to_string())),
        }
    }
}

/// A text in the three languages. Built only through `carimbo check`-style parsing, which
/// refuses a missing or empty language, so `get` always has something to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedText {
    pub zh: String,
    pub pt: String,
    pub en: String,
}

impl LocalizedText {
    pub fn new(zh: impl Into<String>, pt: impl Into<String>, en: impl Into<String>) -> Self {
        LocalizedText { zh: zh.into(), pt: pt.into(), en: en.into() }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::Pt => &self.pt,
            Lang::En => &self.en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_language_tags_map_to_the_three_languages() {
        assert_eq!("zh-Hant-MO".parse::<Lang>().unwrap(), Lang::Zh);
        assert_eq!("pt_PT".parse::<Lang>().unwrap(), Lang::Pt);
        assert_eq!("EN".parse::<Lang>().unwrap(), Lang::En);
        assert!("fr".parse::<Lang>().is_err());
    }
}
