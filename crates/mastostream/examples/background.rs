//! Background, like Mastodon.py's `run_async=True`: a handle with `close()`,
//! `is_alive()` and `is_receiving()`, and a callback listener.
//!
//! Run: `cargo run -p mastostream --example background`.

use std::time::Duration;

use mastostream::blocking::BlockingClient;
use mastostream::{CallbackListener, Client};
use mastostream_testkit::{TestServer, replay};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::builder()
        .replay(replay::bundled(), 20.0)
        .start_blocking()?;
    let client = BlockingClient::new(Client::builder(server.url()).token("demo").build()?)?;
    let listener = CallbackListener::new()
        .on_update(|status| println!("post {}", status.id))
        .on_notification(|n| println!("notification: {}", n.kind))
        // Any event by name, known or not, ahead of the typed handlers.
        .on("status.update", |event| {
            println!(
                "edited: {} bytes",
                event.payload().as_str().map_or(0, str::len)
            )
        })
        .on_connection_state(|state| eprintln!("state: {state:?}"));
    let handle = client.spawn_public(listener)?;
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "alive: {}, receiving: {}",
        handle.is_alive(),
        handle.is_receiving()
    );
    handle.close();
    // `Ok` after close(); an `Err` says what ended the stream.
    match handle.join() {
        Ok(()) => println!("ended: closed"),
        Err(error) => println!("ended: {error}"),
    }
    Ok(())
}
