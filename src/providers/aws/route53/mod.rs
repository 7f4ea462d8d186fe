//! Route53: `route53_zone` (a lookup of a hosted zone the account already
//! has; slipway never creates or deletes one), `route53_record`, and the
//! record writes ACM's DNS validation needs.

pub mod record;
pub mod zone;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};

use crate::providers::aws::{aws_err, Clients};
use crate::providers::ProviderError;

/// Route53 error codes slipway decides on.
pub mod errors {
    pub const NO_SUCH_ZONE: &str = "NoSuchHostedZone";
    /// A CREATE of a record that exists, or a DELETE whose values differ.
    pub const INVALID_CHANGE_BATCH: &str = "InvalidChangeBatch";
}

/// A zone ID as the API gives it (`/hostedzone/Z123`) as users write it (`Z123`).
pub fn bare_zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// A DNS name as slipway compares it: lower case, no trailing dot.
pub fn dns_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// UPSERT the CNAMEs ACM asks for in `zone` (`(name, value)` pairs). The
/// names and values ACM gives are the same for every certificate of a
/// domain in an account, so an UPSERT writes what any such certificate needs.
pub async fn upsert_cnames(aws: &Clients, zone: &str, records: &[(String, String)]) -> Result<(), ProviderError> {
    let mut changes = Vec::new();
    for (name, value) in records {
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(|e| ProviderError::new(format!("validation record {name}: {e}")))?,
            )
            .build()
            .map_err(|e| ProviderError::new(format!("validation record {name}: {e}")))?;
        changes.push(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()
                .map_err(|e| ProviderError::new(format!("validation record {name}: {e}")))?,
        );
    }
    let batch = ChangeBatch::builder()
        .comment("slipway: ACM DNS validation")
        .set_changes(Some(changes))
        .build()
        .map_err(|e| ProviderError::new(format!("validation records: {e}")))?;
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(aws_err("route53 ChangeResourceRecordSets (certificate validation)"))?;
    Ok(())
}
