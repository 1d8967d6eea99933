//! A Mastodon-compatible streaming test server (being built; see the project's issues).
