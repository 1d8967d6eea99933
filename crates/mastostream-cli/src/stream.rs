//! `mastostream stream`: events from a server as JSON lines or readable lines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::select_all;
use mastostream::{Client, ConnectionState, Error, Event, Item, ReconnectPolicy};
use mastostream_proto::Channel;
use mastostream_proto::human_duration;
use tokio::sync::watch;

use crate::cli::{Format, StreamArgs, Transport};
use crate::output::exit_code_for_write_error;
use crate::pretty::{self, Style};

/// Exit codes, as documented in the README.
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_AUTH: u8 = 3;
pub const EXIT_BAD_REQUEST: u8 = 4;

/// The exit code for the error that ended a stream.
pub fn exit_code_for(error: &Error) -> ExitCode {
    ExitCode::from(match error {
        Error::Http {
            status: 401 | 403, ..
        } => EXIT_AUTH,
        Error::Http {
            status: 400 | 404, ..
        } => EXIT_BAD_REQUEST,
        _ => EXIT_ERROR,
    })
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mastostream: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// How the events are shown.
pub struct Output {
    pub format: Format,
    pub limit: Option<u64>,
    pub style: Style,
    pub status_line: bool,
}

pub fn run(args: &StreamArgs) -> ExitCode {
    let mut streams = Vec::new();
    for text in &args.streams {
        match text.parse::<Channel>() {
            Ok(stream) => streams.push(stream),
            Err(error) => return usage(format_args!("bad stream {text:?}: {error}")),
        }
    }
    let token = match (&args.token, &args.token_file) {
        (_, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(error) => {
                return usage(format_args!(
                    "cannot read the token file {}: {error}",
                    path.display()
                ));
            }
        },
        (Some(token), None) => Some(token.clone()),
        (None, None) => None,
    };
    let stall = if args.stall_timeout == 0.0 {
        None
    } else {
        match crate::serve::seconds(args.stall_timeout, "stall-timeout") {
            Ok(d) => Some(d),
            Err(message) => return usage(message),
        }
    };
    let transport = match (args.transport, streams.len()) {
        (Transport::Sse, _) => mastostream::Transport::Sse,
        (Transport::Ws, _) => mastostream::Transport::WebSocket,
        (Transport::Auto, 1) => mastostream::Transport::Auto,
        (Transport::Auto, _) => mastostream::Transport::WebSocket,
    };
    let mut builder = Client::builder(&args.server)
        .stall_timeout(stall)
        .transport(transport);
    if let Some(token) = token {
        builder = builder.token(token);
    }
    if args.catch_up {
        builder = builder.catch_up(true);
    }
    if args.no_reconnect {
        builder = builder.reconnect(ReconnectPolicy::Off);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => return usage(error),
    };
    let stdout_is_terminal = io::stdout().is_terminal();
    let output = Output {
        format: args.format.unwrap_or(if stdout_is_terminal {
            Format::Pretty
        } else {
            Format::Jsonl
        }),
        limit: args.limit,
        style: Style {
            colour: stdout_is_terminal,
        },
        status_line: io::stderr().is_terminal(),
    };
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(stream_to_stdout(&client, streams, &output))
}

/// Writes one event in the chosen format.
fn write_event(
    out: &mut impl Write,
    output: &Output,
    stream: &Channel,
    event: &Event,
    several: bool,
) -> io::Result<()> {
    match output.format {
        Format::Jsonl => {
            out.write_all(b"{\"stream\":")?;
            serde_json::to_writer(&mut *out, &stream.ws_stream_array())?;
            out.write_all(b",\"event\":")?;
            serde_json::to_writer(&mut *out, event.name())?;
            out.write_all(b",\"payload\":")?;
            event.payload().write_json(out)?;
            out.write_all(b"}\n")
        }
        Format::Pretty => {
            let name = several.then(|| stream.to_string());
            writeln!(
                out,
                "{}",
                pretty::line(output.style, event, name.as_deref())
            )
        }
    }
}

/// Streams every stream in `streams` to stdout until the limit, Ctrl-C or a
/// fatal error.
pub async fn stream_to_stdout(client: &Client, streams: Vec<Channel>, output: &Output) -> ExitCode {
    let several = streams.len() > 1;
    let mut states: Vec<watch::Receiver<ConnectionState>> = Vec::new();
    let mut sources = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let events = client.stream(stream.clone());
        states.push(events.watch_state());
        sources.push(events.map(move |item| (index, item)).boxed());
    }
    let mut merged = select_all(sources);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut total: u64 = 0;
    let started = Instant::now();
    // When each stream's current outage began.
    let mut outages: Vec<Option<Instant>> = vec![None; streams.len()];
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let code = loop {
        tokio::select! {
            _ = &mut ctrl_c => break ExitCode::SUCCESS,
            _ = ticks.tick(), if output.status_line => draw_status(&states, total, started),
            item = merged.next() => match item {
                None => break ExitCode::from(EXIT_ERROR),
                Some((index, Ok(Item::Event(event)))) => {
                    if let Err(error) = write_event(&mut out, output, &streams[index], &event, several).and_then(|_| out.flush()) {
                        return exit_code_for_write_error(&error);
                    }
                    total += 1;
                    if output.limit.is_some_and(|limit| total >= limit) {
                        break ExitCode::SUCCESS;
                    }
                }
                Some((index, Ok(item))) => {
                    if let Some(line) = notice(&streams[index], &mut outages[index], item) {
                        clear_status(output.status_line);
                        eprintln!("mastostream: {line}");
                    }
                }
                Some((index, Err(error))) => {
                    clear_status(output.status_line);
                    eprintln!("mastostream: {}: {error}", streams[index]);
                    break exit_code_for(&error);
                }
            },
        }
    };
    clear_status(output.status_line);
    let _ = out.flush();
    code
}

/// The line a person sees for a change on a stream: one when it breaks
/// (`reconnecting in 2.3 s: HTTP 503 Service Unavailable`), one when it is
/// back (`reconnected after 7.1 s`), and skipped or dropped events.
fn notice(stream: &Channel, outage: &mut Option<Instant>, item: Item) -> Option<String> {
    match item {
        Item::Reconnecting { delay, reason, .. } => {
            outage.get_or_insert_with(Instant::now);
            Some(format!(
                "{stream}: reconnecting in {}: {reason}",
                human_duration(delay)
            ))
        }
        Item::Connected => outage.take().map(|since| {
            format!(
                "{stream}: reconnected after {}",
                human_duration(since.elapsed())
            )
        }),
        Item::Skipped(error) => Some(format!("{stream}: skipped an event: {error}")),
        Item::Lagged { lost, .. } => {
            Some(format!("{stream}: fell behind; {lost} events were dropped"))
        }
        _ => None,
    }
}

fn clear_status(enabled: bool) {
    if enabled {
        eprint!("\r\x1b[2K");
    }
}

fn draw_status(states: &[watch::Receiver<ConnectionState>], total: u64, started: Instant) {
    let state = states
        .iter()
        .map(|s| match &*s.borrow() {
            ConnectionState::Open => "connected".to_owned(),
            ConnectionState::Connecting => "connecting".to_owned(),
            ConnectionState::Reconnecting { delay, .. } => {
                format!("reconnecting in {:.0} s", delay.as_secs_f64().ceil())
            }
            ConnectionState::Closed(_) => "closed".to_owned(),
            _ => "…".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let rate = total as f64 / started.elapsed().as_secs_f64().max(0.001);
    eprint!("\r\x1b[2K{state} · {rate:.1} events/s · {total} total");
}
