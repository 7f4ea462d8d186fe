//! The engine end to end through the built binary, with the `data` kind
//! (no cloud): plan, apply, update vs replace, destroy, saved plans, locks,
//! corrupted state, failures and kills in the middle of an apply.

use crate::support;

use std::time::Duration;

use support::Sandbox;

const CHAIN: &str = r#"
[stack]
name = "demo"

[variables]
env = "dev"

[data.network]
input = { cidr = "10.0.0.0/16", env = "${var.env}" }

[data.cluster]
input = { name = "blog-${var.env}", network = "${data.network.id}" }
replace_on_change = ["${data.network.output.cidr}"]

[data.app]
input = "${data.cluster.output.name}"

[outputs]
cluster = "${data.cluster.output.name}"
"#;

fn demo() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("stacks/demo/main.toml", CHAIN);
    sb
}

fn id_of(sb: &Sandbox, addr: &str) -> String {
    sb.state("demo")["resources"][addr]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn plan_apply_then_plan_again_shows_no_changes() {
    let sb = demo();
    let p = sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("+ data \"network\""), "{}", p.stdout);
    assert!(p.stdout.contains("(known after apply)"));
    assert!(p.stdout.contains("Plan: 3 to add, 0 to change, 0 to destroy."));
    assert!(!sb.exists("state/demo.json"), "plan must not write a state");

    let a = sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    assert!(
        a.stdout
            .contains("Apply complete! Resources: 3 added, 0 changed, 0 destroyed."),
        "{}",
        a.stdout
    );
    assert!(a.stdout.contains("cluster = \"blog-dev\""));

    let again = sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(0);
    assert!(again.stdout.contains("No changes."));

    let st = sb.state("demo");
    assert_eq!(st["format_version"], 1);
    assert_eq!(st["serial"], 1);
    assert_eq!(
        st["resources"]["data.cluster"]["dependencies"],
        serde_json::json!(["data.network"])
    );
    assert_eq!(
        st["resources"]["data.cluster"]["attributes"]["input"]["network"],
        st["resources"]["data.network"]["id"]
    );
    assert!(
        !sb.exists("state/demo.json.journal"),
        "the journal is removed after the snapshot is written"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sb.path("state/demo.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn changing_input_updates_in_place_but_replace_on_change_forces_replacement() {
    let sb = demo();
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    let (net, cluster) = (id_of(&sb, "data.network"), id_of(&sb, "data.cluster"));

    // env changes input only: update in place, IDs kept.
    let p = sb.run(&["plan", "stacks/demo", "--var", "env=prod"]).expect(0);
    assert!(
        p.stdout.contains("# data.network will be updated in place"),
        "{}",
        p.stdout
    );
    // Aligned on "=" with the block's other paths, as Terraform does.
    assert!(
        p.stdout
            .contains("~ input.env  = \"dev\" -> \"prod\"\n      ~ output.env = \"dev\" -> \"prod\""),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("Plan: 0 to add, 3 to change, 0 to destroy."));
    sb.run(&["apply", "stacks/demo", "--auto-approve", "--var", "env=prod"])
        .expect(0);
    assert_eq!(id_of(&sb, "data.network"), net);
    assert_eq!(id_of(&sb, "data.cluster"), cluster);
    assert_eq!(sb.state("demo")["outputs"]["cluster"]["value"], "blog-prod");

    // The cidr feeds replace_on_change: the cluster is replaced, naming the field.
    sb.write("stacks/demo/main.toml", &CHAIN.replace("10.0.0.0/16", "10.1.0.0/16"));
    let p = sb.run(&["plan", "stacks/demo", "--var", "env=prod"]).expect(0);
    assert!(
        p.stdout
            .contains("# data.cluster must be replaced (`replace_on_change` forces replacement)"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("-/+ data \"cluster\""));
    assert!(p.stdout.contains("# forces replacement"));
    // data.app reads the cluster's name, known at plan time and unchanged: no-op.
    assert!(
        p.stdout.contains("Plan: 1 to add, 1 to change, 1 to destroy."),
        "{}",
        p.stdout
    );
    sb.run(&["apply", "stacks/demo", "--auto-approve", "--var", "env=prod"])
        .expect(0);
    assert_eq!(id_of(&sb, "data.network"), net);
    assert_ne!(id_of(&sb, "data.cluster"), cluster);
    sb.run(&["plan", "stacks/demo", "--var", "env=prod", "--detailed-exitcode"])
        .expect(0);
}

#[test]
fn destroy_deletes_dependents_before_their_dependencies() {
    let sb = demo();
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    let d = sb.run(&["destroy", "stacks/demo", "--auto-approve"]).expect(0);
    let pos = |s: &str| {
        d.stdout
            .find(&format!("{s}: Destruction complete"))
            .unwrap_or_else(|| panic!("{}", d.stdout))
    };
    assert!(pos("data.app") < pos("data.cluster"));
    assert!(pos("data.cluster") < pos("data.network"));
    assert!(d.stdout.contains("0 added, 0 changed, 3 destroyed"));
    assert_eq!(sb.state("demo")["resources"], serde_json::json!({}));
    sb.run(&["plan", "stacks/demo", "--destroy", "--detailed-exitcode"])
        .expect(0);
}

#[test]
fn removing_a_resource_from_the_stack_plans_its_delete() {
    let sb = demo();
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    let without_app = CHAIN.replace("[data.app]\ninput = \"${data.cluster.output.name}\"\n", "");
    sb.write("stacks/demo/main.toml", &without_app);
    let p = sb.run(&["plan", "stacks/demo", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("# data.app will be destroyed"), "{}", p.stdout);
    assert!(p.stdout.contains("Plan: 0 to add, 0 to change, 1 to destroy."));
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    assert!(sb.state("demo")["resources"].get("data.app").is_none());
}

#[test]
fn a_cycle_is_reported_with_every_address_and_where_each_reference_is() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/c/a.toml",
        "[data.a]\ninput = \"${data.c.output}\"\n\n[data.b]\ninput = \"${data.a.id}\"\n",
    );
    sb.write("stacks/c/b.toml", "[data.c]\ninput = { x = \"${data.b.output}\" }\n");
    let r = sb.run(&["plan", "stacks/c"]).expect(1);
    assert!(
        r.stderr.contains("dependency cycle between data.a, data.b, data.c"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("data.a refers to data.c at stacks/c/a.toml:2:10 (${data.c.output})"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("data.b refers to data.a at stacks/c/a.toml:5:10 (${data.a.id})"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("data.c refers to data.b at stacks/c/b.toml:2:16 (${data.b.output})"),
        "{}",
        r.stderr
    );
    assert!(!sb.exists("state"), "nothing may be written");
}

#[test]
fn a_saved_plan_applies_exactly_and_a_stale_one_is_refused() {
    let sb = demo();
    // A plan made from an empty state is refused once the state has been applied.
    sb.run(&["plan", "stacks/demo", "--out", "first.plan"]).expect(0);
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    let before = sb.read("state/demo.json");
    let r = sb.run(&["apply", "first.plan"]).expect(1);
    assert!(r.stderr.contains("stale"), "{}", r.stderr);
    assert!(r.stderr.contains("made from an empty state"), "{}", r.stderr);
    assert_eq!(sb.read("state/demo.json"), before);

    // A fresh saved plan applies; the same plan again is stale (serial moved).
    sb.run(&["plan", "stacks/demo", "--var", "env=prod", "--out", "prod.plan"])
        .expect(0);
    // The stack file changing after the plan: the plan is refused, nothing changes.
    let original = sb.read("stacks/demo/main.toml");
    sb.write("stacks/demo/main.toml", &CHAIN.replace("blog-", "other-"));
    let r = sb.run(&["apply", "prod.plan"]).expect(1);
    assert!(r.stderr.contains("changed since the plan was made"), "{}", r.stderr);
    assert_eq!(sb.read("state/demo.json"), before);
    // A plan file edited after it was written: its digest no longer matches.
    let saved = sb.read("prod.plan");
    sb.write("stacks/demo/main.toml", &original);
    sb.write("edited.plan", &saved.replace("blog-prod", "evil-prod"));
    let r = sb.run(&["apply", "edited.plan"]).expect(1);
    assert!(r.stderr.contains("digest does not match"), "{}", r.stderr);
    assert_eq!(sb.read("state/demo.json"), before);
    let a = sb.run(&["apply", "prod.plan"]).expect(0);
    assert!(a.stdout.contains("0 added, 3 changed, 0 destroyed"), "{}", a.stdout);
    assert_eq!(sb.state("demo")["outputs"]["cluster"]["value"], "blog-prod");
    let r = sb.run(&["apply", "prod.plan"]).expect(1);
    assert!(r.stderr.contains("made at state serial 1"), "{}", r.stderr);
    assert!(r.stderr.contains("now at serial 2"), "{}", r.stderr);
}

#[test]
fn a_second_concurrent_apply_is_refused_by_the_lock_naming_the_holder() {
    let sb = Sandbox::new();
    sb.write("stacks/slow/main.toml", "[data.s]\ninput = 1\ndelay = \"3s\"\n");
    let mut first = sb
        .command(&["apply", "stacks/slow", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let lock = sb.path("state/slow.json.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = sb.run(&["apply", "stacks/slow", "--auto-approve"]).expect(1);
    assert!(r.stderr.contains("is locked"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("pid {}", first.id())), "{}", r.stderr);
    assert!(r.stderr.contains("for `apply`"), "{}", r.stderr);
    assert!(r.stderr.contains("slipway force-unlock"), "{}", r.stderr);
    // With a lock timeout the second run waits for the first and then succeeds.
    sb.run(&["plan", "stacks/slow", "--lock-timeout", "60s", "--detailed-exitcode"])
        .expect(0);
    assert!(first.wait().expect("wait").success());
}

#[test]
fn a_corrupted_or_newer_state_is_refused_and_left_byte_for_byte() {
    for (content, needle) in [
        (
            &b"{\"format_version\": 1, \"lineage\": \"x\", \"serial\": 3, \"resou"[..],
            "is not valid slipway state",
        ),
        (
            &b"{\"format_version\": 7, \"lineage\": \"x\", \"serial\": 3}"[..],
            "newer than this slipway understands",
        ),
        (&b"\x00\xff garbage"[..], "is not valid slipway state"),
    ] {
        let sb = demo();
        std::fs::create_dir_all(sb.path("state")).unwrap();
        std::fs::write(sb.path("state/demo.json"), content).unwrap();
        for args in [
            &["plan", "stacks/demo"][..],
            &["apply", "stacks/demo", "--auto-approve"],
            &["destroy", "stacks/demo", "--auto-approve"],
        ] {
            let r = sb.run(args).expect(1);
            assert!(r.stderr.contains(needle), "{}", r.stderr);
            assert!(r.stderr.contains("left unchanged"), "{}", r.stderr);
            assert_eq!(std::fs::read(sb.path("state/demo.json")).unwrap(), content);
            assert!(!sb.exists("state/demo.json.backup"));
            assert!(
                !sb.exists("state/demo.json.lock"),
                "the lock is released after an error"
            );
        }
    }
}

#[test]
fn a_failing_resource_leaves_the_finished_ones_in_state() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/f/main.toml",
        r#"
[data.first]
input = "ok"

[data.broken]
input = "${data.first.id}"
fail = "the API said no"

[data.after_broken]
input = "${data.broken.id}"

[data.independent]
input = "fine"
"#,
    );
    let r = sb
        .run(&["apply", "stacks/f", "--auto-approve", "--parallelism", "1"])
        .expect(1);
    assert!(
        // The error names where the resource is declared.
        r.stderr
            .contains("data.broken: Creation failed (declared at stacks/f/main.toml:5:7): the API said no"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Apply failed: 1 step(s) failed"), "{}", r.stderr);
    assert!(r.stderr.contains("not started: data.after_broken"), "{}", r.stderr);
    let st = sb.state("f");
    let mut have: Vec<&String> = st["resources"].as_object().unwrap().keys().collect();
    have.sort();
    assert!(have.contains(&&"data.first".to_string()));
    assert!(!have.contains(&&"data.broken".to_string()));
    assert!(!have.contains(&&"data.after_broken".to_string()));
    assert_eq!(st["pending"], serde_json::json!([]));

    // Fixing the failure and applying again creates only what is missing.
    sb.write(
        "stacks/f/main.toml",
        &sb.read("stacks/f/main.toml")
            .replace("fail = \"the API said no\"\n", ""),
    );
    let first_id = st["resources"]["data.first"]["id"].clone();
    let p = sb.run(&["apply", "stacks/f", "--auto-approve"]).expect(0);
    assert!(
        p.stdout.contains("Resources: 2 added") || p.stdout.contains("Resources: 3 added"),
        "{}",
        p.stdout
    );
    assert_eq!(sb.state("f")["resources"]["data.first"]["id"], first_id);
}

#[test]
fn a_resource_starts_as_soon_as_its_own_dependencies_are_done() {
    // slow has no dependents; quick -> after_quick must not wait for slow.
    let sb = Sandbox::new();
    sb.write(
        "stacks/p/main.toml",
        r#"
[data.slow]
input = 1
delay = "1500ms"

[data.quick]
input = 2

[data.after_quick]
input = "${data.quick.id}"
"#,
    );
    let r = sb.run(&["apply", "stacks/p", "--auto-approve"]).expect(0);
    let pos = |s: &str| {
        r.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing in {}", r.stdout))
    };
    assert!(
        pos("data.after_quick: Creation complete") < pos("data.slow: Creation complete"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_killed_apply_is_replayed_and_settled_without_duplicates() {
    let sb = Sandbox::new();
    let mut toml = String::new();
    for i in 0..40 {
        let input = if i == 0 {
            "\"root\"".to_string()
        } else {
            format!("\"${{data.r{}.id}}\"", (i - 1) / 2)
        };
        toml.push_str(&format!("[data.r{i}]\ninput = {input}\ndelay = \"150ms\"\n\n"));
    }
    sb.write("stacks/k/main.toml", &toml);
    let mut child = sb
        .command(&["apply", "stacks/k", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let journal = sb.path("state/k.json.journal");
    let t0 = std::time::Instant::now();
    // Kill once some resources are done and others are in flight.
    while sb.read("state/k.json.journal").matches("\"t\":\"done\"").count() < 5
        && t0.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(journal.exists(), "a killed run leaves its journal");
    assert!(
        !sb.exists("state/k.json"),
        "no snapshot yet: everything is in the journal"
    );
    // The dead holder's lock is taken over: no force-unlock needed.
    let p = sb.run(&["plan", "stacks/k"]).expect(0);
    assert!(
        p.stderr.contains("Took over the lock") && p.stderr.contains("no longer running on this host"),
        "{}",
        p.stderr
    );
    assert!(
        p.stdout.contains("replayed the journal of an interrupted run"),
        "{}",
        p.stdout
    );
    let st = sb.state("k");
    let done = st["resources"].as_object().unwrap().len();
    assert!(done >= 5, "finished resources survive the kill: {done}");
    assert_eq!(st["pending"], serde_json::json!([]), "every pending intent is settled");
    assert!(!journal.exists());
    assert!(
        p.stdout
            .contains(&format!("Plan: {} to add, 0 to change, 0 to destroy.", 40 - done)),
        "{}",
        p.stdout
    );
    let kept: Vec<String> = st["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["id"].to_string())
        .collect();

    sb.run(&["apply", "stacks/k", "--auto-approve", "--parallelism", "40"])
        .expect(0);
    let st = sb.state("k");
    assert_eq!(st["resources"].as_object().unwrap().len(), 40);
    let ids: Vec<String> = st["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["id"].to_string())
        .collect();
    for k in kept {
        assert!(
            ids.contains(&k),
            "a resource finished before the kill was not recreated"
        );
    }
    sb.run(&["plan", "stacks/k", "--detailed-exitcode"]).expect(0);
}

#[test]
fn apply_asks_for_confirmation_and_only_yes_applies() {
    let sb = demo();
    let r = sb.run(&["apply", "stacks/demo"]).expect(1);
    assert!(r.stderr.contains("--auto-approve"), "{}", r.stderr);
    sb.run_with_input(&["apply", "stacks/demo"], "no\n").expect(1);
    assert!(!sb.exists("state/demo.json"));
    let r = sb.run_with_input(&["apply", "stacks/demo"], "yes\n").expect(0);
    assert!(r.stdout.contains("Apply complete!"));
}

#[test]
fn variables_come_from_var_then_environment_then_default() {
    let sb = demo();
    let out = |r: support::Run| r.stdout;
    let p = out(sb
        .command(&["plan", "stacks/demo"])
        .env("SLIPWAY_VAR_env", "staging")
        .output()
        .map(|o| support::Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        })
        .unwrap());
    assert!(p.contains("\"blog-staging\""), "{p}");
    let o = sb
        .command(&["plan", "stacks/demo", "--var", "env=cli"])
        .env("SLIPWAY_VAR_env", "staging")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"blog-cli\""));
    let p = sb.run(&["plan", "stacks/demo"]).expect(0);
    assert!(p.stdout.contains("\"blog-dev\""));
}

#[test]
fn plan_json_is_machine_readable() {
    let sb = demo();
    let r = sb.run(&["plan", "stacks/demo", "--json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("plan --json prints JSON");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["summary"], serde_json::json!({"add": 3, "change": 0, "destroy": 0}));
    let net = &doc["resource_changes"][0];
    assert_eq!(net["address"], "data.network");
    assert_eq!(net["action"], "create");
    assert_eq!(net["after"]["id"], serde_json::Value::Null);
    assert!(net["after_unknown"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("id")));
    let cluster = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "data.cluster")
        .unwrap();
    assert!(cluster["after_unknown"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("input.network")));
}

#[test]
fn state_output_and_graph_commands() {
    let sb = demo();
    sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    let l = sb.run(&["state", "list"]).expect(0);
    assert_eq!(l.stdout, "data.app\ndata.cluster\ndata.network\n");
    let s = sb.run(&["state", "show", "data.cluster"]).expect(0);
    assert!(s.stdout.contains("data \"cluster\" {"), "{}", s.stdout);
    assert!(s.stdout.contains("# depends on: data.network"));
    sb.run(&["state", "show", "data.clustr"]).expect(1);
    let o = sb.run(&["output", "stacks/demo"]).expect(0);
    assert_eq!(o.stdout, "cluster = \"blog-dev\"\n");
    let o = sb.run(&["output", "stacks/demo", "cluster"]).expect(0);
    assert_eq!(o.stdout, "blog-dev\n");
    let g = sb.run(&["graph", "stacks/demo"]).expect(0);
    assert!(g.stdout.starts_with("digraph \"demo\" {"), "{}", g.stdout);
    assert!(g.stdout.contains("\"data.cluster\" -> \"data.network\";"));
    assert!(g.stdout.contains("\"data.app\" -> \"data.cluster\";"));

    let r = sb.run(&["state", "rm", "data.app", "data.nope"]).expect(1);
    assert!(r.stderr.contains("data.nope"), "{}", r.stderr);
    assert!(
        sb.state("demo")["resources"].get("data.app").is_some(),
        "nothing removed on error"
    );
    sb.run(&["state", "rm", "data.app"]).expect(0);
    assert!(sb.state("demo")["resources"].get("data.app").is_none());
    assert!(sb.exists("state/demo.json.backup"));
    let p = sb.run(&["plan", "stacks/demo"]).expect(0);
    assert!(
        p.stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
}

#[test]
fn create_before_destroy_makes_the_new_object_before_deleting_the_old() {
    let sb = Sandbox::new();
    let stack = |v: &str| {
        format!(
            "[data.pool]\ninput = \"{v}\"\nreplace_on_change = \"{v}\"\nlifecycle = {{ create_before_destroy = true }}\n\n[data.user]\ninput = \"${{data.pool.id}}\"\n"
        )
    };
    sb.write("stacks/cbd/main.toml", &stack("a"));
    sb.run(&["apply", "stacks/cbd", "--auto-approve"]).expect(0);
    let old = sb.state("cbd")["resources"]["data.pool"]["id"].clone();
    sb.write("stacks/cbd/main.toml", &stack("b"));
    let p = sb.run(&["plan", "stacks/cbd"]).expect(0);
    assert!(
        p.stdout.contains("forces replacement, new object first"),
        "{}",
        p.stdout
    );
    let r = sb.run(&["apply", "stacks/cbd", "--auto-approve"]).expect(0);
    let pos = |s: &str| {
        r.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing in {}", r.stdout))
    };
    assert!(
        pos("data.pool: Creation complete") < pos("data.user: Modifications complete"),
        "{}",
        r.stdout
    );
    assert!(
        pos("data.user: Modifications complete") < pos("data.pool: Destruction complete"),
        "{}",
        r.stdout
    );
    let st = sb.state("cbd");
    assert_ne!(st["resources"]["data.pool"]["id"], old);
    assert_eq!(
        st["resources"]["data.user"]["attributes"]["output"],
        st["resources"]["data.pool"]["id"]
    );
    assert!(st.get("deposed").is_none(), "the old object is gone: {st}");
    sb.run(&["plan", "stacks/cbd", "--detailed-exitcode"]).expect(0);
}

#[test]
fn sensitive_outputs_are_hidden_unless_asked_for_by_name() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/o/main.toml",
        "[data.a]\ninput = \"s3cr3t\"\n\n[outputs]\nplain = \"${data.a.id}\"\nhidden = { value = \"${data.a.output}\", sensitive = true }\n",
    );
    let a = sb.run(&["apply", "stacks/o", "--auto-approve"]).expect(0);
    assert!(a.stdout.contains("hidden = \"(sensitive)\""), "{}", a.stdout);
    let o = sb.run(&["output", "stacks/o"]).expect(0);
    assert!(
        o.stdout.contains("hidden = \"(sensitive)\"") && !o.stdout.contains("s3cr3t"),
        "{}",
        o.stdout
    );
    assert_eq!(sb.run(&["output", "stacks/o", "hidden"]).expect(0).stdout, "s3cr3t\n");
}

#[test]
fn an_operation_over_its_time_limit_fails_and_is_settled_by_the_next_run() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/t/main.toml",
        "[data.slow]\ninput = 1\ndelay = \"5s\"\ntimeouts = { create = \"300ms\" }\n\n[data.quick]\ninput = 2\n",
    );
    let r = sb.run(&["apply", "stacks/t", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("create of data.slow timed out after 300ms"),
        "{}",
        r.stderr
    );
    let st = sb.state("t");
    assert_eq!(
        st["pending"][0]["address"], "data.slow",
        "the outcome is unknown: the intent stays pending"
    );
    let p = sb.run(&["plan", "stacks/t"]).expect(0);
    assert!(
        p.stdout
            .contains("data.slow: the interrupted create made nothing; forgot it"),
        "{}",
        p.stdout
    );

    sb.write("stacks/t/main.toml", "[data.slow]\ninput = 1\ndelay = \"5s\"\n");
    let r = sb
        .run(&["apply", "stacks/t", "--auto-approve", "--timeout", "200ms"])
        .expect(1);
    assert!(r.stderr.contains("timed out after 200ms"), "{}", r.stderr);
    let r = sb.run(&["plan", "stacks/t", "--var", "x=1"]).expect(1);
    assert!(r.stderr.contains("declares no variable"), "{}", r.stderr);
    sb.write(
        "stacks/t/main.toml",
        "[data.slow]\ninput = 1\ntimeouts = { craete = \"1m\" }\n",
    );
    let r = sb.run(&["plan", "stacks/t"]).expect(1);
    assert!(
        r.stderr
            .contains("stacks/t/main.toml:3:14: error: unknown timeout `craete`"),
        "{}",
        r.stderr
    );
}

#[test]
fn ctrl_c_finishes_the_running_steps_saves_the_state_and_releases_the_lock() {
    let sb = Sandbox::new();
    let mut toml = String::new();
    for i in 0..30 {
        toml.push_str(&format!("[data.r{i}]\ninput = \"v{i}\"\ndelay = \"300ms\"\n\n"));
    }
    sb.write("stacks/c/main.toml", &toml);
    let child = sb
        .command(&["apply", "stacks/c", "--auto-approve", "--parallelism", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = std::time::Instant::now();
    while (!sb.exists("state/c.json.journal") || sb.read("state/c.json.journal").matches("\"t\":\"done\"").count() < 3)
        && t0.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Ctrl-C, as a terminal sends it, to the process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Interrupted: no new step starts"), "{stderr}");
    assert!(stderr.contains("the lock is released"), "{stderr}");
    assert!(!sb.exists("state/c.json.lock"), "the lock is gone");
    assert!(!sb.exists("state/c.json.journal"), "everything is in the snapshot");
    let st = sb.state("c");
    let done = st["resources"].as_object().unwrap().len();
    assert!((3..30).contains(&done), "the finished steps are in the state: {done}");
    assert_eq!(st["pending"], serde_json::json!([]), "no step was left half-way");
    let a = sb.run(&["apply", "stacks/c", "--auto-approve"]).expect(0);
    assert!(a.stdout.contains(&format!("{} added", 30 - done)), "{}", a.stdout);
}

#[test]
fn a_forced_unlock_while_the_holder_runs_makes_the_late_writer_fail_and_loses_nothing() {
    let sb = Sandbox::new();
    let slow = "[data.slow]\ninput = 1\ndelay = \"4s\"\n";
    sb.write("stacks/race/main.toml", slow);
    let first = sb
        .command(&["apply", "stacks/race", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let lock = sb.path("state/race.json.lock");
    let t0 = std::time::Instant::now();
    while !sb.read("state/race.json.lock").contains("\"id\"") && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let info: serde_json::Value = serde_json::from_str(&sb.read("state/race.json.lock")).expect("lock info");
    let id = info["id"].as_str().unwrap().to_string();
    // Refused while the holder is alive on this host...
    let r = sb.run(&["force-unlock", &id, "--stack", "stacks/race"]).expect(1);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert!(lock.exists(), "the lock is kept");
    // ... and forced anyway, a second run starts and finishes first.
    sb.run(&["force-unlock", &id, "--stack", "stacks/race", "--force"])
        .expect(0);
    sb.write("stacks/race/main.toml", &format!("{slow}\n[data.fast]\ninput = 2\n"));
    let second = sb.run(&["apply", "stacks/race", "--auto-approve"]);
    let out = first.wait_with_output().expect("wait");
    let first_err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    // The late writer fails instead of rolling the state back.
    assert_eq!(out.status.code(), Some(1), "{first_err}");
    assert!(first_err.contains("written by another run"), "{first_err}");
    let st = sb.state("race");
    let resources = st["resources"].as_object().unwrap();
    assert!(
        resources.contains_key("data.fast") && resources.contains_key("data.slow"),
        "{st}"
    );
    // Nothing is left to create: no resource was lost from the state.
    sb.run(&["plan", "stacks/race", "--detailed-exitcode"]).expect(0);
}

#[test]
fn target_plans_and_applies_a_resource_with_its_dependencies_and_destroys_it_with_its_dependents() {
    let sb = demo();
    let p = sb.run(&["plan", "stacks/demo", "--target", "data.cluster"]).expect(0);
    assert!(
        p.stdout.contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    assert!(!p.stdout.contains("data \"app\""), "{}", p.stdout);
    assert!(
        p.stdout.contains("Resource targeting is in effect") || p.stderr.contains("Resource targeting is in effect"),
        "{}{}",
        p.stdout,
        p.stderr
    );
    sb.run(&["apply", "stacks/demo", "--target", "data.cluster", "--auto-approve"])
        .expect(0);
    let st = sb.state("demo");
    assert!(st["resources"].get("data.network").is_some());
    assert!(st["resources"].get("data.cluster").is_some());
    assert!(st["resources"].get("data.app").is_none(), "{st}");

    let a = sb.run(&["apply", "stacks/demo", "--auto-approve"]).expect(0);
    assert!(a.stdout.contains("1 added, 0 changed, 0 destroyed"), "{}", a.stdout);

    // Destroying the cluster takes the app (it reads the cluster), not the network.
    let d = sb
        .run(&["destroy", "stacks/demo", "--target", "data.cluster", "--auto-approve"])
        .expect(0);
    assert!(d.stdout.contains("0 added, 0 changed, 2 destroyed"), "{}", d.stdout);
    let st = sb.state("demo");
    assert!(st["resources"].get("data.network").is_some(), "{st}");
    assert!(st["resources"].get("data.cluster").is_none());
    assert!(st["resources"].get("data.app").is_none());

    let bad = sb.run(&["plan", "stacks/demo", "--target", "data.nope"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--target data.nope"), "{}", bad.stderr);
}

#[test]
fn output_changes_alone_are_planned_shown_counted_in_the_exit_code_and_applied() {
    let sb = Sandbox::new();
    let base = "[stack]\nname = \"outs\"\n\n[variables]\npw = { default = \"hunter2secret\", sensitive = true }\n\n[data.a]\ninput = \"one\"\n";
    sb.write("stacks/outs/main.toml", base);
    sb.run(&["apply", "stacks/outs", "--auto-approve"]).expect(0);
    sb.write(
        "stacks/outs/main.toml",
        &format!("{base}\n[outputs]\nfirst = \"${{data.a.output}}\"\nsecret = {{ value = \"${{var.pw}}\", sensitive = true }}\n"),
    );
    let p = sb.run(&["plan", "stacks/outs", "--detailed-exitcode"]).expect(2);
    assert!(
        p.stdout.contains("Plan: 0 to add, 0 to change, 0 to destroy."),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("Changes to Outputs:"), "{}", p.stdout);
    assert!(p.stdout.contains("  + first = \"one\""), "{}", p.stdout);
    assert!(p.stdout.contains("  + secret = (sensitive value)"), "{}", p.stdout);
    assert!(!p.stdout.contains("hunter2secret"), "{}", p.stdout);
    let j = sb.run(&["plan", "stacks/outs", "--json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["output_changes"][0]["name"], "first");
    assert_eq!(doc["output_changes"][0]["action"], "create");
    sb.run(&["apply", "stacks/outs", "--auto-approve"]).expect(0);
    assert_eq!(sb.state("outs")["outputs"]["first"]["value"], "one");
    sb.run(&["plan", "stacks/outs", "--detailed-exitcode"]).expect(0);
    // A removed output goes too.
    sb.write(
        "stacks/outs/main.toml",
        &format!("{base}\n[outputs]\nsecret = {{ value = \"${{var.pw}}\", sensitive = true }}\n"),
    );
    let p = sb.run(&["plan", "stacks/outs", "--detailed-exitcode"]).expect(2);
    assert!(p.stdout.contains("  - first = \"one\""), "{}", p.stdout);
    sb.run(&["apply", "stacks/outs", "--auto-approve"]).expect(0);
    assert!(sb.state("outs")["outputs"].get("first").is_none());
    sb.run(&["plan", "stacks/outs", "--detailed-exitcode"]).expect(0);
}
