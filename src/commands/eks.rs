//! `slipway eks-token` (a kubectl exec credential plugin) and
//! `slipway kubeconfig DIR` (a kubeconfig whose user runs it).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{find_store, CmdError, Exit};
use crate::providers::aws::eks::token;

pub async fn eks_token(cluster: &str, region: Option<String>, role_arn: Option<String>) -> Exit {
    let cred = token::exec_credential_for(cluster, region, role_arn).await?;
    println!(
        "{}",
        serde_json::to_string(&cred).map_err(|e| CmdError::Other(e.to_string()))?
    );
    Ok(0)
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Write a kubeconfig for an `eks_cluster` of the stack (the only one, or `address`).
pub async fn kubeconfig(dir: &Path, address: Option<&str>, out: Option<&Path>) -> Exit {
    let stack = crate::stack::load::load(dir)?;
    let store = find_store(Some(dir), None).await?;
    let path = store.location();
    let state = super::read_state(&store, Some(&stack.name))
        .await?
        .0
        .ok_or_else(|| CmdError::Other(format!("no state at {}: apply the stack first", path.display())))?;
    let clusters: Vec<(&String, &crate::state::ResourceState)> = state
        .resources
        .iter()
        .filter(|(a, r)| r.kind == "eks_cluster" && address.is_none_or(|x| x == a.as_str()))
        .collect();
    let (addr, r) = match clusters.as_slice() {
        [one] => *one,
        [] => {
            return Err(CmdError::Other(match address {
                Some(a) => format!("no eks_cluster `{a}` in {}", path.display()),
                None => format!("no eks_cluster in {}: apply the stack first", path.display()),
            }))
        }
        many => {
            return Err(CmdError::Other(format!(
                "the stack has several clusters ({}); pick one with --cluster ADDRESS",
                many.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    };
    let attr = |k: &str| {
        r.attributes
            .get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, endpoint, ca) = (attr("name"), attr("endpoint"), attr("certificate_authority"));
    if endpoint.is_empty() {
        return Err(CmdError::Other(format!("{addr} has no endpoint in the state yet")));
    }
    let region = stack
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .unwrap_or_default();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "slipway".into());
    let mut args = vec!["eks-token".to_string(), "--cluster".into(), name.clone()];
    if !region.is_empty() {
        args.extend(["--region".to_string(), region]);
    }
    let args_yaml: Vec<String> = args.iter().map(|a| format!("      - {}", yaml_str(a))).collect();
    let doc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n    server: {e}\n    certificate-authority-data: {ca}\ncontexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {n}\ncurrent-context: {n}\nusers:\n- name: {n}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {cmd}\n      args:\n{args}\n      interactiveMode: Never\n",
        n = yaml_str(&name),
        e = yaml_str(&endpoint),
        ca = yaml_str(&ca),
        cmd = yaml_str(&exe),
        args = args_yaml.join("\n"),
    );
    match out {
        None => print!("{doc}"),
        Some(p) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| CmdError::Other(format!("cannot write {}: {e}", p.display())))?;
            f.write_all(doc.as_bytes())
                .map_err(|e| CmdError::Other(format!("cannot write {}: {e}", p.display())))?;
            eprintln!(
                "Wrote {} for {addr} (its user runs `slipway eks-token`; no secret is stored)",
                p.display()
            );
        }
    }
    Ok(0)
}
