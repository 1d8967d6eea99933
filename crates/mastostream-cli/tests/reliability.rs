//! The command against servers that refuse, break and come back: what a
//! person reads on stderr, and the exit codes (issue #13).

use std::io::{BufRead, BufReader};
use std::time::Duration;

mod common;

use common::{mastostream, wait_for_streams};
use mastostream_proto::Channel;
use mastostream_testkit::{Fault, Publish, TestServer};

const SECOND: Duration = Duration::from_secs(1);

/// Mastodon refuses someone else's list after a database lookup, after the
/// other subscribes were taken. The refusal was pinned on `hashtag=rust`
/// and came with a hint about token scopes; now it names the list, says
/// what Mastodon said, and exits 3 (authentication refused).
#[test]
fn a_refused_list_is_named_as_the_list_and_exits_3() {
    let server = TestServer::builder().start_blocking().unwrap();
    server
        .fault(Fault::RefuseList { list: "42".into() })
        .unwrap();
    let output = mastostream(&[
        "stream",
        "--server",
        &server.url(),
        "--token",
        "t",
        "--transport",
        "ws",
        "hashtag=rust",
        "public",
        "list=42",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("list=42: HTTP 401 Unauthorized: Not authorized to stream this list"),
        "{stderr}"
    );
    assert!(!stderr.contains("hashtag=rust: HTTP"), "{stderr}");
    assert!(
        !stderr.contains("read scope"),
        "a misleading hint: {stderr}"
    );
}

/// One line when a stream breaks (when it reconnects, and why, with the
/// status's reason phrase and a duration for people) and one when it is back.
#[test]
fn a_reconnect_is_one_line_going_and_one_coming_back() {
    let server = TestServer::builder().start_blocking().unwrap();
    let mut child = mastostream(&[
        "stream",
        "--server",
        &server.url(),
        "--token",
        "t",
        "--limit",
        "2",
        "public",
    ])
    .spawn()
    .unwrap();
    wait_for_streams(&server, &[&["public"]]);
    server.publish(Publish::new("delete", "1").to(Channel::Public));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    server
        .fault(Fault::Reject {
            status: 503,
            count: 1,
            retry_after: None,
            headers: Vec::new(),
        })
        .unwrap();
    let before = server.connections().iter().map(|c| c.id).max().unwrap();
    server.fault(Fault::Disconnect).unwrap();
    // Back on a new connection.
    let back = server.wait_until(10 * SECOND, |open| {
        open.iter().any(|c| c.id > before && !c.streams.is_empty())
    });
    assert!(back, "no reconnect");
    server.publish(Publish::new("delete", "2").to(Channel::Public));
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"2\""), "{line}");
    let output = common::finish(child);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mastostream: public: reconnecting in ")
                && l.contains("HTTP 503 Service Unavailable")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mastostream: public: reconnected after ")),
        "{stderr}"
    );
    // Durations for people: `50 ms`, `2.3 s`, never `0.051234567s`.
    for line in &lines {
        for marker in ["reconnecting in ", "reconnected after "] {
            if let Some(rest) = line.split(marker).nth(1) {
                let duration = rest.split(':').next().unwrap();
                let (number, unit) = duration.split_once(' ').unwrap_or((duration, ""));
                assert!(
                    ["ms", "s", "min"].contains(&unit)
                        && number.parse::<f64>().is_ok()
                        && number.split('.').nth(1).is_none_or(|f| f.len() == 1),
                    "not a duration for people: {duration:?} in {line:?}"
                );
            }
        }
    }
}

/// The library's warnings reach the terminal, and `-v` shows its decisions.
#[test]
fn verbose_shows_the_librarys_log_and_rust_log_filters_it() {
    let server = TestServer::builder().start_blocking().unwrap();
    let run = |extra: &[&str], rust_log: Option<&str>| {
        let mut args = vec!["stream", "--server", "", "--token", "t", "--limit", "1"];
        let url = server.url();
        args[2] = &url;
        args.extend_from_slice(extra);
        args.push("public");
        let mut command = mastostream(&args);
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let child = command.spawn().unwrap();
        wait_for_streams(&server, &[&["public"]]);
        server.publish(Publish::new("delete", "1").to(Channel::Public));
        let output = common::finish(child);
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let quiet = run(&[], None);
    assert!(!quiet.contains("opening SSE stream"), "{quiet}");
    let verbose = run(&["-v"], None);
    assert!(verbose.contains("opening SSE stream"), "{verbose}");
    let filtered = run(&[], Some("mastostream=debug"));
    assert!(filtered.contains("opening SSE stream"), "{filtered}");
    // Logs never carry the token.
    assert!(!verbose.contains("Bearer t") && !filtered.contains("Bearer t"));
}
