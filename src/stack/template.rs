//! References inside strings: `${kind.name.attr}`, `${var.name}`, embedded or
//! whole. `$${` writes a literal `${`. Resolution turns a template into a value;
//! an unknown part makes the whole value unknown.

use serde_json::Value;

use crate::value::{is_unknown, unknown};

/// What a `${...}` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Var(String),
    Attr {
        kind: String,
        name: String,
        attr: String,
        path: Vec<String>,
    },
}

impl Ref {
    /// `kind.name` for an attribute reference.
    pub fn address(&self) -> Option<String> {
        match self {
            Ref::Attr { kind, name, .. } => Some(format!("{kind}.{name}")),
            Ref::Var(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    Ref(Ref, String),
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_ref(expr: &str) -> Result<Ref, String> {
    let segs: Vec<&str> = expr.trim().split('.').collect();
    if segs[0] == "var" {
        if segs.len() == 2 && is_ident(segs[1]) {
            return Ok(Ref::Var(segs[1].to_string()));
        }
        return Err(format!(
            "`${{{expr}}}` is not a variable reference; write `${{var.NAME}}`"
        ));
    }
    if segs.len() < 3 || !segs[..3].iter().all(|s| is_ident(s)) {
        return Err(format!(
            "`${{{expr}}}` is not a reference; write `${{KIND.NAME.ATTRIBUTE}}` or `${{var.NAME}}`"
        ));
    }
    if let Some(bad) = segs[3..].iter().find(|s| s.is_empty()) {
        return Err(format!("`${{{expr}}}` has an empty path segment {bad:?}"));
    }
    Ok(Ref::Attr {
        kind: segs[0].to_string(),
        name: segs[1].to_string(),
        attr: segs[2].to_string(),
        path: segs[3..].iter().map(|s| s.to_string()).collect(),
    })
}

/// Split a string into literal parts and references. Strings without `${` are
/// one literal.
pub fn parse(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            lit.push_str(&rest[..i - 1]);
            lit.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        lit.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
        let expr = &after[..end];
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(Part::Ref(parse_ref(expr)?, expr.trim().to_string()));
        rest = &after[end + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

/// Every reference in a value, with the JSON path of the string holding it.
pub fn refs_in(v: &Value, out: &mut Vec<(Ref, Vec<crate::path::PathSeg>)>) {
    use crate::path::PathSeg;
    fn walk(v: &Value, path: &mut Vec<PathSeg>, out: &mut Vec<(Ref, Vec<PathSeg>)>) {
        match v {
            Value::String(s) if s.contains("${") => {
                if let Ok(parts) = parse(s) {
                    for p in parts {
                        if let Part::Ref(r, _) = p {
                            out.push((r, path.clone()));
                        }
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    walk(x, path, out);
                    path.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    path.push(PathSeg::Field(k.clone()));
                    walk(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    walk(v, &mut Vec::new(), out)
}

/// Substitute every reference in `v` using `lookup`, which answers the value of
/// a reference (possibly unknown) or an error message.
pub fn resolve(v: &Value, lookup: &dyn Fn(&Ref) -> Result<Value, String>) -> Result<Value, String> {
    match v {
        Value::String(s) if s.contains("${") => {
            let parts = parse(s)?;
            if let [Part::Ref(r, _)] = parts.as_slice() {
                return lookup(r);
            }
            let mut out = String::new();
            for p in &parts {
                match p {
                    Part::Lit(l) => out.push_str(l),
                    Part::Ref(r, expr) => {
                        let val = lookup(r)?;
                        if is_unknown(&val) {
                            return Ok(unknown());
                        }
                        match &val {
                            Value::String(s) => out.push_str(s),
                            Value::Null => return Err(format!("`${{{expr}}}` is null and cannot be put in a string")),
                            Value::Array(_) | Value::Object(_) if crate::value::contains_unknown(&val) => {
                                return Ok(unknown())
                            }
                            other => out.push_str(&other.to_string()),
                        }
                    }
                }
            }
            Ok(Value::String(out))
        }
        Value::String(s) if s.contains("$$") => Ok(Value::String(s.replace("$${", "${"))),
        Value::Array(a) => a
            .iter()
            .map(|x| resolve(x, lookup))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| Ok((k.clone(), resolve(x, lookup)?)))
            .collect::<Result<serde_json::Map<_, _>, String>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Follow `path` (object keys or list indexes) inside an attribute value.
pub fn follow(mut v: &Value, path: &[String]) -> Option<Value> {
    for seg in path {
        if is_unknown(v) {
            return Some(unknown());
        }
        v = match v {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(r: &Ref) -> Result<Value, String> {
        match r {
            Ref::Var(n) if n == "env" => Ok(json!("prod")),
            Ref::Attr { attr, .. } if attr == "id" => Ok(unknown()),
            Ref::Attr { attr, .. } if attr == "list" => Ok(json!([1, 2])),
            _ => Err("no such".into()),
        }
    }

    #[test]
    fn whole_reference_keeps_its_type() {
        assert_eq!(resolve(&json!("${data.a.list}"), &lookup).unwrap(), json!([1, 2]));
    }

    #[test]
    fn embedded_reference_is_stringified() {
        assert_eq!(resolve(&json!("app-${var.env}"), &lookup).unwrap(), json!("app-prod"));
        assert_eq!(resolve(&json!("n=${data.a.list}"), &lookup).unwrap(), json!("n=[1,2]"));
    }

    #[test]
    fn unknown_part_makes_the_string_unknown() {
        assert!(is_unknown(&resolve(&json!("x-${data.a.id}"), &lookup).unwrap()));
    }

    #[test]
    fn dollar_dollar_escapes() {
        assert_eq!(parse("$${x}").unwrap(), vec![Part::Lit("${x}".into())]);
        assert_eq!(
            resolve(&json!("a $${b} ${var.env}"), &lookup).unwrap(),
            json!("a ${b} prod")
        );
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(parse("${data.a}").is_err());
        assert!(parse("${var.}").is_err());
        assert!(parse("${data.a.b").is_err());
    }
}
