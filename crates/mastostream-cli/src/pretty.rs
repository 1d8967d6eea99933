//! The `pretty` output: each event as people read it, wrapped to the
//! terminal with the text hanging under the time column.

use std::time::{SystemTime, UNIX_EPOCH};

use mastostream::{Event, EventKind};
use mastostream_proto::entities::{Notification, Status};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns taken by the time (`HH:MM:SS `); every further row of an event is
/// indented this far, so that the times stand alone in their column.
const TIME_COLUMN: usize = 9;

/// Text narrower than this is unreadable: on a very narrow terminal, rows
/// run wider than it rather than a word per row.
const MIN_TEXT_WIDTH: usize = 20;

/// A post's text past this many characters is cut (Mastodon's default
/// limit is 500; some servers allow thousands).
const MAX_TEXT_CHARS: usize = 500;

/// How events are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// SGR colours and attributes.
    pub colour: bool,
    /// Columns to wrap at; `None` keeps each event on one line.
    pub width: Option<usize>,
    /// Print each post's address under it.
    pub links: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Whether to colour: only on a terminal, and never when `NO_COLOR` is set
/// to anything but the empty string (no-color.org).
pub fn colour_wanted(stdout_is_terminal: bool) -> bool {
    stdout_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
/// Plain text from Mastodon's HTML: paragraphs and breaks become newlines,
/// tags are dropped, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(['<', '&']) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = rest[..end].to_ascii_lowercase();
            if tag.starts_with("<br") || (tag.starts_with("</p") && end < rest.len()) {
                out.push('\n');
            }
            rest = &rest[end..];
        } else {
            // An entity is short: its `;` within the next few bytes. A
            // byte search, as the text there may be any character (the
            // 12th byte can fall inside one).
            let end = rest.as_bytes()[..rest.len().min(12)]
                .iter()
                .position(|&b| b == b';');
            match end.and_then(|e| decode_entity(&rest[1..e]).map(|c| (c, e))) {
                Some((c, e)) => {
                    out.push(c);
                    rest = &rest[e + 1..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

fn decode_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" | "#39" => '\'',
        "nbsp" => ' ',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?
        }
    })
}

/// `HH:MM:SS` from an ISO 8601 timestamp (Mastodon's are in UTC).
fn clock(timestamp: &str) -> &str {
    timestamp.get(11..19).unwrap_or(timestamp)
}

/// `HH:MM:SS` in UTC, for events that carry no time of their own.
fn utc_clock(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// A run of text and the SGR code it is painted with (`""`: plain).
struct Span {
    text: String,
    code: &'static str,
}

fn span(code: &'static str, text: impl Into<String>) -> Span {
    Span {
        text: text.into(),
        code,
    }
}

/// `text` cut to [`MAX_TEXT_CHARS`], with the cut said and counted.
fn cut(text: &str) -> Vec<Span> {
    let total = text.chars().count();
    if total <= MAX_TEXT_CHARS {
        return vec![span("", text)];
    }
    let end = text
        .char_indices()
        .nth(MAX_TEXT_CHARS)
        .map_or(text.len(), |(i, _)| i);
    // End on a word when one ends near the limit, not mid-word.
    let kept = match text[..end].rfind(char::is_whitespace) {
        Some(space) if space > end * 4 / 5 => text[..space].trim_end(),
        _ => &text[..end],
    };
    let rest = total - kept.chars().count();
    vec![span("", kept), span("2", format!(" … (+{rest} chars)"))]
}

/// The spans of a status, its time and its address.
fn status_spans(spans: &mut Vec<Span>, status: &Status, edit: bool) -> (String, Option<String>) {
    let shown = status.reblog.as_deref().unwrap_or(status);
    if edit {
        spans.push(span("1;33", "edit"));
    } else {
        spans.push(span("32", "post"));
    }
    if status.reblog.is_some() {
        spans.push(span("35", format!(" @{} boosted", status.account.acct)));
    }
    spans.push(span("1;36", format!(" @{}", shown.account.acct)));
    spans.push(span("", ": "));
    if !shown.spoiler_text.is_empty() {
        spans.push(span("7;33", format!("[CW: {}]", shown.spoiler_text)));
        spans.push(span("", " "));
    }
    spans.extend(cut(&html_to_text(&shown.content)));
    match shown.media_attachments.len() {
        0 => {}
        n => spans.push(span("2", format!(" [{n} media]"))),
    }
    let time = match (edit, &status.edited_at) {
        (true, Some(edited)) => clock(edited),
        _ => clock(&status.created_at),
    };
    (time.to_owned(), shown.url.clone())
}

fn notification_spans(spans: &mut Vec<Span>, n: &Notification) -> (String, Option<String>) {
    spans.push(span("1;33", "notification"));
    spans.push(span("", format!(" {} from", n.kind)));
    spans.push(span("1;36", format!(" @{}", n.account.acct)));
    if let Some(status) = &n.status {
        spans.push(span("", ": "));
        spans.extend(cut(&html_to_text(&status.content)));
    }
    let url = n.status.as_ref().and_then(|s| s.url.clone());
    (clock(&n.created_at).to_owned(), url)
}

/// An event as rows of text, each ending in a newline: the time, then what
/// happened, wrapped to `style.width` with the rows after the first indented
/// under the time; `stream` prefixes it when several streams are shown.
/// Events that carry no time are shown at `now`.
pub fn render(style: &Style, event: &Event, stream: Option<&str>, now: SystemTime) -> String {
    let mut spans = Vec::new();
    if let Some(stream) = stream {
        spans.push(span("34", format!("[{stream}] ")));
    }
    if event.is_caught_up() {
        spans.push(span("2", "(caught up) "));
    }
    let (time, url) = match event.kind() {
        Ok(EventKind::Update(status)) => status_spans(&mut spans, status, false),
        Ok(EventKind::StatusUpdate(status)) => status_spans(&mut spans, status, true),
        Ok(EventKind::Notification(n)) => notification_spans(&mut spans, n),
        Ok(EventKind::Delete(id)) => {
            spans.push(span("31", "deleted"));
            spans.push(span("", format!(" status {id}")));
            (utc_clock(now), None)
        }
        Ok(EventKind::Conversation(c)) => {
            spans.push(span("1;34", "conversation"));
            spans.push(span("", format!(" {}", c.id)));
            match &c.last_status {
                Some(last) => {
                    spans.push(span("1;36", format!(" @{}", last.account.acct)));
                    spans.push(span("", ": "));
                    spans.extend(cut(&html_to_text(&last.content)));
                    (clock(&last.created_at).to_owned(), last.url.clone())
                }
                None => (utc_clock(now), None),
            }
        }
        Ok(EventKind::Announcement(a)) => {
            spans.push(span("1;34", "announcement"));
            spans.push(span("", " "));
            spans.extend(cut(&html_to_text(&a.content)));
            (utc_clock(now), None)
        }
        Ok(EventKind::AnnouncementReaction(r)) => {
            spans.push(span("1;34", "reaction"));
            spans.push(span(
                "",
                format!(" {} ×{} on {}", r.name, r.count, r.announcement_id),
            ));
            (utc_clock(now), None)
        }
        Ok(EventKind::AnnouncementDelete(id)) => {
            spans.push(span("31", "deleted"));
            spans.push(span("", format!(" announcement {id}")));
            (utc_clock(now), None)
        }
        Ok(EventKind::Gap(gap)) => {
            let outage = gap.until.duration_since(gap.since).unwrap_or_default();
            spans.push(span("1;31", "gap"));
            spans.push(span(
                "",
                format!(
                    " after an outage of {}{}",
                    crate::status::rounded_duration(outage),
                    if gap.complete {
                        ": posts fetched back; deletes and edits may be missing"
                    } else {
                        ": some posts could not be fetched back"
                    }
                ),
            ));
            (utc_clock(now), None)
        }
        _ => {
            spans.push(span("1;34", event.name().to_owned()));
            let text = event.payload().as_str().unwrap_or("");
            if !text.is_empty() {
                spans.push(span("", " "));
                spans.extend(cut(text));
            }
            (utc_clock(now), None)
        }
    };
    let link = url.filter(|_| style.links);
    lay_out(style, &time, &spans, link.as_deref())
}

/// What stands between two words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    Newline,
}

/// A word: the pieces of it painted each their own way (`@alice` and `:`).
struct Word<'a> {
    gap: Gap,
    pieces: Vec<(&'static str, &'a str)>,
    width: usize,
}

fn words(spans: &[Span]) -> Vec<Word<'_>> {
    let mut words: Vec<Word> = Vec::new();
    let mut gap = Gap::None;
    for span in spans {
        let text = span.text.as_str();
        let mut start = None;
        for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
            let blank = c.is_whitespace() || i == text.len();
            match (blank, start) {
                (false, None) => start = Some(i),
                (true, Some(from)) => {
                    let piece = &text[from..i];
                    let width = columns(piece);
                    match words.last_mut() {
                        Some(word) if gap == Gap::None => {
                            word.pieces.push((span.code, piece));
                            word.width += width;
                        }
                        _ => words.push(Word {
                            gap,
                            pieces: vec![(span.code, piece)],
                            width,
                        }),
                    }
                    gap = Gap::None;
                    start = None;
                }
                _ => {}
            }
            if i < text.len() && c.is_whitespace() {
                gap = gap.max(if c == '\n' { Gap::Newline } else { Gap::Space });
            }
        }
    }
    words
}

/// The columns a terminal may give `text`, erring wide: a variation
/// selector widens the emoji before it ("⚠️" takes two columns, "⚠" one),
/// while a joined sequence ("👨‍👩‍👧") is one glyph on some terminals and each
/// of its emoji on others. A row measured short would be wrapped by the
/// terminal mid-word.
fn columns(text: &str) -> usize {
    let apart: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    apart.max(text.width())
}

/// Where the last 16 characters of `run` start.
fn tail_start(run: &str) -> usize {
    run.char_indices().rev().nth(15).map_or(0, |(at, _)| at)
}

/// Lays the spans out after the time, wrapped at the style's width, then the
/// address on rows of its own.
fn lay_out(style: &Style, time: &str, spans: &[Span], link: Option<&str>) -> String {
    // Unwrapped, an event is one line (for grep and friends); its paragraphs
    // are marked instead of broken.
    let width = style.width.map_or(usize::MAX, |w| {
        w.saturating_sub(TIME_COLUMN).max(MIN_TEXT_WIDTH)
    });
    let mut row = Row {
        out: style.paint("2", time),
        used: 0,
        width,
        style,
    };
    row.out.push(' ');
    for word in words(spans) {
        match word.gap {
            Gap::Newline if style.width.is_none() => row.push_plain(" ⏎ "),
            Gap::Newline => row.next(),
            Gap::Space if row.used + 1 + word.width > width => row.next(),
            Gap::Space => row.push_plain(" "),
            Gap::None => {}
        }
        for (code, piece) in word.pieces {
            row.push_piece(code, piece);
        }
    }
    if let Some(link) = link {
        row.next();
        row.push_piece("4", link);
    }
    row.out.push('\n');
    row.out
}

/// The rows of one event, as they are laid out.
struct Row<'a> {
    out: String,
    /// Columns used on the current row, after the time column.
    used: usize,
    width: usize,
    style: &'a Style,
}

impl Row<'_> {
    /// Starts the next row, under the text of the first.
    fn next(&mut self) {
        if self.used > 0 {
            self.out.push('\n');
            self.out.extend(std::iter::repeat_n(' ', TIME_COLUMN));
            self.used = 0;
        }
    }

    fn push_plain(&mut self, text: &str) {
        self.out.push_str(text);
        self.used += text.chars().count();
    }

    /// Adds painted text, breaking it where a row ends: a word wider than a
    /// row (a long address) has nowhere else to go.
    fn push_piece(&mut self, code: &str, piece: &str) {
        if self.width == usize::MAX {
            // Unwrapped: nothing to break.
            self.used = self.used.saturating_add(columns(piece));
            self.out.push_str(&self.style.paint(code, piece));
            return;
        }
        // The run's width both ways `columns` counts it: each character
        // apart (a sum), and as a terminal joining sequences would (what
        // a character adds there is measured on the run's last few
        // characters: a joined sequence is shorter than that, and
        // measuring the whole run at each character was quadratic).
        let mut run = String::new();
        let (mut apart, mut joined) = (0usize, 0usize);
        for c in piece.chars() {
            let from = tail_start(&run);
            let before = run[from..].width();
            run.push(c);
            let added_apart = c.width().unwrap_or(0);
            let added_joined = run[from..].width().saturating_sub(before);
            let was = apart.max(joined);
            let w = (apart + added_apart).max(joined + added_joined) - was;
            if self.used + w > self.width && self.used > 0 {
                run.pop();
                if !run.is_empty() {
                    self.out.push_str(&self.style.paint(code, &run));
                    run.clear();
                }
                self.next();
                run.push(c);
                (apart, joined) = (added_apart, run.width());
                self.used = apart.max(joined);
                continue;
            }
            (apart, joined) = (apart + added_apart, joined + added_joined);
            self.used += w;
        }
        if !run.is_empty() {
            self.out.push_str(&self.style.paint(code, &run));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn html_becomes_plain_text() {
        assert_eq!(
            html_to_text(
                "<p>Hello &amp; <a href=\"x\">#<span>rust</span></a></p><p>two<br />lines &#39;ok&#x27; &bogus</p>"
            ),
            "Hello & #rust\ntwo\nlines 'ok' &bogus"
        );
        assert_eq!(html_to_text("&"), "&");
        assert_eq!(html_to_text("<p>unterminated"), "unterminated");
    }

    /// Joined emoji sequences (wider apart) beside emoji made wide by a
    /// selector (wider joined) in one unbroken run: the row still fits
    /// (proptest found a 41-column row at width 40).
    #[test]
    fn mixed_emoji_runs_fit_the_row() {
        let spoiler = "👨\u{200d}👩\u{200d}👧&#39;&#39;⚠\u{fe0f}👨\u{200d}👩\u{200d}👧</p>&&word</a>👨\u{200d}👩\u{200d}👧word⚠\u{fe0f}<p>";
        let event = post(
            "",
            serde_json::json!({"spoiler_text": spoiler, "account": {
                "id": "9", "username": "a", "acct": "a", "display_name": "",
            }}),
        );
        let text = render(&plain(Some(40)), &event, None, NOW);
        for line in text.lines() {
            assert!(columns(line) <= 40, "{line:?} in\n{text}");
        }
    }

    #[test]
    fn entities_before_wide_characters() {
        // The 12th byte after `&` falls inside a character here.
        assert_eq!(html_to_text("<p>it&#39;s 日本語</p>"), "it's 日本語");
        assert_eq!(html_to_text("&amp;日本語 &lt;😀😀"), "&日本語 <😀😀");
        assert_eq!(html_to_text("&日本語;"), "&日本語;");
    }

    /// Text made of what Mastodon's HTML holds: tags, entities (whole,
    /// cut, unknown), wide and joined characters, combining marks.
    fn html_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<p>"),
            Just("</p>"),
            Just("<br />"),
            Just("<a href=\"https://x.example/tags/rust\">"),
            Just("</a>"),
            Just("&#39;"),
            Just("&amp;"),
            Just("&lt;"),
            Just("&#x1F418;"),
            Just("&"),
            Just(";"),
            Just("<"),
            Just(" "),
            Just("word"),
            Just("日本語"),
            Just("😀"),
            Just("👨\u{200d}👩\u{200d}👧"),
            Just("⚠\u{fe0f}"),
            Just("e\u{301}"),
            Just("\u{200b}"),
            Just("https://x.example/a/very/long/address/without/spaces"),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn any_text_renders_without_panic_and_fits(
            content in html_like(),
            spoiler in html_like(),
            name in "\\PC{0,20}",
            width in prop::option::of(40usize..120),
        ) {
            let _ = html_to_text(&content);
            let event = post(
                &content,
                serde_json::json!({"spoiler_text": spoiler, "account": {
                    "id": "9", "username": "a", "acct": "a", "display_name": name,
                }}),
            );
            let text = render(&plain(width), &event, None, NOW);
            if let Some(width) = width {
                for line in text.lines() {
                    prop_assert!(columns(line) <= width, "{line:?} wider than {width}");
                }
            } else {
                prop_assert_eq!(text.lines().count(), 1);
            }
        }

        #[test]
        fn any_string_decodes_without_panic(text in "\\PC{0,40}|[&#;a-z0-9\u{e9}\u{65e5}]{0,40}") {
            let _ = html_to_text(&text);
        }
    }

    #[test]
    fn clock_from_timestamps() {
        assert_eq!(clock("2019-12-08T03:48:33.901Z"), "03:48:33");
        assert_eq!(clock("short"), "short");
    }

    fn post(content: &str, extra: serde_json::Value) -> Event {
        Event::parse("update", Some(&status_json(content, extra).to_string())).unwrap()
    }

    fn status_json(content: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut status = serde_json::json!({
            "id": "1", "uri": "https://x.example/1", "url": "https://x.example/@alice/1",
            "created_at": "2024-05-06T07:08:09.000Z", "content": content,
            "visibility": "public", "sensitive": false, "spoiler_text": "",
            "media_attachments": [], "mentions": [], "tags": [], "emojis": [],
            "reblogs_count": 0, "favourites_count": 0, "replies_count": 0,
            "account": {
                "id": "9", "username": "alice", "acct": "alice@x.example",
                "display_name": "Alice", "locked": false, "bot": false, "group": false,
                "created_at": "2020-01-01T00:00:00.000Z", "note": "", "url": null,
                "avatar": "", "avatar_static": "", "header": "", "header_static": "",
                "followers_count": 0, "following_count": 0, "statuses_count": 0,
                "emojis": [], "fields": []
            }
        });
        for (key, value) in extra.as_object().unwrap() {
            status[key] = value.clone();
        }
        status
    }

    fn plain(width: Option<usize>) -> Style {
        Style {
            colour: false,
            width,
            links: false,
        }
    }

    const NOW: SystemTime = UNIX_EPOCH;

    #[test]
    fn posts_wrap_with_a_hanging_indent() {
        let event = post(
            "<p>one two three four five six seven eight nine ten eleven twelve</p><p>end</p>",
            serde_json::json!({}),
        );
        let text = render(&plain(Some(40)), &event, None, NOW);
        assert_eq!(
            text,
            "07:08:09 post @alice@x.example: one two\n\
             \x20        three four five six seven eight\n\
             \x20        nine ten eleven twelve\n\
             \x20        end\n"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 40));
        // Off a terminal an event stays on one line.
        assert_eq!(
            render(&plain(None), &event, None, NOW),
            "07:08:09 post @alice@x.example: one two three four five six seven eight nine ten eleven twelve ⏎ end\n"
        );
    }

    #[test]
    fn wide_characters_and_long_words_fit_the_row() {
        let event = post(
            &format!(
                "{} {} {}",
                "🐘".repeat(30),
                "x".repeat(70),
                "⚠\u{fe0f}".repeat(40)
            ),
            serde_json::json!({}),
        );
        let text = render(&plain(Some(40)), &event, None, NOW);
        for line in text.lines() {
            assert!(columns(line) <= 40, "{line:?} in\n{text}");
        }
        assert!(text.lines().skip(1).all(|l| l.starts_with("         ")));
    }

    #[test]
    fn long_posts_are_cut_and_say_how_much() {
        let event = post(&"word ".repeat(300), serde_json::json!({}));
        let text = render(&plain(None), &event, None, NOW);
        assert!(text.ends_with(" … (+1000 chars)\n"), "{text}");
    }

    #[test]
    fn boosts_warnings_and_links() {
        let inner = status_json("<p>hi</p>", serde_json::json!({"spoiler_text": "food"}));
        let boost = post("", serde_json::json!({"reblog": inner, "url": null}));
        let style = Style {
            links: true,
            ..plain(Some(80))
        };
        assert_eq!(
            render(&style, &boost, Some("public"), NOW),
            "07:08:09 [public] post @alice@x.example boosted @alice@x.example: [CW: food] hi\n\
             \x20        https://x.example/@alice/1\n"
        );
    }

    #[test]
    fn colour_marks_each_part() {
        let style = Style {
            colour: true,
            ..plain(Some(80))
        };
        let text = render(&style, &post("hi", serde_json::json!({})), None, NOW);
        assert_eq!(
            text,
            "\x1b[2m07:08:09\x1b[0m \x1b[32mpost\x1b[0m \x1b[1;36m@alice@x.example\x1b[0m: hi\n"
        );
        let delete = Event::parse("delete", Some("5")).unwrap();
        let at = UNIX_EPOCH + std::time::Duration::from_secs(86_400 + 3_723);
        assert_eq!(
            render(&style, &delete, None, at),
            "\x1b[2m01:02:03\x1b[0m \x1b[31mdeleted\x1b[0m status 5\n"
        );
    }

    #[test]
    fn edits_show_their_own_time() {
        let edited = status_json(
            "v2",
            serde_json::json!({"edited_at": "2024-05-06T10:11:12.000Z"}),
        );
        let edit = Event::parse("status.update", Some(&edited.to_string())).unwrap();
        assert_eq!(
            render(&plain(None), &edit, None, NOW),
            "10:11:12 edit @alice@x.example: v2\n"
        );
    }
}
