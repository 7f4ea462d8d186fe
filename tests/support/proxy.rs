//! The AWS fault proxy (tests/support/aws_fault_proxy.py) between slipway
//! and moto, on a free loopback port, killed by PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct FaultProxy {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

impl FaultProxy {
    /// Start the proxy in front of `upstream` with extra flags (`--throttle 0.2`, ...).
    pub fn start(upstream: &str, log_dir: &Path, flags: &[&str]) -> FaultProxy {
        let script = crate::support::repo().join("tests/support/aws_fault_proxy.py");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = log_dir.join("proxy.log");
        let child = Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string(), "--upstream", upstream, "--log"])
            .arg(&log)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the fault proxy");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "the fault proxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        FaultProxy {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Every logged call: (service, action, status, fault).
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
