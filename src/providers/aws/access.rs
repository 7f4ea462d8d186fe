//! `eks_access_entry`: an IAM principal's access to an EKS cluster through
//! EKS access entries and access policies (cluster-wide or per namespace) -
//! instead of editing the aws-auth ConfigMap by hand. moto has no access
//! entries; the calls are tested on the SDK's mock client.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{all_tags, aws_err, owned_by, user_view};
use crate::providers::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct PolicyAssociation {
    /// e.g. arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy
    pub policy: String,
    /// Empty: the whole cluster.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

fn standard() -> String {
    "STANDARD".into()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryConfig {
    /// The cluster's name.
    cluster: String,
    /// The IAM role (or user) ARN that gets access.
    principal: String,
    #[serde(default = "standard")]
    r#type: String,
    #[serde(default)]
    kubernetes_groups: Vec<String>,
    #[serde(default)]
    access_policies: Vec<PolicyAssociation>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl EntryConfig {
    fn canonical(mut self) -> Self {
        crate::value::sort_dedup(&mut self.kubernetes_groups);
        for p in &mut self.access_policies {
            crate::value::sort_dedup(&mut p.namespaces);
        }
        crate::value::sort_dedup(&mut self.access_policies);
        self
    }
}

fn parse(config: &Value) -> Result<EntryConfig, ProviderError> {
    serde_json::from_value::<EntryConfig>(config.clone())
        .map(EntryConfig::canonical)
        .map_err(|e| ProviderError::new(e.to_string()))
}

fn scope(p: &PolicyAssociation) -> AccessScope {
    if p.namespaces.is_empty() {
        AccessScope::builder().r#type(AccessScopeType::Cluster).build()
    } else {
        AccessScope::builder()
            .r#type(AccessScopeType::Namespace)
            .set_namespaces(Some(p.namespaces.clone()))
            .build()
    }
}

fn split(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('|')
        .ok_or_else(|| ProviderError::new(format!("access entry ID {id:?} is not CLUSTER|PRINCIPAL_ARN")))
}

/// `eks_access_entry`
pub struct EksAccessEntry;

/// Read one entry and its associated policies; `None` when gone.
pub async fn read_entry(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<Option<(Live, BTreeMap<String, String>)>, ProviderError> {
    let entry = match eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await
        .map_err(aws_err("eks DescribeAccessEntry"))
    {
        Ok(o) => o.access_entry().cloned(),
        Err(e) if e.is(&["ResourceNotFoundException"]) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(entry) = entry else { return Ok(None) };
    let assoc = eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await
        .map_err(aws_err("eks ListAssociatedAccessPolicies"))?;
    let mut policies: Vec<PolicyAssociation> = assoc
        .associated_access_policies()
        .iter()
        .map(|p| PolicyAssociation {
            policy: p.policy_arn().unwrap_or_default().to_string(),
            namespaces: {
                let mut n = p.access_scope().map(|s| s.namespaces().to_vec()).unwrap_or_default();
                n.sort();
                n
            },
        })
        .collect();
    policies.sort();
    let mut groups = entry.kubernetes_groups().to_vec();
    groups.sort();
    let tags: BTreeMap<String, String> = entry
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let id = format!("{cluster}|{principal}");
    Ok(Some((
        Live {
            inputs: json!({
                "cluster": cluster,
                "principal": principal,
                "type": entry.r#type().unwrap_or("STANDARD"),
                "kubernetes_groups": groups,
                "access_policies": policies,
                "tags": tags.clone(),
            }),
            attributes: json!({ "id": id, "arn": entry.access_entry_arn().unwrap_or_default(), "username": entry.username().unwrap_or_default() }),
            id,
        },
        tags,
    )))
}

/// Associate and disassociate so that the entry has exactly `want`.
async fn converge(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    have: &[PolicyAssociation],
    want: &[PolicyAssociation],
) -> Result<(), ProviderError> {
    for p in want.iter().filter(|p| !have.contains(p)) {
        eks.associate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(&p.policy)
            .access_scope(scope(p))
            .send()
            .await
            .map_err(aws_err("eks AssociateAccessPolicy"))?;
    }
    for p in have.iter().filter(|p| !want.iter().any(|w| w.policy == p.policy)) {
        eks.disassociate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(&p.policy)
            .send()
            .await
            .map_err(aws_err("eks DisassociateAccessPolicy"))?;
    }
    Ok(())
}

#[async_trait]
impl ResourceKind for EksAccessEntry {
    fn name(&self) -> &'static str {
        "eks_access_entry"
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<EntryConfig>(config)?;
        if let Some(t) = config
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| !["STANDARD", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX"].contains(t))
        {
            return Err(SchemaError {
                path: vec![crate::stack::node::PathSeg::Field("type".into())],
                message: format!(
                    "unknown access entry type {t:?}; use STANDARD, EC2_LINUX, EC2_WINDOWS or FARGATE_LINUX"
                ),
                suggestion: None,
            });
        }
        Ok(())
    }

    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        parse(config)
            .ok()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| config.clone())
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn", "username"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["cluster", "principal", "type"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // EKS has no batch read of access entries: two calls per entry, concurrently.
        let aws = ctx.aws().await?;
        let ids: Vec<(&str, &str)> = reqs.iter().map(|r| split(r.id)).collect::<Result<_, _>>()?;
        let got = crate::providers::join_all(ids.iter().map(|(c, p)| read_entry(&aws.eks, c, p))).await;
        let mut out = Vec::new();
        for (r, g) in reqs.iter().zip(got) {
            out.push(g?.map(|(l, tags)| user_view(ctx, r.address, l, tags)));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(config)?;
        let out = aws
            .eks
            .create_access_entry()
            .cluster_name(&c.cluster)
            .principal_arn(&c.principal)
            .r#type(&c.r#type)
            .set_kubernetes_groups((!c.kubernetes_groups.is_empty()).then(|| c.kubernetes_groups.clone()))
            .set_tags(Some(
                all_tags(ctx, address, &c.tags).into_iter().collect::<HashMap<_, _>>(),
            ))
            .send()
            .await
            .map_err(aws_err("eks CreateAccessEntry"))?;
        converge(&aws.eks, &c.cluster, &c.principal, &[], &c.access_policies).await?;
        let entry = out.access_entry();
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        let id = format!("{}|{}", c.cluster, c.principal);
        let extra = json!({
            "id": id,
            "arn": entry.and_then(|e| e.access_entry_arn()).unwrap_or_default(),
            "username": entry.and_then(|e| e.username()).unwrap_or_default(),
        });
        Ok(Live {
            attributes: super::with_attrs(&inputs, extra),
            id,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(config)?;
        let old = parse(&prior.inputs)?;
        if c.kubernetes_groups != old.kubernetes_groups {
            aws.eks
                .update_access_entry()
                .cluster_name(&c.cluster)
                .principal_arn(&c.principal)
                .set_kubernetes_groups(Some(c.kubernetes_groups.clone()))
                .send()
                .await
                .map_err(aws_err("eks UpdateAccessEntry"))?;
        }
        converge(
            &aws.eks,
            &c.cluster,
            &c.principal,
            &old.access_policies,
            &c.access_policies,
        )
        .await?;
        let (set, remove) = super::tag_changes(ctx, address, &old.tags, &c.tags);
        let arn = prior
            .attributes
            .get("arn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !set.is_empty() {
            aws.eks
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .map_err(aws_err("eks TagResource"))?;
        }
        if !remove.is_empty() {
            aws.eks
                .untag_resource()
                .resource_arn(&arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(aws_err("eks UntagResource"))?;
        }
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            id: prior.id.clone(),
            attributes: super::with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        let (cluster, principal) = split(id)?;
        match aws
            .eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
            .map_err(aws_err("eks DeleteAccessEntry"))
        {
            Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(()),
            other => Ok(other.map(|_| ())?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let clusters: Vec<String> = aws
            .eks
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("eks ListClusters"))?;
        let mut out = Vec::new();
        for c in clusters {
            let principals: Vec<String> = aws
                .eks
                .list_access_entries()
                .cluster_name(&c)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(aws_err("eks ListAccessEntries"))?;
            for p in principals {
                if let Some((l, tags)) = read_entry(&aws.eks, &c, &p).await? {
                    if owned_by(ctx, address, &tags) {
                        out.push(user_view(ctx, address, l, tags));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! On the AWS SDK's mock client (moto has no access entries).

    use super::*;
    use aws_sdk_eks::operation::associate_access_policy::AssociateAccessPolicyOutput;
    use aws_sdk_eks::operation::create_access_entry::CreateAccessEntryOutput;
    use aws_sdk_eks::operation::describe_access_entry::DescribeAccessEntryOutput;
    use aws_sdk_eks::operation::list_associated_access_policies::ListAssociatedAccessPoliciesOutput;
    use aws_sdk_eks::types::{AccessEntry, AssociatedAccessPolicy};
    use aws_sdk_eks::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::sync::Arc;

    fn ctx_with(eks: aws_sdk_eks::Client) -> Ctx {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let clients = super::super::Clients {
            ec2: aws_sdk_ec2::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            eks,
            acm: aws_sdk_acm::Client::new(&conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            cfn: aws_sdk_cloudformation::Client::new(&conf),
            region: "us-east-1".into(),
            config: conf,
        };
        Ctx::with_clients("blog", Arc::new(clients))
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/deployer";
    const EDIT: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";

    #[tokio::test]
    async fn create_makes_a_tagged_entry_and_associates_a_namespaced_policy_with_sdk_mock_client() {
        let create = mock!(Client::create_access_entry)
            .match_requests(|r| {
                r.cluster_name() == Some("blog")
                    && r.principal_arn() == Some(ROLE)
                    && r.tags().and_then(|t| t.get("slipway:address")).map(String::as_str)
                        == Some("eks_access_entry.ci")
            })
            .then_output(|| {
                CreateAccessEntryOutput::builder()
                    .access_entry(AccessEntry::builder().access_entry_arn("arn:entry").build())
                    .build()
            });
        let associate = mock!(Client::associate_access_policy)
            .match_requests(|r| {
                r.policy_arn() == Some(EDIT)
                    && r.access_scope().and_then(|s| s.r#type()) == Some(&AccessScopeType::Namespace)
                    && r.access_scope().map(|s| s.namespaces().to_vec())
                        == Some(vec!["app-a".to_string(), "app-b".to_string()])
            })
            .then_output(|| AssociateAccessPolicyOutput::builder().build());
        let ctx = ctx_with(mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&create, &associate]));
        let config = json!({
            "cluster": "blog",
            "principal": ROLE,
            "access_policies": [{ "policy": EDIT, "namespaces": ["app-b", "app-a"] }],
        });
        let config = EksAccessEntry.complete("blog", "eks_access_entry.ci", &config);
        let live = EksAccessEntry
            .create(&ctx, "eks_access_entry.ci", &config)
            .await
            .unwrap();
        assert_eq!(live.id, format!("blog|{ROLE}"));
        assert_eq!(live.attributes["arn"], "arn:entry");
        assert_eq!(create.num_calls(), 1);
        assert_eq!(associate.num_calls(), 1);
    }

    #[tokio::test]
    async fn refresh_reads_entry_and_policies_into_the_config_shape_with_sdk_mock_client() {
        let describe = mock!(Client::describe_access_entry).then_output(|| {
            DescribeAccessEntryOutput::builder()
                .access_entry(
                    AccessEntry::builder()
                        .access_entry_arn("arn:entry")
                        .r#type("STANDARD")
                        .tags("slipway:stack", "blog")
                        .tags("slipway:address", "eks_access_entry.ci")
                        .tags("team", "web")
                        .build(),
                )
                .build()
        });
        let list = mock!(Client::list_associated_access_policies).then_output(|| {
            ListAssociatedAccessPoliciesOutput::builder()
                .associated_access_policies(
                    AssociatedAccessPolicy::builder()
                        .policy_arn(EDIT)
                        .access_scope(
                            AccessScope::builder()
                                .r#type(AccessScopeType::Namespace)
                                .namespaces("app-a")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let ctx = ctx_with(mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&describe, &list]));
        let id = format!("blog|{ROLE}");
        let (inputs, attrs) = (json!({}), json!({}));
        let req = ReadRequest {
            address: "eks_access_entry.ci",
            id: &id,
            inputs: &inputs,
            attributes: &attrs,
        };
        let got = EksAccessEntry.read_many(&ctx, &[req]).await.unwrap();
        let live = got[0].clone().expect("found");
        let want = EksAccessEntry.complete(
            "blog",
            "eks_access_entry.ci",
            &json!({"cluster": "blog", "principal": ROLE, "access_policies": [{"policy": EDIT, "namespaces": ["app-a"]}], "tags": {"team": "web"}}),
        );
        assert_eq!(live.inputs, want, "a fresh entry shows no difference from its config");
    }
}
