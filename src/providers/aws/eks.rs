//! EKS kinds: `eks_cluster` and `eks_nodegroup`. Creates wait until ACTIVE
//! (minutes on AWS); updates go one update type per call as EKS requires and
//! wait for each; a nodegroup is replaced create-before-destroy under a new
//! name so the cluster never runs out of nodes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, Cluster, ClusterStatus, LogSetup, LogType, Logging, Nodegroup, NodegroupScalingConfig,
    NodegroupStatus, Taint, TaintEffect, Update, UpdateLabelsPayload, UpdateStatus, UpdateTaintsPayload,
    VpcConfigRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{all_tags, aws_err, owned_by, AwsError};
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{check_schema, Ctx, Diff, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};
use crate::stack::node::PathSeg;

/// How long a cluster may take to be created, updated or deleted.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// How long a nodegroup may take.
pub const NODEGROUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

// ------------------------------------------------------------ conditions

/// A cluster is done creating or updating when ACTIVE.
pub fn cluster_active(c: &Cluster) -> Check<()> {
    match c.status() {
        Some(ClusterStatus::Active) => Check::Done(()),
        Some(ClusterStatus::Failed) => Check::Failed("the cluster is FAILED".into()),
        Some(ClusterStatus::Deleting) => Check::Failed("the cluster is being deleted".into()),
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

/// An EKS update is done when Successful; Failed and Cancelled carry errors.
pub fn update_done(u: &Update) -> Check<()> {
    match u.status() {
        Some(UpdateStatus::Successful) => Check::Done(()),
        Some(s @ (UpdateStatus::Failed | UpdateStatus::Cancelled)) => {
            let errors: Vec<String> = u
                .errors()
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.error_code().map(|c| c.as_str()).unwrap_or("error"),
                        e.error_message().unwrap_or("")
                    )
                })
                .collect();
            Check::Failed(format!(
                "update {} is {}: {}",
                u.id().unwrap_or("?"),
                s.as_str(),
                errors.join("; ")
            ))
        }
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

/// A nodegroup is done when ACTIVE; a failed create names the health issues.
pub fn nodegroup_active(n: &Nodegroup) -> Check<()> {
    let issues = || {
        n.health()
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        format!(
                            "{}: {}",
                            i.code().map(|c| c.as_str()).unwrap_or("issue"),
                            i.message().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    };
    match n.status() {
        Some(NodegroupStatus::Active) => Check::Done(()),
        Some(s @ (NodegroupStatus::CreateFailed | NodegroupStatus::DeleteFailed | NodegroupStatus::Degraded)) => {
            Check::Failed(format!("the nodegroup is {}: {}", s.as_str(), issues()))
        }
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

// ------------------------------------------------------------ waits

/// Wait until the cluster is ACTIVE.
pub async fn wait_cluster(eks: &aws_sdk_eks::Client, name: &str, policy: Policy) -> Result<Cluster, ProviderError> {
    wait_for(&format!("EKS cluster {name} to become ACTIVE"), policy, || async {
        let out = eks
            .describe_cluster()
            .name(name)
            .send()
            .await
            .map_err(aws_err("eks DescribeCluster"))?;
        let c = out
            .cluster()
            .cloned()
            .ok_or_else(|| ProviderError::new("DescribeCluster returned no cluster"))?;
        Ok(match cluster_active(&c) {
            Check::Done(()) => Check::Done(c),
            Check::Pending(s) => Check::Pending(s),
            Check::Failed(f) => Check::Failed(f),
        })
    })
    .await
}

/// Wait until the cluster (or nodegroup) is gone.
pub async fn wait_gone(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    nodegroup: Option<&str>,
    policy: Policy,
) -> Result<(), ProviderError> {
    let what = match nodegroup {
        Some(ng) => format!("EKS nodegroup {ng} to be deleted"),
        None => format!("EKS cluster {cluster} to be deleted"),
    };
    wait_for(&what, policy, || async {
        let r = match nodegroup {
            Some(ng) => eks
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(ng)
                .send()
                .await
                .map(|o| o.nodegroup().and_then(|n| n.status()).map(|s| s.as_str().to_string()))
                .map_err(aws_err("eks DescribeNodegroup")),
            None => eks
                .describe_cluster()
                .name(cluster)
                .send()
                .await
                .map(|o| o.cluster().and_then(|c| c.status()).map(|s| s.as_str().to_string()))
                .map_err(aws_err("eks DescribeCluster")),
        };
        match r {
            Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(Check::Done(())),
            Err(e) => Err(e.into()),
            Ok(Some(s)) if s == "DELETE_FAILED" => Ok(Check::Failed(s)),
            Ok(s) => Ok(Check::Pending(s.unwrap_or_else(|| "DELETING".into()))),
        }
    })
    .await
}

/// Wait until an update finishes (DescribeUpdate).
pub async fn wait_update(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    nodegroup: Option<&str>,
    id: &str,
    policy: Policy,
) -> Result<(), ProviderError> {
    wait_for(&format!("EKS update {id} of {cluster}"), policy, || async {
        let out = eks
            .describe_update()
            .name(cluster)
            .update_id(id)
            .set_nodegroup_name(nodegroup.map(str::to_string))
            .send()
            .await
            .map_err(aws_err("eks DescribeUpdate"))?;
        let u = out
            .update()
            .ok_or_else(|| ProviderError::new("DescribeUpdate returned no update"))?;
        Ok(update_done(u))
    })
    .await
}

// ------------------------------------------------------------ eks_cluster

fn yes() -> bool {
    true
}

fn everywhere() -> Vec<String> {
    vec!["0.0.0.0/0".into()]
}

const LOG_TYPES: &[&str] = &["api", "audit", "authenticator", "controllerManager", "scheduler"];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterConfig {
    /// Default `<stack>-<name>`.
    #[serde(default)]
    name: Option<String>,
    /// Kubernetes minor version, e.g. "1.31".
    version: String,
    /// The cluster IAM role's ARN.
    role: String,
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    #[serde(default = "yes")]
    endpoint_public_access: bool,
    #[serde(default)]
    endpoint_private_access: bool,
    #[serde(default = "everywhere")]
    public_access_cidrs: Vec<String>,
    /// Control-plane log types to send to CloudWatch.
    #[serde(default)]
    logging: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl ClusterConfig {
    fn canonical(mut self, stack: &str, address: &str) -> Self {
        let name = address.split_once('.').map(|(_, n)| n).unwrap_or(address);
        self.name = Some(self.name.unwrap_or_else(|| format!("{stack}-{name}")));
        crate::value::sort_dedup(&mut self.subnets);
        crate::value::sort_dedup(&mut self.security_groups);
        crate::value::sort_dedup(&mut self.public_access_cidrs);
        crate::value::sort_dedup(&mut self.logging);
        self
    }
}

/// `(major, minor)` of a version like "1.31".
fn minor(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn cluster_live(c: &Cluster) -> Live {
    let name = c.name().unwrap_or_default().to_string();
    let vpc = c.resources_vpc_config();
    let mut logging: Vec<String> = c
        .logging()
        .map(|l| {
            l.cluster_logging()
                .iter()
                .filter(|s| s.enabled() == Some(true))
                .flat_map(|s| s.types().iter().map(|t| t.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default();
    logging.sort();
    logging.dedup();
    let mut subnets: Vec<String> = vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
    subnets.sort();
    let mut sgs: Vec<String> = vpc.map(|v| v.security_group_ids().to_vec()).unwrap_or_default();
    sgs.sort();
    let mut cidrs: Vec<String> = vpc.map(|v| v.public_access_cidrs().to_vec()).unwrap_or_default();
    cidrs.sort();
    if cidrs.is_empty() {
        cidrs = everywhere();
    }
    let tags: BTreeMap<String, String> = c
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Live {
        id: name.clone(),
        inputs: json!({
            "name": name,
            "version": c.version().unwrap_or_default(),
            "role": c.role_arn().unwrap_or_default(),
            "subnets": subnets,
            "security_groups": sgs,
            "endpoint_public_access": vpc.map(|v| v.endpoint_public_access()).unwrap_or(true),
            "endpoint_private_access": vpc.map(|v| v.endpoint_private_access()).unwrap_or(false),
            "public_access_cidrs": cidrs,
            "logging": logging,
            "tags": tags,
        }),
        attributes: json!({
            "id": name,
            "arn": c.arn().unwrap_or_default(),
            "endpoint": c.endpoint().unwrap_or_default(),
            "certificate_authority": c.certificate_authority().and_then(|a| a.data()).unwrap_or_default(),
            "oidc_issuer": c.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()).unwrap_or_default(),
            "cluster_security_group_id": vpc.and_then(|v| v.cluster_security_group_id()).unwrap_or_default(),
            "vpc_id": vpc.and_then(|v| v.vpc_id()).unwrap_or_default(),
            "status": c.status().map(|s| s.as_str()).unwrap_or_default(),
        }),
    }
}

/// The user's view: ownership tags dropped, attributes include inputs; a
/// cluster also gets `connection`, what Kubernetes resources need to reach it.
fn view(ctx: &Ctx, address: &str, l: Live) -> Live {
    let mut l = super::user_view_of(ctx, address, l);
    if let Some(endpoint) = l.attributes.get("endpoint").cloned() {
        l.attributes["connection"] = json!({
            "name": l.attributes.get("name").cloned().unwrap_or_default(),
            "endpoint": endpoint,
            "certificate_authority": l.attributes.get("certificate_authority").cloned().unwrap_or_default(),
            "region": ctx.region.clone().unwrap_or_default(),
        });
    }
    l
}

fn logging_of(types: &[String], enabled: bool) -> Logging {
    Logging::builder()
        .cluster_logging(
            LogSetup::builder()
                .set_types(Some(types.iter().map(|t| LogType::from(t.as_str())).collect()))
                .enabled(enabled)
                .build(),
        )
        .build()
}

async fn sync_eks_tags(
    eks: &aws_sdk_eks::Client,
    arn: &str,
    set: BTreeMap<String, String>,
    remove: Vec<String>,
) -> Result<(), AwsError> {
    if !set.is_empty() {
        eks.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .map_err(aws_err("eks TagResource"))?;
    }
    if !remove.is_empty() {
        eks.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(aws_err("eks UntagResource"))?;
    }
    Ok(())
}

/// `eks_cluster`
pub struct EksCluster {
    pub policy: Policy,
}

impl Default for EksCluster {
    fn default() -> Self {
        EksCluster {
            policy: Policy::minutes(CLUSTER_TIMEOUT),
        }
    }
}

fn parse_cluster(stack: &str, address: &str, config: &Value) -> Result<ClusterConfig, ProviderError> {
    serde_json::from_value::<ClusterConfig>(config.clone())
        .map(|c| c.canonical(stack, address))
        .map_err(|e| ProviderError::new(e.to_string()))
}

impl EksCluster {
    /// Apply in-place changes one update type at a time, each waited for.
    pub async fn converge(
        &self,
        eks: &aws_sdk_eks::Client,
        name: &str,
        old: &ClusterConfigView,
        new: &ClusterConfigView,
    ) -> Result<(), ProviderError> {
        if old.version != new.version {
            let out = eks
                .update_cluster_version()
                .name(name)
                .version(&new.version)
                .send()
                .await
                .map_err(aws_err("eks UpdateClusterVersion"))?;
            let id = out.update().and_then(|u| u.id()).unwrap_or_default().to_string();
            wait_update(eks, name, None, &id, self.policy).await?;
        }
        if old.logging != new.logging {
            // Turn on what is new and off what went away, in one logging update.
            let on: Vec<String> = new
                .logging
                .iter()
                .filter(|t| !old.logging.contains(t))
                .cloned()
                .collect();
            let off: Vec<String> = old
                .logging
                .iter()
                .filter(|t| !new.logging.contains(t))
                .cloned()
                .collect();
            let mut setups = Vec::new();
            if !on.is_empty() {
                setups.extend(logging_of(&on, true).cluster_logging().to_vec());
            }
            if !off.is_empty() {
                setups.extend(logging_of(&off, false).cluster_logging().to_vec());
            }
            let out = eks
                .update_cluster_config()
                .name(name)
                .logging(Logging::builder().set_cluster_logging(Some(setups)).build())
                .send()
                .await
                .map_err(aws_err("eks UpdateClusterConfig (logging)"))?;
            let id = out.update().and_then(|u| u.id()).unwrap_or_default().to_string();
            wait_update(eks, name, None, &id, self.policy).await?;
        }
        if (old.public, old.private, &old.cidrs) != (new.public, new.private, &new.cidrs) {
            let out = eks
                .update_cluster_config()
                .name(name)
                .resources_vpc_config(
                    VpcConfigRequest::builder()
                        .endpoint_public_access(new.public)
                        .endpoint_private_access(new.private)
                        .set_public_access_cidrs(Some(new.cidrs.clone()))
                        .build(),
                )
                .send()
                .await
                .map_err(aws_err("eks UpdateClusterConfig (endpoint access)"))?;
            let id = out.update().and_then(|u| u.id()).unwrap_or_default().to_string();
            wait_update(eks, name, None, &id, self.policy).await?;
        }
        Ok(())
    }
}

/// The fields of a cluster that update in place.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfigView {
    pub version: String,
    pub logging: Vec<String>,
    pub public: bool,
    pub private: bool,
    pub cidrs: Vec<String>,
}

impl From<&ClusterConfig> for ClusterConfigView {
    fn from(c: &ClusterConfig) -> Self {
        ClusterConfigView {
            version: c.version.clone(),
            logging: c.logging.clone(),
            public: c.endpoint_public_access,
            private: c.endpoint_private_access,
            cidrs: c.public_access_cidrs.clone(),
        }
    }
}

async fn describe_cluster(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, ProviderError> {
    match eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(aws_err("eks DescribeCluster"))
    {
        Ok(o) => Ok(o.cluster().cloned()),
        Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl ResourceKind for EksCluster {
    fn name(&self) -> &'static str {
        "eks_cluster"
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<ClusterConfig>(config)?;
        let bad = |field: &str, index: Option<usize>, message: String| {
            let mut path = vec![PathSeg::Field(field.into())];
            path.extend(index.map(PathSeg::Index));
            Err(SchemaError {
                path,
                message,
                suggestion: None,
            })
        };
        if let Some(v) = config
            .get("version")
            .and_then(Value::as_str)
            .filter(|v| !v.contains("${"))
        {
            if minor(v).is_none() {
                return bad(
                    "version",
                    None,
                    format!("{v:?} is not a Kubernetes version like \"1.31\""),
                );
            }
        }
        for (i, t) in config
            .get("logging")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(t) = t.as_str().filter(|t| !LOG_TYPES.contains(t)) {
                return bad(
                    "logging",
                    Some(i),
                    format!("unknown log type {t:?}; use {}", LOG_TYPES.join(", ")),
                );
            }
        }
        if config
            .get("subnets")
            .and_then(Value::as_array)
            .is_some_and(|s| s.len() < 2)
        {
            return bad(
                "subnets",
                None,
                "EKS needs subnets in at least two availability zones".into(),
            );
        }
        Ok(())
    }

    fn check_change(&self, prior: &Value, desired: &Value) -> Result<(), SchemaError> {
        let (Some(from), Some(to)) = (
            prior.get("version").and_then(Value::as_str),
            desired.get("version").and_then(Value::as_str),
        ) else {
            return Ok(());
        };
        let (Some(a), Some(b)) = (minor(from), minor(to)) else {
            return Ok(());
        };
        let err = |message: String| {
            Err(SchemaError {
                path: vec![PathSeg::Field("version".into())],
                message,
                suggestion: None,
            })
        };
        if b < a {
            return err(format!("EKS cannot downgrade a cluster from {from} to {to}"));
        }
        if b.0 != a.0 || b.1 > a.1 + 1 {
            return err(format!(
                "EKS upgrades one minor version at a time: from {from} go to {}.{} first, apply, then continue",
                a.0,
                a.1 + 1
            ));
        }
        Ok(())
    }

    fn replace_warning(&self) -> Option<&'static str> {
        Some("replacing an EKS cluster deletes it and every workload running on it, then creates an empty one")
    }

    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        parse_cluster(stack, address, config)
            .ok()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| config.clone())
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &[
            "id",
            "arn",
            "endpoint",
            "certificate_authority",
            "oidc_issuer",
            "cluster_security_group_id",
            "vpc_id",
            "status",
            "connection",
        ]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["name", "role", "subnets", "security_groups"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // EKS has no batch describe: one DescribeCluster per cluster, concurrently.
        let aws = ctx.aws().await?;
        let mut out = Vec::with_capacity(reqs.len());
        let results = crate::providers::join_all(reqs.iter().map(|r| describe_cluster(&aws.eks, r.id))).await;
        for (r, got) in reqs.iter().zip(results) {
            out.push(got?.map(|c| view(ctx, r.address, cluster_live(&c))));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse_cluster(&ctx.stack, address, config)?;
        let name = c.name.clone().unwrap_or_default();
        let mut req = aws
            .eks
            .create_cluster()
            .name(&name)
            .version(&c.version)
            .role_arn(&c.role)
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .set_subnet_ids(Some(c.subnets.clone()))
                    .set_security_group_ids(Some(c.security_groups.clone()))
                    .endpoint_public_access(c.endpoint_public_access)
                    .endpoint_private_access(c.endpoint_private_access)
                    .set_public_access_cidrs(Some(c.public_access_cidrs.clone()))
                    .build(),
            )
            .set_tags(Some(
                all_tags(ctx, address, &c.tags).into_iter().collect::<HashMap<_, _>>(),
            ));
        if !c.logging.is_empty() {
            req = req.logging(logging_of(&c.logging, true));
        }
        req.send().await.map_err(aws_err("eks CreateCluster"))?;
        let cluster = wait_cluster(&aws.eks, &name, self.policy).await?;
        let mut live = cluster_live(&cluster);
        // Inputs are what was asked for (what EKS echoes can lag behind).
        live.inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(view(ctx, address, live))
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse_cluster(&ctx.stack, address, config)?;
        let old = parse_cluster(&ctx.stack, address, &prior.inputs)?;
        self.converge(&aws.eks, &prior.id, &(&old).into(), &(&c).into()).await?;
        let arn = prior
            .attributes
            .get("arn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (set, remove) = super::tag_changes(ctx, address, &old.tags, &c.tags);
        sync_eks_tags(&aws.eks, &arn, set, remove).await?;
        let cluster = wait_cluster(&aws.eks, &prior.id, self.policy).await?;
        let mut live = cluster_live(&cluster);
        live.inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(view(ctx, address, live))
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        match aws.eks.delete_cluster().name(id).send().await.map_err(aws_err("eks DeleteCluster")) {
            Err(e) if e.is(&["ResourceNotFoundException"]) => return Ok(()),
            Err(e) if e.is(&["ResourceInUseException"]) => {
                return Err(ProviderError::new(format!(
                    "{e}\n  The cluster still has nodegroups (or Fargate profiles) slipway does not manage; delete them first."
                )))
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        wait_gone(&aws.eks, id, None, self.policy).await
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let names: Vec<String> = aws
            .eks
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("eks ListClusters"))?;
        let mut out = Vec::new();
        for n in names {
            if let Some(c) = describe_cluster(&aws.eks, &n).await? {
                let tags: BTreeMap<String, String> = c
                    .tags()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                if owned_by(ctx, address, &tags) {
                    out.push(view(ctx, address, cluster_live(&c)));
                }
            }
        }
        Ok(out)
    }
}

// ------------------------------------------------------------ eks_nodegroup

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct TaintConfig {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE.
    effect: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Scaling {
    min: i32,
    max: i32,
    desired: i32,
}

fn default_instance_types() -> Vec<String> {
    vec!["t3.medium".into()]
}
fn default_capacity() -> String {
    "ON_DEMAND".into()
}
fn default_disk() -> i32 {
    20
}
fn default_ami() -> String {
    "AL2023_x86_64_STANDARD".into()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodegroupConfig {
    /// The cluster's name.
    cluster: String,
    /// Name prefix; the nodegroup is named `<prefix>-<hash of the replacing fields>`
    /// so a replacement never clashes with the old one. Default `<name>`.
    #[serde(default)]
    name: Option<String>,
    /// The node IAM role's ARN.
    node_role: String,
    subnets: Vec<String>,
    #[serde(default = "default_instance_types")]
    instance_types: Vec<String>,
    #[serde(default = "default_capacity")]
    capacity_type: String,
    #[serde(default = "default_disk")]
    disk_size: i32,
    #[serde(default = "default_ami")]
    ami_type: String,
    scaling: Scaling,
    /// Desired size belongs to the cluster autoscaler after create.
    #[serde(default)]
    autoscaled: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    taints: Vec<TaintConfig>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl NodegroupConfig {
    fn canonical(mut self, address: &str) -> Self {
        let name = address.split_once('.').map(|(_, n)| n).unwrap_or(address);
        self.name = Some(self.name.unwrap_or_else(|| name.to_string()));
        crate::value::sort_dedup(&mut self.subnets);
        crate::value::sort_dedup(&mut self.instance_types);
        crate::value::sort_dedup(&mut self.taints);
        self
    }

    /// The actual nodegroup name: prefix plus a hash of what forces replacement.
    fn full_name(&self) -> String {
        let key = json!([
            self.node_role,
            self.subnets,
            self.instance_types,
            self.capacity_type,
            self.disk_size,
            self.ami_type
        ])
        .to_string();
        let h = crate::providers::common::short_hash(&key);
        format!("{}-{:08x}", self.name.as_deref().unwrap_or("ng"), (h >> 32) as u32)
    }
}

const TAINT_EFFECTS: &[&str] = &["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"];

fn nodegroup_live(n: &Nodegroup) -> Live {
    let cluster = n.cluster_name().unwrap_or_default();
    let full = n.nodegroup_name().unwrap_or_default();
    // slipway names nodegroups `<prefix>-<8 hex digits>`; any other name
    // (eksctl's `ng-1`, a hand-made one) is its own prefix.
    let prefix = full
        .rsplit_once('-')
        .filter(|(_, h)| h.len() == 8 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|(p, _)| p)
        .unwrap_or(full);
    let s = n.scaling_config();
    let mut subnets = n.subnets().to_vec();
    subnets.sort();
    let mut types = n.instance_types().to_vec();
    types.sort();
    let mut taints: Vec<TaintConfig> = n
        .taints()
        .iter()
        .map(|t| TaintConfig {
            key: t.key().unwrap_or_default().to_string(),
            value: t.value().map(str::to_string),
            effect: t.effect().map(|e| e.as_str().to_string()).unwrap_or_default(),
        })
        .collect();
    taints.sort();
    let labels: BTreeMap<String, String> = n
        .labels()
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let tags: BTreeMap<String, String> = n
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Live {
        id: format!("{cluster}:{full}"),
        inputs: json!({
            "cluster": cluster,
            "name": prefix,
            "node_role": n.node_role().unwrap_or_default(),
            "subnets": subnets,
            "instance_types": types,
            "capacity_type": n.capacity_type().map(|c| c.as_str()).unwrap_or("ON_DEMAND"),
            "disk_size": n.disk_size().unwrap_or(20),
            "ami_type": n.ami_type().map(|a| a.as_str()).unwrap_or_default(),
            "scaling": {
                "min": s.and_then(|s| s.min_size()).unwrap_or(0),
                "max": s.and_then(|s| s.max_size()).unwrap_or(0),
                "desired": s.and_then(|s| s.desired_size()).unwrap_or(0),
            },
            "labels": labels,
            "taints": taints,
            "tags": tags,
        }),
        attributes: json!({
            "id": format!("{cluster}:{full}"),
            "nodegroup_name": full,
            "arn": n.nodegroup_arn().unwrap_or_default(),
            "status": n.status().map(|s| s.as_str()).unwrap_or_default(),
        }),
    }
}

fn split_id(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once(':')
        .ok_or_else(|| ProviderError::new(format!("nodegroup ID {id:?} is not CLUSTER:NODEGROUP")))
}

async fn describe_nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    ng: &str,
) -> Result<Option<Nodegroup>, ProviderError> {
    match eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(ng)
        .send()
        .await
        .map_err(aws_err("eks DescribeNodegroup"))
    {
        Ok(o) => Ok(o.nodegroup().cloned()),
        Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Wait until the nodegroup is ACTIVE and (when given) shows `scaling`.
async fn wait_nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    ng: &str,
    scaling: Option<&Scaling>,
    policy: Policy,
) -> Result<Nodegroup, ProviderError> {
    wait_for(&format!("EKS nodegroup {ng} to become ACTIVE"), policy, || async {
        let n = describe_nodegroup(eks, cluster, ng)
            .await?
            .ok_or_else(|| ProviderError::new(format!("nodegroup {ng} disappeared")))?;
        let applied = scaling.is_none_or(|s| {
            let c = n.scaling_config();
            c.and_then(|c| c.min_size()) == Some(s.min) && c.and_then(|c| c.max_size()) == Some(s.max)
        });
        Ok(match nodegroup_active(&n) {
            Check::Done(()) if applied => Check::Done(n),
            Check::Done(()) => Check::Pending("ACTIVE (update not visible yet)".into()),
            Check::Pending(s) => Check::Pending(s),
            Check::Failed(f) => Check::Failed(f),
        })
    })
    .await
}

/// `eks_nodegroup`
pub struct EksNodegroup {
    pub policy: Policy,
}

impl Default for EksNodegroup {
    fn default() -> Self {
        EksNodegroup {
            policy: Policy::minutes(NODEGROUP_TIMEOUT),
        }
    }
}

fn parse_ng(address: &str, config: &Value) -> Result<NodegroupConfig, ProviderError> {
    serde_json::from_value::<NodegroupConfig>(config.clone())
        .map(|c| c.canonical(address))
        .map_err(|e| ProviderError::new(e.to_string()))
}

fn taint(t: &TaintConfig) -> Taint {
    Taint::builder()
        .key(&t.key)
        .set_value(t.value.clone())
        .effect(TaintEffect::from(t.effect.as_str()))
        .build()
}

#[async_trait]
impl ResourceKind for EksNodegroup {
    fn name(&self) -> &'static str {
        "eks_nodegroup"
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<NodegroupConfig>(config)?;
        let bad = |path: Vec<PathSeg>, message: String| {
            Err(SchemaError {
                path,
                message,
                suggestion: None,
            })
        };
        if let Ok(s) = serde_json::from_value::<Scaling>(config.get("scaling").cloned().unwrap_or(Value::Null)) {
            if s.min < 0 || s.max < 1 || s.min > s.max || s.desired < s.min || s.desired > s.max {
                return bad(
                    vec![PathSeg::Field("scaling".into())],
                    format!(
                        "scaling needs 0 <= min <= desired <= max and max >= 1 (got min {}, desired {}, max {})",
                        s.min, s.desired, s.max
                    ),
                );
            }
        }
        for (i, t) in config
            .get("taints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(e) = t
                .get("effect")
                .and_then(Value::as_str)
                .filter(|e| !TAINT_EFFECTS.contains(e))
            {
                return bad(
                    vec![
                        PathSeg::Field("taints".into()),
                        PathSeg::Index(i),
                        PathSeg::Field("effect".into()),
                    ],
                    format!("unknown taint effect {e:?}; use {}", TAINT_EFFECTS.join(", ")),
                );
            }
        }
        if let Some(c) = config
            .get("capacity_type")
            .and_then(Value::as_str)
            .filter(|c| !["ON_DEMAND", "SPOT"].contains(c))
        {
            return bad(
                vec![PathSeg::Field("capacity_type".into())],
                format!("capacity_type {c:?} must be ON_DEMAND or SPOT"),
            );
        }
        Ok(())
    }

    fn complete(&self, _stack: &str, address: &str, config: &Value) -> Value {
        parse_ng(address, config)
            .ok()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| config.clone())
    }

    fn diff(&self, prior: &Value, desired: &Value) -> Diff {
        // Under the cluster autoscaler the live desired size is not ours to fight.
        let mut desired = desired.clone();
        if desired.get("autoscaled") == Some(&Value::Bool(true)) {
            if let Some(d) = prior.pointer("/scaling/desired").cloned() {
                if let Some(s) = desired.get_mut("scaling").and_then(Value::as_object_mut) {
                    s.insert("desired".into(), d);
                }
            }
        }
        let mut prior = prior.clone();
        if prior.get("autoscaled").is_none() {
            // Live reads cannot know the flag; it is the config's.
            if let (Some(p), Some(d)) = (prior.as_object_mut(), desired.get("autoscaled")) {
                p.insert("autoscaled".into(), d.clone());
            }
        }
        crate::providers::generic_diff(self, &prior, &desired)
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "nodegroup_name", "arn", "status"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &[
            "cluster",
            "name",
            "node_role",
            "subnets",
            "instance_types",
            "capacity_type",
            "disk_size",
            "ami_type",
        ]
    }

    fn create_before_destroy(&self) -> bool {
        true
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // EKS has no batch describe: one DescribeNodegroup per nodegroup, concurrently.
        let aws = ctx.aws().await?;
        let ids: Vec<(&str, &str)> = reqs.iter().map(|r| split_id(r.id)).collect::<Result<_, _>>()?;
        let results = crate::providers::join_all(ids.iter().map(|(c, n)| describe_nodegroup(&aws.eks, c, n))).await;
        let mut out = Vec::with_capacity(reqs.len());
        for (r, got) in reqs.iter().zip(results) {
            out.push(got?.map(|n| {
                let mut l = view(ctx, r.address, nodegroup_live(&n));
                // The autoscaled flag lives only in the config.
                if let Some(a) = r.inputs.get("autoscaled") {
                    l.inputs["autoscaled"] = a.clone();
                    l.attributes["autoscaled"] = a.clone();
                }
                l
            }));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse_ng(address, config)?;
        let full = c.full_name();
        aws.eks
            .create_nodegroup()
            .cluster_name(&c.cluster)
            .nodegroup_name(&full)
            .node_role(&c.node_role)
            .set_subnets(Some(c.subnets.clone()))
            .set_instance_types(Some(c.instance_types.clone()))
            .capacity_type(CapacityTypes::from(c.capacity_type.as_str()))
            .disk_size(c.disk_size)
            .ami_type(AmiTypes::from(c.ami_type.as_str()))
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(c.scaling.min)
                    .max_size(c.scaling.max)
                    .desired_size(c.scaling.desired)
                    .build(),
            )
            .set_labels(Some(c.labels.clone().into_iter().collect()))
            .set_taints(Some(c.taints.iter().map(taint).collect()))
            .set_tags(Some(
                all_tags(ctx, address, &c.tags).into_iter().collect::<HashMap<_, _>>(),
            ))
            .send()
            .await
            .map_err(aws_err("eks CreateNodegroup"))?;
        let n = wait_nodegroup(&aws.eks, &c.cluster, &full, None, self.policy).await?;
        let mut live = view(ctx, address, nodegroup_live(&n));
        live.inputs = serde_json::to_value(&c).unwrap_or_default();
        live.attributes = super::with_attrs(&live.attributes, live.inputs.clone());
        Ok(live)
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse_ng(address, config)?;
        let old = parse_ng(address, &prior.inputs)?;
        let (cluster, ng) = split_id(&prior.id)?;
        let mut req = aws
            .eks
            .update_nodegroup_config()
            .cluster_name(cluster)
            .nodegroup_name(ng);
        let mut any = false;
        let desired = if c.autoscaled {
            old.scaling.desired.clamp(c.scaling.min, c.scaling.max)
        } else {
            c.scaling.desired
        };
        if c.scaling != old.scaling || desired != old.scaling.desired {
            req = req.scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(c.scaling.min)
                    .max_size(c.scaling.max)
                    .desired_size(desired)
                    .build(),
            );
            any = true;
        }
        if c.labels != old.labels {
            let add: HashMap<String, String> = c
                .labels
                .iter()
                .filter(|(k, v)| old.labels.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let remove: Vec<String> = old
                .labels
                .keys()
                .filter(|k| !c.labels.contains_key(*k))
                .cloned()
                .collect();
            req = req.labels(
                UpdateLabelsPayload::builder()
                    .set_add_or_update_labels((!add.is_empty()).then_some(add))
                    .set_remove_labels((!remove.is_empty()).then_some(remove))
                    .build(),
            );
            any = true;
        }
        if c.taints != old.taints {
            let add: Vec<Taint> = c.taints.iter().filter(|t| !old.taints.contains(t)).map(taint).collect();
            let remove: Vec<Taint> = old
                .taints
                .iter()
                .filter(|t| !c.taints.iter().any(|n| n.key == t.key && n.effect == t.effect))
                .map(taint)
                .collect();
            req = req.taints(
                UpdateTaintsPayload::builder()
                    .set_add_or_update_taints((!add.is_empty()).then_some(add))
                    .set_remove_taints((!remove.is_empty()).then_some(remove))
                    .build(),
            );
            any = true;
        }
        if any {
            req.send().await.map_err(aws_err("eks UpdateNodegroupConfig"))?;
        }
        let arn = prior
            .attributes
            .get("arn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (set, remove) = super::tag_changes(ctx, address, &old.tags, &c.tags);
        sync_eks_tags(&aws.eks, &arn, set, remove).await?;
        let n = wait_nodegroup(&aws.eks, cluster, ng, Some(&c.scaling), self.policy).await?;
        let mut live = view(ctx, address, nodegroup_live(&n));
        live.inputs = serde_json::to_value(&c).unwrap_or_default();
        live.attributes = super::with_attrs(&live.attributes, live.inputs.clone());
        Ok(live)
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let (cluster, ng) = split_id(id)?;
        match aws
            .eks
            .delete_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(ng)
            .send()
            .await
            .map_err(aws_err("eks DeleteNodegroup"))
        {
            Err(e) if e.is(&["ResourceNotFoundException"]) => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        wait_gone(&aws.eks, cluster, Some(ng), self.policy).await
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let clusters: Vec<String> = aws
            .eks
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("eks ListClusters"))?;
        let mut out = Vec::new();
        for c in clusters {
            let ngs: Vec<String> = aws
                .eks
                .list_nodegroups()
                .cluster_name(&c)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws_err("eks ListNodegroups"))?;
            for ng in ngs {
                if let Some(n) = describe_nodegroup(&aws.eks, &c, &ng).await? {
                    let tags: BTreeMap<String, String> = n
                        .tags()
                        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    if owned_by(ctx, address, &tags) && !matches!(n.status(), Some(NodegroupStatus::Deleting)) {
                        out.push(view(ctx, address, nodegroup_live(&n)));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! The waits and the update calls moto lacks, on the AWS SDK's own mock
    //! client (aws-smithy-mocks): these prove the calls slipway makes and how
    //! it reads the answers, not how EKS behaves.

    use super::*;
    use aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput;
    use aws_sdk_eks::operation::describe_update::DescribeUpdateOutput;
    use aws_sdk_eks::operation::update_cluster_config::UpdateClusterConfigOutput;
    use aws_sdk_eks::operation::update_cluster_version::UpdateClusterVersionOutput;
    use aws_sdk_eks::types::{ErrorCode, ErrorDetail};
    use aws_sdk_eks::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn cluster(status: ClusterStatus) -> DescribeClusterOutput {
        DescribeClusterOutput::builder()
            .cluster(Cluster::builder().name("c").status(status).build())
            .build()
    }

    fn update(status: UpdateStatus) -> DescribeUpdateOutput {
        DescribeUpdateOutput::builder()
            .update(Update::builder().id("u1").status(status).build())
            .build()
    }

    fn fast() -> Policy {
        Policy::fast(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn wait_cluster_follows_creating_to_active_with_sdk_mock_client() {
        let rule = mock!(Client::describe_cluster)
            .sequence()
            .output(|| cluster(ClusterStatus::Creating))
            .times(2)
            .output(|| cluster(ClusterStatus::Active))
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::Sequential, [&rule]);
        let c = wait_cluster(&eks, "c", fast()).await.unwrap();
        assert_eq!(c.status(), Some(&ClusterStatus::Active));
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn wait_cluster_stops_on_failed_with_sdk_mock_client() {
        let rule = mock!(Client::describe_cluster)
            .sequence()
            .output(|| cluster(ClusterStatus::Creating))
            .output(|| cluster(ClusterStatus::Failed))
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::Sequential, [&rule]);
        let e = wait_cluster(&eks, "c", fast()).await.unwrap_err();
        assert!(e.message.contains("the cluster is FAILED"), "{}", e.message);
    }

    #[tokio::test]
    async fn wait_cluster_times_out_naming_the_status_with_sdk_mock_client() {
        let rule = mock!(Client::describe_cluster)
            .sequence()
            .output(|| cluster(ClusterStatus::Creating))
            .repeatedly()
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::Sequential, [&rule]);
        let e = wait_cluster(&eks, "c", Policy::fast(Duration::from_millis(40)))
            .await
            .unwrap_err();
        assert!(e.message.contains("timed out"), "{}", e.message);
        assert!(e.message.contains("last status: CREATING"), "{}", e.message);
    }

    fn view(version: &str, logging: &[&str], public: bool) -> ClusterConfigView {
        ClusterConfigView {
            version: version.into(),
            logging: logging.iter().map(|s| s.to_string()).collect(),
            public,
            private: false,
            cidrs: vec!["0.0.0.0/0".into()],
        }
    }

    #[tokio::test]
    async fn version_change_is_update_cluster_version_then_waits_for_the_update_with_sdk_mock_client() {
        let upgrade = mock!(Client::update_cluster_version)
            .match_requests(|r| r.name() == Some("c") && r.version() == Some("1.31"))
            .then_output(|| {
                UpdateClusterVersionOutput::builder()
                    .update(Update::builder().id("u1").build())
                    .build()
            });
        let describe = mock!(Client::describe_update)
            .match_requests(|r| r.update_id() == Some("u1"))
            .sequence()
            .output(|| update(UpdateStatus::InProgress))
            .output(|| update(UpdateStatus::Successful))
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&upgrade, &describe]);
        let k = EksCluster { policy: fast() };
        k.converge(&eks, "c", &view("1.30", &[], true), &view("1.31", &[], true))
            .await
            .unwrap();
        assert_eq!(upgrade.num_calls(), 1);
        assert_eq!(describe.num_calls(), 2);
    }

    #[tokio::test]
    async fn logging_and_endpoint_access_are_separate_update_calls_with_sdk_mock_client() {
        let logging = mock!(Client::update_cluster_config)
            .match_requests(|r| r.logging().is_some() && r.resources_vpc_config().is_none())
            .then_output(|| {
                UpdateClusterConfigOutput::builder()
                    .update(Update::builder().id("u1").build())
                    .build()
            });
        let endpoint = mock!(Client::update_cluster_config)
            .match_requests(|r| {
                r.logging().is_none()
                    && r.resources_vpc_config().and_then(|v| v.endpoint_public_access()) == Some(false)
            })
            .then_output(|| {
                UpdateClusterConfigOutput::builder()
                    .update(Update::builder().id("u1").build())
                    .build()
            });
        let describe = mock!(Client::describe_update).then_output(|| update(UpdateStatus::Successful));
        let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&logging, &endpoint, &describe]);
        let k = EksCluster { policy: fast() };
        k.converge(
            &eks,
            "c",
            &view("1.30", &["api"], true),
            &view("1.30", &["api", "audit"], false),
        )
        .await
        .unwrap();
        assert_eq!(logging.num_calls(), 1, "one call for logging");
        assert_eq!(endpoint.num_calls(), 1, "another for endpoint access");
        assert_eq!(describe.num_calls(), 2, "each update waited for");
    }

    #[tokio::test]
    async fn a_failed_update_reports_the_eks_errors_with_sdk_mock_client() {
        let upgrade = mock!(Client::update_cluster_version).then_output(|| {
            UpdateClusterVersionOutput::builder()
                .update(Update::builder().id("u1").build())
                .build()
        });
        let describe = mock!(Client::describe_update).then_output(|| {
            DescribeUpdateOutput::builder()
                .update(
                    Update::builder()
                        .id("u1")
                        .status(UpdateStatus::Failed)
                        .errors(
                            ErrorDetail::builder()
                                .error_code(ErrorCode::InsufficientFreeAddresses)
                                .error_message("subnet full")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&upgrade, &describe]);
        let e = EksCluster { policy: fast() }
            .converge(&eks, "c", &view("1.30", &[], true), &view("1.31", &[], true))
            .await
            .unwrap_err();
        assert!(
            e.message
                .contains("update u1 is Failed: InsufficientFreeAddresses: subnet full"),
            "{}",
            e.message
        );
    }

    #[test]
    fn nodegroup_conditions() {
        let ng = |s: NodegroupStatus| Nodegroup::builder().status(s).build();
        assert_eq!(nodegroup_active(&ng(NodegroupStatus::Active)), Check::Done(()));
        assert_eq!(
            nodegroup_active(&ng(NodegroupStatus::Creating)),
            Check::Pending("CREATING".into())
        );
        assert!(matches!(
            nodegroup_active(&ng(NodegroupStatus::CreateFailed)),
            Check::Failed(_)
        ));
    }

    #[test]
    fn nodegroup_names_change_exactly_when_a_replacement_is_forced() {
        let base = serde_json::json!({"cluster": "c", "node_role": "r", "subnets": ["s1", "s2"], "scaling": {"min": 1, "max": 2, "desired": 1}});
        let n = |v: &Value| parse_ng("eks_nodegroup.main", v).unwrap().full_name();
        let mut scaled = base.clone();
        scaled["scaling"]["max"] = serde_json::json!(5);
        let mut bigger = base.clone();
        bigger["instance_types"] = serde_json::json!(["m5.large"]);
        assert_eq!(n(&base), n(&scaled));
        assert_ne!(n(&base), n(&bigger));
        assert!(n(&base).starts_with("main-"));
    }
}
