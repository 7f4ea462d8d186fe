//! `slipway import eksctl` against the moto AWS emulator, with a cluster
//! built the way eksctl leaves one: CloudFormation stacks with eksctl's
//! names, logical IDs, tags and outputs for the network and IAM (templates in
//! tests/fixtures/eksctl/), plus the EKS cluster and managed nodegroup made
//! through the EKS API (moto's CloudFormation has no AWS::EKS types).

use crate::support;

use std::collections::HashMap;

use aws_sdk_cloudformation::types::{Capability, Tag};
use support::moto::Moto;
use support::Sandbox;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// Create a CloudFormation stack and return its outputs.
async fn cfn_stack(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    template: &str,
    tags: Vec<Tag>,
) -> HashMap<String, String> {
    cfn.create_stack()
        .stack_name(name)
        .template_body(template)
        .capabilities(Capability::CapabilityIam)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    let s = cfn.describe_stacks().stack_name(name).send().await.unwrap();
    let s = &s.stacks()[0];
    assert_eq!(
        s.stack_status().unwrap().as_str(),
        "CREATE_COMPLETE",
        "{:?}",
        s.stack_status_reason()
    );
    s.outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().to_string(),
                o.output_value().unwrap().to_string(),
            )
        })
        .collect()
}

fn eksctl_tags(cluster: &str) -> Vec<Tag> {
    vec![
        tag("alpha.eksctl.io/cluster-name", cluster),
        tag("eksctl.cluster.k8s.io/v1alpha1/cluster-name", cluster),
        tag("alpha.eksctl.io/eksctl-version", "0.194.0"),
    ]
}

/// What `eksctl create cluster --name demo --nodes 2` leaves behind.
async fn eksctl_cluster(moto: &Moto, cluster: &str) {
    let conf = moto.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&conf);
    let eks = aws_sdk_eks::Client::new(&conf);
    let out = cfn_stack(
        &cfn,
        &format!("eksctl-{cluster}-cluster"),
        include_str!("../fixtures/eksctl/cluster.json"),
        eksctl_tags(cluster),
    )
    .await;
    let mut ng_tags = eksctl_tags(cluster);
    ng_tags.push(tag("alpha.eksctl.io/nodegroup-name", "ng-1"));
    ng_tags.push(tag("alpha.eksctl.io/nodegroup-type", "managed"));
    let ng_out = cfn_stack(
        &cfn,
        &format!("eksctl-{cluster}-nodegroup-ng-1"),
        include_str!("../fixtures/eksctl/nodegroup.json"),
        ng_tags,
    )
    .await;
    // moto's CloudFormation records SubnetRouteTableAssociation and ignores
    // EnableDnsHostnames / MapPublicIpOnLaunch without applying them: do
    // through EC2 what the template asks, as AWS would have.
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let res = cfn
        .list_stack_resources()
        .stack_name(format!("eksctl-{cluster}-cluster"))
        .send()
        .await
        .unwrap();
    let phys: HashMap<String, String> = res
        .stack_resource_summaries()
        .iter()
        .map(|r| {
            (
                r.logical_resource_id().unwrap().to_string(),
                r.physical_resource_id().unwrap().to_string(),
            )
        })
        .collect();
    for z in ["USEAST1A", "USEAST1B"] {
        for (table, subnet) in [
            ("PublicRouteTable".to_string(), format!("SubnetPublic{z}")),
            (format!("PrivateRouteTable{z}"), format!("SubnetPrivate{z}")),
        ] {
            ec2.associate_route_table()
                .route_table_id(&phys[&table])
                .subnet_id(&phys[&subnet])
                .send()
                .await
                .unwrap();
        }
        ec2.modify_subnet_attribute()
            .subnet_id(&phys[&format!("SubnetPublic{z}")])
            .map_public_ip_on_launch(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .unwrap();
    }
    ec2.modify_vpc_attribute()
        .vpc_id(&out["VPC"])
        .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let subnets: Vec<String> = out["SubnetsPublic"]
        .split(',')
        .chain(out["SubnetsPrivate"].split(','))
        .map(str::to_string)
        .collect();
    eks.create_cluster()
        .name(cluster)
        .version("1.30")
        .role_arn(&out["ServiceRoleARN"])
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnets))
                .security_group_ids(&out["SecurityGroup"])
                .endpoint_public_access(true)
                .endpoint_private_access(false)
                .build(),
        )
        .tags("alpha.eksctl.io/cluster-name", cluster)
        .tags("eksctl.cluster.k8s.io/v1alpha1/cluster-name", cluster)
        .send()
        .await
        .unwrap();
    // `withOIDC: true`: eksctl associates the issuer with IAM, then an IRSA
    // role for aws-node in an addon stack.
    let issuer = eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .unwrap()
        .cluster()
        .unwrap()
        .identity()
        .unwrap()
        .oidc()
        .unwrap()
        .issuer()
        .unwrap()
        .to_string();
    let iam = aws_sdk_iam::Client::new(&conf);
    let provider = iam
        .create_open_id_connect_provider()
        .url(&issuer)
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_arn()
        .unwrap()
        .to_string();
    let bare = issuer.trim_start_matches("https://");
    let addon = serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "IAM role for serviceaccount \"kube-system/aws-node\" [created and managed by eksctl]",
        "Resources": {"Role1": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Principal": {"Federated": provider},
                "Condition": {"StringEquals": {format!("{bare}:aud"): "sts.amazonaws.com", format!("{bare}:sub"): "system:serviceaccount:kube-system:aws-node"}}
            }]},
            "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
        }}},
        "Outputs": {"Role1": {"Value": {"Fn::GetAtt": ["Role1", "Arn"]}}}
    });
    let mut addon_tags = eksctl_tags(cluster);
    addon_tags.push(tag("alpha.eksctl.io/iamserviceaccount-name", "kube-system/aws-node"));
    cfn_stack(
        &cfn,
        &format!("eksctl-{cluster}-addon-iamserviceaccount-kube-system-aws-node"),
        &addon.to_string(),
        addon_tags,
    )
    .await;
    eks.create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name("ng-1")
        .node_role(&ng_out["NodeInstanceRoleARN"])
        .set_subnets(Some(out["SubnetsPrivate"].split(',').map(str::to_string).collect()))
        .instance_types("m5.large")
        .ami_type(aws_sdk_eks::types::AmiTypes::Al2X8664)
        .disk_size(80)
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(2)
                .max_size(4)
                .desired_size(2)
                .build(),
        )
        .labels("alpha.eksctl.io/cluster-name", cluster)
        .labels("alpha.eksctl.io/nodegroup-name", "ng-1")
        .tags("alpha.eksctl.io/nodegroup-name", "ng-1")
        .tags("alpha.eksctl.io/nodegroup-type", "managed")
        .send()
        .await
        .unwrap();
}

const CONFIG: &str = "apiVersion: eksctl.io/v1alpha5\nkind: ClusterConfig\nmetadata:\n  name: demo\n  region: us-east-1\n  version: \"1.30\"\nmanagedNodeGroups:\n  - name: ng-1\n    instanceType: m5.large\n    desiredCapacity: 2\n    minSize: 2\n    maxSize: 4\n    volumeSize: 80\n    privateNetworking: true\n";

#[test]
fn eksctl_cluster_imports_with_references_plans_clean_updates_in_place_and_refuses_destroy_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    rt().block_on(eksctl_cluster(&moto, "demo"));
    sb.write("cluster.yaml", CONFIG);

    let r = sb
        .run(&["import", "eksctl", "--config", "cluster.yaml", "--out", "stacks/demo"])
        .expect(0);
    assert!(
        r.stdout.contains("Imported 19 resources of EKS cluster demo"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("eksctl-demo-cluster, eksctl-demo-nodegroup-ng-1")
            && r.stdout.contains("The cloud was not changed"),
        "{}",
        r.stdout
    );
    // Not modelled: said in the output and in the file.
    assert!(
        r.stdout.contains("AWS::EC2::LaunchTemplate") && r.stdout.contains("eksctl-demo-nodegroup-ng-1/LaunchTemplate"),
        "{}",
        r.stdout
    );
    let toml = sb.read("stacks/demo/main.toml");
    assert!(
        toml.contains("# Not modelled by slipway") && toml.contains("AWS::EC2::LaunchTemplate"),
        "{toml}"
    );
    // Readable names from eksctl's logical IDs, and references instead of IDs.
    for table in [
        "[vpc.main]",
        "[subnet.public_us_east_1a]",
        "[subnet.private_us_east_1b]",
        "[internet_gateway.main]",
        "[elastic_ip.nat]",
        "[nat_gateway.main]",
        "[route_table.public]",
        "[route_table.private_us_east_1a]",
        "[security_group.control_plane]",
        "[security_group.cluster_shared_node]",
        "[iam_role.service]",
        "[iam_role.ng_1_node_instance]",
        "[eks_cluster.demo]",
        "[eks_nodegroup.ng_1]",
        "[iam_oidc_provider.cluster]",
        "[iam_role.addon_iamserviceaccount_kube_system_aws_node_1]",
    ] {
        assert!(toml.contains(table), "{table} missing:\n{toml}");
    }
    assert!(toml.contains("vpc = \"${vpc.main.id}\""), "{toml}");
    assert!(toml.contains("role = \"${iam_role.service.arn}\""), "{toml}");
    assert!(toml.contains("cluster = \"${eks_cluster.demo.name}\""), "{toml}");
    assert!(toml.contains("name = \"ng-1\""), "{toml}");
    assert!(toml.contains("url = \"${eks_cluster.demo.oidc_issuer}\""), "{toml}");
    assert!(
        toml.contains("Federated = [\"${iam_oidc_provider.cluster.arn}\"]"),
        "{toml}"
    );
    assert!(
        toml.contains("node_role = \"${iam_role.ng_1_node_instance.arn}\""),
        "{toml}"
    );
    assert!(toml.contains("nat_gateway = \"${nat_gateway.main.id}\""), "{toml}");
    assert!(
        toml.contains("subnets = [\"${subnet.private_us_east_1a.id}\"]"),
        "{toml}"
    );
    assert!(
        toml.contains("enable_dns_hostnames = true") && toml.contains("public = true"),
        "{toml}"
    );
    assert!(toml.contains("elastic_ip = \"${elastic_ip.nat.id}\""), "{toml}");
    let body: Vec<&str> = toml.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        !body
            .iter()
            .any(|l| l.contains("\"vpc-") || l.contains("\"subnet-") || l.contains("\"sg-")),
        "raw IDs left outside comments:\n{toml}"
    );
    let st = sb.state("demo");
    assert_eq!(st["resources"].as_object().unwrap().len(), 19);
    assert!(st["resources"]
        .as_object()
        .unwrap()
        .values()
        .all(|r| r["protect"] == true));

    // Right after the import, the plan is empty.
    sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(0);

    // Importing again over it is refused.
    let r = sb
        .run(&[
            "import",
            "eksctl",
            "--cluster",
            "demo",
            "--region",
            "us-east-1",
            "--out",
            "stacks/demo",
        ])
        .expect(1);
    assert!(
        r.stderr.contains("stacks/demo already exists; pass --force"),
        "{}",
        r.stderr
    );

    // A scaling change in the generated file is an in-place update.
    let edited = toml.replace(
        "scaling = { min = 2, max = 4, desired = 2 }",
        "scaling = { min = 2, max = 5, desired = 3 }",
    );
    assert_ne!(edited, toml, "scaling line not found:\n{toml}");
    sb.write("stacks/demo/main.toml", &edited);
    let p = sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(2);
    assert!(
        p.stdout.contains("# eks_nodegroup.ng_1 will be updated in place")
            && p.stdout.contains("1 to change, 0 to destroy"),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(0);

    // Protected: destroy refuses, and nothing is deleted.
    let r = sb.run(&["destroy", "stacks/demo", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("is protected, and this plan would delete it"),
        "{}",
        r.stderr
    );
    rt().block_on(async {
        let eks = aws_sdk_eks::Client::new(&moto.sdk_config().await);
        eks.describe_cluster().name("demo").send().await.unwrap();
    });

    // --force imports again over the directory and the state (old state kept as .backup).
    sb.write("stacks/demo/extra.toml", "[data.x]\ninput = \"1\"\n");
    let r = sb
        .run(&[
            "import",
            "eksctl",
            "--config",
            "cluster.yaml",
            "--out",
            "stacks/demo",
            "--force",
        ])
        .expect(0);
    assert!(r.stdout.contains("Imported 19 resources"), "{}", r.stdout);
    assert!(
        !sb.exists("stacks/demo/extra.toml"),
        "--force replaces the directory's .toml files"
    );
    assert!(sb.exists("state/demo.json.backup"));
    assert!(sb
        .read("stacks/demo/main.toml")
        .contains("scaling = { min = 2, max = 5, desired = 3 }"));
    sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(0);
}

#[test]
fn eksctl_import_bad_input_writes_nothing_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    rt().block_on(async {
        eksctl_cluster(&moto, "demo").await;
        let conf = moto.sdk_config().await;
        // A stack with eksctl's name that eksctl did not make.
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        cfn_stack(
            &cfn,
            "eksctl-other-cluster",
            include_str!("../fixtures/eksctl/nodegroup.json"),
            vec![tag("team", "ops")],
        )
        .await;
    });
    let nothing_written = |sb: &Sandbox| {
        assert!(!sb.exists("stacks") && !sb.exists("state"), "something was written");
    };

    let r = sb
        .run(&[
            "import",
            "eksctl",
            "--cluster",
            "nope",
            "--region",
            "us-east-1",
            "--out",
            "stacks/nope",
        ])
        .expect(1);
    assert!(
        r.stderr.contains("there is no EKS cluster named nope in us-east-1")
            && r.stderr.contains("clusters there: demo"),
        "{}",
        r.stderr
    );
    nothing_written(&sb);
    let r = sb
        .run(&[
            "import",
            "eksctl",
            "--cluster",
            "demo",
            "--region",
            "us-west-2",
            "--out",
            "stacks/demo",
        ])
        .expect(1);
    assert!(
        r.stderr.contains("no EKS cluster named demo in us-west-2") && r.stderr.contains("clusters there: none"),
        "{}",
        r.stderr
    );
    nothing_written(&sb);
    let r = sb
        .run(&[
            "import",
            "eksctl",
            "--cluster",
            "other",
            "--region",
            "us-east-1",
            "--out",
            "stacks/other",
        ])
        .expect(1);
    assert!(
        r.stderr
            .contains("eksctl-other-cluster has eksctl's name but not its tag")
            && r.stderr.contains("another tool"),
        "{}",
        r.stderr
    );
    nothing_written(&sb);
    sb.write("c.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n");
    let r = sb
        .run(&["import", "eksctl", "--config", "c.yaml", "--out", "stacks/x"])
        .expect(1);
    assert!(
        r.stderr.contains("c.yaml is not an eksctl ClusterConfig"),
        "{}",
        r.stderr
    );
    let r = sb
        .run(&["import", "eksctl", "--config", "missing.yaml", "--out", "stacks/x"])
        .expect(1);
    assert!(r.stderr.contains("cannot read missing.yaml"), "{}", r.stderr);
    sb.write("c.yaml", &CONFIG.replace("ng-1", "ng-9"));
    let r = sb
        .run(&["import", "eksctl", "--config", "c.yaml", "--out", "stacks/x"])
        .expect(1);
    assert!(
        r.stderr
            .contains("nodegroups that cluster demo does not have: ng-9 (it has: ng-1)"),
        "{}",
        r.stderr
    );
    assert!(!sb.exists("stacks") && !sb.exists("state"));
}

#[test]
fn cluster_made_without_eksctl_imports_through_the_eks_api_only_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    rt().block_on(async {
        let conf = moto.sdk_config().await;
        // EKS refuses subnets that do not exist: make two in moto first.
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let vpc = ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
        let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
        let mut subnets = Vec::new();
        for cidr in ["10.9.1.0/24", "10.9.2.0/24"] {
            let s = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).send().await.unwrap();
            subnets.push(s.subnet().and_then(|s| s.subnet_id()).unwrap().to_string());
        }
        let eks = aws_sdk_eks::Client::new(&conf);
        eks.create_cluster()
            .name("plain")
            .version("1.31")
            .role_arn("arn:aws:iam::123456789012:role/plain-cluster")
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(subnets.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        eks.create_nodegroup()
            .cluster_name("plain")
            .nodegroup_name("workers")
            .node_role("arn:aws:iam::123456789012:role/plain-nodes")
            .subnets(&subnets[0])
            .scaling_config(
                aws_sdk_eks::types::NodegroupScalingConfig::builder()
                    .min_size(1)
                    .max_size(3)
                    .desired_size(1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let r = sb
        .run(&[
            "import",
            "eksctl",
            "--cluster",
            "plain",
            "--region",
            "us-east-1",
            "--out",
            "stacks/plain",
        ])
        .expect(0);
    assert!(
        r.stdout.contains("through the EKS API only") && r.stdout.contains("No eksctl CloudFormation stacks for plain"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Imported 2 resources"), "{}", r.stdout);
    let toml = sb.read("stacks/plain/main.toml");
    assert!(
        toml.contains("[eks_cluster.plain]") && toml.contains("[eks_nodegroup.workers]"),
        "{toml}"
    );
    assert!(toml.contains("cluster = \"${eks_cluster.plain.name}\""), "{toml}");
    sb.run(&["plan", "stacks/plain", "--detailed-exitcode"]).expect(0);
}
