//! Engine benchmark: N `data` resources where resource i depends on
//! resource (i-1)/2 (a binary tree). Prints wall time and peak memory of
//! the slipway binary for plan from empty, apply, and a no-op plan.
//!
//! Run: `cargo bench --bench engine` (sizes: SLIPWAY_BENCH_SIZES=1000,10000).
//! `SLIPWAY_BENCH_BACKEND=s3` keeps the state on S3 instead: a moto server
//! on a free loopback port (started and stopped by PID here) with a bucket.
//! Goals on a 2-core machine: no-op plan of 10,000 under 1 s, apply of
//! 10,000 under 3 s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stack(n: usize) -> String {
    let mut s = String::with_capacity(n * 64);
    s.push_str("[stack]\nname = \"bench\"\n\n");
    for i in 0..n {
        if i == 0 {
            s.push_str("[data.r0]\ninput = \"root\"\n\n");
        } else {
            s.push_str(&format!("[data.r{i}]\ninput = \"${{data.r{}.id}}\"\n\n", (i - 1) / 2));
        }
    }
    s
}

/// A moto server for the S3 backend, stopped by PID when dropped.
struct Moto(std::process::Child, String);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_with_bucket() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = Command::new("python3")
        .arg(
            std::path::PathBuf::from(
                std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
            )
            .join("tests/support/moto_server.py"),
        )
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto (pip install 'moto[server]==5.2.1')");
    let endpoint = format!("http://127.0.0.1:{port}");
    let m = Moto(child, endpoint.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("x", "x", None, None, "bench"))
            .load()
            .await;
        let c = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build());
        let t0 = Instant::now();
        while c.create_bucket().bucket("bench-state").send().await.is_err() {
            assert!(t0.elapsed() < Duration::from_secs(60), "moto did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    m
}

/// Run slipway, returning wall time, peak RSS in MiB and the exit code.
fn measure(dir: &Path, args: &[&str], env: &[(String, String)]) -> (Duration, f64, i32) {
    let t0 = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn slipway");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let wall = t0.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (wall, usage.ru_maxrss as f64 / 1024.0, code)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SLIPWAY_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let s3 = std::env::var("SLIPWAY_BENCH_BACKEND").is_ok_and(|b| b == "s3");
    let moto = s3.then(moto_with_bucket);
    let env: Vec<(String, String)> = match &moto {
        Some(m) => [
            ("AWS_ENDPOINT_URL", m.1.as_str()),
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_REGION", "us-east-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        None => Vec::new(),
    };
    println!(
        "slipway engine benchmark ({} build), data kind, i depends on (i-1)/2, state {}",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        if s3 {
            "on S3 (moto on loopback)"
        } else {
            "in a local file"
        }
    );
    println!("{:>7}  {:<22} {:>10} {:>12}", "N", "phase", "wall", "peak RSS");
    for n in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("stacks/bench")).unwrap();
        std::fs::write(dir.path().join("stacks/bench/main.toml"), stack(n)).unwrap();
        if s3 {
            std::fs::write(
                dir.path().join("stacks/bench/backend.toml"),
                format!("[stack.backend]\ntype = \"s3\"\nbucket = \"bench-state\"\nkey = \"bench-{n}.json\"\n"),
            )
            .unwrap();
        }
        let phases: [(&str, &[&str], i32); 3] = [
            (
                "plan (empty state)",
                &["plan", "stacks/bench", "--detailed-exitcode"],
                2,
            ),
            ("apply", &["apply", "stacks/bench", "--auto-approve"], 0),
            ("no-op plan", &["plan", "stacks/bench", "--detailed-exitcode"], 0),
        ];
        for (name, args, want) in phases {
            let (wall, rss, code) = measure(dir.path(), args, &env);
            assert_eq!(code, want, "{name} exited {code}");
            println!("{n:>7}  {name:<22} {:>8.3} s {:>8.1} MiB", wall.as_secs_f64(), rss);
        }
        if !s3 {
            let state = std::fs::metadata(dir.path().join("state/bench.json"))
                .map(|m| m.len())
                .unwrap_or(0);
            println!("{n:>7}  state file size        {:>8.1} MiB", state as f64 / 1048576.0);
        }
    }
}
