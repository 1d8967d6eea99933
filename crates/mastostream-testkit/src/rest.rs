//! The REST endpoints a streaming client touches: instance discovery and the
//! timelines that catch-up pages through.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::http;
use crate::ids::IdFormat;
use crate::state::AppState;
use crate::store::{Page, PageParams, TimelineFilter};

/// Mastodon's defaults and caps for `limit`.
const STATUS_LIMIT: (usize, usize) = (20, 40);
const NOTIFICATION_LIMIT: (usize, usize) = (40, 80);
const CONVERSATION_LIMIT: (usize, usize) = (20, 40);

/// The REST routes, each also with a trailing slash, as Mastodon's router allows.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (path, handler) in [
        ("/api/v1/instance", get(instance_v1)),
        ("/api/v2/instance", get(instance_v2)),
        ("/api/v1/timelines/home", get(home)),
        ("/api/v1/timelines/public", get(public)),
        ("/api/v1/timelines/tag/{tag}", get(tag)),
        ("/api/v1/timelines/list/{id}", get(list)),
        ("/api/v1/notifications", get(notifications)),
        ("/api/v1/conversations", get(conversations)),
        ("/robots.txt", get(robots)),
    ] {
        router = router
            .route(path, handler.clone())
            .route(&format!("{path}/"), handler);
    }
    router
}

fn host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
}

/// The streaming URL to advertise: the configured one, or this server's own.
fn streaming_url(state: &AppState, headers: &HeaderMap) -> String {
    state.settings.streaming_url.clone().unwrap_or_else(|| {
        let scheme = if state.settings.secure { "wss" } else { "ws" };
        format!("{scheme}://{}", host(headers))
    })
}

async fn instance_v1(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let body = json!({
        "uri": host(&headers),
        "title": "mastostream testkit",
        "short_description": "A Mastodon-compatible streaming test server",
        "description": "",
        "email": "",
        "version": state.hub.flavour.instance_software().0,
        "urls": { "streaming_api": streaming_url(&state, &headers) },
        "stats": { "user_count": 1, "status_count": 0, "domain_count": 0 },
        "languages": ["en"],
        "registrations": false,
        "approval_required": false,
        "invites_enabled": false,
        "configuration": {},
        "contact_account": null,
        "rules": []
    });
    http::json_response(StatusCode::OK, body.to_string())
}

async fn instance_v2(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let body = json!({
        "domain": host(&headers),
        "title": "mastostream testkit",
        "version": state.hub.flavour.instance_software().0,
        "source_url": state.hub.flavour.instance_software().1,
        "description": "A Mastodon-compatible streaming test server",
        "usage": { "users": { "active_month": 1 } },
        "thumbnail": { "url": "" },
        "languages": ["en"],
        "configuration": {
            "urls": { "streaming": streaming_url(&state, &headers), "status": null }
        },
        "registrations": { "enabled": false, "approval_required": false, "message": null },
        "api_versions": { "mastodon": 6 },
        "contact": { "email": "", "account": null },
        "rules": []
    });
    http::json_response(StatusCode::OK, body.to_string())
}

fn flag(query: &http::Query, key: &str) -> bool {
    mastostream_proto::query_flag(query.get(key).map(String::as_str))
}

/// A pending `reject_rest` fault, as the response to send instead.
fn rest_rejection(state: &AppState) -> Option<Response> {
    crate::sse::rejection_response(state.hub.faults.take_reject_rest()?)
}

fn page_params(
    query: &http::Query,
    (default, max): (usize, usize),
    format: IdFormat,
) -> PageParams {
    let id = |key: &str| query.get(key).and_then(|v| format.read(v));
    // Rails: `params[:limit].to_i.abs`, capped; text that is not a number is 0.
    let limit = query.get("limit").map_or(default, |v| {
        let digits = v.trim_start_matches(['-', '+']);
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse::<usize>().unwrap_or(0)
    });
    let limit = limit.min(max);
    PageParams {
        max_id: id("max_id"),
        since_id: id("since_id"),
        min_id: id("min_id"),
        limit,
    }
}

/// A REST endpoint that needs a user token answers 401 without one.
fn require_user(state: &AppState, headers: &HeaderMap, query: &http::Query) -> Option<Response> {
    let refused = state.settings.tokens.check(headers, query).is_err();
    refused.then(|| http::json_error(StatusCode::UNAUTHORIZED, "The access token is invalid"))
}

/// The JSON array of a page, with the `Link` header Mastodon sends: `next`
/// pages older with `max_id`, `prev` pages newer with `min_id`; other
/// parameters kept. No `Link` for an empty page.
fn page_response(
    page: Page,
    (scheme, format): (&str, IdFormat),
    headers: &HeaderMap,
    path: &str,
    query: &http::Query,
    carried: &[&str],
) -> Response {
    let mut body = String::with_capacity(2 + page.items.iter().map(|i| i.len() + 1).sum::<usize>());
    body.push('[');
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push(']');
    let mut response = http::json_response(StatusCode::OK, body);
    if let (Some(newest), Some(oldest)) = (page.newest, page.oldest) {
        let mut kept: Vec<(&String, &String)> = query
            .iter()
            .filter(|(k, _)| carried.contains(&k.as_str()))
            .collect();
        kept.sort();
        let base = format!("{scheme}://{}{}", host(headers), path);
        let url = |key: &str, id: u64| {
            let id = format.write(id);
            let mut url = format!("{base}?");
            for (k, v) in &kept {
                url.push_str(&format!(
                    "{}={}&",
                    mastostream_proto::percent_encode(k),
                    mastostream_proto::percent_encode(v)
                ));
            }
            url.push_str(&format!("{key}={id}"));
            url
        };
        let link = format!(
            "<{}>; rel=\"next\", <{}>; rel=\"prev\"",
            url("max_id", oldest),
            url("min_id", newest)
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// One REST list endpoint: where it lives, what its `Link` carries, its
/// `limit` default and cap, and whether it needs a user token.
struct Listing<'a> {
    path: String,
    carried: &'a [&'a str],
    limits: (usize, usize),
    needs_user: bool,
}

/// Serves a page of `listing` from the store: faults first, then auth (as
/// Mastodon checks it), then the page with its `Link` header.
fn serve(
    state: &AppState,
    headers: &HeaderMap,
    query: &http::Query,
    listing: Listing<'_>,
    page: impl FnOnce(&crate::store::Store, PageParams) -> Page,
) -> Response {
    if let Some(response) = rest_rejection(state) {
        // A refused fetch is answered too: tests wait on either.
        state.hub.page_served();
        return response;
    }
    if listing.needs_user
        && let Some(response) = require_user(state, headers, query)
    {
        return response;
    }
    let format = state.hub.id_format();
    let params = page_params(query, listing.limits, format);
    let mut page = page(&state.hub.store(), params);
    if params.min_id.is_some() && state.hub.flavour.min_id_pages_ascending() {
        page.items.reverse();
    }
    let scheme = if state.settings.secure {
        "https"
    } else {
        "http"
    };
    let response = page_response(
        page,
        (scheme, format),
        headers,
        &listing.path,
        query,
        listing.carried,
    );
    state.hub.page_served();
    response
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<http::Query>,
) -> Response {
    let listing = Listing {
        path: "/api/v1/timelines/home".into(),
        carried: &["local", "limit"],
        limits: STATUS_LIMIT,
        needs_user: true,
    };
    serve(&state, &headers, &query, listing, |store, params| {
        store.timeline(&TimelineFilter::Home, params)
    })
}

/// `/robots.txt`, when the server was given one.
async fn robots(State(state): State<AppState>) -> Response {
    match &state.settings.robots {
        Some(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            text.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn public(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<http::Query>,
) -> Response {
    // Mastodon's Api::V1::Timelines::PublicController with
    // `timeline_preview` off: `require_user!` answers 422.
    if !state.settings.timeline_preview && state.settings.tokens.check(&headers, &query).is_err() {
        return http::json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This method requires an authenticated user",
        );
    }
    let filter = TimelineFilter::Public {
        local: flag(&query, "local"),
        remote: flag(&query, "remote"),
        only_media: flag(&query, "only_media"),
    };
    let listing = Listing {
        path: "/api/v1/timelines/public".into(),
        carried: &["local", "remote", "limit", "only_media"],
        limits: STATUS_LIMIT,
        needs_user: false,
    };
    serve(&state, &headers, &query, listing, |store, params| {
        store.timeline(&filter, params)
    })
}

async fn tag(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    headers: HeaderMap,
    Query(query): Query<http::Query>,
) -> Response {
    let filter = TimelineFilter::Tag {
        tag: mastostream_proto::normalize_hashtag(&tag),
        local: flag(&query, "local"),
        remote: flag(&query, "remote"),
        only_media: flag(&query, "only_media"),
    };
    let listing = Listing {
        path: format!(
            "/api/v1/timelines/tag/{}",
            mastostream_proto::percent_encode(&tag)
        ),
        carried: &["local", "limit", "only_media"],
        limits: STATUS_LIMIT,
        needs_user: false,
    };
    serve(&state, &headers, &query, listing, |store, params| {
        store.timeline(&filter, params)
    })
}

async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<http::Query>,
) -> Response {
    let listing = Listing {
        path: format!(
            "/api/v1/timelines/list/{}",
            mastostream_proto::percent_encode(&id)
        ),
        carried: &["limit"],
        limits: STATUS_LIMIT,
        needs_user: true,
    };
    let filter = TimelineFilter::List(id);
    serve(&state, &headers, &query, listing, |store, params| {
        store.timeline(&filter, params)
    })
}

async fn notifications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<http::Query>,
) -> Response {
    let listing = Listing {
        path: "/api/v1/notifications".into(),
        carried: &["limit", "account_id", "types[]", "exclude_types[]"],
        limits: NOTIFICATION_LIMIT,
        needs_user: true,
    };
    serve(&state, &headers, &query, listing, |store, params| {
        store.notifications(params)
    })
}

async fn conversations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<http::Query>,
) -> Response {
    let listing = Listing {
        path: "/api/v1/conversations".into(),
        carried: &["limit"],
        limits: CONVERSATION_LIMIT,
        needs_user: true,
    };
    serve(&state, &headers, &query, listing, |store, params| {
        store.conversations(params)
    })
}
