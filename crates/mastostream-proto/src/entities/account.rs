//! Accounts and what they carry.

use serde::Deserialize;

use super::id;

/// A user account (`Account` in Mastodon's API docs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// The account id, a string.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The username, without the domain.
    pub username: String,
    /// `username` for local accounts, `username@domain` for remote ones.
    pub acct: String,
    /// The display name (may contain custom emoji shortcodes).
    #[serde(default)]
    pub display_name: String,
    /// Whether follows must be approved.
    #[serde(default)]
    pub locked: bool,
    /// Whether the account is automated.
    #[serde(default)]
    pub bot: bool,
    /// Whether the account is a group actor.
    #[serde(default)]
    pub group: bool,
    /// Whether the account opts into discovery features.
    #[serde(default)]
    pub discoverable: Option<bool>,
    /// When the account was created (ISO 8601).
    #[serde(default)]
    pub created_at: String,
    /// The profile bio, as HTML.
    #[serde(default)]
    pub note: String,
    /// The profile page.
    #[serde(default)]
    pub url: Option<String>,
    /// The avatar image URL.
    #[serde(default)]
    pub avatar: String,
    /// The avatar image URL, not animated.
    #[serde(default)]
    pub avatar_static: String,
    /// The header image URL.
    #[serde(default)]
    pub header: String,
    /// The header image URL, not animated.
    #[serde(default)]
    pub header_static: String,
    /// How many accounts follow this one.
    #[serde(default)]
    pub followers_count: u64,
    /// How many accounts this one follows.
    #[serde(default)]
    pub following_count: u64,
    /// How many statuses this account posted.
    #[serde(default)]
    pub statuses_count: u64,
    /// The day of the last status (`YYYY-MM-DD`).
    #[serde(default)]
    pub last_status_at: Option<String>,
    /// Custom emoji used in the name and bio.
    #[serde(default)]
    pub emojis: Vec<CustomEmoji>,
    /// Profile metadata fields.
    #[serde(default)]
    pub fields: Vec<AccountField>,
    /// The account this one moved to.
    #[serde(default)]
    pub moved: Option<Box<Account>>,
    /// Whether the account is suspended.
    #[serde(default)]
    pub suspended: Option<bool>,
    /// Whether the account is limited by moderators.
    #[serde(default)]
    pub limited: Option<bool>,
}

/// A custom emoji.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CustomEmoji {
    /// The name used between colons.
    pub shortcode: String,
    /// The image URL.
    #[serde(default)]
    pub url: String,
    /// The image URL, not animated.
    #[serde(default)]
    pub static_url: String,
    /// Whether the emoji shows in the picker.
    #[serde(default)]
    pub visible_in_picker: bool,
    /// The picker category.
    #[serde(default)]
    pub category: Option<String>,
}

/// A profile metadata field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AccountField {
    /// The label.
    pub name: String,
    /// The value, as HTML.
    #[serde(default)]
    pub value: String,
    /// When a link in the value was verified.
    #[serde(default)]
    pub verified_at: Option<String>,
}
