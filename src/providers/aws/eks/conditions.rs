//! When an EKS wait is over: the status of a cluster, an update or a
//! nodegroup read as done, pending or failed (with EKS's own reasons).

use aws_sdk_eks::types::{Cluster, ClusterStatus, Nodegroup, NodegroupStatus, Update, UpdateStatus};

use crate::providers::wait::Check;

/// A cluster is done creating or updating when ACTIVE.
pub fn cluster_active(c: &Cluster) -> Check<()> {
    match c.status() {
        Some(ClusterStatus::Active) => Check::Done(()),
        Some(ClusterStatus::Failed) => Check::Failed("the cluster is FAILED".into()),
        Some(ClusterStatus::Deleting) => Check::Failed("the cluster is being deleted".into()),
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

/// An EKS update is done when Successful; Failed and Cancelled carry errors.
pub fn update_done(u: &Update) -> Check<()> {
    match u.status() {
        Some(UpdateStatus::Successful) => Check::Done(()),
        Some(s @ (UpdateStatus::Failed | UpdateStatus::Cancelled)) => {
            let errors: Vec<String> = u
                .errors()
                .iter()
                .map(|e| {
                    let code = e.error_code().map(|c| c.as_str()).unwrap_or("error");
                    format!("{code}: {}", e.error_message().unwrap_or(""))
                })
                .collect();
            let id = u.id().unwrap_or("?");
            Check::Failed(format!("update {id} is {}: {}", s.as_str(), errors.join("; ")))
        }
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

/// A nodegroup's health issues, one line (`CODE: message; ...`).
pub fn nodegroup_issues(n: &Nodegroup) -> String {
    let issues = n.health().map(|h| h.issues()).unwrap_or_default();
    let each = issues.iter().map(|i| {
        let code = i.code().map(|c| c.as_str()).unwrap_or("issue");
        format!("{code}: {}", i.message().unwrap_or(""))
    });
    each.collect::<Vec<_>>().join("; ")
}

/// A nodegroup is done when ACTIVE; a failed create names the health issues.
pub fn nodegroup_active(n: &Nodegroup) -> Check<()> {
    let issues = || nodegroup_issues(n);
    match n.status() {
        Some(NodegroupStatus::Active) => Check::Done(()),
        Some(s @ (NodegroupStatus::CreateFailed | NodegroupStatus::DeleteFailed | NodegroupStatus::Degraded)) => {
            Check::Failed(format!("the nodegroup is {}: {}", s.as_str(), issues()))
        }
        Some(s) => Check::Pending(s.as_str().to_string()),
        None => Check::Pending("no status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodegroup_conditions() {
        let ng = |s: NodegroupStatus| Nodegroup::builder().status(s).build();
        assert_eq!(nodegroup_active(&ng(NodegroupStatus::Active)), Check::Done(()));
        assert_eq!(
            nodegroup_active(&ng(NodegroupStatus::Creating)),
            Check::Pending("CREATING".into())
        );
        assert!(matches!(
            nodegroup_active(&ng(NodegroupStatus::CreateFailed)),
            Check::Failed(_)
        ));
    }
}
