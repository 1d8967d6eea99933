//! Helpers the client's integration tests share.
// Each test file uses only some of these.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{Error, EventStream, Item};

/// The next item that is not a connection notice (`Connecting`,
/// `Connected`), within `wait`; panics if the stream ends or stays silent.
pub async fn next_significant(events: &mut EventStream, wait: Duration) -> Result<Item, Error> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let item = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("no item in time")
            .expect("the stream ended");
        if !matches!(item, Ok(Item::Connecting | Item::Connected)) {
            return item;
        }
    }
}

/// The error that ends `events`, which must come without a retry (a
/// `Reconnecting` notice fails the test), within `wait`.
pub async fn final_error(events: &mut EventStream, wait: Duration) -> Error {
    loop {
        match next_significant(events, wait).await {
            Err(error) => return error,
            Ok(Item::Reconnecting { reason, .. }) => {
                panic!("{}: retried: {reason}", events.channel())
            }
            Ok(_) => {}
        }
    }
}

/// A test server behaving as `flavour`.
pub async fn flavoured_server(
    flavour: mastostream_testkit::Flavour,
) -> mastostream_testkit::TestServer {
    mastostream_testkit::TestServer::builder()
        .flavour(flavour)
        .start()
        .await
        .unwrap()
}
