//! `Engine`: a configured client. Every option is a keyword; the Python
//! layer maps Mastodon.py's parameters onto them.

use std::time::Duration;

use mastostream::{Client, ReconnectPolicy, Software, Transport};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::feed::Feed;
use crate::item::to_exception;
use crate::runtime;

/// A client of one server: `Engine(server, token=None, ...)`.
#[pyclass(module = "mastostream._native", frozen)]
pub struct Engine {
    pub(crate) client: Client,
    pub(crate) websocket: bool,
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative number of seconds, not {value}"
        ))
    })
}

/// The software a `server_software=` keyword names.
fn software(name: &str) -> PyResult<Software> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "mastodon" => Software::Mastodon,
        "glitch-soc" => Software::GlitchSoc,
        "pleroma" => Software::Pleroma,
        "akkoma" => Software::Akkoma,
        "gotosocial" => Software::GoToSocial,
        "iceshrimp" | "iceshrimp.net" => Software::Iceshrimp,
        _ => {
            return Err(PyValueError::new_err(format!(
                "server_software must be one of \"mastodon\", \"glitch-soc\", \"pleroma\", \"akkoma\", \"gotosocial\" or \"iceshrimp\", not {name:?}"
            )));
        }
    })
}

#[pymethods]
impl Engine {
    /// `reconnect`: `"off"` (the first break ends a stream), `"fixed"`
    /// (after `reconnect_wait` seconds, as Mastodon.py's
    /// `reconnect_async_wait_sec`) or `"backoff"` (the engine's jittered
    /// exponential backoff). `stall_timeout`: seconds without a byte (not
    /// even a heartbeat) after which a connection counts as dead; `None`
    /// never. `transport`: `"sse"`, `"websocket"` (one multiplexed
    /// connection per feed) or `"auto"`. `server_software`: the server's
    /// software (`"akkoma"`, …), for a `streaming_url` given without it
    /// the engine does not ask the server, and Pleroma and Akkoma read a
    /// WebSocket's token elsewhere than Mastodon.
    #[new]
    #[pyo3(signature = (
        server, token=None, *, user_agent=None, transport="sse", reconnect="backoff",
        reconnect_wait=5.0, stall_timeout=Some(300.0), connect_timeout=None, catch_up=false,
        streaming_url=None, cacert=Vec::new(), proxy=None, queue_limit=None,
        server_software=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        server: &str,
        token: Option<String>,
        user_agent: Option<String>,
        transport: &str,
        reconnect: &str,
        reconnect_wait: f64,
        stall_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        catch_up: bool,
        streaming_url: Option<String>,
        cacert: Vec<String>,
        proxy: Option<String>,
        queue_limit: Option<usize>,
        server_software: Option<&str>,
        py: Python<'_>,
    ) -> PyResult<Engine> {
        let mut builder = Client::builder(server);
        if let Some(token) = token {
            builder = builder.token(token);
        }
        if let Some(agent) = user_agent {
            builder = builder.user_agent(agent);
        }
        let (chosen, websocket) = match transport {
            "sse" => (Transport::Sse, false),
            "websocket" => (Transport::WebSocket, true),
            "auto" => (Transport::Auto, false),
            other => {
                return Err(PyValueError::new_err(format!(
                    "transport must be \"sse\", \"websocket\" or \"auto\", not {other:?}"
                )));
            }
        };
        builder = builder.transport(chosen);
        let policy = match reconnect {
            "off" => ReconnectPolicy::Off,
            "fixed" => ReconnectPolicy::Fixed(seconds("reconnect_wait", reconnect_wait)?),
            "backoff" => ReconnectPolicy::default(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "reconnect must be \"off\", \"fixed\" or \"backoff\", not {other:?}"
                )));
            }
        };
        builder = builder.reconnect(policy);
        builder = builder.stall_timeout(stall_timeout.map(|s| seconds("timeout", s)).transpose()?);
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(seconds("connect_timeout", timeout)?);
        }
        builder = builder.catch_up(catch_up);
        if let Some(url) = streaming_url {
            builder = builder.streaming_url(url);
        }
        if let Some(name) = server_software {
            builder = builder.server_software(software(name)?);
        }
        for path in cacert {
            let pem = std::fs::read(&path).map_err(|e| {
                PyValueError::new_err(format!("cannot read the CA file {path}: {e}"))
            })?;
            builder = builder.add_root_certificates_pem(pem);
        }
        if let Some(proxy) = proxy {
            builder = builder.proxy(proxy);
        }
        if let Some(bytes) = queue_limit {
            builder = builder.queue_limit(bytes);
        }
        // Python reads the payload text only (json.loads, Mastodon.py's
        // casts); as in Mastodon.py, JSON that is not the entity it names
        // still reaches the listener.
        builder = builder.parse_on_demand(true);
        let client = builder.build().map_err(|e| to_exception(py, &e))?;
        Ok(Engine { client, websocket })
    }

    /// A new feed: its subscriptions share one WebSocket when the engine's
    /// transport is `"websocket"`, else each is a stream of its own.
    fn feed(slf: Bound<'_, Self>) -> PyResult<Feed> {
        Feed::new(slf.unbind())
    }

    /// The streaming server's health check: `None` when it answers `OK`,
    /// else the error tuple saying why not.
    fn health(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let runtime = runtime::get().map_err(PyValueError::new_err)?;
        let client = self.client.clone();
        let answer = py.detach(|| runtime.block_on(async move { client.health().await }));
        match answer {
            Ok(()) => Ok(None),
            Err(error) => Ok(Some(
                crate::item::error_tuple(py, &error)?.into_any().unbind(),
            )),
        }
    }

    fn __repr__(&self) -> String {
        // The token never appears here.
        format!("<mastostream Engine for {}>", self.client.server())
    }
}
