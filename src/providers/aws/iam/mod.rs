//! IAM kinds, one file each (`role`, `oidc_provider`), the policy document
//! canonical form they compare by, and IAM's error codes and tag maps.

pub mod oidc_provider;
pub mod policy;
pub mod role;

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;

/// IAM error codes slipway decides on.
pub mod errors {
    pub const NO_SUCH_ENTITY: &str = "NoSuchEntity";
    pub const DELETE_CONFLICT: &str = "DeleteConflict";
    /// IAM's answer to a caller whose policy does not allow the action.
    pub const ACCESS_DENIED: &str = "AccessDenied";
}

/// Tags of an IAM object as a map.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}
