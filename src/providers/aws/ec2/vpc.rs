//! `vpc`: a VPC with its DNS attributes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{DEPENDENCY_VIOLATION, VPC_NOT_FOUND};
use super::{describe_each, tag_map, tag_spec};
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::common::yes;
use crate::providers::{Ctx, Live, ProviderError, StackIssue, StackView};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcConfig {
    /// The IPv4 block, e.g. "10.0.0.0/16".
    cidr: String,
    #[serde(default)]
    enable_dns_hostnames: bool,
    #[serde(default = "yes")]
    enable_dns_support: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `vpc`
pub struct Vpc;

async fn set_dns(ec2: &aws_sdk_ec2::Client, id: &str, which: VpcAttributeName, value: bool) -> Result<(), AwsError> {
    let v = AttributeBooleanValue::builder().value(value).build();
    let call = ec2.modify_vpc_attribute().vpc_id(id);
    let call = match which {
        VpcAttributeName::EnableDnsHostnames => call.enable_dns_hostnames(v),
        _ => call.enable_dns_support(v),
    };
    call.send().await.map_err(aws_err("ec2 ModifyVpcAttribute"))?;
    Ok(())
}

async fn dns(ec2: &aws_sdk_ec2::Client, id: &str, which: VpcAttributeName) -> Result<Option<bool>, AwsError> {
    let out = ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(which.clone())
        .send()
        .await
        .map_err(aws_err("ec2 DescribeVpcAttribute"))?;
    let v = match which {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(v.and_then(|a| a.value()))
}

#[async_trait]
impl AwsKind for Vpc {
    type Config = VpcConfig;
    const NAME: &'static str = "vpc";
    const COMPUTED: &'static [&'static str] = &["id", "owner_id"];
    const FORCE_NEW: &'static [&'static str] = &["cidr"];
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[VPC_NOT_FOUND];
    const DELETE_RETRY: &'static [&'static str] = &[DEPENDENCY_VIOLATION];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeVpcs", "ec2:DescribeVpcAttribute"],
        create: &["ec2:CreateVpc"],
        owned: &["ec2:ModifyVpcAttribute", "ec2:DeleteVpc"],
        ..Permissions::NONE
    };

    fn check_more(&self, config: &Value) -> Result<(), crate::providers::SchemaError> {
        super::network_checks::check_cidr_field(config, "VPC")
    }

    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        super::network_checks::check_vpcs(view)
    }

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        describe_each(ctx, sel, "vpc-id", |filters| async move {
            let vpcs = all_items!(aws.ec2.describe_vpcs().set_filters(Some(filters)), "ec2 DescribeVpcs")?;
            let mut out = Vec::new();
            for v in vpcs {
                let Some(id) = v.vpc_id() else { continue };
                // DNS attributes are only in DescribeVpcAttribute, one attribute per call.
                let (h, s) = tokio::join!(
                    dns(&aws.ec2, id, VpcAttributeName::EnableDnsHostnames),
                    dns(&aws.ec2, id, VpcAttributeName::EnableDnsSupport),
                );
                out.push(Tagged {
                    live: Live {
                        id: id.to_string(),
                        inputs: json!({
                            "cidr": v.cidr_block().unwrap_or_default(),
                            "enable_dns_hostnames": h?.unwrap_or(false),
                            "enable_dns_support": s?.unwrap_or(true),
                        }),
                        attributes: json!({ "id": id, "owner_id": v.owner_id().unwrap_or_default() }),
                    },
                    tags: tag_map(v.tags()),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn create(&self, call: &Call<'_>, c: &VpcConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let ec2 = &call.aws.ec2;
        let out = ec2
            .create_vpc()
            .cidr_block(&c.cidr)
            .tag_specifications(tag_spec(ResourceType::Vpc, tags))
            .send()
            .await
            .map_err(aws_err("ec2 CreateVpc"))?;
        let id = out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_string();
        if c.enable_dns_hostnames {
            set_dns(ec2, &id, VpcAttributeName::EnableDnsHostnames, true).await?;
        }
        if !c.enable_dns_support {
            set_dns(ec2, &id, VpcAttributeName::EnableDnsSupport, false).await?;
        }
        let owner = out.vpc().and_then(|v| v.owner_id()).unwrap_or_default();
        Ok(Created::new(id.clone(), json!({"id": id, "owner_id": owner})))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &VpcConfig,
        c: &VpcConfig,
    ) -> Result<Value, ProviderError> {
        let ec2 = &call.aws.ec2;
        // Hostnames need support on: enable support first, disable it last.
        if c.enable_dns_support && !old.enable_dns_support {
            set_dns(ec2, &prior.id, VpcAttributeName::EnableDnsSupport, true).await?;
        }
        if c.enable_dns_hostnames != old.enable_dns_hostnames {
            set_dns(
                ec2,
                &prior.id,
                VpcAttributeName::EnableDnsHostnames,
                c.enable_dns_hostnames,
            )
            .await?;
        }
        if !c.enable_dns_support && old.enable_dns_support {
            set_dns(ec2, &prior.id, VpcAttributeName::EnableDnsSupport, false).await?;
        }
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .ec2
            .delete_vpc()
            .vpc_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteVpc"))?;
        Ok(())
    }
}
