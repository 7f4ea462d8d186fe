//! Apply a plan: run the executor with a journal, then write the snapshot
//! once and remove the journal.

pub mod executor;
pub mod queue;
pub mod settle;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::plan::Plan;
use crate::providers::{Ctx, Registry};
use crate::stack::template;
use crate::state::journal::Record;
use crate::state::store::Store;
use crate::state::{OutputState, State};
pub use executor::{Event, Report, Step, StepKind};

/// Outputs resolved against the state; an output that cannot be resolved
/// (its resource failed) keeps its previous value.
pub fn compute_outputs(plan: &Plan, state: &State) -> BTreeMap<String, OutputState> {
    let mut out = BTreeMap::new();
    for o in &plan.outputs {
        let attrs = |a: &str| state.resources.get(a).map(|r| r.attributes.clone());
        let scope = crate::plan::make::Scope::new(&attrs, &plan.variables, &plan.locals, &plan.stack_dir)
            .with_lookups(&plan.lookups)
            .with_instances(&plan.instances);
        match template::resolve(&o.value, &scope) {
            Ok(v) if !crate::value::contains_unknown(&v) => {
                out.insert(
                    o.name.clone(),
                    OutputState {
                        value: v,
                        sensitive: o.sensitive,
                    },
                );
            }
            _ => {
                if let Some(prev) = state.outputs.get(&o.name) {
                    out.insert(o.name.clone(), prev.clone());
                }
            }
        }
    }
    out
}

/// Apply `plan` to `state` (none: first apply), persisting at `state_path`.
pub async fn apply_plan(
    plan: Plan,
    state: Option<State>,
    store: &Store,
    registry: &Registry,
    ctx: &Ctx,
    parallelism: usize,
    default_timeout: Option<std::time::Duration>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(State, Report), String> {
    let mut base = state.unwrap_or_else(|| State::new(&plan.stack));
    if !plan.moved.is_empty() {
        apply_moves(&plan, &mut base, store, registry, ctx).await?;
    }
    if !plan.has_changes() {
        let outputs = compute_outputs(&plan, &base);
        if outputs != base.outputs {
            base.outputs = outputs;
            base.serial += 1;
            store.write(&base).await.map_err(|e| e.to_string())?;
        }
        return Ok((base, Report::default()));
    }
    let begin = Record::Begin {
        lineage: base.lineage.clone(),
        serial: base.serial,
        stack: base.stack.clone(),
    };
    let writer = store.journal(begin).await.map_err(|e| e.to_string())?;
    let plan = Arc::new(plan);
    // What this run creates belongs to this state.
    let ctx = &ctx.with_lineage(&base.lineage);
    let (mut state, report, writer) = executor::execute(
        plan.clone(),
        base,
        registry.clone(),
        ctx.clone(),
        writer,
        parallelism,
        default_timeout,
        on_event,
    )
    .await?;
    state.outputs = compute_outputs(&plan, &state);
    // The writer's thread may still be finishing a remote write: join it off the runtime.
    let closed = tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap_or_else(|_| Err("journal writer panicked".into()));
    state.serial += 1;
    store.write(&state).await.map_err(|e| match &closed {
        Ok(_) => format!(
            "{e}\n  Everything done so far is in the journal {}; the next run replays it.",
            store.journal_location()
        ),
        Err(j) => format!(
            "{e}\n  The journal {} could not be written either ({j}). Every cloud call was preceded by a \
             durable intent, so the next run replays what reached the journal and looks each pending \
             object up by its ownership tags: adopted if it exists, forgotten if not. Nothing is orphaned.",
            store.journal_location()
        ),
    })?;
    // The snapshot now holds everything; a failed journal write is reported
    // after the snapshot is safe.
    store.remove_journal().await.map_err(|e| e.to_string())?;
    closed.map_err(|e| format!("the journal could not be written: {e}"))?;
    Ok((state, report))
}

/// The value of every output for printing, sensitive ones hidden.
pub fn display_outputs(outputs: &BTreeMap<String, OutputState>) -> Vec<(String, Value)> {
    outputs
        .iter()
        .map(|(k, o)| {
            (
                k.clone(),
                if o.sensitive {
                    Value::String("(sensitive)".into())
                } else {
                    o.value.clone()
                },
            )
        })
        .collect()
}

/// Write the plan's `[[moved]]` entries into the state before anything
/// else runs (a move already in the state is skipped), and the new address
/// into each moved object's ownership tags.
async fn apply_moves(
    plan: &Plan,
    base: &mut State,
    store: &Store,
    registry: &Registry,
    ctx: &Ctx,
) -> Result<(), String> {
    let ctx = ctx.with_lineage(&base.lineage);
    for (from, to) in &plan.moved {
        if base.resources.contains_key(from) && !base.resources.contains_key(to) {
            base.move_resource(from, to)?;
        }
    }
    base.serial += 1;
    store.write(base).await.map_err(|e| e.to_string())?;
    for (from, to) in &plan.moved {
        let Some(r) = base.resources.get(to) else { continue };
        let Some(kind) = registry.get(&r.kind) else { continue };
        let live = crate::providers::Live {
            id: r.id.clone(),
            inputs: r.inputs.clone(),
            attributes: r.attributes.clone(),
        };
        kind.retag(&ctx, to, &live, Some(from))
            .await
            .map_err(|e| format!("{to}: writing its new address into the object's ownership tags: {e}"))?;
    }
    Ok(())
}
