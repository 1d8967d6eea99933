//! Throughput side by side: every client drains the same replayed stream
//! from one test server in this process, one client at a time, and must
//! count every event; the limits are measured in-process on the same events.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mastostream::Channel;
use mastostream_proto::entities::{Announcement, Conversation, Notification, Status};
use mastostream_proto::{EventDecoder, SseDecoder, SseItem, StreamItem};
use mastostream_testkit::programs::ScratchDir;
use mastostream_testkit::replay::{self, Cursor, PreparedReplay};
use mastostream_testkit::{LOOPBACK_NAMES, TestServer, TlsIdentity};
use serde::de::IgnoredAny;

use crate::clients::{Target, TlsChoice};
use crate::measure::{self, Usage};
use crate::peers;
use crate::report::{Row, Table};

/// The token every client presents.
pub const TOKEN: &str = "bench-token";

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct ThroughputArgs {
    /// Events each client must receive and count.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Runs per client; the run with the median CPU time is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Runs per peer in another language (Mastodon.py takes ~11 ms of CPU per event).
    #[arg(long, default_value_t = 1)]
    pub peer_repeat: usize,
    /// Skip the peers in other languages (no venv, no npm).
    #[arg(long)]
    pub no_peers: bool,
    /// Skip curl.
    #[arg(long)]
    pub no_curl: bool,
    /// Skip the https:// rows (SSE over h2 and HTTP/1.1, WebSocket over TLS).
    #[arg(long)]
    pub no_tls: bool,
    /// The stream to drain.
    #[arg(long, default_value = "public")]
    pub stream: Channel,
}

/// One pass of the replay for `stream`: (event name, data, framed bytes).
fn one_pass(stream: &Channel) -> Vec<(String, String, Vec<u8>)> {
    let prepared = Arc::new(PreparedReplay::new(&replay::bundled()));
    let mut cursor = Cursor::new(prepared.clone());
    let subscriptions = [stream.clone()];
    let mut pass = Vec::new();
    for _ in 0..prepared.len() {
        let Some((encoded, _)) = cursor.next_for(&subscriptions) else {
            break;
        };
        let mut framed = encoded.sse_event_line.to_vec();
        framed.extend_from_slice(&encoded.sse_data);
        let mut decoder = SseDecoder::new();
        decoder.feed(&framed);
        if let Some(SseItem::Message(message)) = decoder.poll_item() {
            pass.push((message.name, message.data, framed));
        }
    }
    // The cursor loops; keep exactly one cycle (the first event recurs).
    if let Some(again) = pass.iter().skip(1).position(|e| e.2 == pass[0].2) {
        pass.truncate(again + 1);
    }
    pass
}

/// Parses a payload into the type a typed client would, with nothing around it.
fn bare_typed(name: &str, data: &str) -> usize {
    fn parse<T: serde::de::DeserializeOwned>(data: &str) -> usize {
        serde_json::from_str::<T>(data).map_or(0, |_| 1)
    }
    match name {
        "update" | "status.update" => parse::<Status>(data),
        "notification" => parse::<Notification>(data),
        "conversation" => parse::<Conversation>(data),
        "announcement" => parse::<Announcement>(data),
        _ if data.starts_with(['{', '[']) => parse::<IgnoredAny>(data),
        _ => data.to_owned().len().min(1),
    }
}

/// Times `work` on this thread; it returns how many events it handled.
fn in_process(work: impl FnOnce() -> u64) -> Result<(Usage, u64), String> {
    let started = std::time::Instant::now();
    let cpu = measure::thread_cpu();
    let events = work();
    let usage = Usage {
        wall: started.elapsed(),
        cpu: measure::thread_cpu() - cpu,
        max_rss_kib: 0,
    };
    Ok((usage, events))
}

/// What an in-process limit measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Limit {
    /// `serde_json::from_str` into the entity types, payloads pre-split.
    Typed,
    /// `serde_json::from_str` into `serde_json::Value`.
    Value,
    /// mastostream's `EventDecoder`: SSE bytes to typed events, no network.
    Decode,
}

/// Runs in a child process (as fresh as the clients' processes): one untimed
/// pass, then `count` events timed on this thread; prints the events and the
/// CPU and wall time of the timed part.
pub fn limit_child(limit: Limit, stream: &Channel, count: u64) -> Result<(), String> {
    let pass = one_pass(stream);
    if pass.is_empty() {
        return Err(format!("the replay has no events for {stream}"));
    }
    let cycle = || pass.iter().cycle().take(count as usize);
    let work = |events: &mut dyn Iterator<Item = &(String, String, Vec<u8>)>| -> u64 {
        match limit {
            Limit::Typed => events
                .map(|(name, data, _)| bare_typed(name, data) as u64)
                .sum(),
            Limit::Value => events
                .map(|(_, data, _)| serde_json::from_str::<serde_json::Value>(data).is_ok() as u64)
                .sum(),
            Limit::Decode => {
                let mut decoder = EventDecoder::new();
                let mut parsed = 0;
                for (_, _, framed) in events {
                    decoder.feed(framed);
                    while let Some(item) = decoder.poll() {
                        parsed += matches!(item, Ok(StreamItem::Event(_))) as u64;
                    }
                }
                parsed
            }
        }
    };
    work(&mut pass.iter());
    let (usage, events) = in_process(|| work(&mut cycle()))?;
    println!(
        "{{\"events\":{events},\"cpu_s\":{},\"wall_s\":{},\"peak_rss_kib\":{}}}",
        usage.cpu.as_secs_f64(),
        usage.wall.as_secs_f64(),
        measure::peak_rss_kib()
    );
    Ok(())
}

/// Runs a client `repeat` times; keeps the run with the median CPU time.
fn median_of(
    repeat: usize,
    mut run: impl FnMut() -> Result<(Usage, u64), String>,
) -> Result<(Usage, u64), String> {
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        runs.push(run()?);
    }
    runs.sort_by_key(|(usage, _)| usage.cpu);
    Ok(runs[runs.len() / 2])
}

/// Runs a child that prints `{"events":N,…}` and returns its usage and N.
fn counted_child(mut command: Command) -> Result<(Usage, u64), String> {
    let (usage, stdout) = measure::run_to_end(&mut command)?;
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value =
        serde_json::from_str(line).map_err(|_| format!("unexpected output {line:?}"))?;
    let events = report["events"]
        .as_u64()
        .ok_or(format!("no event count in {line:?}"))?;
    let seconds = |key: &str, measured: Duration| {
        report[key]
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(measured)
    };
    let usage = Usage {
        wall: seconds("wall_s", usage.wall),
        cpu: seconds("cpu_s", usage.cpu),
        max_rss_kib: report["peak_rss_kib"].as_u64().unwrap_or(0),
    };
    Ok((usage, events))
}

fn self_command(args: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "mastostream-bench".into());
    let mut command = Command::new(exe);
    command.args(args);
    command
}

/// The same replay from a second test server that speaks TLS (a CA of its
/// own, ALPN h2 and HTTP/1.1, as nginx in front of Mastodon): mastostream's
/// SSE over h2 and over HTTP/1.1, its WebSocket over TLS, and curl over
/// both HTTP versions.
fn tls_rows(args: &ThroughputArgs, table: &mut Table) -> Result<(), String> {
    let server = TestServer::builder()
        .token(TOKEN)
        .replay(replay::bundled(), 0.0)
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).map_err(|e| e.to_string())?)
        .start_blocking()
        .map_err(|e| format!("cannot start the TLS test server: {e}"))?;
    let dir = ScratchDir::new("bench-ca").map_err(|e| e.to_string())?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.ca_pem().unwrap_or_default()).map_err(|e| e.to_string())?;
    let count = args.events;
    let target = Target {
        server: server.url(),
        token: TOKEN.into(),
        stream: args.stream.clone(),
        count,
    };
    let rows = [
        (
            "mastostream SSE over TLS (h2), multi-thread runtime",
            "sse",
            false,
        ),
        (
            "mastostream SSE over TLS (HTTP/1.1), multi-thread runtime",
            "sse",
            true,
        ),
        ("mastostream WS over TLS, multi-thread runtime", "ws", false),
    ];
    for (label, wire, http1) in rows {
        let tls = TlsChoice {
            cacert: Some(ca.clone()),
            http1,
        };
        let result = median_of(args.repeat, || {
            let mut command = self_command(&["count"]);
            command.args(target.args());
            command.args(["--wire", wire, "--runtime", "multi"]);
            command.args(tls.args());
            counted_child(command)
        });
        table.push(Row::new(label, count, result));
    }
    if !args.no_curl {
        let sse_url = format!("{}{}", server.url(), args.stream.sse_path_and_query());
        for (label, version) in [
            (
                "limit: curl draining the same bytes over TLS (h2)",
                "--http2",
            ),
            (
                "limit: curl draining the same bytes over TLS (HTTP/1.1)",
                "--http1.1",
            ),
        ] {
            let curl = median_of(args.repeat, || {
                let mut command = Command::new("curl");
                command
                    .args(["--silent", "--no-buffer", version, "--cacert"])
                    .arg(&ca)
                    .arg("--header")
                    .arg(format!("Authorization: Bearer {TOKEN}"))
                    .arg(&sse_url);
                measure::drain_events(&mut command, count)
            });
            table.push(Row::new(label, count, curl));
        }
    }
    Ok(())
}

/// Runs the throughput comparison and prints its table.
pub fn run(args: &ThroughputArgs) -> Result<Table, String> {
    measure::raise_fd_limit();
    let server = TestServer::builder()
        .token(TOKEN)
        .replay(replay::bundled(), 0.0)
        .start_blocking()
        .map_err(|e| format!("cannot start the test server: {e}"))?;
    let url = server.url();
    let stream = args.stream.to_string();
    let count = args.events;
    let count_text = count.to_string();
    let pass = one_pass(&args.stream);
    if pass.is_empty() {
        return Err(format!("the replay has no events for {stream}"));
    }
    let bytes: usize = pass.iter().map(|e| e.2.len()).sum();
    let mut table = Table::new(count, bytes as f64 / pass.len() as f64, &stream);

    // The parse limits, each in a fresh process like the clients; only
    // their timed part counts (not loading the replay).
    for (label, kind) in [
        ("limit: bare serde_json typed parse, no I/O", "typed"),
        ("limit: bare serde_json::Value parse, no I/O", "value"),
        (
            "mastostream decoder alone (SSE bytes → typed), no I/O",
            "decode",
        ),
    ] {
        let result = median_of(args.repeat, || {
            counted_child(self_command(&[
                "limit",
                "--kind",
                kind,
                "--stream",
                &stream,
                "--count",
                &count_text,
            ]))
        });
        table.push(Row::new(label, count, result));
    }
    let target = Target {
        server: url.clone(),
        token: TOKEN.into(),
        stream: args.stream.clone(),
        count,
    };
    let ours = [
        (
            "mastostream SSE, multi-thread runtime",
            "sse",
            "multi",
            "typed",
        ),
        (
            "mastostream SSE, current-thread runtime",
            "sse",
            "current",
            "typed",
        ),
        (
            "mastostream WS, multi-thread runtime",
            "ws",
            "multi",
            "typed",
        ),
        (
            "mastostream WS, current-thread runtime",
            "ws",
            "current",
            "typed",
        ),
        // `parse_on_demand`, by what the consumer reads (#20).
        (
            "mastostream SSE, on demand, every entity read",
            "sse",
            "multi",
            "on-demand-typed",
        ),
        (
            "mastostream SSE, on demand, raw payload only",
            "sse",
            "multi",
            "raw",
        ),
        (
            "mastostream SSE, on demand, four fields borrowed",
            "sse",
            "multi",
            "glance",
        ),
        (
            "mastostream WS, on demand, every entity read",
            "ws",
            "multi",
            "on-demand-typed",
        ),
        (
            "mastostream WS, on demand, raw payload only",
            "ws",
            "multi",
            "raw",
        ),
    ];
    for (label, wire, runtime, read) in ours {
        let result = median_of(args.repeat, || {
            let mut command = self_command(&["count"]);
            command.args(target.args());
            command.args(["--wire", wire, "--runtime", runtime, "--read", read]);
            counted_child(command)
        });
        table.push(Row::new(label, count, result));
    }
    // The command-line tool's JSON lines, next to curl on the same bytes.
    let cli = median_of(args.repeat, || {
        let mut command = Command::new(measure::mastostream_binary()?);
        command
            .args([
                "stream",
                "--format",
                "jsonl",
                "--transport",
                "sse",
                "--quiet",
            ])
            .args(["--server", &url, "--token", TOKEN, "--limit", &count_text])
            .arg(&stream);
        measure::drain_lines(&mut command, count)
    });
    table.push(Row::new(
        "mastostream stream --format jsonl (CLI, SSE)",
        count,
        cli,
    ));
    if !args.no_tls {
        tls_rows(args, &mut table)?;
    }
    let socket = median_of(args.repeat, || {
        let mut command = self_command(&["socket"]);
        command.args(target.args());
        counted_child(command)
    });
    table.push(Row::new(
        "limit: plain socket read, counting events",
        count,
        socket,
    ));
    if !args.no_curl {
        let sse_url = format!("{url}{}", args.stream.sse_path_and_query());
        let curl = median_of(args.repeat, || {
            let mut command = Command::new("curl");
            command
                .args(["--silent", "--no-buffer", "--header"])
                .arg(format!("Authorization: Bearer {TOKEN}"))
                .arg(&sse_url);
            measure::drain_events(&mut command, count)
        });
        table.push(Row::new("limit: curl draining the same bytes", count, curl));
    }
    if !args.no_peers {
        let (ready, missing) = peers::available();
        for peer in ready {
            let result = median_of(args.peer_repeat, || counted_child(peer.command(&target)));
            table.push(Row::new(peer.label, count, result));
        }
        for (label, reason) in missing {
            table.push(Row::new(
                label,
                count,
                Err(format!("not installed: {reason}")),
            ));
        }
    }
    drop(server);
    Ok(table)
}
