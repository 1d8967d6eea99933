//! Which subscription a WebSocket error frame is about.
//!
//! Mastodon's error frame is `{"error": text, "status": n}` and names no
//! stream (older servers send `{"error": "Error: text"}` and no status), a
//! successful subscribe is not acknowledged at all, and a refused list is
//! answered only after a database lookup, so replies can overtake each
//! other (mastodon/mastodon, streaming/index.js: `subscribeWebsocketToChannel`,
//! `checkScopes`, `channelNameToIds`). Guessing "the newest pending
//! subscribe" was wrong as often as not. So the error's own text says which
//! kind of stream it can be about, and only a pending subscribe of that kind
//! is ever ended for it.

use std::collections::VecDeque;

use tokio::time::Instant;

use mastostream_proto::Channel;

/// A subscribe frame sent and not yet confirmed by an event.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// The server channel's key.
    pub key: String,
    /// The stream as subscribed.
    pub channel: Channel,
    /// When the frame went out.
    pub sent: Instant,
}

impl Pending {
    pub fn new(key: String, channel: Channel, sent: Instant) -> Self {
        Pending { key, channel, sent }
    }
}

/// Which streams an error text can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// `Missing tag name parameter`, `No tag for stream provided`.
    Hashtag,
    /// `Missing list name parameter`, `Not authorized to stream this list`.
    List,
    /// `Access token does not have the required scopes` (`... cover required
    /// scopes` before 4.2): every stream that is not public.
    Scope,
    /// `Unknown stream type`: a name this version does not know.
    UnknownStream,
    /// `Error unsubscribing from channel`: about an unsubscribe, not a subscribe.
    Unsubscribe,
    /// Anything else (`An unexpected error occurred`, another server's text).
    Unknown,
}

fn cause(text: &str) -> Cause {
    let text = text.to_ascii_lowercase();
    if text.contains("unsubscrib") {
        Cause::Unsubscribe
    } else if text.contains("list") {
        Cause::List
    } else if text.contains("tag") {
        Cause::Hashtag
    } else if text.contains("scope") {
        Cause::Scope
    } else if text.contains("unknown stream") || text.contains("unknown channel") {
        Cause::UnknownStream
    } else {
        Cause::Unknown
    }
}

fn can_cause(cause: Cause, channel: &Channel) -> bool {
    match cause {
        Cause::Hashtag => matches!(channel, Channel::Hashtag(_) | Channel::HashtagLocal(_)),
        Cause::List => matches!(channel, Channel::List(_)),
        // Mastodon's PUBLIC_CHANNELS need no scope.
        Cause::Scope => !channel.is_public(),
        Cause::UnknownStream => matches!(channel, Channel::Other { .. }),
        Cause::Unsubscribe => false,
        // Any of them could be; see `attribute`.
        Cause::Unknown => true,
    }
}

/// The index in `pending` of the subscribe that the error `text` answers,
/// or `None` when no pending subscribe can be its cause (or, for a text
/// that names no kind, when more than one could be).
///
/// Among the pending subscribes the text can be about, the newest is taken:
/// a successful subscribe is never acknowledged, so an older quiet one stays
/// "pending" although it was taken, while Mastodon answers a refusal as soon
/// as its checks end (for a list, after a database lookup, and then only
/// lists can be the cause).
pub(crate) fn attribute(pending: &VecDeque<Pending>, text: &str) -> Option<usize> {
    let cause = cause(text);
    let mut candidates = pending
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, p)| can_cause(cause, &p.channel))
        .map(|(i, _)| i);
    let newest = candidates.next()?;
    if cause == Cause::Unknown && candidates.next().is_some() {
        return None;
    }
    Some(newest)
}

/// The index in `pending` of the subscribe a close with `code` refuses, for
/// servers that refuse a subscribe by closing the connection instead of
/// with an error frame. Iceshrimp.NET closes with 1007 (invalid payload)
/// for a list the user does not own or a list or hashtag subscribe without
/// its id, and with 1008 (policy violation) for a token without the
/// stream's scope (iceshrimp/Iceshrimp.NET, a mirror:
/// Iceshrimp.Backend/Controllers/Mastodon/Streaming/WebSocketConnection.cs).
/// Only when exactly one pending subscribe can be the cause is it named;
/// otherwise `None`, and the close is a break like any other.
pub(crate) fn attribute_close(pending: &VecDeque<Pending>, code: u16) -> Option<usize> {
    let can_be_cause = |channel: &Channel| match code {
        1007 => matches!(
            channel,
            Channel::List(_) | Channel::Hashtag(_) | Channel::HashtagLocal(_)
        ),
        1008 => can_cause(Cause::Scope, channel),
        _ => false,
    };
    let mut candidates = pending
        .iter()
        .enumerate()
        .filter(|(_, p)| can_be_cause(&p.channel))
        .map(|(i, _)| i);
    let only = candidates.next()?;
    candidates.next().is_none().then_some(only)
}

/// The status an error frame without one stands for (servers before 4.2
/// sent none): 401 for the refusals Mastodon makes with an
/// `AuthenticationError`, 400 for the rest.
pub(crate) fn status_for(text: &str) -> u16 {
    match cause(text) {
        Cause::Scope => 401,
        Cause::List if text.to_ascii_lowercase().contains("authorized") => 401,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_names_the_one_subscribe_it_can_be_about() {
        let list = Channel::List("42".into());
        let mixed = pending(&[
            Channel::Public,
            list.clone(),
            Channel::Hashtag("rust".into()),
        ]);
        // 1007: a list or hashtag; two are pending, so neither is named.
        assert_eq!(attribute_close(&mixed, 1007), None);
        let one_list = pending(&[Channel::Public, list.clone(), Channel::PublicLocal]);
        assert_eq!(attribute_close(&one_list, 1007), Some(1));
        // 1008: a stream that needs a scope; only the list here.
        assert_eq!(attribute_close(&mixed, 1008), Some(1));
        let user_and_list = pending(&[Channel::User, list]);
        assert_eq!(attribute_close(&user_and_list, 1008), None);
        // Other codes are breaks, not refusals.
        assert_eq!(attribute_close(&one_list, 1006), None);
        assert_eq!(attribute_close(&one_list, 1000), None);
    }

    fn pending(channels: &[Channel]) -> VecDeque<Pending> {
        let now = Instant::now();
        channels
            .iter()
            .map(|c| Pending::new(c.to_string(), c.clone(), now))
            .collect()
    }

    fn blamed(channels: &[Channel], text: &str) -> Option<Channel> {
        let pending = pending(channels);
        attribute(&pending, text).map(|i| pending[i].channel.clone())
    }

    #[test]
    fn mastodons_refusals_are_pinned_on_the_stream_they_name() {
        // The reported case: subscribes in the order asked, the list refused.
        let asked = [
            Channel::Hashtag("rust".into()),
            Channel::Public,
            Channel::List("42".into()),
        ];
        assert_eq!(
            blamed(&asked, "Not authorized to stream this list"),
            Some(Channel::List("42".into()))
        );
        assert_eq!(
            blamed(&asked, "Missing tag name parameter"),
            Some(Channel::Hashtag("rust".into()))
        );
        assert_eq!(
            blamed(&asked, "Access token does not have the required scopes"),
            Some(Channel::List("42".into()))
        );
        // Old servers' texts.
        assert_eq!(
            blamed(&asked, "Error: No tag for stream provided"),
            Some(Channel::Hashtag("rust".into()))
        );
        assert_eq!(
            blamed(
                &[Channel::Public, Channel::User],
                "Error: Access token does not cover required scopes"
            ),
            Some(Channel::User)
        );
    }

    #[test]
    fn a_text_that_no_pending_stream_can_cause_ends_nothing() {
        let public = [
            Channel::Public,
            Channel::PublicLocal,
            Channel::Hashtag("a".into()),
        ];
        assert_eq!(blamed(&public, "Not authorized to stream this list"), None);
        assert_eq!(
            blamed(&public, "Access token does not have the required scopes"),
            None
        );
        assert_eq!(blamed(&public, "Unknown stream type"), None);
        assert_eq!(blamed(&public, "Error unsubscribing from channel"), None);
        assert_eq!(blamed(&[], "An unexpected error occurred"), None);
    }

    #[test]
    fn a_text_that_names_no_kind_is_pinned_only_when_one_stream_is_pending() {
        assert_eq!(
            blamed(&[Channel::Public], "An unexpected error occurred"),
            Some(Channel::Public)
        );
        assert_eq!(
            blamed(
                &[Channel::Public, Channel::Direct],
                "An unexpected error occurred"
            ),
            None
        );
    }

    #[test]
    fn an_unknown_stream_type_is_about_a_stream_this_version_does_not_name() {
        let other = Channel::other("public:allow_local_only", Vec::<(String, String)>::new());
        assert_eq!(
            blamed(&[Channel::Public, other.clone()], "Unknown stream type"),
            Some(other)
        );
    }

    #[test]
    fn statuses_for_frames_without_one() {
        assert_eq!(
            status_for("Error: Access token does not cover required scopes"),
            401
        );
        assert_eq!(status_for("Not authorized to stream this list"), 401);
        assert_eq!(status_for("Missing list name parameter"), 400);
        assert_eq!(status_for("Error: No tag for stream provided"), 400);
    }
}
