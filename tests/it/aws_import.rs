//! `slipway import ADDR ID` and protection, against the moto AWS emulator.

use crate::support;

use support::moto::Moto;
use support::Sandbox;

fn stack(cidr: &str, protect: &str) -> String {
    format!(
        "[stack]\nname = \"imp\"\nregion = \"us-east-1\"\n\n[vpc.main]\ncidr = \"{cidr}\"\ntags = {{ team = \"web\" }}\n{protect}\n\n[iam_role.app]\nname = \"legacy-app\"\nassume_role_policy = {{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Principal = {{ Service = \"ec2.amazonaws.com\" }}, Action = \"sts:AssumeRole\" }}] }}\n"
    )
}

#[test]
fn imported_objects_plan_clean_and_are_protected_until_the_stack_says_otherwise_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Objects made by hand, before slipway.
    let vpc = rt.block_on(async {
        let ec2 = moto.ec2().await;
        let v = ec2
            .create_vpc()
            .cidr_block("10.7.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("web").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        moto.iam()
            .await
            .create_role()
            .role_name("legacy-app")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
            .send()
            .await
            .unwrap();
        v.vpc().unwrap().vpc_id().unwrap().to_string()
    });
    sb.write("stacks/i/main.toml", &stack("10.7.0.0/16", ""));

    let r = sb.run(&["import", "stacks/i", "vpc.mian", &vpc]).expect(1);
    assert!(
        r.stderr.contains("`vpc.mian` is not declared") && r.stderr.contains("Did you mean `vpc.main`?"),
        "{}",
        r.stderr
    );
    let r = sb
        .run(&["import", "stacks/i", "vpc.main", "vpc-00000000000000000"])
        .expect(1);
    assert!(
        r.stderr.contains("no vpc with ID vpc-00000000000000000 was found"),
        "{}",
        r.stderr
    );
    assert!(!sb.exists("state/imp.json"), "nothing written on a failed import");

    let r = sb.run(&["import", "stacks/i", "vpc.main", &vpc]).expect(0);
    assert!(
        r.stdout.contains("The cloud was not changed") && r.stdout.contains("It is protected"),
        "{}",
        r.stdout
    );
    sb.run(&["import", "stacks/i", "iam_role.app", "legacy-app"]).expect(0);
    let r = sb.run(&["import", "stacks/i", "vpc.main", &vpc]).expect(1);
    assert!(r.stderr.contains("already in the state"), "{}", r.stderr);
    let st = sb.state("imp");
    assert_eq!(st["resources"]["vpc.main"]["protect"], true);
    assert_eq!(
        st["resources"]["iam_role.app"]["attributes"]["arn"],
        "arn:aws:iam::123456789012:role/legacy-app"
    );

    // Only real differences show: none here.
    sb.run(&["plan", "stacks/i", "--detailed-exitcode"]).expect(0);

    // A replacement and a destroy are refused while protected.
    sb.write("stacks/i/main.toml", &stack("10.8.0.0/16", ""));
    let r = sb.run(&["plan", "stacks/i"]).expect(1);
    assert!(
        r.stderr.contains("stacks/i/main.toml:5:6")
            && r.stderr
                .contains("vpc.main is protected, and this plan would replace it (`cidr` forces replacement)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("set `protect = false` in [vpc.main]"), "{}", r.stderr);
    sb.write("stacks/i/main.toml", &stack("10.7.0.0/16", ""));
    let r = sb.run(&["destroy", "stacks/i", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("is protected, and this plan would delete it"),
        "{}",
        r.stderr
    );

    // Saying so in the stack allows it.
    sb.write("stacks/i/main.toml", &stack("10.8.0.0/16", "protect = false"));
    let p = sb.run(&["plan", "stacks/i"]).expect(0);
    assert!(p.stdout.contains("# vpc.main must be replaced"), "{}", p.stdout);
}
