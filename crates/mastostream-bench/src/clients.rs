//! The measured clients of our own, each run as a child process so that its
//! CPU time and memory are its own: mastostream over SSE or WebSocket, and a
//! plain socket read (the limit of any client that reads every byte).

use std::io::{Read, Write};
use std::net::TcpStream;

use mastostream::{Channel, Client, EventKind, ReconnectPolicy, Transport};

use crate::measure::{self, EventCounter};

/// Which runtime the mastostream client runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// `#[tokio::main]`'s default: a worker thread per core.
    Multi,
    /// One thread.
    Current,
}

/// Which transport the mastostream client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wire {
    /// One HTTP response per stream.
    Sse,
    /// Mastodon's multiplexed WebSocket.
    Ws,
}

/// How the mastostream consumer reads each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Reading {
    /// Entities built as events arrive (the default client); the consumer
    /// reads the typed form of every event.
    #[default]
    Typed,
    /// `parse_on_demand`: the JSON checked on arrival, the entity built
    /// when the consumer asks for it, which it does for every event.
    OnDemandTyped,
    /// `parse_on_demand`: the consumer reads only the raw payload text.
    Raw,
    /// `parse_on_demand`: the consumer reads four fields of each status
    /// (id, created_at, account.acct, content) through `Event::deserialize`,
    /// borrowed from the payload.
    Glance,
}

/// The four fields a consumer of statuses usually reads first.
#[derive(serde::Deserialize)]
struct Glance<'a> {
    id: &'a str,
    created_at: &'a str,
    #[serde(borrow)]
    account: Author<'a>,
    #[serde(borrow)]
    content: std::borrow::Cow<'a, str>,
}

#[derive(serde::Deserialize)]
struct Author<'a> {
    acct: &'a str,
}

/// What the consumer takes from one event, as a byte count (so that none
/// of it can be optimised away).
fn read_event(event: &mastostream::Event, reading: Reading) -> Result<usize, String> {
    Ok(match reading {
        Reading::Typed | Reading::OnDemandTyped => {
            match event.kind().map_err(|e| e.to_string())? {
                EventKind::Update(status) | EventKind::StatusUpdate(status) => {
                    status.id.len() + status.content.len()
                }
                EventKind::Delete(id) => id.len(),
                EventKind::Notification(notification) => notification.id.len(),
                _ => event.name().len(),
            }
        }
        Reading::Raw => event.payload().as_str().map_or(0, str::len),
        Reading::Glance if matches!(event.name(), "update" | "status.update") => {
            let glance: Glance<'_> = event.deserialize().map_err(|e| e.to_string())?;
            glance.id.len()
                + glance.created_at.len()
                + glance.account.acct.len()
                + glance.content.len()
        }
        Reading::Glance => event.name().len(),
    })
}

/// Where a counting client connects, and how many events it must count.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The server's base URL.
    #[arg(long)]
    pub server: String,
    /// The token to present.
    #[arg(long)]
    pub token: String,
    /// The stream to drain.
    #[arg(long)]
    pub stream: Channel,
    /// Events to count.
    #[arg(long)]
    pub count: u64,
}

impl Target {
    /// The command-line arguments that give a child process this target.
    pub fn args(&self) -> [String; 8] {
        [
            "--server".into(),
            self.server.clone(),
            "--token".into(),
            self.token.clone(),
            "--stream".into(),
            self.stream.to_string(),
            "--count".into(),
            self.count.to_string(),
        ]
    }
}

/// For an `https://` target: the CA to trust, and whether to keep SSE to
/// HTTP/1.1 rather than offer h2.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsChoice {
    /// A PEM file of the CA that signed the server's certificate.
    #[arg(long)]
    pub cacert: Option<std::path::PathBuf>,
    /// Offer only HTTP/1.1 (no h2).
    #[arg(long)]
    pub http1: bool,
}

impl TlsChoice {
    /// The command-line arguments that give a child process this choice.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(path) = &self.cacert {
            args.push("--cacert".into());
            args.push(path.display().to_string());
        }
        if self.http1 {
            args.push("--http1".into());
        }
        args
    }
}

/// Receives `count` events of `stream` with mastostream and prints
/// `{"client":…,"events":N}`. Every event is read as `reading` says.
pub fn count_with_mastostream(
    target: &Target,
    wire: Wire,
    runtime: Runtime,
    tls: &TlsChoice,
    reading: Reading,
) -> Result<(), String> {
    let count = target.count;
    let runtime = match runtime {
        Runtime::Multi => tokio::runtime::Builder::new_multi_thread(),
        Runtime::Current => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
    .map_err(|e| e.to_string())?;
    let transport = match wire {
        Wire::Sse => Transport::Sse,
        Wire::Ws => Transport::WebSocket,
    };
    let events = runtime.block_on(async {
        let mut builder = Client::builder(&target.server)
            .token(&target.token)
            .transport(transport)
            .reconnect(ReconnectPolicy::Off)
            .http2(!tls.http1)
            .parse_on_demand(reading != Reading::Typed);
        if let Some(path) = &tls.cacert {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            builder = builder.add_root_certificates_pem(pem);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        let mut events = client.stream(target.stream.clone());
        let mut seen = 0u64;
        let mut text_bytes = 0usize;
        while seen < count {
            let event = match events.next_event().await {
                Ok(Some(event)) => event,
                Err(error) => return Err(format!("after {seen} events: {error}")),
                Ok(None) => return Err(format!("the stream ended after {seen} events")),
            };
            text_bytes += read_event(&event, reading)?;
            seen += 1;
        }
        if text_bytes == 0 {
            return Err("no event carried any text".into());
        }
        Ok(seen)
    })?;
    println!(
        "{{\"client\":\"mastostream\",\"events\":{events},\"peak_rss_kib\":{}}}",
        measure::peak_rss_kib()
    );
    Ok(())
}

/// Reads an SSE stream over a plain socket, counting events until `count`,
/// and prints `{"client":"socket","events":N}`.
pub fn count_with_socket(target: &Target) -> Result<(), String> {
    let Target {
        server,
        token,
        stream,
        count,
    } = target;
    let count = *count;
    let authority = server
        .strip_prefix("http://")
        .ok_or("the socket client speaks plain http:// only")?
        .trim_end_matches('/');
    let mut socket = TcpStream::connect(authority).map_err(|e| format!("{authority}: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        stream.sse_path_and_query()
    );
    socket
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buffer = vec![0; 256 * 1024];
    let mut head = Vec::new();
    let mut body: Option<Dechunker> = None;
    let mut counter = EventCounter::default();
    while counter.events < count {
        let n = socket.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("the stream ended after {} events", counter.events));
        }
        match &mut body {
            Some(dechunker) => dechunker.feed(&buffer[..n], |bytes| counter.feed(bytes))?,
            None => {
                head.extend_from_slice(&buffer[..n]);
                let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") else {
                    continue;
                };
                let rest = head.split_off(end + 4);
                if !head.starts_with(b"HTTP/1.1 200") {
                    return Err(String::from_utf8_lossy(&head).into_owned());
                }
                let mut dechunker = Dechunker::default();
                dechunker.feed(&rest, |bytes| counter.feed(bytes))?;
                body = Some(dechunker);
            }
        }
    }
    // The last read may carry events past the `count`-th; they are not asked for.
    println!(
        "{{\"client\":\"socket\",\"events\":{},\"peak_rss_kib\":{}}}",
        counter.events.min(count),
        measure::peak_rss_kib()
    );
    Ok(())
}

/// Undoes HTTP/1.1 chunked transfer coding, handing on the body bytes.
#[derive(Debug, Default)]
struct Dechunker {
    /// Body bytes left in the current chunk.
    remaining: usize,
    /// Whether the CRLF after a chunk's data is due.
    trailer_due: bool,
    /// A chunk-size line not yet complete.
    size_line: Vec<u8>,
}

impl Dechunker {
    fn feed(&mut self, mut bytes: &[u8], mut body: impl FnMut(&[u8])) -> Result<(), String> {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(bytes.len());
                body(&bytes[..take]);
                self.remaining -= take;
                self.trailer_due = self.remaining == 0;
                bytes = &bytes[take..];
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', bytes) else {
                self.size_line.extend_from_slice(bytes);
                return Ok(());
            };
            self.size_line.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let line = std::mem::take(&mut self.size_line);
            if std::mem::take(&mut self.trailer_due) {
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let digits = text.split(';').next().unwrap_or("").trim();
            self.remaining = usize::from_str_radix(digits, 16)
                .map_err(|_| format!("bad chunk size line {text:?}"))?;
            if self.remaining == 0 {
                return Err("the body ended".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunker_hands_on_the_body_across_any_split() {
        let wire = b"5\r\nhello\r\nb;ext=1\r\n, the world\r\n";
        for split in 0..wire.len() {
            let mut dechunker = Dechunker::default();
            let mut out = Vec::new();
            dechunker
                .feed(&wire[..split], |b| out.extend_from_slice(b))
                .unwrap();
            dechunker
                .feed(&wire[split..], |b| out.extend_from_slice(b))
                .unwrap();
            assert_eq!(out, b"hello, the world", "split at {split}");
        }
        let mut dechunker = Dechunker::default();
        assert!(dechunker.feed(b"zz\r\n", |_| {}).is_err());
        assert!(dechunker.feed(b"0\r\n\r\n", |_| {}).is_err());
    }
}
