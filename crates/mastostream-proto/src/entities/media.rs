//! What a status carries besides text: media, cards, polls, tags.

use serde::Deserialize;

use super::account::CustomEmoji;
use super::id;

string_enum! {
    /// The kind of a media attachment.
    pub enum MediaType {
        /// A still image.
        Image => "image",
        /// A looping, soundless animation.
        Gifv => "gifv",
        /// A video clip.
        Video => "video",
        /// An audio track.
        Audio => "audio",
        /// Unsupported or unrecognised file type.
        Unknown => "unknown",
    }
}

/// A file attached to a status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct MediaAttachment {
    /// The attachment id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The kind of media.
    #[serde(rename = "type")]
    pub kind: MediaType,
    /// The file's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// A scaled-down preview.
    #[serde(default)]
    pub preview_url: Option<String>,
    /// The original URL on a remote server.
    #[serde(default)]
    pub remote_url: Option<String>,
    /// Alternate text.
    #[serde(default)]
    pub description: Option<String>,
    /// A blurhash preview.
    #[serde(default)]
    pub blurhash: Option<String>,
    /// Sizes, durations and focal points, as sent.
    #[serde(default)]
    pub meta: Option<serde_json::Value>,
}

string_enum! {
    /// The kind of a preview card.
    pub enum CardType {
        /// A link to a page.
        Link => "link",
        /// A photo.
        Photo => "photo",
        /// A video embed.
        Video => "video",
        /// An iframe embed (unused by Mastodon itself).
        Rich => "rich",
    }
}

/// A rich preview of a link in a status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PreviewCard {
    /// The linked URL.
    pub url: String,
    /// The page title.
    #[serde(default)]
    pub title: String,
    /// The page description.
    #[serde(default)]
    pub description: String,
    /// The kind of card.
    #[serde(rename = "type")]
    pub kind: CardType,
    /// The author's name.
    #[serde(default)]
    pub author_name: String,
    /// The author's URL.
    #[serde(default)]
    pub author_url: String,
    /// The provider's name.
    #[serde(default)]
    pub provider_name: String,
    /// The provider's URL.
    #[serde(default)]
    pub provider_url: String,
    /// Embed HTML.
    #[serde(default)]
    pub html: String,
    /// Embed width.
    #[serde(default)]
    pub width: u32,
    /// Embed height.
    #[serde(default)]
    pub height: u32,
    /// A preview image.
    #[serde(default)]
    pub image: Option<String>,
    /// The embed URL.
    #[serde(default)]
    pub embed_url: String,
    /// A blurhash of the image.
    #[serde(default)]
    pub blurhash: Option<String>,
}

/// A poll attached to a status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Poll {
    /// The poll id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// When voting ends.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Whether voting has ended.
    #[serde(default)]
    pub expired: bool,
    /// Whether several options may be chosen.
    #[serde(default)]
    pub multiple: bool,
    /// Votes cast.
    #[serde(default)]
    pub votes_count: u64,
    /// Accounts that voted (multiple-choice polls only).
    #[serde(default)]
    pub voters_count: Option<u64>,
    /// The options.
    #[serde(default)]
    pub options: Vec<PollOption>,
    /// Custom emoji in the options.
    #[serde(default)]
    pub emojis: Vec<CustomEmoji>,
    /// Whether the token's user voted (user tokens only).
    #[serde(default)]
    pub voted: Option<bool>,
    /// The options the token's user chose.
    #[serde(default)]
    pub own_votes: Option<Vec<u32>>,
}

/// One choice in a poll.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PollOption {
    /// The option's text.
    pub title: String,
    /// Votes for it, when the results are visible.
    #[serde(default)]
    pub votes_count: Option<u64>,
}

/// A hashtag used in a status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Tag {
    /// The tag without `#`.
    pub name: String,
    /// The tag's page.
    #[serde(default)]
    pub url: String,
    /// Recent use, when sent.
    #[serde(default)]
    pub history: Vec<TagHistory>,
}

/// One day of a tag's use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TagHistory {
    /// The day, as a UNIX timestamp string.
    pub day: String,
    /// Uses that day.
    pub uses: String,
    /// Accounts using it that day.
    pub accounts: String,
}
