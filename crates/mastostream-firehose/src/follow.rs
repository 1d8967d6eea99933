//! Following one instance: its `robots.txt` first, then its `public:local`
//! stream through the library (reconnects, stall detection and catch-up
//! included), else its public local timeline over REST, else reported as
//! unsupported, once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mastostream::{Client, Error, EventKind, Item};
use mastostream_proto::Channel;
use tokio::sync::mpsc;

use crate::Settings;
use crate::coordinate::Positions;
use crate::health::{Health, InstanceState};
use crate::instances::Instance;
use crate::poll::{self, Polled};

/// A status from an instance: its JSON text as the server sent it.
#[derive(Debug)]
pub struct Record {
    /// The instance it came from.
    pub host: Arc<str>,
    /// The status.
    pub json: String,
}

/// Follows `instance` until the feed is gone or the instance cannot be
/// followed; after the status `resume_after` when given (another worker's
/// last), else from now. With `positions` (coordinated), "now" is recorded
/// there first as the newest status of the timeline, so that a worker
/// taking the instance over before it delivered anything resumes from it
/// rather than from its own now.
pub async fn follow(
    instance: Instance,
    settings: Arc<Settings>,
    health: Arc<Health>,
    out: mpsc::Sender<Record>,
    resume_after: Option<String>,
    positions: Option<Arc<Positions>>,
) {
    let host: Arc<str> = instance.host.clone().into();
    let set = |state: InstanceState| {
        if health.set(&host, state.clone()) {
            match &state {
                InstanceState::Unsupported(reason) | InstanceState::Failed(reason) => {
                    tracing::warn!(instance = %host, "{}: {reason}", state_word(&state));
                }
                InstanceState::Disallowed => {
                    tracing::warn!(instance = %host, "robots.txt disallows mastostream: not followed");
                }
                _ => tracing::debug!(instance = %host, ?state, "instance state"),
            }
        }
    };
    let robots = fetch_robots(&settings.http, &instance.url).await;
    let may = |path: &str| crate::robots::allows(&robots, crate::AGENT_NAME, path);
    let may_stream = may("/api/v1/streaming");
    let may_poll = may("/api/v1/timelines/public");
    if !may_stream && !may_poll {
        set(InstanceState::Disallowed);
        return;
    }
    let resume_after = match (resume_after, &positions) {
        (None, Some(positions)) if may_poll => {
            let start = starting_point(&settings, &instance).await;
            if let Some(id) = &start {
                tracing::debug!(instance = %host, id, "starting point recorded");
                positions.delivered(&host, id);
            }
            start
        }
        (resume_after, _) => resume_after,
    };
    if may_stream {
        match stream(
            &instance,
            &settings,
            &host,
            &out,
            &set,
            resume_after.as_deref(),
        )
        .await
        {
            Ended::ConsumerGone => return,
            Ended::Refused(error)
                if may_poll && (error.is_auth() || matches!(error, Error::Unsupported { .. })) =>
            {
                tracing::info!(instance = %host, %error, "streaming refused; polling the timeline instead");
            }
            Ended::Refused(error) if may_poll && instance.token.is_none() => {
                tracing::info!(instance = %host, %error, "no stream; polling the timeline instead");
            }
            Ended::Refused(error) => {
                set(InstanceState::Failed(error.to_string()));
                return;
            }
        }
    }
    // After a stream that delivered, polling goes on from its last status
    // (coordinated, the positions know it) rather than from the start.
    let delivered = positions
        .as_ref()
        .and_then(|positions| positions.get(&host));
    poll_loop(
        &instance,
        &settings,
        &host,
        &out,
        &set,
        delivered.or(resume_after),
    )
    .await;
}

/// Where the public local timeline stands: its newest status's id, or
/// `"0"` (before every id) when it is empty; `None` when it cannot be read
/// (the follower then starts from its own now, as it would uncoordinated).
async fn starting_point(settings: &Settings, instance: &Instance) -> Option<String> {
    let token = instance.token.as_deref();
    match poll::page(&settings.http, &instance.url, token, None).await {
        Polled::Page { statuses, .. } => match statuses.last() {
            Some(newest) => poll::id_of(newest),
            None => Some("0".into()),
        },
        _ => None,
    }
}

fn state_word(state: &InstanceState) -> &'static str {
    match state {
        InstanceState::Unsupported(_) => "unsupported",
        _ => "failed",
    }
}

/// The text of the instance's `robots.txt`; empty when it has none.
async fn fetch_robots(http: &reqwest::Client, base: &str) -> String {
    let Ok(response) = http.get(format!("{base}/robots.txt")).send().await else {
        return String::new();
    };
    if !response.status().is_success() {
        return String::new();
    }
    // What lies past 500 KiB is not read (RFC 9309, section 2.5, lets a
    // crawler stop there; Google does).
    match poll::body_up_to(response, 500 * 1024).await {
        Ok((body, _)) => String::from_utf8_lossy(&body).into_owned(),
        Err(_) => String::new(),
    }
}

enum Ended {
    /// The feed is gone: stop.
    ConsumerGone,
    /// The stream ended for good with this error.
    Refused(Error),
}

async fn stream(
    instance: &Instance,
    settings: &Settings,
    host: &Arc<str>,
    out: &mpsc::Sender<Record>,
    set: &impl Fn(InstanceState),
    resume_after: Option<&str>,
) -> Ended {
    let mut builder = Client::builder(instance.url.clone())
        .user_agent(settings.user_agent.clone())
        .catch_up(true)
        .reconnect(settings.reconnect.clone());
    if let Some(token) = &instance.token {
        builder = builder.token(token.clone());
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => return Ended::Refused(error),
    };
    let mut events = match resume_after {
        Some(id) => client.stream_resuming(Channel::PublicLocal, id),
        None => client.stream(Channel::PublicLocal),
    };
    while let Some(item) = events.next().await {
        match item {
            Ok(Item::Event(event)) => {
                if !matches!(event.kind(), Ok(EventKind::Update(_))) {
                    continue;
                }
                let Some(json) = event.payload().as_str() else {
                    continue;
                };
                let record = Record {
                    host: host.clone(),
                    json: json.to_owned(),
                };
                if out.send(record).await.is_err() {
                    return Ended::ConsumerGone;
                }
            }
            Ok(Item::Connected) => set(InstanceState::Streaming),
            Ok(Item::Reconnecting { .. }) => set(InstanceState::BackingOff),
            Ok(_) => {}
            Err(error) => return Ended::Refused(error),
        }
    }
    Ended::Refused(Error::Closed)
}

async fn poll_loop(
    instance: &Instance,
    settings: &Settings,
    host: &Arc<str>,
    out: &mpsc::Sender<Record>,
    set: &impl Fn(InstanceState),
    resume_after: Option<String>,
) {
    let token = instance.token.as_deref();
    // Resuming, the first page is what came after; else it only says where
    // the timeline stands: the feed starts now, as a stream would.
    let mut started = resume_after.is_some();
    let mut cursor: Option<String> = resume_after;
    let mut failures: u32 = 0;
    loop {
        let pause = match poll::page(&settings.http, &instance.url, token, cursor.as_deref()).await
        {
            Polled::Page {
                statuses,
                full,
                budget,
            } => {
                set(InstanceState::Polling);
                failures = 0;
                let first = !started;
                started = true;
                if let Some(newest) = statuses.last().and_then(|json| poll::id_of(json)) {
                    cursor = Some(newest);
                }
                if !first {
                    for json in statuses {
                        let record = Record {
                            host: host.clone(),
                            json,
                        };
                        if out.send(record).await.is_err() {
                            return;
                        }
                    }
                }
                // A full page: more are waiting; fetch them as soon as the
                // request budget allows.
                if full && !first {
                    settings.min_request_gap
                } else {
                    poll::interval(budget, settings.poll_interval, settings.min_request_gap)
                }
            }
            Polled::Wait(wait) => {
                set(InstanceState::BackingOff);
                wait.max(settings.min_request_gap)
            }
            Polled::Refused(reason) => {
                let reason = if instance.token.is_none() {
                    format!("{reason}, and its stream needs a token (none given)")
                } else {
                    reason
                };
                set(InstanceState::Unsupported(reason));
                return;
            }
            Polled::Failed(reason) => {
                set(InstanceState::BackingOff);
                tracing::debug!(instance = %host, %reason, "poll failed");
                failures = failures.saturating_add(1);
                backoff(failures)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = out.closed() => return,
        }
    }
}

/// 2 s doubling to at most 5 minutes.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(failures.min(9))).min(Duration::from_secs(300))
}
