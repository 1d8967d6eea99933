//! Servers other than Mastodon that speak its streaming WebSocket, as far as
//! a client can tell them apart: how they label events and answer commands.
//!
//! Each behaviour names the source it follows. Mastodon's own is the
//! default everywhere else in this crate (mastodon/mastodon,
//! streaming/index.js).

use mastostream_proto::{Channel, ChannelError};

use crate::auth::TokenSource;
use crate::publish::Encoded;

/// Pleroma's stream of chat updates.
pub const PLEROMA_CHAT: &str = "user:pleroma_chat";

/// Which server the WebSocket behaves as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Flavour {
    /// Mastodon: events labelled with the subscribe array
    /// (`["hashtag","rust"]`), error frames, no acknowledgements.
    #[default]
    Mastodon,
    /// Mastodon 4.1 (mastodon/mastodon streaming/index.js at v4.1.0,
    /// 70c0d754, as kept in glitch-soc/mastodon's history): public streams
    /// (`public*`, `hashtag*`) without a token over SSE and the WebSocket
    /// (`alwaysRequireAuth` off); errors as `err.toString()` (`"Error:
    /// Missing access token"`); an unknown SSE channel 404 `{"error":"Not
    /// found"}` after the token check; WebSocket error frames without a
    /// `status`; a refused upgrade a bare 401 `Unauthorized` (text/html, no
    /// `X-Error-Message`); heartbeats `:thump\n` with no blank line;
    /// `Cache-Control: no-store`; `"filtered":[]` added to updates on
    /// public and hashtag streams of a logged-in connection; and
    /// `filters_changed` with no payload (`data: undefined`).
    Mastodon41,
    /// glitch-soc (glitch-soc/mastodon at 839591f2, streaming/index.js):
    /// Mastodon, plus local-only posts (`"local_only": true`). The
    /// WebSocket takes two more streams, `public:allow_local_only` and
    /// `public:allow_local_only:media`, labelled with their own name, and
    /// `public` / `public:media` with an `allow_local_only` parameter (SSE:
    /// `/api/v1/streaming/public?allow_local_only=true`), still labelled
    /// `["public"]`. Updates of local-only posts are dropped by the
    /// streaming server for `public`, `public:media` (without the
    /// parameter) and `public:remote`; deletes are not filtered.
    GlitchSoc,
    /// Pleroma 2.7 (kphrx/pleroma, a mirror at 2.7.0;
    /// lib/pleroma/web/views/streamer_view.ex and
    /// lib/pleroma/web/mastodon_api/websocket_handler.ex): Mastodon's labels,
    /// but `delete` has no `stream` field, and every subscribe and
    /// unsubscribe is answered with a `pleroma:respond` event whose payload
    /// is `{"type":…,"result":"success"|"error","error":"bad_topic"}`;
    /// flake ids (see `IdFormat::Flake`).
    Pleroma,
    /// Akkoma (BDX-town/Akkoma, a mirror; same files): each event labelled
    /// with the internal topic as one element (`["hashtag:rust"]`,
    /// `["list:42"]`, home updates `["user:<account id>"]`, notifications
    /// `["user"]`, direct `["direct:<account id>"]`), `delete` with no
    /// `stream`, no acknowledgements, an unknown topic only logged,
    /// unsubscribe not handled at all, and a text `ping` answered `pong`;
    /// flake ids, as Pleroma's.
    Akkoma,
    /// Iceshrimp.NET (kaido2ki/Iceshrimp.NET, a mirror;
    /// Iceshrimp.Backend/Controllers/Mastodon/Streaming/WebSocketConnection.cs
    /// and Channels/*.cs): Mastodon's labels, no acknowledgements, an
    /// unknown stream silently ignored, and a refusal by closing the
    /// connection: 1007 for a list the user does not own, 1008 for a token
    /// without the stream's scope; a text `ping` answered `pong`; and a
    /// delete on a list stream sent as `status.update` with the id as its
    /// payload (Channels/ListChannel.cs, `OnNoteDeleted`).
    Iceshrimp,
    /// GoToSocial (superseriousbusiness/gotosocial,
    /// internal/api/client/streaming/stream.go and internal/stream/stream.go):
    /// every event labelled, as one element, with the connection's *first*
    /// stream (`["list:01H…"]`, `["public:local"]`), whatever stream it
    /// came through; in-band subscribes only to public, public:local, user,
    /// direct and list (others, such as hashtag and user:notification,
    /// ignored with a log line); no acknowledgements, no error frames; no
    /// SSE at all; ULID ids (internal/id/ulid.go), a remote status's dated
    /// by its `created_at`.
    GoToSocial,
}

/// How a server refuses a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Mastodon's error frame (or Pleroma's answer).
    Frame,
    /// Closing the connection with this code (Iceshrimp.NET).
    Close(u16),
    /// Nothing at all (Akkoma logs it).
    Silence,
}

/// The account id Akkoma puts in home and direct labels (a flake id).
pub const AKKOMA_ACCOUNT_ID: &str = "AbCdEf9zXq2";

impl Flavour {
    /// The `stream` field of an event named `event` going to a subscriber
    /// of `stream`, or `None` for a frame with no `stream` field.
    pub fn label(self, event: &str, stream: &Channel) -> Option<Vec<String>> {
        self.label_on(event, stream, None)
    }

    /// [`label`](Self::label) on a connection whose first stream is
    /// `first` (GoToSocial labels with it).
    pub fn label_on(
        self,
        event: &str,
        stream: &Channel,
        first: Option<&Channel>,
    ) -> Option<Vec<String>> {
        let mastodon = || {
            stream
                .ws_stream_array()
                .into_iter()
                .map(str::to_owned)
                .collect()
        };
        match self {
            Flavour::Mastodon | Flavour::Mastodon41 => Some(mastodon()),
            // `streamNameFromChannelName`: the stream's own name, alone.
            Flavour::GlitchSoc => Some(match stream {
                Channel::Other { name, .. } => vec![name.clone()],
                _ => mastodon(),
            }),
            Flavour::Pleroma if event == "delete" => None,
            Flavour::Pleroma => Some(mastodon()),
            Flavour::Iceshrimp => Some(mastodon()),
            Flavour::GoToSocial => Some(vec![topic(first.unwrap_or(stream))]),
            Flavour::Akkoma if event == "delete" => None,
            Flavour::Akkoma => Some(vec![match stream {
                Channel::Hashtag(tag) => format!("hashtag:{tag}"),
                Channel::List(id) => format!("list:{id}"),
                Channel::User if event == "notification" => "user".to_owned(),
                Channel::User => format!("user:{AKKOMA_ACCOUNT_ID}"),
                Channel::Direct => format!("direct:{AKKOMA_ACCOUNT_ID}"),
                other => other.name().to_owned(),
            }]),
        }
    }

    /// The whole text frame of `encoded` for a subscriber of `stream`, on a
    /// connection whose first stream is `first`.
    pub fn frame(self, encoded: &Encoded, stream: &Channel, first: Option<&Channel>) -> String {
        if matches!(self, Flavour::Mastodon | Flavour::Mastodon41) {
            return encoded.ws_frame(stream);
        }
        let tail = std::str::from_utf8(&encoded.ws_tail).unwrap_or_default();
        let renamed;
        let tail = match (self, stream) {
            (Flavour::Iceshrimp, Channel::List(_)) if encoded.event == "delete" => {
                renamed = tail.replacen(r#","event":"delete""#, r#","event":"status.update""#, 1);
                renamed.as_str()
            }
            _ => tail,
        };
        match self.label_on(&encoded.event, stream, first) {
            Some(label) => format!(
                "{{\"stream\":{}{tail}",
                serde_json::to_string(&label).unwrap_or_default()
            ),
            // The tail starts with the comma before "event".
            None => format!("{{{}", tail.strip_prefix(',').unwrap_or(tail)),
        }
    }

    /// What answers a subscribe (`kind` "subscribe") or unsubscribe that
    /// was taken (`refusal` None) or refused for the reason given, in this
    /// server's words; `None` when it answers nothing. For Mastodon the
    /// caller sends its error frame.
    pub fn answer(self, kind: &str, refusal: Option<&str>) -> Option<String> {
        match self {
            Flavour::Pleroma => {
                let mut payload = serde_json::json!({"type": kind, "result": "success"});
                if let Some(reason) = refusal {
                    payload["result"] = "error".into();
                    payload["error"] = reason.into();
                }
                Some(
                    serde_json::json!({"event": "pleroma:respond", "payload": payload.to_string()})
                        .to_string(),
                )
            }
            Flavour::Mastodon
            | Flavour::Mastodon41
            | Flavour::GlitchSoc
            | Flavour::Akkoma
            | Flavour::Iceshrimp
            | Flavour::GoToSocial => None,
        }
    }

    /// How a subscribe refused for `reason` is answered: a foreign list
    /// (`"list"`), a missing scope (`"scope"`) or an unknown stream
    /// (`"unknown"`).
    pub fn refusal(self, reason: &str) -> Refusal {
        match (self, reason) {
            (Flavour::Iceshrimp, "list") => Refusal::Close(1007),
            (Flavour::Iceshrimp, "scope") => Refusal::Close(1008),
            (Flavour::Iceshrimp | Flavour::Akkoma | Flavour::GoToSocial, _) => Refusal::Silence,
            _ => Refusal::Frame,
        }
    }

    /// Whether an in-band subscribe to the stream named `name` is ignored:
    /// Akkoma's handler passes no parameters with it, so a hashtag or list
    /// subscribe names no tag or list and is dropped (with a log line);
    /// those streams need a connection of their own (`?stream=hashtag&tag=`).
    pub fn ignores_subscribe(self, name: &str) -> bool {
        match self {
            Flavour::Akkoma => matches!(name, "hashtag" | "hashtag:local" | "list"),
            // Only these are in GoToSocial's AllStatusTimelines.
            Flavour::GoToSocial => {
                !matches!(name, "public" | "public:local" | "user" | "direct" | "list")
            }
            _ => false,
        }
    }

    /// Whether the server serves SSE (`/api/v1/streaming/public` and the
    /// rest): only Mastodon (and glitch-soc) do; the others answer 404.
    pub fn serves_sse(self) -> bool {
        matches!(
            self,
            Flavour::Mastodon | Flavour::Mastodon41 | Flavour::GlitchSoc
        )
    }

    /// How the server spells ids: GoToSocial's are ULIDs, Pleroma's and
    /// Akkoma's flake ids, Iceshrimp.NET's its own 16 characters.
    pub fn id_format(self) -> crate::ids::IdFormat {
        match self {
            Flavour::GoToSocial => crate::ids::IdFormat::Ulid,
            Flavour::Pleroma | Flavour::Akkoma => crate::ids::IdFormat::Flake,
            Flavour::Iceshrimp => crate::ids::IdFormat::Iceshrimp,
            _ => crate::ids::IdFormat::Snowflake,
        }
    }

    /// Whether a page asked with `min_id` comes oldest first: Iceshrimp.NET
    /// orders it ascending and does not turn it round
    /// (Iceshrimp.Backend/Core/Extensions/QueryableExtensions.cs, `Paginate`:
    /// `{ MinId: not null } => … OrderBy(p => p.Id)`); Mastodon reverses it.
    pub fn min_id_pages_ascending(self) -> bool {
        self == Flavour::Iceshrimp
    }

    /// Whether the public streams (`PUBLIC_CHANNELS`: public, its local,
    /// remote and media variants, hashtag, hashtag:local) are served
    /// without a token (Mastodon before 4.2).
    pub fn anonymous_public(self) -> bool {
        self == Flavour::Mastodon41
    }

    /// An error text as the server words it (Mastodon 4.1 sent
    /// `err.toString()`: `Error: …`).
    pub fn error_text(self, message: &str) -> String {
        match self {
            Flavour::Mastodon41 => format!("Error: {message}"),
            _ => message.to_owned(),
        }
    }

    /// The SSE heartbeat: `:thump` and a blank line since Mastodon 4.6
    /// (#37389); a bare `:thump` line before.
    pub fn heartbeat(self) -> &'static [u8] {
        match self {
            Flavour::Mastodon41 => b":thump\n",
            _ => b":thump\n\n",
        }
    }

    /// The SSE response's `Cache-Control` (`private, no-store` since 4.4).
    pub fn sse_cache_control(self) -> &'static str {
        match self {
            Flavour::Mastodon41 => "no-store",
            _ => "private, no-store",
        }
    }

    /// Whether an update for a subscriber of `stream` gets `"filtered":[]`
    /// added (Mastodon 4.1, `needsFiltering` streams, logged in).
    pub fn adds_filtered(self, event: &str, stream: &Channel, logged_in: bool) -> bool {
        self == Flavour::Mastodon41 && logged_in && event == "update" && stream.is_public()
    }

    /// The stream a subscribe names, with the server's own streams:
    /// glitch-soc's `public:allow_local_only` (and `:media`), and `public` /
    /// `public:media` asked with `allow_local_only` (`isTruthy`).
    pub fn channel(
        self,
        name: &str,
        arg: Option<&str>,
        allow_local_only: Option<&str>,
    ) -> Result<Channel, ChannelError> {
        if self == Flavour::GlitchSoc {
            let allowed = mastostream_proto::query_flag(allow_local_only);
            match name {
                "public:allow_local_only" | "public:allow_local_only:media" => {
                    return Ok(Channel::Other {
                        name: name.to_owned(),
                        params: Vec::new(),
                    });
                }
                "public" | "public:media" if allowed => {
                    return Ok(Channel::Other {
                        name: name.to_owned(),
                        params: vec![("allow_local_only".into(), "true".into())],
                    });
                }
                _ => {}
            }
        }
        // Iceshrimp.NET has the two as well (WebSocketConnection.cs: its
        // PublicChannel list), labelled with their name (PublicChannel.cs,
        // `Stream = [Name]`), but no `allow_local_only` parameter.
        if self == Flavour::Iceshrimp
            && matches!(
                name,
                "public:allow_local_only" | "public:allow_local_only:media"
            )
        {
            return Ok(Channel::Other {
                name: name.to_owned(),
                params: Vec::new(),
            });
        }
        // Pleroma's chat stream (lib/pleroma/web/streamer.ex, `@user_streams`;
        // Akkoma dropped chats and has no such topic): a user stream,
        // labelled `["user:pleroma_chat"]` (views/streamer_view.ex).
        if self == Flavour::Pleroma && name == PLEROMA_CHAT {
            return Ok(Channel::Other {
                name: name.to_owned(),
                params: Vec::new(),
            });
        }
        // lib/pleroma/web/streamer.ex, `get_topic`: no `hashtag:local`, and
        // `public:remote` only with an `instance` (one remote server's
        // posts, which this server does not emulate): a bad topic.
        if matches!(self, Flavour::Pleroma | Flavour::Akkoma)
            && matches!(
                name,
                "hashtag:local" | "public:remote" | "public:remote:media"
            )
        {
            return Err(ChannelError::UnknownChannel);
        }
        Channel::from_name(name, arg)
    }

    /// Whether the streaming server drops `encoded` for a subscriber of
    /// `stream` (glitch-soc: a local-only post's update on a stream that
    /// does not allow them; Mastodon 4.3 and later: an event without a
    /// payload, see `sends_payload_less`).
    pub fn drops(self, encoded: &Encoded, stream: &Channel) -> bool {
        if !encoded.has_payload && !self.sends_payload_less() {
            return true;
        }
        self == Flavour::GlitchSoc
            && encoded.local_only
            && matches!(encoded.event.as_str(), "update" | "status.update")
            && matches!(
                stream,
                Channel::Public
                    | Channel::PublicMedia
                    | Channel::PublicRemote
                    | Channel::PublicRemoteMedia
            )
    }

    /// Whether anything is ever pushed to `stream` (GoToSocial opens a
    /// stream of any name from the URL, but pushes only to those in
    /// internal/stream/stream.go's `AllStatusTimelines` and
    /// `user:notification`).
    pub fn pushes(self, stream: &Channel) -> bool {
        self != Flavour::GoToSocial
            || matches!(
                stream,
                Channel::User
                    | Channel::UserNotification
                    | Channel::Public
                    | Channel::PublicLocal
                    | Channel::Direct
                    | Channel::List(_)
            )
    }

    /// Whether a stream named in the URL that the server cannot place is
    /// refused with a bare 404 before the upgrade (Pleroma and Akkoma:
    /// lib/pleroma/web/mastodon_api/websocket_handler.ex, `init`,
    /// `{:error, :bad_topic}`), rather than with an error frame after it.
    pub fn refuses_unknown_before_upgrade(self) -> bool {
        matches!(self, Flavour::Pleroma | Flavour::Akkoma)
    }

    /// What `/api/v1/instance` and `/api/v2/instance` say of the software:
    /// `version` and `source_url`, as each server writes them (Pleroma
    /// and Akkoma: lib/pleroma/web/mastodon_api/views/instance_view.ex;
    /// Iceshrimp.NET: Controllers/Mastodon/Schemas/InstanceInfoV2Response.cs;
    /// GoToSocial: its own version alone, its repository as `source_url`).
    pub fn instance_software(self) -> (&'static str, &'static str) {
        match self {
            Flavour::Mastodon => ("4.6.5", "https://github.com/mastodon/mastodon"),
            Flavour::Mastodon41 => ("4.1.0", "https://github.com/mastodon/mastodon"),
            Flavour::GlitchSoc => ("4.5.0+glitch", "https://github.com/glitch-soc/mastodon"),
            Flavour::Pleroma => ("2.7.2 (compatible; Pleroma 2.7.0)", ""),
            Flavour::Akkoma => ("2.7.2 (compatible; Akkoma 3.15.2)", ""),
            Flavour::Iceshrimp => (
                "4.2.1 (compatible; Iceshrimp.NET/2025.1-beta5)",
                "https://iceshrimp.dev/iceshrimp/Iceshrimp.NET",
            ),
            Flavour::GoToSocial => (
                "0.19.1",
                "https://codeberg.org/superseriousbusiness/gotosocial",
            ),
        }
    }

    /// The source this flavour follows: repository, version, files.
    pub fn source(self) -> &'static str {
        match self {
            Flavour::Mastodon => {
                "mastodon/mastodon v4.6.5, streaming/index.js (and the real server's bytes)"
            }
            Flavour::Mastodon41 => {
                "mastodon/mastodon v4.1.0 (70c0d754, in glitch-soc/mastodon's history), streaming/index.js"
            }
            Flavour::GlitchSoc => "glitch-soc/mastodon 839591f2, streaming/index.js",
            Flavour::Pleroma => {
                "Pleroma 2.7.0 (the kphrx/pleroma mirror at 112caa05), \
                 lib/pleroma/web/mastodon_api/websocket_handler.ex, lib/pleroma/web/streamer.ex, \
                 lib/pleroma/web/views/streamer_view.ex, lib/pleroma/web/activity_pub/side_effects.ex"
            }
            Flavour::Akkoma => {
                "Akkoma (the BDX-town/Akkoma mirror at 071bb07a, its CHANGELOG up to 2025.10; \
                 websocket_handler.ex as of 13e2a811), the same files as Pleroma's"
            }
            Flavour::GoToSocial => {
                "superseriousbusiness/gotosocial 57cb4fe7 (v0.20.0-rc1 + 8), \
                 internal/api/client/streaming/stream.go, internal/stream/stream.go, \
                 internal/id/ulid.go"
            }
            Flavour::Iceshrimp => {
                "Iceshrimp.NET b3d9f649 (the kaido2ki/Iceshrimp.NET mirror), \
                 Iceshrimp.Backend/Controllers/Mastodon/Streaming/, Core/Helpers/IdHelpers.cs, \
                 Core/Extensions/QueryableExtensions.cs"
            }
        }
    }

    /// Whether the WebSocket upgrade reads a token from `source`. Pleroma
    /// 2.7's Phoenix transport reads only `?access_token=`
    /// (kphrx/pleroma 112caa05, lib/pleroma/web/mastodon_api/websocket_handler.ex,
    /// `connect/1`), and sends back no subprotocol; Akkoma's cowboy handler
    /// reads `?access_token=` or `Sec-WebSocket-Protocol`, echoing the
    /// latter (BDX-town/Akkoma 071bb07a, the same file, `init/2`). Neither
    /// reads an `Authorization` header.
    pub fn reads_token_from(self, source: TokenSource) -> bool {
        match self {
            Flavour::Pleroma => source == TokenSource::Query,
            Flavour::Akkoma => source != TokenSource::Header,
            _ => true,
        }
    }

    /// Whether a WebSocket may open with no token (its user streams then
    /// refused): Mastodon 4.1 (`alwaysRequireAuth` off), and Pleroma and
    /// Akkoma (`authenticate_request(nil)` is an anonymous user; a user
    /// stream named in the URL is then refused with 401 before the upgrade).
    pub fn anonymous_websocket(self) -> bool {
        matches!(
            self,
            Flavour::Mastodon41 | Flavour::Pleroma | Flavour::Akkoma
        )
    }

    /// Whether a connection can log in after it opened: Pleroma's in-band
    /// `{"type":"pleroma:authenticate","token":…}` (websocket_handler.ex,
    /// `handle_client_event`), answered with a `pleroma:respond` whose
    /// result is `success`, or `error` with `unauthorized` (a bad token) or
    /// `already_authenticated` (a connection that has a user already).
    /// Akkoma has no such frame (its handler, `websocket_handle`).
    pub fn authenticates_in_band(self) -> bool {
        self == Flavour::Pleroma
    }

    /// Whether events published with no payload reach subscribers. From
    /// Mastodon 4.3 (mastodon/mastodon 1335083b, streaming/index.js, the
    /// `streamFrom` listener: `if (!message?.event || !message?.payload)
    /// return`) they are dropped: `filters_changed`, which Rails publishes
    /// without one, no longer reaches clients. Before (4.1, 4.2) it did, as
    /// `data: undefined` over SSE and a frame without `payload` over the
    /// WebSocket. glitch-soc at 839591f2 has the same guard.
    pub fn sends_payload_less(self) -> bool {
        !matches!(self, Flavour::Mastodon | Flavour::GlitchSoc)
    }

    /// Whether unsubscribe frames are acted on (Akkoma ignores them).
    pub fn handles_unsubscribe(self) -> bool {
        self != Flavour::Akkoma
    }

    /// The answer to a text frame that is not JSON, if any (Akkoma: `ping`
    /// gets `pong`).
    pub fn answer_text(self, frame: &str) -> Option<&'static str> {
        let answers = matches!(self, Flavour::Akkoma | Flavour::Iceshrimp);
        (answers && frame.trim().eq_ignore_ascii_case("ping")).then_some("pong")
    }
}

/// The timeline a glitch-soc (or Iceshrimp.NET) stream of its own reads (Redis
/// `timeline:public` or `timeline:public:media`), so that it gets what
/// those do.
pub fn reads_timeline(stream: &Channel) -> Option<Channel> {
    match stream {
        Channel::Other { name, .. } => match name.as_str() {
            "public" | "public:allow_local_only" => Some(Channel::Public),
            "public:media" | "public:allow_local_only:media" => Some(Channel::PublicMedia),
            _ => None,
        },
        _ => None,
    }
}

/// Whether glitch-soc takes `a` and `b` as one subscription: the same
/// Redis channel, and at least one of them a stream of its own
/// (glitch-soc/mastodon streaming/index.js, `subscribeWebsocketToChannel`
/// keys subscriptions by `channelIds.join(';')`; `public:allow_local_only`
/// reads `timeline:public`).
pub fn same_redis_channel(a: &Channel, b: &Channel) -> bool {
    let (ra, rb) = (reads_timeline(a), reads_timeline(b));
    if ra.is_none() && rb.is_none() {
        return false;
    }
    ra.unwrap_or_else(|| a.clone()) == rb.unwrap_or_else(|| b.clone())
}

/// A stream as a one-element topic label: `hashtag:rust`, `list:42`, or
/// its name.
fn topic(stream: &Channel) -> String {
    match stream {
        Channel::Hashtag(tag) => format!("hashtag:{tag}"),
        Channel::List(id) => format!("list:{id}"),
        other => other.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_each_server_writes_them() {
        let encoded = Encoded::new("update", Some("{}"));
        let rust = Channel::Hashtag("rust".into());
        assert_eq!(
            Flavour::Mastodon.frame(&encoded, &rust, None),
            r#"{"stream":["hashtag","rust"],"event":"update","payload":"{}"}"#
        );
        assert_eq!(
            Flavour::Akkoma.frame(&encoded, &rust, None),
            r#"{"stream":["hashtag:rust"],"event":"update","payload":"{}"}"#
        );
        assert_eq!(
            Flavour::Akkoma.frame(&encoded, &Channel::User, None),
            format!(
                r#"{{"stream":["user:{AKKOMA_ACCOUNT_ID}"],"event":"update","payload":"{{}}"}}"#
            )
        );
        // GoToSocial labels with the connection's first stream.
        assert_eq!(
            Flavour::GoToSocial.frame(&encoded, &Channel::User, Some(&Channel::List("01H".into()))),
            r#"{"stream":["list:01H"],"event":"update","payload":"{}"}"#
        );
        let delete = Encoded::new("delete", Some("7"));
        assert_eq!(
            Flavour::Iceshrimp.frame(&delete, &Channel::List("42".into()), None),
            r#"{"stream":["list","42"],"event":"status.update","payload":"7"}"#
        );
        for flavour in [Flavour::Pleroma, Flavour::Akkoma] {
            assert_eq!(
                flavour.frame(&delete, &rust, None),
                r#"{"event":"delete","payload":"7"}"#
            );
        }
    }

    #[test]
    fn pleroma_answers_every_command() {
        let ok = Flavour::Pleroma.answer("subscribe", None).unwrap();
        let frame: serde_json::Value = serde_json::from_str(&ok).unwrap();
        assert_eq!(frame["event"], "pleroma:respond");
        let payload: serde_json::Value =
            serde_json::from_str(frame["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["result"], "success");
        let refused = Flavour::Pleroma
            .answer("subscribe", Some("bad_topic"))
            .unwrap();
        assert!(refused.contains(r#"\"error\":\"bad_topic\""#), "{refused}");
        assert_eq!(Flavour::Mastodon.answer("subscribe", None), None);
        assert_eq!(Flavour::Akkoma.answer("subscribe", Some("x")), None);
    }
}
