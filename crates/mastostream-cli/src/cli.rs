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
