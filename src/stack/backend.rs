//! Where a stack keeps its state when it says so (`[stack.backend]`): the
//! resolved S3 location. The state layer reads and writes there; the stack
//! only says where.

use serde::{Deserialize, Serialize};

/// `[stack.backend]` with `type = "s3"`, resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A role to assume for the bucket (another account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// How long a lock stays valid without renewal.
    pub lock_lease_secs: u64,
}

impl S3Config {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
    pub fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }
    pub fn journal_prefix(&self) -> String {
        format!("{}.journal/", self.key)
    }
}
