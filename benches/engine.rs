//! Engine benchmark: N `data` resources where resource i depends on
//! resource (i-1)/2 (a binary tree). Prints wall time and peak memory of
//! the slipway binary for plan from empty, apply, and a no-op plan.
//!
//! Run: `cargo bench --bench engine` (sizes: SLIPWAY_BENCH_SIZES=1000,10000).
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

/// Run slipway, returning wall time, peak RSS in MiB and the exit code.
fn measure(dir: &Path, args: &[&str]) -> (Duration, f64, i32) {
    let t0 = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
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
    println!(
        "slipway engine benchmark ({} build), data kind, i depends on (i-1)/2",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!("{:>7}  {:<22} {:>10} {:>12}", "N", "phase", "wall", "peak RSS");
    for n in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("stacks/bench")).unwrap();
        std::fs::write(dir.path().join("stacks/bench/main.toml"), stack(n)).unwrap();
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
            let (wall, rss, code) = measure(dir.path(), args);
            assert_eq!(code, want, "{name} exited {code}");
            println!("{n:>7}  {name:<22} {:>8.3} s {:>8.1} MiB", wall.as_secs_f64(), rss);
        }
        let state = std::fs::metadata(dir.path().join("state/bench.json"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("{n:>7}  state file size        {:>8.1} MiB", state as f64 / 1048576.0);
    }
}
