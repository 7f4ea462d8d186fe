//! Variable values: `--var name=value` beats `SLIPWAY_VAR_name`, which beats
//! the stack's default.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{StackError, StackErrors};
use super::Stack;
use crate::path::did_you_mean;

/// Parse `--var` arguments into (name, value) pairs.
pub fn parse_cli_vars(args: &[String]) -> Result<Vec<(String, String)>, StackErrors> {
    let mut out = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() => out.push((n.trim().to_string(), v.to_string())),
            _ => {
                return Err(
                    StackError::new(None, format!("malformed --var {a:?}: expected NAME=VALUE"))
                        .with_help("for example --var image_tag=v1.2.3")
                        .into(),
                )
            }
        }
    }
    Ok(out)
}

/// Convert a string given on the command line or in the environment to the
/// type of the variable's default.
fn typed(raw: &str, default: Option<&Value>) -> Result<Value, String> {
    match default {
        Some(Value::Bool(_)) => raw
            .parse::<bool>()
            .map(Value::Bool)
            .map_err(|_| "expected true or false".into()),
        Some(Value::Number(n)) if n.is_i64() => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "expected an integer".into()),
        Some(Value::Number(_)) => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "expected a number".into()),
        Some(Value::Array(_) | Value::Object(_)) => {
            serde_json::from_str(raw).map_err(|e| format!("expected JSON: {e}"))
        }
        _ => Ok(Value::String(raw.to_string())),
    }
}

/// Resolve every declared variable's value.
pub fn resolve(
    stack: &Stack,
    cli: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Value>, StackErrors> {
    resolve_with(stack, cli, env, false)
}

/// [`resolve`]; with `missing_unknown`, a required variable without a
/// value is unknown instead of an error (what `validate` needs).
pub fn resolve_with(
    stack: &Stack,
    cli: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    missing_unknown: bool,
) -> Result<BTreeMap<String, Value>, StackErrors> {
    let mut errors = Vec::new();
    for (name, _) in cli {
        if !stack.variables.contains_key(name) {
            let e = StackError::new(None, format!("--var {name}: the stack declares no variable `{name}`"));
            errors.push(match did_you_mean(name, stack.variables.keys().map(String::as_str)) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help("declare it under [variables]"),
            });
        }
    }
    for (name, _, file) in &stack.values {
        if !stack.variables.contains_key(name) {
            let e = StackError::new(None, format!("{file}: the stack declares no variable `{name}`"));
            errors.push(match did_you_mean(name, stack.variables.keys().map(String::as_str)) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help("declare it under [variables]"),
            });
        }
    }
    let mut out = BTreeMap::new();
    for (name, var) in &stack.variables {
        let given = cli
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| (v.clone(), format!("--var {name}")))
            .or_else(|| env(&format!("SLIPWAY_VAR_{name}")).map(|v| (v, format!("SLIPWAY_VAR_{name}"))));
        // Below the command line and the environment: the variable files.
        let from_file = stack.values.iter().rev().find(|(n, _, _)| n == name);
        if let (None, Some((_, v, file))) = (&given, from_file) {
            let fits = match (&var.default, v) {
                (None, _) => true,
                (Some(d), v) => std::mem::discriminant(d) == std::mem::discriminant(v),
            };
            if fits {
                out.insert(name.clone(), v.clone());
            } else {
                errors.push(
                    StackError::new(
                        Some(stack.sources.locate(&var.span)),
                        format!("{file}: `{name}` has the wrong type"),
                    )
                    .with_help("the value must have the type of the variable's default"),
                );
            }
            continue;
        }
        match given {
            Some((raw, source)) => match typed(&raw, var.default.as_ref()) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(why) => errors.push(
                    StackError::new(Some(stack.sources.locate(&var.span)), format!("{source}: {why}"))
                        .with_help("the value must have the type of the variable's default"),
                ),
            },
            None => match &var.default {
                Some(d) => {
                    out.insert(name.clone(), d.clone());
                }
                None if missing_unknown => {
                    out.insert(name.clone(), crate::value::unknown());
                }
                None => errors.push(
                    StackError::new(
                        Some(stack.sources.locate(&var.span)),
                        format!("variable `{name}` has no value"),
                    )
                    .with_help(format!(
                        "pass --var {name}=VALUE or set SLIPWAY_VAR_{name}, or give it a default"
                    )),
                ),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(StackErrors(errors))
    }
}
