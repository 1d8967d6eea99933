//! The firehose against four test servers at once: one streaming with a
//! token, one (Mastodon 4.2+ without a token) polled over REST, one that
//! offers neither, one whose robots.txt turns mastostream away.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use mastostream_firehose::{Config, Instance, InstanceState, health_for, run};
use mastostream_proto::Channel;
use mastostream_testkit::{Publish, TestServer};

const WAIT: Duration = Duration::from_secs(10);

/// Output lines, each sent on as it is written.
struct Lines(mpsc::Sender<String>, String);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.1.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = self.1.find('\n') {
            let line: String = self.1.drain(..=end).collect();
            let _ = self.0.send(line.trim_end().to_owned());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn status(id: &str, uri: &str, noindex: bool) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/entities/status.json"
    );
    let mut status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    status["id"] = id.into();
    status["uri"] = uri.into();
    status["account"]["acct"] = "alice".into();
    status["account"]["noindex"] = noindex.into();
    status
}

fn instance(server: &TestServer, token: Option<&str>) -> Instance {
    let mut instance = Instance::parse(&server.url()).unwrap();
    instance.token = token.map(str::to_owned);
    instance
}

fn next_line(lines: &mpsc::Receiver<String>) -> serde_json::Value {
    let line = lines.recv_timeout(WAIT).expect("a line in time");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_one_feed_each_status_once() {
    let streaming = TestServer::builder().start().await.unwrap();
    let polled = TestServer::builder().start().await.unwrap();
    let closed = TestServer::builder()
        .timeline_preview(false)
        .start()
        .await
        .unwrap();
    let turned_away = TestServer::builder()
        .robots("User-agent: *\nDisallow: /admin\n\nUser-agent: mastostream\nDisallow: /\n")
        .start()
        .await
        .unwrap();
    let mut config = Config::new(vec![
        instance(&streaming, Some("t")),
        instance(&polled, None),
        instance(&closed, None),
        instance(&turned_away, None),
    ]);
    config.poll_interval = Duration::from_millis(50);
    config.min_request_gap = Duration::from_millis(10);
    config.limit = Some(3);
    config.summary_every = None;
    let hosts: Vec<String> = config.instances.iter().map(|i| i.host.clone()).collect();
    let health = health_for(&config);
    let (tx, lines) = mpsc::channel();
    let task = tokio::spawn({
        let health = health.clone();
        async move {
            let mut out = Lines(tx, String::new());
            run(config, health, &mut out, &mut std::io::sink()).await
        }
    });
    // The streaming instance holds its stream; the polled one has answered
    // its first poll (its stream refused for want of a token).
    assert!(streaming.wait_for_subscriptions(1, WAIT).await);
    assert!(polled.wait_for_pages(1, WAIT).await);
    // One post federated to both: written once.
    let shared = status("109000000000000001", "https://elsewhere.example/s/1", false);
    streaming.publish(Publish::new("update", shared.clone()).to(Channel::PublicLocal));
    polled.publish(Publish::new("update", shared));
    let first = next_line(&lines);
    assert_eq!(first["status"]["uri"], "https://elsewhere.example/s/1");
    // An author who opted out of indexing, then one post on each.
    streaming.publish(
        Publish::new("update", status("109000000000000002", "https://a/2", true))
            .to(Channel::PublicLocal),
    );
    streaming.publish(
        Publish::new("update", status("109000000000000003", "https://a/3", false))
            .to(Channel::PublicLocal),
    );
    polled.publish(Publish::new(
        "update",
        status("109000000000000004", "https://b/4", false),
    ));
    let mut rest = [next_line(&lines), next_line(&lines)];
    rest.sort_by_key(|line| line["status"]["uri"].as_str().unwrap().to_owned());
    assert_eq!(rest[0]["status"]["uri"], "https://a/3");
    assert_eq!(rest[0]["instance"], hosts[0].as_str());
    assert_eq!(rest[1]["status"]["uri"], "https://b/4");
    assert_eq!(rest[1]["instance"], hosts[1].as_str());
    task.await.unwrap().unwrap();
    assert!(lines.try_recv().is_err(), "more than the limit");
    assert_eq!(health.written.load(Ordering::Relaxed), 3);
    assert_eq!(health.duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(health.noindex.load(Ordering::Relaxed), 1);
    assert_eq!(health.state(&hosts[0]), Some(InstanceState::Streaming));
    assert_eq!(health.state(&hosts[1]), Some(InstanceState::Polling));
    match health.state(&hosts[2]) {
        Some(InstanceState::Unsupported(reason)) => {
            assert!(
                reason.contains("422") && reason.contains("token"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(health.state(&hosts[3]), Some(InstanceState::Disallowed));
    // Nothing but robots.txt was asked of the instance that turned it away.
    let asked: Vec<String> = turned_away
        .requests()
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    assert!(
        asked.iter().all(|r| r.contains("/robots.txt")),
        "{asked:#?}"
    );
    let table = health.to_json();
    assert_eq!(table["instances"].as_array().unwrap().len(), 4);
}
