//! `mastostream firehose`: instances from a file (a token from the
//! environment), one feed of JSON lines, each status once; usage errors.

mod common;

use common::{finish, mastostream};
use mastostream_proto::Channel;
use mastostream_testkit::{Publish, TestServer};

fn status(id: &str, uri: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "uri": uri,
        "created_at": "2026-12-01T12:00:00.000Z",
        "content": "<p>hi</p>",
        "account": {"id": "1", "acct": "alice", "username": "alice"}
    })
}

#[test]
fn instances_from_a_file_feed_one_deduplicated_stream() {
    let streaming = TestServer::builder().start_blocking().unwrap();
    let polled = TestServer::builder().start_blocking().unwrap();
    let dir = std::env::temp_dir().join(format!("mastostream-firehose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("instances.txt");
    std::fs::write(
        &list,
        format!(
            "# followed\n{} $FIREHOSE_TEST_TOKEN\n{}\n",
            streaming.url(),
            polled.url()
        ),
    )
    .unwrap();
    let status_file = dir.join("status.json");
    let child = mastostream(&[
        "firehose",
        "--instances",
        list.to_str().unwrap(),
        "--poll-interval",
        "0.05",
        "--summary-every",
        "0",
        "--status",
        status_file.to_str().unwrap(),
        "--contact",
        "ops@example.org",
        "--limit",
        "2",
    ])
    .env("FIREHOSE_TEST_TOKEN", "secret")
    .spawn()
    .unwrap();
    assert!(streaming.wait_for_subscriptions(1, std::time::Duration::from_secs(10)));
    assert!(polled.wait_for_pages(1, std::time::Duration::from_secs(10)));
    let shared = status("109000000000000001", "https://elsewhere.example/1");
    streaming.publish(Publish::new("update", shared.clone()).to(Channel::PublicLocal));
    polled.publish(Publish::new("update", shared));
    polled.publish(Publish::new(
        "update",
        status("109000000000000002", "https://b/2"),
    ));
    let output = finish(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let mut uris: Vec<&str> = lines
        .iter()
        .map(|l| l["status"]["uri"].as_str().unwrap())
        .collect();
    uris.sort();
    assert_eq!(uris, ["https://b/2", "https://elsewhere.example/1"]);
    let b = lines
        .iter()
        .find(|l| l["status"]["uri"] == "https://b/2")
        .unwrap();
    assert_eq!(b["instance"], polled.url().trim_start_matches("http://"));
    // The table is written at the end too.
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert_eq!(table["written"], 2);
    let states: Vec<&str> = table["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"streaming") && states.contains(&"polling"),
        "{states:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    for (args, says) in [
        (vec!["firehose"], "no instances"),
        (
            vec!["firehose", "--instances", "/nonexistent/list"],
            "cannot read",
        ),
        (
            vec!["firehose", "a.example", "--sink", "http://127.0.0.1:4222"],
            "nats://",
        ),
        (
            vec!["firehose", "a.example", "--poll-interval=-1"],
            "--poll-interval",
        ),
    ] {
        let output = finish(mastostream(&args).spawn().unwrap());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// SIGTERM (systemd's and Kubernetes' stop, as Ctrl-C) ends the feed as
/// its limit does: exit 0 and the status file written at the end (the
/// process was killed with it unwritten).
#[test]
fn sigterm_ends_the_feed_with_its_status_written() {
    use std::io::BufRead;
    let polled = TestServer::builder().start_blocking().unwrap();
    let dir =
        std::env::temp_dir().join(format!("mastostream-firehose-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status_file = dir.join("status.json");
    let mut child = mastostream(&[
        "firehose",
        &polled.url(),
        "--poll-interval",
        "0.05",
        "--summary-every",
        "0",
        "--status",
        status_file.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    assert!(polled.wait_for_pages(1, std::time::Duration::from_secs(10)));
    polled.publish(Publish::new(
        "update",
        status("109000000000000003", "https://c/3"),
    ));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("https://c/3"), "{line}");
    let status = common::terminate(child);
    assert_eq!(status.code(), Some(0));
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert_eq!(table["written"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}
