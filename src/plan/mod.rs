//! Plans: what apply will do, resource by resource, and why.

pub mod action;
pub mod file;
pub mod json;
pub mod make;
pub mod refresh;
pub mod render;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use action::Action;

/// A plan, as printed and as saved to a plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub stack: String,
    /// The stack directory (absolute): `apply PLAN` loads it again and
    /// refuses the plan when the stack changed since.
    #[serde(default)]
    pub stack_dir: PathBuf,
    /// The stack's region, for the clients apply makes.
    #[serde(default)]
    pub region: Option<String>,
    /// The stack's `[kubernetes]` kubeconfig and context.
    #[serde(default)]
    pub kubernetes: Option<(String, Option<String>)>,
    /// The local state file, or the `s3://bucket/key` of an S3 state.
    pub state_path: PathBuf,
    /// The S3 backend the state lives in (none: the local file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_backend: Option<crate::stack::backend::S3Config>,
    /// The lineage and serial of the state the plan was made from (none: empty state).
    pub state_lineage: Option<String>,
    pub state_serial: u64,
    /// A plan that deletes everything.
    pub destroy: bool,
    /// Variable values the plan was made with (apply resolves references with them).
    /// A saved plan leaves the sensitive ones out (`sensitive_variables`).
    pub variables: BTreeMap<String, Value>,
    /// Each sensitive variable's keyed hash (`crate::sensitive::hash` of its
    /// JSON): a saved plan holds this instead of the value, and `apply PLAN`
    /// takes the value from the environment again and checks it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensitive_variables: BTreeMap<String, String>,
    /// The stack's `[locals]` as written (templates; apply resolves them
    /// with the rest).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locals: BTreeMap<String, Value>,
    /// What the stack's `[lookup]`s read at plan time (`kind.name` ->
    /// attributes): apply uses the same values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lookups: BTreeMap<String, Value>,
    /// for_each resources' instances (for `${kind.name[*].attr}` at apply).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, Vec<String>>,
    /// One entry per resource in the stack or the state, in walk order.
    pub changes: Vec<Change>,
    pub outputs: Vec<PlannedOutput>,
    /// Outputs whose value this plan changes (Terraform's "Changes to Outputs").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_changes: Vec<OutputChange>,
    /// Resources whose live object differs from the state.
    pub drift: Vec<Drift>,
    /// What settling an interrupted run did before planning.
    pub recovered: Vec<String>,
    pub created: String,
    /// What a person should know that is not an error (an HPA that can never scale).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `[[moved]]` entries this plan applies to the state: (from, to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<(String, String)>,
    /// The state was named with `--state FILE` (not derived from the stack).
    #[serde(default)]
    pub state_from_flag: bool,
    /// SHA-256 of the stack's files when the plan was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_digest: Option<String>,
    /// HMAC of the whole plan under the state's secret key (a plain SHA-256
    /// when the state had no key yet): `apply PLAN` refuses a plan that was
    /// changed after it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The change to one resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    pub kind: String,
    pub action: Action,
    /// Where the resource is declared (`stacks/blog/network.toml:12:1`), for
    /// apply's errors; none for a resource only the state still has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_at: Option<String>,
    /// The inputs as they are now (refreshed). The four values are written
    /// (saved plans) with sensitive strings hashed (`crate::sensitive`).
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub before: Option<Value>,
    /// The inputs as they will be, unknowns marked.
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub after: Option<Value>,
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub before_attributes: Option<Value>,
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub after_attributes: Option<Value>,
    /// Top-level input fields that change.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Fields that force the replacement.
    #[serde(default)]
    pub replace_because: Vec<String>,
    /// The config as written (with `${...}`), resolved again at apply time.
    /// A saved plan holds keyed hashes of its secret strings (a manifest
    /// Secret's data); `apply PLAN` takes the config again from the stack,
    /// whose files the plan's digest pins.
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub config: Option<Value>,
    /// What the resource depends on in the stack.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// What it depended on when last applied (for delete order).
    #[serde(default)]
    pub prior_dependencies: Vec<String>,
    pub prior_id: Option<String>,
    #[serde(default)]
    pub create_before_destroy: bool,
    /// A deposed object (left by an interrupted create-before-destroy) to delete.
    #[serde(default)]
    pub deposed: bool,
    /// The object was in the state but is gone from the cloud.
    #[serde(default)]
    pub gone: bool,
    /// Per-operation time limits in milliseconds (`timeouts` in the stack).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timeouts: BTreeMap<String, u64>,
    /// Whether the resource is protected after this change (state flag, or
    /// the stack's `protect`).
    #[serde(default)]
    pub protect: bool,
    /// Fields whose values plans never show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    /// What a person must know before approving (a replaced cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The object exists but is not ready (its status and why): the update
    /// brings it there, or waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// An output this plan adds, changes or removes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    /// What the state holds (None: a new output).
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub before: Option<Value>,
    /// As planned, maybe unknown until apply (None: the output goes); a
    /// sensitive output's only as its keyed hash.
    #[serde(serialize_with = "crate::sensitive::serialize_hidden_opt")]
    pub after: Option<Value>,
    pub sensitive: bool,
}

/// A stack output and its template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedOutput {
    pub name: String,
    pub value: Value,
    pub sensitive: bool,
}

/// A resource whose live object no longer matches the state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Drift {
    pub address: String,
    /// `modified` or `deleted`.
    pub status: String,
    #[serde(default)]
    pub fields: Vec<FieldDrift>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldDrift {
    pub field: String,
    #[serde(serialize_with = "crate::sensitive::serialize_hidden")]
    pub state: Value,
    #[serde(serialize_with = "crate::sensitive::serialize_hidden")]
    pub live: Value,
}

/// Counts for the summary line; a replacement counts once as add and once as destroy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1
                }
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    /// True when applying would change any resource, the state's
    /// addresses or an output.
    pub fn has_changes(&self) -> bool {
        !self.moved.is_empty()
            || !self.output_changes.is_empty()
            || self.changes.iter().any(|c| c.action != Action::NoOp)
    }
}
