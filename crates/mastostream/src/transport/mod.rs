//! The tokio drivers: HTTP for SSE and REST, and the task that keeps a stream
//! connected. They add sockets and time to the sans-IO [`mastostream_proto`] core. Nothing
//! here imports the front-ends above (client, listener, blocking, streams).

pub(crate) mod batch;
#[cfg(feature = "catch-up")]
pub(crate) mod catch_up;
pub(crate) mod context;
pub(crate) mod handle;
pub(crate) mod http;
#[cfg(feature = "websocket")]
pub(crate) mod mux;
pub(crate) mod proxy;
pub(crate) mod queue;
pub(crate) mod race;
#[cfg(feature = "websocket")]
pub(crate) mod refusal;
pub(crate) mod sse;
pub(crate) mod task;
pub(crate) mod tls;
#[cfg(feature = "websocket")]
pub(crate) mod ws;

/// A stream's catch-up setting: none, or how to catch up (with the
/// `catch-up` feature; without it there is nothing to set).
#[cfg(feature = "catch-up")]
pub(crate) type CatchUpSetting = Option<catch_up::CatchUpConfig>;
/// A stream's catch-up setting: without the `catch-up` feature, always `None`.
#[cfg(not(feature = "catch-up"))]
pub(crate) type CatchUpSetting = Option<std::convert::Infallible>;

/// Sleeps until a liveness deadline, or forever when there is none.
pub(crate) async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Opens `channel` on the context's transport, with catch-up when asked:
/// its own SSE task, or a subscription on the shared WebSocket. Outside a
/// tokio runtime the stream yields a clear error and ends (it does not panic).
pub(crate) fn open(
    context: &std::sync::Arc<context::Context>,
    channel: mastostream_proto::Channel,
    catch_up: CatchUpSetting,
    resume_after: Option<String>,
) -> handle::TaskHandle {
    #[cfg(not(feature = "catch-up"))]
    let _ = resume_after;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return handle::failed(
            channel,
            crate::Error::Config(
                "streams run on a tokio runtime and none is running here; \
                 call this from inside one, or use mastostream::blocking"
                    .into(),
            ),
        );
    };
    let mut handle = match context.transport {
        context::Transport::Sse | context::Transport::Auto => {
            task::spawn_on(&runtime, context.clone(), channel)
        }
        #[cfg(feature = "websocket")]
        context::Transport::WebSocket => mux::shared(context).subscribe_handle(channel, false),
        // The builder refuses the WebSocket without the feature.
        #[cfg(not(feature = "websocket"))]
        context::Transport::WebSocket => task::spawn_on(&runtime, context.clone(), channel),
    };
    handle.on_demand = context.settings.parse_on_demand;
    match catch_up {
        #[cfg(feature = "catch-up")]
        Some(config) => catch_up::wrap(context.clone(), handle, config, resume_after),
        #[cfg(not(feature = "catch-up"))]
        Some(never) => match never {},
        None => handle,
    }
}
