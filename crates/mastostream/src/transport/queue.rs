//! The queue from a connection task to its consumer, which the task never
//! waits on.
//!
//! A connection task serves the network first: it answers pings, notices a
//! stall, reconnects and resubscribes whatever its consumers do. So every
//! push here returns at once. Events count against a byte bound; past it
//! the pusher chooses, per push, between two things the queue does not
//! decide for it:
//!
//! - [`Overflow::Drop`]: the connection is shared (a multiplexed WebSocket
//!   with other subscriptions), so nothing may wait for this consumer. The
//!   events are dropped and the loss is queued in their place as
//!   [`Item::Lagged`], so the consumer learns what it lost, in order.
//! - [`Overflow::Hold`]: the consumer is alone on its connection and holds
//!   nobody up. The events are queued and the pusher is told to stop
//!   reading until [`SignalTx::room`]: TCP then pushes back on the server,
//!   and nothing is lost.
//!
//! Lifecycle notices (connecting, open, reconnecting, skipped) and
//! heartbeats are always accepted; a consumer that stopped reading while
//! the server flaps (or floods pings) would collect them without end, so of
//! a run of them only the newest [`NOTICES_KEPT`] stay, and a heartbeat
//! after a heartbeat is not queued. The end of the stream is always kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use tokio::sync::Notify;

use crate::Error;
use crate::item::Item;
use crate::transport::batch::Batch;

/// What each signal counts for beyond its bytes (the signal itself, its
/// place in the queue), so that a flood of empty ones is bounded too.
pub(crate) const OVERHEAD: usize = 64;

/// How many lifecycle notices in a row a queue keeps.
pub(crate) const NOTICES_KEPT: usize = 16;

/// What a connection task hands its consumer, in order.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Events and heartbeats of one read, parsed by the consumer.
    Batch(Batch),
    /// An item ready as it is: a notice, a skipped event, a caught-up event.
    Item(Item),
    /// The stream ended with this error; nothing follows.
    Ended(Error),
}

/// What to do with events past the queue's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Drop them and queue an [`Item::Lagged`] instead.
    Drop,
    /// Queue them, and tell the pusher to stop reading.
    Hold,
}

/// What became of a push of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; there is room for more.
    Queued,
    /// Queued, and the queue is past its bound: read no more until
    /// [`SignalTx::room`].
    Full,
    /// Dropped, and counted in an [`Item::Lagged`].
    Dropped,
    /// The consumer is gone.
    Gone,
}

#[derive(Debug)]
struct State {
    items: VecDeque<(Signal, usize)>,
    bytes: usize,
    limit: usize,
    /// How many notices end the queue.
    trailing_notices: usize,
    senders: usize,
    receiver_gone: bool,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes pushers waiting for room, or for the consumer to go.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked mid-way: every
        // change is made before anything that could panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queue holding up to `limit` bytes of events (at least one push always fits).
pub(crate) fn queue(limit: usize) -> (SignalTx, SignalRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            limit: limit.max(OVERHEAD),
            trailing_notices: 0,
            senders: 1,
            receiver_gone: false,
            waker: None,
        }),
        room: Notify::new(),
    });
    (SignalTx(shared.clone()), SignalRx(shared))
}

/// The connection task's end; pushes never wait.
#[derive(Debug)]
pub(crate) struct SignalTx(Arc<Shared>);

impl Clone for SignalTx {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        SignalTx(self.0.clone())
    }
}

impl Drop for SignalTx {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.senders -= 1;
            if state.senders == 0 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl SignalTx {
    /// Queues a batch of events; past the bound, `overflow` decides.
    pub fn push_events(&self, batch: Batch, overflow: Overflow) -> Pushed {
        let bytes = batch.bytes() + OVERHEAD;
        let events = batch.events();
        self.push_counted(Signal::Batch(batch), bytes, events, overflow)
    }

    /// Queues an event that is ready (fetched back by catch-up); past the
    /// bound, `overflow` decides.
    #[cfg(feature = "catch-up")]
    pub fn push_event(&self, item: Item, bytes: usize, overflow: Overflow) -> Pushed {
        self.push_counted(Signal::Item(item), bytes + OVERHEAD, 1, overflow)
    }

    fn push_counted(
        &self,
        signal: Signal,
        bytes: usize,
        events: u64,
        overflow: Overflow,
    ) -> Pushed {
        let (pushed, waker) = {
            let mut state = self.0.lock();
            if state.receiver_gone {
                return Pushed::Gone;
            }
            let over = !state.items.is_empty() && state.bytes + bytes > state.limit;
            let pushed = if over && overflow == Overflow::Drop {
                record_loss(&mut state, events);
                Pushed::Dropped
            } else {
                state.bytes += bytes;
                state.items.push_back((signal, bytes));
                state.trailing_notices = 0;
                if state.bytes > state.limit {
                    Pushed::Full
                } else {
                    Pushed::Queued
                }
            };
            (pushed, state.waker.take())
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        pushed
    }

    /// Queues a notice or the end; always accepted. False when the consumer is gone.
    pub fn push(&self, signal: Signal) -> bool {
        let waker = {
            let mut state = self.0.lock();
            if state.receiver_gone {
                return false;
            }
            let heartbeat = matches!(&signal, Signal::Item(Item::Heartbeat));
            if heartbeat && matches!(state.items.back(), Some((Signal::Item(Item::Heartbeat), _))) {
                // One queued says the connection is alive; a flood of
                // pings or pongs at a consumer that does not read adds
                // nothing but memory.
                return true;
            }
            // Heartbeats count in a run of notices too: alternated with
            // skipped events they would escape its bound.
            let notice = heartbeat || matches!(&signal, Signal::Item(item) if item.is_notice());
            state.bytes += OVERHEAD;
            state.items.push_back((signal, OVERHEAD));
            if notice {
                state.trailing_notices += 1;
                if state.trailing_notices > NOTICES_KEPT {
                    // The oldest of the run is the stalest.
                    let index = state.items.len() - state.trailing_notices;
                    if let Some((_, bytes)) = state.items.remove(index) {
                        state.bytes -= bytes;
                    }
                    state.trailing_notices -= 1;
                }
            } else {
                state.trailing_notices = 0;
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Whether the consumer is gone.
    #[cfg(feature = "catch-up")]
    pub fn is_closed(&self) -> bool {
        self.0.lock().receiver_gone
    }

    /// Whether the queue is past its bound.
    #[cfg(test)]
    pub fn is_full(&self) -> bool {
        let state = self.0.lock();
        state.bytes > state.limit
    }

    /// Resolves when the queue is back to half its bound, or the consumer is gone.
    pub async fn room(&self) {
        self.wait_until(|state| state.receiver_gone || state.bytes <= state.limit / 2)
            .await
    }

    /// Resolves when the consumer is gone.
    pub async fn closed(&self) {
        self.wait_until(|state| state.receiver_gone).await
    }

    async fn wait_until(&self, ready: impl Fn(&State) -> bool) {
        loop {
            let notified = self.0.room.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a wake between the two is kept.
            notified.as_mut().enable();
            if ready(&self.0.lock()) {
                return;
            }
            notified.await;
        }
    }
}

/// Counts `events` dropped: into the [`Item::Lagged`] that ends the queue,
/// or a new one.
fn record_loss(state: &mut State, events: u64) {
    // The loss at the end of the queue, or just before the heartbeat that
    // ends it: pings alternating with dropped events would otherwise
    // queue a heartbeat and a notice each, without bound.
    let len = state.items.len();
    let heartbeat_last = matches!(state.items.back(), Some((Signal::Item(Item::Heartbeat), _)));
    let at = if heartbeat_last {
        len.checked_sub(2)
    } else {
        len.checked_sub(1)
    };
    if let Some((Signal::Item(Item::Lagged { lost, .. }), _)) =
        at.and_then(|at| state.items.get_mut(at))
    {
        *lost += events;
        return;
    }
    state.bytes += OVERHEAD;
    state.trailing_notices = 0;
    state.items.push_back((
        Signal::Item(Item::Lagged {
            lost: events,
            since: SystemTime::now(),
        }),
        OVERHEAD,
    ));
}

/// The consumer's end.
#[derive(Debug)]
pub(crate) struct SignalRx(Arc<Shared>);

impl SignalRx {
    /// The next signal; `None` once every pusher is gone and the queue is empty.
    pub fn poll_signal(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        let mut state = self.0.lock();
        if let Some((signal, bytes)) = state.items.pop_front() {
            state.bytes -= bytes;
            state.trailing_notices = state.trailing_notices.min(state.items.len());
            let room = state.bytes <= state.limit / 2;
            drop(state);
            if room {
                self.0.room.notify_waiters();
            }
            return Poll::Ready(Some(signal));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for the next signal.
    #[cfg(any(feature = "websocket", test))]
    pub fn recv(&mut self) -> impl Future<Output = Option<Signal>> + '_ {
        std::future::poll_fn(move |cx| self.poll_signal(cx))
    }

    /// Takes the next signal if one is queued; `Err(true)` when none will come.
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Result<Signal, bool> {
        match self.poll_signal(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Some(signal)) => Ok(signal),
            Poll::Ready(None) => Err(true),
            Poll::Pending => Err(false),
        }
    }
}

impl Unpin for SignalRx {}

impl Drop for SignalRx {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.receiver_gone = true;
            state.items.clear();
            state.bytes = 0;
        }
        self.0.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::batch::RawItem;
    use std::time::Duration;

    fn batch(bytes: usize) -> Batch {
        Batch::one("update".into(), Some("x".repeat(bytes)))
    }

    fn drain(rx: &mut SignalRx) -> Vec<Signal> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn a_shared_consumer_past_the_bound_is_told_what_it_lost_in_order() {
        let (tx, mut rx) = queue(1000);
        assert_eq!(tx.push_events(batch(500), Overflow::Drop), Pushed::Queued);
        assert_eq!(tx.push_events(batch(500), Overflow::Drop), Pushed::Dropped);
        assert_eq!(tx.push_events(batch(500), Overflow::Drop), Pushed::Dropped);
        assert!(tx.push(Signal::Item(Item::Connected)));
        let signals = drain(&mut rx);
        assert!(matches!(signals[0], Signal::Batch(_)));
        assert!(matches!(
            signals[1],
            Signal::Item(Item::Lagged { lost: 2, .. })
        ));
        assert!(matches!(signals[2], Signal::Item(Item::Connected)));
        assert_eq!(signals.len(), 3);
        // Room again: events are queued again.
        assert_eq!(tx.push_events(batch(500), Overflow::Drop), Pushed::Queued);
    }

    #[test]
    fn a_flood_of_heartbeats_and_skips_stays_bounded() {
        let (tx, mut rx) = queue(1000);
        for _ in 0..10_000 {
            assert!(tx.push(Signal::Item(Item::Heartbeat)));
        }
        assert_eq!(drain(&mut rx).len(), 1);
        let skipped = || Signal::Item(Item::Skipped(Error::Closed));
        for _ in 0..10_000 {
            assert!(tx.push(Signal::Item(Item::Heartbeat)));
            assert!(tx.push(skipped()));
        }
        let signals = drain(&mut rx);
        assert_eq!(signals.len(), NOTICES_KEPT);
        // The newest: the last one pushed ends the queue.
        assert!(matches!(
            signals.last(),
            Some(Signal::Item(Item::Skipped(_)))
        ));
        // Pings alternating with events dropped for a consumer that does
        // not read: one loss, one heartbeat.
        let (tx, mut rx) = queue(1000);
        assert_eq!(tx.push_events(batch(900), Overflow::Drop), Pushed::Queued);
        for _ in 0..10_000 {
            assert!(tx.push(Signal::Item(Item::Heartbeat)));
            assert_eq!(tx.push_events(batch(900), Overflow::Drop), Pushed::Dropped);
        }
        let signals = drain(&mut rx);
        // The batch, the first ping, the loss, the last ping.
        assert_eq!(signals.len(), 4, "{signals:?}");
        assert!(matches!(
            signals[2],
            Signal::Item(Item::Lagged { lost: 10_000, .. })
        ));
        // An event between them starts a new run.
        assert!(tx.push(Signal::Item(Item::Heartbeat)));
        assert_eq!(tx.push_events(batch(10), Overflow::Hold), Pushed::Queued);
        assert!(tx.push(Signal::Item(Item::Heartbeat)));
        assert_eq!(drain(&mut rx).len(), 3);
    }

    #[test]
    fn a_lone_consumer_past_the_bound_loses_nothing_and_the_pusher_is_told_to_hold() {
        let (tx, mut rx) = queue(1000);
        assert_eq!(tx.push_events(batch(600), Overflow::Hold), Pushed::Queued);
        assert_eq!(tx.push_events(batch(600), Overflow::Hold), Pushed::Full);
        assert!(tx.is_full());
        assert_eq!(drain(&mut rx).len(), 2);
        assert!(!tx.is_full());
    }

    #[test]
    fn one_push_always_fits_even_past_the_bound() {
        let (tx, mut rx) = queue(100);
        assert_eq!(tx.push_events(batch(10_000), Overflow::Drop), Pushed::Full);
        assert_eq!(drain(&mut rx).len(), 1);
    }

    #[test]
    fn notices_never_wait_and_a_run_of_them_keeps_the_newest() {
        let (tx, mut rx) = queue(1000);
        tx.push_events(batch(10), Overflow::Drop);
        for attempt in 1..=1000 {
            assert!(tx.push(Signal::Item(Item::Reconnecting {
                attempt,
                delay: Duration::ZERO,
                reason: Error::Closed,
            })));
        }
        tx.push(Signal::Ended(Error::Closed));
        let signals = drain(&mut rx);
        assert_eq!(signals.len(), 1 + NOTICES_KEPT + 1);
        let attempts: Vec<u32> = signals
            .iter()
            .filter_map(|s| match s {
                Signal::Item(Item::Reconnecting { attempt, .. }) => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(
            attempts,
            (1000 - NOTICES_KEPT as u32 + 1..=1000).collect::<Vec<_>>()
        );
        assert!(matches!(signals.last(), Some(Signal::Ended(_))));
    }

    #[test]
    fn the_end_comes_after_everything_and_then_none() {
        let (tx, mut rx) = queue(1000);
        let mut heartbeat = Batch::new();
        heartbeat.push(RawItem::Heartbeat);
        tx.push_events(heartbeat, Overflow::Hold);
        tx.push(Signal::Ended(Error::Closed));
        drop(tx);
        assert!(matches!(rx.try_recv(), Ok(Signal::Batch(_))));
        assert!(matches!(rx.try_recv(), Ok(Signal::Ended(_))));
        assert!(matches!(rx.try_recv(), Err(true)));
    }

    #[test]
    fn a_gone_consumer_frees_the_queue_and_refuses_pushes() {
        let (tx, rx) = queue(1000);
        tx.push_events(batch(900), Overflow::Hold);
        drop(rx);
        assert!(tx.is_closed() && !tx.is_full());
        assert_eq!(tx.push_events(batch(1), Overflow::Drop), Pushed::Gone);
        assert!(!tx.push(Signal::Ended(Error::Closed)));
    }

    #[tokio::test]
    async fn room_wakes_the_pusher_when_the_consumer_catches_up() {
        let (tx, mut rx) = queue(1000);
        tx.push_events(batch(600), Overflow::Hold);
        assert_eq!(tx.push_events(batch(600), Overflow::Hold), Pushed::Full);
        let waiter = tokio::spawn(async move { tx.room().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        rx.recv().await.unwrap();
        rx.recv().await.unwrap();
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn closed_wakes_when_the_consumer_goes() {
        let (tx, rx) = queue(1000);
        let waiter = tokio::spawn(async move { tx.closed().await });
        tokio::task::yield_now().await;
        drop(rx);
        waiter.await.unwrap();
    }
}
