//! Opening a WebSocket to `<streaming host>/api/v1/streaming`, over our own
//! TCP and rustls, with tungstenite doing the handshake and framing.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, http::HeaderValue};

use crate::Error;
use crate::transport::context::{Context, WsAuth};
use crate::transport::{proxy, tls};
use mastostream_proto::{Channel, WebSocketToken};

/// The byte stream under a WebSocket: plain TCP or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open WebSocket.
pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// How much tungstenite reads at a time. Its 128 KiB default costs ~1.3 GB
/// for 10,000 idle connections; Mastodon frames are a few KiB.
pub const READ_BUFFER: usize = 8 * 1024;

fn ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Connects and upgrades; a refused upgrade is an [`Error::Http`] with
/// Mastodon's `X-Error-Message`.
pub(crate) async fn connect(
    inner: &Context,
    base: &reqwest::Url,
    initial: Option<&Channel>,
) -> Result<Socket, Error> {
    let secure = base.scheme() == "https";
    // An IPv6 literal comes bracketed (`[::1]`); neither the resolver nor
    // rustls' server name wants the brackets.
    let host = base
        .host_str()
        .unwrap_or("localhost")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = base
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    let mut url = base.clone();
    let _ = url.set_scheme(if secure { "wss" } else { "ws" });
    url.set_path("/api/v1/streaming");
    url.set_query(None);
    if let Some(channel) = initial {
        // The stream named in the URL, as every server takes it: `stream`,
        // then `tag` or `list` (or a server's own stream's parameters).
        let mut query = url.query_pairs_mut();
        query.append_pair("stream", channel.name());
        match channel {
            Channel::Hashtag(tag) | Channel::HashtagLocal(tag) => {
                query.append_pair("tag", tag);
            }
            Channel::List(id) => {
                query.append_pair("list", id);
            }
            Channel::Other { params, .. } => {
                for (key, value) in params {
                    query.append_pair(key, value);
                }
            }
            _ => {}
        }
    }
    tracing::debug!(url = %url, "opening WebSocket");
    // The default, a Bearer header, is not read by every server: where
    // discovery found one that ignores it, the token goes where that
    // server reads it (the URL is logged above, before it holds a token).
    let ws_auth = match (inner.ws_auth, inner.software().map(|s| s.websocket_token())) {
        (WsAuth::Header, Some(WebSocketToken::Protocol)) => WsAuth::Protocol,
        (WsAuth::Header, Some(WebSocketToken::Query)) => WsAuth::Query,
        (WsAuth::Header, None)
            if inner.token.is_some()
                && inner.streaming_override.is_some()
                && !inner.unnamed_software_noted.swap(true, Ordering::Relaxed) =>
        {
            tracing::info!(
                "the streaming URL was given, so the server software is not known: the token goes in the Authorization header, which Pleroma and Akkoma do not read (their user streams would be anonymous); on those, name the server with ClientBuilder::server_software"
            );
            WsAuth::Header
        }
        (chosen, _) => chosen,
    };
    if let (Some(token), WsAuth::Query) = (&inner.token, ws_auth) {
        url.query_pairs_mut()
            .append_pair("access_token", token.expose());
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::Config(format!("bad WebSocket URL: {}", redact(e))))?;
    let headers = request.headers_mut();
    if let Some(token) = &inner.token {
        let (name, value) = match ws_auth {
            WsAuth::Header => ("authorization", format!("Bearer {}", token.expose())),
            WsAuth::Protocol => ("sec-websocket-protocol", token.expose().to_owned()),
            WsAuth::Query => ("", String::new()),
        };
        if !name.is_empty() {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
    if let Ok(agent) = HeaderValue::from_str(&inner.user_agent) {
        headers.insert("user-agent", agent);
    }

    let tcp = match proxy::proxy_for(&inner.proxies, base) {
        // Through the proxy's CONNECT tunnel: it sees the host and port only.
        Some(proxy) => proxy::tunnel(&proxy, &host, port, inner.connect_timeout).await?,
        None => {
            let connect = TcpStream::connect((host.as_str(), port));
            tokio::time::timeout(inner.connect_timeout, connect)
                .await
                .map_err(|_| network_text("connect timed out"))?
                .map_err(Error::network)?
        }
    };
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if secure {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Error::Config(format!("bad host name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(inner.tls.websocket.clone()).connect(name, tcp);
        let tls = tokio::time::timeout(inner.request_timeout, tls)
            .await
            .map_err(|_| network_text("the TLS handshake timed out"))?
            .map_err(|error| match tls::certificate_refusal(&error) {
                Some(reason) => tls::certificate_error(&host, reason),
                None => Error::network(error),
            })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let config = ws_config(
        inner
            .settings
            .max_event_size
            .saturating_mul(2)
            .max(64 * 1024),
    );
    let handshake = tokio_tungstenite::client_async_with_config(request, io, Some(config));
    match tokio::time::timeout(inner.request_timeout, handshake).await {
        Err(_) => Err(network_text("the WebSocket handshake timed out")),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => Err(refused(&response)),
        // Asked to take the token as a subprotocol, the server chose none:
        // it does not read the token there (Pleroma 2.7), and asking again
        // would go the same way.
        Ok(Err(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(
                tungstenite::error::SubProtocolError::NoSubProtocol,
            ),
        ))) => Err(Error::Config(
            "the server does not take the token as a subprotocol \
             (Sec-WebSocket-Protocol): choose WsAuth::Header or WsAuth::Query"
                .into(),
        )),
        Ok(Err(error)) => Err(network_text(&redact(error))),
    }
}

fn network_text(message: &str) -> Error {
    Error::Network {
        message: message.to_owned(),
        source: None,
    }
}

/// The error's text without any URL (a query token would be in it).
fn redact(error: impl std::fmt::Display) -> String {
    let text = error.to_string();
    match text.find("access_token=") {
        Some(at) => format!("{}access_token=<redacted>", &text[..at]),
        None => text,
    }
}

/// A refused upgrade: the status, and the reason from `X-Error-Message` or a JSON body.
fn refused(response: &tungstenite::http::Response<Option<Vec<u8>>>) -> Error {
    let body = response.body().as_deref().unwrap_or_default();
    super::http::refusal(response.status().as_u16(), response.headers(), body)
}
