//! Replays the playSMS 1.4.7 transcripts (`fixtures/playsms-transcripts/`, a
//! copy of the shared reference) against the fleet, in order, and compares
//! every answer with playSMS's: HTTP status, `Content-Type`, `Location`, and
//! the body field by field (JSON with key order and types; XML and PHP
//! serialize as trees).
//!
//! What differs by nature is not compared by value:
//! - `timestamp`: only its type;
//! - `dt`, `update`: only the `YYYY-MM-DD HH:MM:SS` shape (the reference
//!   clock ran at UTC−7h);
//! - ids and server-made secrets (`smslog_id`, `queue`, `id`, `pid`, `gpid`,
//!   `uid`, `parent_uid`, the `last_id` values, `token` of `set_token`,
//!   `login_key`): through a mapping learned from earlier answers (the
//!   reference's value → ours). A value seen again must map to the same one
//!   of ours, and later requests quoting a reference value (`queue=`,
//!   `smslog_id=`, `last=`, `h=`, `login_key=`) are rewritten with ours;
//! - cookies and the `Date`, `Host`, `X-Powered-By`, `Connection` headers.
//!
//! Rows of list ops are paired by content (playSMS orders rows of the same
//! second arbitrarily); ours must come newest first. Deliberate deviations
//! are listed in `fixtures/playsms-deviations.tsv`, explained in
//! COMPATIBILITY.md, and checked against our own expected answer in
//! `fixtures/playsms-deviations/`. State the reference install set outside
//! the API is applied through our CLI before the transcript that needs it
//! (`fixture_steps`).
//!
//! `TRANSCRIPTS_REPORT=1` prints the report without failing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fleet::Fleet;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/fixtures")
}

// ---------------------------------------------------------------- format

/// One HTTP answer as a transcript records it.
#[derive(Debug, Clone)]
struct Exchange {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct Transcript {
    file: String,
    number: u16,
    /// `# note:` lines: what the call was meant to show.
    notes: Vec<String>,
    method: String,
    /// Path and query, as sent.
    target: String,
    content_type: Option<String>,
    body: Vec<u8>,
    expected: Exchange,
}

impl Transcript {
    /// The op the request asks for (lower case), from the query or the body.
    fn op(&self) -> String {
        let query = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut op = param(query, "op");
        let body = String::from_utf8_lossy(&self.body);
        match self.content_type.as_deref() {
            Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {
                op = param(&body, "op").or(op);
            }
            Some(ct) if ct.starts_with("multipart/form-data") => {
                if let Some((_, rest)) = body.split_once("name=\"op\"\r\n\r\n") {
                    op = rest.split("\r\n").next().map(str::to_owned);
                }
            }
            _ => {}
        }
        op.map(|o| o.trim().to_ascii_lowercase()).unwrap_or_default()
    }
}

/// Splits a head (start line and headers) from the body at the first blank line.
fn split_head(block: &str) -> (&str, &str) {
    match block.find("\n\n") {
        Some(i) => (&block[..i], &block[i + 2..]),
        None => (block.trim_end_matches('\n'), ""),
    }
}

fn header_lines(head: &str) -> Vec<(String, String)> {
    head.lines().filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect()
}

/// `### RESPONSE` block: status line, headers, blank line, raw body.
fn parse_response(block: &str) -> Exchange {
    let (head, body) = split_head(block);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Exchange { status, headers: header_lines(&lines.collect::<Vec<_>>().join("\n")), body: body.to_owned() }
}

/// Transcript format: `#` comment lines, `### REQUEST` (request line,
/// headers, blank line, body), `### RESPONSE` (status line, headers, blank
/// line, raw body), `### END`. The newline before a marker belongs to it.
fn parse_transcript(file: &str, text: &str) -> Transcript {
    let req_at = text.find("### REQUEST\n").unwrap_or_else(|| panic!("{file}: no ### REQUEST")) + 12;
    let resp_marker = text.find("\n### RESPONSE\n").unwrap_or_else(|| panic!("{file}: no ### RESPONSE"));
    let end = text.rfind("\n### END").unwrap_or_else(|| panic!("{file}: no ### END"));
    let (head, body) = split_head(&text[req_at..resp_marker]);
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or("").split_whitespace();
    let method = request_line.next().unwrap_or("GET").to_owned();
    let target = request_line.next().unwrap_or("/").to_owned();
    let headers = header_lines(&lines.collect::<Vec<_>>().join("\n"));
    let content_type = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.clone());
    Transcript {
        file: file.to_owned(),
        number: file.get(..3).and_then(|n| n.parse().ok()).unwrap_or(0),
        notes: text[..req_at].lines().filter_map(|l| l.strip_prefix("# note:")).map(|n| n.trim().to_owned()).collect(),
        method,
        target,
        content_type,
        body: body.as_bytes().to_vec(),
        expected: parse_response(&text[resp_marker + 14..end]),
    }
}

fn load_transcripts() -> Vec<Transcript> {
    let dir = fixtures().join("playsms-transcripts");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".txt") && n.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .collect();
    files.sort();
    files.iter().map(|f| parse_transcript(f, &std::fs::read_to_string(dir.join(f)).unwrap())).collect()
}

/// `<file>\t<reason>` lines; `#` starts a comment.
fn load_deviations() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixtures().join("playsms-deviations.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (file, reason) = l.split_once('\t').unwrap_or_else(|| panic!("deviation line without a tab: {l}"));
            (file.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// Our own expected answer for a listed deviation (same format as a
/// transcript's `### RESPONSE` block), if there is one.
fn deviation_expectation(file: &str) -> Option<Exchange> {
    let text = std::fs::read_to_string(fixtures().join("playsms-deviations").join(file)).ok()?;
    let start = text.find("### RESPONSE\n")? + 13;
    let end = text.rfind("\n### END")?;
    Some(parse_response(&text[start..end]))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
}

// ---------------------------------------------------------------- values

/// A parsed body: JSON, XML or PHP serialize, with key order kept.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Bool(bool),
    /// The number as written (`d:` marks a PHP serialize float).
    Num(String),
    Str(String),
    List(Vec<V>),
    Map(Vec<(String, V)>),
}

impl V {
    fn kind(&self) -> &'static str {
        match self {
            V::Null => "null",
            V::Bool(_) => "bool",
            V::Num(_) => "number",
            V::Str(_) => "string",
            V::List(_) => "list",
            V::Map(_) => "map",
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            V::Num(s) | V::Str(s) => Some(s),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        match self {
            V::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn short(&self) -> String {
        let s = match self {
            V::Null => "null".to_owned(),
            V::Bool(b) => b.to_string(),
            V::Num(n) => n.clone(),
            V::Str(s) => format!("{s:?}"),
            V::List(items) => format!("[{} rows]", items.len()),
            V::Map(entries) => {
                format!(
                    "{{{}}}",
                    entries.iter().map(|(k, v)| format!("{k}: {}", v.short())).collect::<Vec<_>>().join(", ")
                )
            }
        };
        clip(&s, 160)
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// serde's visitor keeps the key order without switching serde_json's
/// `preserve_order` feature on for the whole workspace (which would
/// rebuild every crate for the test binary).
struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = V;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<V, E> {
        Ok(V::Null)
    }
    fn visit_none<E>(self) -> Result<V, E> {
        Ok(V::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<V, E> {
        Ok(V::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<V, E> {
        Ok(V::Num(n.to_string()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<V, E> {
        Ok(V::Num(n.to_string()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<V, E> {
        Ok(V::Num(serde_json::Number::from_f64(n).map(|n| n.to_string()).unwrap_or_else(|| n.to_string())))
    }
    fn visit_str<E>(self, s: &str) -> Result<V, E> {
        Ok(V::Str(s.to_owned()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<V, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<V>()? {
            items.push(item);
        }
        Ok(V::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<V, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, V>()? {
            entries.push((k, v));
        }
        Ok(V::Map(entries))
    }
}

impl<'de> serde::Deserialize<'de> for V {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<V, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

fn parse_json(body: &str) -> Result<V, String> {
    serde_json::from_str::<V>(body).map_err(|e| format!("not JSON ({e}): {}", clip(body, 120)))
}

/// playSMS's XML: the declaration line, then one line, then a newline.
/// Elements whose children are all `<item>` become lists; leaves strings.
fn parse_xml(body: &str) -> Result<V, String> {
    let bad = |why: &str| format!("XML {why}: {}", clip(body, 120));
    let rest = body.strip_prefix("<?xml version=\"1.0\"?>\n").ok_or_else(|| bad("declaration line"))?;
    let line = rest.strip_suffix('\n').ok_or_else(|| bad("without its final newline"))?;
    if line.contains('\n') {
        return Err(bad("on more than one line"));
    }
    let mut pos = 0;
    let (name, value) = xml_element(line, &mut pos).map_err(|e| bad(&e))?;
    if name != "response" || pos != line.len() {
        return Err(bad("root is not one <response>"));
    }
    Ok(value)
}

fn xml_element(s: &str, pos: &mut usize) -> Result<(String, V), String> {
    if !s[*pos..].starts_with('<') {
        return Err(format!("expected an element at {pos}"));
    }
    let close = s[*pos..].find('>').ok_or("unclosed tag")? + *pos;
    let tag = &s[*pos + 1..close];
    *pos = close + 1;
    if let Some(name) = tag.strip_suffix('/') {
        return Ok((name.to_owned(), V::Str(String::new())));
    }
    let name = tag.to_owned();
    let end_tag = format!("</{name}>");
    let mut children = Vec::new();
    let mut text = String::new();
    loop {
        let rest = &s[*pos..];
        if rest.starts_with(&end_tag) {
            *pos += end_tag.len();
            break;
        } else if rest.starts_with('<') {
            children.push(xml_element(s, pos)?);
        } else if rest.is_empty() {
            return Err(format!("<{name}> not closed"));
        } else {
            let stop = rest.find('<').unwrap_or(rest.len());
            text.push_str(&xml_unescape(&rest[..stop]));
            *pos += stop;
        }
    }
    if children.is_empty() {
        Ok((name, V::Str(text)))
    } else if children.iter().all(|(n, _)| n == "item") {
        Ok((name, V::List(children.into_iter().map(|(_, v)| v).collect())))
    } else {
        Ok((name, V::Map(children)))
    }
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find(';') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let entity = &rest[i + 1..i + j];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&rest[i..i + j + 1]),
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// PHP `serialize()`; string lengths must be byte lengths.
fn parse_php(body: &str) -> Result<V, String> {
    let mut pos = 0;
    let v = php_value(body.as_bytes(), &mut pos).map_err(|e| format!("serialize: {e}: {}", clip(body, 120)))?;
    if pos != body.len() {
        return Err(format!("serialize: trailing bytes: {}", clip(body, 120)));
    }
    Ok(v)
}

fn php_until(b: &[u8], pos: &mut usize, stop: u8) -> Result<String, String> {
    let start = *pos;
    while *pos < b.len() && b[*pos] != stop {
        *pos += 1;
    }
    if *pos >= b.len() {
        return Err(format!("missing {:?}", stop as char));
    }
    let s = String::from_utf8_lossy(&b[start..*pos]).into_owned();
    *pos += 1;
    Ok(s)
}

fn php_value(b: &[u8], pos: &mut usize) -> Result<V, String> {
    let kind = *b.get(*pos).ok_or("unexpected end")?;
    if kind == b'N' {
        *pos += 2;
        return Ok(V::Null);
    }
    if b.get(*pos + 1) != Some(&b':') {
        return Err(format!("bad value at {pos}"));
    }
    *pos += 2;
    match kind {
        b'b' => Ok(V::Bool(php_until(b, pos, b';')? == "1")),
        b'i' => Ok(V::Num(php_until(b, pos, b';')?)),
        b'd' => Ok(V::Num(format!("d:{}", php_until(b, pos, b';')?))),
        b's' => {
            let len: usize = php_until(b, pos, b':')?.parse().map_err(|_| "bad string length")?;
            let start = *pos + 1;
            let end = start + len;
            if b.get(*pos) != Some(&b'"') || b.get(end) != Some(&b'"') || b.get(end + 1) != Some(&b';') {
                return Err(format!("string length {len} is not its byte length at {pos}"));
            }
            *pos = end + 2;
            Ok(V::Str(String::from_utf8_lossy(&b[start..end]).into_owned()))
        }
        b'a' => {
            let n: usize = php_until(b, pos, b':')?.parse().map_err(|_| "bad array length")?;
            if b.get(*pos) != Some(&b'{') {
                return Err("array without {".to_owned());
            }
            *pos += 1;
            let mut entries = Vec::new();
            for _ in 0..n {
                let key = match php_value(b, pos)? {
                    V::Num(k) | V::Str(k) => k,
                    other => return Err(format!("array key {}", other.kind())),
                };
                entries.push((key, php_value(b, pos)?));
            }
            if b.get(*pos) != Some(&b'}') {
                return Err("array without }".to_owned());
            }
            *pos += 1;
            if entries.iter().enumerate().all(|(i, (k, _))| *k == i.to_string()) && !entries.is_empty() {
                Ok(V::List(entries.into_iter().map(|(_, v)| v).collect()))
            } else {
                Ok(V::Map(entries))
            }
        }
        other => Err(format!("unknown type {:?}", other as char)),
    }
}

/// The bytes PHP's `json_encode` (default flags) writes for `v`: `/`
/// escaped, non-ASCII as lower-case `\uXXXX`. Parsing loses escaping, so
/// our raw body is checked against this as well.
fn php_json(v: &V) -> String {
    match v {
        V::Null => "null".to_owned(),
        V::Bool(b) => b.to_string(),
        V::Num(n) => n.clone(),
        V::Str(s) => {
            let mut out = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '/' => out.push_str("\\/"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        V::List(items) => format!("[{}]", items.iter().map(php_json).collect::<Vec<_>>().join(",")),
        V::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}:{}", php_json(&V::Str(k.clone())), php_json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// The bytes playSMS's SimpleXML writes for `v` under `<name>`: `<`, `>`
/// and `&` escaped, non-ASCII as `&#xHEX;`, empty values self-closing.
fn php_xml(name: &str, v: &V) -> String {
    match v {
        V::List(items) => format!("<{name}>{}</{name}>", items.iter().map(|i| php_xml("item", i)).collect::<String>()),
        V::Map(entries) => {
            format!("<{name}>{}</{name}>", entries.iter().map(|(k, v)| php_xml(k, v)).collect::<String>())
        }
        other => {
            let text = other.text().unwrap_or("");
            if text.is_empty() {
                return format!("<{name}/>");
            }
            let mut out = String::new();
            for c in text.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    c if (c as u32) > 0x7e => out.push_str(&format!("&#x{:X};", c as u32)),
                    c => out.push(c),
                }
            }
            format!("<{name}>{out}</{name}>")
        }
    }
}

/// Whether `raw` is byte for byte how PHP encodes what it parses to.
fn php_encoding_diff(kind: &str, raw: &str, parsed: &V) -> Option<String> {
    let again = if kind.starts_with("application/json") {
        php_json(parsed)
    } else if kind.starts_with("text/xml") {
        format!("<?xml version=\"1.0\"?>\n{}\n", php_xml("response", parsed))
    } else {
        return None;
    };
    if again == raw {
        return None;
    }
    let at = again.bytes().zip(raw.bytes()).take_while(|(a, b)| a == b).count();
    let from = raw.get(at.saturating_sub(20)..).or(Some(raw)).unwrap_or("");
    Some(format!("ours is not encoded as PHP would at byte {at}: …{}", clip(from, 60)))
}

// ---------------------------------------------------------------- compare

/// Kinds of value that differ between installs by nature; each has its own
/// mapping from the reference's values to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Space {
    Smslog,
    Queue,
    Incoming,
    Inbox,
    Pid,
    Gpid,
    Uid,
    Token,
    LoginKey,
}

fn space_of(op: &str, key: &str) -> Option<Space> {
    Some(match key {
        "smslog_id" | "user_outgoing" => Space::Smslog,
        "queue" => Space::Queue,
        "id" if op == "ix" => Space::Inbox,
        "id" => Space::Incoming,
        "user_incoming" => Space::Incoming,
        "user_inbox" => Space::Inbox,
        "pid" => Space::Pid,
        "gpid" => Space::Gpid,
        "uid" | "parent_uid" => Space::Uid,
        "token" if op == "set_token" => Space::Token,
        "login_key" => Space::LoginKey,
        _ => return None,
    })
}

#[derive(Debug, Clone, Default)]
struct Ids {
    map: HashMap<(Space, String), String>,
}

impl Ids {
    fn ours(&self, space: Space, reference: &str) -> Option<&str> {
        self.map.get(&(space, reference.to_owned())).map(String::as_str)
    }

    fn learn(&mut self, space: Space, reference: &str, ours: &str) -> Result<(), String> {
        match self.map.get(&(space, reference.to_owned())) {
            Some(known) if known == ours => Ok(()),
            Some(known) => Err(format!("{space:?} {reference} was {known} before, now {ours}")),
            None => {
                // One of ours standing for two reference ids would hide a
                // lost or merged row. A queue may be shared (one request).
                let taken = self.map.iter().any(|((s, r), o)| *s == space && o == ours && r != reference);
                if taken && space != Space::Queue {
                    return Err(format!("{space:?} {ours} already stands for another reference value"));
                }
                self.map.insert((space, reference.to_owned()), ours.to_owned());
                Ok(())
            }
        }
    }
}

fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

const LIST_OPS: [&str; 4] = ["ds", "in", "ix", "sx"];

struct Cmp<'a> {
    op: &'a str,
    ids: Ids,
    diffs: Vec<String>,
}

impl Cmp<'_> {
    fn diff(&mut self, path: &str, reference: &V, ours: &V) {
        self.diffs.push(format!("{path}: playSMS {} / ours {}", reference.short(), ours.short()));
    }

    fn value(&mut self, path: &str, key: &str, r: &V, o: &V) {
        if key == "timestamp" {
            let ok = match (r, o) {
                (V::Num(_), V::Num(_)) => true,
                (V::Str(_), V::Str(t)) => !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()),
                _ => false,
            };
            if !ok {
                self.diff(path, r, o);
            }
            return;
        }
        if (key == "dt" || key == "update") && r.text().is_some_and(is_datetime) {
            if !(r.kind() == o.kind() && o.text().is_some_and(is_datetime)) {
                self.diff(path, r, o);
            }
            return;
        }
        if let Some(space) = space_of(self.op, key) {
            let literal = matches!(r, V::Null | V::Bool(_)) || matches!(r.text(), Some("" | "0"));
            match (r.text(), o.text()) {
                _ if r.kind() != o.kind() || literal => {
                    if r != o {
                        self.diff(path, r, o);
                    }
                }
                (Some(rt), Some(ot)) => {
                    if let Err(e) = self.ids.learn(space, rt, ot) {
                        self.diffs.push(format!("{path}: {e}"));
                    }
                }
                _ => self.diff(path, r, o),
            }
            return;
        }
        match (r, o) {
            (V::Map(re), V::Map(oe)) => {
                let rk: Vec<&str> = re.iter().map(|(k, _)| k.as_str()).collect();
                let ok: Vec<&str> = oe.iter().map(|(k, _)| k.as_str()).collect();
                if rk != ok {
                    self.diffs.push(format!("{path}: keys playSMS {rk:?} / ours {ok:?}"));
                }
                for (k, rv) in re {
                    if let Some(ov) = o.get(k) {
                        self.value(&format!("{path}.{k}"), k, rv, ov);
                    }
                }
            }
            (V::List(rs), V::List(os)) => self.list(path, rs, os),
            _ if r != o => self.diff(path, r, o),
            _ => {}
        }
    }

    fn same_known_id(&self, r: &V, o: &V) -> bool {
        let V::Map(entries) = r else { return false };
        entries.iter().any(|(k, rv)| {
            let mapped = space_of(self.op, k).zip(rv.text()).and_then(|(s, rt)| self.ids.ours(s, rt));
            mapped.is_some() && mapped == o.get(k).and_then(V::text)
        })
    }

    /// Pairs each reference row with the first of ours that matches it
    /// entirely, then the rest in order, so arbitrary order among rows of
    /// the same second is not a difference but a wrong row is.
    fn list(&mut self, path: &str, rs: &[V], os: &[V]) {
        let mut used = vec![false; os.len()];
        let mut pairs: Vec<Option<usize>> = Vec::new();
        for r in rs {
            let hit = (0..os.len()).find(|&j| {
                if used[j] {
                    return false;
                }
                let mut trial = Cmp { op: self.op, ids: self.ids.clone(), diffs: Vec::new() };
                trial.value(path, "", r, &os[j]);
                trial.diffs.is_empty()
            });
            if let Some(j) = hit {
                used[j] = true;
            }
            pairs.push(hit);
        }
        // A row not matched entirely pairs with the one carrying its known
        // id, else with the next unpaired row, so the diff names the field.
        for (r, slot) in rs.iter().zip(pairs.iter_mut()).filter(|(_, p)| p.is_none()) {
            let known = (0..os.len()).find(|&j| !used[j] && self.same_known_id(r, &os[j]));
            if let Some(j) = known {
                used[j] = true;
                *slot = Some(j);
            }
        }
        for slot in pairs.iter_mut().filter(|p| p.is_none()) {
            if let Some(j) = (0..os.len()).find(|&j| !used[j]) {
                used[j] = true;
                *slot = Some(j);
            }
        }
        if rs.len() != os.len() {
            self.diffs.push(format!("{path}: playSMS {} rows / ours {}", rs.len(), os.len()));
        }
        for (i, (r, pair)) in rs.iter().zip(&pairs).enumerate() {
            match pair {
                Some(j) => self.value(&format!("{path}[{i}]"), "", r, &os[*j]),
                None => self.diffs.push(format!("{path}[{i}]: missing {}", r.short())),
            }
        }
        for (j, o) in os.iter().enumerate().filter(|(j, _)| !used[*j]) {
            self.diffs.push(format!("{path}: extra row {j} {}", o.short()));
        }
        if LIST_OPS.contains(&self.op) {
            let dts: Vec<&str> = os.iter().filter_map(|o| o.get("dt")?.text()).collect();
            if dts.windows(2).any(|w| w[0] < w[1]) {
                self.diffs.push(format!("{path}: rows are not newest first: {dts:?}"));
            }
        }
    }
}

/// Headers playSMS sends on every answer (PHP's session cache headers),
/// compared whatever else the answer is.
const SESSION_HEADERS: [&str; 4] = ["cache-control", "pragma", "expires", "x-frame-options"];

/// What our ingress answered.
#[derive(Debug, Clone)]
struct Got {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    session_headers: Vec<Option<String>>,
    body: String,
}

impl Got {
    /// What playSMS answers for an op it does not know.
    fn is_unknown_op(&self) -> bool {
        self.status == 200 && self.body.is_empty() && self.content_type.as_deref() == Some("text/html; charset=UTF-8")
    }
}

type BodyParser = fn(&str) -> Result<V, String>;

/// Compares our answer with `expected`; learns ids into `ids`.
fn compare(op: &str, expected: &Exchange, got: &Got, ids: &mut Ids) -> Vec<String> {
    let mut diffs = Vec::new();
    if expected.status != got.status {
        diffs.push(format!("HTTP status: playSMS {} / ours {}", expected.status, got.status));
    }
    let want_type = expected.header("content-type");
    if want_type != got.content_type.as_deref() {
        diffs.push(format!("Content-Type: playSMS {want_type:?} / ours {:?}", got.content_type));
    }
    if (300..400).contains(&expected.status) && expected.header("location") != got.location.as_deref() {
        diffs.push(format!("Location: playSMS {:?} / ours {:?}", expected.header("location"), got.location));
    }
    let kind = want_type.unwrap_or("").to_ascii_lowercase();
    let parser: Option<BodyParser> = if expected.body.is_empty() {
        None
    } else if kind.starts_with("application/json") {
        Some(parse_json)
    } else if kind.starts_with("text/xml") {
        Some(parse_xml)
    } else if kind.starts_with("text/plain") {
        Some(parse_php)
    } else {
        None
    };
    match parser {
        None => {
            if expected.body != got.body {
                diffs.push(format!("body: playSMS {:?} / ours {:?}", clip(&expected.body, 120), clip(&got.body, 120)));
            }
        }
        Some(parse) => match (parse(&expected.body), parse(&got.body)) {
            (Ok(r), Ok(o)) => {
                let mut cmp = Cmp { op, ids: ids.clone(), diffs: Vec::new() };
                cmp.value("body", "", &r, &o);
                diffs.extend(cmp.diffs);
                diffs.extend(php_encoding_diff(&kind, &got.body, &o));
                *ids = cmp.ids;
            }
            (Err(e), _) => diffs.push(format!("reference body unreadable: {e}")),
            (_, Err(e)) => diffs.push(format!("ours: {e}")),
        },
    }
    diffs
}

/// Rewrites parameters that quote a reference value with ours: ids and
/// tokens learned earlier, and a `dt` date prefix with today's date (the
/// reference was recorded on another day).
fn rewrite_params(raw: &str, op: &str, ids: &Ids) -> String {
    let today = smsfleet_domain::schedule::format_playsms(time::OffsetDateTime::now_utc());
    raw.split('&')
        .map(|piece| {
            let Some((k, v)) = piece.split_once('=') else { return piece.to_owned() };
            let space = match k {
                "h" => Some(Space::Token),
                "queue" => Some(Space::Queue),
                "smslog_id" => Some(Space::Smslog),
                "last" if op == "ds" => Some(Space::Smslog),
                "last" if op == "ix" => Some(Space::Inbox),
                "last" => Some(Space::Incoming),
                "login_key" => Some(Space::LoginKey),
                _ => None,
            };
            if let Some(ours) = space.and_then(|s| ids.ours(s, &percent_decode(v))) {
                return format!("{k}={ours}");
            }
            let shape = "0000-00-00 00:00:00";
            let date_prefix = !v.is_empty()
                && v.len() <= shape.len()
                && v.bytes().zip(shape.bytes()).all(|(c, s)| if s == b'0' { c.is_ascii_digit() } else { c == s });
            if k == "dt" && op == "ds" && date_prefix {
                return format!("{k}={}", &today[..v.len()]);
            }
            piece.to_owned()
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn send(client: &reqwest::Client, base: &str, t: &Transcript, ids: &Ids) -> Got {
    let op = t.op();
    let target = match t.target.split_once('?') {
        Some((path, query)) => format!("{path}?{}", rewrite_params(query, &op, ids)),
        None => t.target.clone(),
    };
    let method = reqwest::Method::from_bytes(t.method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}{target}"));
    if let Some(ct) = &t.content_type {
        req = req.header("content-type", ct);
        let body = if ct.starts_with("application/x-www-form-urlencoded") {
            rewrite_params(&String::from_utf8_lossy(&t.body), &op, ids).into_bytes()
        } else {
            t.body.clone()
        };
        req = req.body(body);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{}: {e}", t.file));
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (content_type, location) = (header("content-type"), header("location"));
    let session_headers = SESSION_HEADERS.iter().map(|h| header(h)).collect();
    let status = resp.status().as_u16();
    Got { status, content_type, location, session_headers, body: resp.text().await.unwrap_or_default() }
}

// ---------------------------------------------------------------- fixture

const ADMIN_TOKEN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The reference install's users: (uid, username). Our uids are looked up
/// by name, so a uid in an answer is compared with the right account.
const USERS: [(u16, &str); 9] = [
    (1, "admin"),
    (2, "alice"),
    (3, "bob"),
    (4, "carol"),
    (5, "dave"),
    (6, "erin"),
    (7, "frank"),
    (8, "gina"),
    (9, "hank"),
];

#[derive(Debug, Clone)]
enum Step {
    /// `smsfleet <args>`.
    Cli(Vec<String>),
    /// The account should exist (made by an accountadd transcript); if it
    /// does not, the step fails and the account is made by the CLI so the
    /// rest of the replay still means something.
    Account { username: &'static str, password: &'static str, role: &'static str, email: &'static str },
    /// `smsfleet rate set --rate R`, then wait until the state feed carries it.
    DefaultRate(&'static str),
}

fn cli(args: &[&str]) -> Step {
    Step::Cli(args.iter().map(|a| (*a).to_owned()).collect())
}

fn set(username: &str, args: &[&str]) -> Step {
    let mut all = vec!["account", "set", username];
    all.extend_from_slice(args);
    cli(&all)
}

/// State the reference install set outside the API (its README and the
/// transcripts' notes), applied before the transcript that first needs it.
fn fixture_steps() -> Vec<(u16, &'static str, Vec<Step>)> {
    let phonebook = fixtures().join("playsms-phonebook-alice.csv").display().to_string();
    let token = |c: char| c.to_string().repeat(32);
    vec![
        (
            1,
            "first admin: uid 1, token a×32, webservices from 127.0.0.1 (password unknown until 053 sets it)",
            vec![
                cli(&[
                    "account",
                    "create",
                    "--username",
                    "admin",
                    "--role",
                    "admin",
                    "--password",
                    "fixture-initial-admin",
                    "--token",
                    ADMIN_TOKEN,
                    "--email",
                    "noreply@playsms.org",
                    "--ip",
                    "127.0.0.1",
                ]),
                set("admin", &["--name", "Administrator", "--mobile", "+62000000000"]),
            ],
        ),
        (
            35,
            "tokens and webservices of the accounts 027–034 created (playSMS: written into tblUser)",
            vec![
                Step::Account { username: "alice", password: "alicepass1", role: "user", email: "alice@example.com" },
                Step::Account { username: "bob", password: "bobpass12", role: "subuser", email: "bob@example.com" },
                Step::Account { username: "carol", password: "carolpass1", role: "user", email: "carol@example.com" },
                Step::Account { username: "dave", password: "davepass1", role: "user", email: "dave@example.com" },
                Step::Account { username: "erin", password: "erinpass1", role: "user", email: "erin@example.com" },
                Step::Account { username: "frank", password: "frankpass1", role: "user", email: "frank@example.com" },
                Step::Account { username: "gina", password: "ginapass1", role: "subuser", email: "gina@example.com" },
                set("alice", &["--token", &token('b'), "--webservices", "on", "--webservices-ip", "127.0.0.1"]),
                set("bob", &["--token", &token('c'), "--webservices", "on", "--webservices-ip", "127.0.0.1"]),
                set("carol", &["--token", "", "--webservices", "on", "--webservices-ip", "127.0.0.1"]),
                set("dave", &["--token", &token('d'), "--webservices", "off", "--webservices-ip", "127.0.0.1"]),
                set("erin", &["--token", &token('e'), "--webservices", "on", "--webservices-ip", "10.1.2.3"]),
                set("frank", &["--token", &token('f'), "--webservices", "on", "--webservices-ip", "127.0.0.1"]),
            ],
        ),
        (
            86,
            "alice's phonebook: groups FRIENDS, FAMILY; Andy and Anita in FRIENDS, Other Person in none",
            vec![
                cli(&["phonebook", "group", "add", "--user", "alice", "--code", "FRIENDS", "--name", "Friends"]),
                cli(&["phonebook", "group", "add", "--user", "alice", "--code", "FAMILY", "--name", "Family"]),
                cli(&["phonebook", "import", "--user", "alice", &phonebook]),
            ],
        ),
        (124, "sms_board keyword IDOL owned by alice", vec![cli(&["keyword", "add", "IDOL", "--user", "alice"])]),
        (198, "default rate 1", vec![Step::DefaultRate("1")]),
        (200, "default rate 10", vec![Step::DefaultRate("10")]),
        (
            201,
            "hank (added in 052): token 9×32, webservices from 127.0.0.1",
            vec![
                Step::Account { username: "hank", password: "hankpass1", role: "user", email: "hank@example.com" },
                set("hank", &["--token", &token('9'), "--webservices", "on", "--webservices-ip", "127.0.0.1"]),
            ],
        ),
    ]
}

/// The default rate the ledger last published on the state feed.
type SeenRate = Arc<Mutex<Option<rust_decimal::Decimal>>>;

async fn apply_step(f: &Fleet, step: &Step, seen_rate: &SeenRate) -> Result<(), String> {
    match step {
        Step::Cli(args) => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            f.try_cli(&args).await.map(|_| ()).map_err(|e| format!("smsfleet {}: {e}", args.join(" ")))
        }
        Step::Account { username, password, role, email } => {
            if smsfleet_store::accounts::by_username(&f.env.pool, username).await.unwrap().is_some() {
                return Ok(());
            }
            let made = f
                .try_cli(&[
                    "account",
                    "create",
                    "--username",
                    username,
                    "--password",
                    password,
                    "--role",
                    role,
                    "--email",
                    email,
                ])
                .await;
            Err(format!("{username} was not created by its accountadd transcript; made by the CLI instead ({made:?})"))
        }
        Step::DefaultRate(rate) => {
            f.try_cli(&["rate", "set", "--rate", rate]).await.map_err(|e| format!("rate set: {e}"))?;
            let want: rust_decimal::Decimal = rate.parse().unwrap();
            let seen = smsfleet_testkit::eventually(Duration::from_secs(15), || {
                let seen = *seen_rate.lock().unwrap();
                async move { (seen == Some(want)).then_some(()) }
            })
            .await;
            // The ingress follows the same feed; give it a moment to apply.
            tokio::time::sleep(Duration::from_millis(200)).await;
            seen.ok_or_else(|| format!("default rate {rate} not published within 15 s"))
        }
    }
}

// ---------------------------------------------------------------- replay

/// Reads that may lag behind the writes before them (delivery reports,
/// projections, credit): retried until they match, then reported.
const EVENTUAL_OPS: [&str; 7] = ["ds", "in", "ix", "sx", "cr", "query", "creditview"];
const EVENTUAL_WINDOW: Duration = Duration::from_secs(4);

#[derive(Debug)]
enum Outcome {
    Match,
    Deviation,
    Mismatch(Vec<String>),
}

#[derive(Debug)]
struct Verdict {
    file: String,
    note: Option<String>,
    op: String,
    outcome: Outcome,
}

/// Sends one transcript's request (again while an eventually consistent
/// read does not match yet) and judges the last answer.
async fn replay_one(
    client: &reqwest::Client,
    base: &str,
    t: &Transcript,
    deviation: Option<&String>,
    ids: &mut Ids,
) -> Outcome {
    let op = t.op();
    let ours_expected = deviation.and_then(|_| deviation_expectation(&t.file));
    let started = Instant::now();
    loop {
        let got = send(client, base, t, ids).await;
        let mut trial = ids.clone();
        let against_reference = compare(&op, &t.expected, &got, &mut trial);
        let transport: Vec<String> = SESSION_HEADERS
            .iter()
            .zip(&got.session_headers)
            .filter(|(h, ours)| t.expected.header(h) != ours.as_deref())
            .map(|(h, ours)| format!("{h}: playSMS {:?} / ours {ours:?}", t.expected.header(h)))
            .collect();
        let (diffs, learned) = match (&deviation, &ours_expected) {
            (None, _) => (against_reference, trial),
            (Some(_), _) if against_reference.is_empty() => (
                vec!["listed as a deviation but matches playSMS: remove it from playsms-deviations.tsv".to_owned()],
                trial,
            ),
            (Some(_), None) => (Vec::new(), ids.clone()),
            (Some(_), Some(expected)) => {
                let mut ours = ids.clone();
                let d = compare(&op, expected, &got, &mut ours);
                (d.into_iter().map(|d| format!("vs our expected answer: {d}")).collect(), ours)
            }
        };
        let diffs: Vec<String> = transport.into_iter().chain(diffs).collect();
        let retry = !diffs.is_empty()
            && EVENTUAL_OPS.contains(&op.as_str())
            && !got.is_unknown_op()
            && started.elapsed() < EVENTUAL_WINDOW;
        if retry {
            tokio::time::sleep(Duration::from_millis(150)).await;
            continue;
        }
        *ids = learned;
        return match (diffs.is_empty(), deviation) {
            (true, Some(_)) => Outcome::Deviation,
            (true, None) => Outcome::Match,
            (false, _) => Outcome::Mismatch(diffs),
        };
    }
}

fn report(results: &[Verdict], problems: &[String]) -> (String, usize) {
    let mut by_op: BTreeMap<&str, Vec<&Verdict>> = BTreeMap::new();
    for r in results {
        by_op.entry(if r.op.is_empty() { "(no op)" } else { &r.op }).or_default().push(r);
    }
    let mut out = String::new();
    let (mut matched, mut deviations, mut mismatches) = (0, 0, 0);
    for (op, rs) in &by_op {
        let m = rs.iter().filter(|r| matches!(r.outcome, Outcome::Match)).count();
        let d = rs.iter().filter(|r| matches!(r.outcome, Outcome::Deviation)).count();
        let bad: Vec<&&Verdict> = rs.iter().filter(|r| matches!(r.outcome, Outcome::Mismatch(_))).collect();
        matched += m;
        deviations += d;
        mismatches += bad.len();
        out += &format!("{op}: {m} match, {d} deviation, {} mismatch\n", bad.len());
        for r in bad {
            if let Outcome::Mismatch(diffs) = &r.outcome {
                match &r.note {
                    Some(note) => out += &format!("  {} ({note})\n", r.file),
                    None => out += &format!("  {}\n", r.file),
                }
                for d in diffs.iter().take(4) {
                    out += &format!("    {}\n", clip(d, 220));
                }
                if diffs.len() > 4 {
                    out += &format!("    … {} more\n", diffs.len() - 4);
                }
            }
        }
    }
    for p in problems {
        out += &format!("fixture: {p}\n");
    }
    out += &format!(
        "transcripts: {} — {matched} match, {deviations} deviations, {mismatches} mismatches; {} fixture problems\n",
        results.len(),
        problems.len()
    );
    (out, mismatches + problems.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playsms_transcripts_replay() {
    let report_only = std::env::var("TRANSCRIPTS_REPORT").is_ok_and(|v| !v.is_empty() && v != "0");
    let transcripts = load_transcripts();
    let deviations = load_deviations();
    let mut steps: BTreeMap<u16, Vec<(&str, Vec<Step>)>> = BTreeMap::new();
    for (before, what, list) in fixture_steps() {
        steps.entry(before).or_default().push((what, list));
    }

    let mut f = Fleet::prepare(&[]).await;
    // The reference's gateway_number: the sender when `from` is not usable.
    // The reference also ran with brute_force_detection=0, so its deliberate
    // failures do not block 127.0.0.1.
    f.ingress_env.push(("SMSFLEET_DEFAULT_SENDER".into(), "1234".into()));
    f.ingress_env.push(("SMSFLEET_LOGIN_ATTEMPT_LIMIT".into(), "0".into()));
    f.start_roles().await;
    let seen_rate: SeenRate = Arc::default();
    let feed_rate = seen_rate.clone();
    let _feed = smsfleet_bus::StateFeed::start(&f.env.bus, move |e| {
        if let smsfleet_bus::StateEvent::Rates(r) = e {
            *feed_rate.lock().unwrap() = r.default_rate.parse().ok();
        }
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let started = Instant::now();
    let mut ids = Ids::default();
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for t in &transcripts {
        for (what, list) in steps.remove(&t.number).unwrap_or_default() {
            for step in &list {
                if let Err(e) = apply_step(&f, step, &seen_rate).await {
                    problems.push(format!("before {:03} ({what}): {e}", t.number));
                }
            }
        }
        for (ref_uid, name) in USERS {
            if ids.ours(Space::Uid, &ref_uid.to_string()).is_none()
                && let Some(row) = smsfleet_store::accounts::by_username(&f.env.pool, name).await.unwrap()
            {
                let _ = ids.learn(Space::Uid, &ref_uid.to_string(), &row.uid.to_string());
            }
        }
        let outcome = replay_one(&client, &f.ingress, t, deviations.get(&t.file), &mut ids).await;
        results.push(Verdict { file: t.file.clone(), note: t.notes.first().cloned(), op: t.op(), outcome });
    }
    let (text, failures) = report(&results, &problems);
    println!("{text}replayed in {:.1} s", started.elapsed().as_secs_f64());
    if !report_only {
        assert_eq!(failures, 0, "transcript replay: mismatches (see the report above)");
    }
}

// ---------------------------------------------------------------- data checks

/// The copy is complete and every reference body is readable by the comparator.
#[test]
fn every_transcript_parses() {
    let transcripts = load_transcripts();
    assert_eq!(transcripts.len(), 202);
    for (i, t) in transcripts.iter().enumerate() {
        assert_eq!(usize::from(t.number), i + 1, "{} out of order", t.file);
        assert!(t.target.starts_with("/index.php"), "{}", t.file);
        assert!(t.expected.status > 0, "{}", t.file);
        let mut ids = Ids::default();
        let got = Got {
            status: t.expected.status,
            content_type: t.expected.header("content-type").map(str::to_owned),
            location: t.expected.header("location").map(str::to_owned),
            session_headers: Vec::new(),
            body: t.expected.body.clone(),
        };
        let diffs = compare(&t.op(), &t.expected, &got, &mut ids);
        assert!(diffs.is_empty(), "{} against itself: {diffs:?}", t.file);
    }
    let index = std::fs::read_to_string(fixtures().join("playsms-transcripts/INDEX.tsv")).unwrap();
    assert_eq!(index.lines().count(), 202);
}

/// Every listed deviation names a transcript, is explained in
/// COMPATIBILITY.md, and its expected answer (if any) is readable.
#[test]
fn deviations_are_documented() {
    let transcripts = load_transcripts();
    let compatibility =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../COMPATIBILITY.md")).unwrap();
    let listed = load_deviations();
    for entry in std::fs::read_dir(fixtures().join("playsms-deviations")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(listed.contains_key(&name), "playsms-deviations/{name} is not listed in playsms-deviations.tsv");
    }
    for (file, reason) in listed {
        let t = transcripts.iter().find(|t| t.file == file).unwrap_or_else(|| panic!("{file}: no such transcript"));
        assert!(!reason.is_empty(), "{file}: no reason");
        assert!(compatibility.contains(&file), "{file} is not explained in COMPATIBILITY.md");
        if let Some(expected) = deviation_expectation(&file) {
            let got = Got {
                status: expected.status,
                content_type: expected.header("content-type").map(str::to_owned),
                location: expected.header("location").map(str::to_owned),
                session_headers: Vec::new(),
                body: expected.body.clone(),
            };
            let diffs = compare(&t.op(), &expected, &got, &mut Ids::default());
            assert!(diffs.is_empty(), "{file}: expected answer unreadable: {diffs:?}");
        }
    }
}

#[test]
fn comparator_rules() {
    let mut ids = Ids::default();
    let r = parse_json(r#"{"data":[{"smslog_id":1,"dt":"2026-11-23 01:21:30","msg":"a"},{"smslog_id":2,"dt":"2026-11-23 01:21:30","msg":"b"}],"timestamp":5}"#).unwrap();
    let o = parse_json(r#"{"data":[{"smslog_id":90,"dt":"2027-01-01 00:00:01","msg":"b"},{"smslog_id":80,"dt":"2027-01-01 00:00:00","msg":"a"}],"timestamp":7}"#).unwrap();
    let mut cmp = Cmp { op: "ds", ids: ids.clone(), diffs: Vec::new() };
    cmp.value("body", "", &r, &o);
    assert!(cmp.diffs.is_empty(), "{:?}", cmp.diffs);
    ids = cmp.ids;
    assert_eq!(ids.ours(Space::Smslog, "1"), Some("80"));
    // A known id must map to the same value again; key order and types count.
    let mut cmp = Cmp { op: "ds", ids: ids.clone(), diffs: Vec::new() };
    cmp.value(
        "body",
        "",
        &parse_json(r#"{"smslog_id":1,"a":"1"}"#).unwrap(),
        &parse_json(r#"{"smslog_id":90,"a":1}"#).unwrap(),
    );
    assert_eq!(cmp.diffs.len(), 2, "{:?}", cmp.diffs);
    let mut cmp = Cmp { op: "cr", ids: Ids::default(), diffs: Vec::new() };
    cmp.value("body", "", &parse_json(r#"{"a":1,"b":2}"#).unwrap(), &parse_json(r#"{"b":2,"a":1}"#).unwrap());
    assert_eq!(cmp.diffs.len(), 1);
    assert_eq!(
        rewrite_params("op=ds&queue=abc&dt=2026-11&c=2", "ds", &{
            let mut i = Ids::default();
            i.learn(Space::Queue, "abc", "xyz").unwrap();
            i
        })[..19],
        *"op=ds&queue=xyz&dt="
    );
    assert_eq!(
        parse_xml("<?xml version=\"1.0\"?>\n<response><data><item><a>&#x41F;&amp;</a></item></data><b/></response>\n")
            .unwrap(),
        V::Map(vec![
            ("data".into(), V::List(vec![V::Map(vec![("a".into(), V::Str("П&".into()))])])),
            ("b".into(), V::Str(String::new()))
        ])
    );
    assert!(parse_php(r#"a:1:{s:1:"m";s:3:"П";}"#).is_err(), "a length in characters is wrong");
    assert!(parse_php(r#"a:1:{s:1:"m";s:2:"П";}"#).is_ok());
}
