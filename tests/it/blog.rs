//! The whole example story, `stacks/blog`, in one apply against the moto
//! AWS emulator and our Kubernetes API emulator (its clusters' API calls are
//! pointed at the emulator with SLIPWAY_KUBECONFIG_OVERRIDE; moto's EKS
//! endpoints answer nothing).

use crate::support;

use aws_sdk_ec2::types::Filter;
use support::k8s::K8sEmulator;
use support::moto::Moto;
use support::Sandbox;

#[test]
fn the_blog_stack_applies_in_one_run_replans_clean_and_destroys_everything_against_moto_and_the_emulator() {
    let moto = Moto::start();
    moto.blog_prerequisites();
    let emu = K8sEmulator::start();
    let sb = Sandbox::for_blog(&moto, &emu);
    // First the stack as it was written before locals, for_each and
    // modules (six subnet tables, two app tables)...
    sb.copy_dir(
        &crate::support::repo().join("tests/fixtures/blog_before_modules"),
        "stacks/blog",
    );
    let stack = "stacks/blog";
    let _controller = emu.controller();

    let a = sb
        .run(&["apply", stack, "--auto-approve", "--var", "image_tag=main-1a2b3c4"])
        .expect(0);
    assert!(
        a.stdout
            .contains("Apply complete! Resources: 32 added, 0 changed, 0 destroyed."),
        "{}",
        a.stdout
    );
    // ... then today's stacks/blog over its state: the [[moved]] entries of
    // moved.toml carry every object over, and nothing changes.
    let uid = |emu: &K8sEmulator| {
        emu.get("/apis/apps/v1/namespaces/default/deployments/app-a").unwrap()["metadata"]["uid"].clone()
    };
    let before = uid(&emu);
    sb.example("blog");
    // Exit 2: the moves change the state, though no object.
    let p = sb
        .run(&["plan", stack, "--detailed-exitcode", "--var", "image_tag=main-1a2b3c4"])
        .expect(2);
    assert!(
        p.stdout.contains("# app.app_a has moved to module.app_a.app.this"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout
            .contains("# subnet.private_us_west_2d has moved to subnet.private[\"us-west-2d\"]"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("0 to add, 0 to change, 0 to destroy"), "{}", p.stdout);
    let a = sb
        .run(&["apply", stack, "--auto-approve", "--var", "image_tag=main-1a2b3c4"])
        .expect(0);
    assert!(!a.stdout.contains("Destroying"), "{}", a.stdout);
    assert_eq!(uid(&emu), before, "the same Deployment");
    let p = sb
        .run(&["plan", stack, "--detailed-exitcode", "--var", "image_tag=main-1a2b3c4"])
        .expect(0);
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);
    let d = emu
        .get("/apis/apps/v1/namespaces/default/deployments/app-a")
        .expect("app-a runs in the emulator");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.gitlab.com/blog/app-a:main-1a2b3c4"
    );
    assert!(
        emu.get("/api/v1/namespaces/default/services/app-b").is_some(),
        "app-b is reachable inside the cluster"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conf = rt.block_on(async {
        let mut conf = moto.sdk_config().await.into_builder();
        conf.set_region(Some(aws_config::Region::new("us-west-2")));
        conf.build()
    });
    let (asg, tg) = rt.block_on(traffic_reaches_the_nodes(&conf));
    rt.block_on(dns_validates_the_certificate_and_points_at_the_alb(&conf));
    rt.block_on(async {
        // The CI deployer reaches the cluster by access entry; metrics-server runs.
        let eks = aws_sdk_eks::Client::new(&conf);
        let entry = eks
            .describe_access_entry()
            .cluster_name("blog")
            .principal_arn("arn:aws:iam::123456789012:role/gitlab-ci-deployer")
            .send()
            .await
            .unwrap();
        assert_eq!(entry.access_entry().unwrap().kubernetes_groups(), ["gitlab-deployer"]);
        let addon = eks
            .describe_addon()
            .cluster_name("blog")
            .addon_name("metrics-server")
            .send()
            .await
            .unwrap();
        assert_eq!(addon.addon().unwrap().status().map(|s| s.as_str()), Some("ACTIVE"));
    });

    // The cluster autoscaler (here: the test) adds a node; AWS registers it
    // in the target group with no apply, and the plan stays clean.
    rt.block_on(async {
        let autoscaling = aws_sdk_autoscaling::Client::new(&conf);
        let before = targets(&conf, &tg).await;
        autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(&asg)
            .desired_capacity(i32::try_from(before.len()).unwrap() + 1)
            .send()
            .await
            .unwrap();
        let after = targets(&conf, &tg).await;
        assert_eq!(after.len(), before.len() + 1, "{before:?} -> {after:?}");
        assert_eq!(
            after,
            instances_of(&conf, &asg).await,
            "the target group lists the group's instances"
        );
    });
    let p = sb
        .run(&["plan", stack, "--detailed-exitcode", "--var", "image_tag=main-1a2b3c4"])
        .expect(0);
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);

    // Detached by hand, the target group no longer follows the nodes: drift.
    rt.block_on(async {
        aws_sdk_autoscaling::Client::new(&conf)
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(&asg)
            .target_group_arns(&tg)
            .send()
            .await
            .unwrap();
    });
    let d = sb.run(&["drift", stack, "--var", "image_tag=main-1a2b3c4"]).expect(2);
    assert!(d.stdout.contains("alb_target_group.frontend"), "{}", d.stdout);
    assert!(d.stdout.contains("nodegroup"), "{}", d.stdout);
    sb.run(&["apply", stack, "--auto-approve", "--var", "image_tag=main-1a2b3c4"])
        .expect(0);
    rt.block_on(async {
        assert_eq!(
            targets(&conf, &tg).await,
            instances_of(&conf, &asg).await,
            "apply attached it again"
        );
    });

    // A new image from CI is an in-place update of the two apps only.
    let p = sb.run(&["plan", stack, "--var", "image_tag=main-5d6e7f8"]).expect(0);
    assert!(
        p.stdout.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{}",
        p.stdout
    );

    sb.run(&["destroy", stack, "--auto-approve"]).expect(0);
    rt.block_on(async {
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let owned = || Filter::builder().name("tag:slipway:stack").values("blog").build();
        assert!(
            ec2.describe_vpcs()
                .filters(owned())
                .send()
                .await
                .unwrap()
                .vpcs()
                .is_empty(),
            "VPC left"
        );
        assert!(
            ec2.describe_subnets()
                .filters(owned())
                .send()
                .await
                .unwrap()
                .subnets()
                .is_empty(),
            "subnet left"
        );
        assert!(
            ec2.describe_internet_gateways()
                .filters(owned())
                .send()
                .await
                .unwrap()
                .internet_gateways()
                .is_empty(),
            "gateway left"
        );
        assert!(
            ec2.describe_route_tables()
                .filters(owned())
                .send()
                .await
                .unwrap()
                .route_tables()
                .is_empty(),
            "route table left"
        );
        assert!(
            ec2.describe_security_groups()
                .filters(owned())
                .send()
                .await
                .unwrap()
                .security_groups()
                .is_empty(),
            "security group left"
        );
        let nats = ec2.describe_nat_gateways().send().await.unwrap();
        assert!(
            nats.nat_gateways()
                .iter()
                .all(|n| n.state().map(|s| s.as_str()) == Some("deleted")),
            "NAT gateway left"
        );
        let iam = aws_sdk_iam::Client::new(&conf);
        let roles = iam.list_roles().send().await.unwrap();
        assert!(
            !roles.roles().iter().any(|r| r.role_name().starts_with("blog-")),
            "role left"
        );
        let eks = aws_sdk_eks::Client::new(&conf);
        assert!(
            eks.list_clusters().send().await.unwrap().clusters().is_empty(),
            "cluster (and its nodegroups) left"
        );
        let acm = aws_sdk_acm::Client::new(&conf);
        assert!(
            acm.list_certificates()
                .send()
                .await
                .unwrap()
                .certificate_summary_list()
                .is_empty(),
            "certificate left"
        );
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        assert!(
            elb.describe_load_balancers()
                .send()
                .await
                .unwrap()
                .load_balancers()
                .is_empty(),
            "load balancer left"
        );
        assert!(
            elb.describe_target_groups()
                .send()
                .await
                .unwrap()
                .target_groups()
                .is_empty(),
            "target group left"
        );
    });
    assert!(
        emu.get("/apis/apps/v1/namespaces/default/deployments/app-a").is_none(),
        "apps deleted from the cluster"
    );

    // Without the metrics-server add-on the plan warns: the HPAs could never scale.
    let cluster = sb.read("stacks/blog/cluster.toml");
    let cut = cluster.find("[eks_addon.metrics_server]").expect("the add-on");
    let end = cluster[cut..].find("\n\n").map(|i| cut + i).unwrap_or(cluster.len());
    sb.write(
        "stacks/blog/cluster.toml",
        &format!("{}{}", &cluster[..cut], &cluster[end..]),
    );
    let p = sb.run(&["plan", stack, "--var", "image_tag=main-1a2b3c4"]).expect(0);
    for app in ["module.app_a.app.this", "module.app_b.app.this"] {
        assert!(
            p.stdout
                .contains(&format!("Warning: {app} autoscales, but EKS ships no metrics-server")),
            "{}",
            p.stdout
        );
    }
}

/// The traffic path as AWS would run it, read through the SDK: the
/// nodegroup's instances carry a security group that admits the ALB's on the
/// frontend's NodePort, and the target group is attached to the nodegroup's
/// Auto Scaling group and lists its instances. Returns (that group, the target group).
async fn traffic_reaches_the_nodes(conf: &aws_config::SdkConfig) -> (String, String) {
    let eks = aws_sdk_eks::Client::new(conf);
    let ng = eks.list_nodegroups().cluster_name("blog").send().await.unwrap();
    let ng = ng.nodegroups().first().expect("a nodegroup").clone();
    let ng = eks
        .describe_nodegroup()
        .cluster_name("blog")
        .nodegroup_name(&ng)
        .send()
        .await
        .unwrap();
    let asg = ng.nodegroup().unwrap().resources().unwrap().auto_scaling_groups()[0]
        .name()
        .unwrap()
        .to_string();
    let instances = instances_of(conf, &asg).await;
    assert!(!instances.is_empty(), "the nodegroup has instances");

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(conf);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let alb_groups = lbs.load_balancers()[0].security_groups().to_vec();
    let tgs = elb.describe_target_groups().send().await.unwrap();
    let tg = &tgs.target_groups()[0];
    let (tg_arn, port) = (tg.target_group_arn().unwrap().to_string(), tg.port().unwrap());

    let ec2 = aws_sdk_ec2::Client::new(conf);
    let found = ec2
        .describe_instances()
        .set_instance_ids(Some(instances.clone()))
        .send()
        .await
        .unwrap();
    for i in found.reservations().iter().flat_map(|r| r.instances()) {
        let groups: Vec<String> = i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .map(str::to_string)
            .collect();
        let rules = ec2
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(groups.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let admits = rules.security_group_rules().iter().any(|r| {
            r.is_egress() == Some(false)
                && r.referenced_group_info()
                    .and_then(|g| g.group_id())
                    .is_some_and(|g| alb_groups.iter().any(|a| a == g))
                && r.from_port().unwrap_or(-1) <= port
                && port <= r.to_port().unwrap_or(-1)
        });
        assert!(
            admits,
            "instance {:?} (groups {groups:?}) admits the ALB's {alb_groups:?} on {port}",
            i.instance_id()
        );
    }

    let autoscaling = aws_sdk_autoscaling::Client::new(conf);
    let attached = autoscaling
        .describe_load_balancer_target_groups()
        .auto_scaling_group_name(&asg)
        .send()
        .await
        .unwrap();
    assert!(
        attached
            .load_balancer_target_groups()
            .iter()
            .any(|t| t.load_balancer_target_group_arn() == Some(tg_arn.as_str())),
        "the target group is attached to {asg}"
    );
    assert_eq!(
        targets(conf, &tg_arn).await,
        instances,
        "the target group lists the nodegroup's instances"
    );
    (asg, tg_arn)
}

/// Route53 holds the certificate's validation CNAMEs (ISSUED only because of
/// them: moto_server.py issues nothing Route53 does not answer for) and the
/// domain's alias to the ALB.
async fn dns_validates_the_certificate_and_points_at_the_alb(conf: &aws_config::SdkConfig) {
    let acm = aws_sdk_acm::Client::new(conf);
    let certs = acm.list_certificates().send().await.unwrap();
    let arn = certs.certificate_summary_list()[0]
        .certificate_arn()
        .unwrap()
        .to_string();
    let cert = acm.describe_certificate().certificate_arn(&arn).send().await.unwrap();
    let cert = cert.certificate().unwrap();
    assert_eq!(cert.status().map(|s| s.as_str()), Some("ISSUED"));

    let r53 = aws_sdk_route53::Client::new(conf);
    let zones = r53
        .list_hosted_zones_by_name()
        .dns_name("example.com")
        .send()
        .await
        .unwrap();
    let zone = zones.hosted_zones()[0].id().to_string();
    let sets = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let sets = sets.resource_record_sets();
    let name = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
    assert_eq!(cert.domain_validation_options().len(), 2, "blog.example.com and www");
    for o in cert.domain_validation_options() {
        let want = o.resource_record().unwrap();
        assert!(
            sets.iter().any(|s| s.r#type().as_str() == "CNAME"
                && name(s.name()) == name(want.name())
                && s.resource_records()
                    .iter()
                    .any(|r| name(r.value()) == name(want.value()))),
            "validation CNAME {} in the zone: {sets:?}",
            want.name()
        );
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(conf);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let alb = &lbs.load_balancers()[0];
    let site = sets
        .iter()
        .find(|s| name(s.name()) == "blog.example.com" && s.r#type().as_str() == "A")
        .expect("an A record for the domain");
    let alias = site.alias_target().expect("an alias");
    assert_eq!(name(alias.dns_name()), name(alb.dns_name().unwrap()));
    assert_eq!(alias.hosted_zone_id(), alb.canonical_hosted_zone_id().unwrap());
}

async fn instances_of(conf: &aws_config::SdkConfig, asg: &str) -> Vec<String> {
    let out = aws_sdk_autoscaling::Client::new(conf)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

async fn targets(conf: &aws_config::SdkConfig, tg: &str) -> Vec<String> {
    let out = aws_sdk_elasticloadbalancingv2::Client::new(conf)
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_blog_graph_has_one_edge_per_reference_and_the_orders_aws_needs() {
    let sb = Sandbox::new();
    let stack = crate::support::repo().join("stacks/blog");
    let g = sb.run(&["graph", stack.to_str().unwrap()]).expect(0);
    assert!(
        g.stdout.contains("\"alb_listener.https\" -> \"acm_certificate.site\";"),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout.contains("\"module.app_a.app.this\" -> \"eks_cluster.main\";"),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout
            .contains("\"subnet.public[\\\"us-west-2a\\\"]\" -> \"vpc.main\";"),
        "{}",
        g.stdout
    );
    // AWS fails a NAT gateway or an internet-facing ALB in a VPC whose
    // internet gateway is not attached yet: implied edges, drawn dashed.
    for dependent in ["nat_gateway.main", "alb.public"] {
        let edge = format!("\"{dependent}\" -> \"internet_gateway.main\" [style = \"dashed\"];");
        assert!(g.stdout.contains(&edge), "{edge}: {}", g.stdout);
    }
    assert_eq!(g.stdout.matches(" -> ").count(), 61, "{}", g.stdout);
}
