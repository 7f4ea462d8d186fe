//! The plan as a person reads it, in the shape Terraform users know.

use std::fmt::Write;

use serde_json::Value;

use super::{Action, Change, Plan};
use crate::value::{is_unknown, render};

/// The whole plan as text: drift notes, each change, and the summary line.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    for r in &plan.recovered {
        let _ = writeln!(out, "Recovered from an interrupted run: {r}");
    }
    if !plan.recovered.is_empty() {
        out.push('\n');
    }
    if !plan.drift.is_empty() {
        out.push_str("Note: objects have changed outside of slipway since the last apply:\n\n");
        for d in &plan.drift {
            if d.status == "deleted" {
                let _ = writeln!(out, "  # {} has been deleted", d.address);
            } else {
                let _ = writeln!(out, "  # {} has changed", d.address);
                for f in &d.fields {
                    let _ = writeln!(out, "      ~ {} = {} -> {}", f.field, render(&f.state, 6), render(&f.live, 6));
                }
            }
        }
        out.push('\n');
    }
    if !plan.has_changes() {
        out.push_str("No changes. Your infrastructure matches the configuration.\n");
        return out;
    }
    out.push_str("slipway will perform the following actions:\n\n");
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        render_change(&mut out, c);
        out.push('\n');
    }
    let s = plan.summary();
    let _ = writeln!(out, "Plan: {} to add, {} to change, {} to destroy.", s.add, s.change, s.destroy);
    let warnings: Vec<&Change> = plan.changes.iter().filter(|c| c.warning.is_some() && c.action == Action::Replace).collect();
    if !warnings.is_empty() {
        out.push_str("\n!!! This plan REPLACES:\n");
        for c in warnings {
            let _ = writeln!(out, "!!!   {}: {}", c.address, c.warning.as_deref().unwrap_or(""));
        }
    }
    out
}

fn header(c: &Change) -> String {
    let what = match c.action {
        Action::Create if c.gone => "will be created (its object was deleted outside of slipway)".to_string(),
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in place".to_string(),
        Action::Replace => {
            let fields: Vec<String> = c.replace_because.iter().map(|f| format!("`{f}`")).collect();
            let order = if c.create_before_destroy { ", new object first" } else { "" };
            format!("must be replaced ({} forces replacement{order})", fields.join(", "))
        }
        Action::Delete if c.deposed => "(deposed object) will be destroyed".to_string(),
        Action::Delete if c.gone => "will be removed from the state (already deleted outside of slipway)".to_string(),
        Action::Delete => "will be destroyed".to_string(),
        Action::NoOp => "is unchanged".to_string(),
    };
    let mut s = format!("  # {} {what}\n", c.address);
    if let Some(w) = &c.warning {
        s.push_str(&format!("  # !!! WARNING: {w}\n"));
    }
    s
}

fn render_change(out: &mut String, c: &Change) {
    out.push_str(&header(c));
    let name = c.address.split_once('.').map(|(_, n)| n).unwrap_or(&c.address);
    let sym = c.action.symbol();
    let _ = writeln!(out, "{sym:>3} {} \"{name}\" {{", c.kind);
    let empty = Value::Object(Default::default());
    let before = c.before_attributes.as_ref().unwrap_or(&empty);
    let after = c.after_attributes.as_ref().unwrap_or(&empty);
    let mut keys: Vec<&String> = match c.action {
        Action::Delete => before.as_object().map(|o| o.keys().collect()).unwrap_or_default(),
        _ => after.as_object().map(|o| o.keys().collect()).unwrap_or_default(),
    };
    if c.action == Action::Delete || c.action == Action::Replace {
        keys.extend(before.as_object().map(|o| o.keys().collect::<Vec<_>>()).unwrap_or_default());
    }
    keys.sort();
    keys.dedup();
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    for k in keys {
        let b = before.get(k.as_str());
        let a = after.get(k.as_str());
        let line = match c.action {
            Action::Create => a.filter(|v| !v.is_null()).map(|v| format!("      + {k:width$} = {}", render(v, 6))),
            Action::Delete => b.filter(|v| !v.is_null()).map(|v| format!("      - {k:width$} = {}", render(v, 6))),
            Action::Update | Action::Replace | Action::NoOp => {
                let (bv, av) = (b.unwrap_or(&Value::Null), a.unwrap_or(&Value::Null));
                let forces = if c.replace_because.iter().any(|f| f == k) { " # forces replacement" } else { "" };
                if bv == av && !is_unknown(av) {
                    (k == "id").then(|| format!("        {k:width$} = {}", render(bv, 6)))
                } else if bv.is_null() {
                    Some(format!("      + {k:width$} = {}{forces}", render(av, 6)))
                } else if av.is_null() {
                    Some(format!("      - {k:width$} = {}{forces}", render(bv, 6)))
                } else if let (Value::Object(bo), Value::Object(ao)) = (bv, av) {
                    Some(format!("      ~ {k:width$} = {{\n{}          }}{forces}", object_diff(bo, ao, 10)))
                } else {
                    Some(format!("      ~ {k:width$} = {} -> {}{forces}", render(bv, 6), render(av, 6)))
                }
            }
        };
        if let Some(l) = line {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out.push_str("    }\n");
}

/// The changed keys of two objects, one line each, nested objects recursed;
/// unchanged keys are counted, not shown.
fn object_diff(b: &serde_json::Map<String, Value>, a: &serde_json::Map<String, Value>, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut unchanged = 0;
    for k in keys {
        match (b.get(k.as_str()), a.get(k.as_str())) {
            (Some(bv), Some(av)) if bv == av && !is_unknown(av) => unchanged += 1,
            (Some(Value::Object(bo)), Some(Value::Object(ao))) => {
                let _ = writeln!(out, "{pad}~ {k:width$} = {{\n{}{pad}  }}", object_diff(bo, ao, indent + 4));
            }
            (Some(bv), Some(av)) => {
                let _ = writeln!(out, "{pad}~ {k:width$} = {} -> {}", render(bv, indent), render(av, indent));
            }
            (None, Some(av)) => {
                let _ = writeln!(out, "{pad}+ {k:width$} = {}", render(av, indent));
            }
            (Some(bv), None) => {
                let _ = writeln!(out, "{pad}- {k:width$} = {}", render(bv, indent));
            }
            (None, None) => {}
        }
    }
    if unchanged > 0 {
        let s = if unchanged == 1 { "" } else { "s" };
        let _ = writeln!(out, "{pad}  # ({unchanged} unchanged attribute{s} hidden)");
    }
    out
}
