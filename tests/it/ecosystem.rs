//! What a team expects around the binary: shell completions and a man page
//! that their shells and `man` read, a JSON Schema editors check stack files
//! with, `slipway fmt` for CI, and `render` output in kubectl's YAML and JSON.

use crate::support::{self, Sandbox};

/// Every stack and module file of the repository (not env/ value files).
fn stack_files() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("env") {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for d in ["stacks", "modules"] {
        walk(&support::repo().join(d), &mut out);
    }
    out.sort();
    out
}

#[test]
fn completions_parse_in_bash_and_name_every_command_and_the_man_page_renders_with_groff() {
    let sb = Sandbox::new();
    let bash = sb.run(&["completions", "bash"]).expect(0);
    sb.write("slipway.bash", &bash.stdout);
    let parsed = std::process::Command::new("bash")
        .arg("-n")
        .arg(sb.path("slipway.bash"))
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    // Sourced, it registers a completion function for slipway.
    let registered = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p slipway",
            sb.path("slipway.bash").display()
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&registered.stdout).contains("slipway"),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = sb.run(&["completions", shell]).expect(0);
        for cmd in ["plan", "apply", "destroy", "drift", "fmt", "schema", "render"] {
            assert!(r.stdout.contains(cmd), "{shell} completions lack {cmd}");
        }
    }
    sb.run(&["completions", "tcsh"]).expect(1);

    let man = sb.run(&["man"]).expect(0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH slipway 1"),
        "{}",
        man.stdout
    );
    sb.write("slipway.1", &man.stdout);
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .arg(sb.path("slipway.1"))
        .output()
        .expect("groff (Debian groff-base) renders man pages; .ci/run installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SYNOPSIS") && text.contains("drift"), "{text}");
    // One page per command with --out.
    sb.run(&["man", "--out", "man"]).expect(0);
    for page in ["slipway.1", "slipway-plan.1", "slipway-apply.1", "slipway-fmt.1"] {
        assert!(sb.exists(&format!("man/{page}")), "{page}");
    }
}

/// Validate TOML files against a JSON Schema with Python's jsonschema (the
/// validator editors' language servers follow: draft 2020-12), printing one
/// line per file: `ok PATH` or `bad PATH: message`.
const VALIDATE: &str = r#"
import json, sys, tomllib
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        print("bad", path + ":", "/".join(map(str, e.path)), e.message[:200])
    else:
        print("ok", path)
"#;

fn validate(sb: &Sandbox, files: &[std::path::PathBuf]) -> String {
    sb.write("validate.py", VALIDATE);
    let out = std::process::Command::new("python3")
        .arg(sb.path("validate.py"))
        .arg(sb.path("schema.json"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "jsonschema (installed with kubernetes-validate): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_json_schema_accepts_every_stack_file_of_the_repository_and_rejects_broken_ones() {
    let sb = Sandbox::new();
    let schema = sb.run(&["schema"]).expect(0);
    sb.write("schema.json", &schema.stdout);
    // The copy editors in this repository use (.taplo.toml) is today's.
    let shipped = std::fs::read_to_string(support::repo().join("docs/stack.schema.json")).unwrap();
    assert!(
        shipped == schema.stdout,
        "docs/stack.schema.json is stale: run `slipway schema > docs/stack.schema.json`"
    );
    // So is the kinds' reference generated from the same types.
    let md = sb.run(&["schema", "--markdown"]).expect(0).stdout;
    let shipped_md = std::fs::read_to_string(support::repo().join("docs/kinds.md")).unwrap();
    assert!(
        shipped_md == md,
        "docs/kinds.md is stale: run `slipway schema --markdown > docs/kinds.md`"
    );
    for kind in [
        "## `vpc`",
        "## `app`",
        "## `k8s_namespace`",
        "| `cidr` | string | required |",
    ] {
        assert!(md.contains(kind), "{kind}:\n{md}");
    }
    let files = stack_files();
    assert!(files.len() >= 10, "{files:?}");
    let report = validate(&sb, &files);
    assert_eq!(report.matches("ok ").count(), files.len(), "{report}");

    let broken = [
        ("unknown field", "[vpc.main]\ncidr = \"10.0.0.0/16\"\ncidr_block = \"10.0.0.0/16\"\n"),
        ("unknown kind", "[vcp.main]\ncidr = \"10.0.0.0/16\"\n"),
        ("wrong type", "[app.api]\nnamespace = \"a\"\nimage = \"x\"\nport = \"eighty\"\ncpu_request = \"1\"\nmemory_request = \"1Gi\"\ncpu_limit = \"1\"\nmemory_limit = \"1Gi\"\nhealth_path = \"/\"\n"),
        ("missing field", "[subnet.a]\ncidr = \"10.0.1.0/24\"\n"),
        ("variable field", "[variables.x]\ndefualt = 1\n"),
        ("meta field", "[vpc.main]\ncidr = \"10.0.0.0/16\"\ndepends_on = \"vpc.other\"\n"),
    ];
    let mut paths = Vec::new();
    for (i, (_, text)) in broken.iter().enumerate() {
        sb.write(&format!("broken{i}.toml"), text);
        paths.push(sb.path(&format!("broken{i}.toml")));
    }
    // An expression stands for any type, as slipway reads it.
    sb.write(
        "expr.toml",
        "[app.api]\nnamespace = \"a\"\nimage = \"x\"\nport = \"${var.port}\"\nreplicas = \"${var.n}\"\ncpu_request = \"1\"\nmemory_request = \"1Gi\"\ncpu_limit = \"1\"\nmemory_limit = \"1Gi\"\nhealth_path = \"/\"\n",
    );
    paths.push(sb.path("expr.toml"));
    let report = validate(&sb, &paths);
    let lines: Vec<&str> = report.lines().collect();
    for (i, (what, _)) in broken.iter().enumerate() {
        assert!(lines[i].starts_with("bad "), "{what} was accepted: {report}");
    }
    assert!(lines[broken.len()].starts_with("ok "), "{report}");
    // slipway itself refuses the same files.
    for (i, (what, _)) in broken.iter().enumerate() {
        sb.write(&format!("stacks/b{i}/main.toml"), &sb.read(&format!("broken{i}.toml")));
        let r = sb.run(&["validate", &format!("stacks/b{i}")]);
        assert_eq!(r.code, 1, "{what}: slipway accepted it: {}", r.stdout);
    }
}

#[test]
fn fmt_check_passes_on_the_repository_and_fails_on_a_misformatted_copy_which_fmt_then_fixes() {
    let sb = Sandbox::new();
    let root = support::repo();
    let r = sb
        .run(&[
            "fmt",
            "--check",
            root.join("stacks").to_str().unwrap(),
            root.join("modules").to_str().unwrap(),
        ])
        .expect(0);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    let original = std::fs::read_to_string(root.join("stacks/blog/network.toml")).unwrap();
    // Spacing around `=` and in an inline table, trailing blanks.
    let messy = original
        .replacen(" = ", "   =  ", 3)
        .replacen("\n[", "  \n[", 1)
        .replacen("{ ", "{", 1);
    assert_ne!(messy, original);
    sb.write("stacks/blog/network.toml", &messy);
    let check = sb.run(&["fmt", "--check", "stacks"]).expect(1);
    assert!(check.stdout.contains("network.toml"), "{}", check.stdout);
    assert!(check.stderr.contains("need `slipway fmt`"), "{}", check.stderr);
    assert_eq!(sb.read("stacks/blog/network.toml"), messy, "--check changes nothing");
    sb.run(&["fmt", "stacks"]).expect(0);
    assert_eq!(sb.read("stacks/blog/network.toml"), original);
    sb.run(&["fmt", "--check", "stacks"]).expect(0);
    // Without paths: stacks/ and modules/, never another TOML file here.
    sb.write("Cargo.toml", "[package]\nname   =  \"x\"\n");
    sb.write("stacks/blog/network.toml", &messy);
    let all = sb.run(&["fmt"]).expect(0);
    assert!(all.stdout.contains("network.toml"), "{}", all.stdout);
    assert_eq!(sb.read("Cargo.toml"), "[package]\nname   =  \"x\"\n");
    assert_eq!(sb.read("stacks/blog/network.toml"), original);

    // A file that does not parse is named with its line and column and left alone.
    sb.write("stacks/bad/main.toml", "[vpc.main]\ncidr = \"10.0.0.0/16\"\ntags = {\n");
    let bad = sb.run(&["fmt", "stacks"]).expect(1);
    assert!(bad.stderr.contains("stacks/bad/main.toml:3:"), "{}", bad.stderr);
    assert_eq!(
        sb.read("stacks/bad/main.toml"),
        "[vpc.main]\ncidr = \"10.0.0.0/16\"\ntags = {\n"
    );
}

/// True when every field of `want` is in `have` with the same value (lists
/// item by item): what slipway rendered is what the cluster holds.
fn contained(want: &serde_json::Value, have: &serde_json::Value, path: &str) -> Result<(), String> {
    use serde_json::Value;
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().try_for_each(|(k, v)| match h.get(k) {
            Some(x) => contained(v, x, &format!("{path}.{k}")),
            None => Err(format!("{path}.{k} is not in the cluster")),
        }),
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => w
            .iter()
            .zip(h)
            .enumerate()
            .try_for_each(|(i, (a, b))| contained(a, b, &format!("{path}[{i}]"))),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: rendered {a}, the cluster has {b}")),
    }
}

#[test]
fn render_prints_kubectl_style_yaml_and_json_of_exactly_the_objects_applied_with_the_emulator() {
    // Values a YAML 1.1 reader (kubectl's) would take for booleans and numbers.
    let (emu, sb) = crate::k8s::setup(
        "\n[k8s_config_map.flags]\nnamespace = \"app-a\"\ndata = { debug = \"off\", verbose = \"yes\", limit = \"1_000\" }\n",
    );
    let _controller = emu.controller();
    sb.run(&["apply", "stacks/apps", "--auto-approve"]).expect(0);
    let yaml = sb.run(&["render", "stacks/apps"]).expect(0).stdout;
    // kubectl's form: plain scalars, quotes only where YAML would misread.
    assert!(
        yaml.contains("\nkind: Deployment\n") && !yaml.contains("kind: \"Deployment\""),
        "{yaml}"
    );
    let docs: Vec<serde_json::Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .collect();
    let json: serde_json::Value =
        serde_json::from_str(&sb.run(&["render", "stacks/apps", "-o", "json"]).expect(0).stdout).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(
        json["items"].as_array().unwrap(),
        &docs,
        "YAML and JSON render the same objects"
    );
    assert!(docs.len() >= 7, "{yaml}");
    for d in &docs {
        let kind = d["kind"].as_str().unwrap();
        let name = d["metadata"]["name"].as_str().unwrap();
        let ns = d["metadata"]["namespace"].as_str();
        let (plural, _) = slipway::providers::k8s::table::plural_of(d["apiVersion"].as_str().unwrap(), kind).unwrap();
        let base = match d["apiVersion"].as_str().unwrap() {
            "v1" => "/api/v1".to_string(),
            av => format!("/apis/{av}"),
        };
        let path = match ns {
            Some(ns) => format!("{base}/namespaces/{ns}/{plural}/{name}"),
            None => format!("{base}/{plural}/{name}"),
        };
        let live = emu.get(&path).unwrap_or_else(|| panic!("{path} was not applied"));
        let mut want = d.clone();
        if kind == "Secret" {
            // Secret data is never printed; the cluster has it.
            assert!(
                want.get("data").is_none() || want["data"].to_string().contains("hidden"),
                "{want}"
            );
            want.as_object_mut().unwrap().remove("data");
        }
        if let Err(e) = contained(&want, &live, kind) {
            panic!("{path}: {e}");
        }
    }
    // The machine's kubectl reads what render prints as strings...
    let flags = sb
        .run(&["render", "stacks/apps", "k8s_config_map.flags"])
        .expect(0)
        .stdout;
    assert!(flags.contains("debug: 'off'"), "{flags}");
    sb.write("flags.yaml", &flags);
    let flags_path = sb.path("flags.yaml").display().to_string();
    let read = crate::k8s::kubectl(
        &sb,
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=false",
            "-o",
            "json",
            "-f",
            &flags_path,
        ],
    );
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let obj: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(
        obj["data"],
        serde_json::json!({"debug": "off", "verbose": "yes", "limit": "1_000"})
    );
    // ...where the same YAML left plain is refused: kubectl reads `off` as a boolean.
    sb.write("plain.yaml", &flags.replace("'off'", "off"));
    let plain_path = sb.path("plain.yaml").display().to_string();
    let plain = crate::k8s::kubectl(
        &sb,
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=false",
            "-f",
            &plain_path,
        ],
    );
    let why = String::from_utf8_lossy(&plain.stderr);
    assert!(
        !plain.status.success() && why.contains("bool"),
        "kubectl took a plain `off` as a string: {why}"
    );
}
