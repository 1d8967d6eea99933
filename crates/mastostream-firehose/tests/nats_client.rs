//! The firehose's own NATS client against Debian's nats-server (started here
//! on a loopback port of its own), and read back with async-nats, an
//! independent client: what one writes, the other sees.

use std::sync::Arc;
use std::time::Duration;

use mastostream_firehose::nats::{Bucket, Error, JetStream, StreamConfig};
use mastostream_testkit::nats::NatsServer;

const CONNECT: Duration = Duration::from_secs(5);

async fn jetstream(nats: &NatsServer) -> Arc<JetStream> {
    Arc::new(JetStream::connect(&nats.url(), CONNECT).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_acknowledged_and_deduplicated_by_message_id() {
    let nats = NatsServer::start();
    let js = jetstream(&nats).await;
    let config = StreamConfig {
        name: "T".into(),
        subjects: vec!["t.>".into()],
        duplicate_window: Duration::from_secs(60),
        ..StreamConfig::default()
    };
    js.ensure_stream(&config).await.unwrap();
    // A second time finds it.
    js.ensure_stream(&config).await.unwrap();
    let first = js
        .publish("t.a", &[("Nats-Msg-Id", "u1")], b"{\"n\":1}")
        .await
        .unwrap();
    let again = js
        .publish("t.a", &[("Nats-Msg-Id", "u1")], b"{\"n\":1}")
        .await
        .unwrap();
    let other = js
        .publish("t.b", &[("Nats-Msg-Id", "u2")], b"{\"n\":2}")
        .await
        .unwrap();
    assert!(!first.duplicate && again.duplicate && !other.duplicate);
    assert_eq!((first.seq, other.seq), (1, 2));
    // Concurrent requests on one connection each get their own reply.
    let acks = futures_util::future::join_all((0..50).map(|n| {
        let js = js.clone();
        async move {
            let id = format!("c{n}");
            js.publish("t.c", &[("Nats-Msg-Id", &id)], b"x")
                .await
                .unwrap()
        }
    }))
    .await;
    let mut seqs: Vec<u64> = acks.iter().map(|a| a.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (3..53).collect::<Vec<_>>());

    let client = async_nats::connect(nats.url()).await.unwrap();
    let reader = async_nats::jetstream::new(client);
    let mut stream = reader.get_stream("T").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 52);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(60));
    let stored = stream.get_last_raw_message_by_subject("t.b").await.unwrap();
    assert_eq!(&stored.payload[..], b"{\"n\":2}");

    // Nothing subscribes there: said at once, not after a timeout.
    let error = js.publish("nobody.listens", &[], b"x").await.unwrap_err();
    assert!(matches!(error, Error::NoResponders(_)), "{error}");
    // Over max_payload: refused here, the connection stays usable.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let error = js.publish("t.a", &[], &big).await.unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error}");
    // Under the limit alone, over it with its headers (the server counts
    // both, and would close the connection).
    let near = vec![b'x'; 1024 * 1024 - 8];
    let error = js
        .publish("t.a", &[("Nats-Msg-Id", "near")], &near)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error}");
    let error = js
        .publish("t.a", &[("Nats-Msg-Id", "a\r\nb")], b"x")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    js.publish("t.a", &[], b"still").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_writes_are_conditional_on_revisions() {
    let nats = NatsServer::start();
    let js = jetstream(&nats).await;
    let bucket = Bucket::open(js.clone(), "b", Duration::ZERO).await.unwrap();
    assert_eq!(bucket.get("k").await.unwrap(), None);
    let first = bucket.create("k", b"one").await.unwrap();
    let taken = bucket.create("k", b"two").await.unwrap_err();
    assert!(taken.is_wrong_last_sequence(), "{taken}");
    let second = bucket.update("k", b"two", first).await.unwrap();
    let stale = bucket.update("k", b"three", first).await.unwrap_err();
    assert!(stale.is_wrong_last_sequence(), "{stale}");
    assert_eq!(bucket.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    // A delete at a stale revision is refused; at the current one it holds.
    assert!(
        bucket
            .delete("k", first)
            .await
            .unwrap_err()
            .is_wrong_last_sequence()
    );
    bucket.delete("k", second).await.unwrap();
    assert_eq!(bucket.get("k").await.unwrap(), None);
    // A deleted key can be created again.
    bucket.create("k", b"again").await.unwrap();
    assert_eq!(
        bucket.get("k").await.unwrap().as_deref(),
        Some(&b"again"[..])
    );
    bucket.put("other", b"x").await.unwrap();
    assert_eq!(bucket.count_keys_written().await.unwrap(), 2);

    // async-nats reads the same bucket as a key-value store.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let reader = async_nats::jetstream::new(client);
    let store = reader.get_key_value("b").await.unwrap();
    assert_eq!(
        store.get("k").await.unwrap().as_deref(),
        Some(&b"again"[..])
    );
    assert_eq!(
        store.get("other").await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_age_out_and_can_then_be_created_by_another() {
    let nats = NatsServer::start();
    let js = jetstream(&nats).await;
    let bucket = Bucket::open(js, "leases", Duration::from_secs(1))
        .await
        .unwrap();
    bucket.create("i.a", b"worker-1").await.unwrap();
    assert!(bucket.create("i.a", b"worker-2").await.is_err());
    // The server removes it after max_age (its own clock): wait on it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match bucket.create("i.a", b"worker-2").await {
            Ok(_) => break,
            Err(error) if error.is_wrong_last_sequence() => {}
            Err(error) => panic!("{error}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease never aged out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bucket.get("i.a").await.unwrap().as_deref(),
        Some(&b"worker-2"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_fails_requests_instead_of_holding_them() {
    let mut nats = NatsServer::start();
    let js = jetstream(&nats).await;
    js.ensure_stream(&StreamConfig {
        name: "G".into(),
        subjects: vec!["g".into()],
        ..StreamConfig::default()
    })
    .await
    .unwrap();
    nats.pause();
    let started = std::time::Instant::now();
    let error = js.publish("g", &[], b"x").await.unwrap_err();
    assert!(matches!(error, Error::Closed(_) | Error::Io(_)), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Nothing listens now: connecting says so.
    let error = JetStream::connect(&nats.url(), CONNECT).await.unwrap_err();
    assert!(matches!(error, Error::Io(_)), "{error}");
    nats.resume();
    let js = jetstream(&nats).await;
    assert_eq!(js.publish("g", &[], b"y").await.unwrap().seq, 1);
}

#[tokio::test]
async fn urls_that_are_not_nats_are_refused() {
    for url in ["http://127.0.0.1:4222", "nats://", "nats://h/path"] {
        let error = JetStream::connect(url, CONNECT).await.unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{url}: {error}");
    }
}
