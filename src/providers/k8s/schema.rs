//! What a Kubernetes kind's config may hold: the config types of the kinds
//! that render several objects, and the check of a rendered object against
//! its k8s-openapi type (an unknown field is one that does not come back).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::path::PathSeg;
use crate::providers::SchemaError;

pub fn err(path: Vec<PathSeg>, message: impl Into<String>) -> SchemaError {
    SchemaError::at(path, message.into())
}

pub fn field(f: &str) -> PathSeg {
    PathSeg::Field(f.into())
}

pub const COMMON: &[&str] = &["cluster", "name", "labels", "annotations"];

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AppConfig {
    /// The cluster: `"${eks_cluster.NAME.connection}"`, a lookup's, or another stack's output (default: the stack's kubeconfig).
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub cluster: Option<Value>,
    /// The Deployment's and Service's name (default: the resource's name, `_` -> `-`).
    #[serde(default)]
    pub name: Option<String>,
    /// The namespace it runs in.
    pub namespace: String,
    /// The container image, e.g. `registry.gitlab.com/team/api:${var.image_tag}`.
    pub image: String,
    /// The port the container listens on.
    pub port: u16,
    /// Pods to run (left to the HPA under `autoscale`).
    #[serde(default = "two")]
    pub replicas: u32,
    /// e.g. `250m`.
    pub cpu_request: String,
    /// e.g. `256Mi`.
    pub memory_request: String,
    /// At least the request.
    pub cpu_limit: String,
    /// At least the request.
    pub memory_limit: String,
    /// The HTTP path of the readiness and liveness probes; starts with `/`.
    pub health_path: String,
    /// Environment variables (sensitive variables stay out of plans and state).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The image pull Secret's name (a `registry_secret`'s).
    #[serde(default)]
    pub pull_secret: Option<String>,
    /// internal (ClusterIP), nodeport, loadbalancer or ingress.
    #[serde(default = "internal")]
    pub expose: String,
    /// With `expose = "nodeport"`: 30000-32767 (an ALB target group can point at it).
    #[serde(default)]
    pub node_port: Option<u16>,
    /// With `expose = "ingress"`: the Ingress host.
    #[serde(default)]
    pub host: Option<String>,
    /// With `expose = "ingress"`: the IngressClass.
    #[serde(default)]
    pub ingress_class: Option<String>,
    /// An HPA: `{ min, max, cpu_percent = 70 }`.
    #[serde(default)]
    pub autoscale: Option<Autoscale>,
    /// A request made after the rollout, through the API server's service proxy.
    #[serde(default)]
    pub check: Option<AppCheck>,
    /// Labels on every object the app renders.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations on every object the app renders.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `check = { path = "/healthz", expect_status = 200, timeout = "60s", on_failure = "rollback" }`
#[derive(Debug, Deserialize, Serialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppCheck {
    pub path: String,
    #[serde(default = "ok_status")]
    pub expect_status: u16,
    #[serde(default = "sixty_seconds")]
    pub timeout: String,
    /// "fail" (the default) or "rollback": re-apply the previous manifests.
    #[serde(default = "fail")]
    pub on_failure: String,
}

fn ok_status() -> u16 {
    200
}
fn sixty_seconds() -> String {
    "60s".into()
}
fn fail() -> String {
    "fail".into()
}

#[derive(Debug, Deserialize, Serialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    #[serde(default = "seventy")]
    pub cpu_percent: u32,
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CiDeployerConfig {
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub cluster: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    /// Namespaces CI may roll out to.
    pub namespaces: Vec<String>,
    /// Where the ServiceAccount lives (default: the first namespace).
    #[serde(default)]
    pub service_account_namespace: Option<String>,
    /// A Kubernetes group also bound (map an IAM role to it with an
    /// eks_access_entry's kubernetes_groups); default the name.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RegistrySecretConfig {
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    pub cluster: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    pub namespaces: Vec<String>,
    /// e.g. registry.gitlab.com
    pub registry: String,
    pub username: String,
    /// The environment variable holding the password or token.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Or a file holding it.
    #[serde(default)]
    pub password_file: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

// ------------------------------------------------------------ rendered objects

/// Round-trip an object through its k8s-openapi type: unknown fields are
/// the ones that do not come back.
pub fn typed_check(obj: &Value) -> Result<(), (Vec<PathSeg>, String)> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, core::v1 as core, networking::v1 as net, rbac::v1 as rbac,
    };
    fn rt<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Result<Value, (Vec<PathSeg>, String)> {
        let t: T = serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            (
                crate::path::path_segments(e.path()),
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
