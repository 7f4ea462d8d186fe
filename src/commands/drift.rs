//! `slipway drift DIR`: compare the live cloud and clusters with the state,
//! and the stack with the state, changing nothing. Exit 0 in sync, 2 drifted,
//! 1 on error. No lock is taken unless `--lock`; an interrupted run's journal
//! is read but not settled (settling writes).

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{ctx_for, load_stack, parse_timeout, read_state, store_for, CmdError, Exit};
use crate::plan::{self, make::PlanInputs, render::leaf_diffs, Action};
use crate::providers::Registry;
use crate::value::render;

/// Version of the drift JSON document.
pub const DRIFT_FORMAT_VERSION: &str = "1";

pub struct DriftArgs {
    pub dir: PathBuf,
    pub vars: Vec<String>,
    pub state: Option<PathBuf>,
    pub json: bool,
    pub lock: bool,
    pub lock_timeout: Option<String>,
}

pub async fn run(args: &DriftArgs, registry: &Registry) -> Exit {
    let loaded = load_stack(&args.dir, &args.vars, registry)?;
    let store = store_for(&loaded.stack, args.state.as_deref()).await?;
    let path = store.location();
    let _lock = if args.lock {
        Some(
            store
                .lock("drift", parse_timeout(args.lock_timeout.as_deref())?)
                .await?,
        )
    } else {
        None
    };
    let (state, replayed) = read_state(&store, Some(&loaded.stack.name)).await?;
    let mut ctx = ctx_for(
        &loaded.stack.name,
        loaded.stack.region.clone(),
        loaded.stack.kubernetes.clone(),
    );
    ctx.clusters = super::cluster_names(&loaded.stack, &loaded.variables, state.as_ref());
    let lookups = crate::lookup::read_all(&loaded.stack, &loaded.variables, &ctx)
        .await
        .map_err(|e| CmdError::Other(e.message))?;
    ctx.clusters = super::plan::with_looked_up(&ctx.clusters, &lookups);
    let live = match &state {
        Some(s) => plan::refresh::refresh(s, registry, &ctx).await?,
        None => Default::default(),
    };
    let p = plan::make::make(PlanInputs {
        stack: &loaded.stack,
        graph: &loaded.graph,
        variables: loaded.variables.clone(),
        state: state.as_ref(),
        state_path: &path,
        state_backend: store.s3_config().cloned(),
        live: &live,
        registry,
        destroy: false,
        recovered: Vec::new(),
        replace: &[],
        lookups,
    })?;
    let pending: Vec<String> = state
        .as_ref()
        .map(|s| {
            s.pending
                .iter()
                .map(|i| format!("{} ({:?})", i.address, i.operation))
                .collect()
        })
        .unwrap_or_default();
    // Live vs state, field by field down to leaves.
    let drifted: Vec<Value> = p
        .drift
        .iter()
        .map(|d| {
            let kind = state
                .as_ref()
                .and_then(|s| s.resources.get(&d.address))
                .map(|r| r.kind.clone())
                .unwrap_or_default();
            let mut fields = Vec::new();
            for f in &d.fields {
                let mut leaves = Vec::new();
                leaf_diffs(&f.field, &f.state, &f.live, &mut leaves);
                for (path, s, l) in leaves {
                    fields.push(json!({ "field": path, "state": s, "live": l }));
                }
            }
            json!({ "address": d.address, "kind": kind, "status": d.status, "fields": fields })
        })
        .collect();
    // Stack vs state: what an apply would do beyond repairing drift.
    let stack_changes: Vec<Value> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| json!({ "address": c.address, "action": c.action, "changed": c.changed, "pending": c.pending }))
        .collect();
    let in_sync = drifted.is_empty() && stack_changes.is_empty() && pending.is_empty();
    if args.json {
        let doc = json!({
            "format_version": DRIFT_FORMAT_VERSION,
            "stack": loaded.stack.name,
            "state": { "path": path, "lineage": state.as_ref().map(|s| s.lineage.clone()), "serial": state.as_ref().map(|s| s.serial) },
            "in_sync": in_sync,
            "drift": drifted,
            "stack_changes": stack_changes,
            "interrupted": { "journal": replayed, "pending": pending },
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| CmdError::Other(e.to_string()))?
        );
    } else {
        if drifted.is_empty() {
            println!(
                "Live objects match the state ({} resources checked).",
                state.as_ref().map(|s| s.resources.len()).unwrap_or(0)
            );
        } else {
            println!("Drift: {} resource(s) differ from the state:\n", drifted.len());
            for d in &drifted {
                let status = d["status"].as_str().unwrap_or("");
                println!(
                    "  {} [{}]: {}",
                    d["address"].as_str().unwrap_or(""),
                    d["kind"].as_str().unwrap_or(""),
                    status.to_uppercase()
                );
                for f in d["fields"].as_array().into_iter().flatten() {
                    println!(
                        "      {}: {} (state) -> {} (live)",
                        f["field"].as_str().unwrap_or(""),
                        render(&f["state"], 8),
                        render(&f["live"], 8)
                    );
                }
            }
        }
        if !stack_changes.is_empty() {
            println!(
                "\nThe stack differs from the state ({} resource(s) would change on apply):",
                stack_changes.len()
            );
            for c in &stack_changes {
                let not_ready = c["pending"]
                    .as_str()
                    .map(|p| format!(" (not ready: {p})"))
                    .unwrap_or_default();
                println!(
                    "  {} {}{not_ready}",
                    c["action"].as_str().unwrap_or(""),
                    c["address"].as_str().unwrap_or("")
                );
            }
        }
        if !pending.is_empty() {
            println!(
                "\nAn interrupted run left {} operation(s) unsettled: {} (the next plan or apply settles them)",
                pending.len(),
                pending.join(", ")
            );
        }
        println!("\n{}", if in_sync { "In sync." } else { "Drifted." });
    }
    Ok(if in_sync { 0 } else { 2 })
}
