//! Notifications.

use serde::Deserialize;

use super::account::Account;
use super::id;
use super::status::Status;

string_enum! {
    /// What a notification is about.
    pub enum NotificationType {
        /// Someone mentioned the user.
        Mention => "mention",
        /// Someone the user subscribed to posted.
        Status => "status",
        /// Someone boosted the user's status.
        Reblog => "reblog",
        /// Someone followed the user.
        Follow => "follow",
        /// Someone asked to follow the user.
        FollowRequest => "follow_request",
        /// Someone favourited the user's status.
        Favourite => "favourite",
        /// A poll the user voted in or made has ended.
        Poll => "poll",
        /// A status the user interacted with was edited.
        Update => "update",
        /// Someone signed up (admins).
        AdminSignUp => "admin.sign_up",
        /// A new report (admins).
        AdminReport => "admin.report",
        /// Follow relationships were severed by moderation.
        SeveredRelationships => "severed_relationships",
        /// A moderator warned the user.
        ModerationWarning => "moderation_warning",
        /// Someone quoted the user's status.
        Quote => "quote",
        /// A status the user quoted was edited.
        QuotedUpdate => "quoted_update",
    }
}

/// A notification, as `notification` events carry it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// The notification id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// What it is about.
    #[serde(rename = "type")]
    pub kind: NotificationType,
    /// When it happened.
    pub created_at: String,
    /// The key grouped notifications share (Mastodon 4.3+).
    #[serde(default)]
    pub group_key: Option<String>,
    /// Who caused it.
    pub account: Account,
    /// The status concerned, if any.
    #[serde(default)]
    pub status: Option<Box<Status>>,
    /// The report concerned (`admin.report`), as sent.
    #[serde(default)]
    pub report: Option<serde_json::Value>,
    /// The severed relationships event, as sent.
    #[serde(default)]
    pub event: Option<serde_json::Value>,
    /// The moderation warning, as sent.
    #[serde(default)]
    pub moderation_warning: Option<serde_json::Value>,
}
