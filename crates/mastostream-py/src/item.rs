//! What crosses into Python: a stream's items as tuples, its errors as
//! `(kind, message, status, retry_after)` tuples that the Python layer turns
//! into Mastodon.py's exceptions.
//!
//! Item tuples, each led by the subscription's number:
//! - `(id, "event", name, payload text or None, caught_up)`
//! - `(id, "heartbeat")`, `(id, "connecting")`, `(id, "connected")`
//! - `(id, "reconnecting", attempt, delay_secs, error)`
//! - `(id, "skipped", error)` (a malformed event, passed over)
//! - `(id, "lagged", lost)` (events dropped for a slow consumer)
//! - `(id, "end", error or None)`: the last of that subscription.

use mastostream::{Error, Item};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

create_exception!(
    _native,
    EngineError,
    PyException,
    "An engine error: args are (kind, message, status, retry_after)."
);

/// One message from a subscription's forwarding task.
pub enum Message {
    Item(Item),
    End(Option<Error>),
}

/// An error's kind, for the Python layer to choose an exception by.
fn kind(error: &Error) -> &'static str {
    match error {
        Error::MalformedEvent { .. } => "malformed",
        Error::EventTooLarge { .. } => "too_large",
        // The server closed the body normally (Mastodon.py: the call returns).
        Error::Network { message, .. } if message == "the server ended the stream" => "ended",
        Error::Network { .. } => "network",
        Error::Certificate { .. } => "certificate",
        Error::Stalled { .. } => "stalled",
        Error::NotAStream { .. } => "not_a_stream",
        Error::Http { .. } => "http",
        Error::Unsupported { .. } => "unsupported",
        Error::Closed => "closed",
        Error::Config(_) => "config",
        _ => "other",
    }
}

/// `(kind, message, status, retry_after)`.
pub fn error_tuple<'py>(py: Python<'py>, error: &Error) -> PyResult<Bound<'py, PyTuple>> {
    let (status, retry_after) = match error {
        Error::Http {
            status,
            retry_after,
            ..
        } => (Some(*status), *retry_after),
        _ => (None, None),
    };
    (kind(error), error.to_string(), status, retry_after).into_pyobject(py)
}

/// The error as a Python exception carrying [`error_tuple`].
pub fn to_exception(py: Python<'_>, error: &Error) -> PyErr {
    match error_tuple(py, error) {
        Ok(args) => EngineError::new_err(args.unbind()),
        Err(e) => e,
    }
}

/// A message as its tuple.
pub fn message_tuple<'py>(
    py: Python<'py>,
    id: u64,
    message: Message,
) -> PyResult<Bound<'py, PyTuple>> {
    let item = match message {
        Message::End(None) => return (id, "end", py.None()).into_pyobject(py),
        Message::End(Some(error)) => {
            return (id, "end", error_tuple(py, &error)?).into_pyobject(py);
        }
        Message::Item(item) => item,
    };
    match item {
        Item::Event(event) => (
            id,
            "event",
            event.name(),
            event.payload().as_str(),
            event.is_caught_up(),
        )
            .into_pyobject(py),
        Item::Heartbeat => (id, "heartbeat").into_pyobject(py),
        Item::Connecting => (id, "connecting").into_pyobject(py),
        Item::Connected => (id, "connected").into_pyobject(py),
        Item::Reconnecting {
            attempt,
            delay,
            reason,
        } => (
            id,
            "reconnecting",
            attempt,
            delay.as_secs_f64(),
            error_tuple(py, &reason)?,
        )
            .into_pyobject(py),
        Item::Skipped(error) => (id, "skipped", error_tuple(py, &error)?).into_pyobject(py),
        Item::Lagged { lost, .. } => (id, "lagged", lost).into_pyobject(py),
        other => (id, "other", format!("{other:?}")).into_pyobject(py),
    }
}
