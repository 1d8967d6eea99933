//! `mastostream._native`: the engine's Python face, kept small. Python code
//! (`python/mastostream/`) builds Mastodon.py's interface on it: listeners,
//! entities, exceptions, handles. Here are only what needs the engine:
//!
//! - [`Engine`]: a configured [`mastostream::Client`] (server, token, TLS,
//!   proxy, transport, reconnect policy, catch-up);
//! - [`Feed`]: the items of one or more subscriptions (one SSE stream, or
//!   the streams of one multiplexed WebSocket), fetched in batches with the
//!   GIL released, by blocking calls or by callbacks for asyncio.
//!
//! Items cross as plain tuples (see `item.rs`); payloads cross as the text
//! the server sent, so Python parses only what it hands to a listener.

mod engine;
mod feed;
mod item;
mod runtime;

use pyo3::prelude::*;

/// How many threads wait inside `Feed.next` now.
#[pyfunction]
fn waiting() -> usize {
    feed::WAITING.load(std::sync::atomic::Ordering::SeqCst)
}

/// The Python module `mastostream._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<feed::Feed>()?;
    m.add("EngineError", m.py().get_type::<item::EngineError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(waiting, m)?)?;
    Ok(())
}
