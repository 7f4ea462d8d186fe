//! `slipway apply DIR|PLANFILE` and `slipway destroy DIR`.

use std::io::{BufRead, Write};
use std::path::Path;

use super::plan::{make_plan, PlanArgs};
use super::{ctx_for, parse_timeout, read_state, CmdError, Exit};
use crate::apply::{self, Event, Report, StepKind};
use crate::plan::{self, Plan};
use crate::providers::Registry;
use crate::state::store::Store;

fn confirm(question: &str) -> Result<(), CmdError> {
    print!("\n{question}\n  slipway will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
    if n == 0 {
        println!();
        return Err(CmdError::Other(
            "no answer on standard input, so nothing was applied; pass --auto-approve to apply without asking".into(),
        ));
    }
    if line.trim() != "yes" {
        return Err(CmdError::Other(
            "cancelled: the answer was not 'yes'; nothing was changed".into(),
        ));
    }
    println!();
    Ok(())
}

/// Where each resource of the plan is declared, for errors.
type Declared = std::collections::HashMap<String, String>;

fn at(declared: &Declared, address: &str) -> String {
    declared
        .get(address)
        .map(|l| format!(" (declared at {l})"))
        .unwrap_or_default()
}

fn print_event(e: Event<'_>, declared: &Declared) {
    match e {
        Event::Started(s) => println!("{}: {}...", s.address, s.kind.verb().0),
        Event::Finished(s, t, id) => match id {
            Some(id) => println!(
                "{}: {} complete after {}s [id={id}]",
                s.address,
                s.kind.verb().1,
                t.as_secs()
            ),
            None => println!("{}: {} complete after {}s", s.address, s.kind.verb().1, t.as_secs()),
        },
        // A cloud's error may echo what it was sent.
        Event::Failed(s, err) => eprintln!(
            "{}: {} failed{}: {}",
            s.address,
            s.kind.verb().1,
            at(declared, &s.address),
            crate::sensitive::redact(err)
        ),
        Event::Note(a, t) => println!("{a}: {}", crate::sensitive::redact(t)),
        Event::StillRunning(s, t, status) => {
            // What the step waits for now: a status, a rollout's replica
            // counts, or the error being retried (`DependencyViolation: retry 7`).
            let status = status
                .map(|st| format!(" ({})", crate::sensitive::redact(st)))
                .unwrap_or_default();
            println!(
                "{}: Still {}... [{}s elapsed]{status}",
                s.address,
                s.kind.verb().0.to_lowercase(),
                t.as_secs()
            )
        }
    }
}

fn summarize(report: &Report, state: &crate::state::State, destroy: bool, declared: &Declared) -> u8 {
    let (mut add, mut change, mut destroyed) = (0, 0, 0);
    for s in &report.done {
        match s.kind {
            StepKind::Create => add += 1,
            StepKind::Update => change += 1,
            StepKind::Delete => destroyed += 1,
        }
    }
    if report.interrupted && report.failed.is_empty() {
        eprintln!(
            "\nInterrupted: {} done ({add} added, {change} changed, {destroyed} destroyed), {} not started. \
             The state holds every finished step and the lock is released; run apply again to continue.",
            report.done.len(),
            report.skipped.len()
        );
        return 130;
    }
    if report.failed.is_empty() {
        let what = if destroy { "Destroy" } else { "Apply" };
        println!("\n{what} complete! Resources: {add} added, {change} changed, {destroyed} destroyed.");
        let outs = apply::display_outputs(&state.outputs);
        if !outs.is_empty() {
            println!("\nOutputs:\n");
            for (k, v) in outs {
                println!("{k} = {}", crate::value::render(&v, 0));
            }
        }
        return 0;
    }
    eprintln!(
        "\nApply failed: {} step(s) failed, {} done ({add} added, {change} changed, {destroyed} destroyed), {} not started.",
        report.failed.len(),
        report.done.len(),
        report.skipped.len()
    );
    for (s, e) in &report.failed {
        eprintln!(
            "  failed:      {} ({:?}){}: {}",
            s.address,
            s.kind,
            at(declared, &s.address),
            crate::sensitive::redact(e)
        );
    }
    const SHOW: usize = 20;
    for s in report.skipped.iter().take(SHOW) {
        eprintln!("  not started: {} ({:?})", s.address, s.kind);
    }
    if report.skipped.len() > SHOW {
        eprintln!("  ... and {} more not started", report.skipped.len() - SHOW);
    }
    eprintln!("The state holds everything that finished. Fix the failure and run apply again.");
    1
}

/// How an apply runs: parallelism and the default operation time limit.
#[derive(Debug, Clone)]
pub struct RunOpts {
    pub parallelism: usize,
    pub timeout: Option<std::time::Duration>,
    /// How long a Deployment's rollout may take (default 5 minutes).
    pub rollout_timeout: Option<std::time::Duration>,
    /// Write when each step started and finished (seconds from the start) as JSON.
    pub timings: Option<std::path::PathBuf>,
}

async fn execute(
    plan: Plan,
    state: Option<crate::state::State>,
    store: &Store,
    opts: RunOpts,
    registry: &Registry,
    clusters: std::sync::Arc<Vec<String>>,
) -> Exit {
    // What the steps will read from this machine is there, before the first
    // call: a missing secret stops the run with nothing made or written.
    for c in plan.changes.iter().filter(|c| {
        matches!(
            c.action,
            crate::plan::Action::Create | crate::plan::Action::Update | crate::plan::Action::Replace
        )
    }) {
        if let (Some(kind), Some(after)) = (registry.get(&c.kind), &c.after) {
            if let Err(e) = kind.check_local_inputs(after) {
                let field: String = e.path.iter().map(|s| s.to_string()).collect();
                return Err(CmdError::Other(format!(
                    "{}{field}: {}; nothing was applied",
                    c.address, e.message
                )));
            }
        }
    }
    let mut ctx = ctx_for(&plan.stack, plan.region.clone(), plan.kubernetes.clone());
    ctx.clusters = clusters;
    if let Some(t) = opts.rollout_timeout {
        ctx.rollout_timeout = t;
    }
    let destroy = plan.destroy;
    let declared: Declared = plan
        .changes
        .iter()
        .filter_map(|c| c.declared_at.clone().map(|d| (c.address.clone(), d)))
        .collect();
    let (state, report) = {
        let t0 = std::time::Instant::now();
        let mut started: std::collections::HashMap<(String, String), f64> = Default::default();
        let mut rows: Vec<serde_json::Value> = Vec::new();
        let mut on_event = |e: Event<'_>| {
            let key = |s: &apply::Step| (s.address.clone(), format!("{:?}", s.kind).to_lowercase());
            match &e {
                Event::Started(s) => {
                    started.insert(key(s), t0.elapsed().as_secs_f64());
                }
                Event::Finished(s, _, _) | Event::Failed(s, _) => {
                    let k = key(s);
                    let start = started.get(&k).copied().unwrap_or(0.0);
                    rows.push(serde_json::json!({ "address": k.0, "step": k.1, "started_s": start, "finished_s": t0.elapsed().as_secs_f64(), "ok": matches!(e, Event::Finished(..)) }));
                }
                _ => {}
            }
            print_event(e, &declared);
        };
        let r = apply::apply_plan(
            plan,
            state,
            store,
            registry,
            &ctx,
            opts.parallelism,
            opts.timeout,
            &mut on_event,
        )
        .await;
        if let Some(f) = &opts.timings {
            let doc = serde_json::json!({ "wall_s": t0.elapsed().as_secs_f64(), "steps": rows });
            std::fs::write(f, serde_json::to_vec_pretty(&doc).unwrap_or_default())
                .map_err(|e| CmdError::Other(format!("cannot write timings {}: {e}", f.display())))?;
        }
        r
    }?;
    Ok(summarize(&report, &state, destroy, &declared))
}

/// `slipway apply DIR` or `slipway destroy DIR`.
pub async fn run_dir(args: &PlanArgs, auto_approve: bool, opts: RunOpts, registry: &Registry) -> Exit {
    let op = if args.destroy { "destroy" } else { "apply" };
    let (plan, _lock, state, ctx, store) = make_plan(args, op, registry).await?;
    print!("{}", plan::render::for_terminal(&plan::render::render_plan(&plan)));
    if !plan.has_changes() {
        // Outputs may still have changed (a new output over unchanged resources).
        return execute(plan, state, &store, opts, registry, ctx.clusters.clone()).await;
    }
    if !auto_approve {
        let q = if args.destroy {
            "Do you really want to destroy all resources?"
        } else {
            "Do you want to perform these actions?"
        };
        confirm(q)?;
    }
    execute(plan, state, &store, opts, registry, ctx.clusters.clone()).await
}

/// `slipway apply PLANFILE`: apply a saved plan exactly, or refuse it when the
/// state moved on since it was made.
pub async fn run_saved(
    file: &Path,
    vars: &[String],
    lock_timeout: Option<&str>,
    opts: RunOpts,
    registry: &Registry,
) -> Exit {
    let mut plan = plan::file::load(file)?;
    let timeout = parse_timeout(lock_timeout)?;
    let stale = |why: String| {
        CmdError::Other(format!(
            "the saved plan {} is stale: {why}.\n  Nothing was applied. Make a new plan with `slipway plan --out`.",
            file.display()
        ))
    };
    let refused = |why: String| {
        CmdError::Other(format!(
            "the saved plan {} cannot be applied: {why}.\n  Nothing was applied. Make a new plan with `slipway plan --out`.",
            file.display()
        ))
    };
    // A plan file is an artifact someone could have changed: where the stack,
    // the state, the region and the cluster are comes from here, not from it.
    let cwd = std::env::current_dir().unwrap_or_default();
    if !super::inside_roots(&plan.stack_dir, &cwd) {
        return Err(refused(format!(
            "its stack {} is outside the working directory",
            plan.stack_dir.display()
        )));
    }
    let mut stack = crate::stack::load::load(&plan.stack_dir)?;
    crate::providers::common::name_moves(&stack.moved_pairs());
    // A saved plan carries its variables, except the sensitive ones: those
    // (and only those) come from --var or SLIPWAY_VAR_name again.
    let sensitive_values = {
        let cli = crate::stack::variables::parse_cli_vars(vars)?;
        if let Some((name, _)) = cli
            .iter()
            .find(|(n, _)| !stack.variables.get(n).is_some_and(|v| v.sensitive))
        {
            return Err(refused(format!(
                "--var {name}: a saved plan carries its variables; only sensitive ones are given again"
            )));
        }
        let mut only = stack.clone();
        only.variables
            .retain(|n, v| v.sensitive && plan.sensitive_variables.contains_key(n));
        only.values.retain(|(n, _, _)| only.variables.contains_key(n));
        crate::stack::variables::resolve(&only, &cli, &|k| std::env::var(k).ok())?
    };
    if stack.name != plan.stack {
        return Err(refused(format!(
            "it is for stack {}, but {} loads as {} here (give the same --env as the plan)",
            plan.stack,
            plan.stack_dir.display(),
            stack.name
        )));
    }
    let store = if plan.state_from_flag {
        if plan.state_backend.is_some() || !super::inside_roots(&plan.state_path, &cwd) {
            return Err(refused(format!(
                "its state {} is outside the working directory",
                plan.state_path.display()
            )));
        }
        Store::Local(plan.state_path.clone())
    } else {
        let derived = super::store_for(&stack, None).await?;
        if derived.location() != plan.state_path {
            return Err(refused(format!(
                "it names the state {}, but the stack's state is {}",
                plan.state_path.display(),
                derived.location().display()
            )));
        }
        derived
    };
    let _lock = store.lock("apply", timeout).await?;
    let (state, replayed) = read_state(&store, Some(&plan.stack)).await?;
    if replayed || state.as_ref().is_some_and(|s| !s.pending.is_empty()) {
        return Err(stale(
            "an interrupted run left work to settle in the state since".into(),
        ));
    }
    match (&plan.state_lineage, &state) {
        (None, Some(s)) => {
            return Err(stale(format!(
                "it was made from an empty state, but {} has since been applied (serial {})",
                plan.state_path.display(),
                s.serial
            )))
        }
        (Some(l), None) => {
            return Err(stale(format!(
                "it was made from state lineage {l}, but {} no longer exists",
                plan.state_path.display()
            )))
        }
        (Some(l), Some(s)) if *l != s.lineage => {
            return Err(stale(format!(
                "it was made from state lineage {l}, but {} has lineage {}",
                plan.state_path.display(),
                s.lineage
            )))
        }
        (Some(_), Some(s)) if plan.state_serial != s.serial => {
            return Err(stale(format!(
                "it was made at state serial {}, but {} is now at serial {}",
                plan.state_serial,
                plan.state_path.display(),
                s.serial
            )))
        }
        _ => {}
    }
    let key = state
        .as_ref()
        .filter(|s| !s.secret_key_unsaved)
        .and_then(|s| s.secret_key.as_deref());
    plan::file::check_seal(&plan, key).map_err(refused)?;
    // The seal pins the stack's files: each config is the stack's, with the
    // secret strings the file only holds as hashes. Modules and for_each
    // expand with the plan's variables, as they did for the plan.
    {
        let mut vars = plan.variables.clone();
        vars.extend(sensitive_values.clone());
        crate::stack::module::expand(&mut stack, &vars)?;
        crate::stack::for_each::expand(&mut stack, &vars)?;
    }
    for c in plan.changes.iter_mut().filter(|c| c.config.is_some()) {
        if let Some(r) = stack.resources.iter().find(|r| r.address == c.address) {
            if let Some(kind) = registry.get(&r.kind) {
                let _ = kind.check(&r.config); // traces its secret strings again
            }
            c.config = Some(r.config.clone());
        }
    }
    let check = plan.state_lineage.is_some();
    plan::file::restore_sensitive(&mut plan, &sensitive_values, check).map_err(refused)?;
    crate::sensitive::declare(&stack, &plan.variables);
    // The seal covers the plan's region and kubeconfig; they are the stack's, read again.
    plan.region = stack.region.clone();
    plan.kubernetes = stack.kubernetes.clone();
    let clusters = super::cluster_names(&stack, &plan.variables, state.as_ref());
    let clusters = super::plan::with_looked_up(&clusters, &plan.lookups);
    print!("{}", plan::render::for_terminal(&plan::render::render_plan(&plan)));
    execute(plan, state, &store, opts, registry, clusters).await
}
