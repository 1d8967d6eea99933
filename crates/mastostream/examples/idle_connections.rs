//! Memory per idle connection: opens N streams to a running server, waits
//! until all are open, and reports the resident memory they added.
//!
//! Run a server in another process first, so its memory is not counted:
//!
//! ```sh
//! cargo run --release -- serve --addr 127.0.0.1:4000 &
//! cargo run --release -p mastostream --example idle_connections -- http://127.0.0.1:4000 2000 ws
//! cargo run --release -p mastostream --example idle_connections -- http://127.0.0.1:4000 2000 sse
//! ```

use std::time::{Duration, Instant};

use mastostream::{Client, EventStream, Transport};
use mastostream_proto::Channel;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    raise_fd_limit();
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:4000".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let transport = args.next().unwrap_or_else(|| "ws".into());
    // One client: SSE streams each get their own connection; over WebSocket,
    // one multiplexed connection per stream is opened explicitly.
    let client = Client::builder(&url)
        .token("t")
        .transport(Transport::Sse)
        .build()?;
    client.streaming_base().await?;
    let before = rss_kib();
    let mut streams: Vec<EventStream> = Vec::with_capacity(count);
    let mut multiplexes = Vec::new();
    for _ in 0..count {
        if transport == "sse" {
            streams.push(client.stream(Channel::Public));
        } else {
            let multiplex = client.multiplex();
            streams.push(multiplex.subscribe(Channel::Public));
            multiplexes.push(multiplex);
        }
    }
    let started = Instant::now();
    while streams
        .iter()
        .filter(|s| s.is_receiving() || s.state().is_open())
        .count()
        < count
    {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("not every stream opened in 2 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let buffers settle after the handshakes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    println!(
        "{count} idle {transport} connections: RSS {before} KiB -> {after} KiB, {:.1} KiB per connection",
        (after.saturating_sub(before)) as f64 / count as f64
    );
    Ok(())
}
