//! State on S3, with S3's own guarantees instead of a lock service:
//! - the snapshot is one object, written with `If-Match` on the ETag it was
//!   read at (`If-None-Match: *` when there was none), so two writers never
//!   silently overwrite each other;
//! - the lock is an object `<key>.lock` created with `If-None-Match: *`,
//!   holding who took it and a lease the holder renews; a lock whose lease
//!   ran out can be taken over (with `If-Match` on its ETag, so only one run
//!   wins);
//! - the journal is one object per group commit under `<key>.journal/`,
//!   each created with `If-None-Match: *`; the next run anywhere replays it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use tokio::sync::Mutex;

use super::lock::{LockError, LockInfo};

pub use crate::stack::backend::S3Config;

/// An S3 error boiled down to what a person can act on.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl S3Error {
    pub fn plain(e: impl std::fmt::Display) -> S3Error {
        S3Error {
            code: None,
            status: None,
            message: e.to_string(),
        }
    }
    fn precondition_failed(&self) -> bool {
        self.status == Some(412) || self.code.as_deref() == Some("PreconditionFailed")
    }
    fn not_found(&self) -> bool {
        matches!(self.code.as_deref(), Some("NoSuchKey") | Some("NotFound")) || self.status == Some(404)
    }
}

fn s3_err<E, R>(op: &str, bucket: &str) -> impl FnOnce(aws_sdk_s3::error::SdkError<E, R>) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    let op = op.to_string();
    let bucket = bucket.to_string();
    move |e| {
        let status = e.raw_response().map(HttpStatus::status);
        let code = e.code().map(str::to_string);
        let hint = match code.as_deref() {
            Some("NoSuchBucket") => {
                format!(" (bucket {bucket} does not exist: create it, or fix [stack.backend] bucket)")
            }
            Some("AccessDenied") | Some("Forbidden") => {
                format!(" (the credentials in use may not read and write bucket {bucket})")
            }
            _ => String::new(),
        };
        let message = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("S3 {op}: {c}: {m}{hint}"),
            (Some(c), None) => format!("S3 {op}: {c}{hint}"),
            _ => {
                let mut s = format!("S3 {op}: {e}");
                let mut src = std::error::Error::source(&e);
                while let Some(x) = src {
                    s.push_str(&format!(": {x}"));
                    src = x.source();
                }
                s
            }
        };
        S3Error { code, status, message }
    }
}

/// The HTTP status of a raw response (for 412 and 404 without a code).
pub trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A connection to the state's bucket, remembering the ETag the snapshot was read at.
#[derive(Debug)]
pub struct S3Store {
    pub config: S3Config,
    client: aws_sdk_s3::Client,
    etag: Mutex<Option<String>>,
}

impl S3Store {
    /// Clients from the standard AWS chain (the same as the cloud kinds),
    /// with the backend's own region and profile if given.
    pub async fn connect(config: S3Config) -> S3Store {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(Duration::from_millis(200));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(retry);
        if let Some(r) = &config.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(p) = &config.profile {
            loader = loader.profile_name(p);
        }
        let mut conf = loader.load().await;
        if let Some(arn) = &config.role_arn {
            // The bucket in another account: its role, assumed with the chain's credentials.
            let provider = aws_config::sts::AssumeRoleProvider::builder(arn.clone())
                .session_name("slipway-state")
                .configure(&conf)
                .build()
                .await;
            conf = conf
                .into_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                .build();
        }
        // A custom endpoint (an S3-compatible store, an emulator) rarely
        // serves virtual-hosted bucket names.
        let path_style = conf.endpoint_url().is_some();
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(path_style)
                .build(),
        );
        S3Store {
            config,
            client,
            etag: Mutex::new(None),
        }
    }

    fn bucket(&self) -> &str {
        &self.config.bucket
    }

    async fn get(&self, key: &str, version: Option<&str>) -> Result<Option<(Vec<u8>, Option<String>)>, S3Error> {
        match self
            .client
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
        {
            Ok(o) => {
                let etag = o.e_tag().map(str::to_string);
                let bytes = o.body.collect().await.map_err(|e| S3Error {
                    code: None,
                    status: None,
                    message: format!("S3 GetObject {key}: reading the body: {e}"),
                })?;
                Ok(Some((bytes.into_bytes().to_vec(), etag)))
            }
            Err(e) => {
                let e = s3_err("GetObject", self.bucket())(e);
                if e.not_found() && e.code.as_deref() != Some("NoSuchBucket") {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// PutObject with a precondition: `Some(etag)` -> If-Match, `None` -> If-None-Match: *.
    async fn put(&self, key: &str, body: Vec<u8>, if_match: Option<&str>) -> Result<Option<String>, S3Error> {
        let mut req = self
            .client
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        req = match if_match {
            Some(e) => req.if_match(e),
            None => req.if_none_match("*"),
        };
        let out = req.send().await.map_err(s3_err("PutObject", self.bucket()))?;
        Ok(out.e_tag().map(str::to_string))
    }

    async fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.client
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
            .map_err(s3_err("DeleteObject", self.bucket()))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let pages: Vec<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output> = self
            .client
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(prefix)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(s3_err("ListObjectsV2", self.bucket()))?;
        let mut keys: Vec<String> = pages
            .iter()
            .flat_map(|p| p.contents())
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The snapshot's bytes; its ETag is kept for the next `write_snapshot`.
    pub async fn read_snapshot(&self) -> Result<Option<Vec<u8>>, S3Error> {
        let got = self.get(&self.config.key, None).await?;
        if let Some((_, None)) = &got {
            return Err(S3Error::plain(format!(
                "S3 GetObject {}: the answer has no ETag, so the snapshot cannot be written safely (If-Match)",
                self.config.url()
            )));
        }
        let mut etag = self.etag.lock().await;
        *etag = got.as_ref().and_then(|(_, e)| e.clone());
        Ok(got.map(|(b, _)| b))
    }

    /// Write the snapshot only if nobody wrote it since we read it.
    pub async fn write_snapshot(&self, bytes: Vec<u8>) -> Result<(), S3Error> {
        let mut etag = self.etag.lock().await;
        match self.put(&self.config.key, bytes.clone(), etag.as_deref()).await {
            Ok(new) => {
                *etag = new;
                Ok(())
            }
            Err(e) if e.precondition_failed() => {
                // A retry of our own put whose answer was lost finds our bytes there.
                if let Some((have, new)) = self.get(&self.config.key, None).await? {
                    if have == bytes {
                        *etag = new;
                        return Ok(());
                    }
                }
                Err(S3Error {
                    message: format!(
                        "{} was written by someone else since this run read it (the ETag check failed); nothing was \
                     overwritten. Run again to work on the newer state.",
                        self.config.url()
                    ),
                    ..e
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Every journal object's bytes, in order.
    pub async fn read_journal(&self) -> Result<Vec<u8>, S3Error> {
        let mut all = Vec::new();
        for key in self.list(&self.config.journal_prefix()).await? {
            if let Some((b, _)) = self.get(&key, None).await? {
                all.extend_from_slice(&b);
            }
        }
        Ok(all)
    }

    fn journal_key(&self, seq: u64) -> String {
        format!("{}{seq:010}.jsonl", self.config.journal_prefix())
    }

    /// Create journal object `seq` (If-None-Match: *). A 412 on a retried
    /// put whose first answer was lost is success when the object holds
    /// exactly these bytes.
    pub async fn put_journal(&self, seq: u64, bytes: Vec<u8>) -> Result<(), S3Error> {
        let key = self.journal_key(seq);
        match self.put(&key, bytes.clone(), None).await {
            Ok(_) => Ok(()),
            Err(e) if e.precondition_failed() => match self.get(&key, None).await? {
                Some((have, _)) if have == bytes => Ok(()),
                _ => Err(S3Error {
                    message: format!(
                        "journal object {key} already exists with other content: another run is writing this \
                         state's journal"
                    ),
                    ..e
                }),
            },
            Err(e) => Err(e),
        }
    }

    /// Delete every journal object, up to 1,000 per DeleteObjects call.
    pub async fn remove_journal(&self) -> Result<(), S3Error> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let keys = self.list(&self.config.journal_prefix()).await?;
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().map_err(S3Error::plain))
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_objects()
                .bucket(self.bucket())
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(S3Error::plain)?,
                )
                .send()
                .await
                .map_err(s3_err("DeleteObjects", self.bucket()))?;
            if let Some(e) = out.errors().first() {
                return Err(S3Error::plain(format!(
                    "S3 DeleteObjects {}: {}: {}",
                    e.key().unwrap_or_default(),
                    e.code().unwrap_or_default(),
                    e.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// Snapshot versions, newest first (bucket versioning).
    pub async fn versions(&self) -> Result<Vec<Version>, S3Error> {
        let mut out = Vec::new();
        let mut key_marker = None;
        let mut version_marker = None;
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(self.bucket())
                .prefix(&self.config.key)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(s3_err("ListObjectVersions", self.bucket()))?;
            for v in page.versions() {
                if v.key() != Some(self.config.key.as_str()) {
                    continue;
                }
                out.push(Version {
                    id: v.version_id().unwrap_or("null").to_string(),
                    modified: v.last_modified().map(|t| t.to_string()).unwrap_or_default(),
                    size: v.size().unwrap_or(0),
                    latest: v.is_latest().unwrap_or(false),
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        Ok(out)
    }

    /// One version of the snapshot.
    pub async fn read_version(&self, version: &str) -> Result<Option<Vec<u8>>, S3Error> {
        Ok(self.get(&self.config.key, Some(version)).await?.map(|(b, _)| b))
    }

    /// Take the lock for `info`, waiting up to `timeout`; take over a lock
    /// whose lease expired. The returned lock renews its lease until released.
    pub async fn lock(self: &Arc<Self>, mut info: LockInfo, timeout: Option<Duration>) -> Result<S3Lock, LockError> {
        let key = self.config.lock_key();
        let lease = self.config.lock_lease_secs;
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let io = |e: S3Error| LockError::Remote {
            state: self.config.url(),
            detail: e.message,
        };
        loop {
            info.lease_expires = Some(unix_now() + lease);
            let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
            match self.put(&key, body.clone(), None).await {
                Ok(etag) => return Ok(S3Lock::start(self.clone(), info, etag)),
                Err(e) if e.precondition_failed() => {}
                Err(e) => return Err(io(e)),
            }
            // Held: by whom, and is its lease still running?
            let Some((bytes, etag)) = self.get(&key, None).await.map_err(io)? else {
                continue; // released meanwhile
            };
            let holder: LockInfo = match serde_json::from_slice(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    return Err(LockError::Unreadable {
                        state: self.config.url().into(),
                        path: format!("s3://{}/{key}", self.config.bucket).into(),
                        detail: e.to_string(),
                    })
                }
            };
            if holder.id == info.id {
                // Our own create, retried after its answer was lost.
                return Ok(S3Lock::start(self.clone(), info, etag));
            }
            let now = unix_now();
            if let (Some(exp), Some(etag)) = (holder.lease_expires, etag.as_deref()) {
                if exp < now {
                    // The holder stopped renewing: take it over, unless another run just did.
                    match self.put(&key, body, Some(etag)).await {
                        Ok(new) => {
                            eprintln!(
                                "Took over the lock on {}: its lease ran out {} s ago ({holder}).",
                                self.config.url(),
                                now - exp
                            );
                            return Ok(S3Lock::start(self.clone(), info, new));
                        }
                        Err(e) if e.precondition_failed() => continue,
                        Err(e) => return Err(io(e)),
                    }
                }
            }
            if deadline.is_some_and(|d| std::time::Instant::now() < d) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let note = match holder.lease_expires {
                Some(exp) => format!(
                    " (its lease is renewed while it runs; it runs out in {} s if that run is gone)",
                    exp.saturating_sub(now)
                ),
                None => String::new(),
            };
            return Err(LockError::Held {
                state: self.config.url().into(),
                holder,
                note,
            });
        }
    }

    /// Remove the lock if its ID is `id` and its lease has run out (or `force`).
    pub async fn force_unlock(&self, id: &str, force: bool) -> Result<LockInfo, LockError> {
        let key = self.config.lock_key();
        let io = |e: S3Error| LockError::Remote {
            state: self.config.url(),
            detail: e.message,
        };
        let Some((bytes, _)) = self.get(&key, None).await.map_err(io)? else {
            return Err(LockError::NotLocked {
                state: self.config.url().into(),
            });
        };
        let info: LockInfo = serde_json::from_slice(&bytes).map_err(|e| LockError::Unreadable {
            state: self.config.url().into(),
            path: format!("s3://{}/{key}", self.config.bucket).into(),
            detail: e.to_string(),
        })?;
        if info.id != id {
            return Err(LockError::WrongId {
                state: self.config.url().into(),
                actual: info.id,
                given: id.to_string(),
            });
        }
        // A lease still being renewed means its run is alive somewhere.
        if !force && info.lease_expires.is_some_and(|exp| exp > unix_now()) {
            return Err(LockError::Alive {
                state: self.config.url().into(),
                holder: info,
            });
        }
        self.delete(&key).await.map_err(io)?;
        Ok(info)
    }
}

/// A snapshot version in a versioned bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub id: String,
    pub modified: String,
    pub size: i64,
    pub latest: bool,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A held S3 lock: a task renews its lease every third of it; dropping
/// the lock stops the task and deletes the object if it is still ours.
#[derive(Debug)]
pub struct S3Lock {
    pub info: LockInfo,
    store: Arc<S3Store>,
    renew: tokio::task::JoinHandle<()>,
}

impl S3Lock {
    fn start(store: Arc<S3Store>, info: LockInfo, etag: Option<String>) -> S3Lock {
        let etag = Arc::new(Mutex::new(etag));
        let (s, i, e) = (store.clone(), info.clone(), etag);
        let renew = tokio::spawn(async move {
            let every = Duration::from_millis((s.config.lock_lease_secs * 1000 / 3).max(200));
            let mut i = i;
            loop {
                tokio::time::sleep(every).await;
                i.lease_expires = Some(unix_now() + s.config.lock_lease_secs);
                let body = serde_json::to_vec_pretty(&i).unwrap_or_default();
                let mut cur = e.lock().await;
                match s.put(&s.config.lock_key(), body, cur.as_deref()).await {
                    Ok(new) => *cur = new,
                    Err(err) if err.precondition_failed() => {
                        // Our own renewal, retried after its answer was lost?
                        if let Ok(Some((b, tag))) = s.get(&s.config.lock_key(), None).await {
                            if serde_json::from_slice::<LockInfo>(&b).is_ok_and(|h| h.id == i.id) {
                                *cur = tag;
                                continue;
                            }
                        }
                        eprintln!(
                            "warning: the lock on {} was taken over or removed by another run; this run's \
                             snapshot write will be refused if that run wrote the state",
                            s.config.url()
                        );
                        return;
                    }
                    // A network error: try again at the next tick, the lease has slack.
                    Err(_) => {}
                }
            }
        });
        S3Lock { info, store, renew }
    }
}

impl Drop for S3Lock {
    fn drop(&mut self) {
        self.renew.abort();
        let (store, id) = (self.store.clone(), self.info.id.clone());
        let release = async move {
            // Delete only our own lock: it may have been taken over.
            let key = store.config.lock_key();
            if let Ok(Some((bytes, _))) = store.get(&key, None).await {
                if serde_json::from_slice::<LockInfo>(&bytes).is_ok_and(|i| i.id == id) {
                    let _ = store.delete(&key).await;
                }
            }
        };
        // Drop cannot await: release on a helper thread driven by the runtime.
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                let _ = std::thread::scope(|s| s.spawn(|| h.block_on(release)).join());
            }
        }
    }
}
