//! A short soak: publish steadily while the connection is cut every few
//! hundred milliseconds; with catch-up, every status arrives exactly once and
//! in order. (The hour-long version belongs to the hardening work.)

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mastostream::{Client, EventKind, Item, ReconnectPolicy};
use mastostream_proto::Channel;
use mastostream_testkit::{Fault, Publish, TestServer};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_every_300ms_while_publishing_loses_nothing() {
    let server = TestServer::builder()
        .heartbeat(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let client = Client::builder(server.url())
        .token("t")
        .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
        .catch_up(true)
        .build()
        .unwrap();
    let mut events = client.stream(Channel::PublicLocal);
    assert!(server.wait_for_connections(1, Duration::from_secs(2)).await);
    // Wait for the greeting so the first status is not missed before the stream is open.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut template: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/entities/status.json"
        ))
        .unwrap(),
    )
    .unwrap();
    template["id"] = Value::Null;
    let publisher = tokio::spawn(async move {
        let mut published = 0usize;
        let started = Instant::now();
        let mut last_cut = Instant::now();
        while started.elapsed() < Duration::from_secs(6) {
            server.publish(Publish::new("update", template.clone()));
            published += 1;
            if last_cut.elapsed() >= Duration::from_millis(300) {
                server.fault(Fault::Disconnect).unwrap();
                last_cut = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (server, published)
    });
    let mut seen = Vec::new();
    let mut ids = HashSet::new();
    let collect = async {
        while let Some(item) = events.next().await {
            if let Ok(Item::Event(event)) = item
                && let EventKind::Update(status) = event.kind().unwrap()
            {
                let id: u64 = status.id.parse().unwrap();
                assert!(ids.insert(id), "status {id} delivered twice");
                seen.push(id);
            }
        }
    };
    // Consume while publishing goes on, then let the last catch-up finish.
    let _ = tokio::time::timeout(Duration::from_secs(9), collect).await;
    let (server, published) = publisher.await.unwrap();
    assert!(published > 500, "only {published} published");
    assert_eq!(
        seen.len(),
        published,
        "lost {} of {published}",
        published - seen.len()
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "out of order");
    drop(server);
}
