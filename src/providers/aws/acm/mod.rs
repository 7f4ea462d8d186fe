//! ACM: the certificate kind, ACM's error codes, and the wait for issue.

pub mod certificate;

use aws_sdk_acm::types::{CertificateDetail, CertificateStatus};
use serde_json::{json, Value};

use crate::providers::wait::Check;

/// ACM error codes slipway decides on.
pub mod errors {
    pub const NOT_FOUND: &str = "ResourceNotFoundException";
    pub const IN_USE: &str = "ResourceInUseException";
}

/// The records a user must create for DNS validation.
pub fn validation_records(d: &CertificateDetail) -> Vec<Value> {
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
                    let f = |k: &str| r[k].as_str().unwrap_or("").to_string();
                    format!("{} {} {}", f("name"), f("type"), f("value"))
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
