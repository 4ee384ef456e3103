//! The response value tree shared by all three encoders.
//!
//! It mirrors a PHP value (`array` as ordered map or list, scalars, null)
//! rather than `serde_json::Value`, because playSMS key order and the
//! int/float/string distinction are part of the wire in every format.

/// An ordered PHP-like value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A PHP list (keys 0..n), e.g. the `data` array of list ops.
    List(Vec<Node>),
    /// A PHP associative array; insertion order is kept on the wire.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// An empty map, to be filled with [`Node::with`].
    pub fn map() -> Node {
        Node::Map(Vec::new())
    }

    /// Builder: append `key => value` (only meaningful on a `Map`; other
    /// variants are returned unchanged so builders never panic).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Node>) -> Node {
        self.push(key, value);
        self
    }

    /// Append `key => value` to a `Map`; replaces the value in place when the
    /// key already exists, like a PHP array assignment keeps the key position.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Node>) {
        if let Node::Map(entries) = self {
            let key = key.into();
            let value = value.into();
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
    }

    /// Look a key up in a `Map` (None for other variants).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl From<&str> for Node {
    fn from(v: &str) -> Self {
        Node::Str(v.to_owned())
    }
}

impl From<String> for Node {
    fn from(v: String) -> Self {
        Node::Str(v)
    }
}

impl From<&String> for Node {
    fn from(v: &String) -> Self {
        Node::Str(v.clone())
    }
}

impl From<i64> for Node {
    fn from(v: i64) -> Self {
        Node::Int(v)
    }
}

impl From<i32> for Node {
    fn from(v: i32) -> Self {
        Node::Int(i64::from(v))
    }
}

impl From<u32> for Node {
    fn from(v: u32) -> Self {
        Node::Int(i64::from(v))
    }
}

impl From<f64> for Node {
    fn from(v: f64) -> Self {
        Node::Float(v)
    }
}

impl From<bool> for Node {
    fn from(v: bool) -> Self {
        Node::Bool(v)
    }
}

impl<T: Into<Node>> From<Option<T>> for Node {
    fn from(v: Option<T>) -> Self {
        v.map_or(Node::Null, Into::into)
    }
}

impl<T: Into<Node>> From<Vec<T>> for Node {
    fn from(v: Vec<T>) -> Self {
        Node::List(v.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_keeps_order_and_replaces_in_place() {
        let n = Node::map().with("b", 1i64).with("a", "x").with("b", Option::<i64>::None);
        assert_eq!(n, Node::Map(vec![("b".into(), Node::Null), ("a".into(), Node::Str("x".into())),]));
        assert_eq!(n.get("a"), Some(&Node::Str("x".into())));
        assert_eq!(n.get("zz"), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(Node::from(Some(2.5)), Node::Float(2.5));
        assert_eq!(Node::from(true), Node::Bool(true));
        assert_eq!(Node::from(vec!["a", "b"]), Node::List(vec![Node::Str("a".into()), Node::Str("b".into())]));
        // push on a non-map is a no-op rather than a panic.
        let mut s = Node::from("x");
        s.push("k", 1i64);
        assert_eq!(s, Node::Str("x".into()));
    }
}
