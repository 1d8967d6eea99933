//! Publishing the feed to a NATS JetStream stream instead of stdout: each
//! status on a subject per instance, with `Nats-Msg-Id` set to its `uri`
//! so that JetStream itself drops a status another worker already
//! published within the stream's duplicate window. A publish waits for
//! JetStream's acknowledgement and is retried until it comes; while NATS is
//! away statuses wait in a bounded buffer, and what does not fit is
//! counted as lost, never dropped in silence.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::nats::connection::redact;
use crate::nats::{Error as NatsError, JetStream, StreamConfig};

/// Where and how to publish.
#[derive(Clone)]
pub struct SinkConfig {
    /// `nats://host:port`.
    pub url: String,
    /// The JetStream stream (created if missing).
    pub stream: String,
    /// Subjects are `PREFIX.<instance>` (the host with `.` and `:` as `_`).
    pub subject_prefix: String,
    /// How long JetStream remembers a `Nats-Msg-Id` (the stream's duplicate
    /// window, when the stream is created here).
    pub duplicate_window: Duration,
    /// How many statuses wait while NATS is away.
    pub buffer: usize,
}

// The URL may carry credentials: shown without them.
impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("url", &redact(&self.url))
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("duplicate_window", &self.duplicate_window)
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl SinkConfig {
    /// The defaults for `url`: stream `MASTOSTREAM`, subjects
    /// `mastostream.statuses.<instance>`, a 10-minute duplicate window,
    /// 100,000 statuses of buffer.
    pub fn new(url: impl Into<String>) -> SinkConfig {
        SinkConfig {
            url: url.into(),
            stream: "MASTOSTREAM".into(),
            subject_prefix: "mastostream.statuses".into(),
            duplicate_window: Duration::from_secs(600),
            buffer: 100_000,
        }
    }

    /// The subject for statuses from `host`.
    pub fn subject(&self, host: &str) -> String {
        let token: String = host
            .chars()
            .map(|c| match c {
                '.' | ':' | '*' | '>' | ' ' => '_',
                other => other,
            })
            .collect();
        format!("{}.{token}", self.subject_prefix)
    }
}

/// A status on its way to JetStream.
#[derive(Debug)]
struct Pending {
    subject: String,
    /// `Nats-Msg-Id`: the status's URI.
    id: String,
    json: String,
    /// Where it came from, and its id there: once acknowledged, the
    /// instance's position (see [`Sink::track_positions`]).
    host: Arc<str>,
    status_id: String,
}

/// What the sink has done.
#[derive(Debug, Default)]
pub struct SinkCounts {
    /// Acknowledged by JetStream as stored.
    pub published: AtomicU64,
    /// Acknowledged as a duplicate of one it holds (another worker's).
    pub duplicates: AtomicU64,
    /// Dropped because the buffer was full while NATS was away.
    pub lost: AtomicU64,
    /// Failed publishes retried.
    pub retries: AtomicU64,
}

/// The buffer between the feed and the publishing task.
#[derive(Debug)]
pub struct Sink {
    config: SinkConfig,
    queue: Mutex<VecDeque<Pending>>,
    wake: Notify,
    /// Woken when the queue runs empty.
    drained: Notify,
    /// The counts, for the summary.
    pub counts: SinkCounts,
    positions: std::sync::OnceLock<Arc<crate::coordinate::Positions>>,
}

impl Sink {
    /// A sink for `config`; [`publish_all`](Self::publish_all) drains it.
    pub fn new(config: SinkConfig) -> Arc<Sink> {
        Arc::new(Sink {
            config,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            drained: Notify::new(),
            counts: SinkCounts::default(),
            positions: std::sync::OnceLock::new(),
        })
    }

    /// Notes in `positions` each status JetStream acknowledges (stored or
    /// a duplicate): what a worker that takes an instance over resumes
    /// after, so nothing queued here and lost with this process is skipped.
    pub fn track_positions(&self, positions: Arc<crate::coordinate::Positions>) {
        let _ = self.positions.set(positions);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a status; never waits. Past the bound the oldest waiting one
    /// is dropped and counted as lost.
    pub fn push(&self, host: &Arc<str>, id: &str, status_id: &str, json: &str) {
        let mut queue = self.lock();
        if queue.len() >= self.config.buffer.max(1) {
            queue.pop_front();
            self.counts.lost.fetch_add(1, Ordering::Relaxed);
        }
        queue.push_back(Pending {
            subject: self.config.subject(host),
            id: id.to_owned(),
            json: json.to_owned(),
            host: host.clone(),
            status_id: status_id.to_owned(),
        });
        drop(queue);
        self.wake.notify_one();
    }

    /// Waits until nothing waits to be published.
    pub async fn wait_drained(&self) {
        loop {
            let drained = self.drained.notified();
            let mut drained = std::pin::pin!(drained);
            // Registered before the check: a drain in between wakes it.
            drained.as_mut().enable();
            if self.waiting() == 0 {
                return;
            }
            drained.await;
        }
    }

    /// How many statuses wait.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// Connects (again and again while NATS is away), makes sure the stream
    /// exists, and publishes what is queued, each acknowledged before the
    /// next; runs until the task is dropped.
    pub async fn publish_all(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            match self.connect().await {
                Ok(jetstream) => {
                    failures = 0;
                    if let Err(error) = self.drain(&jetstream).await {
                        tracing::warn!(%error, "NATS: publishing broke off; statuses wait and are retried");
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 {
                        tracing::warn!(%error, "NATS is not reachable; statuses wait (up to the buffer) and are retried");
                    }
                }
            }
            self.counts.retries.fetch_add(1, Ordering::Relaxed);
            let pause = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
            tokio::time::sleep(pause).await;
        }
    }

    async fn connect(&self) -> Result<JetStream, String> {
        let jetstream = JetStream::connect(&self.config.url, Duration::from_secs(5))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", redact(&self.config.url)))?;
        jetstream
            .ensure_stream(&StreamConfig {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                duplicate_window: self.config.duplicate_window,
                ..StreamConfig::default()
            })
            .await
            .map_err(|e| format!("cannot make the stream {}: {e}", self.config.stream))?;
        Ok(jetstream)
    }

    /// Publishes until the connection fails; the status that failed stays
    /// at the front of the queue.
    async fn drain(&self, jetstream: &JetStream) -> Result<(), String> {
        loop {
            let next = self
                .lock()
                .front()
                .map(|p| (p.subject.clone(), p.id.clone(), p.json.clone()));
            let Some((subject, id, json)) = next else {
                self.wake.notified().await;
                continue;
            };
            let ack = match jetstream
                .publish(&subject, &[("Nats-Msg-Id", &id)], json.as_bytes())
                .await
            {
                Ok(ack) => Some(ack),
                // No retry can make it fit: it is lost, counted and said.
                Err(error @ (NatsError::TooLarge { .. } | NatsError::Config(_))) => {
                    tracing::warn!(%error, %subject, "a status NATS cannot take; dropped");
                    self.counts.lost.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(error) => return Err(error.to_string()),
            };
            match ack {
                Some(ack) if ack.duplicate => {
                    self.counts.duplicates.fetch_add(1, Ordering::Relaxed)
                }
                Some(_) => self.counts.published.fetch_add(1, Ordering::Relaxed),
                None => 0,
            };
            let (done, empty) = {
                let mut queue = self.lock();
                let done = queue.pop_front();
                (done, queue.is_empty())
            };
            if empty {
                self.drained.notify_waiters();
            }
            if let (Some(done), Some(positions)) = (done, self.positions.get())
                && !done.status_id.is_empty()
            {
                positions.delivered(&done.host, &done.status_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_never_reach_debug() {
        let config = SinkConfig::new("nats://bob:s3cret@127.0.0.1:4222");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("bob"),
            "{shown}"
        );
        assert!(shown.contains("127.0.0.1:4222"), "{shown}");
        let coordinate = crate::CoordinateConfig::new("nats://t0ken@h:1");
        assert!(!format!("{coordinate:?}").contains("t0ken"));
    }
}
