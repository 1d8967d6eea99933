//! Through a real HTTP proxy (Debian's tinyproxy, started by the test):
//! SSE and REST as proxy requests or CONNECT tunnels, the WebSocket always
//! through a CONNECT tunnel, and nothing of the token in the proxy's view
//! of an `https://` server.

use std::time::Duration;

use mastostream::{Client, EventKind, Item, Transport};
use mastostream_proto::Channel;
use mastostream_testkit::tinyproxy::Tinyproxy;
use mastostream_testkit::{LOOPBACK_NAMES, Publish, TestServer, TlsIdentity};

mod common;
use common::{final_error, next_significant};

const SECOND: Duration = Duration::from_secs(1);
const TOKEN: &str = "proxy-test-token-8c1e";

/// Streams one event from `server` through `client`; the server must see
/// the subscription, and the event must arrive.
async fn stream_one(server: &TestServer, client: &Client, id: &str, proxy: &Tinyproxy) {
    let mut events = client.stream(Channel::Public);
    if !server.wait_for_subscriptions(1, 5 * SECOND).await {
        let item = next_significant(&mut events, SECOND).await;
        panic!(
            "not subscribed: {item:?}\nthe proxy's log:\n{}",
            proxy.log()
        );
    }
    server.publish(Publish::new("delete", id).to(Channel::Public));
    match next_significant(&mut events, 5 * SECOND).await {
        Ok(Item::Event(event)) => assert_eq!(event.kind().unwrap(), &EventKind::Delete(id.into())),
        other => panic!("{other:?}"),
    }
    drop(events);
    assert!(server.wait_until(5 * SECOND, |open| open.is_empty()).await);
}

fn client(server: &TestServer, proxy: &Tinyproxy, transport: Transport) -> Client {
    let mut builder = Client::builder(server.url())
        .token(TOKEN)
        .transport(transport)
        .proxy(proxy.url());
    if let Some(ca) = server.ca_pem() {
        builder = builder.add_root_certificates_pem(ca);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn plain_http_goes_through_the_proxy_on_both_transports() {
    let proxy = Tinyproxy::start();
    let server = TestServer::builder().start().await.unwrap();
    let authority = server.addr().to_string();

    stream_one(
        &server,
        &client(&server, &proxy, Transport::Sse),
        "1",
        &proxy,
    )
    .await;
    let requests = proxy.requests();
    // Discovery and the stream, as proxy requests (absolute URLs).
    let sse = format!("GET http://{authority}/api/v1/streaming/public ");
    assert!(
        requests.iter().any(|r| r.starts_with(&sse)),
        "{requests:#?}\n{}",
        proxy.log()
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("GET http://{authority}/api/v2/instance"))),
        "{requests:#?}"
    );

    stream_one(
        &server,
        &client(&server, &proxy, Transport::WebSocket),
        "2",
        &proxy,
    )
    .await;
    let connect = format!("CONNECT {authority} ");
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|r| r.starts_with(&connect)),
        "the WebSocket tunnels: {requests:#?}"
    );
}

#[tokio::test]
async fn https_is_tunnelled_and_the_proxy_never_sees_the_token() {
    let proxy = Tinyproxy::start();
    let server = TestServer::builder()
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap())
        .start()
        .await
        .unwrap();
    let authority = server.addr().to_string();
    for (transport, id) in [(Transport::Sse, "3"), (Transport::WebSocket, "4")] {
        stream_one(&server, &client(&server, &proxy, transport), id, &proxy).await;
    }
    let requests = proxy.requests();
    assert!(requests.len() >= 2, "{requests:#?}");
    for request in &requests {
        assert!(
            request.starts_with(&format!("CONNECT {authority} ")),
            "only tunnels: {request}"
        );
    }
    assert!(!proxy.log().contains(TOKEN));
}

#[tokio::test]
async fn a_direct_client_bypasses_it() {
    let proxy = Tinyproxy::start();
    let server = TestServer::builder().start().await.unwrap();
    // Clients told to connect directly never reach the proxy (NO_PROXY is
    // tested through the binary, whose environment a test can set).
    let direct = Client::builder(server.url())
        .token(TOKEN)
        .transport(Transport::Sse)
        .no_proxy()
        .build()
        .unwrap();
    stream_one(&server, &direct, "5", &proxy).await;
    let ws = Client::builder(server.url())
        .token(TOKEN)
        .transport(Transport::WebSocket)
        .no_proxy()
        .build()
        .unwrap();
    stream_one(&server, &ws, "6", &proxy).await;
    assert_eq!(proxy.requests(), Vec::<String>::new());
}

#[tokio::test]
async fn an_ipv6_server_is_reached_through_the_proxy() {
    let proxy = Tinyproxy::start();
    let server = TestServer::builder()
        .addr("[::1]:0".parse().unwrap())
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap())
        .start()
        .await
        .expect("this test needs IPv6 loopback (::1)");
    // The WebSocket tunnels through our own CONNECT (discovery skipped:
    // it is HTTP, see below).
    let ws = Client::builder(server.url())
        .token(TOKEN)
        .transport(Transport::WebSocket)
        .streaming_url(server.url())
        .proxy(proxy.url())
        .add_root_certificates_pem(server.ca_pem().unwrap())
        .build()
        .unwrap();
    stream_one(&server, &ws, "7", &proxy).await;
    let connect = format!("CONNECT [::1]:{} ", server.addr().port());
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|r| r.starts_with(&connect)),
        "{requests:#?}"
    );

    // reqwest cannot name an IPv6 literal inside a tunnel: SSE (and REST)
    // there end at once with an error that says so and what to do.
    let sse = client(&server, &proxy, Transport::Sse);
    let mut events = sse.stream(Channel::Public);
    let error = final_error(&mut events, 10 * SECOND).await;
    let text = error.to_string();
    assert!(matches!(error, mastostream::Error::Config(_)), "{error:?}");
    assert!(
        text.contains("[::1]") && text.contains("NO_PROXY=::1"),
        "{text}"
    );
}

#[tokio::test]
async fn proxy_credentials_come_from_the_url_and_their_absence_is_a_clear_final_error() {
    let proxy = Tinyproxy::start_with_credentials("bench", "s3cret");
    let server = TestServer::builder()
        .tls(TlsIdentity::self_signed(&LOOPBACK_NAMES).unwrap())
        .start()
        .await
        .unwrap();
    let port = proxy.url().rsplit(':').next().unwrap().to_owned();
    // The password partly percent-encoded in the URL (`%65` is `e`), as a
    // URL may carry it; it is decoded before it is sent.
    let with = format!("http://bench:s3cr%65t@127.0.0.1:{port}");
    let without = format!("http://127.0.0.1:{port}");
    for (transport, id) in [(Transport::Sse, "9"), (Transport::WebSocket, "10")] {
        let client = Client::builder(server.url())
            .token(TOKEN)
            .transport(transport)
            .proxy(&with)
            .add_root_certificates_pem(server.ca_pem().unwrap())
            .build()
            .unwrap();
        stream_one(&server, &client, id, &proxy).await;

        let client = Client::builder(server.url())
            .token(TOKEN)
            .transport(transport)
            .streaming_url(server.url())
            .proxy(&without)
            .add_root_certificates_pem(server.ca_pem().unwrap())
            .build()
            .unwrap();
        let mut events = client.stream(Channel::Public);
        let error = final_error(&mut events, 10 * SECOND).await;
        let text = error.to_string();
        assert!(text.contains("407"), "{transport:?}: {text}");
    }
    // The credentials never show in an error or the proxy's log as text.
    assert!(!proxy.log().contains("s3cr"));
}
