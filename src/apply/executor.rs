//! The apply executor: turn a plan into steps (create, update, delete, delete
//! of a deposed object) with their order, and run each step as soon as its
//! dependencies are done, at most `parallelism` at once. Every intent is made
//! durable in the journal before its cloud call; every result is journaled
//! as it arrives. On a failure nothing new starts and running steps finish.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

use super::queue::DependencyQueue;
use crate::plan::{Action, Plan};
use crate::providers::{Ctx, Live, Registry};
use crate::stack::template;
use crate::state::journal::{self, Record, Writer};
use crate::state::{now, DeposedObject, Intent, Operation, ResourceState, State};
use crate::value::conforms;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    Create,
    Update,
    Delete,
}

impl StepKind {
    pub fn verb(self) -> (&'static str, &'static str) {
        match self {
            StepKind::Create => ("Creating", "Creation"),
            StepKind::Update => ("Modifying", "Modifications"),
            StepKind::Delete => ("Destroying", "Destruction"),
        }
    }
}

/// One unit of work: a step on the change at `change` in the plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub change: usize,
    pub kind: StepKind,
    pub address: String,
}

/// What the executor reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    Started(&'a Step),
    Finished(&'a Step, Duration, Option<&'a str>),
    Failed(&'a Step, &'a str),
    /// With the last status its wait saw.
    StillRunning(&'a Step, Duration, Option<&'a str>),
    /// Something a person should know (an adopted object, a deleted duplicate).
    Note(&'a str, &'a str),
}

/// What happened, step by step.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<Step>,
    pub failed: Vec<(Step, String)>,
    pub skipped: Vec<Step>,
    /// Stopped by SIGINT/SIGTERM: running steps finished, no new one started.
    pub interrupted: bool,
}

/// Build the steps of a plan and the order between them.
pub fn steps(plan: &Plan) -> Result<(Vec<Step>, Vec<(usize, usize)>), String> {
    let mut steps = Vec::new();
    // address -> step index of its create/update, and of its (non-deposed) delete.
    let mut apply_of: HashMap<&str, usize> = HashMap::new();
    let mut delete_of: HashMap<&str, usize> = HashMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        let mut push = |kind| {
            steps.push(Step {
                change: i,
                kind,
                address: c.address.clone(),
            });
            steps.len() - 1
        };
        match c.action {
            Action::NoOp => {}
            Action::Create => {
                apply_of.insert(&c.address, push(StepKind::Create));
            }
            Action::Update => {
                apply_of.insert(&c.address, push(StepKind::Update));
            }
            Action::Replace => {
                let d = push(StepKind::Delete);
                delete_of.insert(&c.address, d);
                apply_of.insert(&c.address, push(StepKind::Create));
            }
            // A deposed object's dependents already moved to the new object.
            Action::Delete if c.deposed => {
                push(StepKind::Delete);
            }
            Action::Delete => {
                delete_of.insert(&c.address, push(StepKind::Delete));
            }
        }
    }
    let mut edges = Vec::new();
    // Dependents of each address in the state, for delete order.
    let mut prior_dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in &plan.changes {
        for d in &c.prior_dependencies {
            prior_dependents.entry(d.as_str()).or_default().push(&c.address);
        }
    }
    let action_of: HashMap<&str, Action> = plan
        .changes
        .iter()
        .filter(|c| !c.deposed)
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    for c in &plan.changes {
        let addr = c.address.as_str();
        if let Some(&a) = apply_of.get(addr) {
            // A create or update waits for its dependencies' creates and updates.
            for d in &c.dependencies {
                if let Some(&b) = apply_of.get(d.as_str()) {
                    edges.push((b, a));
                }
            }
        }
        if c.action == Action::Replace {
            let (d, a) = (delete_of[addr], apply_of[addr]);
            if c.create_before_destroy {
                // New object first; the old one goes once its dependents moved over.
                edges.push((a, d));
                for y in prior_dependents.get(addr).into_iter().flatten() {
                    if let Some(&ya) = apply_of.get(y) {
                        edges.push((ya, d));
                    }
                }
            } else {
                edges.push((d, a));
            }
        }
        if let (Some(&d), false) = (delete_of.get(addr), c.deposed) {
            // A delete waits for the deletes of what depended on it, and for the
            // updates of dependents that stay (they stop referring to it first).
            for y in prior_dependents.get(addr).into_iter().flatten() {
                if let Some(&yd) = delete_of.get(y) {
                    if yd != d {
                        edges.push((yd, d));
                    }
                }
                if c.action == Action::Delete {
                    if let Some(&ya) = apply_of.get(y) {
                        if action_of.get(y) == Some(&Action::Update) {
                            edges.push((ya, d));
                        }
                    }
                }
            }
        }
    }
    Ok((steps, edges))
}

/// Run a cloud call with a time limit. On timeout the intent stays pending:
/// the operation may still finish in the cloud, and the next run settles it.
async fn within<T>(
    limit: Option<Duration>,
    address: &str,
    op: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    match limit {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| {
            let last = crate::providers::wait::PROGRESS
                .try_with(|p| p.lock().ok().and_then(|g| g.clone()))
                .ok()
                .flatten()
                .map(|s| format!(" (last status: {s})"))
                .unwrap_or_default();
            format!(
                "{op} of {address} timed out after {}{last} (timeouts.{op} or --timeout); it may still finish in the cloud, and the next run finds it by its tags",
                humantime::format_duration(d)
            )
        }),
    }
}

struct Shared {
    /// `--timeout`: the limit of every operation without its own `timeouts`.
    default_timeout: Option<Duration>,
    plan: Arc<Plan>,
    /// Notes from running steps, printed by the main loop.
    notes: Mutex<Vec<(String, String)>>,
    state: Mutex<State>,
    journal: Writer,
    registry: Registry,
    ctx: Ctx,
}

impl Shared {
    fn note(&self, address: &str, text: String) {
        if let Ok(mut n) = self.notes.lock() {
            n.push((address.to_string(), text));
        }
    }

    fn limit(&self, c: &crate::plan::Change, op: &str) -> Option<Duration> {
        c.timeouts
            .get(op)
            .map(|ms| Duration::from_millis(*ms))
            .or(self.default_timeout)
    }

    /// Apply a record to the state in memory and append it to the journal, in
    /// one critical section so that both see the same order.
    fn record(&self, rec: Record) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        journal::apply(&mut s, &rec);
        self.journal.append(rec);
    }

    async fn intent(&self, step: &Step, kind: &str, op: Operation, id: Option<String>) -> Result<(), String> {
        self.intent_attempt(step, kind, op, id, None).await
    }

    async fn intent_attempt(
        &self,
        step: &Step,
        kind: &str,
        op: Operation,
        id: Option<String>,
        attempt: Option<String>,
    ) -> Result<(), String> {
        let rec = Record::Intent {
            intent: Intent {
                address: step.address.clone(),
                kind: kind.to_string(),
                operation: op,
                started: now(),
                id,
                attempt,
            },
        };
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            journal::apply(&mut s, &rec);
        }
        self.journal
            .durable(rec)
            .await
            .map_err(|e| format!("cannot record the intent, nothing was done: {e}"))
    }

    /// What references to `address` read. A stored object holds sensitive
    /// strings as hashes; the plan's attributes for it carry this run's real
    /// values, which stand in for the hashes they match.
    fn attributes(&self, address: &str) -> Option<Value> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stored = s.resources.get(address).map(|r| r.attributes.clone())?;
        match self
            .plan
            .changes
            .iter()
            .find(|c| c.address == address)
            .and_then(|c| c.after_attributes.as_ref())
        {
            Some(planned) => Some(crate::sensitive::restore(&stored, planned)),
            None => Some(stored),
        }
    }
}

/// The path of the first string in a resolved config that is a stored hash
/// (outside the kind's own secret-hash fields): sending it to the cloud
/// would set a password or an environment variable to the hash.
fn hash_in_config(v: &Value, own: &[&str]) -> Option<String> {
    fn walk(v: &Value, path: String, out: &mut Option<String>) {
        if out.is_some() {
            return;
        }
        match v {
            Value::String(s) if s.starts_with("hmac-sha256:") => *out = Some(path),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, format!("{path}[{i}]"), out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| walk(x, format!("{path}.{k}"), out)),
            _ => {}
        }
    }
    let mut out = None;
    match v {
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !own.contains(&k.as_str()))
            .for_each(|(k, x)| walk(x, format!(".{k}"), &mut out)),
        other => walk(other, String::new(), &mut out),
    }
    out
}

async fn run_step(sh: Arc<Shared>, step: Step) -> Result<Option<String>, String> {
    let c = &sh.plan.changes[step.change];
    let kind = sh
        .registry
        .get(&c.kind)
        .ok_or_else(|| format!("unknown kind `{}`", c.kind))?
        .clone();
    let resolve = || -> Result<Value, String> {
        let config = c.config.as_ref().ok_or("no config in plan")?;
        let attrs = |a: &str| sh.attributes(a);
        let scope = crate::plan::make::Scope::new(&attrs, &sh.plan.variables, &sh.plan.locals, &sh.plan.stack_dir)
            .with_lookups(&sh.plan.lookups)
            .with_instances(&sh.plan.instances);
        let v = template::resolve(config, &scope)?;
        if let Err(e) = kind.check(&v) {
            let field: String = e.path.iter().map(|s| s.to_string()).collect();
            return Err(format!("{}{field}: {}", step.address, e.message));
        }
        let v = kind.complete(&sh.plan.stack, &step.address, &v);
        if let Some(field) = hash_in_config(&v, kind.sensitive_fields()) {
            return Err(format!(
                "{}{field} reads a sensitive value that slipway keeps only as a hash; \
                 make a new plan with the sensitive variables set",
                step.address
            ));
        }
        if let Some(planned) = &c.after {
            let (planned, now) = (crate::sensitive::hide(planned), crate::sensitive::hide(&v));
            if !conforms(&planned, &now) {
                return Err(format!(
                    "the resolved config differs from the plan (planned {}, now {}); make a new plan",
                    crate::sensitive::shown(&planned),
                    crate::sensitive::shown(&now)
                ));
            }
        }
        Ok(v)
    };
    let record_live = |live: Live| {
        let id = live.id.clone();
        sh.record(Record::Done {
            address: step.address.clone(),
            resource: ResourceState {
                kind: c.kind.clone(),
                id: live.id,
                inputs: live.inputs,
                attributes: live.attributes,
                dependencies: c.dependencies.clone(),
                sensitive_hashes: Default::default(),
                protect: c.protect,
            },
        });
        id
    };
    match step.kind {
        StepKind::Create => {
            let config = resolve()?;
            if c.action == Action::Replace && c.create_before_destroy {
                let prior = sh
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .resources
                    .get(&step.address)
                    .cloned();
                if let Some(p) = prior {
                    sh.record(Record::Deposed {
                        object: DeposedObject {
                            address: step.address.clone(),
                            resource: p,
                        },
                    });
                }
            }
            // The attempt's token is durable before the call and carried by
            // what the call makes: only objects with it are ever adopted or
            // deleted as duplicates of this create.
            let attempt = uuid::Uuid::new_v4().simple().to_string();
            sh.intent_attempt(&step, &c.kind, Operation::Create, None, Some(attempt.clone()))
                .await?;
            let ctx = sh.ctx.with_attempt(Some(attempt));
            let created = within(
                sh.limit(c, "create"),
                &step.address,
                "create",
                kind.create(&ctx, &step.address, &config),
            )
            .await?;
            failpoint("after-create", &step.address);
            // Nothing the state tracks (under any address) is ever a duplicate.
            let tracked_ids = || -> Vec<String> {
                let s = sh.state.lock().unwrap_or_else(|e| e.into_inner());
                let tracked = s.resources.iter().filter(|(a, _)| **a != step.address).map(|(_, r)| r);
                s.deposed
                    .iter()
                    .map(|d| &d.resource)
                    .chain(tracked)
                    .map(|r| r.id.clone())
                    .collect()
            };
            match created {
                Ok(live) => {
                    let id = record_live(live);
                    if kind.may_duplicate() {
                        // A create whose answer was lost and was retried (by the SDK or by
                        // us) may have made a second object where the API has no
                        // idempotency: keep the recorded one, delete the others.
                        match kind.find_owned(&ctx, &step.address).await {
                            Ok(found) => {
                                let known = tracked_ids();
                                for extra in found.into_iter().filter(|l| l.id != id && !known.contains(&l.id)) {
                                    match kind.delete(&sh.ctx, &step.address, &extra.id, &extra.attributes).await {
                                        Ok(()) => sh.note(
                                            &step.address,
                                            format!("deleted duplicate {} left by a retried create", extra.id),
                                        ),
                                        Err(e) => sh.note(
                                            &step.address,
                                            format!("could not delete duplicate {}: {e}", extra.id),
                                        ),
                                    }
                                }
                            }
                            Err(e) => sh.note(&step.address, format!("could not check for duplicates: {e}")),
                        }
                    }
                    Ok(Some(id))
                }
                Err(e) if e.never_acted() => {
                    sh.record(Record::Cleared {
                        address: step.address.clone(),
                        operation: Operation::Create,
                    });
                    Err(e.to_string())
                }
                Err(e) => {
                    // The call may have failed after the object was made (a lost
                    // answer, then "already exists" on retry): look for it.
                    match kind.find_owned(&ctx, &step.address).await {
                        Ok(found) => {
                            let known = tracked_ids();
                            let mut fresh: Vec<Live> = found.into_iter().filter(|l| !known.contains(&l.id)).collect();
                            if fresh.is_empty() {
                                sh.record(Record::Cleared {
                                    address: step.address.clone(),
                                    operation: Operation::Create,
                                });
                                return Err(e.to_string());
                            }
                            let adopt = fresh.remove(0);
                            for extra in fresh {
                                if kind
                                    .delete(&sh.ctx, &step.address, &extra.id, &extra.attributes)
                                    .await
                                    .is_ok()
                                {
                                    sh.note(
                                        &step.address,
                                        format!("deleted duplicate {} left by a retried create", extra.id),
                                    );
                                }
                            }
                            let id = record_live(adopt.clone());
                            sh.note(&step.address, format!("the create answered \"{e}\", but {id} exists with this resource's ownership tags: adopted it"));
                            // A create that failed half-way may have skipped steps: converge.
                            match kind.update(&sh.ctx, &step.address, &adopt, &config).await {
                                Ok(l) => Ok(Some(record_live(l))),
                                Err(e2) => Err(format!("{e}; adopted {id} but could not bring it to the config: {e2}")),
                            }
                        }
                        // Unknown outcome: the intent stays pending for the next run to settle.
                        Err(e2) => Err(format!(
                            "{e} (and looking for a half-made object failed: {e2}; the next run will settle it)"
                        )),
                    }
                }
            }
        }
        StepKind::Update => {
            let config = resolve()?;
            let prior = {
                let s = sh.state.lock().unwrap_or_else(|e| e.into_inner());
                s.resources.get(&step.address).cloned()
            }
            .ok_or("the resource vanished from the state")?;
            sh.intent(&step, &c.kind, Operation::Update, Some(prior.id.clone()))
                .await?;
            // The refreshed object the plan was made against (so drift gets
            // repaired), else what the state holds.
            let live = Live {
                id: prior.id.clone(),
                inputs: c.before.clone().unwrap_or_else(|| prior.inputs.clone()),
                attributes: c.before_attributes.clone().unwrap_or_else(|| prior.attributes.clone()),
            };
            match within(
                sh.limit(c, "update"),
                &step.address,
                "update",
                kind.update(&sh.ctx, &step.address, &live, &config),
            )
            .await?
            {
                Ok(l) => Ok(Some(record_live(l))),
                Err(e) => {
                    sh.record(Record::Cleared {
                        address: step.address.clone(),
                        operation: Operation::Update,
                    });
                    Err(e.to_string())
                }
            }
        }
        StepKind::Delete => {
            let id = c.prior_id.clone().ok_or("no ID to delete")?;
            let attrs = c.before_attributes.clone().unwrap_or(Value::Null);
            sh.intent(&step, &c.kind, Operation::Delete, Some(id.clone())).await?;
            let result = if c.gone {
                Ok(())
            } else {
                within(
                    sh.limit(c, "delete"),
                    &step.address,
                    "delete",
                    kind.delete(&sh.ctx, &step.address, &id, &attrs),
                )
                .await?
            };
            match result {
                Ok(()) => {
                    let deposed = c.deposed || (c.action == Action::Replace && c.create_before_destroy);
                    if deposed {
                        sh.record(Record::DeposedRemoved {
                            address: step.address.clone(),
                            id,
                        });
                    } else {
                        sh.record(Record::Removed {
                            address: step.address.clone(),
                        });
                    }
                    Ok(None)
                }
                Err(e) => {
                    sh.record(Record::Cleared {
                        address: step.address.clone(),
                        operation: Operation::Delete,
                    });
                    Err(e.to_string())
                }
            }
        }
    }
}

/// Test hook: `SLIPWAY_FAILPOINT=after-create:ADDRESS` kills the process
/// right after that create call returns, before its result is recorded.
fn failpoint(point: &str, address: &str) {
    if let Ok(fp) = std::env::var("SLIPWAY_FAILPOINT") {
        if fp.split_once(':') == Some((point, address)) {
            eprintln!("slipway: failpoint {fp} reached, aborting");
            std::process::abort();
        }
    }
}

/// Run every step of `plan` on `state`, journaling to `journal`.
pub async fn execute(
    plan: Arc<Plan>,
    state: State,
    registry: Registry,
    ctx: Ctx,
    journal: Writer,
    parallelism: usize,
    default_timeout: Option<Duration>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(State, Report, Writer), String> {
    let (steps, edges) = steps(&plan)?;
    let mut q = DependencyQueue::new(steps.len(), &edges)
        .ok_or("internal error: the apply steps form a cycle; nothing was changed")?;
    let sh = Arc::new(Shared {
        default_timeout,
        plan,
        notes: Mutex::new(Vec::new()),
        state: Mutex::new(state),
        journal,
        registry,
        ctx,
    });
    let mut set = JoinSet::new();
    type Progress = Arc<Mutex<Option<String>>>;
    let mut running: HashMap<tokio::task::Id, (usize, Instant, Progress)> = HashMap::new();
    let mut started = vec![false; steps.len()];
    let mut report = Report::default();
    let mut stop = false;
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    ticker.tick().await;
    // The first Ctrl-C (or SIGTERM) stops starting steps and lets the running
    // ones finish and be recorded; a second one aborts at once (the journal's
    // intents let the next run settle what was in flight).
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    loop {
        while !stop && set.len() < parallelism.max(1) {
            let Some(i) = q.dequeue() else { break };
            started[i] = true;
            tracing::info!(target: "slipway::apply", address = %steps[i].address, step = steps[i].kind.verb().0, "step started");
            on_event(Event::Started(&steps[i]));
            let progress: Progress = Arc::default();
            let h = set.spawn(
                crate::providers::wait::PROGRESS.scope(progress.clone(), run_step(sh.clone(), steps[i].clone())),
            );
            running.insert(h.id(), (i, Instant::now(), progress));
        }
        if set.is_empty() {
            break;
        }
        tokio::select! {
            joined = set.join_next_with_id() => {
                let Some(joined) = joined else { break };
                let (id, result) = match joined {
                    Ok((id, r)) => (id, r),
                    Err(e) => (e.id(), Err(format!("the step panicked: {e}"))),
                };
                let notes: Vec<(String, String)> = sh.notes.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default();
                for (a, t) in &notes {
                    on_event(Event::Note(a, t));
                }
                let Some((i, t0, _)) = running.remove(&id) else { continue };
                match result {
                    Ok(obj) => {
                        tracing::info!(target: "slipway::apply", address = %steps[i].address, step = steps[i].kind.verb().0, seconds = t0.elapsed().as_secs_f64(), "step done");
                        on_event(Event::Finished(&steps[i], t0.elapsed(), obj.as_deref()));
                        q.finish(i);
                        report.done.push(steps[i].clone());
                    }
                    Err(e) => {
                        tracing::info!(target: "slipway::apply", address = %steps[i].address, step = steps[i].kind.verb().0, seconds = t0.elapsed().as_secs_f64(), error = %crate::sensitive::redact(&e), "step failed");
                        on_event(Event::Failed(&steps[i], &e));
                        report.failed.push((steps[i].clone(), e));
                        stop = true;
                    }
                }
            }
            _ = ticker.tick() => {
                for (i, t0, progress) in running.values() {
                    let status = progress.lock().ok().and_then(|g| g.clone());
                    on_event(Event::StillRunning(&steps[*i], t0.elapsed(), status.as_deref()));
                }
            }
            _ = async { tokio::select! { _ = sigint.recv() => {}, _ = sigterm.recv() => {} } } => {
                if report.interrupted {
                    eprintln!("\nInterrupted again: stopping now. The next run settles what was in flight.");
                    std::process::exit(130);
                }
                report.interrupted = true;
                stop = true;
                eprintln!(
                    "\nInterrupted: no new step starts; waiting for the {} running to finish (interrupt again to stop at once).",
                    set.len()
                );
            }
        }
    }
    report.skipped = steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !started[*i])
        .map(|(_, s)| s.clone())
        .collect();
    let sh = Arc::try_unwrap(sh).map_err(|_| "internal error: a step outlived the apply")?;
    let state = sh.state.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok((state, report, sh.journal))
}
