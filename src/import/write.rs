//! Write imported resources as a stack file: `[kind.name]` tables whose
//! values are TOML inline values, with comments saying where each object
//! came from and what was not modelled.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Imported, Unmodelled};

fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        string(k)
    }
}

/// A TOML basic string. JSON's escapes (`\"`, `\\`, `\n`, `\uXXXX`) are TOML's too.
fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// One value inline; `None` for null (TOML has none: the key is left out).
pub fn value(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(a) => format!("[{}]", a.iter().filter_map(value).collect::<Vec<_>>().join(", ")),
        Value::Object(o) if o.is_empty() => "{}".into(),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .filter_map(|(k, v)| value(v).map(|v| format!("{} = {v}", key(k))))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The whole stack file.
pub fn stack_file(
    header: &[String],
    stack: &str,
    region: &str,
    items: &[Imported],
    unmodelled: &[Unmodelled],
) -> String {
    let mut out = String::new();
    for h in header {
        let _ = writeln!(out, "# {h}");
    }
    if !unmodelled.is_empty() {
        let _ = writeln!(
            out,
            "#\n# Not modelled by slipway, left as they are (not declared here):"
        );
        for u in unmodelled {
            let _ = writeln!(out, "#   {} {} ({})", u.what, u.id, u.origin);
        }
    }
    let _ = writeln!(out, "\n[stack]\nname = {}\nregion = {}", string(stack), string(region));
    for it in items {
        let _ = writeln!(out, "\n# {} ({})", it.live.id, it.found.origin);
        let _ = writeln!(out, "[{}.{}]", it.found.kind, it.found.name);
        if let Some(o) = it.config.as_object() {
            for (k, v) in o {
                if let Some(v) = value(v) {
                    let _ = writeln!(out, "{} = {v}", key(k));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_back_as_the_same_toml() {
        let v = json!({"a": "x\"y\n", "b": [1, true, {"c d": "e"}], "e": {}, "n": null});
        let text = format!("v = {}", value(&v).unwrap());
        let back: toml::Value = toml::from_str(&text).unwrap();
        let back = serde_json::to_value(&back["v"]).unwrap();
        assert_eq!(back, json!({"a": "x\"y\n", "b": [1, true, {"c d": "e"}], "e": {}}));
    }
}
