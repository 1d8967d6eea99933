//! `mastostream-bench`: mastostream side by side with its peers and with the
//! limits of the machine. See docs/BENCHMARKS.md for how to read the output.
//!
//! ```sh
//! cargo run --release -p mastostream-bench -- throughput   # vs Mastodon.py, masto.js, curl, bare parse
//! cargo run --release -p mastostream-bench -- latency      # publish → consumer, p50/p99
//! cargo run --release -p mastostream-bench -- scale        # 10k idle streams, 1k active
//! cargo run --release -p mastostream-bench -- soak         # an hour of faults, exactly-once
//! cargo run --release -p mastostream-bench -- firehose     # 1,000 instances, 2,000 statuses/s
//! ```

mod clients;
mod firehose;
mod latency;
mod measure;
mod peers;
mod report;
mod scale;
mod soak;
mod throughput;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mastostream::Channel;

/// Benchmarks mastostream against its peers and the machine's limits.
#[derive(Debug, Parser)]
#[command(name = "mastostream-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Events/s and CPU per event: mastostream (SSE, WS), Mastodon.py, masto.js, curl, bare parse.
    Throughput(throughput::ThroughputArgs),
    /// Publish → consumer latency at a steady rate.
    Latency(latency::LatencyArgs),
    /// Memory and CPU of many idle streams; many streams draining a replay.
    Scale(scale::ScaleArgs),
    /// Hours under random faults: exactly-once delivery with catch-up, flat memory, no leaks.
    Soak(soak::SoakArgs),
    /// `mastostream firehose` over many simulated instances: CPU, memory, exactly once.
    Firehose(firehose::FirehoseArgs),
    /// (child) Count events with mastostream.
    #[command(hide = true)]
    Count {
        #[command(flatten)]
        target: clients::Target,
        #[arg(long, value_enum)]
        wire: clients::Wire,
        #[arg(long, value_enum)]
        runtime: clients::Runtime,
        #[command(flatten)]
        tls: clients::TlsChoice,
        #[arg(long, value_enum, default_value_t)]
        read: clients::Reading,
    },
    /// (child) Count events over a plain socket.
    #[command(hide = true)]
    Socket(clients::Target),
    /// (child) A parse limit, without I/O.
    #[command(hide = true)]
    Limit {
        #[arg(long, value_enum)]
        kind: throughput::Limit,
        #[arg(long)]
        stream: Channel,
        #[arg(long)]
        count: u64,
    },
    /// (child) Open many streams; idle or drain.
    #[command(hide = true)]
    ScaleClient(scale::ScaleClientArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Throughput(args) => throughput::run(args).and_then(|table| {
            println!("{table}");
            if table.all_counted() {
                Ok(())
            } else {
                Err("some clients did not count every event; their rows are void".into())
            }
        }),
        Command::Latency(args) => latency::run(args).map(|text| println!("{text}")),
        Command::Scale(args) => scale::run(args).map(|text| println!("{text}")),
        Command::Soak(args) => soak::run(args).map(|text| println!("{text}")),
        Command::Firehose(args) => firehose::run(args).map(|text| println!("{text}")),
        Command::Count {
            target,
            wire,
            runtime,
            tls,
            read,
        } => clients::count_with_mastostream(target, *wire, *runtime, tls, *read),
        Command::Socket(target) => clients::count_with_socket(target),
        Command::Limit {
            kind,
            stream,
            count,
        } => throughput::limit_child(*kind, stream, *count),
        Command::ScaleClient(args) => scale::client(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mastostream-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
