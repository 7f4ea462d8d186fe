//! EC2 network kinds: `vpc`, `subnet`, `internet_gateway`, `elastic_ip`,
//! `nat_gateway`. Each is tagged with its owner in the create call itself
//! (TagSpecifications) and refreshed with one filtered, paginated Describe
//! per kind for all the IDs in the state.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, NatGatewayState, ResourceType, Tag, TagSpecification, VpcAttributeName,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    all_tags, aws_err, owned_by, retry_on, tag_changes, user_view_of, with_attrs, AwsError, SETTLE_TIMEOUT,
    TAG_ADDRESS, TAG_STACK,
};
use crate::providers::{
    check_schema, complete_as, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError, StackIssue, StackView,
};

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
        filter(&format!("tag:{TAG_ADDRESS}"), [address]),
    ]
}

/// Bring an object's tags from `old` to `new` (CreateTags / DeleteTags).
pub async fn sync_tags(
    ctx: &Ctx,
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    address: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let (set, remove) = tag_changes(ctx, address, old, new);
    if !set.is_empty() {
        ec2.create_tags()
            .resources(id)
            .set_tags(Some(
                set.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(aws_err("ec2 CreateTags"))?;
    }
    if !remove.is_empty() {
        ec2.delete_tags()
            .resources(id)
            .set_tags(Some(remove.iter().map(|k| Tag::builder().key(k).build()).collect()))
            .send()
            .await
            .map_err(aws_err("ec2 DeleteTags"))?;
    }
    Ok(())
}

/// IDs in chunks small enough for one filter (AWS allows 200 values).
pub fn chunks(reqs: &[ReadRequest<'_>]) -> Vec<Vec<String>> {
    reqs.chunks(200)
        .map(|c| c.iter().map(|r| r.id.to_string()).collect())
        .collect()
}

/// Align lives found by ID with the requests; `None` where not found.
pub fn align(reqs: &[ReadRequest<'_>], mut found: HashMap<String, Live>) -> Vec<Option<Live>> {
    reqs.iter().map(|r| found.remove(r.id)).collect()
}

pub fn tags_of(config: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(config.get("tags").cloned().unwrap_or(json!({}))).unwrap_or_default()
}

fn yes() -> bool {
    true
}

// ---------------------------------------------------------------- vpc

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VpcConfig {
    cidr: String,
    #[serde(default)]
    enable_dns_hostnames: bool,
    #[serde(default = "yes")]
    enable_dns_support: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `vpc`: a VPC with its DNS attributes.
pub struct Vpc;

async fn set_dns(ec2: &aws_sdk_ec2::Client, id: &str, which: &str, value: bool) -> Result<(), AwsError> {
    let v = AttributeBooleanValue::builder().value(value).build();
    let call = ec2.modify_vpc_attribute().vpc_id(id);
    let call = if which == "hostnames" {
        call.enable_dns_hostnames(v)
    } else {
        call.enable_dns_support(v)
    };
    call.send().await.map_err(aws_err("ec2 ModifyVpcAttribute"))?;
    Ok(())
}

impl Vpc {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let vpcs = aws
            .ec2
            .describe_vpcs()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("ec2 DescribeVpcs"))?;
        let mut out = Vec::new();
        for v in vpcs {
            let Some(id) = v.vpc_id() else { continue };
            // DNS attributes are only in DescribeVpcAttribute, one attribute per call.
            let (h, s) = tokio::join!(
                aws.ec2
                    .describe_vpc_attribute()
                    .vpc_id(id)
                    .attribute(VpcAttributeName::EnableDnsHostnames)
                    .send(),
                aws.ec2
                    .describe_vpc_attribute()
                    .vpc_id(id)
                    .attribute(VpcAttributeName::EnableDnsSupport)
                    .send(),
            );
            let h = h.map_err(aws_err("ec2 DescribeVpcAttribute"))?;
            let s = s.map_err(aws_err("ec2 DescribeVpcAttribute"))?;
            let tags = tag_map(v.tags());
            out.push(Live {
                id: id.to_string(),
                inputs: json!({
                    "cidr": v.cidr_block().unwrap_or_default(),
                    "enable_dns_hostnames": h.enable_dns_hostnames().and_then(|a| a.value()).unwrap_or(false),
                    "enable_dns_support": s.enable_dns_support().and_then(|a| a.value()).unwrap_or(true),
                    "tags": tags,
                }),
                attributes: json!({ "id": id, "owner_id": v.owner_id().unwrap_or_default() }),
            });
        }
        Ok(out)
    }
}

fn all_tags_of(l: &Live) -> BTreeMap<String, String> {
    serde_json::from_value(l.inputs.get("tags").cloned().unwrap_or(json!({}))).unwrap_or_default()
}

/// Read many objects of a kind by ID filter, keep the owned view.
pub async fn read_by<F, Fut>(
    ctx: &Ctx,
    reqs: &[ReadRequest<'_>],
    id_filter: &str,
    describe: F,
) -> Result<Vec<Option<Live>>, ProviderError>
where
    F: Fn(Vec<Filter>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Live>, ProviderError>>,
{
    let mut found = HashMap::new();
    for ids in chunks(reqs) {
        for l in describe(vec![filter(id_filter, ids)]).await? {
            found.insert(l.id.clone(), l);
        }
    }
    let addr_of: HashMap<&str, &str> = reqs.iter().map(|r| (r.id, r.address)).collect();
    let found = found
        .into_iter()
        .map(|(id, l)| {
            let addr = addr_of.get(id.as_str()).copied().unwrap_or("");
            (id, user_view_of(ctx, addr, l))
        })
        .collect();
    Ok(align(reqs, found))
}

/// Find the objects tagged for `address`, checking the tags again here
/// (some moto describes ignore tag filters).
pub async fn find_by<F, Fut>(ctx: &Ctx, address: &str, describe: F) -> Result<Vec<Live>, ProviderError>
where
    F: Fn(Vec<Filter>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Live>, ProviderError>>,
{
    Ok(describe(owner_filters(ctx, address))
        .await?
        .into_iter()
        .filter(|l| owned_by(ctx, address, &all_tags_of(l)))
        .map(|l| user_view_of(ctx, address, l))
        .collect())
}

#[async_trait]
impl ResourceKind for Vpc {
    fn name(&self) -> &'static str {
        "vpc"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<VpcConfig>(config)
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        complete_as::<VpcConfig>(config)
    }
    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        super::validate::check_vpcs(view)
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "owner_id"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["cidr"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        read_by(ctx, reqs, "vpc-id", |f| Vpc::describe(ctx, f)).await
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: VpcConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let out = aws
            .ec2
            .create_vpc()
            .cidr_block(&c.cidr)
            .tag_specifications(tag_spec(ResourceType::Vpc, &all_tags(ctx, address, &c.tags)))
            .send()
            .await
            .map_err(aws_err("ec2 CreateVpc"))?;
        let id = out
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| ProviderError::new("CreateVpc returned no VPC ID"))?;
        if c.enable_dns_hostnames {
            set_dns(&aws.ec2, id, "hostnames", true).await?;
        }
        if !c.enable_dns_support {
            set_dns(&aws.ec2, id, "support", false).await?;
        }
        let owner = out.vpc().and_then(|v| v.owner_id()).unwrap_or_default();
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: id.to_string(),
            attributes: with_attrs(&inputs, json!({"id": id, "owner_id": owner})),
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: VpcConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let old: VpcConfig =
            serde_json::from_value(prior.inputs.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        // Hostnames need support on: enable support first, disable it last.
        if c.enable_dns_support && !old.enable_dns_support {
            set_dns(&aws.ec2, &prior.id, "support", true).await?;
        }
        if c.enable_dns_hostnames != old.enable_dns_hostnames {
            set_dns(&aws.ec2, &prior.id, "hostnames", c.enable_dns_hostnames).await?;
        }
        if !c.enable_dns_support && old.enable_dns_support {
            set_dns(&aws.ec2, &prior.id, "support", false).await?;
        }
        sync_tags(ctx, &aws.ec2, &prior.id, address, &old.tags, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let r = retry_on(&["DependencyViolation"], SETTLE_TIMEOUT, || async {
            aws.ec2
                .delete_vpc()
                .vpc_id(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("ec2 DeleteVpc"))
        })
        .await;
        match r {
            Err(e) if e.is(&["InvalidVpcID.NotFound"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        find_by(ctx, address, |f| Vpc::describe(ctx, f)).await
    }
}

// ---------------------------------------------------------------- subnet

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetConfig {
    vpc: String,
    cidr: String,
    availability_zone: String,
    /// Launch instances with public IPs (map_public_ip_on_launch).
    #[serde(default)]
    public: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `subnet`: a subnet of a VPC in one availability zone.
pub struct Subnet;

impl Subnet {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let subnets = aws
            .ec2
            .describe_subnets()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("ec2 DescribeSubnets"))?;
        Ok(subnets
            .into_iter()
            .filter_map(|s| {
                let id = s.subnet_id()?.to_string();
                Some(Live {
                    inputs: json!({
                        "vpc": s.vpc_id().unwrap_or_default(),
                        "cidr": s.cidr_block().unwrap_or_default(),
                        "availability_zone": s.availability_zone().unwrap_or_default(),
                        "public": s.map_public_ip_on_launch().unwrap_or(false),
                        "tags": tag_map(s.tags()),
                    }),
                    attributes: json!({
                        "id": id,
                        "arn": s.subnet_arn().unwrap_or_default(),
                        "availability_zone_id": s.availability_zone_id().unwrap_or_default(),
                    }),
                    id,
                })
            })
            .collect())
    }
}

async fn set_public(ec2: &aws_sdk_ec2::Client, id: &str, public: bool) -> Result<(), AwsError> {
    ec2.modify_subnet_attribute()
        .subnet_id(id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(public).build())
        .send()
        .await
        .map_err(aws_err("ec2 ModifySubnetAttribute"))?;
    Ok(())
}

#[async_trait]
impl ResourceKind for Subnet {
    fn name(&self) -> &'static str {
        "subnet"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<SubnetConfig>(config)
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        complete_as::<SubnetConfig>(config)
    }
    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        super::validate::check_subnets(view)
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn", "availability_zone_id"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["vpc", "cidr", "availability_zone"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        read_by(ctx, reqs, "subnet-id", |f| Subnet::describe(ctx, f)).await
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: SubnetConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let out = aws
            .ec2
            .create_subnet()
            .vpc_id(&c.vpc)
            .cidr_block(&c.cidr)
            .availability_zone(&c.availability_zone)
            .tag_specifications(tag_spec(ResourceType::Subnet, &all_tags(ctx, address, &c.tags)))
            .send()
            .await
            .map_err(aws_err("ec2 CreateSubnet"))?;
        let s = out
            .subnet()
            .ok_or_else(|| ProviderError::new("CreateSubnet returned no subnet"))?;
        let id = s.subnet_id().unwrap_or_default().to_string();
        if c.public {
            set_public(&aws.ec2, &id, true).await?;
        }
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        let extra = json!({
            "id": id,
            "arn": s.subnet_arn().unwrap_or_default(),
            "availability_zone_id": s.availability_zone_id().unwrap_or_default(),
        });
        Ok(Live {
            id,
            attributes: with_attrs(&inputs, extra),
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: SubnetConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let old: SubnetConfig =
            serde_json::from_value(prior.inputs.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        if c.public != old.public {
            set_public(&aws.ec2, &prior.id, c.public).await?;
        }
        sync_tags(ctx, &aws.ec2, &prior.id, address, &old.tags, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let r = retry_on(&["DependencyViolation"], SETTLE_TIMEOUT, || async {
            aws.ec2
                .delete_subnet()
                .subnet_id(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("ec2 DeleteSubnet"))
        })
        .await;
        match r {
            Err(e) if e.is(&["InvalidSubnetID.NotFound"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        find_by(ctx, address, |f| Subnet::describe(ctx, f)).await
    }
}

// ---------------------------------------------------------------- internet_gateway

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IgwConfig {
    /// The VPC it is attached to.
    vpc: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `internet_gateway`: an internet gateway attached to a VPC.
pub struct InternetGateway;

impl InternetGateway {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let igws = aws
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("ec2 DescribeInternetGateways"))?;
        Ok(igws
            .into_iter()
            .filter_map(|g| {
                let id = g.internet_gateway_id()?.to_string();
                let vpc = g.attachments().iter().find_map(|a| a.vpc_id()).unwrap_or_default();
                Some(Live {
                    inputs: json!({ "vpc": vpc, "tags": tag_map(g.tags()) }),
                    attributes: json!({ "id": id }),
                    id,
                })
            })
            .collect())
    }
}

async fn detach_igw(ec2: &aws_sdk_ec2::Client, id: &str, vpc: &str) -> Result<(), AwsError> {
    let r = retry_on(&["DependencyViolation"], SETTLE_TIMEOUT, || async {
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
        Err(e)
            if e.is(&[
                "Gateway.NotAttached",
                "InvalidInternetGatewayID.NotFound",
                "InvalidVpcID.NotFound",
            ]) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[async_trait]
impl ResourceKind for InternetGateway {
    fn name(&self) -> &'static str {
        "internet_gateway"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<IgwConfig>(config)
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        complete_as::<IgwConfig>(config)
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        read_by(ctx, reqs, "internet-gateway-id", |f| InternetGateway::describe(ctx, f)).await
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: IgwConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let out = aws
            .ec2
            .create_internet_gateway()
            .tag_specifications(tag_spec(
                ResourceType::InternetGateway,
                &all_tags(ctx, address, &c.tags),
            ))
            .send()
            .await
            .map_err(aws_err("ec2 CreateInternetGateway"))?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| ProviderError::new("CreateInternetGateway returned no ID"))?
            .to_string();
        match aws
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(&id)
            .vpc_id(&c.vpc)
            .send()
            .await
            .map_err(aws_err("ec2 AttachInternetGateway"))
        {
            // Already attached (a retried call whose first answer was lost).
            Err(e) if e.is(&["Resource.AlreadyAssociated"]) => {}
            other => {
                other?;
            }
        }
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: with_attrs(&inputs, json!({"id": id})),
            id,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: IgwConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let old: IgwConfig =
            serde_json::from_value(prior.inputs.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        if c.vpc != old.vpc {
            if !old.vpc.is_empty() {
                detach_igw(&aws.ec2, &prior.id, &old.vpc).await?;
            }
            aws.ec2
                .attach_internet_gateway()
                .internet_gateway_id(&prior.id)
                .vpc_id(&c.vpc)
                .send()
                .await
                .map_err(aws_err("ec2 AttachInternetGateway"))?;
        }
        sync_tags(ctx, &aws.ec2, &prior.id, address, &old.tags, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        if let Some(vpc) = attributes.get("vpc").and_then(Value::as_str).filter(|v| !v.is_empty()) {
            detach_igw(&aws.ec2, id, vpc).await?;
        }
        let r = retry_on(&["DependencyViolation"], SETTLE_TIMEOUT, || async {
            aws.ec2
                .delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("ec2 DeleteInternetGateway"))
        })
        .await;
        match r {
            Err(e) if e.is(&["InvalidInternetGatewayID.NotFound"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        find_by(ctx, address, |f| InternetGateway::describe(ctx, f)).await
    }
}

// ---------------------------------------------------------------- elastic_ip

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EipConfig {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `elastic_ip`: a VPC elastic IP address (for a NAT gateway).
pub struct ElasticIp;

impl ElasticIp {
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
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
                Some(Live {
                    inputs: json!({ "tags": tag_map(a.tags()) }),
                    attributes: json!({ "id": id, "public_ip": a.public_ip().unwrap_or_default() }),
                    id,
                })
            })
            .collect())
    }
}

#[async_trait]
impl ResourceKind for ElasticIp {
    fn name(&self) -> &'static str {
        "elastic_ip"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<EipConfig>(config)
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        complete_as::<EipConfig>(config)
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "public_ip"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        read_by(ctx, reqs, "allocation-id", |f| ElasticIp::describe(ctx, f)).await
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: EipConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let out = aws
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tag_spec(ResourceType::ElasticIp, &all_tags(ctx, address, &c.tags)))
            .send()
            .await
            .map_err(aws_err("ec2 AllocateAddress"))?;
        let id = out
            .allocation_id()
            .ok_or_else(|| ProviderError::new("AllocateAddress returned no allocation ID"))?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: with_attrs(
                &inputs,
                json!({"id": id, "public_ip": out.public_ip().unwrap_or_default()}),
            ),
            id: id.to_string(),
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: EipConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        sync_tags(ctx, &aws.ec2, &prior.id, address, &tags_of(&prior.inputs), &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let r = retry_on(
            &["InvalidIPAddress.InUse", "DependencyViolation", "AuthFailure"],
            SETTLE_TIMEOUT,
            || async {
                aws.ec2
                    .release_address()
                    .allocation_id(id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err("ec2 ReleaseAddress"))
            },
        )
        .await;
        match r {
            Err(e) if e.is(&["InvalidAllocationID.NotFound"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        find_by(ctx, address, |f| ElasticIp::describe(ctx, f)).await
    }
}

// ---------------------------------------------------------------- nat_gateway

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NatConfig {
    /// A public subnet.
    subnet: String,
    /// The elastic IP's allocation ID.
    elastic_ip: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `nat_gateway`: a public NAT gateway in a public subnet with an elastic IP.
pub struct NatGateway;

/// How long a NAT gateway may take to become available or go away.
const NAT_TIMEOUT: Duration = Duration::from_secs(900);

impl NatGateway {
    /// Describe NAT gateways, leaving out deleted ones (they linger for an hour on AWS).
    async fn describe(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<(Live, NatGatewayState)>, ProviderError> {
        let aws = ctx.aws().await?;
        let nats = aws
            .ec2
            .describe_nat_gateways()
            .set_filter(Some(filters))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("ec2 DescribeNatGateways"))?;
        Ok(nats
            .into_iter()
            .filter_map(|n| {
                let id = n.nat_gateway_id()?.to_string();
                let state = n.state().cloned().unwrap_or(NatGatewayState::Pending);
                let addr = n.nat_gateway_addresses().first();
                Some((
                    Live {
                        inputs: json!({
                            "subnet": n.subnet_id().unwrap_or_default(),
                            "elastic_ip": addr.and_then(|a| a.allocation_id()).unwrap_or_default(),
                            "tags": tag_map(n.tags()),
                        }),
                        attributes: json!({
                            "id": id,
                            "public_ip": addr.and_then(|a| a.public_ip()).unwrap_or_default(),
                            "private_ip": addr.and_then(|a| a.private_ip()).unwrap_or_default(),
                        }),
                        id,
                    },
                    state,
                ))
            })
            .collect())
    }

    async fn live(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Live>, ProviderError> {
        Ok(Self::describe(ctx, filters)
            .await?
            .into_iter()
            .filter(|(_, s)| {
                !matches!(
                    s,
                    NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed
                )
            })
            .map(|(l, _)| l)
            .collect())
    }

    /// Poll until the gateway reaches `want` (or, for deletion, disappears).
    async fn wait(ctx: &Ctx, id: &str, want: NatGatewayState) -> Result<(), ProviderError> {
        let t0 = Instant::now();
        let mut wait = Duration::from_millis(500);
        loop {
            let found = Self::describe(ctx, vec![filter("nat-gateway-id", [id])]).await?;
            let state = found.first().map(|(_, s)| s.clone());
            match state {
                Some(s) if s == want => return Ok(()),
                None if want == NatGatewayState::Deleted => return Ok(()),
                Some(NatGatewayState::Failed) => {
                    return Err(ProviderError::new(format!(
                        "NAT gateway {id} failed (see its failure message in the console)"
                    )))
                }
                _ if t0.elapsed() > NAT_TIMEOUT => {
                    return Err(ProviderError::new(format!(
                        "NAT gateway {id} did not become {} within {} s",
                        want.as_str(),
                        NAT_TIMEOUT.as_secs()
                    )))
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

#[async_trait]
impl ResourceKind for NatGateway {
    fn name(&self) -> &'static str {
        "nat_gateway"
    }
    fn may_duplicate(&self) -> bool {
        true
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<NatConfig>(config)
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        complete_as::<NatConfig>(config)
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "public_ip", "private_ip"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["subnet", "elastic_ip"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        read_by(ctx, reqs, "nat-gateway-id", |f| NatGateway::live(ctx, f)).await
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: NatConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let out = aws
            .ec2
            .create_nat_gateway()
            .subnet_id(&c.subnet)
            .allocation_id(&c.elastic_ip)
            .tag_specifications(tag_spec(ResourceType::Natgateway, &all_tags(ctx, address, &c.tags)))
            .send()
            .await
            .map_err(aws_err("ec2 CreateNatGateway"))?;
        let id = out
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .ok_or_else(|| ProviderError::new("CreateNatGateway returned no ID"))?
            .to_string();
        NatGateway::wait(ctx, &id, NatGatewayState::Available).await?;
        let live = NatGateway::live(ctx, vec![filter("nat-gateway-id", [id.clone()])]).await?;
        let attrs = live
            .first()
            .map(|l| l.attributes.clone())
            .unwrap_or_else(|| json!({"id": id}));
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: with_attrs(&inputs, attrs),
            id,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: NatConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        sync_tags(ctx, &aws.ec2, &prior.id, address, &tags_of(&prior.inputs), &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        // moto answers 500 (AWS: NatGatewayNotFound) for a missing ID: look first.
        if NatGateway::live(ctx, vec![filter("nat-gateway-id", [id])])
            .await?
            .is_empty()
        {
            return Ok(());
        }
        match aws
            .ec2
            .delete_nat_gateway()
            .nat_gateway_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteNatGateway"))
        {
            Err(e) if e.is(&["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"]) => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        NatGateway::wait(ctx, id, NatGatewayState::Deleted).await
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        find_by(ctx, address, |f| NatGateway::live(ctx, f)).await
    }
}
