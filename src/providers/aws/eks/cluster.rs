//! `eks_cluster`: an EKS control plane. Create waits until ACTIVE; in-place
//! changes (version, logging, endpoint access) go one update type per call,
//! as EKS requires, each waited for. Live clusters carry `connection`, what
//! Kubernetes resources need to reach them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AuthenticationMode, Cluster, CreateAccessConfigRequest, LogSetup, LogType, Logging, UpdateAccessConfigRequest,
    VpcConfigRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{IN_USE, NOT_FOUND};
use super::wait::{describe_cluster, wait_cluster, wait_gone, wait_update};
use super::{arn_of, cluster_names, start_update, tag_map};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, retry_while, AwsError, Clients};
use crate::providers::common::{name_of, yes};
use crate::providers::wait::Policy;
use crate::providers::{join_all, Ctx, Live, ProviderError, SchemaError};

/// How long a cluster may take to be created, updated or deleted.
pub const CLUSTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45 * 60);

fn everywhere() -> Vec<String> {
    vec!["0.0.0.0/0".into()]
}

const LOG_TYPES: &[&str] = &["api", "audit", "authenticator", "controllerManager", "scheduler"];

/// Authentication modes in the only order EKS can move a cluster along
/// (one way: access entries, once on, stay on).
const AUTH_MODES: &[&str] = &["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"];

fn api_and_config_map() -> String {
    "API_AND_CONFIG_MAP".into()
}

/// Who may authenticate to the cluster. The EKS API's own default is
/// CONFIG_MAP, in which access entries are refused; slipway's is
/// API_AND_CONFIG_MAP, as the console's and eksctl's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default = "api_and_config_map")]
    authentication_mode: String,
    /// The creating principal gets cluster-admin through an access entry
    /// (only at creation: EKS cannot change it later).
    #[serde(default = "yes")]
    bootstrap_cluster_creator_admin_permissions: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            authentication_mode: api_and_config_map(),
            bootstrap_cluster_creator_admin_permissions: true,
        }
    }
}

/// Where a mode sits on the one-way path.
fn auth_rank(m: &str) -> Option<usize> {
    AUTH_MODES.iter().position(|x| *x == m)
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
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
    access_config: AccessConfig,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `(major, minor)` of a version like "1.31".
/// The oldest Kubernetes minor version EKS still runs (extended support).
const OLDEST_MINOR: u32 = 23;

fn minor(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn cluster_live(c: &Cluster) -> Tagged {
    let name = c.name().unwrap_or_default().to_string();
    let vpc = c.resources_vpc_config();
    let logging: Vec<String> = c
        .logging()
        .map(|l| l.cluster_logging())
        .unwrap_or_default()
        .iter()
        .filter(|s| s.enabled() == Some(true))
        .flat_map(|s| s.types().iter().map(|t| t.as_str().to_string()))
        .collect();
    let list = |f: fn(&aws_sdk_eks::types::VpcConfigResponse) -> &[String]| sorted(vpc.map(f).unwrap_or_default());
    let mut cidrs = list(|v| v.public_access_cidrs());
    if cidrs.is_empty() {
        cidrs = everywhere();
    }
    let live = Live {
        id: name.clone(),
        inputs: json!({
            "name": name,
            "version": c.version().unwrap_or_default(),
            "role": c.role_arn().unwrap_or_default(),
            "subnets": list(|v| v.subnet_ids()),
            "security_groups": list(|v| v.security_group_ids()),
            "endpoint_public_access": vpc.map(|v| v.endpoint_public_access()).unwrap_or(true),
            "endpoint_private_access": vpc.map(|v| v.endpoint_private_access()).unwrap_or(false),
            "public_access_cidrs": cidrs,
            "logging": sorted(&logging),
            // DescribeCluster does not report reliably whether the creator was made admin
            // (terraform-provider-aws#35824): that part is the state's, see diff_view.
            "access_config": {
                "authentication_mode": c
                    .access_config()
                    .and_then(|a| a.authentication_mode())
                    .map(|m| m.as_str())
                    .unwrap_or("CONFIG_MAP"),
            },
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
    };
    Tagged {
        live,
        tags: tag_map(c.tags()),
    }
}

fn logging_of(types: &[String], enabled: bool) -> LogSetup {
    let types = types.iter().map(|t| LogType::from(t.as_str())).collect();
    LogSetup::builder().set_types(Some(types)).enabled(enabled).build()
}

/// How long IAM may take before EKS can assume a new role (Terraform's AWS
/// provider waits as long).
pub const IAM_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(120);

/// EKS's answer for a role IAM has not propagated yet. EKS gives it the
/// generic InvalidParameterException code, so the text tells it apart from
/// a wrong parameter (as terraform-provider-aws does).
pub fn role_not_assumable(e: &AwsError) -> bool {
    e.is(&["InvalidParameterException"]) && e.message.contains("could not be assumed")
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

/// The fields of a cluster that update in place.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfigView {
    pub version: String,
    pub logging: Vec<String>,
    pub public: bool,
    pub private: bool,
    pub cidrs: Vec<String>,
    pub authentication_mode: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

impl From<&ClusterConfig> for ClusterConfigView {
    fn from(c: &ClusterConfig) -> Self {
        ClusterConfigView {
            version: c.version.clone(),
            logging: c.logging.clone(),
            public: c.endpoint_public_access,
            private: c.endpoint_private_access,
            cidrs: c.public_access_cidrs.clone(),
            authentication_mode: c.access_config.authentication_mode.clone(),
            subnets: c.subnets.clone(),
            security_groups: c.security_groups.clone(),
        }
    }
}

/// The ID of the update an Update* call started.

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
            let id = start_update(name, || async {
                let out = eks
                    .update_cluster_version()
                    .name(name)
                    .version(&new.version)
                    .send()
                    .await;
                out.map(|o| o.update).map_err(aws_err("eks UpdateClusterVersion"))
            })
            .await?;
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
                setups.push(logging_of(&on, true));
            }
            if !off.is_empty() {
                setups.push(logging_of(&off, false));
            }
            let logging = Logging::builder().set_cluster_logging(Some(setups)).build();
            let id = start_update(name, || async {
                let out = eks
                    .update_cluster_config()
                    .name(name)
                    .logging(logging.clone())
                    .send()
                    .await;
                out.map(|o| o.update)
                    .map_err(aws_err("eks UpdateClusterConfig (logging)"))
            })
            .await?;
            wait_update(eks, name, None, &id, self.policy).await?;
        }
        if (&old.subnets, &old.security_groups) != (&new.subnets, &new.security_groups) {
            // EKS moves a cluster's network interfaces to other subnets (of the
            // same VPC) and security groups in place: a VpcConfigUpdate.
            let vpc = VpcConfigRequest::builder()
                .set_subnet_ids(Some(new.subnets.clone()))
                .set_security_group_ids(Some(new.security_groups.clone()))
                .build();
            let id = start_update(name, || async {
                let out = eks
                    .update_cluster_config()
                    .name(name)
                    .resources_vpc_config(vpc.clone())
                    .send()
                    .await;
                out.map(|o| o.update)
                    .map_err(aws_err("eks UpdateClusterConfig (subnets and security groups)"))
            })
            .await?;
            wait_update(eks, name, None, &id, self.policy).await?;
        }
        if (old.public, old.private, &old.cidrs) != (new.public, new.private, &new.cidrs) {
            let access = VpcConfigRequest::builder()
                .endpoint_public_access(new.public)
                .endpoint_private_access(new.private)
                .set_public_access_cidrs(Some(new.cidrs.clone()))
                .build();
            let id = start_update(name, || async {
                let out = eks
                    .update_cluster_config()
                    .name(name)
                    .resources_vpc_config(access.clone())
                    .send()
                    .await;
                out.map(|o| o.update)
                    .map_err(aws_err("eks UpdateClusterConfig (endpoint access)"))
            })
            .await?;
            wait_update(eks, name, None, &id, self.policy).await?;
        }
        // One step along the one-way path per update (CONFIG_MAP to API goes
        // through API_AND_CONFIG_MAP); a step back is a replacement, planned as one.
        let (from, to) = (auth_rank(&old.authentication_mode), auth_rank(&new.authentication_mode));
        if let (Some(mut at), Some(to)) = (from, to) {
            while at < to {
                at += 1;
                let access = UpdateAccessConfigRequest::builder()
                    .authentication_mode(AuthenticationMode::from(AUTH_MODES[at]))
                    .build();
                let id = start_update(name, || async {
                    let out = eks
                        .update_cluster_config()
                        .name(name)
                        .access_config(access.clone())
                        .send()
                        .await;
                    out.map(|o| o.update)
                        .map_err(aws_err("eks UpdateClusterConfig (authentication mode)"))
                })
                .await?;
                wait_update(eks, name, None, &id, self.policy).await?;
            }
        }
        Ok(())
    }
}

fn field_error(field: &str, index: Option<usize>, message: String) -> SchemaError {
    let mut path = vec![PathSeg::Field(field.into())];
    path.extend(index.map(PathSeg::Index));
    SchemaError::at(path, message)
}

#[async_trait]
impl AwsKind for EksCluster {
    type Config = ClusterConfig;
    const NAME: &'static str = "eks_cluster";
    const COMPUTED: &'static [&'static str] = &[
        "id",
        "arn",
        "endpoint",
        "certificate_authority",
        "oidc_issuer",
        "cluster_security_group_id",
        "vpc_id",
        "status",
        "connection",
    ];
    /// Subnets and security groups update in place (a VpcConfigUpdate); a
    /// cluster cannot move to another VPC, which EKS refuses with its own error.
    const FORCE_NEW: &'static [&'static str] = &["name", "role"];
    const GONE: &'static [&'static str] = &[NOT_FOUND];
    const TAGGER: Tagger = Tagger::Eks;
    const PERMISSIONS: Permissions = Permissions {
        read: &["eks:DescribeCluster", "eks:ListClusters", "eks:DescribeUpdate"],
        create: &["eks:CreateCluster"],
        owned: &[
            "eks:UpdateClusterConfig",
            "eks:UpdateClusterVersion",
            "eks:DeleteCluster",
        ],
        passes_roles: &["role"],
        service_linked: &["eks.amazonaws.com"],
        ..Permissions::NONE
    };
    const REPLACE_WARNING: Option<&'static str> =
        Some("replacing an EKS cluster deletes it and every workload running on it, then creates an empty one");

    /// A FAILED cluster never becomes ACTIVE: replace it.
    fn tainted(&self, attributes: &Value) -> Option<String> {
        (attributes.get("status").and_then(Value::as_str) == Some("FAILED")).then(|| "FAILED".to_string())
    }

    fn canonical(&self, mut c: ClusterConfig, stack: &str, address: &str) -> Result<ClusterConfig, String> {
        c.name = Some(c.name.unwrap_or_else(|| format!("{stack}-{}", name_of(address))));
        crate::value::sort_dedup(&mut c.subnets);
        crate::value::sort_dedup(&mut c.security_groups);
        crate::value::sort_dedup(&mut c.public_access_cidrs);
        crate::value::sort_dedup(&mut c.logging);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        let version = config.get("version").and_then(Value::as_str);
        if let Some(v) = version.filter(|v| !v.contains("${") && !v.contains(crate::value::UNKNOWN)) {
            match minor(v) {
                None => {
                    let m = format!("{v:?} is not a Kubernetes version like \"1.31\"");
                    return Err(field_error("version", None, m));
                }
                // EKS creates no cluster older than its extended support.
                Some((major, min)) if major != 1 || min < OLDEST_MINOR => {
                    let m = format!(
                        "Kubernetes {v} is not a version EKS creates: 1.{OLDEST_MINOR} or later (see `aws eks describe-cluster-versions`)"
                    );
                    return Err(field_error("version", None, m));
                }
                Some(_) => {}
            }
        }
        let logging = config.get("logging").and_then(Value::as_array);
        for (i, t) in logging.into_iter().flatten().enumerate() {
            if let Some(t) = t.as_str().filter(|t| !LOG_TYPES.contains(t)) {
                let m = format!("unknown log type {t:?}; use {}", LOG_TYPES.join(", "));
                return Err(field_error("logging", Some(i), m));
            }
        }
        if config
            .get("subnets")
            .and_then(Value::as_array)
            .is_some_and(|s| s.len() < 2)
        {
            let m = "EKS needs subnets in at least two availability zones".into();
            return Err(field_error("subnets", None, m));
        }
        let mode = config
            .pointer("/access_config/authentication_mode")
            .and_then(Value::as_str);
        if let Some(m) = mode.filter(|m| !m.contains("${") && auth_rank(m).is_none()) {
            let path = vec![
                PathSeg::Field("access_config".into()),
                PathSeg::Field("authentication_mode".into()),
            ];
            return Err(SchemaError::at(
                path,
                format!("{m:?} is not an EKS authentication mode; use {}", AUTH_MODES.join(", ")),
            ));
        }
        let creator = config
            .pointer("/access_config/bootstrap_cluster_creator_admin_permissions")
            .and_then(Value::as_bool);
        if mode == Some("CONFIG_MAP") && creator == Some(false) {
            let path = vec![
                PathSeg::Field("access_config".into()),
                PathSeg::Field("bootstrap_cluster_creator_admin_permissions".into()),
            ];
            let m = "EKS refuses this in CONFIG_MAP mode (the creator is the only way in); use \
                     API_AND_CONFIG_MAP or API with an eks_access_entry";
            return Err(SchemaError::at(path, m.to_string()));
        }
        Ok(())
    }

    fn replaces(&self, prior: &Value, desired: &Value) -> Vec<String> {
        // EKS moves a cluster's authentication mode one way only; back is a new cluster.
        let mode = |v: &Value| {
            v.pointer("/access_config/authentication_mode")
                .and_then(Value::as_str)
                .and_then(auth_rank)
        };
        match (mode(prior), mode(desired)) {
            (Some(a), Some(b)) if b < a => vec!["access_config".into()],
            _ => Vec::new(),
        }
    }

    fn keep_unread(&self, state: &Value, live: &mut Value) {
        let flag = state.pointer("/access_config/bootstrap_cluster_creator_admin_permissions");
        if let (Some(f), Some(a)) = (flag, live.get_mut("access_config").and_then(Value::as_object_mut)) {
            a.entry("bootstrap_cluster_creator_admin_permissions")
                .or_insert(f.clone());
        }
    }

    fn diff_view(&self, prior: &mut Value, desired: &mut Value) {
        // The live side never holds the creator-admin flag (AWS does not report it
        // reliably): a side without it takes the other's, so it is neither drift nor a change.
        const FLAG: &str = "bootstrap_cluster_creator_admin_permissions";
        let flag = |v: &Value| {
            v.pointer("/access_config/bootstrap_cluster_creator_admin_permissions")
                .cloned()
        };
        let (from_desired, from_prior) = (flag(desired), flag(prior));
        for (from, to) in [(from_desired, prior), (from_prior, desired)] {
            if let (Some(f), Some(a)) = (from, to.get_mut("access_config").and_then(Value::as_object_mut)) {
                a.entry(FLAG).or_insert(f);
            }
        }
    }

    fn check_change(&self, prior: &Value, desired: &Value) -> Result<(), SchemaError> {
        let bootstrap = |v: &Value| {
            v.pointer("/access_config/bootstrap_cluster_creator_admin_permissions")
                .and_then(Value::as_bool)
        };
        if let (Some(a), Some(b)) = (bootstrap(prior), bootstrap(desired)) {
            if a != b {
                let path = vec![
                    PathSeg::Field("access_config".into()),
                    PathSeg::Field("bootstrap_cluster_creator_admin_permissions".into()),
                ];
                return Err(SchemaError::at(
                    path,
                    format!(
                        "EKS sets this only when it creates a cluster (this one has {a}); manage the creator's \
                         access with an eks_access_entry instead"
                    ),
                ));
            }
        }
        let version = |v: &Value| v.get("version").and_then(Value::as_str).map(str::to_string);
        let (Some(from), Some(to)) = (version(prior), version(desired)) else {
            return Ok(());
        };
        let (Some(a), Some(b)) = (minor(&from), minor(&to)) else {
            return Ok(());
        };
        if b < a {
            let m = format!("EKS cannot downgrade a cluster from {from} to {to}");
            return Err(field_error("version", None, m));
        }
        if b.0 != a.0 || b.1 > a.1 + 1 {
            let next = format!("{}.{}", a.0, a.1 + 1);
            let m = format!(
                "EKS upgrades one minor version at a time: from {from} go to {next} first, apply, then continue"
            );
            return Err(field_error("version", None, m));
        }
        Ok(())
    }

    fn tag_target(&self, live: &Live) -> String {
        arn_of(live)
    }

    fn view(&self, ctx: &Ctx, mut l: Live) -> Live {
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

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        // EKS has no batch describe: one DescribeCluster per cluster, concurrently.
        let names = match sel {
            Select::Ids(_) => sel.ids(),
            Select::Owner(_) => cluster_names(aws).await?,
        };
        let got = join_all(names.iter().map(|n| describe_cluster(&aws.eks, n))).await;
        let mut out = Vec::new();
        for c in got {
            out.extend(c?.as_ref().map(cluster_live));
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, c: &ClusterConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let eks = &call.aws.eks;
        let name = c.name.clone().unwrap_or_default();
        let vpc = VpcConfigRequest::builder()
            .set_subnet_ids(Some(c.subnets.clone()))
            .set_security_group_ids(Some(c.security_groups.clone()))
            .endpoint_public_access(c.endpoint_public_access)
            .endpoint_private_access(c.endpoint_private_access)
            .set_public_access_cidrs(Some(c.public_access_cidrs.clone()))
            .build();
        let mut req = eks
            .create_cluster()
            .name(&name)
            .version(&c.version)
            .role_arn(&c.role)
            .resources_vpc_config(vpc)
            .set_tags(Some(tags.clone().into_iter().collect()));
        if !c.logging.is_empty() {
            req = req.logging(Logging::builder().cluster_logging(logging_of(&c.logging, true)).build());
        }
        let access = CreateAccessConfigRequest::builder()
            .authentication_mode(AuthenticationMode::from(c.access_config.authentication_mode.as_str()))
            .bootstrap_cluster_creator_admin_permissions(c.access_config.bootstrap_cluster_creator_admin_permissions)
            .build();
        req = req.access_config(access);
        retry_while(
            role_not_assumable,
            "the cluster role is not assumable yet (IAM propagation)",
            IAM_PROPAGATION,
            || {
                let r = req.clone();
                async move { r.send().await.map_err(aws_err("eks CreateCluster")) }
            },
        )
        .await?;
        let cluster = wait_cluster(eks, &name, self.policy).await?;
        // Inputs are what was asked for (what EKS echoes can lag behind).
        Ok(Created::new(name, cluster_live(&cluster).live.attributes))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &ClusterConfig,
        c: &ClusterConfig,
    ) -> Result<Value, ProviderError> {
        let eks = &call.aws.eks;
        self.converge(eks, &prior.id, &old.into(), &c.into()).await?;
        let cluster = wait_cluster(eks, &prior.id, self.policy).await?;
        Ok(cluster_live(&cluster).live.attributes)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        match call.aws.eks.delete_cluster().name(id).send().await.map_err(aws_err("eks DeleteCluster")) {
            Err(e) if e.is(&[IN_USE]) => Err(AwsError {
                message: format!(
                    "{e}\n  The cluster still has nodegroups (or Fargate profiles) slipway does not manage; delete them first."
                ),
                code: e.code,
            }),
            other => other.map(|_| ()),
        }
    }

    async fn after_delete(&self, call: &Call<'_>, id: &str) -> Result<(), ProviderError> {
        wait_gone(&call.aws.eks, id, None, self.policy).await
    }
}

#[cfg(test)]
mod tests {
    //! The update calls moto lacks, on the AWS SDK's own mock client
    //! (aws-smithy-mocks): these prove the calls slipway makes and how it
    //! reads the answers, not how EKS behaves.

    use std::time::Duration;

    use aws_sdk_eks::operation::describe_update::DescribeUpdateOutput;
    use aws_sdk_eks::operation::update_cluster_config::UpdateClusterConfigOutput;
    use aws_sdk_eks::operation::update_cluster_version::UpdateClusterVersionOutput;
    use aws_sdk_eks::types::{ErrorCode, ErrorDetail, Update, UpdateStatus};
    use aws_sdk_eks::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn update(status: UpdateStatus) -> DescribeUpdateOutput {
        DescribeUpdateOutput::builder()
            .update(Update::builder().id("u1").status(status).build())
            .build()
    }

    fn fast() -> Policy {
        Policy::fast(Duration::from_secs(5))
    }

    fn view(version: &str, logging: &[&str], public: bool) -> ClusterConfigView {
        ClusterConfigView {
            version: version.into(),
            logging: logging.iter().map(|s| s.to_string()).collect(),
            public,
            private: false,
            cidrs: vec!["0.0.0.0/0".into()],
            authentication_mode: "API_AND_CONFIG_MAP".into(),
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_groups: vec![],
        }
    }

    fn started() -> Update {
        Update::builder().id("u1").build()
    }

    #[tokio::test]
    async fn version_change_is_update_cluster_version_then_waits_for_the_update_with_sdk_mock_client() {
        let upgrade = mock!(Client::update_cluster_version)
            .match_requests(|r| r.name() == Some("c") && r.version() == Some("1.31"))
            .then_output(|| UpdateClusterVersionOutput::builder().update(started()).build());
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
            .then_output(|| UpdateClusterConfigOutput::builder().update(started()).build());
        let endpoint = mock!(Client::update_cluster_config)
            .match_requests(|r| {
                r.logging().is_none()
                    && r.resources_vpc_config().and_then(|v| v.endpoint_public_access()) == Some(false)
            })
            .then_output(|| UpdateClusterConfigOutput::builder().update(started()).build());
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
        let upgrade = mock!(Client::update_cluster_version)
            .then_output(|| UpdateClusterVersionOutput::builder().update(started()).build());
        let describe = mock!(Client::describe_update).then_output(|| {
            let error = ErrorDetail::builder()
                .error_code(ErrorCode::InsufficientFreeAddresses)
                .error_message("subnet full")
                .build();
            let u = Update::builder()
                .id("u1")
                .status(UpdateStatus::Failed)
                .errors(error)
                .build();
            DescribeUpdateOutput::builder().update(u).build()
        });
        let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&upgrade, &describe]);
        let e = EksCluster { policy: fast() }
            .converge(&eks, "c", &view("1.30", &[], true), &view("1.31", &[], true))
            .await
            .unwrap_err();
        let want = "update u1 is Failed: InsufficientFreeAddresses: subnet full";
        assert!(e.message.contains(want), "{}", e.message);
    }

    #[tokio::test]
    async fn config_map_to_api_goes_through_api_and_config_map_one_update_each_with_sdk_mock_client() {
        let mode = |m: &'static str| {
            mock!(Client::update_cluster_config)
                .match_requests(move |r| {
                    r.access_config()
                        .and_then(|a| a.authentication_mode())
                        .map(|m| m.as_str())
                        == Some(m)
                })
                .then_output(|| UpdateClusterConfigOutput::builder().update(started()).build())
        };
        let (both, api) = (mode("API_AND_CONFIG_MAP"), mode("API"));
        let describe = mock!(Client::describe_update).then_output(|| update(UpdateStatus::Successful));
        let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&both, &api, &describe]);
        let mut old = view("1.30", &[], true);
        old.authentication_mode = "CONFIG_MAP".into();
        let mut new = view("1.30", &[], true);
        new.authentication_mode = "API".into();
        EksCluster { policy: fast() }
            .converge(&eks, "c", &old, &new)
            .await
            .unwrap();
        assert_eq!((both.num_calls(), api.num_calls()), (1, 1), "one step at a time");
        assert_eq!(describe.num_calls(), 2, "each waited for");
    }

    #[test]
    fn authentication_mode_moves_one_way_in_place_and_back_by_replacement() {
        use crate::providers::ResourceKind;
        let k = crate::providers::aws::kind::Aws(EksCluster::default());
        let cfg = |mode: &str| {
            k.complete(
                "s",
                "eks_cluster.main",
                &json!({"version": "1.31", "role": "r", "subnets": ["a", "b"], "access_config": {"authentication_mode": mode}}),
            )
        };
        let forward = k.diff(&cfg("CONFIG_MAP"), &cfg("API"));
        assert_eq!(
            (forward.changed.clone(), forward.forces_replace.clone()),
            (vec!["access_config".to_string()], vec![])
        );
        let back = k.diff(&cfg("API"), &cfg("API_AND_CONFIG_MAP"));
        assert_eq!(back.forces_replace, vec!["access_config".to_string()]);
        // A live side without the creator flag (AWS does not report it) is not a change.
        let mut live = cfg("API");
        live["access_config"]
            .as_object_mut()
            .unwrap()
            .remove("bootstrap_cluster_creator_admin_permissions");
        assert!(k.diff(&live, &cfg("API")).changed.is_empty());
        assert!(k.diff(&cfg("API"), &live).changed.is_empty());
        let mut off = cfg("API");
        off["access_config"]["bootstrap_cluster_creator_admin_permissions"] = json!(false);
        EksCluster::default().keep_unread(&off, &mut live);
        assert_eq!(
            live["access_config"]["bootstrap_cluster_creator_admin_permissions"],
            json!(false)
        );
        // The creator's bootstrap permission is fixed at creation.
        let mut off = cfg("API");
        off["access_config"]["bootstrap_cluster_creator_admin_permissions"] = json!(false);
        let e = k.check_change(&cfg("API"), &off).unwrap_err();
        assert!(e.message.contains("only when it creates a cluster"), "{}", e.message);
        assert!(k.check(&json!({"version": "1.31", "role": "r", "subnets": ["a", "b"], "access_config": {"authentication_mode": "IAM"}})).is_err());
    }
}
