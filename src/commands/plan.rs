//! `slipway plan DIR`: settle, refresh, diff, print; optionally save the plan.

use std::path::PathBuf;

use super::{ctx_for, load_stack, open_state, parse_timeout, store_for, CmdError, Exit};
use crate::plan::{self, make::PlanInputs, Plan};
use crate::providers::Registry;
use crate::state::store::{Held, Store};
use crate::state::State;

/// Flags shared by plan, apply and destroy.
#[derive(Debug, Clone, Default)]
pub struct PlanArgs {
    pub dir: PathBuf,
    pub vars: Vec<String>,
    pub state: Option<PathBuf>,
    pub lock_timeout: Option<String>,
    pub destroy: bool,
    /// `--replace ADDR`: force these replacements.
    pub replace: Vec<String>,
    /// `--target ADDR`: plan only these and what they depend on (destroy:
    /// what depends on them).
    pub targets: Vec<String>,
    /// How long a Deployment's rollout may take.
    pub rollout_timeout: Option<std::time::Duration>,
}

/// Make a plan under a held lock; the lock is returned so apply can keep it.
pub async fn make_plan(
    args: &PlanArgs,
    operation: &str,
    registry: &Registry,
) -> Result<(Plan, Held, Option<State>, crate::providers::Ctx, Store), CmdError> {
    let loaded = load_stack(&args.dir, &args.vars, registry)?;
    super::check_region(&loaded.stack, registry).await?;
    let timeout = parse_timeout(args.lock_timeout.as_deref())?;
    let store = store_for(&loaded.stack, args.state.as_deref()).await?;
    let path = store.location();
    // Never plan (or apply) on a state this run could not lock.
    let held = store.lock(operation, timeout).await?;
    let mut ctx = ctx_for(
        &loaded.stack.name,
        loaded.stack.region.clone(),
        loaded.stack.kubernetes.clone(),
    );
    if let Some(t) = args.rollout_timeout {
        ctx.rollout_timeout = t;
    }
    ctx.clusters = super::cluster_names(&loaded.stack, &loaded.variables, None);
    let (mut state, recovered) = open_state(&store, &loaded.stack.name, registry, &ctx).await?;
    ctx.clusters = super::cluster_names(&loaded.stack, &loaded.variables, state.as_ref());
    // Lookups first: a cluster one finds is one the refresh may read from.
    let lookups = crate::lookup::read_all(&loaded.stack, &loaded.variables, &ctx)
        .await
        .map_err(|e| CmdError::Other(e.message))?;
    ctx.clusters = with_looked_up(&ctx.clusters, &lookups);
    // `[[moved]]`: the state tracks the object under its new address before
    // anything is compared (apply writes the move first).
    let mut moved = Vec::new();
    if let Some(s) = state.as_mut() {
        for m in &loaded.stack.moved {
            if s.resources.contains_key(&m.from) && !s.resources.contains_key(&m.to) {
                s.move_resource(&m.from, &m.to).map_err(CmdError::Other)?;
                moved.push((m.from.clone(), m.to.clone()));
            }
        }
    }
    let mut live = match &state {
        Some(s) => plan::refresh::refresh(s, registry, &ctx).await?,
        None => Default::default(),
    };
    for (from, to) in &moved {
        use crate::providers::k8s::render::relabel_moved;
        if let Some(Some(l)) = live.get_mut(to) {
            relabel_moved(&mut l.inputs, from, to);
            relabel_moved(&mut l.attributes, from, to);
        }
        if let Some(r) = state.as_mut().and_then(|s| s.resources.get_mut(to)) {
            relabel_moved(&mut r.inputs, from, to);
            relabel_moved(&mut r.attributes, from, to);
        }
    }
    if let Some(r) = args.replace.iter().find(|r| loaded.stack.resource(r).is_none()) {
        return Err(CmdError::Other(format!(
            "--replace {r}: the stack declares no such resource (give its address, e.g. eks_nodegroup.main)"
        )));
    }
    let mut plan = plan::make::make(PlanInputs {
        stack: &loaded.stack,
        graph: &loaded.graph,
        variables: loaded.variables.clone(),
        state: state.as_ref(),
        state_path: &path,
        state_backend: store.s3_config().cloned(),
        live: &live,
        registry,
        destroy: args.destroy,
        recovered,
        replace: &args.replace,
        lookups,
    })?;
    plan.moved = moved;
    if !args.targets.is_empty() {
        target(&mut plan, &args.targets, &loaded.stack, state.as_ref())?;
    }
    check_takeovers(&plan, state.as_ref(), registry, &ctx).await?;
    Ok((plan, held, state, ctx, store))
}

/// `--target`: keep only the changes of the targets and of what they depend
/// on (for a destroy, of what depends on them), as Terraform's -target does,
/// and say that the plan is partial.
fn target(
    plan: &mut Plan,
    targets: &[String],
    stack: &crate::stack::Stack,
    state: Option<&State>,
) -> Result<(), CmdError> {
    // A for_each resource's address targets all its instances.
    let targets: Vec<String> = targets
        .iter()
        .flat_map(|t| match stack.instances.get(t) {
            Some(all) => all.clone(),
            None => vec![t.clone()],
        })
        .collect();
    let targets = targets.as_slice();
    if let Some(t) = targets
        .iter()
        .find(|t| stack.resource(t).is_none() && !state.is_some_and(|s| s.resources.contains_key(t.as_str())))
    {
        return Err(CmdError::Other(format!(
            "--target {t}: neither the stack nor its state has this resource (give its address, e.g. vpc.main)"
        )));
    }
    let deps = |c: &plan::Change| -> Vec<String> {
        let mut d = c.dependencies.clone();
        d.extend(c.prior_dependencies.iter().cloned());
        d
    };
    let mut keep: std::collections::BTreeSet<String> = targets.iter().cloned().collect();
    loop {
        let before = keep.len();
        for c in &plan.changes {
            let d = deps(c);
            if plan.destroy {
                // What depends on a target goes with it.
                if d.iter().any(|x| keep.contains(x)) {
                    keep.insert(c.address.clone());
                }
            } else if keep.contains(&c.address) {
                keep.extend(d);
            }
        }
        if keep.len() == before {
            break;
        }
    }
    plan.changes.retain(|c| keep.contains(&c.address));
    plan.warnings.push(format!(
        "Resource targeting is in effect ({}): this plan holds only {} and may not show every change the \
         stack asks for. --target is for exceptions (recovering from an error); run a full plan afterwards",
        targets.join(", "),
        if plan.destroy {
            "the targets and what depends on them"
        } else {
            "the targets and what they depend on"
        }
    ));
    Ok(())
}

/// The Kubernetes objects (kind, namespace, name) a resource's inputs render.
fn objects_of(inputs: Option<&serde_json::Value>) -> Vec<String> {
    let manifests = inputs
        .and_then(|i| i.get("manifests"))
        .and_then(serde_json::Value::as_array);
    manifests
        .into_iter()
        .flatten()
        .filter(|m| m.is_object())
        .map(|m| crate::providers::k8s::project::id_of(std::slice::from_ref(m)))
        .collect()
}

/// A plan never takes over an object another state, tool or person made,
/// and never deletes an object another resource of the plan creates.
async fn check_takeovers(
    plan: &plan::Plan,
    state: Option<&State>,
    registry: &Registry,
    ctx: &crate::providers::Ctx,
) -> Result<(), CmdError> {
    use plan::Action;
    // A rename without `[[moved]]`: the old resource's delete would remove
    // the object the new one renders.
    for c in plan.changes.iter().filter(|c| c.action == Action::Create) {
        let made = objects_of(c.after.as_ref());
        for d in plan
            .changes
            .iter()
            .filter(|d| d.action == Action::Delete && d.kind == c.kind)
        {
            let held = objects_of(state.and_then(|s| s.resources.get(&d.address)).map(|r| &r.inputs));
            if let Some(o) = made.iter().find(|o| held.contains(o)) {
                return Err(CmdError::Other(format!(
                    "{} would create {o}, which {} (to be destroyed) holds now: applying would delete the live \
                     object. If {} was renamed to {}, say so in the stack, and the plan moves it instead:\n\n\
                     [[moved]]\nfrom = \"{}\"\nto = \"{}\"\n\nNothing was planned.",
                    c.address, d.address, d.address, c.address, d.address, c.address
                )));
            }
        }
    }
    let ctx = match state {
        Some(s) => ctx.with_lineage(&s.lineage),
        None => ctx.clone(),
    };
    for c in plan.changes.iter().filter(|c| c.action == Action::Create) {
        let (Some(kind), Some(after)) = (registry.get(&c.kind), c.after.as_ref()) else {
            continue;
        };
        kind.check_create(&ctx, &c.address, after)
            .await
            .map_err(|e| CmdError::Other(format!("{}: {e}\n  Nothing was planned.", c.address)))?;
    }
    Ok(())
}

/// What `slipway plan` writes besides the plan text.
#[derive(Debug, Default)]
pub struct PlanOutputs {
    pub out: Option<PathBuf>,
    pub json: bool,
    pub detailed_exitcode: bool,
    pub stats: bool,
    pub gitlab_report: Option<PathBuf>,
}

/// GitLab's Terraform report: a replacement counts once in create and once in delete.
pub fn gitlab_report(plan: &Plan) -> serde_json::Value {
    let s = plan.summary();
    serde_json::json!({ "create": s.add, "update": s.change, "delete": s.destroy })
}

pub async fn run(args: &PlanArgs, o: &PlanOutputs, registry: &Registry) -> Exit {
    let (out, json, detailed_exitcode, stats) = (o.out.as_deref(), o.json, o.detailed_exitcode, o.stats);
    let (mut plan, _lock, state, ctx, _store) = make_plan(args, "plan", registry).await?;
    plan.state_from_flag = args.state.is_some();
    if json {
        let doc = plan::json::to_json(&plan);
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| CmdError::Other(e.to_string()))?
        );
    } else {
        print!("{}", plan::render::for_terminal(&plan::render::render_plan(&plan)));
    }
    if stats {
        super::print_stats(&ctx);
    }
    if let Some(f) = &o.gitlab_report {
        let text = serde_json::to_string(&gitlab_report(&plan)).map_err(|e| CmdError::Other(e.to_string()))?;
        let tmp = super::super::state::file::sibling(f, ".tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, f))
            .map_err(|e| CmdError::Other(format!("cannot write the GitLab report {}: {e}", f.display())))?;
    }
    if let Some(out) = out {
        // Keyed by the stored state's secret key: only that state's holders can forge it.
        let key = state
            .as_ref()
            .filter(|s| !s.secret_key_unsaved)
            .and_then(|s| s.secret_key.as_deref());
        plan::file::withhold_sensitive(&mut plan);
        plan::file::seal(&mut plan, key)?;
        plan::file::save(out, &plan)?;
        if !json {
            println!(
                "\nSaved the plan to {}. To apply exactly it, run:\n    slipway apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}

/// The clusters a run may connect to, with those its lookups found.
pub fn with_looked_up(
    clusters: &std::sync::Arc<Vec<String>>,
    lookups: &std::collections::BTreeMap<String, serde_json::Value>,
) -> std::sync::Arc<Vec<String>> {
    let mut all = clusters.as_ref().clone();
    all.extend(crate::lookup::cluster_names(lookups));
    all.sort();
    all.dedup();
    std::sync::Arc::new(all)
}
