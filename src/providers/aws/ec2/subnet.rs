//! `subnet`: a subnet of a VPC in one availability zone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{DEPENDENCY_VIOLATION, SUBNET_NOT_FOUND};
use super::{describe_each, tag_map, tag_spec};
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::{Ctx, Live, ProviderError, StackIssue, StackView};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    /// The VPC's ID.
    vpc: String,
    cidr: String,
    availability_zone: String,
    /// Launch instances with public IPs (map_public_ip_on_launch).
    #[serde(default)]
    public: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `subnet`
pub struct Subnet;

async fn set_public(ec2: &aws_sdk_ec2::Client, id: &str, public: bool) -> Result<(), AwsError> {
    ec2.modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(public).build())
        .send()
        .await
        .map_err(aws_err("ec2 ModifySubnetAttribute"))?;
    Ok(())
}

fn computed(s: &aws_sdk_ec2::types::Subnet) -> Value {
    json!({
        "id": s.subnet_id().unwrap_or_default(),
        "arn": s.subnet_arn().unwrap_or_default(),
        "availability_zone_id": s.availability_zone_id().unwrap_or_default(),
    })
}

#[async_trait]
impl AwsKind for Subnet {
    type Config = SubnetConfig;
    const NAME: &'static str = "subnet";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "availability_zone_id"];
    const FORCE_NEW: &'static [&'static str] = &["vpc", "cidr", "availability_zone"];
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[SUBNET_NOT_FOUND];
    const DELETE_RETRY: &'static [&'static str] = &[DEPENDENCY_VIOLATION];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeSubnets"],
        create: &["ec2:CreateSubnet"],
        create_in: &[("ec2:CreateSubnet", "vpc")],
        owned: &["ec2:ModifySubnetAttribute", "ec2:DeleteSubnet"],
        ..Permissions::NONE
    };

    fn check_more(&self, config: &Value) -> Result<(), crate::providers::SchemaError> {
        super::network_checks::check_cidr_field(config, "subnet")
    }

    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        super::network_checks::check_subnets(view)
    }

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        describe_each(ctx, sel, "subnet-id", |filters| async move {
            let subnets = all_items!(
                aws.ec2.describe_subnets().set_filters(Some(filters)),
                "ec2 DescribeSubnets"
            )?;
            Ok(subnets
                .into_iter()
                .filter_map(|s| {
                    Some(Tagged {
                        live: Live {
                            id: s.subnet_id()?.to_string(),
                            inputs: json!({
                                "vpc": s.vpc_id().unwrap_or_default(),
                                "cidr": s.cidr_block().unwrap_or_default(),
                                "availability_zone": s.availability_zone().unwrap_or_default(),
                                "public": s.map_public_ip_on_launch().unwrap_or(false),
                            }),
                            attributes: computed(&s),
                        },
                        tags: tag_map(s.tags()),
                    })
                })
                .collect())
        })
        .await
    }

    async fn create(&self, call: &Call<'_>, c: &SubnetConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let out = call
            .aws
            .ec2
            .create_subnet()
            .vpc_id(&c.vpc)
            .cidr_block(&c.cidr)
            .availability_zone(&c.availability_zone)
            .tag_specifications(tag_spec(ResourceType::Subnet, tags))
            .send()
            .await
            .map_err(aws_err("ec2 CreateSubnet"))?;
        let s = out
            .subnet()
            .ok_or_else(|| ProviderError::new("CreateSubnet returned no subnet"))?;
        let id = s.subnet_id().unwrap_or_default().to_string();
        if c.public {
            set_public(&call.aws.ec2, &id, true).await?;
        }
        Ok(Created::new(id, computed(s)))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &SubnetConfig,
        c: &SubnetConfig,
    ) -> Result<Value, ProviderError> {
        if c.public != old.public {
            set_public(&call.aws.ec2, &prior.id, c.public).await?;
        }
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .ec2
            .delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteSubnet"))?;
        Ok(())
    }
}
