//! The subcommands. Each loads what it needs, takes the lock where it
//! writes, and prints for people (or JSON for machines). They know nothing
//! of cloud types: kinds are reached only through the registry.

pub mod apply;
pub mod drift;
pub mod eks;
pub mod fmt;
pub mod graph;
pub mod iam_policy;
pub mod import;
pub mod output;
pub mod plan;
pub mod render;
pub mod schema;
pub mod state;
pub mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::graph::Graph;
use crate::providers::{Ctx, Registry};
use crate::stack::{self, Stack, StackErrors};
use crate::state::file::StateError;
use crate::state::lock::LockError;
use crate::state::store::Store;
use crate::state::State;

/// A command failed; the message says what, where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("{0}")]
    Stack(#[from] StackErrors),
    #[error("error: {0}")]
    State(#[from] StateError),
    #[error("error: {0}")]
    Lock(#[from] LockError),
    #[error("error: {0}")]
    Other(String),
}

impl From<String> for CmdError {
    fn from(s: String) -> Self {
        CmdError::Other(s)
    }
}

/// Exit status of a command that did not fail.
pub type Exit = Result<u8, CmdError>;

/// A stack loaded, validated, with its variables and graph.
pub struct Loaded {
    pub stack: Stack,
    pub graph: Graph,
    pub variables: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Load and check a stack directory completely; nothing is written.
pub fn load_stack(dir: &Path, vars: &[String], registry: &Registry) -> Result<Loaded, CmdError> {
    let cli_vars = stack::variables::parse_cli_vars(vars)?;
    let mut stack = stack::load::load(dir)?;
    // A stack with modules is checked once they are flattened into it
    // (their for_each needs the variables).
    if stack.modules.is_empty() {
        stack::validate::validate(&stack, registry)?;
    }
    let variables = stack::variables::resolve(&stack, &cli_vars, &|k| std::env::var(k).ok())?;
    if !stack.modules.is_empty() {
        stack::module::expand(&mut stack, &variables)?;
        stack::validate::validate(&stack, registry)?;
    }
    let had_for_each = stack.resources.iter().any(|r| r.for_each.is_some());
    stack::for_each::expand(&mut stack, &variables)?;
    if had_for_each {
        let errors = stack::validate::relations(&stack, registry);
        if !errors.is_empty() {
            return Err(stack::StackErrors(errors).into());
        }
    }
    crate::providers::common::name_moves(&stack.moved_pairs());
    crate::sensitive::declare(&stack, &variables);
    let graph = Graph::build(&stack, &registry.implied_edges(&stack))?;
    Ok(Loaded {
        stack,
        graph,
        variables,
    })
}

/// A stack that calls AWS (an AWS kind, or a Kubernetes object on an EKS
/// cluster) needs a region: its `[stack] region`, else the SDK's. Checked
/// before anything is locked or called, so no run starts with an empty one.
pub async fn check_region(stack: &Stack, registry: &Registry) -> Result<(), CmdError> {
    if stack.region.is_some() {
        return Ok(());
    }
    let calls_aws = stack.resources.iter().any(|r| {
        registry.get(&r.kind).and_then(|k| k.aws_permissions()).is_some()
            && (!crate::providers::k8s::table::is_kubernetes(&r.kind) || r.config.get("cluster").is_some())
    }) || stack.lookups.iter().any(|l| l.kind != "stack");
    if !calls_aws || crate::providers::aws::sdk_region().await.is_some() {
        return Ok(());
    }
    Err(CmdError::Other(format!(
        "stack `{}` calls AWS but names no region, and the AWS SDK found none (AWS_REGION, the profile's \
         `region`, EC2 instance metadata)\n  help: set `region = \"us-west-2\"` (say) in [stack] in {}, or AWS_REGION",
        stack.name,
        stack
            .sources
            .files
            .first()
            .map(|f| f.path.display().to_string())
            .unwrap_or_else(|| stack.dir.display().to_string())
    )))
}

/// The state path: `--state` if given, else the stack's.
pub fn state_path(stack: &Stack, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| stack.default_state_path())
}

/// The state store of a stack: `--state FILE` (always a local file), else
/// the operator's `--backend-config`/`SLIPWAY_BACKEND_*` over the stack's
/// `[stack.backend]`, else `state/<stack>.json`. A stack is untrusted: its
/// own `[stack] state` must stay inside the repository, and under
/// `--locked-backend` it may not move the state from where the operator put it.
pub async fn store_for(stack: &Stack, flag: Option<&Path>) -> Result<Store, CmdError> {
    let op = crate::operator::get();
    if let Some(rel) = &stack.state {
        let full = stack.default_state_path();
        if !inside_roots(&full, &stack::state_root(&stack.dir)) {
            return Err(CmdError::Other(format!(
                "[stack] state = {:?} in {} puts the state outside the repository ({}); a stack may keep its \
                 state only under its git work tree or the working directory. Use a relative path such as \
                 \"state/{}.json\", or let the operator choose with --state FILE",
                rel.display(),
                stack.dir.display(),
                full.display(),
                stack.name
            )));
        }
    }
    let operator_s3 = (!op.backend.is_empty()).then(|| operator_backend(stack, &op.backend, op.locked_backend));
    if op.locked_backend {
        locked_check(stack, flag, operator_s3.as_ref().and_then(|r| r.as_ref().ok()))?;
    }
    if let Some(f) = flag {
        return Ok(Store::Local(f.to_path_buf()));
    }
    if let Some(c) = operator_s3 {
        return Ok(Store::open(Some(&c?), Path::new("")).await);
    }
    Ok(match stack.s3_backend() {
        Some(c) => Store::open(Some(&c), Path::new("")).await,
        None => Store::Local(state_path(stack, None)),
    })
}

/// Whether `path` (a file that may not exist yet) lies in the repository
/// (see `operator::repository_roots`) or under `root`.
pub fn inside_roots(path: &Path, root: &Path) -> bool {
    let mut roots = crate::operator::repository_roots();
    roots.extend(root.canonicalize().ok());
    crate::operator::inside(path, &roots)
}

/// The S3 location the operator set, each key over the stack's (under a
/// locked backend the stack's own values count for nothing).
fn operator_backend(
    stack: &Stack,
    keys: &std::collections::BTreeMap<String, String>,
    locked: bool,
) -> Result<stack::backend::S3Config, CmdError> {
    let base = if locked { None } else { stack.s3_location() };
    let get = |k: &str| keys.get(k).cloned().filter(|v| !v.is_empty());
    let bucket = get("bucket")
        .or_else(|| base.as_ref().map(|b| b.bucket.clone()))
        .ok_or_else(|| {
            CmdError::Other(
                "the operator's backend settings (--backend-config, SLIPWAY_BACKEND_*) name no bucket; \
                 add --backend-config bucket=NAME"
                    .into(),
            )
        })?;
    Ok(stack::backend::S3Config {
        bucket,
        key: get("key")
            .or_else(|| base.as_ref().map(|b| b.key.clone()))
            .unwrap_or_else(|| format!("{}.json", stack.name)),
        region: get("region")
            .or_else(|| base.as_ref().and_then(|b| b.region.clone()))
            .or_else(|| stack.region.clone()),
        profile: get("profile").or_else(|| base.as_ref().and_then(|b| b.profile.clone())),
        role_arn: get("role_arn").or_else(|| base.as_ref().and_then(|b| b.role_arn.clone())),
        lock_lease_secs: base.as_ref().map(|b| b.lock_lease_secs).unwrap_or(60),
    })
}

/// Under `--locked-backend`, a stack that names a state location other than
/// the operator's is refused before anything is read.
fn locked_check(
    stack: &Stack,
    flag: Option<&Path>,
    operator_s3: Option<&stack::backend::S3Config>,
) -> Result<(), CmdError> {
    let refuse = |what: String| {
        CmdError::Other(format!(
            "{what} in {}, but the backend is locked (--locked-backend, on by default when CI=true): in CI \
             the operator decides where the state lives, so a merge request cannot point it elsewhere. \
             Remove the setting from the stack, or have the operator set the location with --state FILE, \
             --backend-config KEY=VALUE or SLIPWAY_BACKEND_* (SLIPWAY_LOCKED_BACKEND=0 unlocks it off CI)",
            stack.dir.display()
        ))
    };
    if let Some(rel) = &stack.state {
        let operator_path = flag.map(Path::to_path_buf).unwrap_or_else(|| state_root_default(stack));
        if operator_s3.is_some() || !same_file(&stack.default_state_path(), &operator_path) {
            return Err(refuse(format!(
                "the stack sets [stack] state = {:?} (the operator's state is {})",
                rel.display(),
                operator_s3
                    .map(|c| c.url())
                    .unwrap_or_else(|| operator_path.display().to_string())
            )));
        }
    }
    if let Some(mine) = stack.s3_backend() {
        let same = operator_s3.is_some_and(|o| o.bucket == mine.bucket && o.key == mine.key && flag.is_none());
        if !same {
            return Err(refuse(format!(
                "the stack sets [stack.backend] {} (the operator's state is {})",
                mine.url(),
                match (flag, operator_s3) {
                    (Some(f), _) => f.display().to_string(),
                    (None, Some(o)) => o.url(),
                    (None, None) => state_root_default(stack).display().to_string(),
                }
            )));
        }
    }
    Ok(())
}

/// The state path a stack gets when it names none.
fn state_root_default(stack: &Stack) -> PathBuf {
    stack.state_path_named(None)
}

fn same_file(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| {
        p.parent()
            .and_then(|d| d.canonicalize().ok())
            .map(|d| d.join(p.file_name().unwrap_or_default()))
            .unwrap_or_else(|| p.to_path_buf())
    };
    norm(a) == norm(b)
}

/// Find the state for commands that take no stack (`state list`, ...):
/// `--state FILE`, else the one a stack directory names (its backend), else
/// the only `state/*.json` in the working directory.
pub async fn find_store(dir: Option<&Path>, flag: Option<&Path>) -> Result<Store, CmdError> {
    if let Some(f) = flag {
        return Ok(Store::Local(f.to_path_buf()));
    }
    if let Some(d) = dir {
        let stack = stack::load::load(d)?;
        return store_for(&stack, None).await;
    }
    let found: Vec<PathBuf> = std::fs::read_dir("state")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(Store::Local(one.clone())),
        [] => Err(CmdError::Other(
            "no state file found in state/; pass --state FILE or --stack DIR".into(),
        )),
        many => Err(CmdError::Other(format!(
            "several state files in state/ ({}); pass --state FILE or --stack DIR",
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Parse a `--lock-timeout` value such as `30s` or `5m`.
pub fn parse_timeout(s: Option<&str>) -> Result<Option<Duration>, CmdError> {
    match s {
        None => Ok(None),
        Some(s) => humantime::parse_duration(s).map(Some).map_err(|e| {
            CmdError::Other(format!(
                "--lock-timeout {s:?} is not a duration ({e}); write e.g. 30s or 5m"
            ))
        }),
    }
}

/// Read the state (replaying a journal) without settling anything.
pub async fn read_state(store: &Store, stack_name: Option<&str>) -> Result<(Option<State>, bool), CmdError> {
    let snapshot = store.read().await?;
    let (mut state, replayed) = store.replay(snapshot).await?;
    if let Some(s) = &mut state {
        s.use_secret_key();
    }
    if let (Some(s), Some(name)) = (&state, stack_name) {
        if s.stack != name {
            return Err(StateError::WrongStack {
                path: store.location(),
                found: s.stack.clone(),
                expected: name.to_string(),
            }
            .into());
        }
    }
    Ok((state, replayed))
}

/// Read the state under a held lock and settle whatever an interrupted run
/// left: replay its journal, resolve pending intents, and write the result.
pub async fn open_state(
    store: &Store,
    stack_name: &str,
    registry: &Registry,
    ctx: &Ctx,
) -> Result<(Option<State>, Vec<String>), CmdError> {
    let (state, replayed) = read_state(store, Some(stack_name)).await?;
    let Some(mut state) = state else {
        return Ok((None, Vec::new()));
    };
    let mut notes = Vec::new();
    if replayed {
        notes.push(format!(
            "replayed the journal of an interrupted run ({})",
            store.journal_location()
        ));
    }
    if !state.pending.is_empty() {
        notes.extend(crate::apply::settle::settle(&mut state, registry, ctx).await?);
    }
    if replayed || !notes.is_empty() {
        state.serial += 1;
        store.write(&state).await?;
        store.remove_journal().await?;
    }
    Ok((Some(state), notes))
}

/// The context every provider call gets.
pub fn ctx_for(stack: &str, region: Option<String>, kubernetes: Option<(String, Option<String>)>) -> Ctx {
    let mut c = Ctx::new(stack, region);
    c.kubernetes = kubernetes;
    c
}

/// The EKS clusters this run may connect to: the names of the stack's
/// `eks_cluster` resources (as written, `${var.*}` resolved, default
/// `<stack>-<name>`) and the IDs of those in its state.
pub fn cluster_names(
    stack: &Stack,
    variables: &std::collections::BTreeMap<String, serde_json::Value>,
    state: Option<&State>,
) -> std::sync::Arc<Vec<String>> {
    let no_attrs = |_: &str| None;
    let locals = stack.local_values();
    let mut names: Vec<String> = stack
        .resources
        .iter()
        .filter(|r| r.kind == "eks_cluster")
        .filter_map(|r| match r.config.get("name") {
            // The eks_cluster kind's default name.
            None => Some(format!(
                "{}-{}",
                stack.name,
                crate::providers::common::name_of(&r.address)
            )),
            Some(n) => crate::stack::template::resolve(
                n,
                &crate::plan::make::Scope::new(&no_attrs, variables, &locals, &stack.dir),
            )
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        })
        .collect();
    if let Some(s) = state {
        names.extend(
            s.resources
                .values()
                .filter(|r| r.kind == "eks_cluster")
                .map(|r| r.id.clone()),
        );
    }
    names.sort();
    names.dedup();
    std::sync::Arc::new(names)
}

/// Print the API calls a run made, per service and operation.
pub fn print_stats(ctx: &Ctx) {
    let calls = ctx.calls.snapshot();
    let total: u64 = calls.values().sum();
    eprintln!("\nAPI calls: {total}");
    for ((service, op), n) in calls {
        eprintln!("  {service:<24} {op:<40} {n}");
    }
}
