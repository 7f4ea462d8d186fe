//! `alb_target_group`: a target group whose instances are listed, or that
//! follows an EKS nodegroup: attached to the nodegroup's Auto Scaling group,
//! AWS registers and deregisters the instances as nodes come and go.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetDescription, TargetGroup, TargetTypeEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{RESOURCE_IN_USE, TARGET_GROUP_NOT_FOUND};

/// EKS's answer for a nodegroup that does not exist.
const EKS_NOT_FOUND: &str = "ResourceNotFoundException";
use super::{default_name, elb_tags, tags_of, Elb};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, owned_by, owner_of, AwsError, Clients};
use crate::providers::{Ctx, Live, ProviderError, SchemaError};

fn http() -> String {
    "HTTP".into()
}
fn instance() -> String {
    "instance".into()
}
fn slash() -> String {
    "/".into()
}
fn ok_codes() -> String {
    "200-399".into()
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupConfig {
    /// Default `<stack>-<name>`, within 32 characters.
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "http")]
    protocol: String,
    /// Typically an app's NodePort.
    port: i32,
    vpc: String,
    #[serde(default = "instance")]
    target_type: String,
    #[serde(default = "slash")]
    health_check_path: String,
    #[serde(default = "ok_codes")]
    health_check_matcher: String,
    /// Explicit instance IDs.
    #[serde(default)]
    targets: Vec<String>,
    /// Follow this EKS nodegroup (its ID, `CLUSTER:NODEGROUP`, as
    /// `${eks_nodegroup.X.id}` gives it): the group is attached to the
    /// nodegroup's Auto Scaling group.
    #[serde(default)]
    nodegroup: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `alb_target_group`
pub struct AlbTargetGroup;

/// The name AWS holds for a group of the default name: the name, cut to 23
/// characters, and a hash of the fields that replace it, so a replacement
/// can be made (and the listener moved to it) before the old group goes;
/// ELB names are unique and at most 32 characters. An explicit `name` is used as given.
fn aws_name(prefix: &str, protocol: &str, port: i64, vpc: &str, target_type: &str) -> String {
    let hash = crate::providers::common::short_hash(&format!("{protocol}:{port}:{vpc}:{target_type}"));
    let cut: String = prefix.chars().take(23).collect();
    format!("{}-{:08x}", cut.trim_end_matches('-'), hash as u32)
}

/// `prefix` when `live` (a live group's inputs) carries its hashed form.
fn unhash_name(live: &mut Value, prefix: &str) {
    let field = |k: &str| live.get(k).cloned().unwrap_or(Value::Null);
    let want = aws_name(
        prefix,
        field("protocol").as_str().unwrap_or_default(),
        field("port").as_i64().unwrap_or_default(),
        field("vpc").as_str().unwrap_or_default(),
        field("target_type").as_str().unwrap_or_default(),
    );
    if live.get("name").and_then(Value::as_str) == Some(want.as_str()) {
        live["name"] = json!(prefix);
    }
}

fn tg_live(t: &TargetGroup) -> Live {
    let arn = t.target_group_arn().unwrap_or_default().to_string();
    Live {
        id: arn.clone(),
        inputs: json!({
            "name": t.target_group_name().unwrap_or_default(),
            "protocol": t.protocol().map(|p| p.as_str()).unwrap_or("HTTP"),
            "port": t.port().unwrap_or(0),
            "vpc": t.vpc_id().unwrap_or_default(),
            "target_type": t.target_type().map(|p| p.as_str()).unwrap_or("instance"),
            "health_check_path": t.health_check_path().unwrap_or("/"),
            "health_check_matcher": t.matcher().and_then(|m| m.http_code()).unwrap_or("200-399"),
        }),
        attributes: json!({ "id": arn, "arn": arn, "target_group_name": t.target_group_name().unwrap_or_default() }),
    }
}

async fn all_tgs(elb: &Elb) -> Result<Vec<Tagged>, ProviderError> {
    let tgs: Vec<TargetGroup> = all_items!(elb.describe_target_groups(), "elbv2 DescribeTargetGroups")?;
    let arns: Vec<String> = tgs
        .iter()
        .filter_map(|t| t.target_group_arn().map(str::to_string))
        .collect();
    let mut tags = tags_of(elb, &arns).await?;
    Ok(tgs
        .iter()
        .map(|t| Tagged {
            live: tg_live(t),
            tags: tags
                .remove(t.target_group_arn().unwrap_or_default())
                .unwrap_or_default(),
        })
        .collect())
}

/// The Auto Scaling groups of a nodegroup (`CLUSTER:NODEGROUP`), as EKS
/// reports them; none when the nodegroup is gone.
async fn nodegroup_asgs(aws: &Clients, nodegroup: &str) -> Result<Vec<String>, ProviderError> {
    let (cluster, name) = nodegroup.split_once(':').ok_or_else(|| {
        ProviderError::new(format!(
            "nodegroup {nodegroup:?} is not CLUSTER:NODEGROUP; use ${{eks_nodegroup.NAME.id}}"
        ))
    })?;
    let out = aws
        .eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
        .map_err(aws_err("eks DescribeNodegroup"));
    let out = match out {
        Err(e) if e.is(&[EKS_NOT_FOUND]) => return Ok(Vec::new()),
        r => r?,
    };
    Ok(out
        .nodegroup()
        .and_then(|n| n.resources())
        .map(|r| {
            r.auto_scaling_groups()
                .iter()
                .filter_map(|g| g.name().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The Auto Scaling groups among `asgs` that exist and hold `arn`.
async fn attached_to(aws: &Clients, asgs: &[String], arn: &str) -> Result<Vec<String>, ProviderError> {
    if asgs.is_empty() {
        return Ok(Vec::new());
    }
    let r = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(asgs.to_vec()))
        .send()
        .await
        .map_err(aws_err("autoscaling DescribeAutoScalingGroups"))?;
    Ok(r.auto_scaling_groups()
        .iter()
        .filter(|g| g.target_group_arns().iter().any(|t| t == arn))
        .map(|g| g.auto_scaling_group_name().unwrap_or_default().to_string())
        .collect())
}

async fn attach(aws: &Clients, asgs: &[String], arn: &str) -> Result<(), ProviderError> {
    for g in asgs {
        aws.autoscaling
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(g)
            .target_group_arns(arn)
            .send()
            .await
            .map_err(aws_err("autoscaling AttachLoadBalancerTargetGroups"))?;
    }
    Ok(())
}

/// Detach `arn` from those of `asgs` that still hold it (a group gone with
/// its nodegroup holds nothing).
async fn detach(aws: &Clients, asgs: &[String], arn: &str) -> Result<(), ProviderError> {
    for g in attached_to(aws, asgs, arn).await? {
        aws.autoscaling
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(&g)
            .target_group_arns(arn)
            .send()
            .await
            .map_err(aws_err("autoscaling DetachLoadBalancerTargetGroups"))?;
    }
    Ok(())
}

/// Explicit targets: register what `want` adds, deregister what `drop` lists.
async fn register(aws: &Clients, arn: &str, want: &[String], drop: &[String], port: i32) -> Result<(), ProviderError> {
    let elb = &aws.elb;
    let health = elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(aws_err("elbv2 DescribeTargetHealth"))?;
    let have: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
        .collect();
    let add: Vec<TargetDescription> = want
        .iter()
        .filter(|t| !have.contains(t))
        .map(|t| TargetDescription::builder().id(t).port(port).build())
        .collect();
    let del: Vec<TargetDescription> = drop
        .iter()
        .filter(|t| have.contains(t) && !want.contains(t))
        .map(|t| TargetDescription::builder().id(t).build())
        .collect();
    if !add.is_empty() {
        elb.register_targets()
            .target_group_arn(arn)
            .set_targets(Some(add))
            .send()
            .await
            .map_err(aws_err("elbv2 RegisterTargets"))?;
    }
    if !del.is_empty() {
        elb.deregister_targets()
            .target_group_arn(arn)
            .set_targets(Some(del))
            .send()
            .await
            .map_err(aws_err("elbv2 DeregisterTargets"))?;
    }
    Ok(())
}

/// The group's attachment to its nodegroup, made or moved: the Auto Scaling
/// groups now attached (recorded, so a delete detaches them).
async fn follow(aws: &Clients, arn: &str, old: Option<&str>, new: Option<&str>) -> Result<Vec<String>, ProviderError> {
    let want = match new {
        Some(n) => {
            let asgs = nodegroup_asgs(aws, n).await?;
            if asgs.is_empty() {
                return Err(ProviderError::new(format!(
                    "EKS reports no Auto Scaling group for nodegroup {n} (gone, or not created yet)"
                )));
            }
            asgs
        }
        None => Vec::new(),
    };
    // The new nodes first, then the old ones let go: traffic always has somewhere to go.
    let have = attached_to(aws, &want, arn).await?;
    let missing: Vec<String> = want.iter().filter(|g| !have.contains(g)).cloned().collect();
    attach(aws, &missing, arn).await?;
    if let Some(o) = old.filter(|o| Some(*o) != new) {
        // A replaced nodegroup may be gone already, and its group with it.
        let stale: Vec<String> = nodegroup_asgs(aws, o)
            .await?
            .into_iter()
            .filter(|g| !want.contains(g))
            .collect();
        detach(aws, &stale, arn).await?;
    }
    Ok(want)
}

#[async_trait]
impl AwsKind for AlbTargetGroup {
    type Config = TargetGroupConfig;
    const NAME: &'static str = "alb_target_group";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "autoscaling_groups", "target_group_name"];
    const FORCE_NEW: &'static [&'static str] = &["name", "protocol", "port", "vpc", "target_type"];
    /// The listener moves to the new group before the old one goes (the
    /// default name carries a hash of these fields, so both can exist).
    const CREATE_BEFORE_DESTROY: bool = true;
    const GONE: &'static [&'static str] = &[TARGET_GROUP_NOT_FOUND];
    /// A listener that just let go of it may still hold it.
    const DELETE_RETRY: &'static [&'static str] = &[RESOURCE_IN_USE];
    const TAGGER: Tagger = Tagger::Elbv2;
    const PERMISSIONS: Permissions = Permissions {
        read: &[
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTargetHealth",
            "eks:DescribeNodegroup",
            "autoscaling:DescribeAutoScalingGroups",
        ],
        create: &["elasticloadbalancing:CreateTargetGroup"],
        owned: &[
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:RegisterTargets",
            "elasticloadbalancing:DeregisterTargets",
            "elasticloadbalancing:DeleteTargetGroup",
        ],
        unowned: &[
            "autoscaling:AttachLoadBalancerTargetGroups",
            "autoscaling:DetachLoadBalancerTargetGroups",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, mut c: TargetGroupConfig, stack: &str, address: &str) -> Result<TargetGroupConfig, String> {
        c.name = Some(c.name.unwrap_or_else(|| default_name(stack, address)));
        crate::value::sort_dedup(&mut c.targets);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        super::check_name(config)?;
        if let Some(p) = config
            .get("port")
            .and_then(Value::as_i64)
            .filter(|p| !(1..=65535).contains(p))
        {
            return Err(SchemaError::at(
                vec![PathSeg::Field("port".into())],
                format!("port {p} must be 1-65535"),
            ));
        }
        if let Some(n) = config
            .get("nodegroup")
            .and_then(Value::as_str)
            .filter(|n| !n.contains("${") && !n.contains(':'))
        {
            return Err(SchemaError::at(
                vec![PathSeg::Field("nodegroup".into())],
                format!("{n:?} is not a nodegroup ID (CLUSTER:NODEGROUP); use \"${{eks_nodegroup.NAME.id}}\""),
            ));
        }
        Ok(())
    }

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let mut all = all_tgs(&aws.elb).await?;
        if let Select::Owner(address) = sel {
            let prefix = default_name(&ctx.stack, address);
            for t in &mut all {
                unhash_name(&mut t.live.inputs, &prefix);
            }
        }
        if let Select::Ids(reqs) = sel {
            for t in &mut all {
                let Some(r) = reqs.iter().find(|r| r.id == t.live.id) else {
                    continue;
                };
                if let Some(prefix) = r.inputs.get("name").and_then(Value::as_str) {
                    unhash_name(&mut t.live.inputs, prefix);
                }
                // What ELB does not report: the Auto Scaling groups this state
                // attached it to (a delete detaches them).
                if let Some(v) = r.attributes.get("autoscaling_groups") {
                    t.live.attributes["autoscaling_groups"] = v.clone();
                }
                // Explicit targets are registrations this state made; AWS
                // also holds the Auto Scaling group's, so the list is the state's.
                t.live.inputs["targets"] = r.inputs.get("targets").cloned().unwrap_or(json!([]));
                // The nodegroup is followed while its Auto Scaling group holds this group.
                let followed = match r.inputs.get("nodegroup").and_then(Value::as_str) {
                    Some(n) => {
                        let asgs = nodegroup_asgs(aws, n).await?;
                        if attached_to(aws, &asgs, &t.live.id).await?.is_empty() {
                            Value::Null
                        } else {
                            json!(n)
                        }
                    }
                    None => Value::Null,
                };
                t.live.inputs["nodegroup"] = followed;
            }
        }
        Ok(all)
    }

    async fn create(&self, call: &Call<'_>, c: &TargetGroupConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let (ctx, address, elb) = (call.ctx, call.address, &call.aws.elb);
        let given = c.name.clone().unwrap_or_default();
        let name = if given == default_name(&ctx.stack, address) {
            aws_name(&given, &c.protocol, i64::from(c.port), &c.vpc, &c.target_type)
        } else {
            given.clone()
        };
        if let Some(mut t) = all_tgs(elb)
            .await?
            .into_iter()
            .find(|t| t.live.inputs["name"] == json!(name))
        {
            let same = |k: &str, v: Value| t.live.inputs.get(k) == Some(&v);
            let this_config = same("protocol", json!(c.protocol))
                && same("port", json!(c.port))
                && same("vpc", json!(c.vpc))
                && same("target_type", json!(c.target_type));
            if owned_by(ctx, address, &t.tags) && this_config {
                // An interrupted create of this very group: take it up.
                unhash_name(&mut t.live.inputs, &given);
                return Ok(Created::Existing(t));
            }
            if owned_by(ctx, address, &t.tags) {
                return Err(ProviderError::new(format!(
                    "{address} is replaced new group first, but its explicit name {name} is taken by the group it \
                     replaces ({}), and ELB names are unique. Remove `name` (slipway then names the group with a \
                     hash of what replaces it) or give a new one",
                    t.live.id
                )));
            }
            return Err(ProviderError::new(format!(
                "a target group named {name} already exists ({}), owned by {}, not by {address} of this state.\n  Take it over deliberately with `slipway import {address} {}`, or pick another `name`",
                t.live.id, owner_of(&t.tags), t.live.id
            )));
        }
        let out = elb
            .create_target_group()
            .name(&name)
            .protocol(ProtocolEnum::from(c.protocol.as_str()))
            .port(c.port)
            .vpc_id(&c.vpc)
            .target_type(TargetTypeEnum::from(c.target_type.as_str()))
            .health_check_path(&c.health_check_path)
            .matcher(Matcher::builder().http_code(&c.health_check_matcher).build())
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(aws_err("elbv2 CreateTargetGroup"))?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string();
        if arn.is_empty() {
            return Ok(Created::new(arn, Value::Null));
        }
        register(call.aws, &arn, &c.targets, &[], c.port).await?;
        let asgs = follow(call.aws, &arn, None, c.nodegroup.as_deref()).await?;
        Ok(Created::new(
            arn.clone(),
            json!({"id": arn, "arn": arn, "autoscaling_groups": asgs, "target_group_name": name}),
        ))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &TargetGroupConfig,
        c: &TargetGroupConfig,
    ) -> Result<Value, ProviderError> {
        if (&c.health_check_path, &c.health_check_matcher) != (&old.health_check_path, &old.health_check_matcher) {
            call.aws
                .elb
                .modify_target_group()
                .target_group_arn(&prior.id)
                .health_check_path(&c.health_check_path)
                .matcher(Matcher::builder().http_code(&c.health_check_matcher).build())
                .send()
                .await
                .map_err(aws_err("elbv2 ModifyTargetGroup"))?;
        }
        register(call.aws, &prior.id, &c.targets, &old.targets, c.port).await?;
        // `old` is the live view: a hand-detached group reads as following nothing.
        let asgs = follow(call.aws, &prior.id, old.nodegroup.as_deref(), c.nodegroup.as_deref()).await?;
        Ok(json!({ "autoscaling_groups": asgs }))
    }

    async fn before_delete(&self, call: &Call<'_>, id: &str, attributes: &Value) -> Result<(), ProviderError> {
        // AWS refuses to delete a group an Auto Scaling group still holds.
        let asgs: Vec<String> = attributes
            .get("autoscaling_groups")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        detach(call.aws, &asgs, id).await
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .elb
            .delete_target_group()
            .target_group_arn(id)
            .send()
            .await
            .map_err(aws_err("elbv2 DeleteTargetGroup"))?;
        Ok(())
    }
}
