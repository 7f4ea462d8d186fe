//! `route_table`: a VPC route table with routes to an internet or NAT
//! gateway and its subnet associations. Routes and associations update in
//! place against what is live now (read again before changing), so drift
//! made by hand is repaired rather than fought.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ec2::{filter, find_by, read_by, sync_tags, tag_map, tag_spec};
use super::{aws_err, with_attrs};
use crate::providers::{check_schema, complete_as, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};
use crate::stack::node::PathSeg;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    /// Destination CIDR, e.g. "0.0.0.0/0".
    cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    internet_gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nat_gateway: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteTableConfig {
    vpc: String,
    #[serde(default)]
    routes: Vec<Route>,
    /// Subnet IDs associated with this table.
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl RouteTableConfig {
    /// Routes sorted and subnets sorted: order carries no meaning.
    fn canonical(mut self) -> Self {
        crate::value::sort_dedup(&mut self.routes);
        crate::value::sort_dedup(&mut self.subnets);
        self
    }
}

/// `route_table`
pub struct RouteTable;

/// What is live: the inputs and the association ID of each subnet.
struct Table {
    live: Live,
    associations: BTreeMap<String, String>,
}

async fn describe_tables(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Table>, ProviderError> {
    let aws = ctx.aws().await?;
    let tables = aws
        .ec2
        .describe_route_tables()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(aws_err("ec2 DescribeRouteTables"))?;
    Ok(tables
        .into_iter()
        .filter_map(|t| {
            let id = t.route_table_id()?.to_string();
            let mut routes: Vec<Route> = t
                .routes()
                .iter()
                .filter(|r| r.gateway_id() != Some("local"))
                .filter_map(|r| {
                    let cidr = r.destination_cidr_block()?.to_string();
                    Some(Route {
                        cidr,
                        internet_gateway: r.gateway_id().map(str::to_string),
                        nat_gateway: r.nat_gateway_id().map(str::to_string),
                    })
                })
                .collect();
            routes.sort();
            let associations: BTreeMap<String, String> = t
                .associations()
                .iter()
                .filter(|a| !a.main().unwrap_or(false))
                .filter_map(|a| Some((a.subnet_id()?.to_string(), a.route_table_association_id()?.to_string())))
                .collect();
            let live = Live {
                inputs: json!({
                    "vpc": t.vpc_id().unwrap_or_default(),
                    "routes": routes,
                    "subnets": associations.keys().collect::<Vec<_>>(),
                    "tags": tag_map(t.tags()),
                }),
                attributes: json!({ "id": id }),
                id,
            };
            Some(Table { live, associations })
        })
        .collect())
}

async fn lives(ctx: &Ctx, filters: Vec<Filter>) -> Result<Vec<Live>, ProviderError> {
    Ok(describe_tables(ctx, filters)
        .await?
        .into_iter()
        .map(|t| t.live)
        .collect())
}

/// Make the live table's routes and associations match `c`.
async fn converge(
    ctx: &Ctx,
    id: &str,
    c: &RouteTableConfig,
    live_routes: &[Route],
    assoc: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    let aws = ctx.aws().await?;
    let want: BTreeMap<&str, &Route> = c.routes.iter().map(|r| (r.cidr.as_str(), r)).collect();
    let have: BTreeMap<&str, &Route> = live_routes.iter().map(|r| (r.cidr.as_str(), r)).collect();
    for (cidr, r) in &want {
        match have.get(cidr) {
            Some(h) if h == r => {}
            Some(_) => {
                aws.ec2
                    .replace_route()
                    .route_table_id(id)
                    .destination_cidr_block(*cidr)
                    .set_gateway_id(r.internet_gateway.clone())
                    .set_nat_gateway_id(r.nat_gateway.clone())
                    .send()
                    .await
                    .map_err(aws_err("ec2 ReplaceRoute"))?;
            }
            None => {
                let created = aws
                    .ec2
                    .create_route()
                    .route_table_id(id)
                    .destination_cidr_block(*cidr)
                    .set_gateway_id(r.internet_gateway.clone())
                    .set_nat_gateway_id(r.nat_gateway.clone())
                    .send()
                    .await
                    .map_err(aws_err("ec2 CreateRoute"));
                match created {
                    // A retried call whose first answer was lost: point the route where we want.
                    Err(e) if e.is(&["RouteAlreadyExists"]) => {
                        aws.ec2
                            .replace_route()
                            .route_table_id(id)
                            .destination_cidr_block(*cidr)
                            .set_gateway_id(r.internet_gateway.clone())
                            .set_nat_gateway_id(r.nat_gateway.clone())
                            .send()
                            .await
                            .map_err(aws_err("ec2 ReplaceRoute"))?;
                    }
                    other => {
                        other?;
                    }
                }
            }
        }
    }
    for cidr in have.keys().filter(|c| !want.contains_key(*c)) {
        aws.ec2
            .delete_route()
            .route_table_id(id)
            .destination_cidr_block(*cidr)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteRoute"))?;
    }
    let want_subnets: BTreeSet<&String> = c.subnets.iter().collect();
    for (subnet, assoc_id) in assoc {
        if !want_subnets.contains(subnet) {
            aws.ec2
                .disassociate_route_table()
                .association_id(assoc_id)
                .send()
                .await
                .map_err(aws_err("ec2 DisassociateRouteTable"))?;
        }
    }
    for subnet in want_subnets {
        if !assoc.contains_key(subnet) {
            match aws
                .ec2
                .associate_route_table()
                .route_table_id(id)
                .subnet_id(subnet)
                .send()
                .await
                .map_err(aws_err("ec2 AssociateRouteTable"))
            {
                // Already associated (a retried call whose first answer was lost).
                Err(e) if e.is(&["Resource.AlreadyAssociated"]) => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

fn parse(config: &Value) -> Result<RouteTableConfig, ProviderError> {
    serde_json::from_value::<RouteTableConfig>(config.clone())
        .map(RouteTableConfig::canonical)
        .map_err(|e| ProviderError::new(e.to_string()))
}

#[async_trait]
impl ResourceKind for RouteTable {
    fn name(&self) -> &'static str {
        "route_table"
    }
    fn may_duplicate(&self) -> bool {
        true
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<RouteTableConfig>(config)?;
        for (i, r) in config
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let targets = ["internet_gateway", "nat_gateway"]
                .iter()
                .filter(|k| r.get(**k).is_some())
                .count();
            if targets != 1 {
                return Err(SchemaError {
                    path: vec![PathSeg::Field("routes".into()), PathSeg::Index(i)],
                    message: "a route needs exactly one target: `internet_gateway` or `nat_gateway`".into(),
                    suggestion: None,
                });
            }
            if let Some(c) = r.get("cidr").and_then(Value::as_str) {
                if !c.contains("${") {
                    if let Err(e) = super::validate::parse_cidr(c) {
                        return Err(SchemaError {
                            path: vec![
                                PathSeg::Field("routes".into()),
                                PathSeg::Index(i),
                                PathSeg::Field("cidr".into()),
                            ],
                            message: e,
                            suggestion: None,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        match serde_json::from_value::<RouteTableConfig>(config.clone()) {
            Ok(c) => serde_json::to_value(c.canonical()).unwrap_or_else(|_| config.clone()),
            Err(_) => complete_as::<RouteTableConfig>(config),
        }
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["vpc"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        read_by(ctx, reqs, "route-table-id", |f| lives(ctx, f)).await
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(config)?;
        let out = aws
            .ec2
            .create_route_table()
            .vpc_id(&c.vpc)
            .tag_specifications(tag_spec(
                ResourceType::RouteTable,
                &super::all_tags(ctx, address, &c.tags),
            ))
            .send()
            .await
            .map_err(aws_err("ec2 CreateRouteTable"))?;
        let id = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| ProviderError::new("CreateRouteTable returned no ID"))?
            .to_string();
        converge(ctx, &id, &c, &[], &BTreeMap::new()).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: with_attrs(&inputs, json!({"id": id})),
            id,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(config)?;
        let now = describe_tables(ctx, vec![filter("route-table-id", [prior.id.clone()])])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::new(format!("route table {} is gone", prior.id)))?;
        let live_routes: Vec<Route> = serde_json::from_value(now.live.inputs["routes"].clone()).unwrap_or_default();
        converge(ctx, &prior.id, &c, &live_routes, &now.associations).await?;
        let live_tags: BTreeMap<String, String> =
            serde_json::from_value(now.live.inputs["tags"].clone()).unwrap_or_default();
        let old_user = super::user_tags(ctx, address, live_tags);
        sync_tags(ctx, &aws.ec2, &prior.id, address, &old_user, &c.tags).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let Some(now) = describe_tables(ctx, vec![filter("route-table-id", [id])])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        for assoc in now.associations.values() {
            match aws
                .ec2
                .disassociate_route_table()
                .association_id(assoc)
                .send()
                .await
                .map_err(aws_err("ec2 DisassociateRouteTable"))
            {
                Err(e) if e.is(&["InvalidAssociationID.NotFound"]) => {}
                other => {
                    other?;
                }
            }
        }
        let r = super::retry_on(&["DependencyViolation"], super::SETTLE_TIMEOUT, || async {
            aws.ec2
                .delete_route_table()
                .route_table_id(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("ec2 DeleteRouteTable"))
        })
        .await;
        match r {
            Err(e) if e.is(&["InvalidRouteTableID.NotFound"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        find_by(ctx, address, |f| lives(ctx, f)).await
    }
}
