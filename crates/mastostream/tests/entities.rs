//! Every entity fixture parses into its typed form, and unknown values survive.

use mastostream_proto::entities::*;
use serde::de::DeserializeOwned;

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = format!(
        "{}/../../fixtures/entities/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn status() {
    let status: Status = fixture("status.json");
    assert_eq!(status.id, "103270115826048975");
    assert_eq!(status.visibility, Visibility::Public);
    assert_eq!(status.account.acct, "Gargron");
    assert!(status.is_local());
    assert!(status.reblog.is_none());
    assert!(status.card.is_some());
    assert_eq!(status.quotes_count, Some(2));
}

#[test]
fn status_edited_and_unicode() {
    let edited: Status = fixture("status_edited.json");
    assert!(edited.edited_at.is_some());
    let unicode: Status = fixture("status_unicode.json");
    assert!(!unicode.content.is_ascii());
    assert!(!unicode.tags.is_empty());
}

#[test]
fn account() {
    let account: Account = fixture("account.json");
    assert_eq!(account.id, "23634");
    assert_eq!(account.acct, "noiob@awoo.space");
    assert_eq!(account.fields[0].name, "Pronouns");
    assert_eq!(account.emojis[0].shortcode, "ms_rainbow_flag");
}

#[test]
fn notification() {
    let notification: Notification = fixture("notification.json");
    assert_eq!(notification.kind, NotificationType::Mention);
    assert_eq!(
        notification.group_key.as_deref(),
        Some("ungrouped-34975861")
    );
    assert_eq!(notification.status.unwrap().id, "103270115826048975");
}

#[test]
fn conversation() {
    let conversation: Conversation = fixture("conversation.json");
    assert_eq!(conversation.id, "418450");
    assert!(conversation.unread);
    assert_eq!(conversation.accounts.len(), 1);
    assert!(conversation.last_status.is_some());
}

#[test]
fn announcement_and_reactions() {
    let announcement: Announcement = fixture("announcement.json");
    assert_eq!(announcement.id, "8");
    assert_eq!(announcement.reactions[0].name, "bongoCat");
    let reactions: Vec<Reaction> = fixture("reaction.json");
    assert_eq!(reactions.len(), 2);
}

#[test]
fn media_card_poll_tag_quote_filter() {
    let media: MediaAttachment = fixture("media_attachment.json");
    assert_eq!(media.kind, MediaType::Image);
    let card: PreviewCard = fixture("preview_card.json");
    assert_eq!(card.kind, CardType::Video);
    let poll: Poll = fixture("poll.json");
    assert_eq!(poll.options[0].title, "accept");
    assert_eq!(poll.voters_count, None);
    let tag: Tag = fixture("tag.json");
    assert!(!tag.name.is_empty());
    let quote: Quote = fixture("quote.json");
    assert_eq!(quote.state, QuoteState::Accepted);
    assert_eq!(quote.quoted_status.unwrap().id, "103270115826048975");
    let filter: FilterResult = fixture("filter_result.json");
    assert_eq!(filter.filter.filter_action, FilterAction::Hide);
}

#[test]
fn unknown_enum_values_are_kept() {
    let mut value: serde_json::Value = fixture("notification.json");
    value["type"] = "annual_report".into();
    value["status"]["visibility"] = "local_only".into();
    value["status"]["brand_new_field"] = serde_json::json!({"x": [1, 2]});
    let notification: Notification = serde_json::from_value(value).unwrap();
    assert_eq!(
        notification.kind,
        NotificationType::Other("annual_report".into())
    );
    assert_eq!(notification.kind.as_str(), "annual_report");
    assert_eq!(
        notification.status.unwrap().visibility,
        Visibility::Other("local_only".into())
    );
    let mut media: serde_json::Value = fixture("media_attachment.json");
    media["type"] = "3d-model".into();
    let media: MediaAttachment = serde_json::from_value(media).unwrap();
    assert_eq!(media.kind.to_string(), "3d-model");
}

#[test]
fn boosts_nest_a_status() {
    let inner: serde_json::Value = fixture("status.json");
    let mut outer = inner.clone();
    outer["id"] = "2".into();
    outer["reblog"] = inner;
    let status: Status = serde_json::from_value(outer).unwrap();
    assert_eq!(status.reblog.unwrap().id, "103270115826048975");
}
