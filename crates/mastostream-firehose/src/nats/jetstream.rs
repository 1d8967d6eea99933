//! The JetStream API as requests on a [`Connection`]: JSON on
//! `$JS.API.<operation>` subjects, answered with JSON or
//! `{"error":{"code","err_code","description"}}`; a publish to a stream's
//! subject answered with `{"stream","seq","duplicate"}`; a direct get
//! answered with the stored message itself (status 404 when there is
//! none). Facts from nats-server's `server/jetstream_api.go` and
//! `server/stream.go` (nats-io/nats-server).

use std::collections::HashMap;
use std::time::Duration;

use super::wire::Message;
use super::{Connection, Error};

/// The stream settings the firehose uses; the rest are the server's
/// defaults (limits retention, file storage, one replica, no limits).
#[derive(Debug, Clone, Default)]
pub struct StreamConfig {
    pub name: String,
    pub subjects: Vec<String>,
    /// Zero: kept until a limit removes it.
    pub max_age: Duration,
    /// Zero: the server's default (two minutes, or `max_age` if shorter).
    pub duplicate_window: Duration,
    /// Zero: no limit.
    pub max_messages_per_subject: i64,
    /// Refuse new messages at a limit instead of removing old ones.
    pub discard_new: bool,
    pub allow_rollup: bool,
    pub deny_delete: bool,
    pub allow_direct: bool,
}

impl StreamConfig {
    fn to_json(&self) -> serde_json::Value {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        serde_json::json!({
            "name": self.name,
            "subjects": self.subjects,
            "retention": "limits",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": nanos(self.max_age),
            "max_msgs_per_subject": if self.max_messages_per_subject == 0 { -1 } else { self.max_messages_per_subject },
            "max_msg_size": -1,
            "discard": if self.discard_new { "new" } else { "old" },
            "storage": "file",
            "num_replicas": 1,
            "duplicate_window": nanos(self.duplicate_window),
            "allow_rollup_hdrs": self.allow_rollup,
            "deny_delete": self.deny_delete,
            "allow_direct": self.allow_direct,
        })
    }
}

/// JetStream's answer to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubAck {
    /// The message's sequence in the stream (a key's revision).
    pub seq: u64,
    /// The stream already held a message with this `Nats-Msg-Id`.
    pub duplicate: bool,
}

/// JetStream over one connection.
#[derive(Debug)]
pub struct JetStream {
    connection: Connection,
}

/// "stream not found"
const STREAM_NOT_FOUND: u32 = 10059;
/// "stream name already in use" (another worker made it first)
const STREAM_NAME_IN_USE: u32 = 10058;

impl JetStream {
    /// Connects to `url`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<JetStream, Error> {
        Ok(JetStream {
            connection: Connection::connect(url, timeout).await?,
        })
    }

    /// A JSON reply, or its `error` as [`Error::Api`].
    fn answer(reply: &Message) -> Result<serde_json::Value, Error> {
        let value: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| {
            Error::Protocol(format!(
                "a JetStream reply that is not JSON ({e}): {}",
                String::from_utf8_lossy(&reply.payload)
            ))
        })?;
        if let Some(error) = value.get("error") {
            return Err(Error::Api {
                // Out of range is no code at all, not another one
                // (4294977355 wrapped to 10059, "stream not found").
                code: error["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(0),
                err_code: error["err_code"]
                    .as_u64()
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(0),
                description: error["description"]
                    .as_str()
                    .unwrap_or("(no description)")
                    .to_owned(),
            });
        }
        Ok(value)
    }

    async fn api(&self, operation: &str, body: &[u8]) -> Result<serde_json::Value, Error> {
        let reply = self
            .connection
            .request(&format!("$JS.API.{operation}"), &[], body)
            .await?;
        JetStream::answer(&reply)
    }

    /// Makes the stream unless one of that name exists (whose settings are
    /// then left as they are).
    pub async fn ensure_stream(&self, config: &StreamConfig) -> Result<(), Error> {
        match self.api(&format!("STREAM.INFO.{}", config.name), b"").await {
            Ok(_) => return Ok(()),
            Err(Error::Api {
                err_code: STREAM_NOT_FOUND,
                ..
            }) => {}
            Err(other) => return Err(other),
        }
        let body = config.to_json().to_string();
        match self
            .api(&format!("STREAM.CREATE.{}", config.name), body.as_bytes())
            .await
        {
            Ok(_)
            | Err(Error::Api {
                err_code: STREAM_NAME_IN_USE,
                ..
            }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Publishes and waits for JetStream to store it.
    pub async fn publish(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<PubAck, Error> {
        let reply = self.connection.request(subject, headers, payload).await?;
        let ack = JetStream::answer(&reply)?;
        let seq = ack["seq"]
            .as_u64()
            .ok_or_else(|| Error::Protocol(format!("an acknowledgement without seq: {ack}")))?;
        Ok(PubAck {
            seq,
            duplicate: ack["duplicate"].as_bool().unwrap_or(false),
        })
    }

    /// The subjects holding messages in `stream` that match `filter`, with
    /// how many each holds.
    pub async fn subjects(
        &self,
        stream: &str,
        filter: &str,
    ) -> Result<HashMap<String, u64>, Error> {
        let mut subjects = HashMap::new();
        loop {
            let before = subjects.len();
            let request = serde_json::json!({ "subjects_filter": filter, "offset": before });
            let info = self
                .api(
                    &format!("STREAM.INFO.{stream}"),
                    request.to_string().as_bytes(),
                )
                .await?;
            let page = info["state"]["subjects"].as_object();
            let got = page.map_or(0, |p| p.len());
            for (subject, count) in page.into_iter().flatten() {
                subjects.insert(subject.clone(), count.as_u64().unwrap_or(0));
            }
            let total = info["total"].as_u64().unwrap_or(0) as usize;
            // A page with nothing new (a server that ignores the offset, or
            // subjects aging out between pages) ends it too.
            if got == 0 || subjects.len() == before || subjects.len() >= total {
                return Ok(subjects);
            }
        }
    }

    /// The last message on `subject` in `stream` (which must allow direct
    /// gets), `None` when there is none.
    pub async fn last_message(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<Message>, Error> {
        let request = serde_json::json!({ "last_by_subj": subject }).to_string();
        let reply = self
            .connection
            .request(
                &format!("$JS.API.DIRECT.GET.{stream}"),
                &[],
                request.as_bytes(),
            )
            .await?;
        match reply.status {
            None => Ok(Some(reply)),
            Some(404) => Ok(None),
            Some(status) => Err(Error::Api {
                code: status,
                err_code: 0,
                description: format!("direct get of {subject} in {stream} failed"),
            }),
        }
    }
}
