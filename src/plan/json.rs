//! The plan as JSON for machines (`slipway plan --json`). The format is
//! documented in README.md and only grows: fields are added, never changed.
//! Strings holding a sensitive value appear as their keyed hash.

use serde_json::{json, Value};

use super::{Action, Plan};
use crate::sensitive::hide;
use crate::value::split_unknowns;

/// Version of the JSON plan document.
pub const JSON_FORMAT_VERSION: &str = "1";

pub fn to_json(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            let (after, unknown) = match &c.after_attributes {
                Some(a) if c.action != Action::Delete => {
                    let (v, u) = split_unknowns(&hide(a));
                    (Some(v), u)
                }
                _ => (None, vec![]),
            };
            json!({
                "address": c.address,
                "kind": c.kind,
                "action": c.action,
                "before": if c.action == Action::Create { None } else { c.before_attributes.as_ref().map(hide) },
                "after": after,
                "after_unknown": unknown,
                "changed": c.changed,
                "replace_because": c.replace_because,
                "create_before_destroy": c.create_before_destroy,
                "deposed": c.deposed,
                "gone": c.gone,
                "warning": c.warning,
                "pending": c.pending,
            })
        })
        .collect();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "stack": plan.stack,
        "state": {
            "path": plan.state_path,
            "lineage": plan.state_lineage,
            "serial": plan.state_serial,
        },
        "destroy": plan.destroy,
        "resource_changes": changes,
        "output_changes": plan.output_changes.iter().map(|o| {
            let show = |v: &Option<Value>| match v {
                Some(_) if o.sensitive => Some(json!("(sensitive value)")),
                Some(v) => Some(hide(v)),
                None => None,
            };
            let action = match (&o.before, &o.after) {
                (None, _) => "create",
                (_, None) => "delete",
                _ => "update",
            };
            json!({ "name": o.name, "action": action, "before": show(&o.before), "after": show(&o.after), "sensitive": o.sensitive })
        }).collect::<Vec<_>>(),
        "drift": plan.drift,
        "recovered": plan.recovered,
        "warnings": plan.warnings,
        "summary": plan.summary(),
    })
}
