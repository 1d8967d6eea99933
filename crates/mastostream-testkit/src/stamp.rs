//! Ids and times on what the server sends: filled in where missing, made
//! live (as a running Mastodon would send a new post), or left alone.
//!
//! On Mastodon a status's id is made from its `created_at` (see `ids.rs`),
//! so the two are always set together here: a status given a fresh id is
//! also given `created_at` now.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::ids::{IdFormat, IdGenerator};
use crate::publish::Publish;

/// What the server does to a publish's ids and times before it goes out.
///
/// Only statuses (`update`, `status.update`, a notification's `status`, a
/// conversation's `last_status`), notifications and deletes are touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Stamp {
    /// Fills in only what is missing: a status or notification without a
    /// numeric id gets a fresh one and `created_at` now, an edit without
    /// `edited_at` gets now, a conversation without an id gets one. What a
    /// test gives is kept, so recorded payloads go out byte for byte.
    #[default]
    Missing,
    /// As a live server sends a new post: every status and notification gets
    /// a fresh id and `created_at` now, an edit `edited_at` now. Edits and
    /// deletes of a status restamped earlier follow it to its new id.
    Live,
    /// Exactly as given: nothing is filled in.
    Verbatim,
}

/// Recorded status ids and the fresh ids live publishes gave them, so a
/// replayed delete or edit names the status the clients actually saw.
#[derive(Debug, Default)]
pub struct Aliases {
    fresh: HashMap<u64, u64>,
    capacity: usize,
}

impl Aliases {
    /// Remembers at most about `capacity` ids.
    pub fn with_capacity(capacity: usize) -> Aliases {
        Aliases {
            fresh: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn insert(&mut self, recorded: u64, fresh: u64) {
        // A replay reuses the same recorded ids on every loop, so the map
        // stays small; only a test inventing ids without end fills it, and
        // then forgetting them all is cheaper than tracking their age.
        if self.fresh.len() >= self.capacity {
            self.fresh.clear();
        }
        self.fresh.insert(recorded, fresh);
    }

    fn get(&self, recorded: u64) -> Option<u64> {
        self.fresh.get(&recorded).copied()
    }
}

/// Applies `publish.stamp` to its payload, `now_millis` being the time it goes out.
pub fn apply(publish: &mut Publish, ids: &IdGenerator, aliases: &mut Aliases, now_millis: u64) {
    let live = match publish.stamp {
        Stamp::Verbatim => return,
        Stamp::Missing => false,
        Stamp::Live => true,
    };
    let now = timestamp(now_millis);
    let payload = &mut publish.payload;
    match publish.event.as_str() {
        "update" if payload.is_object() && (live || ids.read(&payload["id"]).is_none()) => {
            fresh_status(payload, ids, aliases, now_millis, &now);
        }
        "status.update" if payload.is_object() => {
            let recorded = ids.read(&payload["id"]);
            let alias = if live {
                recorded.and_then(|id| aliases.get(id))
            } else {
                None
            };
            match alias {
                // The edit of a status sent live: its id and creation time
                // are the ones the clients got (the time is in the id).
                Some(fresh) => {
                    payload["id"] = ids.write(fresh).into();
                    payload["created_at"] = timestamp(fresh >> 16).into();
                }
                None if recorded.is_none() => {
                    fresh_status(payload, ids, aliases, now_millis, &now);
                }
                None => {}
            }
            if live || payload["edited_at"].is_null() {
                payload["edited_at"] = now.into();
            }
        }
        "delete" if live => {
            let recorded = match payload {
                Value::String(text) => ids.format.read(text),
                Value::Number(n) => n.as_u64(),
                _ => None,
            };
            if let Some(fresh) = recorded.and_then(|id| aliases.get(id)) {
                *payload = ids.write(fresh).into();
            }
        }
        "notification" if payload.is_object() => {
            if live || ids.read(&payload["id"]).is_none() {
                payload["id"] = ids.write(ids.next_at(now_millis)).into();
                payload["created_at"] = now.clone().into();
            }
            let status = &mut payload["status"];
            if status.is_object() && (live || ids.read(&status["id"]).is_none()) {
                fresh_status(status, ids, aliases, now_millis, &now);
            }
        }
        "conversation" if payload.is_object() => {
            if payload["id"].is_null() {
                payload["id"] = ids.write(ids.next_at(now_millis)).into();
            }
            let status = &mut payload["last_status"];
            if status.is_object() && (live || ids.read(&status["id"]).is_none()) {
                fresh_status(status, ids, aliases, now_millis, &now);
            }
        }
        _ => {}
    }
}

/// Gives a status a fresh id and `created_at` now, remembering the id it had.
fn fresh_status(
    status: &mut Value,
    ids: &IdGenerator,
    aliases: &mut Aliases,
    now_millis: u64,
    now: &str,
) {
    // GoToSocial dates a remote status's id by its `created_at`, however
    // late it federates in (internal/federation/dereferencing/status.go,
    // `id.NewULIDFromTime`), and so does Iceshrimp.NET a remote note's by
    // its `published` (Iceshrimp.Backend/Core/Services/NoteService.cs,
    // `IdHelpers.GenerateSnowflakeId(createdAt)`): a test gives such a
    // status its `created_at`.
    let dates_remote = matches!(ids.format, IdFormat::Ulid | IdFormat::Iceshrimp);
    let remote_created = (dates_remote
        && status["account"]["acct"]
            .as_str()
            .is_some_and(|acct| acct.contains('@')))
    .then(|| status["created_at"].as_str().and_then(millis_of))
    .flatten();
    let fresh = match remote_created {
        Some(created) => ids.dated(created),
        None => ids.next_at(now_millis),
    };
    if let Some(recorded) = ids.read(&status["id"]) {
        aliases.insert(recorded, fresh);
    }
    status["id"] = ids.write(fresh).into();
    if remote_created.is_none() {
        status["created_at"] = now.into();
    }
    let fresh = ids.write(fresh);
    // A new post has addresses of its own: Mastodon's end with its id.
    for key in ["uri", "url"] {
        if let Some((base, _)) = status[key].as_str().and_then(|text| text.rsplit_once('/')) {
            status[key] = format!("{base}/{fresh}").into();
        }
    }
}

/// Milliseconds since the epoch of a timestamp as Mastodon writes them.
fn millis_of(text: &str) -> Option<u64> {
    let time = mastostream_proto::parse_timestamp(text)?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

/// Milliseconds since the epoch as Mastodon writes times:
/// `2026-12-01T08:09:42.123Z` (UTC, always three decimals).
pub fn timestamp(millis: u64) -> String {
    let days = (millis / 86_400_000) as i64;
    let of_day = millis % 86_400_000;
    // The civil date from days since the epoch (Howard Hinnant's algorithm,
    // the inverse of the one in `mastostream_proto::parse_timestamp`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use mastostream_proto::parse_timestamp;
    use serde_json::json;

    use super::*;

    /// An id as Mastodon writes it (a string of digits), or a JSON number.
    fn numeric_id(id: &Value) -> Option<u64> {
        IdGenerator::default().read(id)
    }

    const NOW: u64 = 1_796_112_582_123; // 2026-12-01T08:09:42.123Z

    fn stamped(publish: Publish) -> (Publish, Aliases) {
        let mut aliases = Aliases::with_capacity(100);
        let ids = IdGenerator::default();
        let mut publish = publish;
        apply(&mut publish, &ids, &mut aliases, NOW);
        (publish, aliases)
    }

    #[test]
    fn timestamps_as_mastodon_writes_them() {
        assert_eq!(timestamp(NOW), "2026-12-01T08:09:42.123Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(timestamp(1_575_776_913_901), "2019-12-08T03:48:33.901Z");
        for millis in (0..5_000_000_000_000u64).step_by(7_919_876_543) {
            let back = parse_timestamp(&timestamp(millis)).unwrap();
            assert_eq!(
                back.duration_since(UNIX_EPOCH).unwrap().as_millis(),
                millis as u128
            );
        }
    }

    #[test]
    fn missing_fills_in_only_what_is_missing() {
        let given = json!({"id": "7", "created_at": "2019-01-01T00:00:00.000Z"});
        let (p, _) = stamped(Publish::new("update", given.clone()));
        assert_eq!(p.payload, given);
        let (p, _) = stamped(Publish::new("update", json!({"id": null, "content": "x"})));
        assert_eq!(p.payload["created_at"], "2026-12-01T08:09:42.123Z");
        assert_eq!(numeric_id(&p.payload["id"]).unwrap() >> 16, NOW);
        let (p, _) = stamped(Publish::new("status.update", json!({"id": "7"})));
        assert_eq!(
            p.payload,
            json!({"id": "7", "edited_at": "2026-12-01T08:09:42.123Z"})
        );
    }

    #[test]
    fn live_restamps_and_edits_and_deletes_follow() {
        let mut aliases = Aliases::with_capacity(100);
        let ids = IdGenerator::default();
        let recorded = json!({"id": "7", "created_at": "2019-01-01T00:00:00.000Z"});
        let mut update = Publish::new("update", recorded.clone()).live();
        apply(&mut update, &ids, &mut aliases, NOW);
        let fresh = update.payload["id"].as_str().unwrap().to_owned();
        assert_ne!(fresh, "7");
        assert_eq!(update.payload["created_at"], "2026-12-01T08:09:42.123Z");

        let mut edit = Publish::new("status.update", recorded).live();
        apply(&mut edit, &ids, &mut aliases, NOW + 5000);
        assert_eq!(edit.payload["id"].as_str(), Some(fresh.as_str()));
        assert_eq!(edit.payload["created_at"], "2026-12-01T08:09:42.123Z");
        assert_eq!(edit.payload["edited_at"], "2026-12-01T08:09:47.123Z");

        let mut delete = Publish::new("delete", "7").live();
        apply(&mut delete, &ids, &mut aliases, NOW);
        assert_eq!(delete.payload.as_str(), Some(fresh.as_str()));
        let mut unknown = Publish::new("delete", "8").live();
        apply(&mut unknown, &ids, &mut aliases, NOW);
        assert_eq!(unknown.payload, "8");
    }

    #[test]
    fn live_notification_restamps_its_status_too() {
        let notification = json!({
            "id": "40000001", "created_at": "2019-11-23T07:49:02.064Z", "type": "mention",
            "status": {"id": "5", "created_at": "2019-11-23T07:49:01.000Z"},
        });
        let (p, _) = stamped(Publish::new("notification", notification).live());
        let (id, status_id) = (&p.payload["id"], &p.payload["status"]["id"]);
        assert!(numeric_id(id).unwrap() < numeric_id(status_id).unwrap());
        assert_eq!(p.payload["created_at"], "2026-12-01T08:09:42.123Z");
        assert_eq!(
            p.payload["status"]["created_at"],
            "2026-12-01T08:09:42.123Z"
        );
    }

    #[test]
    fn verbatim_touches_nothing() {
        for (event, payload) in [
            ("update", json!({"content": "no id"})),
            ("status.update", json!({"id": "7"})),
            ("notification", json!({"type": "follow"})),
            ("conversation", json!({"last_status": {}})),
            ("delete", json!("7")),
        ] {
            let (p, _) = stamped(Publish::new(event, payload.clone()).verbatim());
            assert_eq!(p.payload, payload, "{event}");
        }
    }
}
