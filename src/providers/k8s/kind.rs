//! A Kubernetes kind's lifecycle: check, complete, refresh by projection,
//! and create/update/delete by server-side apply as `slipway`. The rendered
//! objects are part of the inputs (`manifests`), and refresh projects each
//! live object onto the fields slipway set, so server defaults and status
//! never show as differences.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::client::{self, target};
use super::project::{id_of, identity, project};
use super::render::{k8s_name, password, read_docker_config, str_field};
use super::rollout::wait_rollout;
use super::schema::{err, field, typed_check, AppConfig, CiDeployerConfig, RegistrySecretConfig, COMMON};
use super::table::{plural_of, K8sKind, Shape};
use crate::path::PathSeg;
use crate::providers::common::secret_hash;
use crate::providers::{Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError, StackView};

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
                            suggestion: crate::path::did_you_mean(k, ["manifest", "cluster"]).map(str::to_string),
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
                            suggestion: crate::path::did_you_mean(k, allowed.iter().copied()).map(str::to_string),
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
