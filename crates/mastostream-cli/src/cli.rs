//! Command-line arguments, as clap parses them.

use clap::{Parser, Subcommand};

/// Mastodon streaming from the command line: decode, stream, serve.
#[derive(Debug, Parser)]
#[command(name = "mastostream", version, about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a raw SSE stream on stdin; print one JSON line per event.
    Decode(DecodeArgs),
    /// Run the Mastodon-compatible test server.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Also print heartbeats, as `{"heartbeat":true}` lines.
    #[arg(long)]
    pub heartbeats: bool,
    /// Exit 1 at the first malformed event instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Drop events larger than this many bytes.
    #[arg(long, default_value_t = mastostream::proto::sse::DEFAULT_MAX_EVENT_SIZE, value_name = "BYTES")]
    pub max_event_size: usize,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    pub addr: std::net::SocketAddr,
    /// Accept only this token (repeatable); without any, every non-empty token is accepted.
    #[arg(long = "token", value_name = "TOKEN")]
    pub tokens: Vec<String>,
    /// Seconds between SSE heartbeats (fractions allowed).
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    pub heartbeat_secs: f64,
    /// Seconds between WebSocket pings (fractions allowed).
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub ping_secs: f64,
    /// The streaming URL the instance endpoints advertise (default: this server).
    #[arg(long, value_name = "URL")]
    pub streaming_url: Option<String>,
    /// Replay this file (JSON lines of publish bodies) in a loop.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// Replay rate in events per second; 0 streams to each client as fast as it reads.
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub rate: f64,
}
