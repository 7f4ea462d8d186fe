//! Kubernetes objects have one owner, against our Kubernetes API emulator
//! through the real `kube` client: slipway never applies over, nor deletes,
//! an object of a name it renders that it did not make. The emulator keeps
//! labels and uids as a real API server does; it proves which requests
//! slipway sends, not how a real server merges them.

use crate::support;

use serde_json::{json, Value};
use support::k8s::K8sEmulator;
use support::Sandbox;

fn app(address: &str) -> String {
    format!(
        r#"
[app.{address}]
name = "web"
namespace = "default"
image = "nginx:1.27"
port = 8080
replicas = 1
cpu_request = "100m"
memory_request = "128Mi"
cpu_limit = "500m"
memory_limit = "256Mi"
health_path = "/healthz"
"#
    )
}

fn stack(body: &str) -> String {
    format!("[stack]\nname = \"shop\"\n\n[kubernetes]\nkubeconfig = \"kubeconfig.yaml\"\n{body}")
}

const DEP: &str = "/apis/apps/v1/namespaces/default/deployments/web";

fn setup(body: &str) -> (K8sEmulator, Sandbox) {
    let emu = K8sEmulator::start();
    let sb = Sandbox::new();
    sb.write("kubeconfig.yaml", &emu.kubeconfig());
    sb.write("stacks/shop/main.toml", &stack(body));
    (emu, sb)
}

fn uid(emu: &K8sEmulator) -> Value {
    emu.get(DEP).expect("the Deployment exists")["metadata"]["uid"].clone()
}

#[test]
fn an_unlabelled_deployment_of_the_same_name_fails_the_plan_until_imported_with_the_emulator() {
    let (emu, sb) = setup(&app("web"));
    // Someone made `web` by hand (kubectl apply), without slipway's ownership
    // labels but with the selector slipway renders (a real apiserver refuses
    // any change of a Deployment's selector, and so does the emulator).
    let sel = json!({"app.kubernetes.io/name": "web", "slipway.dev/stack": "shop"});
    let theirs = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"team": "ops"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": sel},
                 "template": {"metadata": {"labels": sel}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    assert_eq!(
        emu.patch(
            &format!("{DEP}?fieldManager=kubectl"),
            "application/apply-patch+yaml",
            theirs
        ),
        201
    );
    let before = uid(&emu);
    let p = sb.run(&["plan", "stacks/shop"]).expect(1);
    assert!(
        p.stderr.contains("Deployment default/web already exists")
            && p.stderr.contains("no slipway labels")
            && p.stderr.contains("slipway import"),
        "{}",
        p.stderr
    );
    // apply refuses the same way, and the object is untouched.
    sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(1);
    let d = emu.get(DEP).unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["uid"], before);

    // Taking it over deliberately: import with the ID the resource renders.
    let wrong = sb.run(&["import", "stacks/shop", "app.web", "web"]).expect(1);
    assert!(wrong.stderr.contains("Deployment/default/web"), "{}", wrong.stderr);
    sb.run(&["import", "stacks/shop", "app.web", "Deployment/default/web"])
        .expect(0);
    let controller = emu.controller();
    sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(0);
    drop(controller);
    let d = emu.get(DEP).unwrap();
    assert_eq!(d["metadata"]["uid"], before, "updated in place, not recreated");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["metadata"]["labels"]["slipway.dev/address"], "app.web");
    assert!(d["metadata"]["labels"]["slipway.dev/lineage"].is_string());
}

#[test]
fn the_emulator_refuses_a_deployment_selector_change_as_a_real_apiserver_does() {
    let emu = K8sEmulator::start();
    let dep = |sel: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"matchLabels": sel}, "template": {"metadata": {"labels": sel},
                        "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    };
    let path = format!("{DEP}?fieldManager=kubectl");
    assert_eq!(
        emu.patch(&path, "application/apply-patch+yaml", dep(json!({"app": "web"}))),
        201
    );
    assert_eq!(
        emu.patch(&path, "application/apply-patch+yaml", dep(json!({"app": "other"}))),
        422
    );
    let mut mismatched = dep(json!({"app": "web"}));
    mismatched["spec"]["template"]["metadata"]["labels"] = json!({"app": "nope"});
    assert_eq!(emu.patch(&path, "application/apply-patch+yaml", mismatched), 422);
}

#[test]
fn a_rename_without_moved_is_refused_and_the_live_object_stays_with_the_emulator() {
    let (emu, sb) = setup(&app("old"));
    let controller = emu.controller();
    sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(0);
    let before = uid(&emu);
    sb.write("stacks/shop/main.toml", &stack(&app("new")));
    let p = sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(1);
    drop(controller);
    assert!(
        p.stderr.contains("[[moved]]")
            && p.stderr.contains("from = \"app.old\"")
            && p.stderr.contains("to = \"app.new\""),
        "{}",
        p.stderr
    );
    assert_eq!(uid(&emu), before, "the live Deployment was never deleted");
}

#[test]
fn another_state_of_the_stack_cannot_take_over_or_delete_an_object_with_the_emulator() {
    let (emu, sb) = setup(&app("web"));
    let controller = emu.controller();
    sb.run(&["apply", "stacks/shop", "--auto-approve", "--state", "dev.json"])
        .expect(0);
    let before = uid(&emu);
    // The same stack with another state (another environment) in the same namespace.
    let p = sb.run(&["plan", "stacks/shop", "--state", "prod.json"]).expect(1);
    assert!(p.stderr.contains("another state"), "{}", p.stderr);
    // A crafted prod state that claims the object: destroy fails naming its
    // owner and leaves it alone.
    let mut forged: Value = serde_json::from_str(&sb.read("dev.json")).unwrap();
    let dev_lineage = forged["lineage"].as_str().unwrap().to_string();
    forged["lineage"] = json!("00000000-0000-0000-0000-000000000000");
    sb.write("prod.json", &forged.to_string());
    let d = sb
        .run(&["destroy", "stacks/shop", "--auto-approve", "--state", "prod.json"])
        .expect(1);
    assert!(d.stderr.contains(&dev_lineage), "the owner is named: {}", d.stderr);
    drop(controller);
    assert_eq!(uid(&emu), before, "an object of another state is never deleted");
}

#[test]
fn a_rename_with_moved_keeps_the_deployment_and_sends_no_delete_with_the_emulator() {
    let (emu, sb) = setup(&app("old"));
    let controller = emu.controller();
    sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(0);
    let before = uid(&emu);
    sb.write(
        "stacks/shop/main.toml",
        &stack(&format!(
            "{}\n[[moved]]\nfrom = \"app.old\"\nto = \"app.new\"\n",
            app("new")
        )),
    );
    let p = sb.run(&["plan", "stacks/shop"]).expect(0);
    assert!(p.stdout.contains("# app.old has moved to app.new"), "{}", p.stdout);
    assert!(
        p.stdout.contains("0 to add") && p.stdout.contains("0 to destroy"),
        "{}",
        p.stdout
    );
    let a = sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(0);
    drop(controller);
    assert!(!a.stdout.contains("Destroying"), "{}", a.stdout);
    let d = emu.get(DEP).unwrap();
    assert_eq!(d["metadata"]["uid"], before, "the same Deployment");
    assert_eq!(d["metadata"]["labels"]["slipway.dev/address"], "app.new");
    let s: Value = serde_json::from_str(&sb.read("state/shop.json")).unwrap();
    assert!(s["resources"].get("app.old").is_none() && s["resources"].get("app.new").is_some());
    // Moved again is a no-op, and the entry may stay in the stack.
    let p = sb.run(&["plan", "stacks/shop"]).expect(0);
    assert!(p.stdout.contains("No changes"), "{}", p.stdout);

    // `state mv` does the same outside a plan.
    sb.run(&["state", "mv", "app.new", "app.web", "--stack", "stacks/shop"])
        .expect(0);
    let s: Value = serde_json::from_str(&sb.read("state/shop.json")).unwrap();
    assert!(s["resources"].get("app.web").is_some());
    sb.run(&["state", "mv", "app.web", "k8s_service.web", "--stack", "stacks/shop"])
        .expect(1);
}

#[test]
fn two_resources_rendering_one_object_are_a_validation_error_naming_both() {
    let sb = Sandbox::new();
    sb.write("kubeconfig.yaml", "");
    sb.write(
        "stacks/shop/main.toml",
        &stack(&format!("{}{}", app("web"), app("copy"))),
    );
    let r = sb.run(&["validate", "stacks/shop"]).expect(1);
    assert!(
        r.stderr
            .contains("`app.web` renders Deployment/default/web, which `app.copy`")
            || r.stderr
                .contains("`app.copy` renders Deployment/default/web, which `app.web`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("main.toml:"), "{}", r.stderr);
}

fn deployment(app_label: &str) -> String {
    format!(
        r#"
[k8s_deployment.web]
name = "web"
namespace = "default"
spec = {{ replicas = 1, selector = {{ matchLabels = {{ app = "{app_label}" }} }}, template = {{ metadata = {{ labels = {{ app = "{app_label}" }} }}, spec = {{ containers = [{{ name = "web", image = "nginx:1.27" }}] }} }} }}

[k8s_role_binding.ops]
name = "ops"
namespace = "default"
role_ref = {{ apiGroup = "rbac.authorization.k8s.io", kind = "Role", name = "ops-{app_label}" }}
subjects = [{{ kind = "Group", apiGroup = "rbac.authorization.k8s.io", name = "ops" }}]
"#
    )
}

#[test]
fn a_change_of_an_immutable_field_plans_a_replacement_naming_it_and_applies_with_the_emulator() {
    // The emulator refuses a Deployment's selector or a binding's roleRef
    // changing in place (422), as the apiserver does: slipway plans the
    // replacement instead, and the apply succeeds.
    let (emu, sb) = setup(&deployment("web"));
    let controller = emu.controller();
    sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(0);
    let before = uid(&emu);
    sb.write("stacks/shop/main.toml", &stack(&deployment("web2")));
    let p = sb.run(&["plan", "stacks/shop"]).expect(0);
    for line in [
        "# k8s_deployment.web must be replaced (`manifests[0].spec.selector` forces replacement)",
        "# k8s_role_binding.ops must be replaced (`manifests[0].roleRef` forces replacement)",
        "-/+ k8s_deployment \"web\"",
        "# forces replacement",
    ] {
        assert!(p.stdout.contains(line), "{line}:\n{}", p.stdout);
    }
    sb.run(&["apply", "stacks/shop", "--auto-approve"]).expect(0);
    drop(controller);
    assert_ne!(uid(&emu), before, "a new Deployment");
    assert_eq!(emu.get(DEP).unwrap()["spec"]["selector"]["matchLabels"]["app"], "web2");
    assert_eq!(
        emu.get("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/ops")
            .unwrap()["roleRef"]["name"],
        "ops-web2"
    );
    sb.run(&["plan", "stacks/shop", "--detailed-exitcode"]).expect(0);
}
