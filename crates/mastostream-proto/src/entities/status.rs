//! Statuses (posts) and what they contain.

use serde::Deserialize;

use super::account::{Account, CustomEmoji};
use super::id;
use super::media::{MediaAttachment, Poll, PreviewCard, Tag};

string_enum! {
    /// Who can see a status.
    pub enum Visibility {
        /// Everyone, in public timelines too.
        Public => "public",
        /// Everyone, but not in public timelines.
        Unlisted => "unlisted",
        /// Followers only.
        Private => "private",
        /// Mentioned accounts only.
        Direct => "direct",
    }
}

/// A status (a post), as `update` and `status.update` events carry it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The status id, a string.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The ActivityPub URI.
    #[serde(default)]
    pub uri: String,
    /// The HTML page.
    #[serde(default)]
    pub url: Option<String>,
    /// When the status was created (ISO 8601).
    pub created_at: String,
    /// When the status was last edited.
    #[serde(default)]
    pub edited_at: Option<String>,
    /// The author.
    pub account: Account,
    /// The text, as HTML.
    #[serde(default)]
    pub content: String,
    /// The plain source text (only in some responses).
    #[serde(default)]
    pub text: Option<String>,
    /// Who can see the status.
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    /// Whether the media is marked sensitive.
    #[serde(default)]
    pub sensitive: bool,
    /// The content warning.
    #[serde(default)]
    pub spoiler_text: String,
    /// Attached media.
    #[serde(default)]
    pub media_attachments: Vec<MediaAttachment>,
    /// The posting application.
    #[serde(default)]
    pub application: Option<Application>,
    /// Mentioned accounts.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// Hashtags used.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Custom emoji used.
    #[serde(default)]
    pub emojis: Vec<CustomEmoji>,
    /// Boosts.
    #[serde(default)]
    pub reblogs_count: u64,
    /// Favourites.
    #[serde(default)]
    pub favourites_count: u64,
    /// Replies.
    #[serde(default)]
    pub replies_count: u64,
    /// Quotes (Mastodon 4.4+).
    #[serde(default)]
    pub quotes_count: Option<u64>,
    /// The status this replies to.
    #[serde(default, deserialize_with = "id::opt_string_or_int")]
    pub in_reply_to_id: Option<String>,
    /// The author of the status this replies to.
    #[serde(default, deserialize_with = "id::opt_string_or_int")]
    pub in_reply_to_account_id: Option<String>,
    /// For a boost, the boosted status.
    #[serde(default)]
    pub reblog: Option<Box<Status>>,
    /// A quoted status (Mastodon 4.4+).
    #[serde(default)]
    pub quote: Option<Box<Quote>>,
    /// A poll.
    #[serde(default)]
    pub poll: Option<Poll>,
    /// A link preview.
    #[serde(default)]
    pub card: Option<PreviewCard>,
    /// The language (ISO 639).
    #[serde(default)]
    pub language: Option<String>,
    /// Whether the token's user favourited it.
    #[serde(default)]
    pub favourited: Option<bool>,
    /// Whether the token's user boosted it.
    #[serde(default)]
    pub reblogged: Option<bool>,
    /// Whether the token's user muted the conversation.
    #[serde(default)]
    pub muted: Option<bool>,
    /// Whether the token's user bookmarked it.
    #[serde(default)]
    pub bookmarked: Option<bool>,
    /// Whether the token's user pinned it.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// The token's user's filters that matched.
    #[serde(default)]
    pub filtered: Vec<FilterResult>,
}

fn default_visibility() -> Visibility {
    Visibility::Public
}

impl Status {
    /// Whether the author's account is on the server itself (`acct` has no `@`).
    pub fn is_local(&self) -> bool {
        !self.account.acct.contains('@')
    }
}

/// The application a status was posted with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Application {
    /// Its name.
    pub name: String,
    /// Its website.
    #[serde(default)]
    pub website: Option<String>,
}

/// A mentioned account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Mention {
    /// The account id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The username.
    pub username: String,
    /// The profile URL.
    #[serde(default)]
    pub url: String,
    /// `username` or `username@domain`.
    pub acct: String,
}

string_enum! {
    /// The state of a quote.
    pub enum QuoteState {
        /// Awaiting the quoted author's approval.
        Pending => "pending",
        /// Approved and shown.
        Accepted => "accepted",
        /// Refused by the quoted author.
        Rejected => "rejected",
        /// Approval withdrawn.
        Revoked => "revoked",
        /// The quoted status was deleted.
        Deleted => "deleted",
        /// The viewer may not see the quoted status.
        Unauthorized => "unauthorized",
        /// The viewer blocks the quoted author.
        BlockedAccount => "blocked_account",
        /// The viewer blocks the quoted author's domain.
        BlockedDomain => "blocked_domain",
        /// The viewer mutes the quoted author.
        MutedAccount => "muted_account",
    }
}

/// A quote of another status (Mastodon 4.4+): full, or shallow with only the id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Quote {
    /// The quote's state.
    pub state: QuoteState,
    /// The quoted status, when sent in full.
    #[serde(default)]
    pub quoted_status: Option<Status>,
    /// The quoted status's id, when sent shallow.
    #[serde(default, deserialize_with = "id::opt_string_or_int")]
    pub quoted_status_id: Option<String>,
}

string_enum! {
    /// What a matching filter does.
    pub enum FilterAction {
        /// Show behind a warning.
        Warn => "warn",
        /// Hide entirely.
        Hide => "hide",
        /// Hide the media behind a warning.
        Blur => "blur",
    }
}

/// A filter that matched a status.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FilterResult {
    /// The filter.
    pub filter: Filter,
    /// The keywords that matched.
    #[serde(default)]
    pub keyword_matches: Option<Vec<String>>,
    /// The status ids that matched.
    #[serde(default)]
    pub status_matches: Option<Vec<String>>,
}

/// A user's filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Filter {
    /// The filter id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Where it applies (`home`, `public`, `notifications`, ...).
    #[serde(default)]
    pub context: Vec<String>,
    /// When it expires.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// What it does.
    #[serde(default = "default_filter_action")]
    pub filter_action: FilterAction,
}

fn default_filter_action() -> FilterAction {
    FilterAction::Warn
}
