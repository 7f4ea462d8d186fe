//! IAM policy documents compared by meaning: a TOML table or a JSON string,
//! keys in any order, a single value or a one-element list, statements and
//! actions in any order - all the same document.

use serde_json::{Map, Value};

/// Fields whose values are sets of strings.
const LISTY: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// Parse a policy given as a table or a JSON string.
pub fn parse(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => serde_json::from_str(s).map_err(|e| format!("the policy is not valid JSON: {e}")),
        Value::Object(_) => Ok(v.clone()),
        other => Err(format!("a policy must be a table or a JSON string, not {other}")),
    }
}

/// Decode a policy as IAM returns it (URL-encoded JSON).
pub fn decode(s: &str) -> Result<Value, String> {
    let text = if s.trim_start().starts_with('{') {
        s.to_string()
    } else {
        percent_decode(s)
    };
    serde_json::from_str(&text).map_err(|e| format!("IAM returned a policy that is not JSON: {e}"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(x) => {
                        out.push(x);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn string_set(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::Array(vec![Value::String(s.clone())]),
        Value::Array(a) => {
            let mut items: Vec<Value> = a.clone();
            items.sort_by_key(|x| x.to_string());
            items.dedup();
            Value::Array(items)
        }
        other => other.clone(),
    }
}

fn canonical_statement(s: &Value) -> Value {
    let Some(o) = s.as_object() else { return s.clone() };
    let mut out = Map::new();
    for (k, v) in o {
        let v = if LISTY.contains(&k.as_str()) {
            string_set(v)
        } else if k == "Principal" || k == "NotPrincipal" {
            match v {
                Value::Object(p) => Value::Object(p.iter().map(|(pk, pv)| (pk.clone(), string_set(pv))).collect()),
                other => other.clone(),
            }
        } else if k == "Condition" {
            match v {
                Value::Object(ops) => Value::Object(
                    ops.iter()
                        .map(|(op, kv)| {
                            let kv = match kv {
                                Value::Object(m) => {
                                    Value::Object(m.iter().map(|(ck, cv)| (ck.clone(), string_set(cv))).collect())
                                }
                                other => other.clone(),
                            };
                            (op.clone(), kv)
                        })
                        .collect(),
                ),
                other => other.clone(),
            }
        } else {
            v.clone()
        };
        out.insert(k.clone(), v);
    }
    Value::Object(sorted(out))
}

fn sorted(m: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = m.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

/// The canonical form of a policy document.
pub fn canonical(doc: &Value) -> Value {
    let Some(o) = doc.as_object() else { return doc.clone() };
    let mut out = Map::new();
    for (k, v) in o {
        if k == "Statement" {
            let mut stmts: Vec<Value> = match v {
                Value::Array(a) => a.iter().map(canonical_statement).collect(),
                single => vec![canonical_statement(single)],
            };
            stmts.sort_by_key(|s| s.to_string());
            out.insert(k.clone(), Value::Array(stmts));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(sorted(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_meanings_are_equal() {
        let a = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "eks.amazonaws.com"}}});
        let b = parse(&json!(r#"{ "Statement": [ { "Principal": { "Service": ["eks.amazonaws.com"] }, "Action": ["sts:AssumeRole"], "Effect": "Allow" } ], "Version": "2012-10-17" }"#)).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn different_meanings_differ() {
        let a = json!({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"]}]});
        let b = json!({"Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"]}]});
        assert_ne!(canonical(&a), canonical(&b));
    }

    #[test]
    fn url_encoded_documents_decode() {
        let d = decode("%7B%22Version%22%3A%222012-10-17%22%7D").unwrap();
        assert_eq!(d, json!({"Version": "2012-10-17"}));
    }
}
