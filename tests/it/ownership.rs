//! slipway acts only on what its own state made, against the moto AWS
//! emulator: two states of one stack in one account (the dev/prod habit)
//! never adopt, delete or "clean up" each other's objects. moto is not AWS;
//! these tests show which objects slipway touches, judged by their tags.

use crate::support;

use std::collections::BTreeMap;

use support::moto::Moto;
use support::Sandbox;

/// The kinds whose creates have no idempotency (each create is followed by a
/// look for duplicates): exactly where a foreign object was once deleted.
const NET: &str = r#"
[stack]
name = "net"
region = "us-east-1"

[variables]
cidr = "10.0.0.0/16"
zone_cidr = "10.0.1.0/24"

[vpc.main]
cidr = "${var.cidr}"

[internet_gateway.main]
vpc = "${vpc.main.id}"

[elastic_ip.nat]

[subnet.a]
vpc = "${vpc.main.id}"
cidr = "${var.zone_cidr}"
availability_zone = "us-east-1a"
"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The EC2 objects in `region` tagged as stack `stack` (VPCs, subnets,
/// gateways, NAT gateways, addresses, route tables, security groups), by
/// ID, each with the lineage tag it carries.
fn tagged_in(moto: &Moto, region: &str, stack: &str) -> BTreeMap<String, String> {
    use aws_sdk_ec2::types::{Filter, Tag};
    rt().block_on(async {
        let conf = moto.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&conf)
                .region(aws_sdk_ec2::config::Region::new(region.to_string()))
                .build(),
        );
        let f = || Filter::builder().name("tag:slipway:stack").values(stack).build();
        let tag = |tags: &[Tag], key: &str| {
            tags.iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let mut all: Vec<(String, &[Tag])> = Vec::new();
        let vpcs = ec2.describe_vpcs().filters(f()).send().await.unwrap();
        all.extend(vpcs.vpcs().iter().map(|v| (v.vpc_id().unwrap().to_string(), v.tags())));
        let subnets = ec2.describe_subnets().filters(f()).send().await.unwrap();
        all.extend(
            subnets
                .subnets()
                .iter()
                .map(|v| (v.subnet_id().unwrap().to_string(), v.tags())),
        );
        let igws = ec2.describe_internet_gateways().filters(f()).send().await.unwrap();
        all.extend(
            igws.internet_gateways()
                .iter()
                .map(|v| (v.internet_gateway_id().unwrap().to_string(), v.tags())),
        );
        let eips = ec2.describe_addresses().filters(f()).send().await.unwrap();
        all.extend(
            eips.addresses()
                .iter()
                .map(|v| (v.allocation_id().unwrap().to_string(), v.tags())),
        );
        let rts = ec2.describe_route_tables().filters(f()).send().await.unwrap();
        all.extend(
            rts.route_tables()
                .iter()
                .map(|v| (v.route_table_id().unwrap().to_string(), v.tags())),
        );
        let sgs = ec2.describe_security_groups().filters(f()).send().await.unwrap();
        all.extend(
            sgs.security_groups()
                .iter()
                .map(|v| (v.group_id().unwrap().to_string(), v.tags())),
        );
        // moto ignores tag filters on DescribeNatGateways: the tags are matched below.
        let nats = ec2.describe_nat_gateways().send().await.unwrap();
        let live_nats = nats
            .nat_gateways()
            .iter()
            .filter(|g| g.state().map(|s| s.as_str()) != Some("deleted"));
        all.extend(live_nats.map(|v| (v.nat_gateway_id().unwrap().to_string(), v.tags())));
        all.into_iter()
            .filter(|(_, tags)| tag(tags, "slipway:stack").as_deref() == Some(stack))
            .map(|(id, tags)| (id, tag(tags, "slipway:lineage").unwrap_or_default()))
            .collect()
    })
}

/// The objects of stack `net` (the test stack, in us-east-1).
fn tagged(moto: &Moto) -> BTreeMap<String, String> {
    tagged_in(moto, "us-east-1", "net")
}

fn state(sb: &Sandbox, file: &str) -> serde_json::Value {
    serde_json::from_str(&sb.read(file)).unwrap()
}

fn ids(sb: &Sandbox, file: &str) -> Vec<String> {
    let s = state(sb, file);
    let mut v: Vec<String> = s["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn two_states_of_one_stack_never_touch_each_others_objects_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("stacks/net/main.toml", NET);
    let dev = [
        "--state",
        "dev.json",
        "--var",
        "cidr=10.1.0.0/16",
        "--var",
        "zone_cidr=10.1.1.0/24",
    ];
    let prod = [
        "--state",
        "prod.json",
        "--var",
        "cidr=10.2.0.0/16",
        "--var",
        "zone_cidr=10.2.1.0/24",
    ];
    fn with(cmd: &'static str, env: &[&'static str]) -> Vec<&'static str> {
        let mut a = vec![cmd, "stacks/net"];
        a.extend_from_slice(env);
        a
    }
    let apply = |env: &[&'static str]| {
        let mut a = with("apply", env);
        a.push("--auto-approve");
        sb.run(&a).expect(0)
    };
    apply(&dev);
    let second = apply(&prod);
    assert!(
        !second.stdout.contains("duplicate") && !second.stderr.contains("duplicate"),
        "the second state deleted what it took for duplicates:\n{}\n{}",
        second.stdout,
        second.stderr
    );
    let (dev_ids, prod_ids) = (ids(&sb, "dev.json"), ids(&sb, "prod.json"));
    assert_eq!(dev_ids.len(), 4);
    assert_eq!(prod_ids.len(), 4);
    let live = tagged(&moto);
    assert_eq!(live.len(), 8, "both states' objects exist: {live:?}");
    // Each object carries the lineage of the state that made it.
    let lineage = |f: &str| state(&sb, f)["lineage"].as_str().unwrap().to_string();
    for id in &dev_ids {
        assert_eq!(live.get(id), Some(&lineage("dev.json")), "{id}");
    }
    for id in &prod_ids {
        assert_eq!(live.get(id), Some(&lineage("prod.json")), "{id}");
    }

    // Each state re-plans clean.
    for env in [&dev, &prod] {
        let p = sb.run(&with("plan", env)).expect(0);
        assert!(p.stdout.contains("No changes"), "{}", p.stdout);
    }

    // Destroying dev leaves every prod object in place.
    let mut d = with("destroy", &dev);
    d.push("--auto-approve");
    sb.run(&d).expect(0);
    let live = tagged(&moto);
    let left: Vec<&String> = live.keys().collect();
    let mut want: Vec<&String> = prod_ids.iter().collect();
    want.sort();
    assert_eq!(left, want, "after destroying dev, exactly prod's objects remain");
    let p = sb.run(&with("plan", &prod)).expect(0);
    assert!(p.stdout.contains("No changes"), "{}", p.stdout);
}

#[test]
fn a_tracked_object_under_a_new_address_is_never_a_duplicate_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("stacks/net/main.toml", NET);
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let subnet = state(&sb, "state/net.json")["resources"]["subnet.a"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Track the subnet under a new address, then declare the old one again.
    sb.run(&["state", "rm", "subnet.a", "--stack", "stacks/net"]).expect(0);
    let renamed = NET.replace("[subnet.a]", "[subnet.private_a]");
    sb.write("stacks/net/main.toml", &renamed);
    let imported = sb.run(&["import", "stacks/net", "subnet.private_a", &subnet]).expect(0);
    assert!(imported.stdout.contains("ownership tags"), "{}", imported.stdout);
    let readded = format!(
        "{renamed}\n[subnet.a]\nvpc = \"${{vpc.main.id}}\"\ncidr = \"10.0.2.0/24\"\navailability_zone = \"us-east-1a\"\n"
    );
    sb.write("stacks/net/main.toml", &readded);
    let a = sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    assert!(!a.stdout.contains("duplicate"), "{}", a.stdout);
    let s = state(&sb, "state/net.json");
    assert_eq!(s["resources"]["subnet.private_a"]["id"], subnet);
    assert!(
        tagged(&moto).contains_key(&subnet),
        "the imported subnet is still there"
    );
    assert_ne!(s["resources"]["subnet.a"]["id"], subnet);
}

#[test]
fn moved_renames_an_aws_resource_and_rewrites_its_address_tag_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("stacks/net/main.toml", NET);
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let subnet = state(&sb, "state/net.json")["resources"]["subnet.a"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let moved = NET.replace("[subnet.a]", "[subnet.private_a]")
        + "\n[[moved]]\nfrom = \"subnet.a\"\nto = \"subnet.private_a\"\n";
    sb.write("stacks/net/main.toml", &moved);
    let p = sb.run(&["plan", "stacks/net"]).expect(0);
    assert!(
        p.stdout.contains("# subnet.a has moved to subnet.private_a"),
        "{}",
        p.stdout
    );
    assert!(
        !p.stdout.contains("destroy\n") || p.stdout.contains("0 to destroy"),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    assert_eq!(
        state(&sb, "state/net.json")["resources"]["subnet.private_a"]["id"],
        subnet
    );
    let address = rt().block_on(async {
        let ec2 = moto.ec2().await;
        let out = ec2.describe_subnets().subnet_ids(&subnet).send().await.unwrap();
        let s = &out.subnets()[0];
        let t = s.tags().iter().find(|t| t.key() == Some("slipway:address")).unwrap();
        t.value().unwrap().to_string()
    });
    assert_eq!(address, "subnet.private_a");
}

/// Objects tagged as stack `stack` in stacks/network's region, IAM roles
/// (named `<stack>-...`) included, counted through the SDK.
fn count_tagged(moto: &Moto, stack: &str) -> usize {
    let roles = rt().block_on(async {
        let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
        let roles = iam.list_roles().send().await.unwrap();
        roles
            .roles()
            .iter()
            .filter(|r| r.role_name().starts_with(&format!("{stack}-")))
            .count()
    });
    tagged_in(moto, "eu-west-1", stack).len() + roles
}

#[test]
fn two_environments_of_the_network_stack_apply_replan_and_destroy_apart_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/network/main.toml",
        include_str!("../../stacks/network/main.toml"),
    );
    // Same CIDR in both: AWS allows it (moto checks subnets against it).
    sb.write("stacks/network/env/dev.toml", "cidr = \"10.0.0.0/16\"\n");
    sb.write("stacks/network/env/prod.toml", "cidr = \"10.0.0.0/16\"\n");
    for env in ["dev", "prod"] {
        let a = sb
            .run(&["apply", "stacks/network", "--env", env, "--auto-approve"])
            .expect(0);
        assert!(!a.stdout.contains("duplicate"), "{}", a.stdout);
        assert!(sb.exists(&format!("state/network.{env}.json")));
    }
    let resources = |env: &str| {
        state(&sb, &format!("state/network.{env}.json"))["resources"]
            .as_object()
            .unwrap()
            .len()
    };
    let (dev, prod) = (count_tagged(&moto, "network-dev"), count_tagged(&moto, "network-prod"));
    assert_eq!(dev, resources("dev"), "every dev object is tagged network-dev");
    assert_eq!(prod, resources("prod"));
    for env in ["dev", "prod"] {
        let p = sb.run(&["plan", "stacks/network", "--env", env]).expect(0);
        assert!(p.stdout.contains("No changes"), "{env}: {}", p.stdout);
    }
    // SLIPWAY_ENV selects the same as --env.
    let mut c = sb.command(&["plan", "stacks/network"]);
    let out = c.env("SLIPWAY_ENV", "prod").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes"));

    sb.run(&["destroy", "stacks/network", "--env", "dev", "--auto-approve"])
        .expect(0);
    assert_eq!(count_tagged(&moto, "network-dev"), 0);
    assert_eq!(
        count_tagged(&moto, "network-prod"),
        prod,
        "every prod object is still there"
    );
    let p = sb.run(&["plan", "stacks/network", "--env", "prod"]).expect(0);
    assert!(p.stdout.contains("No changes"), "{}", p.stdout);
}

#[test]
fn env_values_var_files_and_the_env_reference_resolve_in_order() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/hello/main.toml",
        r#"
[stack]
name = "hello"

[variables]
size = 1
label = "none"

[data.a]
input = { size = "${var.size}", label = "${var.label}", where = "${env}" }
"#,
    );
    sb.write("stacks/hello/env/dev.toml", "size = 2\nlabel = \"from-env-file\"\n");
    sb.write("extra.toml", "label = \"from-var-file\"\n");
    let r = sb
        .run(&["plan", "stacks/hello", "--env", "dev", "--var-file", "extra.toml"])
        .expect(0);
    assert!(
        r.stdout.contains("from-var-file") && r.stdout.contains("dev"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains('2'), "{}", r.stdout);
    let r = sb
        .run(&[
            "plan",
            "stacks/hello",
            "--env",
            "dev",
            "--var-file",
            "extra.toml",
            "--var",
            "label=cli",
        ])
        .expect(0);
    assert!(
        r.stdout.contains("cli") && !r.stdout.contains("from-var-file"),
        "{}",
        r.stdout
    );
    // Without an environment, `${env}` is an error at its string; a typo'd env is refused.
    let r = sb.run(&["validate", "stacks/hello"]).expect(1);
    assert!(
        r.stderr.contains("`${env}` needs an environment") && r.stderr.contains("main.toml:"),
        "{}",
        r.stderr
    );
    let r = sb.run(&["validate", "stacks/hello", "--env", "prd"]).expect(1);
    assert!(r.stderr.contains("env/prd.toml"), "{}", r.stderr);
    sb.write("bad.toml", "size = \"big\"\n");
    let r = sb
        .run(&["validate", "stacks/hello", "--env", "dev", "--var-file", "bad.toml"])
        .expect(1);
    assert!(r.stderr.contains("wrong type"), "{}", r.stderr);
}

#[test]
fn the_state_is_found_from_the_stack_not_the_working_directory_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("stacks/net/main.toml", NET);
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    let from_root = sb.run(&["plan", "stacks/net"]).expect(0);
    assert!(from_root.stdout.contains("No changes"), "{}", from_root.stdout);
    let inside = sb
        .command(&["plan", "."])
        .current_dir(sb.path("stacks/net"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&inside.stdout);
    assert_eq!(
        inside.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    assert_eq!(
        stdout, from_root.stdout,
        "the same plan from inside the stack directory"
    );
    assert!(!sb.exists("stacks/net/state"), "no second state next to the stack");
    // A saved plan applies from another directory: it records the state's absolute location.
    sb.run(&["plan", "stacks/net", "--out", "net.plan"]).expect(0);
    let saved = sb
        .command(&["apply", "../../net.plan"])
        .current_dir(sb.path("stacks/net"))
        .output()
        .unwrap();
    assert_eq!(
        saved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
}
