//! `slipway state list|show|rm` and `slipway force-unlock`.

use std::path::Path;

use super::{find_state, parse_timeout, read_state, CmdError, Exit};
use crate::state::{file, lock, State};
use crate::value::render;

fn load(path: &Path) -> Result<State, CmdError> {
    match read_state(path, None)? {
        (Some(s), _) => Ok(s),
        (None, _) => Err(CmdError::Other(format!(
            "no state at {}; nothing has been applied yet",
            path.display()
        ))),
    }
}

pub fn list(dir: Option<&Path>, state: Option<&Path>) -> Exit {
    let s = load(&find_state(dir, state)?)?;
    for addr in s.resources.keys() {
        println!("{addr}");
    }
    for d in &s.deposed {
        println!("{} (deposed {})", d.address, d.resource.id);
    }
    Ok(0)
}

pub fn show(addr: &str, dir: Option<&Path>, state: Option<&Path>) -> Exit {
    let path = find_state(dir, state)?;
    let s = load(&path)?;
    let r = s.resources.get(addr).ok_or_else(|| {
        let hint = crate::stack::error::did_you_mean(addr, s.resources.keys().map(String::as_str))
            .map(|a| format!("; did you mean `{a}`?"))
            .unwrap_or_default();
        CmdError::Other(format!("no resource `{addr}` in {}{hint}", path.display()))
    })?;
    let name = addr.split_once('.').map(|(_, n)| n).unwrap_or(addr);
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
        println!("    {k:width$} = {}", render(v, 4));
    }
    println!("}}");
    if !r.dependencies.is_empty() {
        println!("# depends on: {}", r.dependencies.join(", "));
    }
    Ok(0)
}

/// Forget resources without touching the cloud.
pub fn rm(addrs: &[String], dir: Option<&Path>, state: Option<&Path>, lock_timeout: Option<&str>) -> Exit {
    let path = find_state(dir, state)?;
    let _lock = lock::acquire(&path, "state rm", parse_timeout(lock_timeout)?)?;
    let (s, replayed) = read_state(&path, None)?;
    let mut s = s.ok_or_else(|| CmdError::Other(format!("no state at {}", path.display())))?;
    if replayed || !s.pending.is_empty() {
        return Err(CmdError::Other(
            "an interrupted run left work to settle; run `slipway plan` first".into(),
        ));
    }
    let missing: Vec<&String> = addrs.iter().filter(|a| !s.resources.contains_key(*a)).collect();
    if !missing.is_empty() {
        return Err(CmdError::Other(format!(
            "no such resource(s) in {}: {}; nothing was removed",
            path.display(),
            missing.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    for a in addrs {
        s.resources.remove(a);
        println!("Removed {a} from the state (the cloud object, if any, was left alone)");
    }
    s.serial += 1;
    file::write(&path, &s)?;
    Ok(0)
}

pub fn force_unlock(id: &str, dir: Option<&Path>, state: Option<&Path>) -> Exit {
    let path = find_state(dir, state)?;
    let info = lock::force_unlock(&path, id)?;
    println!("Removed {info}. The state {} is unlocked.", path.display());
    Ok(0)
}
