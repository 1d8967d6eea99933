//! Async: a stream's events as a `futures::Stream`.
//!
//! Run: `cargo run -p mastostream --example async_stream` (against the
//! built-in test server), or set `MASTODON_SERVER` and `MASTODON_TOKEN`.

use futures_util::StreamExt;
use mastostream::{Client, EventKind, Item};
use mastostream_proto::Channel;
use mastostream_testkit::{TestServer, replay};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Without a server of your own, a local one replays a recorded stream.
    let _local;
    let (server, token) = match std::env::var("MASTODON_SERVER") {
        Ok(server) => (server, std::env::var("MASTODON_TOKEN").unwrap_or_default()),
        Err(_) => {
            _local = TestServer::builder()
                .replay(replay::bundled(), 20.0)
                .start()
                .await?;
            (_local.url(), "demo".to_owned())
        }
    };
    let client = Client::builder(server).token(token).build()?;
    let mut events = client.stream(Channel::Public);
    let mut seen = 0;
    while let Some(item) = events.next().await {
        match item {
            Ok(Item::Event(event)) => match event.kind()? {
                EventKind::Update(status) => {
                    println!("@{}: {} chars", status.account.acct, status.content.len())
                }
                EventKind::Delete(id) => println!("deleted {id}"),
                _ => println!("{}", event.name()),
            },
            // Not the end: the stream goes on after these.
            Ok(Item::Skipped(error)) => eprintln!("skipped: {error}"),
            Ok(Item::Reconnecting { delay, reason, .. }) => {
                eprintln!("reconnecting in {delay:?}: {reason}")
            }
            Ok(Item::Lagged { lost, .. }) => eprintln!("fell behind: {lost} events lost"),
            Ok(_) => continue,
            // The end: only a fatal error is an `Err`, and it is the last item.
            Err(error) => {
                eprintln!("stream ended: {error}");
                break;
            }
        }
        seen += 1;
        if seen == 10 {
            break; // dropping `events` closes the connection
        }
    }
    Ok(())
}
