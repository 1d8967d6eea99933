//! The one tokio runtime of the process's streams: two worker threads,
//! started with the first engine and shared by all (a pool, as an HTTP
//! library's is; no thread per stream).

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared runtime, or why it could not start.
pub fn get() -> Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("mastostream")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the stream runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}
