//! `slipway iam-policy DIR [--plan]`: the IAM policy a stack's runs need,
//! as JSON on stdout. `--plan`: the read-only actions of plan and drift;
//! without it, what apply and destroy call, scoped by the ownership tags.
//! Made from what the stack's kinds declare; nothing is called.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{load_stack, CmdError, Exit};
use crate::providers::aws::permissions::{self, Permissions, Scope};
use crate::providers::Registry;

/// IAM's limit for a managed policy document, whitespace not counted.
const MANAGED_POLICY_LIMIT: usize = 6144;

pub async fn run(dir: &Path, vars: &[String], plan_only: bool, account: Option<&str>, registry: &Registry) -> Exit {
    let l = load_stack(dir, vars, registry)?;
    let stack = &l.stack;
    let mut kinds: Vec<Permissions> = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &stack.resources {
        if let Some(p) = registry.get(&r.kind).and_then(|k| k.aws_permissions()) {
            if seen.insert(r.kind.clone()) {
                kinds.push(p);
            }
        }
    }
    let mut lookup_reads: Vec<&'static str> = stack
        .lookups
        .iter()
        .flat_map(|l| crate::lookup::actions(&l.kind).iter().copied())
        .collect();
    lookup_reads.sort();
    lookup_reads.dedup();
    if !lookup_reads.is_empty() {
        // What the lookups read (sts:GetCallerIdentity needs no permission).
        kinds.push(Permissions {
            read: Box::leak(lookup_reads.into_boxed_slice()),
            ..Permissions::NONE
        });
    }
    let policy = if plan_only {
        permissions::read_policy(&kinds)
    } else {
        let region = match stack.region.clone() {
            Some(r) => r,
            None => crate::providers::aws::sdk_region().await.ok_or_else(|| {
                CmdError::Other(format!(
                    "stack `{}` has no region: set `region` in [stack], or AWS_REGION, so the policy's ARNs name it",
                    stack.name
                ))
            })?,
        };
        let scope = Scope {
            stack: stack.name.clone(),
            region,
            account: account.unwrap_or("*").to_string(),
        };
        let roles = passed_roles(&l, registry, &scope);
        permissions::apply_policy(&kinds, &roles, &scope)
    };
    let text = serde_json::to_string_pretty(&policy).map_err(|e| CmdError::Other(e.to_string()))?;
    println!("{text}");
    let size = text.chars().filter(|c| !c.is_whitespace()).count();
    if size > MANAGED_POLICY_LIMIT {
        eprintln!(
            "note: {size} characters (whitespace aside): over IAM's {MANAGED_POLICY_LIMIT} for one managed policy; \
             attach it as an inline role policy (10,240 in all) or split its statements"
        );
    }
    if stack
        .resources
        .iter()
        .any(|r| crate::providers::k8s::table::is_kubernetes(&r.kind))
    {
        eprintln!(
            "note: Kubernetes objects are authorized by the cluster, not IAM: give this role an EKS access entry{}",
            if plan_only {
                " with read access to the stack's namespaces"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

/// The ARNs of the roles the stack passes to EKS: its own `iam_role`s by
/// their names, literal ARNs and variables as given; `role/*` (with a note)
/// where the name is only known at apply.
fn passed_roles(l: &super::Loaded, registry: &Registry, scope: &Scope) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in &l.stack.resources {
        let Some(p) = registry.get(&r.kind).and_then(|k| k.aws_permissions()) else {
            continue;
        };
        for field in p.passes_roles {
            let Some(v) = r.config.get(*field).and_then(Value::as_str) else {
                continue;
            };
            match role_of(l, registry, scope, v) {
                Some(arn) => out.insert(arn),
                None => {
                    eprintln!(
                        "note: {}.{field} = {v:?} is known only at apply: iam:PassRole is granted on every role",
                        r.address
                    );
                    out.insert(permissions::role_arn(scope, "*"))
                }
            };
        }
    }
    out
}

/// The role ARN a field's value names, when it can be known before apply.
fn role_of(l: &super::Loaded, registry: &Registry, scope: &Scope, v: &str) -> Option<String> {
    if v.starts_with("arn:") && !v.contains("${") {
        return Some(v.to_string());
    }
    let inner = v.strip_prefix("${")?.strip_suffix('}')?;
    if let Some(var) = inner.strip_prefix("var.") {
        return l
            .variables
            .get(var)
            .and_then(Value::as_str)
            .filter(|s| s.starts_with("arn:"))
            .map(str::to_string);
    }
    let address = inner.strip_suffix(".arn")?;
    let role = l
        .stack
        .resources
        .iter()
        .find(|r| r.address == address && r.kind == "iam_role")?;
    let completed = registry
        .get("iam_role")?
        .complete(&l.stack.name, &role.address, &role.config);
    let name = completed.get("name").and_then(Value::as_str)?;
    (!name.contains("${")).then(|| permissions::role_arn(scope, name))
}
