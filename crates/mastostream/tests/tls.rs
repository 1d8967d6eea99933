//! TLS against the test server's own CA: trusted when added, refused with a
//! clear, final error when not.

use std::time::Duration;

use mastostream::{Client, Error, Item, ReconnectPolicy, Transport};
use mastostream_proto::{Channel, EventKind};
use mastostream_testkit::{LOOPBACK_NAMES, Publish, TestServer, TlsIdentity};

mod common;
use common::next_significant;

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
                    event.kind(),
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
        let error = loop {
            match next_significant(&mut events, 10 * SECOND).await {
                Err(error) => break error,
                Ok(Item::Reconnecting { reason, .. }) => panic!("{transport:?} retried: {reason}"),
                Ok(_) => {}
            }
        };
        let Error::Certificate { host, reason } = &error else {
            panic!("{transport:?}: {error:?}");
        };
        assert_eq!(host, "127.0.0.1", "{transport:?}");
        assert!(reason.contains("unknown issuer"), "{transport:?}: {reason}");
        assert!(!error.is_retryable());
    }
}
