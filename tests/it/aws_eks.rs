//! EKS clusters and nodegroups against the moto AWS emulator. moto makes
//! clusters and nodegroups ACTIVE at once and lacks UpdateClusterVersion,
//! DescribeUpdate and access entries: the waiting logic and those calls are
//! tested with the SDK's mock client in src/providers/aws/eks.rs.

use crate::support;

use support::moto::Moto;
use support::Sandbox;

const STACK: &str = r#"
[stack]
name = "eks"
region = "us-east-1"

[vpc.main]
cidr = "10.0.0.0/16"

[subnet.a]
vpc = "${vpc.main.id}"
cidr = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc = "${vpc.main.id}"
cidr = "10.0.2.0/24"
availability_zone = "us-east-1b"

[iam_role.cluster]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }
managed_policy_arns = ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]

[iam_role.nodes]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }] }

[eks_cluster.main]
version = "1.30"
role = "${iam_role.cluster.arn}"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]
logging = ["api", "audit"]

[eks_nodegroup.main]
cluster = "${eks_cluster.main.name}"
node_role = "${iam_role.nodes.arn}"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]
instance_types = ["t3.large"]
scaling = { min = 1, max = 3, desired = 2 }
labels = { role = "web" }
taints = [{ key = "dedicated", value = "web", effect = "NO_SCHEDULE" }]

[iam_oidc_provider.cluster]
url = "${eks_cluster.main.oidc_issuer}"
"#;

fn setup() -> (Moto, Sandbox) {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("stacks/eks/main.toml", STACK);
    sb.run(&["apply", "stacks/eks", "--auto-approve"]).expect(0);
    (moto, sb)
}

fn attr(sb: &Sandbox, addr: &str, a: &str) -> String {
    sb.state("eks")["resources"][addr]["attributes"][a]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn cluster_and_nodegroup_apply_and_replan_clean_against_moto_emulator() {
    let (moto, sb) = setup();
    let p = sb
        .run(&["plan", "stacks/eks", "--detailed-exitcode", "--stats"])
        .expect(0);
    assert!(
        p.stderr.contains("DescribeCluster                          1"),
        "{}",
        p.stderr
    );
    assert!(
        p.stderr.contains("DescribeNodegroup                        1"),
        "{}",
        p.stderr
    );
    assert!(attr(&sb, "eks_cluster.main", "arn").starts_with("arn:aws:eks:us-east-1:"));
    assert!(!attr(&sb, "eks_cluster.main", "endpoint").is_empty());
    assert!(!attr(&sb, "eks_cluster.main", "certificate_authority").is_empty());
    assert!(attr(&sb, "eks_nodegroup.main", "nodegroup_name").starts_with("main-"));
    let oidc = attr(&sb, "iam_oidc_provider.cluster", "arn");
    let issuer = attr(&sb, "eks_cluster.main", "oidc_issuer");
    assert!(
        oidc.ends_with(issuer.trim_start_matches("https://")),
        "{oidc} for {issuer}"
    );
    assert_eq!(
        sb.state("eks")["resources"]["iam_oidc_provider.cluster"]["attributes"]["client_ids"],
        serde_json::json!(["sts.amazonaws.com"])
    );
    rt().block_on(async {
        let eks = aws_sdk_eks::Client::new(&moto.sdk_config().await);
        let c = eks.describe_cluster().name("eks-main").send().await.unwrap();
        let tags = c.cluster().unwrap().tags().unwrap();
        assert_eq!(
            tags.get("slipway:address").map(String::as_str),
            Some("eks_cluster.main"),
            "tagged in CreateCluster"
        );
    });

    // The kubeconfig authenticates with slipway itself and holds no secret.
    sb.run(&["kubeconfig", "stacks/eks", "--out", "kube.yaml"]).expect(0);
    let kc = sb.read("kube.yaml");
    assert!(
        kc.contains(&format!("server: \"{}\"", attr(&sb, "eks_cluster.main", "endpoint"))),
        "{kc}"
    );
    assert!(
        kc.contains("- \"eks-token\"") && kc.contains("- \"eks-main\"") && kc.contains("- \"us-east-1\""),
        "{kc}"
    );
    assert!(!kc.contains("token:") && !kc.contains("password"), "{kc}");
}

#[test]
fn scaling_labels_and_taints_update_in_place_against_moto_emulator() {
    let (moto, sb) = setup();
    let before = attr(&sb, "eks_nodegroup.main", "nodegroup_name");
    sb.write(
        "stacks/eks/main.toml",
        &STACK
            .replace(
                "scaling = { min = 1, max = 3, desired = 2 }",
                "scaling = { min = 2, max = 5, desired = 4 }",
            )
            .replace(
                "labels = { role = \"web\" }",
                "labels = { role = \"api\", tier = \"1\" }",
            )
            .replace(
                "value = \"web\", effect = \"NO_SCHEDULE\"",
                "value = \"api\", effect = \"NO_EXECUTE\"",
            ),
    );
    let p = sb.run(&["plan", "stacks/eks"]).expect(0);
    assert!(
        p.stdout.contains("# eks_nodegroup.main will be updated in place"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/eks", "--auto-approve"]).expect(0);
    assert_eq!(attr(&sb, "eks_nodegroup.main", "nodegroup_name"), before);
    sb.run(&["plan", "stacks/eks", "--detailed-exitcode"]).expect(0);
    rt().block_on(async {
        let eks = aws_sdk_eks::Client::new(&moto.sdk_config().await);
        let n = eks
            .describe_nodegroup()
            .cluster_name("eks-main")
            .nodegroup_name(&before)
            .send()
            .await
            .unwrap();
        let n = n.nodegroup().unwrap();
        assert_eq!(n.scaling_config().unwrap().max_size(), Some(5));
        assert_eq!(n.labels().unwrap().get("tier").map(String::as_str), Some("1"));
        assert_eq!(n.taints()[0].value(), Some("api"));
    });
}

#[test]
fn instance_type_change_replaces_the_nodegroup_new_one_first_against_moto_emulator() {
    let (moto, sb) = setup();
    let old = attr(&sb, "eks_nodegroup.main", "nodegroup_name");
    sb.write("stacks/eks/main.toml", &STACK.replace("t3.large", "m5.large"));
    let p = sb.run(&["plan", "stacks/eks"]).expect(0);
    assert!(
        p.stdout
            .contains("must be replaced (`instance_types` forces replacement, new object first)"),
        "{}",
        p.stdout
    );
    let a = sb.run(&["apply", "stacks/eks", "--auto-approve"]).expect(0);
    let pos = |s: &str| a.stdout.find(s).unwrap_or_else(|| panic!("{s}: {}", a.stdout));
    assert!(
        pos("eks_nodegroup.main: Creation complete") < pos("eks_nodegroup.main: Destroying..."),
        "{}",
        a.stdout
    );
    let new = attr(&sb, "eks_nodegroup.main", "nodegroup_name");
    assert_ne!(
        new, old,
        "the new nodegroup has its own name, so both exist during the switch"
    );
    sb.run(&["plan", "stacks/eks", "--detailed-exitcode"]).expect(0);
    rt().block_on(async {
        let eks = aws_sdk_eks::Client::new(&moto.sdk_config().await);
        let ngs = eks.list_nodegroups().cluster_name("eks-main").send().await.unwrap();
        assert_eq!(ngs.nodegroups(), [new.clone()]);
    });
}

#[test]
fn desired_size_changed_by_hand_is_drift_only_when_not_autoscaled_against_moto_emulator() {
    let (moto, sb) = setup();
    let ng = attr(&sb, "eks_nodegroup.main", "nodegroup_name");
    let scale_by_hand = |desired: i32| {
        rt().block_on(async {
            let eks = aws_sdk_eks::Client::new(&moto.sdk_config().await);
            eks.update_nodegroup_config()
                .cluster_name("eks-main")
                .nodegroup_name(&ng)
                .scaling_config(
                    aws_sdk_eks::types::NodegroupScalingConfig::builder()
                        .min_size(1)
                        .max_size(3)
                        .desired_size(desired)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        })
    };
    scale_by_hand(3);
    let p = sb.run(&["plan", "stacks/eks", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("# eks_nodegroup.main has changed"), "{}", p.stdout);
    sb.write(
        "stacks/eks/main.toml",
        &STACK.replace(
            "scaling = { min = 1, max = 3, desired = 2 }",
            "scaling = { min = 1, max = 3, desired = 2 }\nautoscaled = true",
        ),
    );
    sb.run(&["apply", "stacks/eks", "--auto-approve"]).expect(0);
    scale_by_hand(1);
    let p = sb.run(&["plan", "stacks/eks", "--detailed-exitcode"]).expect(0);
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);
}

#[test]
fn version_jumps_are_refused_subnets_move_in_place_and_a_new_role_replaces_loudly_against_moto_emulator() {
    let (_moto, sb) = setup();
    sb.write(
        "stacks/eks/main.toml",
        &STACK.replace("version = \"1.30\"", "version = \"1.32\""),
    );
    let r = sb.run(&["plan", "stacks/eks"]).expect(1);
    assert!(r.stderr.contains("stacks/eks/main.toml:27:11"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("one minor version at a time: from 1.30 go to 1.31 first"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("no attributes yet"),
        "no cascade of errors: {}",
        r.stderr
    );
    sb.write(
        "stacks/eks/main.toml",
        &STACK.replace("version = \"1.30\"", "version = \"1.31\""),
    );
    let p = sb.run(&["plan", "stacks/eks"]).expect(0);
    assert!(
        p.stdout.contains("# eks_cluster.main will be updated in place"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("~ version"), "{}", p.stdout);

    let moved = STACK.replace(
        "subnets = [\"${subnet.a.id}\", \"${subnet.b.id}\"]\nlogging",
        "subnets = [\"${subnet.a.id}\", \"${subnet.c.id}\"]\nlogging",
    )
        + "\n[subnet.c]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.3.0/24\"\navailability_zone = \"us-east-1c\"\n";
    sb.write("stacks/eks/main.toml", &moved);
    // EKS moves a cluster to other subnets of its VPC in place (a VpcConfigUpdate).
    let p = sb.run(&["plan", "stacks/eks"]).expect(0);
    assert!(
        p.stdout.contains("# eks_cluster.main will be updated in place"),
        "{}",
        p.stdout
    );
    assert!(!p.stdout.contains("REPLACES"), "{}", p.stdout);
    sb.run(&["apply", "stacks/eks", "--auto-approve"]).expect(0);
    let c = attr(&sb, "subnet.c", "id");
    rt().block_on(async {
        let eks = aws_sdk_eks::Client::new(&_moto.sdk_config().await);
        let d = eks.describe_cluster().name("eks-main").send().await.unwrap();
        let subnets = d
            .cluster()
            .unwrap()
            .resources_vpc_config()
            .unwrap()
            .subnet_ids()
            .to_vec();
        assert!(subnets.contains(&c), "{subnets:?} holds {c}");
    });
    sb.run(&["plan", "stacks/eks", "--detailed-exitcode"]).expect(0);

    // A new role is a new cluster, and the plan says so loudly.
    sb.write(
        "stacks/eks/main.toml",
        &(moved.replace("role = \"${iam_role.cluster.arn}\"", "role = \"${iam_role.cluster2.arn}\"")
            + "\n[iam_role.cluster2]\nassume_role_policy = { Version = \"2012-10-17\", Statement = [{ Effect = \"Allow\", Principal = { Service = \"eks.amazonaws.com\" }, Action = \"sts:AssumeRole\" }] }\n"),
    );
    let p = sb.run(&["plan", "stacks/eks"]).expect(0);
    assert!(
        p.stdout
            .contains("# eks_cluster.main must be replaced (`role` forces replacement)"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("!!! WARNING: replacing an EKS cluster deletes it"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("!!! This plan REPLACES:"), "{}", p.stdout);
}

#[test]
fn destroy_deletes_nodegroups_before_their_cluster_against_moto_emulator() {
    let (moto, sb) = setup();
    let d = sb.run(&["destroy", "stacks/eks", "--auto-approve"]).expect(0);
    let pos = |s: &str| d.stdout.find(s).unwrap_or_else(|| panic!("{s}: {}", d.stdout));
    assert!(
        pos("eks_nodegroup.main: Destruction complete") < pos("eks_cluster.main: Destroying..."),
        "{}",
        d.stdout
    );
    assert!(
        pos("eks_cluster.main: Destruction complete") < pos("subnet.a: Destroying..."),
        "{}",
        d.stdout
    );
    rt().block_on(async {
        let eks = aws_sdk_eks::Client::new(&moto.sdk_config().await);
        assert!(eks.list_clusters().send().await.unwrap().clusters().is_empty());
    });
}

#[test]
fn eks_token_prints_an_exec_credential_without_any_network_call() {
    let mut sb = Sandbox::new();
    sb.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), "AKIDEXAMPLE".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "secret".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_CONFIG_FILE".into(), "/nonexistent".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/nonexistent".into()),
    ];
    let r = sb
        .run(&["eks-token", "--cluster", "blog", "--region", "eu-west-1"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["kind"], "ExecCredential");
    let tok = v["status"]["token"].as_str().unwrap();
    assert!(tok.starts_with("k8s-aws-v1."), "{tok}");
    use base64::Engine;
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&tok[11..])
            .unwrap(),
    )
    .unwrap();
    assert!(
        url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"),
        "{url}"
    );
    assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"), "{url}");
    assert!(
        !r.stdout.contains("secret") && !r.stderr.contains("secret"),
        "the secret key never shows"
    );

    sb.env
        .retain(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"));
    let r = sb.run(&["eks-token", "--cluster", "blog", "--region", "eu-west-1"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("credentials"), "{}", r.stderr);
}
