//! `route_table`: a VPC route table with routes to an internet or NAT
//! gateway and its subnet associations. Routes and associations update in
//! place against what is live now (read again before changing), so drift
//! made by hand is repaired rather than fought.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{ALREADY_ASSOCIATED, DEPENDENCY_VIOLATION, ROUTE_TABLE_NOT_FOUND};
use super::{describe_each, filter, tag_map, tag_spec};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::{Ctx, Live, ProviderError, SchemaError};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination CIDR, e.g. "0.0.0.0/0".
    cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    internet_gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nat_gateway: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTableConfig {
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

/// What is live: the inputs and the association ID of each subnet.
struct Table {
    live: Live,
    tags: BTreeMap<String, String>,
    associations: BTreeMap<String, String>,
}

async fn describe_tables(aws: &Clients, filters: Vec<Filter>) -> Result<Vec<Table>, ProviderError> {
    let tables = all_items!(
        aws.ec2.describe_route_tables().set_filters(Some(filters)),
        "ec2 DescribeRouteTables"
    )?;
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
            let tags = tag_map(t.tags());
            let live = Live {
                inputs: json!({
                    "vpc": t.vpc_id().unwrap_or_default(),
                    "routes": routes,
                    "subnets": associations.keys().collect::<Vec<_>>(),
                }),
                attributes: json!({ "id": id }),
                id,
            };
            Some(Table {
                live,
                tags,
                associations,
            })
        })
        .collect())
}

/// Make the live table's routes and associations match `c`.
async fn converge(
    aws: &Clients,
    id: &str,
    c: &RouteTableConfig,
    live_routes: &[Route],
    assoc: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    let want: BTreeMap<&str, &Route> = c.routes.iter().map(|r| (r.cidr.as_str(), r)).collect();
    let have: BTreeMap<&str, &Route> = live_routes.iter().map(|r| (r.cidr.as_str(), r)).collect();
    let replace = |cidr: &str, r: &Route| {
        aws.ec2
            .replace_route()
            .route_table_id(id)
            .destination_cidr_block(cidr)
            .set_gateway_id(r.internet_gateway.clone())
            .set_nat_gateway_id(r.nat_gateway.clone())
            .send()
    };
    for (cidr, r) in &want {
        match have.get(cidr) {
            Some(h) if h == r => {}
            Some(_) => {
                replace(cidr, r).await.map_err(aws_err("ec2 ReplaceRoute"))?;
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
                        replace(cidr, r).await.map_err(aws_err("ec2 ReplaceRoute"))?;
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
                Err(e) if e.is(&[ALREADY_ASSOCIATED]) => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// `route_table`
pub struct RouteTable;

async fn one(aws: &Clients, id: &str) -> Result<Option<Table>, ProviderError> {
    Ok(describe_tables(aws, vec![filter("route-table-id", [id])])
        .await?
        .into_iter()
        .next())
}

#[async_trait]
impl AwsKind for RouteTable {
    type Config = RouteTableConfig;
    const NAME: &'static str = "route_table";
    const COMPUTED: &'static [&'static str] = &["id"];
    const FORCE_NEW: &'static [&'static str] = &["vpc"];
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[ROUTE_TABLE_NOT_FOUND];
    const DELETE_RETRY: &'static [&'static str] = &[DEPENDENCY_VIOLATION];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeRouteTables"],
        create: &["ec2:CreateRouteTable"],
        create_in: &[("ec2:CreateRouteTable", "vpc")],
        owned: &[
            "ec2:CreateRoute",
            "ec2:ReplaceRoute",
            "ec2:DeleteRoute",
            "ec2:AssociateRouteTable",
            "ec2:DisassociateRouteTable",
            "ec2:DeleteRouteTable",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, c: RouteTableConfig, _stack: &str, _address: &str) -> Result<RouteTableConfig, String> {
        Ok(c.canonical())
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
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
                let path = vec![PathSeg::Field("routes".into()), PathSeg::Index(i)];
                return Err(SchemaError::at(
                    path,
                    "a route needs exactly one target: `internet_gateway` or `nat_gateway`",
                ));
            }
            if let Some(c) = r.get("cidr").and_then(Value::as_str) {
                if !c.contains("${") {
                    if let Err(e) = super::network_checks::parse_cidr(c) {
                        let path = vec![
                            PathSeg::Field("routes".into()),
                            PathSeg::Index(i),
                            PathSeg::Field("cidr".into()),
                        ];
                        return Err(SchemaError::at(path, e));
                    }
                }
            }
        }
        Ok(())
    }

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let tables = describe_each(ctx, sel, "route-table-id", |f| describe_tables(aws, f)).await?;
        Ok(tables
            .into_iter()
            .map(|t| Tagged {
                live: t.live,
                tags: t.tags,
            })
            .collect())
    }

    async fn create(&self, call: &Call<'_>, c: &RouteTableConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let out = call
            .aws
            .ec2
            .create_route_table()
            .vpc_id(&c.vpc)
            .tag_specifications(tag_spec(ResourceType::RouteTable, tags))
            .send()
            .await
            .map_err(aws_err("ec2 CreateRouteTable"))?;
        let id = out
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap_or_default()
            .to_string();
        if !id.is_empty() {
            converge(call.aws, &id, c, &[], &BTreeMap::new()).await?;
        }
        Ok(Created::new(id.clone(), json!({"id": id})))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        _old: &RouteTableConfig,
        c: &RouteTableConfig,
    ) -> Result<Value, ProviderError> {
        // Against what is live now, not the state, so drift is repaired.
        let now = one(call.aws, &prior.id)
            .await?
            .ok_or_else(|| ProviderError::new(format!("route table {} is gone", prior.id)))?;
        let live_routes: Vec<Route> = serde_json::from_value(now.live.inputs["routes"].clone()).unwrap_or_default();
        converge(call.aws, &prior.id, c, &live_routes, &now.associations).await?;
        Ok(Value::Null)
    }

    async fn before_delete(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let Some(now) = one(call.aws, id).await? else {
            return Ok(());
        };
        for assoc in now.associations.values() {
            match call
                .aws
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
        Ok(())
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .ec2
            .delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteRouteTable"))?;
        Ok(())
    }
}
