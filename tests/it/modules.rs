//! Modules through the built binary, with the `data` kind (no cloud):
//! inputs and defaults, outputs read by the stack, locals and lookups of
//! the module, for_each on a module and inside it, nested modules,
//! `depends_on` a module, `--target` of a module's resource, `[[moved]]`
//! into a module, and the mistakes a module can be written with.

use crate::support;

use support::Sandbox;

const MODULE: &str = r#"
# A service: a bucket and a worker reading it, one per zone.
[variables]
name = { description = "the service's name" }
zones = ["a"]
size = 1

[locals]
full = '${format("%s-svc", var.name)}'

[data.bucket]
input = { name = "${local.full}", size = "${var.size * 10}" }

[data.worker]
for_each = "${var.zones}"
input = { bucket = "${data.bucket.id}", zone = "${each.key}", label = "${local.full}-${each.value}" }

[module.inner]
source = "../inner"
inputs = { owner = "${data.bucket.id}" }

[outputs]
bucket_id = "${data.bucket.id}"
workers = "${data.worker[*].output.zone}"
tag = "${module.inner.tag}"
"#;

const INNER: &str = r#"
[variables]
owner = {}

[data.tag]
input = { owner = "${var.owner}", kind = "inner" }

[outputs]
tag = "${data.tag.output.kind}"
"#;

const STACK: &str = r#"
[stack]
name = "mods"

[variables]
teams = { default = { web = 2, api = 1 } }

[module.web]
source = "../../modules/svc"
inputs = { name = "web", zones = ["a", "b"], size = "${var.teams.web}" }

[module.team]
source = "../../modules/svc"
for_each = "${var.teams}"
inputs = { name = "team-${each.key}", size = "${each.value}" }

[data.reader]
input = { bucket = "${module.web.bucket_id}", workers = "${module.web.workers}", api = '${module.team["api"].tag}' }
depends_on = ["module.team"]

[outputs]
web_bucket = "${module.web.bucket_id}"
"#;

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("modules/svc/main.toml", MODULE);
    sb.write("modules/inner/main.toml", INNER);
    sb.write("stacks/mods/main.toml", STACK);
    sb
}

#[test]
fn a_module_is_flattened_with_its_inputs_outputs_locals_and_for_each() {
    let sb = sandbox();
    sb.run(&["validate", "stacks/mods"]).expect(0);
    let p = sb.run(&["plan", "stacks/mods"]).expect(0);
    // web: bucket, 2 workers, inner tag; team["web"], team["api"]: bucket,
    // 1 worker, inner tag each; the reader.
    assert!(p.stdout.contains("Plan: 11 to add"), "{}", p.stdout);
    for a in [
        "module.web.data.bucket",
        "module.web.data.worker[\"b\"]",
        "module.web.module.inner.data.tag",
        "module.team[\"api\"].data.bucket",
        "module.team[\"web\"].module.inner.data.tag",
    ] {
        assert!(
            p.stdout.contains(&format!("# {a} will be created")),
            "{a}:\n{}",
            p.stdout
        );
    }
    let g = sb.run(&["graph", "stacks/mods"]).expect(0);
    assert!(
        g.stdout.contains("\"data.reader\" -> \"module.web.data.bucket\""),
        "{}",
        g.stdout
    );
    // depends_on = ["module.team"]: after every resource of both instances.
    assert!(
        g.stdout
            .contains("\"data.reader\" -> \"module.team[\\\"web\\\"].data.worker[\\\"a\\\"]\""),
        "{}",
        g.stdout
    );
    assert!(
        g.stdout
            .contains("\"module.web.module.inner.data.tag\" -> \"module.web.data.bucket\""),
        "{}",
        g.stdout
    );

    sb.run(&["apply", "stacks/mods", "--auto-approve"]).expect(0);
    let st = sb.state("mods");
    let r = &st["resources"];
    assert_eq!(r["module.web.data.bucket"]["attributes"]["output"]["name"], "web-svc");
    assert_eq!(r["module.web.data.bucket"]["attributes"]["output"]["size"], 20);
    assert_eq!(
        r["module.team[\"api\"].data.bucket"]["attributes"]["output"]["size"],
        10
    );
    assert_eq!(
        r["module.web.data.worker[\"b\"]"]["attributes"]["output"]["label"],
        "web-svc-b"
    );
    let reader = &r["data.reader"]["attributes"]["output"];
    assert_eq!(reader["bucket"], r["module.web.data.bucket"]["id"]);
    assert_eq!(reader["workers"], serde_json::json!(["a", "b"]));
    assert_eq!(reader["api"], "inner");
    assert_eq!(
        r["module.web.module.inner.data.tag"]["attributes"]["output"]["owner"],
        r["module.web.data.bucket"]["id"]
    );
    assert_eq!(st["outputs"]["web_bucket"]["value"], r["module.web.data.bucket"]["id"]);
    sb.run(&["plan", "stacks/mods", "--detailed-exitcode"]).expect(0);

    // A new key of the module's for_each adds that instance only.
    let p = sb
        .run(&[
            "plan",
            "stacks/mods",
            "--var",
            r#"teams={"web":2,"api":1,"db":1}"#,
            "--detailed-exitcode",
        ])
        .expect(2);
    assert!(
        p.stdout.contains("Plan: 3 to add, 0 to change, 0 to destroy"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("module.team[\"db\"].data.bucket"), "{}", p.stdout);

    // --target a module's resource: it and what it reads.
    let p = sb
        .run(&[
            "plan",
            "stacks/mods",
            "--var",
            r#"teams={"web":3,"api":1}"#,
            "--target",
            "module.team[\"web\"].data.bucket",
        ])
        .expect(0);
    assert!(p.stdout.contains("Plan: 0 to add, 1 to change"), "{}", p.stdout);
}

#[test]
fn a_resource_moved_into_a_module_keeps_its_object() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/m/main.toml",
        "[stack]\nname = \"m\"\n\n[data.bucket]\ninput = { name = \"web-svc\", size = 10 }\n",
    );
    sb.run(&["apply", "stacks/m", "--auto-approve"]).expect(0);
    let id = sb.state("m")["resources"]["data.bucket"]["id"].clone();
    sb.write(
        "modules/b/main.toml",
        "[variables]\nname = {}\n\n[data.bucket]\ninput = { name = \"${var.name}-svc\", size = 10 }\n",
    );
    sb.write(
        "stacks/m/main.toml",
        "[stack]\nname = \"m\"\n\n[module.web]\nsource = \"../../modules/b\"\ninputs = { name = \"web\" }\n\n\
         [[moved]]\nfrom = \"data.bucket\"\nto = \"module.web.data.bucket\"\n",
    );
    let p = sb.run(&["plan", "stacks/m", "--detailed-exitcode"]);
    assert!(
        p.stdout.contains("data.bucket has moved to module.web.data.bucket"),
        "{}",
        p.stdout
    );
    assert!(p.stdout.contains("0 to add, 0 to change, 0 to destroy"), "{}", p.stdout);
    sb.run(&["apply", "stacks/m", "--auto-approve"]).expect(0);
    assert_eq!(sb.state("m")["resources"]["module.web.data.bucket"]["id"], id);
    sb.run(&["plan", "stacks/m", "--detailed-exitcode"]).expect(0);
}

#[test]
fn module_mistakes_are_refused_with_their_place_and_change_nothing() {
    let sb = sandbox();
    let case = |stack: &str, want: &[&str]| {
        sb.write("stacks/bad/main.toml", stack);
        let v = sb.run(&["plan", "stacks/bad"]);
        assert_eq!(v.code, 1, "{stack}\n{}\n{}", v.stdout, v.stderr);
        for w in want {
            assert!(v.stderr.contains(w), "want {w:?} for\n{stack}\ngot:\n{}", v.stderr);
        }
        assert!(!sb.path("state/bad.json").exists());
    };
    case(
        "[module.a]\nsource = \"../../modules/svc\"\ninputs = { nmae = \"x\" }\n",
        &["main.toml:3:", "declares no variable `nmae`", "did you mean `name`?"],
    );
    case(
        "[module.a]\nsource = \"../../modules/svc\"\n",
        &["main.toml:1:", "module.a needs the input `name`", "the service's name"],
    );
    case(
        "[module.a]\nsource = \"../../modules/svc\"\ninputs = { name = \"x\" }\n\n[data.b]\ninput = \"${module.a.bucket}\"\n",
        &["the module has no output `bucket`", "did you mean `module.a.bucket_id`?"],
    );
    case(
        "[module.a]\nsource = \"../../modules/nope\"\n",
        &["main.toml:1:", "module source"],
    );
    case("[module.a]\nsource = \"/etc\"\n", &["outside the repository"]);
    case(
        "[data.b]\ninput = \"${module.zz.out}\"\n",
        &["main.toml:2:", "undeclared module `module.zz`"],
    );
    sb.write("modules/loop/main.toml", "[module.again]\nsource = \".\"\n");
    case(
        "[module.a]\nsource = \"../../modules/loop\"\n",
        &["modules may not include themselves"],
    );
    sb.write("modules/st/main.toml", "[stack]\nname = \"x\"\n");
    case(
        "[module.a]\nsource = \"../../modules/st\"\n",
        &["modules/st/main.toml:1:", "a module cannot declare [stack]"],
    );
    // A mistake inside the module is reported in the module's file.
    sb.write("modules/typo/main.toml", "[data.x]\ninput = \"${data.nope.id}\"\n");
    case(
        "[module.a]\nsource = \"../../modules/typo\"\n",
        &["modules/typo/main.toml:2:", "module.a.data.nope"],
    );
}
