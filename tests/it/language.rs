//! The stack language through the built binary, with the `data` kind (no
//! cloud): locals, functions, operators and conditionals inside `${...}`,
//! and their errors with file, line and column.

use crate::support;

use support::Sandbox;

const STACK: &str = r#"
[stack]
name = "lang"

[variables]
env = "prod"
cidr = "10.0.0.0/16"
zones = ["us-west-2a", "us-west-2b"]
tags = { default = { team = "web" } }

[locals]
prefix = "blog-${var.env}"
replicas = "${var.env == \"prod\" ? 3 : 1}"
subnets = '${[cidrsubnet(var.cidr, 8, 0), cidrsubnet(var.cidr, 8, 1)]}'
tags = '${merge(var.tags, { env = var.env, name = local.prefix })}'
network_id = "${data.network.id}"

[data.network]
input = { cidr = "${var.cidr}" }

[data.app]
input = { name = '${format("%s-%s", local.prefix, upper(var.zones[1]))}', replicas = "${local.replicas}", subnets = "${local.subnets}", tags = "${local.tags}", first_host = '${cidrhost(local.subnets[0], 10)}', zones = '${join(",", var.zones)}', network = "${local.network_id}", config = '${jsonencode({ port = 8080 })}', digest = '${sha256(local.prefix)}' }

[outputs]
name = "${data.app.output.name}"
"#;

#[test]
fn locals_functions_and_conditionals_resolve_as_terraforms_do() {
    let sb = Sandbox::new();
    sb.write("stacks/lang/main.toml", STACK);
    sb.run(&["validate", "stacks/lang"]).expect(0);
    // The app reads data.network through a local: it comes after it.
    let p = sb.run(&["plan", "stacks/lang"]).expect(0);
    assert!(p.stdout.contains("Plan: 2 to add"), "{}", p.stdout);
    let g = sb.run(&["graph", "stacks/lang"]).expect(0);
    assert!(g.stdout.contains("\"data.app\" -> \"data.network\""), "{}", g.stdout);

    sb.run(&["apply", "stacks/lang", "--auto-approve"]).expect(0);
    let st = sb.state("lang");
    let out = &st["resources"]["data.app"]["attributes"]["output"];
    assert_eq!(out["name"], "blog-prod-US-WEST-2B");
    assert_eq!(out["replicas"], 3);
    assert_eq!(out["subnets"], serde_json::json!(["10.0.0.0/24", "10.0.1.0/24"]));
    assert_eq!(
        out["tags"],
        serde_json::json!({"team": "web", "env": "prod", "name": "blog-prod"})
    );
    assert_eq!(out["first_host"], "10.0.0.10");
    assert_eq!(out["zones"], "us-west-2a,us-west-2b");
    assert_eq!(out["network"], st["resources"]["data.network"]["id"]);
    assert_eq!(out["config"], "{\"port\":8080}");
    assert_eq!(out["digest"].as_str().map(str::len), Some(64));
    sb.run(&["plan", "stacks/lang", "--detailed-exitcode"]).expect(0);

    // A variable changes what the conditional picks: one update.
    let p = sb
        .run(&["plan", "stacks/lang", "--var", "env=dev", "--detailed-exitcode"])
        .expect(2);
    assert!(p.stdout.contains("Plan: 0 to add, 1 to change"), "{}", p.stdout);
    assert!(p.stdout.contains("blog-dev-US-WEST-2B"), "{}", p.stdout);
}

#[test]
fn a_function_error_names_the_file_line_and_column_inside_the_string() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/bad/main.toml",
        "[data.a]\ninput = '${upper(var.x}'\n\n[data.b]\ninput = '${nope(1)}'\n",
    );
    let v = sb.run(&["validate", "stacks/bad"]);
    assert_eq!(v.code, 1, "{}", v.stderr);
    // `${upper(var.x}` is missing its `)`: at the `}` (column 23).
    assert!(v.stderr.contains("stacks/bad/main.toml:2:23"), "{}", v.stderr);
    assert!(v.stderr.contains("expected `)`"), "{}", v.stderr);
    // The unknown function is named where it starts (column 12).
    assert!(v.stderr.contains("stacks/bad/main.toml:5:12"), "{}", v.stderr);
    assert!(v.stderr.contains("unknown function `nope`"), "{}", v.stderr);
}

#[test]
fn a_failing_function_is_an_error_at_plan_that_changes_nothing() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/f/main.toml",
        "[variables]\nbits = 8\n\n[data.a]\ninput = '${cidrsubnet(\"10.0.0.0/16\", var.bits, 300)}'\n",
    );
    sb.run(&["validate", "stacks/f"]).expect(0);
    let p = sb.run(&["plan", "stacks/f"]);
    assert_eq!(p.code, 1, "{}", p.stderr);
    assert!(p.stderr.contains("stacks/f/main.toml:4:"), "{}", p.stderr);
    assert!(p.stderr.contains("netnum 300 does not fit in 8 bits"), "{}", p.stderr);
    assert!(!sb.exists("state/f.json"));
}

#[test]
fn locals_that_read_each_other_in_a_cycle_are_refused() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/c/main.toml",
        "[locals]\na = \"${local.b}\"\nb = \"x-${local.a}\"\n\n[data.a]\ninput = \"${local.a}\"\n\n[data.c]\ninput = \"${local.mising}\"\n",
    );
    let v = sb.run(&["validate", "stacks/c"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr
            .contains("locals refer to each other in a cycle: local.a -> local.b -> local.a"),
        "{}",
        v.stderr
    );
    assert!(v.stderr.contains("stacks/c/main.toml:2:1"), "{}", v.stderr);
    assert!(
        v.stderr.contains("reference to undeclared local `mising`"),
        "{}",
        v.stderr
    );
}

#[test]
fn file_reads_inside_the_repository_only() {
    let sb = Sandbox::new();
    sb.write("stacks/f/policy.json", "{\"Version\": \"2012-10-17\"}\n");
    sb.write(
        "stacks/f/main.toml",
        "[data.a]\ninput = '${jsondecode(file(\"policy.json\")).Version}'\n",
    );
    sb.run(&["apply", "stacks/f", "--auto-approve"]).expect(0);
    assert_eq!(
        sb.state("f")["resources"]["data.a"]["attributes"]["output"],
        "2012-10-17"
    );
    sb.write("stacks/g/main.toml", "[data.a]\ninput = '${file(\"/etc/passwd\")}'\n");
    let p = sb.run(&["plan", "stacks/g"]);
    assert_eq!(p.code, 1);
    assert!(p.stderr.contains("outside the repository"), "{}", p.stderr);
    assert!(!p.stderr.contains("root:"), "{}", p.stderr);
}

#[test]
fn lookups_read_the_caller_identity_region_and_zones_from_aws_against_moto() {
    // Lookups are read at plan time through the SDK (moto here); the plan
    // carries what they read, so a saved plan applies the same values.
    let moto = support::moto::Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/l/main.toml",
        r#"
[stack]
name = "l"
region = "us-east-1"

[lookup.caller_identity.me]

[lookup.region.here]

[lookup.availability_zones.all]

[locals]
zones = '${[lookup.availability_zones.all.names[0], lookup.availability_zones.all.names[1]]}'

[data.facts]
input = { account = "${lookup.caller_identity.me.account_id}", partition = "${lookup.caller_identity.me.partition}", region = "${lookup.region.here.name}", zones = "${local.zones}", role = 'arn:${lookup.caller_identity.me.partition}:iam::${lookup.caller_identity.me.account_id}:role/ci' }
"#,
    );
    sb.run(&["validate", "stacks/l"]).expect(0);
    let p = sb.run(&["plan", "stacks/l", "--out", "l.plan"]).expect(0);
    assert!(p.stdout.contains("123456789012"), "{}", p.stdout);
    sb.run(&["apply", "l.plan"]).expect(0);
    let out = sb.state("l")["resources"]["data.facts"]["attributes"]["output"].clone();
    assert_eq!(out["account"], "123456789012");
    assert_eq!(out["partition"], "aws");
    assert_eq!(out["region"], "us-east-1");
    assert_eq!(out["zones"], serde_json::json!(["us-east-1a", "us-east-1b"]));
    assert_eq!(out["role"], "arn:aws:iam::123456789012:role/ci");
    sb.run(&["plan", "stacks/l", "--detailed-exitcode"]).expect(0);
    // Lookups are not resources: nothing of them is in the state.
    let st = sb.state("l");
    assert_eq!(st["resources"].as_object().unwrap().len(), 1, "{st}");

    // A lookup cannot read a resource, and its attributes are checked.
    sb.write(
        "stacks/bad/main.toml",
        "[lookup.availability_zones.all]\nstate = \"${data.x.id}\"\n\n[data.x]\ninput = \"${lookup.availability_zones.all.name}\"\n\n[lookup.caller_identiy.me]\n",
    );
    let v = sb.run(&["validate", "stacks/bad"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("unknown lookup kind `caller_identiy`"),
        "{}",
        v.stderr
    );
    assert!(v.stderr.contains("did you mean `caller_identity`?"), "{}", v.stderr);
    sb.write(
        "stacks/bad/main.toml",
        "[lookup.availability_zones.all]\nstate = \"${data.x.id}\"\n\n[data.x]\ninput = \"${lookup.availability_zones.all.name}\"\n",
    );
    let v = sb.run(&["validate", "stacks/bad"]);
    assert_eq!(v.code, 1);
    assert!(v.stderr.contains("may use variables and locals only"), "{}", v.stderr);
    assert!(
        v.stderr.contains("did you mean `lookup.availability_zones.all.names`?"),
        "{}",
        v.stderr
    );
}

const EACH: &str = r#"
[stack]
name = "each"

[variables]
cidr = "10.0.0.0/16"
zones = ["us-west-2a", "us-west-2b"]

[locals]
apps = { frontend = { port = 80 }, backend = { port = 8080 } }

[data.vpc]
input = { cidr = "${var.cidr}" }

[data.subnet]
for_each = "${var.zones}"
input = { zone = "${each.key}", cidr = '${cidrsubnet(var.cidr, 8, index(var.zones, each.value))}', vpc = "${data.vpc.id}" }

[data.app]
for_each = "${local.apps}"
input = { name = "${each.key}", port = "${each.value.port}", subnet = '${data.subnet["us-west-2a"].output.cidr}' }

[data.lb]
input = { subnets = "${data.subnet[*].output.cidr}" }

[outputs]
subnets = "${data.subnet[*].output.zone}"
"#;

#[test]
fn for_each_makes_one_instance_per_key_and_a_new_key_touches_only_its_instance() {
    let sb = Sandbox::new();
    sb.write("stacks/each/main.toml", EACH);
    sb.run(&["validate", "stacks/each"]).expect(0);
    let p = sb.run(&["plan", "stacks/each", "--out", "each.plan"]).expect(0);
    assert!(p.stdout.contains("Plan: 6 to add"), "{}", p.stdout);
    assert!(
        p.stdout.contains("data.subnet[\"us-west-2a\"] will be created"),
        "{}",
        p.stdout
    );
    // A saved plan applies the same instances.
    sb.run(&["apply", "each.plan"]).expect(0);
    let st = sb.state("each");
    let out = |a: &str| st["resources"][a]["attributes"]["output"].clone();
    assert_eq!(out("data.subnet[\"us-west-2b\"]")["cidr"], "10.0.1.0/24");
    assert_eq!(out("data.subnet[\"us-west-2b\"]")["zone"], "us-west-2b");
    assert_eq!(out("data.app[\"backend\"]")["port"], 8080);
    assert_eq!(out("data.app[\"frontend\"]")["subnet"], "10.0.0.0/24");
    assert_eq!(
        out("data.lb")["subnets"],
        serde_json::json!(["10.0.0.0/24", "10.0.1.0/24"])
    );
    let o = sb.run(&["output", "stacks/each", "--json"]).expect(0);
    assert!(o.stdout.contains("us-west-2b"), "{}", o.stdout);
    sb.run(&["plan", "stacks/each", "--detailed-exitcode"]).expect(0);
    sb.run(&["state", "show", "data.subnet[\"us-west-2a\"]", "--stack", "stacks/each"])
        .expect(0);
    // --target takes an instance, or the resource for all its instances.
    let d = sb
        .run(&[
            "plan",
            "stacks/each",
            "--destroy",
            "--target",
            "data.subnet[\"us-west-2b\"]",
        ])
        .expect(0);
    assert!(d.stdout.contains("0 to add, 0 to change, 2 to destroy"), "{}", d.stdout);
    let d = sb
        .run(&["plan", "stacks/each", "--destroy", "--target", "data.subnet"])
        .expect(0);
    assert!(d.stdout.contains("0 to add, 0 to change, 5 to destroy"), "{}", d.stdout);

    // A third zone: one subnet more, and the list that reads them all changes.
    let p = sb
        .run(&[
            "plan",
            "stacks/each",
            "--var",
            r#"zones=["us-west-2a","us-west-2b","us-west-2c"]"#,
        ])
        .expect(0);
    assert!(
        p.stdout.contains("Plan: 1 to add, 1 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("data.subnet[\"us-west-2c\"] will be created"),
        "{}",
        p.stdout
    );
    // A zone fewer: only its instance goes.
    let p = sb
        .run(&["plan", "stacks/each", "--var", r#"zones=["us-west-2a"]"#])
        .expect(0);
    assert!(p.stdout.contains("1 to change, 1 to destroy"), "{}", p.stdout);
    assert!(
        p.stdout.contains("data.subnet[\"us-west-2b\"] will be destroyed"),
        "{}",
        p.stdout
    );
}

#[test]
fn for_each_mistakes_are_refused_with_their_place() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/e/main.toml",
        "[data.a]\ninput = \"${each.key}\"\n\n[data.b]\nfor_each = \"${data.a.id}\"\ninput = 1\n\n[data.c]\ninput = \"${data.b.id}\"\n",
    );
    let v = sb.run(&["validate", "stacks/e"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("`each.key` is used outside a resource with for_each"),
        "{}",
        v.stderr
    );
    assert!(v.stderr.contains("its keys must be known before apply"), "{}", v.stderr);
    assert!(
        v.stderr.contains("`data.b` has for_each: name an instance"),
        "{}",
        v.stderr
    );
}

#[test]
fn the_network_stack_rewritten_with_for_each_takes_over_the_old_layouts_objects_against_moto() {
    // stacks/network had four subnet tables; it now has two with for_each,
    // and [[moved]] entries carry the old state's subnets over.
    let moto = support::moto::Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/network/main.toml",
        include_str!("../fixtures/network_before_for_each.toml"),
    );
    sb.run(&["apply", "stacks/network", "--auto-approve"]).expect(0);
    let before = sb.state("network");
    sb.write(
        "stacks/network/main.toml",
        include_str!("../../stacks/network/main.toml"),
    );
    // Nothing changes: while the [[moved]] entry stays, the subnet keeps the
    // default name of its old address (`network-public_a`), as in Terraform,
    // where a move renames nothing.
    let p = sb.run(&["plan", "stacks/network"]).expect(0);
    assert!(p.stdout.contains("0 to add, 0 to change, 0 to destroy"), "{}", p.stdout);
    assert!(
        p.stdout
            .contains("subnet.public_a has moved to subnet.public[\"eu-west-1a\"]"),
        "{}",
        p.stdout
    );
    assert!(!p.stdout.contains("has changed"), "{}", p.stdout);
    sb.run(&["apply", "stacks/network", "--auto-approve"]).expect(0);
    let ec2_name = |id: &serde_json::Value| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let conf = moto
                .sdk_config()
                .await
                .into_builder()
                .region(aws_config::Region::new("eu-west-1"))
                .build();
            let got = aws_sdk_ec2::Client::new(&conf)
                .describe_subnets()
                .subnet_ids(id.as_str().unwrap())
                .send()
                .await
                .unwrap();
            got.subnets()[0]
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .map(str::to_string)
        })
    };
    let moved_id = sb.state("network")["resources"]["subnet.public[\"eu-west-1a\"]"]["id"].clone();
    assert_eq!(ec2_name(&moved_id).as_deref(), Some("network-public_a"));
    let after = sb.state("network");
    for (old, new) in [
        ("subnet.public_a", "subnet.public[\"eu-west-1a\"]"),
        ("subnet.private_b", "subnet.private[\"eu-west-1b\"]"),
    ] {
        assert_eq!(
            before["resources"][old]["id"], after["resources"][new]["id"],
            "{old} is {new}"
        );
    }
    assert!(after["resources"].get("subnet.public_a").is_none());
    sb.run(&["plan", "stacks/network", "--detailed-exitcode"]).expect(0);
    sb.run(&["destroy", "stacks/network", "--auto-approve"]).expect(0);
}

#[test]
fn lookups_find_a_vpc_by_tags_its_subnets_a_hosted_zone_and_a_role_against_moto() {
    // A platform stack makes a VPC; another stack finds it by its tags and
    // builds on it, without owning it.
    let moto = support::moto::Moto::start();
    let sb = Sandbox::with_moto(&moto);
    let zone = moto.hosted_zone("example.com");
    sb.write(
        "stacks/platform/main.toml",
        r#"
[stack]
name = "platform"
region = "us-east-1"

[vpc.shared]
cidr = "10.9.0.0/16"
tags = { team = "platform" }

[subnet.a]
vpc = "${vpc.shared.id}"
cidr = "10.9.1.0/24"
availability_zone = "us-east-1a"
tags = { tier = "private" }

[iam_role.deployer]
name = "platform-deployer"
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }
"#,
    );
    sb.run(&["apply", "stacks/platform", "--auto-approve"]).expect(0);
    let platform = sb.state("platform");
    sb.write(
        "stacks/team/main.toml",
        r#"
[stack]
name = "team"
region = "us-east-1"

[lookup.vpc.shared]
tags = { team = "platform" }

[lookup.subnets.private]
vpc = "${lookup.vpc.shared.id}"
tags = { tier = "private" }

[lookup.route53_zone.main]
name = "example.com"

[lookup.iam_role.deployer]
name = "platform-deployer"

[data.facts]
input = { vpc = "${lookup.vpc.shared.id}", cidr = "${lookup.vpc.shared.cidr}", subnets = "${lookup.subnets.private.ids}", zone = "${lookup.route53_zone.main.id}", role = "${lookup.iam_role.deployer.arn}" }
"#,
    );
    sb.run(&["apply", "stacks/team", "--auto-approve"]).expect(0);
    let out = sb.state("team")["resources"]["data.facts"]["attributes"]["output"].clone();
    assert_eq!(out["vpc"], platform["resources"]["vpc.shared"]["id"]);
    assert_eq!(out["cidr"], "10.9.0.0/16");
    assert_eq!(
        out["subnets"],
        serde_json::json!([platform["resources"]["subnet.a"]["id"]])
    );
    assert_eq!(out["zone"], zone);
    assert_eq!(
        out["role"],
        platform["resources"]["iam_role.deployer"]["attributes"]["arn"]
    );
    // What the lookups call is in the read-only policy.
    let policy = sb.run(&["iam-policy", "stacks/team", "--plan"]).expect(0);
    for action in [
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "route53:ListHostedZonesByName",
        "iam:GetRole",
    ] {
        assert!(policy.stdout.contains(action), "{action}: {}", policy.stdout);
    }
    // The team's destroy leaves the platform's objects alone.
    sb.run(&["destroy", "stacks/team", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/platform", "--detailed-exitcode"]).expect(0);

    // A lookup that matches nothing stops the plan before anything changes.
    sb.write(
        "stacks/team/main.toml",
        "[stack]\nname = \"team\"\nregion = \"us-east-1\"\n\n[lookup.vpc.x]\ntags = { team = \"nobody\" }\n\n[data.a]\ninput = \"${lookup.vpc.x.id}\"\n",
    );
    let p = sb.run(&["plan", "stacks/team"]);
    assert_eq!(p.code, 1);
    assert!(p.stderr.contains("lookup.vpc.x: no VPC matches"), "{}", p.stderr);
}

#[test]
fn a_stack_reads_another_stacks_outputs_from_its_state_without_owning_anything_of_it() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/platform/main.toml",
        "[stack]\nname = \"platform\"\n\n[data.cluster]\ninput = { name = \"blog\" }\n\n[outputs]\ncluster_name = \"${data.cluster.output.name}\"\ncluster_id = \"${data.cluster.id}\"\ntoken = { value = \"${data.cluster.id}\", sensitive = true }\n",
    );
    sb.write(
        "stacks/app/main.toml",
        "[stack]\nname = \"app\"\n\n[lookup.stack.platform]\ndir = \"../platform\"\n\n[data.app]\ninput = { cluster = \"${lookup.stack.platform.cluster_name}\", id = \"${lookup.stack.platform.cluster_id}\" }\n",
    );
    sb.run(&["validate", "stacks/app"]).expect(0);
    // Before the platform exists, the plan says what to do.
    let p = sb.run(&["plan", "stacks/app"]);
    assert_eq!(p.code, 1);
    assert!(
        p.stderr.contains("stack `platform` (../platform) has no state yet"),
        "{}",
        p.stderr
    );

    sb.run(&["apply", "stacks/platform", "--auto-approve"]).expect(0);
    let serial = sb.state("platform")["serial"].clone();
    sb.run(&["apply", "stacks/app", "--auto-approve"]).expect(0);
    let out = sb.state("app")["resources"]["data.app"]["attributes"]["output"].clone();
    assert_eq!(out["cluster"], "blog");
    assert_eq!(out["id"], sb.state("platform")["resources"]["data.cluster"]["id"]);
    assert_eq!(
        sb.state("platform")["serial"],
        serial,
        "the platform's state is only read"
    );

    // A sensitive output is not shared; a directory outside the repository is refused.
    sb.write(
        "stacks/app/main.toml",
        "[stack]\nname = \"app\"\n\n[lookup.stack.platform]\ndir = \"../platform\"\n\n[data.app]\ninput = \"${lookup.stack.platform.token}\"\n",
    );
    let p = sb.run(&["plan", "stacks/app"]);
    assert_eq!(p.code, 1);
    assert!(p.stderr.contains("has no output `token`"), "{}", p.stderr);
    sb.write(
        "stacks/app/main.toml",
        "[stack]\nname = \"app\"\n\n[lookup.stack.x]\ndir = \"/etc\"\n\n[data.app]\ninput = \"${lookup.stack.x.a}\"\n",
    );
    let p = sb.run(&["plan", "stacks/app"]);
    assert_eq!(p.code, 1);
    assert!(p.stderr.contains("outside the repository"), "{}", p.stderr);
}

#[test]
fn an_app_stack_deploys_onto_the_cluster_a_platform_stack_made_through_its_outputs_and_lookups_against_moto_and_the_emulator(
) {
    // The platform team's stack makes an EKS cluster and shares its
    // connection; the app team's stack reads it (lookup.stack), finds the
    // same cluster by name (lookup.eks_cluster) and a certificate by domain
    // (lookup.acm_certificate), and deploys onto the cluster. It owns only
    // its Kubernetes objects.
    let moto = support::moto::Moto::start();
    let emu = support::k8s::K8sEmulator::start();
    let sb = Sandbox::for_blog(&moto, &emu);
    let cert = moto.certificate("app.example.com");
    sb.write(
        "stacks/platform/main.toml",
        r#"
[stack]
name = "platform"
region = "us-west-2"

[locals]
zones = { "us-west-2a" = 0, "us-west-2b" = 1 }

[vpc.main]
cidr = "10.7.0.0/16"

[subnet.private]
for_each = "${local.zones}"
vpc = "${vpc.main.id}"
cidr = "${cidrsubnet(vpc.main.cidr, 8, each.value)}"
availability_zone = "${each.key}"

[iam_role.cluster]
assume_role_policy = { Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }
managed_policy_arns = ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]

[eks_cluster.main]
name = "platform"
version = "1.31"
role = "${iam_role.cluster.arn}"
subnets = "${subnet.private[*].id}"

[outputs]
cluster = "${eks_cluster.main.connection}"
cluster_name = "${eks_cluster.main.name}"
"#,
    );
    sb.run(&["apply", "stacks/platform", "--auto-approve"]).expect(0);
    sb.write(
        "stacks/team/main.toml",
        r#"
[stack]
name = "team"
region = "us-west-2"

[lookup.stack.platform]
dir = "../platform"

[lookup.eks_cluster.same]
name = "${lookup.stack.platform.cluster_name}"

[lookup.acm_certificate.site]
domain = "app.example.com"
statuses = ["ISSUED", "PENDING_VALIDATION"]

[k8s_namespace.team]
cluster = "${lookup.stack.platform.cluster}"
name = "team"

[k8s_manifest.facts]
cluster = "${lookup.eks_cluster.same.connection}"
manifest = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "facts", namespace = "team" }, data = { certificate = "${lookup.acm_certificate.site.arn}", endpoint = "${lookup.eks_cluster.same.endpoint}" } }
depends_on = ["k8s_namespace.team"]
"#,
    );
    sb.run(&["validate", "stacks/team"]).expect(0);
    sb.run(&["apply", "stacks/team", "--auto-approve"]).expect(0);
    let cm = emu
        .get("/api/v1/namespaces/team/configmaps/facts")
        .expect("the ConfigMap is on the platform's cluster");
    assert_eq!(cm["data"]["certificate"], cert);
    assert!(
        cm["data"]["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("https://")),
        "{cm}"
    );
    let team = sb.state("team");
    assert_eq!(
        team["resources"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["k8s_manifest.facts", "k8s_namespace.team"],
        "the team owns only its objects"
    );
    sb.run(&["plan", "stacks/team", "--detailed-exitcode"]).expect(0);
    let policy = sb.run(&["iam-policy", "stacks/team", "--plan"]).expect(0);
    for action in ["eks:DescribeCluster", "acm:ListCertificates"] {
        assert!(policy.stdout.contains(action), "{action}: {}", policy.stdout);
    }
    sb.run(&["destroy", "stacks/team", "--auto-approve"]).expect(0);
    assert!(emu.get("/api/v1/namespaces/team/configmaps/facts").is_none());
    sb.run(&["plan", "stacks/platform", "--detailed-exitcode"]).expect(0);

    // A literal connection is refused: only clusters AWS reports get a token.
    sb.write(
        "stacks/team/main.toml",
        "[stack]\nname = \"team\"\nregion = \"us-west-2\"\n\n[k8s_namespace.team]\ncluster = { name = \"x\", endpoint = \"https://evil.example\" }\nname = \"team\"\n",
    );
    let v = sb.run(&["validate", "stacks/team"]);
    assert_eq!(v.code, 1);
    assert!(
        v.stderr.contains("`cluster` must be an eks_cluster of this stack"),
        "{}",
        v.stderr
    );
}

#[test]
fn what_functions_and_modules_compute_from_a_sensitive_variable_is_sensitive_everywhere() {
    let sb = Sandbox::new();
    sb.write(
        "modules/m/main.toml",
        "[variables]\nsecret = {}\n\n[data.inner]\ninput = '${join(\"-\", [\"k\", upper(var.secret)])}'\n\n[outputs]\no = \"${data.inner.output}\"\n",
    );
    sb.write(
        "stacks/s/main.toml",
        r#"
[stack]
name = "s"

[variables]
pw = { sensitive = true }

[locals]
up = "${upper(var.pw)}"

[data.a]
input = { x = "${local.up}", y = '${format("u=%s", var.pw)}', z = '${base64encode(var.pw)}', h = '${sha256(var.pw)}', j = '${jsonencode({ p = var.pw })}' }

[module.m]
source = "../../modules/m"
inputs = { secret = "${var.pw}" }

[outputs]
o = { value = "${module.m.o}", sensitive = true }
"#,
    );
    let secret = "hunter2secret";
    let forms = [
        secret.to_string(),
        secret.to_uppercase(),
        "aHVudGVyMnNlY3JldA".to_string(),
        // sha256("hunter2secret")
        {
            use sha2::Digest;
            sha2::Sha256::digest(secret.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        },
    ];
    let var = format!("pw={secret}");
    let p = sb
        .run(&["plan", "stacks/s", "--var", &var, "--out", "plan.bin"])
        .expect(0);
    let j = sb.run(&["plan", "stacks/s", "--var", &var, "--json"]).expect(0);
    let a = sb
        .run(&["apply", "stacks/s", "--var", &var, "--auto-approve"])
        .expect(0);
    let o = sb.run(&["output", "stacks/s"]).expect(0);
    let st = sb.read("state/s.json");
    let plan_file = String::from_utf8_lossy(&std::fs::read(sb.path("plan.bin")).unwrap()).into_owned();
    for (what, text) in [
        ("plan", &p.stdout),
        ("plan --json", &j.stdout),
        ("apply", &a.stdout),
        ("apply stderr", &a.stderr),
        ("output", &o.stdout),
        ("state", &st),
        ("saved plan", &plan_file),
    ] {
        for f in &forms {
            assert!(!text.contains(f.as_str()), "{what} shows {f}:\n{text}");
        }
    }
    assert!(p.stdout.contains("(sensitive value)"), "{}", p.stdout);
}
