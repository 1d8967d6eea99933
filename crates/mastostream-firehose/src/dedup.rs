//! The window of status URIs already passed on: a post federated to
//! several of the instances followed is written once.

use std::collections::{HashSet, VecDeque};

/// How many URIs the window holds by default: at 2,000 statuses a second,
/// the last 50 seconds; about 10 MB.
pub const DEFAULT_WINDOW: usize = 100_000;

/// The last `capacity` distinct URIs seen, oldest forgotten first.
#[derive(Debug)]
pub struct UriWindow {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl UriWindow {
    /// A window of `capacity` URIs (at least one).
    pub fn new(capacity: usize) -> UriWindow {
        let capacity = capacity.max(1);
        UriWindow {
            capacity,
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Records `uri`; whether it is new within the window.
    pub fn insert(&mut self, uri: &str) -> bool {
        if self.seen.contains(uri) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(uri.to_owned());
        self.order.push_back(uri.to_owned());
        true
    }

    /// How many URIs it holds.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_passes_once_within_the_window_and_again_after_it() {
        let mut window = UriWindow::new(2);
        assert!(window.insert("a"));
        assert!(!window.insert("a"));
        assert!(window.insert("b"));
        assert!(window.insert("c")); // "a" falls out
        assert_eq!(window.len(), 2);
        assert!(!window.insert("b"));
        assert!(window.insert("a"));
    }
}
