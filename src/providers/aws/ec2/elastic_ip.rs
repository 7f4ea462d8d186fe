//! `elastic_ip`: a VPC elastic IP address (for a NAT gateway).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{ADDRESS_IN_USE, ALLOCATION_NOT_FOUND, AUTH_FAILURE, DEPENDENCY_VIOLATION};
use super::{describe_each, tag_map, tag_spec};
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::{Ctx, Live, ProviderError};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticIpConfig {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `elastic_ip`
pub struct ElasticIp;

#[async_trait]
impl AwsKind for ElasticIp {
    type Config = ElasticIpConfig;
    const NAME: &'static str = "elastic_ip";
    const COMPUTED: &'static [&'static str] = &["id", "public_ip"];
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[ALLOCATION_NOT_FOUND];
    /// A NAT gateway that just let go of the address may still hold it.
    const DELETE_RETRY: &'static [&'static str] = &[ADDRESS_IN_USE, DEPENDENCY_VIOLATION, AUTH_FAILURE];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeAddresses"],
        create: &["ec2:AllocateAddress"],
        owned: &["ec2:ReleaseAddress"],
        ..Permissions::NONE
    };

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        describe_each(ctx, sel, "allocation-id", |filters| async move {
            let out = aws
                .ec2
                .describe_addresses()
                .set_filters(Some(filters))
                .send()
                .await
                .map_err(aws_err("ec2 DescribeAddresses"))?;
            Ok(out
                .addresses()
                .iter()
                .filter_map(|a| {
                    let id = a.allocation_id()?.to_string();
                    let attributes = json!({ "id": id, "public_ip": a.public_ip().unwrap_or_default() });
                    let live = Live {
                        id,
                        inputs: json!({}),
                        attributes,
                    };
                    Some(Tagged {
                        live,
                        tags: tag_map(a.tags()),
                    })
                })
                .collect())
        })
        .await
    }

    async fn create(&self, call: &Call<'_>, _c: &ElasticIpConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let out = call
            .aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(ResourceType::ElasticIp, tags))
            .send()
            .await
            .map_err(aws_err("ec2 AllocateAddress"))?;
        let id = out.allocation_id().unwrap_or_default().to_string();
        Ok(Created::new(
            id.clone(),
            json!({"id": id, "public_ip": out.public_ip().unwrap_or_default()}),
        ))
    }

    async fn update(
        &self,
        _: &Call<'_>,
        _: &Live,
        _: &ElasticIpConfig,
        _: &ElasticIpConfig,
    ) -> Result<Value, ProviderError> {
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .ec2
            .release_address()
            .allocation_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 ReleaseAddress"))?;
        Ok(())
    }
}
