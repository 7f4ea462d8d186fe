//! `alb_target_group`: a target group whose instances are listed or follow
//! an EKS nodegroup's instances (looked up by tag at apply time).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetDescription, TargetGroup, TargetTypeEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{RESOURCE_IN_USE, TARGET_GROUP_NOT_FOUND};
use super::{default_name, elb_tags, tags_of, Elb};
use crate::path::PathSeg;
use crate::providers::aws::ec2::filter;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
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

#[derive(Debug, Serialize, Deserialize)]
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
    /// Register the instances of this EKS nodegroup (found by their
    /// `eks:nodegroup-name` tag at apply time).
    #[serde(default)]
    nodegroup: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `alb_target_group`
pub struct AlbTargetGroup;

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
        attributes: json!({ "id": arn, "arn": arn }),
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

/// The instances to register: explicit ones plus the nodegroup's.
async fn wanted_targets(aws: &Clients, c: &TargetGroupConfig) -> Result<Vec<String>, ProviderError> {
    let mut out = c.targets.clone();
    if let Some(ng) = &c.nodegroup {
        let found = all_items!(
            aws.ec2
                .describe_instances()
                .filters(filter("tag:eks:nodegroup-name", [ng.clone()]))
                .filters(filter("instance-state-name", ["pending", "running"])),
            "ec2 DescribeInstances"
        )?;
        for r in found {
            out.extend(r.instances().iter().filter_map(|i| i.instance_id().map(str::to_string)));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

async fn register(aws: &Clients, arn: &str, c: &TargetGroupConfig, port: i32) -> Result<(), ProviderError> {
    let elb = &aws.elb;
    let want = wanted_targets(aws, c).await?;
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

#[async_trait]
impl AwsKind for AlbTargetGroup {
    type Config = TargetGroupConfig;
    const NAME: &'static str = "alb_target_group";
    const COMPUTED: &'static [&'static str] = &["id", "arn"];
    const FORCE_NEW: &'static [&'static str] = &["name", "protocol", "port", "vpc", "target_type"];
    const GONE: &'static [&'static str] = &[TARGET_GROUP_NOT_FOUND];
    /// A listener that just let go of it may still hold it.
    const DELETE_RETRY: &'static [&'static str] = &[RESOURCE_IN_USE];
    const TAGGER: Tagger = Tagger::Elbv2;

    fn canonical(&self, mut c: TargetGroupConfig, stack: &str, address: &str) -> Result<TargetGroupConfig, String> {
        c.name = Some(c.name.unwrap_or_else(|| default_name(stack, address)));
        crate::value::sort_dedup(&mut c.targets);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
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
        Ok(())
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let mut all = all_tgs(&aws.elb).await?;
        if let Select::Ids(reqs) = sel {
            // Targets follow the nodes; what is registered is not part of the config.
            for t in &mut all {
                if let Some(r) = reqs.iter().find(|r| r.id == t.live.id) {
                    for k in ["targets", "nodegroup"] {
                        t.live.inputs[k] = r.inputs.get(k).cloned().unwrap_or(Value::Null);
                    }
                }
            }
        }
        Ok(all)
    }

    async fn create(&self, call: &Call<'_>, c: &TargetGroupConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let (ctx, address, elb) = (call.ctx, call.address, &call.aws.elb);
        let name = c.name.clone().unwrap_or_default();
        if let Some(t) = all_tgs(elb)
            .await?
            .into_iter()
            .find(|t| t.live.inputs["name"] == json!(name))
        {
            if owned_by(ctx, address, &t.tags) {
                return Ok(Created::Existing(t));
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
        if !arn.is_empty() {
            register(call.aws, &arn, c, c.port).await?;
        }
        Ok(Created::new(arn.clone(), json!({"id": arn, "arn": arn})))
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
        register(call.aws, &prior.id, c, c.port).await?;
        Ok(Value::Null)
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
