//! Live objects seen as slipway set them: the desired objects projected onto
//! the live ones (server defaults, status and fields others own drop out),
//! and object identities.

use serde_json::{Map, Value};

/// The desired objects projected onto the live one: only fields slipway sets.
pub fn project(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            let mut out = Map::new();
            for (k, dv) in d {
                if let Some(lv) = l.get(k) {
                    out.insert(k.clone(), project(dv, lv));
                }
            }
            Value::Object(out)
        }
        (Value::Array(d), Value::Array(l)) => {
            let keyed = !d.is_empty() && d.iter().all(|x| x.get("name").and_then(Value::as_str).is_some());
            if keyed {
                // Match list items by name; items others added (sidecars) are not ours.
                Value::Array(
                    d.iter()
                        .filter_map(|dv| {
                            // Identity: the name, and the kind where items have one (RBAC subjects).
                            let same = |lv: &&Value| {
                                ["name", "kind", "namespace"]
                                    .iter()
                                    .all(|k| dv.get(*k).is_none() || lv.get(*k) == dv.get(*k))
                            };
                            l.iter().find(same).map(|lv| project(dv, lv))
                        })
                        .collect(),
                )
            } else {
                Value::Array(d.iter().zip(l).map(|(dv, lv)| project(dv, lv)).collect())
            }
        }
        (_, l) => l.clone(),
    }
}

/// The state ID of the rendered objects: the first object's identity.
pub fn id_of(objs: &[Value]) -> String {
    objs.first()
        .map(|o| {
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
            match o.pointer("/metadata/namespace").and_then(Value::as_str) {
                Some(ns) => format!(
                    "{kind}/{ns}/{}",
                    o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
                ),
                None => format!(
                    "{kind}/{}",
                    o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
                ),
            }
        })
        .unwrap_or_default()
}

pub fn identity(o: &Value) -> (String, String, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    (
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}
