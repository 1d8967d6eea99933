//! Server announcements and their reactions.

use serde::Deserialize;

use super::account::CustomEmoji;
use super::id;
use super::media::Tag;

/// An announcement by the server's administrators.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Announcement {
    /// The announcement id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The text, as HTML.
    pub content: String,
    /// When the announced event starts.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// When the announced event ends.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Whether only the dates matter.
    #[serde(default)]
    pub all_day: bool,
    /// When it was published.
    #[serde(default)]
    pub published_at: String,
    /// When it was last updated.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Whether the user has read it.
    #[serde(default)]
    pub read: Option<bool>,
    /// Mentioned accounts.
    #[serde(default)]
    pub mentions: Vec<AnnouncementAccount>,
    /// Linked statuses.
    #[serde(default)]
    pub statuses: Vec<AnnouncementStatus>,
    /// Hashtags used.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Custom emoji used.
    #[serde(default)]
    pub emojis: Vec<CustomEmoji>,
    /// Reactions so far.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
}

/// An account mentioned in an announcement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AnnouncementAccount {
    /// The account id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The username.
    #[serde(default)]
    pub username: String,
    /// The profile URL.
    #[serde(default)]
    pub url: String,
    /// `username` or `username@domain`.
    #[serde(default)]
    pub acct: String,
}

/// A status linked from an announcement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AnnouncementStatus {
    /// The status id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The status URL.
    #[serde(default)]
    pub url: String,
}

/// An emoji reaction on an announcement, with its count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Reaction {
    /// The emoji (unicode, or a custom shortcode).
    pub name: String,
    /// How many reacted with it.
    pub count: u64,
    /// Whether the user reacted with it.
    #[serde(default)]
    pub me: Option<bool>,
    /// A custom emoji's image.
    #[serde(default)]
    pub url: Option<String>,
    /// A custom emoji's still image.
    #[serde(default)]
    pub static_url: Option<String>,
}

/// The payload of an `announcement.reaction` event: a reaction's new count.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AnnouncementReaction {
    /// The emoji.
    pub name: String,
    /// Its new count.
    pub count: u64,
    /// The announcement reacted to.
    #[serde(deserialize_with = "id::string_or_int")]
    pub announcement_id: String,
}
