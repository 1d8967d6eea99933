//! A JetStream key-value bucket, as nats-server stores one: stream
//! `KV_<bucket>` on subjects `$KV.<bucket>.<key>`, one message per key,
//! its sequence the key's revision; `Nats-Expected-Last-Subject-Sequence`
//! makes a write conditional on the revision (`0`: on there being none); a
//! delete is a message with `KV-Operation: DEL`. Facts from the key-value
//! design (nats-io/nats-architecture-and-design, ADR-8) and nats-server's
//! `server/stream.go`.

use std::sync::Arc;
use std::time::Duration;

use super::{Error, JetStream, StreamConfig};

const EXPECTED_REVISION: &str = "Nats-Expected-Last-Subject-Sequence";
const OPERATION: &str = "KV-Operation";

/// One bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    jetstream: Arc<JetStream>,
    name: String,
}

impl Bucket {
    /// Opens the bucket, making its stream if missing; its entries age out
    /// after `max_age` (zero: never).
    pub async fn open(
        jetstream: Arc<JetStream>,
        name: &str,
        max_age: Duration,
    ) -> Result<Bucket, Error> {
        jetstream
            .ensure_stream(&StreamConfig {
                name: format!("KV_{name}"),
                subjects: vec![format!("$KV.{name}.>")],
                max_age,
                max_messages_per_subject: 1,
                discard_new: true,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..StreamConfig::default()
            })
            .await?;
        Ok(Bucket {
            jetstream,
            name: name.to_owned(),
        })
    }

    fn subject(&self, key: &str) -> String {
        format!("$KV.{}.{key}", self.name)
    }

    fn stream(&self) -> String {
        format!("KV_{}", self.name)
    }

    /// Writes `value`; returns its revision.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<u64, Error> {
        let ack = self
            .jetstream
            .publish(&self.subject(key), &[], value)
            .await?;
        Ok(ack.seq)
    }

    /// Writes `value` if the key's revision is still `revision`; returns
    /// the new one.
    pub async fn update(&self, key: &str, value: &[u8], revision: u64) -> Result<u64, Error> {
        let revision = revision.to_string();
        let ack = self
            .jetstream
            .publish(&self.subject(key), &[(EXPECTED_REVISION, &revision)], value)
            .await?;
        Ok(ack.seq)
    }

    /// Writes `value` if the key holds nothing (never written, aged out or
    /// deleted); returns its revision.
    pub async fn create(&self, key: &str, value: &[u8]) -> Result<u64, Error> {
        match self.update(key, value, 0).await {
            Err(error) if error.is_wrong_last_sequence() => {
                // A deleted key still has its marker: write over it at the
                // marker's revision.
                match self.entry(key).await? {
                    Some(entry) if entry.deleted => self.update(key, value, entry.revision).await,
                    _ => Err(error),
                }
            }
            other => other,
        }
    }

    /// The key's value, `None` when it holds nothing.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .entry(key)
            .await?
            .filter(|entry| !entry.deleted)
            .map(|entry| entry.value))
    }

    /// Deletes the key if its revision is still `revision`.
    pub async fn delete(&self, key: &str, revision: u64) -> Result<(), Error> {
        let revision = revision.to_string();
        self.jetstream
            .publish(
                &self.subject(key),
                &[(OPERATION, "DEL"), (EXPECTED_REVISION, &revision)],
                b"",
            )
            .await?;
        Ok(())
    }

    /// How many keys hold a value or a delete marker (those that have not
    /// aged out). The firehose counts workers with it, whose keys are
    /// never deleted, only left to age out.
    pub async fn count_keys_written(&self) -> Result<usize, Error> {
        let filter = format!("$KV.{}.>", self.name);
        Ok(self
            .jetstream
            .subjects(&self.stream(), &filter)
            .await?
            .len())
    }

    async fn entry(&self, key: &str) -> Result<Option<Entry>, Error> {
        let Some(message) = self
            .jetstream
            .last_message(&self.stream(), &self.subject(key))
            .await?
        else {
            return Ok(None);
        };
        let revision = message
            .header("Nats-Sequence")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Protocol("a direct get without Nats-Sequence".into()))?;
        let deleted = matches!(message.header(OPERATION), Some("DEL" | "PURGE"));
        Ok(Some(Entry {
            revision,
            deleted,
            value: message.payload,
        }))
    }
}

struct Entry {
    revision: u64,
    deleted: bool,
    value: Vec<u8>,
}
