//! What someone else added to an object slipway applies: the fields that
//! another field manager owns (the live object's `metadata.managedFields`)
//! where slipway's object has nothing: a sidecar container, `hostNetwork`,
//! an extra volume. Server defaults have no manager, so they never count;
//! neither do slipway's own managers, writes through a subresource (status,
//! scale: controllers and the HPA), the controllers that write beside slipway
//! (kube-controller-manager's revision annotation), or the object's own
//! top-level `metadata` (other tools annotate and label objects).
//!
//! Each addition is shown in the projected live object (so plans and drift
//! show it) and removed by apply with a JSON patch that first tests the
//! item's keys, so a list that changed meanwhile fails instead of losing
//! the wrong item.

use serde_json::{json, Map, Value};

use super::client::FIELD_MANAGER;
use super::kind::REPLICAS_HANDOFF;

/// Managers whose writes beside slipway are not drift.
const CONTROLLERS: &[&str] = &["kube-controller-manager", "kube-scheduler", "kubelet"];

/// One step of a fieldsV1 path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    /// A list-map item, by its key fields.
    Item(Map<String, Value>),
    /// A set member.
    Member(Value),
}

/// A field or list item another manager added.
#[derive(Debug, Clone, PartialEq)]
pub struct Addition {
    segs: Vec<Seg>,
    /// Who added it.
    pub manager: String,
    /// Where it is in the live object (a JSON pointer).
    pub pointer: String,
    /// The live value.
    pub value: Value,
    /// JSON-patch tests that must hold before removing it (the keys of the
    /// list items on its way).
    tests: Vec<(String, Value)>,
}

/// The additions in `live` that `desired` (what slipway applies) does not have.
pub fn additions(desired: &Value, live: &Value) -> Vec<Addition> {
    // A Secret's stringData is stored as data: those keys are slipway's.
    let mut desired = desired.clone();
    if let Some(Value::Object(plain)) = desired.get("stringData").cloned() {
        let data = desired
            .as_object_mut()
            .map(|o| o.entry("data").or_insert_with(|| json!({})));
        if let Some(Value::Object(data)) = data {
            for k in plain.keys() {
                data.entry(k.clone()).or_insert(Value::Null);
            }
        }
    }
    let desired = &desired;
    let mut out: Vec<Addition> = Vec::new();
    for entry in live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let manager = entry.get("manager").and_then(Value::as_str).unwrap_or_default();
        let sub = entry.get("subresource").and_then(Value::as_str).unwrap_or_default();
        if !sub.is_empty() || [FIELD_MANAGER, REPLICAS_HANDOFF].contains(&manager) || CONTROLLERS.contains(&manager) {
            continue;
        }
        let mut owned = Vec::new();
        if let Some(tree) = entry.get("fieldsV1") {
            paths(tree, &mut Vec::new(), &mut owned);
        }
        for path in owned {
            if matches!(path.first(), Some(Seg::Field(f)) if f == "metadata" || f == "status") {
                continue;
            }
            // The outermost step that slipway's object lacks is what was added.
            let Some(n) = (1..=path.len()).find(|&n| find(desired, &path[..n]).is_none()) else {
                continue;
            };
            let segs = path[..n].to_vec();
            if out.iter().any(|a| segs.starts_with(&a.segs)) {
                continue;
            }
            let Some((pointer, tests, value)) = locate(live, &segs) else {
                continue;
            };
            out.retain(|a| !a.segs.starts_with(&segs));
            out.push(Addition {
                segs,
                manager: manager.to_string(),
                pointer,
                value,
                tests,
            });
        }
    }
    out
}

/// `projected` (the live object seen as slipway set it) with the additions
/// put back where they are live, so comparing it with what slipway wants
/// shows them.
pub fn show(projected: &mut Value, adds: &[Addition]) {
    for a in adds {
        let Some((last, parents)) = a.segs.split_last() else {
            continue;
        };
        let Some(node) = walk_mut(projected, parents) else {
            continue;
        };
        match (last, node) {
            (Seg::Field(f), Value::Object(m)) => {
                m.insert(f.clone(), a.value.clone());
            }
            (Seg::Item(_) | Seg::Member(_), Value::Array(items)) => items.push(a.value.clone()),
            (Seg::Item(_) | Seg::Member(_), node @ Value::Null) => *node = json!([a.value.clone()]),
            _ => {}
        }
    }
}

/// The node at `segs` in the projected object, making missing maps on the way.
fn walk_mut<'a>(mut node: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    for s in segs {
        node = match (s, node) {
            (Seg::Field(f), Value::Object(m)) => m.entry(f.clone()).or_insert_with(|| json!({})),
            (Seg::Item(k), Value::Array(items)) => items.iter_mut().find(|i| item_matches(i, k))?,
            _ => return None,
        };
    }
    Some(node)
}

/// The JSON patch that removes the additions (deepest list items last, so
/// earlier indices stay right), each guarded by tests of the keys on its way.
pub fn removal(adds: &[Addition]) -> Value {
    let mut sorted: Vec<&Addition> = adds.iter().collect();
    // Within one list, the highest index first.
    sorted.sort_by_key(|a| std::cmp::Reverse(index_order(&a.pointer)));
    let mut ops = Vec::new();
    for a in sorted {
        for (path, value) in &a.tests {
            ops.push(json!({"op": "test", "path": path, "value": value}));
        }
        ops.push(json!({"op": "remove", "path": a.pointer}));
    }
    Value::Array(ops)
}

/// A sort key: the pointer's segments with list indices as numbers.
fn index_order(pointer: &str) -> Vec<(u8, usize, String)> {
    pointer
        .split('/')
        .map(|s| match s.parse::<usize>() {
            Ok(i) => (1, i, String::new()),
            Err(_) => (0, 0, s.to_string()),
        })
        .collect()
}

/// One line per addition, for plans and errors: `spec.template.spec.hostNetwork (added by kubectl-edit)`.
pub fn describe(a: &Addition) -> String {
    let mut out = String::new();
    for s in &a.segs {
        match s {
            Seg::Field(f) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(f);
            }
            Seg::Item(k) => {
                let keys: Vec<String> = k.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", keys.join(",")));
            }
            Seg::Member(v) => out.push_str(&format!("[{v}]")),
        }
    }
    format!("{out} (added by {})", a.manager)
}

/// Every owned path of a fieldsV1 tree.
fn paths(tree: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    let Some(m) = tree.as_object() else { return };
    if m.is_empty() {
        out.push(prefix.clone());
        return;
    }
    for (k, child) in m {
        if k == "." {
            out.push(prefix.clone());
            continue;
        }
        let seg = if let Some(f) = k.strip_prefix("f:") {
            Seg::Field(f.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            match serde_json::from_str(key) {
                Ok(Value::Object(key)) => Seg::Item(key),
                _ => continue,
            }
        } else if let Some(v) = k.strip_prefix("v:") {
            match serde_json::from_str(v) {
                Ok(v) => Seg::Member(v),
                _ => continue,
            }
        } else {
            continue; // `i:` (by index) is not used by built-in kinds
        };
        prefix.push(seg);
        paths(child, prefix, out);
        prefix.pop();
    }
}

fn key_of(item: &Value, key: &str) -> Value {
    match item.get(key) {
        None if key == "protocol" => Value::String("TCP".into()),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

fn item_matches(item: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, v)| &key_of(item, k) == v)
}

/// The node at `segs`, if there is one.
fn find<'a>(v: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    let mut node = v;
    for s in segs {
        node = match s {
            Seg::Field(f) => node.get(f)?,
            Seg::Item(k) => node.as_array()?.iter().find(|i| item_matches(i, k))?,
            Seg::Member(m) => node.as_array()?.iter().find(|i| *i == m)?,
        };
    }
    Some(node)
}

/// A JSON pointer, the key tests on the way to it, and the value there.
type Located = (String, Vec<(String, Value)>, Value);

/// The JSON pointer, the key tests on the way, and the value at `segs`.
fn locate(v: &Value, segs: &[Seg]) -> Option<Located> {
    let mut node = v;
    let mut pointer = String::new();
    let mut tests = Vec::new();
    for s in segs {
        match s {
            Seg::Field(f) => {
                node = node.get(f)?;
                pointer.push('/');
                pointer.push_str(&f.replace('~', "~0").replace('/', "~1"));
            }
            Seg::Item(k) => {
                let (i, item) = node.as_array()?.iter().enumerate().find(|(_, i)| item_matches(i, k))?;
                pointer.push_str(&format!("/{i}"));
                for key in k.keys() {
                    if let Some(kv) = item.get(key) {
                        tests.push((format!("{pointer}/{key}"), kv.clone()));
                    }
                }
                node = item;
            }
            Seg::Member(m) => {
                let (i, item) = node.as_array()?.iter().enumerate().find(|(_, i)| *i == m)?;
                pointer.push_str(&format!("/{i}"));
                tests.push((pointer.clone(), m.clone()));
                node = item;
            }
        }
    }
    Some((pointer, tests, node.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Value {
        json!({
            "metadata": {"managedFields": [
                {"manager": "slipway", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
                {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:metadata": {"f:annotations": {"f:note": {}}},
                    "f:spec": {"f:template": {"f:spec": {"f:hostNetwork": {}, "f:containers": {"k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}}
            ], "annotations": {"note": "x"}},
            "spec": {"template": {"spec": {"hostNetwork": true, "dnsPolicy": "ClusterFirst", "containers": [
                {"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "evil"}]}}},
            "status": {"replicas": 2}
        })
    }

    fn desired() -> Value {
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}}})
    }

    #[test]
    fn a_sidecar_and_host_network_added_by_another_manager_are_found_and_defaults_are_not() {
        let adds = additions(&desired(), &live());
        let mut lines: Vec<String> = adds.iter().map(describe).collect();
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "spec.template.spec.containers[name=\"sidecar\"] (added by kubectl-edit)",
                "spec.template.spec.hostNetwork (added by kubectl-edit)",
            ]
        );
        let mut projected = desired();
        show(&mut projected, &adds);
        assert_eq!(projected["spec"]["template"]["spec"]["containers"][1]["image"], "evil");
        assert_eq!(projected["spec"]["template"]["spec"]["hostNetwork"], true);
        assert!(
            projected["spec"]["template"]["spec"].get("dnsPolicy").is_none(),
            "a default is no addition"
        );
    }

    #[test]
    fn the_removal_tests_the_item_keys_before_removing() {
        let patch = removal(&additions(&desired(), &live()));
        let ops = patch.as_array().unwrap();
        assert!(
            ops.contains(&json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "sidecar"}))
        );
        assert!(ops.contains(&json!({"op": "remove", "path": "/spec/template/spec/containers/1"})));
        assert!(ops.contains(&json!({"op": "remove", "path": "/spec/template/spec/hostNetwork"})));
        // Nothing slipway set is touched.
        assert!(!ops.iter().any(|o| o["path"] == "/spec/template/spec/containers/0"));
    }

    #[test]
    fn fields_slipway_also_sets_are_not_additions() {
        let mut want = desired();
        want["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
        let adds = additions(&want, &live());
        assert_eq!(adds.len(), 1, "{adds:?}");
    }
}
