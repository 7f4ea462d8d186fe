//! The `ResourceKind` trait every kind implements, and the registry of kinds.
//!
//! A kind knows its schema, how to diff, and how to read, create, update,
//! delete and find (by ownership tags) its objects. It knows nothing of the
//! CLI, the plan renderer or the state file format.

pub mod aws;
pub mod common;
pub mod k8s;
pub mod local;
pub mod wait;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::path::{path_segments, PathSeg};
use crate::value::{contains_unknown, is_unknown, unknown};

/// What every provider call gets: which stack it works for, and the cloud
/// clients (made on first use, so a stack without AWS never loads credentials).
#[derive(Clone)]
pub struct Ctx {
    /// The stack name, written into ownership tags.
    pub stack: String,
    /// `[stack] region`, else the AWS SDK's own chain (AWS_REGION, profile).
    pub region: Option<String>,
    aws: Arc<tokio::sync::OnceCell<Arc<aws::Clients>>>,
    /// API calls made through the clients, per service and operation.
    pub calls: Arc<aws::CallCounter>,
    /// `[kubernetes] kubeconfig` and `context` of the stack.
    pub kubernetes: Option<(String, Option<String>)>,
    /// Kubernetes clients by cluster.
    pub kube: Arc<k8s::client::ClientCache>,
    /// How long a Deployment's rollout may take (`--rollout-timeout`).
    pub rollout_timeout: std::time::Duration,
    /// The lineage of the state this run writes: every object it creates
    /// carries it, and only objects carrying it are ever adopted.
    pub lineage: Option<String>,
    /// The token of the create attempt being made (recorded in the journal
    /// before the call, carried by the object): a duplicate left by a retried
    /// create is exactly an object with this token that the state does not hold.
    pub attempt: Option<String>,
    /// The EKS clusters Kubernetes connections may go to: the names of the
    /// stack's `eks_cluster` resources and of those in its state. Tokens are
    /// made for these only, sent to the endpoint DescribeCluster gives.
    pub clusters: Arc<Vec<String>>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("stack", &self.stack)
            .field("region", &self.region)
            .finish()
    }
}

impl Ctx {
    pub fn new(stack: &str, region: Option<String>) -> Ctx {
        Ctx {
            stack: stack.to_string(),
            region,
            aws: Arc::new(tokio::sync::OnceCell::new()),
            calls: Arc::new(aws::CallCounter::default()),
            kubernetes: None,
            kube: Arc::new(k8s::client::ClientCache::default()),
            rollout_timeout: std::time::Duration::from_secs(300),
            lineage: None,
            attempt: None,
            clusters: Arc::default(),
        }
    }

    /// The same context for a run that writes the state of `lineage`.
    pub fn with_lineage(&self, lineage: &str) -> Ctx {
        let mut c = self.clone();
        c.lineage = Some(lineage.to_string());
        c
    }

    /// The same context for one create attempt (`None`: any attempt).
    pub fn with_attempt(&self, attempt: Option<String>) -> Ctx {
        let mut c = self.clone();
        c.attempt = attempt;
        c
    }

    /// A context with clients made elsewhere (tests with mocked clients).
    pub fn with_clients(stack: &str, clients: Arc<aws::Clients>) -> Ctx {
        let region = Some(clients.region.clone());
        let ctx = Ctx::new(stack, region);
        let _ = ctx.aws.set(clients);
        ctx
    }

    /// The AWS clients, configured on first use.
    pub async fn aws(&self) -> Result<Arc<aws::Clients>, ProviderError> {
        self.aws
            .get_or_try_init(|| aws::Clients::load(self.region.clone(), self.calls.clone()))
            .await
            .cloned()
    }
}

/// What a kind sees of the whole stack when it checks relations between
/// resources (a subnet inside its VPC's CIDR, no overlapping subnets).
pub struct StackView<'a> {
    pub region: Option<&'a str>,
    /// Every resource: address, kind, config as written (references unresolved).
    pub resources: Vec<(&'a str, &'a str, &'a Value)>,
    /// A for_each resource's address -> its instances (`kind.name[*]`).
    pub instances: Option<&'a std::collections::BTreeMap<String, Vec<String>>>,
}

impl<'a> StackView<'a> {
    /// The view of a stack's resources as written.
    pub fn of(stack: &'a crate::stack::Stack) -> StackView<'a> {
        StackView {
            region: stack.region.as_deref(),
            resources: stack
                .resources
                .iter()
                .map(|r| (r.address.as_str(), r.kind.as_str(), &r.config))
                .collect(),
            instances: Some(&stack.instances),
        }
    }

    /// The config of the resource a whole-string reference like
    /// `${vpc.main.id}` points at, with its address.
    pub fn target_of(&self, reference: &Value) -> Option<(&str, &str, &Value)> {
        let parts = crate::stack::template::parse(reference.as_str()?).ok()?;
        let [crate::stack::template::Part::Ref(r, _)] = parts.as_slice() else {
            return None;
        };
        let addr = r.address()?;
        self.resources
            .iter()
            .find(|(a, _, _)| *a == addr)
            .map(|(a, k, c)| (*a, *k, *c))
    }

    /// Every resource a value refers to, through lists, functions and
    /// `kind.name[*]` (each instance): `["${subnet.a.id}"]`,
    /// `"${subnet.public[*].id}"`, `"${concat(subnet.a[*].id, subnet.b[*].id)}"`.
    pub fn targets_of(&self, v: &Value) -> Vec<(&str, &str, &Value)> {
        let mut refs = Vec::new();
        crate::stack::template::refs_in(v, &mut refs);
        let mut out: Vec<(&str, &str, &Value)> = Vec::new();
        for (r, _) in refs {
            let crate::stack::template::Ref::Attr { module, kind, name, .. } = &r else {
                continue;
            };
            let addresses: Vec<String> = match name.strip_suffix("[*]") {
                Some(base) => self
                    .instances
                    .and_then(|i| i.get(&format!("{module}{kind}.{base}")))
                    .cloned()
                    .unwrap_or_default(),
                None => vec![format!("{module}{kind}.{name}")],
            };
            for a in addresses {
                if let Some(t) = self.resources.iter().find(|(x, _, _)| *x == a) {
                    if !out.iter().any(|(x, _, _)| *x == t.0) {
                        out.push(*t);
                    }
                }
            }
        }
        out
    }
}

/// A problem found by a kind's whole-stack check.
#[derive(Debug, Clone)]
pub struct StackIssue {
    pub address: String,
    pub path: Vec<PathSeg>,
    pub message: String,
}

/// A failed provider call.
#[derive(Debug, Clone)]
pub struct ProviderError {
    pub message: String,
    /// The service's error code when a cloud API refused the call, so
    /// decisions match on codes, never on message text.
    pub code: Option<String>,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError {
            message: message.into(),
            code: None,
        }
    }

    /// True when the cloud answered with one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// The service refused the call before acting on it (the credentials may
    /// not make it): nothing was made, so there is nothing to look for.
    pub fn never_acted(&self) -> bool {
        self.is(aws::DENIED)
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

/// A config that does not fit a kind's schema, with the path of the bad field.
#[derive(Debug, Clone)]
pub struct SchemaError {
    pub path: Vec<PathSeg>,
    pub message: String,
    /// The field name a user most likely meant, for unknown fields.
    pub suggestion: Option<String>,
}

impl SchemaError {
    /// An error at `path` with no suggestion.
    pub fn at(path: Vec<PathSeg>, message: impl Into<String>) -> SchemaError {
        SchemaError {
            path,
            message: message.into(),
            suggestion: None,
        }
    }
}

/// The config in the canonical form of `T`: defaults filled, through a
/// serde round trip. A config that does not fit (a value still unknown where
/// a number belongs) is returned as it is.
pub fn complete_as<T: DeserializeOwned + serde::Serialize>(config: &Value) -> Value {
    complete_tolerant(config, &|c| {
        serde_json::from_value::<T>(c.clone())
            .ok()
            .and_then(|t| serde_json::to_value(t).ok())
    })
}

/// `complete` (defaults filled in by `f`) for a config whose fields may be
/// unknown until apply or still `${...}` as written: `subnets =
/// "${subnet.private[*].id}"` is a list no one knows yet. Such fields are
/// given stand-ins of each JSON type until `f` takes the config; they stay
/// unknown (or as written) in the result, and every other default is filled.
pub fn complete_tolerant(config: &Value, f: &dyn Fn(&Value) -> Option<Value>) -> Value {
    if let Some(v) = f(config) {
        return v;
    }
    let Some(obj) = config.as_object() else {
        return config.clone();
    };
    let open = |v: &Value| is_unknown(v) || v.as_str().is_some_and(|s| s.contains("${"));
    let fields: Vec<String> = obj.iter().filter(|(_, v)| open(v)).map(|(k, _)| k.clone()).collect();
    if fields.is_empty() || fields.len() > 4 {
        return config.clone();
    }
    let stand_ins = [
        serde_json::json!([]),
        serde_json::json!(""),
        serde_json::json!(0),
        serde_json::json!({}),
        serde_json::json!(false),
    ];
    // Every combination of stand-ins (at most 5^4), first fit wins.
    let total = stand_ins.len().pow(fields.len() as u32);
    for n in 0..total {
        let mut probe = obj.clone();
        let mut i = n;
        for k in &fields {
            probe.insert(k.clone(), stand_ins[i % stand_ins.len()].clone());
            i /= stand_ins.len();
        }
        if let Some(Value::Object(mut done)) = f(&Value::Object(probe)) {
            for k in &fields {
                done.insert(k.clone(), obj[k].clone());
            }
            return Value::Object(done);
        }
    }
    config.clone()
}

/// Check `config` against the serde struct `T` (which should deny unknown
/// fields), reporting the path of the first problem.
pub fn check_schema<T: DeserializeOwned>(config: &Value) -> Result<(), SchemaError> {
    match serde_path_to_error::deserialize::<_, T>(config.clone()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let path = path_segments(e.path());
            let message = e.inner().to_string();
            let suggestion = unknown_field_suggestion(&message);
            Err(SchemaError {
                path,
                message: tidy_serde_message(&message),
                suggestion,
            })
        }
    }
}

/// serde reports unknown fields as "unknown field `x`, expected one of `a`, `b`".
fn unknown_field_suggestion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (word, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    crate::path::did_you_mean(word, candidates).map(str::to_string)
}

fn tidy_serde_message(m: &str) -> String {
    m.replace("invalid type: ", "wrong type: ")
}

/// A live object as a kind sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// The cloud ID (VPC ID, ARN, ...).
    pub id: String,
    /// The object's settings in the shape of the kind's config.
    pub inputs: Value,
    /// Everything a reference can name: inputs plus computed attributes.
    pub attributes: Value,
}

/// One object to refresh: what the state knows of it.
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    pub address: &'a str,
    pub id: &'a str,
    pub inputs: &'a Value,
    pub attributes: &'a Value,
}

/// What changed between the prior inputs and the desired config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Top-level fields whose value changes.
    pub changed: Vec<String>,
    /// The subset of `changed` that cannot be updated in place.
    pub forces_replace: Vec<String>,
}

/// One kind of resource (`vpc`, `data`, `k8s_deployment`, ...).
#[async_trait]
pub trait ResourceKind: Send + Sync {
    /// The kind's name as written in stacks.
    fn name(&self) -> &'static str;

    /// Check a config against the kind's schema.
    fn check(&self, config: &Value) -> Result<(), SchemaError>;
    /// The config's JSON Schema (draft 2020-12), generated from the type
    /// `check` reads, for editors (`slipway schema`). The default takes any table.
    fn config_schema(&self) -> Value {
        serde_json::json!({"type": "object"})
    }

    /// The config with every default filled in and values in canonical form,
    /// so that it compares equal to what a read of the live object gives.
    fn complete(&self, _stack: &str, _address: &str, config: &Value) -> Value {
        config.clone()
    }

    /// Check relations between this kind's resources and the rest of the
    /// stack, before any cloud call.
    fn check_stack(&self, _view: &StackView<'_>) -> Vec<StackIssue> {
        Vec::new()
    }

    /// Attributes computed by the cloud (an `id` at least), beyond the inputs.
    fn computed_attributes(&self) -> &'static [&'static str];

    /// The AWS IAM actions the kind calls (`slipway iam-policy`); `None`
    /// for kinds that call no AWS API.
    fn aws_permissions(&self) -> Option<aws::permissions::Permissions> {
        None
    }

    /// Input fields whose change cannot be made in place.
    fn force_new_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether a replacement creates the new object before deleting the old one.
    fn create_before_destroy(&self) -> bool {
        false
    }

    /// A field's value in a canonical form, so that equal meanings compare equal.
    fn normalize(&self, _field: &str, v: &Value) -> Value {
        v.clone()
    }

    /// Which fields change, and which of them force a replacement.
    fn diff(&self, prior: &Value, desired: &Value) -> Diff {
        generic_diff(self, prior, desired)
    }

    /// Check a change from `prior` inputs to `desired` that the schema alone
    /// cannot judge (an EKS version may go up one minor at a time).
    fn check_change(&self, _prior: &Value, _desired: &Value) -> Result<(), SchemaError> {
        Ok(())
    }

    /// Dependencies not written as references (objects in a namespace the
    /// stack declares come after it).
    fn implied_dependencies(&self, _config: &Value, _view: &StackView<'_>) -> Vec<String> {
        Vec::new()
    }

    /// Input fields shown as `(sensitive)` in plans.
    /// What the resource reads from this machine when applied (a password's
    /// environment variable, certificate files) is there and readable:
    /// checked at plan and again before an apply's first call, never for
    /// content in the plan or state.
    fn check_local_inputs(&self, _config: &Value) -> Result<(), SchemaError> {
        Ok(())
    }

    fn sensitive_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether a retried create can make a second object (no idempotency in
    /// the API, or an emulator that ignores it); then every create is
    /// followed by a look for duplicates under the ownership tags.
    fn may_duplicate(&self) -> bool {
        false
    }

    /// A warning the plan shows when this kind is replaced.
    fn replace_warning(&self) -> Option<&'static str> {
        None
    }

    /// Why an object that exists is not ready for use yet (a certificate
    /// waiting for validation), read from its live attributes; such an
    /// object is never in sync: the plan updates it and the apply waits.
    fn pending(&self, _attributes: &Value) -> Option<String> {
        None
    }

    /// Why an object that exists can never become ready (a nodegroup that
    /// failed to create): such an object is planned as a replacement.
    fn tainted(&self, _attributes: &Value) -> Option<String> {
        None
    }

    /// The attributes as the plan predicts them: inputs from the desired
    /// config, computed ones kept from `prior` on update and unknown on create.
    fn planned_attributes(&self, desired: &Value, prior: Option<&Value>) -> Value {
        planned_from(self.computed_attributes(), desired, prior)
    }

    /// Read the live objects for many state entries in as few calls as the API
    /// allows; `None` where the object is gone.
    async fn read_many(&self, ctx: &Ctx, items: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError>;

    /// Create the object, tagged with its owner in the create call itself.
    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError>;

    /// Update the object in place to `config`.
    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError>;

    /// Delete the object; an object already gone is not an error.
    async fn delete(&self, ctx: &Ctx, address: &str, id: &str, attributes: &Value) -> Result<(), ProviderError>;

    /// Every live object carrying the ownership tags of `address` made by the
    /// state of `ctx.lineage` (and, when `ctx.attempt` is set, by that create attempt).
    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError>;

    /// Before a plan proposes to create `address`: fail when an object the
    /// create would take (a name it renders) exists and is not this state's.
    /// What cannot be checked yet (unknown values, a cluster not made yet)
    /// passes; the create itself checks again.
    async fn check_create(&self, _ctx: &Ctx, _address: &str, _config: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Write the ownership of `address` in this state on the object (after an
    /// import or a move); kinds whose objects carry no tags do nothing. With
    /// `owned_as` (a move), the object must first prove it is this state's
    /// object under that address, or nothing is written.
    async fn retag(
        &self,
        _ctx: &Ctx,
        _address: &str,
        _live: &Live,
        _owned_as: Option<&str>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// Field by field: a field changes when its normalized values differ or the
/// desired one is not known yet.
/// Attributes before apply: the computed ones as the prior object had
/// them (unknown for a new one), then every input as desired.
pub fn planned_from(computed: &[&str], desired: &Value, prior: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    for a in computed {
        let v = prior.and_then(|p| p.get(*a)).cloned().unwrap_or_else(unknown);
        out.insert(a.to_string(), v);
    }
    if let Some(d) = desired.as_object() {
        for (k, v) in d {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

pub fn generic_diff<K: ResourceKind + ?Sized>(kind: &K, prior: &Value, desired: &Value) -> Diff {
    let mut diff = Diff::default();
    let empty = serde_json::Map::new();
    let p = prior.as_object().unwrap_or(&empty);
    let d = desired.as_object().unwrap_or(&empty);
    let mut fields: Vec<&String> = p.keys().chain(d.keys()).collect();
    fields.sort();
    fields.dedup();
    for f in fields {
        let pv = p.get(f.as_str()).unwrap_or(&Value::Null);
        let dv = d.get(f.as_str()).unwrap_or(&Value::Null);
        if contains_unknown(dv) || kind.normalize(f, pv) != kind.normalize(f, dv) {
            diff.changed.push(f.clone());
            if kind.force_new_fields().contains(&f.as_str()) {
                diff.forces_replace.push(f.clone());
            }
        }
    }
    diff
}

/// Await futures concurrently on the current task; results in order.
pub async fn join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// All kinds slipway knows, by name.
#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn ResourceKind>>,
}

impl Registry {
    /// The registry with every built-in kind.
    pub fn builtin() -> Self {
        let mut r = Registry { kinds: BTreeMap::new() };
        r.add(Arc::new(local::Data));
        aws::register(&mut r);
        for k in k8s::table::all() {
            r.add(Arc::new(k));
        }
        r.add(Arc::new(k8s::check_kind::K8sCheck));
        r
    }

    pub fn add(&mut self, kind: Arc<dyn ResourceKind>) {
        self.kinds.insert(kind.name(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn ResourceKind>> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Every resource's dependencies that its config does not write as
    /// references, by address (the graph receives them as data).
    pub fn implied_edges(&self, stack: &crate::stack::Stack) -> HashMap<String, Vec<String>> {
        let view = StackView::of(stack);
        let mut out = HashMap::new();
        for r in &stack.resources {
            let deps = self
                .get(&r.kind)
                .map(|k| k.implied_dependencies(&r.config, &view))
                .unwrap_or_default();
            let deps: Vec<String> = deps.into_iter().filter(|d| d != &r.address).collect();
            if !deps.is_empty() {
                out.insert(r.address.clone(), deps);
            }
        }
        out
    }
}

/// True when a schema error is only about a value that holds a reference or
/// is unknown, so it can be judged only once that value is known.
pub fn error_is_about_unknown(config: &Value, path: &[PathSeg]) -> bool {
    let mut v = config;
    for seg in path {
        if is_unknown(v) {
            return true;
        }
        v = match (seg, v) {
            (PathSeg::Field(f), Value::Object(o)) => match o.get(f) {
                Some(x) => x,
                None => return false,
            },
            (PathSeg::Index(i), Value::Array(a)) => match a.get(*i) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    contains_unknown(v) || matches!(v, Value::String(s) if s.contains("${"))
}
