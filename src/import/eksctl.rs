//! Discover what `eksctl create cluster` made: its CloudFormation stacks
//! (`eksctl-<cluster>-cluster`, `eksctl-<cluster>-nodegroup-<ng>`, tagged
//! `alpha.eksctl.io/cluster-name`) and their physical resources, plus the
//! EKS cluster and its managed nodegroups through the EKS API.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{snake, unique, Found, Unmodelled};
use crate::providers::aws::{all_items, aws_err, Clients};
use crate::providers::ProviderError;

/// eksctl's tag naming the cluster on every stack and object it makes.
pub const CLUSTER_TAG: &str = "alpha.eksctl.io/cluster-name";
const CLUSTER_TAG_OLD: &str = "eksctl.cluster.k8s.io/v1alpha1/cluster-name";
const NODEGROUP_TAG: &str = "alpha.eksctl.io/nodegroup-name";

/// What to import: from flags or an eksctl ClusterConfig file.
#[derive(Debug, Clone)]
pub struct Target {
    pub cluster: String,
    pub region: String,
    /// Only these nodegroups (a ClusterConfig lists them); `None`: all.
    pub nodegroups: Option<Vec<String>>,
}

/// Read `name`, `region` and the nodegroups from an eksctl ClusterConfig
/// (`apiVersion: eksctl.io/v1alpha5`, `kind: ClusterConfig`).
pub fn read_config(path: &Path) -> Result<Target, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
    let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !api.starts_with("eksctl.io/") || kind != "ClusterConfig" {
        return Err(format!(
            "{} is not an eksctl ClusterConfig (apiVersion {api:?}, kind {kind:?}; expected eksctl.io/v1alpha5 ClusterConfig)",
            path.display()
        ));
    }
    let field = |name: &str| {
        doc.pointer(&format!("/metadata/{name}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{}: metadata.{name} is missing", path.display()))
    };
    let mut nodegroups = Vec::new();
    for list in ["managedNodeGroups", "nodeGroups"] {
        for (i, ng) in doc
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = ng
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{}: {list}[{i}].name is missing", path.display()))?;
            nodegroups.push(name.to_string());
        }
    }
    Ok(Target {
        cluster: field("name")?,
        region: field("region")?,
        nodegroups: Some(nodegroups),
    })
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub stacks: Vec<String>,
    pub found: Vec<Found>,
    pub unmodelled: Vec<Unmodelled>,
    /// Sub-objects written inside their parent resource (routes, rules, ...).
    pub folded: Vec<String>,
    pub notes: Vec<String>,
}

struct CfnStack {
    name: String,
    /// The nodegroup a nodegroup stack is for.
    nodegroup: Option<String>,
}

fn tag<'a>(tags: &'a [aws_sdk_cloudformation::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// eksctl's stacks for `cluster`; a stack with eksctl's name but not its
/// tags was made by another tool, and is an error.
async fn stacks(aws: &Clients, cluster: &str) -> Result<Vec<CfnStack>, ProviderError> {
    let main = format!("eksctl-{cluster}-cluster");
    let ng_prefix = format!("eksctl-{cluster}-nodegroup-");
    let mut out = Vec::new();
    let all: Vec<aws_sdk_cloudformation::types::Stack> =
        all_items!(aws.cfn.describe_stacks(), "cloudformation DescribeStacks")?;
    for s in &all {
        let name = s.stack_name().unwrap_or_default();
        let tagged = tag(s.tags(), CLUSTER_TAG).or_else(|| tag(s.tags(), CLUSTER_TAG_OLD));
        let named = name == main || name.starts_with(&ng_prefix);
        if !named && tagged != Some(cluster) {
            continue;
        }
        if tagged != Some(cluster) {
            return Err(ProviderError::new(format!(
                "CloudFormation stack {name} has eksctl's name but not its tag {CLUSTER_TAG}={cluster}: \
                     it was made by another tool; nothing was imported"
            )));
        }
        let status = s.stack_status().map(|x| x.as_str()).unwrap_or_default();
        if status.ends_with("_IN_PROGRESS") {
            return Err(ProviderError::new(format!(
                "CloudFormation stack {name} is {status}: let eksctl finish, then import"
            )));
        }
        let nodegroup = tag(s.tags(), NODEGROUP_TAG)
            .map(str::to_string)
            .or_else(|| name.strip_prefix(&ng_prefix).map(str::to_string));
        out.push(CfnStack {
            name: name.to_string(),
            nodegroup: if name == main { None } else { nodegroup },
        });
    }
    // The cluster's own stack first (the VPC leads the file), then nodegroups, then the rest.
    let rank = |s: &CfnStack| (s.name != main, s.nodegroup.is_none(), s.name.clone());
    out.sort_by_key(rank);
    Ok(out)
}

/// The slipway kind of a CloudFormation type, and the words of eksctl's
/// logical IDs that only repeat the kind.
fn kind_of(cfn_type: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match cfn_type {
        "AWS::EC2::VPC" => ("vpc", &["VPC"]),
        "AWS::EC2::Subnet" => ("subnet", &["Subnet"]),
        "AWS::EC2::InternetGateway" => ("internet_gateway", &["InternetGateway"]),
        "AWS::EC2::EIP" => ("elastic_ip", &["IP"]),
        "AWS::EC2::NatGateway" => ("nat_gateway", &["NATGateway", "NatGateway"]),
        "AWS::EC2::RouteTable" => ("route_table", &["RouteTable"]),
        "AWS::EC2::SecurityGroup" => ("security_group", &["SecurityGroup"]),
        "AWS::IAM::Role" => ("iam_role", &["Role"]),
        _ => return None,
    })
}

/// CloudFormation types slipway writes inside another resource.
fn folded_into(cfn_type: &str) -> Option<&'static str> {
    Some(match cfn_type {
        "AWS::EC2::VPCGatewayAttachment" => "internet_gateway (vpc)",
        "AWS::EC2::Route" => "route_table (routes)",
        "AWS::EC2::SubnetRouteTableAssociation" => "route_table (subnets)",
        "AWS::EC2::SecurityGroupIngress" => "security_group (ingress)",
        "AWS::EC2::SecurityGroupEgress" => "security_group (egress)",
        "AWS::IAM::Policy" => "iam_role (inline_policies)",
        // Read through the EKS API below.
        "AWS::EKS::Cluster" => "eks_cluster",
        "AWS::EKS::Nodegroup" => "eks_nodegroup",
        _ => return None,
    })
}

/// A readable name from an eksctl logical ID: the availability zone spelt
/// out (`SubnetPublicUSWEST2A` -> `public_us_west_2a`), the kind's own words
/// dropped (`ControlPlaneSecurityGroup` -> `control_plane`).
pub fn readable(logical: &str, region: &str, strip: &[&str]) -> String {
    let mut s = logical.to_string();
    let enc = region.replace('-', "").to_uppercase();
    if let Some(i) = s.find(&enc) {
        if let Some(zone) = s[i + enc.len()..].chars().next().filter(char::is_ascii_uppercase) {
            let az = format!("_{}{}_", region.replace('-', "_"), zone.to_ascii_lowercase());
            s.replace_range(i..i + enc.len() + 1, &az);
        }
    }
    if let Some(w) = strip.iter().find(|w| s.contains(**w)) {
        s = s.replacen(w, "_", 1);
    }
    snake(&s)
}

/// Find everything for `t`: eksctl's stacks and their resources, the
/// cluster and its managed nodegroups. Reads only.
pub async fn discover(aws: &Clients, t: &Target) -> Result<Discovery, ProviderError> {
    let mut d = Discovery::default();
    let cfn_stacks = stacks(aws, &t.cluster).await?;
    // The cluster itself, through EKS.
    let cluster = match aws.eks.describe_cluster().name(&t.cluster).send().await {
        Ok(c) => c
            .cluster
            .ok_or_else(|| ProviderError::new("EKS DescribeCluster answered without a cluster"))?,
        Err(e) => {
            let e = aws_err("eks DescribeCluster")(e);
            if !e.is(&["ResourceNotFoundException"]) {
                return Err(e.into());
            }
            let names = aws
                .eks
                .list_clusters()
                .send()
                .await
                .map_err(aws_err("eks ListClusters"))?
                .clusters
                .unwrap_or_default();
            let there = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            let stacks_note = if cfn_stacks.is_empty() {
                String::new()
            } else {
                format!(
                    " (eksctl's CloudFormation stacks for it exist: {}; the cluster was deleted or is in another region)",
                    cfn_stacks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                )
            };
            return Err(ProviderError::new(format!(
                "there is no EKS cluster named {} in {}{stacks_note}; clusters there: {there}. Nothing was imported",
                t.cluster, t.region
            )));
        }
    };
    let mut nodegroups = crate::providers::aws::eks::nodegroup_names(aws, &t.cluster).await?;
    if let Some(want) = &t.nodegroups {
        let missing: Vec<&String> = want
            .iter()
            .filter(|n| !nodegroups.contains(n) && !cfn_stacks.iter().any(|s| s.nodegroup.as_ref() == Some(n)))
            .collect();
        if !missing.is_empty() {
            return Err(ProviderError::new(format!(
                "the config names nodegroups that cluster {} does not have: {} (it has: {}). Nothing was imported",
                t.cluster,
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                if nodegroups.is_empty() {
                    "none".into()
                } else {
                    nodegroups.join(", ")
                }
            )));
        }
        nodegroups.retain(|n| want.contains(n));
    }

    let mut used = BTreeSet::new();
    let cluster_name = unique(&mut used, "eks_cluster", &snake(&t.cluster));
    if cfn_stacks.is_empty() {
        d.notes.push(format!(
            "No eksctl CloudFormation stacks for {} in {}: imported through the EKS API only (the cluster and its \
             managed nodegroups). Its VPC, subnets, security groups and roles stay raw IDs; import them one by one \
             with `slipway import DIR ADDR ID` after declaring them.",
            t.cluster, t.region
        ));
    }
    for s in &cfn_stacks {
        if let Some(ng) = &s.nodegroup {
            if t.nodegroups.as_ref().is_some_and(|w| !w.contains(ng)) {
                continue;
            }
        }
        d.stacks.push(s.name.clone());
        // Resources of other stacks get the stack's own part of the name as a
        // prefix: `ng_1_node_instance`, `addon_iamserviceaccount_..._role1`.
        let prefix = match &s.nodegroup {
            Some(n) => format!("{}_", snake(n)),
            None if s.name != format!("eksctl-{}-cluster", t.cluster) => {
                let own = s
                    .name
                    .strip_prefix(&format!("eksctl-{}-", t.cluster))
                    .unwrap_or(&s.name);
                format!("{}_", snake(own))
            }
            None => String::new(),
        };
        let resources: Vec<aws_sdk_cloudformation::types::StackResourceSummary> = all_items!(
            aws.cfn.list_stack_resources().stack_name(&s.name),
            "cloudformation ListStackResources"
        )?;
        for r in &resources {
            let logical = r.logical_resource_id().unwrap_or_default();
            let physical = r.physical_resource_id().unwrap_or_default();
            let ty = r.resource_type().unwrap_or_default();
            let origin = format!("{}/{logical}", s.name);
            if let Some((kind, strip)) = kind_of(ty) {
                if physical.is_empty() {
                    d.notes
                        .push(format!("{origin} ({ty}) has no physical ID (not created?): skipped"));
                    continue;
                }
                let name = readable(logical, &t.region, strip);
                let name = if name.is_empty() {
                    prefix.trim_end_matches('_').to_string()
                } else {
                    format!("{prefix}{name}")
                };
                let name = unique(&mut used, kind, &name);
                let id = if kind == "elastic_ip" {
                    eip_allocation(aws, physical).await?
                } else {
                    physical.to_string()
                };
                d.found.push(Found {
                    kind: kind.into(),
                    name,
                    id,
                    origin,
                });
            } else if let Some(into) = folded_into(ty) {
                d.folded.push(format!("{origin} ({ty}) -> {into}"));
            } else {
                d.unmodelled.push(Unmodelled {
                    what: ty.to_string(),
                    id: physical.to_string(),
                    origin,
                });
            }
        }
    }
    d.found.push(Found {
        kind: "eks_cluster".into(),
        name: cluster_name,
        id: t.cluster.clone(),
        origin: format!("EKS cluster {}", t.cluster),
    });
    // eksctl associates the cluster's OIDC issuer with IAM (`withOIDC`) through the IAM API.
    if let Some(issuer) = cluster.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()) {
        let bare = issuer.strip_prefix("https://").unwrap_or(issuer);
        let providers = aws
            .iam
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(aws_err("iam ListOpenIDConnectProviders"))?;
        for p in providers.open_id_connect_provider_list() {
            if let Some(arn) = p.arn().filter(|a| a.ends_with(&format!("oidc-provider/{bare}"))) {
                d.found.push(Found {
                    kind: "iam_oidc_provider".into(),
                    name: unique(&mut used, "iam_oidc_provider", "cluster"),
                    id: arn.to_string(),
                    origin: format!("IAM OIDC provider of cluster {}'s issuer", t.cluster),
                });
            }
        }
    }
    if let Some(sg) = cluster
        .resources_vpc_config()
        .and_then(|v| v.cluster_security_group_id())
    {
        d.unmodelled.push(Unmodelled {
            what: "security group made by EKS for the cluster".into(),
            id: sg.to_string(),
            origin: format!("EKS cluster {}; EKS owns it and its rules", t.cluster),
        });
    }
    for ng in &nodegroups {
        d.found.push(Found {
            kind: "eks_nodegroup".into(),
            name: unique(&mut used, "eks_nodegroup", &snake(ng)),
            id: format!("{}:{ng}", t.cluster),
            origin: format!("EKS managed nodegroup {ng}"),
        });
    }
    Ok(d)
}

/// CloudFormation names an EIP by its public IP; slipway by its allocation ID.
async fn eip_allocation(aws: &Clients, physical: &str) -> Result<String, ProviderError> {
    if physical.starts_with("eipalloc-") {
        return Ok(physical.to_string());
    }
    let out = aws
        .ec2
        .describe_addresses()
        .public_ips(physical)
        .send()
        .await
        .map_err(aws_err("ec2 DescribeAddresses"))?;
    Ok(out
        .addresses()
        .first()
        .and_then(|a| a.allocation_id())
        .unwrap_or(physical)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_names_from_eksctl_logical_ids() {
        let r = |l: &str, strip: &[&str]| readable(l, "us-west-2", strip);
        assert_eq!(r("SubnetPublicUSWEST2A", &["Subnet"]), "public_us_west_2a");
        assert_eq!(r("PrivateRouteTableUSWEST2B", &["RouteTable"]), "private_us_west_2b");
        assert_eq!(r("PublicRouteTable", &["RouteTable"]), "public");
        assert_eq!(r("ControlPlaneSecurityGroup", &["SecurityGroup"]), "control_plane");
        assert_eq!(r("VPC", &["VPC"]), "");
        assert_eq!(r("NATIP", &["IP"]), "nat");
        assert_eq!(r("NATGateway", &["NATGateway"]), "");
        assert_eq!(r("NodeInstanceRole", &["Role"]), "node_instance");
    }

    #[test]
    fn cluster_config_gives_name_region_and_nodegroups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cluster.yaml");
        std::fs::write(
            &p,
            "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata:\n  name: demo\n  region: us-west-2\nmanagedNodeGroups:\n  - name: ng-1\n    instanceType: t3.medium\nnodeGroups:\n  - name: legacy\n",
        )
        .unwrap();
        let t = read_config(&p).unwrap();
        assert_eq!((t.cluster.as_str(), t.region.as_str()), ("demo", "us-west-2"));
        assert_eq!(t.nodegroups, Some(vec!["ng-1".to_string(), "legacy".to_string()]));

        std::fs::write(&p, "apiVersion: v1\nkind: Pod\n").unwrap();
        assert!(read_config(&p).unwrap_err().contains("is not an eksctl ClusterConfig"));
        std::fs::write(
            &p,
            "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata: {}\n",
        )
        .unwrap();
        assert!(read_config(&p).unwrap_err().contains("metadata.name is missing"));
        std::fs::write(&p, "a: [").unwrap();
        assert!(read_config(&p).unwrap_err().contains("is not valid YAML"));
        assert!(read_config(&dir.path().join("nope.yaml"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
