//! `route53_record`: one record set (A, AAAA, CNAME, TXT) in a hosted zone,
//! with values or as an alias (to an ALB). Records carry no tags, so
//! ownership is the state's alone: a create never overwrites a record that
//! exists (Route53 refuses the CREATE, and slipway says so), and a delete
//! removes the record only while it still holds what slipway wrote (Route53
//! refuses a DELETE whose values differ).

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{INVALID_CHANGE_BATCH, NO_SUCH_ZONE};
use super::{bare_zone_id, dns_name};
use crate::path::PathSeg;
use crate::providers::aws::{aws_err, Clients};
use crate::providers::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};

const TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT"];

fn ttl() -> i64 {
    300
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// The target's DNS name (`${alb.X.dns_name}`).
    name: String,
    /// The target's hosted zone (`${alb.X.zone_id}`), not the record's.
    zone_id: String,
    #[serde(default)]
    evaluate_target_health: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// The hosted zone's ID (`${route53_zone.X.id}`).
    zone: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "ttl")]
    ttl: i64,
    #[serde(default)]
    records: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alias: Option<Alias>,
}

impl RecordConfig {
    fn canonical(mut self) -> RecordConfig {
        self.zone = bare_zone_id(&self.zone);
        self.name = dns_name(&self.name);
        self.kind = self.kind.to_ascii_uppercase();
        if let Some(a) = &mut self.alias {
            a.name = dns_name(&a.name);
            a.zone_id = bare_zone_id(&a.zone_id);
            // An alias has no TTL of its own.
            self.ttl = 0;
        }
        self.records.sort();
        self.records.dedup();
        self
    }

    fn id(&self) -> String {
        format!("{}_{}_{}", self.zone, self.name, self.kind)
    }

    fn set(&self) -> Result<ResourceRecordSet, ProviderError> {
        let bad = |e: aws_sdk_route53::error::BuildError| ProviderError::new(format!("record {}: {e}", self.name));
        let mut b = ResourceRecordSet::builder()
            .name(&self.name)
            .r#type(RrType::from(self.kind.as_str()));
        if let Some(a) = &self.alias {
            b = b.alias_target(
                AliasTarget::builder()
                    .dns_name(&a.name)
                    .hosted_zone_id(&a.zone_id)
                    .evaluate_target_health(a.evaluate_target_health)
                    .build()
                    .map_err(bad)?,
            );
        } else {
            b = b.ttl(self.ttl);
            for r in &self.records {
                b = b.resource_records(ResourceRecord::builder().value(r).build().map_err(bad)?);
            }
        }
        b.build().map_err(bad)
    }
}

fn parse(address: &str, v: &Value) -> Result<RecordConfig, ProviderError> {
    serde_json::from_value::<RecordConfig>(v.clone())
        .map(RecordConfig::canonical)
        .map_err(|e| ProviderError::new(format!("{address}: {e}")))
}

/// `route53_record`
pub struct Route53Record;

/// The record set of that name and type, as a config.
async fn read(aws: &Clients, zone: &str, name: &str, kind: &str) -> Result<Option<RecordConfig>, ProviderError> {
    let out = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await;
    let out = match out.map_err(aws_err("route53 ListResourceRecordSets")) {
        Err(e) if e.is(&[NO_SUCH_ZONE]) => return Ok(None),
        r => r?,
    };
    let Some(s) = out
        .resource_record_sets()
        .iter()
        .find(|s| dns_name(s.name()) == name && s.r#type().as_str() == kind)
    else {
        return Ok(None);
    };
    let c = RecordConfig {
        zone: zone.to_string(),
        name: name.to_string(),
        kind: kind.to_string(),
        ttl: s.ttl().unwrap_or(0),
        records: s.resource_records().iter().map(|r| r.value().to_string()).collect(),
        alias: s.alias_target().map(|a| Alias {
            name: a.dns_name().to_string(),
            zone_id: a.hosted_zone_id().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
    };
    Ok(Some(c.canonical()))
}

fn live_of(c: &RecordConfig) -> Live {
    let inputs = serde_json::to_value(c).unwrap_or_default();
    let mut attributes = inputs.clone();
    attributes["id"] = json!(c.id());
    attributes["fqdn"] = json!(c.name);
    Live {
        id: c.id(),
        inputs,
        attributes,
    }
}

async fn change(aws: &Clients, action: ChangeAction, c: &RecordConfig, op: &str) -> Result<(), ProviderError> {
    let change = Change::builder()
        .action(action)
        .resource_record_set(c.set()?)
        .build()
        .map_err(|e| ProviderError::new(format!("record {}: {e}", c.name)))?;
    let batch = ChangeBatch::builder()
        .changes(change)
        .build()
        .map_err(|e| ProviderError::new(format!("record {}: {e}", c.name)))?;
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(&c.zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(aws_err(op))?;
    Ok(())
}

#[async_trait]
impl ResourceKind for Route53Record {
    fn name(&self) -> &'static str {
        "route53_record"
    }

    fn aws_permissions(&self) -> Option<crate::providers::aws::permissions::Permissions> {
        // Records carry no tags and Route53 has no tag conditions: the zone is not ours.
        Some(crate::providers::aws::permissions::Permissions {
            read: &["route53:ListResourceRecordSets"],
            unowned: &["route53:ChangeResourceRecordSets"],
            ..crate::providers::aws::permissions::Permissions::NONE
        })
    }

    fn config_schema(&self) -> Value {
        serde_json::to_value(schemars::schema_for!(RecordConfig)).unwrap_or_default()
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<RecordConfig>(config)?;
        let field = |f: &str| vec![PathSeg::Field(f.into())];
        if let Some(t) = config.get("type").and_then(Value::as_str).filter(|t| !t.contains("${")) {
            if !TYPES.contains(&t.to_ascii_uppercase().as_str()) {
                return Err(SchemaError::at(
                    field("type"),
                    format!("{t:?}: slipway writes {} records", TYPES.join(", ")),
                ));
            }
        }
        let records = config
            .get("records")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty());
        match (config.get("alias").is_some(), records) {
            (true, true) => Err(SchemaError::at(field("records"), "give `records` or `alias`, not both")),
            (false, false) => Err(SchemaError::at(
                field("records"),
                "give `records`, or `alias` to point at an ALB",
            )),
            _ => Ok(()),
        }
    }

    fn complete(&self, _stack: &str, _address: &str, config: &Value) -> Value {
        match serde_json::from_value::<RecordConfig>(config.clone()) {
            Ok(c) => serde_json::to_value(c.canonical()).unwrap_or_else(|_| config.clone()),
            Err(_) => config.clone(),
        }
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "fqdn"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["zone", "name", "type"]
    }

    async fn read_many(&self, ctx: &Ctx, items: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        let aws = ctx.aws().await?;
        let mut out = Vec::with_capacity(items.len());
        for r in items {
            let c = parse(r.address, r.inputs)?;
            out.push(read(&aws, &c.zone, &c.name, &c.kind).await?.as_ref().map(live_of));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(address, config)?;
        // Records carry no tags: one that exists is never this state's to take.
        if read(&aws, &c.zone, &c.name, &c.kind).await?.is_some() {
            return Err(ProviderError::new(format!(
                "{address}: zone {} already has a {} record {} that this state did not write. Route53 records carry \
                 no owner, so slipway never overwrites one: remove it, or take it over deliberately with \
                 `slipway import DIR {address} {}`",
                c.zone,
                c.kind,
                c.name,
                c.id()
            )));
        }
        match change(
            &aws,
            ChangeAction::Create,
            &c,
            "route53 ChangeResourceRecordSets (CREATE)",
        )
        .await
        {
            // A retry of a CREATE whose answer was lost finds its own record:
            // absent a moment ago, now exactly what this call wrote.
            Err(e) if e.is(&[INVALID_CHANGE_BATCH]) => match read(&aws, &c.zone, &c.name, &c.kind).await? {
                Some(live) if live == c => {}
                _ => return Err(e),
            },
            r => r?,
        }
        Ok(live_of(&c))
    }

    async fn update(&self, ctx: &Ctx, address: &str, _prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(address, config)?;
        change(
            &aws,
            ChangeAction::Upsert,
            &c,
            "route53 ChangeResourceRecordSets (UPSERT)",
        )
        .await?;
        Ok(live_of(&c))
    }

    async fn delete(&self, ctx: &Ctx, address: &str, _id: &str, attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(address, &strip_computed(attributes))?;
        let Some(live) = read(&aws, &c.zone, &c.name, &c.kind).await? else {
            return Ok(());
        };
        if live != c {
            return Err(ProviderError::new(format!(
                "{address}: the {} record {} no longer holds what this state wrote (someone changed it); \
                 nothing was deleted. Bring it back with apply, or `slipway state rm {address}` to leave it",
                c.kind, c.name
            )));
        }
        match change(
            &aws,
            ChangeAction::Delete,
            &c,
            "route53 ChangeResourceRecordSets (DELETE)",
        )
        .await
        {
            Err(e) if e.is(&[NO_SUCH_ZONE]) => Ok(()),
            Err(e) if e.is(&[INVALID_CHANGE_BATCH]) => Err(ProviderError::new(format!(
                "{address}: {}; nothing was deleted",
                e.message
            ))),
            r => r,
        }
    }

    /// Records carry no tags: an interrupted create is retried, and a record
    /// it did write is then refused as existing, never silently taken.
    async fn find_owned(&self, _ctx: &Ctx, _address: &str) -> Result<Vec<Live>, ProviderError> {
        Ok(Vec::new())
    }
}

fn strip_computed(attributes: &Value) -> Value {
    let mut v = attributes.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("fqdn");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_compare_in_canonical_form_and_aliases_need_no_ttl() {
        let k = Route53Record;
        let a = k.complete(
            "s",
            "route53_record.site",
            &json!({"zone": "/hostedzone/Z1", "name": "Blog.Example.com.", "type": "a",
                     "alias": {"name": "x.elb.amazonaws.com.", "zone_id": "Z2"}}),
        );
        assert_eq!(a["name"], "blog.example.com");
        assert_eq!(a["type"], "A");
        assert_eq!(a["zone"], "Z1");
        assert_eq!(a["ttl"], 0);
        assert!(k
            .check(&json!({"zone": "Z1", "name": "a", "type": "MX", "records": ["x"]}))
            .is_err());
        assert!(k.check(&json!({"zone": "Z1", "name": "a", "type": "A"})).is_err());
        let c = parse("r", &a).unwrap();
        assert_eq!(c.id(), "Z1_blog.example.com_A");
        assert_eq!(parse("r", &strip_computed(&live_of(&c).attributes)).unwrap(), c);
    }
}
