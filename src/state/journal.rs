//! The journal: an append-only file of JSON lines beside the snapshot
//! (`<state>.journal`). During a run every intent and every finished
//! resource is appended and fsync'd, many records per fsync when many finish
//! at once (group commit); the snapshot is rewritten once at the end and the
//! journal removed. A run that finds a journal replays it first.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::file::{sibling, StateError};
use super::{DeposedObject, Intent, ResourceState, State};

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// First line: the snapshot this journal continues (serial 0 = none yet).
    Begin {
        lineage: String,
        serial: u64,
        stack: String,
    },
    Intent {
        intent: Intent,
    },
    /// A resource created, updated or adopted; clears its intent.
    Done {
        address: String,
        resource: ResourceState,
    },
    /// A resource deleted (or found gone); clears its intent.
    Removed {
        address: String,
    },
    /// The current object of `address` set aside for a create-before-destroy.
    Deposed {
        object: DeposedObject,
    },
    /// A deposed object deleted.
    DeposedRemoved {
        address: String,
        id: String,
    },
    /// An operation that failed without changing anything; clears its intent.
    Cleared {
        address: String,
        operation: super::Operation,
    },
}

/// `<state>.journal`
pub fn path_for(state: &Path) -> PathBuf {
    sibling(state, ".journal")
}

/// Apply one record to a state in memory.
pub fn apply(state: &mut State, rec: &Record) {
    match rec {
        Record::Begin { .. } => {}
        Record::Intent { intent } => {
            state
                .pending
                .retain(|p| !(p.address == intent.address && p.operation == intent.operation));
            state.pending.push(intent.clone());
        }
        Record::Done { address, resource } => {
            // A pending delete of another object (a deposed one) stays pending.
            state.pending.retain(|p| {
                &p.address != address
                    || (p.operation == super::Operation::Delete && p.id.as_deref() != Some(resource.id.as_str()))
            });
            state.resources.insert(address.clone(), resource.clone());
        }
        Record::Removed { address } => {
            state.pending.retain(|p| &p.address != address);
            state.resources.remove(address);
        }
        Record::Deposed { object } => {
            if state
                .resources
                .get(&object.address)
                .is_some_and(|r| r.id == object.resource.id)
            {
                state.resources.remove(&object.address);
            }
            state.deposed.push(object.clone());
        }
        Record::Cleared { address, operation } => {
            state
                .pending
                .retain(|p| !(&p.address == address && p.operation == *operation));
        }
        Record::DeposedRemoved { address, id } => {
            state
                .deposed
                .retain(|d| !(&d.address == address && &d.resource.id == id));
            state
                .pending
                .retain(|p| !(&p.address == address && p.id.as_deref() == Some(id)));
        }
    }
}

/// Replay the journal beside `state_path` onto `state` (the snapshot, if any).
/// Returns the state and whether a journal was replayed. A journal older than
/// the snapshot (the run finished but was killed before removing it) is
/// ignored; one from another lineage is refused.
pub fn replay(state_path: &Path, state: Option<State>) -> Result<(Option<State>, bool), StateError> {
    let path = path_for(state_path);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((state, false)),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    replay_bytes(&path, &bytes, state)
}

/// Replay journal lines (`path` names them in errors). A torn last line is
/// ignored: its write never completed.
pub fn replay_bytes(path: &Path, bytes: &[u8], state: Option<State>) -> Result<(Option<State>, bool), StateError> {
    let path = path.to_path_buf();
    if bytes.is_empty() {
        return Ok((state, false));
    }
    let jerr = |detail: String| StateError::Journal {
        path: path.clone(),
        detail,
    };
    let text = String::from_utf8_lossy(bytes);
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    let mut records = Vec::new();
    for (n, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: Record = serde_json::from_str(line).map_err(|e| jerr(format!("line {}: {e}", n + 1)))?;
        records.push(rec);
    }
    let Some(Record::Begin { lineage, serial, stack }) = records.first().cloned() else {
        if records.is_empty() {
            // Killed before the first line was complete: nothing happened.
            return Ok((state, false));
        }
        return Err(jerr("it does not start with a begin record".into()));
    };
    let mut state = match state {
        Some(s) if s.lineage != lineage => {
            return Err(jerr(format!(
                "it belongs to lineage {lineage}, the state to {}",
                s.lineage
            )))
        }
        Some(s) if s.serial > serial => return Ok((Some(s), false)),
        Some(s) if s.serial < serial => {
            return Err(jerr(format!(
                "it continues serial {serial} but the snapshot is at {}",
                s.serial
            )))
        }
        Some(s) => s,
        None if serial == 0 => State {
            lineage,
            ..State::new(&stack)
        },
        None => return Err(jerr(format!("it continues serial {serial} but there is no snapshot"))),
    };
    for r in &records[1..] {
        apply(&mut state, r);
    }
    Ok((Some(state), true))
}

/// Remove the journal once the snapshot holds everything in it.
pub fn remove(state_path: &Path) -> Result<(), StateError> {
    let path = path_for(state_path);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Write { path, source }),
    }
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Msg {
    Rec(Record, Option<Ack>),
}

/// Appends records from many tasks; one thread writes and fsyncs them in
/// groups. `durable` waits until its record is on disk.
pub struct Writer {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<Result<u64, String>>>,
}

impl Writer {
    /// Open (append) the journal beside `state_path` and write `begin` durably.
    pub fn open(state_path: &Path, begin: Record) -> Result<Writer, StateError> {
        let path = path_for(state_path);
        let werr = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(d).map_err(werr)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(werr)?;
        let mut line = serde_json::to_vec(&begin).map_err(|e| werr(std::io::Error::other(e)))?;
        line.push(b'\n');
        file.write_all(&line).and_then(|_| file.sync_data()).map_err(werr)?;
        Writer::with_sink(Box::new(FileSink(file))).map_err(werr)
    }

    /// A writer whose groups go to `sink` (the begin record already written).
    pub fn with_sink(sink: Box<dyn Sink>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer_loop(sink, rx))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Append a record; it reaches the disk with the next group.
    pub fn append(&self, rec: Record) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Rec(rec, None));
        }
    }

    /// Append a record and wait until it (and everything before it) is fsync'd.
    pub async fn durable(&self, rec: Record) -> Result<(), String> {
        let (ack, wait) = oneshot::channel();
        match &self.tx {
            Some(tx) => tx
                .send(Msg::Rec(rec, Some(ack)))
                .map_err(|_| "journal writer stopped".to_string())?,
            None => return Err("journal closed".into()),
        }
        wait.await.map_err(|_| "journal writer stopped".to_string())?
    }

    /// Flush everything and stop the writer; returns the number of fsyncs.
    pub fn close(mut self) -> Result<u64, String> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| "journal writer panicked".to_string())?,
            None => Ok(0),
        }
    }
}

/// Where groups of journal lines go; `write_group` returns once they are durable.
pub trait Sink: Send {
    fn write_group(&mut self, lines: &[u8]) -> Result<(), String>;
}

/// The local journal file: append, then fsync.
struct FileSink(fs::File);

impl Sink for FileSink {
    fn write_group(&mut self, lines: &[u8]) -> Result<(), String> {
        self.0
            .write_all(lines)
            .and_then(|_| self.0.sync_data())
            .map_err(|e| e.to_string())
    }
}

fn writer_loop(mut sink: Box<dyn Sink>, rx: mpsc::Receiver<Msg>) -> Result<u64, String> {
    let mut failed: Option<String> = None;
    let mut syncs = 0u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Ok(first) = rx.recv() {
        let mut acks = Vec::new();
        buf.clear();
        let take = |m: Msg, buf: &mut Vec<u8>, acks: &mut Vec<Ack>| {
            let Msg::Rec(rec, ack) = m;
            if serde_json::to_writer(&mut *buf, &rec).is_ok() {
                buf.push(b'\n');
            }
            if let Some(a) = ack {
                acks.push(a);
            }
        };
        take(first, &mut buf, &mut acks);
        while let Ok(m) = rx.try_recv() {
            take(m, &mut buf, &mut acks);
        }
        if failed.is_none() {
            if let Err(e) = sink.write_group(&buf) {
                failed = Some(format!("journal write failed: {e}"));
            }
            syncs += 1;
        }
        for a in acks {
            let _ = a.send(match &failed {
                None => Ok(()),
                Some(e) => Err(e.clone()),
            });
        }
    }
    match failed {
        None => Ok(syncs),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Operation;
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

    #[test]
    fn replay_restores_done_and_keeps_unsettled_intents() {
        let dir = tempfile::tempdir().unwrap();
        let sp = dir.path().join("s.json");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let w = Writer::open(
            &sp,
            Record::Begin {
                lineage: "L".into(),
                serial: 0,
                stack: "x".into(),
            },
        )
        .unwrap();
        let intent = |a: &str| Intent {
            address: a.into(),
            kind: "data".into(),
            operation: Operation::Create,
            started: "t".into(),
            id: None,
            attempt: None,
        };
        rt.block_on(w.durable(Record::Intent {
            intent: intent("data.a"),
        }))
        .unwrap();
        w.append(Record::Done {
            address: "data.a".into(),
            resource: res("1"),
        });
        rt.block_on(w.durable(Record::Intent {
            intent: intent("data.b"),
        }))
        .unwrap();
        w.close().unwrap();
        // A torn last line, as a kill in the middle of a write leaves it.
        let mut f = OpenOptions::new().append(true).open(path_for(&sp)).unwrap();
        f.write_all(br#"{"t":"done","addr"#).unwrap();
        let (s, replayed) = replay(&sp, None).unwrap();
        let s = s.unwrap();
        assert!(replayed);
        assert_eq!(s.lineage, "L");
        assert_eq!(s.resources.keys().collect::<Vec<_>>(), vec!["data.a"]);
        assert_eq!(s.pending.len(), 1);
        assert_eq!(s.pending[0].address, "data.b");
    }

    #[test]
    fn journal_older_than_snapshot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let sp = dir.path().join("s.json");
        let w = Writer::open(
            &sp,
            Record::Begin {
                lineage: "L".into(),
                serial: 3,
                stack: "x".into(),
            },
        )
        .unwrap();
        w.append(Record::Removed {
            address: "data.a".into(),
        });
        w.close().unwrap();
        let mut snap = State::new("x");
        snap.lineage = "L".into();
        snap.serial = 4;
        snap.resources.insert("data.a".into(), res("1"));
        let (s, replayed) = replay(&sp, Some(snap.clone())).unwrap();
        assert!(!replayed);
        assert_eq!(s.unwrap(), snap);
    }
}
