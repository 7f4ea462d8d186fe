//! `eks_nodegroup`: a managed nodegroup. Its name is a prefix plus a hash of
//! the fields that replace it, so a replacement is created (and waited for)
//! under a new name before the old one goes: the cluster never runs out of
//! nodes. Scaling, labels and taints update in place in one call; under the
//! cluster autoscaler (`autoscaled`) the desired size is not ours to fight.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, Nodegroup, NodegroupScalingConfig, NodegroupStatus, Taint, TaintEffect,
    UpdateLabelsPayload, UpdateTaintsPayload,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::NOT_FOUND;
use super::wait::{describe_nodegroup, wait_gone, wait_nodegroup, wait_update};
use super::{arn_of, cluster_names, nodegroup_names, start_update, tag_map};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::common::{name_of, short_hash};
use crate::providers::wait::Policy;
use crate::providers::{join_all, Ctx, Live, ProviderError, SchemaError};

/// How long a nodegroup may take.
pub const NODEGROUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaintConfig {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE.
    effect: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
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

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodegroupConfig {
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
        let h = short_hash(&key);
        format!("{}-{:08x}", self.name.as_deref().unwrap_or("ng"), (h >> 32) as u32)
    }
}

const TAINT_EFFECTS: &[&str] = &["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"];

fn nodegroup_live(n: &Nodegroup) -> Tagged {
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
    let size = |f: fn(&NodegroupScalingConfig) -> Option<i32>| s.and_then(f).unwrap_or(0);
    let id = format!("{cluster}:{full}");
    let live = Live {
        inputs: json!({
            "cluster": cluster,
            "name": prefix,
            "node_role": n.node_role().unwrap_or_default(),
            "subnets": subnets,
            "instance_types": types,
            "capacity_type": n.capacity_type().map(|c| c.as_str()).unwrap_or("ON_DEMAND"),
            "disk_size": n.disk_size().unwrap_or(20),
            "ami_type": n.ami_type().map(|a| a.as_str()).unwrap_or_default(),
            "scaling": { "min": size(|s| s.min_size()), "max": size(|s| s.max_size()), "desired": size(|s| s.desired_size()) },
            "labels": tag_map(n.labels()),
            "taints": taints,
        }),
        attributes: json!({
            "id": id,
            "nodegroup_name": full,
            "arn": n.nodegroup_arn().unwrap_or_default(),
            "status": n.status().map(|s| s.as_str()).unwrap_or_default(),
            "health_issues": super::conditions::nodegroup_issues(n),
        }),
        id,
    };
    Tagged {
        live,
        tags: tag_map(n.tags()),
    }
}

/// A status with the health issues EKS gives for it.
fn health(status: &str, attributes: &Value) -> String {
    match attributes
        .get("health_issues")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
    {
        Some(i) => format!("{status} ({i})"),
        None => status.to_string(),
    }
}

fn split_id(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once(':')
        .ok_or_else(|| ProviderError::new(format!("nodegroup ID {id:?} is not CLUSTER:NODEGROUP")))
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

fn taint(t: &TaintConfig) -> Taint {
    Taint::builder()
        .key(&t.key)
        .set_value(t.value.clone())
        .effect(TaintEffect::from(t.effect.as_str()))
        .build()
}

fn scaling(min: i32, max: i32, desired: i32) -> NodegroupScalingConfig {
    NodegroupScalingConfig::builder()
        .min_size(min)
        .max_size(max)
        .desired_size(desired)
        .build()
}

#[async_trait]
impl AwsKind for EksNodegroup {
    type Config = NodegroupConfig;
    const NAME: &'static str = "eks_nodegroup";
    const COMPUTED: &'static [&'static str] = &["id", "nodegroup_name", "arn", "status", "health_issues"];
    const FORCE_NEW: &'static [&'static str] = &[
        "cluster",
        "name",
        "node_role",
        "subnets",
        "instance_types",
        "capacity_type",
        "disk_size",
        "ami_type",
    ];
    const GONE: &'static [&'static str] = &[NOT_FOUND];
    const TAGGER: Tagger = Tagger::Eks;
    const PERMISSIONS: Permissions = Permissions {
        read: &["eks:DescribeNodegroup", "eks:ListNodegroups", "eks:DescribeUpdate"],
        create: &["eks:CreateNodegroup"],
        owned: &["eks:UpdateNodegroupConfig", "eks:DeleteNodegroup"],
        passes_roles: &["node_role"],
        service_linked: &["eks-nodegroup.amazonaws.com", "autoscaling.amazonaws.com"],
        ..Permissions::NONE
    };
    const CREATE_BEFORE_DESTROY: bool = true;

    /// A nodegroup that failed to create never will: replace it.
    fn tainted(&self, attributes: &Value) -> Option<String> {
        let status = attributes.get("status").and_then(Value::as_str)?;
        (status == "CREATE_FAILED").then(|| health(status, attributes))
    }

    /// A DEGRADED one may recover (an update, capacity coming back): wait for it.
    fn pending(&self, attributes: &Value) -> Option<String> {
        let status = attributes.get("status").and_then(Value::as_str)?;
        (status == "DEGRADED").then(|| health(status, attributes))
    }

    fn canonical(&self, mut c: NodegroupConfig, _stack: &str, address: &str) -> Result<NodegroupConfig, String> {
        c.name = Some(c.name.unwrap_or_else(|| name_of(address).to_string()));
        crate::value::sort_dedup(&mut c.subnets);
        crate::value::sort_dedup(&mut c.instance_types);
        crate::value::sort_dedup(&mut c.taints);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        let field = |f: &str| PathSeg::Field(f.into());
        if let Ok(s) = serde_json::from_value::<Scaling>(config.get("scaling").cloned().unwrap_or(Value::Null)) {
            if s.min < 0 || s.max < 1 || s.min > s.max || s.desired < s.min || s.desired > s.max {
                let m = format!(
                    "scaling needs 0 <= min <= desired <= max and max >= 1 (got min {}, desired {}, max {})",
                    s.min, s.desired, s.max
                );
                return Err(SchemaError::at(vec![field("scaling")], m));
            }
        }
        let taints = config.get("taints").and_then(Value::as_array);
        for (i, t) in taints.into_iter().flatten().enumerate() {
            if let Some(e) = t
                .get("effect")
                .and_then(Value::as_str)
                .filter(|e| !TAINT_EFFECTS.contains(e))
            {
                let m = format!("unknown taint effect {e:?}; use {}", TAINT_EFFECTS.join(", "));
                return Err(SchemaError::at(
                    vec![field("taints"), PathSeg::Index(i), field("effect")],
                    m,
                ));
            }
        }
        let capacity = config.get("capacity_type").and_then(Value::as_str);
        if let Some(c) = capacity.filter(|c| !["ON_DEMAND", "SPOT"].contains(c)) {
            let m = format!("capacity_type {c:?} must be ON_DEMAND or SPOT");
            return Err(SchemaError::at(vec![field("capacity_type")], m));
        }
        Ok(())
    }

    fn diff_view(&self, prior: &mut Value, desired: &mut Value) {
        // Under the cluster autoscaler the live desired size is not ours to fight.
        if desired.get("autoscaled") == Some(&Value::Bool(true)) {
            if let Some(d) = prior.pointer("/scaling/desired").cloned() {
                if let Some(s) = desired.get_mut("scaling").and_then(Value::as_object_mut) {
                    s.insert("desired".into(), d);
                }
            }
        }
        if prior.get("autoscaled").is_none() {
            // Live reads cannot know the flag; it is the config's.
            if let (Some(p), Some(d)) = (prior.as_object_mut(), desired.get("autoscaled")) {
                p.insert("autoscaled".into(), d.clone());
            }
        }
    }

    fn tag_target(&self, live: &Live) -> String {
        arn_of(live)
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        // EKS has no batch describe: one DescribeNodegroup per nodegroup, concurrently.
        let wanted: Vec<(String, String, Option<&Value>)> = match sel {
            Select::Ids(reqs) => reqs
                .iter()
                .map(|r| split_id(r.id).map(|(c, n)| (c.to_string(), n.to_string(), Some(r.inputs))))
                .collect::<Result<_, _>>()?,
            Select::Owner(_) => {
                let mut all = Vec::new();
                for c in cluster_names(aws).await? {
                    all.extend(
                        nodegroup_names(aws, &c)
                            .await?
                            .into_iter()
                            .map(|n| (c.clone(), n, None)),
                    );
                }
                all
            }
        };
        let got = join_all(wanted.iter().map(|(c, n, _)| describe_nodegroup(&aws.eks, c, n))).await;
        let mut out = Vec::new();
        for ((_, _, prior), n) in wanted.iter().zip(got) {
            let Some(n) = n? else { continue };
            if prior.is_none() && matches!(n.status(), Some(NodegroupStatus::Deleting)) {
                continue;
            }
            let mut t = nodegroup_live(&n);
            // The autoscaled flag lives only in the config.
            if let Some(a) = prior.and_then(|p| p.get("autoscaled")) {
                t.live.inputs["autoscaled"] = a.clone();
            }
            out.push(t);
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, c: &NodegroupConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let eks = &call.aws.eks;
        let full = c.full_name();
        eks.create_nodegroup()
            .cluster_name(&c.cluster)
            .nodegroup_name(&full)
            .node_role(&c.node_role)
            .set_subnets(Some(c.subnets.clone()))
            .set_instance_types(Some(c.instance_types.clone()))
            .capacity_type(CapacityTypes::from(c.capacity_type.as_str()))
            .disk_size(c.disk_size)
            .ami_type(AmiTypes::from(c.ami_type.as_str()))
            .scaling_config(scaling(c.scaling.min, c.scaling.max, c.scaling.desired))
            .set_labels(Some(c.labels.clone().into_iter().collect()))
            .set_taints(Some(c.taints.iter().map(taint).collect()))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws_err("eks CreateNodegroup"))?;
        let n = wait_nodegroup(eks, &c.cluster, &full, None, self.policy).await?;
        let t = nodegroup_live(&n);
        Ok(Created::new(t.live.id, t.live.attributes))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &NodegroupConfig,
        c: &NodegroupConfig,
    ) -> Result<Value, ProviderError> {
        let eks = &call.aws.eks;
        let (cluster, ng) = split_id(&prior.id)?;
        let mut req = eks.update_nodegroup_config().cluster_name(cluster).nodegroup_name(ng);
        let mut any = false;
        let desired = if c.autoscaled {
            old.scaling.desired.clamp(c.scaling.min, c.scaling.max)
        } else {
            c.scaling.desired
        };
        if c.scaling != old.scaling || desired != old.scaling.desired {
            req = req.scaling_config(scaling(c.scaling.min, c.scaling.max, desired));
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
            let labels = UpdateLabelsPayload::builder()
                .set_add_or_update_labels((!add.is_empty()).then_some(add))
                .set_remove_labels((!remove.is_empty()).then_some(remove));
            req = req.labels(labels.build());
            any = true;
        }
        if c.taints != old.taints {
            let add: Vec<Taint> = c.taints.iter().filter(|t| !old.taints.contains(t)).map(taint).collect();
            let kept = |t: &&TaintConfig| c.taints.iter().any(|n| n.key == t.key && n.effect == t.effect);
            let remove: Vec<Taint> = old.taints.iter().filter(|t| !kept(t)).map(taint).collect();
            let taints = UpdateTaintsPayload::builder()
                .set_add_or_update_taints((!add.is_empty()).then_some(add))
                .set_remove_taints((!remove.is_empty()).then_some(remove));
            req = req.taints(taints.build());
            any = true;
        }
        if any {
            let what = format!("nodegroup {ng} of {cluster}");
            let id = start_update(&what, || async {
                let out = req.clone().send().await;
                out.map(|o| o.update).map_err(aws_err("eks UpdateNodegroupConfig"))
            })
            .await?;
            // Labels and taints are applied to the nodes after the nodegroup
            // reads ACTIVE again: the update itself says when it is done.
            wait_update(eks, cluster, Some(ng), &id, self.policy).await?;
        }
        let min_max = Some((c.scaling.min, c.scaling.max));
        let n = wait_nodegroup(eks, cluster, ng, min_max, self.policy).await?;
        Ok(nodegroup_live(&n).live.attributes)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        let (cluster, ng) = split_id(id)?;
        let r = call
            .aws
            .eks
            .delete_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(ng)
            .send()
            .await;
        r.map_err(aws_err("eks DeleteNodegroup"))?;
        Ok(())
    }

    async fn after_delete(&self, call: &Call<'_>, id: &str) -> Result<(), ProviderError> {
        let (cluster, ng) = split_id(id)?;
        wait_gone(&call.aws.eks, cluster, Some(ng), self.policy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodegroup_names_change_exactly_when_a_replacement_is_forced() {
        let base = json!({"cluster": "c", "node_role": "r", "subnets": ["s1", "s2"], "scaling": {"min": 1, "max": 2, "desired": 1}});
        let n = |v: &Value| {
            let c: NodegroupConfig = serde_json::from_value(v.clone()).unwrap();
            EksNodegroup::default()
                .canonical(c, "s", "eks_nodegroup.main")
                .unwrap()
                .full_name()
        };
        let mut scaled = base.clone();
        scaled["scaling"]["max"] = json!(5);
        let mut bigger = base.clone();
        bigger["instance_types"] = json!(["m5.large"]);
        assert_eq!(n(&base), n(&scaled));
        assert_ne!(n(&base), n(&bigger));
        assert!(n(&base).starts_with("main-"));
    }
}
