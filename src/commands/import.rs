//! `slipway import DIR ADDR ID`: bring one existing cloud object under a
//! resource already declared in the stack, like `terraform import`. Only
//! reads the cloud; the resource is protected from destroy and replacement
//! until the stack says `protect = false`.

use std::path::PathBuf;

use serde_json::json;

use super::{ctx_for, load_stack, open_state, parse_timeout, state_path, CmdError, Exit};
use crate::providers::{ReadRequest, Registry};
use crate::state::{file, lock, ResourceState, State};

pub struct ImportArgs {
    pub dir: PathBuf,
    pub address: String,
    pub id: String,
    pub vars: Vec<String>,
    pub state: Option<PathBuf>,
    pub lock_timeout: Option<String>,
}

/// Kinds whose objects are named by the config: applying adopts them, no import needed.
const APPLY_ADOPTS: &[&str] = &["app", "ci_deployer", "registry_secret", "data"];

pub async fn run(a: &ImportArgs, registry: &Registry) -> Exit {
    let loaded = load_stack(&a.dir, &a.vars, registry)?;
    let r = loaded.stack.resource(&a.address).ok_or_else(|| {
        let hint =
            crate::stack::error::did_you_mean(&a.address, loaded.stack.resources.iter().map(|r| r.address.as_str()))
                .map(|s| format!(" Did you mean `{s}`?"))
                .unwrap_or_default();
        CmdError::Other(format!(
            "`{}` is not declared in {}: declare it first, then import.{hint}",
            a.address,
            a.dir.display()
        ))
    })?;
    if r.kind.starts_with("k8s_") || APPLY_ADOPTS.contains(&r.kind.as_str()) {
        return Err(CmdError::Other(format!(
            "{} is a {} resource: its objects are named by the config, so `slipway apply` adopts existing ones; nothing to import",
            a.address, r.kind
        )));
    }
    let kind = registry
        .get(&r.kind)
        .ok_or_else(|| CmdError::Other(format!("unknown kind `{}`", r.kind)))?;
    let path = state_path(&loaded.stack, a.state.as_deref());
    let _lock = lock::acquire(&path, "import", parse_timeout(a.lock_timeout.as_deref())?)?;
    let ctx = ctx_for(
        &loaded.stack.name,
        loaded.stack.region.clone(),
        loaded.stack.kubernetes.clone(),
    );
    let (state, _) = open_state(&path, &loaded.stack.name, registry, &ctx).await?;
    let mut state = state.unwrap_or_else(|| State::new(&loaded.stack.name));
    if let Some(have) = state.resources.get(&a.address) {
        return Err(CmdError::Other(format!(
            "{} is already in the state (ID {}); `slipway state rm {}` first to import another object",
            a.address, have.id, a.address
        )));
    }
    let inputs = kind.complete(&loaded.stack.name, &a.address, &r.config);
    let attributes = json!({});
    let req = ReadRequest {
        address: &a.address,
        id: &a.id,
        inputs: &inputs,
        attributes: &attributes,
    };
    let live = kind
        .read_many(&ctx, &[req])
        .await
        .map_err(|e| CmdError::Other(format!("reading {} {}: {e}", r.kind, a.id)))?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| {
            CmdError::Other(format!(
                "no {} with ID {} was found; nothing was imported",
                r.kind, a.id
            ))
        })?;
    state.resources.insert(
        a.address.clone(),
        ResourceState {
            kind: r.kind.clone(),
            id: live.id.clone(),
            inputs: live.inputs,
            attributes: live.attributes,
            dependencies: loaded.graph.dependencies(&a.address),
            sensitive_hashes: Default::default(),
            protect: r.protect != Some(false),
        },
    );
    state.serial += 1;
    file::write(&path, &state)?;
    println!("Imported {} ({}). The cloud was not changed.", a.address, live.id);
    if r.protect != Some(false) {
        println!(
            "It is protected: destroy and replacement are refused until [{}] says `protect = false`.",
            a.address
        );
    }
    println!(
        "Run `slipway plan {}` to see how it differs from the stack.",
        a.dir.display()
    );
    Ok(0)
}
