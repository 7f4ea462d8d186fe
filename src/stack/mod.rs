//! Stacks: TOML files in a directory, loaded with spans, checked against the
//! kinds' schemas, with references and variables resolved.

pub mod backend;
pub mod error;
pub mod expr;
pub mod for_each;
pub mod load;
pub mod module;
pub mod node;
pub mod source;
pub mod template;
pub mod validate;
pub mod variables;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use error::{StackError, StackErrors};
use node::Node;
use source::{Sources, Span};
use template::Ref;

/// A loaded stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The directory the files came from.
    pub dir: PathBuf,
    pub name: String,
    /// `[stack] state = "..."`, relative to the state root (`state_root`).
    pub state: Option<PathBuf>,
    /// `[stack.backend]`: where the state lives (default: the local file).
    pub backend: Option<Backend>,
    /// `[stack] region`: the AWS region of the stack's cloud objects.
    pub region: Option<String>,
    /// `[kubernetes] kubeconfig` and `context`, for objects without a `cluster`.
    pub kubernetes: Option<(String, Option<String>)>,
    pub sources: Sources,
    pub variables: BTreeMap<String, Variable>,
    /// Resources in file order.
    pub resources: Vec<Resource>,
    /// Address -> position in `resources`.
    pub index: HashMap<String, usize>,
    pub outputs: Vec<Output>,
    /// `[locals]`: named values, read as `${local.name}`.
    pub locals: BTreeMap<String, Local>,
    /// `[lookup.KIND.NAME]`: existing objects read at plan time.
    pub lookups: Vec<LookupDecl>,
    /// A `for_each` resource's address -> its instances' addresses, in key
    /// order (for `${kind.name[*].attr}`), once expanded.
    pub instances: BTreeMap<String, Vec<String>>,
    /// `[[moved]]`: resources renamed in the stack whose objects stay.
    pub moved: Vec<Moved>,
    /// `[module.NAME]`: other directories' resources, flattened into this
    /// stack by `module::expand` (their resources then live here as
    /// `module.NAME.kind.name`).
    pub modules: Vec<ModuleDecl>,
    /// The environment selected (`--env`, `SLIPWAY_ENV`); `name` is then
    /// `<base_name>-<env>`.
    pub env: Option<String>,
    /// `[stack] name` as written.
    pub base_name: String,
    /// Variable values from the environment's file and `--var-file`s, in
    /// precedence order (later wins): (name, value, file).
    pub values: Vec<(String, Value, String)>,
}

/// `[[moved]] from = "app.old" to = "app.new"`: the object `from` holds in
/// the state is tracked as `to` from now on; nothing is deleted or created.
#[derive(Debug, Clone)]
pub struct Moved {
    pub from: String,
    pub to: String,
    pub span: source::Span,
}

impl Stack {
    /// `[[moved]]` as (to, from).
    pub fn moved_pairs(&self) -> Vec<(String, String)> {
        self.moved.iter().map(|m| (m.to.clone(), m.from.clone())).collect()
    }

    pub fn resource(&self, address: &str) -> Option<&Resource> {
        self.index.get(address).map(|&i| &self.resources[i])
    }

    /// The state file path this stack uses unless `--state` overrides it:
    /// `[stack] state`, else `state/<stack>.json` (`state/<stack>.<env>.json`
    /// in an environment), both under the stack's state root, so the same
    /// stack finds the same state from any working directory.
    pub fn default_state_path(&self) -> PathBuf {
        self.state_path_named(self.state.as_deref())
    }

    /// The state path for `[stack] state = named` (None: the default name).
    pub fn state_path_named(&self, named: Option<&Path>) -> PathBuf {
        let file = match &self.env {
            Some(env) => format!("{}.{env}.json", self.base_name),
            None => format!("{}.json", self.name),
        };
        let rel = named
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("state").join(file));
        if rel.is_absolute() {
            return rel;
        }
        state_root(&self.dir).join(rel)
    }
}

/// Where a stack's relative state paths start: the nearest directory at or
/// above the stack holding `state/`, else the repository root (holding
/// `.git`), else the working directory (a stack outside any repository).
pub fn state_root(dir: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| cwd.join(dir));
    for a in dir.ancestors() {
        if a.join("state").is_dir() || a.join(".git").exists() {
            return a.to_path_buf();
        }
        // The working directory above the stack bounds the search (a
        // sandbox in /tmp never finds /tmp/state).
        if a == cwd && a != dir {
            break;
        }
    }
    cwd
}

/// `[stack.backend]` as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backend {
    /// "s3" or "local".
    pub kind: String,
    pub bucket: Option<String>,
    /// Default `<stack>.json`.
    pub key: Option<String>,
    /// Default: the stack's region, else the AWS chain's.
    pub region: Option<String>,
    pub profile: Option<String>,
    /// A role to assume for the bucket (another account).
    pub role_arn: Option<String>,
    /// Default 60 s.
    pub lock_lease: Option<std::time::Duration>,
}

impl Stack {
    /// The S3 location the stack declares, whether or not it is in use
    /// (`state migrate` moves between it and the local file).
    pub fn s3_location(&self) -> Option<backend::S3Config> {
        let b = self.backend.as_ref()?;
        Some(backend::S3Config {
            bucket: b.bucket.clone()?,
            key: b.key.clone().unwrap_or_else(|| format!("{}.json", self.name)),
            region: b.region.clone().or_else(|| self.region.clone()),
            profile: b.profile.clone(),
            role_arn: b.role_arn.clone(),
            lock_lease_secs: b.lock_lease.map(|d| d.as_secs()).unwrap_or(60),
        })
    }

    /// The S3 backend in use, if `[stack.backend] type = "s3"`.
    pub fn s3_backend(&self) -> Option<backend::S3Config> {
        self.backend.as_ref().filter(|b| b.kind == "s3")?;
        self.s3_location()
    }
}

/// `[module.NAME] source = "../../modules/app"`, `inputs = { ... }`.
#[derive(Debug, Clone)]
pub struct ModuleDecl {
    pub name: String,
    /// The module path it is declared in (`""` at the top, `module.web.`
    /// for a module inside a module).
    pub within: String,
    /// As written, relative to `base`.
    pub source: String,
    /// The directory of the file declaring it.
    pub base: PathBuf,
    /// `inputs`, references still `${...}` strings, with where each is written.
    pub inputs: BTreeMap<String, (Value, Span)>,
    pub for_each: Option<(Value, Span)>,
    /// `depends_on = ["kind.name", "module.other"]`: every resource of the
    /// module comes after these.
    pub depends_on: Vec<(String, Span)>,
    pub span: Span,
}

/// `[kind.name]`: one declared resource.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `kind.name`, or `module.NAME.kind.name` inside a module.
    pub address: String,
    /// The module path the resource lives in: `""`, or `module.web.`.
    pub module: String,
    pub kind: String,
    pub name: String,
    /// Where the resource's name is written.
    pub span: Span,
    /// The table as written, with spans.
    pub body: Node,
    pub file: usize,
    /// The config handed to the kind: the body without engine fields, with
    /// references still as `${...}` strings.
    pub config: Value,
    /// Every `${...}` in the config.
    pub refs: Vec<RefSite>,
    /// `depends_on = ["kind.name"]`, explicit order without a value.
    pub depends_on: Vec<(String, Span)>,
    /// `lifecycle.create_before_destroy`, overriding the kind's default.
    pub create_before_destroy: Option<bool>,
    /// `timeouts = { create = "30m", update = "1h", delete = "20m" }`, in milliseconds.
    pub timeouts: BTreeMap<String, u64>,
    /// `protect = true|false`; imported resources are protected unless false.
    pub protect: Option<bool>,
    /// `for_each = [...] | { ... }` as written (expanded into instances
    /// `kind.name["key"]` once variables are known), and its references.
    pub for_each: Option<(Value, Vec<RefSite>, Span)>,
}

/// A reference as written in a stack file.
#[derive(Debug, Clone)]
pub struct RefSite {
    pub reference: Ref,
    /// The text between `${` and `}`.
    pub text: String,
    pub span: Span,
}

/// `[variables] name = default` or `name = { default, description, sensitive }`.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub default: Option<Value>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub span: Span,
}

/// `[lookup.KIND.NAME]`: what to read (`crate::lookup`).
#[derive(Debug, Clone)]
pub struct LookupDecl {
    pub kind: String,
    pub name: String,
    /// Its fields, references still `${...}` strings.
    pub config: Value,
    pub refs: Vec<RefSite>,
    pub span: Span,
}

/// `[locals] name = value`.
#[derive(Debug, Clone)]
pub struct Local {
    /// As written, references still `${...}` strings.
    pub value: Value,
    /// Its own references (not yet through other locals).
    pub refs: Vec<RefSite>,
    pub span: Span,
}

impl Stack {
    /// The locals' values as written, for resolving `${local.x}`.
    pub fn local_values(&self) -> BTreeMap<String, Value> {
        self.locals.iter().map(|(k, l)| (k.clone(), l.value.clone())).collect()
    }
}

/// `[outputs] name = "${...}"` or `name = { value, description, sensitive }`.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub value: Value,
    pub sensitive: bool,
    pub refs: Vec<RefSite>,
    pub span: Span,
}

/// The fields of a resource table that belong to the engine, not the kind.
pub const META_FIELDS: &[&str] = &["depends_on", "lifecycle", "timeouts", "protect", "for_each"];

/// The parts of an address: the module path it lives in (`""`, or
/// `module.web.` / `module.web["a"].module.db.`), its kind and its name
/// (with any instance key): `module.web.app.main` -> (`module.web.`, `app`,
/// `main`).
pub fn split_address(a: &str) -> Option<(&str, &str, &str)> {
    let mut i = 0;
    while a[i..].starts_with("module.") {
        let mut j = i + "module.".len();
        j += a[j..].find(|c: char| c == '.' || c == '[').unwrap_or(a.len() - j);
        if a[j..].starts_with("[\"") {
            // A JSON string key: skip to its closing quote.
            let mut k = j + 2;
            let b = a.as_bytes();
            while k < b.len() && b[k] != b'"' {
                k += if b[k] == b'\\' { 2 } else { 1 };
            }
            j = k + 2; // `"]`
        }
        if !a.get(j..)?.starts_with('.') {
            return None;
        }
        i = j + 1;
    }
    let (kind, name) = a[i..].split_once('.')?;
    Some((&a[..i], kind, name))
}

/// The kind of an address (`module.web.app.main` -> `app`).
pub fn kind_of(address: &str) -> &str {
    split_address(address).map(|(_, k, _)| k).unwrap_or(address)
}

#[cfg(test)]
mod address_tests {
    use super::split_address;

    #[test]
    fn addresses_split_into_module_kind_and_name() {
        assert_eq!(split_address("app.web"), Some(("", "app", "web")));
        assert_eq!(
            split_address("subnet.private[\"a.b\"]"),
            Some(("", "subnet", "private[\"a.b\"]"))
        );
        assert_eq!(
            split_address("module.web.app.main"),
            Some(("module.web.", "app", "main"))
        );
        assert_eq!(
            split_address("module.web[\"x.\\\"y\"].module.db.data.a[\"k\"]"),
            Some(("module.web[\"x.\\\"y\"].module.db.", "data", "a[\"k\"]"))
        );
        assert_eq!(split_address("module.web"), None);
    }
}
