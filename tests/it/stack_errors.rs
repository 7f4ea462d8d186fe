//! Bad input gets exit code 1, a message naming file:line:column (or the
//! address), and writes nothing.

use crate::support;

use support::Sandbox;

/// Run `validate` and `plan` on a stack and check both fail the same way
/// without writing anything.
fn fails_with(files: &[(&str, &str)], needles: &[&str]) {
    let sb = Sandbox::new();
    for (name, text) in files {
        sb.write(&format!("stacks/s/{name}"), text);
    }
    for cmd in ["validate", "plan", "apply"] {
        let mut args = vec![cmd, "stacks/s"];
        if cmd == "apply" {
            args.push("--auto-approve");
        }
        let r = sb.run(&args).expect(1);
        for n in needles {
            assert!(r.stderr.contains(n), "`{cmd}`: expected {n:?} in:\n{}", r.stderr);
        }
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(!sb.exists("state"), "`{cmd}` wrote a state directory");
    }
}

#[test]
fn malformed_toml_points_at_the_spot() {
    fails_with(
        &[("main.toml", "[data.a]\ninput = \"x\n")],
        &["stacks/s/main.toml:2:", "invalid TOML"],
    );
}

#[test]
fn unknown_kind_suggests_the_right_one() {
    fails_with(
        &[("main.toml", "[dta.a]\ninput = 1\n")],
        &["stacks/s/main.toml:1:6", "unknown kind `dta`", "did you mean `data`?"],
    );
}

#[test]
fn unknown_field_suggests_the_right_one() {
    fails_with(
        &[("main.toml", "[data.a]\ninput = 1\n\n[data.b]\ninptu = 2\n")],
        &[
            "stacks/s/main.toml:5:9",
            "data.b.inptu: unknown field `inptu`",
            "did you mean `input`?",
        ],
    );
}

#[test]
fn wrong_type_names_the_field() {
    fails_with(
        &[("main.toml", "[data.a]\ndelay = 5\n")],
        &["stacks/s/main.toml:2:9", "data.a.delay", "wrong type"],
    );
}

#[test]
fn duplicate_address_across_files_names_both_places() {
    fails_with(
        &[
            ("a.toml", "[data.x]\ninput = 1\n"),
            ("b.toml", "\n[data.x]\ninput = 2\n"),
        ],
        &[
            "stacks/s/b.toml:2:7",
            "`data.x` is declared twice (first at stacks/s/a.toml:1:7)",
        ],
    );
}

#[test]
fn reference_to_unknown_resource_attribute_or_variable() {
    fails_with(
        &[("main.toml", "[data.a]\ninput = \"${data.b.output}\"\n\n[data.c]\ninput = \"${data.a.outptu}\"\n\n[data.d]\ninput = \"x-${var.region}\"\n")],
        &[
            "stacks/s/main.toml:2:10: error: reference to unknown resource `data.b`",
            "stacks/s/main.toml:5:10: error: `data.a` has no attribute `outptu`",
            "did you mean `data.a.output`?",
            "stacks/s/main.toml:8:12: error: reference to undeclared variable `region`",
        ],
    );
}

#[test]
fn malformed_reference_syntax() {
    fails_with(
        &[("main.toml", "[data.a]\ninput = \"${data.a}\"\n")],
        &["stacks/s/main.toml:2:12", "`data.a` is not a reference"],
    );
}

#[test]
fn a_variable_without_a_value_says_how_to_give_one_at_plan_and_validate_does_not_need_it() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/s/main.toml",
        "[variables]\nimage_tag = { description = \"the tag\" }\n\n[data.a]\ninput = \"${var.image_tag}\"\n",
    );
    // As Terraform's validate: values are unknown there, not missing.
    sb.run(&["validate", "stacks/s"]).expect(0);
    for args in [vec!["plan", "stacks/s"], vec!["apply", "stacks/s", "--auto-approve"]] {
        let r = sb.run(&args).expect(1);
        for n in [
            "stacks/s/main.toml:2:1",
            "variable `image_tag` has no value",
            "--var image_tag=VALUE",
            "SLIPWAY_VAR_image_tag",
        ] {
            assert!(r.stderr.contains(n), "`{}`: expected {n:?} in:\n{}", args[0], r.stderr);
        }
        assert!(!sb.exists("state"), "`{}` wrote a state directory", args[0]);
    }
}

#[test]
fn missing_or_empty_stack_directory() {
    let sb = Sandbox::new();
    let r = sb.run(&["plan", "stacks/none"]).expect(1);
    assert!(
        r.stderr.contains("stack directory stacks/none does not exist"),
        "{}",
        r.stderr
    );
    std::fs::create_dir_all(sb.path("stacks/empty")).unwrap();
    let r = sb.run(&["plan", "stacks/empty"]).expect(1);
    assert!(r.stderr.contains("has no .toml files"), "{}", r.stderr);
    assert!(!sb.exists("state"));
}

#[test]
fn malformed_or_unknown_var_flag() {
    let sb = Sandbox::new();
    sb.write(
        "stacks/s/main.toml",
        "[variables]\nenv = \"dev\"\nreplicas = 2\n\n[data.a]\ninput = \"${var.env}\"\n",
    );
    let r = sb.run(&["plan", "stacks/s", "--var", "env"]).expect(1);
    assert!(
        r.stderr.contains("malformed --var \"env\": expected NAME=VALUE"),
        "{}",
        r.stderr
    );
    let r = sb.run(&["plan", "stacks/s", "--var", "evn=prod"]).expect(1);
    assert!(
        r.stderr.contains("declares no variable `evn`") && r.stderr.contains("did you mean `env`?"),
        "{}",
        r.stderr
    );
    let r = sb.run(&["plan", "stacks/s", "--var", "replicas=many"]).expect(1);
    assert!(r.stderr.contains("expected an integer"), "{}", r.stderr);
    assert!(!sb.exists("state"));
}

#[test]
fn a_dependency_on_an_unknown_address() {
    fails_with(
        &[("main.toml", "[data.a]\ninput = 1\ndepends_on = [\"data.zz\"]\n")],
        &["stacks/s/main.toml:3:15", "reference to unknown resource `data.zz`"],
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let sb = Sandbox::new();
    let inputs: [&[u8]; 6] = [
        b"\xff\xfe\x00garbage",
        b"[[data]]\nx = 1\n",
        b"data = 5\n",
        b"[data.a]\ninput = \"${\"\n",
        b"[data.a]\ninput = \"${data.a.id.x.y}\"\n",
        b"[stack]\nname = 5\nstate = []\n[outputs]\nx = \"${data.q.id}\"\n",
    ];
    for bytes in inputs {
        std::fs::create_dir_all(sb.path("stacks/s")).unwrap();
        std::fs::write(sb.path("stacks/s/main.toml"), bytes).unwrap();
        let r = sb.run(&["plan", "stacks/s"]);
        assert_eq!(
            r.code,
            1,
            "{:?}: {}{}",
            String::from_utf8_lossy(bytes),
            r.stdout,
            r.stderr
        );
        assert!(r.stderr.contains("error"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn an_output_showing_a_sensitive_variable_must_be_sensitive() {
    fails_with(
        &[(
            "main.toml",
            "[variables]\ntoken = { default = \"t0ken-value\", sensitive = true }\n\n[outputs]\nurl = \"https://x/?t=${var.token}\"\n",
        )],
        &[
            "stacks/s/main.toml:5:",
            "output `url` refers to the sensitive variable `token`",
            "sensitive = true",
        ],
    );
}

#[test]
fn a_stack_that_calls_aws_without_any_region_is_refused_before_anything_is_locked() {
    let mut sb = Sandbox::new();
    sb.env
        .push(("AWS_CONFIG_FILE".into(), "/nonexistent/slipway-test-aws-config".into()));
    sb.env.push((
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        "/nonexistent/slipway-test-aws-credentials".into(),
    ));
    sb.write(
        "s/main.toml",
        "[stack]\nname = \"noregion\"\n\n[vpc.main]\ncidr = \"10.0.0.0/16\"\n",
    );
    for cmd in ["validate", "plan"] {
        let r = sb.run(&[cmd, "s"]).expect(1);
        assert!(
            r.stderr.contains("stack `noregion` calls AWS but names no region") && r.stderr.contains("s/main.toml"),
            "{cmd}: {}",
            r.stderr
        );
    }
    assert!(!sb.exists("state/noregion.json"), "nothing written");
    // A stack whose only AWS calls are lookups needs a region too.
    sb.write(
        "l/main.toml",
        "[stack]\nname = \"lookups\"\n\n[lookup.caller_identity.me]\n\n[data.a]\ninput = \"${lookup.caller_identity.me.account_id}\"\n",
    );
    let r = sb.run(&["plan", "l"]).expect(1);
    assert!(
        r.stderr.contains("stack `lookups` calls AWS but names no region"),
        "{}",
        r.stderr
    );
    // The SDK's region does: AWS_REGION, as any AWS tool takes it.
    sb.env.push(("AWS_REGION".into(), "eu-west-1".into()));
    sb.run(&["validate", "s"]).expect(0);
}
