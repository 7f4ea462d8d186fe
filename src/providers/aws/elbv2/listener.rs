//! `alb_listener`: a listener of an ALB on one port, forwarding to a target
//! group or redirecting to HTTPS.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::alb::all_albs;
use super::errors::{LISTENER_NOT_FOUND, LOAD_BALANCER_NOT_FOUND};
use super::{elb_tags, tags_of, Elb};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, owned_by, owner_of, retry_on, AwsError, Clients};

/// ELB refuses a certificate ACM issued a moment ago for a while
/// (terraform-provider-aws#41789): these answers are retried.
const CERT_NOT_SEEN: &[&str] = &["UnsupportedCertificate", "CertificateNotFound"];
const CERT_SETTLE: std::time::Duration = std::time::Duration::from_secs(120);
use crate::providers::{Ctx, Live, ProviderError, SchemaError};

fn tls_policy() -> String {
    "ELBSecurityPolicy-TLS13-1-2-2021-06".into()
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    alb: String,
    port: i32,
    /// HTTPS or HTTP.
    protocol: String,
    /// The ACM certificate ARN (HTTPS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssl_policy: Option<String>,
    /// Forward to this target group ARN ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forward_to: Option<String>,
    /// ... or redirect to HTTPS on 443.
    #[serde(default)]
    redirect_to_https: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl ListenerConfig {
    fn canonical(mut self) -> Self {
        if self.protocol == "HTTPS" && self.ssl_policy.is_none() {
            self.ssl_policy = Some(tls_policy());
        }
        self
    }

    fn action(&self) -> Action {
        if self.redirect_to_https {
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build()
        } else {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .set_target_group_arn(self.forward_to.clone())
                .build()
        }
    }
}

/// Listeners of one ALB (none when the ALB is gone).
async fn listeners_of(elb: &Elb, alb: &str) -> Result<Vec<Live>, ProviderError> {
    let ls = match elb
        .describe_listeners()
        .load_balancer_arn(alb)
        .send()
        .await
        .map_err(aws_err("elbv2 DescribeListeners"))
    {
        Ok(o) => o.listeners().to_vec(),
        Err(e) if e.is(&[LOAD_BALANCER_NOT_FOUND]) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(ls
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            let act = l.default_actions().first();
            let redirect = act.and_then(|a| a.r#type()) == Some(&ActionTypeEnum::Redirect);
            let mut inputs = json!({
                "alb": alb,
                "port": l.port().unwrap_or(0),
                "protocol": l.protocol().map(|p| p.as_str()).unwrap_or("HTTP"),
                "redirect_to_https": redirect,
            });
            if let Some(c) = l.certificates().first().and_then(|c| c.certificate_arn()) {
                inputs["certificate"] = json!(c);
            }
            // moto reports a policy on HTTP listeners too; only HTTPS has one.
            if let Some(p) = l.ssl_policy().filter(|_| l.protocol() == Some(&ProtocolEnum::Https)) {
                inputs["ssl_policy"] = json!(p);
            }
            if let Some(tg) = act.and_then(|a| a.target_group_arn()).filter(|_| !redirect) {
                inputs["forward_to"] = json!(tg);
            }
            Live {
                id: arn.clone(),
                inputs,
                attributes: json!({"id": arn, "arn": arn}),
            }
        })
        .collect())
}

/// Listeners with their tags (one DescribeTags for all of them).
async fn with_tags(elb: &Elb, lives: Vec<Live>) -> Result<Vec<Tagged>, ProviderError> {
    let arns: Vec<String> = lives.iter().map(|l| l.id.clone()).collect();
    let mut tags = tags_of(elb, &arns).await?;
    Ok(lives
        .into_iter()
        .map(|live| Tagged {
            tags: tags.remove(&live.id).unwrap_or_default(),
            live,
        })
        .collect())
}

/// `alb_listener`
pub struct AlbListener;

#[async_trait]
impl AwsKind for AlbListener {
    type Config = ListenerConfig;
    const NAME: &'static str = "alb_listener";
    const COMPUTED: &'static [&'static str] = &["id", "arn"];
    const FORCE_NEW: &'static [&'static str] = &["alb"];
    /// moto, unlike AWS, accepts a second listener on a port in use.
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[LISTENER_NOT_FOUND];
    const TAGGER: Tagger = Tagger::Elbv2;
    const PERMISSIONS: Permissions = Permissions {
        read: &[
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeTags",
        ],
        create: &["elasticloadbalancing:CreateListener"],
        owned: &[
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:DeleteListener",
        ],
        ..Permissions::NONE
    };

    fn canonical(&self, c: ListenerConfig, _stack: &str, _address: &str) -> Result<ListenerConfig, String> {
        Ok(c.canonical())
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        let bad = |f: &str, m: &str| Err(SchemaError::at(vec![PathSeg::Field(f.into())], m));
        let proto = config.get("protocol").and_then(Value::as_str).unwrap_or("");
        if !["HTTP", "HTTPS"].contains(&proto) {
            return bad("protocol", "protocol must be HTTPS or HTTP");
        }
        if let Some(p) = config
            .get("port")
            .and_then(Value::as_i64)
            .filter(|p| !(1..=65535).contains(p))
        {
            return Err(SchemaError::at(
                vec![PathSeg::Field("port".into())],
                format!("port {p} must be 1-65535"),
            ));
        }
        if proto == "HTTPS" && config.get("certificate").is_none() {
            return bad(
                "protocol",
                "an HTTPS listener needs `certificate` (an ACM certificate ARN)",
            );
        }
        let redirect = config.get("redirect_to_https") == Some(&Value::Bool(true));
        if redirect == config.get("forward_to").is_some() {
            return bad(
                "forward_to",
                "give exactly one of `forward_to` (a target group) or `redirect_to_https = true`",
            );
        }
        Ok(())
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        // One DescribeListeners per ALB, one DescribeTags for all listeners.
        let albs: Vec<String> = match sel {
            Select::Ids(reqs) => {
                let mut a: Vec<String> = reqs
                    .iter()
                    .filter_map(|r| r.inputs.get("alb").and_then(Value::as_str).map(str::to_string))
                    .collect();
                a.sort();
                a.dedup();
                a
            }
            Select::Owner(_) => all_albs(&aws.elb).await?.into_iter().map(|t| t.live.id).collect(),
        };
        let mut lives = Vec::new();
        for a in albs {
            lives.extend(listeners_of(&aws.elb, &a).await?);
        }
        if let Select::Ids(reqs) = sel {
            lives.retain(|l| reqs.iter().any(|r| r.id == l.id));
        }
        with_tags(&aws.elb, lives).await
    }

    async fn create(&self, call: &Call<'_>, c: &ListenerConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let (ctx, address, elb) = (call.ctx, call.address, &call.aws.elb);
        // A listener on this port that is ours (an interrupted create) is adopted.
        let on_port: Vec<Live> = listeners_of(elb, &c.alb)
            .await?
            .into_iter()
            .filter(|l| l.inputs["port"] == json!(c.port))
            .collect();
        if let Some(t) = with_tags(elb, on_port).await?.into_iter().next() {
            if owned_by(ctx, address, &t.tags) {
                return Ok(Created::Existing(t));
            }
            return Err(ProviderError::new(format!(
                "the ALB already has a listener on port {} ({}), owned by {}, not by {address} of this state.\n  Take it over deliberately with `slipway import {address} {}`, or use another port",
                c.port, t.live.id, owner_of(&t.tags), t.live.id
            )));
        }
        let mut req = elb
            .create_listener()
            .load_balancer_arn(&c.alb)
            .port(c.port)
            .protocol(ProtocolEnum::from(c.protocol.as_str()))
            .default_actions(c.action())
            .set_tags(Some(elb_tags(tags)));
        if let Some(cert) = &c.certificate {
            req = req
                .certificates(Certificate::builder().certificate_arn(cert).build())
                .set_ssl_policy(c.ssl_policy.clone());
        }
        let out = retry_on(CERT_NOT_SEEN, CERT_SETTLE, || {
            let r = req.clone();
            async move { r.send().await.map_err(aws_err("elbv2 CreateListener")) }
        })
        .await?;
        let arn = out
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string();
        Ok(Created::new(arn.clone(), json!({"id": arn, "arn": arn})))
    }

    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        _old: &ListenerConfig,
        c: &ListenerConfig,
    ) -> Result<Value, ProviderError> {
        let mut req = call
            .aws
            .elb
            .modify_listener()
            .listener_arn(&prior.id)
            .port(c.port)
            .protocol(ProtocolEnum::from(c.protocol.as_str()))
            .default_actions(c.action());
        if let Some(cert) = &c.certificate {
            req = req
                .certificates(Certificate::builder().certificate_arn(cert).build())
                .set_ssl_policy(c.ssl_policy.clone());
        }
        retry_on(CERT_NOT_SEEN, CERT_SETTLE, || {
            let r = req.clone();
            async move { r.send().await.map_err(aws_err("elbv2 ModifyListener")) }
        })
        .await?;
        Ok(Value::Null)
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .elb
            .delete_listener()
            .listener_arn(id)
            .send()
            .await
            .map_err(aws_err("elbv2 DeleteListener"))?;
        Ok(())
    }
}
