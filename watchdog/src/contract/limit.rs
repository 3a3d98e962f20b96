//! The in-flight limiter: a fail-fast counting semaphore whose slots are RAII guards.
//!
//! Like of-watchdog's `MaxInflight` (faas-middleware's concurrency limiter) it never
//! queues: a request either gets a slot at once or is refused. It also counts requests
//! when unlimited, so the drain on shutdown knows when nothing is left in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts in-flight requests against an optional maximum.
#[derive(Debug)]
pub(super) struct Limiter {
    /// 0 = unlimited (only counted).
    max: usize,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    in_flight: AtomicUsize,
    /// Woken whenever the count drops to zero (drain waits on it).
    idle: Notify,
}

/// One in-flight slot; dropping it frees the slot. Hold it for as long as the request is
/// being served, response body included.
#[derive(Debug)]
#[must_use = "the slot is released as soon as the guard is dropped"]
pub struct InflightGuard {
    state: Arc<State>,
}

impl Limiter {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            state: Arc::default(),
        }
    }

    /// Takes a slot unless `max` are taken.
    pub(super) fn try_acquire(&self) -> Option<InflightGuard> {
        let counter = &self.state.in_flight;
        let mut current = counter.load(Ordering::Acquire);
        loop {
            if self.max > 0 && current >= self.max {
                return None;
            }
            match counter.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(InflightGuard {
                        state: self.state.clone(),
                    });
                }
                Err(actual) => current = actual,
            }
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.max > 0 && self.in_flight() >= self.max
    }

    pub(super) fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::Acquire)
    }

    /// Resolves once the count is zero.
    pub(super) async fn idle(&self) {
        loop {
            let notified = self.state.idle.notified();
            tokio::pin!(notified);
            // Register before checking so a release between the check and the await
            // still wakes us.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.state.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_refused_at_the_limit_and_freed_by_dropping_the_guard() {
        let limiter = Limiter::new(2);
        let a = limiter.try_acquire().expect("first slot");
        let _b = limiter.try_acquire().expect("second slot");
        assert!(limiter.is_full());
        assert!(limiter.try_acquire().is_none());
        drop(a);
        assert_eq!(limiter.in_flight(), 1);
        assert!(limiter.try_acquire().is_some());
    }

    #[test]
    fn an_unlimited_limiter_counts_but_never_refuses() {
        let limiter = Limiter::new(0);
        let guards: Vec<_> = (0..100).map(|_| limiter.try_acquire().unwrap()).collect();
        assert_eq!(limiter.in_flight(), 100);
        assert!(!limiter.is_full());
        drop(guards);
        assert_eq!(limiter.in_flight(), 0);
    }

    #[tokio::test]
    async fn idle_resolves_when_the_last_guard_drops() {
        let limiter = Arc::new(Limiter::new(0));
        let guard = limiter.try_acquire().unwrap();
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.idle().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        waiter.await.unwrap();
    }
}
