//! Rendering a Kubernetes kind's config into the objects it applies, with
//! slipway's ownership labels; secret data (a registry password) is filled
//! in only at apply time and never reaches the inputs.

use serde_json::{json, Map, Value};

use super::schema::{AppConfig, CiDeployerConfig};

/// The labels naming the stack and the address that render an object.
pub const STACK_LABEL: &str = "slipway.dev/stack";
pub const ADDRESS_LABEL: &str = "slipway.dev/address";
use super::table::{plural_of, K8sKind, Shape};

/// `my_app` -> `my-app`: resource names may hold `_`, Kubernetes names may not.
pub fn k8s_name(address: &str) -> String {
    crate::providers::common::name_of(address)
        .replace('_', "-")
        .to_lowercase()
}

/// The address as a label value can hold it (63 characters of letters,
/// digits, `-`, `_` and `.`, alphanumeric at both ends): itself when it
/// can, else its legal characters and a hash of the whole
/// (`module.web.app.main["a"]`, a long module path).
pub fn address_label(address: &str) -> String {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if address.len() <= 63 && address.chars().all(legal) {
        return address.to_string();
    }
    let clean: String = address.chars().map(|c| if legal(c) { c } else { '_' }).collect();
    let mut head: String = clean.chars().take(54).collect();
    while head.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        head.pop();
    }
    format!("{head}-{:08x}", crate::providers::common::short_hash(address) as u32)
}

/// `v` (a Kubernetes resource's inputs or attributes) as the move from
/// `from` to `to` leaves it: every `slipway.dev/address` label naming `from`
/// names `to` (apply relabels the objects first thing), so the plan of a
/// move shows no change.
pub fn relabel_moved(v: &mut Value, from: &str, to: &str) {
    let (old, new) = (address_label(from), address_label(to));
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == ADDRESS_LABEL && x.as_str() == Some(old.as_str()) {
                    *x = json!(new);
                } else {
                    relabel_moved(x, from, to);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| relabel_moved(x, from, to)),
        _ => {}
    }
}

fn labels(stack: &str, address: &str, extra: Option<&Value>) -> Map<String, Value> {
    let mut l = Map::new();
    if let Some(Value::Object(e)) = extra {
        l.extend(e.clone());
    }
    l.insert("app.kubernetes.io/managed-by".into(), json!("slipway"));
    l.insert(STACK_LABEL.into(), json!(stack));
    l.insert(ADDRESS_LABEL.into(), json!(address_label(address)));
    l
}

fn meta(stack: &str, address: &str, name: &str, ns: Option<&str>, config: &Value) -> Value {
    let mut m = json!({ "name": name, "labels": labels(stack, address, config.get("labels")) });
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    if let Some(a) = config
        .get("annotations")
        .filter(|a| a.as_object().is_some_and(|o| !o.is_empty()))
    {
        m["annotations"] = a.clone();
    }
    m
}

pub fn str_field<'a>(config: &'a Value, f: &str) -> Option<&'a str> {
    config.get(f).and_then(Value::as_str)
}

// ------------------------------------------------------------ secrets

/// The registry password, from the environment or a file; never stored.
pub fn password(config: &Value) -> Result<String, String> {
    if let Some(var) = str_field(config, "password_env") {
        if let Some(why) = crate::operator::env_refused(var) {
            return Err(format!("password_env: {why}"));
        }
        return std::env::var(var).map_err(|_| format!("the environment variable {var} (password_env) is not set"));
    }
    if let Some(path) = str_field(config, "password_file") {
        let real = crate::operator::confined_file(path, "password_file")?;
        return std::fs::read_to_string(real)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("cannot read password_file {path}: {e}"));
    }
    Err("give `password_env` or `password_file`".into())
}

fn docker_config(registry: &str, username: &str, password: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let auth = b64.encode(format!("{username}:{password}"));
    let doc = json!({"auths": {registry: {"username": username, "password": password, "auth": auth}}});
    b64.encode(doc.to_string())
}

/// Registry, username and password from a live dockerconfigjson Secret.
pub fn read_docker_config(secret: &Value) -> Option<(String, String, String)> {
    use base64::Engine;
    let data = secret.pointer("/data/.dockerconfigjson")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    let doc: Value = serde_json::from_slice(&raw).ok()?;
    let (reg, entry) = doc.get("auths")?.as_object()?.iter().next()?;
    Some((
        reg.clone(),
        entry.get("username")?.as_str()?.to_string(),
        entry.get("password")?.as_str()?.to_string(),
    ))
}

// ------------------------------------------------------------ objects

impl K8sKind {
    pub fn namespaced(&self) -> bool {
        match self.shape {
            Shape::Object { api_version, kind, .. } => plural_of(api_version, kind).is_some_and(|(_, n)| n),
            _ => true,
        }
    }

    /// The objects for `config`. With `secrets`, secret data is filled in
    /// (only at apply time); without, it is left out.
    pub fn render(&self, stack: &str, address: &str, config: &Value, secrets: bool) -> Result<Vec<Value>, String> {
        // A completed config carries what it rendered last time; render from the rest.
        let mut config = config.clone();
        if let Some(o) = config.as_object_mut() {
            o.remove("manifests");
            o.remove("password_hash");
        }
        let config = &config;
        let name = str_field(config, "name")
            .map(str::to_string)
            .unwrap_or_else(|| k8s_name(address));
        match self.shape {
            Shape::Object {
                api_version,
                kind,
                body,
            } => {
                let ns = if self.namespaced() {
                    Some(str_field(config, "namespace").unwrap_or("default"))
                } else {
                    None
                };
                let mut obj = json!({ "apiVersion": api_version, "kind": kind, "metadata": meta(stack, address, &name, ns, config) });
                for (cfg, k8s) in body {
                    if let Some(v) = config.get(*cfg) {
                        obj[*k8s] = v.clone();
                    }
                }
                Ok(vec![obj])
            }
            Shape::Manifest => {
                let mut obj = config.get("manifest").cloned().ok_or("`manifest` is required")?;
                let md = obj
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                    .ok_or("the manifest needs metadata")?;
                let extra = md.get("labels").cloned();
                md.insert("labels".into(), Value::Object(labels(stack, address, extra.as_ref())));
                Ok(vec![obj])
            }
            Shape::App => render_app(stack, address, &name, config),
            Shape::CiDeployer => render_ci_deployer(stack, address, &name, config),
            Shape::RegistrySecret => {
                let mut out = Vec::new();
                for ns in config
                    .get("namespaces")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let mut obj = json!({
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "type": "kubernetes.io/dockerconfigjson",
                        "metadata": meta(stack, address, &name, Some(ns), config),
                    });
                    if secrets {
                        let pw = password(config)?;
                        let reg = str_field(config, "registry").unwrap_or_default();
                        let user = str_field(config, "username").unwrap_or_default();
                        obj["data"] = json!({ ".dockerconfigjson": docker_config(reg, user, &pw) });
                    }
                    out.push(obj);
                }
                Ok(out)
            }
        }
    }
}

fn render_app(stack: &str, address: &str, name: &str, config: &Value) -> Result<Vec<Value>, String> {
    let c: AppConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let ns = c.namespace.as_str();
    let selector = json!({ "app.kubernetes.io/name": name, "slipway.dev/stack": stack });
    // Pods carry no address: a [[moved]] (into a module, say) relabels the
    // Deployment, and must not roll the pods out.
    let mut pod_labels = labels(stack, address, config.get("labels"));
    pod_labels.remove(ADDRESS_LABEL);
    pod_labels.insert("app.kubernetes.io/name".into(), json!(name));
    let probe = json!({ "httpGet": { "path": c.health_path, "port": c.port } });
    let env: Vec<Value> = c.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let mut container = json!({
        "name": name,
        "image": c.image,
        "ports": [{ "name": "http", "containerPort": c.port, "protocol": "TCP" }],
        "resources": {
            "requests": { "cpu": c.cpu_request, "memory": c.memory_request },
            "limits": { "cpu": c.cpu_limit, "memory": c.memory_limit },
        },
        "readinessProbe": probe.clone(),
        "livenessProbe": { "httpGet": probe["httpGet"].clone(), "initialDelaySeconds": 10 },
    });
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    let mut pod_spec = json!({ "containers": [container] });
    if let Some(s) = &c.pull_secret {
        pod_spec["imagePullSecrets"] = json!([{ "name": s }]);
    }
    let mut dep_meta = meta(stack, address, name, Some(ns), config);
    dep_meta["labels"]["app.kubernetes.io/name"] = json!(name);
    let mut spec = json!({
        "selector": { "matchLabels": selector },
        "template": { "metadata": { "labels": pod_labels }, "spec": pod_spec },
    });
    // Under an HPA the replica count is not ours: leave the field unmanaged.
    if c.autoscale.is_none() {
        spec["replicas"] = json!(c.replicas);
    }
    let mut out =
        vec![json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": dep_meta.clone(), "spec": spec })];
    let svc_type = match c.expose.as_str() {
        "nodeport" => "NodePort",
        "loadbalancer" => "LoadBalancer",
        _ => "ClusterIP",
    };
    let mut port = json!({ "name": "http", "port": 80, "targetPort": c.port, "protocol": "TCP" });
    if let (Some(np), "NodePort") = (c.node_port, svc_type) {
        port["nodePort"] = json!(np);
    }
    out.push(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": dep_meta.clone(),
        "spec": { "type": svc_type, "selector": selector, "ports": [port] },
    }));
    if c.expose == "ingress" {
        let mut rule = json!({ "http": { "paths": [{ "path": "/", "pathType": "Prefix",
            "backend": { "service": { "name": name, "port": { "number": 80 } } } }] } });
        if let Some(h) = &c.host {
            rule["host"] = json!(h);
        }
        let mut spec = json!({ "rules": [rule] });
        if let Some(class) = &c.ingress_class {
            spec["ingressClassName"] = json!(class);
        }
        out.push(json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": dep_meta.clone(), "spec": spec }));
    }
    if let Some(a) = &c.autoscale {
        out.push(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": dep_meta,
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
                "minReplicas": a.min, "maxReplicas": a.max,
                "metrics": [{ "type": "Resource", "resource": { "name": "cpu",
                    "target": { "type": "Utilization", "averageUtilization": a.cpu_percent } } }],
            },
        }));
    }
    Ok(out)
}

/// What a CI job needs to deploy a team's `app` resources into a namespace
/// with slipway, and nothing else (tested against the emulator's RBAC):
/// - the objects an `app` renders (Deployments, Services, HPAs, Ingresses):
///   `get` (refresh, and the ownership check before any write), `create` and
///   `patch` (server-side apply creates with both, updates with `patch`; the
///   replica handoff to an HPA is a `patch` too), `delete` (an app or its
///   Service dropped from the stack);
/// - ReplicaSets and Pods: `list` and `watch` (the rollout wait finds the new
///   ReplicaSet and its failing pods), `get` (kubectl rollout status);
/// - `get` on services/proxy: an app's post-deploy `check` (GET only).
///
/// No Secrets, ConfigMaps, ServiceAccounts, RBAC, namespaces or pods/exec:
/// pull secrets and namespaces belong to the platform's stack. A Deployment
/// can still run its pods as any ServiceAccount of the namespace; RBAC cannot
/// say otherwise (an admission policy can).
fn deployer_rules() -> Value {
    json!([
        { "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "patch", "delete"] },
        { "apiGroups": [""], "resources": ["services"], "verbs": ["get", "create", "patch", "delete"] },
        { "apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get", "create", "patch", "delete"] },
        { "apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "create", "patch", "delete"] },
        { "apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"] },
        { "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] },
        { "apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"] },
    ])
}

fn render_ci_deployer(stack: &str, address: &str, name: &str, config: &Value) -> Result<Vec<Value>, String> {
    let c: CiDeployerConfig = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let sa_ns = c
        .service_account_namespace
        .clone()
        .or_else(|| c.namespaces.first().cloned())
        .ok_or("`namespaces` is empty")?;
    let group = c.group.clone().unwrap_or_else(|| name.to_string());
    let mut out = vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(stack, address, name, Some(&sa_ns), config) }),
    ];
    for ns in &c.namespaces {
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(stack, address, name, Some(ns), config),
            "rules": deployer_rules(),
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(stack, address, name, Some(ns), config),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
            "subjects": [
                { "kind": "ServiceAccount", "name": name, "namespace": sa_ns },
                { "kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group },
            ],
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod address_label_tests {
    use super::address_label;

    #[test]
    fn an_address_a_label_cannot_hold_becomes_a_legal_value_of_its_own() {
        assert_eq!(address_label("app.web"), "app.web");
        assert_eq!(address_label("module.web.app.main"), "module.web.app.main");
        let a = address_label("app.web[\"eu-west-1a\"]");
        assert!(a.starts_with("app.web__eu-west-1a-"), "{a}");
        assert_ne!(a, address_label("app.web[\"eu-west-1b\"]"));
        let long = address_label(&format!("module.{}.app.main", "x".repeat(80)));
        assert!(long.len() <= 63, "{long}");
        for v in [a, long] {
            assert!(v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{v}");
            assert!(
                v.starts_with(|c: char| c.is_ascii_alphanumeric()) && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            );
        }
    }
}
