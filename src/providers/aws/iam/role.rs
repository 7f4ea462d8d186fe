//! `iam_role`: an IAM role with its trust policy, attached managed
//! policies, inline policies and tags. Refresh reads every role of the
//! state with one paginated GetAccountAuthorizationDetails (Filter=Role)
//! instead of three or more calls per role; policy documents compare by
//! meaning (see `policy`). An update compares with the live role, not with
//! the state, so drift in its policies is repaired.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_iam::types::EntityType;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{ACCESS_DENIED, DELETE_CONFLICT, NO_SUCH_ENTITY};
use super::{policy, tag_map};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::{iam_tags, Tagger};
use crate::providers::aws::{aws_err, ok_if, AwsError, Clients};
use crate::providers::common::name_of;
use crate::providers::{Ctx, Live, ProviderError, SchemaError};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
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
    /// A managed policy ARN that bounds what the role can ever do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permissions_boundary: Option<String>,
    /// Longest session, in seconds (3600 to 43200).
    #[serde(default = "one_hour")]
    max_session_duration: i32,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn one_hour() -> i32 {
    3600
}

fn root_path() -> String {
    "/".into()
}

/// `iam_role`
pub struct IamRole;

/// What a role is made of, however it was read.
struct RoleParts<'a> {
    name: &'a str,
    path: &'a str,
    arn: &'a str,
    role_id: &'a str,
    trust: Option<&'a str>,
    inline: Vec<(&'a str, &'a str)>,
    managed: Vec<&'a str>,
    boundary: Option<&'a str>,
    max_session: i32,
    tags: BTreeMap<String, String>,
}

fn role_tagged(r: RoleParts<'_>) -> Result<Tagged, ProviderError> {
    let decode = |d: &str| {
        policy::decode(d)
            .map(|v| policy::canonical(&v))
            .map_err(ProviderError::new)
    };
    let trust = match r.trust {
        Some(d) => decode(d)?,
        None => Value::Null,
    };
    let mut inline = BTreeMap::new();
    for (n, d) in r.inline {
        inline.insert(n.to_string(), decode(d)?);
    }
    let mut managed = r.managed;
    managed.sort();
    let live = Live {
        id: r.name.to_string(),
        inputs: json!({
            "name": r.name,
            "path": r.path,
            "assume_role_policy": trust,
            "managed_policy_arns": managed,
            "inline_policies": inline,
            "permissions_boundary": r.boundary,
            "max_session_duration": r.max_session,
        }),
        attributes: json!({ "id": r.name, "arn": r.arn, "unique_id": r.role_id }),
    };
    Ok(Tagged { live, tags: r.tags })
}

/// Every role in the account (or those named), with policies and tags: one
/// account-wide read, or, where a least-privilege role may not make it
/// (AccessDenied), each named role read alone.
async fn roles(aws: &Clients, only: Option<&BTreeSet<String>>) -> Result<Vec<Tagged>, ProviderError> {
    let pages: Result<Vec<_>, _> = aws
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(aws_err("iam GetAccountAuthorizationDetails"));
    let pages = match (pages, only) {
        (Err(e), Some(names)) if e.is(&[ACCESS_DENIED]) => return roles_one_by_one(aws, names).await,
        (r, _) => r?,
    };
    let mut out = Vec::new();
    for r in pages.iter().flat_map(|p| p.role_detail_list()) {
        let Some(name) = r.role_name() else { continue };
        if only.is_some_and(|o| !o.contains(name)) {
            continue;
        }
        out.push(role_tagged(RoleParts {
            name,
            path: r.path().unwrap_or("/"),
            arn: r.arn().unwrap_or_default(),
            role_id: r.role_id().unwrap_or_default(),
            trust: r.assume_role_policy_document(),
            inline: r
                .role_policy_list()
                .iter()
                .filter_map(|p| Some((p.policy_name()?, p.policy_document()?)))
                .collect(),
            managed: r
                .attached_managed_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .collect(),
            boundary: r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
            // Not in the account-wide read: see `describe`.
            max_session: one_hour(),
            tags: tag_map(r.tags()),
        })?);
    }
    Ok(out)
}

/// The named roles, each read with GetRole, ListAttachedRolePolicies,
/// ListRolePolicies and GetRolePolicy (actions a read-only role can be
/// granted on its own roles' ARNs).
async fn roles_one_by_one(aws: &Clients, names: &BTreeSet<String>) -> Result<Vec<Tagged>, ProviderError> {
    let mut out = Vec::new();
    for name in names {
        let got = aws
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(aws_err("iam GetRole"));
        let got = match got {
            Err(e) if e.is(&[NO_SUCH_ENTITY]) => continue,
            r => r?,
        };
        let Some(role) = got.role() else { continue };
        let attached = all_items!(
            aws.iam.list_attached_role_policies().role_name(name),
            "iam ListAttachedRolePolicies"
        )?;
        let inline_names: Vec<String> =
            all_items!(aws.iam.list_role_policies().role_name(name), "iam ListRolePolicies")?;
        let mut inline = Vec::new();
        for p in &inline_names {
            let doc = aws.iam.get_role_policy().role_name(name).policy_name(p).send().await;
            inline.push((
                p.clone(),
                doc.map_err(aws_err("iam GetRolePolicy"))?.policy_document().to_string(),
            ));
        }
        out.push(role_tagged(RoleParts {
            name,
            path: role.path(),
            arn: role.arn(),
            role_id: role.role_id(),
            trust: role.assume_role_policy_document(),
            inline: inline.iter().map(|(n, d)| (n.as_str(), d.as_str())).collect(),
            managed: attached.iter().filter_map(|p| p.policy_arn()).collect(),
            boundary: role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
            max_session: role.max_session_duration().unwrap_or(one_hour()),
            tags: tag_map(role.tags()),
        })?);
    }
    Ok(out)
}

/// A policy document's error at `path`, unless it still holds references.
fn check_policy(doc: &Value, path: Vec<PathSeg>, trust: bool) -> Result<(), SchemaError> {
    if doc.to_string().contains("${") || crate::value::contains_unknown(doc) {
        return Ok(());
    }
    let parsed = policy::parse(doc).map_err(|message| SchemaError::at(path.clone(), message))?;
    policy_shape(&parsed, trust).map_err(|(sub, message)| {
        let mut p = path;
        p.extend(sub);
        SchemaError::at(p, message)
    })
}

/// The shape IAM requires of a policy document: `Version` 2012-10-17 or
/// 2008-10-17, a `Statement` (one or a list, not empty), each with `Effect`
/// Allow or Deny and `Action` or `NotAction`; a trust policy names a
/// `Principal` and no `Resource`, a permission policy a `Resource` and no
/// `Principal`.
fn policy_shape(doc: &Value, trust: bool) -> Result<(), (Vec<PathSeg>, String)> {
    let f = |s: &str| PathSeg::Field(s.into());
    match doc.get("Version").and_then(Value::as_str) {
        Some("2012-10-17" | "2008-10-17") | None => {}
        Some(v) => return Err((vec![f("Version")], format!("Version {v:?}: IAM takes \"2012-10-17\""))),
    }
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => {
            return Err((
                vec![],
                "a policy document needs `Statement`: a list of { Effect, Action, ... } (IAM refuses it without)"
                    .into(),
            ))
        }
    };
    for (i, st) in statements.iter().enumerate() {
        let here = |k: &str| vec![f("Statement"), PathSeg::Index(i), f(k)];
        match st.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            Some(e) => return Err((here("Effect"), format!("Effect {e:?} must be \"Allow\" or \"Deny\""))),
            None => {
                return Err((
                    here("Effect"),
                    "a statement needs `Effect` (\"Allow\" or \"Deny\")".into(),
                ))
            }
        }
        if st.get("Action").is_none() && st.get("NotAction").is_none() {
            return Err((here("Action"), "a statement needs `Action` or `NotAction`".into()));
        }
        let principal = st.get("Principal").is_some() || st.get("NotPrincipal").is_some();
        let resource = st.get("Resource").is_some() || st.get("NotResource").is_some();
        if trust && !principal {
            return Err((
                here("Principal"),
                "a trust policy statement needs `Principal` (who may assume the role)".into(),
            ));
        }
        if trust && resource {
            return Err((
                here("Resource"),
                "a trust policy has no `Resource` (the role is the resource)".into(),
            ));
        }
        if !trust && principal {
            return Err((
                here("Principal"),
                "a permission policy has no `Principal` (only a trust policy has)".into(),
            ));
        }
        if !trust && !resource {
            return Err((
                here("Resource"),
                "a permission policy statement needs `Resource` (or `NotResource`)".into(),
            ));
        }
    }
    Ok(())
}

/// Attach, detach, put and delete policies so that the role goes from `old` to `c`.
async fn converge_policies(aws: &Clients, name: &str, c: &RoleConfig, old: &RoleConfig) -> Result<(), AwsError> {
    let want: BTreeSet<&String> = c.managed_policy_arns.iter().collect();
    let have: BTreeSet<&String> = old.managed_policy_arns.iter().collect();
    for arn in want.difference(&have) {
        let r = aws
            .iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(*arn)
            .send()
            .await;
        r.map_err(aws_err("iam AttachRolePolicy"))?;
    }
    for arn in have.difference(&want) {
        detach(aws, name, arn).await?;
    }
    for (pname, doc) in &c.inline_policies {
        if old.inline_policies.get(pname) != Some(doc) {
            let r = aws.iam.put_role_policy().role_name(name).policy_name(pname);
            r.policy_document(doc.to_string())
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
        delete_inline(aws, name, pname).await?;
    }
    Ok(())
}

async fn detach(aws: &Clients, role: &str, arn: &str) -> Result<(), AwsError> {
    let r = aws
        .iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    ok_if(r.map_err(aws_err("iam DetachRolePolicy")), &[NO_SUCH_ENTITY])
}

async fn delete_inline(aws: &Clients, role: &str, policy: &str) -> Result<(), AwsError> {
    let r = aws
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await;
    ok_if(r.map_err(aws_err("iam DeleteRolePolicy")), &[NO_SUCH_ENTITY])
}

#[async_trait]
impl AwsKind for IamRole {
    type Config = RoleConfig;
    const NAME: &'static str = "iam_role";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "unique_id"];
    const FORCE_NEW: &'static [&'static str] = &["name", "path"];
    const GONE: &'static [&'static str] = &[NO_SUCH_ENTITY];
    const DELETE_RETRY: &'static [&'static str] = &[DELETE_CONFLICT];
    const TAGGER: Tagger = Tagger::IamRole;
    const PERMISSIONS: Permissions = Permissions {
        read: &[
            "iam:GetRole",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:ListAttachedRolePolicies",
        ],
        // Roles are found by their tags with one account-wide read.
        find: &["iam:GetAccountAuthorizationDetails"],
        create: &["iam:CreateRole"],
        owned: &[
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRolePermissionsBoundary",
            "iam:UpdateAssumeRolePolicy",
            "iam:UpdateRole",
            "iam:ListInstanceProfilesForRole",
            "iam:DeleteRole",
        ],
        unowned: &["iam:RemoveRoleFromInstanceProfile"],
        ..Permissions::NONE
    };

    fn canonical(&self, mut c: RoleConfig, stack: &str, address: &str) -> Result<RoleConfig, String> {
        c.name = Some(c.name.unwrap_or_else(|| format!("{stack}-{}", name_of(address))));
        c.assume_role_policy = policy::canonical(&policy::parse(&c.assume_role_policy)?);
        for doc in c.inline_policies.values_mut() {
            *doc = policy::canonical(&policy::parse(doc)?);
        }
        crate::value::sort_dedup(&mut c.managed_policy_arns);
        Ok(c)
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        if let Some(n) = config.get("name").and_then(Value::as_str).filter(|n| !n.contains("${")) {
            let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
            if n.is_empty() || n.chars().count() > 64 || !n.chars().all(ok) {
                return Err(SchemaError::at(
                    vec![PathSeg::Field("name".into())],
                    format!("{n:?}: an IAM role name is 1 to 64 characters of letters, digits and +=,.@_-"),
                ));
            }
        }
        if let Some(m) = config
            .get("max_session_duration")
            .and_then(Value::as_i64)
            .filter(|m| !(3600..=43200).contains(m))
        {
            return Err(SchemaError::at(
                vec![PathSeg::Field("max_session_duration".into())],
                format!("{m} seconds: IAM allows 3600 (1 hour) to 43200 (12 hours)"),
            ));
        }
        if let Some(doc) = config.get("assume_role_policy") {
            check_policy(doc, vec![PathSeg::Field("assume_role_policy".into())], true)?;
        }
        let inline = config.get("inline_policies").and_then(Value::as_object);
        for (k, doc) in inline.into_iter().flatten() {
            check_policy(
                doc,
                vec![PathSeg::Field("inline_policies".into()), PathSeg::Field(k.clone())],
                false,
            )?;
        }
        Ok(())
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        // One account-wide read serves any number of IDs; by owner, the tags decide.
        let ids: BTreeSet<String> = sel.ids().into_iter().collect();
        let mut found = roles(aws, matches!(sel, Select::Ids(_)).then_some(&ids)).await?;
        if let Select::Ids(reqs) = sel {
            // GetAccountAuthorizationDetails leaves out the session length: a
            // role whose state sets one is read alone (GetRole).
            for t in &mut found {
                let set = reqs
                    .iter()
                    .find(|r| r.id == t.live.id)
                    .and_then(|r| r.inputs.get("max_session_duration"))
                    .and_then(Value::as_i64)
                    .is_some_and(|m| m != i64::from(one_hour()));
                if set {
                    let r = aws.iam.get_role().role_name(&t.live.id).send().await;
                    let r = r.map_err(aws_err("iam GetRole"))?;
                    t.live.inputs["max_session_duration"] =
                        json!(r.role().and_then(|r| r.max_session_duration()).unwrap_or(one_hour()));
                }
            }
        }
        Ok(found)
    }

    async fn create(&self, call: &Call<'_>, c: &RoleConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let name = c.name.clone().unwrap_or_default();
        let out = call
            .aws
            .iam
            .create_role()
            .role_name(&name)
            .path(&c.path)
            .assume_role_policy_document(c.assume_role_policy.to_string())
            .set_permissions_boundary(c.permissions_boundary.clone())
            .max_session_duration(c.max_session_duration)
            .set_tags(Some(iam_tags(tags)))
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
            permissions_boundary: c.permissions_boundary.clone(),
            max_session_duration: c.max_session_duration,
            tags: BTreeMap::new(),
        };
        converge_policies(call.aws, &name, c, &empty).await?;
        Ok(Created::new(
            name.clone(),
            json!({"id": name, "arn": role.arn(), "unique_id": role.role_id()}),
        ))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        _old: &RoleConfig,
        c: &RoleConfig,
    ) -> Result<Value, ProviderError> {
        // Compare with what is live now, not with the state, so drift is repaired.
        let only = BTreeSet::from([prior.id.clone()]);
        let now = roles(call.aws, Some(&only))
            .await?
            .pop()
            .ok_or_else(|| ProviderError::new(format!("role {} is gone", prior.id)))?;
        let old: RoleConfig = serde_json::from_value(now.live.inputs).map_err(|e| ProviderError::new(e.to_string()))?;
        if old.assume_role_policy != c.assume_role_policy {
            call.aws
                .iam
                .update_assume_role_policy()
                .role_name(&prior.id)
                .policy_document(c.assume_role_policy.to_string())
                .send()
                .await
                .map_err(aws_err("iam UpdateAssumeRolePolicy"))?;
        }
        converge_policies(call.aws, &prior.id, c, &old).await?;
        if old.permissions_boundary != c.permissions_boundary {
            match &c.permissions_boundary {
                Some(b) => {
                    let r = call
                        .aws
                        .iam
                        .put_role_permissions_boundary()
                        .role_name(&prior.id)
                        .permissions_boundary(b);
                    r.send().await.map_err(aws_err("iam PutRolePermissionsBoundary"))?;
                }
                None => {
                    let r = call.aws.iam.delete_role_permissions_boundary().role_name(&prior.id);
                    r.send().await.map_err(aws_err("iam DeleteRolePermissionsBoundary"))?;
                }
            }
        }
        // The live read does not know the session length unless the state set one: set it when asked.
        if c.max_session_duration != one_hour() || prior.inputs.get("max_session_duration") != Some(&json!(one_hour()))
        {
            let r = call
                .aws
                .iam
                .update_role()
                .role_name(&prior.id)
                .max_session_duration(c.max_session_duration);
            r.send().await.map_err(aws_err("iam UpdateRole"))?;
        }
        Ok(Value::Null)
    }

    /// A role must be emptied first: what is attached now, not what the state says.
    async fn before_delete(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = call.aws;
        let attached = all_items!(
            aws.iam.list_attached_role_policies().role_name(id),
            "iam ListAttachedRolePolicies"
        );
        let attached = match attached {
            Ok(v) => v,
            // Already gone: the delete call says so too.
            Err(e) if e.is(&[NO_SUCH_ENTITY]) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for arn in attached.iter().filter_map(|p| p.policy_arn()) {
            detach(aws, id, arn).await?;
        }
        let inline: Vec<String> = all_items!(aws.iam.list_role_policies().role_name(id), "iam ListRolePolicies")?;
        for p in inline {
            delete_inline(aws, id, &p).await?;
        }
        let profiles = all_items!(
            aws.iam.list_instance_profiles_for_role().role_name(id),
            "iam ListInstanceProfilesForRole"
        )?;
        for p in profiles {
            let r = aws
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(p.instance_profile_name())
                .role_name(id)
                .send()
                .await;
            ok_if(
                r.map_err(aws_err("iam RemoveRoleFromInstanceProfile")),
                &[NO_SUCH_ENTITY],
            )?;
        }
        Ok(())
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .iam
            .delete_role()
            .role_name(id)
            .send()
            .await
            .map_err(aws_err("iam DeleteRole"))?;
        Ok(())
    }
}
