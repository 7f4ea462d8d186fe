//! AWS stacks are checked before any cloud call: CIDRs, subnets inside
//! their VPC and not overlapping, zones of the stack's region, rule ports and
//! protocols, policy JSON. The runs point at a closed port, so any cloud
//! call would fail differently.

use crate::support;

use support::Sandbox;

const HEAD: &str = "[stack]\nname = \"v\"\nregion = \"eu-west-1\"\n\n[vpc.main]\ncidr = \"10.0.0.0/16\"\n\n";

fn fails(body: &str, needles: &[&str]) {
    let mut sb = Sandbox::new();
    sb.env = vec![
        ("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()),
        ("AWS_ACCESS_KEY_ID".into(), "x".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "x".into()),
    ];
    sb.write("stacks/v/main.toml", &format!("{HEAD}{body}"));
    for cmd in ["validate", "plan"] {
        let r = sb.run(&[cmd, "stacks/v"]).expect(1);
        for n in needles {
            assert!(r.stderr.contains(n), "`{cmd}`: expected {n:?} in:\n{}", r.stderr);
        }
        assert!(!sb.exists("state"));
    }
}

#[test]
fn cidr_syntax_is_checked() {
    fails(
        "[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.300.0/24\"\navailability_zone = \"eu-west-1a\"\n",
        &["stacks/v/main.toml:10:8", "subnet.a.cidr", "is not an IPv4 CIDR block"],
    );
    fails(
        "[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.1.5/24\"\navailability_zone = \"eu-west-1a\"\n",
        &["host bits set; the block is \"10.0.1.0/24\""],
    );
}

#[test]
fn a_subnet_must_lie_inside_its_vpc() {
    fails(
        "[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.1.0.0/24\"\navailability_zone = \"eu-west-1a\"\n",
        &[
            "stacks/v/main.toml:10:8",
            "\"10.1.0.0/24\" is not inside vpc.main's block \"10.0.0.0/16\"",
        ],
    );
}

#[test]
fn subnets_of_one_vpc_must_not_overlap() {
    fails(
        "[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.0.0/23\"\navailability_zone = \"eu-west-1a\"\n\n[subnet.b]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.1.0/24\"\navailability_zone = \"eu-west-1b\"\n",
        &["stacks/v/main.toml:15:8", "\"10.0.1.0/24\" overlaps subnet.a's block"],
    );
}

#[test]
fn zones_must_belong_to_the_stack_region() {
    fails(
        "[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.0.0/24\"\navailability_zone = \"us-east-1a\"\n",
        &[
            "stacks/v/main.toml:11:21",
            "\"us-east-1a\" is not in the stack's region \"eu-west-1\"",
        ],
    );
}

#[test]
fn security_group_rules_are_checked() {
    fails(
        "[security_group.s]\nvpc = \"${vpc.main.id}\"\ningress = [{ protocol = \"tcp\", from_port = 443, to_port = 80, cidr = \"0.0.0.0/0\" }]\n",
        &["stacks/v/main.toml:10:44", "security_group.s.ingress[0].from_port", "from_port <= to_port"],
    );
    fails(
        "[security_group.s]\nvpc = \"${vpc.main.id}\"\ningress = [{ protocol = \"tpc\", port = 443, cidr = \"0.0.0.0/0\" }]\n",
        &["security_group.s.ingress[0].protocol", "unknown protocol \"tpc\""],
    );
    fails(
        "[security_group.s]\nvpc = \"${vpc.main.id}\"\ningress = [{ protocol = \"tcp\", port = 70000, cidr = \"0.0.0.0/0\" }]\n",
        &["ports must be 0-65535"],
    );
    fails(
        "[security_group.s]\nvpc = \"${vpc.main.id}\"\negress = [{ protocol = \"all\", port = 22, cidr = \"0.0.0.0/0\" }]\n",
        &["security_group.s.egress[0]", "leave the ports out"],
    );
    fails(
        "[security_group.s]\nvpc = \"${vpc.main.id}\"\ningress = [{ protocol = \"tcp\", port = 22 }]\n",
        &["exactly one source"],
    );
}

#[test]
fn route_targets_and_policies_are_checked() {
    fails(
        "[route_table.r]\nvpc = \"${vpc.main.id}\"\nroutes = [{ cidr = \"0.0.0.0/0\" }]\n",
        &["stacks/v/main.toml:10:11", "exactly one target"],
    );
    fails(
        "[iam_role.r]\nassume_role_policy = '{\"Version\": \"2012-10-17\", '\n",
        &[
            "stacks/v/main.toml:9:22",
            "iam_role.r.assume_role_policy",
            "not valid JSON",
        ],
    );
    fails(
        "[iam_role.r]\nmanaged_policy_arns = []\n",
        &["iam_role.r", "missing field `assume_role_policy`"],
    );
}

#[test]
fn unknown_fields_of_aws_kinds_suggest_the_right_one() {
    fails(
        "[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.0.0.0/24\"\navailability_zone = \"eu-west-1a\"\nmap_public_ip = true\n",
        &["stacks/v/main.toml:12:", "unknown field `map_public_ip`"],
    );
    fails(
        "[vpc.other]\ncidr = \"10.5.0.0/16\"\nenable_dns_hostname = true\n",
        &["did you mean `enable_dns_hostnames`?"],
    );
}

#[test]
fn names_and_tags_are_checked_against_aws_limits() {
    fails(
        "[alb_target_group.web]\nname = \"a-target-group-name-far-over-32-chars\"\nvpc = \"${vpc.main.id}\"\nport = 30080\n",
        &["stacks/v/main.toml:9:8", "alb_target_group.web.name", "ELB names are 1 to 32"],
    );
    fails(
        &format!(
            "[iam_role.ci]\nname = \"{}\"\nassume_role_policy = {{ Version = \"2012-10-17\", Statement = [] }}\n",
            "r".repeat(65)
        ),
        &["iam_role.ci.name", "an IAM role name is 1 to 64 characters"],
    );
    let tags: Vec<String> = (0..47).map(|i| format!("k{i} = \"v\"")).collect();
    fails(
        &format!(
            "[internet_gateway.main]\nvpc = \"${{vpc.main.id}}\"\ntags = {{ {} }}\n",
            tags.join(", ")
        ),
        &[
            "internet_gateway.main.tags",
            "47 tags: AWS allows 50 an object, and slipway's ownership takes 4",
        ],
    );
    fails(
        "[internet_gateway.main]\nvpc = \"${vpc.main.id}\"\ntags = { \"aws:owner\" = \"me\" }\n",
        &["the `aws:` and `slipway:` prefixes are reserved"],
    );
}
