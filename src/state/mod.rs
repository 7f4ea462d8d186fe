//! The state: what slipway has created, as a JSON snapshot plus a journal of
//! what happened since, guarded by a lock file.

pub mod file;
pub mod journal;
pub mod lock;
pub mod s3;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state format this binary reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The whole state of one stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format_version: u32,
    /// Fixed at the first apply; a plan or state from another lineage is refused.
    pub lineage: String,
    /// +1 for every snapshot written.
    pub serial: u64,
    pub stack: String,
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputState>,
    /// Operations started but not known to have finished (a killed run).
    #[serde(default)]
    pub pending: Vec<Intent>,
    /// Old objects of a create-before-destroy replacement, still to delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposed: Vec<DeposedObject>,
    /// The random key of this state's secret hashes (registry passwords,
    /// imported keys): without it a hash in a plan or state cannot be tested
    /// against a guess. Never printed; `state pull` and `state show` hide it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// The key was made by this process and is not in the stored state yet.
    #[serde(skip)]
    pub secret_key_unsaved: bool,
}

/// The secret-hash key of this process: the key of the state it read, or a
/// fresh one for a new state.
static SECRET_KEY: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// The key secret hashes use now (one is made when no state gave one).
pub fn secret_key() -> String {
    if let Some(k) = SECRET_KEY.read().unwrap_or_else(|e| e.into_inner()).clone() {
        return k;
    }
    let mut k = SECRET_KEY.write().unwrap_or_else(|e| e.into_inner());
    k.get_or_insert_with(|| format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()))
        .clone()
}

impl State {
    /// Hash this state's secrets with its key from now on; a state written
    /// before there were keys gets the process's key (its secret hashes
    /// change once, showing as an update of the objects they belong to).
    pub fn use_secret_key(&mut self) {
        match &self.secret_key {
            Some(k) => *SECRET_KEY.write().unwrap_or_else(|e| e.into_inner()) = Some(k.clone()),
            None => {
                self.secret_key = Some(secret_key());
                self.secret_key_unsaved = true;
            }
        }
    }
}

impl State {
    /// Track the object `from` holds under `to` (a rename); the cloud object
    /// is not touched.
    pub fn move_resource(&mut self, from: &str, to: &str) -> Result<(), String> {
        if self.resources.contains_key(to) {
            return Err(format!("`{to}` is already in the state"));
        }
        let r = self
            .resources
            .remove(from)
            .ok_or_else(|| format!("`{from}` is not in the state"))?;
        self.resources.insert(to.to_string(), r);
        for d in self.deposed.iter_mut().filter(|d| d.address == from) {
            d.address = to.to_string();
        }
        Ok(())
    }

    pub fn new(stack: &str) -> Self {
        State {
            format_version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            stack: stack.to_string(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            pending: Vec::new(),
            deposed: Vec::new(),
            secret_key: Some(secret_key()),
            secret_key_unsaved: true,
        }
    }
}

/// One resource as last applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceState {
    pub kind: String,
    pub id: String,
    /// The config as applied (references resolved). Written with every
    /// string holding a sensitive value hashed (`crate::sensitive`).
    #[serde(serialize_with = "crate::sensitive::serialize_hidden")]
    pub inputs: Value,
    /// Inputs plus computed attributes; what references read.
    #[serde(serialize_with = "crate::sensitive::serialize_hidden")]
    pub attributes: Value,
    /// Addresses this resource depended on when applied (for delete order).
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Keyed hashes of sensitive inputs, which are never stored in clear.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensitive_hashes: BTreeMap<String, String>,
    /// Imported (or `protect = true`): destroy and replacement are refused
    /// until the stack says `protect = false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A stack output as last applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputState {
    #[serde(serialize_with = "crate::sensitive::serialize_hidden")]
    pub value: Value,
    #[serde(default)]
    pub sensitive: bool,
}

/// What an intent was about to do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// An operation written down before it was started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub address: String,
    pub kind: String,
    pub operation: Operation,
    /// RFC 3339 time the operation started.
    pub started: String,
    /// The object's ID for update and delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A create's attempt token, carried by the object it makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
}

/// The old object of a create-before-destroy replacement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeposedObject {
    pub address: String,
    pub resource: ResourceState,
}

/// Now, as RFC 3339 UTC to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
