//! Kubernetes kinds through the real `kube` client against our Kubernetes
//! API emulator (tests/support/k8s_emulator.py). The emulator stores objects
//! and answers server-side apply with field ownership, get, list, watch,
//! patches and delete, and enforces RBAC for test tokens; tests play the
//! Deployment controller by writing status. What these tests cannot prove:
//! defaulting beyond replicas, admission, validation, Service allocation,
//! real rollouts (pods, readiness).

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::k8s::K8sEmulator;
use support::Sandbox;

const PASSWORD: &str = "glpat-s3cr3t-registry-token";

fn stack(extra: &str) -> String {
    format!(
        r#"
[stack]
name = "apps"

[kubernetes]
kubeconfig = "kubeconfig.yaml"

[variables]
image_tag = "v1"

[k8s_namespace.app_a]
name = "app-a"

[registry_secret.gitlab]
name = "gitlab-registry"
namespaces = ["app-a"]
registry = "registry.gitlab.com"
username = "deploy"
password_env = "SLIPWAY_SECRET_REGISTRY_PASSWORD"

[app.web]
namespace = "app-a"
image = "registry.gitlab.com/team/web:${{var.image_tag}}"
port = 8080
replicas = 2
cpu_request = "100m"
memory_request = "128Mi"
cpu_limit = "500m"
memory_limit = "256Mi"
health_path = "/healthz"
pull_secret = "gitlab-registry"
expose = "nodeport"
node_port = 30080

[ci_deployer.gitlab]
namespaces = ["app-a"]
{extra}"#
    )
}

pub(crate) fn setup(extra: &str) -> (K8sEmulator, Sandbox) {
    let emu = K8sEmulator::start();
    let mut sb = Sandbox::new();
    sb.env
        .push(("SLIPWAY_SECRET_REGISTRY_PASSWORD".into(), PASSWORD.into()));
    sb.write("kubeconfig.yaml", &emu.kubeconfig());
    sb.write("stacks/apps/main.toml", &stack(extra));
    (emu, sb)
}

const DEP: &str = "/apis/apps/v1/namespaces/app-a/deployments/web";

#[test]
fn apps_apply_through_the_kube_client_and_replan_clean_with_the_emulator() {
    let (emu, sb) = setup("");
    let controller = emu.controller();
    let a = sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    drop(controller);
    let pos = |s: &str| a.stdout.find(s).unwrap_or_else(|| panic!("{s}: {}", a.stdout));
    assert!(
        pos("k8s_namespace.app_a: Creation complete") < pos("app.web: Creating..."),
        "namespaces first: {}",
        a.stdout
    );
    let d = emu.get(DEP).expect("the Deployment exists");
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "slipway");
    assert_eq!(d["metadata"]["labels"]["slipway.dev/stack"], "apps");
    assert_eq!(
        d["metadata"]["managedFields"][0]["manager"], "slipway",
        "server-side apply as field manager slipway"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/healthz"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "256Mi"
    );
    let svc = emu.get("/api/v1/namespaces/app-a/services/web").expect("service");
    assert_eq!(svc["spec"]["type"], "NodePort");
    let role = emu
        .get("/apis/rbac.authorization.k8s.io/v1/namespaces/app-a/roles/gitlab")
        .expect("role");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "patch", "delete"]},
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "create", "patch", "delete"]},
            {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get", "create", "patch", "delete"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "create", "patch", "delete"]},
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]},
        ]),
        "least privilege for rolling out images"
    );
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
}

#[test]
fn a_failed_rollout_fails_the_apply_with_the_pods_reasons_with_the_emulator() {
    let (emu, sb) = setup("");
    let child = sb
        .command(&["apply", "stacks/apps", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Play a controller whose pod cannot pull its image.
    let t0 = std::time::Instant::now();
    while emu.get(DEP).is_none() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The controller observes the spec (a new ReplicaSet) and its pod cannot start.
    let hash = emu.observe(DEP, false);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7d9c-x1", "namespace": "app-a",
        "labels": {"app.kubernetes.io/name": "web", "slipway.dev/stack": "apps", "pod-template-hash": hash}},
        "spec": {"containers": [{"name": "web", "image": "x"}]}});
    assert_eq!(
        emu.patch(
            "/api/v1/namespaces/app-a/pods/web-7d9c-x1?fieldManager=test",
            "application/apply-patch+yaml",
            pod
        ),
        201
    );
    emu.patch(
        "/api/v1/namespaces/app-a/pods/web-7d9c-x1/status",
        "application/merge-patch+json",
        json!({"status": {"containerStatuses": [{"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.gitlab.com/team/web:v1\""}}}]}}),
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pod web-7d9c-x1: container web: ImagePullBackOff: Back-off pulling image"),
        "{stderr}"
    );
}

#[test]
fn a_rollout_that_never_finishes_times_out_with_the_emulator() {
    let (_emu, sb) = setup("");
    let r = sb
        .run(&["apply", "stacks/apps", "--auto-approve", "--rollout-timeout", "2s"])
        .expect(1);
    assert!(
        r.stderr.contains("timed out after") && r.stderr.contains("rollout of Deployment app-a/web"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("last status: waiting for deployment spec update to be observed"),
        "{}",
        r.stderr
    );
}

#[test]
fn kubectl_set_image_and_a_deleted_service_are_drift_and_apply_repairs_them_with_the_emulator() {
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    // What `kubectl set image` sends: a strategic merge patch by container name.
    emu.patch(
        DEP,
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil:latest"}]}}}}),
    );
    assert_eq!(emu.delete("/api/v1/namespaces/app-a/services/web"), 200);
    let p = sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("# app.web has changed"), "{}", p.stdout);
    assert!(
        p.stdout.contains("~ manifests[0].spec.template.spec.containers[0].image = \"registry.gitlab.com/team/web:v1\" -> \"evil:latest\""),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("manifests[1]"),
        "the deleted Service shows: {}",
        p.stdout
    );
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(
        emu.get(DEP).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.gitlab.com/team/web:v1"
    );
    assert!(
        emu.get("/api/v1/namespaces/app-a/services/web").is_some(),
        "the Service is back"
    );
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
}

#[test]
fn an_image_tag_from_ci_updates_in_place_and_dropped_objects_are_deleted_with_the_emulator() {
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let r = sb
        .command(&["apply", "stacks/apps", "--auto-approve"])
        .env("SLIPWAY_VAR_image_tag", "v2")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        emu.get(DEP).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.gitlab.com/team/web:v2"
    );
    // Drop the CI deployer from the stack: its objects go.
    let without = stack("").replace("[ci_deployer.gitlab]\nnamespaces = [\"app-a\"]\n", "");
    sb.write("stacks/apps/main.toml", &without);
    let r = sb
        .command(&["apply", "stacks/apps", "--auto-approve"])
        .env("SLIPWAY_VAR_image_tag", "v2")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(emu
        .get("/apis/rbac.authorization.k8s.io/v1/namespaces/app-a/roles/gitlab")
        .is_none());
    assert!(emu.get("/api/v1/namespaces/app-a/serviceaccounts/gitlab").is_none());
}

#[test]
fn turning_autoscale_on_keeps_the_running_replicas_and_leaves_them_to_the_hpa_with_the_emulator() {
    // The emulator, like the apiserver, defaults a Deployment's missing
    // replicas to 1 and keeps a field another manager also applied: slipway
    // hands `spec.replicas` over before it stops setting it.
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(emu.get(DEP).unwrap()["spec"]["replicas"], 2);
    let autoscaled = stack("").replace(
        "node_port = 30080",
        "node_port = 30080\nautoscale = { min = 2, max = 5 }",
    );
    sb.write("stacks/apps/main.toml", &autoscaled);
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(
        emu.get(DEP).unwrap()["spec"]["replicas"],
        2,
        "the running pods stay: never scaled to the default 1"
    );
    let hpa = emu
        .get("/apis/autoscaling/v2/namespaces/app-a/horizontalpodautoscalers/web")
        .expect("HPA");
    assert_eq!(hpa["spec"]["maxReplicas"], 5);
    // The HPA scales (its controller writes the count): not drift, and the
    // next apply leaves it.
    emu.patch(
        &format!("{DEP}/scale?fieldManager=kube-controller-manager"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 4}}),
    );
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
    sb.write(
        "stacks/apps/main.toml",
        &autoscaled.replace("image_tag = \"v1\"", "image_tag = \"v2\""),
    );
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(
        emu.get(DEP).unwrap()["spec"]["replicas"],
        4,
        "a new image keeps the HPA's count"
    );
}

#[test]
fn a_new_autoscaled_app_starts_at_the_hpa_minimum_with_the_emulator() {
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.write(
        "stacks/apps/main.toml",
        &stack("").replace(
            "node_port = 30080",
            "node_port = 30080\nautoscale = { min = 3, max = 5 }",
        ),
    );
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(emu.get(DEP).unwrap()["spec"]["replicas"], 3);
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
}

fn all_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn the_registry_password_reaches_the_cluster_but_no_file_or_output_with_the_emulator() {
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    let mut printed = String::new();
    for args in [
        &["plan", "stacks/apps", "--out", "apps.plan"][..],
        &["plan", "stacks/apps", "--json"],
        &["apply", "apps.plan"],
        &["render", "stacks/apps"],
        &["state", "show", "registry_secret.gitlab"],
        &["plan", "stacks/apps"],
    ] {
        let r = sb.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        printed.push_str(&r.stdout);
        printed.push_str(&r.stderr);
    }
    // Rotation shows as an update, still without the value.
    let r = sb
        .command(&["plan", "stacks/apps"])
        .env("SLIPWAY_SECRET_REGISTRY_PASSWORD", "rotated-token")
        .output()
        .unwrap();
    let rotated = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(
        rotated.contains("# registry_secret.gitlab will be updated in place"),
        "{rotated}"
    );
    assert!(rotated.contains("(sensitive value, changed)"), "{rotated}");
    printed.push_str(&rotated);
    assert!(
        !printed.contains(PASSWORD) && !printed.contains("rotated-token"),
        "a secret was printed"
    );
    // The state's secret-hash key stays in the state: no output, no other file.
    let pulled = sb.run(&["state", "pull"]).expect(0).stdout;
    printed.push_str(&pulled);
    let state: Value = serde_json::from_str(&sb.read("state/apps.json")).unwrap();
    let key = state["secret_key"]
        .as_str()
        .expect("the state keeps a secret key")
        .to_string();
    assert!(key.len() >= 32, "{key}");
    assert!(!printed.contains(&key), "the state's key was printed");
    let mut files = Vec::new();
    all_files(sb.root(), &mut files);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(
            !text.contains(PASSWORD) && !text.contains(&b64),
            "{} holds the password",
            f.display()
        );
        let is_state = f.starts_with(sb.path("state"));
        assert!(
            is_state || !text.contains(&key),
            "{} holds the state's key",
            f.display()
        );
    }
    // ... while the cluster got it.
    let secret = emu
        .get("/api/v1/namespaces/app-a/secrets/gitlab-registry")
        .expect("secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let doc = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap();
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!(doc["auths"]["registry.gitlab.com"]["password"], PASSWORD);
}

#[test]
fn bad_kubernetes_config_points_at_the_field_before_any_call() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/k/main.toml",
        "[k8s_deployment.web]\nnamespace = \"x\"\nspec = { replicas = 1, template = { spec = { containers = [{ name = \"web\", imagee = \"nginx\" }] } } }\n",
    );
    let r = sb.run(&["plan", "stacks/k"]).expect(1);
    assert!(r.stderr.contains("stacks/k/main.toml:3:"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "k8s_deployment.web.spec.template.spec.containers[0].imagee: unknown field `imagee` in a Deployment"
        ),
        "{}",
        r.stderr
    );
    sb.write("stacks/k/main.toml", "[app.web]\nnamespace = \"x\"\nimage = \"nginx\"\nport = 80\ncpu_request = \"1\"\nmemory_request = \"1Gi\"\nmemory_limit = \"1Gi\"\nhealth_path = \"/\"\n");
    let r = sb.run(&["plan", "stacks/k"]).expect(1);
    assert!(r.stderr.contains("missing field `cpu_limit`"), "{}", r.stderr);
    sb.write("stacks/k/main.toml", "[app.web]\nnamespace = \"x\"\nimage = \"nginx\"\nport = 80\ncpu_request = \"1\"\ncpu_limit = \"1\"\nmemory_request = \"1Gi\"\nmemory_limit = \"1Gi\"\nhealth_path = \"/\"\nexpose = \"public\"\n");
    let r = sb.run(&["plan", "stacks/k"]).expect(1);
    assert!(
        r.stderr.contains("stacks/k/main.toml:10:10")
            && r.stderr.contains("must be internal, nodeport, loadbalancer or ingress"),
        "{}",
        r.stderr
    );
}

#[test]
fn every_object_rendered_for_the_example_stacks_passes_the_official_schemas_in_strict_mode() {
    let ok = std::process::Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    assert!(
        ok.is_ok_and(|o| o.status.success()),
        "kubernetes-validate is not installed; install it with: pip install 'kubernetes-validate==1.37.0'"
    );
    let mut sb = Sandbox::new();
    sb.env.push(("SLIPWAY_SECRET_REGISTRY_PASSWORD".into(), "x".into()));
    let root = &crate::support::repo();
    let validate = |file: &std::path::Path| {
        std::process::Command::new("kubernetes-validate")
            .args(["--strict", "-k", "1.31.0"])
            .arg(file)
            .output()
            .unwrap()
    };
    for stack in ["stacks/apps"] {
        let r = sb.run(&["render", root.join(stack).to_str().unwrap()]).expect(0);
        let n = r.stdout.matches("\n---\n").count() + 1;
        assert!(n >= 10, "{stack} renders its objects: {}", r.stdout);
        let file = sb.path("rendered.yaml");
        std::fs::write(&file, &r.stdout).unwrap();
        let out = validate(&file);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{stack}:\n{text}");
        assert_eq!(text.matches("passed").count(), n, "{text}");
    }
    // The validator does reject what the schemas forbid.
    let bad = sb.path("bad.yaml");
    std::fs::write(&bad, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: \"two\"\n  selector: {}\n  template: {}\n  bogus: 1\n").unwrap();
    assert!(!validate(&bad).status.success());
}

const DB_PASSWORD: &str = "pg-Sup3r-s3cret-value";

/// A sensitive variable used in an app's environment and in an output.
fn sensitive_stack() -> String {
    stack(
        r#"
[app.api]
namespace = "app-a"
image = "registry.gitlab.com/team/api:${var.image_tag}"
port = 8080
cpu_request = "100m"
memory_request = "128Mi"
cpu_limit = "500m"
memory_limit = "256Mi"
health_path = "/healthz"
env = { DATABASE_URL = "postgres://api:${var.db_password}@db.internal/api" }

[variables.db_password]
sensitive = true

[outputs]
database_url = { value = "postgres://api:${var.db_password}@db.internal/api", sensitive = true }
namespace = "${k8s_namespace.app_a.name}"
"#,
    )
}

#[test]
fn a_sensitive_variable_reaches_the_cluster_but_no_file_plan_or_output_with_the_emulator() {
    let (emu, sb) = setup("");
    sb.write("stacks/apps/main.toml", &sensitive_stack());
    let mut sb = sb;
    sb.env.push(("SLIPWAY_VAR_db_password".into(), DB_PASSWORD.into()));
    let _controller = emu.controller();
    let mut printed = String::new();
    let mut run = |args: &[&str], code: i32| {
        let r = sb.run(args);
        printed.push_str(&r.stdout);
        printed.push_str(&r.stderr);
        assert_eq!(r.code, code, "{args:?}: {}{}", r.stdout, r.stderr);
        r
    };
    // A saved plan from an empty state, applied with the value from the environment.
    run(&["plan", "stacks/apps", "--out", "first.plan"], 0);
    let saved = sb.read("first.plan");
    assert!(saved.contains("\"sensitive_variables\":{\"db_password\""), "{saved}");
    let applied = run(&["apply", "first.plan"], 0);
    assert!(applied.stdout.contains("Apply complete!"), "{}", applied.stdout);
    // The cluster has the real value.
    let dep = emu
        .get("/apis/apps/v1/namespaces/app-a/deployments/api")
        .expect("deployment");
    let env = &dep["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["value"], format!("postgres://api:{DB_PASSWORD}@db.internal/api"));
    // Hashed in the state, the next plan has nothing to do (no perpetual diff).
    let again = run(&["plan", "stacks/apps", "--detailed-exitcode"], 0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    run(&["plan", "stacks/apps", "--json", "--gitlab-report", "report.json"], 0);
    run(&["drift", "stacks/apps"], 0);
    let rendered = run(&["render", "stacks/apps", "app.api"], 0);
    assert!(rendered.stdout.contains("(sensitive value)"), "{}", rendered.stdout);
    run(&["state", "pull"], 0);
    run(&["state", "show", "app.api"], 0);
    let outputs = run(&["output", "stacks/apps"], 0);
    assert!(outputs.stdout.contains("namespace = \"app-a\""), "{}", outputs.stdout);
    let by_name = run(&["output", "stacks/apps", "database_url"], 1);
    assert!(
        by_name.stderr.contains("stores only its keyed hash"),
        "{}",
        by_name.stderr
    );
    // Someone edits the live value: drift shows the field, not the value.
    let mut containers = dep["spec"]["template"]["spec"]["containers"].clone();
    containers[0]["env"][0]["value"] = json!(format!("postgres://api:{DB_PASSWORD}@other.internal/api"));
    let patch = json!({"spec": {"template": {"spec": {"containers": containers}}}});
    emu.patch(
        "/apis/apps/v1/namespaces/app-a/deployments/api",
        "application/merge-patch+json",
        patch,
    );
    let drift = run(&["drift", "stacks/apps"], 2);
    assert!(drift.stdout.contains("app.api"), "{}", drift.stdout);
    run(&["drift", "stacks/apps", "--json"], 2);
    run(&["plan", "stacks/apps"], 0);
    // A saved plan on a state checks the value it is applied with.
    run(
        &["plan", "stacks/apps", "--var", "image_tag=v2", "--out", "second.plan"],
        0,
    );
    let wrong = sb
        .command(&["apply", "second.plan"])
        .env("SLIPWAY_VAR_db_password", "not-the-planned-value")
        .output()
        .unwrap();
    let wrong_err = String::from_utf8_lossy(&wrong.stderr).to_string();
    assert_eq!(wrong.status.code(), Some(1), "{wrong_err}");
    assert!(wrong_err.contains("`db_password` has another value"), "{wrong_err}");
    let missing = sb
        .command(&["apply", "second.plan"])
        .env_remove("SLIPWAY_VAR_db_password")
        .output()
        .unwrap();
    let missing_err = String::from_utf8_lossy(&missing.stderr).to_string();
    assert!(missing_err.contains("db_password"), "{missing_err}");
    let not_sensitive = run(&["apply", "second.plan", "--var", "image_tag=v3"], 1);
    assert!(
        not_sensitive.stderr.contains("only sensitive ones"),
        "{}",
        not_sensitive.stderr
    );
    run(&["apply", "second.plan"], 0);
    let dep = emu
        .get("/apis/apps/v1/namespaces/app-a/deployments/api")
        .expect("deployment");
    let env = &dep["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(
        env["value"],
        format!("postgres://api:{DB_PASSWORD}@db.internal/api"),
        "the repair"
    );
    assert!(dep["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .ends_with(":v2"));
    drop(run);
    assert!(
        !printed.contains(DB_PASSWORD),
        "the sensitive value was printed:\n{printed}"
    );
    let mut files = Vec::new();
    all_files(sb.root(), &mut files);
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(!text.contains(DB_PASSWORD), "{} holds the sensitive value", f.display());
    }
}

const ROLE: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/app-a/roles/gitlab";
const BINDING: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/app-a/rolebindings/gitlab";

#[test]
fn an_escalated_role_and_binding_are_drift_and_apply_reverts_them_with_the_emulator() {
    // RBAC rules and subjects are atomic lists (the official schema): what
    // someone appends shows in drift and plan, and an apply replaces it.
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let mut rules = emu.get(ROLE).unwrap()["rules"].clone();
    rules[0]["verbs"]
        .as_array_mut()
        .unwrap()
        .push(json!("deletecollection"));
    rules
        .as_array_mut()
        .unwrap()
        .push(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
    assert_eq!(
        emu.patch(ROLE, "application/merge-patch+json", json!({"rules": rules})),
        200
    );
    let mut subjects = emu.get(BINDING).unwrap()["subjects"].clone();
    subjects
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}));
    assert_eq!(
        emu.patch(BINDING, "application/merge-patch+json", json!({"subjects": subjects})),
        200
    );

    let d = sb.run(&["drift", "stacks/apps"]).expect(2);
    assert!(d.stdout.contains("ci_deployer.gitlab"), "{}", d.stdout);
    let p = sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    for seen in ["\"deletecollection\"", "\"*\"", "system:authenticated"] {
        assert!(p.stdout.contains(seen), "{seen} shows: {}", p.stdout);
    }
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let role = emu.get(ROLE).unwrap();
    assert_eq!(role["rules"].as_array().unwrap().len(), 7, "{role}");
    assert!(!role["rules"].to_string().contains("deletecollection") && !role["rules"].to_string().contains("\"*\""));
    assert_eq!(emu.get(BINDING).unwrap()["subjects"].as_array().unwrap().len(), 2);
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
    sb.run(&["drift", "stacks/apps"]).expect(0);
}

#[test]
fn a_sidecar_and_host_network_someone_added_are_drift_and_apply_takes_them_out_with_the_emulator() {
    // Fields slipway never sets are told from server defaults by who owns
    // them (managedFields): another manager's sidecar and hostNetwork show,
    // a default does not, and apply removes exactly what was added.
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
    let patch = json!({"spec": {"template": {"spec": {
        "hostNetwork": true,
        "containers": [{"name": "miner", "image": "evil.example/miner:1"}]}}}});
    assert_eq!(
        emu.patch(
            &format!("{DEP}?fieldManager=kubectl-edit"),
            "application/strategic-merge-patch+json",
            patch
        ),
        200
    );
    let live = emu.get(DEP).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(),
        2,
        "the emulator merged the sidecar by name: {live}"
    );

    let d = sb.run(&["drift", "stacks/apps"]).expect(2);
    assert!(d.stdout.contains("app.web"), "{}", d.stdout);
    let p = sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    for seen in ["evil.example/miner:1", "hostNetwork"] {
        assert!(p.stdout.contains(seen), "{seen} shows: {}", p.stdout);
    }
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let spec = emu.get(DEP).unwrap()["spec"]["template"]["spec"].clone();
    let names: Vec<&str> = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["web"], "{spec}");
    assert!(spec.get("hostNetwork").is_none(), "{spec}");
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
    sb.run(&["drift", "stacks/apps"]).expect(0);
}

#[test]
fn quantities_the_apiserver_rewrites_and_empty_env_values_replan_clean_with_the_emulator() {
    // The emulator, like the apiserver, stores `0.5` as `500m`, `0.5Gi` as
    // `512Mi` and drops an empty env value: slipway compares by meaning.
    let (emu, sb) = setup("");
    let text = stack("")
        .replace("cpu_request = \"100m\"", "cpu_request = \"0.1\"")
        .replace("cpu_limit = \"500m\"", "cpu_limit = \"0.5\"")
        .replace("memory_limit = \"256Mi\"", "memory_limit = \"0.25Gi\"")
        .replace(
            "node_port = 30080",
            "node_port = 30080\nenv = { EMPTY = \"\", MODE = \"prod\" }",
        );
    sb.write("stacks/apps/main.toml", &text);
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let c = emu.get(DEP).unwrap()["spec"]["template"]["spec"]["containers"][0].clone();
    assert_eq!(
        c["resources"]["limits"],
        json!({"cpu": "500m", "memory": "256Mi"}),
        "{c}"
    );
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    assert!(c["env"].to_string().contains("EMPTY") && !c["env"].to_string().contains("\"value\":\"\""));
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
    sb.run(&["drift", "stacks/apps"]).expect(0);
    // A real change of value is still one.
    sb.write(
        "stacks/apps/main.toml",
        &text.replace("cpu_limit = \"0.5\"", "cpu_limit = \"750m\""),
    );
    let p = sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("\"0.5\" -> \"750m\""), "{}", p.stdout);
}

#[test]
fn a_fix_forward_deploy_waits_for_its_own_spec_instead_of_failing_on_the_old_pods_with_the_emulator() {
    // v1 crash-loops and its deadline passed; v2 fixes it. Until the
    // controller observes v2, the deadline and the crashing pods are v1's:
    // the wait goes on (as kubectl's does) and v2 rolls out.
    let (emu, sb) = setup("");
    {
        let _controller = emu.controller();
        sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    }
    let dep = emu.get(DEP).unwrap();
    let sets = emu.get("/apis/apps/v1/namespaces/app-a/replicasets").unwrap();
    let v1 = sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
        .expect("the controller made revision 1's ReplicaSet");
    let mut labels = dep["spec"]["selector"]["matchLabels"].clone();
    labels["pod-template-hash"] = v1["metadata"]["labels"]["pod-template-hash"].clone();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-v1-crash", "namespace": "app-a",
        "labels": labels}, "spec": {"containers": [{"name": "web", "image": "x"}]}});
    emu.patch(
        "/api/v1/namespaces/app-a/pods/web-v1-crash?fieldManager=test",
        "application/apply-patch+yaml",
        pod,
    );
    emu.patch(
        "/api/v1/namespaces/app-a/pods/web-v1-crash/status",
        "application/merge-patch+json",
        json!({"status": {"containerStatuses": [{"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}]}}),
    );
    emu.patch(
        &format!("{DEP}/status"),
        "application/merge-patch+json",
        json!({"status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-v1\" has timed out progressing."}]}}),
    );
    let child = sb
        .command(&["apply", "stacks/apps", "--auto-approve", "--var", "image_tag=v2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The controller is slow to observe v2: slipway polls the stale status meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let _controller = emu.controller();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        emu.get(DEP).unwrap()["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
}

#[test]
fn a_manifest_secrets_data_reaches_the_cluster_but_no_file_plan_or_output_with_the_emulator() {
    const TOKEN: &str = "s3cr3t-manifest-token";
    const OTHER: &str = "an0ther-s3cret"; // written as data: base64
    let secret = format!(
        r#"
[k8s_manifest.api_token]
manifest = {{ apiVersion = "v1", kind = "Secret", metadata = {{ name = "api-token", namespace = "app-a" }}, type = "Opaque", stringData = {{ token = "{TOKEN}" }}, data = {{ other = "YW4wdGhlci1zM2NyZXQ=" }} }}
"#
    );
    let (emu, sb) = setup(&secret);
    let _controller = emu.controller();
    let mut printed = String::new();
    for args in [
        &["plan", "stacks/apps", "--out", "apps.plan"][..],
        &["plan", "stacks/apps", "--json"],
        &["apply", "apps.plan"],
        &["state", "show", "k8s_manifest.api_token"],
        &["plan", "stacks/apps", "--detailed-exitcode"],
        &["drift", "stacks/apps"],
    ] {
        let r = sb.run(args).expect(0);
        printed.push_str(&r.stdout);
        printed.push_str(&r.stderr);
    }
    let live = emu.get("/api/v1/namespaces/app-a/secrets/api-token").unwrap();
    assert_eq!(live["data"]["token"], "czNjcjN0LW1hbmlmZXN0LXRva2Vu", "{live}");
    assert_eq!(live["data"]["other"], "YW4wdGhlci1zM2NyZXQ=");
    assert!(printed.contains("(sensitive value)"), "{printed}");
    let mut files = Vec::new();
    all_files(sb.root(), &mut files);
    for f in files.iter().filter(|f| !f.ends_with("main.toml")) {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).to_string();
        for s in [TOKEN, OTHER, "YW4wdGhlci1zM2NyZXQ=", "czNjcjN0LW1hbmlmZXN0LXRva2Vu"] {
            let at = text
                .find(s)
                .map(|i| text[i.saturating_sub(300)..(i + 60).min(text.len())].to_string());
            assert!(at.is_none(), "{} holds {s}: {at:?}", f.display());
        }
    }
    for s in [TOKEN, OTHER, "YW4wdGhlci1zM2NyZXQ="] {
        assert!(!printed.contains(s), "printed: {printed}");
    }

    // Someone changes it in the cluster: drift says so without showing either value.
    emu.patch(
        "/api/v1/namespaces/app-a/secrets/api-token",
        "application/merge-patch+json",
        json!({"data": {"token": "c3RvbGVuLXZhbHVl"}}),
    );
    let d = sb.run(&["drift", "stacks/apps"]).expect(2);
    assert!(d.stdout.contains("k8s_manifest.api_token"), "{}", d.stdout);
    assert!(
        !d.stdout.contains("stolen-value") && !d.stdout.contains(TOKEN),
        "{}",
        d.stdout
    );
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(
        emu.get("/api/v1/namespaces/app-a/secrets/api-token").unwrap()["data"]["token"],
        "czNjcjN0LW1hbmlmZXN0LXRva2Vu"
    );
}

#[test]
fn destroy_waits_for_finalizers_and_the_terminating_namespace_so_the_next_apply_works_with_the_emulator() {
    // The emulator, like the apiserver, keeps an object with finalizers until
    // they are removed and a namespace Terminating while it empties, and
    // refuses new content in a Terminating namespace (403).
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    const SVC: &str = "/api/v1/namespaces/app-a/services/web";
    assert_eq!(
        emu.patch(
            SVC,
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": ["example.com/cleanup"]}})
        ),
        200
    );
    let mut child = sb
        .command(&["destroy", "stacks/apps", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Another controller does its cleanup and lets go a moment later.
    let t0 = std::time::Instant::now();
    while emu
        .get(SVC)
        .is_some_and(|s| s["metadata"]["deletionTimestamp"].is_null())
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "the Service was never deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(emu.get(SVC).is_some(), "held by its finalizer");
    assert!(
        child.try_wait().unwrap().is_none(),
        "destroy waits while the finalizer holds the Service"
    );
    emu.patch(
        SVC,
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": null}}),
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(emu.get(SVC).is_none());
    assert!(
        emu.get("/api/v1/namespaces/app-a").is_none(),
        "destroy waited for the namespace to go"
    );
    // Nothing Terminating is in the way of the next apply.
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
}

#[test]
fn a_plan_that_deletes_a_namespace_names_the_declared_objects_it_takes_with_it_with_the_emulator() {
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    sb.write(
        "stacks/apps/main.toml",
        &stack("").replace("[k8s_namespace.app_a]\nname = \"app-a\"\n", ""),
    );
    let p = sb.run(&["plan", "stacks/apps"]).expect(0);
    assert!(
        p.stdout
            .contains("k8s_namespace.app_a deletes namespace app-a, and Kubernetes deletes everything in it:")
            && p.stdout.contains("app.web")
            && p.stdout.contains("registry_secret.gitlab"),
        "{}",
        p.stdout
    );
}

/// The machine's kubectl against the emulator, with the sandbox's kubeconfig.
pub(crate) fn kubectl(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .env("KUBECONFIG", sb.path("kubeconfig.yaml"))
        .env("HOME", sb.root())
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl is needed for this test ({e}); install it (Debian: apt-get install kubectl)")
        })
}

#[test]
fn the_machines_kubectl_gets_watches_sets_images_diffs_and_meets_conflicts_on_what_slipway_applied_with_the_emulator() {
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let get = kubectl(&sb, &["get", "deploy", "-n", "app-a"]);
    assert!(get.status.success(), "{}", String::from_utf8_lossy(&get.stderr));
    assert!(String::from_utf8_lossy(&get.stdout).contains("web"));
    let rollout = kubectl(
        &sb,
        &["rollout", "status", "deploy/web", "-n", "app-a", "--timeout=20s"],
    );
    assert!(
        String::from_utf8_lossy(&rollout.stdout).contains("successfully rolled out"),
        "{}{}",
        String::from_utf8_lossy(&rollout.stdout),
        String::from_utf8_lossy(&rollout.stderr)
    );

    // `kubectl set image` (a strategic merge patch) is drift slipway shows.
    let set = kubectl(&sb, &["set", "image", "deploy/web", "-n", "app-a", "web=nginx:hotfix"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let p = sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("-> \"nginx:hotfix\""), "{}", p.stdout);
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);

    // Someone else's manifest with another replica count.
    let keep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "app-a"}, "spec": {"replicas": 5}});
    sb.write("theirs.json", &keep.to_string());
    let file = sb.path("theirs.json").display().to_string();
    let diff = kubectl(
        &sb,
        &[
            "diff",
            "--server-side",
            "--force-conflicts",
            "--field-manager=ops",
            "-f",
            &file,
        ],
    );
    assert_eq!(diff.status.code(), Some(1), "kubectl diff finds a difference");
    assert!(String::from_utf8_lossy(&diff.stdout).contains("+  replicas: 5"));
    assert_eq!(emu.get(DEP).unwrap()["spec"]["replicas"], 2, "a dry run stores nothing");
    let apply = kubectl(
        &sb,
        &[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--validate=false",
            "-f",
            &file,
        ],
    );
    assert!(!apply.status.success());
    assert!(
        String::from_utf8_lossy(&apply.stderr).contains("conflict with \"slipway\" using apps/v1: .spec.replicas"),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert_eq!(emu.get(DEP).unwrap()["spec"]["replicas"], 2, "slipway's field stands");
    let forced = kubectl(
        &sb,
        &[
            "apply",
            "--server-side",
            "--field-manager=ops",
            "--force-conflicts",
            "--validate=false",
            "-f",
            &file,
        ],
    );
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    let p = sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("replicas = 2 -> 5"), "{}", p.stdout);
}

#[test]
fn an_app_only_stack_applies_updates_and_destroys_with_exactly_the_ci_deployer_grant_under_the_emulators_rbac() {
    // The platform (an administrator) makes the namespace and the CI grant;
    // the team's CI, known to the cluster as user gitlab-ci in group
    // gitlab-deployer (what an EKS access entry maps its IAM role to), runs
    // the app stack. The emulator enforces RBAC for that identity.
    let emu = K8sEmulator::start();
    let _controller = emu.controller();
    let sb = Sandbox::new();
    sb.write("kubeconfig.yaml", &emu.kubeconfig());
    sb.write(
        "ci-kubeconfig.yaml",
        &emu.kubeconfig()
            .replace("token: emulator", "token: as:gitlab-ci:gitlab-deployer"),
    );
    sb.write(
        "stacks/platform/main.toml",
        "[stack]\nname = \"platform\"\n\n[kubernetes]\nkubeconfig = \"kubeconfig.yaml\"\n\n[k8s_namespace.app_a]\nname = \"app-a\"\n\n[ci_deployer.gitlab]\nnamespaces = [\"app-a\"]\ngroup = \"gitlab-deployer\"\n",
    );
    sb.run(&["apply", "stacks/platform", "--auto-approve"]).expect(0);
    let app = |tag: &str, extra: &str| {
        format!(
            r#"[stack]
name = "team-a"

[kubernetes]
kubeconfig = "ci-kubeconfig.yaml"

[app.web]
namespace = "app-a"
image = "registry.gitlab.com/team/web:{tag}"
port = 8080
cpu_request = "100m"
memory_request = "128Mi"
cpu_limit = "500m"
memory_limit = "256Mi"
health_path = "/healthz"
expose = "nodeport"
autoscale = {{ min = 2, max = 4 }}
{extra}"#
        )
    };
    sb.write("stacks/team/main.toml", &app("v1", ""));
    sb.run(&["apply", "stacks/team", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/team", "--detailed-exitcode"]).expect(0);
    sb.write("stacks/team/main.toml", &app("v2", ""));
    sb.run(&["apply", "stacks/team", "--auto-approve"]).expect(0);
    assert_eq!(
        emu.get(DEP).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.gitlab.com/team/web:v2"
    );
    // Nothing beyond the app: a ConfigMap is the platform's to make.
    sb.write(
        "stacks/team/main.toml",
        &app(
            "v2",
            "\n[k8s_config_map.settings]\nnamespace = \"app-a\"\ndata = { mode = \"prod\" }\n",
        ),
    );
    let r = sb.run(&["apply", "stacks/team", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("User \\\"gitlab-ci\\\" cannot") || r.stderr.contains("User \"gitlab-ci\" cannot"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("configmaps"), "{}", r.stderr);
    sb.write("stacks/team/main.toml", &app("v2", ""));
    sb.run(&["destroy", "stacks/team", "--auto-approve"]).expect(0);
    assert!(emu.get(DEP).is_none());
}

#[test]
fn a_rollout_wait_outlives_a_few_api_server_errors_with_the_emulator() {
    // The API server answers 500 to the rollout wait's reads three times (it
    // restarts, an upgrade rolls its nodes): the wait goes on and the apply
    // succeeds; the errors were the wait's last status while they lasted.
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    let (code, _) = support::k8s::request(
        emu.port,
        "POST",
        "/_emulator/faults",
        "application/json",
        &json!({"status": 500, "count": 3, "match": "/replicasets"}).to_string(),
    )
    .unwrap();
    assert_eq!(code, 200);
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let (_, left) = support::k8s::request(emu.port, "POST", "/_emulator/faults", "application/json", "{}").unwrap();
    assert_eq!(left["count"], 0, "the wait met all three errors and went on");
}

#[test]
fn a_post_deploy_check_through_the_service_proxy_fails_the_apply_and_can_roll_back_with_the_emulator() {
    // The check's GET goes through the API server's service proxy; the
    // emulator answers what the test sets for the Service.
    let (emu, sb) = setup("");
    let _controller = emu.controller();
    let with_check = |tag: &str, on_failure: &str| {
        stack("")
            .replace("image_tag = \"v1\"", &format!("image_tag = \"{tag}\""))
            .replace(
                "node_port = 30080",
                &format!(
                    "node_port = 30080\ncheck = {{ path = \"/healthz\", timeout = \"3s\", on_failure = \"{on_failure}\" }}"
                ),
            )
    };
    sb.write("stacks/apps/main.toml", &with_check("v1", "rollback"));
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let image = || emu.get(DEP).unwrap()["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    let (code, _) = support::k8s::request(
        emu.port,
        "POST",
        "/_emulator/proxy",
        "application/json",
        &json!({"app-a/web": {"status": 500, "body": "database unreachable"}}).to_string(),
    )
    .unwrap();
    assert_eq!(code, 200);
    sb.write("stacks/apps/main.toml", &with_check("v2", "rollback"));
    let a = sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(1);
    for said in [
        "post-deploy check failed",
        "HTTP 500: database unreachable",
        "rolled back to the previous manifests",
    ] {
        assert!(a.stderr.contains(said), "{said}: {}", a.stderr);
    }
    assert_eq!(
        image(),
        "registry.gitlab.com/team/web:v1",
        "the previous version runs again"
    );
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(2);
    // Without rollback the apply fails and the new version stays.
    sb.write("stacks/apps/main.toml", &with_check("v2", "fail"));
    let a = sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(1);
    assert!(a.stderr.contains("HTTP 500: database unreachable"), "{}", a.stderr);
    assert_eq!(image(), "registry.gitlab.com/team/web:v2");
}

#[test]
fn a_k8s_check_of_any_service_fails_the_apply_until_the_service_answers_with_the_emulator() {
    // A Service that no `app` renders (a k8s_manifest's), checked through
    // the service proxy after it is applied; `triggers` runs it again.
    let check = |trigger: &str| {
        format!(
            r#"
[k8s_manifest.api]
manifest = {{ apiVersion = "v1", kind = "Service", metadata = {{ name = "api", namespace = "app-a" }}, spec = {{ selector = {{ app = "api" }}, ports = [{{ port = 8080, protocol = "TCP" }}] }} }}

[k8s_check.api]
namespace = "app-a"
service = "api"
port = 8080
path = "/ready"
timeout = "2s"
triggers = ["{trigger}"]
"#
        )
    };
    let (emu, sb) = setup(&check("1"));
    let _controller = emu.controller();
    let answer = |status: u16, body: &str| {
        support::k8s::request(
            emu.port,
            "POST",
            "/_emulator/proxy",
            "application/json",
            &json!({"app-a/api": {"status": status, "body": body}}).to_string(),
        )
        .unwrap()
    };
    answer(503, "warming up");
    let t0 = std::time::Instant::now();
    let a = sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(1);
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "a 503 is the app's answer, not retried past the check's timeout: {:?}",
        t0.elapsed()
    );
    for said in ["k8s_check.api", "post-deploy check failed", "HTTP 503: warming up"] {
        assert!(a.stderr.contains(said), "{said}: {}", a.stderr);
    }
    assert!(
        emu.get("/api/v1/namespaces/app-a/services/api").is_some(),
        "the Service was applied before its check"
    );
    answer(200, "ok");
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
    let proxied = || {
        emu.log()
            .iter()
            .filter(|(_, p)| p.ends_with("/services/api:8080/proxy/ready"))
            .count()
    };
    let before = proxied();
    sb.write("stacks/apps/main.toml", &stack(&check("2")));
    let p = sb.run(&["plan", "stacks/apps"]).expect(0);
    assert!(
        p.stdout.contains("k8s_check.api will be updated in place"),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    assert_eq!(proxied(), before + 1, "a new trigger runs the check again");
    // A check names a cluster of this stack only, like every Kubernetes kind.
    sb.write(
        "stacks/apps/main.toml",
        &stack(&check("2")).replace(
            "[k8s_check.api]",
            "[k8s_check.api]\ncluster = { name = \"x\", endpoint = \"https://evil.example\" }",
        ),
    );
    let v = sb.run(&["validate", "stacks/apps"]);
    assert_ne!(v.code, 0);
    assert!(v.stderr.contains("cluster"), "{}", v.stderr);
}

#[test]
fn a_trace_log_names_every_aws_call_and_step_but_never_the_registry_password_with_moto_and_the_emulator() {
    // SLIPWAY_LOG=trace on an apply that makes a VPC (AWS calls) and a
    // registry pull secret (the password goes to the cluster): the log says
    // what was called and done, and holds no form of the password.
    let moto = crate::support::moto::Moto::start();
    let (emu, mut sb) = setup("");
    sb.env.extend(moto.env());
    sb.env.push(("SLIPWAY_LOG".into(), "trace".into()));
    let stack = sb.read("stacks/apps/main.toml").replacen(
        "[stack]\nname = \"apps\"\n",
        "[stack]\nname = \"apps\"\nregion = \"us-east-1\"\n\n[vpc.logs]\ncidr = \"10.8.0.0/16\"\n",
        1,
    );
    sb.write("stacks/apps/main.toml", &stack);
    let controller = emu.controller();
    let a = sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    drop(controller);
    assert!(
        a.stderr.contains("slipway::aws") && a.stderr.contains("operation=CreateVpc"),
        "{}",
        a.stderr
    );
    assert!(
        a.stderr.contains("status=200") && a.stderr.contains("duration_ms="),
        "{}",
        a.stderr
    );
    assert!(
        a.stderr.contains("address=registry_secret.gitlab") && a.stderr.contains("step done"),
        "{}",
        a.stderr
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    for form in [
        PASSWORD.to_string(),
        b64.encode(PASSWORD),
        b64.encode(format!("deploy:{PASSWORD}")),
    ] {
        assert!(
            !a.stderr.contains(&form) && !a.stdout.contains(&form),
            "the log shows {form}"
        );
    }
    // An error's code is logged, not its parameters.
    let bad = sb.run(&["plan", "stacks/apps", "--log-level", "debug"]).expect(0);
    assert!(bad.stderr.contains("operation=DescribeVpcs"), "{}", bad.stderr);
}

#[test]
fn the_emulator_refuses_what_a_real_apiserver_refuses_as_kubectl_sees_it() {
    // The stand-in is at least as strict as the apiserver on what slipway's
    // plan-time rules refuse: kubectl meets a 422 for each.
    let (_emu, sb) = setup("");
    let cases = [
        ("name", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: App_A\n  namespace: default\n"),
        ("label", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n  labels:\n    team: \"web team!\"\n"),
        ("nodePort", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: default\nspec:\n  type: NodePort\n  selector: {app: s}\n  ports: [{port: 80, nodePort: 40000}]\n"),
        ("minReplicas", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  namespace: default\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  minReplicas: 5\n  maxReplicas: 2\n"),
        ("limit", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  namespace: default\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers: [{name: d, image: nginx, resources: {requests: {cpu: \"2\"}, limits: {cpu: 500m}}}]\n"),
        ("quantities", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: q\n  namespace: default\nspec:\n  selector: {matchLabels: {app: q}}\n  template:\n    metadata: {labels: {app: q}}\n    spec:\n      containers: [{name: q, image: nginx, resources: {requests: {memory: lots}}}]\n"),
    ];
    for (what, manifest) in cases {
        sb.write("bad.yaml", manifest);
        let path = sb.path("bad.yaml").display().to_string();
        let out = kubectl(&sb, &["apply", "--server-side", "--validate=false", "-f", &path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: the emulator took it");
        assert!(err.contains("is invalid") && err.contains(what), "{what}: {err}");
    }
}

#[test]
fn a_kubernetes_resource_s_name_and_namespace_are_attributes_known_at_plan_with_the_emulator() {
    // `${k8s_namespace.shop.name}` reads the default name (the resource's,
    // `_` -> `-`) without the stack writing it, known at plan time.
    let (emu, sb) = setup(
        "\n[k8s_namespace.shop_front]\n\n[k8s_config_map.settings]\nnamespace = \"${k8s_namespace.shop_front.name}\"\ndata = { owner = \"${k8s_namespace.shop_front.id}\" }\n",
    );
    let _controller = emu.controller();
    let plan = sb.run(&["plan", "stacks/apps"]).expect(0);
    assert!(plan.stdout.contains("namespace = \"shop-front\""), "{}", plan.stdout);
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let cm = emu
        .get("/api/v1/namespaces/shop-front/configmaps/settings")
        .expect("the ConfigMap is in the namespace named by the reference");
    assert_eq!(cm["data"]["owner"], "Namespace/shop-front");
    let st = sb.state("apps");
    let attrs = &st["resources"]["k8s_config_map.settings"]["attributes"];
    assert_eq!(attrs["name"], "settings", "{attrs}");
    assert_eq!(attrs["namespace"], "shop-front", "{attrs}");
    sb.run(&["plan", "stacks/apps", "--detailed-exitcode"]).expect(0);
}
