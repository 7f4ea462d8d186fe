//! Lookups of what exists and is not the stack's (Terraform's data
//! sources): `[lookup.KIND.NAME]`, read at plan time, read as
//! `${lookup.KIND.NAME.ATTRIBUTE}`, never owned, never changed, never in the
//! state as resources. The plan carries what they read, so `apply PLAN`
//! uses the same values.
//!
//! | kind | fields | attributes |
//! |---|---|---|
//! | `caller_identity` | none | `account_id`, `arn`, `user_id`, `partition` |
//! | `region` | none | `name` |
//! | `availability_zones` | `state` ("available") | `names`, `zone_ids` |

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::providers::{Ctx, ProviderError};
use crate::stack::Stack;

/// The kinds, their fields and their attributes.
pub const KINDS: &[(&str, &[&str], &[&str])] = &[
    ("caller_identity", &[], &["account_id", "arn", "user_id", "partition"]),
    ("region", &[], &["name"]),
    ("availability_zones", &["state"], &["names", "zone_ids"]),
];

pub fn kind(name: &str) -> Option<&'static (&'static str, &'static [&'static str], &'static [&'static str])> {
    KINDS.iter().find(|k| k.0 == name)
}

/// Read every lookup of the stack: `kind.name` -> its attributes. Fields
/// are resolved with the variables and locals (a lookup cannot read a
/// resource: it is read before any is planned).
pub async fn read_all(
    stack: &Stack,
    variables: &BTreeMap<String, Value>,
    ctx: &Ctx,
) -> Result<BTreeMap<String, Value>, ProviderError> {
    let mut out = BTreeMap::new();
    if stack.lookups.is_empty() {
        return Ok(out);
    }
    let locals = stack.local_values();
    let no_attrs = |_: &str| None;
    let scope = crate::plan::make::Scope::new(&no_attrs, variables, &locals, &stack.dir);
    for l in &stack.lookups {
        let config = crate::stack::template::resolve(&l.config, &scope)
            .map_err(|e| ProviderError::new(format!("lookup.{}.{}: {e}", l.kind, l.name)))?;
        let value = read(&l.kind, &config, ctx)
            .await
            .map_err(|e| ProviderError::new(format!("lookup.{}.{}: {}", l.kind, l.name, e.message)))?;
        out.insert(format!("{}.{}", l.kind, l.name), value);
    }
    Ok(out)
}

async fn read(kind: &str, config: &Value, ctx: &Ctx) -> Result<Value, ProviderError> {
    let aws = ctx.aws().await?;
    match kind {
        "caller_identity" => {
            let sts = aws_sdk_sts::Client::new(&aws.config);
            let me = sts.get_caller_identity().send().await.map_err(|e| {
                ProviderError::new(format!(
                    "sts GetCallerIdentity: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ))
            })?;
            let arn = me.arn().unwrap_or_default().to_string();
            let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
            Ok(json!({
                "account_id": me.account().unwrap_or_default(),
                "arn": arn,
                "user_id": me.user_id().unwrap_or_default(),
                "partition": partition,
            }))
        }
        "region" => Ok(json!({ "name": aws.region })),
        "availability_zones" => {
            let state = config.get("state").and_then(Value::as_str).unwrap_or("available");
            let got = aws
                .ec2
                .describe_availability_zones()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("state")
                        .values(state)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "ec2 DescribeAvailabilityZones: {}",
                        aws_sdk_ec2::error::DisplayErrorContext(&e)
                    ))
                })?;
            let mut zones: Vec<(String, String)> = got
                .availability_zones()
                .iter()
                .map(|z| {
                    (
                        z.zone_name().unwrap_or_default().to_string(),
                        z.zone_id().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            zones.sort();
            Ok(json!({
                "names": zones.iter().map(|z| z.0.clone()).collect::<Vec<_>>(),
                "zone_ids": zones.iter().map(|z| z.1.clone()).collect::<Vec<_>>(),
            }))
        }
        other => Err(ProviderError::new(format!("unknown lookup kind `{other}`"))),
    }
}
