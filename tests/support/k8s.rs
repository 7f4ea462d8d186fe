//! The Kubernetes API emulator (tests/support/k8s_emulator.py, our own; no
//! real kube-apiserver can be installed here) on a free loopback port, one
//! per test, killed by PID; plus a kubeconfig for it and the calls a test
//! makes to play controller (Deployment and Pod status) or to drift objects.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct K8sEmulator {
    child: Child,
    pub port: u16,
}

/// One HTTP request; (status, JSON body).
pub fn request(port: u16, method: &str, path: &str, content_type: &str, body: &str) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((code, serde_json::from_str(body).unwrap_or(Value::Null)))
}

impl K8sEmulator {
    pub fn start() -> K8sEmulator {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/k8s_emulator.py");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed to run the Kubernetes API emulator");
        let mut e = K8sEmulator { child, port };
        let t0 = Instant::now();
        while request(port, "GET", "/version", "application/json", "").map(|r| r.0) != Some(200) {
            if let Ok(Some(s)) = e.child.try_wait() {
                panic!("the Kubernetes API emulator exited ({s}); it needs python3");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the Kubernetes API emulator did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        e
    }

    /// A kubeconfig for the emulator (plain http on loopback).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n    server: http://127.0.0.1:{}\ncontexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: emulator\ncurrent-context: emulator\nusers:\n- name: emulator\n  user:\n    token: emulator\n",
            self.port
        )
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        match request(self.port, "GET", path, "application/json", "") {
            Some((200, v)) => Some(v),
            _ => None,
        }
    }

    pub fn patch(&self, path: &str, content_type: &str, body: Value) -> u16 {
        request(self.port, "PATCH", path, content_type, &body.to_string())
            .map(|r| r.0)
            .unwrap_or(0)
    }

    pub fn delete(&self, path: &str) -> u16 {
        request(self.port, "DELETE", path, "application/json", "")
            .map(|r| r.0)
            .unwrap_or(0)
    }

    /// Play the Deployment controller until stopped: every Deployment whose
    /// spec was not yet observed gets a successful rollout status.
    pub fn controller(&self) -> Controller {
        let stop = Arc::new(AtomicBool::new(false));
        let (port, flag) = (self.port, stop.clone());
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some((200, list)) = request(port, "GET", "/apis/apps/v1/deployments", "application/json", "") {
                    for d in list["items"].as_array().into_iter().flatten() {
                        let gen = d["metadata"]["generation"].as_i64().unwrap_or(1);
                        if d["status"]["observedGeneration"].as_i64().unwrap_or(0) < gen {
                            let n = d["spec"]["replicas"].as_i64().unwrap_or(1);
                            let path = format!(
                                "/apis/apps/v1/namespaces/{}/deployments/{}/status",
                                d["metadata"]["namespace"].as_str().unwrap_or("default"),
                                d["metadata"]["name"].as_str().unwrap_or("")
                            );
                            let body = json!({"status": {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "availableReplicas": n, "readyReplicas": n}});
                            request(port, "PATCH", &path, "application/merge-patch+json", &body.to_string());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Controller {
            stop,
            handle: Some(handle),
        }
    }
}

/// A running fake controller; stops when dropped.
pub struct Controller {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for K8sEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
