//! Rollout of a Deployment, judged as `kubectl rollout status` judges it:
//! nothing counts until the controller has observed the new generation (so a
//! stale condition or an old ReplicaSet's crash-looping pods never fail a
//! fix-forward deploy); then ProgressDeadlineExceeded and ReplicaFailure fail
//! it; then updated, old and available replicas decide. Beyond kubectl, a
//! rollout fails fast on the new ReplicaSet's pods that cannot start (image
//! pull errors, crash loops, in init containers too) with their reasons.

use serde_json::Value;

use super::client;
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{Ctx, ProviderError};

/// Waiting reasons that mean the rollout will not finish by itself. A
/// single failed pull (ErrImagePull: a registry hiccup, a tag pushed a
/// moment later) is retried by the kubelet and only waited on; once the
/// kubelet backs off (ImagePullBackOff) the pull has failed repeatedly.
pub const FATAL_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "CreateContainerError",
];

/// The annotation the Deployment controller numbers revisions with.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

fn num(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn revision(o: &Value) -> Option<&str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
}

/// The Deployment's current ReplicaSet among `sets`: the one of its revision.
pub fn new_replica_set<'a>(dep: &Value, sets: &'a [Value]) -> Option<&'a Value> {
    let want = revision(dep)?;
    sets.iter().find(|rs| revision(rs) == Some(want))
}

/// Why pods cannot start, one line per container (init containers too).
/// Pods on their way out (a deletion timestamp) are not counted.
pub fn pod_failures(pods: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for p in pods
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
    {
        let name = p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
        for (list, what) in [
            ("/status/initContainerStatuses", "init container"),
            ("/status/containerStatuses", "container"),
        ] {
            for cs in p.pointer(list).and_then(Value::as_array).into_iter().flatten() {
                let waiting = cs.pointer("/state/waiting");
                let reason = waiting
                    .and_then(|w| w.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if FATAL_REASONS.contains(&reason) {
                    let msg = waiting
                        .and_then(|w| w.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let c = cs.get("name").and_then(Value::as_str).unwrap_or("?");
                    out.push(
                        format!("pod {name}: {what} {c}: {reason}: {msg}")
                            .trim_end_matches([':', ' '])
                            .to_string(),
                    );
                }
            }
        }
    }
    out
}

/// Is the Deployment's rollout complete, still going, or failed? `pods` are
/// the new ReplicaSet's (none when it is not known yet).
pub fn rollout_complete(dep: &Value, pods: &[Value]) -> Check<()> {
    let generation = num(dep, "/metadata/generation");
    let observed = num(dep, "/status/observedGeneration");
    if observed < generation {
        // What the conditions and pods say is about the spec before this one.
        return Check::Pending("waiting for deployment spec update to be observed".into());
    }
    for c in dep
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        if field("type") == "Progressing" && field("reason") == "ProgressDeadlineExceeded" {
            return Check::Failed(format!("ProgressDeadlineExceeded: {}", field("message")));
        }
        if field("type") == "ReplicaFailure" && field("status") == "True" {
            return Check::Failed(format!("ReplicaFailure: {}: {}", field("reason"), field("message")));
        }
    }
    let failures = pod_failures(pods);
    if !failures.is_empty() {
        return Check::Failed(failures.join("; "));
    }
    let want = dep.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let updated = num(dep, "/status/updatedReplicas");
    let available = num(dep, "/status/availableReplicas");
    let ready = num(dep, "/status/readyReplicas");
    let total = num(dep, "/status/replicas");
    let counts = format!("ready {ready}/{want}, updated {updated}/{want}, available {available}/{want}");
    if updated < want {
        return Check::Pending(format!("{updated} of {want} new replicas updated ({counts})"));
    }
    if total > updated {
        return Check::Pending(format!(
            "{} old replicas pending termination ({counts})",
            total - updated
        ));
    }
    if available < updated {
        return Check::Pending(format!(
            "{available} of {updated} updated replicas available ({counts})"
        ));
    }
    Check::Done(())
}

fn selector_of(obj: &Value) -> String {
    obj.pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Wait for a Deployment's rollout, failing fast on pods that cannot start.
/// Each poll takes its client from the run's cache, which remakes it before
/// the EKS token inside expires (15 minutes): a long rollout keeps working.
pub async fn wait_rollout(ctx: &Ctx, target: &client::Target, obj: &Value) -> Result<(), ProviderError> {
    let what = format!("the rollout of {}", client::describe(obj));
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let selector = selector_of(obj);
    let policy = Policy {
        timeout: ctx.rollout_timeout,
        first: std::time::Duration::from_millis(200),
        max: std::time::Duration::from_secs(5),
    };
    wait_for(&what, policy, || async {
        client::pending_if_transient(poll(ctx, target, obj, &ns, &selector).await)
    })
    .await
}

/// One look at the rollout.
async fn poll(
    ctx: &Ctx,
    target: &client::Target,
    obj: &Value,
    ns: &str,
    selector: &str,
) -> Result<Check<()>, ProviderError> {
    let client = &client::client(ctx, target).await?;
    let dep = client::get(client, obj)
        .await?
        .ok_or_else(|| ProviderError::new(format!("{} disappeared", client::describe(obj))))?;
    let observed = num(&dep, "/status/observedGeneration") >= num(&dep, "/metadata/generation");
    let pods = if observed {
        let sets = client::list(client, "apps/v1", "ReplicaSet", ns, selector).await?;
        match new_replica_set(&dep, &sets)
            .and_then(|rs| rs.pointer("/metadata/labels/pod-template-hash"))
            .and_then(Value::as_str)
        {
            Some(hash) => {
                let sel = [selector, &format!("pod-template-hash={hash}")]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",");
                client::list(client, "v1", "Pod", ns, &sel).await?
            }
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    Ok(rollout_complete(&dep, &pods))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(gen: i64, observed: i64, updated: i64, available: i64) -> Value {
        json!({"metadata": {"generation": gen}, "spec": {"replicas": 2},
               "status": {"observedGeneration": observed, "replicas": updated, "updatedReplicas": updated, "availableReplicas": available}})
    }

    #[test]
    fn complete_only_when_observed_updated_and_available() {
        assert!(matches!(rollout_complete(&dep(2, 1, 2, 2), &[]), Check::Pending(_)));
        assert!(matches!(rollout_complete(&dep(2, 2, 1, 1), &[]), Check::Pending(_)));
        assert!(matches!(rollout_complete(&dep(2, 2, 2, 1), &[]), Check::Pending(_)));
        assert_eq!(rollout_complete(&dep(2, 2, 2, 2), &[]), Check::Done(()));
    }

    #[test]
    fn a_stale_deadline_or_old_pods_never_fail_a_spec_the_controller_has_not_seen() {
        // A fix-forward deploy: generation 4 is not observed yet; condition
        // and pods are about generation 3.
        let mut d = dep(4, 3, 0, 0);
        d["status"]["conditions"] =
            json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        let old = json!({"metadata": {"name": "web-old-1"}, "status": {"containerStatuses": [
            {"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(
            rollout_complete(&d, &[old]),
            Check::Pending("waiting for deployment spec update to be observed".into())
        );
    }

    #[test]
    fn the_new_replica_set_is_the_one_of_the_deployments_revision() {
        let d = json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": "3"}}});
        let sets = [
            json!({"metadata": {"name": "web-a", "annotations": {"deployment.kubernetes.io/revision": "2"}}}),
            json!({"metadata": {"name": "web-b", "annotations": {"deployment.kubernetes.io/revision": "3"}}}),
        ];
        assert_eq!(new_replica_set(&d, &sets).unwrap()["metadata"]["name"], "web-b");
    }

    #[test]
    fn one_failed_pull_is_waited_on_and_a_pull_back_off_fails() {
        let pod = |reason: &str| {
            json!({"metadata": {"name": "web-1"}, "status": {"containerStatuses": [
                {"name": "web", "state": {"waiting": {"reason": reason, "message": "pull failed"}}}]}})
        };
        assert!(pod_failures(&[pod("ErrImagePull")]).is_empty());
        assert_eq!(
            pod_failures(&[pod("ImagePullBackOff")]),
            ["pod web-1: container web: ImagePullBackOff: pull failed"]
        );
    }

    #[test]
    fn replica_failure_init_containers_and_terminating_pods() {
        let mut d = dep(1, 1, 0, 0);
        d["status"]["conditions"] = json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota"}]);
        assert_eq!(
            rollout_complete(&d, &[]),
            Check::Failed("ReplicaFailure: FailedCreate: exceeded quota".into())
        );
        let init = json!({"metadata": {"name": "web-1"}, "status": {"initContainerStatuses": [
            {"name": "migrate", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]}});
        assert_eq!(
            pod_failures(&[init.clone()]),
            ["pod web-1: init container migrate: CrashLoopBackOff: back-off"]
        );
        let mut going = init;
        going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(pod_failures(&[going]).is_empty());
    }

    #[test]
    fn progress_deadline_and_pod_reasons_fail() {
        let mut d = dep(1, 1, 0, 0);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "took too long"}]);
        assert_eq!(
            rollout_complete(&d, &[]),
            Check::Failed("ProgressDeadlineExceeded: took too long".into())
        );
        let pod = json!({"metadata": {"name": "web-1"}, "status": {"containerStatuses": [
            {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x:v9\""}}}]}});
        match rollout_complete(&dep(1, 1, 0, 0), &[pod]) {
            Check::Failed(m) => assert_eq!(
                m,
                "pod web-1: container web: ImagePullBackOff: Back-off pulling image \"x:v9\""
            ),
            other => panic!("{other:?}"),
        }
    }
}
