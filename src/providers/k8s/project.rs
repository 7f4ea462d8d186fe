//! Live objects seen as slipway set them: the desired objects projected onto
//! the live ones (server defaults, status and fields others own drop out),
//! and object identities.
//!
//! Lists and maps follow the official schema's merge semantics, as the
//! apiserver's server-side apply does: a list with `x-kubernetes-list-map-keys`
//! (containers by `name`, container ports by `containerPort`+`protocol`,
//! volume mounts by `mountPath`, ...) is matched item by item on those keys;
//! every other list is atomic and compared whole, so an item someone appended
//! (an RBAC verb, rule or subject, a container arg) shows; atomic maps (a
//! Service's `selector`, `matchLabels`) are compared whole too. Values the
//! apiserver normalizes compare by meaning: quantities by value (`0.5` is
//! `500m`), an omitted zero value equals an empty one, and a Secret's
//! `stringData` is read back from its `data`.

use base64::Engine;
use serde_json::{Map, Value};

/// The desired object projected onto the live one: only fields slipway sets,
/// plus what was added inside the lists and maps that are atomic.
pub fn project(desired: &Value, live: &Value) -> Value {
    let kind = desired.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut out = at(desired, live, &mut Vec::new(), kind);
    if kind == "Secret" {
        secret_string_data(desired, live, &mut out);
    }
    out
}

/// The keys that identify an item of the list at `path` (the list's own key
/// last), or None for an atomic list.
fn list_map_keys(path: &[String], kind: &str) -> Option<&'static [&'static str]> {
    let last = path.last().map(String::as_str).unwrap_or_default();
    let parent = path.iter().rev().nth(1).map(String::as_str).unwrap_or_default();
    match last {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" => Some(&["name"]),
        // A pod's pull secrets are keyed; a ServiceAccount's (top level) are atomic.
        "imagePullSecrets" if path.len() > 1 => Some(&["name"]),
        "ports" if parent == "[]" => Some(&["containerPort", "protocol"]),
        "ports" if kind == "Service" && path.len() == 2 => Some(&["port", "protocol"]),
        "volumeMounts" => Some(&["mountPath"]),
        "volumeDevices" => Some(&["devicePath"]),
        "hostAliases" => Some(&["ip"]),
        "topologySpreadConstraints" => Some(&["topologyKey", "whenUnsatisfiable"]),
        _ => None,
    }
}

/// A map compared whole: a Service's selector, a label selector's matchLabels.
fn atomic_map(path: &[String], kind: &str) -> bool {
    let last = path.last().map(String::as_str).unwrap_or_default();
    last == "matchLabels" || (kind == "Service" && path.len() == 2 && path[0] == "spec" && last == "selector")
}

/// A value the apiserver may leave out when it is the zero of its type.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Does the value at `path` hold Kubernetes quantities?
fn is_quantity(path: &[String]) -> bool {
    let n = path.len();
    let parent = |i: usize| path.get(n.wrapping_sub(i)).map(String::as_str).unwrap_or_default();
    matches!(parent(2), "requests" | "limits" | "capacity" | "hard")
        || (parent(2) == "target" && matches!(parent(1), "averageValue" | "value"))
}

fn at(desired: &Value, live: &Value, path: &mut Vec<String>, kind: &str) -> Value {
    match (desired, live) {
        (Value::Object(_), Value::Object(l)) if atomic_map(path, kind) => Value::Object(l.clone()),
        (Value::Object(d), Value::Object(l)) => {
            let mut out = Map::new();
            for (k, dv) in d {
                path.push(k.clone());
                match l.get(k) {
                    Some(lv) => {
                        out.insert(k.clone(), at(dv, lv, path, kind));
                    }
                    // Left out by the apiserver because it is empty (omitempty).
                    None if is_zero(dv) => {
                        out.insert(k.clone(), dv.clone());
                    }
                    None => {}
                }
                path.pop();
            }
            Value::Object(out)
        }
        (Value::Array(d), Value::Array(l)) => {
            let keys = list_map_keys(path, kind);
            path.push("[]".into());
            let out = match keys {
                Some(keys) => d
                    .iter()
                    .filter_map(|dv| {
                        let same = |lv: &&Value| keys.iter().all(|k| key_of(dv, k) == key_of(lv, k));
                        l.iter().find(same).map(|lv| at(dv, lv, path, kind))
                    })
                    .collect(),
                // Atomic: item by item where both have one, then whatever else
                // the live list holds (someone added it; an apply replaces it).
                None => l
                    .iter()
                    .enumerate()
                    .map(|(i, lv)| match d.get(i) {
                        Some(dv) => at(dv, lv, path, kind),
                        None => lv.clone(),
                    })
                    .collect(),
            };
            path.pop();
            Value::Array(out)
        }
        (Value::String(ds), lv) if is_quantity(path) => match (quantity(ds), lv) {
            (Some(a), Value::String(ls)) if quantity(ls) == Some(a) => desired.clone(),
            (Some(a), Value::Number(n)) if n.as_f64().is_some_and(|b| same_value(a, b)) => desired.clone(),
            _ => lv.clone(),
        },
        (_, l) => l.clone(),
    }
}

/// A list item's key field; a missing `protocol` is TCP, as the apiserver sets it.
fn key_of(item: &Value, key: &str) -> Value {
    match item.get(key) {
        None if key == "protocol" => Value::String("TCP".into()),
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// The value of a Kubernetes quantity (`500m`, `1.5Gi`, `1e3`), if it is one.
pub fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num == "." {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// A Secret's `stringData` as the apiserver keeps it: merged into `data`
/// (base64) and never returned. Read back from `data` for the keys slipway set.
fn secret_string_data(desired: &Value, live: &Value, out: &mut Value) {
    let Some(want) = desired.get("stringData").and_then(Value::as_object) else {
        return;
    };
    let data = live.get("data").and_then(Value::as_object);
    let mut back = Map::new();
    for k in want.keys() {
        let text = data
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok());
        if let Some(t) = text {
            back.insert(k.clone(), Value::String(t));
        }
    }
    out["stringData"] = Value::Object(back);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn appended_rbac_verbs_rules_and_subjects_show() {
        let want = json!({"kind": "Role", "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]});
        let live = json!({"kind": "Role", "metadata": {"uid": "1"}, "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch", "delete"]},
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let p = project(&want, &live);
        assert_eq!(p["rules"][0]["verbs"], json!(["get", "patch", "delete"]));
        assert_eq!(p["rules"].as_array().unwrap().len(), 2, "the added rule shows: {p}");
        let want = json!({"kind": "RoleBinding", "subjects": [{"kind": "Group", "name": "ci"}]});
        let live = json!({"kind": "RoleBinding", "subjects": [
            {"kind": "Group", "name": "ci", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]});
        let p = project(&want, &live);
        assert_eq!(
            p["subjects"][0],
            json!({"kind": "Group", "name": "ci"}),
            "defaults inside an item drop out"
        );
        assert_eq!(p["subjects"][1]["name"], "system:authenticated");
    }

    #[test]
    fn a_service_selector_is_compared_whole_and_args_show_additions() {
        let want = json!({"kind": "Service", "spec": {"selector": {"app": "web"}}});
        let live =
            json!({"kind": "Service", "spec": {"selector": {"app": "web", "tier": "debug"}, "clusterIP": "10.0.0.1"}});
        assert_eq!(
            project(&want, &live),
            json!({"kind": "Service", "spec": {"selector": {"app": "web", "tier": "debug"}}})
        );
        let want = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["serve"]}]}}}});
        let live = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "web", "args": ["serve", "--debug"], "imagePullPolicy": "IfNotPresent"}]}}}});
        assert_eq!(
            project(&want, &live)["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["serve", "--debug"])
        );
    }

    #[test]
    fn quantities_compare_by_value_and_omitted_zero_values_match() {
        let want = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "web",
            "env": [{"name": "FOO", "value": ""}],
            "resources": {"requests": {"cpu": "0.5", "memory": "1.5Gi"}, "limits": {"cpu": "1000m"}}}]}}}});
        let live = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "web",
            "env": [{"name": "FOO"}],
            "resources": {"requests": {"cpu": "500m", "memory": "1536Mi"}, "limits": {"cpu": "1"}}}]}}}});
        assert_eq!(project(&want, &live), want);
        let mut bigger = live.clone();
        bigger["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("2");
        assert_eq!(
            project(&want, &bigger)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "2"
        );
        assert_eq!(quantity("1.5Gi"), quantity("1536Mi"));
        assert_eq!(quantity("lots"), None);
    }

    #[test]
    fn volume_mounts_are_keyed_by_mount_path_and_ports_by_port_and_protocol() {
        let want = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "web",
            "volumeMounts": [{"name": "conf", "mountPath": "/etc/a.conf"}, {"name": "conf", "mountPath": "/etc/b.conf"}],
            "ports": [{"containerPort": 80}]}]}}}});
        let live = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "web",
            "volumeMounts": [{"name": "conf", "mountPath": "/etc/a.conf"}, {"name": "conf", "mountPath": "/etc/b.conf"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
        assert_eq!(project(&want, &live), want);
    }

    #[test]
    fn immutable_fields_that_change_are_named() {
        let dep = |app: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"},
                   "spec": {"selector": {"matchLabels": {"app": app}}, "replicas": 1}})
        };
        let binding = |role: &str| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "a"},
                   "roleRef": {"kind": "Role", "name": role}})
        };
        assert_eq!(
            immutable_changes(&[dep("web"), binding("r1")], &[binding("r2"), dep("web2")]),
            ["manifests[0].roleRef", "manifests[1].spec.selector"]
        );
        assert!(immutable_changes(&[dep("web")], &[dep("web")]).is_empty());
        let mut more = dep("web");
        more["spec"]["replicas"] = json!(3);
        assert!(immutable_changes(&[dep("web")], &[more]).is_empty());
    }

    #[test]
    fn a_secrets_string_data_is_read_back_from_its_data() {
        let want = json!({"kind": "Secret", "stringData": {"token": "abc"}});
        let live = json!({"kind": "Secret", "data": {"token": "YWJj"}, "type": "Opaque"});
        assert_eq!(project(&want, &live), want);
        let live = json!({"kind": "Secret", "data": {"token": "eHl6"}});
        assert_eq!(project(&want, &live)["stringData"]["token"], "xyz");
    }
}

/// Fields the apiserver refuses to change (422 "field is immutable"), per
/// kind, as JSON pointers.
fn immutable_paths(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => &["/spec/selector"],
        "RoleBinding" | "ClusterRoleBinding" => &["/roleRef"],
        "Secret" => &["/type"],
        "Service" => &["/spec/clusterIP"],
        "Job" => &["/spec/selector", "/spec/template"],
        _ => &[],
    }
}

/// The immutable fields that differ between the objects as they were
/// applied (`prior`) and as they are now rendered, as `manifests[i].path`
/// of the new list: such an object can only be replaced.
pub fn immutable_changes(prior: &[Value], desired: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in desired.iter().enumerate() {
        let Some(p) = prior.iter().find(|p| p.is_object() && identity(p) == identity(d)) else {
            continue;
        };
        let kind = d.get("kind").and_then(Value::as_str).unwrap_or_default();
        for path in immutable_paths(kind) {
            let (was, now) = (p.pointer(path), d.pointer(path));
            // A field never set is the server's to fill (a Service's clusterIP).
            if was.is_some() && now.is_some() && was != now {
                out.push(format!("manifests[{i}]{}", path.replace('/', ".")));
            }
        }
    }
    out
}

/// The state ID of the rendered objects: the first object's identity.
/// The attributes a resource's objects give it beside its inputs: `id`
/// (`Kind/NAMESPACE/NAME` or `Kind/NAME`), and the `name` and `namespace`
/// of its first object, so `${k8s_namespace.shop.name}` reads the name
/// whether the stack wrote it or took the default.
pub fn identity_of(id: &str, objs: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), Value::String(id.to_string()));
    if let Some(o) = objs.first() {
        for (k, p) in [("name", "/metadata/name"), ("namespace", "/metadata/namespace")] {
            if let Some(v) = o.pointer(p).filter(|v| v.is_string()) {
                out.insert(k.into(), v.clone());
            }
        }
    }
    Value::Object(out)
}

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
