//! EKS kinds, one file each (`cluster`, `nodegroup`, `access_entry`, `addon`), and
//! what they share: EKS's error codes, tag maps, the cluster and nodegroup
//! listings, the conditions a wait ends on, the waits, and the tokens
//! kubectl-style clients authenticate with. Creates wait until ACTIVE
//! (minutes on AWS); updates go one update type per call as EKS requires.

pub mod access_entry;
pub mod addon;
pub mod cluster;
pub mod conditions;
pub mod nodegroup;
pub mod token;
pub mod wait;

use std::collections::{BTreeMap, HashMap};

use super::{AwsError, Clients};

/// EKS error codes slipway decides on.
pub mod errors {
    pub const NOT_FOUND: &str = "ResourceNotFoundException";
    pub const IN_USE: &str = "ResourceInUseException";
}

/// How long an update waits for the one running on the same cluster or
/// nodegroup (EKS's own platform and AMI updates included) to end.
pub const UPDATE_IN_PROGRESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Send an EKS update, retrying while EKS answers ResourceInUseException
/// because another update of `what` is still running; the update's ID.
pub async fn start_update<F, Fut>(what: &str, f: F) -> Result<String, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<aws_sdk_eks::types::Update>, AwsError>>,
{
    let why = format!("EKS: another update of {what} is in progress (ResourceInUseException)");
    let u = super::retry_while(|e| e.is(&[errors::IN_USE]), &why, UPDATE_IN_PROGRESS_TIMEOUT, f).await?;
    Ok(u.and_then(|u| u.id).unwrap_or_default())
}

/// Tags of an EKS object as a map.
pub fn tag_map(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Every cluster name in the region.
pub async fn cluster_names(aws: &Clients) -> Result<Vec<String>, AwsError> {
    all_items!(aws.eks.list_clusters(), "eks ListClusters")
}

/// Every nodegroup name of a cluster.
pub async fn nodegroup_names(aws: &Clients, cluster: &str) -> Result<Vec<String>, AwsError> {
    all_items!(aws.eks.list_nodegroups().cluster_name(cluster), "eks ListNodegroups")
}

/// The ARN among a live object's attributes (what EKS tags are set on).
pub fn arn_of(live: &crate::providers::Live) -> String {
    live.attributes
        .get("arn")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string()
}
