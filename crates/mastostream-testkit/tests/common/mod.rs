//! A deliberately plain HTTP/1.1 client over a raw TCP socket, so the server is
//! checked byte for byte and not through our own client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

/// A response head: status and headers (names lower-cased).
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn request_bytes(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn parse_head(raw: &[u8]) -> Head {
    let text = std::str::from_utf8(raw).expect("head is text");
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    Head { status, headers }
}

/// An open streaming response, body read incrementally with chunking undone.
pub struct Conn {
    socket: TcpStream,
    buf: Vec<u8>,
    pub head: Head,
    chunked: bool,
    /// Body bytes decoded so far and not yet taken.
    pub body: Vec<u8>,
    /// The final zero-length chunk was seen.
    pub finished: bool,
    /// The peer closed the socket.
    pub eof: bool,
}

impl Conn {
    pub async fn open(
        method: &str,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Conn {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(&request_bytes(method, addr, path, headers, body))
            .await
            .unwrap();
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = parse_head(&buf[..head_end]);
        buf.drain(..head_end + 4);
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let mut conn = Conn {
            socket,
            buf,
            head,
            chunked,
            body: Vec::new(),
            finished: false,
            eof: false,
        };
        // The first body bytes may have come in with the head.
        conn.decode();
        conn
    }

    pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Conn {
        Conn::open("GET", addr, path, headers, b"").await
    }

    /// Moves whole chunks from the raw buffer to `body`.
    fn decode(&mut self) {
        if !self.chunked {
            self.body.append(&mut self.buf);
            return;
        }
        loop {
            let Some(line_end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size_text = std::str::from_utf8(&self.buf[..line_end]).unwrap();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            if self.buf.len() < line_end + 2 + size + 2 {
                return;
            }
            if size == 0 {
                self.finished = true;
            }
            let start = line_end + 2;
            self.body.extend_from_slice(&self.buf[start..start + size]);
            self.buf.drain(..start + size + 2);
            if self.finished {
                return;
            }
        }
    }

    /// Reads once (up to `wait`); false when nothing came in that time.
    pub async fn read_some(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 16384];
        match timeout(wait, self.socket.read(&mut chunk)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.decode();
                true
            }
        }
    }

    /// Reads until `body` contains `needle` (true) or `wait` passes / EOF (false).
    pub async fn read_until_contains(&mut self, needle: &[u8], wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.body.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.eof {
                return false;
            }
            self.read_some(left).await;
        }
    }

    /// Reads until the peer closes or `wait` passes; true on close.
    pub async fn read_to_close(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.eof {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_some(left).await;
        }
        true
    }
}

/// One plain request, read to the end.
pub async fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut headers = headers.to_vec();
    headers.push(("Connection", "close"));
    let mut conn = Conn::open(method, addr, path, &headers, body).await;
    let length = conn
        .head
        .header("content-length")
        .map(|v| v.parse::<usize>().unwrap());
    loop {
        conn.decode();
        let done = match length {
            Some(len) => conn.body.len() >= len,
            None => conn.finished,
        };
        if done || conn.eof {
            break;
        }
        conn.read_some(Duration::from_secs(10)).await;
    }
    Response {
        head: conn.head,
        body: conn.body,
    }
}

pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request("GET", addr, path, headers, b"").await
}

pub async fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Response {
    request("POST", addr, path, &[], body.to_string().as_bytes()).await
}

pub const AUTH: (&str, &str) = ("Authorization", "Bearer token");

/// The JSON values of a fixture's `.expected.jsonl`.
pub fn expected(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(format!("{FIXTURES}/{path}"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Raises the soft open-file limit to the hard one.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
