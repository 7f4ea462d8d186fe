//! `nat_gateway`: a public NAT gateway in a public subnet with an elastic IP.
//! Creates and deletes wait (minutes on AWS).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{NatGateway as Nat, NatGatewayState, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{NAT_ID_NOT_FOUND, NAT_NOT_FOUND};
use super::{describe_each, filter, tag_map, tag_spec};
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{Ctx, Live, ProviderError};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatGatewayConfig {
    /// A public subnet.
    subnet: String,
    /// The elastic IP's allocation ID.
    elastic_ip: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `nat_gateway`
pub struct NatGateway;

/// How long a NAT gateway may take to become available or go away.
const POLICY: Policy = Policy {
    timeout: Duration::from_secs(900),
    first: Duration::from_millis(500),
    max: Duration::from_secs(10),
};

/// A NAT gateway is ready when available; failed ones never will be.
pub fn nat_available(n: Option<&Nat>) -> Check<()> {
    match n.and_then(|n| n.state()) {
        Some(NatGatewayState::Available) => Check::Done(()),
        Some(NatGatewayState::Failed) => Check::Failed(
            n.and_then(|n| n.failure_message())
                .unwrap_or("see its failure message in the console")
                .to_string(),
        ),
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("not visible yet".into()),
    }
}

/// A NAT gateway is gone when deleted or no longer listed.
pub fn nat_gone(n: Option<&Nat>) -> Check<()> {
    match n.and_then(|n| n.state()) {
        // A failed gateway holds nothing and is removed by AWS itself.
        None | Some(NatGatewayState::Deleted | NatGatewayState::Failed) => Check::Done(()),
        Some(s) => Check::Pending(s.as_str().to_string()),
    }
}

async fn describe_nats(aws: &Clients, filters: Vec<aws_sdk_ec2::types::Filter>) -> Result<Vec<Nat>, ProviderError> {
    Ok(all_items!(
        aws.ec2.describe_nat_gateways().set_filter(Some(filters)),
        "ec2 DescribeNatGateways"
    )?)
}

async fn one(aws: &Clients, id: &str) -> Result<Option<Nat>, ProviderError> {
    Ok(describe_nats(aws, vec![filter("nat-gateway-id", [id])])
        .await?
        .into_iter()
        .next())
}

/// Deleted ones linger for an hour on AWS; they are no longer the resource.
fn current(n: &Nat) -> bool {
    !matches!(
        n.state(),
        Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed)
    )
}

fn computed(n: &Nat) -> Value {
    let addr = n.nat_gateway_addresses().first();
    json!({
        "id": n.nat_gateway_id().unwrap_or_default(),
        "public_ip": addr.and_then(|a| a.public_ip()).unwrap_or_default(),
        "private_ip": addr.and_then(|a| a.private_ip()).unwrap_or_default(),
    })
}

#[async_trait]
impl AwsKind for NatGateway {
    type Config = NatGatewayConfig;
    const NAME: &'static str = "nat_gateway";
    const COMPUTED: &'static [&'static str] = &["id", "public_ip", "private_ip"];
    const FORCE_NEW: &'static [&'static str] = &["subnet", "elastic_ip"];

    fn implied_dependencies(&self, config: &Value, view: &crate::providers::StackView<'_>) -> Vec<String> {
        // AWS fails a public NAT gateway whose VPC has no attached internet gateway.
        super::internet_gateways_for_subnets(view, config.get("subnet"))
    }
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[NAT_NOT_FOUND, NAT_ID_NOT_FOUND];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeNatGateways"],
        create: &["ec2:CreateNatGateway"],
        create_in: &[
            ("ec2:CreateNatGateway", "subnet"),
            ("ec2:CreateNatGateway", "elastic-ip"),
        ],
        owned: &["ec2:DeleteNatGateway"],
        ..Permissions::NONE
    };

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let nats = describe_each(ctx, sel, "nat-gateway-id", |f| describe_nats(aws, f)).await?;
        Ok(nats
            .iter()
            .filter(|n| current(n))
            .filter_map(|n| {
                let addr = n.nat_gateway_addresses().first();
                let live = Live {
                    id: n.nat_gateway_id()?.to_string(),
                    inputs: json!({
                        "subnet": n.subnet_id().unwrap_or_default(),
                        "elastic_ip": addr.and_then(|a| a.allocation_id()).unwrap_or_default(),
                    }),
                    attributes: computed(n),
                };
                Some(Tagged {
                    live,
                    tags: tag_map(n.tags()),
                })
            })
            .collect())
    }

    async fn create(&self, call: &Call<'_>, c: &NatGatewayConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let aws = call.aws;
        let out = aws
            .ec2
            .create_nat_gateway()
            .subnet_id(&c.subnet)
            .allocation_id(&c.elastic_ip)
            .tag_specifications(tag_spec(ResourceType::Natgateway, tags))
            .send()
            .await
            .map_err(aws_err("ec2 CreateNatGateway"))?;
        let id = out
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .unwrap_or_default()
            .to_string();
        wait_for(&format!("NAT gateway {id} to become available"), POLICY, || async {
            Ok(nat_available(one(aws, &id).await?.as_ref()))
        })
        .await?;
        let attributes = one(aws, &id)
            .await?
            .map(|n| computed(&n))
            .unwrap_or_else(|| json!({"id": id}));
        Ok(Created::New { id, attributes })
    }

    async fn update(
        &self,
        _: &Call<'_>,
        _: &Live,
        _: &NatGatewayConfig,
        _: &NatGatewayConfig,
    ) -> Result<Value, ProviderError> {
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        // moto answers 500 (AWS: NatGatewayNotFound) for a missing ID: look first.
        let found = one(call.aws, id).await.map_err(|e| AwsError {
            code: None,
            message: e.message,
        })?;
        if !found.as_ref().is_some_and(current) {
            return Ok(());
        }
        call.aws
            .ec2
            .delete_nat_gateway()
            .nat_gateway_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteNatGateway"))?;
        Ok(())
    }

    async fn after_delete(&self, call: &Call<'_>, id: &str) -> Result<(), ProviderError> {
        wait_for(&format!("NAT gateway {id} to be deleted"), POLICY, || async {
            Ok(nat_gone(one(call.aws, id).await?.as_ref()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nat(state: NatGatewayState) -> Nat {
        Nat::builder().nat_gateway_id("nat-1").state(state).build()
    }

    #[test]
    fn available_is_done_failed_fails_pending_waits() {
        assert_eq!(nat_available(Some(&nat(NatGatewayState::Available))), Check::Done(()));
        assert!(matches!(
            nat_available(Some(&nat(NatGatewayState::Failed))),
            Check::Failed(_)
        ));
        assert!(matches!(
            nat_available(Some(&nat(NatGatewayState::Pending))),
            Check::Pending(_)
        ));
        assert!(matches!(nat_available(None), Check::Pending(_)));
    }

    #[test]
    fn gone_when_deleted_or_not_listed() {
        assert_eq!(nat_gone(None), Check::Done(()));
        assert_eq!(nat_gone(Some(&nat(NatGatewayState::Deleted))), Check::Done(()));
        assert!(matches!(
            nat_gone(Some(&nat(NatGatewayState::Deleting))),
            Check::Pending(_)
        ));
    }
}
