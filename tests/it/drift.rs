//! `slipway drift`, the GitLab report and the example pipeline. Drift runs
//! against the moto AWS emulator and our Kubernetes API emulator.

use crate::support;

use serde_json::{json, Value};
use support::k8s::K8sEmulator;
use support::moto::Moto;
use support::Sandbox;

fn blog(sb: &Sandbox) -> String {
    sb.example("blog")
}

#[test]
fn drift_finds_every_category_and_nothing_on_a_fresh_stack_against_moto_and_the_emulator() {
    use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Tag};
    let moto = Moto::start();
    moto.blog_prerequisites();
    let emu = K8sEmulator::start();
    let sb = Sandbox::for_blog(&moto, &emu);
    let _controller = emu.controller();
    sb.run(&["apply", &blog(&sb), "--auto-approve"]).expect(0);

    let r = sb.run(&["drift", &blog(&sb)]).expect(0);
    assert!(r.stdout.contains("In sync."), "{}", r.stdout);
    assert!(!sb.exists("state/blog.json.lock"), "drift takes no lock");

    let st = sb.state("blog");
    let id = |a: &str| st["resources"][a]["id"].as_str().unwrap().to_string();
    let ng = st["resources"]["eks_nodegroup.main"]["attributes"]["nodegroup_name"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conf = moto.sdk_config().await.into_builder();
        conf.set_region(Some(aws_config::Region::new("us-west-2")));
        let conf = conf.build();
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        ec2.create_tags()
            .resources(id("subnet.public[\"us-west-2a\"]"))
            .tags(Tag::builder().key("kubernetes.io/role/elb").value("0").build())
            .send()
            .await
            .unwrap();
        ec2.authorize_security_group_ingress()
            .group_id(id("security_group.alb"))
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
        let t = ec2
            .describe_route_tables()
            .route_table_ids(id("route_table.private"))
            .send()
            .await
            .unwrap();
        for a in t.route_tables()[0].associations() {
            ec2.disassociate_route_table()
                .association_id(a.route_table_association_id().unwrap())
                .send()
                .await
                .unwrap();
        }
        ec2.delete_route_table()
            .route_table_id(id("route_table.private"))
            .send()
            .await
            .unwrap();
        let _ = Filter::builder().build();
        let iam = aws_sdk_iam::Client::new(&conf);
        iam.detach_role_policy()
            .role_name(id("iam_role.nodes"))
            .policy_arn("arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy")
            .send()
            .await
            .unwrap();
        // The nodegroup is autoscaled in the blog stack: scaling it is the autoscaler's job, not drift.
        let eks = aws_sdk_eks::Client::new(&conf);
        eks.update_nodegroup_config()
            .cluster_name("blog")
            .nodegroup_name(&ng)
            .scaling_config(
                aws_sdk_eks::types::NodegroupScalingConfig::builder()
                    .min_size(2)
                    .max_size(4)
                    .desired_size(4)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    emu.patch(
        "/apis/apps/v1/namespaces/default/deployments/app-a",
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app-a", "image": "registry.gitlab.com/blog/app-a:hotfix"}]}}}}),
    );
    assert_eq!(emu.delete("/api/v1/namespaces/default/services/app-b"), 200);
    use base64::Engine;
    let edited = base64::engine::general_purpose::STANDARD.encode(
        json!({"auths": {"registry.gitlab.com": {"username": "gitlab-deploy-token", "password": "someone-else"}}})
            .to_string(),
    );
    emu.patch(
        "/api/v1/namespaces/default/secrets/docker-login",
        "application/merge-patch+json",
        json!({"data": {".dockerconfigjson": edited}}),
    );

    let r = sb.run(&["drift", &blog(&sb), "--json"]).expect(2);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["in_sync"], false);
    let find = |a: &str| {
        doc["drift"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["address"] == a)
            .cloned()
    };
    let field_of = |a: &str, f: &str| {
        let d = find(a).unwrap_or_else(|| panic!("{a} not reported: {}", r.stdout));
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["field"].as_str().unwrap().starts_with(f))
            .cloned()
    };
    assert_eq!(find("route_table.private").unwrap()["status"], "deleted");
    assert_eq!(find("subnet.public[\"us-west-2a\"]").unwrap()["status"], "modified");
    let tag = field_of("subnet.public[\"us-west-2a\"]", "tags").unwrap();
    assert_eq!(
        (tag["state"].clone(), tag["live"].clone()),
        (json!("1"), json!("0")),
        "{tag}"
    );
    assert!(field_of("security_group.alb", "ingress").is_some());
    let pol = field_of("iam_role.nodes", "managed_policy_arns").unwrap();
    assert!(pol.to_string().contains("AmazonEKS_CNI_Policy"), "{pol}");
    let img = field_of(
        "module.app_a.app.this",
        "manifests[0].spec.template.spec.containers[0].image",
    )
    .unwrap();
    assert_eq!(img["live"], "registry.gitlab.com/blog/app-a:hotfix");
    assert!(find("module.app_b.app.this").is_some(), "the deleted Service shows");
    let secret = field_of("registry_secret.docker_login", "password_hash").unwrap();
    assert_ne!(secret["state"], secret["live"]);
    assert!(
        !r.stdout.contains("someone-else") && !r.stdout.contains("blog-registry-token"),
        "no secret in the report"
    );
    assert!(
        find("eks_nodegroup.main").is_none(),
        "an autoscaled nodegroup's desired size is not drift"
    );

    let h = sb.run(&["drift", &blog(&sb)]).expect(2);
    assert!(
        h.stdout.contains("route_table.private [route_table]: DELETED"),
        "{}",
        h.stdout
    );
    assert!(
        h.stdout.contains("module.app_a.app.this [app]: MODIFIED"),
        "{}",
        h.stdout
    );
    assert!(h.stdout.contains("Drifted."), "{}", h.stdout);
}

#[test]
fn the_gitlab_report_counts_a_replacement_as_one_create_and_one_delete() {
    let sb = Sandbox::new();
    sb.write("stacks/g/main.toml", "[data.keep]\ninput = 1\n\n[data.change]\ninput = 1\n\n[data.swap]\ninput = 1\nreplace_on_change = 1\n\n[data.gone]\ninput = 1\n");
    sb.run(&["apply", "stacks/g", "--auto-approve"]).expect(0);
    sb.write("stacks/g/main.toml", "[data.keep]\ninput = 1\n\n[data.change]\ninput = 2\n\n[data.swap]\ninput = 1\nreplace_on_change = 2\n\n[data.new]\ninput = 1\n");
    sb.run(&["plan", "stacks/g", "--gitlab-report", "report.json"])
        .expect(0);
    let report: Value = serde_json::from_str(&sb.read("report.json")).unwrap();
    assert_eq!(report, json!({"create": 2, "update": 1, "delete": 2}));
}

#[test]
fn the_example_pipeline_parses_and_uses_only_real_commands_and_flags() {
    let path = crate::support::repo().join("examples/gitlab-ci.yml");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(&path)
        .output()
        .expect("python3 with PyYAML (installed with moto)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stages"], json!(["image", "validate", "plan", "apply", "drift"]));
    // The image the jobs run in is built from the repository's Dockerfile.
    let image = doc["slipway-image"]["script"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(image.contains("--dockerfile \"$CI_PROJECT_DIR/Dockerfile\""), "{image}");
    let dockerfile = std::fs::read_to_string(crate::support::repo().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("USER 10001") && dockerfile.contains("ca-certificates"),
        "{dockerfile}"
    );
    assert_eq!(
        doc["default"]["id_tokens"]["AWS_ID_TOKEN"]["aud"], "sts.amazonaws.com",
        "OIDC, not pasted keys"
    );
    assert_eq!(doc["plan"]["artifacts"]["public"], false);
    assert_eq!(doc["plan"]["artifacts"]["reports"]["terraform"], "plan.json");
    let sb = Sandbox::new();
    let mut checked = 0;
    for job in ["validate", "plan", "apply", "drift"] {
        for line in doc[job]["script"].as_array().unwrap().iter().filter_map(Value::as_str) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(i) = words.iter().position(|w| *w == "slipway") else {
                continue;
            };
            let sub = words[i + 1];
            let help = sb.run(&[sub, "--help"]).expect(0).stdout;
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                assert!(help.contains(flag), "`slipway {sub}` has no {flag}:\n{help}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "the pipeline's flags were checked ({checked})");
    // The operator, not the stack, sets the S3 state; CI=true locks it, so a
    // merge request's [stack.backend] is refused before anything is read.
    let vars = &doc["variables"];
    assert_eq!(
        vars["SLIPWAY_BACKEND_BUCKET"], "$SLIPWAY_STATE_BUCKET",
        "the pipeline keeps state on S3"
    );
    assert!(vars["SLIPWAY_BACKEND_KEY"]
        .as_str()
        .is_some_and(|k| k.ends_with(".json")));
    sb.write(
        "stacks/ci/main.toml",
        "[stack]\nname = \"ci\"\n[stack.backend]\ntype = \"s3\"\nbucket = \"attacker\"\n\n[data.a]\ninput = \"1\"\n",
    );
    let r = sb
        .command(&["plan", "stacks/ci"])
        .env("CI", "true")
        .env("SLIPWAY_BACKEND_BUCKET", "team-state")
        .env("SLIPWAY_BACKEND_KEY", vars["SLIPWAY_BACKEND_KEY"].as_str().unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("s3://attacker/ci.json") && err.contains("s3://team-state/"),
        "{err}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("AWS_SECRET_ACCESS_KEY") && !text.contains("KUBECONFIG"),
        "no pasted keys or kubeconfigs"
    );
}
