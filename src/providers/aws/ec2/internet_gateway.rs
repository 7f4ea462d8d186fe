//! `internet_gateway`: an internet gateway attached to a VPC.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{ALREADY_ASSOCIATED, DEPENDENCY_VIOLATION, GATEWAY_NOT_ATTACHED, IGW_NOT_FOUND, VPC_NOT_FOUND};
use super::{describe_each, tag_map, tag_spec};
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, retry_on, AwsError, Clients, SETTLE_TIMEOUT};
use crate::providers::{Ctx, Live, ProviderError};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InternetGatewayConfig {
    /// The VPC it is attached to.
    vpc: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `internet_gateway`
pub struct InternetGateway;

async fn attach(ec2: &aws_sdk_ec2::Client, id: &str, vpc: &str) -> Result<(), AwsError> {
    match ec2
        .attach_internet_gateway()
        .internet_gateway_id(id)
        .vpc_id(vpc)
        .send()
        .await
        .map_err(aws_err("ec2 AttachInternetGateway"))
    {
        // Already attached (a retried call whose first answer was lost).
        Err(e) if e.is(&[ALREADY_ASSOCIATED]) => Ok(()),
        other => other.map(|_| ()),
    }
}

async fn detach(ec2: &aws_sdk_ec2::Client, id: &str, vpc: &str) -> Result<(), AwsError> {
    let r = retry_on(&[DEPENDENCY_VIOLATION], SETTLE_TIMEOUT, || async {
        ec2.detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("ec2 DetachInternetGateway"))
    })
    .await;
    match r {
        Err(e) if e.is(&[GATEWAY_NOT_ATTACHED, IGW_NOT_FOUND, VPC_NOT_FOUND]) => Ok(()),
        other => other,
    }
}

#[async_trait]
impl AwsKind for InternetGateway {
    type Config = InternetGatewayConfig;
    const NAME: &'static str = "internet_gateway";
    const COMPUTED: &'static [&'static str] = &["id"];
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[IGW_NOT_FOUND];
    const DELETE_RETRY: &'static [&'static str] = &[DEPENDENCY_VIOLATION];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeInternetGateways"],
        create: &["ec2:CreateInternetGateway"],
        owned: &[
            "ec2:AttachInternetGateway",
            "ec2:DetachInternetGateway",
            "ec2:DeleteInternetGateway",
        ],
        ..Permissions::NONE
    };

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        describe_each(ctx, sel, "internet-gateway-id", |filters| async move {
            let igws = all_items!(
                aws.ec2.describe_internet_gateways().set_filters(Some(filters)),
                "ec2 DescribeInternetGateways"
            )?;
            Ok(igws
                .into_iter()
                .filter_map(|g| {
                    let id = g.internet_gateway_id()?.to_string();
                    let vpc = g.attachments().iter().find_map(|a| a.vpc_id()).unwrap_or_default();
                    Some(Tagged {
                        live: Live {
                            inputs: json!({ "vpc": vpc }),
                            attributes: json!({ "id": id }),
                            id,
                        },
                        tags: tag_map(g.tags()),
                    })
                })
                .collect())
        })
        .await
    }

    async fn create(&self, call: &Call<'_>, c: &InternetGatewayConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let out = call
            .aws
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(ResourceType::InternetGateway, tags))
            .send()
            .await
            .map_err(aws_err("ec2 CreateInternetGateway"))?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .unwrap_or_default()
            .to_string();
        if !id.is_empty() {
            attach(&call.aws.ec2, &id, &c.vpc).await?;
        }
        Ok(Created::new(id.clone(), json!({"id": id})))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &InternetGatewayConfig,
        c: &InternetGatewayConfig,
    ) -> Result<Value, ProviderError> {
        if c.vpc != old.vpc {
            if !old.vpc.is_empty() {
                detach(&call.aws.ec2, &prior.id, &old.vpc).await?;
            }
            attach(&call.aws.ec2, &prior.id, &c.vpc).await?;
        }
        Ok(Value::Null)
    }

    async fn before_delete(&self, call: &Call<'_>, id: &str, attributes: &Value) -> Result<(), ProviderError> {
        if let Some(vpc) = attributes.get("vpc").and_then(Value::as_str).filter(|v| !v.is_empty()) {
            detach(&call.aws.ec2, id, vpc).await?;
        }
        Ok(())
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteInternetGateway"))?;
        Ok(())
    }
}
