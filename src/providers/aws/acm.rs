//! `acm_certificate`: a DNS-validated ACM certificate (the validation
//! records a user must create are attributes; create waits until ISSUED, with
//! the records in the timeout message), or an imported certificate from PEM
//! files whose private key never reaches the state, plans or logs.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, Tag, ValidationMethod};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{all_tags, aws_err, owned_by};
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};
use crate::stack::node::PathSeg;

/// How long to wait for DNS validation by default.
pub const ISSUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45 * 60);

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertConfig {
    /// Requested certificates: the domain ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[serde(default)]
    subject_alternative_names: Vec<String>,
    /// Imported certificates: PEM files (the key is read at apply time only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain_file: Option<String>,
    /// Keyed hash of the imported certificate and key, so a renewal is an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    import_hash: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl CertConfig {
    fn imported(&self) -> bool {
        self.certificate_file.is_some()
    }
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {path}: {e}"))
}

fn import_hash(stack: &str, address: &str, c: &CertConfig) -> Option<String> {
    let cert = read_file(c.certificate_file.as_deref()?, "certificate_file").ok()?;
    let key = read_file(c.private_key_file.as_deref()?, "private_key_file").ok()?;
    let chain = c
        .chain_file
        .as_deref()
        .and_then(|p| read_file(p, "chain_file").ok())
        .unwrap_or_default();
    let mut all = cert;
    all.extend(key);
    all.extend(chain);
    Some(crate::providers::common::secret_hash(
        stack,
        address,
        &String::from_utf8_lossy(&all),
    ))
}

fn acm_tags(t: &BTreeMap<String, String>) -> Vec<Tag> {
    t.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// The records a user must create for DNS validation.
fn validation_records(d: &CertificateDetail) -> Vec<Value> {
    d.domain_validation_options()
        .iter()
        .filter_map(|o| {
            let r = o.resource_record()?;
            Some(
                json!({ "domain": o.domain_name(), "name": r.name(), "type": r.r#type().as_str(), "value": r.value() }),
            )
        })
        .collect()
}

fn cert_live(d: &CertificateDetail, tags: BTreeMap<String, String>, prior: Option<&Value>) -> Live {
    let arn = d.certificate_arn().unwrap_or_default().to_string();
    let imported = d.r#type().map(|t| t.as_str() == "IMPORTED").unwrap_or(false);
    let mut inputs = if imported {
        // Files and their hash are the config's; the live side cannot show them.
        let mut i = prior.cloned().unwrap_or_else(|| json!({}));
        i["tags"] = json!(tags);
        i
    } else {
        let domain = d.domain_name().unwrap_or_default().to_string();
        let mut sans: Vec<String> = d
            .subject_alternative_names()
            .iter()
            .filter(|s| **s != domain)
            .cloned()
            .collect();
        sans.sort();
        json!({ "domain": domain, "subject_alternative_names": sans, "tags": tags })
    };
    if inputs.get("subject_alternative_names").is_none() {
        inputs["subject_alternative_names"] = json!([]);
    }
    Live {
        id: arn.clone(),
        inputs,
        attributes: json!({
            "id": arn, "arn": arn,
            "status": d.status().map(|s| s.as_str()).unwrap_or_default(),
            "validation_records": validation_records(d),
        }),
    }
}

async fn describe(
    ctx: &Ctx,
    arn: &str,
) -> Result<Option<(CertificateDetail, BTreeMap<String, String>)>, ProviderError> {
    let aws = ctx.aws().await?;
    let d = match aws
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(aws_err("acm DescribeCertificate"))
    {
        Ok(o) => o.certificate().cloned(),
        Err(e) if e.is(&["ResourceNotFoundException"]) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(d) = d else { return Ok(None) };
    let t = aws
        .acm
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(aws_err("acm ListTagsForCertificate"))?;
    let tags = t
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
        .collect();
    Ok(Some((d, tags)))
}

/// Has the certificate been issued, failed, or is it still pending?
pub fn certificate_issued(d: &CertificateDetail) -> Check<()> {
    match d.status() {
        Some(CertificateStatus::Issued) => Check::Done(()),
        Some(
            s @ (CertificateStatus::Failed
            | CertificateStatus::Revoked
            | CertificateStatus::Expired
            | CertificateStatus::ValidationTimedOut),
        ) => Check::Failed(format!(
            "the certificate is {}{}",
            s.as_str(),
            d.failure_reason()
                .map(|r| format!(" ({})", r.as_str()))
                .unwrap_or_default()
        )),
        Some(s) => {
            let records: Vec<String> = validation_records(d)
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["name"].as_str().unwrap_or(""),
                        r["type"].as_str().unwrap_or(""),
                        r["value"].as_str().unwrap_or("")
                    )
                })
                .collect();
            if records.is_empty() {
                Check::Pending(s.as_str().to_string())
            } else {
                Check::Pending(format!(
                    "{}; create these DNS records: {}",
                    s.as_str(),
                    records.join(", ")
                ))
            }
        }
        None => Check::Pending("no status".into()),
    }
}

/// `acm_certificate`
pub struct AcmCertificate;

#[async_trait]
impl ResourceKind for AcmCertificate {
    fn name(&self) -> &'static str {
        "acm_certificate"
    }
    fn may_duplicate(&self) -> bool {
        true
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<CertConfig>(config)?;
        let o = config.as_object().cloned().unwrap_or_default();
        let bad = |f: &str, m: &str| {
            Err(SchemaError {
                path: vec![PathSeg::Field(f.into())],
                message: m.into(),
                suggestion: None,
            })
        };
        if o.contains_key("import_hash") {
            return bad("import_hash", "`import_hash` is computed by slipway, not written");
        }
        match (o.contains_key("domain"), o.contains_key("certificate_file")) {
            (true, true) => bad(
                "certificate_file",
                "give either `domain` (request a certificate) or the PEM files (import one), not both",
            ),
            (false, false) => bad(
                "domain",
                "give `domain` to request a certificate, or `certificate_file` and `private_key_file` to import one",
            ),
            (false, true) if !o.contains_key("private_key_file") => {
                bad("certificate_file", "an imported certificate needs `private_key_file`")
            }
            _ => Ok(()),
        }
    }

    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        match serde_json::from_value::<CertConfig>(config.clone()) {
            Ok(mut c) => {
                crate::value::sort_dedup(&mut c.subject_alternative_names);
                if c.imported() {
                    c.import_hash = import_hash(stack, address, &c);
                }
                serde_json::to_value(c).unwrap_or_else(|_| config.clone())
            }
            Err(_) => config.clone(),
        }
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "arn", "status", "validation_records"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &[
            "domain",
            "subject_alternative_names",
            "certificate_file",
            "private_key_file",
            "chain_file",
            "import_hash",
        ]
    }

    fn sensitive_fields(&self) -> &'static [&'static str] {
        &["import_hash"]
    }

    fn create_before_destroy(&self) -> bool {
        // A listener must always have a certificate: the new one comes first.
        true
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // ACM has no batch describe: DescribeCertificate + ListTagsForCertificate each, concurrently.
        let got = crate::providers::join_all(reqs.iter().map(|r| describe(ctx, r.id))).await;
        let mut out = Vec::new();
        for (r, g) in reqs.iter().zip(got) {
            out.push(g?.map(|(d, tags)| {
                super::user_view(ctx, r.address, cert_live(&d, BTreeMap::new(), Some(r.inputs)), tags)
            }));
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: CertConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let tags = acm_tags(&all_tags(ctx, address, &c.tags));
        let arn = if c.imported() {
            let cert = read_file(c.certificate_file.as_deref().unwrap_or_default(), "certificate_file")
                .map_err(ProviderError::new)?;
            let key = read_file(c.private_key_file.as_deref().unwrap_or_default(), "private_key_file")
                .map_err(ProviderError::new)?;
            let mut req = aws
                .acm
                .import_certificate()
                .certificate(Blob::new(cert))
                .private_key(Blob::new(key))
                .set_tags(Some(tags));
            if let Some(chain) = &c.chain_file {
                req = req.certificate_chain(Blob::new(read_file(chain, "chain_file").map_err(ProviderError::new)?));
            }
            // The SDK error never includes the request body, so the key cannot leak through it.
            req.send()
                .await
                .map_err(aws_err("acm ImportCertificate"))?
                .certificate_arn()
                .unwrap_or_default()
                .to_string()
        } else {
            // The idempotency token makes a retried request return the same certificate (AWS; moto ignores it).
            let token = format!(
                "{:x}",
                crate::providers::common::short_hash(&format!("{}:{address}:{config}", ctx.stack))
            );
            aws.acm
                .request_certificate()
                .domain_name(c.domain.clone().unwrap_or_default())
                .set_subject_alternative_names(
                    (!c.subject_alternative_names.is_empty()).then(|| c.subject_alternative_names.clone()),
                )
                .validation_method(ValidationMethod::Dns)
                .idempotency_token(token)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_err("acm RequestCertificate"))?
                .certificate_arn()
                .unwrap_or_default()
                .to_string()
        };
        let detail = wait_for(
            &format!("certificate {arn} to be ISSUED"),
            Policy::minutes(ISSUE_TIMEOUT),
            || async {
                let Some((d, _)) = describe(ctx, &arn).await? else {
                    return Ok(Check::Pending("not visible yet".into()));
                };
                Ok(match certificate_issued(&d) {
                    Check::Done(()) => Check::Done(d),
                    Check::Pending(s) => Check::Pending(s),
                    Check::Failed(f) => Check::Failed(f),
                })
            },
        )
        .await?;
        let mut live = cert_live(&detail, c.tags.clone(), None);
        live.inputs = self.complete(&ctx.stack, address, config);
        live.attributes = super::with_attrs(&live.attributes, live.inputs.clone());
        Ok(live)
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c: CertConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let old: BTreeMap<String, String> =
            serde_json::from_value(prior.inputs.get("tags").cloned().unwrap_or(json!({}))).unwrap_or_default();
        let (set, remove) = super::tag_changes(ctx, address, &old, &c.tags);
        if !set.is_empty() {
            aws.acm
                .add_tags_to_certificate()
                .certificate_arn(&prior.id)
                .set_tags(Some(acm_tags(&set)))
                .send()
                .await
                .map_err(aws_err("acm AddTagsToCertificate"))?;
        }
        if !remove.is_empty() {
            let keys: Vec<Tag> = remove
                .iter()
                .filter_map(|k| Tag::builder().key(k).build().ok())
                .collect();
            aws.acm
                .remove_tags_from_certificate()
                .certificate_arn(&prior.id)
                .set_tags(Some(keys))
                .send()
                .await
                .map_err(aws_err("acm RemoveTagsFromCertificate"))?;
        }
        let inputs = self.complete(&ctx.stack, address, config);
        Ok(Live {
            id: prior.id.clone(),
            attributes: super::with_attrs(&prior.attributes, inputs.clone()),
            inputs,
        })
    }

    async fn delete(&self, ctx: &Ctx, _address: &str, id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        // A listener that just let go of it may still hold it for a while.
        let r = super::retry_on(&["ResourceInUseException"], super::SETTLE_TIMEOUT, || async {
            aws.acm
                .delete_certificate()
                .certificate_arn(id)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("acm DeleteCertificate"))
        })
        .await;
        match r {
            Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        let list: Vec<_> = aws
            .acm
            .list_certificates()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(aws_err("acm ListCertificates"))?;
        let mut out = Vec::new();
        let mut seen: HashMap<String, ()> = HashMap::new();
        for s in list {
            let Some(arn) = s.certificate_arn() else { continue };
            if seen.insert(arn.to_string(), ()).is_some() {
                continue;
            }
            if let Some((d, tags)) = describe(ctx, arn).await? {
                if owned_by(ctx, address, &tags) {
                    out.push(super::user_view(
                        ctx,
                        address,
                        cert_live(&d, BTreeMap::new(), None),
                        tags,
                    ));
                }
            }
        }
        Ok(out)
    }
}
