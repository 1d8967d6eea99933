//! `mastostream stream`: events from a server as JSON lines or readable lines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{BoxStream, select_all};
use futures_util::{FutureExt, StreamExt};
use mastostream::{Client, ConnectionState, Error, Event, EventKind, Item, ReconnectPolicy};
use mastostream_proto::{Channel, human_duration};
use tokio::sync::watch;

use crate::cli::{Format, StreamArgs, Transport};
use crate::output::exit_code_for_write_error;
use crate::pretty::{self, Style};
use crate::screen::{self, Screen, StatusLine};
use crate::status::{self, Board, StreamStatus};

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
        }
        | Error::Unsupported { .. } => EXIT_BAD_REQUEST,
        _ => EXIT_ERROR,
    })
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    note!("mastostream: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// How the events are shown.
pub struct Output {
    pub format: Format,
    pub limit: Option<u64>,
    /// The pretty format's look; a width is the terminal's when it was
    /// started and follows it when it is resized.
    pub style: Style,
    pub status_line: StatusLine,
    /// An open stream with no sign of life for this long is told as silent
    /// on the status line.
    pub silent_after: Duration,
}

impl Output {
    /// The pretty look for this process's stdout: colour and wrapping only
    /// on a terminal.
    pub fn pretty_style(links: bool) -> Style {
        let terminal = io::stdout().is_terminal();
        Style {
            colour: pretty::colour_wanted(terminal),
            width: terminal.then(|| screen::columns(&io::stdout())),
            links,
        }
    }
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
    let greeting = match crate::serve::seconds(args.greeting_timeout, "greeting-timeout") {
        Ok(d) => d,
        Err(message) => return usage(message),
    };
    let stdout_is_terminal = io::stdout().is_terminal();
    let format = args.format.unwrap_or(if stdout_is_terminal {
        Format::Pretty
    } else {
        Format::Jsonl
    });
    // JSON lines copy the payload through: its JSON is checked as it
    // arrives, and no entity is built. The pretty view builds what it shows.
    let builder = Client::builder(&args.server)
        .stall_timeout(stall)
        .greeting_timeout(greeting)
        .transport(transport)
        .parse_on_demand(format == Format::Jsonl);
    let mut builder = match crate::network::apply(&args.network, builder) {
        Ok(builder) => builder,
        Err(message) => return usage(message),
    };
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
    let output = Output {
        format,
        // 0 is no end, as for `demo` and `firehose` (it printed one event).
        limit: args.limit.filter(|&limit| limit > 0),
        style: Output::pretty_style(args.links),
        status_line: StatusLine::detect(args.quiet),
        silent_after: silent_after(stall),
    };
    let runtime = match crate::output::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime
        .block_on(stream_to_stdout(&client, streams, &output))
        .code
}

/// How long an open stream may be quiet before the status line says so:
/// past a missed SSE heartbeat (Mastodon sends one every 15 s) and past the
/// WebSocket probe the client sends at half the stall timeout, whose pong is
/// the sign of life there.
pub fn silent_after(stall: Option<Duration>) -> Duration {
    match stall {
        Some(stall) => (stall / 2 + Duration::from_secs(2)).max(Duration::from_secs(20)),
        // No probe: Mastodon's own WebSocket ping comes every 30 s.
        None => Duration::from_secs(35),
    }
}

/// Writes one event in the chosen format.
fn write_event(
    out: &mut impl Write,
    format: Format,
    style: &Style,
    stream: &Channel,
    event: &Event,
    several: bool,
) -> io::Result<()> {
    match format {
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
            let text = pretty::render(style, event, name.as_deref(), SystemTime::now());
            out.write_all(text.as_bytes())
        }
    }
}

/// How a run of [`stream_to_stdout`] ended.
pub struct Finished {
    pub code: ExitCode,
    /// Events written.
    pub events: u64,
}

/// How often the status line is redrawn (and the terminal's width read)
/// when no event comes to do it.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// The most items handled in one go before flushing and looking at
/// Ctrl-C, the status changes and the clock again.
const RUN: usize = 64;

/// What handling an item leaves the loop to do.
enum Step {
    /// Go on.
    Next,
    /// Stop with this exit code.
    End(ExitCode),
    /// Writing failed; this many of the events counted were not shown.
    Failed(io::Error, u64),
}

/// Streams every stream in `streams` to stdout until the limit, Ctrl-C or a
/// fatal error.
pub async fn stream_to_stdout(client: &Client, streams: Vec<Channel>, output: &Output) -> Finished {
    let several = streams.len() > 1;
    let mut states: Vec<watch::Receiver<ConnectionState>> = Vec::new();
    let mut sources = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        // Heartbeats (and WebSocket pings) tell the status line the stream is alive.
        let events = client.stream(stream.clone()).with_heartbeats(true);
        states.push(events.watch_state());
        sources.push(events.map(move |item| (index, item)).boxed());
    }
    let mut merged = select_all(sources);
    let mut board = Board::new(
        streams.iter().map(ToString::to_string),
        output.silent_after,
        Instant::now(),
    );
    let mut changes = status_changes(&states);
    let stdout = io::stdout();
    let mut screen = Screen::new(
        io::BufWriter::new(stdout.lock()),
        io::stderr(),
        output.status_line,
        stderr_columns(),
    );
    let mut style = output.style;
    // When each stream's current outage began.
    let mut outages: Vec<Option<Instant>> = vec![None; streams.len()];
    let mut ticks = tokio::time::interval(STATUS_EVERY);
    // Ctrl-C or SIGTERM: the screen is finished and the exit code is 0
    // (SIGTERM killed the process with its status line on screen).
    let stop = crate::stop::requested();
    tokio::pin!(stop);
    let code = loop {
        tokio::select! {
            () = &mut stop => break ExitCode::SUCCESS,
            Some((index, status)) = changes.next() => {
                board.set_status(index, status, Instant::now());
                screen.show_status(board.render(Instant::now()));
            }
            // Countdowns and the rate move on by themselves; the terminal may be resized.
            _ = ticks.tick() => {
                let now = Instant::now();
                if style.width.is_some() {
                    style.width = Some(screen::columns(&io::stdout()));
                }
                screen.set_width(stderr_columns());
                screen.show_status(board.render(now));
            }
            item = merged.next() => {
                // This item and those already here after it, up to a run's
                // bound; then one flush, so that a pipe gets a write per run
                // rather than per event.
                let mut item = item;
                let mut run = 0;
                let counted_before = board.total();
                let step = loop {
                    let step = match item {
                        None => Step::End(ExitCode::from(EXIT_ERROR)),
                        Some((index, Ok(Item::Event(event)))) => {
                            let now = Instant::now();
                            count_event(&mut board, index, &event, now);
                            let written = screen.write_event(
                                |out| write_event(out, output.format, &style, &streams[index], &event, several),
                                || board.render(now),
                            );
                            match written {
                                // The event that failed was counted, not shown;
                                // unflushed, the run's earlier ones may not be either.
                                Err(error) if screen.flushes_each_event() => Step::Failed(error, 1),
                                Err(error) => Step::Failed(error, board.total() - counted_before),
                                Ok(()) if output.limit.is_some_and(|limit| board.total() >= limit) => {
                                    Step::End(ExitCode::SUCCESS)
                                }
                                Ok(()) => Step::Next,
                            }
                        }
                        Some((index, Ok(Item::Heartbeat))) => {
                            board.handle_heartbeat(index, Instant::now());
                            Step::Next
                        }
                        Some((index, Ok(item))) => {
                            if let Some(line) = notice(&streams[index], &mut outages[index], item) {
                                screen.message(&format!("mastostream: {line}"));
                            }
                            Step::Next
                        }
                        Some((index, Err(error))) => {
                            screen.message(&format!("mastostream: {}: {error}", streams[index]));
                            Step::End(exit_code_for(&error))
                        }
                    };
                    run += 1;
                    if !matches!(step, Step::Next) || run == RUN {
                        break step;
                    }
                    match merged.next().now_or_never() {
                        Some(next) => item = next,
                        None => break Step::Next,
                    }
                };
                let step = match (step, screen.flush_events()) {
                    (Step::Failed(error, unshown), _) => Step::Failed(error, unshown),
                    // The run's events may not have been shown.
                    (_, Err(error)) => Step::Failed(error, board.total() - counted_before),
                    (step, Ok(())) => step,
                };
                match step {
                    Step::Next => {}
                    Step::End(code) => break code,
                    Step::Failed(error, unshown) => {
                        screen.finish();
                        let events = board.total().saturating_sub(unshown);
                        return Finished { code: exit_code_for_write_error(&error), events };
                    }
                }
            }
        }
    };
    screen.finish();
    Finished {
        code,
        events: board.total(),
    }
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

/// Columns to fit stderr's lines to: off a terminal (a log file) none, so
/// that each message stays one line.
fn stderr_columns() -> usize {
    if io::stderr().is_terminal() {
        screen::columns(&io::stderr())
    } else {
        usize::MAX
    }
}

/// Each stream's status, whenever its connection state changes (its state
/// at the start first), so that the status line tells a change at once.
fn status_changes(
    states: &[watch::Receiver<ConnectionState>],
) -> futures_util::stream::SelectAll<BoxStream<'static, (usize, StreamStatus)>> {
    select_all(states.iter().enumerate().map(|(index, state)| {
        let mut state = state.clone();
        state.mark_changed();
        futures_util::stream::unfold(state, move |mut state| async move {
            state.changed().await.ok()?;
            // Read when it changes: a reconnect's countdown starts then.
            let status = stream_status(&state.borrow_and_update(), Instant::now());
            Some(((index, status), state))
        })
        .boxed()
    }))
}

/// Counts an event, and what catch-up says through it.
fn count_event(board: &mut Board, index: usize, event: &Event, now: Instant) {
    board.handle_event(index, event.is_caught_up(), now);
    // By name first: asking any other event for its kind would build its
    // entity, which the JSON lines never need.
    if event.name() != "mastostream.gap" {
        return;
    }
    if let Ok(EventKind::Gap(gap)) = event.kind() {
        board.handle_gap(index, gap.complete, now);
    }
}

/// The library's connection state in the status line's terms. This is the
/// one place that reads it: when the library's lifecycle reports change, this
/// (and [`status_changes`], which calls it on each change) is what changes.
fn stream_status(state: &ConnectionState, now: Instant) -> StreamStatus {
    match state {
        ConnectionState::Open => StreamStatus::Open,
        ConnectionState::Reconnecting { delay, reason, .. } => StreamStatus::Reconnecting {
            until: now.checked_add(*delay).unwrap_or(now),
            reason: match reason {
                Error::Http {
                    status, message, ..
                } => status::http_reason(*status, message.as_deref()),
                Error::Stalled { silent_for } => {
                    format!("no heartbeat for {}", status::rounded_duration(*silent_for))
                }
                Error::Network { message, .. } => screen::fit(message, 60),
                other => screen::fit(&other.to_string(), 60),
            },
        },
        ConnectionState::Closed(_) => StreamStatus::Closed,
        // Connecting, and whatever states the library adds later.
        _ => StreamStatus::Connecting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_states_in_the_status_line_terms() {
        let now = Instant::now();
        let reconnecting = |reason| ConnectionState::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(3),
            reason,
        };
        assert_eq!(
            stream_status(
                &reconnecting(Error::Http {
                    status: 503,
                    message: Some("Service Unavailable".into()),
                    retry_after: Some(3),
                }),
                now
            ),
            StreamStatus::Reconnecting {
                until: now + Duration::from_secs(3),
                reason: "HTTP 503 Service Unavailable".into()
            }
        );
        let StreamStatus::Reconnecting { reason, .. } = stream_status(
            &reconnecting(Error::Stalled {
                silent_for: Duration::from_millis(45_001),
            }),
            now,
        ) else {
            panic!("not reconnecting");
        };
        assert_eq!(reason, "no heartbeat for 45 s");
        assert_eq!(
            stream_status(&ConnectionState::Open, now),
            StreamStatus::Open
        );
        assert_eq!(
            stream_status(&ConnectionState::Closed(None), now),
            StreamStatus::Closed
        );
    }
}
