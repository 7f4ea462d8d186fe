//! `slipway state list|show|rm|history|pull|migrate` and `slipway force-unlock`.

use std::path::Path;

use super::{find_store, parse_timeout, read_state, CmdError, Exit};
use crate::state::store::Store;
use crate::state::State;
use crate::value::render;

async fn load(store: &Store) -> Result<State, CmdError> {
    match read_state(store, None).await? {
        (Some(s), _) => Ok(s),
        (None, _) => Err(CmdError::Other(format!(
            "no state at {}; nothing has been applied yet",
            store.location().display()
        ))),
    }
}

pub async fn list(dir: Option<&Path>, state: Option<&Path>) -> Exit {
    let s = load(&find_store(dir, state).await?).await?;
    for addr in s.resources.keys() {
        println!("{addr}");
    }
    for d in &s.deposed {
        println!("{} (deposed {})", d.address, d.resource.id);
    }
    Ok(0)
}

pub async fn show(addr: &str, dir: Option<&Path>, state: Option<&Path>) -> Exit {
    let store = find_store(dir, state).await?;
    let s = load(&store).await?;
    let r = s.resources.get(addr).ok_or_else(|| {
        let hint = crate::path::did_you_mean(addr, s.resources.keys().map(String::as_str))
            .map(|a| format!("; did you mean `{a}`?"))
            .unwrap_or_default();
        CmdError::Other(format!("no resource `{addr}` in {}{hint}", store.location().display()))
    })?;
    let name = crate::stack::split_address(addr).map(|(_, _, n)| n).unwrap_or(addr);
    println!("# {addr}:");
    println!("{} \"{name}\" {{", r.kind);
    let attrs: std::collections::BTreeMap<String, serde_json::Value> = r
        .attributes
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let width = attrs.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &attrs {
        println!("    {k:width$} = {}", render(&mask_hashes(v), 4));
    }
    println!("}}");
    if !r.dependencies.is_empty() {
        println!("# depends on: {}", r.dependencies.join(", "));
    }
    Ok(0)
}

/// Forget resources without touching the cloud.
pub async fn rm(addrs: &[String], dir: Option<&Path>, state: Option<&Path>, lock_timeout: Option<&str>) -> Exit {
    let store = find_store(dir, state).await?;
    let _lock = store.lock("state rm", parse_timeout(lock_timeout)?).await?;
    let (s, replayed) = read_state(&store, None).await?;
    let mut s = s.ok_or_else(|| CmdError::Other(format!("no state at {}", store.location().display())))?;
    if replayed || !s.pending.is_empty() {
        return Err(CmdError::Other(
            "an interrupted run left work to settle; run `slipway plan` first".into(),
        ));
    }
    let missing: Vec<&String> = addrs.iter().filter(|a| !s.resources.contains_key(*a)).collect();
    if !missing.is_empty() {
        return Err(CmdError::Other(format!(
            "no such resource(s) in {}: {}; nothing was removed",
            store.location().display(),
            missing.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    for a in addrs {
        s.resources.remove(a);
        println!("Removed {a} from the state (the cloud object, if any, was left alone)");
    }
    s.serial += 1;
    store.write(&s).await?;
    Ok(0)
}

/// `slipway state mv FROM TO`: the object FROM holds is tracked as TO.
pub async fn mv(from: &str, to: &str, dir: Option<&Path>, state: Option<&Path>, lock_timeout: Option<&str>) -> Exit {
    let store = find_store(dir, state).await?;
    let _lock = store.lock("state mv", parse_timeout(lock_timeout)?).await?;
    let (s, replayed) = read_state(&store, None).await?;
    let mut s = s.ok_or_else(|| CmdError::Other(format!("no state at {}", store.location().display())))?;
    if replayed || !s.pending.is_empty() {
        return Err(CmdError::Other(
            "an interrupted run left work to settle; run `slipway plan` first".into(),
        ));
    }
    let same_kind = crate::stack::kind_of(from) == crate::stack::kind_of(to);
    if !same_kind {
        return Err(CmdError::Other(format!(
            "`{from}` and `{to}` are of different kinds: a move keeps the kind; nothing was moved"
        )));
    }
    s.move_resource(from, to)
        .map_err(|e| CmdError::Other(format!("{e}; nothing was moved")))?;
    s.serial += 1;
    store.write(&s).await?;
    println!("Moved {from} to {to} in the state (the cloud object was left alone)");
    Ok(0)
}

pub async fn force_unlock(id: &str, dir: Option<&Path>, state: Option<&Path>, force: bool) -> Exit {
    let store = find_store(dir, state).await?;
    let info = store.force_unlock(id, force).await?;
    println!("Removed {info}. The state {} is unlocked.", store.location().display());
    Ok(0)
}

/// Earlier snapshots: every version of an S3 state in a versioned bucket.
pub async fn history(dir: Option<&Path>, state: Option<&Path>, json: bool) -> Exit {
    let store = find_store(dir, state).await?;
    let Store::S3(s3) = &store else {
        return Err(CmdError::Other(format!(
            "{} is a local file: it keeps one earlier snapshot ({}.backup), no history. An S3 backend in a \
             versioned bucket keeps every snapshot.",
            store.location().display(),
            store.location().display()
        )));
    };
    let versions = s3.versions().await.map_err(|e| CmdError::Other(e.message))?;
    if versions.is_empty() {
        return Err(CmdError::Other(format!(
            "no snapshot at {}",
            store.location().display()
        )));
    }
    let mut rows = Vec::new();
    for v in &versions {
        // Each version's own serial and lineage, read from it.
        let parsed = match s3.read_version(&v.id).await {
            Ok(Some(b)) => crate::state::file::parse(&store.location(), &b).ok(),
            _ => None,
        };
        rows.push(serde_json::json!({
            "version": v.id,
            "modified": v.modified,
            "size": v.size,
            "latest": v.latest,
            "serial": parsed.as_ref().map(|s| s.serial),
            "lineage": parsed.as_ref().map(|s| s.lineage.clone()),
            "resources": parsed.as_ref().map(|s| s.resources.len()),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(0);
    }
    if versions.len() == 1 && versions[0].id == "null" {
        eprintln!(
            "note: bucket {} has no versioning: only the current snapshot is kept. Enable versioning to keep them all.",
            s3.config.bucket
        );
    }
    println!(
        "{:<34} {:<22} {:>6} {:>9}",
        "VERSION", "MODIFIED", "SERIAL", "RESOURCES"
    );
    for r in &rows {
        println!(
            "{:<34} {:<22} {:>6} {:>9}{}",
            r["version"].as_str().unwrap_or_default(),
            r["modified"].as_str().unwrap_or_default(),
            r["serial"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into()),
            r["resources"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into()),
            if r["latest"] == true { "  (current)" } else { "" }
        );
    }
    Ok(0)
}

/// Print a snapshot: the current one, or `--version V` of an S3 state.
pub async fn pull(dir: Option<&Path>, state: Option<&Path>, version: Option<&str>) -> Exit {
    let store = find_store(dir, state).await?;
    let bytes = match (&store, version) {
        (Store::S3(s3), Some(v)) => s3
            .read_version(v)
            .await
            .map_err(|e| CmdError::Other(e.message))?
            .ok_or_else(|| CmdError::Other(format!("{} has no version {v}", store.location().display())))?,
        (Store::Local(p), Some(_)) => {
            return Err(CmdError::Other(format!(
                "{} is a local file: it has no versions (the previous snapshot is {}.backup)",
                p.display(),
                p.display()
            )))
        }
        (_, None) => {
            let s = load(&store).await?;
            serde_json::to_vec_pretty(&s).unwrap_or_default()
        }
    };
    // Refuse to print what slipway could not read back.
    crate::state::file::parse(&store.location(), &bytes)?;
    // The state's secret-hash key stays in the state.
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| CmdError::Other(e.to_string()))?;
    if let Some(k) = doc.get_mut("secret_key") {
        *k = serde_json::json!("(hidden)");
    }
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(0)
}

/// Secret hashes shown as `(sensitive)`: a person has no use for them.
fn mask_hashes(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if s.starts_with("hmac-sha256:") => Value::String("(sensitive)".into()),
        Value::Array(a) => Value::Array(a.iter().map(mask_hashes).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), mask_hashes(v))).collect()),
        other => other.clone(),
    }
}

/// Move a stack's state between the local file and the S3 location its
/// `[stack.backend]` declares, keeping lineage and serial.
pub async fn migrate(dir: &Path, to: &str, state: Option<&Path>, lock_timeout: Option<&str>) -> Exit {
    let stack = crate::stack::load::load(dir)?;
    let s3 = stack.s3_location().ok_or_else(|| {
        CmdError::Other(format!(
            "{} declares no S3 location: add [stack.backend] type = \"s3\", bucket = \"...\" (key and region optional) first",
            dir.display()
        ))
    })?;
    let local = Store::Local(super::state_path(&stack, state));
    let remote = Store::open(Some(&s3), Path::new("")).await;
    let (from, into) = match to {
        "s3" => (&local, &remote),
        "local" => (&remote, &local),
        other => return Err(CmdError::Other(format!("--to {other}: say `--to s3` or `--to local`"))),
    };
    let timeout = parse_timeout(lock_timeout)?;
    let _l1 = from.lock("state migrate", timeout).await?;
    let _l2 = into.lock("state migrate", timeout).await?;
    let (s, replayed) = read_state(from, Some(&stack.name)).await?;
    let s = s.ok_or_else(|| CmdError::Other(format!("no state at {} to migrate", from.location().display())))?;
    if replayed || !s.pending.is_empty() {
        return Err(CmdError::Other(format!(
            "{} has an interrupted run to settle; run `slipway plan {}` first, then migrate",
            from.location().display(),
            dir.display()
        )));
    }
    if let (Some(there), _) = read_state(into, None).await? {
        if there.lineage != s.lineage {
            return Err(CmdError::Other(format!(
                "{} already holds another state (lineage {}, serial {}); nothing was moved",
                into.location().display(),
                there.lineage,
                there.serial
            )));
        }
        if there.serial > s.serial {
            return Err(CmdError::Other(format!(
                "{} is newer (serial {}) than {} (serial {}); nothing was moved",
                into.location().display(),
                there.serial,
                from.location().display(),
                s.serial
            )));
        }
    }
    into.write(&s).await?;
    // Read back what was written before anything is retired.
    match read_state(into, Some(&stack.name)).await? {
        (Some(back), _) if back == s => {}
        _ => {
            return Err(CmdError::Other(format!(
                "{} did not read back as written; the source {} was left in place",
                into.location().display(),
                from.location().display()
            )))
        }
    }
    if let Store::Local(p) = from {
        // Keep the old file, renamed so no run uses it by accident.
        let moved = p.with_extension("json.migrated");
        std::fs::rename(p, &moved).map_err(|e| CmdError::Other(format!("renaming {}: {e}", p.display())))?;
        println!("Kept the local copy as {}.", moved.display());
    }
    println!(
        "Moved the state of {} (lineage {}, serial {}, {} resources) from {} to {}.",
        stack.name,
        s.lineage,
        s.serial,
        s.resources.len(),
        from.location().display(),
        into.location().display()
    );
    let active = stack.s3_backend().is_some();
    if (to == "s3") != active {
        println!(
            "Now set `type = \"{to}\"` in [stack.backend] of {}: runs use the backend the stack names.",
            dir.display()
        );
    }
    Ok(0)
}
