//! `route53_zone`: a hosted zone the account already has, looked up by
//! name. A lookup owns nothing: apply reads the zone, destroy forgets it,
//! and no Route53 call ever changes or deletes it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::NO_SUCH_ZONE;
use super::{bare_zone_id, dns_name};
use crate::providers::aws::aws_err;
use crate::providers::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone's DNS name, e.g. "example.com".
    name: String,
    /// Look for the private zone of that name instead of the public one.
    #[serde(default)]
    private_zone: bool,
}

/// `route53_zone`
pub struct Route53Zone;

fn zone_live(id: &str, name: &str, private: bool, name_servers: Vec<String>) -> Live {
    let id = bare_zone_id(id);
    let name = dns_name(name);
    Live {
        inputs: json!({ "name": name, "private_zone": private }),
        attributes: json!({
            "id": id, "zone_id": id, "name": name, "private_zone": private, "name_servers": name_servers,
        }),
        id,
    }
}

async fn get(ctx: &Ctx, id: &str) -> Result<Option<Live>, ProviderError> {
    let aws = ctx.aws().await?;
    let out = aws.route53.get_hosted_zone().id(id).send().await;
    let out = match out.map_err(aws_err("route53 GetHostedZone")) {
        Err(e) if e.is(&[NO_SUCH_ZONE]) => return Ok(None),
        r => r?,
    };
    let Some(z) = out.hosted_zone() else { return Ok(None) };
    let private = z.config().map(|c| c.private_zone()).unwrap_or(false);
    let servers = out
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    Ok(Some(zone_live(z.id(), z.name(), private, servers)))
}

/// The one zone of that name and visibility; none or several is an error a person must settle.
async fn lookup(ctx: &Ctx, address: &str, c: &ZoneConfig) -> Result<Live, ProviderError> {
    let aws = ctx.aws().await?;
    let want = dns_name(&c.name);
    let out = aws
        .route53
        .list_hosted_zones_by_name()
        .dns_name(&want)
        .send()
        .await
        .map_err(aws_err("route53 ListHostedZonesByName"))?;
    let found: Vec<_> = out
        .hosted_zones()
        .iter()
        .filter(|z| dns_name(z.name()) == want)
        .filter(|z| z.config().map(|c| c.private_zone()).unwrap_or(false) == c.private_zone)
        .collect();
    let visibility = if c.private_zone { "private" } else { "public" };
    match found.as_slice() {
        [z] => get(ctx, z.id())
            .await?
            .ok_or_else(|| ProviderError::new(format!("{address}: hosted zone {} vanished while read", z.id()))),
        [] => Err(ProviderError::new(format!(
            "{address}: this account has no {visibility} hosted zone named {want}. route53_zone looks a zone up; \
             it never creates one (create it once, by hand or in its own stack, and delegate the domain to it)"
        ))),
        many => Err(ProviderError::new(format!(
            "{address}: {} {visibility} hosted zones are named {want} ({}); delete the stray ones, slipway will not guess",
            many.len(),
            many.iter().map(|z| bare_zone_id(z.id())).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[async_trait]
impl ResourceKind for Route53Zone {
    fn name(&self) -> &'static str {
        "route53_zone"
    }

    fn config_schema(&self) -> Value {
        serde_json::to_value(schemars::schema_for!(ZoneConfig)).unwrap_or_default()
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<ZoneConfig>(config)
    }

    fn complete(&self, _stack: &str, _address: &str, config: &Value) -> Value {
        match serde_json::from_value::<ZoneConfig>(config.clone()) {
            Ok(c) => json!({ "name": dns_name(&c.name), "private_zone": c.private_zone }),
            Err(_) => config.clone(),
        }
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "zone_id", "name_servers"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["name", "private_zone"]
    }

    fn aws_permissions(&self) -> Option<crate::providers::aws::permissions::Permissions> {
        Some(crate::providers::aws::permissions::Permissions {
            read: &["route53:GetHostedZone", "route53:ListHostedZonesByName"],
            ..crate::providers::aws::permissions::Permissions::NONE
        })
    }

    async fn read_many(&self, ctx: &Ctx, items: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        let mut out = Vec::with_capacity(items.len());
        for r in items {
            out.push(get(ctx, r.id).await?);
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let c: ZoneConfig =
            serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(format!("{address}: {e}")))?;
        lookup(ctx, address, &c).await
    }

    async fn update(&self, ctx: &Ctx, address: &str, _prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        self.create(ctx, address, config).await
    }

    /// A zone the account lacks fails the plan, not the apply halfway.
    async fn check_create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<(), ProviderError> {
        if crate::value::contains_unknown(config) {
            return Ok(());
        }
        let Ok(c) = serde_json::from_value::<ZoneConfig>(config.clone()) else {
            return Ok(());
        };
        lookup(ctx, address, &c).await.map(|_| ())
    }

    /// The zone is not slipway's: forgetting it is all a delete does.
    async fn delete(&self, _ctx: &Ctx, _address: &str, _id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    /// A lookup makes nothing an interrupted run could leave behind.
    async fn find_owned(&self, _ctx: &Ctx, _address: &str) -> Result<Vec<Live>, ProviderError> {
        Ok(Vec::new())
    }
}
