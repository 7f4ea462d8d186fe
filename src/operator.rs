//! What the operator decides and a stack cannot: which kubeconfig may run
//! plugins, which environment variables a stack may read, where the state
//! lives in CI, and which files count as the repository's. A stack file is
//! untrusted input (a merge request changes it); these settings come only
//! from the command line and the environment, set once at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The operator's settings for this process.
#[derive(Debug, Default, Clone)]
pub struct Operator {
    /// `--kubeconfig FILE`: the one kubeconfig that may use exec plugins,
    /// token files and its own endpoints; every Kubernetes object goes there.
    pub kubeconfig: Option<PathBuf>,
    /// `--allow-env NAME`: variables a stack may read beyond `SLIPWAY_SECRET_*`.
    pub allow_env: Vec<String>,
    /// `--backend-config KEY=VALUE` and `SLIPWAY_BACKEND_KEY`: the S3 state
    /// location (bucket, key, region, role_arn), over the stack's.
    pub backend: BTreeMap<String, String>,
    /// `--locked-backend` (on by default when `CI=true`): the stack may not
    /// choose its state's location.
    pub locked_backend: bool,
}

static OPERATOR: OnceLock<Operator> = OnceLock::new();

/// Set the operator's settings (once, at start).
pub fn set(o: Operator) {
    let _ = OPERATOR.set(o);
}

/// The operator's settings (defaults when none were set).
pub fn get() -> &'static Operator {
    OPERATOR.get_or_init(Operator::default)
}

/// The backend settings of `SLIPWAY_BACKEND_*` variables (`SLIPWAY_BACKEND_BUCKET=b`
/// is `bucket = "b"`), under those given with `--backend-config`.
pub fn backend_from_env(flags: &[(String, String)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = std::env::vars()
        .filter_map(|(k, v)| Some((k.strip_prefix("SLIPWAY_BACKEND_")?.to_ascii_lowercase(), v)))
        .collect();
    m.extend(flags.iter().cloned());
    m
}

/// The backend keys an operator may set.
pub const BACKEND_KEYS: &[&str] = &["bucket", "key", "region", "role_arn", "profile"];

/// The prefix of the environment variables every stack may read.
pub const SECRET_ENV_PREFIX: &str = "SLIPWAY_SECRET_";

/// Why a stack may not read the environment variable `name`, if it may not.
pub fn env_refused(name: &str) -> Option<String> {
    if name.starts_with(SECRET_ENV_PREFIX) && name.len() > SECRET_ENV_PREFIX.len() {
        return None;
    }
    if get().allow_env.iter().any(|a| a == name) {
        return None;
    }
    Some(format!(
        "a stack may read only environment variables named {SECRET_ENV_PREFIX}*, not {name:?}; \
         rename it (e.g. {SECRET_ENV_PREFIX}{}) or let the operator allow it with --allow-env {name}",
        name.trim_start_matches('_')
    ))
}

/// Work trees of the stacks this process loaded (their nearest `.git`).
static ROOTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Count the git work tree holding `dir` (else `dir` itself) as the repository.
pub fn add_repository_of(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let root = dir
        .ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or(&dir)
        .to_path_buf();
    let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner());
    if !roots.contains(&root) {
        roots.push(root);
    }
}

/// The folders a stack may read files from: the current directory and the
/// work trees of the loaded stacks.
pub fn repository_roots() -> Vec<PathBuf> {
    let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) {
        roots.push(cwd);
    }
    roots
}

/// The file a stack names at `path` (relative to the current directory), if
/// it lies inside the repository once symlinks are resolved.
pub fn confined_file(path: &str, what: &str) -> Result<PathBuf, String> {
    let real = Path::new(path)
        .canonicalize()
        .map_err(|e| format!("cannot read {what} {path}: {e}"))?;
    if repository_roots().iter().any(|r| real.starts_with(r)) {
        Ok(real)
    } else {
        Err(format!(
            "{what} {path:?} is outside the repository (it resolves to {}); a stack may read only files \
             in its git work tree or the current directory",
            real.display()
        ))
    }
}

/// Why a stack may not name the file `path`, if it may not, judged before
/// the file exists: an existing file must lie in the repository, a missing
/// one may not be absolute or climb out with `..`.
pub fn file_refused(path: &str, what: &str) -> Option<String> {
    let p = Path::new(path);
    if p.exists() {
        return confined_file(path, what).err();
    }
    let climbs = p.components().any(|c| c == std::path::Component::ParentDir);
    (p.is_absolute() || climbs).then(|| {
        format!("{what} {path:?} is outside the repository; a stack may read only files in its git work tree or the current directory")
    })
}

/// Whether `path` (which may not exist yet; relative to the current
/// directory) lies under one of `roots` once `..` and the symlinks of its
/// existing part are resolved.
pub fn inside(path: &Path, roots: &[PathBuf]) -> bool {
    let Ok(cwd) = std::env::current_dir().and_then(|d| d.canonicalize()) else {
        return false;
    };
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    // Resolve the longest existing prefix, then the rest lexically.
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(p), Some(n)) => {
                rest.push(n.to_os_string());
                existing = p;
            }
            _ => return false,
        }
    }
    let Ok(mut real) = existing.canonicalize() else {
        return false;
    };
    for part in rest.iter().rev() {
        match part.to_str() {
            Some("..") => {
                real.pop();
            }
            Some(".") => {}
            _ => real.push(part),
        }
    }
    roots.iter().any(|r| real.starts_with(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_prefix_is_allowed_and_the_rest_refused() {
        assert!(env_refused("SLIPWAY_SECRET_REGISTRY").is_none());
        for bad in [
            "AWS_SECRET_ACCESS_KEY",
            "CI_JOB_TOKEN",
            "GITLAB_TOKEN",
            "HOME",
            "SLIPWAY_SECRET_",
        ] {
            let e = env_refused(bad).unwrap();
            assert!(e.contains(bad) && e.contains("--allow-env"), "{e}");
        }
    }

    #[test]
    fn files_outside_the_repository_are_refused_after_resolving() {
        let e = confined_file("/etc/passwd", "password_file").unwrap_err();
        assert!(e.contains("outside the repository"), "{e}");
        assert!(confined_file("Cargo.toml", "f").is_ok());
        let e = confined_file("no/such/file", "password_file").unwrap_err();
        assert!(e.contains("cannot read password_file"), "{e}");
    }

    #[test]
    fn paths_leaving_the_working_directory_are_seen() {
        let cwd = [std::env::current_dir().unwrap().canonicalize().unwrap()];
        let inside_cwd = |p: &str| inside(Path::new(p), &cwd);
        assert!(inside_cwd("state/x.json"));
        assert!(inside_cwd("new/dir/x.json"));
        assert!(!inside_cwd("../x.json"));
        assert!(!inside_cwd("state/../../x.json"));
        assert!(!inside_cwd("/tmp/x.json"));
    }
}
