//! Blocking, like Mastodon.py without `run_async`: returns only when the
//! stream ends (`Ok` after a close, else the error that ended it).
//!
//! Run: `cargo run -p mastostream --example blocking`.

use mastostream::blocking::BlockingClient;
use mastostream::{Client, Error, ReconnectPolicy, StreamListener};
use mastostream_proto::entities::Status;
use mastostream_testkit::{TestServer, replay};

/// A listener with one method per event it cares about.
struct Printer {
    seen: usize,
}

impl StreamListener for Printer {
    fn on_update(&mut self, status: Status) {
        self.seen += 1;
        println!("{} @{}", status.id, status.account.acct);
    }

    fn on_delete(&mut self, status_id: String) {
        println!("deleted {status_id}");
    }

    fn on_abort(&mut self, error: &Error) {
        eprintln!("connection ended: {error}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::builder()
        .replay(replay::bundled(), 50.0)
        .start_blocking()?;
    let client = BlockingClient::new(
        Client::builder(server.url())
            .token("demo")
            .reconnect(ReconnectPolicy::Off)
            .build()?,
    )?;
    // Stop the server after two seconds, so that the call returns.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        drop(server);
    });
    let mut printer = Printer { seen: 0 };
    // `Ok` only after a close; with reconnect off, the break ends it.
    let ended = match client.stream_local(&mut printer) {
        Ok(()) => "closed".to_owned(),
        Err(error) => error.to_string(),
    };
    println!(
        "stream_local returned after {} posts: {ended}",
        printer.seen
    );
    stopper.join().ok();
    Ok(())
}
