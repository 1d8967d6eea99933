//! Latency: publish → the consumer's hands, at a steady rate over loopback.
//!
//! A thread publishes `update` events into the test server at the given rate,
//! noting when each left; the consumer notes when each arrived. The status id
//! carries the event's sequence number.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mastostream::{Channel, Client, EventKind, ReconnectPolicy, Transport};
use mastostream_testkit::{LOOPBACK_NAMES, Publish, TestServer, TlsIdentity, replay};

use crate::clients::Wire;
use crate::throughput::TOKEN;

/// Where the sequence numbers start, so ids look like Mastodon's.
const ID_BASE: u64 = 200_000_000_000_000_000;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct LatencyArgs {
    /// Events published per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Events measured (after the warm-up).
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Events published first and not measured.
    #[arg(long, default_value_t = 500)]
    pub warmup: u64,
    /// Skip the https:// rows.
    #[arg(long)]
    pub no_tls: bool,
}

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Plain TCP.
    Plain,
    /// TLS, with h2 offered (SSE then runs over h2; the WebSocket stays HTTP/1.1).
    Tls,
    /// TLS, HTTP/1.1 only.
    TlsHttp1,
}

/// Latency percentiles of one transport, in microseconds.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// The transport.
    pub wire: Wire,
    /// Over what.
    pub link: Link,
    /// Sorted samples, in microseconds.
    pub samples_us: Vec<f64>,
}

impl Latencies {
    /// The `p`-th percentile (0–100).
    pub fn percentile(&self, p: f64) -> f64 {
        let last = self.samples_us.len().saturating_sub(1);
        let index = ((p / 100.0) * last as f64).round() as usize;
        self.samples_us.get(index).copied().unwrap_or(f64::NAN)
    }
}

/// A public status from the bundled replay, as the payload template.
pub fn template() -> Result<serde_json::Value, String> {
    replay::bundled()
        .into_iter()
        .find(|p| p.event == "update" && p.stream.is_none() && p.payload["visibility"] == "public")
        .map(|p| p.payload)
        .ok_or_else(|| "the replay has no public update".into())
}

/// Measures one transport over one link.
pub fn measure(args: &LatencyArgs, wire: Wire, link: Link) -> Result<Latencies, String> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err(format!("--rate must be positive, not {}", args.rate));
    }
    let mut builder = TestServer::builder().token(TOKEN);
    if link != Link::Plain {
        builder =
            builder.tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).map_err(|e| e.to_string())?);
    }
    let server = Arc::new(
        builder
            .start_blocking()
            .map_err(|e| format!("cannot start the test server: {e}"))?,
    );
    let template = template()?;
    let total = args.warmup + args.events;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut client = Client::builder(server.url())
        .token(TOKEN)
        .transport(match wire {
            Wire::Sse => Transport::Sse,
            Wire::Ws => Transport::WebSocket,
        })
        .reconnect(ReconnectPolicy::Off)
        .http2(link != Link::TlsHttp1);
    if let Some(ca) = server.ca_pem() {
        client = client.add_root_certificates_pem(ca);
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let _guard = runtime.enter();
    let mut events = client.stream(Channel::Public);
    runtime.block_on(async {
        let mut state = events.watch_state();
        tokio::time::timeout(Duration::from_secs(10), state.wait_for(|s| s.is_open()))
            .await
            .map_err(|_| "the stream did not open in 10 s".to_owned())?
            .map_err(|_| "the stream closed".to_owned())?;
        Ok::<(), String>(())
    })?;
    // The subscription, not only the connection: over the WebSocket the
    // subscribe frame may still be on its way when the connection shows.
    if !server.wait_for_subscriptions(1, Duration::from_secs(5)) {
        return Err("the server took no subscription".into());
    }

    let start = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let publisher = {
        let server = server.clone();
        let sent_at = sent_at.clone();
        let interval = 1.0 / args.rate;
        std::thread::spawn(move || {
            for seq in 0..total {
                let due = start + Duration::from_secs_f64(seq as f64 * interval);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut payload = template.clone();
                payload["id"] = (ID_BASE + seq).to_string().into();
                sent_at[seq as usize].store(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
                server.publish(Publish::new("update", payload));
            }
        })
    };
    let mut samples_us = Vec::with_capacity(args.events as usize);
    let received = runtime.block_on(async {
        let mut received = 0u64;
        while received < total {
            let next = tokio::time::timeout(Duration::from_secs(10), events.next_event()).await;
            let event = match next {
                Ok(Ok(Some(event))) => event,
                Ok(Err(error)) => return Err(error.to_string()),
                Ok(Ok(None)) => return Err("the stream ended".to_owned()),
                Err(_) => return Err(format!("nothing for 10 s after {received} events")),
            };
            let arrived = start.elapsed().as_nanos() as u64;
            let Ok(EventKind::Update(status)) = event.kind() else {
                continue;
            };
            let seq = status
                .id
                .parse::<u64>()
                .ok()
                .and_then(|id| id.checked_sub(ID_BASE))
                .filter(|&seq| seq < total)
                .ok_or_else(|| format!("unexpected status id {}", status.id))?;
            received += 1;
            if seq >= args.warmup {
                let sent = sent_at[seq as usize].load(Ordering::SeqCst);
                samples_us.push(arrived.saturating_sub(sent) as f64 / 1000.0);
            }
        }
        Ok(received)
    })?;
    let _ = publisher.join();
    if received != total {
        return Err(format!("received {received} of {total} events"));
    }
    samples_us.sort_by(f64::total_cmp);
    Ok(Latencies {
        wire,
        link,
        samples_us,
    })
}

/// Measures both transports and formats the table.
pub fn run(args: &LatencyArgs) -> Result<String, String> {
    let mut out = format!(
        "publish → consumer latency at {} events/s, {} events measured after {} warm-up\n\n\
         | transport | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |\n|---|---:|---:|---:|---:|---:|\n",
        args.rate, args.events, args.warmup
    );
    let mut routes = vec![(Wire::Sse, Link::Plain), (Wire::Ws, Link::Plain)];
    if !args.no_tls {
        routes.extend([
            (Wire::Sse, Link::Tls),
            (Wire::Sse, Link::TlsHttp1),
            (Wire::Ws, Link::Tls),
        ]);
    }
    for (wire, link) in routes {
        let latencies = measure(args, wire, link)?;
        let label = match (latencies.wire, latencies.link) {
            (wire, Link::Plain) => format!("{wire:?}"),
            (Wire::Sse, Link::Tls) => "Sse over TLS (h2)".to_owned(),
            (wire, Link::Tls) => format!("{wire:?} over TLS"),
            (wire, Link::TlsHttp1) => format!("{wire:?} over TLS (HTTP/1.1)"),
        };
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            label,
            latencies.percentile(50.0),
            latencies.percentile(90.0),
            latencies.percentile(99.0),
            latencies.percentile(99.9),
            latencies.percentile(100.0),
        ));
    }
    Ok(out)
}
