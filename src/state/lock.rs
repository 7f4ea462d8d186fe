//! The state lock: a file beside the state (`<state>.lock`) created with
//! O_EXCL, holding who took it. A second run fails at once naming the holder,
//! or waits up to `--lock-timeout`; `force-unlock ID` removes a stale one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::file::sibling;

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub id: String,
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub operation: String,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job_url: Option<String>,
    /// Remote locks: the holder renews this (Unix seconds); past it, another
    /// run may take the lock over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires: Option<u64>,
    /// Local locks: the holder's start time (clock ticks since boot), so a
    /// reused PID is not taken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
}

impl LockInfo {
    /// A new lock record for this process.
    pub fn new(operation: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            owner: std::env::var("USER")
                .or_else(|_| std::env::var("GITLAB_USER_LOGIN"))
                .unwrap_or_else(|_| "unknown".into()),
            host: hostname(),
            pid: std::process::id(),
            operation: operation.to_string(),
            created: super::now(),
            ci_job_url: std::env::var("CI_JOB_URL").ok().filter(|s| !s.is_empty()),
            lease_expires: None,
            pid_start: start_time(std::process::id()),
        }
    }

    /// True when this lock's holder is provably gone: it ran on this host
    /// and its process no longer runs (or the PID now belongs to a process
    /// started at another time).
    /// True when the holder is a process still running on this host.
    pub fn holder_alive(&self) -> bool {
        if self.host != hostname() || self.lease_expires.is_some() {
            return false;
        }
        match (start_time(self.pid), self.pid_start) {
            (None, _) => Path::new(&format!("/proc/{}", self.pid)).exists(),
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        }
    }

    pub fn holder_gone(&self) -> bool {
        if self.host != hostname() || self.lease_expires.is_some() {
            return false;
        }
        match (start_time(self.pid), self.pid_start) {
            (None, _) => !Path::new(&format!("/proc/{}", self.pid)).exists(),
            (Some(now), Some(then)) => now != then,
            (Some(_), None) => false,
        }
    }
}

/// A process's start time from /proc (field 22 of its stat line).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} held by {}@{} (pid {}) for `{}` since {}",
            self.id, self.owner, self.host, self.pid, self.operation, self.created
        )?;
        if let Some(u) = &self.ci_job_url {
            write!(f, ", CI job {u}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the state {state} is locked: {holder}{note}\n  Another slipway run is using it. Wait for it, retry with --lock-timeout 5m, or, if that run is gone, run `slipway force-unlock {id}`.", id = holder.id)]
    Held {
        state: PathBuf,
        holder: LockInfo,
        note: String,
    },
    #[error("the state {state} is locked, but its lock file {path} cannot be read ({detail}).\n  If no slipway run is active, delete that lock file (or S3 object).")]
    Unreadable {
        state: PathBuf,
        path: PathBuf,
        detail: String,
    },
    #[error("cannot create the lock file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot use the lock on {state}: {detail}\n  No state was read or written.")]
    Remote { state: String, detail: String },
    #[error("no lock is held on {state}")]
    NotLocked { state: PathBuf },
    #[error("the lock on {state} is held by a run still going (alive on this host, or its lease still renewed): {holder}.\n  Removing it would let another run write over that one's state. Nothing was removed; wait for it, stop it (it saves the state on Ctrl-C), or pass --force if you are sure.")]
    Alive { state: PathBuf, holder: LockInfo },
    #[error("the lock on {state} has ID {actual}, not {given}; nothing was removed")]
    WrongId {
        state: PathBuf,
        actual: String,
        given: String,
    },
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    pub info: LockInfo,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove only our own lock: a force-unlock may have handed it to another run.
        if read_info(&self.path).is_ok_and(|i| i.id == self.info.id) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `<state>.lock`
pub fn path_for(state: &Path) -> PathBuf {
    sibling(state, ".lock")
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

fn read_info(path: &Path) -> Result<LockInfo, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// Take the lock on `state` for `operation`, waiting up to `timeout`.
pub fn acquire(state: &Path, operation: &str, timeout: Option<Duration>) -> Result<Lock, LockError> {
    let path = path_for(state);
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(d).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let info = LockInfo::new(operation);
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut f) => {
                let bytes = serde_json::to_vec_pretty(&info).unwrap_or_default();
                f.write_all(&bytes)
                    .and_then(|_| f.sync_all())
                    .map_err(|source| LockError::Io {
                        path: path.clone(),
                        source,
                    })?;
                return Ok(Lock { path, info });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A holder that provably died (kill -9, a crash) is taken over;
                // the run it interrupted is settled from its journal as usual.
                if let Ok(holder) = read_info(&path) {
                    if holder.holder_gone() {
                        // Remove only that lock (another run may have taken it over
                        // already); creating ours is O_EXCL, so one run wins.
                        if read_info(&path).is_ok_and(|h| h.id == holder.id) && fs::remove_file(&path).is_ok() {
                            eprintln!("Took over the {holder}: that process is no longer running on this host.");
                        }
                        continue;
                    }
                }
                if deadline.is_some_and(|d| Instant::now() < d) {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                return Err(match read_info(&path) {
                    Ok(holder) => {
                        let gone = holder.host == info.host && !Path::new(&format!("/proc/{}", holder.pid)).exists();
                        let note = if gone {
                            " (that process is no longer running on this host)".to_string()
                        } else {
                            String::new()
                        };
                        LockError::Held {
                            state: state.to_path_buf(),
                            holder,
                            note,
                        }
                    }
                    Err(detail) => LockError::Unreadable {
                        state: state.to_path_buf(),
                        path,
                        detail,
                    },
                });
            }
            Err(source) => return Err(LockError::Io { path, source }),
        }
    }
}

/// Remove the lock on `state` if its ID is `id` and, unless `force`, its
/// holder is not running on this host.
pub fn force_unlock(state: &Path, id: &str, force: bool) -> Result<LockInfo, LockError> {
    let path = path_for(state);
    if !path.exists() {
        return Err(LockError::NotLocked {
            state: state.to_path_buf(),
        });
    }
    let info = read_info(&path).map_err(|detail| LockError::Unreadable {
        state: state.to_path_buf(),
        path: path.clone(),
        detail,
    })?;
    if info.id != id {
        return Err(LockError::WrongId {
            state: state.to_path_buf(),
            actual: info.id,
            given: id.to_string(),
        });
    }
    if !force && info.holder_alive() {
        return Err(LockError::Alive {
            state: state.to_path_buf(),
            holder: info,
        });
    }
    fs::remove_file(&path).map_err(|source| LockError::Io { path, source })?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s.json");
        let first = acquire(&s, "apply", None).unwrap();
        match acquire(&s, "plan", None) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.id, first.info.id),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        acquire(&s, "plan", None).unwrap();
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s.json");
        let l = acquire(&s, "apply", None).unwrap();
        assert!(matches!(force_unlock(&s, "nope", true), Err(LockError::WrongId { .. })));
        // This process holds it, alive: refused without --force.
        assert!(matches!(
            force_unlock(&s, &l.info.id.clone(), false),
            Err(LockError::Alive { .. })
        ));
        assert!(path_for(&s).exists());
        force_unlock(&s, &l.info.id.clone(), true).unwrap();
        assert!(!path_for(&s).exists());
        std::mem::forget(l);
    }
}
