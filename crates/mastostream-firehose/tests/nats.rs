//! The JetStream sink against Debian's nats-server (started here on a
//! loopback port of its own): two workers following the same instance
//! publish every status, and JetStream keeps each once (`Nats-Msg-Id` is
//! the `uri`); while NATS is away statuses wait in the bounded buffer, the
//! overflow counted as lost, and the rest arrive when it is back. And the
//! coordinator's positions: an instance taken again starts where the
//! holders since got to.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mastostream_firehose::coordinate::{self, Change, CoordinateConfig, key};
use mastostream_firehose::nats::{Bucket, JetStream};
use mastostream_firehose::{Config, Health, Instance, SinkConfig, health_for, run};
use mastostream_proto::Channel;
use mastostream_testkit::nats::NatsServer;
use mastostream_testkit::{Publish, TestServer};

const WAIT: Duration = Duration::from_secs(20);

fn status(n: u32) -> serde_json::Value {
    serde_json::json!({
        "id": format!("1090000000000000{n:02}"),
        "uri": format!("https://example.org/statuses/{n}"),
        "created_at": "2026-12-01T12:00:00.000Z",
        "content": "<p>hi</p>",
        "account": {"id": "1", "acct": "alice", "username": "alice"}
    })
}

fn config(server: &TestServer, nats: &NatsServer, buffer: usize) -> Config {
    let mut instance = Instance::parse(&server.url()).unwrap();
    instance.token = Some("t".into());
    let mut config = Config::new(vec![instance]);
    config.summary_every = None;
    config.limit = Some(3);
    let mut sink = SinkConfig::new(nats.url());
    sink.buffer = buffer;
    config.sink = Some(sink);
    config
}

async fn stored(nats: &NatsServer) -> u64 {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream("MASTOSTREAM").await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// Waits until `health` has passed on `count` statuses.
async fn passed_on(health: &Arc<Health>, count: u64) {
    let passed = tokio::time::timeout(WAIT, health.wait_written(count)).await;
    assert!(
        passed.is_ok(),
        "{}",
        health.summary((0, Duration::from_secs(1)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_copy_of_each_status_in_jetstream() {
    let nats = NatsServer::start();
    let server = TestServer::builder().start().await.unwrap();
    let mut workers = Vec::new();
    let mut healths = Vec::new();
    for _ in 0..2 {
        let config = config(&server, &nats, 1000);
        let health = health_for(&config);
        healths.push(health.clone());
        workers.push(tokio::spawn(async move {
            run(config, health, &mut std::io::sink(), &mut std::io::sink()).await
        }));
    }
    assert!(server.wait_for_subscriptions(2, WAIT).await);
    for n in 1..=3 {
        server.publish(Publish::new("update", status(n)).to(Channel::PublicLocal));
    }
    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    let counts: Vec<(u64, u64, u64)> = healths
        .iter()
        .map(|h| {
            let c = &h.sink().unwrap().counts;
            (
                c.published.load(Ordering::Relaxed),
                c.duplicates.load(Ordering::Relaxed),
                c.lost.load(Ordering::Relaxed),
            )
        })
        .collect();
    let published: u64 = counts.iter().map(|c| c.0).sum();
    let duplicates: u64 = counts.iter().map(|c| c.1).sum();
    assert_eq!(
        (published, duplicates),
        (3, 3),
        "{counts:?}\n{}",
        nats.log()
    );
    assert!(counts.iter().all(|c| c.2 == 0), "{counts:?}");
    assert_eq!(stored(&nats).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_away_statuses_wait_and_the_overflow_is_counted() {
    let mut nats = NatsServer::start();
    nats.pause();
    let server = TestServer::builder().start().await.unwrap();
    let config = config(&server, &nats, 2);
    let health = health_for(&config);
    let worker = tokio::spawn({
        let health = health.clone();
        async move { run(config, health, &mut std::io::sink(), &mut std::io::sink()).await }
    });
    assert!(server.wait_for_subscriptions(1, WAIT).await);
    for n in 1..=3 {
        server.publish(Publish::new("update", status(n)).to(Channel::PublicLocal));
    }
    passed_on(&health, 3).await;
    let sink = health.sink().unwrap().clone();
    assert_eq!(sink.counts.lost.load(Ordering::Relaxed), 1);
    assert_eq!(sink.waiting(), 2);
    let summary = health.summary((0, Duration::from_secs(1)));
    assert!(summary.contains("2 waiting, 1 lost"), "{summary}");
    nats.resume();
    worker.await.unwrap().unwrap();
    assert_eq!(
        sink.counts.published.load(Ordering::Relaxed),
        2,
        "{}",
        nats.log()
    );
    assert_eq!(stored(&nats).await, 2);
}

async fn next(changes: &mut tokio::sync::mpsc::UnboundedReceiver<Change>) -> Change {
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("the coordinator said nothing")
        .expect("the coordinator ended")
}

/// A worker that loses an instance and takes it again later starts from
/// the position the holders since recorded, not from what it had itself
/// delivered before: its next tick writes its in-memory position to KV,
/// and an old one there would send the next holder back over statuses
/// already delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_taken_again_starts_from_the_newer_position() {
    let nats = NatsServer::start();
    // Long enough that w2's lease below outlives w1's next tick by far.
    let lease = Duration::from_secs(3);
    let mut config = CoordinateConfig::new(nats.url());
    config.bucket = "t".into();
    config.lease = lease;
    config.worker = "w1".into();
    let positions = Arc::new(mastostream_firehose::Positions::default());
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let worker = tokio::spawn(coordinate::run(
        config,
        vec!["a".into()],
        positions.clone(),
        tx,
    ));
    let Change::Acquired { host, resume_after } = next(&mut changes).await else {
        panic!("expected the instance taken");
    };
    assert_eq!((host.as_str(), resume_after), ("a", None));
    positions.delivered(&"a".into(), "100");

    // Another worker takes the lease over and gets further.
    let js = Arc::new(JetStream::connect(&nats.url(), WAIT).await.unwrap());
    let leases = Bucket::open(js.clone(), "t-leases", lease).await.unwrap();
    let recorded = Bucket::open(js, "t-positions", Duration::ZERO)
        .await
        .unwrap();
    let taken = leases
        .put(&key("i", "a"), br#"{"worker":"w2"}"#)
        .await
        .unwrap();
    assert!(matches!(next(&mut changes).await, Change::Released { host } if host == "a"));
    recorded.put(&key("i", "a"), b"200").await.unwrap();
    // w2 gives it up; w1 takes it again, from w2's position.
    leases.delete(&key("i", "a"), taken).await.unwrap();
    let Change::Acquired { host, resume_after } = next(&mut changes).await else {
        panic!("expected the instance taken again");
    };
    assert_eq!((host.as_str(), resume_after.as_deref()), ("a", Some("200")));
    // What the next tick writes back.
    assert_eq!(positions.get("a").as_deref(), Some("200"));
    worker.abort();
}
