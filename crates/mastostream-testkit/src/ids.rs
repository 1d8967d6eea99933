//! Snowflake-style ids, as Mastodon makes them: milliseconds since the epoch
//! shifted left 16 bits, plus a sequence. They are strings on the wire and
//! sort numerically, newest highest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out strictly increasing snowflake ids.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: AtomicU64,
}

impl IdGenerator {
    /// The next id for a record made now.
    pub fn next(&self) -> u64 {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.next_at(millis)
    }

    /// The next id for a record made at `millis` since the epoch; never below
    /// an id already handed out.
    pub fn next_at(&self, millis: u64) -> u64 {
        let candidate = millis << 16;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let id = candidate.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(seen) => last = seen,
            }
        }
    }

    /// Makes sure later ids sort after `id` (one given by a test).
    pub fn observe(&self, id: u64) {
        self.last.fetch_max(id, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_look_like_mastodons() {
        let ids = IdGenerator::default();
        let a = ids.next_at(1_700_000_000_000);
        let b = ids.next_at(1_700_000_000_000);
        let c = ids.next_at(1_600_000_000_000);
        assert!(a < b && b < c);
        assert_eq!(a.to_string().len(), 18);
        ids.observe(u64::MAX / 2);
        assert!(ids.next() > u64::MAX / 2);
    }
}
