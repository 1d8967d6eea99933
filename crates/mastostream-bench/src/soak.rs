//! Soak: a publishing test server, random faults (disconnect, stall, reject,
//! malformed bytes), and two consumers with catch-up, one over SSE and one
//! over the WebSocket. Every status must arrive exactly once and in order;
//! memory, open files and tasks must stay flat.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mastostream::{CatchUpConfig, Channel, Client, EventKind, Item, ReconnectPolicy, Transport};
use mastostream_testkit::{Fault, Publish, TestServer};

use crate::measure;
use crate::throughput::TOKEN;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long to publish and inject faults, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub secs: u64,
    /// Statuses published per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Mean seconds between faults (each wait is random, up to twice this).
    #[arg(long, default_value_t = 2.0)]
    pub fault_every: f64,
    /// Seconds between samples of memory, files and tasks.
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
    /// Seed of the fault sequence.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Leave out the WebSocket consumer (SSE only).
    #[arg(long)]
    pub sse_only: bool,
    /// Consumers built with `parse_on_demand`: entities built when the
    /// consumer asks, catch-up reading only the ids.
    #[arg(long)]
    pub parse_on_demand: bool,
}

/// What one consumer saw.
#[derive(Debug, Default)]
struct Seen {
    statuses: u64,
    last_id: u64,
    duplicates_or_disorder: u64,
    malformed: u64,
    breaks: u64,
    incomplete_gaps: u64,
}

/// One sample of the process's resources.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    open_files: usize,
    tasks: usize,
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// A small deterministic generator (xorshift), so a failing run can be rerun.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_fault(random: &mut Random) -> Fault {
    match random.next() % 4 {
        0 => Fault::Disconnect,
        1 => Fault::Stall { seconds: 2.0 },
        2 => Fault::Reject {
            status: 503,
            count: 2,
            retry_after: None,
            headers: Vec::new(),
        },
        _ => Fault::Raw {
            bytes: "event: update\ndata: {\"id\": not json\n\n".into(),
        },
    }
}

async fn consume(client: Client, seen: Arc<Mutex<Seen>>) {
    let mut events = client.stream(Channel::PublicLocal);
    while let Some(item) = events.next().await {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let event = match item {
            Ok(Item::Event(event)) => event,
            Ok(Item::Skipped(_)) => {
                seen.malformed += 1;
                continue;
            }
            Ok(Item::Reconnecting { .. }) | Err(_) => {
                seen.breaks += 1;
                continue;
            }
            Ok(_) => continue,
        };
        match event.kind() {
            Ok(EventKind::Update(status)) => {
                let id: u64 = status.id.parse().unwrap_or(0);
                if id <= seen.last_id {
                    seen.duplicates_or_disorder += 1;
                } else {
                    seen.last_id = id;
                    seen.statuses += 1;
                }
            }
            Ok(EventKind::Gap(gap)) if !gap.complete => seen.incomplete_gaps += 1,
            // Taken on demand: an entity that cannot be built is reported here.
            Err(_) => seen.malformed += 1,
            _ => {}
        }
    }
}

fn client(url: &str, transport: Transport, on_demand: bool) -> Result<Client, String> {
    let catch_up = CatchUpConfig::default()
        .max_pages(1000)
        .min_rate_limit_remaining(0);
    Client::builder(url)
        .token(TOKEN)
        .transport(transport)
        .reconnect(ReconnectPolicy::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        })
        .stall_timeout(Some(Duration::from_millis(1500)))
        .catch_up_with(catch_up)
        .parse_on_demand(on_demand)
        .build()
        .map_err(|e| e.to_string())
}

/// Runs the soak; returns its report, or what went wrong.
pub fn run(args: &SoakArgs) -> Result<String, String> {
    if !(args.rate > 0.0 && args.rate.is_finite() && args.fault_every > 0.0) {
        return Err("--rate and --fault-every must be positive".into());
    }
    // The server keeps the last 20 s of statuses: ten times the longest
    // outage here, so every catch-up can be complete, and a store that is
    // full (flat) well within the warm-up.
    let kept_secs = 20;
    let server = Arc::new(
        TestServer::builder()
            .token(TOKEN)
            .heartbeat(Duration::from_millis(500))
            .ping_interval(Duration::from_millis(500))
            .store_capacity((args.rate * kept_secs as f64).ceil().max(100.0) as usize)
            .start_blocking()
            .map_err(|e| format!("cannot start the test server: {e}"))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut consumers = vec![("SSE", Transport::Sse, Arc::new(Mutex::new(Seen::default())))];
    if !args.sse_only {
        consumers.push((
            "WS",
            Transport::WebSocket,
            Arc::new(Mutex::new(Seen::default())),
        ));
    }
    for (_, transport, seen) in &consumers {
        let client = client(&server.url(), *transport, args.parse_on_demand)?;
        runtime.spawn(consume(client, seen.clone()));
    }
    if !server.wait_for_subscriptions(consumers.len(), Duration::from_secs(5)) {
        return Err("the consumers did not subscribe".into());
    }

    let mut template = crate::latency::template()?;
    template["id"] = serde_json::Value::Null;
    template["account"]["acct"] = "local".into();
    template["uri"] = "https://localhost/statuses/soak".into();

    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (server, stop, published) = (server.clone(), stop.clone(), published.clone());
        let interval = Duration::from_secs_f64(1.0 / args.rate);
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = start + interval.mul_f64(sent as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                server.publish(Publish::new("update", template.clone()));
                sent += 1;
                published.store(sent, Ordering::SeqCst);
            }
        })
    };

    let started = Instant::now();
    let mut random = Random(args.seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut next_fault = started + Duration::from_secs_f64(random.unit() * 2.0 * args.fault_every);
    let mut next_sample = started;
    let mut samples = Vec::new();
    let mut faults = [0u64; 4];
    let mut out = String::new();
    while started.elapsed() < Duration::from_secs(args.secs) {
        let now = Instant::now();
        if now >= next_sample {
            let sample = Sample {
                at: started.elapsed(),
                rss_kib: measure::rss_kib(),
                open_files: open_files(),
                tasks: runtime.metrics().num_alive_tasks(),
            };
            eprintln!(
                "soak {:>6.0} s: RSS {} KiB, {} open files, {} tasks, {} published",
                sample.at.as_secs_f64(),
                sample.rss_kib,
                sample.open_files,
                sample.tasks,
                published.load(Ordering::SeqCst)
            );
            samples.push(sample);
            next_sample += Duration::from_secs(args.sample_secs.max(1));
        }
        if now >= next_fault {
            let fault = random_fault(&mut random);
            faults[match fault {
                Fault::Disconnect => 0,
                Fault::Stall { .. } => 1,
                Fault::Reject { .. } => 2,
                _ => 3,
            }] += 1;
            server.fault(fault)?;
            next_fault = now + Duration::from_secs_f64(random.unit() * 2.0 * args.fault_every);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    let _ = publisher.join();
    let total = published.load(Ordering::SeqCst);

    // Let the last outage's catch-up finish.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(30)
        && consumers
            .iter()
            .any(|(_, _, seen)| seen.lock().map_or(0, |s| s.statuses) < total)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = Sample {
        at: started.elapsed(),
        rss_kib: measure::rss_kib(),
        open_files: open_files(),
        tasks: runtime.metrics().num_alive_tasks(),
    };
    samples.push(end);

    out.push_str(&format!(
        "soak: {} s, {total} statuses published at {}/s; faults: {} disconnects, {} stalls, {} rejects, {} malformed\n",
        args.secs, args.rate, faults[0], faults[1], faults[2], faults[3]
    ));
    let mut failures = Vec::new();
    for (name, _, seen) in &consumers {
        let seen = seen.lock().map_err(|_| "a consumer panicked")?;
        out.push_str(&format!(
            "{name}: {} statuses, {} duplicates or out of order, {} malformed reported, {} breaks, {} incomplete gaps\n",
            seen.statuses, seen.duplicates_or_disorder, seen.malformed, seen.breaks, seen.incomplete_gaps
        ));
        if seen.statuses != total || seen.duplicates_or_disorder != 0 {
            failures.push(format!(
                "{name}: {} of {total} statuses, {} duplicates or out of order",
                seen.statuses, seen.duplicates_or_disorder
            ));
        }
    }
    // Flat: after the warm-up (buffers; the server's store filling up: the
    // first quarter, or the store's 20 s if longer), the resident set may
    // not keep growing, nor files or tasks.
    let warm_up = Duration::from_secs((args.secs / 4).max(kept_secs));
    let warm: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm_up).collect();
    if let (Some(first), Some(last)) = (warm.first(), warm.last()) {
        let peak = warm.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        out.push_str(&format!(
            "after warm-up: RSS {} → {} KiB (peak {peak}), open files {} → {}, tasks {} → {}\n",
            first.rss_kib, last.rss_kib, first.open_files, last.open_files, first.tasks, last.tasks
        ));
        if last.rss_kib > first.rss_kib + first.rss_kib / 5 + 8 * 1024 {
            failures.push(format!(
                "memory grew from {} to {} KiB",
                first.rss_kib, last.rss_kib
            ));
        }
        if last.open_files > first.open_files + 8 {
            failures.push(format!(
                "open files grew from {} to {}",
                first.open_files, last.open_files
            ));
        }
        if last.tasks > first.tasks + 8 {
            failures.push(format!("tasks grew from {} to {}", first.tasks, last.tasks));
        }
    }
    drop(runtime);
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(format!("{out}FAILED: {}", failures.join("; ")))
    }
}
