//! Serialises a [`Node`] byte-exactly the way playSMS 1.4.7 on PHP 8.2 does:
//! `json_encode` (default flags), `core_array_to_xml` + SimpleXML `asXML()`,
//! or `serialize()`. Clients parse these with hand-written code, so matching
//! escapes, number forms and key order matters more than being idiomatic.

use crate::node::Node;
use crate::params::Format;
use crate::phpnum::{Digits, gcvt, non_finite};
use std::fmt::Write as _;

/// An encoded reply: the Content-Type header value playSMS sends and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: String,
}

pub const CONTENT_TYPE_JSON: &str = "application/json";
pub const CONTENT_TYPE_XML: &str = "text/xml;charset=UTF-8";
pub const CONTENT_TYPE_SERIALIZE: &str = "text/plain;charset=UTF-8";

pub fn render(node: &Node, format: Format) -> Rendered {
    match format {
        Format::Json => Rendered { content_type: CONTENT_TYPE_JSON, body: to_json(node) },
        Format::Xml => Rendered { content_type: CONTENT_TYPE_XML, body: to_xml(node) },
        Format::Serialize => Rendered { content_type: CONTENT_TYPE_SERIALIZE, body: to_serialize(node) },
    }
}

// ---------------------------------------------------------------- JSON

/// PHP `json_encode($v)` with default flags.
pub fn to_json(node: &Node) -> String {
    let mut out = String::new();
    json_value(node, &mut out);
    out
}

fn json_value(node: &Node, out: &mut String) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // json_encode fails on NaN/INF; with partial output it writes 0.
        Node::Float(f) => out.push_str(&gcvt(*f, Digits::Shortest, 'e').unwrap_or_else(|| "0".into())),
        Node::Str(s) => json_string(s, out),
        Node::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item, out);
            }
            out.push(']');
        }
        // An empty PHP array is indistinguishable from an empty list: `[]`.
        Node::Map(entries) if entries.is_empty() => out.push_str("[]"),
        Node::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(key, out);
                out.push(':');
                json_value(value, out);
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------- XML

/// `core_array_to_xml($json, new SimpleXMLElement('<response/>'))->asXML()`.
///
/// Deliberate deviation: SimpleXML's `addChild` does not escape `&`, so
/// playSMS emits an *empty* element for any value containing `&` (and
/// passes `&lt;`-style input through as entities). We escape `&` as `&amp;`
/// and keep the data, which is what a client would have wanted.
pub fn to_xml(node: &Node) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<response>");
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                xml_element(xml_name(key), value, &mut out);
            }
        }
        Node::List(items) => {
            for item in items {
                xml_element("item", item, &mut out);
            }
        }
        // playSMS always renders an array; a bare scalar becomes the text.
        scalar => xml_text(&xml_scalar(scalar), &mut out),
    }
    out.push_str("</response>\n");
    out
}

/// PHP turns numeric keys into `<item>`; a numeric string key is an int key.
fn xml_name(key: &str) -> &str {
    if php_int_key(key).is_some() { "item" } else { key }
}

fn xml_element(name: &str, value: &Node, out: &mut String) {
    let inner = match value {
        Node::Map(entries) if !entries.is_empty() => {
            let mut inner = String::new();
            for (key, child) in entries {
                xml_element(xml_name(key), child, &mut inner);
            }
            inner
        }
        Node::List(items) if !items.is_empty() => {
            let mut inner = String::new();
            for item in items {
                xml_element("item", item, &mut inner);
            }
            inner
        }
        Node::Map(_) | Node::List(_) => String::new(),
        scalar => {
            let mut inner = String::new();
            xml_text(&xml_scalar(scalar), &mut inner);
            inner
        }
    };
    out.push('<');
    out.push_str(name);
    if inner.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        out.push_str(&inner);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

/// PHP's string cast of a scalar: `precision = 14` for floats, not the
/// shortest form JSON uses, so 0.1+0.2 shows as `0.3` here.
fn xml_scalar(node: &Node) -> String {
    match node {
        Node::Null | Node::Bool(false) => String::new(),
        Node::Bool(true) => "1".into(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => gcvt(*f, Digits::Fourteen, 'E').unwrap_or_else(|| non_finite(*f).into()),
        Node::Str(s) => s.clone(),
        Node::List(_) | Node::Map(_) => String::new(),
    }
}

/// libxml's text escaping with no declared encoding: `<`, `>`, `&`, CR as a
/// char ref, and every non-ASCII char as an upper-case hex char reference.
fn xml_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) > 0x7f => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------- serialize

/// PHP `serialize($v)`; string lengths are UTF-8 byte lengths.
pub fn to_serialize(node: &Node) -> String {
    let mut out = String::new();
    ser_value(node, &mut out);
    out
}

fn ser_value(node: &Node, out: &mut String) {
    match node {
        Node::Null => out.push_str("N;"),
        Node::Bool(b) => out.push_str(if *b { "b:1;" } else { "b:0;" }),
        Node::Int(i) => {
            let _ = write!(out, "i:{i};");
        }
        Node::Float(f) => {
            let text = gcvt(*f, Digits::Shortest, 'E').unwrap_or_else(|| non_finite(*f).into());
            let _ = write!(out, "d:{text};");
        }
        Node::Str(s) => ser_string(s, out),
        Node::List(items) => {
            let _ = write!(out, "a:{}:{{", items.len());
            for (i, item) in items.iter().enumerate() {
                let _ = write!(out, "i:{i};");
                ser_value(item, out);
            }
            out.push('}');
        }
        Node::Map(entries) => {
            let _ = write!(out, "a:{}:{{", entries.len());
            for (key, value) in entries {
                // PHP stores canonical numeric string keys as int keys.
                match php_int_key(key) {
                    Some(i) => {
                        let _ = write!(out, "i:{i};");
                    }
                    None => ser_string(key, out),
                }
                ser_value(value, out);
            }
            out.push('}');
        }
    }
}

fn ser_string(s: &str, out: &mut String) {
    let _ = write!(out, "s:{}:\"{}\";", s.len(), s);
}

/// A PHP array key that PHP would store as an integer: canonical decimal
/// (`"0"`, `"-5"`, `"42"`; not `"042"`, `"+1"`, `"1.0"`) within i64.
fn php_int_key(key: &str) -> Option<i64> {
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && key != "-0";
    if canonical { key.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(entries: Vec<(&str, Node)>) -> Node {
        Node::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    #[test]
    fn json_escapes() {
        let n = Node::from("a/b \"q\" \\ \n\r\t\u{8}\u{c}\u{1}\u{7f} <b>&' П 😀 é");
        assert_eq!(
            to_json(&n),
            r#""a\/b \"q\" \\ \n\r\t\b\f\u0001\u007f <b>&' \u041f \ud83d\ude00 \u00e9""#.replace("\\u007f", "\u{7f}")
        );
    }

    #[test]
    fn json_scalars_and_containers() {
        let n = m(vec![
            ("n", Node::Null),
            ("t", Node::Bool(true)),
            ("f", Node::Bool(false)),
            ("i", Node::Int(-3)),
            ("x", Node::Float(100.0)),
            ("y", Node::Float(50.25)),
            ("nan", Node::Float(f64::NAN)),
            ("l", Node::List(vec![])),
            ("m", Node::map()),
        ]);
        assert_eq!(to_json(&n), r#"{"n":null,"t":true,"f":false,"i":-3,"x":100,"y":50.25,"nan":0,"l":[],"m":[]}"#);
    }

    #[test]
    fn xml_shapes() {
        let n = m(vec![
            ("a", Node::from("x & <y> \"q\" 'z'\r")),
            ("e", Node::from("")),
            ("n", Node::Null),
            ("t", Node::Bool(true)),
            ("f", Node::Bool(false)),
            ("d", Node::Float(0.1 + 0.2)),
            ("l", Node::List(vec![Node::Int(1), Node::map().with("k", "v")])),
            ("0", Node::Int(5)),
            ("u", Node::from("é😀")),
            ("empty", Node::List(vec![])),
        ]);
        assert_eq!(
            to_xml(&n),
            "<?xml version=\"1.0\"?>\n<response><a>x &amp; &lt;y&gt; \"q\" 'z'&#13;</a><e/><n/>\
             <t>1</t><f/><d>0.3</d><l><item>1</item><item><k>v</k></item></l><item>5</item>\
             <u>&#xE9;&#x1F600;</u><empty/></response>\n"
        );
    }

    #[test]
    fn serialize_shapes() {
        let n = m(vec![
            ("s", Node::from("Привет")),
            ("b", Node::Bool(false)),
            ("d", Node::Float(100.0)),
            ("e", Node::Float(1e25)),
            ("l", Node::List(vec![Node::Null, Node::Bool(true)])),
            ("7", Node::Int(1)),
            ("07", Node::Int(2)),
        ]);
        assert_eq!(
            to_serialize(&n),
            "a:7:{s:1:\"s\";s:12:\"Привет\";s:1:\"b\";b:0;s:1:\"d\";d:100;s:1:\"e\";d:1.0E+25;\
             s:1:\"l\";a:2:{i:0;N;i:1;b:1;}i:7;i:1;s:2:\"07\";i:2;}"
        );
        assert_eq!(to_serialize(&Node::Float(f64::NEG_INFINITY)), "d:-INF;");
    }

    #[test]
    fn int_keys() {
        assert_eq!(php_int_key("0"), Some(0));
        assert_eq!(php_int_key("-12"), Some(-12));
        assert_eq!(php_int_key("-0"), None);
        assert_eq!(php_int_key("012"), None);
        assert_eq!(php_int_key("1a"), None);
        assert_eq!(php_int_key("99999999999999999999"), None);
    }

    #[test]
    fn content_types() {
        let n = Node::map();
        assert_eq!(render(&n, Format::Json).content_type, "application/json");
        assert_eq!(render(&n, Format::Xml).content_type, "text/xml;charset=UTF-8");
        assert_eq!(render(&n, Format::Serialize).content_type, "text/plain;charset=UTF-8");
    }
}
