//! TLS against the test server's own CA: trusted when added, refused with a
//! clear, final error when not.

use std::time::Duration;

use mastostream::{Client, Error, Item, ReconnectPolicy, Transport};
use mastostream_proto::{Channel, EventKind};
use mastostream_testkit::{LOOPBACK_NAMES, Publish, TestServer, TlsIdentity};

mod common;
use common::{final_error, next_significant};

const SECOND: Duration = Duration::from_secs(1);

async fn tls_server() -> TestServer {
    TestServer::builder()
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap())
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn both_transports_stream_over_tls_with_the_added_ca() {
    let server = tls_server().await;
    assert!(server.url().starts_with("https://"));
    for transport in [Transport::Sse, Transport::WebSocket] {
        let client = Client::builder(server.url())
            .token("t")
            .transport(transport)
            .add_root_certificates_pem(server.ca_pem().unwrap())
            .build()
            .unwrap();
        let mut events = client.stream(Channel::Public);
        assert!(
            server.wait_for_subscriptions(1, 5 * SECOND).await,
            "{transport:?}"
        );
        server.publish(Publish::new("delete", "7").to(Channel::Public));
        match next_significant(&mut events, 5 * SECOND).await {
            Ok(Item::Event(event)) => {
                assert_eq!(
                    event.kind().unwrap(),
                    &EventKind::Delete("7".into()),
                    "{transport:?}"
                )
            }
            other => panic!("{transport:?}: {other:?}"),
        }
        drop(events);
        assert!(server.wait_until(5 * SECOND, |open| open.is_empty()).await);
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_final_error_naming_the_host() {
    let server = tls_server().await;
    for transport in [Transport::Sse, Transport::WebSocket] {
        let client = Client::builder(server.url())
            .token("t")
            .transport(transport)
            .platform_roots(false)
            .reconnect(ReconnectPolicy::default())
            .build()
            .unwrap();
        let mut events = client.stream(Channel::Public);
        let error = final_error(&mut events, 10 * SECOND).await;
        let Error::Certificate { host, reason } = &error else {
            panic!("{transport:?}: {error:?}");
        };
        assert_eq!(host, "127.0.0.1", "{transport:?}");
        assert!(reason.contains("unknown issuer"), "{transport:?}: {reason}");
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn sse_streams_share_one_http2_connection_and_the_websocket_stays_on_http1() {
    let server = tls_server().await;
    let client = Client::builder(server.url())
        .token("t")
        .transport(Transport::Sse)
        .add_root_certificates_pem(server.ca_pem().unwrap())
        .build()
        .unwrap();
    let mut public = client.stream(Channel::Public);
    let mut local = client.stream(Channel::PublicLocal);
    assert!(server.wait_for_subscriptions(2, 5 * SECOND).await);
    server.publish(Publish::new("delete", "8").to(Channel::Public));
    server.publish(Publish::new("delete", "9").to(Channel::PublicLocal));
    for (events, id) in [(&mut public, "8"), (&mut local, "9")] {
        match next_significant(events, 5 * SECOND).await {
            Ok(Item::Event(event)) => {
                assert_eq!(event.kind().unwrap(), &EventKind::Delete(id.into()))
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    let streaming: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/streaming/public"))
        .collect();
    assert_eq!(streaming.len(), 2, "{streaming:?}");
    for request in &streaming {
        assert_eq!(request.http_version, "HTTP/2.0", "{request:?}");
    }
    // Both streams (and discovery before them) went over one connection.
    assert_eq!(server.connections_accepted(), 1, "{:?}", server.requests());
    drop((public, local));

    let client = Client::builder(server.url())
        .token("t")
        .transport(Transport::WebSocket)
        .add_root_certificates_pem(server.ca_pem().unwrap())
        .build()
        .unwrap();
    let mut events = client.stream(Channel::Public);
    assert!(
        server
            .wait_until(5 * SECOND, |open| open.len() == 1
                && open[0].transport == mastostream_testkit::Transport::Websocket
                && !open[0].streams.is_empty())
            .await
    );
    server.publish(Publish::new("delete", "10").to(Channel::Public));
    match next_significant(&mut events, 5 * SECOND).await {
        Ok(Item::Event(event)) => {
            assert_eq!(event.kind().unwrap(), &EventKind::Delete("10".into()))
        }
        other => panic!("{other:?}"),
    }
    let upgrade = server
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/api/v1/streaming")
        .expect("the WebSocket's request");
    assert_eq!(upgrade.http_version, "HTTP/1.1");
}

/// A client that trusts the server's CA, for `url`.
fn trusting(server: &TestServer, url: &str, transport: Transport) -> Client {
    Client::builder(url)
        .token("t")
        .transport(transport)
        .add_root_certificates_pem(server.ca_pem().unwrap())
        .build()
        .unwrap()
}

/// The first error of a stream that must not retry it.
async fn stream_error(client: &Client) -> Error {
    final_error(&mut client.stream(Channel::Public), 10 * SECOND).await
}

#[tokio::test]
async fn an_expired_or_misnamed_certificate_says_so() {
    let expired = TestServer::builder()
        .tls(TlsIdentity::expired(&LOOPBACK_NAMES).unwrap())
        .start()
        .await
        .unwrap();
    // Made for 127.0.0.1 only, dialled as localhost and as ::1.
    let misnamed = TestServer::builder()
        .tls(TlsIdentity::self_signed(&["127.0.0.1"]).unwrap())
        .start()
        .await
        .unwrap();
    let misnamed_url = misnamed.url().replace("127.0.0.1", "localhost");
    for transport in [Transport::Sse, Transport::WebSocket] {
        let error = stream_error(&trusting(&expired, &expired.url(), transport)).await;
        match &error {
            Error::Certificate { host, reason } => {
                assert_eq!(host, "127.0.0.1");
                assert!(reason.contains("expired"), "{transport:?}: {reason}");
            }
            other => panic!("{transport:?}: {other:?}"),
        }
        let error = stream_error(&trusting(&misnamed, &misnamed_url, transport)).await;
        match &error {
            Error::Certificate { host, reason } => {
                assert_eq!(host, "localhost");
                assert!(
                    reason.contains("not valid for this host name"),
                    "{transport:?}: {reason}"
                );
            }
            other => panic!("{transport:?}: {other:?}"),
        }
    }
}
