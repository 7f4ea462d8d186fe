//! `eks_access_entry`: an IAM principal's access to an EKS cluster through
//! EKS access entries and access policies (cluster-wide or per namespace) -
//! instead of editing the aws-auth ConfigMap by hand. moto has no access
//! entries; the calls are tested on the SDK's mock client. EKS has no batch
//! read of access entries: two calls per entry, concurrently.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::NOT_FOUND;
use super::{arn_of, cluster_names, tag_map};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, none_if, AwsError, Clients};
use crate::providers::{join_all, Ctx, Live, ProviderError, SchemaError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
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

const TYPES: &[&str] = &["STANDARD", "EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX"];

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
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
) -> Result<Option<Tagged>, ProviderError> {
    let entry = eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await;
    let entry = none_if(entry.map_err(aws_err("eks DescribeAccessEntry")), &[NOT_FOUND])?;
    let Some(entry) = entry.and_then(|o| o.access_entry) else {
        return Ok(None);
    };
    let assoc = eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal);
    let assoc = assoc
        .send()
        .await
        .map_err(aws_err("eks ListAssociatedAccessPolicies"))?;
    let mut policies: Vec<PolicyAssociation> = assoc
        .associated_access_policies()
        .iter()
        .map(|p| {
            let mut namespaces = p.access_scope().map(|s| s.namespaces().to_vec()).unwrap_or_default();
            namespaces.sort();
            PolicyAssociation {
                policy: p.policy_arn().unwrap_or_default().to_string(),
                namespaces,
            }
        })
        .collect();
    policies.sort();
    let mut groups = entry.kubernetes_groups().to_vec();
    groups.sort();
    let id = format!("{cluster}|{principal}");
    let live = Live {
        inputs: json!({
            "cluster": cluster,
            "principal": principal,
            "type": entry.r#type().unwrap_or("STANDARD"),
            "kubernetes_groups": groups,
            "access_policies": policies,
        }),
        attributes: json!({ "id": id, "arn": entry.access_entry_arn().unwrap_or_default(), "username": entry.username().unwrap_or_default() }),
        id,
    };
    Ok(Some(Tagged {
        live,
        tags: tag_map(entry.tags()),
    }))
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
impl AwsKind for EksAccessEntry {
    type Config = EntryConfig;
    const NAME: &'static str = "eks_access_entry";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "username"];
    const FORCE_NEW: &'static [&'static str] = &["cluster", "principal", "type"];
    const GONE: &'static [&'static str] = &[NOT_FOUND];
    const TAGGER: Tagger = Tagger::Eks;
    const PERMISSIONS: Permissions = Permissions {
        read: &[
            "eks:DescribeAccessEntry",
            "eks:ListAccessEntries",
            "eks:ListAssociatedAccessPolicies",
        ],
        create: &["eks:CreateAccessEntry"],
        owned: &[
            "eks:UpdateAccessEntry",
            "eks:AssociateAccessPolicy",
            "eks:DisassociateAccessPolicy",
            "eks:DeleteAccessEntry",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, mut c: EntryConfig, _stack: &str, _address: &str) -> Result<EntryConfig, String> {
        crate::value::sort_dedup(&mut c.kubernetes_groups);
        for p in &mut c.access_policies {
            crate::value::sort_dedup(&mut p.namespaces);
        }
        crate::value::sort_dedup(&mut c.access_policies);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        match config.get("type").and_then(Value::as_str) {
            Some(t) if !TYPES.contains(&t) => Err(SchemaError::at(
                vec![PathSeg::Field("type".into())],
                format!("unknown access entry type {t:?}; use STANDARD, EC2_LINUX, EC2_WINDOWS or FARGATE_LINUX"),
            )),
            _ => Ok(()),
        }
    }

    fn tag_target(&self, live: &Live) -> String {
        arn_of(live)
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let wanted: Vec<(String, String)> = match sel {
            Select::Ids(_) => sel
                .ids()
                .iter()
                .map(|id| split(id).map(|(c, p)| (c.to_string(), p.to_string())))
                .collect::<Result<_, _>>()?,
            Select::Owner(_) => {
                let mut all = Vec::new();
                for c in cluster_names(aws).await? {
                    let principals =
                        all_items!(aws.eks.list_access_entries().cluster_name(&c), "eks ListAccessEntries")?;
                    all.extend(principals.into_iter().map(|p| (c.clone(), p)));
                }
                all
            }
        };
        let got = join_all(wanted.iter().map(|(c, p)| read_entry(&aws.eks, c, p))).await;
        let mut out = Vec::new();
        for g in got {
            out.extend(g?);
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, c: &EntryConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let eks = &call.aws.eks;
        let groups = (!c.kubernetes_groups.is_empty()).then(|| c.kubernetes_groups.clone());
        let out = eks
            .create_access_entry()
            .cluster_name(&c.cluster)
            .principal_arn(&c.principal)
            .r#type(&c.r#type)
            .set_kubernetes_groups(groups)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(aws_err("eks CreateAccessEntry"))?;
        converge(eks, &c.cluster, &c.principal, &[], &c.access_policies).await?;
        let entry = out.access_entry();
        let id = format!("{}|{}", c.cluster, c.principal);
        Ok(Created::new(
            id.clone(),
            json!({
                "id": id,
                "arn": entry.and_then(|e| e.access_entry_arn()).unwrap_or_default(),
                "username": entry.and_then(|e| e.username()).unwrap_or_default(),
            }),
        ))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        _prior: &Live,
        old: &EntryConfig,
        c: &EntryConfig,
    ) -> Result<Value, ProviderError> {
        let eks = &call.aws.eks;
        if c.kubernetes_groups != old.kubernetes_groups {
            eks.update_access_entry()
                .cluster_name(&c.cluster)
                .principal_arn(&c.principal)
                .set_kubernetes_groups(Some(c.kubernetes_groups.clone()))
                .send()
                .await
                .map_err(aws_err("eks UpdateAccessEntry"))?;
        }
        converge(eks, &c.cluster, &c.principal, &old.access_policies, &c.access_policies).await?;
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        let (cluster, principal) = split(id)?;
        let r = call
            .aws
            .eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await;
        r.map_err(aws_err("eks DeleteAccessEntry"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! On the AWS SDK's mock client (moto has no access entries), through
    //! the generic lifecycle as the engine runs it.

    use aws_sdk_eks::operation::associate_access_policy::AssociateAccessPolicyOutput;
    use aws_sdk_eks::operation::create_access_entry::CreateAccessEntryOutput;
    use aws_sdk_eks::operation::describe_access_entry::DescribeAccessEntryOutput;
    use aws_sdk_eks::operation::list_associated_access_policies::ListAssociatedAccessPoliciesOutput;
    use aws_sdk_eks::types::{AccessEntry, AssociatedAccessPolicy};
    use aws_sdk_eks::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;
    use crate::providers::aws::kind::Aws;
    use crate::providers::aws::mock_ctx;
    use crate::providers::{ReadRequest, ResourceKind};

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
        let ctx = mock_ctx(
            "blog",
            mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&create, &associate]),
        );
        let config = json!({
            "cluster": "blog",
            "principal": ROLE,
            "access_policies": [{ "policy": EDIT, "namespaces": ["app-b", "app-a"] }],
        });
        let kind = Aws(EksAccessEntry);
        let config = kind.complete("blog", "eks_access_entry.ci", &config);
        let live = kind.create(&ctx, "eks_access_entry.ci", &config).await.unwrap();
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
            let scope = AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .namespaces("app-a")
                .build();
            let p = AssociatedAccessPolicy::builder()
                .policy_arn(EDIT)
                .access_scope(scope)
                .build();
            ListAssociatedAccessPoliciesOutput::builder()
                .associated_access_policies(p)
                .build()
        });
        let ctx = mock_ctx(
            "blog",
            mock_client!(aws_sdk_eks, RuleMode::MatchAny, [&describe, &list]),
        );
        let id = format!("blog|{ROLE}");
        let (inputs, attrs) = (json!({}), json!({}));
        let req = ReadRequest {
            address: "eks_access_entry.ci",
            id: &id,
            inputs: &inputs,
            attributes: &attrs,
        };
        let kind = Aws(EksAccessEntry);
        let got = kind.read_many(&ctx, &[req]).await.unwrap();
        let live = got[0].clone().expect("found");
        let want = kind.complete(
            "blog",
            "eks_access_entry.ci",
            &json!({"cluster": "blog", "principal": ROLE, "access_policies": [{"policy": EDIT, "namespaces": ["app-a"]}], "tags": {"team": "web"}}),
        );
        assert_eq!(live.inputs, want, "a fresh entry shows no difference from its config");
    }
}
