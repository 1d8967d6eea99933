//! Access tokens, found and checked as Mastodon's streaming server does.

use std::collections::{HashMap, HashSet};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

/// Which tokens the server accepts.
#[derive(Debug, Clone, Default)]
pub enum TokenPolicy {
    /// Any non-empty token.
    #[default]
    AnyNonEmpty,
    /// Only these.
    Only(HashSet<String>),
}

/// Why a request was refused, with Mastodon's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token anywhere.
    Missing,
    /// A token the server does not know.
    Invalid,
}

impl AuthError {
    /// The text Mastodon puts in `error` (SSE) or `X-Error-Message` (WebSocket).
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => "Missing access token",
            AuthError::Invalid => "Invalid access token",
        }
    }
}

/// Where the token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Header,
    /// `?access_token=`.
    Query,
    /// `Sec-WebSocket-Protocol`.
    Protocol,
}

/// Finds the request's token: the `Authorization` header wins over the
/// `access_token` query parameter, which wins over `Sec-WebSocket-Protocol`.
pub fn find_token(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<(String, TokenSource)> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    if let Some(token) = header {
        return Some((token.to_owned(), TokenSource::Header));
    }
    if let Some(token) = query.get("access_token").filter(|t| !t.is_empty()) {
        return Some((token.clone(), TokenSource::Query));
    }
    headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_owned(), TokenSource::Protocol))
}

impl TokenPolicy {
    /// Checks a request's credentials.
    pub fn check(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
    ) -> Result<(String, TokenSource), AuthError> {
        let (token, source) = find_token(headers, query).ok_or(AuthError::Missing)?;
        match self {
            TokenPolicy::AnyNonEmpty => Ok((token, source)),
            TokenPolicy::Only(tokens) if tokens.contains(&token) => Ok((token, source)),
            TokenPolicy::Only(_) => Err(AuthError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wins_over_query_and_protocol() {
        let mut headers = HeaderMap::new();
        headers.insert(SEC_WEBSOCKET_PROTOCOL, "proto".parse().unwrap());
        let mut query = HashMap::new();
        assert_eq!(
            find_token(&headers, &query).unwrap().1,
            TokenSource::Protocol
        );
        query.insert("access_token".to_owned(), "q".to_owned());
        assert_eq!(find_token(&headers, &query).unwrap().0, "q");
        headers.insert(AUTHORIZATION, "Bearer h".parse().unwrap());
        assert_eq!(
            find_token(&headers, &query).unwrap(),
            ("h".to_owned(), TokenSource::Header)
        );
    }

    #[test]
    fn policies() {
        let mut headers = HeaderMap::new();
        let query = HashMap::new();
        let only = TokenPolicy::Only(["good".to_owned()].into());
        assert_eq!(only.check(&headers, &query), Err(AuthError::Missing));
        headers.insert(AUTHORIZATION, "Bearer bad".parse().unwrap());
        assert_eq!(only.check(&headers, &query), Err(AuthError::Invalid));
        assert!(TokenPolicy::AnyNonEmpty.check(&headers, &query).is_ok());
        headers.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(
            TokenPolicy::AnyNonEmpty.check(&headers, &query),
            Err(AuthError::Missing)
        );
    }
}
