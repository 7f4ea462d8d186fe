//! Kubernetes kinds. Each renders its config into Kubernetes objects (one
//! for `k8s_deployment`, several for `app`, `ci_deployer` and
//! `registry_secret`), applied by server-side apply as `slipway`. The
//! rendered objects are part of the inputs (`manifests`), and refresh
//! projects each live object onto the fields slipway set, so server
//! defaults and status never show as differences.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::client::{self, target};
use super::rollout::rollout_complete;
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError, StackView};
use crate::stack::node::PathSeg;

/// apiVersion, kind -> plural, namespaced.
const KNOWN: &[(&str, &str, &str, bool)] = &[
    ("v1", "Namespace", "namespaces", false),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Secret", "secrets", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("v1", "Service", "services", true),
    ("v1", "Pod", "pods", true),
    ("apps/v1", "Deployment", "deployments", true),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", true),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", true),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("networking.k8s.io/v1", "Ingress", "ingresses", true),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", true),
];

/// The plural and scope of a kind slipway knows.
pub fn plural_of(api_version: &str, kind: &str) -> Option<(&'static str, bool)> {
    KNOWN
        .iter()
        .find(|(a, k, _, _)| *a == api_version && *k == kind)
        .map(|(_, _, p, n)| (*p, *n))
}

/// What a Kubernetes kind renders and how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// One object of a fixed kind; `body` maps config fields to object fields.
    Object {
        api_version: &'static str,
        kind: &'static str,
        body: &'static [(&'static str, &'static str)],
    },
    /// Any object given in full (`manifest`).
    Manifest,
    App,
    CiDeployer,
    RegistrySecret,
}

/// One Kubernetes kind.
pub struct K8sKind {
    pub name: &'static str,
    pub shape: Shape,
}

/// Every Kubernetes kind.
pub fn all() -> Vec<K8sKind> {
    use Shape::Object;
    let o = |name, api_version, kind, body| K8sKind {
        name,
        shape: Object {
            api_version,
            kind,
            body,
        },
    };
    vec![
        o("k8s_namespace", "v1", "Namespace", &[]),
        o("k8s_config_map", "v1", "ConfigMap", &[("data", "data")]),
        o(
            "k8s_service_account",
            "v1",
            "ServiceAccount",
            &[("image_pull_secrets", "imagePullSecrets")],
        ),
        o(
            "k8s_role",
            "rbac.authorization.k8s.io/v1",
            "Role",
            &[("rules", "rules")],
        ),
        o(
            "k8s_cluster_role",
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            &[("rules", "rules")],
        ),
        o(
            "k8s_role_binding",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &[("role_ref", "roleRef"), ("subjects", "subjects")],
        ),
        o(
            "k8s_cluster_role_binding",
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            &[("role_ref", "roleRef"), ("subjects", "subjects")],
        ),
        o("k8s_deployment", "apps/v1", "Deployment", &[("spec", "spec")]),
        o("k8s_service", "v1", "Service", &[("spec", "spec")]),
        o("k8s_ingress", "networking.k8s.io/v1", "Ingress", &[("spec", "spec")]),
        o(
            "k8s_hpa",
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            &[("spec", "spec")],
        ),
        K8sKind {
            name: "k8s_manifest",
            shape: Shape::Manifest,
        },
        K8sKind {
            name: "app",
            shape: Shape::App,
        },
        K8sKind {
            name: "ci_deployer",
            shape: Shape::CiDeployer,
        },
        K8sKind {
            name: "registry_secret",
            shape: Shape::RegistrySecret,
        },
    ]
}

fn err(path: Vec<PathSeg>, message: impl Into<String>) -> SchemaError {
    SchemaError {
        path,
        message: message.into(),
        suggestion: None,
    }
}

fn field(f: &str) -> PathSeg {
    PathSeg::Field(f.into())
}

/// `my_app` -> `my-app`: resource names may hold `_`, Kubernetes names may not.
fn k8s_name(address: &str) -> String {
    address
        .split_once('.')
        .map(|(_, n)| n)
        .unwrap_or(address)
        .replace('_', "-")
}

fn labels(stack: &str, address: &str, extra: Option<&Value>) -> Map<String, Value> {
    let mut l = Map::new();
    if let Some(Value::Object(e)) = extra {
        l.extend(e.clone());
    }
    l.insert("app.kubernetes.io/managed-by".into(), json!("slipway"));
    l.insert("slipway.dev/stack".into(), json!(stack));
    l.insert("slipway.dev/address".into(), json!(address));
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

fn str_field<'a>(config: &'a Value, f: &str) -> Option<&'a str> {
    config.get(f).and_then(Value::as_str)
}

// ------------------------------------------------------------ config schemas

const COMMON: &[&str] = &["cluster", "name", "labels", "annotations"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AppConfig {
    #[serde(default)]
    cluster: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    namespace: String,
    image: String,
    port: u16,
    #[serde(default = "two")]
    replicas: u32,
    cpu_request: String,
    memory_request: String,
    cpu_limit: String,
    memory_limit: String,
    health_path: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    pull_secret: Option<String>,
    #[serde(default = "internal")]
    expose: String,
    #[serde(default)]
    node_port: Option<u16>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    ingress_class: Option<String>,
    #[serde(default)]
    autoscale: Option<Autoscale>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Autoscale {
    min: u32,
    max: u32,
    #[serde(default = "seventy")]
    cpu_percent: u32,
}

fn two() -> u32 {
    2
}
fn seventy() -> u32 {
    70
}
fn internal() -> String {
    "internal".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CiDeployerConfig {
    #[serde(default)]
    cluster: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    /// Namespaces CI may roll out to.
    namespaces: Vec<String>,
    /// Where the ServiceAccount lives (default: the first namespace).
    #[serde(default)]
    service_account_namespace: Option<String>,
    /// A Kubernetes group also bound (map an IAM role to it with an
    /// eks_access_entry's kubernetes_groups); default the name.
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RegistrySecretConfig {
    #[serde(default)]
    cluster: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    namespaces: Vec<String>,
    /// e.g. registry.gitlab.com
    registry: String,
    username: String,
    /// The environment variable holding the password or token.
    #[serde(default)]
    password_env: Option<String>,
    /// Or a file holding it.
    #[serde(default)]
    password_file: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

// ------------------------------------------------------------ secrets

/// The registry password, from the environment or a file; never stored.
fn password(config: &Value) -> Result<String, String> {
    if let Some(var) = str_field(config, "password_env") {
        return std::env::var(var).map_err(|_| format!("the environment variable {var} (password_env) is not set"));
    }
    if let Some(path) = str_field(config, "password_file") {
        return std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("cannot read password_file {path}: {e}"));
    }
    Err("give `password_env` or `password_file`".into())
}

pub use crate::providers::common::secret_hash;

fn docker_config(registry: &str, username: &str, password: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let auth = b64.encode(format!("{username}:{password}"));
    let doc = json!({"auths": {registry: {"username": username, "password": password, "auth": auth}}});
    b64.encode(doc.to_string())
}

/// Registry, username and password from a live dockerconfigjson Secret.
fn read_docker_config(secret: &Value) -> Option<(String, String, String)> {
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

// ------------------------------------------------------------ rendering

impl K8sKind {
    fn namespaced(&self) -> bool {
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
    let mut pod_labels = labels(stack, address, config.get("labels"));
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
            // Exactly what rolling out an image needs, nothing else.
            "rules": [
                { "apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"] },
                { "apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] },
            ],
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

// ------------------------------------------------------------ schema checks

/// Round-trip an object through its k8s-openapi type: unknown fields are
/// the ones that do not come back.
fn typed_check(obj: &Value) -> Result<(), (Vec<PathSeg>, String)> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, core::v1 as core, networking::v1 as net, rbac::v1 as rbac,
    };
    fn rt<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Result<Value, (Vec<PathSeg>, String)> {
        let t: T = serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            (
                crate::stack::node::path_segments(e.path()),
                e.inner().to_string().replace("invalid type: ", "wrong type: "),
            )
        })?;
        serde_json::to_value(t).map_err(|e| (vec![], e.to_string()))
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let back = match kind {
        "Namespace" => rt::<core::Namespace>(obj)?,
        "ConfigMap" => rt::<core::ConfigMap>(obj)?,
        "Secret" => rt::<core::Secret>(obj)?,
        "ServiceAccount" => rt::<core::ServiceAccount>(obj)?,
        "Service" => rt::<core::Service>(obj)?,
        "Deployment" => rt::<apps::Deployment>(obj)?,
        "Role" => rt::<rbac::Role>(obj)?,
        "ClusterRole" => rt::<rbac::ClusterRole>(obj)?,
        "RoleBinding" => rt::<rbac::RoleBinding>(obj)?,
        "ClusterRoleBinding" => rt::<rbac::ClusterRoleBinding>(obj)?,
        "Ingress" => rt::<net::Ingress>(obj)?,
        "HorizontalPodAutoscaler" => rt::<autoscaling::HorizontalPodAutoscaler>(obj)?,
        _ => return Ok(()),
    };
    fn unknown(a: &Value, b: &Value, path: &mut Vec<PathSeg>) -> Option<Vec<PathSeg>> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, v) in x {
                    path.push(PathSeg::Field(k.clone()));
                    match y.get(k) {
                        None if !v.is_null() => return Some(path.clone()),
                        Some(w) => {
                            if let Some(p) = unknown(v, w, path) {
                                return Some(p);
                            }
                        }
                        None => {}
                    }
                    path.pop();
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    path.push(PathSeg::Index(i));
                    if let Some(p) = unknown(v, w, path) {
                        return Some(p);
                    }
                    path.pop();
                }
                None
            }
            _ => None,
        }
    }
    match unknown(obj, &back, &mut Vec::new()) {
        Some(p) => {
            let f = match p.last() {
                Some(PathSeg::Field(f)) => f.clone(),
                _ => String::new(),
            };
            Err((p, format!("unknown field `{f}` in a {kind}")))
        }
        None => Ok(()),
    }
}

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
fn id_of(objs: &[Value]) -> String {
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

fn identity(o: &Value) -> (String, String, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    (
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

#[async_trait]
impl ResourceKind for K8sKind {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        let Some(o) = config.as_object() else {
            return Err(err(vec![], "a table is needed"));
        };
        match self.shape {
            Shape::App => crate::providers::check_schema::<AppConfig>(config)?,
            Shape::CiDeployer => crate::providers::check_schema::<CiDeployerConfig>(config)?,
            Shape::RegistrySecret => {
                crate::providers::check_schema::<RegistrySecretConfig>(config)?;
                if o.contains_key("password_env") == o.contains_key("password_file") {
                    return Err(err(
                        vec![],
                        "give exactly one of `password_env` (an environment variable) or `password_file`",
                    ));
                }
            }
            Shape::Manifest => {
                for k in o.keys() {
                    if !["cluster", "manifest", "labels", "annotations"].contains(&k.as_str()) {
                        return Err(SchemaError {
                            path: vec![field(k)],
                            message: format!(
                                "unknown field `{k}`; a k8s_manifest has `manifest` (the whole object) and `cluster`"
                            ),
                            suggestion: crate::stack::error::did_you_mean(k, ["manifest", "cluster"])
                                .map(str::to_string),
                        });
                    }
                }
                let m = o
                    .get("manifest")
                    .ok_or_else(|| err(vec![], "missing field `manifest`"))?;
                let (av, kind) = (
                    m.get("apiVersion").and_then(Value::as_str),
                    m.get("kind").and_then(Value::as_str),
                );
                match (av, kind) {
                    (Some(av), Some(k)) if plural_of(av, k).is_some() => {}
                    (Some(av), Some(k)) => {
                        return Err(err(
                            vec![field("manifest")],
                            format!("slipway does not know the kind {av}/{k}"),
                        ))
                    }
                    _ => {
                        return Err(err(
                            vec![field("manifest")],
                            "the manifest needs `apiVersion` and `kind`",
                        ))
                    }
                }
            }
            Shape::Object { body, .. } => {
                let mut allowed: Vec<&str> = COMMON.to_vec();
                if self.namespaced() {
                    allowed.push("namespace");
                }
                allowed.extend(body.iter().map(|(c, _)| *c));
                for k in o.keys() {
                    if !allowed.contains(&k.as_str()) {
                        return Err(SchemaError {
                            path: vec![field(k)],
                            message: format!(
                                "unknown field `{k}`, expected one of {}",
                                allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                            ),
                            suggestion: crate::stack::error::did_you_mean(k, allowed.iter().copied())
                                .map(str::to_string),
                        });
                    }
                }
            }
        }
        if let Some(e) = o
            .get("expose")
            .and_then(Value::as_str)
            .filter(|e| !["internal", "nodeport", "loadbalancer", "ingress"].contains(e))
        {
            return Err(err(
                vec![field("expose")],
                format!("expose {e:?} must be internal, nodeport, loadbalancer or ingress"),
            ));
        }
        if config.to_string().contains("${") {
            return Ok(()); // the rendered objects are judged once references are known
        }
        let objs = self
            .render("stack", "kind.name", config, false)
            .map_err(|m| err(vec![], m))?;
        for obj in &objs {
            if let Err((path, message)) = typed_check(obj) {
                // Point into the config where the object came from the config as written.
                let cpath = match (self.shape, path.first()) {
                    (Shape::Object { body, .. }, Some(PathSeg::Field(f))) => body
                        .iter()
                        .find(|(_, k)| k == f)
                        .map(|(c, _)| {
                            let mut p = vec![field(c)];
                            p.extend(path[1..].iter().cloned());
                            p
                        })
                        .unwrap_or_default(),
                    (Shape::Manifest, _) => {
                        let mut p = vec![field("manifest")];
                        p.extend(path.iter().cloned());
                        p
                    }
                    _ => vec![],
                };
                return Err(err(cpath, message));
            }
        }
        Ok(())
    }

    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        let mut c = config.clone();
        if let Some(o) = c.as_object_mut() {
            if self.shape == Shape::RegistrySecret {
                if let Ok(pw) = password(config) {
                    o.insert("password_hash".into(), json!(secret_hash(stack, address, &pw)));
                }
            }
            if let Ok(objs) = self.render(stack, address, config, false) {
                o.insert("manifests".into(), Value::Array(objs));
            }
        }
        c
    }

    fn implied_dependencies(&self, config: &Value, view: &StackView<'_>) -> Vec<String> {
        // Objects in a namespace the stack declares come after that namespace.
        let mut nss: Vec<&str> = Vec::new();
        nss.extend(str_field(config, "namespace"));
        nss.extend(
            config
                .get("namespaces")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
        nss.extend(str_field(config, "service_account_namespace"));
        if let Some(m) = config.pointer("/manifest/metadata/namespace").and_then(Value::as_str) {
            nss.push(m);
        }
        view.resources
            .iter()
            .filter(|(_, k, _)| *k == "k8s_namespace")
            .filter(|(a, _, c)| {
                let n = str_field(c, "name").map(str::to_string).unwrap_or_else(|| k8s_name(a));
                nss.contains(&n.as_str())
            })
            .map(|(a, _, _)| a.to_string())
            .collect()
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        if self.shape == Shape::RegistrySecret {
            &["id", "manifests", "password_hash"]
        } else {
            &["id", "manifests"]
        }
    }

    fn sensitive_fields(&self) -> &'static [&'static str] {
        &["password_hash"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        let mut out = Vec::new();
        for r in reqs {
            let t = target(ctx, r.inputs)?;
            let client = client::client(ctx, &t).await?;
            let prior: Vec<Value> = r
                .inputs
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut projected = Vec::new();
            let mut first_gone = false;
            let mut live_secret = None;
            for (i, m) in prior.iter().enumerate() {
                match client::get(&client, m).await? {
                    Some(l) => {
                        if i == 0 && self.shape == Shape::RegistrySecret {
                            live_secret = Some(l.clone());
                        }
                        projected.push(project(m, &l));
                    }
                    None if i == 0 => first_gone = true,
                    None => projected.push(Value::Null),
                }
            }
            if first_gone {
                out.push(None);
                continue;
            }
            let mut inputs = r.inputs.clone();
            inputs["manifests"] = Value::Array(projected);
            if let (Some(secret), Shape::RegistrySecret) = (live_secret, self.shape) {
                // Compare what the live secret holds, without keeping it.
                let (reg, user, hash) = match read_docker_config(&secret) {
                    Some((reg, user, pw)) => (json!(reg), json!(user), json!(secret_hash(&ctx.stack, r.address, &pw))),
                    None => (Value::Null, Value::Null, Value::Null),
                };
                inputs["registry"] = reg;
                inputs["username"] = user;
                inputs["password_hash"] = hash;
            }
            let attributes = crate::providers::common::with_attrs(&inputs, json!({ "id": r.id }));
            out.push(Some(Live {
                id: r.id.to_string(),
                inputs,
                attributes,
            }));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        self.converge(ctx, address, &[], config).await
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let old: Vec<Value> = prior
            .inputs
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        self.converge(ctx, address, &old, config).await
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, _id: &str, attributes: &Value) -> Result<(), ProviderError> {
        let t = target(ctx, attributes)?;
        let client = client::client(ctx, &t).await?;
        for m in attributes
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .rev()
            .filter(|m| m.is_object())
        {
            client::delete(&client, m).await?;
        }
        Ok(())
    }

    async fn find_owned(&self, _ctx: &Ctx, _address: &str) -> Result<Vec<Live>, ProviderError> {
        // Kubernetes names are fixed by the config, so applying again adopts
        // whatever an interrupted run made: nothing can be duplicated.
        Ok(Vec::new())
    }
}

impl K8sKind {
    /// Apply every object, delete those no longer rendered, wait for rollouts.
    async fn converge(&self, ctx: &Ctx, address: &str, old: &[Value], config: &Value) -> Result<Live, ProviderError> {
        let t = target(ctx, config)?;
        let client = client::client(ctx, &t).await?;
        let objs = self
            .render(&ctx.stack, address, config, true)
            .map_err(ProviderError::new)?;
        for o in &objs {
            client::apply(&client, o).await?;
        }
        let keep: Vec<_> = objs.iter().map(identity).collect();
        // Objects rendered last time but not now go (entries gone already are null).
        for o in old
            .iter()
            .rev()
            .filter(|o| o.is_object() && !keep.contains(&identity(o)))
        {
            client::delete(&client, o).await?;
        }
        for o in objs
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
        {
            wait_rollout(ctx, &client, o).await?;
        }
        let inputs = self.complete(&ctx.stack, address, config);
        let id = id_of(&objs);
        let attributes = crate::providers::common::with_attrs(&inputs, json!({ "id": id }));
        Ok(Live { id, inputs, attributes })
    }
}

/// Wait for a Deployment's rollout, failing fast on pods that cannot start.
async fn wait_rollout(ctx: &Ctx, client: &kube::Client, obj: &Value) -> Result<(), ProviderError> {
    let what = format!("the rollout of {}", client::describe(obj));
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let selector: String = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let policy = Policy {
        timeout: ctx.rollout_timeout,
        first: std::time::Duration::from_millis(200),
        max: std::time::Duration::from_secs(5),
    };
    wait_for(&what, policy, || async {
        let dep = client::get(client, obj)
            .await?
            .ok_or_else(|| ProviderError::new(format!("{} disappeared", client::describe(obj))))?;
        let pods = client::list(client, "v1", "Pod", &ns, &selector).await?;
        Ok::<_, ProviderError>(match rollout_complete(&dep, &pods) {
            Check::Failed(m) => Check::Failed(m),
            other => other,
        })
    })
    .await
}
