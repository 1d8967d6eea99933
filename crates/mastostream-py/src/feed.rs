//! `Feed`: the items of a set of subscriptions, in arrival order, for a
//! Python thread (blocking, in batches, with the GIL released) or for
//! asyncio (a callback per batch).
//!
//! Each subscription's `EventStream` is drained by a forwarding task into
//! one bounded channel. The connection tasks never wait on it: when the
//! channel is full only the forwarding task waits, and behind it the
//! stream's own queue applies the engine's rules (a lone stream's
//! connection pauses, a shared WebSocket drops and reports `lagged`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mastostream::{Channel, ChannelError, ConnectionState, EventStream, Multiplex};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::engine::Engine;
use crate::item::{Message, message_tuple};
use crate::runtime;

/// Items waiting for Python, across all of a feed's subscriptions.
const CHANNEL_ITEMS: usize = 1024;
/// At most this many items per batch handed to Python.
const BATCH_ITEMS: usize = 256;
/// A blocking wait checks for signals (Ctrl-C) and `close()` this often.
const WAIT_SLICE: Duration = Duration::from_millis(50);

type Tagged = (u64, Message);

/// Threads inside `Feed.next` with the GIL released, for the exit hook to
/// wait on: one still in there when Python finalizes would be killed there.
pub static WAITING: AtomicUsize = AtomicUsize::new(0);

struct Subscription {
    task: AbortHandle,
    state: watch::Receiver<ConnectionState>,
}

/// One or more subscriptions and their items; made by `Engine.feed()`.
/// Weakly referenceable: the package closes the live ones at exit.
#[pyclass(module = "mastostream._native", frozen, weakref)]
pub struct Feed {
    engine: Py<Engine>,
    mux: Mutex<Option<Multiplex>>,
    tx: mpsc::Sender<Tagged>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Tagged>>>,
    subscriptions: Mutex<HashMap<u64, Subscription>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// Turns true on `close()` or drop: wakes an asyncio wait.
    closing: watch::Sender<bool>,
}

impl Feed {
    pub fn new(engine: Py<Engine>) -> PyResult<Feed> {
        let runtime = runtime::get().map_err(PyRuntimeError::new_err)?;
        let mux = if engine.get().websocket {
            // The WebSocket connects now, on the shared runtime.
            let _entered = runtime.enter();
            Some(engine.get().client.multiplex())
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(CHANNEL_ITEMS);
        Ok(Feed {
            engine,
            mux: Mutex::new(mux),
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            subscriptions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            closing: watch::Sender::new(false),
        })
    }

    fn abort_all(&self) {
        self.closing.send_replace(true);
        let subscriptions: Vec<Subscription> =
            lock(&self.subscriptions).drain().map(|(_, s)| s).collect();
        for subscription in subscriptions {
            subscription.task.abort();
        }
        lock(&self.mux).take();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-changed.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The stream named `name` with `params` (`tag` for hashtags, `list` for
/// lists; anything else passes through for a stream this version does not
/// name).
fn channel(name: &str, params: &[(String, String)]) -> PyResult<Channel> {
    let value = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let arg = match name {
        "hashtag" | "hashtag:local" => value("tag"),
        "list" => value("list"),
        _ => None,
    };
    match Channel::from_name(name, arg) {
        Ok(channel) => Ok(channel),
        Err(ChannelError::UnknownChannel) => Ok(Channel::other(name, params.to_vec())),
        Err(error) => Err(PyValueError::new_err(format!("stream {name:?}: {error}"))),
    }
}

async fn forward(id: u64, mut events: EventStream, tx: mpsc::Sender<Tagged>) {
    loop {
        let message = match events.next().await {
            Some(Ok(item)) => Message::Item(item),
            Some(Err(error)) => Message::End(Some(error)),
            None => Message::End(None),
        };
        let end = matches!(message, Message::End(_));
        if tx.send((id, message)).await.is_err() || end {
            return;
        }
    }
}

fn to_list<'py>(py: Python<'py>, batch: Vec<Tagged>) -> PyResult<Bound<'py, PyList>> {
    let tuples: Vec<Bound<'py, PyTuple>> = batch
        .into_iter()
        .map(|(id, message)| message_tuple(py, id, message))
        .collect::<PyResult<_>>()?;
    PyList::new(py, tuples)
}

#[pymethods]
impl Feed {
    /// A number for a subscription to be made with `subscribe(..., number)`,
    /// so that its items can be routed before the call returns.
    fn reserve(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// Subscribes to `name` with `params` (a list of `(key, value)`);
    /// returns the subscription's number (`number`, if reserved), which
    /// leads each of its items.
    #[pyo3(signature = (name, params=Vec::new(), number=None))]
    fn subscribe(
        &self,
        name: &str,
        params: Vec<(String, String)>,
        number: Option<u64>,
    ) -> PyResult<u64> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PyValueError::new_err("the feed is closed"));
        }
        let channel = channel(name, &params)?;
        let runtime = runtime::get().map_err(PyRuntimeError::new_err)?;
        let _entered = runtime.enter();
        // Heartbeats are SSE's comment lines; Mastodon.py's WebSocket
        // calls no handle_heartbeat for pings.
        let events = match lock(&self.mux).as_ref() {
            Some(mux) => mux.subscribe(channel),
            None => self
                .engine
                .get()
                .client
                .stream(channel)
                .with_heartbeats(true),
        };
        let state = events.watch_state();
        let id = number.unwrap_or_else(|| self.reserve());
        let task = runtime
            .spawn(forward(id, events, self.tx.clone()))
            .abort_handle();
        lock(&self.subscriptions).insert(id, Subscription { task, state });
        Ok(id)
    }

    /// Ends subscription `id` (on a shared WebSocket, unsubscribes).
    fn unsubscribe(&self, id: u64) {
        if let Some(subscription) = lock(&self.subscriptions).remove(&id) {
            subscription.task.abort();
        }
    }

    /// The next items, at most 256: waits up to `timeout` seconds (`None`:
    /// until some arrive) with the GIL released, checking for signals every
    /// 50 ms. An empty list when the time ran out; `None` once closed.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyList>>> {
        let runtime = runtime::get().map_err(PyRuntimeError::new_err)?;
        let deadline = match timeout {
            Some(t) => {
                let wait = Duration::try_from_secs_f64(t).or_else(|_| {
                    // Beyond what a Duration holds (1e20, infinity) waits as
                    // `None` does; NaN and negatives are errors.
                    if t > 0.0 {
                        Ok(Duration::MAX)
                    } else {
                        Err(PyValueError::new_err(format!(
                            "timeout must be a number >= 0, not {t}"
                        )))
                    }
                })?;
                // Beyond what the clock can hold: no deadline.
                Instant::now().checked_add(wait)
            }
            None => None,
        };
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let slice = deadline.map_or(WAIT_SLICE, |d| {
                d.saturating_duration_since(Instant::now()).min(WAIT_SLICE)
            });
            let rx = self.rx.clone();
            WAITING.fetch_add(1, Ordering::SeqCst);
            let batch = py.detach(|| {
                runtime.block_on(async move {
                    let mut batch = Vec::new();
                    let _ = tokio::time::timeout(slice, async {
                        rx.lock().await.recv_many(&mut batch, BATCH_ITEMS).await
                    })
                    .await;
                    batch
                })
            });
            WAITING.fetch_sub(1, Ordering::SeqCst);
            if !batch.is_empty() {
                return Ok(Some(to_list(py, batch)?.unbind()));
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Some(PyList::empty(py).unbind()));
            }
        }
    }

    /// Calls `callback(batch)` from an engine thread once items arrive
    /// (`callback(None)` if the feed is closed first); for asyncio, whose
    /// callback hands the batch to its loop.
    fn next_async(&self, callback: Py<PyAny>) -> PyResult<()> {
        let runtime = runtime::get().map_err(PyRuntimeError::new_err)?;
        let rx = self.rx.clone();
        let mut closing = self.closing.subscribe();
        runtime.spawn(async move {
            let mut batch = Vec::new();
            {
                let receive = std::pin::pin!(async {
                    rx.lock().await.recv_many(&mut batch, BATCH_ITEMS).await;
                });
                let closed = std::pin::pin!(closing.wait_for(|closed| *closed));
                futures_util::future::select(receive, closed).await;
            }
            // At interpreter exit (the feed closed by the exit hook, which
            // wakes this) the interpreter may be finalizing: attaching then
            // panicked, or killed this thread inside Rust. The batch is
            // then nobody's.
            let _ = Python::try_attach(|py| {
                let argument = if batch.is_empty() {
                    Ok(py.None())
                } else {
                    to_list(py, batch).map(|list| list.into_any().unbind())
                };
                let outcome = argument.and_then(|argument| callback.call1(py, (argument,)));
                if let Err(error) = outcome {
                    error.write_unraisable(py, None);
                }
            });
        });
        Ok(())
    }

    /// Whether subscription `id` has its connection open; without one,
    /// whether every subscription has (on a WebSocket feed, whether the
    /// WebSocket is open, with or without subscriptions).
    #[pyo3(signature = (id=None))]
    fn is_receiving(&self, id: Option<u64>) -> bool {
        let subscriptions = lock(&self.subscriptions);
        let open = |s: &Subscription| s.state.borrow().is_open();
        match (id, lock(&self.mux).as_ref()) {
            (Some(id), _) => subscriptions.get(&id).is_some_and(open),
            (None, Some(mux)) => mux.state().is_open() && subscriptions.values().all(open),
            (None, None) => !subscriptions.is_empty() && subscriptions.values().all(open),
        }
    }

    /// On a WebSocket feed, waits until its connection is open (`None`) or
    /// has failed (the error tuple), up to `timeout` seconds (then `None`),
    /// with the GIL released. `None` at once on an SSE feed.
    fn wait_connected(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Py<PyAny>>> {
        let runtime = runtime::get().map_err(PyRuntimeError::new_err)?;
        // A wait beyond what the clock can hold (1e19, infinity) has no
        // deadline; NaN and negatives wait not at all.
        let wait = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        let deadline = Instant::now().checked_add(wait);
        let mut states = match lock(&self.mux).as_ref() {
            Some(mux) => mux.watch_state(),
            None => return Ok(None),
        };
        loop {
            let state = states.borrow_and_update().clone();
            match state {
                ConnectionState::Open => return Ok(None),
                ConnectionState::Reconnecting { reason, .. }
                | ConnectionState::Closed(Some(reason)) => {
                    return Ok(Some(
                        crate::item::error_tuple(py, &reason)?.into_any().unbind(),
                    ));
                }
                _ => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            // Waits for the next change, in slices so that Ctrl-C is seen.
            let slice = deadline.map_or(WAIT_SLICE, |d| {
                d.saturating_duration_since(Instant::now()).min(WAIT_SLICE)
            });
            // The timer is made inside the runtime (it needs its clock).
            let changed = py.detach(|| {
                runtime.block_on(async { tokio::time::timeout(slice, states.changed()).await })
            });
            if let Ok(Err(_)) = changed {
                // The multiplexer is gone: nothing more will change.
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    /// Closes every subscription and the connection; returns at once.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.abort_all();
    }

    /// Whether `close()` was called.
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.abort_all();
    }
}
