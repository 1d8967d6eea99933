//! How each instance is doing, and the counts the summary line gives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What an instance's follower is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    /// Opening its stream, or finding out how to follow it.
    Starting,
    /// Its `public:local` stream is open.
    Streaming,
    /// Its public local timeline is polled over REST (streaming needs a
    /// token it was not given).
    Polling,
    /// Waiting to try again after a break.
    BackingOff,
    /// It offers neither (or refused both); reported once, not retried.
    Unsupported(String),
    /// Its `robots.txt` disallows mastostream.
    Disallowed,
    /// It failed for good.
    Failed(String),
    /// Another worker holds its lease (see `coordinate`).
    Elsewhere,
}

impl InstanceState {
    fn word(&self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Streaming => "streaming",
            InstanceState::Polling => "polling",
            InstanceState::BackingOff => "backing off",
            InstanceState::Unsupported(_) => "unsupported",
            InstanceState::Disallowed => "disallowed",
            InstanceState::Failed(_) => "failed",
            InstanceState::Elsewhere => "elsewhere",
        }
    }
}

#[derive(Debug)]
struct Entry {
    state: InstanceState,
    statuses: u64,
}

/// The shared record of every instance and of the feed.
#[derive(Debug)]
pub struct Health {
    instances: Mutex<BTreeMap<String, Entry>>,
    /// Statuses written.
    pub written: AtomicU64,
    /// Statuses dropped as already written (same `uri`).
    pub duplicates: AtomicU64,
    /// Statuses dropped because their author opted out of indexing.
    pub noindex: AtomicU64,
    started: Instant,
    sink: OnceLock<Arc<crate::sink::Sink>>,
    /// Woken at each status written.
    progress: tokio::sync::Notify,
}

impl Health {
    /// A record of `hosts`, all starting.
    pub fn new<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Health {
        let instances = hosts
            .into_iter()
            .map(|host| {
                (
                    host.to_owned(),
                    Entry {
                        state: InstanceState::Starting,
                        statuses: 0,
                    },
                )
            })
            .collect();
        Health {
            instances: Mutex::new(instances),
            written: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            noindex: AtomicU64::new(0),
            started: Instant::now(),
            sink: OnceLock::new(),
            progress: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports the NATS sink's counts with the feed's.
    pub fn attach_sink(&self, sink: Arc<crate::sink::Sink>) {
        let _ = self.sink.set(sink);
    }

    /// The NATS sink, when there is one.
    pub fn sink(&self) -> Option<&Arc<crate::sink::Sink>> {
        self.sink.get()
    }

    /// Sets an instance's state; whether it changed.
    pub fn set(&self, host: &str, state: InstanceState) -> bool {
        let mut instances = self.lock();
        let Some(entry) = instances.get_mut(host) else {
            return false;
        };
        let changed = entry.state != state;
        entry.state = state;
        changed
    }

    /// An instance's state.
    pub fn state(&self, host: &str) -> Option<InstanceState> {
        self.lock().get(host).map(|e| e.state.clone())
    }

    /// Counts a status written from `host`.
    pub fn wrote(&self, host: &str) {
        self.written.fetch_add(1, Ordering::Relaxed);
        if let Some(entry) = self.lock().get_mut(host) {
            entry.statuses += 1;
        }
        self.progress.notify_waiters();
    }

    /// Waits until `count` statuses have been written in all.
    pub async fn wait_written(&self, count: u64) {
        loop {
            let progress = self.progress.notified();
            let mut progress = std::pin::pin!(progress);
            // Registered before the check: a status written in between wakes it.
            progress.as_mut().enable();
            if self.written.load(Ordering::Relaxed) >= count {
                return;
            }
            progress.await;
        }
    }

    /// The one-line summary: instances by state, statuses a second since
    /// the last summary (`since`: the count then and how long ago).
    pub fn summary(&self, since: (u64, Duration)) -> String {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let instances = self.lock();
        for entry in instances.values() {
            *counts.entry(entry.state.word()).or_default() += 1;
        }
        let written = self.written.load(Ordering::Relaxed);
        let rate = (written - since.0.min(written)) as f64 / since.1.as_secs_f64().max(0.001);
        let count = |word| counts.get(word).copied().unwrap_or(0);
        let mut line = format!(
            "firehose: {} instances: {} streaming, {} polling, {} backing off, {} failed",
            instances.len(),
            count("streaming"),
            count("polling"),
            count("backing off"),
            count("failed") + count("unsupported") + count("disallowed"),
        );
        let elsewhere = count("elsewhere");
        if elsewhere > 0 {
            line.push_str(&format!(", {elsewhere} held by other workers"));
        }
        line.push_str(&format!(
            " · {rate:.1} statuses/s · {written} written · {} duplicates dropped · {} noindex dropped",
            self.duplicates.load(Ordering::Relaxed),
            self.noindex.load(Ordering::Relaxed),
        ));
        if let Some(sink) = self.sink.get() {
            let counts = &sink.counts;
            line.push_str(&format!(
                " · NATS: {} published, {} duplicates, {} waiting, {} lost",
                counts.published.load(Ordering::Relaxed),
                counts.duplicates.load(Ordering::Relaxed),
                sink.waiting(),
                counts.lost.load(Ordering::Relaxed),
            ));
        }
        line
    }

    /// The per-instance table as JSON (for `--status FILE`).
    pub fn to_json(&self) -> serde_json::Value {
        let instances: Vec<serde_json::Value> = self
            .lock()
            .iter()
            .map(|(host, entry)| {
                let reason = match &entry.state {
                    InstanceState::Unsupported(reason) | InstanceState::Failed(reason) => {
                        Some(reason.clone())
                    }
                    _ => None,
                };
                serde_json::json!({
                    "instance": host,
                    "state": entry.state.word(),
                    "reason": reason,
                    "statuses": entry.statuses,
                })
            })
            .collect();
        let sink = self.sink.get().map(|sink| {
            serde_json::json!({
                "published": sink.counts.published.load(Ordering::Relaxed),
                "duplicates": sink.counts.duplicates.load(Ordering::Relaxed),
                "waiting": sink.waiting(),
                "lost": sink.counts.lost.load(Ordering::Relaxed),
            })
        });
        serde_json::json!({
            "uptime_secs": self.started.elapsed().as_secs(),
            "nats": sink,
            "written": self.written.load(Ordering::Relaxed),
            "duplicates": self.duplicates.load(Ordering::Relaxed),
            "noindex": self.noindex.load(Ordering::Relaxed),
            "instances": instances,
        })
    }
}
