//! `eks_addon`: an EKS add-on (metrics-server, vpc-cni, coredns, ...). The
//! version is pinned, or `"latest"`: the newest EKS offers for the cluster's
//! Kubernetes version, resolved at create. Create and update wait for
//! ACTIVE; an add-on that is DEGRADED (or anything but ACTIVE) is never in
//! sync: the plan shows it with its health issues and the apply waits again.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_eks::types::{Addon, AddonStatus, ResolveConflicts};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::NOT_FOUND;
use super::wait::describe_cluster;
use super::{arn_of, cluster_names, tag_map};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, none_if, AwsError, Clients};
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{join_all, Ctx, Live, ProviderError, SchemaError};

/// How long an add-on may take to become ACTIVE.
pub const ADDON_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// The version that means "the newest for the cluster's Kubernetes version".
pub const LATEST: &str = "latest";

fn latest() -> String {
    LATEST.into()
}
fn overwrite() -> String {
    "OVERWRITE".into()
}

const CONFLICTS: &[&str] = &["NONE", "OVERWRITE", "PRESERVE"];

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonConfig {
    /// The cluster's name.
    cluster: String,
    /// The add-on's name, e.g. "metrics-server".
    name: String,
    /// A version EKS offers ("v0.7.2-eksbuild.1"), or "latest".
    #[serde(default = "latest")]
    version: String,
    /// What EKS does with fields someone changed on the add-on's objects.
    #[serde(default = "overwrite")]
    resolve_conflicts: String,
    /// An IAM role for the add-on's service account (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_account_role: Option<String>,
    /// The add-on's configuration, as the JSON EKS takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    configuration_values: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// JSON compared by meaning (key order, spacing).
fn canonical_json(s: &str) -> String {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<(String, Value)> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(keys.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
            v => v,
        }
    }
    serde_json::from_str::<Value>(s)
        .map(|v| sorted(v).to_string())
        .unwrap_or_else(|_| s.to_string())
}

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once(':')
        .ok_or_else(|| ProviderError::new(format!("add-on ID {id:?} is not CLUSTER:ADDON")))
}

/// An add-on's health issues, one line.
fn issues(a: &Addon) -> String {
    let issues = a.health().map(|h| h.issues()).unwrap_or_default();
    let each = issues.iter().map(|i| {
        let code = i.code().map(|c| c.as_str()).unwrap_or("issue");
        format!("{code}: {}", i.message().unwrap_or(""))
    });
    each.collect::<Vec<_>>().join("; ")
}

/// Done when ACTIVE; DEGRADED names its health issues and may recover
/// (pods waiting for nodes); a failed create or update will not.
pub fn addon_active(a: &Addon) -> Check<()> {
    match a.status() {
        Some(AddonStatus::Active) => Check::Done(()),
        Some(s @ (AddonStatus::CreateFailed | AddonStatus::UpdateFailed | AddonStatus::DeleteFailed)) => {
            Check::Failed(format!("the add-on is {}: {}", s.as_str(), issues(a)))
        }
        Some(AddonStatus::Degraded) => Check::Pending(format!("DEGRADED: {}", issues(a))),
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

async fn describe_addon(eks: &aws_sdk_eks::Client, cluster: &str, name: &str) -> Result<Option<Addon>, ProviderError> {
    let r = eks.describe_addon().cluster_name(cluster).addon_name(name).send().await;
    Ok(none_if(r.map_err(aws_err("eks DescribeAddon")), &[NOT_FOUND])?.and_then(|o| o.addon))
}

/// `state`: the stored inputs, for what EKS does not report (`"latest"`, the conflict policy).
fn addon_live(cluster: &str, a: &Addon, state: Option<&Value>) -> Tagged {
    let name = a.addon_name().unwrap_or_default();
    let id = format!("{cluster}:{name}");
    let version = a.addon_version().unwrap_or_default();
    let kept = |k: &str| state.and_then(|s| s.get(k)).and_then(Value::as_str).map(str::to_string);
    let shown_version = match kept("version") {
        // "latest" was resolved at create: the add-on follows it as long as nobody moved it.
        Some(v) if v == LATEST => LATEST.to_string(),
        _ => version.to_string(),
    };
    let mut inputs = json!({
        "cluster": cluster,
        "name": name,
        "version": shown_version,
        "resolve_conflicts": kept("resolve_conflicts").unwrap_or_else(overwrite),
    });
    if let Some(r) = a.service_account_role_arn() {
        inputs["service_account_role"] = json!(r);
    }
    if let Some(c) = a.configuration_values().filter(|c| !c.is_empty()) {
        inputs["configuration_values"] = json!(canonical_json(c));
    }
    Tagged {
        live: Live {
            attributes: json!({
                "id": id,
                "arn": a.addon_arn().unwrap_or_default(),
                "addon_version": version,
                "status": a.status().map(|s| s.as_str()).unwrap_or_default(),
                "health_issues": issues(a),
            }),
            inputs,
            id,
        },
        tags: tag_map(a.tags()),
    }
}

/// `eks_addon`
pub struct EksAddon {
    pub policy: Policy,
}

impl Default for EksAddon {
    fn default() -> Self {
        EksAddon {
            policy: Policy::minutes(ADDON_TIMEOUT),
        }
    }
}

impl EksAddon {
    /// The version to install: as given, or the newest EKS offers for the cluster.
    async fn resolve(&self, eks: &aws_sdk_eks::Client, c: &AddonConfig) -> Result<String, ProviderError> {
        if c.version != LATEST {
            return Ok(c.version.clone());
        }
        let cluster = describe_cluster(eks, &c.cluster)
            .await?
            .ok_or_else(|| ProviderError::new(format!("cluster {} not found", c.cluster)))?;
        let k8s = cluster.version().unwrap_or_default().to_string();
        let out = eks
            .describe_addon_versions()
            .addon_name(&c.name)
            .kubernetes_version(&k8s)
            .send()
            .await
            .map_err(aws_err("eks DescribeAddonVersions"))?;
        let mut versions: Vec<&str> = out
            .addons()
            .iter()
            .filter(|a| a.addon_name() == Some(c.name.as_str()))
            .flat_map(|a| a.addon_versions())
            .filter(|v| {
                v.compatibilities()
                    .iter()
                    .any(|x| x.cluster_version() == Some(k8s.as_str()))
            })
            .filter_map(|v| v.addon_version())
            .collect();
        versions.sort_by(|a, b| version_key(a).cmp(&version_key(b)));
        versions.last().map(|v| v.to_string()).ok_or_else(|| {
            ProviderError::new(format!(
                "EKS offers no version of add-on {} for Kubernetes {k8s} (is the name right?)",
                c.name
            ))
        })
    }

    async fn wait_active(&self, eks: &aws_sdk_eks::Client, cluster: &str, name: &str) -> Result<Addon, ProviderError> {
        wait_for(&format!("EKS add-on {name} to become ACTIVE"), self.policy, || async {
            let a = describe_addon(eks, cluster, name)
                .await?
                .ok_or_else(|| ProviderError::new(format!("add-on {name} disappeared")))?;
            Ok(addon_active(&a).with(a))
        })
        .await
    }
}

/// "v1.19.2-eksbuild.1" as numbers, so v1.10 sorts after v1.9.
fn version_key(v: &str) -> Vec<u64> {
    v.trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[async_trait]
impl AwsKind for EksAddon {
    type Config = AddonConfig;
    const NAME: &'static str = "eks_addon";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "addon_version", "status", "health_issues"];
    const FORCE_NEW: &'static [&'static str] = &["cluster", "name"];
    const GONE: &'static [&'static str] = &[NOT_FOUND];
    const TAGGER: Tagger = Tagger::Eks;
    const PERMISSIONS: Permissions = Permissions {
        read: &["eks:DescribeAddon", "eks:ListAddons", "eks:DescribeAddonVersions"],
        create: &["eks:CreateAddon"],
        owned: &["eks:UpdateAddon", "eks:DeleteAddon"],
        passes_roles: &["service_account_role"],
        ..Permissions::NONE
    };

    fn canonical(&self, mut c: AddonConfig, _stack: &str, _address: &str) -> Result<AddonConfig, String> {
        c.configuration_values = c.configuration_values.map(|v| canonical_json(&v));
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        if let Some(r) = config.get("resolve_conflicts").and_then(Value::as_str) {
            if !CONFLICTS.contains(&r) {
                return Err(SchemaError::at(
                    vec![PathSeg::Field("resolve_conflicts".into())],
                    format!("{r:?}: use NONE, OVERWRITE or PRESERVE"),
                ));
            }
        }
        if let Some(v) = config.get("configuration_values").and_then(Value::as_str) {
            if !v.contains("${") && serde_json::from_str::<Value>(v).is_err() {
                return Err(SchemaError::at(
                    vec![PathSeg::Field("configuration_values".into())],
                    "EKS takes the add-on's configuration as JSON (see `aws eks describe-addon-configuration`)",
                ));
            }
        }
        Ok(())
    }

    fn tag_target(&self, live: &Live) -> String {
        arn_of(live)
    }

    fn pending(&self, attributes: &Value) -> Option<String> {
        match attributes.get("status").and_then(Value::as_str) {
            Some("ACTIVE") | None => None,
            Some(s) => {
                let issues = attributes
                    .get("health_issues")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some(if issues.is_empty() {
                    format!("add-on {s}")
                } else {
                    format!("add-on {s}: {issues}")
                })
            }
        }
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let wanted: Vec<(String, String, Option<&Value>)> = match sel {
            Select::Ids(reqs) => reqs
                .iter()
                .map(|r| split(r.id).map(|(c, a)| (c.to_string(), a.to_string(), Some(r.inputs))))
                .collect::<Result<_, _>>()?,
            Select::Owner(_) => {
                let mut all = Vec::new();
                for c in cluster_names(aws).await? {
                    let names = all_items!(aws.eks.list_addons().cluster_name(&c), "eks ListAddons")?;
                    all.extend(names.into_iter().map(|a| (c.clone(), a, None)));
                }
                all
            }
        };
        let got = join_all(wanted.iter().map(|(c, a, _)| describe_addon(&aws.eks, c, a))).await;
        let mut out = Vec::new();
        for ((c, _, state), g) in wanted.iter().zip(got) {
            if let Some(a) = g? {
                out.push(addon_live(c, &a, *state));
            }
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, c: &AddonConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let eks = &call.aws.eks;
        let version = self.resolve(eks, c).await?;
        let conflicts = if c.resolve_conflicts == "PRESERVE" {
            "OVERWRITE"
        } else {
            c.resolve_conflicts.as_str()
        };
        eks.create_addon()
            .cluster_name(&c.cluster)
            .addon_name(&c.name)
            .addon_version(&version)
            .resolve_conflicts(ResolveConflicts::from(conflicts))
            .set_service_account_role_arn(c.service_account_role.clone())
            .set_configuration_values(c.configuration_values.clone())
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws_err("eks CreateAddon"))?;
        let a = self.wait_active(eks, &c.cluster, &c.name).await?;
        let t = addon_live(&c.cluster, &a, None);
        Ok(Created::new(t.live.id, t.live.attributes))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        _prior: &Live,
        old: &AddonConfig,
        c: &AddonConfig,
    ) -> Result<Value, ProviderError> {
        let eks = &call.aws.eks;
        let changed = (&c.version, &c.service_account_role, &c.configuration_values)
            != (&old.version, &old.service_account_role, &old.configuration_values);
        if changed {
            let version = self.resolve(eks, c).await?;
            eks.update_addon()
                .cluster_name(&c.cluster)
                .addon_name(&c.name)
                .addon_version(&version)
                .resolve_conflicts(ResolveConflicts::from(c.resolve_conflicts.as_str()))
                .set_service_account_role_arn(Some(c.service_account_role.clone().unwrap_or_default()))
                .set_configuration_values(Some(c.configuration_values.clone().unwrap_or_default()))
                .send()
                .await
                .map_err(aws_err("eks UpdateAddon"))?;
        }
        // Changed or only not ready (DEGRADED): wait until it is ACTIVE.
        let a = self.wait_active(eks, &c.cluster, &c.name).await?;
        let attrs = addon_live(&c.cluster, &a, None).live.attributes;
        Ok(json!({
            "addon_version": attrs["addon_version"],
            "status": attrs["status"],
            "health_issues": attrs["health_issues"],
        }))
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        let (cluster, name) = split(id)?;
        let r = call
            .aws
            .eks
            .delete_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .send()
            .await;
        r.map_err(aws_err("eks DeleteAddon"))?;
        Ok(())
    }

    async fn after_delete(&self, call: &Call<'_>, id: &str) -> Result<(), ProviderError> {
        let (cluster, name) = split(id)?;
        wait_for(&format!("EKS add-on {name} to be deleted"), self.policy, || async {
            Ok(match describe_addon(&call.aws.eks, cluster, name).await? {
                None => Check::Done(()),
                Some(a) => match a.status() {
                    Some(AddonStatus::DeleteFailed) => Check::Failed(format!("DELETE_FAILED: {}", issues(&a))),
                    s => Check::Pending(s.map(|s| s.as_str().to_string()).unwrap_or_else(|| "DELETING".into())),
                },
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! On the AWS SDK's mock client (moto has no add-ons), through the
    //! generic lifecycle as the engine runs it.

    use std::time::Duration;

    use aws_sdk_eks::operation::create_addon::CreateAddonOutput;
    use aws_sdk_eks::operation::describe_addon::DescribeAddonOutput;
    use aws_sdk_eks::operation::describe_addon_versions::DescribeAddonVersionsOutput;
    use aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput;
    use aws_sdk_eks::types::{
        AddonHealth, AddonInfo, AddonIssue, AddonIssueCode, AddonVersionInfo, Cluster, Compatibility,
    };
    use aws_sdk_eks::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;
    use crate::providers::aws::kind::Aws;
    use crate::providers::aws::mock_ctx;
    use crate::providers::ResourceKind;

    fn addon(status: AddonStatus, issue: Option<(&str, &str)>) -> Addon {
        let mut health = AddonHealth::builder();
        if let Some((code, msg)) = issue {
            health = health.issues(
                AddonIssue::builder()
                    .code(AddonIssueCode::from(code))
                    .message(msg)
                    .build(),
            );
        }
        Addon::builder()
            .addon_name("metrics-server")
            .cluster_name("blog")
            .addon_version("v0.7.2-eksbuild.1")
            .addon_arn("arn:aws:eks:us-west-2:123456789012:addon/blog/metrics-server/x")
            .status(status)
            .health(health.build())
            .build()
    }

    fn versions() -> DescribeAddonVersionsOutput {
        let v = |s: &str, k8s: &str| {
            AddonVersionInfo::builder()
                .addon_version(s)
                .compatibilities(Compatibility::builder().cluster_version(k8s).build())
                .build()
        };
        DescribeAddonVersionsOutput::builder()
            .addons(
                AddonInfo::builder()
                    .addon_name("metrics-server")
                    .addon_versions(v("v0.7.1-eksbuild.1", "1.31"))
                    .addon_versions(v("v0.7.10-eksbuild.1", "1.32"))
                    .addon_versions(v("v0.7.2-eksbuild.1", "1.31"))
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn latest_resolves_for_the_cluster_version_and_create_waits_for_active_with_sdk_mock_client() {
        let cluster = mock!(Client::describe_cluster).then_output(|| {
            DescribeClusterOutput::builder()
                .cluster(Cluster::builder().name("blog").version("1.31").build())
                .build()
        });
        let versions = mock!(Client::describe_addon_versions)
            .match_requests(|r| r.kubernetes_version() == Some("1.31") && r.addon_name() == Some("metrics-server"))
            .then_output(versions);
        let create = mock!(Client::create_addon)
            .match_requests(|r| {
                r.addon_version() == Some("v0.7.2-eksbuild.1")
                    && r.resolve_conflicts() == Some(&ResolveConflicts::Overwrite)
                    && r.tags().and_then(|t| t.get("slipway:address")).map(String::as_str) == Some("eks_addon.metrics")
            })
            .then_output(|| CreateAddonOutput::builder().build());
        let describe = mock!(Client::describe_addon)
            .sequence()
            .output(|| {
                DescribeAddonOutput::builder()
                    .addon(addon(AddonStatus::Creating, None))
                    .build()
            })
            .output(|| {
                DescribeAddonOutput::builder()
                    .addon(addon(AddonStatus::Active, None))
                    .build()
            })
            .build();
        let ctx = mock_ctx(
            "blog",
            mock_client!(
                aws_sdk_eks,
                RuleMode::MatchAny,
                [&cluster, &versions, &create, &describe]
            ),
        );
        let kind = Aws(EksAddon {
            policy: Policy::fast(Duration::from_secs(5)),
        });
        let config = kind.complete(
            "blog",
            "eks_addon.metrics",
            &json!({"cluster": "blog", "name": "metrics-server"}),
        );
        assert_eq!(config["version"], "latest");
        let live = kind.create(&ctx, "eks_addon.metrics", &config).await.unwrap();
        assert_eq!(live.id, "blog:metrics-server");
        assert_eq!(
            live.attributes["addon_version"], "v0.7.2-eksbuild.1",
            "the newest for 1.31, not 1.32's"
        );
        assert_eq!(live.attributes["status"], "ACTIVE");
        assert_eq!((create.num_calls(), describe.num_calls()), (1, 2));
    }

    #[tokio::test]
    async fn a_degraded_addon_names_its_health_issues_and_is_never_in_sync_with_sdk_mock_client() {
        let describe = mock!(Client::describe_addon).then_output(|| {
            DescribeAddonOutput::builder()
                .addon(addon(
                    AddonStatus::Degraded,
                    Some((
                        "InsufficientNumberOfReplicas",
                        "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                    )),
                ))
                .build()
        });
        let create = mock!(Client::create_addon).then_output(|| CreateAddonOutput::builder().build());
        let ctx = mock_ctx(
            "blog",
            mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&create, &describe]),
        );
        let kind = Aws(EksAddon {
            policy: Policy::fast(Duration::from_millis(50)),
        });
        let config = kind.complete(
            "blog",
            "eks_addon.metrics",
            &json!({"cluster": "blog", "name": "metrics-server", "version": "v0.7.2-eksbuild.1"}),
        );
        let e = kind.create(&ctx, "eks_addon.metrics", &config).await.unwrap_err();
        assert!(
            e.message.contains("DEGRADED: InsufficientNumberOfReplicas"),
            "{}",
            e.message
        );

        let live = addon_live(
            "blog",
            &addon(AddonStatus::Degraded, Some(("InsufficientNumberOfReplicas", "few"))),
            None,
        );
        let pending = kind.pending(&live.live.attributes).expect("not ready");
        assert_eq!(pending, "add-on DEGRADED: InsufficientNumberOfReplicas: few");
        let active = addon_live("blog", &addon(AddonStatus::Active, None), None);
        assert_eq!(kind.pending(&active.live.attributes), None);
    }

    #[test]
    fn latest_stays_latest_in_the_live_view_and_configuration_compares_as_json() {
        let state = json!({"version": "latest", "resolve_conflicts": "PRESERVE"});
        let mut a = addon(AddonStatus::Active, None);
        a.configuration_values = Some("{ \"replicas\": 2,  \"args\": [] }".into());
        let mut live = addon_live("blog", &a, Some(&state)).live;
        live.inputs["tags"] = json!({});
        assert_eq!(live.inputs["version"], "latest");
        assert_eq!(live.inputs["resolve_conflicts"], "PRESERVE");
        let kind = Aws(EksAddon::default());
        let config = kind.complete(
            "blog",
            "eks_addon.metrics",
            &json!({"cluster": "blog", "name": "metrics-server", "resolve_conflicts": "PRESERVE",
                    "configuration_values": "{\"args\":[],\"replicas\":2}"}),
        );
        assert!(
            kind.diff(&live.inputs, &config).changed.is_empty(),
            "{:?}",
            kind.diff(&live.inputs, &config)
        );
        assert!(version_key("v1.10.0-eksbuild.1") > version_key("v1.9.9-eksbuild.3"));
    }
}
