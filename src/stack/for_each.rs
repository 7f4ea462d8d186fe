//! `for_each`: one resource table, many instances. Once the variables are
//! known, a resource with `for_each = [..] | {..}` becomes one resource per
//! key, addressed `kind.name["key"]`, with `${each.key}` and
//! `${each.value...}` written in as that instance's values. Adding or
//! removing a key adds or removes only that instance. `${kind.name[*].attr}`
//! is the list of every instance's value, in key order.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{StackError, StackErrors};
use super::expr;
use super::template::{self, Ref};
use super::{RefSite, Stack};

/// Expand every for_each resource of `stack` with these variable values.
pub fn expand(stack: &mut Stack, variables: &BTreeMap<String, Value>) -> Result<(), StackErrors> {
    if stack.resources.iter().all(|r| r.for_each.is_none()) {
        return Ok(());
    }
    let locals = stack.local_values();
    let no_attrs = |_: &str| None;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut instances: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in std::mem::take(&mut stack.resources) {
        let Some((each, _, span)) = r.for_each.clone() else {
            out.push(r);
            continue;
        };
        let at = Some(stack.sources.locate(&span));
        let scope = crate::plan::make::Scope::new(&no_attrs, variables, &locals, &stack.dir);
        let items = match template::resolve(&each, &scope)
            .map_err(|e| format!("for_each: {e}"))
            .and_then(|v| keys(&v))
        {
            Ok(Some(items)) => items,
            Ok(None) => {
                errors.push(StackError::new(
                    at,
                    format!(
                        "{}: for_each must be known before apply (from variables, locals or literals)",
                        r.address
                    ),
                ));
                continue;
            }
            Err(e) => {
                errors.push(StackError::new(at, format!("{}: {e}", r.address)));
                continue;
            }
        };
        let mut addresses = Vec::new();
        for (key, value) in items {
            let mut one = r.clone();
            one.name = expr::instance(&r.name, &key);
            one.address = format!("{}{}.{}", r.module, r.kind, one.name);
            one.config = match template::bind_each(&r.config, &key, &value) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(StackError::new(at.clone(), format!("{}: {e}", one.address)));
                    continue;
                }
            };
            one.refs.retain(|s| !matches!(s.reference, Ref::Each(..)));
            one.for_each = None;
            addresses.push(one.address.clone());
            out.push(one);
        }
        instances.insert(r.address.clone(), addresses);
    }
    // `kind.name[*]` reads every instance: an edge to each.
    let splat = |refs: &mut Vec<RefSite>| {
        let mut extra = Vec::new();
        for s in refs.iter() {
            let Ref::Attr {
                module,
                kind,
                name,
                attr,
                path,
            } = &s.reference
            else {
                continue;
            };
            let Some(base) = name.strip_suffix("[*]") else { continue };
            for a in instances.get(&format!("{module}{kind}.{base}")).into_iter().flatten() {
                extra.push(RefSite {
                    reference: Ref::to_attr(a, attr, path),
                    text: s.text.clone(),
                    span: s.span.clone(),
                });
            }
        }
        refs.extend(extra);
    };
    for r in &mut out {
        splat(&mut r.refs);
        // `depends_on = ["kind.name"]` of a for_each resource: every instance.
        if r.depends_on.iter().any(|(d, _)| instances.contains_key(d)) {
            r.depends_on = std::mem::take(&mut r.depends_on)
                .into_iter()
                .flat_map(|(d, span)| match instances.get(&d) {
                    Some(all) => all.iter().map(|a| (a.clone(), span.clone())).collect(),
                    None => vec![(d, span)],
                })
                .collect();
        }
    }
    for o in &mut stack.outputs {
        splat(&mut o.refs);
    }
    stack.index = out.iter().enumerate().map(|(i, r)| (r.address.clone(), i)).collect();
    stack.resources = out;
    stack.instances = instances;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StackErrors(errors))
    }
}

/// The instances a resolved `for_each` value makes: (key, `each.value`);
/// None while it is unknown. A list of strings keys by each string, a
/// table by its keys.
pub fn keys(v: &Value) -> Result<Option<Vec<(String, Value)>>, String> {
    match v {
        v if crate::value::contains_unknown(v) => Ok(None),
        Value::Array(xs) if xs.iter().all(Value::is_string) => {
            let keys: Vec<String> = xs.iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
            if let Some(d) = keys.iter().enumerate().find(|(i, k)| keys[..*i].contains(k)) {
                return Err(format!("for_each lists {:?} twice", d.1));
            }
            Ok(Some(keys.into_iter().map(|k| (k.clone(), Value::String(k))).collect()))
        }
        Value::Object(m) => Ok(Some(m.clone().into_iter().collect())),
        other => Err(format!("for_each must be a list of strings or a table, not {other}")),
    }
}
