//! Request parameters with playSMS/PHP semantics.
//!
//! playSMS reads everything from `$_REQUEST = array_merge($_GET, $_POST)` and
//! trims every value, so the HTTP layer builds one [`Params`] per source
//! (query, urlencoded or multipart body, or our JSON-body extension) and
//! merges them here; op handlers then only see the merged, trimmed view.
//! HTML purifying and `addslashes` are storage concerns and not done here.

use std::collections::HashMap;

/// The response encoding the client asked for with `format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Xml,
    Serialize,
}

/// Merged request parameters; keys are case-sensitive, values always trimmed.
///
/// Kept as an ordered list because PHP arrays are ordered and an overridden
/// key keeps its first position, which `iter` preserves. Past
/// [`INDEXED_FROM`] keys an index beside it makes each insert and look-up
/// O(1), so a hostile form with hundreds of thousands of keys parses in
/// linear time (a linear search made it N²); an ordinary request of a dozen
/// keys stays a short scan without hashing.
#[derive(Debug, Clone, Default)]
pub struct Params {
    entries: Vec<(String, String)>,
    /// Position of each key in `entries` once there are more than
    /// [`INDEXED_FROM`] of them; always derived from `entries`.
    index: HashMap<String, usize>,
}

/// How many keys a scan handles before the index pays for itself.
const INDEXED_FROM: usize = 16;

/// Equal when the ordered entries are; the index follows from them.
impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Params {}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Decode an `application/x-www-form-urlencoded` string (query string or
    /// body). `+` is a space, bad `%` escapes stay literal, invalid UTF-8
    /// becomes U+FFFD, and raw spaces from sloppy clients are accepted.
    pub fn from_query(raw_query: &str) -> Params {
        Params::from_pairs(form_urlencoded::parse(raw_query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())))
    }

    /// Build from already-decoded (name, value) pairs, e.g. multipart fields.
    /// Repeated names: the last value wins, as in PHP.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Params {
        let mut params = Params::new();
        for (key, value) in pairs {
            if let Some(key) = php_var_name(&key) {
                params.insert(key, value);
            }
        }
        params
    }

    /// `array_merge($_GET, $_POST)`: body values override query values.
    pub fn merge(query: Params, body: Params) -> Params {
        let mut merged = query;
        for (key, value) in body.entries {
            merged.insert(key, value);
        }
        merged
    }

    /// Params from a JSON object body (our `POST /playsms/api.php` variant;
    /// real playSMS ignores JSON bodies). Strings are taken as-is, numbers
    /// and bools as their text, arrays of scalars joined with `,` (the
    /// separator `to` already uses); nulls and nested objects are skipped.
    /// `user`/`token` are accepted as friendlier aliases of `u`/`h`.
    pub fn from_json_body(v: &serde_json::Value) -> Params {
        let mut params = Params::new();
        let Some(obj) = v.as_object() else {
            return params;
        };
        for (key, value) in obj {
            if let Some(text) = json_scalar_text(value) {
                params.insert(key.clone(), text);
            }
        }
        for (alias, key) in [("user", "u"), ("token", "h")] {
            if !params.contains(key)
                && let Some(value) = params.get(alias).map(str::to_owned)
            {
                params.insert(key.to_owned(), value);
            }
        }
        params
    }

    /// Set `key` (value gets trimmed); an existing key keeps its position.
    pub fn insert(&mut self, key: impl Into<String>, value: impl AsRef<str>) {
        let key = key.into();
        let value = php_trim(value.as_ref()).to_owned();
        match self.position(&key) {
            Some(at) => self.entries[at].1 = value,
            None => {
                if !self.index.is_empty() {
                    self.index.insert(key.clone(), self.entries.len());
                }
                self.entries.push((key, value));
                if self.index.is_empty() && self.entries.len() > INDEXED_FROM {
                    self.index = self.entries.iter().enumerate().map(|(at, (k, _))| (k.clone(), at)).collect();
                }
            }
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        if self.index.is_empty() {
            self.entries.iter().position(|(k, _)| k == key)
        } else {
            self.index.get(key).copied()
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|at| self.entries[at].1.as_str())
    }

    /// Like `get`, but treats an empty value as absent, which is how
    /// playSMS's `if ($x)`-style checks see it.
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The normalised op name, lower-case. playSMS keeps only letters,
    /// digits, whitespace, `.`, `-`, `_` (`core_sanitize_filename`) and
    /// upper-cases the rest, so ops are case-insensitive. `None` means the
    /// `if (_OP_)` check fails: missing, empty after filtering, or `"0"`
    /// (falsy in PHP) — those get the bare envelope.
    pub fn op(&self) -> Option<String> {
        let raw = self.get("op")?;
        let filtered: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace() || matches!(c, '.' | '-' | '_'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if filtered.is_empty() || filtered == "0" { None } else { Some(filtered) }
    }

    /// `strtoupper(trim(format))`: only `XML` and `SERIALIZE` are special;
    /// anything else, including absent, is JSON.
    pub fn format(&self) -> Format {
        let Some(raw) = self.get("format") else {
            return Format::Json;
        };
        let upper = php_trim(raw).to_ascii_uppercase();
        match upper.as_str() {
            "XML" => Format::Xml,
            "SERIALIZE" => Format::Serialize,
            _ => Format::Json,
        }
    }
}

/// PHP `trim()` strips only these bytes, not Unicode whitespace.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// PHP's request-variable name mangling (`php_register_variable`): leading
/// spaces dropped, then spaces and dots become `_` (`data.username` arrives
/// as `data_username`). Empty names are dropped. Bracket array syntax is not
/// modelled: `a[]` stays a literal key, no playSMS op reads arrays.
fn php_var_name(raw: &str) -> Option<String> {
    let name: String =
        raw.trim_start_matches(' ').chars().map(|c| if matches!(c, ' ' | '.') { '_' } else { c }).collect();
    (!name.is_empty()).then_some(name)
}

fn json_scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        serde_json::Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
                    serde_json::Value::Null => Some(String::new()),
                    other => json_scalar_text(other),
                })
                .collect();
            parts.map(|p| p.join(","))
        }
        serde_json::Value::Null | serde_json::Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_decoding() {
        let p = Params::from_query("a=1+2&b=%2B62&c=x%20y&d=%zz%4&e=%FF&f&=nokey");
        assert_eq!(p.get("a"), Some("1 2"));
        assert_eq!(p.get("b"), Some("+62"));
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.get("d"), Some("%zz%4"));
        assert_eq!(p.get("e"), Some("\u{FFFD}"));
        assert_eq!(p.get("f"), Some(""));
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn raw_space_accepted() {
        let p = Params::from_query("schedule=2030-01-01 10:00:00&op=pv");
        assert_eq!(p.get("schedule"), Some("2030-01-01 10:00:00"));
        assert_eq!(p.op().as_deref(), Some("pv"));
    }

    #[test]
    fn values_trimmed_and_last_wins() {
        let p = Params::from_query("to=+628&to=%20x%09&msg=%0Ahi%0D%0A");
        assert_eq!(p.get("to"), Some("x"));
        assert_eq!(p.get("msg"), Some("hi"));
        assert_eq!(p.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["to", "msg"]);
    }

    #[test]
    fn key_mangling() {
        let p = Params::from_query("data.username=a&my+key=b");
        assert_eq!(p.get("data_username"), Some("a"));
        assert_eq!(p.get("my_key"), Some("b"));
    }

    #[test]
    fn body_overrides_query() {
        let q = Params::from_query("app=ws&op=cr&u=admin&h=bad");
        let b = Params::from_query("h=aaaa");
        let m = Params::merge(q, b);
        assert_eq!(m.get("h"), Some("aaaa"));
        assert_eq!(m.get("u"), Some("admin"));
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["app", "op", "u", "h"]);
    }

    #[test]
    fn get_nonempty() {
        let p = Params::from_query("a=%20%20&b=x");
        assert_eq!(p.get("a"), Some(""));
        assert_eq!(p.get_nonempty("a"), None);
        assert_eq!(p.get_nonempty("b"), Some("x"));
        assert_eq!(p.get_nonempty("zz"), None);
        assert_eq!(p.get("B"), None);
    }

    #[test]
    fn op_normalisation() {
        let op = |q: &str| Params::from_query(q).op();
        assert_eq!(op("op=CR").as_deref(), Some("cr"));
        assert_eq!(op("op=+pv+").as_deref(), Some("pv"));
        assert_eq!(op("op=get_TOKEN").as_deref(), Some("get_token"));
        assert_eq!(op("op=../c/r").as_deref(), Some("..cr"));
        assert_eq!(op("op=%3C%3E"), None);
        assert_eq!(op("op="), None);
        assert_eq!(op("op=0"), None);
        assert_eq!(op("x=1"), None);
    }

    #[test]
    fn format_selection() {
        let f = |q: &str| Params::from_query(q).format();
        assert_eq!(f("format=xml"), Format::Xml);
        assert_eq!(f("format=+XmL+"), Format::Xml);
        assert_eq!(f("format=serialize"), Format::Serialize);
        assert_eq!(f("format=json"), Format::Json);
        assert_eq!(f("format=plain"), Format::Json);
        assert_eq!(f(""), Format::Json);
    }

    #[test]
    fn multipart_pairs() {
        let p = Params::from_pairs([("u".into(), "admin\n".into()), ("op".into(), "cr".into())]);
        assert_eq!(p.get("u"), Some("admin"));
        assert_eq!(p.op().as_deref(), Some("cr"));
    }

    #[test]
    fn json_body() {
        let p = Params::from_json_body(&json!({
            "user": "alice", "token": " bbbb ", "op": "pv",
            "to": ["628111", 628222], "unicode": true, "amount": 50.25,
            "nested": {"x": 1}, "nothing": null
        }));
        assert_eq!(p.get("u"), Some("alice"));
        assert_eq!(p.get("h"), Some("bbbb"));
        assert_eq!(p.get("to"), Some("628111,628222"));
        assert_eq!(p.get("unicode"), Some("1"));
        assert_eq!(p.get("amount"), Some("50.25"));
        assert_eq!(p.get("nested"), None);
        assert_eq!(p.get("nothing"), None);
    }

    /// 700,000 keys is what the 8 MB body limit admits. A linear key search
    /// makes this ~2.5·10^11 key comparisons (a 200,000-key form ran over two
    /// minutes before the fix); with the index it is 700,000 look-ups, done
    /// in a few seconds even unoptimised. Asserts the result, not a time.
    #[test]
    fn a_repeated_key_keeps_its_place_across_the_switch_to_the_index() {
        let mut query: Vec<String> = (0..40).map(|i| format!("k{i}={i}")).collect();
        query.insert(30, "k3=late".to_owned());
        let p = Params::from_query(&query.join("&"));
        assert_eq!(p.get("k3"), Some("late"));
        assert_eq!(p.iter().nth(3), Some(("k3", "late")));
        assert_eq!(p.iter().count(), 40);
        assert_eq!(p.get("k39"), Some("39"));
    }

    #[test]
    fn many_distinct_keys_parse_in_linear_time() {
        const KEYS: usize = 700_000;
        let mut form = String::with_capacity(KEYS * 16);
        for i in 0..KEYS {
            form.push_str(&format!("k{i}=v{i}&"));
        }
        form.push_str("k7=last&a[]=1&a[]=2");
        let p = Params::from_query(&form);
        assert_eq!(p.len(), KEYS + 1);
        assert_eq!(p.get("k0"), Some("v0"));
        assert_eq!(p.get("k7"), Some("last"));
        assert_eq!(p.get("a[]"), Some("2"));
        assert_eq!(p.get(&format!("k{}", KEYS - 1)), Some(format!("v{}", KEYS - 1).as_str()));
        let order: Vec<&str> = p.iter().map(|(k, _)| k).take(3).collect();
        assert_eq!(order, ["k0", "k1", "k2"]);
        assert_eq!(p.iter().last().map(|(k, _)| k), Some("a[]"));
    }

    #[test]
    fn json_body_explicit_u_h_win_over_aliases() {
        let p = Params::from_json_body(&json!({"u": "a", "user": "b", "h": "x", "token": "y"}));
        assert_eq!(p.get("u"), Some("a"));
        assert_eq!(p.get("h"), Some("x"));
        assert!(Params::from_json_body(&json!([1, 2])).is_empty());
    }
}
