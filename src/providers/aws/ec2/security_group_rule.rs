//! `security_group_rule`: one ingress or egress rule on a security group
//! slipway may not own, such as the one EKS makes for a cluster
//! (`${eks_cluster.main.cluster_security_group_id}`), which every node of a
//! managed nodegroup without a launch template carries. slipway owns the
//! rule only (an `sgr-` object tagged with its owner in the authorize call
//! itself), never the group: other rules on it are left alone, and destroy
//! revokes this rule and nothing else.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, SecurityGroupRuleRequest, SecurityGroupRuleUpdate};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::SECURITY_GROUP_NOT_FOUND;
use super::security_group::{canonical_protocol, Rule};
use super::{describe_each, filter, tag_map, tag_spec};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, owned_by, AwsError, Clients};
use crate::providers::{Ctx, Live, ProviderError, SchemaError, StackIssue, StackView};

/// A rule ID AWS no longer knows, or a group gone with its rules.
const RULE_GONE: &[&str] = &[
    "InvalidSecurityGroupRuleId.NotFound",
    "InvalidPermission.NotFound",
    SECURITY_GROUP_NOT_FOUND,
];
const DUPLICATE: &str = "InvalidPermission.Duplicate";

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupRuleConfig {
    /// The group the rule is added to (an ID; slipway need not own it).
    security_group: String,
    /// "ingress" (default) or "egress".
    #[serde(default = "ingress", rename = "type")]
    direction: String,
    protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_port: Option<i32>,
    /// The other end: one IPv4 CIDR, or one security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_security_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn ingress() -> String {
    "ingress".into()
}

impl SecurityGroupRuleConfig {
    fn rule(&self) -> Rule {
        Rule {
            protocol: self.protocol.clone(),
            port: self.port,
            from_port: self.from_port,
            to_port: self.to_port,
            cidr: self.cidr.clone(),
            source_security_group: self.source_security_group.clone(),
            self_: None,
            description: self.description.clone(),
        }
    }

    fn egress(&self) -> bool {
        self.direction == "egress"
    }
}

/// The live rules a set of filters selects, in the shape of the config.
async fn describe_rules(aws: &Clients, filters: Vec<Filter>) -> Result<Vec<Tagged>, ProviderError> {
    let rules = all_items!(
        aws.ec2.describe_security_group_rules().set_filters(Some(filters)),
        "ec2 DescribeSecurityGroupRules"
    )?;
    Ok(rules
        .into_iter()
        .filter_map(|r| {
            let id = r.security_group_rule_id()?.to_string();
            let protocol = canonical_protocol(r.ip_protocol().unwrap_or("-1"));
            // AWS reports -1 for the ports of an all-protocol rule.
            let (from, to) = if protocol == "-1" {
                (None, None)
            } else {
                (r.from_port(), r.to_port())
            };
            let mut inputs = json!({
                "security_group": r.group_id().unwrap_or_default(),
                "type": if r.is_egress() == Some(true) { "egress" } else { "ingress" },
                "protocol": protocol,
            });
            let set = |inputs: &mut Value, k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    inputs[k] = v;
                }
            };
            set(&mut inputs, "from_port", from.map(Value::from));
            set(&mut inputs, "to_port", to.map(Value::from));
            set(&mut inputs, "cidr", r.cidr_ipv4().map(Value::from));
            set(
                &mut inputs,
                "source_security_group",
                r.referenced_group_info().and_then(|g| g.group_id()).map(Value::from),
            );
            set(
                &mut inputs,
                "description",
                r.description().filter(|d| !d.is_empty()).map(Value::from),
            );
            Some(Tagged {
                live: Live {
                    attributes: json!({ "id": id, "security_group_rule_arn": r.security_group_rule_arn().unwrap_or_default() }),
                    id,
                    inputs,
                },
                tags: tag_map(r.tags()),
            })
        })
        .collect())
}

/// `security_group_rule`
pub struct SecurityGroupRule;

#[async_trait]
impl AwsKind for SecurityGroupRule {
    type Config = SecurityGroupRuleConfig;
    const NAME: &'static str = "security_group_rule";
    const COMPUTED: &'static [&'static str] = &["id", "security_group_rule_arn"];
    const FORCE_NEW: &'static [&'static str] = &["security_group", "type"];
    const GONE: &'static [&'static str] = RULE_GONE;
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeSecurityGroupRules"],
        create: &["ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"],
        create_in: &[
            ("ec2:AuthorizeSecurityGroupIngress", "security-group"),
            ("ec2:AuthorizeSecurityGroupEgress", "security-group"),
        ],
        unowned: &[
            "ec2:ModifySecurityGroupRules",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, mut c: Self::Config, _stack: &str, _address: &str) -> Result<Self::Config, String> {
        let r = c.rule().canonical();
        c.protocol = r.protocol;
        c.port = None;
        c.from_port = r.from_port;
        c.to_port = r.to_port;
        c.description = r.description;
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        let Ok(c) = serde_json::from_value::<SecurityGroupRuleConfig>(config.clone()) else {
            return Ok(());
        };
        if c.direction != "ingress" && c.direction != "egress" {
            return Err(SchemaError::at(
                vec![PathSeg::Field("type".into())],
                format!("type must be \"ingress\" or \"egress\", not {:?}", c.direction),
            ));
        }
        if let Some((field, message)) = c.rule().problem() {
            let field = if config.get(field).is_some() { field } else { "protocol" };
            return Err(SchemaError::at(vec![PathSeg::Field(field.into())], message));
        }
        Ok(())
    }

    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        // A group slipway owns converges to its own rule list: it would
        // revoke this rule on every apply and this one would add it back.
        view.resources
            .iter()
            .filter(|(_, k, _)| *k == Self::NAME)
            .filter_map(|(address, _, c)| {
                let group = c.get("security_group")?;
                let (owner, kind, _) = view.target_of(group)?;
                (kind == "security_group").then(|| StackIssue {
                    address: address.to_string(),
                    path: vec![PathSeg::Field("security_group".into())],
                    message: format!(
                        "{owner} is managed by this stack and keeps exactly the rules it lists, so it would \
                         revoke this rule on every apply: put the rule in {owner}'s `ingress` or `egress`. \
                         security_group_rule is for groups this stack does not own (the cluster's)"
                    ),
                })
            })
            .collect()
    }

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        describe_each(ctx, sel, "security-group-rule-id", |f| describe_rules(aws, f)).await
    }

    async fn create(
        &self,
        call: &Call<'_>,
        c: &SecurityGroupRuleConfig,
        tags: &Tags,
    ) -> Result<Created, ProviderError> {
        let ec2 = &call.aws.ec2;
        let perm = c.rule().canonical().permission(&c.security_group);
        let spec = tag_spec(ResourceType::SecurityGroupRule, tags);
        let (op, r) = if c.egress() {
            let r = ec2
                .authorize_security_group_egress()
                .group_id(&c.security_group)
                .ip_permissions(perm)
                .tag_specifications(spec)
                .send()
                .await
                .map(|o| o.security_group_rules().to_vec())
                .map_err(aws_err("ec2 AuthorizeSecurityGroupEgress"));
            ("AuthorizeSecurityGroupEgress", r)
        } else {
            let r = ec2
                .authorize_security_group_ingress()
                .group_id(&c.security_group)
                .ip_permissions(perm)
                .tag_specifications(spec)
                .send()
                .await
                .map(|o| o.security_group_rules().to_vec())
                .map_err(aws_err("ec2 AuthorizeSecurityGroupIngress"));
            ("AuthorizeSecurityGroupIngress", r)
        };
        match r {
            Ok(rules) => {
                let id = rules
                    .first()
                    .and_then(|r| r.security_group_rule_id())
                    .unwrap_or_default()
                    .to_string();
                let arn = rules
                    .first()
                    .and_then(|r| r.security_group_rule_arn())
                    .unwrap_or_default()
                    .to_string();
                Ok(Created::new(
                    id.clone(),
                    json!({"id": id, "security_group_rule_arn": arn}),
                ))
            }
            Err(e) if e.is(&[DUPLICATE]) => {
                // The same rule exists: this address's (a retried call whose
                // answer was lost) or someone else's, which is never adopted.
                let same = identical(call.aws, c).await?;
                if let Some(t) = same.iter().find(|t| owned_by(call.ctx, call.address, &t.tags)) {
                    return Ok(Created::Existing(t.clone()));
                }
                let ids: Vec<&str> = same.iter().map(|t| t.live.id.as_str()).collect();
                Err(ProviderError {
                    message: format!(
                        "ec2 {op}: {DUPLICATE}: {} already has this rule ({}), and this state did not make it. \
                         slipway never takes over a rule it did not create: remove the existing rule, or take it \
                         over deliberately with `slipway import DIR {} {}`",
                        c.security_group,
                        if ids.is_empty() {
                            "no rule ID reported".to_string()
                        } else {
                            ids.join(", ")
                        },
                        call.address,
                        ids.first().copied().unwrap_or("sgr-..."),
                    ),
                    code: Some(DUPLICATE.into()),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        _old: &SecurityGroupRuleConfig,
        c: &SecurityGroupRuleConfig,
    ) -> Result<Value, ProviderError> {
        // Protocol, ports, the other end and the description change in place
        // (ModifySecurityGroupRules keeps the rule's ID and tags).
        let r = c.rule().canonical();
        let req = SecurityGroupRuleRequest::builder()
            .ip_protocol(&r.protocol)
            .from_port(r.from_port.unwrap_or(-1))
            .to_port(r.to_port.unwrap_or(-1))
            .set_cidr_ipv4(r.cidr.clone())
            .set_referenced_group_id(r.source_security_group.clone())
            .set_description(r.description.clone())
            .build();
        call.aws
            .ec2
            .modify_security_group_rules()
            .group_id(&c.security_group)
            .security_group_rules(
                SecurityGroupRuleUpdate::builder()
                    .security_group_rule_id(&prior.id)
                    .security_group_rule(req)
                    .build(),
            )
            .send()
            .await
            .map_err(aws_err("ec2 ModifySecurityGroupRules"))?;
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, attributes: &Value) -> Result<(), AwsError> {
        let group = attributes
            .get("security_group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let egress = attributes.get("type").and_then(Value::as_str) == Some("egress");
        let ec2 = &call.aws.ec2;
        if egress {
            ec2.revoke_security_group_egress()
                .group_id(group)
                .security_group_rule_ids(id)
                .send()
                .await
                .map_err(aws_err("ec2 RevokeSecurityGroupEgress"))?;
        } else {
            ec2.revoke_security_group_ingress()
                .group_id(group)
                .security_group_rule_ids(id)
                .send()
                .await
                .map_err(aws_err("ec2 RevokeSecurityGroupIngress"))?;
        }
        Ok(())
    }
}

/// The live rules of the group equal to `c` (tags aside).
async fn identical(aws: &Clients, c: &SecurityGroupRuleConfig) -> Result<Vec<Tagged>, ProviderError> {
    let want = serde_json::to_value(
        SecurityGroupRule
            .canonical(c.clone(), "", "")
            .unwrap_or_else(|_| c.clone()),
    )
    .unwrap_or_default();
    let key = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("tags");
            o.remove("description");
        }
        v
    };
    Ok(
        describe_rules(aws, vec![filter("group-id", [c.security_group.clone()])])
            .await?
            .into_iter()
            .filter(|t| key(&t.live.inputs) == key(&want))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::aws::kind::Aws;
    use crate::providers::ResourceKind;

    #[test]
    fn a_rule_is_checked_like_a_group_rule_and_only_group_and_direction_replace() {
        let k = Aws(SecurityGroupRule);
        let ok = json!({"security_group": "sg-1", "protocol": "tcp", "port": 30500, "source_security_group": "sg-2"});
        assert!(k.check(&ok).is_ok());
        let two = json!({"security_group": "sg-1", "protocol": "tcp", "port": 80, "cidr": "0.0.0.0/0", "source_security_group": "sg-2"});
        assert!(k.check(&two).unwrap_err().message.contains("exactly one source"));
        let dir = json!({"security_group": "sg-1", "type": "inbound", "protocol": "all", "cidr": "10.0.0.0/8"});
        assert!(k.check(&dir).unwrap_err().message.contains("ingress"));
        let a = k.complete("s", "security_group_rule.r", &ok);
        let mut b = a.clone();
        b["description"] = json!("NodePort");
        assert!(k.diff(&a, &b).forces_replace.is_empty());
        b["security_group"] = json!("sg-9");
        assert_eq!(k.diff(&a, &b).forces_replace, vec!["security_group".to_string()]);
    }

    #[test]
    fn a_rule_on_a_group_the_stack_owns_is_refused() {
        let sg = json!({"vpc": "vpc-1"});
        let rule =
            json!({"security_group": "${security_group.nodes.id}", "protocol": "tcp", "port": 1, "cidr": "10.0.0.0/8"});
        let cluster = json!({"security_group": "${eks_cluster.main.cluster_security_group_id}", "protocol": "tcp", "port": 1, "cidr": "10.0.0.0/8"});
        let view = StackView {
            region: None,
            resources: vec![
                ("security_group.nodes", "security_group", &sg),
                ("security_group_rule.bad", "security_group_rule", &rule),
                ("security_group_rule.good", "security_group_rule", &cluster),
            ],
            instances: None,
        };
        let issues = SecurityGroupRule.check_stack(&view);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].address, "security_group_rule.bad");
        assert!(issues[0].message.contains("security_group.nodes"));
    }
}
