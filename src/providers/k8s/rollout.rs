//! Rollout of a Deployment: a named condition over the Deployment and its
//! pods, and the wait that polls it. A rollout fails fast on pods that
//! cannot start (image pull errors, crash loops) with their reasons.

use serde_json::Value;

use super::client;
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{Ctx, ProviderError};

/// Waiting reasons that mean the rollout will not finish by itself.
pub const FATAL_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "CreateContainerError",
];

fn num(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// Why pods cannot start, one line per container.
pub fn pod_failures(pods: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for p in pods {
        let name = p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
        for cs in p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
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
                    format!("pod {name}: container {c}: {reason}: {msg}")
                        .trim_end_matches([':', ' '])
                        .to_string(),
                );
            }
        }
    }
    out
}

/// Is the Deployment's rollout complete, still going, or failed?
pub fn rollout_complete(dep: &Value, pods: &[Value]) -> Check<()> {
    let failures = pod_failures(pods);
    if !failures.is_empty() {
        return Check::Failed(failures.join("; "));
    }
    for c in dep
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if c.get("type").and_then(Value::as_str) == Some("Progressing")
            && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        {
            let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
            return Check::Failed(format!("ProgressDeadlineExceeded: {msg}"));
        }
    }
    let generation = num(dep, "/metadata/generation");
    let observed = num(dep, "/status/observedGeneration");
    let want = dep.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let updated = num(dep, "/status/updatedReplicas");
    let available = num(dep, "/status/availableReplicas");
    let total = num(dep, "/status/replicas");
    if observed < generation {
        return Check::Pending("waiting for the controller to see the new spec".into());
    }
    if updated < want {
        return Check::Pending(format!("{updated} of {want} replicas updated"));
    }
    if total > updated {
        return Check::Pending(format!("{} old replicas pending termination", total - updated));
    }
    if available < want {
        return Check::Pending(format!("{available} of {want} updated replicas available"));
    }
    Check::Done(())
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
    let selector: String = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let policy = Policy {
        timeout: ctx.rollout_timeout,
        first: std::time::Duration::from_millis(200),
        max: std::time::Duration::from_secs(5),
    };
    wait_for(&what, policy, || async {
        let client = &client::client(ctx, target).await?;
        let dep = client::get(client, obj)
            .await?
            .ok_or_else(|| ProviderError::new(format!("{} disappeared", client::describe(obj))))?;
        let pods = client::list(client, "v1", "Pod", &ns, &selector).await?;
        Ok::<_, ProviderError>(match rollout_complete(&dep, &pods) {
            Check::Failed(m) => Check::Failed(m),
            other => other,
        })
    })
    .await
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
