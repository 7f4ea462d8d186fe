//! YAML for `slipway render`, through serde_yaml_ng (libyaml's emitter): the
//! block form kubectl prints, with strings quoted only where a YAML reader
//! would take them for something else.
//!
//! serde_yaml_ng quotes by YAML 1.2 (`'true'`, `'8080'`), but Kubernetes
//! reads manifests with go-yaml v2, which follows YAML 1.1: a plain `yes`,
//! `on`, `n` or `1_000` is a boolean or a number there, and an env value
//! written so is refused. Those strings are quoted as well.

use serde_json::Value;

/// A string YAML 1.1 reads as a boolean or a number when plain, which
/// YAML 1.2 (serde_yaml_ng's rule) leaves plain.
fn yaml11_only(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let numeric = |t: &str| !t.is_empty() && t.starts_with(|c: char| c.is_ascii_digit());
    // 1_000 and 0b1010 are integers, 1:30 a base-60 one, in YAML 1.1.
    (numeric(body) && body.contains('_') && body.chars().all(|c| c.is_ascii_digit() || "_.eE+-".contains(c)))
        || (body.starts_with("0b") && body.len() > 2 && body[2..].chars().all(|c| "01_".contains(c)))
        || (numeric(body)
            && body.contains(':')
            && body
                .split(':')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '_')))
}

fn collect_yaml11(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if yaml11_only(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_yaml11(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                if yaml11_only(k) {
                    out.push(k.clone());
                }
                collect_yaml11(x, out);
            }
        }
        _ => {}
    }
}

/// Quote the plain scalars in `words` (keys and values), outside block
/// scalars (`|`), whose lines are text.
fn quote_plain(text: &str, words: &[String]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = body.len() - body.trim_start().len();
        if let Some(b) = block {
            if indent > b || body.trim().is_empty() {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        // Past the indentation and any "- " of list items.
        let mut start = indent;
        while body[start..].starts_with("- ") {
            start += 2;
        }
        let (head, rest) = body.split_at(start);
        let quoted = |w: &str| format!("'{w}'");
        let mut new = match rest.split_once(": ") {
            Some((k, v)) if !k.starts_with(['\'', '"']) => {
                let k = if words.iter().any(|w| w == k) {
                    quoted(k)
                } else {
                    k.to_string()
                };
                let v = if words.iter().any(|w| w == v) {
                    quoted(v)
                } else {
                    v.to_string()
                };
                format!("{head}{k}: {v}")
            }
            _ => match rest.strip_suffix(':') {
                Some(k) if words.iter().any(|w| w == k) => format!("{head}{}:", quoted(k)),
                _ if words.iter().any(|w| w == rest) => format!("{head}{}", quoted(rest)),
                _ => body.to_string(),
            },
        };
        if body.ends_with(['|', '-', '+']) && (body.ends_with(" |") || body.ends_with(" |-") || body.ends_with(" |+")) {
            block = Some(indent);
        }
        if line.ends_with('\n') {
            new.push('\n');
        }
        out.push_str(&new);
    }
    out
}

/// One YAML document for a value.
pub fn to_yaml(v: &Value) -> String {
    let text = serde_yaml_ng::to_string(v).unwrap_or_default();
    let mut words = Vec::new();
    collect_yaml11(v, &mut words);
    if words.is_empty() {
        text
    } else {
        quote_plain(&text, &words)
    }
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
    fn writes_block_yaml_as_kubectl_does_and_reads_back_the_same() {
        let v = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "x", "on": "yes"}},
                       "spec": {"ports": [{"port": 80, "name": "http"}], "list": ["a", "yes", "8080", "true", "", "1_000", "no thanks"], "empty": [],
                                "script": "on\nyes\n", "env": [{"name": "FLAG", "value": "off"}]}});
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels:\n    app.kubernetes.io/name: x\n    'on': 'yes'\nspec:\n  ports:\n  - port: 80\n    name: http\n  list:\n  - a\n  - 'yes'\n  - '8080'\n  - 'true'\n  - ''\n  - '1_000'\n  - no thanks\n  empty: []\n  script: |\n    on\n    yes\n  env:\n  - name: FLAG\n    value: 'off'\n"
        );
        let back: Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(back, v);
    }
}
