//! A small YAML writer for JSON values (block style), for `slipway render`
//! and kubeconfigs: strings are always double-quoted JSON strings, which
//! YAML reads back unchanged, so no value can change meaning.

use serde_json::Value;

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !k.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && !["true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"]
            .contains(&k.to_ascii_lowercase().as_str());
    if plain {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn write(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, x) in o {
                match x {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        write(out, x, indent + 2);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        write(out, x, indent);
                    }
                    _ => out.push_str(&format!("{pad}{}: {}\n", key(k), scalar(x))),
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                match x {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        write(&mut inner, x, indent + 2);
                        // The first line of the item goes after the dash.
                        let trimmed = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                    Value::Array(b) if !b.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        write(out, x, indent + 2);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(x))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// One YAML document for a value.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, 0);
    out
}

/// Several documents separated by `---`.
pub fn documents(vs: &[Value]) -> String {
    vs.iter().map(|v| format!("---\n{}", to_yaml(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_with_quoted_strings() {
        let v = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "x"}},
                       "spec": {"ports": [{"port": 80, "name": "http"}], "list": ["a", "yes"], "empty": []}});
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "apiVersion: \"v1\"\nmetadata:\n  name: \"x\"\n  labels:\n    app.kubernetes.io/name: \"x\"\nspec:\n  ports:\n  - port: 80\n    name: \"http\"\n  list:\n  - \"a\"\n  - \"yes\"\n  empty: []\n"
        );
    }
}
