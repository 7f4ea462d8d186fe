//! `security_group`: a VPC security group and its ingress and egress rules.
//! Rules are compared as a set of single-source rules (one CIDR, one source
//! group, or the group itself), so the way AWS groups them never shows as
//! a difference. Rule changes revoke and authorize only what differs from
//! what is live now. A replacement makes the new group first and moves its
//! users (load balancers, clusters, other groups' rules) before the old one
//! goes: AWS refuses to delete a group in use, and group names are unique in
//! a VPC, so a group of the default name is named in AWS with a hash of what
//! replaces it.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, UserIdGroupPair};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{DEPENDENCY_VIOLATION, SECURITY_GROUP_DUPLICATE, SECURITY_GROUP_NOT_FOUND};
use super::{describe_each, filter, tag_map, tag_spec, READ_AFTER_CREATE};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, default_name, ok_if, AwsError, Clients};
use crate::providers::common::name_of;
use crate::providers::wait::{wait_for, Check};
use crate::providers::{Ctx, Live, ProviderError, SchemaError};

/// One rule as written, and (with `port` folded into from/to and protocol
/// names canonical) as compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// "tcp", "udp", "icmp", or "all" (-1).
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_security_group: Option<String>,
    #[serde(default, rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub(crate) fn canonical_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "all" | "-1" => "-1".into(),
        "6" | "tcp" => "tcp".into(),
        "17" | "udp" => "udp".into(),
        "1" | "icmp" => "icmp".into(),
        other => other.into(),
    }
}

impl Rule {
    pub(crate) fn canonical(&self) -> Rule {
        let protocol = canonical_protocol(&self.protocol);
        let (from, to) = if protocol == "-1" {
            (None, None)
        } else {
            (self.from_port.or(self.port), self.to_port.or(self.port))
        };
        Rule {
            protocol,
            port: None,
            from_port: from,
            to_port: to,
            cidr: self.cidr.clone(),
            source_security_group: self.source_security_group.clone(),
            self_: self.self_.filter(|s| *s),
            description: self.description.clone().filter(|d| !d.is_empty()),
        }
    }

    /// What is wrong with the rule, if anything (references left unchecked).
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        let p = canonical_protocol(&self.protocol);
        if !["-1", "tcp", "udp", "icmp"].contains(&p.as_str()) && p.parse::<u8>().is_err() {
            return Some((
                "protocol",
                format!(
                    "unknown protocol {:?}: use \"tcp\", \"udp\", \"icmp\", \"all\" or a protocol number",
                    self.protocol
                ),
            ));
        }
        if self.port.is_some() && (self.from_port.is_some() || self.to_port.is_some()) {
            return Some((
                "port",
                "give either `port` or `from_port` and `to_port`, not both".into(),
            ));
        }
        let (from, to) = (self.from_port.or(self.port), self.to_port.or(self.port));
        match p.as_str() {
            "-1" if from.is_some() || to.is_some() => {
                return Some((
                    "protocol",
                    "protocol \"all\" covers every port: leave the ports out".into(),
                ))
            }
            "tcp" | "udp" => match (from, to) {
                (Some(f), Some(t)) if (0..=65535).contains(&f) && (0..=65535).contains(&t) && f <= t => {}
                (Some(_), Some(_)) => {
                    return Some(("from_port", "ports must be 0-65535 with from_port <= to_port".into()))
                }
                _ => return Some(("port", format!("{p} rules need `port`, or `from_port` and `to_port`"))),
            },
            "icmp" => {
                if from.is_none_or(|f| !(-1..=255).contains(&f)) || to.is_none_or(|t| !(-1..=255).contains(&t)) {
                    return Some((
                        "from_port",
                        "icmp rules need from_port (type) and to_port (code), -1 to 255".into(),
                    ));
                }
            }
            _ => {}
        }
        let sources = usize::from(self.cidr.is_some())
            + usize::from(self.source_security_group.is_some())
            + usize::from(self.self_ == Some(true));
        if sources != 1 {
            return Some((
                "cidr",
                "a rule needs exactly one source: `cidr`, `source_security_group`, or `self = true`".into(),
            ));
        }
        if let Some(c) = self.cidr.as_deref().filter(|c| !c.contains("${")) {
            if let Err(e) = super::network_checks::parse_cidr(c) {
                return Some(("cidr", e));
            }
        }
        None
    }

    pub(crate) fn permission(&self, own_id: &str) -> IpPermission {
        let mut b = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .set_from_port(self.from_port)
            .set_to_port(self.to_port);
        if let Some(c) = &self.cidr {
            b = b.ip_ranges(
                IpRange::builder()
                    .cidr_ip(c)
                    .set_description(self.description.clone())
                    .build(),
            );
        } else {
            let group = if self.self_ == Some(true) {
                own_id.to_string()
            } else {
                self.source_security_group.clone().unwrap_or_default()
            };
            b = b.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(group)
                    .set_description(self.description.clone())
                    .build(),
            );
        }
        b.build()
    }
}

/// Split AWS's grouped permissions into single-source canonical rules.
fn explode(perms: &[IpPermission], own_id: &str) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let base = Rule {
            protocol: canonical_protocol(p.ip_protocol().unwrap_or("-1")),
            port: None,
            from_port: p.from_port(),
            to_port: p.to_port(),
            cidr: None,
            source_security_group: None,
            self_: None,
            description: None,
        };
        for r in p.ip_ranges() {
            out.push(
                Rule {
                    cidr: r.cidr_ip().map(str::to_string),
                    description: r.description().map(str::to_string),
                    ..base.clone()
                }
                .canonical(),
            );
        }
        for g in p.user_id_group_pairs() {
            let gid = g.group_id().unwrap_or_default();
            let mut r = Rule {
                description: g.description().map(str::to_string),
                ..base.clone()
            };
            if gid == own_id {
                r.self_ = Some(true);
            } else {
                r.source_security_group = Some(gid.to_string());
            }
            out.push(r.canonical());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupConfig {
    vpc: String,
    /// The group name (unique in the VPC); default `<stack>-<name>`.
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "default_description")]
    description: String,
    #[serde(default)]
    ingress: Vec<Rule>,
    /// Left out: AWS's default, all traffic out.
    #[serde(default)]
    egress: Option<Vec<Rule>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn default_description() -> String {
    "Managed by slipway".into()
}

fn allow_all_out() -> Vec<Rule> {
    vec![Rule {
        protocol: "-1".into(),
        port: None,
        from_port: None,
        to_port: None,
        cidr: Some("0.0.0.0/0".into()),
        source_security_group: None,
        self_: None,
        description: None,
    }]
}

fn canonical_rules(rules: &[Rule]) -> Vec<Rule> {
    let mut v: Vec<Rule> = rules.iter().map(Rule::canonical).collect();
    crate::value::sort_dedup(&mut v);
    v
}

impl SecurityGroupConfig {
    fn canonical(mut self, stack: &str, address: &str) -> Self {
        self.name = Some(self.name.unwrap_or_else(|| format!("{stack}-{}", name_of(address))));
        self.ingress = canonical_rules(&self.ingress);
        self.egress = Some(canonical_rules(&self.egress.unwrap_or_else(allow_all_out)));
        self
    }
}

/// The name AWS holds for a group of the default name: the name and a hash
/// of the fields that replace it (`vpc`, `description`), so the new group
/// can exist beside the old one. An explicit `name` is used as given.
fn aws_name(prefix: &str, vpc: &str, description: &str) -> String {
    let hash = crate::providers::common::short_hash(&format!("{vpc}:{description}"));
    format!("{prefix}-{:08x}", hash as u32)
}

/// `prefix` when `live` (a live group's inputs) carries its hashed form.
fn unhash_name(live: &mut Value, prefix: &str) {
    let field = |k: &str| live.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    if field("name") == aws_name(prefix, &field("vpc"), &field("description")) {
        live["name"] = json!(prefix);
    }
}

async fn describe_groups(aws: &Clients, filters: Vec<Filter>) -> Result<Vec<Tagged>, ProviderError> {
    let groups = all_items!(
        aws.ec2.describe_security_groups().set_filters(Some(filters)),
        "ec2 DescribeSecurityGroups"
    )?;
    Ok(groups
        .into_iter()
        .filter_map(|g| {
            let id = g.group_id()?.to_string();
            let live = Live {
                inputs: json!({
                    "vpc": g.vpc_id().unwrap_or_default(),
                    "name": g.group_name().unwrap_or_default(),
                    "description": g.description().unwrap_or_default(),
                    "ingress": explode(g.ip_permissions(), &id),
                    "egress": explode(g.ip_permissions_egress(), &id),
                }),
                attributes: json!({
                    "id": id,
                    "arn": g.security_group_arn().unwrap_or_default(),
                    "group_name": g.group_name().unwrap_or_default(),
                }),
                id,
            };
            Some(Tagged {
                live,
                tags: tag_map(g.tags()),
            })
        })
        .collect())
}

async fn one(aws: &Clients, id: &str) -> Result<Option<Live>, ProviderError> {
    Ok(describe_groups(aws, vec![filter("group-id", [id])])
        .await?
        .into_iter()
        .next()
        .map(|t| t.live))
}

/// The group just made, once EC2's reads see it (they lag behind the
/// create for a moment: NotFound, or nothing).
async fn visible(aws: &Clients, id: &str) -> Result<Option<Live>, ProviderError> {
    wait_for(
        &format!("security group {id} to be visible"),
        READ_AFTER_CREATE,
        || async {
            match one(aws, id).await {
                Ok(Some(l)) => Ok(Check::Done(Some(l))),
                Ok(None) => Ok(Check::Pending("not visible yet".into())),
                Err(e) if e.is(&[SECURITY_GROUP_NOT_FOUND]) => Ok(Check::Pending("not visible yet".into())),
                Err(e) => Err(e),
            }
        },
    )
    .await
}

/// Revoke and authorize so that the live rules become `want`.
async fn converge(
    aws: &Clients,
    id: &str,
    want_in: &[Rule],
    want_out: &[Rule],
    live: &Value,
) -> Result<(), ProviderError> {
    let have_in: Vec<Rule> = serde_json::from_value(live["ingress"].clone()).unwrap_or_default();
    let have_out: Vec<Rule> = serde_json::from_value(live["egress"].clone()).unwrap_or_default();
    let diff = |want: &[Rule], have: &[Rule]| -> (Vec<IpPermission>, Vec<IpPermission>) {
        let w: BTreeSet<&Rule> = want.iter().collect();
        let h: BTreeSet<&Rule> = have.iter().collect();
        (
            w.difference(&h).map(|r| r.permission(id)).collect(),
            h.difference(&w).map(|r| r.permission(id)).collect(),
        )
    };
    let (add_in, del_in) = diff(want_in, &have_in);
    let (add_out, del_out) = diff(want_out, &have_out);
    // A rule already revoked or authorized is a retried call whose first answer was lost.
    const GONE: &[&str] = &["InvalidPermission.NotFound"];
    const THERE: &[&str] = &["InvalidPermission.Duplicate"];
    let ec2 = &aws.ec2;
    if !del_in.is_empty() {
        let r = ec2
            .revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(del_in))
            .send()
            .await;
        ok_if(r.map_err(aws_err("ec2 RevokeSecurityGroupIngress")), GONE)?;
    }
    if !del_out.is_empty() {
        let r = ec2
            .revoke_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(del_out))
            .send()
            .await;
        ok_if(r.map_err(aws_err("ec2 RevokeSecurityGroupEgress")), GONE)?;
    }
    if !add_in.is_empty() {
        let r = ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(add_in))
            .send()
            .await;
        ok_if(r.map_err(aws_err("ec2 AuthorizeSecurityGroupIngress")), THERE)?;
    }
    if !add_out.is_empty() {
        let r = ec2
            .authorize_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(add_out))
            .send()
            .await;
        ok_if(r.map_err(aws_err("ec2 AuthorizeSecurityGroupEgress")), THERE)?;
    }
    Ok(())
}

/// `security_group`
pub struct SecurityGroup;

#[async_trait]
impl AwsKind for SecurityGroup {
    type Config = SecurityGroupConfig;
    const NAME: &'static str = "security_group";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "group_name"];
    const FORCE_NEW: &'static [&'static str] = &["vpc", "name", "description"];
    /// A group in use cannot be deleted until its users move to the new one.
    const CREATE_BEFORE_DESTROY: bool = true;
    const GONE: &'static [&'static str] = &[SECURITY_GROUP_NOT_FOUND];
    const DELETE_RETRY: &'static [&'static str] = &[DEPENDENCY_VIOLATION];
    const TAGGER: Tagger = Tagger::Ec2;
    const PERMISSIONS: Permissions = Permissions {
        read: &["ec2:DescribeSecurityGroups"],
        create: &["ec2:CreateSecurityGroup"],
        create_in: &[("ec2:CreateSecurityGroup", "vpc")],
        owned: &[
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:DeleteSecurityGroup",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, c: SecurityGroupConfig, stack: &str, address: &str) -> Result<SecurityGroupConfig, String> {
        Ok(c.canonical(stack, address))
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        for dir in ["ingress", "egress"] {
            for (i, raw) in config
                .get(dir)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Ok(rule) = serde_json::from_value::<Rule>(raw.clone()) else {
                    continue;
                };
                if let Some((field, message)) = rule.problem() {
                    let mut path = vec![PathSeg::Field(dir.into()), PathSeg::Index(i)];
                    if raw.get(field).is_some() {
                        path.push(PathSeg::Field(field.into()));
                    }
                    return Err(SchemaError::at(path, message));
                }
            }
        }
        Ok(())
    }

    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let mut all = describe_each(ctx, sel, "group-id", |f| describe_groups(aws, f)).await?;
        for t in &mut all {
            let prefix = match sel {
                Select::Owner(address) => Some(default_name(ctx, address)),
                Select::Ids(reqs) => reqs
                    .iter()
                    .find(|r| r.id == t.live.id)
                    .and_then(|r| r.inputs.get("name").and_then(Value::as_str))
                    .map(str::to_string),
            };
            if let Some(p) = prefix {
                unhash_name(&mut t.live.inputs, &p);
            }
        }
        Ok(all)
    }

    async fn create(&self, call: &Call<'_>, c: &SecurityGroupConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let given = c.name.clone().unwrap_or_default();
        let name = if given == default_name(call.ctx, call.address) {
            aws_name(&given, &c.vpc, &c.description)
        } else {
            given.clone()
        };
        let out = call
            .aws
            .ec2
            .create_security_group()
            .group_name(&name)
            .description(&c.description)
            .vpc_id(&c.vpc)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, tags))
            .send()
            .await
            .map_err(aws_err("ec2 CreateSecurityGroup"))
            .map_err(|e| {
                if !e.is(&[SECURITY_GROUP_DUPLICATE]) || name != given {
                    return e;
                }
                AwsError {
                    code: e.code.clone(),
                    message: format!(
                        "{}: {} is made before the group it replaces goes, and its explicit name {name} is taken in \
                         {} (security group names are unique in a VPC). Remove `name` (slipway then names the \
                         group with a hash of what replaces it), give a new one, or set \
                         lifecycle = {{ create_before_destroy = false }}",
                        e.message, call.address, c.vpc
                    ),
                }
            })?;
        let id = out.group_id().unwrap_or_default().to_string();
        let live = visible(call.aws, &id).await?;
        let live_inputs = live.as_ref().map(|l| l.inputs.clone()).unwrap_or(json!({}));
        converge(
            call.aws,
            &id,
            &c.ingress,
            c.egress.as_deref().unwrap_or_default(),
            &live_inputs,
        )
        .await?;
        let arn = live.and_then(|l| l.attributes.get("arn").cloned()).unwrap_or(json!(""));
        Ok(Created::new(
            id.clone(),
            json!({"id": id, "arn": arn, "group_name": name}),
        ))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        _old: &SecurityGroupConfig,
        c: &SecurityGroupConfig,
    ) -> Result<Value, ProviderError> {
        // Against the rules live now, not the state, so drift is repaired.
        let now = one(call.aws, &prior.id)
            .await?
            .ok_or_else(|| ProviderError::new(format!("security group {} is gone", prior.id)))?;
        converge(
            call.aws,
            &prior.id,
            &c.ingress,
            c.egress.as_deref().unwrap_or_default(),
            &now.inputs,
        )
        .await?;
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map_err(aws_err("ec2 DeleteSecurityGroup"))?;
        Ok(())
    }
}
