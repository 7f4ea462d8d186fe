//! Reading one cluster or nodegroup, and waiting on them: until ACTIVE,
//! until an update is over, until gone.

use aws_sdk_eks::types::{Cluster, Nodegroup};

use super::conditions::{cluster_active, nodegroup_active, update_done};
use super::errors::NOT_FOUND;
use crate::providers::aws::{aws_err, none_if};
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::ProviderError;

/// One cluster; `None` when there is none of that name.
pub async fn describe_cluster(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, ProviderError> {
    let r = eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(aws_err("eks DescribeCluster"));
    Ok(none_if(r, &[NOT_FOUND])?.and_then(|o| o.cluster))
}

/// One nodegroup; `None` when there is none of that name.
pub async fn describe_nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    ng: &str,
) -> Result<Option<Nodegroup>, ProviderError> {
    let r = eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(ng)
        .send()
        .await;
    Ok(none_if(r.map_err(aws_err("eks DescribeNodegroup")), &[NOT_FOUND])?.and_then(|o| o.nodegroup))
}

/// Wait until the cluster is ACTIVE.
pub async fn wait_cluster(eks: &aws_sdk_eks::Client, name: &str, policy: Policy) -> Result<Cluster, ProviderError> {
    wait_for(&format!("EKS cluster {name} to become ACTIVE"), policy, || async {
        let c = describe_cluster(eks, name)
            .await?
            .ok_or_else(|| ProviderError::new(format!("cluster {name} disappeared")))?;
        Ok(cluster_active(&c).with(c))
    })
    .await
}

/// Wait until the nodegroup is ACTIVE and (when given) shows `(min, max)`.
pub async fn wait_nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    ng: &str,
    min_max: Option<(i32, i32)>,
    policy: Policy,
) -> Result<Nodegroup, ProviderError> {
    wait_for(&format!("EKS nodegroup {ng} to become ACTIVE"), policy, || async {
        let n = describe_nodegroup(eks, cluster, ng)
            .await?
            .ok_or_else(|| ProviderError::new(format!("nodegroup {ng} disappeared")))?;
        let s = n.scaling_config();
        let applied = min_max.is_none_or(|m| s.map(|s| (s.min_size(), s.max_size())) == Some((Some(m.0), Some(m.1))));
        Ok(match nodegroup_active(&n) {
            Check::Done(()) if !applied => Check::Pending("ACTIVE (update not visible yet)".into()),
            check => check.with(n),
        })
    })
    .await
}

/// Wait until the cluster (or nodegroup) is gone.
pub async fn wait_gone(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    nodegroup: Option<&str>,
    policy: Policy,
) -> Result<(), ProviderError> {
    let what = match nodegroup {
        Some(ng) => format!("EKS nodegroup {ng} to be deleted"),
        None => format!("EKS cluster {cluster} to be deleted"),
    };
    wait_for(&what, policy, || async {
        let status = match nodegroup {
            Some(ng) => describe_nodegroup(eks, cluster, ng)
                .await?
                .map(|n| n.status().map(|s| s.as_str().to_string())),
            None => describe_cluster(eks, cluster)
                .await?
                .map(|c| c.status().map(|s| s.as_str().to_string())),
        };
        Ok(match status {
            None => Check::Done(()),
            Some(Some(s)) if s == "DELETE_FAILED" => Check::Failed(s),
            Some(s) => Check::Pending(s.unwrap_or_else(|| "DELETING".into())),
        })
    })
    .await
}

/// Wait until an update finishes (DescribeUpdate).
pub async fn wait_update(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    nodegroup: Option<&str>,
    id: &str,
    policy: Policy,
) -> Result<(), ProviderError> {
    wait_for(&format!("EKS update {id} of {cluster}"), policy, || async {
        let out = eks
            .describe_update()
            .name(cluster)
            .update_id(id)
            .set_nodegroup_name(nodegroup.map(str::to_string))
            .send()
            .await
            .map_err(aws_err("eks DescribeUpdate"))?;
        let u = out
            .update()
            .ok_or_else(|| ProviderError::new("DescribeUpdate returned no update"))?;
        Ok(update_done(u))
    })
    .await
}

#[cfg(test)]
mod tests {
    //! The waits on the AWS SDK's own mock client (aws-smithy-mocks): these
    //! prove how slipway reads the answers, not how EKS behaves.

    use std::time::Duration;

    use aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput;
    use aws_sdk_eks::types::ClusterStatus;
    use aws_sdk_eks::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn cluster(status: ClusterStatus) -> DescribeClusterOutput {
        DescribeClusterOutput::builder()
            .cluster(Cluster::builder().name("c").status(status).build())
            .build()
    }

    fn fast() -> Policy {
        Policy::fast(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn wait_cluster_follows_creating_to_active_with_sdk_mock_client() {
        let rule = mock!(Client::describe_cluster)
            .sequence()
            .output(|| cluster(ClusterStatus::Creating))
            .times(2)
            .output(|| cluster(ClusterStatus::Active))
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::Sequential, [&rule]);
        let c = wait_cluster(&eks, "c", fast()).await.unwrap();
        assert_eq!(c.status(), Some(&ClusterStatus::Active));
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn wait_cluster_stops_on_failed_with_sdk_mock_client() {
        let rule = mock!(Client::describe_cluster)
            .sequence()
            .output(|| cluster(ClusterStatus::Creating))
            .output(|| cluster(ClusterStatus::Failed))
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::Sequential, [&rule]);
        let e = wait_cluster(&eks, "c", fast()).await.unwrap_err();
        assert!(e.message.contains("the cluster is FAILED"), "{}", e.message);
    }

    #[tokio::test]
    async fn wait_cluster_times_out_naming_the_status_with_sdk_mock_client() {
        let rule = mock!(Client::describe_cluster)
            .sequence()
            .output(|| cluster(ClusterStatus::Creating))
            .repeatedly()
            .build();
        let eks = mock_client!(aws_sdk_eks, RuleMode::Sequential, [&rule]);
        let e = wait_cluster(&eks, "c", Policy::fast(Duration::from_millis(40)))
            .await
            .unwrap_err();
        assert!(e.message.contains("timed out"), "{}", e.message);
        assert!(e.message.contains("last status: CREATING"), "{}", e.message);
    }
}
