//! Log lines on stderr: the library's warnings by default (a buffering
//! proxy, a refused subscription), more with `-v`, or as `RUST_LOG` says.

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber for `verbose` (-v count) and `RUST_LOG`.
pub fn init(verbose: u8) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| match v.parse::<Targets>() {
            Ok(targets) => Some(targets),
            Err(error) => {
                note!("mastostream: ignoring RUST_LOG={v:?}: {error}");
                None
            }
        });
    let targets = from_env.unwrap_or_else(|| {
        let ours = match verbose {
            0 => LevelFilter::WARN,
            1 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        };
        let others = if verbose >= 2 {
            LevelFilter::DEBUG
        } else {
            LevelFilter::WARN
        };
        Targets::new()
            .with_default(others)
            .with_target("mastostream", ours)
            .with_target("mastostream_testkit", ours)
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbose > 0)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(targets))
        .try_init();
}
