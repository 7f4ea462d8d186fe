//! A TOML value tree that keeps the byte span of every value and key, so that
//! every stack error can point at file:line:column.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::path::PathSeg;
use toml::Spanned;

/// A value from a stack file with its byte span in that file.
#[derive(Debug, Clone)]
pub struct Node {
    pub span: Range<usize>,
    pub kind: NodeKind,
}

/// A table key with its byte span.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<(Key, Node)>),
}

impl Node {
    /// The entries when this is a table.
    pub fn as_table(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            NodeKind::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entry named `name` when this is a table.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.as_table()?.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
    }

    /// A short name for the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Str(_) => "a string",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a float",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Datetime(_) => "a datetime",
            NodeKind::Array(_) => "an array",
            NodeKind::Table(_) => "a table",
        }
    }

    /// The value without spans.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Str(s) | NodeKind::Datetime(s) => Value::String(s.clone()),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Array(a) => Value::Array(a.iter().map(Node::to_json).collect()),
            NodeKind::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }

    /// The span of the value at a JSON-like path (`field`, `[2]`) inside this
    /// node, or of the deepest node on the way when the path leaves the tree.
    pub fn span_at(&self, path: &[PathSeg]) -> Range<usize> {
        let mut node = self;
        let mut span = self.span.clone();
        for seg in path {
            let next = match (seg, &node.kind) {
                (PathSeg::Field(f), NodeKind::Table(t)) => match t.iter().find(|(k, _)| &k.name == f) {
                    Some((k, v)) => {
                        span = k.span.clone();
                        Some(v)
                    }
                    None => None,
                },
                (PathSeg::Index(i), NodeKind::Array(a)) => a.get(*i),
                _ => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    if matches!(seg, PathSeg::Index(_)) {
                        span = n.span.clone();
                    } else if !matches!(n.kind, NodeKind::Table(_)) {
                        span = n.span.clone();
                    }
                }
                None => break,
            }
        }
        span
    }

    /// The node at `path`, if it exists.
    pub fn at(&self, path: &[PathSeg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.kind) {
                (PathSeg::Field(f), NodeKind::Table(t)) => t.iter().find(|(k, _)| &k.name == f).map(|(_, v)| v)?,
                (PathSeg::Index(i), NodeKind::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

const DATETIME_KEY: &str = "$__toml_private_datetime";
// The protocol by which the toml deserializer hands out spans (serde_spanned).
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";

/// Keys come spanned, except the private key of a datetime, which comes bare;
/// `Spanned<String>` refuses the bare one, so keys get their own visitor.
impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key {
                    name: v.to_string(),
                    span: 0..0,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                let (mut start, mut end, mut name) = (0usize, 0usize, None);
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        SPANNED_START => start = map.next_value()?,
                        SPANNED_END => end = map.next_value()?,
                        SPANNED_VALUE => name = Some(map.next_value::<String>()?),
                        _ => return Err(de::Error::custom("unexpected spanned field")),
                    }
                }
                let name = name.ok_or_else(|| de::Error::custom("spanned key without a value"))?;
                Ok(Key { name, span: start..end })
            }
        }
        d.deserialize_struct(SPANNED_NAME, &[SPANNED_START, SPANNED_END, SPANNED_VALUE], KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<NodeKind>::deserialize(d)?;
        Ok(Node {
            span: s.span(),
            kind: s.into_inner(),
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        i64::try_from(v)
            .map(NodeKind::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(NodeKind::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut out: Vec<(Key, Node)> = Vec::new();
        while let Some(k) = map.next_key::<Key>()? {
            if k.name == DATETIME_KEY {
                let v: String = map.next_value()?;
                return Ok(NodeKind::Datetime(v));
            }
            let v = map.next_value::<Node>()?;
            out.push((k, v));
        }
        Ok(NodeKind::Table(out))
    }
}

/// Parse one stack file into a spanned tree.
pub fn parse(src: &str) -> Result<Node, toml::de::Error> {
    toml::from_str::<Node>(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spans_of_nested_keys_and_values() {
        let src = "[data.a]\ninput = [1, \"x\"]\n";
        let n = parse(src).unwrap();
        let body = n.get("data").unwrap().get("a").unwrap();
        let (k, v) = &body.as_table().unwrap()[0];
        assert_eq!(&src[k.span.clone()], "input");
        assert_eq!(&src[v.span.clone()], "[1, \"x\"]");
        let inner = &n.get("data").unwrap().as_table().unwrap()[0].0;
        assert_eq!(&src[inner.span.clone()], "a");
    }

    #[test]
    fn datetimes_become_strings() {
        let n = parse("[data.a]\ninput = 1979-05-27T07:32:00Z\n").unwrap();
        let v = n.get("data").unwrap().get("a").unwrap().get("input").unwrap();
        assert!(matches!(&v.kind, NodeKind::Datetime(s) if s == "1979-05-27T07:32:00Z"));
    }
}
