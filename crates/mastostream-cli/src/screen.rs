//! One terminal, shared by the events (stdout) and the status line (stderr).
//!
//! The status line is drawn without a newline, so that it can be redrawn in
//! place. Whatever else reaches the terminal must first take it away, or the
//! next line is glued to it: [`Screen`] is the one writer of both streams and
//! clears the status line before an event line or a message, then draws it again.

use std::io::{self, IsTerminal, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Carriage return, then erase the whole line: the cursor ends at column 0
/// of an empty row, where the status line was.
const CLEAR_LINE: &[u8] = b"\r\x1b[2K";

/// Where the status line goes, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLine {
    /// Not drawn: stderr is not a terminal, or `--quiet`.
    Off,
    /// On stderr, a terminal, while the events go elsewhere (a pipe, a file):
    /// event lines never touch it.
    Apart,
    /// On the terminal the events go to as well: every event line clears it
    /// first and redraws it after.
    Shared,
}

impl StatusLine {
    /// Where the status line goes for this process's stdout and stderr.
    pub fn detect(quiet: bool) -> StatusLine {
        if quiet || !io::stderr().is_terminal() {
            StatusLine::Off
        } else if io::stdout().is_terminal() {
            StatusLine::Shared
        } else {
            StatusLine::Apart
        }
    }
}

/// The writer of event lines (to `out`), messages and the status line (to `err`).
#[derive(Debug)]
pub struct Screen<O: Write, E: Write> {
    out: O,
    err: E,
    mode: StatusLine,
    /// The status line on the terminal now, if it is drawn.
    shown: Option<String>,
    /// The last status line asked for, to redraw after a message.
    last: String,
    /// Columns of the terminal the status line is on.
    width: usize,
}

impl<O: Write, E: Write> Screen<O, E> {
    /// A screen writing events to `out` and everything else to `err`.
    pub fn new(out: O, err: E, mode: StatusLine, width: usize) -> Self {
        Screen {
            out,
            err,
            mode,
            shown: None,
            last: String::new(),
            width,
        }
    }

    /// The terminal was resized; the next status line fits the new width.
    pub fn set_width(&mut self, width: usize) {
        self.width = width;
    }

    /// Writes one event (its `write` ends the line) and then, on a shared
    /// terminal, the status line from `status` (the event flushed first, to
    /// stand above it). Elsewhere the event waits in the buffer for
    /// [`flush_events`](Self::flush_events). Only errors writing the events
    /// are returned: the status line is a courtesy.
    pub fn write_event(
        &mut self,
        write: impl FnOnce(&mut O) -> io::Result<()>,
        status: impl FnOnce() -> String,
    ) -> io::Result<()> {
        let shared = self.mode == StatusLine::Shared;
        if shared {
            self.hide();
        }
        write(&mut self.out)?;
        if shared {
            self.out.flush()?;
            self.show_status(status());
        }
        Ok(())
    }

    /// Whether each event is flushed as it is written (on a shared terminal).
    pub fn flushes_each_event(&self) -> bool {
        self.mode == StatusLine::Shared
    }

    /// Sends the events written so far: after each run of events that were
    /// ready together, so that a pipe gets one write for the run and never
    /// waits for an event that has arrived.
    pub fn flush_events(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Draws `text` as the status line, in place of the one shown.
    pub fn show_status(&mut self, text: String) {
        if self.mode == StatusLine::Off {
            return;
        }
        let text = fit(&text, self.width.saturating_sub(1).max(1));
        if self.shown.as_deref() != Some(&text) {
            let _ = self
                .err
                .write_all(CLEAR_LINE)
                .and_then(|_| self.err.write_all(text.as_bytes()))
                .and_then(|_| self.err.flush());
            self.shown = Some(text.clone());
        }
        self.last = text;
    }

    /// Writes a line to stderr (a warning, an error), below the events and
    /// clear of the status line, which comes back under it. It is wrapped
    /// between words, as the terminal would wrap it mid-word.
    pub fn message(&mut self, text: &str) {
        // Events before the message come out before it (stdout and stderr
        // may be one file).
        let _ = self.out.flush();
        let redraw = self.shown.is_some();
        self.hide();
        let text = wrap(text, self.width);
        let _ = writeln!(self.err, "{text}").and_then(|_| self.err.flush());
        if redraw {
            let last = std::mem::take(&mut self.last);
            self.show_status(last);
        }
    }

    /// Takes the status line away and flushes the events: the terminal is
    /// left as if there had never been one.
    pub fn finish(&mut self) {
        self.hide();
        let _ = self.out.flush();
    }

    fn hide(&mut self) {
        if self.shown.take().is_some() {
            let _ = self
                .err
                .write_all(CLEAR_LINE)
                .and_then(|_| self.err.flush());
        }
    }
}

/// `text` cut to `width` columns, with `…` as its last column if it was cut.
/// A status line longer than the terminal would wrap, and clearing the line
/// would then leave its first row behind.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Plain text wrapped at `width` columns between words; each line keeps its
/// own leading indent on the rows it wraps to.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let mut used = 0;
        for word in body.split_whitespace() {
            if used > 0 && used + 1 + word.width() > width {
                out.push('\n');
                used = 0;
            }
            if used == 0 {
                out.push_str(indent);
                used = indent.width();
            } else {
                out.push(' ');
                used += 1;
            }
            // A word wider than the row (an address) is broken where the row ends.
            for c in word.chars() {
                let w = c.width().unwrap_or(0);
                if used + w > width && used > indent.width() {
                    out.push('\n');
                    out.push_str(indent);
                    used = indent.width();
                }
                out.push(c);
                used += w;
            }
        }
    }
    out
}

/// The width of the terminal `stream` is on: `COLUMNS` when set (as `ls`
/// does, so that it can be overridden), else the terminal's own, else 80.
pub fn columns(stream: &impl std::os::fd::AsRawFd) -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| terminal_columns(stream.as_raw_fd()))
        .unwrap_or(80)
}

fn terminal_columns(fd: std::os::fd::RawFd) -> Option<usize> {
    // SAFETY: winsize is plain integers, for which all zeroes is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`, which outlives the
    // call; on a descriptor that is not a terminal it fails and writes nothing.
    let result = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (result == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// Two writers into one buffer, as stdout and stderr are into one terminal.
    #[derive(Clone, Default)]
    struct Terminal(Rc<RefCell<Vec<u8>>>);

    impl Write for Terminal {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Terminal {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    fn line(text: &'static str) -> impl FnOnce(&mut Terminal) -> io::Result<()> {
        move |out| writeln!(out, "{text}")
    }

    #[test]
    fn on_a_shared_terminal_events_clear_and_redraw_the_status_line() {
        let terminal = Terminal::default();
        let mut screen = Screen::new(terminal.clone(), terminal.clone(), StatusLine::Shared, 80);
        screen.show_status("1 stream · 0 total".into());
        screen
            .write_event(line("event one"), || "1 stream · 1 total".into())
            .unwrap();
        screen
            .write_event(line("event two"), || "1 stream · 2 total".into())
            .unwrap();
        screen.finish();
        assert_eq!(
            terminal.text(),
            concat!(
                "\r\x1b[2K1 stream · 0 total",
                "\r\x1b[2Kevent one\n",
                "\r\x1b[2K1 stream · 1 total",
                "\r\x1b[2Kevent two\n",
                "\r\x1b[2K1 stream · 2 total",
                "\r\x1b[2K",
            )
        );
    }

    #[test]
    fn with_stdout_elsewhere_events_and_status_never_mix() {
        let (out, err) = (Terminal::default(), Terminal::default());
        let mut screen = Screen::new(out.clone(), err.clone(), StatusLine::Apart, 80);
        screen.show_status("1 stream · 0 total".into());
        screen
            .write_event(line("{\"event\":\"delete\"}"), || unreachable!())
            .unwrap();
        screen.show_status("1 stream · 1 total".into());
        screen.finish();
        assert_eq!(out.text(), "{\"event\":\"delete\"}\n");
        assert_eq!(
            err.text(),
            "\r\x1b[2K1 stream · 0 total\r\x1b[2K1 stream · 1 total\r\x1b[2K"
        );
    }

    #[test]
    fn off_draws_nothing_but_messages() {
        let (out, err) = (Terminal::default(), Terminal::default());
        let mut screen = Screen::new(out.clone(), err.clone(), StatusLine::Off, 80);
        screen.show_status("1 stream".into());
        screen
            .write_event(line("event"), || unreachable!())
            .unwrap();
        screen.message("mastostream: public: network error");
        screen.finish();
        assert_eq!(out.text(), "event\n");
        assert_eq!(err.text(), "mastostream: public: network error\n");
    }

    #[test]
    fn messages_go_above_the_status_line() {
        let terminal = Terminal::default();
        let mut screen = Screen::new(terminal.clone(), terminal.clone(), StatusLine::Shared, 80);
        screen.show_status("status".into());
        screen.message("warning");
        assert_eq!(
            terminal.text(),
            "\r\x1b[2Kstatus\r\x1b[2Kwarning\n\r\x1b[2Kstatus"
        );
    }

    #[test]
    fn an_unchanged_status_line_is_not_redrawn() {
        let err = Terminal::default();
        let mut screen = Screen::new(io::sink(), err.clone(), StatusLine::Apart, 80);
        screen.show_status("same".into());
        screen.show_status("same".into());
        assert_eq!(err.text(), "\r\x1b[2Ksame");
    }

    #[test]
    fn the_status_line_never_wraps() {
        let err = Terminal::default();
        let mut screen = Screen::new(io::sink(), err.clone(), StatusLine::Apart, 12);
        screen.show_status("public: reconnecting in 3 s".into());
        assert_eq!(err.text(), "\r\x1b[2Kpublic: re…");
        assert_eq!(fit("日本語テキスト", 6), "日本…");
        assert_eq!(fit("short", 6), "short");
    }

    #[test]
    fn plain_text_wraps_between_words_and_keeps_indents() {
        assert_eq!(
            wrap("one two three four\n  five six seven\n\nend", 10),
            "one two\nthree four\n  five six\n  seven\n\nend"
        );
        assert_eq!(
            wrap("see https://x.example/a", 10),
            "see\nhttps://x.\nexample/a"
        );
    }
}
