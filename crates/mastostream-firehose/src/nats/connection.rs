//! One connection to a NATS server, for requests and their replies: the
//! handshake (`INFO`, `CONNECT`, `PING` → `PONG`), one wildcard
//! subscription on an inbox of its own, and a reading task that hands each
//! reply to whoever waits for it and answers the server's `PING`s. It does
//! not reconnect: once the connection breaks, every request fails with the
//! reason, and the firehose's loops connect again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::oneshot;

use super::Error;
use super::wire::{self, Decoder, Message, ServerOp};

/// How long a request waits for its reply.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom to connect, from `nats://[user:password@|token@]host[:port]`.
#[derive(Clone, PartialEq, Eq)]
struct Address {
    host_port: String,
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

// Credentials never reach a log line.
impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Address")
            .field("host_port", &self.host_port)
            .finish_non_exhaustive()
    }
}

fn parse_address(url: &str) -> Result<Address, Error> {
    let rest = url
        .strip_prefix("nats://")
        .ok_or_else(|| Error::Config("a NATS URL starts with nats://".into()))?;
    let rest = rest.trim_end_matches('/');
    let (credentials, host) = match rest.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host),
        None => (None, rest),
    };
    if host.is_empty() || host.contains('/') {
        return Err(Error::Config("a NATS URL is nats://host[:port]".into()));
    }
    let has_port = match host.rsplit_once(':') {
        Some((before, port)) => {
            (!host.starts_with('[') || before.ends_with(']')) && port.parse::<u16>().is_ok()
        }
        None => false,
    };
    let host_port = if has_port {
        host.to_owned()
    } else {
        format!("{host}:4222")
    };
    let decode = |text: &str| percent_decode(text);
    let (user, password, token) = match credentials {
        None => (None, None, None),
        Some(credentials) => match credentials.split_once(':') {
            Some((user, password)) => (Some(decode(user)), Some(decode(password)), None),
            None => (None, None, Some(decode(credentials))),
        },
    };
    Ok(Address {
        host_port,
        user,
        password,
        token,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the reading task shares with the requesters.
#[derive(Debug)]
struct Shared {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    replies: HashMap<u64, oneshot::Sender<Message>>,
    /// Set when the connection has broken: why.
    broken: Option<String>,
}

/// A connection; dropping it closes the socket.
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    inbox: String,
    next_token: AtomicU64,
    max_payload: usize,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to `url` (`nats://host:port`), giving up after `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Connection, Error> {
        let address = parse_address(url)?;
        tokio::time::timeout(timeout, Connection::handshake(&address))
            .await
            .map_err(|_| Error::Timeout(format!("connecting to {}", address.host_port)))?
    }

    async fn handshake(address: &Address) -> Result<Connection, Error> {
        let socket = TcpStream::connect(&address.host_port)
            .await
            .map_err(|e| Error::Io(format!("{}: {e}", address.host_port)))?;
        let _ = socket.set_nodelay(true);
        let (mut reader, writer) = socket.into_split();
        let mut decoder = Decoder::new();
        let mut buffer = vec![0u8; 16 * 1024];
        let info = match read_op(&mut reader, &mut decoder, &mut buffer).await? {
            ServerOp::Info(info) => info,
            other => {
                return Err(Error::Protocol(format!(
                    "the server opened with {other:?}, not INFO"
                )));
            }
        };
        let info: serde_json::Value = serde_json::from_str(&info)
            .map_err(|e| Error::Protocol(format!("INFO is not JSON: {e}")))?;
        if info["tls_required"].as_bool() == Some(true) {
            return Err(Error::Config(
                "the NATS server requires TLS, which this client does not speak".into(),
            ));
        }
        if info["headers"].as_bool() == Some(false) {
            return Err(Error::Config(
                "the NATS server does not support headers (JetStream needs them)".into(),
            ));
        }
        let max_payload = info["max_payload"].as_u64().unwrap_or(1024 * 1024) as usize;
        let mut connect = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "tls_required": false,
            "lang": "rust-mastostream",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "headers": true,
            "no_responders": true,
            "echo": false,
        });
        if let Some(user) = &address.user {
            connect["user"] = user.as_str().into();
            connect["pass"] = address.password.as_deref().unwrap_or_default().into();
        }
        if let Some(token) = &address.token {
            connect["auth_token"] = token.as_str().into();
        }
        let inbox = format!("_INBOX.{}", unique_token());
        let mut hello = format!("CONNECT {connect}\r\nPING\r\n").into_bytes();
        wire::subscribe(&mut hello, &format!("{inbox}.*"), 1);
        let shared = Arc::new(Shared {
            writer: tokio::sync::Mutex::new(writer),
            waiting: Mutex::new(Waiting::default()),
        });
        write_all(&shared, &hello).await?;
        loop {
            match read_op(&mut reader, &mut decoder, &mut buffer).await? {
                ServerOp::Pong => break,
                ServerOp::Err(text) => return Err(Error::Refused(text)),
                ServerOp::Ping => write_all(&shared, b"PONG\r\n").await?,
                _ => {}
            }
        }
        let reading = read_replies(reader, decoder, shared.clone(), inbox.clone());
        Ok(Connection {
            shared,
            inbox,
            next_token: AtomicU64::new(1),
            max_payload,
            reader: tokio::spawn(reading),
        })
    }

    /// Publishes `payload` to `subject` and waits for the reply (a
    /// JetStream acknowledgement or API response).
    pub async fn request(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<Message, Error> {
        if !wire::is_token_safe(subject)
            || headers
                .iter()
                .any(|(n, v)| !wire::is_token_safe(n) || v.contains(['\r', '\n']))
        {
            return Err(Error::Config(format!(
                "a subject or header NATS cannot carry: {subject:?}"
            )));
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(payload.len() + 128);
        // The server's limit counts the headers too.
        let size = wire::publish(
            &mut out,
            subject,
            &format!("{}.{token}", self.inbox),
            headers,
            payload,
        );
        if size > self.max_payload {
            return Err(Error::TooLarge {
                size,
                max: self.max_payload,
            });
        }
        let (send, receive) = oneshot::channel();
        {
            let mut waiting = lock(&self.shared.waiting);
            if let Some(reason) = &waiting.broken {
                return Err(Error::Closed(reason.clone()));
            }
            waiting.replies.insert(token, send);
        }
        let outcome = self.exchange(subject, &out, receive).await;
        lock(&self.shared.waiting).replies.remove(&token);
        outcome
    }

    /// Writes one whole frame and waits for its reply. A write that fails
    /// or does not finish in time leaves a partial frame on the socket:
    /// the connection is then broken for every request, not used again.
    async fn exchange(
        &self,
        subject: &str,
        frame: &[u8],
        receive: oneshot::Receiver<Message>,
    ) -> Result<Message, Error> {
        let written =
            match tokio::time::timeout(REQUEST_TIMEOUT, write_all(&self.shared, frame)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout(format!("writing on {subject}"))),
            };
        if let Err(error) = written {
            let mut waiting = lock(&self.shared.waiting);
            waiting.broken.get_or_insert_with(|| error.to_string());
            waiting.replies.clear();
            return Err(error);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, receive).await {
            Ok(Ok(reply)) if reply.status == Some(503) => Err(Error::NoResponders(format!(
                "nothing answers on {subject} (is JetStream enabled?)"
            ))),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error::Closed(
                lock(&self.shared.waiting)
                    .broken
                    .clone()
                    .unwrap_or_else(|| "the connection closed".into()),
            )),
            Err(_) => Err(Error::Timeout(format!("no reply on {subject}"))),
        }
    }
}

/// `url` without its credentials, for messages and logs.
pub fn redact(url: &str) -> String {
    match url
        .strip_prefix("nats://")
        .and_then(|rest| rest.rsplit_once('@'))
    {
        Some((_, host)) => format!("nats://***@{host}"),
        None => url.to_owned(),
    }
}

fn lock(waiting: &Mutex<Waiting>) -> std::sync::MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

async fn write_all(shared: &Shared, bytes: &[u8]) -> Result<(), Error> {
    let mut writer = shared.writer.lock().await;
    writer
        .write_all(bytes)
        .await
        .map_err(|e| Error::Io(format!("writing to NATS: {e}")))
}

async fn read_op(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    decoder: &mut Decoder,
    buffer: &mut [u8],
) -> Result<ServerOp, Error> {
    loop {
        if let Some(op) = decoder
            .next_op()
            .map_err(|e| Error::Protocol(e.to_string()))?
        {
            return Ok(op);
        }
        let read = reader
            .read(buffer)
            .await
            .map_err(|e| Error::Io(format!("reading from NATS: {e}")))?;
        if read == 0 {
            return Err(Error::Closed(
                "the NATS server closed the connection".into(),
            ));
        }
        decoder.feed(&buffer[..read]);
    }
}

/// Reads until the connection breaks: replies to their requesters, `PONG`
/// for each `PING`; then fails every request still waiting.
async fn read_replies(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut decoder: Decoder,
    shared: Arc<Shared>,
    inbox: String,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    let prefix = format!("{inbox}.");
    let reason = loop {
        match read_op(&mut reader, &mut decoder, &mut buffer).await {
            Ok(ServerOp::Msg(message)) => {
                let token = message
                    .subject
                    .strip_prefix(&prefix)
                    .and_then(|t| t.parse::<u64>().ok());
                // A reply nobody waits for any more (it timed out) is dropped.
                if let Some(send) = token.and_then(|t| lock(&shared.waiting).replies.remove(&t)) {
                    let _ = send.send(message);
                }
            }
            Ok(ServerOp::Ping) => {
                if let Err(error) = write_all(&shared, b"PONG\r\n").await {
                    break error.to_string();
                }
            }
            Ok(ServerOp::Err(text)) => {
                // The server closes the connection after most errors; the
                // read that follows tells.
                tracing::warn!(error = %text, "NATS server error");
            }
            Ok(_) => {}
            Err(error) => break error.to_string(),
        }
    };
    let mut waiting = lock(&shared.waiting);
    waiting.broken = Some(reason);
    // Dropping the senders wakes every waiting request with the reason.
    waiting.replies.clear();
}

/// A name no other client picks: time, process and a counter, hashed.
fn unique_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_and_without_port_and_credentials() {
        let a = parse_address("nats://127.0.0.1:4333").unwrap();
        assert_eq!(a.host_port, "127.0.0.1:4333");
        assert_eq!((a.user, a.token), (None, None));
        assert_eq!(
            parse_address("nats://nats.example").unwrap().host_port,
            "nats.example:4222"
        );
        assert_eq!(
            parse_address("nats://[::1]").unwrap().host_port,
            "[::1]:4222"
        );
        assert_eq!(
            parse_address("nats://[::1]:5000/").unwrap().host_port,
            "[::1]:5000"
        );
        let a = parse_address("nats://bob:s%40cret@h:1").unwrap();
        assert_eq!(
            (a.user.as_deref(), a.password.as_deref()),
            (Some("bob"), Some("s@cret"))
        );
        let a = parse_address("nats://t0ken@h").unwrap();
        assert_eq!(a.token.as_deref(), Some("t0ken"));
        assert!(!format!("{a:?}").contains("t0ken"));
        for bad in ["http://h", "nats://", "nats://h/x", "nats://a:1,nats://b:2"] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
        assert_eq!(redact("nats://bob:s3cret@h:1"), "nats://***@h:1");
        assert_eq!(redact("nats://t0ken@h"), "nats://***@h");
        assert_eq!(redact("nats://h:1"), "nats://h:1");
    }
}
