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
