//! What was published, kept for the REST timelines that catch-up reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mastostream_proto::{Channel, normalize_hashtag};
use serde_json::Value;

/// How many records each collection keeps; the oldest go first.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A status as the timelines need it: its JSON and what it is filtered by.
#[derive(Debug, Clone)]
pub struct StoredStatus {
    /// The status JSON as published.
    pub json: Arc<str>,
    /// The author is on this server (`acct` has no `@`).
    pub local: bool,
    /// It has media attachments.
    pub has_media: bool,
    /// Its tags, normalised.
    pub tags: Vec<String>,
    /// In the home timeline (published to `user`).
    pub home: bool,
    /// In the public timelines.
    pub public: bool,
    /// The lists it is in.
    pub lists: Vec<String>,
}

/// Facts about a status payload that decide where it goes.
#[derive(Debug, Clone, Default)]
pub struct StatusFacts {
    /// The author is local.
    pub local: bool,
    /// It has media.
    pub has_media: bool,
    /// Its tags, lower-cased.
    pub tags: Vec<String>,
    /// Its visibility is `public` (or not given).
    pub public_visibility: bool,
}

impl StatusFacts {
    /// Reads the facts from a status object.
    pub fn of(status: &Value) -> StatusFacts {
        let acct = status["account"]["acct"].as_str().unwrap_or("");
        StatusFacts {
            local: !acct.contains('@'),
            has_media: status["media_attachments"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            tags: status["tags"]
                .as_array()
                .map(|tags| {
                    tags.iter()
                        .filter_map(|t| t["name"].as_str())
                        .map(normalize_hashtag)
                        .collect()
                })
                .unwrap_or_default(),
            public_visibility: matches!(status["visibility"].as_str(), None | Some("public")),
        }
    }
}

/// The REST side's records.
#[derive(Debug)]
pub struct Store {
    capacity: usize,
    statuses: BTreeMap<u64, StoredStatus>,
    notifications: BTreeMap<u64, Arc<str>>,
    /// Conversations ordered by their last status id, as Mastodon pages them.
    conversations: BTreeMap<u64, Arc<str>>,
    conversation_keys: HashMap<String, u64>,
}

/// Which statuses a timeline request wants.
#[derive(Debug, Clone)]
pub enum TimelineFilter {
    /// `/api/v1/timelines/home`.
    Home,
    /// `/api/v1/timelines/public` with `local` / `remote` / `only_media`.
    Public {
        /// Local only.
        local: bool,
        /// Remote only.
        remote: bool,
        /// With media only.
        only_media: bool,
    },
    /// `/api/v1/timelines/tag/:tag` with `local` / `remote` / `only_media`.
    Tag {
        /// The tag, lower-cased.
        tag: String,
        /// Local only.
        local: bool,
        /// Remote only.
        remote: bool,
        /// With media only.
        only_media: bool,
    },
    /// `/api/v1/timelines/list/:id`.
    List(String),
}

impl TimelineFilter {
    fn admits(&self, s: &StoredStatus) -> bool {
        let place = |local: bool, remote: bool, only_media: bool| {
            (!local || s.local) && (!remote || !s.local) && (!only_media || s.has_media)
        };
        match self {
            TimelineFilter::Home => s.home,
            TimelineFilter::Public {
                local,
                remote,
                only_media,
            } => s.public && place(*local, *remote, *only_media),
            TimelineFilter::Tag {
                tag,
                local,
                remote,
                only_media,
            } => s.public && s.tags.contains(tag) && place(*local, *remote, *only_media),
            TimelineFilter::List(id) => s.lists.contains(id),
        }
    }
}

/// `max_id`, `since_id`, `min_id` and `limit`, as Mastodon reads them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageParams {
    /// Older than this id.
    pub max_id: Option<u64>,
    /// Newer than this id, newest first.
    pub since_id: Option<u64>,
    /// Newer than this id, the ones right after it (still returned newest first).
    pub min_id: Option<u64>,
    /// How many, at most.
    pub limit: usize,
}

/// One page, newest first, with the ids for the `Link` header.
#[derive(Debug, Default)]
pub struct Page {
    /// The records' JSON, newest first.
    pub items: Vec<Arc<str>>,
    /// The newest id in the page (for `rel="prev"`).
    pub newest: Option<u64>,
    /// The oldest id in the page (for `rel="next"`).
    pub oldest: Option<u64>,
}

fn paginate<'a, T: 'a>(
    map: &'a BTreeMap<u64, T>,
    params: PageParams,
    mut admit: impl FnMut(&T) -> bool,
    json: impl Fn(&T) -> Arc<str>,
) -> Page {
    use std::ops::Bound::{Excluded, Unbounded};
    // With min_id, Mastodon ignores since_id.
    let lower = params
        .min_id
        .or(params.since_id)
        .map_or(Unbounded, Excluded);
    let upper = params.max_id.map_or(Unbounded, Excluded);
    // An empty or inverted range (max_id <= since_id) has nothing in it.
    if let (Excluded(lo), Excluded(hi)) = (lower, upper)
        && lo.saturating_add(1) >= hi
    {
        return Page::default();
    }
    let range = map.range((lower, upper));
    let picked: Vec<(u64, &T)> = if params.min_id.is_some() {
        let mut ascending: Vec<_> = range
            .filter(|(_, t)| admit(t))
            .take(params.limit)
            .map(|(id, t)| (*id, t))
            .collect();
        ascending.reverse();
        ascending
    } else {
        range
            .rev()
            .filter(|(_, t)| admit(t))
            .take(params.limit)
            .map(|(id, t)| (*id, t))
            .collect()
    };
    Page {
        newest: picked.first().map(|(id, _)| *id),
        oldest: picked.last().map(|(id, _)| *id),
        items: picked.into_iter().map(|(_, t)| json(t)).collect(),
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Store {
    /// A store keeping at most `capacity` records of each kind.
    pub fn with_capacity(capacity: usize) -> Self {
        Store {
            capacity: capacity.max(1),
            statuses: BTreeMap::new(),
            notifications: BTreeMap::new(),
            conversations: BTreeMap::new(),
            conversation_keys: HashMap::new(),
        }
    }

    /// Records a status published to `streams`, or updates an edited one.
    pub fn put_status(
        &mut self,
        id: u64,
        json: Arc<str>,
        facts: &StatusFacts,
        streams: &[Channel],
    ) {
        let entry = self.statuses.entry(id).or_insert_with(|| StoredStatus {
            json: json.clone(),
            local: facts.local,
            has_media: facts.has_media,
            tags: facts.tags.clone(),
            home: false,
            public: false,
            lists: Vec::new(),
        });
        entry.json = json;
        entry.has_media = facts.has_media;
        entry.tags = facts.tags.clone();
        for stream in streams {
            match stream {
                Channel::User => entry.home = true,
                Channel::List(list) if !entry.lists.contains(list) => {
                    entry.lists.push(list.clone())
                }
                Channel::List(_) | Channel::UserNotification | Channel::Direct => {}
                _ => entry.public = true,
            }
        }
        while self.statuses.len() > self.capacity {
            self.statuses.pop_first();
        }
    }

    /// A stored status.
    pub fn status(&self, id: u64) -> Option<&StoredStatus> {
        self.statuses.get(&id)
    }

    /// Removes a deleted status from every timeline.
    pub fn delete_status(&mut self, id: u64) -> Option<StoredStatus> {
        self.statuses.remove(&id)
    }

    /// Records a notification.
    pub fn put_notification(&mut self, id: u64, json: Arc<str>) {
        self.notifications.insert(id, json);
        while self.notifications.len() > self.capacity {
            self.notifications.pop_first();
        }
    }

    /// Records a conversation, keyed for paging by its last status id.
    pub fn put_conversation(&mut self, conversation_id: &str, key: u64, json: Arc<str>) {
        if let Some(old) = self
            .conversation_keys
            .insert(conversation_id.to_owned(), key)
        {
            self.conversations.remove(&old);
        }
        self.conversations.insert(key, json);
        while self.conversations.len() > self.capacity {
            if let Some((old, _)) = self.conversations.pop_first() {
                self.conversation_keys.retain(|_, k| *k != old);
            }
        }
    }

    /// A page of a status timeline.
    pub fn timeline(&self, filter: &TimelineFilter, params: PageParams) -> Page {
        paginate(
            &self.statuses,
            params,
            |s| filter.admits(s),
            |s| s.json.clone(),
        )
    }

    /// A page of notifications.
    pub fn notifications(&self, params: PageParams) -> Page {
        paginate(&self.notifications, params, |_| true, Arc::clone)
    }

    /// A page of conversations.
    pub fn conversations(&self, params: PageParams) -> Page {
        paginate(&self.conversations, params, |_| true, Arc::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(ids: &[u64]) -> Store {
        let mut store = Store::default();
        for id in ids {
            let facts = StatusFacts {
                local: id % 2 == 0,
                ..Default::default()
            };
            store.put_status(*id, format!("{id}").into(), &facts, &[Channel::Public]);
        }
        store
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.items.iter().map(|s| &**s).collect()
    }

    fn params(max: Option<u64>, since: Option<u64>, min: Option<u64>, limit: usize) -> PageParams {
        PageParams {
            max_id: max,
            since_id: since,
            min_id: min,
            limit,
        }
    }

    const PUBLIC: TimelineFilter = TimelineFilter::Public {
        local: false,
        remote: false,
        only_media: false,
    };

    #[test]
    fn newest_first_with_max_since_and_min() {
        let store = store_with(&(1..=10).collect::<Vec<_>>());
        assert_eq!(
            ids(&store.timeline(&PUBLIC, params(None, None, None, 3))),
            ["10", "9", "8"]
        );
        assert_eq!(
            ids(&store.timeline(&PUBLIC, params(Some(8), None, None, 3))),
            ["7", "6", "5"]
        );
        // since_id: the newest ones after it; min_id: the ones right after it.
        assert_eq!(
            ids(&store.timeline(&PUBLIC, params(None, Some(2), None, 3))),
            ["10", "9", "8"]
        );
        let page = store.timeline(&PUBLIC, params(None, None, Some(2), 3));
        assert_eq!(ids(&page), ["5", "4", "3"]);
        assert_eq!((page.newest, page.oldest), (Some(5), Some(3)));
        assert!(
            store
                .timeline(&PUBLIC, params(Some(3), Some(2), None, 3))
                .items
                .is_empty()
        );
        assert_eq!(
            ids(&store.timeline(&PUBLIC, params(Some(4), Some(1), None, 9))),
            ["3", "2"]
        );
    }

    #[test]
    fn filters_and_deletes() {
        let mut store = store_with(&[1, 2, 3, 4]);
        let local = TimelineFilter::Public {
            local: true,
            remote: false,
            only_media: false,
        };
        assert_eq!(
            ids(&store.timeline(&local, params(None, None, None, 20))),
            ["4", "2"]
        );
        store.delete_status(4);
        assert_eq!(
            ids(&store.timeline(&local, params(None, None, None, 20))),
            ["2"]
        );
        assert!(
            store
                .timeline(&TimelineFilter::Home, params(None, None, None, 20))
                .items
                .is_empty()
        );
    }

    #[test]
    fn conversations_move_to_the_top_when_updated() {
        let mut store = Store::default();
        store.put_conversation("a", 1, "a1".into());
        store.put_conversation("b", 2, "b2".into());
        store.put_conversation("a", 3, "a3".into());
        let page = store.conversations(params(None, None, None, 20));
        assert_eq!(ids(&page), ["a3", "b2"]);
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let mut store = Store::with_capacity(2);
        for id in 1..=3 {
            store.put_notification(id, id.to_string().into());
        }
        assert_eq!(
            ids(&store.notifications(params(None, None, None, 20))),
            ["3", "2"]
        );
    }
}
