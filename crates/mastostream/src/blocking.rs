//! Blocking use, in the style of Mastodon.py: calls that return only with an
//! error, and background handles.
//!
//! A thin shell over the async engine, as `reqwest::blocking` is: the client
//! owns one runtime thread where the connection tasks run; the calling thread
//! (or a handle's thread) receives their signals and calls the listener.
//! Do not call these from inside an async runtime.
//!
//! ```no_run
//! use mastostream::blocking::BlockingClient;
//! use mastostream::{CallbackListener, Client};
//!
//! let client = BlockingClient::new(Client::builder("https://mastodon.example").token("…").build()?)?;
//! let mut listener = CallbackListener::new().on_update(|status| println!("{}", status.content));
//! // Returns only when the stream ends: Ok after close(), Err with what ended it.
//! if let Err(error) = client.stream_public(&mut listener) {
//!     eprintln!("stream ended: {error}");
//! }
//! # Ok::<(), mastostream::Error>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use tokio::sync::watch;

use crate::Error;
use crate::client::Client;
use crate::listener::{StreamListener, deliver_guarded};
use crate::state::ConnectionState;
use crate::transport::handle::{Closer, TaskHandle};
use mastostream_proto::Channel;

/// Owns the runtime; shuts it down without blocking, wherever it is dropped.
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until drop").handle()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A [`Client`] for blocking code. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlockingClient {
    client: Client,
    runtime: Arc<Runtime>,
}

/// Declares a blocking method and a background method for one stream.
macro_rules! per_stream {
    ($($(#[$doc:meta])* $blocking:ident, $background:ident => ($($arg:ident: $ty:ty),*) $stream:expr;)+) => {
        $(
            $(#[$doc])*
            /// Blocks until the stream ends; `Err` is what ended it.
            pub fn $blocking<L: StreamListener + ?Sized>(&self, $($arg: $ty,)* listener: &mut L) -> Result<(), Error> {
                self.stream($stream, listener)
            }

            $(#[$doc])*
            /// Runs in the background; returns a handle at once.
            pub fn $background<L: StreamListener + Send + 'static>(&self, $($arg: $ty,)* listener: L) -> Result<StreamHandle, Error> {
                self.spawn($stream, listener)
            }
        )+
    };
}

impl BlockingClient {
    /// Wraps a client, starting the runtime thread its streams run on.
    pub fn new(client: Client) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mastostream")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the runtime: {e}")))?;
        Ok(BlockingClient {
            client,
            runtime: Arc::new(Runtime(Some(runtime))),
        })
    }

    /// The async client inside.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Streams to `listener` on this thread until the stream ends; returns the
    /// error that ended it. With reconnect off (the default for Mastodon.py's
    /// listener API) that is the first break or malformed event; otherwise
    /// only a fatal error (such as a 401) or giving up. `Ok` when the
    /// stream was closed; a listener that panics ends it with
    /// [`Error::ListenerPanicked`].
    pub fn stream<L: StreamListener + ?Sized>(
        &self,
        channel: Channel,
        listener: &mut L,
    ) -> Result<(), Error> {
        let mut handle = self.client.open_on(self.runtime.handle(), channel);
        pump(self.runtime.handle(), &mut handle, listener)
    }

    /// Streams to `listener` on a thread of its own; returns a handle at once,
    /// without waiting for the connection. Fails only if the thread cannot
    /// be started.
    pub fn spawn<L: StreamListener + Send + 'static>(
        &self,
        channel: Channel,
        mut listener: L,
    ) -> Result<StreamHandle, Error> {
        let mut handle = self.client.open_on(self.runtime.handle(), channel);
        let closer = handle.closer.clone();
        let state = handle.state.clone();
        let receiving = handle.receiving.clone();
        let runtime = self.runtime.clone();
        let thread = thread::Builder::new()
            .name("mastostream-listener".into())
            .spawn(move || pump(runtime.handle(), &mut handle, &mut listener))
            .map_err(|e| Error::Spawn(e.to_string()))?;
        Ok(StreamHandle {
            closer,
            state,
            receiving,
            thread: Some(thread),
            _runtime: self.runtime.clone(),
        })
    }

    /// Whether the streaming server answers its health check.
    pub fn stream_healthy(&self) -> bool {
        self.runtime.handle().block_on(self.client.stream_healthy())
    }

    per_stream! {
        /// The `user` stream: home timeline and notifications.
        stream_user, spawn_user => () Channel::User;
        /// The `user:notification` stream.
        stream_user_notification, spawn_user_notification => () Channel::UserNotification;
        /// The `public` stream (federated timeline).
        stream_public, spawn_public => () Channel::Public;
        /// The `public:media` stream.
        stream_public_media, spawn_public_media => () Channel::PublicMedia;
        /// The `public:local` stream.
        stream_local, spawn_local => () Channel::PublicLocal;
        /// The `public:local:media` stream.
        stream_local_media, spawn_local_media => () Channel::PublicLocalMedia;
        /// The `public:remote` stream.
        stream_remote, spawn_remote => () Channel::PublicRemote;
        /// The `public:remote:media` stream.
        stream_remote_media, spawn_remote_media => () Channel::PublicRemoteMedia;
        /// The `hashtag` stream for `tag` (without `#`).
        stream_hashtag, spawn_hashtag => (tag: &str) Channel::Hashtag(tag.to_owned());
        /// The `hashtag:local` stream for `tag`.
        stream_hashtag_local, spawn_hashtag_local => (tag: &str) Channel::HashtagLocal(tag.to_owned());
        /// The `list` stream for a list id.
        stream_list, spawn_list => (list_id: &str) Channel::List(list_id.to_owned());
        /// The `direct` stream: direct conversations.
        stream_direct, spawn_direct => () Channel::Direct;
    }
}

/// Hands a stream's items to the listener until the end. Each item is
/// awaited on the runtime, and the listener is called outside it, so a
/// listener may itself make blocking calls.
fn pump<L: StreamListener + ?Sized>(
    runtime: &tokio::runtime::Handle,
    handle: &mut TaskHandle,
    listener: &mut L,
) -> Result<(), Error> {
    handle.heartbeats = true;
    while let Some(item) = runtime.block_on(handle.next_item()) {
        if let Some(end) = deliver_guarded(item, listener) {
            handle.closer.close();
            return end;
        }
    }
    Ok(())
}

/// A stream running in the background, like Mastodon.py's `run_async=True`.
///
/// Dropping the handle does not stop the stream; [`close`](Self::close) does.
#[derive(Debug)]
pub struct StreamHandle {
    closer: Closer,
    state: watch::Receiver<ConnectionState>,
    receiving: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Result<(), Error>>>,
    _runtime: Arc<Runtime>,
}

impl StreamHandle {
    /// Stops the stream: the connection closes and the listener thread ends,
    /// even mid-read. Returns at once; callable from any thread.
    pub fn close(&self) {
        self.closer.close();
    }

    /// Whether the listener thread is still running.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Whether bytes are arriving: false while connecting, reconnecting, after a stall, or closed.
    pub fn is_receiving(&self) -> bool {
        self.receiving.load(Ordering::Relaxed) && self.state.borrow().is_open()
    }

    /// The connection's state now.
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// Waits for the stream to end: `Ok` after [`close`](Self::close), else
    /// the error that ended it.
    pub fn join(mut self) -> Result<(), Error> {
        match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            // `pump` catches the listener's panics; this is anything else.
            Some(Err(_)) => Err(Error::ListenerPanicked(
                "the listener thread panicked".into(),
            )),
            None => Ok(()),
        }
    }
}
