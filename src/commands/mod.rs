//! The subcommands. Each loads what it needs, takes the lock where it
//! writes, and prints for people (or JSON for machines). They know nothing
//! of cloud types: kinds are reached only through the registry.

pub mod apply;
pub mod drift;
pub mod eks;
pub mod graph;
pub mod import;
pub mod output;
pub mod plan;
pub mod render;
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
    let stack = stack::load::load(dir)?;
    stack::validate::validate(&stack, registry)?;
    let variables = stack::variables::resolve(&stack, &cli_vars, &|k| std::env::var(k).ok())?;
    let graph = Graph::build(&stack, &registry.implied_edges(&stack))?;
    Ok(Loaded {
        stack,
        graph,
        variables,
    })
}

/// The state path: `--state` if given, else the stack's.
pub fn state_path(stack: &Stack, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| stack.default_state_path())
}

/// The state store of a stack: `--state FILE` (always a local file), else
/// the stack's `[stack.backend]`, else `state/<stack>.json`.
pub async fn store_for(stack: &Stack, flag: Option<&Path>) -> Store {
    match (flag, stack.s3_backend()) {
        (None, Some(c)) => Store::open(Some(&c), Path::new("")).await,
        _ => Store::Local(state_path(stack, flag)),
    }
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
        return Ok(store_for(&stack, None).await);
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
    let (state, replayed) = store.replay(snapshot).await?;
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

/// Print the API calls a run made, per service and operation.
pub fn print_stats(ctx: &Ctx) {
    let calls = ctx.calls.snapshot();
    let total: u64 = calls.values().sum();
    eprintln!("\nAPI calls: {total}");
    for ((service, op), n) in calls {
        eprintln!("  {service:<24} {op:<40} {n}");
    }
}
