//! `iam_role`: an IAM role with its trust policy, attached managed
//! policies, inline policies and tags. Refresh reads every role of the
//! state with one paginated GetAccountAuthorizationDetails (Filter=Role)
//! instead of three or more calls per role; policy documents compare by
//! meaning (see `policy`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_iam::types::{EntityType, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{all_tags, aws_err, owned_by, policy, AwsError};
use crate::providers::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};
use crate::stack::node::PathSeg;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleConfig {
    /// Default `<stack>-<name>`.
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "root_path")]
    path: String,
    /// Who may assume the role: a table or a JSON string.
    assume_role_policy: Value,
    #[serde(default)]
    managed_policy_arns: Vec<String>,
    /// Policy name -> document (table or JSON string).
    #[serde(default)]
    inline_policies: BTreeMap<String, Value>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn root_path() -> String {
    "/".into()
}

impl RoleConfig {
    fn canonical(mut self, stack: &str, address: &str) -> Result<Self, String> {
        let name = address.split_once('.').map(|(_, n)| n).unwrap_or(address);
        self.name = Some(self.name.unwrap_or_else(|| format!("{stack}-{name}")));
        self.assume_role_policy = policy::canonical(&policy::parse(&self.assume_role_policy)?);
        for doc in self.inline_policies.values_mut() {
            *doc = policy::canonical(&policy::parse(doc)?);
        }
        crate::value::sort_dedup(&mut self.managed_policy_arns);
        Ok(self)
    }
}

/// `iam_role`
pub struct IamRole;

/// Every role in the account, with its policies and tags, by role name.
async fn all_roles(ctx: &Ctx) -> Result<HashMap<String, Live>, ProviderError> {
    let aws = ctx.aws().await?;
    let pages: Vec<_> = aws
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(aws_err("iam GetAccountAuthorizationDetails"))?;
    let mut out = HashMap::new();
    for page in pages {
        for r in page.role_detail_list() {
            let Some(name) = r.role_name() else { continue };
            let trust = r
                .assume_role_policy_document()
                .map(policy::decode)
                .transpose()
                .map_err(ProviderError::new)?;
            let mut inline = BTreeMap::new();
            for p in r.role_policy_list() {
                if let (Some(n), Some(d)) = (p.policy_name(), p.policy_document()) {
                    inline.insert(
                        n.to_string(),
                        policy::canonical(&policy::decode(d).map_err(ProviderError::new)?),
                    );
                }
            }
            let mut managed: Vec<String> = r
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect();
            managed.sort();
            let tags: BTreeMap<String, String> = r
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            out.insert(
                name.to_string(),
                Live {
                    id: name.to_string(),
                    inputs: json!({
                        "name": name,
                        "path": r.path().unwrap_or("/"),
                        "assume_role_policy": trust.map(|t| policy::canonical(&t)).unwrap_or(Value::Null),
                        "managed_policy_arns": managed,
                        "inline_policies": inline,
                        "tags": tags,
                    }),
                    attributes: json!({
                        "id": name,
                        "arn": r.arn().unwrap_or_default(),
                        "unique_id": r.role_id().unwrap_or_default(),
                    }),
                },
            );
        }
    }
    Ok(out)
}

fn iam_tags(t: &BTreeMap<String, String>) -> Vec<Tag> {
    t.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn parse(stack: &str, address: &str, config: &Value) -> Result<RoleConfig, ProviderError> {
    serde_json::from_value::<RoleConfig>(config.clone())
        .map_err(|e| e.to_string())
        .and_then(|c| c.canonical(stack, address))
        .map_err(ProviderError::new)
}

fn ignore_missing(r: Result<(), AwsError>) -> Result<(), AwsError> {
    match r {
        Err(e) if e.is(&["NoSuchEntity"]) => Ok(()),
        other => other,
    }
}

/// Attach, detach, put and delete policies so that the role matches `c`.
async fn converge_policies(ctx: &Ctx, name: &str, c: &RoleConfig, old: &RoleConfig) -> Result<(), ProviderError> {
    let aws = ctx.aws().await?;
    let want: BTreeSet<&String> = c.managed_policy_arns.iter().collect();
    let have: BTreeSet<&String> = old.managed_policy_arns.iter().collect();
    for arn in want.difference(&have) {
        aws.iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(*arn)
            .send()
            .await
            .map_err(aws_err("iam AttachRolePolicy"))?;
    }
    for arn in have.difference(&want) {
        ignore_missing(
            aws.iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(*arn)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam DetachRolePolicy")),
        )?;
    }
    for (pname, doc) in &c.inline_policies {
        if old.inline_policies.get(pname) != Some(doc) {
            aws.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(pname)
                .policy_document(doc.to_string())
                .send()
                .await
                .map_err(aws_err("iam PutRolePolicy"))?;
        }
    }
    for pname in old
        .inline_policies
        .keys()
        .filter(|k| !c.inline_policies.contains_key(*k))
    {
        ignore_missing(
            aws.iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(pname)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam DeleteRolePolicy")),
        )?;
    }
    Ok(())
}

#[async_trait]
impl ResourceKind for IamRole {
    fn name(&self) -> &'static str {
        "iam_role"
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<RoleConfig>(config)?;
        let bad = |path: Vec<PathSeg>, message: String| {
            Err(SchemaError {
                path,
                message,
                suggestion: None,
            })
        };
        if let Some(doc) = config.get("assume_role_policy") {
            if !doc.to_string().contains("${") {
                if let Err(e) = policy::parse(doc) {
                    return bad(vec![PathSeg::Field("assume_role_policy".into())], e);
                }
            }
        }
        for (k, doc) in config
            .get("inline_policies")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !doc.to_string().contains("${") {
                if let Err(e) = policy::parse(doc) {
                    return bad(
                        vec![PathSeg::Field("inline_policies".into()), PathSeg::Field(k.clone())],
                        e,
                    );
                }
            }
        }
        Ok(())
    }

    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        parse(stack, address, config)
            .ok()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| config.clone())
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn", "unique_id"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["name", "path"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        let mut roles = all_roles(ctx).await?;
        Ok(reqs
            .iter()
            .map(|r| roles.remove(r.id).map(|l| super::user_view_of(ctx, r.address, l)))
            .collect())
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(&ctx.stack, address, config)?;
        let name = c.name.clone().unwrap_or_default();
        let out = aws
            .iam
            .create_role()
            .role_name(&name)
            .path(&c.path)
            .assume_role_policy_document(c.assume_role_policy.to_string())
            .set_tags(Some(iam_tags(&all_tags(ctx, address, &c.tags))))
            .send()
            .await
            .map_err(aws_err("iam CreateRole"))?;
        let role = out
            .role()
            .ok_or_else(|| ProviderError::new("CreateRole returned no role"))?;
        let empty = RoleConfig {
            name: None,
            path: c.path.clone(),
            assume_role_policy: Value::Null,
            managed_policy_arns: vec![],
            inline_policies: BTreeMap::new(),
            tags: BTreeMap::new(),
        };
        converge_policies(ctx, &name, &c, &empty).await?;
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        let extra = json!({"id": name, "arn": role.arn(), "unique_id": role.role_id()});
        Ok(Live {
            id: name,
            attributes: super::with_attrs(&inputs, extra),
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse(&ctx.stack, address, config)?;
        // Compare with what is live now, not with the state, so drift is repaired.
        let now = all_roles(ctx)
            .await?
            .remove(&prior.id)
            .ok_or_else(|| ProviderError::new(format!("role {} is gone", prior.id)))?;
        let now = super::user_view_of(ctx, address, now);
        let old: RoleConfig =
            serde_json::from_value(now.inputs.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        if old.assume_role_policy != c.assume_role_policy {
            aws.iam
                .update_assume_role_policy()
                .role_name(&prior.id)
                .policy_document(c.assume_role_policy.to_string())
                .send()
                .await
                .map_err(aws_err("iam UpdateAssumeRolePolicy"))?;
        }
        converge_policies(ctx, &prior.id, &c, &old).await?;
        let (set, remove) = super::tag_changes(ctx, address, &old.tags, &c.tags);
        if !set.is_empty() {
            aws.iam
                .tag_role()
                .role_name(&prior.id)
                .set_tags(Some(iam_tags(&set)))
                .send()
                .await
                .map_err(aws_err("iam TagRole"))?;
        }
        if !remove.is_empty() {
            aws.iam
                .untag_role()
                .role_name(&prior.id)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(aws_err("iam UntagRole"))?;
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
        // A role must be emptied first; list what is attached now, not what the state says.
        let attached = match aws
            .iam
            .list_attached_role_policies()
            .role_name(id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let e = aws_err("iam ListAttachedRolePolicies")(e);
                return if e.is(&["NoSuchEntity"]) { Ok(()) } else { Err(e.into()) };
            }
        };
        for p in attached {
            if let Some(arn) = p.policy_arn() {
                ignore_missing(
                    aws.iam
                        .detach_role_policy()
                        .role_name(id)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(aws_err("iam DetachRolePolicy")),
                )?;
            }
        }
        let inline: Vec<String> = aws
            .iam
            .list_role_policies()
            .role_name(id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("iam ListRolePolicies"))?;
        for p in inline {
            ignore_missing(
                aws.iam
                    .delete_role_policy()
                    .role_name(id)
                    .policy_name(p)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err("iam DeleteRolePolicy")),
            )?;
        }
        let profiles = aws
            .iam
            .list_instance_profiles_for_role()
            .role_name(id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("iam ListInstanceProfilesForRole"))?;
        for p in profiles {
            ignore_missing(
                aws.iam
                    .remove_role_from_instance_profile()
                    .instance_profile_name(p.instance_profile_name())
                    .role_name(id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(aws_err("iam RemoveRoleFromInstanceProfile")),
            )?;
        }
        let r = super::retry_on(&["DeleteConflict"], super::SETTLE_TIMEOUT, || async {
            aws.iam
                .delete_role()
                .role_name(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam DeleteRole"))
        })
        .await;
        Ok(ignore_missing(r)?)
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        Ok(all_roles(ctx)
            .await?
            .into_values()
            .filter(|l| {
                let tags: BTreeMap<String, String> =
                    serde_json::from_value(l.inputs["tags"].clone()).unwrap_or_default();
                owned_by(ctx, address, &tags)
            })
            .map(|l| super::user_view_of(ctx, address, l))
            .collect())
    }
}

// ------------------------------------------------------------ iam_oidc_provider

/// The thumbprint of the root CA behind every EKS OIDC issuer. IAM no longer
/// checks it for EKS issuers (it trusts its own CA store) but still requires one.
pub const EKS_OIDC_THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

fn sts_audience() -> Vec<String> {
    vec!["sts.amazonaws.com".into()]
}

fn eks_thumbprint() -> Vec<String> {
    vec![EKS_OIDC_THUMBPRINT.into()]
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcConfig {
    /// The issuer URL, e.g. the cluster's `oidc_issuer`.
    url: String,
    #[serde(default = "sts_audience")]
    client_ids: Vec<String>,
    #[serde(default = "eks_thumbprint")]
    thumbprints: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl OidcConfig {
    fn canonical(mut self) -> Self {
        // IAM stores the URL without its scheme.
        if let Some(rest) = self.url.strip_prefix("https://") {
            self.url = rest.to_string();
        }
        crate::value::sort_dedup(&mut self.client_ids);
        for t in &mut self.thumbprints {
            *t = t.to_ascii_lowercase();
        }
        crate::value::sort_dedup(&mut self.thumbprints);
        self
    }
}

fn parse_oidc(config: &Value) -> Result<OidcConfig, ProviderError> {
    serde_json::from_value::<OidcConfig>(config.clone())
        .map(OidcConfig::canonical)
        .map_err(|e| ProviderError::new(e.to_string()))
}

/// `iam_oidc_provider`: the IAM OIDC provider of a cluster's issuer (IRSA).
pub struct OidcProvider;

async fn get_oidc(ctx: &Ctx, arn: &str) -> Result<Option<(Live, BTreeMap<String, String>)>, ProviderError> {
    let aws = ctx.aws().await?;
    let out = match aws
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .map_err(aws_err("iam GetOpenIDConnectProvider"))
    {
        Ok(o) => o,
        Err(e) if e.is(&["NoSuchEntity"]) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut clients = out.client_id_list().to_vec();
    clients.sort();
    let mut thumbs: Vec<String> = out.thumbprint_list().iter().map(|t| t.to_ascii_lowercase()).collect();
    thumbs.sort();
    let tags: BTreeMap<String, String> = out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let url = out.url().unwrap_or_default();
    let url = url.strip_prefix("https://").unwrap_or(url);
    Ok(Some((
        Live {
            id: arn.to_string(),
            inputs: json!({ "url": url, "client_ids": clients, "thumbprints": thumbs, "tags": tags.clone() }),
            attributes: json!({ "id": arn, "arn": arn }),
        },
        tags,
    )))
}

#[async_trait]
impl ResourceKind for OidcProvider {
    fn name(&self) -> &'static str {
        "iam_oidc_provider"
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<OidcConfig>(config)
    }
    fn complete(&self, _s: &str, _a: &str, config: &Value) -> Value {
        parse_oidc(config)
            .ok()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| config.clone())
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn"]
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        &["url"]
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // IAM has no batch read of OIDC providers: one Get per provider, concurrently.
        let got = crate::providers::join_all(reqs.iter().map(|r| get_oidc(ctx, r.id))).await;
        let mut out = Vec::new();
        for (r, g) in reqs.iter().zip(got) {
            out.push(g?.map(|(l, tags)| super::user_view(ctx, r.address, l, tags)));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse_oidc(config)?;
        let out = aws
            .iam
            .create_open_id_connect_provider()
            .url(format!("https://{}", c.url))
            .set_client_id_list(Some(c.client_ids.clone()))
            .set_thumbprint_list(Some(c.thumbprints.clone()))
            .set_tags(Some(iam_tags(&all_tags(ctx, address, &c.tags))))
            .send()
            .await
            .map_err(aws_err("iam CreateOpenIDConnectProvider"))?;
        let arn = out.open_id_connect_provider_arn().unwrap_or_default().to_string();
        let inputs = serde_json::to_value(&c).unwrap_or_default();
        Ok(Live {
            attributes: super::with_attrs(&inputs, json!({"id": arn, "arn": arn})),
            id: arn,
            inputs,
        })
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = parse_oidc(config)?;
        let old = parse_oidc(&prior.inputs)?;
        for id in c.client_ids.iter().filter(|i| !old.client_ids.contains(i)) {
            aws.iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(&prior.id)
                .client_id(id)
                .send()
                .await
                .map_err(aws_err("iam AddClientIDToOpenIDConnectProvider"))?;
        }
        for id in old.client_ids.iter().filter(|i| !c.client_ids.contains(i)) {
            aws.iam
                .remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(&prior.id)
                .client_id(id)
                .send()
                .await
                .map_err(aws_err("iam RemoveClientIDFromOpenIDConnectProvider"))?;
        }
        if c.thumbprints != old.thumbprints {
            aws.iam
                .update_open_id_connect_provider_thumbprint()
                .open_id_connect_provider_arn(&prior.id)
                .set_thumbprint_list(Some(c.thumbprints.clone()))
                .send()
                .await
                .map_err(aws_err("iam UpdateOpenIDConnectProviderThumbprint"))?;
        }
        let (set, remove) = super::tag_changes(ctx, address, &old.tags, &c.tags);
        if !set.is_empty() {
            aws.iam
                .tag_open_id_connect_provider()
                .open_id_connect_provider_arn(&prior.id)
                .set_tags(Some(iam_tags(&set)))
                .send()
                .await
                .map_err(aws_err("iam TagOpenIDConnectProvider"))?;
        }
        if !remove.is_empty() {
            aws.iam
                .untag_open_id_connect_provider()
                .open_id_connect_provider_arn(&prior.id)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(aws_err("iam UntagOpenIDConnectProvider"))?;
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
        let r = aws
            .iam
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(id)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("iam DeleteOpenIDConnectProvider"));
        Ok(ignore_missing(r)?)
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let list = aws
            .iam
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(aws_err("iam ListOpenIDConnectProviders"))?;
        let mut out = Vec::new();
        for p in list.open_id_connect_provider_list() {
            let Some(arn) = p.arn() else { continue };
            if let Some((l, tags)) = get_oidc(ctx, arn).await? {
                if owned_by(ctx, address, &tags) {
                    out.push(super::user_view(ctx, address, l, tags));
                }
            }
        }
        Ok(out)
    }
}
