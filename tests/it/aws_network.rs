//! The AWS network and IAM kinds against the moto AWS emulator, through
//! the built binary and the real aws-sdk clients. moto is not AWS: these
//! tests show the calls slipway makes and how it reacts to the answers, not
//! that AWS answers the same way.

use crate::support;

use std::collections::BTreeMap;

use support::moto::Moto;
use support::Sandbox;

/// 1 VPC, 6 subnets, an internet gateway, a NAT gateway (with its elastic
/// IP), 4 route tables, 3 security groups and 3 IAM roles.
fn network() -> String {
    let mut s = String::from(
        r#"
[stack]
name = "net"
region = "us-east-1"

[vpc.main]
cidr = "10.0.0.0/16"
enable_dns_hostnames = true
tags = { team = "platform" }

[internet_gateway.main]
vpc = "${vpc.main.id}"

[elastic_ip.nat]

[nat_gateway.main]
subnet = "${subnet.public_a.id}"
elastic_ip = "${elastic_ip.nat.id}"

[route_table.public]
vpc = "${vpc.main.id}"
routes = [{ cidr = "0.0.0.0/0", internet_gateway = "${internet_gateway.main.id}" }]
subnets = ["${subnet.public_a.id}", "${subnet.public_b.id}", "${subnet.public_c.id}"]

[security_group.alb]
vpc = "${vpc.main.id}"
description = "public HTTPS"
ingress = [
  { protocol = "tcp", port = 443, cidr = "0.0.0.0/0", description = "https" },
  { protocol = "tcp", port = 80, cidr = "0.0.0.0/0" },
]

[security_group.nodes]
vpc = "${vpc.main.id}"
ingress = [
  { protocol = "tcp", from_port = 30000, to_port = 32767, source_security_group = "${security_group.alb.id}" },
  { protocol = "all", self = true },
]

[security_group.cluster]
vpc = "${vpc.main.id}"
ingress = [{ protocol = "tcp", port = 443, source_security_group = "${security_group.nodes.id}" }]
egress = [{ protocol = "all", cidr = "10.0.0.0/16" }]

[iam_role.cluster]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }
managed_policy_arns = ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]

[iam_role.nodes]
assume_role_policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":["sts:AssumeRole"]}]}'
managed_policy_arns = [
  "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
  "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
]

[iam_role.deployer]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = "sts:AssumeRole" }] }
inline_policies = { describe = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = ["eks:DescribeCluster"], Resource = "*" }] } }
tags = { purpose = "ci" }
"#,
    );
    for (i, az) in ["a", "b", "c"].iter().enumerate() {
        s.push_str(&format!(
            r#"
[subnet.public_{az}]
vpc = "${{vpc.main.id}}"
cidr = "10.0.{i}.0/24"
availability_zone = "us-east-1{az}"
public = true
tags = {{ "kubernetes.io/role/elb" = "1" }}

[subnet.private_{az}]
vpc = "${{vpc.main.id}}"
cidr = "10.0.1{i}.0/24"
availability_zone = "us-east-1{az}"
tags = {{ "kubernetes.io/role/internal-elb" = "1" }}

[route_table.private_{az}]
vpc = "${{vpc.main.id}}"
routes = [{{ cidr = "0.0.0.0/0", nat_gateway = "${{nat_gateway.main.id}}" }}]
subnets = ["${{subnet.private_{az}.id}}"]
"#
        ));
    }
    s
}

fn setup() -> (Moto, Sandbox) {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("stacks/net/main.toml", &network());
    (moto, sb)
}

fn id(sb: &Sandbox, addr: &str) -> String {
    sb.state("net")["resources"][addr]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {addr} in state"))
        .to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Count the API calls `plan --stats` reports, by operation.
fn stats(stderr: &str) -> BTreeMap<String, u64> {
    stderr
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_svc, op, n) = (w.next()?, w.next()?, w.next()?);
            Some((op.to_string(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn network_stack_applies_then_a_no_op_plan_makes_one_describe_per_kind_against_moto_emulator() {
    let (moto, sb) = setup();
    let a = sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    assert!(a.stdout.contains("Apply complete! Resources: 20 added"), "{}", a.stdout);

    let p = sb
        .run(&["plan", "stacks/net", "--detailed-exitcode", "--stats"])
        .expect(0);
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);
    let calls = stats(&p.stderr);
    for op in [
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeInternetGateways",
        "DescribeAddresses",
        "DescribeNatGateways",
        "DescribeRouteTables",
        "DescribeSecurityGroups",
        "GetAccountAuthorizationDetails",
    ] {
        assert_eq!(calls.get(op), Some(&1), "{op} in {}", p.stderr);
    }
    // DNS attributes are only readable one attribute per call: 2 per VPC.
    assert_eq!(calls.get("DescribeVpcAttribute"), Some(&2), "{}", p.stderr);
    assert_eq!(calls.values().sum::<u64>(), 10, "{}", p.stderr);

    // Every object carries its ownership tags, set in the create call.
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        let subnets = ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:slipway:stack")
                    .values("net")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(subnets.subnets().len(), 6);
        let s = subnets
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(id(&sb, "subnet.public_b").as_str()))
            .unwrap();
        let tags: BTreeMap<_, _> = s
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(tags.get("slipway:address"), Some(&"subnet.public_b"));
        assert_eq!(tags.get("Name"), Some(&"net-public_b"));
        assert_eq!(tags.get("kubernetes.io/role/elb"), Some(&"1"));
        assert_eq!(s.map_public_ip_on_launch(), Some(true));
    });

    // Destroy leaves nothing of the stack behind.
    sb.run(&["destroy", "stacks/net", "--auto-approve"]).expect(0);
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        let owned = aws_sdk_ec2::types::Filter::builder()
            .name("tag:slipway:stack")
            .values("net")
            .build();
        assert!(ec2
            .describe_vpcs()
            .filters(owned.clone())
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty());
        assert!(ec2
            .describe_subnets()
            .filters(owned.clone())
            .send()
            .await
            .unwrap()
            .subnets()
            .is_empty());
        assert!(ec2
            .describe_security_groups()
            .filters(owned)
            .send()
            .await
            .unwrap()
            .security_groups()
            .is_empty());
        let iam = moto.iam().await;
        let roles = iam.list_roles().send().await.unwrap();
        assert!(
            !roles.roles().iter().any(|r| r.role_name().starts_with("net-")),
            "roles left behind"
        );
    });
    assert_eq!(sb.state("net")["resources"], serde_json::json!({}));
}

#[test]
fn in_place_updates_keep_ids_against_moto_emulator() {
    let (moto, sb) = setup();
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let before: Vec<String> = [
        "vpc.main",
        "subnet.public_a",
        "security_group.alb",
        "route_table.public",
        "iam_role.nodes",
        "iam_role.deployer",
    ]
    .iter()
    .map(|a| id(&sb, a))
    .collect();
    let changed = network()
        .replace("enable_dns_hostnames = true", "enable_dns_hostnames = false")
        .replace(
            "tags = { team = \"platform\" }",
            "tags = { team = \"web\", cost = \"42\" }",
        )
        .replace(
            "{ protocol = \"tcp\", port = 80, cidr = \"0.0.0.0/0\" },",
            "{ protocol = \"tcp\", port = 8443, cidr = \"10.0.0.0/8\" },",
        )
        .replace(
            "subnets = [\"${subnet.public_a.id}\", \"${subnet.public_b.id}\", \"${subnet.public_c.id}\"]",
            "subnets = [\"${subnet.public_a.id}\", \"${subnet.public_b.id}\"]",
        )
        .replace("  \"arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy\",\n", "")
        .replace(
            "Action = [\"eks:DescribeCluster\"]",
            "Action = [\"eks:DescribeCluster\", \"eks:ListClusters\"]",
        )
        .replace("tags = { purpose = \"ci\" }", "tags = { purpose = \"deploy\" }")
        .replacen("public = true", "public = false", 1);
    sb.write("stacks/net/main.toml", &changed);
    let p = sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(2);
    for a in [
        "vpc.main",
        "subnet.public_a",
        "security_group.alb",
        "route_table.public",
        "iam_role.nodes",
        "iam_role.deployer",
    ] {
        assert!(
            p.stdout.contains(&format!("# {a} will be updated in place")),
            "{a}:\n{}",
            p.stdout
        );
    }
    assert!(!p.stdout.contains("must be replaced"), "{}", p.stdout);
    assert!(
        p.stdout.contains("Plan: 0 to add, 6 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let after: Vec<String> = [
        "vpc.main",
        "subnet.public_a",
        "security_group.alb",
        "route_table.public",
        "iam_role.nodes",
        "iam_role.deployer",
    ]
    .iter()
    .map(|a| id(&sb, a))
    .collect();
    assert_eq!(before, after, "in-place updates keep every ID");
    sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(0);

    rt().block_on(async {
        let iam = moto.iam().await;
        let attached = iam
            .list_attached_role_policies()
            .role_name("net-nodes")
            .send()
            .await
            .unwrap();
        assert_eq!(attached.attached_policies().len(), 2);
        let tags = iam.list_role_tags().role_name("net-deployer").send().await.unwrap();
        assert!(tags
            .tags()
            .iter()
            .any(|t| t.key() == "purpose" && t.value() == "deploy"));
        let ec2 = moto.ec2().await;
        let sg = ec2
            .describe_security_groups()
            .group_ids(id(&sb, "security_group.alb"))
            .send()
            .await
            .unwrap();
        let ports: Vec<i32> = sg.security_groups()[0]
            .ip_permissions()
            .iter()
            .filter_map(|p| p.from_port())
            .collect();
        assert!(ports.contains(&8443) && !ports.contains(&80), "{ports:?}");
    });
}

#[test]
fn cidr_zone_and_vpc_changes_force_replacement_naming_the_field_against_moto_emulator() {
    let (_moto, sb) = setup();
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let old_subnet = id(&sb, "subnet.private_c");
    let changed = network().replace("cidr = \"10.0.12.0/24\"", "cidr = \"10.0.22.0/24\"");
    sb.write("stacks/net/main.toml", &changed);
    let p = sb.run(&["plan", "stacks/net"]).expect(0);
    assert!(
        p.stdout
            .contains("# subnet.private_c must be replaced (`cidr` forces replacement)"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout
            .contains("= \"10.0.12.0/24\" -> \"10.0.22.0/24\" # forces replacement"),
        "{}",
        p.stdout
    );
    // The route table that names the subnet updates in place.
    assert!(
        p.stdout.contains("# route_table.private_c will be updated in place"),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    assert_ne!(id(&sb, "subnet.private_c"), old_subnet);
    sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(0);

    let changed = changed.replace(
        "availability_zone = \"us-east-1b\"",
        "availability_zone = \"us-east-1d\"",
    );
    sb.write("stacks/net/main.toml", &changed);
    let p = sb.run(&["plan", "stacks/net"]).expect(0);
    assert!(
        p.stdout
            .contains("# subnet.public_b must be replaced (`availability_zone` forces replacement)"),
        "{}",
        p.stdout
    );
    let changed = changed.replace("description = \"public HTTPS\"", "description = \"public TLS\"");
    sb.write("stacks/net/main.toml", &changed);
    let p = sb.run(&["plan", "stacks/net"]).expect(0);
    assert!(
        p.stdout
            .contains("# security_group.alb must be replaced (`description` forces replacement, new object first)"),
        "{}",
        p.stdout
    );
}

#[test]
fn policy_documents_compare_by_meaning_against_moto_emulator() {
    let (_moto, sb) = setup();
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    // Same trust policy, written as a table with other key order and single values.
    let same = network().replace(
        r#"assume_role_policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":["sts:AssumeRole"]}]}'"#,
        r#"assume_role_policy = { Statement = { Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" }, Effect = "Allow" }, Version = "2012-10-17" }"#,
    );
    assert_ne!(same, network());
    sb.write("stacks/net/main.toml", &same);
    sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(0);
    // A real change of meaning is an update of that one field.
    let other = same.replace("Service = \"ec2.amazonaws.com\"", "Service = \"eks.amazonaws.com\"");
    sb.write("stacks/net/main.toml", &other);
    let p = sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(2);
    assert!(
        p.stdout.contains("# iam_role.nodes will be updated in place"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
}

#[test]
fn drift_made_with_the_sdk_is_shown_and_repaired_against_moto_emulator() {
    use aws_sdk_ec2::types::{IpPermission, IpRange, Tag};
    let (moto, sb) = setup();
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let (subnet, sg, rtb) = (
        id(&sb, "subnet.private_a"),
        id(&sb, "security_group.alb"),
        id(&sb, "route_table.private_b"),
    );
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        ec2.create_tags()
            .resources(&subnet)
            .tags(Tag::builder().key("owner").value("someone").build())
            .send()
            .await
            .unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let t = ec2.describe_route_tables().route_table_ids(&rtb).send().await.unwrap();
        for a in t.route_tables()[0].associations() {
            ec2.disassociate_route_table()
                .association_id(a.route_table_association_id().unwrap())
                .send()
                .await
                .unwrap();
        }
        ec2.delete_route_table().route_table_id(&rtb).send().await.unwrap();
    });
    let p = sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(2);
    assert!(
        p.stdout.contains("objects have changed outside of slipway"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("# subnet.private_a has changed"), "{}", p.stdout);
    assert!(p.stdout.contains("# security_group.alb has changed"), "{}", p.stdout);
    assert!(
        p.stdout.contains("# route_table.private_b has been deleted"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout
            .contains("# route_table.private_b will be created (its object was deleted outside of slipway)"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("Plan: 1 to add, 2 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(0);
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        let g = ec2.describe_security_groups().group_ids(&sg).send().await.unwrap();
        assert!(
            !g.security_groups()[0]
                .ip_permissions()
                .iter()
                .any(|p| p.from_port() == Some(22)),
            "the hand-made rule was revoked"
        );
        let s = ec2.describe_subnets().subnet_ids(&subnet).send().await.unwrap();
        assert!(
            !s.subnets()[0].tags().iter().any(|t| t.key() == Some("owner")),
            "the hand-made tag was removed"
        );
    });
}

#[test]
fn a_process_killed_after_create_is_adopted_not_duplicated_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/net/main.toml",
        "[stack]\nname = \"net\"\nregion = \"us-east-1\"\n\n[vpc.main]\ncidr = \"10.9.0.0/16\"\n\n[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.9.1.0/24\"\navailability_zone = \"us-east-1a\"\n\n[iam_role.r]\nassume_role_policy = { Version = \"2012-10-17\", Statement = [{ Effect = \"Allow\", Principal = { Service = \"ec2.amazonaws.com\" }, Action = \"sts:AssumeRole\" }] }\n",
    );
    for addr in ["vpc.main", "iam_role.r"] {
        let r = sb
            .command(&["apply", "stacks/net", "--auto-approve", "--parallelism", "1"])
            .env("SLIPWAY_FAILPOINT", format!("after-create:{addr}"))
            .output()
            .unwrap();
        assert!(!r.status.success(), "the failpoint kills the run");
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("failpoint"),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(sb.exists("state/net.json.journal"));
        assert!(sb.exists("state/net.json.lock"), "the aborted run's lock is left");
        // A plain apply takes the dead run's lock over and settles its journal.
        let a = sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
        assert!(a.stderr.contains("Took over the lock"), "{}", a.stderr);
        assert!(a.stdout.contains(&format!("{addr}: adopted")), "{}", a.stdout);
        assert!(!a.stdout.contains(&format!("{addr}: Creating")), "{}", a.stdout);
        sb.run(&["plan", "stacks/net", "--detailed-exitcode"]).expect(0);
        sb.run(&["destroy", "stacks/net", "--auto-approve"]).expect(0);
    }
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        let vpcs = ec2
            .describe_vpcs()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:slipway:address")
                    .values("vpc.main")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(vpcs.vpcs().is_empty(), "no second copy and nothing orphaned");
        let roles = moto.iam().await.list_roles().send().await.unwrap();
        assert!(!roles.roles().iter().any(|r| r.role_name() == "net-r"));
    });
}

#[test]
fn a_role_takes_a_permissions_boundary_and_a_session_length_and_changes_them_in_place_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    let role = |extra: &str| {
        format!(
            "[stack]\nname = \"iam\"\nregion = \"us-east-1\"\n\n[iam_role.ci]\n\
             assume_role_policy = {{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Principal = {{ Service = \"ec2.amazonaws.com\" }}, Action = \"sts:AssumeRole\" }}] }}\n{extra}"
        )
    };
    const BOUNDARY: &str = "arn:aws:iam::aws:policy/PowerUserAccess";
    sb.write(
        "iam/main.toml",
        &role(&format!(
            "permissions_boundary = \"{BOUNDARY}\"\nmax_session_duration = 7200\n"
        )),
    );
    sb.run(&["apply", "iam", "--auto-approve"]).expect(0);
    let read = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let iam = moto.iam().await;
            let r = iam.get_role().role_name("iam-ci").send().await.unwrap();
            let r = r.role().unwrap().clone();
            (
                r.permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(str::to_string),
                r.max_session_duration(),
            )
        })
    };
    assert_eq!(read(), (Some(BOUNDARY.to_string()), Some(7200)));
    sb.run(&["plan", "iam", "--detailed-exitcode"]).expect(0);

    let bad = role("max_session_duration = 60\n");
    sb.write("iam/main.toml", &bad);
    let e = sb.run(&["plan", "iam"]).expect(1);
    assert!(
        e.stderr.contains("IAM allows 3600 (1 hour) to 43200 (12 hours)"),
        "{}",
        e.stderr
    );

    // Back to no boundary and one hour: in place, same role.
    sb.write("iam/main.toml", &role(""));
    let p = sb.run(&["plan", "iam"]).expect(0);
    assert!(
        p.stdout.contains("# iam_role.ci will be updated in place"),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "iam", "--auto-approve"]).expect(0);
    assert_eq!(read(), (None, Some(3600)));
    sb.run(&["plan", "iam", "--detailed-exitcode"]).expect(0);
}
