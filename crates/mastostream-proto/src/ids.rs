//! Record ids as servers write them: opaque strings that only the server
//! orders, but that every known server writes so that one rule sorts them.

use std::cmp::Ordering;

/// How two ids of one server sort: by length, then byte by byte. Mastodon's
/// decimal snowflakes sort so, as do the fixed-width strings of
/// GoToSocial (ULIDs), Iceshrimp.NET and Pleroma / Akkoma (flake ids, 18
/// characters for any time since 1973).
///
/// ```
/// use mastostream_proto::id_order;
/// assert!(id_order("99", "100").is_lt());
/// assert!(id_order("01HZX", "01HZY").is_lt());
/// ```
pub fn id_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}
