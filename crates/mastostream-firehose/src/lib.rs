//! # mastostream-firehose
//!
//! Many instances' public posts as one feed: each instance's `public:local`
//! stream (so that every post comes from its own server) through the
//! mastostream engine, with its reconnects, stall detection and catch-up;
//! where streaming needs a token that was not given, the public local
//! timeline polled over REST at a pace its rate limit allows; every status
//! written once, deduplicated by `uri` within a bounded window
//! ([`dedup::DEFAULT_WINDOW`]), tagged with the instance it came from.
//!
//! Considerate by default: a User-Agent that names the tool (and a contact,
//! when given), `robots.txt` rules for `mastostream` honoured, authors who
//! opted out of indexing (`noindex: true`, `indexable: false`) left out.

pub mod coordinate;
pub mod dedup;
mod follow;
pub mod health;
pub mod instances;
pub mod nats;
mod poll;
pub mod robots;
pub mod sink;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mastostream::ReconnectPolicy;
use tokio::sync::mpsc;

pub use coordinate::{CoordinateConfig, Positions};
pub use follow::Record;
pub use health::{Health, InstanceState};
pub use instances::{Instance, parse_list};
pub use sink::{Sink, SinkConfig};

/// The name `robots.txt` rules are read for, and the User-Agent starts with.
pub const AGENT_NAME: &str = "mastostream";

/// What to follow, and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The instances.
    pub instances: Vec<Instance>,
    /// A contact (an address or URL) for the User-Agent, so that an
    /// instance's admin can reach whoever runs the firehose.
    pub contact: Option<String>,
    /// Keep statuses of authors who opted out of indexing.
    pub include_noindex: bool,
    /// How many URIs the deduplication window holds.
    pub dedup_window: usize,
    /// The pause between two polls of one instance's timeline (stretched
    /// when its rate limit asks for it).
    pub poll_interval: Duration,
    /// The least time between two requests to one instance.
    pub min_request_gap: Duration,
    /// How streams reconnect.
    pub reconnect: ReconnectPolicy,
    /// Stop after this many statuses written.
    pub limit: Option<u64>,
    /// How often the one-line summary (and the status file) is written.
    pub summary_every: Option<Duration>,
    /// Where the per-instance table is written as JSON, with each summary
    /// and at the end.
    pub status_file: Option<PathBuf>,
    /// Publish to NATS JetStream instead of writing lines.
    pub sink: Option<SinkConfig>,
    /// Share the instances with other workers through JetStream
    /// key-value buckets: follow only those this worker leases.
    pub coordinate: Option<CoordinateConfig>,
}

impl Config {
    /// Defaults for `instances`: a 100,000-URI window, polls 10 s apart
    /// and requests at least 1 s apart, the library's reconnect policy, a
    /// summary a minute.
    pub fn new(instances: Vec<Instance>) -> Config {
        Config {
            instances,
            contact: None,
            include_noindex: false,
            dedup_window: dedup::DEFAULT_WINDOW,
            poll_interval: Duration::from_secs(10),
            min_request_gap: Duration::from_secs(1),
            reconnect: ReconnectPolicy::default(),
            limit: None,
            summary_every: Some(Duration::from_secs(60)),
            status_file: None,
            sink: None,
            coordinate: None,
        }
    }
}

/// What every follower shares.
#[derive(Debug)]
pub(crate) struct Settings {
    pub http: reqwest::Client,
    pub user_agent: String,
    pub poll_interval: Duration,
    pub min_request_gap: Duration,
    pub reconnect: ReconnectPolicy,
}

/// The User-Agent: the tool, its version, and the contact.
pub fn user_agent(contact: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match contact {
        Some(contact) => format!("{AGENT_NAME}/{version} (firehose; +{contact})"),
        None => format!("{AGENT_NAME}/{version} (firehose)"),
    }
}

#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    id: String,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    account: Option<ProbeAccount>,
}

#[derive(serde::Deserialize)]
struct ProbeAccount {
    #[serde(default)]
    noindex: Option<bool>,
    #[serde(default)]
    indexable: Option<bool>,
}

/// The health record for `config`'s instances, to hand to [`run`] and read
/// while it runs.
pub fn health_for(config: &Config) -> Arc<Health> {
    Arc::new(Health::new(
        config.instances.iter().map(|i| i.host.as_str()),
    ))
}

/// Follows every instance of `config`, writing each status once to `out`
/// as a JSON line `{"instance":HOST,"status":STATUS}`, and the summary to
/// `summary`, keeping `health` (from [`health_for`]) up to date; returns
/// when `limit` statuses are written or every follower has stopped.
pub async fn run(
    config: Config,
    health: Arc<Health>,
    out: &mut impl Write,
    summary: &mut impl Write,
) -> std::io::Result<()> {
    run_until(config, health, out, summary, std::future::pending()).await
}

/// [`run`], also ending when `stop` resolves (Ctrl-C, say), as it ends at
/// its limit: what is written is flushed, a sink's queue gets its chance
/// to be published, and the last summary and status file are written.
pub async fn run_until(
    config: Config,
    health: Arc<Health>,
    out: &mut impl Write,
    summary: &mut impl Write,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut stop = std::pin::pin!(stop);
    let user_agent = user_agent(config.contact.as_deref());
    let http = reqwest::Client::builder()
        .user_agent(user_agent.clone())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(std::io::Error::other)?;
    let settings = Arc::new(Settings {
        http,
        user_agent,
        poll_interval: config.poll_interval,
        min_request_gap: config.min_request_gap,
        reconnect: config.reconnect.clone(),
    });
    let sink = config.sink.clone().map(Sink::new);
    if let Some(sink) = &sink {
        health.attach_sink(sink.clone());
    }
    let publisher = sink.clone().map(|sink| tokio::spawn(sink.publish_all()));
    let positions = Arc::new(Positions::default());
    if let Some(sink) = &sink {
        sink.track_positions(positions.clone());
    }
    let (tx, mut rx) = mpsc::channel::<Record>(4096);
    let mut followers = Followers {
        running: tokio::task::JoinSet::new(),
        by_host: std::collections::HashMap::new(),
        settings: settings.clone(),
        health: health.clone(),
        positions: config.coordinate.is_some().then(|| positions.clone()),
    };
    // Coordinated, the followers come and go as leases do; else every
    // instance is followed from the start.
    let (changes_tx, mut changes) = mpsc::unbounded_channel::<coordinate::Change>();
    let coordinator = match &config.coordinate {
        Some(coordinate) => {
            for instance in &config.instances {
                health.set(&instance.host, InstanceState::Elsewhere);
            }
            let hosts = config.instances.iter().map(|i| i.host.clone()).collect();
            Some(tokio::spawn(coordinate::run(
                coordinate.clone(),
                hosts,
                positions.clone(),
                changes_tx,
            )))
        }
        None => {
            drop(changes_tx);
            for instance in config.instances.clone() {
                followers.start(instance, &tx, None);
            }
            None
        }
    };
    // Uncoordinated, the feed ends when every follower has.
    let feed = if coordinator.is_some() {
        Some(tx)
    } else {
        None
    };
    let mut window = dedup::UriWindow::new(config.dedup_window);
    let mut ticker = config.summary_every.map(|every| {
        // A year at most: beyond what the clock holds, adding it panicked.
        let every = every.min(Duration::from_secs(365 * 86_400));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    let mut last = (0u64, Instant::now());
    loop {
        let tick = async {
            match &mut ticker {
                Some(ticker) => {
                    ticker.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let record = tokio::select! {
            record = rx.recv() => record,
            () = &mut stop => break,
            () = tick => {
                write_summary(&health, &config, &mut last, summary);
                continue;
            }
            Some(change) = changes.recv() => {
                match (change, &feed) {
                    (coordinate::Change::Acquired { host, resume_after }, Some(tx)) => {
                        if let Some(instance) = config.instances.iter().find(|i| i.host == host) {
                            health.set(&host, InstanceState::Starting);
                            followers.start(instance.clone(), tx, resume_after);
                        }
                    }
                    (coordinate::Change::Released { host }, _) => {
                        followers.stop(&host);
                        health.set(&host, InstanceState::Elsewhere);
                    }
                    _ => {}
                }
                continue;
            }
        };
        let Some(record) = record else {
            break;
        };
        let Ok(probe) = serde_json::from_str::<Probe>(&record.json) else {
            tracing::debug!(instance = %record.host, "a status that is not a JSON object; skipped");
            continue;
        };
        let opted_out = probe
            .account
            .as_ref()
            .is_some_and(|a| a.noindex == Some(true) || a.indexable == Some(false));
        if opted_out && !config.include_noindex {
            health.noindex.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // The key the feed is deduplicated by, and JetStream's message id.
        let key = if probe.uri.is_empty() {
            format!("{} {}", record.host, probe.id)
        } else {
            probe.uri
        };
        if !window.insert(&key) {
            health.duplicates.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match &sink {
            Some(sink) => sink.push(&record.host, &key, &probe.id, &record.json),
            None => {
                write_line(out, &record)?;
                if !probe.id.is_empty() {
                    positions.delivered(&record.host, &probe.id);
                }
            }
        }
        health.wrote(&record.host);
        if rx.is_empty() {
            out.flush()?;
        }
        if config
            .limit
            .is_some_and(|limit| health.written.load(Ordering::Relaxed) >= limit)
        {
            break;
        }
    }
    out.flush()?;
    followers.running.abort_all();
    if let Some(coordinator) = coordinator {
        coordinator.abort();
    }
    if let (Some(sink), Some(publisher)) = (&sink, publisher) {
        // What is queued gets its chance to be published (a bounded wait).
        let _ = tokio::time::timeout(Duration::from_secs(10), sink.wait_drained()).await;
        publisher.abort();
    }
    write_summary(&health, &config, &mut last, summary);
    Ok(())
}

/// The running followers, by instance.
struct Followers {
    running: tokio::task::JoinSet<()>,
    by_host: std::collections::HashMap<String, tokio::task::AbortHandle>,
    settings: Arc<Settings>,
    health: Arc<Health>,
    /// Coordinated: where followers record their starting points.
    positions: Option<Arc<Positions>>,
}

impl Followers {
    fn start(
        &mut self,
        instance: Instance,
        tx: &mpsc::Sender<Record>,
        resume_after: Option<String>,
    ) {
        self.stop(&instance.host);
        // Reap the followers that ended (stopped when their lease moved, or
        // finished): a long coordinated run would otherwise keep a slot per
        // handover until it exits.
        while self.running.try_join_next().is_some() {}
        let host = instance.host.clone();
        let handle = self.running.spawn(follow::follow(
            instance,
            self.settings.clone(),
            self.health.clone(),
            tx.clone(),
            resume_after,
            self.positions.clone(),
        ));
        self.by_host.insert(host, handle);
    }

    fn stop(&mut self, host: &str) {
        if let Some(handle) = self.by_host.remove(host) {
            handle.abort();
        }
    }
}

fn write_line(out: &mut impl Write, record: &Record) -> std::io::Result<()> {
    out.write_all(b"{\"instance\":")?;
    serde_json::to_writer(&mut *out, &*record.host)?;
    out.write_all(b",\"status\":")?;
    let json = record.json.trim();
    if json.contains(['\n', '\r']) {
        // The text is JSON (checked on arrival), in which a line break can
        // only be whitespace between tokens (inside a string it is
        // escaped): a space keeps the status as sent, on one line. (Parsed
        // and written again, a number serde_json cannot hold, `1e400`,
        // failed the line and ended the whole feed.)
        let one_line: Vec<u8> = json
            .bytes()
            .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b })
            .collect();
        out.write_all(&one_line)?;
    } else {
        out.write_all(json.as_bytes())?;
    }
    out.write_all(b"}\n")
}

/// The summary line and the status file. Neither is the feed: a summary
/// that cannot be written (stderr gone) is lost, a status file that
/// cannot (a full disk) is warned of; the feed goes on either way (it
/// ended on the first such error).
fn write_summary(
    health: &Health,
    config: &Config,
    last: &mut (u64, Instant),
    summary: &mut impl Write,
) {
    if config.summary_every.is_some() {
        let line = health.summary((last.0, last.1.elapsed()));
        let _ = writeln!(summary, "{line}");
    }
    *last = (health.written.load(Ordering::Relaxed), Instant::now());
    if let Some(path) = &config.status_file {
        let written = serde_json::to_vec_pretty(&health.to_json())
            .map_err(std::io::Error::from)
            .and_then(|json| {
                let temporary = path.with_extension("tmp");
                std::fs::write(&temporary, json)?;
                std::fs::rename(&temporary, path)
            });
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot write the status file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> String {
        let record = Record {
            host: "x.example".into(),
            json: json.to_owned(),
        };
        let mut out = Vec::new();
        write_line(&mut out, &record).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_status_on_several_lines_is_written_on_one_as_sent() {
        assert_eq!(
            line("{\"id\":\"1\"}\n"),
            "{\"instance\":\"x.example\",\"status\":{\"id\":\"1\"}}\n"
        );
        // Pretty-printed, with a number serde_json cannot hold and an
        // escaped line break inside a string.
        assert_eq!(
            line("{\r\n  \"id\": \"1\",\n  \"n\": 1e400,\n  \"t\": \"a\\nb\"\n}"),
            "{\"instance\":\"x.example\",\"status\":{    \"id\": \"1\",   \"n\": 1e400,   \"t\": \"a\\nb\" }}\n"
        );
    }
}
