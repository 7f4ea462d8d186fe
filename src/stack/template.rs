//! Templates: strings with `${...}` inside, embedded or whole. Inside is a
//! reference (`${kind.name.attr}`, `${var.name}`, `${local.name}`) or an
//! expression (functions, operators, conditionals: `stack/expr.rs`). `$${`
//! writes a literal `${`. Resolution turns a template into a value; an
//! unknown part makes the whole value unknown.

use serde_json::Value;

pub use super::expr::Env;
use super::expr::{self, Expr};
use crate::value::{is_unknown, unknown};

/// What a `${...}` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Var(String),
    /// `${local.name}`: a `[locals]` entry.
    Local(String),
    /// `${each.key}`, `${each.value.x}` inside a `for_each` resource.
    Each(String, Vec<String>),
    /// `${lookup.kind.name.attr...}`: what a `[lookup.KIND.NAME]` read.
    Lookup {
        kind: String,
        name: String,
        attr: String,
        path: Vec<String>,
    },
    /// `${module.NAME.OUTPUT...}`: a module's output, written in as its
    /// expression when the module is flattened into the stack.
    Module {
        /// `module.NAME.` (with an instance key, or nested modules).
        module: String,
        output: String,
        path: Vec<String>,
    },
    /// `${kind.name.attr...}`; inside a module's resources (once
    /// flattened) `module` is its path, `module.web.` (else empty).
    Attr {
        module: String,
        kind: String,
        name: String,
        attr: String,
        path: Vec<String>,
    },
}

impl Ref {
    /// The path below an attribute, a lookup's attribute or `each.value`
    /// (`.cidr`, `[0]`); none for a variable or a local.
    pub fn path_mut(&mut self) -> Option<&mut Vec<String>> {
        match self {
            Ref::Attr { path, .. } | Ref::Lookup { path, .. } | Ref::Each(_, path) | Ref::Module { path, .. } => {
                Some(path)
            }
            Ref::Var(_) | Ref::Local(_) => None,
        }
    }

    /// A reference to `attr` (and below it, `path`) of the resource at `address`.
    pub fn to_attr(address: &str, attr: &str, path: &[String]) -> Ref {
        let (module, kind, name) = super::split_address(address).unwrap_or(("", address, ""));
        Ref::Attr {
            module: module.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            attr: attr.to_string(),
            path: path.to_vec(),
        }
    }

    /// `kind.name` for an attribute reference.
    pub fn address(&self) -> Option<String> {
        match self {
            Ref::Attr { module, kind, name, .. } => Some(format!("{module}{kind}.{name}")),
            Ref::Var(_) | Ref::Local(_) | Ref::Lookup { .. } | Ref::Each(..) | Ref::Module { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    /// A bare reference, with its text.
    Ref(Ref, String),
    /// Any other expression, with its text.
    Expr(Expr, String),
}

impl Part {
    /// The references a part reads.
    pub fn refs(&self) -> Vec<Ref> {
        match self {
            Part::Lit(_) => Vec::new(),
            Part::Ref(r, _) => vec![r.clone()],
            Part::Expr(e, _) => {
                let mut out = Vec::new();
                e.refs(&mut out);
                out
            }
        }
    }
}

/// A template that does not parse: the message, and where inside the
/// string (a byte offset) the problem is.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// Split a string into literal parts, references and expressions. Strings
/// without `${` are one literal.
pub fn parse(s: &str) -> Result<Vec<Part>, String> {
    parse_at(s).map_err(|e| e.message)
}

/// [`parse`], keeping where the error is.
pub fn parse_at(s: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut pos = 0;
    while let Some(i) = s[pos..].find("${").map(|i| i + pos) {
        if s[pos..i].ends_with('$') {
            lit.push_str(&s[pos..i - 1]);
            lit.push_str("${");
            pos = i + 2;
            continue;
        }
        lit.push_str(&s[pos..i]);
        let start = i + 2;
        let end = expr::closing_brace(&s[start..])
            .map(|e| e + start)
            .ok_or_else(|| TemplateError {
                offset: i,
                message: format!("unclosed `${{` in {s:?}: add the `}}`"),
            })?;
        let text = &s[start..end];
        let e = expr::parse(text).map_err(|e| TemplateError {
            offset: start + e.offset,
            message: format!("in `${{{}}}`: {}", text.trim(), e.message),
        })?;
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(match e {
            Expr::Ref(r, _) => Part::Ref(r, text.trim().to_string()),
            e => Part::Expr(e, text.trim().to_string()),
        });
        pos = end + 1;
    }
    lit.push_str(&s[pos..]);
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
                        for r in p.refs() {
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

fn value_of(p: &Part, env: &dyn Env) -> Result<Value, String> {
    match p {
        Part::Lit(l) => Ok(Value::String(l.clone())),
        Part::Ref(r, _) => env.get(r),
        Part::Expr(e, text) => expr::eval(e, env).map_err(|e| format!("in `${{{text}}}`: {}", e.message)),
    }
}

/// Substitute every reference and expression in `v`, reading references
/// from `env` (a closure `Fn(&Ref) -> Result<Value, String>` will do).
pub fn resolve(v: &Value, env: &dyn Env) -> Result<Value, String> {
    match v {
        Value::String(s) if s.contains("${") => {
            let parts = parse(s)?;
            if let [p @ (Part::Ref(..) | Part::Expr(..))] = parts.as_slice() {
                return value_of(p, env);
            }
            let mut out = String::new();
            for p in &parts {
                let val = value_of(p, env)?;
                if is_unknown(&val) {
                    return Ok(unknown());
                }
                match &val {
                    Value::String(s) => out.push_str(s),
                    Value::Null => {
                        let text = match p {
                            Part::Ref(_, t) | Part::Expr(_, t) => t.as_str(),
                            Part::Lit(_) => "",
                        };
                        return Err(format!("`${{{text}}}` is null and cannot be put in a string"));
                    }
                    Value::Array(_) | Value::Object(_) if crate::value::contains_unknown(&val) => return Ok(unknown()),
                    other => out.push_str(&other.to_string()),
                }
            }
            Ok(Value::String(out))
        }
        Value::String(s) if s.contains("$$") => Ok(Value::String(s.replace("$${", "${"))),
        Value::Array(a) => a
            .iter()
            .map(|x| resolve(x, env))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        // A field whose value is null is not set (as in Terraform): a
        // module passes `${null}` for an input it leaves to the kind.
        Value::Object(o) => {
            let mut out = serde_json::Map::new();
            for (k, x) in o {
                let v = resolve(x, env)?;
                if !v.is_null() {
                    out.insert(k.clone(), v);
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// `v` (a for_each resource's config) with `each.key` and `each.value`
/// written as one instance's literals inside every `${...}`.
pub fn bind_each(v: &Value, key: &str, value: &Value) -> Result<Value, String> {
    map_exprs(v, &mut |text| expr::bind_each(text, key, value).map_err(|e| e.message))
}

/// `v` with the text of every `${...}` inside its strings passed through `f`.
pub fn map_exprs(v: &Value, f: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<Value, String> {
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut pos = 0;
            while let Some(i) = s[pos..].find("${").map(|i| i + pos) {
                if s[pos..i].ends_with('$') {
                    out.push_str(&s[pos..i + 2]);
                    pos = i + 2;
                    continue;
                }
                out.push_str(&s[pos..i + 2]);
                let start = i + 2;
                let end = expr::closing_brace(&s[start..])
                    .map(|e| e + start)
                    .ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
                out.push_str(&f(&s[start..end])?);
                out.push('}');
                pos = end + 1;
            }
            out.push_str(&s[pos..]);
            Ok(Value::String(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|x| map_exprs(x, f))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| Ok((k.clone(), map_exprs(x, f)?)))
            .collect::<Result<serde_json::Map<_, _>, String>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// An expression's text, in parentheses unless it is one reference or a
/// literal (so `${var.x}` given `eks_cluster.main.connection` reads as such).
pub fn wrap(e: &str) -> String {
    match expr::parse(e) {
        Ok(Expr::Ref(..) | Expr::Lit(_)) => e.trim().to_string(),
        _ => format!("({e})"),
    }
}

/// A value as the text of an expression giving it: literals as JSON (a
/// literal of this language), a string that is one `${e}` as `(e)`, and a
/// string with `${...}` among text as the `join` of its parts.
pub fn value_expr(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::String(s) if s.contains("${") => {
            let parts = parse(s)?;
            let text = |p: &Part| match p {
                Part::Lit(l) => serde_json::to_string(l).unwrap_or_default(),
                Part::Ref(_, t) => t.trim().to_string(),
                Part::Expr(_, t) => wrap(t),
            };
            match parts.as_slice() {
                [one @ (Part::Ref(..) | Part::Expr(..))] => text(one),
                _ => format!(
                    "join(\"\", [{}])",
                    parts.iter().map(text).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(value_expr).collect::<Result<Vec<_>, _>>()?.join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, x)| Ok(format!(
                    "{} = {}",
                    serde_json::to_string(k).unwrap_or_default(),
                    value_expr(x)?
                )))
                .collect::<Result<Vec<_>, String>>()?
                .join(", ")
        ),
        other => other.to_string(),
    })
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
