//! Make a plan: walk the stack in dependency order, resolve each config with
//! what is known so far, diff it against the refreshed state, and decide
//! create, update, replace, delete or no-op.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::refresh::LiveMap;
use super::{Action, Change, Drift, FieldDrift, Plan, PlannedOutput};
use crate::graph::Graph;
use crate::providers::{error_is_about_unknown, Registry};
use crate::sensitive::hide;
use crate::stack::source::Span;
use crate::stack::template::{self, Ref};
use crate::stack::{Stack, StackError, StackErrors};
use crate::state::State;

/// What a plan is made from.
pub struct PlanInputs<'a> {
    pub stack: &'a Stack,
    pub graph: &'a Graph,
    pub variables: BTreeMap<String, Value>,
    pub state: Option<&'a State>,
    pub state_path: &'a Path,
    pub state_backend: Option<crate::stack::backend::S3Config>,
    pub live: &'a LiveMap,
    pub registry: &'a Registry,
    pub destroy: bool,
    pub recovered: Vec<String>,
    /// `--replace ADDR`: replace these even when nothing changed.
    pub replace: &'a [String],
    /// What the stack's lookups read.
    pub lookups: BTreeMap<String, Value>,
}

/// Resolve a reference against planned attributes and variables.
pub fn lookup(r: &Ref, attrs: &dyn Fn(&str) -> Option<Value>, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    match r {
        Ref::Var(n) => vars
            .get(n)
            .cloned()
            .ok_or_else(|| format!("variable `{n}` has no value")),
        Ref::Local(n) => Err(format!("local `{n}` cannot be read here")),
        Ref::Lookup { kind, name, .. } => Err(format!("lookup.{kind}.{name} cannot be read here")),
        Ref::Each(..) => Err("`each` can be used only inside a resource with for_each".into()),
        Ref::Module { module, output, .. } => Err(format!("`{module}` has no output `{output}`")),
        Ref::Attr { attr, path, .. } => {
            let addr = r.address().unwrap_or_default();
            let a = attrs(&addr).ok_or_else(|| format!("`{addr}` has no attributes yet"))?;
            if crate::value::is_unknown(&a) {
                return Ok(crate::value::unknown());
            }
            let v = a.get(attr).cloned().unwrap_or(Value::Null);
            template::follow(&v, path).ok_or_else(|| format!("`{addr}.{attr}` has no element `{}`", path.join(".")))
        }
    }
}

/// Everything a template reads: attributes, variables, the stack's locals
/// (resolved in turn, through this scope) and, for `file()`, the stack's
/// directory (files outside the repository are refused).
pub struct Scope<'a> {
    pub attrs: &'a dyn Fn(&str) -> Option<Value>,
    pub vars: &'a BTreeMap<String, Value>,
    pub locals: &'a BTreeMap<String, Value>,
    pub dir: &'a Path,
    /// What the stack's lookups read (`kind.name` -> attributes); a lookup
    /// not read here (render) is unknown.
    pub lookups: Option<&'a BTreeMap<String, Value>>,
    /// A for_each resource's instances, for `${kind.name[*].attr}`.
    pub instances: Option<&'a BTreeMap<String, Vec<String>>>,
    depth: std::cell::Cell<usize>,
}

impl<'a> Scope<'a> {
    pub fn new(
        attrs: &'a dyn Fn(&str) -> Option<Value>,
        vars: &'a BTreeMap<String, Value>,
        locals: &'a BTreeMap<String, Value>,
        dir: &'a Path,
    ) -> Scope<'a> {
        Scope {
            attrs,
            vars,
            locals,
            dir,
            lookups: None,
            instances: None,
            depth: std::cell::Cell::new(0),
        }
    }

    /// With the instances of for_each resources.
    pub fn with_instances(mut self, instances: &'a BTreeMap<String, Vec<String>>) -> Scope<'a> {
        self.instances = Some(instances);
        self
    }

    /// With what the lookups read.
    pub fn with_lookups(mut self, lookups: &'a BTreeMap<String, Value>) -> Scope<'a> {
        self.lookups = Some(lookups);
        self
    }
}

impl template::Env for Scope<'_> {
    fn get(&self, r: &Ref) -> Result<Value, String> {
        if let Ref::Lookup { kind, name, attr, path } = r {
            let Some(read) = self.lookups.and_then(|l| l.get(&format!("{kind}.{name}"))) else {
                return Ok(crate::value::unknown());
            };
            let v = match read.get(attr) {
                Some(v) => v.clone(),
                None if kind == "stack" => {
                    let has: Vec<&String> = read.as_object().map(|o| o.keys().collect()).unwrap_or_default();
                    return Err(format!(
                        "lookup.stack.{name} has no output `{attr}` (it has: {}; sensitive outputs are not shared)",
                        has.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
                None => Value::Null,
            };
            return template::follow(&v, path)
                .ok_or_else(|| format!("`lookup.{kind}.{name}.{attr}` has no element `{}`", path.join(".")));
        }
        if let Ref::Attr {
            module,
            kind,
            name,
            attr,
            path,
        } = r
        {
            if let Some(base) = name.strip_suffix("[*]") {
                // Every instance's value, in key order.
                let all = self
                    .instances
                    .and_then(|i| i.get(&format!("{module}{kind}.{base}")))
                    .ok_or_else(|| format!("`{module}{kind}.{base}` has no for_each instances"))?;
                let mut out = Vec::new();
                for a in all {
                    let one = Ref::to_attr(a, attr, path);
                    out.push(lookup(&one, self.attrs, self.vars)?);
                }
                return Ok(Value::Array(out));
            }
        }
        let Ref::Local(n) = r else {
            return lookup(r, self.attrs, self.vars);
        };
        let v = self
            .locals
            .get(n)
            .ok_or_else(|| format!("local `{n}` is not declared"))?;
        // Cycles are refused by validate; this only stops a runaway.
        if self.depth.get() > 64 {
            return Err(format!("local `{n}` refers to itself through other locals"));
        }
        self.depth.set(self.depth.get() + 1);
        let out = template::resolve(v, self);
        self.depth.set(self.depth.get() - 1);
        out
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        let full = self.dir.join(path);
        let real = crate::operator::confined_file(&full.to_string_lossy(), "file()")?;
        std::fs::read_to_string(&real).map_err(|e| format!("cannot read {path}: {e}"))
    }
}

/// Drift of every refreshed resource: live inputs vs the state's.
pub fn drift(state: Option<&State>, live: &LiveMap, registry: &Registry) -> Vec<Drift> {
    let mut out = Vec::new();
    let Some(state) = state else { return out };
    for (addr, r) in &state.resources {
        let Some(kind) = registry.get(&r.kind) else { continue };
        match live.get(addr) {
            Some(None) => out.push(Drift {
                address: addr.clone(),
                status: "deleted".into(),
                fields: vec![],
            }),
            Some(Some(l)) => {
                // The state holds sensitive strings as hashes: compare like with like.
                let live_inputs = crate::sensitive::hide(&l.inputs);
                let d = kind.diff(&r.inputs, &live_inputs);
                if !d.changed.is_empty() {
                    let fields = d
                        .changed
                        .iter()
                        .map(|f| FieldDrift {
                            field: f.clone(),
                            state: r.inputs.get(f).cloned().unwrap_or(Value::Null),
                            live: live_inputs.get(f).cloned().unwrap_or(Value::Null),
                        })
                        .collect();
                    out.push(Drift {
                        address: addr.clone(),
                        status: "modified".into(),
                        fields,
                    });
                }
            }
            None => {}
        }
    }
    out
}

/// What the stack gets wrong without being invalid: an app that autoscales
/// on an EKS cluster while the stack installs no metrics-server (EKS ships
/// none, so the HorizontalPodAutoscaler never gets a metric and never scales).
fn stack_warnings(stack: &crate::stack::Stack) -> Vec<String> {
    let has_metrics = stack
        .resources
        .iter()
        .any(|r| r.kind == "eks_addon" && r.config.get("name").and_then(Value::as_str) == Some("metrics-server"));
    if has_metrics {
        return Vec::new();
    }
    stack
        .resources
        .iter()
        .filter(|r| r.kind == "app" && r.config.get("autoscale").is_some_and(|a| !a.is_null()))
        .filter(|r| {
            r.config
                .get("cluster")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("${eks_cluster."))
        })
        .map(|r| {
            format!(
                "{} autoscales, but EKS ships no metrics-server and this stack installs none: its \
                 HorizontalPodAutoscaler will never scale. Add [eks_addon.metrics_server] with \
                 name = \"metrics-server\" (or install it another way)",
                r.address
            )
        })
        .collect()
}

/// A namespace the plan deletes (or replaces) takes every object in it
/// with it: name the resources the stack still declares there, so nobody
/// learns it from their absence.
fn namespace_cascades(changes: &[Change]) -> Vec<String> {
    let objects = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(|a| a.get("manifests"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for ns in changes
        .iter()
        .filter(|c| c.kind == "k8s_namespace" && matches!(c.action, Action::Delete | Action::Replace))
    {
        let Some(name) = objects(ns.before_attributes.as_ref())
            .first()
            .and_then(|m| m.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
        else {
            continue;
        };
        let inside: Vec<&str> = changes
            .iter()
            .filter(|c| c.address != ns.address && c.action != Action::Delete)
            .filter(|c| {
                objects(c.after_attributes.as_ref().or(c.before_attributes.as_ref()))
                    .iter()
                    .any(|m| m.pointer("/metadata/namespace").and_then(Value::as_str) == Some(name.as_str()))
            })
            .map(|c| c.address.as_str())
            .collect();
        if !inside.is_empty() {
            out.push(format!(
                "{} deletes namespace {name}, and Kubernetes deletes everything in it: {} (still declared) \
                 will be gone until they are applied again",
                ns.address,
                inside.join(", ")
            ));
        }
    }
    out
}

/// Make the plan.
pub fn make(inp: PlanInputs<'_>) -> Result<Plan, StackErrors> {
    let stack = inp.stack;
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    let mut planned: HashMap<String, Value> = HashMap::with_capacity(stack.resources.len());
    let empty = State::new(&stack.name);
    let state = inp.state.unwrap_or(&empty);
    let locals = stack.local_values();

    if !inp.destroy {
        // Resources that could not be planned; their dependents are skipped
        // rather than reported again as "no attributes yet".
        let mut failed: std::collections::HashSet<String> = std::collections::HashSet::new();
        for addr in inp.graph.order() {
            let Some(r) = stack.resource(&addr) else { continue };
            let Some(kind) = inp.registry.get(&r.kind) else {
                continue;
            };
            if inp.graph.dependencies(&addr).iter().any(|d| failed.contains(d)) {
                failed.insert(addr.clone());
                continue;
            }
            let errors_before = errors.len();
            let at = |span: &Span| Some(stack.sources.locate(span));
            let resolved = {
                let attrs = |a: &str| planned.get(a).cloned();
                let scope = Scope::new(&attrs, &inp.variables, &locals, &stack.dir)
                    .with_lookups(&inp.lookups)
                    .with_instances(&stack.instances);
                match template::resolve(&r.config, &scope) {
                    Ok(v) => v,
                    Err(msg) => {
                        errors.push(StackError::new(at(&r.span), format!("{addr}: {msg}")));
                        failed.insert(addr.clone());
                        continue;
                    }
                }
            };
            // What the kind refuses in the resolved values, then what the
            // apply would read from this machine.
            let refused = match kind.check(&resolved) {
                Err(e) if !error_is_about_unknown(&resolved, &e.path) => Some((e, " (after resolving references)")),
                _ => kind.check_local_inputs(&resolved).err().map(|e| (e, "")),
            };
            if let Some((e, note)) = refused {
                let field: String = e.path.iter().map(|s| s.to_string()).collect();
                let range = r.body.span_at(&e.path);
                errors.push(StackError::new(
                    at(&Span { file: r.file, range }),
                    format!("{addr}{field}: {}{note}", e.message),
                ));
                failed.insert(addr.clone());
                continue;
            }
            let resolved = kind.complete(&stack.name, &addr, &resolved);
            let cbd = r.create_before_destroy.unwrap_or_else(|| kind.create_before_destroy());
            let prior = state.resources.get(&addr);
            let live = inp.live.get(&addr);
            let gone = matches!(live, Some(None));
            let mut c = Change {
                address: addr.clone(),
                kind: r.kind.clone(),
                action: Action::Create,
                declared_at: Some(stack.sources.locate(&r.span).to_string()),
                before: None,
                after: Some(resolved.clone()),
                before_attributes: None,
                after_attributes: None,
                changed: vec![],
                replace_because: vec![],
                config: Some(r.config.clone()),
                dependencies: inp.graph.dependencies(&addr),
                prior_dependencies: prior.map(|p| p.dependencies.clone()).unwrap_or_default(),
                prior_id: None,
                create_before_destroy: cbd,
                deposed: false,
                gone,
                timeouts: r.timeouts.clone(),
                protect: r.protect.unwrap_or_else(|| prior.is_some_and(|p| p.protect)),
                sensitive: kind.sensitive_fields().iter().map(|s| s.to_string()).collect(),
                warning: None,
                pending: None,
            };
            match prior {
                Some(p) if !gone => {
                    let (before, before_attrs) = match live {
                        Some(Some(l)) => (l.inputs.clone(), l.attributes.clone()),
                        _ => (p.inputs.clone(), p.attributes.clone()),
                    };
                    // A stored object holds sensitive strings as hashes:
                    // compare with this run's config hashed the same way.
                    let d = kind.diff(&hide(&before), &hide(&resolved));
                    if !d.changed.is_empty() {
                        if let Err(e) = kind.check_change(&before, &resolved) {
                            let field: String = e.path.iter().map(|s| s.to_string()).collect();
                            let range = r.body.span_at(&e.path);
                            errors.push(StackError::new(
                                at(&Span { file: r.file, range }),
                                format!("{addr}{field}: {}", e.message),
                            ));
                            failed.insert(addr.clone());
                            continue;
                        }
                    }
                    c.prior_id = Some(p.id.clone());
                    c.changed = d.changed;
                    c.replace_because = d.forces_replace;
                    // An object that is not ready is never in sync: apply brings it there.
                    c.pending = kind.pending(&before_attrs);
                    // One that never will be, or that the person asked to replace, is replaced
                    // (delete first: a broken object serves nothing, and a new one may need its name).
                    let forced = match kind.tainted(&before_attrs) {
                        Some(t) => Some(format!("tainted: {t}")),
                        None => inp.replace.contains(&addr).then(|| "--replace".to_string()),
                    };
                    if let Some(why) = forced {
                        c.pending = None;
                        c.changed.push(why.clone());
                        c.replace_because.push(why);
                        c.create_before_destroy = false;
                    }
                    c.after_attributes = Some(if c.changed.is_empty() && c.pending.is_none() {
                        c.action = Action::NoOp;
                        // What references read is the real value again.
                        crate::sensitive::restore(
                            &before_attrs,
                            &kind.planned_attributes(&resolved, Some(&before_attrs)),
                        )
                    } else if !c.replace_because.is_empty() {
                        c.action = Action::Replace;
                        if c.protect {
                            let fields: Vec<String> = c.replace_because.iter().map(|f| format!("`{f}`")).collect();
                            errors.push(
                                StackError::new(
                                    at(&r.span),
                                    format!(
                                        "{addr} is protected, and this plan would replace it ({} forces replacement)",
                                        fields.join(", ")
                                    ),
                                )
                                .with_help(format!("to allow it, set `protect = false` in [{addr}]")),
                            );
                            failed.insert(addr.clone());
                            continue;
                        }
                        c.warning = kind.replace_warning().map(str::to_string);
                        kind.planned_attributes(&resolved, None)
                    } else {
                        c.action = Action::Update;
                        kind.planned_attributes(&resolved, Some(&before_attrs))
                    });
                    c.before = Some(before);
                    c.before_attributes = Some(before_attrs);
                }
                _ => c.after_attributes = Some(kind.planned_attributes(&resolved, None)),
            }
            if errors.len() > errors_before {
                failed.insert(addr.clone());
                continue;
            }
            planned.insert(addr.clone(), c.after_attributes.clone().unwrap_or(Value::Null));
            changes.push(c);
        }
    }
    if !errors.is_empty() {
        return Err(StackErrors(errors));
    }

    let mut deletes: Vec<Change> = Vec::new();
    for (addr, p) in &state.resources {
        if !inp.destroy && stack.resource(addr).is_some() {
            continue;
        }
        let protected = stack.resource(addr).and_then(|r| r.protect).unwrap_or(p.protect);
        if protected {
            let loc = stack.resource(addr).map(|r| stack.sources.locate(&r.span));
            let help = if stack.resource(addr).is_some() {
                format!("to allow it, set `protect = false` in [{addr}] and apply, then destroy")
            } else {
                format!("to delete it, declare it again with `protect = false` and apply first; to only forget it, `slipway state rm {addr}`")
            };
            errors.push(
                StackError::new(loc, format!("{addr} is protected, and this plan would delete it")).with_help(help),
            );
            continue;
        }
        // A resource already gone from the cloud still plans as a delete: apply
        // finds nothing to delete and drops it from the state.
        let gone = matches!(inp.live.get(addr), Some(None));
        deletes.push(delete_change(addr, p, false, gone));
    }
    for d in &state.deposed {
        deletes.push(delete_change(&d.address, &d.resource, true, false));
    }
    if !errors.is_empty() {
        return Err(StackErrors(errors));
    }
    deletes.sort_by(|a, b| a.address.cmp(&b.address));
    changes.extend(deletes);

    let mut warnings = stack_warnings(stack);
    warnings.extend(namespace_cascades(&changes));
    // Outputs as this plan leaves them, against the state's.
    let mut output_changes = Vec::new();
    if !inp.destroy {
        let attrs = |a: &str| planned.get(a).cloned();
        let scope = Scope::new(&attrs, &inp.variables, &locals, &stack.dir)
            .with_lookups(&inp.lookups)
            .with_instances(&stack.instances);
        for o in &stack.outputs {
            let Ok(after) = template::resolve(&o.value, &scope) else {
                continue;
            };
            let before = state.outputs.get(&o.name).map(|s| s.value.clone());
            let same = before
                .as_ref()
                .is_some_and(|b| *b == crate::sensitive::hide(&after) || *b == after);
            if !same {
                let after = if o.sensitive && !crate::value::contains_unknown(&after) {
                    Value::String(crate::sensitive::hash(&after.to_string()))
                } else {
                    after
                };
                output_changes.push(crate::plan::OutputChange {
                    name: o.name.clone(),
                    before,
                    after: Some(after),
                    sensitive: o.sensitive,
                });
            }
        }
        for (name, s) in &state.outputs {
            if !stack.outputs.iter().any(|o| &o.name == name) {
                output_changes.push(crate::plan::OutputChange {
                    name: name.clone(),
                    before: Some(s.value.clone()),
                    after: None,
                    sensitive: s.sensitive,
                });
            }
        }
        output_changes.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(Plan {
        stack: stack.name.clone(),
        stack_dir: stack.dir.canonicalize().unwrap_or_else(|_| stack.dir.clone()),
        region: stack.region.clone(),
        kubernetes: stack.kubernetes.clone(),
        state_path: inp.state_path.to_path_buf(),
        state_backend: inp.state_backend,
        state_lineage: inp.state.map(|s| s.lineage.clone()),
        state_serial: inp.state.map(|s| s.serial).unwrap_or(0),
        destroy: inp.destroy,
        sensitive_variables: stack
            .variables
            .iter()
            .filter(|(_, v)| v.sensitive)
            .filter_map(|(n, _)| {
                inp.variables
                    .get(n)
                    .map(|v| (n.clone(), crate::sensitive::hash(&v.to_string())))
            })
            .collect(),
        variables: inp.variables,
        locals: stack.local_values(),
        lookups: inp.lookups,
        instances: stack.instances.clone(),
        changes,
        outputs: if inp.destroy {
            Vec::new()
        } else {
            stack
                .outputs
                .iter()
                .map(|o| PlannedOutput {
                    name: o.name.clone(),
                    value: o.value.clone(),
                    sensitive: o.sensitive,
                })
                .collect()
        },
        output_changes,
        drift: drift(inp.state, inp.live, inp.registry),
        recovered: inp.recovered,
        created: crate::state::now(),
        warnings,
        moved: Vec::new(),
        state_from_flag: false,
        stack_digest: None,
        digest: None,
    })
}

fn delete_change(addr: &str, p: &crate::state::ResourceState, deposed: bool, gone: bool) -> Change {
    Change {
        address: addr.to_string(),
        kind: p.kind.clone(),
        action: Action::Delete,
        declared_at: None,
        before: Some(p.inputs.clone()),
        after: None,
        before_attributes: Some(p.attributes.clone()),
        after_attributes: None,
        changed: vec![],
        replace_because: vec![],
        config: None,
        dependencies: vec![],
        prior_dependencies: p.dependencies.clone(),
        prior_id: Some(p.id.clone()),
        create_before_destroy: false,
        deposed,
        gone,
        timeouts: Default::default(),
        protect: p.protect,
        sensitive: Vec::new(),
        warning: None,
        pending: None,
    }
}
