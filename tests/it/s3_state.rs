//! State on S3 against moto's S3 emulator (conditional writes with
//! If-None-Match / If-Match and 412 answers, versioning): locking between
//! processes, lease takeover, a killed runner settled from another working
//! directory, migration, stale writes, history.

use crate::support;

use std::time::{Duration, Instant};

use support::moto::Moto;
use support::proxy::FaultProxy;
use support::Sandbox;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const BUCKET: &str = "team-state";

async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let conf = moto.sdk_config().await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
}

fn bucket(moto: &Moto, versioned: bool) {
    rt().block_on(async {
        let c = s3(moto).await;
        c.create_bucket().bucket(BUCKET).send().await.unwrap();
        if versioned {
            c.put_bucket_versioning()
                .bucket(BUCKET)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    });
}

fn get(moto: &Moto, key: &str) -> Option<String> {
    rt().block_on(async {
        let c = s3(moto).await;
        match c.get_object().bucket(BUCKET).key(key).send().await {
            Ok(o) => Some(String::from_utf8(o.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()),
            Err(_) => None,
        }
    })
}

fn put(moto: &Moto, key: &str, body: &str) {
    rt().block_on(async {
        let c = s3(moto).await;
        c.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    });
}

fn keys(moto: &Moto, prefix: &str) -> Vec<String> {
    rt().block_on(async {
        let c = s3(moto).await;
        let out = c.list_objects_v2().bucket(BUCKET).prefix(prefix).send().await.unwrap();
        out.contents().iter().map(|o| o.key().unwrap().to_string()).collect()
    })
}

fn backend(lease: &str) -> String {
    format!(
        "[stack.backend]\ntype = \"s3\"\nbucket = \"{BUCKET}\"\nkey = \"envs/prod.json\"\nlock_lease = \"{lease}\"\n"
    )
}

fn data_stack(name: &str, lease: &str, body: &str) -> String {
    format!(
        "[stack]\nname = \"{name}\"\nregion = \"us-east-1\"\n\n{}\n{body}",
        backend(lease)
    )
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_json(moto: &Moto) -> serde_json::Value {
    serde_json::from_str(&get(moto, "envs/prod.json").expect("state object")).unwrap()
}

#[test]
fn second_process_fails_naming_the_holder_or_waits_with_lock_timeout_against_moto_s3_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/s/main.toml",
        &data_stack("s", "2s", "[data.slow]\ninput = \"x\"\ndelay = \"6s\"\n"),
    );
    let mut first = sb
        .command(&["apply", "stacks/s", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the lock object", || get(&moto, "envs/prod.json.lock").is_some());
    let lock: serde_json::Value = serde_json::from_str(&get(&moto, "envs/prod.json.lock").unwrap()).unwrap();
    assert_eq!(lock["operation"], "apply");
    assert_eq!(lock["pid"], first.id());
    assert!(lock["lease_expires"].as_u64().is_some(), "{lock}");

    // Past the 2 s lease: the holder renews it while it runs, so no takeover.
    std::thread::sleep(Duration::from_millis(3500));
    let r = sb.run(&["plan", "stacks/s"]).expect(1);
    assert!(
        r.stderr.contains("the state s3://team-state/envs/prod.json is locked")
            && r.stderr.contains(&format!("(pid {})", first.id()))
            && r.stderr.contains("for `apply`"),
        "{}",
        r.stderr
    );
    // Waiting instead: it gets the lock once the apply is done.
    let r = sb
        .run(&["plan", "stacks/s", "--lock-timeout", "60s", "--detailed-exitcode"])
        .expect(0);
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
    assert!(first.wait().unwrap().success());
    assert!(get(&moto, "envs/prod.json.lock").is_none(), "released");
    assert!(!sb.exists("state"), "nothing local: the state is on S3");
    let st = state_json(&moto);
    assert_eq!(st["resources"]["data.slow"]["inputs"]["input"], "x");
}

#[test]
fn a_lock_whose_lease_ran_out_is_taken_over_and_a_live_one_is_not_against_moto_s3_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/s/main.toml",
        &data_stack("s", "60s", "[data.a]\ninput = \"x\"\n"),
    );
    let holder = |expires: u64| {
        format!(
            "{{\"id\": \"L1\", \"owner\": \"ci\", \"host\": \"runner-7\", \"pid\": 4242, \"operation\": \"apply\", \"created\": \"2026-11-26T10:00:00Z\", \"ci_job_url\": \"https://gitlab.example/job/9\", \"lease_expires\": {expires}}}"
        )
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    put(&moto, "envs/prod.json.lock", &holder(now + 600));
    let r = sb.run(&["apply", "stacks/s", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("held by ci@runner-7 (pid 4242) for `apply`")
            && r.stderr.contains("CI job https://gitlab.example/job/9")
            && r.stderr.contains("force-unlock L1"),
        "{}",
        r.stderr
    );
    assert!(
        get(&moto, "envs/prod.json").is_none(),
        "nothing written without the lock"
    );

    // The holder stopped renewing: its lease ran out, so the lock is taken over.
    put(&moto, "envs/prod.json.lock", &holder(now - 30));
    let r = sb.run(&["apply", "stacks/s", "--auto-approve"]).expect(0);
    assert!(
        r.stderr
            .contains("Took over the lock on s3://team-state/envs/prod.json"),
        "{}",
        r.stderr
    );
    assert!(get(&moto, "envs/prod.json.lock").is_none());
    assert_eq!(state_json(&moto)["serial"], 1);

    // force-unlock refuses a lock whose lease is still renewed, unless --force.
    put(&moto, "envs/prod.json.lock", &holder(now + 600));
    sb.run(&["force-unlock", "nope", "--stack", "stacks/s"]).expect(1);
    let r = sb.run(&["force-unlock", "L1", "--stack", "stacks/s"]).expect(1);
    assert!(
        r.stderr.contains("--force") && r.stderr.contains("Nothing was removed"),
        "{}",
        r.stderr
    );
    assert!(get(&moto, "envs/prod.json.lock").is_some());
    let r = sb
        .run(&["force-unlock", "L1", "--stack", "stacks/s", "--force"])
        .expect(0);
    assert!(r.stdout.contains("is unlocked"), "{}", r.stdout);
    sb.run(&["plan", "stacks/s", "--detailed-exitcode"]).expect(0);
}

#[test]
fn a_runner_killed_mid_apply_is_settled_by_another_working_directory_against_moto_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let stack = data_stack(
        "k",
        "2s",
        "[vpc.main]\ncidr = \"10.9.0.0/16\"\n\n[data.wait]\ninput = \"${vpc.main.id}\"\ndelay = \"20s\"\n\n[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.9.1.0/24\"\navailability_zone = \"us-east-1a\"\ndepends_on = [\"data.wait\"]\n",
    );
    let runner1 = Sandbox::with_moto(&moto);
    runner1.write("stacks/k/main.toml", &stack);
    // A kill -9 right after the VPC's create call, before slipway recorded it.
    let out = runner1
        .command(&["apply", "stacks/k", "--auto-approve"])
        .env("SLIPWAY_FAILPOINT", "after-create:vpc.main")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let journal = keys(&moto, "envs/prod.json.journal/");
    assert!(!journal.is_empty(), "the journal is on S3");
    assert!(get(&moto, "envs/prod.json").is_none(), "no snapshot yet");

    // Another runner: a fresh working directory with only the stack files.
    let runner2 = Sandbox::with_moto(&moto);
    runner2.write("stacks/k/main.toml", &stack);
    let mut child = runner2
        .command(&["apply", "stacks/k", "--auto-approve", "--lock-timeout", "30s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it too, while data.wait runs (the VPC adopted and recorded).
    wait_for("data.wait in flight", || {
        keys(&moto, "envs/prod.json.journal/").iter().any(|k| {
            get(&moto, k).is_some_and(|t| t.contains("\"address\":\"data.wait\"") && t.contains("\"t\":\"intent\""))
        })
    });
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("replayed the journal of an interrupted run"), "{text}");

    // A third runner settles that journal (after the dead runner's lease runs out) and converges.
    let runner3 = Sandbox::with_moto(&moto);
    runner3.write(
        "stacks/k/main.toml",
        &stack.replace("delay = \"20s\"", "delay = \"20ms\""),
    );
    let r = runner3
        .run(&["apply", "stacks/k", "--auto-approve", "--lock-timeout", "30s"])
        .expect(0);
    assert!(
        r.stderr.contains("Took over the lock") && r.stdout.contains("replayed the journal"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    runner3.run(&["plan", "stacks/k", "--detailed-exitcode"]).expect(0);
    assert!(
        keys(&moto, "envs/prod.json.journal/").is_empty(),
        "journal settled and removed"
    );
    let st = state_json(&moto);
    assert_eq!(st["resources"].as_object().unwrap().len(), 3);
    // Exactly one VPC and one subnet carry the stack's tags: nothing duplicated, nothing orphaned.
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        let tag = |k: &str, v: &str| {
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{k}"))
                .values(v)
                .build()
        };
        let vpcs = ec2
            .describe_vpcs()
            .filters(tag("slipway:stack", "k"))
            .send()
            .await
            .unwrap();
        assert_eq!(vpcs.vpcs().len(), 1);
        assert_eq!(vpcs.vpcs()[0].vpc_id().unwrap(), st["resources"]["vpc.main"]["id"]);
        let subnets = ec2
            .describe_subnets()
            .filters(tag("slipway:stack", "k"))
            .send()
            .await
            .unwrap();
        assert_eq!(subnets.subnets().len(), 1);
    });
}

#[test]
fn a_stale_snapshot_write_is_refused_by_the_etag_check_against_moto_s3_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/s/main.toml",
        &data_stack("s", "60s", "[data.a]\ninput = \"x\"\n"),
    );
    sb.run(&["apply", "stacks/s", "--auto-approve"]).expect(0);
    sb.write(
        "stacks/s/main.toml",
        &data_stack(
            "s",
            "60s",
            "[data.a]\ninput = \"y\"\n\n[data.slow]\ninput = \"z\"\ndelay = \"3s\"\n",
        ),
    );
    let child = sb
        .command(&["apply", "stacks/s", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the lock", || get(&moto, "envs/prod.json.lock").is_some());
    std::thread::sleep(Duration::from_millis(500));
    // Someone writes the state behind the lock's back.
    let mut other = state_json(&moto);
    other["serial"] = serde_json::json!(41);
    let other_text = serde_json::to_string_pretty(&other).unwrap();
    put(&moto, "envs/prod.json", &other_text);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("was written by someone else since this run read it")
            && stderr.contains("nothing was overwritten"),
        "{stderr}"
    );
    assert_eq!(
        get(&moto, "envs/prod.json").unwrap(),
        other_text,
        "the other write stands"
    );
    assert!(
        !keys(&moto, "envs/prod.json.journal/").is_empty(),
        "the run's work is still in the journal"
    );
    // The next run works on the newer snapshot; the journal older than it
    // is not replayed onto it, and is cleared before the run's own journal.
    sb.run(&["apply", "stacks/s", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/s", "--detailed-exitcode"]).expect(0);
    assert_eq!(state_json(&moto)["serial"], 42);
    assert!(keys(&moto, "envs/prod.json.journal/").is_empty());
}

#[test]
fn migrate_local_to_s3_and_back_keeps_lineage_and_serial_and_versions_are_listed_against_moto_s3_emulator() {
    let moto = Moto::start();
    bucket(&moto, true);
    let sb = Sandbox::with_moto(&moto);
    let local = "[stack]\nname = \"m\"\n\n[data.a]\ninput = \"1\"\n";
    sb.write("stacks/m/main.toml", local);
    sb.run(&["apply", "stacks/m", "--auto-approve"]).expect(0);
    sb.write("stacks/m/main.toml", &local.replace("\"1\"", "\"2\""));
    sb.run(&["apply", "stacks/m", "--auto-approve"]).expect(0);
    let before = sb.state("m");
    assert_eq!(before["serial"], 2);

    // Declared but not yet in use, then migrated.
    let declared = |ty: &str, input: &str| {
        format!(
            "[stack]\nname = \"m\"\n\n[stack.backend]\ntype = \"{ty}\"\nbucket = \"{BUCKET}\"\n\n[data.a]\ninput = \"{input}\"\n"
        )
    };
    sb.write("stacks/m/main.toml", &declared("local", "2"));
    let r = sb.run(&["state", "migrate", "stacks/m", "--to", "s3"]).expect(0);
    assert!(
        r.stdout.contains("to s3://team-state/m.json") && r.stdout.contains("Now set `type = \"s3\"`"),
        "{}",
        r.stdout
    );
    assert!(!sb.exists("state/m.json") && sb.exists("state/m.json.migrated"));
    let remote: serde_json::Value = serde_json::from_str(&get(&moto, "m.json").unwrap()).unwrap();
    assert_eq!(remote["lineage"], before["lineage"]);
    assert_eq!(remote["serial"], 2);

    sb.write("stacks/m/main.toml", &declared("s3", "2"));
    sb.run(&["plan", "stacks/m", "--detailed-exitcode"]).expect(0);
    sb.write("stacks/m/main.toml", &declared("s3", "3"));
    sb.run(&["apply", "stacks/m", "--auto-approve"]).expect(0);

    // Every snapshot is kept by bucket versioning.
    let r = sb.run(&["state", "history", "--stack", "stacks/m", "--json"]).expect(0);
    let versions: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let serials: Vec<u64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials, vec![3, 2], "newest first");
    let old = versions[1]["version"].as_str().unwrap().to_string();
    let r = sb
        .run(&["state", "pull", "--stack", "stacks/m", "--version", &old])
        .expect(0);
    let pulled: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(pulled["serial"], 2);
    assert_eq!(pulled["resources"]["data.a"]["inputs"]["input"], "2");
    let r = sb.run(&["state", "history", "--stack", "stacks/m"]).expect(0);
    assert!(r.stdout.contains("(current)"), "{}", r.stdout);

    // And back to the local file.
    let r = sb.run(&["state", "migrate", "stacks/m", "--to", "local"]).expect(0);
    assert!(r.stdout.contains("Now set `type = \"local\"`"), "{}", r.stdout);
    let back = sb.state("m");
    assert_eq!(back["lineage"], before["lineage"]);
    assert_eq!(back["serial"], 3);
    sb.write("stacks/m/main.toml", &declared("local", "3"));
    sb.run(&["plan", "stacks/m", "--detailed-exitcode"]).expect(0);
    // A second migration onto a newer copy is refused.
    sb.write("stacks/m/main.toml", &declared("local", "4"));
    sb.run(&["apply", "stacks/m", "--auto-approve"]).expect(0);
    std::fs::rename(sb.path("state/m.json"), sb.path("state/m.json.new")).unwrap();
    std::fs::rename(sb.path("state/m.json.migrated"), sb.path("state/m.json")).unwrap();
    let r = sb.run(&["state", "migrate", "stacks/m", "--to", "s3"]).expect(1);
    assert!(r.stderr.contains("is newer (serial 3)"), "{}", r.stderr);
}

#[test]
fn bad_backend_input_is_a_clear_error_and_writes_nothing_against_moto_s3_emulator() {
    let moto = Moto::start();
    let sb = Sandbox::with_moto(&moto);
    sb.write(
        "stacks/s/main.toml",
        &data_stack("s", "60s", "[data.a]\ninput = \"x\"\n"),
    );
    let r = sb.run(&["apply", "stacks/s", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("NoSuchBucket") && r.stderr.contains("bucket team-state does not exist"),
        "{}",
        r.stderr
    );
    assert!(!sb.exists("state"));

    sb.write(
        "stacks/s/main.toml",
        "[stack]\nname = \"s\"\n\n[stack.backend]\ntype = \"s3\"\nbukcet = \"x\"\n",
    );
    let r = sb.run(&["validate", "stacks/s"]).expect(1);
    assert!(
        r.stderr.contains("stacks/s/main.toml:6:1")
            && r.stderr.contains("unknown field `bukcet` in [stack.backend]")
            && r.stderr.contains("did you mean `bucket`?"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("an s3 backend needs `bucket`"), "{}", r.stderr);
}

#[test]
fn lost_and_failed_s3_answers_lose_nothing_through_the_fault_proxy_against_moto_s3_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let mut sb = Sandbox::with_moto(&moto);
    let seed = std::env::var("SLIPWAY_FAULT_SEED").unwrap_or_else(|_| "7".into());
    // A third of successful PutObject answers (lock, renewals, journal
    // groups, snapshot) never reach slipway; some calls throttled or 5xx.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        sb.root(),
        &[
            "--lose",
            "0.33",
            "--throttle",
            "0.05",
            "--error5xx",
            "0.05",
            "--seed",
            &seed,
        ],
    );
    sb.through(&proxy);
    let mut body = String::new();
    for i in 0..30 {
        let input = if i == 0 {
            "\"root\"".to_string()
        } else {
            format!("\"${{data.r{}.id}}\"", (i - 1) / 2)
        };
        body.push_str(&format!("[data.r{i}]\ninput = {input}\ndelay = \"30ms\"\n\n"));
    }
    sb.write("stacks/f/main.toml", &data_stack("f", "3s", &body));
    sb.run(&["apply", "stacks/f", "--auto-approve"]).expect(0);
    sb.write(
        "stacks/f/main.toml",
        &data_stack("f", "3s", &body.replace("\"root\"", "\"root2\"")),
    );
    sb.run(&["apply", "stacks/f", "--auto-approve"]).expect(0);
    sb.run(&["plan", "stacks/f", "--detailed-exitcode"]).expect(0);
    let lost = proxy
        .calls()
        .iter()
        .filter(|c| c["fault"] == "lost-response" && c["action"] == "PutObject")
        .count();
    assert!(lost >= 3, "the proxy lost {lost} PutObject answers");
    let st = state_json(&moto);
    assert_eq!(st["resources"].as_object().unwrap().len(), 30);
    assert_eq!(st["resources"]["data.r0"]["inputs"]["input"], "root2");
    assert_eq!(st["serial"], 2);
    assert!(get(&moto, "envs/prod.json.lock").is_none(), "lock released");
    assert!(keys(&moto, "envs/prod.json.journal/").is_empty(), "journal removed");
}

#[test]
fn the_bucket_is_reached_with_an_assumed_role_and_saved_plans_apply_against_moto_s3_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let mut sb = Sandbox::with_moto(&moto);
    // No faults: the proxy only logs which calls were made.
    let proxy = FaultProxy::start(&moto.endpoint, sb.root(), &[]);
    sb.through(&proxy);
    let stack = |input: &str| format!("[stack]\nname = \"r\"\n\n[data.a]\ninput = \"{input}\"\n",);
    sb.write("stacks/r/main.toml", &stack("1"));
    sb.write(
        "stacks/r/backend.toml",
        &format!("[stack.backend]\ntype = \"s3\"\nbucket = \"{BUCKET}\"\nregion = \"eu-west-1\"\nrole_arn = \"arn:aws:iam::123456789012:role/state-writer\"\n"),
    );
    sb.run(&["plan", "stacks/r", "--out", "r.plan"]).expect(0);
    sb.run(&["apply", "r.plan"]).expect(0);
    let assumed = proxy
        .calls()
        .iter()
        .filter(|c| c["service"] == "sts" && c["action"] == "AssumeRole")
        .count();
    assert!(assumed >= 2, "each run assumed the state role ({assumed})");
    let st: serde_json::Value = serde_json::from_str(&get(&moto, "r.json").expect("state at the default key")).unwrap();
    assert_eq!(st["resources"]["data.a"]["inputs"]["input"], "1");
    // A saved plan made before someone else applied is stale.
    sb.write("stacks/r/main.toml", &stack("2"));
    sb.run(&["plan", "stacks/r", "--out", "old.plan"]).expect(0);
    sb.write("stacks/r/main.toml", &stack("3"));
    sb.run(&["apply", "stacks/r", "--auto-approve"]).expect(0);
    let r = sb.run(&["apply", "old.plan"]).expect(1);
    assert!(
        r.stderr.contains("is stale") && r.stderr.contains("s3://team-state/r.json is now at serial 2"),
        "{}",
        r.stderr
    );
}

#[test]
fn s3_down_in_the_middle_of_the_journal_loses_nothing_against_moto_emulator() {
    let moto = Moto::start();
    bucket(&moto, false);
    let stack = data_stack(
        "d",
        "60s",
        "[vpc.main]\ncidr = \"10.7.0.0/16\"\n\n[subnet.a]\nvpc = \"${vpc.main.id}\"\ncidr = \"10.7.1.0/24\"\navailability_zone = \"us-east-1a\"\n",
    );
    let mut sb = Sandbox::with_moto(&moto);
    sb.write("stacks/d/main.toml", &stack);
    // S3 takes the lock, the journal's begin and the VPC's intent, then every
    // PutObject fails: the VPC is created but its record never reaches S3.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        sb.root(),
        &["--fail-action", "PutObject", "--fail-after", "3"],
    );
    sb.through(&proxy);
    let r = sb.run(&["apply", "stacks/d", "--auto-approve"]).expect(1);
    assert!(r.stdout.contains("vpc.main: Creation complete"), "{}", r.stdout);
    assert!(
        r.stderr.contains("cannot record the intent, nothing was done") && r.stderr.contains("InternalError"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("envs/prod.json.journal/") && r.stderr.contains("could not be written either"),
        "names the journal: {}",
        r.stderr
    );
    drop(proxy);

    // S3 is back: the next run replays what reached the journal, adopts the
    // VPC by its tags and converges.
    sb.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    sb.env.push(("AWS_ENDPOINT_URL".into(), moto.endpoint.clone()));
    let r = sb
        .run(&["apply", "stacks/d", "--auto-approve", "--lock-timeout", "90s"])
        .expect(0);
    assert!(r.stdout.contains("replayed the journal"), "{}", r.stdout);
    sb.run(&["plan", "stacks/d", "--detailed-exitcode"]).expect(0);
    rt().block_on(async {
        let ec2 = moto.ec2().await;
        let f = aws_sdk_ec2::types::Filter::builder()
            .name("tag:slipway:stack")
            .values("d")
            .build();
        assert_eq!(
            ec2.describe_vpcs()
                .filters(f.clone())
                .send()
                .await
                .unwrap()
                .vpcs()
                .len(),
            1
        );
        assert_eq!(
            ec2.describe_subnets().filters(f).send().await.unwrap().subnets().len(),
            1
        );
    });
}

#[test]
fn no_permission_on_the_bucket_is_a_clear_error_and_nothing_is_written_against_moto_s3_emulator() {
    // moto checks IAM policies after its first 4 calls: the bucket, a user,
    // the user's key and its policy (it may list the bucket, not write it).
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]);
    let (key, secret) = rt().block_on(async {
        s3(&moto).await.create_bucket().bucket(BUCKET).send().await.unwrap();
        let iam = moto.iam().await;
        iam.create_user().user_name("dev").send().await.unwrap();
        let k = iam.create_access_key().user_name("dev").send().await.unwrap();
        let k = k.access_key().unwrap();
        iam.put_user_policy()
            .user_name("dev")
            .policy_name("list-only")
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap();
        (k.access_key_id().to_string(), k.secret_access_key().to_string())
    });
    let mut sb = Sandbox::with_moto(&moto);
    sb.env
        .retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
    sb.env.push(("AWS_ACCESS_KEY_ID".into(), key.clone()));
    sb.env.push(("AWS_SECRET_ACCESS_KEY".into(), secret.clone()));
    sb.write(
        "stacks/s/main.toml",
        &data_stack("s", "60s", "[data.a]\ninput = \"x\"\n"),
    );
    let r = sb.run(&["apply", "stacks/s", "--auto-approve"]).expect(1);
    assert!(
        r.stderr.contains("AccessDenied") && r.stderr.contains("may not read and write bucket team-state"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stdout.contains("will be created"),
        "no plan without the lock: {}",
        r.stdout
    );
    assert!(!sb.exists("state"));
    assert!(
        !secret.is_empty() && !r.stderr.contains(&secret),
        "the secret key is never printed"
    );
    let listed = rt().block_on(async {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(&key, &secret, None, None, "test"))
            .load()
            .await;
        let c = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        c.list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap()
            .key_count()
            .unwrap_or(0)
    });
    assert_eq!(listed, 0, "nothing was written to the bucket");
}
