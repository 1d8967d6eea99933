//! The `pretty` output: one readable line per event.

use mastostream::{Event, EventKind};
use mastostream_proto::entities::{Notification, Status};

/// Terminal colours, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
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
            let end = rest[..rest.len().min(12)].find(';');
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

/// `HH:MM:SS` from an ISO 8601 timestamp.
fn clock(timestamp: &str) -> &str {
    timestamp.get(11..19).unwrap_or(timestamp)
}

fn status_line(style: Style, status: &Status, label: &str) -> String {
    let (shown, boost) = match &status.reblog {
        Some(inner) => (
            inner.as_ref(),
            format!(
                " {} boosted",
                style.paint("35", &format!("@{}", status.account.acct))
            ),
        ),
        None => (status, String::new()),
    };
    let mut text = html_to_text(&shown.content).replace('\n', " ⏎ ");
    if !shown.spoiler_text.is_empty() {
        text = format!("[CW: {}] {text}", shown.spoiler_text);
    }
    let media = match shown.media_attachments.len() {
        0 => String::new(),
        n => format!(" [{n} media]"),
    };
    format!(
        "{} {}{} {}: {}{}",
        style.paint("2", clock(&status.created_at)),
        style.paint("1;32", label),
        boost,
        style.paint("1;36", &format!("@{}", shown.account.acct)),
        text,
        media
    )
}

fn notification_line(style: Style, n: &Notification) -> String {
    let about = n
        .status
        .as_ref()
        .map(|s| format!(": {}", html_to_text(&s.content).replace('\n', " ⏎ ")))
        .unwrap_or_default();
    format!(
        "{} {} {} from {}{}",
        style.paint("2", clock(&n.created_at)),
        style.paint("1;33", "notification"),
        n.kind,
        style.paint("1;36", &format!("@{}", n.account.acct)),
        about
    )
}

/// One line for an event, prefixed with its stream when several are open.
pub fn line(style: Style, event: &Event, stream: Option<&str>) -> String {
    let mut prefix = stream.map(|s| format!("[{s}] ")).unwrap_or_default();
    if event.is_caught_up() {
        prefix.push_str("(caught up) ");
    }
    let body = match event.kind() {
        EventKind::Update(status) => status_line(style, status, "post"),
        EventKind::StatusUpdate(status) => status_line(style, status, "edit"),
        EventKind::Notification(n) => notification_line(style, n),
        EventKind::Delete(id) => format!("{} status {id}", style.paint("1;31", "deleted")),
        EventKind::Conversation(c) => {
            let last = c
                .last_status
                .as_ref()
                .map(|s| html_to_text(&s.content).replace('\n', " ⏎ "))
                .unwrap_or_default();
            format!("{} {}: {last}", style.paint("1;34", "conversation"), c.id)
        }
        EventKind::Announcement(a) => format!(
            "{} {}",
            style.paint("1;34", "announcement"),
            html_to_text(&a.content).replace('\n', " ⏎ ")
        ),
        EventKind::AnnouncementReaction(r) => {
            format!(
                "{} {} ×{} on {}",
                style.paint("1;34", "reaction"),
                r.name,
                r.count,
                r.announcement_id
            )
        }
        EventKind::AnnouncementDelete(id) => {
            format!("{} announcement {id}", style.paint("1;31", "deleted"))
        }
        EventKind::Gap(gap) => format!(
            "{} after an outage of {:.1} s{}",
            style.paint("1;31", "gap"),
            gap.until
                .duration_since(gap.since)
                .unwrap_or_default()
                .as_secs_f64(),
            if gap.complete {
                ": posts fetched back; deletes and edits may be missing"
            } else {
                ": some posts could not be fetched back"
            }
        ),
        _ => format!(
            "{} {}",
            style.paint("1;34", event.name()),
            event
                .payload()
                .as_str()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        ),
    };
    format!("{prefix}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn clock_from_timestamps() {
        assert_eq!(clock("2019-12-08T03:48:33.901Z"), "03:48:33");
        assert_eq!(clock("short"), "short");
    }
}
