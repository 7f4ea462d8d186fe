//! Saved plan files (`slipway plan --out FILE`, `slipway apply FILE`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Plan;

/// Version of the saved plan format.
pub const PLAN_FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct PlanFile {
    slipway_plan: u32,
    plan: Plan,
}

/// Write a plan file atomically, mode 0600.
pub fn save(path: &Path, plan: &Plan) -> Result<(), String> {
    let bytes = serde_json::to_vec(&PlanFile {
        slipway_plan: PLAN_FILE_VERSION,
        plan: plan.clone(),
    })
    .map_err(|e| format!("cannot encode the plan: {e}"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let r = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(|e| format!("cannot write plan file {}: {e}", path.display()))
}

/// True when the file looks like a saved plan (rather than, say, a stack file).
pub fn is_plan_file(path: &Path) -> bool {
    path.is_file() && fs::read(path).is_ok_and(|b| b.starts_with(b"{\"slipway_plan\":"))
}

/// SHA-256 over a stack's files: every `.toml` in its directory, in its
/// `env/` and in the modules it uses, by name and content, in name order.
pub fn stack_digest(dir: &Path) -> Result<String, String> {
    use sha2::Digest;
    let mut files = Vec::new();
    let dirs = [dir.to_path_buf(), dir.join("env")]
        .into_iter()
        .chain(crate::stack::module::source_dirs(dir));
    for sub in dirs {
        let Ok(rd) = fs::read_dir(&sub) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() && p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h = sha2::Sha256::new();
    for f in files {
        // A module's file by its path in the repository, so a plan made in
        // one checkout applies in another.
        let root = crate::stack::state_root(dir);
        let rel = f
            .strip_prefix(dir)
            .or_else(|_| f.strip_prefix(&root))
            .unwrap_or(&f)
            .to_string_lossy()
            .into_owned();
        let bytes = fs::read(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        h.update((rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a plan's content (its `digest` left out): HMAC-SHA256 under
/// `key`, or SHA-256 without one.
fn content_digest(plan: &Plan, key: Option<&str>) -> String {
    use hmac::Mac;
    use sha2::Digest;
    let mut p = plan.clone();
    p.digest = None;
    let bytes = serde_json::to_vec(&p).unwrap_or_default();
    match key {
        Some(k) => {
            let mut mac =
                <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(format!("slipway-plan:{k}").as_bytes())
                    .expect("HMAC takes any key");
            mac.update(&bytes);
            format!("hmac-sha256:{}", hex(&mac.finalize().into_bytes()))
        }
        None => format!("sha256:{}", hex(&sha2::Sha256::digest(&bytes))),
    }
}

/// Leave the values of sensitive variables out of a plan that is about to be
/// saved; their hashes stay (`Plan::sensitive_variables`).
pub fn withhold_sensitive(plan: &mut Plan) {
    let names = &plan.sensitive_variables;
    plan.variables.retain(|k, _| !names.contains_key(k));
}

/// Put the sensitive variables of a loaded plan back from this run's values
/// (given with `--var` or `SLIPWAY_VAR_name`). `check` compares each with the
/// hash the plan holds; it is false when the plan was made from an empty
/// state, whose key its apply never sees.
pub fn restore_sensitive(
    plan: &mut Plan,
    values: &std::collections::BTreeMap<String, serde_json::Value>,
    check: bool,
) -> Result<(), String> {
    for (name, hash) in &plan.sensitive_variables {
        let Some(v) = values.get(name) else {
            return Err(format!(
                "a saved plan does not hold the sensitive variable `{name}`; set SLIPWAY_VAR_{name} (or --var {name}=...) to the value the plan was made with"
            ));
        };
        if check && crate::sensitive::hash(&v.to_string()) != *hash {
            return Err(format!(
                "the sensitive variable `{name}` has another value than when the plan was made"
            ));
        }
        plan.variables.insert(name.clone(), v.clone());
    }
    Ok(())
}

/// Seal a plan before it is saved: the stack's digest, then the digest of
/// everything under `key` (the state's secret key, if the state has one).
pub fn seal(plan: &mut Plan, key: Option<&str>) -> Result<(), String> {
    plan.stack_digest = Some(stack_digest(&plan.stack_dir)?);
    plan.digest = Some(content_digest(plan, key));
    Ok(())
}

/// Why a loaded plan cannot be applied as it is, if it cannot: its content
/// changed since it was sealed, or its stack did.
pub fn check_seal(plan: &Plan, key: Option<&str>) -> Result<(), String> {
    let Some(d) = &plan.digest else {
        return Err("it carries no digest (made by an older slipway, or edited)".into());
    };
    let key = if d.starts_with("sha256:") { None } else { key };
    if *d != content_digest(plan, key) {
        return Err(
            "its digest does not match its content: the file was changed after `slipway plan` wrote it, \
             or it belongs to another state"
                .into(),
        );
    }
    if plan.stack_digest.as_deref() != Some(stack_digest(&plan.stack_dir)?.as_str()) {
        return Err(format!(
            "the stack {} changed since the plan was made",
            plan.stack_dir.display()
        ));
    }
    Ok(())
}

pub fn load(path: &Path) -> Result<Plan, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read plan file {}: {e}", path.display()))?;
    let pf: PlanFile =
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a slipway plan file: {e}", path.display()))?;
    if pf.slipway_plan != PLAN_FILE_VERSION {
        return Err(format!(
            "{} is a plan of format {}, this slipway reads format {PLAN_FILE_VERSION}; make a new plan",
            path.display(),
            pf.slipway_plan
        ));
    }
    Ok(pf.plan)
}
