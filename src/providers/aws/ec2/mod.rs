//! EC2 network kinds, one file each, and what they share: tag maps, tag
//! specifications for the create call, filters, the describe-by-selection
//! helper and EC2's error codes. Every EC2 object is tagged with its owner in
//! the create call itself (TagSpecifications) and refreshed with one
//! filtered, paginated Describe per kind for all the IDs in the state.

pub mod elastic_ip;
pub mod internet_gateway;
pub mod nat_gateway;
pub mod network_checks;
pub mod route_table;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet;
pub mod vpc;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::kind::Select;
use super::{TAG_ADDRESS, TAG_STACK};
use crate::providers::{Ctx, ProviderError};

/// The internet gateways of the stack attached to the VPC that the subnets
/// (references as written) lie in: what a NAT gateway or an internet-facing
/// load balancer in those subnets must wait for. An internet gateway is
/// attached in its own create, so depending on it is waiting for the attachment.
pub fn internet_gateways_for_subnets<'v>(
    view: &crate::providers::StackView<'v>,
    subnets: Option<&'v serde_json::Value>,
) -> Vec<String> {
    let vpcs: Vec<&serde_json::Value> = subnets
        .map(|s| view.targets_of(s))
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, k, _)| *k == "subnet")
        .filter_map(|(_, _, c)| c.get("vpc"))
        .collect();
    let mut out: Vec<String> = view
        .resources
        .iter()
        .filter(|(_, k, _)| *k == "internet_gateway")
        .filter(|(_, _, c)| c.get("vpc").is_some_and(|v| vpcs.contains(&v)))
        .map(|(a, _, _)| a.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How long EC2's reads may lag behind a create (eventual consistency:
/// AWS documents "a few seconds"; this leaves room).
pub const READ_AFTER_CREATE: crate::providers::wait::Policy = crate::providers::wait::Policy {
    timeout: std::time::Duration::from_secs(60),
    first: std::time::Duration::from_millis(500),
    max: std::time::Duration::from_secs(5),
};

/// EC2 error codes slipway decides on.
pub mod errors {
    pub const DEPENDENCY_VIOLATION: &str = "DependencyViolation";
    pub const VPC_NOT_FOUND: &str = "InvalidVpcID.NotFound";
    pub const SUBNET_NOT_FOUND: &str = "InvalidSubnetID.NotFound";
    pub const IGW_NOT_FOUND: &str = "InvalidInternetGatewayID.NotFound";
    pub const GATEWAY_NOT_ATTACHED: &str = "Gateway.NotAttached";
    pub const ALREADY_ASSOCIATED: &str = "Resource.AlreadyAssociated";
    pub const ALLOCATION_NOT_FOUND: &str = "InvalidAllocationID.NotFound";
    pub const ADDRESS_IN_USE: &str = "InvalidIPAddress.InUse";
    pub const AUTH_FAILURE: &str = "AuthFailure";
    pub const NAT_NOT_FOUND: &str = "NatGatewayNotFound";
    pub const NAT_ID_NOT_FOUND: &str = "InvalidNatGatewayID.NotFound";
    pub const ROUTE_TABLE_NOT_FOUND: &str = "InvalidRouteTableID.NotFound";
    pub const SECURITY_GROUP_NOT_FOUND: &str = "InvalidGroup.NotFound";
    pub const SECURITY_GROUP_DUPLICATE: &str = "InvalidGroup.Duplicate";
}

/// Tags of an EC2 object as a map.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// A TagSpecification carrying every tag of a new object.
pub fn tag_spec(rt: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

pub fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// Filters that find the objects of `address` in this stack.
pub fn owner_filters(ctx: &Ctx, address: &str) -> Vec<Filter> {
    vec![
        filter(&format!("tag:{TAG_STACK}"), [ctx.stack.clone()]),
        filter(&format!("tag:{TAG_ADDRESS}"), [super::address_tag(address)]),
    ]
}

/// Run `describe` once per batch of filters a selection needs: the IDs under
/// `id_filter` in chunks of 200 (the most one filter takes), or the owner tags.
pub async fn describe_each<T, F, Fut>(
    ctx: &Ctx,
    sel: Select<'_>,
    id_filter: &str,
    describe: F,
) -> Result<Vec<T>, ProviderError>
where
    F: Fn(Vec<Filter>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ProviderError>>,
{
    let batches: Vec<Vec<Filter>> = match sel {
        Select::Ids(reqs) => reqs
            .chunks(200)
            .map(|c| vec![filter(id_filter, c.iter().map(|r| r.id.to_string()))])
            .collect(),
        Select::Owner(address) => vec![owner_filters(ctx, address)],
    };
    let mut out = Vec::new();
    for f in batches {
        out.extend(describe(f).await?);
    }
    Ok(out)
}
