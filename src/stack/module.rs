//! Modules: `[module.NAME] source = "../../modules/app"` with `inputs`.
//! A module is a directory of stack files; its `[variables]` are its inputs
//! and its `[outputs]` what the stack reads as `${module.NAME.OUTPUT}`.
//!
//! Once the stack's variables are known, every module is flattened into the
//! stack: its resources join the stack's, addressed
//! `module.NAME.kind.name` (`module.NAME["key"].kind.name` for one instance
//! of a module with `for_each`), and their texts are rewritten into the
//! stack's scope: `${var.x}` becomes the input's expression, `${local.x}`
//! the module's local, `${kind.name.attr}` the resource's new address, a
//! lookup its new name. `${module.NAME.OUTPUT}` in the stack becomes the
//! output's expression. From then on the graph, plan, state, `[[moved]]`
//! and `--target` see ordinary resources; nothing downstream knows modules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::error::{StackError, StackErrors};
use super::expr::{self, ExprError};
use super::source::Span;
use super::template::{self, Ref};
use super::{ModuleDecl, RefSite, Stack};
use crate::path::did_you_mean;

/// How deep modules may nest (a module using itself is refused sooner).
const MAX_DEPTH: usize = 16;

/// Flatten every module of `stack`. `variables` are the stack's values
/// (unknown ones allowed: `validate` flattens a module whose `for_each` is
/// not known yet as one instance, to check it).
pub fn expand(stack: &mut Stack, variables: &BTreeMap<String, Value>) -> Result<(), StackErrors> {
    if stack.modules.is_empty() {
        return Ok(());
    }
    normalize_sites(stack);
    let mut queue: Vec<(ModuleDecl, Vec<PathBuf>)> =
        stack.modules.iter().cloned().map(|d| (d, Vec::new())).rev().collect();
    let mut errors = Vec::new();
    while let Some((decl, chain)) = queue.pop() {
        match flatten(stack, &decl, &chain, variables) {
            Ok(nested) => queue.extend(nested.into_iter().rev()),
            Err(mut e) => errors.append(&mut e.0),
        }
    }
    // `depends_on = ["module.x"]`: every resource of that module.
    let addresses: Vec<String> = stack.resources.iter().map(|r| r.address.clone()).collect();
    for r in &mut stack.resources {
        let mut deps = Vec::new();
        for (d, span) in std::mem::take(&mut r.depends_on) {
            if d.starts_with("module.") && super::split_address(&d).is_none() {
                let prefix = format!("{d}.");
                let (inside, bracketed) = (addresses.iter().filter(|a| a.starts_with(&prefix)), format!("{d}["));
                let mut any = false;
                for a in inside.chain(addresses.iter().filter(|a| a.starts_with(&bracketed))) {
                    any = true;
                    deps.push((a.clone(), span.clone()));
                }
                if !any {
                    deps.push((d, span));
                }
            } else {
                deps.push((d, span));
            }
        }
        r.depends_on = deps;
    }
    stack.index = stack
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.address.clone(), i))
        .collect();
    super::load::expand_local_refs(stack);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StackErrors(errors))
    }
}

/// Each reference site once per `${...}`, read again from its text: local
/// expansions (re-added once modules are flattened) go.
fn normalize_sites(stack: &mut Stack) {
    let all = |sites: &mut Vec<RefSite>| {
        *sites = resite(sites, &mut |t| Ok(t.to_string())).unwrap_or_else(|_| std::mem::take(sites));
    };
    for r in &mut stack.resources {
        all(&mut r.refs);
    }
    for o in &mut stack.outputs {
        all(&mut o.refs);
    }
}

/// Reference sites rewritten: each distinct `${...}` text passed through
/// `f`, and its references read from the new text (at the old place).
fn resite(sites: &[RefSite], f: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<Vec<RefSite>, String> {
    let mut out = Vec::new();
    let mut done: Vec<(&str, &Span)> = Vec::new();
    for s in sites {
        if done
            .iter()
            .any(|(t, sp)| *t == s.text && sp.file == s.span.file && sp.range == s.span.range)
        {
            continue;
        }
        done.push((&s.text, &s.span));
        let text = f(&s.text)?;
        let e = expr::parse(&text).map_err(|e| e.message)?;
        let mut refs = Vec::new();
        e.refs(&mut refs);
        for r in refs {
            out.push(RefSite {
                reference: r,
                text: text.clone(),
                span: s.span.clone(),
            });
        }
    }
    Ok(out)
}

/// The instances of a module: (path, `each` binding). Without for_each,
/// one instance `module.NAME.`.
fn instances(
    stack: &Stack,
    decl: &ModuleDecl,
    variables: &BTreeMap<String, Value>,
) -> Result<Vec<(String, Option<(String, Value)>)>, StackError> {
    let path = format!("{}module.{}", decl.within, decl.name);
    let Some((each, span)) = &decl.for_each else {
        return Ok(vec![(format!("{path}."), None)]);
    };
    let at = Some(stack.sources.locate(span));
    let no_attrs = |_: &str| None;
    let locals = stack.local_values();
    let scope = crate::plan::make::Scope::new(&no_attrs, variables, &locals, &stack.dir);
    let err = |m: String| StackError::new(at.clone(), format!("module.{}: {m}", decl.name));
    let items = match template::resolve(each, &scope)
        .map_err(|e| format!("for_each: {e}"))
        .and_then(|v| super::for_each::keys(&v))
    {
        Ok(Some(items)) => items,
        Ok(None) if variables.values().any(crate::value::contains_unknown) => {
            // `validate` without values: check one instance.
            return Ok(vec![(
                format!("{}.", expr::instance(&path, "each")),
                Some(("each".into(), crate::value::unknown())),
            )]);
        }
        Ok(None) => {
            return Err(err(
                "for_each must be known before apply (from variables, locals or literals)".into(),
            ))
        }
        Err(e) => return Err(err(e)),
    };
    Ok(items
        .into_iter()
        .map(|(k, v)| (format!("{}.", expr::instance(&path, &k)), Some((k, v))))
        .collect())
}

/// Flatten one module declaration (every instance of it) into `stack`; the
/// modules it declares come back, to be flattened in turn.
fn flatten(
    stack: &mut Stack,
    decl: &ModuleDecl,
    chain: &[PathBuf],
    variables: &BTreeMap<String, Value>,
) -> Result<Vec<(ModuleDecl, Vec<PathBuf>)>, StackErrors> {
    let at = Some(stack.sources.locate(&decl.span));
    let here = |m: String| StackErrors(vec![StackError::new(at.clone(), m)]);
    let dir = tidy(&decl.base.join(&decl.source));
    let real = crate::operator::confined_file(&dir.to_string_lossy(), "module source")
        .map_err(|m| here(format!("module.{}: {m}", decl.name)))?;
    if !real.is_dir() {
        return Err(here(format!(
            "module.{}: source {:?} is not a directory of stack files",
            decl.name, decl.source
        )));
    }
    if chain.contains(&real) || chain.len() >= MAX_DEPTH {
        return Err(here(format!(
            "module.{} uses {} again inside itself: modules may not include themselves",
            decl.name,
            real.display()
        )));
    }
    let mut chain = chain.to_vec();
    chain.push(real.clone());
    // Load what was checked (a symlink could make the tidy path another).
    let dir = if dir.canonicalize().ok().as_ref() == Some(&real) {
        dir
    } else {
        real.clone()
    };
    let child = super::load::load_module(&dir)?;
    let offset = stack.sources.files.len();
    stack.sources.files.extend(child.sources.files.iter().cloned());
    let shift = |s: &Span| Span {
        file: s.file + offset,
        range: s.range.clone(),
    };

    // Inputs: each names a variable of the module; a variable without a
    // default needs one.
    let mut errors = Vec::new();
    for (name, (_, span)) in &decl.inputs {
        if !child.variables.contains_key(name) {
            let e = StackError::new(
                Some(stack.sources.locate(span)),
                format!("module.{}: {} declares no variable `{name}`", decl.name, decl.source),
            );
            errors.push(match did_you_mean(name, child.variables.keys().map(String::as_str)) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help(format!(
                    "its variables: {}",
                    child.variables.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            });
        }
    }
    for (name, v) in &child.variables {
        if v.default.is_none() && !decl.inputs.contains_key(name) {
            errors.push(
                StackError::new(at.clone(), format!("module.{} needs the input `{name}`", decl.name)).with_help(
                    format!(
                        "add it: inputs = {{ {name} = ... }}{}",
                        v.description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
                    ),
                ),
            );
        }
    }
    if !errors.is_empty() {
        return Err(StackErrors(errors));
    }

    let mut nested = Vec::new();
    for (prefix, each) in instances(stack, decl, variables).map_err(|e| StackErrors(vec![e]))? {
        let fail = |m: String| {
            StackErrors(vec![StackError::new(
                at.clone(),
                format!("{}: {m}", prefix.trim_end_matches('.')),
            )])
        };
        // What `var.x` becomes: the input's expression (in the stack's
        // scope), else the default.
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for (name, v) in &child.variables {
            let text = match decl.inputs.get(name) {
                Some((value, _)) => {
                    let value = match &each {
                        Some((k, v)) => template::bind_each(value, k, v).map_err(fail)?,
                        None => value.clone(),
                    };
                    template::value_expr(&value).map_err(fail)?
                }
                None => {
                    let d = v.default.clone().unwrap_or(Value::Null);
                    template::value_expr(&d).map_err(fail)?
                }
            };
            vars.insert(name.clone(), text);
        }
        let rename_lookup = |name: &str| {
            let safe: String = prefix
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("{safe}{name}")
        };
        let mut rw = Rewriter {
            prefix: &prefix,
            vars: &vars,
            locals: &child.locals.iter().map(|(k, l)| (k.clone(), l.value.clone())).collect(),
            lookup: &rename_lookup,
            depth: 0,
        };
        // Lookups join the stack's under a name of their own.
        for l in &child.lookups {
            let mut l = l.clone();
            l.name = rename_lookup(&l.name);
            l.config = rw.value(&l.config).map_err(fail)?;
            l.refs = resite(&l.refs, &mut |t| rw.text(t)).map_err(fail)?;
            l.span = shift(&l.span);
            shift_sites(&mut l.refs, offset);
            stack.lookups.push(l);
        }
        for r in &child.resources {
            let mut r = r.clone();
            r.module = format!("{}{}", prefix, r.module);
            r.address = format!("{}{}", prefix, r.address);
            if stack.index.contains_key(&r.address) {
                return Err(fail(format!("`{}` is declared twice", r.address)));
            }
            r.config = rw.value(&r.config).map_err(fail)?;
            r.refs = resite(&r.refs, &mut |t| rw.text(t)).map_err(fail)?;
            shift_sites(&mut r.refs, offset);
            if let Some((v, sites, span)) = r.for_each.take() {
                let mut sites = resite(&sites, &mut |t| rw.text(t)).map_err(fail)?;
                shift_sites(&mut sites, offset);
                r.for_each = Some((rw.value(&v).map_err(fail)?, sites, shift(&span)));
            }
            r.depends_on = r
                .depends_on
                .iter()
                .map(|(d, s)| (format!("{prefix}{d}"), shift(s)))
                .chain(decl.depends_on.iter().cloned())
                .collect();
            r.span = shift(&r.span);
            r.file += offset;
            stack.index.insert(r.address.clone(), stack.resources.len());
            stack.resources.push(r);
        }
        for m in &child.modules {
            let mut m = m.clone();
            m.within = prefix.clone();
            for (v, _) in m.inputs.values_mut() {
                *v = rw.value(v).map_err(fail)?;
            }
            if let Some((v, _)) = &mut m.for_each {
                *v = rw.value(v).map_err(fail)?;
            }
            for (d, _) in &mut m.depends_on {
                *d = format!("{prefix}{d}");
            }
            m.depends_on.extend(decl.depends_on.iter().cloned());
            m.span = shift(&m.span);
            for (_, s) in m.inputs.values_mut() {
                *s = shift(s);
            }
            if let Some((_, s)) = &mut m.for_each {
                *s = shift(s);
            }
            m.base = dir.clone();
            nested.push((m, chain.clone()));
        }
        // `${module.NAME.OUTPUT}` in the stack: the output's expression.
        let mut outputs = BTreeMap::new();
        for o in &child.outputs {
            outputs.insert(
                o.name.clone(),
                template::value_expr(&rw.value(&o.value).map_err(fail)?).map_err(fail)?,
            );
        }
        inline_outputs(stack, &prefix, &outputs, &mut nested).map_err(|m| here(m))?;
    }
    Ok(nested)
}

fn shift_sites(sites: &mut [RefSite], offset: usize) {
    for s in sites {
        s.span.file += offset;
    }
}

/// Write `${module.NAME.OUTPUT}` (module path `prefix`) as the output's
/// expression everywhere in the stack and in the modules still to flatten.
fn inline_outputs(
    stack: &mut Stack,
    prefix: &str,
    outputs: &BTreeMap<String, String>,
    pending: &mut [(ModuleDecl, Vec<PathBuf>)],
) -> Result<(), String> {
    let mut missing: Option<String> = None;
    let mut f = |text: &str| -> Result<String, String> {
        expr::rewrite_refs(text, &mut |r| match r {
            Ref::Module { module, output, .. } if module == prefix => match outputs.get(output) {
                Some(e) => Some(template::wrap(e)),
                None => {
                    missing.get_or_insert_with(|| {
                        let help = match did_you_mean(output, outputs.keys().map(String::as_str)) {
                            Some(s) => format!("did you mean `{prefix}{s}`?"),
                            None => format!(
                                "its outputs: {}",
                                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        };
                        format!("`{prefix}{output}`: the module has no output `{output}` ({help})")
                    });
                    None
                }
            },
            _ => None,
        })
        .map_err(|e: ExprError| e.message)
    };
    let needs = |text: &str| text.contains("module.");
    for r in &mut stack.resources {
        if r.refs.iter().any(|s| needs(&s.text)) {
            r.config = template::map_exprs(&r.config, &mut f)?;
            r.refs = resite(&r.refs, &mut f)?;
        }
    }
    for o in &mut stack.outputs {
        if o.refs.iter().any(|s| needs(&s.text)) {
            o.value = template::map_exprs(&o.value, &mut f)?;
            o.refs = resite(&o.refs, &mut f)?;
        }
    }
    for l in stack.locals.values_mut() {
        if l.refs.iter().any(|s| needs(&s.text)) {
            l.value = template::map_exprs(&l.value, &mut f)?;
            l.refs = resite(&l.refs, &mut f)?;
        }
    }
    for (m, _) in pending.iter_mut() {
        for (v, _) in m.inputs.values_mut() {
            *v = template::map_exprs(v, &mut f)?;
        }
    }
    match missing {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

/// Rewrites a module's texts into the stack's scope.
struct Rewriter<'a> {
    /// `module.NAME.` (with the instance key).
    prefix: &'a str,
    /// Variable -> the expression it stands for.
    vars: &'a BTreeMap<String, String>,
    /// The module's locals as written.
    locals: &'a BTreeMap<String, Value>,
    lookup: &'a dyn Fn(&str) -> String,
    depth: usize,
}

impl Rewriter<'_> {
    fn value(&mut self, v: &Value) -> Result<Value, String> {
        template::map_exprs(v, &mut |t| self.text(t))
    }

    /// One `${...}` text.
    fn text(&mut self, t: &str) -> Result<String, String> {
        let mut err = None;
        let out = expr::rewrite_refs(t, &mut |r| match r {
            Ref::Var(n) => match self.vars.get(n) {
                Some(e) => Some(template::wrap(e)),
                None => {
                    err.get_or_insert(format!("the module declares no variable `{n}`"));
                    None
                }
            },
            Ref::Local(n) => {
                let Some(v) = self.locals.get(n) else {
                    err.get_or_insert(format!("the module declares no local `{n}`"));
                    return None;
                };
                if self.depth > 32 {
                    err.get_or_insert(format!("local `{n}` refers to itself through other locals"));
                    return None;
                }
                self.depth += 1;
                let inlined = self.value(v).and_then(|v| template::value_expr(&v));
                self.depth -= 1;
                match inlined {
                    Ok(e) => Some(template::wrap(&e)),
                    Err(m) => {
                        err.get_or_insert(m);
                        None
                    }
                }
            }
            Ref::Each(..) => None,
            Ref::Lookup { kind, name, attr, .. } => Some(format!("lookup.{kind}.{}.{attr}", (self.lookup)(name))),
            Ref::Attr {
                module,
                kind,
                name,
                attr,
                ..
            } => Some(format!("{}{module}{kind}.{name}.{attr}", self.prefix)),
            Ref::Module { module, output, .. } => Some(format!("{}{module}{output}", self.prefix)),
        })
        .map_err(|e| e.message)?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// Every module directory `dir`'s stack uses, through nested modules, each
/// once (for the digest of a saved plan). Unreadable ones are left out:
/// loading the stack reports them.
pub fn source_dirs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut todo = match super::load::load(dir) {
        Ok(s) => s.modules,
        Err(_) => return out,
    };
    while let Some(m) = todo.pop() {
        let d = m.base.join(&m.source);
        let Ok(real) = d.canonicalize() else { continue };
        if out.contains(&real) || out.len() > 64 {
            continue;
        }
        out.push(real);
        if let Ok(child) = super::load::load_module(&d) {
            todo.extend(child.modules.into_iter().map(|mut c| {
                c.base = d.clone();
                c
            }));
        }
    }
    out.sort();
    out
}

/// `a/b/../c` as `a/c` (for messages; the real path is checked apart).
fn tidy(p: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
