//! Scale: many idle streams in one process (memory per connection, CPU spent
//! on heartbeats and pings), and many streams each draining a replay.
//!
//! The test server runs in this process; the streams run in a child process
//! (`scale-client`) so that its memory and CPU are measured alone.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mastostream::{Channel, Client, EventStream, Transport};
use mastostream_testkit::{TestServer, replay};

use crate::clients::Wire;
use crate::measure;
use crate::throughput::TOKEN;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Idle streams (each its own connection), per transport.
    #[arg(long, default_value_t = 10_000)]
    pub idle: usize,
    /// Seconds the idle streams are watched for CPU use.
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,
    /// Seconds between the server's heartbeats (SSE) and pings (WebSocket)
    /// while idle; Mastodon's are 15 s and 30 s.
    #[arg(long, default_value_t = 1.0)]
    pub heartbeat_secs: f64,
    /// Streams each draining the shared replay.
    #[arg(long, default_value_t = 1_000)]
    pub active: usize,
    /// Events each active stream must receive.
    #[arg(long, default_value_t = 1_000)]
    pub events_per_stream: u64,
}

/// The child's side.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleClientArgs {
    #[arg(long)]
    pub server: String,
    #[arg(long, value_enum)]
    pub wire: Wire,
    #[arg(long)]
    pub streams: usize,
    /// 0: stay idle for `idle_secs`; otherwise receive this many events per stream.
    #[arg(long, default_value_t = 0)]
    pub events_per_stream: u64,
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,
}

fn open_streams(client: &Client, wire: Wire, count: usize) -> Vec<EventStream> {
    (0..count)
        .map(|_| match wire {
            Wire::Sse => client.stream(Channel::Public),
            // One connection per stream, to count connections, not subscriptions.
            Wire::Ws => client.multiplex().subscribe(Channel::Public),
        })
        .collect()
}

async fn wait_open(streams: &[EventStream]) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let open = streams
            .iter()
            .filter(|s| s.is_receiving() || s.state().is_open())
            .count();
        if open == streams.len() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(180) {
            return Err(format!(
                "only {open} of {} streams opened in 3 minutes",
                streams.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs in the child: opens the streams, then idles or drains; prints one JSON line.
pub fn client(args: &ScaleClientArgs) -> Result<(), String> {
    measure::raise_fd_limit();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let line = runtime.block_on(async {
        let client = Client::builder(&args.server)
            .token(TOKEN)
            .transport(Transport::Sse)
            .build()
            .map_err(|e| e.to_string())?;
        client.streaming_base().await.map_err(|e| e.to_string())?;
        let rss_before = measure::rss_kib();
        let streams = open_streams(&client, args.wire, args.streams);
        let open_time = wait_open(&streams).await?;
        if args.events_per_stream == 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let rss_after = measure::rss_kib();
            let cpu = measure::process_cpu();
            tokio::time::sleep(Duration::from_secs_f64(args.idle_secs)).await;
            let idle_cpu = measure::process_cpu() - cpu;
            let alive = streams.iter().filter(|s| s.state().is_open()).count();
            return Ok::<_, String>(serde_json::json!({
                "streams": args.streams, "alive": alive, "open_s": open_time.as_secs_f64(),
                "rss_before_kib": rss_before, "rss_after_kib": rss_after,
                "idle_cpu_s": idle_cpu.as_secs_f64(),
            }));
        }
        let started = Instant::now();
        let cpu = measure::process_cpu();
        let want = args.events_per_stream;
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                tokio::spawn(async move {
                    let mut seen = 0u64;
                    while seen < want {
                        match stream.next().await {
                            Some(Ok(_)) => seen += 1,
                            Some(Err(error)) if error.is_retryable() => {}
                            _ => break,
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut events = 0u64;
        for task in tasks {
            events += task.await.unwrap_or(0);
        }
        Ok(serde_json::json!({
            "streams": args.streams, "events": events, "open_s": open_time.as_secs_f64(),
            "wall_s": started.elapsed().as_secs_f64(),
            "cpu_s": (measure::process_cpu() - cpu).as_secs_f64(),
            "peak_rss_kib": measure::peak_rss_kib(),
        }))
    })?;
    println!("{line}");
    Ok(())
}

fn child(
    server: &str,
    wire: Wire,
    streams: usize,
    events: u64,
    idle_secs: f64,
) -> Result<serde_json::Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["scale-client", "--server", server, "--wire"]);
    command.arg(if wire == Wire::Sse { "sse" } else { "ws" });
    command.args(["--streams", &streams.to_string()]);
    command.args(["--events-per-stream", &events.to_string()]);
    command.args(["--idle-secs", &idle_secs.to_string()]);
    let (usage, stdout) = measure::run_to_end(&mut command)?;
    let mut report: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|_| format!("unexpected output {stdout:?}"))?;
    report["max_rss_kib"] = usage.max_rss_kib.into();
    Ok(report)
}

/// Runs both parts for both transports and formats the tables.
pub fn run(args: &ScaleArgs) -> Result<String, String> {
    measure::raise_fd_limit();
    let beat = Duration::try_from_secs_f64(args.heartbeat_secs)
        .map_err(|_| "--heartbeat-secs must be a positive number".to_owned())?;
    let idle_server = TestServer::builder()
        .token(TOKEN)
        .heartbeat(beat)
        .ping_interval(beat)
        .start_blocking()
        .map_err(|e| e.to_string())?;
    let mut out = format!(
        "{} idle streams per transport, one connection each; heartbeats/pings every {} s, watched for {} s\n\n\
         | transport | RSS before → after | KiB per connection | CPU while idle | µs CPU per heartbeat/ping |\n|---|---:|---:|---:|---:|\n",
        args.idle, args.heartbeat_secs, args.idle_secs
    );
    for wire in [Wire::Sse, Wire::Ws] {
        let report = child(&idle_server.url(), wire, args.idle, 0, args.idle_secs)?;
        let alive = report["alive"].as_u64().unwrap_or(0);
        if alive != args.idle as u64 {
            return Err(format!(
                "{wire:?}: only {alive} of {} streams stayed open",
                args.idle
            ));
        }
        let before = report["rss_before_kib"].as_f64().unwrap_or(0.0);
        let after = report["rss_after_kib"].as_f64().unwrap_or(0.0);
        let cpu = report["idle_cpu_s"].as_f64().unwrap_or(0.0);
        let beats = args.idle as f64 * args.idle_secs / args.heartbeat_secs;
        out.push_str(&format!(
            "| {wire:?} | {:.1} → {:.1} MiB | {:.1} | {cpu:.3} s | {:.2} |\n",
            before / 1024.0,
            after / 1024.0,
            (after - before) / args.idle as f64,
            cpu * 1e6 / beats,
        ));
    }
    drop(idle_server);

    let replay_server = TestServer::builder()
        .token(TOKEN)
        .replay(replay::bundled(), 0.0)
        .start_blocking()
        .map_err(|e| e.to_string())?;
    out.push_str(&format!(
        "\n{} streams each receiving {} events of the shared replay (paced per connection)\n\n\
         | transport | events | wall s | events/s | CPU s | events per CPU-s | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n",
        args.active, args.events_per_stream
    ));
    for wire in [Wire::Sse, Wire::Ws] {
        let report = child(
            &replay_server.url(),
            wire,
            args.active,
            args.events_per_stream,
            0.0,
        )?;
        let events = report["events"].as_u64().unwrap_or(0);
        let want = args.active as u64 * args.events_per_stream;
        if events != want {
            return Err(format!("{wire:?}: counted {events} events, not {want}"));
        }
        let wall = report["wall_s"].as_f64().unwrap_or(f64::NAN);
        let cpu = report["cpu_s"].as_f64().unwrap_or(f64::NAN);
        out.push_str(&format!(
            "| {wire:?} | {events} | {wall:.2} | {:.0} | {cpu:.2} | {:.0} | {:.1} |\n",
            events as f64 / wall,
            events as f64 / cpu,
            report["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        ));
    }
    Ok(out)
}
