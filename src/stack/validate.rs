//! Check a loaded stack against the kinds: known kinds, fields that fit each
//! kind's schema, references to resources, attributes and variables that exist.

use super::error::{StackError, StackErrors};
use super::template::Ref;
use super::{RefSite, Stack};
use crate::path::did_you_mean;
use crate::path::PathSeg;
use crate::providers::{error_is_about_unknown, Registry, StackView};

/// Every problem in the stack, or `Ok` when it can be planned.
pub fn validate(stack: &Stack, registry: &Registry) -> Result<(), StackErrors> {
    let mut errors = check_moved(stack);
    let mut reported_kinds = Vec::new();
    for r in &stack.resources {
        let Some(kind) = registry.get(&r.kind) else {
            if !reported_kinds.contains(&r.kind) {
                reported_kinds.push(r.kind.clone());
                let kinds: Vec<&str> = registry.names().collect();
                let help = match did_you_mean(&r.kind, kinds.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("known kinds: {}", kinds.join(", ")),
                };
                errors.push(
                    StackError::new(
                        Some(stack.sources.locate(&r.span)),
                        format!("unknown kind `{}` in `{}`", r.kind, r.address),
                    )
                    .with_help(help),
                );
            }
            continue;
        };
        if let Err(e) = kind.check(&r.config) {
            let mut path = e.path.clone();
            if let Some(word) = e
                .message
                .strip_prefix("unknown field `")
                .and_then(|m| m.split('`').next())
            {
                if path.last() != Some(&PathSeg::Field(word.to_string())) {
                    path.push(PathSeg::Field(word.to_string()));
                }
            }
            if !error_is_about_unknown(&r.config, &e.path) {
                let range = r.body.span_at(&path);
                let loc = stack.sources.locate(&super::source::Span { file: r.file, range });
                let field: String = path.iter().map(|s| s.to_string()).collect();
                let msg = if field.is_empty() {
                    format!("{}: {}", r.address, e.message)
                } else {
                    format!("{}{field}: {}", r.address, e.message)
                };
                let mut err = StackError::new(Some(loc), msg);
                if let Some(s) = &e.suggestion {
                    err = err.with_help(format!("did you mean `{s}`?"));
                }
                errors.push(err);
            }
        }
        for site in &r.refs {
            check_ref(stack, registry, site, Some(&r.address), &mut errors);
        }
        for (path, text, target) in forgotten_references(stack, &r.config) {
            let range = r.body.span_at(&path);
            let field: String = path.iter().map(|s| s.to_string()).collect();
            errors.push(
                StackError::new(
                    Some(stack.sources.locate(&super::source::Span { file: r.file, range })),
                    format!(
                        "{}{field}: {text:?} names `{target}` but is a literal string, not a reference; AWS would \
                         take it as an ID and refuse it",
                        r.address
                    ),
                )
                .with_help(format!("write \"${{{text}}}\"")),
            );
        }
        for site in r.for_each.iter().flat_map(|f| f.1.iter()) {
            if site.reference.address().is_some() {
                errors.push(StackError::new(
                    Some(stack.sources.locate(&site.span)),
                    format!(
                        "{}: for_each reads `${{{}}}`: its keys must be known before apply, so it may use variables, locals and literals only",
                        r.address, site.text
                    ),
                ));
            } else {
                check_ref(stack, registry, site, None, &mut errors);
            }
        }
        for (dep, span) in &r.depends_on {
            let loc = || Some(stack.sources.locate(span));
            if dep == &r.address {
                errors.push(StackError::new(
                    loc(),
                    format!("`{}` cannot depend on itself", r.address),
                ));
            } else if stack.resource(dep).is_none() {
                errors.push(unknown_resource(stack, dep, loc()));
            }
        }
    }
    for o in &stack.outputs {
        for site in &o.refs {
            check_ref(stack, registry, site, None, &mut errors);
            // As Terraform: an output that shows a sensitive variable says so.
            if let Ref::Var(name) = &site.reference {
                if !o.sensitive && stack.variables.get(name).is_some_and(|v| v.sensitive) {
                    errors.push(
                        StackError::new(
                            Some(stack.sources.locate(&site.span)),
                            format!("output `{}` refers to the sensitive variable `{name}`", o.name),
                        )
                        .with_help(format!(
                            "write `{} = {{ value = \"...\", sensitive = true }}`, or leave the variable out",
                            o.name
                        )),
                    );
                }
            }
        }
    }
    errors.extend(relations(stack, registry));
    errors.extend(check_one_owner(stack, registry));
    errors.extend(check_locals(stack, registry));
    // A reference through a local is checked where the local is written and
    // where it is used: say it once.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.message.clone()));
    errors.sort_by_key(|e| e.location.as_ref().map(|l| (l.path.clone(), l.line, l.column)));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StackErrors(errors))
    }
}

fn unknown_resource(stack: &Stack, address: &str, loc: Option<super::source::Location>) -> StackError {
    let e = StackError::new(loc, format!("reference to unknown resource `{address}`"));
    match did_you_mean(address, stack.resources.iter().map(|r| r.address.as_str())) {
        Some(s) => e.with_help(format!("did you mean `{s}`?")),
        None => e.with_help("declare it, e.g. [KIND.NAME], or fix the address"),
    }
}

fn check_ref(stack: &Stack, registry: &Registry, site: &RefSite, from: Option<&str>, errors: &mut Vec<StackError>) {
    let loc = Some(stack.sources.locate(&site.span));
    match &site.reference {
        Ref::Var(name) => {
            if !stack.variables.contains_key(name) {
                let e = StackError::new(loc, format!("reference to undeclared variable `{name}`"));
                errors.push(match did_you_mean(name, stack.variables.keys().map(String::as_str)) {
                    Some(s) => e.with_help(format!("did you mean `var.{s}`?")),
                    None => e.with_help(format!("declare it under [variables], e.g. {name} = \"default\"")),
                });
            }
        }
        Ref::Local(name) => {
            if !stack.locals.contains_key(name) {
                let e = StackError::new(loc, format!("reference to undeclared local `{name}`"));
                errors.push(match did_you_mean(name, stack.locals.keys().map(String::as_str)) {
                    Some(s) => e.with_help(format!("did you mean `local.{s}`?")),
                    None => e.with_help(format!("declare it under [locals], e.g. {name} = \"...\"")),
                });
            }
        }
        Ref::Each(which, _) => {
            let in_for_each = from
                .and_then(|a| stack.resource(a))
                .is_some_and(|r| r.for_each.is_some());
            if !in_for_each {
                errors.push(
                    StackError::new(loc, format!("`each.{which}` is used outside a resource with for_each"))
                        .with_help("add `for_each = [...]` (or a table) to this resource, or write the value"),
                );
            }
        }
        Ref::Lookup { kind, name, attr, .. } => {
            let Some(decl) = stack.lookups.iter().find(|l| &l.kind == kind && &l.name == name) else {
                errors.push(
                    StackError::new(loc, format!("reference to undeclared lookup `lookup.{kind}.{name}`"))
                        .with_help(format!("declare it: [lookup.{kind}.{name}]")),
                );
                return;
            };
            let attrs = crate::lookup::kind(&decl.kind).map(|k| k.2).unwrap_or(&[]);
            // Another stack's outputs are known only once its state is read.
            if decl.kind != "stack" && !attrs.contains(&attr.as_str()) {
                let e = StackError::new(loc, format!("`lookup.{kind}.{name}` has no attribute `{attr}`"));
                errors.push(match did_you_mean(attr, attrs.iter().copied()) {
                    Some(s) => e.with_help(format!("did you mean `lookup.{kind}.{name}.{s}`?")),
                    None => e.with_help(format!("it has: {}", attrs.join(", "))),
                });
            }
        }
        Ref::Module { module, output, .. } => {
            let name = module.strip_prefix("module.").unwrap_or(module).trim_end_matches('.');
            let base = name.split_once('[').map(|(b, _)| b).unwrap_or(name);
            if !stack.modules.iter().any(|m| m.name == base) {
                let e = StackError::new(
                    loc,
                    format!("reference to undeclared module `module.{base}` (`{module}{output}`)"),
                );
                errors.push(
                    match did_you_mean(base, stack.modules.iter().map(|m| m.name.as_str())) {
                        Some(s) => e.with_help(format!("did you mean `module.{s}`?")),
                        None => e.with_help(format!("declare it: [module.{base}] source = \"../../modules/NAME\"")),
                    },
                );
            }
        }
        r @ Ref::Attr {
            attr,
            kind,
            name,
            module,
            ..
        } => {
            // `kind.name["key"]` and `kind.name[*]` name instances of a for_each resource.
            let (base, key) = match name.split_once('[') {
                Some((b, k)) => (format!("{module}{kind}.{b}"), Some(k.trim_end_matches(']').to_string())),
                None => (r.address().unwrap_or_default(), None),
            };
            let each = stack.resource(&base).map(|t| t.for_each.is_some());
            match (each, &key) {
                (Some(false), Some(_)) => {
                    errors.push(StackError::new(
                        loc,
                        format!("`{base}` has no for_each: refer to it as `{base}`"),
                    ));
                    return;
                }
                (Some(true), None) => {
                    errors.push(
                        StackError::new(loc, format!("`{base}` has for_each: name an instance")).with_help(format!(
                            "write `{base}[\"KEY\"].{attr}`, or `{base}[*].{attr}` for the list of all"
                        )),
                    );
                    return;
                }
                _ => {}
            }
            let address = base;
            let Some(target) = stack.resource(&address) else {
                errors.push(unknown_resource(stack, &address, loc));
                return;
            };
            let Some(kind) = registry.get(&target.kind) else { return };
            // Computed attributes, and every input field, defaults included.
            let completed = kind.complete(&stack.name, &address, &target.config);
            let mut known: Vec<&str> = kind.computed_attributes().to_vec();
            for c in [&target.config, &completed] {
                if let Some(o) = c.as_object() {
                    known.extend(o.keys().map(String::as_str));
                }
            }
            known.sort();
            known.dedup();
            if !known.contains(&attr.as_str()) {
                let e = StackError::new(loc.clone(), format!("`{address}` has no attribute `{attr}`"));
                errors.push(match did_you_mean(attr, known.iter().copied()) {
                    Some(s) => e.with_help(format!("did you mean `{address}.{s}`?")),
                    None => e.with_help(format!("`{address}` has: {}", known.join(", "))),
                });
            }
        }
    }
}

/// The locals' own references, and no local that reads itself (through
/// others), reported like a resource cycle.
fn check_locals(stack: &Stack, registry: &Registry) -> Vec<StackError> {
    let mut errors = Vec::new();
    for local in stack.locals.values() {
        for site in &local.refs {
            check_ref(stack, registry, site, None, &mut errors);
        }
    }
    for l in &stack.lookups {
        for site in &l.refs {
            if site.reference.address().is_some() {
                errors.push(StackError::new(
                    Some(stack.sources.locate(&site.span)),
                    format!(
                        "lookup.{}.{} reads `${{{}}}`: a lookup is read before any resource, so it may use variables and locals only",
                        l.kind, l.name, site.text
                    ),
                ));
            } else {
                check_ref(stack, registry, site, None, &mut errors);
            }
        }
    }
    for (name, local) in &stack.locals {
        // Depth-first from `name`: does it come back?
        let mut path = vec![name.clone()];
        if let Some(cycle) = cycle_from(stack, name, &mut path) {
            if cycle.iter().min() == Some(name) {
                errors.push(
                    StackError::new(
                        Some(stack.sources.locate(&local.span)),
                        format!(
                            "locals refer to each other in a cycle: {}",
                            cycle
                                .iter()
                                .map(|n| format!("local.{n}"))
                                .collect::<Vec<_>>()
                                .join(" -> ")
                        ),
                    )
                    .with_help("break the cycle: one of them must not read the others"),
                );
            }
        }
    }
    errors
}

fn cycle_from(stack: &Stack, start: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
    let current = path.last()?.clone();
    for site in stack.locals.get(&current).map(|l| l.refs.as_slice()).unwrap_or(&[]) {
        let Ref::Local(next) = &site.reference else { continue };
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            return Some(cycle);
        }
        if path.contains(next) {
            continue;
        }
        path.push(next.clone());
        if let Some(c) = cycle_from(stack, start, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}

/// `[[moved]]` entries: `to` is declared, `from` no longer is, both are of
/// one kind, and no address moves twice.
fn check_moved(stack: &Stack) -> Vec<StackError> {
    let mut errors = Vec::new();
    let kind_of = |a: &str| super::kind_of(a).to_string();
    for (i, m) in stack.moved.iter().enumerate() {
        let here = Some(stack.sources.locate(&m.span));
        // An instance `kind.name["key"]` is declared by its for_each resource
        // (whether the key exists is known once the variables are).
        let declared = |a: &str| match super::split_address(a).and_then(|(m, k, n)| Some((m, k, n.split_once('[')?.0)))
        {
            Some((m, k, base)) => stack
                .resource(&format!("{m}{k}.{base}"))
                .is_some_and(|r| r.for_each.is_some()),
            None => stack.resource(a).is_some(),
        };
        let problem = if !declared(&m.to) {
            Some(format!("[[moved]] to `{}`, which the stack does not declare", m.to))
        } else if declared(&m.from) && !m.from.contains('[') {
            Some(format!(
                "[[moved]] from `{}`, which the stack still declares: a moved resource has one address",
                m.from
            ))
        } else if kind_of(&m.from) != kind_of(&m.to) {
            Some(format!(
                "[[moved]] from `{}` to `{}`: a move keeps the kind",
                m.from, m.to
            ))
        } else if stack.moved[..i].iter().any(|o| o.from == m.from || o.to == m.to) {
            Some(format!("`{}` or `{}` is in two [[moved]] entries", m.from, m.to))
        } else {
            None
        };
        errors.extend(problem.map(|p| StackError::new(here, p)));
    }
    errors
}

/// Kubernetes objects have one owner: two resources that render the same
/// object (kind, namespace, name) would fight over it, and deleting one
/// would delete the other's object.
fn check_one_owner(stack: &Stack, registry: &Registry) -> Vec<StackError> {
    let mut owner: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for r in &stack.resources {
        let Some(kind) = registry.get(&r.kind) else { continue };
        let completed = kind.complete(&stack.name, &r.address, &r.config);
        let manifests = completed.get("manifests").and_then(serde_json::Value::as_array);
        for m in manifests.into_iter().flatten() {
            let id = crate::providers::k8s::project::id_of(std::slice::from_ref(m));
            // Names still holding references are judged once they are known.
            if id.contains("${") || crate::value::contains_unknown(m) && id.contains('\u{1}') {
                continue;
            }
            match owner.get(&id) {
                Some(first) if *first != r.address => {
                    let first_at = stack.resource(first).map(|f| stack.sources.locate(&f.span).to_string());
                    errors.push(
                        StackError::new(
                            Some(stack.sources.locate(&r.span)),
                            format!(
                                "`{}` renders {id}, which `{first}`{} renders too: an object has one owner",
                                r.address,
                                first_at.map(|l| format!(" (at {l})")).unwrap_or_default()
                            ),
                        )
                        .with_help("give one of them another `name` or `namespace`, or remove one"),
                    );
                }
                Some(_) => {}
                None => {
                    owner.insert(id, &r.address);
                }
            }
        }
    }
    errors
}

/// Strings shaped like a reference to a resource of the stack written
/// without `${...}` (`vpc = "vpc.main.id"`): (path, text, the resource).
fn forgotten_references(stack: &Stack, config: &serde_json::Value) -> Vec<(Vec<PathSeg>, String, String)> {
    fn walk(
        stack: &Stack,
        v: &serde_json::Value,
        path: &mut Vec<PathSeg>,
        out: &mut Vec<(Vec<PathSeg>, String, String)>,
    ) {
        match v {
            serde_json::Value::String(s) if !s.contains("${") && !s.contains(' ') => {
                // `kind.name.attr`, `module.m.kind.name.attr`, `kind.name["k"].attr`.
                let Some((module, kind, rest)) = super::split_address(s) else {
                    return;
                };
                let Some((name, attr)) = rest.rsplit_once('.') else {
                    return;
                };
                let base = name.split_once('[').map(|(b, _)| b).unwrap_or(name);
                let target = format!("{module}{kind}.{base}");
                let declared = stack.resource(&target).is_some()
                    || stack.instances.contains_key(&target)
                    || stack
                        .resources
                        .iter()
                        .any(|r| r.address.starts_with(&format!("{target}[")));
                if declared && !attr.is_empty() && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push((path.clone(), s.clone(), target));
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    walk(stack, x, path, out);
                    path.pop();
                }
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    path.push(PathSeg::Field(k.clone()));
                    walk(stack, x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(stack, config, &mut Vec::new(), &mut out);
    out
}

/// Relations between resources, kind by kind (subnets inside their VPC,
/// zones of the region, ...). Run again once for_each has made its
/// instances, whose keys are then written in (`${"us-west-2a"}`).
pub fn relations(stack: &Stack, registry: &Registry) -> Vec<StackError> {
    let mut errors = Vec::new();
    let view = StackView::of(stack);
    let mut kinds: Vec<&str> = stack.resources.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let Some(kind) = registry.get(k) else { continue };
        for issue in kind.check_stack(&view) {
            let loc = stack.resource(&issue.address).map(|r| {
                stack.sources.locate(&super::source::Span {
                    file: r.file,
                    range: r.body.span_at(&issue.path),
                })
            });
            let field: String = issue.path.iter().map(|s| s.to_string()).collect();
            errors.push(StackError::new(
                loc,
                format!("{}{field}: {}", issue.address, issue.message),
            ));
        }
    }
    errors
}
