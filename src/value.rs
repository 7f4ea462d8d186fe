//! Attribute values: JSON values plus the unknown-until-apply marker.
//!
//! An unknown value is a JSON string holding a control character no TOML or
//! JSON input can produce by accident; it never reaches the state file.

use serde_json::Value;

/// The marker string standing for a value known only after apply.
pub const UNKNOWN: &str = "\u{1}slipway:unknown\u{1}";

/// A value known only after apply.
pub fn unknown() -> Value {
    Value::String(UNKNOWN.to_string())
}

/// True when `v` is the unknown marker itself.
pub fn is_unknown(v: &Value) -> bool {
    matches!(v, Value::String(s) if s == UNKNOWN)
}

/// True when `v` or anything inside it is unknown.
pub fn contains_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s == UNKNOWN,
        Value::Array(a) => a.iter().any(contains_unknown),
        Value::Object(o) => o.values().any(contains_unknown),
        _ => false,
    }
}

/// Sort and deduplicate a list whose order carries no meaning; elements that
/// hold unknown values are never merged (two unknowns may differ).
pub fn sort_dedup<T: serde::Serialize + Ord>(v: &mut Vec<T>) {
    v.sort();
    v.dedup_by(|a, b| a == b && !serde_json::to_value(&*a).is_ok_and(|x| contains_unknown(&x)));
}

/// True when a value planned as `planned` (which may hold unknowns) admits
/// `actual`. Lists match position by position or, failing that, as sets
/// (a sorted list with unknowns sorts differently once they are known).
/// Two secret hashes always conform: a saved plan made on an empty state
/// hashed under a key its apply never sees (the new state's key is made then).
pub fn conforms(planned: &Value, actual: &Value) -> bool {
    if is_unknown(planned) {
        return true;
    }
    match (planned, actual) {
        (Value::String(p), Value::String(a)) if p.starts_with("hmac-sha256:") && a.starts_with("hmac-sha256:") => true,
        (Value::Array(p), Value::Array(a)) => {
            if p.len() != a.len() {
                return false;
            }
            if p.iter().zip(a).all(|(p, a)| conforms(p, a)) {
                return true;
            }
            let mut left: Vec<&Value> = a.iter().collect();
            for pv in p.iter().filter(|x| !contains_unknown(x)) {
                match left.iter().position(|av| *av == pv) {
                    Some(i) => {
                        left.swap_remove(i);
                    }
                    None => return false,
                }
            }
            let unknowns: Vec<&Value> = p.iter().filter(|x| contains_unknown(x)).collect();
            unknowns.iter().all(|u| left.iter().any(|av| conforms(u, av)))
        }
        (Value::Object(p), Value::Object(a)) => {
            p.len() == a.len() && p.iter().all(|(k, pv)| a.get(k).is_some_and(|av| conforms(pv, av)))
        }
        _ => planned == actual,
    }
}

/// Replace unknown markers by null and return the JSON paths of the unknowns.
pub fn split_unknowns(v: &Value) -> (Value, Vec<String>) {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) -> Value {
        match v {
            Value::String(s) if s == UNKNOWN => {
                out.push(path.to_string());
                Value::Null
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| walk(x, &format!("{path}[{i}]"), out))
                    .collect(),
            ),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| {
                        let p = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        (k.clone(), walk(x, &p, out))
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut out = Vec::new();
    let v = walk(v, "", &mut out);
    (v, out)
}

/// Render a value for text output: strings quoted, unknowns as `(known after apply)`.
pub fn render(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    match v {
        Value::String(s) if s == UNKNOWN => "(known after apply)".to_string(),
        Value::String(s) if crate::sensitive::is_secret(s) => crate::sensitive::SHOWN.to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        Value::Object(o) if o.is_empty() => "{}".to_string(),
        Value::Array(a) => {
            let mut s = "[\n".to_string();
            for x in a {
                s.push_str(&format!("{pad}    {},\n", render(x, indent + 4)));
            }
            s.push_str(&format!("{pad}]"));
            s
        }
        Value::Object(o) => {
            let width = o.keys().map(|k| k.len()).max().unwrap_or(0);
            let mut s = "{\n".to_string();
            for (k, x) in o {
                s.push_str(&format!("{pad}    {k:width$} = {}\n", render(x, indent + 4)));
            }
            s.push_str(&format!("{pad}}}"));
            s
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_with_unknowns_conform_in_any_order() {
        assert!(conforms(&json!(["b", UNKNOWN]), &json!(["a", "b"])));
        assert!(conforms(&json!([UNKNOWN, "b"]), &json!(["b", "c"])));
        assert!(!conforms(&json!([UNKNOWN, "b"]), &json!(["a", "c"])));
        let mut v = vec![UNKNOWN.to_string(), UNKNOWN.to_string(), "x".into(), "x".into()];
        sort_dedup(&mut v);
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn unknown_conforms_to_anything() {
        assert!(conforms(&json!({"a": UNKNOWN, "b": 1}), &json!({"a": [1, 2], "b": 1})));
        assert!(!conforms(&json!({"a": UNKNOWN, "b": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn split_unknowns_lists_paths() {
        let (v, paths) = split_unknowns(&json!({"id": UNKNOWN, "x": [1, UNKNOWN]}));
        assert_eq!(v, json!({"id": null, "x": [1, null]}));
        assert_eq!(paths, vec!["id".to_string(), "x[1]".to_string()]);
    }
}
