//! Several workers sharing one instance list through JetStream key-value
//! buckets, so that each instance is followed by exactly one of them.
//!
//! Three buckets, named after [`CoordinateConfig::bucket`]:
//! - `<bucket>-leases`: one key per instance, made with `create` (it fails
//!   when the key exists) and renewed with `update` at the revision the
//!   worker last wrote (it fails when anyone else wrote since). The bucket's
//!   `max_age` is the lease: a worker that dies stops renewing, its keys
//!   age out, and another worker's `create` then succeeds.
//! - `<bucket>-workers`: one key per live worker, written every tick, with
//!   the same `max_age`: how many workers share the list.
//! - `<bucket>-positions`: per instance, the id of the last status the
//!   holder delivered (acknowledged by JetStream, with a NATS sink), kept
//!   without an age: whoever takes the instance over resumes after it.
//!
//! Each worker holds at most its share (the instances over the live
//! workers, rounded up), releases what is over it when workers join, and
//! tries the free ones in an order of its own (rendezvous hashing of worker
//! and host), so that workers spread over the list rather than race for
//! its head.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use crate::nats::connection::redact;
use crate::nats::{Bucket, JetStream};

/// How to reach the coordination buckets, and the lease.
#[derive(Clone)]
#[non_exhaustive]
pub struct CoordinateConfig {
    /// `nats://host:port`.
    pub url: String,
    /// The buckets' common prefix.
    pub bucket: String,
    /// How long a lease lasts without renewal (it is renewed every third
    /// of it): how long a dead worker's instances wait for a new owner.
    pub lease: Duration,
    /// This worker's name (unique among the workers).
    pub worker: String,
}

// The URL may carry credentials: shown without them.
impl std::fmt::Debug for CoordinateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinateConfig")
            .field("url", &redact(&self.url))
            .field("bucket", &self.bucket)
            .field("lease", &self.lease)
            .field("worker", &self.worker)
            .finish()
    }
}

impl CoordinateConfig {
    /// The defaults for `url`: buckets `mastostream-firehose-*`, a 15 s
    /// lease, and a worker name from the host name and process id.
    pub fn new(url: impl Into<String>) -> CoordinateConfig {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        CoordinateConfig {
            url: url.into(),
            bucket: "mastostream-firehose".into(),
            lease: Duration::from_secs(15),
            worker: format!("{host}-{}", std::process::id()),
        }
    }
}

/// The last status delivered per instance, as the coordinator records it.
#[derive(Debug, Default)]
pub struct Positions {
    ids: Mutex<HashMap<Arc<str>, String>>,
}

impl Positions {
    /// Notes that `host`'s status `id` was delivered.
    pub fn delivered(&self, host: &Arc<str>, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        match ids.get_mut(host) {
            Some(last) if last == id => {}
            Some(last) => id.clone_into(last),
            None => {
                ids.insert(host.clone(), id.to_owned());
            }
        }
    }

    /// The last id delivered from `host`.
    pub fn get(&self, host: &str) -> Option<String> {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(host).cloned()
    }

    /// Starts `host` over at `resume_after` (the position another holder
    /// recorded), or at nothing: what this worker delivered the last time
    /// it held `host` is older than what the holders since recorded, and
    /// writing it back would move the instance's position backwards.
    pub fn start_at(&self, host: &str, resume_after: Option<&str>) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        match resume_after {
            Some(id) => {
                ids.insert(host.into(), id.to_owned());
            }
            None => {
                ids.remove(host);
            }
        }
    }
}

/// A KV key for `text`: what keys may not hold (`:`, `[`, `]`, …) as `=XX`.
pub fn key(prefix: &str, text: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + text.len() + 1);
    key.push_str(prefix);
    key.push('.');
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            key.push(byte as char);
        } else {
            key.push_str(&format!("={byte:02X}"));
        }
    }
    key
}

/// The order in which `worker` tries free instances: by a hash of the two.
fn rank(worker: &str, host: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    worker.hash(&mut hasher);
    host.hash(&mut hasher);
    hasher.finish()
}

/// How many of `instances` one of `workers` holds at most.
pub fn share(instances: usize, workers: usize) -> usize {
    instances.div_ceil(workers.max(1))
}

/// What the coordinator tells the feed.
#[derive(Debug)]
pub enum Change {
    /// This worker now holds `host`: follow it, after `resume_after` if
    /// a previous holder recorded where it got to.
    Acquired {
        host: String,
        resume_after: Option<String>,
    },
    /// This worker no longer holds `host`: stop following it.
    Released { host: String },
}

/// The buckets.
struct Buckets {
    leases: Bucket,
    workers: Bucket,
    positions: Bucket,
}

async fn open(config: &CoordinateConfig) -> Result<Buckets, String> {
    let jetstream = JetStream::connect(&config.url, Duration::from_secs(5))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact(&config.url)))?;
    let jetstream = std::sync::Arc::new(jetstream);
    let bucket = |suffix: &str, max_age: Duration| {
        let name = format!("{}-{suffix}", config.bucket);
        let jetstream = jetstream.clone();
        async move {
            Bucket::open(jetstream, &name, max_age)
                .await
                .map_err(|e| format!("cannot open the bucket {name}: {e}"))
        }
    };
    Ok(Buckets {
        leases: bucket("leases", config.lease).await?,
        workers: bucket("workers", config.lease).await?,
        positions: bucket("positions", Duration::ZERO).await?,
    })
}

/// The coordinator's state between ticks.
struct Coordinator {
    config: CoordinateConfig,
    hosts: Vec<String>,
    /// Held instances, with the revision of the lease last written.
    held: HashMap<String, u64>,
    /// The position last written per held instance.
    written: HashMap<String, String>,
    positions: Arc<Positions>,
    changes: tokio::sync::mpsc::UnboundedSender<Change>,
}

/// Shares `hosts` with the other workers until `changes` is dropped: says
/// through `changes` which instances this worker takes and gives up. While
/// NATS is away nothing is held (the leases age out elsewhere too), and it
/// tries again.
pub async fn run(
    config: CoordinateConfig,
    hosts: Vec<String>,
    positions: Arc<Positions>,
    changes: tokio::sync::mpsc::UnboundedSender<Change>,
) {
    let tick = (config.lease / 3).max(Duration::from_millis(100));
    let mut coordinator = Coordinator {
        config,
        hosts,
        held: HashMap::new(),
        written: HashMap::new(),
        positions,
        changes,
    };
    let mut failures = 0u32;
    loop {
        match open(&coordinator.config).await {
            Ok(buckets) => {
                failures = 0;
                let mut ticker = tokio::time::interval(tick);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticker.tick().await;
                    if coordinator.changes.is_closed() {
                        return;
                    }
                    if let Err(error) = coordinator.tick(&buckets).await {
                        tracing::warn!(%error, "coordination broke off; giving up every lease");
                        break;
                    }
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(%error, "NATS is not reachable for coordination; retrying");
                }
            }
        }
        coordinator.release_all();
        if coordinator.changes.is_closed() {
            return;
        }
        tokio::time::sleep(tick * failures.clamp(1, 10)).await;
    }
}

impl Coordinator {
    fn lease_value(&self) -> String {
        serde_json::json!({ "worker": self.config.worker }).to_string()
    }

    /// Renews what is held, records positions, then takes or gives up
    /// instances towards this worker's share.
    async fn tick(&mut self, buckets: &Buckets) -> Result<(), String> {
        let me = key("w", &self.config.worker);
        buckets
            .workers
            .put(&me, self.lease_value().as_bytes())
            .await
            .map_err(|e| format!("cannot announce this worker: {e}"))?;
        self.renew(buckets).await;
        self.record_positions(buckets).await;
        let workers = count_keys(&buckets.workers).await?;
        let share = share(self.hosts.len(), workers);
        if self.held.len() > share {
            self.release_extra(buckets, self.held.len() - share).await;
        } else if self.held.len() < share {
            self.acquire(buckets, share - self.held.len()).await;
        }
        Ok(())
    }

    /// Renews every lease held, concurrently; one that cannot be renewed
    /// (someone else wrote it: it aged out and was taken) is given up.
    async fn renew(&mut self, buckets: &Buckets) {
        let value = self.lease_value();
        let held: Vec<(String, u64)> = self.held.iter().map(|(h, r)| (h.clone(), *r)).collect();
        let renewed: Vec<(String, Result<u64, String>)> = futures_util::stream::iter(held)
            .map(|(host, revision)| {
                let value = value.clone();
                async move {
                    let result = buckets
                        .leases
                        .update(&key("i", &host), value.as_bytes(), revision)
                        .await
                        .map_err(|e| e.to_string());
                    (host, result)
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for (host, result) in renewed {
            match result {
                Ok(revision) => {
                    self.held.insert(host, revision);
                }
                Err(error) => {
                    tracing::warn!(instance = %host, %error, "lease lost; no longer following it");
                    self.held.remove(&host);
                    self.written.remove(&host);
                    let _ = self.changes.send(Change::Released { host });
                }
            }
        }
    }

    /// Writes the position of each held instance that moved since.
    async fn record_positions(&mut self, buckets: &Buckets) {
        let moved: Vec<(String, String)> = self
            .held
            .keys()
            .filter_map(|host| {
                let now = self.positions.get(host)?;
                (self.written.get(host) != Some(&now)).then(|| (host.clone(), now))
            })
            .collect();
        let written: Vec<(String, String, bool)> = futures_util::stream::iter(moved)
            .map(|(host, id)| async move {
                let ok = buckets
                    .positions
                    .put(&key("i", &host), id.as_bytes())
                    .await
                    .is_ok();
                (host, id, ok)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for (host, id, ok) in written {
            if ok {
                self.written.insert(host, id);
            }
        }
    }

    /// Gives up `count` held instances (their positions written first).
    async fn release_extra(&mut self, buckets: &Buckets, count: usize) {
        let mut held: Vec<String> = self.held.keys().cloned().collect();
        // The ones this worker ranks lowest go: another ranks them higher.
        held.sort_by_key(|host| rank(&self.config.worker, host));
        for host in held.into_iter().rev().take(count) {
            let revision = self.held.remove(&host).unwrap_or_default();
            self.written.remove(&host);
            let _ = self.changes.send(Change::Released { host: host.clone() });
            if let Some(id) = self.positions.get(&host) {
                let _ = buckets.positions.put(&key("i", &host), id.as_bytes()).await;
            }
            let _ = buckets.leases.delete(&key("i", &host), revision).await;
        }
    }

    /// Tries free instances, in this worker's order, until `count` more
    /// are held or none is left to try.
    async fn acquire(&mut self, buckets: &Buckets, count: usize) {
        let mut free: Vec<&String> = self
            .hosts
            .iter()
            .filter(|host| !self.held.contains_key(*host))
            .collect();
        free.sort_by_key(|host| rank(&self.config.worker, host));
        let value = self.lease_value();
        let mut taken = Vec::new();
        for host in free {
            if taken.len() == count {
                break;
            }
            if let Ok(revision) = buckets
                .leases
                .create(&key("i", host), value.as_bytes())
                .await
            {
                taken.push((host.clone(), revision));
            }
        }
        for (host, revision) in taken {
            let resume_after = match buckets.positions.get(&key("i", &host)).await {
                Ok(Some(bytes)) => String::from_utf8(bytes).ok(),
                Ok(None) => None,
                // Not knowing where the last holder got to is not "nowhere":
                // following from now (and recording that) would lose what
                // came in between. The lease goes back; a later tick tries again.
                Err(error) => {
                    tracing::warn!(instance = %host, %error, "cannot read the instance's position; lease given back");
                    let _ = buckets.leases.delete(&key("i", &host), revision).await;
                    continue;
                }
            };
            tracing::info!(instance = %host, ?resume_after, "lease taken");
            self.positions.start_at(&host, resume_after.as_deref());
            self.held.insert(host.clone(), revision);
            let _ = self.changes.send(Change::Acquired { host, resume_after });
        }
    }

    fn release_all(&mut self) {
        for (host, _) in self.held.drain() {
            let _ = self.changes.send(Change::Released { host });
        }
        self.written.clear();
    }
}

/// How many workers announced themselves within a lease.
async fn count_keys(store: &Bucket) -> Result<usize, String> {
    store.count_keys_written().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_only_what_kv_allows() {
        assert_eq!(key("i", "mastodon.social"), "i.mastodon.social");
        assert_eq!(key("i", "127.0.0.1:8080"), "i.127.0.0.1=3A8080");
        assert_eq!(key("i", "[::1]:80"), "i.=5B=3A=3A1=5D=3A80");
    }

    #[test]
    fn shares_round_up() {
        assert_eq!(share(10, 3), 4);
        assert_eq!(share(9, 3), 3);
        assert_eq!(share(5, 0), 5);
    }

    #[test]
    fn positions_keep_the_last() {
        let positions = Positions::default();
        let host: Arc<str> = "a".into();
        positions.delivered(&host, "1");
        positions.delivered(&host, "3");
        assert_eq!(positions.get("a").as_deref(), Some("3"));
        assert_eq!(positions.get("b"), None);
        // Taken again after others held it: their position, not this
        // worker's old one; none recorded, nothing.
        positions.start_at("a", Some("7"));
        assert_eq!(positions.get("a").as_deref(), Some("7"));
        positions.start_at("a", None);
        assert_eq!(positions.get("a"), None);
    }
}
