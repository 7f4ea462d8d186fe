//! Reading and writing the state snapshot: refuse what we cannot trust, and
//! write atomically (temp file in the same folder, fsync, rename), keeping
//! the previous copy as `<file>.backup`, mode 0600.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{State, FORMAT_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is not valid slipway state: {detail}\n  It was left unchanged. Restore it from {path}.backup, or fix it by hand.")]
    Corrupt { path: PathBuf, detail: String },
    #[error("state file {path} has format_version {found}, newer than this slipway understands ({supported}).\n  It was left unchanged. Upgrade slipway to use it.")]
    Newer { path: PathBuf, found: u64, supported: u32 },
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("state file {path} belongs to stack `{found}`, not `{expected}`.\n  Pass the right --state, or check [stack] name.")]
    WrongStack {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("state {location}: {detail}")]
    Remote { location: String, detail: String },
    #[error("state file {path} was written by another run since this one read it (it now holds lineage {found_lineage} at serial {found_serial}; this run would write serial {serial}).\n  Nothing was written, so that run's work is kept. Run plan again: it reads the newer state (and replays this run's journal, if one is left).")]
    Moved {
        path: PathBuf,
        found_lineage: String,
        found_serial: u64,
        serial: u64,
    },
    #[error("journal {path} cannot be replayed: {detail}\n  Nothing was changed. Move it aside only if you know its run finished.")]
    Journal { path: PathBuf, detail: String },
}

/// `<state>.backup`
pub fn backup_path(path: &Path) -> PathBuf {
    sibling(path, ".backup")
}

/// The path with `suffix` appended to its file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Parse a snapshot, refusing newer formats before looking at anything else.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let version = raw
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("no numeric format_version".into()))?;
    if version > u64::from(FORMAT_VERSION) {
        return Err(StateError::Newer {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let state: State = serde_json::from_value(raw).map_err(|e| corrupt(e.to_string()))?;
    if state.lineage.is_empty() {
        return Err(corrupt("empty lineage".into()));
    }
    for (addr, r) in &state.resources {
        if crate::stack::split_address(addr).is_none_or(|(_, kind, _)| kind != r.kind) {
            return Err(corrupt(format!(
                "resource address `{addr}` does not match its kind `{}`",
                r.kind
            )));
        }
    }
    Ok(state)
}

/// Read the snapshot at `path`; `None` when there is none yet.
pub fn read(path: &Path) -> Result<Option<State>, StateError> {
    match fs::read(path) {
        Ok(bytes) => parse(path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write `state` at `path` only over an older snapshot of its lineage (or
/// none): a run that lost its lock (a `force-unlock` while it ran) and writes
/// late fails instead of rolling the state back, as the S3 backend's
/// conditional write does with ETags.
pub fn write_checked(path: &Path, state: &State) -> Result<(), StateError> {
    if let Some(there) = read(path)? {
        if there.lineage != state.lineage || there.serial >= state.serial {
            return Err(StateError::Moved {
                path: path.to_path_buf(),
                found_lineage: there.lineage,
                found_serial: there.serial,
                serial: state.serial,
            });
        }
    }
    write(path, state)
}

/// Write `state` atomically at `path`, keeping the previous snapshot as `.backup`.
pub fn write(path: &Path, state: &State) -> Result<(), StateError> {
    let werr = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| werr(std::io::Error::other(e)))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        if path.exists() {
            // A hard link keeps the old snapshot's inode as the backup without
            // copying; the rename below gives `path` a new inode.
            let btmp = dir.join(format!(".{name}.backup.tmp.{}", std::process::id()));
            let _ = fs::remove_file(&btmp);
            fs::hard_link(path, &btmp).or_else(|_| fs::copy(path, &btmp).map(|_| ()))?;
            fs::rename(&btmp, backup_path(path))?;
        }
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_writer_cannot_roll_the_state_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let mut s = State::new("x");
        s.serial = 1;
        write_checked(&p, &s).unwrap();
        let mut late = s.clone();
        s.serial = 2;
        write_checked(&p, &s).unwrap();
        late.serial = 2; // read at 1, writes 2: but 2 is there already
        assert!(matches!(
            write_checked(&p, &late),
            Err(StateError::Moved { found_serial: 2, .. })
        ));
        let other = State::new("x");
        assert!(matches!(write_checked(&p, &other), Err(StateError::Moved { .. })));
        assert_eq!(read(&p).unwrap().unwrap().serial, 2);
    }

    #[test]
    fn newer_format_is_refused_before_parsing_the_rest() {
        let e = parse(Path::new("s.json"), br#"{"format_version": 99, "whatever": 1}"#).unwrap_err();
        assert!(matches!(e, StateError::Newer { found: 99, .. }));
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            parse(Path::new("s.json"), b"{not json"),
            Err(StateError::Corrupt { .. })
        ));
        assert!(matches!(
            parse(Path::new("s.json"), b""),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn write_is_atomic_and_keeps_a_backup_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let mut s = State::new("x");
        write(&p, &s).unwrap();
        s.serial = 1;
        write(&p, &s).unwrap();
        assert_eq!(read(&p).unwrap().unwrap().serial, 1);
        assert_eq!(read(&backup_path(&p)).unwrap().unwrap().serial, 0);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 2);
    }
}
