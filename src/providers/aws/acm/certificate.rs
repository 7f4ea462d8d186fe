//! `acm_certificate`: a DNS-validated ACM certificate, or an imported
//! certificate from PEM files whose private key never reaches the state,
//! plans or logs. With `validation_zone` slipway writes the validation CNAMEs
//! in that hosted zone; without, the records a person must create are
//! attributes and progress lines. Create waits until ISSUED; a certificate
//! that is not ISSUED is never in sync (`pending`): the next apply waits again.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::{CertificateDetail, Tag, ValidationMethod};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{IN_USE, NOT_FOUND};
use super::{certificate_issued, validation_records};
use crate::path::PathSeg;
use crate::providers::aws::kind::{AwsKind, Call, Created, Select, Tagged, Tags};
use crate::providers::aws::permissions::Permissions;
use crate::providers::aws::tagging::Tagger;
use crate::providers::aws::{aws_err, AwsError, Clients};
use crate::providers::common::{secret_hash, short_hash};
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{join_all, Ctx, Live, ProviderError, SchemaError};

/// How long to wait for DNS validation by default.
pub const ISSUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45 * 60);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    /// Requested certificates: the domain ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[serde(default)]
    subject_alternative_names: Vec<String>,
    /// The Route53 hosted zone (`${route53_zone.X.id}`) to write the DNS
    /// validation records in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validation_zone: Option<String>,
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

/// A PEM file the stack names, only from inside the repository.
fn read_file(path: &str, what: &str) -> Result<Vec<u8>, String> {
    let real = crate::operator::confined_file(path, what)?;
    std::fs::read(real).map_err(|e| format!("cannot read {what} {path}: {e}"))
}

fn import_hash(stack: &str, address: &str, c: &CertConfig) -> Option<String> {
    let mut all = read_file(c.certificate_file.as_deref()?, "certificate_file").ok()?;
    all.extend(read_file(c.private_key_file.as_deref()?, "private_key_file").ok()?);
    if let Some(chain) = c.chain_file.as_deref().and_then(|p| read_file(p, "chain_file").ok()) {
        all.extend(chain);
    }
    Some(secret_hash(stack, address, &String::from_utf8_lossy(&all)))
}

fn acm_tags(t: &BTreeMap<String, String>) -> Vec<Tag> {
    t.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// A certificate as a live object; an imported one keeps `prior`'s inputs
/// (files and their hash are the config's; the live side cannot show them).
fn cert_live(d: &CertificateDetail, prior: Option<&Value>) -> Live {
    let arn = d.certificate_arn().unwrap_or_default().to_string();
    let imported = d.r#type().map(|t| t.as_str() == "IMPORTED").unwrap_or(false);
    let mut inputs = if imported {
        prior.cloned().unwrap_or_else(|| json!({}))
    } else {
        let domain = d.domain_name().unwrap_or_default().to_string();
        let mut sans: Vec<&String> = d.subject_alternative_names().iter().filter(|s| **s != domain).collect();
        sans.sort();
        json!({ "domain": domain, "subject_alternative_names": sans })
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

/// One certificate with its tags (ACM has no batch describe).
async fn describe_one(
    aws: &Clients,
    arn: &str,
) -> Result<Option<(CertificateDetail, BTreeMap<String, String>)>, ProviderError> {
    let d = match aws.acm.describe_certificate().certificate_arn(arn).send().await {
        Ok(o) => o.certificate().cloned(),
        Err(e) => match aws_err("acm DescribeCertificate")(e) {
            e if e.is(&[NOT_FOUND]) => return Ok(None),
            e => return Err(e.into()),
        },
    };
    let Some(d) = d else { return Ok(None) };
    let t = aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await;
    let t = t.map_err(aws_err("acm ListTagsForCertificate"))?;
    let tags = t
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()));
    Ok(Some((d, tags.collect())))
}

/// Wait until the certificate is ISSUED; with `zone`, write its validation
/// CNAMEs there once ACM has given them all (it takes a few seconds after the
/// request).
async fn wait_issued(aws: &Clients, arn: &str, zone: Option<&str>) -> Result<CertificateDetail, ProviderError> {
    let written = std::sync::atomic::AtomicBool::new(false);
    wait_for(
        &format!("certificate {arn} to be ISSUED"),
        Policy::minutes(ISSUE_TIMEOUT),
        || {
            let written = &written;
            async move {
                let Some((d, _)) = describe_one(aws, arn).await? else {
                    return Ok(Check::Pending("not visible yet".into()));
                };
                let check = certificate_issued(&d);
                let Some(zone) = zone.filter(|_| matches!(check, Check::Pending(_))) else {
                    return Ok(check.with(d));
                };
                if !written.load(std::sync::atomic::Ordering::Relaxed) {
                    let options = d.domain_validation_options().len();
                    let records = validation_records(&d);
                    if options == 0 || records.len() < options {
                        return Ok(Check::Pending("waiting for ACM to give the validation records".into()));
                    }
                    let mut pairs: Vec<(String, String)> = records
                        .iter()
                        .map(|r| {
                            let f = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                            (f("name"), f("value"))
                        })
                        .collect();
                    pairs.sort();
                    pairs.dedup();
                    crate::providers::aws::route53::upsert_cnames(aws, zone, &pairs).await?;
                    written.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let status = d.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                Ok(Check::Pending(format!(
                    "{status}; validation records written in hosted zone {zone}, waiting for ACM to see them"
                )))
            }
        },
    )
    .await
}

/// `acm_certificate`
pub struct AcmCertificate;

#[async_trait]
impl AwsKind for AcmCertificate {
    type Config = CertConfig;
    const NAME: &'static str = "acm_certificate";
    const COMPUTED: &'static [&'static str] = &["id", "arn", "status", "validation_records"];
    const FORCE_NEW: &'static [&'static str] = &[
        "domain",
        "subject_alternative_names",
        "certificate_file",
        "private_key_file",
        "chain_file",
        "import_hash",
    ];
    /// moto ignores the idempotency token.
    const MAY_DUPLICATE: bool = true;
    const GONE: &'static [&'static str] = &[NOT_FOUND];
    /// A listener that just let go of it may still hold it for a while.
    const DELETE_RETRY: &'static [&'static str] = &[IN_USE];
    const TAGGER: Tagger = Tagger::Acm;
    const PERMISSIONS: Permissions = Permissions {
        read: &[
            "acm:DescribeCertificate",
            "acm:ListCertificates",
            "acm:ListTagsForCertificate",
        ],
        create: &["acm:RequestCertificate", "acm:ImportCertificate"],
        owned: &["acm:DeleteCertificate"],
        unowned: &["route53:ChangeResourceRecordSets"],
        ..Permissions::NONE
    };
    /// A listener must always have a certificate: the new one comes first.
    const CREATE_BEFORE_DESTROY: bool = true;
    const SENSITIVE: &'static [&'static str] = &["import_hash"];

    fn canonical(&self, mut c: CertConfig, stack: &str, address: &str) -> Result<CertConfig, String> {
        crate::value::sort_dedup(&mut c.subject_alternative_names);
        if c.imported() {
            c.import_hash = import_hash(stack, address, &c);
        }
        Ok(c)
    }

    fn check_local(&self, config: &Value) -> Result<(), SchemaError> {
        for f in ["certificate_file", "private_key_file", "chain_file"] {
            if let Some(p) = config
                .get(f)
                .and_then(Value::as_str)
                .filter(|p| !p.contains("${") && !p.contains(crate::value::UNKNOWN))
            {
                read_file(p, f).map_err(|m| SchemaError::at(vec![PathSeg::Field(f.into())], m))?;
            }
        }
        Ok(())
    }

    fn check_more(&self, config: &Value) -> Result<(), SchemaError> {
        let has = |k: &str| config.get(k).is_some();
        let bad = |f: &str, m: &str| Err(SchemaError::at(vec![PathSeg::Field(f.into())], m));
        if has("import_hash") {
            return bad("import_hash", "`import_hash` is computed by slipway, not written");
        }
        for f in ["certificate_file", "private_key_file", "chain_file"] {
            let path = config.get(f).and_then(Value::as_str).filter(|p| !p.contains("${"));
            if let Some(why) = path.and_then(|p| crate::operator::file_refused(p, f)) {
                return Err(SchemaError::at(vec![PathSeg::Field(f.into())], why));
            }
        }
        match (has("domain"), has("certificate_file")) {
            (true, true) => bad(
                "certificate_file",
                "give either `domain` (request a certificate) or the PEM files (import one), not both",
            ),
            (false, false) => bad(
                "domain",
                "give `domain` to request a certificate, or `certificate_file` and `private_key_file` to import one",
            ),
            (false, true) if !has("private_key_file") => {
                bad("certificate_file", "an imported certificate needs `private_key_file`")
            }
            _ => Ok(()),
        }
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let wanted: Vec<(String, Option<&Value>)> = match sel {
            Select::Ids(reqs) => reqs.iter().map(|r| (r.id.to_string(), Some(r.inputs))).collect(),
            Select::Owner(_) => {
                let list: Vec<_> = all_items!(aws.acm.list_certificates(), "acm ListCertificates")?;
                let arns: BTreeSet<String> = list
                    .iter()
                    .filter_map(|s| s.certificate_arn().map(str::to_string))
                    .collect();
                arns.into_iter().map(|a| (a, None)).collect()
            }
        };
        let got = join_all(wanted.iter().map(|(arn, _)| describe_one(aws, arn))).await;
        let mut out = Vec::new();
        for ((_, prior), g) in wanted.iter().zip(got) {
            if let Some((d, tags)) = g? {
                out.push(Tagged {
                    live: cert_live(&d, *prior),
                    tags,
                });
            }
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, c: &CertConfig, tags: &Tags) -> Result<Created, ProviderError> {
        let aws = call.aws;
        let tags = acm_tags(tags);
        let arn = if c.imported() {
            let file = |p: &Option<String>, what| {
                read_file(p.as_deref().unwrap_or_default(), what).map_err(ProviderError::new)
            };
            let mut req = aws
                .acm
                .import_certificate()
                .certificate(Blob::new(file(&c.certificate_file, "certificate_file")?))
                .private_key(Blob::new(file(&c.private_key_file, "private_key_file")?))
                .set_tags(Some(tags));
            if c.chain_file.is_some() {
                req = req.certificate_chain(Blob::new(file(&c.chain_file, "chain_file")?));
            }
            // The SDK error never includes the request body, so the key cannot leak through it.
            let out = req.send().await.map_err(aws_err("acm ImportCertificate"))?;
            out.certificate_arn().unwrap_or_default().to_string()
        } else {
            // The idempotency token makes a retried request return the same certificate (AWS; moto ignores it).
            let config = serde_json::to_value(c).unwrap_or_default();
            let token = format!(
                "{:x}",
                short_hash(&format!("{}:{}:{config}", call.ctx.stack, call.address))
            );
            let sans = (!c.subject_alternative_names.is_empty()).then(|| c.subject_alternative_names.clone());
            let out = aws
                .acm
                .request_certificate()
                .domain_name(c.domain.clone().unwrap_or_default())
                .set_subject_alternative_names(sans)
                .validation_method(ValidationMethod::Dns)
                .idempotency_token(token)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws_err("acm RequestCertificate"))?;
            out.certificate_arn().unwrap_or_default().to_string()
        };
        let detail = wait_issued(aws, &arn, c.validation_zone.as_deref()).await?;
        Ok(Created::new(arn, cert_live(&detail, None).attributes))
    }

    /// Everything but the tags and the validation zone replaces the
    /// certificate; one not ISSUED yet is validated (again) and waited for.
    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        _: &CertConfig,
        c: &CertConfig,
    ) -> Result<Value, ProviderError> {
        if prior.attributes.get("status").and_then(Value::as_str) == Some("ISSUED") {
            return Ok(Value::Null);
        }
        let detail = wait_issued(call.aws, &prior.id, c.validation_zone.as_deref()).await?;
        let attrs = cert_live(&detail, None).attributes;
        Ok(json!({ "status": attrs["status"], "validation_records": attrs["validation_records"] }))
    }

    /// ACM does not report which zone slipway wrote the records in.
    fn keep_unread(&self, state: &Value, live: &mut Value) {
        if let (Some(z), Some(l)) = (state.get("validation_zone"), live.as_object_mut()) {
            l.insert("validation_zone".into(), z.clone());
        }
    }

    fn pending(&self, attributes: &Value) -> Option<String> {
        match attributes.get("status").and_then(Value::as_str) {
            Some("ISSUED") | None => None,
            Some(s) => Some(format!("certificate {s}")),
        }
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        let r = call.aws.acm.delete_certificate().certificate_arn(id).send().await;
        r.map_err(aws_err("acm DeleteCertificate"))?;
        Ok(())
    }
}
