//! Behind a real nginx (Debian's), configured as Mastodon's own
//! `dist/nginx.conf` has it (see mastostream-testkit's nginx.rs), in front
//! of `mastostream serve`: SSE over HTTP/2 and the WebSocket over HTTP/1.1
//! stream through it and come back after `nginx -s reload`; a streaming
//! location with `proxy_buffering on` draws the buffering-proxy warning.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, ChildStdout};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mastostream;
use mastostream_testkit::nginx::{Nginx, NginxSite, StreamingLocation};
use mastostream_testkit::programs::{ScratchDir, free_port};
use mastostream_testkit::{LOOPBACK_NAMES, TlsIdentity};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// An open streaming connection as the server lists it.
#[derive(Debug)]
struct Open {
    id: u64,
    transport: String,
    subscribed: bool,
}

/// `mastostream serve` on a free port, advertising `streaming_url`; killed on drop.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(streaming_url: &str) -> Serve {
        let (child, line) = common::serve_process(&["--streaming-url", streaming_url]);
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        Serve { child, addr }
    }

    /// A plain HTTP/1.1 request to the server itself; the response head
    /// and body.
    fn exchange(&self, method: &str, path: &str, body: &str) -> (String, String) {
        let mut socket = TcpStream::connect(&self.addr).unwrap();
        write!(
            socket,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.to_owned(), body.to_owned())
    }

    /// [`exchange`](Self::exchange)'s body.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        self.exchange(method, path, body).1
    }

    /// The open streaming connections, (id, transport), once the server's
    /// count of changes has passed `after` (at once for `None`), and that
    /// count: the control endpoint's signal.
    fn connections_after(&self, after: Option<u64>) -> (Vec<Open>, u64) {
        let path = match after {
            Some(count) => format!("/api/testkit/connections?changed_after={count}"),
            None => "/api/testkit/connections".to_owned(),
        };
        let (head, body) = self.exchange("GET", &path, "");
        let count = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("x-testkit-changes")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no change count in {head:?}"));
        let list: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        let list = list
            .iter()
            .map(|c| Open {
                id: c["id"].as_u64().unwrap(),
                transport: c["transport"].as_str().unwrap().to_owned(),
                subscribed: c["streams"].as_array().is_some_and(|s| !s.is_empty()),
            })
            .collect();
        (list, count)
    }

    /// Waits, on the server's signal of each change, until the open
    /// connections are `ready`; them.
    fn wait_until(&self, what: &str, ready: impl Fn(&[Open]) -> bool) -> Vec<Open> {
        let deadline = Instant::now() + WAIT;
        let mut after = None;
        loop {
            let (list, count) = self.connections_after(after);
            if ready(&list) {
                return list;
            }
            assert!(Instant::now() < deadline, "{what}: {list:?}");
            after = Some(count);
        }
    }

    /// Waits until the server holds a `transport` connection other than
    /// `except` with a subscription (a WebSocket subscribes after it has
    /// opened); its id.
    fn wait_for_connection(&self, transport: &str, except: Option<u64>) -> u64 {
        let other = |c: &Open| c.transport == transport && c.subscribed && Some(c.id) != except;
        let list = self.wait_until(
            &format!("no {transport} connection through nginx"),
            |list| list.iter().any(other),
        );
        list.into_iter().find(other).map(|c| c.id).unwrap()
    }

    fn publish_delete(&self, id: &str) {
        let body = format!(r#"{{"stream":"public","event":"delete","payload":"{id}"}}"#);
        let answer = self.request("POST", "/api/testkit/publish", &body);
        assert!(answer.contains("\"delivered\":1"), "{answer}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed (and reaped) when the test lets go of it, even
/// by a panic: a failed test leaves no client streaming behind it.
struct Running(Option<Child>);

impl Running {
    /// Waits for its end (see `common::finish`).
    fn finish(mut self) -> std::process::Output {
        common::finish(self.0.take().expect("still running"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Lines of a child's output, read on a thread of their own.
fn lines(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn next_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("no line in time: {what}"))
}

/// nginx with TLS in front of a fresh `serve`, which advertises nginx's address.
struct Deployment {
    // Dropped first: nginx before the server behind it.
    nginx: Nginx,
    serve: Serve,
    ca: String,
    _dir: ScratchDir,
}

fn deploy(streaming: StreamingLocation) -> Deployment {
    let identity = TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap();
    let dir = ScratchDir::new("nginx-ca").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, identity.ca_pem.as_deref().unwrap()).unwrap();
    let port = free_port();
    let serve = Serve::start(&format!("wss://127.0.0.1:{port}"));
    let nginx = Nginx::start(&NginxSite {
        upstream: serve.addr.parse().unwrap(),
        port: Some(port),
        tls: Some(identity),
        streaming,
        worker_shutdown_timeout_secs: Some(1),
    });
    Deployment {
        nginx,
        serve,
        ca: ca.to_str().unwrap().to_owned(),
        _dir: dir,
    }
}

/// `mastostream stream` through nginx with its CA, `extra` ending with the
/// streams.
fn stream_through(deployment: &Deployment, extra: &[&str]) -> (Running, ChildStdout, ChildStderr) {
    let url = deployment.nginx.url();
    let mut args = vec![
        "stream",
        "--server",
        &url,
        "--cacert",
        &deployment.ca,
        "--token",
        "t",
        "--format",
        "jsonl",
    ];
    args.extend_from_slice(extra);
    let mut child = mastostream(&args).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    (Running(Some(child)), stdout, stderr)
}

#[test]
fn sse_over_h2_and_the_websocket_stream_through_nginx_and_survive_a_reload() {
    let deployment = deploy(StreamingLocation::Mastodon);
    let serve = &deployment.serve;
    for (transport, connection, protocol, status) in [
        ("sse", "sse", "HTTP/2.0", "200"),
        ("ws", "websocket", "HTTP/1.1", "101"),
    ] {
        let (child, stdout, stderr) = stream_through(
            &deployment,
            &["--transport", transport, "--limit", "2", "public"],
        );
        let stdout = lines(stdout);
        let stderr = lines(stderr);
        let first = serve.wait_for_connection(connection, None);
        serve.publish_delete("1");
        let line = next_line(&stdout, "the first event");
        assert!(line.ends_with("\"payload\":\"1\"}"), "{transport}: {line}");

        // The reload: old workers close their streams within a second; the
        // client reconnects through a new one.
        deployment.nginx.reload();
        serve.wait_for_connection(connection, Some(first));
        serve.publish_delete("2");
        let line = next_line(&stdout, "the event after the reload");
        assert!(line.ends_with("\"payload\":\"2\"}"), "{transport}: {line}");
        let output = child.finish();
        assert!(
            output.status.success(),
            "{transport}: {:?}",
            stderr.try_iter().collect::<Vec<_>>()
        );

        // nginx logs a request when it ends: the one the reload closed.
        let path = if transport == "sse" {
            "/api/v1/streaming/public"
        } else {
            "/api/v1/streaming"
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let log = deployment.nginx.access_log();
            let found = log.iter().any(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                fields.len() == 5
                    && fields[1] == path
                    && fields[2] == protocol
                    && fields[4] == status
            });
            if found {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{transport}: no '{path} {protocol} … {status}' in nginx's access log: {log:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn two_sse_streams_share_one_http2_connection_through_nginx() {
    let deployment = deploy(StreamingLocation::Mastodon);
    let serve = &deployment.serve;
    // stdout stays open (and unread) until the command has ended.
    let (child, _stdout, stderr) = stream_through(
        &deployment,
        &[
            "--transport",
            "sse",
            "--limit",
            "2",
            "public",
            "public:local",
        ],
    );
    let stderr = lines(stderr);
    serve.wait_until("two SSE streams never opened", |list| list.len() >= 2);
    // A local public status reaches both streams.
    let body = r#"{"event":"delete","payload":"5","stream":"public"}"#;
    serve.request("POST", "/api/testkit/publish", body);
    let body = r#"{"event":"delete","payload":"6","stream":"public:local"}"#;
    serve.request("POST", "/api/testkit/publish", body);
    let output = child.finish();
    assert!(
        output.status.success(),
        "{:?}",
        stderr.try_iter().collect::<Vec<_>>()
    );
    // The client has gone, so nginx has ended (and logged) both requests.
    let deadline = Instant::now() + WAIT;
    let streams = loop {
        let log = deployment.nginx.access_log();
        let streams: Vec<Vec<String>> = log
            .iter()
            .map(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|fields| fields.len() == 5 && fields[1].starts_with("/api/v1/streaming/public"))
            .collect();
        if streams.len() == 2 {
            break streams;
        }
        assert!(Instant::now() < deadline, "nginx's access log: {log:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for fields in &streams {
        assert_eq!(fields[2], "HTTP/2.0", "{streams:?}");
    }
    assert_eq!(streams[0][3], streams[1][3], "one connection: {streams:?}");
}

/// Reads `lines` until one contains `text` (`Ok`) or `WAIT` passes (`Err`
/// with the lines read).
fn wait_for_text(lines: &mpsc::Receiver<String>, text: &str) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + WAIT;
    let mut read = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return Ok(()),
            Ok(line) => read.push(line),
            Err(_) => break,
        }
    }
    Err(read)
}

#[test]
fn a_streaming_location_that_holds_the_stream_draws_the_buffering_warning() {
    let deployment = deploy(StreamingLocation::BufferingOnHttp10);
    let (child, _stdout, stderr) = stream_through(
        &deployment,
        &["--transport", "sse", "--greeting-timeout", "1", "public"],
    );
    let stderr = lines(stderr);
    deployment.serve.wait_for_connection("sse", None);
    // nginx holds the response in its buffers, head and `:)` greeting
    // alike: the client warns.
    if let Err(read) = wait_for_text(&stderr, "buffering proxy") {
        panic!(
            "no buffering-proxy warning; stderr: {read:#?}\nnginx: {:#?}",
            deployment.nginx.access_log()
        );
    }
    drop(child);
}

#[test]
fn proxy_buffering_on_over_http11_passes_events_at_once_without_a_warning() {
    let deployment = deploy(StreamingLocation::BufferingOn);
    let serve = &deployment.serve;
    let (child, stdout, stderr) = stream_through(
        &deployment,
        &[
            "--transport",
            "sse",
            "--greeting-timeout",
            "1",
            "--limit",
            "1",
            "public",
        ],
    );
    let stdout = lines(stdout);
    serve.wait_for_connection("sse", None);
    serve.publish_delete("9");
    let line = next_line(&stdout, "the event");
    assert!(line.ends_with("\"payload\":\"9\"}"), "{line}");
    let output = child.finish();
    assert!(output.status.success());
    let stderr: Vec<String> = lines(stderr).iter().collect();
    assert!(
        !stderr.iter().any(|l| l.contains("buffering proxy")),
        "{stderr:?}"
    );
}
