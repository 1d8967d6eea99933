//! Waiting on the first of several futures, without tokio's `select!`
//! macro (the library does not turn on tokio's `macros` feature for its
//! users). Each race is biased: the futures are polled in the order given,
//! so a cancellation placed first always wins over work that is also ready.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

/// Which future of a race finished first, with its output.
pub(crate) enum First<A, B, C = std::convert::Infallible> {
    A(A),
    B(B),
    C(C),
}

/// The first of `a` and `b` to finish (`a` wins a tie).
pub(crate) async fn first<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    // A third branch that never finishes: `First::C` cannot be.
    first_of_three(a, b, std::future::pending()).await
}

/// The first of `a`, `b` and `c` to finish (earlier ones win a tie).
pub(crate) async fn first_of_three<A: Future, B: Future, C: Future>(
    a: A,
    b: B,
    c: C,
) -> First<A::Output, B::Output, C::Output> {
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(First::A(out));
        }
        if let Poll::Ready(out) = b.as_mut().poll(cx) {
            return Poll::Ready(First::B(out));
        }
        if let Poll::Ready(out) = c.as_mut().poll(cx) {
            return Poll::Ready(First::C(out));
        }
        Poll::Pending
    })
    .await
}

/// A future that finishes when `future` does, or never when there is none:
/// a branch of a race that only runs under a condition.
#[cfg_attr(not(feature = "websocket"), allow(dead_code))]
pub(crate) async fn when<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{pending, ready};

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn the_earlier_future_wins_a_tie() {
        assert!(matches!(block_on(first(ready(1), ready(2))), First::A(1)));
        assert!(matches!(
            block_on(first_of_three(pending::<()>(), ready(2), ready(3))),
            First::B(2)
        ));
    }

    #[test]
    fn a_branch_without_a_future_never_finishes() {
        let out = block_on(first(when(None::<std::future::Ready<u8>>), ready("other")));
        assert!(matches!(out, First::B("other")));
        let out = block_on(first_of_three(
            pending::<()>(),
            pending::<()>(),
            when(Some(ready(7))),
        ));
        assert!(matches!(out, First::C(7)));
    }
}
