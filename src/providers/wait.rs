//! Waiting for the cloud: one generic loop (`wait_for`) with backoff, a
//! timeout and progress text, and per-kind conditions as small named
//! functions that say whether an object is done, still going, or failed.

use std::future::Future;
use std::time::{Duration, Instant};

use super::ProviderError;

tokio::task_local! {
    /// The last status a running step's wait saw, for its progress lines and
    /// its timeout message (set by the executor around each step).
    pub static PROGRESS: std::sync::Arc<std::sync::Mutex<Option<String>>>;
}

/// Tell the running step's progress line what the wait sees now.
pub fn progress(status: &str) {
    let _ = PROGRESS.try_with(|p| {
        if let Ok(mut g) = p.lock() {
            *g = Some(status.to_string());
        }
    });
}

/// What a condition says of one observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Check<T> {
    /// Done, with what to return.
    Done(T),
    /// Not yet; the status to show.
    Pending(String),
    /// Will never get there; why.
    Failed(String),
}

impl Check<()> {
    /// The same verdict, done with `v`.
    pub fn with<T>(self, v: T) -> Check<T> {
        match self {
            Check::Done(()) => Check::Done(v),
            Check::Pending(s) => Check::Pending(s),
            Check::Failed(f) => Check::Failed(f),
        }
    }
}

/// How long and how often to poll.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub timeout: Duration,
    pub first: Duration,
    pub max: Duration,
}

impl Policy {
    /// Polls starting at 2 s, growing to 15 s, for at most `timeout`.
    pub fn minutes(timeout: Duration) -> Policy {
        Policy {
            timeout,
            first: Duration::from_secs(2),
            max: Duration::from_secs(15),
        }
    }

    /// For tests: poll without sleeping between attempts... almost.
    pub fn fast(timeout: Duration) -> Policy {
        Policy {
            timeout,
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
        }
    }
}

/// Poll `observe` until its check is done or failed, or `policy.timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, policy: Policy, mut observe: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check<T>, ProviderError>>,
{
    let t0 = Instant::now();
    let mut wait = policy.first;
    loop {
        let last = match observe().await? {
            Check::Done(v) => return Ok(v),
            Check::Failed(why) => return Err(ProviderError::new(format!("{what} failed: {why}"))),
            Check::Pending(status) => status,
        };
        progress(&last);
        if t0.elapsed() + wait > policy.timeout {
            return Err(ProviderError::new(format!(
                "timed out after {} waiting for {what} (last status: {last}); it may still finish in the cloud, and the next run will pick it up",
                humantime::format_duration(Duration::from_secs(t0.elapsed().as_secs()))
            )));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(policy.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_when_done_and_fails_on_failure() {
        let mut n = 0;
        let v = wait_for("x", Policy::fast(Duration::from_secs(5)), || {
            n += 1;
            let c = if n < 3 {
                Check::Pending("CREATING".into())
            } else {
                Check::Done(n)
            };
            async move { Ok(c) }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
        let e = wait_for::<(), _, _>("cluster x", Policy::fast(Duration::from_secs(5)), || async {
            Ok(Check::Failed("status FAILED".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(e.message, "cluster x failed: status FAILED");
    }

    #[tokio::test]
    async fn times_out_naming_the_last_status() {
        let e = wait_for::<(), _, _>("cluster x", Policy::fast(Duration::from_millis(30)), || async {
            Ok(Check::Pending("CREATING".into()))
        })
        .await
        .unwrap_err();
        assert!(e.message.starts_with("timed out after"), "{}", e.message);
        assert!(e.message.contains("last status: CREATING"), "{}", e.message);
    }
}
