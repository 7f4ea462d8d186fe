//! Least privilege, proved with moto's IAM authorization switched on: runs
//! made as an IAM user whose only policy is what `slipway iam-policy` printed.
//! moto judges a statement by its actions only (tests/support/moto_server.py
//! says why), so these tests prove the policies name every action a run
//! calls, not that their ARNs and tag conditions would match on AWS; the
//! unit tests of `providers::aws::permissions` check the conditions' shape.

use crate::support;

use serde_json::Value;
use support::k8s::K8sEmulator;
use support::moto::Moto;
use support::Sandbox;

const VARS: [&str; 2] = ["--var", "image_tag=main-1a2b3c4"];

fn run_as(sb: &mut Sandbox, key: &(String, String), args: &[&str]) -> support::Run {
    sb.env
        .retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
    sb.env.push(("AWS_ACCESS_KEY_ID".into(), key.0.clone()));
    sb.env.push(("AWS_SECRET_ACCESS_KEY".into(), key.1.clone()));
    let mut all: Vec<&str> = args.to_vec();
    all.extend(VARS);
    sb.run(&all)
}

fn actions(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// What the stack made that is still there, read as an administrator.
fn tagged_leftovers(moto: &Moto, admin: &(String, String)) -> (usize, usize, bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conf = moto.sdk_config_as(admin).await.into_builder();
        conf.set_region(Some(aws_config::Region::new("us-west-2")));
        let conf = conf.build();
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let tag = aws_sdk_ec2::types::Filter::builder()
            .name("tag:slipway:stack")
            .values("blog")
            .build();
        let vpcs = ec2.describe_vpcs().filters(tag.clone()).send().await.unwrap();
        let sgs = ec2.describe_security_groups().filters(tag).send().await.unwrap();
        let role = aws_sdk_iam::Client::new(&conf)
            .get_role()
            .role_name("blog-cluster")
            .send()
            .await
            .is_ok();
        (vpcs.vpcs().len(), sgs.security_groups().len(), role)
    })
}

#[test]
fn the_printed_policies_are_enough_for_plan_drift_apply_and_destroy_and_the_plan_policy_stops_an_apply_against_moto_iam_authorization(
) {
    let moto = Moto::start();
    moto.blog_prerequisites();
    let emu = K8sEmulator::start();
    let mut sb = Sandbox::for_blog(&moto, &emu);
    let stack = sb.example("blog");
    let stack = stack.as_str();
    let _controller = emu.controller();

    let read = sb.run(&["iam-policy", stack, "--plan"]).expect(0);
    let read: Value = serde_json::from_str(&read.stdout).expect("the plan policy is JSON");
    let full = sb.run(&["iam-policy", stack]).expect(0);
    let full: Value = serde_json::from_str(&full.stdout).expect("the apply policy is JSON");
    for a in actions(&read) {
        let op = a.split(':').nth(1).unwrap_or_default();
        assert!(
            ["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)),
            "the plan policy only reads: {a}"
        );
    }
    assert!(
        !actions(&read).contains(&"iam:GetAccountAuthorizationDetails".to_string()),
        "refresh reads the stack's roles one by one instead"
    );
    let conditions = full.to_string();
    assert!(
        conditions.contains("aws:RequestTag/slipway:stack") && conditions.contains("aws:ResourceTag/slipway:stack")
    );

    let planner = moto.user_with_policy("planner", &read.to_string());
    let deployer = moto.user_with_policy("deployer", &full.to_string());
    let admin = moto.user_with_policy(
        "admin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    );
    moto.enforce_iam();

    // A merge request's plan, as the read-only role.
    let p = run_as(&mut sb, &planner, &["plan", stack]).expect(0);
    assert!(p.stdout.contains("32 to add"), "{}", p.stdout);

    // The read-only role cannot apply: the first call is refused, with the
    // action named, and nothing is made or recorded.
    let a = run_as(&mut sb, &planner, &["apply", stack, "--auto-approve"]).expect(1);
    let out = format!("{}{}", a.stdout, a.stderr);
    assert!(out.contains("not authorized to perform"), "{out}");
    assert!(out.contains("the credentials lack the IAM action"), "{out}");
    assert_eq!(tagged_leftovers(&moto, &admin), (0, 0, false), "nothing was made");
    if sb.exists("state/blog.json") {
        // Only the hosted zone it looked up (never owned) is recorded, and
        // no create is left pending: IAM refused them before they acted.
        let st = sb.state("blog");
        let made: Vec<&String> = st["resources"]
            .as_object()
            .map(|r| r.keys().filter(|a| !a.starts_with("route53_zone.")).collect())
            .unwrap_or_default();
        assert!(made.is_empty(), "no resource recorded: {made:?}");
        assert!(
            st["pending"].as_array().is_none_or(|p| p.is_empty()),
            "no intent left pending: {st:#}"
        );
    }

    // The deployer's policy is enough for the whole first apply (the zone
    // lookup the refused apply recorded is the 32nd resource).
    let a = run_as(&mut sb, &deployer, &["apply", stack, "--auto-approve"]).expect(0);
    assert!(
        a.stdout
            .contains("Apply complete! Resources: 31 added, 0 changed, 0 destroyed."),
        "{}\n{}",
        a.stdout,
        a.stderr
    );
    // Plan and drift refresh everything with the read-only policy.
    let p = run_as(&mut sb, &planner, &["plan", stack, "--detailed-exitcode"]).expect(0);
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);
    run_as(&mut sb, &planner, &["drift", stack]).expect(0);
    assert!(
        !run_as(&mut sb, &planner, &["plan", stack])
            .stderr
            .contains("not authorized"),
        "no read of a plan is refused"
    );

    // And the deployer's is enough to destroy it all.
    let d = run_as(&mut sb, &deployer, &["destroy", stack, "--auto-approve"]).expect(0);
    assert!(d.stdout.contains("32 destroyed"), "{}\n{}", d.stdout, d.stderr);
    assert_eq!(tagged_leftovers(&moto, &admin), (0, 0, false), "destroy left nothing");
}

#[test]
fn the_apply_policy_scopes_changes_by_the_stack_tag_and_passes_only_the_stacks_roles() {
    let sb = Sandbox::new();
    let stack = sb.example("blog");
    let out = sb.run(&["iam-policy", &stack, "--account", "111122223333"]).expect(0);
    let p: Value = serde_json::from_str(&out.stdout).unwrap();
    let st = |sid: &str| -> Value {
        p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap_or_else(|| panic!("no {sid}: {p:#}"))
    };
    assert_eq!(
        st("PassOnlyTheStacksRolesToEks")["Resource"],
        serde_json::json!([
            "arn:aws:iam::111122223333:role/blog-cluster",
            "arn:aws:iam::111122223333:role/blog-nodes"
        ])
    );
    let owned = st("ChangeOnlyThisStacksObjects");
    assert_eq!(
        owned["Condition"]["StringEquals"]["aws:ResourceTag/slipway:stack"],
        "blog"
    );
    for a in [
        "ec2:DeleteVpc",
        "eks:DeleteCluster",
        "iam:DeleteRole",
        "elasticloadbalancing:DeleteLoadBalancer",
    ] {
        assert!(
            owned["Action"].as_array().unwrap().contains(&a.into()),
            "{a} only on the stack's objects"
        );
    }
    let create = st("CreateOnlyTaggedForThisStack");
    assert_eq!(
        create["Condition"]["StringEquals"]["aws:RequestTag/slipway:stack"],
        "blog"
    );
    assert!(create["Action"].as_array().unwrap().contains(&"ec2:CreateVpc".into()));
    assert_eq!(
        st("CreateInVpc")["Resource"],
        "arn:aws:ec2:us-west-2:111122223333:vpc/*"
    );

    // --env is part of the tag value, so prod's policy cannot touch dev's objects.
    let dev = sb.run(&["iam-policy", &stack, "--env", "dev"]).expect(0);
    assert!(dev.stdout.contains("\"blog-dev\""), "{}", dev.stdout);
    assert!(dev.stdout.contains("role/blog-dev-cluster"), "{}", dev.stdout);
}
