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
    /// An EKS cluster of this stack, by name. Its endpoint and CA are read
    /// from DescribeCluster when the client is made, never taken from the
    /// stack or the state.
    Eks { name: String },
    /// A kubeconfig file: the operator's (`--kubeconfig`, KUBECONFIG,
    /// ~/.kube/config: `trusted`) or one a stack names in `[kubernetes]`,
    /// which may not run plugins, read token files or skip TLS checks.
    Kubeconfig {
        path: String,
        context: Option<String>,
        trusted: bool,
    },
}

impl Target {
    fn key(&self) -> String {
        match self {
            Target::Eks { name } => format!("eks:{name}"),
            Target::Kubeconfig { path, context, .. } => format!("{path}#{}", context.as_deref().unwrap_or("")),
        }
    }
}

/// The target of a config: the operator's `--kubeconfig`, else its
/// `cluster` connection, else the stack's kubeconfig, else KUBECONFIG.
pub fn target(ctx: &Ctx, config: &Value) -> Result<Target, ProviderError> {
    if let Some(path) = &crate::operator::get().kubeconfig {
        return Ok(Target::Kubeconfig {
            path: path.display().to_string(),
            context: None,
            trusted: true,
        });
    }
    // Point every cluster at another API server (an emulator, a tunnel), the
    // way AWS_ENDPOINT_URL points the AWS SDK elsewhere.
    if let Ok(path) = std::env::var("SLIPWAY_KUBECONFIG_OVERRIDE") {
        if !path.is_empty() {
            return Ok(Target::Kubeconfig {
                path,
                context: None,
                trusted: true,
            });
        }
    }
    if let Some(c) = config.get("cluster").filter(|c| !c.is_null()) {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(ProviderError::new(
                "`cluster` must be an EKS cluster's connection, e.g. \"${eks_cluster.main.connection}\"",
            ));
        }
        return Ok(Target::Eks { name: name.to_string() });
    }
    if let Some((path, context)) = &ctx.kubernetes {
        return Ok(Target::Kubeconfig {
            path: path.clone(),
            context: context.clone(),
            trusted: false,
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
        Some(path) => Ok(Target::Kubeconfig {
            path,
            context: None,
            trusted: true,
        }),
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
/// It retries 429, 503 and 504 itself (kube's default policy).
pub async fn client(ctx: &Ctx, target: &Target) -> Result<kube::Client, ProviderError> {
    client_with(ctx, target, true).await
}

/// A client that does not retry 429/503/504 itself: for a post-deploy
/// check, where a 503 is the app's answer (kube's default policy would
/// retry it for minutes, past the check's own timeout).
pub async fn client_without_retry(ctx: &Ctx, target: &Target) -> Result<kube::Client, ProviderError> {
    client_with(ctx, target, false).await
}

async fn client_with(ctx: &Ctx, target: &Target, retry: bool) -> Result<kube::Client, ProviderError> {
    let key = format!("{}{}", target.key(), if retry { "" } else { "#no-retry" });
    let mut cache = ctx.kube.clients.lock().await;
    if let Some((c, made)) = cache.get(&key) {
        if made.elapsed() < TOKEN_REFRESH {
            return Ok(c.clone());
        }
    }
    let config = match target {
        Target::Kubeconfig { path, context, trusted } => {
            let kc = if *trusted {
                Kubeconfig::read_from(path)
                    .map_err(|e| ProviderError::new(format!("cannot read kubeconfig {path}: {e}")))?
            } else {
                stack_kubeconfig(path)?
            };
            let opts = KubeConfigOptions {
                context: context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| ProviderError::new(format!("kubeconfig {path}: {e}")))?
        }
        Target::Eks { name } => eks_config(ctx, name).await?,
    };
    let mut config = config;
    config.default_retry = retry;
    let c = kube::Client::try_from(config).map_err(|e| ProviderError::new(format!("Kubernetes client: {e}")))?;
    cache.insert(key, (c.clone(), Instant::now()));
    Ok(c)
}

/// The connection to one of this stack's EKS clusters: endpoint and CA as
/// DescribeCluster gives them now, and a token signed for that cluster only.
async fn eks_config(ctx: &Ctx, name: &str) -> Result<kube::Config, ProviderError> {
    if !ctx.clusters.iter().any(|c| c == name) {
        return Err(ProviderError::new(format!(
            "EKS cluster {name:?} is not an eks_cluster of this stack or its state; slipway makes EKS tokens \
             only for those (write `cluster = \"${{eks_cluster.NAME.connection}}\"`, or give the operator's \
             --kubeconfig)"
        )));
    }
    let aws = ctx.aws().await?;
    let live = crate::providers::aws::eks::wait::describe_cluster(&aws.eks, name)
        .await?
        .ok_or_else(|| ProviderError::new(format!("EKS cluster {name:?} does not exist (DescribeCluster)")))?;
    let endpoint = live.endpoint().unwrap_or_default();
    let ca = live.certificate_authority().and_then(|c| c.data()).unwrap_or_default();
    check_eks_endpoint(name, endpoint, ca)?;
    let cred = crate::providers::aws::eks::token::exec_credential_for(name, ctx.region.clone(), None)
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
        .map_err(|e| ProviderError::new(format!("cluster {name}: {e}")))
}

/// An EKS endpoint a token may go to: HTTPS, with the cluster's own CA.
fn check_eks_endpoint(name: &str, endpoint: &str, ca: &str) -> Result<(), ProviderError> {
    if !endpoint.starts_with("https://") {
        return Err(ProviderError::new(format!(
            "EKS cluster {name:?} reports the endpoint {endpoint:?}; slipway sends tokens only over https://"
        )));
    }
    if ca.trim().is_empty() {
        return Err(ProviderError::new(format!(
            "EKS cluster {name:?} reports no certificate authority; slipway connects only with the cluster's own CA"
        )));
    }
    Ok(())
}

/// A kubeconfig a stack names: read as data, with every setting that would
/// run a program, read a file outside the repository or turn TLS checks off
/// refused, naming the setting.
fn stack_kubeconfig(path: &str) -> Result<Kubeconfig, ProviderError> {
    let real = crate::operator::confined_file(path, "[kubernetes] kubeconfig").map_err(ProviderError::new)?;
    let kc =
        Kubeconfig::read_from(&real).map_err(|e| ProviderError::new(format!("cannot read kubeconfig {path}: {e}")))?;
    let refuse = |what: &str, setting: &str, why: &str| {
        ProviderError::new(format!(
            "kubeconfig {path} (named by the stack's [kubernetes]): {what} sets `{setting}`, which {why}; \
             a stack's kubeconfig may not; give the operator's --kubeconfig (or KUBECONFIG) instead"
        ))
    };
    let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
    let confined = |what: &str, setting: &str, file: &str| -> Result<(), ProviderError> {
        let p = dir.join(file);
        crate::operator::confined_file(
            &p.display().to_string(),
            &format!("kubeconfig {path}: {what} `{setting}`"),
        )
        .map(|_| ())
        .map_err(ProviderError::new)
    };
    for u in &kc.auth_infos {
        let what = format!("user {:?}", u.name);
        let Some(a) = &u.auth_info else { continue };
        if a.exec.is_some() {
            return Err(refuse(&what, "exec", "runs a command"));
        }
        if a.auth_provider.is_some() {
            return Err(refuse(&what, "auth-provider", "may run a command"));
        }
        if a.token_file.is_some() {
            return Err(refuse(&what, "tokenFile", "sends a file as a bearer token"));
        }
        for (setting, file) in [
            ("client-certificate", &a.client_certificate),
            ("client-key", &a.client_key),
        ] {
            if let Some(f) = file {
                confined(&what, setting, f)?;
            }
        }
    }
    for c in &kc.clusters {
        let what = format!("cluster {:?}", c.name);
        let Some(cl) = &c.cluster else { continue };
        if cl.insecure_skip_tls_verify == Some(true) {
            return Err(refuse(&what, "insecure-skip-tls-verify", "turns TLS verification off"));
        }
        if let Some(f) = &cl.certificate_authority {
            confined(&what, "certificate-authority", f)?;
        }
    }
    Ok(kc)
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

/// The code of an error a poll may outlive: the connection failed, the API
/// server is overloaded or restarting (429, 5xx), or it did not take a token
/// yet (401: a new access entry propagating, a token being remade).
pub const TRANSIENT: &str = "KubernetesTransient";

fn kerr(what: String) -> impl FnOnce(kube::Error) -> ProviderError {
    move |e| {
        let (message, transient) = match &e {
            kube::Error::Api(s) => (
                format!("{what}: {} ({}, HTTP {})", s.message, s.reason, s.code),
                matches!(s.code, 401 | 429 | 500 | 502 | 503 | 504),
            ),
            other => (format!("{what}: {other}"), true),
        };
        ProviderError {
            message,
            code: transient.then(|| TRANSIENT.to_string()),
        }
    }
}

/// A poll's answer when the read failed: a transient error is one more
/// reason to wait (the last status says it), any other ends the wait.
pub fn pending_if_transient<T>(
    r: Result<crate::providers::wait::Check<T>, ProviderError>,
) -> Result<crate::providers::wait::Check<T>, ProviderError> {
    match r {
        Err(e) if e.is(&[TRANSIENT]) => Ok(crate::providers::wait::Check::Pending(format!(
            "{} (retrying)",
            e.message
        ))),
        other => other,
    }
}

/// Server-side apply `obj` (create or update) with force, as `slipway`.
pub async fn apply(client: &kube::Client, obj: &Value) -> Result<Value, ProviderError> {
    apply_as(client, obj, FIELD_MANAGER).await
}

/// Server-side apply as another field manager (a field's second owner, so
/// slipway can let go of it without the apiserver removing it).
pub async fn apply_as(client: &kube::Client, obj: &Value, manager: &str) -> Result<Value, ProviderError> {
    let (api, name) = api_for(client, obj)?;
    let pp = PatchParams::apply(manager).force();
    let out = api
        .patch(&name, &pp, &Patch::Apply(obj))
        .await
        .map_err(kerr(format!("applying {}", describe(obj))))?;
    serde_json::to_value(out).map_err(|e| ProviderError::new(e.to_string()))
}

/// Apply a JSON patch (RFC 6902) to a live object as `slipway`: how apply
/// removes what another manager added (its `test` ops make a changed list
/// fail the patch instead of losing the wrong item).
pub async fn json_patch(client: &kube::Client, obj: &Value, ops: &Value) -> Result<(), ProviderError> {
    let (ar, namespaced) = resource_of(obj)?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    let url = if namespaced {
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        format!(
            "{base}/namespaces/{ns}/{}/{name}?fieldManager={FIELD_MANAGER}",
            ar.plural
        )
    } else {
        format!("{base}/{}/{name}?fieldManager={FIELD_MANAGER}", ar.plural)
    };
    let body = serde_json::to_vec(ops).map_err(|e| ProviderError::new(e.to_string()))?;
    let req = http::Request::patch(url)
        .header("Content-Type", "application/json-patch+json")
        .body(body)
        .map_err(|e| ProviderError::new(e.to_string()))?;
    client
        .request::<Value>(req)
        .await
        .map_err(kerr(format!("removing what others added to {}", describe(obj))))?;
    Ok(())
}

/// Set labels on a live object (a merge patch: nothing else changes, and no
/// field ownership is taken); a missing object is left alone.
pub async fn label(
    client: &kube::Client,
    obj: &Value,
    labels: &serde_json::Map<String, Value>,
) -> Result<(), ProviderError> {
    let (api, name) = api_for(client, obj)?;
    let patch = json!({ "metadata": { "labels": labels } });
    match api
        .patch(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(kerr(format!("labeling {}", describe(obj)))(e)),
    }
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

/// How long a delete waits for the object to be gone (finalizers run, a
/// namespace empties) before it fails.
pub const DELETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Why a live object is not gone yet: Terminating, and what holds it.
pub fn terminating(live: &Value) -> String {
    let finalizers: Vec<&str> = live
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let phase = live.pointer("/status/phase").and_then(Value::as_str);
    match (finalizers.is_empty(), phase) {
        (false, _) => format!("Terminating, held by finalizers {}", finalizers.join(", ")),
        (true, Some(p)) => format!("{p} (its contents are being deleted)"),
        (true, None) => "Terminating".to_string(),
    }
}

/// Delete the object and wait until the apiserver no longer has it: its
/// finalizers have run and, for a namespace, everything in it is gone. A
/// next apply then never meets a Terminating object of the same name.
pub async fn delete_and_wait(client: &kube::Client, obj: &Value) -> Result<(), ProviderError> {
    delete(client, obj).await?;
    let policy = crate::providers::wait::Policy {
        timeout: DELETE_TIMEOUT,
        first: std::time::Duration::from_millis(200),
        max: std::time::Duration::from_secs(5),
    };
    crate::providers::wait::wait_for(&format!("{} to be deleted", describe(obj)), policy, || async {
        pending_if_transient(get(client, obj).await.map(|got| match got {
            None => crate::providers::wait::Check::Done(()),
            Some(live) => crate::providers::wait::Check::Pending(terminating(&live)),
        }))
    })
    .await
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
