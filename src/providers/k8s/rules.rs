//! What a real API server refuses in an object, checked before any call:
//! names (DNS-1123 subdomains, or labels for namespaces, Services and
//! containers), label keys and values, annotation sizes, resource
//! quantities with requests at most their limits, ports and NodePorts,
//! probe paths, and an autoscaler's bounds. Run on every rendered object
//! (`app`, the typed kinds and `k8s_manifest` alike) once its values are
//! known, so a bad value stops the plan instead of an apply halfway.

use serde_json::Value;

use super::project::quantity;
use crate::path::PathSeg;

/// The NodePort range of a default kube-apiserver (`--service-node-port-range`).
pub const NODE_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

type Problem = (Vec<PathSeg>, String);

fn at(path: &[&str]) -> Vec<PathSeg> {
    path.iter()
        .map(|p| match p.parse::<usize>() {
            Ok(i) => PathSeg::Index(i),
            Err(_) => PathSeg::Field(p.to_string()),
        })
        .collect()
}

/// A DNS-1123 label: at most 63 lowercase letters, digits and `-`,
/// alphanumeric at both ends.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 label: at most 63 lowercase letters, digits and `-`, starting and ending \
             with a letter or digit{}",
            suggestion(s)
        ))
    }
}

/// A DNS-1123 subdomain: at most 253 characters of labels joined by `.`.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| dns_label(l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 subdomain: at most 253 lowercase letters, digits, `-` and `.`, each part \
             starting and ending with a letter or digit{}",
            suggestion(s)
        ))
    }
}

fn suggestion(s: &str) -> String {
    let fixed: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fixed = fixed.trim_matches(|c| c == '-' || c == '.').to_string();
    if fixed != s && !fixed.is_empty() {
        format!(" (try {fixed:?})")
    } else {
        String::new()
    }
}

/// A label value: at most 63 letters, digits, `-`, `_` and `.`,
/// alphanumeric at both ends (or empty).
fn label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label or annotation key: an optional DNS subdomain prefix and `/`,
/// then a name like a label value (not empty).
fn qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(|p| dns_subdomain(p).is_ok()) && !name.is_empty() && label_value(name)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, p| match p.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(*p),
        })?
        .as_str()
}

fn metadata(obj: &Value, out: &mut Vec<Problem>) {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if let Some(name) = str_at(obj, &["metadata", "name"]) {
        // Namespaces and Services are DNS labels (a Service's name is a DNS
        // name inside its namespace); the rest DNS subdomains.
        let r = if matches!(kind, "Namespace" | "Service") {
            dns_label(name)
        } else {
            dns_subdomain(name)
        };
        if let Err(m) = r {
            out.push((at(&["metadata", "name"]), format!("{kind} name {m}")));
        }
    }
    if let Some(ns) = str_at(obj, &["metadata", "namespace"]) {
        if let Err(m) = dns_label(ns) {
            out.push((at(&["metadata", "namespace"]), format!("namespace {m}")));
        }
    }
    for base in [&["metadata"][..], &["spec", "template", "metadata"][..]] {
        let mut p: Vec<&str> = base.to_vec();
        p.push("labels");
        if let Some(labels) = p.iter().try_fold(obj, |v, k| v.get(*k)).and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().unwrap_or("");
                if !qualified_name(k) {
                    out.push((at(&p), format!("label key {k:?} is not a valid label name")));
                } else if !label_value(v) {
                    out.push((
                        at(&p),
                        format!(
                            "label {k}={v:?}: a label value is at most 63 letters, digits, `-`, `_` and `.`, \
                             starting and ending with a letter or digit"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(ann) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        let size: usize = ann.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
        if size > 256 * 1024 {
            out.push((
                at(&["metadata", "annotations"]),
                format!("annotations total {size} bytes; the API server allows 262144"),
            ));
        }
        for k in ann.keys().filter(|k| !qualified_name(k)) {
            out.push((
                at(&["metadata", "annotations"]),
                format!("annotation key {k:?} is not a valid name"),
            ));
        }
    }
}

fn containers(obj: &Value, out: &mut Vec<Problem>) {
    let spec_path: &[&str] = match obj.get("kind").and_then(Value::as_str) {
        Some("Pod") => &["spec"],
        Some("CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => &["spec", "template", "spec"],
    };
    let Some(pod) = spec_path.iter().try_fold(obj, |v, k| v.get(*k)) else {
        return;
    };
    for list in ["initContainers", "containers"] {
        for (i, c) in pod
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let idx = i.to_string();
            let here = |rest: &[&str]| {
                let mut p: Vec<&str> = spec_path.to_vec();
                p.push(list);
                p.push(&idx);
                p.extend(rest);
                at(&p)
            };
            if let Some(n) = c.get("name").and_then(Value::as_str) {
                if let Err(m) = dns_label(n) {
                    out.push((here(&["name"]), format!("container name {m}")));
                }
            }
            for (j, port) in c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(n) = port
                    .get("containerPort")
                    .and_then(Value::as_u64)
                    .filter(|n| !(1..=65535).contains(n))
                {
                    out.push((
                        here(&["ports", &j.to_string(), "containerPort"]),
                        format!("port {n} is not in 1-65535"),
                    ));
                }
            }
            let res = c.get("resources");
            let mut values = std::collections::BTreeMap::new();
            for which in ["requests", "limits"] {
                for (r, q) in res
                    .and_then(|r| r.get(which))
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let text = match q {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    match quantity(&text) {
                        Some(v) if v >= 0.0 => {
                            values.insert((which, r.clone()), (v, text));
                        }
                        _ => out.push((
                            here(&["resources", which, r]),
                            format!(
                                "{which}.{r} {text:?} is not a Kubernetes quantity (like \"250m\", \"1\", \"512Mi\", \"2Gi\")"
                            ),
                        )),
                    }
                }
            }
            for ((which, r), (v, text)) in &values {
                if *which != "requests" {
                    continue;
                }
                if let Some((limit, ltext)) = values.get(&("limits", r.clone())) {
                    if v > limit {
                        out.push((
                            here(&["resources", "requests", r]),
                            format!("the {r} request {text} is above its limit {ltext}: the API server refuses it"),
                        ));
                    }
                }
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                if let Some(p) = c.pointer(&format!("/{probe}/httpGet/path")).and_then(Value::as_str) {
                    if !p.starts_with('/') {
                        out.push((
                            here(&[probe, "httpGet", "path"]),
                            format!("probe path {p:?} must start with `/` (\"/{p}\")"),
                        ));
                    }
                }
            }
        }
    }
}

fn service(obj: &Value, out: &mut Vec<Problem>) {
    let ty = str_at(obj, &["spec", "type"]).unwrap_or("ClusterIP");
    for (i, p) in obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let idx = i.to_string();
        if let Some(n) = p
            .get("port")
            .and_then(Value::as_u64)
            .filter(|n| !(1..=65535).contains(n))
        {
            out.push((
                at(&["spec", "ports", &idx, "port"]),
                format!("port {n} is not in 1-65535"),
            ));
        }
        if let Some(n) = p.get("nodePort").and_then(Value::as_u64) {
            if !NODE_PORTS.contains(&n) {
                out.push((
                    at(&["spec", "ports", &idx, "nodePort"]),
                    format!(
                        "NodePort {n} is outside the cluster's NodePort range {}-{} (the API server's default)",
                        NODE_PORTS.start(),
                        NODE_PORTS.end()
                    ),
                ));
            } else if ty == "ClusterIP" {
                out.push((
                    at(&["spec", "ports", &idx, "nodePort"]),
                    "a ClusterIP Service cannot have a nodePort".into(),
                ));
            }
        }
    }
}

fn autoscaler(obj: &Value, out: &mut Vec<Problem>) {
    let min = obj.pointer("/spec/minReplicas").and_then(Value::as_u64).unwrap_or(1);
    let Some(max) = obj.pointer("/spec/maxReplicas").and_then(Value::as_u64) else {
        return;
    };
    if min < 1 {
        out.push((at(&["spec", "minReplicas"]), "minReplicas must be at least 1".into()));
    }
    if min > max {
        out.push((
            at(&["spec", "minReplicas"]),
            format!("minReplicas {min} is above maxReplicas {max}"),
        ));
    }
}

/// `v` without the values known only after apply (judged once known).
fn known_only(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) if s.contains(crate::value::UNKNOWN) => None,
        Value::Array(a) => Some(Value::Array(
            a.iter().map(|x| known_only(x).unwrap_or(Value::Null)).collect(),
        )),
        Value::Object(o) => Some(Value::Object(
            o.iter()
                .filter_map(|(k, x)| Some((k.clone(), known_only(x)?)))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// Everything the API server would refuse in `obj`, with where.
pub fn problems(obj: &Value) -> Vec<Problem> {
    let Some(obj) = known_only(obj) else {
        return Vec::new();
    };
    let obj = &obj;
    let mut out = Vec::new();
    metadata(obj, &mut out);
    containers(obj, &mut out);
    match obj.get("kind").and_then(Value::as_str) {
        Some("Service") => service(obj, &mut out),
        Some("HorizontalPodAutoscaler") => autoscaler(obj, &mut out),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_labels_quantities_ports_and_bounds_are_judged_as_the_api_server_does() {
        assert!(dns_label("app-a").is_ok());
        assert!(dns_label("App_A").unwrap_err().contains("try \"app-a\""));
        assert!(dns_subdomain("a.b-c").is_ok());
        let dep = json!({
            "kind": "Deployment",
            "metadata": { "name": "web", "labels": { "slipway.dev/address": "app.web[\"a\"]" } },
            "spec": { "template": { "spec": { "containers": [{
                "name": "web",
                "resources": { "requests": { "cpu": "2", "memory": "lots" }, "limits": { "cpu": "500m" } },
                "readinessProbe": { "httpGet": { "path": "healthz" } },
            }] } } }
        });
        let p: Vec<String> = problems(&dep).into_iter().map(|(_, m)| m).collect();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.iter().any(|m| m.contains("label value")));
        assert!(p.iter().any(|m| m.contains("\"lots\" is not a Kubernetes quantity")));
        assert!(p.iter().any(|m| m.contains("request 2 is above its limit 500m")));
        assert!(p.iter().any(|m| m.contains("must start with `/`")));
        let svc = json!({ "kind": "Service", "metadata": { "name": "web" }, "spec": { "type": "NodePort", "ports": [{ "port": 80, "nodePort": 40000 }] } });
        assert!(problems(&svc)[0].1.contains("outside the cluster's NodePort range"));
        let hpa = json!({ "kind": "HorizontalPodAutoscaler", "metadata": { "name": "web" }, "spec": { "minReplicas": 5, "maxReplicas": 2 } });
        assert!(problems(&hpa)[0].1.contains("minReplicas 5 is above maxReplicas 2"));
    }
}
