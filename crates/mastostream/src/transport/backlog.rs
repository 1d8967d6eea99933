//! What a multiplexed WebSocket holds for the subscriptions that are behind.
//!
//! One connection serves many subscriptions. When one consumer stops reading
//! and its queue is full, the connection must neither wait for it (the others
//! would wait too, and unanswered pings make Mastodon cut the connection) nor
//! drop its events. They wait here instead, per subscription and in order,
//! up to a byte bound for the whole connection; past it the connection stops
//! reading the socket, and TCP pushes back.

use std::collections::{HashMap, VecDeque};

/// What each signal counts for beyond its bytes (the signal itself, its
/// place in the queue), so that a flood of empty ones is bounded too.
const OVERHEAD: usize = 64;

/// Signals `T` waiting for their subscriptions (each reached through an
/// `S`), with their sizes.
#[derive(Debug)]
pub(crate) struct Backlog<S, T> {
    queues: HashMap<u64, Queue<S, T>>,
    bytes: usize,
    limit: usize,
}

#[derive(Debug)]
struct Queue<S, T> {
    to: S,
    items: VecDeque<(T, usize)>,
}

impl<S: Clone, T> Backlog<S, T> {
    /// A backlog that counts as full at `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Backlog {
            queues: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Whether `subscription` has signals waiting: a new one must wait
    /// behind them, to keep the order.
    pub fn is_behind(&self, subscription: u64) -> bool {
        self.queues.contains_key(&subscription)
    }

    /// Whether the connection should stop reading until some are delivered.
    pub fn is_full(&self) -> bool {
        self.bytes >= self.limit
    }

    /// Queues `signal`, of `bytes` bytes, for `subscription` (reached
    /// through `to`), behind its others.
    pub fn push(&mut self, subscription: u64, to: &S, signal: T, bytes: usize) {
        let bytes = bytes + OVERHEAD;
        self.bytes += bytes;
        self.queues
            .entry(subscription)
            .or_insert_with(|| Queue {
                to: to.clone(),
                items: VecDeque::new(),
            })
            .items
            .push_back((signal, bytes));
    }

    /// Takes `subscription`'s oldest waiting signal.
    pub fn pop(&mut self, subscription: u64) -> Option<T> {
        let queue = self.queues.get_mut(&subscription)?;
        let (signal, bytes) = queue.items.pop_front()?;
        self.bytes -= bytes;
        if queue.items.is_empty() {
            self.queues.remove(&subscription);
        }
        Some(signal)
    }

    /// Drops what waits for `subscription` (its consumer is gone).
    pub fn remove(&mut self, subscription: u64) {
        if let Some(queue) = self.queues.remove(&subscription) {
            self.bytes -= queue.items.iter().map(|(_, bytes)| bytes).sum::<usize>();
        }
    }

    /// Takes everything, each subscription's signals in order.
    pub fn drain(&mut self) -> impl Iterator<Item = (S, T)> + use<S, T> {
        self.bytes = 0;
        std::mem::take(&mut self.queues)
            .into_values()
            .flat_map(|queue| {
                let to = queue.to;
                queue
                    .items
                    .into_iter()
                    .map(move |(signal, _)| (to.clone(), signal))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subscription_keeps_its_order() {
        let mut backlog = Backlog::new(100);
        backlog.push(1, &'a', "a1", 1);
        backlog.push(2, &'b', "b1", 1);
        backlog.push(1, &'a', "a2", 1);
        assert!(backlog.is_behind(1) && backlog.is_behind(2) && !backlog.is_behind(3));
        assert_eq!(backlog.pop(1), Some("a1"));
        assert_eq!(backlog.pop(1), Some("a2"));
        assert_eq!(backlog.pop(1), None);
        assert!(!backlog.is_behind(1));
        assert_eq!(backlog.pop(2), Some("b1"));
        assert!(!backlog.is_behind(2));
    }

    #[test]
    fn full_at_the_limit_and_not_after_delivery() {
        let mut backlog = Backlog::new(2 * OVERHEAD + 10);
        backlog.push(1, &(), (), 6);
        assert!(!backlog.is_full());
        backlog.push(2, &(), (), 4);
        assert!(backlog.is_full());
        backlog.pop(2);
        assert!(!backlog.is_full());
        backlog.push(1, &(), (), 4);
        assert!(backlog.is_full());
        backlog.remove(1);
        assert!(!backlog.is_full() && !backlog.is_behind(1));
    }

    #[test]
    fn empty_signals_count_too() {
        let mut backlog = Backlog::new(10 * OVERHEAD);
        for _ in 0..10 {
            assert!(!backlog.is_full());
            backlog.push(1, &(), (), 0);
        }
        assert!(backlog.is_full());
    }

    #[test]
    fn drain_gives_everything_in_order_per_subscription() {
        let mut backlog = Backlog::new(5 * OVERHEAD);
        for (id, n) in [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3)] {
            backlog.push(id, &id, n, 5);
        }
        assert!(backlog.is_full());
        let drained: Vec<(u64, i32)> = backlog.drain().collect();
        assert!(!backlog.is_full() && !backlog.is_behind(1) && !backlog.is_behind(2));
        for id in [1, 2] {
            let order: Vec<i32> = drained
                .iter()
                .filter(|(i, _)| *i == id)
                .map(|(_, n)| *n)
                .collect();
            let expected = if id == 1 { vec![1, 2, 3] } else { vec![1, 2] };
            assert_eq!(order, expected);
        }
    }
}
