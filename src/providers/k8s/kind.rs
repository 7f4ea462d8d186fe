//! A Kubernetes kind's lifecycle: check, complete, refresh by projection,
//! and create/update/delete by server-side apply as `slipway`. The rendered
//! objects are part of the inputs (`manifests`), and refresh projects each
//! live object onto the fields slipway set, so server defaults and status
//! never show as differences.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::client::{self, target};
use super::project::{id_of, identity, immutable_changes, project};
use super::render::{address_label, k8s_name, password, read_docker_config, str_field, ADDRESS_LABEL, STACK_LABEL};
use super::rollout::wait_rollout;
use super::schema::{err, field, typed_check, AppConfig, CiDeployerConfig, RegistrySecretConfig, COMMON};
use super::table::{plural_of, K8sKind, Shape};
use crate::path::PathSeg;
use crate::providers::common::secret_hash;
use crate::providers::{
    generic_diff, Ctx, Diff, Live, ProviderError, ReadRequest, ResourceKind, SchemaError, StackView,
};

/// Treat a Secret's values as sensitive from now on: its `data` (as written,
/// base64, and decoded) and `stringData`. The state and saved plans then hold
/// keyed hashes of them, and plans, logs and errors show `(sensitive value)`.
pub fn trace_secret_values(secret: &Value) {
    use base64::Engine;
    let mut found = Vec::new();
    for key in ["data", "stringData"] {
        for v in secret
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
        {
            let Some(text) = v.as_str() else { continue };
            found.push(text.to_string());
            if key == "data" {
                if let Some(plain) = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                {
                    found.push(plain);
                }
            }
        }
    }
    crate::sensitive::add(found);
}

/// Why a `cluster` value may not be used, if it may not: it must be a
/// reference to an eks_cluster of the stack (`${eks_cluster.NAME.connection}`),
/// so a connection and its token only ever go where AWS says that cluster
/// is; a literal endpoint is the operator's to give (`--kubeconfig`).
pub(crate) fn untrusted_cluster(c: &Value, view: &StackView<'_>) -> Option<String> {
    if crate::operator::get().kubeconfig.is_some() {
        return None; // every object goes to the operator's kubeconfig
    }
    use crate::stack::template::{parse, Part, Ref};
    let parts = c.as_str().and_then(|s| parse(s).ok()).unwrap_or_default();
    let ok = match parts.as_slice() {
        [Part::Ref(Ref::Attr { attr, path, .. }, _)] => {
            attr == "connection" && path.is_empty() && view.target_of(c).is_some_and(|(_, k, _)| k == "eks_cluster")
        }
        // A cluster found by name, or one another stack of the repository
        // made (its output): connected to by name, through DescribeCluster.
        [Part::Ref(Ref::Lookup { kind, attr, path, .. }, _)] => {
            (kind == "eks_cluster" && attr == "connection" && path.is_empty()) || kind == "stack"
        }
        _ => false,
    };
    (!ok).then(|| {
        "`cluster` must be an eks_cluster of this stack, written \"${eks_cluster.NAME.connection}\", an \
         eks_cluster lookup's (\"${lookup.eks_cluster.NAME.connection}\") or another stack's output \
         (\"${lookup.stack.NAME.OUTPUT}\"); slipway takes the endpoint and CA from DescribeCluster. A literal \
         cluster table is refused: to reach another API server, the operator passes --kubeconfig"
            .to_string()
    })
}

#[async_trait]
impl ResourceKind for K8sKind {
    fn name(&self) -> &'static str {
        self.name
    }

    fn aws_permissions(&self) -> Option<crate::providers::aws::permissions::Permissions> {
        // The connection to an EKS cluster: its endpoint and CA. The token is a
        // presigned sts:GetCallerIdentity, which needs no permission.
        Some(crate::providers::aws::permissions::Permissions {
            read: &["eks:DescribeCluster"],
            ..crate::providers::aws::permissions::Permissions::NONE
        })
    }

    fn config_schema(&self) -> Value {
        let of = |s: schemars::Schema| serde_json::to_value(s).unwrap_or_default();
        let strings = serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}});
        let mut props = serde_json::Map::new();
        props.insert(
            "cluster".into(),
            serde_json::json!({"type": "string", "description": "\"${eks_cluster.NAME.connection}\", a lookup's, or another stack's output"}),
        );
        props.insert("labels".into(), strings.clone());
        props.insert("annotations".into(), strings);
        match self.shape {
            Shape::App => return of(schemars::schema_for!(AppConfig)),
            Shape::CiDeployer => return of(schemars::schema_for!(CiDeployerConfig)),
            Shape::RegistrySecret => return of(schemars::schema_for!(RegistrySecretConfig)),
            Shape::Manifest => {
                props.insert(
                    "manifest".into(),
                    serde_json::json!({"type": "object", "required": ["apiVersion", "kind", "metadata"],
                        "description": "the whole object, as kubectl apply would take it"}),
                );
                return serde_json::json!({"type": "object", "properties": props,
                    "required": ["manifest"], "additionalProperties": false});
            }
            Shape::Object { kind, body, .. } => {
                props.insert(
                    "name".into(),
                    serde_json::json!({"type": "string", "description": format!("the {kind}'s name (default: the resource's name)")}),
                );
                if self.namespaced() {
                    props.insert("namespace".into(), serde_json::json!({"type": "string"}));
                }
                for (c, k) in body {
                    let t = if ["rules", "subjects", "imagePullSecrets"].contains(k) {
                        "array"
                    } else {
                        "object"
                    };
                    props.insert(
                        c.to_string(),
                        serde_json::json!({"type": t, "description": format!("the {kind}'s `{k}`, as in its manifest")}),
                    );
                }
            }
        }
        serde_json::json!({"type": "object", "properties": props, "additionalProperties": false})
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        let Some(o) = config.as_object() else {
            return Err(err(vec![], "a table is needed"));
        };
        match self.shape {
            Shape::App => {
                crate::providers::check_schema::<AppConfig>(config)?;
                if let Some(c) = config.get("check").filter(|c| !c.is_null()) {
                    super::check::validate(c)?;
                }
            }
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
                if kind == Some("Secret") {
                    trace_secret_values(m);
                }
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
        // Point into the config where the object came from the config as written.
        let config_path = |path: &[PathSeg]| -> Vec<PathSeg> {
            match (self.shape, path.first()) {
                (Shape::Object { body, .. }, Some(PathSeg::Field(f))) => body
                    .iter()
                    .find(|(_, k)| k == f)
                    .map(|(c, _)| {
                        let mut p = vec![field(c)];
                        p.extend(path[1..].iter().cloned());
                        p
                    })
                    .or_else(|| match f.as_str() {
                        "metadata" => path.get(1).map(|p| vec![p.clone()]),
                        _ => None,
                    })
                    .unwrap_or_default(),
                (Shape::Manifest, _) => {
                    let mut p = vec![field("manifest")];
                    p.extend(path.iter().cloned());
                    p
                }
                (Shape::App, _) => vec![field(app_field(path))],
                _ => vec![],
            }
        };
        for obj in &objs {
            if let Err((path, message)) = typed_check(obj) {
                return Err(err(config_path(&path), message));
            }
            if let Some((path, message)) = super::rules::problems(obj).into_iter().next() {
                return Err(err(config_path(&path), message));
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

    fn check_stack(&self, view: &StackView<'_>) -> Vec<crate::providers::StackIssue> {
        let mine = view.resources.iter().filter(|(_, k, _)| *k == self.name);
        let mut issues = Vec::new();
        for (address, _, config) in mine {
            let mut issue = |f: &str, message: String| {
                issues.push(crate::providers::StackIssue {
                    address: address.to_string(),
                    path: vec![field(f)],
                    message,
                })
            };
            if let Some(why) = config.get("cluster").and_then(|c| untrusted_cluster(c, view)) {
                issue("cluster", why);
            }
            if let Some(why) = str_field(config, "password_env")
                .filter(|v| !v.contains("${"))
                .and_then(crate::operator::env_refused)
            {
                issue("password_env", why);
            }
            if let Some(why) = str_field(config, "password_file")
                .filter(|v| !v.contains("${"))
                .and_then(|p| crate::operator::file_refused(p, "password_file"))
            {
                issue("password_file", why);
            }
        }
        issues
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

    /// An object whose immutable field changed (a Deployment's selector, a
    /// RoleBinding's roleRef, a Secret's type) cannot be updated: the
    /// resource is replaced, naming the field, old objects first (the new
    /// ones have the same names).
    fn diff(&self, prior: &Value, desired: &Value) -> Diff {
        let mut d = generic_diff(self, prior, desired);
        if d.changed.iter().any(|f| f == "manifests") {
            let list = |v: &Value| {
                v.get("manifests")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            d.forces_replace.extend(immutable_changes(&list(prior), &list(desired)));
        }
        d
    }

    fn check_local_inputs(&self, config: &Value) -> Result<(), SchemaError> {
        if self.shape != Shape::RegistrySecret || config.to_string().contains("${") {
            return Ok(());
        }
        let f = if config.get("password_env").is_some() {
            "password_env"
        } else {
            "password_file"
        };
        password(config).map(|_| ()).map_err(|m| err(vec![field(f)], m))
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        match self.shape {
            Shape::RegistrySecret => &["id", "name", "namespace", "manifests", "password_hash"],
            Shape::Object { .. } if !self.namespaced() => &["id", "name", "manifests"],
            _ => &["id", "name", "namespace", "manifests"],
        }
    }

    /// The name and namespace are known at plan time from the rendered
    /// objects (a new namespace's name can be used by what goes in it).
    fn planned_attributes(&self, desired: &Value, prior: Option<&Value>) -> Value {
        let mut out = crate::providers::planned_from(self.computed_attributes(), desired, prior);
        if let (Some(objs), Some(o)) = (desired.get("manifests").and_then(Value::as_array), out.as_object_mut()) {
            let known = super::project::identity_of("", objs);
            for k in ["name", "namespace"] {
                let derived = known.get(k).filter(|v| v.as_str() != Some(crate::value::UNKNOWN));
                if let (Some(v), None) = (derived, desired.get(k)) {
                    o.insert(k.into(), v.clone());
                }
            }
        }
        out
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
                if !m.is_object() {
                    // Gone at the last read (an imported resource's missing objects).
                    projected.push(Value::Null);
                    continue;
                }
                match client::get(&client, m).await? {
                    Some(l) => {
                        if l.get("kind").and_then(Value::as_str) == Some("Secret") {
                            // What the cluster holds now is as secret as what the stack says.
                            trace_secret_values(&l);
                        }
                        if i == 0 && self.shape == Shape::RegistrySecret {
                            live_secret = Some(l.clone());
                        }
                        let mut p = project(m, &l);
                        // What another manager added inside it shows too.
                        super::added::show(&mut p, &super::added::additions(m, &l));
                        projected.push(p);
                    }
                    None if i == 0 => first_gone = true,
                    None => projected.push(Value::Null),
                }
            }
            if first_gone {
                out.push(None);
                continue;
            }
            let identity = super::project::identity_of(r.id, &projected);
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
            let attributes = crate::providers::common::with_attrs(&inputs, identity);
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

    async fn delete(&self, ctx: &Ctx, address: &str, _id: &str, attributes: &Value) -> Result<(), ProviderError> {
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
            delete_if_ours(ctx, address, &client, m).await?;
        }
        Ok(())
    }

    async fn check_create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<(), ProviderError> {
        let (Ok(t), Ok(objs)) = (target(ctx, config), self.render(&ctx.stack, address, config, false)) else {
            return Ok(());
        };
        let Ok(client) = client::client(ctx, &t).await else {
            return Ok(());
        };
        for o in objs.iter().filter(|o| !crate::value::contains_unknown(&o["metadata"])) {
            if let Ok(Some(live)) = client::get(&client, o).await {
                if !is_ours(ctx, address, &live, false) {
                    return Err(ProviderError::new(not_ours(ctx, address, o, &live)));
                }
            }
        }
        Ok(())
    }

    async fn retag(&self, ctx: &Ctx, address: &str, live: &Live, owned_as: Option<&str>) -> Result<(), ProviderError> {
        let t = target(ctx, &live.inputs)?;
        let client = client::client(ctx, &t).await?;
        let objs: Vec<&Value> = live
            .inputs
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.is_object())
            .collect();
        if let Some(from) = owned_as {
            for o in &objs {
                if let Some(l) = client::get(&client, o).await? {
                    if owner(ctx, from, &l) == Owner::Foreign {
                        return Err(ProviderError::new(format!(
                            "{} is not this state's to move: {}; nothing was relabeled",
                            client::describe(o),
                            owner_text(ctx, from, &l)
                        )));
                    }
                }
            }
        }
        let mut labels = serde_json::Map::new();
        labels.insert(STACK_LABEL.into(), json!(ctx.stack));
        labels.insert(ADDRESS_LABEL.into(), json!(address_label(address)));
        if let Some(l) = &ctx.lineage {
            labels.insert(LINEAGE_LABEL.into(), json!(l));
        }
        for o in objs {
            client::label(&client, o, &labels).await?;
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
            // An object of this name that this resource did not make is never
            // taken over by applying over it.
            let tracked = old.iter().any(|p| p.is_object() && identity(p) == identity(o));
            if let Some(live) = client::get(&client, o).await? {
                if !is_ours(ctx, address, &live, tracked) {
                    return Err(ProviderError::new(not_ours(ctx, address, o, &live)));
                }
            }
            if let Some(min) = autoscaled(o, &objs) {
                hand_replicas_over(&client, &with_lineage(ctx, o), min).await?;
            }
            let live = client::apply(&client, &with_lineage(ctx, o)).await?;
            // What other managers added inside it (a sidecar, hostNetwork)
            // is not in the stack: take it out, as the plan said.
            let adds = super::added::additions(o, &live);
            if !adds.is_empty() {
                client::json_patch(&client, o, &super::added::removal(&adds)).await?;
            }
        }
        let keep: Vec<_> = objs.iter().map(identity).collect();
        // Objects rendered last time but not now go (entries gone already are null).
        for o in old
            .iter()
            .rev()
            .filter(|o| o.is_object() && !keep.contains(&identity(o)))
        {
            delete_if_ours(ctx, address, &client, o).await?;
        }
        for o in objs
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
        {
            wait_rollout(ctx, &t, o).await?;
        }
        if let Some(check) = config.get("check").filter(|c| self.shape == Shape::App && !c.is_null()) {
            if let Err(e) = super::check::run(ctx, &t, &objs, check).await {
                let rollback = check.get("on_failure").and_then(Value::as_str) == Some("rollback");
                if !rollback || old.iter().all(|o| !o.is_object()) {
                    return Err(e);
                }
                // Back to what the state holds, so the state stays true.
                for o in old.iter().filter(|o| o.is_object()) {
                    client::apply(&client, &with_lineage(ctx, o)).await?;
                }
                for o in old
                    .iter()
                    .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
                {
                    wait_rollout(ctx, &t, o).await?;
                }
                return Err(ProviderError::new(format!(
                    "{}; rolled back to the previous manifests (on_failure = \"rollback\"), which are rolled out",
                    e.message
                )));
            }
        }
        let inputs = self.complete(&ctx.stack, address, config);
        let id = id_of(&objs);
        let attributes = crate::providers::common::with_attrs(&inputs, super::project::identity_of(&id, &objs));
        Ok(Live { id, inputs, attributes })
    }
}

/// The field manager that holds a Deployment's `spec.replicas` while an HPA
/// scales it: slipway hands the field over before it stops setting it.
pub const REPLICAS_HANDOFF: &str = "slipway-replicas-handoff";

/// The HPA's `minReplicas` when `o` is a Deployment that one of `objs` (an
/// HPA) scales and that leaves `spec.replicas` out.
fn autoscaled(o: &Value, objs: &[Value]) -> Option<i64> {
    if o.get("kind").and_then(Value::as_str) != Some("Deployment") || o.pointer("/spec/replicas").is_some() {
        return None;
    }
    let name = o.pointer("/metadata/name")?;
    objs.iter()
        .find(|h| {
            h.get("kind").and_then(Value::as_str) == Some("HorizontalPodAutoscaler")
                && h.pointer("/spec/scaleTargetRef/name") == Some(name)
        })
        .map(|h| h.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1))
}

/// Turning autoscaling on must not scale the app down: when slipway stops
/// setting `spec.replicas`, the apiserver removes a field nobody else owns
/// and defaults it to 1 before the HPA acts. So the current count (the HPA's
/// minimum for a new Deployment) is first applied by a second field manager,
/// which keeps owning it until the HPA's controller takes it over.
async fn hand_replicas_over(client: &kube::Client, deployment: &Value, min: i64) -> Result<(), ProviderError> {
    let current = match client::get(client, deployment).await? {
        Some(live) => live.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(min),
        None => {
            // A new Deployment starts at the HPA's minimum, not at 1.
            let mut first = deployment.clone();
            first["spec"]["replicas"] = json!(min);
            client::apply(client, &first).await?;
            min
        }
    };
    let only_replicas = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment.pointer("/metadata/name"),
            "namespace": deployment.pointer("/metadata/namespace"),
        },
        "spec": { "replicas": current },
    });
    client::apply_as(client, &only_replicas, REPLICAS_HANDOFF).await?;
    Ok(())
}

/// The label naming the state that made an object (set at apply time, so
/// plans and projections never show it).
pub const LINEAGE_LABEL: &str = "slipway.dev/lineage";

fn label<'a>(live: &'a Value, key: &str) -> Option<&'a str> {
    live.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Who a live object of a name slipway renders belongs to, by its labels.
#[derive(Debug, PartialEq)]
enum Owner {
    /// This address of this state.
    Ours,
    /// This state, another address (before a move or import relabels it).
    OurStateElsewhere,
    /// This stack and address, made before lineages were recorded.
    Unrecorded,
    /// Another state, another stack, or no slipway at all.
    Foreign,
}

fn owner(ctx: &Ctx, address: &str, live: &Value) -> Owner {
    if label(live, STACK_LABEL) != Some(ctx.stack.as_str()) {
        return Owner::Foreign;
    }
    let here = label(live, ADDRESS_LABEL) == Some(address_label(address).as_str());
    match (label(live, LINEAGE_LABEL), ctx.lineage.as_deref()) {
        (Some(l), Some(mine)) if l == mine && here => Owner::Ours,
        (Some(l), Some(mine)) if l == mine => Owner::OurStateElsewhere,
        (None, _) if here => Owner::Unrecorded,
        _ => Owner::Foreign,
    }
}

/// Whether applying `address` may write over a live object: it is ours, or
/// the state already records it under this address and its labels say this
/// state (or this stack and address, before lineages were recorded) made it.
fn is_ours(ctx: &Ctx, address: &str, live: &Value, tracked: bool) -> bool {
    match owner(ctx, address, live) {
        Owner::Ours => true,
        Owner::OurStateElsewhere | Owner::Unrecorded => tracked,
        // Even when the state lists it: a state can be edited, labels are the proof.
        Owner::Foreign => false,
    }
}

/// Why an existing object is refused, naming who owns it and how to take it over.
fn not_ours(ctx: &Ctx, address: &str, obj: &Value, live: &Value) -> String {
    let what = client::describe(obj);
    let owner = owner_text(ctx, address, live);
    format!(
        "{what} already exists and {address} did not make it; it belongs to {owner}. \
         slipway never takes over an object it did not create: take it over deliberately with \
         `slipway import DIR {address} {}`, or give {address} another `name`",
        id_of(std::slice::from_ref(obj))
    )
}

/// Who a live object belongs to, by its labels, for messages.
fn owner_text(ctx: &Ctx, address: &str, live: &Value) -> String {
    match (
        label(live, STACK_LABEL),
        label(live, ADDRESS_LABEL),
        label(live, LINEAGE_LABEL),
    ) {
        (Some(s), Some(a), Some(l)) if s == ctx.stack && a == address_label(address) => {
            format!("this stack's {a} in another state (lineage {l}): another environment")
        }
        (Some(s), Some(a), l) => format!(
            "{a} of stack {s}{}",
            l.map(|l| format!(" (state lineage {l})")).unwrap_or_default()
        ),
        _ => "no slipway state: it carries no slipway labels (made by hand, kubectl or another tool)".into(),
    }
}

/// The object with this state's lineage among its labels.
fn with_lineage(ctx: &Ctx, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let (Some(l), Some(labels)) = (
        ctx.lineage.as_ref(),
        o.pointer_mut("/metadata/labels").and_then(Value::as_object_mut),
    ) {
        labels.insert(LINEAGE_LABEL.into(), json!(l));
    }
    o
}

/// Delete the live object only when it is `address`'s of this state; an
/// object another resource, state or tool now holds under that name stays.
/// An object no slipway state of this stack made (the state was edited to
/// point at it) fails the step, naming its owner, and stays.
async fn delete_if_ours(ctx: &Ctx, address: &str, client: &kube::Client, obj: &Value) -> Result<(), ProviderError> {
    match client::get(client, obj).await? {
        Some(live) => match owner(ctx, address, &live) {
            Owner::Ours | Owner::Unrecorded => client::delete_and_wait(client, obj).await,
            Owner::OurStateElsewhere => Ok(()),
            Owner::Foreign => Err(ProviderError::new(format!(
                "{} is not this state's to delete: {}. Nothing was deleted; if {address} no longer manages it, \
                 run `slipway state rm {address}`",
                client::describe(obj),
                owner_text(ctx, address, &live)
            ))),
        },
        None => Ok(()),
    }
}

/// The `app` field a path inside one of its rendered objects comes from.
fn app_field(path: &[PathSeg]) -> &'static str {
    let segs: Vec<String> = path
        .iter()
        .map(|p| p.to_string().trim_start_matches('.').to_string())
        .collect();
    let has = |s: &str| segs.iter().any(|x| x == s);
    match () {
        _ if has("requests") && has("cpu") => "cpu_request",
        _ if has("requests") && has("memory") => "memory_request",
        _ if has("limits") && has("cpu") => "cpu_limit",
        _ if has("limits") && has("memory") => "memory_limit",
        _ if has("httpGet") => "health_path",
        _ if has("nodePort") => "node_port",
        _ if has("containerPort") || has("port") => "port",
        _ if has("minReplicas") || has("maxReplicas") => "autoscale",
        _ if has("labels") => "labels",
        _ if has("annotations") => "annotations",
        _ if has("namespace") => "namespace",
        _ => "name",
    }
}
