//! Where in a JSON text a byte lies: the JSON pointer (RFC 6901) of the innermost value (or
//! member name) containing it. Used to name the place of a parse error in a bundle, and by tests
//! to check that a report names the place of a changed byte. Works on broken JSON too: it then
//! answers with the innermost value it had entered when the text stopped making sense.

/// The JSON pointer of the innermost value containing byte `offset` of `text`.
pub fn pointer_at(text: &[u8], offset: usize) -> String {
    let mut s = Scanner { text, i: 0, offset, path: Vec::new() };
    match s.value(0) {
        Ok(Some(p)) | Err(p) => p,
        Ok(None) => String::new(),
    }
}

/// The byte offset of a (1-based) line and column, as serde_json reports a parse error.
pub fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    if line > 1 {
        let mut seen = 1;
        for (i, b) in text.iter().enumerate() {
            if *b == b'\n' {
                seen += 1;
                if seen == line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    (start + column.saturating_sub(1)).min(text.len().saturating_sub(1))
}

/// Escapes one reference token (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

struct Scanner<'a> {
    text: &'a [u8],
    i: usize,
    offset: usize,
    path: Vec<String>,
}

const MAX_DEPTH: usize = 256;

impl Scanner<'_> {
    fn pointer(&self) -> String {
        self.path.iter().map(|t| format!("/{}", escape_token(t))).collect()
    }

    fn ws(&mut self) {
        while self.i < self.text.len() && matches!(self.text[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// `Ok(Some(pointer))` when the offset lies in this value; `Ok(None)` when it lies after;
    /// `Err(pointer)` when the text is broken inside this value.
    fn value(&mut self, depth: usize) -> Result<Option<String>, String> {
        if depth > MAX_DEPTH {
            return Err(self.pointer());
        }
        self.ws();
        let start = self.i;
        if self.offset < start {
            // The offset lies in whitespace or punctuation before this value: name its container.
            let mut p = self.path.clone();
            p.pop();
            return Ok(Some(p.iter().map(|t| format!("/{}", escape_token(t))).collect()));
        }
        match self.text.get(self.i) {
            None => return Err(self.pointer()),
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.text.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_start = self.i;
                        let key = self.string()?;
                        if (key_start..self.i).contains(&self.offset) {
                            self.path.push(key);
                            return Ok(Some(self.pointer()));
                        }
                        self.ws();
                        if self.text.get(self.i) != Some(&b':') {
                            self.path.push(key);
                            return Err(self.pointer());
                        }
                        self.i += 1;
                        self.path.push(key);
                        if let Some(p) = self.value(depth + 1)? {
                            return Ok(Some(p));
                        }
                        self.path.pop();
                        self.ws();
                        match self.text.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.pointer()),
                        }
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.text.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    let mut index = 0usize;
                    loop {
                        self.path.push(index.to_string());
                        if let Some(p) = self.value(depth + 1)? {
                            return Ok(Some(p));
                        }
                        self.path.pop();
                        self.ws();
                        match self.text.get(self.i) {
                            Some(b',') => {
                                self.i += 1;
                                index += 1;
                            }
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.pointer()),
                        }
                    }
                }
            }
            Some(b'"') => {
                self.string()?;
            }
            Some(_) => {
                while self.i < self.text.len() && !matches!(self.text[self.i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'[' | b'"' | b':') {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.pointer());
                }
            }
        }
        if (start..self.i).contains(&self.offset) {
            return Ok(Some(self.pointer()));
        }
        Ok(None)
    }

    /// Reads a string (the text is assumed valid UTF-8 where it matters); returns its value.
    fn string(&mut self) -> Result<String, String> {
        if self.text.get(self.i) != Some(&b'"') {
            return Err(self.pointer());
        }
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        while self.i < self.text.len() {
            let b = self.text[self.i];
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                let raw = &self.text[start..self.i];
                self.i += 1;
                let quoted = [b"\"", raw, b"\""].concat();
                return Ok(serde_json::from_slice::<String>(&quoted).unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned()));
            }
            self.i += 1;
        }
        Err(self.pointer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_innermost_value() {
        let t = br#"{"a":{"b":[1,"xy",{"c/d":true}]},"e":"f"}"#;
        let at = |needle: &str| pointer_at(t, t.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap());
        assert_eq!(at("xy"), "/a/b/1");
        assert_eq!(at("true"), "/a/b/2/c~1d");
        assert_eq!(at("\"c/d\""), "/a/b/2/c~1d");
        assert_eq!(at("\"f\""), "/e");
        assert_eq!(at("1,"), "/a/b/0");
        assert_eq!(pointer_at(t, 0), "");
    }

    #[test]
    fn broken_text_names_where_it_broke() {
        let t = br#"{"a":{"b":[1,"xy" "z"]}}"#;
        assert_eq!(pointer_at(t, 16), "/a/b/1");
        assert_eq!(pointer_at(t, 19), "/a/b");
    }

    #[test]
    fn line_and_column_become_an_offset() {
        let t = b"{\n  \"a\": x\n}";
        assert_eq!(offset_of(t, 2, 8), 9);
        assert_eq!(t[9], b'x');
    }
}
