//! `alb`: an application load balancer in the given subnets.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, LoadBalancerSchemeEnum, LoadBalancerTypeEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::LOAD_BALANCER_NOT_FOUND;
use super::{default_name, elb_tags, tags_of, Elb};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, owned_by, owner_of, AwsError, Clients};
use crate::providers::{Ctx, Live, ProviderError, SchemaError};

fn internet_facing() -> String {
    "internet-facing".into()
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlbConfig {
    /// Default `<stack>-<name>`, within 32 characters.
    #[serde(default)]
    name: Option<String>,
    /// internet-facing or internal.
    #[serde(default = "internet_facing")]
    scheme: String,
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `alb`
pub struct Alb;

fn alb_live(lb: &LoadBalancer) -> Live {
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let mut sgs = lb.security_groups().to_vec();
    sgs.sort();
    let mut subnets: Vec<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_string))
        .collect();
    subnets.sort();
    Live {
        id: arn.clone(),
        inputs: json!({
            "name": lb.load_balancer_name().unwrap_or_default(),
            "scheme": lb.scheme().map(|s| s.as_str()).unwrap_or("internet-facing"),
            "subnets": subnets,
            "security_groups": sgs,
        }),
        attributes: json!({
            "id": arn,
            "arn": arn,
            "dns_name": lb.dns_name().unwrap_or_default(),
            "zone_id": lb.canonical_hosted_zone_id().unwrap_or_default(),
            "vpc_id": lb.vpc_id().unwrap_or_default(),
        }),
    }
}

/// Every ALB in the region with its tags (one paginated describe, tags by 20).
pub async fn all_albs(elb: &Elb) -> Result<Vec<Tagged>, ProviderError> {
    let lbs: Vec<LoadBalancer> = all_items!(elb.describe_load_balancers(), "elbv2 DescribeLoadBalancers")?;
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
        .map(|l| Tagged {
            live: alb_live(l),
            tags: tags
                .remove(l.load_balancer_arn().unwrap_or_default())
                .unwrap_or_default(),
        })
        .collect())
}

#[async_trait]
impl AwsKind for Alb {
    type Config = AlbConfig;
    const NAME: &'static str = "alb";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "dns_name", "zone_id", "vpc_id"];
    const FORCE_NEW: &'static [&'static str] = &["name", "scheme"];
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[LOAD_BALANCER_NOT_FOUND];
    const TAGGER: Tagger = Tagger::Elbv2;
    const PERMISSIONS: Permissions = Permissions {
        read: &[
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeTags",
        ],
        create: &["elasticloadbalancing:CreateLoadBalancer"],
        owned: &[
            "elasticloadbalancing:SetSecurityGroups",
            "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:DeleteLoadBalancer",
        ],
        service_linked: &["elasticloadbalancing.amazonaws.com"],
        ..Permissions::NONE
    };

    fn implied_dependencies(&self, config: &Value, view: &crate::providers::StackView<'_>) -> Vec<String> {
        // AWS refuses an internet-facing load balancer in a VPC with no attached
        // internet gateway (InvalidSubnet); an internal one needs none.
        if config
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("internet-facing")
            != "internet-facing"
        {
            return Vec::new();
        }
        crate::providers::aws::ec2::internet_gateways_for_subnets(view, config.get("subnets"))
    }

    fn canonical(&self, mut c: AlbConfig, stack: &str, address: &str) -> Result<AlbConfig, String> {
        c.name = Some(c.name.unwrap_or_else(|| default_name(stack, address)));
        crate::value::sort_dedup(&mut c.subnets);
        crate::value::sort_dedup(&mut c.security_groups);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        super::check_name(config)?;
        if let Some(s) = config
            .get("scheme")
            .and_then(Value::as_str)
            .filter(|s| !["internet-facing", "internal"].contains(s))
        {
            return Err(SchemaError::at(
                vec![PathSeg::Field("scheme".into())],
                format!("scheme {s:?} must be internet-facing or internal"),
            ));
        }
        Ok(())
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, _sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        all_albs(&aws.elb).await
    }

    async fn create(&self, call: &Call<'_>, c: &AlbConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let (ctx, address, elb) = (call.ctx, call.address, &call.aws.elb);
        let name = c.name.clone().unwrap_or_default();
        // Look before creating: an ALB of this name that is ours is adopted.
        for t in all_albs(elb).await? {
            if t.live.inputs["name"] == json!(name) {
                if owned_by(ctx, address, &t.tags) {
                    return Ok(Created::Existing(t));
                }
                return Err(ProviderError::new(format!(
                    "an ALB named {name} already exists ({}), owned by {}, not by {address} of this state.\n  Take it over deliberately with `slipway import {address} {}`, or pick another `name`",
                    t.live.id, owner_of(&t.tags), t.live.id
                )));
            }
        }
        let out = elb
            .create_load_balancer()
            .name(&name)
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::from(c.scheme.as_str()))
            .set_subnets(Some(c.subnets.clone()))
            .set_security_groups((!c.security_groups.is_empty()).then(|| c.security_groups.clone()))
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(aws_err("elbv2 CreateLoadBalancer"))?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| ProviderError::new("CreateLoadBalancer returned no load balancer"))?;
        let live = alb_live(lb);
        Ok(Created::new(live.id, live.attributes))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &AlbConfig,
        c: &AlbConfig,
    ) -> Result<Value, ProviderError> {
        let elb = &call.aws.elb;
        if c.subnets != old.subnets {
            elb.set_subnets()
                .load_balancer_arn(&prior.id)
                .set_subnets(Some(c.subnets.clone()))
                .send()
                .await
                .map_err(aws_err("elbv2 SetSubnets"))?;
        }
        if c.security_groups != old.security_groups {
            elb.set_security_groups()
                .load_balancer_arn(&prior.id)
                .set_security_groups(Some(c.security_groups.clone()))
                .send()
                .await
                .map_err(aws_err("elbv2 SetSecurityGroups"))?;
        }
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .elb
            .delete_load_balancer()
            .load_balancer_arn(id)
            .send()
            .await
            .map_err(aws_err("elbv2 DeleteLoadBalancer"))?;
        Ok(())
    }
}
