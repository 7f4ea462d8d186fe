//! The plan as a person reads it, in the shape Terraform users know.

use std::fmt::Write;

use serde_json::Value;

use super::{Action, Change, Plan};
use crate::value::{is_unknown, render};

/// The whole plan as text: drift notes, each change, and the summary line.
/// A rendered plan for the terminal: colour on a terminal (green `+`, yellow
/// `~`, red `-`, as Terraform), none when piped or with NO_COLOR set.
pub fn for_terminal(text: &str) -> String {
    use std::io::IsTerminal;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if color {
        paint(text)
    } else {
        text.to_string()
    }
}

/// `text` with ANSI colours on the lines that add, change or remove.
pub fn paint(text: &str) -> String {
    const GREEN: &str = "\x1b[32m";
    const YELLOW: &str = "\x1b[33m";
    const RED: &str = "\x1b[31m";
    const BOLD: &str = "\x1b[1m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let t = body.trim_start();
        let colour = if t.starts_with("-/+") || t.starts_with("+/-") || t.starts_with("~ ") {
            Some(YELLOW)
        } else if t.starts_with("+ ") {
            Some(GREEN)
        } else if t.starts_with("- ") {
            Some(RED)
        } else if t.starts_with("# ") || t.starts_with("Plan:") || t.starts_with("Changes to Outputs:") {
            Some(BOLD)
        } else {
            None
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

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
                let mut rows = Vec::new();
                for f in &d.fields {
                    if f.state.is_object() || f.state.is_array() {
                        rows.extend(leaf_rows(&f.field, &f.state, &f.live, "", &[]));
                    } else {
                        let change = format!("{} -> {}", render(&f.state, 6), render(&f.live, 6));
                        rows.push(('~', f.field.clone(), change));
                    }
                }
                write_rows(&mut out, rows);
            }
        }
        out.push('\n');
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "Warning: {w}\n");
    }
    if !plan.has_changes() {
        out.push_str("No changes. Your infrastructure matches the configuration.\n");
        return out;
    }
    out.push_str("slipway will perform the following actions:\n\n");
    for (from, to) in &plan.moved {
        let _ = writeln!(
            out,
            "  # {from} has moved to {to} (the object stays; nothing is deleted or created)\n"
        );
    }
    // By address, as Terraform lists them (apply still goes in graph order).
    let mut shown: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    shown.sort_by(|a, b| a.address.cmp(&b.address).then(a.deposed.cmp(&b.deposed)));
    for c in shown {
        render_change(&mut out, c);
        out.push('\n');
    }
    let s = plan.summary();
    let _ = writeln!(
        out,
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    );
    if !plan.output_changes.is_empty() {
        out.push_str("\nChanges to Outputs:\n");
        let shown = |v: &Value, sensitive: bool| {
            if sensitive || crate::sensitive::any_secret(v) || crate::sensitive::is_hash(v) {
                "(sensitive value)".to_string()
            } else {
                render(v, 4)
            }
        };
        for o in &plan.output_changes {
            let line = match (&o.before, &o.after) {
                (None, Some(a)) => format!("  + {} = {}", o.name, shown(a, o.sensitive)),
                (Some(b), None) => format!("  - {} = {}", o.name, shown(b, o.sensitive)),
                (Some(b), Some(a)) => format!(
                    "  ~ {} = {} -> {}",
                    o.name,
                    shown(b, o.sensitive),
                    shown(a, o.sensitive)
                ),
                (None, None) => continue,
            };
            let _ = writeln!(out, "{line}");
        }
    }
    let warnings: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.warning.is_some() && c.action == Action::Replace)
        .collect();
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
        Action::Update if c.changed.is_empty() => match &c.pending {
            Some(p) => format!("is not ready ({p}): apply waits for it"),
            None => "will be updated in place".to_string(),
        },
        Action::Update => "will be updated in place".to_string(),
        Action::Replace if c.replace_because.iter().any(|f| f.starts_with("tainted: ")) => {
            let why = c
                .replace_because
                .iter()
                .find(|f| f.starts_with("tainted: "))
                .cloned()
                .unwrap_or_default();
            format!("is {why}, so it must be replaced (old object first)")
        }
        Action::Replace if c.replace_because.iter().any(|f| f == "--replace") => {
            "will be replaced, as requested (--replace; old object first)".to_string()
        }
        Action::Replace => {
            let fields: Vec<String> = c.replace_because.iter().map(|f| format!("`{f}`")).collect();
            let order = if c.create_before_destroy {
                ", new object first"
            } else {
                ""
            };
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
    let name = crate::stack::split_address(&c.address)
        .map(|(_, _, n)| n)
        .unwrap_or(&c.address);
    // An instance `kind.name["key"]`: the header above names the key, the
    // block its resource (as Terraform shows it).
    let name = name.split_once('[').map(|(base, _)| base).unwrap_or(name);
    let sym = c.action.symbol();
    let _ = writeln!(out, "{sym:>3} {} \"{name}\" {{", c.kind);
    let empty = Value::Object(Default::default());
    let before = c.before_attributes.as_ref().unwrap_or(&empty);
    let after = c.after_attributes.as_ref().unwrap_or(&empty);
    let mut keys: Vec<&String> = match c.action {
        Action::Delete => before.as_object().map(|o| o.keys().collect()).unwrap_or_default(),
        _ => after.as_object().map(|o| o.keys().collect()).unwrap_or_default(),
    };
    if c.action != Action::Create {
        keys.extend(
            before
                .as_object()
                .map(|o| o.keys().collect::<Vec<_>>())
                .unwrap_or_default(),
        );
    }
    keys.sort();
    keys.dedup();
    let mut rows: Vec<(char, String, String)> = Vec::new();
    for k in keys {
        let hide = |v: Option<&Value>| {
            v.filter(|v| !v.is_null())
                .map(|_| Value::String("(sensitive value)".into()))
        };
        let secret = c.sensitive.iter().any(|s| s == k);
        let (hb, ha) = (hide(before.get(k.as_str())), hide(after.get(k.as_str())));
        let (b, a) = if secret {
            let changed = before.get(k.as_str()) != after.get(k.as_str());
            match (hb, ha, changed) {
                (Some(_), Some(_), true) => (
                    Some(Value::String("(sensitive value)".into())),
                    Some(Value::String("(sensitive value, changed)".into())),
                ),
                (x, y, _) => (x, y),
            }
        } else {
            (before.get(k.as_str()).cloned(), after.get(k.as_str()).cloned())
        };
        let (b, a) = (b.as_ref(), a.as_ref());
        match c.action {
            Action::Create => {
                if let Some(v) = a.filter(|v| !v.is_null()) {
                    rows.push(('+', k.clone(), render(v, 6)));
                }
            }
            Action::Delete => {
                if let Some(v) = b.filter(|v| !v.is_null()) {
                    rows.push(('-', k.clone(), render(v, 6)));
                }
            }
            Action::Update | Action::Replace | Action::NoOp => {
                let (bv, av) = (b.unwrap_or(&Value::Null), a.unwrap_or(&Value::Null));
                let under = |f: &String| k == f || k.starts_with(&format!("{f}.")) || k.starts_with(&format!("{f}["));
                let forces = if c.replace_because.iter().any(under) {
                    " # forces replacement"
                } else {
                    ""
                };
                if bv == av && !is_unknown(av) {
                    if k == "id" {
                        rows.push((' ', k.clone(), render(bv, 6)));
                    }
                } else if bv.is_null() {
                    rows.push(('+', k.clone(), format!("{}{forces}", render(av, 6))));
                } else if av.is_null() {
                    rows.push(('-', k.clone(), format!("{}{forces}", render(bv, 6))));
                } else if bv.is_object() || bv.is_array() {
                    rows.extend(leaf_rows(k, bv, av, forces, &c.replace_because));
                } else {
                    rows.push((
                        '~',
                        k.clone(),
                        format!("{} -> {}{forces}", render(bv, 6), render(av, 6)),
                    ));
                }
            }
        }
    }
    write_rows(out, rows);
    out.push_str("    }\n");
}

/// Every leaf that differs between two nested values, one line each with
/// its full path (`spec.template.spec.containers[0].image`), so a deep
/// change reads in one line instead of two whole documents.
pub fn leaf_diffs(path: &str, b: &Value, a: &Value, out: &mut Vec<(String, Option<Value>, Option<Value>)>) {
    if b == a && !is_unknown(a) {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (b, a) {
        (Value::Object(bo), Value::Object(ao)) => {
            for (k, bv) in bo {
                match ao.get(k) {
                    Some(av) => leaf_diffs(&join(k), bv, av, out),
                    None => out.push((join(k), Some(bv.clone()), None)),
                }
            }
            for (k, av) in ao.iter().filter(|(k, _)| !bo.contains_key(*k)) {
                out.push((join(k), None, Some(av.clone())));
            }
        }
        // Items with a `name` (containers, ports, env) are matched by it.
        (Value::Array(ba), Value::Array(aa)) if item_names(ba).is_some() && item_names(aa).is_some() => {
            // What goes first, then what changes or comes, as Terraform lists them.
            let (bn, an) = (item_names(ba).unwrap_or_default(), item_names(aa).unwrap_or_default());
            for (j, (name, bv)) in bn.iter().zip(ba).enumerate() {
                if !an.contains(name) {
                    out.push((format!("{path}[{j}]"), Some(bv.clone()), None));
                }
            }
            for (i, (name, av)) in an.iter().zip(aa).enumerate() {
                match bn.iter().position(|n| n == name) {
                    Some(j) => leaf_diffs(&format!("{path}[{i}]"), &ba[j], av, out),
                    None => out.push((format!("{path}[{i}]"), None, Some(av.clone()))),
                }
            }
        }
        (Value::Array(ba), Value::Array(aa)) if ba.len() == aa.len() => {
            for (i, (bv, av)) in ba.iter().zip(aa).enumerate() {
                leaf_diffs(&format!("{path}[{i}]"), bv, av, out);
            }
        }
        // Lists of other items (rules, subnets): one line per item added
        // or removed, the items both have left out.
        (Value::Array(ba), Value::Array(aa)) if !ba.iter().chain(aa).any(crate::value::contains_unknown) => {
            let mut unmatched: Vec<Option<&Value>> = ba.iter().map(Some).collect();
            let mut added = Vec::new();
            for (i, av) in aa.iter().enumerate() {
                match unmatched.iter().position(|b| *b == Some(av)) {
                    Some(j) => unmatched[j] = None,
                    None => added.push((format!("{path}[{i}]"), None, Some(av.clone()))),
                }
            }
            // Removed items first, then added ones.
            for (j, bv) in unmatched.iter().enumerate() {
                if let Some(bv) = bv {
                    out.push((format!("{path}[{j}]"), Some((*bv).clone()), None));
                }
            }
            out.extend(added);
        }
        _ => out.push((path.to_string(), Some(b.clone()), Some(a.clone()))),
    }
}

/// The `name` of every item, when each item is a table with a distinct one.
fn item_names(items: &[Value]) -> Option<Vec<String>> {
    let names: Vec<String> = items
        .iter()
        .map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect::<Option<_>>()?;
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    (sorted.len() == names.len() && !names.is_empty()).then_some(names)
}

/// Rows of (symbol, path, what follows "="), aligned on "=" as Terraform
/// aligns a block, nested paths included. Very long paths are not padded
/// to, so one deep path does not push every value far to the right.
fn write_rows(out: &mut String, rows: Vec<(char, String, String)>) {
    const MAX_WIDTH: usize = 40;
    let width = rows
        .iter()
        .map(|(_, p, _)| p.len())
        .filter(|w| *w <= MAX_WIDTH)
        .max()
        .unwrap_or(0);
    for (sym, path, rest) in rows {
        let _ = writeln!(out, "      {sym} {path:width$} = {rest}");
    }
}

fn leaf_rows(field: &str, b: &Value, a: &Value, forces: &str, because: &[String]) -> Vec<(char, String, String)> {
    let mut diffs = Vec::new();
    leaf_diffs(field, b, a, &mut diffs);
    diffs
        .into_iter()
        .filter_map(|(p, bv, av)| {
            // A path inside a field that forces the replacement (`manifests[0].spec.selector`).
            let inside = because
                .iter()
                .any(|f| p.starts_with(&format!("{f}.")) || p.starts_with(&format!("{f}[")));
            let forces = if inside { " # forces replacement" } else { forces };
            match (bv, av) {
                (Some(bv), Some(av)) => Some(('~', p, format!("{} -> {}{forces}", render(&bv, 8), render(&av, 8)))),
                (None, Some(av)) => Some(('+', p, format!("{}{forces}", render(&av, 8)))),
                (Some(bv), None) => Some(('-', p, format!("{}{forces}", render(&bv, 8)))),
                (None, None) => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod paint_tests {
    #[test]
    fn adds_changes_and_removals_are_coloured_and_nothing_else() {
        let text =
            "  # vpc.main will be created\n  + vpc \"main\" {\n      ~ tags = {} -> {}\n      - old = 1\n    }\n";
        let p = super::paint(text);
        assert!(p.contains("\x1b[32m  + vpc \"main\" {\x1b[0m\n"), "{p:?}");
        assert!(p.contains("\x1b[33m      ~ tags"), "{p:?}");
        assert!(p.contains("\x1b[31m      - old = 1\x1b[0m"), "{p:?}");
        assert!(p.contains("\n    }\n"), "{p:?}");
        assert_eq!(
            p.replace("\x1b[32m", "")
                .replace("\x1b[33m", "")
                .replace("\x1b[31m", "")
                .replace("\x1b[1m", "")
                .replace("\x1b[0m", ""),
            text
        );
    }
}

#[cfg(test)]
mod list_diff_tests {
    use serde_json::json;

    #[test]
    fn one_added_item_is_one_line_and_named_items_are_matched_by_name() {
        let rule = |p: u16| json!({ "protocol": "tcp", "port": p, "cidr": "0.0.0.0/0" });
        let mut out = Vec::new();
        super::leaf_diffs(
            "ingress",
            &json!([rule(443), rule(80)]),
            &json!([rule(443), rule(80), rule(8080)]),
            &mut out,
        );
        assert_eq!(out, vec![("ingress[2]".to_string(), None, Some(rule(8080)))]);
        let c = |n: &str, img: &str| json!({ "name": n, "image": img });
        let mut out = Vec::new();
        super::leaf_diffs(
            "containers",
            &json!([c("web", "a:1")]),
            &json!([c("sidecar", "s:1"), c("web", "a:2")]),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("containers[0]".to_string(), None, Some(c("sidecar", "s:1"))),
                (
                    "containers[1].image".to_string(),
                    Some(json!("a:1")),
                    Some(json!("a:2"))
                ),
            ]
        );
    }

    #[test]
    fn a_block_aligns_on_equals_nested_paths_included_and_removals_come_first() {
        let mut rows = vec![(' ', "id".to_string(), "\"x\"".to_string())];
        rows.extend(super::leaf_rows(
            "input",
            &json!({"name": "a", "spec": {"template": {"image": "n:1"}}, "tags": ["a", "b"]}),
            &json!({"name": "b", "spec": {"template": {"image": "n:2"}}, "tags": ["a", "c", "d"]}),
            "",
            &[],
        ));
        let mut out = String::new();
        super::write_rows(&mut out, rows);
        assert_eq!(
            out,
            "        id                        = \"x\"\n\
             \x20     ~ input.name                = \"a\" -> \"b\"\n\
             \x20     ~ input.spec.template.image = \"n:1\" -> \"n:2\"\n\
             \x20     - input.tags[1]             = \"b\"\n\
             \x20     + input.tags[1]             = \"c\"\n\
             \x20     + input.tags[2]             = \"d\"\n"
        );
    }
}
