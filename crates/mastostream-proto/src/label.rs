//! Which stream a multiplexed WebSocket event belongs to, however the server
//! labels it.
//!
//! Mastodon puts on each event the array a client subscribes with
//! (`["hashtag","rust"]`, `["list","42"]`; mastodon/mastodon,
//! streaming/index.js, `streamToWs`). Servers that speak the same protocol
//! label their own way, and a client that only reads Mastodon's form loses
//! their events:
//! - Akkoma and GoToSocial send their internal topic as a one-element array:
//!   `["hashtag:rust"]`, `["list:42"]`, and Akkoma `["user:<account id>"]`
//!   for the home timeline (AkkomaGang/akkoma,
//!   lib/pleroma/web/views/streamer_view.ex; superseriousbusiness/gotosocial,
//!   internal/stream/stream.go).
//! - Pleroma and Akkoma send `delete` with no `stream` at all
//!   (lib/pleroma/web/views/streamer_view.ex, `render("delete.json")`).
//!
//! [`read_label`] reads every one of these forms.

use crate::channel::Channel;

/// What an event's `stream` field says about where it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Label {
    /// One of the streams this version names, in Mastodon's form or
    /// another server's.
    Stream(Channel),
    /// A name this version does not know, as the server sent it: the event
    /// belongs to a [`Channel::Other`] subscription whose
    /// [`ws_stream_array`](Channel::ws_stream_array) is the same.
    Unknown(Vec<String>),
    /// No label (an absent or empty `stream`): the event is about every
    /// stream of the connection, as Pleroma's deletes are.
    Unlabelled,
}

/// Reads an event's `stream` array (empty when the frame had none).
///
/// ```
/// use mastostream_proto::{Channel, Label, read_label};
///
/// let rust = Label::Stream(Channel::Hashtag("rust".into()));
/// assert_eq!(read_label(&["hashtag", "rust"]), rust); // Mastodon
/// assert_eq!(read_label(&["hashtag:rust"]), rust); // Akkoma, GoToSocial
/// assert_eq!(read_label(&["user:9zXq2"]), Label::Stream(Channel::User)); // Akkoma's home
/// assert_eq!(read_label::<&str>(&[]), Label::Unlabelled); // Pleroma's delete
/// ```
pub fn read_label<S: AsRef<str>>(stream: &[S]) -> Label {
    let Some(first) = stream.first().map(AsRef::as_ref) else {
        return Label::Unlabelled;
    };
    if let Ok(channel) = Channel::from_ws_stream_array(stream) {
        return Label::Stream(channel);
    }
    if stream.len() == 1
        && let Some(channel) = from_topic(first)
    {
        return Label::Stream(channel);
    }
    Label::Unknown(stream.iter().map(|s| s.as_ref().to_owned()).collect())
}

/// A one-element topic label (`hashtag:rust`, `list:42`, `user:<id>`,
/// `direct:<id>`) as the stream it stands for.
fn from_topic(topic: &str) -> Option<Channel> {
    let (kind, rest) = topic.split_once(':')?;
    if rest.is_empty() {
        return None;
    }
    Some(match kind {
        "hashtag" => Channel::Hashtag(rest.to_owned()),
        "list" => Channel::List(rest.to_owned()),
        // Pleroma's own chat stream is not the home timeline.
        "user" if rest == "pleroma_chat" || rest.starts_with("pleroma_chat:") => return None,
        // The notification stream under the account's id: Pleroma
        // registers it as `user:notification:<user id>` (kphrx/pleroma,
        // lib/pleroma/web/streamer.ex, `do_stream` for a notification);
        // read as the home timeline it went to the wrong subscription.
        "user" if rest.starts_with("notification:") => Channel::UserNotification,
        // The home timeline under the account's internal id (the
        // notification stream is `user:notification`, read above).
        "user" => Channel::User,
        "direct" => Channel::Direct,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mastodon_array_reads_as_its_stream() {
        for name in crate::CHANNEL_NAMES {
            let channel = Channel::from_name(name, Some("42")).unwrap();
            assert_eq!(
                read_label(&channel.ws_stream_array()),
                Label::Stream(channel.clone()),
                "{name}"
            );
        }
    }

    #[test]
    fn topic_labels_of_other_servers() {
        let cases: [(&str, Channel); 8] = [
            ("hashtag:Rust", Channel::Hashtag("Rust".into())),
            ("user:notification:9zXq2", Channel::UserNotification),
            ("hashtag:local", Channel::Hashtag("local".into())),
            ("list:01HZZ", Channel::List("01HZZ".into())),
            ("user:9zXq2", Channel::User),
            ("user:notification", Channel::UserNotification),
            ("direct:9zXq2", Channel::Direct),
            ("public:local:media", Channel::PublicLocalMedia),
        ];
        for (topic, channel) in cases {
            assert_eq!(read_label(&[topic]), Label::Stream(channel), "{topic}");
        }
    }

    #[test]
    fn names_this_version_does_not_know_stay_as_sent() {
        for label in [
            &["public:allow_local_only"][..],
            &["user:pleroma_chat"],
            &["user:pleroma_chat:9zXq2"],
            &["hashtag:"],
            &["hashtag"],
            &["list"],
            &["something", "else"],
            &[""],
        ] {
            assert_eq!(
                read_label(label),
                Label::Unknown(label.iter().map(|s| s.to_string()).collect()),
                "{label:?}"
            );
        }
    }

    #[test]
    fn no_label_is_unlabelled() {
        assert_eq!(read_label::<String>(&[]), Label::Unlabelled);
    }
}
