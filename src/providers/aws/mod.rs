//! AWS kinds, through the real aws-sdk-rust clients. The clients come from
//! the standard chain (credentials, region, `AWS_ENDPOINT_URL`), the same way
//! a user points any AWS SDK anywhere; every call is counted for `--stats`.

/// Every item of a paginated call, as a `Result<Vec<_>, AwsError>` naming
/// the operation: `all_items!(aws.ec2.describe_vpcs().set_filters(f), "ec2 DescribeVpcs")`.
macro_rules! all_items {
    ($req:expr, $op:expr) => {
        $req.into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err($crate::providers::aws::aws_err($op))
    };
}
pub(crate) use all_items;

pub mod acm;
pub mod ec2;
pub mod eks;
pub mod elbv2;
pub mod iam;
pub mod kind;
pub mod permissions;
pub mod route53;
pub mod tagging;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::ConfigBag;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use super::{Ctx, Live, ProviderError, Registry};
use kind::Aws;

/// Register every AWS kind.
pub fn register(r: &mut Registry) {
    r.add(Arc::new(Aws(ec2::vpc::Vpc)));
    r.add(Arc::new(Aws(ec2::subnet::Subnet)));
    r.add(Arc::new(Aws(ec2::internet_gateway::InternetGateway)));
    r.add(Arc::new(Aws(ec2::elastic_ip::ElasticIp)));
    r.add(Arc::new(Aws(ec2::nat_gateway::NatGateway)));
    r.add(Arc::new(Aws(ec2::route_table::RouteTable)));
    r.add(Arc::new(Aws(ec2::security_group::SecurityGroup)));
    r.add(Arc::new(Aws(ec2::security_group_rule::SecurityGroupRule)));
    r.add(Arc::new(Aws(iam::role::IamRole)));
    r.add(Arc::new(Aws(eks::cluster::EksCluster::default())));
    r.add(Arc::new(Aws(eks::nodegroup::EksNodegroup::default())));
    r.add(Arc::new(Aws(eks::access_entry::EksAccessEntry)));
    r.add(Arc::new(Aws(eks::addon::EksAddon::default())));
    r.add(Arc::new(Aws(iam::oidc_provider::OidcProvider)));
    r.add(Arc::new(Aws(acm::certificate::AcmCertificate)));
    r.add(Arc::new(Aws(elbv2::alb::Alb)));
    r.add(Arc::new(Aws(elbv2::target_group::AlbTargetGroup)));
    r.add(Arc::new(Aws(elbv2::listener::AlbListener)));
    r.add(Arc::new(route53::zone::Route53Zone));
    r.add(Arc::new(route53::record::Route53Record));
}

/// The region the SDK's standard chain finds without a stack's: the
/// environment (AWS_REGION), the profile, then EC2 instance metadata (unless
/// AWS_EC2_METADATA_DISABLED).
pub async fn sdk_region() -> Option<String> {
    aws_config::default_provider::region::DefaultRegionChain::builder()
        .build()
        .region()
        .await
        .map(|r| r.to_string())
        .filter(|r| !r.is_empty())
}

/// The service clients of one run.
#[derive(Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub acm: aws_sdk_acm::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Target groups attach to a nodegroup's Auto Scaling group.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Hosted zones and records (certificate validation, aliases).
    pub route53: aws_sdk_route53::Client,
    /// Only `slipway import eksctl` reads CloudFormation.
    pub cfn: aws_sdk_cloudformation::Client,
    pub region: String,
    /// The loaded SDK config (credentials for EKS tokens).
    pub config: aws_config::SdkConfig,
}

impl Clients {
    /// Load the SDK config from the standard chain, with `region` if given.
    pub async fn load(region: Option<String>, calls: Arc<CallCounter>) -> Result<Arc<Clients>, ProviderError> {
        // Throttling and 5xx answers are retried with exponential backoff and
        // jitter; the standard mode's retry quota keeps a throttled account
        // from being hammered.
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(8)
            .with_initial_backoff(std::time::Duration::from_millis(200))
            .with_max_backoff(std::time::Duration::from_secs(20));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry);
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r));
        }
        let conf = loader.load().await;
        let region = conf.region().map(|r| r.to_string()).ok_or_else(|| {
            ProviderError::new("no AWS region: set `region` in [stack], or AWS_REGION in the environment")
        })?;
        let counter = CountCalls(calls);
        // One retry partition for every client: the run shares one retry
        // budget (token bucket), so a throttled account is not hammered by
        // each service client on its own.
        let shared = aws_sdk_ec2::config::retry::RetryPartition::new("slipway-run");
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&conf)
                        .interceptor(counter.clone())
                        .retry_partition(shared.clone())
                        .build(),
                )
            };
        }
        let (ec2, iam, eks, acm) = (
            client!(aws_sdk_ec2),
            client!(aws_sdk_iam),
            client!(aws_sdk_eks),
            client!(aws_sdk_acm),
        );
        let (elb, autoscaling, route53, cfn) = (
            client!(aws_sdk_elasticloadbalancingv2),
            client!(aws_sdk_autoscaling),
            client!(aws_sdk_route53),
            client!(aws_sdk_cloudformation),
        );
        Ok(Arc::new(Clients {
            ec2,
            iam,
            eks,
            acm,
            elb,
            autoscaling,
            route53,
            cfn,
            region,
            config: conf,
        }))
    }
}

/// API calls per (service, operation), retries included.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    fn add(&self, service: &str, op: &str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((service.to_string(), op.to_string())).or_default() += 1;
        }
    }
}

/// Interceptor that counts every attempt sent.
#[derive(Debug, Clone)]
struct CountCalls(Arc<CallCounter>);

/// When an attempt was sent (for the debug log's duration).
#[derive(Debug, Clone)]
struct AttemptStart(Instant);

impl aws_smithy_types::config_bag::Storable for AttemptStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "slipway-call-counter"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.0.add(m.service(), m.name());
        }
        cfg.interceptor_state().store_put(AttemptStart(Instant::now()));
        Ok(())
    }

    /// `SLIPWAY_LOG=debug`: one line per attempt with the service, the
    /// operation, the HTTP status, the duration, the attempt number and the
    /// error code. Never a parameter, header or body: nothing secret.
    fn read_after_transmit(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !tracing::enabled!(target: "slipway::aws", tracing::Level::DEBUG) {
            return Ok(());
        }
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_default();
        let ms = cfg
            .load::<AttemptStart>()
            .map(|s| s.0.elapsed().as_millis())
            .unwrap_or(0);
        let attempt = cfg
            .load::<aws_smithy_runtime_api::client::retries::RequestAttempts>()
            .map(|a| a.attempts())
            .unwrap_or(1);
        let r = ctx.response();
        let status = r.status().as_u16();
        let code = (status >= 400)
            .then(|| {
                r.headers()
                    .get("x-amzn-errortype")
                    .map(|v| v.split(':').next().unwrap_or(v).to_string())
                    .or_else(|| r.body().bytes().and_then(error_code_in))
            })
            .flatten()
            .unwrap_or_default();
        tracing::debug!(target: "slipway::aws", %service, %operation, status, duration_ms = ms as u64, attempt, error = %code, "call");
        Ok(())
    }
}

/// The error code of an XML (`<Code>X</Code>`) or JSON (`"__type":"X"`)
/// error body.
fn error_code_in(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if let Some(i) = text.find("<Code>") {
        let rest = &text[i + 6..];
        return rest.find("</Code>").map(|j| rest[..j].to_string());
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let t = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
    Some(t.rsplit('#').next().unwrap_or(t).to_string())
}

/// A failed AWS call: its error code (when the service sent one) and text.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl AwsError {
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }
}

/// A call whose error is one of `codes` counts as done (a retried call whose
/// first answer was lost, an object already gone).
pub fn ok_if<T>(r: Result<T, AwsError>, codes: &[&str]) -> Result<(), AwsError> {
    match r {
        Err(e) if e.is(codes) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// A read whose error is one of `codes` found nothing.
pub fn none_if<T>(r: Result<T, AwsError>, codes: &[&str]) -> Result<Option<T>, AwsError> {
    match r {
        Err(e) if e.is(codes) => Ok(None),
        other => other.map(Some),
    }
}

impl From<AwsError> for ProviderError {
    fn from(e: AwsError) -> Self {
        ProviderError {
            message: e.message,
            code: e.code,
        }
    }
}

/// A failure before any call (an ID of the wrong shape), as a call's error.
impl From<ProviderError> for AwsError {
    fn from(e: ProviderError) -> Self {
        AwsError {
            code: e.code,
            message: e.message,
        }
    }
}

/// Turn an SDK error into an `AwsError` naming the operation.
pub fn aws_err<E, R>(op: &str) -> impl FnOnce(SdkError<E, R>) -> AwsError + '_
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    move |e| {
        let code = e.code().map(str::to_string);
        let mut message = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{op}: {c}: {m}"),
            (Some(c), None) => format!("{op}: {c}"),
            _ => format!("{op}: {}", aws_smithy_types_display(&e)),
        };
        if e.code().is_some_and(|c| DENIED.contains(&c)) {
            message.push_str(&format!(
                " (the credentials lack the IAM action {}: `slipway iam-policy DIR` prints what plan and drift \
                 (--plan) or apply and destroy need)",
                iam_action(op)
            ));
        }
        AwsError { code, message }
    }
}

/// Error codes of a call IAM did not allow.
pub const DENIED: &[&str] = &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"];

/// The IAM action of an operation as slipway names it (`elbv2 CreateListener`
/// is `elasticloadbalancing:CreateListener`).
pub fn iam_action(op: &str) -> String {
    let (service, name) = op.split_once(' ').unwrap_or(("", op));
    let service = match service {
        "elbv2" => "elasticloadbalancing",
        other => other,
    };
    format!("{service}:{name}")
}

fn aws_smithy_types_display<E: std::error::Error>(e: &E) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// How long eventual-consistency errors (DependencyViolation while a
/// dependent is still going away) are retried.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Run `f` until it succeeds, fails with a code not in `retry_on`, or
/// `timeout` passes; waits grow from 1 s to 10 s.
/// Retry while `transient` says the error is one AWS gives for a while and
/// then stops giving (IAM propagation), for up to `timeout`, telling the
/// step's progress line `why`; then the error, with how long it was retried.
pub async fn retry_while<T, F, Fut>(
    transient: impl Fn(&AwsError) -> bool,
    why: &str,
    timeout: Duration,
    mut f: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let t0 = Instant::now();
    let mut wait = Duration::from_secs(2);
    let mut retries = 0;
    loop {
        match f().await {
            Err(e) if transient(&e) && t0.elapsed() + wait < timeout => {
                retries += 1;
                crate::providers::wait::progress(&format!(
                    "{}: {why}; retry {retries}",
                    e.code.as_deref().unwrap_or("error")
                ));
                tokio::time::sleep(wait).await;
                wait = (wait * 3 / 2).min(Duration::from_secs(15));
            }
            Err(e) if transient(&e) => {
                return Err(AwsError {
                    code: e.code.clone(),
                    message: format!(
                        "{} ({why}: still refused after {}s of retries)",
                        e.message,
                        t0.elapsed().as_secs()
                    ),
                })
            }
            other => return other,
        }
    }
}

pub async fn retry_on<T, F, Fut>(retry_on: &[&str], timeout: Duration, mut f: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let t0 = Instant::now();
    let mut wait = Duration::from_secs(1);
    let mut retries = 0;
    loop {
        match f().await {
            Err(e) if e.is(retry_on) && t0.elapsed() + wait < timeout => {
                retries += 1;
                // The step's progress line says what it is really doing.
                crate::providers::wait::progress(&format!("{}: retry {retries}", e.code.as_deref().unwrap_or("error")));
                tokio::time::sleep(wait).await;
                wait = (wait * 3 / 2).min(Duration::from_secs(10));
            }
            Err(e) if e.is(retry_on) => {
                return Err(AwsError {
                    code: e.code.clone(),
                    message: format!(
                        "{} (still failing after {}s of retries)",
                        e.message,
                        t0.elapsed().as_secs()
                    ),
                })
            }
            other => return other,
        }
    }
}

pub const TAG_STACK: &str = "slipway:stack";
pub const TAG_ADDRESS: &str = "slipway:address";
/// The lineage of the state that made the object (its owner).
pub const TAG_LINEAGE: &str = "slipway:lineage";
/// The create attempt that made the object.
pub const TAG_ATTEMPT: &str = "slipway:attempt";
/// Error codes meaning "an object of this unique name already exists".
pub const ALREADY_EXISTS: &[&str] = &[
    "EntityAlreadyExists",
    "InvalidGroup.Duplicate",
    "DuplicateLoadBalancerName",
    "DuplicateTargetGroupName",
    "ResourceInUseException",
    "ResourceExistsException",
];
const OWNERSHIP: &[&str] = &[TAG_STACK, TAG_ADDRESS, TAG_LINEAGE, TAG_ATTEMPT];

/// The `slipway:address` tag value of an address. Most AWS services take
/// only letters, digits, spaces and `_ . : / = + - @` in tag values (EC2
/// takes more, IAM, ELB, EKS and ACM do not), so the other characters of an
/// instance address (`subnet.public["us-west-2a"]`) are written `=XX` (hex),
/// and `=` itself `=3D`: one value per address, and an address without
/// them unchanged.
pub fn address_tag(address: &str) -> String {
    let mut out = String::new();
    for c in address.chars() {
        if c.is_ascii_alphanumeric() || " _.:/+-@".contains(c) {
            out.push(c);
        } else {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("={byte:02X}"));
            }
        }
    }
    out
}

/// The `Name` tag an object gets when the stack gives none: `<stack>-<name>`.
pub fn default_name(ctx: &Ctx, address: &str) -> String {
    format!("{}-{}", ctx.stack, crate::providers::common::name_of(address))
}

/// Every tag an object is created with: the user's, `Name`, and ownership.
pub fn all_tags(ctx: &Ctx, address: &str, user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut t = user.clone();
    t.entry("Name".into()).or_insert_with(|| default_name(ctx, address));
    t.insert(TAG_STACK.into(), ctx.stack.clone());
    t.insert(TAG_ADDRESS.into(), address_tag(address));
    if let Some(l) = &ctx.lineage {
        t.insert(TAG_LINEAGE.into(), l.clone());
    }
    if let Some(a) = &ctx.attempt {
        t.insert(TAG_ATTEMPT.into(), a.clone());
    }
    t
}

/// The user's tags from a live object's: ownership tags and a default
/// `Name` removed, so a fresh object shows no difference from its config.
pub fn user_tags(
    ctx: &Ctx,
    address: &str,
    live: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    let dflt = default_name(ctx, address);
    // `aws:` tags belong to AWS (CloudFormation, autoscaling): never the user's to set.
    live.into_iter()
        .filter(|(k, v)| !OWNERSHIP.contains(&k.as_str()) && !(k == "Name" && *v == dflt) && !k.starts_with("aws:"))
        .collect()
}

/// The user's view of a live object with all its `tags`: only the user's
/// tags in the inputs (ownership tags and a default `Name` dropped), and the
/// inputs among the attributes.
pub fn user_view(ctx: &Ctx, address: &str, mut l: Live, tags: BTreeMap<String, String>) -> Live {
    l.inputs["tags"] = serde_json::json!(user_tags(ctx, address, tags));
    l.attributes = crate::providers::common::with_attrs(&l.inputs, l.attributes.clone());
    l
}

/// True when live tags say this object was made for `address` by the state
/// this run writes (its lineage), and, with `attempt`, by that create attempt.
/// Stack and address alone never make an object ours: another state of the
/// same stack (another environment) tags its objects the same way.
pub fn owned_by(ctx: &Ctx, address: &str, live: &BTreeMap<String, String>) -> bool {
    live.get(TAG_STACK) == Some(&ctx.stack)
        && live.get(TAG_ADDRESS) == Some(&address_tag(address))
        && live.get(TAG_LINEAGE) == ctx.lineage.as_ref()
}

/// Who an object belongs to, from its tags, for an error a person can act on.
pub fn owner_of(live: &BTreeMap<String, String>) -> String {
    match (live.get(TAG_STACK), live.get(TAG_ADDRESS), live.get(TAG_LINEAGE)) {
        (Some(s), Some(a), Some(l)) => format!("{a} of stack {s} in the state with lineage {l}"),
        (Some(s), Some(a), None) => format!("{a} of stack {s} (made before slipway recorded lineages)"),
        _ => "no slipway state (it carries no slipway ownership tags)".into(),
    }
}

/// The tags to set and the keys to remove to go from `old` to `new`, with
/// the `Name` default and ownership tags kept in place.
pub fn tag_changes(
    ctx: &Ctx,
    address: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let want = all_tags(ctx, address, new);
    let had = all_tags(ctx, address, old);
    let set = want
        .iter()
        .filter(|(k, v)| had.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = had.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
    (set, remove)
}

/// A run's context whose EKS client is `eks` (an SDK mock client); the other
/// clients point nowhere.
#[cfg(test)]
pub fn mock_ctx(stack: &str, eks: aws_sdk_eks::Client) -> Ctx {
    let conf = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let clients = Clients {
        ec2: aws_sdk_ec2::Client::new(&conf),
        iam: aws_sdk_iam::Client::new(&conf),
        eks,
        acm: aws_sdk_acm::Client::new(&conf),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
        autoscaling: aws_sdk_autoscaling::Client::new(&conf),
        route53: aws_sdk_route53::Client::new(&conf),
        cfn: aws_sdk_cloudformation::Client::new(&conf),
        region: "us-east-1".into(),
        config: conf,
    };
    Ctx::with_clients(stack, Arc::new(clients))
}

#[cfg(test)]
mod address_tag_tests {
    #[test]
    fn an_address_tag_holds_only_characters_every_service_takes_and_stays_one_to_one() {
        assert_eq!(super::address_tag("vpc.main"), "vpc.main");
        assert_eq!(super::address_tag("module.web.app.this"), "module.web.app.this");
        assert_eq!(
            super::address_tag("subnet.public[\"us-west-2a\"]"),
            "subnet.public=5B=22us-west-2a=22=5D"
        );
        assert_ne!(super::address_tag("a.b[\"=\"]"), super::address_tag("a.b[\"=3D\"]"));
    }
}

#[cfg(test)]
mod retry_progress_tests {
    use super::*;

    // Three real waits (1 s, 1.5 s, 2.25 s).
    #[tokio::test]
    async fn a_retried_error_is_what_the_step_s_progress_line_says_with_its_count() {
        let progress = Arc::new(std::sync::Mutex::new(None));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (p, s) = (progress.clone(), seen.clone());
        let mut n = 0;
        let r = crate::providers::wait::PROGRESS
            .scope(progress.clone(), async move {
                retry_on(&["DependencyViolation"], Duration::from_secs(300), || {
                    n += 1;
                    if let Some(st) = p.lock().unwrap().clone() {
                        s.lock().unwrap().push(st);
                    }
                    let r = if n < 4 {
                        Err(AwsError {
                            code: Some("DependencyViolation".into()),
                            message: "has dependencies".into(),
                        })
                    } else {
                        Ok(n)
                    };
                    async move { r }
                })
                .await
            })
            .await;
        assert_eq!(r.unwrap(), 4);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "DependencyViolation: retry 1",
                "DependencyViolation: retry 2",
                "DependencyViolation: retry 3"
            ]
        );
    }
}
