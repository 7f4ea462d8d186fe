//! The Kubernetes API emulator (tests/support/k8s_emulator.py, our own; no
//! real kube-apiserver can be installed here) on a free loopback port, one
//! per test, killed by PID; plus a kubeconfig for it and the calls a test
//! makes to play controller (Deployment and Pod status) or to drift objects.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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
        let script = crate::support::repo().join("tests/support/k8s_emulator.py");
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

    /// Every (method, path) the emulator was asked, in order.
    pub fn log(&self) -> Vec<(String, String)> {
        let calls = self.get("/_emulator/log").unwrap_or_default();
        calls["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c[0].as_str().unwrap_or_default().to_string(),
                    c[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub fn delete(&self, path: &str) -> u16 {
        request(self.port, "DELETE", path, "application/json", "")
            .map(|r| r.0)
            .unwrap_or(0)
    }

    /// Play the Deployment controller until stopped: every Deployment whose
    /// spec was not yet observed gets a new revision, its ReplicaSet, and a
    /// successful rollout status.
    pub fn controller(&self) -> Controller {
        let stop = Arc::new(AtomicBool::new(false));
        let (port, flag) = (self.port, stop.clone());
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some((200, list)) = request(port, "GET", "/apis/apps/v1/deployments", "application/json", "") {
                    for d in list["items"].as_array().into_iter().flatten() {
                        let gen = d["metadata"]["generation"].as_i64().unwrap_or(1);
                        if d["status"]["observedGeneration"].as_i64().unwrap_or(0) < gen {
                            observe(port, d, true);
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

    /// Play the Deployment controller once for the Deployment at `path`:
    /// observe its spec as a new revision with its ReplicaSet, rolled out
    /// (`ready`) or not started; returns the ReplicaSet's pod-template-hash
    /// (the label its pods carry).
    pub fn observe(&self, path: &str, ready: bool) -> String {
        let d = self.get(path).expect("the Deployment exists");
        observe(self.port, &d, ready)
    }
}

/// What the Deployment controller does for a new spec, as the apiserver then
/// shows it: the revision annotation, a ReplicaSet `<name>-<hash>` labelled
/// `pod-template-hash`, and the status.
fn observe(port: u16, d: &Value, ready: bool) -> String {
    let (ns, name) = (
        d["metadata"]["namespace"].as_str().unwrap_or("default").to_string(),
        d["metadata"]["name"].as_str().unwrap_or("").to_string(),
    );
    let gen = d["metadata"]["generation"].as_i64().unwrap_or(1);
    let revision = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or(0)
        + 1;
    let template = d["spec"]["template"].to_string();
    let hash = format!(
        "{:x}",
        template.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b))
            .wrapping_mul(0x100000001b3))
            & 0xffff_ffff
    );
    let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut rs_template = d["spec"]["template"].clone();
    rs_template["metadata"]["labels"] = labels.clone();
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": format!("{name}-{hash}"),
        "namespace": ns, "labels": labels,
        "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": d["metadata"]["uid"]}]},
        "spec": {"replicas": d["spec"]["replicas"], "selector": selector, "template": rs_template}});
    request(
        port,
        "PATCH",
        &format!("/apis/apps/v1/namespaces/{ns}/replicasets/{name}-{hash}?fieldManager=kube-controller-manager"),
        "application/apply-patch+yaml",
        &rs.to_string(),
    );
    let dep = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}");
    let note = json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": revision.to_string()}}});
    request(port, "PATCH", &dep, "application/merge-patch+json", &note.to_string());
    let n = if ready {
        d["spec"]["replicas"].as_i64().unwrap_or(1)
    } else {
        0
    };
    // A new spec restarts the progress deadline: the conditions are the new ReplicaSet's.
    let conditions = if ready {
        json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
               {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}])
    } else {
        json!([{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}])
    };
    let body = json!({"status": {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "availableReplicas": n,
        "readyReplicas": n, "conditions": conditions}});
    request(
        port,
        "PATCH",
        &format!("{dep}/status"),
        "application/merge-patch+json",
        &body.to_string(),
    );
    hash
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
