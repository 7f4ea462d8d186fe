//! `iam_oidc_provider`: the IAM OIDC provider of a cluster's issuer (IRSA).
//! IAM has no batch read of OIDC providers: one Get per provider, concurrently.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::NO_SUCH_ENTITY;
use super::tag_map;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::{iam_tags, Tagger};
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::{join_all, Ctx, Live, ProviderError};

/// The thumbprint of the root CA behind every EKS OIDC issuer. IAM no longer
/// checks it for EKS issuers (it trusts its own CA store) but still requires one.
pub const EKS_OIDC_THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

fn sts_audience() -> Vec<String> {
    vec!["sts.amazonaws.com".into()]
}

fn eks_thumbprint() -> Vec<String> {
    vec![EKS_OIDC_THUMBPRINT.into()]
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL, e.g. the cluster's `oidc_issuer`.
    url: String,
    #[serde(default = "sts_audience")]
    client_ids: Vec<String>,
    #[serde(default = "eks_thumbprint")]
    thumbprints: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// `iam_oidc_provider`
pub struct OidcProvider;

async fn get_oidc(aws: &Clients, arn: &str) -> Result<Option<Tagged>, ProviderError> {
    let out = aws
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await;
    let out = match out.map_err(aws_err("iam GetOpenIDConnectProvider")) {
        Ok(o) => o,
        Err(e) if e.is(&[NO_SUCH_ENTITY]) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut clients = out.client_id_list().to_vec();
    clients.sort();
    let mut thumbs: Vec<String> = out.thumbprint_list().iter().map(|t| t.to_ascii_lowercase()).collect();
    thumbs.sort();
    let url = out.url().unwrap_or_default();
    let url = url.strip_prefix("https://").unwrap_or(url);
    let live = Live {
        id: arn.to_string(),
        inputs: json!({ "url": url, "client_ids": clients, "thumbprints": thumbs }),
        attributes: json!({ "id": arn, "arn": arn }),
    };
    Ok(Some(Tagged {
        live,
        tags: tag_map(out.tags()),
    }))
}

#[async_trait]
impl AwsKind for OidcProvider {
    type Config = OidcConfig;
    const NAME: &'static str = "iam_oidc_provider";
    const COMPUTED: &'static [&'static str] = &["id", "arn"];
    const FORCE_NEW: &'static [&'static str] = &["url"];
    const GONE: &'static [&'static str] = &[NO_SUCH_ENTITY];
    const TAGGER: Tagger = Tagger::IamOidcProvider;
    const PERMISSIONS: Permissions = Permissions {
        read: &["iam:ListOpenIDConnectProviders", "iam:GetOpenIDConnectProvider"],
        create: &["iam:CreateOpenIDConnectProvider"],
        owned: &[
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:RemoveClientIDFromOpenIDConnectProvider",
            "iam:UpdateOpenIDConnectProviderThumbprint",
            "iam:DeleteOpenIDConnectProvider",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, mut c: OidcConfig, _stack: &str, _address: &str) -> Result<OidcConfig, String> {
        // IAM stores the URL without its scheme.
        if let Some(rest) = c.url.strip_prefix("https://") {
            c.url = rest.to_string();
        }
        crate::value::sort_dedup(&mut c.client_ids);
        for t in &mut c.thumbprints {
            *t = t.to_ascii_lowercase();
        }
        crate::value::sort_dedup(&mut c.thumbprints);
        Ok(c)
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let arns = match sel {
            Select::Ids(_) => sel.ids(),
            Select::Owner(_) => {
                let list = aws.iam.list_open_id_connect_providers().send().await;
                let list = list.map_err(aws_err("iam ListOpenIDConnectProviders"))?;
                list.open_id_connect_provider_list()
                    .iter()
                    .filter_map(|p| p.arn().map(str::to_string))
                    .collect()
            }
        };
        let got = join_all(arns.iter().map(|a| get_oidc(aws, a))).await;
        let mut out = Vec::new();
        for g in got {
            out.extend(g?);
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, c: &OidcConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let out = call
            .aws
            .iam
            .create_open_id_connect_provider()
            .url(format!("https://{}", c.url))
            .set_client_id_list(Some(c.client_ids.clone()))
            .set_thumbprint_list(Some(c.thumbprints.clone()))
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await
            .map_err(aws_err("iam CreateOpenIDConnectProvider"))?;
        let arn = out.open_id_connect_provider_arn().unwrap_or_default().to_string();
        Ok(Created::new(arn.clone(), json!({"id": arn, "arn": arn})))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &OidcConfig,
        c: &OidcConfig,
    ) -> Result<Value, ProviderError> {
        let (iam, arn) = (&call.aws.iam, prior.id.as_str());
        for id in c.client_ids.iter().filter(|i| !old.client_ids.contains(i)) {
            let r = iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(arn);
            r.client_id(id)
                .send()
                .await
                .map_err(aws_err("iam AddClientIDToOpenIDConnectProvider"))?;
        }
        for id in old.client_ids.iter().filter(|i| !c.client_ids.contains(i)) {
            let r = iam
                .remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(arn);
            r.client_id(id)
                .send()
                .await
                .map_err(aws_err("iam RemoveClientIDFromOpenIDConnectProvider"))?;
        }
        if c.thumbprints != old.thumbprints {
            iam.update_open_id_connect_provider_thumbprint()
                .open_id_connect_provider_arn(arn)
                .set_thumbprint_list(Some(c.thumbprints.clone()))
                .send()
                .await
                .map_err(aws_err("iam UpdateOpenIDConnectProviderThumbprint"))?;
        }
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        let r = call
            .aws
            .iam
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(id);
        r.send().await.map_err(aws_err("iam DeleteOpenIDConnectProvider"))?;
        Ok(())
    }
}
