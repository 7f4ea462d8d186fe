//! Kubernetes connections: from a cluster resource's own attributes (endpoint,
//! CA, native EKS token) or from `[kubernetes] kubeconfig`/`context`; and the
//! object calls slipway makes (server-side apply as `slipway`, get, list, delete).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};

use crate::providers::{Ctx, ProviderError};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "slipway";

/// Where the objects of a resource live.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// An EKS cluster's `connection` attribute: name, endpoint, CA, region.
    Eks {
        name: String,
        endpoint: String,
        ca: String,
        region: String,
    },
    /// `[kubernetes] kubeconfig = ..., context = ...` of the stack.
    Kubeconfig { path: String, context: Option<String> },
}

impl Target {
    fn key(&self) -> String {
        match self {
            Target::Eks { endpoint, .. } => endpoint.clone(),
            Target::Kubeconfig { path, context } => format!("{path}#{}", context.as_deref().unwrap_or("")),
        }
    }
}

/// The target of a config: its `cluster` connection, else the stack's kubeconfig.
pub fn target(ctx: &Ctx, config: &Value) -> Result<Target, ProviderError> {
    // Point every cluster at another API server (an emulator, a tunnel), the
    // way AWS_ENDPOINT_URL points the AWS SDK elsewhere.
    if let Ok(path) = std::env::var("SLIPWAY_KUBECONFIG_OVERRIDE") {
        if !path.is_empty() {
            return Ok(Target::Kubeconfig { path, context: None });
        }
    }
    if let Some(c) = config.get("cluster").filter(|c| !c.is_null()) {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let t = Target::Eks {
            name: s("name"),
            endpoint: s("endpoint"),
            ca: s("certificate_authority"),
            region: s("region"),
        };
        if let Target::Eks { endpoint, .. } = &t {
            if endpoint.is_empty() {
                return Err(ProviderError::new(
                    "`cluster` must be an EKS cluster's connection, e.g. \"${eks_cluster.main.connection}\"",
                ));
            }
        }
        return Ok(t);
    }
    if let Some((path, context)) = &ctx.kubernetes {
        return Ok(Target::Kubeconfig {
            path: path.clone(),
            context: context.clone(),
        });
    }
    // As kubectl does: $KUBECONFIG, else ~/.kube/config.
    let path = std::env::var("KUBECONFIG").ok().filter(|p| !p.is_empty()).or_else(|| {
        std::env::var("HOME")
            .ok()
            .map(|h| format!("{h}/.kube/config"))
            .filter(|p| Path::new(p).exists())
    });
    match path {
        Some(path) => Ok(Target::Kubeconfig { path, context: None }),
        None => Err(ProviderError::new(
            "no Kubernetes cluster: set `cluster = \"${eks_cluster.NAME.connection}\"`, a [kubernetes] kubeconfig in the stack, or KUBECONFIG",
        )),
    }
}

/// Clients by target, each with when it was made (EKS tokens live 15 minutes).
#[derive(Default)]
pub struct ClientCache {
    clients: tokio::sync::Mutex<HashMap<String, (kube::Client, Instant)>>,
}

const TOKEN_REFRESH: Duration = Duration::from_secs(10 * 60);

/// A client for `target`, made once and remade before its token expires.
pub async fn client(ctx: &Ctx, target: &Target) -> Result<kube::Client, ProviderError> {
    let mut cache = ctx.kube.clients.lock().await;
    if let Some((c, made)) = cache.get(&target.key()) {
        if made.elapsed() < TOKEN_REFRESH {
            return Ok(c.clone());
        }
    }
    let config = match target {
        Target::Kubeconfig { path, context } => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| ProviderError::new(format!("cannot read kubeconfig {path}: {e}")))?;
            let opts = KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| ProviderError::new(format!("kubeconfig {path}: {e}")))?
        }
        Target::Eks {
            name,
            endpoint,
            ca,
            region,
        } => {
            let cred = crate::providers::aws::eks::token::exec_credential_for(name, Some(region.clone()), None)
                .await
                .map_err(ProviderError::new)?;
            let token = cred["status"]["token"].as_str().unwrap_or_default().to_string();
            let kc: Kubeconfig = serde_json::from_value(json!({
                "clusters": [{ "name": name, "cluster": { "server": endpoint, "certificate-authority-data": ca } }],
                "users": [{ "name": name, "user": { "token": token } }],
                "contexts": [{ "name": name, "context": { "cluster": name, "user": name } }],
                "current-context": name,
            }))
            .map_err(|e| ProviderError::new(format!("cluster {name}: {e}")))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ProviderError::new(format!("cluster {name}: {e}")))?
        }
    };
    let c = kube::Client::try_from(config).map_err(|e| ProviderError::new(format!("Kubernetes client: {e}")))?;
    cache.insert(target.key(), (c.clone(), Instant::now()));
    Ok(c)
}

/// The API resource of an object (`apiVersion`, `kind`) with its plural.
pub fn resource_of(obj: &Value) -> Result<(ApiResource, bool), ProviderError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (plural, namespaced) = super::table::plural_of(api_version, kind).ok_or_else(|| {
        ProviderError::new(format!(
            "slipway does not know the Kubernetes kind {api_version}/{kind}"
        ))
    })?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    };
    Ok((
        ApiResource {
            group,
            version,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
        },
        namespaced,
    ))
}

fn api_for(client: &kube::Client, obj: &Value) -> Result<(Api<DynamicObject>, String), ProviderError> {
    let (ar, namespaced) = resource_of(obj)?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api = if namespaced {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    Ok((api, name))
}

/// "Deployment app-a/web" for messages.
pub fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn kerr(what: String) -> impl FnOnce(kube::Error) -> ProviderError {
    move |e| match e {
        kube::Error::Api(s) => ProviderError::new(format!("{what}: {} ({}, HTTP {})", s.message, s.reason, s.code)),
        other => ProviderError::new(format!("{what}: {other}")),
    }
}

/// Server-side apply `obj` (create or update) with force, as `slipway`.
pub async fn apply(client: &kube::Client, obj: &Value) -> Result<Value, ProviderError> {
    let (api, name) = api_for(client, obj)?;
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let out = api
        .patch(&name, &pp, &Patch::Apply(obj))
        .await
        .map_err(kerr(format!("applying {}", describe(obj))))?;
    serde_json::to_value(out).map_err(|e| ProviderError::new(e.to_string()))
}

/// The live object, or `None`.
pub async fn get(client: &kube::Client, obj: &Value) -> Result<Option<Value>, ProviderError> {
    let (api, name) = api_for(client, obj)?;
    let got = api
        .get_opt(&name)
        .await
        .map_err(kerr(format!("reading {}", describe(obj))))?;
    got.map(serde_json::to_value)
        .transpose()
        .map_err(|e| ProviderError::new(e.to_string()))
}

/// Delete the object; gone already is fine.
pub async fn delete(client: &kube::Client, obj: &Value) -> Result<(), ProviderError> {
    let (api, name) = api_for(client, obj)?;
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(kerr(format!("deleting {}", describe(obj)))(e)),
    }
}

/// Objects of a kind in a namespace matching a label selector.
pub async fn list(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    ns: &str,
    selector: &str,
) -> Result<Vec<Value>, ProviderError> {
    let probe = json!({"apiVersion": api_version, "kind": kind, "metadata": {"namespace": ns, "name": ""}});
    let (api, _) = api_for(client, &probe)?;
    let got = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(kerr(format!("listing {kind} in {ns}")))?;
    got.items
        .into_iter()
        .map(|o| serde_json::to_value(o).map_err(|e| ProviderError::new(e.to_string())))
        .collect()
}
