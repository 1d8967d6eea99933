//! Which server software speaks for an instance, told from its instance
//! document, and which of Mastodon's streams it does not offer.
//!
//! A server that lacks a stream does not always say so: GoToSocial opens a
//! hashtag stream and never pushes to it, Akkoma logs a subscribe it cannot
//! place and answers nothing. Knowing the software lets a client say so
//! instead of waiting in silence.

use crate::Channel;

/// The server software behind an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Software {
    /// Mastodon.
    Mastodon,
    /// glitch-soc: Mastodon with local-only posts and streams of its own.
    GlitchSoc,
    /// Pleroma.
    Pleroma,
    /// Akkoma.
    Akkoma,
    /// GoToSocial.
    GoToSocial,
    /// Iceshrimp.NET.
    Iceshrimp,
    /// Something else, or a document that says nothing.
    Unknown,
}

/// Where a server's WebSocket upgrade takes the token from (see
/// [`Software::websocket_token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebSocketToken {
    /// `Authorization: Bearer`.
    Header,
    /// `Sec-WebSocket-Protocol` (echoed back by the server).
    Protocol,
    /// The `access_token` query parameter.
    Query,
}

impl Software {
    /// The software named by an instance document (`/api/v2/instance` or
    /// `/api/v1/instance`):
    /// - Pleroma and Akkoma write `version` as `2.7.2 (compatible; Pleroma
    ///   2.7.0)` / `… (compatible; Akkoma 3.13.2)`
    ///   (lib/pleroma/web/mastodon_api/views/instance_view.ex, `named_version`);
    /// - Iceshrimp.NET as `4.2.1 (compatible; Iceshrimp.NET/…)`
    ///   (Iceshrimp.Backend/Controllers/Mastodon/Schemas/InstanceInfoV2Response.cs);
    /// - GoToSocial's `version` is its own number alone, but its v2
    ///   `source_url` is its repository (…/superseriousbusiness/gotosocial);
    /// - Mastodon's `version` is a bare version (`4.5.0`, glitch-soc's
    ///   `4.5.0+glitch`).
    pub fn identify(instance: &serde_json::Value) -> Software {
        let text = |key: &str| {
            instance
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let version = text("version");
        let source = text("source_url");
        if let Some((_, compatible)) = version.split_once("(compatible;") {
            let name = compatible.trim_start();
            return if name.starts_with("akkoma") {
                Software::Akkoma
            } else if name.starts_with("pleroma") {
                Software::Pleroma
            } else if name.starts_with("iceshrimp") {
                Software::Iceshrimp
            } else {
                Software::Unknown
            };
        }
        if source.contains("gotosocial") {
            return Software::GoToSocial;
        }
        // lib/mastodon/version.rb in glitch-soc: `+glitch` build metadata.
        if version.contains("+glitch") || source.contains("glitch-soc") {
            return Software::GlitchSoc;
        }
        if source.contains("mastodon") || version.starts_with(|c: char| c.is_ascii_digit()) {
            return Software::Mastodon;
        }
        Software::Unknown
    }

    /// Its name, as its authors write it.
    pub fn name(self) -> &'static str {
        match self {
            Software::Mastodon => "Mastodon",
            Software::GlitchSoc => "glitch-soc",
            Software::Pleroma => "Pleroma",
            Software::Akkoma => "Akkoma",
            Software::GoToSocial => "GoToSocial",
            Software::Iceshrimp => "Iceshrimp.NET",
            Software::Unknown => "the server",
        }
    }

    /// Why this software does not offer `channel`, or `None` when it does
    /// (or when that is not known).
    pub fn lacks(self, channel: &Channel) -> Option<&'static str> {
        match self {
            // superseriousbusiness/gotosocial, internal/stream/stream.go
            // (`AllStatusTimelines`) and internal/api/client/streaming/stream.go:
            // it pushes to these alone; any other name opens a stream that
            // stays silent, or is ignored in-band with a log line.
            Software::GoToSocial => (!matches!(
                channel,
                Channel::User
                    | Channel::UserNotification
                    | Channel::Public
                    | Channel::PublicLocal
                    | Channel::Direct
                    | Channel::List(_)
            ))
            .then_some(
                "it streams only user, user:notification, public, public:local, direct and list",
            ),
            // lib/pleroma/web/streamer.ex, `get_topic`: no `hashtag:local`,
            // and its `public:remote` is one remote instance's posts, named
            // by an `instance` parameter; without one it is a bad topic
            // (Pleroma answers an error, Akkoma nothing at all).
            // A name it does not know is a bad topic too (`user:pleroma_chat`
            // is Pleroma's own; Akkoma dropped chats: BDX-town/Akkoma
            // 071bb07a, lib/pleroma/web/streamer.ex, `@user_streams`).
            Software::Pleroma | Software::Akkoma => match channel {
                Channel::HashtagLocal(_) => Some("it has no local-only hashtag stream"),
                Channel::PublicRemote | Channel::PublicRemoteMedia => Some(
                    "its public:remote streams take one remote instance (an `instance` \
                     parameter), not all of them",
                ),
                Channel::Other { name, .. }
                    if self == Software::Akkoma || name != "user:pleroma_chat" =>
                {
                    Some(if self == Software::Akkoma {
                        "it streams Mastodon's streams only"
                    } else {
                        "it streams Mastodon's streams and user:pleroma_chat only"
                    })
                }
                _ => None,
            },
            // Iceshrimp.Backend/Controllers/Mastodon/Streaming/WebSocketConnection.cs:
            // Mastodon's streams and the two `public:allow_local_only`; a
            // subscribe to any other is dropped without a word.
            Software::Iceshrimp => match channel {
                Channel::Other { name, .. }
                    if !matches!(
                        name.as_str(),
                        "public:allow_local_only" | "public:allow_local_only:media"
                    ) =>
                {
                    Some("it streams Mastodon's streams and public:allow_local_only[:media] only")
                }
                _ => None,
            },
            // Mastodon refuses a name it does not know in words of its own.
            Software::Mastodon | Software::GlitchSoc | Software::Unknown => None,
        }
    }

    /// Whether the server takes subscribes to `a` and to `b` on one
    /// WebSocket as one subscription. glitch-soc keys a connection's
    /// subscriptions by the Redis channels they read and ignores a second
    /// subscribe to the same ones (glitch-soc/mastodon, streaming/index.js,
    /// `subscribeWebsocketToChannel`: `if (subscriptions[channelIds.join(';')])
    /// return;`), and `public:allow_local_only` reads `timeline:public` as
    /// `public` does (and `:media` as `public:media`): the second of such a
    /// pair would get nothing of its own, so it needs a connection apart.
    pub fn same_subscription(self, a: &Channel, b: &Channel) -> bool {
        if self != Software::GlitchSoc || a == b {
            return false;
        }
        fn timeline(channel: &Channel) -> Option<&'static str> {
            match channel {
                Channel::Public => Some("public"),
                Channel::PublicMedia => Some("public:media"),
                Channel::Other { name, .. } => match name.as_str() {
                    "public" | "public:allow_local_only" => Some("public"),
                    "public:media" | "public:allow_local_only:media" => Some("public:media"),
                    _ => None,
                },
                _ => None,
            }
        }
        timeline(a).is_some() && timeline(a) == timeline(b)
    }

    /// Where the WebSocket upgrade reads the token. Pleroma 2.6 and later
    /// (a Phoenix socket transport: kphrx/pleroma 2.7.0,
    /// lib/pleroma/web/mastodon_api/websocket_handler.ex, `connect/1`) read
    /// only `?access_token=` (or, once connected, an in-band
    /// `pleroma:authenticate` frame); Akkoma kept the cowboy handler
    /// (BDX-town/Akkoma 071bb07a, the same file, `init/2`), which reads
    /// `?access_token=` or `Sec-WebSocket-Protocol` and echoes the latter.
    /// Neither reads an `Authorization` header: with one alone the
    /// connection is anonymous, and its user streams are refused. The rest
    /// read the header (Mastodon, GoToSocial, Iceshrimp.NET).
    pub fn websocket_token(self) -> WebSocketToken {
        match self {
            Software::Pleroma => WebSocketToken::Query,
            Software::Akkoma => WebSocketToken::Protocol,
            _ => WebSocketToken::Header,
        }
    }

    /// Whether `channel` can share a WebSocket with other streams through an
    /// in-band subscribe. GoToSocial labels every event with the
    /// connection's first stream (internal/api/client/streaming/stream.go),
    /// so on a shared connection its events cannot be told apart; Akkoma's
    /// in-band subscribe carries no tag or list
    /// (lib/pleroma/web/mastodon_api/websocket_handler.ex). Such a stream
    /// needs a WebSocket of its own, the stream named in its URL.
    pub fn shares_websocket(self, channel: &Channel) -> bool {
        match self {
            Software::GoToSocial => false,
            Software::Akkoma => !matches!(
                channel,
                Channel::Hashtag(_) | Channel::HashtagLocal(_) | Channel::List(_)
            ),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_server_is_told_from_its_instance_document() {
        let cases = [
            (json!({"version": "4.5.0"}), Software::Mastodon),
            (json!({"version": "4.5.0+glitch"}), Software::GlitchSoc),
            (
                json!({"version": "2.7.2 (compatible; Pleroma 2.7.0)"}),
                Software::Pleroma,
            ),
            (
                json!({"version": "2.7.2 (compatible; Akkoma 3.13.2)"}),
                Software::Akkoma,
            ),
            (
                json!({"version": "4.2.1 (compatible; Iceshrimp.NET/2025.1)"}),
                Software::Iceshrimp,
            ),
            (
                json!({"version": "0.17.3", "source_url": "https://codeberg.org/superseriousbusiness/gotosocial"}),
                Software::GoToSocial,
            ),
            (json!({}), Software::Unknown),
            (json!({"version": "x"}), Software::Unknown),
        ];
        for (document, software) in cases {
            assert_eq!(Software::identify(&document), software, "{document}");
        }
    }

    #[test]
    fn what_each_server_lacks() {
        let tag = Channel::Hashtag("rust".into());
        assert!(Software::GoToSocial.lacks(&tag).is_some());
        assert!(Software::GoToSocial.lacks(&Channel::PublicLocal).is_none());
        assert!(
            Software::GoToSocial
                .lacks(&Channel::List("1".into()))
                .is_none()
        );
        assert!(Software::Akkoma.lacks(&tag).is_none());
        assert!(
            Software::Akkoma
                .lacks(&Channel::HashtagLocal("rust".into()))
                .is_some()
        );
        assert!(Software::Pleroma.lacks(&Channel::PublicRemote).is_some());
        for channel in [tag, Channel::PublicRemoteMedia, Channel::User] {
            assert!(Software::Mastodon.lacks(&channel).is_none());
            assert!(Software::Iceshrimp.lacks(&channel).is_none());
        }
        let own = |name: &str| Channel::Other {
            name: name.into(),
            params: Vec::new(),
        };
        assert!(
            Software::Iceshrimp
                .lacks(&own("public:allow_local_only"))
                .is_none()
        );
        assert!(Software::Iceshrimp.lacks(&own("public:bubble")).is_some());
        assert!(
            Software::Akkoma
                .lacks(&own("public:allow_local_only"))
                .is_some()
        );
        assert!(Software::Pleroma.lacks(&own("user:pleroma_chat")).is_none());
        assert!(Software::Akkoma.lacks(&own("user:pleroma_chat")).is_some());
        assert!(
            Software::Mastodon
                .lacks(&own("public:allow_local_only"))
                .is_none()
        );
        assert!(!Software::GoToSocial.shares_websocket(&Channel::Public));
        assert_eq!(Software::Akkoma.websocket_token(), WebSocketToken::Protocol);
        assert_eq!(Software::Pleroma.websocket_token(), WebSocketToken::Query);
        assert_eq!(
            Software::GoToSocial.websocket_token(),
            WebSocketToken::Header
        );
        assert!(!Software::Akkoma.shares_websocket(&Channel::List("1".into())));
        assert!(Software::Akkoma.shares_websocket(&Channel::Public));
        assert!(Software::Pleroma.shares_websocket(&Channel::List("1".into())));
        let local_only = own("public:allow_local_only");
        assert!(Software::GlitchSoc.same_subscription(&Channel::Public, &local_only));
        assert!(!Software::GlitchSoc.same_subscription(&Channel::PublicMedia, &local_only));
        assert!(!Software::GlitchSoc.same_subscription(&Channel::Public, &Channel::Public));
        assert!(!Software::Mastodon.same_subscription(&Channel::Public, &local_only));
    }
}
