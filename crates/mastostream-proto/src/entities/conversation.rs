//! Direct-message conversations.

use serde::Deserialize;

use super::account::Account;
use super::id;
use super::status::Status;

/// A conversation, as `conversation` events on the direct stream carry it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Conversation {
    /// The conversation id.
    #[serde(deserialize_with = "id::string_or_int")]
    pub id: String,
    /// The other participants.
    pub accounts: Vec<Account>,
    /// Whether the user has unread messages in it.
    #[serde(default)]
    pub unread: bool,
    /// The newest status.
    #[serde(default)]
    pub last_status: Option<Box<Status>>,
}
