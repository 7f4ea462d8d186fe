//! Real-world API conditions, made by a fault proxy in front of the moto AWS
//! emulator: throttling, server errors and lost responses. The whole blog
//! stack must converge with exactly one cloud object per declared resource.

use crate::support;

use std::collections::BTreeMap;

use support::k8s::K8sEmulator;
use support::moto::Moto;
use support::proxy::FaultProxy;
use support::Sandbox;

fn blog(sb: &Sandbox) -> String {
    sb.example("blog")
}

/// Objects carrying the blog stack's ownership tag, per kind, read from moto
/// directly (not through the proxy, not through slipway's state).
fn owned_counts(moto: &Moto) -> BTreeMap<&'static str, usize> {
    use aws_sdk_ec2::types::Filter;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conf = moto.sdk_config().await.into_builder();
        conf.set_region(Some(aws_config::Region::new("us-west-2")));
        let conf = conf.build();
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let f = || Filter::builder().name("tag:slipway:stack").values("blog").build();
        let mut c = BTreeMap::new();
        c.insert(
            "vpc",
            ec2.describe_vpcs().filters(f()).send().await.unwrap().vpcs().len(),
        );
        c.insert(
            "subnet",
            ec2.describe_subnets()
                .filters(f())
                .send()
                .await
                .unwrap()
                .subnets()
                .len(),
        );
        c.insert(
            "internet_gateway",
            ec2.describe_internet_gateways()
                .filters(f())
                .send()
                .await
                .unwrap()
                .internet_gateways()
                .len(),
        );
        c.insert(
            "elastic_ip",
            ec2.describe_addresses()
                .filters(f())
                .send()
                .await
                .unwrap()
                .addresses()
                .len(),
        );
        let nats = ec2.describe_nat_gateways().send().await.unwrap();
        c.insert(
            "nat_gateway",
            nats.nat_gateways()
                .iter()
                .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
                .filter(|n| {
                    n.tags()
                        .iter()
                        .any(|t| t.key() == Some("slipway:stack") && t.value() == Some("blog"))
                })
                .count(),
        );
        c.insert(
            "route_table",
            ec2.describe_route_tables()
                .filters(f())
                .send()
                .await
                .unwrap()
                .route_tables()
                .len(),
        );
        c.insert(
            "security_group",
            ec2.describe_security_groups()
                .filters(f())
                .send()
                .await
                .unwrap()
                .security_groups()
                .len(),
        );
        let rules = ec2.describe_security_group_rules().send().await.unwrap();
        c.insert(
            "security_group_rule",
            rules
                .security_group_rules()
                .iter()
                .filter(|r| {
                    r.tags()
                        .iter()
                        .any(|t| t.key() == Some("slipway:stack") && t.value() == Some("blog"))
                })
                .count(),
        );
        let iam = aws_sdk_iam::Client::new(&conf);
        c.insert(
            "iam_role",
            iam.list_roles()
                .send()
                .await
                .unwrap()
                .roles()
                .iter()
                .filter(|r| r.role_name().starts_with("blog-"))
                .count(),
        );
        c.insert(
            "iam_oidc_provider",
            iam.list_open_id_connect_providers()
                .send()
                .await
                .unwrap()
                .open_id_connect_provider_list()
                .len(),
        );
        let eks = aws_sdk_eks::Client::new(&conf);
        c.insert(
            "eks_cluster",
            eks.list_clusters().send().await.unwrap().clusters().len(),
        );
        c.insert(
            "eks_nodegroup",
            eks.list_nodegroups()
                .cluster_name("blog")
                .send()
                .await
                .map(|o| o.nodegroups().len())
                .unwrap_or(0),
        );
        c.insert(
            "eks_addon",
            eks.list_addons()
                .cluster_name("blog")
                .send()
                .await
                .map(|o| o.addons().len())
                .unwrap_or(0),
        );
        c.insert(
            "eks_access_entry",
            eks.list_access_entries()
                .cluster_name("blog")
                .send()
                .await
                .map(|o| o.access_entries().len())
                .unwrap_or(0),
        );
        let acm = aws_sdk_acm::Client::new(&conf);
        c.insert(
            "acm_certificate",
            acm.list_certificates()
                .send()
                .await
                .unwrap()
                .certificate_summary_list()
                .len(),
        );
        // Records carry no tags: the stack's one A record, in any zone.
        let r53 = aws_sdk_route53::Client::new(&conf);
        let mut records = 0;
        for z in r53.list_hosted_zones().send().await.unwrap().hosted_zones() {
            let sets = r53
                .list_resource_record_sets()
                .hosted_zone_id(z.id())
                .send()
                .await
                .unwrap();
            records += sets
                .resource_record_sets()
                .iter()
                .filter(|s| s.r#type().as_str() == "A" && s.name().trim_end_matches('.') == "blog.example.com")
                .count();
        }
        c.insert("route53_record", records);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        let lbs = elb.describe_load_balancers().send().await.unwrap();
        c.insert("alb", lbs.load_balancers().len());
        c.insert(
            "alb_target_group",
            elb.describe_target_groups().send().await.unwrap().target_groups().len(),
        );
        let mut listeners = 0;
        for lb in lbs.load_balancers() {
            listeners += elb
                .describe_listeners()
                .load_balancer_arn(lb.load_balancer_arn().unwrap())
                .send()
                .await
                .unwrap()
                .listeners()
                .len();
        }
        c.insert("alb_listener", listeners);
        c
    })
}

fn declared() -> BTreeMap<&'static str, usize> {
    [
        ("vpc", 1),
        ("subnet", 6),
        ("internet_gateway", 1),
        ("elastic_ip", 1),
        ("nat_gateway", 1),
        ("route_table", 2),
        ("security_group", 1),
        ("security_group_rule", 1),
        ("iam_role", 2),
        ("iam_oidc_provider", 1),
        ("eks_cluster", 1),
        ("eks_nodegroup", 1),
        ("eks_addon", 1),
        ("eks_access_entry", 1),
        ("acm_certificate", 1),
        ("route53_record", 1),
        ("alb", 1),
        ("alb_target_group", 1),
        ("alb_listener", 2),
    ]
    .into_iter()
    .collect()
}

fn run_blog_through(flags: &[&str]) -> (Moto, FaultProxy, Sandbox, K8sEmulator) {
    let moto = Moto::start();
    moto.blog_prerequisites();
    let emu = K8sEmulator::start();
    let mut sb = Sandbox::with_moto(&moto);
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), flags);
    sb.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL" && k != "AWS_REGION");
    sb.env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    sb.env.push(("AWS_REGION".into(), "us-west-2".into()));
    sb.write("kubeconfig.yaml", &emu.kubeconfig());
    sb.env.push((
        "SLIPWAY_KUBECONFIG_OVERRIDE".into(),
        sb.path("kubeconfig.yaml").display().to_string(),
    ));
    sb.env.push(("SLIPWAY_SECRET_REGISTRY_PASSWORD".into(), "token".into()));
    let _controller = emu.controller();
    let a = sb.run(&["apply", &blog(&sb), "--auto-approve"]);
    assert_eq!(a.code, 0, "apply did not converge:\n{}\n{}", a.stdout, a.stderr);
    sb.run(&["plan", &blog(&sb), "--detailed-exitcode"]).expect(0);
    assert_eq!(
        owned_counts(&moto),
        declared(),
        "exactly one object per declared resource"
    );
    drop(_controller);
    (moto, proxy, sb, emu)
}

#[test]
fn the_blog_stack_converges_under_throttling_and_server_errors_through_the_fault_proxy_against_moto() {
    let (_moto, proxy, _sb, _emu) = run_blog_through(&["--throttle", "0.2", "--error5xx", "0.05", "--seed", "7"]);
    let calls = proxy.calls();
    let faults = |f: &str| calls.iter().filter(|c| c["fault"] == f).count();
    assert!(faults("throttle") > 10, "the proxy throttled ({} calls)", calls.len());
    assert!(faults("5xx") > 1, "the proxy answered server errors");
    let throttled: std::collections::BTreeSet<&str> = calls
        .iter()
        .filter(|c| c["fault"] == "throttle")
        .filter_map(|c| c["service"].as_str())
        .collect();
    assert!(throttled.len() >= 3, "several services were throttled: {throttled:?}");
}

#[test]
fn lost_create_responses_leave_no_duplicates_and_no_orphans_through_the_fault_proxy_against_moto() {
    // SLIPWAY_FAULT_SEED replays another sequence of faults.
    let seed = std::env::var("SLIPWAY_FAULT_SEED").unwrap_or_else(|_| "11".into());
    let (moto, proxy, sb, _emu) = run_blog_through(&["--lose", "0.2", "--seed", &seed]);
    let lost = proxy.calls().iter().filter(|c| c["fault"] == "lost-response").count();
    assert!(lost >= 1, "some creates acted but their answers were lost ({lost})");
    // And destroy through the same lossy proxy leaves nothing.
    sb.run(&["destroy", &blog(&sb), "--auto-approve"]).expect(0);
    assert!(
        owned_counts(&moto).values().all(|n| *n == 0),
        "orphans: {:?}",
        owned_counts(&moto)
    );
}

#[test]
fn the_blog_cluster_has_access_entries_on_and_https_waits_for_an_issued_certificate_as_the_proxy_log_shows_against_moto(
) {
    // What CreateCluster carried is read from the proxy's log of the
    // request (moto reports only the authentication mode back).
    let (_moto, proxy, _sb, _emu) = run_blog_through(&[]);
    let calls = proxy.calls();
    // The HTTPS listener is created only after ACM answered ISSUED (and
    // moto_server.py issues only once Route53 holds the validation CNAMEs).
    let https = calls
        .iter()
        .position(|c| c["action"] == "CreateListener" && c["port"] == "443" && c["status"] == 200)
        .expect("an HTTPS CreateListener");
    let issued = calls
        .iter()
        .position(|c| c["certificate_status"] == "ISSUED")
        .expect("a DescribeCertificate answered ISSUED");
    assert!(issued < https, "ISSUED at call {issued}, CreateListener 443 at {https}");
    assert!(
        calls[..issued]
            .iter()
            .any(|c| c["certificate_status"] == "PENDING_VALIDATION"),
        "the certificate was pending first"
    );
    assert!(
        calls[..issued]
            .iter()
            .any(|c| c["service"] == "route53" && c["action"] == "ChangeResourceRecordSets"),
        "validation records written before it was issued"
    );
    let creates: Vec<serde_json::Value> = proxy
        .calls()
        .into_iter()
        .filter(|c| c["action"] == "CreateCluster")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(
        creates[0]["request"]["accessConfig"],
        serde_json::json!({"authenticationMode": "API_AND_CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": true}),
        "{}",
        creates[0]
    );
}

#[test]
fn the_blog_first_apply_converges_in_one_run_through_the_strict_aws_rules_against_moto() {
    // EKS cannot assume the cluster role for 5 s after IAM made it, EC2
    // Describe does not see new network objects for 3 s, an internet-facing
    // ALB needs its internet gateway, the cluster and nodegroup are CREATING
    // for 10 s / 6 s (each several polls of slipway's wait; AWS takes
    // minutes, which only lengthens the waits), a deleted cluster's or ALB's network interfaces
    // hold subnets and security groups for 5 s, a target group or security
    // group in use cannot be deleted, a NAT gateway without its internet
    // gateway fails, an HTTPS listener needs an issued certificate, and
    // names and tags keep to AWS's limits: one
    // apply still converges, re-plans clean, and destroy leaves nothing.
    let (moto, proxy, sb, _emu) = run_blog_through(&[
        "--in-use-delete",
        "--nat-needs-igw",
        "--cert-must-be-issued",
        "--name-limits",
        "--iam-propagation",
        "5",
        "--ec2-read-lag",
        "3",
        "--igw-required",
        "--linger",
        "5",
        "--eks-cluster-creating",
        "10",
        "--eks-nodegroup-creating",
        "6",
    ]);
    let calls = proxy.calls();
    let refused = calls.iter().filter(|c| c["fault"] == "iam-propagation").count();
    assert!(
        refused >= 1,
        "CreateCluster met the IAM propagation rule ({refused} refusals) and was retried"
    );
    let creates = calls
        .iter()
        .filter(|c| c["action"] == "CreateCluster" && c["status"] == 200)
        .count();
    assert_eq!(creates, 1, "one cluster in the end");
    for rule in ["igw-required", "certificate-not-issued", "name-limits"] {
        assert!(
            !calls.iter().any(|c| c["fault"] == rule),
            "ordered so that AWS never refuses: {rule}"
        );
    }
    sb.run(&["destroy", &blog(&sb), "--auto-approve"]).expect(0);
    let lingered = proxy.calls().iter().filter(|c| c["fault"] == "linger").count();
    assert!(
        lingered >= 1,
        "deletes met lingering network interfaces ({lingered}) and were retried"
    );
    assert!(
        owned_counts(&moto).values().all(|n| *n == 0),
        "orphans: {:?}",
        owned_counts(&moto)
    );
}

const SMALL_EKS: &str = r#"
[stack]
name = "ng"
region = "us-east-1"

[vpc.main]
cidr = "10.4.0.0/16"

[subnet.a]
vpc = "${vpc.main.id}"
cidr = "10.4.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc = "${vpc.main.id}"
cidr = "10.4.2.0/24"
availability_zone = "us-east-1b"

[security_group.extra]
vpc = "${vpc.main.id}"
ingress = [{ protocol = "tcp", port = 22, cidr = "10.4.0.0/16" }]

[iam_role.cluster]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }

[iam_role.nodes]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }] }

[eks_cluster.main]
name = "ng"
version = "1.31"
role = "${iam_role.cluster.arn}"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]

[eks_nodegroup.main]
cluster = "${eks_cluster.main.name}"
node_role = "${iam_role.nodes.arn}"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]
scaling = { min = 1, max = 2, desired = 1 }
"#;

#[test]
fn a_nodegroup_that_failed_to_create_plans_as_a_replacement_with_its_reason_and_replace_replaces_a_healthy_resource_against_moto(
) {
    let moto = Moto::start();
    let mut sb = Sandbox::with_moto(&moto);
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), &["--eks-nodegroup-failed", "1"]);
    sb.through(&proxy);
    sb.write("ng/main.toml", SMALL_EKS);

    // EKS reports the nodegroup CREATE_FAILED: the apply fails, naming why.
    let a = sb.run(&["apply", "ng", "--auto-approve"]).expect(1);
    assert!(
        a.stderr.contains("CREATE_FAILED") && a.stderr.contains("AsgInstanceLaunchFailures"),
        "{}",
        a.stderr
    );
    // The next plan finds it (by its tags) and replaces it, old one first, saying why.
    let p = sb.run(&["plan", "ng", "--detailed-exitcode"]).expect(2);
    assert!(
        p.stdout.contains(
            "eks_nodegroup.main is tainted: CREATE_FAILED (AsgInstanceLaunchFailures: Instance failed to join the kubernetes cluster), so it must be replaced"
        ),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "ng", "--auto-approve"]).expect(0);
    sb.run(&["plan", "ng", "--detailed-exitcode"]).expect(0);

    // --replace: a healthy resource is replaced on request, and only it.
    let bad = sb.run(&["plan", "ng", "--replace", "security_group.nope"]).expect(1);
    assert!(
        bad.stderr
            .contains("--replace security_group.nope: the stack declares no such resource"),
        "{}",
        bad.stderr
    );
    let p = sb.run(&["plan", "ng", "--replace", "security_group.extra"]).expect(0);
    assert!(
        p.stdout
            .contains("security_group.extra will be replaced, as requested (--replace; old object first)"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{}",
        p.stdout
    );
    let a = sb
        .run(&["apply", "ng", "--auto-approve", "--replace", "security_group.extra"])
        .expect(0);
    assert!(
        a.stdout.contains("Resources: 1 added, 0 changed, 1 destroyed."),
        "{}",
        a.stdout
    );
    sb.run(&["destroy", "ng", "--auto-approve"]).expect(0);
}

#[test]
fn refresh_reads_roles_one_by_one_when_the_account_wide_iam_read_is_denied_against_moto() {
    // A read-only CI role is rarely granted iam:GetAccountAuthorizationDetails
    // (it reads every role of the account): refresh then reads the stack's
    // own roles with GetRole and friends, and plan and drift still work.
    let moto = Moto::start();
    let mut sb = Sandbox::with_moto(&moto);
    sb.write("ng/main.toml", SMALL_EKS);
    sb.run(&["apply", "ng", "--auto-approve"]).expect(0);
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), &["--deny", "GetAccountAuthorizationDetails"]);
    sb.through(&proxy);
    sb.run(&["plan", "ng", "--detailed-exitcode"]).expect(0);
    sb.run(&["drift", "ng"]).expect(0);
    let calls = proxy.calls();
    assert!(
        calls.iter().any(|c| c["fault"] == "denied"),
        "the account-wide read was tried and denied"
    );
    let get_role = calls.iter().filter(|c| c["action"] == "GetRole").count();
    assert!(
        get_role >= 2,
        "each of the stack's two roles read alone ({get_role} GetRole)"
    );
    // A role changed by hand is still seen.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        moto.iam()
            .await
            .attach_role_policy()
            .role_name("ng-nodes")
            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .unwrap();
    });
    let d = sb.run(&["drift", "ng"]).expect(2);
    assert!(d.stdout.contains("iam_role.nodes"), "{}", d.stdout);
}

#[test]
fn a_new_node_port_moves_the_listener_to_a_new_target_group_before_the_old_one_goes_against_moto() {
    // Target group names are unique in AWS and a listener must always forward
    // somewhere: the new group (its default name carries a hash of its port)
    // is made and attached to the nodes first, the listener moved, and only
    // then the old group detached and deleted, in one apply.
    let (_moto, proxy, sb, _emu) = run_blog_through(&[]);
    let before = proxy.calls().len();
    for (file, from, to) in [
        ("stacks/blog/edge.toml", "port = 30500", "port = 30600"),
        ("stacks/blog/network.toml", "port = 30500", "port = 30600"),
        ("stacks/blog/apps.toml", "node_port = 30500", "node_port = 30600"),
    ] {
        let text = sb.read(file);
        assert!(text.contains(from), "{file}");
        sb.write(file, &text.replace(from, to));
    }
    // `blog(&sb)` would copy the example again: the edited copy is at stacks/blog.
    let p = sb.run(&["plan", "stacks/blog"]).expect(0);
    assert!(
        p.stdout
            .contains("# alb_target_group.frontend must be replaced (`port` forces replacement, new object first)"),
        "{}",
        p.stdout
    );
    let _controller = _emu.controller();
    let a = sb.run(&["apply", "stacks/blog", "--auto-approve"]);
    assert_eq!(a.code, 0, "{}\n{}", a.stdout, a.stderr);
    let calls: Vec<serde_json::Value> = proxy.calls().into_iter().skip(before).collect();
    let at = |action: &str| {
        calls
            .iter()
            .position(|c| c["action"] == action && c["status"] == 200)
            .unwrap_or_else(|| panic!("no {action} in {calls:?}"))
    };
    let (create, attach, modify, detach, delete) = (
        at("CreateTargetGroup"),
        at("AttachLoadBalancerTargetGroups"),
        at("ModifyListener"),
        at("DetachLoadBalancerTargetGroups"),
        at("DeleteTargetGroup"),
    );
    assert!(
        create < attach && attach < modify && modify < detach && detach < delete,
        "create {create}, attach {attach}, listener moved {modify}, detach {detach}, delete {delete}"
    );
    sb.run(&["plan", "stacks/blog", "--detailed-exitcode"]).expect(0);
}

#[test]
fn an_eks_update_waits_for_the_one_already_running_and_then_for_its_own_through_the_strict_rules_against_moto() {
    // EKS runs one update at a time per cluster or nodegroup (its own AMI and
    // platform updates included) and answers ResourceInUseException to a
    // second; an update is done when DescribeUpdate says so, not when the
    // nodegroup reads ACTIVE.
    let moto = Moto::start();
    let mut sb = Sandbox::with_moto(&moto);
    sb.write("ng/main.toml", SMALL_EKS);
    sb.run(&["apply", "ng", "--auto-approve"]).expect(0);
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), &["--eks-update-busy", "6"]);
    sb.through(&proxy);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // An update slipway did not start (an operator's, or EKS's own).
        let conf = moto
            .sdk_config()
            .await
            .into_builder()
            .endpoint_url(&proxy.endpoint)
            .build();
        let eks = aws_sdk_eks::Client::new(&conf);
        let ng = eks.list_nodegroups().cluster_name("ng").send().await.unwrap();
        let update = aws_sdk_eks::types::NodegroupUpdateConfig::builder()
            .max_unavailable(1)
            .build();
        eks.update_nodegroup_config()
            .cluster_name("ng")
            .nodegroup_name(&ng.nodegroups()[0])
            .update_config(update)
            .send()
            .await
            .unwrap();
    });
    sb.write("ng/main.toml", &SMALL_EKS.replace("max = 2", "max = 3"));
    let a = sb.run(&["apply", "ng", "--auto-approve"]).expect(0);
    assert!(a.stdout.contains("1 changed"), "{}", a.stdout);
    let calls = proxy.calls();
    let updates: Vec<_> = calls
        .iter()
        .filter(|c| c["action"] == "UpdateNodegroupConfig")
        .collect();
    assert!(
        updates.iter().any(|c| c["fault"] == "update-in-progress"),
        "slipway's update met the running one: {updates:?}"
    );
    assert_eq!(
        updates.iter().filter(|c| c["status"] == 200).count(),
        2,
        "the outside update and slipway's, once: {updates:?}"
    );
    let last = calls
        .iter()
        .rposition(|c| c["action"] == "UpdateNodegroupConfig" && c["status"] == 200)
        .unwrap();
    let waited = calls[last..].iter().filter(|c| c["action"] == "DescribeUpdate").count();
    assert!(
        waited >= 2,
        "slipway followed its own update until it ended ({waited} reads)"
    );
    sb.run(&["plan", "ng", "--detailed-exitcode"]).expect(0);
    sb.run(&["destroy", "ng", "--auto-approve"]).expect(0);
}

const NAT_WITHOUT_IGW: &str = r#"
[stack]
name = "natless"
region = "us-east-1"

[vpc.main]
cidr = "10.6.0.0/16"

[subnet.a]
vpc = "${vpc.main.id}"
cidr = "10.6.1.0/24"
availability_zone = "us-east-1a"

[elastic_ip.nat]

[nat_gateway.main]
subnet = "${subnet.a.id}"
elastic_ip = "${elastic_ip.nat.id}"
"#;

#[test]
fn the_strict_rules_refuse_in_use_deletes_unissued_certificates_names_over_the_limits_and_nat_gateways_without_internet_gateway_through_the_fault_proxy_against_moto(
) {
    // Each rule as AWS answers it, called through the SDK so the rule itself
    // is what is proved (the blog test proves slipway never meets them).
    let moto = Moto::start();
    let mut sb = Sandbox::with_moto(&moto);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        sb.root(),
        &[
            "--in-use-delete",
            "--cert-must-be-issued",
            "--nat-needs-igw",
            "--name-limits",
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use aws_sdk_ec2::error::ProvideErrorMetadata;
        let conf = moto
            .sdk_config()
            .await
            .into_builder()
            .endpoint_url(&proxy.endpoint)
            .build();
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        let vpc = ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (cidr, az) in [("10.9.1.0/24", "us-east-1a"), ("10.9.2.0/24", "us-east-1b")] {
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(az)
                .send()
                .await
                .unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        let sg = ec2
            .create_security_group()
            .group_name("lb")
            .description("lb")
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        let sg = sg.group_id().unwrap().to_string();
        let lb = elb
            .create_load_balancer()
            .name("strict")
            .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
            .set_subnets(Some(subnets.clone()))
            .security_groups(&sg)
            .send()
            .await
            .unwrap();
        let lb = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        let tg = elb
            .create_target_group()
            .name("strict")
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        let tg = tg.target_groups()[0].target_group_arn().unwrap().to_string();
        let forward = aws_sdk_elasticloadbalancingv2::types::Action::builder()
            .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
            .target_group_arn(&tg)
            .build();
        elb.create_listener()
            .load_balancer_arn(&lb)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .default_actions(forward.clone())
            .send()
            .await
            .unwrap();
        let e = elb
            .delete_target_group()
            .target_group_arn(&tg)
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ResourceInUse"), "a target group a listener uses: {e:?}");
        let e = ec2.delete_security_group().group_id(&sg).send().await.unwrap_err();
        assert_eq!(
            e.code(),
            Some("DependencyViolation"),
            "a group a load balancer carries: {e:?}"
        );

        let acm = aws_sdk_acm::Client::new(&conf);
        let cert = acm
            .request_certificate()
            .domain_name("strict.example.com")
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .send()
            .await
            .unwrap();
        let https = elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Https)
            .port(443)
            .certificates(
                aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                    .certificate_arn(cert.certificate_arn().unwrap())
                    .build(),
            )
            .default_actions(forward)
            .send()
            .await
            .unwrap_err();
        assert_eq!(https.code(), Some("UnsupportedCertificate"), "{https:?}");

        let long = aws_sdk_iam::Client::new(&conf)
            .create_role()
            .role_name("r".repeat(65))
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            long.code(),
            Some("ValidationError"),
            "IAM role names are 1-64: {long:?}"
        );
        let tags: Vec<aws_sdk_ec2::types::Tag> = (0..51)
            .map(|i| {
                aws_sdk_ec2::types::Tag::builder()
                    .key(format!("k{i}"))
                    .value("v")
                    .build()
            })
            .collect();
        let many = ec2
            .create_vpc()
            .cidr_block("10.10.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .set_tags(Some(tags))
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(many.code(), Some("TagLimitExceeded"), "50 tags at most: {many:?}");
    });

    // slipway reports the NAT gateway AWS fails, with AWS's reason.
    sb.through(&proxy);
    sb.write("natless/main.toml", NAT_WITHOUT_IGW);
    let a = sb.run(&["apply", "natless", "--auto-approve"]).expect(1);
    assert!(
        a.stderr.contains("has no Internet gateway attached"),
        "{}\n{}",
        a.stdout,
        a.stderr
    );
}

const GROUP_IN_USE: &str = r#"
[stack]
name = "sgs"
region = "us-east-1"

[vpc.main]
cidr = "10.7.0.0/16"

[subnet.a]
vpc = "${vpc.main.id}"
cidr = "10.7.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc = "${vpc.main.id}"
cidr = "10.7.2.0/24"
availability_zone = "us-east-1b"

[security_group.alb]
vpc = "${vpc.main.id}"
description = "web v1"
ingress = [{ protocol = "tcp", port = 443, cidr = "0.0.0.0/0" }]

[security_group.nodes]
vpc = "${vpc.main.id}"
ingress = [{ protocol = "tcp", port = 30500, source_security_group = "${security_group.alb.id}" }]

[alb.web]
scheme = "internal"
subnets = ["${subnet.a.id}", "${subnet.b.id}"]
security_groups = ["${security_group.alb.id}"]
"#;

#[test]
fn a_security_group_in_use_is_replaced_new_group_first_and_its_users_moved_before_the_old_one_goes_against_moto() {
    // A new description replaces the group. AWS refuses to delete a group a
    // load balancer carries or another group's rule names (--in-use-delete),
    // and names are unique in a VPC: the new group is made first, under a
    // hashed name, the ALB and the rule move to it, then the old one goes.
    let moto = Moto::start();
    let mut sb = Sandbox::with_moto(&moto);
    sb.write("sgs/main.toml", GROUP_IN_USE);
    sb.run(&["apply", "sgs", "--auto-approve"]).expect(0);
    let old = sb.state("sgs")["resources"]["security_group.alb"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), &["--in-use-delete"]);
    sb.through(&proxy);
    sb.write("sgs/main.toml", &GROUP_IN_USE.replace("web v1", "web v2"));
    let p = sb.run(&["plan", "sgs"]).expect(0);
    assert!(
        p.stdout
            .contains("security_group.alb must be replaced (`description` forces replacement, new object first)"),
        "{}",
        p.stdout
    );
    let a = sb.run(&["apply", "sgs", "--auto-approve"]).expect(0);
    assert!(
        a.stdout.contains("1 added, 2 changed, 1 destroyed"),
        "{}\n{}",
        a.stdout,
        a.stderr
    );
    let calls = proxy.calls();
    let at = |action: &str| {
        calls
            .iter()
            .position(|c| c["action"] == action && c["status"] == 200)
            .unwrap_or_else(|| panic!("no {action} in {calls:?}"))
    };
    assert!(
        at("CreateSecurityGroup") < at("SetSecurityGroups"),
        "the ALB moves to the new group"
    );
    assert!(
        at("AuthorizeSecurityGroupIngress") < at("DeleteSecurityGroup"),
        "the nodes' rule names the new group before the old one goes"
    );
    assert!(
        !calls.iter().any(|c| c["fault"] == "in-use"),
        "the old group was deleted only once nothing used it: {calls:?}"
    );
    let new = sb.state("sgs")["resources"]["security_group.alb"].clone();
    assert_ne!(new["id"], old.as_str());
    assert!(
        new["attributes"]["group_name"]
            .as_str()
            .unwrap()
            .starts_with("sgs-alb-"),
        "the default name carries a hash in AWS: {new}"
    );
    sb.run(&["plan", "sgs", "--detailed-exitcode"]).expect(0);
    sb.run(&["destroy", "sgs", "--auto-approve"]).expect(0);
    assert!(!proxy.calls().iter().any(|c| c["fault"] == "in-use"));
}

#[test]
fn for_each_instances_are_tagged_with_characters_iam_and_elb_take_through_the_fault_proxy_against_moto() {
    // IAM and ELB refuse tag values with `"` or `[` (EC2 takes them): the
    // ownership tag of `iam_role.team["web"]` is written `iam_role.team=5B=22web=22=5D`,
    // and a retried create still finds the role by it.
    let moto = Moto::start();
    let mut sb = Sandbox::with_moto(&moto);
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), &["--name-limits"]);
    sb.through(&proxy);
    sb.write(
        "stacks/teams/main.toml",
        r#"
[stack]
name = "teams"
region = "us-east-1"

[iam_role.team]
for_each = ["web", "api"]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }
tags = { team = "${each.key}" }
"#,
    );
    sb.run(&["apply", "stacks/teams", "--auto-approve"]).expect(0);
    assert!(
        !proxy.calls().iter().any(|c| c["fault"] == "name-limits"),
        "no tag IAM would refuse"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tags = rt.block_on(async {
        let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
        let got = iam.list_role_tags().role_name("teams-team-web").send().await.unwrap();
        got.tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    assert_eq!(tags["slipway:address"], "iam_role.team=5B=22web=22=5D", "{tags:?}");
    sb.run(&["plan", "stacks/teams", "--detailed-exitcode"]).expect(0);
    sb.run(&["destroy", "stacks/teams", "--auto-approve"]).expect(0);
}
