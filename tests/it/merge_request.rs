//! A merge request changes every file under `stacks/` and CI runs `slipway
//! plan` on it with the project's credentials. Each test is one attack such
//! a merge request could write; none may run a command, read a file outside
//! the repository, read the CI's environment, or send a token anywhere.
//! Kubernetes is our emulator (tests/support/k8s_emulator.py), AWS is moto.

use crate::support;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use serde_json::{json, Value};
use support::k8s::K8sEmulator;
use support::moto::Moto;
use support::Sandbox;

const NS: &str = "[k8s_namespace.web]\nname = \"web\"\n";

fn stack(kubeconfig: &str, extra: &str) -> String {
    format!("[stack]\nname = \"mr\"\n\n[kubernetes]\nkubeconfig = \"{kubeconfig}\"\n\n{NS}{extra}")
}

/// A kubeconfig whose user is `user` (YAML lines, indented four spaces).
fn kubeconfig(server: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  \
         context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n{user}"
    )
}

#[test]
fn an_exec_plugin_kubeconfig_in_the_stack_never_runs_its_command_with_the_emulator() {
    let emu = K8sEmulator::start();
    let sb = Sandbox::new();
    let pwned = sb.path("pwned");
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: sh\n      args: [\"-c\", \
         \"env > {}\"]\n      interactiveMode: Never\n",
        pwned.display()
    );
    sb.write(
        "evil.yaml",
        &kubeconfig(&format!("http://127.0.0.1:{}", emu.port), &user),
    );
    sb.write("stacks/mr/main.toml", &stack("evil.yaml", ""));
    // A plan with nothing to read yet never connects; the apply (after merge) does.
    sb.run(&["plan", "stacks/mr"]).expect(0);
    let p = sb.run(&["apply", "stacks/mr", "--auto-approve"]).expect(1);
    assert!(p.stderr.contains("exec"), "the setting is named: {}", p.stderr);
    assert!(!pwned.exists(), "the exec command ran");
}

#[test]
fn a_token_file_or_insecure_kubeconfig_in_the_stack_is_refused_with_the_emulator() {
    let emu = K8sEmulator::start();
    let sb = Sandbox::new();
    let server = format!("http://127.0.0.1:{}", emu.port);
    sb.write("token.yaml", &kubeconfig(&server, "    tokenFile: /etc/hostname\n"));
    sb.write("stacks/mr/main.toml", &stack("token.yaml", ""));
    let p = sb.run(&["apply", "stacks/mr", "--auto-approve"]).expect(1);
    assert!(p.stderr.contains("tokenFile"), "{}", p.stderr);
    let insecure =
        kubeconfig(&server, "    token: x\n").replace("    server:", "    insecure-skip-tls-verify: true\n    server:");
    sb.write("insecure.yaml", &insecure);
    sb.write("stacks/mr/main.toml", &stack("insecure.yaml", ""));
    let p = sb.run(&["apply", "stacks/mr", "--auto-approve"]).expect(1);
    assert!(p.stderr.contains("insecure-skip-tls-verify"), "{}", p.stderr);
    // A kubeconfig outside the repository is refused too.
    sb.write("stacks/mr/main.toml", &stack("/etc/hostname", ""));
    let p = sb.run(&["apply", "stacks/mr", "--auto-approve"]).expect(1);
    assert!(p.stderr.contains("outside the repository"), "{}", p.stderr);
    assert!(
        emu.get("/api/v1/namespaces/web").is_none(),
        "nothing reached the cluster"
    );
}

#[test]
fn ci_variables_foreign_files_and_literal_clusters_are_refused_at_validate() {
    let sb = Sandbox::new();
    let secret = "[registry_secret.r]\nnamespaces = [\"web\"]\nregistry = \"r.example\"\nusername = \"u\"\n";
    for (line, setting, needle) in [
        (
            "password_env = \"AWS_SECRET_ACCESS_KEY\"",
            "password_env",
            "--allow-env AWS_SECRET_ACCESS_KEY",
        ),
        (
            "password_file = \"/etc/passwd\"",
            "password_file",
            "outside the repository",
        ),
        (
            "password_file = \"../../../etc/shadow\"",
            "password_file",
            "password_file",
        ),
    ] {
        sb.write("stacks/mr/main.toml", &stack("k.yaml", &format!("\n{secret}{line}\n")));
        let v = sb.run(&["validate", "stacks/mr"]).expect(1);
        assert!(v.stderr.contains(needle), "{setting}: {}", v.stderr);
        assert!(
            v.stderr.contains("main.toml:"),
            "file:line:col for {setting}: {}",
            v.stderr
        );
    }
    // The operator may allow one more variable by name.
    sb.write(
        "stacks/mr/main.toml",
        &stack("k.yaml", &format!("\n{secret}password_env = \"REGISTRY_TOKEN\"\n")),
    );
    sb.run(&["validate", "stacks/mr"]).expect(1);
    sb.run(&["--allow-env", "REGISTRY_TOKEN", "validate", "stacks/mr"])
        .expect(0);
    // A literal cluster table: the stack may not choose the API server.
    sb.write(
        "stacks/mr/main.toml",
        "[stack]\nname = \"mr\"\n\n[k8s_namespace.web]\nname = \"web\"\ncluster = { name = \"blog\", endpoint = \"http://127.0.0.1:9\" }\n",
    );
    let v = sb.run(&["validate", "stacks/mr"]).expect(1);
    assert!(
        v.stderr.contains("eks_cluster") && v.stderr.contains("main.toml:"),
        "{}",
        v.stderr
    );
}

#[test]
fn a_state_path_outside_the_repository_or_moved_under_a_locked_backend_is_refused() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("stolen.json");
    sb.write(
        "stacks/mr/main.toml",
        &format!(
            "[stack]\nname = \"mr\"\nstate = \"{}\"\n\n[data.x]\ninput = 1\n",
            target.display()
        ),
    );
    let p = sb.run(&["plan", "stacks/mr"]).expect(1);
    assert!(p.stderr.contains("outside the repository"), "{}", p.stderr);
    sb.write(
        "stacks/mr/main.toml",
        "[stack]\nname = \"mr\"\nstate = \"../../escape.json\"\n\n[data.x]\ninput = 1\n",
    );
    let p = sb.run(&["apply", "stacks/mr", "--auto-approve"]).expect(1);
    assert!(p.stderr.contains("outside the repository"), "{}", p.stderr);
    // Inside the repository, but not where the operator keeps the state: refused in CI.
    sb.write(
        "stacks/mr/main.toml",
        "[stack]\nname = \"mr\"\nstate = \"elsewhere/mr.json\"\n\n[data.x]\ninput = 1\n",
    );
    let p = sb.run(&["--locked-backend", "plan", "stacks/mr"]).expect(1);
    assert!(p.stderr.contains("the backend is locked"), "{}", p.stderr);
    let p = sb.command(&["plan", "stacks/mr"]).env("CI", "true").output().unwrap();
    assert_eq!(p.status.code(), Some(1), "CI=true locks the backend");
    // An S3 backend chosen by the stack is refused the same way.
    sb.write(
        "stacks/mr/main.toml",
        "[stack]\nname = \"mr\"\n[stack.backend]\ntype = \"s3\"\nbucket = \"attacker\"\n\n[data.x]\ninput = 1\n",
    );
    let p = sb.run(&["--locked-backend", "plan", "stacks/mr"]).expect(1);
    assert!(p.stderr.contains("s3://attacker/mr.json"), "{}", p.stderr);
    assert!(!target.exists() && !sb.exists("elsewhere") && !sb.path("../escape.json").exists());
    // Off CI, with no setting in the stack, plan works as before.
    sb.write("stacks/mr/main.toml", "[stack]\nname = \"mr\"\n\n[data.x]\ninput = 1\n");
    sb.run(&["--locked-backend", "plan", "stacks/mr"]).expect(0);
}

#[test]
fn a_crafted_state_with_a_literal_cluster_endpoint_gets_no_request_and_no_token_against_moto_and_the_emulator() {
    let moto = Moto::start();
    let emu = K8sEmulator::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write("k.yaml", &emu.kubeconfig());
    sb.write("stacks/mr/main.toml", &stack("k.yaml", ""));
    sb.run(&["apply", "stacks/mr", "--auto-approve"]).expect(0);
    // The merge request ships a state whose object names a cluster and an
    // endpoint of its choosing: a capture server on loopback listens there.
    let capture = TcpListener::bind("127.0.0.1:0").unwrap();
    capture.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", capture.local_addr().unwrap());
    let mut s: Value = serde_json::from_str(&sb.read("state/mr.json")).unwrap();
    let r = &mut s["resources"]["k8s_namespace.web"];
    r["inputs"]["cluster"] = json!({"name": "blog", "endpoint": endpoint});
    r["attributes"]["cluster"] = json!({"name": "blog", "endpoint": endpoint});
    sb.write("state/mr.json", &s.to_string());
    for args in [&["plan", "stacks/mr"][..], &["destroy", "stacks/mr", "--auto-approve"]] {
        let _ = sb.run(args);
    }
    std::thread::sleep(Duration::from_millis(200));
    match capture.accept() {
        Ok((mut conn, _)) => {
            let mut got = String::new();
            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = conn.read_to_string(&mut got);
            panic!("the capture server was reached: {got}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
}

#[test]
fn an_edited_state_pointing_at_hand_made_objects_cannot_change_or_delete_them_against_moto_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/net/main.toml",
        "[stack]\nname = \"net\"\nregion = \"us-east-1\"\n\n[vpc.main]\ncidr = \"10.0.0.0/16\"\n\n\
         [iam_role.ci]\nassume_role_policy = { Version = \"2012-10-17\", Statement = [{ Effect = \"Allow\", \
         Principal = { Service = \"eks.amazonaws.com\" }, Action = \"sts:AssumeRole\" }] }\n",
    );
    sb.run(&["apply", "stacks/net", "--auto-approve"]).expect(0);
    // Another team's VPC and role, made by hand in the same account.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ec2, iam) = rt.block_on(async {
        let conf = moto.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&conf)
                .region(aws_sdk_ec2::config::Region::new("us-east-1"))
                .build(),
        );
        (ec2, aws_sdk_iam::Client::new(&conf))
    });
    let (vpc, role) = rt.block_on(async {
        let v = ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
        let r = iam
            .create_role()
            .role_name("platform-admin")
            .assume_role_policy_document("{\"Version\":\"2012-10-17\",\"Statement\":[]}")
            .send()
            .await
            .unwrap();
        (
            v.vpc().unwrap().vpc_id().unwrap().to_string(),
            r.role().unwrap().role_name().to_string(),
        )
    });
    let mut s: Value = serde_json::from_str(&sb.read("state/net.json")).unwrap();
    s["resources"]["vpc.main"]["id"] = json!(vpc);
    s["resources"]["iam_role.ci"]["id"] = json!(role);
    sb.write("state/net.json", &s.to_string());
    let d = sb.run(&["destroy", "stacks/net", "--auto-approve"]).expect(1);
    assert!(d.stderr.contains("is not this state's to change"), "{}", d.stderr);
    assert!(d.stderr.contains(&vpc) && d.stderr.contains(&role), "{}", d.stderr);
    rt.block_on(async {
        let v = ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap();
        assert_eq!(v.vpcs().len(), 1, "the hand-made VPC still exists");
        iam.get_role()
            .role_name(&role)
            .send()
            .await
            .expect("the hand-made role still exists");
    });
}
