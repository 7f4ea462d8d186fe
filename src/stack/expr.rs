//! Expressions inside `${...}`: references (`var.x`, `local.y`,
//! `kind.name.attr.path`, `list[0]`, `map["k"]`), literals (numbers,
//! "strings", true, false, null, `[lists]`, `{ maps }`), function calls,
//! operators (`! - * / % + - < <= > >= == != && ||`) and the conditional
//! `cond ? a : b`, as in Terraform. Anything unknown until apply (an
//! attribute the cloud assigns) keeps the result unknown; a conditional
//! whose condition is known takes only its branch.
//!
//! Errors carry the byte offset inside the expression, which the loader
//! turns into a file, line and column.

use std::net::Ipv4Addr;

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::Digest;

use super::template::Ref;
use crate::value::{contains_unknown, is_unknown, unknown};

/// An error at a byte offset of the expression text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        offset,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Ref(Ref, usize),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    /// `e[i]` or `e.name` after something that is not a plain reference.
    Index(Box<Expr>, Box<Expr>, usize),
    Call(String, Vec<Expr>, usize),
    Unary(char, Box<Expr>, usize),
    Binary(&'static str, Box<Expr>, Box<Expr>, usize),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>, usize),
}

impl Expr {
    /// Every reference inside.
    pub fn refs(&self, out: &mut Vec<Ref>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Ref(r, _) => out.push(r.clone()),
            Expr::List(xs) | Expr::Call(_, xs, _) => xs.iter().for_each(|x| x.refs(out)),
            Expr::Map(kv) => kv.iter().for_each(|(_, x)| x.refs(out)),
            Expr::Index(a, b, _) | Expr::Binary(_, a, b, _) => {
                a.refs(out);
                b.refs(out);
            }
            Expr::Unary(_, a, _) => a.refs(out),
            Expr::Cond(a, b, c, _) => {
                a.refs(out);
                b.refs(out);
                c.refs(out);
            }
        }
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "[*]", "(", ")", "[", "]", "{", "}", ",", ".", "?", ":", "!", "-", "+", "*",
    "/", "%", "<", ">", "=",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_digit() || b[i] == b'.') {
                // `list[0].id`: a dot followed by a letter ends the number.
                if b[i] == b'.' && !(i + 1 < b.len() && (b[i + 1] as char).is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
            let n: f64 = src[start..i]
                .parse()
                .or_else(|_| fail(start, format!("{:?} is not a number", &src[start..i])))?;
            out.push((Tok::Num(n), start));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), start));
        } else if c == '"' {
            let start = i;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(ch) = src[i..].chars().next() else {
                    return fail(start, "unclosed string: add the closing \"");
                };
                i += ch.len_utf8();
                match ch {
                    '"' => break,
                    '\\' => {
                        let Some(e) = src[i..].chars().next() else {
                            return fail(start, "unclosed string: add the closing \"");
                        };
                        i += e.len_utf8();
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                    }
                    other => s.push(other),
                }
            }
            out.push((Tok::Str(s), start));
        } else if let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) {
            out.push((Tok::Op(op), i));
            i += op.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return fail(i, format!("unexpected {ch:?}"));
        }
    }
    Ok(out)
}

/// Where the `${...}` that starts at `s` ends: the index of its `}`, with
/// braces inside strings and maps skipped.
pub fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------- parsing

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    /// Each reference read: its first byte, the index of the token after
    /// it (before any path below it), and what it names.
    seen: Vec<(usize, usize, Ref)>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.end)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Tok::Op(static_op(op))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str, what: &str) -> Result<(), ExprError> {
        if self.eat(op) {
            Ok(())
        } else {
            fail(self.at(), format!("expected `{op}` {what}"))
        }
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        let at = self.at();
        let cond = self.binary(0)?;
        if self.eat("?") {
            let a = self.expr()?;
            self.expect(":", "between the two results of `? :`")?;
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(cond), Box::new(a), Box::new(b), at));
        }
        Ok(cond)
    }

    fn binary(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek().cloned() {
            let prec = match op {
                "||" => 1,
                "&&" => 2,
                "==" | "!=" => 3,
                "<" | "<=" | ">" | ">=" => 4,
                "+" | "-" => 5,
                "*" | "/" | "%" => 6,
                _ => break,
            };
            if prec <= min {
                break;
            }
            let at = self.at();
            self.pos += 1;
            let right = self.binary(prec)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right), at);
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let at = self.at();
        if self.eat("!") {
            return Ok(Expr::Unary('!', Box::new(self.unary()?), at));
        }
        if self.eat("-") {
            return Ok(Expr::Unary('-', Box::new(self.unary()?), at));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            let at = self.at();
            if self.eat("[") {
                let i = self.expr()?;
                self.expect("]", "to close the index")?;
                e = match (e, &i) {
                    // `kind.name.attr[0]` / `["k"]` stays a reference path.
                    (
                        e @ Expr::Ref(Ref::Attr { .. } | Ref::Lookup { .. } | Ref::Each(..) | Ref::Module { .. }, _),
                        Expr::Lit(v),
                    ) if v.is_string() || v.is_number() => deeper(e, key_text(v)),
                    (e, _) => Expr::Index(Box::new(e), Box::new(i), at),
                };
            } else if self.eat(".") {
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return fail(self.at(), "expected a name after `.`");
                };
                self.pos += 1;
                e = match e {
                    e @ Expr::Ref(Ref::Attr { .. } | Ref::Lookup { .. } | Ref::Each(..) | Ref::Module { .. }, _) => {
                        deeper(e, name)
                    }
                    e => Expr::Index(Box::new(e), Box::new(Expr::Lit(json!(name))), at),
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let at = self.at();
        let Some(tok) = self.peek().cloned() else {
            return fail(at, "expected a value");
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(number(n))),
            Tok::Str(s) => Ok(Expr::Lit(json!(s))),
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect(")", "to close the parenthesis")?;
                Ok(e)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.eat("]") {
                    items.push(self.expr()?);
                    if !self.eat(",") {
                        self.expect("]", "to close the list")?;
                        break;
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Op("{") => {
                let mut items = Vec::new();
                while !self.eat("}") {
                    let key = match self.peek().cloned() {
                        Some(Tok::Ident(k)) | Some(Tok::Str(k)) => k,
                        _ => return fail(self.at(), "expected a key (a name or a \"string\")"),
                    };
                    self.pos += 1;
                    if !self.eat("=") {
                        self.expect(":", "or `=` after a map key")?;
                    }
                    items.push((key, self.expr()?));
                    if !self.eat(",") {
                        self.expect("}", "to close the map")?;
                        break;
                    }
                }
                Ok(Expr::Map(items))
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(json!(true))),
                "false" => Ok(Expr::Lit(json!(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                _ if self.eat("(") => {
                    let mut args = Vec::new();
                    while !self.eat(")") {
                        args.push(self.expr()?);
                        if !self.eat(",") {
                            self.expect(")", "to close the call")?;
                            break;
                        }
                    }
                    if !FUNCTIONS.contains(&id.as_str()) {
                        return fail(
                            at,
                            format!("unknown function `{id}`; slipway has {}", FUNCTIONS.join(", ")),
                        );
                    }
                    Ok(Expr::Call(id, args, at))
                }
                _ => self.reference(id, at),
            },
            Tok::Op(op) => fail(at, format!("unexpected `{op}`")),
        }
    }

    /// `var.x`, `local.x`, `kind.name.attr`, `module.m.kind.name.attr`.
    fn reference(&mut self, first: String, at: usize) -> Result<Expr, ExprError> {
        let e = self.reference_head(first, at)?;
        if let Expr::Ref(r, _) = &e {
            self.seen.push((at, self.pos, r.clone()));
        }
        Ok(e)
    }

    fn reference_head(&mut self, mut first: String, at: usize) -> Result<Expr, ExprError> {
        // A resource inside a module: `module.NAME["key"].` before its kind.
        let mut module = String::new();
        while first == "module" {
            let (Some(Tok::Op(".")), Some(Tok::Ident(m))) = (
                self.toks.get(self.pos).map(|t| &t.0),
                self.toks.get(self.pos + 1).map(|t| t.0.clone()),
            ) else {
                return fail(at, "write `module.NAME.OUTPUT`");
            };
            self.pos += 2;
            let mut m = m;
            if self.peek() == Some(&Tok::Op("[")) {
                if let Some((Tok::Str(k), _)) = self.toks.get(self.pos + 1).cloned() {
                    self.pos += 2;
                    self.expect("]", "to close the module instance key")?;
                    m = instance(&m, &k);
                }
            }
            if !self.eat(".") {
                return fail(at, format!("`module.{m}` is a module: write `module.{m}.OUTPUT`"));
            }
            match self.peek().cloned() {
                Some(Tok::Ident(next)) => {
                    self.pos += 1;
                    module.push_str(&format!("module.{m}."));
                    first = next;
                }
                _ => return fail(self.at(), "expected a name after `.`"),
            }
        }
        if !module.is_empty() && matches!(first.as_str(), "var" | "local" | "each" | "lookup") {
            return fail(
                at,
                format!("`{module}{first}` is not a reference: a module's values are read through its outputs"),
            );
        }
        if !module.is_empty() {
            // `module.m.OUTPUT` unless `kind.name.attr` follows (a resource
            // inside the module).
            let tok = |i: usize| self.toks.get(self.pos + i).map(|t| &t.0);
            let resource = tok(0) == Some(&Tok::Op("."))
                && matches!(tok(1), Some(Tok::Ident(_)))
                && (tok(2) == Some(&Tok::Op("["))
                    || tok(2) == Some(&Tok::Op("[*]"))
                    || (tok(2) == Some(&Tok::Op(".")) && matches!(tok(3), Some(Tok::Ident(_)))));
            if !resource {
                return Ok(Expr::Ref(
                    Ref::Module {
                        module,
                        output: first,
                        path: Vec::new(),
                    },
                    at,
                ));
            }
        }
        let mut segs = vec![first];
        let need = |s: &str| match s {
            "var" | "local" | "each" => 2,
            "lookup" => 4,
            _ => 3,
        };
        while segs.len() < need(&segs[0]) {
            if !self.eat(".") {
                let hint = match segs[0].as_str() {
                    "var" => "write `var.NAME`",
                    "local" => "write `local.NAME`",
                    "lookup" => "write `lookup.KIND.NAME.ATTRIBUTE`",
                    _ => "write `KIND.NAME.ATTRIBUTE`, `var.NAME` or `local.NAME`, or call a function",
                };
                return fail(at, format!("`{}` is not a reference: {hint}", segs.join(".")));
            }
            match self.peek().cloned() {
                Some(Tok::Ident(s)) => {
                    self.pos += 1;
                    segs.push(s);
                }
                _ => return fail(self.at(), "expected a name after `.`"),
            }
            // `kind.name["key"]` (one instance of a for_each resource) or
            // `kind.name[*]` (all of them), before the attribute.
            if segs.len() == 2 && need(&segs[0]) == 3 {
                if self.eat("[*]") {
                    segs[1].push_str("[*]");
                } else if self.peek() == Some(&Tok::Op("[")) {
                    if let Some((Tok::Str(k), _)) = self.toks.get(self.pos + 1).cloned() {
                        self.pos += 2;
                        self.expect("]", "to close the instance key")?;
                        segs[1] = instance(&segs[1], &k);
                    }
                }
            }
        }
        let r = match segs[0].as_str() {
            "var" => Ref::Var(segs[1].clone()),
            "local" => Ref::Local(segs[1].clone()),
            "each" if segs[1] == "key" || segs[1] == "value" => Ref::Each(segs[1].clone(), Vec::new()),
            "each" => return fail(at, "write `each.key` or `each.value`"),
            "lookup" => Ref::Lookup {
                kind: segs[1].clone(),
                name: segs[2].clone(),
                attr: segs[3].clone(),
                path: Vec::new(),
            },
            _ => Ref::Attr {
                module,
                kind: segs[0].clone(),
                name: segs[1].clone(),
                attr: segs[2].clone(),
                path: Vec::new(),
            },
        };
        Ok(Expr::Ref(r, at))
    }
}

/// A reference one step deeper (`.name` or `[key]` after an attribute);
/// anything else is indexed when evaluated.
fn deeper(e: Expr, seg: String) -> Expr {
    if let Expr::Ref(mut r, p) = e {
        if let Some(path) = r.path_mut() {
            path.push(seg);
            return Expr::Ref(r, p);
        }
        return Expr::Index(Box::new(Expr::Ref(r, p)), Box::new(Expr::Lit(Value::String(seg))), 0);
    }
    Expr::Index(Box::new(e), Box::new(Expr::Lit(Value::String(seg))), 0)
}

/// The name of one instance of a for_each resource: `private["us-west-2a"]`.
pub fn instance(name: &str, key: &str) -> String {
    format!("{name}[{}]", serde_json::to_string(key).unwrap_or_default())
}

/// An expression's text with `each.key` and `each.value` written as the
/// literals of one instance (JSON is a literal of this language).
pub fn bind_each(src: &str, key: &str, value: &Value) -> Result<String, ExprError> {
    let toks = lex(src)?;
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < toks.len() {
        if let (Tok::Ident(e), at) = &toks[i] {
            let after_dot = i > 0 && toks[i - 1].0 == Tok::Op(".");
            if e == "each" && !after_dot && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Op(".")) {
                if let Some((Tok::Ident(which), wat)) = toks.get(i + 2) {
                    let lit = match which.as_str() {
                        "key" => serde_json::to_string(key).unwrap_or_default(),
                        "value" => format!("({})", serde_json::to_string(value).unwrap_or_default()),
                        _ => {
                            i += 1;
                            continue;
                        }
                    };
                    out.push_str(&src[last..*at]);
                    out.push_str(&lit);
                    last = wat + which.len();
                    i += 3;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&src[last..]);
    Ok(out)
}

fn static_op(op: &str) -> &'static str {
    OPS.iter().find(|o| **o == op).copied().unwrap_or("")
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// Parse the text between `${` and `}`.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return fail(0, "an empty `${}`: write a reference or an expression inside");
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        seen: Vec::new(),
    };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return fail(
            p.at(),
            "unexpected text after the expression (a missing operator or comma?)",
        );
    }
    Ok(e)
}

/// An expression's text with some references written otherwise: `f` gets
/// each reference (without the path below it) and gives the text to put in
/// its place, or None to keep it. Modules are flattened with this.
pub fn rewrite_refs(src: &str, f: &mut dyn FnMut(&Ref) -> Option<String>) -> Result<String, ExprError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        seen: Vec::new(),
    };
    p.expr()?;
    let mut out = String::new();
    let mut last = 0;
    let mut seen = std::mem::take(&mut p.seen);
    seen.sort_by_key(|s| s.0);
    for (start, next, r) in seen {
        let Some(text) = f(&r) else { continue };
        // The end of the reference's last token: where the next one starts,
        // less the blanks between them.
        let stop = p.toks.get(next).map(|t| t.1).unwrap_or(src.len());
        let end = start + src[start..stop].trim_end().len();
        out.push_str(&src[last..start]);
        out.push_str(&text);
        last = end;
    }
    out.push_str(&src[last..]);
    Ok(out)
}

// ---------------------------------------------------------------- evaluation

/// What an expression reads from outside itself.
pub trait Env {
    /// The value of a reference (maybe unknown), or why it has none.
    fn get(&self, r: &Ref) -> Result<Value, String>;
    /// The text of a file, given as written (relative to the stack directory).
    fn read_file(&self, _path: &str) -> Result<String, String> {
        Err("file() cannot be used here".into())
    }
}

impl<F: Fn(&Ref) -> Result<Value, String>> Env for F {
    fn get(&self, r: &Ref) -> Result<Value, String> {
        self(r)
    }
}

pub const FUNCTIONS: &[&str] = &[
    "base64decode",
    "base64encode",
    "cidrhost",
    "cidrsubnet",
    "coalesce",
    "concat",
    "contains",
    "file",
    "format",
    "index",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "merge",
    "replace",
    "sha256",
    "split",
    "tostring",
    "trimspace",
    "upper",
    "values",
];

pub fn eval(e: &Expr, env: &dyn Env) -> Result<Value, ExprError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Ref(r, at) => env.get(r).or_else(|m| fail(*at, m)),
        Expr::List(xs) => xs
            .iter()
            .map(|x| eval(x, env))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Expr::Map(kv) => {
            let mut m = Map::new();
            for (k, x) in kv {
                m.insert(k.clone(), eval(x, env)?);
            }
            Ok(Value::Object(m))
        }
        Expr::Index(a, i, at) => {
            let (a, i) = (eval(a, env)?, eval(i, env)?);
            if is_unknown(&a) || is_unknown(&i) {
                return Ok(unknown());
            }
            match (&a, &i) {
                (Value::Array(xs), Value::Number(n)) => {
                    n.as_u64().and_then(|n| xs.get(n as usize)).cloned().map_or_else(
                        || fail(*at, format!("index {n} is outside the list of {}", xs.len())),
                        Ok,
                    )
                }
                (Value::Object(m), Value::String(k)) => m
                    .get(k)
                    .cloned()
                    .map_or_else(|| fail(*at, format!("the map has no key {k:?}")), Ok),
                _ => fail(*at, format!("cannot index {} with {}", type_name(&a), type_name(&i))),
            }
        }
        Expr::Unary(op, a, at) => {
            let a = eval(a, env)?;
            if is_unknown(&a) {
                return Ok(unknown());
            }
            match (op, &a) {
                ('!', Value::Bool(b)) => Ok(json!(!b)),
                ('-', Value::Number(n)) => Ok(number(-n.as_f64().unwrap_or(0.0))),
                _ => fail(*at, format!("`{op}` does not apply to {}", type_name(&a))),
            }
        }
        Expr::Cond(c, a, b, at) => {
            let c = eval(c, env)?;
            match c {
                Value::Bool(true) => eval(a, env),
                Value::Bool(false) => eval(b, env),
                v if is_unknown(&v) => Ok(unknown()),
                v => fail(
                    *at,
                    format!("the condition of `? :` must be true or false, not {}", type_name(&v)),
                ),
            }
        }
        Expr::Binary(op, a, b, at) => {
            let a = eval(a, env)?;
            // `&&` and `||` look at their right side only when they must.
            match (*op, &a) {
                ("&&", Value::Bool(false)) => return Ok(json!(false)),
                ("||", Value::Bool(true)) => return Ok(json!(true)),
                _ => {}
            }
            let b = eval(b, env)?;
            if contains_unknown(&a) || contains_unknown(&b) {
                return Ok(unknown());
            }
            binary(op, &a, &b).or_else(|m| fail(*at, m))
        }
        Expr::Call(name, args, at) => {
            let mut vals = Vec::new();
            for a in args {
                vals.push(eval(a, env)?);
            }
            if vals.iter().any(contains_unknown) {
                return Ok(unknown());
            }
            // An error names the function, never the values (they may be sensitive).
            let out = call(name, &vals, env).or_else(|m| fail(*at, format!("{name}(): {m}")))?;
            // What a function computes from a sensitive value is sensitive.
            if vals.iter().any(crate::sensitive::any_secret) {
                crate::sensitive::add_derived(&out);
            }
            Ok(out)
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn binary(op: &str, a: &Value, b: &Value) -> Result<Value, String> {
    match op {
        "==" => return Ok(json!(a == b)),
        "!=" => return Ok(json!(a != b)),
        "&&" | "||" => {
            return match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => Ok(json!(if op == "&&" { *x && *y } else { *x || *y })),
                _ => Err(format!(
                    "`{op}` needs two bools, not {} and {}",
                    type_name(a),
                    type_name(b)
                )),
            }
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Err(format!(
            "`{op}` needs two numbers, not {} and {}",
            type_name(a),
            type_name(b)
        ));
    };
    Ok(match op {
        "<" => json!(x < y),
        "<=" => json!(x <= y),
        ">" => json!(x > y),
        ">=" => json!(x >= y),
        "+" => number(x + y),
        "-" => number(x - y),
        "*" => number(x * y),
        "/" if y == 0.0 => return Err("division by zero".into()),
        "/" => number(x / y),
        "%" if y == 0.0 => return Err("division by zero".into()),
        "%" => number(x % y),
        _ => return Err(format!("unknown operator `{op}`")),
    })
}

fn want_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("{what} must be a string, not {}", type_name(v)))
}

fn want_list<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} must be a list, not {}", type_name(v)))
}

fn want_map<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be a map, not {}", type_name(v)))
}

fn want_int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_f64()
        .filter(|n| n.fract() == 0.0)
        .map(|n| n as i64)
        .ok_or_else(|| format!("{what} must be a whole number, not {}", type_name(v)))
}

fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "takes {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        ))
    }
}

/// A value as a string inside a template (`tostring`, `format`'s %s, `join`).
fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
        other => Err(format!("{} cannot be turned into a string", type_name(other))),
    }
}

fn call(name: &str, a: &[Value], env: &dyn Env) -> Result<Value, String> {
    match name {
        "lower" | "upper" | "trimspace" | "base64encode" | "base64decode" | "sha256" | "tostring" => {
            arity(a, 1)?;
            if name == "tostring" {
                return text(&a[0]).map(Value::String);
            }
            let s = want_str(&a[0], "the argument")?;
            Ok(json!(match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                "trimspace" => s.trim().to_string(),
                "base64encode" => base64::engine::general_purpose::STANDARD.encode(s),
                "base64decode" => base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or("the argument is not base64 of UTF-8 text")?,
                _ => hex(&sha2::Sha256::digest(s.as_bytes())),
            }))
        }
        "length" => {
            arity(a, 1)?;
            Ok(json!(match &a[0] {
                Value::String(s) => s.chars().count(),
                Value::Array(x) => x.len(),
                Value::Object(m) => m.len(),
                other =>
                    return Err(format!(
                        "the argument must be a string, list or map, not {}",
                        type_name(other)
                    )),
            }))
        }
        "join" => {
            arity(a, 2)?;
            let sep = want_str(&a[0], "the separator")?;
            let parts: Vec<String> = want_list(&a[1], "the second argument")?
                .iter()
                .map(text)
                .collect::<Result<_, _>>()?;
            Ok(json!(parts.join(sep)))
        }
        "split" => {
            arity(a, 2)?;
            let sep = want_str(&a[0], "the separator")?;
            let s = want_str(&a[1], "the second argument")?;
            Ok(json!(s.split(sep).collect::<Vec<_>>()))
        }
        "replace" => {
            arity(a, 3)?;
            let s = want_str(&a[0], "the string")?;
            Ok(json!(s.replace(
                want_str(&a[1], "the substring")?,
                want_str(&a[2], "the replacement")?
            )))
        }
        "concat" => {
            let mut out = Vec::new();
            for (i, x) in a.iter().enumerate() {
                out.extend(want_list(x, &format!("argument {}", i + 1))?.iter().cloned());
            }
            Ok(Value::Array(out))
        }
        "merge" => {
            let mut out = Map::new();
            for (i, x) in a.iter().enumerate() {
                for (k, v) in want_map(x, &format!("argument {}", i + 1))? {
                    out.insert(k.clone(), v.clone());
                }
            }
            Ok(Value::Object(out))
        }
        "keys" | "values" => {
            arity(a, 1)?;
            let m = want_map(&a[0], "the argument")?;
            Ok(if name == "keys" {
                json!(m.keys().collect::<Vec<_>>())
            } else {
                Value::Array(m.values().cloned().collect())
            })
        }
        "lookup" => {
            if !(2..=3).contains(&a.len()) {
                return Err(format!("takes 2 or 3 arguments, got {}", a.len()));
            }
            let m = want_map(&a[0], "the first argument")?;
            let k = want_str(&a[1], "the key")?;
            match (m.get(k), a.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!("the map has no key {k:?} and no default was given")),
            }
        }
        "index" => {
            arity(a, 2)?;
            want_list(&a[0], "the first argument")?
                .iter()
                .position(|x| x == &a[1])
                .map(|i| json!(i))
                .ok_or_else(|| format!("{} is not in the list", a[1]))
        }
        "contains" => {
            arity(a, 2)?;
            Ok(json!(want_list(&a[0], "the first argument")?.contains(&a[1])))
        }
        "coalesce" => a
            .iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or_else(|| "every argument is null or empty".to_string()),
        "jsonencode" => {
            arity(a, 1)?;
            Ok(json!(serde_json::to_string(&a[0]).map_err(|e| e.to_string())?))
        }
        "jsondecode" => {
            arity(a, 1)?;
            serde_json::from_str(want_str(&a[0], "the argument")?).map_err(|e| format!("not JSON: {e}"))
        }
        "format" => {
            if a.is_empty() {
                return Err("takes a format string and its values".into());
            }
            format(want_str(&a[0], "the format")?, &a[1..]).map(Value::String)
        }
        "file" => {
            arity(a, 1)?;
            env.read_file(want_str(&a[0], "the path")?).map(Value::String)
        }
        "cidrsubnet" => {
            arity(a, 3)?;
            let (base, len) = cidr(want_str(&a[0], "the prefix")?)?;
            let newbits = want_int(&a[1], "newbits")?;
            let num = want_int(&a[2], "netnum")?;
            let new_len = len as i64 + newbits;
            if !(0..=32).contains(&new_len) || newbits < 0 {
                return Err(format!(
                    "/{len} plus {newbits} bits is not a prefix length (at most 32)"
                ));
            }
            if num < 0 || num >= 1i64 << newbits {
                return Err(format!("netnum {num} does not fit in {newbits} bits"));
            }
            let host_bits = 32 - new_len as u32;
            let net = base | ((num as u32).checked_shl(host_bits).unwrap_or(0));
            Ok(json!(format!("{}/{new_len}", Ipv4Addr::from(net))))
        }
        "cidrhost" => {
            arity(a, 2)?;
            let (base, len) = cidr(want_str(&a[0], "the prefix")?)?;
            let num = want_int(&a[1], "hostnum")?;
            let size = 1i64 << (32 - len);
            let n = if num < 0 { size + num } else { num };
            if n < 0 || n >= size {
                return Err(format!("host number {num} is outside the /{len} ({size} addresses)"));
            }
            Ok(json!(Ipv4Addr::from(base + n as u32).to_string()))
        }
        other => Err(format!("unknown function `{other}`")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `10.0.0.0/16` -> (network address with host bits cleared, 16).
fn cidr(s: &str) -> Result<(u32, u32), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not an IPv4 prefix like 10.0.0.0/16"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 prefix like 10.0.0.0/16"))?;
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("{s:?} has no prefix length 0-32"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((u32::from(ip) & mask, len))
}

/// Terraform's `format`: %s, %d, %v, %q, %%, with an optional width/padding
/// like %02d.
fn format(f: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars.next().ok_or("the format ends with a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = next
            .next()
            .ok_or_else(|| format!("the format has more verbs than the {} values given", args.len()))?;
        let s = match verb {
            's' | 'v' => text(v)?,
            'q' => serde_json::to_string(&text(v)?).unwrap_or_default(),
            'd' => want_int(v, "a %d value")?.to_string(),
            other => return Err(format!("%{other} is not a verb slipway knows (%s, %d, %v, %q, %%)")),
        };
        let width: usize = spec.trim_start_matches(['-', '0']).parse().unwrap_or(0);
        let pad = width.saturating_sub(s.chars().count());
        if spec.starts_with('-') {
            out.push_str(&s);
            out.push_str(&" ".repeat(pad));
        } else if spec.starts_with('0') && verb == 'd' {
            out.push_str(&"0".repeat(pad));
            out.push_str(&s);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&s);
        }
    }
    if next.next().is_some() {
        return Err(format!("{} values given for fewer verbs", args.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(r: &Ref) -> Result<Value, String> {
        match r {
            Ref::Var(n) if n == "cidr" => Ok(json!("10.0.0.0/16")),
            Ref::Var(n) if n == "env" => Ok(json!("prod")),
            Ref::Var(n) if n == "tags" => Ok(json!({"team": "web"})),
            Ref::Var(n) if n == "zones" => Ok(json!(["a", "b", "c"])),
            Ref::Attr { .. } => Ok(unknown()),
            other => Err(format!("no {other:?}")),
        }
    }

    fn run(src: &str) -> Result<Value, ExprError> {
        eval(&parse(src)?, &env)
    }

    #[test]
    fn functions_compute_what_terraforms_do() {
        assert_eq!(run("cidrsubnet(var.cidr, 8, 2)").unwrap(), json!("10.0.2.0/24"));
        assert_eq!(
            run("cidrsubnet(\"10.0.0.0/16\", 4, 15)").unwrap(),
            json!("10.0.240.0/20")
        );
        assert_eq!(run("cidrhost(\"10.0.2.0/24\", 5)").unwrap(), json!("10.0.2.5"));
        assert_eq!(run("cidrhost(\"10.0.2.0/24\", -1)").unwrap(), json!("10.0.2.255"));
        assert_eq!(run("format(\"%s-%03d\", var.env, 7)").unwrap(), json!("prod-007"));
        assert_eq!(run("join(\",\", var.zones)").unwrap(), json!("a,b,c"));
        assert_eq!(run("split(\",\", \"a,b\")").unwrap(), json!(["a", "b"]));
        assert_eq!(run("concat(var.zones, [\"d\"])").unwrap(), json!(["a", "b", "c", "d"]));
        assert_eq!(
            run("merge(var.tags, { env = var.env })").unwrap(),
            json!({"team": "web", "env": "prod"})
        );
        assert_eq!(run("lookup(var.tags, \"x\", \"none\")").unwrap(), json!("none"));
        assert_eq!(run("keys(var.tags)").unwrap(), json!(["team"]));
        assert_eq!(run("values(var.tags)").unwrap(), json!(["web"]));
        assert_eq!(run("index(var.zones, \"b\")").unwrap(), json!(1));
        assert_eq!(run("length(var.zones)").unwrap(), json!(3));
        assert_eq!(run("upper(lower(\"MiX\"))").unwrap(), json!("MIX"));
        assert_eq!(run("replace(\"a-b\", \"-\", \"_\")").unwrap(), json!("a_b"));
        assert_eq!(run("coalesce(\"\", null, \"x\")").unwrap(), json!("x"));
        assert_eq!(run("jsonencode({ a = 1 })").unwrap(), json!("{\"a\":1}"));
        assert_eq!(run("jsondecode(\"[1,2]\")[1]").unwrap(), json!(2));
        assert_eq!(run("base64encode(\"hi\")").unwrap(), json!("aGk="));
        assert_eq!(
            run("sha256(\"abc\")").unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(run("var.zones[2]").unwrap(), json!("c"));
        assert_eq!(run("var.tags[\"team\"]").unwrap(), json!("web"));
    }

    #[test]
    fn conditionals_and_operators() {
        assert_eq!(run("var.env == \"prod\" ? 3 : 1").unwrap(), json!(3));
        assert_eq!(run("var.env != \"prod\" || !false").unwrap(), json!(true));
        assert_eq!(run("1 + 2 * 3 > 6 && true").unwrap(), json!(true));
        assert_eq!(run("-(4 / 2)").unwrap(), json!(-2));
        // A known condition takes only its branch, even next to an unknown one.
        assert_eq!(run("true ? 1 : vpc.main.id").unwrap(), json!(1));
        assert!(is_unknown(&run("vpc.main.id == \"x\" ? 1 : 2").unwrap()));
    }

    #[test]
    fn unknown_values_stay_unknown_through_functions() {
        assert!(is_unknown(&run("upper(vpc.main.id)").unwrap()));
        assert!(is_unknown(&run("cidrsubnet(vpc.main.cidr, 8, 1)").unwrap()));
        assert!(is_unknown(&run("format(\"%s-x\", vpc.main.id)").unwrap()));
    }

    #[test]
    fn errors_point_at_their_place() {
        let e = run("cidrsubnet(var.cidr, 8, 300)").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("netnum 300 does not fit in 8 bits"), "{}", e.message);
        let e = parse("upper(var.env").unwrap_err();
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("`)`"));
        let e = parse("1 + nope(2)").unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.message.contains("unknown function `nope`"));
        let e = run("var.env ? 1 : 2").unwrap_err();
        assert!(e.message.contains("true or false"), "{}", e.message);
        let e = parse("var").unwrap_err();
        assert!(e.message.contains("var.NAME"));
        let e = run("format(\"%s %s\", \"a\")").unwrap_err();
        assert!(e.message.contains("more verbs"), "{}", e.message);
    }

    #[test]
    fn a_closing_brace_inside_strings_and_maps_is_skipped() {
        assert_eq!(closing_brace("merge({ a = \"}\" })} rest"), Some(18));
        assert_eq!(closing_brace("var.x}"), Some(5));
        assert_eq!(closing_brace("\"x"), None);
    }

    #[test]
    fn references_keep_their_paths() {
        let e = parse("subnet.a.ids[0]").unwrap();
        let mut refs = Vec::new();
        e.refs(&mut refs);
        assert_eq!(
            refs,
            vec![Ref::Attr {
                module: String::new(),
                kind: "subnet".into(),
                name: "a".into(),
                attr: "ids".into(),
                path: vec!["0".into()]
            }]
        );
    }
}
