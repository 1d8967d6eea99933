//! Channel selectors: one typed name for every Mastodon stream, and its forms on
//! the wire (SSE path and query, WebSocket `stream` name and array) and on the
//! command line (`hashtag=rust`).

use std::fmt;
use std::str::FromStr;

/// One of Mastodon's streams.
///
/// ```
/// use mastostream_proto::Channel;
///
/// let tag: Channel = "hashtag:local=rust".parse().unwrap();
/// assert_eq!(tag, Channel::HashtagLocal("rust".into()));
/// assert_eq!(tag.sse_path_and_query(), "/api/v1/streaming/hashtag/local?tag=rust");
/// assert_eq!(tag.ws_stream_array(), ["hashtag:local", "rust"]);
/// assert_eq!(Channel::PublicLocalMedia.name(), "public:local:media");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Channel {
    /// `user`: the home timeline and notifications of the token's user.
    User,
    /// `user:notification`: notifications only.
    UserNotification,
    /// `public`: the federated timeline.
    Public,
    /// `public:media`: the federated timeline, statuses with media only.
    PublicMedia,
    /// `public:local`: the local timeline.
    PublicLocal,
    /// `public:local:media`: the local timeline, statuses with media only.
    PublicLocalMedia,
    /// `public:remote`: the remote-only timeline.
    PublicRemote,
    /// `public:remote:media`: the remote-only timeline, statuses with media only.
    PublicRemoteMedia,
    /// `hashtag`: statuses with a tag (without `#`).
    Hashtag(String),
    /// `hashtag:local`: local statuses with a tag.
    HashtagLocal(String),
    /// `list`: a list's timeline, by list id.
    List(String),
    /// `direct`: direct conversations.
    Direct,
    /// A stream this version does not name: a server's own (glitch-soc's
    /// `public:allow_local_only`, Pleroma's `user:pleroma_chat`) or a future
    /// one. `name` is the WebSocket `stream` name; `params` go into the
    /// subscribe frame as fields and into the SSE query. Over SSE the path is
    /// the name with `:` read as `/`, as Mastodon's own paths are formed.
    Other {
        /// The stream's name as the server spells it.
        name: String,
        /// Its parameters, in order (`("tag", "rust")`).
        params: Vec<(String, String)>,
    },
}

/// Why a stream could not be named, with the text Mastodon's server answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The stream name (or SSE path) is not one Mastodon knows.
    #[error("Unknown channel requested")]
    UnknownChannel,
    /// A hashtag stream without a tag.
    #[error("Missing tag name parameter")]
    MissingTag,
    /// A list stream without a list id.
    #[error("Missing list name parameter")]
    MissingList,
}

/// Every stream name, in the order Mastodon documents them.
pub const CHANNEL_NAMES: [&str; 12] = [
    "user",
    "user:notification",
    "public",
    "public:media",
    "public:local",
    "public:local:media",
    "public:remote",
    "public:remote:media",
    "hashtag",
    "hashtag:local",
    "list",
    "direct",
];

impl Channel {
    /// A stream this version does not name; see [`Channel::Other`].
    pub fn other<K: Into<String>, V: Into<String>>(
        name: impl Into<String>,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Channel {
        Channel::Other {
            name: name.into(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The stream's name as Mastodon spells it (`public:local:media`, `hashtag`, ...).
    pub fn name(&self) -> &str {
        match self {
            Channel::User => "user",
            Channel::UserNotification => "user:notification",
            Channel::Public => "public",
            Channel::PublicMedia => "public:media",
            Channel::PublicLocal => "public:local",
            Channel::PublicLocalMedia => "public:local:media",
            Channel::PublicRemote => "public:remote",
            Channel::PublicRemoteMedia => "public:remote:media",
            Channel::Hashtag(_) => "hashtag",
            Channel::HashtagLocal(_) => "hashtag:local",
            Channel::List(_) => "list",
            Channel::Direct => "direct",
            Channel::Other { name, .. } => name,
        }
    }

    /// The tag or list id, for the streams that take one (for
    /// [`Channel::Other`], its first parameter's value).
    pub fn arg(&self) -> Option<&str> {
        match self {
            Channel::Hashtag(arg) | Channel::HashtagLocal(arg) | Channel::List(arg) => Some(arg),
            Channel::Other { params, .. } => params.first().map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    /// A stream from its name and, for hashtag and list streams, its argument.
    /// An empty argument counts as missing.
    pub fn from_name(name: &str, arg: Option<&str>) -> Result<Channel, ChannelError> {
        let arg = arg.filter(|a| !a.is_empty());
        let tag = || arg.map(str::to_owned).ok_or(ChannelError::MissingTag);
        Ok(match name {
            "user" => Channel::User,
            "user:notification" => Channel::UserNotification,
            "public" => Channel::Public,
            "public:media" => Channel::PublicMedia,
            "public:local" => Channel::PublicLocal,
            "public:local:media" => Channel::PublicLocalMedia,
            "public:remote" => Channel::PublicRemote,
            "public:remote:media" => Channel::PublicRemoteMedia,
            "hashtag" => Channel::Hashtag(tag()?),
            "hashtag:local" => Channel::HashtagLocal(tag()?),
            "list" => Channel::List(arg.map(str::to_owned).ok_or(ChannelError::MissingList)?),
            "direct" => Channel::Direct,
            _ => return Err(ChannelError::UnknownChannel),
        })
    }

    /// The stream an SSE request asks for: `path` after `/api/v1/streaming/`
    /// (`public/local`, `hashtag`, ...), with the request's query values.
    /// `only_media` is read as Mastodon does (see [`query_flag`]). The path
    /// must match exactly: Mastodon's streaming server allows no trailing slash.
    pub fn from_sse_path(
        path: &str,
        only_media: Option<&str>,
        tag: Option<&str>,
        list: Option<&str>,
    ) -> Result<Channel, ChannelError> {
        let media = query_flag(only_media);
        let name = match (path, media) {
            ("public", true) => "public:media",
            ("public/local", true) => "public:local:media",
            ("public/remote", true) => "public:remote:media",
            ("user", _) => "user",
            ("user/notification", _) => "user:notification",
            ("public", false) => "public",
            ("public/local", false) => "public:local",
            ("public/remote", false) => "public:remote",
            ("hashtag", _) => "hashtag",
            ("hashtag/local", _) => "hashtag:local",
            ("list", _) => "list",
            ("direct", _) => "direct",
            _ => return Err(ChannelError::UnknownChannel),
        };
        let arg = if name == "list" { list } else { tag };
        Channel::from_name(name, arg)
    }

    /// The SSE path and query for this stream, e.g.
    /// `/api/v1/streaming/public/local?only_media=true`.
    pub fn sse_path_and_query(&self) -> String {
        let base = "/api/v1/streaming/";
        match self {
            Channel::User => format!("{base}user"),
            Channel::UserNotification => format!("{base}user/notification"),
            Channel::Public => format!("{base}public"),
            Channel::PublicMedia => format!("{base}public?only_media=true"),
            Channel::PublicLocal => format!("{base}public/local"),
            Channel::PublicLocalMedia => format!("{base}public/local?only_media=true"),
            Channel::PublicRemote => format!("{base}public/remote"),
            Channel::PublicRemoteMedia => format!("{base}public/remote?only_media=true"),
            Channel::Hashtag(tag) => format!("{base}hashtag?tag={}", percent_encode(tag)),
            Channel::HashtagLocal(tag) => {
                format!("{base}hashtag/local?tag={}", percent_encode(tag))
            }
            Channel::List(id) => format!("{base}list?list={}", percent_encode(id)),
            Channel::Direct => format!("{base}direct"),
            Channel::Other { name, params } => {
                let mut path = format!("{base}{}", name.replace(':', "/"));
                for (i, (key, value)) in params.iter().enumerate() {
                    path.push(if i == 0 { '?' } else { '&' });
                    path.push_str(&percent_encode(key));
                    path.push('=');
                    path.push_str(&percent_encode(value));
                }
                path
            }
        }
    }

    /// The `stream` array Mastodon puts on WebSocket frames: `[name]`, or
    /// `[name, tag]` / `[name, list_id]`.
    pub fn ws_stream_array(&self) -> Vec<&str> {
        let mut array = vec![self.name()];
        match self {
            Channel::Other { params, .. } => array.extend(params.iter().map(|(_, v)| v.as_str())),
            _ => array.extend(self.arg()),
        }
        array
    }

    /// The stream a WebSocket frame's `stream` array names.
    pub fn from_ws_stream_array<S: AsRef<str>>(array: &[S]) -> Result<Channel, ChannelError> {
        let name = array.first().ok_or(ChannelError::UnknownChannel)?;
        Channel::from_name(name.as_ref(), array.get(1).map(AsRef::as_ref))
    }

    /// The WebSocket control frame that subscribes to (or unsubscribes from) this stream.
    pub fn ws_command(&self, subscribe: bool) -> String {
        let mut frame = serde_json::json!({
            "type": if subscribe { "subscribe" } else { "unsubscribe" },
            "stream": self.name(),
        });
        match self {
            Channel::Hashtag(tag) | Channel::HashtagLocal(tag) => {
                frame["tag"] = tag.as_str().into()
            }
            Channel::List(id) => frame["list"] = id.as_str().into(),
            Channel::Other { params, .. } => {
                for (key, value) in params {
                    frame[key.as_str()] = value.as_str().into();
                }
            }
            _ => {}
        }
        frame.to_string()
    }

    /// Whether it is one of Mastodon's `PUBLIC_CHANNELS` (streaming/index.js):
    /// the public timelines and hashtags, which need no OAuth scope, which
    /// anyone could read before Mastodon 4.2, and whose updates 4.1 ran
    /// through the user's filters.
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            Channel::Public
                | Channel::PublicMedia
                | Channel::PublicLocal
                | Channel::PublicLocalMedia
                | Channel::PublicRemote
                | Channel::PublicRemoteMedia
                | Channel::Hashtag(_)
                | Channel::HashtagLocal(_)
        )
    }

    /// Whether events published to `other` reach a subscriber of `self`:
    /// the same stream, with tags compared after [`normalize_hashtag`].
    pub fn matches(&self, other: &Channel) -> bool {
        match (self, other) {
            (Channel::Hashtag(a), Channel::Hashtag(b))
            | (Channel::HashtagLocal(a), Channel::HashtagLocal(b)) => {
                a == b || normalize_hashtag(a) == normalize_hashtag(b)
            }
            _ => self == other,
        }
    }
}

/// The command-line form: the name, then `=` and the tag or list id.
impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(arg) = self.arg() {
            write!(f, "={arg}")?;
        }
        Ok(())
    }
}

/// Parses the command-line form: `user`, `public:local:media`, `hashtag=rust`, `list=42`.
impl FromStr for Channel {
    type Err = ChannelError;

    fn from_str(text: &str) -> Result<Channel, ChannelError> {
        match text.split_once('=') {
            Some((name, arg)) => {
                let stream = Channel::from_name(name, Some(arg))?;
                // `public=x`: an argument where none is taken.
                if stream.arg().is_none() {
                    return Err(ChannelError::UnknownChannel);
                }
                Ok(stream)
            }
            None => Channel::from_name(text, None),
        }
    }
}

/// A boolean query parameter as Mastodon reads it: false when absent, empty,
/// or one of `0`, `f`, `F`, `false`, `FALSE`, `off`, `OFF`; true otherwise.
pub fn query_flag(value: Option<&str>) -> bool {
    !matches!(
        value,
        None | Some("" | "0" | "f" | "F" | "false" | "FALSE" | "off" | "OFF")
    )
}

/// A hashtag's channel name, close to Mastodon's normaliser: lower-cased,
/// common Latin accents folded to ASCII (`café` → `cafe`), and every
/// character that is not a letter, digit, `_`, `·` or ZWNJ removed.
/// (Mastodon also applies Unicode NFKC first; this does not.)
pub fn normalize_hashtag(tag: &str) -> String {
    tag.chars()
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '\u{00B7}' | '\u{200C}'))
        .collect()
}

/// Folds the accented Latin-1 letters Mastodon's ASCII folding covers most often.
fn fold_accent(c: char) -> char {
    match c {
        'à'..='å' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Channel> {
        CHANNEL_NAMES
            .iter()
            .map(|name| Channel::from_name(name, Some("42")).unwrap())
            .collect()
    }

    #[test]
    fn names_round_trip() {
        for (stream, name) in all().iter().zip(CHANNEL_NAMES) {
            assert_eq!(stream.name(), name);
            assert_eq!(stream.to_string().parse::<Channel>().unwrap(), *stream);
            assert_eq!(
                Channel::from_ws_stream_array(&stream.ws_stream_array()).unwrap(),
                *stream
            );
        }
    }

    #[test]
    fn sse_paths_round_trip() {
        for stream in all() {
            let path_and_query = stream.sse_path_and_query();
            let rest = path_and_query.strip_prefix("/api/v1/streaming/").unwrap();
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let param = |key: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            };
            let parsed =
                Channel::from_sse_path(path, param("only_media"), param("tag"), param("list"));
            assert_eq!(parsed.unwrap(), stream, "{path_and_query}");
        }
    }

    #[test]
    fn hashtags_normalize_as_mastodon_does() {
        assert_eq!(normalize_hashtag("Café_Rust!"), "cafe_rust");
        assert_eq!(normalize_hashtag("日本語"), "日本語");
        assert!(Channel::Hashtag("CAFÉ".into()).matches(&Channel::Hashtag("cafe".into())));
        assert!(!Channel::Hashtag("rust".into()).matches(&Channel::Hashtag("rusty".into())));
    }

    #[test]
    fn trailing_slash_is_an_unknown_channel() {
        assert_eq!(
            Channel::from_sse_path("public/", None, None, None),
            Err(ChannelError::UnknownChannel)
        );
    }

    #[test]
    fn only_media_values() {
        for truthy in ["1", "true", "yes", "no", "False", "Off"] {
            assert_eq!(
                Channel::from_sse_path("public", Some(truthy), None, None),
                Ok(Channel::PublicMedia),
                "{truthy}"
            );
        }
        for falsy in ["", "0", "f", "F", "false", "FALSE", "off", "OFF"] {
            assert_eq!(
                Channel::from_sse_path("public", Some(falsy), None, None),
                Ok(Channel::Public),
                "{falsy}"
            );
        }
        assert_eq!(
            Channel::from_sse_path("public", Some("1"), None, None),
            Ok(Channel::PublicMedia)
        );
        assert_eq!(
            Channel::from_sse_path("public", Some("false"), None, None),
            Ok(Channel::Public)
        );
        assert_eq!(
            Channel::from_sse_path("user", Some("true"), None, None),
            Ok(Channel::User)
        );
    }

    #[test]
    fn errors_carry_mastodon_texts() {
        assert_eq!(
            Channel::from_sse_path("nope", None, None, None),
            Err(ChannelError::UnknownChannel)
        );
        assert_eq!(
            Channel::from_sse_path("hashtag", None, Some(""), None),
            Err(ChannelError::MissingTag)
        );
        assert_eq!(
            Channel::from_name("list", None),
            Err(ChannelError::MissingList)
        );
        assert_eq!(
            ChannelError::MissingTag.to_string(),
            "Missing tag name parameter"
        );
        assert_eq!(
            "public=x".parse::<Channel>(),
            Err(ChannelError::UnknownChannel)
        );
        assert_eq!("hashtag".parse::<Channel>(), Err(ChannelError::MissingTag));
    }

    #[test]
    fn tags_are_encoded_and_matched_case_insensitively() {
        let tag = Channel::Hashtag("café rust&x".into());
        assert_eq!(
            tag.sse_path_and_query(),
            "/api/v1/streaming/hashtag?tag=caf%C3%A9%20rust%26x"
        );
        assert!(Channel::Hashtag("Rust".into()).matches(&Channel::Hashtag("rust".into())));
        assert!(!Channel::Hashtag("rust".into()).matches(&Channel::HashtagLocal("rust".into())));
    }

    #[test]
    fn ws_commands() {
        let value = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
        assert_eq!(
            value(Channel::List("7".into()).ws_command(true)),
            serde_json::json!({"type": "subscribe", "stream": "list", "list": "7"})
        );
        assert_eq!(
            value(Channel::User.ws_command(false)),
            serde_json::json!({"type": "unsubscribe", "stream": "user"})
        );
        assert_eq!(
            value(Channel::HashtagLocal("café".into()).ws_command(true)),
            serde_json::json!({"type": "subscribe", "stream": "hashtag:local", "tag": "café"})
        );
    }

    #[test]
    fn a_stream_this_version_does_not_name_has_every_wire_form() {
        let local_only = Channel::other("public:allow_local_only", [("only_media", "true")]);
        assert_eq!(local_only.name(), "public:allow_local_only");
        assert_eq!(
            local_only.sse_path_and_query(),
            "/api/v1/streaming/public/allow_local_only?only_media=true"
        );
        assert_eq!(
            local_only.ws_stream_array(),
            ["public:allow_local_only", "true"]
        );
        let frame: serde_json::Value = serde_json::from_str(&local_only.ws_command(true)).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"type": "subscribe", "stream": "public:allow_local_only", "only_media": "true"})
        );
        let bare = Channel::other("user:pleroma_chat", Vec::<(String, String)>::new());
        assert_eq!(
            bare.sse_path_and_query(),
            "/api/v1/streaming/user/pleroma_chat"
        );
        assert_eq!(bare.to_string(), "user:pleroma_chat");
    }
}
