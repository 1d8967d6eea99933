//! `mastostream demo` and `stream` as a person sees them: the real binary in
//! a pseudo-terminal, its output read through a terminal emulator (vt100).
//!
//! Every test waits on what the screen shows, never on a sleep, and checks on
//! every chunk read that no row ever holds the status line and an event at once.

mod common;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mastostream_proto::Channel;
use mastostream_testkit::{BlockingTestServer, Fault, Publish, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_mastostream");
/// Generous: the machine running the tests may be busy compiling.
const PATIENCE: Duration = Duration::from_secs(30);

/// A pseudo-terminal pair, the child's end set up the way a terminal emulator would.
fn open_pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the integers we pass and
    // reads the winsize; the name and termios pointers may be null.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(result, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [master, slave] {
        // SAFETY: fd is ours and open. Close-on-exec keeps the master out of
        // the child, so that the reader sees the end when the child exits.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: openpty returned these descriptors, and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// The binary running on a terminal of `rows` × `cols`, and what it shows.
struct Term {
    child: Child,
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Read and not yet shown.
    pieces: VecDeque<Vec<u8>>,
    parser: vt100::Parser,
    /// Whether the status line has been on the screen at some point.
    saw_status: bool,
    /// Every status line seen, in order (deduplicated).
    statuses: Vec<String>,
    ended: bool,
}

struct Options<'a> {
    rows: u16,
    cols: u16,
    env: &'a [(&'a str, &'a str)],
    /// Stdout to a pipe instead of the terminal (stderr stays on it).
    pipe_stdout: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            rows: 30,
            cols: 100,
            env: &[],
            pipe_stdout: false,
        }
    }
}

impl Term {
    fn spawn(args: &[&str], options: Options) -> Term {
        let (master, slave) = open_pty(options.rows, options.cols);
        let end = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("COLUMNS")
            .env_remove("NO_COLOR")
            .env_remove("MASTODON_SERVER")
            .env_remove("MASTODON_TOKEN")
            .stdin(end(&slave))
            .stdout(if options.pipe_stdout {
                Stdio::piped()
            } else {
                end(&slave)
            })
            .stderr(end(&slave));
        for (key, value) in options.env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        // Only the child holds the terminal now: when it exits, reads end.
        drop(command);
        drop(slave);
        let (tx, chunks) = mpsc::channel();
        let mut reader = File::from(master);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            // Linux answers EIO once no process has the terminal open: the end.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                if tx.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Term {
            child,
            chunks,
            pieces: VecDeque::new(),
            parser: vt100::Parser::new(
                options.rows.try_into().unwrap(),
                options.cols.try_into().unwrap(),
                0,
            ),
            saw_status: false,
            statuses: Vec::new(),
            ended: false,
        }
    }

    fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Rows and columns.
    fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.screen().size();
        (rows.get(), cols.get())
    }

    fn rows(&self) -> Vec<String> {
        let (_, cols) = self.size();
        self.screen().rows(0, cols).collect()
    }

    /// Reads the terminal until `done` holds for the screen, checking every
    /// state it passes through.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Term) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            if let Some(piece) = self.pieces.pop_front() {
                self.parser.process(&piece);
                self.check();
                continue;
            }
            assert!(
                !self.ended,
                "the program ended before {what}; screen:\n{}",
                self.screen().contents()
            );
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.pieces.extend(pieces(&chunk)),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "waited {PATIENCE:?} for {what}; screen:\n{}",
                    self.screen().contents()
                ),
            }
        }
    }

    /// Reads to the end and waits for the exit; the exit code.
    fn finish(&mut self) -> Option<i32> {
        self.wait_for("the end", |t| t.ended && t.pieces.is_empty());
        self.child.wait().unwrap().code()
    }

    fn screen_has(&self, text: &str) -> bool {
        self.rows().iter().any(|r| r.contains(text))
    }

    /// What must hold on the screen at every moment.
    fn check(&mut self) {
        for row in self.rows() {
            if !is_status(&row) {
                continue;
            }
            self.saw_status = true;
            if self.statuses.last() != Some(&row) {
                self.statuses.push(row.clone());
            }
            assert!(
                !has_time(&row)
                    && !row.contains(" post ")
                    && !row.contains("deleted")
                    && !row.contains("mastostream"),
                "status line and other text on one row: {row:?}\nscreen:\n{}",
                self.screen().contents()
            );
        }
        let (rows, _) = self.size();
        for row in 0..rows {
            assert!(
                !self.screen().row_wrapped(row),
                "row {row} ran past the width and was wrapped by the terminal: {:?}\n{}",
                self.rows()[usize::from(row)],
                self.screen().contents()
            );
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        // A failed test must not leave the program running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chunk cut just before each line clear, so that every state the screen
/// passes through before a line is cleared is looked at: however the reads
/// fall, each status line drawn is seen before it goes.
fn pieces(chunk: &[u8]) -> Vec<Vec<u8>> {
    const CLEAR: &[u8] = b"\r\x1b[2K";
    let mut pieces = Vec::new();
    let mut start = 0;
    for at in 1..chunk.len() {
        if chunk[at..].starts_with(CLEAR) {
            pieces.push(chunk[start..at].to_vec());
            start = at;
        }
    }
    pieces.push(chunk[start..].to_vec());
    pieces
}

/// The status line ends with the counts.
fn is_status(row: &str) -> bool {
    row.contains(" events/s · ")
}

/// Whether a row holds an `HH:MM:SS` time.
fn has_time(row: &str) -> bool {
    row.as_bytes().windows(8).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            2 | 5 => *b == b':',
            _ => b.is_ascii_digit(),
        })
    })
}

/// `1 stream · 12.0 events/s · 1,204 total` and the like.
fn counts(row: &str, streams: &str) -> Option<u64> {
    let rest = &row[row.rfind(streams)? + streams.len()..];
    let rest = rest.strip_prefix(" · ")?;
    let (rate, rest) = rest.split_once(" events/s · ")?;
    rate.replace(',', "").parse::<f64>().ok()?;
    let total = rest.trim_end().strip_suffix(" total")?;
    total.replace(',', "").parse().ok()
}

/// Rows that belong to events: the first shows the time, the rest are indented under it.
fn event_rows(rows: &[String]) -> Vec<&String> {
    rows.iter()
        .skip_while(|r| !has_time(r))
        .take_while(|r| !r.starts_with("mastostream demo:"))
        .filter(|r| !r.trim().is_empty() && !is_status(r))
        .collect()
}

#[test]
fn demo_welcomes_shares_the_screen_and_says_goodbye() {
    let mut term = Term::spawn(
        &["demo", "--limit", "40", "--rate", "200"],
        Options::default(),
    );
    term.wait_for("the welcome", |t| {
        t.screen_has("mastostream stream --server https://mastodon.social public:local")
    });
    let welcome = term.screen().contents();
    assert!(welcome.starts_with("mastostream demo: a built-in test server"));
    assert!(welcome.contains("Ctrl-C"), "{welcome}");
    term.wait_for("the status line with a count", |t| {
        t.rows()
            .iter()
            .any(|r| counts(r, "1 stream").is_some_and(|n| n >= 5))
    });
    term.wait_for("a post in colour", |t| t.screen_has(" post @"));
    // The time is dim, the author bold cyan, a booster magenta.
    let rows = term.rows();
    let row = rows.iter().position(|r| r.contains(" post @")).unwrap();
    assert!(term.screen().cell(row as u16, 0).unwrap().dim());
    let at = rows[row].find(" post @").unwrap() + " post ".len();
    let first = term.screen().cell(row as u16, at as u16).unwrap();
    assert_eq!(first.contents(), "@");
    if rows[row].contains(" boosted ") {
        assert_eq!(first.fgcolor(), vt100::Color::Idx(5), "{}", rows[row]);
    } else {
        assert_eq!(first.fgcolor(), vt100::Color::Idx(6), "{}", rows[row]);
        assert!(first.bold());
    }
    assert_eq!(term.finish(), Some(0));
    let rows = term.rows();
    let last = rows.iter().rev().find(|r| !r.trim().is_empty()).unwrap();
    assert!(
        last.starts_with("mastostream demo: 40 events shown in "),
        "{last:?}"
    );
    // The status line was taken away at the end, and its counts only grew.
    assert!(!rows.iter().any(|r| is_status(r)), "{rows:#?}");
    let totals: Vec<u64> = term
        .statuses
        .iter()
        .filter_map(|s| counts(s, "1 stream"))
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
    assert_eq!(totals.last(), Some(&40), "{:?}", term.statuses);
    if std::env::var_os("MASTOSTREAM_SHOW_SCREEN").is_some() {
        eprintln!("{}", term.screen().contents());
    }
}

#[test]
fn quiet_and_no_color_leave_plain_text() {
    let mut term = Term::spawn(
        &["demo", "--limit", "8", "--rate", "200", "--quiet"],
        Options {
            env: &[("NO_COLOR", "1")],
            ..Options::default()
        },
    );
    assert_eq!(term.finish(), Some(0));
    assert!(!term.saw_status, "--quiet drew a status line");
    assert!(term.screen_has("mastostream demo: 8 events shown in"));
    let (rows, cols) = term.size();
    let screen = term.screen();
    for row in 0..rows {
        for col in 0..cols {
            let cell = screen.cell(row, col).unwrap();
            assert!(
                cell.fgcolor() == vt100::Color::Default
                    && !cell.bold()
                    && !cell.dim()
                    && !cell.underline()
                    && !cell.inverse(),
                "an attribute at {row},{col} with NO_COLOR:\n{}",
                screen.contents_formatted().escape_debug()
            );
        }
    }
}

#[test]
fn with_stdout_piped_the_data_is_plain_and_the_status_stays_on_the_terminal() {
    let mut term = Term::spawn(
        &["demo", "--limit", "6", "--rate", "200"],
        Options {
            pipe_stdout: true,
            ..Options::default()
        },
    );
    let mut stdout = term.child.stdout.take().unwrap();
    let data = std::thread::spawn(move || {
        let mut data = Vec::new();
        stdout.read_to_end(&mut data).unwrap();
        data
    });
    assert_eq!(term.finish(), Some(0));
    let data = String::from_utf8(data.join().unwrap()).unwrap();
    assert!(!data.contains('\x1b'), "{data:?}");
    assert_eq!(data.lines().count(), 6, "{data}");
    assert!(data.lines().all(has_time), "{data}");
    // The terminal had the status line, and no event.
    assert!(term.saw_status, "{:?}", term.statuses);
    assert!(!term.rows().iter().any(|r| has_time(r)));
    assert!(term.screen_has("mastostream demo: 6 events shown in"));
}

/// `mastostream stream` against `server`, with these arguments.
fn stream(server: &BlockingTestServer, args: &[&str], options: Options) -> Term {
    let url = server.url();
    let mut all = vec!["stream", "--server", &url, "--token", "t"];
    all.extend_from_slice(args);
    Term::spawn(&all, options)
}

/// Every event row fits and every row after an event's first is indented
/// under the time; returns the widest row.
fn check_wrapping(cols: u16) -> usize {
    let mut term = Term::spawn(
        &["demo", "--limit", "200", "--rate", "1000"],
        Options {
            // Tall enough to keep every row on the screen to the end.
            rows: 3000,
            cols,
            ..Options::default()
        },
    );
    assert_eq!(term.finish(), Some(0));
    let rows = term.rows();
    let events = event_rows(&rows);
    assert!(events.len() >= 200, "{rows:#?}");
    let mut continued = 0;
    for row in &events {
        assert!(
            unicode_width::UnicodeWidthStr::width(row.as_str()) <= usize::from(cols),
            "{row:?}"
        );
        if has_time(&row[..8.min(row.len())]) {
            assert_eq!(row.as_bytes()[8], b' ', "{row:?}");
        } else {
            assert!(row.starts_with("         "), "not under the time: {row:?}");
            continued += 1;
        }
    }
    assert!(continued > 0, "nothing wrapped at {cols}: {events:#?}");
    events
        .iter()
        .map(|r| unicode_width::UnicodeWidthStr::width(r.trim_end()))
        .max()
        .unwrap()
}

#[test]
fn posts_wrap_at_40_and_at_120_columns() {
    assert!(check_wrapping(40) <= 40);
    // At 120 the rows are used: a post is not wrapped at some fixed 80.
    assert!(check_wrapping(120) > 80);
}

#[test]
fn stream_status_line_counts_two_streams_and_tells_of_a_refusal() {
    let server = TestServer::builder().start_blocking().unwrap();
    let mut term = stream(
        &server,
        &["--transport", "sse", "public", "hashtag=rust"],
        Options {
            cols: 160,
            ..Options::default()
        },
    );
    assert!(server.wait_for_connections(2, PATIENCE));
    for id in 1..=3 {
        server.publish(Publish::new("delete", id.to_string()).to(Channel::Public));
    }
    term.wait_for("three events counted", |t| {
        t.rows().iter().any(|r| counts(r, "2 streams") == Some(3))
    });
    assert!(term.screen_has("[public] deleted status 3"));
    server
        .fault(Fault::Reject {
            status: 503,
            count: 2,
            retry_after: Some(4),
            headers: Vec::new(),
        })
        .unwrap();
    server.fault(Fault::Disconnect).unwrap();
    // Both are refused: told together when their waits end in the same second.
    term.wait_for("the refusal on the status line", |t| {
        t.rows().iter().any(|r| {
            let together = r.starts_with("public, hashtag=rust: reconnecting in ");
            let apart = r.starts_with("public: reconnecting in ")
                && r.contains(" · hashtag=rust: reconnecting in ");
            (together || apart)
                && r.contains(" s (HTTP 503 Service Unavailable) · ")
                && counts(r, "2 streams") == Some(3)
        })
    });
    // The break itself is told once per stream, on rows of its own.
    assert!(term.screen_has("mastostream: public: "));
    term.wait_for("both streams back", |t| {
        t.rows().iter().any(|r| r.starts_with("2 streams · "))
    });
    assert!(server.wait_for_connections(2, PATIENCE));
    server.publish(Publish::new("delete", "4").to(Channel::Hashtag("rust".into())));
    term.wait_for("the fourth event", |t| {
        t.screen_has("[hashtag=rust] deleted status 4")
            && t.rows().iter().any(|r| counts(r, "2 streams") == Some(4))
    });
}

#[test]
fn stream_status_line_tells_what_catch_up_brought_back() {
    let server = TestServer::builder().start_blocking().unwrap();
    let status = common::status_without_id();
    let mut term = stream(&server, &["--catch-up", "public:local"], Options::default());
    assert!(server.wait_for_connections(1, PATIENCE));
    // The stream takes its starting point when it opens: wait for the line to say it is open.
    term.wait_for("the stream open", |t| {
        t.rows().iter().any(|r| r.starts_with("1 stream · "))
    });
    server.publish(Publish::new("update", status.clone()));
    term.wait_for("the first post", |t| {
        t.rows().iter().any(|r| counts(r, "1 stream") == Some(1))
    });
    server
        .fault(Fault::Reject {
            status: 503,
            count: 1,
            // Time to publish what the stream will have missed.
            retry_after: Some(5),
            headers: Vec::new(),
        })
        .unwrap();
    server.fault(Fault::Disconnect).unwrap();
    term.wait_for("the break", |t| t.screen_has("mastostream: public:local: "));
    server.publish(Publish::new("update", status.clone()));
    server.publish(Publish::new("update", status));
    term.wait_for("the catch-up told", |t| {
        t.rows()
            .iter()
            .any(|r| r.starts_with("public:local: caught up 2 events after a gap · 1 stream · "))
    });
    assert!(term.screen_has("(caught up) "));
}

#[test]
fn stream_status_line_tells_of_a_silent_server() {
    let server = TestServer::builder().start_blocking().unwrap();
    let mut term = stream(
        &server,
        // Over SSE a stall timeout is at least 20 s (Mastodon's heartbeat
        // comes every 15 s); over the WebSocket a silent server is probed,
        // so a second is enough to be told.
        &["--stall-timeout", "1", "--transport", "ws", "hashtag=rust"],
        Options::default(),
    );
    assert!(server.wait_for_connections(1, PATIENCE));
    term.wait_for("the stream open", |t| {
        t.rows().iter().any(|r| r.starts_with("1 stream · "))
    });
    server.fault(Fault::Stall { seconds: 3.0 }).unwrap();
    // The status line is redrawn the moment the state changes, so the
    // reconnect is seen however short its wait.
    term.wait_for("the silence told", |t| {
        t.rows().iter().any(|r| {
            r.starts_with("hashtag=rust: reconnecting")
                && r.contains("(no heartbeat for 1 s) · 1 stream · ")
        })
    });
    term.wait_for("the stream back", |t| {
        t.rows().iter().any(|r| r.starts_with("1 stream · "))
            && t.statuses.iter().any(|s| s.contains("no heartbeat"))
    });
}
