//! DNS-validated TLS against the moto AWS emulator, through the built binary
//! and the real aws-sdk clients. moto_server.py issues a certificate only when
//! Route53 holds its validation CNAMEs (moto alone issues every one): these
//! tests show that slipway never records a pending certificate as done, never
//! puts it on a listener, and finishes the job once the records exist.

use crate::support;

use support::moto::Moto;
use support::Sandbox;

fn stack(validation: &str) -> String {
    format!(
        r#"
[stack]
name = "tls"
region = "us-east-1"

[vpc.main]
cidr = "10.0.0.0/16"

[subnet.a]
vpc = "${{vpc.main.id}}"
cidr = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc = "${{vpc.main.id}}"
cidr = "10.0.2.0/24"
availability_zone = "us-east-1b"

[security_group.alb]
vpc = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", port = 443, cidr = "10.0.0.0/16" }}]

[alb.inside]
scheme = "internal"
subnets = ["${{subnet.a.id}}", "${{subnet.b.id}}"]
security_groups = ["${{security_group.alb.id}}"]

[alb_target_group.web]
vpc = "${{vpc.main.id}}"
port = 30080

[acm_certificate.site]
domain = "app.example.com"
timeouts = {{ create = "8s" }}
{validation}

[alb_listener.https]
alb = "${{alb.inside.arn}}"
port = 443
protocol = "HTTPS"
certificate = "${{acm_certificate.site.arn}}"
forward_to = "${{alb_target_group.web.arn}}"
"#
    )
}

fn listeners(moto: &Moto) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&moto.sdk_config().await);
        let mut n = 0;
        for lb in elb.describe_load_balancers().send().await.unwrap().load_balancers() {
            let l = elb
                .describe_listeners()
                .load_balancer_arn(lb.load_balancer_arn().unwrap())
                .send()
                .await
                .unwrap();
            n += l.listeners().len();
        }
        n
    })
}

#[test]
fn a_certificate_without_its_dns_records_is_never_done_and_validation_through_a_zone_finishes_it_against_moto_emulator()
{
    let moto = Moto::start();
    moto.hosted_zone("example.com");
    let sb = Sandbox::with_moto(&moto);

    // No zone: slipway names the records to create, waits, and gives up at
    // the time limit. The certificate is not done and the listener never made.
    sb.write("tls/main.toml", &stack(""));
    let a = sb.run(&["apply", "tls", "--auto-approve"]).expect(1);
    let out = format!("{}{}", a.stdout, a.stderr);
    assert!(out.contains("acm_certificate.site"), "{out}");
    assert!(
        out.contains("last status: PENDING_VALIDATION; create these DNS records: _"),
        "the records to create: {out}"
    );
    assert!(out.contains("alb_listener.https"), "the listener is not started: {out}");
    assert_eq!(listeners(&moto), 0, "no listener on a pending certificate");

    // The next plan finds the certificate (by its tags) and shows it pending, not in sync.
    let p = sb.run(&["plan", "tls", "--detailed-exitcode"]).expect(2);
    assert!(
        p.stdout
            .contains("acm_certificate.site is not ready (certificate PENDING_VALIDATION): apply waits for it"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("alb_listener.https will be created"), "{}", p.stdout);
    let d = sb.run(&["drift", "tls"]).expect(2);
    assert!(
        d.stdout
            .contains("acm_certificate.site (not ready: certificate PENDING_VALIDATION)"),
        "{}",
        d.stdout
    );

    // With the zone, the same certificate is validated in place (no new one), then the listener made.
    sb.write(
        "tls/main.toml",
        &stack("validation_zone = \"${route53_zone.main.id}\"\n\n[route53_zone.main]\nname = \"example.com\"\n"),
    );
    let a = sb.run(&["apply", "tls", "--auto-approve"]).expect(0);
    assert!(
        a.stdout
            .contains("Apply complete! Resources: 2 added, 1 changed, 0 destroyed."),
        "zone lookup + listener added, certificate validated: {}",
        a.stdout
    );
    assert_eq!(listeners(&moto), 1);
    let p = sb.run(&["plan", "tls", "--detailed-exitcode"]).expect(0);
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);

    // The zone is looked up, never owned: destroy leaves it (and the validation records).
    sb.run(&["destroy", "tls", "--auto-approve"]).expect(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conf = moto.sdk_config().await;
        let r53 = aws_sdk_route53::Client::new(&conf);
        assert_eq!(r53.list_hosted_zones().send().await.unwrap().hosted_zones().len(), 1);
        let acm = aws_sdk_acm::Client::new(&conf);
        assert!(acm
            .list_certificates()
            .send()
            .await
            .unwrap()
            .certificate_summary_list()
            .is_empty());
    });
}

#[test]
fn a_zone_the_account_lacks_and_a_record_slipway_did_not_write_are_refused_against_moto_emulator() {
    let moto = Moto::start();
    let zone = moto.hosted_zone("example.com");
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "dns/main.toml",
        "[stack]\nname = \"dns\"\nregion = \"us-east-1\"\n\n[route53_zone.main]\nname = \"example.org\"\n",
    );
    // The plan already says so: nothing is applied halfway.
    let a = sb.run(&["plan", "dns"]).expect(1);
    assert!(
        a.stderr.contains("no public hosted zone named example.org"),
        "{}{}",
        a.stdout,
        a.stderr
    );

    // Someone's record, by hand: slipway will not overwrite it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
        let r53 = aws_sdk_route53::Client::new(&moto.sdk_config().await);
        let set = ResourceRecordSet::builder()
            .name("www.example.com")
            .r#type(RrType::A)
            .ttl(60)
            .resource_records(ResourceRecord::builder().value("192.0.2.10").build().unwrap())
            .build()
            .unwrap();
        let change = Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(set)
            .build()
            .unwrap();
        r53.change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .unwrap();
    });
    sb.write(
        "dns/main.toml",
        "[stack]\nname = \"dns\"\nregion = \"us-east-1\"\n\n[route53_zone.main]\nname = \"example.com\"\n\n\
         [route53_record.www]\nzone = \"${route53_zone.main.id}\"\nname = \"www.example.com\"\ntype = \"A\"\nrecords = [\"192.0.2.99\"]\n\n\
         [route53_record.api]\nzone = \"${route53_zone.main.id}\"\nname = \"api.example.com\"\ntype = \"A\"\nrecords = [\"192.0.2.7\"]\n",
    );
    let a = sb.run(&["apply", "dns", "--auto-approve"]).expect(1);
    let out = format!("{}{}", a.stdout, a.stderr);
    assert!(
        out.contains("already has a A record www.example.com that this state did not write"),
        "{out}"
    );
    // The other record is made; a re-plan only still wants the refused one.
    let p = sb.run(&["plan", "dns"]).expect(0);
    assert!(
        p.stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    sb.write(
        "dns/main.toml",
        "[stack]\nname = \"dns\"\nregion = \"us-east-1\"\n\n[route53_zone.main]\nname = \"example.com\"\n\n\
         [route53_record.api]\nzone = \"${route53_zone.main.id}\"\nname = \"api.example.com\"\ntype = \"A\"\nrecords = [\"192.0.2.7\"]\n",
    );
    sb.run(&["destroy", "dns", "--auto-approve"]).expect(0);
    rt.block_on(async {
        let r53 = aws_sdk_route53::Client::new(&moto.sdk_config().await);
        let sets = r53
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = sets.resource_record_sets().iter().map(|s| s.name()).collect();
        assert!(
            names.iter().any(|n| n.starts_with("www.example.com")),
            "the hand-made record stays: {names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("api.example.com")),
            "slipway's record is deleted: {names:?}"
        );
    });
}
