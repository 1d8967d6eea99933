//! Command-line arguments, as clap parses them.

use clap::{Parser, Subcommand};

/// Mastodon streaming from the command line: decode, stream, serve.
#[derive(Debug, Parser)]
#[command(name = "mastostream", version, about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Log more on stderr: -v the library's decisions, -vv everything. The
    /// `RUST_LOG` variable (`target=level,...`) overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a raw SSE stream on stdin; print one JSON line per event.
    Decode(DecodeArgs),
    /// Run the Mastodon-compatible test server.
    Serve(ServeArgs),
    /// Stream events from a Mastodon server: one JSON line (or a readable line) per event.
    Stream(StreamArgs),
    /// Check the streaming server's health.
    Health(HealthArgs),
    /// Stream the built-in test server's public timeline, in the pretty format.
    Demo(DemoArgs),
    /// Many instances' local posts as one feed of JSON lines, each status once.
    Firehose(FirehoseArgs),
}

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line: `{"stream":[...],"event":...,"payload":...}`.
    Jsonl,
    /// Time (UTC), author and text, for people; wrapped to the terminal.
    Pretty,
}

/// How to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Server-Sent Events, one connection per stream.
    Sse,
    /// One WebSocket for all streams.
    Ws,
    /// WebSocket for several streams; for one, SSE with a switch to the
    /// WebSocket if the server serves no SSE.
    Auto,
}

#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// The server (its web address; the streaming host is discovered).
    #[arg(long, env = "MASTODON_SERVER", value_name = "URL")]
    pub server: String,
    /// The access token (a user token with the read scope).
    #[arg(
        long,
        env = "MASTODON_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file",
        value_name = "T"
    )]
    pub token: Option<String>,
    /// Read the access token from a file.
    #[arg(long, value_name = "F")]
    pub token_file: Option<std::path::PathBuf>,
    /// Output format (default: jsonl when stdout is not a terminal, else pretty).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Stop after this many events (0: no end).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// End at the first break instead of reconnecting.
    #[arg(long)]
    pub no_reconnect: bool,
    /// After each reconnect, fetch what was missed over REST (printed like
    /// live events), then print a `mastostream.gap` event.
    #[arg(long)]
    pub catch_up: bool,
    /// Seconds of silence (heartbeats included) before a connection is taken
    /// for dead; 0 turns stall detection off.
    #[arg(long, default_value_t = 45.0, value_name = "SECS")]
    pub stall_timeout: f64,
    /// The transport.
    #[arg(long, value_enum, default_value = "auto")]
    pub transport: Transport,
    /// No status line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// In the pretty format, print each post's address under it.
    #[arg(long)]
    pub links: bool,
    /// Greeting timeout: seconds an SSE stream may stay open without a byte
    /// (Mastodon greets at once) before a buffering proxy is suspected: a
    /// warning, and with `--transport auto` a switch to the WebSocket.
    #[arg(long, default_value_t = 20.0, value_name = "SECS")]
    pub greeting_timeout: f64,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Streams: user, user:notification, public, public:media, public:local,
    /// public:local:media, public:remote, public:remote:media, hashtag=TAG,
    /// hashtag:local=TAG, list=ID, direct.
    #[arg(required = true, value_name = "STREAM")]
    pub streams: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct FirehoseArgs {
    /// Instances to follow (hosts, or URLs such as `http://127.0.0.1:8080`).
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    /// A file of instances, one a line (`#` comments), each optionally
    /// followed by where its token is: `$NAME` (an environment variable)
    /// or a file's path.
    #[arg(long, value_name = "FILE")]
    pub instances: Option<std::path::PathBuf>,
    /// An address or URL for the User-Agent, so that instance admins can
    /// reach whoever runs the firehose.
    #[arg(long, value_name = "CONTACT")]
    pub contact: Option<String>,
    /// Keep statuses of authors who opted out of indexing (`noindex`,
    /// `indexable: false`); left out by default.
    #[arg(long)]
    pub include_noindex: bool,
    /// How many status URIs the deduplication window holds.
    #[arg(long, value_name = "N", default_value_t = mastostream_firehose::dedup::DEFAULT_WINDOW)]
    pub dedup_window: usize,
    /// Seconds between two polls of a timeline followed over REST
    /// (stretched when the instance's rate limit asks for it).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub poll_interval: f64,
    /// Seconds between summary lines on stderr (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub summary_every: f64,
    /// Write the per-instance table here as JSON, with each summary and at
    /// the end.
    #[arg(long, value_name = "FILE")]
    pub status: Option<std::path::PathBuf>,
    /// Stop after this many statuses (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
    /// Publish to this NATS server's JetStream instead of stdout
    /// (`nats://host:port`), each status with `Nats-Msg-Id` = its `uri`.
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,
    /// The JetStream stream (created if missing).
    #[arg(long, value_name = "NAME", default_value = "MASTOSTREAM")]
    pub sink_stream: String,
    /// Subjects are `PREFIX.<instance>`.
    #[arg(long, value_name = "PREFIX", default_value = "mastostream.statuses")]
    pub sink_subject: String,
    /// How many statuses wait while NATS is away; past it the oldest are
    /// dropped and counted as lost.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub sink_buffer: usize,
    /// Share the instances with other workers through this NATS server's
    /// JetStream key-value buckets (`nats://host:port`): each instance is
    /// leased by one worker, renewed, and taken over (resuming after the
    /// last status recorded) when its worker dies.
    #[arg(long, value_name = "URL")]
    pub coordinate: Option<String>,
    /// The coordination buckets' prefix (`PREFIX-leases`, `-workers`,
    /// `-positions`).
    #[arg(long, value_name = "PREFIX", default_value = "mastostream-firehose")]
    pub coordinate_bucket: String,
    /// Seconds a lease lasts unrenewed (renewed every third of it): how
    /// long a dead worker's instances wait for a new owner.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    pub lease: f64,
    /// This worker's name among the coordinated workers (default: host
    /// name and process id).
    #[arg(long, value_name = "NAME")]
    pub worker: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The server (its web address; the streaming host is discovered).
    #[arg(long, env = "MASTODON_SERVER", value_name = "URL")]
    pub server: String,
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// How the network is reached: trust and proxies (curl's names).
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    /// Also trust the CA certificates in this PEM file (repeatable), beside
    /// the system's (which `SSL_CERT_FILE` / `SSL_CERT_DIR` replace).
    #[arg(long, value_name = "FILE")]
    pub cacert: Vec<std::path::PathBuf>,
    /// Connect through this HTTP proxy (`http://[user:password@]host:port`),
    /// the WebSocket through its CONNECT tunnel, instead of the one
    /// `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` names (`NO_PROXY` still
    /// applies). An empty value connects directly.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop after this many events (0: run until Ctrl-C).
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub limit: u64,
    /// Events per second the built-in server publishes.
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub rate: f64,
    /// No status line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// In the pretty format, print each post's address under it.
    #[arg(long)]
    pub links: bool,
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
    #[arg(long, default_value_t = mastostream_proto::sse::DEFAULT_MAX_EVENT_SIZE, value_name = "BYTES")]
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
    /// Replay this file (JSON lines of publish bodies, plain or gzipped) in a loop.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// Replay rate in events per second; 0 streams to each client as fast as it reads.
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub rate: f64,
    /// Which server to behave as: its WebSocket's labels, answers and
    /// refusals, and whether it serves SSE.
    #[arg(long, value_enum, default_value_t = Flavor::Mastodon)]
    pub flavor: Flavor,
    /// Speak HTTPS with a certificate made at start-up for localhost,
    /// 127.0.0.1, ::1 (and the --addr IP), signed by a CA made with it; the
    /// first line says where the CA certificate was written.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls: bool,
    /// Speak HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// The servers `serve` can behave as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// Mastodon 4.6 (the default).
    Mastodon,
    /// Mastodon 4.1: public streams without a token, `:thump` heartbeats
    /// without a blank line, `filtered` on public updates, 4.1's errors.
    #[value(name = "mastodon-4.1")]
    Mastodon41,
    /// glitch-soc: Mastodon plus local-only posts and the
    /// `public:allow_local_only` streams.
    #[value(name = "glitch-soc")]
    GlitchSoc,
    /// Pleroma 2.7: no SSE, unlabelled deletes, `pleroma:respond` answers.
    Pleroma,
    /// Akkoma: no SSE, one-element topic labels, no unsubscribe.
    Akkoma,
    /// GoToSocial: no SSE, every event labelled with the connection's first stream.
    #[value(name = "gotosocial")]
    GoToSocial,
    /// Iceshrimp.NET: no SSE, refusals by closing the WebSocket.
    Iceshrimp,
}
