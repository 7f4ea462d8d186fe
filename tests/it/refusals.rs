//! What AWS or Kubernetes would refuse halfway through an apply is refused
//! by `plan` before any call: one case per constraint, each a stack that
//! must exit 1 (not 2, not a panic) with the file, line and column of the
//! offending value and the limit in the message, and no state written.
//! No cloud is reachable here (AWS points at a closed loopback port, the
//! kubeconfig is empty): a check that needed a call would fail differently.

use crate::support;

use support::Sandbox;

const APP: &str = r#"namespace = "default"
image = "nginx:1.27"
port = 8080
cpu_request = "100m"
memory_request = "128Mi"
cpu_limit = "500m"
memory_limit = "256Mi"
health_path = "/healthz"
"#;

const NG: &str =
    "[eks_nodegroup.n]\ncluster = \"c\"\nnode_role = \"arn:aws:iam::123456789012:role/n\"\nsubnets = [\"subnet-1\"]\n";

const LISTENER: &str = "[alb_listener.l]\nalb = \"arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/a/1\"\nforward_to = \"arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/t/1\"\n";

const TRUST: &str = r#"{ Version = "2012-10-17", Statement = [{ Effect = "Allow", Principal = { Service = "eks.amazonaws.com" }, Action = "sts:AssumeRole" }] }"#;

/// (case, the stack after its [stack] table, text that starts the line of
/// the bad value, what the message must say).
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let app =
        |extra: &str, from: &str, to: &str| format!("[app.web]\nname = \"web\"\n{}{extra}", APP.replace(from, to));
    vec![
        (
            "ALB name over 32 characters",
            "[alb.a]\nname = \"this-name-is-way-too-long-for-an-alb\"\nsubnets = [\"subnet-1\", \"subnet-2\"]\n".into(),
            "name = \"this-name",
            "1 to 32",
        ),
        (
            "target group name over 32 characters",
            "[alb_target_group.a]\nname = \"this-name-is-way-too-long-for-a-target-group\"\nvpc = \"vpc-1\"\nport = 80\n".into(),
            "name = \"this-name",
            "1 to 32",
        ),
        (
            "IAM role name over 64 characters",
            format!("[iam_role.a]\nname = \"{}\"\nassume_role_policy = {TRUST}\n", "r".repeat(65)),
            "name = \"rrr",
            "1 to 64",
        ),
        (
            "Kubernetes name not DNS-1123",
            "[k8s_namespace.a]\nname = \"App_A\"\n".into(),
            "name = \"App_A",
            "not a DNS-1123 label",
        ),
        (
            "app name not DNS-1123",
            app("", "", "").replace("name = \"web\"", "name = \"App_A\""),
            "name = \"App_A",
            "try \"app-a\"",
        ),
        ("quantity that is not one", app("", "\"100m\"", "\"lots\""), "cpu_request", "not a Kubernetes quantity"),
        ("request above its limit", app("", "cpu_request = \"100m\"", "cpu_request = \"2\""), "cpu_request", "above its limit 500m"),
        (
            "NodePort outside the range",
            app("expose = \"nodeport\"\nnode_port = 40000\n", "", ""),
            "node_port",
            "30000-32767",
        ),
        (
            "autoscaler min above max",
            app("autoscale = { min = 5, max = 2 }\n", "", ""),
            "autoscale",
            "minReplicas 5 is above maxReplicas 2",
        ),
        ("health path that is not a path", app("", "\"/healthz\"", "\"healthz\""), "health_path", "must start with `/`"),
        (
            "label value a label cannot hold",
            "[k8s_namespace.a]\nname = \"team\"\nlabels = { team = \"web team!\" }\n".into(),
            "labels",
            "a label value is at most 63",
        ),
        (
            "NodePort in a manifest",
            "[k8s_manifest.s]\nmanifest = { apiVersion = \"v1\", kind = \"Service\", metadata = { name = \"s\", namespace = \"default\" }, spec = { type = \"NodePort\", ports = [{ port = 80, nodePort = 40000 }] } }\n".into(),
            "manifest =",
            "outside the cluster's NodePort range",
        ),
        (
            "policy document without Statement",
            "[iam_role.a]\nassume_role_policy = { Version = \"2012-10-17\" }\n".into(),
            "assume_role_policy",
            "needs `Statement`",
        ),
        (
            "permission policy with a Principal",
            format!("[iam_role.a]\nassume_role_policy = {TRUST}\ninline_policies = {{ p = {{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Principal = \"*\", Action = \"s3:GetObject\", Resource = \"*\" }}] }} }}\n"),
            "inline_policies",
            "a permission policy has no `Principal`",
        ),
        (
            "Effect that is neither Allow nor Deny",
            "[iam_role.a]\nassume_role_policy = { Version = \"2012-10-17\", Statement = [{ Effect = \"Permit\", Principal = { Service = \"eks.amazonaws.com\" }, Action = \"sts:AssumeRole\" }] }\n".into(),
            "assume_role_policy",
            "must be \"Allow\" or \"Deny\"",
        ),
        (
            "registry password variable not set",
            "[registry_secret.r]\nname = \"r\"\nnamespaces = [\"default\"]\nregistry = \"r.example.com\"\nusername = \"u\"\npassword_env = \"SLIPWAY_SECRET_NOT_SET_HERE\"\n".into(),
            "password_env",
            "SLIPWAY_SECRET_NOT_SET_HERE (password_env) is not set",
        ),
        (
            "certificate key file missing",
            "[acm_certificate.c]\ncertificate_file = \"cert.pem\"\nprivate_key_file = \"missing-key.pem\"\n".into(),
            "private_key_file",
            "private_key_file",
        ),
        (
            "CIDR from a variable",
            "[variables]\ncidr = \"10.300.0.0/16\"\n\n[vpc.a]\ncidr = \"${var.cidr}\"\n".into(),
            "cidr = \"${var",
            "10.300.0.0/16",
        ),
        (
            "subnet block from a function too small",
            "[vpc.a]\ncidr = \"10.0.0.0/16\"\n\n[subnet.a]\nvpc = \"${vpc.a.id}\"\ncidr = '${cidrsubnet(\"10.0.0.0/16\", 14, 1)}'\navailability_zone = \"us-west-2a\"\n".into(),
            "cidr = '${cidrsubnet",
            "between /16 and /28",
        ),
        (
            "a reference written without ${}",
            "[vpc.a]\ncidr = \"10.0.0.0/16\"\n\n[subnet.a]\nvpc = \"vpc.a.id\"\ncidr = \"10.0.1.0/24\"\navailability_zone = \"us-west-2a\"\n".into(),
            "vpc = \"vpc.a.id",
            "write \"${vpc.a.id}\"",
        ),
        (
            "reserved tag prefix",
            "[vpc.a]\ncidr = \"10.0.0.0/16\"\ntags = { \"aws:team\" = \"x\" }\n".into(),
            "tags =",
            "reserved",
        ),
        (
            "availability zone of another region",
            "[vpc.a]\ncidr = \"10.0.0.0/16\"\n\n[subnet.a]\nvpc = \"${vpc.a.id}\"\ncidr = \"10.0.1.0/24\"\navailability_zone = \"eu-west-1a\"\n".into(),
            "availability_zone",
            "not in the stack's region",
        ),
        (
            "EKS version EKS does not run",
            "[eks_cluster.c]\nversion = \"1.7\"\nrole = \"arn:aws:iam::123456789012:role/r\"\nsubnets = [\"subnet-1\", \"subnet-2\"]\n".into(),
            "version",
            "not a version EKS creates",
        ),
        (
            "EKS log type",
            "[eks_cluster.c]\nversion = \"1.31\"\nrole = \"arn:aws:iam::123456789012:role/r\"\nsubnets = [\"subnet-1\", \"subnet-2\"]\nlogging = [\"bogus\"]\n".into(),
            "logging",
            "unknown log type",
        ),
        (
            "nodegroup min above desired",
            format!("{NG}scaling = {{ min = 3, max = 2, desired = 2 }}\n"),
            "scaling",
            "min <= desired <= max",
        ),
        (
            "capacity type",
            format!("{NG}scaling = {{ min = 1, max = 2, desired = 1 }}\ncapacity_type = \"CHEAP\"\n"),
            "capacity_type",
            "ON_DEMAND or SPOT",
        ),
        (
            "taint effect",
            format!("{NG}scaling = {{ min = 1, max = 2, desired = 1 }}\ntaints = [{{ key = \"a\", value = \"b\", effect = \"Sometimes\" }}]\n"),
            "taints",
            "unknown taint effect",
        ),
        (
            "ALB scheme",
            "[alb.a]\nsubnets = [\"subnet-1\", \"subnet-2\"]\nscheme = \"public\"\n".into(),
            "scheme",
            "internet-facing or internal",
        ),
        (
            "listener protocol",
            format!("{LISTENER}port = 21\nprotocol = \"FTP\"\n"),
            "protocol",
            "HTTPS or HTTP",
        ),
        (
            "listener port",
            format!("{LISTENER}port = 70000\nprotocol = \"HTTP\"\n"),
            "port",
            "port 70000 must be 1-65535",
        ),
        (
            "security group port",
            "[security_group.s]\nvpc = \"vpc-1\"\ndescription = \"x\"\ningress = [{ protocol = \"tcp\", port = 70000, cidr = \"0.0.0.0/0\" }]\n".into(),
            "ingress",
            "0-65535",
        ),
        (
            "availability zone of another region, from for_each",
            "[vpc.a]\ncidr = \"10.0.0.0/16\"\n\n[subnet.a]\nfor_each = { \"eu-west-1a\" = 1 }\nvpc = \"${vpc.a.id}\"\ncidr = '${cidrsubnet(\"10.0.0.0/16\", 8, each.value)}'\navailability_zone = \"${each.key}\"\n".into(),
            "availability_zone",
            "not in the stack's region",
        ),
        ("port out of range", app("", "port = 8080", "port = 70000"), "port = 70000", "70000"),
    ]
}

#[test]
fn every_constraint_aws_or_kubernetes_enforces_is_refused_at_plan_with_its_place_and_nothing_written() {
    let sb = Sandbox::new();
    sb.write("kubeconfig.yaml", "");
    sb.write("cert.pem", "-----BEGIN CERTIFICATE-----\n");
    let mut failures = Vec::new();
    for (case, body, needle, want) in cases() {
        let stack = format!(
            "[stack]\nname = \"t\"\nregion = \"us-west-2\"\n\n[kubernetes]\nkubeconfig = \"kubeconfig.yaml\"\n\n{body}"
        );
        let line = 1 + stack
            .lines()
            .skip(7)
            .position(|l| l.starts_with(needle))
            .map(|i| i + 7)
            .unwrap_or_else(|| panic!("{case}: no line starts with {needle:?}"));
        sb.write("stacks/t/main.toml", &stack);
        let mut cmd = sb.command(&["plan", "stacks/t"]);
        cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "x");
        let out = cmd.output().expect("run slipway");
        let (code, stderr) = (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned());
        let place = format!("main.toml:{line}:");
        if code != Some(1) || !stderr.contains(&place) || !stderr.contains(want) || stderr.contains("panicked") {
            failures.push(format!(
                "{case}: exit {code:?}, want 1 with {place} and {want:?}:\n{stderr}\n--- stack\n{stack}"
            ));
        }
        if sb.path("state/t.json").exists() {
            failures.push(format!("{case}: a state file was written"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_region_that_does_not_exist_is_refused_where_it_is_written() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/t/main.toml",
        "[stack]\nname = \"t\"\nregion = \"us-fake-9\"\n\n[vpc.a]\ncidr = \"10.0.0.0/16\"\n",
    );
    let v = sb.run(&["plan", "stacks/t"]).expect(1);
    assert!(v.stderr.contains("main.toml:3:10"), "{}", v.stderr);
    assert!(v.stderr.contains("not an AWS region name"), "{}", v.stderr);
}

#[test]
fn a_mistyped_flag_exits_1_never_2_which_means_changes_or_drift() {
    let sb = Sandbox::new();
    for args in [
        &["plan", "--detailed-exitcod", "x"][..],
        &["drift", "--nope"],
        &["apply", "--parallelism", "many", "x"],
    ] {
        let r = sb.run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("error:"), "{}", r.stderr);
    }
    assert_eq!(sb.run(&["--help"]).code, 0);
}

#[test]
fn an_apply_of_a_saved_plan_stops_before_any_call_when_a_secret_went_missing() {
    let sb = Sandbox::new();
    sb.write("kubeconfig.yaml", "");
    sb.write(
        "stacks/t/main.toml",
        "[stack]\nname = \"t\"\n\n[kubernetes]\nkubeconfig = \"kubeconfig.yaml\"\n\n[registry_secret.r]\nname = \"r\"\nnamespaces = [\"default\"]\nregistry = \"r.example.com\"\nusername = \"u\"\npassword_env = \"SLIPWAY_SECRET_PW\"\n",
    );
    let mut plan = sb.command(&["plan", "stacks/t", "--out", "t.plan"]);
    plan.env("SLIPWAY_SECRET_PW", "s3cret");
    let out = plan.output().unwrap();
    if out.status.code() != Some(0) {
        // A plan that must read the (empty) cluster first cannot be made
        // here; the plan-time check above covers the same refusal.
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        return;
    }
    let a = sb.run(&["apply", "t.plan"]);
    assert_eq!(a.code, 1, "{}", a.stderr);
    assert!(
        a.stderr
            .contains("SLIPWAY_SECRET_PW (password_env) is not set; nothing was applied"),
        "{}",
        a.stderr
    );
    assert!(!sb.path("state/t.json").exists());
}
