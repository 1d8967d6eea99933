//! IPv6 literal hosts on every path: discovery, SSE, the WebSocket and the
//! catch-up's REST pages, over TLS with a certificate made for `::1`.

use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{Client, EventKind, Item, ReconnectPolicy, Transport};
use mastostream_proto::Channel;
use mastostream_testkit::{Fault, LOOPBACK_NAMES, Publish, TestServer, TlsIdentity};

const SECOND: Duration = Duration::from_secs(1);
const STATUS: &str = include_str!("../../../fixtures/entities/status.json");

/// The next event's kind, the transient items skipped.
async fn next_kind(events: &mut mastostream::EventStream) -> EventKind {
    loop {
        match tokio::time::timeout(5 * SECOND, events.next()).await {
            Ok(Some(Ok(Item::Event(event)))) => return event.kind().unwrap().clone(),
            Ok(Some(Ok(_))) => {}
            other => panic!("{other:?}"),
        }
    }
}

fn status() -> serde_json::Value {
    let mut status: serde_json::Value = serde_json::from_str(STATUS).unwrap();
    status["id"] = serde_json::Value::Null;
    status
}

#[tokio::test]
async fn every_path_works_on_an_ipv6_literal_over_tls() {
    let Ok(server) = TestServer::builder()
        .addr("[::1]:0".parse().unwrap())
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap())
        .start()
        .await
    else {
        panic!("cannot listen on [::1]: this test needs IPv6 loopback (::1) configured");
    };
    assert!(
        server.url().starts_with("https://[::1]:"),
        "{}",
        server.url()
    );
    for transport in [Transport::Sse, Transport::WebSocket] {
        let client = Client::builder(server.url())
            .token("t")
            .transport(transport)
            .add_root_certificates_pem(server.ca_pem().unwrap())
            .reconnect(ReconnectPolicy::Fixed(Duration::from_millis(20)))
            .catch_up(true)
            .build()
            .unwrap();
        let pages = server.pages_served();
        let mut events = client.stream(Channel::Public);
        assert!(
            server.wait_for_subscriptions(1, 5 * SECOND).await,
            "{transport:?}"
        );
        // The catch-up's first page: where the timeline stood.
        assert!(
            server.wait_for_pages(pages + 1, 5 * SECOND).await,
            "{transport:?}"
        );
        server.publish(Publish::new("update", status()));
        assert!(
            matches!(next_kind(&mut events).await, EventKind::Update(_)),
            "{transport:?}"
        );

        // Cut (and refuse the first reconnect), publish while away: the
        // catch-up fetches it over [::1] too.
        let mut state = events.watch_state();
        server
            .fault(Fault::Reject {
                status: 503,
                count: 1,
                retry_after: None,
                headers: Vec::new(),
            })
            .unwrap();
        server.fault(Fault::Disconnect).unwrap();
        tokio::time::timeout(5 * SECOND, state.wait_for(|s| !s.is_open()))
            .await
            .unwrap()
            .unwrap();
        server.publish(Publish::new("update", status()));
        let kind = next_kind(&mut events).await;
        assert!(
            matches!(kind, EventKind::Update(_)),
            "{transport:?}: {kind:?}"
        );
        assert!(server.pages_served() >= pages + 2, "{transport:?}");
        drop(events);
        assert!(server.wait_until(5 * SECOND, |open| open.is_empty()).await);
    }
}
