//! Typed Mastodon entities, as the streaming server and the REST API send them.
//!
//! Every type here is forward-compatible: fields a newer server adds are
//! ignored, fields an older server omits default to empty, and enum values this
//! version does not know are kept as `Other(String)` rather than rejected. Ids
//! are strings everywhere (Mastodon's snowflake ids overflow JavaScript
//! numbers); an integer id from a non-Mastodon server is accepted and turned
//! into its decimal string.

#[macro_use]
mod string_enum;

mod account;
mod announcement;
mod conversation;
mod id;
mod media;
mod notification;
mod status;

pub use account::{Account, AccountField, CustomEmoji};
pub use announcement::{
    Announcement, AnnouncementAccount, AnnouncementReaction, AnnouncementStatus, Reaction,
};
pub use conversation::Conversation;
pub use media::{
    CardType, MediaAttachment, MediaType, Poll, PollOption, PreviewCard, Tag, TagHistory,
};
pub use notification::{Notification, NotificationType};
pub use status::{
    Application, Filter, FilterAction, FilterResult, Mention, Quote, QuoteState, Status, Visibility,
};
