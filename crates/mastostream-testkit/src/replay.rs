//! Replaying a recorded stream: at a fixed rate through the hub, or to each
//! connection at its own pace (`rate 0`), framed once and shared.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mastostream_proto::Channel;

use crate::hub::{Hub, public_fanout};
use crate::publish::{Encoded, Publish};
use crate::stamp::Stamp;
use crate::store::StatusFacts;

/// Reads a replay file: JSON lines, each a publish body, plain or gzipped
/// (as the bundled one is). Blank lines are skipped.
pub fn load(path: &Path) -> Result<Vec<Publish>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text_of(&bytes)
        .and_then(|text| parse(&text))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The text of a replay file, gunzipped when it starts with gzip's magic bytes.
fn text_of(bytes: &[u8]) -> Result<String, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string());
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| format!("gzip: {e}"))?;
    Ok(text)
}

/// Parses replay text (JSON lines of publish bodies).
pub fn parse(text: &str) -> Result<Vec<Publish>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            Publish::from_json(line.as_bytes()).map_err(|e| format!("line {}: {e}", n + 1))
        })
        .collect()
}

/// The replay shipped with this crate: a few thousand varied events made from
/// Mastodon's documented example entities, the same every time.
pub fn bundled() -> Vec<Publish> {
    // Gzipped, it is 0.25 MB of the binary instead of 7 MB; unpacking it
    // takes a few tens of milliseconds.
    let gzipped = include_bytes!("../data/replay.jsonl.gz");
    text_of(gzipped)
        .and_then(|text| parse(&text))
        .unwrap_or_default()
}

/// A replay framed once: each event with the streams it goes to.
#[derive(Debug)]
pub struct PreparedReplay {
    entries: Vec<(Vec<Channel>, Arc<Encoded>)>,
}

impl PreparedReplay {
    /// Frames every event and works out where it goes, without touching any store.
    pub fn new(events: &[Publish]) -> PreparedReplay {
        let entries = events
            .iter()
            .map(|publish| {
                let targets = match (&publish.stream, publish.event.as_str()) {
                    // As the hub does: Mastodon publishes a notification on
                    // both of the user's channels.
                    (Some(Channel::User), "notification") => {
                        vec![Channel::User, Channel::UserNotification]
                    }
                    (Some(stream), _) => vec![stream.clone()],
                    (None, "update" | "status.update" | "delete")
                        if publish.payload.is_object() =>
                    {
                        public_fanout(&StatusFacts::of(&publish.payload))
                    }
                    (None, "delete") => {
                        vec![Channel::Public, Channel::PublicLocal, Channel::PublicRemote]
                    }
                    (None, "notification") => vec![Channel::User, Channel::UserNotification],
                    (None, "conversation") => vec![Channel::Direct],
                    (None, _) => vec![Channel::User],
                };
                let data = publish.data();
                (
                    targets,
                    Arc::new(Encoded::new(&publish.event, data.as_deref())),
                )
            })
            .collect();
        PreparedReplay { entries }
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One connection's position in a paced replay, looping forever over the
/// events that go to its subscriptions.
#[derive(Debug)]
pub struct Cursor {
    replay: Arc<PreparedReplay>,
    position: usize,
}

impl Cursor {
    /// A cursor at the start of the replay.
    pub fn new(replay: Arc<PreparedReplay>) -> Cursor {
        Cursor {
            replay,
            position: 0,
        }
    }

    /// The next event for one of `subscriptions`, with the subscription it
    /// matched; `None` if the replay has none for them.
    pub fn next_for<'s>(
        &mut self,
        subscriptions: &'s [Channel],
    ) -> Option<(Arc<Encoded>, &'s Channel)> {
        let len = self.replay.entries.len();
        for _ in 0..len {
            let (targets, encoded) = &self.replay.entries[self.position];
            self.position = (self.position + 1) % len;
            let matched = subscriptions
                .iter()
                .find(|s| targets.iter().any(|t| s.matches(t)));
            if let Some(subscription) = matched {
                return Some((encoded.clone(), subscription));
            }
        }
        None
    }
}

/// Publishes `events` through the hub in a loop at `rate` events per second,
/// each as a live server sends it (fresh ids, `created_at` now; see
/// [`Stamp::Live`]) unless its line asks for `"stamp": "verbatim"`, so the
/// stream looks live and the REST timelines stay in order. Runs until the
/// hub is dropped.
pub async fn run_rated(hub: std::sync::Weak<Hub>, events: Vec<Publish>, rate: f64) {
    if events.is_empty() || rate.is_nan() || rate <= 0.0 {
        return;
    }
    let start = tokio::time::Instant::now();
    let mut sent: u64 = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let mut publish = events[(sent % events.len() as u64) as usize].clone();
            if publish.stamp != Stamp::Verbatim {
                publish.stamp = Stamp::Live;
            }
            hub.publish(publish);
            sent += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_replay_parses_and_is_varied() {
        let events = bundled();
        assert!(events.len() >= 2000, "{}", events.len());
        for name in [
            "update",
            "delete",
            "notification",
            "status.update",
            "conversation",
        ] {
            assert!(events.iter().any(|e| e.event == name), "no {name}");
        }
    }

    #[test]
    fn load_reads_plain_and_gzipped_files() {
        let dir = std::env::temp_dir().join(format!("testkit-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = r#"{"stream":"user","event":"delete","payload":"7"}"#;
        let plain = dir.join("plain.jsonl");
        std::fs::write(&plain, line).unwrap();
        let gzipped = dir.join("packed.jsonl.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, line.as_bytes()).unwrap();
        std::fs::write(&gzipped, encoder.finish().unwrap()).unwrap();
        assert_eq!(load(&plain).unwrap(), load(&gzipped).unwrap());
        assert_eq!(load(&plain).unwrap()[0].data().as_deref(), Some("7"));
        std::fs::write(&gzipped, [0x1f, 0x8b, 0, 0]).unwrap();
        assert!(load(&gzipped).unwrap_err().contains("gzip"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_notification_for_the_user_also_goes_to_user_notification() {
        let events = parse(
            r#"{"stream":"user","event":"notification","payload":{"id":"1","type":"follow"}}
{"stream":"user","event":"delete","payload":"2"}"#,
        )
        .unwrap();
        let replay = Arc::new(PreparedReplay::new(&events));
        let mut cursor = Cursor::new(replay);
        let (encoded, matched) = cursor.next_for(&[Channel::UserNotification]).unwrap();
        assert_eq!(encoded.event, "notification");
        assert_eq!(matched, &Channel::UserNotification);
        let (again, _) = cursor.next_for(&[Channel::UserNotification]).unwrap();
        assert_eq!(again.event, "notification", "the delete is for `user` only");
    }

    #[test]
    fn cursor_loops_over_matching_events() {
        let events = parse(
            r#"{"stream":"user","event":"delete","payload":"1"}
{"stream":"public","event":"delete","payload":"2"}
{"stream":"user","event":"delete","payload":"3"}"#,
        )
        .unwrap();
        let replay = Arc::new(PreparedReplay::new(&events));
        let mut cursor = Cursor::new(replay.clone());
        let datas: Vec<_> = (0..4)
            .map(|_| {
                cursor
                    .next_for(&[Channel::User])
                    .unwrap()
                    .0
                    .sse_data
                    .clone()
            })
            .collect();
        assert_eq!(
            datas,
            ["data: 1\n\n", "data: 3\n\n", "data: 1\n\n", "data: 3\n\n"]
        );
        assert!(
            Cursor::new(replay.clone())
                .next_for(&[Channel::Direct])
                .is_none()
        );
        let both = [Channel::Direct, Channel::Public];
        let (encoded, matched) = Cursor::new(replay).next_for(&both).unwrap();
        assert_eq!(&encoded.sse_data[..], b"data: 2\n\n");
        assert_eq!(matched, &Channel::Public);
    }
}
