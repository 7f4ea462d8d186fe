//! Where a stack's state lives: a local file (the default) or S3. Commands
//! go through `Store` for the snapshot, the journal and the lock, and never
//! care which.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::file::{self, StateError};
use super::journal::{self, Record, Sink, Writer};
use super::lock::{self, LockError, LockInfo};
use super::s3::{S3Config, S3Error, S3Lock, S3Store};
use super::State;

#[derive(Debug, Clone)]
pub enum Store {
    Local(PathBuf),
    S3(Arc<S3Store>),
}

/// A held lock of either kind; dropping it releases it.
#[derive(Debug)]
pub enum Held {
    Local(lock::Lock),
    S3(S3Lock),
}

impl Held {
    pub fn info(&self) -> &LockInfo {
        match self {
            Held::Local(l) => &l.info,
            Held::S3(l) => &l.info,
        }
    }
}

impl Store {
    /// The store for a state: S3 when `s3` is given, else the local file.
    pub async fn open(s3: Option<&S3Config>, local: &Path) -> Store {
        match s3 {
            Some(c) => Store::S3(Arc::new(S3Store::connect(c.clone()).await)),
            None => Store::Local(local.to_path_buf()),
        }
    }

    /// The path, or the `s3://bucket/key` URL, for messages and plan files.
    pub fn location(&self) -> PathBuf {
        match self {
            Store::Local(p) => p.clone(),
            Store::S3(s) => PathBuf::from(s.config.url()),
        }
    }

    pub fn s3_config(&self) -> Option<&S3Config> {
        match self {
            Store::S3(s) => Some(&s.config),
            Store::Local(_) => None,
        }
    }

    /// Where the journal lives, for messages.
    pub fn journal_location(&self) -> String {
        match self {
            Store::Local(p) => journal::path_for(p).display().to_string(),
            Store::S3(s) => format!("s3://{}/{}", s.config.bucket, s.config.journal_prefix()),
        }
    }

    fn remote(&self, e: S3Error) -> StateError {
        StateError::Remote {
            location: self.location().display().to_string(),
            detail: e.message,
        }
    }

    /// Take the lock for `operation`, waiting up to `timeout`.
    pub async fn lock(&self, operation: &str, timeout: Option<Duration>) -> Result<Held, LockError> {
        match self {
            Store::Local(p) => lock::acquire(p, operation, timeout).map(Held::Local),
            Store::S3(s) => s.lock(LockInfo::new(operation), timeout).await.map(Held::S3),
        }
    }

    pub async fn force_unlock(&self, id: &str, force: bool) -> Result<LockInfo, LockError> {
        match self {
            Store::Local(p) => lock::force_unlock(p, id, force),
            Store::S3(s) => s.force_unlock(id, force).await,
        }
    }

    /// The snapshot, refused if it does not parse or is newer than this binary.
    pub async fn read(&self) -> Result<Option<State>, StateError> {
        match self {
            Store::Local(p) => file::read(p),
            Store::S3(s) => match s.read_snapshot().await.map_err(|e| self.remote(e))? {
                Some(bytes) => file::parse(&self.location(), &bytes).map(Some),
                None => Ok(None),
            },
        }
    }

    /// Write the snapshot: atomically (local), or only over the version it
    /// was read at (S3).
    pub async fn write(&self, state: &State) -> Result<(), StateError> {
        match self {
            Store::Local(p) => file::write_checked(p, state),
            Store::S3(s) => {
                let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| self.remote(S3Error::plain(e)))?;
                bytes.push(b'\n');
                s.write_snapshot(bytes).await.map_err(|e| self.remote(e))
            }
        }
    }

    /// Replay a journal left by an interrupted run onto `snapshot`.
    pub async fn replay(&self, snapshot: Option<State>) -> Result<(Option<State>, bool), StateError> {
        match self {
            Store::Local(p) => journal::replay(p, snapshot),
            Store::S3(s) => {
                let bytes = s.read_journal().await.map_err(|e| self.remote(e))?;
                journal::replay_bytes(Path::new(&self.journal_location()), &bytes, snapshot)
            }
        }
    }

    pub async fn remove_journal(&self) -> Result<(), StateError> {
        match self {
            Store::Local(p) => journal::remove(p),
            Store::S3(s) => s.remove_journal().await.map_err(|e| self.remote(e)),
        }
    }

    /// Start the journal of a run with `begin`, written durably before this returns.
    ///
    /// A journal still there is older than the snapshot (replay ignored it,
    /// e.g. a run killed between its snapshot write and the journal's
    /// removal): it is removed first, or a later replay would start at its
    /// stale begin record and skip this run's records.
    pub async fn journal(&self, begin: Record) -> Result<Writer, StateError> {
        self.remove_journal().await?;
        match self {
            Store::Local(p) => Writer::open(p, begin),
            Store::S3(s) => {
                let mut line = serde_json::to_vec(&begin).unwrap_or_default();
                line.push(b'\n');
                s.put_journal(0, line).await.map_err(|e| self.remote(e))?;
                let sink = S3Sink {
                    store: s.clone(),
                    seq: 1,
                    handle: tokio::runtime::Handle::current(),
                };
                Writer::with_sink(Box::new(sink)).map_err(|e| self.remote(S3Error::plain(e)))
            }
        }
    }
}

/// Journal groups as S3 objects, one per group commit, numbered in order.
struct S3Sink {
    store: Arc<S3Store>,
    seq: u64,
    handle: tokio::runtime::Handle,
}

impl Sink for S3Sink {
    fn write_group(&mut self, lines: &[u8]) -> Result<(), String> {
        let seq = self.seq;
        self.handle
            .block_on(self.store.put_journal(seq, lines.to_vec()))
            .map_err(|e| {
                format!(
                    "{e} (journal object {seq} under {})",
                    self.store.config.journal_prefix()
                )
            })?;
        self.seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceState;
    use serde_json::json;

    fn res(id: &str) -> ResourceState {
        ResourceState {
            kind: "data".into(),
            id: id.into(),
            inputs: json!({}),
            attributes: json!({"id": id}),
            dependencies: vec![],
            sensitive_hashes: Default::default(),
            protect: false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_journal_does_not_hide_the_next_runs_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let store = Store::Local(path.clone());
        let mut snap = State::new("x");
        snap.serial = 3;
        store.write(&snap).await.unwrap();
        // A journal from serial 2: its run wrote the snapshot, then was killed.
        let old = Writer::open(
            &path,
            Record::Begin {
                lineage: snap.lineage.clone(),
                serial: 2,
                stack: "x".into(),
            },
        )
        .unwrap();
        old.append(Record::Done {
            address: "data.old".into(),
            resource: res("o"),
        });
        old.close().unwrap();
        let (_, replayed) = store.replay(Some(snap.clone())).await.unwrap();
        assert!(!replayed, "older than the snapshot: ignored");

        let w = store
            .journal(Record::Begin {
                lineage: snap.lineage.clone(),
                serial: 3,
                stack: "x".into(),
            })
            .await
            .unwrap();
        w.durable(Record::Done {
            address: "data.new".into(),
            resource: res("n"),
        })
        .await
        .unwrap();
        w.close().unwrap();
        // This run is killed here: the next run must see its record.
        let (s, replayed) = store.replay(Some(snap)).await.unwrap();
        assert!(replayed);
        assert!(s.unwrap().resources.contains_key("data.new"));
    }
}
