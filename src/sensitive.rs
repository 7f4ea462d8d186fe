//! Values of `sensitive = true` variables, and everything computed from one.
//!
//! A value is tracked by its content, not by where it flowed: once a run has
//! declared a variable sensitive, every string that contains its value (a
//! resource input, an attribute the cloud echoes back, an output, an error
//! message) is hidden wherever it leaves the process. Structured values that
//! are written (state, journal, saved plans) hold a keyed hash of each such
//! string instead (`hmac-sha256:...` under the state's secret key), so
//! equality still shows a change without revealing anything a guess can be
//! tested against; text that is printed holds `(sensitive value)`.
//!
//! Numbers and booleans are not traced (a sensitive `3` would hide every `3`);
//! a stack that must hide one declares it a string.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serializer;
use serde_json::Value;

/// What printed text shows instead of a sensitive value.
pub const SHOWN: &str = "(sensitive value)";

/// The sensitive strings of this process, longest first.
static VALUES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The string forms of a sensitive variable's value that are traced.
fn strings_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() && !crate::value::is_unknown(v) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_of(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings_of(x, out)),
        _ => {}
    }
}

/// Trace the values of the stack's sensitive variables from now on.
pub fn declare(stack: &crate::stack::Stack, variables: &BTreeMap<String, Value>) {
    let mut found = Vec::new();
    for (name, var) in &stack.variables {
        if var.sensitive {
            if let Some(v) = variables.get(name) {
                strings_of(v, &mut found);
            }
        }
    }
    add(found);
}

/// True when any string inside `v` holds a sensitive value.
pub fn any_secret(v: &Value) -> bool {
    let values = VALUES.read().unwrap_or_else(|e| e.into_inner());
    if values.is_empty() {
        return false;
    }
    let mut strings = Vec::new();
    strings_of(v, &mut strings);
    strings.iter().any(|s| holds(s, &values))
}

/// Trace the strings of a value computed from a sensitive one (a function's
/// result: `upper(var.password)`, `base64encode(...)`), which need not hold
/// the sensitive text itself.
pub fn add_derived(v: &Value) {
    let mut found = Vec::new();
    strings_of(v, &mut found);
    add(found);
}

/// Trace these strings too (a value known only to the caller).
pub fn add(values: Vec<String>) {
    let mut all = VALUES.write().unwrap_or_else(|e| e.into_inner());
    all.extend(values.into_iter().filter(|s| !s.is_empty()));
    all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    all.dedup();
}

/// True when a string holds a sensitive value (a hash stands for one and
/// holds none).
fn holds(s: &str, values: &[String]) -> bool {
    !s.starts_with("hmac-sha256:") && values.iter().any(|v| s.contains(v.as_str()))
}

/// True when a string is a keyed hash or holds a sensitive value: what a
/// person must not see.
pub fn is_secret(s: &str) -> bool {
    s.starts_with("hmac-sha256:") || holds(s, &VALUES.read().unwrap_or_else(|e| e.into_inner()))
}

/// The keyed hash written in place of a sensitive string.
pub fn hash(s: &str) -> String {
    use hmac::Mac;
    let key = format!("slipway-sensitive:{}", crate::state::secret_key());
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(s.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

/// True when a value is a keyed hash standing for a secret.
pub fn is_hash(v: &Value) -> bool {
    matches!(v, Value::String(s) if s.starts_with("hmac-sha256:"))
}

fn map_strings(v: &Value, f: &dyn Fn(&str) -> Option<Value>) -> Value {
    match v {
        Value::String(s) => f(s).unwrap_or_else(|| v.clone()),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), map_strings(x, f))).collect()),
        other => other.clone(),
    }
}

/// `v` with every string that holds a sensitive value replaced by its keyed
/// hash: what may be written to a file.
pub fn hide(v: &Value) -> Value {
    let values = VALUES.read().unwrap_or_else(|e| e.into_inner());
    if values.is_empty() {
        return v.clone();
    }
    map_strings(v, &|s| holds(s, &values).then(|| Value::String(hash(s))))
}

/// `hidden` (as read from a file) with each hash that stands for the string
/// at the same place in `clear` (this run's value) replaced by that string,
/// so what references read from a stored object is the real value again.
pub fn restore(hidden: &Value, clear: &Value) -> Value {
    match (hidden, clear) {
        (Value::String(h), Value::String(c)) if h.starts_with("hmac-sha256:") && !c.starts_with("hmac-sha256:") => {
            if hash(c) == *h {
                clear.clone()
            } else {
                hidden.clone()
            }
        }
        (Value::Array(h), Value::Array(c)) => Value::Array(
            h.iter()
                .enumerate()
                .map(|(i, x)| c.get(i).map_or_else(|| x.clone(), |y| restore(x, y)))
                .collect(),
        ),
        (Value::Object(h), Value::Object(c)) => Value::Object(
            h.iter()
                .map(|(k, x)| (k.clone(), c.get(k).map_or_else(|| x.clone(), |y| restore(x, y))))
                .collect(),
        ),
        _ => hidden.clone(),
    }
}

/// `v` as a person may see it: sensitive strings and secret hashes shown as
/// `(sensitive value)`.
pub fn shown(v: &Value) -> Value {
    let values = VALUES.read().unwrap_or_else(|e| e.into_inner());
    map_strings(v, &|s| {
        (s.starts_with("hmac-sha256:") || holds(s, &values)).then(|| Value::String(SHOWN.into()))
    })
}

/// Text with every sensitive value in it replaced by `(sensitive value)`:
/// what may be printed or logged.
pub fn redact(text: &str) -> String {
    let values = VALUES.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for v in values.iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), SHOWN);
        }
        // The same value as JSON writes it (quotes and backslashes escaped).
        let escaped = serde_json::to_string(v).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if escaped != v && out.contains(escaped) {
            out = out.replace(escaped, SHOWN);
        }
    }
    out
}

/// `serialize_with` for values that are written: hidden first.
pub fn serialize_hidden<S: Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&hide(v), s)
}

/// `serialize_with` for optional values that are written.
pub fn serialize_hidden_opt<S: Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&v.as_ref().map(hide), s)
}

#[cfg(test)]
pub fn reset() {
    VALUES.write().unwrap_or_else(|e| e.into_inner()).clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // One test: the traced values are process-wide.
    #[test]
    fn traced_values_are_hidden_in_values_and_text() {
        reset();
        let plain = json!({"a": "x", "n": 3});
        assert_eq!(hide(&plain), plain);
        add(vec!["hunter2".into(), "".into()]);
        let v = json!({"env": [{"name": "DB", "value": "postgres://u:hunter2@db"}], "n": 3, "k": "keep"});
        let h = hide(&v);
        let s = h["env"][0]["value"].as_str().unwrap();
        assert!(s.starts_with("hmac-sha256:"), "{h}");
        assert_eq!(h["k"], "keep");
        assert_eq!(hide(&h), h, "hiding twice changes nothing");
        assert_eq!(hash("postgres://u:hunter2@db"), s, "the same string hashes the same");
        assert_eq!(restore(&h, &v), v, "this run's value replaces its own hash");
        let other = json!({"env": [{"name": "DB", "value": "postgres://u:other@db"}], "n": 3, "k": "keep"});
        assert_eq!(restore(&h, &other), h, "another value does not");
        assert!(is_secret(s) && is_secret("x hunter2") && !is_secret("keep"));
        assert_eq!(shown(&v)["env"][0]["value"], SHOWN);
        assert_eq!(shown(&h)["env"][0]["value"], SHOWN);
        assert_eq!(
            redact("cannot set DB=postgres://u:hunter2@db"),
            "cannot set DB=postgres://u:(sensitive value)@db"
        );
        add(vec!["a\"b".into()]);
        assert_eq!(redact(r#"{"x":"a\"b"}"#), r#"{"x":"(sensitive value)"}"#);
        reset();
    }
}
