//! Test harness: a scratch working directory with stack files, and a way to
//! run the built `slipway` binary in it.

#![allow(dead_code)]

pub mod k8s;
pub mod moto;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// Extra environment for every run (e.g. a moto endpoint).
    pub env: Vec<(String, String)>,
}

/// The repository, found at run time (cargo sets CARGO_MANIFEST_DIR for the
/// test process), so a test binary that cargo reuses from a shared target
/// folder after the clone moved still finds the stacks and emulators.
pub fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()))
}

/// What one run of slipway printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Assert the exit code, showing everything printed when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
            env: Vec::new(),
        }
    }

    /// A sandbox for `stacks/blog`: its runs talk to `moto` in us-west-2,
    /// send every cluster's calls to `emu`, and have the registry password.
    pub fn for_blog(moto: &moto::Moto, emu: &k8s::K8sEmulator) -> Sandbox {
        let mut sb = Sandbox::with_moto(moto);
        sb.write("kubeconfig.yaml", &emu.kubeconfig());
        sb.env.retain(|(k, _)| k != "AWS_REGION");
        sb.env.push(("AWS_REGION".into(), "us-west-2".into()));
        let kubeconfig = sb.path("kubeconfig.yaml").display().to_string();
        sb.env.push(("SLIPWAY_KUBECONFIG_OVERRIDE".into(), kubeconfig));
        sb.env
            .push(("SLIPWAY_SECRET_REGISTRY_PASSWORD".into(), "blog-registry-token".into()));
        sb
    }

    /// From now on, runs reach AWS through `proxy` (the fault proxy).
    pub fn through(&mut self, proxy: &proxy::FaultProxy) {
        self.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        self.env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    }

    /// A sandbox whose runs talk to `moto`.
    pub fn with_moto(moto: &moto::Moto) -> Sandbox {
        Sandbox {
            env: moto.env(),
            ..Sandbox::new()
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (creating folders) relative to the sandbox.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
        c.args(args).current_dir(self.dir.path()).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("SLIPWAY_") || k.starts_with("AWS_") || k == "CI" || k == "KUBECONFIG" {
                c.env_remove(k);
            }
        }
        // Tests reach only loopback: never EC2 instance metadata (169.254.169.254).
        c.env("AWS_EC2_METADATA_DISABLED", "true");
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Run slipway with `args` in the sandbox, no standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run slipway"))
    }

    /// Run slipway with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn slipway");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait"))
    }

    /// The parsed state file of a stack.
    pub fn state(&self, stack: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(&format!("state/{stack}.json"))).expect("state is JSON")
    }

    /// Copy one of the repository's example stacks (`stacks/NAME`) into the
    /// sandbox, so its state lands in the sandbox; returns its relative path.
    pub fn example(&self, name: &str) -> String {
        self.copy_dir(
            &crate::support::repo().join("stacks").join(name),
            &format!("stacks/{name}"),
        );
        // The modules the example stacks use, at the same place.
        let modules = crate::support::repo().join("modules");
        for m in std::fs::read_dir(&modules).expect("modules").flatten() {
            self.copy_dir(&m.path(), &format!("modules/{}", m.file_name().to_string_lossy()));
        }
        format!("stacks/{name}")
    }

    /// The `.toml` files of `from` into `to` (relative to the sandbox).
    pub fn copy_dir(&self, from: &Path, to: &str) {
        for e in std::fs::read_dir(from).expect("directory to copy").flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p).expect("read a stack file");
                self.write(&format!("{to}/{}", e.file_name().to_string_lossy()), &text);
            }
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}
