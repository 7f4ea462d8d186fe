//! Application load balancing through aws-sdk-elasticloadbalancingv2, one
//! file per kind: `alb`, `alb_target_group`, `alb_listener`; what they share
//! (tags by ARN, names within ELB's limits, the ALB listing) sits here.
//! Creates look for an existing object by name (ALB, target group) or port
//! (listener) and its ownership tags first: CreateLoadBalancer under moto
//! makes a second ALB for a name in use, and a crash between the call and the
//! state write must never leave two.

pub mod alb;
pub mod listener;
pub mod target_group;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_elasticloadbalancingv2::types::Tag;

use super::aws_err;
use crate::providers::common::name_of;
use crate::providers::ProviderError;

pub type Elb = aws_sdk_elasticloadbalancingv2::Client;

/// ELBv2 error codes slipway decides on.
pub mod errors {
    pub const LOAD_BALANCER_NOT_FOUND: &str = "LoadBalancerNotFound";
    pub const TARGET_GROUP_NOT_FOUND: &str = "TargetGroupNotFound";
    pub const LISTENER_NOT_FOUND: &str = "ListenerNotFound";
    pub const RESOURCE_IN_USE: &str = "ResourceInUse";
}

/// ELBv2 tags of a map.
pub fn elb_tags(t: &BTreeMap<String, String>) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Tags of many ARNs (DescribeTags takes 20 at a time).
pub async fn tags_of(elb: &Elb, arns: &[String]) -> Result<HashMap<String, BTreeMap<String, String>>, ProviderError> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(20) {
        let r = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws_err("elbv2 DescribeTags"))?;
        for d in r.tag_descriptions() {
            let t = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), t);
        }
    }
    Ok(out)
}

/// `<stack>-<name>` within ELB's 32 characters of letters, digits and hyphens.
/// ELB's rule for load balancer and target group names, checked before any
/// call: 1 to 32 letters, digits and hyphens, no hyphen at either end, and
/// (load balancers) not starting with `internal-`.
pub fn check_name(config: &serde_json::Value) -> Result<(), crate::providers::SchemaError> {
    let Some(n) = config
        .get("name")
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.contains("${"))
    else {
        return Ok(());
    };
    let ok = !n.is_empty()
        && n.len() <= 32
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.starts_with("internal-");
    if ok {
        return Ok(());
    }
    Err(crate::providers::SchemaError::at(
        vec![crate::path::PathSeg::Field("name".into())],
        format!("{n:?}: ELB names are 1 to 32 letters, digits and hyphens, with no hyphen at either end and no `internal-` prefix"),
    ))
}

pub fn default_name(stack: &str, address: &str) -> String {
    let mut s: String = format!("{stack}-{}", name_of(address))
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(32);
    s.trim_end_matches('-').to_string()
}
