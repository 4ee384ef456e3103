//! Text templates with named escapes, e.g. `http://gw/send?to={to}&text={text}`.
//!
//! Two doors fill one in: the dispatcher's HTTP upstreams (the URL or body a
//! gateway expects, in the manner of Kannel's generic SMSC) and the callbacks
//! role (an account's delivery-report URL, in the manner of Kannel's
//! `dlr-url`). Both parse the template once, at start or when the account is
//! saved, against the escapes they can fill, so a typo is refused there and
//! rendering can never fail. Braces name an escape because the templates
//! must carry Kannel's own `%d` and `%s` through untouched; `{{` and `}}` are
//! literal braces.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A parsed template: literal text and escapes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// Index into the `escapes` the template was parsed against.
    Escape(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown escape {{{name}}} (known: {known})")]
    Unknown { name: String, known: String },
    #[error("unclosed '{{' at byte {0} (write '{{{{' for a literal brace)")]
    Unclosed(usize),
    #[error("lone '}}' at byte {0} (write '}}}}' for a literal brace)")]
    LoneClose(usize),
}

/// How a value is written into the rendered text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// `application/x-www-form-urlencoded` (a URL's query, a form body).
    Form,
    /// Inside a JSON string (quotes, backslashes and control characters escaped).
    Json,
    /// As it is.
    Raw,
}

impl Template {
    /// Parses `text`; every `{name}` must be one of `escapes`.
    pub fn parse(text: &str, escapes: &[&str]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|p| p.1) == Some('{') => {
                    rest.next();
                    literal.push('{');
                }
                '}' if rest.peek().map(|p| p.1) == Some('}') => {
                    rest.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::LoneClose(at)),
                '{' => {
                    let close = text[at..].find('}').ok_or(TemplateError::Unclosed(at))?;
                    let name = &text[at + 1..at + close];
                    let index = escapes
                        .iter()
                        .position(|e| *e == name)
                        .ok_or_else(|| TemplateError::Unknown { name: name.to_owned(), known: escapes.join(", ") })?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Escape(index));
                    while rest.peek().is_some_and(|p| p.0 <= at + close) {
                        rest.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { pieces })
    }

    /// Fills the template; `value(i)` is the value of the `i`-th escape the
    /// template was parsed against.
    pub fn render<'v>(&self, quoting: Quoting, value: impl Fn(usize) -> Cow<'v, str>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Escape(i) => quote_into(&mut out, &value(*i), quoting),
            }
        }
        out
    }

    /// Whether the template uses the `i`-th escape.
    pub fn uses(&self, i: usize) -> bool {
        self.pieces.contains(&Piece::Escape(i))
    }
}

fn quote_into(out: &mut String, value: &str, quoting: Quoting) {
    match quoting {
        Quoting::Raw => out.push_str(value),
        Quoting::Form => out.extend(form_urlencoded::byte_serialize(value.as_bytes())),
        Quoting::Json => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if u32::from(c) < 0x20 => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
        }
    }
}

/// The text as UCS-2 (UTF-16 big-endian) in upper-case hex, as gateways take
/// it with `coding=8` (Jasmin's `hex-content`, Kannel's `charset=UTF-16BE`).
pub fn ucs2_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 4);
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ESCAPES: &[&str] = &["to", "text", "ref"];

    fn values(i: usize) -> Cow<'static, str> {
        Cow::Borrowed(["+62 811", "a&b=ü\"", "42"][i])
    }

    #[test]
    fn renders_with_each_quoting() {
        let t = Template::parse("http://gw/send?to={to}&text={text}&dlr=x%d{{y}}", ESCAPES).unwrap();
        assert_eq!(t.render(Quoting::Form, values), "http://gw/send?to=%2B62+811&text=a%26b%3D%C3%BC%22&dlr=x%d{y}");
        let j = Template::parse(r#"{{"to":"{to}","text":"{text}"}}"#, ESCAPES).unwrap();
        assert_eq!(j.render(Quoting::Json, values), r#"{"to":"+62 811","text":"a&b=ü\""}"#);
        assert_eq!(Template::parse("{ref}-{ref}", ESCAPES).unwrap().render(Quoting::Raw, values), "42-42");
        assert!(t.uses(0) && t.uses(1) && !t.uses(2));
    }

    #[test]
    fn refuses_what_it_cannot_fill() {
        assert_eq!(
            Template::parse("x{from}", ESCAPES),
            Err(TemplateError::Unknown { name: "from".into(), known: "to, text, ref".into() })
        );
        assert_eq!(Template::parse("x{to", ESCAPES), Err(TemplateError::Unclosed(1)));
        assert_eq!(Template::parse("x}", ESCAPES), Err(TemplateError::LoneClose(1)));
        assert!(Template::parse("{}", ESCAPES).is_err());
    }

    #[test]
    fn non_ascii_literals_survive() {
        let t = Template::parse("é{to}ü", ESCAPES).unwrap();
        assert_eq!(t.render(Quoting::Raw, values), "é+62 811ü");
    }

    #[test]
    fn ucs2_hex_is_utf16_big_endian() {
        assert_eq!(ucs2_hex("Aé"), "004100E9");
        assert_eq!(ucs2_hex("😀"), "D83DDE00");
    }
}
