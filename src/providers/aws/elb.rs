//! Application load balancing: `alb`, `alb_target_group`, `alb_listener`,
//! through aws-sdk-elasticloadbalancingv2. Creates look for an existing
//! object by name (ALB, target group) or port (listener) and its ownership
//! tags first: CreateLoadBalancer under moto makes a second ALB for a name
//! in use, and a crash between the call and the state write must never
//! leave two.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, LoadBalancer, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher,
    ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Tag, TargetDescription, TargetGroup,
    TargetTypeEnum,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{all_tags, aws_err, owned_by, user_view, AwsError};
use crate::providers::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};
use crate::stack::node::PathSeg;

type Elb = aws_sdk_elasticloadbalancingv2::Client;

fn elb_tags(t: &BTreeMap<String, String>) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Tags of many ARNs (DescribeTags takes 20 at a time).
async fn tags_of(elb: &Elb, arns: &[String]) -> Result<HashMap<String, BTreeMap<String, String>>, ProviderError> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(20) {
        let r = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws_err("elbv2 DescribeTags"))?;
        for d in r.tag_descriptions() {
            let t = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), t);
        }
    }
    Ok(out)
}

async fn sync_tags(
    ctx: &Ctx,
    elb: &Elb,
    arn: &str,
    address: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let (set, remove) = super::tag_changes(ctx, address, old, new);
    if !set.is_empty() {
        elb.add_tags()
            .resource_arns(arn)
            .set_tags(Some(elb_tags(&set)))
            .send()
            .await
            .map_err(aws_err("elbv2 AddTags"))?;
    }
    if !remove.is_empty() {
        elb.remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(aws_err("elbv2 RemoveTags"))?;
    }
    Ok(())
}

fn default_name(stack: &str, address: &str) -> String {
    let n = address.split_once('.').map(|(_, n)| n).unwrap_or(address);
    let mut s: String = format!("{stack}-{n}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(32);
    s.trim_end_matches('-').to_string()
}

// ------------------------------------------------------------ alb

fn internet_facing() -> String {
    "internet-facing".into()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlbConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "internet_facing")]
    scheme: String,
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl AlbConfig {
    fn canonical(mut self, stack: &str, address: &str) -> Self {
        self.name = Some(self.name.unwrap_or_else(|| default_name(stack, address)));
        crate::value::sort_dedup(&mut self.subnets);
        crate::value::sort_dedup(&mut self.security_groups);
        self
    }
}

fn alb_live(lb: &LoadBalancer, subnets: Vec<String>) -> Live {
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let mut sgs = lb.security_groups().to_vec();
    sgs.sort();
    Live {
        id: arn.clone(),
        inputs: json!({
            "name": lb.load_balancer_name().unwrap_or_default(),
            "scheme": lb.scheme().map(|s| s.as_str()).unwrap_or("internet-facing"),
            "subnets": subnets,
            "security_groups": sgs,
            "tags": {},
        }),
        attributes: json!({ "id": arn, "arn": arn, "dns_name": lb.dns_name().unwrap_or_default(), "zone_id": lb.canonical_hosted_zone_id().unwrap_or_default(), "vpc_id": lb.vpc_id().unwrap_or_default() }),
    }
}

fn subnets_of(lb: &LoadBalancer) -> Vec<String> {
    let mut s: Vec<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_string))
        .collect();
    s.sort();
    s
}

/// Every ALB in the region with its tags (one paginated describe, tags by 20).
async fn all_albs(elb: &Elb) -> Result<Vec<(Live, BTreeMap<String, String>)>, ProviderError> {
    let lbs: Vec<LoadBalancer> = elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws_err("elbv2 DescribeLoadBalancers"))?;
    let lbs: Vec<LoadBalancer> = lbs
        .into_iter()
        .filter(|l| l.r#type() == Some(&LoadBalancerTypeEnum::Application))
        .collect();
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .collect();
    let mut tags = tags_of(elb, &arns).await?;
    Ok(lbs
        .iter()
        .map(|l| {
            (
                alb_live(l, subnets_of(l)),
                tags.remove(l.load_balancer_arn().unwrap_or_default())
                    .unwrap_or_default(),
            )
        })
        .collect())
}

/// `alb`
pub struct Alb;

#[async_trait]
impl ResourceKind for Alb {
    fn name(&self) -> &'static str {
        "alb"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<AlbConfig>(config)?;
        if let Some(s) = config
            .get("scheme")
            .and_then(Value::as_str)
            .filter(|s| !["internet-facing", "internal"].contains(s))
        {
            return Err(SchemaError {
                path: vec![PathSeg::Field("scheme".into())],
                message: format!("scheme {s:?} must be internet-facing or internal"),
                suggestion: None,
            });
        }
        Ok(())
    }
    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        serde_json::from_value::<AlbConfig>(config.clone())
            .ok()
            .and_then(|c| serde_json::to_value(c.canonical(stack, address)).ok())
            .unwrap_or_else(|| config.clone())
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn", "dns_name", "zone_id", "vpc_id"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["name", "scheme"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        let aws = ctx.aws().await?;
        let mut all: HashMap<String, (Live, BTreeMap<String, String>)> = all_albs(&aws.elb)
            .await?
            .into_iter()
            .map(|(l, t)| (l.id.clone(), (l, t)))
            .collect();
        Ok(reqs
            .iter()
            .map(|r| all.remove(r.id).map(|(l, t)| user_view(ctx, r.address, l, t)))
            .collect())
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: AlbConfig = serde_json::from_value(config.clone())
            .map(|c: AlbConfig| c.canonical(&ctx.stack, address))
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let name = c.name.clone().unwrap_or_default();
        // Look before creating: an ALB of this name that is ours is adopted.
        for (l, tags) in all_albs(&aws.elb).await? {
            if l.inputs["name"] == json!(name) {
                if owned_by(ctx, address, &tags) {
                    return Ok(user_view(ctx, address, l, tags));
                }
                return Err(ProviderError::new(format!("an ALB named {name} already exists and does not belong to {address} of this stack; pick another `name`")));
            }
        }
        let out = aws
            .elb
            .create_load_balancer()
            .name(&name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::from(c.scheme.as_str()))
            .set_subnets(Some(c.subnets.clone()))
            .set_security_groups((!c.security_groups.is_empty()).then(|| c.security_groups.clone()))
            .set_tags(Some(elb_tags(&all_tags(ctx, address, &c.tags))))
            .send()
            .await
            .map_err(aws_err("elbv2 CreateLoadBalancer"))?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| ProviderError::new("CreateLoadBalancer returned no load balancer"))?;
        let mut l = alb_live(lb, c.subnets.clone());
        l.inputs = serde_json::to_value(&c).unwrap_or_default();
        l.attributes = super::with_attrs(&l.attributes, l.inputs.clone());
        Ok(l)
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: AlbConfig = serde_json::from_value(config.clone())
            .map(|c: AlbConfig| c.canonical(&ctx.stack, address))
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let old: AlbConfig =
            serde_json::from_value(prior.inputs.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        if c.subnets != old.subnets {
            aws.elb
                .set_subnets()
                .load_balancer_arn(&prior.id)
                .set_subnets(Some(c.subnets.clone()))
                .send()
                .await
                .map_err(aws_err("elbv2 SetSubnets"))?;
        }
        if c.security_groups != old.security_groups {
            aws.elb
                .set_security_groups()
                .load_balancer_arn(&prior.id)
                .set_security_groups(Some(c.security_groups.clone()))
                .send()
                .await
                .map_err(aws_err("elbv2 SetSecurityGroups"))?;
        }
        sync_tags(ctx, &aws.elb, &prior.id, address, &old.tags, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: super::with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        match aws
            .elb
            .delete_load_balancer()
            .load_balancer_arn(id)
            .send()
            .await
            .map_err(aws_err("elbv2 DeleteLoadBalancer"))
        {
            Err(e) if e.is(&["LoadBalancerNotFound"]) => Ok(()),
            other => Ok(other.map(|_| ())?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        Ok(all_albs(&aws.elb)
            .await?
            .into_iter()
            .filter(|(_, t)| owned_by(ctx, address, t))
            .map(|(l, t)| user_view(ctx, address, l, t))
            .collect())
    }
}

// ------------------------------------------------------------ alb_target_group

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

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TgConfig {
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
    /// Register the instances of this EKS nodegroup (found by their
    /// `eks:nodegroup-name` tag at apply time).
    #[serde(default)]
    nodegroup: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl TgConfig {
    fn canonical(mut self, stack: &str, address: &str) -> Self {
        self.name = Some(self.name.unwrap_or_else(|| default_name(stack, address)));
        crate::value::sort_dedup(&mut self.targets);
        self
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
            "tags": {},
        }),
        attributes: json!({ "id": arn, "arn": arn }),
    }
}

async fn all_tgs(elb: &Elb) -> Result<Vec<(Live, BTreeMap<String, String>)>, ProviderError> {
    let tgs: Vec<TargetGroup> = elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws_err("elbv2 DescribeTargetGroups"))?;
    let arns: Vec<String> = tgs
        .iter()
        .filter_map(|t| t.target_group_arn().map(str::to_string))
        .collect();
    let mut tags = tags_of(elb, &arns).await?;
    Ok(tgs
        .iter()
        .map(|t| {
            (
                tg_live(t),
                tags.remove(t.target_group_arn().unwrap_or_default())
                    .unwrap_or_default(),
            )
        })
        .collect())
}

/// The instances to register: explicit ones plus the nodegroup's.
async fn wanted_targets(ctx: &Ctx, c: &TgConfig) -> Result<Vec<String>, ProviderError> {
    let mut out = c.targets.clone();
    if let Some(ng) = &c.nodegroup {
        let aws = ctx.aws().await?;
        let found = aws
            .ec2
            .describe_instances()
            .filters(super::ec2::filter("tag:eks:nodegroup-name", [ng.clone()]))
            .filters(super::ec2::filter("instance-state-name", ["pending", "running"]))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("ec2 DescribeInstances"))?;
        for r in found {
            out.extend(r.instances().iter().filter_map(|i| i.instance_id().map(str::to_string)));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

async fn register(ctx: &Ctx, elb: &Elb, arn: &str, c: &TgConfig, port: i32) -> Result<(), ProviderError> {
    let want = wanted_targets(ctx, c).await?;
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
    let del: Vec<TargetDescription> = have
        .iter()
        .filter(|t| !want.contains(t))
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

/// `alb_target_group`
pub struct AlbTargetGroup;

#[async_trait]
impl ResourceKind for AlbTargetGroup {
    fn name(&self) -> &'static str {
        "alb_target_group"
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<TgConfig>(config)?;
        if let Some(p) = config
            .get("port")
            .and_then(Value::as_i64)
            .filter(|p| !(1..=65535).contains(p))
        {
            return Err(SchemaError {
                path: vec![PathSeg::Field("port".into())],
                message: format!("port {p} must be 1-65535"),
                suggestion: None,
            });
        }
        Ok(())
    }
    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        serde_json::from_value::<TgConfig>(config.clone())
            .ok()
            .and_then(|c| serde_json::to_value(c.canonical(stack, address)).ok())
            .unwrap_or_else(|| config.clone())
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["name", "protocol", "port", "vpc", "target_type"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        let aws = ctx.aws().await?;
        let mut all: HashMap<String, (Live, BTreeMap<String, String>)> = all_tgs(&aws.elb)
            .await?
            .into_iter()
            .map(|(l, t)| (l.id.clone(), (l, t)))
            .collect();
        Ok(reqs
            .iter()
            .map(|r| {
                all.remove(r.id).map(|(mut l, t)| {
                    // Targets follow the nodes; what is registered is not part of the config.
                    for k in ["targets", "nodegroup"] {
                        l.inputs[k] = r.inputs.get(k).cloned().unwrap_or(Value::Null);
                    }
                    user_view(ctx, r.address, l, t)
                })
            })
            .collect())
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: TgConfig = serde_json::from_value(config.clone())
            .map(|c: TgConfig| c.canonical(&ctx.stack, address))
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let name = c.name.clone().unwrap_or_default();
        let existing = all_tgs(&aws.elb)
            .await?
            .into_iter()
            .find(|(l, _)| l.inputs["name"] == json!(name));
        let arn = match existing {
            Some((l, tags)) if owned_by(ctx, address, &tags) => l.id,
            Some(_) => {
                return Err(ProviderError::new(format!(
                    "a target group named {name} already exists and is not {address}'s; pick another `name`"
                )))
            }
            None => {
                let out = aws
                    .elb
                    .create_target_group()
                    .name(&name)
                    .protocol(ProtocolEnum::from(c.protocol.as_str()))
                    .port(c.port)
                    .vpc_id(&c.vpc)
                    .target_type(TargetTypeEnum::from(c.target_type.as_str()))
                    .health_check_path(&c.health_check_path)
                    .matcher(Matcher::builder().http_code(&c.health_check_matcher).build())
                    .set_tags(Some(elb_tags(&all_tags(ctx, address, &c.tags))))
                    .send()
                    .await
                    .map_err(aws_err("elbv2 CreateTargetGroup"))?;
                out.target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .unwrap_or_default()
                    .to_string()
            }
        };
        register(ctx, &aws.elb, &arn, &c, c.port).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: super::with_attrs(&inputs, json!({"id": arn, "arn": arn})),
            id: arn,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: TgConfig = serde_json::from_value(config.clone())
            .map(|c: TgConfig| c.canonical(&ctx.stack, address))
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let old: TgConfig =
            serde_json::from_value(prior.inputs.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        if (&c.health_check_path, &c.health_check_matcher) != (&old.health_check_path, &old.health_check_matcher) {
            aws.elb
                .modify_target_group()
                .target_group_arn(&prior.id)
                .health_check_path(&c.health_check_path)
                .matcher(Matcher::builder().http_code(&c.health_check_matcher).build())
                .send()
                .await
                .map_err(aws_err("elbv2 ModifyTargetGroup"))?;
        }
        register(ctx, &aws.elb, &prior.id, &c, c.port).await?;
        sync_tags(ctx, &aws.elb, &prior.id, address, &old.tags, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: super::with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let r = super::retry_on(&["ResourceInUse"], super::SETTLE_TIMEOUT, || async {
            aws.elb
                .delete_target_group()
                .target_group_arn(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("elbv2 DeleteTargetGroup"))
        })
        .await;
        match r {
            Err(e) if e.is(&["TargetGroupNotFound"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        Ok(all_tgs(&aws.elb)
            .await?
            .into_iter()
            .filter(|(_, t)| owned_by(ctx, address, t))
            .map(|(l, t)| user_view(ctx, address, l, t))
            .collect())
    }
}

// ------------------------------------------------------------ alb_listener

fn tls_policy() -> String {
    "ELBSecurityPolicy-TLS13-1-2-2021-06".into()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerConfig {
    alb: String,
    port: i32,
    /// HTTPS or HTTP.
    protocol: String,
    /// The ACM certificate ARN (HTTPS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssl_policy: Option<String>,
    /// Forward to this target group ARN ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forward_to: Option<String>,
    /// ... or redirect to HTTPS on 443.
    #[serde(default)]
    redirect_to_https: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl ListenerConfig {
    fn canonical(mut self) -> Self {
        if self.protocol == "HTTPS" && self.ssl_policy.is_none() {
            self.ssl_policy = Some(tls_policy());
        }
        self
    }

    fn action(&self) -> Action {
        if self.redirect_to_https {
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build()
        } else {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .set_target_group_arn(self.forward_to.clone())
                .build()
        }
    }
}

async fn listeners_of(elb: &Elb, alb: &str) -> Result<Vec<(Live, String)>, ProviderError> {
    let ls = match elb
        .describe_listeners()
        .load_balancer_arn(alb)
        .send()
        .await
        .map_err(aws_err("elbv2 DescribeListeners"))
    {
        Ok(o) => o.listeners().to_vec(),
        Err(e) if e.is(&["LoadBalancerNotFound"]) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(ls
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            let act = l.default_actions().first();
            let redirect = act.and_then(|a| a.r#type()) == Some(&ActionTypeEnum::Redirect);
            let mut inputs = json!({
                "alb": alb,
                "port": l.port().unwrap_or(0),
                "protocol": l.protocol().map(|p| p.as_str()).unwrap_or("HTTP"),
                "redirect_to_https": redirect,
                "tags": {},
            });
            if let Some(c) = l.certificates().first().and_then(|c| c.certificate_arn()) {
                inputs["certificate"] = json!(c);
            }
            // moto reports a policy on HTTP listeners too; only HTTPS has one.
            if let Some(p) = l.ssl_policy().filter(|_| l.protocol() == Some(&ProtocolEnum::Https)) {
                inputs["ssl_policy"] = json!(p);
            }
            if let Some(tg) = act.and_then(|a| a.target_group_arn()).filter(|_| !redirect) {
                inputs["forward_to"] = json!(tg);
            }
            (
                Live {
                    id: arn.clone(),
                    inputs,
                    attributes: json!({"id": arn, "arn": arn}),
                },
                arn,
            )
        })
        .collect())
}

/// `alb_listener`
pub struct AlbListener;

#[async_trait]
impl ResourceKind for AlbListener {
    fn name(&self) -> &'static str {
        "alb_listener"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<ListenerConfig>(config)?;
        let bad = |f: &str, m: &str| {
            Err(SchemaError {
                path: vec![PathSeg::Field(f.into())],
                message: m.into(),
                suggestion: None,
            })
        };
        let proto = config.get("protocol").and_then(Value::as_str).unwrap_or("");
        if !["HTTP", "HTTPS"].contains(&proto) {
            return bad("protocol", "protocol must be HTTPS or HTTP");
        }
        if proto == "HTTPS" && config.get("certificate").is_none() {
            return bad(
                "protocol",
                "an HTTPS listener needs `certificate` (an ACM certificate ARN)",
            );
        }
        let redirect = config.get("redirect_to_https") == Some(&Value::Bool(true));
        if redirect == config.get("forward_to").is_some() {
            return bad(
                "forward_to",
                "give exactly one of `forward_to` (a target group) or `redirect_to_https = true`",
            );
        }
        Ok(())
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        serde_json::from_value::<ListenerConfig>(config.clone())
            .ok()
            .and_then(|c| serde_json::to_value(c.canonical()).ok())
            .unwrap_or_else(|| config.clone())
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["alb"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // One DescribeListeners per ALB, one DescribeTags for all listeners.
        let aws = ctx.aws().await?;
        let mut albs: Vec<&str> = reqs
            .iter()
            .filter_map(|r| r.inputs.get("alb").and_then(Value::as_str))
            .collect();
        albs.sort();
        albs.dedup();
        let mut found: HashMap<String, Live> = HashMap::new();
        for a in albs {
            for (l, arn) in listeners_of(&aws.elb, a).await? {
                found.insert(arn, l);
            }
        }
        let arns: Vec<String> = reqs
            .iter()
            .map(|r| r.id.to_string())
            .filter(|a| found.contains_key(a))
            .collect();
        let mut tags = tags_of(&aws.elb, &arns).await?;
        Ok(reqs
            .iter()
            .map(|r| {
                found
                    .remove(r.id)
                    .map(|l| user_view(ctx, r.address, l, tags.remove(r.id).unwrap_or_default()))
            })
            .collect())
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: ListenerConfig = serde_json::from_value(config.clone())
            .map(ListenerConfig::canonical)
            .map_err(|e| ProviderError::new(e.to_string()))?;
        // A listener on this port that is ours (an interrupted create) is adopted.
        let existing = listeners_of(&aws.elb, &c.alb).await?;
        if let Some((l, arn)) = existing.into_iter().find(|(l, _)| l.inputs["port"] == json!(c.port)) {
            let t = tags_of(&aws.elb, &[arn.clone()])
                .await?
                .remove(&arn)
                .unwrap_or_default();
            if owned_by(ctx, address, &t) {
                return self.update(ctx, address, &user_view(ctx, address, l, t), config).await;
            }
            return Err(ProviderError::new(format!(
                "the ALB already has a listener on port {} that is not {address}'s",
                c.port
            )));
        }
        let mut req = aws
            .elb
            .create_listener()
            .load_balancer_arn(&c.alb)
            .port(c.port)
            .protocol(ProtocolEnum::from(c.protocol.as_str()))
            .default_actions(c.action())
            .set_tags(Some(elb_tags(&all_tags(ctx, address, &c.tags))));
        if let Some(cert) = &c.certificate {
            req = req
                .certificates(Certificate::builder().certificate_arn(cert).build())
                .set_ssl_policy(c.ssl_policy.clone());
        }
        let out = req.send().await.map_err(aws_err("elbv2 CreateListener"))?;
        let arn = out
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string();
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: super::with_attrs(&inputs, json!({"id": arn, "arn": arn})),
            id: arn,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: ListenerConfig = serde_json::from_value(config.clone())
            .map(ListenerConfig::canonical)
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let old_tags: BTreeMap<String, String> =
            serde_json::from_value(prior.inputs.get("tags").cloned().unwrap_or(json!({}))).unwrap_or_default();
        let mut req = aws
            .elb
            .modify_listener()
            .listener_arn(&prior.id)
            .port(c.port)
            .protocol(ProtocolEnum::from(c.protocol.as_str()))
            .default_actions(c.action());
        if let Some(cert) = &c.certificate {
            req = req
                .certificates(Certificate::builder().certificate_arn(cert).build())
                .set_ssl_policy(c.ssl_policy.clone());
        }
        req.send().await.map_err(aws_err("elbv2 ModifyListener"))?;
        sync_tags(ctx, &aws.elb, &prior.id, address, &old_tags, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: super::with_attrs(&inputs, json!({"id": prior.id, "arn": prior.id})),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        match aws
            .elb
            .delete_listener()
            .listener_arn(id)
            .send()
            .await
            .map_err(aws_err("elbv2 DeleteListener"))
        {
            Err(e) if e.is(&["ListenerNotFound"]) => Ok(()),
            other => Ok(other.map(|_| ())?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        // Every listener of every ALB, kept when it carries this address's tags
        // (moto, unlike AWS, accepts a second listener on a port in use).
        let aws = ctx.aws().await?;
        let mut all = Vec::new();
        for (lb, _) in all_albs(&aws.elb).await? {
            all.extend(listeners_of(&aws.elb, &lb.id).await?);
        }
        let arns: Vec<String> = all.iter().map(|(_, a)| a.clone()).collect();
        let mut tags = tags_of(&aws.elb, &arns).await?;
        Ok(all
            .into_iter()
            .filter_map(|(l, arn)| {
                let t = tags.remove(&arn).unwrap_or_default();
                owned_by(ctx, address, &t).then(|| user_view(ctx, address, l, t))
            })
            .collect())
    }
}
